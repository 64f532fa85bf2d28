/*  sched_actor.c: select_destinations through the real scheduler actor, at
    100, 1,000 and 10,000 hosts.

        sched_actor ENDPOINT WORKDIR [DECISIONS]

    This program plays the conductor for one `zovad scheduler` process that
    bench/run.sh starts with [conductor] endpoint = ENDPOINT and the default
    [filter_scheduler] filters and weighers.  It binds a ROUTER there (as the
    conductor does), answers the scheduler's conductor.service_heartbeat
    with {epoch} and its conductor.host_states with {generation, hosts}.

    The hosts are simulated inventories in a real store: for each size N it
    opens a zova store under WORKDIR, reports N resource providers with
    zv_placement_report (the inventories a compute's heartbeat carries: 16,
    32 or 64 VCPU at ratio 4.0, 64 to 256 GiB with 512 MB reserved, 1 or
    2 TB of disk), records the facts a heartbeat adds (hypervisor_type QEMU,
    cpu_arch x86_64, ...), and claims 0 to 7 instances of varied flavors on
    each with zv_placement_claim.  The host records are then built from the
    store as s_host_states does (actors/conductor.c): every node through
    zv_placement_view, plus state up, status enabled, zone "nova", no
    aggregates, num_instances from the allocations, failed_builds 0.

    Once the scheduler has taken the new view (it asks for host states
    again after the reply that carried it: it never has two refreshes in
    flight), requests go to "scheduler.<host>" one at a time, each timed
    from send to reply: DECISIONS (2,000) select_destinations for one
    instance of {VCPU:1, MEMORY_MB:2048, DISK_GB:20}, each followed by an
    api.ping that the scheduler answers at once with an error ("not served
    by the scheduler"): the same sockets, codec and loop with no decision,
    so the difference between the two is the decision.  The host states it
    asks for meanwhile (every host_refresh_interval_ms) are answered between
    two timed requests, so the scheduler's ingest of a refresh falls inside
    the next request's time, as it does in service, but this program's own
    encoding of the reply never does.  refresh_ms is the first ping after a
    new view was sent: the scheduler's decode and parse of N host records.

    Figures per N: decisions_per_s (1 / mean round trip), p50_ms, p99_ms,
    max_ms, us_per_host (mean round trip / N), transport_p50_ms (the ping),
    net_us_per_host ((mean decision - mean ping) / N, noisy at 100 hosts),
    refresh_ms, refreshes (host_states answered), and what one refresh
    costs each side with zova's codec: host_states_build_ms (records from
    the store), host_states_encode_ms, host_states_decode_ms (decode, tree,
    free: the scheduler's share before zv_sched parses it), host_states_kb.
    Then growth_10000_vs_100_per_host (1.0: exactly linear; below: a fixed
    cost is being shared) and the marginal ns per host between sizes, from
    the medians, which few refreshes touch.                              */

#include <sys/stat.h>
#include "proto/zv_msg.h"
#include "store/zv_placement.h"
#include "store/zv_store.h"
#include "zv_bench.h"

#define S_WARMUP     50
#define S_WAIT_MS    30000          //  for the scheduler to show up or answer

typedef struct {
    zsock_t *router;
    char identity [320];            //  the scheduler's, from its first message
    char epoch [ZV_UUID_LEN + 1];
    json_t *hosts;                  //  what host_states answers (borrowed)
    int served;                     //  host_states answered with hosts
    int asked_after;                //  host_states asked after that
    bool fresh;                     //  hosts not served yet
    zlistx_t *deferred;             //  conductor requests to answer later
} s_conductor_t;

//  --- the simulated fleet ---------------------------------------------

static json_t *
s_inventory (json_int_t total, json_int_t reserved, double ratio)
{
    return json_pack ("{s:I, s:I, s:i, s:I, s:i, s:f}", "total", total, "reserved", reserved,
                      "min_unit", 1, "max_unit", total, "step_size", 1, "allocation_ratio", ratio);
}

