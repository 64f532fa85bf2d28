/*  test_virt.c: the libvirt driver table (zv_virt_libvirt) on libvirt's
    in-process test driver, test:///default.

    Every operation runs against a real libvirt: the test driver keeps
    domains in memory and really pauses, saves, shuts down and restores
    them, and sends lifecycle events through the event thread that
    zv_virt_init starts.  What it cannot do (it has no guest agent behind
    virDomainGetGuestInfo) shows as ZV_EUNSUPPORTED.  test:///default is
    one hypervisor shared by every connection of the process and reset
    when the last one closes: each test opens its own connection, so it
    starts from the driver's default state.  Instances are records shaped
    like tests/data/domain/small.json.  Events are awaited on event_fd with
    a deadline, never by sleeping.  Run from the repository root.          */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "zv_test.h"

#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "../../actors/zv_virt.h"

#define S_URI        "test:///default"
#define S_UUID_A     "4f1c2a0e-8d3b-4c55-9a6e-0b7d2f1e9c31"
#define S_UUID_B     "7a1e3c5d-2b4f-4a6e-8c1d-9e0f1a2b3c4d"
#define S_ABSENT     "00000000-1111-4222-8333-444444444444"
#define S_WAIT_MS    5000

static const zv_virt_driver_t *D = &zv_virt_libvirt;

typedef struct {
    zv_virt_t *virt;
    char errbuf [1024];
} s_fixture_t;

//  Helpers

//  An instance record like tests/data/domain/small.json with this uuid
//  (caller owns).
static json_t *
s_instance (const char *uuid)
{
    json_error_t jerr;
    json_t *instance = json_load_file ("tests/data/domain/small.json", 0, &jerr);
    if (!instance)
        fail_msg ("tests/data/domain/small.json:%d: %s", jerr.line, jerr.text);
    json_object_set_new (instance, "uuid", json_string (uuid));
    return instance;
}

static void
s_spawn (s_fixture_t *fx, const char *uuid, const zv_domain_spec_t *spec)
{
    json_t *instance = s_instance (uuid);
    zv_status_t status = D->spawn (fx->virt, instance, spec, fx->errbuf, sizeof fx->errbuf);
    if (status != ZV_OK)
        fail_msg ("spawn %s: %s: %s", uuid, zv_status_name (status), fx->errbuf);
    json_decref (instance);
}

//  Wait for the lifecycle event "detail" of uuid, reading (and dropping)
//  the events before it; false at the deadline.  Events of other uuids
//  than want_only (when set) fail the test.
static bool
s_wait_event (zv_virt_t *virt, const char *uuid, const char *detail, const char *want_only)
{
    int64_t deadline = zv_mono_ms () + S_WAIT_MS;
    while (true) {
        zv_virt_event_t event;
        while (D->event_next (virt, &event)) {
            if (want_only && strcmp (event.uuid, want_only) != 0)
                fail_msg ("unexpected event %s of %s", event.detail, event.uuid);
            if (event.kind == ZV_VIRT_EVENT_LIFECYCLE
            &&  strcmp (event.uuid, uuid) == 0 && strcmp (event.detail, detail) == 0)
                return true;
        }
        int64_t left = deadline - zv_mono_ms ();
        if (left <= 0) {
            print_error ("no event %s of %s within %d ms\n", detail, uuid, S_WAIT_MS);
            return false;
        }
        struct pollfd item = { .fd = D->event_fd (virt), .events = POLLIN };
        poll (&item, 1, (int) left);
    }
}

//  Drop every queued event.
static void
s_drain (zv_virt_t *virt)
{
    zv_virt_event_t event;
    while (D->event_next (virt, &event))
        ;
}

static bool
s_fd_readable (zv_virt_t *virt)
{
    struct pollfd item = { .fd = D->event_fd (virt), .events = POLLIN };
    return poll (&item, 1, 0) == 1;
}

//  Has the domain a managed-save image?  (-1: no such domain.)  Asked on
//  a connection of the test's own, which shares the driver's domains.
static int
s_managed_save (const char *uuid)
{
    virConnectPtr conn = virConnectOpen (S_URI);
    assert_non_null (conn);
    virDomainPtr domain = virDomainLookupByUUIDString (conn, uuid);
    int has = domain ? virDomainHasManagedSaveImage (domain, 0) : -1;
    if (domain)
        virDomainFree (domain);
    virConnectClose (conn);
    return has;
}

static int
s_remove (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info; (void) flag; (void) ftw;
    return remove (path);
}

