/*  main.c: the zova command line client: the command table, global
    options, parsing, settings, usage and help.

    zova talks to the api actor the way the openstack client talks to Nova:
    one request per operation on a resource, the reply printed as an
    openstack-style table for people or as JSON for scripts.

    The command line is table driven: s_commands has one row per command
    (its words, handler, request type, resource, options and the body key
    each option fills, positional arguments, summary), and parsing, usage
    and help all read it.  The command words are found first, wherever the
    global options sit around them; then getopt_long parses the rest with
    the global options and the command's own in one table.  The endpoint
    comes from --endpoint, else ZOVA_ENDPOINT, else the [api] endpoint of
    --config or ZOVA_CONFIG, else the default.  The handlers live with
    their records (zova.h lists the files).                               */

#include <czmq.h>
#include <jansson.h>
#include <ini.h>

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/zova/zova.h"

#define ZOVA_VERSION            "0.1.0"
#define ZOVA_DEFAULT_ENDPOINT   "tcp://127.0.0.1:5774"
#define ZOVA_DEFAULT_TIMEOUT_S  30.0
#define ZOVA_MAX_TIMEOUT_S      86400.0     //  keeps milliseconds well inside an int
#define ZOVA_MAX_WORDS          4
//  Returned by the parser when the command should run.
#define ZOVA_RUN                (-1)

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

static const opt_spec_t s_image_set_opts [] = {
    { "name",     OPT_STR, "NAME",      "name",       false, 0, NULL },
    { "property", OPT_KV,  "KEY=VALUE", "properties", false, 0, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_image_save_opts [] = {
    { "file", OPT_STR, "PATH", NULL, true, 0, NULL },
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

static const opt_spec_t s_server_migrate_opts [] = {
    { "host",             OPT_STR,  "HOST",    "host", false, 0, NULL },
    //  --live-migration moves it running; --block-migration and
    //  --shared-migration say how its disks go (neither: the hosts decide).
    { "live-migration",   OPT_FLAG, NULL,      NULL,   false, 0, NULL },
    { "block-migration",  OPT_FLAG, NULL,      NULL,   false, 0, NULL },
    { "shared-migration", OPT_FLAG, NULL,      NULL,   false, 0, NULL },
    { "wait",             OPT_FLAG, NULL,      NULL,   false, 0, NULL },
    { "wait-timeout",     OPT_INT,  "SECONDS", NULL,   false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_server_resize_opts [] = {
    { "flavor",       OPT_STR,  "FLAVOR",  "flavor", true,  0, NULL },
    { "wait",         OPT_FLAG, NULL,      NULL,     false, 0, NULL },
    { "wait-timeout", OPT_INT,  "SECONDS", NULL,     false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_server_evacuate_opts [] = {
    { "host",         OPT_STR,  "HOST",    "host", false, 0, NULL },
    { "wait",         OPT_FLAG, NULL,      NULL,   false, 0, NULL },
    { "wait-timeout", OPT_INT,  "SECONDS", NULL,   false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_host_evacuate_opts [] = {
    { "target",       OPT_STR,  "HOST",    "target", false, 0, NULL },
    { "wait",         OPT_FLAG, NULL,      NULL,     false, 0, NULL },
    { "wait-timeout", OPT_INT,  "SECONDS", NULL,     false, 1, NULL },
    { NULL, OPT_FLAG, NULL, NULL, false, 0, NULL }
};

static const opt_spec_t s_migration_list_opts [] = {
    { "host",   OPT_STR, "HOST",   "host",   false, 0, NULL },
    { "status", OPT_STR, "STATUS", "status", false, 0, NULL },
    { "kind",   OPT_STR, "KIND",   "kind",   false, 0, "migration|resize|live-migration|evacuation" },
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
    { "down",           OPT_FLAG, NULL,     NULL,              false, 0, NULL },
    { "up",             OPT_FLAG, NULL,     NULL,              false, 0, NULL },
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
      NULL, "REF...", 1, SIZE_MAX, "delete images (servers booted from them keep running)" },
    { "image set", zv_cli_cmd_set, "api.image_set", &zv_cli_res_image,
      s_image_set_opts, "REF", 1, 1, "rename an image or set its properties" },
    { "image unset", zv_cli_cmd_set, "api.image_set", &zv_cli_res_image,
      s_properties_unset_opts, "REF", 1, 1, "remove properties from an image" },
    { "image save", zv_cli_cmd_image_save, "api.image_read", &zv_cli_res_image,
      s_image_save_opts, "REF", 1, 1, "download an image's bytes into a file (checked against its sha256)" },

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


    { "server migrate", zv_cli_cmd_server_move, "api.server_migrate", &zv_cli_res_server,
      s_server_migrate_opts, "SERVER", 1, 1,
      "move a server to another host (--host: that one): shut down, it waits in VERIFY_RESIZE"
      " for resize confirm or revert (--live-migration: moved running)" },
    { "server resize", zv_cli_cmd_server_move, "api.server_resize", &zv_cli_res_server,
      s_server_resize_opts, "SERVER", 1, 1,
      "give a server another flavor, on this host or another; it waits in VERIFY_RESIZE"
      " for resize confirm or revert" },
    { "server resize confirm", zv_cli_cmd_server_move, "api.server_resize_confirm", &zv_cli_res_server,
      s_server_action_opts, "SERVER", 1, 1,
      "keep a migrated or resized server as it is now (its source host lets go of it)" },
    { "server resize revert", zv_cli_cmd_server_move, "api.server_resize_revert", &zv_cli_res_server,
      s_server_action_opts, "SERVER", 1, 1,
      "take a migrated or resized server back to its source host and old flavor" },
    { "server evacuate", zv_cli_cmd_server_move, "api.server_evacuate", &zv_cli_res_server,
      s_server_evacuate_opts, "SERVER", 1, 1,
      "rebuild a server of a host that is down on another host (--host: that one); on local"
      " storage from its image: the data on its disks is lost" },
    { "server migration list", zv_cli_cmd_migration_list, "api.migration_list", &zv_cli_res_migration,
      NULL, "SERVER", 1, 1, "list a server's migrations, newest first" },
    { "server migration show", zv_cli_cmd_migration_show, "api.migration_show", &zv_cli_res_migration,
      NULL, "SERVER ID", 2, 2, "show one migration of a server" },
    { "server migration abort", zv_cli_cmd_migration_control, "api.migration_abort", &zv_cli_res_migration,
      NULL, "SERVER ID", 2, 2, "abort a running live migration: the guest stays on its source" },
    { "server migration force complete", zv_cli_cmd_migration_control, "api.migration_force_complete",
      &zv_cli_res_migration, NULL, "SERVER ID", 2, 2,
      "make a running live migration complete: post-copy if permitted, else the guest pauses until it converges" },

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
      s_service_set_opts, "HOST [BINARY]", 1, 2,
      "enable or disable a service (default: compute); --down: mark its host down, so that its"
      " servers can be evacuated; --up: clear that" },
    { "host evacuate", zv_cli_cmd_host_evacuate, "api.host_evacuate", &zv_cli_res_migration,
      s_host_evacuate_opts, "SOURCE_HOST", 1, 1,
      "evacuate every server of a host that is down (to --target, or where the scheduler says)" },
    { "migration list", zv_cli_cmd_migration_list, "api.migration_list", &zv_cli_res_migration,
      s_migration_list_opts, "", 0, 0,
      "list migrations, newest first (--host: from or to that host)" },
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
