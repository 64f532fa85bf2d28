/*  zv_ws.c: libwebsockets on a zloop.

    lws offers two ways to live in someone else's loop: its external-poll
    callbacks (LWS_CALLBACK_ADD_POLL_FD and friends, which tell the host loop
    every descriptor and event mask lws wants) and event-library plugins.
    Debian 12's libwebsockets 4.1.6 is built without LWS_WITH_EXTERNAL_POLL,
    so the callbacks never come; the plugins are libuv, libev and glib, not
    zloop.  What is left, and what this module does, is lws's own service
    function run without waiting (lws_service_tsi with a negative timeout:
    it polls lws's descriptors with lws's own masks, timeout 0, serves what
    is ready and runs its due timers), called exactly when there can be
    something to serve:

    - every connection lws has: we own the listening socket, accept, and
      hand each connection to lws (lws_adopt_socket_vhost), so we know its
      descriptor and put it in our epoll set edge-triggered for input and
      output.  An edge means new bytes or freed send space: lws is serviced.
      Edge-triggered, because lws masks input itself (flow control) and a
      level-triggered readable socket it does not want to read would spin.
    - after any round in which lws called the actor back (it may have read
      only part of what arrived, or been asked for a writable callback on a
      socket that has room, which makes no new edge): one more round.  And
      the service ends only after two quiet rounds in a row: on a writable
      socket lws first flushes what a partial write left over, calling
      nobody back, and only in the next round calls for more.
    - after the actor changed what lws waits for outside a callback
      (lws_callback_on_writable, lws_rx_flow_control): zv_ws_kick.
    - for S_HTTP_BUSY_MS after an HTTP request begins, every millisecond:
      lws serves a mounted file one chunk per writable event and calls
      nobody back meanwhile, and a socket with a large send buffer
      (loopback) never fills, so no edge would announce the next chunk.
    - every S_TICK_MS, for lws's own timeouts (close handshakes, idle HTTP).

    The actor's own descriptors sit in the same epoll set, level-triggered,
    so one poller on the loop serves every socket, and changing a mask is
    one epoll_ctl (a zloop poller change rebuilds the loop's poll set and
    ends its dispatch pass, which with hundreds of busy sessions starves the
    ones late in the set).  Handles removed while events are being
    dispatched are freed after the pass, so a stale event never reaches a
    reused handle.                                                          */

#include "actors/consoleproxy/zv_ws.h"
#include "common/zv_common.h"
#include <libwebsockets.h>
#include <netdb.h>
#include <sys/socket.h>

#define ACTOR "ws"
#define S_TICK_MS 100           //  lws's timers are seconds long; this is precise enough
#define S_EVENTS 256            //  events taken per pass (more wait for the next pass)
#define S_ROUNDS 16             //  service rounds before the loop gets a turn
#define S_QUIET_ROUNDS 2        //  rounds without a callback that end a service
#define S_ACCEPTS 64            //  connections accepted per pass
#define S_ACCEPT_PAUSE_MS 1000  //  out of descriptors: stop accepting this long
#define S_HTTP_BUSY_MS 500      //  fast service after an HTTP request begins
#define S_HTTP_TICK_MS 1

typedef enum { S_FD_LISTENER, S_FD_ACTOR, S_FD_KIND_COUNT } s_fd_kind_t;

struct _zv_ws_fd_t {
    zv_ws_t *owner;
    s_fd_kind_t kind;
    int fd;
    uint32_t events;
    zv_ws_fd_fn *fn;
    void *arg;
    bool dead;                  //  removed; freed after the current pass
};

struct _zv_ws_t {
    zloop_t *loop;
    zmq_pollitem_t item;        //  the epoll descriptor, as one poller of the loop
    int epfd;
    int port;
    zv_ws_fd_t listener;
    struct lws_context *context;
    struct lws_vhost *vhost;
    int tick_timer;
    int kick_timer;             //  -1 when not armed
    int pause_timer;            //  -1 when accepting
    int http_timer;             //  -1 when no HTTP request is recent
    int64_t http_until_ms;      //  fast service until then
    bool dispatching;           //  inside a pass over epoll events
    bool servicing;             //  inside lws_service_tsi
    bool kicked;                //  lws wants another round
    uint64_t activity;          //  callbacks seen in the current round
    zlistx_t *dead;             //  handles removed during a pass
};

