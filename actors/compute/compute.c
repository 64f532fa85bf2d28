/*  compute.c: one hypervisor host.  Builds, operates and destroys domains
    through the driver table and reports every step to the conductor; never
    opens the store.

    One thread, one zloop, one link (DEALER "compute.<host>") to the
    conductor.  A build walks Nova's task states with a compare-and-swap at
    each step (scheduling -> networking -> block_device_mapping ->
    spawning), each an rpc whose continuation takes the next step, so the
    loop never blocks on the conductor and a delete that lands mid-build
    makes the next step's CAS fail and the build stop.

    An operation is an s_op_t: first its images are made sure of in the
    host's cache (zv_imagecache: fetched over the bus once per image), then
    its hypervisor calls run, then its end is reported with
    conductor.instance_update against the task_state the conductor set, with
    the action's result.  On a real hypervisor the calls run on the workers
    (zv_workers: a clean shutdown waits up to a minute on the guest); on
    libvirt's test driver, whose calls answer in microseconds, they run on
    this thread, which is what lets one process simulate a fleet.  Which
    hypervisor calls an action makes is one table (s_actions).

    Power state: libvirt's domain events (lifecycle, guest agent) arrive on
    the driver's event fd; the uuids they name are synced with the conductor
    in one partial compute_sync a moment later.  A full sync (at start,
    when the conductor's epoch changes, after the hypervisor connection
    comes back, and every sync_power_state_interval) lists every domain: the
    conductor reconciles and answers which deletes to finish and which
    orphan domains to reap.  While the hypervisor is unreachable the host
    heartbeats as degraded and reconnects with backoff.                      */

#include "actors/zv_actors.h"
#include "bus/zv_link.h"
#include "virt/zv_virt.h"
#include "bus/zv_workers.h"
#include "virt/zv_imagecache.h"
#include "virt/zv_disk.h"
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define ACTOR_PREFIX "compute"
#define S_CHUNK_SIZE (1024 * 1024)
#define S_CHUNK_WINDOW 4
#define S_EVENT_DELAY_MS 100        //  events are gathered this long into one sync
#define S_GUEST_RETRIES 6           //  agent queries until the guest has an address
#define S_GUEST_RETRY_MS 3000       //  (checked every 500 ms)

typedef struct {
    zv_config_t cfg;
    char name [300];                //  "compute.<host>", for logs
    zsock_t *pipe;
    zloop_t *loop;
    zv_link_t *link;
    const zv_virt_driver_t *driver;
    zv_virt_t *virt;
    bool virt_lost;                 //  the connection closed: reconnect before use
    bool synced_virt;               //  a full sync has run on this connection
    zmq_pollitem_t event_item;      //  the driver's event fd, while connected
    bool event_polled;
    json_t *custom;                 //  custom resource classes: {CUSTOM_X: total}
    char instances_path [1100];
    char cache_path [1100];
    zv_workers_t *workers;
    zv_imagecache_t *cache;
    json_t *event_uuids;            //  uuids named by events since the last partial sync
    json_t *guest_retries;          //  uuid -> {attempt, due}: agents to ask again
    json_t *serial_ports;           //  uuid -> serial console TCP port given to its domain
    int event_timer;                //  -1 when none armed
    int64_t started_ms;
    int64_t reconnect_at;           //  mono ms of the next reconnect try
    int reconnect_delay_ms;
    char degraded [600];            //  why the hypervisor is unreachable ("" when it is not)
} self_t;

//  ---------------------------------------------------------------------
//  Operations: what an action does on the hypervisor, one row each

typedef struct _s_op_t s_op_t;
typedef zv_status_t (s_op_fn) (s_op_t *op);

typedef struct {
    const char *action;             //  zv_state action name ("build" for a spawn)
    const char *task_state;         //  the task_state the conductor set
    s_op_fn *run;                   //  hypervisor calls (worker thread on QEMU)
    const char *vm_state;           //  vm_state on success (NULL: unchanged)
    bool needs_images;              //  the _base files must be there (re-fetched if not)
    bool rescue_images;             //  the rescue image's too
    bool defines;                   //  (re)defines the domain from its record: a new serial port
} s_action_t;

struct _s_op_t {
    const s_action_t *action;
    const zv_virt_driver_t *driver;
    zv_virt_t *virt;                //  a reference of its own
    json_t *instance;
    json_t *images;                 //  {id: image record}
    char uuid [ZV_UUID_LEN + 1];
    char rq [72];
    char rescue_image [64];
    char user [64];
    char password [256];
    int fetching;                   //  images still being fetched
    zv_status_t status;
    char errbuf [1024];
    char note [256];                //  a remark for the action record (e.g. soft reboot fell back)
    zv_power_state_t power;         //  after the operation
    //  The host's files for the domain.
    char dir [1200], disk [1300], disk_local [1300], disk_swap [1300], disk_rescue [1300];
    char base [1300];               //  the cached file of the instance's image (the root disk's backing)
    char rescue_base [1300];        //  the cached file of the rescue image
    char console_log [1300], kernel [1300], ramdisk [1300], cmdline [1024];
    char rescue_kernel [1300], rescue_ramdisk [1300], rescue_cmdline [1024];
    char mac [18];
    bool real;                      //  a hypervisor with storage (not the test driver)
    //  Configuration the worker reads.
    int shutdown_timeout_s, soft_reboot_s, agent_timeout_s;
    char vnc_listen [256], network [128];
    char serial_host [256];         //  the domain's serial console on a TCP port (0: pty)
    int serial_port;
    char proxyclient [256];         //  where the console proxy reaches this host's consoles
    json_t *consoles;               //  after the operation: {vnc, serial} of the running domain
    //  Build only: the build's progress through its task states.
    int step;
    json_t *guest;                  //  guest_info result
};

static void
s_op_destroy (s_op_t **op_p)
{
    s_op_t *op = *op_p;
    if (!op)
        return;
    if (op->virt)
        op->driver->close (&op->virt);
    json_decref (op->instance);
    json_decref (op->images);
    json_decref (op->guest);
    json_decref (op->consoles);
    memset (op->password, 0, sizeof op->password);
    free (op);
    *op_p = NULL;
}

static void
s_op_free (void *ctx)
{
    s_op_t *op = (s_op_t *) ctx;
    s_op_destroy (&op);
}

static const char *
s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  The domain spec of an op's files (rescue: boot the rescue disk).
static zv_domain_spec_t
s_spec (s_op_t *op, bool rescue)
{
    zv_domain_spec_t spec = { .instance_dir = op->dir };
    if (!op->real)
        return spec;
    spec.disk = op->disk;
    spec.disk_local = *op->disk_local ? op->disk_local : NULL;
    spec.disk_swap = *op->disk_swap ? op->disk_swap : NULL;
    spec.kernel = *op->kernel ? op->kernel : NULL;
    spec.ramdisk = *op->ramdisk ? op->ramdisk : NULL;
    spec.cmdline = *op->cmdline ? op->cmdline : NULL;
    spec.console_log = op->console_log;
    spec.vnc_listen = *op->vnc_listen ? op->vnc_listen : NULL;
    spec.nic = op->network;
    spec.mac = op->mac;
    spec.serial_host = *op->serial_host ? op->serial_host : NULL;
    spec.serial_port = op->serial_port;
    if (rescue) {
        spec.rescue_disk = op->disk_rescue;
        spec.rescue_kernel = *op->rescue_kernel ? op->rescue_kernel : NULL;
        spec.rescue_ramdisk = *op->rescue_ramdisk ? op->rescue_ramdisk : NULL;
        spec.rescue_cmdline = *op->rescue_cmdline ? op->rescue_cmdline : NULL;
    }
    return spec;
}

