/*  zv_actor.h: what every actor body is started with, and the few lines
    every actor body shares.

    Each actor is a czmq zactor body: it signals ready on its pipe, serves its
    sockets from one zloop, and returns when the pipe says "$TERM".  The same
    code runs as a thread of `zovad all` (inproc endpoint to the conductor)
    and as the only actor of a cluster process (tcp endpoints); nothing else
    differs.                                                                  */

#ifndef ZV_ACTOR_H
#define ZV_ACTOR_H

#include <czmq.h>
#include "common/zv_config.h"

typedef struct {
    zv_config_t config;             //  copied by the actor at start
    char conductor_endpoint [256];  //  where to connect (or bind, for the conductor)
} zv_actor_args_t;

//  The pipe reader: ends the actor's loop on "$TERM" (or a dead pipe).
int zv_actor_pipe_readable (zloop_t *loop, zsock_t *pipe, void *arg);
//  An actor that cannot start: complete the handshake, say FAILED (zovad
//  watches for it and exits non-zero), and wait for "$TERM".
void zv_actor_start_failed (zsock_t *pipe);

#endif