static int
s_setup (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) calloc (1, sizeof (s_fixture_t));
    fx->virt = D->open (S_URI, NULL, fx->errbuf, sizeof fx->errbuf);
    if (!fx->virt) {
        print_error ("open %s: %s\n", S_URI, fx->errbuf);
        free (fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    D->close (&fx->virt);
    free (fx);
    return 0;
}

//  Tests

static void
test_virt_open_close_ref (void **state)
{
    (void) state;
    char errbuf [1024] = "";
    zv_virt_t *virt = D->open (S_URI, "kvm", errbuf, sizeof errbuf);
    assert_non_null (virt);
    assert_string_equal (D->uri (virt), S_URI);
    //  The test driver runs only its own domain type, whatever was asked.
    assert_string_equal (D->domain_type (virt), "test");
    assert_true (D->alive (virt));
    assert_true (D->event_fd (virt) >= 0);
    assert_false (s_fd_readable (virt));

    //  A worker's reference outlives the loop's.
    zv_virt_t *worker = D->ref (virt);
    assert_ptr_equal (worker, virt);
    D->close (&virt);
    assert_null (virt);
    D->close (&virt);                           //  a second close is harmless
    assert_true (D->alive (worker));
    json_t *info = D->node_info (worker, errbuf, sizeof errbuf);
    assert_non_null (info);
    assert_true (json_integer_value (json_object_get (info, "vcpus")) > 0);
    assert_true (json_integer_value (json_object_get (info, "memory_mb")) > 0);
    assert_string_equal (json_string_value (json_object_get (info, "hypervisor_type")), "TEST");
    assert_string_equal (json_string_value (json_object_get (info, "uri")), S_URI);
    json_decref (info);
    //  The driver's own domain ("test") is not zova's.
    json_t *list = D->list (worker, errbuf, sizeof errbuf);
    assert_non_null (list);
    assert_int_equal (json_array_size (list), 0);
    json_decref (list);
    D->close (&worker);
    assert_null (worker);

    virt = D->open ("bogus:///nowhere", NULL, errbuf, sizeof errbuf);
    assert_null (virt);
    assert_true (zv_test_has (errbuf, "bogus:///nowhere"));
}

static void
test_virt_spawn_and_power (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_virt_t *virt = fx->virt;
    char *errbuf = fx->errbuf;
    size_t errlen = sizeof fx->errbuf;
    bool clean = false;

    s_spawn (fx, S_UUID_A, NULL);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_RUNNING);
    json_t *list = D->list (virt, errbuf, errlen);
    assert_int_equal (json_array_size (list), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (list, 0), "uuid")), S_UUID_A);
    assert_string_equal (json_string_value (json_object_get (json_array_get (list, 0), "power_state")), "running");
    json_decref (list);

    //  The test driver shuts a guest down at once: a clean power off.
    assert_int_equal (D->power_off (virt, S_UUID_A, 5, &clean, errbuf, errlen), ZV_OK);
    assert_true (clean);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_SHUTDOWN);
    //  Already off: not an error, nothing forced.
    clean = false;
    assert_int_equal (D->power_off (virt, S_UUID_A, 5, &clean, errbuf, errlen), ZV_OK);
    assert_true (clean);

    assert_int_equal (D->power_on (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_RUNNING);
    //  Timeout 0: destroyed at once, the definition kept.
    assert_int_equal (D->power_off (virt, S_UUID_A, 0, &clean, errbuf, errlen), ZV_OK);
    assert_false (clean);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_SHUTDOWN);
    assert_int_equal (D->power_on (virt, S_UUID_A, errbuf, errlen), ZV_OK);

    assert_int_equal (D->pause (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_PAUSED);
    assert_int_equal (D->pause (virt, S_UUID_A, errbuf, errlen), ZV_OK);       //  retried
    assert_int_equal (D->unpause (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_RUNNING);
    assert_int_equal (D->unpause (virt, S_UUID_A, errbuf, errlen), ZV_OK);     //  retried

    //  A paused guest is not asked (it cannot answer): forced.
    assert_int_equal (D->pause (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_off (virt, S_UUID_A, 5, &clean, errbuf, errlen), ZV_OK);
    assert_false (clean);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_SHUTDOWN);
    assert_int_equal (D->power_on (virt, S_UUID_A, errbuf, errlen), ZV_OK);

    //  Managed save: the domain stops; power_on restores it (the image
    //  is used up; the test driver reports the start as a boot).
    assert_int_equal (s_managed_save (S_UUID_A), 0);
    assert_int_equal (D->suspend (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_SHUTDOWN);
    assert_int_equal (s_managed_save (S_UUID_A), 1);
    assert_int_equal (D->power_on (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_RUNNING);
    assert_int_equal (s_managed_save (S_UUID_A), 0);

    //  The test driver fakes the agent's answer to a password change.
    assert_int_equal (D->set_password (virt, S_UUID_A, "root", "s3cret", errbuf, errlen), ZV_OK);
    assert_int_equal (D->set_password (virt, S_UUID_A, NULL, "s3cret", errbuf, errlen), ZV_EINVAL);

    assert_int_equal (D->destroy (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_NOSTATE);
    assert_int_equal (D->destroy (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    list = D->list (virt, errbuf, errlen);
    assert_int_equal (json_array_size (list), 0);
    json_decref (list);
}

static void
test_virt_spawn_writes_xml (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    char dir [] = "/tmp/zv_test_virt.XXXXXX";
    assert_non_null (mkdtemp (dir));
    char instance_dir [256], path [300];
    snprintf (instance_dir, sizeof instance_dir, "%s/instances/" S_UUID_B, dir);
    snprintf (path, sizeof path, "%s/libvirt.xml", instance_dir);

    //  The spec of a test-driver host: only the instance directory.
    zv_domain_spec_t spec = { .instance_dir = instance_dir };
    s_spawn (fx, S_UUID_B, &spec);
    assert_int_equal (D->power_state (fx->virt, S_UUID_B), ZV_POWER_RUNNING);
    char *xml = zv_test_slurp (path);
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<name>zova-" S_UUID_B "</name>"));
    assert_true (zv_test_has (xml, "<uuid>" S_UUID_B "</uuid>"));
    free (xml);
    assert_int_equal (D->destroy (fx->virt, S_UUID_B, fx->errbuf, sizeof fx->errbuf), ZV_OK);

    //  A directory that cannot be made: reported, nothing defined.
    snprintf (instance_dir, sizeof instance_dir, "%s/instances/" S_UUID_B "/libvirt.xml/x", dir);
    json_t *instance = s_instance (S_UUID_B);
    assert_int_equal (D->spawn (fx->virt, instance, &spec, fx->errbuf, sizeof fx->errbuf), ZV_EIO);
    assert_true (zv_test_has (fx->errbuf, "cannot create"));
    assert_int_equal (D->power_state (fx->virt, S_UUID_B), ZV_POWER_NOSTATE);
    json_decref (instance);
    assert_int_equal (nftw (dir, s_remove, 8, FTW_DEPTH | FTW_PHYS), 0);
}

static void
test_virt_events (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_virt_t *virt = fx->virt;
    char *errbuf = fx->errbuf;
    size_t errlen = sizeof fx->errbuf;

    //  The driver's own domain changes state: not zova's, no event.
    virConnectPtr conn = virConnectOpen (S_URI);
    assert_non_null (conn);
    virDomainPtr other = virDomainLookupByName (conn, "test");
    assert_non_null (other);
    assert_int_equal (virDomainSuspend (other), 0);
    assert_int_equal (virDomainResume (other), 0);
    virDomainFree (other);
    virConnectClose (conn);

    s_spawn (fx, S_UUID_A, NULL);
    assert_true (s_wait_event (virt, S_UUID_A, "started/booted", S_UUID_A));
    assert_int_equal (D->pause (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_true (s_wait_event (virt, S_UUID_A, "suspended/paused", S_UUID_A));
    assert_int_equal (D->unpause (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_true (s_wait_event (virt, S_UUID_A, "resumed/unpaused", S_UUID_A));
    assert_int_equal (D->power_off (virt, S_UUID_A, 0, NULL, errbuf, errlen), ZV_OK);
    assert_true (s_wait_event (virt, S_UUID_A, "stopped/destroyed", S_UUID_A));
    assert_int_equal (D->power_on (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_true (s_wait_event (virt, S_UUID_A, "started/booted", S_UUID_A));
    assert_int_equal (D->power_off (virt, S_UUID_A, 5, NULL, errbuf, errlen), ZV_OK);
    assert_true (s_wait_event (virt, S_UUID_A, "stopped/shutdown", S_UUID_A));

    //  Suspend and resume: saved, then started (the test driver says
    //  "booted" where QEMU says "restored").
    assert_int_equal (D->power_on (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_true (s_wait_event (virt, S_UUID_A, "started/booted", S_UUID_A));
    assert_int_equal (D->suspend (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_true (s_wait_event (virt, S_UUID_A, "stopped/saved", S_UUID_A));
    assert_int_equal (D->power_on (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_true (s_wait_event (virt, S_UUID_A, "started/booted", S_UUID_A));

    assert_int_equal (D->destroy (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_true (s_wait_event (virt, S_UUID_A, "undefined/removed", S_UUID_A));
    //  Read empty: the fd is quiet again.
    s_drain (virt);
    assert_false (s_fd_readable (virt));
    zv_virt_event_t event;
    assert_false (D->event_next (virt, &event));

    //  Events left unread are freed with the connection.
    s_spawn (fx, S_UUID_B, NULL);
    assert_int_equal (D->destroy (virt, S_UUID_B, errbuf, errlen), ZV_OK);
}

static void
test_virt_two_connections (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    //  Each connection has its own queue; both hear the shared driver.
    zv_virt_t *second = D->open (S_URI, NULL, fx->errbuf, sizeof fx->errbuf);
    assert_non_null (second);
    s_spawn (fx, S_UUID_A, NULL);
    assert_true (s_wait_event (fx->virt, S_UUID_A, "started/booted", S_UUID_A));
    assert_true (s_wait_event (second, S_UUID_A, "started/booted", S_UUID_A));
    assert_int_equal (D->destroy (second, S_UUID_A, fx->errbuf, sizeof fx->errbuf), ZV_OK);
    assert_true (s_wait_event (fx->virt, S_UUID_A, "undefined/removed", S_UUID_A));
    D->close (&second);
}

static void
test_virt_spawn_over_existing (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_virt_t *virt = fx->virt;
    char *errbuf = fx->errbuf;
    size_t errlen = sizeof fx->errbuf;

    //  Hard reboot: the running domain stops, the new definition boots.
    s_spawn (fx, S_UUID_A, NULL);
    assert_true (s_wait_event (virt, S_UUID_A, "started/booted", S_UUID_A));
    s_spawn (fx, S_UUID_A, NULL);
    assert_true (s_wait_event (virt, S_UUID_A, "stopped/destroyed", S_UUID_A));
    assert_true (s_wait_event (virt, S_UUID_A, "started/booted", S_UUID_A));
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_RUNNING);

    //  Over a managed save: a fresh boot, the saved state discarded.
    assert_int_equal (D->suspend (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (s_managed_save (S_UUID_A), 1);
    s_spawn (fx, S_UUID_A, NULL);
    assert_int_equal (s_managed_save (S_UUID_A), 0);
    assert_true (s_wait_event (virt, S_UUID_A, "started/booted", S_UUID_A));
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_RUNNING);

    //  Over a stopped domain (start after stop).
    assert_int_equal (D->power_off (virt, S_UUID_A, 0, NULL, errbuf, errlen), ZV_OK);
    s_spawn (fx, S_UUID_A, NULL);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_RUNNING);

    //  destroy takes the managed-save image with the definition (the
    //  test driver refuses a plain undefine while one exists).
    assert_int_equal (D->suspend (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (s_managed_save (S_UUID_A), 1);
    assert_int_equal (D->destroy (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (s_managed_save (S_UUID_A), -1);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_NOSTATE);
    //  and nothing of it comes back with the next spawn.
    s_drain (virt);
    s_spawn (fx, S_UUID_A, NULL);
    assert_true (s_wait_event (virt, S_UUID_A, "started/booted", S_UUID_A));
    assert_int_equal (D->destroy (virt, S_UUID_A, errbuf, errlen), ZV_OK);

    //  A record without a uuid is refused before libvirt sees it.
    json_t *instance = s_instance (S_UUID_A);
    json_object_del (instance, "uuid");
    assert_int_equal (D->spawn (virt, instance, NULL, errbuf, errlen), ZV_EINVAL);
    json_decref (instance);
}

static void
test_virt_unsupported (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_status_t status = ZV_OK;
    s_spawn (fx, S_UUID_A, NULL);
    //  The test driver has no virDomainGetGuestInfo.
    json_t *info = D->guest_info (fx->virt, S_UUID_A, 2, &status, fx->errbuf, sizeof fx->errbuf);
    assert_null (info);
    assert_int_equal (status, ZV_EUNSUPPORTED);
    assert_true (zv_test_has (fx->errbuf, "guest_info is unsupported by " S_URI ": "));
    assert_true (zv_test_has (fx->errbuf, "virDomainGetGuestInfo"));
    //  The domain is left as it was.
    assert_int_equal (D->power_state (fx->virt, S_UUID_A), ZV_POWER_RUNNING);
    assert_int_equal (D->destroy (fx->virt, S_UUID_A, fx->errbuf, sizeof fx->errbuf), ZV_OK);
}

static void
test_virt_conflicts (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_virt_t *virt = fx->virt;
    char *errbuf = fx->errbuf;
    size_t errlen = sizeof fx->errbuf;
    zv_status_t status = ZV_OK;

    s_spawn (fx, S_UUID_A, NULL);
    assert_int_equal (D->power_on (virt, S_UUID_A, errbuf, errlen), ZV_ECONFLICT);
    assert_true (zv_test_has (errbuf, "zova-" S_UUID_A " is running"));
    assert_int_equal (D->power_off (virt, S_UUID_A, 0, NULL, errbuf, errlen), ZV_OK);
    assert_int_equal (D->pause (virt, S_UUID_A, errbuf, errlen), ZV_ECONFLICT);
    assert_true (zv_test_has (errbuf, "is shutdown"));
    assert_int_equal (D->unpause (virt, S_UUID_A, errbuf, errlen), ZV_ECONFLICT);
    assert_int_equal (D->suspend (virt, S_UUID_A, errbuf, errlen), ZV_ECONFLICT);
    assert_int_equal (D->set_password (virt, S_UUID_A, "root", "x", errbuf, errlen), ZV_ECONFLICT);
    assert_null (D->guest_info (virt, S_UUID_A, 1, &status, errbuf, errlen));
    assert_int_equal (status, ZV_ECONFLICT);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_SHUTDOWN);
    assert_int_equal (D->destroy (virt, S_UUID_A, errbuf, errlen), ZV_OK);
}

static void
test_virt_bad_input (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_virt_t *virt = fx->virt;
    char *errbuf = fx->errbuf;
    size_t errlen = sizeof fx->errbuf;
    zv_status_t status = ZV_OK;
    bool clean = true;

    //  A domain that does not exist.
    assert_int_equal (D->power_off (virt, S_ABSENT, 1, &clean, errbuf, errlen), ZV_ENOTFOUND);
    assert_false (clean);
    assert_string_equal (errbuf, "domain " S_ABSENT " does not exist on " S_URI);
    assert_int_equal (D->power_on (virt, S_ABSENT, errbuf, errlen), ZV_ENOTFOUND);
    assert_int_equal (D->pause (virt, S_ABSENT, errbuf, errlen), ZV_ENOTFOUND);
    assert_int_equal (D->unpause (virt, S_ABSENT, errbuf, errlen), ZV_ENOTFOUND);
    assert_int_equal (D->suspend (virt, S_ABSENT, errbuf, errlen), ZV_ENOTFOUND);
    assert_int_equal (D->set_password (virt, S_ABSENT, "root", "x", errbuf, errlen), ZV_ENOTFOUND);
    assert_null (D->guest_info (virt, S_ABSENT, 1, &status, errbuf, errlen));
    assert_int_equal (status, ZV_ENOTFOUND);
    assert_int_equal (D->power_state (virt, S_ABSENT), ZV_POWER_NOSTATE);
    assert_int_equal (D->destroy (virt, S_ABSENT, errbuf, errlen), ZV_OK);

    //  Not a uuid at all.
    assert_int_equal (D->power_off (virt, "nonsense", 1, NULL, errbuf, errlen), ZV_EINVAL);
    assert_true (zv_test_has (errbuf, "'nonsense' is not a uuid"));
    assert_int_equal (D->destroy (virt, "nonsense", errbuf, errlen), ZV_EINVAL);
    assert_int_equal (D->pause (virt, NULL, errbuf, errlen), ZV_EINVAL);
    assert_int_equal (D->power_state (virt, "nonsense"), ZV_POWER_NOSTATE);
    assert_int_equal (D->power_state (virt, NULL), ZV_POWER_NOSTATE);
}

//  The event thread stops and starts again; connections opened after the
//  restart hear events as before.
static void
test_virt_event_thread_restart (void **state)
{
    (void) state;
    zv_virt_shutdown ();
    zv_virt_shutdown ();
    zv_virt_init ();
    zv_virt_init ();
    s_fixture_t fx = { .virt = NULL };
    fx.virt = D->open (S_URI, NULL, fx.errbuf, sizeof fx.errbuf);
    assert_non_null (fx.virt);
    s_spawn (&fx, S_UUID_B, NULL);
    assert_true (s_wait_event (fx.virt, S_UUID_B, "started/booted", S_UUID_B));
    assert_int_equal (D->destroy (fx.virt, S_UUID_B, fx.errbuf, sizeof fx.errbuf), ZV_OK);
    D->close (&fx.virt);
}

int
main (void)
{
    zv_log_level = -1;
    zv_virt_init ();
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_virt_open_close_ref),
        cmocka_unit_test_setup_teardown (test_virt_spawn_and_power, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_spawn_writes_xml, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_two_connections, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_spawn_over_existing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_unsupported, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_conflicts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_bad_input, s_setup, s_teardown),
        cmocka_unit_test (test_virt_event_thread_restart),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    zv_virt_shutdown ();
    return failed;
}
