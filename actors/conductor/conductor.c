/*  conductor.c: the only actor that opens the store; everyone's database
    proxy and the orchestrator of builds and deletes.  This file is its
    spine: the self, the batch and its outbox, the route table and the
    dispatcher, the timers and the actor body.  The handlers live beside it,
    one file per concern (conductor.h says which).

    Throughput comes from group commit: the messages of one batch each run
    their handler in a nested LMDB transaction of one batch transaction,
    the batch commits once (synced), and only then is sent what the
    handlers queued in the outbox: replies, casts to compute hosts and calls
    to a scheduler.  So nobody is ever told of a change that is not on disk,
    and a handler that fails aborts only its own nested transaction.
    Timers (rpc expiry, housekeeping) and rpc continuations run inside a
    batch the same way.

    The conductor is an object that owns no socket (zv_conductor.h): what
    the outbox sends goes to a sink, and calls go through the rpc table
    with that sink as their send function.  The actor body at the end is
    the only part that knows ZeroMQ: one thread, one zloop, one ROUTER that
    every other actor's DEALER (and so every request the api forwards)
    reaches; when it is readable, up to group_commit_max messages are fed
    into one batch, and the sink sends on the same ROUTER.  A unit test
    puts a capturing sink in its place.

    Every handler has one shape (zv_conductor_handler_fn): the request and
    its nested transaction in, a reply body or an error out, and whatever
    it must tell others queued in the outbox, never sent by itself.  The
    route table below is therefore the conductor's whole surface.           */

#include "actors/zv_actors.h"
#include "actors/conductor/conductor.h"
#include "common/zv_sha256.h"
#include <errno.h>
#include <sodium.h>

//  ---------------------------------------------------------------------
//  Batch and outbox

//  Something to send once the batch is committed.
typedef struct {
    zv_msg_t *msg;
    zv_rpc_fn *fn;                  //  non-NULL: a call expecting a reply
    void *ctx;
    zv_rpc_free_fn *free_ctx;       //  frees ctx when the call is dropped
    int timeout_ms;
    zv_conductor_unreachable_fn *unreachable;   //  cast whose peer is not connected
    json_t *arg;                    //  owned, for unreachable
} s_out_t;

static void
s_batch_begin (zv_conductor_t *self)
{
    assert (!self->in_batch);
    self->in_batch = true;
}

zv_txn_t *
zv_conductor_batch_txn (zv_conductor_t *self)
{
    assert (self->in_batch);
    if (!self->batch)
        self->batch = zv_txn_begin (self->store, NULL, true);
    return self->batch;
}

void
zv_conductor_out (zv_conductor_t *self, zv_msg_t **msg_p)
{
    s_out_t *out = (s_out_t *) zmalloc (sizeof (s_out_t));
    out->msg = *msg_p;
    *msg_p = NULL;
    zlistx_add_end (self->outbox, out);
}

void
zv_conductor_out_call (zv_conductor_t *self, zv_msg_t **msg_p, int timeout_ms, zv_rpc_fn *fn, void *ctx,
                       zv_rpc_free_fn *free_ctx)
{
    s_out_t *out = (s_out_t *) zmalloc (sizeof (s_out_t));
    out->msg = *msg_p;
    *msg_p = NULL;
    out->fn = fn;
    out->ctx = ctx;
    out->free_ctx = free_ctx;
    out->timeout_ms = timeout_ms;
    zlistx_add_end (self->outbox, out);
}

void
zv_conductor_out_cast (zv_conductor_t *self, zv_msg_t **msg_p, zv_conductor_unreachable_fn *unreachable,
                       json_t *arg)
{
    s_out_t *out = (s_out_t *) zmalloc (sizeof (s_out_t));
    out->msg = *msg_p;
    *msg_p = NULL;
    out->unreachable = unreachable;
    out->arg = arg;
    zlistx_add_end (self->outbox, out);
}

