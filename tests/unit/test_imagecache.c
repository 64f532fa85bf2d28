/*  test_imagecache.c: a compute host's image cache (zv_imagecache).

    Each test runs, on one zloop, the cache with a real link and real
    workers, and a fake conductor: a ROUTER bound on an inproc endpoint that
    answers conductor.service_heartbeat and conductor.image_download from
    image files the test made under a fresh folder in /tmp (random bytes,
    raw, or a qcow2 made with qemu-img).  The loop runs until the expected
    callbacks arrived, with a deadline.  The fake counts the chunk requests,
    so a shared download shows as one image's worth of chunks.

    The cleaning passes run against instance directories the test makes
    beside the cache (qcow2 overlays on base files, a libvirt.xml booting a
    kernel from it), with base files whose ages the test sets.

    ZV_TEST_IMAGE_MB sets the size of the throughput test's image (16 MiB
    by default: the test also runs under valgrind).                         */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "virt/zv_imagecache.h"
#include "virt/zv_disk.h"
#include "zv_test.h"

#define S_MIB           (INT64_C (1) << 20)
#define S_CHUNK         (256 * 1024)
#define S_WINDOW        4
#define S_MAX_IMAGES    8
#define S_MAX_CALLS     8
#define S_DEADLINE_MS   60000

typedef struct {
    char id [ZV_UUID_LEN + 1];
    char path [512];                    //  the bytes the conductor serves
    char raw [512];                     //  their raw form (qcow2 images)
    char checksum [65];
    char disk_format [16];
    char status [16];
    int64_t size;
} s_image_t;

typedef struct _fixture_t fixture_t;
typedef bool (s_until_fn) (fixture_t *self);

struct _fixture_t {
    char dir [256];
    char instances [300];
    char images_dir [300];
    char cache_dir [300];
    char endpoint [64];
    zloop_t *loop;
    zsock_t *router;                    //  the fake conductor
    zv_link_t *link;
    zv_workers_t *workers;
    zv_imagecache_t *cache;
    s_image_t images [S_MAX_IMAGES];
    int image_count;
    //  The fake conductor's view.
    int chunks_asked;                   //  conductor.image_download requests
    int heartbeats;
    int64_t fail_at_offset;             //  that chunk gets an error reply (-1: none)
    //  Callbacks seen.
    int calls;
    int tags [S_MAX_CALLS];
    zv_status_t status [S_MAX_CALLS];
    char path [S_MAX_CALLS][512];
    char errtext [S_MAX_CALLS][1024];
    int wanted;                         //  s_run: calls to wait for
    //  Cleaning passes seen, and what the last one did.
    int passes;
    int passes_wanted;
    json_t *summary;
};

//  ---------------------------------------------------------------------
//  The fake conductor.

static s_image_t *
s_image_find (fixture_t *self, const char *id)
{
    for (int index = 0; index < self->image_count; index++)
        if (strcmp (self->images [index].id, id) == 0)
            return &self->images [index];
    return NULL;
}

static zv_msg_t *
s_download_reply (fixture_t *self, zv_msg_t *request)
{
    self->chunks_asked++;
    const char *id = zv_msg_get_str (request, "id");
    int64_t offset = zv_msg_get_int (request, "offset", 0);
    int64_t length = zv_msg_get_int (request, "length", 0);
    s_image_t *image = s_image_find (self, id);
    if (!image)
        return zv_msg_error (request, ZV_ENOTFOUND, "Image %s could not be found.", id);
    if (strcmp (image->status, "active") != 0)
        return zv_msg_error (request, ZV_ECONFLICT, "Image %s is %s: it has no data yet.", id, image->status);
    if (offset == self->fail_at_offset)
        return zv_msg_error (request, ZV_EIO, "cannot read image %s: disk read error", id);
    if (offset >= image->size)
        return zv_msg_error (request, ZV_EINVAL, "offset %lld beyond image %s", (long long) offset, id);
    if (length > image->size - offset)
        length = image->size - offset;
    char *bytes = (char *) malloc ((size_t) length);
    assert_non_null (bytes);
    int fd = open (image->path, O_RDONLY);
    assert_true (fd >= 0);
    assert_int_equal (pread (fd, bytes, (size_t) length, offset), length);
    close (fd);
    zv_msg_t *reply = zv_msg_reply (request);
    json_t *body = json_pack ("{s:s, s:I, s:I, s:I, s:s, s:s, s:b}", "id", id,
                              "offset", (json_int_t) offset, "length", (json_int_t) length,
                              "size", (json_int_t) image->size, "checksum", image->checksum,
                              "disk_format", image->disk_format, "last", offset + length == image->size);
    zv_msg_set_body (reply, &body);
    zv_msg_set_payload (reply, bytes, (size_t) length);
    free (bytes);
    return reply;
}

