/*  test_conductor_moves.c: moving servers, driven through the conductor's
    handlers without processes: the test plays the api, the scheduler and
    both compute hosts, answering each phase's cast as a host would.

    Covered: a cold migration to VERIFY_RESIZE and its confirm, a resize
    and its revert (back on the source, old flavor), a failure in the
    middle undone by both hosts, an evacuation off a host forced down and
    the fencing of its copy when the host comes back, the refusals (same
    host, unknown, disabled or down host, same flavor, a smaller disk, no
    resize pending, a host that is up, a member), a delete in the middle,
    and recovery: a conductor restart casts the phase again, a compute
    restart gets its phase again.  At every end the allocations are what
    the servers use: nothing leaks.                                        */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "zv_test.h"
#include "zv_conductor_harness.h"
#include "store/zv_migration.h"

#define MEMBER (ZV_ROLE_MEMBER | ZV_ROLE_READER)

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

//  Two hosts, two flavors (m1: 1 VCPU / 512 MB / 1 GB; m2: 2 / 1024 / 2),
//  a server "vm" ACTIVE on node1; its uuid into uuid.
static void
s_scene (zv_harness_t *self, char uuid [ZV_UUID_LEN + 1])
{
    char image [ZV_UUID_LEN + 1];
    zv_harness_cloud (self, image);
    zv_harness_compute_up (self, "node2", 4, 4096, 40);
    zv_harness_flavor (self, "m2", 2, 1024, 2);
    zv_harness_boot (self, "vm", "m1", image, "node1", uuid);
    zv_harness_clear (self);
}

//  MEMORY_MB used on a provider (asked as an admin).
static json_int_t
s_ram (zv_harness_t *self, const char *host)
{
    zv_context_t was = zv_harness_context;
    zv_harness_as ("p1", "u1", ZV_ROLE_ADMIN | MEMBER);
    json_t *body = zv_harness_ok (self, "conductor.provider_show", "api.test", json_pack ("{s:s}", "ref", host));
    json_int_t used = json_integer_value (json_object_get (json_object_get (
        json_object_get (body, "resource_provider"), "usages"), "MEMORY_MB"));
    json_decref (body);
    zv_harness_context = was;
    return used;
}

//  The server's migration record (newest), new.
static json_t *
s_migration (zv_harness_t *self, const char *uuid)
{
    json_t *body = zv_harness_ok (self, "conductor.migration_list", "api.test", json_pack ("{s:s}", "ref", uuid));
    json_t *migration = json_incref (json_array_get (json_object_get (body, "migrations"), 0));
    json_decref (body);
    assert_non_null (migration);
    return migration;
}

//  Take the cast of a phase to compute.<host>; its migration uuid into mig
//  when mig is given.  Fails when there is none.
static zv_msg_t *
s_cast (zv_harness_t *self, const char *type, const char *host, char mig [ZV_UUID_LEN + 1])
{
    char identity [300];
    snprintf (identity, sizeof identity, "compute.%s", host);
    zv_msg_t *cast = zv_harness_take (self, type, identity);
    if (!cast) {
        char to [320];
        for (zv_msg_t *msg = (zv_msg_t *) zlistx_first (self->sent); msg; msg = (zv_msg_t *) zlistx_next (self->sent))
            print_error ("  captured: %s to %s\n", zv_msg_type (msg), zv_harness_to (msg, to, sizeof to));
        fail_msg ("no %s to %s", type, identity);
    }
    if (mig)
        snprintf (mig, ZV_UUID_LEN + 1, "%s", zv_harness_get (json_object_get (zv_msg_body (cast), "migration"),
                                                              "uuid"));
    return cast;
}

//  Answer a phase's cast as its host: outcome (facts taken, may be NULL).
//  The cast stays the caller's.
static void
s_report (zv_harness_t *self, zv_msg_t *cast, const char *host, const char *outcome, const char *power,
          json_t *facts)
{
    json_t *body = zv_msg_body (cast);
    json_t *migration = json_object_get (body, "migration");
    json_t *report = json_pack ("{s:O, s:O, s:O, s:s}", "uuid", json_object_get (json_object_get (body, "instance"), "uuid"),
                                "migration", json_object_get (migration, "uuid"),
                                "phase", json_object_get (migration, "phase"), "outcome", outcome);
    if (power)
        json_object_set_new (report, "power_state", json_string (power));
    if (facts)
        json_object_set_new (report, "facts", facts);
    if (streq (outcome, "failed"))
        json_object_set_new (report, "reason", json_string ("the disk would not copy"));
    char identity [300];
    snprintf (identity, sizeof identity, "compute.%s", host);
    json_decref (zv_harness_ok (self, "conductor.move_report", identity, report));
}

