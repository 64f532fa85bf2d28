/*  zv_conductor_harness.h: a conductor without processes or sockets, for
    unit tests.  Header only; include it after cmocka's headers.

    zv_harness_new opens a conductor (zv_conductor.h) on a fresh temporary
    state directory with a sink that keeps what it is given.  A test plays
    every peer: it feeds messages "from" an identity ("api.test",
    "scheduler.s1", "compute.node1"), finds what the conductor sent among
    the captured messages (replies, casts, calls, each addressed by its
    routing id), and answers a captured call as the peer would.  Messages
    cross an encode and a decode both ways, as on the wire: what is fed is
    validated against the catalogue as a ROUTER's read would be, and what is
    captured is what the peer would read.  The sink refuses an identity
    marked unreachable (-1, EHOSTUNREACH), as ROUTER_MANDATORY does for a
    peer that is not connected.  A message "from" an api carries the
    harness's current user context (project p1, user u1, every role unless
    a test sets another with zv_harness_as), as a real api stamps one.

    The helpers below the first group act out whole exchanges (a scheduler
    and compute hosts that heartbeat, a flavor, an image, a server booted to
    ACTIVE on a host), so that a test states only what it is about.         */

#ifndef ZV_CONDUCTOR_HARNESS_H
#define ZV_CONDUCTOR_HARNESS_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/conductor/zv_conductor.h"

typedef struct {
    char dir [256];                 //  the temporary state directory
    zv_config_t cfg;
    zv_conductor_t *conductor;
    zlistx_t *sent;                 //  zv_msg_t the conductor sent, oldest first
    zlistx_t *refused;              //  zv_msg_t the sink refused (peer not connected)
    zhashx_t *unreachable;          //  identities the sink refuses
} zv_harness_t;

//  Who an api's messages act for, from now on (the harness starts as
//  project p1, user u1, with the admin, member and reader roles).
static zv_context_t zv_harness_context = {
    .project_id = "p1", .user_id = "u1", .roles = ZV_ROLE_ADMIN | ZV_ROLE_MEMBER | ZV_ROLE_READER
};

static inline void
zv_harness_as (const char *project, const char *user, unsigned roles)
{
    snprintf (zv_harness_context.project_id, sizeof zv_harness_context.project_id, "%s", project);
    snprintf (zv_harness_context.user_id, sizeof zv_harness_context.user_id, "%s", user);
    zv_harness_context.roles = roles;
}

//  ---------------------------------------------------------------------
//  The conductor, its sink, feeding and finding

//  A message as its receiver reads it off the wire (routing id kept).
static inline zv_msg_t *
zv_harness_wire (zv_msg_t *msg)
{
    bool routed = zv_msg_routing_id (msg) != NULL;
    zmsg_t *zmsg = zv_msg_encode (msg);
    assert_non_null (zmsg);
    zv_msg_t *read = zv_msg_decode (&zmsg, routed);
    assert_non_null (read);
    return read;
}

//  The routing id of msg as a string into buf ("" when none).
static inline const char *
zv_harness_to (const zv_msg_t *msg, char *buf, size_t len)
{
    zframe_t *rid = zv_msg_routing_id (msg);
    snprintf (buf, len, "%.*s", rid ? (int) zframe_size (rid) : 0, rid ? (char *) zframe_data (rid) : "");
    return buf;
}

static inline int
zv_harness_sink (void *arg, zv_msg_t **msg_p)
{
    zv_harness_t *self = (zv_harness_t *) arg;
    zv_msg_t *msg = *msg_p;
    *msg_p = NULL;
    char to [320];
    zv_harness_to (msg, to, sizeof to);
    zv_msg_t *read = zv_harness_wire (msg);
    zv_msg_destroy (&msg);
    if (zhashx_lookup (self->unreachable, to)) {
        zlistx_add_end (self->refused, read);
        errno = EHOSTUNREACH;
        return -1;
    }
    zlistx_add_end (self->sent, read);
    return 0;
}

static inline void
zv_harness_msg_free (void **item)
{
    zv_msg_destroy ((zv_msg_t **) item);
}

