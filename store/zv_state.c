/*  zv_state.c: the instance state machine as tables.

    Every fact here is a row: the names of the three enums (indexed by the
    enum, so a missing name is a NULL a test catches), Nova's power_state
    codes, the status map (a default per vm_state plus the (vm_state,
    task_state) pairs Nova overrides), and the one transition table of user
    actions, copied from the @check_instance_state decorators of Nova's
    nova/compute/api.py.  State sets are bitmasks so a row reads like the
    decorator it comes from.  Nothing here allocates or keeps state, so it
    is safe from any thread.                                                  */

#include <stdio.h>
#include <string.h>
#include <assert.h>
#include "store/zv_state.h"

//  Bit sets over the enums; task_states need more than 32 bits.
#define VM_BIT(v)   (UINT32_C (1) << (v))
#define TASK_BIT(t) (UINT64_C (1) << (t))
#define VM(s)       VM_BIT (ZV_VM_##s)
#define TASK(s)     TASK_BIT (ZV_TASK_##s)
#define VM_ALL      ((UINT32_C (1) << ZV_VM_COUNT) - 1)
#define TASK_ALL    ((UINT64_C (1) << ZV_TASK_COUNT) - 1)
#define TASK_REBOOTS (TASK (REBOOTING) | TASK (REBOOT_PENDING) \
                    | TASK (REBOOT_STARTED) | TASK (REBOOTING_HARD) \
                    | TASK (REBOOT_PENDING_HARD) | TASK (REBOOT_STARTED_HARD))

static const char *s_vm_names [ZV_VM_COUNT] = {
    [ZV_VM_BUILDING]          = "building",
    [ZV_VM_ACTIVE]            = "active",
    [ZV_VM_STOPPED]           = "stopped",
    [ZV_VM_PAUSED]            = "paused",
    [ZV_VM_SUSPENDED]         = "suspended",
    [ZV_VM_RESCUED]           = "rescued",
    [ZV_VM_RESIZED]           = "resized",
    [ZV_VM_SOFT_DELETED]      = "soft-delete",
    [ZV_VM_DELETED]           = "deleted",
    [ZV_VM_ERROR]             = "error",
    [ZV_VM_SHELVED]           = "shelved",
    [ZV_VM_SHELVED_OFFLOADED] = "shelved_offloaded",
};

static const char *s_task_names [ZV_TASK_COUNT] = {
    [ZV_TASK_NONE]                          = NULL,
    [ZV_TASK_SCHEDULING]                    = "scheduling",
    [ZV_TASK_BLOCK_DEVICE_MAPPING]          = "block_device_mapping",
    [ZV_TASK_NETWORKING]                    = "networking",
    [ZV_TASK_SPAWNING]                      = "spawning",
    [ZV_TASK_IMAGE_SNAPSHOT]                = "image_snapshot",
    [ZV_TASK_IMAGE_SNAPSHOT_PENDING]        = "image_snapshot_pending",
    [ZV_TASK_IMAGE_PENDING_UPLOAD]          = "image_pending_upload",
    [ZV_TASK_IMAGE_UPLOADING]               = "image_uploading",
    [ZV_TASK_UPDATING_PASSWORD]             = "updating_password",
    [ZV_TASK_RESIZE_PREP]                   = "resize_prep",
    [ZV_TASK_RESIZE_MIGRATING]              = "resize_migrating",
    [ZV_TASK_RESIZE_MIGRATED]               = "resize_migrated",
    [ZV_TASK_RESIZE_FINISH]                 = "resize_finish",
    [ZV_TASK_RESIZE_REVERTING]              = "resize_reverting",
    [ZV_TASK_RESIZE_CONFIRMING]             = "resize_confirming",
    [ZV_TASK_REBOOTING]                     = "rebooting",
    [ZV_TASK_REBOOT_PENDING]                = "reboot_pending",
    [ZV_TASK_REBOOT_STARTED]                = "reboot_started",
    [ZV_TASK_REBOOTING_HARD]                = "rebooting_hard",
    [ZV_TASK_REBOOT_PENDING_HARD]           = "reboot_pending_hard",
    [ZV_TASK_REBOOT_STARTED_HARD]           = "reboot_started_hard",
    [ZV_TASK_PAUSING]                       = "pausing",
    [ZV_TASK_UNPAUSING]                     = "unpausing",
    [ZV_TASK_SUSPENDING]                    = "suspending",
    [ZV_TASK_RESUMING]                      = "resuming",
    [ZV_TASK_POWERING_OFF]                  = "powering-off",
    [ZV_TASK_POWERING_ON]                   = "powering-on",
    [ZV_TASK_RESCUING]                      = "rescuing",
    [ZV_TASK_UNRESCUING]                    = "unrescuing",
    [ZV_TASK_REBUILDING]                    = "rebuilding",
    [ZV_TASK_REBUILD_BLOCK_DEVICE_MAPPING]  = "rebuild_block_device_mapping",
    [ZV_TASK_REBUILD_SPAWNING]              = "rebuild_spawning",
    [ZV_TASK_MIGRATING]                     = "migrating",
    [ZV_TASK_DELETING]                      = "deleting",
    [ZV_TASK_SOFT_DELETING]                 = "soft-deleting",
    [ZV_TASK_RESTORING]                     = "restoring",
    [ZV_TASK_SHELVING]                      = "shelving",
    [ZV_TASK_SHELVING_IMAGE_PENDING_UPLOAD] = "shelving_image_pending_upload",
    [ZV_TASK_SHELVING_IMAGE_UPLOADING]      = "shelving_image_uploading",
    [ZV_TASK_SHELVING_OFFLOADING]           = "shelving_offloading",
    [ZV_TASK_UNSHELVING]                    = "unshelving",
};

