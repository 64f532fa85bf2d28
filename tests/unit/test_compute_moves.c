/*  test_compute_moves.c: the compute host's half of moving servers, on
    libvirt's test driver: two compute actors (hostA, hostB, each its own
    test://<node.xml> hypervisor and instances path) and a fake conductor.

    The fake is a ROUTER on an inproc endpoint, driven from the test's
    thread: it answers heartbeats (one epoch), compute_sync (remembering
    the domains each host listed, and naming instances evacuated off a host
    when a test asks), instance_update and move_report (acks, the reports
    kept in order), and casts the phases of a move the way the conductor's
    tables do, one at a time, waiting for each report.  What a host holds
    is read from the compute_sync that compute.sync_now makes it send.
    This is the simulated path: nothing is copied, the domain is defined on
    the destination, undefined on the source; the file transfer itself is
    tested in test_movepull.c.  Deadlines, never sleeps.                   */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/zv_actors.h"
#include "virt/zv_virt.h"
#include "virt/zv_disk.h"
#include "proto/zv_msg.h"
#include "zv_test.h"

#define S_UUID          "4f1c2a0e-8d3b-4c55-9a6e-0b7d2f1e9c31"
#define S_MIGRATION     "7a1e3c5d-2b4f-4a6e-8c1d-9e0f1a2b3c4d"
#define S_MIGRATION2    "1b2c3d4e-5f60-4a1b-8c2d-3e4f5a6b7c8d"
#define S_IMAGE         "7d2b4e6a-1c3f-4a5b-9e8d-0f1a2b3c4d5e"
#define S_EPOCH         "6f0e3c55-0d4b-4f59-9a4e-1b0f2c3d4e5f"
#define S_WAIT_MS       10000

typedef struct {
    char dir [256];
    char endpoint [64];
    zsock_t *router;
    zactor_t *hosts [2];
    json_t *reports;                    //  move_report bodies, in order
    json_t *domains;                    //  host -> [{uuid, power_state}] of its last full sync
    json_t *syncs;                      //  host -> count of full syncs
    json_t *evacuated;                  //  host -> [{uuid, keep_disks}] for its next sync answer
    json_t *ready;                      //  host -> true once it heartbeat
    int delay_ms;                       //  hostB's debug_move_delay_ms
} fixture_t;

static const char *s_names [] = { "hostA", "hostB" };

//  ---------------------------------------------------------------------
//  The fake conductor

static void
s_answer (fixture_t *self, zv_msg_t *request, json_t *body)
{
    zv_msg_t *reply = zv_msg_reply (request);
    zv_msg_set_body (reply, &body);
    assert_int_equal (zv_msg_send (&reply, self->router), 0);
}