//  Make the instance's disks that are missing: the root disk as a qcow2
//  overlay on the cached image, sized to the flavor (never smaller than
//  the image), the ephemeral and swap disks blank.  An existing disk is
//  kept: it is the instance's data.
static zv_status_t
s_make_disks (s_op_t *op, const char *base)
{
    if (!op->real)
        return ZV_OK;
    if (zv_disk_mkdirs (op->dir) != 0) {
        snprintf (op->errbuf, sizeof op->errbuf, "cannot create %s: %s", op->dir, strerror (errno));
        return ZV_EIO;
    }
    const json_t *flavor = json_object_get (op->instance, "flavor");
    json_int_t disk_gb = json_integer_value (json_object_get (flavor, "disk_gb"));
    json_int_t ephemeral_gb = json_integer_value (json_object_get (flavor, "ephemeral_gb"));
    json_int_t swap_mb = json_integer_value (json_object_get (flavor, "swap_mb"));
    zv_status_t status = ZV_OK;
    struct stat info;
    if (stat (op->disk, &info) != 0) {
        struct stat image;
        if (stat (base, &image) != 0) {
            snprintf (op->errbuf, sizeof op->errbuf, "image file %s is missing: %s", base, strerror (errno));
            return ZV_EIO;
        }
        if (disk_gb > 0 && (double) image.st_size > (double) disk_gb * 1024 * 1024 * 1024) {
            snprintf (op->errbuf, sizeof op->errbuf, "Flavor's disk is too small for requested image. "
                      "Flavor disk is %lld bytes, image is %lld bytes.",
                      (long long) disk_gb * 1024 * 1024 * 1024, (long long) image.st_size);
            return ZV_EINVAL;
        }
        status = zv_disk_overlay (op->disk, base, (int64_t) disk_gb, op->errbuf, sizeof op->errbuf);
    }
    if (status == ZV_OK && ephemeral_gb > 0) {
        snprintf (op->disk_local, sizeof op->disk_local, "%s/disk.local", op->dir);
        if (stat (op->disk_local, &info) != 0)
            status = zv_disk_blank (op->disk_local, (int64_t) ephemeral_gb * 1024, op->errbuf, sizeof op->errbuf);
    }
    if (status == ZV_OK && swap_mb > 0) {
        snprintf (op->disk_swap, sizeof op->disk_swap, "%s/disk.swap", op->dir);
        if (stat (op->disk_swap, &info) != 0)
            status = zv_disk_blank (op->disk_swap, (int64_t) swap_mb, op->errbuf, sizeof op->errbuf);
    }
    return status;
}

//  Power off, where a domain that does not exist (undefined behind zova's
//  back, or lost with the test driver's memory) is off already: the
//  operations that follow define it again from the record, as Nova's hard
//  reboot does.
static zv_status_t
s_power_off (s_op_t *op, int timeout_s, bool *clean_p)
{
    zv_status_t status = op->driver->power_off (op->virt, op->uuid, timeout_s, clean_p,
                                                op->errbuf, sizeof op->errbuf);
    if (status == ZV_ENOTFOUND) {
        *op->errbuf = 0;
        if (clean_p)
            *clean_p = true;
        status = ZV_OK;
    }
    return status;
}

static zv_status_t
s_spawn_domain (s_op_t *op, bool rescue)
{
    zv_domain_spec_t spec = s_spec (op, rescue);
    return op->driver->spawn (op->virt, op->instance, &spec, op->errbuf, sizeof op->errbuf);
}

//  The image's cached file (its id) and, when it has them, its kernel's
//  and ramdisk's; the command line.
static void
s_image_files (s_op_t *op, const char *image_id, const char *cache, char *base, size_t base_len,
               char *kernel, char *ramdisk, char *cmdline, size_t len)
{
    const json_t *image = json_object_get (op->images, image_id ? image_id : "");
    const json_t *properties = json_object_get (image, "properties");
    snprintf (base, base_len, "%s/%s", cache, image_id ? image_id : "");
    const char *kernel_id = s_str (properties, "kernel_id");
    const char *ramdisk_id = s_str (properties, "ramdisk_id");
    const char *command = s_str (properties, "os_command_line");
    *kernel = *ramdisk = *cmdline = 0;
    if (kernel_id && *kernel_id)
        snprintf (kernel, len, "%s/%s", cache, kernel_id);
    if (kernel_id && *kernel_id && ramdisk_id && *ramdisk_id)
        snprintf (ramdisk, len, "%s/%s", cache, ramdisk_id);
    if (kernel_id && *kernel_id && command)
        snprintf (cmdline, 1024, "%s", command);
}

static zv_status_t
s_run_build (s_op_t *op)
{
    zv_status_t status = s_make_disks (op, op->base);
    if (status == ZV_OK)
        status = s_spawn_domain (op, false);
    return status;
}

//  Soft reboot as Nova's: the guest shuts down (agent, else ACPI) and the
//  domain starts again; a guest that does not shut down within
//  wait_soft_reboot_seconds is destroyed, which makes it a hard reboot.
static zv_status_t
s_run_reboot (s_op_t *op)
{
    bool clean = false;
    zv_status_t status = s_power_off (op, op->soft_reboot_s, &clean);
    if (status == ZV_OK && !clean)
        snprintf (op->note, sizeof op->note, "the guest did not shut down within %d s: rebooted hard",
                  op->soft_reboot_s);
    if (status == ZV_OK)
        status = s_spawn_domain (op, false);
    return status;
}

//  Hard reboot, and start, as Nova's _hard_reboot: destroy, make what is
//  missing (the cached image re-fetched already), regenerate the XML, start.
static zv_status_t
s_run_hard_reboot (s_op_t *op)
{
    zv_status_t status = s_power_off (op, 0, NULL);
    if (status == ZV_OK)
        status = s_make_disks (op, op->base);
    if (status == ZV_OK)
        status = s_spawn_domain (op, false);
    return status;
}

static zv_status_t
s_run_stop (s_op_t *op)
{
    bool clean = false;
    zv_status_t status = s_power_off (op, op->shutdown_timeout_s, &clean);
    if (status == ZV_OK && !clean && op->shutdown_timeout_s > 0)
        snprintf (op->note, sizeof op->note, "the guest did not shut down within %d s: powered off",
                  op->shutdown_timeout_s);
    return status;
}

