/*  migrate_dst.c: what a move's destination host does (named as libvirt
    names code by where it runs): prepare for the instance, pull its files
    and finish, revert (forget it again), and rebuild it when its host is
    down (evacuate).

    The hypervisor calls of each phase are the run function of its row in
    ops.c's table (on a worker on QEMU, on the loop on the test driver).
    finish begins on the loop: on local storage it pulls the source's files
    through the conductor (zv_movepull: chunks into .part files, resumable,
    retried while a peer is away), reporting progress at most once a
    second and a step once every file is in place; then its op makes the
    domain of the new flavor.  rebuild reports its two steps, then builds.

    What tells a re-run where the phase stands: the domain (defined here
    means the files were in place; running means only the report was
    lost), the files in place with the right sha256, the .part files, and
    the "made" marker (<instances_path>/.zova-made-<migration>), written
    when this host made the instance's directory, so that a rollback
    removes only what the destination made, never a directory it shares
    with the source.                                                        */

#include "actors/compute/compute.h"
#include "virt/zv_disk.h"
#include "virt/zv_movefiles.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

//  The destination's transfer: bytes per call and calls in flight.
#define S_CHUNK_SIZE    (1024 * 1024)
#define S_CHUNK_WINDOW  8

//  An empty file at path (kept when it exists).
static zv_status_t
s_touch (zv_compute_op_t *op, const char *path)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf (op->errbuf, sizeof op->errbuf, "cannot write %s: %s", path, strerror (errno));
        return ZV_EIO;
    }
    close (fd);
    return ZV_OK;
}

//  ---------------------------------------------------------------------
//  prepare: the instance's directory and the shared-storage marker

zv_status_t
zv_compute_move_dst_prepare (zv_compute_op_t *op)
{
    if (!op->real)
        return ZV_OK;
    char made [1300], marker [1300];
    zv_compute_move_marker (op, "made", made, sizeof made);
    zv_compute_move_marker (op, "shared", marker, sizeof marker);
    if (zv_disk_mkdirs (op->move.instances_path) != 0) {
        snprintf (op->errbuf, sizeof op->errbuf, "cannot create %s: %s", op->move.instances_path, strerror (errno));
        return ZV_EIO;
    }
    zv_status_t status = ZV_OK;
    //  A directory that is there already is the source's (shared storage,
    //  or this very host): not this phase's to remove on a rollback.
    if (!zv_compute_exists (op->dir)) {
        status = s_touch (op, made);
        if (status == ZV_OK && zv_disk_mkdirs (op->dir) != 0) {
            snprintf (op->errbuf, sizeof op->errbuf, "cannot create %s: %s", op->dir, strerror (errno));
            status = ZV_EIO;
        }
    }
    if (status == ZV_OK)
        status = s_touch (op, marker);
    if (status == ZV_OK)
        op->move.facts = json_pack ("{s:s}", "marker", strrchr (marker, '/') + 1);
    return status;
}

//  ---------------------------------------------------------------------
//  finish: the files, then the domain of the new flavor

static void
s_finish_run (zv_compute_t *self, zv_compute_op_t *op, int64_t total)
{
    zv_compute_move_report (self, op, "step", ZV_OK, NULL, -1,
                            json_pack ("{s:I, s:I}", "bytes_copied", (json_int_t) total,
                                       "bytes_total", (json_int_t) total));
    op->move.stage = ZV_MOVE_RUNNING;
    zv_compute_op_start (self, op);
}

static void
s_finish_progress (void *actor, void *ctx, int64_t copied, int64_t total)
{
    zv_compute_move_report ((zv_compute_t *) actor, (zv_compute_op_t *) ctx, "progress", ZV_OK, NULL, -1,
                            json_pack ("{s:I, s:I}", "bytes_copied", (json_int_t) copied,
                                       "bytes_total", (json_int_t) total));
}

static int64_t
s_manifest_bytes (const json_t *files)
{
    int64_t total = 0;
    size_t index;
    const json_t *file;
    json_array_foreach (files, index, file)
        total += json_integer_value (json_object_get (file, "size"));
    return total;
}

static void
s_finish_pulled (void *actor, void *ctx, zv_status_t status, const char *errtext)
{
    zv_compute_t *self = (zv_compute_t *) actor;
    zv_compute_op_t *op = (zv_compute_op_t *) ctx;
    zv_movepull_destroy (&op->move.pull);
    if (status != ZV_OK) {
        op->status = status;
        snprintf (op->errbuf, sizeof op->errbuf, "%s", errtext);
        zv_compute_op_report (self, op);
        return;
    }
    s_finish_run (self, op, s_manifest_bytes (json_object_get (op->move.migration, "files")));
}

void
zv_compute_move_dst_finish_begin (zv_compute_t *self, zv_compute_op_t *op)
{
    const json_t *files = json_object_get (op->move.migration, "files");
    //  Nothing to carry: the test driver, shared storage, an empty
    //  manifest.  A domain defined here already had its files in place.
    if (!zv_compute_virt_ready (self) || !zv_compute_real (self) || op->move.shared == 1
    ||  json_array_size (files) == 0
    ||  self->driver->power_state (self->virt, op->uuid) != ZV_POWER_NOSTATE) {
        s_finish_run (self, op, 0);
        return;
    }
    char dir [1200];
    zv_compute_instance_dir (self, op->uuid, dir, sizeof dir);
    zv_movepull_args_t args = {
        .dir = dir, .uuid = op->uuid, .migration = op->move.id, .rq = op->rq, .files = files,
        .chunk_size = S_CHUNK_SIZE, .window = S_CHUNK_WINDOW,
        .timeout_ms = self->cfg.move_transfer_timeout_s * 1000
    };
    op->status = zv_movefiles_check (files, op->errbuf, sizeof op->errbuf);
    if (op->status == ZV_OK) {
        op->move.pull = zv_movepull_start (self->link, self->workers, self->loop, self, &args, s_finish_progress,
                                           s_finish_pulled, op, op->errbuf, sizeof op->errbuf);
        if (!op->move.pull)
            op->status = ZV_EIO;
    }
    if (op->status != ZV_OK)
        zv_compute_op_report (self, op);
}

