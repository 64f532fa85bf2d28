/*  conductor.c: the only actor that opens the store; everyone's database
    proxy and the orchestrator of builds and deletes.

    One thread, one zloop, one ROUTER that every other actor's DEALER (and so
    every request the api forwards) reaches.  Throughput comes from group
    commit: when the ROUTER is readable the conductor drains up to
    group_commit_max messages, runs each handler in its own nested LMDB
    transaction inside one batch transaction, commits the batch once (synced)
    and only then sends what the handlers queued in the outbox: replies,
    casts to compute hosts and calls to a scheduler.  So nobody is ever told
    of a change that is not on disk, and a handler that fails aborts only its
    own nested transaction.  Timers (rpc expiry, housekeeping) and rpc
    continuations run inside a batch the same way.

    Builds: server_create records the instances (building / scheduling), a
    job asks a scheduler (any live "scheduler.*" peer) select_destinations,
    the reply's hosts are claimed in the store (instance CAS + allocation +
    node usage, one transaction) and compute.build_instance is cast to
    "compute.<host>".  A host that cannot be reached is excluded and the
    build rescheduled up to max_attempts.  Deletes: delete action (task
    deleting), then compute.terminate_instance, or a local delete when the
    instance never reached a host or its host is gone.

    Recovery: a new epoch (uuid) at each start; builds that never reached a
    host go to ERROR, deletes in flight are finished; each compute, seeing
    the new epoch in its heartbeat reply, sends compute_sync with its domains
    and the conductor reconciles them (zv_conductor_reconcile below).
    Housekeeping puts any build stuck past build_timeout into ERROR, so no
    instance stays in a transitional task_state forever.                    */

#include "actors/zv_actors.h"
#include "bus/zv_rpc.h"
#include "proto/zv_msg.h"
#include "proto/zv_pack.h"
#include "store/zv_store.h"
#include "store/zv_placement.h"
#include "store/zv_aggregate.h"
#include "store/zv_group.h"
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include "common/zv_sha256.h"
#include <sys/stat.h>
#include <unistd.h>

#define ACTOR "conductor"
#define NO_VALID_HOST "No valid host was found. There are not enough hosts available."

typedef struct _self_t self_t;
typedef void (s_unreachable_fn) (self_t *self, json_t *arg);

//  Something to send once the batch is committed.
typedef struct {
    zv_msg_t *msg;
    zv_rpc_fn *fn;                  //  non-NULL: a call expecting a reply
    void *ctx;
    zv_rpc_free_fn *free_ctx;       //  frees ctx when the call is dropped
    int timeout_ms;
    s_unreachable_fn *unreachable;  //  cast whose peer is not connected
    json_t *arg;                    //  owned, for unreachable
} s_out_t;

//  A set of instances waiting for (or in) a scheduler's decision.
typedef struct {
    json_t *uuids;                  //  array of instance uuids
    json_t *spec;                   //  request spec (resources, project, zone)
    json_t *ignore_hosts;           //  hosts excluded (failed attempts)
    int attempt;
    int min_count;                  //  all or nothing up to this many
    char last_failure [600];        //  why the previous attempt failed, if it did
    char rq [72];
    char scheduler [320];           //  who was asked
    int64_t queued_ms;
} s_job_t;

struct _self_t {
    zv_config_t cfg;
    zsock_t *pipe;
    zsock_t *router;
    zloop_t *loop;
    zv_store_t *store;
    zv_rpc_t *rpc;
    char epoch [ZV_UUID_LEN + 1];
    int64_t started_ms;
    char images_dir [1100];
    zhashx_t *schedulers;           //  identity -> last heartbeat (mono ms, boxed)
    zhashx_t *failed_builds;        //  host -> builds failed since its last success (boxed)
    zlistx_t *waiting;              //  s_job_t waiting for a live scheduler
    size_t next_scheduler;
    //  The current batch.
    zv_txn_t *batch;
    zlistx_t *outbox;               //  s_out_t
    bool in_batch;
    int64_t generation;             //  host states generation (placement-like)
};

static void s_job_destroy (s_job_t **job_p);
static void s_tokens_revoke (zv_txn_t *txn, const char *uuid);
static void s_job_free (void *ctx);
static void s_schedule (self_t *self, s_job_t **job_p);

//  ---------------------------------------------------------------------
//  Batch and outbox

static void
s_batch_begin (self_t *self)
{
    assert (!self->in_batch);
    self->in_batch = true;
}

//  The batch's write transaction, opened on first use.
static zv_txn_t *
s_batch_txn (self_t *self)
{
    assert (self->in_batch);
    if (!self->batch)
        self->batch = zv_txn_begin (self->store, NULL, true);
    return self->batch;
}

static void
s_out (self_t *self, zv_msg_t **msg_p)
{
    s_out_t *out = (s_out_t *) zmalloc (sizeof (s_out_t));
    out->msg = *msg_p;
    *msg_p = NULL;
    zlistx_add_end (self->outbox, out);
}

static void
s_out_call (self_t *self, zv_msg_t **msg_p, int timeout_ms, zv_rpc_fn *fn, void *ctx,
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

static void
s_out_cast (self_t *self, zv_msg_t **msg_p, s_unreachable_fn *unreachable, json_t *arg)
{
    s_out_t *out = (s_out_t *) zmalloc (sizeof (s_out_t));
    out->msg = *msg_p;
    *msg_p = NULL;
    out->unreachable = unreachable;
    out->arg = arg;
    zlistx_add_end (self->outbox, out);
}

static void s_batch_end (self_t *self);

//  Commit, then send.  A failed commit turns every queued reply into an
//  error and drops casts and calls: nothing that was not stored is told.
static void
s_batch_end (self_t *self)
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
                zv_msg_send (&error, self->router);
                zv_msg_destroy (&request);
            }
            else
            if (zv_msg_is_reply (out->msg))
                zv_msg_send (&out->msg, self->router);
            else
            if (out->fn && out->free_ctx)
                out->free_ctx (out->ctx);       //  a call never made
        }
        else
        if (out->fn) {
            //  A failed send runs the continuation at once: give it a batch.
            s_batch_begin (self);
            zv_rpc_call (self->rpc, self->router, &out->msg, out->timeout_ms, out->fn, out->ctx,
                         out->free_ctx, self);
            s_batch_end (self);
        }
        else {
            char identity [320] = "";
            zframe_t *rid = zv_msg_routing_id (out->msg);
            if (rid)
                snprintf (identity, sizeof identity, "%.*s", (int) zframe_size (rid), (char *) zframe_data (rid));
            if (zv_msg_send (&out->msg, self->router) != 0 && out->unreachable) {
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
typedef zv_status_t (s_txn_fn) (self_t *self, zv_txn_t *txn, void *arg, char *errbuf, size_t errlen);

static zv_status_t
s_nested (self_t *self, s_txn_fn *fn, void *arg, char *errbuf, size_t errlen)
{
    zv_txn_t *batch = s_batch_txn (self);
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
//  Small helpers

static const char *
s_iso_now (char buf [32])
{
    return zv_iso8601 (zv_now_ms (), buf);
}

static const char *
s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

static json_int_t
s_int (const json_t *object, const char *key)
{
    return json_integer_value (json_object_get (object, key));
}

//  "up", "down" (no heartbeat for service_down_time) or "degraded" (a
//  compute host whose hypervisor is unreachable: it heartbeats, but can
//  neither build nor report its domains).  Only "up" takes new work.
static const char *
s_service_state (self_t *self, const json_t *service)
{
    if (!service)
        return "down";
    int64_t age = zv_now_ms () - s_int (service, "updated_ms");
    if (age > (int64_t) self->cfg.service_down_time_s * 1000)
        return "down";
    return json_is_string (json_object_get (service, "degraded")) ? "degraded" : "up";
}


static json_t *
s_fault (zv_status_t status, const char *message)
{
    char now [32];
    return json_pack ("{s:s, s:i, s:s}", "message", message,
                      "code", zv_status_http (status), "created", s_iso_now (now));
}

//  Keys of an instance record that stay in the store: the record version,
//  ms timestamps (sorting, housekeeping) and the request spec (reschedules).
static const char *const s_internal_keys [] = { "_rv", "created_ms", "updated_ms", "request_spec" };
#define S_INTERNAL_KEYS (sizeof (s_internal_keys) / sizeof (s_internal_keys [0]))

//  The view of an instance that leaves the conductor: its record plus the
//  derived status, without store-internal keys.  Takes rec, returns it.
static json_t *
s_server_view (json_t *rec)
{
    int vm = zv_vm_state_from_name (s_str (rec, "vm_state"));
    int task = zv_task_state_from_name (s_str (rec, "task_state"));
    const char *status = (vm < 0 || task < 0) ? "UNKNOWN"
                       : zv_status_derive ((zv_vm_state_t) vm, (zv_task_state_t) task);
    json_object_set_new (rec, "status", json_string (status));
    json_object_set_new (rec, "id", json_incref (json_object_get (rec, "uuid")));
    for (size_t index = 0; index < S_INTERNAL_KEYS; index++)
        json_object_del (rec, s_internal_keys [index]);
    return rec;
}

static json_t *
s_strip (json_t *rec)
{
    json_object_del (rec, "_rv");
    return rec;
}

//  Names are shown in tables, logs and domain XML: printable text only, no
//  leading or trailing blanks, as Nova's name parameter requires.
static bool
s_valid_name (const char *what, const char *name, char *errbuf, size_t errlen)
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

//  Find one record by id, or by unique "name" among non-deleted records.
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

static zv_status_t
s_find (zv_txn_t *txn, zv_table_t table, const char *what, const char *ref,
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

//  Collect every record of a table into an array (borrowed recs increfed).
typedef struct {
    json_t *list;
    bool (*keep) (self_t *self, json_t *rec, void *arg);
    self_t *self;
    void *arg;
} s_collect_t;

static bool
s_collect_visit (const char *key, json_t *rec, void *arg)
{
    (void) key;
    s_collect_t *collect = (s_collect_t *) arg;
    if (!collect->keep || collect->keep (collect->self, rec, collect->arg))
        json_array_append (collect->list, s_strip (rec));
    return true;
}

static json_t *
s_collect (self_t *self, zv_txn_t *txn, zv_table_t table,
           bool (*keep) (self_t *, json_t *, void *), void *arg)
{
    s_collect_t collect = { json_array (), keep, self, arg };
    zv_store_scan (txn, table, "", s_collect_visit, &collect);
    return collect.list;
}

//  ---------------------------------------------------------------------
//  Handlers.  Each gets the request and returns the reply body (new) or
//  NULL with status/errbuf set; s_serve sends the reply.

typedef struct {
    const zv_msg_t *msg;
    const void *route_arg;          //  the route's argument (e.g. a resource row)
    json_t *reply;                  //  body of the reply, set by the handler
    zv_status_t error;              //  an error to answer although the handler's
    char errtext [512];             //  writes are kept (handler returned ZV_OK)
    void *payload;                  //  bytes for the reply's payload frame (malloc'd)
    size_t payload_size;
    bool deferred;                  //  the handler answers later (s_relay_to_host)
} s_call_t;

typedef zv_status_t (s_handler_fn) (self_t *self, zv_txn_t *txn, s_call_t *call,
                                    char *errbuf, size_t errlen);

//  conductor.service_heartbeat
static zv_status_t
s_service_heartbeat (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    const zv_msg_t *msg = call->msg;
    const char *binary = zv_msg_get_str (msg, "binary");
    const char *host = zv_msg_get_str (msg, "host");
    char key [400], now [32];
    snprintf (key, sizeof key, "%s/%s", binary, host);
    json_t *service = NULL;
    if (zv_store_get (txn, ZV_TABLE_SERVICES, key, &service) != ZV_OK) {
        char uuid [ZV_UUID_LEN + 1];
        zv_uuid_new (uuid);
        service = json_pack ("{s:s, s:s, s:s, s:s, s:b, s:n, s:s, s:s}",
                             "id", uuid, "binary", binary, "host", host, "zone", "nova",
                             "disabled", 0, "disabled_reason", "created_at", s_iso_now (now),
                             "topic", binary);
    }
    json_object_set_new (service, "updated_at", json_string (s_iso_now (now)));
    json_object_set_new (service, "updated_ms", json_integer (zv_now_ms ()));
    json_object_set_new (service, "report_interval",
                         json_integer (zv_msg_get_int (msg, "report_interval", 10)));
    const char *degraded = zv_msg_get_str (msg, "degraded");
    if (degraded && !json_is_string (json_object_get (service, "degraded")))
        zv_warning (ACTOR, NULL, "%s %s is degraded: %s", binary, host, degraded);
    else
    if (!degraded && json_is_string (json_object_get (service, "degraded")))
        zv_info (ACTOR, NULL, "%s %s is no longer degraded", binary, host);
    if (degraded || json_object_get (service, "degraded"))
        json_object_set_new (service, "degraded", degraded ? json_string (degraded) : json_null ());
    zv_status_t status = zv_store_put (txn, ZV_TABLE_SERVICES, key, service);
    json_decref (service);
    if (status != ZV_OK)
        return status;

    json_t *report = json_object_get (zv_msg_body (msg), "node");
    if (strcmp (binary, "compute") == 0 && json_is_object (report)) {
        //  The inventories go through placement (usages and admin
        //  overrides are the store's own, so a report never undoes a claim);
        //  the host's facts are kept beside them.
        char reason [512];
        bool changed = false;
        json_t *inventories = json_object_get (report, "inventories");
        if (json_is_object (inventories)
        &&  zv_placement_report (txn, host, inventories, &changed, reason, sizeof reason) != ZV_OK)
            zv_warning (ACTOR, zv_msg_rq (msg), "compute %s reported a bad inventory: %s", host, reason);
        json_t *node = NULL;
        if (zv_store_get (txn, ZV_TABLE_NODES, host, &node) == ZV_OK) {
            static const char *facts [] = {
                "running_vms", "hypervisor_type", "hypervisor_version", "cpu_model", "cpu_arch", "uri", NULL };
            bool facts_changed = false;
            for (int index = 0; facts [index]; index++) {
                json_t *value = json_object_get (report, facts [index]);
                if (value && !json_equal (value, json_object_get (node, facts [index]))) {
                    json_object_set (node, facts [index], value);
                    facts_changed = true;
                }
            }
            if (facts_changed)
                status = zv_store_put (txn, ZV_TABLE_NODES, host, node);
            json_decref (node);
        }
        if (changed || status != ZV_OK)
            self->generation++;
        if (status != ZV_OK)
            return status;
    }
    //  A scheduler is asked by its routing identity: register one only when
    //  that identity is the "scheduler.<host>" its heartbeat claims.
    char expected_identity [320];
    snprintf (expected_identity, sizeof expected_identity, "scheduler.%s", host);
    zframe_t *rid = zv_msg_routing_id (msg);
    if (strcmp (binary, "scheduler") == 0 && rid
    &&  zframe_size (rid) == strlen (expected_identity)
    &&  memcmp (zframe_data (rid), expected_identity, zframe_size (rid)) == 0) {
        const char *identity = expected_identity;
        int64_t *seen = (int64_t *) zhashx_lookup (self->schedulers, identity);
        if (!seen) {
            seen = (int64_t *) zmalloc (sizeof (int64_t));
            zhashx_insert (self->schedulers, identity, seen);
            zv_info (ACTOR, NULL, "scheduler %s is up", identity);
        }
        *seen = zv_mono_ms ();
    }
    call->reply = json_pack ("{s:s, s:i}", "epoch", self->epoch,
                             "service_down_time", self->cfg.service_down_time_s);
    return ZV_OK;
}

//  conductor.flavor_create
static bool
s_same_name (self_t *self, json_t *rec, void *arg)
{
    (void) self;
    const char *name = s_str (rec, "name");
    return name && strcmp (name, (const char *) arg) == 0;
}

static zv_status_t
s_flavor_create (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *name = zv_msg_get_str (msg, "name");
    if (!s_valid_name ("flavor", name, errbuf, errlen))
        return ZV_EINVAL;
    json_t *same = s_collect (self, txn, ZV_TABLE_FLAVORS, s_same_name, (void *) name);
    size_t count = json_array_size (same);
    json_decref (same);
    if (count) {
        snprintf (errbuf, errlen, "Flavor with name %s already exists.", name);
        return ZV_EEXIST;
    }
    char id [ZV_UUID_LEN + 1];
    if (zv_msg_get_str (msg, "id"))
        snprintf (id, sizeof id, "%.36s", zv_msg_get_str (msg, "id"));
    else
        zv_uuid_new (id);
    if (strchr (id, '/')) {
        snprintf (errbuf, errlen, "Flavor id must not contain '/'.");
        return ZV_EINVAL;
    }
    char now [32];
    json_t *flavor = json_pack ("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:s, s:{}}",
        "id", id, "name", name,
        "vcpus", (json_int_t) zv_msg_get_int (msg, "vcpus", 1),
        "ram_mb", (json_int_t) zv_msg_get_int (msg, "ram_mb", 1),
        "disk_gb", (json_int_t) zv_msg_get_int (msg, "disk_gb", 0),
        "ephemeral_gb", (json_int_t) zv_msg_get_int (msg, "ephemeral_gb", 0),
        "swap_mb", (json_int_t) zv_msg_get_int (msg, "swap_mb", 0),
        "is_public", zv_msg_get_bool (msg, "is_public", true),
        "created_at", s_iso_now (now), "extra_specs");
    zv_status_t status = zv_store_insert (txn, ZV_TABLE_FLAVORS, id, flavor);
    if (status == ZV_EEXIST)
        snprintf (errbuf, errlen, "Flavor with ID %s already exists.", id);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "flavor", flavor);
    else
        json_decref (flavor);
    return status;
}

//  Flavors and images are listed and shown alike: one handler each, the
//  route's resource row says which table and what to call it.
typedef struct {
    zv_table_t table;
    const char *singular;           //  "flavor": the reply key of a show
    const char *plural;             //  "flavors": the reply key of a list
} s_resource_t;

static const s_resource_t s_flavors = { ZV_TABLE_FLAVORS, "flavor", "flavors" };
static const s_resource_t s_images = { ZV_TABLE_IMAGES, "image", "images" };

static zv_status_t
s_resource_list (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    const s_resource_t *resource = (const s_resource_t *) call->route_arg;
    call->reply = json_pack ("{s:o}", resource->plural, s_collect (self, txn, resource->table, NULL, NULL));
    return ZV_OK;
}

static zv_status_t
s_resource_show (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) self;
    const s_resource_t *resource = (const s_resource_t *) call->route_arg;
    json_t *rec = NULL;
    zv_status_t status = s_find (txn, resource->table, resource->singular,
                                 zv_msg_get_str (call->msg, "ref"), NULL, &rec, errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", resource->singular, s_strip (rec));
    return status;
}

static zv_status_t
s_flavor_delete (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) self;
    json_t *flavor = NULL;
    zv_status_t status = s_find (txn, ZV_TABLE_FLAVORS, "flavor", zv_msg_get_str (call->msg, "ref"),
                                 NULL, &flavor, errbuf, errlen);
    if (status == ZV_OK) {
        //  Instances keep their own copy of the flavor, as Nova's do.
        status = zv_store_del (txn, ZV_TABLE_FLAVORS, s_str (flavor, "id"));
        json_decref (flavor);
        call->reply = json_object ();
    }
    return status;
}

//  Images: metadata in the store, bytes in <state_path>/images/<id>.
static void
s_image_path (self_t *self, const char *id, bool partial, char *path, size_t len)
{
    snprintf (path, len, "%s/%s%s", self->images_dir, id, partial ? ".part" : "");
}

static zv_status_t
s_image_create (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    if (!s_valid_name ("image", zv_msg_get_str (msg, "name"), errbuf, errlen))
        return ZV_EINVAL;
    const char *format = zv_msg_get_str (msg, "disk_format");
    if (!format)
        format = "raw";
    static const char *formats [] = { "raw", "qcow2", "ami", "ari", "aki", "iso", NULL };
    bool known = false;
    for (int index = 0; formats [index]; index++)
        known |= strcmp (formats [index], format) == 0;
    if (!known) {
        snprintf (errbuf, errlen, "Invalid disk format '%s' (raw, qcow2, ami, ari, aki, iso).", format);
        return ZV_EINVAL;
    }
    char id [ZV_UUID_LEN + 1], now [32], path [1200];
    zv_uuid_new (id);
    const char *container = zv_msg_get_str (msg, "container_format");
    json_t *properties = json_object_get (zv_msg_body (msg), "properties");
    const char *checksum = zv_msg_get_str (msg, "checksum");
    json_t *image = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:s, s:o, s:s, s:s, s:s}",
        "id", id, "name", zv_msg_get_str (msg, "name"), "status", "queued",
        "disk_format", format, "container_format", container ? container : "bare",
        "size", (json_int_t) zv_msg_get_int (msg, "size", 0), "received", (json_int_t) 0,
        "checksum", checksum ? json_string (checksum) : json_null (),
        "os_hash_algo", "sha256",
        "properties", json_is_object (properties) ? json_incref (properties) : json_object (),
        "owner", zv_msg_get_str (msg, "project_id") ? zv_msg_get_str (msg, "project_id") : "",
        "created_at", s_iso_now (now), "updated_at", now);
    s_image_path (self, id, true, path, sizeof path);
    int fd = open (path, O_CREAT | O_TRUNC | O_WRONLY, 0640);
    if (fd < 0) {
        snprintf (errbuf, errlen, "cannot create image file %s: %s", path, strerror (errno));
        json_decref (image);
        return ZV_EIO;
    }
    close (fd);
    zv_status_t status = zv_store_insert (txn, ZV_TABLE_IMAGES, id, image);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "image", image);
    else
        json_decref (image);
    return status;
}