static zv_status_t
s_run_pause (s_op_t *op)
{
    return op->driver->pause (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
}

static zv_status_t
s_run_unpause (s_op_t *op)
{
    return op->driver->unpause (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
}

static zv_status_t
s_run_suspend (s_op_t *op)
{
    return op->driver->suspend (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
}

static zv_status_t
s_run_resume (s_op_t *op)
{
    return op->driver->power_on (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
}

//  Rescue as Nova's: a clean power-off, then the domain boots from a fresh
//  overlay of the rescue image (disk.rescue) with the instance's own root
//  disk attached second.  Unrescue boots the instance's own domain again.
static zv_status_t
s_run_rescue (s_op_t *op)
{
    snprintf (op->disk_rescue, sizeof op->disk_rescue, "%s/disk.rescue", op->dir);
    bool clean = false;
    zv_status_t status = s_power_off (op, op->shutdown_timeout_s, &clean);
    if (status == ZV_OK)
        status = s_make_disks (op, op->base);
    if (status == ZV_OK && op->real) {
        unlink (op->disk_rescue);
        status = zv_disk_overlay (op->disk_rescue, op->rescue_base, 0, op->errbuf, sizeof op->errbuf);
    }
    if (status == ZV_OK)
        status = s_spawn_domain (op, true);
    return status;
}

//  Unrescue: the instance's own domain again (a hard reboot from its
//  record), then the rescue disk goes.
static zv_status_t
s_run_unrescue (s_op_t *op)
{
    zv_status_t status = s_run_hard_reboot (op);
    if (status == ZV_OK) {
        char path [1300];
        snprintf (path, sizeof path, "%s/disk.rescue", op->dir);
        unlink (path);
    }
    return status;
}

static zv_status_t
s_run_set_password (s_op_t *op)
{
    return op->driver->set_password (op->virt, op->uuid, *op->user ? op->user : "root", op->password,
                                     op->errbuf, sizeof op->errbuf);
}

static const s_action_t s_actions [] = {
    { "create",         "spawning",           s_run_build,        "active",    true,  false, true  },
    { "reboot",         "rebooting",          s_run_reboot,       "active",    false, false, true  },
    { "reboot_hard",    "rebooting_hard",     s_run_hard_reboot,  "active",    true,  false, true  },
    { "stop",           "powering-off",       s_run_stop,         "stopped",   false, false, false },
    { "start",          "powering-on",        s_run_hard_reboot,  "active",    true,  false, true  },
    { "pause",          "pausing",            s_run_pause,        "paused",    false, false, false },
    { "unpause",        "unpausing",          s_run_unpause,      "active",    false, false, false },
    { "suspend",        "suspending",         s_run_suspend,      "suspended", false, false, false },
    { "resume",         "resuming",           s_run_resume,       "active",    false, false, false },
    { "rescue",         "rescuing",           s_run_rescue,       "rescued",   true,  true,  true  },
    { "unrescue",       "unrescuing",         s_run_unrescue,     "active",    true,  false, true  },
    { "changePassword", "updating_password",  s_run_set_password, NULL,        false, false, false },
};
#define S_ACTIONS (sizeof (s_actions) / sizeof (s_actions [0]))

static const s_action_t *
s_action_find (const char *name)
{
    for (size_t index = 0; name && index < S_ACTIONS; index++)
        if (streq (s_actions [index].action, name))
            return &s_actions [index];
    return NULL;
}

//  ---------------------------------------------------------------------
//  Hypervisor connection, with reconnect backoff

static void s_sync (self_t *self);
static int s_event_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg);

static void
s_virt_drop (self_t *self)
{
    if (self->event_polled) {
        zloop_poller_end (self->loop, &self->event_item);
        self->event_polled = false;
    }
    if (self->virt)
        self->driver->close (&self->virt);
}

static bool
s_virt_ready (self_t *self)
{
    if (self->virt && !self->virt_lost && self->driver->alive (self->virt))
        return true;
    if (zv_mono_ms () < self->reconnect_at)
        return false;
    bool had = self->virt != NULL;
    if (had)
        zv_warning (self->name, NULL, "lost the hypervisor connection to %s", self->cfg.connection_uri);
    s_virt_drop (self);
    self->virt_lost = false;
    char errbuf [512];
    self->virt = self->driver->open (self->cfg.connection_uri, self->cfg.virt_type, errbuf, sizeof errbuf);
    if (!self->virt) {
        self->reconnect_delay_ms = self->reconnect_delay_ms ? self->reconnect_delay_ms * 2 : 500;
        if (self->reconnect_delay_ms > 30000)
            self->reconnect_delay_ms = 30000;
        self->reconnect_at = zv_mono_ms () + self->reconnect_delay_ms;
        snprintf (self->degraded, sizeof self->degraded, "hypervisor %s is unreachable: %s",
                  self->cfg.connection_uri, errbuf);
        zv_warning (self->name, NULL, "%s (retry in %d ms)", self->degraded, self->reconnect_delay_ms);
        return false;
    }
    self->reconnect_delay_ms = 0;
    *self->degraded = 0;
    int fd = self->driver->event_fd (self->virt);
    if (fd >= 0) {
        self->event_item = (zmq_pollitem_t) { NULL, fd, ZMQ_POLLIN, 0 };
        zloop_poller (self->loop, &self->event_item, s_event_readable, self);
        self->event_polled = true;
    }
    zv_info (self->name, NULL, "connected to %s (domain type %s)", self->cfg.connection_uri,
             self->driver->domain_type (self->virt));
    //  What changed while the connection was down is reconciled at once.
    if (had && self->link)
        s_sync (self);
    return true;
}

static bool
s_real (self_t *self)
{
    return self->virt && !streq (self->driver->domain_type (self->virt), "test");
}

//  One class of inventory; a class the host has none of is left out.
static void
s_inventory (json_t *inventories, const char *name, json_int_t total, json_int_t reserved, double ratio)
{
    if (total <= 0)
        return;
    json_object_set_new (inventories, name, json_pack ("{s:I, s:I, s:i, s:I, s:i, s:f}",
        "total", total, "reserved", reserved, "min_unit", 1, "max_unit", total,
        "step_size", 1, "allocation_ratio", ratio));
}

//  [compute] custom_resources ("CUSTOM_GPU=2, CUSTOM_FPGA=1"), parsed once.
static json_t *
s_custom_resources (self_t *self)
{
    json_t *custom = json_object ();
    char text [sizeof self->cfg.custom_resources];
    snprintf (text, sizeof text, "%s", self->cfg.custom_resources);
    char *saveptr = NULL;
    for (char *pair = strtok_r (text, ", \t", &saveptr); pair; pair = strtok_r (NULL, ", \t", &saveptr)) {
        char *equals = strchr (pair, '=');
        long long total = equals ? strtoll (equals + 1, NULL, 10) : 0;
        if (!equals || total <= 0 || strncmp (pair, "CUSTOM_", 7) != 0) {
            zv_warning (self->name, NULL, "[compute] custom_resources: '%s' is not CUSTOM_NAME=TOTAL (ignored)", pair);
            continue;
        }
        *equals = 0;
        json_object_set_new (custom, pair, json_integer (total));
    }
    return custom;
}

//  Heartbeat fields: the host's inventory and how many zova domains run,
//  or why the host is degraded.
static json_t *
s_node_report (void *actor)
{
    self_t *self = (self_t *) actor;
    if (!s_virt_ready (self))
        return json_pack ("{s:s}", "degraded", *self->degraded ? self->degraded : "hypervisor unreachable");
    char errbuf [512];
    json_t *info = self->driver->node_info (self->virt, errbuf, sizeof errbuf);
    if (!info) {
        zv_warning (self->name, NULL, "node info: %s", errbuf);
        return json_pack ("{s:s}", "degraded", errbuf);
    }
    json_t *domains = self->driver->list (self->virt, errbuf, sizeof errbuf);
    int64_t local_gb = self->cfg.local_gb;
    if (!local_gb) {
        struct statvfs fs;
        if (statvfs (self->instances_path, &fs) == 0 || statvfs (self->cfg.state_path, &fs) == 0
        ||  statvfs (".", &fs) == 0)
            local_gb = (int64_t) ((double) fs.f_blocks * (double) fs.f_frsize / (1024.0 * 1024 * 1024));
    }
    json_object_set_new (info, "running_vms", json_integer ((json_int_t) json_array_size (domains)));
    json_decref (domains);
    //  The host as a resource provider: one inventory per class, with the
    //  ratios and reservations of this host's config (placement's model).
    json_int_t vcpus = json_integer_value (json_object_get (info, "vcpus"));
    json_int_t memory_mb = json_integer_value (json_object_get (info, "memory_mb"));
    json_t *inventories = json_object ();
    s_inventory (inventories, "VCPU", vcpus, 0, self->cfg.cpu_allocation_ratio);
    s_inventory (inventories, "MEMORY_MB", memory_mb, self->cfg.reserved_host_memory_mb,
                 self->cfg.ram_allocation_ratio);
    s_inventory (inventories, "DISK_GB", local_gb, (self->cfg.reserved_host_disk_mb + 1023) / 1024,
                 self->cfg.disk_allocation_ratio);
    const char *name;
    json_t *custom;
    json_object_foreach (self->custom, name, custom)
        s_inventory (inventories, name, json_integer_value (custom), 0, 1.0);
    json_object_set_new (info, "inventories", inventories);
    json_object_del (info, "vcpus");
    json_object_del (info, "memory_mb");
    return json_pack ("{s:o}", "node", info);
}

//  ---------------------------------------------------------------------
//  Instance files

static const char *
s_instance_dir (self_t *self, const char *uuid, char *buf, size_t len)
{
    snprintf (buf, len, "%s/%s", self->instances_path, uuid);
    return buf;
}

//  Remove an instance's directory: the files zova put there, then the
//  directory itself.  Flat by construction (no subdirectories).
static void
s_remove_instance_dir (self_t *self, const char *uuid)
{
    char dir [1200], path [1500];
    s_instance_dir (self, uuid, dir, sizeof dir);
    DIR *listing = opendir (dir);
    if (!listing)
        return;
    struct dirent *entry;
    while ((entry = readdir (listing)))
        if (strcmp (entry->d_name, ".") != 0 && strcmp (entry->d_name, "..") != 0) {
            snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
            if (unlink (path) != 0)
                zv_warning (self->name, NULL, "cannot remove %s: %s", path, strerror (errno));
        }
    closedir (listing);
    if (rmdir (dir) != 0)
        zv_warning (self->name, NULL, "cannot remove %s: %s", dir, strerror (errno));
}

//  ---------------------------------------------------------------------
//  Running an operation: images, then the hypervisor calls, then the report

static void s_op_report (self_t *self, s_op_t *op);

static void
s_op_work (void *job)
{
    s_op_t *op = (s_op_t *) job;
    op->status = op->action->run (op);
    op->power = op->driver->power_state (op->virt, op->uuid);
    //  Where its consoles listen now (ports change at every start), as the
    //  console proxy will reach them.
    if (op->real && op->driver->consoles && (op->power == ZV_POWER_RUNNING || op->power == ZV_POWER_PAUSED)) {
        char errbuf [256];
        op->consoles = op->driver->consoles (op->virt, op->uuid, errbuf, sizeof errbuf);
        const char *kind;
        json_t *console;
        json_object_foreach (op->consoles, kind, console)
            if (*op->proxyclient)
                json_object_set_new (console, "host", json_string (op->proxyclient));
    }
}

static void
s_op_done (void *actor, void *job)
{
    self_t *self = (self_t *) actor;
    s_op_t *op = (s_op_t *) job;
    if (zv_workers_cancelled (self->workers)) {
        s_op_destroy (&op);
        return;
    }
    s_op_report (self, op);
}

//  Every image is in the cache: run the calls, on a worker unless the
//  hypervisor answers at once.
static void
s_op_run (self_t *self, s_op_t *op)
{
    if (op->status != ZV_OK) {
        s_op_report (self, op);
        return;
    }
    if (op->real)
        zv_workers_submit (self->workers, s_op_work, s_op_done, op);
    else {
        s_op_work (op);
        s_op_report (self, op);
    }
}

static void
s_op_fetched (void *actor, void *ctx, zv_status_t status, const char *path, const char *errtext)
{
    (void) path;
    self_t *self = (self_t *) actor;
    s_op_t *op = (s_op_t *) ctx;
    if (status != ZV_OK && op->status == ZV_OK) {
        op->status = status;
        snprintf (op->errbuf, sizeof op->errbuf, "%s", errtext ? errtext : "image fetch failed");
    }
    if (--op->fetching == 0)
        s_op_run (self, op);
}

//  The TCP port of an instance's serial console: the one it had while this
//  compute runs, else the lowest port of [serial_console] port_range that
//  no other domain of this host was given and that can be bound now (a
//  running QEMU holds its own).  0 when the range is exhausted (pty then).
static int
s_serial_port (self_t *self, const char *uuid)
{
    json_t *had = json_object_get (self->serial_ports, uuid);
    if (had)
        return (int) json_integer_value (had);
    int low = 0, high = 0;
    if (sscanf (self->cfg.serial_port_range, "%d:%d", &low, &high) != 2 || low <= 0 || high < low || high > 65535)
        return 0;
    json_t *taken = json_object ();
    const char *key;
    json_t *value;
    char port_text [16];
    json_object_foreach (self->serial_ports, key, value) {
        snprintf (port_text, sizeof port_text, "%lld", (long long) json_integer_value (value));
        json_object_set_new (taken, port_text, json_true ());
    }
    int found = 0;
    for (int port = low; port <= high && !found; port++) {
        snprintf (port_text, sizeof port_text, "%d", port);
        if (json_object_get (taken, port_text))
            continue;
        struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
        if (inet_pton (AF_INET, self->cfg.vnc_server_listen, &address.sin_addr) != 1)
            address.sin_addr.s_addr = htonl (INADDR_ANY);
        int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && bind (fd, (struct sockaddr *) &address, sizeof address) == 0)
            found = port;
        if (fd >= 0)
            close (fd);
    }
    json_decref (taken);
    if (found)
        json_object_set_new (self->serial_ports, uuid, json_integer (found));
    return found;
}

//  Fill an op's paths, fetch the images it needs, then run it.
static void
s_op_start (self_t *self, s_op_t *op)
{
    op->shutdown_timeout_s = self->cfg.shutdown_timeout_s;
    op->soft_reboot_s = self->cfg.wait_soft_reboot_seconds;
    op->agent_timeout_s = self->cfg.agent_timeout_s;
    snprintf (op->vnc_listen, sizeof op->vnc_listen, "%s", self->cfg.vnc_server_listen);
    snprintf (op->network, sizeof op->network, "%s", self->cfg.network);
    s_instance_dir (self, op->uuid, op->dir, sizeof op->dir);
    if (!s_virt_ready (self)) {
        op->status = ZV_EUNAVAILABLE;
        snprintf (op->errbuf, sizeof op->errbuf, "%s", *self->degraded ? self->degraded : "hypervisor unreachable");
        s_op_report (self, op);
        return;
    }
    op->driver = self->driver;
    op->virt = self->driver->ref (self->virt);
    op->real = s_real (self);
    if (!op->real) {
        s_op_run (self, op);
        return;
    }
    //  The domain's files.
    const char *image_id = s_str (json_object_get (op->instance, "image"), "id");
    snprintf (op->disk, sizeof op->disk, "%s/disk", op->dir);
    snprintf (op->console_log, sizeof op->console_log, "%s/console.log", op->dir);
    s_image_files (op, image_id, self->cache_path, op->base, sizeof op->base,
                   op->kernel, op->ramdisk, op->cmdline, sizeof op->kernel);
    const unsigned char *u = (const unsigned char *) op->uuid;
    snprintf (op->mac, sizeof op->mac, "52:54:00:%c%c:%c%c:%c%c", u [0], u [1], u [2], u [3], u [4], u [5]);
    snprintf (op->proxyclient, sizeof op->proxyclient, "%s", *self->cfg.vnc_proxyclient_address
              ? self->cfg.vnc_proxyclient_address : self->cfg.vnc_server_listen);
    if (op->action->defines && *self->cfg.vnc_server_listen) {
        snprintf (op->serial_host, sizeof op->serial_host, "%s", self->cfg.vnc_server_listen);
        op->serial_port = s_serial_port (self, op->uuid);
    }
    char disk_local [1300], disk_swap [1300];
    snprintf (disk_local, sizeof disk_local, "%s/disk.local", op->dir);
    snprintf (disk_swap, sizeof disk_swap, "%s/disk.swap", op->dir);
    if (access (disk_local, F_OK) == 0)
        snprintf (op->disk_local, sizeof op->disk_local, "%s", disk_local);
    if (access (disk_swap, F_OK) == 0)
        snprintf (op->disk_swap, sizeof op->disk_swap, "%s", disk_swap);
    json_t *wanted = json_array ();
    if (op->action->needs_images) {
        const json_t *properties = json_object_get (json_object_get (op->images, image_id ? image_id : ""),
                                                    "properties");
        json_array_append_new (wanted, json_string (image_id ? image_id : ""));
        if (*op->kernel)
            json_array_append_new (wanted, json_string (s_str (properties, "kernel_id")));
        if (*op->ramdisk)
            json_array_append_new (wanted, json_string (s_str (properties, "ramdisk_id")));
    }
    if (op->action->rescue_images) {
        s_image_files (op, op->rescue_image, self->cache_path, op->rescue_base, sizeof op->rescue_base,
                       op->rescue_kernel, op->rescue_ramdisk, op->rescue_cmdline, sizeof op->rescue_kernel);
        const json_t *properties = json_object_get (json_object_get (op->images, op->rescue_image), "properties");
        json_array_append_new (wanted, json_string (op->rescue_image));
        if (*op->rescue_kernel)
            json_array_append_new (wanted, json_string (s_str (properties, "kernel_id")));
        if (*op->rescue_ramdisk)
            json_array_append_new (wanted, json_string (s_str (properties, "ramdisk_id")));
    }
    size_t index;
    json_t *id;
    json_array_foreach (wanted, index, id) {
        if (!json_object_get (op->images, json_string_value (id))) {
            op->status = ZV_ENOTFOUND;
            snprintf (op->errbuf, sizeof op->errbuf, "Image %s could not be found.", json_string_value (id));
        }
    }
    op->fetching = 1;                   //  held until every fetch is asked
    if (op->status == ZV_OK)
        json_array_foreach (wanted, index, id) {
            op->fetching++;
            zv_imagecache_fetch (self->cache, json_object_get (op->images, json_string_value (id)), op->rq,
                                 s_op_fetched, op);
        }
    json_decref (wanted);
    s_op_fetched (self, op, ZV_OK, NULL, NULL);
}

//  ---------------------------------------------------------------------
//  Build

static const char *s_build_steps [] = { "scheduling", "networking", "block_device_mapping", "spawning" };
#define S_BUILD_STEPS (sizeof (s_build_steps) / sizeof (s_build_steps [0]))

static void s_build_step (self_t *self, s_op_t *op);

static void
s_build_final_done (void *actor, void *ctx, zv_msg_t *reply)
{
    self_t *self = (self_t *) actor;
    s_op_t *op = (s_op_t *) ctx;
    if (zv_msg_status (reply) != ZV_OK)
        //  Most often a delete that came in meanwhile: its terminate
        //  destroys the domain.  Otherwise the next sync reconciles.
        zv_warning (self->name, op->rq, "instance %s: final update refused: %s", op->uuid,
                    zv_msg_error_text (reply));
    else
        zv_info (self->name, op->rq, "instance %s is active", op->uuid);
    s_op_destroy (&op);
}

static void
s_build_report (self_t *self, s_op_t *op)
{
    char now [32];
    json_t *changes;
    if (op->status == ZV_OK) {
        changes = json_pack ("{s:s, s:n, s:s, s:s}", "vm_state", "active", "task_state",
                             "power_state", zv_power_state_name (op->power),
                             "launched_at", zv_iso8601 (zv_now_ms (), now));
        if (op->real)
            json_object_set (changes, "console", op->consoles ? op->consoles : json_null ());
    }
    else {
        zv_warning (self->name, op->rq, "instance %s: spawn failed: %s", op->uuid, op->errbuf);
        //  What was made for this instance goes; shared things stay.
        if (op->virt) {
            char errbuf [512];
            op->driver->destroy (op->virt, op->uuid, errbuf, sizeof errbuf);
        }
        s_remove_instance_dir (self, op->uuid);
        changes = json_pack ("{s:s, s:n, s:s, s:{s:s, s:i, s:s}}", "vm_state", "error",
                             "task_state", "power_state", "nostate",
                             "fault", "message", op->errbuf, "code", zv_status_http (op->status),
                             "created", zv_iso8601 (zv_now_ms (), now));
    }
    zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
    zv_msg_set_rq (msg, op->rq);
    //  A failed build is the conductor's to reschedule (build_failed).
    json_t *body = json_pack ("{s:s, s:[s], s:o, s:s, s:s, s:b, s:b}", "uuid", op->uuid,
                              "expected_task_state", "spawning", "changes", changes,
                              "action_request_id", op->rq,
                              "action_result", op->status == ZV_OK ? "Success" : "Error",
                              "release_claim", op->status != ZV_OK, "build_failed", op->status != ZV_OK);
    if (op->status != ZV_OK)
        json_object_set_new (body, "action_message", json_string (op->errbuf));
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_build_final_done, op, s_op_free);
}

static void
s_build_step_done (void *actor, void *ctx, zv_msg_t *reply)
{
    self_t *self = (self_t *) actor;
    s_op_t *op = (s_op_t *) ctx;
    if (zv_msg_status (reply) != ZV_OK) {
        zv_warning (self->name, op->rq, "instance %s: build stopped at %s: %s", op->uuid,
                    s_build_steps [op->step], zv_msg_error_text (reply));
        s_op_destroy (&op);
        return;
    }
    op->step++;
    if ((size_t) op->step + 1 < S_BUILD_STEPS)
        s_build_step (self, op);
    else
        s_op_start (self, op);
}

//  Move the instance from step to step + 1 (compare-and-swap).
static void
s_build_step (self_t *self, s_op_t *op)
{
    zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
    zv_msg_set_rq (msg, op->rq);
    json_t *body = json_pack ("{s:s, s:[s], s:{s:s}}", "uuid", op->uuid,
                              "expected_task_state", s_build_steps [op->step],
                              "changes", "task_state", s_build_steps [op->step + 1]);
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_build_step_done, op, s_op_free);
}

