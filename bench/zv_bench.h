/*  zv_bench.h: what zova's benchmark programs share.

    A microsecond clock, the figure printer every program uses (one
    "name: value" per line, the format bench/run.sh passes through), a
    percentile over a sorted array, and an instance record of the shape the
    conductor writes in s_server_create (actors/conductor.c), so that the
    store, the seeded list and the raw libvirt domains all measure records
    as big as the real ones.  Header only: every bench/<name>.c is its own
    program, linked with libzova.a by the Makefile.                         */

#ifndef ZV_BENCH_H
#define ZV_BENCH_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "common/zv_common.h"

//  Monotonic microseconds.
static inline int64_t
zv_bench_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

//  One figure on its own line; every figure of `make bench` goes through here.
static inline void
zv_bench_figure (const char *name, double value)
{
    if (value >= 100)
        printf ("%s: %.0f\n", name, value);
    else
        printf ("%s: %.3g\n", name, value);
    fflush (stdout);
}

static inline int
zv_bench_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  Percentile p (0..100) of count sorted values, nearest rank.
static inline double
zv_bench_percentile (const double *sorted, size_t count, double p)
{
    if (count == 0)
        return 0;
    size_t rank = (size_t) (p / 100.0 * (double) count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > count)
        rank = count;
    return sorted [rank - 1];
}

//  An instance record as the conductor writes it at create (vm_state
//  building, task_state scheduling), or, active = true, as it stands once
//  its build finished on host.  Caller owns.
static inline json_t *
zv_bench_instance (const char *uuid, const char *name, const char *host, bool active)
{
    char now [32];
    int64_t now_ms = zv_now_ms ();
    zv_iso8601 (now_ms, now);
    json_t *rec = json_pack (
        "{s:s, s:s, s:s, s:s,"
        " s:{s:s, s:s, s:i, s:i, s:i, s:i, s:i}, s:{s:s, s:s},"
        " s:s, s:s, s:s, s:n, s:n, s:n,"
        " s:s, s:I, s:s, s:I, s:n, s:b, s:n, s:s, s:i, s:s, s:{}, s:s}",
        "uuid", uuid, "name", name, "project_id", "admin", "user_id", "admin",
        "flavor", "id", "bench.tiny", "name", "bench.tiny", "vcpus", 1, "ram_mb", 64,
                  "disk_gb", 1, "ephemeral_gb", 0, "swap_mb", 0,
        "image", "id", "6c5a8bb0-7d1c-4a39-9a3e-1f0e3c2d4b5a", "name", "bench-image",
        "vm_state", "building", "task_state", "scheduling", "power_state", "nostate",
        "host", "node", "fault",
        "created", now, "created_ms", (json_int_t) now_ms, "updated", now,
        "updated_ms", (json_int_t) now_ms,
        "launched_at", "deleted", 0, "deleted_at",
        "reservation_id", "r-0b0c0d0e", "launch_index", 0, "availability_zone", "nova",
        "metadata", "request_id", "req-6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9");
    if (rec && active) {
        json_object_set_new (rec, "vm_state", json_string ("active"));
        json_object_set_new (rec, "task_state", json_null ());
        json_object_set_new (rec, "power_state", json_string ("running"));
        json_object_set_new (rec, "host", json_string (host));
        json_object_set_new (rec, "node", json_string (host));
        json_object_set_new (rec, "launched_at", json_string (now));
    }
    return rec;
}

#endif
