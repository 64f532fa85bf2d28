/*  zova.h: what the files of the zova command line client share.

    The client is one program split by concern:
      main.c      global options, parsing, settings, usage and help, and
                  s_commands: the one table of every command
      client.c    the socket to the api: requests, replies, pipelined
                  batches; the command's options and request bodies
      output.c    the output buffer, values as cells, tables, records as
                  tables or JSON, progress on stderr
      records.c   the handlers every kind of record shares (list, show,
                  delete, create, set, ping)
      servers.c   servers: their views, waiting for them, create, actions
      catalog.c   flavors and images (the image upload)
      admin.c     services, hypervisors, aggregates, zones, server groups,
                  resource providers
      consoles.c  console URLs and logs
      moves.c     moving servers (migrate, resize, confirm, revert,
                  evacuate a server or a host) and migration records
    A command is one row of s_commands plus its handler here; a kind of
    record is one resource_t, defined next to its commands.

    Names shared between the files are zv_cli_...; what one file keeps to
    itself is s_....  The types keep their short names: nothing outside
    cmd/zova/ includes this header, and the library's types are all zv_. */

#ifndef ZOVA_CLI_H
#define ZOVA_CLI_H

#include <czmq.h>
#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/zv_msg.h"

//  Exit statuses: success, failure, bad usage.
#define ZOVA_EXIT_OK            0
#define ZOVA_EXIT_FAIL          1
#define ZOVA_EXIT_USAGE         2

//  --wait-timeout when not given.
#define ZOVA_DEFAULT_WAIT_S     600


//  ---------------------------------------------------------------------
//  Types

//  A growable byte buffer: all output is built in one and written at once.
//  Zero-initialised it is empty; zv_cli_buf_free releases it.
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} strbuf_t;

typedef struct {
    const char *heading;
    const char *key;                //  key in the (flattened) record
} column_t;

//  A kind of record: reply keys, list columns and the flattened form for
//  scripts.
typedef struct {
    const char *name;               //  "server", for messages
    const char *one;                //  reply key of one record
    const char *many;               //  reply key of a list
    const column_t *columns;        //  list table; NULL-terminated
    const column_t *long_columns;   //  with --long, or NULL for the same
    //  Flattened copy (caller owns) for lists and JSON, or NULL to print
    //  records as returned.  full: keep every other key too (show).
    json_t *(*flatten) (json_t *record, bool full);
    //  The -f json text of a list reply, written from its msgpack body
    //  straight into out (without a tree), or NULL.  -1 when the body has
    //  a shape it does not expect: the list then takes the tree path.
    int (*json_list) (strbuf_t *out, const void *body, size_t size);
    //  For show: a copy of the record with readable rows added (caller
    //  owns), or NULL when there is nothing to add; a NULL hook adds none.
    json_t *(*show_rows) (json_t *record);
} resource_t;

typedef enum {
    OPT_FLAG,               //  present or not
    OPT_STR,                //  a string, optionally one of choices
    OPT_INT,                //  an integer >= min
    OPT_KV,                 //  KEY=VALUE, repeatable, gathered into a map
    OPT_KV_LIST,            //  the same, but a repeated key's values make an array
    OPT_KEYS,               //  KEY, repeatable, gathered into a map of nulls (unset)
    OPT_KIND_COUNT
} opt_kind_t;

typedef struct {
    const char *name;       //  long option without "--"
    opt_kind_t kind;
    const char *metavar;    //  for usage; NULL for flags
    const char *body_key;   //  request body field it fills; NULL: client side only
    bool required;
    int64_t min;            //  OPT_INT: smallest accepted value
    const char *choices;    //  OPT_STR: "raw|qcow2", or NULL for any string
} opt_spec_t;

typedef struct _command_t command_t;

//  The client's state: settings, the command being run, the transport.
typedef struct {
    //  Settings
    const char *endpoint;
    char *endpoint_owned;   //  from a config file
    double timeout_s;
    int timeout_ms;
    bool json;
    const char *project;    //  accepted, never sent: the api decides
    bool stderr_tty;
    //  The command
    const command_t *cmd;
    json_t *opts;           //  long option name -> parsed value
    char **args;            //  positional arguments (point into argv)
    size_t nargs;
    //  Transport
    zsock_t *sock;
    zpoller_t *poller;
} cli_t;

//  A command's handler: the exit status.
typedef int (handler_fn) (cli_t *cli);

//  One row of the command table.
struct _command_t {
    const char *words;              //  "server event list"
    handler_fn *handler;
    const char *type;               //  request type, NULL when none
    const resource_t *resource;
    const opt_spec_t *opts;         //  terminated by name == NULL; may be NULL
    const char *args;               //  positional synopsis
    size_t min_args;
    size_t max_args;
    const char *summary;
};