//  An op from a message: the instance record, the images, the request id.
static s_op_t *
s_op_new (self_t *self, zv_msg_t *msg, const s_action_t *action)
{
    json_t *instance = json_object_get (zv_msg_body (msg), "instance");
    const char *uuid = s_str (instance, "uuid");
    if (!uuid || !zv_uuid_valid (uuid)) {
        zv_warning (self->name, zv_msg_rq (msg), "%s without a valid instance uuid", zv_msg_type (msg));
        return NULL;
    }
    s_op_t *op = (s_op_t *) zmalloc (sizeof (s_op_t));
    op->action = action;
    op->driver = self->driver;
    op->instance = json_incref (instance);
    json_t *images = json_object_get (zv_msg_body (msg), "images");
    op->images = json_is_object (images) ? json_incref (images) : json_object ();
    snprintf (op->uuid, sizeof op->uuid, "%s", uuid);
    const char *rq = zv_msg_get_str (msg, "action_request_id");
    snprintf (op->rq, sizeof op->rq, "%s", rq ? rq : zv_msg_rq (msg) ? zv_msg_rq (msg) : "");
    return op;
}

static void
s_build_instance (self_t *self, zv_msg_t *msg)
{
    s_op_t *op = s_op_new (self, msg, &s_actions [0]);
    if (!op)
        return;
    zv_debug (self->name, op->rq, "building %s", op->uuid);
    s_build_step (self, op);
}

