/*  zv_catalogue.c: every message type zova speaks, in one table.

    The table is grouped the way a reader looks for things: the client-facing
    api.* rows, the conductor rows they forward to (the same fields: who
    asks travels in the envelope's context, which only an api sets), then
    the internal rows.  Lookup is a
    binary search over a sorted index of row pointers, built once on first
    use (pthread_once), so the table's order stays readable and lookup stays
    O(log n) however many rows are added.  Field lists shared by an api row
    and its conductor row are one macro, so the two cannot drift apart.       */

#include "proto/zv_catalogue.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F_STR(n, req, mx)       { .name = n, .kind = ZV_FIELD_STR, .required = req, .max = mx }
#define F_UUID(n, req)          { .name = n, .kind = ZV_FIELD_UUID, .required = req }
#define F_INT(n, req, lo, hi)   { .name = n, .kind = ZV_FIELD_INT, .required = req, .min = lo, .max = hi }
#define F_BOOL(n)               { .name = n, .kind = ZV_FIELD_BOOL }
#define F_NUMBER(n)             { .name = n, .kind = ZV_FIELD_NUMBER }
#define F_MAP(n, req)           { .name = n, .kind = ZV_FIELD_MAP, .required = req }
#define F_ARRAY(n, req, mx)     { .name = n, .kind = ZV_FIELD_ARRAY, .required = req, .max = mx }
#define F_STR_ARRAY(n, req, mx) { .name = n, .kind = ZV_FIELD_STR_ARRAY, .required = req, .max = mx }
#define F_NAME(n, req)          { .name = n, .kind = ZV_FIELD_NAME, .required = req, .max = 255 }
#define F_STR_MAP(n, req, mx)   { .name = n, .kind = ZV_FIELD_STR_MAP, .required = req, .max = mx }

#define S_TB  INT64_C (1099511627776)

#define F_REF                   F_STR ("ref", true, 0)

#define F_FLAVOR_CREATE \
    F_STR ("name", true, 255), \
    F_INT ("vcpus", true, 1, 4096), \
    F_INT ("ram_mb", true, 1, 16777216), \
    F_INT ("disk_gb", true, 0, 1048576), \
    F_INT ("ephemeral_gb", false, 0, 1048576), \
    F_INT ("swap_mb", false, 0, 16777216), \
    F_STR ("id", false, 255), \
    F_BOOL ("is_public")

#define F_IMAGE_CREATE \
    F_STR ("name", true, 0), \
    F_STR ("disk_format", false, 16), \
    F_STR ("container_format", false, 16), \
    F_INT ("size", true, 0, S_TB), \
    F_STR ("checksum", false, 128), \
    F_MAP ("properties", false)

//  The image bytes travel in the payload frame.
#define F_IMAGE_UPLOAD \
    F_UUID ("id", true), \
    F_INT ("offset", true, 0, S_TB), \
    F_BOOL ("last")

//  A new name, properties to set (strings) or unset (null).
#define F_IMAGE_SET \
    F_REF, \
    F_STR ("name", false, 255), \
    F_MAP ("properties", false)

//  One chunk of an image's bytes for a user (image save), in the reply's
//  payload frame: the same chunks a compute host's cache asks for.
#define F_IMAGE_READ \
    F_REF, \
    F_INT ("offset", true, 0, S_TB), \
    F_INT ("length", true, 1, 4 * 1024 * 1024)

#define F_SERVER_CREATE \
    F_NAME ("name", true), \
    F_STR ("flavor", true, 0), \
    F_STR ("image", true, 0), \
    F_INT ("min_count", false, 1, 10000), \
    F_INT ("max_count", false, 1, 10000), \
    F_STR ("availability_zone", false, 0), \
    F_MAP ("hints", false), \
    F_STR_MAP ("metadata", false, 128)

#define F_SERVER_LIST \
    F_BOOL ("all_projects"), \
    F_BOOL ("deleted"), \
    F_STR ("host", false, 0), \
    F_STR ("status", false, 32), \
    F_INT ("limit", false, 1, 1000000), \
    F_BOOL ("names_only")

