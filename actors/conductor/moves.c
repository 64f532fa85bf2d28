/*  moves.c: moving servers between hosts (cold migration, resize with
    confirm and revert, evacuation, live migration), as persisted
    sequences of phases: the engine that walks the tables.  What users
    ask of moves is move_requests.c's (live migration's, live.c's).

    One table of phases per kind of move (phases.c): the phase,
    the host it runs on, the cast that starts it there, the instance's
    task_state and the migration's status while it runs, the phase that
    follows when the host reports it done, and the phase that undoes it
    when the host reports a failure.  Entering a phase is one transaction
    (a compare-and-swap on the migration's phase and the instance's
    task_state) whose cast goes out only once it is committed; the host
    answers with conductor.move_report, and the next phase is again one
    transaction and one cast.  So any process may die between two phases:
    the migration record says where the move stands.  A phase cast by an
    earlier run of the conductor, or before its host restarted, is cast
    again when that host syncs (each host's part of a phase is safe to run
    twice); a phase nobody answers is cast again after move_phase_timeout,
    then undone, unless only its host can say how it ended (a live
    migration's job: it waits).

    Allocations follow Nova's migration-based ones: once a destination is
    claimed, the source allocation belongs to the migration (its uuid the
    consumer) and the instance holds the destination's, with the new
    flavor; confirm releases the migration's, revert and a failed move
    give it back to the instance and release the destination's.  A move's
    end is the one place that touches them again (s_end).

    The file chunks a move carries between two hosts go through here too:
    conductor.move_read from the destination is relayed to the source as
    compute.move_read, outside the batch, its payload moved across as it
    came.                                                                    */

#include "actors/conductor/conductor.h"
#include "store/zv_instance.h"
#include "store/zv_migration.h"
#include "store/zv_placement.h"

//  ---------------------------------------------------------------------
//  The phase tables (phases.c)

typedef zv_move_phase_t s_phase_t;
#define S_MAX_ATTEMPTS 3            //  casts of one phase before it is given up

static const s_phase_t *
s_row (const json_t *migration, const char *phase)
{
    return zv_conductor_move_phase (s_str (migration, "kind"), phase);
}

static const char *
s_where_host (const json_t *migration, zv_move_where_t where)
{
    return where == ZV_MOVE_SOURCE ? s_str (migration, "source_host")
         : where == ZV_MOVE_DEST ? s_str (migration, "dest_host") : NULL;
}

//  A migration as it leaves the conductor: without the store's own keys;
//  for people (for_hosts false) also without what a live migration's
//  hosts tell each other (domain XML, addresses: "live").
static json_t *
s_migration_out (json_t *migration, bool for_hosts)
{
    static const char *internal [] = { "_rv", "created_ms", "updated_ms", "attempts", "cast_by", NULL };
    for (int index = 0; internal [index]; index++)
        json_object_del (migration, internal [index]);
    if (!for_hosts)
        json_object_del (migration, "live");
    return migration;
}

json_t *
zv_conductor_migration_view (json_t *migration)
{
    return s_migration_out (migration, false);
}

static zv_status_t
s_instance_cas (zv_txn_t *txn, const char *uuid, const json_t *rec, json_t *changes, json_t **rec_p,
                char *errbuf, size_t errlen)
{
    const json_t *task = json_object_get (rec, "task_state");
    json_t *expected = json_pack ("[O]", task ? task : json_null ());
    zv_status_t status = zv_store_instance_cas (txn, uuid, expected, changes, rec_p, errbuf, errlen);
    json_decref (expected);
    json_decref (changes);
    return status;
}

//  ---------------------------------------------------------------------
//  Casting a phase to its host

static void s_cast_unreachable (zv_conductor_t *self, json_t *arg);

//  The instance as the host of a phase must see it: the flavor its domain
//  has there (the new one at the destination before the move ends, the old
//  one at the source).
static json_t *
s_instance_for (const json_t *rec, const json_t *migration, zv_move_where_t where)
{
    json_t *view = zv_instance_view (json_deep_copy (rec));
    const json_t *flavor = json_object_get (migration, where == ZV_MOVE_DEST ? "new_flavor" : "old_flavor");
    if (json_is_object (flavor))
        json_object_set_new (view, "flavor", json_deep_copy (flavor));
    return view;
}

static void
s_cast (zv_conductor_t *self, zv_txn_t *txn, const json_t *migration, const json_t *rec, const s_phase_t *row)
{
    const char *host = s_where_host (migration, row->where);
    zv_msg_t *msg = zv_msg_new (row->cast);
    zv_msg_set_rq (msg, s_str (migration, "request_id"));
    zv_msg_set_src (msg, ACTOR);
    char identity [320];
    snprintf (identity, sizeof identity, "compute.%s", host ? host : "");
    zv_msg_set_routing_str (msg, identity);
    json_t *body = json_pack ("{s:o, s:o, s:o}",
                              "migration", s_migration_out (json_deep_copy (migration), true),
                              "instance", s_instance_for (rec, migration, row->where),
                              "images", zv_conductor_action_images (txn, rec, NULL));
    zv_msg_set_body (msg, &body);
    zv_info (ACTOR, s_str (migration, "request_id"), "migration %lld of %s: %s on %s",
             (long long) s_int (migration, "id"), s_str (migration, "instance_uuid"), row->name, host);
    zv_conductor_out_cast (self, &msg, s_cast_unreachable,
                           json_pack ("{s:O, s:O, s:s, s:s}", "migration", json_object_get (migration, "uuid"),
                                      "instance", json_object_get (migration, "instance_uuid"),
                                      "phase", row->name, "host", host ? host : ""));
}

