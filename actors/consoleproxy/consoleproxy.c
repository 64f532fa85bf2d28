/*  consoleproxy.c: the console proxy actor (Nova's novncproxy and
    serialproxy in one): serves the noVNC web client over HTTP and relays
    a browser's WebSocket to a guest's VNC server or serial console.

        GET /vnc_lite.html ...           files of [consoleproxy] web, nothing else
        WebSocket /websockify?token=T    VNC (noVNC asks for no subprotocol, or "binary")
        WebSocket /serial?token=T        serial console, raw bytes as binary frames

    One thread, one zloop, one link to the conductor (heartbeats, service
    record "consoleproxy").  libwebsockets and the TCP connections to compute
    hosts share one epoll set that is a poller of the loop (zv_ws), so every
    session is served from the loop and none waits for another.

    A session: the Origin is checked at the handshake (absent is allowed,
    for non-browser clients, as websockify does; present, its host[:port]
    must be the request's Host or in [consoleproxy] allowed_origins), else
    the upgrade is refused with 403 and no WebSocket exists.  The upgrade is
    then accepted with reading from the browser paused, and the token goes
    to the conductor (conductor.console_authorize); only an answer naming a
    console of the path's kind opens a non-blocking TCP connection to its
    host:port.  A refusal closes the WebSocket with 1008 and the reason; no
    compute host is ever contacted for it.  Then bytes go both ways, each
    direction through a buffer of at most [consoleproxy] buffer_kb: when the
    browser's is full the compute socket is not read, when the compute
    host's is full the browser is not read (lws rx flow control), so one
    slow reader only slows its own session.  Either side closing closes the
    other once what was read from it is delivered.

    Ownership: a session belongs to its WebSocket (created when lws
    establishes it, freed in lws's CLOSED callback); replies and lookups
    name it by id, so one that comes after it ended finds nothing.  Tokens
    are never logged beyond their first 8 characters.                     */

#include "actors/zv_actors.h"
#include "bus/zv_link.h"
#include "actors/consoleproxy/zv_ws.h"
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define S_RX_BUFFER 16384           //  most of a browser's frame handed to us at once
#define S_FRAME_MAX 65536           //  most bytes sent to a browser in one frame
#define S_BUF_FIRST 16384           //  first allocation of a session buffer
#define S_BUF_KEEP 65536            //  an idle session keeps no larger buffer
#define S_SERV_BUF 262144           //  lws's read and file chunk: noVNC's largest file in one
#define S_TOKEN_MAX 128             //  the catalogue's limit on a token
#define S_CONNECT_TIMEOUT_MS 10000  //  a compute host that does not answer
#define S_FD_WANTED 65536           //  descriptors to ask for: two per session

//  WebSocket close codes (RFC 6455).
#define S_CLOSE_NORMAL 1000
#define S_CLOSE_GOING_AWAY 1001
#define S_CLOSE_POLICY 1008
#define S_CLOSE_ERROR 1011

typedef enum { S_KIND_NOVNC, S_KIND_SERIAL, S_KIND_COUNT } s_kind_t;

//  Path of each kind of console, and its name in tokens (conductor.console_url).
static const struct {
    const char *path;
    const char *name;
} s_kinds [S_KIND_COUNT] = {
    [S_KIND_NOVNC] = { "/websockify", "novnc" },
    [S_KIND_SERIAL] = { "/serial", "serial" },
};

typedef enum {
    S_AUTHORIZING,                  //  waiting for the conductor; browser not read
    S_CONNECTING,                   //  resolving or connecting to the compute host
    S_RELAYING,
    S_CLOSING,                      //  WebSocket close frame to be sent
    S_STATE_COUNT
} s_state_t;

//  Bytes of one direction: data [head, tail), with `pre` bytes kept free
//  before head (lws writes a frame's header there).
typedef struct {
    byte *data;
    size_t capacity;
    size_t head, tail;
    size_t pre;
} s_buf_t;

typedef struct _self_t self_t;

typedef struct {
    self_t *self;
    uint64_t id;
    struct lws *wsi;                //  NULL once lws has closed the WebSocket
    s_kind_t kind;
    s_state_t state;
    char token8 [12];               //  the token's first 8 characters, for logs
    char peer [64];                 //  the browser's address
    char rq [64];                   //  request id of the authorization
    char uuid [64];
    char host [256];
    int port;
    struct addrinfo *addresses;     //  of the compute host, still to try
    struct addrinfo *next_address;
    int fd;                         //  to the compute host, -1 when none
    zv_ws_fd_t *handle;
    uint32_t fd_events;
    int64_t deadline_ms;            //  of the connection attempt
    s_buf_t down;                   //  compute host -> browser
    s_buf_t up;                     //  browser -> compute host
    bool browser_paused;            //  lws rx flow control is off
    bool started;                   //  authorized: its end is logged
    int close_status;               //  0, or the code to close the WebSocket with
    char close_reason [124];
    char why [160];                 //  why it ended, for the log
    uint64_t bytes_down, bytes_up;
    int64_t start_ms;
} s_session_t;

