/*  zv_group.c: server groups as store records and their late check.       */

#include "store/zv_group.h"
#include <stdio.h>
#include <string.h>

static const char *s_policies [] = { "affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity", NULL };

static const char *
s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

zv_status_t
zv_group_create (zv_txn_t *txn, const char *name, const char *policy, const json_t *rules,
                 const char *project_id, json_t **rec_p, char *errbuf, size_t errlen)
{
    bool known = false;
    for (int index = 0; s_policies [index]; index++)
        known |= policy && strcmp (policy, s_policies [index]) == 0;
    if (!known) {
        snprintf (errbuf, errlen, "Invalid policy '%s' (affinity, anti-affinity, soft-affinity, "
                  "soft-anti-affinity).", policy ? policy : "");
        return ZV_EINVAL;
    }
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) rules, key, value) {
        if (strcmp (key, "max_server_per_host") != 0 || strcmp (policy, "anti-affinity") != 0) {
            snprintf (errbuf, errlen, "Rule '%s' is not valid for policy %s (only anti-affinity takes "
                      "max_server_per_host).", key, policy);
            return ZV_EINVAL;
        }
        if (!json_is_integer (value) || json_integer_value (value) < 1) {
            snprintf (errbuf, errlen, "max_server_per_host must be an integer >= 1.");
            return ZV_EINVAL;
        }
    }
    char uuid [ZV_UUID_LEN + 1], now [32];
    zv_uuid_new (uuid);
    json_t *rec = json_pack ("{s:s, s:s, s:s, s:o, s:[], s:s, s:s}", "id", uuid, "name", name,
                             "policy", policy,
                             "rules", rules ? json_deep_copy (rules) : json_object (),
                             "members", "project_id", project_id ? project_id : "",
                             "created_at", zv_iso8601 (zv_now_ms (), now));
    zv_status_t status = zv_store_insert (txn, ZV_TABLE_SERVER_GROUPS, uuid, rec);
    if (status == ZV_OK && rec_p)
        *rec_p = json_incref (rec);
    json_decref (rec);
    return status;
}

typedef struct {
    const char *name;
    const char *project;
    json_t *found;
    int matches;
    json_t *list;
} s_scan_t;

static bool
s_visit (const char *key, json_t *rec, void *arg)
{
    (void) key;
    s_scan_t *scan = (s_scan_t *) arg;
    json_object_del (rec, "_rv");
    if (scan->project && *scan->project && s_str (rec, "project_id")
    &&  strcmp (scan->project, s_str (rec, "project_id")) != 0)
        return true;
    if (scan->list)
        json_array_append (scan->list, rec);
    else
    if (scan->name && s_str (rec, "name") && strcmp (scan->name, s_str (rec, "name")) == 0
    &&  scan->matches++ == 0)
        scan->found = json_incref (rec);
    return true;
}

zv_status_t
zv_group_find (zv_txn_t *txn, const char *ref, const char *project_id, json_t **rec_p,
               char *errbuf, size_t errlen)
{
    if (zv_store_get (txn, ZV_TABLE_SERVER_GROUPS, ref, rec_p) == ZV_OK) {
        //  Another project's group is not there for its caller.
        const char *owner = s_str (*rec_p, "project_id");
        if (!project_id || !*project_id || !owner || !strcmp (owner, project_id))
            return ZV_OK;
        json_decref (*rec_p);
        *rec_p = NULL;
        snprintf (errbuf, errlen, "Server group %s could not be found.", ref);
        return ZV_ENOTFOUND;
    }
    s_scan_t scan = { ref, project_id, NULL, 0, NULL };
    zv_store_scan (txn, ZV_TABLE_SERVER_GROUPS, "", s_visit, &scan);
    if (scan.matches == 1) {
        *rec_p = scan.found;
        return ZV_OK;
    }
    json_decref (scan.found);
    snprintf (errbuf, errlen, scan.matches ? "More than one server group is named '%s'; use its ID."
                                           : "Server group %s could not be found.", ref);
    return scan.matches ? ZV_ECONFLICT : ZV_ENOTFOUND;
}

