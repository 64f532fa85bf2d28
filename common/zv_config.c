/*  zv_config.c: INI parsing (inih) into zv_config_t.

    One table lists every key: section, name, type, where it goes, and its
    bounds.  Defaults, parsing and validation all read that table, so a new
    key is one row (plus its line in config/zova.conf.sample).               */

#include "common/zv_config.h"
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

//  S_LIST: a comma-separated string that may go on over indented lines
//  (the INI parser hands each continuation line over as the same key).
typedef enum { S_STR, S_LIST, S_INT, S_DOUBLE, S_BOOL, S_KIND_COUNT } s_kind_t;

typedef struct {
    const char *section;
    const char *name;
    s_kind_t kind;
    size_t offset;
    size_t size;                    //  S_STR: buffer size
    const char *dflt;
    double min, max;                //  S_INT / S_DOUBLE bounds
} s_key_t;

#define STR(sec, key, field, d) \
    { sec, key, S_STR, offsetof (zv_config_t, field), sizeof (((zv_config_t *) 0)->field), d, 0, 0 }
#define LIST(sec, key, field, d) \
    { sec, key, S_LIST, offsetof (zv_config_t, field), sizeof (((zv_config_t *) 0)->field), d, 0, 0 }
#define INT(sec, key, field, d, lo, hi) \
    { sec, key, S_INT, offsetof (zv_config_t, field), sizeof (int), d, lo, hi }
#define DBL(sec, key, field, d, lo, hi) \
    { sec, key, S_DOUBLE, offsetof (zv_config_t, field), sizeof (double), d, lo, hi }
#define BOOL(sec, key, field, d) \
    { sec, key, S_BOOL, offsetof (zv_config_t, field), sizeof (bool), d, 0, 1 }

