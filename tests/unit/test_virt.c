/*  test_virt.c: the libvirt driver table (zv_virt_libvirt) on libvirt's
    in-process test driver, test:///default.

    Every operation runs against a real libvirt: the test driver keeps
    domains in memory and really pauses, saves, shuts down and restores
    them, and sends lifecycle events through the event thread that
    zv_virt_init starts.  What it cannot do (it has no guest agent behind
    virDomainGetGuestInfo; no migration, no jobs) shows as
    ZV_EUNSUPPORTED.  Its screenshot is a fixed PNG of libvirt's (passed
    through as it is; PPM to PNG, an older QEMU's case, is tested on
    synthetic images), and it keeps the consoles a domain's XML gives, but
    never gives a VNC port of its own.  test:///default is one hypervisor
    shared by every connection of the process and reset when the last one
    closes: each test opens its own connection, so it starts from the
    driver's default state.  Instances are records shaped like
    tests/data/domain/small.json.  Events are awaited on event_fd with a
    deadline, never by sleeping.  Run from the repository root.          */

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
#include <png.h>

#include "virt/zv_virt.h"

#define S_URI        "test:///default"
#define S_UUID_A     "4f1c2a0e-8d3b-4c55-9a6e-0b7d2f1e9c31"
#define S_UUID_B     "7a1e3c5d-2b4f-4a6e-8c1d-9e0f1a2b3c4d"
#define S_ABSENT     "00000000-1111-4222-8333-444444444444"
#define S_WAIT_MS    5000
//  What the test driver gives as a screenshot (libvirt0 installs it).
#define S_TEST_PICTURE "/usr/share/libvirt/test-screenshot.png"

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

