/*  admin.c: the objects admins shape the cloud with: flavor properties,
    aggregates and availability zones, server groups, resource providers.

    Thin handlers: the rules live in the store modules (zv_aggregate,
    zv_group, zv_placement), so these check the request, call one of them
    inside the handler's transaction and shape the reply.  A change that
    alters what a scheduler sees bumps self->generation.                    */

#include "actors/conductor/conductor.h"
#include "store/zv_placement.h"
#include "store/zv_aggregate.h"
#include "store/zv_group.h"

//  ---------------------------------------------------------------------
//  Zones of hosts (servers.c checks a requested zone, hosts.c shows them)

//  A host's zone, from zv_aggregate_by_host's map: its zoned aggregate's,
//  else the default zone.  Borrowed from by_host or the config.
const char *
zv_conductor_host_zone (zv_conductor_t *self, const json_t *by_host, const char *host)
{
    const char *zone = self->cfg.default_availability_zone;
    size_t index;
    json_t *aggregate;
    json_array_foreach (json_object_get (by_host, host), index, aggregate)
        if (s_str (aggregate, "availability_zone"))
            zone = s_str (aggregate, "availability_zone");
    return zone;
}

//  The zones that exist are those of compute hosts, as in Nova: an
//  aggregate's zone once it has a host, and the default zone while some
//  compute host is in no zoned aggregate.
bool
zv_conductor_zone_exists (zv_conductor_t *self, zv_txn_t *txn, const char *zone)
{
    json_t *nodes = zv_conductor_collect (self, txn, ZV_TABLE_NODES, NULL, NULL);
    json_t *by_host = zv_aggregate_by_host (txn);
    bool found = false;
    size_t index;
    json_t *node;
    json_array_foreach (nodes, index, node) {
        found |= streq (zv_conductor_host_zone (self, by_host, s_str (node, "host")), zone);
    }
    json_decref (nodes);
    json_decref (by_host);
    return found;
}

//  ---------------------------------------------------------------------
//  Flavor properties, aggregates and zones, server groups, resource
//  providers

//  Properties as Nova's extra specs and aggregate metadata take them:
//  string values, or null to unset.
static zv_status_t
s_check_properties (const json_t *properties, char *errbuf, size_t errlen)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) properties, key, value) {
        if (!*key || strlen (key) > 255 || (!json_is_string (value) && !json_is_null (value))
        ||  (json_is_string (value) && strlen (json_string_value (value)) > 255)) {
            snprintf (errbuf, errlen, "Invalid property '%s': keys and values are strings of 1 to 255 "
                      "bytes (null unsets).", key);
            return ZV_EINVAL;
        }
    }
    return ZV_OK;
}

zv_status_t
zv_conductor_flavor_set (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                         char *errbuf, size_t errlen)
{
    (void) self;
    json_t *properties = json_object_get (zv_msg_body (call->msg), "properties");
    zv_status_t status = s_check_properties (properties, errbuf, errlen);
    json_t *flavor = NULL;
    if (status == ZV_OK)
        status = zv_conductor_find (txn, ZV_TABLE_FLAVORS, "flavor", zv_msg_get_str (call->msg, "ref"), NULL,
                                    &flavor, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    json_t *specs = json_object_get (flavor, "extra_specs");
    if (!json_is_object (specs)) {
        specs = json_object ();
        json_object_set_new (flavor, "extra_specs", specs);
    }
    const char *key;
    json_t *value;
    json_object_foreach (properties, key, value) {
        if (json_is_null (value))
            json_object_del (specs, key);
        else
            json_object_set (specs, key, value);
    }
    status = zv_store_put (txn, ZV_TABLE_FLAVORS, s_str (flavor, "id"), flavor);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:O}", "flavor", zv_conductor_strip (flavor));
    json_decref (flavor);
    return status;
}

