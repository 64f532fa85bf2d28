/*  test_conductor_reports.c: what a compute host may report about its
    instances, driven through the conductor's handlers without processes.

    A host reports outcomes (a step, done, failed) and facts; the state
    table decides what they leave, and everything else is refused with a
    clear error and no change: a vm_state by name ('changes'), a fact no
    host knows, an outcome the task in flight cannot have, a report on an
    instance of another host, on one that does not exist.  And the seam for
    moves: while a server's move is open, the sync of either host never
    reaps the domain the move expects there, nor reads its absence as a
    guest that powered off.                                                */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "zv_test.h"
#include "zv_conductor_harness.h"
#include "store/zv_migration.h"

static int
s_setup (void **state)
{
    zv_harness_t *self = zv_harness_new ();
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    zv_harness_t *self = *state;
    zv_harness_destroy (&self);
    return 0;
}

//  A server booted to ACTIVE on node1; its uuid into uuid.
static void
s_active (zv_harness_t *self, char uuid [ZV_UUID_LEN + 1])
{
    char image [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);
    zv_harness_compute_up (self, "node2", 4, 4096, 40);
    zv_harness_boot (self, "vm", "m1", image, "node1", uuid);
    zv_harness_clear (self);
}

//  A report (body taken) from compute that must be refused with status and
//  reason, leaving the server exactly as it was.
static void
s_refused (zv_harness_t *self, const char *compute, const char *uuid, json_t *body, zv_status_t status,
           const char *reason)
{
    json_t *before = zv_harness_show (self, uuid);
    zv_msg_t *reply = zv_harness_request (self, "conductor.instance_update", compute, body);
    if (zv_msg_status (reply) != status)
        fail_msg ("expected %s, got %s: %s", zv_status_name (status), zv_status_name (zv_msg_status (reply)),
                  zv_msg_error_text (reply));
    assert_true (zv_test_has (zv_msg_error_text (reply), reason));
    zv_msg_destroy (&reply);
    json_t *after = zv_harness_show (self, uuid);
    assert_true (json_equal (before, after));
    json_decref (before);
    json_decref (after);
}

//  A user action, admitted and cast to node1; the request id the host
//  reports it under into rq.
static void
s_action (zv_harness_t *self, const char *uuid, const char *action, char rq [80])
{
    json_decref (zv_harness_ok (self, "conductor.server_action", "api.test",
                                json_pack ("{s:s, s:s}", "ref", uuid, "action", action)));
    zv_msg_t *cast = zv_harness_take (self, "compute.instance_action", "compute.node1");
    assert_non_null (cast);
    snprintf (rq, 80, "%s", zv_msg_get_str (cast, "action_request_id"));
    zv_msg_destroy (&cast);
}

//  The action record of request rq on a server (new), or NULL.
static json_t *
s_event_of (zv_harness_t *self, const char *uuid, const char *rq)
{
    json_t *body = zv_harness_ok (self, "conductor.server_events", "api.test", json_pack ("{s:s}", "ref", uuid));
    json_t *found = NULL;
    size_t index;
    json_t *event;
    json_array_foreach (json_object_get (body, "events"), index, event)
        if (streq (zv_harness_get (event, "request_id"), rq))
            found = json_incref (event);
    json_decref (body);
    return found;
}

//  The table decides: stop done leaves stopped with the power the host saw
//  and the action Success; a failed hard reboot leaves ERROR with the
//  host's reason; one the hypervisor does not support leaves the vm_state.
static void
test_reports_outcomes (void **state)
{
    zv_harness_t *self = *state;
    char uuid [ZV_UUID_LEN + 1];
    s_active (self, uuid);
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "ACTIVE");
    assert_non_null (zv_harness_get (server, "launched_at"));
    json_decref (server);

    char rq [80];
    s_action (self, uuid, "stop", rq);
    json_decref (zv_harness_ok (self, "conductor.instance_update", "compute.node1",
        json_pack ("{s:s, s:[s], s:s, s:s, s:s}", "uuid", uuid, "expected_task_state", "powering-off",
                   "outcome", "done", "power_state", "shutdown", "action_request_id", rq)));
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "vm_state"), "stopped");
    assert_string_equal (zv_harness_get (server, "power_state"), "shutdown");
    assert_null (zv_harness_get (server, "task_state"));
    json_decref (server);
    json_t *event = s_event_of (self, uuid, rq);
    assert_string_equal (zv_harness_get (event, "result"), "Success");
    json_decref (event);

    s_action (self, uuid, "reboot_hard", rq);
    json_decref (zv_harness_ok (self, "conductor.instance_update", "compute.node1",
        json_pack ("{s:s, s:[s], s:s, s:s, s:s, s:s}", "uuid", uuid, "expected_task_state", "rebooting_hard",
                   "outcome", "failed", "error", "unsupported", "reason", "reboot is unsupported by test:///default",
                   "power_state", "shutdown")));
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "vm_state"), "stopped");
    assert_string_equal (zv_harness_get (json_object_get (server, "fault"), "message"),
                         "reboot is unsupported by test:///default");
    json_decref (server);

    s_action (self, uuid, "reboot_hard", rq);
    json_decref (zv_harness_ok (self, "conductor.instance_update", "compute.node1",
        json_pack ("{s:s, s:[s], s:s, s:s, s:s, s:s}", "uuid", uuid, "expected_task_state", "rebooting_hard",
                   "outcome", "failed", "error", "io", "reason", "the disk is gone", "action_request_id", rq)));
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "vm_state"), "error");
    assert_string_equal (zv_harness_get (server, "status"), "ERROR");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (server, "fault"), "code")), 500);
    json_decref (server);
    event = s_event_of (self, uuid, rq);
    assert_string_equal (zv_harness_get (event, "result"), "Error");
    assert_string_equal (zv_harness_get (event, "message"), "the disk is gone");
    json_decref (event);
}

