/*  test_state.c: the instance state machine against Nova's own tables.

    The expectations are written out again here, by name, from Nova's
    vm_states.py, task_states.py, power_state.py, api/openstack/common.py
    (_STATE_MAP) and the @check_instance_state decorators of compute/api.py,
    so that a wrong row in store/zv_state.c disagrees with an independent
    copy.  Transitions are checked exhaustively: every action against every
    (vm_state, task_state) pair.                                              */

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>
#include "store/zv_state.h"

#define S_COUNT(a) (sizeof (a) / sizeof ((a) [0]))
#define UUID "4f1c2a0e-8d3b-4c55-9a6e-0b7d2f1e9c31"

static const char *s_vms [] = {
    "building", "active", "stopped", "paused", "suspended", "rescued",
    "resized", "soft-delete", "deleted", "error", "shelved", "shelved_offloaded",
};

static const char *s_tasks [] = {
    "scheduling", "block_device_mapping", "networking", "spawning",
    "image_snapshot", "image_snapshot_pending", "image_pending_upload",
    "image_uploading", "updating_password", "resize_prep", "resize_migrating",
    "resize_migrated", "resize_finish", "resize_reverting", "resize_confirming",
    "rebooting", "reboot_pending", "reboot_started", "rebooting_hard",
    "reboot_pending_hard", "reboot_started_hard", "pausing", "unpausing",
    "suspending", "resuming", "powering-off", "powering-on", "rescuing",
    "unrescuing", "rebuilding", "rebuild_block_device_mapping",
    "rebuild_spawning", "migrating", "deleting", "soft-deleting", "restoring",
    "shelving", "shelving_image_pending_upload", "shelving_image_uploading",
    "shelving_offloading", "unshelving",
};

static const struct { const char *name; int code; } s_powers [] = {
    { "nostate", 0 }, { "running", 1 }, { "paused", 3 }, { "shutdown", 4 },
    { "crashed", 6 }, { "suspended", 7 },
};

static const char *s_actions [] = {
    "create", "delete", "reboot", "reboot_hard", "stop", "start", "pause",
    "unpause", "suspend", "resume", "rescue", "unrescue", "rebuild", "resize",
    "confirmResize", "revertResize", "migrate", "live-migration", "shelve",
    "shelveOffload", "unshelve", "changePassword", "createImage", "evacuate",
};

static void
test_names_round_trip (void **state)
{
    (void) state;
    assert_int_equal (S_COUNT (s_vms), ZV_VM_COUNT);
    for (size_t i = 0; i < S_COUNT (s_vms); i++) {
        int v = zv_vm_state_from_name (s_vms [i]);
        assert_true (v >= 0);
        assert_string_equal (zv_vm_state_name ((zv_vm_state_t) v), s_vms [i]);
    }
    assert_int_equal (S_COUNT (s_tasks) + 1, ZV_TASK_COUNT);
    for (size_t i = 0; i < S_COUNT (s_tasks); i++) {
        int t = zv_task_state_from_name (s_tasks [i]);
        assert_true (t > ZV_TASK_NONE);
        assert_string_equal (zv_task_state_name ((zv_task_state_t) t), s_tasks [i]);
    }
    assert_null (zv_task_state_name (ZV_TASK_NONE));
    assert_int_equal (zv_task_state_from_name (NULL), ZV_TASK_NONE);
    assert_int_equal (S_COUNT (s_powers), ZV_POWER_COUNT);
    for (size_t i = 0; i < S_COUNT (s_powers); i++) {
        int p = zv_power_state_from_name (s_powers [i].name);
        assert_true (p >= 0);
        assert_string_equal (zv_power_state_name ((zv_power_state_t) p), s_powers [i].name);
        assert_int_equal (zv_power_state_code ((zv_power_state_t) p), s_powers [i].code);
    }
    assert_int_equal (S_COUNT (s_actions), ZV_ACTION_COUNT);
    for (size_t i = 0; i < S_COUNT (s_actions); i++) {
        int a = zv_action_from_name (s_actions [i]);
        assert_true (a >= 0);
        assert_string_equal (zv_action_name ((zv_action_t) a), s_actions [i]);
    }
    //  Every enum value has a name (no hole in a table).
    for (int v = 0; v < ZV_VM_COUNT; v++)
        assert_non_null (zv_vm_state_name ((zv_vm_state_t) v));
    for (int t = 1; t < ZV_TASK_COUNT; t++)
        assert_non_null (zv_task_state_name ((zv_task_state_t) t));
    for (int a = 0; a < ZV_ACTION_COUNT; a++)
        assert_non_null (zv_action_name ((zv_action_t) a));
}