static const struct {
    const char *name;
    int code;                           //  Nova's power_state integer
} s_power [ZV_POWER_COUNT] = {
    [ZV_POWER_NOSTATE]   = { "nostate",   0 },
    [ZV_POWER_RUNNING]   = { "running",   1 },
    [ZV_POWER_PAUSED]    = { "paused",    3 },
    [ZV_POWER_SHUTDOWN]  = { "shutdown",  4 },
    [ZV_POWER_CRASHED]   = { "crashed",   6 },
    [ZV_POWER_SUSPENDED] = { "suspended", 7 },
};

//  Nova's instance-action names (nova/compute/instance_actions.py); Nova
//  logs a hard reboot as "reboot", zova keeps it distinct so that a name
//  maps back to one action.
static const char *s_action_names [ZV_ACTION_COUNT] = {
    [ZV_ACTION_CREATE]          = "create",
    [ZV_ACTION_DELETE]          = "delete",
    [ZV_ACTION_REBOOT]          = "reboot",
    [ZV_ACTION_REBOOT_HARD]     = "reboot_hard",
    [ZV_ACTION_STOP]            = "stop",
    [ZV_ACTION_START]           = "start",
    [ZV_ACTION_PAUSE]           = "pause",
    [ZV_ACTION_UNPAUSE]         = "unpause",
    [ZV_ACTION_SUSPEND]         = "suspend",
    [ZV_ACTION_RESUME]          = "resume",
    [ZV_ACTION_RESCUE]          = "rescue",
    [ZV_ACTION_UNRESCUE]        = "unrescue",
    [ZV_ACTION_REBUILD]         = "rebuild",
    [ZV_ACTION_RESIZE]          = "resize",
    [ZV_ACTION_CONFIRM_RESIZE]  = "confirmResize",
    [ZV_ACTION_REVERT_RESIZE]   = "revertResize",
    [ZV_ACTION_MIGRATE]         = "migrate",
    [ZV_ACTION_LIVE_MIGRATE]    = "live-migration",
    [ZV_ACTION_SHELVE]          = "shelve",
    [ZV_ACTION_SHELVE_OFFLOAD]  = "shelveOffload",
    [ZV_ACTION_UNSHELVE]        = "unshelve",
    [ZV_ACTION_SET_PASSWORD]    = "changePassword",
    [ZV_ACTION_SNAPSHOT]        = "createImage",
    [ZV_ACTION_EVACUATE]        = "evacuate",
};

//  Nova's _STATE_MAP: the default status of each vm_state, then the pairs
//  whose task_state overrides it.
static const char *s_status_default [ZV_VM_COUNT] = {
    [ZV_VM_BUILDING]          = "BUILD",
    [ZV_VM_ACTIVE]            = "ACTIVE",
    [ZV_VM_STOPPED]           = "SHUTOFF",
    [ZV_VM_PAUSED]            = "PAUSED",
    [ZV_VM_SUSPENDED]         = "SUSPENDED",
    [ZV_VM_RESCUED]           = "RESCUE",
    [ZV_VM_RESIZED]           = "VERIFY_RESIZE",
    [ZV_VM_SOFT_DELETED]      = "SOFT_DELETED",
    [ZV_VM_DELETED]           = "DELETED",
    [ZV_VM_ERROR]             = "ERROR",
    [ZV_VM_SHELVED]           = "SHELVED",
    [ZV_VM_SHELVED_OFFLOADED] = "SHELVED_OFFLOADED",
};

