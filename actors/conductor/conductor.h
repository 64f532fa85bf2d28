/*  conductor.h: what the conductor's own files share; nothing outside
    actors/conductor/ includes it.

    The conductor is one object (zv_conductor.h, its public face) served by
    one thread, written as one file per concern: conductor.c (the self, the
    batch and its outbox, the route table and dispatcher, timers, the actor
    body), policy.c, servers.c, builds.c, actions.c, moves.c (moving a
    server between hosts: cold migration, resize, evacuation, each a
    persisted sequence of phases), reports.c, hosts.c, admin.c, catalog.c,
    consoles.c and recovery.c.

    Every handler has the shape zv_conductor_handler_fn and is reached only
    through the route table in conductor.c.  What one file lends another
    has external linkage and the zv_conductor_ prefix, and is declared here
    under the file that defines it; what a file keeps to itself is static.
    The three field readers below are the exception: used on nearly every
    line, they are static inline, as each store/ module keeps its own.     */

#ifndef ZV_CONDUCTOR_INTERNAL_H
#define ZV_CONDUCTOR_INTERNAL_H

#include "actors/conductor/zv_conductor.h"
#include "bus/zv_rpc.h"
#include "store/zv_store.h"
#include "store/zv_migration.h"
#include "store/zv_state.h"

#define ACTOR "conductor"

//  A cast whose peer is not connected: arg is what the cast's sender kept
//  to undo or retry it (owned by the outbox, borrowed here).
typedef void (zv_conductor_unreachable_fn) (zv_conductor_t *self, json_t *arg);

//  A set of instances waiting for (or in) a scheduler's decision.
typedef struct {
    json_t *uuids;                  //  array of instance uuids
    json_t *spec;                   //  request spec (resources, project, zone)
    json_t *ignore_hosts;           //  hosts excluded (failed attempts)
    int attempt;
    int min_count;                  //  all or nothing up to this many
    char last_failure [600];        //  why the previous attempt failed, if it did
    char rq [72];
    char scheduler [320];           //  who was asked
    int64_t queued_ms;
    char migration [ZV_UUID_LEN + 1];   //  a move's job: its migration ("" for builds)
} zv_conductor_job_t;

//  The self: the store, the calls in flight, what the handlers remember
//  between messages, and the current batch.  No socket: what is sent goes
//  to the sink (zv_conductor.h).
struct _zv_conductor_t {
    zv_config_t cfg;
    zv_conductor_sink_fn *sink;
    void *sink_arg;
    zv_store_t *store;
    zv_rpc_t *rpc;
    char epoch [ZV_UUID_LEN + 1];
    int64_t started_ms;
    char images_dir [1100];
    zhashx_t *schedulers;           //  identity -> last heartbeat (mono ms, boxed)
    zhashx_t *failed_builds;        //  host -> builds failed since its last success (boxed)
    zlistx_t *waiting;              //  zv_conductor_job_t waiting for a live scheduler
    size_t next_scheduler;
    //  The current batch.
    zv_txn_t *batch;
    zlistx_t *outbox;               //  s_out_t (conductor.c)
    bool in_batch;
    bool scheduler_seen;            //  a scheduler's heartbeat is in the batch
    int64_t generation;             //  host states generation (placement-like)
};

//  One request as a handler sees it.  The handler returns the reply body
//  (new) in reply, or an error status with errbuf set; the dispatcher
//  (conductor.c) sends the reply once the batch is committed.  Who sent it
//  was judged before the handler ran (policy.c): the peer's identity, the
//  user context an api stamped, and for a route about one server, that
//  server's record.
typedef struct {
    const zv_msg_t *msg;
    const void *route_arg;          //  the route's argument (e.g. a resource row)
    const zv_context_t *context;    //  the user it acts for (NULL: a service speaks)
    char peer_binary [64];          //  the sender's identity: "<binary>.<host>"
    char peer_host [256];
    json_t *instance;               //  the server the route is about, when it names one (owned)
    json_t *reply;                  //  body of the reply, set by the handler
    zv_status_t error;              //  an error to answer although the handler's
    char errtext [512];             //  writes are kept (handler returned ZV_OK)
    void *payload;                  //  bytes for the reply's payload frame (malloc'd)
    size_t payload_size;
    bool deferred;                  //  the handler answers later (consoles.c relays)
} zv_conductor_call_t;

