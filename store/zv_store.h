/*  zv_store.h: zova's durable state, in LMDB.  Only the conductor opens it.

    One LMDB environment under <state_path>/store with one named database per
    kind of record (the zv_table_t table).  Keys are strings; values are
    msgpack maps (through zv_pack) holding a record version "_rv".  The meta
    database holds the schema version: opening a store written by a newer
    zova is refused, an older one is migrated.

    Transactions are explicit and short: a write transaction may have nested
    children (LMDB nested txns), which is how the conductor batches many
    requests into one synced commit (group commit) while letting each request
    fail on its own: each request runs in a child that is committed into the
    batch or aborted alone.  Commits are synced; durability is never traded
    for speed.

    Instance state changes go through zv_store_instance_cas (compare-and-swap
    on the expected task_state) and zv_store_instance_action (a user action
    judged by zv_state_check, plus its action-log record), both inside the
    caller's transaction; every instance write is checked by the record's
    codec (store/zv_instance.h) first.                                        */

#ifndef ZV_STORE_H
#define ZV_STORE_H

#include <jansson.h>
#include "common/zv_common.h"
#include "store/zv_state.h"

#define ZV_STORE_SCHEMA_VERSION 2

typedef enum {
    ZV_TABLE_META,          //  "schema_version" -> {version}
    ZV_TABLE_INSTANCES,     //  uuid -> instance
    ZV_TABLE_FLAVORS,       //  flavor id -> flavor
    ZV_TABLE_IMAGES,        //  image uuid -> image metadata (bytes live in files)
    ZV_TABLE_SERVICES,      //  "<binary>/<host>" -> service record
    ZV_TABLE_NODES,         //  compute host -> hypervisor inventory and usage
    ZV_TABLE_ALLOCATIONS,   //  consumer (instance uuid) -> claim
    ZV_TABLE_ACTIONS,       //  "<uuid>/<start ms, 13 digits>/<request id>" -> action
    ZV_TABLE_AGGREGATES,    //  aggregate id -> aggregate (hosts, metadata, zone)
    ZV_TABLE_SERVER_GROUPS, //  group uuid -> server group (policy, rules, members)
    ZV_TABLE_CONSOLE_TOKENS,//  sha256 of a console token -> {instance_uuid, kind, host, port, expires_ms}
    ZV_TABLE_MIGRATIONS,    //  migration id (10 digits) -> migration record (store/zv_migration.h)
    ZV_TABLE_OPEN_MIGRATIONS,   //  instance uuid -> {id, source_host, dest_host, kind, phase}
    ZV_TABLE_COUNT
} zv_table_t;

typedef struct _zv_store_t zv_store_t;
typedef struct _zv_txn_t zv_txn_t;

//  Open (creating) the store in directory path, map size in MiB.  NULL on
//  failure with the reason in errbuf.
zv_store_t *zv_store_open (const char *path, size_t map_size_mb,
                           char *errbuf, size_t errlen);
void zv_store_destroy (zv_store_t **self_p);
const char *zv_table_name (zv_table_t table);

//  Begin a transaction.  parent non-NULL: a nested child of a write txn.
//  NULL on failure (logged).
zv_txn_t *zv_txn_begin (zv_store_t *store, zv_txn_t *parent, bool write);
//  Commit (synced for a top-level write txn) and free; *txn_p nulled.
zv_status_t zv_txn_commit (zv_txn_t **txn_p);
void zv_txn_abort (zv_txn_t **txn_p);

//  Records.  get: *rec_p new reference (caller owns), ZV_ENOTFOUND if absent.
zv_status_t zv_store_get (zv_txn_t *txn, zv_table_t table, const char *key, json_t **rec_p);
//  put: upsert (rec borrowed).  insert: ZV_EEXIST if the key exists.
zv_status_t zv_store_put (zv_txn_t *txn, zv_table_t table, const char *key, const json_t *rec);
zv_status_t zv_store_insert (zv_txn_t *txn, zv_table_t table, const char *key, const json_t *rec);
zv_status_t zv_store_del (zv_txn_t *txn, zv_table_t table, const char *key);
//  Visit records whose key starts with prefix ("" for all), in key order.
//  The callback's rec is borrowed for the call; return false to stop.
typedef bool (zv_store_visit_fn) (const char *key, json_t *rec, void *arg);
zv_status_t zv_store_scan (zv_txn_t *txn, zv_table_t table, const char *prefix,
                           zv_store_visit_fn *visit, void *arg);
//  zv_store_scan without the trees: visit each record as its stored
//  msgpack map, checked as zv_pack_decode would check it (a corrupt record
//  stops the scan with ZV_EIO, logged, as zv_store_scan does).  data is
//  borrowed until txn ends or next writes; return false to stop.
typedef bool (zv_store_visit_raw_fn) (const char *key, const void *data, size_t size, void *arg);
zv_status_t zv_store_scan_raw (zv_txn_t *txn, zv_table_t table, const char *prefix,
                               zv_store_visit_raw_fn *visit, void *arg);
//  Number of records in a table.
size_t zv_store_count (zv_txn_t *txn, zv_table_t table);

//  Compare-and-swap an instance: when its task_state is one of expected (a
//  json array of task_state names or nulls; NULL means no check), merge the
//  changes object into the record (a json null value sets the field null),
//  set updated_at, and write it.  vm_state / task_state / power_state values
//  in changes must be valid names (ZV_EINVAL otherwise).  *rec_p (optional)
//  gets the new record.  ZV_ENOTFOUND, or ZV_ECONFLICT with
//  "Conflict updating instance <uuid>. Expected: {'task_state': [...]}.
//  Actual: {'task_state': ...}" as Nova's UnexpectedTaskStateError says.
zv_status_t zv_store_instance_cas (zv_txn_t *txn, const char *uuid,
                                   const json_t *expected, const json_t *changes,
                                   json_t **rec_p, char *errbuf, size_t errlen);

//  Start a user action on an instance: judge it with zv_state_check, set
//  the new task_state, and append an action-log record {request_id, action,
//  start_time, finish_time: null, result: null, message: null}.
//  *rec_p (optional) gets the new instance record.
zv_status_t zv_store_instance_action (zv_txn_t *txn, const char *uuid,
                                      zv_action_t action, const char *request_id,
                                      json_t **rec_p, char *errbuf, size_t errlen);
//  Append an action-log record for an action that needs no transition
//  (e.g. "create", recorded at creation).
zv_status_t zv_store_action_start (zv_txn_t *txn, const char *uuid,
                                   const char *action, const char *request_id);
//  Finish the action of request_id on uuid: result "Success" or "Error",
//  optional message.  ZV_ENOTFOUND when there is no such action.
zv_status_t zv_store_action_finish (zv_txn_t *txn, const char *uuid,
                                    const char *request_id, const char *result,
                                    const char *message);
//  The action log of an instance, oldest first: a new json array (caller owns).
json_t *zv_store_action_list (zv_txn_t *txn, const char *uuid);

#endif