static int
s_conductor_readable (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    fixture_t *self = (fixture_t *) arg;
    while (zsock_events (router) & ZMQ_POLLIN) {
        zv_msg_t *request = zv_msg_recv (router);
        if (!request)
            break;
        assert_int_equal (zv_msg_status (request), ZV_OK);
        zv_msg_t *reply = NULL;
        if (strcmp (zv_msg_type (request), "conductor.service_heartbeat") == 0) {
            self->heartbeats++;
            reply = zv_msg_reply (request);
            json_t *body = json_pack ("{s:s, s:i}", "epoch", "6f0e3c55-0d4b-4f59-9a4e-1b0f2c3d4e5f",
                                      "service_down_time", 60);
            zv_msg_set_body (reply, &body);
        }
        else
        if (strcmp (zv_msg_type (request), "conductor.image_download") == 0)
            reply = s_download_reply (self, request);
        else
            fail_msg ("the fake conductor got %s", zv_msg_type (request));
        assert_int_equal (zv_msg_send (&reply, router), 0);
        zv_msg_destroy (&request);
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Images.

static void
s_file_sha256 (const char *path, char hex [65], int64_t *size_p)
{
    int fd = open (path, O_RDONLY);
    assert_true (fd >= 0);
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    unsigned char buffer [65536];
    ssize_t got;
    int64_t size = 0;
    while ((got = read (fd, buffer, sizeof buffer)) > 0) {
        crypto_hash_sha256_update (&state, buffer, (unsigned long long) got);
        size += got;
    }
    close (fd);
    unsigned char digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final (&state, digest);
    sodium_bin2hex (hex, 65, digest, sizeof digest);
    *size_p = size;
}

static void
s_random_file (const char *path, int64_t size)
{
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    unsigned char buffer [65536];
    for (int64_t done = 0; done < size; ) {
        size_t want = size - done < (int64_t) sizeof buffer ? (size_t) (size - done) : sizeof buffer;
        randombytes_buf (buffer, want);
        assert_int_equal (fwrite (buffer, 1, want, file), want);
        done += (int64_t) want;
    }
    assert_int_equal (fclose (file), 0);
}

//  A new image the fake conductor serves: size random bytes, as raw or
//  converted to qcow2.
static s_image_t *
s_add_image (fixture_t *self, int64_t size, const char *disk_format)
{
    assert_true (self->image_count < S_MAX_IMAGES);
    s_image_t made;
    memset (&made, 0, sizeof made);
    zv_uuid_new (made.id);
    snprintf (made.disk_format, sizeof made.disk_format, "%s", disk_format);
    snprintf (made.status, sizeof made.status, "active");
    snprintf (made.raw, sizeof made.raw, "%s/%s.raw", self->images_dir, made.id);
    s_random_file (made.raw, size);
    if (strcmp (disk_format, "raw") == 0)
        snprintf (made.path, sizeof made.path, "%s", made.raw);
    else {
        char errbuf [1024];
        snprintf (made.path, sizeof made.path, "%s/%s.%s", self->images_dir, made.id, disk_format);
        assert_int_equal (zv_disk_convert (made.raw, made.path, disk_format, errbuf, sizeof errbuf), ZV_OK);
    }
    s_file_sha256 (made.path, made.checksum, &made.size);
    s_image_t *image = &self->images [self->image_count++];
    *image = made;
    return image;
}

//  The record compute would pass (caller owns).
static json_t *
s_record (const s_image_t *image)
{
    return json_pack ("{s:s, s:s, s:I, s:s, s:s}", "id", image->id, "checksum", image->checksum,
                      "size", (json_int_t) image->size, "disk_format", image->disk_format,
                      "status", "active");
}

static bool
s_same_files (const char *path1, const char *path2)
{
    FILE *file1 = fopen (path1, "rb"), *file2 = fopen (path2, "rb");
    bool same = file1 && file2;
    static char buffer1 [65536], buffer2 [65536];
    while (same) {
        size_t got1 = fread (buffer1, 1, sizeof buffer1, file1);
        size_t got2 = fread (buffer2, 1, sizeof buffer2, file2);
        same = got1 == got2 && memcmp (buffer1, buffer2, got1) == 0;
        if (!got1)
            break;
    }
    if (file1)
        fclose (file1);
    if (file2)
        fclose (file2);
    return same;
}

//  Files in the cache folder.
static int
s_cache_files (fixture_t *self)
{
    DIR *handle = opendir (self->cache_dir);
    assert_non_null (handle);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (handle)))
        if (strcmp (entry->d_name, ".") && strcmp (entry->d_name, ".."))
            count++;
    closedir (handle);
    return count;
}

static bool
s_exists (const char *path, const char *suffix)
{
    char full [600];
    snprintf (full, sizeof full, "%s%s", path, suffix);
    return access (full, F_OK) == 0;
}

//  ---------------------------------------------------------------------
//  The loop.

static void
s_fetched (void *actor, void *ctx, zv_status_t status, const char *path, const char *errtext)
{
    fixture_t *self = (fixture_t *) actor;
    assert_true (self->calls < S_MAX_CALLS);
    int call = self->calls++;
    self->tags [call] = (int) (intptr_t) ctx;
    self->status [call] = status;
    assert_non_null (errtext);
    assert_true ((status == ZV_OK) == (path != NULL));
    snprintf (self->path [call], sizeof self->path [call], "%s", path ? path : "");
    snprintf (self->errtext [call], sizeof self->errtext [call], "%s", errtext);
}