//  What a host may not report, each refused with its reason and no change.
static void
test_reports_refused (void **state)
{
    zv_harness_t *self = *state;
    char uuid [ZV_UUID_LEN + 1];
    s_active (self, uuid);
    //  A vm_state by name: the table decides, not the host.
    s_refused (self, "compute.node1", uuid, json_pack ("{s:s, s:[n], s:{s:s}}", "uuid", uuid,
               "expected_task_state", "changes", "vm_state", "rescued"), ZV_EINVAL, "'changes' are not accepted");
    //  A fact no host knows.
    s_refused (self, "compute.node1", uuid, json_pack ("{s:s, s:{s:s}}", "uuid", uuid, "facts", "host", "node9"),
               ZV_EINVAL, "'host' is not a fact a host reports");
    s_refused (self, "compute.node1", uuid, json_pack ("{s:s, s:s}", "uuid", uuid, "power_state", "dancing"),
               ZV_EINVAL, "'dancing' is not a power state");
    s_refused (self, "compute.node1", uuid, json_pack ("{s:s, s:[n], s:s}", "uuid", uuid, "expected_task_state",
               "outcome", "finished"), ZV_EINVAL, "is not an outcome");
    //  Nothing is in flight: no outcome to report.
    s_refused (self, "compute.node1", uuid, json_pack ("{s:s, s:[n], s:s}", "uuid", uuid, "expected_task_state",
               "outcome", "done"), ZV_ECONFLICT, "no operation is in flight");
    //  An outcome the task cannot have: done in the middle of a chain, a
    //  step of a task that is no chain.
    s_refused (self, "compute.node1", uuid, json_pack ("{s:s, s:[s], s:s}", "uuid", uuid, "expected_task_state",
               "networking", "outcome", "done"), ZV_ECONFLICT, "steps remain");
    s_refused (self, "compute.node1", uuid, json_pack ("{s:s, s:[s], s:s}", "uuid", uuid, "expected_task_state",
               "rebooting", "outcome", "step"), ZV_ECONFLICT, "has no next step");
    //  An outcome on two task_states at once.
    s_refused (self, "compute.node1", uuid, json_pack ("{s:s, s:[s,s], s:s}", "uuid", uuid, "expected_task_state",
               "rebooting", "pausing", "outcome", "done"), ZV_EINVAL, "one task_state in flight");
    //  Another host's instance: refused for that host, whatever it says.
    s_refused (self, "compute.node2", uuid, json_pack ("{s:s, s:{s:n}}", "uuid", uuid, "facts", "guest"),
               ZV_EFORBIDDEN, "compute.node2 may not report on instance");
    zv_msg_t *reply = zv_harness_request (self, "conductor.instance_destroyed", "compute.node2",
                                          json_pack ("{s:s, s:s}", "uuid", uuid, "host", "node2"));
    assert_int_equal (zv_msg_status (reply), ZV_EFORBIDDEN);
    zv_msg_destroy (&reply);
    //  Not a compute at all, and an instance that does not exist.
    s_refused (self, "scheduler.s1", uuid, json_pack ("{s:s, s:{s:n}}", "uuid", uuid, "facts", "guest"),
               ZV_EFORBIDDEN, "Policy doesn't allow conductor.instance_update");
    reply = zv_harness_request (self, "conductor.instance_update", "compute.node1",
                                json_pack ("{s:s, s:{s:n}}", "uuid", "3c1d6f0a-9b7e-4d2c-8a5f-1e0b9c8d7a6f",
                                           "facts", "guest"));
    assert_int_equal (zv_msg_status (reply), ZV_ENOTFOUND);
    zv_msg_destroy (&reply);
    //  The instance's own host may report facts.
    json_decref (zv_harness_ok (self, "conductor.instance_update", "compute.node1",
                                json_pack ("{s:s, s:{s:{s:s}}}", "uuid", uuid, "facts", "guest", "hostname", "vm")));
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (json_object_get (server, "guest"), "hostname"), "vm");
    json_decref (server);
}