//  Serve one message if one comes within timeout_ms; false if none did.
static bool
s_serve_one (fixture_t *self, int timeout_ms)
{
    zmq_pollitem_t item = { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return false;
    zv_msg_t *msg = zv_msg_recv (self->router);
    assert_non_null (msg);
    const char *type = zv_msg_type (msg);
    char *source = zv_msg_routing_id (msg) ? zframe_strdup (zv_msg_routing_id (msg)) : NULL;
    if (zv_msg_is_reply (msg))
        ;                               //  an answer to a request of the test's: read by the test
    else
    if (streq (type, "conductor.service_heartbeat")) {
        json_object_set_new (self->ready, zv_msg_get_str (msg, "host"), json_true ());
        s_answer (self, msg, json_pack ("{s:s, s:i}", "epoch", S_EPOCH, "service_down_time", 60));
    }
    else
    if (streq (type, "conductor.compute_sync")) {
        const char *host = zv_msg_get_str (msg, "host");
        json_t *body = json_object ();
        if (!zv_msg_get_bool (msg, "partial", false)) {
            json_object_set (self->domains, host, json_object_get (zv_msg_body (msg), "domains"));
            json_object_set_new (self->syncs, host,
                                 json_integer (json_integer_value (json_object_get (self->syncs, host)) + 1));
            json_t *evacuated = json_object_get (self->evacuated, host);
            if (evacuated) {
                json_object_set (body, "evacuated", evacuated);
                json_object_del (self->evacuated, host);
            }
        }
        s_answer (self, msg, body);
    }
    else
    if (streq (type, "conductor.instance_update"))
        s_answer (self, msg, json_object ());
    else
    if (streq (type, "conductor.move_report")) {
        json_t *report = json_deep_copy (zv_msg_body (msg));
        json_object_set_new (report, "from", json_string (source ? source : ""));
        json_array_append_new (self->reports, report);
        s_answer (self, msg, json_object ());
    }
    else
        fail_msg ("the fake conductor got %s", type);
    free (source);
    zv_msg_destroy (&msg);
    return true;
}

typedef bool (s_until_fn) (fixture_t *self, const void *arg);

//  Serve until until (self, arg) holds; false at the deadline.
static bool
s_serve_until (fixture_t *self, s_until_fn *until, const void *arg, int timeout_ms)
{
    int64_t deadline = zv_mono_ms () + timeout_ms;
    while (!until (self, arg)) {
        int64_t left = deadline - zv_mono_ms ();
        if (left <= 0)
            return false;
        s_serve_one (self, (int) (left < 50 ? left : 50));
    }
    return true;
}

//  Serve for ms whatever comes.
static void
s_serve_for (fixture_t *self, int ms)
{
    int64_t deadline = zv_mono_ms () + ms;
    for (int64_t left = ms; left > 0; left = deadline - zv_mono_ms ())
        s_serve_one (self, (int) left);
}

static bool
s_have_reports (fixture_t *self, const void *arg)
{
    return json_array_size (self->reports) >= *(const size_t *) arg;
}

static bool
s_both_ready (fixture_t *self, const void *arg)
{
    (void) arg;
    return json_object_size (self->ready) == 2 && json_object_size (self->syncs) == 2;
}

//  ---------------------------------------------------------------------
//  Casts

static void
s_send (fixture_t *self, const char *host, const char *type, json_t *body)
{
    zv_msg_t *msg = zv_msg_new (type);
    char identity [64];
    snprintf (identity, sizeof identity, "compute.%s", host);
    zv_msg_set_routing_str (msg, identity);
    zv_msg_set_rq (msg, "req-move-test");
    zv_msg_set_body (msg, &body);
    assert_int_equal (zv_msg_send (&msg, self->router), 0);
}

static json_t *
s_flavor (int ram_mb)
{
    return json_pack ("{s:s, s:s, s:i, s:i, s:i}", "id", ram_mb > 2048 ? "2" : "1", "name",
                      ram_mb > 2048 ? "m1.medium" : "m1.small", "vcpus", ram_mb > 2048 ? 2 : 1,
                      "ram_mb", ram_mb, "disk_gb", 20);
}

static json_t *
s_instance (int ram_mb)
{
    return json_pack ("{s:s, s:s, s:s, s:o, s:{s:s, s:s}}", "uuid", S_UUID, "name", "web-1",
                      "project_id", "admin", "flavor", s_flavor (ram_mb), "image", "id", S_IMAGE, "name", "cirros");
}

//  A migration record as the conductor sends it, in phase.
static json_t *
s_migration (const char *id, const char *kind, const char *phase, const char *source, const char *dest,
             bool was_running)
{
    return json_pack ("{s:i, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:b}", "id", 1, "uuid", id, "kind", kind,
                      "phase", phase, "source_host", source, "dest_host", dest, "old_flavor", s_flavor (2048),
                      "new_flavor", s_flavor (streq (kind, "resize") ? 4096 : 2048), "was_running", was_running);
}

//  Cast phase of migration (taken) to host, with the instance of ram_mb.
static void
s_cast (fixture_t *self, const char *host, const char *type, json_t *migration, int ram_mb)
{
    s_send (self, host, type, json_pack ("{s:o, s:o, s:{}}", "migration", migration, "instance",
                                         s_instance (ram_mb), "images"));
}

//  The next report; fails the test when none comes.
static json_t *
s_next_report (fixture_t *self, size_t *seen)
{
    size_t want = *seen + 1;
    if (!s_serve_until (self, s_have_reports, &want, S_WAIT_MS))
        fail_msg ("no move report after %zu within %d ms", *seen, S_WAIT_MS);
    return json_array_get (self->reports, (*seen)++);
}

static const char *
s_str (const json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text ? text : "";
}

//  Expect the next report: phase, outcome, from host.
static json_t *
s_expect (fixture_t *self, size_t *seen, const char *host, const char *phase, const char *outcome)
{
    json_t *report = s_next_report (self, seen);
    char from [64];
    snprintf (from, sizeof from, "compute.%s", host);
    if (!streq (s_str (report, "phase"), phase) || !streq (s_str (report, "outcome"), outcome)
    ||  !streq (s_str (report, "from"), from)) {
        char *text = json_dumps (report, JSON_COMPACT);
        fail_msg ("expected %s %s from %s, got %s", phase, outcome, host, text);
    }
    assert_string_equal (s_str (report, "uuid"), S_UUID);
    return report;
}

static bool
s_synced (fixture_t *self, const void *arg)
{
    const json_int_t *want = (const json_int_t *) arg;
    return json_integer_value (json_object_get (self->syncs, s_names [want [0]])) >= want [1];
}

//  The power state of S_UUID on host ("absent" when no domain), by a full
//  sync asked now.
static const char *
s_domain (fixture_t *self, const char *host)
{
    json_int_t want [2] = { streq (host, "hostA") ? 0 : 1,
                            json_integer_value (json_object_get (self->syncs, host)) + 1 };
    s_send (self, host, "compute.sync_now", json_object ());
    if (!s_serve_until (self, s_synced, want, S_WAIT_MS))
        fail_msg ("no sync from %s", host);
    size_t index;
    json_t *domain;
    json_array_foreach (json_object_get (self->domains, host), index, domain)
        if (streq (s_str (domain, "uuid"), S_UUID))
            return s_str (domain, "power_state");
    return "absent";
}

//  The server, built on hostA by compute.build_instance (running).
static void
s_build (fixture_t *self)
{
    s_send (self, "hostA", "compute.build_instance",
            json_pack ("{s:o, s:{}}", "instance", s_instance (2048), "images"));
    int64_t deadline = zv_mono_ms () + S_WAIT_MS;
    while (!streq (s_domain (self, "hostA"), "running"))
        if (zv_mono_ms () > deadline)
            fail_msg ("the build on hostA did not run");
}

//  ---------------------------------------------------------------------
//  Fixture

static zactor_t *
s_start_host (fixture_t *self, int index, int delay_ms)
{
    zv_actor_args_t args;
    memset (&args, 0, sizeof args);
    zv_config_defaults (&args.config);
    const char *host = s_names [index];
    snprintf (args.config.host, sizeof args.config.host, "%s", host);
    snprintf (args.config.state_path, sizeof args.config.state_path, "%s/%s", self->dir, host);
    snprintf (args.config.connection_uri, sizeof args.config.connection_uri, "test://%s/%s.xml", self->dir, host);
    args.config.rpc_timeout_s = 5;
    args.config.workers = 2;
    args.config.shutdown_timeout_s = 5;
    args.config.debug_move_delay_ms = delay_ms;
    snprintf (args.conductor_endpoint, sizeof args.conductor_endpoint, "%s", self->endpoint);
    char path [400];
    snprintf (path, sizeof path, "%s/%s.xml", self->dir, host);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "<node><cpu><mhz>2400</mhz><model>x86_64</model><active>16</active><nodes>1</nodes>"
                   "<sockets>1</sockets><cores>16</cores><threads>1</threads></cpu>"
                   "<memory>33554432</memory></node>\n");
    fclose (file);
    zactor_t *actor = zactor_new (zv_compute_actor, &args);
    assert_non_null (actor);
    return actor;
}

