/*  move_requests.c: what users ask of moves: cold migration, resize,
    confirm and revert, evacuation of a server or of a host, and the
    migration records.

    Each request is judged here (the server, the destination a caller
    names, the state table's word on the action) and opens its move with
    zv_conductor_move_open, or settles one waiting in VERIFY_RESIZE; from
    then on the engine (moves.c) walks the move's table of phases
    (phases.c).  Live migration's own requests are live.c's.               */

#include "actors/conductor/conductor.h"
#include "store/zv_instance.h"
#include "store/zv_migration.h"
#include "store/zv_placement.h"

//  ---------------------------------------------------------------------
//  Requests

//  Open a move of rec's server: the action record (judged by the state
//  table), the migration record, and its first phase.
zv_status_t
zv_conductor_move_open (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call, const json_t *rec, zv_action_t action,
        zv_migration_kind_t kind, const json_t *new_flavor, const char *requested_host, bool forced, const json_t *extra_fields,
        char *errbuf, size_t errlen)
{
    const char *uuid = s_str (rec, "uuid");
    const char *host = s_str (rec, "host");
    const char *rq = zv_msg_rq (call->msg);
    if (!host || !*host) {
        snprintf (errbuf, errlen, "Cannot '%s' instance %s: it is on no host.", zv_action_name (action), uuid);
        return ZV_ECONFLICT;
    }
    bool was_running = streq (s_str (rec, "vm_state") ? s_str (rec, "vm_state") : "", "active");
    json_t *moving = NULL;
    zv_status_t status = zv_store_instance_action (txn, uuid, action, rq, &moving, errbuf, errlen);
    json_decref (moving);
    if (status != ZV_OK)
        return status;
    zv_migration_init_t init = {
        .instance_uuid = uuid, .kind = kind, .source_host = host,
        .old_flavor = json_object_get (rec, "flavor"), .new_flavor = new_flavor,
        .status = kind == ZV_MIGRATION_EVACUATION ? "accepted" : "pre-migrating", .phase = "opened",
        .request_id = rq, .project_id = s_str (rec, "project_id"), .user_id = s_str (rec, "user_id"),
    };
    json_t *migration = NULL;
    status = zv_migration_create (txn, &init, &migration, errbuf, errlen);
    if (status == ZV_OK) {
        json_t *extra = json_pack ("{s:b, s:b}", "was_running", was_running, "forced", forced);
        if (extra_fields)
            json_object_update (extra, (json_t *) extra_fields);
        if (requested_host)
            json_object_set_new (extra, "requested_host", json_string (requested_host));
        char id [24];
        snprintf (id, sizeof id, "%lld", (long long) s_int (migration, "id"));
        json_t *opened = NULL;
        status = zv_migration_cas (txn, id, "opened", extra, &opened, errbuf, errlen);
        json_decref (extra);
        json_decref (migration);
        migration = opened;
    }
    //  A forced host is claimed as it is, without the scheduler.
    if (status == ZV_OK && forced && requested_host) {
        json_t *scheduling = json_pack ("{s:s, s:s}", "phase", "schedule", "status", init.status);
        char id [24];
        snprintf (id, sizeof id, "%lld", (long long) s_int (migration, "id"));
        json_t *at = NULL;
        status = zv_migration_cas (txn, id, "opened", scheduling, &at, errbuf, errlen);
        json_decref (scheduling);
        if (status == ZV_OK)
            status = zv_conductor_move_claim (self, txn, at, requested_host, errbuf, errlen);
        json_decref (at);
    }
    else
    if (status == ZV_OK)
        status = zv_conductor_move_enter (self, txn, migration, "schedule", NULL, errbuf, errlen);
    if (status == ZV_OK) {
        json_t *server = NULL, *now = NULL;
        zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &server);
        zv_migration_open_of (txn, uuid, &now);
        call->reply = json_pack ("{s:o, s:o}", "server", server ? zv_instance_view (server) : json_null (),
                                 "migration", now ? zv_conductor_migration_view (now) : json_null ());
    }
    json_decref (migration);
    return status;
}