//  sha256 of a file as lowercase hex into hex[65].
static zv_status_t
s_file_sha256 (const char *path, char hex [65], int64_t *size_p, char *errbuf, size_t errlen)
{
    if (zv_sha256_file (path, hex, size_p) != 0) {
        snprintf (errbuf, errlen, "cannot read %s: %s", path, strerror (errno));
        return ZV_EIO;
    }
    return ZV_OK;
}

static zv_status_t
s_image_upload (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *id = zv_msg_get_str (msg, "id");
    json_t *image = NULL;
    if (zv_store_get (txn, ZV_TABLE_IMAGES, id, &image) != ZV_OK) {
        snprintf (errbuf, errlen, "Image %s could not be found.", id);
        return ZV_ENOTFOUND;
    }
    zv_status_t status = ZV_OK;
    const char *state = s_str (image, "status");
    int64_t offset = zv_msg_get_int (msg, "offset", 0);
    int64_t received = s_int (image, "received");
    int64_t declared = s_int (image, "size");
    size_t size = 0;
    const void *data = zv_msg_payload (msg, &size);
    char path [1200], final [1200];
    s_image_path (self, id, true, path, sizeof path);
    s_image_path (self, id, false, final, sizeof final);
    if (strcmp (state, "queued") != 0 && strcmp (state, "saving") != 0) {
        snprintf (errbuf, errlen, "Image %s is %s; data can only be uploaded to a queued image.", id, state);
        status = ZV_ECONFLICT;
    }
    else
    if (offset != received) {
        snprintf (errbuf, errlen, "Image %s: chunk at offset %lld, expected %lld.", id,
                  (long long) offset, (long long) received);
        status = ZV_ECONFLICT;
    }
    else
    if (received + (int64_t) size > declared) {
        snprintf (errbuf, errlen, "Image %s: data exceeds the declared size of %lld bytes.", id,
                  (long long) declared);
        status = ZV_ETOOBIG;
    }
    if (status == ZV_OK && size) {
        int fd = open (path, O_WRONLY);
        ssize_t wrote = fd < 0 ? -1 : pwrite (fd, data, size, offset);
        if (fd < 0 || wrote != (ssize_t) size) {
            snprintf (errbuf, errlen, "cannot write image data to %s: %s", path, strerror (errno));
            status = ZV_EIO;
        }
        if (fd >= 0)
            close (fd);
    }
    if (status == ZV_OK) {
        char now [32];
        received += (int64_t) size;
        json_object_set_new (image, "received", json_integer (received));
        json_object_set_new (image, "status", json_string ("saving"));
        json_object_set_new (image, "updated_at", json_string (s_iso_now (now)));
        if (zv_msg_get_bool (msg, "last", false)) {
            char hex [65];
            int64_t length = 0;
            status = s_file_sha256 (path, hex, &length, errbuf, errlen);
            const char *expected = s_str (image, "checksum");
            if (status == ZV_OK && length != declared) {
                snprintf (errbuf, errlen, "Image %s: received %lld bytes, declared %lld.", id,
                          (long long) length, (long long) declared);
                status = ZV_EINVAL;
            }
            else
            if (status == ZV_OK && expected && strcmp (expected, hex) != 0) {
                snprintf (errbuf, errlen, "Image %s: checksum mismatch (expected %s, got %s).", id, expected, hex);
                status = ZV_EINVAL;
            }
            if (status == ZV_OK) {
                int fd = open (path, O_RDONLY);
                if (fd >= 0) {
                    fsync (fd);
                    close (fd);
                }
                if (rename (path, final) != 0) {
                    snprintf (errbuf, errlen, "cannot store image %s: %s", final, strerror (errno));
                    status = ZV_EIO;
                }
            }
            if (status == ZV_OK) {
                json_object_set_new (image, "checksum", json_string (hex));
                json_object_set_new (image, "os_hash_value", json_string (hex));
                json_object_set_new (image, "status", json_string ("active"));
            }
            else {
                //  A failed upload is final, as Glance's "killed": the record
                //  stays (committed) to say why, the bytes go, the caller
                //  gets the error.
                json_object_set_new (image, "status", json_string ("killed"));
                unlink (path);
                call->error = status;
                snprintf (call->errtext, sizeof call->errtext, "%s", errbuf);
                status = ZV_OK;
            }
        }
        if (status == ZV_OK)
            status = zv_store_put (txn, ZV_TABLE_IMAGES, id, image);
    }
    if (status == ZV_OK)
        call->reply = json_pack ("{s:O}", "image", s_strip (image));
    json_decref (image);
    return status;
}

static zv_status_t
s_image_delete (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    json_t *image = NULL;
    zv_status_t status = s_find (txn, ZV_TABLE_IMAGES, "image", zv_msg_get_str (call->msg, "ref"),
                                 NULL, &image, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *id = s_str (image, "id");
    status = zv_store_del (txn, ZV_TABLE_IMAGES, id);
    if (status == ZV_OK) {
        //  The bytes go with the record; instances already built keep theirs.
        char path [1200];
        s_image_path (self, id, false, path, sizeof path);
        unlink (path);
        s_image_path (self, id, true, path, sizeof path);
        unlink (path);
        call->reply = json_object ();
    }
    json_decref (image);
    return status;
}

//  conductor.image_download: one chunk of an active image's bytes, for a
//  compute host's image cache (actors/zv_imagecache.c).
static zv_status_t
s_image_download (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const char *id = zv_msg_get_str (call->msg, "id");
    json_t *image = NULL;
    if (zv_store_get (txn, ZV_TABLE_IMAGES, id, &image) != ZV_OK) {
        snprintf (errbuf, errlen, "Image %s could not be found.", id);
        return ZV_ENOTFOUND;
    }
    zv_status_t status = ZV_OK;
    int64_t size = s_int (image, "size");
    int64_t offset = zv_msg_get_int (call->msg, "offset", 0);
    int64_t length = zv_msg_get_int (call->msg, "length", 0);
    if (strcmp (s_str (image, "status"), "active") != 0) {
        snprintf (errbuf, errlen, "Image %s is %s: it has no data to download.", id, s_str (image, "status"));
        status = ZV_ECONFLICT;
    }
    else
    if (offset > size) {
        snprintf (errbuf, errlen, "Image %s: offset %lld is past its size %lld.", id,
                  (long long) offset, (long long) size);
        status = ZV_EINVAL;
    }
    if (status == ZV_OK) {
        if (length > size - offset)
            length = size - offset;
        char path [1200];
        s_image_path (self, id, false, path, sizeof path);
        call->payload = malloc (length ? (size_t) length : 1);
        int fd = open (path, O_RDONLY);
        ssize_t got = fd < 0 ? -1 : pread (fd, call->payload, (size_t) length, offset);
        if (fd >= 0)
            close (fd);
        if (got != (ssize_t) length) {
            snprintf (errbuf, errlen, "cannot read image %s from %s: %s", id, path,
                      got < 0 ? strerror (errno) : "file shorter than the image");
            free (call->payload);
            call->payload = NULL;
            status = ZV_EIO;
        }
        else {
            call->payload_size = (size_t) length;
            call->reply = json_pack ("{s:s, s:I, s:I, s:I, s:O, s:O, s:b}", "id", id,
                                     "offset", (json_int_t) offset, "length", (json_int_t) length,
                                     "size", (json_int_t) size, "checksum", json_object_get (image, "checksum"),
                                     "disk_format", json_object_get (image, "disk_format"),
                                     "last", offset + length >= size);
        }
    }
    json_decref (image);
    return status;
}

//  Every image record an instance's domain needs on its host, by id: its
//  image, that image's kernel and ramdisk (Glance's kernel_id/ramdisk_id
//  properties), and the same for a rescue image.  Images that are gone
//  are left out; the compute says what is missing.
static void
s_add_image (zv_txn_t *txn, json_t *images, const char *id)
{
    json_t *image = NULL;
    if (!id || !*id || json_object_get (images, id) || zv_store_get (txn, ZV_TABLE_IMAGES, id, &image) != ZV_OK)
        return;
    json_object_set_new (images, id, s_strip (image));
    json_t *properties = json_object_get (image, "properties");
    s_add_image (txn, images, s_str (properties, "kernel_id"));
    s_add_image (txn, images, s_str (properties, "ramdisk_id"));
}

static json_t *
s_action_images (zv_txn_t *txn, const json_t *rec, const char *rescue_image)
{
    json_t *images = json_object ();
    s_add_image (txn, images, s_str (json_object_get (rec, "image"), "id"));
    s_add_image (txn, images, rescue_image);
    return images;
}

//  ---------------------------------------------------------------------
//  Claims: placement (store/zv_placement.c) plus the instance's CAS and the
//  server group's late check, in one transaction.

static zv_status_t
s_release (self_t *self, zv_txn_t *txn, const char *uuid)
{
    self->generation++;
    return zv_placement_release (txn, uuid);
}

//  Claim resources on host for instance uuid (still in scheduling): its
//  allocation, the provider's usage and the instance's host, all or
//  nothing in txn.  A hard server-group policy is checked here too, where
//  every member's committed host is visible (Nova's late check).
static zv_status_t
s_claim (self_t *self, zv_txn_t *txn, const char *uuid, const char *host, const json_t *spec,
         json_t **rec_p, char *errbuf, size_t errlen)
{
    const char *group_id = s_str (spec, "group_id");
    json_t *group = NULL;
    //  A group deleted meanwhile binds nothing.
    if (group_id && zv_group_find (txn, group_id, NULL, &group, errbuf, errlen) == ZV_OK) {
        zv_status_t status = zv_group_check (txn, group, uuid, host, errbuf, errlen);
        json_decref (group);
        if (status != ZV_OK)
            return status;
    }
    zv_status_t status = zv_placement_claim (txn, uuid, s_str (spec, "project_id"), host,
                                             json_object_get (spec, "resources"), errbuf, errlen);
    if (status == ZV_EEXIST) {
        //  A leftover claim of this consumer (a retried build): replace it.
        status = zv_placement_release (txn, uuid);
        if (status == ZV_OK)
            status = zv_placement_claim (txn, uuid, s_str (spec, "project_id"), host,
                                         json_object_get (spec, "resources"), errbuf, errlen);
    }
    if (status != ZV_OK)
        return status;
    json_t *expected = json_pack ("[s]", "scheduling");
    json_t *changes = json_pack ("{s:s, s:s}", "host", host, "node", host);
    status = zv_store_instance_cas (txn, uuid, expected, changes, rec_p, errbuf, errlen);
    json_decref (expected);
    json_decref (changes);
    if (status == ZV_OK)
        self->generation++;
    return status;
}

//  Put an instance into ERROR with a fault, release its claim and close its
//  create action, in txn.  Only from one of the expected task_states.
static zv_status_t
s_fail_build (self_t *self, zv_txn_t *txn, const char *uuid, const json_t *expected,
              zv_status_t why, const char *message)
{
    char errbuf [512];
    json_t *changes = json_pack ("{s:s, s:n, s:o}", "vm_state", "error", "task_state",
                                 "fault", s_fault (why, message));
    json_t *rec = NULL;
    zv_status_t status = zv_store_instance_cas (txn, uuid, expected, changes, &rec, errbuf, sizeof errbuf);
    json_decref (changes);
    if (status == ZV_OK) {
        status = s_release (self, txn, uuid);
        const char *rq = s_str (rec, "request_id");
        if (status == ZV_OK && rq)
            zv_store_action_finish (txn, uuid, rq, "Error", message);
        zv_warning (ACTOR, rq, "instance %s: ERROR: %s", uuid, message);
    }
    json_decref (rec);
    return status;
}

//  Mark an instance deleted, release its claim, finish its delete action.
static zv_status_t
s_finish_delete (self_t *self, zv_txn_t *txn, const char *uuid, const char *action_rq,
                 char *errbuf, size_t errlen)
{
    char now [32];
    json_t *expected = json_pack ("[s]", "deleting");
    json_t *changes = json_pack ("{s:s, s:n, s:s, s:b, s:s}", "vm_state", "deleted", "task_state",
                                 "power_state", "nostate", "deleted", 1, "deleted_at", s_iso_now (now));
    zv_status_t status = zv_store_instance_cas (txn, uuid, expected, changes, NULL, errbuf, errlen);
    json_decref (expected);
    json_decref (changes);
    if (status == ZV_OK)
        status = s_release (self, txn, uuid);
    if (status == ZV_OK && action_rq && *action_rq)
        zv_store_action_finish (txn, uuid, action_rq, "Success", NULL);
    //  Its console tokens die with it.
    if (status == ZV_OK)
        s_tokens_revoke (txn, uuid);
    //  A deleted server leaves its group.
    json_t *rec = NULL;
    if (status == ZV_OK && zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) == ZV_OK && s_str (rec, "group_id"))
        status = zv_group_remove_member (txn, s_str (rec, "group_id"), uuid);
    json_decref (rec);
    return status;
}

//  ---------------------------------------------------------------------
//  Scheduling

static void
s_job_destroy (s_job_t **job_p)
{
    if (!job_p || !*job_p)
        return;
    s_job_t *job = *job_p;
    json_decref (job->uuids);
    json_decref (job->spec);
    json_decref (job->ignore_hosts);
    free (job);
    *job_p = NULL;
}

static void
s_job_free (void *ctx)
{
    s_job_t *job = (s_job_t *) ctx;
    s_job_destroy (&job);
}