//  ---------------------------------------------------------------------
//  Entering a phase, ending a move

static void s_schedule (zv_conductor_t *self, const json_t *migration, const json_t *rec);
static zv_status_t s_end (zv_conductor_t *self, zv_txn_t *txn, json_t *migration, const char *status,
                          const char *reason, const char *power, char *errbuf, size_t errlen);

//  Move migration (as read in txn) from its phase to phase: one
//  compare-and-swap on each record, then the phase's cast (after commit).
//  changes (taken, may be NULL) are merged into the migration too.
zv_status_t
zv_conductor_move_enter (zv_conductor_t *self, zv_txn_t *txn, const json_t *migration, const char *phase, json_t *changes,
         char *errbuf, size_t errlen)
{
    const s_phase_t *row = s_row (migration, phase);
    assert (row);
    const char *uuid = s_str (migration, "instance_uuid");
    char id [24];
    snprintf (id, sizeof id, "%lld", (long long) s_int (migration, "id"));
    if (!changes)
        changes = json_object ();
    json_object_set_new (changes, "phase", json_string (phase));
    json_object_set_new (changes, "status", json_string (row->status));
    json_object_set_new (changes, "attempts", json_integer (1));
    json_object_set_new (changes, "cast_by", json_string (self->epoch));
    json_t *moved = NULL, *rec = NULL;
    zv_status_t status = zv_migration_cas (txn, id, s_str (migration, "phase"), changes, &moved, errbuf, errlen);
    json_decref (changes);
    if (status == ZV_OK)
        status = zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) == ZV_OK ? ZV_OK : ZV_ENOTFOUND;
    json_t *task_changes = json_object ();
    if (status == ZV_OK) {
        json_object_set_new (task_changes, "task_state", row->task ? json_string (row->task) : json_null ());
        if (streq (phase, "verify") || row->lands) {
            //  The forward part is done: the server is on the destination,
            //  with its new flavor, waiting for the user.
            if (!row->lands)
                json_object_set_new (task_changes, "vm_state", json_string ("resized"));
            json_object_set (task_changes, "host", json_object_get (moved, "dest_host"));
            json_object_set (task_changes, "node", json_object_get (moved, "dest_host"));
            json_object_set (task_changes, "flavor", json_object_get (moved, "new_flavor"));
            const char *power = s_str (moved, "power_state");
            if (power)
                json_object_set_new (task_changes, "power_state", json_string (power));
            json_object_set (task_changes, "console", json_object_get (moved, "console")
                             ? json_object_get (moved, "console") : json_null ());
        }
        json_t *after = NULL;
        status = s_instance_cas (txn, uuid, rec, task_changes, &after, errbuf, errlen);
        task_changes = NULL;
        json_decref (rec);
        rec = after;
    }
    json_decref (task_changes);
    if (status == ZV_OK && (streq (phase, "verify") || row->lands)) {
        const char *rq = streq (phase, "verify") ? s_str (moved, "request_id") : NULL;
        if (rq && *rq)
            zv_store_action_finish (txn, uuid, rq, "Success", NULL);
        zv_conductor_tokens_revoke (txn, uuid);
    }
    if (status == ZV_OK && row->cast)
        s_cast (self, txn, moved, rec, row);
    else
    if (status == ZV_OK && streq (phase, "schedule"))
        s_schedule (self, moved, rec);
    json_decref (moved);
    json_decref (rec);
    return status;
}

//  The phase that follows row when it is done (or failed): the next
//  phase, or the move's end.
static zv_status_t
s_follow (zv_conductor_t *self, zv_txn_t *txn, json_t *migration, bool failed, const char *reason,
          const char *power, char *errbuf, size_t errlen)
{
    const s_phase_t *row = s_row (migration, s_str (migration, "phase"));
    const char *next = failed ? row->undo : row->next;
    if (next) {
        json_t *changes = json_object ();
        if (failed && reason)
            json_object_set_new (changes, "error", json_string (reason));
        return zv_conductor_move_enter (self, txn, migration, next, changes, errbuf, errlen);
    }
    const char *ends = failed ? row->ends_failed : row->ends_done;
    return s_end (self, txn, migration, ends ? ends : "error", reason, power, errbuf, errlen);
}

//  The vm_state a move that ends returns a server to: the one it started
//  from (kept as old_vm_state), as Nova does for a stopped server.
static const char *
s_prior (const json_t *rec)
{
    const char *before = s_str (rec, "old_vm_state");
    return before && streq (before, "stopped") ? "stopped" : "active";
}