static void
s_lws_log (int level, const char *line)
{
    size_t len = strlen (line);
    while (len && (line [len - 1] == '\n' || line [len - 1] == '\r'))
        len--;
    //  lws reports a bad client as an error: that is a warning of ours.
    if (level & LLL_ERR)
        zv_warning (ACTOR, NULL, "libwebsockets: %.*s", (int) len, line);
    else
        zv_debug (ACTOR, NULL, "libwebsockets: %.*s", (int) len, line);
}

static void s_arm_kick (zv_ws_t *self);

static void
s_service (zv_ws_t *self)
{
    if (self->servicing) {
        self->kicked = true;
        return;
    }
    self->servicing = true;
    int round, quiet = 0;
    for (round = 0; round < S_ROUNDS; round++) {
        self->kicked = false;
        self->activity = 0;
        lws_service_tsi (self->context, -1, 0);
        if (self->activity || self->kicked)
            quiet = 0;
        else
        if (++quiet == S_QUIET_ROUNDS)
            break;
    }
    self->servicing = false;
    //  Still busy: go on after the loop has served its other sockets.
    if (round == S_ROUNDS)
        s_arm_kick (self);
}

static int
s_kick_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_ws_t *self = (zv_ws_t *) arg;
    self->kick_timer = -1;
    s_service (self);
    return 0;
}

static void
s_arm_kick (zv_ws_t *self)
{
    if (self->kick_timer < 0)
        self->kick_timer = zloop_timer (self->loop, 0, 1, s_kick_timer, self);
}

static int
s_tick_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_service ((zv_ws_t *) arg);
    return 0;
}

static int
s_http_timer (zloop_t *loop, int timer_id, void *arg)
{
    zv_ws_t *self = (zv_ws_t *) arg;
    s_service (self);
    if (zv_mono_ms () >= self->http_until_ms) {
        zloop_timer_end (loop, timer_id);
        self->http_timer = -1;
    }
    return 0;
}

static int
s_listener_events (zv_ws_t *self, uint32_t events)
{
    struct epoll_event event = { .events = events, .data.ptr = &self->listener };
    return epoll_ctl (self->epfd, EPOLL_CTL_MOD, self->listener.fd, &event);
}

static int
s_resume_accepting (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_ws_t *self = (zv_ws_t *) arg;
    self->pause_timer = -1;
    s_listener_events (self, EPOLLIN);
    return 0;
}

//  Accept what is waiting and give it to lws.  Returns true if lws got a
//  connection (its request may already be there).
static bool
s_accept (zv_ws_t *self)
{
    bool adopted = false;
    for (int count = 0; count < S_ACCEPTS; count++) {
        int fd = accept4 (self->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                //  The listener stays readable: without a pause this spins.
                zv_warning (ACTOR, NULL, "cannot accept a connection (%s): not accepting for %d ms",
                            strerror (errno), S_ACCEPT_PAUSE_MS);
                if (self->pause_timer < 0 && s_listener_events (self, 0) == 0)
                    self->pause_timer = zloop_timer (self->loop, S_ACCEPT_PAUSE_MS, 1, s_resume_accepting, self);
            }
            break;
        }
        //  lws closes fd itself when it cannot take it.
        if (!lws_adopt_socket_vhost (self->vhost, fd))
            continue;
        adopted = true;
        //  data.ptr NULL: one of lws's.  lws closing it removes it from the set.
        struct epoll_event event = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = NULL };
        if (epoll_ctl (self->epfd, EPOLL_CTL_ADD, fd, &event))
            zv_warning (ACTOR, NULL, "cannot watch connection %d (%s): it is served on ticks only", fd,
                        strerror (errno));
    }
    return adopted;
}

static void
s_reap (zv_ws_t *self)
{
    zv_ws_fd_t *handle;
    while ((handle = (zv_ws_fd_t *) zlistx_detach (self->dead, NULL)))
        free (handle);
}

