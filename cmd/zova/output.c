/*  output.c: what the zova CLI prints, and how.

    Output is built in memory once (strbuf_t) and written with one fwrite,
    so listing ten thousand servers costs a few milliseconds, not a write
    per cell.  Values read the way the openstack client shows them (None,
    True/False, "name (id)", k='v'); a table collects its cells in one text
    buffer, tracking column widths as they go, and renders its box in one
    pass.  A record is a Field | Value table, or indented JSON with -f json
    (flattened first when its resource says so).  Messages to the user and
    progress go to stderr, so stdout holds the result and nothing else.   */

#include <czmq.h>
#include <jansson.h>

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/zova/zova.h"

#define ZOVA_BAR_WIDTH          20


//  ---------------------------------------------------------------------
//  Messages to the user

void
zv_cli_fail (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fputs ("zova: ", stderr);
    vfprintf (stderr, format, args);
    fputc ('\n', stderr);
    va_end (args);
}

//  A command line tool has nothing to save when memory runs out: say so once
//  and stop, rather than thread an error through every append.
void
zv_cli_out_of_memory (void)
{
    fputs ("zova: out of memory\n", stderr);
    exit (ZOVA_EXIT_FAIL);
}


//  ---------------------------------------------------------------------
//  A growable byte buffer: all output is built in one and written at once.

static void
s_buf_reserve (strbuf_t *self, size_t more)
{
    if (self->len + more + 1 <= self->cap)
        return;
    size_t cap = self->cap ? self->cap : 4096;
    while (cap < self->len + more + 1)
        cap *= 2;
    char *data = realloc (self->data, cap);
    if (!data)
        zv_cli_out_of_memory ();
    self->data = data;
    self->cap = cap;
}

void
zv_cli_buf_add (strbuf_t *self, const char *text, size_t len)
{
    s_buf_reserve (self, len);
    memcpy (self->data + self->len, text, len);
    self->len += len;
    self->data [self->len] = '\0';
}

void
zv_cli_buf_puts (strbuf_t *self, const char *text)
{
    zv_cli_buf_add (self, text, strlen (text));
}

static void
s_buf_fill (strbuf_t *self, char c, size_t count)
{
    s_buf_reserve (self, count);
    memset (self->data + self->len, c, count);
    self->len += count;
    self->data [self->len] = '\0';
}

void
zv_cli_buf_printf (strbuf_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char small [64];
    int len = vsnprintf (small, sizeof small, format, args);
    va_end (args);
    if (len < 0)
        return;
    if ((size_t) len < sizeof small) {
        zv_cli_buf_add (self, small, (size_t) len);
        return;
    }
    s_buf_reserve (self, (size_t) len);
    va_start (args, format);
    vsnprintf (self->data + self->len, (size_t) len + 1, format, args);
    va_end (args);
    self->len += (size_t) len;
}

void
zv_cli_buf_free (strbuf_t *self)
{
    free (self->data);
    memset (self, 0, sizeof *self);
}

//  Write the whole buffer to stdout; 0 or -1 (reported).
int
zv_cli_buf_write (const strbuf_t *self)
{
    if (self->len && fwrite (self->data, 1, self->len, stdout) != self->len) {
        zv_cli_fail ("cannot write the output: %s", strerror (errno));
        return -1;
    }
    return 0;
}


//  ---------------------------------------------------------------------
//  Values as text, the way the openstack client shows them

static void
s_buf_json_compact (strbuf_t *buf, const json_t *value)
{
    char *text = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        zv_cli_out_of_memory ();
    zv_cli_buf_puts (buf, text);
    free (text);
}

