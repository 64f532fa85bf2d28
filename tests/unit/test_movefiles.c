/*  test_movefiles.c: the files a cold move carries (zv_movefiles): which
    names may travel, the manifest, its check, one chunk read on the source,
    and where an interrupted copy resumes.  Files are made in a fresh
    folder under /tmp per test; digests are compared with known sha256
    values, not with the function under test.                              */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virt/zv_movefiles.h"
#include "virt/zv_disk.h"
#include "proto/zv_msg.h"
#include "zv_test.h"

#define S_SHA_ABC   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define S_SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
    char dir [256];
    char path [512];
    char errbuf [1024];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *self = (fixture_t *) calloc (1, sizeof *self);
    assert_non_null (self);
    snprintf (self->dir, sizeof self->dir, "/tmp/zv-test-movefiles-XXXXXX");
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

static void
s_write (fixture_t *self, const char *name, const void *data, size_t size)
{
    FILE *file = fopen (s_path (self, name), "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (data, 1, size, file), size);
    assert_int_equal (fclose (file), 0);
}

static const char *
s_entry_str (const json_t *files, size_t index, const char *key)
{
    return json_string_value (json_object_get (json_array_get (files, index), key));
}

static json_int_t
s_entry_int (const json_t *files, size_t index, const char *key)
{
    return json_integer_value (json_object_get (json_array_get (files, index), key));
}

static void
test_movefiles_names (void **state)
{
    (void) state;
    static const char *carried [] = { "disk", "disk.local", "disk.swap", "console.log" };
    for (size_t index = 0; index < sizeof carried / sizeof carried [0]; index++)
        assert_true (zv_movefiles_name_ok (carried [index]));
    static const char *refused [] = { "", "libvirt.xml", "disk.rescue", "disk.part", "../disk",
                                      "disk/../disk", "/etc/passwd", "./disk", "Disk", "disk ", "console.log/" };
    for (size_t index = 0; index < sizeof refused / sizeof refused [0]; index++)
        assert_false (zv_movefiles_name_ok (refused [index]));
    assert_false (zv_movefiles_name_ok (NULL));
}

//  What lies in the folder, in the table's order; links and other files
//  left out.
static void
test_movefiles_manifest (void **state)
{
    fixture_t *self = *state;
    s_write (self, "console.log", "", 0);
    s_write (self, "disk", "abc", 3);
    s_write (self, "libvirt.xml", "<domain/>", 9);
    assert_int_equal (symlink ("/etc/hostname", s_path (self, "disk.swap")), 0);
    json_t *files = zv_movefiles_manifest (self->dir, self->errbuf, sizeof self->errbuf);
    assert_non_null (files);
    assert_int_equal (json_array_size (files), 2);
    assert_string_equal (s_entry_str (files, 0, "name"), "disk");
    assert_int_equal (s_entry_int (files, 0, "size"), 3);
    assert_string_equal (s_entry_str (files, 0, "sha256"), S_SHA_ABC);
    assert_string_equal (s_entry_str (files, 1, "name"), "console.log");
    assert_int_equal (s_entry_int (files, 1, "size"), 0);
    assert_string_equal (s_entry_str (files, 1, "sha256"), S_SHA_EMPTY);
    assert_int_equal (zv_movefiles_check (files, self->errbuf, sizeof self->errbuf), ZV_OK);
    json_decref (files);

    //  A folder with none of them: an empty manifest (a shared-storage
    //  source sends one); no folder at all: an error.
    char empty [300];
    snprintf (empty, sizeof empty, "%s/empty", self->dir);
    assert_int_equal (mkdir (empty, 0755), 0);
    files = zv_movefiles_manifest (empty, self->errbuf, sizeof self->errbuf);
    assert_non_null (files);
    assert_int_equal (json_array_size (files), 0);
    json_decref (files);
    assert_int_equal (rmdir (empty), 0);
    assert_null (zv_movefiles_manifest (s_path (self, "no-such-folder"), self->errbuf, sizeof self->errbuf));
    assert_true (zv_test_has (self->errbuf, "no-such-folder"));
    unlink (s_path (self, "disk.swap"));
}

static void
s_check_refused (const char *text, const char *why)
{
    char errbuf [512];
    json_t *files = json_loads (text, 0, NULL);
    assert_non_null (files);
    assert_int_equal (zv_movefiles_check (files, errbuf, sizeof errbuf), ZV_EINVAL);
    assert_true (zv_test_has (errbuf, why));
    json_decref (files);
}

static void
test_movefiles_check (void **state)
{
    (void) state;
    char errbuf [512];
    json_t *files = json_pack ("[{s:s, s:i, s:s}, {s:s, s:i, s:s}]",
                               "name", "disk", "size", 3, "sha256", S_SHA_ABC,
                               "name", "disk.swap", "size", 0, "sha256", S_SHA_EMPTY);
    assert_int_equal (zv_movefiles_check (files, errbuf, sizeof errbuf), ZV_OK);
    json_decref (files);
    files = json_array ();
    assert_int_equal (zv_movefiles_check (files, errbuf, sizeof errbuf), ZV_OK);
    json_decref (files);
    assert_int_equal (zv_movefiles_check (NULL, errbuf, sizeof errbuf), ZV_EINVAL);

    s_check_refused ("{}", "not a list");
    s_check_refused ("[{\"name\": \"../../etc/shadow\", \"size\": 1, \"sha256\": \"" S_SHA_ABC "\"}]",
                     "'../../etc/shadow' is not a file a move carries");
    s_check_refused ("[{\"size\": 1, \"sha256\": \"" S_SHA_ABC "\"}]", "(no name)");
    s_check_refused ("[{\"name\": \"disk\", \"size\": 3, \"sha256\": \"" S_SHA_ABC "\"},"
                     " {\"name\": \"disk\", \"size\": 3, \"sha256\": \"" S_SHA_ABC "\"}]", "names disk twice");
    s_check_refused ("[{\"name\": \"disk\", \"size\": -1, \"sha256\": \"" S_SHA_ABC "\"}]", "no valid size");
    s_check_refused ("[{\"name\": \"disk\", \"size\": \"3\", \"sha256\": \"" S_SHA_ABC "\"}]", "no valid size");
    s_check_refused ("[{\"name\": \"disk\", \"size\": 3, \"sha256\": \"abc\"}]", "no valid sha256");
    s_check_refused ("[{\"name\": \"disk\", \"size\": 3, \"sha256\": \""
                     "zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}]", "no valid sha256");
}

//  A chunk as the source answers compute.move_read.
static void
test_movefiles_read (void **state)
{
    fixture_t *self = *state;
    s_write (self, "disk", "0123456789", 10);
    void *data = NULL;
    size_t length = 0;
    int64_t size = 0;
    assert_int_equal (zv_movefiles_read (self->dir, "disk", 2, 4, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_OK);
    assert_int_equal (length, 4);
    assert_int_equal (size, 10);
    assert_memory_equal (data, "2345", 4);
    free (data);
    //  The end: what is left; at the end exactly: nothing.
    assert_int_equal (zv_movefiles_read (self->dir, "disk", 8, 100, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_OK);
    assert_int_equal (length, 2);
    assert_memory_equal (data, "89", 2);
    free (data);
    assert_int_equal (zv_movefiles_read (self->dir, "disk", 10, 100, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_OK);
    assert_int_equal (length, 0);
    assert_null (data);
    assert_int_equal (size, 10);

    //  Refusals: past the end, no length, names that are no carried file.
    assert_int_equal (zv_movefiles_read (self->dir, "disk", 11, 1, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_EINVAL);
    assert_true (zv_test_has (self->errbuf, "offset 11 is past the end"));
    assert_null (data);
    assert_int_equal (zv_movefiles_read (self->dir, "disk", 0, 0, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_EINVAL);
    assert_int_equal (zv_movefiles_read (self->dir, "disk", -1, 4, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_EINVAL);
    static const char *bad [] = { "../disk", "libvirt.xml", "disk/", "", "/etc/passwd" };
    for (size_t index = 0; index < sizeof bad / sizeof bad [0]; index++) {
        assert_int_equal (zv_movefiles_read (self->dir, bad [index], 0, 4, &data, &length, &size,
                                             self->errbuf, sizeof self->errbuf), ZV_EINVAL);
        assert_true (zv_test_has (self->errbuf, "is not a file a move carries"));
    }
    assert_int_equal (zv_movefiles_read (self->dir, NULL, 0, 4, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_EINVAL);
    //  Not there, a link, a folder: nothing to carry.
    assert_int_equal (zv_movefiles_read (self->dir, "disk.local", 0, 4, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_ENOTFOUND);
    assert_int_equal (symlink ("/etc/hostname", s_path (self, "disk.swap")), 0);
    assert_int_equal (zv_movefiles_read (self->dir, "disk.swap", 0, 4, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_ENOTFOUND);
    unlink (s_path (self, "disk.swap"));
    assert_int_equal (mkdir (s_path (self, "console.log"), 0755), 0);
    assert_int_equal (zv_movefiles_read (self->dir, "console.log", 0, 4, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_ENOTFOUND);
    assert_int_equal (rmdir (s_path (self, "console.log")), 0);
    assert_int_equal (zv_movefiles_read (s_path (self, "nowhere"), "disk", 0, 4, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_ENOTFOUND);
}

//  A length beyond a payload frame is cut to one.
static void
test_movefiles_read_capped (void **state)
{
    fixture_t *self = *state;
    size_t big = ZV_MSG_MAX_PAYLOAD + 4096;
    char *bytes = (char *) calloc (1, big);
    assert_non_null (bytes);
    s_write (self, "disk", bytes, big);
    free (bytes);
    void *data = NULL;
    size_t length = 0;
    int64_t size = 0;
    assert_int_equal (zv_movefiles_read (self->dir, "disk", 0, (int64_t) big, &data, &length, &size,
                                         self->errbuf, sizeof self->errbuf), ZV_OK);
    assert_int_equal (length, ZV_MSG_MAX_PAYLOAD);
    assert_int_equal (size, (int64_t) big);
    free (data);
}

//  Where a copy resumes: the whole chunks of the .part less the window.
static void
test_movefiles_resume (void **state)
{
    (void) state;
    static const struct {
        int64_t part, size, chunk;
        int window;
        int64_t expected;
    } rows [] = {
        { 0,        100,      10, 2, 0 },         //  nothing yet
        { 100,      100,      10, 2, 80 },        //  all of it: the last window again
        { 57,       100,      10, 2, 30 },        //  5 whole chunks, 2 may be holes
        { 20,       100,      10, 2, 0 },         //  no more than the window
        { 25,       100,      10, 2, 0 },
        { 101,      100,      10, 2, 0 },         //  longer than the file: start again
        { 95,       95,       10, 1, 80 },        //  a short last chunk
        { 8 << 20,  10 << 20, 1 << 20, 8, 0 },    //  8 chunks of 1 MiB, window 8
        { 9 << 20,  10 << 20, 1 << 20, 8, 1 << 20 },
        { 50,       100,      0,  2, 0 },         //  nonsense: nothing known
        { 50,       100,      10, 0, 0 },
        { -1,       100,      10, 2, 0 },
    };
    for (size_t index = 0; index < sizeof rows / sizeof rows [0]; index++) {
        int64_t got = zv_movefiles_resume (rows [index].part, rows [index].size, rows [index].chunk,
                                           rows [index].window);
        if (got != rows [index].expected)
            fail_msg ("row %zu: resume %lld, expected %lld", index, (long long) got,
                      (long long) rows [index].expected);
        assert_true (rows [index].chunk <= 0 || got % rows [index].chunk == 0);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_movefiles_names),
        cmocka_unit_test_setup_teardown (test_movefiles_manifest, s_setup, s_teardown),
        cmocka_unit_test (test_movefiles_check),
        cmocka_unit_test_setup_teardown (test_movefiles_read, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_movefiles_read_capped, s_setup, s_teardown),
        cmocka_unit_test (test_movefiles_resume),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