static const struct {
    uint32_t vms;
    uint64_t tasks;
    const char *status;
} s_status_override [] = {
    { VM (ACTIVE),
      TASK (REBOOTING) | TASK (REBOOT_PENDING) | TASK (REBOOT_STARTED),
      "REBOOT" },
    { VM (ACTIVE),
      TASK (REBOOTING_HARD) | TASK (REBOOT_PENDING_HARD)
      | TASK (REBOOT_STARTED_HARD),
      "HARD_REBOOT" },
    { VM (ACTIVE), TASK (UPDATING_PASSWORD), "PASSWORD" },
    { VM (ACTIVE) | VM (STOPPED) | VM (ERROR),
      TASK (REBUILDING) | TASK (REBUILD_BLOCK_DEVICE_MAPPING)
      | TASK (REBUILD_SPAWNING),
      "REBUILD" },
    { VM (ACTIVE) | VM (PAUSED), TASK (MIGRATING), "MIGRATING" },
    { VM (ACTIVE) | VM (STOPPED),
      TASK (RESIZE_PREP) | TASK (RESIZE_MIGRATING) | TASK (RESIZE_MIGRATED)
      | TASK (RESIZE_FINISH),
      "RESIZE" },
    { VM (RESIZED), TASK (RESIZE_REVERTING), "REVERT_RESIZE" },
};

//  The transition table.  Unless a row says otherwise Nova's decorator
//  allows only task_state None.  A row whose vms is empty is no user action
//  (create: an instance is born building, scheduling).  done, power and
//  failed say what the host's report leaves: ZV_VM_SAME keeps the vm_state,
//  ZV_VM_PRIOR restores the one the action started from (old_vm_state),
//  ZV_POWER_REPORTED takes what the host saw.  Moves (resize, migrate,
//  live migration, evacuate) end through the phases of their migration,
//  which finish with these same columns.
#define SAME     ZV_VM_SAME
#define PRIOR    ZV_VM_PRIOR
#define REPORTED ZV_POWER_REPORTED