//  A conductor on a fresh state directory, under $TMPDIR when it is set,
//  else in memory (/dev/shm) when there is one, else under /tmp.  Every
//  batch of the conductor ends in a synced commit, which costs a few ms on
//  a disk and nothing in memory: a test checks behaviour, not durability.
static inline zv_harness_t *
zv_harness_new (void)
{
    zv_harness_t *self = (zv_harness_t *) calloc (1, sizeof *self);
    assert_non_null (self);
    zv_harness_as ("p1", "u1", ZV_ROLE_ADMIN | ZV_ROLE_MEMBER | ZV_ROLE_READER);
    const char *tmp = getenv ("TMPDIR");
    if (!tmp || !*tmp)
        tmp = access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf (self->dir, sizeof self->dir, "%s/zv_test_conductor.XXXXXX", tmp);
    assert_non_null (mkdtemp (self->dir));
    zv_config_defaults (&self->cfg);
    snprintf (self->cfg.host, sizeof self->cfg.host, "conductor-test");
    snprintf (self->cfg.state_path, sizeof self->cfg.state_path, "%s/state", self->dir);
    self->cfg.store_map_size_mb = 64;
    self->sent = zlistx_new ();
    zlistx_set_destructor (self->sent, zv_harness_msg_free);
    self->refused = zlistx_new ();
    zlistx_set_destructor (self->refused, zv_harness_msg_free);
    self->unreachable = zhashx_new ();
    char errbuf [512] = "";
    self->conductor = zv_conductor_new (&self->cfg, zv_harness_sink, self, errbuf, sizeof errbuf);
    if (!self->conductor)
        fail_msg ("zv_conductor_new: %s", errbuf);
    return self;
}

static inline int
zv_harness_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove (path);
}

//  Destroy the conductor, drop what was captured, remove the directory.
static inline void
zv_harness_destroy (zv_harness_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_harness_t *self = *self_p;
    zv_conductor_destroy (&self->conductor);
    zlistx_destroy (&self->sent);
    zlistx_destroy (&self->refused);
    zhashx_destroy (&self->unreachable);
    nftw (self->dir, zv_harness_rm, 16, FTW_DEPTH | FTW_PHYS);
    free (self);
    *self_p = NULL;
}

//  The conductor dies and a new one starts on the same store (what a
//  kill -9 and a restart do): calls in flight are lost, what was
//  committed stays, the start-up sweep runs.  What the new one sends at
//  start is captured like anything else.
static inline void
zv_harness_restart (zv_harness_t *self)
{
    zv_conductor_destroy (&self->conductor);
    char errbuf [512] = "";
    self->conductor = zv_conductor_new (&self->cfg, zv_harness_sink, self, errbuf, sizeof errbuf);
    if (!self->conductor)
        fail_msg ("zv_conductor_new after a restart: %s", errbuf);
}

//  From now on the sink refuses (or accepts again) messages to identity.
static inline void
zv_harness_unreachable (zv_harness_t *self, const char *identity, bool unreachable)
{
    if (unreachable)
        zhashx_insert (self->unreachable, identity, (void *) 1);
    else
        zhashx_delete (self->unreachable, identity);
}

//  A new request or cast of type from identity, body taken (NULL: empty);
//  from an api, with the current context.
static inline zv_msg_t *
zv_harness_msg (const char *type, const char *from, json_t *body)
{
    zv_msg_t *msg = zv_msg_new (type);
    assert_non_null (msg);
    zv_msg_set_routing_str (msg, from);
    zv_msg_set_src (msg, from);
    if (strncmp (from, "api.", 4) == 0)
        zv_msg_set_context (msg, &zv_harness_context);
    if (body)
        zv_msg_set_body (msg, &body);
    return msg;
}

//  Feed *msg_p (taken) as the ROUTER would read it, in a batch of its own.
static inline void
zv_harness_feed (zv_harness_t *self, zv_msg_t **msg_p)
{
    zv_msg_t *read = zv_harness_wire (*msg_p);
    zv_msg_destroy (msg_p);
    zv_conductor_feed (self->conductor, &read);
}

