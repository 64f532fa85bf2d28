/*  test_movepull.c: a move's destination pulling files from its source
    (zv_movepull), against the source's own chunk reader.

    Each test runs, on one zloop, a pull with a real link and real workers,
    and a fake conductor: a ROUTER on an inproc endpoint that answers
    conductor.service_heartbeat and relays conductor.move_read to the
    source's side, zv_movefiles_read over a "source" folder, as the
    conductor relays it to compute.move_read.  The fake can refuse chunks
    as a peer that is away does (unavailable), drop them so that their
    calls time out, or stop answering, and counts what it was asked: a
    resumed copy shows as fewer chunks.  Files are random bytes in a fresh
    folder under /tmp; the loop runs until the pull ends, with a deadline.  */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virt/zv_movepull.h"
#include "virt/zv_movefiles.h"
#include "virt/zv_disk.h"
#include "zv_test.h"

#define S_CHUNK         (64 * 1024)
#define S_WINDOW        3
#define S_UUID          "4f1c2a0e-8d3b-4c55-9a6e-0b7d2f1e9c31"
#define S_MIGRATION     "7a1e3c5d-2b4f-4a6e-8c1d-9e0f1a2b3c4d"
#define S_DEADLINE_MS   30000

typedef struct {
    char dir [256];
    char src [300];                     //  the source's <uuid>_resize
    char dst [300];                     //  the destination's <uuid>
    char endpoint [64];
    zloop_t *loop;
    zsock_t *router;                    //  the fake conductor
    zv_link_t *link;
    zv_workers_t *workers;
    zv_movepull_t *pull;
    //  The fake conductor.
    int asked;                          //  conductor.move_read requests
    int64_t asked_bytes;
    int unavailable;                    //  the next N are refused as a peer away
    int drop;                           //  the next N get no reply
    int answer_only;                    //  > 0: only the first N are answered (then silence)
    char bad_name [64];                 //  a file never seen: asked, it is a failure
    //  The pull's end.
    bool ended;
    zv_status_t status;
    char errtext [1024];
    int progress;
} fixture_t;

//  ---------------------------------------------------------------------
//  The fake conductor, relaying to the source's reader.