//  Open a move of uuid from source to dest, as the move engine does.
static void
s_open_move (zv_harness_t *self, const char *uuid, const char *source, const char *dest)
{
    zv_txn_t *txn = zv_txn_begin (zv_conductor_store (self->conductor), NULL, true);
    assert_non_null (txn);
    zv_migration_init_t init = { .instance_uuid = uuid, .kind = ZV_MIGRATION_COLD, .source_host = source,
                                 .dest_host = dest, .status = "migrating", .phase = "transfer" };
    char errbuf [256];
    if (zv_migration_create (txn, &init, NULL, errbuf, sizeof errbuf) != ZV_OK)
        fail_msg ("migration: %s", errbuf);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);
}

//  While a move is open: the destination's domain is no orphan, the
//  source's domain gone is no guest that powered off, and the destination
//  may report on the instance.  Once it closes, the usual rules are back.
static void
test_reports_sync_with_open_move (void **state)
{
    zv_harness_t *self = *state;
    char uuid [ZV_UUID_LEN + 1];
    s_active (self, uuid);
    s_open_move (self, uuid, "node1", "node2");

    //  The destination holds the domain: not an orphan.
    json_t *body = zv_harness_ok (self, "conductor.compute_sync", "compute.node2",
        json_pack ("{s:s, s:[{s:s, s:s}], s:I}", "host", "node2", "domains", "uuid", uuid,
                   "power_state", "shutdown", "started_ms", (json_int_t) 1));
    assert_int_equal (json_array_size (json_object_get (body, "orphans")), 0);
    json_decref (body);
    //  The source has none any more: still active, not stopped.
    body = zv_harness_ok (self, "conductor.compute_sync", "compute.node1",
        json_pack ("{s:s, s:[], s:I}", "host", "node1", "domains", "started_ms", (json_int_t) 1));
    json_decref (body);
    //  An event on the source saying the domain stopped: nothing either.
    json_decref (zv_harness_ok (self, "conductor.compute_sync", "compute.node1",
        json_pack ("{s:s, s:[{s:s, s:s}], s:b}", "host", "node1", "domains", "uuid", uuid,
                   "power_state", "nostate", "partial", 1)));
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "vm_state"), "active");
    assert_string_equal (zv_harness_get (server, "power_state"), "running");
    json_decref (server);
    //  The destination, named by the open move, may report facts.
    json_decref (zv_harness_ok (self, "conductor.instance_update", "compute.node2",
                                json_pack ("{s:s, s:{s:n}}", "uuid", uuid, "facts", "guest")));

    //  The move closes (back on the source): node2's domain is an orphan
    //  again, node2 may no longer report.
    zv_txn_t *txn = zv_txn_begin (zv_conductor_store (self->conductor), NULL, true);
    json_t *close = json_pack ("{s:s}", "status", "reverted");
    char errbuf [256];
    assert_int_equal (zv_migration_cas (txn, "1", NULL, close, NULL, errbuf, sizeof errbuf), ZV_OK);
    json_decref (close);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);
    body = zv_harness_ok (self, "conductor.compute_sync", "compute.node2",
        json_pack ("{s:s, s:[{s:s, s:s}], s:I}", "host", "node2", "domains", "uuid", uuid,
                   "power_state", "shutdown", "started_ms", (json_int_t) 1));
    assert_int_equal (json_array_size (json_object_get (body, "orphans")), 1);
    json_decref (body);
    zv_msg_t *reply = zv_harness_request (self, "conductor.instance_update", "compute.node2",
                                          json_pack ("{s:s, s:{s:n}}", "uuid", uuid, "facts", "guest"));
    assert_int_equal (zv_msg_status (reply), ZV_EFORBIDDEN);
    zv_msg_destroy (&reply);
    //  And the source's missing domain is a guest that is gone again.
    json_decref (zv_harness_ok (self, "conductor.compute_sync", "compute.node1",
        json_pack ("{s:s, s:[], s:I}", "host", "node1", "domains", "started_ms", (json_int_t) 1)));
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "vm_state"), "stopped");
    json_decref (server);
}

int
main (void)
{
    zv_log_level = -1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_reports_outcomes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reports_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reports_sync_with_open_move, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