//  Take the first captured message of type (NULL: any) to identity (NULL:
//  any); NULL when there is none.  Caller owns it.
static inline zv_msg_t *
zv_harness_take (zv_harness_t *self, const char *type, const char *to)
{
    char buf [320];
    for (void *handle = zlistx_first (self->sent) ? zlistx_cursor (self->sent) : NULL; handle;
         handle = zlistx_next (self->sent) ? zlistx_cursor (self->sent) : NULL) {
        zv_msg_t *msg = (zv_msg_t *) zlistx_handle_item (handle);
        if ((!type || streq (zv_msg_type (msg), type)) && (!to || streq (zv_harness_to (msg, buf, sizeof buf), to)))
            return (zv_msg_t *) zlistx_detach (self->sent, handle);
    }
    return NULL;
}

//  How many captured messages are of type (NULL: any) to identity (NULL: any).
static inline size_t
zv_harness_count (zv_harness_t *self, const char *type, const char *to)
{
    char buf [320];
    size_t count = 0;
    for (zv_msg_t *msg = (zv_msg_t *) zlistx_first (self->sent); msg; msg = (zv_msg_t *) zlistx_next (self->sent))
        count += (!type || streq (zv_msg_type (msg), type)) && (!to || streq (zv_harness_to (msg, buf, sizeof buf), to));
    return count;
}

//  Take the reply to the request whose id is id; NULL when none came.
static inline zv_msg_t *
zv_harness_take_reply (zv_harness_t *self, const char *id)
{
    for (void *handle = zlistx_first (self->sent) ? zlistx_cursor (self->sent) : NULL; handle;
         handle = zlistx_next (self->sent) ? zlistx_cursor (self->sent) : NULL) {
        zv_msg_t *msg = (zv_msg_t *) zlistx_handle_item (handle);
        if (zv_msg_re (msg) && streq (zv_msg_re (msg), id))
            return (zv_msg_t *) zlistx_detach (self->sent, handle);
    }
    return NULL;
}

//  Send a request of type from identity (body taken) and take its reply,
//  which must have come in the same batch.  Caller owns the reply.
static inline zv_msg_t *
zv_harness_request (zv_harness_t *self, const char *type, const char *from, json_t *body)
{
    zv_msg_t *msg = zv_harness_msg (type, from, body);
    char id [80];
    snprintf (id, sizeof id, "%s", zv_msg_id (msg));
    zv_harness_feed (self, &msg);
    zv_msg_t *reply = zv_harness_take_reply (self, id);
    if (!reply)
        fail_msg ("no reply to %s from %s", type, from);
    return reply;
}

//  As zv_harness_request, for a request that must succeed: its reply body
//  (new reference).
static inline json_t *
zv_harness_ok (zv_harness_t *self, const char *type, const char *from, json_t *body)
{
    zv_msg_t *reply = zv_harness_request (self, type, from, body);
    if (zv_msg_status (reply) != ZV_OK)
        fail_msg ("%s from %s: %s (%s)", type, from, zv_msg_error_text (reply),
                  zv_status_name (zv_msg_status (reply)));
    json_t *answer = json_incref (zv_msg_body (reply));
    zv_msg_destroy (&reply);
    return answer;
}

//  Answer a captured call as its peer would: a reply with body (taken;
//  NULL: empty), or an error when status is not ZV_OK.  Destroys *call_p.
static inline void
zv_harness_answer (zv_harness_t *self, zv_msg_t **call_p, zv_status_t status, const char *error,
                   json_t *body)
{
    assert_non_null (*call_p);
    zv_msg_t *reply;
    if (status == ZV_OK) {
        reply = zv_msg_reply (*call_p);
        if (body)
            zv_msg_set_body (reply, &body);
    }
    else {
        reply = zv_msg_error (*call_p, status, "%s", error);
        json_decref (body);
    }
    zv_msg_destroy (call_p);
    zv_harness_feed (self, &reply);
}

//  Drop everything captured so far.
static inline void
zv_harness_clear (zv_harness_t *self)
{
    zlistx_purge (self->sent);
    zlistx_purge (self->refused);
}

