/*  zv_sched.c: filters and weighers over an array of host states.

    Hosts are kept as a C array of small structs parsed once per refresh,
    so a decision costs O(hosts x filters) of integer compares, no json.
    Weighing follows Nova: each weigher's raw value is normalised to [0, 1]
    over the hosts that passed, multiplied by its multiplier, and summed.  */

#include "zv_sched.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name [256];
    bool up, enabled;
    double vcpus, vcpus_used, cpu_ratio;
    double memory_mb, memory_mb_used, ram_ratio, reserved_mb;
    double local_gb, local_gb_used, disk_ratio, reserved_gb;
    double weight;
    bool passed;
} s_host_t;

typedef struct {
    double vcpus, ram_mb, disk_gb;
} s_request_t;

typedef bool (s_filter_fn) (const s_host_t *host, const s_request_t *request);

static bool
s_compute_filter (const s_host_t *host, const s_request_t *request)
{
    (void) request;
    return host->up && host->enabled;
}

static bool
s_core_filter (const s_host_t *host, const s_request_t *request)
{
    return host->vcpus_used + request->vcpus <= host->vcpus * host->cpu_ratio;
}

static bool
s_ram_filter (const s_host_t *host, const s_request_t *request)
{
    return host->memory_mb_used + request->ram_mb <= (host->memory_mb - host->reserved_mb) * host->ram_ratio;
}

static bool
s_disk_filter (const s_host_t *host, const s_request_t *request)
{
    return host->local_gb_used + request->disk_gb <= (host->local_gb - host->reserved_gb) * host->disk_ratio;
}

static const struct {
    const char *name;
    s_filter_fn *fn;
} s_filters [] = {
    { "ComputeFilter", s_compute_filter },
    { "CoreFilter",    s_core_filter },
    { "RamFilter",     s_ram_filter },
    { "DiskFilter",    s_disk_filter },
};
#define S_FILTER_COUNT (sizeof (s_filters) / sizeof (s_filters [0]))

typedef double (s_weigher_fn) (const s_host_t *host);

static double
s_ram_weigher (const s_host_t *host)
{
    return (host->memory_mb - host->reserved_mb) * host->ram_ratio - host->memory_mb_used;
}

static const struct {
    const char *name;
    s_weigher_fn *fn;
} s_weighers [] = {
    { "RAMWeigher", s_ram_weigher },
};
#define S_WEIGHER_COUNT (sizeof (s_weighers) / sizeof (s_weighers [0]))

struct _zv_sched_t {
    s_filter_fn *filters [S_FILTER_COUNT];
    size_t filter_count;
    double multipliers [S_WEIGHER_COUNT];
    int max_attempts;
    s_host_t *hosts;
    size_t host_count;
};

const char *
zv_sched_known_filters (void)
{
    static char names [512];
    if (!*names)
        for (size_t index = 0; index < S_FILTER_COUNT; index++) {
            strcat (names, index ? ", " : "");
            strcat (names, s_filters [index].name);
        }
    return names;
}

zv_sched_t *
zv_sched_new (const char *enabled_filters, double ram_weight_multiplier, int max_attempts,
              char *errbuf, size_t errlen)
{
    zv_sched_t *self = (zv_sched_t *) calloc (1, sizeof (zv_sched_t));
    self->multipliers [0] = ram_weight_multiplier;
    self->max_attempts = max_attempts > 0 ? max_attempts : 1;
    char *list = strdup (enabled_filters ? enabled_filters : "");
    char *saveptr = NULL;
    for (char *token = strtok_r (list, ", \t", &saveptr); token; token = strtok_r (NULL, ", \t", &saveptr)) {
        size_t index;
        for (index = 0; index < S_FILTER_COUNT; index++)
            if (strcmp (s_filters [index].name, token) == 0)
                break;
        if (index == S_FILTER_COUNT) {
            snprintf (errbuf, errlen, "unknown filter '%s' in [scheduler] enabled_filters (known: %s)",
                      token, zv_sched_known_filters ());
            free (list);
            free (self);
            return NULL;
        }
        //  A name given twice is one filter, in its first place.
        bool present = false;
        for (size_t have = 0; have < self->filter_count; have++)
            present |= self->filters [have] == s_filters [index].fn;
        if (!present)
            self->filters [self->filter_count++] = s_filters [index].fn;
    }
    free (list);
    return self;
}

void
zv_sched_destroy (zv_sched_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->hosts);
    free (*self_p);
    *self_p = NULL;
}

static double
s_num (const json_t *object, const char *key, double dflt)
{
    json_t *value = json_object_get (object, key);
    return json_is_number (value) ? json_number_value (value) : dflt;
}

