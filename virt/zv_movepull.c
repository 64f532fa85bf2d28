/*  zv_movepull.c: a move's destination pulling the instance's files, chunk
    by chunk, through the conductor (zv_movepull.h says what and why).

    One pull, three stages, one file at a time:
      - the survey (a worker job): which files are in place already (the
        right size and sha256), and for the others their .part opened, room
        reserved (fallocate keeping the size, so a full disk fails now),
        and the offset to resume from (zv_movefiles_resume);
      - the copy (the loop): `window` conductor.move_read calls in flight,
        each answered chunk written with pwrite at its offset, a bitmap of
        chunks and the prefix known written (`written`), whose pages are
        started on their way to the disk as it grows (sync_file_range, not
        waited for): the writeback runs during the copy, not all in the
        check's fsync.  A call that times out or finds a peer away stalls
        the file: no new call until those in flight are answered, then,
        after a backoff (500 ms doubling to 8 s), the copy goes on from
        `written`, asking again for what lay beyond it;
      - the check (a worker job): the .part's sha256 against the manifest,
        then fsync and rename into place.  A mismatch starts the file again
        from nothing, once; a second is a failure.  Once the last file is
        in place, one line logs the bytes pulled and the milliseconds since
        the start (bench/coldmove.sh reads it).
    The stall clock is the last byte written: a pull with no progress for
    timeout_ms fails with ZV_ETIMEOUT and the last error seen.

    Lifetime, as the image cache's downloads: the pull is reference counted;
    its owner holds one until zv_movepull_destroy, each chunk call's context
    and each worker job one more.  A completion that arrives once the pull
    ended (done called, or the owner gone) only lets go of its reference.
    The backoff timer holds none: ending the pull ends it.                  */

#include "virt/zv_movepull.h"
#include "virt/zv_movefiles.h"
#include "virt/zv_disk.h"
#include "common/zv_sha256.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

//  A chunk is at most 4 MiB: 30 s is a link under 140 KB/s.
#define S_CHUNK_TIMEOUT_MS  30000
#define S_BACKOFF_FIRST_MS  500
#define S_BACKOFF_MAX_MS    8000
#define S_PROGRESS_MS       1000

typedef struct {
    char name [32];
    int64_t size;
    char sha256 [65];
    bool complete;                  //  in place, verified
    int fd;                         //  on the .part, -1 when closed
    char part [PATH_MAX];
    char final [PATH_MAX];
    int64_t resume;                 //  the survey's offset to start from
    int64_t requested;              //  next offset to ask for
    int64_t written;                //  every byte below is in the .part
    uint8_t *chunks;                //  one bit per chunk written
    int mismatches;
} s_file_t;

struct _zv_movepull_t {
    int refs;                       //  the owner, each chunk call, each job
    bool ended;                     //  done called or the owner gone: completions let go
    bool owner_gone;
    zv_link_t *link;
    zv_workers_t *workers;
    zloop_t *loop;
    void *actor;
    char name [320];                //  the link's identity, for logs
    char dir [PATH_MAX];
    char uuid [ZV_UUID_LEN + 1];
    char migration [ZV_UUID_LEN + 1];
    char rq [72];
    int64_t chunk_size;
    int window;
    int timeout_ms;
    s_file_t *files;
    size_t count;
    size_t current;                 //  the file being copied
    int64_t total;                  //  bytes of the manifest
    int64_t completed;              //  bytes of the files in place
    int64_t pulled;                 //  bytes that came in chunks (for the log)
    int64_t started_ms;             //  for the log's rate
    int in_flight;
    bool stalled;                   //  a call failed: none asked until the backoff
    int retry_timer;                //  -1 when none armed
    int backoff_ms;
    char last_error [512];
    int64_t last_progress_ms;
    int64_t last_report_ms;
    int64_t calls;
    zv_movepull_progress_fn *progress;
    zv_movepull_done_fn *done;
    void *ctx;
};

typedef struct {
    zv_movepull_t *pull;
    s_file_t *file;                 //  check: the file; survey: NULL
    int64_t offset;                 //  chunk
    int64_t length;
    zv_status_t status;             //  job
    bool mismatch;
    char errtext [1024];
} s_job_t;