//  Write count providers with their usages into a new store at path.
static int
s_seed (const char *path, int count, unsigned seed)
{
    char errbuf [512];
    mkdir (path, 0755);
    zv_store_t *store = zv_store_open (path, 1024, errbuf, sizeof errbuf);
    if (!store) {
        fprintf (stderr, "sched_actor: %s\n", errbuf);
        return -1;
    }
    zv_txn_t *txn = zv_txn_begin (store, NULL, true);
    zv_status_t status = txn ? ZV_OK : ZV_EIO;
    for (int index = 0; index < count && status == ZV_OK; index++) {
        char host [32];
        snprintf (host, sizeof host, "host%05d", index);
        json_int_t vcpus = 16 << (rand_r (&seed) % 3);              //  16, 32, 64
        json_int_t memory_mb = 65536 << (rand_r (&seed) % 3);       //  64 to 256 GiB
        json_int_t disk_gb = 1000 * (1 + rand_r (&seed) % 2);       //  1 or 2 TB
        json_t *inventories = json_pack ("{s:o, s:o, s:o}", "VCPU", s_inventory (vcpus, 0, 4.0),
                                         "MEMORY_MB", s_inventory (memory_mb, 512, 1.0),
                                         "DISK_GB", s_inventory (disk_gb, 0, 1.0));
        status = zv_placement_report (txn, host, inventories, NULL, errbuf, sizeof errbuf);
        json_decref (inventories);
        //  The facts a compute's heartbeat adds beside its inventories.
        json_t *node = NULL;
        int instances = (int) (rand_r (&seed) % 8);
        if (status == ZV_OK && (status = zv_store_get (txn, ZV_TABLE_NODES, host, &node)) == ZV_OK) {
            char uri [64];
            snprintf (uri, sizeof uri, "qemu+tcp://%s/system", host);
            json_t *facts = json_pack ("{s:i, s:s, s:i, s:s, s:s, s:s}",
                "running_vms", instances, "hypervisor_type", "QEMU", "hypervisor_version", 8002000,
                "cpu_model", "Skylake-Server-IBRS", "cpu_arch", "x86_64", "uri", uri);
            json_object_update (node, facts);
            json_decref (facts);
            status = zv_store_put (txn, ZV_TABLE_NODES, host, node);
            json_decref (node);
        }
        for (int claim = 0; claim < instances && status == ZV_OK; claim++) {
            char uuid [ZV_UUID_LEN + 1];
            zv_uuid_new (uuid);
            int size = 1 << (rand_r (&seed) % 3);                   //  1, 2 or 4 x (1 vCPU, 2 GB, 20 GB)
            json_t *resources = json_pack ("{s:i, s:i, s:i}", "VCPU", size, "MEMORY_MB", 2048 * size,
                                           "DISK_GB", 20 * size);
            status = zv_placement_claim (txn, uuid, "bench", host, resources, errbuf, sizeof errbuf);
            json_decref (resources);
        }
    }
    if (status == ZV_OK)
        status = zv_txn_commit (&txn);
    else {
        fprintf (stderr, "sched_actor: seeding %s: %s %s\n", path, zv_status_name (status), errbuf);
        zv_txn_abort (&txn);
    }
    zv_store_destroy (&store);
    return status == ZV_OK ? 0 : -1;
}

static bool
s_node_visit (const char *key, json_t *rec, void *arg)
{
    (void) key;
    json_array_append ((json_t *) arg, rec);
    return true;
}

static bool
s_count_visit (const char *key, json_t *rec, void *arg)
{
    (void) key;
    const char *host;
    json_t *against;
    json_object_foreach (json_object_get (rec, "allocations"), host, against) {
        json_t *count = json_object_get ((json_t *) arg, host);
        json_object_set_new ((json_t *) arg, host,
                             json_integer (count ? json_integer_value (count) + 1 : 1));
    }
    return true;
}

