/*  recovery.c: no instance stays in a transitional task_state forever.

    At start (a new epoch), builds that never reached a host go to ERROR
    and deletes of instances without a host are finished; each compute,
    seeing the new epoch in its heartbeat reply, then sends compute_sync
    (hosts.c) for what it holds.  Housekeeping runs the same sweep: a build
    stuck past build_timeout goes to ERROR, a delete past it is asked again
    (host up) or finished here (host down), a user action past task_timeout
    is given up.  Expired console tokens go too.  Each instance is settled
    in its own nested transaction of the caller's batch.  An instance a
    move holds (its migration open) is the move's to settle: moves.c's own
    sweep drives every open move on, or undoes it.                          */

#include "actors/conductor/conductor.h"

//  Instances whose transition must be finished or failed: builds that never
//  reached a host (at start), builds stuck past build_timeout, deletes of
//  instances without a host.
typedef struct {
    zv_conductor_t *self;
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
    if (json_object_get (rec, "migration_id") && strcmp (task, "deleting") != 0)
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

void
zv_conductor_sweep (zv_conductor_t *self, bool at_start)
{
    s_sweep_t sweep = { self, at_start, json_array (), json_array (), json_array (), json_array () };
    zv_txn_t *txn = zv_conductor_batch_txn (self);
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
        zv_conductor_tokens_revoke (tokens, NULL);
        zv_txn_commit (&tokens);
    }
    size_t index;
    json_t *uuid;
    json_t *building = json_pack ("[s,s,s,s]", "scheduling", "networking", "block_device_mapping", "spawning");
    json_array_foreach (sweep.fail_build, index, uuid) {
        zv_txn_t *child = zv_txn_begin (self->store, txn, true);
        const char *why = at_start ? "Build was interrupted by a conductor restart before reaching a host"
                                   : "Build timed out";
        if (child && zv_conductor_fail_build (self, child, json_string_value (uuid), building, ZV_ETIMEOUT, why) == ZV_OK)
            zv_txn_commit (&child);
        else
            zv_txn_abort (&child);
    }
    json_decref (building);
    json_array_foreach (sweep.finish_delete, index, uuid) {
        char errbuf [512];
        char buf [80];
        zv_txn_t *child = zv_txn_begin (self->store, txn, true);
        const char *rq = child ? zv_conductor_open_action_rq (child, json_string_value (uuid), NULL, buf, sizeof buf) : NULL;
        if (child && zv_conductor_finish_delete (self, child, json_string_value (uuid), rq, errbuf, sizeof errbuf) == ZV_OK)
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
            json_t *service = zv_conductor_compute_service (self, child, s_str (rec, "host"));
            char buf [80];
            const char *rq = zv_conductor_open_action_rq (child, json_string_value (uuid), NULL, buf, sizeof buf);
            zv_status_t status = !streq (zv_conductor_service_state (self, service), "down")
                ? zv_conductor_start_terminate (self, child, rec, rq, errbuf, sizeof errbuf)
                : zv_conductor_finish_delete (self, child, json_string_value (uuid), rq, errbuf, sizeof errbuf);
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
        json_t *changes = json_pack ("{s:n, s:o}", "task_state", "fault", zv_conductor_fault (ZV_ETIMEOUT, message));
        const char *rq = child ? zv_conductor_open_action_rq (child, stuck_uuid, NULL, buf, sizeof buf) : NULL;
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
    zv_conductor_moves_sweep (self, at_start);
}