static void
s_fetch (fixture_t *self, json_t *record, int tag)
{
    zv_imagecache_fetch (self->cache, record, "req-test", s_fetched, (void *) (intptr_t) tag);
}

typedef struct {
    fixture_t *self;
    s_until_fn *until;
    int64_t deadline;
} s_run_t;

static int
s_check_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_run_t *run = (s_run_t *) arg;
    if (run->until (run->self) || zv_mono_ms () >= run->deadline)
        return -1;
    return 0;
}

//  Serve the loop until until (self) holds or timeout_ms passed; returns
//  whether it held.
static bool
s_run (fixture_t *self, s_until_fn *until, int timeout_ms)
{
    s_run_t run = { self, until, zv_mono_ms () + timeout_ms };
    if (until (self))
        return true;
    int timer = zloop_timer (self->loop, 2, 0, s_check_timer, &run);
    zloop_start (self->loop);
    zloop_timer_end (self->loop, timer);
    return until (self);
}

static bool
s_have_wanted_calls (fixture_t *self)
{
    return self->calls >= self->wanted;
}

//  The first reply came and the window opened.
static bool
s_window_open (fixture_t *self)
{
    return self->chunks_asked >= 3;
}

static bool
s_never (fixture_t *self)
{
    (void) self;
    return false;
}

//  Run until count callbacks in all arrived; fails the test at the deadline.
static void
s_wait_calls (fixture_t *self, int count)
{
    self->wanted = count;
    if (!s_run (self, s_have_wanted_calls, S_DEADLINE_MS))
        fail_msg ("%d callbacks after %d ms, expected %d", self->calls, S_DEADLINE_MS, count);
}

//  ---------------------------------------------------------------------

static zv_imagecache_t *
s_cache_new (fixture_t *self, size_t chunk_size, int window)
{
    return zv_imagecache_new (self->cache_dir, self->link, self->workers, self, chunk_size, window);
}

static int
s_setup (void **state)
{
    static int instance = 0;
    fixture_t *self = (fixture_t *) calloc (1, sizeof *self);
    assert_non_null (self);
    assert_true (sodium_init () >= 0);
    snprintf (self->dir, sizeof self->dir, "/tmp/zv-test-imagecache-XXXXXX");
    assert_non_null (mkdtemp (self->dir));
    snprintf (self->images_dir, sizeof self->images_dir, "%s/images", self->dir);
    snprintf (self->instances, sizeof self->instances, "%s/instances", self->dir);
    snprintf (self->cache_dir, sizeof self->cache_dir, "%s/instances/_base", self->dir);
    assert_int_equal (mkdir (self->images_dir, 0755), 0);
    self->fail_at_offset = -1;

    self->loop = zloop_new ();
    assert_non_null (self->loop);
    snprintf (self->endpoint, sizeof self->endpoint, "inproc://zv-test-imagecache-%d", instance++);
    self->router = zsock_new (ZMQ_ROUTER);
    assert_non_null (self->router);
    assert_int_equal (zsock_bind (self->router, "%s", self->endpoint), 0);
    zloop_reader (self->loop, self->router, s_conductor_readable, self);

    zv_actor_args_t args;
    memset (&args, 0, sizeof args);
    zv_config_defaults (&args.config);
    snprintf (args.config.host, sizeof args.config.host, "node1");
    args.config.report_interval_s = 1;
    snprintf (args.conductor_endpoint, sizeof args.conductor_endpoint, "%s", self->endpoint);
    self->link = zv_link_new ("compute", &args, self->loop, self, NULL, NULL, NULL);
    assert_non_null (self->link);
    zv_link_heartbeat (self->link);
    self->workers = zv_workers_new (self->loop, self, 2);
    assert_non_null (self->workers);
    //  The cache makes its folder, parents included.
    self->cache = s_cache_new (self, S_CHUNK, S_WINDOW);
    assert_non_null (self->cache);
    struct stat info;
    assert_int_equal (stat (self->cache_dir, &info), 0);
    assert_true (S_ISDIR (info.st_mode));
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    zv_imagecache_destroy (&self->cache);
    zv_workers_destroy (&self->workers);
    zv_link_destroy (&self->link);
    zloop_reader_end (self->loop, self->router);
    zsock_destroy (&self->router);
    zloop_destroy (&self->loop);
    char instances [320];
    snprintf (instances, sizeof instances, "%s/instances", self->dir);
    assert_int_equal (zv_disk_remove_dir (self->cache_dir), 0);
    //  The instance directories of the cleaning tests.
    DIR *handle = opendir (instances);
    struct dirent *entry;
    while (handle && (entry = readdir (handle))) {
        char path [600];
        snprintf (path, sizeof path, "%s/%s", instances, entry->d_name);
        if (*entry->d_name != '.')
            assert_int_equal (zv_disk_remove_dir (path), 0);
    }
    if (handle)
        closedir (handle);
    assert_int_equal (zv_disk_remove_dir (instances), 0);
    json_decref (self->summary);
    assert_int_equal (zv_disk_remove_dir (self->images_dir), 0);
    assert_int_equal (zv_disk_remove_dir (self->dir), 0);
    free (self);
    return 0;
}