//  The move ends with status: the instance settles where the move leaves
//  it, the allocations with it, the action records close, the migration
//  closes.
static zv_status_t
s_end (zv_conductor_t *self, zv_txn_t *txn, json_t *migration, const char *status, const char *reason,
       const char *power, char *errbuf, size_t errlen)
{
    const char *uuid = s_str (migration, "instance_uuid");
    const char *mig_uuid = s_str (migration, "uuid");
    bool evacuation = streq (s_str (migration, "kind"), "evacuation");
    bool live = streq (s_str (migration, "kind"), "live-migration");
    const char *from = s_str (migration, "phase");
    //  An abort the user asked for ends the move as cancelled.
    if (json_is_true (json_object_get (migration, "abort_requested")) && streq (status, "error"))
        status = "cancelled";
    //  A move undone ends with the reason it was undone for.
    if (!reason)
        reason = s_str (migration, "error");
    json_t *rec = NULL;
    if (zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) != ZV_OK) {
        snprintf (errbuf, errlen, "Instance %s could not be found.", uuid);
        return ZV_ENOTFOUND;
    }
    json_t *changes = json_pack ("{s:n, s:n}", "task_state", "old_vm_state");
    zv_status_t result = ZV_OK;
    bool landed = (evacuation && streq (status, "done")) || (live && streq (status, "completed"))
               || (!evacuation && !live && streq (from, "confirm"));
    if (landed) {
        //  On the destination for good: the source's allocation goes.
        if (evacuation) {
            json_object_set (changes, "host", json_object_get (migration, "dest_host"));
            json_object_set (changes, "node", json_object_get (migration, "dest_host"));
            json_object_set (changes, "console", json_object_get (migration, "console")
                             ? json_object_get (migration, "console") : json_null ());
        }
        //  A live migration leaves the vm_state as it was (active, paused).
        if (!live)
            json_object_set_new (changes, "vm_state", json_string (s_prior (rec)));
        result = zv_conductor_release (self, txn, mig_uuid);
    }
    else {
        //  Back on the source: its allocation, which the migration holds
        //  once a destination was claimed, returns to the instance.
        json_object_set (changes, "host", json_object_get (migration, "source_host"));
        json_object_set (changes, "node", json_object_get (migration, "source_host"));
        if (json_is_object (json_object_get (migration, "old_flavor")))
            json_object_set (changes, "flavor", json_object_get (migration, "old_flavor"));
        if (evacuation && !streq (status, "done"))
            json_object_set_new (changes, "vm_state", json_string ("error"));
        else
        if (!live)
            json_object_set_new (changes, "vm_state", json_string (s_prior (rec)));
        json_t *held = NULL;
        if (zv_store_get (txn, ZV_TABLE_ALLOCATIONS, mig_uuid, &held) == ZV_OK) {
            result = zv_conductor_release (self, txn, uuid);
            if (result == ZV_OK)
                result = zv_placement_move (txn, mig_uuid, uuid);
        }
        json_decref (held);
    }
    //  The power state the server ends with is the one its host reported,
    //  unless the move ends on the source's confirm (the server is on the
    //  destination, whose power stands).
    if (power && !streq (from, "confirm"))
        json_object_set_new (changes, "power_state", json_string (power));
    bool failed = streq (status, "error") || streq (status, "failed") || streq (status, "cancelled");
    //  A live migration that failed leaves the guest running where it was:
    //  no fault on the server, the reason on the migration record.
    if (failed && reason && !live)
        json_object_set_new (changes, "fault", zv_conductor_fault (ZV_EIO, reason));
    json_t *after = NULL;
    if (result == ZV_OK)
        result = s_instance_cas (txn, uuid, rec, changes, &after, errbuf, errlen);
    else
        json_decref (changes);
    //  The action the user is waiting for closes: the move's own, or a
    //  confirm's or revert's (request_id names whichever is open).
    const char *rq = s_str (migration, "request_id");
    if (result == ZV_OK && rq && *rq)
        zv_store_action_finish (txn, uuid, rq, failed ? "Error" : "Success", failed ? reason : NULL);
    char id [24];
    snprintf (id, sizeof id, "%lld", (long long) s_int (migration, "id"));
    json_t *close = json_pack ("{s:s, s:s}", "status", status, "phase", "ended");
    if (reason && failed)
        json_object_set_new (close, "error", json_string (reason));
    if (result == ZV_OK)
        result = zv_migration_cas (txn, id, from, close, NULL, errbuf, errlen);
    json_decref (close);
    if (result == ZV_OK) {
        zv_conductor_tokens_revoke (txn, uuid);
        zv_info (ACTOR, rq, "migration %s of %s: %s%s%s", id, uuid, status, failed && reason ? ": " : "",
                 failed && reason ? reason : "");
    }
    json_decref (after);
    json_decref (rec);
    return result;
}

//  ---------------------------------------------------------------------
//  Scheduling a move and claiming its destination

