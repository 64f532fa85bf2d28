/*  migrate.c: a move's phases on this host: the conductor's casts, one
    phase at a time per instance, their reports; and what the source's and
    the destination's halves (migrate_src.c, migrate_dst.c) share.

    A move is a persisted sequence of phases in the conductor
    (actors/conductor/moves.c); each phase is cast to the host it runs on
    and answered with one conductor.move_report.  Here a cast becomes an op
    of ops.c's table (the phase's row): its images, its hypervisor calls (on
    a worker on QEMU, on the loop on libvirt's test driver, which is how a
    fleet of simulated hosts moves), its report.  Two rules make a phase
    safe to cast again after any restart:
      - every handler is idempotent: it looks at what the host holds (the
        domain, the directories, the marker files) and does what is left;
      - a cast for a migration and phase whose op is still here is
        ignored (self->moves, by "<migration>/<phase>"), so a conductor
        that restarted and casts again does not start the phase twice.
    The ops of one instance run one at a time (self->move_queues): a phase
    that comes while another of its instance is here means the conductor
    went on (a rollback after a timeout): the earlier one is cancelled,
    at once when it waits, is begun (a transfer) or holds its report, else
    when its hypervisor calls end (they are never interrupted), and its
    report is dropped; then the new one runs.  On the same host, source and
    destination (a resize there) see one directory: the marker of prepare
    says so, and nothing is moved or removed.

    [DEFAULT] debug_move_delay_ms holds each done report on a zloop timer,
    so that a test can stop a process in the middle of a phase.            */

#include "actors/compute/compute.h"
#include "virt/zv_disk.h"
#include <assert.h>
#include <sys/stat.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  What both halves share (on the op's thread)

bool
zv_compute_exists (const char *path)
{
    struct stat info;
    return lstat (path, &info) == 0;
}

const char *
zv_compute_move_marker (const zv_compute_op_t *op, const char *what, char *buf, size_t len)
{
    snprintf (buf, len, "%s/.zova-%s-%s", op->move.instances_path, what, op->move.id);
    return buf;
}

void
zv_compute_move_forget_markers (const zv_compute_op_t *op)
{
    static const char *markers [] = { "shared", "shared-seen", "made" };
    char path [1300];
    for (size_t index = 0; index < sizeof markers / sizeof markers [0]; index++)
        unlink (zv_compute_move_marker (op, markers [index], path, sizeof path));
}

zv_status_t
zv_compute_move_rebase (zv_compute_op_t *op)
{
    if (!op->real || !zv_compute_exists (op->disk) || !zv_compute_exists (op->base))
        return ZV_OK;
    return zv_disk_rebase (op->disk, op->base, op->errbuf, sizeof op->errbuf);
}

bool
zv_compute_move_runs (zv_compute_op_t *op)
{
    zv_power_state_t power = op->driver->power_state (op->virt, op->uuid);
    return power == ZV_POWER_RUNNING || power == ZV_POWER_PAUSED;
}

