/*  actions.c: user actions on a server (reboot, stop, pause, rescue, ...),
    admitted here and run by the instance's host.

    The transition table (store/zv_state.c) judges an action and moves
    task_state in the transaction that opens its action record; the host
    is cast compute.instance_action and reports the end with
    instance_update (hosts.c).  An action that spans hosts and time (cold
    and live migration) is a sequence of phases and belongs in moves.c
    beside this file; this one keeps the actions one host runs alone.      */

#include "actors/conductor/conductor.h"
#include "store/zv_instance.h"

//  conductor.server_action: a user action on a server, as Nova's compute
//  API takes it.  The transition table judges it and moves task_state in
//  the same transaction that opens its action record; the host is then
//  told (compute.instance_action) and reports the end with
//  instance_update, whose expected task_state is the one set here, so an
//  action and a delete racing cannot both win.  The actions a host can run
//  today; the others in the table are refused as not implemented.
static const zv_action_t s_host_actions [] = {
    ZV_ACTION_REBOOT, ZV_ACTION_REBOOT_HARD, ZV_ACTION_STOP, ZV_ACTION_START,
    ZV_ACTION_PAUSE, ZV_ACTION_UNPAUSE, ZV_ACTION_SUSPEND, ZV_ACTION_RESUME,
    ZV_ACTION_RESCUE, ZV_ACTION_UNRESCUE, ZV_ACTION_SET_PASSWORD,
};

static void s_action_unreachable (zv_conductor_t *self, json_t *arg);

//  What the request must say whoever sends it: an action zova has, that a
//  host runs, with what it takes.
zv_status_t
zv_conductor_server_action_check (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                  char *errbuf, size_t errlen)
{
    (void) self;
    (void) txn;
    const zv_msg_t *msg = call->msg;
    const char *name = zv_msg_get_str (msg, "action");
    int action = zv_action_from_name (name);
    bool served = false;
    for (size_t index = 0; index < sizeof s_host_actions / sizeof s_host_actions [0]; index++)
        served |= action >= 0 && (zv_action_t) action == s_host_actions [index];
    if (action < 0) {
        snprintf (errbuf, errlen, "Unknown server action '%s'.", name);
        return ZV_EINVAL;
    }
    if (!served) {
        snprintf (errbuf, errlen, "Server action '%s' is not implemented by this cloud yet.", name);
        return ZV_EUNSUPPORTED;
    }
    if (action == ZV_ACTION_SET_PASSWORD && !zv_msg_get_str (msg, "password")) {
        snprintf (errbuf, errlen, "changePassword needs a password.");
        return ZV_EINVAL;
    }
    return ZV_OK;
}

zv_status_t
zv_conductor_server_action (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *name = zv_msg_get_str (msg, "action");
    zv_action_t action = (zv_action_t) zv_action_from_name (name);
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *uuid = s_str (rec, "uuid");
    const char *host = s_str (rec, "host");
    //  The rescue image: the one asked for, else [libvirt] rescue_image_id,
    //  else the instance's own.
    json_t *rescue = NULL;
    if (action == ZV_ACTION_RESCUE) {
        const char *ref = zv_msg_get_str (msg, "image");
        if (!ref && *self->cfg.rescue_image_id)
            ref = self->cfg.rescue_image_id;
        if (!ref)
            ref = s_str (json_object_get (rec, "image"), "id");
        status = zv_conductor_find (txn, ZV_TABLE_IMAGES, "image", ref, NULL, &rescue, errbuf, errlen);
        if (status == ZV_ENOTFOUND)
            snprintf (errbuf, errlen, "Image %s could not be found.", ref);
        else
        if (status == ZV_OK && strcmp (s_str (rescue, "status"), "active") != 0) {
            snprintf (errbuf, errlen, "Image %s is not active.", s_str (rescue, "id"));
            status = ZV_ECONFLICT;
        }
    }
    json_t *updated = NULL;
    const char *rq = zv_msg_rq (msg);
    if (status == ZV_OK)
        status = zv_store_instance_action (txn, uuid, (zv_action_t) action, rq, &updated, errbuf, errlen);
    //  A state that allows the action on an instance no host holds (ERROR
    //  before scheduling) still cannot run it.
    if (status == ZV_OK && (!host || !*host)) {
        snprintf (errbuf, errlen, "Cannot '%s' instance %s: it is on no host.", name, uuid);
        status = ZV_ECONFLICT;
    }
    if (status == ZV_OK) {
        zv_msg_t *cast = zv_msg_new ("compute.instance_action");
        zv_msg_set_rq (cast, rq);
        zv_msg_set_src (cast, ACTOR);
        char identity [320];
        snprintf (identity, sizeof identity, "compute.%s", host);
        zv_msg_set_routing_str (cast, identity);
        json_t *body = json_pack ("{s:O, s:s, s:s, s:o}", "instance", updated, "action", name,
                                  "action_request_id", rq,
                                  "images", zv_conductor_action_images (txn, updated, rescue ? s_str (rescue, "id") : NULL));
        zv_instance_view (json_object_get (body, "instance"));
        if (rescue)
            json_object_set_new (body, "rescue_image", json_string (s_str (rescue, "id")));
        if (action == ZV_ACTION_SET_PASSWORD) {
            json_object_set_new (body, "password", json_string (zv_msg_get_str (msg, "password")));
            json_object_set_new (body, "user", json_string (zv_msg_get_str (msg, "user")
                                                            ? zv_msg_get_str (msg, "user") : "root"));
        }
        zv_msg_set_body (cast, &body);
        zv_conductor_out_cast (self, &cast, s_action_unreachable,
                               json_pack ("{s:s, s:s, s:s, s:O}", "uuid", uuid, "rq", rq, "host", host,
                                          "task_state", json_object_get (updated, "task_state")));
        zv_info (ACTOR, rq, "instance %s: %s on %s", uuid, name, host);
        call->reply = json_pack ("{s:o, s:s}", "server", zv_instance_view (json_incref (updated)),
                                 "request_id", rq);
    }
    json_decref (updated);
    json_decref (rescue);
    json_decref (rec);
    return status;
}

//  The host is not connected: the action cannot start.  Its task_state
//  goes back to None (the instance is as it was) and the action record
//  says why, as Nova reverts a task when the compute RPC fails.
static void
s_action_unreachable (zv_conductor_t *self, json_t *arg)
{
    char errbuf [512], message [400];
    zv_txn_t *txn = zv_txn_begin (self->store, zv_conductor_batch_txn (self), true);
    if (!txn)
        return;
    snprintf (message, sizeof message, "compute host %s is not connected", s_str (arg, "host"));
    json_t *expected = json_pack ("[O]", json_object_get (arg, "task_state"));
    json_t *changes = json_pack ("{s:n, s:o}", "task_state", "fault", zv_conductor_fault (ZV_EUNAVAILABLE, message));
    if (zv_store_instance_cas (txn, s_str (arg, "uuid"), expected, changes, NULL, errbuf, sizeof errbuf) == ZV_OK) {
        zv_store_action_finish (txn, s_str (arg, "uuid"), s_str (arg, "rq"), "Error", message);
        zv_txn_commit (&txn);
    }
    else
        zv_txn_abort (&txn);
    json_decref (expected);
    json_decref (changes);
}
