/*  hosts.c: what compute hosts and services tell the conductor, and what
    the conductor tells about them: heartbeats (services, schedulers,
    inventories), the sync that reconciles a host's domains with the store,
    the host states a scheduler ranks on, services and hypervisors.  A
    host's reports on one instance (outcomes, facts) are reports.c's.  A compute
    that sees a new conductor epoch in its heartbeat reply sends
    compute_sync with its domains (after a restart of either side), and
    the rules here settle every instance of that host: Nova's init_instance
    and power-state sync.                                                    */

#include "actors/conductor/conductor.h"
#include "store/zv_instance.h"
#include "store/zv_placement.h"
#include "store/zv_aggregate.h"
#include "store/zv_migration.h"

//  ---------------------------------------------------------------------
//  Heartbeats, instance updates, sync

//  "up", "down" (no heartbeat for service_down_time, or forced down by an
//  operator, as Nova's forced_down: so that its servers may be evacuated
//  before the heartbeats stop) or "degraded" (a compute host whose
//  hypervisor is unreachable: it heartbeats, but can neither build nor
//  report its domains).  Only "up" takes new work.
const char *
zv_conductor_service_state (zv_conductor_t *self, const json_t *service)
{
    if (!service || json_is_true (json_object_get (service, "forced_down")))
        return "down";
    int64_t age = zv_now_ms () - s_int (service, "updated_ms");
    if (age > (int64_t) self->cfg.service_down_time_s * 1000)
        return "down";
    return json_is_string (json_object_get (service, "degraded")) ? "degraded" : "up";
}

//  conductor.service_heartbeat
zv_status_t
zv_conductor_service_heartbeat (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    const zv_msg_t *msg = call->msg;
    const char *binary = zv_msg_get_str (msg, "binary");
    const char *host = zv_msg_get_str (msg, "host");
    char key [400], now [32];
    snprintf (key, sizeof key, "%s/%s", binary, host);
    json_t *service = NULL;
    if (zv_store_get (txn, ZV_TABLE_SERVICES, key, &service) != ZV_OK) {
        char uuid [ZV_UUID_LEN + 1];
        zv_uuid_new (uuid);
        service = json_pack ("{s:s, s:s, s:s, s:s, s:b, s:n, s:s, s:s}",
                             "id", uuid, "binary", binary, "host", host, "zone", "nova",
                             "disabled", 0, "disabled_reason", "created_at", s_iso_now (now),
                             "topic", binary);
    }
    json_object_set_new (service, "updated_at", json_string (s_iso_now (now)));
    json_object_set_new (service, "updated_ms", json_integer (zv_now_ms ()));
    json_object_set_new (service, "report_interval",
                         json_integer (zv_msg_get_int (msg, "report_interval", 10)));
    const char *degraded = zv_msg_get_str (msg, "degraded");
    if (degraded && !json_is_string (json_object_get (service, "degraded")))
        zv_warning (ACTOR, NULL, "%s %s is degraded: %s", binary, host, degraded);
    else
    if (!degraded && json_is_string (json_object_get (service, "degraded")))
        zv_info (ACTOR, NULL, "%s %s is no longer degraded", binary, host);
    if (degraded || json_object_get (service, "degraded"))
        json_object_set_new (service, "degraded", degraded ? json_string (degraded) : json_null ());
    zv_status_t status = zv_store_put (txn, ZV_TABLE_SERVICES, key, service);
    json_decref (service);
    if (status != ZV_OK)
        return status;

    json_t *report = json_object_get (zv_msg_body (msg), "node");
    if (strcmp (binary, "compute") == 0 && json_is_object (report)) {
        //  The inventories go through placement (usages and admin
        //  overrides are the store's own, so a report never undoes a claim);
        //  the host's facts are kept beside them.
        char reason [512];
        bool changed = false;
        json_t *inventories = json_object_get (report, "inventories");
        if (json_is_object (inventories)
        &&  zv_placement_report (txn, host, inventories, &changed, reason, sizeof reason) != ZV_OK)
            zv_warning (ACTOR, zv_msg_rq (msg), "compute %s reported a bad inventory: %s", host, reason);
        json_t *node = NULL;
        if (zv_store_get (txn, ZV_TABLE_NODES, host, &node) == ZV_OK) {
            static const char *facts [] = {
                "running_vms", "hypervisor_type", "hypervisor_version", "cpu_model", "cpu_arch", "uri", NULL };
            bool facts_changed = false;
            for (int index = 0; facts [index]; index++) {
                json_t *value = json_object_get (report, facts [index]);
                if (value && !json_equal (value, json_object_get (node, facts [index]))) {
                    json_object_set (node, facts [index], value);
                    facts_changed = true;
                }
            }
            if (facts_changed)
                status = zv_store_put (txn, ZV_TABLE_NODES, host, node);
            json_decref (node);
        }
        if (changed || status != ZV_OK)
            self->generation++;
        if (status != ZV_OK)
            return status;
    }
    //  A scheduler is asked by its routing identity: register one only when
    //  that identity is the "scheduler.<host>" its heartbeat claims.
    char expected_identity [320];
    snprintf (expected_identity, sizeof expected_identity, "scheduler.%s", host);
    zframe_t *rid = zv_msg_routing_id (msg);
    if (strcmp (binary, "scheduler") == 0 && rid
    &&  zframe_size (rid) == strlen (expected_identity)
    &&  memcmp (zframe_data (rid), expected_identity, zframe_size (rid)) == 0) {
        const char *identity = expected_identity;
        int64_t *seen = (int64_t *) zhashx_lookup (self->schedulers, identity);
        if (!seen) {
            seen = (int64_t *) zmalloc (sizeof (int64_t));
            zhashx_insert (self->schedulers, identity, seen);
            zv_info (ACTOR, NULL, "scheduler %s is up", identity);
        }
        *seen = zv_mono_ms ();
    }
    call->reply = json_pack ("{s:s, s:i}", "epoch", self->epoch,
                             "service_down_time", self->cfg.service_down_time_s);
    return ZV_OK;
}