//  Take the next phase's cast to host and report it done.
static void
s_phase_done (zv_harness_t *self, const char *type, const char *host, const char *power, json_t *facts)
{
    zv_msg_t *cast = s_cast (self, type, host, NULL);
    s_report (self, cast, host, "done", power, facts);
    zv_msg_destroy (&cast);
}

static void
s_answer_scheduler (zv_harness_t *self, const char *host)
{
    zv_msg_t *select = zv_harness_take (self, "scheduler.select_destinations", NULL);
    assert_non_null (select);
    //  The source is not a candidate.
    assert_string_equal (json_string_value (json_array_get (json_object_get (zv_msg_body (select), "ignore_hosts"), 0)),
                         "node1");
    zv_harness_answer (self, &select, ZV_OK, NULL, json_pack ("{s:[[s]]}", "destinations", host));
}

//  Drive a cold move of uuid (already requested) from node1 to node2 up to
//  VERIFY_RESIZE, as the scheduler and both hosts would.
static void
s_to_verify (zv_harness_t *self, const char *uuid)
{
    s_answer_scheduler (self, "node2");
    s_phase_done (self, "compute.move_prepare", "node2", NULL, NULL);
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "task_state"), "resize_migrating");
    assert_string_equal (zv_harness_get (server, "status"), "RESIZE");
    json_decref (server);
    s_phase_done (self, "compute.move_source", "node1", "shutdown", json_pack ("{s:b, s:[]}", "shared", 0, "files"));
    zv_msg_t *cast = s_cast (self, "compute.move_finish", "node2", NULL);
    assert_false (json_is_true (json_object_get (json_object_get (zv_msg_body (cast), "migration"), "shared_storage")));
    s_report (self, cast, "node2", "progress", NULL, json_pack ("{s:i, s:i}", "bytes_copied", 5, "bytes_total", 10));
    json_t *migration = s_migration (self, uuid);
    assert_int_equal (json_integer_value (json_object_get (migration, "bytes_copied")), 5);
    assert_string_equal (zv_harness_get (migration, "status"), "post-migrating");
    json_decref (migration);
    s_report (self, cast, "node2", "step", NULL, NULL);
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "task_state"), "resize_finish");
    json_decref (server);
    s_report (self, cast, "node2", "done", "running", json_pack ("{s:i, s:i}", "bytes_copied", 10, "bytes_total", 10));
    zv_msg_destroy (&cast);
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "VERIFY_RESIZE");
    assert_string_equal (zv_harness_get (server, "host"), "node2");
    assert_null (zv_harness_get (server, "task_state"));
    json_decref (server);
}

//  A cold migration to VERIFY_RESIZE, then confirmed: on node2 for good,
//  node1's allocation gone.
static void
test_moves_migrate_and_confirm (void **state)
{
    zv_harness_t *self = *state;
    char uuid [ZV_UUID_LEN + 1];
    s_scene (self, uuid);
    json_t *reply = zv_harness_ok (self, "conductor.server_migrate", "api.test", json_pack ("{s:s}", "ref", uuid));
    json_t *migration = json_object_get (reply, "migration");
    assert_string_equal (zv_harness_get (migration, "kind"), "migration");
    assert_string_equal (zv_harness_get (migration, "status"), "pre-migrating");
    assert_string_equal (zv_harness_get (migration, "source_host"), "node1");
    assert_string_equal (zv_harness_get (json_object_get (reply, "server"), "task_state"), "resize_prep");
    json_decref (reply);
    s_to_verify (self, uuid);
    //  While it waits: the migration holds node1's allocation, the server node2's.
    assert_int_equal (s_ram (self, "node1"), 512);
    assert_int_equal (s_ram (self, "node2"), 512);
    json_t *event = zv_harness_event (self, uuid, "migrate");
    assert_string_equal (zv_harness_get (event, "result"), "Success");
    json_decref (event);

    json_decref (zv_harness_ok (self, "conductor.server_resize_confirm", "api.test", json_pack ("{s:s}", "ref", uuid)));
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "task_state"), "resize_confirming");
    json_decref (server);
    s_phase_done (self, "compute.move_confirm", "node1", NULL, NULL);
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "ACTIVE");
    assert_string_equal (zv_harness_get (server, "host"), "node2");
    assert_string_equal (zv_harness_get (server, "power_state"), "running");
    json_decref (server);
    assert_int_equal (s_ram (self, "node1"), 0);
    assert_int_equal (s_ram (self, "node2"), 512);
    migration = s_migration (self, uuid);
    assert_string_equal (zv_harness_get (migration, "status"), "confirmed");
    json_decref (migration);
    event = zv_harness_event (self, uuid, "confirmResize");
    assert_string_equal (zv_harness_get (event, "result"), "Success");
    json_decref (event);
    //  Nothing pending any more: a second confirm is refused.
    zv_msg_t *again = zv_harness_request (self, "conductor.server_resize_confirm", "api.test",
                                          json_pack ("{s:s}", "ref", uuid));
    assert_int_equal (zv_msg_status (again), ZV_ECONFLICT);
    zv_msg_destroy (&again);
}

