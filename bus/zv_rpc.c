/*  zv_rpc.c: pending calls in a hash by message id, plus a deadline-ordered
    list so expiry looks only at the calls that are due.  Deadlines grow with
    send time for a fixed timeout, so the list stays sorted when every call of
    an actor uses the same timeout; a call with another timeout is inserted in
    place (rare, and the list is short where it happens).                     */

#include "bus/zv_rpc.h"

typedef struct {
    char id [72];
    char type [132];
    char rq [72];
    int64_t deadline;
    zv_rpc_fn *fn;
    void *ctx;
    zv_rpc_free_fn *free_ctx;
    void *handle;           //  our place in by_deadline
} s_call_t;

struct _zv_rpc_t {
    zhashx_t *calls;        //  id -> s_call_t (borrowed from by_deadline)
    zlistx_t *by_deadline;  //  s_call_t (owned), earliest deadline first
};

static void
s_call_destroy (void **item)
{
    s_call_t *call = (s_call_t *) *item;
    if (call->free_ctx && call->ctx)
        call->free_ctx (call->ctx);
    free (call);
    *item = NULL;
}

static int
s_call_compare (const void *item1, const void *item2)
{
    int64_t d1 = ((const s_call_t *) item1)->deadline;
    int64_t d2 = ((const s_call_t *) item2)->deadline;
    return d1 < d2 ? -1 : d1 > d2 ? 1 : 0;
}

zv_rpc_t *
zv_rpc_new (void)
{
    zv_rpc_t *self = (zv_rpc_t *) zmalloc (sizeof (zv_rpc_t));
    self->calls = zhashx_new ();
    self->by_deadline = zlistx_new ();
    zlistx_set_destructor (self->by_deadline, s_call_destroy);
    zlistx_set_comparator (self->by_deadline, s_call_compare);
    return self;
}

void
zv_rpc_destroy (zv_rpc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_rpc_t *self = *self_p;
    zhashx_destroy (&self->calls);
    zlistx_destroy (&self->by_deadline);
    free (self);
    *self_p = NULL;
}

static void
s_fail (s_call_t *call, zv_status_t status, const char *why, void *actor)
{
    zv_msg_t *fake = zv_msg_new (call->type);
    zv_msg_set_id (fake, call->id);         //  so the reply's "re" names the call
    zv_msg_set_rq (fake, call->rq);
    zv_msg_t *reply = zv_msg_error (fake, status, "%s", why);
    call->fn (actor, call->ctx, reply);
    zv_msg_destroy (&reply);
    zv_msg_destroy (&fake);
}

int
zv_rpc_call_send (zv_rpc_t *self, zv_rpc_send_fn *send_fn, void *send_arg, zv_msg_t **request_p,
                  int timeout_ms, zv_rpc_fn *fn, void *ctx, zv_rpc_free_fn *free_ctx,
                  void *actor)
{
    zv_msg_t *request = *request_p;
    s_call_t *call = (s_call_t *) zmalloc (sizeof (s_call_t));
    snprintf (call->id, sizeof call->id, "%s", zv_msg_id (request));
    snprintf (call->type, sizeof call->type, "%s", zv_msg_type (request));
    snprintf (call->rq, sizeof call->rq, "%s", zv_msg_rq (request) ? zv_msg_rq (request) : "");
    call->deadline = zv_mono_ms () + timeout_ms;
    call->fn = fn;
    call->ctx = ctx;
    call->free_ctx = free_ctx;
    if (send_fn (send_arg, request_p) != 0) {
        char why [256];
        snprintf (why, sizeof why, "cannot send %s: %s", call->type, zmq_strerror (zmq_errno ()));
        s_fail (call, ZV_EUNAVAILABLE, why, actor);
        free (call);
        return -1;
    }
    //  Searching from the end finds the place at once when deadlines grow.
    call->handle = zlistx_insert (self->by_deadline, call, false);
    zhashx_insert (self->calls, call->id, call);
    return 0;
}

static int
s_send_socket (void *arg, zv_msg_t **msg_p)
{
    return zv_msg_send (msg_p, (zsock_t *) arg);
}

int
zv_rpc_call (zv_rpc_t *self, zsock_t *socket, zv_msg_t **request_p,
             int timeout_ms, zv_rpc_fn *fn, void *ctx, zv_rpc_free_fn *free_ctx,
             void *actor)
{
    return zv_rpc_call_send (self, s_send_socket, socket, request_p, timeout_ms, fn, ctx,
                             free_ctx, actor);
}

//  Take call out of both indexes without freeing it; caller frees.
static void
s_detach (zv_rpc_t *self, s_call_t *call)
{
    zhashx_delete (self->calls, call->id);
    zlistx_detach (self->by_deadline, call->handle);
}

bool
zv_rpc_dispatch (zv_rpc_t *self, zv_msg_t *reply, void *actor)
{
    const char *re = zv_msg_re (reply);
    if (!re)
        return false;
    s_call_t *call = (s_call_t *) zhashx_lookup (self->calls, re);
    if (!call)
        return false;
    //  Detach before running: the continuation may issue new calls.
    s_detach (self, call);
    call->fn (actor, call->ctx, reply);
    free (call);
    return true;
}

void
zv_rpc_expire (zv_rpc_t *self, void *actor)
{
    int64_t now = zv_mono_ms ();
    s_call_t *call = (s_call_t *) zlistx_first (self->by_deadline);
    while (call && call->deadline <= now) {
        s_detach (self, call);
        char why [256];
        snprintf (why, sizeof why, "no reply to %s within the deadline", call->type);
        s_fail (call, ZV_ETIMEOUT, why, actor);
        free (call);
        call = (s_call_t *) zlistx_first (self->by_deadline);
    }
}

size_t
zv_rpc_pending (zv_rpc_t *self)
{
    return zhashx_size (self->calls);
}
