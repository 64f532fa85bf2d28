/*  zv_sched.h: the scheduler's decision, apart from its actor.

    select_destinations as a pure function of host states and a request,
    as Nova's filter scheduler makes it: the enabled filters (one table,
    Nova's names, order and choice from [filter_scheduler] enabled_filters)
    drop hosts that cannot take the request, every weigher (one table, each
    scaled by its multiplier) ranks the rest, the host for each instance is
    picked at random among the best host_subset_size, and its resources are
    consumed in the local view (so one multi-create spreads as Nova's does),
    with up to max_attempts - 1 alternates after it.  The conductor's claim
    is what makes a choice real; this module only ranks.  Kept out of the
    actor so unit tests and the benchmark call it directly.

    A host record (conductor.host_states; unknown keys are ignored, a
    missing key takes the neutral default in brackets):
      host, state ["down"] "up"|"down", status ["enabled"],
      inventories {CLASS: {total [0], reserved [0], min_unit [1],
        max_unit [unbounded], step_size [1], allocation_ratio [1.0]}},
      usages {CLASS: n} [0],
      hypervisor_type, cpu_arch [not advertised: any image fits],
      availability_zone [the first aggregate's availability_zone, else "nova"],
      aggregates [{name, metadata {k: "v[,v...]"}, availability_zone}],
      num_instances [0], failed_builds [0].
    Without "inventories" the legacy flat fields are read instead: vcpus,
    vcpus_used, cpu_allocation_ratio, memory_mb, memory_mb_used,
    ram_allocation_ratio, reserved_host_memory_mb, local_gb, local_gb_used,
    disk_allocation_ratio, reserved_host_disk_mb (classes VCPU, MEMORY_MB,
    DISK_GB, no max_unit).

    A request spec (scheduler.select_destinations "spec"):
      resources {CLASS: n} (else built from legacy vcpus, ram_mb, disk_gb),
      project_id, availability_zone (absent or "" = any),
      force_host (only that host; of the filters only resource fit runs),
      flavor {extra_specs {k: v}}, image {properties {k: v}},
      same_host [host...], different_host [host...],
      group {policy "affinity"|"anti-affinity"|"soft-affinity"|
             "soft-anti-affinity", rules {max_server_per_host [1]},
             hosts {host: members already there}}.                       */

#ifndef ZV_SCHED_H
#define ZV_SCHED_H

#include <jansson.h>
#include "common/zv_common.h"

typedef struct _zv_sched_t zv_sched_t;

//  What a scheduler is built from ([filter_scheduler] and [scheduler]).
//  Start from zv_sched_options_defaults: a zero max_instances_per_host
//  would let NumInstancesFilter pass no host.
typedef struct {
    const char *enabled_filters;        //  comma-separated names, in order; NULL or "": none
    int host_subset_size;               //  pick at random among the best N (Nova's; >= 1)
    int max_attempts;                   //  the choice plus alternates
    int max_instances_per_host;         //  NumInstancesFilter
    double ram_weight_multiplier;       //  one per weigher; 0 turns it off
    double cpu_weight_multiplier;
    double disk_weight_multiplier;
    double build_failure_weight_multiplier;
    double soft_affinity_weight_multiplier;
    double soft_anti_affinity_weight_multiplier;
} zv_sched_options_t;

//  Fill options with Nova's defaults (the same as zova.conf.sample's).
void zv_sched_options_defaults (zv_sched_options_t *options);

//  New scheduler.  NULL with "unknown filter 'X' in enabled_filters
//  (known: ...)" in errbuf when a name is not in the filter table.  The
//  options are copied; the caller keeps its strings.
zv_sched_t *zv_sched_new (const zv_sched_options_t *options, char *errbuf, size_t errlen);
void zv_sched_destroy (zv_sched_t **self_p);

//  Seed the generator that host_subset_size draws from (seeded from the
//  clock at creation), so a test can replay a random choice.
void zv_sched_set_seed (zv_sched_t *self, uint64_t seed);

//  Replace the host states with an array of host records (above), parsed
//  once here.  Takes *hosts_p.
void zv_sched_set_hosts (zv_sched_t *self, json_t **hosts_p);
size_t zv_sched_host_count (zv_sched_t *self);

//  Choose hosts for num_instances instances of spec (above), never one of
//  ignore_hosts (array of names, may be NULL).  Returns a new array with
//  one array of host names per instance (first is the choice, then the
//  alternates; empty when that instance fits nowhere), or NULL with
//  ZV_ENOVALIDHOST in *status_p when not one instance fits anywhere.
json_t *zv_sched_select (zv_sched_t *self, const json_t *spec, int num_instances,
                         const json_t *ignore_hosts, zv_status_t *status_p);

//  Names of the filters in the table, comma separated (for messages/docs).
const char *zv_sched_known_filters (void);
//  Names of the weighers with their multipliers ("RAMWeigher=1, ..."), for
//  the actor's start-up log.  Borrowed until self is destroyed.
const char *zv_sched_describe_weighers (zv_sched_t *self);

#endif