static void
s_schedule (zv_conductor_t *self, const json_t *migration, const json_t *rec)
{
    zv_conductor_job_t *job = (zv_conductor_job_t *) zmalloc (sizeof (zv_conductor_job_t));
    job->uuids = json_pack ("[O]", json_object_get (rec, "uuid"));
    json_t *spec = json_deep_copy (json_object_get (rec, "request_spec"));
    if (!json_is_object (spec)) {
        json_decref (spec);
        spec = json_pack ("{s:s}", "project_id", s_str (rec, "project_id") ? s_str (rec, "project_id") : "");
    }
    const json_t *flavor = json_object_get (migration, "new_flavor");
    json_object_set_new (spec, "resources", zv_placement_flavor_resources (flavor));
    json_object_set_new (spec, "flavor", json_pack ("{s:O}", "extra_specs",
                         json_object_get (flavor, "extra_specs") ? json_object_get (flavor, "extra_specs")
                                                                 : json_null ()));
    //  The zone the server is in, a host the caller asked for (every
    //  filter still runs); never a forced host of its create.
    json_object_del (spec, "force_host");
    json_object_del (spec, "requested_host");
    if (s_str (rec, "availability_zone") && !s_str (migration, "requested_host"))
        json_object_set (spec, "availability_zone", json_object_get (rec, "availability_zone"));
    else
        json_object_del (spec, "availability_zone");
    if (s_str (migration, "requested_host"))
        json_object_set (spec, "requested_host", json_object_get (migration, "requested_host"));
    job->spec = spec;
    job->ignore_hosts = json_array ();
    //  Only a cold move may stay on its host (a resize there); never an
    //  evacuation nor a live migration.
    bool same_host = self->cfg.allow_resize_to_same_host && !streq (s_str (migration, "kind"), "evacuation")
                  && !streq (s_str (migration, "kind"), "live-migration");
    if (!same_host)
        json_array_append (job->ignore_hosts, json_object_get (migration, "source_host"));
    job->attempt = 1;
    job->min_count = 1;
    snprintf (job->rq, sizeof job->rq, "%s", s_str (migration, "request_id") ? s_str (migration, "request_id") : "");
    snprintf (job->migration, sizeof job->migration, "%s", s_str (migration, "uuid"));
    job->queued_ms = zv_mono_ms ();
    zv_conductor_schedule (self, &job);
}

//  In txn: claim host for the move, and go on to its first phase there.
//  The source allocation passes to the migration; the instance claims the
//  destination with the new flavor.
zv_status_t
zv_conductor_move_claim (zv_conductor_t *self, zv_txn_t *txn, const json_t *migration, const char *host, char *errbuf, size_t errlen)
{
    const char *uuid = s_str (migration, "instance_uuid");
    json_t *rec = NULL;
    if (zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) != ZV_OK) {
        snprintf (errbuf, errlen, "Instance %s could not be found.", uuid);
        return ZV_ENOTFOUND;
    }
    zv_status_t status = zv_placement_move (txn, uuid, s_str (migration, "uuid"));
    json_t *resources = zv_placement_flavor_resources (json_object_get (migration, "new_flavor"));
    if (status == ZV_OK)
        status = zv_placement_claim (txn, uuid, s_str (rec, "project_id"), host, resources, errbuf, errlen);
    json_decref (resources);
    json_decref (rec);
    if (status != ZV_OK)
        return status;
    self->generation++;
    const s_phase_t *schedule = s_row (migration, "schedule");
    return zv_conductor_move_enter (self, txn, migration, schedule->next,
                    json_pack ("{s:s, s:s}", "dest_host", host, "dest_node", host), errbuf, errlen);
}

//  The move could not be placed: it ends where it began.
static void
s_unplaced (zv_conductor_t *self, const char *mig_uuid, const char *instance, const char *reason)
{
    zv_txn_t *txn = zv_txn_begin (self->store, zv_conductor_batch_txn (self), true);
    json_t *migration = NULL;
    char errbuf [512];
    if (txn && zv_migration_open_of (txn, instance, &migration) == ZV_OK
    &&  streq (s_str (migration, "uuid"), mig_uuid) && streq (s_str (migration, "phase"), "schedule")
    &&  s_follow (self, txn, migration, true, reason, NULL, errbuf, sizeof errbuf) == ZV_OK)
        zv_txn_commit (&txn);
    else
        zv_txn_abort (&txn);
    json_decref (migration);
}

void
zv_conductor_move_unscheduled (zv_conductor_t *self, zv_conductor_job_t *job, zv_status_t why,
                               const char *message)
{
    (void) why;
    s_unplaced (self, job->migration, json_string_value (json_array_get (job->uuids, 0)), message);
}