static zv_msg_t *
s_read_reply (fixture_t *self, zv_msg_t *request)
{
    self->asked++;
    assert_string_equal (zv_msg_get_str (request, "uuid"), S_UUID);
    assert_string_equal (zv_msg_get_str (request, "migration"), S_MIGRATION);
    assert_string_equal (zv_msg_rq (request), "req-move");
    const char *file = zv_msg_get_str (request, "file");
    int64_t offset = zv_msg_get_int (request, "offset", -1);
    int64_t length = zv_msg_get_int (request, "length", -1);
    self->asked_bytes += length;
    if (self->answer_only && self->asked > self->answer_only)
        return NULL;
    if (self->drop > 0) {
        self->drop--;
        return NULL;
    }
    if (self->unavailable > 0) {
        self->unavailable--;
        return zv_msg_error (request, ZV_EUNAVAILABLE, "compute host node1 is not connected");
    }
    void *data = NULL;
    size_t got = 0;
    int64_t size = 0;
    char errbuf [512];
    zv_status_t status = zv_movefiles_read (self->src, file, offset, length, &data, &got, &size,
                                            errbuf, sizeof errbuf);
    if (status != ZV_OK)
        return zv_msg_error (request, status, "%s", errbuf);
    zv_msg_t *reply = zv_msg_reply (request);
    json_t *body = json_pack ("{s:I, s:I, s:I}", "offset", (json_int_t) offset, "length", (json_int_t) got,
                              "size", (json_int_t) size);
    zv_msg_set_body (reply, &body);
    zv_msg_set_payload (reply, data, got);
    free (data);
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
        zv_msg_t *reply = NULL;
        if (strcmp (zv_msg_type (request), "conductor.service_heartbeat") == 0) {
            reply = zv_msg_reply (request);
            json_t *body = json_pack ("{s:s, s:i}", "epoch", "6f0e3c55-0d4b-4f59-9a4e-1b0f2c3d4e5f",
                                      "service_down_time", 60);
            zv_msg_set_body (reply, &body);
        }
        else
        if (strcmp (zv_msg_type (request), "conductor.move_read") == 0)
            reply = s_read_reply (self, request);
        else
            fail_msg ("the fake conductor got %s", zv_msg_type (request));
        if (reply)
            assert_int_equal (zv_msg_send (&reply, router), 0);
        zv_msg_destroy (&request);
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Files

static void
s_random_file (const char *dir, const char *name, int64_t size)
{
    char path [400];
    snprintf (path, sizeof path, "%s/%s", dir, name);
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

//  The first bytes of src/name as dst/name<suffix>.
static void
s_copy_prefix (fixture_t *self, const char *name, const char *suffix, int64_t bytes)
{
    char from [400], to [400];
    snprintf (from, sizeof from, "%s/%s", self->src, name);
    snprintf (to, sizeof to, "%s/%s%s", self->dst, name, suffix);
    char *data = zv_test_slurp (from);
    assert_non_null (data);
    FILE *file = fopen (to, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (data, 1, (size_t) bytes, file), (size_t) bytes);
    assert_int_equal (fclose (file), 0);
    free (data);
}

static bool
s_same (fixture_t *self, const char *name)
{
    char from [400], to [400];
    snprintf (from, sizeof from, "%s/%s", self->src, name);
    snprintf (to, sizeof to, "%s/%s", self->dst, name);
    struct stat a, b;
    if (stat (from, &a) != 0 || stat (to, &b) != 0 || a.st_size != b.st_size)
        return false;
    char *one = zv_test_slurp (from), *two = zv_test_slurp (to);
    bool same = one && two && memcmp (one, two, (size_t) a.st_size) == 0;
    free (one);
    free (two);
    return same;
}

static bool
s_exists (fixture_t *self, const char *name)
{
    char path [400];
    snprintf (path, sizeof path, "%s/%s", self->dst, name);
    return access (path, F_OK) == 0;
}

//  The source's files: a disk of several chunks and a ragged end, an
//  ephemeral disk of one chunk, an empty console log.
static json_t *
s_source (fixture_t *self)
{
    s_random_file (self->src, "disk", 7 * S_CHUNK + 1234);
    s_random_file (self->src, "disk.local", S_CHUNK);
    s_random_file (self->src, "console.log", 0);
    char errbuf [512];
    json_t *files = zv_movefiles_manifest (self->src, errbuf, sizeof errbuf);
    assert_non_null (files);
    assert_int_equal (json_array_size (files), 3);
    return files;
}

//  ---------------------------------------------------------------------
//  The pull

static void
s_progress (void *actor, void *ctx, int64_t copied, int64_t total)
{
    (void) ctx;
    fixture_t *self = (fixture_t *) actor;
    assert_true (copied <= total);
    self->progress++;
}

static void
s_done (void *actor, void *ctx, zv_status_t status, const char *errtext)
{
    fixture_t *self = (fixture_t *) actor;
    assert_ptr_equal (ctx, self);
    assert_false (self->ended);
    self->ended = true;
    self->status = status;
    snprintf (self->errtext, sizeof self->errtext, "%s", errtext);
}

static void
s_start (fixture_t *self, const json_t *files, int timeout_ms)
{
    zv_movepull_args_t args = {
        .dir = self->dst, .uuid = S_UUID, .migration = S_MIGRATION, .rq = "req-move", .files = files,
        .chunk_size = S_CHUNK, .window = S_WINDOW, .timeout_ms = timeout_ms
    };
    char errbuf [512];
    self->ended = false;
    self->pull = zv_movepull_start (self->link, self->workers, self->loop, self, &args, s_progress, s_done,
                                    self, errbuf, sizeof errbuf);
    if (!self->pull)
        fail_msg ("cannot start the pull: %s", errbuf);
}

typedef bool (s_until_fn) (fixture_t *self);

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
    return run->until (run->self) || zv_mono_ms () >= run->deadline ? -1 : 0;
}

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
s_ended (fixture_t *self)
{
    return self->ended;
}

//  The 5 answered chunks and the window after them were asked.
static bool
s_asked_window (fixture_t *self)
{
    return self->asked >= 5 + S_WINDOW;
}

static void
s_wait_end (fixture_t *self)
{
    if (!s_run (self, s_ended, S_DEADLINE_MS))
        fail_msg ("the pull did not end within %d ms (%d chunks asked)", S_DEADLINE_MS, self->asked);
    zv_movepull_destroy (&self->pull);
}

//  ---------------------------------------------------------------------

static int
s_setup (void **state)
{
    static int instance = 0;
    fixture_t *self = (fixture_t *) calloc (1, sizeof *self);
    assert_non_null (self);
    assert_true (sodium_init () >= 0);
    snprintf (self->dir, sizeof self->dir, "/tmp/zv-test-movepull-XXXXXX");
    assert_non_null (mkdtemp (self->dir));
    snprintf (self->src, sizeof self->src, "%s/src/" S_UUID "_resize", self->dir);
    snprintf (self->dst, sizeof self->dst, "%s/dst/" S_UUID, self->dir);
    assert_int_equal (zv_disk_mkdirs (self->src), 0);
    self->loop = zloop_new ();
    snprintf (self->endpoint, sizeof self->endpoint, "inproc://zv-test-movepull-%d", instance++);
    self->router = zsock_new (ZMQ_ROUTER);
    assert_int_equal (zsock_bind (self->router, "%s", self->endpoint), 0);
    zloop_reader (self->loop, self->router, s_conductor_readable, self);
    zv_actor_args_t args;
    memset (&args, 0, sizeof args);
    zv_config_defaults (&args.config);
    snprintf (args.config.host, sizeof args.config.host, "node2");
    snprintf (args.conductor_endpoint, sizeof args.conductor_endpoint, "%s", self->endpoint);
    self->link = zv_link_new ("compute", &args, self->loop, self, NULL, NULL, NULL);
    assert_non_null (self->link);
    self->workers = zv_workers_new (self->loop, self, 2);
    assert_non_null (self->workers);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    zv_movepull_destroy (&self->pull);
    zv_workers_destroy (&self->workers);
    zv_link_destroy (&self->link);
    zloop_reader_end (self->loop, self->router);
    zsock_destroy (&self->router);
    zloop_destroy (&self->loop);
    char path [320];
    assert_int_equal (zv_disk_remove_dir (self->src), 0);
    assert_int_equal (zv_disk_remove_dir (self->dst), 0);
    snprintf (path, sizeof path, "%s/src", self->dir);
    assert_int_equal (zv_disk_remove_dir (path), 0);
    snprintf (path, sizeof path, "%s/dst", self->dir);
    assert_int_equal (zv_disk_remove_dir (path), 0);
    assert_int_equal (zv_disk_remove_dir (self->dir), 0);
    free (self);
    return 0;
}

//  Every file arrives whole, each chunk asked once, nothing left behind;
//  pulled again, nothing is asked.
static void
test_movepull_copies (void **state)
{
    fixture_t *self = *state;
    json_t *files = s_source (self);
    s_start (self, files, 10000);
    s_wait_end (self);
    assert_int_equal (self->status, ZV_OK);
    assert_true (s_same (self, "disk"));
    assert_true (s_same (self, "disk.local"));
    assert_true (s_same (self, "console.log"));
    assert_false (s_exists (self, "disk.part"));
    assert_false (s_exists (self, "disk.local.part"));
    assert_false (s_exists (self, "console.log.part"));
    assert_int_equal (self->asked, 8 + 1);
    assert_int_equal (self->asked_bytes, 8 * S_CHUNK + 1234);

    //  A phase cast again: the files in place are checked, not fetched.
    self->asked = 0;
    s_start (self, files, 10000);
    s_wait_end (self);
    assert_int_equal (self->status, ZV_OK);
    assert_int_equal (self->asked, 0);
    json_decref (files);
}

//  A file already in place is skipped; one in place with other bytes is
//  fetched again over it.
static void
test_movepull_skips_complete (void **state)
{
    fixture_t *self = *state;
    json_t *files = s_source (self);
    assert_int_equal (zv_disk_mkdirs (self->dst), 0);
    s_copy_prefix (self, "disk", "", 7 * S_CHUNK + 1234);
    s_random_file (self->dst, "disk.local", S_CHUNK);
    s_start (self, files, 10000);
    s_wait_end (self);
    assert_int_equal (self->status, ZV_OK);
    assert_int_equal (self->asked, 1);
    assert_true (s_same (self, "disk"));
    assert_true (s_same (self, "disk.local"));
    json_decref (files);
}

//  A .part left by an interrupted pull: the copy resumes a window before
//  its end.
static void
test_movepull_resumes (void **state)
{
    fixture_t *self = *state;
    json_t *files = s_source (self);
    assert_int_equal (zv_disk_mkdirs (self->dst), 0);
    s_copy_prefix (self, "disk", ".part", 6 * S_CHUNK);
    s_start (self, files, 10000);
    s_wait_end (self);
    assert_int_equal (self->status, ZV_OK);
    assert_true (s_same (self, "disk"));
    //  6 chunks held, 3 of them may be holes: chunks 3 to 7 of the disk,
    //  and disk.local's one.
    assert_int_equal (self->asked, 5 + 1);
    json_decref (files);
}

//  A compute that stops in the middle (the pull destroyed while chunks
//  are in flight), then the phase cast again: it goes on from the .part.
static void
test_movepull_restart (void **state)
{
    fixture_t *self = *state;
    json_t *files = s_source (self);
    self->answer_only = 5;
    s_start (self, files, 10000);
    assert_true (s_run (self, s_asked_window, S_DEADLINE_MS));
    assert_false (s_run (self, s_ended, 200));
    assert_int_equal (self->asked, 5 + S_WINDOW);
    zv_movepull_destroy (&self->pull);
    assert_true (s_exists (self, "disk.part"));

    self->answer_only = 0;
    self->asked = 0;
    s_start (self, files, 10000);
    s_wait_end (self);
    assert_int_equal (self->status, ZV_OK);
    assert_true (s_same (self, "disk"));
    assert_true (s_same (self, "disk.local"));
    //  5 chunks held, less the window: from chunk 2 on, and disk.local.
    assert_int_equal (self->asked, 6 + 1);
    json_decref (files);
}

//  The source away for a moment, a chunk lost: asked again, and it ends.
static void
test_movepull_transient (void **state)
{
    fixture_t *self = *state;
    json_t *files = s_source (self);
    self->unavailable = 4;
    self->drop = 0;
    s_start (self, files, 10000);
    s_wait_end (self);
    assert_int_equal (self->status, ZV_OK);
    assert_true (s_same (self, "disk"));
    assert_true (self->asked > 9);

    //  A call that times out (bounded by half the pull's timeout, and seen
    //  by the link's expiry every 500 ms): asked again before the pull
    //  would give up.
    assert_int_equal (zv_disk_remove_dir (self->dst), 0);
    self->asked = 0;
    self->drop = 1;
    s_start (self, files, 4000);
    s_wait_end (self);
    assert_int_equal (self->status, ZV_OK);
    assert_true (s_same (self, "disk"));
    assert_true (s_same (self, "disk.local"));
    assert_true (self->asked > 9);
    json_decref (files);
}

//  No progress for the timeout: failed, saying why; the .part stays.
static void
test_movepull_timeout (void **state)
{
    fixture_t *self = *state;
    json_t *files = s_source (self);
    self->unavailable = 1000000;
    int64_t started = zv_mono_ms ();
    s_start (self, files, 1200);
    s_wait_end (self);
    int64_t took = zv_mono_ms () - started;
    assert_int_equal (self->status, ZV_ETIMEOUT);
    assert_true (zv_test_has (self->errtext, "no progress copying disk"));
    assert_true (zv_test_has (self->errtext, "is not connected"));
    assert_true (took >= 1200 && took < 10000);
    assert_true (s_exists (self, "disk.part"));
    json_decref (files);
}

//  An answer that asking again cannot cure: failed at once.
static void
test_movepull_permanent (void **state)
{
    fixture_t *self = *state;
    json_t *files = s_source (self);
    char path [400];
    snprintf (path, sizeof path, "%s/disk", self->src);
    assert_int_equal (unlink (path), 0);
    s_start (self, files, 60000);
    s_wait_end (self);
    assert_int_equal (self->status, ZV_ENOTFOUND);
    assert_true (zv_test_has (self->errtext, "cannot copy disk from the source"));
    assert_true (self->asked <= S_WINDOW);
    json_decref (files);
}

//  The bytes are not what the manifest says: fetched a second time from
//  the start, then failed.
static void
test_movepull_mismatch (void **state)
{
    fixture_t *self = *state;
    json_t *files = s_source (self);
    json_t *entry = json_array_get (files, 1);
    assert_string_equal (json_string_value (json_object_get (entry, "name")), "disk.local");
    json_object_set_new (entry, "sha256",
                         json_string ("0000000000000000000000000000000000000000000000000000000000000000"));
    s_start (self, files, 10000);
    s_wait_end (self);
    assert_int_equal (self->status, ZV_EIO);
    assert_true (zv_test_has (self->errtext, "disk.local: sha256 mismatch"));
    assert_true (zv_test_has (self->errtext, "twice"));
    assert_int_equal (self->asked, 8 + 2);
    assert_true (s_same (self, "disk"));
    assert_false (s_exists (self, "disk.local"));
    json_decref (files);
}

//  A manifest that names what no move carries never starts.
static void
test_movepull_bad_manifest (void **state)
{
    fixture_t *self = *state;
    json_t *files = json_pack ("[{s:s, s:i, s:s}]", "name", "../../etc/passwd", "size", 1,
                               "sha256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    zv_movepull_args_t args = {
        .dir = self->dst, .uuid = S_UUID, .migration = S_MIGRATION, .files = files,
        .chunk_size = S_CHUNK, .window = S_WINDOW, .timeout_ms = 1000
    };
    char errbuf [512];
    assert_null (zv_movepull_start (self->link, self->workers, self->loop, self, &args, NULL, s_done, self,
                                    errbuf, sizeof errbuf));
    assert_true (zv_test_has (errbuf, "is not a file a move carries"));
    json_decref (files);
    files = json_array ();
    args.files = files;
    args.migration = "not-a-uuid";
    assert_null (zv_movepull_start (self->link, self->workers, self->loop, self, &args, NULL, s_done, self,
                                    errbuf, sizeof errbuf));
    //  Nothing to carry (shared storage): done, nothing asked.
    args.migration = S_MIGRATION;
    s_start (self, files, 1000);
    s_wait_end (self);
    assert_int_equal (self->status, ZV_OK);
    assert_int_equal (self->asked, 0);
    json_decref (files);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_movepull_copies, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_movepull_skips_complete, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_movepull_resumes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_movepull_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_movepull_transient, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_movepull_timeout, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_movepull_permanent, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_movepull_mismatch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_movepull_bad_manifest, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
