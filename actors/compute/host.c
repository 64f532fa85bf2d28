/*  host.c: what a compute knows of its host: the hypervisor connection,
    the node report its heartbeat carries, the instance directories.

    The connection is made lazily: whoever needs the hypervisor asks
    zv_compute_virt_ready, which reconnects when the connection is gone,
    no sooner than the backoff allows (500 ms doubling to 30 s), and says
    why the host is degraded meanwhile.  A connection that comes back is
    reconciled at once with a full sync, and its event fd is polled by the
    loop.  The node report is the host as placement sees it: one inventory
    per resource class, with this host's ratios and reservations.          */

#include "actors/compute/compute.h"
#include <sys/statvfs.h>
#include <dirent.h>
#include <errno.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  The hypervisor connection, with reconnect backoff

void
zv_compute_virt_drop (zv_compute_t *self)
{
    if (self->event_polled) {
        zloop_poller_end (self->loop, &self->event_item);
        self->event_polled = false;
    }
    if (self->virt)
        self->driver->close (&self->virt);
}

bool
zv_compute_virt_ready (zv_compute_t *self)
{
    if (self->virt && !self->virt_lost && self->driver->alive (self->virt))
        return true;
    if (zv_mono_ms () < self->reconnect_at)
        return false;
    bool had = self->virt != NULL;
    if (had)
        zv_warning (self->name, NULL, "lost the hypervisor connection to %s", self->cfg.connection_uri);
    zv_compute_virt_drop (self);
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
        zloop_poller (self->loop, &self->event_item, zv_compute_event_readable, self);
        self->event_polled = true;
    }
    zv_info (self->name, NULL, "connected to %s (domain type %s)", self->cfg.connection_uri,
             self->driver->domain_type (self->virt));
    //  What changed while the connection was down is reconciled at once.
    if (had && self->link)
        zv_compute_sync (self);
    return true;
}

bool
zv_compute_real (zv_compute_t *self)
{
    return self->virt && !streq (self->driver->domain_type (self->virt), "test");
}

//  ---------------------------------------------------------------------
//  The node report: the host as a resource provider

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
json_t *
zv_compute_custom_resources (zv_compute_t *self)
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
json_t *
zv_compute_node_report (void *actor)
{
    zv_compute_t *self = (zv_compute_t *) actor;
    if (!zv_compute_virt_ready (self))
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
//  Instance directories

const char *
zv_compute_instance_dir (zv_compute_t *self, const char *uuid, char *buf, size_t len)
{
    snprintf (buf, len, "%s/%s", self->instances_path, uuid);
    return buf;
}

//  Remove an instance's directory: the files zova put there, then the
//  directory itself.  Flat by construction (no subdirectories).
void
zv_compute_remove_instance_dir (zv_compute_t *self, const char *uuid)
{
    char dir [1200], path [1500];
    zv_compute_instance_dir (self, uuid, dir, sizeof dir);
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