void
zv_conductor_move_scheduled (zv_conductor_t *self, zv_conductor_job_t *job, zv_msg_t *reply)
{
    const char *instance = json_string_value (json_array_get (job->uuids, 0));
    if (zv_msg_status (reply) != ZV_OK) {
        char message [900];
        snprintf (message, sizeof message, "No valid host was found. %s", zv_msg_error_text (reply));
        s_unplaced (self, job->migration, instance, message);
        return;
    }
    json_t *hosts = json_array_get (json_object_get (zv_msg_body (reply), "destinations"), 0);
    zv_txn_t *txn = zv_txn_begin (self->store, zv_conductor_batch_txn (self), true);
    json_t *migration = NULL;
    if (!txn || zv_migration_open_of (txn, instance, &migration) != ZV_OK
    ||  !streq (s_str (migration, "uuid"), job->migration) || !streq (s_str (migration, "phase"), "schedule")) {
        zv_txn_abort (&txn);            //  ended meanwhile (a delete): nothing to claim
        json_decref (migration);
        return;
    }
    char errbuf [512] = "", last [512] = "";
    bool claimed = false;
    size_t index;
    json_t *host;
    json_array_foreach (hosts, index, host) {
        zv_txn_t *child = zv_txn_begin (self->store, txn, true);
        if (child && json_is_string (host)
        &&  zv_conductor_move_claim (self, child, migration, json_string_value (host), errbuf, sizeof errbuf) == ZV_OK
        &&  zv_txn_commit (&child) == ZV_OK) {
            claimed = true;
            break;
        }
        zv_txn_abort (&child);
        snprintf (last, sizeof last, "%s", errbuf);
    }
    if (claimed)
        zv_txn_commit (&txn);
    else {
        zv_txn_abort (&txn);
        char message [900];
        snprintf (message, sizeof message, "No valid host was found. There are not enough hosts available.%s%s",
                  *last ? " " : "", last);
        s_unplaced (self, job->migration, instance, message);
    }
    json_decref (migration);
}

//  ---------------------------------------------------------------------
//  What hosts report

//  The figures a report may carry onto the migration record: a cold move's
//  bytes, a live migration's job (Nova's memory_* and disk_* in bytes).
static void
s_counted (json_t *into, const json_t *facts)
{
    static const char *counted [] = { "bytes_copied", "bytes_total", "memory_bps", "dirty_rate", "iteration",
        "downtime_ms", "elapsed_ms", NULL };
    for (int index = 0; counted [index]; index++)
        if (json_is_integer (json_object_get (facts, counted [index])))
            json_object_set (into, counted [index], json_object_get (facts, counted [index]));
    //  The job's bytes under Nova's names (memory_total_bytes, ...).
    static const char *job [] = { "memory_total", "memory_processed", "memory_remaining", "disk_total",
        "disk_processed", "disk_remaining", NULL };
    for (int index = 0; job [index]; index++)
        if (json_is_integer (json_object_get (facts, job [index]))) {
            char key [48];
            snprintf (key, sizeof key, "%s_bytes", job [index]);
            json_object_set (into, key, json_object_get (facts, job [index]));
        }
    if (json_is_boolean (json_object_get (facts, "postcopy")))
        json_object_set (into, "postcopy", json_object_get (facts, "postcopy"));
}

//  The open migration a host's message is about (instance uuid, migration
//  uuid), with the sender checked against the host the phase runs on.
static zv_status_t
s_reported (zv_conductor_call_t *call, zv_txn_t *txn, json_t **migration_p, const s_phase_t **row_p,
            char *errbuf, size_t errlen)
{
    const char *uuid = zv_msg_get_str (call->msg, "uuid");
    const char *mig_uuid = zv_msg_get_str (call->msg, "migration");
    json_t *migration = NULL;
    if (zv_migration_open_of (txn, uuid, &migration) != ZV_OK || !streq (s_str (migration, "uuid"), mig_uuid)) {
        snprintf (errbuf, errlen, "Migration %s of instance %s is not open.", mig_uuid, uuid);
        json_decref (migration);
        return ZV_ECONFLICT;
    }
    const s_phase_t *row = s_row (migration, s_str (migration, "phase"));
    *migration_p = migration;
    *row_p = row;
    return ZV_OK;
}