//  The request id of an instance's newest unfinished action (of the named
//  action, or any when action is NULL), copied into buf; NULL when none.
const char *
zv_conductor_open_action_rq (zv_txn_t *txn, const char *uuid, const char *action, char *buf, size_t len)
{
    json_t *actions = zv_store_action_list (txn, uuid);
    const char *found = NULL;
    size_t index;
    json_t *record;
    json_array_foreach (actions, index, record)
        if (json_is_null (json_object_get (record, "finish_time")) && s_str (record, "request_id")
        &&  (!action || (s_str (record, "action") && streq (s_str (record, "action"), action)))) {
            snprintf (buf, len, "%s", s_str (record, "request_id"));
            found = buf;
        }
    json_decref (actions);
    return found;
}

//  Reconcile a host's domains with the store, as Nova's init_instance and
//  power-state sync do.  Instances this host should have:
//    building, no domain, last touched before the restart -> ERROR;
//    deleting -> the compute must terminate (listed in the reply);
//    domain gone while it should run -> power nostate, vm_state stopped;
//    domain there -> power_state from the hypervisor (active + shutdown or
//    crashed -> stopped, as Nova's sync stops it).
//  Domains of no live instance are orphans: the compute reaps them.
//  An instance with an open move is its move's: a domain the move expects
//  on this host (either end) is never an orphan, and what this host holds
//  of it (the source's domain gone to the destination, the destination's
//  not started yet) is never read as a guest that powered off; the move
//  engine settles it.
typedef struct {
    zv_conductor_t *self;
    zv_txn_t *txn;
    const char *host;
    json_t *domains;                //  uuid -> power_state (borrowed)
    int64_t restart_ms;             //  later of conductor start and compute start
    json_t *terminate;              //  [{uuid, action_request_id}]
    json_t *seen;                   //  uuid -> true for instances of this host
    json_t *changed;                //  [{uuid, changes, expected}]
    bool partial;                   //  only the listed domains (an event), no orphans
    int64_t compute_started_ms;     //  the compute's own start: what it was doing then is lost
    json_t *interrupted;            //  [{uuid, task_state}]: actions the compute restart cut off
    json_t *moving;                 //  uuid -> open move naming this host (zv_migration_open_on_host)
} s_sync_t;

