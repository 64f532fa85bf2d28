/*  migrate_live.c: a live migration's phases on this host, and the
    monitor of its running job.

    The conductor's table (actors/conductor/phases.c, s_live) casts:
      - check_source (source): is the storage shared (the destination's
        marker of prepare), what the guest runs as (its migratable XML),
        and without shared storage its disks (format, size, backing file);
      - pre_live (destination): can this host's CPU run the guest, the
        empty disks block migration copies into (the top overlay over this
        host's cached image), the XML the guest will run here (paths under
        this host's instances path, its own serial port), and where the
        source's libvirtd reaches this one;
      - live (source): libvirt's peer-to-peer job, persistent on the
        destination, undefined here; a re-run after a restart first looks
        where the guest is (gone: done; a job still running: waits for it);
      - post (destination): the guest runs here; a guest paused to force
        the job to complete runs again;
      - cleanup_source (source): what is left of the instance here.
    Every failure before post leaves the guest running here, untouched.

    The monitor runs on the loop, twice a second, for each job this host
    runs: the job's figures to the conductor (progress), the stepped
    maximum downtime (Nova's live_migration_downtime_steps/_delay, scaled
    by the GiB to move), the completion timeout and its action, and what
    the user asked (compute.move_live_control: abort, force_complete:
    post-copy when permitted, else the guest paused until it converges).

    On libvirt's test driver (no migration API) the same phases run on the
    simulated path: live undefines the domain here, post defines and
    starts it there.                                                        */

#include "actors/compute/compute.h"
#include "virt/zv_disk.h"
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define S_MONITOR_MS    500
#define S_GIB           (1024LL * 1024 * 1024)

//  A job this host runs, on the loop.
typedef struct {
    char uuid [ZV_UUID_LEN + 1];
    char migration [ZV_UUID_LEN + 1];
    char rq [72];
    int64_t started_ms;
    int step;                       //  downtime steps applied so far
    bool timed_out;                 //  the completion timeout's action was taken
    bool postcopy;                  //  switched to post-copy
    bool paused;                    //  paused here so that it converges
} s_job_t;

//  ---------------------------------------------------------------------
//  check_source (source)

static json_t *
s_disks (zv_compute_op_t *op)
{
    static const char *names [] = { "disk", "disk.local", "disk.swap" };
    json_t *disks = json_array ();
    for (size_t index = 0; index < sizeof names / sizeof names [0]; index++) {
        char path [1300];
        snprintf (path, sizeof path, "%s/%s", op->dir, names [index]);
        if (!zv_compute_exists (path))
            continue;
        json_t *info = zv_disk_info (path);
        if (!info)
            continue;
        const char *backing = zv_compute_str (info, "backing-filename");
        char copy [1300];
        snprintf (copy, sizeof copy, "%s", backing ? backing : "");
        json_array_append_new (disks, json_pack ("{s:s, s:s, s:I, s:s?}", "name", names [index],
            "format", zv_compute_str (info, "format") ? zv_compute_str (info, "format") : "raw",
            "virtual_size", json_integer_value (json_object_get (info, "virtual-size")),
            "backing", backing ? basename (copy) : NULL));
        json_decref (info);
    }
    return disks;
}