zv_status_t
zv_conductor_move_report (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                          char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    json_t *migration = NULL;
    const s_phase_t *row = NULL;
    zv_status_t status = s_reported (call, txn, &migration, &row, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *phase = zv_msg_get_str (msg, "phase");
    const char *outcome = zv_msg_get_str (msg, "outcome");
    const char *host = row ? s_where_host (migration, row->where) : NULL;
    const char *power = zv_msg_get_str (msg, "power_state");
    if (!row || !streq (phase, s_str (migration, "phase"))) {
        snprintf (errbuf, errlen, "Migration %lld is in phase %s, not %s: a late report.",
                  (long long) s_int (migration, "id"), s_str (migration, "phase"), phase);
        status = ZV_ECONFLICT;
    }
    else
    if (!host || !streq (host, call->peer_host)) {
        snprintf (errbuf, errlen, "compute.%s may not report phase %s of migration %lld (it runs on %s).",
                  call->peer_host, phase, (long long) s_int (migration, "id"), host ? host : "no host");
        status = ZV_EFORBIDDEN;
    }
    else
    if (power && zv_power_state_from_name (power) < 0) {
        snprintf (errbuf, errlen, "'%s' is not a power state.", power);
        status = ZV_EINVAL;
    }
    json_t *facts = json_object_get (zv_msg_body (msg), "facts");
    char id [24];
    snprintf (id, sizeof id, "%lld", (long long) s_int (migration, "id"));
    if (status == ZV_OK && (streq (outcome, "progress") || streq (outcome, "step"))) {
        json_t *changes = json_object ();
        s_counted (changes, facts);
        json_t *moved = NULL;
        status = zv_migration_cas (txn, id, phase, changes, &moved, errbuf, errlen);
        json_decref (changes);
        //  A step moves the instance's task within the phase: the copy is
        //  done (resize_finish), or a rebuild's next step.
        if (status == ZV_OK && streq (outcome, "step")) {
            json_t *rec = NULL;
            const char *uuid = s_str (migration, "instance_uuid");
            if (zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) == ZV_OK) {
                int task = zv_task_state_from_name (s_str (rec, "task_state"));
                zv_state_result_t result;
                char judged [256];
                const char *next = NULL;
                if (task == ZV_TASK_RESIZE_MIGRATED)
                    next = "resize_finish";
                else
                if (task > 0 && zv_state_outcome ((zv_task_state_t) task, ZV_OUTCOME_STEP, ZV_OK, &result,
                                                  judged, sizeof judged) == ZV_OK)
                    next = zv_task_state_name (result.task);
                if (next)
                    status = s_instance_cas (txn, uuid, rec, json_pack ("{s:s}", "task_state", next), NULL,
                                             errbuf, errlen);
            }
            json_decref (rec);
        }
        json_decref (moved);
    }
    else
    if (status == ZV_OK && (streq (outcome, "done") || streq (outcome, "failed"))) {
        bool failed = streq (outcome, "failed");
        //  What the host learnt joins the record before the next phase.
        json_t *learnt = json_object ();
        if (json_is_boolean (json_object_get (facts, "shared")))
            json_object_set (learnt, "shared_storage", json_object_get (facts, "shared"));
        if (json_is_array (json_object_get (facts, "files")))
            json_object_set (learnt, "files", json_object_get (facts, "files"));
        if (json_object_get (facts, "console") && row->where == ZV_MOVE_DEST)
            json_object_set (learnt, "console", json_object_get (facts, "console"));
        s_counted (learnt, facts);
        //  What a live migration's hosts tell each other (the source's XML
        //  and disks, the destination's XML and addresses) joins "live".
        if (json_is_object (json_object_get (facts, "live"))) {
            json_t *live = json_deep_copy (json_object_get (migration, "live"));
            if (!json_is_object (live)) {
                json_decref (live);
                live = json_object ();
            }
            json_object_update (live, json_object_get (facts, "live"));
            json_object_set_new (learnt, "live", live);
        }
        if (power && row->where == ZV_MOVE_DEST)
            json_object_set_new (learnt, "power_state", json_string (power));
        json_t *moved = NULL;
        status = zv_migration_cas (txn, id, phase, learnt, &moved, errbuf, errlen);
        json_decref (learnt);
        const char *reason = zv_msg_get_str (msg, "reason");
        char because [4300];
        if (failed)
            snprintf (because, sizeof because, "%s failed on %s: %s", phase, host, reason ? reason : "no reason given");
        if (status == ZV_OK)
            status = s_follow (self, txn, moved, failed, failed ? because : NULL, power, errbuf, errlen);
        json_decref (moved);
    }
    else
    if (status == ZV_OK) {
        snprintf (errbuf, errlen, "'%s' is not an outcome of a move's phase (progress, step, done, failed).",
                  outcome);
        status = ZV_EINVAL;
    }
    json_decref (migration);
    if (status == ZV_OK)
        call->reply = json_object ();
    return status;
}

