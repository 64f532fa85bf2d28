/*  servers.c: the conductor's server handlers: create (with the request
    spec it derives), list, show, delete, the action log, and the view of
    an instance that leaves the conductor.

    server_create only records the instances (building / scheduling) and
    hands a job to builds.c, which asks a scheduler and claims; the reply
    (BUILD) goes out with the commit that recorded them.  server_list reads
    the stored bytes instead of trees (see s_server_keep), because listing
    thousands of servers is what pollers do.  A delete is judged by the
    transition table, then cast to the instance's host, or finished here
    when no host holds it or its host is not connected.                    */

#include "actors/conductor/conductor.h"
#include "proto/zv_pack.h"
#include "store/zv_placement.h"
#include "store/zv_group.h"
#include "store/zv_instance.h"
#include <sodium.h>
#include <strings.h>


//  Resolve the instances a same_host / different_host hint names (one
//  uuid or an array of them) to the hosts they are on.
static zv_status_t
s_hint_hosts (zv_txn_t *txn, const char *hint, json_t *value, json_t **hosts_p,
              char *errbuf, size_t errlen)
{
    json_t *uuids = json_is_array (value) ? json_incref (value) : json_pack ("[O]", value);
    json_t *hosts = json_array ();
    zv_status_t status = ZV_OK;
    size_t index;
    json_t *uuid;
    json_array_foreach (uuids, index, uuid) {
        json_t *rec = NULL;
        if (!json_is_string (uuid) || !zv_uuid_valid (json_string_value (uuid))) {
            snprintf (errbuf, errlen, "Invalid scheduler hint %s: '%s' is not a server UUID.", hint,
                      json_is_string (uuid) ? json_string_value (uuid) : "(not a string)");
            status = ZV_EINVAL;
            break;
        }
        if (zv_store_get (txn, ZV_TABLE_INSTANCES, json_string_value (uuid), &rec) != ZV_OK
        ||  json_is_true (json_object_get (rec, "deleted"))) {
            snprintf (errbuf, errlen, "Invalid scheduler hint %s: server %s could not be found.", hint,
                      json_string_value (uuid));
            json_decref (rec);
            status = ZV_EINVAL;
            break;
        }
        if (s_str (rec, "host"))
            json_array_append (hosts, json_object_get (rec, "host"));
        json_decref (rec);
    }
    json_decref (uuids);
    if (status == ZV_OK)
        *hosts_p = hosts;
    else
        json_decref (hosts);
    return status;
}