//  The host records of the store at path, as conductor.host_states sends
//  them.  Caller owns.
static json_t *
s_host_states (const char *path)
{
    char errbuf [512];
    zv_store_t *store = zv_store_open (path, 1024, errbuf, sizeof errbuf);
    if (!store) {
        fprintf (stderr, "sched_actor: %s\n", errbuf);
        return NULL;
    }
    zv_txn_t *txn = zv_txn_begin (store, NULL, false);
    json_t *hosts = json_array ();
    json_t *counts = json_object ();
    zv_store_scan (txn, ZV_TABLE_NODES, "", s_node_visit, hosts);
    zv_store_scan (txn, ZV_TABLE_ALLOCATIONS, "", s_count_visit, counts);
    size_t index;
    json_t *node;
    json_array_foreach (hosts, index, node) {
        zv_placement_view (node);
        json_t *count = json_object_get (counts, json_string_value (json_object_get (node, "host")));
        json_t *state = json_pack ("{s:s, s:s, s:n, s:s, s:[], s:I, s:i}",
            "state", "up", "status", "enabled", "disabled_reason", "availability_zone", "nova",
            "aggregates", "num_instances", count ? json_integer_value (count) : (json_int_t) 0,
            "failed_builds", 0);
        json_object_update (node, state);
        json_decref (state);
    }
    json_decref (counts);
    zv_txn_abort (&txn);
    zv_store_destroy (&store);
    return hosts;
}

//  --- the conductor's part -------------------------------------------------

static void
s_answer (s_conductor_t *self, zv_msg_t **msg_p)
{
    zv_msg_t *msg = *msg_p;
    zv_msg_t *reply;
    if (streq (zv_msg_type (msg), "conductor.service_heartbeat")) {
        reply = zv_msg_reply (msg);
        json_t *body = json_pack ("{s:s}", "epoch", self->epoch);
        zv_msg_set_body (reply, &body);
    }
    else
    if (streq (zv_msg_type (msg), "conductor.host_states") && self->hosts) {
        reply = zv_msg_reply (msg);
        json_t *body = json_pack ("{s:I, s:O}", "generation", (json_int_t) self->served + 1,
                                  "hosts", self->hosts);
        zv_msg_set_body (reply, &body);
        self->served++;
        self->fresh = false;
    }
    else
    if (streq (zv_msg_type (msg), "conductor.host_states"))
        reply = zv_msg_error (msg, ZV_EUNAVAILABLE, "no host states yet");
    else
        reply = zv_msg_error (msg, ZV_EINVAL, "'%s' is not served here", zv_msg_type (msg));
    zv_msg_set_src (reply, "conductor");
    zv_msg_send (&reply, self->router);
    zv_msg_destroy (msg_p);
}

//  A request from the scheduler: note who it is and what it asked; answer
//  it now, or keep it for s_flush when a timed request is in flight.
static void
s_request (s_conductor_t *self, zv_msg_t *msg, bool defer)
{
    zframe_t *rid = zv_msg_routing_id (msg);
    if (rid && !*self->identity)
        snprintf (self->identity, sizeof self->identity, "%.*s", (int) zframe_size (rid),
                  (char *) zframe_data (rid));
    if (streq (zv_msg_type (msg), "conductor.host_states") && self->served && !self->fresh)
        self->asked_after++;
    if (defer)
        zlistx_add_end (self->deferred, msg);
    else
        s_answer (self, &msg);
}

static void
s_flush (s_conductor_t *self)
{
    zv_msg_t *msg;
    while ((msg = (zv_msg_t *) zlistx_detach (self->deferred, NULL)))
        s_answer (self, &msg);
}

//  Serve the scheduler for up to ms, until done says stop.
static bool
s_serve_until (s_conductor_t *self, zpoller_t *poller, int ms, bool (*done) (s_conductor_t *))
{
    int64_t deadline = zv_bench_us () + (int64_t) ms * 1000;
    while (!done (self)) {
        int64_t left = (deadline - zv_bench_us ()) / 1000;
        if (left <= 0 || zsys_interrupted)
            return false;
        if (!zpoller_wait (poller, (int) left))
            continue;
        zv_msg_t *msg = zv_msg_recv (self->router);
        if (!msg)
            continue;
        if (zv_msg_is_reply (msg))
            zv_msg_destroy (&msg);      //  a late reply: nothing waits for it
        else
            s_request (self, msg, false);
    }
    return true;
}

