/*  zv_sched.c: Nova's filter scheduler over an array of host states.

    Hosts are kept as a C array of small structs parsed once per refresh
    (names, inventories and aggregate metadata in one arena freed at the
    next refresh), so a decision costs O(hosts x filters) of compares, no
    json.  Resource classes are interned to small integers (VCPU, MEMORY_MB
    and DISK_GB first) that live as long as the scheduler.  What a request
    says about particular hosts (ignore_hosts, same_host, different_host,
    force_host, the group's members per host) is marked on the hosts
    through a name index before filtering, so no filter scans a list.
    Weighing follows Nova: each weigher's raw value is normalised to
    [0, 1] over the hosts that passed, multiplied by its multiplier, and
    summed; the choice is drawn among the best host_subset_size.         */

#include "actors/scheduler/zv_sched.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  Arena: everything parsed from one refresh, freed at the next.

typedef struct _s_chunk_t {
    struct _s_chunk_t *next;
    size_t used, size;
    max_align_t data [];
} s_chunk_t;

#define S_CHUNK_SIZE (64 * 1024)

static void *
s_arena_alloc (s_chunk_t **arena_p, size_t size)
{
    size = (size + sizeof (max_align_t) - 1) / sizeof (max_align_t) * sizeof (max_align_t);
    s_chunk_t *chunk = *arena_p;
    if (!chunk || chunk->size - chunk->used < size) {
        size_t capacity = size > S_CHUNK_SIZE ? size : S_CHUNK_SIZE;
        chunk = (s_chunk_t *) malloc (sizeof (s_chunk_t) + capacity);
        if (!chunk)
            abort ();
        chunk->next = *arena_p;
        chunk->used = 0;
        chunk->size = capacity;
        *arena_p = chunk;
    }
    void *memory = (char *) chunk->data + chunk->used;
    chunk->used += size;
    return memory;
}

static char *
s_arena_strndup (s_chunk_t **arena_p, const char *text, size_t length)
{
    char *copy = (char *) s_arena_alloc (arena_p, length + 1);
    memcpy (copy, text, length);
    copy [length] = '\0';
    return copy;
}

static void
s_arena_free (s_chunk_t **arena_p)
{
    while (*arena_p) {
        s_chunk_t *next = (*arena_p)->next;
        free (*arena_p);
        *arena_p = next;
    }
}

//  Host and request views

enum { S_VCPU, S_MEMORY_MB, S_DISK_GB, S_STANDARD_CLASSES };

typedef struct {
    int cls;
    double total, reserved, min_unit, max_unit, step_size, ratio, used;
} s_inventory_t;

typedef struct {
    const char *key, *value;
} s_meta_t;

//  What a request says about one host, marked before filtering.
#define S_MARK_IGNORED   1u
#define S_MARK_SAME      2u
#define S_MARK_DIFFERENT 4u
#define S_MARK_FORCED    8u
#define S_MARK_REQUESTED 64u

typedef struct {
    const char *name;
    bool up, enabled;
    s_inventory_t *inventories;
    size_t inventory_count;
    const char *hypervisor_type;    //  lower case; NULL: not advertised
    const char *cpu_arch;           //  canonical; NULL: not advertised
    const char *availability_zone;
    s_meta_t *metadata;             //  union over the aggregates, one pair per listed value
    size_t metadata_count;
    double num_instances, failed_builds;
    size_t same_name_next;          //  next host of the same name, or SIZE_MAX
    //  Per request
    unsigned marks;
    double group_members;
    double weight;
    bool passed;
} s_host_t;

typedef struct {
    int cls;                        //  -1: a class no host has
    double amount;
} s_amount_t;

//  Nova's extra_specs_ops: a requirement is "<op> words..." or a plain value.
typedef enum {
    S_OP_PLAIN,
    S_OP_OR,
    S_OP_IN,
    S_OP_ALL_IN,
    S_OP_NUM_AT_LEAST,              //  "=": numeric >=, as Nova
    S_OP_NUM_EQ,
    S_OP_NUM_NE,
    S_OP_NUM_GE,
    S_OP_NUM_LE,
    S_OP_STR_EQ,
    S_OP_STR_NE,
    S_OP_STR_LT,
    S_OP_STR_LE,
    S_OP_STR_GT,
    S_OP_STR_GE,
    S_OP_COUNT
} s_op_t;

static const struct {
    const char *word;
    s_op_t op;
} s_ops [] = {
    { "<or>", S_OP_OR }, { "<in>", S_OP_IN }, { "<all-in>", S_OP_ALL_IN },
    { "=", S_OP_NUM_AT_LEAST }, { "==", S_OP_NUM_EQ }, { "!=", S_OP_NUM_NE },
    { ">=", S_OP_NUM_GE }, { "<=", S_OP_NUM_LE },
    { "s==", S_OP_STR_EQ }, { "s!=", S_OP_STR_NE }, { "s<", S_OP_STR_LT },
    { "s<=", S_OP_STR_LE }, { "s>", S_OP_STR_GT }, { "s>=", S_OP_STR_GE },
};

typedef struct {
    const char *key;                //  without its aggregate_instance_extra_specs: scope
    const char *requirement;
    s_op_t op;
    char **words;                   //  after the operator
    size_t word_count;
} s_extra_spec_t;

typedef enum {
    S_GROUP_NONE,
    S_GROUP_AFFINITY,
    S_GROUP_ANTI_AFFINITY,
    S_GROUP_SOFT_AFFINITY,
    S_GROUP_SOFT_ANTI_AFFINITY,
    S_GROUP_COUNT
} s_policy_t;

