/*  zv_workers.h: a few threads that run an actor's blocking calls.

    An actor's zloop must never wait on a guest (a clean shutdown waits up
    to a minute, a managed save seconds).  Such a call goes to a worker as a
    job: work runs on a worker thread, then done runs back on the loop's
    thread, where the actor's state lives.  Completions cross by a pipe the
    loop polls (a pointer per write, atomic under PIPE_BUF).  Jobs run in
    the order submitted, up to `threads` at once.                            */

#ifndef ZV_WORKERS_H
#define ZV_WORKERS_H

#include <czmq.h>

typedef struct _zv_workers_t zv_workers_t;

//  Runs on a worker thread: must not touch the actor's state.
typedef void (zv_work_fn) (void *job);
//  Runs on the loop's thread once work returned.
typedef void (zv_done_fn) (void *actor, void *job);

zv_workers_t *zv_workers_new (zloop_t *loop, void *actor, int threads);
//  Waits for running jobs; queued jobs that never ran get done called with
//  the flag from zv_workers_cancelled () true, so they can free themselves.
void zv_workers_destroy (zv_workers_t **self_p);
void zv_workers_submit (zv_workers_t *self, zv_work_fn *work, zv_done_fn *done, void *job);
//  Jobs queued or running.
size_t zv_workers_busy (zv_workers_t *self);
//  True inside done when the job was dropped at destroy without running.
bool zv_workers_cancelled (zv_workers_t *self);

#endif