typedef zv_status_t (zv_conductor_handler_fn) (zv_conductor_t *self, zv_txn_t *txn,
                                               zv_conductor_call_t *call,
                                               char *errbuf, size_t errlen);

//  Who may call a route: every row of the route table says it once, and
//  the dispatcher checks it before the handler runs (policy.c).
typedef enum {
    ZV_ALLOW_USER,          //  any user: a context, from an api
    ZV_ALLOW_OWNER,         //  the server's project, or an admin ("ref" names the server)
    ZV_ALLOW_ADMIN,         //  an admin only
    ZV_ALLOW_HOST,          //  the compute host of the server ("uuid"), or of its open move
    ZV_ALLOW_SELF,          //  a service about itself: identity "<binary>.<host>" of the body
    ZV_ALLOW_SERVICE,       //  a service of the route's binary (scheduler, consoleproxy, compute)
    ZV_ALLOW_COUNT
} zv_allow_t;

typedef struct {
    const char *type;
    zv_conductor_handler_fn *handler;
    const void *arg;
    //  What the request itself must say, judged before who asks (a name
    //  that is no action is a 400 whoever sends it); NULL: nothing more
    //  than the catalogue checks.
    zv_conductor_handler_fn *check;
    //  The handler only reads and relays (a move's file chunks): it runs
    //  in a read transaction of its own, outside the batch, so that it
    //  never costs a synced commit.
    bool read_only;
    zv_allow_t allow;
    const char *policy;             //  Nova's policy name, as a 403 names it
    const char *service;            //  ZV_ALLOW_SERVICE: the binary that may call
} zv_conductor_route_t;

//  Which records zv_conductor_collect keeps (it may edit rec in place).
typedef bool (zv_conductor_keep_fn) (zv_conductor_t *self, json_t *rec, void *arg);

//  Flavors and images are listed and shown alike: one handler each, the
//  route's resource row says which table and what to call it.
typedef struct {
    zv_table_t table;
    const char *singular;           //  "flavor": the reply key of a show
    const char *plural;             //  "flavors": the reply key of a list
} zv_conductor_resource_t;

//  Field readers: NULL / 0 when absent or of another type.
static inline const char *
s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

static inline json_int_t
s_int (const json_t *object, const char *key)
{
    return json_integer_value (json_object_get (object, key));
}

static inline const char *
s_iso_now (char buf [32])
{
    return zv_iso8601 (zv_now_ms (), buf);
}

//  ---------------------------------------------------------------------
//  conductor.c: the batch, its outbox, and helpers every handler uses

//  The batch's write transaction, opened on first use; NULL if it cannot be.
zv_txn_t *zv_conductor_batch_txn (zv_conductor_t *self);
//  Queue a reply (or any message) for after the commit; takes *msg_p.
void zv_conductor_out (zv_conductor_t *self, zv_msg_t **msg_p);
//  Queue a call: fn(ctx) runs on the reply, the timeout or a failed send,
//  inside a batch.  free_ctx frees ctx if the call is never made.
void zv_conductor_out_call (zv_conductor_t *self, zv_msg_t **msg_p, int timeout_ms,
                            zv_rpc_fn *fn, void *ctx, zv_rpc_free_fn *free_ctx);
//  Queue a cast; unreachable (may be NULL) runs with arg (taken) inside a
//  batch of its own when the peer is not connected.
void zv_conductor_out_cast (zv_conductor_t *self, zv_msg_t **msg_p,
                            zv_conductor_unreachable_fn *unreachable, json_t *arg);
//  An instance fault as Nova shows it {message, code, created}; new.
json_t *zv_conductor_fault (zv_status_t status, const char *message);
//  Drop the store's record version from rec; returns rec.
json_t *zv_conductor_strip (json_t *rec);
//  Printable, no leading or trailing blanks (Nova's name parameter).
bool zv_conductor_valid_name (const char *what, const char *name, char *errbuf, size_t errlen);
//  One record by id, or by unique "name" among non-deleted records (of
//  project, unless NULL).  *rec_p new; ZV_ENOTFOUND / ZV_ECONFLICT with errbuf.
zv_status_t zv_conductor_find (zv_txn_t *txn, zv_table_t table, const char *what, const char *ref,
                               const char *project, json_t **rec_p, char *errbuf, size_t errlen);
