/*  zv_imagecache.c: a compute host's cache of image files, <instances_path>/_base.

    One download per image being fetched, in a table by image id; every
    fetch of that image while it runs adds a waiter to it.  A download asks
    for chunk 0 alone (its reply tells the size), then keeps `window` chunk
    calls in flight, each answered chunk written with pwrite at its offset
    into <id>.part on the loop's thread (a copy into the page cache, about
    a millisecond for 4 MiB).  Hashing is what costs (sha256 runs at about
    200 MB/s, tens of milliseconds a chunk): it runs on the workers, one job
    at a time per download over the prefix of the file already written,
    read back from the page cache, so the loop stays free and chunks that
    arrive out of order are hashed once the gap before them closes.  When
    the last byte is hashed the loop compares the digest with the record's
    checksum; a finish job then converts (qemu-img, through zv_disk_import)
    or syncs the file and renames it into place, and the waiters are called.

    Lifetime: a download is reference counted.  The cache's table holds one
    reference until the download ends (waiters called, or dropped at
    destroy); each chunk call's context and each worker job hold one more.
    A completion that arrives after the end (a late chunk, a job finishing
    after destroy) sees `ended` and only lets go of its reference, so it
    never touches the cache, which may be gone: the download, not the cache,
    is what a completion holds.  A finish job still running at destroy
    completes its rename: the file it puts in place is verified.

    Cleaning (zv_imageclean.h has the rules): a pass snapshots on the loop
    what the loop itself uses (images held by operations, downloads), reads
    the disks on a worker (the instances' uses, the base files' ages;
    touches those in use) and comes back to the loop to remove what is
    unused and old enough.  The loop checks each file again before it
    removes it: held now, fetched, or held at any time since the pass began
    (an operation can begin and end while the worker reads), and it is
    kept.  Removal on the loop is what makes that check exact: a fetch
    that finds the file, and the removal, never interleave.                 */

#include "virt/zv_imagecache.h"
#include "virt/zv_disk.h"
#include "virt/zv_imageclean.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include "common/zv_sha256.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  A chunk is at most 4 MiB, so 30 s means a link under 140 KB/s: not a
//  transfer any build should wait on.
#define S_CHUNK_TIMEOUT_MS  30000
#define S_HASH_BUFFER       (1024 * 1024)
//  A hash job covers at most this much (a fifth of a second), so that a
//  download that outruns its hashing never holds a worker for long: the
//  compute's other jobs get their turn between two.
#define S_HASH_JOB_MAX      (INT64_C (32) * 1024 * 1024)
#define S_MB                (1024.0 * 1024.0)

//  How each disk format the conductor accepts becomes a raw file: the
//  format qemu-img reads it as, or NULL when its bytes are raw already.
//  Formats whose files can name other files that qemu-img info does not
//  report (vmdk extents) are left out on purpose.
typedef struct {
    const char *disk_format;
    const char *qemu_format;
} s_format_t;

static const s_format_t s_formats [] = {
    { "raw",   NULL },
    { "ami",   NULL },
    { "ari",   NULL },
    { "aki",   NULL },
    { "iso",   NULL },
    { "qcow2", "qcow2" },
};

typedef struct {
    zv_imagecache_fn *fn;
    void *ctx;
} s_waiter_t;

typedef struct {
    int refs;                       //  the cache's table, each chunk call, each job
    zv_imagecache_t *cache;         //  NULL once the cache is destroyed
    bool ended;                     //  waiters called or dropped: completions let go
    bool hashing;                   //  a hash job runs: sha belongs to it
    bool finishing;                 //  the finish job runs: the files belong to it
    char id [ZV_UUID_LEN + 1];
    char rq [72];
    char checksum [129];            //  expected sha256 hex; "" until known
    char disk_format [32];          //  "" until known
    const s_format_t *format;       //  NULL until known
    char part [PATH_MAX];
    char converting [PATH_MAX];
    char final [PATH_MAX];
    int fd;                         //  on part, read and write
    int64_t record_size;            //  0 when the record does not say
    int64_t size;                   //  -1 until the first reply
    int64_t requested;              //  next offset to ask for
    int64_t received;               //  bytes written
    int64_t written;                //  every byte below is in the file
    int64_t hashed;                 //  every byte below is in sha
    uint8_t *chunks;                //  one bit per chunk written
    int in_flight;                  //  chunk calls
    int64_t started_ms;
    int64_t transfer_ms;            //  from start to the digest checked
    zv_sha256_t *sha;
    s_waiter_t *waiters;
    size_t waiter_count;
    size_t waiter_max;
} s_download_t;

//  A chunk call's context, and a worker job's.
typedef struct {
    s_download_t *download;
    int64_t offset;
    int64_t length;
} s_chunk_t;