//  A resize to a bigger flavor, then reverted: back on node1 with m1.
static void
test_moves_resize_and_revert (void **state)
{
    zv_harness_t *self = *state;
    char uuid [ZV_UUID_LEN + 1];
    s_scene (self, uuid);
    zv_harness_as ("p1", "bob", MEMBER);        //  a resize is the owner's
    json_decref (zv_harness_ok (self, "conductor.server_resize", "api.test",
                                json_pack ("{s:s, s:s}", "ref", uuid, "flavor", "m2")));
    s_to_verify (self, uuid);
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (json_object_get (server, "flavor"), "name"), "m2");
    json_decref (server);
    assert_int_equal (s_ram (self, "node2"), 1024);
    assert_int_equal (s_ram (self, "node1"), 512);

    json_decref (zv_harness_ok (self, "conductor.server_resize_revert", "api.test", json_pack ("{s:s}", "ref", uuid)));
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "REVERT_RESIZE");
    json_decref (server);
    s_phase_done (self, "compute.move_revert", "node2", NULL, NULL);
    zv_msg_t *cast = s_cast (self, "compute.move_revert", "node1", NULL);
    assert_string_equal (zv_harness_get (json_object_get (zv_msg_body (cast), "migration"), "phase"), "revert_source");
    //  The source is told the flavor its domain has there: the old one.
    assert_string_equal (zv_harness_get (json_object_get (json_object_get (zv_msg_body (cast), "instance"), "flavor"),
                                         "name"), "m1");
    s_report (self, cast, "node1", "done", "running", NULL);
    zv_msg_destroy (&cast);
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "ACTIVE");
    assert_string_equal (zv_harness_get (server, "host"), "node1");
    assert_string_equal (zv_harness_get (json_object_get (server, "flavor"), "name"), "m1");
    json_decref (server);
    assert_int_equal (s_ram (self, "node1"), 512);
    assert_int_equal (s_ram (self, "node2"), 0);
    json_t *migration = s_migration (self, uuid);
    assert_string_equal (zv_harness_get (migration, "status"), "reverted");
    assert_string_equal (zv_harness_get (migration, "kind"), "resize");
    json_decref (migration);
}

//  The copy fails: the destination cleans up, the source restores, the
//  server is where it was with a fault; the move's action says why.
static void
test_moves_failure_undone (void **state)
{
    zv_harness_t *self = *state;
    char uuid [ZV_UUID_LEN + 1];
    s_scene (self, uuid);
    json_t *reply = zv_harness_ok (self, "conductor.server_migrate", "api.test", json_pack ("{s:s}", "ref", uuid));
    json_decref (reply);
    s_answer_scheduler (self, "node2");
    s_phase_done (self, "compute.move_prepare", "node2", NULL, NULL);
    s_phase_done (self, "compute.move_source", "node1", "shutdown", json_pack ("{s:b, s:[]}", "shared", 0, "files"));
    zv_msg_t *cast = s_cast (self, "compute.move_finish", "node2", NULL);
    s_report (self, cast, "node2", "failed", NULL, NULL);
    zv_msg_destroy (&cast);
    cast = s_cast (self, "compute.move_revert", "node2", NULL);
    assert_string_equal (zv_harness_get (json_object_get (zv_msg_body (cast), "migration"), "phase"), "cleanup_dest");
    s_report (self, cast, "node2", "done", NULL, NULL);
    zv_msg_destroy (&cast);
    cast = s_cast (self, "compute.move_revert", "node1", NULL);
    assert_string_equal (zv_harness_get (json_object_get (zv_msg_body (cast), "migration"), "phase"), "restore_source");
    s_report (self, cast, "node1", "done", "running", NULL);
    zv_msg_destroy (&cast);
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "ACTIVE");
    assert_string_equal (zv_harness_get (server, "host"), "node1");
    assert_true (zv_test_has (zv_harness_get (json_object_get (server, "fault"), "message"), "the disk would not copy"));
    json_decref (server);
    json_t *migration = s_migration (self, uuid);
    assert_string_equal (zv_harness_get (migration, "status"), "error");
    assert_true (zv_test_has (zv_harness_get (migration, "error"), "finish failed on node2"));
    json_decref (migration);
    json_t *event = zv_harness_event (self, uuid, "migrate");
    assert_string_equal (zv_harness_get (event, "result"), "Error");
    json_decref (event);
    assert_int_equal (s_ram (self, "node1"), 512);
    assert_int_equal (s_ram (self, "node2"), 0);
}