static int
s_setup_delay (void **state, int delay_ms)
{
    static int instance = 0;
    fixture_t *self = (fixture_t *) calloc (1, sizeof *self);
    assert_non_null (self);
    snprintf (self->dir, sizeof self->dir, "/tmp/zv-test-compute-moves-XXXXXX");
    assert_non_null (mkdtemp (self->dir));
    snprintf (self->endpoint, sizeof self->endpoint, "inproc://zv-test-compute-moves-%d", instance++);
    self->router = zsock_new (ZMQ_ROUTER);
    assert_non_null (self->router);
    zsock_set_router_mandatory (self->router, 1);
    assert_int_equal (zsock_bind (self->router, "%s", self->endpoint), 0);
    self->reports = json_array ();
    self->domains = json_object ();
    self->syncs = json_object ();
    self->evacuated = json_object ();
    self->ready = json_object ();
    self->delay_ms = delay_ms;
    self->hosts [0] = s_start_host (self, 0, 0);
    self->hosts [1] = s_start_host (self, 1, delay_ms);
    if (!s_serve_until (self, s_both_ready, NULL, S_WAIT_MS))
        fail_msg ("the hosts did not come up");
    *state = self;
    return 0;
}

static int
s_setup (void **state)
{
    return s_setup_delay (state, 0);
}

