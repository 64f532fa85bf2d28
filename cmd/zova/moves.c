/*  moves.c: moving servers in the zova CLI: cold migration, resize with
    its confirm and revert, evacuation of one server or of a whole host,
    and the migration records that remember every move.

    Each move is one request, and its reply carries the server and the
    migration record the conductor opened for it (or, for confirm and
    revert, the one it closes).  What --wait waits for is a row of s_moves:
    the server statuses and the migration statuses that end the move well,
    and those that end it badly; the waiting itself is one loop for one
    server or for every server of an evacuated host.  Each round polls the
    servers (api.server_show) and their migrations (api.migration_show, by
    the id the first reply gave), pipelined, ZOVA_MOVE_POLL_MS apart
    (ZOVA_LIVE_POLL_MS for a live migration), and the round that sees the
    last move end is the last; a busy or restarting conductor is no verdict
    on a move.  One move shows
    its migration's status and phase, and the bytes copied when its hosts
    report them; a host's evacuation shows how many servers are done.

    Migration records are printed as they come with -f json; the tables
    show openstackclient's columns, flavors by name.  An evacuation says
    what it does to disks: on local storage a server is rebuilt from its
    image and what its disks held is lost, so the user is told before, and
    after --wait which of the two happened (the record's shared_storage). */

#include <czmq.h>
#include <jansson.h>

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zv_common.h"
#include "proto/zv_msg.h"
#include "cmd/zova/zova.h"

#define ZOVA_MOVE_POLL_MS       250
//  A live migration is one server, two small requests a round, and the
//  user waits on its end: the poll adds half its period to the move on
//  average (bench/livemove.sh: 25 ms, a few % of an idle 128 MiB guest's
//  move of about a second; 100 ms added 50).
#define ZOVA_LIVE_POLL_MS       50
#define ZOVA_MIB                (1024.0 * 1024.0)


//  ---------------------------------------------------------------------
//  Views: migration records

static const column_t s_migration_columns [] = {
    { "Id", "id" }, { "UUID", "uuid" },
    { "Source Host", "source_host" }, { "Dest Host", "dest_host" },
    { "Status", "status" }, { "Type", "kind" },
    { "Old Flavor", "old_flavor" }, { "New Flavor", "new_flavor" },
    { "Created At", "created_at" }, { "Updated At", "updated_at" },
    { NULL, NULL }
};

//  The cloud's migrations (no SERVER): which server each one moves.
static const column_t s_migration_all_columns [] = {
    { "Id", "id" }, { "UUID", "uuid" }, { "Server UUID", "instance_uuid" },
    { "Source Host", "source_host" }, { "Dest Host", "dest_host" },
    { "Status", "status" }, { "Type", "kind" },
    { "Old Flavor", "old_flavor" }, { "New Flavor", "new_flavor" },
    { "Created At", "created_at" }, { "Updated At", "updated_at" },
    { NULL, NULL }
};

const resource_t zv_cli_res_migration = {
    .name = "migration", .one = "migration", .many = "migrations",
    .columns = s_migration_columns
};

//  The servers of an evacuated host, one row each (built by
//  s_evacuated_rows).
static const column_t s_evacuated_columns [] = {
    { "Server ID", "server_id" }, { "Name", "name" },
    { "Migration ID", "migration_id" }, { "Status", "status" }, { "Reason", "reason" },
    { NULL, NULL }
};

static const char *
s_str (json_t *record, const char *key)
{
    return json_string_value (json_object_get (record, key));
}

//  A migration's id as text (an integer, or a string as given), into buf;
//  NULL when it has none.
static const char *
s_id_text (json_t *migration, char *buf, size_t size)
{
    json_t *id = json_object_get (migration, "id");
    if (json_is_integer (id))
        snprintf (buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value (id));
    else
    if (json_is_string (id) && *json_string_value (id))
        snprintf (buf, size, "%s", json_string_value (id));
    else
        return NULL;
    return buf;
}

