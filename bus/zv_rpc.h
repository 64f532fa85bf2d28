/*  zv_rpc.h: outstanding requests of one actor, matched to their replies.

    An actor sends a request with zv_rpc_call and goes on serving its loop;
    when a message with "re" arrives, zv_rpc_dispatch finds the call by id
    and runs its continuation.  zv_rpc_expire, run from the actor's timer,
    answers every call past its deadline with a synthesized ZV_ETIMEOUT
    reply, so no continuation waits forever on a dead peer.  Single-threaded:
    one rpc table belongs to one actor thread.

    The table never needs the socket itself: zv_rpc_call_send hands the
    request to a send function, so an object that owns no socket (the
    conductor, which its actor body or a unit test feeds) makes calls the
    same way; zv_rpc_call is that on a zsock.                                 */

#ifndef ZV_RPC_H
#define ZV_RPC_H

#include "proto/zv_msg.h"

typedef struct _zv_rpc_t zv_rpc_t;

//  Continuation: reply is borrowed for the call; zv_msg_status (reply)
//  tells success, a peer's error, or ZV_ETIMEOUT / ZV_EUNAVAILABLE.
typedef void (zv_rpc_fn) (void *actor, void *ctx, zv_msg_t *reply);

zv_rpc_t *zv_rpc_new (void);
//  Frees a continuation's context when the call is dropped unanswered.
typedef void (zv_rpc_free_fn) (void *ctx);

//  Destroy; pending continuations are NOT run (the actor is going away),
//  their contexts are freed with the free_ctx given to zv_rpc_call.
void zv_rpc_destroy (zv_rpc_t **self_p);

//  Sends *msg_p (taken, sent or not): 0, or -1 with errno saying why
//  (EHOSTUNREACH: a ROUTER_MANDATORY peer that is not connected).
typedef int (zv_rpc_send_fn) (void *arg, zv_msg_t **msg_p);

//  Send *request_p (taken) with send_fn (send_arg) and remember fn(ctx) until
//  the reply or timeout_ms.  If the send fails, fn runs at once with
//  ZV_EUNAVAILABLE (so callers have one path).  Returns 0 or -1 (send
//  failed).  free_ctx (may be NULL) frees ctx if the call is dropped at
//  destroy.
int zv_rpc_call_send (zv_rpc_t *self, zv_rpc_send_fn *send_fn, void *send_arg, zv_msg_t **request_p,
                      int timeout_ms, zv_rpc_fn *fn, void *ctx, zv_rpc_free_fn *free_ctx,
                      void *actor);

//  zv_rpc_call_send on a socket (zv_msg_send).
int zv_rpc_call (zv_rpc_t *self, zsock_t *socket, zv_msg_t **request_p,
                 int timeout_ms, zv_rpc_fn *fn, void *ctx, zv_rpc_free_fn *free_ctx,
                 void *actor);

//  If reply answers a pending call, run its continuation and return true.
bool zv_rpc_dispatch (zv_rpc_t *self, zv_msg_t *reply, void *actor);

//  Time out every call past its deadline.
void zv_rpc_expire (zv_rpc_t *self, void *actor);

size_t zv_rpc_pending (zv_rpc_t *self);

#endif
