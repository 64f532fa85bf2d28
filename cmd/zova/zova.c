/*  zova.c: the zova command line client: the command table, parsing,
    usage and help, and the command handlers.

    zova talks to the api actor the way the openstack client talks to Nova:
    one request per operation on a resource, the reply printed as an
    openstack-style table for people or as JSON for scripts.

    The command line is table driven: s_commands has one row per command (its
    words, request type, resource, options and the body key each option
    fills, positional arguments, handler); each kind of record is one
    resource_t (reply keys, list columns, how it is flattened for scripts).
    Talking to the api is client.c's, printing output.c's; zova.h says what
    the files share.                                                       */

#include <czmq.h>
#include <jansson.h>
#include <ini.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "common/zv_common.h"
#include "common/zv_sha256.h"
#include "proto/zv_msg.h"
#include "proto/zv_pack.h"
#include "cmd/zova/zova.h"

#define ZOVA_VERSION            "0.1.0"
#define ZOVA_DEFAULT_ENDPOINT   "tcp://127.0.0.1:5774"
#define ZOVA_DEFAULT_TIMEOUT_S  30.0
#define ZOVA_MAX_TIMEOUT_S      86400.0     //  keeps milliseconds well inside an int
#define ZOVA_IMAGE_CHUNK        (1024 * 1024)
#define ZOVA_UPLOAD_WINDOW      4       //  image chunks in flight
#define ZOVA_POLL_INTERVAL_MS   100
#define ZOVA_MAX_WORDS          4

//  Returned by the parser when the command should run.
#define ZOVA_RUN                (-1)


//  ---------------------------------------------------------------------
//  Resources: reply keys, list columns and the flattened form for scripts

//  A server's flat form, one row per key: taken from source, or from the
//  member sub of the nested object source when sub is set.
typedef struct {
    const char *key;
    const char *source;
    const char *sub;
} flat_key_t;

