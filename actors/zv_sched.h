/*  zv_sched.h: the scheduler's decision, apart from its actor.

    select_destinations as a pure function of host states and a request:
    the enabled filters (one table, Nova's names) drop hosts that cannot
    take the request, the weighers (one table) rank the rest, the best host
    is chosen for each instance in turn and its resources consumed in the
    local view (so one multi-create spreads as Nova's does), and up to
    max_attempts - 1 alternates follow each choice.  The conductor's claim
    is what makes a choice real; this module only ranks.  Kept out of the
    actor so unit tests and the benchmark call it directly.                 */

#ifndef ZV_SCHED_H
#define ZV_SCHED_H

#include <jansson.h>
#include "../common/zv_common.h"

typedef struct _zv_sched_t zv_sched_t;

//  New scheduler with filters named in a comma-separated list.  NULL with
//  "unknown filter 'X' (known: ...)" in errbuf when a name is not in the table.
zv_sched_t *zv_sched_new (const char *enabled_filters, double ram_weight_multiplier,
                          int max_attempts, char *errbuf, size_t errlen);
void zv_sched_destroy (zv_sched_t **self_p);

//  Replace the host states (array of host records as the conductor's
//  host_states returns them: host, state, status, vcpus, vcpus_used,
//  memory_mb, memory_mb_used, local_gb, local_gb_used, ratios, reserved).
//  Takes *hosts_p.
void zv_sched_set_hosts (zv_sched_t *self, json_t **hosts_p);
size_t zv_sched_host_count (zv_sched_t *self);

//  Choose hosts for num_instances instances of spec {vcpus, ram_mb,
//  disk_gb}, never one of ignore_hosts (array of names, may be NULL).
//  Returns a new array with one array of host names per instance (first is
//  the choice, then alternates), or NULL with ZV_ENOVALIDHOST in *status_p
//  when not one instance fits anywhere.
json_t *zv_sched_select (zv_sched_t *self, const json_t *spec, int num_instances,
                         const json_t *ignore_hosts, zv_status_t *status_p);

//  Names of the filters in the table, comma separated (for messages/docs).
const char *zv_sched_known_filters (void);

#endif
