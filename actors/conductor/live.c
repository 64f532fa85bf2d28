/*  live.c: live migration's requests: open one, abort it, force it to
    complete.

    The move itself is a table of phases like any other (phases.c, s_live)
    walked by moves.c; what is live migration's own is here: the choice
    between shared storage and block migration (Nova's block_migration:
    true, false, or "auto": null, decided by the hosts' shared-storage
    marker), and the two controls a running job takes, which are not
    phases: abort and force-complete go to the source as
    compute.move_live_control, whose job monitor acts on them.  An abort
    the user asked for is kept on the migration record, so that the move
    ends "cancelled" rather than "error" when the source reports the job
    failed.                                                                 */

#include "actors/conductor/conductor.h"
#include "store/zv_instance.h"

zv_status_t
zv_conductor_live_migrate (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                           char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *host = zv_msg_get_str (call->msg, "host");
    bool forced = zv_msg_get_bool (call->msg, "force", false);
    //  Never the host it runs on, whatever allow_resize_to_same_host says.
    if (host)
        status = zv_conductor_move_check_destination (self, txn, rec, host, forced, false, errbuf, errlen);
    json_t *block = json_object_get (zv_msg_body (call->msg), "block_migration");
    json_t *extra = json_pack ("{s:O}", "block_migration", json_is_boolean (block) ? block : json_null ());
    if (status == ZV_OK)
        status = zv_conductor_move_open (self, txn, call, rec, ZV_ACTION_LIVE_MIGRATE, ZV_MIGRATION_LIVE,
                                         json_object_get (rec, "flavor"), host, forced, extra, errbuf, errlen);
    json_decref (extra);
    json_decref (rec);
    return status;
}

//  The open live migration of the server call names, whose id is the
//  call's, in its running phase ("live"); *migration_p new.
static zv_status_t
s_running (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call, const char *verb,
           json_t **migration_p, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *uuid = json_string_value (json_object_get (rec, "uuid"));
    const char *id = zv_msg_get_str (call->msg, "id");
    json_t *migration = NULL;
    if (zv_migration_get (txn, id, &migration) != ZV_OK
    ||  !streq (json_string_value (json_object_get (migration, "instance_uuid")), uuid)) {
        snprintf (errbuf, errlen, "Migration %s for instance %s could not be found.", id, uuid);
        status = ZV_ENOTFOUND;
    }
    else
    if (!streq (json_string_value (json_object_get (migration, "kind")), "live-migration")) {
        snprintf (errbuf, errlen, "Migration %s of instance %s is a %s, not a live migration: cannot %s it.",
                  id, uuid, json_string_value (json_object_get (migration, "kind")), verb);
        status = ZV_ECONFLICT;
    }
    else
    if (!streq (json_string_value (json_object_get (migration, "phase")), "live")) {
        snprintf (errbuf, errlen, "Migration %s state of instance %s is %s. Cannot %s while the migration "
                  "is in this state.", id, uuid, json_string_value (json_object_get (migration, "status")), verb);
        status = ZV_ECONFLICT;
    }
    json_decref (rec);
    if (status == ZV_OK)
        *migration_p = migration;
    else
        json_decref (migration);
    return status;
}

//  Tell the source what the user wants of its job (after commit).
static void
s_control (zv_conductor_t *self, zv_conductor_call_t *call, const json_t *migration, const char *action)
{
    zv_msg_t *msg = zv_msg_new ("compute.move_live_control");
    zv_msg_set_rq (msg, zv_msg_rq (call->msg));
    zv_msg_set_src (msg, "conductor");
    char identity [320];
    snprintf (identity, sizeof identity, "compute.%s",
              json_string_value (json_object_get (migration, "source_host")));
    zv_msg_set_routing_str (msg, identity);
    json_t *body = json_pack ("{s:O, s:O, s:s}", "uuid", json_object_get (migration, "instance_uuid"),
                              "migration", json_object_get (migration, "uuid"), "action", action);
    zv_msg_set_body (msg, &body);
    zv_conductor_out_cast (self, &msg, NULL, NULL);
}

zv_status_t
zv_conductor_migration_abort (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                              char *errbuf, size_t errlen)
{
    json_t *migration = NULL;
    zv_status_t status = s_running (self, txn, call, "abort", &migration, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    json_t *changes = json_pack ("{s:b}", "abort_requested", 1);
    char id [24];
    snprintf (id, sizeof id, "%lld", (long long) json_integer_value (json_object_get (migration, "id")));
    status = zv_migration_cas (txn, id, "live", changes, NULL, errbuf, errlen);
    json_decref (changes);
    if (status == ZV_OK) {
        s_control (self, call, migration, "abort");
        call->reply = json_object ();
    }
    json_decref (migration);
    return status;
}

zv_status_t
zv_conductor_migration_force_complete (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                       char *errbuf, size_t errlen)
{
    json_t *migration = NULL;
    zv_status_t status = s_running (self, txn, call, "force complete", &migration, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    s_control (self, call, migration, "force_complete");
    call->reply = json_object ();
    json_decref (migration);
    return ZV_OK;
}
