/*  test_rpc.c: an actor's outstanding calls (zv_rpc).

    Each test plays both sides in one thread over a fresh pair of inproc
    sockets: the caller's DEALER and a peer's ROUTER.  The caller sends with
    zv_rpc_call, the peer reads the request and answers (or stays silent),
    and the caller hands what comes back to zv_rpc_dispatch, as an actor's
    loop does.  Timeouts are short and waited for on the caller's socket
    with a deadline, never with a bare sleep.  The continuation records what
    it saw in a recorder passed as the actor argument.  zv_rpc_call_send is
    driven with a send function that keeps what it is given, or refuses it
    as a ROUTER refuses a peer that is not connected.                        */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/zv_rpc.h"

#define S_TYPE       "api.ping"
#define S_MAX_RUNS   16

typedef struct {
    zv_rpc_t *rpc;
    zsock_t *dealer;                    //  the caller's socket
    zsock_t *router;                    //  the peer's socket
    int runs;                           //  continuations run
    int tags [S_MAX_RUNS];              //  ctx of each run, in order
    zv_status_t status [S_MAX_RUNS];
    char type [S_MAX_RUNS][128];
    char re [S_MAX_RUNS][72];
    char rq [S_MAX_RUNS][72];
    char error [S_MAX_RUNS][256];
    int freed;                          //  contexts freed through free_ctx
    bool call_again;                    //  continuation issues a new call
    zv_msg_t *sent [S_MAX_RUNS];        //  what s_send kept
    int sent_count;
} fixture_t;

static fixture_t *s_current;            //  for free_ctx, which has no actor

//  Continuation: ctx is an int tag (or NULL).
static void
s_on_reply (void *actor, void *ctx, zv_msg_t *reply)
{
    fixture_t *self = (fixture_t *) actor;
    assert_non_null (reply);
    assert_true (self->runs < S_MAX_RUNS);
    int run = self->runs++;
    self->tags [run] = ctx ? *(int *) ctx : -1;
    self->status [run] = zv_msg_status (reply);
    snprintf (self->type [run], sizeof self->type [run], "%s", zv_msg_type (reply));
    snprintf (self->re [run], sizeof self->re [run], "%s", zv_msg_re (reply) ? zv_msg_re (reply) : "");
    snprintf (self->rq [run], sizeof self->rq [run], "%s", zv_msg_rq (reply) ? zv_msg_rq (reply) : "");
    snprintf (self->error [run], sizeof self->error [run], "%s", zv_msg_error_text (reply));
    if (self->call_again) {
        //  A continuation may call again: the table is consistent here.
        self->call_again = false;
        zv_msg_t *next = zv_msg_new (S_TYPE);
        assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &next, 60000,
                                       s_on_reply, NULL, NULL, self), 0);
    }
}

//  The continuation owns ctx once it runs; this one frees it, as real ones do.
static void
s_on_reply_free (void *actor, void *ctx, zv_msg_t *reply)
{
    s_on_reply (actor, ctx, reply);
    free (ctx);
}

static void
s_free_ctx (void *ctx)
{
    s_current->freed++;
    free (ctx);
}

static int *
s_tag (int value)
{
    int *tag = (int *) malloc (sizeof (int));
    assert_non_null (tag);
    *tag = value;
    return tag;
}

//  A send function: keeps the message, or refuses an identity "nobody"
//  with EHOSTUNREACH.  Takes the message either way, as a socket send does.
static int
s_send (void *arg, zv_msg_t **msg_p)
{
    fixture_t *self = (fixture_t *) arg;
    zv_msg_t *msg = *msg_p;
    *msg_p = NULL;
    zframe_t *rid = zv_msg_routing_id (msg);
    if (rid && zframe_streq (rid, "nobody")) {
        zv_msg_destroy (&msg);
        errno = EHOSTUNREACH;
        return -1;
    }
    assert_true (self->sent_count < S_MAX_RUNS);
    self->sent [self->sent_count++] = msg;
    return 0;
}