zv_status_t
zv_compute_move_define (zv_compute_op_t *op)
{
    //  The ephemeral and swap disks as they are now (the phase may have
    //  moved or made them since the op started).
    if (op->real) {
        snprintf (op->disk_local, sizeof op->disk_local, "%s/disk.local", op->dir);
        snprintf (op->disk_swap, sizeof op->disk_swap, "%s/disk.swap", op->dir);
        if (!zv_compute_exists (op->disk_local))
            *op->disk_local = 0;
        if (!zv_compute_exists (op->disk_swap))
            *op->disk_swap = 0;
    }
    zv_domain_spec_t spec = zv_compute_op_spec (op);
    zv_status_t status = op->driver->define (op->virt, op->instance, &spec, op->errbuf, sizeof op->errbuf);
    if (status == ZV_OK && op->move.was_running && !zv_compute_move_runs (op))
        status = op->driver->power_on (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
    return status;
}

//  ---------------------------------------------------------------------
//  One phase at a time per instance

static zlistx_t *
s_queue (zv_compute_t *self, const char *uuid)
{
    return (zlistx_t *) zhashx_lookup (self->move_queues, uuid);
}

//  Forget op: out of the table of phases here and of its instance's queue.
static void
s_unregister (zv_compute_t *self, zv_compute_op_t *op)
{
    if (zhashx_lookup (self->moves, op->move.key) == op)
        zhashx_delete (self->moves, op->move.key);
    zlistx_t *queue = s_queue (self, op->uuid);
    if (queue && zlistx_find (queue, op))
        zlistx_delete (queue, zlistx_cursor (queue));
}

static void
s_begin (zv_compute_t *self, zv_compute_op_t *op)
{
    zv_info (self->name, op->rq, "instance %s: migration %s: phase %s", op->uuid, op->move.id,
             op->action->phase);
    if (op->action->begin) {
        op->move.stage = ZV_MOVE_BEGUN;
        op->action->begin (self, op);
    }
    else {
        op->move.stage = ZV_MOVE_RUNNING;
        zv_compute_op_start (self, op);
    }
}

//  op is over here: the next phase of its instance may run.
static void
s_end (zv_compute_t *self, zv_compute_op_t *op)
{
    char uuid [ZV_UUID_LEN + 1];
    snprintf (uuid, sizeof uuid, "%s", op->uuid);
    s_unregister (self, op);
    zlistx_t *queue = s_queue (self, uuid);
    if (!queue)
        return;
    zv_compute_op_t *next = (zv_compute_op_t *) zlistx_first (queue);
    if (!next)
        zhashx_delete (self->move_queues, uuid);
    else
    if (next->move.stage == ZV_MOVE_QUEUED)
        s_begin (self, next);
}

//  Drop op now, without a report: it waits, is begun, or holds its report.
static void
s_drop (zv_compute_t *self, zv_compute_op_t *op)
{
    zv_movepull_destroy (&op->move.pull);
    if (op->move.timer >= 0)
        zloop_timer_end (self->loop, op->move.timer);
    op->move.timer = -1;
    s_unregister (self, op);
    zv_compute_op_destroy (&op);
}

//  A later phase of the instance came: the ones before it are over.
static void
s_cancel_earlier (zv_compute_t *self, zlistx_t *queue, const zv_compute_op_t *by)
{
    zv_compute_op_t *earlier = (zv_compute_op_t *) zlistx_first (queue);
    while (earlier) {
        zv_compute_op_t *next = (zv_compute_op_t *) zlistx_next (queue);
        zv_info (self->name, by->rq, "instance %s: migration %s phase %s gives way to migration %s phase %s",
                 earlier->uuid, earlier->move.id, earlier->action->phase, by->move.id, by->action->phase);
        switch (earlier->move.stage) {
            case ZV_MOVE_QUEUED:
            case ZV_MOVE_BEGUN:
            case ZV_MOVE_DELAYED:
                s_drop (self, earlier);
                break;
            case ZV_MOVE_RUNNING:
                //  Its hypervisor calls end first; its report is dropped.
                earlier->move.cancelled = true;
                break;
            case ZV_MOVE_STAGE_COUNT:
                assert (false);
                break;
        }
        earlier = next;
        //  s_drop deleted an item: find the cursor again.
        if (earlier)
            zlistx_find (queue, earlier);
    }
}

void
zv_compute_move_cast (zv_compute_t *self, zv_msg_t *msg)
{
    json_t *migration = json_object_get (zv_msg_body (msg), "migration");
    const char *phase = zv_compute_str (migration, "phase");
    const char *id = zv_compute_str (migration, "uuid");
    const zv_compute_action_t *action = zv_compute_action_phase (phase);
    if (!action || !id || !zv_uuid_valid (id)) {
        zv_warning (self->name, zv_msg_rq (msg), "%s: migration %s has no phase this host runs ('%s')",
                    zv_msg_type (msg), id ? id : "?", phase ? phase : "");
        return;
    }
    //  The phase decides; a cast of another verb is the conductor's word
    //  all the same.
    if (strncmp (zv_msg_type (msg), "compute.", 8) != 0 || !streq (zv_msg_type (msg) + 8, action->action))
        zv_warning (self->name, zv_msg_rq (msg), "migration %s: phase %s came as %s", id, phase,
                    zv_msg_type (msg));
    char key [sizeof ((zv_compute_move_t *) 0)->key];
    snprintf (key, sizeof key, "%s/%s", id, phase);
    if (zhashx_lookup (self->moves, key)) {
        zv_info (self->name, zv_msg_rq (msg), "migration %s: phase %s is running here already: cast ignored",
                 id, phase);
        return;
    }
    zv_compute_op_t *op = zv_compute_op_new (self, msg, action);
    if (!op)
        return;
    zv_compute_move_t *move = &op->move;
    move->migration = json_incref (migration);
    snprintf (move->id, sizeof move->id, "%s", id);
    snprintf (move->key, sizeof move->key, "%s", key);
    move->was_running = json_is_true (json_object_get (migration, "was_running"));
    json_t *shared = json_object_get (migration, "shared_storage");
    move->shared = json_is_boolean (shared) ? json_is_true (shared) : -1;
    const char *source = zv_compute_str (migration, "source_host");
    const char *dest = zv_compute_str (migration, "dest_host");
    move->same_host = source && dest && streq (source, dest);
    snprintf (move->instances_path, sizeof move->instances_path, "%s", self->instances_path);
    snprintf (move->resize_dir, sizeof move->resize_dir, "%s/%s_resize", self->instances_path, op->uuid);
    move->compute = self;
    move->stage = ZV_MOVE_QUEUED;

    zhashx_insert (self->moves, key, op);
    zlistx_t *queue = s_queue (self, op->uuid);
    if (!queue) {
        queue = zlistx_new ();
        zhashx_insert (self->move_queues, op->uuid, queue);
    }
    s_cancel_earlier (self, queue, op);
    zlistx_add_end (queue, op);
    if (zlistx_first (queue) == op)
        s_begin (self, op);
}

//  ---------------------------------------------------------------------
//  The report of a phase

//  The end of a phase, to the conductor: done with the power state and
//  what the phase learnt (its domain's consoles when it defines one), or
//  failed and why.
static void
s_report (zv_compute_t *self, zv_compute_op_t *op)
{
    if (streq (op->action->phase, "live"))
        zv_compute_live_forget (self, op);
    bool done = op->status == ZV_OK;
    json_t *facts = op->move.facts ? json_deep_copy (op->move.facts) : json_object ();
    if (done && op->action->defines) {
        json_t *consoles = zv_compute_op_facts (op);
        json_object_update (facts, consoles);
        json_decref (consoles);
    }
    int power = op->virt && op->power != ZV_POWER_NOSTATE ? (int) op->power : -1;
    zv_compute_move_report (self, op, done ? "done" : "failed", op->status, op->errbuf, power, facts);
    //  A domain that left this host gives its serial port back.
    if (done && op->virt && op->power == ZV_POWER_NOSTATE)
        json_object_del (self->serial_ports, op->uuid);
    s_end (self, op);
    zv_compute_op_destroy (&op);
}

static int
s_delay_fire (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_compute_op_t *op = (zv_compute_op_t *) arg;
    op->move.timer = -1;
    s_report (op->move.compute, op);
    return 0;
}

void
zv_compute_move_finished (zv_compute_t *self, zv_compute_op_t *op)
{
    if (op->move.cancelled) {
        zv_info (self->name, op->rq, "instance %s: migration %s phase %s ended after a later phase came: "
                 "not reported", op->uuid, op->move.id, op->action->phase);
        s_end (self, op);
        zv_compute_op_destroy (&op);
        return;
    }
    if (op->status == ZV_OK)
        zv_info (self->name, op->rq, "instance %s: migration %s phase %s done%s%s", op->uuid, op->move.id,
                 op->action->phase, *op->note ? ": " : "", op->note);
    else
        zv_warning (self->name, op->rq, "instance %s: migration %s phase %s failed: %s", op->uuid, op->move.id,
                    op->action->phase, op->errbuf);
    if (op->status == ZV_OK && self->cfg.debug_move_delay_ms > 0 && !self->stopping) {
        op->move.stage = ZV_MOVE_DELAYED;
        op->move.timer = zloop_timer (self->loop, (size_t) self->cfg.debug_move_delay_ms, 1, s_delay_fire, op);
        return;
    }
    s_report (self, op);
}

void
zv_compute_moves_destroy (zv_compute_t *self)
{
    self->stopping = true;
    zlistx_t *queue = (zlistx_t *) zhashx_first (self->move_queues);
    while (queue) {
        zv_compute_op_t *op = (zv_compute_op_t *) zlistx_first (queue);
        while (op) {
            if (op->move.stage != ZV_MOVE_RUNNING) {
                zv_movepull_destroy (&op->move.pull);
                if (op->move.timer >= 0)
                    zloop_timer_end (self->loop, op->move.timer);
                op->move.timer = -1;
                zv_compute_op_destroy (&op);
            }
            op = (zv_compute_op_t *) zlistx_next (queue);
        }
        queue = (zlistx_t *) zhashx_next (self->move_queues);
    }
    zhashx_purge (self->move_queues);
    zhashx_purge (self->moves);
}