static int
s_setup_delayed (void **state)
{
    return s_setup_delay (state, 300);
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    zactor_destroy (&self->hosts [0]);
    zactor_destroy (&self->hosts [1]);
    zsock_destroy (&self->router);
    json_decref (self->reports);
    json_decref (self->domains);
    json_decref (self->syncs);
    json_decref (self->evacuated);
    json_decref (self->ready);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", self->dir);
    assert_int_equal (system (command), 0);
    free (self);
    return 0;
}

static bool
s_instance_dir (fixture_t *self, const char *host)
{
    char path [400];
    snprintf (path, sizeof path, "%s/%s/instances/" S_UUID, self->dir, host);
    return access (path, F_OK) == 0;
}

//  ---------------------------------------------------------------------
//  Tests

//  A cold migration hostA -> hostB, confirmed: each phase's report as the
//  conductor expects it, and the domain where it should be at each step.
static void
test_moves_migrate_confirm (void **state)
{
    fixture_t *self = *state;
    s_build (self);
    assert_true (s_instance_dir (self, "hostA"));
    size_t seen = 0;
    s_cast (self, "hostB", "compute.move_prepare",
            s_migration (S_MIGRATION, "migration", "prepare", "hostA", "hostB", true), 2048);
    json_t *report = s_expect (self, &seen, "hostB", "prepare", "done");
    assert_string_equal (s_str (report, "migration"), S_MIGRATION);
    assert_null (json_object_get (report, "error"));

    s_cast (self, "hostA", "compute.move_source",
            s_migration (S_MIGRATION, "migration", "source", "hostA", "hostB", true), 2048);
    report = s_expect (self, &seen, "hostA", "source", "done");
    //  No power state: the domain is no longer on the source.
    assert_null (json_object_get (report, "power_state"));
    json_t *facts = json_object_get (report, "facts");
    assert_true (json_is_false (json_object_get (facts, "shared")));
    assert_int_equal (json_array_size (json_object_get (facts, "files")), 0);
    //  Off and undefined: the source no longer lists it as a domain.
    assert_string_equal (s_domain (self, "hostA"), "absent");

    json_t *migration = s_migration (S_MIGRATION, "migration", "finish", "hostA", "hostB", true);
    json_object_set_new (migration, "shared_storage", json_false ());
    json_object_set_new (migration, "files", json_array ());
    s_cast (self, "hostB", "compute.move_finish", migration, 2048);
    s_expect (self, &seen, "hostB", "finish", "step");
    report = s_expect (self, &seen, "hostB", "finish", "done");
    assert_string_equal (s_str (report, "power_state"), "running");
    assert_string_equal (s_domain (self, "hostB"), "running");
    assert_string_equal (s_domain (self, "hostA"), "absent");
    assert_true (s_instance_dir (self, "hostB"));

    migration = s_migration (S_MIGRATION, "migration", "confirm", "hostA", "hostB", true);
    json_object_set_new (migration, "shared_storage", json_false ());
    s_cast (self, "hostA", "compute.move_confirm", migration, 2048);
    report = s_expect (self, &seen, "hostA", "confirm", "done");
    assert_null (json_object_get (report, "power_state"));
    assert_string_equal (s_domain (self, "hostA"), "absent");
    assert_string_equal (s_domain (self, "hostB"), "running");
    assert_false (s_instance_dir (self, "hostA"));

    //  Confirm cast again (a conductor that restarted): done again, nothing lost.
    migration = s_migration (S_MIGRATION, "migration", "confirm", "hostA", "hostB", true);
    s_cast (self, "hostA", "compute.move_confirm", migration, 2048);
    s_expect (self, &seen, "hostA", "confirm", "done");
    assert_string_equal (s_domain (self, "hostB"), "running");
}