//  lws's per-connection data: what the handshake found, then the session.
typedef struct {
    s_session_t *session;
    s_kind_t kind;
    bool refused_locally;           //  no usable token: refuse without asking
    char token [S_TOKEN_MAX + 1];
} s_pss_t;

struct _self_t {
    zv_config_t cfg;
    char name [300];
    zloop_t *loop;
    zv_link_t *link;
    zv_ws_t *ws;
    struct lws_http_mount mount;
    zhashx_t *sessions;             //  "id" -> s_session_t (not owned: lws's CLOSED frees)
    uint64_t last_id;
    size_t buffer_limit;            //  bytes per direction and session
    int callback_depth;             //  inside an lws callback
    int lookup_fds [2];             //  resolver threads -> loop
    zv_ws_fd_t *lookup_handle;
    int timer;
};

//  Media types lws does not know; the rest of noVNC's files it does.
static const struct lws_protocol_vhost_options s_mime_oga = { NULL, NULL, ".oga", "audio/ogg" };
static const struct lws_protocol_vhost_options s_mime_mp3 = { &s_mime_oga, NULL, ".mp3", "audio/mpeg" };
static const struct lws_protocol_vhost_options s_mime_woff = { &s_mime_mp3, NULL, ".woff", "font/woff" };
static const struct lws_protocol_vhost_options s_mime_ttf = { &s_mime_woff, NULL, ".ttf", "font/ttf" };
static const struct lws_protocol_vhost_options s_mime_json = { &s_mime_ttf, NULL, ".json", "application/json" };
static const struct lws_protocol_vhost_options s_mime_svg = { &s_mime_json, NULL, ".svg", "image/svg+xml" };

//  ---------------------------------------------------------------------
//  Buffers

static size_t
s_buf_len (const s_buf_t *buf)
{
    return buf->tail - buf->head;
}

//  Contiguous room after tail, for at most `limit` bytes in the buffer;
//  when there is less than `need`, the data moves to the front, then the
//  allocation doubles (never beyond the limit), so a buffer grows with its
//  backlog, not with its traffic.  Returns the room (0 at the limit).
static size_t
s_buf_room (s_buf_t *buf, size_t limit, size_t need)
{
    size_t len = s_buf_len (buf);
    if (len >= limit)
        return 0;
    size_t most = limit - len;
    if (need > most)
        need = most;
    if (buf->data && buf->capacity - buf->tail < need && buf->head > buf->pre) {
        memmove (buf->data + buf->pre, buf->data + buf->head, len);
        buf->head = buf->pre;
        buf->tail = buf->pre + len;
    }
    if (!buf->data || buf->capacity - buf->tail < need) {
        size_t capacity = buf->capacity ? buf->capacity * 2 : buf->pre + S_BUF_FIRST;
        if (capacity < buf->pre + len + need)
            capacity = buf->pre + len + need;
        if (capacity > buf->pre + limit)
            capacity = buf->pre + limit;
        if (capacity > buf->capacity) {
            buf->data = (byte *) realloc (buf->data, capacity);
            assert (buf->data);
            if (!buf->capacity)
                buf->head = buf->tail = buf->pre;
            buf->capacity = capacity;
        }
    }
    size_t room = buf->capacity - buf->tail;
    return room < most ? room : most;
}

//  Append all of data, beyond the limit if it must (lws hands over what it
//  read before it sees the pause).
static void
s_buf_append (s_buf_t *buf, const void *data, size_t size)
{
    if (size == 0)
        return;                     //  an empty frame: nothing to keep (and no buffer yet)
    size_t room = s_buf_room (buf, s_buf_len (buf) + size, size);
    assert (room >= size);
    memcpy (buf->data + buf->tail, data, size);
    buf->tail += size;
}

static void
s_buf_consume (s_buf_t *buf, size_t size)
{
    buf->head += size;
    if (buf->head == buf->tail)
        buf->head = buf->tail = buf->pre;
}

static void
s_buf_free (s_buf_t *buf)
{
    free (buf->data);
    buf->data = NULL;
    buf->capacity = buf->head = buf->tail = 0;
}

//  An empty buffer grown by a burst is given back (checked once a second,
//  not at every drain: a busy session would allocate at every read).
static void
s_buf_trim (s_buf_t *buf)
{
    if (buf->capacity > S_BUF_KEEP && !s_buf_len (buf))
        s_buf_free (buf);
}

//  ---------------------------------------------------------------------
//  Sessions

static s_session_t *
s_session_find (self_t *self, uint64_t id)
{
    char key [24];
    snprintf (key, sizeof key, "%" PRIu64, id);
    return (s_session_t *) zhashx_lookup (self->sessions, key);
}

