/*  test_conductor_policy.c: who may call what, driven through the
    conductor's dispatcher without processes.

    Every route's rule, checked once before its handler: a user context
    only from an api; admin-only routes refused to a member with Nova's
    403 words; a server of another project not there for a member (404) but
    there for an admin; all_projects, forced hosts and zone details for
    admins; a compute that speaks for another host, a scheduler that asks
    what only the console proxy may, an api that tries a service's route.
    Each refusal changes nothing.                                          */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "zv_test.h"
#include "zv_conductor_harness.h"

#define MEMBER (ZV_ROLE_MEMBER | ZV_ROLE_READER)
#define ADMIN  (ZV_ROLE_ADMIN | ZV_ROLE_MEMBER | ZV_ROLE_READER)

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

//  A request from identity (body taken) that must be refused with status
//  and a reason that says so.
static void
s_refused (zv_harness_t *self, const char *type, const char *from, json_t *body, zv_status_t status,
           const char *reason)
{
    zv_msg_t *reply = zv_harness_request (self, type, from, body);
    if (zv_msg_status (reply) != status)
        fail_msg ("%s from %s: expected %s, got %s: %s", type, from, zv_status_name (status),
                  zv_status_name (zv_msg_status (reply)), zv_msg_error_text (reply));
    assert_true (zv_test_has (zv_msg_error_text (reply), reason));
    zv_msg_destroy (&reply);
}

//  A member is refused the admin-only routes with Nova's 403; an admin is not.
static void
test_policy_admin_routes (void **state)
{
    zv_harness_t *self = *state;
    zv_harness_compute_up (self, "node1", 4, 4096, 40);
    zv_harness_as ("p1", "bob", MEMBER);
    s_refused (self, "conductor.aggregate_create", "api.test", json_pack ("{s:s}", "name", "fast"),
               ZV_EFORBIDDEN, "Policy doesn't allow os_compute_api:os-aggregates:create to be performed.");
    s_refused (self, "conductor.flavor_create", "api.test",
               json_pack ("{s:s, s:i, s:i, s:i}", "name", "big", "vcpus", 8, "ram_mb", 8192, "disk_gb", 80),
               ZV_EFORBIDDEN, "os_compute_api:os-flavor-manage:create");
    s_refused (self, "conductor.service_list", "api.test", NULL, ZV_EFORBIDDEN, "os_compute_api:os-services:list");
    s_refused (self, "conductor.service_set", "api.test", json_pack ("{s:s, s:b}", "host", "node1", "disabled", 1),
               ZV_EFORBIDDEN, "os_compute_api:os-services:update");
    s_refused (self, "conductor.hypervisor_list", "api.test", NULL, ZV_EFORBIDDEN, "os-hypervisors:list");
    s_refused (self, "conductor.provider_set", "api.test",
               json_pack ("{s:s, s:s, s:f}", "ref", "node1", "resource_class", "VCPU", "allocation_ratio", 99.0),
               ZV_EFORBIDDEN, "placement:resource_providers:inventories:update");
    s_refused (self, "conductor.zone_list", "api.test", json_pack ("{s:b}", "long", 1),
               ZV_EFORBIDDEN, "os_compute_api:os-availability-zone:detail");
    s_refused (self, "conductor.server_list", "api.test", json_pack ("{s:b}", "all_projects", 1),
               ZV_EFORBIDDEN, "os_compute_api:servers:index:get_all_tenants");
    //  What a member may do: list flavors, zones (short), its servers.
    json_decref (zv_harness_ok (self, "conductor.flavor_list", "api.test", NULL));
    json_decref (zv_harness_ok (self, "conductor.zone_list", "api.test", NULL));
    json_decref (zv_harness_ok (self, "conductor.server_list", "api.test", NULL));
    //  Nothing was made by the refused requests; an admin may.
    zv_harness_as ("p1", "alice", ADMIN);
    json_t *aggregates = zv_harness_ok (self, "conductor.aggregate_list", "api.test", NULL);
    assert_int_equal (json_array_size (json_object_get (aggregates, "aggregates")), 0);
    json_decref (aggregates);
    json_t *flavors = zv_harness_ok (self, "conductor.flavor_list", "api.test", NULL);
    assert_int_equal (json_array_size (json_object_get (flavors, "flavors")), 0);
    json_decref (flavors);
    json_decref (zv_harness_ok (self, "conductor.aggregate_create", "api.test", json_pack ("{s:s}", "name", "fast")));
    json_t *services = zv_harness_ok (self, "conductor.service_list", "api.test", NULL);
    assert_true (json_array_size (json_object_get (services, "services")) >= 1);
    json_decref (services);
}

