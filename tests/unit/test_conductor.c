/*  test_conductor.c: the conductor's handlers, driven without processes.

    Each test opens a conductor on a fresh temporary state directory
    (zv_conductor_harness.h), plays the api, a scheduler and compute hosts
    by feeding it messages from their identities, and checks what it sent
    back (replies, casts, calls and where they went) and what later replies
    show.  Covered: a build from create to the cast on its host, the
    alternate host, no valid host, a host that is not connected; a user
    action admitted, refused, and reverted when its host is not connected;
    an instance update that loses its compare-and-swap; compute_sync's
    orphans and vanished domains; requests the conductor does not serve.   */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "zv_test.h"
#include "zv_conductor_harness.h"

#define NO_VALID_HOST "No valid host was found. There are not enough hosts available."
#define ORPHAN "5b0e5c1e-2f4a-4d6b-9c3e-7a1f0d2e4b6c"

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

//  MEMORY_MB used on a provider, as placement shows it.
static json_int_t
s_ram_used (zv_harness_t *self, const char *host)
{
    json_t *body = zv_harness_ok (self, "conductor.provider_show", "api.test", json_pack ("{s:s}", "ref", host));
    json_int_t used = json_integer_value (json_object_get (json_object_get (
        json_object_get (body, "resource_provider"), "usages"), "MEMORY_MB"));
    json_decref (body);
    return used;
}

//  ---------------------------------------------------------------------
//  Builds

static void
test_conductor_create_schedules_and_casts (void **state)
{
    zv_harness_t *self = *state;
    char image [ZV_UUID_LEN + 1], uuid [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);

    //  Recorded BUILD, and the registered scheduler is asked.
    json_t *created = zv_harness_create (self, "vm", "m1", image);
    zv_harness_created_uuid (created, uuid);
    json_t *server = json_array_get (json_object_get (created, "servers"), 0);
    assert_string_equal (zv_harness_get (server, "status"), "BUILD");
    assert_string_equal (zv_harness_get (server, "vm_state"), "building");
    assert_string_equal (zv_harness_get (server, "task_state"), "scheduling");
    assert_null (json_object_get (server, "request_spec"));         //  internal keys stay in
    json_decref (created);
    assert_int_equal (zv_harness_count (self, "scheduler.select_destinations", "scheduler.s1"), 1);
    zv_msg_t *call = zv_harness_take (self, "scheduler.select_destinations", "scheduler.s1");
    json_t *body = zv_msg_body (call);
    assert_int_equal (json_integer_value (json_object_get (body, "num_instances")), 1);
    assert_int_equal (json_array_size (json_object_get (body, "ignore_hosts")), 0);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (json_object_get (body, "spec"),
                                                                            "resources"), "MEMORY_MB")), 512);
    assert_int_equal (zv_harness_count (self, NULL, NULL), 0);     //  nothing else went out

    //  The answer is claimed and the build cast to "compute.<host>".
    zv_harness_answer (self, &call, ZV_OK, NULL, json_pack ("{s:[[s]]}", "destinations", "node1"));
    zv_msg_t *build = zv_harness_take (self, "compute.build_instance", "compute.node1");
    assert_non_null (build);
    json_t *instance = json_object_get (zv_msg_body (build), "instance");
    assert_string_equal (zv_harness_get (instance, "uuid"), uuid);
    assert_string_equal (zv_harness_get (instance, "host"), "node1");
    assert_int_equal (json_integer_value (json_object_get (zv_msg_body (build), "attempt")), 1);
    assert_non_null (json_object_get (json_object_get (zv_msg_body (build), "images"), image));
    zv_msg_destroy (&build);
    assert_int_equal (zv_harness_count (self, NULL, NULL), 0);

    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "host"), "node1");
    assert_string_equal (zv_harness_get (server, "task_state"), "scheduling");
    json_decref (server);
    assert_int_equal (s_ram_used (self, "node1"), 512);
}

//  A first choice that no longer fits falls to the alternate.
static void
test_conductor_create_falls_to_alternate (void **state)
{
    zv_harness_t *self = *state;
    char image [ZV_UUID_LEN + 1], uuid [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);
    zv_harness_compute_up (self, "small", 4, 256, 40);
    json_t *created = zv_harness_create (self, "vm", "m1", image);
    zv_harness_created_uuid (created, uuid);
    json_decref (created);

    zv_harness_select (self, json_pack ("[[s, s]]", "small", "node1"));
    assert_int_equal (zv_harness_count (self, "compute.build_instance", "compute.small"), 0);
    zv_msg_t *build = zv_harness_take (self, "compute.build_instance", "compute.node1");
    assert_non_null (build);
    zv_msg_destroy (&build);
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "host"), "node1");
    json_decref (server);
    assert_int_equal (s_ram_used (self, "small"), 0);
    assert_int_equal (s_ram_used (self, "node1"), 512);
}

