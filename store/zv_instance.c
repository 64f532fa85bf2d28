/*  zv_instance.c: the instance record's keys, checks, upgrade and view.

    Everything here is a pure function of json values: no store, no
    allocation that outlives a call but the records it returns.  The key
    order of a new record is the order a reply shows, and the raw-bytes
    listing (actors/conductor) edits stored bytes with the same internal
    keys and status as zv_instance_view, so both give the same view.       */

#include <stdio.h>
#include <string.h>
#include <assert.h>
#include "store/zv_instance.h"

//  The record version, the ms timestamps (sorting, housekeeping), the
//  request spec (reschedules), the vm_state an action started from (for
//  its end) and the build's tried hosts never leave the store.
static const char *const s_internal_keys [] = {
    "_rv", "created_ms", "updated_ms", "request_spec", "old_vm_state", "build_hosts",
};
#define S_INTERNAL_KEYS (sizeof (s_internal_keys) / sizeof (s_internal_keys [0]))

const zv_instance_field_t zv_instance_summary [] = {
    { "id",          "id",          NULL },
    { "name",        "name",        NULL },
    { "status",      "status",      NULL },
    { "vm_state",    "vm_state",    NULL },
    { "task_state",  "task_state",  NULL },
    { "power_state", "power_state", NULL },
    { "host",        "host",        NULL },
    { "flavor",      "flavor",      "name" },
    { "flavor_id",   "flavor",      "id" },
    { "image",       "image",       "name" },
    { "image_id",    "image",       "id" },
    { "created",     "created",     NULL },
    { "updated",     "updated",     NULL },
    { "launched_at", "launched_at", NULL },
    { "fault",       "fault",       "message" },
    { "project_id",  "project_id",  NULL },
    { NULL, NULL, NULL }
};

static const char *
s_or (const char *text, const char *otherwise)
{
    return text? text: otherwise;
}

json_t *
zv_instance_flavor (const json_t *flavor)
{
    const json_t *extra = json_object_get (flavor, "extra_specs");
    json_t *copy = json_object ();
    static const char *keys [] = {
        "id", "name", "vcpus", "ram_mb", "disk_gb", "ephemeral_gb", "swap_mb", NULL
    };
    for (int index = 0; copy && keys [index]; index++) {
        json_t *value = json_object_get (flavor, keys [index]);
        json_object_set_new (copy, keys [index], value? json_deep_copy (value): json_null ());
    }
    if (copy)
        json_object_set_new (copy, "extra_specs",
                             json_is_object (extra)? json_deep_copy (extra): json_object ());
    return copy;
}

json_t *
zv_instance_new (const zv_instance_init_t *init)
{
    assert (init && init->uuid && init->name);
    char now [32];
    zv_iso8601 (init->now_ms, now);
    const json_t *properties = json_object_get (init->image, "properties");
    json_t *image = json_pack ("{s:O, s:O, s:o}",
                               "id", json_object_get (init->image, "id"),
                               "name", json_object_get (init->image, "name"),
                               "properties", json_is_object (properties)
                                             ? json_deep_copy (properties): json_object ());
    json_t *rec = json_pack ("{s:i, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:n, s:n, s:n,"
                             " s:s, s:I, s:s, s:I, s:n, s:b, s:n, s:s, s:I, s:s, s:o, s:s}",
        "_rv", ZV_INSTANCE_VERSION,
        "uuid", init->uuid, "name", init->name,
        "project_id", s_or (init->project_id, ""), "user_id", s_or (init->user_id, ""),
        "flavor", zv_instance_flavor (init->flavor), "image", image,
        "vm_state", "building", "task_state", "scheduling", "power_state", "nostate",
        "host", "node", "fault",
        "created", now, "created_ms", (json_int_t) init->now_ms,
        "updated", now, "updated_ms", (json_int_t) init->now_ms,
        "launched_at", "deleted", 0, "deleted_at",
        "reservation_id", s_or (init->reservation_id, ""),
        "launch_index", (json_int_t) init->launch_index,
        "availability_zone", s_or (init->availability_zone, ""),
        "metadata", json_is_object (init->metadata)? json_deep_copy (init->metadata): json_object (),
        "request_id", s_or (init->request_id, ""));
    if (rec && init->request_spec)
        json_object_set_new (rec, "request_spec", json_deep_copy (init->request_spec));
    if (rec && init->group_id)
        json_object_set_new (rec, "group_id", json_string (init->group_id));
    return rec;
}