static int64_t
s_stat (fixture_t *self, const char *key)
{
    json_t *stats = zv_imagecache_stats (self->cache);
    assert_non_null (stats);
    json_t *value = json_object_get (stats, key);
    assert_non_null (value);
    int64_t number = json_is_integer (value) ? json_integer_value (value) : (int64_t) json_number_value (value);
    json_decref (stats);
    return number;
}

//  ---------------------------------------------------------------------

static int
s_chunks_of (int64_t size, int64_t chunk)
{
    return (int) ((size + chunk - 1) / chunk);
}

//  A fetch downloads every chunk once, verifies, and renames into place.
static void
test_imagecache_fetch_downloads (void **state)
{
    fixture_t *self = *state;
    s_image_t *image = s_add_image (self, 3 * S_MIB + 123, "raw");
    json_t *record = s_record (image);
    s_fetch (self, record, 1);
    assert_int_equal (self->calls, 0);              //  not at once: it is not there yet
    s_wait_calls (self, 1);
    assert_int_equal (self->status [0], ZV_OK);
    assert_int_equal (self->tags [0], 1);
    char expected [512];
    assert_string_equal (self->path [0], zv_imagecache_path (self->cache, image->id, expected, sizeof expected));
    assert_true (s_same_files (self->path [0], image->path));
    assert_false (s_exists (self->path [0], ".part"));
    assert_false (s_exists (self->path [0], ".converting"));
    assert_int_equal (s_cache_files (self), 1);
    assert_int_equal (self->chunks_asked, s_chunks_of (image->size, S_CHUNK));
    assert_int_equal (s_stat (self, "downloads"), 1);
    assert_int_equal (s_stat (self, "bytes"), image->size);
    assert_int_equal (s_stat (self, "conversions"), 0);
    assert_int_equal (s_stat (self, "hits"), 0);
    json_decref (record);
}

//  A later fetch finds the file: called back before fetch returns.
static void
test_imagecache_hit (void **state)
{
    fixture_t *self = *state;
    s_image_t *image = s_add_image (self, 100 * 1000, "raw");   //  less than a chunk
    json_t *record = s_record (image);
    s_fetch (self, record, 1);
    s_wait_calls (self, 1);
    assert_int_equal (self->status [0], ZV_OK);
    assert_int_equal (self->chunks_asked, 1);
    s_fetch (self, record, 2);
    assert_int_equal (self->calls, 2);
    assert_int_equal (self->status [1], ZV_OK);
    assert_string_equal (self->path [1], self->path [0]);
    assert_int_equal (self->chunks_asked, 1);
    assert_int_equal (s_stat (self, "hits"), 1);
    assert_int_equal (s_stat (self, "downloads"), 1);
    json_decref (record);
}

//  Two fetches of one image while it downloads share the download.
static void
test_imagecache_shared_download (void **state)
{
    fixture_t *self = *state;
    s_image_t *image = s_add_image (self, 2 * S_MIB + 1, "raw");
    s_image_t *other = s_add_image (self, S_MIB, "raw");
    json_t *record = s_record (image), *other_record = s_record (other);
    s_fetch (self, record, 1);
    s_fetch (self, other_record, 2);
    assert_true (s_run (self, s_window_open, S_DEADLINE_MS));
    s_fetch (self, record, 3);
    s_wait_calls (self, 3);
    for (int call = 0; call < 3; call++)
        assert_int_equal (self->status [call], ZV_OK);
    //  Waiters of one download are called in the order they came.
    int first = -1, third = -1;
    for (int call = 0; call < 3; call++) {
        if (self->tags [call] == 1)
            first = call;
        if (self->tags [call] == 3)
            third = call;
    }
    assert_true (first >= 0 && third == first + 1);
    assert_string_equal (self->path [first], self->path [third]);
    assert_true (s_same_files (self->path [first], image->path));
    assert_int_equal (self->chunks_asked, s_chunks_of (image->size, S_CHUNK) + s_chunks_of (other->size, S_CHUNK));
    assert_int_equal (s_stat (self, "downloads"), 2);
    assert_int_equal (s_cache_files (self), 2);
    json_decref (record);
    json_decref (other_record);
}

//  Bytes that do not match the record's checksum never enter the cache.
static void
test_imagecache_checksum_mismatch (void **state)
{
    fixture_t *self = *state;
    s_image_t *image = s_add_image (self, S_MIB + 7, "raw");
    json_t *record = s_record (image);
    char wrong [65];
    memset (wrong, '0', 64);
    wrong [64] = '\0';
    json_object_set_new (record, "checksum", json_string (wrong));
    s_fetch (self, record, 1);
    s_fetch (self, record, 2);
    s_wait_calls (self, 2);
    char message [300];
    snprintf (message, sizeof message, "image %s: checksum mismatch (expected %s, got %s)",
              image->id, wrong, image->checksum);
    for (int call = 0; call < 2; call++) {
        assert_int_equal (self->status [call], ZV_EIO);
        assert_string_equal (self->errtext [call], message);
        assert_string_equal (self->path [call], "");
    }
    assert_int_equal (s_cache_files (self), 0);
    assert_int_equal (s_stat (self, "downloads"), 0);
    json_decref (record);
}