static const char *
s_rq (const zv_movepull_t *self)
{
    return *self->rq ? self->rq : NULL;
}

static void
s_unref (zv_movepull_t *self)
{
    assert (self->refs > 0);
    if (--self->refs > 0)
        return;
    for (size_t index = 0; index < self->count; index++) {
        if (self->files [index].fd >= 0)
            close (self->files [index].fd);
        free (self->files [index].chunks);
    }
    free (self->files);
    free (self);
}

static void
s_timer_end (zv_movepull_t *self)
{
    if (self->retry_timer >= 0)
        zloop_timer_end (self->loop, self->retry_timer);
    self->retry_timer = -1;
}

//  The end: done called once, the pull held while it runs (the owner may
//  destroy it from inside).
static void
s_end (zv_movepull_t *self, zv_status_t status, const char *errtext)
{
    assert (!self->ended);
    self->ended = true;
    s_timer_end (self);
    self->refs++;
    self->done (self->actor, self->ctx, status, errtext);
    s_unref (self);
}

static void
s_fail (zv_movepull_t *self, zv_status_t status, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_fail (zv_movepull_t *self, zv_status_t status, const char *format, ...)
{
    char errtext [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (errtext, sizeof errtext, format, args);
    va_end (args);
    s_end (self, status, errtext);
}

static s_job_t *
s_job_new (zv_movepull_t *self, s_file_t *file)
{
    s_job_t *job = (s_job_t *) calloc (1, sizeof (s_job_t));
    assert (job);
    job->pull = self;
    job->file = file;
    self->refs++;
    return job;
}

static void
s_job_free (void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    s_unref (job->pull);
    free (job);
}

static void s_next_file (zv_movepull_t *self);
static void s_fill_window (zv_movepull_t *self);

//  ---------------------------------------------------------------------
//  The check, on a worker: the .part's sha256, then into place.

static void
s_sync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync (fd);
        close (fd);
    }
}