typedef struct {
    s_download_t *download;
    int64_t from;                   //  hash: the range [from, to)
    int64_t to;
    int error;                      //  hash: errno of a failed read
    zv_status_t status;             //  finish
    char errtext [1024];
} s_job_t;

//  What the loop knows of one image's use.
typedef struct {
    int holds;
    int64_t last_ms;                //  mono ms of its last hold, release or hit
} s_use_t;

//  A cleaning pass, from the loop to a worker and back.
typedef struct {
    zv_imagecache_t *cache;         //  NULL once the cache is destroyed
    char instances_path [PATH_MAX];
    char dir [PATH_MAX];
    int64_t min_age_s;
    bool remove;
    int64_t started_ms;
    json_t *busy;                   //  {id: "..."}: held or fetched at the start
    //  The worker's findings.
    json_t *used;                   //  {id: where}: the instances' and busy
    json_t *verdicts;               //  {id: verdict name}
    int64_t now_s;
    int list_error;                 //  errno when the cache folder could not be read
    int touch_error;                //  errno of the first touch that failed
    char touch_path [PATH_MAX];
    zv_imagecache_clean_fn *fn;
    void *ctx;
} s_clean_t;

struct _zv_imagecache_t {
    char dir [PATH_MAX];
    char name [320];                //  the link's identity, for logs
    zv_link_t *link;
    zv_workers_t *workers;
    void *actor;
    int64_t chunk_size;
    int window;
    zhashx_t *downloads;            //  id -> s_download_t (a reference)
    zhashx_t *uses;                 //  id -> s_use_t
    s_clean_t *clean;               //  the pass that runs, NULL when none
    //  Counters of downloads that ended well.
    int64_t downloads_done;
    int64_t bytes;
    int64_t transfer_ms;
    int64_t conversions;
    int64_t hits;
};

static const s_format_t *
s_format_lookup (const char *disk_format)
{
    for (size_t index = 0; index < sizeof s_formats / sizeof s_formats [0]; index++)
        if (strcmp (s_formats [index].disk_format, disk_format) == 0)
            return &s_formats [index];
    return NULL;
}

static void
s_download_unref (s_download_t *self)
{
    assert (self->refs > 0);
    if (--self->refs > 0)
        return;
    if (self->fd >= 0)
        close (self->fd);
    free (self->chunks);
    free (self->waiters);
    zv_sha256_destroy (&self->sha);
    free (self);
}

static void
s_waiter_add (s_download_t *self, zv_imagecache_fn *fn, void *ctx)
{
    if (self->waiter_count == self->waiter_max) {
        self->waiter_max = self->waiter_max ? self->waiter_max * 2 : 4;
        self->waiters = (s_waiter_t *) realloc (self->waiters, self->waiter_max * sizeof (s_waiter_t));
        assert (self->waiters);
    }
    self->waiters [self->waiter_count++] = (s_waiter_t) { fn, ctx };
}

static const char *
s_rq (const s_download_t *self)
{
    return *self->rq ? self->rq : NULL;
}

//  The download is over: out of the table, files gone on failure, every
//  waiter called.  The table's reference goes last, so the download is
//  alive while the waiters run (they must not destroy the cache).
static void
s_end (s_download_t *self, zv_status_t status, const char *errtext)
{
    assert (!self->ended && self->cache);
    zv_imagecache_t *cache = self->cache;
    self->ended = true;
    zhashx_delete (cache->downloads, self->id);
    if (status != ZV_OK) {
        unlink (self->part);
        unlink (self->converting);
        zv_warning (cache->name, s_rq (self), "%s", errtext);
    }
    for (size_t index = 0; index < self->waiter_count; index++)
        self->waiters [index].fn (cache->actor, self->waiters [index].ctx, status,
                                  status == ZV_OK ? self->final : NULL,
                                  status == ZV_OK ? "" : errtext);
    self->waiter_count = 0;
    s_download_unref (self);
}

