/*  zv_fakemoves: a stand-in api that answers the move requests of the
    zova CLI with scripted moves, so that the CLI's side of moves (what it
    sends, --wait, progress, exit statuses, tables and JSON) is tested
    apart from the conductor's.

        zv_fakemoves ENDPOINT

    Design.  One ROUTER bound at ENDPOINT, one message at a time, until
    SIGTERM.  Every request is logged on stdout as one line, "TYPE BODY"
    (BODY compact JSON, keys sorted), so a test can check what was sent.
    Servers are made on first mention, by name or id; a move request gives
    its server a timeline, a list of steps (server status and task_state,
    migration status, phase, bytes, error, ...), and answers {server,
    migration} at its first step; each api.server_show of that server moves
    it one step on (api.migration_show shows the step the server is at), so
    the CLI's rounds walk the timeline and stay on its last step.  What a
    move does is said by its server's name:

        ...bad...     the migration ends in error, with its error text
        ...err...     the server goes ERROR with a fault, the migration
                      stays where it was
        ...slow...    the move never ends
        ...shared...  an evacuation finds shared storage (others: local)
        otherwise     the move succeeds; a migrate or resize copies 4 MiB

    api.host_evacuate of HOST moves HOST-shared and HOST-local and refuses
    HOST-refused.  api.migration_list lists the migrations of ref (or all),
    newest first; api.migration_show finds one by ref and id.  Anything
    else is refused with "not served by the fake".                        */

#include "common/zv_common.h"
#include "proto/zv_msg.h"

#include <czmq.h>
#include <jansson.h>

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_SERVERS   64
#define S_MAX_STEPS     8
#define S_MIB           (1024 * 1024)

//  One step of a timeline; NULL strings leave the record's value alone
//  (status and task_state are always set).
typedef struct {
    const char *status;
    const char *task_state;             //  "" for None
    const char *mstatus;
    const char *phase;
    json_int_t bytes_copied;            //  with bytes_total; -1: not reported
    json_int_t bytes_total;
    const char *error;
    const char *fault;
    int shared;                         //  -1: not known; 0, 1
    bool dest;                          //  the destination is chosen
} step_t;

typedef struct {
    char name [128];
    char id [64];
    const step_t *steps;
    size_t nsteps;
    size_t at;
    json_t *migration;                  //  the current move's record, or NULL
} server_t;

static server_t s_servers [S_MAX_SERVERS];
static size_t s_nservers;
static json_t *s_migrations;            //  every record, oldest first
static json_int_t s_next_id = 1;