static const struct {
    zv_action_t action;
    uint32_t vms;                       //  allowed vm_states
    uint64_t tasks;                     //  allowed task_states
    zv_task_state_t next;               //  the task in flight
    int done;                           //  vm_state when it succeeds
    int power;                          //  power_state when it succeeds
    int failed;                         //  vm_state when it fails
    bool keeps_prior;                   //  records old_vm_state for PRIOR
} s_transitions [] = {
    { ZV_ACTION_CREATE,         0, 0,
                                ZV_TASK_SCHEDULING, ZV_VM_ACTIVE, REPORTED, ZV_VM_ERROR, false },
    { ZV_ACTION_DELETE,         VM_ALL & ~VM (DELETED),
                                TASK_ALL & ~TASK (DELETING),
                                ZV_TASK_DELETING, ZV_VM_DELETED, ZV_POWER_NOSTATE, ZV_VM_ERROR, false },
    { ZV_ACTION_REBOOT,         VM (ACTIVE),
                                TASK (NONE) | TASK (REBOOTING)
                                | TASK (REBOOT_PENDING) | TASK (REBOOT_STARTED),
                                ZV_TASK_REBOOTING, ZV_VM_ACTIVE, REPORTED, SAME, false },
    //  Nova leaves a failed hard reboot in ERROR.
    { ZV_ACTION_REBOOT_HARD,    VM (ACTIVE) | VM (STOPPED) | VM (PAUSED)
                                | VM (SUSPENDED) | VM (ERROR),
                                TASK (NONE) | TASK_REBOOTS,
                                ZV_TASK_REBOOTING_HARD, ZV_VM_ACTIVE, REPORTED, ZV_VM_ERROR, false },
    { ZV_ACTION_STOP,           VM (ACTIVE) | VM (ERROR),
                                TASK (NONE), ZV_TASK_POWERING_OFF, ZV_VM_STOPPED, REPORTED, SAME, false },
    { ZV_ACTION_START,          VM (STOPPED),
                                TASK (NONE), ZV_TASK_POWERING_ON, ZV_VM_ACTIVE, REPORTED, SAME, false },
    { ZV_ACTION_PAUSE,          VM (ACTIVE),
                                TASK (NONE), ZV_TASK_PAUSING, ZV_VM_PAUSED, REPORTED, SAME, false },
    { ZV_ACTION_UNPAUSE,        VM (PAUSED),
                                TASK (NONE), ZV_TASK_UNPAUSING, ZV_VM_ACTIVE, REPORTED, SAME, false },
    { ZV_ACTION_SUSPEND,        VM (ACTIVE),
                                TASK (NONE), ZV_TASK_SUSPENDING, ZV_VM_SUSPENDED, REPORTED, SAME, false },
    { ZV_ACTION_RESUME,         VM (SUSPENDED),
                                TASK (NONE), ZV_TASK_RESUMING, ZV_VM_ACTIVE, REPORTED, SAME, false },
    { ZV_ACTION_RESCUE,         VM (ACTIVE) | VM (STOPPED) | VM (ERROR),
                                TASK (NONE), ZV_TASK_RESCUING, ZV_VM_RESCUED, REPORTED, SAME, false },
    { ZV_ACTION_UNRESCUE,       VM (RESCUED),
                                TASK (NONE), ZV_TASK_UNRESCUING, ZV_VM_ACTIVE, REPORTED, SAME, false },
    { ZV_ACTION_REBUILD,        VM (ACTIVE) | VM (STOPPED) | VM (ERROR),
                                TASK (NONE), ZV_TASK_REBUILDING, PRIOR, REPORTED, ZV_VM_ERROR, true },
    { ZV_ACTION_RESIZE,         VM (ACTIVE) | VM (STOPPED),
                                TASK (NONE), ZV_TASK_RESIZE_PREP, ZV_VM_RESIZED, REPORTED, SAME, true },
    //  Nova confirms with task None; zova shows the confirm in progress.
    { ZV_ACTION_CONFIRM_RESIZE, VM (RESIZED),
                                TASK (NONE), ZV_TASK_RESIZE_CONFIRMING, PRIOR, REPORTED, SAME, false },
    { ZV_ACTION_REVERT_RESIZE,  VM (RESIZED),
                                TASK (NONE), ZV_TASK_RESIZE_REVERTING, PRIOR, REPORTED, SAME, false },
    { ZV_ACTION_MIGRATE,        VM (ACTIVE) | VM (STOPPED),
                                TASK (NONE), ZV_TASK_RESIZE_PREP, ZV_VM_RESIZED, REPORTED, SAME, true },
    { ZV_ACTION_LIVE_MIGRATE,   VM (ACTIVE) | VM (PAUSED),
                                TASK (NONE), ZV_TASK_MIGRATING, SAME, REPORTED, SAME, false },
    { ZV_ACTION_SHELVE,         VM (ACTIVE) | VM (STOPPED) | VM (PAUSED)
                                | VM (SUSPENDED),
                                TASK (NONE), ZV_TASK_SHELVING, ZV_VM_SHELVED, ZV_POWER_SHUTDOWN, SAME, false },
    { ZV_ACTION_SHELVE_OFFLOAD, VM (SHELVED),
                                TASK (NONE), ZV_TASK_SHELVING_OFFLOADING, ZV_VM_SHELVED_OFFLOADED,
                                ZV_POWER_NOSTATE, SAME, false },
    { ZV_ACTION_UNSHELVE,       VM (SHELVED) | VM (SHELVED_OFFLOADED),
                                TASK (NONE), ZV_TASK_UNSHELVING, ZV_VM_ACTIVE, REPORTED, SAME, false },
    { ZV_ACTION_SET_PASSWORD,   VM (ACTIVE),
                                TASK (NONE), ZV_TASK_UPDATING_PASSWORD, SAME, REPORTED, SAME, false },
    { ZV_ACTION_SNAPSHOT,       VM (ACTIVE) | VM (STOPPED) | VM (PAUSED)
                                | VM (SUSPENDED),
                                TASK (NONE), ZV_TASK_IMAGE_SNAPSHOT, SAME, REPORTED, SAME, false },
    //  Nova's evacuate is a rebuild on another host: a stopped server stays
    //  stopped, any other comes back active.
    { ZV_ACTION_EVACUATE,       VM (ACTIVE) | VM (STOPPED) | VM (ERROR),
                                TASK (NONE), ZV_TASK_REBUILDING, PRIOR, REPORTED, ZV_VM_ERROR, true },
};