//  Formatted s_end for failures.
static void
s_fail (s_download_t *self, zv_status_t status, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_fail (s_download_t *self, zv_status_t status, const char *format, ...)
{
    char errtext [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (errtext, sizeof errtext, format, args);
    va_end (args);
    s_end (self, status, errtext);
}

//  ---------------------------------------------------------------------
//  Finishing, on a worker: the verified bytes become <dir>/<id>, raw.

static void
s_sync_dir (const char *path)
{
    char dir [PATH_MAX];
    snprintf (dir, sizeof dir, "%s", path);
    char *slash = strrchr (dir, '/');
    if (slash)
        *slash = '\0';
    int fd = open (slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync (fd);
        close (fd);
    }
}

static void
s_finish_work (void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    s_download_t *self = job->download;
    job->status = ZV_OK;
    //  Synced before the rename: after a crash the final name holds the
    //  whole image or does not exist.
    if (self->format->qemu_format) {
        job->status = zv_disk_import (self->part, self->format->qemu_format, self->converting,
                                      job->errtext, sizeof job->errtext);
        int fd = job->status == ZV_OK ? open (self->converting, O_RDONLY | O_CLOEXEC) : -1;
        if (job->status == ZV_OK && (fd < 0 || fsync (fd) != 0)) {
            snprintf (job->errtext, sizeof job->errtext, "cannot sync %s: %s", self->converting,
                      strerror (errno));
            job->status = ZV_EIO;
        }
        if (fd >= 0)
            close (fd);
        if (job->status == ZV_OK && rename (self->converting, self->final) != 0) {
            snprintf (job->errtext, sizeof job->errtext, "cannot rename %s to %s: %s",
                      self->converting, self->final, strerror (errno));
            job->status = ZV_EIO;
        }
        if (job->status == ZV_OK)
            unlink (self->part);
    }
    else {
        if (fsync (self->fd) != 0) {
            snprintf (job->errtext, sizeof job->errtext, "cannot sync %s: %s", self->part,
                      strerror (errno));
            job->status = ZV_EIO;
        }
        else
        if (rename (self->part, self->final) != 0) {
            snprintf (job->errtext, sizeof job->errtext, "cannot rename %s to %s: %s",
                      self->part, self->final, strerror (errno));
            job->status = ZV_EIO;
        }
    }
    if (job->status == ZV_OK)
        s_sync_dir (self->final);
}

static void
s_finish_done (void *actor, void *arg)
{
    (void) actor;
    s_job_t *job = (s_job_t *) arg;
    s_download_t *self = job->download;
    self->finishing = false;
    if (self->ended)
        ;                           //  the cache is gone
    else
    if (zv_workers_cancelled (self->cache->workers))
        s_fail (self, ZV_EUNAVAILABLE, "image %s: not stored, the compute is stopping", self->id);
    else
    if (job->status != ZV_OK)
        s_fail (self, job->status, "image %s: %s", self->id, job->errtext);
    else {
        zv_imagecache_t *cache = self->cache;
        cache->downloads_done++;
        cache->bytes += self->size;
        cache->transfer_ms += self->transfer_ms;
        if (self->format->qemu_format) {
            cache->conversions++;
            zv_info (cache->name, s_rq (self), "image %s: converted from %s to raw", self->id,
                     self->format->disk_format);
        }
        s_end (self, ZV_OK, "");
    }
    free (job);
    s_download_unref (self);
}

//  The last byte is hashed: compare, then finish on a worker.
static void
s_verify (s_download_t *self)
{
    zv_imagecache_t *cache = self->cache;
    char hex [65];
    zv_sha256_hex (self->sha, hex);
    if (strcasecmp (hex, self->checksum) != 0) {
        s_fail (self, ZV_EIO, "image %s: checksum mismatch (expected %s, got %s)",
                self->id, self->checksum, hex);
        return;
    }
    self->transfer_ms = zv_mono_ms () - self->started_ms;
    double seconds = (double) (self->transfer_ms > 0 ? self->transfer_ms : 1) / 1000.0;
    zv_info (cache->name, s_rq (self), "image %s: %.1f MB in %.2f s (%.1f MB/s), checksum verified",
             self->id, (double) self->size / S_MB, seconds, (double) self->size / S_MB / seconds);
    s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t));
    job->download = self;
    self->refs++;
    self->finishing = true;
    zv_workers_submit (cache->workers, s_finish_work, s_finish_done, job);
}

//  ---------------------------------------------------------------------
//  Hashing, on a worker: the written prefix not hashed yet.

static void
s_hash_work (void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    s_download_t *self = job->download;
    unsigned char *buffer = (unsigned char *) malloc (S_HASH_BUFFER);
    if (!buffer) {
        job->error = ENOMEM;
        return;
    }
    int64_t offset = job->from;
    while (offset < job->to) {
        size_t want = job->to - offset < S_HASH_BUFFER ? (size_t) (job->to - offset) : S_HASH_BUFFER;
        ssize_t got = pread (self->fd, buffer, want, offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            job->error = got < 0 ? errno : EIO;     //  0: the file is shorter than written
            break;
        }
        zv_sha256_update (self->sha, buffer, (size_t) got);
        offset += got;
    }
    free (buffer);
}

static void s_hash_kick (s_download_t *self);