//  "name (id)" of a server, into buf.
static const char *
s_server_label (json_t *server, char *buf, size_t size)
{
    const char *name = s_str (server, "name");
    const char *id = s_str (server, "id");
    if (name && id)
        snprintf (buf, size, "%s (%s)", name, id);
    else
        snprintf (buf, size, "%s", id ? id : name ? name : "?");
    return buf;
}

//  Migration records as a table (a flavor by its name) or, with -f json,
//  as they came.
static int
s_print_migrations (const cli_t *cli, json_t *records, const column_t *columns)
{
    if (cli->json)
        return zv_cli_print_json (records) ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
    json_t *rows = json_array ();
    if (!rows)
        zv_cli_out_of_memory ();
    size_t index;
    json_t *record;
    json_array_foreach (records, index, record) {
        json_t *row = json_copy (record);
        if (!row)
            zv_cli_out_of_memory ();
        const char *keys [] = { "old_flavor", "new_flavor" };
        for (size_t k = 0; k < sizeof keys / sizeof keys [0]; k++) {
            json_t *flavor = json_object_get (row, keys [k]);
            json_t *name = json_object_get (flavor, "name");
            if (json_is_object (flavor))
                json_object_set (row, keys [k], name ? name : json_object_get (flavor, "id"));
        }
        json_array_append_new (rows, row);
    }
    strbuf_t out = { 0 };
    zv_cli_buf_rows (&out, columns, rows);
    int rc = zv_cli_buf_write (&out);
    zv_cli_buf_free (&out);
    json_decref (rows);
    return rc ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
}


//  ---------------------------------------------------------------------
//  What ends each move

//  Statuses are "A|B" lists.  A failed migration ends the wait whatever
//  the server says; the server's ERROR does once nothing is in flight
//  (task_state None): an evacuation may start from ERROR.  A migration
//  that another request closed the other way (confirmed while this one
//  waits for reverted) ends the wait too, rather than the timeout.
typedef struct {
    const char *words;          //  the command
    bool live;                  //  server migrate --live-migration
    const char *noun;           //  "migration", in messages
    const char *goal;           //  what --wait waits for the server to do
    const char *server_done;    //  server statuses that end it well
    const char *done;           //  migration statuses that end it well
    const char *failed;         //  migration statuses that end it badly
    bool copies;                //  its progress is the bytes copied, when reported
} move_t;

static const move_t s_moves [] = {
    { "server migrate", false, "migration", "be migrated",
      "VERIFY_RESIZE", "finished", "error|failed|cancelled|confirmed|reverted", true },
    { "server migrate", true, "live migration", "be live-migrated",
      "ACTIVE|PAUSED", "completed|done", "error|failed|cancelled", true },
    { "server resize", false, "resize", "be resized",
      "VERIFY_RESIZE", "finished", "error|failed|cancelled|confirmed|reverted", true },
    { "server resize confirm", false, "resize confirmation", "have its move confirmed",
      "ACTIVE|SHUTOFF", "confirmed", "error|failed|cancelled|reverted", false },
    { "server resize revert", false, "resize revert", "be moved back",
      "ACTIVE|SHUTOFF", "reverted", "error|failed|cancelled|confirmed", false },
    { "server evacuate", false, "evacuation", "be evacuated",
      "ACTIVE|SHUTOFF", "done", "error|failed|cancelled", true },
    { "host evacuate", false, "evacuation", "be evacuated",
      "ACTIVE|SHUTOFF", "done", "error|failed|cancelled", true },
};

static const move_t *
s_move_of (const char *words, bool live)
{
    for (size_t i = 0; i < sizeof s_moves / sizeof s_moves [0]; i++)
        if (streq (s_moves [i].words, words) && s_moves [i].live == live)
            return &s_moves [i];
    return NULL;
}

