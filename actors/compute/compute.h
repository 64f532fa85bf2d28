/*  compute.h: what the compute actor's files share (internal: nothing
    outside actors/compute/ includes it).

    One compute is one hypervisor host; its state is one zv_compute_t owned
    by the actor's thread, and every function here runs on that thread
    unless it says otherwise.  The files, by concern:

        compute.c   the actor: its state, loop, timers, the route table of
                    the message types it serves
        host.c      the hypervisor connection (reconnect backoff), the node
                    report (inventory) of the heartbeat, instance directories
        ops.c       the operation table (what each action does on the
                    hypervisor) and running one: images, workers, the report
        build.c     a build's task-state steps and its report
        sync.c      full and partial syncs, domain events, terminate, orphans
        guest.c     the guest agent's queries and their retries
        consoles.c  console log, screenshot, serial console ports
        migrate.c   a move's phases on this host: the casts, one phase at
                    a time per instance, their reports, what both halves
                    share (markers, defining the moved domain)
        migrate_src.c  what a move's source does: power off and set the
                    files aside, serve their chunks, confirm, revert
        migrate_dst.c  what a move's destination does: prepare, pull the
                    files and finish, revert, rebuild (evacuate)

    A move's phases are rows of ops.c's table (run by the same machinery
    as user actions) whose hypervisor calls live in migrate_src.c and
    migrate_dst.c, named by where they run.                                */

#ifndef ZV_COMPUTE_H
#define ZV_COMPUTE_H

#include "actors/zv_actors.h"
#include "bus/zv_link.h"
#include "bus/zv_workers.h"
#include "virt/zv_virt.h"
#include "virt/zv_imagecache.h"
#include "virt/zv_movepull.h"

//  Agent queries until the guest has an address (one every
//  ZV_COMPUTE_GUEST_RETRY_MS, checked every 500 ms).
#define ZV_COMPUTE_GUEST_RETRIES 6
#define ZV_COMPUTE_GUEST_RETRY_MS 3000

typedef struct {
    zv_config_t cfg;
    char name [300];                //  "compute.<host>", for logs
    zsock_t *pipe;
    zloop_t *loop;
    zv_link_t *link;
    const zv_virt_driver_t *driver;
    zv_virt_t *virt;
    bool virt_lost;                 //  the connection closed: reconnect before use
    bool synced_virt;               //  a full sync has run on this connection
    zmq_pollitem_t event_item;      //  the driver's event fd, while connected
    bool event_polled;
    json_t *custom;                 //  custom resource classes: {CUSTOM_X: total}
    char instances_path [1100];
    char cache_path [1100];
    zv_workers_t *workers;
    zv_imagecache_t *cache;
    json_t *event_uuids;            //  uuids named by events since the last partial sync
    json_t *guest_retries;          //  uuid -> {attempt, due}: agents to ask again
    json_t *serial_ports;           //  uuid -> serial console TCP port given to its domain
    int event_timer;                //  -1 when none armed
    int64_t started_ms;
    int64_t reconnect_at;           //  mono ms of the next reconnect try
    int reconnect_delay_ms;
    char degraded [600];            //  why the hypervisor is unreachable ("" when it is not)
    zhashx_t *moves;                //  "<migration>/<phase>" -> its op while it runs here (borrowed)
    zhashx_t *move_queues;          //  instance uuid -> zlistx_t of its move ops, the first one running
    bool stopping;                  //  the actor ends: moves are let go, none held or started
    zhashx_t *live_jobs;            //  instance uuid -> the live migration job it runs here (migrate_live.c)
    int live_timer;                 //  the jobs' monitor
} zv_compute_t;

//  ---------------------------------------------------------------------
//  Operations: what an action does on the hypervisor, one row each (ops.c)

typedef struct _zv_compute_op_t zv_compute_op_t;
//  The hypervisor calls of an action (on a worker thread on QEMU).
typedef zv_status_t (zv_compute_run_fn) (zv_compute_op_t *op);
//  What an action does on the loop before its images and hypervisor calls
//  (a move's file transfer, a rebuild's steps); it ends by calling
//  zv_compute_op_start, or zv_compute_op_report on a failure.
typedef void (zv_compute_begin_fn) (zv_compute_t *self, zv_compute_op_t *op);

//  An action's row says what the host does, never what the instance
//  becomes: the host reports done or failed, and the conductor's state
//  table (store/zv_state.c) decides the vm_state.
typedef struct {
    const char *action;             //  zv_state action name ("create" for a spawn)
    const char *task_state;         //  the task_state the conductor set
    zv_compute_run_fn *run;         //  hypervisor calls (worker thread on QEMU)
    bool needs_images;              //  the _base files must be there (re-fetched if not)
    bool rescue_images;             //  the rescue image's too
    bool defines;                   //  (re)defines the domain from its record: a new serial port
    //  A move's phase only: the migration's phase it serves (NULL for a
    //  user action), and what it does on the loop first.  The action's
    //  name is the verb of the cast that brings it ("move_revert").
    const char *phase;
    zv_compute_begin_fn *begin;
} zv_compute_action_t;

