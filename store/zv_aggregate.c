/*  zv_aggregate.c: aggregates as store records; zone rules checked here so
    that every path (add host, set zone, create) keeps one zone per host.   */

#include "store/zv_aggregate.h"
#include <stdio.h>
#include <string.h>

static const char *
s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

typedef struct {
    json_t *all;
} s_all_t;

static bool
s_all_visit (const char *key, json_t *rec, void *arg)
{
    (void) key;
    json_object_del (rec, "_rv");
    json_array_append ((json_t *) arg, rec);
    return true;
}

json_t *
zv_aggregate_list (zv_txn_t *txn)
{
    json_t *all = json_array ();
    zv_store_scan (txn, ZV_TABLE_AGGREGATES, "", s_all_visit, all);
    return all;
}

zv_status_t
zv_aggregate_find (zv_txn_t *txn, const char *ref, json_t **rec_p, char *errbuf, size_t errlen)
{
    if (zv_store_get (txn, ZV_TABLE_AGGREGATES, ref, rec_p) == ZV_OK)
        return ZV_OK;
    json_t *all = zv_aggregate_list (txn);
    size_t index;
    json_t *rec;
    *rec_p = NULL;
    json_array_foreach (all, index, rec)
        if (s_str (rec, "name") && strcmp (s_str (rec, "name"), ref) == 0)
            *rec_p = json_incref (rec);
    json_decref (all);
    if (*rec_p)
        return ZV_OK;
    snprintf (errbuf, errlen, "Aggregate %s could not be found.", ref);
    return ZV_ENOTFOUND;
}

//  Would host end up in two zones if it were in an aggregate of zone
//  `zone` (other than aggregate `except`)?  Names the other zone in errbuf.
static bool
s_zone_conflict (zv_txn_t *txn, const char *host, const char *zone, const char *except,
                 const char *aggregate_name, char *errbuf, size_t errlen)
{
    if (!zone || !*zone)
        return false;
    json_t *all = zv_aggregate_list (txn);
    size_t index;
    json_t *rec;
    bool conflict = false;
    json_array_foreach (all, index, rec) {
        const char *other = s_str (rec, "availability_zone");
        if (conflict || !other || !*other || strcmp (other, zone) == 0
        ||  strcmp (s_str (rec, "id"), except) == 0)
            continue;
        size_t at;
        json_t *member;
        json_array_foreach (json_object_get (rec, "hosts"), at, member)
            if (strcmp (json_string_value (member), host) == 0) {
                snprintf (errbuf, errlen, "Cannot add host %s to aggregate %s. Reason: One or more hosts "
                          "already in availability zone(s) ['%s'].", host, aggregate_name, other);
                conflict = true;
            }
    }
    json_decref (all);
    return conflict;
}

static zv_status_t
s_save (zv_txn_t *txn, json_t *rec, json_t **rec_p)
{
    char now [32];
    json_object_set_new (rec, "updated_at", json_string (zv_iso8601 (zv_now_ms (), now)));
    zv_status_t status = zv_store_put (txn, ZV_TABLE_AGGREGATES, s_str (rec, "id"), rec);
    if (status == ZV_OK && rec_p) {
        json_object_del (rec, "_rv");
        *rec_p = json_incref (rec);
    }
    return status;
}

zv_status_t
zv_aggregate_create (zv_txn_t *txn, const char *name, const char *zone,
                     json_t **rec_p, char *errbuf, size_t errlen)
{
    json_t *existing = NULL;
    if (zv_aggregate_find (txn, name, &existing, errbuf, errlen) == ZV_OK) {
        json_decref (existing);
        snprintf (errbuf, errlen, "Aggregate %s already exists.", name);
        return ZV_EEXIST;
    }
    //  Nova's aggregates have small integer ids; keep the next one in meta.
    json_t *counter = NULL;
    json_int_t next = 1;
    if (zv_store_get (txn, ZV_TABLE_META, "next_aggregate_id", &counter) == ZV_OK)
        next = json_integer_value (json_object_get (counter, "value"));
    json_decref (counter);
    counter = json_pack ("{s:I}", "value", next + 1);
    zv_status_t status = zv_store_put (txn, ZV_TABLE_META, "next_aggregate_id", counter);
    json_decref (counter);
    if (status != ZV_OK)
        return status;
    char id [32], uuid [ZV_UUID_LEN + 1], now [32];
    snprintf (id, sizeof id, "%lld", (long long) next);
    zv_uuid_new (uuid);
    json_t *rec = json_pack ("{s:s, s:s, s:s, s:o, s:[], s:{}, s:s}", "id", id, "uuid", uuid,
                             "name", name, "availability_zone",
                             zone && *zone ? json_string (zone) : json_null (),
                             "hosts", "metadata", "created_at", zv_iso8601 (zv_now_ms (), now));
    if (zone && *zone)
        json_object_set_new (json_object_get (rec, "metadata"), "availability_zone", json_string (zone));
    status = s_save (txn, rec, rec_p);
    json_decref (rec);
    return status;
}