//  Timelines.  The first step is what the move's own reply shows.
static const step_t s_cold_ok [] = {
    { "RESIZE", "resize_prep", "pre-migrating", "schedule", -1, -1, NULL, NULL, -1, false },
    { "RESIZE", "resize_migrating", "migrating", "source", -1, -1, NULL, NULL, -1, true },
    { "RESIZE", "resize_migrated", "post-migrating", "finish", 0, 4 * S_MIB, NULL, NULL, 0, true },
    { "RESIZE", "resize_finish", "post-migrating", "finish", 2 * S_MIB, 4 * S_MIB, NULL, NULL, 0, true },
    { "RESIZE", "resize_finish", "post-migrating", "finish", 4 * S_MIB, 4 * S_MIB, NULL, NULL, 0, true },
    { "VERIFY_RESIZE", "", "finished", "verify", 4 * S_MIB, 4 * S_MIB, NULL, NULL, 0, true },
};
static const step_t s_cold_bad [] = {
    { "RESIZE", "resize_prep", "pre-migrating", "schedule", -1, -1, NULL, NULL, -1, false },
    { "ACTIVE", "", "error", "abort", -1, -1,
      "No valid host was found. There are not enough hosts available.", NULL, -1, false },
};
static const step_t s_cold_err [] = {
    { "RESIZE", "resize_prep", "pre-migrating", "schedule", -1, -1, NULL, NULL, -1, false },
    { "RESIZE", "resize_migrating", "migrating", "source", -1, -1, NULL, NULL, -1, true },
    { "ERROR", "", "migrating", "source", -1, -1, NULL, "Disk copy failed: checksum mismatch", -1, true },
};
static const step_t s_slow [] = {
    { "RESIZE", "resize_prep", "pre-migrating", "schedule", -1, -1, NULL, NULL, -1, false },
};
static const step_t s_confirm_ok [] = {
    { "VERIFY_RESIZE", "resize_confirming", "confirming", "confirm", -1, -1, NULL, NULL, -1, true },
    { "ACTIVE", "", "confirmed", "confirm", -1, -1, NULL, NULL, -1, true },
};
static const step_t s_revert_ok [] = {
    { "REVERT_RESIZE", "resize_reverting", "reverting", "revert", -1, -1, NULL, NULL, -1, true },
    { "REVERT_RESIZE", "resize_reverting", "reverting", "revert_source", -1, -1, NULL, NULL, -1, true },
    { "SHUTOFF", "", "reverted", "revert_source", -1, -1, NULL, NULL, -1, true },
};
static const step_t s_evacuate_local [] = {
    { "REBUILD", "rebuilding", "accepted", "schedule", -1, -1, NULL, NULL, -1, false },
    { "REBUILD", "rebuild_spawning", "pre-migrating", "rebuild", -1, -1, NULL, NULL, 0, true },
    { "ACTIVE", "", "done", "rebuild", -1, -1, NULL, NULL, 0, true },
};
static const step_t s_evacuate_shared [] = {
    { "REBUILD", "rebuilding", "accepted", "schedule", -1, -1, NULL, NULL, -1, false },
    { "ACTIVE", "", "done", "rebuild", -1, -1, NULL, NULL, 1, true },
};
static const step_t s_evacuate_bad [] = {
    { "REBUILD", "rebuilding", "accepted", "schedule", -1, -1, NULL, NULL, -1, false },
    { "ERROR", "", "failed", "rebuild", -1, -1, "Build of the instance failed on dst: no image",
      "Build of the instance failed on dst: no image", -1, true },
};

static server_t *
s_server (const char *ref)
{
    for (size_t i = 0; i < s_nservers; i++)
        if (streq (s_servers [i].name, ref) || streq (s_servers [i].id, ref))
            return &s_servers [i];
    if (s_nservers == S_MAX_SERVERS)
        return NULL;
    server_t *server = &s_servers [s_nservers++];
    snprintf (server->name, sizeof server->name, "%s", ref);
    snprintf (server->id, sizeof server->id, "00000000-0000-4000-8000-%012zu", s_nservers);
    return server;
}

static const step_t *
s_step (const server_t *server)
{
    return server->steps ? &server->steps [server->at] : NULL;
}

static json_t *
s_server_view (const server_t *server)
{
    const step_t *step = s_step (server);
    json_t *view = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}}",
                              "id", server->id, "name", server->name,
                              "status", step ? step->status : "ACTIVE",
                              "vm_state", "active", "power_state", "running",
                              "flavor", "id", "f1", "name", "m1",
                              "image", "id", "i1", "name", "img");
    json_object_set_new (view, "task_state", step && *step->task_state
                                             ? json_string (step->task_state) : json_null ());
    json_object_set_new (view, "host", json_string (step && step->dest ? "dst" : "src"));
    if (step && step->fault)
        json_object_set_new (view, "fault", json_pack ("{s:s, s:i}", "message", step->fault, "code", 500));
    return view;
}

//  The migration record as the server's step has it.
static void
s_migration_update (server_t *server)
{
    const step_t *step = s_step (server);
    json_t *record = server->migration;
    json_object_set_new (record, "status", json_string (step->mstatus));
    json_object_set_new (record, "phase", json_string (step->phase));
    if (step->dest && json_is_null (json_object_get (record, "dest_host"))) {
        json_object_set_new (record, "dest_host", json_string ("dst"));
        json_object_set_new (record, "dest_node", json_string ("dst"));
    }
    if (step->bytes_total >= 0) {
        json_object_set_new (record, "bytes_total", json_integer (step->bytes_total));
        json_object_set_new (record, "bytes_copied", json_integer (step->bytes_copied));
    }
    if (step->shared >= 0)
        json_object_set_new (record, "shared_storage", json_boolean (step->shared));
    if (step->error)
        json_object_set_new (record, "error", json_string (step->error));
    json_object_set_new (record, "updated_at", json_string ("2026-01-01T00:00:01Z"));
}