typedef struct {
    s_amount_t *amounts;
    size_t amount_count;
    double standard [S_STANDARD_CLASSES];   //  amounts of VCPU, MEMORY_MB, DISK_GB
    const char *project_id;
    const char *availability_zone;  //  NULL: any
    bool forced;
    bool requested;                 //  only the requested host may pass (filters still run)
    s_extra_spec_t *extra_specs;
    size_t extra_spec_count;
    const char *image_arch, *image_hv_type, *image_vm_mode;     //  canonical; NULL: absent
    s_policy_t policy;
    double max_server_per_host;
    bool group_has_hosts;
    bool same_host;                 //  a same_host hint was given
    double max_instances_per_host;
    s_chunk_t *arena;               //  the request's own copies
} s_request_t;

static const s_inventory_t *
s_inventory (const s_host_t *host, int cls)
{
    for (size_t index = 0; index < host->inventory_count; index++)
        if (host->inventories [index].cls == cls)
            return &host->inventories [index];
    return NULL;
}

static double
s_capacity (const s_inventory_t *inventory)
{
    return (inventory->total - inventory->reserved) * inventory->ratio;
}

//  Placement's test of one requested amount against one provider.
static bool
s_fits (const s_host_t *host, int cls, double amount)
{
    if (amount <= 0)
        return true;
    const s_inventory_t *inventory = cls >= 0 ? s_inventory (host, cls) : NULL;
    if (!inventory)
        return false;
    if (amount < inventory->min_unit || amount > inventory->max_unit)
        return false;
    //  Most classes step by 1: skip the division for them (a hot path).
    if (inventory->step_size > 1 && fmod (amount, inventory->step_size) != 0)
        return false;
    return inventory->used + amount <= s_capacity (inventory);
}

//  Filters

typedef bool (s_filter_fn) (const s_host_t *host, const s_request_t *request);

static bool
s_compute_filter (const s_host_t *host, const s_request_t *request)
{
    (void) request;
    return host->up && host->enabled;
}

static bool
s_placement_filter (const s_host_t *host, const s_request_t *request)
{
    for (size_t index = 0; index < request->amount_count; index++)
        if (!s_fits (host, request->amounts [index].cls, request->amounts [index].amount))
            return false;
    return true;
}

static bool
s_core_filter (const s_host_t *host, const s_request_t *request)
{
    return s_fits (host, S_VCPU, request->standard [S_VCPU]);
}

static bool
s_ram_filter (const s_host_t *host, const s_request_t *request)
{
    return s_fits (host, S_MEMORY_MB, request->standard [S_MEMORY_MB]);
}

static bool
s_disk_filter (const s_host_t *host, const s_request_t *request)
{
    return s_fits (host, S_DISK_GB, request->standard [S_DISK_GB]);
}

static bool
s_availability_zone_filter (const s_host_t *host, const s_request_t *request)
{
    return !request->availability_zone
        || strcmp (host->availability_zone, request->availability_zone) == 0;
}

static bool
s_number (const char *text, double *number_p)
{
    char *end = NULL;
    *number_p = strtod (text, &end);
    return end != text && *end == '\0' && !isnan (*number_p);
}

//  Nova's extra_specs_ops.match of one aggregate value against a requirement.
static bool
s_spec_match (const char *value, const s_extra_spec_t *spec)
{
    double have, want;
    const char *word = spec->word_count ? spec->words [0] : NULL;
    switch (spec->op) {
        case S_OP_PLAIN:
            return strcmp (value, spec->requirement) == 0;
        case S_OP_OR:
            //  "<or> v1 <or> v2": the values are every other word.
            for (size_t index = 0; index < spec->word_count; index += 2)
                if (strcmp (spec->words [index], value) == 0)
                    return true;
            return false;
        case S_OP_IN:
            return word && strstr (value, word);
        case S_OP_ALL_IN:
            for (size_t index = 0; index < spec->word_count; index++)
                if (!strstr (value, spec->words [index]))
                    return false;
            return spec->word_count > 0;
        case S_OP_NUM_AT_LEAST:
        case S_OP_NUM_GE:
            return word && s_number (value, &have) && s_number (word, &want) && have >= want;
        case S_OP_NUM_EQ:
            return word && s_number (value, &have) && s_number (word, &want) && have == want;
        case S_OP_NUM_NE:
            return word && s_number (value, &have) && s_number (word, &want) && have != want;
        case S_OP_NUM_LE:
            return word && s_number (value, &have) && s_number (word, &want) && have <= want;
        case S_OP_STR_EQ:
            return word && strcmp (value, word) == 0;
        case S_OP_STR_NE:
            return word && strcmp (value, word) != 0;
        case S_OP_STR_LT:
            return word && strcmp (value, word) < 0;
        case S_OP_STR_LE:
            return word && strcmp (value, word) <= 0;
        case S_OP_STR_GT:
            return word && strcmp (value, word) > 0;
        case S_OP_STR_GE:
            return word && strcmp (value, word) >= 0;
        case S_OP_COUNT:
            break;
    }
    return false;
}

static bool
s_aggregate_instance_extra_specs_filter (const s_host_t *host, const s_request_t *request)
{
    for (size_t index = 0; index < request->extra_spec_count; index++) {
        const s_extra_spec_t *spec = &request->extra_specs [index];
        bool matched = false;
        for (size_t meta = 0; meta < host->metadata_count && !matched; meta++)
            matched = strcmp (host->metadata [meta].key, spec->key) == 0
                   && s_spec_match (host->metadata [meta].value, spec);
        if (!matched)
            return false;
    }
    return true;
}