static const s_key_t s_keys [] = {
    STR ("DEFAULT", "host", host, ""),
    STR ("DEFAULT", "state_path", state_path, "./var"),
    STR ("DEFAULT", "log_level", log_level, "info"),
    INT ("DEFAULT", "report_interval", report_interval_s, "10", 1, 3600),
    INT ("DEFAULT", "service_down_time", service_down_time_s, "60", 1, 86400),
    STR ("DEFAULT", "default_availability_zone", default_availability_zone, "nova"),
    INT ("DEFAULT", "shutdown_timeout", shutdown_timeout_s, "60", 0, 3600),
    BOOL ("DEFAULT", "allow_resize_to_same_host", allow_resize_to_same_host, "false"),
    INT ("DEFAULT", "resize_confirm_window", resize_confirm_window_s, "0", 0, 31536000),
    INT ("DEFAULT", "debug_move_delay_ms", debug_move_delay_ms, "0", 0, 3600000),
    STR ("api", "endpoint", api_endpoint, ZV_DEFAULT_API_ENDPOINT),
    INT ("api", "request_timeout", api_request_timeout_s, "30", 1, 3600),
    STR ("api", "default_project", default_project, "admin"),
    STR ("api", "default_user", default_user, "admin"),
    STR ("api", "default_roles", default_roles, "admin,member,reader"),
    STR ("conductor", "endpoint", conductor_endpoint, ZV_DEFAULT_CONDUCTOR_ENDPOINT),
    INT ("conductor", "store_map_size_mb", store_map_size_mb, "4096", 1, 1048576),
    INT ("conductor", "group_commit_max", group_commit_max, "256", 1, 65536),
    INT ("conductor", "build_timeout", build_timeout_s, "600", 1, 86400),
    INT ("conductor", "housekeeping_interval", housekeeping_interval_s, "10", 1, 3600),
    INT ("conductor", "rpc_timeout", rpc_timeout_s, "30", 1, 3600),
    INT ("conductor", "task_timeout", task_timeout_s, "900", 10, 86400),
    INT ("conductor", "move_phase_timeout", move_phase_timeout_s, "600", 5, 86400),
    INT ("scheduler", "host_refresh_interval_ms", host_refresh_interval_ms, "1000", 10, 3600000),
    INT ("scheduler", "max_attempts", max_attempts, "3", 1, 100),
    LIST ("scheduler", "enabled_filters", enabled_filters, "ComputeFilter,CoreFilter,RamFilter,DiskFilter"),
    DBL ("scheduler", "ram_weight_multiplier", ram_weight_multiplier, "1.0", -1000, 1000),
    LIST ("filter_scheduler", "enabled_filters", filter_enabled_filters,
          "ComputeFilter,AvailabilityZoneFilter,PlacementFilter,ImagePropertiesFilter,"
          "ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter"),
    INT ("filter_scheduler", "host_subset_size", host_subset_size, "1", 1, 1000),
    INT ("filter_scheduler", "max_instances_per_host", max_instances_per_host, "50", 1, INT_MAX),
    DBL ("filter_scheduler", "ram_weight_multiplier", filter_ram_weight_multiplier, "1.0", -1000, 1000),
    DBL ("filter_scheduler", "cpu_weight_multiplier", cpu_weight_multiplier, "1.0", -1000, 1000),
    DBL ("filter_scheduler", "disk_weight_multiplier", disk_weight_multiplier, "1.0", -1000, 1000),
    DBL ("filter_scheduler", "build_failure_weight_multiplier", build_failure_weight_multiplier,
         "1000000.0", 0, 1e9),
    DBL ("filter_scheduler", "soft_affinity_weight_multiplier", soft_affinity_weight_multiplier, "1.0", 0, 1000),
    DBL ("filter_scheduler", "soft_anti_affinity_weight_multiplier", soft_anti_affinity_weight_multiplier,
         "1.0", 0, 1000),
    DBL ("compute", "cpu_allocation_ratio", cpu_allocation_ratio, "4.0", 0.0001, 1000),
    DBL ("compute", "ram_allocation_ratio", ram_allocation_ratio, "1.0", 0.0001, 1000),
    DBL ("compute", "disk_allocation_ratio", disk_allocation_ratio, "1.0", 0.0001, 1000),
    INT ("compute", "reserved_host_memory_mb", reserved_host_memory_mb, "512", 0, 16777216),
    INT ("compute", "reserved_host_disk_mb", reserved_host_disk_mb, "0", 0, INT_MAX),
    INT ("compute", "local_gb", local_gb, "0", 0, 1048576),
    STR ("compute", "instances_path", instances_path, ""),
    STR ("compute", "custom_resources", custom_resources, ""),
    INT ("compute", "sync_power_state_interval", sync_power_state_interval_s, "600", 1, 86400),
    INT ("compute", "workers", workers, "8", 1, 256),
    INT ("compute", "move_transfer_timeout", move_transfer_timeout_s, "120", 1, 86400),
    //  The host's image cache cleans itself as Nova's image cache manager
    //  does (Nova's [image_cache] names): -1 never, 0 every 60 s.
    INT ("image_cache", "manager_interval", image_cache_manager_interval_s, "2400", -1, INT_MAX),
    BOOL ("image_cache", "remove_unused_base_images", remove_unused_base_images, "true"),
    INT ("image_cache", "remove_unused_original_minimum_age_seconds", remove_unused_original_minimum_age_s,
         "86400", 0, INT_MAX),
    STR ("libvirt", "connection_uri", connection_uri, "test:///default"),
    STR ("libvirt", "virt_type", virt_type, "auto"),
    STR ("libvirt", "image_cache_path", image_cache_path, ""),
    STR ("libvirt", "network", network, "user"),
    STR ("libvirt", "rescue_image_id", rescue_image_id, ""),
    INT ("libvirt", "wait_soft_reboot_seconds", wait_soft_reboot_seconds, "120", 0, 3600),
    INT ("libvirt", "agent_timeout", agent_timeout_s, "5", 1, 600),
    //  Live migration, with Nova's names and defaults.  peer_uri is how a
    //  source's libvirtd reaches this host's (peer to peer; "": qemu+tcp://
    //  <host>/system) and inbound_addr where guests' memory and disks come
    //  in ("": the host name), both told to the source by this host.
    //  The guest CPU (Nova's): host-model, host-passthrough, custom (the
    //  first of cpu_models), none; "": host-model on kvm, else none.  A
    //  custom host takes in live only guests whose model it lists.
    STR ("libvirt", "cpu_mode", cpu_mode, ""),
    LIST ("libvirt", "cpu_models", cpu_models, ""),
    STR ("libvirt", "live_migration_inbound_addr", live_migration_inbound_addr, ""),
    STR ("libvirt", "live_migration_peer_uri", live_migration_peer_uri, ""),
    INT ("libvirt", "live_migration_bandwidth", live_migration_bandwidth, "0", 0, 1000000),
    INT ("libvirt", "live_migration_downtime", live_migration_downtime, "500", 100, 1000000),
    INT ("libvirt", "live_migration_downtime_steps", live_migration_downtime_steps, "10", 3, 1000),
    INT ("libvirt", "live_migration_downtime_delay", live_migration_downtime_delay, "75", 3, 100000),
    INT ("libvirt", "live_migration_completion_timeout", live_migration_completion_timeout, "800", 0, 1000000),
    STR ("libvirt", "live_migration_timeout_action", live_migration_timeout_action, "abort"),
    BOOL ("libvirt", "live_migration_permit_post_copy", live_migration_permit_post_copy, "false"),
    BOOL ("libvirt", "live_migration_permit_auto_converge", live_migration_permit_auto_converge, "false"),
    STR ("vnc", "server_listen", vnc_server_listen, "127.0.0.1"),
    STR ("vnc", "server_proxyclient_address", vnc_proxyclient_address, ""),
    STR ("vnc", "novncproxy_base_url", novncproxy_base_url, "http://127.0.0.1:6080/vnc_lite.html"),
    STR ("serial_console", "base_url", serial_base_url, "ws://127.0.0.1:6080/serial"),
    STR ("serial_console", "port_range", serial_port_range, "10000:20000"),
    INT ("consoleauth", "token_ttl", token_ttl_s, "600", 1, 86400),
    STR ("consoleproxy", "listen", proxy_listen, "127.0.0.1"),
    INT ("consoleproxy", "port", proxy_port, "6080", 1, 65535),
    LIST ("consoleproxy", "allowed_origins", proxy_allowed_origins, ""),
    STR ("consoleproxy", "web", proxy_web, "/usr/share/novnc"),
    INT ("consoleproxy", "buffer_kb", proxy_buffer_kb, "256", 4, 65536),
};
#define S_KEY_COUNT (sizeof (s_keys) / sizeof (s_keys [0]))
_Static_assert (S_KEY_COUNT <= ZV_CONFIG_MAX_KEYS, "zv_config_t.keys_set has one bit per key");

