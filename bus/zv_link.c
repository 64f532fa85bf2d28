/*  zv_link.c: the DEALER to the conductor, its reader, heartbeat timer and
    rpc expiry timer, all registered on the actor's own zloop.               */

#include "bus/zv_link.h"

struct _zv_link_t {
    zsock_t *dealer;
    zv_rpc_t *rpc;
    zloop_t *loop;
    int heartbeat_timer;
    int expire_timer;
    char binary [64];
    char host [256];
    char identity [320];
    char epoch [64];
    char endpoint [256];
    int report_interval_s;
    int missed;                     //  heartbeats unanswered in a row
    int64_t answered_ms;            //  mono time of the last answered heartbeat
    bool registered;                //  reader and timers are on the loop
    void *actor;
    zv_link_serve_fn *serve;
    zv_link_epoch_fn *on_epoch;
    zv_link_node_fn *node_fn;
};

static int
s_readable (zloop_t *loop, zsock_t *socket, void *arg)
{
    (void) loop;
    zv_link_t *self = (zv_link_t *) arg;
    //  Drain what is there, a bounded number at a time so timers still run.
    for (int count = 0; count < 1000 && (zsock_events (socket) & ZMQ_POLLIN); count++) {
        zv_msg_t *msg = zv_msg_recv (socket);
        if (!msg)
            break;
        if (zv_msg_is_reply (msg)) {
            if (!zv_rpc_dispatch (self->rpc, msg, self->actor))
                zv_debug (self->identity, zv_msg_rq (msg), "late reply to %s dropped", zv_msg_type (msg));
        }
        else
        if (zv_msg_status (msg) != ZV_OK)
            zv_warning (self->identity, zv_msg_rq (msg), "bad message from conductor: %s",
                        zv_msg_error_text (msg));
        else
            self->serve (self->actor, msg);
        zv_msg_destroy (&msg);
    }
    return 0;
}

//  After this many unanswered heartbeats the link assumes its connection
//  is dead (half-open, or its identity taken over by another peer) and
//  builds a new one: ZeroMQ alone would wait forever.
#define S_MAX_MISSED 3
#define S_MIN_SILENCE_MS 10000

static int s_readable (zloop_t *loop, zsock_t *socket, void *arg);

static zsock_t *
s_dealer_new (zv_link_t *self)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_identity (dealer, self->identity);
    zsock_set_linger (dealer, 0);
    zsock_set_sndhwm (dealer, 100000);
    zsock_set_rcvhwm (dealer, 100000);
    zsock_set_reconnect_ivl (dealer, 100);
    zsock_set_reconnect_ivl_max (dealer, 2000);
    if (zsock_connect (dealer, "%s", self->endpoint) != 0) {
        zv_error (self->identity, NULL, "cannot connect to conductor at %s", self->endpoint);
        zsock_destroy (&dealer);
    }
    return dealer;
}

static void
s_reconnect (zv_link_t *self)
{
    zsock_t *dealer = s_dealer_new (self);
    if (!dealer)
        return;
    zv_warning (self->identity, NULL, "no answer to %d heartbeats: reconnecting to %s",
                self->missed, self->endpoint);
    zloop_reader_end (self->loop, self->dealer);
    zsock_destroy (&self->dealer);
    self->dealer = dealer;
    zloop_reader (self->loop, self->dealer, s_readable, self);
    self->missed = 0;
    self->answered_ms = zv_mono_ms ();      //  give the new connection its own grace
}

static void
s_heartbeat_done (void *actor, void *ctx, zv_msg_t *reply)
{
    (void) actor;
    zv_link_t *self = (zv_link_t *) ctx;
    if (zv_msg_status (reply) != ZV_OK) {
        self->missed++;
        zv_debug (self->identity, NULL, "heartbeat: %s", zv_msg_error_text (reply));
        return;
    }
    self->missed = 0;
    self->answered_ms = zv_mono_ms ();
    const char *epoch = zv_msg_get_str (reply, "epoch");
    if (epoch && strcmp (epoch, self->epoch) != 0) {
        bool first = !*self->epoch;
        snprintf (self->epoch, sizeof self->epoch, "%s", epoch);
        zv_info (self->identity, NULL, "conductor %s (epoch %s)", first ? "reached" : "restarted", epoch);
        if (self->on_epoch)
            self->on_epoch (self->actor, epoch);
    }
}