static bool
s_aggregate_multi_tenancy_isolation (const s_host_t *host, const s_request_t *request)
{
    bool isolated = false;
    for (size_t meta = 0; meta < host->metadata_count; meta++) {
        if (strncmp (host->metadata [meta].key, "filter_tenant_id", 16) != 0)
            continue;
        isolated = true;
        if (request->project_id && strcmp (host->metadata [meta].value, request->project_id) == 0)
            return true;
    }
    return !isolated;
}

static bool
s_same_hv_type (const char *image, const char *host)
{
    //  A QEMU host runs both TCG ("qemu") and KVM ("kvm") guests, as
    //  libvirt advertises both domain types for it.
    bool image_qemu = strcmp (image, "qemu") == 0 || strcmp (image, "kvm") == 0;
    bool host_qemu = strcmp (host, "qemu") == 0 || strcmp (host, "kvm") == 0;
    return image_qemu ? host_qemu : strcmp (image, host) == 0;
}

static bool
s_image_properties_filter (const s_host_t *host, const s_request_t *request)
{
    //  What the host record does not give is not judged (a missing key is
    //  neutral), where Nova refuses a host that advertises nothing: host
    //  records from before cpu_arch and hypervisor_type keep scheduling.
    if (request->image_arch && host->cpu_arch && strcmp (request->image_arch, host->cpu_arch) != 0)
        return false;
    if (request->image_hv_type && host->hypervisor_type
    &&  !s_same_hv_type (request->image_hv_type, host->hypervisor_type))
        return false;
    //  Every zova host runs hardware-virtualised guests only.
    return !request->image_vm_mode || strcmp (request->image_vm_mode, "hvm") == 0;
}

static bool
s_server_group_affinity_filter (const s_host_t *host, const s_request_t *request)
{
    if (request->policy != S_GROUP_AFFINITY || !request->group_has_hosts)
        return true;
    return host->group_members > 0;
}

static bool
s_server_group_anti_affinity_filter (const s_host_t *host, const s_request_t *request)
{
    if (request->policy != S_GROUP_ANTI_AFFINITY)
        return true;
    return host->group_members < request->max_server_per_host;
}

static bool
s_same_host_filter (const s_host_t *host, const s_request_t *request)
{
    return !request->same_host || (host->marks & S_MARK_SAME);
}

static bool
s_different_host_filter (const s_host_t *host, const s_request_t *request)
{
    (void) request;
    return !(host->marks & S_MARK_DIFFERENT);
}

static bool
s_num_instances_filter (const s_host_t *host, const s_request_t *request)
{
    return host->num_instances < request->max_instances_per_host;
}

//  Resource-fit filters still run for a forced host: placement claims
//  against a forced host too.
static const struct {
    const char *name;
    s_filter_fn *fn;
    bool resource_fit;
} s_filters [] = {
    { "ComputeFilter",                      s_compute_filter,                        false },
    { "PlacementFilter",                    s_placement_filter,                      true },
    { "CoreFilter",                         s_core_filter,                           true },
    { "RamFilter",                          s_ram_filter,                            true },
    { "DiskFilter",                         s_disk_filter,                           true },
    { "AvailabilityZoneFilter",             s_availability_zone_filter,              false },
    { "AggregateInstanceExtraSpecsFilter",  s_aggregate_instance_extra_specs_filter, false },
    { "AggregateMultiTenancyIsolation",     s_aggregate_multi_tenancy_isolation,     false },
    { "ImagePropertiesFilter",              s_image_properties_filter,               false },
    { "ServerGroupAffinityFilter",          s_server_group_affinity_filter,          false },
    { "ServerGroupAntiAffinityFilter",      s_server_group_anti_affinity_filter,     false },
    { "SameHostFilter",                     s_same_host_filter,                      false },
    { "DifferentHostFilter",                s_different_host_filter,                 false },
    { "NumInstancesFilter",                 s_num_instances_filter,                  false },
};
#define S_FILTER_COUNT (sizeof (s_filters) / sizeof (s_filters [0]))

//  Weighers: raw values, higher is better before the multiplier.

typedef double (s_weigher_fn) (const s_host_t *host, const s_request_t *request);

static double
s_free (const s_host_t *host, int cls)
{
    const s_inventory_t *inventory = s_inventory (host, cls);
    return inventory ? s_capacity (inventory) - inventory->used : 0;
}

static double
s_ram_weigher (const s_host_t *host, const s_request_t *request)
{
    (void) request;
    return s_free (host, S_MEMORY_MB);
}

static double
s_cpu_weigher (const s_host_t *host, const s_request_t *request)
{
    (void) request;
    return s_free (host, S_VCPU);
}

static double
s_disk_weigher (const s_host_t *host, const s_request_t *request)
{
    (void) request;
    return s_free (host, S_DISK_GB);
}

static double
s_build_failure_weigher (const s_host_t *host, const s_request_t *request)
{
    (void) request;
    return -host->failed_builds;
}

static double
s_soft_affinity_weigher (const s_host_t *host, const s_request_t *request)
{
    return request->policy == S_GROUP_SOFT_AFFINITY ? host->group_members : 0;
}

static double
s_soft_anti_affinity_weigher (const s_host_t *host, const s_request_t *request)
{
    return request->policy == S_GROUP_SOFT_ANTI_AFFINITY ? -host->group_members : 0;
}

