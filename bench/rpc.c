/*  rpc.c: one request/reply through zova's proto layer against the same
    bytes through raw ZeroMQ.

        rpc [ROUND_TRIPS]

    Two threads of one process, tcp loopback both times, one request in
    flight (sequential round trips), so the figure is latency, not
    pipelining.  The zova side is what a compute and the conductor do for
    every build step: a DEALER sends conductor.instance_update (uuid,
    expected_task_state, changes) built with zv_msg_new and zv_msg_send; a
    ROUTER thread receives it with zv_msg_recv (decode, catalogue
    validation), answers with zv_msg_reply carrying an instance record as
    the conductor's reply does, and the client decodes that reply.  The raw
    side sends frames of exactly the sizes zova puts on the wire (type frame
    and envelope frame each way), with zmq_send / zmq_recv into fixed
    buffers: the cost of moving those bytes and nothing else, the physical
    limit.  rpc_ratio_vs_raw_zmq = zova time per round trip / raw time (1.0
    is the floor; lower is better).                                       */

#include <czmq.h>
#include <pthread.h>
#include "proto/zv_msg.h"
#include "zv_bench.h"

#define S_UUID "0b4ad1f0-3c1e-4d55-9f3a-8e2b7c6d5a41"

#define S_ROUNDS 6

static int s_round_trips = 6000;
static const int s_warmup = 500;
//  Round trips each server thread answers before it returns.
static int s_served;

//  Frame sizes zova puts on the wire for the request and the reply.
static size_t s_req_sizes [2], s_rep_sizes [2];

static zv_msg_t *
s_request (void)
{
    zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
    zv_msg_set_src (msg, "compute.bench1");
    json_t *body = json_pack ("{s:s, s:[s], s:{s:s}}", "uuid", S_UUID,
                              "expected_task_state", "networking",
                              "changes", "task_state", "block_device_mapping");
    zv_msg_set_body (msg, &body);
    return msg;
}

//  What the conductor answers an instance_update with: the instance's view.
static json_t *
s_reply_body (void)
{
    json_t *rec = zv_bench_instance (S_UUID, "bench-1", "bench1", false);
    json_object_set_new (rec, "task_state", json_string ("block_device_mapping"));
    json_object_set_new (rec, "status", json_string ("BUILD"));
    json_object_set_new (rec, "id", json_string (S_UUID));
    json_object_del (rec, "created_ms");
    json_object_del (rec, "updated_ms");
    return json_pack ("{s:o}", "instance", rec);
}

static void
s_measure_sizes (void)
{
    zv_msg_t *request = s_request ();
    zmsg_t *wire = zv_msg_encode (request);
    assert (zmsg_size (wire) == 2);
    s_req_sizes [0] = zframe_size (zmsg_first (wire));
    s_req_sizes [1] = zframe_size (zmsg_next (wire));
    zmsg_destroy (&wire);
    zv_msg_t *reply = zv_msg_reply (request);
    json_t *body = s_reply_body ();
    zv_msg_set_body (reply, &body);
    zv_msg_set_src (reply, "conductor");
    wire = zv_msg_encode (reply);
    assert (zmsg_size (wire) == 2);
    s_rep_sizes [0] = zframe_size (zmsg_first (wire));
    s_rep_sizes [1] = zframe_size (zmsg_next (wire));
    zmsg_destroy (&wire);
    zv_msg_destroy (&reply);
    zv_msg_destroy (&request);
}

//  ---------------------------------------------------------------------
//  Raw ZeroMQ

static void *
s_raw_server (void *arg)
{
    void *router = arg;
    size_t longest = s_rep_sizes [1] > s_req_sizes [1] ? s_rep_sizes [1] : s_req_sizes [1];
    char *buffer = (char *) calloc (1, longest + 256);
    char reply [2][4096 * 4];
    memset (reply, 'x', sizeof reply);
    for (int count = 0; count < s_served; count++) {
        char rid [256];
        int rid_size = zmq_recv (router, rid, sizeof rid, 0);
        zmq_recv (router, buffer, longest + 256, 0);
        zmq_recv (router, buffer, longest + 256, 0);
        zmq_send (router, rid, (size_t) rid_size, ZMQ_SNDMORE);
        zmq_send (router, reply [0], s_rep_sizes [0], ZMQ_SNDMORE);
        zmq_send (router, reply [1], s_rep_sizes [1], 0);
    }
    free (buffer);
    return NULL;
}

typedef struct {
    void *ctx, *router, *dealer;
    pthread_t server;
} s_raw_t;

