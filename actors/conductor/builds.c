/*  builds.c: getting instances onto hosts: claims, scheduling jobs, the
    scheduler's answer, hosts that cannot be reached, builds that failed on
    their host, and the two ends of an instance's life that several
    handlers share (fail_build, finish_delete).

    A job (zv_conductor_job_t) is a set of instances waiting for one
    scheduler decision: server_create makes one, and so does every
    reschedule.  It asks a live scheduler ("scheduler.*" peer, round robin)
    select_destinations, or waits in self->waiting until one is up.  The
    reply's hosts are claimed in the store (instance CAS + allocation +
    node usage, one transaction), which is the judge: a choice that no
    longer fits falls to its alternates, and multi-create is all or nothing
    up to min_count.  compute.build_instance is then cast to
    "compute.<host>"; a host that is not connected, or that reports
    build_failed, is excluded and the build rescheduled up to max_attempts,
    as Nova's conductor does.                                                */

#include "actors/conductor/conductor.h"
#include "store/zv_instance.h"
#include "store/zv_placement.h"
#include "store/zv_group.h"

#define NO_VALID_HOST "No valid host was found. There are not enough hosts available."

//  ---------------------------------------------------------------------
//  Claims: placement (store/zv_placement.c) plus the instance's CAS and the
//  server group's late check, in one transaction.

zv_status_t
zv_conductor_release (zv_conductor_t *self, zv_txn_t *txn, const char *uuid)
{
    self->generation++;
    return zv_placement_release (txn, uuid);
}

//  Claim resources on host for instance uuid (still in scheduling): its
//  allocation, the provider's usage and the instance's host, all or
//  nothing in txn.  A hard server-group policy is checked here too, where
//  every member's committed host is visible (Nova's late check).
static zv_status_t
s_claim (zv_conductor_t *self, zv_txn_t *txn, const char *uuid, const char *host, const json_t *spec,
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
zv_status_t
zv_conductor_fail_build (zv_conductor_t *self, zv_txn_t *txn, const char *uuid, const json_t *expected,
                         zv_status_t why, const char *message)
{
    char errbuf [512];
    json_t *changes = json_pack ("{s:s, s:n, s:o}", "vm_state", "error", "task_state",
                                 "fault", zv_conductor_fault (why, message));
    json_t *rec = NULL;
    zv_status_t status = zv_store_instance_cas (txn, uuid, expected, changes, &rec, errbuf, sizeof errbuf);
    json_decref (changes);
    if (status == ZV_OK) {
        status = zv_conductor_release (self, txn, uuid);
        const char *rq = s_str (rec, "request_id");
        if (status == ZV_OK && rq)
            zv_store_action_finish (txn, uuid, rq, "Error", message);
        zv_warning (ACTOR, rq, "instance %s: ERROR: %s", uuid, message);
    }
    json_decref (rec);
    return status;
}

//  Mark an instance deleted, release its claim, finish its delete action.
zv_status_t
zv_conductor_finish_delete (zv_conductor_t *self, zv_txn_t *txn, const char *uuid, const char *action_rq,
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
        status = zv_conductor_release (self, txn, uuid);
    if (status == ZV_OK && action_rq && *action_rq)
        zv_store_action_finish (txn, uuid, action_rq, "Success", NULL);
    //  Its console tokens die with it.
    if (status == ZV_OK)
        zv_conductor_tokens_revoke (txn, uuid);
    //  A deleted server leaves its group.
    json_t *rec = NULL;
    if (status == ZV_OK && zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) == ZV_OK && s_str (rec, "group_id"))
        status = zv_group_remove_member (txn, s_str (rec, "group_id"), uuid);
    json_decref (rec);
    return status;
}

//  ---------------------------------------------------------------------
//  Scheduling

void
zv_conductor_job_destroy (zv_conductor_job_t **job_p)
{
    if (!job_p || !*job_p)
        return;
    zv_conductor_job_t *job = *job_p;
    json_decref (job->uuids);
    json_decref (job->spec);
    json_decref (job->ignore_hosts);
    free (job);
    *job_p = NULL;
}

static void
s_job_free (void *ctx)
{
    zv_conductor_job_t *job = (zv_conductor_job_t *) ctx;
    zv_conductor_job_destroy (&job);
}

//  A live scheduler's identity (round robin), or NULL when none is up.
//  The string belongs to the schedulers hash: copy it before changing it.
static const char *
s_pick_scheduler (zv_conductor_t *self)
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

