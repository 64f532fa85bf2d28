/*  test_compute_migrate.c: what a move's phases do to a host's files, on a
    hypervisor with storage (the path libvirt's test driver never takes).

    The phases' hypervisor calls (actors/compute/migrate_src.c,
    migrate_dst.c) run here as compute runs them on a worker: one op each,
    built as ops.c builds it, against a stub driver table that keeps one
    domain's state in memory (defined, running, the spec it was defined
    with).  Everything else is real: two hosts' instances paths and image
    caches in a fresh folder under /tmp, disks made and read by qemu-img,
    the markers that tell shared storage, the directory set aside and
    moved back.  What travels between the hosts is copied by the test by
    the source's manifest (the pull itself is test_movepull.c's).  Shared
    storage is one instances path for both hosts, with a cache each.
    White-box: it includes compute's internal header.                     */

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

#include "actors/compute/compute.h"
#include "virt/zv_disk.h"
#include "common/zv_sha256.h"
#include "zv_test.h"

#define S_UUID      "4f1c2a0e-8d3b-4c55-9a6e-0b7d2f1e9c31"
#define S_MIGRATION "7a1e3c5d-2b4f-4a6e-8c1d-9e0f1a2b3c4d"
#define S_IMAGE     "7d2b4e6a-1c3f-4a5b-9e8d-0f1a2b3c4d5e"
#define S_MIB       (INT64_C (1) << 20)
#define S_GIB       (INT64_C (1) << 30)

//  ---------------------------------------------------------------------
//  A stub hypervisor: one domain

typedef struct {
    bool defined;
    bool running;
    int defines, starts, destroys, power_offs;
    json_int_t ram_mb;
    char disk [1300], disk_local [1300], disk_swap [1300];
} s_hyper_t;

static s_hyper_t *
s_hyper (zv_virt_t *virt)
{
    return (s_hyper_t *) (void *) virt;
}

static void
s_close (zv_virt_t **self_p)
{
    *self_p = NULL;
}

static const char *
s_domain_type (zv_virt_t *self)
{
    (void) self;
    return "qemu";
}

static zv_status_t
s_define (zv_virt_t *self, const json_t *instance, const zv_domain_spec_t *spec, char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    s_hyper_t *hyper = s_hyper (self);
    hyper->defined = true;
    hyper->defines++;
    hyper->ram_mb = json_integer_value (json_object_get (json_object_get (instance, "flavor"), "ram_mb"));
    snprintf (hyper->disk, sizeof hyper->disk, "%s", spec && spec->disk ? spec->disk : "");
    snprintf (hyper->disk_local, sizeof hyper->disk_local, "%s", spec && spec->disk_local ? spec->disk_local : "");
    snprintf (hyper->disk_swap, sizeof hyper->disk_swap, "%s", spec && spec->disk_swap ? spec->disk_swap : "");
    return ZV_OK;
}

static zv_status_t
s_destroy (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    (void) uuid; (void) errbuf; (void) errlen;
    s_hyper_t *hyper = s_hyper (self);
    hyper->defined = hyper->running = false;
    hyper->destroys++;
    return ZV_OK;
}

static zv_status_t
s_power_off (zv_virt_t *self, const char *uuid, int timeout_s, bool *clean_p, char *errbuf, size_t errlen)
{
    (void) uuid; (void) timeout_s; (void) errbuf; (void) errlen;
    s_hyper_t *hyper = s_hyper (self);
    if (!hyper->defined)
        return ZV_ENOTFOUND;
    hyper->running = false;
    hyper->power_offs++;
    if (clean_p)
        *clean_p = true;
    return ZV_OK;
}

static zv_status_t
s_power_on (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    (void) uuid; (void) errbuf; (void) errlen;
    s_hyper_t *hyper = s_hyper (self);
    if (!hyper->defined)
        return ZV_ENOTFOUND;
    if (hyper->running)
        return ZV_ECONFLICT;
    hyper->running = true;
    hyper->starts++;
    return ZV_OK;
}

static zv_power_state_t
s_power_state (zv_virt_t *self, const char *uuid)
{
    (void) uuid;
    s_hyper_t *hyper = s_hyper (self);
    return !hyper->defined ? ZV_POWER_NOSTATE : hyper->running ? ZV_POWER_RUNNING : ZV_POWER_SHUTDOWN;
}