//  A live scheduler's identity (round robin), or NULL when none is up.
//  The string belongs to the schedulers hash: copy it before changing it.
static const char *
s_pick_scheduler (self_t *self)
{
    int64_t now = zv_mono_ms ();
    int64_t limit = (int64_t) self->cfg.service_down_time_s * 1000;
    size_t live = 0;
    for (int64_t *seen = (int64_t *) zhashx_first (self->schedulers); seen;
         seen = (int64_t *) zhashx_next (self->schedulers))
        live += now - *seen <= limit;
    if (!live)
        return NULL;
    size_t wanted = self->next_scheduler++ % live;
    for (int64_t *seen = (int64_t *) zhashx_first (self->schedulers); seen;
         seen = (int64_t *) zhashx_next (self->schedulers))
        if (now - *seen <= limit && wanted-- == 0)
            return (const char *) zhashx_cursor (self->schedulers);
    return NULL;
}

static void s_select_done (void *actor, void *ctx, zv_msg_t *reply);

//  Fail every instance of a job that is still scheduling.
static void
s_job_fail (self_t *self, s_job_t *job, zv_status_t why, const char *message)
{
    json_t *expected = json_pack ("[s]", "scheduling");
    size_t index;
    json_t *uuid;
    json_array_foreach (job->uuids, index, uuid) {
        zv_txn_t *txn = zv_txn_begin (self->store, s_batch_txn (self), true);
        if (!txn)
            continue;
        if (s_fail_build (self, txn, json_string_value (uuid), expected, why, message) == ZV_OK)
            zv_txn_commit (&txn);
        else
            zv_txn_abort (&txn);
    }
    json_decref (expected);
}

//  Send the job to a scheduler (after the batch commits), or park it until
//  one is up.  Takes the job.
static void
s_schedule (self_t *self, s_job_t **job_p)
{
    s_job_t *job = *job_p;
    *job_p = NULL;
    const char *scheduler = s_pick_scheduler (self);
    if (!scheduler) {
        zv_debug (ACTOR, job->rq, "no scheduler up yet: %zu instance(s) wait", json_array_size (job->uuids));
        zlistx_add_end (self->waiting, job);
        return;
    }
    zv_msg_t *msg = zv_msg_new ("scheduler.select_destinations");
    zv_msg_set_rq (msg, job->rq);
    zv_msg_set_src (msg, ACTOR);
    zv_msg_set_routing_str (msg, scheduler);
    snprintf (job->scheduler, sizeof job->scheduler, "%s", scheduler);
    json_t *body = json_pack ("{s:O, s:i, s:O}", "spec", job->spec,
                              "num_instances", (int) json_array_size (job->uuids),
                              "ignore_hosts", job->ignore_hosts);
    zv_msg_set_body (msg, &body);
    s_out_call (self, &msg, self->cfg.rpc_timeout_s * 1000, s_select_done, job, s_job_free);
}

//  Parked jobs go out when a scheduler is up; they fail after rpc_timeout.
static void
s_flush_waiting (self_t *self)
{
    size_t count = zlistx_size (self->waiting);
    for (size_t index = 0; index < count; index++) {
        s_job_t *job = (s_job_t *) zlistx_detach (self->waiting, NULL);
        if (zv_mono_ms () - job->queued_ms > (int64_t) self->cfg.rpc_timeout_s * 1000) {
            s_job_fail (self, job, ZV_ENOVALIDHOST, NO_VALID_HOST " (no scheduler is up)");
            s_job_destroy (&job);
        }
        else
            s_schedule (self, &job);    //  parks it again if still none
    }
}

static void s_build_unreachable (self_t *self, json_t *arg);

//  Cast the build of a claimed instance to its host, with the image records
//  its domain needs (one lookup per job: a job's instances share them).
static void
s_cast_build (self_t *self, json_t *rec, s_job_t *job, json_t *images)
{
    const char *host = s_str (rec, "host");
    zv_msg_t *msg = zv_msg_new ("compute.build_instance");
    zv_msg_set_rq (msg, job->rq);
    zv_msg_set_src (msg, ACTOR);
    char identity [320];
    snprintf (identity, sizeof identity, "compute.%s", host);
    zv_msg_set_routing_str (msg, identity);
    json_t *view = s_server_view (json_deep_copy (rec));
    json_t *body = json_pack ("{s:o, s:i, s:O}", "instance", view, "attempt", job->attempt,
                              "images", images);
    zv_msg_set_body (msg, &body);
    json_t *arg = json_pack ("{s:s, s:s, s:O, s:O, s:i}", "uuid", s_str (rec, "uuid"), "host", host,
                             "spec", job->spec, "ignore_hosts", job->ignore_hosts,
                             "attempt", job->attempt);
    json_object_set_new (arg, "rq", json_string (job->rq));
    s_out_cast (self, &msg, s_build_unreachable, arg);
}

//  The scheduler answered: claim each instance on the first host that
//  still has room (the store decides, so racing requests never
//  over-commit), then cast the builds.
static void
s_select_done (void *actor, void *ctx, zv_msg_t *reply)
{
    self_t *self = (self_t *) actor;
    s_job_t *job = (s_job_t *) ctx;
    if (zv_msg_status (reply) == ZV_EUNAVAILABLE) {
        //  That scheduler is gone (not connected): forget it, ask another
        //  or wait for one.
        zv_warning (ACTOR, job->rq, "scheduler %s is gone", job->scheduler);
        zhashx_delete (self->schedulers, job->scheduler);
        s_schedule (self, &job);
        return;
    }
    if (zv_msg_status (reply) != ZV_OK) {
        zv_status_t status = zv_msg_status (reply);
        char message [1200];
        if (status == ZV_ENOVALIDHOST)
            snprintf (message, sizeof message, NO_VALID_HOST "%s%s", *job->last_failure ? " " : "",
                      job->last_failure);
        else
            snprintf (message, sizeof message, NO_VALID_HOST " (scheduler: %s)%s%s", zv_msg_error_text (reply),
                      *job->last_failure ? " " : "", job->last_failure);
        s_job_fail (self, job, ZV_ENOVALIDHOST, message);
        s_job_destroy (&job);
        return;
    }
    //  Every claim of the job in one nested transaction: multi-create is
    //  all or nothing up to min_count, so the claims commit only when at
    //  least that many instances got a host.
    json_t *destinations = json_object_get (zv_msg_body (reply), "destinations");
    zv_txn_t *job_txn = zv_txn_begin (self->store, s_batch_txn (self), true);
    if (!job_txn) {
        s_job_fail (self, job, ZV_EIO, "cannot open a store transaction for the claims");
        s_job_destroy (&job);
        return;
    }
    json_t *placed = json_array ();         //  claimed instance records
    json_t *unplaced = json_array ();       //  uuids with no host
    size_t gone = 0;                        //  deleted meanwhile
    size_t index;
    json_t *uuid_value;
    json_array_foreach (job->uuids, index, uuid_value) {
        const char *uuid = json_string_value (uuid_value);
        json_t *hosts = json_array_get (destinations, index);
        bool claimed = false, deleted = false;
        for (size_t choice = 0; choice < json_array_size (hosts) && !claimed && !deleted; choice++) {
            const char *host = json_string_value (json_array_get (hosts, choice));
            if (!host)
                continue;
            char errbuf [512] = "";
            json_t *rec = NULL;
            zv_txn_t *txn = zv_txn_begin (self->store, job_txn, true);
            zv_status_t status = txn ? s_claim (self, txn, uuid, host, job->spec, &rec, errbuf, sizeof errbuf)
                                     : ZV_EIO;
            if (status == ZV_OK && zv_txn_commit (&txn) == ZV_OK) {
                claimed = true;
                json_array_append (placed, rec);
            }
            else {
                zv_txn_abort (&txn);
                zv_debug (ACTOR, job->rq, "claim of %s on %s: %s", uuid, host, errbuf);
                deleted = status == ZV_ECONFLICT && strstr (errbuf, "Conflict updating");
            }
            json_decref (rec);
        }
        if (deleted)
            gone++;
        else
        if (!claimed)
            json_array_append (unplaced, uuid_value);
    }
    size_t live = json_array_size (job->uuids) - gone;
    size_t need = (size_t) (job->min_count > 0 ? job->min_count : 1);
    if (need > live)
        need = live;
    char message [800];
    if (*job->last_failure)
        snprintf (message, sizeof message, NO_VALID_HOST " %s", job->last_failure);
    else
        snprintf (message, sizeof message, NO_VALID_HOST);
    if (json_array_size (placed) < need) {
        zv_txn_abort (&job_txn);
        if (json_array_size (placed))
            zv_info (ACTOR, job->rq, "only %zu of the minimum %zu instances fit: none is built",
                     json_array_size (placed), need);
        s_job_fail (self, job, ZV_ENOVALIDHOST, message);
    }
    else
    if (zv_txn_commit (&job_txn) != ZV_OK)
        s_job_fail (self, job, ZV_EIO, "cannot commit the claims");
    else {
        json_t *rec;
        json_t *images = s_action_images (s_batch_txn (self), json_array_get (placed, 0), NULL);
        json_array_foreach (placed, index, rec)
            s_cast_build (self, rec, job, images);
        json_decref (images);
        //  Beyond the minimum, what found no host is in ERROR, as a
        //  build with no valid host is.
        json_t *expected = json_pack ("[s]", "scheduling");
        json_array_foreach (unplaced, index, uuid_value) {
            zv_txn_t *txn = zv_txn_begin (self->store, s_batch_txn (self), true);
            if (txn && s_fail_build (self, txn, json_string_value (uuid_value), expected,
                                     ZV_ENOVALIDHOST, message) == ZV_OK)
                zv_txn_commit (&txn);
            else
                zv_txn_abort (&txn);
        }
        json_decref (expected);
    }
    json_decref (placed);
    json_decref (unplaced);
    s_job_destroy (&job);
}

//  The chosen host is not connected: give back its claim and reschedule
//  without it, up to max_attempts, as Nova reschedules a failed build.
static void
s_build_unreachable (self_t *self, json_t *arg)
{
    const char *uuid = s_str (arg, "uuid");
    const char *host = s_str (arg, "host");
    const char *rq = s_str (arg, "rq");
    int attempt = (int) s_int (arg, "attempt");
    zv_txn_t *txn = zv_txn_begin (self->store, s_batch_txn (self), true);
    if (!txn)
        return;
    char errbuf [512];
    json_t *expected = json_pack ("[s]", "scheduling");
    json_t *changes = json_pack ("{s:n, s:n}", "host", "node");
    zv_status_t status = zv_store_instance_cas (txn, uuid, expected, changes, NULL, errbuf, sizeof errbuf);
    json_decref (changes);
    if (status == ZV_OK)
        status = s_release (self, txn, uuid);
    if (status == ZV_OK && attempt >= self->cfg.max_attempts) {
        char message [600];
        snprintf (message, sizeof message, "Exceeded maximum number of retries. Exhausted all hosts "
                  "available for retrying build failures for instance %s (last: %s unreachable).", uuid, host);
        status = s_fail_build (self, txn, uuid, expected, ZV_ENOVALIDHOST, message);
        if (status == ZV_OK)
            zv_txn_commit (&txn);
        else
            zv_txn_abort (&txn);
        json_decref (expected);
        return;
    }
    json_decref (expected);
    if (status != ZV_OK) {
        zv_txn_abort (&txn);
        return;
    }
    zv_txn_commit (&txn);
    s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t));
    job->uuids = json_pack ("[s]", uuid);
    job->spec = json_incref (json_object_get (arg, "spec"));
    job->ignore_hosts = json_copy (json_object_get (arg, "ignore_hosts"));
    json_array_append_new (job->ignore_hosts, json_string (host));
    job->attempt = attempt + 1;
    job->min_count = 1;
    snprintf (job->last_failure, sizeof job->last_failure, "(host %s was unreachable)", host);
    snprintf (job->rq, sizeof job->rq, "%s", rq ? rq : "");
    job->queued_ms = zv_mono_ms ();
    zv_info (ACTOR, rq, "rescheduling %s (attempt %d): %s is unreachable", uuid, job->attempt, host);
    s_schedule (self, &job);
}

//  ---------------------------------------------------------------------
//  Servers

//  A host's zone, from zv_aggregate_by_host's map: its zoned aggregate's,
//  else the default zone.  Borrowed from by_host or the config.
static const char *
s_host_zone (self_t *self, const json_t *by_host, const char *host)
{
    const char *zone = self->cfg.default_availability_zone;
    size_t index;
    json_t *aggregate;
    json_array_foreach (json_object_get (by_host, host), index, aggregate)
        if (s_str (aggregate, "availability_zone"))
            zone = s_str (aggregate, "availability_zone");
    return zone;
}

//  The zones that exist are those of compute hosts, as in Nova: an
//  aggregate's zone once it has a host, and the default zone while some
//  compute host is in no zoned aggregate.
static bool
s_zone_exists (self_t *self, zv_txn_t *txn, const char *zone)
{
    json_t *nodes = s_collect (self, txn, ZV_TABLE_NODES, NULL, NULL);
    json_t *by_host = zv_aggregate_by_host (txn);
    bool found = false;
    size_t index;
    json_t *node;
    json_array_foreach (nodes, index, node) {
        found |= streq (s_host_zone (self, by_host, s_str (node, "host")), zone);
    }
    json_decref (nodes);
    json_decref (by_host);
    return found;
}

//  Resolve the instances a same_host / different_host hint names (one
//  uuid or an array of them) to the hosts they are on.
static zv_status_t
s_hint_hosts (zv_txn_t *txn, const char *hint, json_t *value, json_t **hosts_p,
              char *errbuf, size_t errlen)
{
    json_t *uuids = json_is_array (value) ? json_incref (value) : json_pack ("[O]", value);
    json_t *hosts = json_array ();
    zv_status_t status = ZV_OK;
    size_t index;
    json_t *uuid;
    json_array_foreach (uuids, index, uuid) {
        json_t *rec = NULL;
        if (!json_is_string (uuid) || !zv_uuid_valid (json_string_value (uuid))) {
            snprintf (errbuf, errlen, "Invalid scheduler hint %s: '%s' is not a server UUID.", hint,
                      json_is_string (uuid) ? json_string_value (uuid) : "(not a string)");
            status = ZV_EINVAL;
            break;
        }
        if (zv_store_get (txn, ZV_TABLE_INSTANCES, json_string_value (uuid), &rec) != ZV_OK
        ||  json_is_true (json_object_get (rec, "deleted"))) {
            snprintf (errbuf, errlen, "Invalid scheduler hint %s: server %s could not be found.", hint,
                      json_string_value (uuid));
            json_decref (rec);
            status = ZV_EINVAL;
            break;
        }
        if (s_str (rec, "host"))
            json_array_append (hosts, json_object_get (rec, "host"));
        json_decref (rec);
    }
    json_decref (uuids);
    if (status == ZV_OK)
        *hosts_p = hosts;
    else
        json_decref (hosts);
    return status;
}

//  Nova's request spec, from the request, flavor and image: resources
//  (placement classes), zone (and a forced host for "AZ:HOST"), flavor
//  extra specs, image properties, hints resolved to hosts, server group.
static zv_status_t
s_request_spec (self_t *self, zv_txn_t *txn, const zv_msg_t *msg, const json_t *flavor,
                const json_t *image, json_t **spec_p, char *errbuf, size_t errlen)
{
    const char *project = zv_msg_get_str (msg, "project_id");
    json_t *spec = json_pack ("{s:o, s:s, s:{s:O}, s:{s:O}}",
        "resources", zv_placement_flavor_resources (flavor),
        "project_id", project ? project : "",
        "flavor", "extra_specs", json_object_get (flavor, "extra_specs") ? json_object_get (flavor, "extra_specs") : json_null (),
        "image", "properties", json_object_get (image, "properties") ? json_object_get (image, "properties") : json_null ());
    zv_status_t status = ZV_OK;
    const char *requested = zv_msg_get_str (msg, "availability_zone");
    if (requested && *requested) {
        char zone [256], host [256] = "";
        const char *colon = strchr (requested, ':');
        snprintf (zone, sizeof zone, "%.*s", colon ? (int) (colon - requested) : (int) strlen (requested), requested);
        if (colon)
            snprintf (host, sizeof host, "%s", colon + 1);
        if (*zone && !s_zone_exists (self, txn, zone)) {
            snprintf (errbuf, errlen, "The requested availability zone is not available: %s", zone);
            status = ZV_EINVAL;
        }
        json_t *node = NULL;
        if (status == ZV_OK && *host && zv_store_get (txn, ZV_TABLE_NODES, host, &node) != ZV_OK) {
            snprintf (errbuf, errlen, "Compute host %s could not be found.", host);
            status = ZV_EINVAL;
        }
        json_decref (node);
        if (*zone)
            json_object_set_new (spec, "availability_zone", json_string (zone));
        if (*host)
            json_object_set_new (spec, "force_host", json_string (host));
    }
    json_t *hints = json_object_get (zv_msg_body (msg), "hints");
    static const char *host_hints [] = { "same_host", "different_host", NULL };
    for (int index = 0; status == ZV_OK && host_hints [index]; index++) {
        json_t *value = json_object_get (hints, host_hints [index]);
        json_t *hosts = NULL;
        if (value && (status = s_hint_hosts (txn, host_hints [index], value, &hosts, errbuf, errlen)) == ZV_OK)
            json_object_set_new (spec, host_hints [index], hosts);
    }
    json_t *group_hint = json_object_get (hints, "group");
    if (status == ZV_OK && group_hint) {
        json_t *group = NULL;
        if (!json_is_string (group_hint)) {
            snprintf (errbuf, errlen, "Invalid scheduler hint group: a server group ID is expected.");
            status = ZV_EINVAL;
        }
        else
        if (zv_group_find (txn, json_string_value (group_hint), project, &group, errbuf, errlen) != ZV_OK) {
            snprintf (errbuf, errlen, "Invalid scheduler hint group: server group %s could not be found.",
                      json_string_value (group_hint));
            status = ZV_EINVAL;
        }
        else {
            json_object_set (spec, "group_id", json_object_get (group, "id"));
            json_object_set_new (spec, "group", json_pack ("{s:O, s:O, s:o}",
                "policy", json_object_get (group, "policy"), "rules", json_object_get (group, "rules"),
                "hosts", zv_group_hosts (txn, group, NULL)));
        }
        json_decref (group);
    }
    if (status == ZV_OK)
        *spec_p = spec;
    else
        json_decref (spec);
    return status;
}