//  Fail every instance of a job that is still scheduling (a move's job:
//  its move, which rolls back).
static void
s_job_fail (zv_conductor_t *self, zv_conductor_job_t *job, zv_status_t why, const char *message)
{
    if (*job->migration) {
        zv_conductor_move_unscheduled (self, job, why, message);
        return;
    }
    json_t *expected = json_pack ("[s]", "scheduling");
    size_t index;
    json_t *uuid;
    json_array_foreach (job->uuids, index, uuid) {
        zv_txn_t *txn = zv_txn_begin (self->store, zv_conductor_batch_txn (self), true);
        if (!txn)
            continue;
        if (zv_conductor_fail_build (self, txn, json_string_value (uuid), expected, why, message) == ZV_OK)
            zv_txn_commit (&txn);
        else
            zv_txn_abort (&txn);
    }
    json_decref (expected);
}

//  Send the job to a scheduler (after the batch commits), or park it until
//  one is up.  Takes the job.
void
zv_conductor_schedule (zv_conductor_t *self, zv_conductor_job_t **job_p)
{
    zv_conductor_job_t *job = *job_p;
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
    zv_conductor_out_call (self, &msg, self->cfg.rpc_timeout_s * 1000, s_select_done, job, s_job_free);
}

//  Parked jobs go out when a scheduler is up; they fail after rpc_timeout.
void
zv_conductor_flush_waiting (zv_conductor_t *self)
{
    size_t count = zlistx_size (self->waiting);
    for (size_t index = 0; index < count; index++) {
        zv_conductor_job_t *job = (zv_conductor_job_t *) zlistx_detach (self->waiting, NULL);
        if (zv_mono_ms () - job->queued_ms > (int64_t) self->cfg.rpc_timeout_s * 1000) {
            s_job_fail (self, job, ZV_ENOVALIDHOST, NO_VALID_HOST " (no scheduler is up)");
            zv_conductor_job_destroy (&job);
        }
        else
            zv_conductor_schedule (self, &job);    //  parks it again if still none
    }
}

static void s_build_unreachable (zv_conductor_t *self, json_t *arg);

//  Cast the build of a claimed instance to its host, with the image records
//  its domain needs (one lookup per job: a job's instances share them).
static void
s_cast_build (zv_conductor_t *self, json_t *rec, zv_conductor_job_t *job, json_t *images)
{
    const char *host = s_str (rec, "host");
    zv_msg_t *msg = zv_msg_new ("compute.build_instance");
    zv_msg_set_rq (msg, job->rq);
    zv_msg_set_src (msg, ACTOR);
    char identity [320];
    snprintf (identity, sizeof identity, "compute.%s", host);
    zv_msg_set_routing_str (msg, identity);
    json_t *view = zv_instance_view (json_deep_copy (rec));
    json_t *body = json_pack ("{s:o, s:i, s:O}", "instance", view, "attempt", job->attempt,
                              "images", images);
    zv_msg_set_body (msg, &body);
    json_t *arg = json_pack ("{s:s, s:s, s:O, s:O, s:i}", "uuid", s_str (rec, "uuid"), "host", host,
                             "spec", job->spec, "ignore_hosts", job->ignore_hosts,
                             "attempt", job->attempt);
    json_object_set_new (arg, "rq", json_string (job->rq));
    zv_conductor_out_cast (self, &msg, s_build_unreachable, arg);
}

//  The scheduler answered: claim each instance on the first host that
//  still has room (the store decides, so racing requests never
//  over-commit), then cast the builds.
static void
s_select_done (void *actor, void *ctx, zv_msg_t *reply)
{
    zv_conductor_t *self = (zv_conductor_t *) actor;
    zv_conductor_job_t *job = (zv_conductor_job_t *) ctx;
    if (zv_msg_status (reply) == ZV_EUNAVAILABLE) {
        //  That scheduler is gone (not connected): forget it, ask another
        //  or wait for one.
        zv_warning (ACTOR, job->rq, "scheduler %s is gone", job->scheduler);
        zhashx_delete (self->schedulers, job->scheduler);
        zv_conductor_schedule (self, &job);
        return;
    }
    if (*job->migration) {
        zv_conductor_move_scheduled (self, job, reply);
        zv_conductor_job_destroy (&job);
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
        zv_conductor_job_destroy (&job);
        return;
    }
    //  Every claim of the job in one nested transaction: multi-create is
    //  all or nothing up to min_count, so the claims commit only when at
    //  least that many instances got a host.
    json_t *destinations = json_object_get (zv_msg_body (reply), "destinations");
    zv_txn_t *job_txn = zv_txn_begin (self->store, zv_conductor_batch_txn (self), true);
    if (!job_txn) {
        s_job_fail (self, job, ZV_EIO, "cannot open a store transaction for the claims");
        zv_conductor_job_destroy (&job);
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
        json_t *images = zv_conductor_action_images (zv_conductor_batch_txn (self), json_array_get (placed, 0), NULL);
        json_array_foreach (placed, index, rec)
            s_cast_build (self, rec, job, images);
        json_decref (images);
        //  Beyond the minimum, what found no host is in ERROR, as a
        //  build with no valid host is.
        json_t *expected = json_pack ("[s]", "scheduling");
        json_array_foreach (unplaced, index, uuid_value) {
            zv_txn_t *txn = zv_txn_begin (self->store, zv_conductor_batch_txn (self), true);
            if (txn && zv_conductor_fail_build (self, txn, json_string_value (uuid_value), expected,
                                                ZV_ENOVALIDHOST, message) == ZV_OK)
                zv_txn_commit (&txn);
            else
                zv_txn_abort (&txn);
        }
        json_decref (expected);
    }
    json_decref (placed);
    json_decref (unplaced);
    zv_conductor_job_destroy (&job);
}