//  Nova's request spec, from the request, flavor and image: resources
//  (placement classes), zone (and a forced host for "AZ:HOST"), flavor
//  extra specs, image properties, hints resolved to hosts, server group.
static zv_status_t
s_request_spec (zv_conductor_t *self, zv_txn_t *txn, const zv_conductor_call_t *call, const json_t *flavor,
                const json_t *image, json_t **spec_p, char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *project = zv_conductor_project (call);
    json_t *spec = json_pack ("{s:o, s:s, s:{s:O}, s:{s:O}}",
        "resources", zv_placement_flavor_resources (flavor),
        "project_id", project ? project : "",
        "flavor", "extra_specs", json_object_get (flavor, "extra_specs") ? json_object_get (flavor, "extra_specs") : json_null (),
        "image", "properties", json_object_get (image, "properties") ? json_object_get (image, "properties") : json_null ());
    zv_status_t status = ZV_OK;
    const char *requested = zv_msg_get_str (msg, "availability_zone");
    if (requested && *requested) {
        char zone [256], host [256] = "";
        const char *colon = strchr (requested, ':');
        snprintf (zone, sizeof zone, "%.*s", colon ? (int) (colon - requested) : (int) strlen (requested), requested);
        if (colon)
            snprintf (host, sizeof host, "%s", colon + 1);
        //  Forcing a host ("AZ:HOST") is for admins, as in Nova.
        if (*host && !zv_conductor_is_admin (call)) {
            json_decref (spec);
            return zv_conductor_forbidden ("os_compute_api:servers:create:forced_host", errbuf, errlen);
        }
        if (*zone && !zv_conductor_zone_exists (self, txn, zone)) {
            snprintf (errbuf, errlen, "The requested availability zone is not available: %s", zone);
            status = ZV_EINVAL;
        }
        json_t *node = NULL;
        if (status == ZV_OK && *host && zv_store_get (txn, ZV_TABLE_NODES, host, &node) != ZV_OK) {
            snprintf (errbuf, errlen, "Compute host %s could not be found.", host);
            status = ZV_EINVAL;
        }
        json_decref (node);
        if (*zone)
            json_object_set_new (spec, "availability_zone", json_string (zone));
        if (*host)
            json_object_set_new (spec, "force_host", json_string (host));
    }
    json_t *hints = json_object_get (zv_msg_body (msg), "hints");
    static const char *host_hints [] = { "same_host", "different_host", NULL };
    for (int index = 0; status == ZV_OK && host_hints [index]; index++) {
        json_t *value = json_object_get (hints, host_hints [index]);
        json_t *hosts = NULL;
        if (value && (status = s_hint_hosts (txn, host_hints [index], value, &hosts, errbuf, errlen)) == ZV_OK)
            json_object_set_new (spec, host_hints [index], hosts);
    }
    json_t *group_hint = json_object_get (hints, "group");
    if (status == ZV_OK && group_hint) {
        json_t *group = NULL;
        if (!json_is_string (group_hint)) {
            snprintf (errbuf, errlen, "Invalid scheduler hint group: a server group ID is expected.");
            status = ZV_EINVAL;
        }
        else
        if (zv_group_find (txn, json_string_value (group_hint), project, &group, errbuf, errlen) != ZV_OK) {
            snprintf (errbuf, errlen, "Invalid scheduler hint group: server group %s could not be found.",
                      json_string_value (group_hint));
            status = ZV_EINVAL;
        }
        else {
            json_object_set (spec, "group_id", json_object_get (group, "id"));
            json_object_set_new (spec, "group", json_pack ("{s:O, s:O, s:o}",
                "policy", json_object_get (group, "policy"), "rules", json_object_get (group, "rules"),
                "hosts", zv_group_hosts (txn, group, NULL)));
        }
        json_decref (group);
    }
    if (status == ZV_OK)
        *spec_p = spec;
    else
        json_decref (spec);
    return status;
}