//  ---------------------------------------------------------------------
//  User actions

static void
s_action_done (void *actor, void *ctx, zv_msg_t *reply)
{
    self_t *self = (self_t *) actor;
    s_op_t *op = (s_op_t *) ctx;
    if (zv_msg_status (reply) != ZV_OK)
        zv_warning (self->name, op->rq, "instance %s: %s report refused: %s", op->uuid, op->action->action,
                    zv_msg_error_text (reply));
    s_op_destroy (&op);
}

//  The end of an op, to the conductor: the new states on success; on
//  failure the task ends, the vm_state stays (the instance is as it was),
//  the power state is what the hypervisor says, and the fault is the real
//  reason.  A hard reboot that fails leaves ERROR, as Nova's does.
static void
s_op_report (self_t *self, s_op_t *op)
{
    if (op->action == &s_actions [0]) {
        s_build_report (self, op);
        return;
    }
    char now [32];
    json_t *changes = json_pack ("{s:n}", "task_state");
    if (op->virt)
        json_object_set_new (changes, "power_state", json_string (zv_power_state_name (op->power)));
    if (op->virt && op->real)
        json_object_set (changes, "console", op->consoles ? op->consoles : json_null ());
    if (op->status == ZV_OK) {
        if (op->action->vm_state)
            json_object_set_new (changes, "vm_state", json_string (op->action->vm_state));
        zv_info (self->name, op->rq, "instance %s: %s done%s%s", op->uuid, op->action->action,
                 *op->note ? ": " : "", op->note);
    }
    else {
        zv_warning (self->name, op->rq, "instance %s: %s failed: %s", op->uuid, op->action->action, op->errbuf);
        json_object_set_new (changes, "fault", json_pack ("{s:s, s:i, s:s}", "message", op->errbuf,
                             "code", zv_status_http (op->status), "created", zv_iso8601 (zv_now_ms (), now)));
        if (streq (op->action->action, "reboot_hard") && op->status != ZV_EUNSUPPORTED)
            json_object_set_new (changes, "vm_state", json_string ("error"));
    }
    zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
    zv_msg_set_rq (msg, op->rq);
    json_t *body = json_pack ("{s:s, s:[s], s:o, s:s, s:s}", "uuid", op->uuid,
                              "expected_task_state", op->action->task_state, "changes", changes,
                              "action_request_id", op->rq,
                              "action_result", op->status == ZV_OK ? "Success" : "Error");
    if (op->status != ZV_OK || *op->note)
        json_object_set_new (body, "action_message", json_string (op->status != ZV_OK ? op->errbuf : op->note));
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_action_done, op, s_op_free);
}