//  ---------------------------------------------------------------------
//  Peers and records, acted out

//  A scheduler "scheduler.<host>" heartbeats: the conductor asks it from now on.
static inline void
zv_harness_scheduler_up (zv_harness_t *self, const char *host)
{
    char identity [300];
    snprintf (identity, sizeof identity, "scheduler.%s", host);
    json_decref (zv_harness_ok (self, "conductor.service_heartbeat", identity,
                                json_pack ("{s:s, s:s}", "binary", "scheduler", "host", host)));
}

//  A compute "compute.<host>" heartbeats with its inventories.
static inline void
zv_harness_compute_up (zv_harness_t *self, const char *host, int vcpus, int ram_mb, int disk_gb)
{
    char identity [300];
    snprintf (identity, sizeof identity, "compute.%s", host);
    json_t *node = json_pack ("{s:{s:{s:i}, s:{s:i}, s:{s:i}}, s:i, s:s}", "inventories",
                              "VCPU", "total", vcpus, "MEMORY_MB", "total", ram_mb,
                              "DISK_GB", "total", disk_gb, "running_vms", 0, "hypervisor_type", "test");
    json_decref (zv_harness_ok (self, "conductor.service_heartbeat", identity,
                                json_pack ("{s:s, s:s, s:o}", "binary", "compute", "host", host, "node", node)));
}

static inline void
zv_harness_flavor (zv_harness_t *self, const char *name, int vcpus, int ram_mb, int disk_gb)
{
    json_decref (zv_harness_ok (self, "conductor.flavor_create", "api.test",
                                json_pack ("{s:s, s:i, s:i, s:i}", "name", name, "vcpus", vcpus,
                                           "ram_mb", ram_mb, "disk_gb", disk_gb)));
}

//  An active image of 4 bytes, uploaded in one chunk; its id into id.
static inline void
zv_harness_image (zv_harness_t *self, const char *name, char id [ZV_UUID_LEN + 1])
{
    json_t *created = zv_harness_ok (self, "conductor.image_create", "api.test",
                                     json_pack ("{s:s, s:I}", "name", name, "size", (json_int_t) 4));
    snprintf (id, ZV_UUID_LEN + 1, "%s", json_string_value (json_object_get (json_object_get (created, "image"), "id")));
    json_decref (created);
    zv_msg_t *upload = zv_harness_msg ("conductor.image_upload", "api.test",
                                       json_pack ("{s:s, s:I, s:b}", "id", id, "offset", (json_int_t) 0,
                                                  "last", 1));
    zv_msg_set_payload (upload, "zova", 4);
    char request_id [80];
    snprintf (request_id, sizeof request_id, "%s", zv_msg_id (upload));
    zv_harness_feed (self, &upload);
    zv_msg_t *reply = zv_harness_take_reply (self, request_id);
    assert_non_null (reply);
    assert_int_equal (zv_msg_status (reply), ZV_OK);
    assert_string_equal (json_string_value (json_object_get (json_object_get (zv_msg_body (reply), "image"),
                                                             "status")), "active");
    zv_msg_destroy (&reply);
}

//  Create one server (in the current context's project) and return the
//  reply's body (new).
static inline json_t *
zv_harness_create (zv_harness_t *self, const char *name, const char *flavor, const char *image)
{
    return zv_harness_ok (self, "conductor.server_create", "api.test",
                          json_pack ("{s:s, s:s, s:s}", "name", name, "flavor", flavor, "image", image));
}

//  A server's record as server_show gives it (new).
static inline json_t *
zv_harness_show (zv_harness_t *self, const char *ref)
{
    json_t *body = zv_harness_ok (self, "conductor.server_show", "api.test",
                                  json_pack ("{s:s}", "ref", ref));
    json_t *server = json_incref (json_object_get (body, "server"));
    json_decref (body);
    return server;
}