static int
s_setup (void **state)
{
    static int instance = 0;
    fixture_t *self = (fixture_t *) calloc (1, sizeof *self);
    assert_non_null (self);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://zv-test-rpc-%d", instance++);
    self->router = zsock_new (ZMQ_ROUTER);
    assert_non_null (self->router);
    zsock_set_router_mandatory (self->router, 1);
    assert_int_equal (zsock_bind (self->router, "%s", endpoint), 0);
    self->dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (self->dealer);
    zsock_set_identity (self->dealer, "caller");
    assert_int_equal (zsock_connect (self->dealer, "%s", endpoint), 0);
    zsock_set_rcvtimeo (self->dealer, 5000);
    zsock_set_rcvtimeo (self->router, 5000);
    self->rpc = zv_rpc_new ();
    assert_non_null (self->rpc);
    s_current = self;
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    zv_rpc_destroy (&self->rpc);
    for (int index = 0; index < self->sent_count; index++)
        zv_msg_destroy (&self->sent [index]);
    zsock_destroy (&self->dealer);
    zsock_destroy (&self->router);
    s_current = NULL;
    free (self);
    return 0;
}

//  The peer reads one request and answers it (an error reply if status).
static void
s_peer_answers (fixture_t *self, zv_status_t status)
{
    zv_msg_t *request = zv_msg_recv (self->router);
    assert_non_null (request);
    assert_int_equal (zv_msg_status (request), ZV_OK);
    zv_msg_t *reply = status == ZV_OK ? zv_msg_reply (request)
                                      : zv_msg_error (request, status, "peer says no");
    assert_int_equal (zv_msg_send (&reply, self->router), 0);
    zv_msg_destroy (&request);
}

//  The caller reads what came back.
static zv_msg_t *
s_caller_receives (fixture_t *self)
{
    zv_msg_t *reply = zv_msg_recv (self->dealer);
    assert_non_null (reply);
    return reply;
}

//  Wait until deadline (monotonic ms), watching the caller's socket as an
//  actor's loop would; nothing is expected to arrive.
static void
s_wait_until (fixture_t *self, int64_t deadline)
{
    zpoller_t *poller = zpoller_new (self->dealer, NULL);
    assert_non_null (poller);
    int64_t now;
    while ((now = zv_mono_ms ()) < deadline)
        assert_null (zpoller_wait (poller, (int) (deadline - now)));
    zpoller_destroy (&poller);
}

//  Lifecycle

static void
test_rpc_new_destroy (void **state)
{
    (void) state;
    zv_rpc_t *rpc = zv_rpc_new ();
    assert_non_null (rpc);
    assert_int_equal (zv_rpc_pending (rpc), 0);
    zv_rpc_expire (rpc, NULL);          //  nothing to expire
    zv_rpc_destroy (&rpc);
    assert_null (rpc);
    zv_rpc_destroy (&rpc);              //  second destroy is harmless
    zv_rpc_destroy (NULL);
}

//  Replies

static void
test_rpc_call_and_reply (void **state)
{
    fixture_t *self = *state;
    zv_msg_t *request = zv_msg_new (S_TYPE);
    zv_msg_set_rq (request, "req-test-1");
    char id [72];
    snprintf (id, sizeof id, "%s", zv_msg_id (request));
    int tag = 7;
    assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 60000,
                                   s_on_reply, &tag, NULL, self), 0);
    assert_null (request);                  //  taken
    assert_int_equal (zv_rpc_pending (self->rpc), 1);
    assert_int_equal (self->runs, 0);

    s_peer_answers (self, ZV_OK);
    zv_msg_t *reply = s_caller_receives (self);
    assert_true (zv_rpc_dispatch (self->rpc, reply, self));
    assert_int_equal (self->runs, 1);
    assert_int_equal (self->tags [0], 7);
    assert_int_equal (self->status [0], ZV_OK);
    assert_string_equal (self->type [0], S_TYPE);
    assert_string_equal (self->re [0], id);
    assert_string_equal (self->rq [0], "req-test-1");
    assert_int_equal (zv_rpc_pending (self->rpc), 0);

    //  The same reply again (a duplicate) matches nothing now.
    assert_false (zv_rpc_dispatch (self->rpc, reply, self));
    assert_int_equal (self->runs, 1);
    zv_msg_destroy (&reply);
}

