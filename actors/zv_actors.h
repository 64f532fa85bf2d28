/*  zv_actors.h: zova's actors and what they are started with.

    Each actor is a czmq zactor body: it signals ready on its pipe, serves its
    sockets from one zloop, and returns when the pipe says "$TERM".  The same
    code runs as a thread of `zovad all` (inproc endpoint to the conductor)
    and as the only actor of a cluster process (tcp endpoints); nothing else
    differs.

    Topology (docs/ARCHITECTURE.md has the picture): the conductor binds one
    ROUTER; api, scheduler and every compute connect one DEALER to it with
    the identity "<binary>.<host>", so the conductor can address any of them
    and no hypervisor host needs an open port.  The api also binds a ROUTER
    for clients (the zova CLI).                                               */

#ifndef ZV_ACTORS_H
#define ZV_ACTORS_H

#include <czmq.h>
#include "zv_config.h"

typedef struct {
    zv_config_t config;             //  copied by the actor at start
    char conductor_endpoint [256];  //  where to connect (or bind, for the conductor)
} zv_actor_args_t;

//  What every actor body shares.
//  The pipe reader: ends the actor's loop on "$TERM" (or a dead pipe).
int zv_actor_pipe_readable (zloop_t *loop, zsock_t *pipe, void *arg);
//  An actor that cannot start: complete the handshake, say FAILED (zovad
//  watches for it and exits non-zero), and wait for "$TERM".
void zv_actor_start_failed (zsock_t *pipe);

void zv_conductor_actor (zsock_t *pipe, void *args);
void zv_scheduler_actor (zsock_t *pipe, void *args);
void zv_compute_actor (zsock_t *pipe, void *args);
void zv_api_actor (zsock_t *pipe, void *args);
void zv_consoleproxy_actor (zsock_t *pipe, void *args);

#endif
