/*  scheduler.c: the scheduler actor: answers select_destinations from a
    view of the hosts that it refreshes from the conductor.

    Its filters, weighers and host_subset_size come from [filter_scheduler];
    an unknown filter name fails the start with the names that are known.
    One thread, one zloop, one link.  Every host_refresh_interval_ms it asks
    the conductor for host states (inventory, usage from claims, service up
    and enabled) and replaces its view; between refreshes its own choices
    are consumed in the view (zv_sched).  A stale view can only make a
    choice worse, never over-commit a host: the conductor's claim, in one
    store transaction, is the judge, and it tries the alternates.          */

#include "zv_actors.h"
#include "zv_link.h"
#include "zv_sched.h"

typedef struct {
    zv_config_t cfg;
    char name [300];
    zloop_t *loop;
    zv_link_t *link;
    zv_sched_t *sched;
    bool refreshing;
} self_t;

static void
s_refresh_done (void *actor, void *ctx, zv_msg_t *reply)
{
    (void) ctx;
    self_t *self = (self_t *) actor;
    self->refreshing = false;
    if (zv_msg_status (reply) != ZV_OK) {
        zv_debug (self->name, NULL, "host refresh: %s", zv_msg_error_text (reply));
        return;
    }
    json_t *hosts = json_incref (json_object_get (zv_msg_body (reply), "hosts"));
    if (json_is_array (hosts))
        zv_sched_set_hosts (self->sched, &hosts);
    json_decref (hosts);
}

static void
s_refresh (self_t *self)
{
    if (self->refreshing)
        return;
    self->refreshing = true;
    zv_msg_t *msg = zv_msg_new ("conductor.host_states");
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_refresh_done, NULL, NULL);
}

static int
s_refresh_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_refresh ((self_t *) arg);
    return 0;
}

static void
s_on_epoch (void *actor, const char *epoch)
{
    (void) epoch;
    s_refresh ((self_t *) actor);
}

static void
s_serve (void *actor, zv_msg_t *msg)
{
    self_t *self = (self_t *) actor;
    zv_msg_t *reply;
    if (streq (zv_msg_type (msg), "scheduler.select_destinations")) {
        zv_status_t status;
        json_t *body = zv_msg_body (msg);
        json_t *destinations = zv_sched_select (self->sched, json_object_get (body, "spec"),
                                                (int) zv_msg_get_int (msg, "num_instances", 1),
                                                json_object_get (body, "ignore_hosts"), &status);
        if (destinations) {
            reply = zv_msg_reply (msg);
            json_t *answer = json_pack ("{s:o}", "destinations", destinations);
            zv_msg_set_body (reply, &answer);
        }
        else {
            zv_info (self->name, zv_msg_rq (msg), "no valid host among %zu", zv_sched_host_count (self->sched));
            reply = zv_msg_error (msg, status, "No valid host was found. There are not enough hosts available.");
        }
    }
    else
        reply = zv_msg_error (msg, ZV_EINVAL, "message type '%s' is not served by the scheduler",
                              zv_msg_type (msg));
    zv_msg_set_src (reply, self->name);
    //  Replies go back on the link's DEALER: the conductor matches "re".
    zv_msg_send (&reply, zv_link_socket (self->link));
}

void
zv_scheduler_actor (zsock_t *pipe, void *args)
{
    const zv_actor_args_t *actor_args = (const zv_actor_args_t *) args;
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->cfg = actor_args->config;
    snprintf (self->name, sizeof self->name, "scheduler.%s", self->cfg.host);
    //  zv_config_load has applied the deprecated [scheduler] aliases.
    zv_sched_options_t options = {
        .enabled_filters = self->cfg.filter_enabled_filters,
        .host_subset_size = self->cfg.host_subset_size,
        .max_attempts = self->cfg.max_attempts,
        .max_instances_per_host = self->cfg.max_instances_per_host,
        .ram_weight_multiplier = self->cfg.filter_ram_weight_multiplier,
        .cpu_weight_multiplier = self->cfg.cpu_weight_multiplier,
        .disk_weight_multiplier = self->cfg.disk_weight_multiplier,
        .build_failure_weight_multiplier = self->cfg.build_failure_weight_multiplier,
        .soft_affinity_weight_multiplier = self->cfg.soft_affinity_weight_multiplier,
        .soft_anti_affinity_weight_multiplier = self->cfg.soft_anti_affinity_weight_multiplier,
    };
    char errbuf [1200];
    self->sched = zv_sched_new (&options, errbuf, sizeof errbuf);
    self->loop = zloop_new ();
    zloop_set_nonstop (self->loop, true);
    if (self->sched)
        self->link = zv_link_new ("scheduler", actor_args, self->loop, self, s_serve, s_on_epoch, NULL);
    if (!self->sched || !self->link) {
        if (!self->sched)
            zv_error (self->name, NULL, "[filter_scheduler] %s", errbuf);
        zv_actor_start_failed (pipe);
    }
    else {
        zloop_reader (self->loop, pipe, zv_actor_pipe_readable, self);
        zloop_timer (self->loop, (size_t) self->cfg.host_refresh_interval_ms, 0, s_refresh_timer, self);
        zv_link_heartbeat (self->link);
        s_refresh (self);
        zv_info (self->name, NULL, "serving (filters: %s; weighers: %s; host_subset_size: %d)",
                 *options.enabled_filters ? options.enabled_filters : "none",
                 zv_sched_describe_weighers (self->sched), options.host_subset_size);
        zsock_signal (pipe, 0);
        zloop_start (self->loop);
    }
    zv_link_destroy (&self->link);
    zloop_destroy (&self->loop);
    zv_sched_destroy (&self->sched);
    free (self);
}