static bool s_known (s_conductor_t *self) { return *self->identity; }
static bool s_refreshed (s_conductor_t *self) { return self->served > 0 && !self->fresh && self->asked_after > 0; }

//  One timed request to the scheduler (*msg_p taken): its reply (caller
//  owns), NULL on timeout.  Conductor requests that arrive meanwhile wait.
static zv_msg_t *
s_call (s_conductor_t *self, zpoller_t *poller, zv_msg_t **msg_p, int64_t *took_us)
{
    char id [80];
    snprintf (id, sizeof id, "%s", zv_msg_id (*msg_p));
    zv_msg_set_routing_str (*msg_p, self->identity);
    int64_t start = zv_bench_us ();
    if (zv_msg_send (msg_p, self->router) != 0)
        return NULL;
    int64_t deadline = start + (int64_t) S_WAIT_MS * 1000;
    while (zv_bench_us () < deadline && !zsys_interrupted) {
        if (!zpoller_wait (poller, 1000))
            continue;
        zv_msg_t *msg = zv_msg_recv (self->router);
        if (!msg)
            continue;
        if (zv_msg_is_reply (msg) && streq (zv_msg_re (msg), id)) {
            *took_us = zv_bench_us () - start;
            return msg;
        }
        if (zv_msg_is_reply (msg))
            zv_msg_destroy (&msg);
        else
            s_request (self, msg, true);
    }
    return NULL;
}

static zv_msg_t *
s_select_request (void)
{
    zv_msg_t *msg = zv_msg_new ("scheduler.select_destinations");
    zv_msg_set_src (msg, "conductor");
    json_t *body = json_pack ("{s:{s:{s:i, s:i, s:i}, s:s, s:{s:{}}, s:{s:{}}}, s:i, s:[]}",
        "spec", "resources", "VCPU", 1, "MEMORY_MB", 2048, "DISK_GB", 20, "project_id", "bench",
        "flavor", "extra_specs", "image", "properties", "num_instances", 1, "ignore_hosts");
    zv_msg_set_body (msg, &body);
    return msg;
}

static zv_msg_t *
s_ping_request (void)
{
    zv_msg_t *msg = zv_msg_new ("api.ping");
    zv_msg_set_src (msg, "conductor");
    return msg;
}

static double
s_mean (const double *values, int count)
{
    double sum = 0;
    for (int index = 0; index < count; index++)
        sum += values [index];
    return count ? sum / count : 0;
}

static void
s_figure (int count, const char *what, double value)
{
    char name [96];
    snprintf (name, sizeof name, "sched_actor_%d_%s", count, what);
    zv_bench_figure (name, value);
}

