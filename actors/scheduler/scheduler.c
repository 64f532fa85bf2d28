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

#include "actors/zv_actors.h"
#include "bus/zv_link.h"
#include "actors/scheduler/zv_sched.h"

typedef struct {
    zv_config_t cfg;
    char name [300];
    zloop_t *loop;
    zv_link_t *link;
    zv_sched_t *sched;
    bool refreshing;
    bool refresh_again;             //  a refresh was wanted while one was in flight
    uint64_t refresh_sent;          //  refreshes sent so far
    zlistx_t *deferred;             //  s_deferred_t: asks waiting for a fresher view
} self_t;

//  A select_destinations that found no host on the current view, waiting
//  for a refresh sent after it arrived: what the view lacked may be a host
//  that reported in since (start-up, a host just enabled).
typedef struct {
    zv_msg_t *request;              //  enough of the request to answer it
    uint64_t after;                 //  served once refresh number `after` is in
} s_deferred_t;

static void s_answer (self_t *self, zv_msg_t *msg, bool final);
static void s_refresh (self_t *self);

static void
s_refresh_done (void *actor, void *ctx, zv_msg_t *reply)
{
    self_t *self = (self_t *) actor;
    uint64_t number = (uint64_t) (uintptr_t) ctx;
    self->refreshing = false;
    if (zv_msg_status (reply) != ZV_OK)
        zv_debug (self->name, NULL, "host refresh: %s", zv_msg_error_text (reply));
    else {
        json_t *hosts = json_incref (json_object_get (zv_msg_body (reply), "hosts"));
        if (json_is_array (hosts))
            zv_sched_set_hosts (self->sched, &hosts);
        json_decref (hosts);
    }
    //  Answer the asks this refresh was for (with whatever view there is
    //  now: a failed refresh must not keep them waiting), and refresh again
    //  for those that came while it was in flight.
    s_deferred_t *deferred = (s_deferred_t *) zlistx_first (self->deferred);
    while (deferred) {
        if (deferred->after <= number) {
            zlistx_delete (self->deferred, zlistx_cursor (self->deferred));
            s_answer (self, deferred->request, true);
            zv_msg_destroy (&deferred->request);
            free (deferred);
            deferred = (s_deferred_t *) zlistx_first (self->deferred);
        }
        else
            deferred = (s_deferred_t *) zlistx_next (self->deferred);
    }
    if (self->refresh_again) {
        self->refresh_again = false;
        s_refresh (self);
    }
}

static void
s_refresh (self_t *self)
{
    if (self->refreshing) {
        self->refresh_again = true;
        return;
    }
    self->refreshing = true;
    zv_msg_t *msg = zv_msg_new ("conductor.host_states");
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_refresh_done,
                  (void *) (uintptr_t) ++self->refresh_sent, NULL);
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

//  Answer one select_destinations.  When nothing fits and the answer is
//  not final yet, wait for a fresher view instead (once).
static void
s_answer (self_t *self, zv_msg_t *msg, bool final)
{
    zv_status_t status;
    json_t *body = zv_msg_body (msg);
    json_t *destinations = zv_sched_select (self->sched, json_object_get (body, "spec"),
                                            (int) zv_msg_get_int (msg, "num_instances", 1),
                                            json_object_get (body, "ignore_hosts"), &status);
    zv_msg_t *reply;
    if (destinations) {
        reply = zv_msg_reply (msg);
        json_t *answer = json_pack ("{s:o}", "destinations", destinations);
        zv_msg_set_body (reply, &answer);
    }
    else
    if (!final) {
        //  Keep what answering needs: type, id, request id, body.
        s_deferred_t *deferred = (s_deferred_t *) zmalloc (sizeof (s_deferred_t));
        deferred->request = zv_msg_request_stub (msg);
        json_t *copy = json_deep_copy (body);
        zv_msg_set_body (deferred->request, &copy);
        deferred->after = self->refresh_sent + 1;   //  the next refresh sent
        zlistx_add_end (self->deferred, deferred);
        s_refresh (self);
        return;
    }
    else {
        zv_info (self->name, zv_msg_rq (msg), "no valid host among %zu", zv_sched_host_count (self->sched));
        reply = zv_msg_error (msg, status, "No valid host was found. There are not enough hosts available.");
    }
    zv_msg_set_src (reply, self->name);
    //  Replies go back on the link's DEALER: the conductor matches "re".
    zv_msg_send (&reply, zv_link_socket (self->link));
}

static void
s_serve (void *actor, zv_msg_t *msg)
{
    self_t *self = (self_t *) actor;
    if (streq (zv_msg_type (msg), "scheduler.select_destinations")) {
        s_answer (self, msg, false);
        return;
    }
    zv_msg_t *reply = zv_msg_error (msg, ZV_EINVAL, "message type '%s' is not served by the scheduler",
                                    zv_msg_type (msg));
    zv_msg_set_src (reply, self->name);
    zv_msg_send (&reply, zv_link_socket (self->link));
}

void
zv_scheduler_actor (zsock_t *pipe, void *args)
{
    const zv_actor_args_t *actor_args = (const zv_actor_args_t *) args;
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->cfg = actor_args->config;
    snprintf (self->name, sizeof self->name, "scheduler.%s", self->cfg.host);
    self->deferred = zlistx_new ();
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
    s_deferred_t *deferred;
    while ((deferred = (s_deferred_t *) zlistx_detach (self->deferred, NULL))) {
        zv_msg_destroy (&deferred->request);
        free (deferred);
    }
    zlistx_destroy (&self->deferred);
    free (self);
}