static const struct {
    const char *name;
    s_weigher_fn *fn;
    size_t multiplier;              //  offset in zv_sched_options_t
} s_weighers [] = {
    { "RAMWeigher",  s_ram_weigher,  offsetof (zv_sched_options_t, ram_weight_multiplier) },
    { "CPUWeigher",  s_cpu_weigher,  offsetof (zv_sched_options_t, cpu_weight_multiplier) },
    { "DiskWeigher", s_disk_weigher, offsetof (zv_sched_options_t, disk_weight_multiplier) },
    { "BuildFailureWeigher", s_build_failure_weigher,
      offsetof (zv_sched_options_t, build_failure_weight_multiplier) },
    { "ServerGroupSoftAffinityWeigher", s_soft_affinity_weigher,
      offsetof (zv_sched_options_t, soft_affinity_weight_multiplier) },
    { "ServerGroupSoftAntiAffinityWeigher", s_soft_anti_affinity_weigher,
      offsetof (zv_sched_options_t, soft_anti_affinity_weight_multiplier) },
};
#define S_WEIGHER_COUNT (sizeof (s_weighers) / sizeof (s_weighers [0]))

struct _zv_sched_t {
    size_t filters [S_FILTER_COUNT];    //  rows of s_filters, in order
    size_t filter_count;
    double multipliers [S_WEIGHER_COUNT];
    int max_attempts;
    int host_subset_size;
    int max_instances_per_host;
    uint64_t random;
    char **classes;                     //  interned resource class names
    size_t class_count, class_capacity;
    s_host_t *hosts;
    size_t host_count;
    json_t *names;                      //  host name -> index of its first host
    s_chunk_t *arena;
    double *raw;                        //  scratch: one weigher's raw values
    char weighers [512];
};

void
zv_sched_options_defaults (zv_sched_options_t *options)
{
    *options = (zv_sched_options_t) {
        .enabled_filters = "ComputeFilter,AvailabilityZoneFilter,PlacementFilter,ImagePropertiesFilter,"
                           "ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,"
                           "DifferentHostFilter",
        .host_subset_size = 1,
        .max_attempts = 3,
        .max_instances_per_host = 50,
        .ram_weight_multiplier = 1.0,
        .cpu_weight_multiplier = 1.0,
        .disk_weight_multiplier = 1.0,
        .build_failure_weight_multiplier = 1000000.0,
        .soft_affinity_weight_multiplier = 1.0,
        .soft_anti_affinity_weight_multiplier = 1.0,
    };
}

static char s_known [1024];
static pthread_once_t s_known_once = PTHREAD_ONCE_INIT;

static void
s_known_build (void)
{
    size_t at = 0;
    for (size_t index = 0; index < S_FILTER_COUNT; index++)
        at += (size_t) snprintf (s_known + at, sizeof s_known - at, "%s%s", index ? ", " : "",
                                 s_filters [index].name);
}

const char *
zv_sched_known_filters (void)
{
    pthread_once (&s_known_once, s_known_build);
    return s_known;
}

static int
s_class (zv_sched_t *self, const char *name, bool add)
{
    for (size_t index = 0; index < self->class_count; index++)
        if (strcmp (self->classes [index], name) == 0)
            return (int) index;
    if (!add)
        return -1;
    if (self->class_count == self->class_capacity) {
        self->class_capacity = self->class_capacity ? self->class_capacity * 2 : 8;
        self->classes = (char **) realloc (self->classes, self->class_capacity * sizeof (char *));
    }
    self->classes [self->class_count] = strdup (name);
    return (int) self->class_count++;
}

zv_sched_t *
zv_sched_new (const zv_sched_options_t *options, char *errbuf, size_t errlen)
{
    zv_sched_t *self = (zv_sched_t *) calloc (1, sizeof (zv_sched_t));
    for (size_t weigher = 0; weigher < S_WEIGHER_COUNT; weigher++)
        self->multipliers [weigher] = *(const double *) ((const char *) options + s_weighers [weigher].multiplier);
    self->max_attempts = options->max_attempts > 0 ? options->max_attempts : 1;
    self->host_subset_size = options->host_subset_size > 0 ? options->host_subset_size : 1;
    self->max_instances_per_host = options->max_instances_per_host;
    zv_sched_set_seed (self, (uint64_t) time (NULL) ^ ((uint64_t) getpid () << 32) ^ (uint64_t) (uintptr_t) self);
    s_class (self, "VCPU", true);
    s_class (self, "MEMORY_MB", true);
    s_class (self, "DISK_GB", true);
    self->names = json_object ();

    char *list = strdup (options->enabled_filters ? options->enabled_filters : "");
    char *saveptr = NULL;
    for (char *token = strtok_r (list, ", \t", &saveptr); token; token = strtok_r (NULL, ", \t", &saveptr)) {
        size_t row;
        for (row = 0; row < S_FILTER_COUNT; row++)
            if (strcmp (s_filters [row].name, token) == 0)
                break;
        if (row == S_FILTER_COUNT) {
            snprintf (errbuf, errlen, "unknown filter '%s' in enabled_filters (known: %s)",
                      token, zv_sched_known_filters ());
            free (list);
            zv_sched_destroy (&self);
            return NULL;
        }
        //  A name given twice is one filter, in its first place.
        bool present = false;
        for (size_t have = 0; have < self->filter_count; have++)
            present |= self->filters [have] == row;
        if (!present)
            self->filters [self->filter_count++] = row;
    }
    free (list);

    size_t at = 0;
    for (size_t weigher = 0; weigher < S_WEIGHER_COUNT; weigher++)
        at += (size_t) snprintf (self->weighers + at, sizeof self->weighers - at, "%s%s=%g",
                                 weigher ? ", " : "", s_weighers [weigher].name, self->multipliers [weigher]);
    return self;
}