zv_status_t
zv_instance_check_name (const char *name, char *errbuf, size_t errlen)
{
    size_t length = name? strlen (name): 0;
    if (length > ZV_INSTANCE_NAME_MAX) {
        snprintf (errbuf, errlen, "Invalid server name: it is longer than %d bytes.",
                  ZV_INSTANCE_NAME_MAX);
        return ZV_ETOOBIG;
    }
    if (!zv_text_printable (name, length)) {
        snprintf (errbuf, errlen, "Invalid server name: it must be printable, without leading or "
                  "trailing spaces.");
        return ZV_EINVAL;
    }
    return ZV_OK;
}

zv_status_t
zv_instance_check_metadata (const json_t *metadata, char *errbuf, size_t errlen)
{
    if (!json_is_object (metadata)) {
        snprintf (errbuf, errlen, "Invalid metadata: it must be a map of strings.");
        return ZV_EINVAL;
    }
    if (json_object_size (metadata) > ZV_METADATA_MAX_ITEMS) {
        snprintf (errbuf, errlen, "Quota exceeded for metadata items: at most %d are allowed.",
                  ZV_METADATA_MAX_ITEMS);
        return ZV_ETOOBIG;
    }
    const char *key;
    const json_t *value;
    json_object_foreach ((json_t *) metadata, key, value) {
        size_t key_len = strlen (key);
        if (key_len == 0 || key_len > ZV_METADATA_MAX_LEN) {
            snprintf (errbuf, errlen, "Invalid metadata: a key must be 1 to %d bytes long.",
                      ZV_METADATA_MAX_LEN);
            return ZV_EINVAL;
        }
        if (!json_is_string (value)) {
            snprintf (errbuf, errlen, "Invalid metadata: the value of '%.64s' is not a string "
                      "(metadata is a flat map of strings).", key);
            return ZV_EINVAL;
        }
        if (json_string_length (value) > ZV_METADATA_MAX_LEN) {
            snprintf (errbuf, errlen, "Invalid metadata: the value of '%.64s' is longer than %d bytes.",
                      key, ZV_METADATA_MAX_LEN);
            return ZV_ETOOBIG;
        }
    }
    return ZV_OK;
}

//  Depth of a value as msgpack nests it: a scalar is 1, a container one
//  more than its deepest member.  Stops counting past limit.
static int
s_depth (const json_t *value, int limit)
{
    if (limit <= 0)
        return 1;
    int deepest = 0;
    if (json_is_object (value)) {
        const char *key;
        const json_t *member;
        json_object_foreach ((json_t *) value, key, member) {
            int depth = s_depth (member, limit - 1);
            if (depth > deepest)
                deepest = depth;
        }
        return deepest + 1;
    }
    if (json_is_array (value)) {
        size_t index;
        const json_t *member;
        json_array_foreach (value, index, member) {
            int depth = s_depth (member, limit - 1);
            if (depth > deepest)
                deepest = depth;
        }
        return deepest + 1;
    }
    return 1;
}