zv_status_t
zv_compute_live_check (zv_compute_op_t *op)
{
    if (!zv_compute_move_runs (op)) {
        snprintf (op->errbuf, sizeof op->errbuf, "instance %s does not run on this host: it cannot move live",
                  op->uuid);
        return ZV_ECONFLICT;
    }
    if (!op->real) {
        op->move.facts = json_pack ("{s:b, s:{s:b, s:b}}", "shared", 0, "live", "shared", 0, "block", 0);
        return ZV_OK;
    }
    bool shared = zv_compute_move_shared (op);
    json_t *asked = json_object_get (op->move.migration, "block_migration");
    if (json_is_true (asked) && shared) {
        snprintf (op->errbuf, sizeof op->errbuf, "Cannot block migrate instance %s with shared storage: "
                  "the destination sees its instance directory.", op->uuid);
        return ZV_EINVAL;
    }
    if (json_is_false (asked) && !shared) {
        snprintf (op->errbuf, sizeof op->errbuf, "%s is not on shared storage: Shared storage live-migration "
                  "requires either shared storage or boot-from-volume with no local disks.", op->uuid);
        return ZV_EINVAL;
    }
    char *xml = op->driver->migratable_xml (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
    if (!xml)
        return ZV_EIO;
    //  The disks are what block migration copies into (a qemu-img info
    //  each): on shared storage nothing is made for them.
    op->move.facts = json_pack ("{s:b, s:{s:b, s:b, s:s, s:s, s:o}}", "shared", shared, "live",
                                "shared", shared, "block", !shared, "domain_xml", xml,
                                "source_instances", op->move.instances_path,
                                "disks", shared ? json_array () : s_disks (op));
    free (xml);
    return ZV_OK;
}

//  ---------------------------------------------------------------------
//  pre_live (destination)

//  The empty disk of the source's disk (a row of s_disks) at path: an
//  overlay of this host's copy of its backing file, or a blank disk.
static zv_status_t
s_make_disk (zv_compute_op_t *op, const json_t *disk, const char *path)
{
    int64_t size = json_integer_value (json_object_get (disk, "virtual_size"));
    const char *backing = zv_compute_str (disk, "backing");
    if (backing) {
        char base_dir [1300], base [1400];
        snprintf (base_dir, sizeof base_dir, "%s", op->base);
        snprintf (base, sizeof base, "%s/%s", dirname (base_dir), backing);
        return zv_disk_overlay (path, base, (size + S_GIB - 1) / S_GIB, op->errbuf, sizeof op->errbuf);
    }
    return zv_disk_blank (path, (size + 1024 * 1024 - 1) / (1024 * 1024), op->errbuf, sizeof op->errbuf);
}

//  A host configured with cpu_mode custom offers only the models of its
//  cpu_models: a guest whose model (its XML's <cpu><model>, the
//  hypervisor's default qemu64 when none) is not among them cannot run
//  here.
static zv_status_t
s_cpu_offered (zv_compute_op_t *op, const char *xml)
{
    const zv_config_t *cfg = &op->move.compute->cfg;
    if (!streq (cfg->cpu_mode, "custom"))
        return ZV_OK;
    char model [128] = "qemu64";
    const char *at = strstr (xml, "<model");
    const char *end = at ? strchr (at, '>') : NULL;
    if (end && end [-1] != '/') {
        size_t len = strcspn (end + 1, "<");
        snprintf (model, sizeof model, "%.*s", (int) (len < sizeof model ? len : sizeof model - 1), end + 1);
    }
    char list [512];
    snprintf (list, sizeof list, "%s", cfg->cpu_models);
    for (char *save = NULL, *item = strtok_r (list, ", \t\n", &save); item; item = strtok_r (NULL, ", \t\n", &save))
        if (strcasecmp (item, model) == 0)
            return ZV_OK;
    snprintf (op->errbuf, sizeof op->errbuf, "Unacceptable CPU info: CPU doesn't have compatibility. The guest's "
              "CPU model %s is not among the models host %s offers (cpu_models = %s).", model, cfg->host,
              cfg->cpu_models);
    return ZV_EINVAL;
}

zv_status_t
zv_compute_live_pre (zv_compute_op_t *op)
{
    const zv_config_t *cfg = &op->move.compute->cfg;
    const json_t *live = json_object_get (op->move.migration, "live");
    if (!op->real) {
        op->move.facts = json_pack ("{s:{s:s, s:s}}", "live", "peer_uri", "", "migrate_uri", "");
        return ZV_OK;
    }
    const char *xml = zv_compute_str (live, "domain_xml");
    const char *from = zv_compute_str (live, "source_instances");
    if (!xml || !from) {
        snprintf (op->errbuf, sizeof op->errbuf, "the source did not say what the guest runs as");
        return ZV_EINVAL;
    }
    zv_status_t status = op->driver->cpu_compatible (op->virt, xml, op->errbuf, sizeof op->errbuf);
    if (status == ZV_OK)
        status = s_cpu_offered (op, xml);
    if (status != ZV_OK)
        return status;
    //  Block migration: room for the disks, then each an empty disk the
    //  job fills (a re-run keeps what it made).
    if (json_is_true (json_object_get (live, "block"))) {
        int64_t wanted = 0;
        size_t index;
        json_t *disk;
        json_array_foreach (json_object_get (live, "disks"), index, disk)
            wanted += json_integer_value (json_object_get (disk, "virtual_size"));
        struct statvfs fs;
        if (statvfs (op->move.instances_path, &fs) == 0 && (int64_t) fs.f_bavail * (int64_t) fs.f_frsize < wanted) {
            snprintf (op->errbuf, sizeof op->errbuf, "Migration pre-check error: Unable to migrate %s: Disk of "
                      "instance is too large (available on destination host: %lld < need: %lld)", op->uuid,
                      (long long) fs.f_bavail * (long long) fs.f_frsize, (long long) wanted);
            return ZV_EINVAL;
        }
        json_array_foreach (json_object_get (live, "disks"), index, disk) {
            char path [1300];
            snprintf (path, sizeof path, "%s/%s", op->dir, zv_compute_str (disk, "name"));
            if (!zv_compute_exists (path) && (status = s_make_disk (op, disk, path)) != ZV_OK)
                return status;
        }
    }
    char *dest_xml = zv_domain_xml_relocate (xml, from, op->move.instances_path, op->serial_port,
                                             op->errbuf, sizeof op->errbuf);
    if (!dest_xml)
        return ZV_EINVAL;
    char peer [1100], inbound [300];
    if (*cfg->live_migration_peer_uri)
        snprintf (peer, sizeof peer, "%s", cfg->live_migration_peer_uri);
    else
        snprintf (peer, sizeof peer, "qemu+tcp://%s/system", cfg->host);
    snprintf (inbound, sizeof inbound, "tcp://%s", *cfg->live_migration_inbound_addr
              ? cfg->live_migration_inbound_addr : cfg->host);
    op->move.facts = json_pack ("{s:{s:s, s:s, s:s}}", "live", "dest_xml", dest_xml, "peer_uri", peer,
                                "migrate_uri", inbound);
    free (dest_xml);
    return ZV_OK;
}

//  ---------------------------------------------------------------------
//  live (source)

void
zv_compute_live_begin (zv_compute_t *self, zv_compute_op_t *op)
{
    s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t));
    snprintf (job->uuid, sizeof job->uuid, "%s", op->uuid);
    snprintf (job->migration, sizeof job->migration, "%s", op->move.id);
    snprintf (job->rq, sizeof job->rq, "%s", op->rq);
    job->started_ms = zv_mono_ms ();
    zhashx_update (self->live_jobs, op->uuid, job);
    op->move.stage = ZV_MOVE_RUNNING;
    zv_compute_op_start (self, op);
}