//  Whether word is one of list ("A|B").
static bool
s_in (const char *list, const char *word)
{
    if (!word)
        return false;
    size_t len = strlen (word);
    while (*list) {
        size_t item = strcspn (list, "|");
        if (item == len && memcmp (list, word, len) == 0)
            return true;
        list += item;
        if (*list == '|')
            list++;
    }
    return false;
}


//  ---------------------------------------------------------------------
//  Waiting for moves to end

typedef struct {
    const move_t *move;
    json_t *servers;            //  latest record of each server
    json_t *migrations;         //  latest record of each migration
    wait_state_t *state;
    char **why;                 //  why a move failed
    size_t *round;              //  moves polled this round
    size_t nround;
    char *fatal;                //  first unexpected error of the round
} mover_t;

//  servers and migrations: the first reply's records, paired by index
//  (borrowed; replaced in place as the polls bring newer ones).
static void
s_mover_init (mover_t *self, const move_t *move, json_t *servers, json_t *migrations)
{
    size_t total = json_array_size (servers);
    assert (json_array_size (migrations) == total);
    memset (self, 0, sizeof *self);
    self->move = move;
    self->servers = servers;
    self->migrations = migrations;
    self->state = calloc (total + 1, sizeof (wait_state_t));
    self->why = calloc (total + 1, sizeof (char *));
    self->round = calloc (total + 1, sizeof (size_t));
    if (!self->state || !self->why || !self->round)
        zv_cli_out_of_memory ();
}

static void
s_mover_free (mover_t *self)
{
    for (size_t i = 0; i < json_array_size (self->servers); i++)
        free (self->why [i]);
    free (self->why);
    free (self->state);
    free (self->round);
    free (self->fatal);
}

static void
s_mover_failed (mover_t *self, size_t which, const char *why)
{
    self->state [which] = WAIT_FAILED;
    free (self->why [which]);
    self->why [which] = strdup (why);
    if (!self->why [which])
        zv_cli_out_of_memory ();
}

static json_t *
s_server_make (void *ctx, size_t idx)
{
    mover_t *self = ctx;
    json_t *server = json_array_get (self->servers, self->round [idx]);
    return zv_cli_body_str ("ref", s_str (server, "id"));
}

static json_t *
s_migration_make (void *ctx, size_t idx)
{
    mover_t *self = ctx;
    size_t which = self->round [idx];
    char id [64];
    json_t *body = json_pack ("{s:s, s:s}",
                              "ref", s_str (json_array_get (self->servers, which), "id"),
                              "id", s_id_text (json_array_get (self->migrations, which), id, sizeof id));
    if (!body)
        zv_cli_out_of_memory ();
    return body;
}

//  One poll's reply: the newer record under key replaces the one in into.
static void
s_mover_reply (mover_t *self, size_t which, zv_msg_t *reply, const char *key, json_t *into)
{
    zv_status_t status = zv_msg_status (reply);
    const char *text = zv_msg_error_text (reply);
    if (status == ZV_OK) {
        json_t *record = json_object_get (zv_msg_body (reply), key);
        if (json_is_object (record))
            json_array_set (into, which, record);
        else
        if (!self->fatal && asprintf (&self->fatal, "malformed reply to api.%s_show: no '%s' record",
                                      key, key) < 0)
            zv_cli_out_of_memory ();
    }
    else
    if (status == ZV_ENOTFOUND)
        s_mover_failed (self, which, *text ? text : "it no longer exists");
    else
    //  A busy or restarting conductor is not a verdict on the move.
    if (status == ZV_ETIMEOUT || status == ZV_EUNAVAILABLE)
        ;
    else
    if (!self->fatal && !(self->fatal = strdup (*text ? text : zv_status_name (status))))
        zv_cli_out_of_memory ();
}

static void
s_server_reply (void *ctx, size_t idx, zv_msg_t *reply)
{
    mover_t *self = ctx;
    s_mover_reply (self, self->round [idx], reply, "server", self->servers);
}

static void
s_migration_reply (void *ctx, size_t idx, zv_msg_t *reply)
{
    mover_t *self = ctx;
    s_mover_reply (self, self->round [idx], reply, "migration", self->migrations);
}