//  A zone name is a name without ':' (AZ:HOST forces a host), as Nova's.
static bool
s_valid_zone (const char *zone, char *errbuf, size_t errlen)
{
    if (!zone || !*zone)
        return true;
    if (!zv_conductor_valid_name ("availability zone", zone, errbuf, errlen))
        return false;
    if (strchr (zone, ':')) {
        snprintf (errbuf, errlen, "Invalid availability zone name '%s': it must not include ':'.", zone);
        return false;
    }
    return true;
}

static zv_status_t
s_aggregate_reply (zv_conductor_call_t *call, zv_status_t status, json_t *aggregate)
{
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "aggregate", aggregate);
    else
        json_decref (aggregate);
    return status;
}

zv_status_t
zv_conductor_aggregate_create (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                               char *errbuf, size_t errlen)
{
    const char *name = zv_msg_get_str (call->msg, "name");
    const char *zone = zv_msg_get_str (call->msg, "availability_zone");
    if (!zv_conductor_valid_name ("aggregate", name, errbuf, errlen) || !s_valid_zone (zone, errbuf, errlen))
        return ZV_EINVAL;
    json_t *aggregate = NULL;
    zv_status_t status = zv_aggregate_create (txn, name, zone, &aggregate, errbuf, errlen);
    self->generation++;
    return s_aggregate_reply (call, status, aggregate);
}

zv_status_t
zv_conductor_aggregate_list (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                             char *errbuf, size_t errlen)
{
    (void) self;
    (void) errbuf;
    (void) errlen;
    call->reply = json_pack ("{s:o}", "aggregates", zv_aggregate_list (txn));
    return ZV_OK;
}

zv_status_t
zv_conductor_aggregate_show (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                             char *errbuf, size_t errlen)
{
    (void) self;
    json_t *aggregate = NULL;
    zv_status_t status = zv_aggregate_find (txn, zv_msg_get_str (call->msg, "ref"), &aggregate, errbuf, errlen);
    if (aggregate)
        json_object_del (aggregate, "_rv");
    return s_aggregate_reply (call, status, aggregate);
}

zv_status_t
zv_conductor_aggregate_delete (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                               char *errbuf, size_t errlen)
{
    zv_status_t status = zv_aggregate_delete (txn, zv_msg_get_str (call->msg, "ref"), errbuf, errlen);
    if (status == ZV_OK) {
        self->generation++;
        call->reply = json_object ();
    }
    return status;
}

zv_status_t
zv_conductor_aggregate_host (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                             char *errbuf, size_t errlen)
{
    const char *host = zv_msg_get_str (call->msg, "host");
    bool add = streq (zv_msg_type (call->msg), "conductor.aggregate_add_host");
    json_t *node = NULL;
    //  As Nova: only a known compute host joins an aggregate.
    if (add && zv_store_get (txn, ZV_TABLE_NODES, host, &node) != ZV_OK) {
        snprintf (errbuf, errlen, "Compute host %s could not be found.", host);
        return ZV_ENOTFOUND;
    }
    json_decref (node);
    json_t *aggregate = NULL;
    zv_status_t status = add
        ? zv_aggregate_add_host (txn, zv_msg_get_str (call->msg, "ref"), host, &aggregate, errbuf, errlen)
        : zv_aggregate_remove_host (txn, zv_msg_get_str (call->msg, "ref"), host, &aggregate, errbuf, errlen);
    self->generation++;
    return s_aggregate_reply (call, status, aggregate);
}

zv_status_t
zv_conductor_aggregate_set (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    json_t *properties = json_object_get (zv_msg_body (call->msg), "properties");
    zv_status_t status = s_check_properties (properties, errbuf, errlen);
    const char *zone = zv_msg_get_str (call->msg, "availability_zone");
    json_t *meta_zone = json_object_get (properties, "availability_zone");
    if (status == ZV_OK && (!s_valid_zone (zone, errbuf, errlen)
                            || !s_valid_zone (json_string_value (meta_zone), errbuf, errlen)))
        status = ZV_EINVAL;
    json_t *aggregate = NULL;
    if (status == ZV_OK)
        status = zv_aggregate_set (txn, zv_msg_get_str (call->msg, "ref"), properties, zone,
                                   &aggregate, errbuf, errlen);
    self->generation++;
    return s_aggregate_reply (call, status, aggregate);
}