static bool
s_sync_visit (const char *key, json_t *rec, void *arg)
{
    s_sync_t *sync = (s_sync_t *) arg;
    const char *host = s_str (rec, "host");
    if (json_object_get (sync->moving, key))
        return true;
    if (!host || strcmp (host, sync->host) != 0 || json_is_true (json_object_get (rec, "deleted")))
        return true;
    json_object_set_new (sync->seen, key, json_true ());
    const char *power = json_string_value (json_object_get (sync->domains, key));
    const char *vm = s_str (rec, "vm_state");
    const char *task = s_str (rec, "task_state");
    json_t *expected = json_pack ("[o]", task ? json_string (task) : json_null ());
    json_t *changes = NULL;
    //  A build is only ever finished by its own report or a full sync (an
    //  event may overtake the build's last CAS); a delete by its own.
    if (sync->partial && (strcmp (vm, "building") == 0 || (task && strcmp (task, "deleting") == 0))) {
        json_decref (expected);
        return true;
    }
    //  An action (reboot, stop, ...) in progress when the compute restarted
    //  will never report: its task ends here, and the power state rules
    //  apply as if it had none (Nova's init_instance).
    bool interrupted = !sync->partial && task && strcmp (task, "deleting") != 0
                    && strcmp (vm, "building") != 0 && s_int (rec, "updated_ms") < sync->compute_started_ms;
    if (interrupted)
        json_array_append_new (sync->interrupted, json_pack ("{s:s, s:s}", "uuid", key, "task_state", task));
    const char *settled_task = interrupted ? NULL : task;
    if (task && strcmp (task, "deleting") == 0) {
        char rq [80];
        const char *action_rq = zv_conductor_open_action_rq (sync->txn, key, "delete", rq, sizeof rq);
        json_array_append_new (sync->terminate, json_pack ("{s:s, s:s}", "uuid", key,
                                                           "action_request_id", action_rq ? action_rq : ""));
    }
    else
    if (strcmp (vm, "building") == 0) {
        if (!power && s_int (rec, "updated_ms") < sync->restart_ms)
            changes = json_pack ("{s:s, s:n, s:o}", "vm_state", "error", "task_state",
                                 "fault", zv_conductor_fault (ZV_EIO, "Build was interrupted by a service restart"
                                                           " before the domain existed"));
        else
        if (power && strcmp (power, "running") == 0) {
            //  The domain runs: the build finished and only its report was
            //  lost (a conductor that died before answering it).  Compute
            //  lists domains between handlers, so a domain it reports has
            //  had its final update sent already.
            char now [32];
            changes = json_pack ("{s:s, s:n, s:s, s:s}", "vm_state", "active", "task_state",
                                 "power_state", "running", "launched_at",
                                 s_str (rec, "launched_at") ? s_str (rec, "launched_at") : s_iso_now (now));
        }
    }
    else
    if (!power) {
        if (strcmp (s_str (rec, "power_state"), "nostate") != 0 || strcmp (vm, "active") == 0)
            changes = json_pack ("{s:s, s:s}", "power_state", "nostate", "vm_state",
                                 strcmp (vm, "error") == 0 ? "error" : "stopped");
    }
    else
    if (strcmp (power, s_str (rec, "power_state")) != 0 || interrupted) {
        changes = json_pack ("{s:s}", "power_state", power);
        if (strcmp (vm, "active") == 0 && !settled_task
        &&  (strcmp (power, "shutdown") == 0 || strcmp (power, "crashed") == 0))
            json_object_set_new (changes, "vm_state", json_string ("stopped"));
    }
    if (interrupted) {
        char message [400];
        snprintf (message, sizeof message, "Action interrupted by a restart of compute host %s", sync->host);
        if (!changes)
            changes = json_object ();
        json_object_set_new (changes, "task_state", json_null ());
        json_object_set_new (changes, "fault", zv_conductor_fault (ZV_EUNAVAILABLE, message));
    }
    if (changes)
        json_array_append_new (sync->changed, json_pack ("{s:s, s:o, s:o, s:s}", "uuid", key,
            "changes", changes, "expected", json_incref (expected), "vm_state", vm));
    json_decref (expected);
    return true;
}