void
zv_sched_destroy (zv_sched_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_sched_t *self = *self_p;
    for (size_t index = 0; index < self->class_count; index++)
        free (self->classes [index]);
    free (self->classes);
    free (self->hosts);
    free (self->raw);
    json_decref (self->names);
    s_arena_free (&self->arena);
    free (self);
    *self_p = NULL;
}

void
zv_sched_set_seed (zv_sched_t *self, uint64_t seed)
{
    self->random = seed;
}

//  splitmix64: small, seedable, good enough to spread choices.
static uint64_t
s_random (zv_sched_t *self)
{
    uint64_t z = (self->random += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

const char *
zv_sched_describe_weighers (zv_sched_t *self)
{
    return self->weighers;
}

//  Parsing host records

static double
s_num (const json_t *object, const char *key, double dflt)
{
    json_t *value = json_object_get (object, key);
    return json_is_number (value) ? json_number_value (value) : dflt;
}

static const char *
s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  Metadata, extra specs and properties are strings, but a number is read
//  as its text rather than dropped.  NULL for anything else.
static const char *
s_text (const json_t *value, char *buf, size_t len)
{
    if (json_is_string (value))
        return json_string_value (value);
    if (json_is_integer (value))
        snprintf (buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value (value));
    else if (json_is_real (value))
        snprintf (buf, len, "%g", json_real_value (value));
    else
        return NULL;
    return buf;
}

static char *
s_lower (s_chunk_t **arena_p, const char *text)
{
    char *copy = s_arena_strndup (arena_p, text, strlen (text));
    for (char *at = copy; *at; at++)
        if (*at >= 'A' && *at <= 'Z')
            *at = (char) (*at - 'A' + 'a');
    return copy;
}

//  Nova's Architecture.canonicalize.
static const char *
s_canonical_arch (s_chunk_t **arena_p, const char *name)
{
    if (!name || !*name)
        return NULL;
    const char *lower = s_lower (arena_p, name);
    static const char *i686 [] = { "i386", "i486", "i586", "x86_32", "x86_32p" };
    for (size_t index = 0; index < sizeof i686 / sizeof i686 [0]; index++)
        if (strcmp (lower, i686 [index]) == 0)
            return "i686";
    return strcmp (lower, "amd64") == 0 ? "x86_64" : lower;
}

static const char *
s_canonical_hv_type (s_chunk_t **arena_p, const char *name)
{
    if (!name || !*name)
        return NULL;
    const char *lower = s_lower (arena_p, name);
    return strcmp (lower, "xapi") == 0 ? "xen" : lower;
}

static const char *
s_canonical_vm_mode (s_chunk_t **arena_p, const char *name)
{
    if (!name || !*name)
        return NULL;
    const char *lower = s_lower (arena_p, name);
    if (strcmp (lower, "hv") == 0 || strcmp (lower, "baremetal") == 0)
        return "hvm";
    return strcmp (lower, "pv") == 0 ? "xen" : lower;
}

static void
s_parse_inventories (zv_sched_t *self, s_host_t *host, const json_t *rec)
{
    const json_t *inventories = json_object_get (rec, "inventories");
    const json_t *usages = json_object_get (rec, "usages");
    if (json_is_object (inventories)) {
        host->inventories = (s_inventory_t *) s_arena_alloc (
            &self->arena, (json_object_size (inventories) + 1) * sizeof (s_inventory_t));
        const char *cls;
        json_t *inventory;
        json_object_foreach ((json_t *) inventories, cls, inventory) {
            if (!json_is_object (inventory))
                continue;
            host->inventories [host->inventory_count++] = (s_inventory_t) {
                .cls = s_class (self, cls, true),
                .total = s_num (inventory, "total", 0),
                .reserved = s_num (inventory, "reserved", 0),
                .min_unit = s_num (inventory, "min_unit", 1),
                .max_unit = s_num (inventory, "max_unit", INFINITY),
                .step_size = s_num (inventory, "step_size", 1),
                .ratio = s_num (inventory, "allocation_ratio", 1),
                .used = s_num (usages, cls, 0),
            };
        }
        return;
    }
    //  The flat fields of the first host_states: no max_unit, as before.
    host->inventories = (s_inventory_t *) s_arena_alloc (&self->arena, S_STANDARD_CLASSES * sizeof (s_inventory_t));
    host->inventory_count = S_STANDARD_CLASSES;
    host->inventories [S_VCPU] = (s_inventory_t) {
        S_VCPU, s_num (rec, "vcpus", 0), 0, 1, INFINITY, 1,
        s_num (rec, "cpu_allocation_ratio", 1), s_num (rec, "vcpus_used", 0) };
    host->inventories [S_MEMORY_MB] = (s_inventory_t) {
        S_MEMORY_MB, s_num (rec, "memory_mb", 0), s_num (rec, "reserved_host_memory_mb", 0), 1, INFINITY, 1,
        s_num (rec, "ram_allocation_ratio", 1), s_num (rec, "memory_mb_used", 0) };
    host->inventories [S_DISK_GB] = (s_inventory_t) {
        S_DISK_GB, s_num (rec, "local_gb", 0), s_num (rec, "reserved_host_disk_mb", 0) / 1024.0, 1, INFINITY, 1,
        s_num (rec, "disk_allocation_ratio", 1), s_num (rec, "local_gb_used", 0) };
}

//  The union of the aggregates' metadata, each comma-separated value its
//  own pair (Nova's aggregate_metadata_get_by_host); and the host's zone
//  when the record does not give it.
static void
s_parse_aggregates (zv_sched_t *self, s_host_t *host, const json_t *rec)
{
    const json_t *aggregates = json_object_get (rec, "aggregates");
    const char *zone = s_str (rec, "availability_zone");
    size_t pieces = 0;
    size_t index;
    json_t *aggregate;
    const char *key;
    json_t *value;
    char buf [64];
    json_array_foreach (aggregates, index, aggregate) {
        json_object_foreach (json_object_get (aggregate, "metadata"), key, value) {
            const char *text = s_text (value, buf, sizeof buf);
            for (; text; text = strchr (text, ','), text = text ? text + 1 : NULL)
                pieces++;
        }
        if (!zone || !*zone)
            zone = s_str (aggregate, "availability_zone");
    }
    host->availability_zone = s_arena_strndup (&self->arena, zone && *zone ? zone : "nova",
                                               strlen (zone && *zone ? zone : "nova"));
    if (!pieces)
        return;
    host->metadata = (s_meta_t *) s_arena_alloc (&self->arena, pieces * sizeof (s_meta_t));
    json_array_foreach (aggregates, index, aggregate) {
        json_object_foreach (json_object_get (aggregate, "metadata"), key, value) {
            const char *text = s_text (value, buf, sizeof buf);
            if (!text)
                continue;
            const char *stored_key = s_arena_strndup (&self->arena, key, strlen (key));
            while (true) {
                const char *comma = strchr (text, ',');
                size_t length = comma ? (size_t) (comma - text) : strlen (text);
                const char *start = text;
                while (length && (*start == ' ' || *start == '\t'))
                    start++, length--;
                while (length && (start [length - 1] == ' ' || start [length - 1] == '\t'))
                    length--;
                host->metadata [host->metadata_count++] = (s_meta_t) {
                    stored_key, s_arena_strndup (&self->arena, start, length) };
                if (!comma)
                    break;
                text = comma + 1;
            }
        }
    }
}

void
zv_sched_set_hosts (zv_sched_t *self, json_t **hosts_p)
{
    json_t *hosts = *hosts_p;
    *hosts_p = NULL;
    free (self->hosts);
    free (self->raw);
    s_arena_free (&self->arena);
    json_object_clear (self->names);
    self->host_count = json_array_size (hosts);
    self->hosts = (s_host_t *) calloc (self->host_count ? self->host_count : 1, sizeof (s_host_t));
    self->raw = (double *) calloc (self->host_count ? self->host_count : 1, sizeof (double));
    size_t index;
    json_t *rec;
    json_array_foreach (hosts, index, rec) {
        s_host_t *host = &self->hosts [index];
        const char *name = s_str (rec, "host");
        const char *state = s_str (rec, "state");
        const char *status = s_str (rec, "status");
        host->name = s_arena_strndup (&self->arena, name ? name : "", name ? strlen (name) : 0);
        host->up = state && strcmp (state, "up") == 0;
        host->enabled = !status || strcmp (status, "enabled") == 0;
        s_parse_inventories (self, host, rec);
        host->hypervisor_type = s_canonical_hv_type (&self->arena, s_str (rec, "hypervisor_type"));
        host->cpu_arch = s_canonical_arch (&self->arena, s_str (rec, "cpu_arch"));
        s_parse_aggregates (self, host, rec);
        host->num_instances = s_num (rec, "num_instances", 0);
        host->failed_builds = s_num (rec, "failed_builds", 0);
        //  Names are unique in the conductor's store; a repeated one is
        //  chained so that what names it reaches every copy.
        host->same_name_next = SIZE_MAX;
        json_t *first = json_object_get (self->names, host->name);
        if (first) {
            size_t last = (size_t) json_integer_value (first);
            while (self->hosts [last].same_name_next != SIZE_MAX)
                last = self->hosts [last].same_name_next;
            self->hosts [last].same_name_next = index;
        }
        else
            json_object_set_new (self->names, host->name, json_integer ((json_int_t) index));
    }
    json_decref (hosts);
}

size_t
zv_sched_host_count (zv_sched_t *self)
{
    return self->host_count;
}

//  Parsing a request

//  Mark every host called name; false when there is none.
static bool
s_mark (zv_sched_t *self, const char *name, unsigned mark, double members)
{
    json_t *first = name ? json_object_get (self->names, name) : NULL;
    if (!first)
        return false;
    for (size_t index = (size_t) json_integer_value (first); index != SIZE_MAX;
         index = self->hosts [index].same_name_next) {
        self->hosts [index].marks |= mark;
        self->hosts [index].group_members += members;
    }
    return true;
}

static void
s_mark_all (zv_sched_t *self, const json_t *names, unsigned mark)
{
    size_t index;
    json_t *name;
    json_array_foreach (names, index, name)
        s_mark (self, json_string_value (name), mark, 0);
}

static void
s_request_add (zv_sched_t *self, s_request_t *request, const char *cls, double amount)
{
    int id = s_class (self, cls, false);
    request->amounts [request->amount_count++] = (s_amount_t) { id, amount };
    if (id >= 0 && id < S_STANDARD_CLASSES)
        request->standard [id] += amount;
}

//  Flavor extra specs the AggregateInstanceExtraSpecsFilter reads: those
//  scoped aggregate_instance_extra_specs: and the unscoped ones (Nova).
static void
s_request_extra_specs (s_request_t *request, const json_t *extra_specs)
{
    static const char scope [] = "aggregate_instance_extra_specs:";
    request->extra_specs = (s_extra_spec_t *) s_arena_alloc (
        &request->arena, (json_object_size (extra_specs) + 1) * sizeof (s_extra_spec_t));
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) extra_specs, key, value) {
        char buf [64];
        const char *text = s_text (value, buf, sizeof buf);
        if (!text)
            continue;
        //  The iteration goes on from key: the scope is skipped in a copy.
        const char *name = key;
        if (strncmp (name, scope, sizeof scope - 1) == 0)
            name += sizeof scope - 1;
        else if (strchr (name, ':'))
            continue;
        s_extra_spec_t *spec = &request->extra_specs [request->extra_spec_count++];
        *spec = (s_extra_spec_t) { .key = name, .op = S_OP_PLAIN };
        spec->requirement = s_arena_strndup (&request->arena, text, strlen (text));
        //  Split on white space, as Python's str.split ().
        char *words = s_arena_strndup (&request->arena, text, strlen (text));
        spec->words = (char **) s_arena_alloc (&request->arena, (strlen (text) / 2 + 2) * sizeof (char *));
        char *saveptr = NULL;
        for (char *word = strtok_r (words, " \t\n\r\f\v", &saveptr); word;
             word = strtok_r (NULL, " \t\n\r\f\v", &saveptr))
            spec->words [spec->word_count++] = word;
        if (spec->word_count == 0)
            continue;
        for (size_t row = 0; row < sizeof s_ops / sizeof s_ops [0]; row++)
            if (strcmp (spec->words [0], s_ops [row].word) == 0) {
                spec->op = s_ops [row].op;
                spec->words++;
                spec->word_count--;
                break;
            }
    }
}