//  Every record of a table that keep (NULL: all) keeps, stripped; new array.
json_t *zv_conductor_collect (zv_conductor_t *self, zv_txn_t *txn, zv_table_t table,
                              zv_conductor_keep_fn *keep, void *arg);

//  ---------------------------------------------------------------------
//  policy.c: who may call what

//  Judge call against route: the context only from an api, then the
//  route's rule.  Fills call's peer and, for owner and host routes, its
//  instance.  ZV_EFORBIDDEN ("Policy doesn't allow <policy> to be
//  performed."), ZV_ENOTFOUND (a server of another project is not there
//  for its caller) or ZV_OK.
zv_status_t zv_conductor_authorize (zv_conductor_t *self, zv_txn_t *txn, const zv_conductor_route_t *route,
                                    zv_conductor_call_t *call, char *errbuf, size_t errlen);
//  The caller's project ("" for a service), and whether it is an admin.
const char *zv_conductor_project (const zv_conductor_call_t *call);
const char *zv_conductor_user (const zv_conductor_call_t *call);
bool zv_conductor_is_admin (const zv_conductor_call_t *call);
//  A 403 for a request that needs an admin (e.g. all_projects): ZV_EFORBIDDEN.
zv_status_t zv_conductor_forbidden (const char *policy, char *errbuf, size_t errlen);

//  ---------------------------------------------------------------------
//  servers.c

zv_conductor_handler_fn zv_conductor_server_create, zv_conductor_server_list,
    zv_conductor_server_show, zv_conductor_server_delete, zv_conductor_server_events;
//  The server a request names ("ref"): by uuid (deleted ones too) or by
//  unique live name in the caller's project; a server of another project
//  is found only by an admin.  The dispatcher's lookup is reused when
//  there was one.  *rec_p new.
zv_status_t zv_conductor_find_server (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                      json_t **rec_p, char *errbuf, size_t errlen);
//  Ask the instance's host to destroy it (a cast), or finish the delete
//  here when it has no host.
zv_status_t zv_conductor_start_terminate (zv_conductor_t *self, zv_txn_t *txn, json_t *rec,
                                          const char *action_rq, char *errbuf, size_t errlen);

//  ---------------------------------------------------------------------
//  builds.c

//  A build's host reported it failed (hosts.c hands the report over, with
//  the ERROR changes the state table gives): reschedule, or ERROR when the
//  attempts are spent.
zv_status_t zv_conductor_build_failed (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                       const json_t *error_changes, char *errbuf, size_t errlen);
//  Give back an instance's claim.
zv_status_t zv_conductor_release (zv_conductor_t *self, zv_txn_t *txn, const char *uuid);
//  ERROR with a fault, claim released, create action closed; only from one
//  of the expected task_states.
zv_status_t zv_conductor_fail_build (zv_conductor_t *self, zv_txn_t *txn, const char *uuid,
                                     const json_t *expected, zv_status_t why, const char *message);
//  Deleted, claim released, delete action finished, tokens revoked, group left.
zv_status_t zv_conductor_finish_delete (zv_conductor_t *self, zv_txn_t *txn, const char *uuid,
                                        const char *action_rq, char *errbuf, size_t errlen);
void zv_conductor_job_destroy (zv_conductor_job_t **job_p);
//  Ask a live scheduler (after the commit) or park the job; takes *job_p.
void zv_conductor_schedule (zv_conductor_t *self, zv_conductor_job_t **job_p);
//  Parked jobs go out when a scheduler is up; they fail after rpc_timeout.
void zv_conductor_flush_waiting (zv_conductor_t *self);
//  Count a build failure against host, or clear its count on a success.
void zv_conductor_count_failure (zv_conductor_t *self, const char *host, bool failed);

//  ---------------------------------------------------------------------
//  actions.c

zv_conductor_handler_fn zv_conductor_server_action, zv_conductor_server_action_check;

//  ---------------------------------------------------------------------
//  hosts.c

zv_conductor_handler_fn zv_conductor_service_heartbeat, zv_conductor_compute_sync, zv_conductor_host_states,
    zv_conductor_service_list, zv_conductor_service_set, zv_conductor_hypervisor_list,
    zv_conductor_hypervisor_show;