static void
test_rpc_peer_error_reply (void **state)
{
    fixture_t *self = *state;
    zv_msg_t *request = zv_msg_new (S_TYPE);
    assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 60000,
                                   s_on_reply, NULL, NULL, self), 0);
    s_peer_answers (self, ZV_ECONFLICT);
    zv_msg_t *reply = s_caller_receives (self);
    assert_true (zv_rpc_dispatch (self->rpc, reply, self));
    zv_msg_destroy (&reply);
    assert_int_equal (self->runs, 1);
    assert_int_equal (self->status [0], ZV_ECONFLICT);
    assert_string_equal (self->error [0], "peer says no");
}

static void
test_rpc_dispatch_unknown (void **state)
{
    fixture_t *self = *state;
    zv_msg_t *request = zv_msg_new (S_TYPE);
    assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 60000,
                                   s_on_reply, NULL, NULL, self), 0);

    //  A reply to a request this table never sent.
    zv_msg_t *stranger = zv_msg_new (S_TYPE);
    zv_msg_t *reply = zv_msg_reply (stranger);
    assert_false (zv_rpc_dispatch (self->rpc, reply, self));
    zv_msg_destroy (&reply);
    zv_msg_destroy (&stranger);
    //  A request (no "re" at all) is not a reply.
    zv_msg_t *cast = zv_msg_new (S_TYPE);
    assert_false (zv_rpc_dispatch (self->rpc, cast, self));
    zv_msg_destroy (&cast);

    assert_int_equal (self->runs, 0);
    assert_int_equal (zv_rpc_pending (self->rpc), 1);

    //  The real reply still finds its call.
    s_peer_answers (self, ZV_OK);
    reply = s_caller_receives (self);
    assert_true (zv_rpc_dispatch (self->rpc, reply, self));
    zv_msg_destroy (&reply);
    assert_int_equal (self->runs, 1);
}

//  Replies may come in any order; each finds its own call.
static void
test_rpc_replies_out_of_order (void **state)
{
    fixture_t *self = *state;
    zv_msg_t *requests [3];
    for (int index = 0; index < 3; index++) {
        zv_msg_t *request = zv_msg_new (S_TYPE);
        assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 60000,
                                       s_on_reply_free, s_tag (index), s_free_ctx, self), 0);
        requests [index] = zv_msg_recv (self->router);
        assert_non_null (requests [index]);
    }
    assert_int_equal (zv_rpc_pending (self->rpc), 3);
    static const int order [] = { 2, 0, 1 };
    for (int index = 0; index < 3; index++) {
        zv_msg_t *reply = zv_msg_reply (requests [order [index]]);
        assert_int_equal (zv_msg_send (&reply, self->router), 0);
        reply = s_caller_receives (self);
        assert_true (zv_rpc_dispatch (self->rpc, reply, self));
        zv_msg_destroy (&reply);
        assert_int_equal (self->tags [index], order [index]);
        assert_int_equal (zv_rpc_pending (self->rpc), (size_t) (2 - index));
    }
    for (int index = 0; index < 3; index++)
        zv_msg_destroy (&requests [index]);
    assert_int_equal (self->freed, 0);      //  answered calls: the continuation owned ctx
}

static void
test_rpc_continuation_calls_again (void **state)
{
    fixture_t *self = *state;
    zv_msg_t *request = zv_msg_new (S_TYPE);
    assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 60000,
                                   s_on_reply, NULL, NULL, self), 0);
    self->call_again = true;
    s_peer_answers (self, ZV_OK);
    zv_msg_t *reply = s_caller_receives (self);
    assert_true (zv_rpc_dispatch (self->rpc, reply, self));
    zv_msg_destroy (&reply);
    assert_int_equal (self->runs, 1);
    assert_int_equal (zv_rpc_pending (self->rpc), 1);   //  the new call
    s_peer_answers (self, ZV_OK);
    reply = s_caller_receives (self);
    assert_true (zv_rpc_dispatch (self->rpc, reply, self));
    zv_msg_destroy (&reply);
    assert_int_equal (self->runs, 2);
    assert_int_equal (zv_rpc_pending (self->rpc), 0);
}

