/*  zv_ws.h: libwebsockets served from an actor's zloop, with the actor's own
    file descriptors beside it.

    One epoll set is one poller of the loop.  It holds the listening socket
    (ours: lws is created without a listener and adopts each accepted
    connection), every connection lws adopted, and the descriptors the actor
    adds (a console proxy's TCP connections to compute hosts).  lws runs on
    the loop's thread only, and is serviced when one of its connections has
    an event, when the actor kicks it after changing what lws waits for from
    outside a callback, and by a tick for its own timeouts.  Only this module
    and the actor that uses it include libwebsockets.                        */

#ifndef ZV_WS_H
#define ZV_WS_H

#include <czmq.h>
#include <sys/epoll.h>

struct lws_context;
struct lws_protocols;
struct lws_http_mount;

typedef struct _zv_ws_t zv_ws_t;
typedef struct _zv_ws_fd_t zv_ws_fd_t;

//  A descriptor of the actor's is ready: events are EPOLLIN, EPOLLOUT,
//  EPOLLERR, EPOLLHUP bits.  Runs on the loop, never inside an lws callback.
typedef void (zv_ws_fd_fn) (void *arg, uint32_t events);

typedef struct {
    const char *listen;                     //  address to bind; "" or "0.0.0.0": every IPv4 interface
    int port;
    const struct lws_protocols *protocols;  //  [0] serves HTTP and accepts WebSocket upgrades
    const struct lws_http_mount *mounts;    //  borrowed for the life of the server
    void *user;                             //  lws_context_user () of every callback
    size_t serv_buf_size;                   //  lws's read and file-serving chunk (0: lws's default)
} zv_ws_options_t;

//  Bind, create the lws context and register on loop.  NULL with a reason
//  in errbuf ("cannot listen on 127.0.0.1:6080: Address already in use").
zv_ws_t *zv_ws_new (zloop_t *loop, const zv_ws_options_t *options, char *errbuf, size_t errlen);
//  Destroy the lws context (its connections close and their callbacks run,
//  so the actor's state must still be valid), then leave the loop.
void zv_ws_destroy (zv_ws_t **self_p);

//  Borrowed until destroy.
struct lws_context *zv_ws_context (zv_ws_t *self);
//  The port actually bound.
int zv_ws_port (zv_ws_t *self);

//  The actor's protocol callback calls this on every callback: lws did
//  something, so it is serviced once more before the loop waits (lws may
//  have left work that no new socket event will announce).  self may be
//  NULL (callbacks during creation).
void zv_ws_activity (zv_ws_t *self);
//  An HTTP request began (LWS_CALLBACK_FILTER_HTTP_CONNECTION): lws serves
//  a mounted file chunk by chunk without calling back, so it is serviced
//  every millisecond for a short while.
void zv_ws_http_request (zv_ws_t *self);
//  Ask for lws to be serviced soon from the loop: after lws_callback_on_writable
//  or lws_rx_flow_control called outside lws's own callbacks.  Safe anywhere.
void zv_ws_kick (zv_ws_t *self);
//  Service lws now, until it has nothing left to do (e.g. to write close
//  frames before destroy).  Never from inside an lws callback.
void zv_ws_service (zv_ws_t *self);

//  Serve fd (not owned: the caller closes it after removing it) from the
//  same set, level-triggered, for events (EPOLLIN | EPOLLOUT, or 0).  NULL
//  when epoll refuses it (errno set).
zv_ws_fd_t *zv_ws_fd_add (zv_ws_t *self, int fd, uint32_t events, zv_ws_fd_fn *fn, void *arg);
//  Change the events waited for.  0 or -1 (errno).
int zv_ws_fd_set (zv_ws_fd_t *handle, uint32_t events);
//  Stop serving the descriptor; its callback is not called again, even for
//  events already collected.  Accepts NULL; nulls *handle_p.
void zv_ws_fd_remove (zv_ws_fd_t **handle_p);

#endif
