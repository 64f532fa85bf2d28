/*  servers.c: servers in the zova CLI: how they are shown, waiting for
    them, create, the actions and the screenshot.

    A server is shown flat for lists and scripts (s_server_flat: one row
    per key, a nested reference reduced to its name and id), and server
    list -f json is written straight from the reply's msgpack bytes, the
    same text the tree would give, because building and dumping the tree
    costs most of a big list's CPU.  --wait polls api.server_show for every
    server still pending, in pipelined rounds ZOVA_POLL_INTERVAL_MS apart,
    drawing progress on stderr, until each settles or the wait times out; a
    busy conductor is no verdict on a server.  The actions (Nova's POST
    /servers/{id}/action) are one request per server, pipelined; after
    --wait each server's action record says how its action ended.         */

#include <czmq.h>
#include <jansson.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "common/zv_common.h"
#include "proto/zv_msg.h"
#include "proto/zv_pack.h"
#include "cmd/zova/zova.h"

#define ZOVA_POLL_INTERVAL_MS   100


//  ---------------------------------------------------------------------
//  Views: the flat form for scripts, list columns, the guest's rows

//  A server's flat form, one row per key: taken from source, or from the
//  member sub of the nested object source when sub is set.
typedef struct {
    const char *key;
    const char *source;
    const char *sub;
} flat_key_t;

static const flat_key_t s_server_flat [] = {
    { "id",          "id",          NULL },
    { "name",        "name",        NULL },
    { "status",      "status",      NULL },
    { "vm_state",    "vm_state",    NULL },
    { "task_state",  "task_state",  NULL },
    { "power_state", "power_state", NULL },
    { "host",        "host",        NULL },
    { "flavor",      "flavor",      "name" },
    { "flavor_id",   "flavor",      "id" },
    { "image",       "image",       "name" },
    { "image_id",    "image",       "id" },
    { "created",     "created",     NULL },
    { "updated",     "updated",     NULL },
    { "launched_at", "launched_at", NULL },
    { "fault",       "fault",       "message" },
    { "project_id",  "project_id",  NULL },
    { NULL, NULL, NULL }
};

static json_t *
s_server_flatten (json_t *server, bool full)
{
    json_t *flat = json_object ();
    if (!flat)
        zv_cli_out_of_memory ();
    for (const flat_key_t *row = s_server_flat; row->key; row++) {
        json_t *value = json_object_get (server, row->source);
        //  A nested reference that came back as a bare id or name is kept
        //  as the name; its id stays null rather than guessed.
        if (row->sub && json_is_object (value))
            value = json_object_get (value, row->sub);
        else
        if (row->sub && strcmp (row->key, row->source) != 0)
            value = NULL;
        json_object_set (flat, row->key, value ? value : json_null ());
    }
    if (full) {
        const char *key;
        json_t *value;
        json_object_foreach (server, key, value)
            if (!json_object_get (flat, key))
                json_object_set (flat, key, value);
    }
    return flat;
}

//  server list -f json without a tree.  json_dumps of the flattened list
//  costs most of a big list's CPU (decode, flatten copy, dump); this walks
//  the reply's msgpack bytes once and writes the same text, byte for byte,
//  that zv_cli_print_json gives for it: s_server_flat's keys in order, indent 2,
//  jansson's string escapes.  Anything the flat form would hold as other
//  than a scalar (a real, a nested list or map, a server that is not a map)
//  is -1, and the caller falls back to the tree: the fast path only has to
//  be right about the ordinary case.
#define S_SERVER_FLAT_KEYS  (sizeof s_server_flat / sizeof s_server_flat [0] - 1)

//  Keys of a received body are checked strings without NUL.
static bool
s_item_is (const zv_pack_item_t *item, const char *name)
{
    return item->type == ZV_PACK_STR
        && strncmp (name, item->str, item->len) == 0 && name [item->len] == '\0';
}