//  An evacuation off a host forced down; the host, back, is told its copy
//  was evacuated (its disks kept when storage was shared).
static void
test_moves_evacuate (void **state)
{
    zv_harness_t *self = *state;
    char uuid [ZV_UUID_LEN + 1];
    s_scene (self, uuid);
    //  The host is up: refused, Nova's words.
    zv_msg_t *refused = zv_harness_request (self, "conductor.server_evacuate", "api.test", json_pack ("{s:s}", "ref", uuid));
    assert_int_equal (zv_msg_status (refused), ZV_ECONFLICT);
    assert_true (zv_test_has (zv_msg_error_text (refused), "Compute service of node1 is still in use."));
    zv_msg_destroy (&refused);
    json_decref (zv_harness_ok (self, "conductor.service_set", "api.test",
                                json_pack ("{s:s, s:b}", "host", "node1", "forced_down", 1)));
    json_t *reply = zv_harness_ok (self, "conductor.server_evacuate", "api.test", json_pack ("{s:s}", "ref", uuid));
    assert_string_equal (zv_harness_get (json_object_get (reply, "migration"), "kind"), "evacuation");
    assert_string_equal (zv_harness_get (json_object_get (reply, "server"), "task_state"), "rebuilding");
    json_decref (reply);
    s_answer_scheduler (self, "node2");
    zv_msg_t *cast = s_cast (self, "compute.move_rebuild", "node2", NULL);
    s_report (self, cast, "node2", "step", NULL, NULL);
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "task_state"), "rebuild_block_device_mapping");
    json_decref (server);
    s_report (self, cast, "node2", "step", NULL, NULL);
    s_report (self, cast, "node2", "done", "running", json_pack ("{s:b}", "shared", 1));
    zv_msg_destroy (&cast);
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "ACTIVE");
    assert_string_equal (zv_harness_get (server, "host"), "node2");
    json_decref (server);
    assert_int_equal (s_ram (self, "node1"), 0);
    assert_int_equal (s_ram (self, "node2"), 512);
    json_t *migration = s_migration (self, uuid);
    assert_string_equal (zv_harness_get (migration, "status"), "done");
    json_decref (migration);
    //  node1 comes back with the old domain: evacuated, not a plain orphan.
    json_t *body = zv_harness_ok (self, "conductor.compute_sync", "compute.node1",
        json_pack ("{s:s, s:[{s:s, s:s}], s:I}", "host", "node1", "domains", "uuid", uuid,
                   "power_state", "running", "started_ms", (json_int_t) zv_now_ms ()));
    json_t *evacuated = json_object_get (body, "evacuated");
    assert_int_equal (json_array_size (evacuated), 1);
    assert_string_equal (zv_harness_get (json_array_get (evacuated, 0), "uuid"), uuid);
    assert_true (json_is_true (json_object_get (json_array_get (evacuated, 0), "keep_disks")));
    assert_int_equal (json_array_size (json_object_get (body, "orphans")), 0);
    json_decref (body);
}