//  One bit per row of s_keys.
static void
s_mark (uint64_t *bits, size_t row)
{
    bits [row / 64] |= (uint64_t) 1 << (row % 64);
}

static bool
s_marked (const uint64_t *bits, size_t row)
{
    return (bits [row / 64] >> (row % 64)) & 1;
}

//  Deprecated keys that still work: the old key's value applies when a
//  file sets it and never sets the new key (Nova's deprecated_name).
static const struct {
    const char *section, *name;
    const char *new_section, *new_name;
} s_aliases [] = {
    { "scheduler", "enabled_filters",       "filter_scheduler", "enabled_filters" },
    { "scheduler", "ram_weight_multiplier", "filter_scheduler", "ram_weight_multiplier" },
};
#define S_ALIAS_COUNT (sizeof (s_aliases) / sizeof (s_aliases [0]))

static size_t
s_key_row (const char *section, const char *name)
{
    for (size_t index = 0; index < S_KEY_COUNT; index++)
        if (strcmp (s_keys [index].section, section) == 0 && strcmp (s_keys [index].name, name) == 0)
            return index;
    return S_KEY_COUNT;
}

typedef struct {
    zv_config_t *config;
    const char *path;
    char *errbuf;
    size_t errlen;
    bool failed;
    const s_key_t *last;            //  the key of the previous line
    uint64_t keys_set [ZV_CONFIG_MAX_KEYS / 64];    //  by this file
} s_load_t;

static zv_status_t
s_set (zv_config_t *config, const s_key_t *key, const char *value, char *errbuf, size_t errlen)
{
    char *field = (char *) config + key->offset;
    char *end = NULL;
    switch (key->kind) {
        case S_STR:
        case S_LIST:
            if (strlen (value) >= key->size) {
                snprintf (errbuf, errlen, "[%s] %s: value longer than %zu bytes",
                          key->section, key->name, key->size - 1);
                return ZV_EINVAL;
            }
            strcpy (field, value);
            return ZV_OK;
        case S_INT: {
            errno = 0;
            long long number = strtoll (value, &end, 10);
            if (errno || end == value || *end || number < key->min || number > key->max) {
                snprintf (errbuf, errlen, "[%s] %s: '%s' is not an integer in [%.0f, %.0f]",
                          key->section, key->name, value, key->min, key->max);
                return ZV_EINVAL;
            }
            *(int *) field = (int) number;
            return ZV_OK;
        }
        case S_DOUBLE: {
            errno = 0;
            double number = strtod (value, &end);
            if (errno || end == value || *end || isnan (number)
            ||  number < key->min || number > key->max) {
                snprintf (errbuf, errlen, "[%s] %s: '%s' is not a number in [%g, %g]",
                          key->section, key->name, value, key->min, key->max);
                return ZV_EINVAL;
            }
            *(double *) field = number;
            return ZV_OK;
        }
        case S_BOOL: {
            static const char *yes [] = { "true", "yes", "on", "1" };
            static const char *no [] = { "false", "no", "off", "0" };
            for (size_t index = 0; index < 4; index++) {
                if (strcasecmp (value, yes [index]) == 0) {
                    *(bool *) field = true;
                    return ZV_OK;
                }
                if (strcasecmp (value, no [index]) == 0) {
                    *(bool *) field = false;
                    return ZV_OK;
                }
            }
            snprintf (errbuf, errlen, "[%s] %s: '%s' is not a boolean (true, false)",
                      key->section, key->name, value);
            return ZV_EINVAL;
        }
        case S_KIND_COUNT:
            break;
    }
    return ZV_EINTERNAL;
}

