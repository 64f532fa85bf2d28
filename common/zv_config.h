/*  zv_config.h: zova's configuration, one INI file for every process.

    The same file format serves zovad all and each process of a cluster, as
    nova.conf does: [DEFAULT] for what every actor shares (host name, state
    path, heartbeat timing), then one section per actor and [libvirt].  Every
    key, its default and why is documented in config/zova.conf.sample; the
    defaults here are the only source of those values.  Unknown keys are
    reported as warnings (a typo must not go unnoticed), bad values as errors. */

#ifndef ZV_CONFIG_H
#define ZV_CONFIG_H

#include "common/zv_common.h"

#define ZV_DEFAULT_API_ENDPOINT       "tcp://127.0.0.1:5774"
#define ZV_DEFAULT_CONDUCTOR_ENDPOINT "tcp://127.0.0.1:5775"
#define ZV_INPROC_CONDUCTOR_ENDPOINT  "inproc://zova-conductor"

#define ZV_CONFIG_MAX_KEYS 256       //  rows of the key table (bits of keys_set)

typedef struct {
    //  [DEFAULT]
    char host [256];                //  this process's host name (compute: the hypervisor host)
    char state_path [1024];         //  where the conductor keeps the store and images
    char log_level [16];
    int report_interval_s;          //  heartbeat period of every service
    int service_down_time_s;        //  heartbeat age after which a service is down
    char default_availability_zone [256];   //  the zone of hosts in no zoned aggregate
    int shutdown_timeout_s;         //  a clean shutdown waits this long, then destroys
    bool allow_resize_to_same_host; //  a resize or migration may stay on its host (Nova's)
    int resize_confirm_window_s;    //  a resize waiting for confirmation is confirmed after this (0: never)
    int debug_move_delay_ms;        //  tests only: compute holds each move phase's done report this long
    //  [api]
    char api_endpoint [256];        //  bound by the api; the CLI connects here
    int api_request_timeout_s;      //  how long the api waits for the conductor
    char default_project [64];      //  project of requests until the api authenticates
    char default_user [64];         //  user of requests until the api authenticates
    char default_roles [128];       //  their roles ("admin,member,reader")
    //  [conductor]
    char conductor_endpoint [256];  //  bound by the conductor; every other actor connects
    int store_map_size_mb;
    int group_commit_max;           //  requests batched into one synced commit
    int build_timeout_s;            //  a build not finished after this goes to ERROR
    int housekeeping_interval_s;    //  how often stuck transitions are looked for
    int rpc_timeout_s;              //  conductor -> scheduler calls
    int task_timeout_s;             //  a user action not finished after this is given up
    int move_phase_timeout_s;       //  a move's phase not reported after this is cast again, then undone
    //  [scheduler]
    int host_refresh_interval_ms;   //  how often the scheduler refreshes host states
    int max_attempts;               //  hosts tried for one build (first + alternates)
    char enabled_filters [512];     //  deprecated alias of [filter_scheduler] enabled_filters
    double ram_weight_multiplier;   //  deprecated alias of [filter_scheduler] ram_weight_multiplier
    //  [filter_scheduler] (after zv_config_load: the values in effect, the
    //  deprecated [scheduler] aliases applied when only they were set)
    char filter_enabled_filters [512];  //  filters, in order (Nova's names)
    int host_subset_size;           //  the choice is drawn among the best N hosts
    int max_instances_per_host;     //  NumInstancesFilter
    double filter_ram_weight_multiplier;
    double cpu_weight_multiplier;
    double disk_weight_multiplier;
    double build_failure_weight_multiplier;
    double soft_affinity_weight_multiplier;
    double soft_anti_affinity_weight_multiplier;
    //  [compute]
    double cpu_allocation_ratio;
    double ram_allocation_ratio;
    double disk_allocation_ratio;
    int reserved_host_memory_mb;
    int reserved_host_disk_mb;
    int local_gb;                   //  0: measured from the instances path
    char instances_path [1024];     //  empty: <state_path>/instances
    char custom_resources [512];    //  "CUSTOM_GPU=2,CUSTOM_FPGA=1": extra inventories
    int sync_power_state_interval_s;
    int workers;                    //  threads for calls that wait on a guest
    int move_transfer_timeout_s;    //  a move's file transfer gives up after this long without progress
    //  [image_cache]
    int image_cache_manager_interval_s;     //  between passes of the cache's cleaner (-1: never, 0: 60 s)
    bool remove_unused_base_images; //  false: unused base files are only logged
    int remove_unused_original_minimum_age_s;   //  an unused base file goes once this old (since its last use)
    //  [libvirt]
    char connection_uri [1024];
    char virt_type [16];            //  kvm|qemu|auto
    char image_cache_path [1024];   //  empty: <instances_path>/_base
    char network [128];             //  user | bridge:<name> | network:<name> | none
    char rescue_image_id [64];      //  empty: rescue from the instance's own image
    int wait_soft_reboot_seconds;   //  a soft reboot falls back to hard after this
    int agent_timeout_s;            //  how long a guest agent query may take
    char cpu_mode [32];             //  host-model | host-passthrough | custom | none | "" (by virt type)
    char cpu_models [512];          //  custom: the models this host offers, the first for its guests
    char live_migration_inbound_addr [256];
    char live_migration_peer_uri [1024];
    int live_migration_bandwidth;   //  MiB/s, 0: no limit
    int live_migration_downtime;    //  ms: the maximum downtime at the last step
    int live_migration_downtime_steps;
    int live_migration_downtime_delay;          //  s per GiB between steps
    int live_migration_completion_timeout;      //  s per GiB, 0: none
    char live_migration_timeout_action [32];    //  abort | force_complete
    bool live_migration_permit_post_copy;
    bool live_migration_permit_auto_converge;
    //  [vnc]
    char vnc_server_listen [256];   //  VNC listen address of every domain; empty: no VNC
    char vnc_proxyclient_address [256];     //  where the console proxy reaches it (empty: server_listen)
    char novncproxy_base_url [512]; //  the noVNC page users are given
    //  [serial_console]
    char serial_base_url [512];     //  the WebSocket URL of serial consoles
    char serial_port_range [32];    //  "10000:20000": TCP ports of domains' serial consoles
    //  [consoleauth]
    int token_ttl_s;                //  console tokens expire after this
    //  [consoleproxy]
    char proxy_listen [256];        //  address the console proxy serves HTTP and WebSocket on
    int proxy_port;
    char proxy_allowed_origins [512];   //  origins allowed besides the proxy's own (host[:port], comma list)
    char proxy_web [512];           //  the noVNC files (Debian's novnc package)
    int proxy_buffer_kb;            //  per direction and session: a slow reader is not read for beyond it
    //  Which keys a file set (bit = row of the key table), so that a
    //  deprecated alias gives way to its new key whatever their order.
    uint64_t keys_set [ZV_CONFIG_MAX_KEYS / 64];
} zv_config_t;

//  Fill config with the built-in defaults (host = this machine's name).
void zv_config_defaults (zv_config_t *config);
//  Load path over the defaults.  ZV_OK, or ZV_ENOTFOUND / ZV_EINVAL with a
//  message naming the file, line and key.  A deprecated key the file sets
//  (e.g. [scheduler] enabled_filters) is copied to its new key unless that
//  was set too, with a warning.
zv_status_t zv_config_load (zv_config_t *config, const char *path,
                            char *errbuf, size_t errlen);

#endif