static void
test_names_unknown (void **state)
{
    (void) state;
    assert_int_equal (zv_vm_state_from_name ("soft_deleted"), -1);
    assert_int_equal (zv_vm_state_from_name (NULL), -1);
    assert_int_equal (zv_vm_state_from_name (""), -1);
    assert_int_equal (zv_task_state_from_name ("powering_off"), -1);
    assert_int_equal (zv_task_state_from_name ("none"), -1);
    assert_int_equal (zv_power_state_from_name ("RUNNING"), -1);
    assert_int_equal (zv_power_state_from_name (NULL), -1);
    assert_int_equal (zv_action_from_name ("os-stop"), -1);
    assert_null (zv_vm_state_name (ZV_VM_COUNT));
    assert_null (zv_action_name (ZV_ACTION_COUNT));
    assert_int_equal (zv_power_state_code (ZV_POWER_COUNT), -1);
}

//  Nova's _STATE_MAP, row by row ("-" is task_state None).
static const struct { const char *vm, *task, *status; } s_status_rows [] = {
    { "building",          "-",                            "BUILD" },
    { "building",          "scheduling",                   "BUILD" },
    { "building",          "spawning",                     "BUILD" },
    { "active",            "-",                            "ACTIVE" },
    { "active",            "rebooting",                    "REBOOT" },
    { "active",            "reboot_pending",               "REBOOT" },
    { "active",            "reboot_started",               "REBOOT" },
    { "active",            "rebooting_hard",               "HARD_REBOOT" },
    { "active",            "reboot_pending_hard",          "HARD_REBOOT" },
    { "active",            "reboot_started_hard",          "HARD_REBOOT" },
    { "active",            "updating_password",            "PASSWORD" },
    { "active",            "rebuilding",                   "REBUILD" },
    { "active",            "rebuild_block_device_mapping", "REBUILD" },
    { "active",            "rebuild_spawning",             "REBUILD" },
    { "active",            "migrating",                    "MIGRATING" },
    { "active",            "resize_prep",                  "RESIZE" },
    { "active",            "resize_migrating",             "RESIZE" },
    { "active",            "resize_migrated",              "RESIZE" },
    { "active",            "resize_finish",                "RESIZE" },
    { "active",            "pausing",                      "ACTIVE" },
    { "active",            "powering-off",                 "ACTIVE" },
    { "active",            "deleting",                     "ACTIVE" },
    { "stopped",           "-",                            "SHUTOFF" },
    { "stopped",           "resize_prep",                  "RESIZE" },
    { "stopped",           "resize_migrating",             "RESIZE" },
    { "stopped",           "resize_migrated",              "RESIZE" },
    { "stopped",           "resize_finish",                "RESIZE" },
    { "stopped",           "rebuilding",                   "REBUILD" },
    { "stopped",           "rebuild_block_device_mapping", "REBUILD" },
    { "stopped",           "rebuild_spawning",             "REBUILD" },
    { "stopped",           "powering-on",                  "SHUTOFF" },
    { "stopped",           "rebooting_hard",               "SHUTOFF" },
    { "stopped",           "migrating",                    "SHUTOFF" },
    { "resized",           "-",                            "VERIFY_RESIZE" },
    { "resized",           "resize_reverting",             "REVERT_RESIZE" },
    { "resized",           "resize_confirming",            "VERIFY_RESIZE" },
    { "paused",            "-",                            "PAUSED" },
    { "paused",            "migrating",                    "MIGRATING" },
    { "paused",            "unpausing",                    "PAUSED" },
    { "suspended",         "-",                            "SUSPENDED" },
    { "suspended",         "resuming",                     "SUSPENDED" },
    { "rescued",           "-",                            "RESCUE" },
    { "rescued",           "unrescuing",                   "RESCUE" },
    { "error",             "-",                            "ERROR" },
    { "error",             "rebuilding",                   "REBUILD" },
    { "error",             "rebuild_block_device_mapping", "REBUILD" },
    { "error",             "rebuild_spawning",             "REBUILD" },
    { "error",             "deleting",                     "ERROR" },
    { "error",             "resize_prep",                  "ERROR" },
    { "deleted",           "-",                            "DELETED" },
    { "soft-delete",       "-",                            "SOFT_DELETED" },
    { "soft-delete",       "restoring",                    "SOFT_DELETED" },
    { "shelved",           "-",                            "SHELVED" },
    { "shelved",           "unshelving",                   "SHELVED" },
    { "shelved_offloaded", "-",                            "SHELVED_OFFLOADED" },
};

