/*  zv_imagecache.h: a compute host's cache of image files, <instances_path>/_base.

    As Nova's libvirt driver keeps it: one file per image per host, named by
    the image id, in raw format (a qcow2 image is converted once with
    qemu-img), shared read-only by every instance of that image on the host
    as the backing file of its qcow2 root disk.  The bytes come from the
    conductor (the image service) over the bus: conductor.image_download
    returns one chunk per call in the payload frame; a window of chunks is
    in flight at once (flow control: the next is asked only when one
    arrives), written at their offsets into <id>.part, whose sha256 must
    match the image's checksum before it is renamed into place.  Concurrent
    requests for one image share one download: every waiter is called back
    when it ends.

    The cache is driven from the compute loop's thread (zloop); the
    conversion, which can take seconds, runs on the compute's workers.      */

#ifndef ZV_IMAGECACHE_H
#define ZV_IMAGECACHE_H

#include "bus/zv_link.h"
#include "bus/zv_workers.h"

typedef struct _zv_imagecache_t zv_imagecache_t;

//  Called on the loop thread when the image is in the cache (status ZV_OK,
//  path is the _base file, errtext "") or cannot be (status and errtext say
//  why, path NULL).  Both strings are borrowed for the call.  fn may fetch
//  again, but must not destroy the cache.
typedef void (zv_imagecache_fn) (void *actor, void *ctx, zv_status_t status, const char *path,
                                 const char *errtext);

//  dir: the cache directory (made when missing).  chunk_size and window:
//  bytes per conductor.image_download call and calls in flight.
zv_imagecache_t *zv_imagecache_new (const char *dir, zv_link_t *link, zv_workers_t *workers,
                                    void *actor, size_t chunk_size, int window);
//  Destroy: downloads in progress stop and their waiters are NOT called
//  (the actor is going away).  Destroy it before the workers (a job they
//  drop would otherwise fail its download and call its waiters); the link
//  may go before or after.  Completions that come later (late chunk
//  replies, jobs finishing) only free what they hold.
void zv_imagecache_destroy (zv_imagecache_t **self_p);

//  Make sure image (its record: {id, checksum, size, disk_format, status})
//  is in the cache, then call fn (possibly at once, before this returns).
//  rq is the request id logged with the transfer.
void zv_imagecache_fetch (zv_imagecache_t *self, const json_t *image, const char *rq,
                          zv_imagecache_fn *fn, void *ctx);

//  Path of the cached file of image id (whether it exists or not).
const char *zv_imagecache_path (zv_imagecache_t *self, const char *id, char *buf, size_t len);

//  Transfer counters since start: {downloads, bytes, seconds, conversions,
//  hits} (caller owns), for logs and the benchmark.
json_t *zv_imagecache_stats (zv_imagecache_t *self);

#endif