//  Whether move which has ended, by its latest records.
static void
s_mover_judge (mover_t *self, size_t which)
{
    if (self->state [which] != WAIT_PENDING)
        return;
    json_t *server = json_array_get (self->servers, which);
    json_t *migration = json_array_get (self->migrations, which);
    const char *status = s_str (server, "status");
    const char *mstatus = s_str (migration, "status");
    json_t *task = json_object_get (server, "task_state");
    if (s_in (self->move->failed, mstatus)) {
        const char *error = s_str (migration, "error");
        char id [64], why [512];
        if (!error || !*error) {
            snprintf (why, sizeof why, "migration %s ended %s",
                      s_id_text (migration, id, sizeof id), mstatus);
            error = why;
        }
        s_mover_failed (self, which, error);
    }
    else
    if (status && streq (status, "ERROR") && (!task || json_is_null (task))) {
        const char *fault = s_str (json_object_get (server, "fault"), "message");
        if (!fault)
            fault = s_str (migration, "error");
        s_mover_failed (self, which, fault && *fault ? fault : "the server is ERROR, no fault recorded");
    }
    else
    if (s_in (self->move->server_done, status) && s_in (self->move->done, mstatus))
        self->state [which] = WAIT_DONE;
}

//  One move's progress: the migration's status and phase, and the bytes
//  copied when its hosts report them (a confirm or a revert copies
//  nothing: the figures its record keeps are the move's before).
static void
s_mover_draw_one (progress_t *progress, const move_t *move, json_t *server, json_t *migration)
{
    char milestone [768], detail [256] = "";
    const char *name = s_str (server, "name");
    const char *status = s_str (migration, "status");
    const char *phase = s_str (migration, "phase");
    snprintf (milestone, sizeof milestone, "%s: %s%s%s%s",
              name ? name : s_str (server, "id"), status ? status : "?",
              phase ? " (phase " : "", phase ? phase : "", phase ? ")" : "");
    json_int_t total = move->copies ? json_integer_value (json_object_get (migration, "bytes_total")) : 0;
    json_int_t copied = json_integer_value (json_object_get (migration, "bytes_copied"));
    int percent = -1;
    //  A live migration's job: memory and disk processed of their totals,
    //  the transfer and dirty rates, the pass, the downtime allowed now.
    json_int_t memory_total = json_integer_value (json_object_get (migration, "memory_total_bytes"));
    json_int_t disk_total = json_integer_value (json_object_get (migration, "disk_total_bytes"));
    if (move->live && memory_total + disk_total > 0) {
        json_int_t memory = json_integer_value (json_object_get (migration, "memory_processed_bytes"));
        json_int_t disk = json_integer_value (json_object_get (migration, "disk_processed_bytes"));
        json_int_t remaining = json_integer_value (json_object_get (migration, "memory_remaining_bytes"))
                             + json_integer_value (json_object_get (migration, "disk_remaining_bytes"));
        json_int_t all = memory_total + disk_total;
        percent = (int) ((double) (all - (remaining < all ? remaining : all)) * 100.0 / (double) all);
        snprintf (detail, sizeof detail, ", memory %.0f/%.0f MiB%s%.0f/%.0f MiB, %.1f MiB/s, dirty %lld pages/s,"
                  " pass %lld, downtime %lld ms%s", (double) memory / ZOVA_MIB, (double) memory_total / ZOVA_MIB,
                  disk_total > 0 ? ", disk " : "", disk_total > 0 ? (double) disk / ZOVA_MIB : 0.0,
                  disk_total > 0 ? (double) disk_total / ZOVA_MIB : 0.0,
                  (double) json_integer_value (json_object_get (migration, "memory_bps")) / ZOVA_MIB,
                  (long long) json_integer_value (json_object_get (migration, "dirty_rate")),
                  (long long) json_integer_value (json_object_get (migration, "iteration")),
                  (long long) json_integer_value (json_object_get (migration, "downtime_ms")),
                  json_is_true (json_object_get (migration, "postcopy")) ? ", post-copy" : "");
    }
    else
    if (total > 0) {
        copied = copied < 0 ? 0 : copied > total ? total : copied;
        percent = (int) ((double) copied * 100.0 / (double) total);
        snprintf (detail, sizeof detail, ", %.1f of %.1f MiB copied",
                  (double) copied / ZOVA_MIB, (double) total / ZOVA_MIB);
    }
    zv_cli_progress_step (progress, percent, milestone, detail);
}