//  A server belongs to its project: another project's member does not see
//  it (404, Nova's words) and cannot act on it; an admin can.
static void
test_policy_owner (void **state)
{
    zv_harness_t *self = *state;
    char image [ZV_UUID_LEN + 1], uuid [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);
    zv_harness_as ("p1", "bob", MEMBER);
    zv_harness_boot (self, "web", "m1", image, "node1", uuid);
    json_t *mine = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (mine, "project_id"), "p1");
    assert_string_equal (zv_harness_get (mine, "user_id"), "bob");

    zv_harness_as ("p2", "eve", MEMBER);
    char reason [200];
    snprintf (reason, sizeof reason, "No server with a name or ID of '%s' exists.", uuid);
    s_refused (self, "conductor.server_show", "api.test", json_pack ("{s:s}", "ref", uuid), ZV_ENOTFOUND, reason);
    s_refused (self, "conductor.server_show", "api.test", json_pack ("{s:s}", "ref", "web"), ZV_ENOTFOUND,
               "No server with a name or ID of 'web' exists.");
    s_refused (self, "conductor.server_delete", "api.test", json_pack ("{s:s}", "ref", uuid), ZV_ENOTFOUND, reason);
    s_refused (self, "conductor.server_action", "api.test", json_pack ("{s:s, s:s}", "ref", uuid, "action", "stop"),
               ZV_ENOTFOUND, reason);
    s_refused (self, "conductor.server_events", "api.test", json_pack ("{s:s}", "ref", uuid), ZV_ENOTFOUND, reason);
    s_refused (self, "conductor.console_log", "api.test", json_pack ("{s:s}", "ref", uuid), ZV_ENOTFOUND, reason);
    json_t *listed = zv_harness_ok (self, "conductor.server_list", "api.test", NULL);
    assert_int_equal (json_array_size (json_object_get (listed, "servers")), 0);
    json_decref (listed);
    //  A request's body says nothing about who asks.
    listed = zv_harness_ok (self, "conductor.server_list", "api.test", json_pack ("{s:s}", "project_id", "p1"));
    assert_int_equal (json_array_size (json_object_get (listed, "servers")), 0);
    json_decref (listed);
    //  Still as it was.
    zv_harness_as ("p1", "bob", MEMBER);
    json_t *again = zv_harness_show (self, uuid);
    assert_true (json_equal (mine, again));
    json_decref (again);
    json_decref (mine);
    //  An admin of another project sees it by id, and in all projects.
    zv_harness_as ("p3", "root", ADMIN);
    json_t *seen = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (seen, "status"), "ACTIVE");
    json_decref (seen);
    listed = zv_harness_ok (self, "conductor.server_list", "api.test", json_pack ("{s:b}", "all_projects", 1));
    assert_int_equal (json_array_size (json_object_get (listed, "servers")), 1);
    json_decref (listed);
    //  Forcing a host is an admin's: a member is refused.
    zv_harness_as ("p1", "bob", MEMBER);
    s_refused (self, "conductor.server_create", "api.test",
               json_pack ("{s:s, s:s, s:s, s:s}", "name", "forced", "flavor", "m1", "image", image,
                          "availability_zone", "nova:node1"),
               ZV_EFORBIDDEN, "os_compute_api:servers:create:forced_host");
}