static int
s_task (const char *name)
{
    return strcmp (name, "-")? zv_task_state_from_name (name): ZV_TASK_NONE;
}

static void
test_status_derive (void **state)
{
    (void) state;
    for (size_t i = 0; i < S_COUNT (s_status_rows); i++) {
        int vm = zv_vm_state_from_name (s_status_rows [i].vm);
        int task = s_task (s_status_rows [i].task);
        assert_true (vm >= 0 && task >= 0);
        const char *got = zv_status_derive ((zv_vm_state_t) vm, (zv_task_state_t) task);
        if (strcmp (got, s_status_rows [i].status))
            fail_msg ("%s/%s: got %s, want %s", s_status_rows [i].vm,
                      s_status_rows [i].task, got, s_status_rows [i].status);
    }
    assert_string_equal (zv_status_derive (ZV_VM_COUNT, ZV_TASK_NONE), "UNKNOWN");
}

//  The decorators, by name: space-separated states; "*" all, "*-x" all but x;
//  "-" is task_state None.
static const struct {
    const char *action, *vms, *tasks, *next;
} s_rows [] = {
    { "delete",         "*-deleted", "*-deleting", "deleting" },
    { "reboot",         "active",
      "- rebooting reboot_pending reboot_started", "rebooting" },
    { "reboot_hard",    "active stopped paused suspended error",
      "- rebooting reboot_pending reboot_started rebooting_hard "
      "reboot_pending_hard reboot_started_hard", "rebooting_hard" },
    { "stop",           "active error",       "-", "powering-off" },
    { "start",          "stopped",            "-", "powering-on" },
    { "pause",          "active",             "-", "pausing" },
    { "unpause",        "paused",             "-", "unpausing" },
    { "suspend",        "active",             "-", "suspending" },
    { "resume",         "suspended",          "-", "resuming" },
    { "rescue",         "active stopped error", "-", "rescuing" },
    { "unrescue",       "rescued",            "-", "unrescuing" },
    { "rebuild",        "active stopped error", "-", "rebuilding" },
    { "resize",         "active stopped",     "-", "resize_prep" },
    { "migrate",        "active stopped",     "-", "resize_prep" },
    { "confirmResize",  "resized",            "-", "resize_confirming" },
    { "revertResize",   "resized",            "-", "resize_reverting" },
    { "live-migration", "active paused",      "-", "migrating" },
    { "shelve",         "active stopped paused suspended", "-", "shelving" },
    { "shelveOffload",  "shelved",            "-", "shelving_offloading" },
    { "unshelve",       "shelved shelved_offloaded", "-", "unshelving" },
    { "changePassword", "active",             "-", "updating_password" },
    { "createImage",    "active stopped paused suspended", "-", "image_snapshot" },
    { "evacuate",       "active stopped error", "-", "rebuilding" },
};