static const zv_virt_driver_t s_driver = {
    .name = "stub", .close = s_close, .domain_type = s_domain_type, .define = s_define,
    .destroy = s_destroy, .power_off = s_power_off, .power_on = s_power_on, .power_state = s_power_state,
};

//  ---------------------------------------------------------------------
//  Two hosts

typedef struct {
    char instances [300];
    char cache [300];
    s_hyper_t hyper;
} s_host_t;

typedef struct {
    char dir [256];
    s_host_t source;
    s_host_t dest;
    char errbuf [1024];
    json_t *facts;                      //  of the last phase run
} fixture_t;

static void
s_make_file (const char *path, int64_t size, int seed)
{
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    for (int64_t index = 0; index < size; index++)
        fputc ((int) ((index * 7 + seed) & 0xff), file);
    assert_int_equal (fclose (file), 0);
}

static const char *
s_path (const s_host_t *host, const char *name, char *buf)
{
    snprintf (buf, 600, "%s/%s", host->instances, name);
    return buf;
}

static bool
s_exists (const s_host_t *host, const char *name)
{
    char path [600];
    return access (s_path (host, name, path), F_OK) == 0;
}

//  A host whose cache holds the image (the same bytes on every host).
static void
s_host_init (fixture_t *self, s_host_t *host, const char *instances, const char *cache)
{
    memset (host, 0, sizeof *host);
    snprintf (host->instances, sizeof host->instances, "%s/%s", self->dir, instances);
    snprintf (host->cache, sizeof host->cache, "%s/%s", self->dir, cache);
    assert_int_equal (zv_disk_mkdirs (host->instances), 0);
    assert_int_equal (zv_disk_mkdirs (host->cache), 0);
    char base [400];
    snprintf (base, sizeof base, "%s/" S_IMAGE, host->cache);
    if (access (base, F_OK) != 0)
        s_make_file (base, S_MIB, 1);
}

//  The server on the source, built as a build makes it (root overlay of
//  1 GB, an ephemeral disk, a console log), running.
static void
s_server (fixture_t *self, s_host_t *host)
{
    char dir [600], path [700], base [400];
    s_path (host, S_UUID, dir);
    assert_int_equal (zv_disk_mkdirs (dir), 0);
    snprintf (base, sizeof base, "%s/" S_IMAGE, host->cache);
    snprintf (path, sizeof path, "%s/disk", dir);
    assert_int_equal (zv_disk_overlay (path, base, 1, self->errbuf, sizeof self->errbuf), ZV_OK);
    snprintf (path, sizeof path, "%s/disk.local", dir);
    assert_int_equal (zv_disk_blank (path, 16, self->errbuf, sizeof self->errbuf), ZV_OK);
    snprintf (path, sizeof path, "%s/console.log", dir);
    s_make_file (path, 3000, 9);
    snprintf (path, sizeof path, "%s/libvirt.xml", dir);
    s_make_file (path, 100, 5);
    host->hyper.defined = host->hyper.running = true;
}

static json_t *
s_instance (int disk_gb, int ephemeral_gb, int swap_mb, int ram_mb)
{
    return json_pack ("{s:s, s:s, s:{s:s, s:i, s:i, s:i, s:i, s:i}, s:{s:s, s:s}}", "uuid", S_UUID,
                      "name", "web-1", "flavor", "name", "f", "vcpus", 1, "ram_mb", ram_mb, "disk_gb", disk_gb,
                      "ephemeral_gb", ephemeral_gb, "swap_mb", swap_mb, "image", "id", S_IMAGE, "name", "img");
}

