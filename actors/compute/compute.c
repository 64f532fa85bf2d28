/*  compute.c: one hypervisor host.  Builds, operates and destroys domains
    through the driver table and reports every step to the conductor; never
    opens the store.

    One thread, one zloop, one link (DEALER "compute.<host>") to the
    conductor; the state is one zv_compute_t (compute.h, which also maps
    the other files of this folder).  This file is the actor itself: its
    state's lifetime, its timers, and the route table of the message types
    it serves, each handled in the file of its concern.  The loop never
    waits: the conductor is answered through rpc continuations, and what
    waits on a guest runs on the workers (zv_workers).  While the
    hypervisor is unreachable the host heartbeats as degraded and
    reconnects with backoff (host.c).  The image cache cleans itself on
    a timer of its own, as Nova's image cache manager does.                */

#include "actors/compute/compute.h"
#include "common/zv_sha256.h"

#define ACTOR_PREFIX "compute"
#define S_CHUNK_SIZE (1024 * 1024)
#define S_CHUNK_WINDOW 4

//  ---------------------------------------------------------------------
//  Messages from the conductor: one row per type compute serves

static const struct {
    const char *type;
    zv_compute_serve_fn *serve;
} s_routes [] = {
    { "compute.build_instance",     zv_compute_build_instance },
    { "compute.instance_action",    zv_compute_instance_action },
    { "compute.terminate_instance", zv_compute_terminate_instance },
    { "compute.sync_now",           zv_compute_sync_now },
    { "compute.console_log",        zv_compute_console_log },
    { "compute.screenshot",         zv_compute_screenshot },
    //  A move's phases (migrate.c); its files, read on the source.
    { "compute.move_prepare",       zv_compute_move_cast },
    { "compute.move_source",        zv_compute_move_cast },
    { "compute.move_finish",        zv_compute_move_cast },
    { "compute.move_confirm",       zv_compute_move_cast },
    { "compute.move_revert",        zv_compute_move_cast },
    { "compute.move_rebuild",       zv_compute_move_cast },
    { "compute.move_live_check",    zv_compute_move_cast },
    { "compute.move_live_pre",      zv_compute_move_cast },
    { "compute.move_live",          zv_compute_move_cast },
    { "compute.move_live_post",     zv_compute_move_cast },
    { "compute.move_live_control",  zv_compute_live_control },
    { "compute.move_read",          zv_compute_move_src_read },
};

static void
s_serve (void *actor, zv_msg_t *msg)
{
    zv_compute_t *self = (zv_compute_t *) actor;
    const char *type = zv_msg_type (msg);
    for (size_t index = 0; index < sizeof s_routes / sizeof s_routes [0]; index++)
        if (streq (s_routes [index].type, type)) {
            s_routes [index].serve (self, msg);
            return;
        }
    zv_warning (self->name, zv_msg_rq (msg), "message type %s is not served by compute", type);
}

void
zv_compute_answer (zv_compute_t *self, zv_msg_t **reply_p)
{
    zv_msg_set_src (*reply_p, self->name);
    if (zv_msg_send (reply_p, zv_link_socket (self->link)) != 0)
        zv_msg_destroy (reply_p);
}

//  ---------------------------------------------------------------------
//  Timers

static void
s_on_epoch (void *actor, const char *epoch)
{
    (void) epoch;
    zv_compute_sync ((zv_compute_t *) actor);
}

static int
s_sync_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_compute_sync ((zv_compute_t *) arg);
    return 0;
}

//  Every 500 ms: agents due to be asked again; and while the hypervisor
//  is away, another try at its backoff (the heartbeat reports degraded
//  meanwhile).
static int
s_tick_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_compute_t *self = (zv_compute_t *) arg;
    zv_compute_guest_retry_due (self);
    if (!self->virt || self->virt_lost) {
        bool was = *self->degraded != 0;
        if (zv_compute_virt_ready (self) && was)
            zv_link_heartbeat (self->link);
    }
    return 0;
}