#define F_SERVICE_LIST \
    F_STR ("binary", false, 64), \
    F_STR ("host", false, 0)

#define F_AGGREGATE_CREATE \
    F_STR ("name", true, 255), \
    F_STR ("availability_zone", false, 255)

#define F_AGGREGATE_HOST \
    F_REF, \
    F_STR ("host", true, 0)

#define F_AGGREGATE_SET \
    F_REF, \
    F_STR ("availability_zone", false, 255), \
    F_MAP ("properties", false)

#define F_GROUP_CREATE \
    F_STR ("name", true, 255), \
    F_STR ("policy", true, 32), \
    F_MAP ("rules", false)

#define F_PROVIDER_SET \
    F_REF, \
    F_STR ("resource_class", true, 255), \
    F_NUMBER ("allocation_ratio"), \
    F_INT ("reserved", false, 0, INT64_MAX)

#define F_PROPERTIES_SET \
    F_REF, \
    F_MAP ("properties", true)

//  One user action on a server (Nova's POST /servers/{id}/action): the
//  action's name as the transition table has it (zv_state.c), and what
//  some actions take.
#define F_SERVER_ACTION \
    F_REF, \
    F_STR ("action", true, 32), \
    F_STR ("image", false, 0), \
    F_STR ("password", false, 255), \
    F_STR ("user", false, 64)

#define F_SERVICE_SET \
    F_STR ("host", true, 0), \
    F_STR ("binary", false, 64), \
    F_BOOL ("disabled"), \
    F_STR ("disabled_reason", false, 255), \
    F_BOOL ("forced_down")

//  Moves (Nova's migrate, resize, evacuate; openstackclient's words).  A
//  destination host is the scheduler's choice, or the caller's (checked
//  by the filters unless forced).
#define F_SERVER_MIGRATE \
    F_REF, \
    F_STR ("host", false, 255), \
    F_BOOL ("force"), \
    F_BOOL ("live"), \
    F_BOOL ("block_migration")

#define F_SERVER_RESIZE \
    F_REF, \
    F_STR ("flavor", true, 255)

#define F_SERVER_EVACUATE \
    F_REF, \
    F_STR ("host", false, 255), \
    F_BOOL ("force")

#define F_HOST_EVACUATE \
    F_STR ("host", true, 255), \
    F_STR ("target", false, 255)

//  Migration records: of one server (ref), or of the cloud filtered by
//  host, status and kind.
#define F_MIGRATION_LIST \
    F_STR ("ref", false, 0), \
    F_STR ("host", false, 255), \
    F_STR ("status", false, 32), \
    F_STR ("kind", false, 32)

#define F_MIGRATION_ONE \
    F_REF, \
    F_STR ("id", true, 64)

//  What a move tells a host: the migration record (id, uuid, kind, hosts,
//  flavors, what is known of it so far), the instance as it will be
//  there, and the image records its domain needs.
#define F_MOVE_CAST \
    F_MAP ("migration", true), \
    F_MAP ("instance", true), \
    F_MAP ("images", false)

//  One chunk of a file a move carries, read on the source (the payload
//  frame of the reply); asked by the destination, relayed by the
//  conductor.
#define F_MOVE_READ \
    F_UUID ("uuid", true), \
    F_UUID ("migration", true), \
    F_STR ("file", true, 64), \
    F_INT ("offset", true, 0, S_TB), \
    F_INT ("length", true, 1, 4 * 1024 * 1024)

//  One api row and the conductor row it forwards to: the same fields.
#define S_FORWARDED(verb, ...) \
    { .type = "api." verb, .kind = ZV_MSG_REQUEST, .forward = "conductor." verb, \
      .fields = { __VA_ARGS__ } }, \
    { .type = "conductor." verb, .kind = ZV_MSG_REQUEST, .fields = { __VA_ARGS__ } }