//  Run phase on host as compute would: an op of the phase's row, its
//  files' paths as zv_compute_op_start fills them.  shared: -1 when the
//  cast does not say.  The facts it learnt are kept in self->facts.
static zv_status_t
s_phase (fixture_t *self, s_host_t *host, const char *phase, int shared, bool same_host, json_t *instance)
{
    zv_compute_op_t *op = (zv_compute_op_t *) zmalloc (sizeof (zv_compute_op_t));
    op->action = zv_compute_action_phase (phase);
    assert_non_null (op->action);
    op->driver = &s_driver;
    op->virt = (zv_virt_t *) (void *) &host->hyper;
    op->instance = instance;
    op->images = json_object ();
    snprintf (op->uuid, sizeof op->uuid, S_UUID);
    snprintf (op->rq, sizeof op->rq, "req-test");
    op->real = true;
    op->shutdown_timeout_s = 1;
    snprintf (op->dir, sizeof op->dir, "%s/" S_UUID, host->instances);
    snprintf (op->disk, sizeof op->disk, "%s/disk", op->dir);
    snprintf (op->console_log, sizeof op->console_log, "%s/console.log", op->dir);
    snprintf (op->base, sizeof op->base, "%s/" S_IMAGE, host->cache);
    zv_compute_move_t *move = &op->move;
    move->migration = json_pack ("{s:s, s:s}", "uuid", S_MIGRATION, "phase", phase);
    snprintf (move->id, sizeof move->id, S_MIGRATION);
    snprintf (move->key, sizeof move->key, S_MIGRATION "/%s", phase);
    move->was_running = true;
    move->shared = shared;
    move->same_host = same_host;
    snprintf (move->instances_path, sizeof move->instances_path, "%s", host->instances);
    snprintf (move->resize_dir, sizeof move->resize_dir, "%s/" S_UUID "_resize", host->instances);
    move->timer = -1;
    zv_status_t status = op->action->run (op);
    snprintf (self->errbuf, sizeof self->errbuf, "%s", op->errbuf);
    json_decref (self->facts);
    self->facts = json_incref (move->facts);
    zv_compute_op_destroy (&op);
    return status;
}

//  Carry the source's files to the destination by its manifest, each
//  checked against its sha256 as the pull checks it.
static void
s_carry (fixture_t *self, const json_t *files)
{
    char from [700], to [700], hex [65];
    size_t index;
    const json_t *file;
    json_array_foreach (files, index, file) {
        const char *name = json_string_value (json_object_get (file, "name"));
        snprintf (from, sizeof from, "%s/" S_UUID "_resize/%s", self->source.instances, name);
        snprintf (to, sizeof to, "%s/" S_UUID "/%s", self->dest.instances, name);
        char command [1500];
        snprintf (command, sizeof command, "cp '%s' '%s'", from, to);
        assert_int_equal (system (command), 0);
        int64_t size = 0;
        assert_int_equal (zv_sha256_file (to, hex, &size), 0);
        assert_string_equal (hex, json_string_value (json_object_get (file, "sha256")));
        assert_int_equal (size, json_integer_value (json_object_get (file, "size")));
    }
}

static json_t *
s_info (const s_host_t *host, const char *name)
{
    char path [600];
    snprintf (path, sizeof path, "%s/" S_UUID "/%s", host->instances, name);
    json_t *info = zv_disk_info (path);
    assert_non_null (info);
    return info;
}

static const char *
s_backing (const s_host_t *host, char *buf)
{
    json_t *info = s_info (host, "disk");
    snprintf (buf, 400, "%s", json_string_value (json_object_get (info, "backing-filename")));
    json_decref (info);
    return buf;
}

static int
s_markers (const s_host_t *host)
{
    static const char *names [] = { ".zova-shared-" S_MIGRATION, ".zova-shared-seen-" S_MIGRATION,
                                    ".zova-made-" S_MIGRATION };
    int count = 0;
    for (size_t index = 0; index < 3; index++)
        count += s_exists (host, names [index]);
    return count;
}

static int
s_setup (void **state)
{
    fixture_t *self = (fixture_t *) calloc (1, sizeof *self);
    assert_non_null (self);
    snprintf (self->dir, sizeof self->dir, "/tmp/zv-test-compute-migrate-XXXXXX");
    assert_non_null (mkdtemp (self->dir));
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    json_decref (self->facts);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", self->dir);
    assert_int_equal (system (command), 0);
    free (self);
    return 0;
}

//  ---------------------------------------------------------------------
//  Tests