//  A destination the caller names: a compute host that is up, enabled
//  (unless forced) and not the source (unless allow_resize_to_same_host).
zv_status_t
zv_conductor_move_check_destination (zv_conductor_t *self, zv_txn_t *txn, const json_t *rec, const char *host, bool forced,
                     bool same_host_ok, char *errbuf, size_t errlen)
{
    json_t *node = NULL;
    if (zv_store_get (txn, ZV_TABLE_NODES, host, &node) != ZV_OK) {
        snprintf (errbuf, errlen, "Compute host %s could not be found.", host);
        return ZV_ENOTFOUND;
    }
    json_decref (node);
    if (streq (host, s_str (rec, "host") ? s_str (rec, "host") : "") && !same_host_ok) {
        snprintf (errbuf, errlen, "Unable to migrate instance (%s) to current host (%s).", s_str (rec, "uuid"), host);
        return ZV_EINVAL;
    }
    json_t *service = zv_conductor_compute_service (self, txn, host);
    const char *state = zv_conductor_service_state (self, service);
    bool disabled = json_is_true (json_object_get (service, "disabled"));
    bool forced_down = json_is_true (json_object_get (service, "forced_down"));
    json_decref (service);
    if (!streq (state, "up") || forced_down || (disabled && !forced)) {
        snprintf (errbuf, errlen, "Compute service of %s is unavailable at this time.", host);
        return ZV_ECONFLICT;
    }
    return ZV_OK;
}

zv_status_t
zv_conductor_server_migrate (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                             char *errbuf, size_t errlen)
{
    if (zv_msg_get_bool (call->msg, "live", false))
        return zv_conductor_live_migrate (self, txn, call, errbuf, errlen);
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *host = zv_msg_get_str (call->msg, "host");
    bool forced = zv_msg_get_bool (call->msg, "force", false);
    if (host)
        status = zv_conductor_move_check_destination (self, txn, rec, host, forced, self->cfg.allow_resize_to_same_host,
                                      errbuf, errlen);
    if (status == ZV_OK)
        status = zv_conductor_move_open (self, txn, call, rec, ZV_ACTION_MIGRATE, ZV_MIGRATION_COLD, json_object_get (rec, "flavor"),
                                         host, forced, NULL, errbuf, errlen);
    json_decref (rec);
    return status;
}

zv_status_t
zv_conductor_server_resize (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    json_t *rec = NULL, *flavor = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *ref = zv_msg_get_str (call->msg, "flavor");
    status = zv_conductor_find (txn, ZV_TABLE_FLAVORS, "flavor", ref, NULL, &flavor, errbuf, errlen);
    if (status == ZV_ENOTFOUND)
        snprintf (errbuf, errlen, "Flavor %s could not be found.", ref);
    const json_t *current = json_object_get (rec, "flavor");
    //  Nova's refusals, before anything moves.
    if (status == ZV_OK && streq (s_str (flavor, "id") ? s_str (flavor, "id") : "",
                                  s_str (current, "id") ? s_str (current, "id") : "")) {
        snprintf (errbuf, errlen, "When resizing, instances must change flavor!");
        status = ZV_EINVAL;
    }
    if (status == ZV_OK && s_int (flavor, "disk_gb") < s_int (current, "disk_gb")) {
        snprintf (errbuf, errlen, "Server disk was unable to be resized because: Resizing to a smaller "
                  "disk flavor is not allowed.");
        status = ZV_EINVAL;
    }
    json_t *copy = status == ZV_OK ? zv_instance_flavor (flavor) : NULL;
    if (status == ZV_OK)
        status = zv_conductor_move_open (self, txn, call, rec, ZV_ACTION_RESIZE, ZV_MIGRATION_RESIZE, copy, NULL, false,
                                         NULL, errbuf, errlen);
    json_decref (copy);
    json_decref (flavor);
    json_decref (rec);
    return status;
}

