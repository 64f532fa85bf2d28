/*  ops.c: operations, what an action does on the hypervisor, and running
    one.

    An action is one row of s_actions: the task_state the conductor set
    for it, the hypervisor calls it makes, and what it needs on the host
    (the instance's images, the rescue image's, a fresh definition of the
    domain).  What the action leaves the instance in is not the host's to
    say: it reports done or failed (zv_compute_report), with the power
    state it saw and the facts only it knows, and the conductor's state
    table decides.  An op is one action on one instance:
    first its images are made sure of in the host's cache (zv_imagecache:
    fetched over the bus once per image), then its hypervisor calls run,
    then its outcome is reported with conductor.instance_update against
    the task_state the conductor set.  On a real
    hypervisor the calls run on the workers (zv_workers: a clean shutdown
    waits up to a minute on the guest), and only touch the op; on libvirt's
    test driver, whose calls answer in microseconds, they run on the loop's
    thread, which is what lets one process simulate a fleet.  The op owns
    its own reference of the connection, so a worker survives the loop
    replacing a dead one.  A move's phases are rows too (their calls in
    migrate_src.c and migrate_dst.c, their casts in migrate.c): the same
    machinery, with a report of their own (conductor.move_report, through
    zv_compute_move_report) instead of instance_update.                  */

#include "actors/compute/compute.h"
#include "virt/zv_disk.h"
#include <assert.h>
#include <sys/stat.h>
#include <errno.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  An op's lifetime

void
zv_compute_op_destroy (zv_compute_op_t **op_p)
{
    zv_compute_op_t *op = *op_p;
    if (!op)
        return;
    if (op->virt)
        op->driver->close (&op->virt);
    json_decref (op->instance);
    json_decref (op->images);
    json_decref (op->held);
    json_decref (op->guest);
    json_decref (op->consoles);
    json_decref (op->move.migration);
    json_decref (op->move.facts);
    assert (!op->move.pull && op->move.timer < 0);
    memset (op->password, 0, sizeof op->password);
    free (op);
    *op_p = NULL;
}

void
zv_compute_op_free (void *ctx)
{
    zv_compute_op_t *op = (zv_compute_op_t *) ctx;
    zv_compute_op_destroy (&op);
}

//  An op from a message: the instance record, the images, the request id.
zv_compute_op_t *
zv_compute_op_new (zv_compute_t *self, zv_msg_t *msg, const zv_compute_action_t *action)
{
    json_t *instance = json_object_get (zv_msg_body (msg), "instance");
    const char *uuid = zv_compute_str (instance, "uuid");
    if (!uuid || !zv_uuid_valid (uuid)) {
        zv_warning (self->name, zv_msg_rq (msg), "%s without a valid instance uuid", zv_msg_type (msg));
        return NULL;
    }
    zv_compute_op_t *op = (zv_compute_op_t *) zmalloc (sizeof (zv_compute_op_t));
    op->action = action;
    op->driver = self->driver;
    op->instance = json_incref (instance);
    json_t *images = json_object_get (zv_msg_body (msg), "images");
    op->images = json_is_object (images) ? json_incref (images) : json_object ();
    snprintf (op->uuid, sizeof op->uuid, "%s", uuid);
    const char *rq = zv_msg_get_str (msg, "action_request_id");
    snprintf (op->rq, sizeof op->rq, "%s", rq ? rq : zv_msg_rq (msg) ? zv_msg_rq (msg) : "");
    op->move.shared = -1;
    op->move.timer = -1;
    return op;
}

//  ---------------------------------------------------------------------
//  The hypervisor calls of each action

//  The domain spec of an op's files (rescue: boot the rescue disk).
static zv_domain_spec_t
s_spec (zv_compute_op_t *op, bool rescue)
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
    spec.cpu_mode = op->cpu_mode;
    spec.cpu_model = op->cpu_model;
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
s_make_disks (zv_compute_op_t *op, const char *base)
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
s_power_off (zv_compute_op_t *op, int timeout_s, bool *clean_p)
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

zv_domain_spec_t
zv_compute_op_spec (zv_compute_op_t *op)
{
    return s_spec (op, false);
}

zv_status_t
zv_compute_op_make_disks (zv_compute_op_t *op)
{
    return s_make_disks (op, op->base);
}

zv_status_t
zv_compute_op_power_off (zv_compute_op_t *op, int timeout_s, bool *clean_p)
{
    return s_power_off (op, timeout_s, clean_p);
}