//  A server name with characters XML 1.0 cannot carry (U+FFFE, U+FFFF, a
//  control character): the domain is defined and starts, and zova's
//  metadata holds U+FFFD where they were.
static void
test_virt_spawn_xml_forbidden_chars (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    json_t *instance = s_instance (S_UUID_B);
    json_object_set_new (instance, "name", json_string ("web\xEF\xBF\xBE-\xEF\xBF\xBF-\x01-end"));
    zv_status_t status = D->spawn (fx->virt, instance, NULL, fx->errbuf, sizeof fx->errbuf);
    json_decref (instance);
    if (status != ZV_OK)
        fail_msg ("spawn: %s: %s", zv_status_name (status), fx->errbuf);
    assert_int_equal (D->power_state (fx->virt, S_UUID_B), ZV_POWER_RUNNING);
    //  Asked on a connection of the test's own, which shares the domains.
    virConnectPtr conn = virConnectOpen (S_URI);
    assert_non_null (conn);
    virDomainPtr domain = virDomainLookupByUUIDString (conn, S_UUID_B);
    assert_non_null (domain);
    char *metadata = virDomainGetMetadata (domain, VIR_DOMAIN_METADATA_ELEMENT,
                                           "https://zova.dev/xmlns/instance/1", 0);
    assert_non_null (metadata);
    if (!strstr (metadata, ">web\xEF\xBF\xBD-\xEF\xBF\xBD-\xEF\xBF\xBD-end<"))
        fail_msg ("metadata: %s", metadata);
    free (metadata);
    virDomainFree (domain);
    virConnectClose (conn);
    assert_int_equal (D->destroy (fx->virt, S_UUID_B, fx->errbuf, sizeof fx->errbuf), ZV_OK);
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

//  The memory (KiB) of uuid's persistent definition, asked on a
//  connection of the test's own.
static unsigned long
s_defined_memory_kb (const char *uuid)
{
    virConnectPtr conn = virConnectOpen (S_URI);
    assert_non_null (conn);
    virDomainPtr domain = virDomainLookupByUUIDString (conn, uuid);
    assert_non_null (domain);
    unsigned long memory = virDomainGetMaxMemory (domain);
    virDomainFree (domain);
    virConnectClose (conn);
    return memory;
}

//  define: a move's destination defines the domain of its new flavor and
//  starts it only if it was running; a running domain is never stopped.
static void
test_virt_define (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_virt_t *virt = fx->virt;
    char *errbuf = fx->errbuf;
    size_t errlen = sizeof fx->errbuf;
    char dir [] = "/tmp/zv_test_virt.XXXXXX";
    assert_non_null (mkdtemp (dir));
    char instance_dir [256], path [300];
    snprintf (instance_dir, sizeof instance_dir, "%s/instances/" S_UUID_A, dir);
    snprintf (path, sizeof path, "%s/libvirt.xml", instance_dir);
    zv_domain_spec_t spec = { .instance_dir = instance_dir };

    json_t *instance = s_instance (S_UUID_A);
    assert_int_equal (D->define (virt, instance, &spec, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_SHUTDOWN);
    char *xml = zv_test_slurp (path);
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<uuid>" S_UUID_A "</uuid>"));
    free (xml);
    assert_int_equal (s_defined_memory_kb (S_UUID_A), 2048 * 1024);
    json_t *list = D->list (virt, errbuf, errlen);
    assert_int_equal (json_array_size (list), 1);
    json_decref (list);

    //  Again with a bigger flavor (twice: a phase may run twice): replaced.
    json_object_set_new (json_object_get (instance, "flavor"), "ram_mb", json_integer (4096));
    assert_int_equal (D->define (virt, instance, &spec, errbuf, errlen), ZV_OK);
    assert_int_equal (D->define (virt, instance, &spec, errbuf, errlen), ZV_OK);
    assert_int_equal (s_defined_memory_kb (S_UUID_A), 4096 * 1024);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_SHUTDOWN);
    assert_int_equal (D->power_on (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_true (s_wait_event (virt, S_UUID_A, "started/booted", S_UUID_A));

    //  Over a running domain: it runs on (its event is "defined/updated"
    //  alone, no stop before it).
    s_drain (virt);
    assert_int_equal (D->define (virt, instance, &spec, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_RUNNING);
    int64_t deadline = zv_mono_ms () + S_WAIT_MS;
    zv_virt_event_t event = { .kind = ZV_VIRT_EVENT_CONNECTION_CLOSED };
    while (!D->event_next (virt, &event) && zv_mono_ms () < deadline) {
        struct pollfd item = { .fd = D->event_fd (virt), .events = POLLIN };
        poll (&item, 1, 100);
    }
    assert_int_equal (event.kind, ZV_VIRT_EVENT_LIFECYCLE);
    assert_string_equal (event.detail, "defined/updated");

    //  Over a managed save: the saved state goes, the next start boots.
    assert_int_equal (D->suspend (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (s_managed_save (S_UUID_A), 1);
    assert_int_equal (D->define (virt, instance, &spec, errbuf, errlen), ZV_OK);
    assert_int_equal (s_managed_save (S_UUID_A), 0);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_SHUTDOWN);
    assert_int_equal (D->power_on (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_RUNNING);
    assert_int_equal (D->destroy (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_NOSTATE);

    //  Without spec: nothing written, defined all the same.
    assert_int_equal (D->define (virt, instance, NULL, errbuf, errlen), ZV_OK);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_SHUTDOWN);
    assert_int_equal (D->destroy (virt, S_UUID_A, errbuf, errlen), ZV_OK);

    json_object_del (instance, "uuid");
    assert_int_equal (D->define (virt, instance, NULL, errbuf, errlen), ZV_EINVAL);
    assert_true (zv_test_has (errbuf, "define: the instance has no valid uuid"));
    json_decref (instance);
    assert_int_equal (nftw (dir, s_remove, 8, FTW_DEPTH | FTW_PHYS), 0);
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

//  Live migration: libvirt's test driver has none, and says so in zova's
//  words, leaving the domain as it was; it has no job to report; its
//  migratable XML is the domain's own; any CPU runs on it.
static void
test_virt_migration_test_driver (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_virt_t *virt = fx->virt;
    char *errbuf = fx->errbuf;
    size_t errlen = sizeof fx->errbuf;
    zv_status_t status = ZV_OK;
    s_spawn (fx, S_UUID_A, NULL);

    zv_virt_migration_t how = {
        .peer_uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock",
        .migrate_uri = "tcp://192.0.2.2",
        .bandwidth_mib = 100,
        .downtime_ms = 300,
    };
    const char *why = "libvirt's test driver cannot migrate live; zova moves such domains on its simulated path";
    char want [512];
    assert_int_equal (D->migrate_live (virt, S_UUID_A, &how, errbuf, errlen), ZV_EUNSUPPORTED);
    snprintf (want, sizeof want, "migrate_live is unsupported by " S_URI ": %s", why);
    assert_string_equal (errbuf, want);
    how.block = how.postcopy = how.auto_converge = true;
    assert_int_equal (D->migrate_live (virt, S_UUID_A, &how, errbuf, errlen), ZV_EUNSUPPORTED);
    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_RUNNING);

    assert_null (D->job_stats (virt, S_UUID_A, &status, errbuf, errlen));
    assert_int_equal (status, ZV_ENOTFOUND);
    assert_true (zv_test_has (errbuf, "no job runs on zova-" S_UUID_A));
    assert_int_equal (D->job_abort (virt, S_UUID_A, errbuf, errlen), ZV_EUNSUPPORTED);
    snprintf (want, sizeof want, "job_abort is unsupported by " S_URI ": %s", why);
    assert_string_equal (errbuf, want);
    assert_int_equal (D->migrate_postcopy (virt, S_UUID_A, errbuf, errlen), ZV_EUNSUPPORTED);
    assert_true (zv_test_has (errbuf, "migrate_postcopy is unsupported by " S_URI ": "));
    assert_int_equal (D->migrate_downtime (virt, S_UUID_A, 500, errbuf, errlen), ZV_EUNSUPPORTED);
    assert_true (zv_test_has (errbuf, "migrate_downtime is unsupported by " S_URI ": "));

    //  The migratable XML: the running domain as libvirt reads it.
    char *xml = D->migratable_xml (virt, S_UUID_A, errbuf, errlen);
    if (!xml)
        fail_msg ("migratable_xml: %s", errbuf);
    assert_true (zv_test_has (xml, "<name>zova-" S_UUID_A "</name>"));
    assert_true (zv_test_has (xml, "<uuid>" S_UUID_A "</uuid>"));
    assert_int_equal (D->cpu_compatible (virt, xml, errbuf, errlen), ZV_OK);
    free (xml);
    assert_null (D->migratable_xml (virt, S_ABSENT, errbuf, errlen));
    assert_string_equal (errbuf, "domain " S_ABSENT " does not exist on " S_URI);
    assert_null (D->migratable_xml (virt, "nonsense", errbuf, errlen));
    assert_true (zv_test_has (errbuf, "'nonsense' is not a uuid"));
    //  Any <cpu> (the test driver has no CPU models to compare).
    assert_int_equal (D->cpu_compatible (virt, "<domain type='test'><cpu mode='custom'>"
                                               "<model>Icelake-Server</model></cpu></domain>",
                                         errbuf, errlen), ZV_OK);

    assert_int_equal (D->power_state (virt, S_UUID_A), ZV_POWER_RUNNING);
    assert_int_equal (D->destroy (virt, S_UUID_A, errbuf, errlen), ZV_OK);
}

//  A domain on the test driver with consoles of the kinds a QEMU domain
//  has, defined and started on a connection of the test's own (the driver
//  shares its domains with fx's).  vnc_port -1 leaves the port to libvirt,
//  which the test driver never gives.
static void
s_define_with_consoles (const char *uuid, int vnc_port)
{
    char xml [2048];
    snprintf (xml, sizeof xml,
        "<domain type='test'><name>zova-%s</name><uuid>%s</uuid>"
        "<memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>"
        "<devices>"
        //  A client-mode socket and a pty are no console to reach.
        "<serial type='tcp'><source mode='connect' host='192.0.2.9' service='4444'/>"
        "<protocol type='raw'/><target port='0'/></serial>"
        "<serial type='pty'><target port='1'/></serial>"
        "<serial type='tcp'><source mode='bind' host='127.0.0.1' service='10005'/>"
        "<protocol type='raw'/><target port='2'/></serial>"
        "<graphics type='vnc' port='%d' autoport='%s' listen='192.0.2.1'/>"
        "</devices></domain>",
        uuid, uuid, vnc_port, vnc_port < 0 ? "yes" : "no");
    virConnectPtr conn = virConnectOpen (S_URI);
    assert_non_null (conn);
    virDomainPtr domain = virDomainDefineXML (conn, xml);
    if (!domain)
        fail_msg ("define: %s", virGetLastErrorMessage ());
    assert_int_equal (virDomainCreate (domain), 0);
    virDomainFree (domain);
    virConnectClose (conn);
}

//  Is value the json text expect?  Says both when not.
static void
s_json_is (json_t *value, const char *expect)
{
    json_error_t jerr;
    json_t *want = json_loads (expect, 0, &jerr);
    assert_non_null (want);
    if (!json_equal (value, want)) {
        char *got = value ? json_dumps (value, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
        print_error ("expected %s, got %s\n", expect, got ? got : "NULL");
        free (got);
        json_decref (want);
        fail ();
    }
    json_decref (want);
}

static void
test_virt_consoles (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_virt_t *virt = fx->virt;
    char *errbuf = fx->errbuf;
    size_t errlen = sizeof fx->errbuf;

    //  zova's test-driver domains have no devices: no consoles at all.
    s_spawn (fx, S_UUID_A, NULL);
    json_t *consoles = D->consoles (virt, S_UUID_A, errbuf, errlen);
    s_json_is (consoles, "{}");
    json_decref (consoles);
    assert_int_equal (D->destroy (virt, S_UUID_A, errbuf, errlen), ZV_OK);

    //  The VNC server and the serial port listening on TCP, from the live
    //  XML; still there while paused.
    s_define_with_consoles (S_UUID_B, 5907);
    consoles = D->consoles (virt, S_UUID_B, errbuf, errlen);
    s_json_is (consoles, "{\"vnc\": {\"host\": \"192.0.2.1\", \"port\": 5907},"
                         " \"serial\": {\"host\": \"127.0.0.1\", \"port\": 10005}}");
    json_decref (consoles);
    assert_int_equal (D->pause (virt, S_UUID_B, errbuf, errlen), ZV_OK);
    consoles = D->consoles (virt, S_UUID_B, errbuf, errlen);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (consoles, "vnc"), "port")), 5907);
    json_decref (consoles);

    //  Stopped: no ports to give.
    assert_int_equal (D->power_off (virt, S_UUID_B, 0, NULL, errbuf, errlen), ZV_OK);
    assert_null (D->consoles (virt, S_UUID_B, errbuf, errlen));
    assert_string_equal (errbuf, "consoles: domain zova-" S_UUID_B " is shutdown");
    assert_int_equal (D->destroy (virt, S_UUID_B, errbuf, errlen), ZV_OK);

    //  A VNC port libvirt has not given (-1) is no console.
    s_define_with_consoles (S_UUID_B, -1);
    consoles = D->consoles (virt, S_UUID_B, errbuf, errlen);
    s_json_is (consoles, "{\"serial\": {\"host\": \"127.0.0.1\", \"port\": 10005}}");
    json_decref (consoles);
    assert_int_equal (D->destroy (virt, S_UUID_B, errbuf, errlen), ZV_OK);

    assert_null (D->consoles (virt, S_ABSENT, errbuf, errlen));
    assert_string_equal (errbuf, "domain " S_ABSENT " does not exist on " S_URI);
    assert_null (D->consoles (virt, "nonsense", errbuf, errlen));
    assert_string_equal (errbuf, "consoles: 'nonsense' is not a uuid");
}

//  PNG bytes decoded as 8-bit RGB (caller frees), with the image's size;
//  the PNG must itself be 8-bit RGB when rgb_only.
static unsigned char *
s_png_decode (const unsigned char *png, size_t size, bool rgb_only, unsigned *width_p, unsigned *height_p)
{
    png_image image;
    memset (&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory (&image, png, size))
        fail_msg ("not a PNG: %s", image.message);
    if (rgb_only)
        assert_int_equal (image.format, PNG_FORMAT_RGB);
    image.format = PNG_FORMAT_RGB;
    unsigned char *pixels = (unsigned char *) malloc (PNG_IMAGE_SIZE (image));
    assert_non_null (pixels);
    if (!png_image_finish_read (&image, NULL, pixels, 0, NULL))
        fail_msg ("PNG does not decode: %s", image.message);
    *width_p = image.width;
    *height_p = image.height;
    png_image_free (&image);
    return pixels;
}

static void
test_virt_screenshot (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_virt_t *virt = fx->virt;
    char *errbuf = fx->errbuf;
    size_t errlen = sizeof fx->errbuf;
    unsigned char *png = NULL;
    size_t size = 0;

    //  The test driver streams its own picture, a PNG, which passes
    //  through byte for byte.
    FILE *file = fopen (S_TEST_PICTURE, "rb");
    if (!file)
        fail_msg ("%s is missing (package libvirt0)", S_TEST_PICTURE);
    unsigned char *picture = (unsigned char *) malloc (1 << 20);
    size_t picture_size = fread (picture, 1, 1 << 20, file);
    fclose (file);
    s_spawn (fx, S_UUID_A, NULL);
    assert_int_equal (D->screenshot (virt, S_UUID_A, &png, &size, errbuf, errlen), ZV_OK);
    assert_int_equal (size, picture_size);
    assert_memory_equal (png, picture, size);
    unsigned width = 0, height = 0;
    free (s_png_decode (png, size, false, &width, &height));
    assert_int_equal (width, 1120);
    assert_int_equal (height, 832);
    free (png);
    free (picture);

    //  A paused screen is still there.
    assert_int_equal (D->pause (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (D->screenshot (virt, S_UUID_A, &png, &size, errbuf, errlen), ZV_OK);
    assert_int_equal (size, picture_size);
    free (png);

    //  A stopped one is not (the test driver would give its picture).
    assert_int_equal (D->power_off (virt, S_UUID_A, 0, NULL, errbuf, errlen), ZV_OK);
    assert_int_equal (D->screenshot (virt, S_UUID_A, &png, &size, errbuf, errlen), ZV_ECONFLICT);
    assert_null (png);
    assert_int_equal (size, 0);
    assert_string_equal (errbuf, "screenshot: domain zova-" S_UUID_A " is shutdown");
    assert_int_equal (D->destroy (virt, S_UUID_A, errbuf, errlen), ZV_OK);
    assert_int_equal (D->screenshot (virt, S_UUID_A, &png, &size, errbuf, errlen), ZV_ENOTFOUND);
    assert_null (png);
    assert_int_equal (D->screenshot (virt, "nonsense", &png, &size, errbuf, errlen), ZV_EINVAL);
    assert_null (png);
}

//  A PPM from its header and raster (caller frees).
static unsigned char *
s_ppm (const char *header, const unsigned char *raster, size_t raster_len, size_t *len_p)
{
    size_t header_len = strlen (header);
    unsigned char *ppm = (unsigned char *) malloc (header_len + raster_len + 1);
    memcpy (ppm, header, header_len);
    if (raster_len)
        memcpy (ppm + header_len, raster, raster_len);
    *len_p = header_len + raster_len;
    return ppm;
}

//  Convert, decode and compare with the 8-bit RGB pixels expected.
static void
s_ppm_converts (const char *header, const unsigned char *raster, size_t raster_len,
                unsigned width, unsigned height, const unsigned char *expect)
{
    size_t len = 0, size = 0;
    unsigned char *ppm = s_ppm (header, raster, raster_len, &len);
    unsigned char *png = NULL;
    assert_int_equal (zv_virt_ppm_to_png (ppm, len, &png, &size), ZV_OK);
    assert_non_null (png);
    unsigned got_width = 0, got_height = 0;
    unsigned char *pixels = s_png_decode (png, size, true, &got_width, &got_height);
    assert_int_equal (got_width, width);
    assert_int_equal (got_height, height);
    assert_memory_equal (pixels, expect, (size_t) width * height * 3);
    free (pixels);
    free (png);
    free (ppm);
}

static void
test_virt_ppm_to_png (void **state)
{
    (void) state;
    //  3 x 2, maxval 255 (QEMU's), a comment in the header.
    static const unsigned char pixels [] = {
        255, 0, 0,    0, 255, 0,    0, 0, 255,
        0, 0, 0,      255, 255, 255, 18, 52, 86,
    };
    s_ppm_converts ("P6\n# zova\n3 2\n255\n", pixels, sizeof pixels, 3, 2, pixels);
    //  Bytes past the raster are ignored.
    unsigned char longer [sizeof pixels + 4] = { 0 };
    memcpy (longer, pixels, sizeof pixels);
    s_ppm_converts ("P6 3 2 255 ", longer, sizeof longer, 3, 2, pixels);

    //  Another maxval scales to 8 bits; past 255 samples are two bytes.
    static const unsigned char four_bits [] = { 0, 15, 7,   16, 1, 8 };
    static const unsigned char four_bits_8 [] = { 0, 255, 119,   255, 17, 136 };
    s_ppm_converts ("P6 2 1 15\n", four_bits, sizeof four_bits, 2, 1, four_bits_8);
    static const unsigned char sixteen [] = { 0, 0, 0xff, 0xff, 0x80, 0x00 };
    static const unsigned char sixteen_8 [] = { 0, 255, 128 };
    s_ppm_converts ("P6 1 1 65535\n", sixteen, sizeof sixteen, 1, 1, sixteen_8);

    //  A screen-sized one: the output buffer grows many times over.
    size_t big = 640 * 480 * 3;
    unsigned char *noise = (unsigned char *) malloc (big);
    uint32_t seed = 12345;
    for (size_t index = 0; index < big; index++) {
        seed = seed * 1103515245u + 12345u;
        noise [index] = (unsigned char) (seed >> 16);
    }
    s_ppm_converts ("P6\n640 480\n255\n", noise, big, 640, 480, noise);
    free (noise);

    //  Not a binary PPM, or a broken one: refused, nothing returned.
    static const struct {
        const char *header;
        size_t raster_len;
    } refused [] = {
        { "", 0 },
        { "P5 3 2 255\n", 6 },                  //  greyscale
        { "P3 1 1 255\n", 3 },                  //  ASCII
        { "P6 3 2\n", 18 },                     //  no maxval
        { "P6 3 2 255", 0 },                    //  nothing after maxval
        { "P6 3 2 255\n", 17 },                 //  raster one byte short
        { "P6 0 2 255\n", 0 },
        { "P6 3 0 255\n", 0 },
        { "P6 3 2 0\n", 18 },
        { "P6 1 1 65536\n", 6 },
        { "P6 100000 1 255\n", 300000 },        //  wider than any screen
        { "P6 99999999999999999999 1 255\n", 3 },
        { "P6 -3 2 255\n", 18 },
        { "P6 3 2 255x", 18 },                  //  no whitespace after the header
        { "P6 3 2 # comment to the end", 18 },
    };
    unsigned char *raster = (unsigned char *) calloc (1, 300000);
    for (size_t index = 0; index < sizeof refused / sizeof refused [0]; index++) {
        size_t len = 0, size = 1;
        unsigned char *ppm = s_ppm (refused [index].header, raster, refused [index].raster_len, &len);
        unsigned char *png = (unsigned char *) "x";
        zv_status_t status = zv_virt_ppm_to_png (ppm, len, &png, &size);
        if (status != ZV_EINVAL)
            fail_msg ("'%s' + %zu bytes gives %s", refused [index].header, refused [index].raster_len,
                      zv_status_name (status));
        assert_null (png);
        assert_int_equal (size, 0);
        free (ppm);
    }
    free (raster);
    unsigned char *png = NULL;
    size_t size = 0;
    assert_int_equal (zv_virt_ppm_to_png (NULL, 0, &png, &size), ZV_EINVAL);
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
        cmocka_unit_test_setup_teardown (test_virt_spawn_xml_forbidden_chars, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_two_connections, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_spawn_over_existing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_define, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_unsupported, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_migration_test_driver, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_conflicts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_bad_input, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_consoles, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_virt_screenshot, s_setup, s_teardown),
        cmocka_unit_test (test_virt_ppm_to_png),
        cmocka_unit_test (test_virt_event_thread_restart),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    zv_virt_shutdown ();
    return failed;
}