//  text[0..len) as a JSON string, escaped as json_dumps escapes it (UTF-8,
//  already checked on arrival, passes through).
static void
s_buf_json_str (strbuf_t *out, const char *text, size_t len)
{
    zv_cli_buf_add (out, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text [i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        zv_cli_buf_add (out, text + start, i - start);
        start = i + 1;
        switch (c) {
            case '"':  zv_cli_buf_add (out, "\\\"", 2); break;
            case '\\': zv_cli_buf_add (out, "\\\\", 2); break;
            case '\b': zv_cli_buf_add (out, "\\b", 2); break;
            case '\f': zv_cli_buf_add (out, "\\f", 2); break;
            case '\n': zv_cli_buf_add (out, "\\n", 2); break;
            case '\r': zv_cli_buf_add (out, "\\r", 2); break;
            case '\t': zv_cli_buf_add (out, "\\t", 2); break;
            default:   zv_cli_buf_printf (out, "\\u%04X", c); break;
        }
    }
    zv_cli_buf_add (out, text + start, len - start);
    zv_cli_buf_add (out, "\"", 1);
}

//  A scalar as json_dumps writes it; -1 for anything else.
static int
s_buf_json_scalar (strbuf_t *out, const zv_pack_item_t *item)
{
    switch (item->type) {
        case ZV_PACK_NIL:
            zv_cli_buf_add (out, "null", 4);
            return 0;
        case ZV_PACK_BOOL:
            zv_cli_buf_puts (out, item->integer ? "true" : "false");
            return 0;
        case ZV_PACK_INT:
            zv_cli_buf_printf (out, "%" PRId64, item->integer);
            return 0;
        case ZV_PACK_STR:
            s_buf_json_str (out, item->str, item->len);
            return 0;
        case ZV_PACK_REAL:          //  jansson's own float format: the tree's job
        case ZV_PACK_ARRAY:
        case ZV_PACK_MAP:
        case ZV_PACK_OTHER:
        case ZV_PACK_TYPE_COUNT:
            return -1;
    }
    return -1;
}

//  The value of row for the server whose source value starts at body[at]
//  (at 0: absent), as s_server_flatten takes it.
static int
s_server_json_value (strbuf_t *out, const flat_key_t *row,
                     const void *body, size_t size, size_t at)
{
    if (at == 0) {
        zv_cli_buf_add (out, "null", 4);
        return 0;
    }
    zv_pack_item_t item;
    if (zv_pack_next (body, size, &at, &item))
        return -1;
    if (row->sub && item.type == ZV_PACK_MAP) {
        size_t sub_at = 0;          //  the last of duplicate keys wins
        for (size_t i = 0; i < item.count; i++) {
            zv_pack_item_t key;
            if (zv_pack_next (body, size, &at, &key) || key.type != ZV_PACK_STR)
                return -1;
            if (s_item_is (&key, row->sub))
                sub_at = at;
            if (zv_pack_skip (body, size, &at))
                return -1;
        }
        if (sub_at == 0) {
            zv_cli_buf_add (out, "null", 4);
            return 0;
        }
        if (zv_pack_next (body, size, &sub_at, &item))
            return -1;
    }
    else
    if (row->sub && strcmp (row->key, row->source) != 0) {
        zv_cli_buf_add (out, "null", 4);
        return 0;
    }
    return s_buf_json_scalar (out, &item);
}

static int
s_server_json_list (strbuf_t *out, const void *body, size_t size)
{
    zv_pack_item_t item, key;
    size_t pos = 0, servers_at = 0;
    if (zv_pack_next (body, size, &pos, &item) || item.type != ZV_PACK_MAP)
        return -1;
    for (size_t i = 0; i < item.count; i++) {
        if (zv_pack_next (body, size, &pos, &key) || key.type != ZV_PACK_STR)
            return -1;
        if (s_item_is (&key, "servers"))
            servers_at = pos;
        if (zv_pack_skip (body, size, &pos))
            return -1;
    }
    pos = servers_at;
    if (servers_at == 0
    ||  zv_pack_next (body, size, &pos, &item) || item.type != ZV_PACK_ARRAY)
        return -1;
    if (item.count == 0) {
        zv_cli_buf_add (out, "[]\n", 3);
        return 0;
    }
    size_t nservers = item.count;
    zv_cli_buf_add (out, "[\n", 2);
    for (size_t n = 0; n < nservers; n++) {
        if (zv_pack_next (body, size, &pos, &item) || item.type != ZV_PACK_MAP)
            return -1;
        size_t at [S_SERVER_FLAT_KEYS] = { 0 };
        for (size_t i = 0; i < item.count; i++) {
            if (zv_pack_next (body, size, &pos, &key) || key.type != ZV_PACK_STR)
                return -1;
            for (size_t r = 0; r < S_SERVER_FLAT_KEYS; r++)
                if (s_item_is (&key, s_server_flat [r].source))
                    at [r] = pos;
            if (zv_pack_skip (body, size, &pos))
                return -1;
        }
        zv_cli_buf_add (out, "  {\n", 4);
        for (size_t r = 0; r < S_SERVER_FLAT_KEYS; r++) {
            zv_cli_buf_add (out, "    \"", 5);
            zv_cli_buf_puts (out, s_server_flat [r].key);
            zv_cli_buf_add (out, "\": ", 3);
            if (s_server_json_value (out, &s_server_flat [r], body, size, at [r]))
                return -1;
            zv_cli_buf_add (out, r + 1 < S_SERVER_FLAT_KEYS ? ",\n" : "\n", r + 1 < S_SERVER_FLAT_KEYS ? 2 : 1);
        }
        zv_cli_buf_add (out, n + 1 < nservers ? "  },\n" : "  }\n", n + 1 < nservers ? 5 : 4);
    }
    zv_cli_buf_add (out, "]\n", 2);
    return 0;
}

//  What a server's guest agent said, as two readable rows: addresses
//  ("eth0=10.0.2.15, fe80::..."; the openstack client's net=ip form, by
//  interface) and guest_os.  Added to a copy of the record; NULL when the
//  agent never answered.
static json_t *
s_server_guest_rows (json_t *record)
{
    json_t *guest = json_object_get (record, "guest");
    if (!json_is_object (guest))
        return NULL;
    json_t *copy = json_copy (record);
    if (!copy)
        zv_cli_out_of_memory ();
    strbuf_t text = { 0 };
    size_t index;
    json_t *address;
    json_array_foreach (json_object_get (guest, "ip_addresses"), index, address) {
        const char *iface = json_string_value (json_object_get (address, "interface"));
        const char *ip = json_string_value (json_object_get (address, "address"));
        if (ip)
            zv_cli_buf_printf (&text, "%s%s=%s", text.len ? ", " : "", iface ? iface : "?", ip);
    }
    json_object_set_new (copy, "addresses", json_string (text.len ? text.data : ""));
    zv_cli_buf_free (&text);
    json_t *os = json_object_get (guest, "os");
    const char *name = json_string_value (json_object_get (os, "name"));
    const char *kernel = json_string_value (json_object_get (os, "kernel_release"));
    const char *hostname = json_string_value (json_object_get (guest, "hostname"));
    char line [512];
    snprintf (line, sizeof line, "%s%s%s%s", name ? name : "", kernel ? " (kernel " : "", kernel ? kernel : "",
              kernel ? ")" : "");
    json_object_set_new (copy, "guest_os", json_string (line));
    if (hostname)
        json_object_set_new (copy, "guest_hostname", json_string (hostname));
    return copy;
}

static const column_t s_server_columns [] = {
    { "ID", "id" }, { "Name", "name" }, { "Status", "status" },
    { "Task State", "task_state" }, { "Power State", "power_state" },
    { "Host", "host" }, { "Image", "image" }, { "Flavor", "flavor" },
    { NULL, NULL }
};

static const column_t s_event_columns [] = {
    { "Request ID", "request_id" }, { "Action", "action" },
    { "Start Time", "start_time" }, { "Finish Time", "finish_time" },
    { "Result", "result" }, { "Message", "message" },
    { NULL, NULL }
};

const resource_t zv_cli_res_server = {
    .name = "server", .one = "server", .many = "servers",
    .columns = s_server_columns,
    .flatten = s_server_flatten, .json_list = s_server_json_list,
    .show_rows = s_server_guest_rows
};

const resource_t zv_cli_res_event = {
    .name = "event", .one = "event", .many = "events",
    .columns = s_event_columns
};


//  ---------------------------------------------------------------------
//  Waiting for servers to settle (create, delete and the actions, with --wait)

static json_t *
s_wait_make (void *ctx, size_t idx)
{
    waiter_t *self = ctx;
    json_t *server = json_array_get (self->servers, self->round [idx]);
    return zv_cli_body_str ("ref", json_string_value (json_object_get (server, "id")));
}

static void
s_wait_reply (void *ctx, size_t idx, zv_msg_t *reply)
{
    waiter_t *self = ctx;
    size_t which = self->round [idx];
    zv_status_t status = zv_msg_status (reply);
    const char *text = zv_msg_error_text (reply);
    if (status == ZV_OK) {
        json_t *server = json_object_get (zv_msg_body (reply), "server");
        if (!json_is_object (server)) {
            if (!self->fatal)
                self->fatal = strdup ("malformed reply to api.server_show: no 'server' record");
            return;
        }
        json_array_set (self->servers, which, server);
        const char *state = json_string_value (json_object_get (server, "status"));
        state = state ? state : "";
        if (self->deleting) {
            if (streq (state, "DELETED") || json_is_true (json_object_get (server, "deleted")))
                self->state [which] = WAIT_DONE;
        }
        else
        if (self->settling) {
            json_t *task = json_object_get (server, "task_state");
            if (!task || json_is_null (task))
                self->state [which] = WAIT_DONE;
        }
        else
        if (streq (state, "ACTIVE"))
            self->state [which] = WAIT_DONE;
        else
        if (streq (state, "ERROR"))
            self->state [which] = WAIT_FAILED;
    }
    else
    if (status == ZV_ENOTFOUND && self->deleting)
        self->state [which] = WAIT_DONE;
    else
    if (status == ZV_ENOTFOUND) {
        self->state [which] = WAIT_FAILED;
        free (self->note [which]);
        self->note [which] = strdup (*text ? text : "it no longer exists");
    }
    else
    //  A busy or restarting conductor is not a verdict on the server.
    if (status == ZV_ETIMEOUT || status == ZV_EUNAVAILABLE)
        ;
    else
    if (!self->fatal)
        self->fatal = strdup (*text ? text : zv_status_name (status));
}

//  Poll every server until each settles or wait_s seconds pass, drawing
//  progress.  0 when all settled, 1 on timeout (*left_p still pending),
//  -1 after reporting an error.
int
zv_cli_wait_servers (cli_t *cli, waiter_t *waiter, int64_t wait_s, size_t *left_p)
{
    size_t total = json_array_size (waiter->servers);
    const char *label = waiter->deleting ? "servers DELETED"
                      : waiter->settling ? "servers done" : "servers ACTIVE";
    progress_t progress = { .tty = cli->stderr_tty };
    int64_t give_up = zv_mono_ms () + wait_s * 1000;
    int rc = 0;
    while (true) {
        size_t done = 0, failed = 0;
        waiter->nround = 0;
        for (size_t i = 0; i < total; i++) {
            switch (waiter->state [i]) {
                case WAIT_DONE:
                    done++;
                    break;
                case WAIT_FAILED:
                    failed++;
                    break;
                case WAIT_PENDING:
                    waiter->round [waiter->nround++] = i;
                    break;
                case WAIT_STATE_COUNT:
                    assert (false);
                    break;
            }
        }
        zv_cli_progress_draw (&progress, done, done + failed, total, label, failed);
        if (waiter->nround == 0)
            break;
        int64_t round_start = zv_mono_ms ();
        if (round_start >= give_up) {
            *left_p = waiter->nround;
            rc = 1;
            break;
        }
        if (zv_cli_batch (cli, "api.server_show", waiter->nround,
                          s_wait_make, s_wait_reply, waiter)) {
            rc = -1;
            break;
        }
        if (waiter->fatal) {
            zv_cli_progress_end (&progress);
            zv_cli_fail ("%s", waiter->fatal);
            rc = -1;
            break;
        }
        zv_cli_idle (cli, round_start + ZOVA_POLL_INTERVAL_MS);
    }
    zv_cli_progress_end (&progress);
    return rc;
}

void
zv_cli_waiter_init (waiter_t *self, json_t *servers, bool deleting)
{
    size_t total = json_array_size (servers);
    memset (self, 0, sizeof *self);
    self->deleting = deleting;
    self->servers = servers;
    self->state = calloc (total + 1, sizeof (wait_state_t));
    self->note = calloc (total + 1, sizeof (char *));
    self->round = calloc (total + 1, sizeof (size_t));
    if (!self->state || !self->note || !self->round)
        zv_cli_out_of_memory ();
}

void
zv_cli_waiter_free (waiter_t *self)
{
    for (size_t i = 0; i < json_array_size (self->servers); i++)
        free (self->note [i]);
    free (self->note);
    free (self->state);
    free (self->round);
    free (self->fatal);
}

//  Every server in the list must carry a string id to be polled.
static bool
s_servers_have_ids (json_t *servers, const char *type)
{
    size_t i;
    json_t *server;
    json_array_foreach (servers, i, server)
        if (!json_is_string (json_object_get (server, "id"))) {
            zv_cli_fail ("malformed reply to %s: a server without an id", type);
            return false;
        }
    return true;
}


//  ---------------------------------------------------------------------
//  server create

//  Final servers of a create: one record as a show, several as a list,
//  decided by the request (--max) so that scripts can rely on the shape.
static int
s_print_created (cli_t *cli, json_t *servers, int64_t max_count)
{
    if (max_count > 1 || json_array_size (servers) != 1)
        return zv_cli_print_list (cli, &zv_cli_res_server, servers);
    return zv_cli_print_show (cli, &zv_cli_res_server, json_array_get (servers, 0));
}

int
zv_cli_cmd_server_create (cli_t *cli)
{
    json_t *body = zv_cli_body_from_opts (cli);
    int64_t min_count = zv_cli_opt_int (cli, "min", 1);
    int64_t max_count = zv_cli_opt_int (cli, "max", min_count);
    if (max_count < min_count) {
        json_decref (body);
        zv_cli_fail ("--max (%" PRId64 ") must not be less than --min (%" PRId64 ")",
                     max_count, min_count);
        return ZOVA_EXIT_USAGE;
    }
    json_object_set_new (body, "name", json_string (cli->args [0]));
    json_object_set_new (body, "min_count", json_integer (min_count));
    json_object_set_new (body, "max_count", json_integer (max_count));
    if (!json_object_get (body, "hints"))
        json_object_set_new (body, "hints", json_object ());
    if (!json_object_get (body, "metadata"))
        json_object_set_new (body, "metadata", json_object ());

    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    int rc = ZOVA_EXIT_FAIL;
    json_t *servers = zv_cli_reply_member (reply, "servers", true, cli->cmd->type);
    if (!servers)
        goto cleanup;
    if (!zv_cli_opt_flag (cli, "wait")) {
        rc = s_print_created (cli, servers, max_count);
        goto cleanup;
    }
    if (!s_servers_have_ids (servers, cli->cmd->type))
        goto cleanup;

    waiter_t waiter;
    zv_cli_waiter_init (&waiter, servers, false);
    int64_t wait_s = zv_cli_opt_int (cli, "wait-timeout", ZOVA_DEFAULT_WAIT_S);
    size_t left = 0;
    int waited = zv_cli_wait_servers (cli, &waiter, wait_s, &left);
    if (waited >= 0)
        rc = s_print_created (cli, servers, max_count);
    if (waited == 1) {
        zv_cli_fail ("timed out after %" PRId64 " s waiting for %zu of %zu servers to become ACTIVE",
                     wait_s, left, json_array_size (servers));
        rc = ZOVA_EXIT_FAIL;
    }
    else
    if (waited < 0)
        rc = ZOVA_EXIT_FAIL;
    for (size_t i = 0; i < json_array_size (servers); i++) {
        if (waiter.state [i] != WAIT_FAILED)
            continue;
        json_t *server = json_array_get (servers, i);
        const char *name = json_string_value (json_object_get (server, "name"));
        const char *id = json_string_value (json_object_get (server, "id"));
        const char *why = waiter.note [i];
        if (!why)
            why = json_string_value (json_object_get (json_object_get (server, "fault"), "message"));
        zv_cli_fail ("server %s (%s) is ERROR: %s", name ? name : "?", id,
                     why ? why : "no fault recorded");
        rc = ZOVA_EXIT_FAIL;
    }
    zv_cli_waiter_free (&waiter);
cleanup:
    json_decref (reply);
    return rc;
}


//  ---------------------------------------------------------------------
//  Server actions

//  Server actions (Nova's POST /servers/{id}/action): the command's last
//  word names the action, except where an option picks another.
static const struct {
    const char *words;
    const char *action;
} s_server_actions [] = {
    { "server reboot",   "reboot" },
    { "server stop",     "stop" },
    { "server start",    "start" },
    { "server pause",    "pause" },
    { "server unpause",  "unpause" },
    { "server suspend",  "suspend" },
    { "server resume",   "resume" },
    { "server rescue",   "rescue" },
    { "server unrescue", "unrescue" },
    { "server set",      "changePassword" },
};

typedef struct {
    cli_t *cli;
    const char *action;
    const char *password;
    size_t failures;
    json_t *servers;        //  records of the servers whose action started
    json_t *requests;       //  their request ids, in the same order
} actor_t;

static json_t *
s_action_make (void *ctx, size_t idx)
{
    actor_t *self = ctx;
    json_t *body = zv_cli_body_from_opts (self->cli);
    json_object_set_new (body, "ref", json_string (self->cli->args [idx]));
    json_object_set_new (body, "action", json_string (self->action));
    if (self->password)
        json_object_set_new (body, "password", json_string (self->password));
    return body;
}

static void
s_action_reply (void *ctx, size_t idx, zv_msg_t *reply)
{
    actor_t *self = ctx;
    (void) idx;
    if (zv_msg_status (reply) != ZV_OK) {
        zv_cli_report_error (reply);
        self->failures++;
        return;
    }
    json_t *record = json_object_get (zv_msg_body (reply), "server");
    const char *request_id = json_string_value (json_object_get (zv_msg_body (reply), "request_id"));
    if (json_is_object (record) && json_is_string (json_object_get (record, "id"))) {
        json_array_append (self->servers, record);
        json_array_append_new (self->requests, json_string (request_id ? request_id : ""));
    }
}

//  A password from the terminal (asked twice, not echoed) or one line of
//  standard input, as the openstack client's --root-password asks for it.
static char *
s_read_password (void)
{
    char first [256] = "", second [256] = "";
    if (isatty (STDIN_FILENO)) {
        struct termios old, quiet;
        if (tcgetattr (STDIN_FILENO, &old) != 0)
            return NULL;
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~ECHO;
        tcsetattr (STDIN_FILENO, TCSANOW, &quiet);
        fputs ("New password: ", stderr);
        bool got = fgets (first, sizeof first, stdin) != NULL;
        fputs ("\nRetype new password: ", stderr);
        got = got && fgets (second, sizeof second, stdin) != NULL;
        fputc ('\n', stderr);
        tcsetattr (STDIN_FILENO, TCSANOW, &old);
        first [strcspn (first, "\r\n")] = 0;
        second [strcspn (second, "\r\n")] = 0;
        if (!got || strcmp (first, second) != 0) {
            zv_cli_fail ("passwords do not match");
            return NULL;
        }
    }
    else {
        if (!fgets (first, sizeof first, stdin)) {
            zv_cli_fail ("--root-password: no password on standard input");
            return NULL;
        }
        first [strcspn (first, "\r\n")] = 0;
    }
    if (!*first) {
        zv_cli_fail ("the password is empty");
        return NULL;
    }
    return strdup (first);
}

//  After --wait: each server's action record says how its action ended.
static int
s_action_results (cli_t *cli, actor_t *actor)
{
    int rc = ZOVA_EXIT_OK;
    size_t index;
    json_t *server;
    json_array_foreach (actor->servers, index, server) {
        const char *id = json_string_value (json_object_get (server, "id"));
        const char *request_id = json_string_value (json_array_get (actor->requests, index));
        json_t *reply = zv_cli_call (cli, "api.server_events", zv_cli_body_str ("ref", id));
        if (!reply)
            return ZOVA_EXIT_FAIL;
        size_t at;
        json_t *event;
        json_array_foreach (json_object_get (reply, "events"), at, event) {
            if (!request_id || !streq (json_string_value (json_object_get (event, "request_id")) ?
                                       json_string_value (json_object_get (event, "request_id")) : "", request_id))
                continue;
            const char *result = json_string_value (json_object_get (event, "result"));
            const char *message = json_string_value (json_object_get (event, "message"));
            if (result && streq (result, "Error")) {
                zv_cli_fail ("server %s: %s failed: %s", id, actor->action, message ? message : "no reason given");
                rc = ZOVA_EXIT_FAIL;
            }
            else
            if (message && *message)
                fprintf (stderr, "server %s: %s\n", id, message);
        }
        json_decref (reply);
    }
    return rc;
}

int
zv_cli_cmd_server_action (cli_t *cli)
{
    actor_t actor = { .cli = cli, .servers = json_array (), .requests = json_array () };
    for (size_t index = 0; index < sizeof s_server_actions / sizeof s_server_actions [0]; index++)
        if (streq (s_server_actions [index].words, cli->cmd->words))
            actor.action = s_server_actions [index].action;
    assert (actor.action);
    if (streq (actor.action, "reboot") && zv_cli_opt_flag (cli, "hard"))
        actor.action = "reboot_hard";
    char *password = NULL;
    if (streq (actor.action, "changePassword")) {
        if (!zv_cli_opt_flag (cli, "root-password")) {
            zv_cli_fail ("server set needs --root-password");
            json_decref (actor.servers);
            json_decref (actor.requests);
            return ZOVA_EXIT_USAGE;
        }
        password = s_read_password ();
        if (!password) {
            json_decref (actor.servers);
            json_decref (actor.requests);
            return ZOVA_EXIT_FAIL;
        }
        actor.password = password;
    }
    int rc = ZOVA_EXIT_OK;
    if (zv_cli_batch (cli, "api.server_action", cli->nargs, s_action_make, s_action_reply, &actor))
        rc = ZOVA_EXIT_FAIL;
    else
    if (actor.failures)
        rc = ZOVA_EXIT_FAIL;
    if (rc == ZOVA_EXIT_OK && zv_cli_opt_flag (cli, "wait") && json_array_size (actor.servers)) {
        waiter_t waiter;
        zv_cli_waiter_init (&waiter, actor.servers, false);
        waiter.settling = true;
        int64_t wait_s = zv_cli_opt_int (cli, "wait-timeout", ZOVA_DEFAULT_WAIT_S);
        size_t left = 0;
        int waited = zv_cli_wait_servers (cli, &waiter, wait_s, &left);
        if (waited == 1)
            zv_cli_fail ("timed out after %" PRId64 " s waiting for %zu of %zu servers to finish %s",
                         wait_s, left, json_array_size (actor.servers), actor.action);
        if (waited)
            rc = ZOVA_EXIT_FAIL;
        else
            rc = s_action_results (cli, &actor);
        zv_cli_waiter_free (&waiter);
    }
    //  One server: show where it is now (its record after --wait).
    if (rc == ZOVA_EXIT_OK && cli->nargs == 1 && json_array_size (actor.servers) == 1)
        rc = zv_cli_print_show (cli, &zv_cli_res_server, json_array_get (actor.servers, 0));
    if (password) {
        memset (password, 0, strlen (password));
        free (password);
    }
    json_decref (actor.servers);
    json_decref (actor.requests);
    return rc;
}


//  ---------------------------------------------------------------------
//  server screenshot

//  server screenshot REF --file OUT.png
int
zv_cli_cmd_server_screenshot (cli_t *cli)
{
    const char *path = json_string_value (zv_cli_opt (cli, "file"));
    zv_msg_t *reply = zv_cli_call_reply (cli, cli->cmd->type, zv_cli_body_str ("ref", cli->args [0]));
    if (!reply)
        return ZOVA_EXIT_FAIL;
    size_t size = 0;
    const void *png = zv_msg_payload (reply, &size);
    int rc = ZOVA_EXIT_OK;
    if (!png || size < 8 || memcmp (png, "\x89PNG", 4) != 0) {
        zv_cli_fail ("malformed reply to %s: no PNG image", cli->cmd->type);
        rc = ZOVA_EXIT_FAIL;
    }
    else {
        FILE *file = fopen (path, "wb");
        if (!file || fwrite (png, 1, size, file) != size || fclose (file) != 0) {
            zv_cli_fail ("cannot write %s: %s", path, strerror (errno));
            rc = ZOVA_EXIT_FAIL;
        }
        else
        if (!cli->json)
            fprintf (stdout, "%s: %zu bytes (PNG)\n", path, size);
        else
            printf ("{\n  \"file\": \"%s\",\n  \"size\": %zu\n}\n", path, size);
    }
    zv_msg_destroy (&reply);
    return rc;
}