//  Confirm or revert a move waiting in VERIFY_RESIZE: the state table
//  judges it; the move's next part starts.
static zv_status_t
s_settle (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call, zv_action_t action,
          const char *phase, const char *rq, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *uuid = s_str (rec, "uuid");
    json_t *migration = NULL;
    if (zv_migration_open_of (txn, uuid, &migration) != ZV_OK
    ||  !streq (s_str (migration, "phase") ? s_str (migration, "phase") : "", "verify")) {
        snprintf (errbuf, errlen, "Instance %s has no resize waiting to be confirmed or reverted.", uuid);
        json_decref (migration);
        json_decref (rec);
        return ZV_ECONFLICT;
    }
    json_t *updated = NULL;
    status = zv_store_instance_action (txn, uuid, action, rq, &updated, errbuf, errlen);
    json_decref (updated);
    if (status == ZV_OK)
        status = zv_conductor_move_enter (self, txn, migration, phase, json_pack ("{s:s}", "request_id", rq), errbuf, errlen);
    if (status == ZV_OK) {
        json_t *server = NULL, *now = NULL;
        zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &server);
        zv_migration_open_of (txn, uuid, &now);
        call->reply = json_pack ("{s:o, s:o}", "server", server ? zv_instance_view (server) : json_null (),
                                 "migration", now ? zv_conductor_migration_view (now) : json_null ());
    }
    json_decref (migration);
    json_decref (rec);
    return status;
}

zv_status_t
zv_conductor_server_resize_confirm (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                    char *errbuf, size_t errlen)
{
    return s_settle (self, txn, call, ZV_ACTION_CONFIRM_RESIZE, "confirm", zv_msg_rq (call->msg), errbuf, errlen);
}

zv_status_t
zv_conductor_server_resize_revert (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                   char *errbuf, size_t errlen)
{
    return s_settle (self, txn, call, ZV_ACTION_REVERT_RESIZE, "revert", zv_msg_rq (call->msg), errbuf, errlen);
}

//  Evacuate is for a host that is gone: its compute service down, or
//  forced down by an operator (Nova's words when it is not).
static zv_status_t
s_check_source_down (zv_conductor_t *self, zv_txn_t *txn, const char *host, char *errbuf, size_t errlen)
{
    json_t *service = zv_conductor_compute_service (self, txn, host);
    bool down = !service || streq (zv_conductor_service_state (self, service), "down")
             || json_is_true (json_object_get (service, "forced_down"));
    json_decref (service);
    if (down)
        return ZV_OK;
    snprintf (errbuf, errlen, "Compute service of %s is still in use.", host);
    return ZV_ECONFLICT;
}

static zv_status_t
s_evacuate (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call, const json_t *rec,
            const char *target, bool forced, char *errbuf, size_t errlen)
{
    const char *host = s_str (rec, "host");
    zv_status_t status = host ? s_check_source_down (self, txn, host, errbuf, errlen) : ZV_OK;
    if (status == ZV_OK && target)
        status = zv_conductor_move_check_destination (self, txn, rec, target, forced, false, errbuf, errlen);
    if (status == ZV_OK)
        status = zv_conductor_move_open (self, txn, call, rec, ZV_ACTION_EVACUATE, ZV_MIGRATION_EVACUATION,
                                         json_object_get (rec, "flavor"), target, forced, NULL, errbuf, errlen);
    return status;
}

zv_status_t
zv_conductor_server_evacuate (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                              char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status == ZV_OK)
        status = s_evacuate (self, txn, call, rec, zv_msg_get_str (call->msg, "host"),
                             zv_msg_get_bool (call->msg, "force", false), errbuf, errlen);
    json_decref (rec);
    return status;
}

//  Every live server of a host that is gone, each its own move (each in a
//  nested transaction: one refusal does not stop the others).
typedef struct {
    const char *host;
    json_t *uuids;
} s_on_host_t;

static bool
s_on_host (const char *key, json_t *rec, void *arg)
{
    s_on_host_t *scan = (s_on_host_t *) arg;
    if (s_str (rec, "host") && streq (s_str (rec, "host"), scan->host) && !json_is_true (json_object_get (rec, "deleted")))
        json_array_append_new (scan->uuids, json_string (key));
    return true;
}

