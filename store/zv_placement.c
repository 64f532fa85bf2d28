/*  zv_placement.c: placement on the store's records.

    Kept in store/ because it is record logic only: no sockets, no actors.
    The conductor calls it inside its batch transaction, so a claim, the
    instance's compare-and-swap and the usage update commit together or not
    at all.  Amounts are integers (json integers), ratios doubles.          */

#include "store/zv_placement.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

static json_int_t
s_int (const json_t *object, const char *key, json_int_t dflt)
{
    json_t *value = json_object_get (object, key);
    return json_is_integer (value) ? json_integer_value (value) : dflt;
}

static double
s_num (const json_t *object, const char *key, double dflt)
{
    json_t *value = json_object_get (object, key);
    return json_is_number (value) ? json_number_value (value) : dflt;
}

static bool
s_valid_class (const char *name)
{
    static const char *standard [] = { "VCPU", "MEMORY_MB", "DISK_GB", NULL };
    for (int index = 0; standard [index]; index++)
        if (strcmp (name, standard [index]) == 0)
            return true;
    if (strncmp (name, "CUSTOM_", 7) != 0 || !name [7])
        return false;
    for (const char *c = name + 7; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

json_t *
zv_placement_effective (const json_t *provider)
{
    json_t *effective = json_deep_copy (json_object_get (provider, "inventories"));
    if (!json_is_object (effective)) {
        json_decref (effective);
        return json_object ();
    }
    json_t *overrides = json_object_get (provider, "overrides");
    const char *name;
    json_t *change;
    json_object_foreach (overrides, name, change) {
        json_t *inventory = json_object_get (effective, name);
        if (json_is_object (inventory))
            json_object_update_existing (inventory, change);
    }
    return effective;
}

static double
s_capacity_of (const json_t *inventory)
{
    return ((double) s_int (inventory, "total", 0) - (double) s_int (inventory, "reserved", 0))
         * s_num (inventory, "allocation_ratio", 1.0);
}

double
zv_placement_capacity (const json_t *provider, const char *resource_class)
{
    json_t *effective = zv_placement_effective (provider);
    json_t *inventory = json_object_get (effective, resource_class);
    double capacity = inventory ? s_capacity_of (inventory) : 0;
    json_decref (effective);
    return capacity;
}

static zv_status_t
s_check_inventory (const char *name, const json_t *inventory, char *errbuf, size_t errlen)
{
    if (!s_valid_class (name)) {
        snprintf (errbuf, errlen, "Invalid resource class '%s' (VCPU, MEMORY_MB, DISK_GB or CUSTOM_*).", name);
        return ZV_EINVAL;
    }
    json_int_t total = s_int (inventory, "total", -1);
    json_int_t reserved = s_int (inventory, "reserved", 0);
    json_int_t min_unit = s_int (inventory, "min_unit", 1);
    json_int_t max_unit = s_int (inventory, "max_unit", total);
    json_int_t step = s_int (inventory, "step_size", 1);
    double ratio = s_num (inventory, "allocation_ratio", 1.0);
    if (total < 0 || reserved < 0 || min_unit < 1 || max_unit < min_unit || step < 1
    ||  !(ratio > 0) || isinf (ratio)) {
        snprintf (errbuf, errlen, "Invalid inventory of %s: total >= 0, reserved >= 0, "
                  "1 <= min_unit <= max_unit, step_size >= 1 and allocation_ratio > 0 are required.", name);
        return ZV_EINVAL;
    }
    return ZV_OK;
}

zv_status_t
zv_placement_report (zv_txn_t *txn, const char *host, const json_t *inventories,
                     bool *changed_p, char *errbuf, size_t errlen)
{
    const char *name;
    json_t *inventory;
    json_object_foreach ((json_t *) inventories, name, inventory) {
        zv_status_t status = s_check_inventory (name, inventory, errbuf, errlen);
        if (status != ZV_OK)
            return status;
    }
    json_t *provider = NULL;
    if (zv_store_get (txn, ZV_TABLE_NODES, host, &provider) != ZV_OK) {
        char uuid [ZV_UUID_LEN + 1];
        zv_uuid_new (uuid);
        provider = json_pack ("{s:s, s:s, s:s, s:{}, s:{}, s:{}, s:I}", "id", uuid, "host", host,
                              "hypervisor_hostname", host, "inventories", "usages", "overrides",
                              "generation", (json_int_t) 0);
    }
    bool changed = !json_equal (json_object_get (provider, "inventories"), inventories);
    zv_status_t status = ZV_OK;
    if (changed) {
        json_object_set_new (provider, "inventories", json_deep_copy (inventories));
        json_object_set_new (provider, "generation", json_integer (s_int (provider, "generation", 0) + 1));
        status = zv_store_put (txn, ZV_TABLE_NODES, host, provider);
    }
    json_decref (provider);
    if (changed_p)
        *changed_p = changed;
    return status;
}

zv_status_t
zv_placement_override (zv_txn_t *txn, const char *host, const char *resource_class,
                       const json_t *change, char *errbuf, size_t errlen)
{
    json_t *provider = NULL;
    if (zv_store_get (txn, ZV_TABLE_NODES, host, &provider) != ZV_OK) {
        snprintf (errbuf, errlen, "Resource provider %s could not be found.", host);
        return ZV_ENOTFOUND;
    }
    zv_status_t status = ZV_OK;
    if (!json_object_get (json_object_get (provider, "inventories"), resource_class)) {
        snprintf (errbuf, errlen, "Resource provider %s has no inventory of %s.", host, resource_class);
        status = ZV_ENOTFOUND;
    }
    json_t *overrides = json_object_get (provider, "overrides");
    if (!json_is_object (overrides)) {
        overrides = json_object ();
        json_object_set_new (provider, "overrides", overrides);
    }
    json_t *mine = json_object_get (overrides, resource_class);
    json_t *next = mine ? json_deep_copy (mine) : json_object ();
    json_t *ratio = json_object_get (change, "allocation_ratio");
    json_t *reserved = json_object_get (change, "reserved");
    if (status == ZV_OK && ratio && (!json_is_number (ratio) || !(json_number_value (ratio) > 0)
                                     || isinf (json_number_value (ratio)))) {
        snprintf (errbuf, errlen, "allocation_ratio must be a number > 0.");
        status = ZV_EINVAL;
    }
    if (status == ZV_OK && reserved && (!json_is_integer (reserved) || json_integer_value (reserved) < 0)) {
        snprintf (errbuf, errlen, "reserved must be an integer >= 0.");
        status = ZV_EINVAL;
    }
    if (status == ZV_OK) {
        if (ratio)
            json_object_set_new (next, "allocation_ratio", json_real (json_number_value (ratio)));
        if (reserved)
            json_object_set (next, "reserved", reserved);
        json_object_set (overrides, resource_class, next);
        double capacity = zv_placement_capacity (provider, resource_class);
        json_int_t used = s_int (json_object_get (provider, "usages"), resource_class, 0);
        if ((double) used > capacity) {
            snprintf (errbuf, errlen, "Usage of %s on %s (%lld) would exceed the new capacity (%.0f).",
                      resource_class, host, (long long) used, capacity);
            status = ZV_ECONFLICT;
        }
    }
    if (status == ZV_OK) {
        json_object_set_new (provider, "generation", json_integer (s_int (provider, "generation", 0) + 1));
        status = zv_store_put (txn, ZV_TABLE_NODES, host, provider);
    }
    json_decref (next);
    json_decref (provider);
    return status;
}

//  Add sign x resources to a provider's usages (claims +1, releases -1).
static zv_status_t
s_add_usage (zv_txn_t *txn, const char *host, const json_t *resources, int sign)
{
    json_t *provider = NULL;
    zv_status_t status = zv_store_get (txn, ZV_TABLE_NODES, host, &provider);
    if (status != ZV_OK)
        return status;
    json_t *usages = json_object_get (provider, "usages");
    if (!json_is_object (usages)) {
        usages = json_object ();
        json_object_set_new (provider, "usages", usages);
    }
    const char *name;
    json_t *amount;
    json_object_foreach ((json_t *) resources, name, amount) {
        json_int_t next = s_int (usages, name, 0) + sign * json_integer_value (amount);
        json_object_set_new (usages, name, json_integer (next < 0 ? 0 : next));
    }
    json_object_set_new (provider, "generation", json_integer (s_int (provider, "generation", 0) + 1));
    status = zv_store_put (txn, ZV_TABLE_NODES, host, provider);
    json_decref (provider);
    return status;
}

zv_status_t
zv_placement_claim (zv_txn_t *txn, const char *consumer, const char *project_id,
                    const char *host, const json_t *resources, char *errbuf, size_t errlen)
{
    json_t *existing = NULL;
    if (zv_store_get (txn, ZV_TABLE_ALLOCATIONS, consumer, &existing) == ZV_OK) {
        json_decref (existing);
        snprintf (errbuf, errlen, "Consumer %s already holds an allocation.", consumer);
        return ZV_EEXIST;
    }
    json_t *provider = NULL;
    if (zv_store_get (txn, ZV_TABLE_NODES, host, &provider) != ZV_OK) {
        snprintf (errbuf, errlen, "Resource provider %s could not be found.", host);
        return ZV_ENOTFOUND;
    }
    json_t *effective = zv_placement_effective (provider);
    json_t *usages = json_object_get (provider, "usages");
    zv_status_t status = ZV_OK;
    json_t *claimed = json_object ();
    const char *name;
    json_t *amount_value;
    json_object_foreach ((json_t *) resources, name, amount_value) {
        json_int_t amount = json_integer_value (amount_value);
        if (amount <= 0)
            continue;               //  nothing asked of this class
        json_t *inventory = json_object_get (effective, name);
        json_int_t used = s_int (usages, name, 0);
        double capacity = inventory ? s_capacity_of (inventory) : 0;
        if (!inventory) {
            snprintf (errbuf, errlen, "Host %s has no inventory of %s.", host, name);
            status = ZV_ECONFLICT;
        }
        else
        if (amount < s_int (inventory, "min_unit", 1) || amount > s_int (inventory, "max_unit", amount)
        ||  amount % s_int (inventory, "step_size", 1) != 0) {
            snprintf (errbuf, errlen, "Unable to allocate %lld %s on host %s: min_unit %lld, "
                      "max_unit %lld, step_size %lld.", (long long) amount, name, host,
                      (long long) s_int (inventory, "min_unit", 1),
                      (long long) s_int (inventory, "max_unit", amount),
                      (long long) s_int (inventory, "step_size", 1));
            status = ZV_ECONFLICT;
        }
        else
        if ((double) (used + amount) > capacity) {
            snprintf (errbuf, errlen, "Insufficient inventory of %s on host %s: %lld requested, "
                      "%.0f free.", name, host, (long long) amount, capacity - (double) used);
            status = ZV_ECONFLICT;
        }
        if (status != ZV_OK)
            break;
        json_object_set_new (claimed, name, json_integer (amount));
    }
    json_decref (effective);
    json_decref (provider);
    if (status == ZV_OK)
        status = s_add_usage (txn, host, claimed, +1);
    if (status == ZV_OK) {
        char now [32];
        json_t *allocation = json_pack ("{s:s, s:s, s:s, s:{s:{s:O}}}", "consumer", consumer,
                                        "project_id", project_id ? project_id : "",
                                        "created_at", zv_iso8601 (zv_now_ms (), now),
                                        "allocations", host, "resources", claimed);
        status = zv_store_put (txn, ZV_TABLE_ALLOCATIONS, consumer, allocation);
        json_decref (allocation);
    }
    json_decref (claimed);
    return status;
}

zv_status_t
zv_placement_release (zv_txn_t *txn, const char *consumer)
{
    json_t *allocation = NULL;
    if (zv_store_get (txn, ZV_TABLE_ALLOCATIONS, consumer, &allocation) != ZV_OK)
        return ZV_OK;
    zv_status_t status = ZV_OK;
    const char *host;
    json_t *against;
    json_object_foreach (json_object_get (allocation, "allocations"), host, against) {
        status = s_add_usage (txn, host, json_object_get (against, "resources"), -1);
        if (status == ZV_ENOTFOUND)
            status = ZV_OK;         //  a provider that is gone holds nothing
        if (status != ZV_OK)
            break;
    }
    if (status == ZV_OK)
        status = zv_store_del (txn, ZV_TABLE_ALLOCATIONS, consumer);
    json_decref (allocation);
    return status;
}

zv_status_t
zv_placement_move (zv_txn_t *txn, const char *from, const char *to)
{
    json_t *allocation = NULL;
    if (zv_store_get (txn, ZV_TABLE_ALLOCATIONS, from, &allocation) != ZV_OK)
        return ZV_OK;
    json_t *existing = NULL;
    if (zv_store_get (txn, ZV_TABLE_ALLOCATIONS, to, &existing) == ZV_OK) {
        json_decref (existing);
        json_decref (allocation);
        return ZV_EEXIST;
    }
    json_object_set_new (allocation, "consumer", json_string (to));
    zv_status_t status = zv_store_put (txn, ZV_TABLE_ALLOCATIONS, to, allocation);
    if (status == ZV_OK)
        status = zv_store_del (txn, ZV_TABLE_ALLOCATIONS, from);
    json_decref (allocation);
    return status;
}

json_t *
zv_placement_flavor_resources (const json_t *flavor)
{
    json_int_t disk_gb = s_int (flavor, "disk_gb", 0) + s_int (flavor, "ephemeral_gb", 0)
                       + (s_int (flavor, "swap_mb", 0) + 1023) / 1024;
    json_t *resources = json_pack ("{s:I, s:I, s:I}", "VCPU", s_int (flavor, "vcpus", 0),
                                   "MEMORY_MB", s_int (flavor, "ram_mb", 0), "DISK_GB", disk_gb);
    const char *key;
    json_t *value;
    json_object_foreach (json_object_get (flavor, "extra_specs"), key, value) {
        if (strncmp (key, "resources:", 10) != 0 || !s_valid_class (key + 10))
            continue;
        const char *text = json_string_value (value);
        char *end = NULL;
        long long amount = text ? strtoll (text, &end, 10) : -1;
        if (text && end != text && !*end && amount >= 0)
            json_object_set_new (resources, key + 10, json_integer (amount));
    }
    return resources;
}

json_t *
zv_placement_view (json_t *provider)
{
    json_t *effective = zv_placement_effective (provider);
    json_t *usages = json_object_get (provider, "usages");
    const char *name;
    json_t *inventory;
    json_object_foreach (effective, name, inventory) {
        json_object_set_new (inventory, "used", json_integer (s_int (usages, name, 0)));
        json_object_set_new (inventory, "capacity", json_integer ((json_int_t) floor (s_capacity_of (inventory))));
    }
    json_t *vcpu = json_object_get (effective, "VCPU");
    json_t *memory = json_object_get (effective, "MEMORY_MB");
    json_t *disk = json_object_get (effective, "DISK_GB");
    json_object_set_new (provider, "vcpus", json_integer (s_int (vcpu, "total", 0)));
    json_object_set_new (provider, "vcpus_used", json_integer (s_int (usages, "VCPU", 0)));
    json_object_set_new (provider, "memory_mb", json_integer (s_int (memory, "total", 0)));
    json_object_set_new (provider, "memory_mb_used", json_integer (s_int (usages, "MEMORY_MB", 0)));
    json_object_set_new (provider, "local_gb", json_integer (s_int (disk, "total", 0)));
    json_object_set_new (provider, "local_gb_used", json_integer (s_int (usages, "DISK_GB", 0)));
    json_object_set_new (provider, "inventories", effective);
    json_object_del (provider, "_rv");
    return provider;
}

typedef struct {
    const char *host;
    json_t *found;
} s_of_t;

static bool
s_allocations_visit (const char *key, json_t *rec, void *arg)
{
    s_of_t *of = (s_of_t *) arg;
    json_t *against = json_object_get (json_object_get (rec, "allocations"), of->host);
    if (against)
        json_object_set (of->found, key, json_object_get (against, "resources"));
    return true;
}

json_t *
zv_placement_allocations_of (zv_txn_t *txn, const char *host)
{
    s_of_t of = { host, json_object () };
    zv_store_scan (txn, ZV_TABLE_ALLOCATIONS, "", s_allocations_visit, &of);
    return of.found;
}