zv_status_t
zv_conductor_server_create (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    zv_status_t checked = zv_instance_check_name (zv_msg_get_str (msg, "name"), errbuf, errlen);
    json_t *metadata = json_object_get (zv_msg_body (msg), "metadata");
    if (checked == ZV_OK && metadata)
        checked = zv_instance_check_metadata (metadata, errbuf, errlen);
    if (checked != ZV_OK)
        return checked;
    json_t *flavor = NULL, *image = NULL;
    zv_status_t status = zv_conductor_find (txn, ZV_TABLE_FLAVORS, "flavor", zv_msg_get_str (msg, "flavor"),
                                            NULL, &flavor, errbuf, errlen);
    if (status == ZV_ENOTFOUND)
        snprintf (errbuf, errlen, "Flavor %s could not be found.", zv_msg_get_str (msg, "flavor"));
    if (status != ZV_OK)
        return status;
    status = zv_conductor_find (txn, ZV_TABLE_IMAGES, "image", zv_msg_get_str (msg, "image"), NULL, &image,
                                errbuf, errlen);
    if (status == ZV_ENOTFOUND)
        snprintf (errbuf, errlen, "Image %s could not be found.", zv_msg_get_str (msg, "image"));
    if (status == ZV_OK && strcmp (s_str (image, "status"), "active") != 0) {
        snprintf (errbuf, errlen, "Image %s is not active.", s_str (image, "id"));
        status = ZV_EINVAL;
    }
    int64_t min_count = zv_msg_get_int (msg, "min_count", 1);
    int64_t max_count = zv_msg_get_int (msg, "max_count", min_count);
    if (status == ZV_OK && min_count > max_count) {
        snprintf (errbuf, errlen, "min_count (%lld) must be <= max_count (%lld).",
                  (long long) min_count, (long long) max_count);
        status = ZV_EINVAL;
    }
    json_t *spec = NULL;
    if (status == ZV_OK)
        status = s_request_spec (self, txn, call, flavor, image, &spec, errbuf, errlen);
    if (status != ZV_OK) {
        json_decref (flavor);
        json_decref (image);
        return status;
    }
    const char *name = zv_msg_get_str (msg, "name");
    char reservation [20];
    unsigned char random [4];
    randombytes_buf (random, sizeof random);
    snprintf (reservation, sizeof reservation, "r-%02x%02x%02x%02x", random [0], random [1], random [2], random [3]);
    int64_t now_ms = zv_now_ms ();
    const char *rq = zv_msg_rq (msg);
    json_t *servers = json_array ();
    json_t *uuids = json_array ();
    for (int64_t index = 1; index <= max_count && status == ZV_OK; index++) {
        char uuid [ZV_UUID_LEN + 1], instance_name [300];
        zv_uuid_new (uuid);
        if (max_count > 1)
            snprintf (instance_name, sizeof instance_name, "%s-%lld", name, (long long) index);
        else
            snprintf (instance_name, sizeof instance_name, "%s", name);
        //  The record keeps what a reschedule needs to ask again (the
        //  request spec) and the group to leave on delete.
        zv_instance_init_t init = {
            .uuid = uuid, .name = instance_name,
            .project_id = zv_conductor_project (call), .user_id = zv_conductor_user (call),
            .flavor = flavor, .image = image,
            .availability_zone = s_str (spec, "availability_zone") ? s_str (spec, "availability_zone")
                                                                    : self->cfg.default_availability_zone,
            .reservation_id = reservation, .launch_index = index - 1, .metadata = metadata,
            .request_id = rq, .request_spec = spec, .group_id = s_str (spec, "group_id"), .now_ms = now_ms,
        };
        json_t *rec = zv_instance_new (&init);
        if (!rec) {
            status = ZV_ENOMEM;
            break;
        }
        status = zv_store_insert (txn, ZV_TABLE_INSTANCES, uuid, rec);
        if (status == ZV_OK)
            status = zv_store_action_start (txn, uuid, "create", rq);
        if (status == ZV_OK && s_str (spec, "group_id"))
            status = zv_group_add_member (txn, s_str (spec, "group_id"), uuid);
        if (status == ZV_OK) {
            json_array_append_new (uuids, json_string (uuid));
            json_array_append_new (servers, zv_instance_view (rec));
        }
        else
            json_decref (rec);
    }
    if (status != ZV_OK) {
        snprintf (errbuf, errlen, "cannot record the instances (%s)", zv_status_name (status));
        json_decref (servers);
        json_decref (uuids);
    }
    else {
        zv_conductor_job_t *job = (zv_conductor_job_t *) zmalloc (sizeof (zv_conductor_job_t));
        job->uuids = uuids;
        job->spec = json_incref (spec);
        job->min_count = (int) min_count;
        job->ignore_hosts = json_array ();
        job->attempt = 1;
        snprintf (job->rq, sizeof job->rq, "%s", rq ? rq : "");
        job->queued_ms = zv_mono_ms ();
        zv_conductor_schedule (self, &job);
        call->reply = json_pack ("{s:o, s:s}", "servers", servers, "reservation_id", reservation);
    }
    json_decref (spec);
    json_decref (flavor);
    json_decref (image);
    return status;
}

//  server_list works on the stored bytes, not on trees.  A listing of
//  thousands of servers used to decode every record (deleted ones too)
//  into a json tree, derive its view, and encode the lot again, and the
//  trees' allocations dominated the time.  Now each record is peeked for
//  the few keys the filters and the order need, and a kept record is
//  copied into the reply as msgpack, with the view's edits made on the way
//  (status and id set, store-internal keys dropped): the same bytes the
//  tree's encoding gave, key order included.  The records were checked by
//  zv_store_scan_raw as a decode would check them.
typedef struct {
    const char *project;
    bool all_projects, deleted;
    const char *host, *status;
} s_server_filter_t;

//  The keys a listing reads from a record, in s_listed_t.peek.
enum { S_LIST_DELETED, S_LIST_PROJECT, S_LIST_HOST, S_LIST_VM, S_LIST_TASK,
       S_LIST_CREATED, S_LIST_UUID, S_LIST_NAME, S_LIST_KEYS };

//  A record the filters kept, borrowed from the store until the handler
//  returns (nothing is written meanwhile).
typedef struct {
    const uint8_t *rec;
    size_t size;
    const char *status;             //  derived, static
    zv_pack_peek_t peek [S_LIST_KEYS];
} s_listed_t;