static void
s_instance_action (self_t *self, zv_msg_t *msg)
{
    const char *name = zv_msg_get_str (msg, "action");
    const s_action_t *action = s_action_find (name);
    if (!action || action == &s_actions [0]) {
        zv_warning (self->name, zv_msg_rq (msg), "action '%s' is not run by compute", name ? name : "?");
        return;
    }
    s_op_t *op = s_op_new (self, msg, action);
    if (!op)
        return;
    const char *rescue = zv_msg_get_str (msg, "rescue_image");
    snprintf (op->rescue_image, sizeof op->rescue_image, "%s", rescue ? rescue : "");
    const char *user = zv_msg_get_str (msg, "user");
    const char *password = zv_msg_get_str (msg, "password");
    snprintf (op->user, sizeof op->user, "%s", user ? user : "root");
    snprintf (op->password, sizeof op->password, "%s", password ? password : "");
    zv_info (self->name, op->rq, "instance %s: %s", op->uuid, name);
    s_op_start (self, op);
}

//  ---------------------------------------------------------------------
//  Terminate

static void
s_terminate_done (void *actor, void *ctx, zv_msg_t *reply)
{
    self_t *self = (self_t *) actor;
    char *uuid = (char *) ctx;
    if (zv_msg_status (reply) != ZV_OK)
        zv_warning (self->name, zv_msg_rq (reply), "instance %s: delete report refused: %s", uuid,
                    zv_msg_error_text (reply));
    free (uuid);
}

static void
s_terminate (self_t *self, const char *uuid, const char *action_rq)
{
    char errbuf [1024] = "";
    zv_status_t status = ZV_EUNAVAILABLE;
    if (s_virt_ready (self))
        status = self->driver->destroy (self->virt, uuid, errbuf, sizeof errbuf);
    else
        snprintf (errbuf, sizeof errbuf, "%s", *self->degraded ? self->degraded : "hypervisor unreachable");
    zv_msg_t *msg;
    json_t *body;
    if (status == ZV_OK) {
        s_remove_instance_dir (self, uuid);
        json_object_del (self->serial_ports, uuid);
    }
    if (status == ZV_OK) {
        msg = zv_msg_new ("conductor.instance_destroyed");
        body = json_pack ("{s:s, s:s, s:s}", "uuid", uuid, "host", self->cfg.host,
                          "action_request_id", action_rq ? action_rq : "");
    }
    else {
        //  Nova puts an instance whose delete failed into ERROR; deleting
        //  it again retries.
        zv_warning (self->name, action_rq, "instance %s: destroy failed: %s", uuid, errbuf);
        char now [32];
        msg = zv_msg_new ("conductor.instance_update");
        body = json_pack ("{s:s, s:[s], s:{s:s, s:n, s:{s:s, s:i, s:s}}, s:s, s:s, s:s}",
                          "uuid", uuid, "expected_task_state", "deleting",
                          "changes", "vm_state", "error", "task_state",
                          "fault", "message", errbuf, "code", zv_status_http (status),
                          "created", zv_iso8601 (zv_now_ms (), now),
                          "action_request_id", action_rq ? action_rq : "",
                          "action_result", "Error", "action_message", errbuf);
    }
    zv_msg_set_rq (msg, action_rq);
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_terminate_done, strdup (uuid), free);
}

//  ---------------------------------------------------------------------
//  The guest agent: what a guest says about itself, kept on its record

typedef struct {
    const zv_virt_driver_t *driver;
    zv_virt_t *virt;
    char uuid [ZV_UUID_LEN + 1];
    int timeout_s;
    int attempt;
    json_t *guest;
    zv_status_t status;
    char errbuf [512];
} s_guest_t;

static void s_guest_query (self_t *self, const char *uuid, int attempt);

static void
s_guest_work (void *job)
{
    s_guest_t *guest = (s_guest_t *) job;
    guest->guest = guest->driver->guest_info (guest->virt, guest->uuid, guest->timeout_s, &guest->status,
                                             guest->errbuf, sizeof guest->errbuf);
}

static void
s_guest_noop (void *actor, void *ctx, zv_msg_t *reply)
{
    (void) actor;
    (void) ctx;
    (void) reply;
}

static void
s_guest_done (void *actor, void *job)
{
    self_t *self = (self_t *) actor;
    s_guest_t *guest = (s_guest_t *) job;
    bool cancelled = zv_workers_cancelled (self->workers);
    if (!cancelled && guest->guest) {
        char now [32];
        json_object_set_new (guest->guest, "updated_at", json_string (zv_iso8601 (zv_now_ms (), now)));
        zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
        json_t *body = json_pack ("{s:s, s:{s:O}}", "uuid", guest->uuid, "changes", "guest", guest->guest);
        zv_msg_set_body (msg, &body);
        zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_guest_noop, NULL, NULL);
    }
    else
    if (!cancelled)
        zv_debug (self->name, NULL, "instance %s: guest agent: %s", guest->uuid, guest->errbuf);
    //  A guest's agent answers before its network is configured: ask
    //  again a few times until it has an address beyond link-local.
    size_t routable = 0, index;
    json_t *address;
    json_array_foreach (json_object_get (guest->guest, "ip_addresses"), index, address) {
        const char *text = s_str (address, "address");
        if (text && strncmp (text, "fe80:", 5) != 0 && strncmp (text, "169.254.", 8) != 0)
            routable++;
    }
    if (!cancelled && guest->attempt + 1 < S_GUEST_RETRIES && routable == 0)
        json_object_set_new (self->guest_retries, guest->uuid, json_pack ("{s:i, s:I}",
            "attempt", guest->attempt + 1, "due", (json_int_t) (zv_mono_ms () + S_GUEST_RETRY_MS)));
    json_decref (guest->guest);
    guest->driver->close (&guest->virt);
    free (guest);
}

static void
s_guest_query (self_t *self, const char *uuid, int attempt)
{
    if (!s_virt_ready (self) || !s_real (self))
        return;
    s_guest_t *guest = (s_guest_t *) zmalloc (sizeof (s_guest_t));
    guest->driver = self->driver;
    guest->virt = self->driver->ref (self->virt);
    snprintf (guest->uuid, sizeof guest->uuid, "%s", uuid);
    guest->timeout_s = self->cfg.agent_timeout_s;
    guest->attempt = attempt;
    zv_workers_submit (self->workers, s_guest_work, s_guest_done, guest);
}

static void
s_guest_gone (self_t *self, const char *uuid)
{
    zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
    json_t *body = json_pack ("{s:s, s:{s:n}}", "uuid", uuid, "changes", "guest");
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_guest_noop, NULL, NULL);
}

//  ---------------------------------------------------------------------
//  Sync

