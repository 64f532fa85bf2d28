/*  compute.c: one hypervisor host.  Builds and destroys domains through the
    driver table and reports every step to the conductor; never opens the
    store.

    One thread, one zloop, one link (DEALER "compute.<host>") to the
    conductor.  A build walks Nova's task states with a compare-and-swap at
    each step (scheduling -> networking -> block_device_mapping ->
    spawning), each an rpc whose continuation takes the next step, so the
    loop never blocks on the conductor and a delete that lands mid-build
    makes the next step's CAS fail and the build stop.  Driver calls are
    synchronous on this thread: the test driver answers in microseconds;
    real guests' long operations move to a worker without changing this
    protocol.

    Sync: at start and whenever the conductor's epoch changes (it
    restarted), and every sync_power_state_interval, the host sends the list
    of its domains; the conductor reconciles and answers which deletes to
    finish and which orphan domains to reap.                                */

#include "zv_actors.h"
#include "zv_link.h"
#include "zv_virt.h"
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <dirent.h>
#include <errno.h>
#include <unistd.h>

#define ACTOR_PREFIX "compute"

typedef struct {
    zv_config_t cfg;
    char name [300];                //  "compute.<host>", for logs
    zsock_t *pipe;
    zloop_t *loop;
    zv_link_t *link;
    const zv_virt_driver_t *driver;
    zv_virt_t *virt;
    json_t *node;                   //  cached host facts
    json_t *custom;                 //  custom resource classes: {CUSTOM_X: total}
    int64_t started_ms;
    int64_t reconnect_at;           //  mono ms of the next reconnect try
    int reconnect_delay_ms;
} self_t;

//  One build in progress.
typedef struct {
    json_t *instance;
    char uuid [ZV_UUID_LEN + 1];
    char rq [72];
    int step;
} s_build_t;

static const char *s_build_steps [] = { "scheduling", "networking", "block_device_mapping", "spawning" };
#define S_BUILD_STEPS (sizeof (s_build_steps) / sizeof (s_build_steps [0]))

static void
s_build_destroy (s_build_t **build_p)
{
    if (*build_p) {
        json_decref ((*build_p)->instance);
        free (*build_p);
        *build_p = NULL;
    }
}

static void
s_build_free (void *ctx)
{
    s_build_t *build = (s_build_t *) ctx;
    s_build_destroy (&build);
}

//  ---------------------------------------------------------------------
//  Hypervisor connection, with reconnect backoff

