/*  zv_state.h: the instance state machine, as Nova names and derives it.

    Three enums (vm_state, task_state, power_state) with Nova's names, the
    user-facing status derived from (vm_state, task_state) as Nova's
    nova/api/openstack/common.py does, and the one table of user actions:
    for each action, the vm_states and task_states it is allowed from and the
    task_state it moves the instance to.  zv_state_check is the only place a
    user action is judged; the store applies its answer inside the same
    compare-and-swap transaction.  Each row also says what the action leaves
    when its host reports it done or failed (vm_state, and power_state where
    it is fixed), so that a host reports outcomes and facts and never names a
    vm_state: zv_state_outcome is the only place a report is judged.  Builds
    and rebuilds walk a chain of task_states (scheduling -> networking ->
    block_device_mapping -> spawning), one step table.  Names are what is
    stored and sent: enums never reach the wire or the disk as numbers.      */

#ifndef ZV_STATE_H
#define ZV_STATE_H

#include "common/zv_common.h"

typedef enum {
    ZV_VM_BUILDING, ZV_VM_ACTIVE, ZV_VM_STOPPED, ZV_VM_PAUSED, ZV_VM_SUSPENDED,
    ZV_VM_RESCUED, ZV_VM_RESIZED, ZV_VM_SOFT_DELETED, ZV_VM_DELETED,
    ZV_VM_ERROR, ZV_VM_SHELVED, ZV_VM_SHELVED_OFFLOADED,
    ZV_VM_COUNT
} zv_vm_state_t;

typedef enum {
    ZV_TASK_NONE,                   //  null on the wire and in the store
    ZV_TASK_SCHEDULING, ZV_TASK_BLOCK_DEVICE_MAPPING, ZV_TASK_NETWORKING,
    ZV_TASK_SPAWNING,
    ZV_TASK_IMAGE_SNAPSHOT, ZV_TASK_IMAGE_SNAPSHOT_PENDING,
    ZV_TASK_IMAGE_PENDING_UPLOAD, ZV_TASK_IMAGE_UPLOADING,
    ZV_TASK_UPDATING_PASSWORD,
    ZV_TASK_RESIZE_PREP, ZV_TASK_RESIZE_MIGRATING, ZV_TASK_RESIZE_MIGRATED,
    ZV_TASK_RESIZE_FINISH, ZV_TASK_RESIZE_REVERTING, ZV_TASK_RESIZE_CONFIRMING,
    ZV_TASK_REBOOTING, ZV_TASK_REBOOT_PENDING, ZV_TASK_REBOOT_STARTED,
    ZV_TASK_REBOOTING_HARD, ZV_TASK_REBOOT_PENDING_HARD,
    ZV_TASK_REBOOT_STARTED_HARD,
    ZV_TASK_PAUSING, ZV_TASK_UNPAUSING, ZV_TASK_SUSPENDING, ZV_TASK_RESUMING,
    ZV_TASK_POWERING_OFF, ZV_TASK_POWERING_ON,
    ZV_TASK_RESCUING, ZV_TASK_UNRESCUING,
    ZV_TASK_REBUILDING, ZV_TASK_REBUILD_BLOCK_DEVICE_MAPPING,
    ZV_TASK_REBUILD_SPAWNING,
    ZV_TASK_MIGRATING, ZV_TASK_DELETING, ZV_TASK_SOFT_DELETING,
    ZV_TASK_RESTORING, ZV_TASK_SHELVING, ZV_TASK_SHELVING_IMAGE_PENDING_UPLOAD,
    ZV_TASK_SHELVING_IMAGE_UPLOADING, ZV_TASK_SHELVING_OFFLOADING,
    ZV_TASK_UNSHELVING,
    ZV_TASK_COUNT
} zv_task_state_t;

typedef enum {
    ZV_POWER_NOSTATE, ZV_POWER_RUNNING, ZV_POWER_PAUSED, ZV_POWER_SHUTDOWN,
    ZV_POWER_CRASHED, ZV_POWER_SUSPENDED,
    ZV_POWER_COUNT
} zv_power_state_t;

typedef enum {
    ZV_ACTION_CREATE, ZV_ACTION_DELETE, ZV_ACTION_REBOOT, ZV_ACTION_REBOOT_HARD,
    ZV_ACTION_STOP, ZV_ACTION_START, ZV_ACTION_PAUSE, ZV_ACTION_UNPAUSE,
    ZV_ACTION_SUSPEND, ZV_ACTION_RESUME, ZV_ACTION_RESCUE, ZV_ACTION_UNRESCUE,
    ZV_ACTION_REBUILD, ZV_ACTION_RESIZE, ZV_ACTION_CONFIRM_RESIZE,
    ZV_ACTION_REVERT_RESIZE, ZV_ACTION_MIGRATE, ZV_ACTION_LIVE_MIGRATE,
    ZV_ACTION_SHELVE, ZV_ACTION_SHELVE_OFFLOAD, ZV_ACTION_UNSHELVE,
    ZV_ACTION_SET_PASSWORD, ZV_ACTION_SNAPSHOT, ZV_ACTION_EVACUATE,
    ZV_ACTION_COUNT
} zv_action_t;

