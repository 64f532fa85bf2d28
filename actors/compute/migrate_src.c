/*  migrate_src.c: what a move's source host does (named as libvirt names
    code by where it runs): power the guest off, undefine it and set its
    files aside,
    serve them chunk by chunk, and at the end confirm (forget it) or revert
    (take it back).

    The hypervisor calls of each phase are the run function of its row in
    ops.c's table: on a worker on QEMU (a clean shutdown waits on the
    guest, hashing a disk reads all of it), on the loop on the test driver,
    where there is no storage and a phase is a domain call or nothing.  They
    touch only their op.  compute.move_read is answered on the loop: one
    pread of a chunk the destination asked for, mostly from the page cache.

    What tells a re-run where the phase stands: the marker of prepare,
    renamed "shared-seen" once seen, so that a second run still knows the
    storage is shared; <uuid>_resize, which exists once the files were set
    aside (local storage) and until they are confirmed away or moved back. */

#include "actors/compute/compute.h"
#include "virt/zv_disk.h"
#include "virt/zv_movefiles.h"
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  source: power off, set the files aside, say what they are

//  Is the storage of the instance directory shared with the destination?
//  As the conductor knows it once this phase reported, else by prepare's
//  marker in this host's own instances path.
bool
zv_compute_move_shared (zv_compute_op_t *op)
{
    if (op->move.shared >= 0)
        return op->move.shared == 1;
    if (!op->real)
        return false;
    char marker [1300], seen [1300];
    zv_compute_move_marker (op, "shared", marker, sizeof marker);
    zv_compute_move_marker (op, "shared-seen", seen, sizeof seen);
    if (rename (marker, seen) == 0)
        return true;
    return zv_compute_exists (seen);
}

zv_status_t
zv_compute_move_src_source (zv_compute_op_t *op)
{
    bool shared = zv_compute_move_shared (op);
    bool clean = false;
    zv_status_t status = zv_compute_op_power_off (op, op->shutdown_timeout_s, &clean);
    if (status != ZV_OK)
        return status;
    if (!clean && op->shutdown_timeout_s > 0)
        snprintf (op->note, sizeof op->note, "the guest did not shut down within %d s: powered off",
                  op->shutdown_timeout_s);
    //  The domain leaves this host now (its XML stays in the directory
    //  set aside): one host defines it at any time, and nothing here can
    //  start it while the destination runs it.  A revert defines it again.
    if (!op->move.same_host) {
        status = op->driver->destroy (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
        if (status != ZV_OK && status != ZV_ENOTFOUND)
            return status;
    }
    json_t *files = json_array ();
    if (op->real && !shared) {
        //  Set aside once: a second run finds <uuid>_resize there.
        if (!zv_compute_exists (op->move.resize_dir) && rename (op->dir, op->move.resize_dir) != 0) {
            snprintf (op->errbuf, sizeof op->errbuf, "cannot set %s aside as %s: %s", op->dir,
                      op->move.resize_dir, strerror (errno));
            json_decref (files);
            return errno == ENOENT ? ZV_ENOTFOUND : ZV_EIO;
        }
        json_decref (files);
        files = zv_movefiles_manifest (op->move.resize_dir, op->errbuf, sizeof op->errbuf);
        if (!files)
            return ZV_EIO;
    }
    op->move.facts = json_pack ("{s:b, s:o}", "shared", shared, "files", files);
    return ZV_OK;
}

//  ---------------------------------------------------------------------
//  compute.move_read: a chunk of a file set aside

void
zv_compute_move_src_read (zv_compute_t *self, zv_msg_t *msg)
{
    const char *uuid = zv_msg_get_str (msg, "uuid");
    const char *file = zv_msg_get_str (msg, "file");
    int64_t offset = zv_msg_get_int (msg, "offset", -1);
    int64_t length = zv_msg_get_int (msg, "length", 0);
    zv_msg_t *reply;
    char dir [1300], errbuf [1024];
    void *data = NULL;
    size_t got = 0;
    int64_t size = 0;
    //  The catalogue checked the uuid; the name is checked before it is
    //  joined to a path.
    snprintf (dir, sizeof dir, "%s/%s_resize", self->instances_path, uuid);
    zv_status_t status = zv_movefiles_read (dir, file, offset, length, &data, &got, &size, errbuf, sizeof errbuf);
    if (status != ZV_OK) {
        zv_warning (self->name, zv_msg_rq (msg), "instance %s: migration %s: move_read refused: %s", uuid,
                    zv_msg_get_str (msg, "migration"), errbuf);
        reply = zv_msg_error (msg, status, "%s", errbuf);
    }
    else {
        reply = zv_msg_reply (msg);
        json_t *body = json_pack ("{s:I, s:I, s:I}", "offset", (json_int_t) offset, "length", (json_int_t) got,
                                  "size", (json_int_t) size);
        zv_msg_set_body (reply, &body);
        zv_msg_set_payload (reply, data, got);
        free (data);
    }
    zv_compute_answer (self, &reply);
}

//  ---------------------------------------------------------------------
//  confirm: the move stands, the source forgets the instance

zv_status_t
zv_compute_move_src_confirm (zv_compute_op_t *op)
{
    //  The source phase undefined the domain; a source that ran an older
    //  build may still hold it.  On the same host it is the destination's.
    if (!op->move.same_host) {
        zv_status_t status = op->driver->destroy (op->virt, op->uuid, op->errbuf, sizeof op->errbuf);
        if (status != ZV_OK && status != ZV_ENOTFOUND)
            return status;
    }
    //  The test driver's hosts keep only libvirt.xml there.
    if (!op->real && !op->move.same_host)
        zv_disk_remove_dir (op->dir);
    if (op->real) {
        if (zv_disk_remove_dir (op->move.resize_dir) != 0) {
            snprintf (op->errbuf, sizeof op->errbuf, "cannot remove %s: %s", op->move.resize_dir, strerror (errno));
            return ZV_EIO;
        }
        zv_compute_move_forget_markers (op);
    }
    return ZV_OK;
}

//  ---------------------------------------------------------------------
//  revert_source, restore_source: the source takes the instance back

zv_status_t
zv_compute_move_src_revert (zv_compute_op_t *op)
{
    if (op->real && op->move.shared != 1 && zv_compute_exists (op->move.resize_dir)) {
        if (zv_compute_exists (op->dir)) {
            snprintf (op->errbuf, sizeof op->errbuf, "both %s and %s exist: left as they are for an operator",
                      op->dir, op->move.resize_dir);
            return ZV_ECONFLICT;
        }
        if (rename (op->move.resize_dir, op->dir) != 0) {
            snprintf (op->errbuf, sizeof op->errbuf, "cannot move %s back to %s: %s", op->move.resize_dir,
                      op->dir, strerror (errno));
            return ZV_EIO;
        }
    }
    //  A guest that never stopped (the move failed before the source's
    //  phase) runs on as it is.
    zv_status_t status = ZV_OK;
    if (!zv_compute_move_runs (op)) {
        status = zv_compute_move_rebase (op);
        if (status == ZV_OK)
            status = zv_compute_move_define (op);
    }
    if (status == ZV_OK && op->real)
        zv_compute_move_forget_markers (op);
    return status;
}
