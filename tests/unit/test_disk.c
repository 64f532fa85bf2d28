/*  test_disk.c: a compute host's disk files (zv_disk), made by the real
    qemu-img in a fresh folder under /tmp per test, and read back with
    zv_disk_info.                                                           */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virt/zv_disk.h"
#include "zv_test.h"

#define S_MIB (INT64_C (1) << 20)
#define S_GIB (INT64_C (1) << 30)

typedef struct {
    char dir [256];
    char path [512];                    //  scratch path
    char errbuf [2048];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *self = (fixture_t *) calloc (1, sizeof *self);
    assert_non_null (self);
    snprintf (self->dir, sizeof self->dir, "/tmp/zv-test-disk-XXXXXX");
    assert_non_null (mkdtemp (self->dir));
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    assert_int_equal (zv_disk_remove_dir (self->dir), 0);
    free (self);
    return 0;
}

static const char *
s_path (fixture_t *self, const char *name)
{
    snprintf (self->path, sizeof self->path, "%s/%s", self->dir, name);
    return self->path;
}

//  A file of size bytes (a pattern, so a conversion can be compared).
static void
s_make_file (const char *path, int64_t size)
{
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    for (int64_t index = 0; index < size; index++)
        fputc ((int) ((index * 7 + index / 4096) & 0xff), file);
    assert_int_equal (fclose (file), 0);
}

static json_int_t
s_virtual_size (json_t *info)
{
    return json_integer_value (json_object_get (info, "virtual-size"));
}

static const char *
s_format (json_t *info)
{
    const char *format = json_string_value (json_object_get (info, "format"));
    return format ? format : "";
}

static void
test_disk_blank (void **state)
{
    fixture_t *self = *state;
    char disk [512];
    snprintf (disk, sizeof disk, "%s", s_path (self, "disk.local"));
    assert_int_equal (zv_disk_blank (disk, 64, self->errbuf, sizeof self->errbuf), ZV_OK);
    json_t *info = zv_disk_info (disk);
    assert_non_null (info);
    assert_string_equal (s_format (info), "qcow2");
    assert_int_equal (s_virtual_size (info), 64 * S_MIB);
    assert_null (json_object_get (info, "backing-filename"));
    json_decref (info);
    assert_int_equal (zv_disk_blank (disk, 0, self->errbuf, sizeof self->errbuf), ZV_EINVAL);
}

//  The root disk: a qcow2 overlay on the raw image, the image's size or larger.
static void
test_disk_overlay (void **state)
{
    fixture_t *self = *state;
    char base [512], disk [512], bigger [512];
    snprintf (base, sizeof base, "%s", s_path (self, "base.raw"));
    snprintf (disk, sizeof disk, "%s", s_path (self, "disk"));
    snprintf (bigger, sizeof bigger, "%s", s_path (self, "disk.big"));
    s_make_file (base, 3 * S_MIB + 512);

    assert_int_equal (zv_disk_overlay (disk, base, 0, self->errbuf, sizeof self->errbuf), ZV_OK);
    json_t *info = zv_disk_info (disk);
    assert_non_null (info);
    assert_string_equal (s_format (info), "qcow2");
    assert_int_equal (s_virtual_size (info), 3 * S_MIB + 512);
    assert_string_equal (json_string_value (json_object_get (info, "backing-filename")), base);
    assert_string_equal (json_string_value (json_object_get (info, "backing-filename-format")), "raw");
    json_decref (info);

    assert_int_equal (zv_disk_overlay (bigger, base, 2, self->errbuf, sizeof self->errbuf), ZV_OK);
    info = zv_disk_info (bigger);
    assert_non_null (info);
    assert_int_equal (s_virtual_size (info), 2 * S_GIB);
    json_decref (info);
}

//  A flavor disk smaller than the image is refused before qemu-img runs.
static void
test_disk_overlay_smaller_than_image (void **state)
{
    fixture_t *self = *state;
    char base [512];
    snprintf (base, sizeof base, "%s", s_path (self, "big.raw"));
    int fd = open (base, O_CREAT | O_WRONLY, 0644);
    assert_true (fd >= 0);
    assert_int_equal (ftruncate (fd, 2 * S_GIB + 1), 0);     //  sparse
    close (fd);
    assert_int_equal (zv_disk_overlay (s_path (self, "disk"), base, 2, self->errbuf,
                                       sizeof self->errbuf), ZV_EINVAL);
    assert_true (zv_test_has (self->errbuf, "2 GB is smaller than its image"));
    assert_int_equal (access (self->path, F_OK), -1);
}