//  Timeouts

static void
test_rpc_expire (void **state)
{
    fixture_t *self = *state;
    zv_msg_t *request = zv_msg_new (S_TYPE);
    zv_msg_set_rq (request, "req-test-timeout");
    assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 0,
                                   s_on_reply_free, s_tag (1), s_free_ctx, self), 0);
    request = zv_msg_new (S_TYPE);
    assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 60000,
                                   s_on_reply_free, s_tag (2), s_free_ctx, self), 0);
    assert_int_equal (zv_rpc_pending (self->rpc), 2);

    zv_rpc_expire (self->rpc, self);
    assert_int_equal (self->runs, 1);
    assert_int_equal (self->tags [0], 1);
    assert_int_equal (self->status [0], ZV_ETIMEOUT);
    assert_string_equal (self->type [0], S_TYPE);
    assert_string_equal (self->rq [0], "req-test-timeout");
    assert_non_null (strstr (self->error [0], S_TYPE));
    assert_int_equal (zv_rpc_pending (self->rpc), 1);   //  the 60 s call waits on

    //  Exactly once: expiring again, or a late reply, runs nothing more.
    zv_rpc_expire (self->rpc, self);
    assert_int_equal (self->runs, 1);
    s_peer_answers (self, ZV_OK);               //  late answer to the expired call
    zv_msg_t *reply = s_caller_receives (self);
    assert_false (zv_rpc_dispatch (self->rpc, reply, self));
    zv_msg_destroy (&reply);
    assert_int_equal (self->runs, 1);
    assert_int_equal (self->freed, 0);
    //  Teardown drops the 60 s call: its ctx goes through free_ctx.
}

//  A synthesized reply (timeout, failed send) answers the call it stands
//  for: its "re" is that request's id, as a peer's reply would have it.
static void
test_rpc_synthesized_reply_matches_call (void **state)
{
    fixture_t *self = *state;
    zv_msg_t *request = zv_msg_new (S_TYPE);
    char timeout_id [72], unreach_id [72];
    snprintf (timeout_id, sizeof timeout_id, "%s", zv_msg_id (request));
    assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 0,
                                   s_on_reply, NULL, NULL, self), 0);
    zv_rpc_expire (self->rpc, self);
    request = zv_msg_new (S_TYPE);
    snprintf (unreach_id, sizeof unreach_id, "%s", zv_msg_id (request));
    zv_msg_set_routing_str (request, "nobody");
    assert_int_equal (zv_rpc_call (self->rpc, self->router, &request, 60000,
                                   s_on_reply, NULL, NULL, self), -1);
    assert_int_equal (self->runs, 2);
    assert_int_equal (self->status [0], ZV_ETIMEOUT);
    assert_int_equal (self->status [1], ZV_EUNAVAILABLE);
    if (strcmp (self->re [0], timeout_id) || strcmp (self->re [1], unreach_id))
        fail_msg ("synthesized replies carry re=%s (timeout) and re=%s (send failed), "
                  "expected the calls' ids %s and %s",
                  self->re [0], self->re [1], timeout_id, unreach_id);
}

//  Calls with different timeouts expire in deadline order, not send order.
static void
test_rpc_expire_in_deadline_order (void **state)
{
    fixture_t *self = *state;
    static const int timeouts [] = { 300, 100, 200, 250 };
    int64_t start = zv_mono_ms ();
    for (int index = 0; index < 4; index++) {
        zv_msg_t *request = zv_msg_new (S_TYPE);
        assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, timeouts [index],
                                       s_on_reply_free, s_tag (timeouts [index]), s_free_ctx, self), 0);
    }
    //  Nothing is due yet.
    zv_rpc_expire (self->rpc, self);
    if (zv_mono_ms () - start < 100) {
        assert_int_equal (self->runs, 0);
        assert_int_equal (zv_rpc_pending (self->rpc), 4);
    }
    //  All four due: one expiry answers them earliest deadline first.
    s_wait_until (self, start + 350);
    zv_rpc_expire (self->rpc, self);
    assert_int_equal (self->runs, 4);
    assert_int_equal (self->tags [0], 100);
    assert_int_equal (self->tags [1], 200);
    assert_int_equal (self->tags [2], 250);
    assert_int_equal (self->tags [3], 300);
    for (int run = 0; run < 4; run++)
        assert_int_equal (self->status [run], ZV_ETIMEOUT);
    assert_int_equal (zv_rpc_pending (self->rpc), 0);
    assert_int_equal (self->freed, 0);
}