//  A resize hostA -> hostB reverted: the destination forgets it, the
//  source takes it back (running, as it was) with the old flavor.
static void
test_moves_resize_revert (void **state)
{
    fixture_t *self = *state;
    s_build (self);
    size_t seen = 0;
    s_cast (self, "hostB", "compute.move_prepare",
            s_migration (S_MIGRATION, "resize", "prepare", "hostA", "hostB", true), 4096);
    s_expect (self, &seen, "hostB", "prepare", "done");
    s_cast (self, "hostA", "compute.move_source",
            s_migration (S_MIGRATION, "resize", "source", "hostA", "hostB", true), 2048);
    s_expect (self, &seen, "hostA", "source", "done");
    //  The source's phase cast twice: the guest stays off, done again.
    s_cast (self, "hostA", "compute.move_source",
            s_migration (S_MIGRATION, "resize", "source", "hostA", "hostB", true), 2048);
    s_expect (self, &seen, "hostA", "source", "done");
    json_t *migration = s_migration (S_MIGRATION, "resize", "finish", "hostA", "hostB", true);
    json_object_set_new (migration, "shared_storage", json_false ());
    s_cast (self, "hostB", "compute.move_finish", migration, 4096);
    s_expect (self, &seen, "hostB", "finish", "step");
    s_expect (self, &seen, "hostB", "finish", "done");
    //  Finish cast again: it runs already, it is not restarted.
    migration = s_migration (S_MIGRATION, "resize", "finish", "hostA", "hostB", true);
    json_object_set_new (migration, "shared_storage", json_false ());
    s_cast (self, "hostB", "compute.move_finish", migration, 4096);
    s_expect (self, &seen, "hostB", "finish", "step");
    json_t *report = s_expect (self, &seen, "hostB", "finish", "done");
    assert_string_equal (s_str (report, "power_state"), "running");

    migration = s_migration (S_MIGRATION, "resize", "revert", "hostA", "hostB", true);
    json_object_set_new (migration, "shared_storage", json_false ());
    s_cast (self, "hostB", "compute.move_revert", migration, 4096);
    report = s_expect (self, &seen, "hostB", "revert", "done");
    assert_null (json_object_get (report, "power_state"));
    assert_string_equal (s_domain (self, "hostB"), "absent");
    assert_false (s_instance_dir (self, "hostB"));

    migration = s_migration (S_MIGRATION, "resize", "revert_source", "hostA", "hostB", true);
    json_object_set_new (migration, "shared_storage", json_false ());
    s_cast (self, "hostA", "compute.move_revert", migration, 2048);
    report = s_expect (self, &seen, "hostA", "revert_source", "done");
    assert_string_equal (s_str (report, "power_state"), "running");
    assert_string_equal (s_domain (self, "hostA"), "running");
    //  Again: it runs, it stays so.
    migration = s_migration (S_MIGRATION, "resize", "revert_source", "hostA", "hostB", true);
    s_cast (self, "hostA", "compute.move_revert", migration, 2048);
    report = s_expect (self, &seen, "hostA", "revert_source", "done");
    assert_string_equal (s_str (report, "power_state"), "running");
}

//  A stopped server moves stopped; a move that fails before its finish
//  is rolled back by cleanup_dest and restore_source.
static void
test_moves_stopped_and_rollback (void **state)
{
    fixture_t *self = *state;
    s_build (self);
    size_t seen = 0;
    s_cast (self, "hostB", "compute.move_prepare",
            s_migration (S_MIGRATION, "migration", "prepare", "hostA", "hostB", true), 2048);
    s_expect (self, &seen, "hostB", "prepare", "done");
    //  The source never ran (say it failed): the destination cleans up,
    //  the source's guest runs on untouched.
    s_cast (self, "hostB", "compute.move_revert",
            s_migration (S_MIGRATION, "migration", "cleanup_dest", "hostA", "hostB", true), 2048);
    s_expect (self, &seen, "hostB", "cleanup_dest", "done");
    s_cast (self, "hostA", "compute.move_revert",
            s_migration (S_MIGRATION, "migration", "restore_source", "hostA", "hostB", true), 2048);
    json_t *report = s_expect (self, &seen, "hostA", "restore_source", "done");
    assert_string_equal (s_str (report, "power_state"), "running");
    assert_string_equal (s_domain (self, "hostA"), "running");
    assert_string_equal (s_domain (self, "hostB"), "absent");

    //  A second move, of the guest stopped first: it arrives stopped.
    s_cast (self, "hostA", "compute.move_source",
            s_migration (S_MIGRATION2, "migration", "source", "hostA", "hostB", false), 2048);
    s_expect (self, &seen, "hostA", "source", "done");
    json_t *migration = s_migration (S_MIGRATION2, "migration", "finish", "hostA", "hostB", false);
    json_object_set_new (migration, "shared_storage", json_false ());
    s_cast (self, "hostB", "compute.move_finish", migration, 2048);
    s_expect (self, &seen, "hostB", "finish", "step");
    report = s_expect (self, &seen, "hostB", "finish", "done");
    assert_string_equal (s_str (report, "power_state"), "shutdown");
    assert_string_equal (s_domain (self, "hostB"), "shutdown");
}