//  Both sockets are made and bound here; the server thread only uses its
//  socket after pthread_create (a full barrier), as ZeroMQ requires.
static void
s_raw_start (s_raw_t *raw)
{
    raw->ctx = zmq_ctx_new ();
    raw->router = zmq_socket (raw->ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt (raw->router, ZMQ_LINGER, &zero, sizeof zero);
    int rc = zmq_bind (raw->router, "tcp://127.0.0.1:*");
    assert (rc == 0);
    (void) rc;
    char endpoint [256];
    size_t endpoint_size = sizeof endpoint;
    zmq_getsockopt (raw->router, ZMQ_LAST_ENDPOINT, endpoint, &endpoint_size);
    pthread_create (&raw->server, NULL, s_raw_server, raw->router);
    raw->dealer = zmq_socket (raw->ctx, ZMQ_DEALER);
    zmq_setsockopt (raw->dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect (raw->dealer, endpoint);
}

//  Microseconds for count round trips.
static int64_t
s_raw_batch (s_raw_t *raw, int count)
{
    static char request [2][4096 * 4];
    static char buffer [4096 * 4];
    memset (request, 'y', sizeof request);
    int64_t start = zv_bench_us ();
    for (int index = 0; index < count; index++) {
        zmq_send (raw->dealer, request [0], s_req_sizes [0], ZMQ_SNDMORE);
        zmq_send (raw->dealer, request [1], s_req_sizes [1], 0);
        zmq_recv (raw->dealer, buffer, sizeof buffer, 0);
        zmq_recv (raw->dealer, buffer, sizeof buffer, 0);
    }
    return zv_bench_us () - start;
}

static void
s_raw_stop (s_raw_t *raw)
{
    pthread_join (raw->server, NULL);
    zmq_close (raw->dealer);
    zmq_close (raw->router);
    zmq_ctx_term (raw->ctx);
}

//  ---------------------------------------------------------------------
//  zova proto layer

static void *
s_zova_server (void *arg)
{
    zsock_t *router = (zsock_t *) arg;
    for (int count = 0; count < s_served; count++) {
        zv_msg_t *request = zv_msg_recv (router);
        if (!request)
            break;
        assert (zv_msg_status (request) == ZV_OK);
        //  Read the body as the conductor's handler does.
        assert (zv_msg_get_str (request, "uuid"));
        assert (json_object_get (zv_msg_body (request), "changes"));
        zv_msg_t *reply = zv_msg_reply (request);
        json_t *body = s_reply_body ();
        zv_msg_set_body (reply, &body);
        zv_msg_set_src (reply, "conductor");
        zv_msg_send (&reply, router);
        zv_msg_destroy (&request);
    }
    return NULL;
}

typedef struct {
    zsock_t *router, *dealer;
    pthread_t server;
} s_zova_t;

static void
s_zova_start (s_zova_t *zova)
{
    zova->router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (zova->router, 0);
    int port = zsock_bind (zova->router, "tcp://127.0.0.1:*");
    assert (port > 0);
    pthread_create (&zova->server, NULL, s_zova_server, zova->router);
    zova->dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (zova->dealer, 0);
    zsock_connect (zova->dealer, "tcp://127.0.0.1:%d", port);
}

//  Microseconds for count round trips, each a new request built, sent,
//  answered and its reply decoded and matched, as a compute does.
static int64_t
s_zova_batch (s_zova_t *zova, int count)
{
    int64_t start = zv_bench_us ();
    for (int index = 0; index < count; index++) {
        zv_msg_t *request = s_request ();
        char id [80];
        snprintf (id, sizeof id, "%s", zv_msg_id (request));
        zv_msg_send (&request, zova->dealer);
        zv_msg_t *reply = zv_msg_recv (zova->dealer);
        assert (reply && zv_msg_status (reply) == ZV_OK && streq (zv_msg_re (reply), id));
        assert (json_object_get (zv_msg_body (reply), "instance"));
        zv_msg_destroy (&reply);
    }
    return zv_bench_us () - start;
}

static void
s_zova_stop (s_zova_t *zova)
{
    pthread_join (zova->server, NULL);
    zsock_destroy (&zova->dealer);
    zsock_destroy (&zova->router);
}

int
main (int argc, char *argv [])
{
    if (argc > 1)
        s_round_trips = atoi (argv [1]) > 0 ? atoi (argv [1]) : s_round_trips;
    zsys_init ();
    zsys_set_logstream (NULL);
    s_measure_sizes ();
    s_served = s_warmup + s_round_trips / S_ROUNDS * S_ROUNDS;
    //  Loopback latency drifts with whatever else runs: alternate the two
    //  in rounds, after a warm-up of each, so that drift hits them alike.
    s_raw_t raw;
    s_zova_t zova;
    s_raw_start (&raw);
    s_zova_start (&zova);
    s_raw_batch (&raw, s_warmup);
    s_zova_batch (&zova, s_warmup);
    int per_round = s_round_trips / S_ROUNDS;
    int64_t raw_total = 0, zova_total = 0;
    for (int round = 0; round < S_ROUNDS; round++) {
        raw_total += s_raw_batch (&raw, per_round);
        zova_total += s_zova_batch (&zova, per_round);
    }
    s_raw_stop (&raw);
    s_zova_stop (&zova);
    double raw_us = (double) raw_total / (per_round * S_ROUNDS);
    double zova_us = (double) zova_total / (per_round * S_ROUNDS);
    zv_bench_figure ("rpc_request_bytes", (double) (s_req_sizes [0] + s_req_sizes [1]));
    zv_bench_figure ("rpc_reply_bytes", (double) (s_rep_sizes [0] + s_rep_sizes [1]));
    zv_bench_figure ("rpc_raw_zmq_roundtrip_us", raw_us);
    zv_bench_figure ("rpc_zova_roundtrip_us", zova_us);
    zv_bench_figure ("rpc_raw_zmq_roundtrips_per_s", 1e6 / raw_us);
    zv_bench_figure ("rpc_zova_roundtrips_per_s", 1e6 / zova_us);
    zv_bench_figure ("rpc_ratio_vs_raw_zmq", zova_us / raw_us);
    return 0;
}