//  Start a move of kind on server, with the timeline its name asks for.
static json_t *
s_move (server_t *server, const char *type, const char *flavor, const char *host)
{
    const char *kind = "migration";
    if (streq (type, "api.server_resize"))
        kind = "resize";
    else
    if (streq (type, "api.server_evacuate") || streq (type, "api.host_evacuate"))
        kind = "evacuation";
    bool bad = strstr (server->name, "bad") != NULL;
    bool err = strstr (server->name, "err") != NULL;
    bool slow = strstr (server->name, "slow") != NULL;
    bool opens = true;
    if (slow) {
        server->steps = s_slow;
        server->nsteps = 1;
    }
    else
    if (streq (type, "api.server_resize_confirm") || streq (type, "api.server_resize_revert")) {
        opens = false;
        if (!server->migration)
            return NULL;
        if (streq (type, "api.server_resize_confirm")) {
            server->steps = s_confirm_ok;
            server->nsteps = sizeof s_confirm_ok / sizeof s_confirm_ok [0];
        }
        else {
            server->steps = s_revert_ok;
            server->nsteps = sizeof s_revert_ok / sizeof s_revert_ok [0];
        }
    }
    else
    if (streq (kind, "evacuation")) {
        if (bad) {
            server->steps = s_evacuate_bad;
            server->nsteps = sizeof s_evacuate_bad / sizeof s_evacuate_bad [0];
        }
        else
        if (strstr (server->name, "shared")) {
            server->steps = s_evacuate_shared;
            server->nsteps = sizeof s_evacuate_shared / sizeof s_evacuate_shared [0];
        }
        else {
            server->steps = s_evacuate_local;
            server->nsteps = sizeof s_evacuate_local / sizeof s_evacuate_local [0];
        }
    }
    else
    if (bad) {
        server->steps = s_cold_bad;
        server->nsteps = sizeof s_cold_bad / sizeof s_cold_bad [0];
    }
    else
    if (err) {
        server->steps = s_cold_err;
        server->nsteps = sizeof s_cold_err / sizeof s_cold_err [0];
    }
    else {
        server->steps = s_cold_ok;
        server->nsteps = sizeof s_cold_ok / sizeof s_cold_ok [0];
    }
    server->at = 0;
    if (opens) {
        char uuid [64];
        snprintf (uuid, sizeof uuid, "11111111-0000-4000-8000-%012lld", (long long) s_next_id);
        json_decref (server->migration);
        server->migration = json_pack ("{s:I, s:s, s:s, s:s, s:s, s:n, s:s, s:n,"
                                       " s:{s:s, s:s, s:i, s:i, s:i}, s:{s:s, s:s, s:i, s:i, s:i},"
                                       " s:s, s:s, s:n}",
                                       "id", s_next_id++, "uuid", uuid, "instance_uuid", server->id,
                                       "kind", kind, "source_host", "src", "dest_host",
                                       "source_node", "src", "dest_node",
                                       "old_flavor", "id", "f1", "name", "m1", "vcpus", 1,
                                       "ram_mb", 64, "disk_gb", 1,
                                       "new_flavor", "id", flavor ? "f2" : "f1", "name",
                                       flavor ? flavor : "m1", "vcpus", 1, "ram_mb", 128, "disk_gb", 1,
                                       "created_at", "2026-01-01T00:00:00Z",
                                       "updated_at", "2026-01-01T00:00:00Z", "error");
        if (host)
            json_object_set_new (server->migration, "dest_host", json_string (host));
        json_array_append (s_migrations, server->migration);
    }
    s_migration_update (server);
    return json_pack ("{s:o, s:O}", "server", s_server_view (server), "migration", server->migration);
}

