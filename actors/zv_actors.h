/*  zv_actors.h: zova's five actors, the bodies zovad starts.

    Topology (docs/ARCHITECTURE.md has the picture): the conductor binds one
    ROUTER; api, scheduler, consoleproxy and every compute connect one
    DEALER to it with the identity "<binary>.<host>", so the conductor can
    address any of them and no hypervisor host needs an open port.  The api
    also binds a ROUTER for clients (the zova CLI), the console proxy an
    HTTP/WebSocket port for browsers.  Each body takes a zv_actor_args_t
    (bus/zv_actor.h).                                                         */

#ifndef ZV_ACTORS_H
#define ZV_ACTORS_H

#include "bus/zv_actor.h"

void zv_conductor_actor (zsock_t *pipe, void *args);
void zv_scheduler_actor (zsock_t *pipe, void *args);
void zv_compute_actor (zsock_t *pipe, void *args);
void zv_api_actor (zsock_t *pipe, void *args);
void zv_consoleproxy_actor (zsock_t *pipe, void *args);

#endif