//  Commit, then send.  A failed commit turns every queued reply into an
//  error and drops casts and calls: nothing that was not stored is told.
static void
s_batch_end (zv_conductor_t *self)
{
    assert (self->in_batch);
    bool committed = true;
    char reason [256] = "";
    if (self->batch) {
        zv_status_t status = zv_txn_commit (&self->batch);
        if (status != ZV_OK) {
            committed = false;
            snprintf (reason, sizeof reason, "store commit failed (%s)", zv_status_name (status));
            zv_error (ACTOR, NULL, "%s: %zu queued messages not sent", reason, zlistx_size (self->outbox));
        }
    }
    self->in_batch = false;
    //  Sending may run continuations (failed calls) and unreachable handlers
    //  that open a new batch: take the outbox first.
    zlistx_t *outbox = self->outbox;
    self->outbox = zlistx_new ();
    s_out_t *out;
    while ((out = (s_out_t *) zlistx_detach (outbox, NULL))) {
        if (!committed) {
            if (zv_msg_is_reply (out->msg) && zv_msg_status (out->msg) == ZV_OK) {
                //  Answer the same request, with an error instead.
                zv_msg_t *request = zv_msg_new (zv_msg_type (out->msg));
                zv_msg_set_id (request, zv_msg_re (out->msg));
                zv_msg_set_rq (request, zv_msg_rq (out->msg));
                zframe_t *rid = zframe_dup (zv_msg_routing_id (out->msg));
                zv_msg_set_routing_id (request, &rid);
                zv_msg_t *error = zv_msg_error (request, ZV_EIO, "%s", reason);
                self->sink (self->sink_arg, &error);
                zv_msg_destroy (&request);
            }
            else
            if (zv_msg_is_reply (out->msg))
                self->sink (self->sink_arg, &out->msg);
            else
            if (out->fn && out->free_ctx)
                out->free_ctx (out->ctx);       //  a call never made
        }
        else
        if (out->fn) {
            //  A failed send runs the continuation at once: give it a batch.
            s_batch_begin (self);
            zv_rpc_call_send (self->rpc, self->sink, self->sink_arg, &out->msg, out->timeout_ms,
                              out->fn, out->ctx, out->free_ctx, self);
            s_batch_end (self);
        }
        else {
            char identity [320] = "";
            zframe_t *rid = zv_msg_routing_id (out->msg);
            if (rid)
                snprintf (identity, sizeof identity, "%.*s", (int) zframe_size (rid), (char *) zframe_data (rid));
            if (self->sink (self->sink_arg, &out->msg) != 0 && out->unreachable) {
                zv_warning (ACTOR, NULL, "%s is not connected", identity);
                s_batch_begin (self);
                out->unreachable (self, out->arg);
                s_batch_end (self);
            }
        }
        zv_msg_destroy (&out->msg);
        json_decref (out->arg);
        free (out);
    }
    zlistx_destroy (&outbox);
}

//  Run fn inside a nested transaction of the batch; commit it into the batch
//  on ZV_OK, abort it otherwise.
typedef zv_status_t (s_txn_fn) (zv_conductor_t *self, zv_txn_t *txn, void *arg, char *errbuf, size_t errlen);

static zv_status_t
s_nested (zv_conductor_t *self, s_txn_fn *fn, void *arg, char *errbuf, size_t errlen)
{
    zv_txn_t *batch = zv_conductor_batch_txn (self);
    if (!batch) {
        snprintf (errbuf, errlen, "cannot open a store transaction");
        return ZV_EIO;
    }
    zv_txn_t *txn = zv_txn_begin (self->store, batch, true);
    if (!txn) {
        snprintf (errbuf, errlen, "cannot open a nested store transaction");
        return ZV_EIO;
    }
    zv_status_t status = fn (self, txn, arg, errbuf, errlen);
    if (status == ZV_OK)
        status = zv_txn_commit (&txn);
    else
        zv_txn_abort (&txn);
    return status;
}

//  ---------------------------------------------------------------------
//  Helpers every handler file uses

json_t *
zv_conductor_fault (zv_status_t status, const char *message)
{
    char now [32];
    return json_pack ("{s:s, s:i, s:s}", "message", message,
                      "code", zv_status_http (status), "created", s_iso_now (now));
}

json_t *
zv_conductor_strip (json_t *rec)
{
    json_object_del (rec, "_rv");
    return rec;
}