//  The conductor's own error reaches the waiters, and nothing is left.
static void
test_imagecache_conductor_errors (void **state)
{
    fixture_t *self = *state;
    char unknown [ZV_UUID_LEN + 1];
    zv_uuid_new (unknown);
    json_t *record = json_pack ("{s:s, s:s, s:s}", "id", unknown, "checksum", "abc", "status", "active");
    s_fetch (self, record, 1);
    s_wait_calls (self, 1);
    assert_int_equal (self->status [0], ZV_ENOTFOUND);
    assert_true (zv_test_has (self->errtext [0], "could not be found"));
    assert_true (zv_test_has (self->errtext [0], unknown));
    assert_int_equal (s_cache_files (self), 0);
    json_decref (record);

    //  The record says active, the conductor knows better.
    s_image_t *image = s_add_image (self, 4096, "raw");
    snprintf (image->status, sizeof image->status, "queued");
    record = s_record (image);
    s_fetch (self, record, 2);
    s_wait_calls (self, 2);
    assert_int_equal (self->status [1], ZV_ECONFLICT);
    assert_true (zv_test_has (self->errtext [1], "it has no data yet"));
    assert_int_equal (s_cache_files (self), 0);
    json_decref (record);
}

//  A chunk that fails midway fails every waiter; the chunks still in flight
//  come back to nobody; a later fetch starts afresh.
static void
test_imagecache_error_midway (void **state)
{
    fixture_t *self = *state;
    s_image_t *image = s_add_image (self, 3 * S_MIB, "raw");
    json_t *record = s_record (image);
    self->fail_at_offset = 2 * S_CHUNK;
    s_fetch (self, record, 1);
    s_fetch (self, record, 2);
    s_wait_calls (self, 2);
    for (int call = 0; call < 2; call++) {
        assert_int_equal (self->status [call], ZV_EIO);
        assert_true (zv_test_has (self->errtext [call], "disk read error"));
    }
    s_run (self, s_never, 200);                     //  late replies arrive
    assert_int_equal (self->calls, 2);
    assert_int_equal (s_cache_files (self), 0);

    self->fail_at_offset = -1;
    int asked = self->chunks_asked;
    s_fetch (self, record, 3);
    s_wait_calls (self, 3);
    assert_int_equal (self->status [2], ZV_OK);
    assert_true (s_same_files (self->path [2], image->path));
    assert_int_equal (self->chunks_asked - asked, s_chunks_of (image->size, S_CHUNK));
    json_decref (record);
}

//  Records that cannot be fetched are refused at once, before any request.
static void
test_imagecache_refused_records (void **state)
{
    fixture_t *self = *state;
    char id [ZV_UUID_LEN + 1], message [200];
    zv_uuid_new (id);
    json_t *record = json_pack ("{s:s, s:s, s:i}", "id", id, "status", "queued", "size", 0);
    s_fetch (self, record, 1);
    assert_int_equal (self->calls, 1);
    assert_int_equal (self->status [0], ZV_ECONFLICT);
    snprintf (message, sizeof message, "image %s has no data (status queued)", id);
    assert_string_equal (self->errtext [0], message);
    json_decref (record);

    record = json_pack ("{s:s, s:s, s:i}", "id", id, "status", "active", "size", 0);
    s_fetch (self, record, 2);
    assert_int_equal (self->status [1], ZV_ECONFLICT);
    assert_true (zv_test_has (self->errtext [1], "has no data"));
    json_decref (record);

    record = json_pack ("{s:s, s:s}", "id", "../../etc/passwd", "status", "active");
    s_fetch (self, record, 3);
    assert_int_equal (self->status [2], ZV_EINVAL);
    json_decref (record);

    record = json_pack ("{s:s, s:s, s:s}", "id", id, "status", "active", "disk_format", "vmdk");
    s_fetch (self, record, 4);
    assert_int_equal (self->status [3], ZV_EUNSUPPORTED);
    assert_true (zv_test_has (self->errtext [3], "'vmdk'"));
    json_decref (record);

    assert_int_equal (self->calls, 4);
    s_run (self, s_never, 50);
    assert_int_equal (self->chunks_asked, 0);
    assert_int_equal (s_cache_files (self), 0);
}