static void
s_hash_done (void *actor, void *arg)
{
    (void) actor;
    s_job_t *job = (s_job_t *) arg;
    s_download_t *self = job->download;
    self->hashing = false;
    if (self->ended)
        ;                           //  failed meanwhile, or the cache is gone
    else
    if (zv_workers_cancelled (self->cache->workers))
        s_fail (self, ZV_EUNAVAILABLE, "image %s: download stopped, the compute is stopping", self->id);
    else
    if (job->error)
        s_fail (self, ZV_EIO, "image %s: cannot read %s back: %s", self->id, self->part,
                strerror (job->error));
    else {
        self->hashed = job->to;
        if (self->hashed == self->size)
            s_verify (self);
        else
            s_hash_kick (self);
    }
    free (job);
    s_download_unref (self);
}

static void
s_hash_kick (s_download_t *self)
{
    if (self->hashing || self->ended || self->hashed >= self->written)
        return;
    s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t));
    job->download = self;
    job->from = self->hashed;
    job->to = self->written - self->hashed > S_HASH_JOB_MAX ? self->hashed + S_HASH_JOB_MAX : self->written;
    self->refs++;
    self->hashing = true;
    zv_workers_submit (self->cache->workers, s_hash_work, s_hash_done, job);
}

//  ---------------------------------------------------------------------
//  Chunks: calls to the conductor and their replies.

static void
s_chunk_free (void *ctx)
{
    s_chunk_t *chunk = (s_chunk_t *) ctx;
    s_download_unref (chunk->download);
    free (chunk);
}

//  The first reply: the size is known, so the bitmap of chunks can be
//  made, the space taken (a full disk fails now, not at the last chunk),
//  and what the record left out is taken from the conductor.
static bool
s_first_reply (s_download_t *self, zv_msg_t *reply, int64_t size)
{
    zv_imagecache_t *cache = self->cache;
    if (self->record_size && size != self->record_size) {
        s_fail (self, ZV_EIO, "image %s: the conductor has %" PRId64 " bytes, its record says %" PRId64,
                self->id, size, self->record_size);
        return false;
    }
    if (!*self->checksum) {
        const char *checksum = zv_msg_get_str (reply, "checksum");
        if (!checksum || !*checksum) {
            s_fail (self, ZV_EINVAL, "image %s has no checksum to verify", self->id);
            return false;
        }
        snprintf (self->checksum, sizeof self->checksum, "%s", checksum);
    }
    if (!self->format) {
        const char *disk_format = zv_msg_get_str (reply, "disk_format");
        snprintf (self->disk_format, sizeof self->disk_format, "%s", disk_format ? disk_format : "raw");
        self->format = s_format_lookup (self->disk_format);
        if (!self->format) {
            s_fail (self, ZV_EUNSUPPORTED, "image %s: disk format '%s' is not supported",
                    self->id, self->disk_format);
            return false;
        }
    }
    if (fallocate (self->fd, 0, 0, size) != 0 && errno != EOPNOTSUPP) {
        s_fail (self, ZV_EIO, "image %s: no room for %.1f MB in %s: %s", self->id,
                (double) size / S_MB, cache->dir, strerror (errno));
        return false;
    }
    self->size = size;
    int64_t chunk_count = (size + cache->chunk_size - 1) / cache->chunk_size;
    self->chunks = (uint8_t *) zmalloc ((size_t) (chunk_count + 7) / 8);
    return true;
}

static void
s_chunk_arrived (s_download_t *self, s_chunk_t *chunk, zv_msg_t *reply)
{
    zv_imagecache_t *cache = self->cache;
    if (zv_msg_status (reply) != ZV_OK) {
        s_fail (self, zv_msg_status (reply), "cannot download image %s: %s", self->id,
                zv_msg_error_text (reply));
        return;
    }
    int64_t size = zv_msg_get_int (reply, "size", -1);
    int64_t offset = zv_msg_get_int (reply, "offset", -1);
    int64_t length = zv_msg_get_int (reply, "length", -1);
    size_t bytes = 0;
    const void *data = zv_msg_payload (reply, &bytes);
    if (size == 0) {
        s_fail (self, ZV_ECONFLICT, "image %s has no data (size 0)", self->id);
        return;
    }
    int64_t expected = size - chunk->offset < chunk->length ? size - chunk->offset : chunk->length;
    if (size < 0 || offset != chunk->offset || length != (int64_t) bytes || length != expected
    ||  (self->size >= 0 && size != self->size)) {
        s_fail (self, ZV_EINVAL, "image %s: bad chunk from the conductor (offset %" PRId64
                ", length %" PRId64 ", %zu bytes, size %" PRId64 ") for offset %" PRId64,
                self->id, offset, length, bytes, size, chunk->offset);
        return;
    }
    if (self->size < 0 && !s_first_reply (self, reply, size))
        return;
    size_t done = 0;
    while (done < bytes) {
        ssize_t wrote = pwrite (self->fd, (const char *) data + done, bytes - done, offset + (int64_t) done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote < 0) {
            s_fail (self, ZV_EIO, "image %s: cannot write %s: %s", self->id, self->part, strerror (errno));
            return;
        }
        done += (size_t) wrote;
    }
    self->received += length;
    int64_t index = offset / cache->chunk_size;
    self->chunks [index / 8] |= (uint8_t) (1u << (index % 8));
    while (self->written < self->size) {
        index = self->written / cache->chunk_size;
        if (!(self->chunks [index / 8] & (1u << (index % 8))))
            break;
        self->written = self->written + cache->chunk_size < self->size
                      ? self->written + cache->chunk_size : self->size;
    }
    if (self->received == self->size)
        zv_debug (cache->name, s_rq (self), "image %s: last byte in after %" PRId64 " ms",
                  self->id, zv_mono_ms () - self->started_ms);
    s_hash_kick (self);
}