static void
s_request_group (zv_sched_t *self, s_request_t *request, const json_t *group)
{
    static const struct {
        const char *name;
        s_policy_t policy;
    } policies [] = {
        { "affinity", S_GROUP_AFFINITY }, { "anti-affinity", S_GROUP_ANTI_AFFINITY },
        { "soft-affinity", S_GROUP_SOFT_AFFINITY }, { "soft-anti-affinity", S_GROUP_SOFT_ANTI_AFFINITY },
    };
    if (!json_is_object (group))
        return;
    const char *policy = s_str (group, "policy");
    if (!policy)        //  the older form: a list of one policy
        policy = json_string_value (json_array_get (json_object_get (group, "policies"), 0));
    for (size_t row = 0; policy && row < sizeof policies / sizeof policies [0]; row++)
        if (strcmp (policy, policies [row].name) == 0)
            request->policy = policies [row].policy;
    //  Nova keeps rules as strings; a number is taken either way.
    json_t *limit = json_object_get (json_object_get (group, "rules"), "max_server_per_host");
    double number;
    if (json_is_number (limit))
        request->max_server_per_host = json_number_value (limit);
    else if (json_is_string (limit) && s_number (json_string_value (limit), &number))
        request->max_server_per_host = number;
    const json_t *hosts = json_object_get (group, "hosts");
    const char *name;
    json_t *members;
    json_object_foreach ((json_t *) hosts, name, members) {
        double count = s_num (hosts, name, 0);
        if (count > 0) {
            request->group_has_hosts = true;
            s_mark (self, name, 0, count);
        }
    }
    size_t index;
    json_array_foreach (hosts, index, members) {      //  Nova's list of member hosts
        request->group_has_hosts = true;
        s_mark (self, json_string_value (members), 0, 1);
    }
}