//  A scalar as a cell: null is "None" and booleans "True"/"False", as in
//  the openstack client.
void
zv_cli_buf_scalar (strbuf_t *buf, const json_t *value)
{
    switch (json_typeof (value)) {
        case JSON_STRING:
            zv_cli_buf_add (buf, json_string_value (value), json_string_length (value));
            break;
        case JSON_INTEGER:
            zv_cli_buf_printf (buf, "%" JSON_INTEGER_FORMAT, json_integer_value (value));
            break;
        case JSON_REAL:
            zv_cli_buf_printf (buf, "%g", json_real_value (value));
            break;
        case JSON_TRUE:
            zv_cli_buf_puts (buf, "True");
            break;
        case JSON_FALSE:
            zv_cli_buf_puts (buf, "False");
            break;
        case JSON_NULL:
            zv_cli_buf_puts (buf, "None");
            break;
        case JSON_OBJECT:
        case JSON_ARRAY:
            s_buf_json_compact (buf, value);
            break;
    }
}

static bool
s_is_scalar (const json_t *value)
{
    return value && !json_is_object (value) && !json_is_array (value);
}

//  Any value as a cell.  Nested records read the way a person would write
//  them: a reference {id, name} as "name (id)", a fault {message, ...} as its
//  message, a map of scalars as k='v', a list of scalars comma separated;
//  anything deeper as compact JSON.  An absent value is an empty cell.
static void
s_buf_value (strbuf_t *buf, json_t *value)
{
    if (!value)
        return;
    if (json_is_object (value)) {
        json_t *message = json_object_get (value, "message");
        json_t *name = json_object_get (value, "name");
        json_t *id = json_object_get (value, "id");
        if (json_is_string (message)) {
            zv_cli_buf_scalar (buf, message);
            return;
        }
        if (s_is_scalar (name) && s_is_scalar (id)) {
            zv_cli_buf_scalar (buf, name);
            zv_cli_buf_puts (buf, " (");
            zv_cli_buf_scalar (buf, id);
            zv_cli_buf_puts (buf, ")");
            return;
        }
        const char *key;
        json_t *member;
        json_object_foreach (value, key, member) {
            if (!s_is_scalar (member)) {
                s_buf_json_compact (buf, value);
                return;
            }
        }
        bool first = true;
        json_object_foreach (value, key, member) {
            zv_cli_buf_printf (buf, "%s%s='", first ? "" : ", ", key);
            zv_cli_buf_scalar (buf, member);
            zv_cli_buf_puts (buf, "'");
            first = false;
        }
        return;
    }
    if (json_is_array (value)) {
        size_t i;
        json_t *member;
        json_array_foreach (value, i, member) {
            if (!s_is_scalar (member)) {
                s_buf_json_compact (buf, value);
                return;
            }
        }
        json_array_foreach (value, i, member) {
            if (i)
                zv_cli_buf_puts (buf, ", ");
            zv_cli_buf_scalar (buf, member);
        }
        return;
    }
    zv_cli_buf_scalar (buf, value);
}


//  ---------------------------------------------------------------------
//  Tables: cells are appended row by row into one text buffer, column
//  widths tracked as they go, then the box is rendered in one pass.

typedef struct {
    size_t ncols;
    const char **heading;
    size_t *width;          //  display width of each column
    strbuf_t text;          //  every cell's text, back to back
    size_t *end;            //  end offset in text of each cell
    size_t *cell_width;     //  display width of each cell
    size_t ncells;
    size_t cap;
} table_t;

//  Display width of UTF-8 text: one column per code point, which is right
//  for everything a name or an id holds short of wide CJK characters.
static size_t
s_utf8_width (const char *text, size_t len)
{
    size_t width = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char) text [i] & 0xC0) != 0x80)
            width++;
    return width;
}

static void
s_table_init (table_t *self, size_t ncols, const char **heading)
{
    memset (self, 0, sizeof *self);
    self->ncols = ncols;
    self->heading = heading;
    self->width = calloc (ncols, sizeof (size_t));
    if (!self->width)
        zv_cli_out_of_memory ();
    for (size_t col = 0; col < ncols; col++)
        self->width [col] = s_utf8_width (heading [col], strlen (heading [col]));
}