static void
test_disk_overlay_errors (void **state)
{
    fixture_t *self = *state;
    char missing [512], disk [512];
    snprintf (missing, sizeof missing, "%s", s_path (self, "no-such-image"));
    snprintf (disk, sizeof disk, "%s", s_path (self, "disk"));
    assert_int_equal (zv_disk_overlay (disk, missing, 1, self->errbuf, sizeof self->errbuf), ZV_ENOTFOUND);
    assert_true (zv_test_has (self->errbuf, "cannot create disk"));
    assert_true (zv_test_has (self->errbuf, "backing file"));
    assert_true (zv_test_has (self->errbuf, missing));
    assert_true (zv_test_has (self->errbuf, "No such file or directory"));
    assert_int_equal (access (disk, F_OK), -1);

    //  The instance's folder was never made: say which folder.
    char base [512], orphan [512];
    snprintf (base, sizeof base, "%s", s_path (self, "base.raw"));
    s_make_file (base, 4096);
    snprintf (orphan, sizeof orphan, "%s", s_path (self, "no-such-dir/disk"));
    assert_int_equal (zv_disk_overlay (orphan, base, 1, self->errbuf, sizeof self->errbuf), ZV_ENOTFOUND);
    assert_true (zv_test_has (self->errbuf, "no-such-dir: No such file or directory"));
    assert_int_equal (zv_disk_blank (orphan, 1, self->errbuf, sizeof self->errbuf), ZV_ENOTFOUND);
    assert_true (zv_test_has (self->errbuf, "no-such-dir: No such file or directory"));
    assert_int_equal (zv_disk_overlay (disk, base, -1, self->errbuf, sizeof self->errbuf), ZV_EINVAL);

    //  A backing file qemu-img cannot use: its own words reach the caller.
    char folder [512];
    snprintf (folder, sizeof folder, "%s", s_path (self, "a-folder"));
    assert_int_equal (mkdir (folder, 0755), 0);
    assert_int_equal (zv_disk_overlay (disk, folder, 1, self->errbuf, sizeof self->errbuf), ZV_EIO);
    assert_true (zv_test_has (self->errbuf, "cannot create disk"));
    assert_true (zv_test_has (self->errbuf, folder));
    assert_null (strstr (self->errbuf, "qemu-img: "));
    assert_null (strchr (self->errbuf, '\n'));
    assert_int_equal (rmdir (folder), 0);
}

static void
test_disk_convert (void **state)
{
    fixture_t *self = *state;
    char raw [512], qcow2 [512], back [512];
    snprintf (raw, sizeof raw, "%s", s_path (self, "image.raw"));
    snprintf (qcow2, sizeof qcow2, "%s", s_path (self, "image.qcow2"));
    snprintf (back, sizeof back, "%s", s_path (self, "image.back.raw"));
    s_make_file (raw, 2 * S_MIB);
    assert_int_equal (zv_disk_convert (raw, qcow2, "qcow2", self->errbuf, sizeof self->errbuf), ZV_OK);
    json_t *info = zv_disk_info (qcow2);
    assert_non_null (info);
    assert_string_equal (s_format (info), "qcow2");
    assert_int_equal (s_virtual_size (info), 2 * S_MIB);
    json_decref (info);

    assert_int_equal (zv_disk_convert (qcow2, back, "raw", self->errbuf, sizeof self->errbuf), ZV_OK);
    info = zv_disk_info (back);
    assert_non_null (info);
    assert_string_equal (s_format (info), "raw");
    json_decref (info);
    char *before = zv_test_slurp (raw), *after = zv_test_slurp (back);
    assert_non_null (before);
    assert_non_null (after);
    assert_memory_equal (before, after, 2 * S_MIB);
    free (before);
    free (after);

    assert_int_equal (zv_disk_convert (s_path (self, "missing.qcow2"), back, "raw", self->errbuf,
                                       sizeof self->errbuf), ZV_EIO);
    assert_true (zv_test_has (self->errbuf, "cannot convert"));
    assert_true (zv_test_has (self->errbuf, "missing.qcow2"));
    assert_true (zv_test_has (self->errbuf, "No such file or directory"));
    assert_int_equal (zv_disk_convert (raw, back, "no-such-format", self->errbuf,
                                       sizeof self->errbuf), ZV_EIO);
    assert_true (zv_test_has (self->errbuf, "no-such-format"));
}

