/*  admin.c: the operator's commands in the zova CLI: compute services,
    hypervisors, host aggregates, availability zones, server groups, and
    resource providers with their inventories.

    Most of them are rows of the command table on the shared handlers
    (records.c); the handlers here are those with a syntax or a display of
    their own, in the openstack client's forms: zone list --long as a row
    per service of each host, a provider as its fields and then its
    inventories one class a row, --rule and --resource values typed as the
    wire wants them and checked in full before anything is sent.          */

#include <czmq.h>
#include <jansson.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/zv_common.h"
#include "cmd/zova/zova.h"


//  ---------------------------------------------------------------------
//  Views: list columns, the providers' flat form

//  A resource provider's flat form: its identity, and "used/capacity" for
//  each resource class it has an inventory of, keyed by the class, so that
//  a list shows at a glance how full each host is.  Used comes from the
//  inventory, else from usages; the capacity is the api's, never
//  recomputed here.
static json_t *
s_provider_flatten (json_t *provider, bool full)
{
    json_t *flat = json_pack ("{s:O?, s:O?, s:O?, s:O?}",
                              "id", json_object_get (provider, "id"),
                              "name", json_object_get (provider, "name"),
                              "host", json_object_get (provider, "host"),
                              "generation", json_object_get (provider, "generation"));
    if (!flat)
        zv_cli_out_of_memory ();
    json_t *usages = json_object_get (provider, "usages");
    const char *class;
    json_t *inventory;
    json_object_foreach (json_object_get (provider, "inventories"), class, inventory) {
        json_t *used = json_object_get (inventory, "used");
        json_t *capacity = json_object_get (inventory, "capacity");
        if (!used)
            used = json_object_get (usages, class);
        strbuf_t cell = { 0 };
        if (used)
            zv_cli_buf_scalar (&cell, used);
        else
            zv_cli_buf_puts (&cell, "0");
        zv_cli_buf_puts (&cell, "/");
        if (capacity)
            zv_cli_buf_scalar (&cell, capacity);
        else
            zv_cli_buf_puts (&cell, "?");
        json_object_set_new (flat, class, json_string (cell.data));
        zv_cli_buf_free (&cell);
    }
    if (full) {
        const char *key;
        json_t *value;
        json_object_foreach (provider, key, value)
            if (!json_object_get (flat, key))
                json_object_set (flat, key, value);
    }
    return flat;
}

static const column_t s_service_columns [] = {
    { "ID", "id" }, { "Binary", "binary" }, { "Host", "host" }, { "Zone", "zone" },
    { "Status", "status" }, { "State", "state" }, { "Updated At", "updated_at" },
    { "Disabled Reason", "disabled_reason" },
    { NULL, NULL }
};

static const column_t s_hypervisor_columns [] = {
    { "ID", "id" }, { "Hypervisor Hostname", "hypervisor_hostname" },
    { "Hypervisor Type", "hypervisor_type" }, { "Host", "host" },
    { "State", "state" }, { "vCPUs Used", "vcpus_used" }, { "vCPUs", "vcpus" },
    { "Memory MB Used", "memory_mb_used" }, { "Memory MB", "memory_mb" },
    { "Local GB Used", "local_gb_used" }, { "Local GB", "local_gb" },
    { "Running VMs", "running_vms" },
    { NULL, NULL }
};

static const column_t s_aggregate_columns [] = {
    { "ID", "id" }, { "Name", "name" }, { "Availability Zone", "availability_zone" },
    { NULL, NULL }
};

static const column_t s_aggregate_long_columns [] = {
    { "ID", "id" }, { "Name", "name" }, { "Availability Zone", "availability_zone" },
    { "Hosts", "hosts" }, { "Properties", "metadata" },
    { NULL, NULL }
};

//  Zone rows are built by zv_cli_cmd_zone_list, with the openstack client's keys.
static const column_t s_zone_columns [] = {
    { "Zone Name", "zone_name" }, { "Zone Status", "zone_status" },
    { NULL, NULL }
};

static const column_t s_zone_long_columns [] = {
    { "Zone Name", "zone_name" }, { "Zone Status", "zone_status" },
    { "Host Name", "host_name" }, { "Service Name", "service_name" },
    { "Service Status", "service_status" },
    { NULL, NULL }
};

static const column_t s_group_columns [] = {
    { "ID", "id" }, { "Name", "name" }, { "Policy", "policy" }, { "Members", "members" },
    { NULL, NULL }
};

static const column_t s_provider_columns [] = {
    { "UUID", "id" }, { "Name", "name" }, { "Generation", "generation" },
    { "VCPU", "VCPU" }, { "MEMORY_MB", "MEMORY_MB" }, { "DISK_GB", "DISK_GB" },
    { NULL, NULL }
};