//  Every refusal is a clear error, and nothing changes.
static void
test_moves_refusals (void **state)
{
    zv_harness_t *self = *state;
    char uuid [ZV_UUID_LEN + 1];
    s_scene (self, uuid);
    json_t *before = zv_harness_show (self, uuid);
    struct { const char *type; json_t *body; zv_status_t status; const char *reason; } cases [] = {
        { "conductor.server_migrate", json_pack ("{s:s, s:s}", "ref", uuid, "host", "node1"), ZV_EINVAL,
          "to current host (node1)" },
        { "conductor.server_migrate", json_pack ("{s:s, s:s}", "ref", uuid, "host", "node9"), ZV_ENOTFOUND,
          "Compute host node9 could not be found." },
        { "conductor.server_resize", json_pack ("{s:s, s:s}", "ref", uuid, "flavor", "m1"), ZV_EINVAL,
          "When resizing, instances must change flavor!" },
        { "conductor.server_resize", json_pack ("{s:s, s:s}", "ref", uuid, "flavor", "nope"), ZV_ENOTFOUND,
          "Flavor nope could not be found." },
        { "conductor.server_resize_confirm", json_pack ("{s:s}", "ref", uuid), ZV_ECONFLICT,
          "has no resize waiting" },
        { "conductor.server_resize_revert", json_pack ("{s:s}", "ref", uuid), ZV_ECONFLICT, "has no resize waiting" },
        { "conductor.server_migrate", json_pack ("{s:s, s:b, s:s}", "ref", uuid, "live", 1, "host", "node1"),
          ZV_EINVAL, "to current host (node1)" },
        { "conductor.migration_abort", json_pack ("{s:s, s:s}", "ref", uuid, "id", "1"), ZV_ENOTFOUND,
          "Migration 1 for instance" },
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        zv_msg_t *reply = zv_harness_request (self, cases [index].type, "api.test", cases [index].body);
        if (zv_msg_status (reply) != cases [index].status)
            fail_msg ("case %zu: %s: %s", index, zv_status_name (zv_msg_status (reply)), zv_msg_error_text (reply));
        assert_true (zv_test_has (zv_msg_error_text (reply), cases [index].reason));
        zv_msg_destroy (&reply);
    }
    //  A disabled host, unless forced.
    json_decref (zv_harness_ok (self, "conductor.service_set", "api.test",
                                json_pack ("{s:s, s:b}", "host", "node2", "disabled", 1)));
    zv_msg_t *reply = zv_harness_request (self, "conductor.server_migrate", "api.test",
                                          json_pack ("{s:s, s:s}", "ref", uuid, "host", "node2"));
    assert_int_equal (zv_msg_status (reply), ZV_ECONFLICT);
    assert_true (zv_test_has (zv_msg_error_text (reply), "Compute service of node2 is unavailable at this time."));
    zv_msg_destroy (&reply);
    //  A smaller disk: a flavor with less disk than m2's, after a resize to m2... here m0 < m1.
    zv_harness_flavor (self, "m0", 1, 256, 0);
    reply = zv_harness_request (self, "conductor.server_resize", "api.test",
                                json_pack ("{s:s, s:s}", "ref", uuid, "flavor", "m0"));
    assert_int_equal (zv_msg_status (reply), ZV_EINVAL);
    assert_true (zv_test_has (zv_msg_error_text (reply), "Resizing to a smaller disk flavor is not allowed."));
    zv_msg_destroy (&reply);
    //  A member may not migrate or evacuate.
    zv_harness_as ("p1", "bob", MEMBER);
    reply = zv_harness_request (self, "conductor.server_migrate", "api.test", json_pack ("{s:s}", "ref", uuid));
    assert_int_equal (zv_msg_status (reply), ZV_EFORBIDDEN);
    assert_true (zv_test_has (zv_msg_error_text (reply), "os_compute_api:os-migrate-server:migrate"));
    zv_msg_destroy (&reply);
    reply = zv_harness_request (self, "conductor.server_evacuate", "api.test", json_pack ("{s:s}", "ref", uuid));
    assert_int_equal (zv_msg_status (reply), ZV_EFORBIDDEN);
    zv_msg_destroy (&reply);
    reply = zv_harness_request (self, "conductor.migration_list", "api.test", NULL);
    assert_int_equal (zv_msg_status (reply), ZV_EFORBIDDEN);
    zv_msg_destroy (&reply);
    //  Nothing changed: no migration, the server as it was.
    zv_harness_as ("p1", "u1", ZV_ROLE_ADMIN | MEMBER);
    json_t *after = zv_harness_show (self, uuid);
    assert_true (json_equal (before, after));
    json_decref (before);
    json_decref (after);
    json_t *list = zv_harness_ok (self, "conductor.migration_list", "api.test", NULL);
    assert_int_equal (json_array_size (json_object_get (list, "migrations")), 0);
    json_decref (list);
    assert_int_equal (zv_harness_count (self, "scheduler.select_destinations", NULL), 0);
}