//  An image from elsewhere: read as its record says, and refused when it
//  names another file (here a host file as its backing file).
static void
test_disk_import (void **state)
{
    fixture_t *self = *state;
    char raw [512], qcow2 [512], out [512], sneaky [512];
    snprintf (raw, sizeof raw, "%s", s_path (self, "image.raw"));
    snprintf (qcow2, sizeof qcow2, "%s", s_path (self, "image.qcow2"));
    snprintf (out, sizeof out, "%s", s_path (self, "image.out"));
    snprintf (sneaky, sizeof sneaky, "%s", s_path (self, "sneaky.qcow2"));
    s_make_file (raw, S_MIB);
    assert_int_equal (zv_disk_convert (raw, qcow2, "qcow2", self->errbuf, sizeof self->errbuf), ZV_OK);
    assert_int_equal (zv_disk_import (qcow2, "qcow2", out, self->errbuf, sizeof self->errbuf), ZV_OK);
    json_t *info = zv_disk_info (out);
    assert_non_null (info);
    assert_string_equal (s_format (info), "raw");
    assert_int_equal (s_virtual_size (info), S_MIB);
    json_decref (info);

    assert_int_equal (zv_disk_overlay (sneaky, raw, 0, self->errbuf, sizeof self->errbuf), ZV_OK);
    unlink (out);
    assert_int_equal (zv_disk_import (sneaky, "qcow2", out, self->errbuf, sizeof self->errbuf), ZV_EINVAL);
    assert_true (zv_test_has (self->errbuf, "has a backing file"));
    assert_true (zv_test_has (self->errbuf, raw));
    assert_int_equal (access (out, F_OK), -1);

    //  Raw bytes said to be qcow2 are not a qcow2 image.
    assert_int_equal (zv_disk_import (raw, "qcow2", out, self->errbuf, sizeof self->errbuf), ZV_EINVAL);
    assert_true (zv_test_has (self->errbuf, "cannot import qcow2 image"));
    assert_int_equal (access (out, F_OK), -1);
}

//  A moved root disk grows to a bigger flavor and never shrinks; a second
//  resize to the same size does nothing.
static void
test_disk_resize (void **state)
{
    fixture_t *self = *state;
    char base [512], disk [512];
    snprintf (base, sizeof base, "%s", s_path (self, "base.raw"));
    snprintf (disk, sizeof disk, "%s", s_path (self, "disk"));
    s_make_file (base, S_MIB);
    assert_int_equal (zv_disk_overlay (disk, base, 1, self->errbuf, sizeof self->errbuf), ZV_OK);

    assert_int_equal (zv_disk_resize (disk, 3, self->errbuf, sizeof self->errbuf), ZV_OK);
    json_t *info = zv_disk_info (disk);
    assert_non_null (info);
    assert_int_equal (s_virtual_size (info), 3 * S_GIB);
    assert_string_equal (json_string_value (json_object_get (info, "backing-filename")), base);
    json_decref (info);
    assert_int_equal (zv_disk_resize (disk, 3, self->errbuf, sizeof self->errbuf), ZV_OK);
    assert_int_equal (zv_disk_resize (disk, 2, self->errbuf, sizeof self->errbuf), ZV_OK);
    info = zv_disk_info (disk);
    assert_int_equal (s_virtual_size (info), 3 * S_GIB);
    json_decref (info);

    assert_int_equal (zv_disk_resize (disk, 0, self->errbuf, sizeof self->errbuf), ZV_EINVAL);
    assert_int_equal (zv_disk_resize (s_path (self, "nothing"), 4, self->errbuf, sizeof self->errbuf),
                      ZV_ENOTFOUND);
    assert_true (zv_test_has (self->errbuf, "cannot resize disk"));
    //  Raw bytes are never probed into a format.
    assert_int_equal (zv_disk_resize (base, 4, self->errbuf, sizeof self->errbuf), ZV_EINVAL);
    struct stat info_raw;
    assert_int_equal (stat (base, &info_raw), 0);
    assert_int_equal (info_raw.st_size, S_MIB);
}