static void
s_why (s_session_t *session, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
//  The first reason a session ends is the one logged.
static void
s_why (s_session_t *session, const char *format, ...)
{
    if (*session->why)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (session->why, sizeof session->why, format, args);
    va_end (args);
}

static void
s_browser_writable (s_session_t *session)
{
    if (session->wsi) {
        lws_callback_on_writable (session->wsi);
        zv_ws_kick (session->self->ws);
    }
}

//  Pause or resume reading from the browser.  Outside a callback lws must
//  apply it at once (PROCESS_NOW) and be serviced for what it cached.
static void
s_browser_reading (s_session_t *session, bool on)
{
    if (!session->wsi || session->browser_paused == !on)
        return;
    session->browser_paused = !on;
    if (session->self->callback_depth)
        lws_rx_flow_control (session->wsi, on ? 1 : 0);
    else {
        lws_rx_flow_control (session->wsi, (on ? LWS_RXFLOW_REASON_APPLIES_ENABLE : LWS_RXFLOW_REASON_APPLIES_DISABLE)
                                           | LWS_RXFLOW_REASON_USER_BOOL | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
        zv_ws_kick (session->self->ws);
    }
}

//  Close the WebSocket with code and reason once what the compute host
//  sent is delivered.
static void
s_session_close (s_session_t *session, int code, const char *reason)
{
    if (session->close_status)
        return;
    session->close_status = code;
    snprintf (session->close_reason, sizeof session->close_reason, "%s", reason);
    if (session->state != S_RELAYING)
        session->state = S_CLOSING;
    s_browser_writable (session);
}

static void
s_relay_close (s_session_t *session)
{
    zv_ws_fd_remove (&session->handle);
    if (session->fd >= 0)
        close (session->fd);
    session->fd = -1;
    session->fd_events = 0;
    if (session->addresses)
        freeaddrinfo (session->addresses);
    session->addresses = session->next_address = NULL;
}

static void s_relay_write (s_session_t *session);

//  The WebSocket is gone (lws's CLOSED, or the proxy stopping).
static void
s_session_end (s_session_t *session)
{
    self_t *self = session->self;
    s_why (session, "the browser closed the connection");
    //  The browser's last bytes (keystrokes before it left) still go, as
    //  far as the guest's socket takes them now.
    if (session->state == S_RELAYING)
        s_relay_write (session);
    if (session->started)
        zv_info (self->name, session->rq, "session %" PRIu64 " ended: %s console of %s for %s, %" PRIu64
                 " bytes to the browser, %" PRIu64 " bytes to the guest, %.1f s (%s)", session->id,
                 s_kinds [session->kind].name, session->uuid, session->peer, session->bytes_down,
                 session->bytes_up, (zv_mono_ms () - session->start_ms) / 1000.0, session->why);
    s_relay_close (session);
    s_buf_free (&session->down);
    s_buf_free (&session->up);
    char key [24];
    snprintf (key, sizeof key, "%" PRIu64, session->id);
    zhashx_delete (self->sessions, key);
    free (session);
}

//  ---------------------------------------------------------------------
//  The compute host's side

static void
s_relay_update (s_session_t *session)
{
    if (!session->handle)
        return;
    uint32_t events = 0;
    if (session->state == S_CONNECTING)
        events = EPOLLOUT;
    else {
        if (s_buf_len (&session->down) < session->self->buffer_limit)
            events |= EPOLLIN;
        if (s_buf_len (&session->up))
            events |= EPOLLOUT;
    }
    if (events != session->fd_events && zv_ws_fd_set (session->handle, events) == 0)
        session->fd_events = events;
}

//  The compute host's side is finished: close the browser's once what it
//  sent is delivered.
static void
s_relay_done (s_session_t *session, int code, const char *reason, const char *why)
{
    s_why (session, "%s", why);
    s_relay_close (session);
    s_session_close (session, code, reason);
}

static void
s_relay_write (s_session_t *session)
{
    while (session->fd >= 0 && s_buf_len (&session->up)) {
        ssize_t sent = send (session->fd, session->up.data + session->up.head, s_buf_len (&session->up),
                             MSG_NOSIGNAL);
        if (sent > 0) {
            s_buf_consume (&session->up, (size_t) sent);
            session->bytes_up += (uint64_t) sent;
        }
        else
        if (sent < 0 && errno == EINTR)
            continue;
        else {
            if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                char why [160];
                snprintf (why, sizeof why, "writing to the guest's console: %s", strerror (errno));
                s_relay_done (session, S_CLOSE_ERROR, "Console connection lost", why);
            }
            break;
        }
    }
    if (session->state == S_RELAYING && s_buf_len (&session->up) < session->self->buffer_limit)
        s_browser_reading (session, true);
}

static void
s_relay_read (s_session_t *session)
{
    size_t room = s_buf_room (&session->down, session->self->buffer_limit, S_BUF_FIRST);
    if (!room)
        return;
    ssize_t got = recv (session->fd, session->down.data + session->down.tail, room, 0);
    if (got > 0) {
        session->down.tail += (size_t) got;
        s_browser_writable (session);
    }
    else
    if (got == 0)
        s_relay_done (session, S_CLOSE_NORMAL, "Console connection closed", "the guest's console closed");
    else
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        char why [160];
        snprintf (why, sizeof why, "reading from the guest's console: %s", strerror (errno));
        s_relay_done (session, S_CLOSE_ERROR, "Console connection lost", why);
    }
}

static void s_relay_connect (s_session_t *session);