//  Start a cell: returns where its text begins.
static size_t
s_table_cell_begin (table_t *self)
{
    if (self->ncells == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 256;
        self->end = realloc (self->end, self->cap * sizeof (size_t));
        self->cell_width = realloc (self->cell_width, self->cap * sizeof (size_t));
        if (!self->end || !self->cell_width)
            zv_cli_out_of_memory ();
    }
    return self->text.len;
}

//  Finish a cell: control characters would break the box, so they become
//  spaces; then the column grows to fit.
static void
s_table_cell_end (table_t *self, size_t start)
{
    char *text = self->text.data ? self->text.data + start : NULL;
    size_t len = self->text.len - start;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) text [i] < 0x20 || text [i] == 0x7F)
            text [i] = ' ';
    size_t width = s_utf8_width (text, len);
    size_t col = self->ncells % self->ncols;
    if (width > self->width [col])
        self->width [col] = width;
    self->end [self->ncells] = self->text.len;
    self->cell_width [self->ncells] = width;
    self->ncells++;
}

static void
s_table_value (table_t *self, json_t *value)
{
    size_t start = s_table_cell_begin (self);
    s_buf_value (&self->text, value);
    s_table_cell_end (self, start);
}

static void
s_table_text (table_t *self, const char *text)
{
    size_t start = s_table_cell_begin (self);
    zv_cli_buf_puts (&self->text, text);
    s_table_cell_end (self, start);
}

static void
s_table_row (strbuf_t *out, const table_t *self, const char *const *cell,
             const size_t *len, const size_t *width)
{
    zv_cli_buf_add (out, "|", 1);
    for (size_t col = 0; col < self->ncols; col++) {
        zv_cli_buf_add (out, " ", 1);
        zv_cli_buf_add (out, cell [col], len [col]);
        s_buf_fill (out, ' ', self->width [col] - width [col] + 1);
        zv_cli_buf_add (out, "|", 1);
    }
    zv_cli_buf_add (out, "\n", 1);
}

static void
s_table_render (const table_t *self, strbuf_t *out)
{
    assert (self->ncells % self->ncols == 0);
    size_t nrows = self->ncells / self->ncols;
    size_t line = 2;
    for (size_t col = 0; col < self->ncols; col++)
        line += self->width [col] + 3;
    s_buf_reserve (out, line * (nrows + 4));

    strbuf_t rule = { 0 };
    zv_cli_buf_add (&rule, "+", 1);
    for (size_t col = 0; col < self->ncols; col++) {
        s_buf_fill (&rule, '-', self->width [col] + 2);
        zv_cli_buf_add (&rule, "+", 1);
    }
    zv_cli_buf_add (&rule, "\n", 1);

    const char **cell = calloc (self->ncols, sizeof (char *));
    size_t *len = calloc (self->ncols, sizeof (size_t));
    size_t *width = calloc (self->ncols, sizeof (size_t));
    if (!cell || !len || !width)
        zv_cli_out_of_memory ();

    zv_cli_buf_add (out, rule.data, rule.len);
    for (size_t col = 0; col < self->ncols; col++) {
        cell [col] = self->heading [col];
        len [col] = strlen (self->heading [col]);
        width [col] = s_utf8_width (cell [col], len [col]);
    }
    s_table_row (out, self, cell, len, width);
    zv_cli_buf_add (out, rule.data, rule.len);
    for (size_t row = 0; row < nrows; row++) {
        for (size_t col = 0; col < self->ncols; col++) {
            size_t i = row * self->ncols + col;
            size_t start = i ? self->end [i - 1] : 0;
            cell [col] = self->text.data + start;
            len [col] = self->end [i] - start;
            width [col] = self->cell_width [i];
        }
        s_table_row (out, self, cell, len, width);
    }
    if (nrows)
        zv_cli_buf_add (out, rule.data, rule.len);
    free (cell);
    free (len);
    free (width);
    zv_cli_buf_free (&rule);
}

static void
s_table_free (table_t *self)
{
    free (self->width);
    free (self->end);
    free (self->cell_width);
    zv_cli_buf_free (&self->text);
}


//  ---------------------------------------------------------------------
//  Printing records