zv_status_t
zv_instance_check (const json_t *rec, char *errbuf, size_t errlen)
{
    if (!json_is_object (rec)) {
        snprintf (errbuf, errlen, "an instance record must be a map");
        return ZV_EINVAL;
    }
    const json_t *metadata = json_object_get (rec, "metadata");
    if (metadata) {
        zv_status_t status = zv_instance_check_metadata (metadata, errbuf, errlen);
        if (status != ZV_OK)
            return status;
    }
    if (s_depth (rec, ZV_INSTANCE_MAX_DEPTH + 1) > ZV_INSTANCE_MAX_DEPTH) {
        snprintf (errbuf, errlen, "instance %s: record nests deeper than %d levels",
                  s_or (json_string_value (json_object_get (rec, "uuid")), "?"), ZV_INSTANCE_MAX_DEPTH);
        return ZV_ETOOBIG;
    }
    return ZV_OK;
}

//  Cut value to depth levels: a container at the last level is emptied.
static void
s_cut (json_t *value, int depth)
{
    if (depth <= 1) {
        if (json_is_object (value))
            json_object_clear (value);
        else
        if (json_is_array (value))
            json_array_clear (value);
        return;
    }
    const char *key;
    json_t *member;
    size_t index;
    if (json_is_object (value))
        json_object_foreach (value, key, member)
            s_cut (member, depth - 1);
    else
    if (json_is_array (value))
        json_array_foreach (value, index, member)
            s_cut (member, depth - 1);
}

bool
zv_instance_upgrade (json_t *rec)
{
    if (!json_is_object (rec))
        return false;
    bool changed = false;
    json_t *metadata = json_object_get (rec, "metadata");
    char errbuf [256];
    if (metadata && zv_instance_check_metadata (metadata, errbuf, sizeof errbuf) != ZV_OK) {
        //  Keep what Nova would have accepted, as far as it goes.
        json_t *kept = json_object ();
        const char *key;
        json_t *value;
        json_object_foreach (json_is_object (metadata)? metadata: NULL, key, value)
            if (json_object_size (kept) < ZV_METADATA_MAX_ITEMS
            &&  strlen (key) > 0 && strlen (key) <= ZV_METADATA_MAX_LEN
            &&  json_is_string (value) && json_string_length (value) <= ZV_METADATA_MAX_LEN)
                json_object_set (kept, key, value);
        json_object_set_new (rec, "metadata", kept);
        changed = true;
    }
    if (s_depth (rec, ZV_INSTANCE_MAX_DEPTH + 1) > ZV_INSTANCE_MAX_DEPTH) {
        s_cut (rec, ZV_INSTANCE_MAX_DEPTH);
        changed = true;
    }
    json_t *version = json_object_get (rec, "_rv");
    if (!json_is_integer (version) || json_integer_value (version) < ZV_INSTANCE_VERSION) {
        json_object_set_new (rec, "_rv", json_integer (ZV_INSTANCE_VERSION));
        changed = true;
    }
    return changed;
}

const char *const *
zv_instance_internal_keys (size_t *count_p)
{
    if (count_p)
        *count_p = S_INTERNAL_KEYS;
    return s_internal_keys;
}

const char *
zv_instance_status (const json_t *rec)
{
    int vm = zv_vm_state_from_name (json_string_value (json_object_get (rec, "vm_state")));
    const json_t *task_value = json_object_get (rec, "task_state");
    int task = json_is_null (task_value) || !task_value? ZV_TASK_NONE
             : zv_task_state_from_name (json_string_value (task_value));
    if (vm < 0 || task < 0)
        return "UNKNOWN";
    return zv_status_derive ((zv_vm_state_t) vm, (zv_task_state_t) task);
}

json_t *
zv_instance_view (json_t *rec)
{
    if (!rec)
        return NULL;
    json_object_set_new (rec, "status", json_string (zv_instance_status (rec)));
    json_t *uuid = json_object_get (rec, "uuid");
    if (uuid)
        json_object_set (rec, "id", uuid);
    for (size_t index = 0; index < S_INTERNAL_KEYS; index++)
        json_object_del (rec, s_internal_keys [index]);
    return rec;
}