static void
s_relay_connected (s_session_t *session)
{
    session->state = S_RELAYING;
    if (session->addresses)
        freeaddrinfo (session->addresses);
    session->addresses = session->next_address = NULL;
    zv_debug (session->self->name, session->rq, "session %" PRIu64 ": connected to %s:%d", session->id,
              session->host, session->port);
    //  What the browser sent meanwhile (nothing, usually) goes now.
    s_relay_write (session);
    s_browser_reading (session, true);
    s_relay_update (session);
}

static void
s_relay_failed (s_session_t *session, const char *error)
{
    //  This address failed: drop its socket and try the next one.
    zv_ws_fd_remove (&session->handle);
    if (session->fd >= 0)
        close (session->fd);
    session->fd = -1;
    session->fd_events = 0;
    if (session->next_address) {
        s_relay_connect (session);
        return;
    }
    zv_warning (session->self->name, session->rq, "session %" PRIu64 ": cannot connect to the %s console of %s "
                "at %s:%d: %s", session->id, s_kinds [session->kind].name, session->uuid, session->host,
                session->port, error);
    char why [400];
    snprintf (why, sizeof why, "cannot connect to %s:%d: %s", session->host, session->port, error);
    s_relay_done (session, S_CLOSE_ERROR, "Cannot connect to the guest's console", why);
}