//  Take the scheduler's call for the next job and answer it with hosts:
//  one array of choices (first, then alternates) per instance, as a json
//  array (taken).
static inline void
zv_harness_select (zv_harness_t *self, json_t *destinations)
{
    zv_msg_t *call = zv_harness_take (self, "scheduler.select_destinations", NULL);
    if (!call)
        fail_msg ("no scheduler.select_destinations call was made");
    zv_harness_answer (self, &call, ZV_OK, NULL, json_pack ("{s:o}", "destinations", destinations));
}

//  A host's report on an instance, as compute sends it: an outcome of the
//  task in flight, with the power state seen (NULL: none); must succeed.
static inline void
zv_harness_report (zv_harness_t *self, const char *compute, const char *uuid, const char *task,
                   const char *outcome, const char *power)
{
    json_t *body = json_pack ("{s:s, s:[s], s:s}", "uuid", uuid, "expected_task_state", task, "outcome", outcome);
    if (power)
        json_object_set_new (body, "power_state", json_string (power));
    json_decref (zv_harness_ok (self, "conductor.instance_update", compute, body));
}

//  Boot a server on host to ACTIVE, as the scheduler and the host's compute
//  would (the build's steps, each a compare-and-swap); its uuid into uuid.
static inline void
zv_harness_boot (zv_harness_t *self, const char *name, const char *flavor, const char *image,
                 const char *host, char uuid [ZV_UUID_LEN + 1])
{
    json_t *created = zv_harness_create (self, name, flavor, image);
    json_t *server = json_array_get (json_object_get (created, "servers"), 0);
    snprintf (uuid, ZV_UUID_LEN + 1, "%s", json_string_value (json_object_get (server, "id")));
    char rq [80];
    snprintf (rq, sizeof rq, "%s", json_string_value (json_object_get (server, "request_id")));
    json_decref (created);
    zv_harness_select (self, json_pack ("[[s]]", host));
    char compute [300];
    snprintf (compute, sizeof compute, "compute.%s", host);
    zv_msg_t *build = zv_harness_take (self, "compute.build_instance", compute);
    if (!build)
        fail_msg ("no compute.build_instance to %s", compute);
    zv_msg_destroy (&build);
    static const char *steps [] = { "scheduling", "networking", "block_device_mapping" };
    for (size_t step = 0; step < sizeof steps / sizeof steps [0]; step++)
        zv_harness_report (self, compute, uuid, steps [step], "step", NULL);
    json_decref (zv_harness_ok (self, "conductor.instance_update", compute,
                                json_pack ("{s:s, s:[s], s:s, s:s, s:s}", "uuid", uuid,
                                           "expected_task_state", "spawning", "outcome", "done",
                                           "power_state", "running", "action_request_id", rq)));
}

//  A scheduler, the hosts' inventories, a flavor of 1 VCPU / 512 MB / 1 GB
//  and an image: what a create needs.  The image's id into image.
static inline void
zv_harness_cloud (zv_harness_t *self, char image [ZV_UUID_LEN + 1])
{
    zv_harness_scheduler_up (self, "s1");
    zv_harness_compute_up (self, "node1", 4, 4096, 40);
    zv_harness_flavor (self, "m1", 1, 512, 1);
    zv_harness_image (self, "cirros", image);
    zv_harness_clear (self);
}

static inline const char *
zv_harness_get (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  The id of the first server of a create's reply, into uuid.
static inline void
zv_harness_created_uuid (json_t *created, char uuid [ZV_UUID_LEN + 1])
{
    json_t *server = json_array_get (json_object_get (created, "servers"), 0);
    assert_non_null (server);
    snprintf (uuid, ZV_UUID_LEN + 1, "%s", zv_harness_get (server, "id"));
}

//  The newest action record of the named action on a server (new), or NULL.
static inline json_t *
zv_harness_event (zv_harness_t *self, const char *uuid, const char *action)
{
    json_t *body = zv_harness_ok (self, "conductor.server_events", "api.test",
                                  json_pack ("{s:s}", "ref", uuid));
    json_t *found = NULL;
    size_t index;
    json_t *event;
    json_array_foreach (json_object_get (body, "events"), index, event)
        if (streq (zv_harness_get (event, "action"), action)) {
            json_decref (found);
            found = json_incref (event);
        }
    json_decref (body);
    return found;
}

#endif