//  A qcow2 image is converted once: the cache holds raw files only.
static void
test_imagecache_qcow2_converted (void **state)
{
    fixture_t *self = *state;
    s_image_t *image = s_add_image (self, 2 * S_MIB, "qcow2");
    json_t *record = s_record (image);
    s_fetch (self, record, 1);
    s_wait_calls (self, 1);
    assert_int_equal (self->status [0], ZV_OK);
    json_t *info = zv_disk_info (self->path [0]);
    assert_non_null (info);
    assert_string_equal (json_string_value (json_object_get (info, "format")), "raw");
    assert_int_equal (json_integer_value (json_object_get (info, "virtual-size")), 2 * S_MIB);
    json_decref (info);
    assert_true (s_same_files (self->path [0], image->raw));
    assert_false (s_exists (self->path [0], ".part"));
    assert_false (s_exists (self->path [0], ".converting"));
    assert_int_equal (s_cache_files (self), 1);
    assert_int_equal (s_stat (self, "conversions"), 1);
    assert_int_equal (s_stat (self, "bytes"), image->size);
    json_decref (record);
}

//  A qcow2 that names a host file as its backing file is refused.
static void
test_imagecache_qcow2_with_backing_refused (void **state)
{
    fixture_t *self = *state;
    s_image_t *image = s_add_image (self, S_MIB, "raw");
    char overlay [600], errbuf [1024];
    snprintf (overlay, sizeof overlay, "%s/sneaky.qcow2", self->images_dir);
    assert_int_equal (zv_disk_overlay (overlay, image->raw, 0, errbuf, sizeof errbuf), ZV_OK);
    snprintf (image->path, sizeof image->path, "%s", overlay);
    snprintf (image->disk_format, sizeof image->disk_format, "qcow2");
    s_file_sha256 (image->path, image->checksum, &image->size);
    json_t *record = s_record (image);
    s_fetch (self, record, 1);
    s_wait_calls (self, 1);
    assert_int_equal (self->status [0], ZV_EINVAL);
    assert_true (zv_test_has (self->errtext [0], "has a backing file"));
    assert_int_equal (s_cache_files (self), 0);
    json_decref (record);
}

//  Destroyed with downloads in flight: nobody is called back, nothing is
//  left, and the replies that come later touch nothing freed.
static void
test_imagecache_destroy_in_flight (void **state)
{
    fixture_t *self = *state;
    s_image_t *image = s_add_image (self, 4 * S_MIB, "raw");
    s_image_t *other = s_add_image (self, 4 * S_MIB, "raw");
    json_t *record = s_record (image), *other_record = s_record (other);
    s_fetch (self, record, 1);
    assert_true (s_run (self, s_window_open, S_DEADLINE_MS));
    s_fetch (self, other_record, 2);                //  its first call just sent
    zv_imagecache_destroy (&self->cache);
    zv_imagecache_destroy (&self->cache);            //  harmless
    s_run (self, s_never, 300);
    assert_int_equal (self->calls, 0);
    assert_int_equal (s_cache_files (self), 0);

    //  A new cache on the same folder works, and clears what a crash left.
    char leftover [600];
    snprintf (leftover, sizeof leftover, "%s/%s.part", self->cache_dir, other->id);
    FILE *file = fopen (leftover, "w");
    assert_non_null (file);
    fclose (file);
    self->cache = s_cache_new (self, S_CHUNK, S_WINDOW);
    assert_non_null (self->cache);
    assert_int_equal (access (leftover, F_OK), -1);
    s_fetch (self, record, 3);
    s_wait_calls (self, 1);
    assert_int_equal (self->status [0], ZV_OK);
    assert_true (s_same_files (self->path [0], image->path));
    json_decref (record);
    json_decref (other_record);
}

//  Throughput with compute's settings (1 MiB chunks, 4 in flight).
static void
test_imagecache_throughput (void **state)
{
    fixture_t *self = *state;
    const char *env = getenv ("ZV_TEST_IMAGE_MB");
    int64_t megabytes = env && atoi (env) > 0 ? atoi (env) : 16;
    zv_imagecache_destroy (&self->cache);
    self->cache = s_cache_new (self, 1024 * 1024, 4);
    assert_non_null (self->cache);
    s_image_t *image = s_add_image (self, megabytes * S_MIB, "raw");
    json_t *record = s_record (image);
    int64_t start = zv_mono_ms ();
    s_fetch (self, record, 1);
    s_wait_calls (self, 1);
    int64_t elapsed = zv_mono_ms () - start;
    assert_int_equal (self->status [0], ZV_OK);
    assert_true (s_same_files (self->path [0], image->path));
    json_t *stats = zv_imagecache_stats (self->cache);
    double seconds = json_real_value (json_object_get (stats, "seconds"));
    print_message ("image cache: %lld MiB in %.3f s transfer (%.0f MB/s), %lld ms until ready\n",
                   (long long) megabytes, seconds, seconds > 0 ? (double) megabytes / seconds : 0.0,
                   (long long) elapsed);
    json_decref (stats);
    json_decref (record);
}

//  ---------------------------------------------------------------------
//  Cleaning passes.

static void
s_cleaned (void *actor, void *ctx, const json_t *summary)
{
    fixture_t *self = (fixture_t *) actor;
    assert_ptr_equal (ctx, self);
    json_decref (self->summary);
    self->summary = json_deep_copy (summary);
    self->passes++;
}