typedef struct {
    s_server_filter_t *filter;
    s_listed_t *items;
    size_t count, alloc;
    bool failed;                    //  out of memory
} s_list_scan_t;

//  A peeked string value is equal to text (NULL: absent or not a string).
static bool
s_peek_is (const zv_pack_peek_t *peek, const char *text)
{
    return peek->found == 1 && strlen (text) == peek->len && memcmp (peek->str, text, peek->len) == 0;
}

//  The state names are short: one that is not is no state at all.
static const char *
s_peek_cstr (const zv_pack_peek_t *peek, char *buf, size_t len)
{
    if (peek->found != 1 || peek->len >= len)
        return peek->found == 1 ? "" : NULL;
    memcpy (buf, peek->str, peek->len);
    buf [peek->len] = '\0';
    return buf;
}

static bool
s_server_keep (const char *key, const void *data, size_t size, void *arg)
{
    (void) key;
    s_list_scan_t *scan = (s_list_scan_t *) arg;
    s_server_filter_t *filter = scan->filter;
    s_listed_t item = { data, size, NULL, {
        [S_LIST_DELETED] = { .key = "deleted",    .kind = ZV_PACK_PEEK_BOOL },
        [S_LIST_PROJECT] = { .key = "project_id", .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_HOST]    = { .key = "host",       .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_VM]      = { .key = "vm_state",   .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_TASK]    = { .key = "task_state", .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_CREATED] = { .key = "created",    .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_UUID]    = { .key = "uuid",       .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
        [S_LIST_NAME]    = { .key = "name",       .kind = ZV_PACK_PEEK_STR, .max_len = ZV_PACK_MAX_STR },
    } };
    zv_pack_peek_map (data, size, item.peek, S_LIST_KEYS);
    zv_pack_peek_t *peek = item.peek;
    if (!filter->deleted && peek [S_LIST_DELETED].found == 1 && peek [S_LIST_DELETED].integer)
        return true;
    if (!filter->all_projects && filter->project && peek [S_LIST_PROJECT].found == 1
    &&  !s_peek_is (&peek [S_LIST_PROJECT], filter->project))
        return true;
    if (filter->host && !s_peek_is (&peek [S_LIST_HOST], filter->host))
        return true;
    char vm_name [64], task_name [64];
    int vm = zv_vm_state_from_name (s_peek_cstr (&peek [S_LIST_VM], vm_name, sizeof vm_name));
    int task = zv_task_state_from_name (s_peek_cstr (&peek [S_LIST_TASK], task_name, sizeof task_name));
    item.status = (vm < 0 || task < 0) ? "UNKNOWN"
                : zv_status_derive ((zv_vm_state_t) vm, (zv_task_state_t) task);
    if (filter->status && strcasecmp (filter->status, item.status) != 0)
        return true;
    if (scan->count == scan->alloc) {
        size_t alloc = scan->alloc ? scan->alloc * 2 : 256;
        s_listed_t *items = (s_listed_t *) realloc (scan->items, alloc * sizeof *items);
        if (!items) {
            scan->failed = true;
            return false;
        }
        scan->items = items;
        scan->alloc = alloc;
    }
    scan->items [scan->count++] = item;
    return true;
}

//  Peeked strings as strcmp orders them (a missing one sorts as "").
static int
s_peek_cmp (const zv_pack_peek_t *a, const zv_pack_peek_t *b)
{
    size_t alen = a->found == 1 ? a->len : 0, blen = b->found == 1 ? b->len : 0;
    int order = memcmp (alen ? a->str : "", blen ? b->str : "", alen < blen ? alen : blen);
    return order ? order : (alen > blen) - (alen < blen);
}

//  Newest first, as Nova lists (created, then id, both descending).
static int
s_newest_first (const void *a, const void *b)
{
    const s_listed_t *ra = (const s_listed_t *) a, *rb = (const s_listed_t *) b;
    int order = s_peek_cmp (&rb->peek [S_LIST_CREATED], &ra->peek [S_LIST_CREATED]);
    return order ? order : s_peek_cmp (&rb->peek [S_LIST_UUID], &ra->peek [S_LIST_UUID]);
}

//  Append the view of a listed record (zv_conductor_server_view's edits, made on the
//  bytes), or for pollers only {id, name, status}: a fraction of the bytes.
static zv_status_t
s_server_put (zv_pack_buf_t *buf, const s_listed_t *item, bool names_only)
{
    zv_pack_buf_t status = { 0 };
    zv_status_t rc = zv_pack_put_str (&status, item->status, strlen (item->status));
    const zv_pack_peek_t *uuid = &item->peek [S_LIST_UUID], *name = &item->peek [S_LIST_NAME];
    if (rc == ZV_OK && names_only)
        rc = zv_pack_put_map (buf, 3)
          || zv_pack_put_str (buf, "id", 2)
          || zv_pack_put_bytes (buf, item->rec + uuid->at, uuid->size)
          || zv_pack_put_str (buf, "name", 4)
          || zv_pack_put_bytes (buf, item->rec + name->at, name->size)
          || zv_pack_put_str (buf, "status", 6)
          || zv_pack_put_bytes (buf, status.data, status.size) ? ZV_ENOMEM : ZV_OK;
    else
    if (rc == ZV_OK) {
        const zv_pack_set_t set [] = {
            { "status", status.data, status.size },
            //  A record without a uuid gets no id, as json_object_set_new
            //  of a NULL value set none.
            { "id", uuid->size ? item->rec + uuid->at : NULL, uuid->size },
        };
        size_t internal = 0;
        const char *const *keys = zv_instance_internal_keys (&internal);
        rc = zv_pack_put_map_edit (buf, item->rec, item->size, keys, internal, set, 2);
    }
    zv_pack_buf_free (&status);
    return rc;
}

zv_status_t
zv_conductor_server_list (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                          char *errbuf, size_t errlen)
{
    (void) self;
    const zv_msg_t *msg = call->msg;
    bool all_projects = zv_msg_get_bool (msg, "all_projects", false);
    if (all_projects && !zv_conductor_is_admin (call))
        return zv_conductor_forbidden ("os_compute_api:servers:index:get_all_tenants", errbuf, errlen);
    s_server_filter_t filter = {
        zv_conductor_project (call), all_projects,
        zv_msg_get_bool (msg, "deleted", false), zv_msg_get_str (msg, "host"), zv_msg_get_str (msg, "status")
    };
    s_list_scan_t scan = { &filter, NULL, 0, 0, false };
    //  A store error ends the listing where it stopped, as before.
    zv_store_scan_raw (txn, ZV_TABLE_INSTANCES, "", s_server_keep, &scan);
    if (scan.count)
        qsort (scan.items, scan.count, sizeof (s_listed_t), s_newest_first);
    int64_t limit = zv_msg_get_int (msg, "limit", 0);
    bool names_only = zv_msg_get_bool (msg, "names_only", false);
    //  For names_only, a record without a uuid or name is left out, as
    //  json_pack of a missing value left it out.
    size_t count = 0;
    for (size_t index = 0; index < scan.count && (limit <= 0 || (int64_t) count < limit); index++)
        if (!names_only || (scan.items [index].peek [S_LIST_UUID].size
                        &&  scan.items [index].peek [S_LIST_NAME].size))
            count++;
    zv_pack_buf_t buf = { 0 };
    zv_status_t status = scan.failed ? ZV_ENOMEM : zv_pack_put_array (&buf, count);
    for (size_t index = 0, put = 0; status == ZV_OK && put < count; index++) {
        const s_listed_t *item = &scan.items [index];
        if (names_only && !(item->peek [S_LIST_UUID].size && item->peek [S_LIST_NAME].size))
            continue;
        status = s_server_put (&buf, item, names_only);
        put++;
    }
    free (scan.items);
    if (status == ZV_OK) {
        call->reply = json_pack ("{s:o}", "servers", zv_pack_raw (buf.data, buf.size));
        if (!call->reply)
            status = ZV_ENOMEM;
    }
    zv_pack_buf_free (&buf);
    if (status != ZV_OK)
        snprintf (errbuf, errlen, "cannot list servers (%s)", zv_status_name (status));
    return status;
}

zv_status_t
zv_conductor_find_server (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call, json_t **rec_p,
                          char *errbuf, size_t errlen)
{
    (void) self;
    if (call->instance) {
        *rec_p = json_incref (call->instance);
        return ZV_OK;
    }
    const char *ref = zv_msg_get_str (call->msg, "ref");
    const char *project = zv_conductor_project (call);
    zv_status_t status = zv_conductor_find (txn, ZV_TABLE_INSTANCES, "server", ref, project,
                                            rec_p, errbuf, errlen);
    //  Another project's server is not there for a user (Nova answers 404).
    if (status == ZV_OK && !zv_conductor_is_admin (call)
    &&  !streq (s_str (*rec_p, "project_id") ? s_str (*rec_p, "project_id") : "", project)) {
        json_decref (*rec_p);
        *rec_p = NULL;
        status = ZV_ENOTFOUND;
    }
    if (status == ZV_ENOTFOUND)
        snprintf (errbuf, errlen, "No server with a name or ID of '%s' exists.", ref);
    return status;
}

zv_status_t
zv_conductor_server_show (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                          char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "server", zv_instance_view (rec));
    return status;
}

