/*  zv_link.h: an actor's connection to the conductor, and its service life.

    Every actor but the conductor holds one link: a DEALER with identity
    "<binary>.<host>", an rpc table for its requests, and the heartbeat that
    keeps its service record up (conductor.service_heartbeat every
    report_interval).  The heartbeat's reply carries the conductor's epoch (a
    uuid drawn at each conductor start); when it changes, the link calls the
    actor back so it can resynchronise what a restarted conductor lost.      */

#ifndef ZV_LINK_H
#define ZV_LINK_H

#include "bus/zv_actor.h"
#include "bus/zv_rpc.h"

typedef struct _zv_link_t zv_link_t;

//  Called when a heartbeat reply shows a conductor epoch other than the last
//  one seen (including the first).  actor is the pointer given to zv_link_new.
typedef void (zv_link_epoch_fn) (void *actor, const char *epoch);
//  Extra fields of the heartbeat (compute only: {node: host facts} or
//  {degraded: why}); new object or NULL.  The link may be given none.
typedef json_t *(zv_link_node_fn) (void *actor);
//  Called for each request or cast the conductor sends this actor.
typedef void (zv_link_serve_fn) (void *actor, zv_msg_t *msg);

zv_link_t *zv_link_new (const char *binary, const zv_actor_args_t *args, zloop_t *loop,
                        void *actor, zv_link_serve_fn *serve,
                        zv_link_epoch_fn *on_epoch, zv_link_node_fn *node_fn);
void zv_link_destroy (zv_link_t **self_p);

zsock_t *zv_link_socket (zv_link_t *self);
zv_rpc_t *zv_link_rpc (zv_link_t *self);
const char *zv_link_identity (zv_link_t *self);
//  Send a request to the conductor through the rpc table.
int zv_link_call (zv_link_t *self, zv_msg_t **request_p, int timeout_ms,
                  zv_rpc_fn *fn, void *ctx, zv_rpc_free_fn *free_ctx);
//  Send a heartbeat now (also sent by the link's own timer).
void zv_link_heartbeat (zv_link_t *self);

#endif