void
zv_sched_set_hosts (zv_sched_t *self, json_t **hosts_p)
{
    json_t *hosts = *hosts_p;
    *hosts_p = NULL;
    free (self->hosts);
    self->host_count = json_array_size (hosts);
    self->hosts = (s_host_t *) calloc (self->host_count ? self->host_count : 1, sizeof (s_host_t));
    size_t index;
    json_t *rec;
    json_array_foreach (hosts, index, rec) {
        s_host_t *host = &self->hosts [index];
        const char *name = json_string_value (json_object_get (rec, "host"));
        const char *state = json_string_value (json_object_get (rec, "state"));
        const char *status = json_string_value (json_object_get (rec, "status"));
        snprintf (host->name, sizeof host->name, "%s", name ? name : "");
        host->up = state && strcmp (state, "up") == 0;
        host->enabled = !status || strcmp (status, "enabled") == 0;
        host->vcpus = s_num (rec, "vcpus", 0);
        host->vcpus_used = s_num (rec, "vcpus_used", 0);
        host->cpu_ratio = s_num (rec, "cpu_allocation_ratio", 1);
        host->memory_mb = s_num (rec, "memory_mb", 0);
        host->memory_mb_used = s_num (rec, "memory_mb_used", 0);
        host->ram_ratio = s_num (rec, "ram_allocation_ratio", 1);
        host->reserved_mb = s_num (rec, "reserved_host_memory_mb", 0);
        host->local_gb = s_num (rec, "local_gb", 0);
        host->local_gb_used = s_num (rec, "local_gb_used", 0);
        host->disk_ratio = s_num (rec, "disk_allocation_ratio", 1);
        host->reserved_gb = s_num (rec, "reserved_host_disk_mb", 0) / 1024.0;
    }
    json_decref (hosts);
}

size_t
zv_sched_host_count (zv_sched_t *self)
{
    return self->host_count;
}

static bool
s_ignored (const s_host_t *host, const json_t *ignore_hosts)
{
    size_t index;
    json_t *name;
    json_array_foreach (ignore_hosts, index, name)
        if (json_string_value (name) && strcmp (json_string_value (name), host->name) == 0)
            return true;
    return false;
}

//  Filter and weigh every host; returns how many passed.
static size_t
s_rank (zv_sched_t *self, const s_request_t *request, const json_t *ignore_hosts)
{
    size_t passed = 0;
    for (size_t index = 0; index < self->host_count; index++) {
        s_host_t *host = &self->hosts [index];
        host->passed = !s_ignored (host, ignore_hosts);
        for (size_t filter = 0; filter < self->filter_count && host->passed; filter++)
            host->passed = self->filters [filter] (host, request);
        host->weight = 0;
        passed += host->passed;
    }
    for (size_t weigher = 0; weigher < S_WEIGHER_COUNT && passed; weigher++) {
        double low = 0, high = 0;
        bool first = true;
        for (size_t index = 0; index < self->host_count; index++) {
            if (!self->hosts [index].passed)
                continue;
            double raw = s_weighers [weigher].fn (&self->hosts [index]);
            if (first || raw < low)
                low = raw;
            if (first || raw > high)
                high = raw;
            first = false;
        }
        for (size_t index = 0; index < self->host_count; index++) {
            s_host_t *host = &self->hosts [index];
            if (!host->passed)
                continue;
            double raw = s_weighers [weigher].fn (host);
            double normal = high > low ? (raw - low) / (high - low) : 0.0;
            host->weight += self->multipliers [weigher] * normal;
        }
    }
    return passed;
}

json_t *
zv_sched_select (zv_sched_t *self, const json_t *spec, int num_instances,
                 const json_t *ignore_hosts, zv_status_t *status_p)
{
    s_request_t request = { s_num (spec, "vcpus", 0), s_num (spec, "ram_mb", 0), s_num (spec, "disk_gb", 0) };
    json_t *destinations = json_array ();
    int placed = 0;
    size_t want = (size_t) self->max_attempts;
    size_t *best = (size_t *) calloc (want, sizeof (size_t));
    for (int instance = 0; instance < num_instances; instance++) {
        json_t *hosts = json_array ();
        if (s_rank (self, &request, ignore_hosts)) {
            //  Partial selection of the top max_attempts hosts by weight.
            size_t found = 0;
            for (size_t index = 0; index < self->host_count; index++) {
                if (!self->hosts [index].passed)
                    continue;
                size_t at = found < want ? found++ : want;
                if (at == want) {
                    if (self->hosts [index].weight <= self->hosts [best [want - 1]].weight)
                        continue;
                    at = want - 1;
                }
                while (at > 0 && self->hosts [best [at - 1]].weight < self->hosts [index].weight) {
                    best [at] = best [at - 1];
                    at--;
                }
                best [at] = index;
            }
            for (size_t rank = 0; rank < found; rank++)
                json_array_append_new (hosts, json_string (self->hosts [best [rank]].name));
            //  Consume the choice so the next instance sees it.
            s_host_t *chosen = &self->hosts [best [0]];
            chosen->vcpus_used += request.vcpus;
            chosen->memory_mb_used += request.ram_mb;
            chosen->local_gb_used += request.disk_gb;
            placed++;
        }
        json_array_append_new (destinations, hosts);
    }
    free (best);
    if (!placed) {
        json_decref (destinations);
        *status_p = ZV_ENOVALIDHOST;
        return NULL;
    }
    *status_p = ZV_OK;
    return destinations;
}