static void
s_sync_done (void *actor, void *ctx, zv_msg_t *reply)
{
    (void) ctx;
    self_t *self = (self_t *) actor;
    if (zv_msg_status (reply) != ZV_OK) {
        zv_warning (self->name, NULL, "sync refused: %s", zv_msg_error_text (reply));
        return;
    }
    size_t index;
    json_t *item;
    json_array_foreach (json_object_get (zv_msg_body (reply), "terminate"), index, item)
        s_terminate (self, json_string_value (json_object_get (item, "uuid")),
                     json_string_value (json_object_get (item, "action_request_id")));
    json_array_foreach (json_object_get (zv_msg_body (reply), "orphans"), index, item) {
        char errbuf [512];
        zv_warning (self->name, NULL, "reaping domain %s of no live instance", json_string_value (item));
        if (self->virt && self->driver->destroy (self->virt, json_string_value (item), errbuf, sizeof errbuf) != ZV_OK)
            zv_warning (self->name, NULL, "cannot reap %s: %s", json_string_value (item), errbuf);
    }
}

static void
s_sync (self_t *self)
{
    if (!s_virt_ready (self))
        return;
    char errbuf [512];
    json_t *domains = self->driver->list (self->virt, errbuf, sizeof errbuf);
    if (!domains) {
        zv_warning (self->name, NULL, "cannot list domains: %s", errbuf);
        return;
    }
    //  Guests that run are asked what they are (a restart of this host
    //  missed their agents' connect events).
    size_t index;
    json_t *domain;
    if (!self->synced_virt && s_real (self))
        json_array_foreach (domains, index, domain)
            if (streq (s_str (domain, "power_state"), "running"))
                s_guest_query (self, s_str (domain, "uuid"), S_GUEST_RETRIES - 1);
    self->synced_virt = true;
    zv_msg_t *msg = zv_msg_new ("conductor.compute_sync");
    json_t *body = json_pack ("{s:s, s:o, s:I}", "host", self->cfg.host, "domains", domains,
                              "started_ms", (json_int_t) self->started_ms);
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_sync_done, NULL, NULL);
}

//  The domains events named, in one partial sync.
static int
s_event_flush (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = (self_t *) arg;
    self->event_timer = -1;
    if (!s_virt_ready (self) || json_object_size (self->event_uuids) == 0)
        return 0;
    json_t *domains = json_array ();
    const char *uuid;
    json_t *value;
    json_object_foreach (self->event_uuids, uuid, value)
        json_array_append_new (domains, json_pack ("{s:s, s:s}", "uuid", uuid, "power_state",
            zv_power_state_name (self->driver->power_state (self->virt, uuid))));
    json_object_clear (self->event_uuids);
    zv_msg_t *msg = zv_msg_new ("conductor.compute_sync");
    json_t *body = json_pack ("{s:s, s:o, s:b, s:I}", "host", self->cfg.host, "domains", domains,
                              "partial", 1, "started_ms", (json_int_t) self->started_ms);
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_sync_done, NULL, NULL);
    return 0;
}

static int
s_event_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) item;
    self_t *self = (self_t *) arg;
    zv_virt_event_t event;
    bool closed = false;
    for (int count = 0; self->virt && count < 1024 && self->driver->event_next (self->virt, &event); count++) {
        switch (event.kind) {
            case ZV_VIRT_EVENT_LIFECYCLE:
                zv_debug (self->name, NULL, "domain %s: %s", event.uuid, event.detail);
                json_object_set_new (self->event_uuids, event.uuid, json_true ());
                break;
            case ZV_VIRT_EVENT_AGENT_CONNECTED:
                zv_debug (self->name, NULL, "domain %s: guest agent connected", event.uuid);
                s_guest_query (self, event.uuid, 0);
                break;
            case ZV_VIRT_EVENT_AGENT_DISCONNECTED:
                zv_debug (self->name, NULL, "domain %s: guest agent disconnected", event.uuid);
                s_guest_gone (self, event.uuid);
                break;
            case ZV_VIRT_EVENT_CONNECTION_CLOSED:
                closed = true;
                break;
        }
    }
    if (closed) {
        self->virt_lost = true;
        snprintf (self->degraded, sizeof self->degraded, "hypervisor %s closed the connection",
                  self->cfg.connection_uri);
        zv_warning (self->name, NULL, "%s", self->degraded);
        s_virt_drop (self);
        zv_link_heartbeat (self->link);
        return 0;
    }
    if (json_object_size (self->event_uuids) && self->event_timer < 0)
        self->event_timer = zloop_timer (loop, S_EVENT_DELAY_MS, 1, s_event_flush, self);
    return 0;
}

static void
s_on_epoch (void *actor, const char *epoch)
{
    (void) epoch;
    s_sync ((self_t *) actor);
}

static int
s_sync_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_sync ((self_t *) arg);
    return 0;
}

//  Every 500 ms: agents due to be asked again; and while the hypervisor
//  is away, another try at its backoff (the heartbeat reports degraded
//  meanwhile).
static int
s_tick_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = (self_t *) arg;
    const char *uuid;
    json_t *retry, *due = json_array ();
    json_object_foreach (self->guest_retries, uuid, retry)
        if (json_integer_value (json_object_get (retry, "due")) <= zv_mono_ms ())
            json_array_append_new (due, json_pack ("{s:s, s:O}", "uuid", uuid, "attempt",
                                                   json_object_get (retry, "attempt")));
    size_t index;
    json_array_foreach (due, index, retry) {
        json_object_del (self->guest_retries, s_str (retry, "uuid"));
        s_guest_query (self, s_str (retry, "uuid"), (int) json_integer_value (json_object_get (retry, "attempt")));
    }
    json_decref (due);
    if (!self->virt || self->virt_lost) {
        bool was = *self->degraded != 0;
        if (s_virt_ready (self) && was)
            zv_link_heartbeat (self->link);
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Consoles: what only this host can answer

static void
s_answer (self_t *self, zv_msg_t **reply_p)
{
    zv_msg_set_src (*reply_p, self->name);
    if (zv_msg_send (reply_p, zv_link_socket (self->link)) != 0)
        zv_msg_destroy (reply_p);
}

//  Text that travels as a msgpack string: valid UTF-8 (no overlong
//  forms, no surrogates) without NUL; any other byte of the guest's output
//  becomes '?'.
static void
s_utf8_clean (char *text, size_t len)
{
    size_t at = 0;
    while (at < len) {
        unsigned char c = (unsigned char) text [at];
        size_t need;
        uint32_t point, least;
        if (c >= 0x01 && c < 0x80) {
            at++;
            continue;
        }
        if ((c & 0xE0) == 0xC0)      { need = 1; point = c & 0x1F; least = 0x80; }
        else if ((c & 0xF0) == 0xE0) { need = 2; point = c & 0x0F; least = 0x800; }
        else if ((c & 0xF8) == 0xF0) { need = 3; point = c & 0x07; least = 0x10000; }
        else {
            text [at++] = '?';
            continue;
        }
        bool ok = at + need < len;
        for (size_t k = 1; ok && k <= need; k++) {
            unsigned char next = (unsigned char) text [at + k];
            ok = (next & 0xC0) == 0x80;
            point = (point << 6) | (next & 0x3F);
        }
        if (ok && (point < least || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF)))
            ok = false;
        if (!ok) {
            text [at++] = '?';
            continue;
        }
        at += need + 1;
    }
}

//  compute.console_log: the last lines of <instance dir>/console.log.
#define S_LOG_MAX (4 * 1024 * 1024)