//  Only what is due expires; the rest waits for its own deadline.
static void
test_rpc_expire_only_due (void **state)
{
    fixture_t *self = *state;
    int64_t start = zv_mono_ms ();
    zv_msg_t *request = zv_msg_new (S_TYPE);
    assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 60000,
                                   s_on_reply_free, s_tag (60000), s_free_ctx, self), 0);
    request = zv_msg_new (S_TYPE);
    assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 50,
                                   s_on_reply_free, s_tag (50), s_free_ctx, self), 0);
    s_wait_until (self, start + 60);
    zv_rpc_expire (self->rpc, self);
    assert_int_equal (self->runs, 1);
    assert_int_equal (self->tags [0], 50);
    assert_int_equal (zv_rpc_pending (self->rpc), 1);
}

//  Send failures

static void
test_rpc_send_fails (void **state)
{
    fixture_t *self = *state;
    //  The peer's ROUTER (ZMQ_ROUTER_MANDATORY) calls an identity that is
    //  not connected: EHOSTUNREACH.
    zv_msg_t *request = zv_msg_new (S_TYPE);
    zv_msg_set_rq (request, "req-test-unreach");
    zv_msg_set_routing_str (request, "nobody");
    assert_int_equal (zv_rpc_call (self->rpc, self->router, &request, 60000,
                                   s_on_reply_free, s_tag (3), s_free_ctx, self), -1);
    assert_null (request);
    //  The continuation ran at once, with the one error path callers know.
    assert_int_equal (self->runs, 1);
    assert_int_equal (self->tags [0], 3);
    assert_int_equal (self->status [0], ZV_EUNAVAILABLE);
    assert_string_equal (self->type [0], S_TYPE);
    assert_string_equal (self->rq [0], "req-test-unreach");
    assert_non_null (strstr (self->error [0], "cannot send " S_TYPE));
    assert_int_equal (zv_rpc_pending (self->rpc), 0);
    assert_int_equal (self->freed, 0);          //  the continuation owned ctx

    //  Nothing is left to expire.
    zv_rpc_expire (self->rpc, self);
    assert_int_equal (self->runs, 1);

    //  The same ROUTER reaches a connected identity.
    request = zv_msg_new (S_TYPE);
    zv_msg_set_routing_str (request, "caller");
    assert_int_equal (zv_rpc_call (self->rpc, self->router, &request, 60000,
                                   s_on_reply, NULL, NULL, self), 0);
    assert_int_equal (zv_rpc_pending (self->rpc), 1);
    zv_msg_t *received = s_caller_receives (self);
    zv_msg_t *reply = zv_msg_reply (received);
    assert_int_equal (zv_msg_send (&reply, self->dealer), 0);
    zv_msg_destroy (&received);
    reply = zv_msg_recv (self->router);
    assert_non_null (reply);
    assert_true (zv_rpc_dispatch (self->rpc, reply, self));
    zv_msg_destroy (&reply);
    assert_int_equal (self->runs, 2);
    assert_int_equal (self->status [1], ZV_OK);
}

//  Calls through a send function (an object that owns no socket)