//  Polls every move until each ends or wait_s seconds pass, drawing
//  progress.  0 when all ended, 1 on timeout, -1 (reported).
static int
s_mover_wait (cli_t *cli, mover_t *self, int64_t wait_s)
{
    size_t total = json_array_size (self->servers);
    progress_t progress = { .tty = cli->stderr_tty };
    int64_t give_up = zv_mono_ms () + wait_s * 1000;
    int rc = 0;
    while (true) {
        size_t done = 0, failed = 0;
        self->nround = 0;
        for (size_t i = 0; i < total; i++) {
            switch (self->state [i]) {
                case WAIT_DONE:
                    done++;
                    break;
                case WAIT_FAILED:
                    failed++;
                    break;
                case WAIT_PENDING:
                    self->round [self->nround++] = i;
                    break;
                case WAIT_STATE_COUNT:
                    assert (false);
                    break;
            }
        }
        if (total == 1)
            s_mover_draw_one (&progress, self->move, json_array_get (self->servers, 0),
                              json_array_get (self->migrations, 0));
        else
            zv_cli_progress_draw (&progress, done, done + failed, total, "servers evacuated", failed);
        if (self->nround == 0)
            break;
        int64_t round_start = zv_mono_ms ();
        if (round_start >= give_up) {
            rc = 1;
            break;
        }
        if (zv_cli_batch (cli, "api.server_show", self->nround, s_server_make, s_server_reply, self)
        ||  zv_cli_batch (cli, "api.migration_show", self->nround,
                          s_migration_make, s_migration_reply, self)) {
            rc = -1;
            break;
        }
        if (self->fatal) {
            zv_cli_progress_end (&progress);
            zv_cli_fail ("%s", self->fatal);
            rc = -1;
            break;
        }
        size_t pending = 0;
        for (size_t i = 0; i < self->nround; i++) {
            s_mover_judge (self, self->round [i]);
            if (self->state [self->round [i]] == WAIT_PENDING)
                pending++;
        }
        if (pending)
            zv_cli_idle (cli, round_start + (self->move->live ? ZOVA_LIVE_POLL_MS : ZOVA_MOVE_POLL_MS));
    }
    zv_cli_progress_end (&progress);
    return rc;
}

//  What --wait cannot do without: a server id and a migration id.
static bool
s_can_wait (json_t *server, json_t *migration, const char *type)
{
    char id [64];
    if (json_is_string (json_object_get (server, "id")) && s_id_text (migration, id, sizeof id))
        return true;
    zv_cli_fail ("malformed reply to %s: a move without a server id or a migration id", type);
    return false;
}


//  ---------------------------------------------------------------------
//  What an evacuation does to disks

static void
s_evacuate_note (const char *what)
{
    fprintf (stderr, "note: on local storage %s rebuilt from its image, and the data on its"
             " disks is lost; on shared storage its disks are reused\n", what);
}

//  After --wait: which of the two happened to one server.
static void
s_evacuate_outcome (json_t *server, json_t *migration)
{
    char label [512];
    const char *host = s_str (migration, "dest_host");
    if (!host)
        host = s_str (server, "host");
    json_t *shared = json_object_get (migration, "shared_storage");
    fprintf (stderr, "server %s: evacuated to %s; %s\n", s_server_label (server, label, sizeof label),
             host ? host : "another host",
             json_is_true (shared) ? "its disks were on shared storage and were reused"
             : json_is_false (shared) ? "rebuilt from its image (local storage): the data on its"
                                        " disks is lost"
             : "whether its disks were reused is not known");
}