//  A provider's inventories, one class a row (see s_print_provider).
static const column_t s_inventory_columns [] = {
    { "Resource Class", "resource_class" }, { "Total", "total" },
    { "Reserved", "reserved" }, { "Min Unit", "min_unit" }, { "Max Unit", "max_unit" },
    { "Step Size", "step_size" }, { "Allocation Ratio", "allocation_ratio" },
    { "Used", "used" }, { "Capacity", "capacity" },
    { NULL, NULL }
};

static const column_t s_allocation_columns [] = {
    { "Consumer", "consumer" }, { "Resources", "resources" },
    { NULL, NULL }
};

const resource_t zv_cli_res_service = {
    .name = "service", .one = "service", .many = "services",
    .columns = s_service_columns
};

const resource_t zv_cli_res_hypervisor = {
    .name = "hypervisor", .one = "hypervisor", .many = "hypervisors",
    .columns = s_hypervisor_columns
};

const resource_t zv_cli_res_aggregate = {
    .name = "aggregate", .one = "aggregate", .many = "aggregates",
    .columns = s_aggregate_columns, .long_columns = s_aggregate_long_columns
};

const resource_t zv_cli_res_zone = {
    .name = "availability zone", .one = "availability_zone", .many = "availability_zones",
    .columns = s_zone_columns, .long_columns = s_zone_long_columns
};

const resource_t zv_cli_res_group = {
    .name = "server group", .one = "server_group", .many = "server_groups",
    .columns = s_group_columns
};

const resource_t zv_cli_res_provider = {
    .name = "resource provider", .one = "resource_provider", .many = "resource_providers",
    .columns = s_provider_columns,
    .flatten = s_provider_flatten
};


//  ---------------------------------------------------------------------
//  Services, aggregates, zones, server groups