//  True when name is in the set spec (see s_rows).
static bool
s_in_set (const char *spec, const char *name)
{
    if (!strcmp (spec, "*"))
        return true;
    if (!strncmp (spec, "*-", 2))
        return strcmp (spec + 2, name) != 0;
    size_t len = strlen (name);
    for (const char *p = spec; *p; ) {
        size_t word = strcspn (p, " ");
        if (word == len && !strncmp (p, name, len))
            return true;
        p += word;
        p += strspn (p, " ");
    }
    return false;
}

static void
test_transitions_exhaustive (void **state)
{
    (void) state;
    //  Every action but create has exactly one row.
    assert_int_equal (S_COUNT (s_rows) + 1, ZV_ACTION_COUNT);
    for (size_t r = 0; r < S_COUNT (s_rows); r++) {
        int action = zv_action_from_name (s_rows [r].action);
        assert_true (action >= 0);
        size_t allowed = 0, refused = 0;
        for (int vm = 0; vm < ZV_VM_COUNT; vm++)
        for (int task = 0; task < ZV_TASK_COUNT; task++) {
            const char *vm_name = zv_vm_state_name ((zv_vm_state_t) vm);
            const char *task_name = zv_task_state_name ((zv_task_state_t) task);
            bool vm_ok = s_in_set (s_rows [r].vms, vm_name);
            bool task_ok = s_in_set (s_rows [r].tasks, task_name? task_name: "-");
            zv_task_state_t next = ZV_TASK_COUNT;
            char err [256] = "";
            zv_status_t rc = zv_state_check ((zv_action_t) action, UUID,
                                             (zv_vm_state_t) vm, (zv_task_state_t) task,
                                             &next, err, sizeof err);
            if (vm_ok && task_ok) {
                if (rc != ZV_OK)
                    fail_msg ("%s from %s/%s refused: %s", s_rows [r].action,
                              vm_name, task_name, err);
                assert_string_equal (zv_task_state_name (next), s_rows [r].next);
                allowed++;
                continue;
            }
            assert_int_equal (rc, ZV_ECONFLICT);
            char want [256];
            if (!vm_ok)
                snprintf (want, sizeof want,
                          "Cannot '%s' instance " UUID " while it is in vm_state %s",
                          s_rows [r].action, vm_name);
            else
                snprintf (want, sizeof want,
                          "Cannot '%s' instance " UUID " while it is in task_state %s",
                          s_rows [r].action, task_name);
            assert_string_equal (err, want);
            refused++;
        }
        assert_true (allowed > 0);
        assert_true (refused > 0);
    }
}

static void
test_transition_messages (void **state)
{
    (void) state;
    zv_task_state_t next = ZV_TASK_NONE;
    char err [256];
    assert_int_equal (zv_state_check (ZV_ACTION_PAUSE, UUID, ZV_VM_STOPPED,
                                      ZV_TASK_NONE, &next, err, sizeof err),
                      ZV_ECONFLICT);
    assert_string_equal (err, "Cannot 'pause' instance " UUID
                              " while it is in vm_state stopped");
    assert_int_equal (zv_state_check (ZV_ACTION_STOP, UUID, ZV_VM_ACTIVE,
                                      ZV_TASK_DELETING, &next, err, sizeof err),
                      ZV_ECONFLICT);
    assert_string_equal (err, "Cannot 'stop' instance " UUID
                              " while it is in task_state deleting");
    //  Nova lets a user delete an instance still being scheduled.
    assert_int_equal (zv_state_check (ZV_ACTION_DELETE, UUID, ZV_VM_BUILDING,
                                      ZV_TASK_SCHEDULING, &next, err, sizeof err),
                      ZV_OK);
    assert_int_equal (next, ZV_TASK_DELETING);
    //  create is no transition.
    assert_int_equal (zv_state_check (ZV_ACTION_CREATE, UUID, ZV_VM_BUILDING,
                                      ZV_TASK_NONE, &next, err, sizeof err),
                      ZV_EINVAL);
    //  A short buffer truncates, never overflows.
    char tiny [8];
    assert_int_equal (zv_state_check (ZV_ACTION_PAUSE, UUID, ZV_VM_STOPPED,
                                      ZV_TASK_NONE, &next, tiny, sizeof tiny),
                      ZV_ECONFLICT);
    assert_string_equal (tiny, "Cannot ");
}

