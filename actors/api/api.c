/*  api.c: the api actor, zova's front door.

    Binds a ROUTER for clients (the zova CLI today; an OpenStack-compatible
    HTTP front end later feeds the same path) and holds a link to the
    conductor.  Each client request is decoded and validated against the
    catalogue (zv_msg_decode), stamped with the caller's context (project,
    user, roles: the only place a context is made), and forwarded as the
    catalogue row's conductor type; the conductor's answer
    is relayed to the client under the client's own message id, its body
    moved across as the bytes that arrived (zv_msg_move_body), never
    decoded into a tree and encoded again: the envelope keys differ, the
    body does not.  The api
    keeps no state but the calls in flight: any number of apis can serve
    one conductor.  A request the conductor does not answer within
    request_timeout gets a timeout error, never silence.                   */

#include "actors/zv_actors.h"
#include "bus/zv_link.h"

typedef struct {
    zv_config_t cfg;
    char name [300];
    zloop_t *loop;
    zsock_t *router;
    zv_link_t *link;
    zv_context_t context;           //  who every caller is, until the api authenticates
} self_t;

//  A client request waiting for the conductor.
typedef struct {
    zframe_t *routing_id;
    char id [72];
    char type [132];
} s_pending_t;

static void
s_pending_free (void *ctx)
{
    s_pending_t *pending = (s_pending_t *) ctx;
    zframe_destroy (&pending->routing_id);
    free (pending);
}

static void
s_relay (void *actor, void *ctx, zv_msg_t *answer)
{
    self_t *self = (self_t *) actor;
    s_pending_t *pending = (s_pending_t *) ctx;
    //  Rebuild the client's request identity to answer it.
    zv_msg_t *request = zv_msg_new (pending->type);
    zv_msg_set_id (request, pending->id);
    zv_msg_set_rq (request, zv_msg_rq (answer));
    zv_msg_set_routing_id (request, &pending->routing_id);
    zv_msg_t *reply;
    if (zv_msg_status (answer) == ZV_OK) {
        reply = zv_msg_reply (request);
        //  The body passes as the bytes that came (checked on arrival): a
        //  listing of thousands of servers is never built as a tree here.
        zv_msg_move_body (reply, answer);
        size_t size = 0;
        const void *payload = zv_msg_payload (answer, &size);
        if (payload)
            zv_msg_set_payload (reply, payload, size);
    }
    else
        reply = zv_msg_error (request, zv_msg_status (answer), "%s", zv_msg_error_text (answer));
    zv_msg_set_src (reply, self->name);
    zmsg_t *wire = zv_msg_encode (reply);
    zv_msg_destroy (&reply);
    if (!wire) {
        //  Never leave a client waiting: say why there is no answer.
        reply = zv_msg_error (request, ZV_ETOOBIG, "the answer to %s cannot be encoded "
                              "(over the message size limit)", pending->type);
        wire = zv_msg_encode (reply);
        zv_msg_destroy (&reply);
    }
    if (wire && zmsg_send (&wire, zsock_resolve (self->router)) != 0)
        zmsg_destroy (&wire);
    zv_msg_destroy (&request);
    s_pending_free (pending);
}

static void
s_answer (self_t *self, zv_msg_t *request, zv_status_t status, const char *text, json_t *body)
{
    zv_msg_t *reply;
    if (status == ZV_OK) {
        reply = zv_msg_reply (request);
        zv_msg_set_body (reply, &body);
    }
    else {
        zv_warning (self->name, zv_msg_rq (request), "refused %s: %s", zv_msg_type (request), text);
        reply = zv_msg_error (request, status, "%s", text);
    }
    zv_msg_set_src (reply, self->name);
    zv_msg_send (&reply, self->router);
}