static bool
s_have_passes (fixture_t *self)
{
    return self->passes >= self->passes_wanted;
}

//  Run until the pass started last ended; fails the test at the deadline.
static void
s_pass_wait (fixture_t *self)
{
    self->passes_wanted = self->passes + 1;
    if (!s_run (self, s_have_passes, S_DEADLINE_MS))
        fail_msg ("no cleaning pass ended after %d ms", S_DEADLINE_MS);
}

//  A pass that must start, and its end.
static void
s_clean (fixture_t *self, int64_t min_age_s, bool remove)
{
    assert_true (zv_imagecache_clean (self->cache, self->instances, min_age_s, remove, s_cleaned, self));
    s_pass_wait (self);
}

//  Was id in the last pass's list key?
static bool
s_in_summary (fixture_t *self, const char *key, const char *id)
{
    size_t index;
    json_t *value;
    json_array_foreach (json_object_get (self->summary, key), index, value)
        if (strcmp (json_string_value (value), id) == 0)
            return true;
    return false;
}

static size_t
s_summary_count (fixture_t *self, const char *key)
{
    return json_array_size (json_object_get (self->summary, key));
}

static void
s_base_path (fixture_t *self, const char *id, char *path, size_t len)
{
    snprintf (path, len, "%s/%s", self->cache_dir, id);
}

//  Set a file's modification time age_s seconds back.
static void
s_age (const char *path, int64_t age_s)
{
    struct timespec times [2];
    clock_gettime (CLOCK_REALTIME, &times [0]);
    times [0].tv_sec -= age_s;
    times [1] = times [0];
    assert_int_equal (utimensat (AT_FDCWD, path, times, 0), 0);
}

static int64_t
s_age_of (const char *path)
{
    struct stat info;
    assert_int_equal (stat (path, &info), 0);
    return (int64_t) time (NULL) - (int64_t) info.st_mtim.tv_sec;
}

//  A base file in the cache, age_s seconds old; its id into id.
static void
s_base_file (fixture_t *self, char id [ZV_UUID_LEN + 1], int64_t age_s)
{
    zv_uuid_new (id);
    char path [600];
    s_base_path (self, id, path, sizeof path);
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    fputs ("raw bytes of an image", file);
    assert_int_equal (fclose (file), 0);
    s_age (path, age_s);
}

//  An instance of the host: a root disk on base, and when kernel is
//  given, a libvirt.xml that boots it from the cache.
static void
s_instance (fixture_t *self, const char *base, const char *kernel)
{
    char uuid [ZV_UUID_LEN + 1], dir [600], path [700], backing [600], errbuf [1024];
    zv_uuid_new (uuid);
    snprintf (dir, sizeof dir, "%s/instances/%s", self->dir, uuid);
    assert_int_equal (zv_disk_mkdirs (dir), 0);
    snprintf (path, sizeof path, "%s/disk", dir);
    s_base_path (self, base, backing, sizeof backing);
    assert_int_equal (zv_disk_overlay (path, backing, 1, errbuf, sizeof errbuf), ZV_OK);
    if (kernel) {
        snprintf (path, sizeof path, "%s/libvirt.xml", dir);
        FILE *file = fopen (path, "w");
        assert_non_null (file);
        fprintf (file, "<domain>\n  <os>\n    <kernel>%s/%s</kernel>\n  </os>\n</domain>\n", self->cache_dir, kernel);
        assert_int_equal (fclose (file), 0);
    }
}

//  What no instance uses goes once old enough; what one uses stays, and
//  its age restarts; what the loop holds stays, and so does what the loop
//  used while the pass read the disks.
static void
test_imagecache_clean_removes_unused (void **state)
{
    fixture_t *self = *state;
    char root [ZV_UUID_LEN + 1], kernel [ZV_UUID_LEN + 1], old [ZV_UUID_LEN + 1], young [ZV_UUID_LEN + 1];
    char held [ZV_UUID_LEN + 1], racing [ZV_UUID_LEN + 1], path [600];
    s_base_file (self, root, 1000);
    s_base_file (self, kernel, 1000);
    s_base_file (self, old, 1000);
    s_base_file (self, young, 5);
    s_base_file (self, held, 1000);
    s_base_file (self, racing, 1000);
    s_instance (self, root, kernel);
    zv_imagecache_hold (self->cache, held);

    assert_true (zv_imagecache_clean (self->cache, self->instances, 60, true, s_cleaned, self));
    //  Only one pass at a time.
    assert_false (zv_imagecache_clean (self->cache, self->instances, 60, true, s_cleaned, self));
    //  An operation that takes and lets go of racing while the worker reads.
    zv_imagecache_hold (self->cache, racing);
    zv_imagecache_release (self->cache, racing);
    s_pass_wait (self);

    assert_true (s_in_summary (self, "in_use", root));
    assert_true (s_in_summary (self, "in_use", kernel));
    assert_true (s_in_summary (self, "in_use", held));
    assert_true (s_in_summary (self, "young", young));
    assert_true (s_in_summary (self, "busy", racing));
    assert_true (s_in_summary (self, "removed", old));
    assert_int_equal (s_summary_count (self, "removed"), 1);
    assert_int_equal (s_summary_count (self, "unused"), 0);
    s_base_path (self, old, path, sizeof path);
    assert_int_equal (access (path, F_OK), -1);
    //  Touched: their age counts from this pass.
    s_base_path (self, root, path, sizeof path);
    assert_true (s_age_of (path) < 30);
    s_base_path (self, held, path, sizeof path);
    assert_true (s_age_of (path) < 30);
    s_base_path (self, racing, path, sizeof path);
    assert_true (s_age_of (path) >= 1000);

    //  Let go: held is young now (touched), racing's use is over.
    zv_imagecache_release (self->cache, held);
    s_clean (self, 60, true);
    assert_true (s_in_summary (self, "young", held));
    assert_true (s_in_summary (self, "removed", racing));
    assert_int_equal (s_summary_count (self, "removed"), 1);
    //  Once as old as the minimum, it goes; what an instance uses never.
    s_base_path (self, held, path, sizeof path);
    s_age (path, 61);
    s_base_path (self, root, path, sizeof path);
    s_age (path, 100000);
    s_clean (self, 60, true);
    assert_true (s_in_summary (self, "removed", held));
    assert_true (s_in_summary (self, "in_use", root));
    assert_int_equal (s_summary_count (self, "removed"), 1);
    assert_int_equal (access (path, F_OK), 0);
    //  One release too many is harmless.
    zv_imagecache_release (self->cache, held);
    zv_imagecache_release (self->cache, "never-held");
}

