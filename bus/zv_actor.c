/*  zv_actor.c: the few lines every actor body shares: its pipe reader and
    what it does when it cannot start.  czmq's zactor_new ignores the
    handshake's status, so a failed start is a handshake followed by the
    word FAILED, which zovad's main thread watches for.                     */

#include "bus/zv_actor.h"

int
zv_actor_pipe_readable (zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop;
    (void) arg;
    char *command = zstr_recv (pipe);
    int rc = (!command || streq (command, "$TERM")) ? -1 : 0;
    zstr_free (&command);
    return rc;
}

void
zv_actor_start_failed (zsock_t *pipe)
{
    zsock_signal (pipe, 0);
    zstr_send (pipe, "FAILED");
    char *command = zstr_recv (pipe);
    zstr_free (&command);
}