//  conductor.move_read: a chunk of a file the destination pulls from the
//  source, relayed as it is (the route runs outside the batch).
zv_status_t
zv_conductor_move_read (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                        char *errbuf, size_t errlen)
{
    json_t *migration = NULL;
    const s_phase_t *row = NULL;
    zv_status_t status = s_reported (call, txn, &migration, &row, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *dest = s_str (migration, "dest_host");
    const char *source = s_str (migration, "source_host");
    if (!dest || !streq (dest, call->peer_host) || !source) {
        snprintf (errbuf, errlen, "compute.%s is not the destination of migration %lld.", call->peer_host,
                  (long long) s_int (migration, "id"));
        json_decref (migration);
        return ZV_EFORBIDDEN;
    }
    json_t *body = json_deep_copy (zv_msg_body (call->msg));
    status = zv_conductor_relay (self, call, source, "compute.move_read", body, self->cfg.rpc_timeout_s * 1000);
    json_decref (migration);
    return status;
}

//  ---------------------------------------------------------------------
//  A server deleted while it moves

void
zv_conductor_move_cancel (zv_conductor_t *self, zv_txn_t *txn, const json_t *rec, const char *why)
{
    const char *uuid = s_str (rec, "uuid");
    json_t *migration = NULL;
    if (zv_migration_open_of (txn, uuid, &migration) != ZV_OK)
        return;
    //  The end the delete's terminate does not reach cleans what the move
    //  made there: the destination its copy, the source what it set aside.
    const char *host = s_str (rec, "host") ? s_str (rec, "host") : "";
    bool on_source = streq (host, s_str (migration, "source_host") ? s_str (migration, "source_host") : "");
    bool live = streq (s_str (migration, "kind") ? s_str (migration, "kind") : "", "live-migration");
    const s_phase_t *row = s_row (migration, on_source ? "cleanup_dest" : live ? "cleanup_source" : "confirm");
    const char *other = s_where_host (migration, on_source ? ZV_MOVE_DEST : ZV_MOVE_SOURCE);
    if (row && row->cast && other && *other && !streq (other, host)) {
        json_t *told = json_deep_copy (migration);
        json_object_set_new (told, "phase", json_string (row->name));
        s_cast (self, txn, told, rec, row);
        json_decref (told);
    }
    char id [24], errbuf [256];
    snprintf (id, sizeof id, "%lld", (long long) s_int (migration, "id"));
    json_t *close = json_pack ("{s:s, s:s, s:s}", "status", "error", "phase", "ended", "error", why);
    if (zv_migration_cas (txn, id, NULL, close, NULL, errbuf, sizeof errbuf) == ZV_OK)
        zv_conductor_release (self, txn, s_str (migration, "uuid"));
    json_decref (close);
    const char *rq = s_str (migration, "request_id");
    if (rq && *rq)
        zv_store_action_finish (txn, uuid, rq, "Error", why);
    json_decref (migration);
}

//  ---------------------------------------------------------------------
//  A phase its host cannot be told, recovery, housekeeping

//  The phase failed (the host is not connected, or never answered): undo
//  it.  Undoing on a destination that cannot be told goes on to the
//  source (what it holds is reaped as an orphan when it returns); the
//  source's own phases wait for it to come back.
static void
s_phase_failed (zv_conductor_t *self, const char *mig_uuid, const char *instance, const char *phase,
                const char *reason)
{
    zv_txn_t *txn = zv_txn_begin (self->store, zv_conductor_batch_txn (self), true);
    json_t *migration = NULL;
    char errbuf [512];
    if (!txn || zv_migration_open_of (txn, instance, &migration) != ZV_OK
    ||  !streq (s_str (migration, "uuid"), mig_uuid) || !streq (s_str (migration, "phase"), phase)) {
        zv_txn_abort (&txn);
        json_decref (migration);
        return;
    }
    const s_phase_t *row = s_row (migration, phase);
    bool undoing = row && (streq (phase, "cleanup_dest") || streq (phase, "revert"));
    zv_status_t status;
    if (undoing)
        status = s_follow (self, txn, migration, false, NULL, NULL, errbuf, sizeof errbuf);
    else
        status = s_follow (self, txn, migration, true, reason, NULL, errbuf, sizeof errbuf);
    if (status == ZV_OK)
        zv_txn_commit (&txn);
    else
        zv_txn_abort (&txn);
    json_decref (migration);
}

static void
s_cast_unreachable (zv_conductor_t *self, json_t *arg)
{
    const char *phase = s_str (arg, "phase");
    char reason [400];
    snprintf (reason, sizeof reason, "compute host %s is not connected", s_str (arg, "host"));
    zv_warning (ACTOR, NULL, "migration %s: phase %s: %s", s_str (arg, "migration"), phase, reason);
    //  A source that cannot be told now is told again when it returns
    //  (its sync after a restart, or the phase timeout).
    bool source_phase = streq (phase, "confirm") || streq (phase, "revert_source") || streq (phase, "restore_source")
                     || streq (phase, "live") || streq (phase, "cleanup_source");
    if (!source_phase)
        s_phase_failed (self, s_str (arg, "migration"), s_str (arg, "instance"), phase, reason);
}

//  Cast the current phase of migration again (a restart lost it), or
//  re-run scheduling.
static void
s_redrive (zv_conductor_t *self, zv_txn_t *txn, json_t *migration)
{
    const s_phase_t *row = s_row (migration, s_str (migration, "phase"));
    if (!row)
        return;
    json_t *rec = NULL;
    if (zv_store_get (txn, ZV_TABLE_INSTANCES, s_str (migration, "instance_uuid"), &rec) != ZV_OK)
        return;
    char id [24], errbuf [256];
    snprintf (id, sizeof id, "%lld", (long long) s_int (migration, "id"));
    json_t *bump = json_pack ("{s:I, s:s}", "attempts", s_int (migration, "attempts") + 1, "cast_by", self->epoch);
    json_t *moved = NULL;
    if (zv_migration_cas (txn, id, row->name, bump, &moved, errbuf, sizeof errbuf) == ZV_OK) {
        if (row->cast)
            s_cast (self, txn, moved, rec, row);
        else
        if (streq (row->name, "schedule"))
            s_schedule (self, moved, rec);
    }
    json_decref (bump);
    json_decref (moved);
    json_decref (rec);
}

void
zv_conductor_moves_host_synced (zv_conductor_t *self, zv_txn_t *txn, const char *host, int64_t started_ms)
{
    json_t *open = zv_migration_open_on_host (txn, host);
    const char *uuid;
    json_t *entry;
    json_object_foreach (open, uuid, entry) {
        json_t *migration = NULL;
        if (zv_migration_open_of (txn, uuid, &migration) != ZV_OK)
            continue;
        const s_phase_t *row = s_row (migration, s_str (migration, "phase"));
        const char *runs_on = row ? s_where_host (migration, row->where) : NULL;
        //  Cast again what this host may have lost: a phase cast before the
        //  host restarted, or by an earlier run of the conductor (the cast
        //  may never have left; the host ignores a phase it is running).
        int64_t updated = s_int (migration, "updated_ms");
        const char *cast_by = s_str (migration, "cast_by");
        bool earlier_run = !cast_by || !streq (cast_by, self->epoch);
        if (runs_on && streq (runs_on, host) && (updated < started_ms || earlier_run)) {
            zv_info (ACTOR, s_str (migration, "request_id"), "migration %lld: %s during %s: cast again",
                     (long long) s_int (migration, "id"),
                     updated < started_ms ? "its host restarted" : "the conductor restarted", row->name);
            s_redrive (self, txn, migration);
        }
        json_decref (migration);
    }
    json_decref (open);
}

void
zv_conductor_moves_sweep (zv_conductor_t *self, bool at_start)
{
    zv_txn_t *batch = zv_conductor_batch_txn (self);
    if (!batch)
        return;
    zv_txn_t *read = zv_txn_begin (self->store, batch, true);
    json_t *open = read ? zv_migration_open_all (read) : json_array ();
    zv_txn_abort (&read);
    int64_t now = zv_now_ms ();
    size_t index;
    json_t *entry;
    json_array_foreach (open, index, entry) {
        zv_txn_t *txn = zv_txn_begin (self->store, batch, true);
        json_t *migration = NULL;
        if (!txn || zv_migration_open_of (txn, s_str (entry, "instance_uuid"), &migration) != ZV_OK) {
            zv_txn_abort (&txn);
            continue;
        }
        const char *phase = s_str (migration, "phase");
        const s_phase_t *row = s_row (migration, phase);
        int64_t age = now - s_int (migration, "updated_ms");
        char errbuf [256];
        zv_status_t status = ZV_OK;
        if (!row) {
            //  A move opened by a run that died before its first phase:
            //  nothing happened yet; it ends where it began.
            status = s_end (self, txn, migration, streq (s_str (migration, "kind"), "evacuation") ? "failed" : "error",
                            "interrupted by a conductor restart before it began", NULL, errbuf, sizeof errbuf);
        }
        else
        if (streq (phase, "verify")) {
            if (self->cfg.resize_confirm_window_s > 0 && age > (int64_t) self->cfg.resize_confirm_window_s * 1000) {
                char rq [80];
                snprintf (rq, sizeof rq, "req-confirm-%s", s_str (migration, "uuid"));
                zv_info (ACTOR, rq, "migration %lld: confirmed after resize_confirm_window (%d s)",
                         (long long) s_int (migration, "id"), self->cfg.resize_confirm_window_s);
                json_t *updated = NULL;
                status = zv_store_instance_action (txn, s_str (migration, "instance_uuid"),
                                                   ZV_ACTION_CONFIRM_RESIZE, rq, &updated, errbuf, sizeof errbuf);
                json_decref (updated);
                if (status == ZV_OK)
                    status = zv_conductor_move_enter (self, txn, migration, "confirm", json_pack ("{s:s}", "request_id", rq),
                                      errbuf, sizeof errbuf);
            }
        }
        else
        if (at_start) {
            //  No host is connected yet: a phase that runs on one is cast
            //  again when that host syncs with this conductor (it does on
            //  seeing a new epoch), or by the phase timeout if it never does.
            if (!row->cast)
                s_redrive (self, txn, migration);
        }
        else
        if (now - (self->started_ms > s_int (migration, "updated_ms") ? self->started_ms
                                                                        : s_int (migration, "updated_ms"))
            >= (int64_t) self->cfg.move_phase_timeout_s * 1000) {
            //  (a phase cast before this conductor started is given its
            //  host a whole timeout to reconnect)
            if (s_int (migration, "attempts") < S_MAX_ATTEMPTS || row->waits)
                s_redrive (self, txn, migration);
            else {
                char reason [300], mig_uuid [ZV_UUID_LEN + 1], at [64];
                snprintf (reason, sizeof reason, "no report of phase %s within %d s, %d times", phase,
                          self->cfg.move_phase_timeout_s, S_MAX_ATTEMPTS);
                snprintf (mig_uuid, sizeof mig_uuid, "%s", s_str (migration, "uuid"));
                snprintf (at, sizeof at, "%s", phase);
                json_decref (migration);
                migration = NULL;
                zv_txn_abort (&txn);
                s_phase_failed (self, mig_uuid, s_str (entry, "instance_uuid"), at, reason);
                continue;
            }
        }
        if (status == ZV_OK)
            zv_txn_commit (&txn);
        else
            zv_txn_abort (&txn);
        json_decref (migration);
    }
    json_decref (open);
}