zv_status_t
zv_conductor_compute_sync (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                           char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    s_sync_t sync = { self, txn, zv_msg_get_str (msg, "host"), json_object (),
                      self->started_ms, json_array (), json_object (), json_array (),
                      zv_msg_get_bool (msg, "partial", false), zv_msg_get_int (msg, "started_ms", 0),
                      json_array (), zv_migration_open_on_host (txn, zv_msg_get_str (msg, "host")) };
    if (sync.compute_started_ms > sync.restart_ms)
        sync.restart_ms = sync.compute_started_ms;
    size_t index;
    json_t *domain;
    json_t *listed = json_array ();
    json_array_foreach (json_object_get (zv_msg_body (msg), "domains"), index, domain) {
        const char *uuid = s_str (domain, "uuid");
        const char *power = s_str (domain, "power_state");
        if (!uuid || !zv_uuid_valid (uuid) || !power || zv_power_state_from_name (power) < 0)
            continue;
        json_array_append_new (listed, json_string (uuid));
        //  In an event's sync, "nostate" says the domain is gone.
        if (!sync.partial || strcmp (power, "nostate") != 0)
            json_object_set_new (sync.domains, uuid, json_string (power));
    }
    zv_status_t status = ZV_OK;
    if (!sync.partial)
        status = zv_store_scan (txn, ZV_TABLE_INSTANCES, "", s_sync_visit, &sync);
    else {
        json_t *uuid_value;
        json_array_foreach (listed, index, uuid_value) {
            json_t *rec = NULL;
            if (zv_store_get (txn, ZV_TABLE_INSTANCES, json_string_value (uuid_value), &rec) == ZV_OK) {
                s_sync_visit (json_string_value (uuid_value), rec, &sync);
                json_decref (rec);
            }
        }
    }
    json_decref (listed);
    json_t *change;
    json_array_foreach (sync.changed, index, change) {
        const char *uuid = s_str (change, "uuid");
        bool finished = streq (s_str (json_object_get (change, "changes"), "vm_state") ? 
                               s_str (json_object_get (change, "changes"), "vm_state") : "", "active");
        if (strcmp (s_str (change, "vm_state"), "building") == 0 && !finished)
            status = zv_conductor_fail_build (self, txn, uuid, json_object_get (change, "expected"), ZV_EIO,
                                              "Build was interrupted by a service restart before the domain existed");
        else
        if (finished && strcmp (s_str (change, "vm_state"), "building") == 0) {
            json_t *rec = NULL;
            status = zv_store_instance_cas (txn, uuid, json_object_get (change, "expected"),
                                            json_object_get (change, "changes"), &rec, errbuf, errlen);
            if (status == ZV_OK && s_str (rec, "request_id"))
                zv_store_action_finish (txn, uuid, s_str (rec, "request_id"), "Success", NULL);
            json_decref (rec);
        }
        else
            status = zv_store_instance_cas (txn, uuid, json_object_get (change, "expected"),
                                            json_object_get (change, "changes"), NULL, errbuf, errlen);
        if (status != ZV_OK && status != ZV_ECONFLICT)
            break;
        status = ZV_OK;
        zv_info (ACTOR, NULL, "sync %s: instance %s reconciled with its hypervisor", sync.host, uuid);
    }
    //  The actions a compute restart cut off: their records end in Error
    //  once their instance's CAS above took (their task is None now).
    json_t *interrupted;
    json_array_foreach (sync.interrupted, index, interrupted) {
        const char *uuid = s_str (interrupted, "uuid");
        json_t *rec = NULL;
        char buf [80];
        const char *rq = zv_conductor_open_action_rq (txn, uuid, NULL, buf, sizeof buf);
        if (zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) == ZV_OK && !s_str (rec, "task_state") && rq) {
            char message [400];
            snprintf (message, sizeof message, "Action interrupted by a restart of compute host %s", sync.host);
            zv_store_action_finish (txn, uuid, rq, "Error", message);
            zv_warning (ACTOR, rq, "instance %s: %s", uuid, message);
        }
        json_decref (rec);
    }
    json_decref (sync.interrupted);
    json_t *orphans = json_array ();
    json_t *evacuated = json_array ();
    const char *uuid;
    json_t *power;
    json_object_foreach (sync.domains, uuid, power) {
        if (sync.partial || json_object_get (sync.seen, uuid) || json_object_get (sync.moving, uuid))
            continue;
        //  A server evacuated off this host while it was away: its copy
        //  here must never run again (Nova's _destroy_evacuated_instances);
        //  its disks stay when storage was shared (they are the server's).
        json_t *moves = zv_migration_list (txn, uuid, sync.host, "done");
        json_t *evacuation = NULL;
        size_t at;
        json_t *move;
        json_array_foreach (moves, at, move)
            if (streq (s_str (move, "kind") ? s_str (move, "kind") : "", "evacuation")
            &&  streq (s_str (move, "source_host") ? s_str (move, "source_host") : "", sync.host))
                evacuation = move;
        if (evacuation)
            json_array_append_new (evacuated, json_pack ("{s:s, s:b}", "uuid", uuid, "keep_disks",
                                   json_is_true (json_object_get (evacuation, "shared_storage"))));
        else
            json_array_append_new (orphans, json_string (uuid));
        json_decref (moves);
    }
    json_decref (sync.moving);
    //  The moves whose phase runs here were lost if this host or this
    //  conductor restarted after they were cast: cast them again.
    if (status == ZV_OK && !sync.partial && sync.compute_started_ms > 0)
        zv_conductor_moves_host_synced (self, txn, sync.host, sync.compute_started_ms);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o, s:o, s:o}", "terminate", sync.terminate, "orphans", orphans,
                                 "evacuated", evacuated);
    else {
        json_decref (sync.terminate);
        json_decref (orphans);
        json_decref (evacuated);
    }
    json_decref (sync.domains);
    json_decref (sync.seen);
    json_decref (sync.changed);
    return status;
}