//  What a host's report leaves, written out by name: the task in flight,
//  the outcome, the failure's status, then the next task ("-" None), the
//  vm_state ("=" unchanged, "prior" as before the action), the power state
//  ("seen" as reported) and whether the action is over; "refused" when the
//  table must refuse the report.
static const struct {
    const char *task, *outcome;
    zv_status_t why;
    const char *next, *vm, *power;
    bool finished;
} s_reports [] = {
    { "scheduling",           "step",   ZV_OK, "networking",           "=", "seen", false },
    { "networking",           "step",   ZV_OK, "block_device_mapping", "=", "seen", false },
    { "block_device_mapping", "step",   ZV_OK, "spawning",             "=", "seen", false },
    { "spawning",             "done",   ZV_OK, "-", "active",  "seen",    true },
    { "spawning",             "failed", ZV_EIO, "-", "error",  "nostate", true },
    { "spawning",             "failed", ZV_EUNSUPPORTED, "-", "error", "nostate", true },
    { "networking",           "failed", ZV_EIO, "-", "error",  "nostate", true },
    { "rebooting",            "done",   ZV_OK, "-", "active",  "seen",    true },
    { "rebooting",            "failed", ZV_EIO, "-", "=",      "seen",    true },
    { "rebooting_hard",       "failed", ZV_EIO, "-", "error",  "seen",    true },
    { "rebooting_hard",       "failed", ZV_EUNSUPPORTED, "-", "=", "seen", true },
    { "powering-off",         "done",   ZV_OK, "-", "stopped", "seen",    true },
    { "powering-on",          "done",   ZV_OK, "-", "active",  "seen",    true },
    { "pausing",              "done",   ZV_OK, "-", "paused",  "seen",    true },
    { "unpausing",            "done",   ZV_OK, "-", "active",  "seen",    true },
    { "suspending",           "done",   ZV_OK, "-", "suspended", "seen",  true },
    { "resuming",             "done",   ZV_OK, "-", "active",  "seen",    true },
    { "rescuing",             "done",   ZV_OK, "-", "rescued", "seen",    true },
    { "rescuing",             "failed", ZV_EIO, "-", "=",      "seen",    true },
    { "unrescuing",           "done",   ZV_OK, "-", "active",  "seen",    true },
    { "updating_password",    "done",   ZV_OK, "-", "=",       "seen",    true },
    { "updating_password",    "failed", ZV_EIO, "-", "=",      "seen",    true },
    { "deleting",             "done",   ZV_OK, "-", "deleted", "nostate", true },
    { "deleting",             "failed", ZV_EIO, "-", "error",  "seen",    true },
    { "rebuilding",           "step",   ZV_OK, "rebuild_block_device_mapping", "=", "seen", false },
    { "rebuild_block_device_mapping", "step", ZV_OK, "rebuild_spawning", "=", "seen", false },
    { "rebuild_spawning",     "done",   ZV_OK, "-", "prior",   "seen",    true },
    { "rebuild_spawning",     "failed", ZV_EIO, "-", "error",  "seen",    true },
    { "resize_confirming",    "done",   ZV_OK, "-", "prior",   "seen",    true },
    { "resize_reverting",     "done",   ZV_OK, "-", "prior",   "seen",    true },
    { "migrating",            "done",   ZV_OK, "-", "=",       "seen",    true },
    { "migrating",            "failed", ZV_EIO, "-", "=",      "seen",    true },
    //  What the table refuses.
    { "-",                    "done",   ZV_OK, "refused", NULL, NULL, false },
    { "spawning",             "step",   ZV_OK, "refused", NULL, NULL, false },
    { "networking",           "done",   ZV_OK, "refused", NULL, NULL, false },
    { "rebooting",            "step",   ZV_OK, "refused", NULL, NULL, false },
    { "reboot_pending",       "done",   ZV_OK, "refused", NULL, NULL, false },
};