static void s_terminate_unreachable (zv_conductor_t *self, json_t *arg);

//  Ask the instance's host to destroy it; the compute answers with
//  instance_destroyed.  Without a host the delete is finished here.
zv_status_t
zv_conductor_start_terminate (zv_conductor_t *self, zv_txn_t *txn, json_t *rec, const char *action_rq,
                              char *errbuf, size_t errlen)
{
    const char *uuid = s_str (rec, "uuid");
    const char *host = s_str (rec, "host");
    if (!host || !*host)
        return zv_conductor_finish_delete (self, txn, uuid, action_rq, errbuf, errlen);
    zv_msg_t *cast = zv_msg_new ("compute.terminate_instance");
    zv_msg_set_rq (cast, action_rq);
    zv_msg_set_src (cast, ACTOR);
    char identity [320];
    snprintf (identity, sizeof identity, "compute.%s", host);
    zv_msg_set_routing_str (cast, identity);
    json_t *body = json_pack ("{s:s, s:s}", "uuid", uuid, "action_request_id", action_rq ? action_rq : "");
    zv_msg_set_body (cast, &body);
    zv_conductor_out_cast (self, &cast, s_terminate_unreachable,
                           json_pack ("{s:s, s:s}", "uuid", uuid, "rq", action_rq ? action_rq : ""));
    return ZV_OK;
}