//  Names are shown in tables, logs and domain XML: printable text only, no
//  leading or trailing blanks, as Nova's name parameter requires.
bool
zv_conductor_valid_name (const char *what, const char *name, char *errbuf, size_t errlen)
{
    size_t length = name ? strlen (name) : 0;
    bool valid = length > 0 && name [0] != ' ' && name [length - 1] != ' ';
    for (size_t index = 0; valid && index < length; index++)
        valid = (unsigned char) name [index] >= 0x20 && name [index] != 0x7f;
    if (!valid)
        snprintf (errbuf, errlen, "Invalid %s name: it must be printable, without leading or "
                  "trailing spaces.", what);
    return valid;
}

typedef struct {
    const char *name;
    const char *project;            //  NULL: any
    json_t *found;                  //  new reference
    int matches;
} s_find_t;

static bool
s_find_visit (const char *key, json_t *rec, void *arg)
{
    (void) key;
    s_find_t *find = (s_find_t *) arg;
    const char *name = s_str (rec, "name");
    if (!name || strcmp (name, find->name) != 0 || json_is_true (json_object_get (rec, "deleted")))
        return true;
    if (find->project && s_str (rec, "project_id") && strcmp (find->project, s_str (rec, "project_id")) != 0)
        return true;
    if (find->matches++ == 0)
        find->found = json_incref (rec);
    return true;
}

zv_status_t
zv_conductor_find (zv_txn_t *txn, zv_table_t table, const char *what, const char *ref,
                   const char *project, json_t **rec_p, char *errbuf, size_t errlen)
{
    if (zv_store_get (txn, table, ref, rec_p) == ZV_OK)
        return ZV_OK;
    s_find_t find = { ref, project, NULL, 0 };
    zv_store_scan (txn, table, "", s_find_visit, &find);
    if (find.matches == 1) {
        *rec_p = find.found;
        return ZV_OK;
    }
    json_decref (find.found);
    if (find.matches > 1) {
        snprintf (errbuf, errlen, "More than one %s exists with the name '%s'; use its ID.", what, ref);
        return ZV_ECONFLICT;
    }
    snprintf (errbuf, errlen, "No %s with a name or ID of '%s' exists.", what, ref);
    return ZV_ENOTFOUND;
}

typedef struct {
    json_t *list;
    zv_conductor_keep_fn *keep;
    zv_conductor_t *self;
    void *arg;
} s_collect_t;

static bool
s_collect_visit (const char *key, json_t *rec, void *arg)
{
    (void) key;
    s_collect_t *collect = (s_collect_t *) arg;
    if (!collect->keep || collect->keep (collect->self, rec, collect->arg))
        json_array_append (collect->list, zv_conductor_strip (rec));
    return true;
}

json_t *
zv_conductor_collect (zv_conductor_t *self, zv_txn_t *txn, zv_table_t table,
                      zv_conductor_keep_fn *keep, void *arg)
{
    s_collect_t collect = { json_array (), keep, self, arg };
    zv_store_scan (txn, table, "", s_collect_visit, &collect);
    return collect.list;
}

//  ---------------------------------------------------------------------
//  The dispatch table: every type the conductor serves, its handler, and
//  who may call it (policy.c judges that before the handler runs; the
//  policy names are Nova's, which a 403 quotes), grouped by the file that
//  holds the handler.

#define USER            .allow = ZV_ALLOW_USER
#define OWNER           .allow = ZV_ALLOW_OWNER
#define ADMIN(p)        .allow = ZV_ALLOW_ADMIN, .policy = p
#define HOST            .allow = ZV_ALLOW_HOST
#define SELF(s)         .allow = ZV_ALLOW_SELF, .service = s
#define SERVICE(s)      .allow = ZV_ALLOW_SERVICE, .service = s

typedef zv_conductor_route_t s_route_t;