//  No destination, or the scheduler's NoValidHost: ERROR with Nova's words.
static void
test_conductor_create_no_valid_host (void **state)
{
    zv_harness_t *self = *state;
    char image [ZV_UUID_LEN + 1], first [ZV_UUID_LEN + 1], second [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);

    json_t *created = zv_harness_create (self, "vm1", "m1", image);
    zv_harness_created_uuid (created, first);
    json_decref (created);
    zv_harness_select (self, json_pack ("[[]]"));
    assert_int_equal (zv_harness_count (self, "compute.build_instance", NULL), 0);
    json_t *server = zv_harness_show (self, first);
    assert_string_equal (zv_harness_get (server, "status"), "ERROR");
    assert_true (json_is_null (json_object_get (server, "task_state")));
    assert_string_equal (zv_harness_get (json_object_get (server, "fault"), "message"), NO_VALID_HOST);
    json_decref (server);

    created = zv_harness_create (self, "vm2", "m1", image);
    zv_harness_created_uuid (created, second);
    json_decref (created);
    zv_msg_t *call = zv_harness_take (self, "scheduler.select_destinations", "scheduler.s1");
    zv_harness_answer (self, &call, ZV_ENOVALIDHOST, "no host passed the filters", NULL);
    server = zv_harness_show (self, second);
    assert_string_equal (zv_harness_get (server, "status"), "ERROR");
    assert_true (zv_test_has (zv_harness_get (json_object_get (server, "fault"), "message"), NO_VALID_HOST));
    json_decref (server);

    //  The create's action record says so too.
    json_t *create = zv_harness_event (self, second, "create");
    assert_non_null (create);
    assert_string_equal (zv_harness_get (create, "result"), "Error");
    json_decref (create);
    assert_int_equal (s_ram_used (self, "node1"), 0);
}

//  The chosen host is not connected: its claim is given back and the build
//  is scheduled again without it.
static void
test_conductor_create_host_unreachable (void **state)
{
    zv_harness_t *self = *state;
    char image [ZV_UUID_LEN + 1], uuid [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);
    zv_harness_compute_up (self, "node2", 4, 4096, 40);
    zv_harness_unreachable (self, "compute.node1", true);
    json_t *created = zv_harness_create (self, "vm", "m1", image);
    zv_harness_created_uuid (created, uuid);
    json_decref (created);

    zv_harness_select (self, json_pack ("[[s]]", "node1"));
    //  The cast was tried, refused, and a new call asks without node1.
    assert_int_equal (zlistx_size (self->refused), 1);
    assert_string_equal (zv_msg_type ((zv_msg_t *) zlistx_first (self->refused)), "compute.build_instance");
    zv_msg_t *call = zv_harness_take (self, "scheduler.select_destinations", "scheduler.s1");
    assert_non_null (call);
    json_t *ignore = json_object_get (zv_msg_body (call), "ignore_hosts");
    assert_int_equal (json_array_size (ignore), 1);
    assert_string_equal (json_string_value (json_array_get (ignore, 0)), "node1");
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "task_state"), "scheduling");
    assert_true (json_is_null (json_object_get (server, "host")));
    json_decref (server);
    assert_int_equal (s_ram_used (self, "node1"), 0);

    zv_harness_answer (self, &call, ZV_OK, NULL, json_pack ("{s:[[s]]}", "destinations", "node2"));
    zv_msg_t *build = zv_harness_take (self, "compute.build_instance", "compute.node2");
    assert_non_null (build);
    assert_int_equal (json_integer_value (json_object_get (zv_msg_body (build), "attempt")), 2);
    zv_msg_destroy (&build);
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "host"), "node2");
    json_decref (server);
}

//  ---------------------------------------------------------------------
//  Server actions

static json_t *
s_action (zv_harness_t *self, const char *uuid, const char *action, zv_msg_t **reply_p)
{
    *reply_p = zv_harness_request (self, "conductor.server_action", "api.test",
                                   json_pack ("{s:s, s:s}", "ref", uuid, "action", action));
    return zv_msg_body (*reply_p);
}