static void s_fill_window (s_download_t *self);

static void
s_chunk_done (void *actor, void *ctx, zv_msg_t *reply)
{
    (void) actor;
    s_chunk_t *chunk = (s_chunk_t *) ctx;
    s_download_t *self = chunk->download;
    self->in_flight--;
    if (!self->ended)
        s_chunk_arrived (self, chunk, reply);
    if (!self->ended)
        s_fill_window (self);
    s_chunk_free (chunk);
}

//  Ask for the next chunk.  The reply may come at once (a failed send is
//  answered before zv_link_call returns), so callers hold a reference.
static void
s_request (s_download_t *self)
{
    zv_imagecache_t *cache = self->cache;
    s_chunk_t *chunk = (s_chunk_t *) zmalloc (sizeof (s_chunk_t));
    chunk->download = self;
    chunk->offset = self->requested;
    chunk->length = cache->chunk_size;
    if (self->size >= 0 && self->size - self->requested < chunk->length)
        chunk->length = self->size - self->requested;
    self->refs++;
    self->requested += chunk->length;
    self->in_flight++;
    zv_msg_t *request = zv_msg_new ("conductor.image_download");
    if (*self->rq)
        zv_msg_set_rq (request, self->rq);
    json_t *body = json_pack ("{s:s, s:I, s:I}", "id", self->id, "offset", (json_int_t) chunk->offset,
                              "length", (json_int_t) chunk->length);
    zv_msg_set_body (request, &body);
    zv_link_call (cache->link, &request, S_CHUNK_TIMEOUT_MS, s_chunk_done, chunk, s_chunk_free);
}

//  Until the first reply only chunk 0 is asked for: the size is unknown.
static void
s_fill_window (s_download_t *self)
{
    self->refs++;
    if (self->requested == 0)
        s_request (self);
    while (!self->ended && self->size >= 0 && self->requested < self->size
    &&     self->in_flight < self->cache->window)
        s_request (self);
    s_download_unref (self);
}

//  ---------------------------------------------------------------------
//  Uses the loop knows of, and cleaning passes.

static void
s_use_free (s_use_t **use_p)
{
    free (*use_p);
    *use_p = NULL;
}

//  A use of id begins (delta 1), ends (-1) or happens at once (0: a hit).
static void
s_use_mark (zv_imagecache_t *self, const char *id, int delta)
{
    s_use_t *use = (s_use_t *) zhashx_lookup (self->uses, id);
    if (!use) {
        use = (s_use_t *) zmalloc (sizeof (s_use_t));
        zhashx_insert (self->uses, id, use);
    }
    use->holds += delta;
    assert (use->holds >= 0);
    use->last_ms = zv_mono_ms ();
}

void
zv_imagecache_hold (zv_imagecache_t *self, const char *id)
{
    if (id && *id)
        s_use_mark (self, id, 1);
}

void
zv_imagecache_release (zv_imagecache_t *self, const char *id)
{
    if (id && *id && zhashx_lookup (self->uses, id))
        s_use_mark (self, id, -1);
}

//  May the pass that began at started_ms remove id's file now?  Not while
//  it is held or fetched, nor when it was used since the pass began.
static const char *
s_busy_reason (zv_imagecache_t *self, const char *id, int64_t started_ms)
{
    s_use_t *use = (s_use_t *) zhashx_lookup (self->uses, id);
    if (use && use->holds)
        return "held by an operation";
    if (zhashx_lookup (self->downloads, id))
        return "being fetched";
    if (use && use->last_ms >= started_ms)
        return "used during the pass";
    return NULL;
}

static void
s_clean_free (s_clean_t *clean)
{
    json_decref (clean->busy);
    json_decref (clean->used);
    json_decref (clean->verdicts);
    free (clean);
}