static const zv_msgdef_t s_catalogue [] = {
    S_FORWARDED ("flavor_create",   F_FLAVOR_CREATE),
    S_FORWARDED ("flavor_list"),
    S_FORWARDED ("flavor_show",     F_REF),
    S_FORWARDED ("flavor_delete",   F_REF),
    S_FORWARDED ("image_create",    F_IMAGE_CREATE),
    S_FORWARDED ("image_upload",    F_IMAGE_UPLOAD),
    S_FORWARDED ("image_list"),
    S_FORWARDED ("image_show",      F_REF),
    S_FORWARDED ("image_delete",    F_REF),
    S_FORWARDED ("image_set",       F_IMAGE_SET),
    S_FORWARDED ("image_read",      F_IMAGE_READ),
    S_FORWARDED ("server_create",   F_SERVER_CREATE),
    S_FORWARDED ("server_list",     F_SERVER_LIST),
    S_FORWARDED ("server_show",     F_REF),
    S_FORWARDED ("server_delete",   F_REF),
    S_FORWARDED ("server_events",   F_REF),
    S_FORWARDED ("server_action",   F_SERVER_ACTION),
    S_FORWARDED ("console_url",     F_REF, F_STR ("kind", false, 16)),
    S_FORWARDED ("console_log",     F_REF, F_INT ("lines", false, 1, 100000)),
    S_FORWARDED ("server_screenshot", F_REF),
    S_FORWARDED ("service_list",    F_SERVICE_LIST),
    S_FORWARDED ("service_set",     F_SERVICE_SET),
    S_FORWARDED ("flavor_set",      F_PROPERTIES_SET),
    S_FORWARDED ("aggregate_create", F_AGGREGATE_CREATE),
    S_FORWARDED ("aggregate_list"),
    S_FORWARDED ("aggregate_show",  F_REF),
    S_FORWARDED ("aggregate_delete", F_REF),
    S_FORWARDED ("aggregate_add_host", F_AGGREGATE_HOST),
    S_FORWARDED ("aggregate_remove_host", F_AGGREGATE_HOST),
    S_FORWARDED ("aggregate_set",   F_AGGREGATE_SET),
    S_FORWARDED ("zone_list",       F_BOOL ("long")),
    S_FORWARDED ("group_create",    F_GROUP_CREATE),
    S_FORWARDED ("group_list",      F_BOOL ("all_projects")),
    S_FORWARDED ("group_show",      F_REF),
    S_FORWARDED ("group_delete",    F_REF),
    S_FORWARDED ("provider_list"),
    S_FORWARDED ("provider_show",   F_REF),
    S_FORWARDED ("provider_set",    F_PROVIDER_SET),
    S_FORWARDED ("hypervisor_list"),
    S_FORWARDED ("hypervisor_show", F_REF),
    S_FORWARDED ("server_migrate",  F_SERVER_MIGRATE),
    S_FORWARDED ("server_resize",   F_SERVER_RESIZE),
    S_FORWARDED ("server_resize_confirm", F_REF),
    S_FORWARDED ("server_resize_revert", F_REF),
    S_FORWARDED ("server_evacuate", F_SERVER_EVACUATE),
    S_FORWARDED ("host_evacuate",   F_HOST_EVACUATE),
    S_FORWARDED ("migration_list",  F_MIGRATION_LIST),
    S_FORWARDED ("migration_show",  F_MIGRATION_ONE),
    S_FORWARDED ("migration_abort", F_MIGRATION_ONE),
    S_FORWARDED ("migration_force_complete", F_MIGRATION_ONE),

    //  Answered by the api itself.
    { .type = "api.ping", .kind = ZV_MSG_REQUEST },

    { .type = "conductor.service_heartbeat", .kind = ZV_MSG_REQUEST, .fields = {
        F_STR ("binary", true, 64),
        F_STR ("host", true, 0),
        F_MAP ("node", false),
        F_STR ("degraded", false, 1024),
        F_INT ("report_interval", false, 1, 86400) } },
    //  A host's report on one of its instances: an outcome of the task in
    //  flight (step, done, failed with error and reason), the power state
    //  it saw, facts only it knows; the state table decides what changes.
    { .type = "conductor.instance_update", .kind = ZV_MSG_REQUEST, .fields = {
        F_UUID ("uuid", true),
        F_ARRAY ("expected_task_state", false, 16),
        F_STR ("outcome", false, 16),
        F_STR ("power_state", false, 16),
        F_MAP ("facts", false),
        F_STR ("error", false, 32),
        F_STR ("reason", false, 4096),
        F_STR ("note", false, 1024),
        F_STR ("action_request_id", false, 64),
        F_MAP ("changes", false) } },
    { .type = "conductor.instance_destroyed", .kind = ZV_MSG_REQUEST, .fields = {
        F_UUID ("uuid", true),
        F_STR ("host", true, 0),
        F_STR ("action_request_id", false, 64) } },
    { .type = "conductor.compute_sync", .kind = ZV_MSG_REQUEST, .fields = {
        F_STR ("host", true, 0),
        F_ARRAY ("domains", true, 100000),
        F_BOOL ("partial"),
        F_INT ("started_ms", false, 0, INT64_MAX) } },
    //  A compute host fetches an image's bytes, one chunk per call, in the
    //  reply's payload frame.
    { .type = "conductor.image_download", .kind = ZV_MSG_REQUEST, .fields = {
        F_UUID ("id", true),
        F_INT ("offset", true, 0, S_TB),
        F_INT ("length", true, 1, 4 * 1024 * 1024) } },
    { .type = "conductor.host_states", .kind = ZV_MSG_REQUEST, .fields = {
        F_INT ("since", false, 0, INT64_MAX) } },
    { .type = "scheduler.select_destinations", .kind = ZV_MSG_REQUEST, .fields = {
        F_MAP ("spec", true),
        F_INT ("num_instances", true, 1, 10000),
        F_STR_ARRAY ("ignore_hosts", false, 1000) } },
    { .type = "compute.build_instance", .kind = ZV_MSG_CAST, .fields = {
        F_MAP ("instance", true),
        F_INT ("attempt", false, 1, 100),
        F_MAP ("images", false) } },
    { .type = "compute.terminate_instance", .kind = ZV_MSG_CAST, .fields = {
        F_UUID ("uuid", true),
        F_STR ("action_request_id", false, 64) } },
    { .type = "compute.sync_now", .kind = ZV_MSG_CAST },
    //  The console proxy checks a browser's token before connecting it.
    { .type = "conductor.console_authorize", .kind = ZV_MSG_REQUEST, .fields = {
        F_STR ("token", true, 128) } },
    //  Relayed by the conductor to an instance's host, answered there.
    { .type = "compute.console_log", .kind = ZV_MSG_REQUEST, .fields = {
        F_UUID ("uuid", true),
        F_INT ("lines", false, 1, 100000) } },
    { .type = "compute.screenshot", .kind = ZV_MSG_REQUEST, .fields = {
        F_UUID ("uuid", true) } },
    //  A user action the conductor admitted (task_state already moved);
    //  images: every image record the action needs, by id (the instance's,
    //  its kernel and ramdisk, a rescue image).
    { .type = "compute.instance_action", .kind = ZV_MSG_CAST, .fields = {
        F_MAP ("instance", true),
        F_STR ("action", true, 32),
        F_STR ("action_request_id", false, 64),
        F_MAP ("images", false),
        F_STR ("rescue_image", false, 64),
        F_STR ("password", false, 255),
        F_STR ("user", false, 64) } },
    //  A move's phases: the conductor casts one to the host it runs on
    //  (actors/conductor/moves.c has the table), the host answers with
    //  move_report.  Each is safe to cast again after a restart.
    { .type = "compute.move_prepare", .kind = ZV_MSG_CAST, .fields = { F_MOVE_CAST } },
    { .type = "compute.move_source", .kind = ZV_MSG_CAST, .fields = { F_MOVE_CAST } },
    { .type = "compute.move_finish", .kind = ZV_MSG_CAST, .fields = { F_MOVE_CAST } },
    { .type = "compute.move_confirm", .kind = ZV_MSG_CAST, .fields = { F_MOVE_CAST } },
    { .type = "compute.move_revert", .kind = ZV_MSG_CAST, .fields = { F_MOVE_CAST } },
    { .type = "compute.move_rebuild", .kind = ZV_MSG_CAST, .fields = { F_MOVE_CAST } },
    { .type = "compute.move_live_check", .kind = ZV_MSG_CAST, .fields = { F_MOVE_CAST } },
    { .type = "compute.move_live_pre", .kind = ZV_MSG_CAST, .fields = { F_MOVE_CAST } },
    { .type = "compute.move_live", .kind = ZV_MSG_CAST, .fields = { F_MOVE_CAST } },
    { .type = "compute.move_live_post", .kind = ZV_MSG_CAST, .fields = { F_MOVE_CAST } },
    //  What the user wants of a running live migration's job: abort,
    //  force_complete (not a phase: the source's job monitor acts on it).
    { .type = "compute.move_live_control", .kind = ZV_MSG_CAST, .fields = {
        F_UUID ("uuid", true),
        F_UUID ("migration", true),
        F_STR ("action", true, 32) } },
    { .type = "compute.move_read", .kind = ZV_MSG_REQUEST, .fields = { F_MOVE_READ } },
    { .type = "conductor.move_read", .kind = ZV_MSG_REQUEST, .fields = { F_MOVE_READ } },
    //  A host's report on a phase of a move: step (progress within the
    //  phase), done or failed, with what it learnt (facts: shared storage,
    //  the files to carry and their sha256, bytes copied, consoles).
    { .type = "conductor.move_report", .kind = ZV_MSG_REQUEST, .fields = {
        F_UUID ("uuid", true),
        F_UUID ("migration", true),
        F_STR ("phase", true, 32),
        F_STR ("outcome", true, 16),
        F_STR ("power_state", false, 16),
        F_MAP ("facts", false),
        F_STR ("error", false, 32),
        F_STR ("reason", false, 4096) } },
};