//  A batch's callbacks: make (ctx, i) builds the body of request i
//  (ownership passes to the batch); on_reply (ctx, i, reply) sees its
//  reply (borrowed).
typedef json_t *(batch_make_fn) (void *ctx, size_t idx);
typedef void (batch_reply_fn) (void *ctx, size_t idx, zv_msg_t *reply);

//  Progress on stderr; zero-initialised but for tty.
typedef struct {
    bool tty;
    bool drawn;
    int64_t last;
} progress_t;

typedef enum {
    WAIT_PENDING,
    WAIT_DONE,              //  reached the target state
    WAIT_FAILED,            //  ERROR, or vanished while building
    WAIT_STATE_COUNT
} wait_state_t;

//  Servers being waited for (create --wait, delete --wait, actions --wait).
typedef struct {
    bool deleting;
    bool settling;          //  an action: done when task_state is None again
    json_t *servers;        //  latest record of each server (updated in place)
    wait_state_t *state;
    char **note;            //  why a server failed, when it has no fault
    size_t *round;          //  servers polled this round
    size_t nround;
    char *fatal;            //  first unexpected error of the round
} waiter_t;


//  ---------------------------------------------------------------------
//  output.c: messages, the buffer, records as tables or JSON, progress

//  "zova: " and the message on stderr, one line.
void zv_cli_fail (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
//  Says so on stderr and exits with ZOVA_EXIT_FAIL.
void zv_cli_out_of_memory (void);

//  Append to a buffer; running out of memory exits.
void zv_cli_buf_add (strbuf_t *self, const char *text, size_t len);
void zv_cli_buf_puts (strbuf_t *self, const char *text);
void zv_cli_buf_printf (strbuf_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  A scalar as a cell: null "None", booleans "True"/"False".
void zv_cli_buf_scalar (strbuf_t *buf, const json_t *value);
//  Rows as a table with the given columns (NULL-terminated).
void zv_cli_buf_rows (strbuf_t *out, const column_t *columns, json_t *rows);
//  A Field | Value table of every key of record but those in skip (NULL
//  or NULL-terminated).
void zv_cli_buf_show (strbuf_t *out, json_t *record, const char *const *skip);
//  Releases the buffer and leaves it empty.
void zv_cli_buf_free (strbuf_t *self);
//  Writes the whole buffer to stdout; 0 or -1 (reported).
int zv_cli_buf_write (const strbuf_t *self);

//  value as indented JSON on stdout; 0 or -1.
int zv_cli_print_json (json_t *value);
//  records (borrowed) as a table or JSON; the exit status.
int zv_cli_print_list (const cli_t *cli, const resource_t *res, json_t *records);
//  One record (borrowed) as a Field | Value table or JSON; res may be
//  NULL.  The exit status.
int zv_cli_print_show (const cli_t *cli, const resource_t *res, json_t *record);
//  The record or list under key in a reply (borrowed), or NULL after
//  reporting.
json_t *zv_cli_reply_member (json_t *reply, const char *key, bool list, const char *type);

//  Draws the progress (redrawn only when the figures change).
void zv_cli_progress_draw (progress_t *self, size_t done, size_t finished, size_t total,
                           const char *label, size_t errors);
//  Draws the progress of one operation: milestone (where it stands) and
//  detail, with a bar when percent >= 0.  A terminal's line is redrawn
//  whenever the text changes; elsewhere a line is written only when the
//  milestone or the percentage does.
void zv_cli_progress_step (progress_t *self, int percent, const char *milestone,
                           const char *detail);
//  Ends the progress line, if one was drawn on a terminal.
void zv_cli_progress_end (progress_t *self);


//  ---------------------------------------------------------------------
//  client.c: talking to the api; the command's options

//  Reports that the api did not answer within the timeout.
void zv_cli_no_answer (const cli_t *cli);
//  Reports a failed reply in one line.
void zv_cli_report_error (const zv_msg_t *reply);
//  Connects the socket once; 0 or -1 (reported).
int zv_cli_connect (cli_t *cli);
//  Sends one request, taking ownership of *body_p; its message id (caller
//  frees), or NULL (reported).
char *zv_cli_send (cli_t *cli, const char *type, json_t **body_p,
                   const void *payload, size_t size);
//  The next message before deadline (monotonic ms; caller owns), or NULL.
zv_msg_t *zv_cli_recv_until (cli_t *cli, int64_t deadline);
//  Lets time pass until deadline, dropping whatever arrives.
void zv_cli_idle (cli_t *cli, int64_t deadline);
//  True (reported, *msg_p destroyed) when the message failed to decode.
bool zv_cli_unreadable (zv_msg_t **msg_p);
//  One request, taking ownership of body; its successful reply (caller
//  owns), or NULL (reported).
zv_msg_t *zv_cli_call_reply (cli_t *cli, const char *type, json_t *body);
//  The body of *reply_p (caller owns; *reply_p destroyed), or NULL
//  (reported).
json_t *zv_cli_reply_body (zv_msg_t **reply_p, const char *type);
//  One request, taking ownership of body; the body of its successful reply
//  (caller owns), or NULL (reported).
json_t *zv_cli_call (cli_t *cli, const char *type, json_t *body);
//  count pipelined requests of one type; 0 when every reply came, -1
//  (reported).
int zv_cli_batch (cli_t *cli, const char *type, size_t count,
                  batch_make_fn *make, batch_reply_fn *on_reply, void *ctx);

//  The value of the command's option name (borrowed), or NULL.
json_t *zv_cli_opt (const cli_t *cli, const char *name);
bool zv_cli_opt_flag (const cli_t *cli, const char *name);
int64_t zv_cli_opt_int (const cli_t *cli, const char *name, int64_t dflt);
//  The request body the command's options fill (caller owns).
json_t *zv_cli_body_from_opts (const cli_t *cli);
//  A body {key: value} (caller owns).
json_t *zv_cli_body_str (const char *key, const char *value);


//  ---------------------------------------------------------------------
//  main.c

//  Reports a usage error found by a handler, with the command's usage; the
//  exit status for it.
int zv_cli_usage_error (const cli_t *cli, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));


//  ---------------------------------------------------------------------
//  records.c: handlers every kind of record shares

int zv_cli_cmd_list (cli_t *cli);
int zv_cli_cmd_show (cli_t *cli);
int zv_cli_cmd_list_of (cli_t *cli);
int zv_cli_cmd_delete (cli_t *cli);
int zv_cli_cmd_create (cli_t *cli);
int zv_cli_cmd_set (cli_t *cli);
int zv_cli_cmd_ping (cli_t *cli);
//  Sends body (taking ownership) as the command's request and shows the
//  record the reply carries; the exit status.
int zv_cli_call_show (cli_t *cli, json_t *body);


//  ---------------------------------------------------------------------
//  servers.c

extern const resource_t zv_cli_res_server;
extern const resource_t zv_cli_res_event;

int zv_cli_cmd_server_create (cli_t *cli);
int zv_cli_cmd_server_action (cli_t *cli);
int zv_cli_cmd_server_screenshot (cli_t *cli);

//  A waiter over servers (borrowed; their records are replaced in place).
void zv_cli_waiter_init (waiter_t *self, json_t *servers, bool deleting);
void zv_cli_waiter_free (waiter_t *self);
//  Polls every server until each settles or wait_s seconds pass, drawing
//  progress.  0 when all settled, 1 on timeout (*left_p still pending),
//  -1 (reported).
int zv_cli_wait_servers (cli_t *cli, waiter_t *waiter, int64_t wait_s, size_t *left_p);


//  ---------------------------------------------------------------------
//  catalog.c

extern const resource_t zv_cli_res_flavor;
extern const resource_t zv_cli_res_image;

int zv_cli_cmd_flavor_create (cli_t *cli);
int zv_cli_cmd_image_create (cli_t *cli);
int zv_cli_cmd_image_save (cli_t *cli);


//  ---------------------------------------------------------------------
//  admin.c

extern const resource_t zv_cli_res_service;
extern const resource_t zv_cli_res_hypervisor;
extern const resource_t zv_cli_res_aggregate;
extern const resource_t zv_cli_res_zone;
extern const resource_t zv_cli_res_group;
extern const resource_t zv_cli_res_provider;

int zv_cli_cmd_service_set (cli_t *cli);
int zv_cli_cmd_aggregate_host (cli_t *cli);
int zv_cli_cmd_zone_list (cli_t *cli);
int zv_cli_cmd_group_create (cli_t *cli);
int zv_cli_cmd_provider_show (cli_t *cli);
int zv_cli_cmd_inventory_set (cli_t *cli);


//  ---------------------------------------------------------------------
//  consoles.c

int zv_cli_cmd_console_url (cli_t *cli);
int zv_cli_cmd_console_log (cli_t *cli);


//  ---------------------------------------------------------------------
//  moves.c

extern const resource_t zv_cli_res_migration;

int zv_cli_cmd_server_move (cli_t *cli);
int zv_cli_cmd_host_evacuate (cli_t *cli);
int zv_cli_cmd_migration_list (cli_t *cli);
int zv_cli_cmd_migration_show (cli_t *cli);
int zv_cli_cmd_migration_control (cli_t *cli);

#endif