static zv_status_t
s_server_create (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *project = zv_msg_get_str (msg, "project_id");
    if (!s_valid_name ("server", zv_msg_get_str (msg, "name"), errbuf, errlen))
        return ZV_EINVAL;
    json_t *flavor = NULL, *image = NULL;
    zv_status_t status = s_find (txn, ZV_TABLE_FLAVORS, "flavor", zv_msg_get_str (msg, "flavor"),
                                 NULL, &flavor, errbuf, errlen);
    if (status == ZV_ENOTFOUND)
        snprintf (errbuf, errlen, "Flavor %s could not be found.", zv_msg_get_str (msg, "flavor"));
    if (status != ZV_OK)
        return status;
    status = s_find (txn, ZV_TABLE_IMAGES, "image", zv_msg_get_str (msg, "image"), NULL, &image,
                     errbuf, errlen);
    if (status == ZV_ENOTFOUND)
        snprintf (errbuf, errlen, "Image %s could not be found.", zv_msg_get_str (msg, "image"));
    if (status == ZV_OK && strcmp (s_str (image, "status"), "active") != 0) {
        snprintf (errbuf, errlen, "Image %s is not active.", s_str (image, "id"));
        status = ZV_EINVAL;
    }
    int64_t min_count = zv_msg_get_int (msg, "min_count", 1);
    int64_t max_count = zv_msg_get_int (msg, "max_count", min_count);
    if (status == ZV_OK && min_count > max_count) {
        snprintf (errbuf, errlen, "min_count (%lld) must be <= max_count (%lld).",
                  (long long) min_count, (long long) max_count);
        status = ZV_EINVAL;
    }
    json_t *spec = NULL;
    if (status == ZV_OK)
        status = s_request_spec (self, txn, msg, flavor, image, &spec, errbuf, errlen);
    if (status != ZV_OK) {
        json_decref (flavor);
        json_decref (image);
        return status;
    }
    const char *name = zv_msg_get_str (msg, "name");
    json_t *metadata = json_object_get (zv_msg_body (msg), "metadata");
    json_t *flavor_copy = json_pack ("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:o}",
        "id", json_object_get (flavor, "id"), "name", json_object_get (flavor, "name"),
        "vcpus", json_object_get (flavor, "vcpus"), "ram_mb", json_object_get (flavor, "ram_mb"),
        "disk_gb", json_object_get (flavor, "disk_gb"),
        "ephemeral_gb", json_object_get (flavor, "ephemeral_gb"),
        "swap_mb", json_object_get (flavor, "swap_mb"),
        "extra_specs", json_is_object (json_object_get (flavor, "extra_specs"))
                       ? json_deep_copy (json_object_get (flavor, "extra_specs")) : json_object ());
    //  The image's properties travel with the instance: they shape its
    //  domain (hw_architecture, ...), as Glance image metadata does in Nova.
    json_t *properties = json_object_get (image, "properties");
    json_t *image_copy = json_pack ("{s:O, s:O, s:o}", "id", json_object_get (image, "id"),
                                    "name", json_object_get (image, "name"), "properties",
                                    json_is_object (properties) ? json_incref (properties) : json_object ());
    char reservation [20], now [32];
    unsigned char random [4];
    randombytes_buf (random, sizeof random);
    snprintf (reservation, sizeof reservation, "r-%02x%02x%02x%02x", random [0], random [1], random [2], random [3]);
    s_iso_now (now);
    int64_t now_ms = zv_now_ms ();
    const char *rq = zv_msg_rq (msg);
    json_t *servers = json_array ();
    json_t *uuids = json_array ();
    for (int64_t index = 1; index <= max_count && status == ZV_OK; index++) {
        char uuid [ZV_UUID_LEN + 1], instance_name [300];
        zv_uuid_new (uuid);
        if (max_count > 1)
            snprintf (instance_name, sizeof instance_name, "%s-%lld", name, (long long) index);
        else
            snprintf (instance_name, sizeof instance_name, "%s", name);
        json_t *rec = json_pack ("{s:s, s:s, s:s, s:s, s:O, s:O, s:s, s:s, s:s, s:n, s:n, s:n,"
                                 " s:s, s:I, s:s, s:I, s:n, s:b, s:n, s:s, s:I, s:s, s:o, s:s}",
            "uuid", uuid, "name", instance_name,
            "project_id", project ? project : "", "user_id", zv_msg_get_str (msg, "user_id") ? zv_msg_get_str (msg, "user_id") : "",
            "flavor", flavor_copy, "image", image_copy,
            "vm_state", "building", "task_state", "scheduling", "power_state", "nostate",
            "host", "node", "fault",
            "created", now, "created_ms", (json_int_t) now_ms, "updated", now, "updated_ms", (json_int_t) now_ms,
            "launched_at", "deleted", 0, "deleted_at",
            "reservation_id", reservation, "launch_index", (json_int_t) (index - 1),
            "availability_zone", s_str (spec, "availability_zone") ? s_str (spec, "availability_zone")
                                                                    : self->cfg.default_availability_zone,
            "metadata", json_is_object (metadata) ? json_incref (metadata) : json_object (),
            "request_id", rq ? rq : "");
        //  What a reschedule needs to ask again, and the group to leave on delete.
        json_object_set (rec, "request_spec", spec);
        if (s_str (spec, "group_id"))
            json_object_set (rec, "group_id", json_object_get (spec, "group_id"));
        status = zv_store_insert (txn, ZV_TABLE_INSTANCES, uuid, rec);
        if (status == ZV_OK)
            status = zv_store_action_start (txn, uuid, "create", rq);
        if (status == ZV_OK && s_str (spec, "group_id"))
            status = zv_group_add_member (txn, s_str (spec, "group_id"), uuid);
        if (status == ZV_OK) {
            json_array_append_new (uuids, json_string (uuid));
            json_array_append_new (servers, s_server_view (rec));
        }
        else
            json_decref (rec);
    }
    if (status != ZV_OK) {
        snprintf (errbuf, errlen, "cannot record the instances (%s)", zv_status_name (status));
        json_decref (servers);
        json_decref (uuids);
    }
    else {
        s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t));
        job->uuids = uuids;
        job->spec = json_incref (spec);
        job->min_count = (int) min_count;
        job->ignore_hosts = json_array ();
        job->attempt = 1;
        snprintf (job->rq, sizeof job->rq, "%s", rq ? rq : "");
        job->queued_ms = zv_mono_ms ();
        s_schedule (self, &job);
        call->reply = json_pack ("{s:o, s:s}", "servers", servers, "reservation_id", reservation);
    }
    json_decref (spec);
    json_decref (flavor_copy);
    json_decref (image_copy);
    json_decref (flavor);
    json_decref (image);
    return status;
}

//  server_list works on the stored bytes, not on trees.  A listing of
//  thousands of servers used to decode every record (deleted ones too)
//  into a json tree, derive its view, and encode the lot again, and the
//  trees' allocations dominated the time.  Now each record is peeked for
//  the few keys the filters and the order need, and a kept record is
//  copied into the reply as msgpack, with the view's edits made on the way
//  (status and id set, store-internal keys dropped): the same bytes the
//  tree's encoding gave, key order included.  The records were checked by
//  zv_store_scan_raw as a decode would check them.
typedef struct {
    const char *project;
    bool all_projects, deleted;
    const char *host, *status;
} s_server_filter_t;

//  The keys a listing reads from a record, in s_listed_t.peek.
enum { S_LIST_DELETED, S_LIST_PROJECT, S_LIST_HOST, S_LIST_VM, S_LIST_TASK,
       S_LIST_CREATED, S_LIST_UUID, S_LIST_NAME, S_LIST_KEYS };

//  A record the filters kept, borrowed from the store until the handler
//  returns (nothing is written meanwhile).
typedef struct {
    const uint8_t *rec;
    size_t size;
    const char *status;             //  derived, static
    zv_pack_peek_t peek [S_LIST_KEYS];
} s_listed_t;

typedef struct {
    s_server_filter_t *filter;
    s_listed_t *items;
    size_t count, alloc;
    bool failed;                    //  out of memory
} s_list_scan_t;

//  A peeked string value is equal to text (NULL: absent or not a string).
static bool
s_peek_is (const zv_pack_peek_t *peek, const char *text)
{
    return peek->found == 1 && strlen (text) == peek->len && memcmp (peek->str, text, peek->len) == 0;
}

//  The state names are short: one that is not is no state at all.
static const char *
s_peek_cstr (const zv_pack_peek_t *peek, char *buf, size_t len)
{
    if (peek->found != 1 || peek->len >= len)
        return peek->found == 1 ? "" : NULL;
    memcpy (buf, peek->str, peek->len);
    buf [peek->len] = '\0';
    return buf;
}

static bool
s_server_keep (const char *key, const void *data, size_t size, void *arg)
{
    (void) key;
    s_list_scan_t *scan = (s_list_scan_t *) arg;
    s_server_filter_t *filter = scan->filter;
    s_listed_t item = { data, size, NULL, {
        [S_LIST_DELETED] = { .key = "deleted",    .kind = ZV_PACK_PEEK_BOOL },
        [S_LIST_PROJECT] = { .key = "project_id", .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_HOST]    = { .key = "host",       .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_VM]      = { .key = "vm_state",   .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_TASK]    = { .key = "task_state", .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_CREATED] = { .key = "created",    .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_UUID]    = { .key = "uuid",       .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_NAME]    = { .key = "name",       .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
    } };
    zv_pack_peek_map (data, size, item.peek, S_LIST_KEYS);
    zv_pack_peek_t *peek = item.peek;
    if (!filter->deleted && peek [S_LIST_DELETED].found == 1 && peek [S_LIST_DELETED].integer)
        return true;
    if (!filter->all_projects && filter->project && peek [S_LIST_PROJECT].found == 1
    &&  !s_peek_is (&peek [S_LIST_PROJECT], filter->project))
        return true;
    if (filter->host && !s_peek_is (&peek [S_LIST_HOST], filter->host))
        return true;
    char vm_name [64], task_name [64];
    int vm = zv_vm_state_from_name (s_peek_cstr (&peek [S_LIST_VM], vm_name, sizeof vm_name));
    int task = zv_task_state_from_name (s_peek_cstr (&peek [S_LIST_TASK], task_name, sizeof task_name));
    item.status = (vm < 0 || task < 0) ? "UNKNOWN"
                : zv_status_derive ((zv_vm_state_t) vm, (zv_task_state_t) task);
    if (filter->status && strcasecmp (filter->status, item.status) != 0)
        return true;
    if (scan->count == scan->alloc) {
        size_t alloc = scan->alloc ? scan->alloc * 2 : 256;
        s_listed_t *items = (s_listed_t *) realloc (scan->items, alloc * sizeof *items);
        if (!items) {
            scan->failed = true;
            return false;
        }
        scan->items = items;
        scan->alloc = alloc;
    }
    scan->items [scan->count++] = item;
    return true;
}

//  Peeked strings as strcmp orders them (a missing one sorts as "").
static int
s_peek_cmp (const zv_pack_peek_t *a, const zv_pack_peek_t *b)
{
    size_t alen = a->found == 1 ? a->len : 0, blen = b->found == 1 ? b->len : 0;
    int order = memcmp (alen ? a->str : "", blen ? b->str : "", alen < blen ? alen : blen);
    return order ? order : (alen > blen) - (alen < blen);
}

//  Newest first, as Nova lists (created, then id, both descending).
static int
s_newest_first (const void *a, const void *b)
{
    const s_listed_t *ra = (const s_listed_t *) a, *rb = (const s_listed_t *) b;
    int order = s_peek_cmp (&rb->peek [S_LIST_CREATED], &ra->peek [S_LIST_CREATED]);
    return order ? order : s_peek_cmp (&rb->peek [S_LIST_UUID], &ra->peek [S_LIST_UUID]);
}

//  Append the view of a listed record (s_server_view's edits, made on the
//  bytes), or for pollers only {id, name, status}: a fraction of the bytes.
static zv_status_t
s_server_put (zv_pack_buf_t *buf, const s_listed_t *item, bool names_only)
{
    zv_pack_buf_t status = { 0 };
    zv_status_t rc = zv_pack_put_str (&status, item->status, strlen (item->status));
    const zv_pack_peek_t *uuid = &item->peek [S_LIST_UUID], *name = &item->peek [S_LIST_NAME];
    if (rc == ZV_OK && names_only)
        rc = zv_pack_put_map (buf, 3)
          || zv_pack_put_str (buf, "id", 2)
          || zv_pack_put_bytes (buf, item->rec + uuid->at, uuid->size)
          || zv_pack_put_str (buf, "name", 4)
          || zv_pack_put_bytes (buf, item->rec + name->at, name->size)
          || zv_pack_put_str (buf, "status", 6)
          || zv_pack_put_bytes (buf, status.data, status.size) ? ZV_ENOMEM : ZV_OK;
    else
    if (rc == ZV_OK) {
        const zv_pack_set_t set [] = {
            { "status", status.data, status.size },
            //  A record without a uuid gets no id, as json_object_set_new
            //  of a NULL value set none.
            { "id", uuid->size ? item->rec + uuid->at : NULL, uuid->size },
        };
        rc = zv_pack_put_map_edit (buf, item->rec, item->size, s_internal_keys, S_INTERNAL_KEYS, set, 2);
    }
    zv_pack_buf_free (&status);
    return rc;
}

static zv_status_t
s_server_list (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) self;
    const zv_msg_t *msg = call->msg;
    s_server_filter_t filter = {
        zv_msg_get_str (msg, "project_id"), zv_msg_get_bool (msg, "all_projects", false),
        zv_msg_get_bool (msg, "deleted", false), zv_msg_get_str (msg, "host"), zv_msg_get_str (msg, "status")
    };
    s_list_scan_t scan = { &filter, NULL, 0, 0, false };
    //  A store error ends the listing where it stopped, as before.
    zv_store_scan_raw (txn, ZV_TABLE_INSTANCES, "", s_server_keep, &scan);
    if (scan.count)
        qsort (scan.items, scan.count, sizeof (s_listed_t), s_newest_first);
    int64_t limit = zv_msg_get_int (msg, "limit", 0);
    bool names_only = zv_msg_get_bool (msg, "names_only", false);
    //  For names_only, a record without a uuid or name is left out, as
    //  json_pack of a missing value left it out.
    size_t count = 0;
    for (size_t index = 0; index < scan.count && (limit <= 0 || (int64_t) count < limit); index++)
        if (!names_only || (scan.items [index].peek [S_LIST_UUID].size
                        &&  scan.items [index].peek [S_LIST_NAME].size))
            count++;
    zv_pack_buf_t buf = { 0 };
    zv_status_t status = scan.failed ? ZV_ENOMEM : zv_pack_put_array (&buf, count);
    for (size_t index = 0, put = 0; status == ZV_OK && put < count; index++) {
        const s_listed_t *item = &scan.items [index];
        if (names_only && !(item->peek [S_LIST_UUID].size && item->peek [S_LIST_NAME].size))
            continue;
        status = s_server_put (&buf, item, names_only);
        put++;
    }
    free (scan.items);
    if (status == ZV_OK) {
        call->reply = json_pack ("{s:o}", "servers", zv_pack_raw (buf.data, buf.size));
        if (!call->reply)
            status = ZV_ENOMEM;
    }
    zv_pack_buf_free (&buf);
    if (status != ZV_OK)
        snprintf (errbuf, errlen, "cannot list servers (%s)", zv_status_name (status));
    return status;
}

//  An instance by uuid (deleted ones too) or by unique live name in project.
static zv_status_t
s_find_server (self_t *self, zv_txn_t *txn, const zv_msg_t *msg, json_t **rec_p,
               char *errbuf, size_t errlen)
{
    (void) self;
    const char *ref = zv_msg_get_str (msg, "ref");
    zv_status_t status = s_find (txn, ZV_TABLE_INSTANCES, "server", ref,
                                 zv_msg_get_str (msg, "project_id"), rec_p, errbuf, errlen);
    if (status == ZV_ENOTFOUND)
        snprintf (errbuf, errlen, "No server with a name or ID of '%s' exists.", ref);
    return status;
}

static zv_status_t
s_server_show (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = s_find_server (self, txn, call->msg, &rec, errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "server", s_server_view (rec));
    return status;
}

static void s_terminate_unreachable (self_t *self, json_t *arg);

//  Ask the instance's host to destroy it; the compute answers with
//  instance_destroyed.  Without a host the delete is finished here.
static zv_status_t
s_start_terminate (self_t *self, zv_txn_t *txn, json_t *rec, const char *action_rq,
                   char *errbuf, size_t errlen)
{
    const char *uuid = s_str (rec, "uuid");
    const char *host = s_str (rec, "host");
    if (!host || !*host)
        return s_finish_delete (self, txn, uuid, action_rq, errbuf, errlen);
    zv_msg_t *cast = zv_msg_new ("compute.terminate_instance");
    zv_msg_set_rq (cast, action_rq);
    zv_msg_set_src (cast, ACTOR);
    char identity [320];
    snprintf (identity, sizeof identity, "compute.%s", host);
    zv_msg_set_routing_str (cast, identity);
    json_t *body = json_pack ("{s:s, s:s}", "uuid", uuid, "action_request_id", action_rq ? action_rq : "");
    zv_msg_set_body (cast, &body);
    s_out_cast (self, &cast, s_terminate_unreachable,
                json_pack ("{s:s, s:s}", "uuid", uuid, "rq", action_rq ? action_rq : ""));
    return ZV_OK;
}