#define S_ROWS (sizeof (s_catalogue) / sizeof (s_catalogue [0]))

static const zv_msgdef_t *s_sorted [S_ROWS];
static pthread_once_t s_sorted_once = PTHREAD_ONCE_INIT;

static int
s_compare_rows (const void *a, const void *b)
{
    return strcmp ((*(const zv_msgdef_t * const *) a)->type,
                   (*(const zv_msgdef_t * const *) b)->type);
}

static void
s_sort_rows (void)
{
    for (size_t i = 0; i < S_ROWS; i++)
        s_sorted [i] = &s_catalogue [i];
    qsort (s_sorted, S_ROWS, sizeof (s_sorted [0]), s_compare_rows);
    for (size_t i = 1; i < S_ROWS; i++)
        assert (strcmp (s_sorted [i - 1]->type, s_sorted [i]->type) < 0);
}

const zv_msgdef_t *
zv_catalogue_find (const char *type)
{
    if (!type)
        return NULL;
    pthread_once (&s_sorted_once, s_sort_rows);
    size_t low = 0, high = S_ROWS;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int cmp = strcmp (type, s_sorted [mid]->type);
        if (cmp == 0)
            return s_sorted [mid];
        if (cmp < 0)
            high = mid;
        else
            low = mid + 1;
    }
    return NULL;
}