//  ---------------------------------------------------------------------
//  Hosts, services, hypervisors

//  Count allocations per provider: {host: n}.
static bool
s_count_visit (const char *key, json_t *rec, void *arg)
{
    (void) key;
    const char *host;
    json_t *against;
    json_object_foreach (json_object_get (rec, "allocations"), host, against)
        json_object_set_new ((json_t *) arg, host, json_integer (s_int ((json_t *) arg, host) + 1));
    return true;
}

json_t *
zv_conductor_compute_service (zv_conductor_t *self, zv_txn_t *txn, const char *host)
{
    (void) self;
    char key [400];
    snprintf (key, sizeof key, "compute/%s", host);
    json_t *service = NULL;
    zv_store_get (txn, ZV_TABLE_SERVICES, key, &service);
    return service;
}

//  A node record as the hypervisor API shows it (takes node).
static json_t *
s_hypervisor_view (zv_conductor_t *self, zv_txn_t *txn, json_t *node)
{
    zv_placement_view (node);
    json_t *service = zv_conductor_compute_service (self, txn, s_str (node, "host"));
    json_object_set_new (node, "state", json_string (zv_conductor_service_state (self, service)));
    json_object_set_new (node, "status", json_string (
        json_is_true (json_object_get (service, "disabled")) ? "disabled" : "enabled"));
    json_object_set (node, "disabled_reason", json_object_get (service, "disabled_reason")
                                              ? json_object_get (service, "disabled_reason") : json_null ());
    json_decref (service);
    return node;
}
zv_status_t
zv_conductor_host_states (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                          char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    //  What the scheduler filters and weighs on, one pass over each table:
    //  inventories and usages, service state, zone and aggregates, how many
    //  instances (claims) each host holds, and its recent build failures.
    json_t *hosts = zv_conductor_collect (self, txn, ZV_TABLE_NODES, NULL, NULL);
    json_t *aggregates = zv_aggregate_by_host (txn);
    json_t *counts = json_object ();
    zv_store_scan (txn, ZV_TABLE_ALLOCATIONS, "", s_count_visit, counts);
    size_t index;
    json_t *node;
    json_array_foreach (hosts, index, node) {
        s_hypervisor_view (self, txn, node);
        const char *host = s_str (node, "host");
        json_t *mine = json_object_get (aggregates, host);
        json_object_set_new (node, "availability_zone", json_string (zv_conductor_host_zone (self, aggregates, host)));
        json_object_set_new (node, "aggregates", mine ? json_incref (mine) : json_array ());
        json_object_set_new (node, "num_instances", json_integer (s_int (counts, host)));
        int64_t *failed = (int64_t *) zhashx_lookup (self->failed_builds, host);
        json_object_set_new (node, "failed_builds", json_integer (failed ? *failed : 0));
    }
    json_decref (aggregates);
    json_decref (counts);
    call->reply = json_pack ("{s:I, s:o}", "generation", (json_int_t) self->generation, "hosts", hosts);
    return ZV_OK;
}
//  A service as it is shown: up or down from its heartbeat, enabled or not.
json_t *
zv_conductor_service_view (zv_conductor_t *self, json_t *rec)
{
    json_object_set_new (rec, "state", json_string (zv_conductor_service_state (self, rec)));
    json_object_set_new (rec, "status", json_string (
        json_is_true (json_object_get (rec, "disabled")) ? "disabled" : "enabled"));
    if (!json_object_get (rec, "forced_down"))
        json_object_set_new (rec, "forced_down", json_false ());
    json_object_del (rec, "updated_ms");
    return rec;
}

static bool
s_service_keep (zv_conductor_t *self, json_t *rec, void *arg)
{
    const zv_msg_t *msg = (const zv_msg_t *) arg;
    const char *binary = zv_msg_get_str (msg, "binary");
    const char *host = zv_msg_get_str (msg, "host");
    if (binary && strcmp (binary, s_str (rec, "binary")) != 0)
        return false;
    if (host && strcmp (host, s_str (rec, "host")) != 0)
        return false;
    zv_conductor_service_view (self, rec);
    return true;
}