//  On a worker: the instances' uses, the base files' ages, the verdicts;
//  the files in use touched.
static void
s_clean_work (void *arg)
{
    s_clean_t *clean = (s_clean_t *) arg;
    clean->used = zv_imageclean_in_use (clean->instances_path, clean->dir);
    json_t *files = zv_imageclean_list (clean->dir);
    if (!files) {
        clean->list_error = errno;
        return;
    }
    json_object_update_missing (clean->used, clean->busy);
    clean->now_s = (int64_t) time (NULL);
    clean->verdicts = zv_imageclean_select (files, clean->used, clean->now_s, clean->min_age_s);
    const char *id;
    json_t *verdict;
    json_object_foreach (clean->verdicts, id, verdict) {
        if (!streq (json_string_value (verdict), "in_use"))
            continue;
        char path [PATH_MAX + ZV_UUID_LEN + 2];
        snprintf (path, sizeof path, "%s/%s", clean->dir, id);
        if (utimensat (AT_FDCWD, path, NULL, 0) != 0 && !clean->touch_error) {
            clean->touch_error = errno;
            snprintf (clean->touch_path, sizeof clean->touch_path, "%s", path);
        }
    }
    json_decref (files);
}

//  Back on the loop: remove what may still go, say what the pass did.
static void
s_clean_done (void *actor, void *arg)
{
    (void) actor;
    s_clean_t *clean = (s_clean_t *) arg;
    zv_imagecache_t *self = clean->cache;
    if (!self || zv_workers_cancelled (self->workers)) {
        if (self)
            self->clean = NULL;
        s_clean_free (clean);
        return;
    }
    self->clean = NULL;
    json_t *summary = json_pack ("{s:[], s:[], s:[], s:[], s:[]}", "in_use", "young", "removed",
                                 "unused", "busy");
    if (clean->list_error)
        zv_warning (self->name, NULL, "image cache: cannot read %s: %s", clean->dir, strerror (clean->list_error));
    if (clean->touch_error)
        zv_warning (self->name, NULL, "image cache: cannot touch %s (its age will not restart): %s",
                    clean->touch_path, strerror (clean->touch_error));
    int64_t bytes = 0;
    const char *id;
    json_t *verdict;
    json_object_foreach (clean->verdicts, id, verdict) {
        const char *name = json_string_value (verdict);
        char path [PATH_MAX + ZV_UUID_LEN + 2];
        snprintf (path, sizeof path, "%s/%s", self->dir, id);
        if (streq (name, "in_use")) {
            zv_debug (self->name, NULL, "image cache: %s in use (%s)", path,
                      json_string_value (json_object_get (clean->used, id)));
            json_array_append_new (json_object_get (summary, "in_use"), json_string (id));
            continue;
        }
        if (streq (name, "young")) {
            zv_debug (self->name, NULL, "image cache: %s unused, too young to remove", path);
            json_array_append_new (json_object_get (summary, "young"), json_string (id));
            continue;
        }
        //  Old enough and unused, as the disks said.
        const char *busy = s_busy_reason (self, id, clean->started_ms);
        struct stat info = { 0 };
        if (!busy && stat (path, &info) == 0
        &&  zv_imageclean_verdict (false, info.st_mtim.tv_sec, (int64_t) time (NULL), clean->min_age_s)
            != ZV_IMAGECLEAN_REMOVE)
            busy = "touched during the pass";
        if (busy) {
            zv_info (self->name, NULL, "image cache: %s kept: %s", path, busy);
            json_array_append_new (json_object_get (summary, "busy"), json_string (id));
        }
        else
        if (!clean->remove) {
            zv_info (self->name, NULL, "image cache: %s is unused; kept ([image_cache] "
                     "remove_unused_base_images is off)", path);
            json_array_append_new (json_object_get (summary, "unused"), json_string (id));
        }
        else
        if (unlink (path) == 0) {
            int64_t age = clean->now_s - (int64_t) info.st_mtim.tv_sec;
            zv_info (self->name, NULL, "image cache: removed %s (%.1f MB): no instance uses it, "
                     "unused for %" PRId64 " s", path, (double) info.st_size / S_MB, age);
            bytes += info.st_size;
            json_array_append_new (json_object_get (summary, "removed"), json_string (id));
        }
        else
        if (errno != ENOENT)
            zv_warning (self->name, NULL, "image cache: cannot remove %s: %s", path, strerror (errno));
    }
    zv_info (self->name, NULL, "image cache: %zu base files: %zu in use, %zu too young, %zu removed (%.1f MB)%s",
             json_object_size (clean->verdicts), json_array_size (json_object_get (summary, "in_use")),
             json_array_size (json_object_get (summary, "young")),
             json_array_size (json_object_get (summary, "removed")), (double) bytes / S_MB,
             clean->remove ? "" : ", removal off");
    //  Uses that ended before this pass began no longer matter.
    zlistx_t *ids = zhashx_keys (self->uses);
    for (const char *key = (const char *) zlistx_first (ids); key; key = (const char *) zlistx_next (ids)) {
        s_use_t *use = (s_use_t *) zhashx_lookup (self->uses, key);
        if (!use->holds && use->last_ms < clean->started_ms)
            zhashx_delete (self->uses, key);
    }
    zlistx_destroy (&ids);
    if (clean->fn)
        clean->fn (self->actor, clean->ctx, summary);
    json_decref (summary);
    s_clean_free (clean);
}