zv_status_t
zv_compute_live_run (zv_compute_op_t *op)
{
    const zv_config_t *cfg = &op->move.compute->cfg;
    const json_t *live = json_object_get (op->move.migration, "live");
    zv_power_state_t power = op->driver->power_state (op->virt, op->uuid);
    //  A re-run: the guest left already.
    if (power == ZV_POWER_NOSTATE) {
        op->move.facts = json_pack ("{s:{s:b}}", "live", "left", 1);
        return ZV_OK;
    }
    if (!op->real) {
        //  The simulated path: the destination defines it in post.
        zv_status_t status = op->driver->destroy (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
        op->move.facts = json_pack ("{s:{s:b}}", "live", "left", status == ZV_OK);
        return status;
    }
    if (power != ZV_POWER_RUNNING && power != ZV_POWER_PAUSED) {
        snprintf (op->errbuf, sizeof op->errbuf, "the guest does not run here (%s): nothing to migrate live",
                  zv_power_state_name (power));
        return ZV_ECONFLICT;
    }
    zv_status_t status = ZV_OK, job_status = ZV_OK;
    json_t *job = op->driver->job_stats (op->virt, op->uuid, &job_status, op->errbuf, sizeof op->errbuf);
    if (job) {
        //  This host restarted during the job: libvirt runs it on; wait.
        while (job) {
            json_decref (job);
            usleep (S_MONITOR_MS * 1000);
            job = op->driver->job_stats (op->virt, op->uuid, &job_status, op->errbuf, sizeof op->errbuf);
        }
        *op->errbuf = 0;
    }
    else {
        zv_virt_migration_t how = {
            .peer_uri = zv_compute_str (live, "peer_uri"),
            .migrate_uri = zv_compute_str (live, "migrate_uri"),
            .dest_xml = zv_compute_str (live, "dest_xml"),
            .block = json_is_true (json_object_get (live, "block")),
            .auto_converge = cfg->live_migration_permit_auto_converge,
            .postcopy = cfg->live_migration_permit_post_copy,
            .bandwidth_mib = cfg->live_migration_bandwidth,
        };
        if (how.migrate_uri && !*how.migrate_uri)
            how.migrate_uri = NULL;
        if (!how.peer_uri || !*how.peer_uri) {
            snprintf (op->errbuf, sizeof op->errbuf, "the destination did not say how to reach it");
            return ZV_EINVAL;
        }
        status = op->driver->migrate_live (op->virt, op->uuid, &how, op->errbuf, sizeof op->errbuf);
    }
    //  Where the guest is decides, whatever the call said.
    power = op->driver->power_state (op->virt, op->uuid);
    if (power == ZV_POWER_NOSTATE) {
        *op->errbuf = 0;
        op->move.facts = json_pack ("{s:{s:b}}", "live", "left", 1);
        return ZV_OK;
    }
    if (status == ZV_OK) {
        snprintf (op->errbuf, sizeof op->errbuf, "the job ended but the guest is still here (%s)",
                  zv_power_state_name (power));
        status = ZV_EIO;
    }
    if (!*op->errbuf)
        snprintf (op->errbuf, sizeof op->errbuf, "the migration job ended without moving the guest");
    return status;
}

//  ---------------------------------------------------------------------
//  post (destination), cleanup_source (source)

zv_status_t
zv_compute_live_post (zv_compute_op_t *op)
{
    const json_t *live = json_object_get (op->move.migration, "live");
    if (!op->real) {
        if (zv_compute_move_runs (op))
            return ZV_OK;
        //  A paused guest arrives paused.
        op->move.was_running = true;
        zv_status_t status = zv_compute_move_define (op);
        const char *vm = zv_compute_str (op->instance, "vm_state");
        if (status == ZV_OK && vm && streq (vm, "paused"))
            status = op->driver->pause (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
        return status;
    }
    zv_power_state_t power = op->driver->power_state (op->virt, op->uuid);
    if (power != ZV_POWER_RUNNING && power != ZV_POWER_PAUSED) {
        snprintf (op->errbuf, sizeof op->errbuf, "the guest does not run here after its migration (%s)",
                  zv_power_state_name (power));
        return ZV_EIO;
    }
    //  Paused by force-complete: it runs again, as it did before.
    if (power == ZV_POWER_PAUSED && json_is_true (json_object_get (live, "paused_to_complete"))) {
        zv_status_t status = op->driver->unpause (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
        if (status != ZV_OK)
            return status;
    }
    //  The domain's XML as it runs here, for whoever looks at the directory.
    char *xml = op->driver->migratable_xml (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
    if (xml) {
        char path [1300];
        snprintf (path, sizeof path, "%s/libvirt.xml", op->dir);
        FILE *file = fopen (path, "w");
        if (file) {
            fputs (xml, file);
            fclose (file);
        }
        free (xml);
    }
    *op->errbuf = 0;
    zv_compute_move_forget_markers (op);
    return ZV_OK;
}

zv_status_t
zv_compute_live_cleanup_source (zv_compute_op_t *op)
{
    if (zv_compute_move_runs (op)) {
        //  Never a running guest: a copy here that runs is an operator's.
        snprintf (op->errbuf, sizeof op->errbuf, "a copy of %s still runs here after its live migration: "
                  "left for an operator", op->uuid);
        return ZV_ECONFLICT;
    }
    zv_status_t status = op->driver->destroy (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
    if (status != ZV_OK)
        return status;
    if (op->real && op->move.shared != 1 && zv_disk_remove_dir (op->dir) != 0 && errno != ENOENT) {
        snprintf (op->errbuf, sizeof op->errbuf, "cannot remove %s: %s", op->dir, strerror (errno));
        return ZV_EIO;
    }
    if (op->real)
        zv_compute_move_forget_markers (op);
    return ZV_OK;
}

//  ---------------------------------------------------------------------
//  The monitor (on the loop)

//  Nova's stepped downtime: step i of steps applies from delay * i * GiB
//  seconds, its maximum offset + base^i ms, the last one the configured
//  downtime.
static int
s_downtime_at (const zv_config_t *cfg, int step)
{
    double downtime = cfg->live_migration_downtime;
    int steps = cfg->live_migration_downtime_steps;
    double offset = downtime / (steps + 1);
    double base = pow (downtime - offset, 1.0 / steps);
    return (int) (offset + pow (base, step));
}

static void
s_progress_done (void *actor, void *ctx, zv_msg_t *reply)
{
    (void) actor;
    (void) ctx;
    (void) reply;                   //  a lost figure is replaced by the next
}

static void
s_progress (zv_compute_t *self, s_job_t *job, json_t *stats, int downtime_ms)
{
    json_t *facts = json_object ();
    static const char *copied [] = { "memory_total", "memory_processed", "memory_remaining", "disk_total",
        "disk_processed", "disk_remaining", "memory_bps", "dirty_rate", "iteration", "elapsed_ms", NULL };
    for (int index = 0; copied [index]; index++)
        if (json_is_integer (json_object_get (stats, copied [index])))
            json_object_set (facts, copied [index], json_object_get (stats, copied [index]));
    json_object_set_new (facts, "downtime_ms", json_integer (downtime_ms));
    json_object_set_new (facts, "postcopy", json_boolean (job->postcopy
                                                          || json_is_true (json_object_get (stats, "postcopy"))));
    zv_msg_t *msg = zv_msg_new ("conductor.move_report");
    zv_msg_set_rq (msg, job->rq);
    json_t *body = json_pack ("{s:s, s:s, s:s, s:s, s:o}", "uuid", job->uuid, "migration", job->migration,
                              "phase", "live", "outcome", "progress", "facts", facts);
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_progress_done, NULL, NULL);
}

//  What the user (or the completion timeout) wants: abort, or complete now.
static void
s_act (zv_compute_t *self, s_job_t *job, const char *action)
{
    char errbuf [512] = "";
    zv_status_t status = ZV_OK;
    if (streq (action, "abort"))
        status = self->driver->job_abort (self->virt, job->uuid, errbuf, sizeof errbuf);
    else
    if (self->cfg.live_migration_permit_post_copy && !job->postcopy) {
        status = self->driver->migrate_postcopy (self->virt, job->uuid, errbuf, sizeof errbuf);
        job->postcopy = status == ZV_OK;
    }
    else
    if (!job->paused && !job->postcopy) {
        status = self->driver->pause (self->virt, job->uuid, errbuf, sizeof errbuf);
        job->paused = status == ZV_OK;
    }
    if (status == ZV_OK)
        zv_info (self->name, job->rq, "instance %s: migration %s: %s%s", job->uuid, job->migration, action,
                 streq (action, "abort") ? "" : job->postcopy ? " (post-copy)" : " (guest paused)");
    else
        zv_warning (self->name, job->rq, "instance %s: migration %s: %s failed: %s", job->uuid, job->migration,
                    action, errbuf);
}

static int
s_monitor (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_compute_t *self = (zv_compute_t *) arg;
    if (!zv_compute_virt_ready (self) || !self->driver->job_stats)
        return 0;
    for (s_job_t *job = (s_job_t *) zhashx_first (self->live_jobs); job;
         job = (s_job_t *) zhashx_next (self->live_jobs)) {
        zv_status_t status = ZV_OK;
        char errbuf [256];
        json_t *stats = self->driver->job_stats (self->virt, job->uuid, &status, errbuf, sizeof errbuf);
        if (!stats)
            continue;
        int64_t total = json_integer_value (json_object_get (stats, "memory_total"))
                      + json_integer_value (json_object_get (stats, "disk_total"));
        int64_t gib = total / S_GIB > 0 ? total / S_GIB : 1;
        int64_t elapsed_s = (zv_mono_ms () - job->started_ms) / 1000;
        //  The stepped downtime.
        while (job->step <= self->cfg.live_migration_downtime_steps
        &&     elapsed_s >= (int64_t) self->cfg.live_migration_downtime_delay * job->step * gib) {
            int downtime = s_downtime_at (&self->cfg, job->step);
            if (self->driver->migrate_downtime (self->virt, job->uuid, downtime, errbuf, sizeof errbuf) == ZV_OK)
                zv_info (self->name, job->rq, "instance %s: migration %s: maximum downtime %d ms", job->uuid,
                         job->migration, downtime);
            job->step++;
        }
        //  The completion timeout.
        if (!job->timed_out && self->cfg.live_migration_completion_timeout > 0
        &&  elapsed_s > (int64_t) self->cfg.live_migration_completion_timeout * gib) {
            job->timed_out = true;
            zv_warning (self->name, job->rq, "instance %s: migration %s: not complete after %lld s: %s",
                        job->uuid, job->migration, (long long) elapsed_s, self->cfg.live_migration_timeout_action);
            s_act (self, job, streq (self->cfg.live_migration_timeout_action, "force_complete")
                              ? "force_complete" : "abort");
        }
        s_progress (self, job, stats, job->step > 0 ? s_downtime_at (&self->cfg, job->step - 1) : 0);
        json_decref (stats);
    }
    return 0;
}

static void
s_job_free (void **item)
{
    free (*item);
    *item = NULL;
}

void
zv_compute_live_init (zv_compute_t *self)
{
    self->live_jobs = zhashx_new ();
    zhashx_set_destructor (self->live_jobs, s_job_free);
    self->live_timer = zloop_timer (self->loop, S_MONITOR_MS, 0, s_monitor, self);
}

void
zv_compute_live_destroy (zv_compute_t *self)
{
    if (self->live_timer >= 0 && self->loop)
        zloop_timer_end (self->loop, self->live_timer);
    self->live_timer = -1;
    zhashx_destroy (&self->live_jobs);
}

//  The job of uuid's live phase ended here (its report goes now); the
//  facts say whether the guest was paused to complete.
void
zv_compute_live_forget (zv_compute_t *self, zv_compute_op_t *op)
{
    if (!self->live_jobs)
        return;
    s_job_t *job = (s_job_t *) zhashx_lookup (self->live_jobs, op->uuid);
    if (job && job->paused && op->move.facts)
        json_object_set_new (json_object_get (op->move.facts, "live"), "paused_to_complete", json_true ());
    zhashx_delete (self->live_jobs, op->uuid);
}

void
zv_compute_live_control (zv_compute_t *self, zv_msg_t *msg)
{
    const char *uuid = zv_msg_get_str (msg, "uuid");
    const char *migration = zv_msg_get_str (msg, "migration");
    const char *action = zv_msg_get_str (msg, "action");
    s_job_t *job = self->live_jobs ? (s_job_t *) zhashx_lookup (self->live_jobs, uuid) : NULL;
    if (!job || !streq (job->migration, migration)) {
        zv_warning (self->name, zv_msg_rq (msg), "instance %s: migration %s: %s: no such job runs here", uuid,
                    migration, action);
        return;
    }
    if (!streq (action, "abort") && !streq (action, "force_complete")) {
        zv_warning (self->name, zv_msg_rq (msg), "instance %s: migration %s: '%s' is no control of a job",
                    uuid, migration, action);
        return;
    }
    s_act (self, job, action);
}
