/*  phases.c: the phases of each kind of move, one table each.

    A row is a phase: the host it runs on, the cast that starts it there,
    the instance's task_state and the migration's status (Nova's words)
    while it runs, the phase that follows when its host reports it done,
    and the one that undoes it when the host reports a failure; where
    there is none, the move ends with the status the row names.  moves.c
    walks these tables and nothing else decides the order of a move: a
    new phase is a new row (and the host's op of the same name in
    actors/compute/ops.c).                                                  */

#include "actors/conductor/conductor.h"

#define NOWHERE ZV_MOVE_NOWHERE
#define SOURCE  ZV_MOVE_SOURCE
#define DEST    ZV_MOVE_DEST

//  Cold migration and resize: one path, as in Nova.  "verify" waits for
//  the user (VERIFY_RESIZE): confirm or revert starts the next part.  A
//  failure before verify is undone by the destination, then the source.
static const zv_move_phase_t s_cold [] = {
    { "schedule",       NOWHERE, NULL,                   "resize_prep",       "pre-migrating",
      "prepare",        NULL,             NULL,        "error", false, false },
    { "prepare",        DEST,    "compute.move_prepare", "resize_prep",       "pre-migrating",
      "source",         "cleanup_dest",   NULL,        NULL, false, false },
    { "source",         SOURCE,  "compute.move_source",  "resize_migrating",  "migrating",
      "finish",         "cleanup_dest",   NULL,        NULL, false, false },
    { "finish",         DEST,    "compute.move_finish",  "resize_migrated",   "post-migrating",
      "verify",         "cleanup_dest",   NULL,        NULL, false, false },
    { "verify",         NOWHERE, NULL,                   NULL,                "finished",
      NULL,             NULL,             NULL,        NULL, false, false },
    { "confirm",        SOURCE,  "compute.move_confirm", "resize_confirming", "confirming",
      NULL,             NULL,             "confirmed", "error", false, false },
    { "revert",         DEST,    "compute.move_revert",  "resize_reverting",  "reverting",
      "revert_source",  "revert_source",  NULL,        NULL, false, false },
    { "revert_source",  SOURCE,  "compute.move_revert",  "resize_reverting",  "reverting",
      NULL,             NULL,             "reverted",  "error", false, false },
    { "cleanup_dest",   DEST,    "compute.move_revert",  "resize_reverting",  "reverting",
      "restore_source", "restore_source", NULL,        NULL, false, false },
    { "restore_source", SOURCE,  "compute.move_revert",  "resize_reverting",  "reverting",
      NULL,             NULL,             "error",     "error", false, false },
};

//  Evacuation: the source is down; the destination rebuilds the server
//  (on its disks when storage is shared, from its image otherwise).
static const zv_move_phase_t s_evacuation [] = {
    { "schedule",       NOWHERE, NULL,                   "rebuilding",        "accepted",
      "rebuild",        NULL,             NULL,        "failed", false, false },
    { "rebuild",        DEST,    "compute.move_rebuild", "rebuilding",        "pre-migrating",
      NULL,             "cleanup_dest",   "done",      NULL, false, false },
    { "cleanup_dest",   DEST,    "compute.move_revert",  "rebuilding",        "pre-migrating",
      NULL,             NULL,             "failed",    "failed", false, false },
};

//  Live migration: the guest runs all along.  The destination prepares
//  (its directory, the shared-storage marker, the base images), the
//  source says what it runs (shared storage, its migratable XML, its
//  disks), the destination checks the CPU and makes the disks and the XML
//  it will run, the source runs libvirt's job, the destination takes the
//  guest as its own, the source forgets it.  Until "live" ends the guest is
//  on the source: every failure leaves it there, and the destination
//  cleans up.  "live" waits: only the source can say where the guest is.
static const zv_move_phase_t s_live [] = {
    { "schedule",       NOWHERE, NULL,                     "migrating",       "queued",
      "prepare",        NULL,             NULL,        "error", false, false },
    { "prepare",        DEST,    "compute.move_prepare",   "migrating",       "preparing",
      "check_source",   "cleanup_dest",   NULL,        NULL, false, false },
    { "check_source",   SOURCE,  "compute.move_live_check", "migrating",      "preparing",
      "pre_live",       "cleanup_dest",   NULL,        NULL, false, false },
    { "pre_live",       DEST,    "compute.move_live_pre",  "migrating",       "preparing",
      "live",           "cleanup_dest",   NULL,        NULL, false, false },
    { "live",           SOURCE,  "compute.move_live",      "migrating",       "running",
      "post",           "cleanup_dest",   NULL,        NULL, .waits = true },
    { "post",           DEST,    "compute.move_live_post", "migrating",       "post-migrating",
      "cleanup_source", "cleanup_source", NULL,        NULL, false, false },
    { "cleanup_source", SOURCE,  "compute.move_confirm",   "migrating",       "post-migrating",
      NULL,             NULL,             "completed", "completed", .lands = true },
    { "cleanup_dest",   DEST,    "compute.move_revert",    "migrating",       "running",
      NULL,             NULL,             "error",     "error", false, false },
};

#define S_ROWS(table) (sizeof (table) / sizeof ((table) [0]))

const zv_move_phase_t *
zv_conductor_move_phase (const char *kind, const char *phase)
{
    const zv_move_phase_t *table = s_cold;
    size_t rows = S_ROWS (s_cold);
    if (kind && streq (kind, "evacuation")) {
        table = s_evacuation;
        rows = S_ROWS (s_evacuation);
    }
    else
    if (kind && streq (kind, "live-migration")) {
        table = s_live;
        rows = S_ROWS (s_live);
    }
    for (size_t index = 0; phase && index < rows; index++)
        if (streq (table [index].name, phase))
            return &table [index];
    return NULL;
}
