/*  test_imageclean.c: which base files of a host's image cache are unused
    (zv_imageclean).

    The verdicts are a table (in use, age against the minimum) checked row
    by row.  The reads of the disks run against a host directory the test
    makes under a fresh folder in /tmp: base files in <instances>/_base,
    instance directories whose disks are real qcow2 overlays made with
    qemu-img (zv_disk), absolute and relative, and libvirt.xml files that
    boot kernels and ramdisks from the cache, as compute writes them.        */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virt/zv_imageclean.h"
#include "virt/zv_disk.h"
#include "zv_test.h"

typedef struct {
    char dir [256];
    char instances [300];
    char cache [320];
} fixture_t;

static int
s_remove_one (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info;
    (void) flag;
    (void) ftw;
    return remove (path);
}

static int
s_setup (void **state)
{
    fixture_t *self = (fixture_t *) calloc (1, sizeof *self);
    assert_non_null (self);
    snprintf (self->dir, sizeof self->dir, "/tmp/zv-test-imageclean-XXXXXX");
    assert_non_null (mkdtemp (self->dir));
    snprintf (self->instances, sizeof self->instances, "%s/instances", self->dir);
    snprintf (self->cache, sizeof self->cache, "%s/_base", self->instances);
    assert_int_equal (zv_disk_mkdirs (self->cache), 0);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    assert_int_equal (nftw (self->dir, s_remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    free (self);
    return 0;
}

//  A base file of the cache (a few raw bytes), its id into id.
static void
s_base (fixture_t *self, char id [ZV_UUID_LEN + 1])
{
    zv_uuid_new (id);
    char path [400];
    snprintf (path, sizeof path, "%s/%s", self->cache, id);
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    fputs ("raw image bytes", file);
    assert_int_equal (fclose (file), 0);
}

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    fputs (text, file);
    assert_int_equal (fclose (file), 0);
}

static const char *
s_where (const json_t *ids, const char *id)
{
    return json_string_value (json_object_get (ids, id));
}

//  ---------------------------------------------------------------------

//  The verdict on one file, row by row: in use wins over any age; unused
//  goes once min_age seconds old, not a second before; a file from the
//  future is young.
static void
test_imageclean_verdict (void **state)
{
    (void) state;
    static const struct {
        bool used;
        int64_t mtime, now, min_age;
        zv_imageclean_verdict_t verdict;
    } rows [] = {
        { true,  0,    100000, 86400, ZV_IMAGECLEAN_IN_USE },
        { true,  1000, 1000,   0,     ZV_IMAGECLEAN_IN_USE },
        { false, 1000, 1000,   0,     ZV_IMAGECLEAN_REMOVE },
        { false, 1000, 1002,   3,     ZV_IMAGECLEAN_YOUNG },
        { false, 1000, 1003,   3,     ZV_IMAGECLEAN_REMOVE },
        { false, 1000, 87399,  86400, ZV_IMAGECLEAN_YOUNG },
        { false, 1000, 87400,  86400, ZV_IMAGECLEAN_REMOVE },
        { false, 5000, 1000,   0,     ZV_IMAGECLEAN_YOUNG },
    };
    for (size_t index = 0; index < sizeof rows / sizeof rows [0]; index++) {
        zv_imageclean_verdict_t got = zv_imageclean_verdict (rows [index].used, rows [index].mtime,
                                                             rows [index].now, rows [index].min_age);
        if (got != rows [index].verdict)
            fail_msg ("row %zu: %s, expected %s", index, zv_imageclean_verdict_name (got),
                      zv_imageclean_verdict_name (rows [index].verdict));
    }
    assert_string_equal (zv_imageclean_verdict_name (ZV_IMAGECLEAN_COUNT), "?");

    json_t *files = json_pack ("{s:I, s:I, s:I}", "a", (json_int_t) 100, "b", (json_int_t) 100,
                               "c", (json_int_t) 950);
    json_t *used = json_pack ("{s:s}", "a", "x/disk");
    json_t *verdicts = zv_imageclean_select (files, used, 1000, 60);
    json_t *expected = json_pack ("{s:s, s:s, s:s}", "a", "in_use", "b", "remove", "c", "young");
    assert_true (json_equal (verdicts, expected));
    json_decref (expected);
    json_decref (verdicts);
    json_decref (used);
    json_decref (files);
}

//  The base files: canonical ids only, with their mtime; no folder, none.
static void
test_imageclean_list (void **state)
{
    fixture_t *self = *state;
    char one [ZV_UUID_LEN + 1], two [ZV_UUID_LEN + 1], path [400];
    s_base (self, one);
    s_base (self, two);
    snprintf (path, sizeof path, "%s/%s", self->cache, two);
    struct timespec times [2] = { { 1234567, 0 }, { 1234567, 0 } };
    assert_int_equal (utimensat (AT_FDCWD, path, times, 0), 0);
    //  What is no base file: a download's .part, a folder, a stray name, a
    //  symbolic link named like an image.
    snprintf (path, sizeof path, "%s/%s.part", self->cache, one);
    s_write (path, "half");
    char other [ZV_UUID_LEN + 1];
    zv_uuid_new (other);
    snprintf (path, sizeof path, "%s/%s", self->cache, other);
    assert_int_equal (mkdir (path, 0755), 0);
    snprintf (path, sizeof path, "%s/notes.txt", self->cache);
    s_write (path, "x");
    zv_uuid_new (other);
    snprintf (path, sizeof path, "%s/%s", self->cache, other);
    assert_int_equal (symlink ("/etc/hostname", path), 0);

    json_t *files = zv_imageclean_list (self->cache);
    assert_non_null (files);
    assert_int_equal (json_object_size (files), 2);
    assert_int_equal (json_integer_value (json_object_get (files, two)), 1234567);
    assert_true (json_integer_value (json_object_get (files, one)) > 1234567);
    json_decref (files);

    snprintf (path, sizeof path, "%s/none", self->dir);
    files = zv_imageclean_list (path);
    assert_non_null (files);
    assert_int_equal (json_object_size (files), 0);
    json_decref (files);
}

//  The backing file of a qcow2 header, without qemu-img.
static void
test_imageclean_backing (void **state)
{
    fixture_t *self = *state;
    char id [ZV_UUID_LEN + 1], base [400], disk [400], blank [400], backing [1024], errbuf [1024];
    s_base (self, id);
    snprintf (base, sizeof base, "%s/%s", self->cache, id);
    snprintf (disk, sizeof disk, "%s/disk", self->dir);
    snprintf (blank, sizeof blank, "%s/blank", self->dir);
    assert_int_equal (zv_disk_overlay (disk, base, 1, errbuf, sizeof errbuf), ZV_OK);
    assert_int_equal (zv_imageclean_backing (disk, backing, sizeof backing), 0);
    assert_string_equal (backing, base);
    //  Too small a buffer is no answer, not a cut name.
    assert_int_equal (zv_imageclean_backing (disk, backing, 10), -1);
    //  A qcow2 of its own, a raw file, nothing.
    assert_int_equal (zv_disk_blank (blank, 1, errbuf, sizeof errbuf), ZV_OK);
    assert_int_equal (zv_imageclean_backing (blank, backing, sizeof backing), -1);
    assert_int_equal (zv_imageclean_backing (base, backing, sizeof backing), -1);
    assert_int_equal (zv_imageclean_backing ("/nonexistent/disk", backing, sizeof backing), -1);
}

//  Paths of the cache in a domain's XML, as compute writes them: elements
//  and attributes; not a longer folder that ends the same, not a
//  download's file, not another folder.
static void
test_imageclean_xml_ids (void **state)
{
    (void) state;
    const char *cache = "/srv/zova/instances/_base/";
    const char *kernel = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
    const char *initrd = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    const char *own = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a";
    const char *source = "3e4f5a6b-7c8d-4e9f-8a1b-2c3d4e5f6a7b";
    char xml [4096];
    snprintf (xml, sizeof xml,
              "<domain type='qemu'>\n  <metadata>\n    <zova:instance>\n"
              "      <zova:rescued kernel='/srv/zova/instances/_base/%s'/>\n    </zova:instance>\n"
              "  </metadata>\n  <os>\n    <kernel>/srv/zova/instances/_base/%s</kernel>\n"
              "    <initrd>/srv/zova/instances/_base/%s</initrd>\n  </os>\n"
              "  <disk><source file=\"/srv/zova/instances/_base/%s\"/></disk>\n"
              "  <disk><source file='/other/srv/zova/instances/_base/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'/></disk>\n"
              "  <disk><source file='/srv/zova/instances/_base/8b7c6d5e-4f3a-4b2c-9d1e-0f9a8b7c6d5e.part'/></disk>\n"
              "  <disk><source file='/srv/zova/instances/7c6d5e4f-3a2b-4c1d-8e0f-9a8b7c6d5e4f/disk'/></disk>\n"
              "</domain>\n", own, kernel, initrd, source);
    json_t *ids = json_object ();
    zv_imageclean_xml_ids (xml, cache, "u1/libvirt.xml", ids);
    assert_int_equal (json_object_size (ids), 4);
    assert_string_equal (s_where (ids, kernel), "u1/libvirt.xml");
    assert_non_null (s_where (ids, initrd));
    assert_non_null (s_where (ids, own));
    assert_non_null (s_where (ids, source));
    //  The first to name one keeps it.
    zv_imageclean_xml_ids (xml, "/srv/zova/instances/_base", "u2/libvirt.xml", ids);
    assert_int_equal (json_object_size (ids), 4);
    assert_string_equal (s_where (ids, kernel), "u1/libvirt.xml");
    zv_imageclean_xml_ids ("", cache, "u3/libvirt.xml", ids);
    zv_imageclean_xml_ids ("<kernel>/srv/zova/instances/_base/</kernel>", cache, "u3/libvirt.xml", ids);
    assert_int_equal (json_object_size (ids), 4);
    json_decref (ids);
}

//  A host: the instances' disks (absolute and relative backing files, a
//  rescue disk, a disk a move set aside), their XML (kernel, ramdisk), and
//  what is no instance of it.
static void
test_imageclean_in_use (void **state)
{
    fixture_t *self = *state;
    char root [ZV_UUID_LEN + 1], rescue [ZV_UUID_LEN + 1], moved [ZV_UUID_LEN + 1], relative [ZV_UUID_LEN + 1];
    char kernel [ZV_UUID_LEN + 1], ramdisk [ZV_UUID_LEN + 1], unused [ZV_UUID_LEN + 1], stray [ZV_UUID_LEN + 1];
    s_base (self, root);
    s_base (self, rescue);
    s_base (self, moved);
    s_base (self, relative);
    s_base (self, kernel);
    s_base (self, ramdisk);
    s_base (self, unused);
    s_base (self, stray);
    char u1 [ZV_UUID_LEN + 1], u2 [ZV_UUID_LEN + 1], u3 [ZV_UUID_LEN + 1];
    zv_uuid_new (u1);
    zv_uuid_new (u2);
    zv_uuid_new (u3);
    char dir [400], path [500], base [500], errbuf [1024];

    //  u1: root disk and rescue disk on the cache, its XML boots a kernel
    //  and ramdisk from it; an ephemeral disk of its own.
    snprintf (dir, sizeof dir, "%s/%s", self->instances, u1);
    assert_int_equal (zv_disk_mkdirs (dir), 0);
    snprintf (path, sizeof path, "%s/disk", dir);
    snprintf (base, sizeof base, "%s/%s", self->cache, root);
    assert_int_equal (zv_disk_overlay (path, base, 1, errbuf, sizeof errbuf), ZV_OK);
    snprintf (path, sizeof path, "%s/disk.rescue", dir);
    snprintf (base, sizeof base, "%s/%s", self->cache, rescue);
    assert_int_equal (zv_disk_overlay (path, base, 1, errbuf, sizeof errbuf), ZV_OK);
    snprintf (path, sizeof path, "%s/disk.local", dir);
    assert_int_equal (zv_disk_blank (path, 1, errbuf, sizeof errbuf), ZV_OK);
    char xml [2048];
    snprintf (xml, sizeof xml, "<domain>\n  <os>\n    <kernel>%s/%s</kernel>\n    <initrd>%s/%s</initrd>\n"
              "  </os>\n</domain>\n", self->cache, kernel, self->cache, ramdisk);
    snprintf (path, sizeof path, "%s/libvirt.xml", dir);
    s_write (path, xml);

    //  u2's files, set aside by a move: <uuid>_resize.
    snprintf (dir, sizeof dir, "%s/%s_resize", self->instances, u2);
    assert_int_equal (zv_disk_mkdirs (dir), 0);
    snprintf (path, sizeof path, "%s/disk", dir);
    snprintf (base, sizeof base, "%s/%s", self->cache, moved);
    assert_int_equal (zv_disk_overlay (path, base, 1, errbuf, sizeof errbuf), ZV_OK);

    //  u3: a backing file named relative to the disk's folder, as qemu
    //  resolves it.
    snprintf (dir, sizeof dir, "%s/%s", self->instances, u3);
    assert_int_equal (zv_disk_mkdirs (dir), 0);
    snprintf (path, sizeof path, "qemu-img create -q -f qcow2 -F raw -b ../_base/%s %s/disk >/dev/null 2>&1",
              relative, dir);
    assert_int_equal (system (path), 0);

    //  No instance: a marker file at the top, the cache's own files (a
    //  qcow2 there is an image, not an instance's disk), a hidden folder,
    //  a symbolic link to a folder with a disk on the cache.
    snprintf (path, sizeof path, "%s/.zova-shared-x", self->instances);
    s_write (path, "marker");
    snprintf (dir, sizeof dir, "%s/.hidden", self->instances);
    assert_int_equal (zv_disk_mkdirs (dir), 0);
    snprintf (path, sizeof path, "%s/disk", dir);
    snprintf (base, sizeof base, "%s/%s", self->cache, stray);
    assert_int_equal (zv_disk_overlay (path, base, 1, errbuf, sizeof errbuf), ZV_OK);
    snprintf (path, sizeof path, "%s/linked", self->instances);
    assert_int_equal (symlink (dir, path), 0);

    json_t *ids = zv_imageclean_in_use (self->instances, self->cache);
    assert_non_null (ids);
    char where [200];
    snprintf (where, sizeof where, "%s/disk", u1);
    assert_string_equal (s_where (ids, root), where);
    snprintf (where, sizeof where, "%s/disk.rescue", u1);
    assert_string_equal (s_where (ids, rescue), where);
    snprintf (where, sizeof where, "%s/libvirt.xml", u1);
    assert_string_equal (s_where (ids, kernel), where);
    assert_string_equal (s_where (ids, ramdisk), where);
    snprintf (where, sizeof where, "%s_resize/disk", u2);
    assert_string_equal (s_where (ids, moved), where);
    snprintf (where, sizeof where, "%s/disk", u3);
    assert_string_equal (s_where (ids, relative), where);
    assert_null (s_where (ids, unused));
    assert_null (s_where (ids, stray));
    assert_int_equal (json_object_size (ids), 6);
    json_decref (ids);

    //  Nothing is in use when there is no cache or no instances folder.
    snprintf (path, sizeof path, "%s/nowhere", self->dir);
    ids = zv_imageclean_in_use (self->instances, path);
    assert_int_equal (json_object_size (ids), 0);
    json_decref (ids);
    ids = zv_imageclean_in_use (path, self->cache);
    assert_int_equal (json_object_size (ids), 0);
    json_decref (ids);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_imageclean_verdict),
        cmocka_unit_test (test_imageclean_xml_ids),
        cmocka_unit_test_setup_teardown (test_imageclean_list, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imageclean_backing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imageclean_in_use, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