static const s_route_t s_routes [] = {
    //  hosts.c: services, compute hosts, schedulers
    { .type = "conductor.service_heartbeat",  .handler = zv_conductor_service_heartbeat, SELF (NULL) },
    { .type = "conductor.instance_update",    .handler = zv_conductor_instance_update, HOST },
    { .type = "conductor.instance_destroyed", .handler = zv_conductor_instance_destroyed, HOST },
    { .type = "conductor.compute_sync",       .handler = zv_conductor_compute_sync, SELF ("compute") },
    { .type = "conductor.host_states",        .handler = zv_conductor_host_states, SERVICE ("scheduler") },
    { .type = "conductor.service_list",       .handler = zv_conductor_service_list,
      ADMIN ("os_compute_api:os-services:list") },
    { .type = "conductor.service_set",        .handler = zv_conductor_service_set,
      ADMIN ("os_compute_api:os-services:update") },
    { .type = "conductor.hypervisor_list",    .handler = zv_conductor_hypervisor_list,
      ADMIN ("os_compute_api:os-hypervisors:list") },
    { .type = "conductor.hypervisor_show",    .handler = zv_conductor_hypervisor_show,
      ADMIN ("os_compute_api:os-hypervisors:show") },
    //  catalog.c: flavors and images
    { .type = "conductor.flavor_create",      .handler = zv_conductor_flavor_create,
      ADMIN ("os_compute_api:os-flavor-manage:create") },
    { .type = "conductor.flavor_list",        .handler = zv_conductor_resource_list, .arg = &zv_conductor_flavors, USER },
    { .type = "conductor.flavor_show",        .handler = zv_conductor_resource_show, .arg = &zv_conductor_flavors, USER },
    { .type = "conductor.flavor_delete",      .handler = zv_conductor_flavor_delete,
      ADMIN ("os_compute_api:os-flavor-manage:delete") },
    { .type = "conductor.image_create",       .handler = zv_conductor_image_create, USER },
    { .type = "conductor.image_upload",       .handler = zv_conductor_image_upload, USER },
    { .type = "conductor.image_list",         .handler = zv_conductor_resource_list, .arg = &zv_conductor_images, USER },
    { .type = "conductor.image_show",         .handler = zv_conductor_resource_show, .arg = &zv_conductor_images, USER },
    { .type = "conductor.image_delete",       .handler = zv_conductor_image_delete, USER },
    { .type = "conductor.image_set",          .handler = zv_conductor_image_set, USER },
    { .type = "conductor.image_read",         .handler = zv_conductor_image_read, USER, .read_only = true },
    { .type = "conductor.image_download",     .handler = zv_conductor_image_download, SERVICE ("compute") },
    //  servers.c
    { .type = "conductor.server_create",      .handler = zv_conductor_server_create, USER },
    { .type = "conductor.server_list",        .handler = zv_conductor_server_list, USER },
    { .type = "conductor.server_show",        .handler = zv_conductor_server_show, OWNER },
    { .type = "conductor.server_delete",      .handler = zv_conductor_server_delete, OWNER },
    { .type = "conductor.server_events",      .handler = zv_conductor_server_events, OWNER },
    //  actions.c
    { .type = "conductor.server_action",      .handler = zv_conductor_server_action,
      .check = zv_conductor_server_action_check, OWNER },
    //  moves.c: migrations, resizes, evacuations, and what hosts report of them
    { .type = "conductor.server_migrate",     .handler = zv_conductor_server_migrate,
      ADMIN ("os_compute_api:os-migrate-server:migrate") },
    { .type = "conductor.server_resize",      .handler = zv_conductor_server_resize, OWNER },
    { .type = "conductor.server_resize_confirm", .handler = zv_conductor_server_resize_confirm, OWNER },
    { .type = "conductor.server_resize_revert", .handler = zv_conductor_server_resize_revert, OWNER },
    { .type = "conductor.server_evacuate",    .handler = zv_conductor_server_evacuate,
      ADMIN ("os_compute_api:os-evacuate") },
    { .type = "conductor.host_evacuate",      .handler = zv_conductor_host_evacuate,
      ADMIN ("os_compute_api:os-evacuate") },
    { .type = "conductor.migration_list",     .handler = zv_conductor_migration_list, USER },
    { .type = "conductor.migration_show",     .handler = zv_conductor_migration_show, OWNER },
    //  live.c: a running live migration's controls
    { .type = "conductor.migration_abort",    .handler = zv_conductor_migration_abort,
      ADMIN ("os_compute_api:servers:migrations:delete") },
    { .type = "conductor.migration_force_complete", .handler = zv_conductor_migration_force_complete,
      ADMIN ("os_compute_api:servers:migrations:force_complete") },
    { .type = "conductor.move_report",        .handler = zv_conductor_move_report, HOST },
    { .type = "conductor.move_read",          .handler = zv_conductor_move_read, HOST, .read_only = true },
    //  consoles.c
    { .type = "conductor.console_url",        .handler = zv_conductor_console_url,
      .check = zv_conductor_console_url_check, OWNER },
    { .type = "conductor.console_log",        .handler = zv_conductor_console_log, OWNER },
    { .type = "conductor.server_screenshot",  .handler = zv_conductor_server_screenshot, OWNER },
    { .type = "conductor.console_authorize",  .handler = zv_conductor_console_authorize, SERVICE ("consoleproxy") },
    //  admin.c: flavor properties, aggregates and zones, server groups, providers
    { .type = "conductor.flavor_set",         .handler = zv_conductor_flavor_set,
      ADMIN ("os_compute_api:os-flavor-extra-specs:create") },
    { .type = "conductor.aggregate_create",   .handler = zv_conductor_aggregate_create,
      ADMIN ("os_compute_api:os-aggregates:create") },
    { .type = "conductor.aggregate_list",     .handler = zv_conductor_aggregate_list,
      ADMIN ("os_compute_api:os-aggregates:index") },
    { .type = "conductor.aggregate_show",     .handler = zv_conductor_aggregate_show,
      ADMIN ("os_compute_api:os-aggregates:show") },
    { .type = "conductor.aggregate_delete",   .handler = zv_conductor_aggregate_delete,
      ADMIN ("os_compute_api:os-aggregates:delete") },
    { .type = "conductor.aggregate_add_host", .handler = zv_conductor_aggregate_host,
      ADMIN ("os_compute_api:os-aggregates:add_host") },
    { .type = "conductor.aggregate_remove_host", .handler = zv_conductor_aggregate_host,
      ADMIN ("os_compute_api:os-aggregates:remove_host") },
    { .type = "conductor.aggregate_set",      .handler = zv_conductor_aggregate_set,
      ADMIN ("os_compute_api:os-aggregates:set_metadata") },
    { .type = "conductor.zone_list",          .handler = zv_conductor_zone_list, USER },
    { .type = "conductor.group_create",       .handler = zv_conductor_group_create, USER },
    { .type = "conductor.group_list",         .handler = zv_conductor_group_list, USER },
    { .type = "conductor.group_show",         .handler = zv_conductor_group_show, USER },
    { .type = "conductor.group_delete",       .handler = zv_conductor_group_delete, USER },
    { .type = "conductor.provider_list",      .handler = zv_conductor_provider_list,
      ADMIN ("placement:resource_providers:list") },
    { .type = "conductor.provider_show",      .handler = zv_conductor_provider_show,
      ADMIN ("placement:resource_providers:show") },
    { .type = "conductor.provider_set",       .handler = zv_conductor_provider_set,
      ADMIN ("placement:resource_providers:inventories:update") },
    { .type = NULL }
};