//  Where a move's op stands on this host (migrate.c).
typedef enum {
    ZV_MOVE_QUEUED,                 //  waits for the phase before it on the same instance
    ZV_MOVE_BEGUN,                  //  its begin runs (a file transfer): migrate.c owns it
    ZV_MOVE_RUNNING,                //  images, hypervisor calls: ops.c owns it
    ZV_MOVE_DELAYED,                //  its done report held by debug_move_delay_ms
    ZV_MOVE_STAGE_COUNT
} zv_compute_move_stage_t;

//  A move's phase, as its cast said, and what the phase learnt.  Scalars
//  are copied at the cast: the hypervisor calls read them on a worker.
typedef struct {
    json_t *migration;              //  the cast's migration record (NULL: the op is no move)
    char id [ZV_UUID_LEN + 1];      //  the migration's uuid
    char key [ZV_UUID_LEN + 40];    //  "<id>/<phase>", in self->moves
    bool was_running;               //  the guest ran when the move began: it runs after it
    int shared;                     //  storage shared by both hosts: 1, 0, -1 not known yet
    bool same_host;                 //  source and destination are this host (a resize)
    char instances_path [1100];
    char resize_dir [1300];         //  <instances_path>/<uuid>_resize, the source's files set aside
    json_t *facts;                  //  what the phase learnt, reported with done (set by its calls)
    zv_compute_move_stage_t stage;
    bool cancelled;                 //  a later phase of the instance came: no report
    zv_movepull_t *pull;            //  the destination's transfer, while begun
    int timer;                      //  the held done report's timer, -1 when none
    zv_compute_t *compute;          //  for the timer's callback
} zv_compute_move_t;

struct _zv_compute_op_t {
    const zv_compute_action_t *action;
    const zv_virt_driver_t *driver;
    zv_virt_t *virt;                //  a reference of its own
    json_t *instance;
    json_t *images;                 //  {id: image record}
    json_t *held;                   //  ids of the cached images it holds until its report
    char uuid [ZV_UUID_LEN + 1];
    char rq [72];
    char rescue_image [64];
    char user [64];
    char password [256];
    int fetching;                   //  images still being fetched
    zv_status_t status;
    char errbuf [1024];
    char note [256];                //  a remark for the action record (e.g. soft reboot fell back)
    zv_power_state_t power;         //  after the operation
    //  The host's files for the domain.
    char dir [1200], disk [1300], disk_local [1300], disk_swap [1300], disk_rescue [1300];
    char base [1300];               //  the cached file of the instance's image (the root disk's backing)
    char rescue_base [1300];        //  the cached file of the rescue image
    char console_log [1300], kernel [1300], ramdisk [1300], cmdline [1024];
    char rescue_kernel [1300], rescue_ramdisk [1300], rescue_cmdline [1024];
    char mac [18];
    bool real;                      //  a hypervisor with storage (not the test driver)
    //  Configuration the worker reads.
    int shutdown_timeout_s, soft_reboot_s, agent_timeout_s;
    char vnc_listen [256], network [128];
    char cpu_mode [32], cpu_model [128];    //  [libvirt] cpu_mode, the first of cpu_models
    char serial_host [256];         //  the domain's serial console on a TCP port (0: pty)
    int serial_port;
    char proxyclient [256];         //  where the console proxy reaches this host's consoles
    json_t *consoles;               //  after the operation: {vnc, serial} of the running domain
    //  Build only: the build's progress through its task states.
    int step;
    json_t *guest;                  //  guest_info result
    zv_compute_move_t move;         //  a move's phase only
};

//  A string member of a json object, NULL when absent or not a string.
static inline const char *
zv_compute_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  A message type compute serves: msg is borrowed for the call.
typedef void (zv_compute_serve_fn) (zv_compute_t *self, zv_msg_t *msg);

//  ---------------------------------------------------------------------
//  compute.c

//  Send a reply to the conductor (taken, sent or not).
void zv_compute_answer (zv_compute_t *self, zv_msg_t **reply_p);

//  ---------------------------------------------------------------------
//  host.c