int
main (int argc, char *argv [])
{
    if (argc < 3) {
        fprintf (stderr, "usage: sched_actor ENDPOINT WORKDIR [DECISIONS]\n");
        return 2;
    }
    const char *endpoint = argv [1];
    const char *workdir = argv [2];
    int decisions = argc > 3 ? atoi (argv [3]) : 2000;
    if (decisions < 10)
        decisions = 10;
    zv_log_set_level_name ("warning");
    zsys_handler_set (NULL);

    s_conductor_t self = { 0 };
    zv_uuid_new (self.epoch);
    self.deferred = zlistx_new ();
    self.router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (self.router, 1);
    zsock_set_router_handover (self.router, 1);
    zsock_set_maxmsgsize (self.router, ZV_MSG_MAX_WIRE);
    zsock_set_sndhwm (self.router, 100000);
    zsock_set_rcvhwm (self.router, 100000);
    if (zsock_bind (self.router, "%s", endpoint) == -1) {
        fprintf (stderr, "sched_actor: cannot bind %s\n", endpoint);
        return 1;
    }
    zpoller_t *poller = zpoller_new (self.router, NULL);
    if (!s_serve_until (&self, poller, S_WAIT_MS, s_known)) {
        fprintf (stderr, "sched_actor: no scheduler connected to %s\n", endpoint);
        return 1;
    }
    fprintf (stderr, "sched_actor: serving %s\n", self.identity);

    static const int counts [] = { 100, 1000, 10000 };
    enum { S_SIZES = sizeof counts / sizeof counts [0] };
    double per_host [S_SIZES] = { 0 }, net_per_host [S_SIZES] = { 0 }, median [S_SIZES] = { 0 };
    double *latency = (double *) calloc ((size_t) decisions, sizeof (double));
    double *transport = (double *) calloc ((size_t) decisions, sizeof (double));
    int exit_code = 0;
    for (int at = 0; at < S_SIZES && !exit_code; at++) {
        int count = counts [at];
        char path [1100];
        snprintf (path, sizeof path, "%s/store-%d", workdir, count);
        int64_t start = zv_bench_us ();
        if (s_seed (path, count, 42) != 0) {
            exit_code = 1;
            break;
        }
        fprintf (stderr, "sched_actor: %d providers seeded in %.2f s\n", count,
                 (double) (zv_bench_us () - start) / 1e6);
        //  What one refresh costs the sender: the records built from the
        //  store, then encoded (the best of 3, to keep the page cache and
        //  the allocator's warm-up out).
        json_t *hosts = NULL;
        double build_ms = 0, encode_ms = 0, decode_ms = 0;
        size_t bytes = 0;
        for (int run = 0; run < 3; run++) {
            json_decref (hosts);
            start = zv_bench_us ();
            hosts = s_host_states (path);
            double took_ms = (double) (zv_bench_us () - start) / 1000.0;
            build_ms = run == 0 || took_ms < build_ms ? took_ms : build_ms;
            if (!hosts)
                break;
            zv_msg_t *request = zv_msg_new ("conductor.host_states");
            zv_msg_t *sample = zv_msg_reply (request);
            zv_msg_destroy (&request);
            json_t *body = json_pack ("{s:I, s:O}", "generation", (json_int_t) 1, "hosts", hosts);
            zv_msg_set_body (sample, &body);
            start = zv_bench_us ();
            zmsg_t *wire = zv_msg_encode (sample);
            took_ms = (double) (zv_bench_us () - start) / 1000.0;
            encode_ms = run == 0 || took_ms < encode_ms ? took_ms : encode_ms;
            bytes = wire ? zmsg_content_size (wire) : 0;
            zv_msg_destroy (&sample);
            //  The receiver's share with the same codec: decode, the
            //  body's tree (s_refresh_done reads it), and its free.
            start = zv_bench_us ();
            zv_msg_t *decoded = zv_msg_decode (&wire, false);
            if (decoded)
                zv_msg_body (decoded);
            zv_msg_destroy (&decoded);
            took_ms = (double) (zv_bench_us () - start) / 1000.0;
            decode_ms = run == 0 || took_ms < decode_ms ? took_ms : decode_ms;
        }
        if (!hosts || (int) json_array_size (hosts) != count) {
            fprintf (stderr, "sched_actor: could not build %d host records\n", count);
            exit_code = 1;
            json_decref (hosts);
            break;
        }

        //  Feed the new view; the first ping after it measures its ingest.
        self.hosts = hosts;
        self.fresh = true;
        self.served = self.asked_after = 0;
        s_flush (&self);
        double refresh_ms = -1;
        while (self.fresh && !zsys_interrupted) {
            zv_msg_t *msg = NULL;
            if (zpoller_wait (poller, 2000) && (msg = zv_msg_recv (self.router))) {
                if (zv_msg_is_reply (msg))
                    zv_msg_destroy (&msg);
                else
                    s_request (&self, msg, false);
            }
        }
        zv_msg_t *ping = s_ping_request ();
        int64_t took = 0;
        zv_msg_t *reply = s_call (&self, poller, &ping, &took);
        if (reply)
            refresh_ms = (double) took / 1000.0;
        zv_msg_destroy (&reply);
        s_flush (&self);
        if (!s_serve_until (&self, poller, S_WAIT_MS, s_refreshed)) {
            fprintf (stderr, "sched_actor: the scheduler did not refresh its view of %d hosts\n", count);
            exit_code = 1;
            break;
        }

        int failed = 0, mismatched = 0;
        for (int round = -S_WARMUP; round < decisions && !zsys_interrupted; round++) {
            zv_msg_t *msg = s_select_request ();
            reply = s_call (&self, poller, &msg, &took);
            if (!reply) {
                fprintf (stderr, "sched_actor: no reply to select_destinations\n");
                exit_code = 1;
                break;
            }
            const char *chosen = json_string_value (json_array_get (json_array_get (
                json_object_get (zv_msg_body (reply), "destinations"), 0), 0));
            if (zv_msg_status (reply) != ZV_OK)
                failed++;
            else
            if (!chosen || strncmp (chosen, "host", 4) != 0)
                mismatched++;
            zv_msg_destroy (&reply);
            if (round >= 0)
                latency [round] = (double) took / 1000.0;
            s_flush (&self);

            ping = s_ping_request ();
            reply = s_call (&self, poller, &ping, &took);
            if (!reply) {
                fprintf (stderr, "sched_actor: no reply to ping\n");
                exit_code = 1;
                break;
            }
            zv_msg_destroy (&reply);
            if (round >= 0)
                transport [round] = (double) took / 1000.0;
            s_flush (&self);
        }
        if (exit_code)
            break;
        if (failed || mismatched)
            fprintf (stderr, "sched_actor: %d hosts: %d decisions found no host, %d named no known host\n",
                     count, failed, mismatched);
        double mean = s_mean (latency, decisions), mean_transport = s_mean (transport, decisions);
        qsort (latency, (size_t) decisions, sizeof (double), zv_bench_cmp_double);
        qsort (transport, (size_t) decisions, sizeof (double), zv_bench_cmp_double);
        per_host [at] = mean * 1000.0 / count;
        net_per_host [at] = (mean - mean_transport) * 1000.0 / count;
        s_figure (count, "decisions_per_s", 1000.0 / mean);
        median [at] = zv_bench_percentile (latency, (size_t) decisions, 50);
        s_figure (count, "p50_ms", median [at]);
        s_figure (count, "p99_ms", zv_bench_percentile (latency, (size_t) decisions, 99));
        s_figure (count, "max_ms", latency [decisions - 1]);
        s_figure (count, "us_per_host", per_host [at]);
        s_figure (count, "transport_p50_ms", zv_bench_percentile (transport, (size_t) decisions, 50));
        s_figure (count, "net_us_per_host", net_per_host [at]);
        s_figure (count, "refresh_ms", refresh_ms);
        s_figure (count, "host_states_build_ms", build_ms);
        s_figure (count, "host_states_encode_ms", encode_ms);
        s_figure (count, "host_states_decode_ms", decode_ms);
        s_figure (count, "host_states_kb", (double) bytes / 1024.0);
        s_figure (count, "refreshes", self.served);
        self.hosts = NULL;
        json_decref (hosts);
    }
    if (!exit_code) {
        zv_bench_figure ("sched_actor_growth_10000_vs_100_per_host", per_host [2] / per_host [0]);
        //  The slope between the sizes, on medians (refresh-free requests):
        //  what each further host adds to one decision.
        zv_bench_figure ("sched_actor_marginal_ns_per_host_100_to_1000",
                         (median [1] - median [0]) * 1e6 / (counts [1] - counts [0]));
        zv_bench_figure ("sched_actor_marginal_ns_per_host_1000_to_10000",
                         (median [2] - median [1]) * 1e6 / (counts [2] - counts [1]));
    }
    free (latency);
    free (transport);
    zv_msg_t *msg;
    while ((msg = (zv_msg_t *) zlistx_detach (self.deferred, NULL)))
        zv_msg_destroy (&msg);
    zlistx_destroy (&self.deferred);
    zpoller_destroy (&poller);
    zsock_destroy (&self.router);
    return exit_code;
}