zv_status_t
zv_conductor_host_evacuate (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    const char *host = zv_msg_get_str (call->msg, "host");
    const char *target = zv_msg_get_str (call->msg, "target");
    json_t *node = NULL;
    if (zv_store_get (txn, ZV_TABLE_NODES, host, &node) != ZV_OK) {
        snprintf (errbuf, errlen, "Compute host %s could not be found.", host);
        return ZV_ENOTFOUND;
    }
    json_decref (node);
    zv_status_t status = s_check_source_down (self, txn, host, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    s_on_host_t scan = { host, json_array () };
    zv_store_scan (txn, ZV_TABLE_INSTANCES, "", s_on_host, &scan);
    json_t *moved = json_array (), *refused = json_array ();
    size_t index;
    json_t *uuid;
    json_array_foreach (scan.uuids, index, uuid) {
        zv_txn_t *child = zv_txn_begin (self->store, txn, true);
        json_t *rec = NULL;
        char why [600] = "";
        zv_status_t one = child ? zv_store_get (child, ZV_TABLE_INSTANCES, json_string_value (uuid), &rec) : ZV_EIO;
        json_t *saved = call->reply;
        call->reply = NULL;
        if (one == ZV_OK)
            one = s_evacuate (self, child, call, rec, target, false, why, sizeof why);
        json_t *summary = json_pack ("{s:O, s:O}", "id", json_object_get (rec, "uuid"),
                                     "name", json_object_get (rec, "name") ? json_object_get (rec, "name") : json_null ());
        if (one == ZV_OK && zv_txn_commit (&child) == ZV_OK)
            json_array_append_new (moved, json_pack ("{s:o, s:O}", "server", summary,
                                                     "migration", json_object_get (call->reply, "migration")));
        else {
            zv_txn_abort (&child);
            json_array_append_new (refused, json_pack ("{s:o, s:s}", "server", summary, "reason", why));
        }
        json_decref (call->reply);
        call->reply = saved;
        json_decref (rec);
    }
    json_decref (scan.uuids);
    zv_info (ACTOR, zv_msg_rq (call->msg), "evacuating host %s: %zu servers, %zu refused", host,
             json_array_size (moved), json_array_size (refused));
    call->reply = json_pack ("{s:o, s:o}", "migrations", moved, "refused", refused);
    return ZV_OK;
}

//  Migration records: one server's (its owner or an admin), or the cloud's
//  (an admin), filtered.
zv_status_t
zv_conductor_migration_list (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                             char *errbuf, size_t errlen)
{
    const char *ref = zv_msg_get_str (call->msg, "ref");
    json_t *rec = NULL;
    if (ref) {
        zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
        if (status != ZV_OK)
            return status;
    }
    else
    if (!zv_conductor_is_admin (call))
        return zv_conductor_forbidden ("os_compute_api:os-migrations:index", errbuf, errlen);
    json_t *list = zv_migration_list (txn, rec ? s_str (rec, "uuid") : NULL, zv_msg_get_str (call->msg, "host"),
                                      zv_msg_get_str (call->msg, "status"));
    const char *kind = zv_msg_get_str (call->msg, "kind");
    json_t *kept = json_array ();
    size_t index;
    json_t *migration;
    json_array_foreach (list, index, migration)
        if (!kind || streq (s_str (migration, "kind"), kind))
            json_array_append_new (kept, zv_conductor_migration_view (json_deep_copy (migration)));
    json_decref (list);
    json_decref (rec);
    call->reply = json_pack ("{s:o}", "migrations", kept);
    return ZV_OK;
}

zv_status_t
zv_conductor_migration_show (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                             char *errbuf, size_t errlen)
{
    json_t *rec = NULL, *migration = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *id = zv_msg_get_str (call->msg, "id");
    if (zv_migration_get (txn, id, &migration) != ZV_OK
    ||  !streq (s_str (migration, "instance_uuid"), s_str (rec, "uuid"))) {
        snprintf (errbuf, errlen, "Migration %s for server %s could not be found.", id, s_str (rec, "uuid"));
        status = ZV_ENOTFOUND;
    }
    else
        call->reply = json_pack ("{s:o}", "migration", zv_conductor_migration_view (migration));
    if (status != ZV_OK)
        json_decref (migration);
    json_decref (rec);
    return status;
}