void
zv_config_defaults (zv_config_t *config)
{
    memset (config, 0, sizeof (*config));
    char errbuf [256];
    for (size_t index = 0; index < S_KEY_COUNT; index++) {
        zv_status_t status = s_set (config, &s_keys [index], s_keys [index].dflt, errbuf, sizeof errbuf);
        assert (status == ZV_OK);
        (void) status;
    }
    if (gethostname (config->host, sizeof (config->host) - 1) != 0 || !*config->host)
        strcpy (config->host, "localhost");
}

static int
s_handler (void *arg, const char *section, const char *name, const char *value)
{
    s_load_t *load = (s_load_t *) arg;
    if (load->failed)
        return 0;
    for (size_t index = 0; index < S_KEY_COUNT; index++) {
        const s_key_t *key = &s_keys [index];
        if (strcmp (key->section, section) == 0 && strcmp (key->name, name) == 0) {
            char reason [512];
            char joined [1024];
            if (key->kind == S_LIST && load->last == key) {
                const char *field = (const char *) load->config + key->offset;
                size_t length = strlen (field);
                bool comma = length && field [length - 1] != ',' && *value && *value != ',';
                snprintf (joined, sizeof joined, "%s%s%s", field, comma ? "," : "", value);
                value = joined;
            }
            if (s_set (load->config, key, value, reason, sizeof reason) != ZV_OK) {
                snprintf (load->errbuf, load->errlen, "%s", reason);
                load->failed = true;
                return 0;
            }
            load->last = key;
            s_mark (load->keys_set, index);
            s_mark (load->config->keys_set, index);
            return 1;
        }
    }
    load->last = NULL;
    zv_warning ("config", NULL, "%s: unknown key [%s] %s (ignored)", load->path, section, name);
    return 1;
}

//  The INI parser reads lines of at most S_MAX_LINE bytes and would
//  silently split a longer one; refuse such a file with the line's number.
#define S_MAX_LINE 200

zv_status_t
zv_config_load (zv_config_t *config, const char *path, char *errbuf, size_t errlen)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        snprintf (errbuf, errlen, "cannot open config %s: %s", path, strerror (errno));
        return ZV_ENOTFOUND;
    }
    char *line = NULL;
    size_t capacity = 0;
    ssize_t length;
    int number = 0;
    while ((length = getline (&line, &capacity, file)) >= 0) {
        number++;
        while (length > 0 && (line [length - 1] == '\n' || line [length - 1] == '\r'))
            length--;
        if (length >= S_MAX_LINE) {
            snprintf (errbuf, errlen, "%s:%d: line longer than %d bytes", path, number, S_MAX_LINE - 1);
            free (line);
            fclose (file);
            return ZV_EINVAL;
        }
    }
    free (line);
    rewind (file);
    char reason [512] = "";
    s_load_t load = { .config = config, .path = path, .errbuf = reason, .errlen = sizeof reason };
    int at = ini_parse_file (file, s_handler, &load);
    fclose (file);
    //  A handler that refuses a value makes the parser report its line.
    if (load.failed) {
        snprintf (errbuf, errlen, "%s:%d: %s", path, at, reason);
        return ZV_EINVAL;
    }
    if (at != 0) {
        snprintf (errbuf, errlen, "%s:%d: syntax error", path, at);
        return ZV_EINVAL;
    }
    for (size_t index = 0; index < S_ALIAS_COUNT; index++) {
        size_t old_row = s_key_row (s_aliases [index].section, s_aliases [index].name);
        size_t new_row = s_key_row (s_aliases [index].new_section, s_aliases [index].new_name);
        assert (old_row < S_KEY_COUNT && new_row < S_KEY_COUNT);
        assert (s_keys [old_row].kind == s_keys [new_row].kind && s_keys [old_row].size == s_keys [new_row].size);
        //  Only what this file sets: an earlier file's alias was applied then.
        if (!s_marked (load.keys_set, old_row))
            continue;
        if (s_marked (config->keys_set, new_row))
            zv_warning ("config", NULL, "%s: [%s] %s is deprecated and overridden by [%s] %s", path,
                        s_aliases [index].section, s_aliases [index].name,
                        s_aliases [index].new_section, s_aliases [index].new_name);
        else {
            zv_warning ("config", NULL, "%s: [%s] %s is deprecated, use [%s] %s", path,
                        s_aliases [index].section, s_aliases [index].name,
                        s_aliases [index].new_section, s_aliases [index].new_name);
            memcpy ((char *) config + s_keys [new_row].offset, (char *) config + s_keys [old_row].offset,
                    s_keys [old_row].size);
        }
    }
    return ZV_OK;
}