//  Chains of task_states a host walks step by step, each step a
//  compare-and-swap (a delete that lands between two steps ends the chain).
//  The chain's first task is the one its action's row moves to.
static const struct {
    zv_task_state_t from, to;
} s_steps [] = {
    { ZV_TASK_SCHEDULING,           ZV_TASK_NETWORKING },
    { ZV_TASK_NETWORKING,           ZV_TASK_BLOCK_DEVICE_MAPPING },
    { ZV_TASK_BLOCK_DEVICE_MAPPING, ZV_TASK_SPAWNING },
    { ZV_TASK_REBUILDING,           ZV_TASK_REBUILD_BLOCK_DEVICE_MAPPING },
    { ZV_TASK_REBUILD_BLOCK_DEVICE_MAPPING, ZV_TASK_REBUILD_SPAWNING },
};

_Static_assert (ZV_VM_COUNT <= 32, "vm_state sets are uint32_t");
_Static_assert (ZV_TASK_COUNT <= 64, "task_state sets are uint64_t");

#define S_COUNT(a) (sizeof (a) / sizeof ((a) [0]))

static int
s_lookup (const char *const *names, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (names [i] && !strcmp (names [i], name))
            return i;
    return -1;
}

const char *
zv_vm_state_name (zv_vm_state_t state)
{
    return (unsigned) state < ZV_VM_COUNT? s_vm_names [state]: NULL;
}

const char *
zv_task_state_name (zv_task_state_t state)
{
    return (unsigned) state < ZV_TASK_COUNT? s_task_names [state]: NULL;
}

const char *
zv_power_state_name (zv_power_state_t state)
{
    return (unsigned) state < ZV_POWER_COUNT? s_power [state].name: NULL;
}

const char *
zv_action_name (zv_action_t action)
{
    return (unsigned) action < ZV_ACTION_COUNT? s_action_names [action]: NULL;
}

int
zv_vm_state_from_name (const char *name)
{
    return name? s_lookup (s_vm_names, ZV_VM_COUNT, name): -1;
}

int
zv_task_state_from_name (const char *name)
{
    return name? s_lookup (s_task_names, ZV_TASK_COUNT, name): ZV_TASK_NONE;
}

int
zv_power_state_from_name (const char *name)
{
    if (name)
        for (int i = 0; i < ZV_POWER_COUNT; i++)
            if (!strcmp (s_power [i].name, name))
                return i;
    return -1;
}

int
zv_action_from_name (const char *name)
{
    return name? s_lookup (s_action_names, ZV_ACTION_COUNT, name): -1;
}

int
zv_power_state_code (zv_power_state_t state)
{
    return (unsigned) state < ZV_POWER_COUNT? s_power [state].code: -1;
}

const char *
zv_status_derive (zv_vm_state_t vm, zv_task_state_t task)
{
    if ((unsigned) vm >= ZV_VM_COUNT)
        return "UNKNOWN";
    if ((unsigned) task < ZV_TASK_COUNT)
        for (size_t i = 0; i < S_COUNT (s_status_override); i++)
            if ((s_status_override [i].vms & VM_BIT (vm))
            &&  (s_status_override [i].tasks & TASK_BIT (task)))
                return s_status_override [i].status;
    return s_status_default [vm];
}

zv_status_t
zv_state_check (zv_action_t action, const char *uuid,
                zv_vm_state_t vm, zv_task_state_t task,
                zv_task_state_t *next_p, char *errbuf, size_t errlen)
{
    assert (next_p);
    const char *name = zv_action_name (action);
    for (size_t i = 0; i < S_COUNT (s_transitions); i++) {
        if (s_transitions [i].action != action || !s_transitions [i].vms)
            continue;
        //  Nova checks vm_state first, so that is the reason it gives.
        if ((unsigned) vm >= ZV_VM_COUNT
        ||  !(s_transitions [i].vms & VM_BIT (vm))) {
            snprintf (errbuf, errlen,
                      "Cannot '%s' instance %s while it is in vm_state %s",
                      name, uuid, zv_vm_state_name (vm)? zv_vm_state_name (vm): "unknown");
            return ZV_ECONFLICT;
        }
        if ((unsigned) task >= ZV_TASK_COUNT
        ||  !(s_transitions [i].tasks & TASK_BIT (task))) {
            snprintf (errbuf, errlen,
                      "Cannot '%s' instance %s while it is in task_state %s",
                      name, uuid, zv_task_state_name (task)? zv_task_state_name (task): "None");
            return ZV_ECONFLICT;
        }
        *next_p = s_transitions [i].next;
        return ZV_OK;
    }
    snprintf (errbuf, errlen, "'%s' is not an instance state transition",
              name? name: "unknown");
    return ZV_EINVAL;
}