static int
s_epoll_ready (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    zv_ws_t *self = (zv_ws_t *) arg;
    struct epoll_event events [S_EVENTS];
    int count = epoll_wait (self->epfd, events, S_EVENTS, 0);
    bool for_lws = false;
    self->dispatching = true;
    for (int index = 0; index < count; index++) {
        zv_ws_fd_t *handle = (zv_ws_fd_t *) events [index].data.ptr;
        if (!handle)
            for_lws = true;
        else
        if (handle->kind == S_FD_LISTENER) {
            if (s_accept (self))
                for_lws = true;
        }
        else
        if (!handle->dead)
            handle->fn (handle->arg, events [index].events);
    }
    self->dispatching = false;
    s_reap (self);
    if (for_lws || self->kicked)
        s_service (self);
    return 0;
}

static int
s_listen (const char *address, int port, char *errbuf, size_t errlen)
{
    char service [16];
    snprintf (service, sizeof service, "%d", port);
    bool any = !address || !*address;
    struct addrinfo hints = { .ai_family = any ? AF_INET : AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *result = NULL;
    int rc = getaddrinfo (any ? NULL : address, service, &hints, &result);
    if (rc) {
        snprintf (errbuf, errlen, "cannot listen on %s:%d: %s", any ? "" : address, port, gai_strerror (rc));
        return -1;
    }
    int fd = socket (result->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0
    ||  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on)
    ||  bind (fd, result->ai_addr, result->ai_addrlen)
    ||  listen (fd, SOMAXCONN)) {
        snprintf (errbuf, errlen, "cannot listen on %s:%d: %s", any ? "" : address, port, strerror (errno));
        if (fd >= 0)
            close (fd);
        fd = -1;
    }
    freeaddrinfo (result);
    return fd;
}

static int
s_bound_port (int fd)
{
    struct sockaddr_storage address;
    socklen_t len = sizeof address;
    if (getsockname (fd, (struct sockaddr *) &address, &len))
        return -1;
    if (address.ss_family == AF_INET6)
        return ntohs (((struct sockaddr_in6 *) &address)->sin6_port);
    return ntohs (((struct sockaddr_in *) &address)->sin_port);
}

zv_ws_t *
zv_ws_new (zloop_t *loop, const zv_ws_options_t *options, char *errbuf, size_t errlen)
{
    zv_ws_t *self = (zv_ws_t *) zmalloc (sizeof (zv_ws_t));
    self->loop = loop;
    self->epfd = -1;
    self->tick_timer = -1;
    self->kick_timer = -1;
    self->pause_timer = -1;
    self->http_timer = -1;
    self->dead = zlistx_new ();
    self->listener.owner = self;
    self->listener.kind = S_FD_LISTENER;
    self->listener.fd = s_listen (options->listen, options->port, errbuf, errlen);
    if (self->listener.fd < 0)
        goto failed;
    self->port = s_bound_port (self->listener.fd);
    self->epfd = epoll_create1 (EPOLL_CLOEXEC);
    struct epoll_event event = { .events = EPOLLIN, .data.ptr = &self->listener };
    if (self->epfd < 0 || epoll_ctl (self->epfd, EPOLL_CTL_ADD, self->listener.fd, &event)) {
        snprintf (errbuf, errlen, "epoll: %s", strerror (errno));
        goto failed;
    }

    //  Not lws's notices: they may quote a request's URI, and a console
    //  URI carries a token.
    lws_set_log_level (zv_log_level >= 3 ? LLL_ERR | LLL_WARN : LLL_ERR, s_lws_log);
    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    //  No listener of lws's own: every connection is one we accepted.
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    info.user = options->user;
    info.pt_serv_buf_size = (unsigned int) options->serv_buf_size;
    info.server_string = "zova";
    self->context = lws_create_context (&info);
    if (!self->context) {
        snprintf (errbuf, errlen, "cannot create the libwebsockets context");
        goto failed;
    }
    info.vhost_name = "zova";
    info.protocols = options->protocols;
    info.mounts = options->mounts;
    self->vhost = lws_create_vhost (self->context, &info);
    if (!self->vhost) {
        snprintf (errbuf, errlen, "cannot create the libwebsockets server");
        goto failed;
    }

    self->item.fd = self->epfd;
    self->item.events = ZMQ_POLLIN;
    zloop_poller (loop, &self->item, s_epoll_ready, self);
    //  A pollable epoll descriptor never errs; the loop must not drop it if it did.
    zloop_poller_set_tolerant (loop, &self->item);
    self->tick_timer = zloop_timer (loop, S_TICK_MS, 0, s_tick_timer, self);
    return self;

failed:
    if (self->context)
        lws_context_destroy (self->context);
    if (self->epfd >= 0)
        close (self->epfd);
    if (self->listener.fd >= 0)
        close (self->listener.fd);
    zlistx_destroy (&self->dead);
    free (self);
    return NULL;
}

