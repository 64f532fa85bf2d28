/*  zv_migration.h: migration records, the memory of every move.

    A move (cold migration, resize, live migration, evacuation) is a
    persisted sequence of phases.  Its record says what moves where: the
    instance, the kind, source and destination host, old and new flavor,
    Nova's status (pre-migrating, migrating, post-migrating, finished,
    confirming, confirmed, reverting, reverted, error, accepted, done,
    failed, cancelled, ...), and the phase of zova's move engine it stands
    in.  Every phase change is a compare-and-swap on the phase, inside the
    transaction that also changes the instance, so that whoever restarts
    reads where the move stands and goes on or rolls back.

    An instance has at most one open migration: the open index (instance
    uuid -> migration id, source, destination) is what compute_sync and
    lifecycle events consult, so that a domain a move expects on a host is
    never reaped as an orphan, and a domain that left for its destination
    is never read as a guest that powered off.  Records stay after they
    close (the history `server migration list` shows); ids are integers
    as Nova's, keys zero-padded so the table's order is creation order.    */

#ifndef ZV_MIGRATION_H
#define ZV_MIGRATION_H

#include <jansson.h>
#include "store/zv_store.h"

typedef enum {
    ZV_MIGRATION_COLD,              //  "migration": cold migration to another host
    ZV_MIGRATION_RESIZE,            //  "resize": a new flavor (maybe on the same host)
    ZV_MIGRATION_LIVE,              //  "live-migration"
    ZV_MIGRATION_EVACUATION,        //  "evacuation": off a host that is down
    ZV_MIGRATION_KIND_COUNT
} zv_migration_kind_t;

const char *zv_migration_kind_name (zv_migration_kind_t kind);
int zv_migration_kind_from_name (const char *name);     //  -1 when unknown
//  Is status one that ends a migration (confirmed, reverted, error, done,
//  failed, cancelled, completed)?
bool zv_migration_status_closed (const char *status);
//  Is status one of Nova's migration statuses?
bool zv_migration_status_valid (const char *status);

typedef struct {
    const char *instance_uuid;
    zv_migration_kind_t kind;
    const char *source_host;
    const char *dest_host;          //  NULL until the scheduler chose one
    const json_t *old_flavor;       //  the instance's flavor copy
    const json_t *new_flavor;       //  the same for a migration; the new one for a resize
    const char *status;             //  the first status (e.g. "pre-migrating", "accepted")
    const char *phase;              //  the engine's first phase
    const char *request_id;
    const char *project_id;
    const char *user_id;
} zv_migration_init_t;

//  Open a migration for an instance, in txn: the record (id from the
//  store's sequence), its open-index entry, and the instance's
//  migration_id.  ZV_ECONFLICT when the instance already has an open one;
//  ZV_ENOTFOUND when there is no such instance.  *rec_p (optional) gets
//  the new record (caller owns).
zv_status_t zv_migration_create (zv_txn_t *txn, const zv_migration_init_t *init,
                                 json_t **rec_p, char *errbuf, size_t errlen);
//  The record of id (its integer as a string, or the record's uuid).
//  ZV_ENOTFOUND when absent.  Caller owns *rec_p.
zv_status_t zv_migration_get (zv_txn_t *txn, const char *id, json_t **rec_p);
//  The open migration of an instance, or ZV_ENOTFOUND.
zv_status_t zv_migration_open_of (zv_txn_t *txn, const char *instance_uuid, json_t **rec_p);

//  Compare-and-swap a migration: when its phase is expected_phase (NULL:
//  any), merge changes into it (phase, status, dest_host, progress, ...),
//  stamp updated_at, write it; the open index follows a changed host.  A
//  status that closes the migration removes it from the open index and
//  clears the instance's migration_id.  ZV_ECONFLICT with "Conflict
//  updating migration N. Expected phase X, actual Y" when the phase
//  differs, or when it is closed already.  *rec_p (optional) gets the new
//  record.
zv_status_t zv_migration_cas (zv_txn_t *txn, const char *id, const char *expected_phase,
                              const json_t *changes, json_t **rec_p, char *errbuf, size_t errlen);

//  Migrations, newest first, filtered by instance, host (source or
//  destination) and status (NULL: any).  New array, caller owns.
json_t *zv_migration_list (zv_txn_t *txn, const char *instance_uuid, const char *host,
                           const char *status);
//  The open migrations that name host as source or destination:
//  {instance_uuid: {id, source_host, dest_host, kind, phase}}.  New object.
json_t *zv_migration_open_on_host (zv_txn_t *txn, const char *host);
//  Every open migration: [{id, instance_uuid, source_host, dest_host, kind,
//  phase}], for recovery.  New array.
json_t *zv_migration_open_all (zv_txn_t *txn);

#endif