zv_task_state_t
zv_state_action_task (zv_action_t action)
{
    for (size_t i = 0; i < S_COUNT (s_transitions); i++)
        if (s_transitions [i].action == action)
            return s_transitions [i].next;
    return ZV_TASK_NONE;
}

bool
zv_state_action_keeps_prior (zv_action_t action)
{
    for (size_t i = 0; i < S_COUNT (s_transitions); i++)
        if (s_transitions [i].action == action)
            return s_transitions [i].keeps_prior;
    return false;
}

static const char *s_outcome_names [ZV_OUTCOME_COUNT] = {
    [ZV_OUTCOME_STEP]   = "step",
    [ZV_OUTCOME_DONE]   = "done",
    [ZV_OUTCOME_FAILED] = "failed",
};

const char *
zv_outcome_name (zv_outcome_t outcome)
{
    return (unsigned) outcome < ZV_OUTCOME_COUNT? s_outcome_names [outcome]: NULL;
}

int
zv_outcome_from_name (const char *name)
{
    return name? s_lookup (s_outcome_names, ZV_OUTCOME_COUNT, name): -1;
}

//  The step out of task, or NONE when task ends no step.
static zv_task_state_t
s_step_after (zv_task_state_t task)
{
    for (size_t i = 0; i < S_COUNT (s_steps); i++)
        if (s_steps [i].from == task)
            return s_steps [i].to;
    return ZV_TASK_NONE;
}

//  The first task of the chain task belongs to (task itself when none).
static zv_task_state_t
s_chain_head (zv_task_state_t task)
{
    for (bool moved = true; moved; ) {
        moved = false;
        for (size_t i = 0; i < S_COUNT (s_steps); i++)
            if (s_steps [i].to == task) {
                task = s_steps [i].from;
                moved = true;
            }
    }
    return task;
}

zv_status_t
zv_state_outcome (zv_task_state_t task, zv_outcome_t outcome, zv_status_t why,
                  zv_state_result_t *result, char *errbuf, size_t errlen)
{
    assert (result);
    const char *task_name = zv_task_state_name (task);
    const char *outcome_name = zv_outcome_name (outcome);
    if ((unsigned) task >= ZV_TASK_COUNT || task == ZV_TASK_NONE || !outcome_name) {
        snprintf (errbuf, errlen, "no operation is in flight (task_state %s) to report %s on",
                  task_name? task_name: "None", outcome_name? outcome_name: "an unknown outcome");
        return ZV_ECONFLICT;
    }
    zv_task_state_t head = s_chain_head (task);
    size_t row = S_COUNT (s_transitions);
    for (size_t i = 0; i < S_COUNT (s_transitions) && row == S_COUNT (s_transitions); i++)
        if (s_transitions [i].next == head)
            row = i;
    if (row == S_COUNT (s_transitions)) {
        snprintf (errbuf, errlen, "task_state %s is no operation a host reports on", task_name);
        return ZV_ECONFLICT;
    }
    zv_task_state_t step = s_step_after (task);
    *result = (zv_state_result_t) {
        .action = s_transitions [row].action, .task = ZV_TASK_NONE,
        .vm = ZV_VM_SAME, .power = ZV_POWER_REPORTED,
        .build = s_transitions [row].action == ZV_ACTION_CREATE,
    };
    switch (outcome) {
        case ZV_OUTCOME_STEP:
            if (step == ZV_TASK_NONE) {
                snprintf (errbuf, errlen, "task_state %s has no next step", task_name);
                return ZV_ECONFLICT;
            }
            result->task = step;
            return ZV_OK;
        case ZV_OUTCOME_DONE:
            //  A chain is done only from its last step.
            if (step != ZV_TASK_NONE) {
                snprintf (errbuf, errlen, "'%s' cannot be done in task_state %s (steps remain)",
                          zv_action_name (result->action), task_name);
                return ZV_ECONFLICT;
            }
            result->vm = s_transitions [row].done;
            result->power = s_transitions [row].power;
            result->finished = true;
            return ZV_OK;
        case ZV_OUTCOME_FAILED:
            result->vm = (why == ZV_EUNSUPPORTED && !result->build)? ZV_VM_SAME
                                                                    : s_transitions [row].failed;
            if (result->build)
                result->power = ZV_POWER_NOSTATE;
            result->finished = true;
            return ZV_OK;
        case ZV_OUTCOME_COUNT:
            break;
    }
    snprintf (errbuf, errlen, "unknown outcome");
    return ZV_EINVAL;
}