static void
s_client_request (self_t *self, zv_msg_t *msg)
{
    if (zv_msg_is_reply (msg))
        return;                     //  clients do not answer us: ignore
    if (zv_msg_status (msg) != ZV_OK) {
        s_answer (self, msg, zv_msg_status (msg), zv_msg_error_text (msg), NULL);
        return;
    }
    const zv_msgdef_t *def = zv_msg_def (msg);
    if (strncmp (zv_msg_type (msg), "api.", 4) != 0 || def->kind != ZV_MSG_REQUEST) {
        char text [300];
        snprintf (text, sizeof text, "message type '%s' is not served by the api", zv_msg_type (msg));
        s_answer (self, msg, ZV_EINVAL, text, NULL);
        return;
    }
    if (streq (zv_msg_type (msg), "api.ping")) {
        s_answer (self, msg, ZV_OK, NULL,
                  json_pack ("{s:s, s:s, s:s}", "service", "zova-api", "version", "0.1.0",
                             "host", self->cfg.host));
        return;
    }
    assert (def->forward);
    zv_msg_t *forward = zv_msg_new (def->forward);
    zv_msg_set_rq (forward, zv_msg_rq (msg));
    //  The request context says who asks; only an api sets one.  Until the
    //  api authenticates, every caller is [api] default_user of
    //  default_project with default_roles.
    zv_msg_set_context (forward, &self->context);
    json_t *body = json_copy (zv_msg_body (msg));
    zv_msg_set_body (forward, &body);
    size_t size = 0;
    const void *payload = zv_msg_payload (msg, &size);
    if (payload)
        zv_msg_set_payload (forward, payload, size);
    s_pending_t *pending = (s_pending_t *) zmalloc (sizeof (s_pending_t));
    pending->routing_id = zframe_dup (zv_msg_routing_id (msg));
    snprintf (pending->id, sizeof pending->id, "%s", zv_msg_id (msg));
    snprintf (pending->type, sizeof pending->type, "%s", zv_msg_type (msg));
    zv_link_call (self->link, &forward, self->cfg.api_request_timeout_s * 1000, s_relay, pending,
                  s_pending_free);
}

static int
s_router_readable (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    self_t *self = (self_t *) arg;
    for (int count = 0; count < 1000 && (zsock_events (router) & ZMQ_POLLIN); count++) {
        zv_msg_t *msg = zv_msg_recv (router);
        if (!msg)
            break;
        s_client_request (self, msg);
        zv_msg_destroy (&msg);
    }
    return 0;
}

static void
s_serve (void *actor, zv_msg_t *msg)
{
    self_t *self = (self_t *) actor;
    zv_warning (self->name, zv_msg_rq (msg), "message type %s is not served by the api", zv_msg_type (msg));
}

void
zv_api_actor (zsock_t *pipe, void *args)
{
    const zv_actor_args_t *actor_args = (const zv_actor_args_t *) args;
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->cfg = actor_args->config;
    snprintf (self->name, sizeof self->name, "api.%s", self->cfg.host);
    snprintf (self->context.project_id, sizeof self->context.project_id, "%s", self->cfg.default_project);
    snprintf (self->context.user_id, sizeof self->context.user_id, "%s", self->cfg.default_user);
    self->context.roles = zv_context_roles_parse (self->cfg.default_roles);
    self->loop = zloop_new ();
    zloop_set_nonstop (self->loop, true);
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_maxmsgsize (self->router, ZV_MSG_MAX_WIRE);
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_linger (self->router, 0);
    bool ok = zsock_bind (self->router, "%s", self->cfg.api_endpoint) >= 0;
    if (!ok)
        zv_error (self->name, NULL, "cannot bind %s: %s", self->cfg.api_endpoint, zmq_strerror (zmq_errno ()));
    if (ok)
        self->link = zv_link_new ("api", actor_args, self->loop, self, s_serve, NULL, NULL);
    if (!ok || !self->link) {
        zv_actor_start_failed (pipe);
    }
    else {
        zloop_reader (self->loop, pipe, zv_actor_pipe_readable, self);
        zloop_reader (self->loop, self->router, s_router_readable, self);
        zv_link_heartbeat (self->link);
        zv_info (self->name, NULL, "serving clients on %s", self->cfg.api_endpoint);
        zsock_signal (pipe, 0);
        zloop_start (self->loop);
    }
    zv_link_destroy (&self->link);
    zloop_destroy (&self->loop);
    zsock_destroy (&self->router);
    free (self);
}