//  Every [image_cache] manager_interval: a pass of the image cache's
//  cleaner (zv_imagecache_clean: the disks are read on the workers).  A
//  host on libvirt's test driver has no disks, so no cache to clean.
static int
s_image_cache_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_compute_t *self = (zv_compute_t *) arg;
    if (zv_compute_real (self))
        zv_imagecache_clean (self->cache, self->instances_path, self->cfg.remove_unused_original_minimum_age_s,
                             self->cfg.remove_unused_base_images, NULL, NULL);
    return 0;
}

//  ---------------------------------------------------------------------
//  The actor

void
zv_compute_actor (zsock_t *pipe, void *args)
{
    const zv_actor_args_t *actor_args = (const zv_actor_args_t *) args;
    zv_compute_t *self = (zv_compute_t *) zmalloc (sizeof (zv_compute_t));
    self->cfg = actor_args->config;
    self->pipe = pipe;
    self->driver = &zv_virt_libvirt;
    self->started_ms = zv_now_ms ();
    self->event_timer = -1;
    self->event_uuids = json_object ();
    self->guest_retries = json_object ();
    self->serial_ports = json_object ();
    self->moves = zhashx_new ();
    self->move_queues = zhashx_new ();
    zhashx_set_destructor (self->move_queues, (zhashx_destructor_fn *) zlistx_destroy);
    self->live_timer = -1;
    snprintf (self->name, sizeof self->name, ACTOR_PREFIX ".%s", self->cfg.host);
    if (*self->cfg.instances_path)
        snprintf (self->instances_path, sizeof self->instances_path, "%s", self->cfg.instances_path);
    else
        snprintf (self->instances_path, sizeof self->instances_path, "%s/instances", self->cfg.state_path);
    if (*self->cfg.image_cache_path)
        snprintf (self->cache_path, sizeof self->cache_path, "%s", self->cfg.image_cache_path);
    else
        snprintf (self->cache_path, sizeof self->cache_path, "%s/_base", self->instances_path);
    self->custom = zv_compute_custom_resources (self);
    self->loop = zloop_new ();
    zloop_set_nonstop (self->loop, true);
    self->workers = zv_workers_new (self->loop, self, self->cfg.workers);
    if (!zv_compute_virt_ready (self))
        zv_warning (self->name, NULL, "starting without a hypervisor connection; retrying");
    self->link = zv_link_new ("compute", actor_args, self->loop, self, s_serve, s_on_epoch, zv_compute_node_report);
    if (self->link)
        self->cache = zv_imagecache_new (self->cache_path, self->link, self->workers, self,
                                         S_CHUNK_SIZE, S_CHUNK_WINDOW);
    if (!self->link || !self->workers || !self->cache) {
        zv_actor_start_failed (pipe);
    }
    else {
        zloop_reader (self->loop, pipe, zv_actor_pipe_readable, self);
        zloop_timer (self->loop, (size_t) self->cfg.sync_power_state_interval_s * 1000, 0, s_sync_timer, self);
        zloop_timer (self->loop, 500, 0, s_tick_timer, self);
        //  Nova's values: -1 never, 0 at the default periodic rate.
        int interval_s = self->cfg.image_cache_manager_interval_s;
        if (interval_s >= 0)
            zloop_timer (self->loop, (size_t) (interval_s ? interval_s : 60) * 1000, 0, s_image_cache_timer, self);
        zv_compute_live_init (self);
        zv_link_heartbeat (self->link);
        zv_info (self->name, NULL, "serving %s (instances in %s)", self->cfg.connection_uri, self->instances_path);
        zsock_signal (pipe, 0);
        zloop_start (self->loop);
    }
    //  Moves and the cache first: their jobs run on the workers.
    zv_compute_moves_destroy (self);
    zv_imagecache_destroy (&self->cache);
    zv_workers_destroy (&self->workers);
    zv_compute_live_destroy (self);
    zv_link_destroy (&self->link);
    zv_compute_virt_drop (self);
    zloop_destroy (&self->loop);
    json_decref (self->custom);
    json_decref (self->event_uuids);
    json_decref (self->guest_retries);
    json_decref (self->serial_ports);
    zhashx_destroy (&self->moves);
    zhashx_destroy (&self->move_queues);
    free (self);
    //  The image cache hashed on this thread, which zactor does not join.
    zv_sha256_thread_end ();
}
