/*  build.c: a build on this host, from compute.build_instance to the
    report that the instance is active (or why it is not).

    A build walks Nova's task states with a compare-and-swap at each step
    (scheduling -> networking -> block_device_mapping -> spawning), each
    an rpc whose continuation takes the next step, so the loop never blocks
    on the conductor and a delete that lands mid-build makes the next
    step's CAS fail and the build stop.  At spawning the build is an op
    (ops.c's "create" row): its images, its disks, its domain; its report
    (below) either makes the instance active or hands it back to the
    conductor to reschedule, with what was made for it removed.           */

#include "actors/compute/compute.h"

//  ---------------------------------------------------------------------
//  The steps

static const char *s_build_steps [] = { "scheduling", "networking", "block_device_mapping", "spawning" };
#define S_BUILD_STEPS (sizeof (s_build_steps) / sizeof (s_build_steps [0]))

static void s_build_step (zv_compute_t *self, zv_compute_op_t *op);

static void
s_build_step_done (void *actor, void *ctx, zv_msg_t *reply)
{
    zv_compute_t *self = (zv_compute_t *) actor;
    zv_compute_op_t *op = (zv_compute_op_t *) ctx;
    if (zv_msg_status (reply) != ZV_OK) {
        zv_warning (self->name, op->rq, "instance %s: build stopped at %s: %s", op->uuid,
                    s_build_steps [op->step], zv_msg_error_text (reply));
        zv_compute_op_destroy (&op);
        return;
    }
    op->step++;
    if ((size_t) op->step + 1 < S_BUILD_STEPS)
        s_build_step (self, op);
    else
        zv_compute_op_start (self, op);
}

//  Move the instance from step to step + 1 (compare-and-swap).
static void
s_build_step (zv_compute_t *self, zv_compute_op_t *op)
{
    zv_compute_report (self, op->uuid, op->rq, s_build_steps [op->step], ZV_OUTCOME_STEP, ZV_OK, NULL, -1,
                       NULL, s_build_step_done, op, zv_compute_op_free);
}

void
zv_compute_build_instance (zv_compute_t *self, zv_msg_t *msg)
{
    zv_compute_op_t *op = zv_compute_op_new (self, msg, zv_compute_action_build ());
    if (!op)
        return;
    zv_debug (self->name, op->rq, "building %s", op->uuid);
    s_build_step (self, op);
}

//  ---------------------------------------------------------------------
//  The report

static void
s_build_final_done (void *actor, void *ctx, zv_msg_t *reply)
{
    zv_compute_t *self = (zv_compute_t *) actor;
    zv_compute_op_t *op = (zv_compute_op_t *) ctx;
    if (zv_msg_status (reply) != ZV_OK)
        //  Most often a delete that came in meanwhile: its terminate
        //  destroys the domain.  Otherwise the next sync reconciles.
        zv_warning (self->name, op->rq, "instance %s: final update refused: %s", op->uuid,
                    zv_msg_error_text (reply));
    else
        zv_info (self->name, op->rq, "instance %s is active", op->uuid);
    zv_compute_op_destroy (&op);
}

void
zv_compute_build_report (zv_compute_t *self, zv_compute_op_t *op)
{
    if (op->status != ZV_OK) {
        zv_warning (self->name, op->rq, "instance %s: spawn failed: %s", op->uuid, op->errbuf);
        //  What was made for this instance goes; shared things stay.  The
        //  conductor reschedules the build or puts it in ERROR.
        if (op->virt) {
            char errbuf [512];
            op->driver->destroy (op->virt, op->uuid, errbuf, sizeof errbuf);
        }
        zv_compute_remove_instance_dir (self, op->uuid);
    }
    zv_compute_report (self, op->uuid, op->rq, "spawning", op->status == ZV_OK ? ZV_OUTCOME_DONE : ZV_OUTCOME_FAILED,
                       op->status, op->status == ZV_OK ? NULL : op->errbuf,
                       op->status == ZV_OK && op->virt ? (int) op->power : -1,
                       op->status == ZV_OK ? zv_compute_op_facts (op) : NULL,
                       s_build_final_done, op, zv_compute_op_free);
}