static zv_status_t
s_spawn_domain (zv_compute_op_t *op, bool rescue)
{
    zv_domain_spec_t spec = s_spec (op, rescue);
    return op->driver->spawn (op->virt, op->instance, &spec, op->errbuf, sizeof op->errbuf);
}

//  The image's cached file (its id) and, when its properties name them, its
//  kernel's and ramdisk's; the command line.
static void
s_image_files (const json_t *properties, const char *image_id, const char *cache, char *base, size_t base_len,
               char *kernel, char *ramdisk, char *cmdline, size_t len)
{
    snprintf (base, base_len, "%s/%s", cache, image_id ? image_id : "");
    const char *kernel_id = zv_compute_str (properties, "kernel_id");
    const char *ramdisk_id = zv_compute_str (properties, "ramdisk_id");
    const char *command = zv_compute_str (properties, "os_command_line");
    *kernel = *ramdisk = *cmdline = 0;
    if (kernel_id && *kernel_id)
        snprintf (kernel, len, "%s/%s", cache, kernel_id);
    if (kernel_id && *kernel_id && ramdisk_id && *ramdisk_id)
        snprintf (ramdisk, len, "%s/%s", cache, ramdisk_id);
    if (kernel_id && *kernel_id && command)
        snprintf (cmdline, 1024, "%s", command);
}

//  The properties the instance's domain is made from: its own copy of its
//  image's, taken at boot (Nova's image_meta), so that the image changed
//  or deleted since does not change the guest; else the image record's.
static const json_t *
s_instance_properties (zv_compute_op_t *op, const char *image_id)
{
    const json_t *properties = json_object_get (json_object_get (op->instance, "image"), "properties");
    if (json_is_object (properties))
        return properties;
    return json_object_get (json_object_get (op->images, image_id ? image_id : ""), "properties");
}

//  The record to fetch image id by.  An image deleted from the image
//  service (the conductor sends no record of it) is still on this host
//  when its cached file is: Glance lets an image in use go, and Nova's
//  hosts go on rebooting its servers from the _base file they keep.  NULL
//  when neither is there.
static json_t *
s_fetch_record (zv_compute_t *self, zv_compute_op_t *op, const char *id)
{
    json_t *record = json_object_get (op->images, id);
    if (record)
        return json_incref (record);
    char path [1300];
    zv_imagecache_path (self->cache, id, path, sizeof path);
    struct stat info;
    if (stat (path, &info) != 0 || !S_ISREG (info.st_mode))
        return NULL;
    zv_info (self->name, op->rq, "instance %s: image %s is no longer in the image service; "
             "using its cached copy %s", op->uuid, id, path);
    return json_pack ("{s:s}", "id", id);
}

static zv_status_t
s_run_build (zv_compute_op_t *op)
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
s_run_reboot (zv_compute_op_t *op)
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
s_run_hard_reboot (zv_compute_op_t *op)
{
    zv_status_t status = s_power_off (op, 0, NULL);
    if (status == ZV_OK)
        status = s_make_disks (op, op->base);
    if (status == ZV_OK)
        status = s_spawn_domain (op, false);
    return status;
}

static zv_status_t
s_run_stop (zv_compute_op_t *op)
{
    bool clean = false;
    zv_status_t status = s_power_off (op, op->shutdown_timeout_s, &clean);
    if (status == ZV_OK && !clean && op->shutdown_timeout_s > 0)
        snprintf (op->note, sizeof op->note, "the guest did not shut down within %d s: powered off",
                  op->shutdown_timeout_s);
    return status;
}