//  The host is not connected: delete locally, as Nova does when the
//  compute service is down (its domain, if any, is reaped at its next sync).
static void
s_terminate_unreachable (self_t *self, json_t *arg)
{
    char errbuf [512];
    zv_txn_t *txn = zv_txn_begin (self->store, s_batch_txn (self), true);
    if (!txn)
        return;
    if (s_finish_delete (self, txn, s_str (arg, "uuid"), s_str (arg, "rq"), errbuf, sizeof errbuf) == ZV_OK) {
        zv_info (ACTOR, s_str (arg, "rq"), "instance %s deleted locally (host unreachable)", s_str (arg, "uuid"));
        zv_txn_commit (&txn);
    }
    else
        zv_txn_abort (&txn);
}

static zv_status_t
s_server_delete (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = s_find_server (self, txn, call->msg, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *rq = zv_msg_rq (call->msg);
    json_t *updated = NULL;
    status = zv_store_instance_action (txn, s_str (rec, "uuid"), ZV_ACTION_DELETE, rq,
                                       &updated, errbuf, errlen);
    json_decref (rec);
    if (status == ZV_OK)
        status = s_start_terminate (self, txn, updated, rq, errbuf, errlen);
    if (status == ZV_OK) {
        json_t *now = NULL;
        zv_store_get (txn, ZV_TABLE_INSTANCES, s_str (updated, "uuid"), &now);
        call->reply = json_pack ("{s:o}", "server", s_server_view (now ? now : json_incref (updated)));
    }
    json_decref (updated);
    return status;
}

static zv_status_t
s_server_events (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = s_find_server (self, txn, call->msg, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    json_t *events = zv_store_action_list (txn, s_str (rec, "uuid"));
    json_decref (rec);
    if (!events) {
        snprintf (errbuf, errlen, "cannot read the action log");
        return ZV_EIO;
    }
    call->reply = json_pack ("{s:o}", "events", events);
    return ZV_OK;
}

//  conductor.server_action: a user action on a server, as Nova's compute
//  API takes it.  The transition table judges it and moves task_state in
//  the same transaction that opens its action record; the host is then
//  told (compute.instance_action) and reports the end with
//  instance_update, whose expected task_state is the one set here, so an
//  action and a delete racing cannot both win.  The actions a host can run
//  today; the others in the table are refused as not implemented.
static const zv_action_t s_host_actions [] = {
    ZV_ACTION_REBOOT, ZV_ACTION_REBOOT_HARD, ZV_ACTION_STOP, ZV_ACTION_START,
    ZV_ACTION_PAUSE, ZV_ACTION_UNPAUSE, ZV_ACTION_SUSPEND, ZV_ACTION_RESUME,
    ZV_ACTION_RESCUE, ZV_ACTION_UNRESCUE, ZV_ACTION_SET_PASSWORD,
};

static void s_action_unreachable (self_t *self, json_t *arg);

static zv_status_t
s_server_action (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *name = zv_msg_get_str (msg, "action");
    int action = zv_action_from_name (name);
    bool served = false;
    for (size_t index = 0; index < sizeof s_host_actions / sizeof s_host_actions [0]; index++)
        served |= action >= 0 && (zv_action_t) action == s_host_actions [index];
    if (action < 0) {
        snprintf (errbuf, errlen, "Unknown server action '%s'.", name);
        return ZV_EINVAL;
    }
    if (!served) {
        snprintf (errbuf, errlen, "Server action '%s' is not implemented by this cloud yet.", name);
        return ZV_EUNSUPPORTED;
    }
    if (action == ZV_ACTION_SET_PASSWORD && !zv_msg_get_str (msg, "password")) {
        snprintf (errbuf, errlen, "changePassword needs a password.");
        return ZV_EINVAL;
    }
    json_t *rec = NULL;
    zv_status_t status = s_find_server (self, txn, msg, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *uuid = s_str (rec, "uuid");
    const char *host = s_str (rec, "host");
    //  The rescue image: the one asked for, else [libvirt] rescue_image_id,
    //  else the instance's own.
    json_t *rescue = NULL;
    if (action == ZV_ACTION_RESCUE) {
        const char *ref = zv_msg_get_str (msg, "image");
        if (!ref && *self->cfg.rescue_image_id)
            ref = self->cfg.rescue_image_id;
        if (!ref)
            ref = s_str (json_object_get (rec, "image"), "id");
        status = s_find (txn, ZV_TABLE_IMAGES, "image", ref, NULL, &rescue, errbuf, errlen);
        if (status == ZV_ENOTFOUND)
            snprintf (errbuf, errlen, "Image %s could not be found.", ref);
        else
        if (status == ZV_OK && strcmp (s_str (rescue, "status"), "active") != 0) {
            snprintf (errbuf, errlen, "Image %s is not active.", s_str (rescue, "id"));
            status = ZV_ECONFLICT;
        }
    }
    json_t *updated = NULL;
    const char *rq = zv_msg_rq (msg);
    if (status == ZV_OK)
        status = zv_store_instance_action (txn, uuid, (zv_action_t) action, rq, &updated, errbuf, errlen);
    //  A state that allows the action on an instance no host holds (ERROR
    //  before scheduling) still cannot run it.
    if (status == ZV_OK && (!host || !*host)) {
        snprintf (errbuf, errlen, "Cannot '%s' instance %s: it is on no host.", name, uuid);
        status = ZV_ECONFLICT;
    }
    if (status == ZV_OK) {
        zv_msg_t *cast = zv_msg_new ("compute.instance_action");
        zv_msg_set_rq (cast, rq);
        zv_msg_set_src (cast, ACTOR);
        char identity [320];
        snprintf (identity, sizeof identity, "compute.%s", host);
        zv_msg_set_routing_str (cast, identity);
        json_t *body = json_pack ("{s:O, s:s, s:s, s:o}", "instance", updated, "action", name,
                                  "action_request_id", rq,
                                  "images", s_action_images (txn, updated, rescue ? s_str (rescue, "id") : NULL));
        s_server_view (json_object_get (body, "instance"));
        if (rescue)
            json_object_set_new (body, "rescue_image", json_string (s_str (rescue, "id")));
        if (action == ZV_ACTION_SET_PASSWORD) {
            json_object_set_new (body, "password", json_string (zv_msg_get_str (msg, "password")));
            json_object_set_new (body, "user", json_string (zv_msg_get_str (msg, "user")
                                                            ? zv_msg_get_str (msg, "user") : "root"));
        }
        zv_msg_set_body (cast, &body);
        s_out_cast (self, &cast, s_action_unreachable,
                    json_pack ("{s:s, s:s, s:s, s:O}", "uuid", uuid, "rq", rq, "host", host,
                               "task_state", json_object_get (updated, "task_state")));
        zv_info (ACTOR, rq, "instance %s: %s on %s", uuid, name, host);
        call->reply = json_pack ("{s:o, s:s}", "server", s_server_view (json_incref (updated)),
                                 "request_id", rq);
    }
    json_decref (updated);
    json_decref (rescue);
    json_decref (rec);
    return status;
}

//  The host is not connected: the action cannot start.  Its task_state
//  goes back to None (the instance is as it was) and the action record
//  says why, as Nova reverts a task when the compute RPC fails.
static void
s_action_unreachable (self_t *self, json_t *arg)
{
    char errbuf [512], message [400];
    zv_txn_t *txn = zv_txn_begin (self->store, s_batch_txn (self), true);
    if (!txn)
        return;
    snprintf (message, sizeof message, "compute host %s is not connected", s_str (arg, "host"));
    json_t *expected = json_pack ("[O]", json_object_get (arg, "task_state"));
    json_t *changes = json_pack ("{s:n, s:o}", "task_state", "fault", s_fault (ZV_EUNAVAILABLE, message));
    if (zv_store_instance_cas (txn, s_str (arg, "uuid"), expected, changes, NULL, errbuf, sizeof errbuf) == ZV_OK) {
        zv_store_action_finish (txn, s_str (arg, "uuid"), s_str (arg, "rq"), "Error", message);
        zv_txn_commit (&txn);
    }
    else
        zv_txn_abort (&txn);
    json_decref (expected);
    json_decref (changes);
}

//  ---------------------------------------------------------------------
//  Consoles: tokens (Nova's consoleauth) and what only the host can answer

static void
s_request_free (void *ctx)
{
    zv_msg_t *copy = (zv_msg_t *) ctx;
    zv_msg_destroy (&copy);
}

//  The host answered: its body (and payload) become the asker's reply.
static void
s_relay_done (void *actor, void *ctx, zv_msg_t *reply)
{
    self_t *self = (self_t *) actor;
    zv_msg_t *request = (zv_msg_t *) ctx;
    zv_msg_t *answer;
    if (zv_msg_status (reply) == ZV_OK) {
        answer = zv_msg_reply (request);
        json_t *body = json_deep_copy (zv_msg_body (reply));
        zv_msg_set_body (answer, &body);
        size_t size = 0;
        const void *payload = zv_msg_payload (reply, &size);
        if (payload)
            zv_msg_set_payload (answer, payload, size);
    }
    else
        answer = zv_msg_error (request, zv_msg_status (reply), "%s", zv_msg_error_text (reply));
    zv_msg_set_src (answer, ACTOR);
    s_out (self, &answer);
    zv_msg_destroy (&request);
}

//  Ask the instance's host (type, body) and answer the caller with what it
//  says, once it does: the handler returns at once (call->deferred).
static zv_status_t
s_relay_to_host (self_t *self, s_call_t *call, const json_t *rec, const char *type, json_t *body,
                 char *errbuf, size_t errlen)
{
    const char *host = s_str (rec, "host");
    if (!host || !*host || json_is_true (json_object_get (rec, "deleted"))) {
        snprintf (errbuf, errlen, "Instance %s is on no host.", s_str (rec, "uuid"));
        json_decref (body);
        return ZV_ECONFLICT;
    }
    zv_msg_t *ask = zv_msg_new (type);
    zv_msg_set_rq (ask, zv_msg_rq (call->msg));
    zv_msg_set_src (ask, ACTOR);
    char identity [320];
    snprintf (identity, sizeof identity, "compute.%s", host);
    zv_msg_set_routing_str (ask, identity);
    zv_msg_set_body (ask, &body);
    s_out_call (self, &ask, 10000, s_relay_done, zv_msg_request_stub (call->msg), s_request_free);
    call->deferred = true;
    return ZV_OK;
}

//  conductor.console_log: the tail of the guest's serial console log.
static zv_status_t
s_console_log (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = s_find_server (self, txn, call->msg, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    status = s_relay_to_host (self, call, rec, "compute.console_log",
                              json_pack ("{s:s, s:I}", "uuid", s_str (rec, "uuid"),
                                         "lines", (json_int_t) zv_msg_get_int (call->msg, "lines", 50)),
                              errbuf, errlen);
    json_decref (rec);
    return status;
}

//  conductor.server_screenshot: the guest's screen as PNG (payload).
static zv_status_t
s_server_screenshot (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = s_find_server (self, txn, call->msg, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    if (strcmp (s_str (rec, "power_state"), "running") != 0 && strcmp (s_str (rec, "power_state"), "paused") != 0) {
        snprintf (errbuf, errlen, "Instance %s is not running (power state %s): it has no screen.",
                  s_str (rec, "uuid"), s_str (rec, "power_state"));
        json_decref (rec);
        return ZV_ECONFLICT;
    }
    status = s_relay_to_host (self, call, rec, "compute.screenshot",
                              json_pack ("{s:s}", "uuid", s_str (rec, "uuid")), errbuf, errlen);
    json_decref (rec);
    return status;
}

//  Tokens are stored by their sha256 only: the store never holds one that
//  could open a console.
static void
s_token_key (const char *token, char key [65])
{
    unsigned char digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, (const unsigned char *) token, strlen (token));
    sodium_bin2hex (key, 65, digest, sizeof digest);
}

typedef struct {
    const char *uuid;               //  tokens of this instance (NULL: expired ones)
    int64_t now_ms;
    json_t *keys;
} s_tokens_t;

static bool
s_token_visit (const char *key, json_t *rec, void *arg)
{
    s_tokens_t *tokens = (s_tokens_t *) arg;
    if (tokens->uuid ? streq (s_str (rec, "instance_uuid") ? s_str (rec, "instance_uuid") : "", tokens->uuid)
                     : s_int (rec, "expires_ms") <= tokens->now_ms)
        json_array_append_new (tokens->keys, json_string (key));
    return true;
}

//  Revoke an instance's console tokens (delete), or every expired one.
static void
s_tokens_revoke (zv_txn_t *txn, const char *uuid)
{
    s_tokens_t tokens = { uuid, zv_now_ms (), json_array () };
    zv_store_scan (txn, ZV_TABLE_CONSOLE_TOKENS, "", s_token_visit, &tokens);
    size_t index;
    json_t *key;
    json_array_foreach (tokens.keys, index, key)
        zv_store_del (txn, ZV_TABLE_CONSOLE_TOKENS, json_string_value (key));
    json_decref (tokens.keys);
}

//  conductor.console_url: a console token for one instance and kind, and
//  the URL that carries it (Nova's remote console).
static zv_status_t
s_console_url (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const char *kind = zv_msg_get_str (call->msg, "kind") ? zv_msg_get_str (call->msg, "kind") : "novnc";
    if (!streq (kind, "novnc") && !streq (kind, "serial")) {
        snprintf (errbuf, errlen, "Unsupported console type '%s' (novnc, serial).", kind);
        return ZV_EINVAL;
    }
    json_t *rec = NULL;
    zv_status_t status = s_find_server (self, txn, call->msg, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *uuid = s_str (rec, "uuid");
    const json_t *console = json_object_get (json_object_get (rec, "console"), streq (kind, "novnc") ? "vnc" : "serial");
    const char *host = s_str (console, "host");
    json_int_t port = json_integer_value (json_object_get (console, "port"));
    const char *task = s_str (rec, "task_state");
    if (json_is_true (json_object_get (rec, "deleted")) || (task && streq (task, "deleting"))) {
        snprintf (errbuf, errlen, "Instance %s is being deleted: it has no console.", uuid);
        status = ZV_ECONFLICT;
    }
    else
    if (!host || port <= 0 || strcmp (s_str (rec, "power_state"), "running") != 0) {
        snprintf (errbuf, errlen, "Guest of instance %s has no %s console available (it must run on a "
                  "hypervisor with consoles).", uuid, kind);
        status = ZV_ECONFLICT;
    }
    if (status == ZV_OK) {
        unsigned char random [32];
        char token [65], key [65], now [32];
        randombytes_buf (random, sizeof random);
        sodium_bin2hex (token, sizeof token, random, sizeof random);
        s_token_key (token, key);
        int64_t expires_ms = zv_now_ms () + (int64_t) self->cfg.token_ttl_s * 1000;
        json_t *record = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "instance_uuid", uuid,
                                    "kind", kind, "host", host, "compute", s_str (rec, "host"),
                                    "port", port, "expires_ms", (json_int_t) expires_ms,
                                    "created_at", s_iso_now (now), "expires_at", zv_iso8601 (expires_ms, now));
        status = zv_store_put (txn, ZV_TABLE_CONSOLE_TOKENS, key, record);
        char url [1400];
        if (streq (kind, "novnc"))
            snprintf (url, sizeof url, "%s%spath=websockify%%3Ftoken%%3D%s", self->cfg.novncproxy_base_url,
                      strchr (self->cfg.novncproxy_base_url, '?') ? "&" : "?", token);
        else
            snprintf (url, sizeof url, "%s%stoken=%s", self->cfg.serial_base_url,
                      strchr (self->cfg.serial_base_url, '?') ? "&" : "?", token);
        if (status == ZV_OK) {
            call->reply = json_pack ("{s:{s:s, s:s, s:s, s:O}}", "console", "type", kind,
                                     "protocol", streq (kind, "novnc") ? "vnc" : "serial", "url", url,
                                     "expires_at", json_object_get (record, "expires_at"));
            zv_info (ACTOR, zv_msg_rq (call->msg), "console %s of %s: token %.8s... until %s", kind, uuid,
                     token, s_str (record, "expires_at"));
        }
        sodium_memzero (token, sizeof token);
        json_decref (record);
    }
    json_decref (rec);
    return status;
}

//  conductor.console_authorize: the console proxy asks whether a token
//  opens a console, and where.  A token dies with its instance, when its
//  instance leaves the host it was made for, and when it expires.
static zv_status_t
s_console_authorize (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) self;
    char key [65];
    s_token_key (zv_msg_get_str (call->msg, "token"), key);
    json_t *token = NULL, *rec = NULL;
    zv_status_t status = ZV_OK;
    if (zv_store_get (txn, ZV_TABLE_CONSOLE_TOKENS, key, &token) != ZV_OK) {
        snprintf (errbuf, errlen, "Invalid or expired console token.");
        return ZV_ENOTFOUND;
    }
    const char *uuid = s_str (token, "instance_uuid");
    if (s_int (token, "expires_ms") <= zv_now_ms ()) {
        snprintf (errbuf, errlen, "Invalid or expired console token.");
        status = ZV_ENOTFOUND;
    }
    else
    if (zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) != ZV_OK
    ||  json_is_true (json_object_get (rec, "deleted"))
    ||  !s_str (rec, "host") || !streq (s_str (rec, "host"), s_str (token, "compute") ? s_str (token, "compute") : "")) {
        snprintf (errbuf, errlen, "Invalid or expired console token (its instance is gone or has moved).");
        status = ZV_ENOTFOUND;
    }
    if (status == ZV_OK)
        call->reply = json_pack ("{s:s, s:O, s:O, s:O, s:O}", "instance_uuid", uuid,
                                 "kind", json_object_get (token, "kind"), "host", json_object_get (token, "host"),
                                 "port", json_object_get (token, "port"),
                                 "expires_at", json_object_get (token, "expires_at"));
    else {
        //  A dead token goes; the refusal is the answer (kept: ZV_OK).
        zv_store_del (txn, ZV_TABLE_CONSOLE_TOKENS, key);
        call->error = status;
        snprintf (call->errtext, sizeof call->errtext, "%s", errbuf);
        status = ZV_OK;
    }
    json_decref (token);
    json_decref (rec);
    return status;
}

//  ---------------------------------------------------------------------
//  From compute hosts

static void
s_count_failure (self_t *self, const char *host, bool failed)
{
    int64_t *count = (int64_t *) zhashx_lookup (self->failed_builds, host);
    if (!count) {
        count = (int64_t *) zmalloc (sizeof (int64_t));
        zhashx_insert (self->failed_builds, host, count);
    }
    *count = failed ? *count + 1 : 0;
}

//  A build failed on its host (compute says build_failed): as Nova does,
//  give back the claim and schedule again without the hosts tried so far,
//  up to max_attempts; then ERROR with the last failure as the fault.
static zv_status_t
s_build_failed (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *uuid = zv_msg_get_str (msg, "uuid");
    json_t *rec = NULL;
    if (zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) != ZV_OK) {
        snprintf (errbuf, errlen, "Instance %s could not be found.", uuid);
        return ZV_ENOTFOUND;
    }
    const char *host = s_str (rec, "host") ? s_str (rec, "host") : "?";
    const char *why = zv_msg_get_str (msg, "action_message") ? zv_msg_get_str (msg, "action_message") : "build failed";
    s_count_failure (self, host, true);
    json_t *tried = json_copy (json_object_get (rec, "build_hosts"));
    if (!json_is_array (tried)) {
        json_decref (tried);
        tried = json_array ();
    }
    json_array_append_new (tried, json_string (host));
    json_t *spec = json_incref (json_object_get (rec, "request_spec"));
    char failure [600];
    snprintf (failure, sizeof failure, "Build failed on %s: %s", host, why);
    zv_status_t status;
    if ((int) json_array_size (tried) >= self->cfg.max_attempts || !json_is_object (spec)) {
        //  Out of attempts: the compute's ERROR changes stand, with a fault
        //  that says so when there was more than one attempt.
        json_t *changes = json_deep_copy (json_object_get (zv_msg_body (msg), "changes"));
        if (json_array_size (tried) > 1) {
            char message [900];
            snprintf (message, sizeof message, "Exceeded maximum number of retries. Exhausted all hosts "
                      "available for retrying build failures for instance %s. %s", uuid, failure);
            json_object_set_new (changes, "fault", s_fault (ZV_EIO, message));
        }
        json_object_set (changes, "build_hosts", tried);
        status = zv_store_instance_cas (txn, uuid, json_object_get (zv_msg_body (msg), "expected_task_state"),
                                        changes, NULL, errbuf, errlen);
        json_decref (changes);
        if (status == ZV_OK)
            status = s_release (self, txn, uuid);
        if (status == ZV_OK && zv_msg_get_str (msg, "action_request_id"))
            zv_store_action_finish (txn, uuid, zv_msg_get_str (msg, "action_request_id"), "Error", failure);
    }
    else {
        json_t *changes = json_pack ("{s:s, s:n, s:n, s:O}", "task_state", "scheduling", "host", "node",
                                     "build_hosts", tried);
        status = zv_store_instance_cas (txn, uuid, json_object_get (zv_msg_body (msg), "expected_task_state"),
                                        changes, NULL, errbuf, errlen);
        json_decref (changes);
        if (status == ZV_OK)
            status = s_release (self, txn, uuid);
        if (status == ZV_OK) {
            s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t));
            job->uuids = json_pack ("[s]", uuid);
            job->spec = json_incref (spec);
            job->ignore_hosts = json_incref (tried);
            job->attempt = (int) json_array_size (tried) + 1;
            job->min_count = 1;
            snprintf (job->last_failure, sizeof job->last_failure, "%s", failure);
            snprintf (job->rq, sizeof job->rq, "%s", zv_msg_get_str (msg, "action_request_id")
                                                     ? zv_msg_get_str (msg, "action_request_id") : "");
            job->queued_ms = zv_mono_ms ();
            zv_info (ACTOR, job->rq, "rescheduling %s (attempt %d): %s", uuid, job->attempt, failure);
            s_schedule (self, &job);
        }
    }
    if (status == ZV_OK)
        call->reply = json_pack ("{s:b}", "rescheduled", (int) json_array_size (tried) < self->cfg.max_attempts);
    json_decref (spec);
    json_decref (tried);
    json_decref (rec);
    return status;
}