//  compute service set [--enable|--disable [--reason R]] [--down|--up]
//  HOST [BINARY]: what is not asked for is left as it is (no disabled
//  key without --enable or --disable, no forced_down without --down or
//  --up).
int
zv_cli_cmd_service_set (cli_t *cli)
{
    bool enable = zv_cli_opt_flag (cli, "enable");
    bool disable = zv_cli_opt_flag (cli, "disable");
    bool down = zv_cli_opt_flag (cli, "down");
    bool up = zv_cli_opt_flag (cli, "up");
    if (enable && disable) {
        zv_cli_fail ("compute service set needs exactly one of --enable and --disable");
        return ZOVA_EXIT_USAGE;
    }
    if (down && up) {
        zv_cli_fail ("compute service set takes one of --down and --up, not both");
        return ZOVA_EXIT_USAGE;
    }
    if (!enable && !disable && !down && !up) {
        zv_cli_fail ("compute service set needs --enable or --disable, --down or --up");
        return ZOVA_EXIT_USAGE;
    }
    json_t *body = zv_cli_body_from_opts (cli);
    //  --reason is the short form of the openstack client's --disable-reason.
    const char *reason = json_string_value (zv_cli_opt (cli, "reason"));
    if (reason && !json_object_get (body, "disabled_reason"))
        json_object_set_new (body, "disabled_reason", json_string (reason));
    if (enable)
        json_object_del (body, "disabled_reason");
    json_object_set_new (body, "host", json_string (cli->args [0]));
    if (cli->nargs > 1)
        json_object_set_new (body, "binary", json_string (cli->args [1]));
    if (enable || disable)
        json_object_set_new (body, "disabled", json_boolean (disable));
    if (down || up)
        json_object_set_new (body, "forced_down", json_boolean (down));
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *service = zv_cli_reply_member (reply, "service", false, cli->cmd->type);
    int rc = service ? zv_cli_print_show (cli, &zv_cli_res_service, service) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  aggregate add host / aggregate remove host REF HOST
int
zv_cli_cmd_aggregate_host (cli_t *cli)
{
    json_t *body = json_pack ("{s:s, s:s}", "ref", cli->args [0], "host", cli->args [1]);
    if (!body)
        zv_cli_out_of_memory ();
    return zv_cli_call_show (cli, body);
}

//  One row of availability zone list; host and service may be NULL.  The
//  service status reads as the openstack client's: "enabled :-) <when>"
//  for a service that is up, "XXX" in place of the smile when it is not.
static json_t *
s_zone_row (json_t *zone, json_t *host, json_t *service)
{
    json_t *row = json_pack ("{s:O?, s:O?}",
                             "zone_name", json_object_get (zone, "name"),
                             "zone_status", json_object_get (zone, "state"));
    if (!row)
        zv_cli_out_of_memory ();
    if (host)
        json_object_set (row, "host_name", json_object_get (host, "host"));
    if (service) {
        const char *status = json_string_value (json_object_get (service, "status"));
        const char *state = json_string_value (json_object_get (service, "state"));
        const char *updated = json_string_value (json_object_get (service, "updated_at"));
        strbuf_t text = { 0 };
        zv_cli_buf_printf (&text, "%s %s", status ? status : "unknown",
                           state && streq (state, "up") ? ":-)" : "XXX");
        if (updated)
            zv_cli_buf_printf (&text, " %s", updated);
        json_object_set (row, "service_name", json_object_get (service, "binary"));
        json_object_set_new (row, "service_status", json_string (text.data));
        zv_cli_buf_free (&text);
    }
    return row;
}

//  availability zone list [--long]: a row per zone, or with --long a row
//  per service of each host in it (a zone without hosts keeps its row).
int
zv_cli_cmd_zone_list (cli_t *cli)
{
    const resource_t *res = cli->cmd->resource;
    json_t *reply = zv_cli_call (cli, cli->cmd->type, zv_cli_body_from_opts (cli));
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *zones = zv_cli_reply_member (reply, res->many, true, cli->cmd->type);
    if (!zones) {
        json_decref (reply);
        return ZOVA_EXIT_FAIL;
    }
    bool full = zv_cli_opt_flag (cli, "long");
    json_t *rows = json_array ();
    if (!rows)
        zv_cli_out_of_memory ();
    size_t i;
    json_t *zone;
    json_array_foreach (zones, i, zone) {
        json_t *hosts = json_object_get (zone, "hosts");
        if (!full || json_array_size (hosts) == 0) {
            json_array_append_new (rows, s_zone_row (zone, NULL, NULL));
            continue;
        }
        size_t j;
        json_t *host;
        json_array_foreach (hosts, j, host) {
            json_t *services = json_object_get (host, "services");
            if (json_array_size (services) == 0)
                json_array_append_new (rows, s_zone_row (zone, host, NULL));
            size_t k;
            json_t *service;
            json_array_foreach (services, k, service)
                json_array_append_new (rows, s_zone_row (zone, host, service));
        }
    }
    int rc = zv_cli_print_list (cli, res, rows);
    json_decref (rows);
    json_decref (reply);
    return rc;
}

//  server group create --policy P [--rule max_server_per_host=N] NAME.
//  Nova knows one rule, and its value is an integer on the wire.
int
zv_cli_cmd_group_create (cli_t *cli)
{
    json_t *rules = json_object ();
    if (!rules)
        zv_cli_out_of_memory ();
    const char *key;
    json_t *value;
    json_object_foreach (zv_cli_opt (cli, "rule"), key, value) {
        const char *text = json_string_value (value);
        if (!streq (key, "max_server_per_host")) {
            json_decref (rules);
            return zv_cli_usage_error (cli, "--rule: unknown rule '%s' (max_server_per_host)", key);
        }
        char *end;
        errno = 0;
        long long number = strtoll (text, &end, 10);
        if (errno || end == text || *end || number < 1) {
            json_decref (rules);
            return zv_cli_usage_error (cli, "--rule %s expects an integer >= 1, not '%s'", key, text);
        }
        json_object_set_new (rules, key, json_integer (number));
    }
    json_t *body = zv_cli_body_from_opts (cli);
    json_object_set_new (body, "name", json_string (cli->args [0]));
    json_object_set_new (body, "rules", rules);
    return zv_cli_call_show (cli, body);
}


//  ---------------------------------------------------------------------
//  Resource providers

//  What the Field | Value part of a provider leaves to the tables below it.
static const char *const s_provider_nested [] = {
    "inventories", "usages", "allocations", NULL
};

//  A resource provider: for scripts the record (allocations only when
//  asked for); for people its fields, then its inventories one class a row
//  (Used from usages when the inventory does not say), then, when asked
//  for, which consumer holds what.
static int
s_print_provider (const cli_t *cli, json_t *provider, bool allocations)
{
    int rc;
    if (cli->json) {
        json_t *copy = json_copy (provider);
        if (!copy)
            zv_cli_out_of_memory ();
        if (!allocations)
            json_object_del (copy, "allocations");
        rc = zv_cli_print_json (copy);
        json_decref (copy);
        return rc ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
    }
    strbuf_t out = { 0 };
    zv_cli_buf_show (&out, provider, s_provider_nested);

    json_t *rows = json_array ();
    if (!rows)
        zv_cli_out_of_memory ();
    json_t *usages = json_object_get (provider, "usages");
    const char *key;
    json_t *value;
    json_object_foreach (json_object_get (provider, "inventories"), key, value) {
        json_t *row = json_is_object (value) ? json_copy (value) : json_object ();
        if (!row)
            zv_cli_out_of_memory ();
        json_object_set_new (row, "resource_class", json_string (key));
        if (!json_object_get (row, "used") && json_object_get (usages, key))
            json_object_set (row, "used", json_object_get (usages, key));
        json_array_append_new (rows, row);
    }
    zv_cli_buf_puts (&out, "\n");
    zv_cli_buf_rows (&out, s_inventory_columns, rows);
    json_array_clear (rows);

    if (allocations) {
        json_object_foreach (json_object_get (provider, "allocations"), key, value)
            json_array_append_new (rows, json_pack ("{s:s, s:O}",
                                                    "consumer", key, "resources", value));
        zv_cli_buf_puts (&out, "\n");
        zv_cli_buf_rows (&out, s_allocation_columns, rows);
    }
    rc = zv_cli_buf_write (&out);
    zv_cli_buf_free (&out);
    json_decref (rows);
    return rc ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
}

//  resource provider show [--allocations] REF
int
zv_cli_cmd_provider_show (cli_t *cli)
{
    json_t *reply = zv_cli_call (cli, cli->cmd->type, zv_cli_body_str ("ref", cli->args [0]));
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *provider = zv_cli_reply_member (reply, "resource_provider", false, cli->cmd->type);
    int rc = provider ? s_print_provider (cli, provider, zv_cli_opt_flag (cli, "allocations"))
                      : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  A resource class name as placement spells them: VCPU, CUSTOM_GPU_A100.
static bool
s_class_valid (const char *name, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((name [i] >= 'A' && name [i] <= 'Z') || (name [i] >= '0' && name [i] <= '9')
        ||    name [i] == '_'))
            return false;
    return true;
}

//  One --resource CLASS:FIELD=VALUE into fields[CLASS][FIELD], typed as
//  the wire wants it; 0, or the exit status of a usage error (reported).
static int
s_inventory_field (const cli_t *cli, json_t *fields, const char *key, const char *text)
{
    const char *colon = strchr (key, ':');
    if (!colon || !s_class_valid (key, (size_t) (colon - key)))
        return zv_cli_usage_error (cli, "--resource expects CLASS:FIELD=VALUE, not '%s=%s'",
                                   key, text);
    const char *field = colon + 1;
    json_t *value = NULL;
    char *end;
    errno = 0;
    if (streq (field, "allocation_ratio")) {
        double ratio = strtod (text, &end);
        if (errno == 0 && end != text && !*end && isfinite (ratio) && ratio > 0)
            value = json_real (ratio);
    }
    else
    if (streq (field, "reserved")) {
        long long reserved = strtoll (text, &end, 10);
        if (errno == 0 && end != text && !*end && reserved >= 0)
            value = json_integer (reserved);
    }
    else
        return zv_cli_usage_error (cli, "--resource: unknown field '%s' (allocation_ratio or reserved)",
                                   field);
    if (!value)
        return zv_cli_usage_error (cli, "--resource %s expects %s, not '%s'", key,
                                   streq (field, "reserved") ? "an integer >= 0" : "a number > 0",
                                   text);
    char *class = strndup (key, (size_t) (colon - key));
    if (!class)
        zv_cli_out_of_memory ();
    json_t *mine = json_object_get (fields, class);
    if (!mine) {
        mine = json_object ();
        json_object_set_new (fields, class, mine);
    }
    json_object_set_new (mine, field, value);
    free (class);
    return 0;
}

//  resource provider inventory set --resource CLASS:FIELD=VALUE... REF, in
//  the openstack client's syntax.  Every argument is checked before
//  anything is sent; then one api.provider_set per class, in order, stops
//  at the first refusal.  The provider as the last reply left it is shown.
int
zv_cli_cmd_inventory_set (cli_t *cli)
{
    json_t *fields = json_object ();
    if (!fields)
        zv_cli_out_of_memory ();
    json_t *reply = NULL;
    int rc = 0;
    const char *key;
    json_t *value;
    json_object_foreach (zv_cli_opt (cli, "resource"), key, value)
        if ((rc = s_inventory_field (cli, fields, key, json_string_value (value))))
            goto cleanup;
    rc = ZOVA_EXIT_FAIL;
    json_object_foreach (fields, key, value) {
        json_t *body = json_deep_copy (value);
        if (!body)
            zv_cli_out_of_memory ();
        json_object_set_new (body, "ref", json_string (cli->args [0]));
        json_object_set_new (body, "resource_class", json_string (key));
        json_decref (reply);
        reply = zv_cli_call (cli, cli->cmd->type, body);
        if (!reply)
            goto cleanup;
    }
    json_t *provider = zv_cli_reply_member (reply, "resource_provider", false, cli->cmd->type);
    if (provider)
        rc = s_print_provider (cli, provider, false);
cleanup:
    json_decref (reply);
    json_decref (fields);
    return rc;
}