zv_status_t
zv_compute_move_dst_finish (zv_compute_op_t *op)
{
    //  It runs: this phase ran to its end before, only its report was lost.
    if (zv_compute_move_runs (op))
        return ZV_OK;
    zv_status_t status = ZV_OK;
    if (op->real) {
        if (!zv_compute_exists (op->disk)) {
            snprintf (op->errbuf, sizeof op->errbuf, "the root disk %s is not on this host: nothing was carried",
                      op->disk);
            return ZV_ENOTFOUND;
        }
        //  Its backing file is this host's cached image; it grows to the
        //  new flavor (never shrinks); what it carried refers to nothing
        //  else; what the new flavor adds is made.
        status = zv_compute_move_rebase (op);
        json_int_t disk_gb = json_integer_value (json_object_get (json_object_get (op->instance, "flavor"),
                                                                  "disk_gb"));
        if (status == ZV_OK && disk_gb > 0)
            status = zv_disk_resize (op->disk, (int64_t) disk_gb, op->errbuf, sizeof op->errbuf);
        static const char *carried [] = { "disk.local", "disk.swap" };
        for (size_t index = 0; status == ZV_OK && index < sizeof carried / sizeof carried [0]; index++) {
            char path [1300];
            snprintf (path, sizeof path, "%s/%s", op->dir, carried [index]);
            if (zv_compute_exists (path))
                status = zv_disk_standalone (path, op->errbuf, sizeof op->errbuf);
        }
        if (status == ZV_OK)
            status = zv_compute_op_make_disks (op);
    }
    if (status == ZV_OK)
        status = zv_compute_move_define (op);
    //  Where the storage stands is the conductor's now: the markers go.
    if (status == ZV_OK && op->real && op->move.shared >= 0)
        zv_compute_move_forget_markers (op);
    return status;
}

//  ---------------------------------------------------------------------
//  revert, cleanup_dest: the destination forgets the instance

zv_status_t
zv_compute_move_dst_revert (zv_compute_op_t *op)
{
    //  On the same host the domain is the source's until the source's
    //  phase ran (it reported the storage): then the one finish made.
    if (!op->move.same_host || op->move.shared >= 0) {
        zv_status_t status = op->driver->destroy (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
        if (status != ZV_OK)
            return status;
    }
    if (!op->real) {
        //  The test driver's hosts keep only libvirt.xml there.
        if (!op->move.same_host)
            zv_disk_remove_dir (op->dir);
        return ZV_OK;
    }
    char made [1300];
    zv_compute_move_marker (op, "made", made, sizeof made);
    bool ours = !op->move.same_host
             && (op->move.shared == 0 || (op->move.shared < 0 && zv_compute_exists (made)));
    if (ours && zv_disk_remove_dir (op->dir) != 0) {
        snprintf (op->errbuf, sizeof op->errbuf, "cannot remove %s: %s", op->dir, strerror (errno));
        return ZV_EIO;
    }
    zv_compute_move_forget_markers (op);
    return ZV_OK;
}

//  ---------------------------------------------------------------------
//  rebuild: the instance of a host that is down, made here

void
zv_compute_move_dst_rebuild_begin (zv_compute_t *self, zv_compute_op_t *op)
{
    //  rebuild_block_device_mapping, then rebuild_spawning: the conductor
    //  moves the task at each.
    zv_compute_move_report (self, op, "step", ZV_OK, NULL, -1, NULL);
    zv_compute_move_report (self, op, "step", ZV_OK, NULL, -1, NULL);
    op->move.stage = ZV_MOVE_RUNNING;
    zv_compute_op_start (self, op);
}

zv_status_t
zv_compute_move_dst_rebuild (zv_compute_op_t *op)
{
    bool shared = op->move.shared == 1;
    char made [1300];
    zv_compute_move_marker (op, "made", made, sizeof made);
    //  Shared storage: the disks are here already (Nova's instance_on_disk),
    //  unless this host made them on an earlier run of this phase.
    if (op->real && op->move.shared < 0) {
        shared = !zv_compute_exists (made) && zv_compute_exists (op->disk);
        if (!shared) {
            zv_disk_mkdirs (op->move.instances_path);
            if (s_touch (op, made) != ZV_OK)
                return ZV_EIO;
        }
    }
    op->move.facts = json_pack ("{s:b}", "shared", shared);
    if (zv_compute_move_runs (op))
        return ZV_OK;
    //  The disks that are there are kept (shared: the instance's own; on a
    //  second run: those the first made); the missing ones are made from
    //  the image, as a build makes them: the data of local disks is lost.
    zv_status_t status = zv_compute_move_rebase (op);
    if (status == ZV_OK)
        status = zv_compute_op_make_disks (op);
    if (status == ZV_OK)
        status = zv_compute_move_define (op);
    if (status == ZV_OK && op->real)
        unlink (made);
    return status;
}