static void
test_conductor_action_admitted (void **state)
{
    zv_harness_t *self = *state;
    char image [ZV_UUID_LEN + 1], uuid [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);
    zv_harness_boot (self, "vm", "m1", image, "node1", uuid);
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "ACTIVE");
    json_decref (server);
    zv_harness_clear (self);

    zv_msg_t *reply;
    json_t *body = s_action (self, uuid, "reboot", &reply);
    assert_int_equal (zv_msg_status (reply), ZV_OK);
    assert_string_equal (zv_harness_get (json_object_get (body, "server"), "task_state"), "rebooting");
    assert_string_equal (zv_harness_get (json_object_get (body, "server"), "status"), "REBOOT");
    assert_string_equal (zv_harness_get (body, "request_id"), zv_msg_rq (reply));
    zv_msg_t *cast = zv_harness_take (self, "compute.instance_action", "compute.node1");
    assert_non_null (cast);
    assert_string_equal (zv_harness_get (zv_msg_body (cast), "action"), "reboot");
    assert_string_equal (zv_harness_get (zv_msg_body (cast), "action_request_id"), zv_msg_rq (reply));
    assert_string_equal (zv_harness_get (json_object_get (zv_msg_body (cast), "instance"), "task_state"), "rebooting");
    assert_non_null (json_object_get (json_object_get (zv_msg_body (cast), "images"), image));
    zv_msg_destroy (&cast);
    zv_msg_destroy (&reply);
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "task_state"), "rebooting");
    json_decref (server);
    json_t *reboot = zv_harness_event (self, uuid, "reboot");
    assert_non_null (reboot);
    assert_true (json_is_null (json_object_get (reboot, "finish_time")));
    json_decref (reboot);
}

//  A state that forbids the action: Nova's 409 words, nothing changes.
static void
test_conductor_action_refused (void **state)
{
    zv_harness_t *self = *state;
    char image [ZV_UUID_LEN + 1], uuid [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);
    zv_harness_boot (self, "vm", "m1", image, "node1", uuid);
    json_t *before = zv_harness_show (self, uuid);
    zv_harness_clear (self);

    zv_msg_t *reply;
    s_action (self, uuid, "unpause", &reply);
    assert_int_equal (zv_msg_status (reply), ZV_ECONFLICT);
    char expected [200];
    snprintf (expected, sizeof expected, "Cannot 'unpause' instance %s while it is in vm_state active", uuid);
    assert_string_equal (zv_msg_error_text (reply), expected);
    zv_msg_destroy (&reply);
    assert_int_equal (zv_harness_count (self, NULL, NULL), 0);     //  no cast
    json_t *after = zv_harness_show (self, uuid);
    assert_true (json_equal (before, after));
    json_decref (before);
    json_decref (after);

    //  An action no host runs yet, and one that does not exist.
    s_action (self, uuid, "shelve", &reply);
    assert_int_equal (zv_msg_status (reply), ZV_EUNSUPPORTED);
    zv_msg_destroy (&reply);
    s_action (self, uuid, "explode", &reply);
    assert_int_equal (zv_msg_status (reply), ZV_EINVAL);
    assert_string_equal (zv_msg_error_text (reply), "Unknown server action 'explode'.");
    zv_msg_destroy (&reply);
}

//  The host is not connected when the action is cast: the task reverts.
static void
test_conductor_action_unreachable (void **state)
{
    zv_harness_t *self = *state;
    char image [ZV_UUID_LEN + 1], uuid [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);
    zv_harness_boot (self, "vm", "m1", image, "node1", uuid);
    zv_harness_clear (self);
    zv_harness_unreachable (self, "compute.node1", true);

    zv_msg_t *reply;
    json_t *body = s_action (self, uuid, "stop", &reply);
    assert_int_equal (zv_msg_status (reply), ZV_OK);                //  admitted, then reverted
    assert_string_equal (zv_harness_get (json_object_get (body, "server"), "task_state"), "powering-off");
    zv_msg_destroy (&reply);
    assert_int_equal (zlistx_size (self->refused), 1);
    json_t *server = zv_harness_show (self, uuid);
    assert_null (zv_harness_get (server, "task_state"));
    assert_string_equal (zv_harness_get (server, "vm_state"), "active");
    assert_string_equal (zv_harness_get (json_object_get (server, "fault"), "message"),
                         "compute host node1 is not connected");
    json_decref (server);
    json_t *stop = zv_harness_event (self, uuid, "stop");
    assert_non_null (stop);
    assert_string_equal (zv_harness_get (stop, "result"), "Error");
    assert_true (zv_test_has (zv_harness_get (stop, "message"), "not connected"));
    json_decref (stop);
}