//  Is the hypervisor connected?  Reconnects (with backoff) when it is not,
//  and runs a full sync after a reconnect.  false: self->degraded says why.
bool zv_compute_virt_ready (zv_compute_t *self);
//  Close the connection and stop polling its event fd.
void zv_compute_virt_drop (zv_compute_t *self);
//  A hypervisor with storage and guests (not libvirt's test driver).
bool zv_compute_real (zv_compute_t *self);
//  [compute] custom_resources as {CUSTOM_X: total} (caller owns).
json_t *zv_compute_custom_resources (zv_compute_t *self);
//  The heartbeat's extra fields (a zv_link_node_fn): {node} or {degraded}.
json_t *zv_compute_node_report (void *actor);
//  <instances_path>/<uuid> into buf; returns buf.
const char *zv_compute_instance_dir (zv_compute_t *self, const char *uuid, char *buf, size_t len);
//  Remove an instance's directory and the files in it.
void zv_compute_remove_instance_dir (zv_compute_t *self, const char *uuid);

//  ---------------------------------------------------------------------
//  ops.c

//  The row of an action name; NULL when compute runs no such action.
const zv_compute_action_t *zv_compute_action_find (const char *name);
//  The row of a build (spawning).
const zv_compute_action_t *zv_compute_action_build (void);
//  The row of a move's phase ("prepare", "cleanup_dest", ...); NULL when
//  compute serves no such phase.
const zv_compute_action_t *zv_compute_action_phase (const char *phase);
//  An op from a message's instance record, images and request id; NULL
//  (logged) when the record has no valid uuid.  Caller owns.
zv_compute_op_t *zv_compute_op_new (zv_compute_t *self, zv_msg_t *msg, const zv_compute_action_t *action);
void zv_compute_op_destroy (zv_compute_op_t **op_p);
//  zv_compute_op_destroy as a free function for rpc contexts.
void zv_compute_op_free (void *ctx);
//  Fill an op's paths, fetch the images it needs, run it and report it.
//  Takes ownership of op.
void zv_compute_op_start (zv_compute_t *self, zv_compute_op_t *op);
//  Report an op that will not run (its status and errbuf say why), as
//  its end would be.  Takes ownership of op.
void zv_compute_op_report (zv_compute_t *self, zv_compute_op_t *op);
//  compute.instance_action: a user action on an instance.
void zv_compute_instance_action (zv_compute_t *self, zv_msg_t *msg);
//  What the hypervisor calls of other files share with ops.c's (on the
//  op's thread): the domain spec of the op's files, the disks its flavor
//  asks for that are missing (the root disk an overlay of op->base), and
//  a power off where a missing domain is off already.
zv_domain_spec_t zv_compute_op_spec (zv_compute_op_t *op);
zv_status_t zv_compute_op_make_disks (zv_compute_op_t *op);
zv_status_t zv_compute_op_power_off (zv_compute_op_t *op, int timeout_s, bool *clean_p);
//  Report a move's phase to the conductor (conductor.move_report): outcome
//  "step", "progress", "done" or "failed" (then why and reason), the power
//  state seen (-1: none), the facts learnt (taken; NULL: none).  The answer
//  is an ack: a refusal is logged.  op is only read.
void zv_compute_move_report (zv_compute_t *self, const zv_compute_op_t *op, const char *outcome,
                             zv_status_t why, const char *reason, int power, json_t *facts);

//  ---------------------------------------------------------------------
//  build.c

//  compute.build_instance: a build's steps, then its op.
void zv_compute_build_instance (zv_compute_t *self, zv_msg_t *msg);
//  The end of a build's op, to the conductor.  Takes ownership of op.
void zv_compute_build_report (zv_compute_t *self, zv_compute_op_t *op);
//  Report to the conductor the outcome of the task in flight on uuid: a
//  step, done (text: a remark for the action record) or failed (why and
//  text: the status and the reason), with the power state seen (-1: none)
//  and the facts learnt (taken; NULL: none).  fn(ctx) runs on the answer.
void zv_compute_report (zv_compute_t *self, const char *uuid, const char *rq, const char *task,
                        zv_outcome_t outcome, zv_status_t why, const char *text, int power, json_t *facts,
                        zv_rpc_fn *fn, void *ctx, zv_rpc_free_fn *free_ctx);
//  The facts an op learnt (its domain's consoles); new object.
json_t *zv_compute_op_facts (zv_compute_op_t *op);

//  ---------------------------------------------------------------------
//  sync.c

//  A full sync: every domain of the host, to the conductor.
void zv_compute_sync (zv_compute_t *self);
//  compute.sync_now.
void zv_compute_sync_now (zv_compute_t *self, zv_msg_t *msg);
//  compute.terminate_instance.
void zv_compute_terminate_instance (zv_compute_t *self, zv_msg_t *msg);
//  The driver's event fd is readable (a zloop poller handler; arg is self).
int zv_compute_event_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg);

//  ---------------------------------------------------------------------
//  migrate.c