//  remove_unused_base_images = false: a pass says what it would remove.
static void
test_imagecache_clean_removal_off (void **state)
{
    fixture_t *self = *state;
    char unused [ZV_UUID_LEN + 1], path [600];
    s_base_file (self, unused, 1000);
    s_clean (self, 60, false);
    assert_true (s_in_summary (self, "unused", unused));
    assert_int_equal (s_summary_count (self, "removed"), 0);
    s_base_path (self, unused, path, sizeof path);
    assert_int_equal (access (path, F_OK), 0);
    //  Nothing at all: an empty pass.
    assert_int_equal (unlink (path), 0);
    s_clean (self, 0, true);
    assert_int_equal (s_summary_count (self, "in_use") + s_summary_count (self, "removed"), 0);
}

//  A fetch that finds the file uses it: its age restarts.  A file that is
//  being fetched is never removed, whatever its age.
static void
test_imagecache_clean_fetches (void **state)
{
    fixture_t *self = *state;
    s_image_t *image = s_add_image (self, 100 * 1000, "raw");
    json_t *record = s_record (image);
    s_fetch (self, record, 1);
    s_wait_calls (self, 1);
    assert_int_equal (self->status [0], ZV_OK);
    s_age (self->path [0], 1000);
    s_fetch (self, record, 2);
    assert_int_equal (self->calls, 2);
    assert_true (s_age_of (self->path [0]) < 30);
    s_clean (self, 60, true);
    assert_true (s_in_summary (self, "young", image->id));
    json_decref (record);

    //  A download in flight, and an old file of that name (another host
    //  of a shared instances path put it there).
    s_image_t *big = s_add_image (self, 4 * S_MIB, "raw");
    record = s_record (big);
    s_fetch (self, record, 3);
    assert_true (s_run (self, s_window_open, S_DEADLINE_MS));
    char path [600];
    s_base_path (self, big->id, path, sizeof path);
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    assert_int_equal (fclose (file), 0);
    s_age (path, 1000);
    s_clean (self, 60, true);
    assert_true (s_in_summary (self, "in_use", big->id));
    s_wait_calls (self, 3);
    assert_int_equal (self->status [2], ZV_OK);
    assert_true (s_same_files (self->path [2], big->path));
    json_decref (record);
}

//  Destroyed while a pass reads the disks: its end touches nothing freed.
static void
test_imagecache_clean_destroy_in_flight (void **state)
{
    fixture_t *self = *state;
    char unused [ZV_UUID_LEN + 1];
    s_base_file (self, unused, 1000);
    assert_true (zv_imagecache_clean (self->cache, self->instances, 60, true, s_cleaned, self));
    zv_imagecache_destroy (&self->cache);
    s_run (self, s_never, 300);
    assert_int_equal (self->passes, 0);
    self->cache = s_cache_new (self, S_CHUNK, S_WINDOW);
    assert_non_null (self->cache);
    s_clean (self, 60, true);
    assert_true (s_in_summary (self, "removed", unused));
}

int
main (void)
{
    zv_log_level = getenv ("ZV_TEST_LOG") ? 3 : 0;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_imagecache_fetch_downloads, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_hit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_shared_download, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_checksum_mismatch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_conductor_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_error_midway, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_refused_records, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_qcow2_converted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_qcow2_with_backing_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_destroy_in_flight, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_clean_removes_unused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_clean_removal_off, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_clean_fetches, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_clean_destroy_in_flight, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_imagecache_throughput, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