void
zv_link_heartbeat (zv_link_t *self)
{
    zv_msg_t *msg = zv_msg_new ("conductor.service_heartbeat");
    zv_msg_set_src (msg, self->identity);
    json_t *body = json_pack ("{s:s, s:s, s:i}", "binary", self->binary, "host", self->host,
                              "report_interval", self->report_interval_s);
    if (self->node_fn) {
        //  Fields of the actor's own: {node: facts} or {degraded: why}.
        json_t *fields = self->node_fn (self->actor);
        if (fields)
            json_object_update (body, fields);
        json_decref (fields);
    }
    zv_msg_set_body (msg, &body);
    zv_rpc_call (self->rpc, self->dealer, &msg, self->report_interval_s * 1000,
                 s_heartbeat_done, self, NULL, self->actor);
}

static int
s_heartbeat_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_link_t *self = (zv_link_t *) arg;
    //  Here, not in a continuation: the reader may be iterating the socket.
    //  Three unanswered heartbeats, and at least S_MIN_SILENCE_MS without an
    //  answer: a conductor that is merely busy is not a dead connection.
    if (self->missed >= S_MAX_MISSED && zv_mono_ms () - self->answered_ms >= S_MIN_SILENCE_MS)
        s_reconnect (self);
    zv_link_heartbeat (self);
    return 0;
}

static int
s_expire_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_link_t *self = (zv_link_t *) arg;
    zv_rpc_expire (self->rpc, self->actor);
    return 0;
}

zv_link_t *
zv_link_new (const char *binary, const zv_actor_args_t *args, zloop_t *loop,
             void *actor, zv_link_serve_fn *serve,
             zv_link_epoch_fn *on_epoch, zv_link_node_fn *node_fn)
{
    zv_link_t *self = (zv_link_t *) zmalloc (sizeof (zv_link_t));
    snprintf (self->binary, sizeof self->binary, "%s", binary);
    snprintf (self->host, sizeof self->host, "%s", args->config.host);
    snprintf (self->identity, sizeof self->identity, "%s.%s", binary, args->config.host);
    self->report_interval_s = args->config.report_interval_s;
    self->actor = actor;
    self->serve = serve;
    self->on_epoch = on_epoch;
    self->node_fn = node_fn;
    self->loop = loop;
    self->rpc = zv_rpc_new ();
    self->answered_ms = zv_mono_ms ();
    snprintf (self->endpoint, sizeof self->endpoint, "%s", args->conductor_endpoint);
    self->dealer = s_dealer_new (self);
    if (!self->dealer) {
        zv_link_destroy (&self);
        return NULL;
    }
    zloop_reader (loop, self->dealer, s_readable, self);
    self->heartbeat_timer = zloop_timer (loop, (size_t) self->report_interval_s * 1000, 0,
                                         s_heartbeat_timer, self);
    //  Deadlines are seconds long: checking twice a second is precise enough
    //  and keeps an idle fleet of computes from waking ten times a second.
    self->expire_timer = zloop_timer (loop, 500, 0, s_expire_timer, self);
    self->registered = true;
    return self;
}

void
zv_link_destroy (zv_link_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_link_t *self = *self_p;
    if (self->registered) {
        zloop_reader_end (self->loop, self->dealer);
        zloop_timer_end (self->loop, self->heartbeat_timer);
        zloop_timer_end (self->loop, self->expire_timer);
    }
    zv_rpc_destroy (&self->rpc);
    zsock_destroy (&self->dealer);
    free (self);
    *self_p = NULL;
}

zsock_t *zv_link_socket (zv_link_t *self) { return self->dealer; }
zv_rpc_t *zv_link_rpc (zv_link_t *self) { return self->rpc; }
const char *zv_link_identity (zv_link_t *self) { return self->identity; }

int
zv_link_call (zv_link_t *self, zv_msg_t **request_p, int timeout_ms, zv_rpc_fn *fn, void *ctx,
              zv_rpc_free_fn *free_ctx)
{
    zv_msg_set_src (*request_p, self->identity);
    return zv_rpc_call (self->rpc, self->dealer, request_p, timeout_ms, fn, ctx, free_ctx, self->actor);
}