//  A disk from another host names that host's cache as its backing file:
//  rebased (unsafely: the old path need not exist here) onto this host's.
static void
test_disk_rebase (void **state)
{
    fixture_t *self = *state;
    char there [512], here [512], disk [512], local [512];
    snprintf (there, sizeof there, "%s", s_path (self, "there.raw"));
    snprintf (here, sizeof here, "%s", s_path (self, "here.raw"));
    snprintf (disk, sizeof disk, "%s", s_path (self, "disk"));
    snprintf (local, sizeof local, "%s", s_path (self, "disk.local"));
    s_make_file (there, S_MIB);
    s_make_file (here, S_MIB);
    assert_int_equal (zv_disk_overlay (disk, there, 1, self->errbuf, sizeof self->errbuf), ZV_OK);
    assert_int_equal (unlink (there), 0);

    assert_int_equal (zv_disk_rebase (disk, here, self->errbuf, sizeof self->errbuf), ZV_OK);
    json_t *info = zv_disk_info (disk);
    assert_non_null (info);
    assert_string_equal (json_string_value (json_object_get (info, "backing-filename")), here);
    assert_string_equal (json_string_value (json_object_get (info, "backing-filename-format")), "raw");
    assert_int_equal (s_virtual_size (info), S_GIB);
    json_decref (info);
    //  Again: nothing to do.  Then it can be resized (its backing is here).
    assert_int_equal (zv_disk_rebase (disk, here, self->errbuf, sizeof self->errbuf), ZV_OK);
    assert_int_equal (zv_disk_resize (disk, 2, self->errbuf, sizeof self->errbuf), ZV_OK);

    assert_int_equal (zv_disk_rebase (disk, there, self->errbuf, sizeof self->errbuf), ZV_ENOTFOUND);
    assert_true (zv_test_has (self->errbuf, "backing file"));
    assert_int_equal (zv_disk_rebase (s_path (self, "nothing"), here, self->errbuf, sizeof self->errbuf),
                      ZV_ENOTFOUND);
    assert_int_equal (zv_disk_rebase (here, here, self->errbuf, sizeof self->errbuf), ZV_EINVAL);

    //  Ephemeral and swap disks refer to nothing; an overlay does.
    assert_int_equal (zv_disk_blank (local, 16, self->errbuf, sizeof self->errbuf), ZV_OK);
    assert_int_equal (zv_disk_standalone (local, self->errbuf, sizeof self->errbuf), ZV_OK);
    assert_int_equal (zv_disk_standalone (disk, self->errbuf, sizeof self->errbuf), ZV_EINVAL);
    assert_true (zv_test_has (self->errbuf, "has a backing file"));
    assert_int_equal (zv_disk_standalone (here, self->errbuf, sizeof self->errbuf), ZV_EINVAL);
    assert_int_equal (zv_disk_standalone (s_path (self, "nothing"), self->errbuf, sizeof self->errbuf),
                      ZV_ENOTFOUND);
}

static void
test_disk_info_missing (void **state)
{
    fixture_t *self = *state;
    assert_null (zv_disk_info (s_path (self, "nothing-here")));
}

//  qemu-img is looked for on PATH: without it, the error says so.
static void
test_disk_no_qemu_img (void **state)
{
    fixture_t *self = *state;
    char *saved = getenv ("PATH") ? strdup (getenv ("PATH")) : NULL;
    setenv ("PATH", self->dir, 1);
    zv_status_t status = zv_disk_blank (s_path (self, "disk"), 1, self->errbuf, sizeof self->errbuf);
    json_t *info = zv_disk_info (self->path);
    if (saved)
        setenv ("PATH", saved, 1);
    else
        unsetenv ("PATH");
    free (saved);
    assert_int_equal (status, ZV_EIO);
    //  posix_spawnp reports the failed exec, or (a fork and exec fallback,
    //  as under valgrind) the child exits 127.
    assert_true (zv_test_has (self->errbuf, "cannot run qemu-img: "));
    assert_null (info);
}

static void
test_disk_folders (void **state)
{
    fixture_t *self = *state;
    char deep [512], file [600];
    snprintf (deep, sizeof deep, "%s", s_path (self, "a/b/c/"));
    assert_int_equal (zv_disk_mkdirs (deep), 0);
    assert_int_equal (zv_disk_mkdirs (deep), 0);            //  already there
    snprintf (file, sizeof file, "%s/disk", deep);
    s_make_file (file, 10);
    assert_int_equal (zv_disk_mkdirs (file), -1);
    assert_int_equal (errno, ENOTDIR);
    assert_int_equal (zv_disk_mkdirs (""), -1);

    assert_int_equal (zv_disk_remove_dir (deep), 0);
    assert_int_equal (access (deep, F_OK), -1);
    assert_int_equal (zv_disk_remove_dir (deep), 0);        //  already gone
    //  Not flat: the files go, the subfolder stays, and it says so.
    snprintf (file, sizeof file, "%s", s_path (self, "a/b/file"));
    s_make_file (file, 10);
    assert_int_equal (zv_disk_remove_dir (s_path (self, "a/b")), 0);
    assert_int_equal (access (file, F_OK), -1);
    snprintf (file, sizeof file, "%s", s_path (self, "a/file"));
    s_make_file (file, 10);
    s_path (self, "a/sub");
    assert_int_equal (mkdir (self->path, 0755), 0);
    assert_int_equal (zv_disk_remove_dir (s_path (self, "a")), -1);
    assert_int_equal (errno, EISDIR);
    assert_int_equal (access (file, F_OK), -1);
    assert_int_equal (rmdir (s_path (self, "a/sub")), 0);
    assert_int_equal (zv_disk_remove_dir (s_path (self, "a")), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_disk_blank, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_overlay, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_overlay_smaller_than_image, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_overlay_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_convert, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_import, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_resize, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_rebase, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_info_missing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_no_qemu_img, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_folders, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