static zv_status_t
s_instance_update (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    if (zv_msg_get_bool (msg, "build_failed", false))
        return s_build_failed (self, txn, call, errbuf, errlen);
    const char *uuid = zv_msg_get_str (msg, "uuid");
    json_t *body = zv_msg_body (msg);
    json_t *rec = NULL;
    zv_status_t status = zv_store_instance_cas (txn, uuid, json_object_get (body, "expected_task_state"),
                                                json_object_get (body, "changes"), &rec, errbuf, errlen);
    if (status == ZV_OK && zv_msg_get_bool (msg, "release_claim", false))
        status = s_release (self, txn, uuid);
    const char *action_rq = zv_msg_get_str (msg, "action_request_id");
    const char *result = zv_msg_get_str (msg, "action_result");
    if (status == ZV_OK && action_rq && result)
        zv_store_action_finish (txn, uuid, action_rq, result, zv_msg_get_str (msg, "action_message"));
    const char *vm_state = s_str (json_object_get (body, "changes"), "vm_state");
    if (status == ZV_OK && vm_state && strcmp (vm_state, "active") == 0 && s_str (rec, "host"))
        s_count_failure (self, s_str (rec, "host"), false);    //  a success clears the host's record
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "instance", s_server_view (rec));
    else
        json_decref (rec);
    return status;
}

static zv_status_t
s_instance_destroyed (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const char *uuid = zv_msg_get_str (call->msg, "uuid");
    zv_status_t status = s_finish_delete (self, txn, uuid, zv_msg_get_str (call->msg, "action_request_id"),
                                          errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_object ();
    return status;
}

//  The request id of an instance's newest unfinished action (of the named
//  action, or any when action is NULL), copied into buf; NULL when none.
static const char *
s_open_action_rq (zv_txn_t *txn, const char *uuid, const char *action, char *buf, size_t len)
{
    json_t *actions = zv_store_action_list (txn, uuid);
    const char *found = NULL;
    size_t index;
    json_t *record;
    json_array_foreach (actions, index, record)
        if (json_is_null (json_object_get (record, "finish_time")) && s_str (record, "request_id")
        &&  (!action || (s_str (record, "action") && streq (s_str (record, "action"), action)))) {
            snprintf (buf, len, "%s", s_str (record, "request_id"));
            found = buf;
        }
    json_decref (actions);
    return found;
}

//  Reconcile a host's domains with the store, as Nova's init_instance and
//  power-state sync do.  Instances this host should have:
//    building, no domain, last touched before the restart -> ERROR;
//    deleting -> the compute must terminate (listed in the reply);
//    domain gone while it should run -> power nostate, vm_state stopped;
//    domain there -> power_state from the hypervisor (active + shutdown or
//    crashed -> stopped, as Nova's sync stops it).
//  Domains of no live instance are orphans: the compute reaps them.
typedef struct {
    self_t *self;
    zv_txn_t *txn;
    const char *host;
    json_t *domains;                //  uuid -> power_state (borrowed)
    int64_t restart_ms;             //  later of conductor start and compute start
    json_t *terminate;              //  [{uuid, action_request_id}]
    json_t *seen;                   //  uuid -> true for instances of this host
    json_t *changed;                //  [{uuid, changes, expected}]
    bool partial;                   //  only the listed domains (an event), no orphans
    int64_t compute_started_ms;     //  the compute's own start: what it was doing then is lost
    json_t *interrupted;            //  [{uuid, task_state}]: actions the compute restart cut off
} s_sync_t;

static bool
s_sync_visit (const char *key, json_t *rec, void *arg)
{
    s_sync_t *sync = (s_sync_t *) arg;
    const char *host = s_str (rec, "host");
    if (!host || strcmp (host, sync->host) != 0 || json_is_true (json_object_get (rec, "deleted")))
        return true;
    json_object_set_new (sync->seen, key, json_true ());
    const char *power = json_string_value (json_object_get (sync->domains, key));
    const char *vm = s_str (rec, "vm_state");
    const char *task = s_str (rec, "task_state");
    json_t *expected = json_pack ("[o]", task ? json_string (task) : json_null ());
    json_t *changes = NULL;
    //  A build is only ever finished by its own report or a full sync (an
    //  event may overtake the build's last CAS); a delete by its own.
    if (sync->partial && (strcmp (vm, "building") == 0 || (task && strcmp (task, "deleting") == 0))) {
        json_decref (expected);
        return true;
    }
    //  An action (reboot, stop, ...) in progress when the compute restarted
    //  will never report: its task ends here, and the power state rules
    //  apply as if it had none (Nova's init_instance).
    bool interrupted = !sync->partial && task && strcmp (task, "deleting") != 0
                    && strcmp (vm, "building") != 0 && s_int (rec, "updated_ms") < sync->compute_started_ms;
    if (interrupted)
        json_array_append_new (sync->interrupted, json_pack ("{s:s, s:s}", "uuid", key, "task_state", task));
    const char *settled_task = interrupted ? NULL : task;
    if (task && strcmp (task, "deleting") == 0) {
        char rq [80];
        const char *action_rq = s_open_action_rq (sync->txn, key, "delete", rq, sizeof rq);
        json_array_append_new (sync->terminate, json_pack ("{s:s, s:s}", "uuid", key,
                                                           "action_request_id", action_rq ? action_rq : ""));
    }
    else
    if (strcmp (vm, "building") == 0) {
        if (!power && s_int (rec, "updated_ms") < sync->restart_ms)
            changes = json_pack ("{s:s, s:n, s:o}", "vm_state", "error", "task_state",
                                 "fault", s_fault (ZV_EIO, "Build was interrupted by a service restart"
                                                           " before the domain existed"));
        else
        if (power && strcmp (power, "running") == 0) {
            //  The domain runs: the build finished and only its report was
            //  lost (a conductor that died before answering it).  Compute
            //  lists domains between handlers, so a domain it reports has
            //  had its final update sent already.
            char now [32];
            changes = json_pack ("{s:s, s:n, s:s, s:s}", "vm_state", "active", "task_state",
                                 "power_state", "running", "launched_at",
                                 s_str (rec, "launched_at") ? s_str (rec, "launched_at") : s_iso_now (now));
        }
    }
    else
    if (!power) {
        if (strcmp (s_str (rec, "power_state"), "nostate") != 0 || strcmp (vm, "active") == 0)
            changes = json_pack ("{s:s, s:s}", "power_state", "nostate", "vm_state",
                                 strcmp (vm, "error") == 0 ? "error" : "stopped");
    }
    else
    if (strcmp (power, s_str (rec, "power_state")) != 0 || interrupted) {
        changes = json_pack ("{s:s}", "power_state", power);
        if (strcmp (vm, "active") == 0 && !settled_task
        &&  (strcmp (power, "shutdown") == 0 || strcmp (power, "crashed") == 0))
            json_object_set_new (changes, "vm_state", json_string ("stopped"));
    }
    if (interrupted) {
        char message [400];
        snprintf (message, sizeof message, "Action interrupted by a restart of compute host %s", sync->host);
        if (!changes)
            changes = json_object ();
        json_object_set_new (changes, "task_state", json_null ());
        json_object_set_new (changes, "fault", s_fault (ZV_EUNAVAILABLE, message));
    }
    if (changes)
        json_array_append_new (sync->changed, json_pack ("{s:s, s:o, s:o, s:s}", "uuid", key,
            "changes", changes, "expected", json_incref (expected), "vm_state", vm));
    json_decref (expected);
    return true;
}

static zv_status_t
s_compute_sync (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    s_sync_t sync = { self, txn, zv_msg_get_str (msg, "host"), json_object (),
                      self->started_ms, json_array (), json_object (), json_array (),
                      zv_msg_get_bool (msg, "partial", false), zv_msg_get_int (msg, "started_ms", 0),
                      json_array () };
    if (sync.compute_started_ms > sync.restart_ms)
        sync.restart_ms = sync.compute_started_ms;
    size_t index;
    json_t *domain;
    json_t *listed = json_array ();
    json_array_foreach (json_object_get (zv_msg_body (msg), "domains"), index, domain) {
        const char *uuid = s_str (domain, "uuid");
        const char *power = s_str (domain, "power_state");
        if (!uuid || !zv_uuid_valid (uuid) || !power || zv_power_state_from_name (power) < 0)
            continue;
        json_array_append_new (listed, json_string (uuid));
        //  In an event's sync, "nostate" says the domain is gone.
        if (!sync.partial || strcmp (power, "nostate") != 0)
            json_object_set_new (sync.domains, uuid, json_string (power));
    }
    zv_status_t status = ZV_OK;
    if (!sync.partial)
        status = zv_store_scan (txn, ZV_TABLE_INSTANCES, "", s_sync_visit, &sync);
    else {
        json_t *uuid_value;
        json_array_foreach (listed, index, uuid_value) {
            json_t *rec = NULL;
            if (zv_store_get (txn, ZV_TABLE_INSTANCES, json_string_value (uuid_value), &rec) == ZV_OK) {
                s_sync_visit (json_string_value (uuid_value), rec, &sync);
                json_decref (rec);
            }
        }
    }
    json_decref (listed);
    json_t *change;
    json_array_foreach (sync.changed, index, change) {
        const char *uuid = s_str (change, "uuid");
        bool finished = streq (s_str (json_object_get (change, "changes"), "vm_state") ? 
                               s_str (json_object_get (change, "changes"), "vm_state") : "", "active");
        if (strcmp (s_str (change, "vm_state"), "building") == 0 && !finished)
            status = s_fail_build (self, txn, uuid, json_object_get (change, "expected"), ZV_EIO,
                                   "Build was interrupted by a service restart before the domain existed");
        else
        if (finished && strcmp (s_str (change, "vm_state"), "building") == 0) {
            json_t *rec = NULL;
            status = zv_store_instance_cas (txn, uuid, json_object_get (change, "expected"),
                                            json_object_get (change, "changes"), &rec, errbuf, errlen);
            if (status == ZV_OK && s_str (rec, "request_id"))
                zv_store_action_finish (txn, uuid, s_str (rec, "request_id"), "Success", NULL);
            json_decref (rec);
        }
        else
            status = zv_store_instance_cas (txn, uuid, json_object_get (change, "expected"),
                                            json_object_get (change, "changes"), NULL, errbuf, errlen);
        if (status != ZV_OK && status != ZV_ECONFLICT)
            break;
        status = ZV_OK;
        zv_info (ACTOR, NULL, "sync %s: instance %s reconciled with its hypervisor", sync.host, uuid);
    }
    //  The actions a compute restart cut off: their records end in Error
    //  once their instance's CAS above took (their task is None now).
    json_t *interrupted;
    json_array_foreach (sync.interrupted, index, interrupted) {
        const char *uuid = s_str (interrupted, "uuid");
        json_t *rec = NULL;
        char buf [80];
        const char *rq = s_open_action_rq (txn, uuid, NULL, buf, sizeof buf);
        if (zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) == ZV_OK && !s_str (rec, "task_state") && rq) {
            char message [400];
            snprintf (message, sizeof message, "Action interrupted by a restart of compute host %s", sync.host);
            zv_store_action_finish (txn, uuid, rq, "Error", message);
            zv_warning (ACTOR, rq, "instance %s: %s", uuid, message);
        }
        json_decref (rec);
    }
    json_decref (sync.interrupted);
    json_t *orphans = json_array ();
    const char *uuid;
    json_t *power;
    json_object_foreach (sync.domains, uuid, power)
        if (!sync.partial && !json_object_get (sync.seen, uuid))
            json_array_append_new (orphans, json_string (uuid));
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o, s:o}", "terminate", sync.terminate, "orphans", orphans);
    else {
        json_decref (sync.terminate);
        json_decref (orphans);
    }
    json_decref (sync.domains);
    json_decref (sync.seen);
    json_decref (sync.changed);
    return status;
}

//  ---------------------------------------------------------------------
//  Hosts, services, hypervisors

//  Count allocations per provider: {host: n}.
static bool
s_count_visit (const char *key, json_t *rec, void *arg)
{
    (void) key;
    const char *host;
    json_t *against;
    json_object_foreach (json_object_get (rec, "allocations"), host, against)
        json_object_set_new ((json_t *) arg, host, json_integer (s_int ((json_t *) arg, host) + 1));
    return true;
}

static json_t *
s_compute_service (self_t *self, zv_txn_t *txn, const char *host)
{
    (void) self;
    char key [400];
    snprintf (key, sizeof key, "compute/%s", host);
    json_t *service = NULL;
    zv_store_get (txn, ZV_TABLE_SERVICES, key, &service);
    return service;
}