zv_status_t
zv_group_delete (zv_txn_t *txn, const char *ref, const char *project_id, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_group_find (txn, ref, project_id, &rec, errbuf, errlen);
    if (status == ZV_OK)
        status = zv_store_del (txn, ZV_TABLE_SERVER_GROUPS, s_str (rec, "id"));
    json_decref (rec);
    return status;
}

json_t *
zv_group_list (zv_txn_t *txn, const char *project_id)
{
    s_scan_t scan = { NULL, project_id, NULL, 0, json_array () };
    zv_store_scan (txn, ZV_TABLE_SERVER_GROUPS, "", s_visit, &scan);
    return scan.list;
}

static zv_status_t
s_members_change (zv_txn_t *txn, const char *group_id, const char *uuid, bool add)
{
    json_t *rec = NULL;
    zv_status_t status = zv_store_get (txn, ZV_TABLE_SERVER_GROUPS, group_id, &rec);
    if (status != ZV_OK)
        return status;
    json_t *members = json_object_get (rec, "members");
    size_t index;
    json_t *member;
    int at = -1;
    json_array_foreach (members, index, member)
        if (strcmp (json_string_value (member), uuid) == 0)
            at = (int) index;
    if (add && at < 0)
        json_array_append_new (members, json_string (uuid));
    if (!add && at >= 0)
        json_array_remove (members, (size_t) at);
    if ((add && at < 0) || (!add && at >= 0))
        status = zv_store_put (txn, ZV_TABLE_SERVER_GROUPS, group_id, rec);
    json_decref (rec);
    return status;
}

zv_status_t
zv_group_add_member (zv_txn_t *txn, const char *group_id, const char *uuid)
{
    return s_members_change (txn, group_id, uuid, true);
}

zv_status_t
zv_group_remove_member (zv_txn_t *txn, const char *group_id, const char *uuid)
{
    zv_status_t status = s_members_change (txn, group_id, uuid, false);
    return status == ZV_ENOTFOUND ? ZV_OK : status;
}

json_t *
zv_group_hosts (zv_txn_t *txn, const json_t *group, const char *except)
{
    json_t *hosts = json_object ();
    size_t index;
    json_t *member;
    json_array_foreach (json_object_get (group, "members"), index, member) {
        const char *uuid = json_string_value (member);
        if (except && strcmp (uuid, except) == 0)
            continue;
        json_t *instance = NULL;
        if (zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &instance) != ZV_OK)
            continue;
        const char *host = s_str (instance, "host");
        if (host && *host && !json_is_true (json_object_get (instance, "deleted"))) {
            json_int_t count = json_integer_value (json_object_get (hosts, host));
            json_object_set_new (hosts, host, json_integer (count + 1));
        }
        json_decref (instance);
    }
    return hosts;
}

zv_status_t
zv_group_check (zv_txn_t *txn, const json_t *group, const char *uuid, const char *host,
                char *errbuf, size_t errlen)
{
    const char *policy = s_str (group, "policy");
    bool affinity = policy && strcmp (policy, "affinity") == 0;
    bool anti = policy && strcmp (policy, "anti-affinity") == 0;
    if (!affinity && !anti)
        return ZV_OK;               //  soft policies only weigh
    json_t *hosts = zv_group_hosts (txn, group, uuid);
    zv_status_t status = ZV_OK;
    if (affinity) {
        const char *other;
        json_t *count;
        json_object_foreach (hosts, other, count)
            if (status == ZV_OK && strcmp (other, host) != 0) {
                snprintf (errbuf, errlen, "Affinity instance group policy was violated: "
                          "members are on %s, not %s.", other, host);
                status = ZV_ECONFLICT;
            }
    }
    else {
        json_int_t max = json_integer_value (json_object_get (json_object_get (group, "rules"),
                                                              "max_server_per_host"));
        if (max < 1)
            max = 1;
        json_int_t there = json_integer_value (json_object_get (hosts, host));
        if (there >= max) {
            snprintf (errbuf, errlen, "Anti-affinity instance group policy was violated: %lld member(s) "
                      "already on %s (max_server_per_host %lld).", (long long) there, host, (long long) max);
            status = ZV_ECONFLICT;
        }
    }
    json_decref (hosts);
    return status;
}
