/*  zv_movepull.h: a move's destination pulling the instance's files from
    its source, through the conductor.

    The destination's half of a cold move on local storage (compute's
    migrate_dst.c drives it): every file of the source's manifest
    (zv_movefiles.h) is asked for chunk by chunk with conductor.move_read,
    which the conductor relays to the source as compute.move_read; a
    window of chunks is in flight, each written at its offset into
    <dir>/<file>.part, whose sha256 must match the manifest's before it is
    renamed to <dir>/<file>.  A file already in place with the right sha256
    is not asked for again, and a .part left by an interrupted pull (a
    restart, a phase cast again) is resumed from what it holds.  A chunk
    whose call times out or finds the conductor or the source away is asked
    again after a backoff; the pull fails only when no byte arrived for
    timeout_ms, or on an answer that cannot get better by asking again.

    Driven from the compute loop's thread; hashing, syncing and renaming
    run on the compute's workers.                                          */

#ifndef ZV_MOVEPULL_H
#define ZV_MOVEPULL_H

#include "bus/zv_link.h"
#include "bus/zv_workers.h"

typedef struct _zv_movepull_t zv_movepull_t;

//  Bytes in place so far (files that were complete count whole) out of
//  the manifest's total; at most once a second while bytes arrive.
typedef void (zv_movepull_progress_fn) (void *actor, void *ctx, int64_t copied, int64_t total);
//  The pull ended: ZV_OK, every file in place and verified; otherwise the
//  status and why (borrowed for the call).  Called once, on the loop.
//  The owner still destroys the pull (it may from inside this call).
typedef void (zv_movepull_done_fn) (void *actor, void *ctx, zv_status_t status, const char *errtext);

typedef struct {
    const char *dir;                //  the destination's instance directory (made when missing)
    const char *uuid;               //  the instance
    const char *migration;          //  the migration's uuid
    const char *rq;                 //  request id for logs and calls (may be NULL)
    const json_t *files;            //  the manifest: [{name, size, sha256}]
    int64_t chunk_size;             //  bytes per call (at most ZV_MSG_MAX_PAYLOAD)
    int window;                     //  calls in flight
    int timeout_ms;                 //  no progress for this long: failed (ZV_ETIMEOUT)
} zv_movepull_args_t;

//  Start pulling.  NULL with errbuf (ZV_EINVAL: a bad manifest; or the
//  directory cannot be made) when it cannot start; otherwise done is
//  called later, never before this returns.  args are copied.
zv_movepull_t *zv_movepull_start (zv_link_t *link, zv_workers_t *workers, zloop_t *loop, void *actor,
                                  const zv_movepull_args_t *args, zv_movepull_progress_fn *progress,
                                  zv_movepull_done_fn *done, void *ctx, char *errbuf, size_t errlen);

//  Stop (if not ended) and let go: done is not called after this.  Chunks
//  and jobs in flight only drop what they hold when they complete; the
//  .part files stay for a later pull to resume.  Accepts NULL.
void zv_movepull_destroy (zv_movepull_t **self_p);

//  Chunk calls made so far (for tests and logs).
int64_t zv_movepull_calls (zv_movepull_t *self);

#endif