//  ---------------------------------------------------------------------
//  server migrate, resize, resize confirm, resize revert, evacuate

//  The server as server show prints it, with the id of its migration.
static int
s_print_moved (cli_t *cli, json_t *server, json_t *migration)
{
    json_t *shown = json_copy (server);
    if (!shown)
        zv_cli_out_of_memory ();
    json_t *id = json_object_get (migration, "id");
    json_object_set (shown, "migration_id", id ? id : json_null ());
    int rc = zv_cli_print_show (cli, &zv_cli_res_server, shown);
    json_decref (shown);
    return rc;
}

//  The body of a move: the options' fields, the server, and what
//  --live-migration, --block-migration and --shared-migration ask.
static json_t *
s_move_body (cli_t *cli, bool live)
{
    json_t *body = zv_cli_body_from_opts (cli);
    json_object_set_new (body, "ref", json_string (cli->args [0]));
    if (live)
        json_object_set_new (body, "live", json_true ());
    if (zv_cli_opt_flag (cli, "block-migration"))
        json_object_set_new (body, "block_migration", json_true ());
    if (zv_cli_opt_flag (cli, "shared-migration"))
        json_object_set_new (body, "block_migration", json_false ());
    return body;
}

int
zv_cli_cmd_server_move (cli_t *cli)
{
    bool live = zv_cli_opt_flag (cli, "live-migration");
    bool block = zv_cli_opt_flag (cli, "block-migration");
    bool shared = zv_cli_opt_flag (cli, "shared-migration");
    if (block && shared)
        return zv_cli_usage_error (cli, "--block-migration and --shared-migration exclude each other");
    if ((block || shared) && !live)
        return zv_cli_usage_error (cli, "--%s is for --live-migration",
                                   block ? "block-migration" : "shared-migration");
    const move_t *move = s_move_of (cli->cmd->words, live);
    assert (move);
    bool evacuate = streq (cli->cmd->words, "server evacuate");

    json_t *reply = zv_cli_call (cli, cli->cmd->type, s_move_body (cli, live));
    if (!reply)
        return ZOVA_EXIT_FAIL;
    int rc = ZOVA_EXIT_FAIL;
    json_t *server = zv_cli_reply_member (reply, "server", false, cli->cmd->type);
    json_t *migration = server ? zv_cli_reply_member (reply, "migration", false, cli->cmd->type) : NULL;
    if (!migration)
        goto cleanup;
    char label [512], id [64];
    if (!zv_cli_opt_flag (cli, "wait")) {
        if (evacuate)
            s_evacuate_note ("the server is");
        rc = s_print_moved (cli, server, migration);
        goto cleanup;
    }
    if (!s_can_wait (server, migration, cli->cmd->type))
        goto cleanup;

    json_t *servers = json_pack ("[O]", server);
    json_t *migrations = json_pack ("[O]", migration);
    if (!servers || !migrations)
        zv_cli_out_of_memory ();
    mover_t mover;
    s_mover_init (&mover, move, servers, migrations);
    int64_t wait_s = zv_cli_opt_int (cli, "wait-timeout", ZOVA_DEFAULT_WAIT_S);
    int waited = s_mover_wait (cli, &mover, wait_s);
    server = json_array_get (servers, 0);
    migration = json_array_get (migrations, 0);
    s_server_label (server, label, sizeof label);
    if (waited == 1) {
        const char *status = s_str (migration, "status");
        const char *phase = s_str (migration, "phase");
        zv_cli_fail ("timed out after %" PRId64 " s waiting for server %s to %s"
                     " (migration %s: %s%s%s)", wait_s, label, move->goal,
                     s_id_text (migration, id, sizeof id), status ? status : "?",
                     phase ? ", phase " : "", phase ? phase : "");
    }
    else
    if (waited == 0 && mover.state [0] == WAIT_FAILED)
        zv_cli_fail ("server %s: %s failed: %s", label, move->noun, mover.why [0]);
    else
    if (waited == 0) {
        if (evacuate)
            s_evacuate_outcome (server, migration);
        rc = s_print_moved (cli, server, migration);
    }
    s_mover_free (&mover);
    json_decref (servers);
    json_decref (migrations);
cleanup:
    json_decref (reply);
    return rc;
}