static void
s_relay_ready (void *arg, uint32_t events)
{
    s_session_t *session = (s_session_t *) arg;
    if (session->state == S_CONNECTING) {
        int error = 0;
        socklen_t len = sizeof error;
        if (getsockopt (session->fd, SOL_SOCKET, SO_ERROR, &error, &len))
            error = errno;
        if (error)
            s_relay_failed (session, strerror (error));
        else
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            s_relay_connected (session);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        s_relay_read (session);
    if (session->fd >= 0 && (events & (EPOLLERR | EPOLLHUP)) && !(session->fd_events & EPOLLIN))
        //  Hung up while we were not reading (the browser's buffer full):
        //  epoll reports it whatever the mask, so it must end here.
        s_relay_done (session, S_CLOSE_NORMAL, "Console connection closed", "the guest's console hung up");
    if (session->fd >= 0 && (events & EPOLLOUT))
        s_relay_write (session);
    s_relay_update (session);
}

//  Connect to the next address of the compute host, without waiting.
static void
s_relay_connect (s_session_t *session)
{
    struct addrinfo *address = session->next_address;
    session->next_address = address->ai_next;
    session->fd = socket (address->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (session->fd < 0) {
        s_relay_failed (session, strerror (errno));
        return;
    }
    int on = 1;
    //  Keystrokes and small screen updates must not wait for Nagle.
    setsockopt (session->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt (session->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    session->deadline_ms = zv_mono_ms () + S_CONNECT_TIMEOUT_MS;
    if (connect (session->fd, address->ai_addr, address->ai_addrlen) && errno != EINPROGRESS) {
        s_relay_failed (session, strerror (errno));
        return;
    }
    session->handle = zv_ws_fd_add (session->self->ws, session->fd, EPOLLOUT, s_relay_ready, session);
    if (!session->handle) {
        s_relay_failed (session, strerror (errno));
        return;
    }
    session->fd_events = EPOLLOUT;
}

//  A resolver thread: a compute host given by name must not stop the loop
//  while its name is looked up.
typedef struct {
    uint64_t session;
    char host [256];
    char port [8];
    int rc;
    struct addrinfo *result;
    int fd;                         //  the thread's own copy of the loop's socket
} s_lookup_t;

static void *
s_lookup_run (void *arg)
{
    s_lookup_t *lookup = (s_lookup_t *) arg;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    lookup->rc = getaddrinfo (lookup->host, lookup->port, &hints, &lookup->result);
    int fd = lookup->fd;
    //  Once sent, the lookup belongs to the loop; if the actor is gone, to us.
    if (send (fd, &lookup, sizeof lookup, MSG_NOSIGNAL) != (ssize_t) sizeof lookup) {
        if (lookup->result)
            freeaddrinfo (lookup->result);
        free (lookup);
    }
    close (fd);
    return NULL;
}

static void
s_lookup_done (void *arg, uint32_t events)
{
    (void) events;
    self_t *self = (self_t *) arg;
    s_lookup_t *lookup;
    while (recv (self->lookup_fds [0], &lookup, sizeof lookup, MSG_DONTWAIT) == (ssize_t) sizeof lookup) {
        s_session_t *session = s_session_find (self, lookup->session);
        if (session && session->state == S_CONNECTING && session->fd < 0) {
            if (lookup->rc)
                s_relay_failed (session, gai_strerror (lookup->rc));
            else {
                session->addresses = session->next_address = lookup->result;
                lookup->result = NULL;
                s_relay_connect (session);
            }
            if (session->fd >= 0)
                s_relay_update (session);
        }
        if (lookup->result)
            freeaddrinfo (lookup->result);
        free (lookup);
    }
}

static void
s_relay_start (s_session_t *session)
{
    self_t *self = session->self;
    char port [8];
    snprintf (port, sizeof port, "%d", session->port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *result = NULL;
    session->deadline_ms = zv_mono_ms () + S_CONNECT_TIMEOUT_MS;
    if (getaddrinfo (session->host, port, &hints, &result) == 0) {
        session->addresses = session->next_address = result;
        s_relay_connect (session);
        return;
    }
    s_lookup_t *lookup = (s_lookup_t *) zmalloc (sizeof (s_lookup_t));
    lookup->session = session->id;
    snprintf (lookup->host, sizeof lookup->host, "%s", session->host);
    snprintf (lookup->port, sizeof lookup->port, "%s", port);
    lookup->fd = fcntl (self->lookup_fds [1], F_DUPFD_CLOEXEC, 0);
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    int rc = lookup->fd < 0 ? errno : pthread_create (&thread, &attr, s_lookup_run, lookup);
    pthread_attr_destroy (&attr);
    if (rc) {
        if (lookup->fd >= 0)
            close (lookup->fd);
        free (lookup);
        s_relay_failed (session, strerror (rc));
    }
}

//  ---------------------------------------------------------------------
//  Authorization

static void
s_authorized (void *actor, void *ctx, zv_msg_t *reply)
{
    self_t *self = (self_t *) actor;
    s_session_t *session = s_session_find (self, (uint64_t) (uintptr_t) ctx);
    if (!session || session->state != S_AUTHORIZING)
        return;                     //  the browser left meanwhile
    zv_status_t status = zv_msg_status (reply);
    if (status != ZV_OK) {
        //  The conductor's refusal is the browser's answer; an absent
        //  conductor is our failure, not the browser's.
        bool ours = status == ZV_ETIMEOUT || status == ZV_EUNAVAILABLE;
        zv_warning (self->name, session->rq, "session %" PRIu64 " refused: token %s... from %s: %s (%s)",
                    session->id, session->token8, session->peer, zv_msg_error_text (reply), zv_status_name (status));
        s_session_close (session, ours ? S_CLOSE_ERROR : S_CLOSE_POLICY,
                         ours ? "Console authorization is unavailable, try again later" : zv_msg_error_text (reply));
        return;
    }
    const char *kind = zv_msg_get_str (reply, "kind");
    const char *uuid = zv_msg_get_str (reply, "instance_uuid");
    const char *host = zv_msg_get_str (reply, "host");
    int64_t port = zv_msg_get_int (reply, "port", 0);
    if (!kind || !streq (kind, s_kinds [session->kind].name)) {
        zv_warning (self->name, session->rq, "session %" PRIu64 " refused: token %s... from %s is for a %s console, "
                    "not %s", session->id, session->token8, session->peer, kind ? kind : "(no)",
                    s_kinds [session->kind].path);
        char reason [124];
        snprintf (reason, sizeof reason, "Console token is for a %s console, not %s", kind ? kind : "different",
                  s_kinds [session->kind].name);
        s_session_close (session, S_CLOSE_POLICY, reason);
        return;
    }
    if (!uuid || !host || !*host || strlen (host) >= sizeof session->host || port < 1 || port > 65535) {
        zv_warning (self->name, session->rq, "session %" PRIu64 ": the conductor's authorization has no usable "
                    "console address", session->id);
        s_session_close (session, S_CLOSE_ERROR, "The console has no address");
        return;
    }
    //  The browser is not read while authorizing, so a browser that left
    //  meanwhile is seen only now: no compute host is contacted for it.
    char byte;
    int fd = lws_get_socket_fd (session->wsi);
    if (fd >= 0 && recv (fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
        zv_info (self->name, session->rq, "session %" PRIu64 ": %s left before its console was reached",
                 session->id, session->peer);
        s_session_close (session, S_CLOSE_GOING_AWAY, "Closed");
        return;
    }
    snprintf (session->uuid, sizeof session->uuid, "%s", uuid);
    snprintf (session->host, sizeof session->host, "%s", host);
    session->port = (int) port;
    session->state = S_CONNECTING;
    session->started = true;
    session->start_ms = zv_mono_ms ();
    zv_info (self->name, session->rq, "session %" PRIu64 " started: %s console of %s for %s (token %s...), "
             "guest at %s:%d", session->id, kind, uuid, session->peer, session->token8, host, session->port);
    s_relay_start (session);
}

//  ---------------------------------------------------------------------
//  The browser's side (lws callbacks)

//  host[:port] of an Origin or a Host without the scheme's default port;
//  false when it is not http(s)://host...
static bool
s_origin_host (const char *origin, char *host, size_t size, bool *https)
{
    const char *rest;
    if (strncasecmp (origin, "http://", 7) == 0) {
        rest = origin + 7;
        *https = false;
    }
    else
    if (strncasecmp (origin, "https://", 8) == 0) {
        rest = origin + 8;
        *https = true;
    }
    else
        return false;
    size_t len = strcspn (rest, "/?#");
    if (len == 0 || len >= size)
        return false;
    memcpy (host, rest, len);
    host [len] = 0;
    return true;
}

static void
s_strip_default_port (char *host, bool https)
{
    const char *port = https ? ":443" : ":80";
    size_t len = strlen (host), plen = strlen (port);
    if (len > plen && streq (host + len - plen, port))
        host [len - plen] = 0;
}

//  Does host[:port] have a port?  ("[::1]" has none, "[::1]:80" has.)
static bool
s_has_port (const char *host)
{
    const char *bracket = strrchr (host, ']');
    return strchr (bracket ? bracket : host, ':') != NULL;
}

//  Is the Origin allowed: its host[:port] is the request's Host, or listed
//  in allowed_origins (an entry without a port allows any port, as Nova's
//  allowed_origins are host names).
static bool
s_origin_allowed (self_t *self, const char *origin, const char *host_header, char *why, size_t whylen)
{
    char host [256], own [256];
    bool https;
    if (!s_origin_host (origin, host, sizeof host, &https)) {
        snprintf (why, whylen, "Origin '%.100s' is not an http(s) origin", origin);
        return false;
    }
    s_strip_default_port (host, https);
    snprintf (own, sizeof own, "%s", host_header);
    s_strip_default_port (own, https);
    if (*own && strcasecmp (host, own) == 0)
        return true;
    char hostname [256];
    snprintf (hostname, sizeof hostname, "%s", host);
    if (s_has_port (hostname))
        *strrchr (hostname, ':') = 0;
    char list [sizeof self->cfg.proxy_allowed_origins];
    snprintf (list, sizeof list, "%s", self->cfg.proxy_allowed_origins);
    char *saveptr = NULL;
    for (char *entry = strtok_r (list, ", \t", &saveptr); entry; entry = strtok_r (NULL, ", \t", &saveptr))
        if (strcasecmp (entry, s_has_port (entry) ? host : hostname) == 0)
            return true;
    snprintf (why, whylen, "Origin '%.100s' does not match the proxy's host '%.100s'", origin, host_header);
    return false;
}

static int
s_refuse_upgrade (self_t *self, struct lws *wsi, unsigned int code, const char *why)
{
    char peer [64] = "";
    lws_get_peer_simple (wsi, peer, sizeof peer);
    zv_warning (self->name, NULL, "WebSocket from %s refused: %s", peer, why);
    //  The client gets an HTTP error, and no WebSocket.  The page names no
    //  detail of the request: nothing a client sent is echoed into HTML.
    lws_return_http_status (wsi, code, code == HTTP_STATUS_FORBIDDEN ? "Origin not allowed" : "No console here");
    return -1;
}

//  The upgrade request has arrived, nothing has been answered yet.
static int
s_filter (self_t *self, struct lws *wsi, s_pss_t *pss)
{
    char uri [64];
    int kind = S_KIND_COUNT;
    if (lws_hdr_copy (wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0)
        for (kind = 0; kind < S_KIND_COUNT; kind++)
            if (streq (uri, s_kinds [kind].path))
                break;
    if (kind == S_KIND_COUNT)
        return s_refuse_upgrade (self, wsi, HTTP_STATUS_NOT_FOUND, "No console is served at this path");
    char origin [512] = "", host [256] = "", why [300];
    if (lws_hdr_total_length (wsi, WSI_TOKEN_ORIGIN) > 0) {
        if (lws_hdr_copy (wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0)
            return s_refuse_upgrade (self, wsi, HTTP_STATUS_FORBIDDEN, "Origin too long");
        lws_hdr_copy (wsi, host, sizeof host, WSI_TOKEN_HOST);
        if (!s_origin_allowed (self, origin, host, why, sizeof why))
            return s_refuse_upgrade (self, wsi, HTTP_STATUS_FORBIDDEN, why);
    }
    pss->kind = (s_kind_t) kind;
    char args [S_TOKEN_MAX + 16];
    const char *token = lws_get_urlarg_by_name (wsi, "token=", args, sizeof args);
    //  Missing, empty or oversized: refused once established, as the
    //  conductor would, without asking it.
    if (token && *token && strlen (token) <= S_TOKEN_MAX)
        snprintf (pss->token, sizeof pss->token, "%s", token);
    else
        pss->refused_locally = true;
    explicit_bzero (args, sizeof args);
    return 0;
}

static int
s_established (self_t *self, struct lws *wsi, s_pss_t *pss)
{
    s_session_t *session = (s_session_t *) zmalloc (sizeof (s_session_t));
    session->self = self;
    session->id = ++self->last_id;
    session->wsi = wsi;
    session->kind = pss->kind;
    session->state = S_AUTHORIZING;
    session->fd = -1;
    session->down.pre = LWS_PRE;
    session->start_ms = zv_mono_ms ();
    snprintf (session->token8, sizeof session->token8, "%.8s", pss->token);
    lws_get_peer_simple (wsi, session->peer, sizeof session->peer);
    char key [24];
    snprintf (key, sizeof key, "%" PRIu64, session->id);
    zhashx_insert (self->sessions, key, session);
    pss->session = session;
    //  Nothing from the browser until the token is good and the guest reached.
    lws_rx_flow_control (wsi, 0);
    session->browser_paused = true;

    if (pss->refused_locally) {
        zv_warning (self->name, NULL, "session %" PRIu64 " refused: no usable token from %s", session->id,
                    session->peer);
        s_session_close (session, S_CLOSE_POLICY, "Invalid or expired console token.");
        return 0;
    }
    zv_msg_t *msg = zv_msg_new ("conductor.console_authorize");
    json_t *body = json_pack ("{s:s}", "token", pss->token);
    zv_msg_set_body (msg, &body);
    snprintf (session->rq, sizeof session->rq, "%s", zv_msg_rq (msg));
    explicit_bzero (pss->token, sizeof pss->token);
    zv_debug (self->name, session->rq, "session %" PRIu64 ": %s from %s, token %s...: authorizing", session->id,
              s_kinds [session->kind].path, session->peer, session->token8);
    //  A failed send answers at once (ZV_EUNAVAILABLE), through s_authorized.
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_authorized, (void *) (uintptr_t) session->id,
                  NULL);
    return 0;
}

static int
s_received (s_session_t *session, const void *data, size_t len)
{
    if (session->state == S_CLOSING || session->close_status)
        return 0;                   //  refused or ending: nothing goes on
    if (len == 0)
        return 0;                   //  an empty data frame carries nothing to relay
    s_buf_append (&session->up, data, len);
    if (session->state == S_RELAYING)
        s_relay_write (session);
    if (s_buf_len (&session->up) >= session->self->buffer_limit)
        s_browser_reading (session, false);
    s_relay_update (session);
    return 0;
}

static int
s_writeable (s_session_t *session)
{
    size_t len = s_buf_len (&session->down);
    if (len) {
        if (len > S_FRAME_MAX)
            len = S_FRAME_MAX;
        if (lws_write (session->wsi, session->down.data + session->down.head, len, LWS_WRITE_BINARY) < 0) {
            s_why (session, "writing to the browser failed");
            return -1;
        }
        s_buf_consume (&session->down, len);
        session->bytes_down += len;
        if (s_buf_len (&session->down) || session->close_status)
            lws_callback_on_writable (session->wsi);
        s_relay_update (session);
        return 0;
    }
    if (session->close_status) {
        s_why (session, "%s", session->close_reason);
        lws_close_reason (session->wsi, (enum lws_close_status) session->close_status,
                          (unsigned char *) session->close_reason, strlen (session->close_reason));
        //  Read the browser's answer to the close frame, or lws waits for
        //  it (and the browser for us) until its timeout.
        lws_rx_flow_control (session->wsi, 1);
        return -1;
    }
    return 0;
}

static int
s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct lws_context *context = lws_get_context (wsi);
    self_t *self = context ? (self_t *) lws_context_user (context) : NULL;
    s_pss_t *pss = (s_pss_t *) user;
    if (!self)
        return lws_callback_http_dummy (wsi, reason, user, in, len);
    zv_ws_activity (self->ws);
    self->callback_depth++;
    int rc = 0;
    switch ((int) reason) {
        case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
            zv_ws_http_request (self->ws);
            rc = lws_callback_http_dummy (wsi, reason, user, in, len);
            break;
        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
            rc = s_filter (self, wsi, pss);
            break;
        case LWS_CALLBACK_ESTABLISHED:
            rc = s_established (self, wsi, pss);
            break;
        case LWS_CALLBACK_RECEIVE:
            if (pss && pss->session)
                rc = s_received (pss->session, in, len);
            break;
        case LWS_CALLBACK_SERVER_WRITEABLE:
            if (pss && pss->session)
                rc = s_writeable (pss->session);
            break;
        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
            if (pss && pss->session)
                s_why (pss->session, "the browser closed the connection (%d)",
                       len >= 2 ? (((const unsigned char *) in) [0] << 8) | ((const unsigned char *) in) [1] : 1005);
            break;
        case LWS_CALLBACK_CLOSED:
            if (pss && pss->session) {
                pss->session->wsi = NULL;
                s_session_end (pss->session);
                pss->session = NULL;
            }
            break;
        default:
            rc = lws_callback_http_dummy (wsi, reason, user, in, len);
            break;
    }
    self->callback_depth--;
    return rc;
}

//  Protocol 0 serves the files and every WebSocket: a client that names no
//  subprotocol (noVNC 1.3) gets it by default, one that asks for "binary"
//  gets it by name.
static const struct lws_protocols s_protocols [] = {
    { "binary", s_callback, sizeof (s_pss_t), S_RX_BUFFER, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

//  ---------------------------------------------------------------------
//  The actor

static int
s_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = (self_t *) arg;
    int64_t now = zv_mono_ms ();
    zlistx_t *late = zlistx_new ();
    s_session_t *session = (s_session_t *) zhashx_first (self->sessions);
    while (session) {
        if (session->state == S_CONNECTING && now >= session->deadline_ms)
            zlistx_add_end (late, session);
        s_buf_trim (&session->down);
        s_buf_trim (&session->up);
        session = (s_session_t *) zhashx_next (self->sessions);
    }
    while ((session = (s_session_t *) zlistx_detach (late, NULL))) {
        session->next_address = NULL;   //  the deadline covers every address
        s_relay_failed (session, "connection timed out");
    }
    zlistx_destroy (&late);
    return 0;
}

static void
s_serve (void *actor, zv_msg_t *msg)
{
    self_t *self = (self_t *) actor;
    zv_msg_t *reply = zv_msg_error (msg, ZV_EINVAL, "message type '%s' is not served by the console proxy",
                                    zv_msg_type (msg));
    zv_msg_set_src (reply, self->name);
    zv_msg_send (&reply, zv_link_socket (self->link));
}

//  Two descriptors per session: ask for more than the usual 1024.
static void
s_raise_fd_limit (self_t *self)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) || limit.rlim_cur >= S_FD_WANTED || limit.rlim_cur >= limit.rlim_max)
        return;
    rlim_t was = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max < S_FD_WANTED ? limit.rlim_max : S_FD_WANTED;
    if (setrlimit (RLIMIT_NOFILE, &limit) == 0)
        zv_debug (self->name, NULL, "open files limit raised from %llu to %llu", (unsigned long long) was,
                  (unsigned long long) limit.rlim_cur);
}


static int
s_start (self_t *self)
{
    s_raise_fd_limit (self);
    struct stat web;
    if (stat (self->cfg.proxy_web, &web) || !S_ISDIR (web.st_mode))
        zv_warning (self->name, NULL, "[consoleproxy] web %s is not a directory: no noVNC client is served",
                    self->cfg.proxy_web);
    self->mount.mountpoint = "/";
    self->mount.mountpoint_len = 1;
    self->mount.origin = self->cfg.proxy_web;
    self->mount.def = "vnc_lite.html";
    self->mount.origin_protocol = LWSMPRO_FILE;
    self->mount.extra_mimetypes = &s_mime_svg;
    zv_ws_options_t options = {
        .listen = self->cfg.proxy_listen,
        .port = self->cfg.proxy_port,
        .protocols = s_protocols,
        .mounts = &self->mount,
        .user = self,
        .serv_buf_size = S_SERV_BUF,
    };
    char errbuf [512];
    self->ws = zv_ws_new (self->loop, &options, errbuf, sizeof errbuf);
    if (!self->ws) {
        zv_error (self->name, NULL, "[consoleproxy] %s", errbuf);
        return -1;
    }
    if (socketpair (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, self->lookup_fds)
    ||  !(self->lookup_handle = zv_ws_fd_add (self->ws, self->lookup_fds [0], EPOLLIN, s_lookup_done, self))) {
        zv_error (self->name, NULL, "cannot make the resolver's socket: %s", strerror (errno));
        return -1;
    }
    return 0;
}

//  SIGTERM: every browser is told (1001) before the lws context goes.
static void
s_stop_sessions (self_t *self)
{
    s_session_t *session = (s_session_t *) zhashx_first (self->sessions);
    while (session) {
        s_why (session, "the console proxy stopped");
        s_relay_close (session);
        s_buf_free (&session->down);
        session->state = S_CLOSING;
        session->close_status = S_CLOSE_GOING_AWAY;
        snprintf (session->close_reason, sizeof session->close_reason, "The console proxy is stopping");
        if (session->wsi)
            lws_callback_on_writable (session->wsi);
        session = (s_session_t *) zhashx_next (self->sessions);
    }
    zv_ws_service (self->ws);
}

void
zv_consoleproxy_actor (zsock_t *pipe, void *args)
{
    const zv_actor_args_t *actor_args = (const zv_actor_args_t *) args;
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->cfg = actor_args->config;
    snprintf (self->name, sizeof self->name, "consoleproxy.%s", self->cfg.host);
    self->sessions = zhashx_new ();
    self->buffer_limit = (size_t) self->cfg.proxy_buffer_kb * 1024;
    self->lookup_fds [0] = self->lookup_fds [1] = -1;
    self->loop = zloop_new ();
    zloop_set_nonstop (self->loop, true);
    if (s_start (self) == 0)
        self->link = zv_link_new ("consoleproxy", actor_args, self->loop, self, s_serve, NULL, NULL);
    if (!self->link)
        zv_actor_start_failed (pipe);
    else {
        zloop_reader (self->loop, pipe, zv_actor_pipe_readable, self);
        self->timer = zloop_timer (self->loop, 1000, 0, s_timer, self);
        zv_link_heartbeat (self->link);
        zv_info (self->name, NULL, "serving on http://%s:%d/ (noVNC from %s; WebSocket /websockify and /serial; "
                 "%d KiB per direction and session)", *self->cfg.proxy_listen ? self->cfg.proxy_listen : "0.0.0.0",
                 zv_ws_port (self->ws), self->cfg.proxy_web, self->cfg.proxy_buffer_kb);
        zsock_signal (pipe, 0);
        zloop_start (self->loop);
        s_stop_sessions (self);
    }
    zv_ws_fd_remove (&self->lookup_handle);
    //  Each WebSocket closes here; lws's CLOSED ends its session.
    zv_ws_destroy (&self->ws);
    s_session_t *session;
    while ((session = (s_session_t *) zhashx_first (self->sessions))) {
        session->wsi = NULL;
        s_session_end (session);
    }
    //  A resolver still running finds its socket closed and frees its lookup.
    for (int index = 0; index < 2; index++)
        if (self->lookup_fds [index] >= 0)
            close (self->lookup_fds [index]);
    zv_link_destroy (&self->link);
    zloop_destroy (&self->loop);
    zhashx_destroy (&self->sessions);
    free (self);
}
