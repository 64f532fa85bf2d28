/*  sync.c: what the hypervisor holds, told to the conductor, and what the
    conductor answers to finish: syncs, domain events, terminate.

    Power state: libvirt's domain events (lifecycle, guest agent) arrive on
    the driver's event fd; the uuids they name are synced with the conductor
    in one partial compute_sync a moment later (S_EVENT_DELAY_MS), so a
    burst of events costs one message.  A full sync (at start, when the
    conductor's epoch changes, after the hypervisor connection comes back,
    and every sync_power_state_interval) lists every domain: the conductor
    reconciles and answers which deletes to finish and which orphan domains
    (of no live instance) to reap.  A connection that closes is dropped
    here; host.c reconnects it with backoff while the heartbeat reports the
    host degraded.  The answer also names the instances evacuated off this
    host while it was down: their domains are fenced (destroyed and
    undefined) and their files removed unless the storage is shared.        */

#include "actors/compute/compute.h"

#define S_EVENT_DELAY_MS 100        //  events are gathered this long into one sync

//  ---------------------------------------------------------------------
//  Terminate

static void
s_terminate_done (void *actor, void *ctx, zv_msg_t *reply)
{
    zv_compute_t *self = (zv_compute_t *) actor;
    char *uuid = (char *) ctx;
    if (zv_msg_status (reply) != ZV_OK)
        zv_warning (self->name, zv_msg_rq (reply), "instance %s: delete report refused: %s", uuid,
                    zv_msg_error_text (reply));
    free (uuid);
}

static void
s_terminate (zv_compute_t *self, const char *uuid, const char *action_rq)
{
    char errbuf [1024] = "";
    zv_status_t status = ZV_EUNAVAILABLE;
    if (zv_compute_virt_ready (self))
        status = self->driver->destroy (self->virt, uuid, errbuf, sizeof errbuf);
    else
        snprintf (errbuf, sizeof errbuf, "%s", *self->degraded ? self->degraded : "hypervisor unreachable");
    if (status != ZV_OK) {
        //  Nova puts an instance whose delete failed into ERROR (the state
        //  table says so); deleting it again retries.
        zv_warning (self->name, action_rq, "instance %s: destroy failed: %s", uuid, errbuf);
        zv_compute_report (self, uuid, action_rq, "deleting", ZV_OUTCOME_FAILED, status, errbuf, -1, NULL,
                           s_terminate_done, strdup (uuid), free);
        return;
    }
    zv_compute_remove_instance_dir (self, uuid);
    json_object_del (self->serial_ports, uuid);
    zv_msg_t *msg = zv_msg_new ("conductor.instance_destroyed");
    json_t *body = json_pack ("{s:s, s:s, s:s}", "uuid", uuid, "host", self->cfg.host,
                              "action_request_id", action_rq ? action_rq : "");
    zv_msg_set_rq (msg, action_rq);
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_terminate_done, strdup (uuid), free);
}

void
zv_compute_terminate_instance (zv_compute_t *self, zv_msg_t *msg)
{
    s_terminate (self, zv_msg_get_str (msg, "uuid"), zv_msg_get_str (msg, "action_request_id"));
}

//  ---------------------------------------------------------------------
//  Fencing

//  An instance evacuated off this host while it was down lives elsewhere
//  now: its domain here must never run again, and its directory goes
//  unless the storage is shared with the host it was rebuilt on
//  (keep_disks: the disks are the instance's own, in use there).
static void
s_fence (zv_compute_t *self, const char *uuid, bool keep_disks)
{
    if (!uuid || !zv_uuid_valid (uuid))
        return;
    char errbuf [512];
    zv_warning (self->name, NULL, "instance %s was evacuated off this host: removing its domain%s", uuid,
                keep_disks ? " (its disks stay: shared storage)" : " and its files");
    if (self->virt && self->driver->destroy (self->virt, uuid, errbuf, sizeof errbuf) != ZV_OK) {
        //  The next sync says it again.
        zv_warning (self->name, NULL, "cannot remove the domain of evacuated instance %s: %s", uuid, errbuf);
        return;
    }
    json_object_del (self->serial_ports, uuid);
    if (keep_disks)
        return;
    char resize [ZV_UUID_LEN + 16];
    snprintf (resize, sizeof resize, "%s_resize", uuid);
    zv_compute_remove_instance_dir (self, uuid);
    zv_compute_remove_instance_dir (self, resize);
}

//  ---------------------------------------------------------------------
//  Sync