zv_status_t
zv_conductor_service_list (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                           char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    json_t *services = zv_conductor_collect (self, txn, ZV_TABLE_SERVICES, s_service_keep, (void *) call->msg);
    //  A compute service is in its host's zone; the others in the internal one.
    json_t *by_host = zv_aggregate_by_host (txn);
    size_t index;
    json_t *service;
    json_array_foreach (services, index, service) {
        const char *zone = streq (s_str (service, "binary"), "compute")
                         ? zv_conductor_host_zone (self, by_host, s_str (service, "host")) : "internal";
        json_object_set_new (service, "zone", json_string (zone));
    }
    json_decref (by_host);
    call->reply = json_pack ("{s:o}", "services", services);
    return ZV_OK;
}

//  conductor.service_set: an admin enables or disables a service (with a
//  reason), as `openstack compute service set` does.  A disabled compute
//  gets no new instances (ComputeFilter); what runs there keeps running.
zv_status_t
zv_conductor_service_set (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                          char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *host = zv_msg_get_str (msg, "host");
    const char *binary = zv_msg_get_str (msg, "binary");
    char key [400];
    snprintf (key, sizeof key, "%s/%s", binary ? binary : "compute", host);
    json_t *service = NULL;
    if (zv_store_get (txn, ZV_TABLE_SERVICES, key, &service) != ZV_OK) {
        snprintf (errbuf, errlen, "Service %s on host %s could not be found.", binary ? binary : "compute", host);
        return ZV_ENOTFOUND;
    }
    json_t *disabled = json_object_get (zv_msg_body (msg), "disabled");
    if (json_is_boolean (disabled)) {
        json_object_set (service, "disabled", disabled);
        const char *reason = zv_msg_get_str (msg, "disabled_reason");
        json_object_set_new (service, "disabled_reason",
                             json_is_true (disabled) && reason ? json_string (reason) : json_null ());
    }
    json_t *forced_down = json_object_get (zv_msg_body (msg), "forced_down");
    if (json_is_boolean (forced_down)) {
        json_object_set (service, "forced_down", forced_down);
        zv_info (ACTOR, zv_msg_rq (msg), "service %s %s", key,
                 json_is_true (forced_down) ? "forced down" : "no longer forced down");
    }
    zv_status_t status = zv_store_put (txn, ZV_TABLE_SERVICES, key, service);
    if (status == ZV_OK) {
        zv_info (ACTOR, zv_msg_rq (msg), "service %s %s%s%s", key,
                 json_is_true (json_object_get (service, "disabled")) ? "disabled" : "enabled",
                 json_is_true (disabled) && zv_msg_get_str (msg, "disabled_reason") ? ": " : "",
                 json_is_true (disabled) && zv_msg_get_str (msg, "disabled_reason")
                     ? zv_msg_get_str (msg, "disabled_reason") : "");
        zv_conductor_service_view (self, service);
        call->reply = json_pack ("{s:O}", "service", zv_conductor_strip (service));
    }
    json_decref (service);
    return status;
}

zv_status_t
zv_conductor_hypervisor_list (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                              char *errbuf, size_t errlen)
{
    zv_conductor_host_states (self, txn, call, errbuf, errlen);
    json_t *hosts = json_incref (json_object_get (call->reply, "hosts"));
    json_decref (call->reply);
    call->reply = json_pack ("{s:o}", "hypervisors", hosts);
    return ZV_OK;
}

zv_status_t
zv_conductor_hypervisor_show (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                              char *errbuf, size_t errlen)
{
    const char *ref = zv_msg_get_str (call->msg, "ref");
    json_t *node = NULL;
    if (zv_store_get (txn, ZV_TABLE_NODES, ref, &node) != ZV_OK) {
        json_t *all = zv_conductor_collect (self, txn, ZV_TABLE_NODES, NULL, NULL);
        size_t index;
        json_t *item;
        json_array_foreach (all, index, item)
            if (s_str (item, "id") && strcmp (s_str (item, "id"), ref) == 0)
                node = json_incref (item);
        json_decref (all);
    }
    if (!node) {
        snprintf (errbuf, errlen, "Hypervisor %s could not be found.", ref);
        return ZV_ENOTFOUND;
    }
    call->reply = json_pack ("{s:o}", "hypervisor", s_hypervisor_view (self, txn, node));
    return ZV_OK;
}