//  A conductor that dies in the middle casts the phase again when it
//  starts; a compute that restarted gets its phase again; a phase nobody
//  answers is undone after it was cast three times.
static void
test_moves_recovery (void **state)
{
    zv_harness_t *self = *state;
    char uuid [ZV_UUID_LEN + 1];
    s_scene (self, uuid);
    json_decref (zv_harness_ok (self, "conductor.server_migrate", "api.test", json_pack ("{s:s}", "ref", uuid)));
    s_answer_scheduler (self, "node2");
    s_phase_done (self, "compute.move_prepare", "node2", NULL, NULL);
    zv_msg_t *lost = s_cast (self, "compute.move_source", "node1", NULL);
    zv_msg_destroy (&lost);
    //  The conductor dies with the source's phase cast (and lost).
    //  The new conductor casts nothing at start (no host is connected
    //  yet): the source's first sync with it gets the phase cast again.
    zv_harness_restart (self);
    zv_harness_scheduler_up (self, "s1");
    assert_int_equal (zv_harness_count (self, "compute.move_source", "compute.node1"), 0);
    json_decref (zv_harness_ok (self, "conductor.compute_sync", "compute.node1",
        json_pack ("{s:s, s:[{s:s, s:s}], s:I}", "host", "node1", "domains", "uuid", uuid,
                   "power_state", "shutdown", "started_ms", (json_int_t) zv_now_ms () - 60000)));
    zv_msg_t *again = s_cast (self, "compute.move_source", "node1", NULL);
    zv_msg_destroy (&again);
    //  A second sync of the same run of the host casts nothing more.
    json_decref (zv_harness_ok (self, "conductor.compute_sync", "compute.node1",
        json_pack ("{s:s, s:[{s:s, s:s}], s:I}", "host", "node1", "domains", "uuid", uuid,
                   "power_state", "shutdown", "started_ms", (json_int_t) zv_now_ms () - 60000)));
    assert_int_equal (zv_harness_count (self, "compute.move_source", "compute.node1"), 0);
    //  The source restarts: its sync gets the phase cast to it again.
    json_decref (zv_harness_ok (self, "conductor.compute_sync", "compute.node1",
        json_pack ("{s:s, s:[{s:s, s:s}], s:I}", "host", "node1", "domains", "uuid", uuid,
                   "power_state", "shutdown", "started_ms", (json_int_t) zv_now_ms () + 1)));
    again = s_cast (self, "compute.move_source", "node1", NULL);
    s_report (self, again, "node1", "done", "shutdown", json_pack ("{s:b, s:[]}", "shared", 0, "files"));
    zv_msg_destroy (&again);
    //  A late report of the phase already done changes nothing.
    zv_msg_t *finish = s_cast (self, "compute.move_finish", "node2", NULL);
    zv_msg_t *late = zv_harness_request (self, "conductor.move_report", "compute.node1",
        json_pack ("{s:s, s:O, s:s, s:s}", "uuid", uuid, "migration",
                   json_object_get (json_object_get (zv_msg_body (finish), "migration"), "uuid"),
                   "phase", "source", "outcome", "done"));
    assert_int_equal (zv_msg_status (late), ZV_ECONFLICT);
    zv_msg_destroy (&late);
    //  The source may not report the destination's phase.
    late = zv_harness_request (self, "conductor.move_report", "compute.node1",
        json_pack ("{s:s, s:O, s:s, s:s}", "uuid", uuid, "migration",
                   json_object_get (json_object_get (zv_msg_body (finish), "migration"), "uuid"),
                   "phase", "finish", "outcome", "done"));
    assert_int_equal (zv_msg_status (late), ZV_EFORBIDDEN);
    zv_msg_destroy (&late);
    //  The destination never answers: three casts, then the move is undone
    //  (a timeout of 0 makes every housekeeping find the phase overdue).
    self->cfg.move_phase_timeout_s = 0;
    zv_harness_restart (self);
    zv_msg_destroy (&finish);
    assert_int_equal (zv_harness_count (self, "compute.move_finish", "compute.node2"), 0);
    zv_conductor_housekeeping (self->conductor);
    finish = s_cast (self, "compute.move_finish", "node2", NULL);   //  cast again, overdue (2nd)
    zv_msg_destroy (&finish);
    zv_conductor_housekeeping (self->conductor);
    finish = s_cast (self, "compute.move_finish", "node2", NULL);   //  3rd
    zv_msg_destroy (&finish);
    zv_conductor_housekeeping (self->conductor);
    zv_msg_t *cleanup = s_cast (self, "compute.move_revert", "node2", NULL);
    assert_string_equal (zv_harness_get (json_object_get (zv_msg_body (cleanup), "migration"), "phase"), "cleanup_dest");
    s_report (self, cleanup, "node2", "done", NULL, NULL);
    zv_msg_destroy (&cleanup);
    s_phase_done (self, "compute.move_revert", "node1", "running", NULL);
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "ACTIVE");
    assert_string_equal (zv_harness_get (server, "host"), "node1");
    json_decref (server);
    json_t *migration = s_migration (self, uuid);
    assert_string_equal (zv_harness_get (migration, "status"), "error");
    assert_true (zv_test_has (zv_harness_get (migration, "error"), "no report of phase finish"));
    json_decref (migration);
    assert_int_equal (s_ram (self, "node1"), 512);
    assert_int_equal (s_ram (self, "node2"), 0);
}