static void
s_sync_done (void *actor, void *ctx, zv_msg_t *reply)
{
    (void) ctx;
    zv_compute_t *self = (zv_compute_t *) actor;
    if (zv_msg_status (reply) != ZV_OK) {
        zv_warning (self->name, NULL, "sync refused: %s", zv_msg_error_text (reply));
        return;
    }
    size_t index;
    json_t *item;
    json_array_foreach (json_object_get (zv_msg_body (reply), "terminate"), index, item)
        s_terminate (self, json_string_value (json_object_get (item, "uuid")),
                     json_string_value (json_object_get (item, "action_request_id")));
    json_array_foreach (json_object_get (zv_msg_body (reply), "evacuated"), index, item)
        s_fence (self, zv_compute_str (item, "uuid"), json_is_true (json_object_get (item, "keep_disks")));
    json_array_foreach (json_object_get (zv_msg_body (reply), "orphans"), index, item) {
        char errbuf [512];
        zv_warning (self->name, NULL, "reaping domain %s of no live instance", json_string_value (item));
        if (self->virt && self->driver->destroy (self->virt, json_string_value (item), errbuf, sizeof errbuf) != ZV_OK)
            zv_warning (self->name, NULL, "cannot reap %s: %s", json_string_value (item), errbuf);
    }
}

void
zv_compute_sync (zv_compute_t *self)
{
    if (!zv_compute_virt_ready (self))
        return;
    char errbuf [512];
    json_t *domains = self->driver->list (self->virt, errbuf, sizeof errbuf);
    if (!domains) {
        zv_warning (self->name, NULL, "cannot list domains: %s", errbuf);
        return;
    }
    //  Guests that run are asked what they are (a restart of this host
    //  missed their agents' connect events).
    size_t index;
    json_t *domain;
    if (!self->synced_virt && zv_compute_real (self))
        json_array_foreach (domains, index, domain)
            if (streq (zv_compute_str (domain, "power_state"), "running"))
                zv_compute_guest_query (self, zv_compute_str (domain, "uuid"), ZV_COMPUTE_GUEST_RETRIES - 1);
    self->synced_virt = true;
    zv_msg_t *msg = zv_msg_new ("conductor.compute_sync");
    json_t *body = json_pack ("{s:s, s:o, s:I}", "host", self->cfg.host, "domains", domains,
                              "started_ms", (json_int_t) self->started_ms);
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_sync_done, NULL, NULL);
}

void
zv_compute_sync_now (zv_compute_t *self, zv_msg_t *msg)
{
    (void) msg;
    zv_compute_sync (self);
}

//  ---------------------------------------------------------------------
//  Domain events

//  The domains events named, in one partial sync.
static int
s_event_flush (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zv_compute_t *self = (zv_compute_t *) arg;
    self->event_timer = -1;
    if (!zv_compute_virt_ready (self) || json_object_size (self->event_uuids) == 0)
        return 0;
    json_t *domains = json_array ();
    const char *uuid;
    json_t *value;
    json_object_foreach (self->event_uuids, uuid, value)
        json_array_append_new (domains, json_pack ("{s:s, s:s}", "uuid", uuid, "power_state",
            zv_power_state_name (self->driver->power_state (self->virt, uuid))));
    json_object_clear (self->event_uuids);
    zv_msg_t *msg = zv_msg_new ("conductor.compute_sync");
    json_t *body = json_pack ("{s:s, s:o, s:b, s:I}", "host", self->cfg.host, "domains", domains,
                              "partial", 1, "started_ms", (json_int_t) self->started_ms);
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_sync_done, NULL, NULL);
    return 0;
}

int
zv_compute_event_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) item;
    zv_compute_t *self = (zv_compute_t *) arg;
    zv_virt_event_t event;
    bool closed = false;
    for (int count = 0; self->virt && count < 1024 && self->driver->event_next (self->virt, &event); count++) {
        switch (event.kind) {
            case ZV_VIRT_EVENT_LIFECYCLE:
                zv_debug (self->name, NULL, "domain %s: %s", event.uuid, event.detail);
                json_object_set_new (self->event_uuids, event.uuid, json_true ());
                break;
            case ZV_VIRT_EVENT_AGENT_CONNECTED:
                zv_debug (self->name, NULL, "domain %s: guest agent connected", event.uuid);
                zv_compute_guest_query (self, event.uuid, 0);
                break;
            case ZV_VIRT_EVENT_AGENT_DISCONNECTED:
                zv_debug (self->name, NULL, "domain %s: guest agent disconnected", event.uuid);
                zv_compute_guest_gone (self, event.uuid);
                break;
            case ZV_VIRT_EVENT_CONNECTION_CLOSED:
                closed = true;
                break;
        }
    }
    if (closed) {
        self->virt_lost = true;
        snprintf (self->degraded, sizeof self->degraded, "hypervisor %s closed the connection",
                  self->cfg.connection_uri);
        zv_warning (self->name, NULL, "%s", self->degraded);
        zv_compute_virt_drop (self);
        zv_link_heartbeat (self->link);
        return 0;
    }
    if (json_object_size (self->event_uuids) && self->event_timer < 0)
        self->event_timer = zloop_timer (loop, S_EVENT_DELAY_MS, 1, s_event_flush, self);
    return 0;
}