size_t
zv_catalogue_size (void)
{
    return S_ROWS;
}

const zv_msgdef_t *
zv_catalogue_at (size_t index)
{
    return index < S_ROWS ? &s_catalogue [index] : NULL;
}

//  Validation

static zv_status_t
s_reject (zv_status_t status, char *errbuf, size_t errlen, const char *format, ...)
{
    if (errbuf && errlen) {
        va_list args;
        va_start (args, format);
        vsnprintf (errbuf, errlen, format, args);
        va_end (args);
    }
    return status;
}

//  A string field: bounded, and without an embedded NUL that C readers of
//  json_string_value would silently cut at.
static zv_status_t
s_check_str (const char *name, const char *what, const json_t *value, size_t max,
             char *errbuf, size_t errlen)
{
    if (!json_is_string (value))
        return s_reject (ZV_EINVAL, errbuf, errlen, "field '%s': %sexpected string", name, what);
    size_t len = json_string_length (value);
    if (len > max)
        return s_reject (ZV_ETOOBIG, errbuf, errlen,
                         "field '%s': %sstring longer than %zu bytes", name, what, max);
    if (memchr (json_string_value (value), '\0', len))
        return s_reject (ZV_EINVAL, errbuf, errlen, "field '%s': %scontains NUL", name, what);
    return ZV_OK;
}