void
zv_ws_destroy (zv_ws_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_ws_t *self = *self_p;
    //  Its connections close here and the actor hears of each; its own
    //  descriptors are removed (and freed at once: no pass is running).
    self->servicing = true;
    lws_context_destroy (self->context);
    zloop_poller_end (self->loop, &self->item);
    zloop_timer_end (self->loop, self->tick_timer);
    if (self->kick_timer >= 0)
        zloop_timer_end (self->loop, self->kick_timer);
    if (self->pause_timer >= 0)
        zloop_timer_end (self->loop, self->pause_timer);
    if (self->http_timer >= 0)
        zloop_timer_end (self->loop, self->http_timer);
    close (self->epfd);
    close (self->listener.fd);
    s_reap (self);
    zlistx_destroy (&self->dead);
    free (self);
    *self_p = NULL;
}

struct lws_context *
zv_ws_context (zv_ws_t *self)
{
    return self->context;
}

int
zv_ws_port (zv_ws_t *self)
{
    return self->port;
}

void
zv_ws_activity (zv_ws_t *self)
{
    if (self)
        self->activity++;
}

void
zv_ws_http_request (zv_ws_t *self)
{
    self->http_until_ms = zv_mono_ms () + S_HTTP_BUSY_MS;
    if (self->http_timer < 0)
        self->http_timer = zloop_timer (self->loop, S_HTTP_TICK_MS, 0, s_http_timer, self);
}

void
zv_ws_kick (zv_ws_t *self)
{
    self->kicked = true;
    //  Within a pass or a round, the kick is seen when it ends.
    if (!self->dispatching && !self->servicing)
        s_arm_kick (self);
}

void
zv_ws_service (zv_ws_t *self)
{
    assert (!self->servicing);
    s_service (self);
}

zv_ws_fd_t *
zv_ws_fd_add (zv_ws_t *self, int fd, uint32_t events, zv_ws_fd_fn *fn, void *arg)
{
    zv_ws_fd_t *handle = (zv_ws_fd_t *) zmalloc (sizeof (zv_ws_fd_t));
    handle->owner = self;
    handle->kind = S_FD_ACTOR;
    handle->fd = fd;
    handle->events = events;
    handle->fn = fn;
    handle->arg = arg;
    struct epoll_event event = { .events = events, .data.ptr = handle };
    if (epoll_ctl (self->epfd, EPOLL_CTL_ADD, fd, &event)) {
        free (handle);
        return NULL;
    }
    return handle;
}

int
zv_ws_fd_set (zv_ws_fd_t *handle, uint32_t events)
{
    if (handle->events == events)
        return 0;
    struct epoll_event event = { .events = events, .data.ptr = handle };
    if (epoll_ctl (handle->owner->epfd, EPOLL_CTL_MOD, handle->fd, &event))
        return -1;
    handle->events = events;
    return 0;
}

void
zv_ws_fd_remove (zv_ws_fd_t **handle_p)
{
    if (!handle_p || !*handle_p)
        return;
    zv_ws_fd_t *handle = *handle_p;
    zv_ws_t *owner = handle->owner;
    epoll_ctl (owner->epfd, EPOLL_CTL_DEL, handle->fd, NULL);
    handle->dead = true;
    if (owner->dispatching)
        zlistx_add_end (owner->dead, handle);
    else
        free (handle);
    *handle_p = NULL;
}