//  A node record as the hypervisor API shows it (takes node).
static json_t *
s_hypervisor_view (self_t *self, zv_txn_t *txn, json_t *node)
{
    zv_placement_view (node);
    json_t *service = s_compute_service (self, txn, s_str (node, "host"));
    json_object_set_new (node, "state", json_string (s_service_state (self, service)));
    json_object_set_new (node, "status", json_string (
        json_is_true (json_object_get (service, "disabled")) ? "disabled" : "enabled"));
    json_object_set (node, "disabled_reason", json_object_get (service, "disabled_reason")
                                              ? json_object_get (service, "disabled_reason") : json_null ());
    json_decref (service);
    return node;
}
static zv_status_t
s_host_states (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    //  What the scheduler filters and weighs on, one pass over each table:
    //  inventories and usages, service state, zone and aggregates, how many
    //  instances (claims) each host holds, and its recent build failures.
    json_t *hosts = s_collect (self, txn, ZV_TABLE_NODES, NULL, NULL);
    json_t *aggregates = zv_aggregate_by_host (txn);
    json_t *counts = json_object ();
    zv_store_scan (txn, ZV_TABLE_ALLOCATIONS, "", s_count_visit, counts);
    size_t index;
    json_t *node;
    json_array_foreach (hosts, index, node) {
        s_hypervisor_view (self, txn, node);
        const char *host = s_str (node, "host");
        json_t *mine = json_object_get (aggregates, host);
        json_object_set_new (node, "availability_zone", json_string (s_host_zone (self, aggregates, host)));
        json_object_set_new (node, "aggregates", mine ? json_incref (mine) : json_array ());
        json_object_set_new (node, "num_instances", json_integer (s_int (counts, host)));
        int64_t *failed = (int64_t *) zhashx_lookup (self->failed_builds, host);
        json_object_set_new (node, "failed_builds", json_integer (failed ? *failed : 0));
    }
    json_decref (aggregates);
    json_decref (counts);
    call->reply = json_pack ("{s:I, s:o}", "generation", (json_int_t) self->generation, "hosts", hosts);
    return ZV_OK;
}
//  A service as it is shown: up or down from its heartbeat, enabled or not.
static json_t *
s_service_view (self_t *self, json_t *rec)
{
    json_object_set_new (rec, "state", json_string (s_service_state (self, rec)));
    json_object_set_new (rec, "status", json_string (
        json_is_true (json_object_get (rec, "disabled")) ? "disabled" : "enabled"));
    json_object_del (rec, "updated_ms");
    return rec;
}

static bool
s_service_keep (self_t *self, json_t *rec, void *arg)
{
    const zv_msg_t *msg = (const zv_msg_t *) arg;
    const char *binary = zv_msg_get_str (msg, "binary");
    const char *host = zv_msg_get_str (msg, "host");
    if (binary && strcmp (binary, s_str (rec, "binary")) != 0)
        return false;
    if (host && strcmp (host, s_str (rec, "host")) != 0)
        return false;
    s_service_view (self, rec);
    return true;
}

static zv_status_t
s_service_list (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    json_t *services = s_collect (self, txn, ZV_TABLE_SERVICES, s_service_keep, (void *) call->msg);
    //  A compute service is in its host's zone; the others in the internal one.
    json_t *by_host = zv_aggregate_by_host (txn);
    size_t index;
    json_t *service;
    json_array_foreach (services, index, service) {
        const char *zone = streq (s_str (service, "binary"), "compute")
                         ? s_host_zone (self, by_host, s_str (service, "host")) : "internal";
        json_object_set_new (service, "zone", json_string (zone));
    }
    json_decref (by_host);
    call->reply = json_pack ("{s:o}", "services", services);
    return ZV_OK;
}

//  conductor.service_set: an admin enables or disables a service (with a
//  reason), as `openstack compute service set` does.  A disabled compute
//  gets no new instances (ComputeFilter); what runs there keeps running.
static zv_status_t
s_service_set (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *host = zv_msg_get_str (msg, "host");
    const char *binary = zv_msg_get_str (msg, "binary");
    char key [400];
    snprintf (key, sizeof key, "%s/%s", binary ? binary : "compute", host);
    json_t *service = NULL;
    if (zv_store_get (txn, ZV_TABLE_SERVICES, key, &service) != ZV_OK) {
        snprintf (errbuf, errlen, "Service %s on host %s could not be found.", binary ? binary : "compute", host);
        return ZV_ENOTFOUND;
    }
    json_t *disabled = json_object_get (zv_msg_body (msg), "disabled");
    if (json_is_boolean (disabled)) {
        json_object_set (service, "disabled", disabled);
        const char *reason = zv_msg_get_str (msg, "disabled_reason");
        json_object_set_new (service, "disabled_reason",
                             json_is_true (disabled) && reason ? json_string (reason) : json_null ());
    }
    zv_status_t status = zv_store_put (txn, ZV_TABLE_SERVICES, key, service);
    if (status == ZV_OK) {
        zv_info (ACTOR, zv_msg_rq (msg), "service %s %s%s%s", key,
                 json_is_true (json_object_get (service, "disabled")) ? "disabled" : "enabled",
                 json_is_true (disabled) && zv_msg_get_str (msg, "disabled_reason") ? ": " : "",
                 json_is_true (disabled) && zv_msg_get_str (msg, "disabled_reason")
                     ? zv_msg_get_str (msg, "disabled_reason") : "");
        s_service_view (self, service);
        call->reply = json_pack ("{s:O}", "service", s_strip (service));
    }
    json_decref (service);
    return status;
}

static zv_status_t
s_hypervisor_list (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    s_host_states (self, txn, call, errbuf, errlen);
    json_t *hosts = json_incref (json_object_get (call->reply, "hosts"));
    json_decref (call->reply);
    call->reply = json_pack ("{s:o}", "hypervisors", hosts);
    return ZV_OK;
}

static zv_status_t
s_hypervisor_show (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const char *ref = zv_msg_get_str (call->msg, "ref");
    json_t *node = NULL;
    if (zv_store_get (txn, ZV_TABLE_NODES, ref, &node) != ZV_OK) {
        json_t *all = s_collect (self, txn, ZV_TABLE_NODES, NULL, NULL);
        size_t index;
        json_t *item;
        json_array_foreach (all, index, item)
            if (s_str (item, "id") && strcmp (s_str (item, "id"), ref) == 0)
                node = json_incref (item);
        json_decref (all);
    }
    if (!node) {
        snprintf (errbuf, errlen, "Hypervisor %s could not be found.", ref);
        return ZV_ENOTFOUND;
    }
    call->reply = json_pack ("{s:o}", "hypervisor", s_hypervisor_view (self, txn, node));
    return ZV_OK;
}

//  ---------------------------------------------------------------------
//  Flavor properties, aggregates and zones, server groups, resource
//  providers: thin handlers over the store modules that hold their rules.

//  Properties as Nova's extra specs and aggregate metadata take them:
//  string values, or null to unset.
static zv_status_t
s_check_properties (const json_t *properties, char *errbuf, size_t errlen)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) properties, key, value) {
        if (!*key || strlen (key) > 255 || (!json_is_string (value) && !json_is_null (value))
        ||  (json_is_string (value) && strlen (json_string_value (value)) > 255)) {
            snprintf (errbuf, errlen, "Invalid property '%s': keys and values are strings of 1 to 255 "
                      "bytes (null unsets).", key);
            return ZV_EINVAL;
        }
    }
    return ZV_OK;
}

static zv_status_t
s_flavor_set (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) self;
    json_t *properties = json_object_get (zv_msg_body (call->msg), "properties");
    zv_status_t status = s_check_properties (properties, errbuf, errlen);
    json_t *flavor = NULL;
    if (status == ZV_OK)
        status = s_find (txn, ZV_TABLE_FLAVORS, "flavor", zv_msg_get_str (call->msg, "ref"), NULL,
                         &flavor, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    json_t *specs = json_object_get (flavor, "extra_specs");
    if (!json_is_object (specs)) {
        specs = json_object ();
        json_object_set_new (flavor, "extra_specs", specs);
    }
    const char *key;
    json_t *value;
    json_object_foreach (properties, key, value) {
        if (json_is_null (value))
            json_object_del (specs, key);
        else
            json_object_set (specs, key, value);
    }
    status = zv_store_put (txn, ZV_TABLE_FLAVORS, s_str (flavor, "id"), flavor);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:O}", "flavor", s_strip (flavor));
    json_decref (flavor);
    return status;
}

//  A zone name is a name without ':' (AZ:HOST forces a host), as Nova's.
static bool
s_valid_zone (const char *zone, char *errbuf, size_t errlen)
{
    if (!zone || !*zone)
        return true;
    if (!s_valid_name ("availability zone", zone, errbuf, errlen))
        return false;
    if (strchr (zone, ':')) {
        snprintf (errbuf, errlen, "Invalid availability zone name '%s': it must not include ':'.", zone);
        return false;
    }
    return true;
}

static zv_status_t
s_aggregate_reply (s_call_t *call, zv_status_t status, json_t *aggregate)
{
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "aggregate", aggregate);
    else
        json_decref (aggregate);
    return status;
}

static zv_status_t
s_aggregate_create (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const char *name = zv_msg_get_str (call->msg, "name");
    const char *zone = zv_msg_get_str (call->msg, "availability_zone");
    if (!s_valid_name ("aggregate", name, errbuf, errlen) || !s_valid_zone (zone, errbuf, errlen))
        return ZV_EINVAL;
    json_t *aggregate = NULL;
    zv_status_t status = zv_aggregate_create (txn, name, zone, &aggregate, errbuf, errlen);
    self->generation++;
    return s_aggregate_reply (call, status, aggregate);
}

static zv_status_t
s_aggregate_list (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) self;
    (void) errbuf;
    (void) errlen;
    call->reply = json_pack ("{s:o}", "aggregates", zv_aggregate_list (txn));
    return ZV_OK;
}

static zv_status_t
s_aggregate_show (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) self;
    json_t *aggregate = NULL;
    zv_status_t status = zv_aggregate_find (txn, zv_msg_get_str (call->msg, "ref"), &aggregate, errbuf, errlen);
    if (aggregate)
        json_object_del (aggregate, "_rv");
    return s_aggregate_reply (call, status, aggregate);
}

static zv_status_t
s_aggregate_delete (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    zv_status_t status = zv_aggregate_delete (txn, zv_msg_get_str (call->msg, "ref"), errbuf, errlen);
    if (status == ZV_OK) {
        self->generation++;
        call->reply = json_object ();
    }
    return status;
}

static zv_status_t
s_aggregate_host (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    const char *host = zv_msg_get_str (call->msg, "host");
    bool add = streq (zv_msg_type (call->msg), "conductor.aggregate_add_host");
    json_t *node = NULL;
    //  As Nova: only a known compute host joins an aggregate.
    if (add && zv_store_get (txn, ZV_TABLE_NODES, host, &node) != ZV_OK) {
        snprintf (errbuf, errlen, "Compute host %s could not be found.", host);
        return ZV_ENOTFOUND;
    }
    json_decref (node);
    json_t *aggregate = NULL;
    zv_status_t status = add
        ? zv_aggregate_add_host (txn, zv_msg_get_str (call->msg, "ref"), host, &aggregate, errbuf, errlen)
        : zv_aggregate_remove_host (txn, zv_msg_get_str (call->msg, "ref"), host, &aggregate, errbuf, errlen);
    self->generation++;
    return s_aggregate_reply (call, status, aggregate);
}

static zv_status_t
s_aggregate_set (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    json_t *properties = json_object_get (zv_msg_body (call->msg), "properties");
    zv_status_t status = s_check_properties (properties, errbuf, errlen);
    const char *zone = zv_msg_get_str (call->msg, "availability_zone");
    json_t *meta_zone = json_object_get (properties, "availability_zone");
    if (status == ZV_OK && (!s_valid_zone (zone, errbuf, errlen)
                            || !s_valid_zone (json_string_value (meta_zone), errbuf, errlen)))
        status = ZV_EINVAL;
    json_t *aggregate = NULL;
    if (status == ZV_OK)
        status = zv_aggregate_set (txn, zv_msg_get_str (call->msg, "ref"), properties, zone,
                                   &aggregate, errbuf, errlen);
    self->generation++;
    return s_aggregate_reply (call, status, aggregate);
}

//  Zones: the default one (hosts in no zoned aggregate) and each
//  aggregate's, with their hosts and those hosts' services when long.
static zv_status_t
s_zone_list (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    bool long_form = zv_msg_get_bool (call->msg, "long", false);
    json_t *by_host = zv_aggregate_by_host (txn);
    //  Zones come from the compute hosts in them (Nova's rule): a zone with
    //  no host is not listed.
    json_t *zones = json_object ();             //  name -> [hosts]
    size_t index;
    json_t *services = s_collect (self, txn, ZV_TABLE_SERVICES, NULL, NULL);
    json_t *service;
    json_array_foreach (services, index, service) {
        if (!streq (s_str (service, "binary"), "compute"))
            continue;
        const char *zone = s_host_zone (self, by_host, s_str (service, "host"));
        s_service_view (self, service);
        if (!json_object_get (zones, zone))
            json_object_set_new (zones, zone, json_array ());
        json_array_append_new (json_object_get (zones, zone), json_pack ("{s:O, s:[{s:O, s:O, s:O, s:O}]}",
            "host", json_object_get (service, "host"), "services",
            "binary", json_object_get (service, "binary"), "state", json_object_get (service, "state"),
            "status", json_object_get (service, "status"), "updated_at", json_object_get (service, "updated_at")));
    }
    json_decref (services);
    json_t *list = json_array ();
    const char *name;
    json_t *hosts;
    json_object_foreach (zones, name, hosts) {
        json_t *zone = json_pack ("{s:s, s:s}", "name", name, "state", "available");
        if (long_form)
            json_object_set (zone, "hosts", hosts);
        json_array_append_new (list, zone);
    }
    json_decref (zones);
    json_decref (by_host);
    call->reply = json_pack ("{s:o}", "availability_zones", list);
    return ZV_OK;
}

static zv_status_t
s_group_create (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) self;
    const char *name = zv_msg_get_str (call->msg, "name");
    if (!s_valid_name ("server group", name, errbuf, errlen))
        return ZV_EINVAL;
    json_t *group = NULL;
    zv_status_t status = zv_group_create (txn, name, zv_msg_get_str (call->msg, "policy"),
                                          json_object_get (zv_msg_body (call->msg), "rules"),
                                          zv_msg_get_str (call->msg, "project_id"), &group, errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "server_group", s_strip (group));
    return status;
}

static zv_status_t
s_group_list (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) self;
    (void) errbuf;
    (void) errlen;
    bool all = zv_msg_get_bool (call->msg, "all_projects", false);
    call->reply = json_pack ("{s:o}", "server_groups",
                             zv_group_list (txn, all ? NULL : zv_msg_get_str (call->msg, "project_id")));
    return ZV_OK;
}

static zv_status_t
s_group_show (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) self;
    json_t *group = NULL;
    zv_status_t status = zv_group_find (txn, zv_msg_get_str (call->msg, "ref"),
                                        zv_msg_get_str (call->msg, "project_id"), &group, errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "server_group", s_strip (group));
    return status;
}

static zv_status_t
s_group_delete (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) self;
    zv_status_t status = zv_group_delete (txn, zv_msg_get_str (call->msg, "ref"),
                                          zv_msg_get_str (call->msg, "project_id"), errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_object ();
    return status;
}

//  A provider as placement shows it: effective inventories with used and
//  capacity per class, usages, generation.
static json_t *
s_provider_view (json_t *node)
{
    zv_placement_view (node);
    json_t *view = json_pack ("{s:O, s:O, s:O, s:O, s:O, s:O}", "id", json_object_get (node, "id"),
                              "name", json_object_get (node, "host"), "host", json_object_get (node, "host"),
                              "generation", json_object_get (node, "generation"),
                              "inventories", json_object_get (node, "inventories"),
                              "usages", json_object_get (node, "usages") ? json_object_get (node, "usages") : json_null ());
    json_decref (node);
    return view;
}

static bool
s_provider_keep (self_t *self, json_t *rec, void *arg)
{
    (void) self;
    (void) arg;
    return json_object_get (rec, "inventories") != NULL;
}

static zv_status_t
s_provider_list (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    json_t *nodes = s_collect (self, txn, ZV_TABLE_NODES, s_provider_keep, NULL);
    json_t *list = json_array ();
    size_t index;
    json_t *node;
    json_array_foreach (nodes, index, node)
        json_array_append_new (list, s_provider_view (json_incref (node)));
    json_decref (nodes);
    call->reply = json_pack ("{s:o}", "resource_providers", list);
    return ZV_OK;
}

//  By host name or provider uuid.
static zv_status_t
s_find_provider (self_t *self, zv_txn_t *txn, const char *ref, json_t **node_p, char *errbuf, size_t errlen)
{
    if (zv_store_get (txn, ZV_TABLE_NODES, ref, node_p) == ZV_OK)
        return ZV_OK;
    json_t *nodes = s_collect (self, txn, ZV_TABLE_NODES, NULL, NULL);
    size_t index;
    json_t *node;
    *node_p = NULL;
    json_array_foreach (nodes, index, node)
        if (s_str (node, "id") && streq (s_str (node, "id"), ref))
            *node_p = json_incref (node);
    json_decref (nodes);
    if (*node_p)
        return ZV_OK;
    snprintf (errbuf, errlen, "Resource provider %s could not be found.", ref);
    return ZV_ENOTFOUND;
}