static const s_route_t *
s_route (const char *type)
{
    for (const s_route_t *route = s_routes; route->type; route++)
        if (strcmp (route->type, type) == 0)
            return route;
    return NULL;
}

typedef struct {
    const s_route_t *route;         //  NULL: the conductor's own call, not judged
    zv_conductor_handler_fn *handler;
    zv_conductor_call_t *call;
} s_run_t;

static zv_status_t
s_run (zv_conductor_t *self, zv_txn_t *txn, void *arg, char *errbuf, size_t errlen)
{
    s_run_t *run = (s_run_t *) arg;
    zv_status_t status = ZV_OK;
    if (run->route && run->route->check)
        status = run->route->check (self, txn, run->call, errbuf, errlen);
    if (status == ZV_OK && run->route)
        status = zv_conductor_authorize (self, txn, run->route, run->call, errbuf, errlen);
    if (status == ZV_OK)
        status = run->handler (self, txn, run->call, errbuf, errlen);
    return status;
}

//  Serve one message inside the current batch.
static void
s_serve (zv_conductor_t *self, zv_msg_t *msg)
{
    char describe [512];
    if (zv_msg_is_reply (msg)) {
        if (!zv_rpc_dispatch (self->rpc, msg, self))
            zv_debug (ACTOR, zv_msg_rq (msg), "late reply dropped: %s", zv_msg_describe (msg, describe, sizeof describe));
        return;
    }
    if (zv_msg_status (msg) != ZV_OK) {
        zv_warning (ACTOR, zv_msg_rq (msg), "bad message: %s (%s)", zv_msg_error_text (msg),
                    zv_msg_describe (msg, describe, sizeof describe));
        zv_msg_t *error = zv_msg_error (msg, zv_msg_status (msg), "%s", zv_msg_error_text (msg));
        zv_conductor_out (self, &error);
        return;
    }
    const s_route_t *route = s_route (zv_msg_type (msg));
    if (!route) {
        zv_warning (ACTOR, zv_msg_rq (msg), "message type %s is not served by the conductor", zv_msg_type (msg));
        zv_msg_t *error = zv_msg_error (msg, ZV_EINVAL, "message type '%s' is not served by the conductor",
                                        zv_msg_type (msg));
        zv_conductor_out (self, &error);
        return;
    }
    char errbuf [1024] = "";
    zv_conductor_call_t call = { .msg = msg, .route_arg = route->arg };
    s_run_t run = { route, route->handler, &call };
    zv_status_t status;
    if (route->read_only) {
        //  A read of its own, outside the batch: no commit to pay for.
        zv_txn_t *read = zv_txn_begin (self->store, NULL, false);
        status = read ? s_run (self, read, &run, errbuf, sizeof errbuf) : ZV_EIO;
        zv_txn_abort (&read);
    }
    else
        status = s_nested (self, s_run, &run, errbuf, sizeof errbuf);
    json_decref (call.instance);
    if (status == ZV_OK && call.error != ZV_OK) {
        status = call.error;
        snprintf (errbuf, sizeof errbuf, "%s", call.errtext);
    }
    if ((zv_msg_def (msg) && zv_msg_def (msg)->kind == ZV_MSG_CAST) || (status == ZV_OK && call.deferred)) {
        json_decref (call.reply);
        free (call.payload);
        return;
    }
    zv_msg_t *reply;
    if (status == ZV_OK) {
        reply = zv_msg_reply (msg);
        json_t *body = call.reply ? call.reply : json_object ();
        zv_msg_set_body (reply, &body);
        if (call.payload)
            zv_msg_set_payload (reply, call.payload, call.payload_size);
    }
    else {
        json_decref (call.reply);
        if (!*errbuf)
            snprintf (errbuf, sizeof errbuf, "%s failed (%s)", zv_msg_type (msg), zv_status_name (status));
        zv_info (ACTOR, zv_msg_rq (msg), "%s: %s", zv_msg_type (msg), errbuf);
        reply = zv_msg_error (msg, status, "%s", errbuf);
    }
    free (call.payload);
    zv_msg_set_src (reply, ACTOR);
    zv_conductor_out (self, &reply);
}