static const flat_key_t s_server_flat [] = {
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

static json_t *
s_server_flatten (json_t *server, bool full)
{
    json_t *flat = json_object ();
    if (!flat)
        zv_cli_out_of_memory ();
    for (const flat_key_t *row = s_server_flat; row->key; row++) {
        json_t *value = json_object_get (server, row->source);
        //  A nested reference that came back as a bare id or name is kept
        //  as the name; its id stays null rather than guessed.
        if (row->sub && json_is_object (value))
            value = json_object_get (value, row->sub);
        else
        if (row->sub && strcmp (row->key, row->source) != 0)
            value = NULL;
        json_object_set (flat, row->key, value ? value : json_null ());
    }
    if (full) {
        const char *key;
        json_t *value;
        json_object_foreach (server, key, value)
            if (!json_object_get (flat, key))
                json_object_set (flat, key, value);
    }
    return flat;
}

//  server list -f json without a tree.  json_dumps of the flattened list
//  costs most of a big list's CPU (decode, flatten copy, dump); this walks
//  the reply's msgpack bytes once and writes the same text, byte for byte,
//  that zv_cli_print_json gives for it: s_server_flat's keys in order, indent 2,
//  jansson's string escapes.  Anything the flat form would hold as other
//  than a scalar (a real, a nested list or map, a server that is not a map)
//  is -1, and the caller falls back to the tree: the fast path only has to
//  be right about the ordinary case.
#define S_SERVER_FLAT_KEYS  (sizeof s_server_flat / sizeof s_server_flat [0] - 1)

//  Keys of a received body are checked strings without NUL.
static bool
s_item_is (const zv_pack_item_t *item, const char *name)
{
    return item->type == ZV_PACK_STR
        && strncmp (name, item->str, item->len) == 0 && name [item->len] == '\0';
}

//  text[0..len) as a JSON string, escaped as json_dumps escapes it (UTF-8,
//  already checked on arrival, passes through).
static void
s_buf_json_str (strbuf_t *out, const char *text, size_t len)
{
    zv_cli_buf_add (out, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text [i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        zv_cli_buf_add (out, text + start, i - start);
        start = i + 1;
        switch (c) {
            case '"':  zv_cli_buf_add (out, "\\\"", 2); break;
            case '\\': zv_cli_buf_add (out, "\\\\", 2); break;
            case '\b': zv_cli_buf_add (out, "\\b", 2); break;
            case '\f': zv_cli_buf_add (out, "\\f", 2); break;
            case '\n': zv_cli_buf_add (out, "\\n", 2); break;
            case '\r': zv_cli_buf_add (out, "\\r", 2); break;
            case '\t': zv_cli_buf_add (out, "\\t", 2); break;
            default:   zv_cli_buf_printf (out, "\\u%04X", c); break;
        }
    }
    zv_cli_buf_add (out, text + start, len - start);
    zv_cli_buf_add (out, "\"", 1);
}

//  A scalar as json_dumps writes it; -1 for anything else.
static int
s_buf_json_scalar (strbuf_t *out, const zv_pack_item_t *item)
{
    switch (item->type) {
        case ZV_PACK_NIL:
            zv_cli_buf_add (out, "null", 4);
            return 0;
        case ZV_PACK_BOOL:
            zv_cli_buf_puts (out, item->integer ? "true" : "false");
            return 0;
        case ZV_PACK_INT:
            zv_cli_buf_printf (out, "%" PRId64, item->integer);
            return 0;
        case ZV_PACK_STR:
            s_buf_json_str (out, item->str, item->len);
            return 0;
        case ZV_PACK_REAL:          //  jansson's own float format: the tree's job
        case ZV_PACK_ARRAY:
        case ZV_PACK_MAP:
        case ZV_PACK_OTHER:
        case ZV_PACK_TYPE_COUNT:
            return -1;
    }
    return -1;
}

//  The value of row for the server whose source value starts at body[at]
//  (at 0: absent), as s_server_flatten takes it.
static int
s_server_json_value (strbuf_t *out, const flat_key_t *row,
                     const void *body, size_t size, size_t at)
{
    if (at == 0) {
        zv_cli_buf_add (out, "null", 4);
        return 0;
    }
    zv_pack_item_t item;
    if (zv_pack_next (body, size, &at, &item))
        return -1;
    if (row->sub && item.type == ZV_PACK_MAP) {
        size_t sub_at = 0;          //  the last of duplicate keys wins
        for (size_t i = 0; i < item.count; i++) {
            zv_pack_item_t key;
            if (zv_pack_next (body, size, &at, &key) || key.type != ZV_PACK_STR)
                return -1;
            if (s_item_is (&key, row->sub))
                sub_at = at;
            if (zv_pack_skip (body, size, &at))
                return -1;
        }
        if (sub_at == 0) {
            zv_cli_buf_add (out, "null", 4);
            return 0;
        }
        if (zv_pack_next (body, size, &sub_at, &item))
            return -1;
    }
    else
    if (row->sub && strcmp (row->key, row->source) != 0) {
        zv_cli_buf_add (out, "null", 4);
        return 0;
    }
    return s_buf_json_scalar (out, &item);
}

static int
s_server_json_list (strbuf_t *out, const void *body, size_t size)
{
    zv_pack_item_t item, key;
    size_t pos = 0, servers_at = 0;
    if (zv_pack_next (body, size, &pos, &item) || item.type != ZV_PACK_MAP)
        return -1;
    for (size_t i = 0; i < item.count; i++) {
        if (zv_pack_next (body, size, &pos, &key) || key.type != ZV_PACK_STR)
            return -1;
        if (s_item_is (&key, "servers"))
            servers_at = pos;
        if (zv_pack_skip (body, size, &pos))
            return -1;
    }
    pos = servers_at;
    if (servers_at == 0
    ||  zv_pack_next (body, size, &pos, &item) || item.type != ZV_PACK_ARRAY)
        return -1;
    if (item.count == 0) {
        zv_cli_buf_add (out, "[]\n", 3);
        return 0;
    }
    size_t nservers = item.count;
    zv_cli_buf_add (out, "[\n", 2);
    for (size_t n = 0; n < nservers; n++) {
        if (zv_pack_next (body, size, &pos, &item) || item.type != ZV_PACK_MAP)
            return -1;
        size_t at [S_SERVER_FLAT_KEYS] = { 0 };
        for (size_t i = 0; i < item.count; i++) {
            if (zv_pack_next (body, size, &pos, &key) || key.type != ZV_PACK_STR)
                return -1;
            for (size_t r = 0; r < S_SERVER_FLAT_KEYS; r++)
                if (s_item_is (&key, s_server_flat [r].source))
                    at [r] = pos;
            if (zv_pack_skip (body, size, &pos))
                return -1;
        }
        zv_cli_buf_add (out, "  {\n", 4);
        for (size_t r = 0; r < S_SERVER_FLAT_KEYS; r++) {
            zv_cli_buf_add (out, "    \"", 5);
            zv_cli_buf_puts (out, s_server_flat [r].key);
            zv_cli_buf_add (out, "\": ", 3);
            if (s_server_json_value (out, &s_server_flat [r], body, size, at [r]))
                return -1;
            zv_cli_buf_add (out, r + 1 < S_SERVER_FLAT_KEYS ? ",\n" : "\n", r + 1 < S_SERVER_FLAT_KEYS ? 2 : 1);
        }
        zv_cli_buf_add (out, n + 1 < nservers ? "  },\n" : "  }\n", n + 1 < nservers ? 5 : 4);
    }
    zv_cli_buf_add (out, "]\n", 2);
    return 0;
}

//  What a server's guest agent said, as two readable rows: addresses
//  ("eth0=10.0.2.15, fe80::..."; the openstack client's net=ip form, by
//  interface) and guest_os.  Added to a copy of the record; NULL when the
//  agent never answered.
static json_t *
s_server_guest_rows (json_t *record)
{
    json_t *guest = json_object_get (record, "guest");
    if (!json_is_object (guest))
        return NULL;
    json_t *copy = json_copy (record);
    if (!copy)
        zv_cli_out_of_memory ();
    strbuf_t text = { 0 };
    size_t index;
    json_t *address;
    json_array_foreach (json_object_get (guest, "ip_addresses"), index, address) {
        const char *iface = json_string_value (json_object_get (address, "interface"));
        const char *ip = json_string_value (json_object_get (address, "address"));
        if (ip)
            zv_cli_buf_printf (&text, "%s%s=%s", text.len ? ", " : "", iface ? iface : "?", ip);
    }
    json_object_set_new (copy, "addresses", json_string (text.len ? text.data : ""));
    zv_cli_buf_free (&text);
    json_t *os = json_object_get (guest, "os");
    const char *name = json_string_value (json_object_get (os, "name"));
    const char *kernel = json_string_value (json_object_get (os, "kernel_release"));
    const char *hostname = json_string_value (json_object_get (guest, "hostname"));
    char line [512];
    snprintf (line, sizeof line, "%s%s%s%s", name ? name : "", kernel ? " (kernel " : "", kernel ? kernel : "",
              kernel ? ")" : "");
    json_object_set_new (copy, "guest_os", json_string (line));
    if (hostname)
        json_object_set_new (copy, "guest_hostname", json_string (hostname));
    return copy;
}

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

static const column_t s_server_columns [] = {
    { "ID", "id" }, { "Name", "name" }, { "Status", "status" },
    { "Task State", "task_state" }, { "Power State", "power_state" },
    { "Host", "host" }, { "Image", "image" }, { "Flavor", "flavor" },
    { NULL, NULL }
};
static const column_t s_flavor_columns [] = {
    { "ID", "id" }, { "Name", "name" }, { "RAM", "ram_mb" }, { "Disk", "disk_gb" },
    { "Ephemeral", "ephemeral_gb" }, { "Swap", "swap_mb" }, { "VCPUs", "vcpus" },
    { "Is Public", "is_public" },
    { NULL, NULL }
};
static const column_t s_image_columns [] = {
    { "ID", "id" }, { "Name", "name" }, { "Status", "status" },
    { "Disk Format", "disk_format" }, { "Size", "size" },
    { NULL, NULL }
};
static const column_t s_event_columns [] = {
    { "Request ID", "request_id" }, { "Action", "action" },
    { "Start Time", "start_time" }, { "Finish Time", "finish_time" },
    { "Result", "result" }, { "Message", "message" },
    { NULL, NULL }
};
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

const resource_t zv_cli_res_server = {
    .name = "server", .one = "server", .many = "servers",
    .columns = s_server_columns,
    .flatten = s_server_flatten, .json_list = s_server_json_list,
    .show_rows = s_server_guest_rows
};
const resource_t zv_cli_res_flavor = {
    .name = "flavor", .one = "flavor", .many = "flavors",
    .columns = s_flavor_columns
};
const resource_t zv_cli_res_image = {
    .name = "image", .one = "image", .many = "images",
    .columns = s_image_columns
};
const resource_t zv_cli_res_event = {
    .name = "event", .one = "event", .many = "events",
    .columns = s_event_columns
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
//  Waiting for servers to settle (create --wait, delete --wait)

static json_t *
s_wait_make (void *ctx, size_t idx)
{
    waiter_t *self = ctx;
    json_t *server = json_array_get (self->servers, self->round [idx]);
    return zv_cli_body_str ("ref", json_string_value (json_object_get (server, "id")));
}

static void
s_wait_reply (void *ctx, size_t idx, zv_msg_t *reply)
{
    waiter_t *self = ctx;
    size_t which = self->round [idx];
    zv_status_t status = zv_msg_status (reply);
    const char *text = zv_msg_error_text (reply);
    if (status == ZV_OK) {
        json_t *server = json_object_get (zv_msg_body (reply), "server");
        if (!json_is_object (server)) {
            if (!self->fatal)
                self->fatal = strdup ("malformed reply to api.server_show: no 'server' record");
            return;
        }
        json_array_set (self->servers, which, server);
        const char *state = json_string_value (json_object_get (server, "status"));
        state = state ? state : "";
        if (self->deleting) {
            if (streq (state, "DELETED") || json_is_true (json_object_get (server, "deleted")))
                self->state [which] = WAIT_DONE;
        }
        else
        if (self->settling) {
            json_t *task = json_object_get (server, "task_state");
            if (!task || json_is_null (task))
                self->state [which] = WAIT_DONE;
        }
        else
        if (streq (state, "ACTIVE"))
            self->state [which] = WAIT_DONE;
        else
        if (streq (state, "ERROR"))
            self->state [which] = WAIT_FAILED;
    }
    else
    if (status == ZV_ENOTFOUND && self->deleting)
        self->state [which] = WAIT_DONE;
    else
    if (status == ZV_ENOTFOUND) {
        self->state [which] = WAIT_FAILED;
        free (self->note [which]);
        self->note [which] = strdup (*text ? text : "it no longer exists");
    }
    else
    //  A busy or restarting conductor is not a verdict on the server.
    if (status == ZV_ETIMEOUT || status == ZV_EUNAVAILABLE)
        ;
    else
    if (!self->fatal)
        self->fatal = strdup (*text ? text : zv_status_name (status));
}

//  Poll every server until each settles or wait_s seconds pass, drawing
//  progress.  0 when all settled, 1 on timeout (*left_p still pending),
//  -1 after reporting an error.
int
zv_cli_wait_servers (cli_t *cli, waiter_t *waiter, int64_t wait_s, size_t *left_p)
{
    size_t total = json_array_size (waiter->servers);
    const char *label = waiter->deleting ? "servers DELETED"
                      : waiter->settling ? "servers done" : "servers ACTIVE";
    progress_t progress = { .tty = cli->stderr_tty };
    int64_t give_up = zv_mono_ms () + wait_s * 1000;
    int rc = 0;
    while (true) {
        size_t done = 0, failed = 0;
        waiter->nround = 0;
        for (size_t i = 0; i < total; i++) {
            switch (waiter->state [i]) {
                case WAIT_DONE:
                    done++;
                    break;
                case WAIT_FAILED:
                    failed++;
                    break;
                case WAIT_PENDING:
                    waiter->round [waiter->nround++] = i;
                    break;
                case WAIT_STATE_COUNT:
                    assert (false);
                    break;
            }
        }
        zv_cli_progress_draw (&progress, done, done + failed, total, label, failed);
        if (waiter->nround == 0)
            break;
        int64_t round_start = zv_mono_ms ();
        if (round_start >= give_up) {
            *left_p = waiter->nround;
            rc = 1;
            break;
        }
        if (zv_cli_batch (cli, "api.server_show", waiter->nround,
                          s_wait_make, s_wait_reply, waiter)) {
            rc = -1;
            break;
        }
        if (waiter->fatal) {
            zv_cli_progress_end (&progress);
            zv_cli_fail ("%s", waiter->fatal);
            rc = -1;
            break;
        }
        zv_cli_idle (cli, round_start + ZOVA_POLL_INTERVAL_MS);
    }
    zv_cli_progress_end (&progress);
    return rc;
}

void
zv_cli_waiter_init (waiter_t *self, json_t *servers, bool deleting)
{
    size_t total = json_array_size (servers);
    memset (self, 0, sizeof *self);
    self->deleting = deleting;
    self->servers = servers;
    self->state = calloc (total + 1, sizeof (wait_state_t));
    self->note = calloc (total + 1, sizeof (char *));
    self->round = calloc (total + 1, sizeof (size_t));
    if (!self->state || !self->note || !self->round)
        zv_cli_out_of_memory ();
}

void
zv_cli_waiter_free (waiter_t *self)
{
    for (size_t i = 0; i < json_array_size (self->servers); i++)
        free (self->note [i]);
    free (self->note);
    free (self->state);
    free (self->round);
    free (self->fatal);
}

//  Every server in the list must carry a string id to be polled.
static bool
s_servers_have_ids (json_t *servers, const char *type)
{
    size_t i;
    json_t *server;
    json_array_foreach (servers, i, server)
        if (!json_is_string (json_object_get (server, "id"))) {
            zv_cli_fail ("malformed reply to %s: a server without an id", type);
            return false;
        }
    return true;
}


//  ---------------------------------------------------------------------
//  Command handlers

int
zv_cli_cmd_list (cli_t *cli)
{
    const resource_t *res = cli->cmd->resource;
    zv_msg_t *msg = zv_cli_call_reply (cli, cli->cmd->type, zv_cli_body_from_opts (cli));
    if (!msg)
        return ZOVA_EXIT_FAIL;
    //  -f json straight from the body's bytes when the resource can; the
    //  tree below is the fallback for any body the fast path refuses.
    size_t size;
    const void *bytes = zv_msg_body_bytes (msg, &size);
    if (cli->json && res->json_list && bytes) {
        strbuf_t out = { 0 };
        int fast = res->json_list (&out, bytes, size);
        int written = fast == 0 ? zv_cli_buf_write (&out) : 0;
        zv_cli_buf_free (&out);
        if (fast == 0) {
            zv_msg_destroy (&msg);
            return written ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
        }
    }
    json_t *reply = zv_cli_reply_body (&msg, cli->cmd->type);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *records = zv_cli_reply_member (reply, res->many, true, cli->cmd->type);
    int rc = records ? zv_cli_print_list (cli, res, records) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

int
zv_cli_cmd_show (cli_t *cli)
{
    const resource_t *res = cli->cmd->resource;
    json_t *reply = zv_cli_call (cli, cli->cmd->type, zv_cli_body_str ("ref", cli->args [0]));
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *record = zv_cli_reply_member (reply, res->one, false, cli->cmd->type);
    int rc = record ? zv_cli_print_show (cli, res, record) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  server event list: the events of one server, a list keyed by a ref.
int
zv_cli_cmd_list_of (cli_t *cli)
{
    const resource_t *res = cli->cmd->resource;
    json_t *reply = zv_cli_call (cli, cli->cmd->type, zv_cli_body_str ("ref", cli->args [0]));
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *records = zv_cli_reply_member (reply, res->many, true, cli->cmd->type);
    int rc = records ? zv_cli_print_list (cli, res, records) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

int
zv_cli_cmd_ping (cli_t *cli)
{
    json_t *reply = zv_cli_call (cli, cli->cmd->type, json_object ());
    if (!reply)
        return ZOVA_EXIT_FAIL;
    int rc = zv_cli_print_show (cli, NULL, reply);
    json_decref (reply);
    return rc;
}

typedef struct {
    cli_t *cli;
    size_t failures;
    json_t *deleted;        //  records (or refs) of what was deleted, in order
} deleter_t;

static json_t *
s_delete_make (void *ctx, size_t idx)
{
    deleter_t *self = ctx;
    return zv_cli_body_str ("ref", self->cli->args [idx]);
}

static void
s_delete_reply (void *ctx, size_t idx, zv_msg_t *reply)
{
    deleter_t *self = ctx;
    if (zv_msg_status (reply) != ZV_OK) {
        zv_cli_report_error (reply);
        self->failures++;
        return;
    }
    //  Keep what --wait will poll: the record when the api returned one.
    json_t *record = json_object_get (zv_msg_body (reply), self->cli->cmd->resource->one);
    if (json_is_object (record) && json_is_string (json_object_get (record, "id")))
        json_array_append (self->deleted, record);
    else
        json_array_append_new (self->deleted,
                               json_pack ("{s:s}", "id", self->cli->args [idx]));
}

//  flavor/image/server delete REF...: every ref is tried; any failure makes
//  the exit status 1, as with the openstack client.
int
zv_cli_cmd_delete (cli_t *cli)
{
    const resource_t *res = cli->cmd->resource;
    deleter_t deleter = { .cli = cli, .deleted = json_array () };
    if (!deleter.deleted)
        zv_cli_out_of_memory ();
    int rc = ZOVA_EXIT_OK;
    if (zv_cli_batch (cli, cli->cmd->type, cli->nargs, s_delete_make, s_delete_reply, &deleter)) {
        rc = ZOVA_EXIT_FAIL;
        goto cleanup;
    }
    if (deleter.failures) {
        if (cli->nargs > 1)
            zv_cli_fail ("%zu of %zu %ss failed to delete", deleter.failures, cli->nargs, res->name);
        rc = ZOVA_EXIT_FAIL;
    }
    if (zv_cli_opt_flag (cli, "wait") && json_array_size (deleter.deleted)) {
        waiter_t waiter;
        zv_cli_waiter_init (&waiter, deleter.deleted, true);
        int64_t wait_s = zv_cli_opt_int (cli, "wait-timeout", ZOVA_DEFAULT_WAIT_S);
        size_t left = 0;
        int waited = zv_cli_wait_servers (cli, &waiter, wait_s, &left);
        if (waited == 1)
            zv_cli_fail ("timed out after %" PRId64 " s waiting for %zu of %zu servers to be deleted",
                         wait_s, left, json_array_size (deleter.deleted));
        if (waited)
            rc = ZOVA_EXIT_FAIL;
        zv_cli_waiter_free (&waiter);
    }
cleanup:
    json_decref (deleter.deleted);
    return rc;
}

//  Server actions (Nova's POST /servers/{id}/action): the command's last
//  word names the action, except where an option picks another.
static const struct {
    const char *words;
    const char *action;
} s_server_actions [] = {
    { "server reboot",   "reboot" },
    { "server stop",     "stop" },
    { "server start",    "start" },
    { "server pause",    "pause" },
    { "server unpause",  "unpause" },
    { "server suspend",  "suspend" },
    { "server resume",   "resume" },
    { "server rescue",   "rescue" },
    { "server unrescue", "unrescue" },
    { "server set",      "changePassword" },
};

typedef struct {
    cli_t *cli;
    const char *action;
    const char *password;
    size_t failures;
    json_t *servers;        //  records of the servers whose action started
    json_t *requests;       //  their request ids, in the same order
} actor_t;

static json_t *
s_action_make (void *ctx, size_t idx)
{
    actor_t *self = ctx;
    json_t *body = zv_cli_body_from_opts (self->cli);
    json_object_set_new (body, "ref", json_string (self->cli->args [idx]));
    json_object_set_new (body, "action", json_string (self->action));
    if (self->password)
        json_object_set_new (body, "password", json_string (self->password));
    return body;
}

static void
s_action_reply (void *ctx, size_t idx, zv_msg_t *reply)
{
    actor_t *self = ctx;
    (void) idx;
    if (zv_msg_status (reply) != ZV_OK) {
        zv_cli_report_error (reply);
        self->failures++;
        return;
    }
    json_t *record = json_object_get (zv_msg_body (reply), "server");
    const char *request_id = json_string_value (json_object_get (zv_msg_body (reply), "request_id"));
    if (json_is_object (record) && json_is_string (json_object_get (record, "id"))) {
        json_array_append (self->servers, record);
        json_array_append_new (self->requests, json_string (request_id ? request_id : ""));
    }
}

//  A password from the terminal (asked twice, not echoed) or one line of
//  standard input, as the openstack client's --root-password asks for it.
static char *
s_read_password (void)
{
    char first [256] = "", second [256] = "";
    if (isatty (STDIN_FILENO)) {
        struct termios old, quiet;
        if (tcgetattr (STDIN_FILENO, &old) != 0)
            return NULL;
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~ECHO;
        tcsetattr (STDIN_FILENO, TCSANOW, &quiet);
        fputs ("New password: ", stderr);
        bool got = fgets (first, sizeof first, stdin) != NULL;
        fputs ("\nRetype new password: ", stderr);
        got = got && fgets (second, sizeof second, stdin) != NULL;
        fputc ('\n', stderr);
        tcsetattr (STDIN_FILENO, TCSANOW, &old);
        first [strcspn (first, "\r\n")] = 0;
        second [strcspn (second, "\r\n")] = 0;
        if (!got || strcmp (first, second) != 0) {
            zv_cli_fail ("passwords do not match");
            return NULL;
        }
    }
    else {
        if (!fgets (first, sizeof first, stdin)) {
            zv_cli_fail ("--root-password: no password on standard input");
            return NULL;
        }
        first [strcspn (first, "\r\n")] = 0;
    }
    if (!*first) {
        zv_cli_fail ("the password is empty");
        return NULL;
    }
    return strdup (first);
}

//  After --wait: each server's action record says how its action ended.
static int
s_action_results (cli_t *cli, actor_t *actor)
{
    int rc = ZOVA_EXIT_OK;
    size_t index;
    json_t *server;
    json_array_foreach (actor->servers, index, server) {
        const char *id = json_string_value (json_object_get (server, "id"));
        const char *request_id = json_string_value (json_array_get (actor->requests, index));
        json_t *reply = zv_cli_call (cli, "api.server_events", zv_cli_body_str ("ref", id));
        if (!reply)
            return ZOVA_EXIT_FAIL;
        size_t at;
        json_t *event;
        json_array_foreach (json_object_get (reply, "events"), at, event) {
            if (!request_id || !streq (json_string_value (json_object_get (event, "request_id")) ?
                                       json_string_value (json_object_get (event, "request_id")) : "", request_id))
                continue;
            const char *result = json_string_value (json_object_get (event, "result"));
            const char *message = json_string_value (json_object_get (event, "message"));
            if (result && streq (result, "Error")) {
                zv_cli_fail ("server %s: %s failed: %s", id, actor->action, message ? message : "no reason given");
                rc = ZOVA_EXIT_FAIL;
            }
            else
            if (message && *message)
                fprintf (stderr, "server %s: %s\n", id, message);
        }
        json_decref (reply);
    }
    return rc;
}

int
zv_cli_cmd_server_action (cli_t *cli)
{
    actor_t actor = { .cli = cli, .servers = json_array (), .requests = json_array () };
    for (size_t index = 0; index < sizeof s_server_actions / sizeof s_server_actions [0]; index++)
        if (streq (s_server_actions [index].words, cli->cmd->words))
            actor.action = s_server_actions [index].action;
    assert (actor.action);
    if (streq (actor.action, "reboot") && zv_cli_opt_flag (cli, "hard"))
        actor.action = "reboot_hard";
    char *password = NULL;
    if (streq (actor.action, "changePassword")) {
        if (!zv_cli_opt_flag (cli, "root-password")) {
            zv_cli_fail ("server set needs --root-password");
            json_decref (actor.servers);
            json_decref (actor.requests);
            return ZOVA_EXIT_USAGE;
        }
        password = s_read_password ();
        if (!password) {
            json_decref (actor.servers);
            json_decref (actor.requests);
            return ZOVA_EXIT_FAIL;
        }
        actor.password = password;
    }
    int rc = ZOVA_EXIT_OK;
    if (zv_cli_batch (cli, "api.server_action", cli->nargs, s_action_make, s_action_reply, &actor))
        rc = ZOVA_EXIT_FAIL;
    else
    if (actor.failures)
        rc = ZOVA_EXIT_FAIL;
    if (rc == ZOVA_EXIT_OK && zv_cli_opt_flag (cli, "wait") && json_array_size (actor.servers)) {
        waiter_t waiter;
        zv_cli_waiter_init (&waiter, actor.servers, false);
        waiter.settling = true;
        int64_t wait_s = zv_cli_opt_int (cli, "wait-timeout", ZOVA_DEFAULT_WAIT_S);
        size_t left = 0;
        int waited = zv_cli_wait_servers (cli, &waiter, wait_s, &left);
        if (waited == 1)
            zv_cli_fail ("timed out after %" PRId64 " s waiting for %zu of %zu servers to finish %s",
                         wait_s, left, json_array_size (actor.servers), actor.action);
        if (waited)
            rc = ZOVA_EXIT_FAIL;
        else
            rc = s_action_results (cli, &actor);
        zv_cli_waiter_free (&waiter);
    }
    //  One server: show where it is now (its record after --wait).
    if (rc == ZOVA_EXIT_OK && cli->nargs == 1 && json_array_size (actor.servers) == 1)
        rc = zv_cli_print_show (cli, &zv_cli_res_server, json_array_get (actor.servers, 0));
    if (password) {
        memset (password, 0, strlen (password));
        free (password);
    }
    json_decref (actor.servers);
    json_decref (actor.requests);
    return rc;
}

//  console url show [--novnc|--serial] REF: a token-bearing URL (Nova's
//  remote console).
int
zv_cli_cmd_console_url (cli_t *cli)
{
    if (zv_cli_opt_flag (cli, "novnc") && zv_cli_opt_flag (cli, "serial")) {
        zv_cli_fail ("console url show takes one of --novnc and --serial");
        return ZOVA_EXIT_USAGE;
    }
    json_t *body = zv_cli_body_str ("ref", cli->args [0]);
    json_object_set_new (body, "kind", json_string (zv_cli_opt_flag (cli, "serial") ? "serial" : "novnc"));
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *console = zv_cli_reply_member (reply, "console", false, cli->cmd->type);
    int rc = console ? zv_cli_print_show (cli, NULL, console) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  console log show [--lines N] REF: the guest's serial output, as it is.
int
zv_cli_cmd_console_log (cli_t *cli)
{
    json_t *body = zv_cli_body_str ("ref", cli->args [0]);
    json_object_set_new (body, "lines", json_integer (zv_cli_opt_int (cli, "lines", 50)));
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    const char *output = json_string_value (json_object_get (reply, "output"));
    int rc = ZOVA_EXIT_OK;
    if (!output) {
        zv_cli_fail ("malformed reply to %s: no output", cli->cmd->type);
        rc = ZOVA_EXIT_FAIL;
    }
    else
    if (cli->json)
        rc = zv_cli_print_json (reply) ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
    else
    if (fwrite (output, 1, strlen (output), stdout) != strlen (output) || fflush (stdout) != 0)
        rc = ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  server screenshot REF --file OUT.png
int
zv_cli_cmd_server_screenshot (cli_t *cli)
{
    const char *path = json_string_value (zv_cli_opt (cli, "file"));
    zv_msg_t *reply = zv_cli_call_reply (cli, cli->cmd->type, zv_cli_body_str ("ref", cli->args [0]));
    if (!reply)
        return ZOVA_EXIT_FAIL;
    size_t size = 0;
    const void *png = zv_msg_payload (reply, &size);
    int rc = ZOVA_EXIT_OK;
    if (!png || size < 8 || memcmp (png, "\x89PNG", 4) != 0) {
        zv_cli_fail ("malformed reply to %s: no PNG image", cli->cmd->type);
        rc = ZOVA_EXIT_FAIL;
    }
    else {
        FILE *file = fopen (path, "wb");
        if (!file || fwrite (png, 1, size, file) != size || fclose (file) != 0) {
            zv_cli_fail ("cannot write %s: %s", path, strerror (errno));
            rc = ZOVA_EXIT_FAIL;
        }
        else
        if (!cli->json)
            fprintf (stdout, "%s: %zu bytes (PNG)\n", path, size);
        else
            printf ("{\n  \"file\": \"%s\",\n  \"size\": %zu\n}\n", path, size);
    }
    zv_msg_destroy (&reply);
    return rc;
}

int
zv_cli_cmd_flavor_create (cli_t *cli)
{
    json_t *body = zv_cli_body_from_opts (cli);
    json_object_set_new (body, "name", json_string (cli->args [0]));
    if (!json_object_get (body, "ephemeral_gb"))
        json_object_set_new (body, "ephemeral_gb", json_integer (0));
    if (!json_object_get (body, "swap_mb"))
        json_object_set_new (body, "swap_mb", json_integer (0));
    json_object_set_new (body, "is_public", json_boolean (!zv_cli_opt_flag (cli, "private")));
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *flavor = zv_cli_reply_member (reply, "flavor", false, cli->cmd->type);
    int rc = flavor ? zv_cli_print_show (cli, &zv_cli_res_flavor, flavor) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  compute service set [--enable|--disable [--reason R]] HOST [BINARY]
int
zv_cli_cmd_service_set (cli_t *cli)
{
    bool enable = zv_cli_opt_flag (cli, "enable");
    bool disable = zv_cli_opt_flag (cli, "disable");
    if (enable == disable) {
        zv_cli_fail ("compute service set needs exactly one of --enable and --disable");
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
    json_object_set_new (body, "disabled", json_boolean (disable));
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *service = zv_cli_reply_member (reply, "service", false, cli->cmd->type);
    int rc = service ? zv_cli_print_show (cli, &zv_cli_res_service, service) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  Read up to len bytes, retrying short reads; the count read, or -1.
static ssize_t
s_read_full (int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read (fd, (char *) buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t) n;
    }
    return (ssize_t) got;
}

//  image create: the checksum is computed before anything is sent, so the
//  api can verify the bytes it assembles against what we meant to send.
int
zv_cli_cmd_image_create (cli_t *cli)
{
    const char *path = json_string_value (zv_cli_opt (cli, "file"));
    int rc = ZOVA_EXIT_FAIL;
    json_t *reply = NULL;
    char *image_id = NULL;
    unsigned char *chunk = malloc (ZOVA_IMAGE_CHUNK);
    if (!chunk)
        zv_cli_out_of_memory ();
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat (fd, &info)) {
        zv_cli_fail ("cannot read %s: %s", path, strerror (errno));
        goto cleanup;
    }
    if (!S_ISREG (info.st_mode)) {
        zv_cli_fail ("cannot read %s: %s", path,
                     S_ISDIR (info.st_mode) ? strerror (EISDIR) : "not a regular file");
        goto cleanup;
    }
    uint64_t size = (uint64_t) info.st_size;

    zv_sha256_t *sha = zv_sha256_new ();
    if (!sha)
        zv_cli_out_of_memory ();
    uint64_t total = 0;
    while (true) {
        ssize_t n = s_read_full (fd, chunk, ZOVA_IMAGE_CHUNK);
        if (n < 0) {
            zv_cli_fail ("cannot read %s: %s", path, strerror (errno));
            zv_sha256_destroy (&sha);
            goto cleanup;
        }
        if (n == 0)
            break;
        zv_sha256_update (sha, chunk, (size_t) n);
        total += (uint64_t) n;
    }
    char checksum [65];
    zv_sha256_hex (sha, checksum);
    zv_sha256_destroy (&sha);
    if (total != size) {
        zv_cli_fail ("%s changed while it was being read", path);
        goto cleanup;
    }

    json_t *body = zv_cli_body_from_opts (cli);
    json_object_set_new (body, "name", json_string (cli->args [0]));
    if (!json_object_get (body, "disk_format"))
        json_object_set_new (body, "disk_format", json_string ("raw"));
    if (!json_object_get (body, "container_format"))
        json_object_set_new (body, "container_format", json_string ("bare"));
    json_object_set_new (body, "size", json_integer ((json_int_t) size));
    json_object_set_new (body, "checksum", json_string (checksum));
    if (!json_object_get (body, "properties"))
        json_object_set_new (body, "properties", json_object ());
    reply = zv_cli_call (cli, "api.image_create", body);
    if (!reply)
        goto cleanup;
    json_t *image = zv_cli_reply_member (reply, "image", false, "api.image_create");
    if (!image)
        goto cleanup;
    const char *id = json_string_value (json_object_get (image, "id"));
    if (!id) {
        zv_cli_fail ("malformed reply to api.image_create: no image id");
        goto cleanup;
    }
    image_id = strdup (id);
    json_decref (reply);
    reply = NULL;

    if (lseek (fd, 0, SEEK_SET) < 0) {
        zv_cli_fail ("cannot read %s: %s", path, strerror (errno));
        goto cleanup;
    }
    progress_t progress = { .tty = cli->stderr_tty };
    uint64_t offset = 0, acked = 0;
    bool last = false;
    //  Chunks go ZOVA_UPLOAD_WINDOW at a time: the conductor takes them in
    //  the order sent (one connection, one queue) and commits the ones that
    //  arrive together at once.  An empty image is still one (empty, last)
    //  chunk: the upload is what moves the image from queued to active.
    json_t *pending = json_object ();       //  request id -> chunk length
    if (!pending || zv_cli_connect (cli))
        goto upload_failed;
    int64_t deadline = zv_mono_ms () + cli->timeout_ms;
    while (!last || json_object_size (pending)) {
        while (!last && json_object_size (pending) < ZOVA_UPLOAD_WINDOW) {
            size_t want = size - offset < ZOVA_IMAGE_CHUNK ? (size_t) (size - offset) : ZOVA_IMAGE_CHUNK;
            ssize_t n = s_read_full (fd, chunk, want);
            if (n < 0 || (size_t) n != want) {
                zv_cli_progress_end (&progress);
                if (n < 0)
                    zv_cli_fail ("cannot read %s: %s", path, strerror (errno));
                else
                    zv_cli_fail ("%s changed while it was being uploaded", path);
                goto upload_failed;
            }
            last = offset + want == size;
            json_t *upload = json_pack ("{s:s, s:I, s:b}", "id", image_id,
                                        "offset", (json_int_t) offset, "last", last);
            if (!upload)
                zv_cli_out_of_memory ();
            char *request_id = zv_cli_send (cli, "api.image_upload", &upload, chunk, want);
            if (!request_id)
                goto upload_failed;
            json_object_set_new (pending, request_id, json_pack ("{s:I, s:b}", "length", (json_int_t) want,
                                                                 "last", last));
            free (request_id);
            offset += want;
        }
        zv_msg_t *answer = zv_cli_recv_until (cli, deadline);
        if (!answer) {
            zv_cli_progress_end (&progress);
            zv_cli_no_answer (cli);
            goto upload_failed;
        }
        if (zv_cli_unreadable (&answer))
            goto upload_failed;
        const char *re = zv_msg_re (answer);
        json_t *slot = re ? json_object_get (pending, re) : NULL;
        if (!slot) {
            zv_msg_destroy (&answer);       //  a reply to nothing of ours
            continue;
        }
        if (zv_msg_status (answer) != ZV_OK) {
            //  The first refusal is the reason; the chunks after it are
            //  refused for their offset and say nothing new.
            zv_cli_progress_end (&progress);
            zv_cli_report_error (answer);
            zv_msg_destroy (&answer);
            goto upload_failed;
        }
        acked += (uint64_t) json_integer_value (json_object_get (slot, "length"));
        if (json_is_true (json_object_get (slot, "last")))
            reply = json_incref (zv_msg_body (answer));
        json_object_del (pending, re);
        zv_msg_destroy (&answer);
        deadline = zv_mono_ms () + cli->timeout_ms;
        if (progress.tty) {
            int percent = size ? (int) (acked * 100 / size) : 100;
            fprintf (stderr, "\rUploading %s: %3d%%  (%.1f of %.1f MiB)", cli->args [0],
                     percent, acked / 1048576.0, size / 1048576.0);
            progress.drawn = true;
        }
    }
    json_decref (pending);
    pending = NULL;
    zv_cli_progress_end (&progress);

    image = zv_cli_reply_member (reply, "image", false, "api.image_upload");
    if (!image)
        goto cleanup;
    const char *theirs = json_string_value (json_object_get (image, "checksum"));
    if (!theirs || strcmp (theirs, checksum) != 0) {
        zv_cli_fail ("checksum mismatch for image %s: sent %s, the api stored %s",
                     image_id, checksum, theirs ? theirs : "none");
        goto cleanup;
    }
    const char *status = json_string_value (json_object_get (image, "status"));
    if (status && strcmp (status, "active") != 0) {
        zv_cli_fail ("image %s is %s after its upload, not active", image_id, status);
        goto cleanup;
    }
    rc = zv_cli_print_show (cli, &zv_cli_res_image, image);
    goto cleanup;

upload_failed:
    zv_cli_progress_end (&progress);
    json_decref (pending);
cleanup:
    if (fd >= 0)
        close (fd);
    json_decref (reply);
    free (image_id);
    free (chunk);
    return rc;
}

//  Final servers of a create: one record as a show, several as a list,
//  decided by the request (--max) so that scripts can rely on the shape.
static int
s_print_created (cli_t *cli, json_t *servers, int64_t max_count)
{
    if (max_count > 1 || json_array_size (servers) != 1)
        return zv_cli_print_list (cli, &zv_cli_res_server, servers);
    return zv_cli_print_show (cli, &zv_cli_res_server, json_array_get (servers, 0));
}

int
zv_cli_cmd_server_create (cli_t *cli)
{
    json_t *body = zv_cli_body_from_opts (cli);
    int64_t min_count = zv_cli_opt_int (cli, "min", 1);
    int64_t max_count = zv_cli_opt_int (cli, "max", min_count);
    if (max_count < min_count) {
        json_decref (body);
        zv_cli_fail ("--max (%" PRId64 ") must not be less than --min (%" PRId64 ")",
                     max_count, min_count);
        return ZOVA_EXIT_USAGE;
    }
    json_object_set_new (body, "name", json_string (cli->args [0]));
    json_object_set_new (body, "min_count", json_integer (min_count));
    json_object_set_new (body, "max_count", json_integer (max_count));
    if (!json_object_get (body, "hints"))
        json_object_set_new (body, "hints", json_object ());
    if (!json_object_get (body, "metadata"))
        json_object_set_new (body, "metadata", json_object ());

    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    int rc = ZOVA_EXIT_FAIL;
    json_t *servers = zv_cli_reply_member (reply, "servers", true, cli->cmd->type);
    if (!servers)
        goto cleanup;
    if (!zv_cli_opt_flag (cli, "wait")) {
        rc = s_print_created (cli, servers, max_count);
        goto cleanup;
    }
    if (!s_servers_have_ids (servers, cli->cmd->type))
        goto cleanup;

    waiter_t waiter;
    zv_cli_waiter_init (&waiter, servers, false);
    int64_t wait_s = zv_cli_opt_int (cli, "wait-timeout", ZOVA_DEFAULT_WAIT_S);
    size_t left = 0;
    int waited = zv_cli_wait_servers (cli, &waiter, wait_s, &left);
    if (waited >= 0)
        rc = s_print_created (cli, servers, max_count);
    if (waited == 1) {
        zv_cli_fail ("timed out after %" PRId64 " s waiting for %zu of %zu servers to become ACTIVE",
                     wait_s, left, json_array_size (servers));
        rc = ZOVA_EXIT_FAIL;
    }
    else
    if (waited < 0)
        rc = ZOVA_EXIT_FAIL;
    for (size_t i = 0; i < json_array_size (servers); i++) {
        if (waiter.state [i] != WAIT_FAILED)
            continue;
        json_t *server = json_array_get (servers, i);
        const char *name = json_string_value (json_object_get (server, "name"));
        const char *id = json_string_value (json_object_get (server, "id"));
        const char *why = waiter.note [i];
        if (!why)
            why = json_string_value (json_object_get (json_object_get (server, "fault"), "message"));
        zv_cli_fail ("server %s (%s) is ERROR: %s", name ? name : "?", id,
                     why ? why : "no fault recorded");
        rc = ZOVA_EXIT_FAIL;
    }
    zv_cli_waiter_free (&waiter);
cleanup:
    json_decref (reply);
    return rc;
}

static void s_command_usage (FILE *out, const command_t *cmd);

//  A usage error found by a handler: say why and show the usage, as the
//  parser does; returns the exit status for it.
int
zv_cli_usage_error (const cli_t *cli, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fputs ("zova: ", stderr);
    vfprintf (stderr, format, args);
    fputc ('\n', stderr);
    va_end (args);
    fputs ("usage: ", stderr);
    s_command_usage (stderr, cli->cmd);
    return ZOVA_EXIT_USAGE;
}

//  Send body (taking ownership) and show the record the reply carries.
int
zv_cli_call_show (cli_t *cli, json_t *body)
{
    const resource_t *res = cli->cmd->resource;
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *record = zv_cli_reply_member (reply, res->one, false, cli->cmd->type);
    int rc = record ? zv_cli_print_show (cli, res, record) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  aggregate create: the options' fields and the name.
int
zv_cli_cmd_create (cli_t *cli)
{
    json_t *body = zv_cli_body_from_opts (cli);
    json_object_set_new (body, "name", json_string (cli->args [0]));
    return zv_cli_call_show (cli, body);
}

//  flavor/aggregate set and unset: the options' fields on the record REF.
//  Unset is the same request with null values (OPT_KEYS), so the
//  properties map is always sent, empty when only other fields change.
int
zv_cli_cmd_set (cli_t *cli)
{
    json_t *body = zv_cli_body_from_opts (cli);
    json_object_set_new (body, "ref", json_string (cli->args [0]));
    if (!json_object_get (body, "properties"))
        json_object_set_new (body, "properties", json_object ());
    return zv_cli_call_show (cli, body);
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

static int s_cmd_help (cli_t *cli);


//  ---------------------------------------------------------------------
//  The command table

static const opt_spec_t s_flavor_create_opts [] = {
    { "vcpus",     OPT_INT,  "N",  "vcpus",        true,  1, NULL },
    { "ram",       OPT_INT,  "MB", "ram_mb",       true,  1, NULL },
    { "disk",      OPT_INT,  "GB", "disk_gb",      true,  0, NULL },
    { "ephemeral", OPT_INT,  "GB", "ephemeral_gb", false, 0, NULL },
    { "swap",      OPT_INT,  "MB", "swap_mb",      false, 0, NULL },
    { "id",        OPT_STR,  "ID", "id",           false, 0, NULL },
    { "private",   OPT_FLAG, NULL, NULL,           false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_image_create_opts [] = {
    { "file",             OPT_STR, "PATH", NULL,               true,  0, NULL },
    { "disk-format",      OPT_STR, "FMT",  "disk_format",      false, 0, "raw|qcow2|aki|ari|ami|iso" },
    { "container-format", OPT_STR, "FMT",  "container_format", false, 0, "bare" },
    { "property",         OPT_KV,  "KEY=VALUE", "properties",  false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_server_create_opts [] = {
    { "flavor",            OPT_STR,     "FLAVOR",    "flavor",            true,  0, NULL },
    { "image",             OPT_STR,     "IMAGE",     "image",             true,  0, NULL },
    { "min",               OPT_INT,     "N",         NULL,                false, 1, NULL },
    { "max",               OPT_INT,     "N",         NULL,                false, 1, NULL },
    //  AZ, AZ:HOST or AZ:HOST:NODE, passed as given: the conductor decides.
    { "availability-zone", OPT_STR,     "AZ",        "availability_zone", false, 0, NULL },
    { "hint",              OPT_KV_LIST, "KEY=VALUE", "hints",             false, 0, NULL },
    { "property",          OPT_KV,      "KEY=VALUE", "metadata",          false, 0, NULL },
    { "wait",              OPT_FLAG,    NULL,        NULL,                false, 0, NULL },
    { "wait-timeout",      OPT_INT,     "SECONDS",   NULL,                false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_server_list_opts [] = {
    { "all-projects", OPT_FLAG, NULL,     "all_projects", false, 0, NULL },
    { "deleted",      OPT_FLAG, NULL,     "deleted",      false, 0, NULL },
    { "host",         OPT_STR,  "HOST",   "host",         false, 0, NULL },
    { "status",       OPT_STR,  "STATUS", "status",       false, 0, NULL },
    { "limit",        OPT_INT,  "N",      "limit",        false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_server_delete_opts [] = {
    { "wait",         OPT_FLAG, NULL,      NULL, false, 0, NULL },
    { "wait-timeout", OPT_INT,  "SECONDS", NULL, false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_server_action_opts [] = {
    { "wait",         OPT_FLAG, NULL,      NULL, false, 0, NULL },
    { "wait-timeout", OPT_INT,  "SECONDS", NULL, false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_server_reboot_opts [] = {
    { "hard",         OPT_FLAG, NULL,      NULL, false, 0, NULL },
    { "soft",         OPT_FLAG, NULL,      NULL, false, 0, NULL },
    { "wait",         OPT_FLAG, NULL,      NULL, false, 0, NULL },
    { "wait-timeout", OPT_INT,  "SECONDS", NULL, false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_server_rescue_opts [] = {
    { "image",        OPT_STR,  "IMAGE",   "image", false, 0, NULL },
    { "wait",         OPT_FLAG, NULL,      NULL, false, 0, NULL },
    { "wait-timeout", OPT_INT,  "SECONDS", NULL, false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_server_set_opts [] = {
    { "root-password", OPT_FLAG, NULL,      NULL, false, 0, NULL },
    { "wait",          OPT_FLAG, NULL,      NULL, false, 0, NULL },
    { "wait-timeout",  OPT_INT,  "SECONDS", NULL, false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_console_url_opts [] = {
    { "novnc",  OPT_FLAG, NULL, NULL, false, 0, NULL },
    { "serial", OPT_FLAG, NULL, NULL, false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_console_log_opts [] = {
    { "lines", OPT_INT, "N", NULL, false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_screenshot_opts [] = {
    { "file", OPT_STR, "OUT.png", NULL, true, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_service_list_opts [] = {
    { "host",    OPT_STR, "HOST",   "host",   false, 0, NULL },
    { "service", OPT_STR, "BINARY", "binary", false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_service_set_opts [] = {
    { "enable",         OPT_FLAG, NULL,     NULL,              false, 0, NULL },
    { "disable",        OPT_FLAG, NULL,     NULL,              false, 0, NULL },
    { "disable-reason", OPT_STR,  "REASON", "disabled_reason", false, 0, NULL },
    { "reason",         OPT_STR,  "REASON", NULL,              false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_properties_set_opts [] = {
    { "property", OPT_KV, "KEY=VALUE", "properties", true, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_properties_unset_opts [] = {
    { "property", OPT_KEYS, "KEY", "properties", true, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_long_opts [] = {
    { "long", OPT_FLAG, NULL, "long", false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

//  The aggregate list's --long only widens the table: nothing to send.
static const opt_spec_t s_aggregate_list_opts [] = {
    { "long", OPT_FLAG, NULL, NULL, false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_aggregate_create_opts [] = {
    { "zone", OPT_STR, "AZ", "availability_zone", false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_aggregate_set_opts [] = {
    { "zone",     OPT_STR, "AZ",        "availability_zone", false, 0, NULL },
    { "property", OPT_KV,  "KEY=VALUE", "properties",        false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_group_create_opts [] = {
    { "policy", OPT_STR, "POLICY", "policy", true, 0,
      "affinity|anti-affinity|soft-affinity|soft-anti-affinity" },
    { "rule",   OPT_KV,  "max_server_per_host=N", NULL, false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_group_list_opts [] = {
    { "all-projects", OPT_FLAG, NULL, "all_projects", false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_provider_show_opts [] = {
    { "allocations", OPT_FLAG, NULL, NULL, false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_inventory_set_opts [] = {
    { "resource", OPT_KV, "CLASS:FIELD=VALUE", NULL, true, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const command_t s_commands [] = {
    { "flavor create", zv_cli_cmd_flavor_create, "api.flavor_create", &zv_cli_res_flavor,
      s_flavor_create_opts, "NAME", 1, 1, "create a flavor" },
    { "flavor list", zv_cli_cmd_list, "api.flavor_list", &zv_cli_res_flavor,
      NULL, "", 0, 0, "list flavors" },
    { "flavor show", zv_cli_cmd_show, "api.flavor_show", &zv_cli_res_flavor,
      NULL, "REF", 1, 1, "show a flavor (by id or name)" },
    { "flavor delete", zv_cli_cmd_delete, "api.flavor_delete", &zv_cli_res_flavor,
      NULL, "REF...", 1, SIZE_MAX, "delete flavors" },
    { "flavor set", zv_cli_cmd_set, "api.flavor_set", &zv_cli_res_flavor,
      s_properties_set_opts, "REF", 1, 1, "set extra specs on a flavor" },
    { "flavor unset", zv_cli_cmd_set, "api.flavor_set", &zv_cli_res_flavor,
      s_properties_unset_opts, "REF", 1, 1, "remove extra specs from a flavor" },

    { "image create", zv_cli_cmd_image_create, "api.image_create", &zv_cli_res_image,
      s_image_create_opts, "NAME", 1, 1, "create an image and upload its bytes" },
    { "image list", zv_cli_cmd_list, "api.image_list", &zv_cli_res_image,
      NULL, "", 0, 0, "list images" },
    { "image show", zv_cli_cmd_show, "api.image_show", &zv_cli_res_image,
      NULL, "REF", 1, 1, "show an image (by id or name)" },
    { "image delete", zv_cli_cmd_delete, "api.image_delete", &zv_cli_res_image,
      NULL, "REF...", 1, SIZE_MAX, "delete images" },

    { "server create", zv_cli_cmd_server_create, "api.server_create", &zv_cli_res_server,
      s_server_create_opts, "NAME", 1, 1, "boot servers" },
    { "server list", zv_cli_cmd_list, "api.server_list", &zv_cli_res_server,
      s_server_list_opts, "", 0, 0, "list servers" },
    { "server show", zv_cli_cmd_show, "api.server_show", &zv_cli_res_server,
      NULL, "REF", 1, 1, "show a server (by id or name)" },
    { "server delete", zv_cli_cmd_delete, "api.server_delete", &zv_cli_res_server,
      s_server_delete_opts, "REF...", 1, SIZE_MAX, "delete servers" },
    { "server event list", zv_cli_cmd_list_of, "api.server_events", &zv_cli_res_event,
      NULL, "REF", 1, 1, "list the actions taken on a server" },
    { "server reboot", zv_cli_cmd_server_action, "api.server_action", &zv_cli_res_server,
      s_server_reboot_opts, "REF...", 1, SIZE_MAX,
      "reboot servers (soft: the guest shuts down and starts; --hard: power cycle)" },
    { "server stop", zv_cli_cmd_server_action, "api.server_action", &zv_cli_res_server,
      s_server_action_opts, "REF...", 1, SIZE_MAX, "shut servers down (clean, then power off)" },
    { "server start", zv_cli_cmd_server_action, "api.server_action", &zv_cli_res_server,
      s_server_action_opts, "REF...", 1, SIZE_MAX, "start stopped servers" },
    { "server pause", zv_cli_cmd_server_action, "api.server_action", &zv_cli_res_server,
      s_server_action_opts, "REF...", 1, SIZE_MAX, "pause servers (memory kept)" },
    { "server unpause", zv_cli_cmd_server_action, "api.server_action", &zv_cli_res_server,
      s_server_action_opts, "REF...", 1, SIZE_MAX, "unpause servers" },
    { "server suspend", zv_cli_cmd_server_action, "api.server_action", &zv_cli_res_server,
      s_server_action_opts, "REF...", 1, SIZE_MAX, "suspend servers (memory saved to disk)" },
    { "server resume", zv_cli_cmd_server_action, "api.server_action", &zv_cli_res_server,
      s_server_action_opts, "REF...", 1, SIZE_MAX, "resume suspended servers" },
    { "server rescue", zv_cli_cmd_server_action, "api.server_action", &zv_cli_res_server,
      s_server_rescue_opts, "REF", 1, 1,
      "boot a server from a rescue image (default: its own), its disk attached second" },
    { "server unrescue", zv_cli_cmd_server_action, "api.server_action", &zv_cli_res_server,
      s_server_action_opts, "REF", 1, 1, "boot a rescued server from its own disk again" },
    { "server set", zv_cli_cmd_server_action, "api.server_action", &zv_cli_res_server,
      s_server_set_opts, "REF", 1, 1,
      "set a server's root password through its guest agent (--root-password: read from the terminal or stdin)" },

    { "server screenshot", zv_cli_cmd_server_screenshot, "api.server_screenshot", &zv_cli_res_server,
      s_screenshot_opts, "REF", 1, 1, "save the server's screen as a PNG file" },
    { "console url show", zv_cli_cmd_console_url, "api.console_url", &zv_cli_res_server,
      s_console_url_opts, "REF", 1, 1,
      "a URL that opens the server's console in a browser (noVNC, or --serial: a WebSocket)" },
    { "console log show", zv_cli_cmd_console_log, "api.console_log", &zv_cli_res_server,
      s_console_log_opts, "REF", 1, 1, "print the last lines of the server's serial console (--lines, 50)" },

    { "server group create", zv_cli_cmd_group_create, "api.group_create", &zv_cli_res_group,
      s_group_create_opts, "NAME", 1, 1,
      "create a server group" },
    { "server group list", zv_cli_cmd_list, "api.group_list", &zv_cli_res_group,
      s_group_list_opts, "", 0, 0, "list server groups" },
    { "server group show", zv_cli_cmd_show, "api.group_show", &zv_cli_res_group,
      NULL, "REF", 1, 1, "show a server group (by id or name)" },
    { "server group delete", zv_cli_cmd_delete, "api.group_delete", &zv_cli_res_group,
      NULL, "REF...", 1, SIZE_MAX, "delete server groups" },

    { "aggregate create", zv_cli_cmd_create, "api.aggregate_create", &zv_cli_res_aggregate,
      s_aggregate_create_opts, "NAME", 1, 1, "create a host aggregate, in a zone with --zone" },
    { "aggregate list", zv_cli_cmd_list, "api.aggregate_list", &zv_cli_res_aggregate,
      s_aggregate_list_opts, "", 0, 0, "list host aggregates" },
    { "aggregate show", zv_cli_cmd_show, "api.aggregate_show", &zv_cli_res_aggregate,
      NULL, "REF", 1, 1, "show a host aggregate (by id or name)" },
    { "aggregate delete", zv_cli_cmd_delete, "api.aggregate_delete", &zv_cli_res_aggregate,
      NULL, "REF...", 1, SIZE_MAX, "delete host aggregates" },
    { "aggregate add host", zv_cli_cmd_aggregate_host, "api.aggregate_add_host", &zv_cli_res_aggregate,
      NULL, "REF HOST", 2, 2, "add a host to an aggregate" },
    { "aggregate remove host", zv_cli_cmd_aggregate_host, "api.aggregate_remove_host",
      &zv_cli_res_aggregate, NULL, "REF HOST", 2, 2, "remove a host from an aggregate" },
    { "aggregate set", zv_cli_cmd_set, "api.aggregate_set", &zv_cli_res_aggregate,
      s_aggregate_set_opts, "REF", 1, 1, "set an aggregate's zone or properties" },
    { "aggregate unset", zv_cli_cmd_set, "api.aggregate_set", &zv_cli_res_aggregate,
      s_properties_unset_opts, "REF", 1, 1, "remove properties from an aggregate" },
    { "availability zone list", zv_cli_cmd_zone_list, "api.zone_list", &zv_cli_res_zone,
      s_long_opts, "", 0, 0, "list availability zones (--long: their hosts and services)" },

    { "compute service list", zv_cli_cmd_list, "api.service_list", &zv_cli_res_service,
      s_service_list_opts, "", 0, 0, "list compute services" },
    { "compute service set", zv_cli_cmd_service_set, "api.service_set", &zv_cli_res_service,
      s_service_set_opts, "HOST [BINARY]", 1, 2, "enable or disable a service (default: compute)" },
    { "hypervisor list", zv_cli_cmd_list, "api.hypervisor_list", &zv_cli_res_hypervisor,
      NULL, "", 0, 0, "list hypervisors" },
    { "hypervisor show", zv_cli_cmd_show, "api.hypervisor_show", &zv_cli_res_hypervisor,
      NULL, "REF", 1, 1, "show a hypervisor (by id or hostname)" },
    { "resource provider list", zv_cli_cmd_list, "api.provider_list", &zv_cli_res_provider,
      NULL, "", 0, 0, "list resource providers and how full they are" },
    { "resource provider show", zv_cli_cmd_provider_show, "api.provider_show", &zv_cli_res_provider,
      s_provider_show_opts, "REF", 1, 1, "show a resource provider and its inventories" },
    { "resource provider inventory set", zv_cli_cmd_inventory_set, "api.provider_set",
      &zv_cli_res_provider, s_inventory_set_opts, "REF", 1, 1,
      "set allocation_ratio or reserved of resource classes" },

    { "ping", zv_cli_cmd_ping, "api.ping", NULL,
      NULL, "", 0, 0, "check that the api answers" },
    { "help", s_cmd_help, NULL, NULL,
      NULL, "[COMMAND...]", 0, ZOVA_MAX_WORDS, "show help" },
    { NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL }
};


//  ---------------------------------------------------------------------
//  Usage and help

static void
s_command_usage (FILE *out, const command_t *cmd)
{
    fprintf (out, "zova %s", cmd->words);
    for (const opt_spec_t *spec = cmd->opts; spec && spec->name; spec++) {
        const char *metavar = spec->choices ? spec->choices : spec->metavar;
        fprintf (out, " %s--%s%s%s%s%s", spec->required ? "" : "[", spec->name,
                 metavar ? " " : "", metavar ? metavar : "",
                 spec->kind == OPT_KV || spec->kind == OPT_KV_LIST || spec->kind == OPT_KEYS
                 ? " ..." : "", spec->required ? "" : "]");
    }
    if (*cmd->args)
        fprintf (out, " %s", cmd->args);
    fputc ('\n', out);
}

static void
s_short_usage (FILE *out)
{
    fputs ("usage: zova [-f table|json] [--endpoint EP] [--config FILE] [--timeout SECONDS]"
           " <command> [arguments]\n"
           "Try 'zova help' for the list of commands.\n", out);
}

static void
s_help (FILE *out)
{
    fputs ("usage: zova [options] <command> [arguments]\n"
           "\n"
           "Options (before or after the command):\n"
           "  -f, --format table|json  output format (default table)\n"
           "  --endpoint EP            api endpoint (env ZOVA_ENDPOINT; default "
           ZOVA_DEFAULT_ENDPOINT ")\n"
           "  --config FILE            INI file whose [api] endpoint is used (env ZOVA_CONFIG)\n"
           "  --timeout SECONDS        wait this long for each answer (env ZOVA_TIMEOUT;"
           " default 30)\n"
           "  --project ID             accepted for compatibility (env ZOVA_PROJECT);"
           " the api decides the project\n"
           "  -h, --help               this help; 'zova help COMMAND' for one command\n"
           "  --version                print the version\n"
           "\n"
           "Commands:\n", out);
    for (const command_t *cmd = s_commands; cmd->words; cmd++) {
        fputs ("  ", out);
        s_command_usage (out, cmd);
        fprintf (out, "      %s\n", cmd->summary);
    }
}

//  How many leading words of tokens spell the command's words (0: none).
static size_t
s_match (const char *words, char **tokens, size_t ntokens)
{
    size_t matched = 0;
    const char *word = words;
    while (*word) {
        size_t len = strcspn (word, " ");
        if (matched >= ntokens || strlen (tokens [matched]) != len
        ||  memcmp (tokens [matched], word, len) != 0)
            return 0;
        matched++;
        word += len;
        if (*word == ' ')
            word++;
    }
    return matched;
}

//  The command spelled by the most leading tokens, or NULL.
static const command_t *
s_find_command (char **tokens, size_t ntokens, size_t *used_p)
{
    const command_t *best = NULL;
    size_t used = 0;
    for (const command_t *cmd = s_commands; cmd->words; cmd++) {
        size_t matched = s_match (cmd->words, tokens, ntokens);
        if (matched > used) {
            best = cmd;
            used = matched;
        }
    }
    *used_p = used;
    return best;
}

//  Unknown command: say so, list the commands of its first word if that
//  names a group, and point at help.
static int
s_unknown_command (char **tokens, size_t ntokens)
{
    fputs ("zova: unknown command '", stderr);
    for (size_t i = 0; i < ntokens; i++)
        fprintf (stderr, "%s%s", i ? " " : "", tokens [i]);
    fputs ("'\n", stderr);
    bool group = false;
    size_t len = strlen (tokens [0]);
    for (const command_t *cmd = s_commands; cmd->words; cmd++)
        if (strncmp (cmd->words, tokens [0], len) == 0 && cmd->words [len] == ' ') {
            fputs (group ? "       " : "usage: ", stderr);
            s_command_usage (stderr, cmd);
            group = true;
        }
    if (!group)
        s_short_usage (stderr);
    return ZOVA_EXIT_USAGE;
}

static int
s_cmd_help (cli_t *cli)
{
    if (cli->nargs == 0) {
        s_help (stdout);
        return ZOVA_EXIT_OK;
    }
    size_t used;
    const command_t *cmd = s_find_command (cli->args, cli->nargs, &used);
    if (!cmd || used != cli->nargs)
        return s_unknown_command (cli->args, cli->nargs);
    fputs ("usage: ", stdout);
    s_command_usage (stdout, cmd);
    printf ("%s\n", cmd->summary);
    return ZOVA_EXIT_OK;
}


//  ---------------------------------------------------------------------
//  Parsing the command line

enum {
    OPT_GLOBAL_ENDPOINT = 256,
    OPT_GLOBAL_CONFIG,
    OPT_GLOBAL_TIMEOUT,
    OPT_GLOBAL_PROJECT,
    OPT_GLOBAL_VERSION,
    OPT_COMMAND_BASE = 1000         //  + index into the command's opt_spec_t
};

static const struct option s_global_options [] = {
    { "format",   required_argument, NULL, 'f' },
    { "endpoint", required_argument, NULL, OPT_GLOBAL_ENDPOINT },
    { "config",   required_argument, NULL, OPT_GLOBAL_CONFIG },
    { "timeout",  required_argument, NULL, OPT_GLOBAL_TIMEOUT },
    { "project",  required_argument, NULL, OPT_GLOBAL_PROJECT },
    { "help",     no_argument,       NULL, 'h' },
    { "version",  no_argument,       NULL, OPT_GLOBAL_VERSION },
};
#define S_GLOBAL_OPTIONS (sizeof s_global_options / sizeof s_global_options [0])

//  Whether a global option token takes the next token as its value.  Used
//  only to find the command words before the command's own options are
//  known; getopt_long does the real parsing afterwards.
static bool
s_global_takes_next (const char *token)
{
    if (token [1] != '-') {
        const char *f = strchr (token + 1, 'f');
        return f && f [1] == '\0';
    }
    for (size_t i = 0; i < S_GLOBAL_OPTIONS; i++)
        if (s_global_options [i].has_arg == required_argument
        &&  streq (token + 2, s_global_options [i].name))
            return true;
    return false;
}

//  Whether a token is one of the global options (long names unabbreviated).
static bool
s_global_known (const char *token)
{
    if (token [1] != '-')
        return token [1] == 'f' || streq (token, "-h");
    size_t len = strcspn (token + 2, "=");
    for (size_t i = 0; i < S_GLOBAL_OPTIONS; i++)
        if (strlen (s_global_options [i].name) == len
        &&  memcmp (token + 2, s_global_options [i].name, len) == 0)
            return true;
    return false;
}

static bool
s_utf8_valid (const char *text)
{
    json_t *probe = json_string (text);
    json_decref (probe);
    return probe != NULL;
}

//  The map a repeatable option gathers into, made on first use.
static json_t *
s_opt_map (cli_t *cli, const char *name)
{
    json_t *map = zv_cli_opt (cli, name);
    if (!map) {
        map = json_object ();
        if (!map)
            zv_cli_out_of_memory ();
        json_object_set_new (cli->opts, name, map);
    }
    return map;
}

//  Store one command option's value in cli->opts; 0 or -1 (reported).
static int
s_take_option (cli_t *cli, const opt_spec_t *spec, const char *value)
{
    switch (spec->kind) {
        case OPT_FLAG:
            json_object_set_new (cli->opts, spec->name, json_true ());
            return 0;
        case OPT_STR:
            if (!s_utf8_valid (value)) {
                zv_cli_fail ("--%s: not valid UTF-8", spec->name);
                return -1;
            }
            if (spec->choices) {
                bool found = false;
                const char *choice = spec->choices;
                while (*choice && !found) {
                    size_t len = strcspn (choice, "|");
                    found = strlen (value) == len && memcmp (value, choice, len) == 0;
                    choice += len;
                    if (*choice == '|')
                        choice++;
                }
                if (!found) {
                    zv_cli_fail ("--%s must be one of %s, not '%s'", spec->name, spec->choices, value);
                    return -1;
                }
            }
            json_object_set_new (cli->opts, spec->name, json_string (value));
            return 0;
        case OPT_INT: {
            char *end;
            errno = 0;
            long long number = strtoll (value, &end, 10);
            if (errno || end == value || *end || number < spec->min) {
                zv_cli_fail ("--%s expects an integer >= %" PRId64 ", not '%s'",
                             spec->name, spec->min, value);
                return -1;
            }
            json_object_set_new (cli->opts, spec->name, json_integer (number));
            return 0;
        }
        case OPT_KV:
        case OPT_KV_LIST: {
            const char *equals = strchr (value, '=');
            if (!equals || equals == value || !s_utf8_valid (value)) {
                zv_cli_fail ("--%s expects %s, not '%s'", spec->name, spec->metavar, value);
                return -1;
            }
            json_t *map = s_opt_map (cli, spec->name);
            char *key = strndup (value, (size_t) (equals - value));
            if (!key)
                zv_cli_out_of_memory ();
            //  As the openstack client's --hint: a key given once stays a
            //  string, a repeated one gathers its values in order.
            json_t *before = json_object_get (map, key);
            json_t *after = json_string (equals + 1);
            if (spec->kind == OPT_KV_LIST && json_is_array (before))
                json_array_append_new (before, after);
            else
            if (spec->kind == OPT_KV_LIST && before)
                json_object_set_new (map, key, json_pack ("[O, o]", before, after));
            else
                json_object_set_new (map, key, after);
            free (key);
            return 0;
        }
        case OPT_KEYS:
            if (!*value || !s_utf8_valid (value)) {
                zv_cli_fail ("--%s expects %s, not '%s'", spec->name, spec->metavar, value);
                return -1;
            }
            json_object_set_new (s_opt_map (cli, spec->name), value, json_null ());
            return 0;
        case OPT_KIND_COUNT:
            assert (false);
            break;
    }
    return -1;
}

static int
s_ini_handler (void *user, const char *section, const char *name, const char *value)
{
    char **endpoint_p = user;
    if (streq (section, "api") && streq (name, "endpoint")) {
        free (*endpoint_p);
        *endpoint_p = strdup (value);
    }
    return 1;
}

//  Settings that do not come from the command's options: timeout, then the
//  endpoint (--endpoint, ZOVA_ENDPOINT, the config file, the default).
static int
s_resolve_settings (cli_t *cli, const char *timeout, const char *config)
{
    if (!timeout)
        timeout = getenv ("ZOVA_TIMEOUT");
    if (timeout && *timeout) {
        char *end;
        double seconds = strtod (timeout, &end);
        if (end == timeout || *end || !isfinite (seconds)
        ||  seconds <= 0 || seconds > ZOVA_MAX_TIMEOUT_S) {
            zv_cli_fail ("invalid timeout '%s' (seconds, more than 0)", timeout);
            return ZOVA_EXIT_USAGE;
        }
        cli->timeout_s = seconds;
    }
    //  Rounded up, so that a fraction of a millisecond still waits.
    cli->timeout_ms = (int) (cli->timeout_s * 1000 + 0.999);
    if (!cli->project)
        cli->project = getenv ("ZOVA_PROJECT");

    if (!cli->endpoint) {
        const char *env = getenv ("ZOVA_ENDPOINT");
        if (env && *env)
            cli->endpoint = env;
    }
    if (!cli->endpoint) {
        if (!config) {
            const char *env = getenv ("ZOVA_CONFIG");
            config = env && *env ? env : NULL;
        }
        if (config) {
            int line = ini_parse (config, s_ini_handler, &cli->endpoint_owned);
            if (line < 0) {
                zv_cli_fail ("cannot read %s: %s", config,
                             line == -1 ? strerror (errno) : "out of memory");
                return ZOVA_EXIT_FAIL;
            }
            if (line > 0) {
                zv_cli_fail ("%s:%d: cannot parse this line", config, line);
                return ZOVA_EXIT_FAIL;
            }
            cli->endpoint = cli->endpoint_owned;
        }
    }
    if (!cli->endpoint || !*cli->endpoint)
        cli->endpoint = ZOVA_DEFAULT_ENDPOINT;
    return ZOVA_RUN;
}

//  Parse argv into cli.  ZOVA_RUN when the command should run, else the
//  exit status (help, version, or a usage error already reported).
static int
s_parse (cli_t *cli, int argc, char *argv [])
{
    //  The command words are the first plain tokens, wherever global
    //  options sit around them.
    char *tokens [ZOVA_MAX_WORDS];
    int token_at [ZOVA_MAX_WORDS];
    size_t ntokens = 0;
    bool want_help = false, want_version = false;
    const char *stranger = NULL;        //  first option that is not global
    for (int i = 1; i < argc && ntokens < ZOVA_MAX_WORDS; i++) {
        const char *token = argv [i];
        if (streq (token, "--"))
            break;
        if (token [0] == '-' && token [1]) {
            if (streq (token, "-h") || streq (token, "--help"))
                want_help = true;
            else
            if (streq (token, "--version"))
                want_version = true;
            else
            if (s_global_takes_next (token))
                i++;
            else
            if (!stranger && !s_global_known (token))
                stranger = token;
            continue;
        }
        token_at [ntokens] = i;
        tokens [ntokens++] = argv [i];
    }
    size_t used = 0;
    const command_t *cmd = ntokens ? s_find_command (tokens, ntokens, &used) : NULL;
    if (!cmd) {
        if (want_version) {
            puts ("zova " ZOVA_VERSION);
            return ZOVA_EXIT_OK;
        }
        if (want_help && ntokens == 0) {
            s_help (stdout);
            return ZOVA_EXIT_OK;
        }
        if (ntokens)
            return s_unknown_command (tokens, ntokens);
        if (stranger)
            zv_cli_fail ("unrecognized option '%s'", stranger);
        else
            zv_cli_fail ("no command given");
        s_short_usage (stderr);
        return ZOVA_EXIT_USAGE;
    }
    cli->cmd = cmd;

    //  Everything but the command words goes to getopt_long, with the
    //  global options and the command's own in one table.
    char **rest = calloc ((size_t) argc + 1, sizeof (char *));
    cli->args = calloc ((size_t) argc + 1, sizeof (char *));
    size_t nopts = 0;
    while (cmd->opts && cmd->opts [nopts].name)
        nopts++;
    struct option *longopts = calloc (S_GLOBAL_OPTIONS + nopts + 1, sizeof (struct option));
    if (!rest || !cli->args || !longopts)
        zv_cli_out_of_memory ();
    int nrest = 0;
    rest [nrest++] = "zova";
    for (int i = 1; i < argc; i++) {
        bool is_word = false;
        for (size_t w = 0; w < used; w++)
            is_word |= token_at [w] == i;
        if (!is_word)
            rest [nrest++] = argv [i];
    }
    memcpy (longopts, s_global_options, sizeof s_global_options);
    for (size_t i = 0; i < nopts; i++)
        longopts [S_GLOBAL_OPTIONS + i] = (struct option) {
            cmd->opts [i].name,
            cmd->opts [i].kind == OPT_FLAG ? no_argument : required_argument,
            NULL, OPT_COMMAND_BASE + (int) i
        };

    int rc = ZOVA_RUN;
    const char *format = "table", *timeout = NULL, *config = NULL;
    bool help = false;
    //  "-" first: plain arguments come back in order (code 1) wherever
    //  they sit, even under POSIXLY_CORRECT.
    int code;
    while (rc == ZOVA_RUN
    &&     (code = getopt_long (nrest, rest, "-f:h", longopts, NULL)) != -1) {
        switch (code) {
            case 1:
                cli->args [cli->nargs++] = optarg;
                break;
            case 'f':
                format = optarg;
                break;
            case 'h':
                help = true;
                break;
            case OPT_GLOBAL_ENDPOINT:
                cli->endpoint = optarg;
                break;
            case OPT_GLOBAL_CONFIG:
                config = optarg;
                break;
            case OPT_GLOBAL_TIMEOUT:
                timeout = optarg;
                break;
            case OPT_GLOBAL_PROJECT:
                cli->project = optarg;
                break;
            case OPT_GLOBAL_VERSION:
                puts ("zova " ZOVA_VERSION);
                rc = ZOVA_EXIT_OK;
                break;
            default:
                if (code >= OPT_COMMAND_BASE && code < OPT_COMMAND_BASE + (int) nopts) {
                    if (s_take_option (cli, &cmd->opts [code - OPT_COMMAND_BASE], optarg))
                        rc = ZOVA_EXIT_USAGE;
                }
                else
                    rc = ZOVA_EXIT_USAGE;       //  getopt_long said why
                break;
        }
    }
    if (rc == ZOVA_RUN)
        while (optind < nrest)
            cli->args [cli->nargs++] = rest [optind++];
    free (rest);
    free (longopts);
    if (rc == ZOVA_EXIT_USAGE) {
        fputs ("usage: ", stderr);
        s_command_usage (stderr, cmd);
        return rc;
    }
    if (rc != ZOVA_RUN)
        return rc;
    if (help) {
        fputs ("usage: ", stdout);
        s_command_usage (stdout, cmd);
        printf ("%s\n", cmd->summary);
        return ZOVA_EXIT_OK;
    }

    const char *problem = NULL;
    for (size_t i = 0; i < nopts && !problem; i++)
        if (cmd->opts [i].required && !zv_cli_opt (cli, cmd->opts [i].name)) {
            zv_cli_fail ("missing --%s", cmd->opts [i].name);
            problem = "";
        }
    if (!problem && cli->nargs < cmd->min_args)
        problem = "missing argument";
    if (!problem && cli->nargs > cmd->max_args)
        problem = "too many arguments";
    for (size_t i = 0; i < cli->nargs && !problem; i++)
        if (!s_utf8_valid (cli->args [i]))
            problem = "argument is not valid UTF-8";
    if (!problem && !streq (format, "table") && !streq (format, "json")) {
        zv_cli_fail ("unknown format '%s' (table or json)", format);
        problem = "";
    }
    if (problem) {
        if (*problem)
            zv_cli_fail ("%s", problem);
        fputs ("usage: ", stderr);
        s_command_usage (stderr, cmd);
        return ZOVA_EXIT_USAGE;
    }
    cli->json = streq (format, "json");
    return s_resolve_settings (cli, timeout, config);
}


int
main (int argc, char *argv [])
{
    //  Ctrl-C should stop the client at once, not set a flag we would
    //  only notice at the next poll.
    zsys_handler_set (NULL);

    cli_t cli = { .timeout_s = ZOVA_DEFAULT_TIMEOUT_S, .stderr_tty = isatty (STDERR_FILENO) };
    cli.opts = json_object ();
    if (!cli.opts)
        zv_cli_out_of_memory ();
    int rc = s_parse (&cli, argc, argv);
    if (rc == ZOVA_RUN)
        rc = cli.cmd->handler (&cli);

    zpoller_destroy (&cli.poller);
    zsock_destroy (&cli.sock);
    json_decref (cli.opts);
    free (cli.args);
    free (cli.endpoint_owned);
    if (fflush (stdout) == EOF || ferror (stdout)) {
        if (rc == ZOVA_EXIT_OK)
            zv_cli_fail ("cannot write the output: %s", strerror (errno));
        rc = ZOVA_EXIT_FAIL;
    }
    return rc;
}