static bool
s_virt_ready (self_t *self)
{
    if (self->virt && self->driver->alive (self->virt))
        return true;
    if (zv_mono_ms () < self->reconnect_at)
        return false;
    self->driver->close (&self->virt);
    char errbuf [512];
    self->virt = self->driver->open (self->cfg.connection_uri, self->cfg.virt_type, errbuf, sizeof errbuf);
    if (!self->virt) {
        self->reconnect_delay_ms = self->reconnect_delay_ms ? self->reconnect_delay_ms * 2 : 500;
        if (self->reconnect_delay_ms > 30000)
            self->reconnect_delay_ms = 30000;
        self->reconnect_at = zv_mono_ms () + self->reconnect_delay_ms;
        zv_warning (self->name, NULL, "hypervisor unreachable (retry in %d ms): %s",
                    self->reconnect_delay_ms, errbuf);
        return false;
    }
    self->reconnect_delay_ms = 0;
    zv_info (self->name, NULL, "connected to %s", self->cfg.connection_uri);
    return true;
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

//  Heartbeat payload: the host's inventory and how many zova domains run.
static json_t *
s_node_report (void *actor)
{
    self_t *self = (self_t *) actor;
    if (!s_virt_ready (self))
        return NULL;
    char errbuf [512];
    json_t *info = self->driver->node_info (self->virt, errbuf, sizeof errbuf);
    if (!info) {
        zv_warning (self->name, NULL, "node info: %s", errbuf);
        return NULL;
    }
    json_t *domains = self->driver->list (self->virt, errbuf, sizeof errbuf);
    int64_t local_gb = self->cfg.local_gb;
    if (!local_gb) {
        struct statvfs fs;
        const char *path = *self->cfg.instances_path ? self->cfg.instances_path : self->cfg.state_path;
        if (statvfs (path, &fs) == 0 || statvfs (".", &fs) == 0)
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
    return info;
}

//  ---------------------------------------------------------------------
//  Build

static void s_build_step (self_t *self, s_build_t *build);

static void
s_build_final_done (void *actor, void *ctx, zv_msg_t *reply)
{
    self_t *self = (self_t *) actor;
    s_build_t *build = (s_build_t *) ctx;
    if (zv_msg_status (reply) != ZV_OK)
        //  Most often a delete that came in meanwhile: its terminate
        //  destroys the domain.  Otherwise the next sync reconciles.
        zv_warning (self->name, build->rq, "instance %s: final update refused: %s", build->uuid,
                    zv_msg_error_text (reply));
    else
        zv_info (self->name, build->rq, "instance %s is active", build->uuid);
    s_build_destroy (&build);
}

static void
s_build_report (self_t *self, s_build_t *build, zv_status_t status, const char *error)
{
    char now [32];
    json_t *changes;
    if (status == ZV_OK)
        changes = json_pack ("{s:s, s:n, s:s, s:s}", "vm_state", "active", "task_state",
                             "power_state", "running", "launched_at", zv_iso8601 (zv_now_ms (), now));
    else
        changes = json_pack ("{s:s, s:n, s:s, s:{s:s, s:i, s:s}}", "vm_state", "error",
                             "task_state", "power_state", "nostate",
                             "fault", "message", error, "code", zv_status_http (status),
                             "created", zv_iso8601 (zv_now_ms (), now));
    zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
    zv_msg_set_rq (msg, build->rq);
    //  A failed build is the conductor's to reschedule (build_failed).
    json_t *body = json_pack ("{s:s, s:[s], s:o, s:s, s:s, s:b, s:b}", "uuid", build->uuid,
                              "expected_task_state", "spawning", "changes", changes,
                              "action_request_id", build->rq,
                              "action_result", status == ZV_OK ? "Success" : "Error",
                              "release_claim", status != ZV_OK, "build_failed", status != ZV_OK);
    if (status != ZV_OK)
        json_object_set_new (body, "action_message", json_string (error));
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_build_final_done, build, s_build_free);
}

//  <instances_path>/<uuid>: where an instance's files live on this host.
static const char *
s_instance_dir (self_t *self, const char *uuid, char *buf, size_t len)
{
    if (*self->cfg.instances_path)
        snprintf (buf, len, "%s/%s", self->cfg.instances_path, uuid);
    else
        snprintf (buf, len, "%s/instances/%s", self->cfg.state_path, uuid);
    return buf;
}

//  Remove an instance's directory: the files zova put there, then the
//  directory itself.  Flat by construction (no subdirectories).
static void
s_remove_instance_dir (self_t *self, const char *uuid)
{
    char dir [1400], path [1700];
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

static void
s_spawn (self_t *self, s_build_t *build)
{
    char errbuf [1024] = "";
    zv_status_t status;
    if (!s_virt_ready (self)) {
        snprintf (errbuf, sizeof errbuf, "hypervisor %s is not reachable", self->cfg.connection_uri);
        status = ZV_EUNAVAILABLE;
    }
    else
    {
        char dir [1400];
        status = self->driver->spawn (self->virt, build->instance,
                                      s_instance_dir (self, build->uuid, dir, sizeof dir), errbuf, sizeof errbuf);
    }
    if (status != ZV_OK) {
        zv_warning (self->name, build->rq, "instance %s: spawn failed: %s", build->uuid, errbuf);
        //  What was made for this instance goes; shared things stay.
        s_remove_instance_dir (self, build->uuid);
    }
    s_build_report (self, build, status, errbuf);
}

static void
s_build_step_done (void *actor, void *ctx, zv_msg_t *reply)
{
    self_t *self = (self_t *) actor;
    s_build_t *build = (s_build_t *) ctx;
    if (zv_msg_status (reply) != ZV_OK) {
        zv_warning (self->name, build->rq, "instance %s: build stopped at %s: %s", build->uuid,
                    s_build_steps [build->step], zv_msg_error_text (reply));
        s_build_destroy (&build);
        return;
    }
    build->step++;
    if ((size_t) build->step + 1 < S_BUILD_STEPS)
        s_build_step (self, build);
    else
        s_spawn (self, build);
}

//  Move the instance from step to step + 1 (compare-and-swap).
static void
s_build_step (self_t *self, s_build_t *build)
{
    zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
    zv_msg_set_rq (msg, build->rq);
    json_t *body = json_pack ("{s:s, s:[s], s:{s:s}}", "uuid", build->uuid,
                              "expected_task_state", s_build_steps [build->step],
                              "changes", "task_state", s_build_steps [build->step + 1]);
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_build_step_done, build, s_build_free);
}

static void
s_build_instance (self_t *self, zv_msg_t *msg)
{
    json_t *instance = json_object_get (zv_msg_body (msg), "instance");
    const char *uuid = json_string_value (json_object_get (instance, "uuid"));
    if (!uuid || !zv_uuid_valid (uuid)) {
        zv_warning (self->name, zv_msg_rq (msg), "build_instance without a valid instance uuid");
        return;
    }
    s_build_t *build = (s_build_t *) zmalloc (sizeof (s_build_t));
    build->instance = json_incref (instance);
    snprintf (build->uuid, sizeof build->uuid, "%s", uuid);
    snprintf (build->rq, sizeof build->rq, "%s", zv_msg_rq (msg) ? zv_msg_rq (msg) : "");
    zv_debug (self->name, build->rq, "building %s", uuid);
    s_build_step (self, build);
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
        snprintf (errbuf, sizeof errbuf, "hypervisor %s is not reachable", self->cfg.connection_uri);
    zv_msg_t *msg;
    json_t *body;
    if (status == ZV_OK)
        s_remove_instance_dir (self, uuid);
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
    zv_msg_t *msg = zv_msg_new ("conductor.compute_sync");
    json_t *body = json_pack ("{s:s, s:o, s:I}", "host", self->cfg.host, "domains", domains,
                              "started_ms", (json_int_t) self->started_ms);
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_sync_done, NULL, NULL);
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
    if (streq (type, "compute.terminate_instance"))
        s_terminate (self, zv_msg_get_str (msg, "uuid"), zv_msg_get_str (msg, "action_request_id"));
    else
    if (streq (type, "compute.sync_now"))
        s_sync (self);
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
    snprintf (self->name, sizeof self->name, ACTOR_PREFIX ".%s", self->cfg.host);
    self->custom = s_custom_resources (self);
    self->loop = zloop_new ();
    zloop_set_nonstop (self->loop, true);
    if (!s_virt_ready (self))
        zv_warning (self->name, NULL, "starting without a hypervisor connection; retrying");
    self->link = zv_link_new ("compute", actor_args, self->loop, self, s_serve, s_on_epoch, s_node_report);
    if (!self->link) {
        zv_actor_start_failed (pipe);
    }
    else {
        zloop_reader (self->loop, pipe, zv_actor_pipe_readable, self);
        zloop_timer (self->loop, (size_t) self->cfg.sync_power_state_interval_s * 1000, 0, s_sync_timer, self);
        zv_link_heartbeat (self->link);
        zv_info (self->name, NULL, "serving %s", self->cfg.connection_uri);
        zsock_signal (pipe, 0);
        zloop_start (self->loop);
    }
    zv_link_destroy (&self->link);
    zloop_destroy (&self->loop);
    self->driver->close (&self->virt);
    json_decref (self->node);
    json_decref (self->custom);
    free (self);
}