static zv_msg_t *
s_answer (zv_msg_t *request)
{
    const char *type = zv_msg_type (request);
    const char *ref = zv_msg_get_str (request, "ref");
    server_t *server = ref ? s_server (ref) : NULL;
    if (ref && !server)
        return zv_msg_error (request, ZV_ENOMEM, "too many servers");
    json_t *body = NULL;
    if (streq (type, "api.ping"))
        body = json_object ();
    else
    if (streq (type, "api.server_show")) {
        if (server->steps && server->at + 1 < server->nsteps) {
            server->at++;
            s_migration_update (server);
        }
        body = json_pack ("{s:o}", "server", s_server_view (server));
    }
    else
    if (streq (type, "api.migration_show")) {
        const char *id = zv_msg_get_str (request, "id");
        size_t index;
        json_t *record;
        json_array_foreach (s_migrations, index, record) {
            char text [32];
            snprintf (text, sizeof text, "%lld", (long long) json_integer_value (json_object_get (record, "id")));
            if (streq (text, id) && streq (json_string_value (json_object_get (record, "instance_uuid")),
                                           server->id))
                body = json_pack ("{s:O}", "migration", record);
        }
        if (!body)
            return zv_msg_error (request, ZV_ENOTFOUND, "Migration %s for server %s could not be found.",
                                 id, ref);
    }
    else
    if (streq (type, "api.migration_list")) {
        json_t *list = json_array ();
        for (size_t i = json_array_size (s_migrations); i-- > 0;) {
            json_t *record = json_array_get (s_migrations, i);
            if (!server || streq (json_string_value (json_object_get (record, "instance_uuid")), server->id))
                json_array_append (list, record);
        }
        body = json_pack ("{s:o}", "migrations", list);
    }
    else
    if (streq (type, "api.host_evacuate")) {
        const char *host = zv_msg_get_str (request, "host");
        const char *target = zv_msg_get_str (request, "target");
        json_t *moving = json_array ();
        const char *names [] = { "shared", "local" };
        for (size_t i = 0; i < 2; i++) {
            char name [128];
            snprintf (name, sizeof name, "%s-%s", host, names [i]);
            server_t *one = s_server (name);
            json_t *moved = one ? s_move (one, type, NULL, target) : NULL;
            if (moved) {
                json_object_set_new (moved, "server", json_pack ("{s:s, s:s}", "id", one->id, "name", one->name));
                json_array_append_new (moving, moved);
            }
        }
        char name [128];
        snprintf (name, sizeof name, "%s-refused", host);
        server_t *refused = s_server (name);
        body = json_pack ("{s:o, s:[{s:{s:s, s:s}, s:s}]}", "migrations", moving, "refused",
                          "server", "id", refused ? refused->id : "?", "name", name,
                          "reason", "Cannot 'evacuate' instance while it is in task_state migrating");
    }
    else
    if (streq (type, "api.server_migrate") || streq (type, "api.server_resize")
    ||  streq (type, "api.server_resize_confirm") || streq (type, "api.server_resize_revert")
    ||  streq (type, "api.server_evacuate")) {
        body = s_move (server, type, zv_msg_get_str (request, "flavor"), zv_msg_get_str (request, "host"));
        if (!body)
            return zv_msg_error (request, ZV_ECONFLICT, "Instance %s has no migration to confirm or revert.",
                                 server->id);
    }
    else
        return zv_msg_error (request, ZV_EINVAL, "message type '%s' is not served by the fake", type);
    zv_msg_t *reply = zv_msg_reply (request);
    zv_msg_set_body (reply, &body);
    return reply;
}

int
main (int argc, char *argv [])
{
    if (argc != 2) {
        fprintf (stderr, "usage: zv_fakemoves ENDPOINT\n");
        return 2;
    }
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (!router || zsock_bind (router, "%s", argv [1]) < 0) {
        fprintf (stderr, "zv_fakemoves: cannot bind %s\n", argv [1]);
        zsock_destroy (&router);
        return 1;
    }
    s_migrations = json_array ();
    zpoller_t *poller = zpoller_new (router, NULL);
    while (!zsys_interrupted) {
        if (!zpoller_wait (poller, 200))
            continue;
        zv_msg_t *request = zv_msg_recv (router);
        if (!request)
            continue;
        zv_msg_t *reply;
        if (zv_msg_status (request) != ZV_OK)
            reply = zv_msg_error (request, zv_msg_status (request), "%s", zv_msg_error_text (request));
        else {
            char *text = json_dumps (zv_msg_body (request), JSON_COMPACT | JSON_SORT_KEYS);
            printf ("%s %s\n", zv_msg_type (request), text ? text : "?");
            fflush (stdout);
            free (text);
            reply = s_answer (request);
        }
        zv_msg_destroy (&request);
        zv_msg_send (&reply, router);
    }
    for (size_t i = 0; i < s_nservers; i++)
        json_decref (s_servers [i].migration);
    json_decref (s_migrations);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
    return 0;
}
