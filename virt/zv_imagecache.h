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
    conversion, which can take seconds, runs on the compute's workers.

    It cleans itself as Nova's image cache manager does (zv_imagecache_clean,
    the rules in zv_imageclean.h): a pass removes the base files no
    instance of the host uses, once older than a minimum age, and never one
    that the loop holds for an operation or is fetching.                   */

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

//  An operation uses image id's file from now until it lets go (one
//  release per hold): no cleaning pass removes it meanwhile, nor when the
//  use began and ended while a pass was reading the disks.
void zv_imagecache_hold (zv_imagecache_t *self, const char *id);
void zv_imagecache_release (zv_imagecache_t *self, const char *id);

//  Called on the loop thread when a cleaning pass ends, with what it did:
//  {in_use, young, removed, unused, busy}, each an array of image ids
//  (borrowed for the call); unused: old enough but kept (remove false);
//  busy: chosen by the disks but held or used during the pass.
typedef void (zv_imagecache_clean_fn) (void *actor, void *ctx, const json_t *summary);

//  A cleaning pass: the base files that no instance directory under
//  instances_path uses and the loop neither holds nor fetches are removed
//  (remove true; false: only logged) once older than min_age_s; those in
//  use are touched, so that their age counts from their last use.  The
//  disks are read on the workers, the files removed back on the loop.
//  false (nothing done) while the last pass still runs.  fn may be NULL.
bool zv_imagecache_clean (zv_imagecache_t *self, const char *instances_path, int64_t min_age_s, bool remove,
                          zv_imagecache_clean_fn *fn, void *ctx);

//  Transfer counters since start: {downloads, bytes, seconds, conversions,
//  hits} (caller owns), for logs and the benchmark.
json_t *zv_imagecache_stats (zv_imagecache_t *self);

#endif