//  ---------------------------------------------------------------------
//  The object: new, destroy, feed, timers

//  The conductor's own service record, as its heartbeat would write it.
static void
s_record_own_service (zv_conductor_t *self)
{
    zv_msg_t *beat = zv_msg_new ("conductor.service_heartbeat");
    json_t *body = json_pack ("{s:s, s:s, s:i}", "binary", "conductor", "host", self->cfg.host,
                              "report_interval", self->cfg.report_interval_s);
    zv_msg_set_body (beat, &body);
    zv_msg_set_routing_str (beat, "conductor.self");
    char errbuf [256];
    zv_conductor_call_t call = { .msg = beat };
    s_run_t run = { NULL, zv_conductor_service_heartbeat, &call };
    s_nested (self, s_run, &run, errbuf, sizeof errbuf);
    json_decref (call.reply);
    zv_msg_destroy (&beat);
}

static void
s_free_int64 (void **item)
{
    free (*item);
    *item = NULL;
}

zv_conductor_t *
zv_conductor_new (const zv_config_t *cfg, zv_conductor_sink_fn *sink, void *sink_arg,
                  char *errbuf, size_t errlen)
{
    assert (cfg && sink);
    if (sodium_init () < 0) {
        snprintf (errbuf, errlen, "cannot initialise libsodium");
        return NULL;
    }
    zv_conductor_t *self = (zv_conductor_t *) zmalloc (sizeof (zv_conductor_t));
    self->cfg = *cfg;
    self->sink = sink;
    self->sink_arg = sink_arg;
    self->rpc = zv_rpc_new ();
    self->schedulers = zhashx_new ();
    zhashx_set_destructor (self->schedulers, s_free_int64);
    self->failed_builds = zhashx_new ();
    zhashx_set_destructor (self->failed_builds, s_free_int64);
    self->waiting = zlistx_new ();
    self->outbox = zlistx_new ();
    zv_uuid_new (self->epoch);
    self->started_ms = zv_now_ms ();
    self->generation = zv_now_ms ();    //  grows across restarts

    char path [1100], reason [512];
    snprintf (path, sizeof path, "%s/store", self->cfg.state_path);
    snprintf (self->images_dir, sizeof self->images_dir, "%s/images", self->cfg.state_path);
    if (zsys_dir_create ("%s", self->images_dir) != 0) {
        snprintf (errbuf, errlen, "cannot create %s: %s", self->images_dir, strerror (errno));
        zv_conductor_destroy (&self);
        return NULL;
    }
    self->store = zv_store_open (path, (size_t) self->cfg.store_map_size_mb, reason, sizeof reason);
    if (!self->store) {
        snprintf (errbuf, errlen, "cannot open the store: %s", reason);
        zv_conductor_destroy (&self);
        return NULL;
    }
    //  Finish what a previous run left in flight before serving anyone.
    s_batch_begin (self);
    s_record_own_service (self);
    zv_conductor_sweep (self, true);
    s_batch_end (self);
    return self;
}