static zv_status_t
s_run_pause (zv_compute_op_t *op)
{
    return op->driver->pause (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
}

static zv_status_t
s_run_unpause (zv_compute_op_t *op)
{
    return op->driver->unpause (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
}

static zv_status_t
s_run_suspend (zv_compute_op_t *op)
{
    return op->driver->suspend (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
}

static zv_status_t
s_run_resume (zv_compute_op_t *op)
{
    return op->driver->power_on (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
}

//  Rescue as Nova's: a clean power-off, then the domain boots from a fresh
//  overlay of the rescue image (disk.rescue) with the instance's own root
//  disk attached second.  Unrescue boots the instance's own domain again.
static zv_status_t
s_run_rescue (zv_compute_op_t *op)
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
s_run_unrescue (zv_compute_op_t *op)
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
s_run_set_password (zv_compute_op_t *op)
{
    return op->driver->set_password (op->virt, op->uuid, *op->user ? op->user : "root", op->password,
                                     op->errbuf, sizeof op->errbuf);
}

//  ---------------------------------------------------------------------
//  The table: one row per action compute runs

//  The build's row comes first (zv_compute_action_build); the rows of a
//  move's phases, last, run the functions of migrate_src.c (on the source)
//  and migrate_dst.c (on the destination), one row per phase the conductor
//  names: a move that fails before it finished is rolled back by
//  cleanup_dest and restore_source, which do what revert does.
static const zv_compute_action_t s_actions [] = {
    { "create",         "spawning",          s_run_build,         true,  false, true,  NULL, NULL },
    { "reboot",         "rebooting",         s_run_reboot,        false, false, true,  NULL, NULL },
    { "reboot_hard",    "rebooting_hard",    s_run_hard_reboot,   true,  false, true,  NULL, NULL },
    { "stop",           "powering-off",      s_run_stop,          false, false, false, NULL, NULL },
    { "start",          "powering-on",       s_run_hard_reboot,   true,  false, true,  NULL, NULL },
    { "pause",          "pausing",           s_run_pause,         false, false, false, NULL, NULL },
    { "unpause",        "unpausing",         s_run_unpause,       false, false, false, NULL, NULL },
    { "suspend",        "suspending",        s_run_suspend,       false, false, false, NULL, NULL },
    { "resume",         "resuming",          s_run_resume,        false, false, false, NULL, NULL },
    { "rescue",         "rescuing",          s_run_rescue,        true,  true,  true,  NULL, NULL },
    { "unrescue",       "unrescuing",        s_run_unrescue,      true,  false, true,  NULL, NULL },
    { "changePassword", "updating_password", s_run_set_password,  false, false, false, NULL, NULL },
    { .action = "move_prepare", .phase = "prepare", .run = zv_compute_move_dst_prepare, .needs_images = true },
    { .action = "move_source", .phase = "source", .run = zv_compute_move_src_source },
    { .action = "move_finish", .phase = "finish", .run = zv_compute_move_dst_finish, .needs_images = true,
      .defines = true, .begin = zv_compute_move_dst_finish_begin },
    { .action = "move_confirm", .phase = "confirm", .run = zv_compute_move_src_confirm },
    { .action = "move_revert", .phase = "revert", .run = zv_compute_move_dst_revert },
    { .action = "move_revert", .phase = "cleanup_dest", .run = zv_compute_move_dst_revert },
    { .action = "move_revert", .phase = "revert_source", .run = zv_compute_move_src_revert, .defines = true },
    { .action = "move_revert", .phase = "restore_source", .run = zv_compute_move_src_revert, .defines = true },
    { .action = "move_rebuild", .phase = "rebuild", .run = zv_compute_move_dst_rebuild, .needs_images = true,
      .defines = true, .begin = zv_compute_move_dst_rebuild_begin },
    //  A live migration's (migrate_live.c).
    { .action = "move_live_check", .phase = "check_source", .run = zv_compute_live_check },
    { .action = "move_live_pre", .phase = "pre_live", .run = zv_compute_live_pre, .needs_images = true,
      .defines = true },
    { .action = "move_live", .phase = "live", .run = zv_compute_live_run, .begin = zv_compute_live_begin },
    { .action = "move_live_post", .phase = "post", .run = zv_compute_live_post, .defines = true },
    { .action = "move_confirm", .phase = "cleanup_source", .run = zv_compute_live_cleanup_source },
};
#define S_ACTIONS (sizeof (s_actions) / sizeof (s_actions [0]))

const zv_compute_action_t *
zv_compute_action_find (const char *name)
{
    for (size_t index = 0; name && index < S_ACTIONS; index++)
        if (streq (s_actions [index].action, name))
            return &s_actions [index];
    return NULL;
}

const zv_compute_action_t *
zv_compute_action_build (void)
{
    return &s_actions [0];
}

const zv_compute_action_t *
zv_compute_action_phase (const char *phase)
{
    for (size_t index = 0; phase && index < S_ACTIONS; index++)
        if (s_actions [index].phase && streq (s_actions [index].phase, phase))
            return &s_actions [index];
    return NULL;
}

//  ---------------------------------------------------------------------
//  The report of an op, to the conductor

static void
s_action_done (void *actor, void *ctx, zv_msg_t *reply)
{
    zv_compute_t *self = (zv_compute_t *) actor;
    zv_compute_op_t *op = (zv_compute_op_t *) ctx;
    if (zv_msg_status (reply) != ZV_OK)
        zv_warning (self->name, op->rq, "instance %s: %s report refused: %s", op->uuid, op->action->action,
                    zv_msg_error_text (reply));
    zv_compute_op_destroy (&op);
}

void
zv_compute_report (zv_compute_t *self, const char *uuid, const char *rq, const char *task,
                   zv_outcome_t outcome, zv_status_t why, const char *text, int power, json_t *facts,
                   zv_rpc_fn *fn, void *ctx, zv_rpc_free_fn *free_ctx)
{
    zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
    zv_msg_set_rq (msg, rq);
    json_t *body = json_pack ("{s:s, s:[s], s:s, s:s}", "uuid", uuid, "expected_task_state", task,
                              "outcome", zv_outcome_name (outcome), "action_request_id", rq ? rq : "");
    if (power >= 0)
        json_object_set_new (body, "power_state", json_string (zv_power_state_name ((zv_power_state_t) power)));
    if (facts && json_object_size (facts))
        json_object_set (body, "facts", facts);
    json_decref (facts);
    if (outcome == ZV_OUTCOME_FAILED) {
        json_object_set_new (body, "error", json_string (zv_status_name (why)));
        json_object_set_new (body, "reason", json_string (text && *text ? text : "failed"));
    }
    else
    if (text && *text)
        json_object_set_new (body, "note", json_string (text));
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, fn, ctx, free_ctx);
}

//  A move report's context: what its refusal is logged with.
typedef struct {
    char uuid [ZV_UUID_LEN + 1];
    char rq [72];
    char phase [32];
    char outcome [16];
} s_move_report_t;

static void
s_move_report_done (void *actor, void *ctx, zv_msg_t *reply)
{
    zv_compute_t *self = (zv_compute_t *) actor;
    s_move_report_t *report = (s_move_report_t *) ctx;
    if (zv_msg_status (reply) != ZV_OK)
        zv_warning (self->name, *report->rq ? report->rq : NULL, "instance %s: move phase %s: %s report refused: %s",
                    report->uuid, report->phase, report->outcome, zv_msg_error_text (reply));
    free (report);
}

void
zv_compute_move_report (zv_compute_t *self, const zv_compute_op_t *op, const char *outcome,
                        zv_status_t why, const char *reason, int power, json_t *facts)
{
    const char *phase = op->action->phase;
    zv_msg_t *msg = zv_msg_new ("conductor.move_report");
    zv_msg_set_rq (msg, op->rq);
    json_t *body = json_pack ("{s:s, s:s, s:s, s:s}", "uuid", op->uuid, "migration", op->move.id,
                              "phase", phase, "outcome", outcome);
    if (power >= 0)
        json_object_set_new (body, "power_state", json_string (zv_power_state_name ((zv_power_state_t) power)));
    if (facts && json_object_size (facts))
        json_object_set (body, "facts", facts);
    json_decref (facts);
    if (streq (outcome, "failed")) {
        json_object_set_new (body, "error", json_string (zv_status_name (why)));
        json_object_set_new (body, "reason", json_string (reason && *reason ? reason : "failed"));
    }
    zv_msg_set_body (msg, &body);
    s_move_report_t *report = (s_move_report_t *) zmalloc (sizeof (s_move_report_t));
    snprintf (report->uuid, sizeof report->uuid, "%s", op->uuid);
    snprintf (report->rq, sizeof report->rq, "%s", op->rq);
    snprintf (report->phase, sizeof report->phase, "%s", phase);
    snprintf (report->outcome, sizeof report->outcome, "%s", outcome);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_move_report_done, report, free);
}

//  The facts an op learnt: where the consoles of its running domain listen
//  (a hypervisor with consoles only).  New object.
json_t *
zv_compute_op_facts (zv_compute_op_t *op)
{
    json_t *facts = json_object ();
    if (op->virt && op->real)
        json_object_set (facts, "console", op->consoles ? op->consoles : json_null ());
    return facts;
}

//  The end of an op, to the conductor: done or failed, with the power
//  state the hypervisor reports and, on failure, the real reason.
static void
s_op_report (zv_compute_t *self, zv_compute_op_t *op)
{
    //  Its disks name their base files now (or it failed): the cache's
    //  cleaner judges them by the disks from here on.
    size_t index;
    json_t *id;
    json_array_foreach (op->held, index, id)
        zv_imagecache_release (self->cache, json_string_value (id));
    json_decref (op->held);
    op->held = NULL;
    if (op->action == zv_compute_action_build ()) {
        zv_compute_build_report (self, op);
        return;
    }
    if (op->action->phase) {
        zv_compute_move_finished (self, op);
        return;
    }
    if (op->status == ZV_OK)
        zv_info (self->name, op->rq, "instance %s: %s done%s%s", op->uuid, op->action->action,
                 *op->note ? ": " : "", op->note);
    else
        zv_warning (self->name, op->rq, "instance %s: %s failed: %s", op->uuid, op->action->action, op->errbuf);
    zv_compute_report (self, op->uuid, op->rq, op->action->task_state,
                       op->status == ZV_OK ? ZV_OUTCOME_DONE : ZV_OUTCOME_FAILED, op->status,
                       op->status == ZV_OK ? op->note : op->errbuf, op->virt ? (int) op->power : -1,
                       zv_compute_op_facts (op), s_action_done, op, zv_compute_op_free);
}

//  ---------------------------------------------------------------------
//  Running an op: images, then the hypervisor calls, then the report

static void
s_op_work (void *job)
{
    zv_compute_op_t *op = (zv_compute_op_t *) job;
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
    zv_compute_t *self = (zv_compute_t *) actor;
    zv_compute_op_t *op = (zv_compute_op_t *) job;
    if (zv_workers_cancelled (self->workers)) {
        zv_compute_op_destroy (&op);
        return;
    }
    s_op_report (self, op);
}

void
zv_compute_op_report (zv_compute_t *self, zv_compute_op_t *op)
{
    s_op_report (self, op);
}

//  Every image is in the cache: run the calls, on a worker unless the
//  hypervisor answers at once.
static void
s_op_run (zv_compute_t *self, zv_compute_op_t *op)
{
    //  A move's phase that a later one overtook while its images came
    //  makes no call: its end is all that is left.
    if (op->status != ZV_OK || op->move.cancelled) {
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
    zv_compute_t *self = (zv_compute_t *) actor;
    zv_compute_op_t *op = (zv_compute_op_t *) ctx;
    if (status != ZV_OK && op->status == ZV_OK) {
        op->status = status;
        snprintf (op->errbuf, sizeof op->errbuf, "%s", errtext ? errtext : "image fetch failed");
    }
    if (--op->fetching == 0)
        s_op_run (self, op);
}

//  Fill an op's paths, fetch the images it needs, then run it.
void
zv_compute_op_start (zv_compute_t *self, zv_compute_op_t *op)
{
    op->shutdown_timeout_s = self->cfg.shutdown_timeout_s;
    op->soft_reboot_s = self->cfg.wait_soft_reboot_seconds;
    op->agent_timeout_s = self->cfg.agent_timeout_s;
    snprintf (op->vnc_listen, sizeof op->vnc_listen, "%s", self->cfg.vnc_server_listen);
    snprintf (op->network, sizeof op->network, "%s", self->cfg.network);
    snprintf (op->cpu_mode, sizeof op->cpu_mode, "%s", self->cfg.cpu_mode);
    snprintf (op->cpu_model, sizeof op->cpu_model, "%.*s", (int) strcspn (self->cfg.cpu_models, ", \t\n"),
              self->cfg.cpu_models);
    zv_compute_instance_dir (self, op->uuid, op->dir, sizeof op->dir);
    if (!zv_compute_virt_ready (self)) {
        op->status = ZV_EUNAVAILABLE;
        snprintf (op->errbuf, sizeof op->errbuf, "%s", *self->degraded ? self->degraded : "hypervisor unreachable");
        s_op_report (self, op);
        return;
    }
    op->driver = self->driver;
    op->virt = self->driver->ref (self->virt);
    op->real = zv_compute_real (self);
    if (!op->real) {
        s_op_run (self, op);
        return;
    }
    //  The domain's files.
    const char *image_id = zv_compute_str (json_object_get (op->instance, "image"), "id");
    snprintf (op->disk, sizeof op->disk, "%s/disk", op->dir);
    snprintf (op->console_log, sizeof op->console_log, "%s/console.log", op->dir);
    const json_t *properties = s_instance_properties (op, image_id);
    s_image_files (properties, image_id, self->cache_path, op->base, sizeof op->base,
                   op->kernel, op->ramdisk, op->cmdline, sizeof op->kernel);
    const unsigned char *u = (const unsigned char *) op->uuid;
    snprintf (op->mac, sizeof op->mac, "52:54:00:%c%c:%c%c:%c%c", u [0], u [1], u [2], u [3], u [4], u [5]);
    snprintf (op->proxyclient, sizeof op->proxyclient, "%s", *self->cfg.vnc_proxyclient_address
              ? self->cfg.vnc_proxyclient_address : self->cfg.vnc_server_listen);
    if (op->action->defines && *self->cfg.vnc_server_listen) {
        snprintf (op->serial_host, sizeof op->serial_host, "%s", self->cfg.vnc_server_listen);
        op->serial_port = zv_compute_serial_port (self, op->uuid);
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
        json_array_append_new (wanted, json_string (image_id ? image_id : ""));
        if (*op->kernel)
            json_array_append_new (wanted, json_string (zv_compute_str (properties, "kernel_id")));
        if (*op->ramdisk)
            json_array_append_new (wanted, json_string (zv_compute_str (properties, "ramdisk_id")));
    }
    if (op->action->rescue_images) {
        const json_t *rescue = json_object_get (json_object_get (op->images, op->rescue_image), "properties");
        s_image_files (rescue, op->rescue_image, self->cache_path, op->rescue_base, sizeof op->rescue_base,
                       op->rescue_kernel, op->rescue_ramdisk, op->rescue_cmdline, sizeof op->rescue_kernel);
        json_array_append_new (wanted, json_string (op->rescue_image));
        if (*op->rescue_kernel)
            json_array_append_new (wanted, json_string (zv_compute_str (rescue, "kernel_id")));
        if (*op->rescue_ramdisk)
            json_array_append_new (wanted, json_string (zv_compute_str (rescue, "ramdisk_id")));
    }
    json_t *records = json_array ();
    size_t index;
    json_t *id;
    json_array_foreach (wanted, index, id) {
        json_t *record = s_fetch_record (self, op, json_string_value (id));
        if (!record) {
            op->status = ZV_ENOTFOUND;
            snprintf (op->errbuf, sizeof op->errbuf, "Image %s could not be found.", json_string_value (id));
            break;
        }
        json_array_append_new (records, record);
    }
    op->fetching = 1;                   //  held until every fetch is asked
    json_t *record;
    if (op->status == ZV_OK) {
        //  Held from before the fetch to the report: between a cache hit
        //  and the disk that names it, no file says the image is in use.
        op->held = json_array ();
        json_array_foreach (records, index, record) {
            zv_imagecache_hold (self->cache, zv_compute_str (record, "id"));
            json_array_append_new (op->held, json_string (zv_compute_str (record, "id")));
        }
    }
    if (op->status == ZV_OK)
        json_array_foreach (records, index, record) {
            op->fetching++;
            zv_imagecache_fetch (self->cache, record, op->rq, s_op_fetched, op);
        }
    json_decref (records);
    json_decref (wanted);
    s_op_fetched (self, op, ZV_OK, NULL, NULL);
}

//  ---------------------------------------------------------------------
//  User actions

void
zv_compute_instance_action (zv_compute_t *self, zv_msg_t *msg)
{
    const char *name = zv_msg_get_str (msg, "action");
    const zv_compute_action_t *action = zv_compute_action_find (name);
    if (!action || action == zv_compute_action_build () || action->phase) {
        zv_warning (self->name, zv_msg_rq (msg), "action '%s' is not run by compute", name ? name : "?");
        return;
    }
    zv_compute_op_t *op = zv_compute_op_new (self, msg, action);
    if (!op)
        return;
    const char *rescue = zv_msg_get_str (msg, "rescue_image");
    snprintf (op->rescue_image, sizeof op->rescue_image, "%s", rescue ? rescue : "");
    const char *user = zv_msg_get_str (msg, "user");
    const char *password = zv_msg_get_str (msg, "password");
    snprintf (op->user, sizeof op->user, "%s", user ? user : "root");
    snprintf (op->password, sizeof op->password, "%s", password ? password : "");
    zv_info (self->name, op->rq, "instance %s: %s", op->uuid, name);
    zv_compute_op_start (self, op);
}
