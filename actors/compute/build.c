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
    zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
    zv_msg_set_rq (msg, op->rq);
    json_t *body = json_pack ("{s:s, s:[s], s:{s:s}}", "uuid", op->uuid,
                              "expected_task_state", s_build_steps [op->step],
                              "changes", "task_state", s_build_steps [op->step + 1]);
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_build_step_done, op, zv_compute_op_free);
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
        zv_compute_remove_instance_dir (self, op->uuid);
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
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_build_final_done, op, zv_compute_op_free);
}