//  Local storage, a resize to a bigger flavor, confirmed.
static void
test_migrate_local_confirm (void **state)
{
    fixture_t *self = *state;
    s_host_init (self, &self->source, "a/instances", "a/instances/_base");
    s_host_init (self, &self->dest, "b/instances", "b/cache");
    s_server (self, &self->source);
    char buf [400];

    //  prepare: the destination's directory (made: the marker says so)
    //  and the marker a source sharing its storage would see.
    assert_int_equal (s_phase (self, &self->dest, "prepare", -1, false, s_instance (2, 1, 16, 4096)), ZV_OK);
    assert_true (s_exists (&self->dest, S_UUID));
    assert_true (s_exists (&self->dest, ".zova-made-" S_MIGRATION));
    assert_true (s_exists (&self->dest, ".zova-shared-" S_MIGRATION));
    assert_string_equal (json_string_value (json_object_get (self->facts, "marker")), ".zova-shared-" S_MIGRATION);
    assert_int_equal (s_phase (self, &self->dest, "prepare", -1, false, s_instance (2, 1, 16, 4096)), ZV_OK);

    //  source: no marker here, so local storage: off, set aside, listed.
    assert_int_equal (s_phase (self, &self->source, "source", -1, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    assert_false (self->source.hyper.running);
    assert_true (self->source.hyper.defined);
    assert_false (s_exists (&self->source, S_UUID));
    assert_true (s_exists (&self->source, S_UUID "_resize"));
    assert_true (json_is_false (json_object_get (self->facts, "shared")));
    json_t *files = json_incref (json_object_get (self->facts, "files"));
    assert_int_equal (json_array_size (files), 3);
    assert_string_equal (json_string_value (json_object_get (json_array_get (files, 0), "name")), "disk");
    assert_string_equal (json_string_value (json_object_get (json_array_get (files, 1), "name")), "disk.local");
    assert_string_equal (json_string_value (json_object_get (json_array_get (files, 2), "name")), "console.log");
    //  Again (its report lost): nothing moves twice, the same manifest.
    assert_int_equal (s_phase (self, &self->source, "source", -1, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    assert_true (json_equal (files, json_object_get (self->facts, "files")));

    //  finish: the carried root disk is rebased on this host's cache and
    //  grown to 2 GB; the swap the new flavor adds is made; defined with
    //  the new flavor, started (it was running).
    s_carry (self, files);
    assert_int_equal (s_phase (self, &self->dest, "finish", 0, false, s_instance (2, 1, 16, 4096)), ZV_OK);
    char expected [400];
    snprintf (expected, sizeof expected, "%s/" S_IMAGE, self->dest.cache);
    assert_string_equal (s_backing (&self->dest, buf), expected);
    json_t *info = s_info (&self->dest, "disk");
    assert_int_equal (json_integer_value (json_object_get (info, "virtual-size")), 2 * S_GIB);
    json_decref (info);
    assert_true (s_exists (&self->dest, S_UUID "/disk.swap"));
    assert_true (self->dest.hyper.running);
    assert_int_equal (self->dest.hyper.ram_mb, 4096);
    assert_true (zv_test_has (self->dest.hyper.disk, self->dest.instances));
    assert_true (zv_test_has (self->dest.hyper.disk_local, "/disk.local"));
    assert_true (zv_test_has (self->dest.hyper.disk_swap, "/disk.swap"));
    assert_int_equal (s_markers (&self->dest), 0);
    //  Again: it runs, nothing is touched.
    int defines = self->dest.hyper.defines;
    assert_int_equal (s_phase (self, &self->dest, "finish", 0, false, s_instance (2, 1, 16, 4096)), ZV_OK);
    assert_int_equal (self->dest.hyper.defines, defines);
    assert_int_equal (self->dest.hyper.starts, 1);

    //  confirm: the source forgets it (twice is fine).
    assert_int_equal (s_phase (self, &self->source, "confirm", 0, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    assert_false (self->source.hyper.defined);
    assert_false (s_exists (&self->source, S_UUID "_resize"));
    assert_int_equal (s_phase (self, &self->source, "confirm", 0, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    assert_true (s_exists (&self->dest, S_UUID "/disk"));
    json_decref (files);
}

//  Local storage, reverted after the finish: the destination removes what
//  it made, the source moves its files back and starts the old flavor.
static void
test_migrate_local_revert (void **state)
{
    fixture_t *self = *state;
    s_host_init (self, &self->source, "a/instances", "a/instances/_base");
    s_host_init (self, &self->dest, "b/instances", "b/instances/_base");
    s_server (self, &self->source);
    assert_int_equal (s_phase (self, &self->dest, "prepare", -1, false, s_instance (2, 1, 0, 4096)), ZV_OK);
    assert_int_equal (s_phase (self, &self->source, "source", -1, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    json_t *files = json_incref (json_object_get (self->facts, "files"));
    s_carry (self, files);
    json_decref (files);
    assert_int_equal (s_phase (self, &self->dest, "finish", 0, false, s_instance (2, 1, 0, 4096)), ZV_OK);

    assert_int_equal (s_phase (self, &self->dest, "revert", 0, false, s_instance (2, 1, 0, 4096)), ZV_OK);
    assert_false (self->dest.hyper.defined);
    assert_false (s_exists (&self->dest, S_UUID));
    assert_int_equal (s_phase (self, &self->dest, "revert", 0, false, s_instance (2, 1, 0, 4096)), ZV_OK);

    assert_int_equal (s_phase (self, &self->source, "revert_source", 0, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    assert_true (s_exists (&self->source, S_UUID "/disk"));
    assert_false (s_exists (&self->source, S_UUID "_resize"));
    assert_true (self->source.hyper.running);
    assert_int_equal (self->source.hyper.ram_mb, 2048);
    assert_true (zv_test_has (self->source.hyper.disk_local, "/disk.local"));
    json_t *info = s_info (&self->source, "disk");
    assert_int_equal (json_integer_value (json_object_get (info, "virtual-size")), S_GIB);
    json_decref (info);
    int starts = self->source.hyper.starts;
    assert_int_equal (s_phase (self, &self->source, "revert_source", 0, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    assert_int_equal (self->source.hyper.starts, starts);
}

//  A move that fails before the source's phase: cleanup_dest removes only
//  the directory the destination made; the guest on the source runs on.
//  A directory it did not make (a stale one) stays.
static void
test_migrate_rollback_early (void **state)
{
    fixture_t *self = *state;
    s_host_init (self, &self->source, "a/instances", "a/instances/_base");
    s_host_init (self, &self->dest, "b/instances", "b/instances/_base");
    s_server (self, &self->source);
    assert_int_equal (s_phase (self, &self->dest, "prepare", -1, false, s_instance (1, 0, 0, 2048)), ZV_OK);
    assert_int_equal (s_phase (self, &self->dest, "cleanup_dest", -1, false, s_instance (1, 0, 0, 2048)), ZV_OK);
    assert_false (s_exists (&self->dest, S_UUID));
    assert_int_equal (s_markers (&self->dest), 0);
    assert_int_equal (s_phase (self, &self->source, "restore_source", -1, false, s_instance (1, 0, 0, 2048)), ZV_OK);
    assert_true (self->source.hyper.running);
    assert_int_equal (self->source.hyper.defines, 0);
    assert_true (s_exists (&self->source, S_UUID "/disk"));

    char dir [600];
    assert_int_equal (zv_disk_mkdirs (s_path (&self->dest, S_UUID, dir)), 0);
    assert_int_equal (s_phase (self, &self->dest, "prepare", -1, false, s_instance (1, 0, 0, 2048)), ZV_OK);
    assert_false (s_exists (&self->dest, ".zova-made-" S_MIGRATION));
    assert_int_equal (s_phase (self, &self->dest, "cleanup_dest", -1, false, s_instance (1, 0, 0, 2048)), ZV_OK);
    assert_true (s_exists (&self->dest, S_UUID));
}

//  Shared storage (one instances path, a cache each): the source sees the
//  marker, moves nothing and lists nothing, and knows it on a second run;
//  the disk follows each host's cache; a revert keeps the files.
static void
test_migrate_shared (void **state)
{
    fixture_t *self = *state;
    s_host_init (self, &self->source, "shared", "cache-a");
    s_host_init (self, &self->dest, "shared", "cache-b");
    s_server (self, &self->source);
    char buf [400], expected [400];
    assert_int_equal (s_phase (self, &self->dest, "prepare", -1, false, s_instance (2, 1, 0, 4096)), ZV_OK);
    assert_false (s_exists (&self->dest, ".zova-made-" S_MIGRATION));
    assert_int_equal (s_phase (self, &self->source, "source", -1, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    assert_true (json_is_true (json_object_get (self->facts, "shared")));
    assert_int_equal (json_array_size (json_object_get (self->facts, "files")), 0);
    assert_true (s_exists (&self->source, S_UUID));
    assert_false (s_exists (&self->source, S_UUID "_resize"));
    assert_false (self->source.hyper.running);
    //  Its report lost, cast again: still shared, still in place.
    assert_int_equal (s_phase (self, &self->source, "source", -1, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    assert_true (json_is_true (json_object_get (self->facts, "shared")));
    assert_false (s_exists (&self->source, S_UUID "_resize"));

    assert_int_equal (s_phase (self, &self->dest, "finish", 1, false, s_instance (2, 1, 0, 4096)), ZV_OK);
    snprintf (expected, sizeof expected, "%s/" S_IMAGE, self->dest.cache);
    assert_string_equal (s_backing (&self->dest, buf), expected);
    assert_true (self->dest.hyper.running);
    assert_int_equal (s_markers (&self->dest), 0);

    assert_int_equal (s_phase (self, &self->dest, "revert", 1, false, s_instance (2, 1, 0, 4096)), ZV_OK);
    assert_false (self->dest.hyper.defined);
    assert_true (s_exists (&self->dest, S_UUID "/disk"));
    assert_int_equal (s_phase (self, &self->source, "revert_source", 1, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    snprintf (expected, sizeof expected, "%s/" S_IMAGE, self->source.cache);
    assert_string_equal (s_backing (&self->source, buf), expected);
    assert_true (self->source.hyper.running);
    assert_int_equal (self->source.hyper.ram_mb, 2048);
}

//  Evacuate: local storage builds the disks from the image (the data is
//  lost); shared storage keeps the instance's own.
static void
test_migrate_rebuild (void **state)
{
    fixture_t *self = *state;
    s_host_init (self, &self->dest, "b/instances", "b/instances/_base");
    assert_int_equal (s_phase (self, &self->dest, "rebuild", -1, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    assert_true (json_is_false (json_object_get (self->facts, "shared")));
    assert_true (s_exists (&self->dest, S_UUID "/disk"));
    assert_true (s_exists (&self->dest, S_UUID "/disk.local"));
    assert_false (s_exists (&self->dest, ".zova-made-" S_MIGRATION));
    assert_true (self->dest.hyper.running);

    //  Shared: the source's disks are there (written with a pattern).
    memset (&self->dest.hyper, 0, sizeof self->dest.hyper);
    s_host_init (self, &self->source, "shared", "cache-a");
    s_host_init (self, &self->dest, "shared", "cache-b");
    s_server (self, &self->source);
    char path [700], hex [65], again [65];
    snprintf (path, sizeof path, "%s/" S_UUID "/disk.local", self->dest.instances);
    assert_int_equal (zv_sha256_file (path, hex, NULL), 0);
    assert_int_equal (s_phase (self, &self->dest, "rebuild", -1, false, s_instance (1, 1, 0, 2048)), ZV_OK);
    assert_true (json_is_true (json_object_get (self->facts, "shared")));
    assert_int_equal (zv_sha256_file (path, again, NULL), 0);
    assert_string_equal (hex, again);
    assert_true (self->dest.hyper.running);
    char buf [400], expected [400];
    snprintf (expected, sizeof expected, "%s/" S_IMAGE, self->dest.cache);
    assert_string_equal (s_backing (&self->dest, buf), expected);
}

//  What a phase refuses: a source with no directory, a revert that finds
//  both directories, a finish with nothing carried.
static void
test_migrate_refusals (void **state)
{
    fixture_t *self = *state;
    s_host_init (self, &self->source, "a/instances", "a/instances/_base");
    s_host_init (self, &self->dest, "b/instances", "b/instances/_base");
    self->source.hyper.defined = true;
    assert_int_equal (s_phase (self, &self->source, "source", -1, false, s_instance (1, 0, 0, 2048)),
                      ZV_ENOTFOUND);
    assert_true (zv_test_has (self->errbuf, "cannot set"));

    s_server (self, &self->source);
    char dir [600];
    assert_int_equal (zv_disk_mkdirs (s_path (&self->source, S_UUID "_resize", dir)), 0);
    assert_int_equal (s_phase (self, &self->source, "revert_source", 0, false, s_instance (1, 0, 0, 2048)),
                      ZV_ECONFLICT);
    assert_true (zv_test_has (self->errbuf, "left as they are"));

    assert_int_equal (s_phase (self, &self->dest, "prepare", -1, false, s_instance (1, 0, 0, 2048)), ZV_OK);
    assert_int_equal (s_phase (self, &self->dest, "finish", 0, false, s_instance (1, 0, 0, 2048)), ZV_ENOTFOUND);
    assert_true (zv_test_has (self->errbuf, "nothing was carried"));
    assert_false (self->dest.hyper.defined);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_migrate_local_confirm, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_migrate_local_revert, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_migrate_rollback_early, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_migrate_shared, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_migrate_rebuild, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_migrate_refusals, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