static void
s_check_work (void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    s_file_t *file = job->file;
    char hex [65];
    int64_t size = 0;
    job->status = ZV_OK;
    //  What is not on its way to the disk yet (a resumed .part's start)
    //  goes while the file is read back for its hash.
    sync_file_range (file->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (zv_sha256_file (file->part, hex, &size) != 0) {
        snprintf (job->errtext, sizeof job->errtext, "cannot read %s back: %s", file->part, strerror (errno));
        job->status = ZV_EIO;
        return;
    }
    if (size != file->size || strcasecmp (hex, file->sha256) != 0) {
        snprintf (job->errtext, sizeof job->errtext, "%s: sha256 mismatch (expected %s, got %s over %" PRId64
                  " bytes)", file->name, file->sha256, hex, size);
        job->mismatch = true;
        return;
    }
    //  Synced before the rename: after a crash the final name holds the
    //  whole file or is the one from before.
    if (fsync (file->fd) != 0 || rename (file->part, file->final) != 0) {
        snprintf (job->errtext, sizeof job->errtext, "cannot put %s in place: %s", file->final, strerror (errno));
        job->status = ZV_EIO;
        return;
    }
    s_sync_dir (job->pull->dir);
}

static void
s_check_done (void *actor, void *arg)
{
    (void) actor;
    s_job_t *job = (s_job_t *) arg;
    zv_movepull_t *self = job->pull;
    s_file_t *file = job->file;
    if (self->ended)
        ;
    else
    if (zv_workers_cancelled (self->workers))
        s_fail (self, ZV_EUNAVAILABLE, "instance %s: the copy of %s stopped: the compute is stopping",
                self->uuid, file->name);
    else
    if (job->status != ZV_OK)
        s_fail (self, job->status, "instance %s: %s", self->uuid, job->errtext);
    else
    if (job->mismatch && ++file->mismatches > 1)
        s_fail (self, ZV_EIO, "instance %s: %s, twice: the source's file is not what its manifest says",
                self->uuid, job->errtext);
    else
    if (job->mismatch) {
        //  What was resumed was not what the source holds: once more, all of it.
        zv_warning (self->name, s_rq (self), "instance %s: %s; copying it again from the start",
                    self->uuid, job->errtext);
        if (ftruncate (file->fd, 0) != 0)
            s_fail (self, ZV_EIO, "instance %s: cannot truncate %s: %s", self->uuid, file->part, strerror (errno));
        else {
            file->requested = file->written = 0;
            s_timer_end (self);
            self->stalled = false;
            memset (file->chunks, 0, (size_t) ((file->size / self->chunk_size + 1 + 7) / 8));
            self->last_progress_ms = zv_mono_ms ();
            s_fill_window (self);
        }
    }
    else {
        close (file->fd);
        file->fd = -1;
        file->complete = true;
        self->completed += file->size;
        zv_debug (self->name, s_rq (self), "instance %s: %s in place (%" PRId64 " bytes)", self->uuid,
                  file->name, file->size);
        s_next_file (self);
    }
    s_job_free (job);
}

static void
s_check (zv_movepull_t *self, s_file_t *file)
{
    zv_workers_submit (self->workers, s_check_work, s_check_done, s_job_new (self, file));
}

//  ---------------------------------------------------------------------
//  Chunks: calls to the conductor and their replies

static void
s_progress (zv_movepull_t *self)
{
    int64_t now = zv_mono_ms ();
    self->last_progress_ms = now;
    self->backoff_ms = 0;
    if (!self->progress || now - self->last_report_ms < S_PROGRESS_MS)
        return;
    self->last_report_ms = now;
    const s_file_t *file = &self->files [self->current];
    self->progress (self->actor, self->ctx, self->completed + file->written, self->total);
}

//  Is an error one that asking again may cure: the conductor or the
//  source away for a moment, a call lost with a restart?
static bool
s_transient (zv_status_t status)
{
    return status == ZV_ETIMEOUT || status == ZV_EUNAVAILABLE;
}

static int
s_retry_fire (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_movepull_t *self = (zv_movepull_t *) arg;
    self->retry_timer = -1;
    if (self->ended)
        return 0;
    int64_t idle = zv_mono_ms () - self->last_progress_ms;
    if (idle >= self->timeout_ms) {
        s_fail (self, ZV_ETIMEOUT, "instance %s: no progress copying %s for %" PRId64 " s (last error: %s)",
                self->uuid, self->files [self->current].name, idle / 1000, self->last_error);
        return 0;
    }
    s_file_t *file = &self->files [self->current];
    self->stalled = false;
    file->requested = file->written;
    s_fill_window (self);
    return 0;
}

//  No call in flight on a stalled file: ask again after the backoff.
static void
s_stall_settled (zv_movepull_t *self)
{
    if (!self->stalled || self->in_flight > 0 || self->retry_timer >= 0)
        return;
    self->backoff_ms = self->backoff_ms ? self->backoff_ms * 2 : S_BACKOFF_FIRST_MS;
    if (self->backoff_ms > S_BACKOFF_MAX_MS)
        self->backoff_ms = S_BACKOFF_MAX_MS;
    zv_info (self->name, s_rq (self), "instance %s: copying %s from offset %" PRId64 " again in %d ms (%s)",
             self->uuid, self->files [self->current].name, self->files [self->current].written,
             self->backoff_ms, self->last_error);
    self->retry_timer = zloop_timer (self->loop, (size_t) self->backoff_ms, 1, s_retry_fire, self);
}

//  A chunk's reply; false when the pull ended on it.
static bool
s_chunk_arrived (zv_movepull_t *self, s_job_t *chunk, zv_msg_t *reply)
{
    s_file_t *file = chunk->file;
    zv_status_t status = zv_msg_status (reply);
    if (status != ZV_OK) {
        if (!s_transient (status)) {
            s_fail (self, status, "instance %s: cannot copy %s from the source: %s", self->uuid, file->name,
                    zv_msg_error_text (reply));
            return false;
        }
        snprintf (self->last_error, sizeof self->last_error, "%s: %s", zv_status_name (status),
                  zv_msg_error_text (reply));
        self->stalled = true;
        return true;
    }
    int64_t size = zv_msg_get_int (reply, "size", -1);
    int64_t offset = zv_msg_get_int (reply, "offset", -1);
    int64_t length = zv_msg_get_int (reply, "length", -1);
    size_t bytes = 0;
    const void *data = zv_msg_payload (reply, &bytes);
    if (size != file->size) {
        s_fail (self, ZV_EIO, "instance %s: the source's %s has %" PRId64 " bytes, its manifest says %" PRId64,
                self->uuid, file->name, size, file->size);
        return false;
    }
    if (offset != chunk->offset || length != chunk->length || (int64_t) bytes != length) {
        s_fail (self, ZV_EINVAL, "instance %s: bad chunk of %s (offset %" PRId64 ", length %" PRId64
                ", %zu bytes) for offset %" PRId64 ", length %" PRId64, self->uuid, file->name,
                offset, length, bytes, chunk->offset, chunk->length);
        return false;
    }
    size_t done = 0;
    while (done < bytes) {
        ssize_t wrote = pwrite (file->fd, (const char *) data + done, bytes - done, offset + (int64_t) done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote < 0) {
            s_fail (self, ZV_EIO, "instance %s: cannot write %s: %s", self->uuid, file->part, strerror (errno));
            return false;
        }
        done += (size_t) wrote;
    }
    self->pulled += (int64_t) bytes;
    int64_t index = offset / self->chunk_size;
    file->chunks [index / 8] |= (uint8_t) (1u << (index % 8));
    int64_t before = file->written;
    while (file->written < file->size) {
        index = file->written / self->chunk_size;
        if (!(file->chunks [index / 8] & (1u << (index % 8))))
            break;
        file->written = file->written + self->chunk_size < file->size ? file->written + self->chunk_size
                                                                       : file->size;
    }
    //  What is now written in order starts on its way to the disk (not
    //  waited for: a millisecond or so a call), so that the fsync before
    //  the rename finds little left to write.
    if (file->written > before)
        sync_file_range (file->fd, before, file->written - before, SYNC_FILE_RANGE_WRITE);
    s_progress (self);
    return true;
}

static void
s_chunk_done (void *actor, void *ctx, zv_msg_t *reply)
{
    (void) actor;
    s_job_t *chunk = (s_job_t *) ctx;
    zv_movepull_t *self = chunk->pull;
    self->in_flight--;
    if (!self->ended && s_chunk_arrived (self, chunk, reply)) {
        s_file_t *file = chunk->file;
        if (file->written == file->size && self->in_flight == 0)
            s_check (self, file);
        else
        if (self->stalled)
            s_stall_settled (self);
        else
            s_fill_window (self);
    }
    s_job_free (chunk);
}

//  Ask for the next chunk of the current file.  A failed send is
//  answered before zv_link_call returns: callers hold a reference.
static void
s_request (zv_movepull_t *self, s_file_t *file)
{
    s_job_t *chunk = s_job_new (self, file);
    chunk->offset = file->requested;
    chunk->length = file->size - file->requested < self->chunk_size ? file->size - file->requested
                                                                     : self->chunk_size;
    file->requested += chunk->length;
    self->in_flight++;
    self->calls++;
    zv_msg_t *request = zv_msg_new ("conductor.move_read");
    if (*self->rq)
        zv_msg_set_rq (request, self->rq);
    json_t *body = json_pack ("{s:s, s:s, s:s, s:I, s:I}", "uuid", self->uuid, "migration", self->migration,
                              "file", file->name, "offset", (json_int_t) chunk->offset,
                              "length", (json_int_t) chunk->length);
    zv_msg_set_body (request, &body);
    //  Half the pull's timeout at most, so a lost call is asked again
    //  before the pull would give up.
    int timeout_ms = self->timeout_ms / 2 < S_CHUNK_TIMEOUT_MS ? self->timeout_ms / 2 : S_CHUNK_TIMEOUT_MS;
    if (timeout_ms < 1)
        timeout_ms = 1;
    zv_link_call (self->link, &request, timeout_ms, s_chunk_done, chunk, s_job_free);
}

static void
s_fill_window (zv_movepull_t *self)
{
    s_file_t *file = &self->files [self->current];
    self->refs++;
    while (!self->ended && !self->stalled && file->requested < file->size && self->in_flight < self->window)
        s_request (self, file);
    if (!self->ended)
        s_stall_settled (self);
    s_unref (self);
}

//  The next file that is not in place, or the end.
static void
s_next_file (zv_movepull_t *self)
{
    while (self->current < self->count && self->files [self->current].complete)
        self->current++;
    if (self->current == self->count) {
        //  From the start to the last file verified, synced and renamed.
        int64_t elapsed_ms = zv_mono_ms () - self->started_ms;
        zv_info (self->name, s_rq (self), "instance %s: %zu files in place (%" PRId64 " bytes), %" PRId64
                 " bytes pulled in %" PRId64 " ms (%.1f MiB/s)", self->uuid, self->count, self->total,
                 self->pulled, elapsed_ms, (double) self->pulled / 1048576.0
                 / ((double) (elapsed_ms > 0 ? elapsed_ms : 1) / 1000.0));
        s_end (self, ZV_OK, "");
        return;
    }
    s_file_t *file = &self->files [self->current];
    //  A stall of the file before is over with it.
    s_timer_end (self);
    self->stalled = false;
    self->backoff_ms = 0;
    file->requested = file->written = file->resume;
    for (int64_t index = 0; index < file->resume / self->chunk_size; index++)
        file->chunks [index / 8] |= (uint8_t) (1u << (index % 8));
    self->last_progress_ms = zv_mono_ms ();
    if (file->resume)
        zv_info (self->name, s_rq (self), "instance %s: resuming %s at %" PRId64 " of %" PRId64 " bytes",
                 self->uuid, file->name, file->resume, file->size);
    if (file->size == 0)
        s_check (self, file);
    else
        s_fill_window (self);
}

//  ---------------------------------------------------------------------
//  The survey, on a worker: what is in place, where each .part resumes.

static void
s_survey_work (void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    zv_movepull_t *self = job->pull;
    job->status = ZV_OK;
    for (size_t index = 0; index < self->count && job->status == ZV_OK; index++) {
        s_file_t *file = &self->files [index];
        struct stat info;
        char hex [65];
        int64_t size = 0;
        if (lstat (file->final, &info) == 0 && S_ISREG (info.st_mode) && info.st_size == file->size
        &&  zv_sha256_file (file->final, hex, &size) == 0 && size == file->size
        &&  strcasecmp (hex, file->sha256) == 0) {
            file->complete = true;
            continue;
        }
        file->fd = open (file->part, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (file->fd < 0 || fstat (file->fd, &info) != 0) {
            snprintf (job->errtext, sizeof job->errtext, "cannot open %s: %s", file->part, strerror (errno));
            job->status = ZV_EIO;
            break;
        }
        if (info.st_size > file->size && ftruncate (file->fd, 0) != 0) {
            snprintf (job->errtext, sizeof job->errtext, "cannot truncate %s: %s", file->part, strerror (errno));
            job->status = ZV_EIO;
            break;
        }
        file->resume = zv_movefiles_resume (info.st_size, file->size, self->chunk_size, self->window);
        //  The room, reserved without changing the size the resume reads.
        if (file->size > 0 && fallocate (file->fd, FALLOC_FL_KEEP_SIZE, 0, file->size) != 0
        &&  errno != EOPNOTSUPP) {
            snprintf (job->errtext, sizeof job->errtext, "no room for %s (%" PRId64 " bytes): %s", file->part,
                      file->size, strerror (errno));
            job->status = ZV_EIO;
        }
    }
}

static void
s_survey_done (void *actor, void *arg)
{
    (void) actor;
    s_job_t *job = (s_job_t *) arg;
    zv_movepull_t *self = job->pull;
    if (self->ended)
        ;
    else
    if (zv_workers_cancelled (self->workers))
        s_fail (self, ZV_EUNAVAILABLE, "instance %s: the copy stopped: the compute is stopping", self->uuid);
    else
    if (job->status != ZV_OK)
        s_fail (self, job->status, "instance %s: %s", self->uuid, job->errtext);
    else {
        for (size_t index = 0; index < self->count; index++)
            if (self->files [index].complete)
                self->completed += self->files [index].size;
        if (self->completed)
            zv_info (self->name, s_rq (self), "instance %s: %" PRId64 " of %" PRId64 " bytes in place already",
                     self->uuid, self->completed, self->total);
        s_next_file (self);
    }
    s_job_free (job);
}

//  ---------------------------------------------------------------------

zv_movepull_t *
zv_movepull_start (zv_link_t *link, zv_workers_t *workers, zloop_t *loop, void *actor,
                   const zv_movepull_args_t *args, zv_movepull_progress_fn *progress,
                   zv_movepull_done_fn *done, void *ctx, char *errbuf, size_t errlen)
{
    assert (link && workers && loop && args && done);
    if (zv_movefiles_check (args->files, errbuf, errlen) != ZV_OK)
        return NULL;
    if (!args->uuid || !zv_uuid_valid (args->uuid) || !args->migration || !zv_uuid_valid (args->migration)) {
        snprintf (errbuf, errlen, "a pull needs the instance's and the migration's uuids");
        return NULL;
    }
    if (zv_disk_mkdirs (args->dir) != 0) {
        snprintf (errbuf, errlen, "cannot create %s: %s", args->dir, strerror (errno));
        return NULL;
    }
    zv_movepull_t *self = (zv_movepull_t *) calloc (1, sizeof (zv_movepull_t));
    assert (self);
    self->refs = 1;
    self->link = link;
    self->workers = workers;
    self->loop = loop;
    self->actor = actor;
    self->retry_timer = -1;
    snprintf (self->name, sizeof self->name, "%s", zv_link_identity (link));
    snprintf (self->dir, sizeof self->dir, "%s", args->dir);
    snprintf (self->uuid, sizeof self->uuid, "%s", args->uuid);
    snprintf (self->migration, sizeof self->migration, "%s", args->migration);
    snprintf (self->rq, sizeof self->rq, "%s", args->rq ? args->rq : "");
    self->chunk_size = args->chunk_size > 0 && args->chunk_size <= ZV_MSG_MAX_PAYLOAD
                     ? args->chunk_size : ZV_MSG_MAX_PAYLOAD;
    self->window = args->window > 0 ? args->window : 1;
    self->timeout_ms = args->timeout_ms > 0 ? args->timeout_ms : 1;
    self->progress = progress;
    self->done = done;
    self->ctx = ctx;
    self->count = json_array_size (args->files);
    self->files = (s_file_t *) calloc (self->count ? self->count : 1, sizeof (s_file_t));
    assert (self->files);
    for (size_t index = 0; index < self->count; index++) {
        const json_t *entry = json_array_get (args->files, index);
        s_file_t *file = &self->files [index];
        snprintf (file->name, sizeof file->name, "%s", json_string_value (json_object_get (entry, "name")));
        snprintf (file->sha256, sizeof file->sha256, "%s", json_string_value (json_object_get (entry, "sha256")));
        file->size = json_integer_value (json_object_get (entry, "size"));
        file->fd = -1;
        snprintf (file->final, sizeof file->final, "%s/%s", self->dir, file->name);
        snprintf (file->part, sizeof file->part, "%s/%s.part", self->dir, file->name);
        file->chunks = (uint8_t *) calloc ((size_t) ((file->size / self->chunk_size + 1 + 7) / 8), 1);
        assert (file->chunks);
        self->total += file->size;
    }
    self->last_progress_ms = self->started_ms = zv_mono_ms ();
    zv_info (self->name, s_rq (self), "instance %s: pulling %zu files (%" PRId64 " bytes) of migration %s into %s",
             self->uuid, self->count, self->total, self->migration, self->dir);
    zv_workers_submit (workers, s_survey_work, s_survey_done, s_job_new (self, NULL));
    return self;
}

void
zv_movepull_destroy (zv_movepull_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_movepull_t *self = *self_p;
    *self_p = NULL;
    assert (!self->owner_gone);
    self->owner_gone = true;
    if (!self->ended) {
        self->ended = true;
        s_timer_end (self);
    }
    s_unref (self);
}

int64_t
zv_movepull_calls (zv_movepull_t *self)
{
    return self->calls;
}