static void
s_console_log (self_t *self, zv_msg_t *msg)
{
    const char *uuid = zv_msg_get_str (msg, "uuid");
    int64_t lines = zv_msg_get_int (msg, "lines", 50);
    char path [1300], dir [1200];
    snprintf (path, sizeof path, "%s/console.log", s_instance_dir (self, uuid, dir, sizeof dir));
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat (fd, &info) != 0) {
        zv_msg_t *error = zv_msg_error (msg, ZV_ECONFLICT, "Guest of instance %s has no console log on host %s "
                                        "(it needs a hypervisor with consoles)", uuid, self->cfg.host);
        if (fd >= 0)
            close (fd);
        s_answer (self, &error);
        return;
    }
    //  Back from the end until lines + 1 newlines are seen (the last line
    //  may end in one) or the cap.
    off_t size = info.st_size, from = size;
    char *text = NULL;
    size_t got = 0;
    int64_t newlines = 0;
    while (from > 0 && newlines <= lines && got < S_LOG_MAX) {
        size_t step = from > 65536 ? 65536 : (size_t) from;
        from -= (off_t) step;
        char *bigger = (char *) malloc (got + step + 1);
        ssize_t read_now = pread (fd, bigger, step, from);
        if (read_now != (ssize_t) step) {
            free (bigger);
            break;
        }
        memcpy (bigger + step, text ? text : "", got);
        free (text);
        text = bigger;
        got += step;
        for (size_t k = 0; k < step; k++)
            newlines += text [k] == '\n';
    }
    close (fd);
    size_t start = 0;
    //  Lines to drop from the front: a text ending in a newline holds as
    //  many lines as newlines, one without it one more.
    int64_t skip = newlines - lines + (got && text [got - 1] == '\n' ? 0 : 1);
    for (size_t k = 0; k < got && skip > 0; k++)
        if (text [k] == '\n') {
            skip--;
            start = k + 1;
        }
    if (got - start > S_LOG_MAX)
        start = got - S_LOG_MAX;
    if (text)
        s_utf8_clean (text + start, got - start);
    zv_msg_t *reply = zv_msg_reply (msg);
    json_t *body = json_pack ("{s:s%}", "output", text ? text + start : "", got - start);
    zv_msg_set_body (reply, &body);
    free (text);
    s_answer (self, &reply);
}

//  compute.screenshot: the guest's screen as PNG, taken on a worker.
typedef struct {
    const zv_virt_driver_t *driver;
    zv_virt_t *virt;
    zv_msg_t *request;
    char uuid [ZV_UUID_LEN + 1];
    unsigned char *png;
    size_t size;
    zv_status_t status;
    char errbuf [512];
} s_shot_t;

static void
s_shot_work (void *job)
{
    s_shot_t *shot = (s_shot_t *) job;
    if (!shot->driver->screenshot) {
        shot->status = ZV_EUNSUPPORTED;
        snprintf (shot->errbuf, sizeof shot->errbuf, "screenshot is unsupported by driver %s", shot->driver->name);
        return;
    }
    shot->status = shot->driver->screenshot (shot->virt, shot->uuid, &shot->png, &shot->size,
                                             shot->errbuf, sizeof shot->errbuf);
}

static void
s_shot_done (void *actor, void *job)
{
    self_t *self = (self_t *) actor;
    s_shot_t *shot = (s_shot_t *) job;
    if (!zv_workers_cancelled (self->workers)) {
        zv_msg_t *reply;
        if (shot->status == ZV_OK) {
            reply = zv_msg_reply (shot->request);
            json_t *body = json_pack ("{s:s, s:I}", "format", "png", "size", (json_int_t) shot->size);
            zv_msg_set_body (reply, &body);
            zv_msg_set_payload (reply, shot->png, shot->size);
        }
        else
            reply = zv_msg_error (shot->request, shot->status, "%s", shot->errbuf);
        s_answer (self, &reply);
    }
    free (shot->png);
    zv_msg_destroy (&shot->request);
    shot->driver->close (&shot->virt);
    free (shot);
}

static void
s_screenshot (self_t *self, zv_msg_t *msg)
{
    if (!s_virt_ready (self)) {
        zv_msg_t *error = zv_msg_error (msg, ZV_EUNAVAILABLE, "%s", *self->degraded ? self->degraded
                                                                    : "hypervisor unreachable");
        s_answer (self, &error);
        return;
    }
    s_shot_t *shot = (s_shot_t *) zmalloc (sizeof (s_shot_t));
    shot->driver = self->driver;
    shot->virt = self->driver->ref (self->virt);
    shot->request = zv_msg_request_stub (msg);
    snprintf (shot->uuid, sizeof shot->uuid, "%s", zv_msg_get_str (msg, "uuid"));
    if (s_real (self))
        zv_workers_submit (self->workers, s_shot_work, s_shot_done, shot);
    else {
        s_shot_work (shot);
        s_shot_done (self, shot);
    }
}

//  ---------------------------------------------------------------------
//  Messages from the conductor

static void
s_serve (void *actor, zv_msg_t *msg)
{
    self_t *self = (self_t *) actor;
    const char *type = zv_msg_type (msg);
    if (streq (type, "compute.build_instance"))
        s_build_instance (self, msg);
    else
    if (streq (type, "compute.instance_action"))
        s_instance_action (self, msg);
    else
    if (streq (type, "compute.terminate_instance"))
        s_terminate (self, zv_msg_get_str (msg, "uuid"), zv_msg_get_str (msg, "action_request_id"));
    else
    if (streq (type, "compute.sync_now"))
        s_sync (self);
    else
    if (streq (type, "compute.console_log"))
        s_console_log (self, msg);
    else
    if (streq (type, "compute.screenshot"))
        s_screenshot (self, msg);
    else
        zv_warning (self->name, zv_msg_rq (msg), "message type %s is not served by compute", type);
}

void
zv_compute_actor (zsock_t *pipe, void *args)
{
    const zv_actor_args_t *actor_args = (const zv_actor_args_t *) args;
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->cfg = actor_args->config;
    self->pipe = pipe;
    self->driver = &zv_virt_libvirt;
    self->started_ms = zv_now_ms ();
    self->event_timer = -1;
    self->event_uuids = json_object ();
    self->guest_retries = json_object ();
    self->serial_ports = json_object ();
    snprintf (self->name, sizeof self->name, ACTOR_PREFIX ".%s", self->cfg.host);
    if (*self->cfg.instances_path)
        snprintf (self->instances_path, sizeof self->instances_path, "%s", self->cfg.instances_path);
    else
        snprintf (self->instances_path, sizeof self->instances_path, "%s/instances", self->cfg.state_path);
    if (*self->cfg.image_cache_path)
        snprintf (self->cache_path, sizeof self->cache_path, "%s", self->cfg.image_cache_path);
    else
        snprintf (self->cache_path, sizeof self->cache_path, "%s/_base", self->instances_path);
    self->custom = s_custom_resources (self);
    self->loop = zloop_new ();
    zloop_set_nonstop (self->loop, true);
    self->workers = zv_workers_new (self->loop, self, self->cfg.workers);
    if (!s_virt_ready (self))
        zv_warning (self->name, NULL, "starting without a hypervisor connection; retrying");
    self->link = zv_link_new ("compute", actor_args, self->loop, self, s_serve, s_on_epoch, s_node_report);
    if (self->link)
        self->cache = zv_imagecache_new (self->cache_path, self->link, self->workers, self,
                                         S_CHUNK_SIZE, S_CHUNK_WINDOW);
    if (!self->link || !self->workers || !self->cache) {
        zv_actor_start_failed (pipe);
    }
    else {
        zloop_reader (self->loop, pipe, zv_actor_pipe_readable, self);
        zloop_timer (self->loop, (size_t) self->cfg.sync_power_state_interval_s * 1000, 0, s_sync_timer, self);
        zloop_timer (self->loop, 500, 0, s_tick_timer, self);
        zv_link_heartbeat (self->link);
        zv_info (self->name, NULL, "serving %s (instances in %s)", self->cfg.connection_uri, self->instances_path);
        zsock_signal (pipe, 0);
        zloop_start (self->loop);
    }
    //  The cache first: its finishing jobs run on the workers.
    zv_imagecache_destroy (&self->cache);
    zv_workers_destroy (&self->workers);
    zv_link_destroy (&self->link);
    s_virt_drop (self);
    zloop_destroy (&self->loop);
    json_decref (self->custom);
    json_decref (self->event_uuids);
    json_decref (self->guest_retries);
    json_decref (self->serial_ports);
    free (self);
}