zv_status_t
zv_aggregate_delete (zv_txn_t *txn, const char *ref, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_aggregate_find (txn, ref, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    if (json_array_size (json_object_get (rec, "hosts"))) {
        snprintf (errbuf, errlen, "Cannot remove aggregate %s: it still has hosts. Remove them first.",
                  s_str (rec, "name"));
        status = ZV_ECONFLICT;
    }
    else
        status = zv_store_del (txn, ZV_TABLE_AGGREGATES, s_str (rec, "id"));
    json_decref (rec);
    return status;
}

static int
s_host_index (const json_t *rec, const char *host)
{
    size_t index;
    json_t *member;
    json_array_foreach (json_object_get (rec, "hosts"), index, member)
        if (strcmp (json_string_value (member), host) == 0)
            return (int) index;
    return -1;
}

zv_status_t
zv_aggregate_add_host (zv_txn_t *txn, const char *ref, const char *host,
                       json_t **rec_p, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_aggregate_find (txn, ref, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    if (s_host_index (rec, host) >= 0) {
        snprintf (errbuf, errlen, "Host %s is already a member of aggregate %s.", host, s_str (rec, "name"));
        status = ZV_EEXIST;
    }
    else
    if (s_zone_conflict (txn, host, s_str (rec, "availability_zone"), s_str (rec, "id"),
                         s_str (rec, "name"), errbuf, errlen))
        status = ZV_ECONFLICT;
    else {
        json_array_append_new (json_object_get (rec, "hosts"), json_string (host));
        status = s_save (txn, rec, rec_p);
    }
    json_decref (rec);
    return status;
}

zv_status_t
zv_aggregate_remove_host (zv_txn_t *txn, const char *ref, const char *host,
                          json_t **rec_p, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_aggregate_find (txn, ref, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    int at = s_host_index (rec, host);
    if (at < 0) {
        snprintf (errbuf, errlen, "Host %s is not a member of aggregate %s.", host, s_str (rec, "name"));
        status = ZV_ENOTFOUND;
    }
    else {
        json_array_remove (json_object_get (rec, "hosts"), (size_t) at);
        status = s_save (txn, rec, rec_p);
    }
    json_decref (rec);
    return status;
}

zv_status_t
zv_aggregate_set (zv_txn_t *txn, const char *ref, const json_t *metadata, const char *zone,
                  json_t **rec_p, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_aggregate_find (txn, ref, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    //  The zone may come as metadata, as Nova's API allows.
    json_t *meta_zone = json_object_get (metadata, "availability_zone");
    if (!zone && meta_zone)
        zone = json_is_string (meta_zone) ? json_string_value (meta_zone) : "";
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) metadata, key, value) {
        if (!json_is_string (value) && !json_is_null (value)) {
            snprintf (errbuf, errlen, "Aggregate metadata value of '%s' must be a string.", key);
            status = ZV_EINVAL;
        }
    }
    if (status == ZV_OK && zone && *zone) {
        size_t index;
        json_t *member;
        json_array_foreach (json_object_get (rec, "hosts"), index, member)
            if (status == ZV_OK && s_zone_conflict (txn, json_string_value (member), zone,
                                                    s_str (rec, "id"), s_str (rec, "name"), errbuf, errlen))
                status = ZV_ECONFLICT;
    }
    if (status == ZV_OK) {
        json_t *meta = json_object_get (rec, "metadata");
        json_object_foreach ((json_t *) metadata, key, value) {
            if (json_is_null (value))
                json_object_del (meta, key);
            else
                json_object_set (meta, key, value);
        }
        if (zone) {
            json_object_set_new (rec, "availability_zone", *zone ? json_string (zone) : json_null ());
            if (*zone)
                json_object_set_new (meta, "availability_zone", json_string (zone));
            else
                json_object_del (meta, "availability_zone");
        }
        status = s_save (txn, rec, rec_p);
    }
    json_decref (rec);
    return status;
}

json_t *
zv_aggregate_of_host (zv_txn_t *txn, const char *host)
{
    json_t *all = zv_aggregate_list (txn);
    json_t *mine = json_array ();
    size_t index;
    json_t *rec;
    json_array_foreach (all, index, rec)
        if (s_host_index (rec, host) >= 0)
            json_array_append_new (mine, json_pack ("{s:O, s:O, s:O}", "name", json_object_get (rec, "name"),
                "metadata", json_object_get (rec, "metadata"),
                "availability_zone", json_object_get (rec, "availability_zone")));
    json_decref (all);
    return mine;
}

json_t *
zv_aggregate_by_host (zv_txn_t *txn)
{
    json_t *all = zv_aggregate_list (txn);
    json_t *by_host = json_object ();
    size_t index;
    json_t *rec;
    json_array_foreach (all, index, rec) {
        json_t *brief = json_pack ("{s:O, s:O, s:O}", "name", json_object_get (rec, "name"),
                                   "metadata", json_object_get (rec, "metadata"),
                                   "availability_zone", json_object_get (rec, "availability_zone"));
        size_t at;
        json_t *member;
        json_array_foreach (json_object_get (rec, "hosts"), at, member) {
            const char *host = json_string_value (member);
            json_t *list = json_object_get (by_host, host);
            if (!list) {
                list = json_array ();
                json_object_set_new (by_host, host, list);
            }
            json_array_append (list, brief);
        }
        json_decref (brief);
    }
    json_decref (all);
    return by_host;
}

const char *
zv_aggregate_host_zone (zv_txn_t *txn, const char *host, const char *default_zone, char *buf, size_t len)
{
    json_t *mine = zv_aggregate_of_host (txn, host);
    snprintf (buf, len, "%s", default_zone);
    size_t index;
    json_t *rec;
    json_array_foreach (mine, index, rec)
        if (s_str (rec, "availability_zone"))
            snprintf (buf, len, "%s", s_str (rec, "availability_zone"));
    json_decref (mine);
    return buf;
}