//  The host is not connected: delete locally, as Nova does when the
//  compute service is down (its domain, if any, is reaped at its next sync).
static void
s_terminate_unreachable (zv_conductor_t *self, json_t *arg)
{
    char errbuf [512];
    zv_txn_t *txn = zv_txn_begin (self->store, zv_conductor_batch_txn (self), true);
    if (!txn)
        return;
    if (zv_conductor_finish_delete (self, txn, s_str (arg, "uuid"), s_str (arg, "rq"), errbuf, sizeof errbuf) == ZV_OK) {
        zv_info (ACTOR, s_str (arg, "rq"), "instance %s deleted locally (host unreachable)", s_str (arg, "uuid"));
        zv_txn_commit (&txn);
    }
    else
        zv_txn_abort (&txn);
}

zv_status_t
zv_conductor_server_delete (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *rq = zv_msg_rq (call->msg);
    json_t *updated = NULL;
    status = zv_store_instance_action (txn, s_str (rec, "uuid"), ZV_ACTION_DELETE, rq,
                                       &updated, errbuf, errlen);
    json_decref (rec);
    if (status == ZV_OK)
        zv_conductor_move_cancel (self, txn, updated, "the server was deleted while it moved");
    if (status == ZV_OK)
        status = zv_conductor_start_terminate (self, txn, updated, rq, errbuf, errlen);
    if (status == ZV_OK) {
        json_t *now = NULL;
        zv_store_get (txn, ZV_TABLE_INSTANCES, s_str (updated, "uuid"), &now);
        call->reply = json_pack ("{s:o}", "server", zv_instance_view (now ? now : json_incref (updated)));
    }
    json_decref (updated);
    return status;
}

zv_status_t
zv_conductor_server_events (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    json_t *events = zv_store_action_list (txn, s_str (rec, "uuid"));
    json_decref (rec);
    if (!events) {
        snprintf (errbuf, errlen, "cannot read the action log");
        return ZV_EIO;
    }
    call->reply = json_pack ("{s:o}", "events", events);
    return ZV_OK;
}