static const column_t s_field_columns [] = {
    { "Field", NULL }, { "Value", NULL }, { NULL, NULL }
};

int
zv_cli_print_json (json_t *value)
{
    char *text = json_dumps (value, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
    if (!text)
        zv_cli_out_of_memory ();
    strbuf_t out = { .data = text, .len = strlen (text), .cap = strlen (text) + 1 };
    int rc = zv_cli_buf_write (&out);
    if (rc == 0 && fputc ('\n', stdout) == EOF)
        rc = -1;
    free (text);
    return rc;
}

//  Rows as a table with the given columns, appended to out.
void
zv_cli_buf_rows (strbuf_t *out, const column_t *columns, json_t *rows)
{
    size_t ncols = 0;
    while (columns [ncols].heading)
        ncols++;
    const char **heading = calloc (ncols, sizeof (char *));
    if (!heading)
        zv_cli_out_of_memory ();
    for (size_t col = 0; col < ncols; col++)
        heading [col] = columns [col].heading;
    table_t table;
    s_table_init (&table, ncols, heading);
    for (size_t i = 0; i < json_array_size (rows); i++) {
        json_t *row = json_array_get (rows, i);
        for (size_t col = 0; col < ncols; col++)
            s_table_value (&table, json_object_get (row, columns [col].key));
    }
    s_table_render (&table, out);
    s_table_free (&table);
    free (heading);
}

int
zv_cli_print_list (const cli_t *cli, const resource_t *res, json_t *records)
{
    size_t nrecords = json_array_size (records);
    json_t *rows = records;
    if (res->flatten) {
        rows = json_array ();
        if (!rows)
            zv_cli_out_of_memory ();
        for (size_t i = 0; i < nrecords; i++)
            json_array_append_new (rows, res->flatten (json_array_get (records, i), false));
    }
    else
        json_incref (rows);

    int rc;
    if (cli->json)
        rc = zv_cli_print_json (rows);
    else {
        const column_t *columns = res->columns;
        if (res->long_columns && zv_cli_opt_flag (cli, "long"))
            columns = res->long_columns;
        strbuf_t out = { 0 };
        zv_cli_buf_rows (&out, columns, rows);
        rc = zv_cli_buf_write (&out);
        zv_cli_buf_free (&out);
    }
    json_decref (rows);
    return rc ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
}

static int
s_compare_keys (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static bool
s_listed (const char *const *names, const char *name)
{
    for (; names && *names; names++)
        if (streq (*names, name))
            return true;
    return false;
}

//  A Field | Value table of every key of record but those in skip (NULL
//  or NULL-terminated), sorted as the openstack client sorts them,
//  appended to out.
void
zv_cli_buf_show (strbuf_t *out, json_t *record, const char *const *skip)
{
    size_t nkeys = json_object_size (record);
    const char **keys = calloc (nkeys + 1, sizeof (char *));
    if (!keys)
        zv_cli_out_of_memory ();
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach (record, key, value)
        if (!s_listed (skip, key))
            keys [n++] = key;
    qsort (keys, n, sizeof (char *), s_compare_keys);

    const char *heading [] = { s_field_columns [0].heading, s_field_columns [1].heading };
    table_t table;
    s_table_init (&table, 2, heading);
    for (size_t i = 0; i < n; i++) {
        s_table_text (&table, keys [i]);
        s_table_value (&table, json_object_get (record, keys [i]));
    }
    s_table_render (&table, out);
    s_table_free (&table);
    free (keys);
}

//  One record: a Field | Value table, or the JSON object (flattened first
//  for servers).
int
zv_cli_print_show (const cli_t *cli, const resource_t *res, json_t *record)
{
    int rc;
    json_t *shown = res && res->show_rows ? res->show_rows (record) : NULL;
    if (!shown)
        shown = json_incref (record);
    if (cli->json) {
        json_t *flat = res && res->flatten ? res->flatten (shown, true) : json_incref (shown);
        rc = zv_cli_print_json (flat);
        json_decref (flat);
        json_decref (shown);
        return rc ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
    }
    strbuf_t out = { 0 };
    zv_cli_buf_show (&out, shown, NULL);
    rc = zv_cli_buf_write (&out);
    zv_cli_buf_free (&out);
    json_decref (shown);
    return rc ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
}

//  The record or list under key in a reply, or NULL after reporting.
json_t *
zv_cli_reply_member (json_t *reply, const char *key, bool list, const char *type)
{
    json_t *member = json_object_get (reply, key);
    if (list ? json_is_array (member) : json_is_object (member))
        return member;
    zv_cli_fail ("malformed reply to %s: no '%s' %s", type, key, list ? "list" : "record");
    return NULL;
}


//  ---------------------------------------------------------------------
//  Progress on stderr: a bar redrawn in place on a terminal, otherwise a
//  plain line whenever the count changes (so logs stay readable).

void
zv_cli_progress_draw (progress_t *self, size_t done, size_t finished, size_t total,
                      const char *label, size_t errors)
{
    int percent = total ? (int) (finished * 100 / total) : 100;
    char extra [48] = "";
    if (errors)
        snprintf (extra, sizeof extra, ", %zu ERROR", errors);
    int64_t key = (int64_t) (done * (total + 1) + errors);
    if (self->drawn && key == self->last)
        return;
    self->drawn = true;
    self->last = key;
    if (self->tty) {
        char bar [ZOVA_BAR_WIDTH + 1];
        size_t fill = total ? finished * ZOVA_BAR_WIDTH / total : ZOVA_BAR_WIDTH;
        memset (bar, '#', fill);
        memset (bar + fill, '-', ZOVA_BAR_WIDTH - fill);
        bar [ZOVA_BAR_WIDTH] = '\0';
        fprintf (stderr, "\r[%s] %3d%%  %zu/%zu %s%s", bar, percent, done, total, label, extra);
        fflush (stderr);
    }
    else
        fprintf (stderr, "%3d%%  %zu/%zu %s%s\n", percent, done, total, label, extra);
}

//  FNV-1a over text, from seed: what a step's line says, as a number to
//  compare with the last one drawn.
static uint64_t
s_hash (const char *text, uint64_t seed)
{
    uint64_t hash = seed;
    for (; text && *text; text++)
        hash = (hash ^ (unsigned char) *text) * UINT64_C (1099511628211);
    return hash;
}

void
zv_cli_progress_step (progress_t *self, int percent, const char *milestone, const char *detail)
{
    uint64_t hash = s_hash (milestone, UINT64_C (14695981039346656037)) * 131 + (uint64_t) (percent + 1);
    if (self->tty)
        hash = s_hash (detail, hash);
    int64_t key = (int64_t) (hash >> 1);
    if (self->drawn && key == self->last)
        return;
    self->drawn = true;
    self->last = key;
    if (percent > 100)
        percent = 100;
    char bar [ZOVA_BAR_WIDTH + 16] = "";
    if (percent >= 0) {
        size_t fill = (size_t) percent * ZOVA_BAR_WIDTH / 100;
        char cells [ZOVA_BAR_WIDTH + 1];
        memset (cells, '#', fill);
        memset (cells + fill, '-', ZOVA_BAR_WIDTH - fill);
        cells [ZOVA_BAR_WIDTH] = '\0';
        if (self->tty)
            snprintf (bar, sizeof bar, "[%s] %3d%%  ", cells, percent);
        else
            snprintf (bar, sizeof bar, "%3d%%  ", percent);
    }
    //  The line may get shorter: a terminal's rest of it is erased.
    if (self->tty) {
        fprintf (stderr, "\r%s%s%s\033[K", bar, milestone, detail ? detail : "");
        fflush (stderr);
    }
    else
        fprintf (stderr, "%s%s%s\n", bar, milestone, detail ? detail : "");
}

void
zv_cli_progress_end (progress_t *self)
{
    if (self->tty && self->drawn)
        fputc ('\n', stderr);
    self->drawn = false;
}