static zv_status_t
s_provider_show (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    json_t *node = NULL;
    zv_status_t status = s_find_provider (self, txn, zv_msg_get_str (call->msg, "ref"), &node, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    json_t *allocations = zv_placement_allocations_of (txn, s_str (node, "host"));
    json_t *view = s_provider_view (node);
    json_object_set_new (view, "allocations", allocations);
    call->reply = json_pack ("{s:o}", "resource_provider", view);
    return ZV_OK;
}

static zv_status_t
s_provider_set (self_t *self, zv_txn_t *txn, s_call_t *call, char *errbuf, size_t errlen)
{
    json_t *node = NULL;
    zv_status_t status = s_find_provider (self, txn, zv_msg_get_str (call->msg, "ref"), &node, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    json_t *body = zv_msg_body (call->msg);
    json_t *change = json_object ();
    if (json_object_get (body, "allocation_ratio"))
        json_object_set (change, "allocation_ratio", json_object_get (body, "allocation_ratio"));
    if (json_object_get (body, "reserved"))
        json_object_set (change, "reserved", json_object_get (body, "reserved"));
    char host [256];
    snprintf (host, sizeof host, "%s", s_str (node, "host"));
    json_decref (node);
    status = zv_placement_override (txn, host, zv_msg_get_str (call->msg, "resource_class"), change, errbuf, errlen);
    json_decref (change);
    if (status == ZV_OK && zv_store_get (txn, ZV_TABLE_NODES, host, &node) == ZV_OK) {
        self->generation++;
        zv_info (ACTOR, zv_msg_rq (call->msg), "resource provider %s: %s inventory changed", host,
                 zv_msg_get_str (call->msg, "resource_class"));
        call->reply = json_pack ("{s:o}", "resource_provider", s_provider_view (node));
    }
    return status;
}

//  ---------------------------------------------------------------------
//  The dispatch table: every type the conductor serves, and its handler.

typedef struct {
    const char *type;
    s_handler_fn *handler;
    const void *arg;
} s_route_t;

static const s_route_t s_routes [] = {
    { "conductor.service_heartbeat",  s_service_heartbeat, NULL },
    { "conductor.flavor_create",      s_flavor_create, NULL },
    { "conductor.flavor_list",        s_resource_list, &s_flavors },
    { "conductor.flavor_show",        s_resource_show, &s_flavors },
    { "conductor.flavor_delete",      s_flavor_delete, NULL },
    { "conductor.image_create",       s_image_create, NULL },
    { "conductor.image_upload",       s_image_upload, NULL },
    { "conductor.image_list",         s_resource_list, &s_images },
    { "conductor.image_show",         s_resource_show, &s_images },
    { "conductor.image_delete",       s_image_delete, NULL },
    { "conductor.image_download",     s_image_download, NULL },
    { "conductor.server_create",      s_server_create, NULL },
    { "conductor.server_list",        s_server_list, NULL },
    { "conductor.server_show",        s_server_show, NULL },
    { "conductor.server_delete",      s_server_delete, NULL },
    { "conductor.server_events",      s_server_events, NULL },
    { "conductor.server_action",      s_server_action, NULL },
    { "conductor.console_url",        s_console_url, NULL },
    { "conductor.console_log",        s_console_log, NULL },
    { "conductor.server_screenshot",  s_server_screenshot, NULL },
    { "conductor.console_authorize",  s_console_authorize, NULL },
    { "conductor.service_list",       s_service_list, NULL },
    { "conductor.service_set",        s_service_set, NULL },
    { "conductor.flavor_set",         s_flavor_set, NULL },
    { "conductor.aggregate_create",   s_aggregate_create, NULL },
    { "conductor.aggregate_list",     s_aggregate_list, NULL },
    { "conductor.aggregate_show",     s_aggregate_show, NULL },
    { "conductor.aggregate_delete",   s_aggregate_delete, NULL },
    { "conductor.aggregate_add_host", s_aggregate_host, NULL },
    { "conductor.aggregate_remove_host", s_aggregate_host, NULL },
    { "conductor.aggregate_set",      s_aggregate_set, NULL },
    { "conductor.zone_list",          s_zone_list, NULL },
    { "conductor.group_create",       s_group_create, NULL },
    { "conductor.group_list",         s_group_list, NULL },
    { "conductor.group_show",         s_group_show, NULL },
    { "conductor.group_delete",       s_group_delete, NULL },
    { "conductor.provider_list",      s_provider_list, NULL },
    { "conductor.provider_show",      s_provider_show, NULL },
    { "conductor.provider_set",       s_provider_set, NULL },
    { "conductor.hypervisor_list",    s_hypervisor_list, NULL },
    { "conductor.hypervisor_show",    s_hypervisor_show, NULL },
    { "conductor.instance_update",    s_instance_update, NULL },
    { "conductor.instance_destroyed", s_instance_destroyed, NULL },
    { "conductor.compute_sync",       s_compute_sync, NULL },
    { "conductor.host_states",        s_host_states, NULL },
    { NULL, NULL, NULL }
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
    s_handler_fn *handler;
    s_call_t *call;
} s_run_t;

static zv_status_t
s_run (self_t *self, zv_txn_t *txn, void *arg, char *errbuf, size_t errlen)
{
    s_run_t *run = (s_run_t *) arg;
    return run->handler (self, txn, run->call, errbuf, errlen);
}

//  Serve one message inside the current batch.
static void
s_serve (self_t *self, zv_msg_t *msg)
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
        s_out (self, &error);
        return;
    }
    const s_route_t *route = s_route (zv_msg_type (msg));
    if (!route) {
        zv_warning (ACTOR, zv_msg_rq (msg), "message type %s is not served by the conductor", zv_msg_type (msg));
        zv_msg_t *error = zv_msg_error (msg, ZV_EINVAL, "message type '%s' is not served by the conductor",
                                        zv_msg_type (msg));
        s_out (self, &error);
        return;
    }
    char errbuf [1024] = "";
    s_call_t call = { msg, route->arg, NULL, ZV_OK, "", NULL, 0, false };
    s_run_t run = { route->handler, &call };
    zv_status_t status = s_nested (self, s_run, &run, errbuf, sizeof errbuf);
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
    s_out (self, &reply);
}

//  ---------------------------------------------------------------------
//  Recovery and housekeeping

//  Instances whose transition must be finished or failed: builds that never
//  reached a host (at start), builds stuck past build_timeout, deletes of
//  instances without a host.
typedef struct {
    self_t *self;
    bool at_start;
    json_t *fail_build;             //  [uuid]
    json_t *finish_delete;          //  [uuid]
    json_t *retry_delete;           //  [uuid]
    json_t *stuck_action;           //  [{uuid, task_state}]
} s_sweep_t;

static bool
s_sweep_visit (const char *key, json_t *rec, void *arg)
{
    s_sweep_t *sweep = (s_sweep_t *) arg;
    if (json_is_true (json_object_get (rec, "deleted")))
        return true;
    const char *task = s_str (rec, "task_state");
    const char *host = s_str (rec, "host");
    bool has_host = host && *host;
    int64_t age_ms = zv_now_ms () - s_int (rec, "updated_ms");
    bool stuck = age_ms > (int64_t) sweep->self->cfg.build_timeout_s * 1000;
    if (!task)
        return true;
    if (strcmp (s_str (rec, "vm_state"), "building") == 0) {
        if ((sweep->at_start && !has_host) || stuck)
            json_array_append_new (sweep->fail_build, json_string (key));
    }
    else
    if (strcmp (task, "deleting") == 0) {
        if (!has_host)
            json_array_append_new (sweep->finish_delete, json_string (key));
        else
        if (stuck)
            json_array_append_new (sweep->retry_delete, json_string (key));
    }
    else
    if (age_ms > (int64_t) sweep->self->cfg.task_timeout_s * 1000)
        json_array_append_new (sweep->stuck_action, json_pack ("{s:s, s:s}", "uuid", key, "task_state", task));
    return true;
}

static void
s_sweep (self_t *self, bool at_start)
{
    s_sweep_t sweep = { self, at_start, json_array (), json_array (), json_array (), json_array () };
    zv_txn_t *txn = s_batch_txn (self);
    if (!txn)
        return;
    zv_txn_t *read = zv_txn_begin (self->store, txn, true);
    if (read) {
        zv_store_scan (read, ZV_TABLE_INSTANCES, "", s_sweep_visit, &sweep);
        zv_txn_abort (&read);
    }
    //  Expired console tokens go.
    zv_txn_t *tokens = zv_txn_begin (self->store, txn, true);
    if (tokens) {
        s_tokens_revoke (tokens, NULL);
        zv_txn_commit (&tokens);
    }
    size_t index;
    json_t *uuid;
    json_t *building = json_pack ("[s,s,s,s]", "scheduling", "networking", "block_device_mapping", "spawning");
    json_array_foreach (sweep.fail_build, index, uuid) {
        zv_txn_t *child = zv_txn_begin (self->store, txn, true);
        const char *why = at_start ? "Build was interrupted by a conductor restart before reaching a host"
                                   : "Build timed out";
        if (child && s_fail_build (self, child, json_string_value (uuid), building, ZV_ETIMEOUT, why) == ZV_OK)
            zv_txn_commit (&child);
        else
            zv_txn_abort (&child);
    }
    json_decref (building);
    json_array_foreach (sweep.finish_delete, index, uuid) {
        char errbuf [512];
        char buf [80];
        zv_txn_t *child = zv_txn_begin (self->store, txn, true);
        const char *rq = child ? s_open_action_rq (child, json_string_value (uuid), NULL, buf, sizeof buf) : NULL;
        if (child && s_finish_delete (self, child, json_string_value (uuid), rq, errbuf, sizeof errbuf) == ZV_OK)
            zv_txn_commit (&child);
        else
            zv_txn_abort (&child);
    }
    //  A delete stuck on a live host is asked again; on a dead host it is
    //  finished here (the domain is reaped when the host comes back).
    json_array_foreach (sweep.retry_delete, index, uuid) {
        char errbuf [512];
        zv_txn_t *child = zv_txn_begin (self->store, txn, true);
        json_t *rec = NULL;
        if (child && zv_store_get (child, ZV_TABLE_INSTANCES, json_string_value (uuid), &rec) == ZV_OK) {
            json_t *service = s_compute_service (self, child, s_str (rec, "host"));
            char buf [80];
            const char *rq = s_open_action_rq (child, json_string_value (uuid), NULL, buf, sizeof buf);
            zv_status_t status = !streq (s_service_state (self, service), "down")
                ? s_start_terminate (self, child, rec, rq, errbuf, sizeof errbuf)
                : s_finish_delete (self, child, json_string_value (uuid), rq, errbuf, sizeof errbuf);
            //  Bump updated so a retried delete waits another build_timeout.
            json_t *touch = json_object ();
            if (status == ZV_OK)
                status = zv_store_instance_cas (child, json_string_value (uuid), NULL, touch, NULL, errbuf, sizeof errbuf);
            json_decref (touch);
            json_decref (service);
            if (status == ZV_OK)
                zv_txn_commit (&child);
            else
                zv_txn_abort (&child);
        }
        else
            zv_txn_abort (&child);
        json_decref (rec);
    }
    //  An action whose host never reported its end: given up, as the
    //  instance is; the host's next sync sets the power state it really has.
    json_t *stuck;
    json_array_foreach (sweep.stuck_action, index, stuck) {
        char errbuf [512], message [200], buf [80];
        const char *stuck_uuid = s_str (stuck, "uuid");
        snprintf (message, sizeof message, "Action timed out: its host did not report within %d s",
                  self->cfg.task_timeout_s);
        zv_txn_t *child = zv_txn_begin (self->store, txn, true);
        json_t *expected = json_pack ("[s]", s_str (stuck, "task_state"));
        json_t *changes = json_pack ("{s:n, s:o}", "task_state", "fault", s_fault (ZV_ETIMEOUT, message));
        const char *rq = child ? s_open_action_rq (child, stuck_uuid, NULL, buf, sizeof buf) : NULL;
        if (child && zv_store_instance_cas (child, stuck_uuid, expected, changes, NULL, errbuf, sizeof errbuf) == ZV_OK) {
            if (rq)
                zv_store_action_finish (child, stuck_uuid, rq, "Error", message);
            zv_warning (ACTOR, rq, "instance %s: %s", stuck_uuid, message);
            zv_txn_commit (&child);
        }
        else
            zv_txn_abort (&child);
        json_decref (expected);
        json_decref (changes);
    }
    json_decref (sweep.stuck_action);
    json_decref (sweep.fail_build);
    json_decref (sweep.finish_delete);
    json_decref (sweep.retry_delete);
}

static void
s_record_own_service (self_t *self)
{
    zv_msg_t *beat = zv_msg_new ("conductor.service_heartbeat");
    json_t *body = json_pack ("{s:s, s:s, s:i}", "binary", "conductor", "host", self->cfg.host,
                              "report_interval", self->cfg.report_interval_s);
    zv_msg_set_body (beat, &body);
    zv_msg_set_routing_str (beat, "conductor.self");
    char errbuf [256];
    s_call_t call = { beat, NULL, NULL, ZV_OK, "", NULL, 0, false };
    s_run_t run = { s_service_heartbeat, &call };
    s_nested (self, s_run, &run, errbuf, sizeof errbuf);
    json_decref (call.reply);
    zv_msg_destroy (&beat);
}

static int
s_housekeeping (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = (self_t *) arg;
    s_batch_begin (self);
    s_sweep (self, false);
    s_flush_waiting (self);
    s_batch_end (self);
    return 0;
}

//  The conductor's own heartbeat, every report_interval like everyone's.
static int
s_own_heartbeat (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = (self_t *) arg;
    s_batch_begin (self);
    s_record_own_service (self);
    s_batch_end (self);
    return 0;
}

static int
s_expire (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = (self_t *) arg;
    s_batch_begin (self);
    zv_rpc_expire (self->rpc, self);
    if (zlistx_size (self->waiting))
        s_flush_waiting (self);
    s_batch_end (self);
    return 0;
}

//  The group commit: drain up to group_commit_max messages into one batch.
static int
s_router_readable (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    self_t *self = (self_t *) arg;
    s_batch_begin (self);
    bool scheduler_seen = false;
    for (int count = 0; count < self->cfg.group_commit_max && (zsock_events (router) & ZMQ_POLLIN); count++) {
        zv_msg_t *msg = zv_msg_recv (router);
        if (!msg)
            break;
        scheduler_seen |= strcmp (zv_msg_type (msg), "conductor.service_heartbeat") == 0
                       && zv_msg_get_str (msg, "binary")
                       && strcmp (zv_msg_get_str (msg, "binary"), "scheduler") == 0;
        s_serve (self, msg);
        zv_msg_destroy (&msg);
    }
    if (scheduler_seen && zlistx_size (self->waiting))
        s_flush_waiting (self);
    s_batch_end (self);
    return 0;
}

static void
s_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    zloop_destroy (&self->loop);
    zv_rpc_destroy (&self->rpc);
    zsock_destroy (&self->router);
    zv_store_destroy (&self->store);
    zhashx_destroy (&self->schedulers);
    zhashx_destroy (&self->failed_builds);
    s_job_t *job;
    while (self->waiting && (job = (s_job_t *) zlistx_detach (self->waiting, NULL)))
        s_job_destroy (&job);
    zlistx_destroy (&self->waiting);
    zlistx_destroy (&self->outbox);
    free (self);
    *self_p = NULL;
}

static void
s_free_int64 (void **item)
{
    free (*item);
    *item = NULL;
}

void
zv_conductor_actor (zsock_t *pipe, void *args)
{
    const zv_actor_args_t *actor_args = (const zv_actor_args_t *) args;
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->cfg = actor_args->config;
    self->pipe = pipe;
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

    char path [1100], errbuf [512];
    snprintf (path, sizeof path, "%s/store", self->cfg.state_path);
    snprintf (self->images_dir, sizeof self->images_dir, "%s/images", self->cfg.state_path);
    if (zsys_dir_create ("%s", self->images_dir) != 0) {
        zv_error (ACTOR, NULL, "cannot create %s: %s", self->images_dir, strerror (errno));
        goto failed;
    }
    self->store = zv_store_open (path, (size_t) self->cfg.store_map_size_mb, errbuf, sizeof errbuf);
    if (!self->store) {
        zv_error (ACTOR, NULL, "cannot open the store: %s", errbuf);
        goto failed;
    }
    if (sodium_init () < 0) {
        zv_error (ACTOR, NULL, "cannot initialise libsodium");
        goto failed;
    }
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_router_handover (self->router, 1);
    zsock_set_maxmsgsize (self->router, ZV_MSG_MAX_WIRE);
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_linger (self->router, 0);
    if (zsock_bind (self->router, "%s", actor_args->conductor_endpoint) < 0) {
        zv_error (ACTOR, NULL, "cannot bind %s: %s", actor_args->conductor_endpoint, zmq_strerror (zmq_errno ()));
        goto failed;
    }
    //  Finish what a previous run left in flight before serving anyone.
    s_batch_begin (self);
    s_record_own_service (self);
    s_sweep (self, true);
    s_batch_end (self);
    zv_info (ACTOR, NULL, "serving %s (store %s, epoch %s)", actor_args->conductor_endpoint, path, self->epoch);

    self->loop = zloop_new ();
    zloop_set_nonstop (self->loop, true);
    zloop_reader (self->loop, pipe, zv_actor_pipe_readable, self);
    zloop_reader (self->loop, self->router, s_router_readable, self);
    zloop_timer (self->loop, 100, 0, s_expire, self);
    zloop_timer (self->loop, (size_t) self->cfg.housekeeping_interval_s * 1000, 0, s_housekeeping, self);
    zloop_timer (self->loop, (size_t) self->cfg.report_interval_s * 1000, 0, s_own_heartbeat, self);
    zsock_signal (pipe, 0);
    zloop_start (self->loop);
    s_destroy (&self);
    return;

failed:
    s_destroy (&self);
    zv_actor_start_failed (pipe);
}