//  The context is an api's to set; services speak only for themselves.
static void
test_policy_peers (void **state)
{
    zv_harness_t *self = *state;
    char image [ZV_UUID_LEN + 1], uuid [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);
    zv_harness_compute_up (self, "node2", 4, 4096, 40);
    zv_harness_boot (self, "web", "m1", image, "node1", uuid);
    //  A context from a compute: refused, whatever the route.
    zv_msg_t *msg = zv_harness_msg ("conductor.server_list", "compute.node1", NULL);
    zv_msg_set_context (msg, &zv_harness_context);
    char id [80];
    snprintf (id, sizeof id, "%s", zv_msg_id (msg));
    zv_harness_feed (self, &msg);
    zv_msg_t *reply = zv_harness_take_reply (self, id);
    assert_non_null (reply);
    assert_int_equal (zv_msg_status (reply), ZV_EFORBIDDEN);
    assert_true (zv_test_has (zv_msg_error_text (reply), "accepted only from an api"));
    zv_msg_destroy (&reply);
    //  A user route without a context (a peer that is no api): refused.
    s_refused (self, "conductor.server_show", "compute.node1", json_pack ("{s:s}", "ref", uuid), ZV_EFORBIDDEN,
               "needs a request context");
    s_refused (self, "conductor.flavor_list", "scheduler.s1", NULL, ZV_EFORBIDDEN, "needs a request context");
    //  A compute speaks only for its own host.
    s_refused (self, "conductor.compute_sync", "compute.node2",
               json_pack ("{s:s, s:[]}", "host", "node1", "domains"), ZV_EFORBIDDEN,
               "compute.node2 may not speak for host node1");
    s_refused (self, "conductor.service_heartbeat", "compute.node2",
               json_pack ("{s:s, s:s}", "binary", "compute", "host", "node1"), ZV_EFORBIDDEN,
               "may not speak for host node1");
    s_refused (self, "conductor.service_heartbeat", "compute.node2",
               json_pack ("{s:s, s:s}", "binary", "scheduler", "host", "node2"), ZV_EFORBIDDEN,
               "Policy doesn't allow");
    //  Only the console proxy asks about tokens, only a scheduler for host
    //  states, only a compute for image bytes.
    s_refused (self, "conductor.console_authorize", "api.test", json_pack ("{s:s}", "token", "00ff"),
               ZV_EFORBIDDEN, "Policy doesn't allow");
    s_refused (self, "conductor.console_authorize", "scheduler.s1", json_pack ("{s:s}", "token", "00ff"),
               ZV_EFORBIDDEN, "Policy doesn't allow");
    s_refused (self, "conductor.host_states", "compute.node1", NULL, ZV_EFORBIDDEN, "Policy doesn't allow");
    s_refused (self, "conductor.image_download", "scheduler.s1",
               json_pack ("{s:s, s:i, s:i}", "id", image, "offset", 0, "length", 4), ZV_EFORBIDDEN,
               "Policy doesn't allow");
    //  ... and each is served when the right peer asks.
    json_decref (zv_harness_ok (self, "conductor.host_states", "scheduler.s1", NULL));
    s_refused (self, "conductor.console_authorize", "consoleproxy.p", json_pack ("{s:s}", "token", "00ff"),
               ZV_ENOTFOUND, "Invalid or expired console token");
    json_decref (zv_harness_ok (self, "conductor.image_download", "compute.node2",
                                json_pack ("{s:s, s:i, s:i}", "id", image, "offset", 0, "length", 4)));
    json_decref (zv_harness_ok (self, "conductor.compute_sync", "compute.node1",
                                json_pack ("{s:s, s:[]}", "host", "node1", "domains")));
}

int
main (void)
{
    zv_log_level = -1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_policy_admin_routes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_policy_owner, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_policy_peers, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