//  The chosen host is not connected: give back its claim and reschedule
//  without it, up to max_attempts, as Nova reschedules a failed build.
static void
s_build_unreachable (zv_conductor_t *self, json_t *arg)
{
    const char *uuid = s_str (arg, "uuid");
    const char *host = s_str (arg, "host");
    const char *rq = s_str (arg, "rq");
    int attempt = (int) s_int (arg, "attempt");
    zv_txn_t *txn = zv_txn_begin (self->store, zv_conductor_batch_txn (self), true);
    if (!txn)
        return;
    char errbuf [512];
    json_t *expected = json_pack ("[s]", "scheduling");
    json_t *changes = json_pack ("{s:n, s:n}", "host", "node");
    zv_status_t status = zv_store_instance_cas (txn, uuid, expected, changes, NULL, errbuf, sizeof errbuf);
    json_decref (changes);
    if (status == ZV_OK)
        status = zv_conductor_release (self, txn, uuid);
    if (status == ZV_OK && attempt >= self->cfg.max_attempts) {
        char message [600];
        snprintf (message, sizeof message, "Exceeded maximum number of retries. Exhausted all hosts "
                  "available for retrying build failures for instance %s (last: %s unreachable).", uuid, host);
        status = zv_conductor_fail_build (self, txn, uuid, expected, ZV_ENOVALIDHOST, message);
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
    zv_conductor_job_t *job = (zv_conductor_job_t *) zmalloc (sizeof (zv_conductor_job_t));
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
    zv_conductor_schedule (self, &job);
}

//  ---------------------------------------------------------------------
//  Builds that failed on their host

void
zv_conductor_count_failure (zv_conductor_t *self, const char *host, bool failed)
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
zv_status_t
zv_conductor_build_failed (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                           const json_t *error_changes, char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *uuid = zv_msg_get_str (msg, "uuid");
    json_t *rec = NULL;
    if (zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) != ZV_OK) {
        snprintf (errbuf, errlen, "Instance %s could not be found.", uuid);
        return ZV_ENOTFOUND;
    }
    const char *host = s_str (rec, "host") ? s_str (rec, "host") : "?";
    const char *why = zv_msg_get_str (msg, "reason") ? zv_msg_get_str (msg, "reason") : "build failed";
    zv_conductor_count_failure (self, host, true);
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
        //  Out of attempts: ERROR as the state table says, with a fault that
        //  says so when there was more than one attempt.
        json_t *changes = json_deep_copy (error_changes);
        if (json_array_size (tried) > 1) {
            char message [900];
            snprintf (message, sizeof message, "Exceeded maximum number of retries. Exhausted all hosts "
                      "available for retrying build failures for instance %s. %s", uuid, failure);
            json_object_set_new (changes, "fault", zv_conductor_fault (ZV_EIO, message));
        }
        json_object_set (changes, "build_hosts", tried);
        status = zv_store_instance_cas (txn, uuid, json_object_get (zv_msg_body (msg), "expected_task_state"),
                                        changes, NULL, errbuf, errlen);
        json_decref (changes);
        if (status == ZV_OK)
            status = zv_conductor_release (self, txn, uuid);
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
            status = zv_conductor_release (self, txn, uuid);
        if (status == ZV_OK) {
            zv_conductor_job_t *job = (zv_conductor_job_t *) zmalloc (sizeof (zv_conductor_job_t));
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
            zv_conductor_schedule (self, &job);
        }
    }
    if (status == ZV_OK)
        call->reply = json_pack ("{s:b}", "rescheduled", (int) json_array_size (tried) < self->cfg.max_attempts);
    json_decref (spec);
    json_decref (tried);
    json_decref (rec);
    return status;
}