//  ---------------------------------------------------------------------
//  host evacuate

//  One row per server of the host: those moving (with why one failed),
//  then those refused.
static json_t *
s_evacuated_rows (json_t *moving, json_t *refused, const mover_t *mover)
{
    json_t *rows = json_array ();
    if (!rows)
        zv_cli_out_of_memory ();
    size_t index;
    json_t *item;
    json_array_foreach (moving, index, item) {
        json_t *server = json_object_get (item, "server");
        json_t *migration = json_object_get (item, "migration");
        json_t *row = json_pack ("{s:O?, s:O?, s:O?, s:O?}",
                                 "server_id", json_object_get (server, "id"),
                                 "name", json_object_get (server, "name"),
                                 "migration_id", json_object_get (migration, "id"),
                                 "status", json_object_get (migration, "status"));
        if (!row)
            zv_cli_out_of_memory ();
        if (mover && mover->why [index])
            json_object_set_new (row, "reason", json_string (mover->why [index]));
        json_array_append_new (rows, row);
    }
    json_array_foreach (refused, index, item) {
        json_t *server = json_object_get (item, "server");
        json_t *row = json_pack ("{s:O?, s:O?, s:n, s:s, s:O?}",
                                 "server_id", json_object_get (server, "id"),
                                 "name", json_object_get (server, "name"),
                                 "migration_id", "status", "refused",
                                 "reason", json_object_get (item, "reason"));
        if (!row)
            zv_cli_out_of_memory ();
        json_array_append_new (rows, row);
    }
    return rows;
}

