/*  guest.c: the guest agent, what a guest says about itself (hostname,
    OS, addresses), kept on its instance record.

    A query runs on a worker (the agent may take agent_timeout_s to answer)
    with its own reference of the connection, and its answer goes to the
    conductor as an instance_update of the record's guest field.  An agent
    connects before the guest's network is configured, so a guest with no
    address beyond link-local is asked again, ZV_COMPUTE_GUEST_RETRY_MS
    later, up to ZV_COMPUTE_GUEST_RETRIES times: the retries wait in
    self->guest_retries until the loop's tick finds them due.             */

#include "actors/compute/compute.h"

typedef struct {
    const zv_virt_driver_t *driver;
    zv_virt_t *virt;
    char uuid [ZV_UUID_LEN + 1];
    int timeout_s;
    int attempt;
    json_t *guest;
    zv_status_t status;
    char errbuf [512];
} s_guest_t;

static void
s_guest_work (void *job)
{
    s_guest_t *guest = (s_guest_t *) job;
    guest->guest = guest->driver->guest_info (guest->virt, guest->uuid, guest->timeout_s, &guest->status,
                                             guest->errbuf, sizeof guest->errbuf);
}

static void
s_guest_noop (void *actor, void *ctx, zv_msg_t *reply)
{
    (void) actor;
    (void) ctx;
    (void) reply;
}

static void
s_guest_done (void *actor, void *job)
{
    zv_compute_t *self = (zv_compute_t *) actor;
    s_guest_t *guest = (s_guest_t *) job;
    bool cancelled = zv_workers_cancelled (self->workers);
    if (!cancelled && guest->guest) {
        char now [32];
        json_object_set_new (guest->guest, "updated_at", json_string (zv_iso8601 (zv_now_ms (), now)));
        zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
        json_t *body = json_pack ("{s:s, s:{s:O}}", "uuid", guest->uuid, "facts", "guest", guest->guest);
        zv_msg_set_body (msg, &body);
        zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_guest_noop, NULL, NULL);
    }
    else
    if (!cancelled)
        zv_debug (self->name, NULL, "instance %s: guest agent: %s", guest->uuid, guest->errbuf);
    //  A guest's agent answers before its network is configured: ask
    //  again a few times until it has an address beyond link-local.
    size_t routable = 0, index;
    json_t *address;
    json_array_foreach (json_object_get (guest->guest, "ip_addresses"), index, address) {
        const char *text = zv_compute_str (address, "address");
        if (text && strncmp (text, "fe80:", 5) != 0 && strncmp (text, "169.254.", 8) != 0)
            routable++;
    }
    if (!cancelled && guest->attempt + 1 < ZV_COMPUTE_GUEST_RETRIES && routable == 0)
        json_object_set_new (self->guest_retries, guest->uuid, json_pack ("{s:i, s:I}",
            "attempt", guest->attempt + 1, "due", (json_int_t) (zv_mono_ms () + ZV_COMPUTE_GUEST_RETRY_MS)));
    json_decref (guest->guest);
    guest->driver->close (&guest->virt);
    free (guest);
}

void
zv_compute_guest_query (zv_compute_t *self, const char *uuid, int attempt)
{
    if (!zv_compute_virt_ready (self) || !zv_compute_real (self))
        return;
    s_guest_t *guest = (s_guest_t *) zmalloc (sizeof (s_guest_t));
    guest->driver = self->driver;
    guest->virt = self->driver->ref (self->virt);
    snprintf (guest->uuid, sizeof guest->uuid, "%s", uuid);
    guest->timeout_s = self->cfg.agent_timeout_s;
    guest->attempt = attempt;
    zv_workers_submit (self->workers, s_guest_work, s_guest_done, guest);
}

void
zv_compute_guest_gone (zv_compute_t *self, const char *uuid)
{
    zv_msg_t *msg = zv_msg_new ("conductor.instance_update");
    json_t *body = json_pack ("{s:s, s:{s:n}}", "uuid", uuid, "facts", "guest");
    zv_msg_set_body (msg, &body);
    zv_link_call (self->link, &msg, self->cfg.rpc_timeout_s * 1000, s_guest_noop, NULL, NULL);
}

void
zv_compute_guest_retry_due (zv_compute_t *self)
{
    const char *uuid;
    json_t *retry, *due = json_array ();
    json_object_foreach (self->guest_retries, uuid, retry)
        if (json_integer_value (json_object_get (retry, "due")) <= zv_mono_ms ())
            json_array_append_new (due, json_pack ("{s:s, s:O}", "uuid", uuid, "attempt",
                                                   json_object_get (retry, "attempt")));
    size_t index;
    json_array_foreach (due, index, retry) {
        json_object_del (self->guest_retries, zv_compute_str (retry, "uuid"));
        zv_compute_guest_query (self, zv_compute_str (retry, "uuid"),
                                (int) json_integer_value (json_object_get (retry, "attempt")));
    }
    json_decref (due);
}