//  A resize on one host: its source and destination are the same; confirm
//  must not take the resized domain away.
static void
test_moves_same_host (void **state)
{
    fixture_t *self = *state;
    s_build (self);
    size_t seen = 0;
    s_cast (self, "hostA", "compute.move_prepare",
            s_migration (S_MIGRATION, "resize", "prepare", "hostA", "hostA", true), 4096);
    s_expect (self, &seen, "hostA", "prepare", "done");
    s_cast (self, "hostA", "compute.move_source",
            s_migration (S_MIGRATION, "resize", "source", "hostA", "hostA", true), 2048);
    s_expect (self, &seen, "hostA", "source", "done");
    json_t *migration = s_migration (S_MIGRATION, "resize", "finish", "hostA", "hostA", true);
    json_object_set_new (migration, "shared_storage", json_false ());
    s_cast (self, "hostA", "compute.move_finish", migration, 4096);
    s_expect (self, &seen, "hostA", "finish", "step");
    s_expect (self, &seen, "hostA", "finish", "done");
    migration = s_migration (S_MIGRATION, "resize", "confirm", "hostA", "hostA", true);
    json_object_set_new (migration, "shared_storage", json_false ());
    s_cast (self, "hostA", "compute.move_confirm", migration, 2048);
    s_expect (self, &seen, "hostA", "confirm", "done");
    assert_string_equal (s_domain (self, "hostA"), "running");
    assert_true (s_instance_dir (self, "hostA"));
}

//  Evacuate onto hostB (hostA is down): two steps, then done; hostA, back,
//  is told at its sync that the instance left: its domain is fenced.
static void
test_moves_evacuate_and_fence (void **state)
{
    fixture_t *self = *state;
    s_build (self);
    size_t seen = 0;
    s_cast (self, "hostB", "compute.move_rebuild",
            s_migration (S_MIGRATION, "evacuation", "rebuild", "hostA", "hostB", true), 2048);
    s_expect (self, &seen, "hostB", "rebuild", "step");
    s_expect (self, &seen, "hostB", "rebuild", "step");
    json_t *report = s_expect (self, &seen, "hostB", "rebuild", "done");
    assert_string_equal (s_str (report, "power_state"), "running");
    assert_true (json_is_false (json_object_get (json_object_get (report, "facts"), "shared")));
    assert_string_equal (s_domain (self, "hostB"), "running");

    json_object_set_new (self->evacuated, "hostA",
                         json_pack ("[{s:s, s:b}]", "uuid", S_UUID, "keep_disks", 0));
    assert_string_equal (s_domain (self, "hostA"), "running");      //  the sync that is told
    assert_string_equal (s_domain (self, "hostA"), "absent");
    assert_false (s_instance_dir (self, "hostA"));
    //  An answer without the key, or with an entry that is no uuid: nothing.
    json_object_set_new (self->evacuated, "hostB", json_pack ("[{s:s}]", "uuid", "../etc"));
    assert_string_equal (s_domain (self, "hostB"), "running");
    assert_string_equal (s_domain (self, "hostB"), "running");
}