static void
s_request_parse (zv_sched_t *self, s_request_t *request, const json_t *spec, const json_t *ignore_hosts)
{
    memset (request, 0, sizeof (*request));
    request->max_server_per_host = 1;
    request->max_instances_per_host = self->max_instances_per_host;
    for (size_t index = 0; index < self->host_count; index++) {
        self->hosts [index].marks = 0;
        self->hosts [index].group_members = 0;
    }

    const json_t *resources = json_object_get (spec, "resources");
    if (json_is_object (resources)) {
        request->amounts = (s_amount_t *) s_arena_alloc (
            &request->arena, (json_object_size (resources) + 1) * sizeof (s_amount_t));
        const char *cls;
        json_t *amount;
        json_object_foreach ((json_t *) resources, cls, amount)
            if (json_is_number (amount))
                s_request_add (self, request, cls, json_number_value (amount));
    }
    else {
        request->amounts = (s_amount_t *) s_arena_alloc (&request->arena, S_STANDARD_CLASSES * sizeof (s_amount_t));
        s_request_add (self, request, "VCPU", s_num (spec, "vcpus", 0));
        s_request_add (self, request, "MEMORY_MB", s_num (spec, "ram_mb", 0));
        s_request_add (self, request, "DISK_GB", s_num (spec, "disk_gb", 0));
    }

    request->project_id = s_str (spec, "project_id");
    const char *zone = s_str (spec, "availability_zone");
    request->availability_zone = zone && *zone ? zone : NULL;
    const char *forced = s_str (spec, "force_host");
    if (forced && *forced) {
        request->forced = true;
        s_mark (self, forced, S_MARK_FORCED, 0);
    }
    //  A destination the caller asked for, checked by every filter (Nova's
    //  requested_destination), unlike a forced host.
    const char *requested = s_str (spec, "requested_host");
    if (requested && *requested) {
        request->requested = true;
        s_mark (self, requested, S_MARK_REQUESTED, 0);
    }

    s_request_extra_specs (request, json_object_get (json_object_get (spec, "flavor"), "extra_specs"));

    const json_t *properties = json_object_get (json_object_get (spec, "image"), "properties");
    const char *hv_type = s_str (properties, "img_hv_type");
    const char *vm_mode = s_str (properties, "hw_vm_mode");
    request->image_arch = s_canonical_arch (&request->arena, s_str (properties, "hw_architecture"));
    request->image_hv_type = s_canonical_hv_type (&request->arena,
                                                  hv_type ? hv_type : s_str (properties, "hypervisor_type"));
    request->image_vm_mode = s_canonical_vm_mode (&request->arena,
                                                  vm_mode ? vm_mode : s_str (properties, "vm_mode"));

    const json_t *same_host = json_object_get (spec, "same_host");
    request->same_host = json_array_size (same_host) > 0;
    s_mark_all (self, same_host, S_MARK_SAME);
    s_mark_all (self, json_object_get (spec, "different_host"), S_MARK_DIFFERENT);
    s_mark_all (self, ignore_hosts, S_MARK_IGNORED);
    s_request_group (self, request, json_object_get (spec, "group"));
}