//  A delete in the middle: the move closes, the destination is told to
//  clean up, nothing is left allocated.
static void
test_moves_delete_midway (void **state)
{
    zv_harness_t *self = *state;
    char uuid [ZV_UUID_LEN + 1];
    s_scene (self, uuid);
    json_decref (zv_harness_ok (self, "conductor.server_migrate", "api.test", json_pack ("{s:s}", "ref", uuid)));
    s_answer_scheduler (self, "node2");
    zv_msg_t *prepare = s_cast (self, "compute.move_prepare", "node2", NULL);
    json_decref (zv_harness_ok (self, "conductor.server_delete", "api.test", json_pack ("{s:s}", "ref", uuid)));
    zv_msg_t *cleanup = s_cast (self, "compute.move_revert", "node2", NULL);
    assert_string_equal (zv_harness_get (json_object_get (zv_msg_body (cleanup), "migration"), "phase"), "cleanup_dest");
    zv_msg_destroy (&cleanup);
    zv_msg_t *terminate = zv_harness_take (self, "compute.terminate_instance", "compute.node1");
    assert_non_null (terminate);
    zv_msg_destroy (&terminate);
    //  The destination's late report of prepare is refused: the move is
    //  over, and node2 has no business with the server any more.
    zv_msg_t *late = zv_harness_request (self, "conductor.move_report", "compute.node2",
        json_pack ("{s:s, s:O, s:s, s:s}", "uuid", uuid, "migration",
                   json_object_get (json_object_get (zv_msg_body (prepare), "migration"), "uuid"),
                   "phase", "prepare", "outcome", "done"));
    assert_int_equal (zv_msg_status (late), ZV_EFORBIDDEN);
    zv_msg_destroy (&late);
    zv_msg_destroy (&prepare);
    json_decref (zv_harness_ok (self, "conductor.instance_destroyed", "compute.node1",
                                json_pack ("{s:s, s:s}", "uuid", uuid, "host", "node1")));
    assert_int_equal (s_ram (self, "node1"), 0);
    assert_int_equal (s_ram (self, "node2"), 0);
    json_t *migration = s_migration (self, uuid);
    assert_string_equal (zv_harness_get (migration, "status"), "error");
    json_decref (migration);
}

//  Drive a live migration of uuid (already requested) from node1 to node2
//  until its job runs: what each host tells the other goes through the
//  migration's "live", never to a user.  The live cast stays the caller's.
static zv_msg_t *
s_to_live (zv_harness_t *self, const char *uuid)
{
    s_answer_scheduler (self, "node2");
    s_phase_done (self, "compute.move_prepare", "node2", NULL, NULL);
    s_phase_done (self, "compute.move_live_check", "node1", "running",
                  json_pack ("{s:b, s:{s:b, s:b, s:s, s:s, s:[]}}", "shared", 0, "live", "shared", 0, "block", 1,
                             "domain_xml", "<domain/>", "source_instances", "/a", "disks"));
    zv_msg_t *pre = s_cast (self, "compute.move_live_pre", "node2", NULL);
    assert_string_equal (zv_harness_get (json_object_get (json_object_get (zv_msg_body (pre), "migration"), "live"),
                                         "domain_xml"), "<domain/>");
    s_report (self, pre, "node2", "done", NULL,
              json_pack ("{s:{s:s, s:s, s:s}}", "live", "dest_xml", "<domain id='b'/>", "peer_uri",
                         "qemu+tcp://node2/system", "migrate_uri", "tcp://node2"));
    zv_msg_destroy (&pre);
    zv_msg_t *live = s_cast (self, "compute.move_live", "node1", NULL);
    json_t *told = json_object_get (json_object_get (zv_msg_body (live), "migration"), "live");
    assert_string_equal (zv_harness_get (told, "dest_xml"), "<domain id='b'/>");
    assert_string_equal (zv_harness_get (told, "peer_uri"), "qemu+tcp://node2/system");
    assert_true (json_is_true (json_object_get (told, "block")));
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "MIGRATING");
    assert_string_equal (zv_harness_get (server, "task_state"), "migrating");
    json_decref (server);
    //  The job's figures land on the record, the hosts' exchange does not.
    s_report (self, live, "node1", "progress", NULL,
              json_pack ("{s:I, s:I, s:I, s:b}", "memory_total", (json_int_t) 1000, "memory_processed",
                         (json_int_t) 400, "downtime_ms", (json_int_t) 50, "postcopy", 0));
    json_t *migration = s_migration (self, uuid);
    assert_string_equal (zv_harness_get (migration, "status"), "running");
    assert_int_equal (json_integer_value (json_object_get (migration, "memory_processed_bytes")), 400);
    assert_null (json_object_get (migration, "live"));
    json_decref (migration);
    return live;
}