//  Zones: the default one (hosts in no zoned aggregate) and each
//  aggregate's, with their hosts and those hosts' services when long.
zv_status_t
zv_conductor_zone_list (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                        char *errbuf, size_t errlen)
{
    bool long_form = zv_msg_get_bool (call->msg, "long", false);
    //  The hosts and services of each zone are for admins, as in Nova.
    if (long_form && !zv_conductor_is_admin (call))
        return zv_conductor_forbidden ("os_compute_api:os-availability-zone:detail", errbuf, errlen);
    json_t *by_host = zv_aggregate_by_host (txn);
    //  Zones come from the compute hosts in them (Nova's rule): a zone with
    //  no host is not listed.
    json_t *zones = json_object ();             //  name -> [hosts]
    size_t index;
    json_t *services = zv_conductor_collect (self, txn, ZV_TABLE_SERVICES, NULL, NULL);
    json_t *service;
    json_array_foreach (services, index, service) {
        if (!streq (s_str (service, "binary"), "compute"))
            continue;
        const char *zone = zv_conductor_host_zone (self, by_host, s_str (service, "host"));
        zv_conductor_service_view (self, service);
        if (!json_object_get (zones, zone))
            json_object_set_new (zones, zone, json_array ());
        json_array_append_new (json_object_get (zones, zone), json_pack ("{s:O, s:[{s:O, s:O, s:O, s:O}]}",
            "host", json_object_get (service, "host"), "services",
            "binary", json_object_get (service, "binary"), "state", json_object_get (service, "state"),
            "status", json_object_get (service, "status"), "updated_at", json_object_get (service, "updated_at")));
    }
    json_decref (services);
    json_t *list = json_array ();
    const char *name;
    json_t *hosts;
    json_object_foreach (zones, name, hosts) {
        json_t *zone = json_pack ("{s:s, s:s}", "name", name, "state", "available");
        if (long_form)
            json_object_set (zone, "hosts", hosts);
        json_array_append_new (list, zone);
    }
    json_decref (zones);
    json_decref (by_host);
    call->reply = json_pack ("{s:o}", "availability_zones", list);
    return ZV_OK;
}

zv_status_t
zv_conductor_group_create (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                           char *errbuf, size_t errlen)
{
    (void) self;
    const char *name = zv_msg_get_str (call->msg, "name");
    if (!zv_conductor_valid_name ("server group", name, errbuf, errlen))
        return ZV_EINVAL;
    json_t *group = NULL;
    zv_status_t status = zv_group_create (txn, name, zv_msg_get_str (call->msg, "policy"),
                                          json_object_get (zv_msg_body (call->msg), "rules"),
                                          zv_conductor_project (call), &group, errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "server_group", zv_conductor_strip (group));
    return status;
}

zv_status_t
zv_conductor_group_list (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                         char *errbuf, size_t errlen)
{
    (void) self;
    bool all = zv_msg_get_bool (call->msg, "all_projects", false);
    if (all && !zv_conductor_is_admin (call))
        return zv_conductor_forbidden ("os_compute_api:os-server-groups:index:all_projects", errbuf, errlen);
    call->reply = json_pack ("{s:o}", "server_groups",
                             zv_group_list (txn, all ? NULL : zv_conductor_project (call)));
    return ZV_OK;
}

zv_status_t
zv_conductor_group_show (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                         char *errbuf, size_t errlen)
{
    (void) self;
    json_t *group = NULL;
    //  An admin sees every project's groups.
    zv_status_t status = zv_group_find (txn, zv_msg_get_str (call->msg, "ref"),
                                        zv_conductor_is_admin (call) ? NULL : zv_conductor_project (call),
                                        &group, errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "server_group", zv_conductor_strip (group));
    return status;
}