//  ---------------------------------------------------------------------
//  From compute hosts

//  A compare-and-swap on the wrong task_state is refused; nothing changes.
static void
test_conductor_instance_update_conflict (void **state)
{
    zv_harness_t *self = *state;
    char image [ZV_UUID_LEN + 1], uuid [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);
    zv_harness_boot (self, "vm", "m1", image, "node1", uuid);
    json_t *before = zv_harness_show (self, uuid);

    zv_msg_t *reply = zv_harness_request (self, "conductor.instance_update", "compute.node1",
        json_pack ("{s:s, s:[s], s:s, s:s}", "uuid", uuid, "expected_task_state", "rebooting",
                   "outcome", "done", "power_state", "shutdown"));
    assert_int_equal (zv_msg_status (reply), ZV_ECONFLICT);
    assert_true (zv_test_has (zv_msg_error_text (reply), "Conflict updating instance"));
    assert_true (zv_test_has (zv_msg_error_text (reply), uuid));
    zv_msg_destroy (&reply);
    json_t *after = zv_harness_show (self, uuid);
    assert_true (json_equal (before, after));
    json_decref (before);
    json_decref (after);
}

//  A full sync: a domain the store does not know is an orphan to reap; an
//  active instance whose domain vanished is stopped.
static void
test_conductor_compute_sync (void **state)
{
    zv_harness_t *self = *state;
    char image [ZV_UUID_LEN + 1], uuid [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);
    zv_harness_boot (self, "vm", "m1", image, "node1", uuid);

    json_t *body = zv_harness_ok (self, "conductor.compute_sync", "compute.node1",
        json_pack ("{s:s, s:[{s:s, s:s}], s:I}", "host", "node1", "domains", "uuid", ORPHAN,
                   "power_state", "running", "started_ms", (json_int_t) 1));
    json_t *orphans = json_object_get (body, "orphans");
    assert_int_equal (json_array_size (orphans), 1);
    assert_string_equal (json_string_value (json_array_get (orphans, 0)), ORPHAN);
    assert_int_equal (json_array_size (json_object_get (body, "terminate")), 0);
    json_decref (body);

    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "vm_state"), "stopped");
    assert_string_equal (zv_harness_get (server, "power_state"), "nostate");
    assert_string_equal (zv_harness_get (server, "status"), "SHUTOFF");
    json_decref (server);

    //  An event's sync (partial) names no orphans and leaves the others.
    body = zv_harness_ok (self, "conductor.compute_sync", "compute.node1",
        json_pack ("{s:s, s:[{s:s, s:s}], s:b}", "host", "node1", "domains", "uuid", ORPHAN,
                   "power_state", "running", "partial", 1));
    assert_int_equal (json_array_size (json_object_get (body, "orphans")), 0);
    json_decref (body);
}

//  ---------------------------------------------------------------------
//  The dispatcher

static void
test_conductor_heartbeat_and_unknown_type (void **state)
{
    zv_harness_t *self = *state;
    json_t *body = zv_harness_ok (self, "conductor.service_heartbeat", "compute.node1",
                                  json_pack ("{s:s, s:s}", "binary", "compute", "host", "node1"));
    assert_string_equal (zv_harness_get (body, "epoch"), zv_conductor_epoch (self->conductor));
    json_decref (body);

    //  A type of the catalogue that the conductor does not serve.
    zv_msg_t *reply = zv_harness_request (self, "compute.sync_now", "api.test", NULL);
    assert_int_equal (zv_msg_status (reply), ZV_EINVAL);
    assert_true (zv_test_has (zv_msg_error_text (reply), "is not served by the conductor"));
    zv_msg_destroy (&reply);
    //  A body the catalogue refuses never reaches a handler.
    reply = zv_harness_request (self, "conductor.server_show", "api.test", NULL);
    assert_int_equal (zv_msg_status (reply), ZV_EINVAL);
    assert_true (zv_test_has (zv_msg_error_text (reply), "ref"));
    zv_msg_destroy (&reply);
}

int
main (void)
{
    zv_log_level = -1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_conductor_create_schedules_and_casts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_conductor_create_falls_to_alternate, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_conductor_create_no_valid_host, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_conductor_create_host_unreachable, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_conductor_action_admitted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_conductor_action_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_conductor_action_unreachable, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_conductor_instance_update_conflict, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_conductor_compute_sync, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_conductor_heartbeat_and_unknown_type, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