void
zv_conductor_destroy (zv_conductor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_conductor_t *self = *self_p;
    assert (!self->in_batch);
    zv_rpc_destroy (&self->rpc);
    zv_store_destroy (&self->store);
    zhashx_destroy (&self->schedulers);
    zhashx_destroy (&self->failed_builds);
    zv_conductor_job_t *job;
    while (self->waiting && (job = (zv_conductor_job_t *) zlistx_detach (self->waiting, NULL)))
        zv_conductor_job_destroy (&job);
    zlistx_destroy (&self->waiting);
    zlistx_destroy (&self->outbox);     //  empty outside a batch
    free (self);
    *self_p = NULL;
}

void
zv_conductor_begin (zv_conductor_t *self)
{
    s_batch_begin (self);
}

void
zv_conductor_end (zv_conductor_t *self)
{
    //  A scheduler just heard from: the jobs parked for one go now.
    if (self->scheduler_seen && zlistx_size (self->waiting))
        zv_conductor_flush_waiting (self);
    self->scheduler_seen = false;
    s_batch_end (self);
}

void
zv_conductor_feed (zv_conductor_t *self, zv_msg_t **msg_p)
{
    zv_msg_t *msg = *msg_p;
    *msg_p = NULL;
    if (!msg)
        return;
    bool own_batch = !self->in_batch;
    if (own_batch)
        zv_conductor_begin (self);
    self->scheduler_seen |= strcmp (zv_msg_type (msg), "conductor.service_heartbeat") == 0
                         && zv_msg_get_str (msg, "binary")
                         && strcmp (zv_msg_get_str (msg, "binary"), "scheduler") == 0;
    s_serve (self, msg);
    zv_msg_destroy (&msg);
    if (own_batch)
        zv_conductor_end (self);
}

void
zv_conductor_tick (zv_conductor_t *self)
{
    s_batch_begin (self);
    zv_rpc_expire (self->rpc, self);
    if (zlistx_size (self->waiting))
        zv_conductor_flush_waiting (self);
    s_batch_end (self);
}

void
zv_conductor_housekeeping (zv_conductor_t *self)
{
    s_batch_begin (self);
    zv_conductor_sweep (self, false);
    zv_conductor_flush_waiting (self);
    s_batch_end (self);
}