//  Deciding

//  Filter and weigh every host; returns how many passed.
static size_t
s_rank (zv_sched_t *self, const s_request_t *request)
{
    size_t passed = 0;
    for (size_t index = 0; index < self->host_count; index++) {
        s_host_t *host = &self->hosts [index];
        host->passed = !(host->marks & S_MARK_IGNORED)
                    && (!request->forced || (host->marks & S_MARK_FORCED))
                    && (!request->requested || (host->marks & S_MARK_REQUESTED));
        for (size_t filter = 0; filter < self->filter_count && host->passed; filter++) {
            size_t row = self->filters [filter];
            if (!request->forced || s_filters [row].resource_fit)
                host->passed = s_filters [row].fn (host, request);
        }
        host->weight = 0;
        passed += host->passed;
    }
    for (size_t weigher = 0; weigher < S_WEIGHER_COUNT && passed; weigher++) {
        if (self->multipliers [weigher] == 0)
            continue;
        double low = 0, high = 0;
        bool first = true;
        for (size_t index = 0; index < self->host_count; index++) {
            if (!self->hosts [index].passed)
                continue;
            double raw = self->raw [index] = s_weighers [weigher].fn (&self->hosts [index], request);
            if (first || raw < low)
                low = raw;
            if (first || raw > high)
                high = raw;
            first = false;
        }
        if (!(high > low))
            continue;               //  all equal: Nova normalises them to 0
        for (size_t index = 0; index < self->host_count; index++) {
            s_host_t *host = &self->hosts [index];
            if (host->passed)
                host->weight += self->multipliers [weigher] * (self->raw [index] - low) / (high - low);
        }
    }
    return passed;
}

//  The choice takes its share of the host in the local view, as Nova's
//  HostState.consume_from_request does, and joins the request's group.
static void
s_consume (s_host_t *host, const s_request_t *request)
{
    for (size_t index = 0; index < request->amount_count; index++) {
        const s_amount_t *amount = &request->amounts [index];
        for (size_t at = 0; amount->cls >= 0 && at < host->inventory_count; at++)
            if (host->inventories [at].cls == amount->cls)
                host->inventories [at].used += amount->amount;
    }
    host->num_instances += 1;
    host->group_members += 1;
}

json_t *
zv_sched_select (zv_sched_t *self, const json_t *spec, int num_instances,
                 const json_t *ignore_hosts, zv_status_t *status_p)
{
    s_request_t request;
    s_request_parse (self, &request, spec, ignore_hosts);
    json_t *destinations = json_array ();
    int placed = 0;
    //  The subset to draw from and the alternates both come from the top.
    size_t want = (size_t) (self->max_attempts > self->host_subset_size
                            ? self->max_attempts : self->host_subset_size);
    size_t *best = (size_t *) calloc (want, sizeof (size_t));
    for (int instance = 0; instance < num_instances; instance++) {
        json_t *hosts = json_array ();
        if (s_rank (self, &request)) {
            //  Partial selection of the top hosts by weight; ties keep
            //  the order of the host states.
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
            size_t subset = found < (size_t) self->host_subset_size ? found : (size_t) self->host_subset_size;
            size_t pick = subset > 1 ? (size_t) (s_random (self) % subset) : 0;
            json_array_append_new (hosts, json_string (self->hosts [best [pick]].name));
            for (size_t rank = 0; rank < found && json_array_size (hosts) < (size_t) self->max_attempts; rank++)
                if (rank != pick)
                    json_array_append_new (hosts, json_string (self->hosts [best [rank]].name));
            s_consume (&self->hosts [best [pick]], &request);
            request.group_has_hosts = true;
            placed++;
        }
        json_array_append_new (destinations, hosts);
    }
    free (best);
    s_arena_free (&request.arena);
    if (!placed) {
        json_decref (destinations);
        *status_p = ZV_ENOVALIDHOST;
        return NULL;
    }
    *status_p = ZV_OK;
    return destinations;
}