bool
zv_imagecache_clean (zv_imagecache_t *self, const char *instances_path, int64_t min_age_s, bool remove,
                     zv_imagecache_clean_fn *fn, void *ctx)
{
    if (self->clean) {
        zv_info (self->name, NULL, "image cache: the last pass still runs; this one is skipped");
        return false;
    }
    s_clean_t *clean = (s_clean_t *) zmalloc (sizeof (s_clean_t));
    clean->cache = self;
    snprintf (clean->instances_path, sizeof clean->instances_path, "%s", instances_path);
    snprintf (clean->dir, sizeof clean->dir, "%s", self->dir);
    clean->min_age_s = min_age_s;
    clean->remove = remove;
    clean->started_ms = zv_mono_ms ();
    clean->fn = fn;
    clean->ctx = ctx;
    clean->busy = json_object ();
    for (s_use_t *use = (s_use_t *) zhashx_first (self->uses); use; use = (s_use_t *) zhashx_next (self->uses))
        if (use->holds)
            json_object_set_new (clean->busy, (const char *) zhashx_cursor (self->uses),
                                 json_string ("held by an operation"));
    for (void *download = zhashx_first (self->downloads); download; download = zhashx_next (self->downloads))
        json_object_set_new (clean->busy, (const char *) zhashx_cursor (self->downloads),
                             json_string ("being fetched"));
    self->clean = clean;
    zv_workers_submit (self->workers, s_clean_work, s_clean_done, clean);
    return true;
}

//  ---------------------------------------------------------------------

//  Files a stopped compute left half made: never finished, never reused.
static void
s_remove_leftovers (zv_imagecache_t *self)
{
    DIR *handle = opendir (self->dir);
    if (!handle)
        return;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        const char *dot = strchr (entry->d_name, '.');
        if (!dot || dot - entry->d_name != ZV_UUID_LEN
        ||  (strcmp (dot, ".part") != 0 && strcmp (dot, ".converting") != 0))
            continue;
        if (unlinkat (dirfd (handle), entry->d_name, 0) == 0)
            zv_info (self->name, NULL, "removed %s/%s, left by an interrupted download",
                     self->dir, entry->d_name);
    }
    closedir (handle);
}

zv_imagecache_t *
zv_imagecache_new (const char *dir, zv_link_t *link, zv_workers_t *workers,
                   void *actor, size_t chunk_size, int window)
{
    assert (dir && link && workers);
    //  A cache that cannot be made yet is not fatal: a host on libvirt's
    //  test driver never uses it, and each download tries again (and
    //  fails with the reason).
    if (zv_disk_mkdirs (dir) != 0)
        zv_warning (zv_link_identity (link), NULL, "cannot create the image cache %s (yet): %s",
                    dir, strerror (errno));
    zv_imagecache_t *self = (zv_imagecache_t *) zmalloc (sizeof (zv_imagecache_t));
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    snprintf (self->name, sizeof self->name, "%s", zv_link_identity (link));
    self->link = link;
    self->workers = workers;
    self->actor = actor;
    //  The catalogue bounds a chunk to the payload frame's limit.
    self->chunk_size = chunk_size && chunk_size <= ZV_MSG_MAX_PAYLOAD
                     ? (int64_t) chunk_size : ZV_MSG_MAX_PAYLOAD;
    self->window = window > 0 ? window : 1;
    self->downloads = zhashx_new ();
    self->uses = zhashx_new ();
    zhashx_set_destructor (self->uses, (zhashx_destructor_fn *) s_use_free);
    s_remove_leftovers (self);
    return self;
}

void
zv_imagecache_destroy (zv_imagecache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_imagecache_t *self = *self_p;
    //  Waiters are not called: the actor is going away.
    s_download_t *download = (s_download_t *) zhashx_first (self->downloads);
    while (download) {
        download->ended = true;
        download->cache = NULL;
        download->waiter_count = 0;
        if (!download->finishing)
            unlink (download->part);
        s_download_unref (download);
        download = (s_download_t *) zhashx_next (self->downloads);
    }
    zhashx_destroy (&self->downloads);
    zhashx_destroy (&self->uses);
    if (self->clean)
        self->clean->cache = NULL;  //  its job frees it when it comes back
    free (self);
    *self_p = NULL;
}

