/*  reports.c: what a compute host reports about its instances, judged by
    the state table.

    A host says what happened, never what the instance becomes: an outcome
    (a step of a build's chain, done, failed with a status and a reason),
    the power state it saw, and facts only it knows (where the consoles
    listen, what the guest agent says).  zv_state_outcome turns an outcome
    on the task in flight into the next task_state, vm_state and power
    state; anything else a host might send (a vm_state by name, a key it
    has no business setting, an outcome the task cannot have) is refused
    with a clear error and changes nothing.  Every report is a
    compare-and-swap on the task_state the host expected, and the route
    (policy.c) already made sure the sender is the instance's host, or one
    end of its open move.                                                   */

#include "actors/conductor/conductor.h"
#include "store/zv_instance.h"

//  The facts a host may report, and nothing else.
static const char *const s_facts [] = { "console", "guest" };
#define S_FACTS (sizeof (s_facts) / sizeof (s_facts [0]))

static zv_status_t
s_check_report (const json_t *body, json_t **facts_p, char *errbuf, size_t errlen)
{
    if (json_object_get (body, "changes")) {
        snprintf (errbuf, errlen, "conductor.instance_update takes an outcome and facts from a host; "
                  "'changes' are not accepted (the state table decides what an outcome changes).");
        return ZV_EINVAL;
    }
    const json_t *facts = json_object_get (body, "facts");
    const char *key;
    const json_t *value;
    json_object_foreach ((json_t *) facts, key, value) {
        bool known = false;
        for (size_t index = 0; index < S_FACTS; index++)
            known |= streq (key, s_facts [index]);
        if (!known) {
            snprintf (errbuf, errlen, "'%s' is not a fact a host reports (console, guest).", key);
            return ZV_EINVAL;
        }
    }
    const char *power = s_str (body, "power_state");
    if (power && zv_power_state_from_name (power) < 0) {
        snprintf (errbuf, errlen, "'%s' is not a power state.", power);
        return ZV_EINVAL;
    }
    const char *outcome = s_str (body, "outcome");
    if (outcome && zv_outcome_from_name (outcome) < 0) {
        snprintf (errbuf, errlen, "'%s' is not an outcome (step, done, failed).", outcome);
        return ZV_EINVAL;
    }
    const json_t *expected = json_object_get (body, "expected_task_state");
    if (outcome && (json_array_size (expected) != 1
                ||  (!json_is_null (json_array_get (expected, 0)) && !json_is_string (json_array_get (expected, 0))))) {
        snprintf (errbuf, errlen, "an outcome is reported on one task_state in flight (expected_task_state)");
        return ZV_EINVAL;
    }
    *facts_p = facts? json_deep_copy (facts): json_object ();
    return ZV_OK;
}

//  What an outcome makes of rec: the state table's result as changes.
static json_t *
s_outcome_changes (const json_t *rec, const zv_state_result_t *result, const char *power, json_t *facts)
{
    json_t *changes = facts;
    const char *task = zv_task_state_name (result->task);
    json_object_set_new (changes, "task_state", task? json_string (task): json_null ());
    if (result->vm == ZV_VM_PRIOR) {
        const char *before = s_str (rec, "old_vm_state");
        json_object_set_new (changes, "vm_state", json_string (before && streq (before, "stopped")
                                                               ? "stopped": "active"));
        json_object_set_new (changes, "old_vm_state", json_null ());
    }
    else
    if (result->vm != ZV_VM_SAME)
        json_object_set_new (changes, "vm_state", json_string (zv_vm_state_name ((zv_vm_state_t) result->vm)));
    if (result->power != ZV_POWER_REPORTED)
        json_object_set_new (changes, "power_state",
                             json_string (zv_power_state_name ((zv_power_state_t) result->power)));
    else
    if (power)
        json_object_set_new (changes, "power_state", json_string (power));
    return changes;
}

zv_status_t
zv_conductor_instance_update (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                              char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *uuid = zv_msg_get_str (msg, "uuid");
    json_t *body = zv_msg_body (msg);
    json_t *changes = NULL;
    zv_status_t status = s_check_report (body, &changes, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const json_t *expected = json_object_get (body, "expected_task_state");
    const char *power = s_str (body, "power_state");
    const char *outcome_name = s_str (body, "outcome");
    const char *action_rq = zv_msg_get_str (msg, "action_request_id");
    bool finished = false, failed = false;
    if (!outcome_name) {
        //  Facts and the power state only: no task moves.
        if (power)
            json_object_set_new (changes, "power_state", json_string (power));
    }
    else {
        const char *task_name = json_string_value (json_array_get (expected, 0));
        int task = zv_task_state_from_name (task_name);
        zv_outcome_t outcome = (zv_outcome_t) zv_outcome_from_name (outcome_name);
        failed = outcome == ZV_OUTCOME_FAILED;
        zv_status_t why = failed? zv_status_from_name (zv_msg_get_str (msg, "error")): ZV_OK;
        if (failed && why == ZV_OK)
            why = ZV_EIO;
        const char *reason = zv_msg_get_str (msg, "reason");
        zv_state_result_t result;
        char judged [400] = "";
        if (task < 0)
            snprintf (judged, sizeof judged, "'%s' is not a task_state", task_name);
        else
        if (zv_state_outcome ((zv_task_state_t) task, outcome, why, &result, judged, sizeof judged) == ZV_OK) {
            json_t *rec = call->instance;
            s_outcome_changes (rec, &result, power, changes);
            if (failed) {
                char message [4200];
                snprintf (message, sizeof message, "%s", reason? reason: "the host reported a failure");
                json_object_set_new (changes, "fault", zv_conductor_fault (why, message));
            }
            if (result.build && failed) {
                //  A failed build is the conductor's to reschedule.
                status = zv_conductor_build_failed (self, txn, call, changes, errbuf, errlen);
                json_decref (changes);
                return status;
            }
            if (result.build && outcome == ZV_OUTCOME_DONE) {
                char now [32];
                json_object_set_new (changes, "launched_at", json_string (s_iso_now (now)));
                if (s_str (rec, "host"))
                    zv_conductor_count_failure (self, s_str (rec, "host"), false);
            }
            finished = result.finished;
        }
        if (*judged) {
            snprintf (errbuf, errlen, "Instance %s: %s.", uuid, judged);
            json_decref (changes);
            return ZV_ECONFLICT;
        }
    }
    json_t *rec = NULL;
    status = zv_store_instance_cas (txn, uuid, expected, changes, &rec, errbuf, errlen);
    json_decref (changes);
    if (status == ZV_OK && finished && action_rq && *action_rq) {
        const char *message = failed? zv_msg_get_str (msg, "reason"): zv_msg_get_str (msg, "note");
        zv_store_action_finish (txn, uuid, action_rq, failed? "Error": "Success", message);
    }
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "instance", zv_instance_view (rec));
    else
        json_decref (rec);
    return status;
}

zv_status_t
zv_conductor_instance_destroyed (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                 char *errbuf, size_t errlen)
{
    const char *uuid = zv_msg_get_str (call->msg, "uuid");
    zv_status_t status = zv_conductor_finish_delete (self, txn, uuid, zv_msg_get_str (call->msg, "action_request_id"),
                                                     errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_object ();
    return status;
}