static void
test_outcomes (void **state)
{
    (void) state;
    for (size_t i = 0; i < S_COUNT (s_reports); i++) {
        int task = s_task (s_reports [i].task);
        int outcome = zv_outcome_from_name (s_reports [i].outcome);
        assert_true (task >= 0 && outcome >= 0);
        zv_state_result_t result;
        char err [256] = "";
        zv_status_t rc = zv_state_outcome ((zv_task_state_t) task, (zv_outcome_t) outcome,
                                           s_reports [i].why, &result, err, sizeof err);
        if (!strcmp (s_reports [i].next, "refused")) {
            if (rc != ZV_ECONFLICT)
                fail_msg ("%s %s: accepted, want refused", s_reports [i].task, s_reports [i].outcome);
            assert_true (strlen (err) > 0);
            continue;
        }
        if (rc != ZV_OK)
            fail_msg ("%s %s: refused: %s", s_reports [i].task, s_reports [i].outcome, err);
        assert_int_equal (result.task, s_task (s_reports [i].next));
        int vm = !strcmp (s_reports [i].vm, "=")? ZV_VM_SAME
               : !strcmp (s_reports [i].vm, "prior")? ZV_VM_PRIOR
               : zv_vm_state_from_name (s_reports [i].vm);
        if (result.vm != vm)
            fail_msg ("%s %s: vm %d, want %s", s_reports [i].task, s_reports [i].outcome,
                      result.vm, s_reports [i].vm);
        int power = !strcmp (s_reports [i].power, "seen")? ZV_POWER_REPORTED
                  : zv_power_state_from_name (s_reports [i].power);
        if (result.power != power)
            fail_msg ("%s %s: power %d, want %s", s_reports [i].task, s_reports [i].outcome,
                      result.power, s_reports [i].power);
        assert_int_equal (result.finished, s_reports [i].finished);
    }
    //  Every user action's task, and create's chain, is a task a host can
    //  report on; the build flag marks create's only.
    zv_state_result_t result;
    char err [256];
    assert_int_equal (zv_state_action_task (ZV_ACTION_CREATE), ZV_TASK_SCHEDULING);
    assert_int_equal (zv_state_outcome (ZV_TASK_SPAWNING, ZV_OUTCOME_DONE, ZV_OK, &result,
                                        err, sizeof err), ZV_OK);
    assert_true (result.build);
    assert_int_equal (result.action, ZV_ACTION_CREATE);
    assert_int_equal (zv_state_outcome (ZV_TASK_POWERING_OFF, ZV_OUTCOME_DONE, ZV_OK, &result,
                                        err, sizeof err), ZV_OK);
    assert_false (result.build);
    assert_int_equal (result.action, ZV_ACTION_STOP);
    assert_true (zv_state_action_keeps_prior (ZV_ACTION_RESIZE));
    assert_true (zv_state_action_keeps_prior (ZV_ACTION_EVACUATE));
    assert_false (zv_state_action_keeps_prior (ZV_ACTION_STOP));
    assert_int_equal (zv_outcome_from_name ("finished"), -1);
    assert_null (zv_outcome_name (ZV_OUTCOME_COUNT));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_names_round_trip),
        cmocka_unit_test (test_names_unknown),
        cmocka_unit_test (test_status_derive),
        cmocka_unit_test (test_transitions_exhaustive),
        cmocka_unit_test (test_transition_messages),
        cmocka_unit_test (test_outcomes),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