//  compute.move_read: nothing set aside on the test driver, and names
//  that are no carried file refused whatever the host holds.
static void
test_moves_read_refused (void **state)
{
    fixture_t *self = *state;
    static const struct {
        const char *file;
        int64_t offset;
        const char *error;
    } rows [] = {
        { "disk",           0, "not_found" },
        { "../../etc/passwd", 0, "invalid" },
        { "libvirt.xml",    0, "invalid" },
    };
    for (size_t index = 0; index < sizeof rows / sizeof rows [0]; index++) {
        s_send (self, "hostA", "compute.move_read",
                json_pack ("{s:s, s:s, s:s, s:I, s:i}", "uuid", S_UUID, "migration", S_MIGRATION,
                           "file", rows [index].file, "offset", (json_int_t) rows [index].offset,
                           "length", 4096));
        zmq_pollitem_t item = { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 };
        zv_msg_t *reply = NULL;
        int64_t deadline = zv_mono_ms () + S_WAIT_MS;
        while (!reply && zv_mono_ms () < deadline) {
            if (zmq_poll (&item, 1, 100) <= 0)
                continue;
            zv_msg_t *msg = zv_msg_recv (self->router);
            if (zv_msg_is_reply (msg) && streq (zv_msg_type (msg), "compute.move_read"))
                reply = msg;
            else
                zv_msg_destroy (&msg);
        }
        assert_non_null (reply);
        assert_string_equal (zv_status_name (zv_msg_status (reply)), rows [index].error);
        zv_msg_destroy (&reply);
    }
}

//  With debug_move_delay_ms the done report waits; the phase cast again
//  meanwhile is ignored (one report); a later phase of the instance
//  cancels a held report and runs.
static void
test_moves_delay_dedupe_cancel (void **state)
{
    fixture_t *self = *state;
    s_build (self);
    size_t seen = 0;
    int64_t started = zv_mono_ms ();
    s_cast (self, "hostB", "compute.move_prepare",
            s_migration (S_MIGRATION, "migration", "prepare", "hostA", "hostB", true), 2048);
    s_cast (self, "hostB", "compute.move_prepare",
            s_migration (S_MIGRATION, "migration", "prepare", "hostA", "hostB", true), 2048);
    s_expect (self, &seen, "hostB", "prepare", "done");
    assert_true (zv_mono_ms () - started >= self->delay_ms);
    s_serve_for (self, self->delay_ms + 200);
    assert_int_equal (json_array_size (self->reports), 1);

    s_cast (self, "hostA", "compute.move_source",
            s_migration (S_MIGRATION, "migration", "source", "hostA", "hostB", true), 2048);
    s_expect (self, &seen, "hostA", "source", "done");
    json_t *migration = s_migration (S_MIGRATION, "migration", "finish", "hostA", "hostB", true);
    json_object_set_new (migration, "shared_storage", json_false ());
    s_cast (self, "hostB", "compute.move_finish", migration, 2048);
    s_expect (self, &seen, "hostB", "finish", "step");
    //  Its done is held: the conductor gives up and rolls back.
    migration = s_migration (S_MIGRATION, "migration", "cleanup_dest", "hostA", "hostB", true);
    json_object_set_new (migration, "shared_storage", json_false ());
    s_cast (self, "hostB", "compute.move_revert", migration, 2048);
    s_expect (self, &seen, "hostB", "cleanup_dest", "done");
    s_serve_for (self, self->delay_ms + 200);
    assert_int_equal (json_array_size (self->reports), seen);
    assert_string_equal (s_domain (self, "hostB"), "absent");
}

//  What no host runs is ignored: an unknown phase, no migration uuid.
static void
test_moves_bad_casts (void **state)
{
    fixture_t *self = *state;
    s_cast (self, "hostA", "compute.move_prepare",
            s_migration (S_MIGRATION, "migration", "teleport", "hostA", "hostB", true), 2048);
    json_t *migration = s_migration (S_MIGRATION, "migration", "prepare", "hostA", "hostB", true);
    json_object_set_new (migration, "uuid", json_string ("nope"));
    s_cast (self, "hostA", "compute.move_prepare", migration, 2048);
    s_serve_for (self, 300);
    assert_int_equal (json_array_size (self->reports), 0);
    //  The host still serves.
    assert_string_equal (s_domain (self, "hostA"), "absent");
}

int
main (void)
{
    zv_virt_init ();
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_moves_migrate_confirm, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_resize_revert, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_stopped_and_rollback, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_same_host, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_evacuate_and_fence, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_read_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_delay_dedupe_cancel, s_setup_delayed, s_teardown),
        cmocka_unit_test_setup_teardown (test_moves_bad_casts, s_setup, s_teardown),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    zv_virt_shutdown ();
    return failed;
}