static void
test_rpc_call_send (void **state)
{
    fixture_t *self = *state;
    zv_msg_t *request = zv_msg_new (S_TYPE);
    zv_msg_set_rq (request, "req-test-send");
    zv_msg_set_routing_str (request, "peer");
    char id [72];
    snprintf (id, sizeof id, "%s", zv_msg_id (request));
    assert_int_equal (zv_rpc_call_send (self->rpc, s_send, self, &request, 60000,
                                        s_on_reply_free, s_tag (4), s_free_ctx, self), 0);
    assert_null (request);                          //  taken
    assert_int_equal (self->sent_count, 1);
    assert_string_equal (zv_msg_id (self->sent [0]), id);
    assert_int_equal (zv_rpc_pending (self->rpc), 1);
    assert_int_equal (self->runs, 0);

    //  The reply to what was sent finds its call, as one from a socket does.
    zv_msg_t *reply = zv_msg_reply (self->sent [0]);
    assert_true (zv_rpc_dispatch (self->rpc, reply, self));
    zv_msg_destroy (&reply);
    assert_int_equal (self->runs, 1);
    assert_int_equal (self->tags [0], 4);
    assert_int_equal (self->status [0], ZV_OK);
    assert_string_equal (self->re [0], id);
    assert_string_equal (self->rq [0], "req-test-send");
    assert_int_equal (zv_rpc_pending (self->rpc), 0);
    assert_int_equal (self->freed, 0);

    //  A send that fails runs the continuation at once, as on a socket.
    request = zv_msg_new (S_TYPE);
    zv_msg_set_routing_str (request, "nobody");
    snprintf (id, sizeof id, "%s", zv_msg_id (request));
    assert_int_equal (zv_rpc_call_send (self->rpc, s_send, self, &request, 60000,
                                        s_on_reply_free, s_tag (5), s_free_ctx, self), -1);
    assert_null (request);
    assert_int_equal (self->sent_count, 1);
    assert_int_equal (self->runs, 2);
    assert_int_equal (self->tags [1], 5);
    assert_int_equal (self->status [1], ZV_EUNAVAILABLE);
    assert_string_equal (self->re [1], id);
    char expected [256];
    snprintf (expected, sizeof expected, "cannot send " S_TYPE ": %s", zmq_strerror (EHOSTUNREACH));
    assert_string_equal (self->error [1], expected);
    assert_int_equal (zv_rpc_pending (self->rpc), 0);
    zv_rpc_expire (self->rpc, self);
    assert_int_equal (self->runs, 2);

    //  A pending call made this way is dropped at destroy like any other.
    request = zv_msg_new (S_TYPE);
    assert_int_equal (zv_rpc_call_send (self->rpc, s_send, self, &request, 60000,
                                        s_on_reply_free, s_tag (6), s_free_ctx, self), 0);
    zv_rpc_destroy (&self->rpc);
    assert_int_equal (self->freed, 1);
    assert_int_equal (self->runs, 2);
}

//  Destroy

static void
test_rpc_destroy_pending (void **state)
{
    fixture_t *self = *state;
    for (int index = 0; index < 3; index++) {
        zv_msg_t *request = zv_msg_new (S_TYPE);
        assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 60000 + index,
                                       s_on_reply_free, s_tag (index), s_free_ctx, self), 0);
    }
    //  No free_ctx: the context is not the table's to free.
    static int borrowed = 9;
    zv_msg_t *request = zv_msg_new (S_TYPE);
    assert_int_equal (zv_rpc_call (self->rpc, self->dealer, &request, 60000,
                                   s_on_reply, &borrowed, NULL, self), 0);
    assert_int_equal (zv_rpc_pending (self->rpc), 4);

    zv_rpc_destroy (&self->rpc);
    assert_null (self->rpc);
    assert_int_equal (self->freed, 3);
    assert_int_equal (self->runs, 0);           //  continuations are not run
    assert_int_equal (borrowed, 9);
}

int
main (void)
{
    zv_log_level = -1;
    zsys_init ();
    zsys_set_linger (0);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_rpc_new_destroy),
        cmocka_unit_test_setup_teardown (test_rpc_call_and_reply, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rpc_peer_error_reply, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rpc_dispatch_unknown, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rpc_replies_out_of_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rpc_continuation_calls_again, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rpc_expire, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rpc_synthesized_reply_matches_call, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rpc_expire_in_deadline_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rpc_expire_only_due, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rpc_send_fails, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rpc_call_send, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rpc_destroy_pending, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