//  "up", "down" or "degraded" from a service record (NULL: down).
const char *zv_conductor_service_state (zv_conductor_t *self, const json_t *service);
//  A service record shown: state and status set, internals dropped; returns rec.
json_t *zv_conductor_service_view (zv_conductor_t *self, json_t *rec);
//  The compute service record of host (new), or NULL.
json_t *zv_conductor_compute_service (zv_conductor_t *self, zv_txn_t *txn, const char *host);
//  The request id of an instance's newest unfinished action (of the named
//  action, or any when NULL), copied into buf; NULL when none.
const char *zv_conductor_open_action_rq (zv_txn_t *txn, const char *uuid, const char *action,
                                         char *buf, size_t len);

//  ---------------------------------------------------------------------
//  phases.c: the phases of each kind of move, one table each

typedef enum { ZV_MOVE_NOWHERE, ZV_MOVE_SOURCE, ZV_MOVE_DEST } zv_move_where_t;

typedef struct {
    const char *name;
    zv_move_where_t where;
    const char *cast;               //  what starts it on its host (NULL: nothing to cast)
    const char *task;               //  the instance's task_state while it runs (NULL: None)
    const char *status;             //  the migration's status while it runs
    const char *next;               //  after done (NULL: the move ends with ends_done)
    const char *undo;               //  after a failure (NULL: the move ends with ends_failed)
    const char *ends_done;
    const char *ends_failed;
    //  Only its host can say how the phase ended (a live migration's job:
    //  the guest may be on either host): never undone for a host that is
    //  away or silent, cast again until it answers.
    bool waits;
    //  Entering it, the server is on the destination for good: its host,
    //  console and power follow, the source's allocation goes.
    bool lands;
} zv_move_phase_t;

//  The row of phase in the table of a move of kind ("migration", "resize",
//  "live-migration", "evacuation"); NULL when there is none.
const zv_move_phase_t *zv_conductor_move_phase (const char *kind, const char *phase);

//  ---------------------------------------------------------------------
//  moves.c: the engine of moves (cold migration, resize, evacuation, live
//  migration) as persisted phases; move_requests.c: what users ask of them

zv_conductor_handler_fn zv_conductor_server_migrate, zv_conductor_server_resize,
    zv_conductor_server_resize_confirm, zv_conductor_server_resize_revert, zv_conductor_server_evacuate,
    zv_conductor_host_evacuate, zv_conductor_migration_list, zv_conductor_migration_show,
    zv_conductor_move_report, zv_conductor_move_read;
//  Move migration (as read in txn) from its phase to phase: one
//  compare-and-swap on the migration and on the instance's task_state, the
//  phase's cast once committed; changes (taken, may be NULL) merge into the
//  migration.
zv_status_t zv_conductor_move_enter (zv_conductor_t *self, zv_txn_t *txn, const json_t *migration,
                                     const char *phase, json_t *changes, char *errbuf, size_t errlen);
//  In txn: claim host for the move (the source allocation passes to the
//  migration, the instance claims host with the new flavor) and enter its
//  first phase there.
zv_status_t zv_conductor_move_claim (zv_conductor_t *self, zv_txn_t *txn, const json_t *migration,
                                     const char *host, char *errbuf, size_t errlen);
//  A migration record as people see it (the store's own keys and the
//  hosts' exchange removed); takes migration, returns it.
json_t *zv_conductor_migration_view (json_t *migration);
//  Open a move of rec's server: the action record (judged by the state
//  table), the migration record (extra_fields merged in, may be NULL), and
//  its first phase (scheduling, or the claim of a forced host).  The reply
//  {server, migration} is set on call.
zv_status_t zv_conductor_move_open (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                    const json_t *rec, zv_action_t action, zv_migration_kind_t kind,
                                    const json_t *new_flavor, const char *requested_host, bool forced,
                                    const json_t *extra_fields, char *errbuf, size_t errlen);
//  A destination the caller names: a compute host that is up, enabled
//  (unless forced) and not the server's own (unless same_host_ok).
zv_status_t zv_conductor_move_check_destination (zv_conductor_t *self, zv_txn_t *txn, const json_t *rec,
                                                 const char *host, bool forced, bool same_host_ok,
                                                 char *errbuf, size_t errlen);