//  A live migration completes: the server on node2, still active, its
//  allocation there only; an abort asked mid-job ends "cancelled" with the
//  guest on node1 untouched (no fault); a silent source is never undone.
static void
test_moves_live (void **state)
{
    zv_harness_t *self = *state;
    char uuid [ZV_UUID_LEN + 1];
    s_scene (self, uuid);
    json_t *reply = zv_harness_ok (self, "conductor.server_migrate", "api.test",
                                   json_pack ("{s:s, s:b}", "ref", uuid, "live", 1));
    assert_string_equal (zv_harness_get (json_object_get (reply, "migration"), "kind"), "live-migration");
    json_decref (reply);
    zv_msg_t *live = s_to_live (self, uuid);
    //  No report for longer than move_phase_timeout: cast again, never undone.
    self->cfg.move_phase_timeout_s = 0;
    zv_harness_restart (self);
    for (int round = 0; round < 5; round++) {
        zv_conductor_housekeeping (self->conductor);
        zv_msg_t *again = s_cast (self, "compute.move_live", "node1", NULL);
        zv_msg_destroy (&again);
    }
    assert_int_equal (zv_harness_count (self, "compute.move_revert", NULL), 0);
    self->cfg.move_phase_timeout_s = 600;
    zv_harness_restart (self);
    zv_harness_scheduler_up (self, "s1");
    s_report (self, live, "node1", "done", NULL, json_pack ("{s:{s:b}}", "live", "left", 1));
    zv_msg_destroy (&live);
    s_phase_done (self, "compute.move_live_post", "node2", "running", NULL);
    json_t *server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "host"), "node2");
    json_decref (server);
    s_phase_done (self, "compute.move_confirm", "node1", NULL, NULL);
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "ACTIVE");
    assert_string_equal (zv_harness_get (server, "host"), "node2");
    assert_string_equal (zv_harness_get (server, "power_state"), "running");
    assert_null (zv_harness_get (server, "task_state"));
    json_decref (server);
    json_t *migration = s_migration (self, uuid);
    assert_string_equal (zv_harness_get (migration, "status"), "completed");
    json_decref (migration);
    assert_int_equal (s_ram (self, "node1"), 0);
    assert_int_equal (s_ram (self, "node2"), 512);

    //  Back to node1 (asked for: the filters still run), aborted mid-job.
    json_decref (zv_harness_ok (self, "conductor.server_migrate", "api.test",
                                json_pack ("{s:s, s:b, s:s}", "ref", uuid, "live", 1, "host", "node1")));
    zv_msg_t *select = zv_harness_take (self, "scheduler.select_destinations", NULL);
    assert_non_null (select);
    assert_string_equal (zv_harness_get (json_object_get (zv_msg_body (select), "spec"), "requested_host"), "node1");
    zv_harness_answer (self, &select, ZV_OK, NULL, json_pack ("{s:[[s]]}", "destinations", "node1"));
    s_phase_done (self, "compute.move_prepare", "node1", NULL, NULL);
    s_phase_done (self, "compute.move_live_check", "node2", "running", json_pack ("{s:b}", "shared", 1));
    s_phase_done (self, "compute.move_live_pre", "node1", NULL, NULL);
    live = s_cast (self, "compute.move_live", "node2", NULL);
    migration = s_migration (self, uuid);
    char id [24];
    snprintf (id, sizeof id, "%lld", (long long) json_integer_value (json_object_get (migration, "id")));
    json_decref (migration);
    json_decref (zv_harness_ok (self, "conductor.migration_abort", "api.test",
                                json_pack ("{s:s, s:s}", "ref", uuid, "id", id)));
    zv_msg_t *control = zv_harness_take (self, "compute.move_live_control", "compute.node2");
    assert_non_null (control);
    assert_string_equal (zv_harness_get (zv_msg_body (control), "action"), "abort");
    zv_msg_destroy (&control);
    s_report (self, live, "node2", "failed", "running", NULL);
    zv_msg_destroy (&live);
    s_phase_done (self, "compute.move_revert", "node1", NULL, NULL);
    server = zv_harness_show (self, uuid);
    assert_string_equal (zv_harness_get (server, "status"), "ACTIVE");
    assert_string_equal (zv_harness_get (server, "host"), "node2");
    json_t *fault = json_object_get (server, "fault");
    assert_true (!fault || json_is_null (fault));
    json_decref (server);
    migration = s_migration (self, uuid);
    assert_string_equal (zv_harness_get (migration, "status"), "cancelled");
    json_decref (migration);
    assert_int_equal (s_ram (self, "node1"), 0);
    assert_int_equal (s_ram (self, "node2"), 512);
    //  Nothing runs now: abort and force complete are refused.
    zv_msg_t *refused = zv_harness_request (self, "conductor.migration_force_complete", "api.test",
                                            json_pack ("{s:s, s:s}", "ref", uuid, "id", id));
    assert_int_equal (zv_msg_status (refused), ZV_ECONFLICT);
    zv_msg_destroy (&refused);
}

int
main (void)
{
    zv_log_level = -1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_moves_migrate_and_confirm, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_resize_and_revert, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_failure_undone, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_evacuate, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_refusals, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_recovery, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_delete_midway, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_live, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