//  compute.move_prepare, move_source, move_finish, move_confirm,
//  move_revert, move_rebuild: one phase of a move, by the migration's phase.
void zv_compute_move_cast (zv_compute_t *self, zv_msg_t *msg);
//  The end of a move's op (its hypervisor calls done or failed): the
//  report, held by debug_move_delay_ms when done, then the next phase of
//  its instance.  Takes ownership of op.
void zv_compute_move_finished (zv_compute_t *self, zv_compute_op_t *op);
//  The moves in progress let go at the actor's end: ops that wait, are
//  begun or held are freed (those on the workers free themselves).
void zv_compute_moves_destroy (zv_compute_t *self);
//  <instances_path>/.zova-<what>-<migration>: a move's marker files
//  ("shared", the destination's, seen by a source that shares its storage;
//  "shared-seen", the same once seen; "made", the destination made the
//  instance's directory).
const char *zv_compute_move_marker (const zv_compute_op_t *op, const char *what, char *buf, size_t len);
//  Remove the move's marker files (those of this host's instances_path).
void zv_compute_move_forget_markers (const zv_compute_op_t *op);
//  Does path exist?
bool zv_compute_exists (const char *path);
//  Point the root disk at this host's cached image (when both exist), as a
//  disk that came from another host's instances path must.
zv_status_t zv_compute_move_rebase (zv_compute_op_t *op);
//  Define the domain from the instance record and start it if the guest
//  was running when the move began and does not run now (on the op's
//  thread).
zv_status_t zv_compute_move_define (zv_compute_op_t *op);
//  Does the domain run (running or paused) on this host now?
bool zv_compute_move_runs (zv_compute_op_t *op);

//  ---------------------------------------------------------------------
//  migrate_src.c: on the source (the calls run on the op's thread)

zv_status_t zv_compute_move_src_source (zv_compute_op_t *op);
zv_status_t zv_compute_move_src_confirm (zv_compute_op_t *op);
zv_status_t zv_compute_move_src_revert (zv_compute_op_t *op);
//  compute.move_read: a chunk of a file the source set aside.
void zv_compute_move_src_read (zv_compute_t *self, zv_msg_t *msg);

//  ---------------------------------------------------------------------
//  migrate_dst.c: on the destination

zv_status_t zv_compute_move_dst_prepare (zv_compute_op_t *op);
void zv_compute_move_dst_finish_begin (zv_compute_t *self, zv_compute_op_t *op);
zv_status_t zv_compute_move_dst_finish (zv_compute_op_t *op);
zv_status_t zv_compute_move_dst_revert (zv_compute_op_t *op);
void zv_compute_move_dst_rebuild_begin (zv_compute_t *self, zv_compute_op_t *op);
zv_status_t zv_compute_move_dst_rebuild (zv_compute_op_t *op);

//  Is the storage of the instance's directory shared with the move's
//  other host (the destination's marker of prepare, or what the
//  conductor knows)?  On the source.
bool zv_compute_move_shared (zv_compute_op_t *op);

//  ---------------------------------------------------------------------
//  migrate_live.c: a live migration's phases, and the monitor of its job

zv_status_t zv_compute_live_check (zv_compute_op_t *op);
zv_status_t zv_compute_live_pre (zv_compute_op_t *op);
void zv_compute_live_begin (zv_compute_t *self, zv_compute_op_t *op);
zv_status_t zv_compute_live_run (zv_compute_op_t *op);
zv_status_t zv_compute_live_post (zv_compute_op_t *op);
zv_status_t zv_compute_live_cleanup_source (zv_compute_op_t *op);
//  The monitor's table and timer (at the actor's start and end).
void zv_compute_live_init (zv_compute_t *self);
void zv_compute_live_destroy (zv_compute_t *self);
//  The live phase of op ended here: its job leaves the monitor (on the loop).
void zv_compute_live_forget (zv_compute_t *self, zv_compute_op_t *op);
//  compute.move_live_control: abort or force_complete a running job.
void zv_compute_live_control (zv_compute_t *self, zv_msg_t *msg);

//  ---------------------------------------------------------------------
//  guest.c

//  Ask uuid's guest agent what the guest is (on a worker); attempt counts
//  up to ZV_COMPUTE_GUEST_RETRIES (ZV_COMPUTE_GUEST_RETRIES - 1: once).
void zv_compute_guest_query (zv_compute_t *self, const char *uuid, int attempt);
//  The guest agent went away: the record forgets what it said.
void zv_compute_guest_gone (zv_compute_t *self, const char *uuid);
//  Ask again the agents whose retry is due.
void zv_compute_guest_retry_due (zv_compute_t *self);

//  ---------------------------------------------------------------------
//  consoles.c

//  compute.console_log.
void zv_compute_console_log (zv_compute_t *self, zv_msg_t *msg);
//  compute.screenshot.
void zv_compute_screenshot (zv_compute_t *self, zv_msg_t *msg);
//  The TCP port of uuid's serial console (0: none free, a pty then).
int zv_compute_serial_port (zv_compute_t *self, const char *uuid);

#endif