//  A move's scheduling job was answered (reply: the scheduler's destinations
//  or its error); the job stays the caller's.
void zv_conductor_move_scheduled (zv_conductor_t *self, zv_conductor_job_t *job, zv_msg_t *reply);
//  A move's scheduling job could not be asked (no scheduler): the move ends.
void zv_conductor_move_unscheduled (zv_conductor_t *self, zv_conductor_job_t *job, zv_status_t why,
                                    const char *message);
//  Recovery: every open move is driven on (at start), phases past
//  move_phase_timeout are cast again or undone, resizes past
//  resize_confirm_window confirmed (housekeeping).
void zv_conductor_moves_sweep (zv_conductor_t *self, bool at_start);
//  A server is deleted while it moves: its move closes in error, the
//  migration's allocation goes, and the end of the move the delete does
//  not reach is told to clean what the move made there.
void zv_conductor_move_cancel (zv_conductor_t *self, zv_txn_t *txn, const json_t *rec, const char *why);
//  A compute host restarted (its sync says when): the phases of open moves
//  that run on it are cast to it again.
void zv_conductor_moves_host_synced (zv_conductor_t *self, zv_txn_t *txn, const char *host,
                                        int64_t started_ms);

//  ---------------------------------------------------------------------
//  live.c: live migration's requests (its phases are moves.c's)

zv_conductor_handler_fn zv_conductor_live_migrate, zv_conductor_migration_abort,
    zv_conductor_migration_force_complete;

//  ---------------------------------------------------------------------
//  reports.c: a host's reports on its instances

zv_conductor_handler_fn zv_conductor_instance_update, zv_conductor_instance_destroyed;

//  ---------------------------------------------------------------------
//  admin.c

zv_conductor_handler_fn zv_conductor_flavor_set, zv_conductor_aggregate_create,
    zv_conductor_aggregate_list, zv_conductor_aggregate_show, zv_conductor_aggregate_delete,
    zv_conductor_aggregate_host, zv_conductor_aggregate_set, zv_conductor_zone_list,
    zv_conductor_group_create, zv_conductor_group_list, zv_conductor_group_show,
    zv_conductor_group_delete, zv_conductor_provider_list, zv_conductor_provider_show,
    zv_conductor_provider_set;
//  A host's zone from zv_aggregate_by_host's map; borrowed.
const char *zv_conductor_host_zone (zv_conductor_t *self, const json_t *by_host, const char *host);
//  Some compute host is in zone.
bool zv_conductor_zone_exists (zv_conductor_t *self, zv_txn_t *txn, const char *zone);

//  ---------------------------------------------------------------------
//  catalog.c

zv_conductor_handler_fn zv_conductor_flavor_create, zv_conductor_flavor_delete,
    zv_conductor_resource_list, zv_conductor_resource_show, zv_conductor_image_create,
    zv_conductor_image_upload, zv_conductor_image_delete, zv_conductor_image_download,
    zv_conductor_image_set, zv_conductor_image_read;
//  The resource rows of the list and show routes.
extern const zv_conductor_resource_t zv_conductor_flavors, zv_conductor_images;
//  Every image record an instance's domain needs on its host, by id; new.
json_t *zv_conductor_action_images (zv_txn_t *txn, const json_t *rec, const char *rescue_image);

//  ---------------------------------------------------------------------
//  consoles.c

zv_conductor_handler_fn zv_conductor_console_url, zv_conductor_console_url_check, zv_conductor_console_log,
    zv_conductor_server_screenshot, zv_conductor_console_authorize;
//  Revoke an instance's console tokens, or every expired one (uuid NULL).
void zv_conductor_tokens_revoke (zv_txn_t *txn, const char *uuid);
//  Ask "compute.<host>" (type, body taken) and answer the call's asker with
//  what it says, once it does (call->deferred): body and payload are moved
//  across, never copied into a tree.
zv_status_t zv_conductor_relay (zv_conductor_t *self, zv_conductor_call_t *call, const char *host,
                                const char *type, json_t *body, int timeout_ms);

//  ---------------------------------------------------------------------
//  recovery.c

//  Finish or fail what is stuck (at_start: what a previous run left).
void zv_conductor_sweep (zv_conductor_t *self, bool at_start);

#endif