zv_status_t
zv_conductor_group_delete (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                           char *errbuf, size_t errlen)
{
    (void) self;
    zv_status_t status = zv_group_delete (txn, zv_msg_get_str (call->msg, "ref"),
                                          zv_conductor_is_admin (call) ? NULL : zv_conductor_project (call),
                                          errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_object ();
    return status;
}

//  A provider as placement shows it: effective inventories with used and
//  capacity per class, usages, generation.
static json_t *
s_provider_view (json_t *node)
{
    zv_placement_view (node);
    json_t *view = json_pack ("{s:O, s:O, s:O, s:O, s:O, s:O}", "id", json_object_get (node, "id"),
                              "name", json_object_get (node, "host"), "host", json_object_get (node, "host"),
                              "generation", json_object_get (node, "generation"),
                              "inventories", json_object_get (node, "inventories"),
                              "usages", json_object_get (node, "usages") ? json_object_get (node, "usages") : json_null ());
    json_decref (node);
    return view;
}

static bool
s_provider_keep (zv_conductor_t *self, json_t *rec, void *arg)
{
    (void) self;
    (void) arg;
    return json_object_get (rec, "inventories") != NULL;
}

zv_status_t
zv_conductor_provider_list (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    json_t *nodes = zv_conductor_collect (self, txn, ZV_TABLE_NODES, s_provider_keep, NULL);
    json_t *list = json_array ();
    size_t index;
    json_t *node;
    json_array_foreach (nodes, index, node)
        json_array_append_new (list, s_provider_view (json_incref (node)));
    json_decref (nodes);
    call->reply = json_pack ("{s:o}", "resource_providers", list);
    return ZV_OK;
}

//  By host name or provider uuid.
static zv_status_t
s_find_provider (zv_conductor_t *self, zv_txn_t *txn, const char *ref, json_t **node_p, char *errbuf, size_t errlen)
{
    if (zv_store_get (txn, ZV_TABLE_NODES, ref, node_p) == ZV_OK)
        return ZV_OK;
    json_t *nodes = zv_conductor_collect (self, txn, ZV_TABLE_NODES, NULL, NULL);
    size_t index;
    json_t *node;
    *node_p = NULL;
    json_array_foreach (nodes, index, node)
        if (s_str (node, "id") && streq (s_str (node, "id"), ref))
            *node_p = json_incref (node);
    json_decref (nodes);
    if (*node_p)
        return ZV_OK;
    snprintf (errbuf, errlen, "Resource provider %s could not be found.", ref);
    return ZV_ENOTFOUND;
}

zv_status_t
zv_conductor_provider_show (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    json_t *node = NULL;
    zv_status_t status = s_find_provider (self, txn, zv_msg_get_str (call->msg, "ref"), &node, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    json_t *allocations = zv_placement_allocations_of (txn, s_str (node, "host"));
    json_t *view = s_provider_view (node);
    json_object_set_new (view, "allocations", allocations);
    call->reply = json_pack ("{s:o}", "resource_provider", view);
    return ZV_OK;
}

zv_status_t
zv_conductor_provider_set (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                           char *errbuf, size_t errlen)
{
    json_t *node = NULL;
    zv_status_t status = s_find_provider (self, txn, zv_msg_get_str (call->msg, "ref"), &node, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    json_t *body = zv_msg_body (call->msg);
    json_t *change = json_object ();
    if (json_object_get (body, "allocation_ratio"))
        json_object_set (change, "allocation_ratio", json_object_get (body, "allocation_ratio"));
    if (json_object_get (body, "reserved"))
        json_object_set (change, "reserved", json_object_get (body, "reserved"));
    char host [256];
    snprintf (host, sizeof host, "%s", s_str (node, "host"));
    json_decref (node);
    status = zv_placement_override (txn, host, zv_msg_get_str (call->msg, "resource_class"), change, errbuf, errlen);
    json_decref (change);
    if (status == ZV_OK && zv_store_get (txn, ZV_TABLE_NODES, host, &node) == ZV_OK) {
        self->generation++;
        zv_info (ACTOR, zv_msg_rq (call->msg), "resource provider %s: %s inventory changed", host,
                 zv_msg_get_str (call->msg, "resource_class"));
        call->reply = json_pack ("{s:o}", "resource_provider", s_provider_view (node));
    }
    return status;
}