//  host evacuate [--target HOST] [--wait] SOURCE_HOST: the servers being
//  moved and those refused; with --wait, how each move ended.  Any server
//  refused or failed makes the exit status 1.
int
zv_cli_cmd_host_evacuate (cli_t *cli)
{
    const char *host = cli->args [0];
    json_t *body = zv_cli_body_from_opts (cli);
    json_object_set_new (body, "host", json_string (host));
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    int rc = ZOVA_EXIT_FAIL;
    json_t *servers = NULL, *migrations = NULL;
    mover_t mover = { 0 };
    int waited = 0;
    json_t *moving = zv_cli_reply_member (reply, "migrations", true, cli->cmd->type);
    if (!moving)
        goto cleanup;
    json_t *refused = json_object_get (reply, "refused");
    if (!json_is_array (refused)) {
        refused = json_array ();
        json_object_set_new (reply, "refused", refused);
    }
    size_t nmoving = json_array_size (moving);
    size_t nrefused = json_array_size (refused);
    size_t index;
    json_t *item;
    bool waiting = zv_cli_opt_flag (cli, "wait") && nmoving;
    int64_t wait_s = zv_cli_opt_int (cli, "wait-timeout", ZOVA_DEFAULT_WAIT_S);
    if (waiting) {
        servers = json_array ();
        migrations = json_array ();
        if (!servers || !migrations)
            zv_cli_out_of_memory ();
        json_array_foreach (moving, index, item) {
            json_t *server = json_object_get (item, "server");
            json_t *migration = json_object_get (item, "migration");
            if (!s_can_wait (server, migration, cli->cmd->type))
                goto cleanup;
            json_array_append (servers, server);
            json_array_append (migrations, migration);
        }
        s_mover_init (&mover, s_move_of (cli->cmd->words, false), servers, migrations);
        waited = s_mover_wait (cli, &mover, wait_s);
        if (waited < 0)
            goto cleanup;
        //  The reply as it came, but for the migrations' latest records.
        json_array_foreach (moving, index, item)
            json_object_set (item, "migration", json_array_get (migrations, index));
    }
    else
    if (nmoving)
        s_evacuate_note ("each server is");

    if (cli->json)
        rc = zv_cli_print_json (reply) ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
    else {
        json_t *rows = s_evacuated_rows (moving, refused, waiting ? &mover : NULL);
        strbuf_t out = { 0 };
        zv_cli_buf_rows (&out, s_evacuated_columns, rows);
        rc = zv_cli_buf_write (&out) ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
        zv_cli_buf_free (&out);
        json_decref (rows);
    }

    if (waiting) {
        size_t left = 0, rebuilt = 0;
        char label [512];
        for (size_t i = 0; i < nmoving; i++) {
            json_t *server = json_array_get (servers, i);
            json_t *migration = json_array_get (migrations, i);
            if (mover.state [i] == WAIT_PENDING)
                left++;
            else
            if (mover.state [i] == WAIT_FAILED) {
                zv_cli_fail ("server %s: evacuation failed: %s",
                             s_server_label (server, label, sizeof label), mover.why [i]);
                rc = ZOVA_EXIT_FAIL;
            }
            else
            if (!json_is_true (json_object_get (migration, "shared_storage")))
                rebuilt++;
        }
        if (rebuilt)
            fprintf (stderr, "note: %zu of %zu servers were rebuilt from their image (local storage"
                     " or not known): the data on their disks is lost\n", rebuilt, nmoving);
        if (waited == 1) {
            zv_cli_fail ("timed out after %" PRId64 " s waiting for %zu of %zu servers to be evacuated",
                         wait_s, left, nmoving);
            rc = ZOVA_EXIT_FAIL;
        }
    }
    if (nrefused) {
        zv_cli_fail ("%zu of %zu servers on %s were refused", nrefused, nmoving + nrefused, host);
        rc = ZOVA_EXIT_FAIL;
    }
cleanup:
    if (servers)
        s_mover_free (&mover);
    json_decref (servers);
    json_decref (migrations);
    json_decref (reply);
    return rc;
}


//  ---------------------------------------------------------------------
//  Migration records

//  server migration list SERVER, migration list [--host] [--status]
//  [--kind]: the options fill the request, SERVER its ref.
int
zv_cli_cmd_migration_list (cli_t *cli)
{
    json_t *body = zv_cli_body_from_opts (cli);
    if (cli->nargs)
        json_object_set_new (body, "ref", json_string (cli->args [0]));
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *records = zv_cli_reply_member (reply, "migrations", true, cli->cmd->type);
    int rc = records ? s_print_migrations (cli, records,
                                           cli->nargs ? s_migration_columns : s_migration_all_columns)
                     : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  server migration abort SERVER ID, server migration force complete
//  SERVER ID: what a running live migration's job is to do.
int
zv_cli_cmd_migration_control (cli_t *cli)
{
    json_t *body = json_pack ("{s:s, s:s}", "ref", cli->args [0], "id", cli->args [1]);
    if (!body)
        zv_cli_out_of_memory ();
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_decref (reply);
    bool abort = streq (cli->cmd->type, "api.migration_abort");
    if (!cli->json)
        printf ("migration %s of server %s: %s\n", cli->args [1], cli->args [0],
                abort ? "abort requested (the guest stays on its source)"
                      : "completion forced (post-copy if permitted, else the guest pauses until it converges)");
    else
        printf ("{}\n");
    return ZOVA_EXIT_OK;
}

//  server migration show SERVER ID
int
zv_cli_cmd_migration_show (cli_t *cli)
{
    json_t *body = json_pack ("{s:s, s:s}", "ref", cli->args [0], "id", cli->args [1]);
    if (!body)
        zv_cli_out_of_memory ();
    return zv_cli_call_show (cli, body);
}
