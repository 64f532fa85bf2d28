/*  sched.c: what one scheduling decision costs as the fleet grows.

    select_destinations for one instance with the default filters
    (ComputeFilter, CoreFilter, RamFilter, DiskFilter) and the RAM weigher,
    over 100, 1,000 and 10,000 simulated hosts of varied size and usage, the
    way the scheduler actor runs it on its refreshed host view (zv_sched).
    Each decision also consumes its choice, as the actor's view does between
    refreshes, and the view is refreshed (zv_sched_set_hosts) every 1,000
    decisions so that usage never saturates.  Prints decisions per second,
    p50 and p99 per host count, and the cost per host so the growth shows.
    The physical limit here is the CPU: a decision is a pass over the hosts. */

#include "zv_bench.h"
#include "actors/scheduler/zv_sched.h"

#define S_DECISIONS 2000

static json_t *
s_hosts (int count, unsigned seed)
{
    json_t *hosts = json_array ();
    for (int index = 0; index < count; index++) {
        char name [32];
        snprintf (name, sizeof name, "host%05d", index);
        int vcpus = 16 << (rand_r (&seed) % 3);                //  16, 32, 64
        int memory = 65536 << (rand_r (&seed) % 3);            //  64 to 256 GiB
        json_array_append_new (hosts, json_pack (
            "{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:i, s:i}",
            "host", name, "state", rand_r (&seed) % 50 ? "up" : "down",
            "status", rand_r (&seed) % 40 ? "enabled" : "disabled",
            "vcpus", vcpus, "vcpus_used", (int) (rand_r (&seed) % (unsigned) (vcpus * 3)),
            "memory_mb", memory, "memory_mb_used", (int) (rand_r (&seed) % (unsigned) memory),
            "local_gb", 2048, "local_gb_used", (int) (rand_r (&seed) % 1500),
            "cpu_allocation_ratio", 4.0, "ram_allocation_ratio", 1.0, "disk_allocation_ratio", 1.0,
            "reserved_host_memory_mb", 512, "reserved_host_disk_mb", 0));
    }
    return hosts;
}

int
main (void)
{
    static const int counts [] = { 100, 1000, 10000 };
    json_t *spec = json_pack ("{s:i, s:i, s:i}", "vcpus", 2, "ram_mb", 4096, "disk_gb", 20);
    json_t *ignore = json_array ();
    double *latency = (double *) malloc (S_DECISIONS * sizeof (double));
    double per_host_ns [3] = { 0 };
    for (size_t at = 0; at < sizeof counts / sizeof counts [0]; at++) {
        char errbuf [256];
        zv_sched_t *sched = zv_sched_new (&(zv_sched_options_t) {
            .enabled_filters = "ComputeFilter,CoreFilter,RamFilter,DiskFilter", .host_subset_size = 1,
            .max_attempts = 3, .ram_weight_multiplier = 1.0 }, errbuf, sizeof errbuf);
        json_t *snapshot = s_hosts (counts [at], 42);
        json_t *view = json_deep_copy (snapshot);
        zv_sched_set_hosts (sched, &view);
        int64_t total = 0;
        int placed = 0;
        for (int decision = 0; decision < S_DECISIONS; decision++) {
            if (decision && decision % 1000 == 0) {
                view = json_deep_copy (snapshot);
                zv_sched_set_hosts (sched, &view);
            }
            zv_status_t status;
            int64_t start = zv_bench_us ();
            json_t *destinations = zv_sched_select (sched, spec, 1, ignore, &status);
            int64_t took = zv_bench_us () - start;
            total += took;
            latency [decision] = (double) took / 1000.0;
            placed += destinations != NULL;
            json_decref (destinations);
        }
        qsort (latency, S_DECISIONS, sizeof (double), zv_bench_cmp_double);
        char name [64];
        snprintf (name, sizeof name, "sched_%d_decisions_per_s", counts [at]);
        zv_bench_figure (name, S_DECISIONS / ((double) total / 1e6));
        snprintf (name, sizeof name, "sched_%d_p50_ms", counts [at]);
        zv_bench_figure (name, zv_bench_percentile (latency, S_DECISIONS, 50));
        snprintf (name, sizeof name, "sched_%d_p99_ms", counts [at]);
        zv_bench_figure (name, zv_bench_percentile (latency, S_DECISIONS, 99));
        per_host_ns [at] = (double) total * 1000.0 / S_DECISIONS / counts [at];
        snprintf (name, sizeof name, "sched_%d_ns_per_host", counts [at]);
        zv_bench_figure (name, per_host_ns [at]);
        if (placed != S_DECISIONS)
            fprintf (stderr, "sched: %d of %d decisions found no host\n", S_DECISIONS - placed, S_DECISIONS);
        json_decref (snapshot);
        zv_sched_destroy (&sched);
    }
    //  Linear growth keeps the cost per host flat: 1.0 means exactly linear.
    zv_bench_figure ("sched_growth_10000_vs_100_per_host", per_host_ns [2] / per_host_ns [0]);
    free (latency);
    json_decref (spec);
    json_decref (ignore);
    return 0;
}