//  How deep value nests (a scalar is 1), counted no further than limit + 1.
static int
s_depth (const json_t *value, int limit)
{
    if (limit < 0)
        return 1;
    int deepest = 0;
    const char *key;
    const json_t *member;
    size_t index;
    if (json_is_object (value))
        json_object_foreach ((json_t *) value, key, member) {
            int depth = s_depth (member, limit - 1);
            deepest = depth > deepest ? depth : deepest;
        }
    else
    if (json_is_array (value))
        json_array_foreach (value, index, member) {
            int depth = s_depth (member, limit - 1);
            deepest = depth > deepest ? depth : deepest;
        }
    else
        return 1;
    return deepest + 1;
}

static zv_status_t
s_check_nesting (const char *name, const json_t *value, char *errbuf, size_t errlen)
{
    if (s_depth (value, ZV_FIELD_MAX_NESTING) > ZV_FIELD_MAX_NESTING)
        return s_reject (ZV_ETOOBIG, errbuf, errlen, "field '%s': nests deeper than %d levels",
                         name, ZV_FIELD_MAX_NESTING);
    return ZV_OK;
}

static zv_status_t
s_check_field (const zv_field_t *field, const json_t *value, char *errbuf, size_t errlen)
{
    const char *name = field->name;
    size_t max = field->max > 0 ? (size_t) field->max : 0;
    switch (field->kind) {
        case ZV_FIELD_STR: {
            zv_status_t status = s_check_str (name, "", value,
                                              max ? max : ZV_FIELD_DEFAULT_MAX, errbuf, errlen);
            if (status == ZV_OK && field->required && json_string_length (value) == 0)
                status = s_reject (ZV_EINVAL, errbuf, errlen,
                                   "field '%s': must not be empty", name);
            return status;
        }
        case ZV_FIELD_UUID:
            if (!json_is_string (value))
                return s_reject (ZV_EINVAL, errbuf, errlen, "field '%s': expected uuid", name);
            if (json_string_length (value) != ZV_UUID_LEN
            ||  !zv_uuid_valid (json_string_value (value)))
                return s_reject (ZV_EINVAL, errbuf, errlen, "field '%s': not a valid UUID", name);
            return ZV_OK;
        case ZV_FIELD_INT: {
            if (!json_is_integer (value))
                return s_reject (ZV_EINVAL, errbuf, errlen, "field '%s': expected integer", name);
            int64_t number = (int64_t) json_integer_value (value);
            if (number < field->min || number > field->max)
                return s_reject (ZV_EINVAL, errbuf, errlen,
                                 "field '%s': %" PRId64 " out of range [%" PRId64 ", %" PRId64 "]",
                                 name, number, field->min, field->max);
            return ZV_OK;
        }
        case ZV_FIELD_NUMBER:
            //  The decoder already refuses NaN and infinities.
            if (!json_is_number (value))
                return s_reject (ZV_EINVAL, errbuf, errlen, "field '%s': expected number", name);
            return ZV_OK;
        case ZV_FIELD_BOOL:
            if (!json_is_boolean (value))
                return s_reject (ZV_EINVAL, errbuf, errlen, "field '%s': expected boolean", name);
            return ZV_OK;
        case ZV_FIELD_MAP:
            if (!json_is_object (value))
                return s_reject (ZV_EINVAL, errbuf, errlen, "field '%s': expected map", name);
            return s_check_nesting (name, value, errbuf, errlen);
        case ZV_FIELD_NAME: {
            zv_status_t status = s_check_str (name, "", value, max ? max : ZV_FIELD_DEFAULT_MAX,
                                              errbuf, errlen);
            if (status == ZV_OK && (field->required || json_string_length (value) > 0)
            &&  !zv_text_printable (json_string_value (value), json_string_length (value)))
                status = s_reject (ZV_EINVAL, errbuf, errlen,
                                   "field '%s': must be printable text without leading or trailing "
                                   "spaces (no control characters, U+FFFE or U+FFFF)", name);
            return status;
        }
        case ZV_FIELD_STR_MAP: {
            if (!json_is_object (value))
                return s_reject (ZV_EINVAL, errbuf, errlen, "field '%s': expected a map of strings", name);
            size_t limit = max ? max : 1000;
            if (json_object_size (value) > limit)
                return s_reject (ZV_ETOOBIG, errbuf, errlen, "field '%s': more than %zu items", name, limit);
            const char *key;
            const json_t *member;
            json_object_foreach ((json_t *) value, key, member) {
                char what [300];
                size_t key_len = strlen (key);
                if (key_len == 0 || key_len > ZV_FIELD_DEFAULT_MAX)
                    return s_reject (ZV_EINVAL, errbuf, errlen,
                                     "field '%s': keys must be 1 to %d bytes", name, ZV_FIELD_DEFAULT_MAX);
                snprintf (what, sizeof what, "value of '%.64s': ", key);
                if (!json_is_string (member))
                    return s_reject (ZV_EINVAL, errbuf, errlen,
                                     "field '%s': %sexpected string (a flat map of strings)", name, what);
                zv_status_t status = s_check_str (name, what, member, ZV_FIELD_DEFAULT_MAX, errbuf, errlen);
                if (status != ZV_OK)
                    return status;
            }
            return ZV_OK;
        }
        case ZV_FIELD_ARRAY:
        case ZV_FIELD_STR_ARRAY: {
            bool of_strings = field->kind == ZV_FIELD_STR_ARRAY;
            if (!json_is_array (value))
                return s_reject (ZV_EINVAL, errbuf, errlen, "field '%s': expected %s", name,
                                 of_strings ? "array of strings" : "array");
            size_t limit = max ? max : 1000;
            if (json_array_size (value) > limit)
                return s_reject (ZV_ETOOBIG, errbuf, errlen,
                                 "field '%s': more than %zu items", name, limit);
            if (!of_strings && s_check_nesting (name, value, errbuf, errlen) != ZV_OK)
                return ZV_ETOOBIG;
            for (size_t i = 0; of_strings && i < json_array_size (value); i++) {
                char what [32];
                snprintf (what, sizeof what, "item %zu: ", i);
                zv_status_t status = s_check_str (name, what, json_array_get (value, i),
                                                  ZV_FIELD_DEFAULT_MAX, errbuf, errlen);
                if (status != ZV_OK)
                    return status;
            }
            return ZV_OK;
        }
        case ZV_FIELD_ANY:
            return s_check_nesting (name, value, errbuf, errlen);
        case ZV_FIELD_KIND_COUNT:
            break;
    }
    assert (false);             //  a catalogue row with a bad kind
    return s_reject (ZV_EINTERNAL, errbuf, errlen, "field '%s': unknown kind", name);
}

zv_status_t
zv_catalogue_validate (const zv_msgdef_t *def, const json_t *body,
                       char *errbuf, size_t errlen)
{
    if (errbuf && errlen)
        errbuf [0] = '\0';
    if (!def)
        return s_reject (ZV_EINVAL, errbuf, errlen, "unknown message type");
    if (!json_is_object (body))
        return s_reject (ZV_EINVAL, errbuf, errlen, "body is not a map");
    for (size_t i = 0; i < ZV_CATALOGUE_MAX_FIELDS && def->fields [i].name; i++) {
        const zv_field_t *field = &def->fields [i];
        const json_t *value = json_object_get (body, field->name);
        if (!value || json_is_null (value)) {
            if (field->required)
                return s_reject (ZV_EINVAL, errbuf, errlen, "missing field '%s'", field->name);
            continue;
        }
        zv_status_t status = s_check_field (field, value, errbuf, errlen);
        if (status != ZV_OK)
            return status;
    }
    return ZV_OK;
}