const char *
zv_imagecache_path (zv_imagecache_t *self, const char *id, char *buf, size_t len)
{
    snprintf (buf, len, "%s/%s", self->dir, id);
    return buf;
}

void
zv_imagecache_fetch (zv_imagecache_t *self, const json_t *image, const char *rq,
                     zv_imagecache_fn *fn, void *ctx)
{
    const char *id = json_string_value (json_object_get (image, "id"));
    //  The id names files: only a canonical uuid can.
    if (!id || !zv_uuid_valid (id)) {
        fn (self->actor, ctx, ZV_EINVAL, NULL, "image record without a valid id");
        return;
    }
    char final [PATH_MAX];
    zv_imagecache_path (self, id, final, sizeof final);
    struct stat info;
    if (stat (final, &info) == 0 && S_ISREG (info.st_mode)) {
        self->hits++;
        //  Used now: its age restarts, as a pass in use would touch it.
        utimensat (AT_FDCWD, final, NULL, 0);
        s_use_mark (self, id, 0);
        fn (self->actor, ctx, ZV_OK, final, "");
        return;
    }
    s_download_t *download = (s_download_t *) zhashx_lookup (self->downloads, id);
    if (download) {
        s_waiter_add (download, fn, ctx);
        return;
    }
    char errtext [512];
    const char *status = json_string_value (json_object_get (image, "status"));
    json_t *size = json_object_get (image, "size");
    const char *disk_format = json_string_value (json_object_get (image, "disk_format"));
    const char *checksum = json_string_value (json_object_get (image, "checksum"));
    const s_format_t *format = disk_format ? s_format_lookup (disk_format) : NULL;
    if (status && strcmp (status, "active") != 0) {
        snprintf (errtext, sizeof errtext, "image %s has no data (status %s)", id, status);
        fn (self->actor, ctx, ZV_ECONFLICT, NULL, errtext);
        return;
    }
    if (json_is_integer (size) && json_integer_value (size) <= 0) {
        snprintf (errtext, sizeof errtext, "image %s has no data (size %" JSON_INTEGER_FORMAT ")",
                  id, json_integer_value (size));
        fn (self->actor, ctx, ZV_ECONFLICT, NULL, errtext);
        return;
    }
    if (disk_format && !format) {
        snprintf (errtext, sizeof errtext, "image %s: disk format '%.31s' is not supported", id, disk_format);
        fn (self->actor, ctx, ZV_EUNSUPPORTED, NULL, errtext);
        return;
    }
    download = (s_download_t *) zmalloc (sizeof (s_download_t));
    download->refs = 1;
    download->cache = self;
    download->size = -1;
    download->format = format;
    download->record_size = json_is_integer (size) ? json_integer_value (size) : 0;
    snprintf (download->id, sizeof download->id, "%s", id);
    snprintf (download->rq, sizeof download->rq, "%s", rq ? rq : "");
    snprintf (download->checksum, sizeof download->checksum, "%s", checksum ? checksum : "");
    snprintf (download->disk_format, sizeof download->disk_format, "%s", disk_format ? disk_format : "");
    snprintf (download->part, sizeof download->part, "%s.part", final);
    snprintf (download->converting, sizeof download->converting, "%s.converting", final);
    snprintf (download->final, sizeof download->final, "%s", final);
    download->sha = zv_sha256_new ();
    zv_disk_mkdirs (self->dir);
    download->fd = open (download->part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (download->fd < 0) {
        snprintf (errtext, sizeof errtext, "image %s: cannot create %s: %s", id, download->part,
                  strerror (errno));
        zv_warning (self->name, rq, "%s", errtext);
        s_download_unref (download);
        fn (self->actor, ctx, ZV_EIO, NULL, errtext);
        return;
    }
    download->started_ms = zv_mono_ms ();
    zhashx_insert (self->downloads, id, download);
    s_waiter_add (download, fn, ctx);
    if (download->record_size)
        zv_info (self->name, rq, "image %s: downloading %.1f MB (%s) into %s", id,
                 (double) download->record_size / S_MB, *download->disk_format ? download->disk_format : "raw",
                 self->dir);
    else
        zv_info (self->name, rq, "image %s: downloading into %s", id, self->dir);
    s_fill_window (download);
}

json_t *
zv_imagecache_stats (zv_imagecache_t *self)
{
    return json_pack ("{s:I, s:I, s:f, s:I, s:I}",
                      "downloads", (json_int_t) self->downloads_done,
                      "bytes", (json_int_t) self->bytes,
                      "seconds", (double) self->transfer_ms / 1000.0,
                      "conversions", (json_int_t) self->conversions,
                      "hits", (json_int_t) self->hits);
}
