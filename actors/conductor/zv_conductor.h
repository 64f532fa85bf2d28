/*  zv_conductor.h: the conductor as an object: the store's only owner and
    the orchestrator of builds, deletes and actions, without a socket.

    The actor body (zv_conductor_actor in conductor.c) owns the ROUTER and
    the zloop: it makes one zv_conductor_t whose sink sends on that ROUTER,
    feeds it every message the ROUTER reads, and runs its timers.  A unit
    test makes one whose sink captures what it is given, and drives any
    handler by feeding messages, without a process or a socket
    (tests/unit/zv_conductor_harness.h).  Single-threaded: one conductor
    belongs to one thread.                                                   */

#ifndef ZV_CONDUCTOR_H
#define ZV_CONDUCTOR_H

#include "common/zv_config.h"
#include "proto/zv_msg.h"

typedef struct _zv_conductor_t zv_conductor_t;

//  What the conductor sends (replies, casts, calls; each addressed by its
//  routing id) goes to a sink.  It returns 0 when sent, -1 when the peer
//  is not connected (what ROUTER_MANDATORY's EHOSTUNREACH means), with
//  errno saying why.  The sink takes *msg_p either way.
typedef int (zv_conductor_sink_fn) (void *arg, zv_msg_t **msg_p);

//  Open the store under cfg->state_path (creating it and its images
//  directory), draw a new epoch, and finish what a previous run left in
//  flight (the start-up sweep; what it sends already goes to sink).  NULL
//  with errbuf set when the store cannot be opened.
zv_conductor_t *zv_conductor_new (const zv_config_t *cfg, zv_conductor_sink_fn *sink, void *sink_arg,
                                  char *errbuf, size_t errlen);
//  Destroy; calls still waiting for a reply are dropped, not answered.
void zv_conductor_destroy (zv_conductor_t **self_p);

//  Group commit: the messages fed between begin and end are served in one
//  batch, with one synced commit at end, after which what their handlers
//  queued is sent.  Nobody is told of a change before it is on disk.
void zv_conductor_begin (zv_conductor_t *self);
void zv_conductor_end (zv_conductor_t *self);
//  Serve one message as read from the ROUTER (its routing id is the
//  sender's identity, "compute.node1"): a request, a cast, or a reply to
//  one of the conductor's calls.  Takes *msg_p.  Outside begin/end, the
//  message is a batch of its own.
void zv_conductor_feed (zv_conductor_t *self, zv_msg_t **msg_p);

//  Timers, each one batch.  tick (every 100 ms): calls past their deadline,
//  jobs parked until a scheduler is up.  housekeeping (housekeeping_interval):
//  the sweep of stuck transitions and expired tokens.  heartbeat
//  (report_interval): the conductor's own service record.
void zv_conductor_tick (zv_conductor_t *self);
void zv_conductor_housekeeping (zv_conductor_t *self);
void zv_conductor_heartbeat (zv_conductor_t *self);

//  The epoch drawn by zv_conductor_new (borrowed), which every heartbeat
//  reply carries so that peers notice a restart.
const char *zv_conductor_epoch (const zv_conductor_t *self);

//  The store, for tests and tools that set a scene or read the records
//  directly, between batches only (never inside begin/end).  Borrowed.
struct _zv_store_t;
struct _zv_store_t *zv_conductor_store (zv_conductor_t *self);

#endif