//  Names (Nova's spelling: "soft-delete", "powering-off", "rebuild_spawning").
//  zv_task_state_name (ZV_TASK_NONE) is NULL (json null).
const char *zv_vm_state_name (zv_vm_state_t state);
const char *zv_task_state_name (zv_task_state_t state);
const char *zv_power_state_name (zv_power_state_t state);
const char *zv_action_name (zv_action_t action);     //  "pause", "reboot", ...
//  Parse a name; -1 when unknown.  zv_task_state_from_name (NULL) is NONE.
int zv_vm_state_from_name (const char *name);
int zv_task_state_from_name (const char *name);
int zv_power_state_from_name (const char *name);
int zv_action_from_name (const char *name);
//  Nova's integer power_state (0 nostate, 1 running, 3 paused, 4 shutdown,
//  6 crashed, 7 suspended), for displays that show it.
int zv_power_state_code (zv_power_state_t state);

//  User-facing status ("ACTIVE", "BUILD", "HARD_REBOOT", ...) as Nova derives it.
const char *zv_status_derive (zv_vm_state_t vm, zv_task_state_t task);

//  Judge a user action against the transition table.  On ZV_OK *next_p is the
//  task_state to move to.  On ZV_ECONFLICT errbuf holds Nova's message:
//  "Cannot 'pause' instance <uuid> while it is in vm_state stopped" (or
//  "... in task_state deleting").
zv_status_t zv_state_check (zv_action_t action, const char *uuid,
                            zv_vm_state_t vm, zv_task_state_t task,
                            zv_task_state_t *next_p, char *errbuf, size_t errlen);

//  The task_state an action moves the instance to (what zv_state_check
//  answers when the action is allowed); ZV_TASK_NONE for an unknown action.
//  create's is scheduling, the first step of a build.
zv_task_state_t zv_state_action_task (zv_action_t action);

//  What a host reports of an operation in flight.
typedef enum {
    ZV_OUTCOME_STEP,                //  the next step of a chain (build, rebuild)
    ZV_OUTCOME_DONE,                //  the operation succeeded
    ZV_OUTCOME_FAILED,              //  it failed; why says how (zv_status_t)
    ZV_OUTCOME_COUNT
} zv_outcome_t;

const char *zv_outcome_name (zv_outcome_t outcome);  //  "step", "done", "failed"
int zv_outcome_from_name (const char *name);        //  -1 when unknown

//  Markers in a result where a state is not fixed by the table.
#define ZV_VM_SAME          ZV_VM_COUNT             //  vm_state unchanged
#define ZV_VM_PRIOR         (ZV_VM_COUNT + 1)       //  as before the action: stopped if it
                                                    //  was stopped, else active
#define ZV_POWER_REPORTED   ZV_POWER_COUNT          //  what the host saw (unchanged if none)

//  What a report makes of the instance, from the table.
typedef struct {
    zv_action_t action;             //  the action the task in flight belongs to
    zv_task_state_t task;           //  task_state after the report
    int vm;                         //  a zv_vm_state_t, ZV_VM_SAME or ZV_VM_PRIOR
    int power;                      //  a zv_power_state_t or ZV_POWER_REPORTED
    bool finished;                  //  the action is over (its record is closed)
    bool build;                     //  a build's end: launched_at on done, reschedule on failure
} zv_state_result_t;

//  Judge a host's report on an instance whose task_state is task: which
//  outcomes that task can have, and what each leaves.  why is the failure's
//  status (ZV_OK for step and done); an operation the hypervisor does not
//  support (ZV_EUNSUPPORTED) leaves the vm_state as it was, whatever the
//  row says, except for a build.  ZV_ECONFLICT with a clear message when the
//  task cannot have this outcome (a step of a task that is no chain, done
//  in the middle of a build, anything with task_state None).
zv_status_t zv_state_outcome (zv_task_state_t task, zv_outcome_t outcome, zv_status_t why,
                              zv_state_result_t *result, char *errbuf, size_t errlen);

//  Does the action keep the vm_state it started from (old_vm_state on the
//  record), for a later ZV_VM_PRIOR?  (resize, migrate, evacuate, rebuild)
bool zv_state_action_keeps_prior (zv_action_t action);

#endif