//  The conductor's own heartbeat, every report_interval like everyone's.
void
zv_conductor_heartbeat (zv_conductor_t *self)
{
    s_batch_begin (self);
    s_record_own_service (self);
    s_batch_end (self);
}

zv_store_t *
zv_conductor_store (zv_conductor_t *self)
{
    assert (!self->in_batch);
    return self->store;
}

const char *
zv_conductor_epoch (const zv_conductor_t *self)
{
    return self->epoch;
}

//  ---------------------------------------------------------------------
//  The actor body: the ROUTER, the loop and its timers around the object

typedef struct {
    zv_conductor_t *conductor;
    int group_commit_max;
} s_actor_t;

//  The sink of the real conductor: its ROUTER (mandatory, so a peer that is
//  not connected fails the send with EHOSTUNREACH at once).
static int
s_router_send (void *arg, zv_msg_t **msg_p)
{
    return zv_msg_send (msg_p, (zsock_t *) arg);
}

//  The group commit: drain up to group_commit_max messages into one batch.
static int
s_router_readable (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    s_actor_t *actor = (s_actor_t *) arg;
    zv_conductor_begin (actor->conductor);
    for (int count = 0; count < actor->group_commit_max && (zsock_events (router) & ZMQ_POLLIN); count++) {
        zv_msg_t *msg = zv_msg_recv (router);
        if (!msg)
            break;
        zv_conductor_feed (actor->conductor, &msg);
    }
    zv_conductor_end (actor->conductor);
    return 0;
}

static int
s_expire (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_conductor_tick (((s_actor_t *) arg)->conductor);
    return 0;
}

static int
s_housekeeping (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_conductor_housekeeping (((s_actor_t *) arg)->conductor);
    return 0;
}

static int
s_own_heartbeat (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_conductor_heartbeat (((s_actor_t *) arg)->conductor);
    return 0;
}

void
zv_conductor_actor (zsock_t *pipe, void *args)
{
    const zv_actor_args_t *actor_args = (const zv_actor_args_t *) args;
    const zv_config_t *cfg = &actor_args->config;
    s_actor_t actor = { NULL, cfg->group_commit_max };
    zloop_t *loop = NULL;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (router, 1);
    zsock_set_router_handover (router, 1);
    zsock_set_maxmsgsize (router, ZV_MSG_MAX_WIRE);
    zsock_set_sndhwm (router, 100000);
    zsock_set_rcvhwm (router, 100000);
    zsock_set_linger (router, 0);
    if (zsock_bind (router, "%s", actor_args->conductor_endpoint) < 0) {
        zv_error (ACTOR, NULL, "cannot bind %s: %s", actor_args->conductor_endpoint, zmq_strerror (zmq_errno ()));
        goto failed;
    }
    char errbuf [1024];
    actor.conductor = zv_conductor_new (cfg, s_router_send, router, errbuf, sizeof errbuf);
    if (!actor.conductor) {
        zv_error (ACTOR, NULL, "%s", errbuf);
        goto failed;
    }
    zv_info (ACTOR, NULL, "serving %s (store %s/store, epoch %s)", actor_args->conductor_endpoint,
             cfg->state_path, zv_conductor_epoch (actor.conductor));

    loop = zloop_new ();
    zloop_set_nonstop (loop, true);
    zloop_reader (loop, pipe, zv_actor_pipe_readable, NULL);
    zloop_reader (loop, router, s_router_readable, &actor);
    zloop_timer (loop, 100, 0, s_expire, &actor);
    zloop_timer (loop, (size_t) cfg->housekeeping_interval_s * 1000, 0, s_housekeeping, &actor);
    zloop_timer (loop, (size_t) cfg->report_interval_s * 1000, 0, s_own_heartbeat, &actor);
    zsock_signal (pipe, 0);
    zloop_start (loop);
    zloop_destroy (&loop);
    zv_conductor_destroy (&actor.conductor);
    zsock_destroy (&router);
    zv_sha256_thread_end ();
    return;

failed:
    zv_conductor_destroy (&actor.conductor);
    zsock_destroy (&router);
    zv_actor_start_failed (pipe);
}
