/*  zv_store.c: zova's durable state on LMDB.

    One environment, opened with MDB_NOTLS so that a read transaction is not
    tied to the thread that began it, and one named database per zv_table_t,
    all opened once in the write transaction that also checks (or creates,
    or migrates) the schema version; DBI handles are then valid for every
    later transaction.  Values are msgpack maps through zv_pack; put adds the
    record version "_rv" to a shallow copy only when the caller left it out.

    A zv_txn_t is an MDB_txn plus its store and whether it writes.  Children
    are LMDB nested transactions: while a child is open its parent must not
    be used, committed or aborted (LMDB would silently end the child under
    us), which the wrapper asserts.  Only a top-level write commit reaches
    the disk, synced by LMDB's default flags.

    LMDB failures are logged here, once, with the table they hit, and become
    ZV_EIO; callers pass the status up without logging again.  A full map
    gets its own message because the fix is a configuration change.          */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <assert.h>
#include <sys/stat.h>
#include <lmdb.h>
#include "store/zv_store.h"
#include "store/zv_instance.h"
#include "proto/zv_pack.h"

#define S_ACTOR         "store"
#define S_EXTRA_DBS     4               //  room for tables added by a migration
#define S_SCHEMA_KEY    "schema_version"
#define S_KEY_MAX       511             //  LMDB's default maximum key size

struct _zv_store_t {
    MDB_env *env;
    MDB_dbi dbi [ZV_TABLE_COUNT];
    size_t map_size_mb;
};

struct _zv_txn_t {
    zv_store_t *store;
    MDB_txn *txn;
    zv_txn_t *parent;
    zv_txn_t *child;                    //  open nested child, if any
    bool write;
};

static const char *s_table_names [ZV_TABLE_COUNT] = {
    [ZV_TABLE_META]        = "meta",
    [ZV_TABLE_INSTANCES]   = "instances",
    [ZV_TABLE_FLAVORS]     = "flavors",
    [ZV_TABLE_IMAGES]      = "images",
    [ZV_TABLE_SERVICES]    = "services",
    [ZV_TABLE_NODES]       = "nodes",
    [ZV_TABLE_ALLOCATIONS] = "allocations",
    [ZV_TABLE_ACTIONS]     = "actions",
    [ZV_TABLE_AGGREGATES]  = "aggregates",
    [ZV_TABLE_SERVER_GROUPS] = "server_groups",
    [ZV_TABLE_CONSOLE_TOKENS] = "console_tokens",
    [ZV_TABLE_MIGRATIONS]  = "migrations",
    [ZV_TABLE_OPEN_MIGRATIONS] = "open_migrations",
};

const char *
zv_table_name (zv_table_t table)
{
    return (unsigned) table < ZV_TABLE_COUNT? s_table_names [table]: NULL;
}

//  Log an LMDB failure once and turn it into a status.
static zv_status_t
s_lmdb_fail (zv_store_t *store, int rc, const char *what, const char *table)
{
    if (rc == MDB_MAP_FULL)
        zv_error (S_ACTOR, NULL, "%s on table %s: store is full (map size %zu MiB); "
                  "raise [conductor] store_map_size_mb",
                  what, table, store->map_size_mb);
    else
        zv_error (S_ACTOR, NULL, "%s on table %s: %s", what, table, mdb_strerror (rc));
    return ZV_EIO;
}

//  A key is a non-empty string LMDB can hold.
static zv_status_t
s_key (const char *key, MDB_val *val)
{
    size_t len = key? strlen (key): 0;
    if (len == 0 || len > S_KEY_MAX) {
        zv_warning (S_ACTOR, NULL, "invalid store key (length %zu)", len);
        return ZV_EINVAL;
    }
    val->mv_data = (void *) key;
    val->mv_size = len;
    return ZV_OK;
}

static zv_status_t
s_decode (zv_table_t table, const MDB_val *key, const MDB_val *data, json_t **rec_p)
{
    char reason [128] = "";
    if (zv_pack_decode (data->mv_data, data->mv_size, rec_p, reason, sizeof reason) == ZV_OK
    &&  json_is_object (*rec_p))
        return ZV_OK;
    json_decref (*rec_p);
    *rec_p = NULL;
    zv_error (S_ACTOR, NULL, "corrupt record %.*s in table %s: %s",
              (int) key->mv_size, (const char *) key->mv_data,
              s_table_names [table], *reason? reason: "not a map");
    return ZV_EIO;
}

//  s_decode's checks without the tree: the same rules, the same log line.
static zv_status_t
s_check (zv_table_t table, const MDB_val *key, const MDB_val *data)
{
    char reason [128] = "";
    const uint8_t *bytes = data->mv_data;
    if (zv_pack_check (data->mv_data, data->mv_size, reason, sizeof reason) == ZV_OK
    &&  ((bytes [0] >= 0x80 && bytes [0] <= 0x8f) || bytes [0] == 0xde || bytes [0] == 0xdf))
        return ZV_OK;
    zv_error (S_ACTOR, NULL, "corrupt record %.*s in table %s: %s",
              (int) key->mv_size, (const char *) key->mv_data,
              s_table_names [table], *reason? reason: "not a map");
    return ZV_EIO;
}

//  -------------------------------------------------------------------------
//  Transactions

zv_txn_t *
zv_txn_begin (zv_store_t *store, zv_txn_t *parent, bool write)
{
    assert (store);
    if (parent) {
        //  LMDB nests write transactions only, one child at a time.
        assert (parent->write && write && !parent->child);
        assert (parent->store == store);
    }
    zv_txn_t *self = calloc (1, sizeof *self);
    if (!self) {
        zv_error (S_ACTOR, NULL, "out of memory beginning a transaction");
        return NULL;
    }
    int rc = mdb_txn_begin (store->env, parent? parent->txn: NULL,
                            write? 0: MDB_RDONLY, &self->txn);
    if (rc) {
        s_lmdb_fail (store, rc, "begin transaction", "(all)");
        free (self);
        return NULL;
    }
    self->store = store;
    self->parent = parent;
    self->write = write;
    if (parent)
        parent->child = self;
    return self;
}

static void
s_txn_free (zv_txn_t **txn_p)
{
    zv_txn_t *self = *txn_p;
    if (self->parent)
        self->parent->child = NULL;
    free (self);
    *txn_p = NULL;
}

zv_status_t
zv_txn_commit (zv_txn_t **txn_p)
{
    assert (txn_p && *txn_p);
    zv_txn_t *self = *txn_p;
    assert (!self->child);
    //  LMDB frees the MDB_txn whether the commit succeeds or not.
    int rc = mdb_txn_commit (self->txn);
    zv_status_t status = rc? s_lmdb_fail (self->store, rc, "commit", "(all)"): ZV_OK;
    s_txn_free (txn_p);
    return status;
}

void
zv_txn_abort (zv_txn_t **txn_p)
{
    if (!txn_p || !*txn_p)
        return;
    assert (!(*txn_p)->child);
    mdb_txn_abort ((*txn_p)->txn);
    s_txn_free (txn_p);
}

//  -------------------------------------------------------------------------
//  Records

zv_status_t
zv_store_get (zv_txn_t *txn, zv_table_t table, const char *key, json_t **rec_p)
{
    assert (txn && !txn->child && (unsigned) table < ZV_TABLE_COUNT && rec_p);
    *rec_p = NULL;
    MDB_val k, v;
    zv_status_t status = s_key (key, &k);
    if (status)
        return status;
    int rc = mdb_get (txn->txn, txn->store->dbi [table], &k, &v);
    if (rc == MDB_NOTFOUND)
        return ZV_ENOTFOUND;
    if (rc)
        return s_lmdb_fail (txn->store, rc, "get", s_table_names [table]);
    return s_decode (table, &k, &v, rec_p);
}

static zv_status_t
s_write (zv_txn_t *txn, zv_table_t table, const char *key, const json_t *rec,
         unsigned flags)
{
    assert (txn && txn->write && !txn->child && (unsigned) table < ZV_TABLE_COUNT);
    MDB_val k, v;
    zv_status_t status = s_key (key, &k);
    if (status)
        return status;
    if (!json_is_object (rec)) {
        zv_warning (S_ACTOR, NULL, "record %s for table %s is not an object",
                    key, s_table_names [table]);
        return ZV_EINVAL;
    }
    //  An instance record is checked by its codec: what is written here can
    //  always be listed and decoded again.
    if (table == ZV_TABLE_INSTANCES) {
        char reason [256];
        status = zv_instance_check (rec, reason, sizeof reason);
        if (status) {
            zv_warning (S_ACTOR, NULL, "instance record %s refused: %s", key, reason);
            return status;
        }
    }
    json_t *copy = NULL;
    if (!json_object_get (rec, "_rv")) {
        copy = json_copy ((json_t *) rec);
        json_int_t version = table == ZV_TABLE_INSTANCES? ZV_INSTANCE_VERSION: 1;
        if (!copy || json_object_set_new (copy, "_rv", json_integer (version))) {
            json_decref (copy);
            return ZV_ENOMEM;
        }
        rec = copy;
    }
    char *data = NULL;
    size_t size = 0;
    status = zv_pack_encode (rec, &data, &size);
    json_decref (copy);
    if (status) {
        zv_warning (S_ACTOR, NULL, "cannot encode record %s for table %s: %s",
                    key, s_table_names [table], zv_status_name (status));
        return status;
    }
    v.mv_data = data;
    v.mv_size = size;
    int rc = mdb_put (txn->txn, txn->store->dbi [table], &k, &v, flags);
    free (data);
    if (rc == MDB_KEYEXIST)
        return ZV_EEXIST;
    if (rc)
        return s_lmdb_fail (txn->store, rc, "put", s_table_names [table]);
    return ZV_OK;
}

zv_status_t
zv_store_put (zv_txn_t *txn, zv_table_t table, const char *key, const json_t *rec)
{
    return s_write (txn, table, key, rec, 0);
}

zv_status_t
zv_store_insert (zv_txn_t *txn, zv_table_t table, const char *key, const json_t *rec)
{
    return s_write (txn, table, key, rec, MDB_NOOVERWRITE);
}

zv_status_t
zv_store_del (zv_txn_t *txn, zv_table_t table, const char *key)
{
    assert (txn && txn->write && !txn->child && (unsigned) table < ZV_TABLE_COUNT);
    MDB_val k;
    zv_status_t status = s_key (key, &k);
    if (status)
        return status;
    int rc = mdb_del (txn->txn, txn->store->dbi [table], &k, NULL);
    if (rc == MDB_NOTFOUND)
        return ZV_ENOTFOUND;
    if (rc)
        return s_lmdb_fail (txn->store, rc, "del", s_table_names [table]);
    return ZV_OK;
}

//  One cursor walk over the keys starting with prefix, for both scans:
//  a tree per record for visit, or the checked bytes for visit_raw.
static zv_status_t
s_scan (zv_txn_t *txn, zv_table_t table, const char *prefix,
        zv_store_visit_fn *visit, zv_store_visit_raw_fn *visit_raw, void *arg)
{
    assert (txn && !txn->child && (unsigned) table < ZV_TABLE_COUNT && (visit || visit_raw));
    const char *name = s_table_names [table];
    size_t plen = prefix? strlen (prefix): 0;
    if (plen > S_KEY_MAX)
        return ZV_EINVAL;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn->txn, txn->store->dbi [table], &cursor);
    if (rc)
        return s_lmdb_fail (txn->store, rc, "cursor open", name);

    zv_status_t status = ZV_OK;
    MDB_val k = { plen, (void *) prefix }, v;
    rc = mdb_cursor_get (cursor, &k, &v, plen? MDB_SET_RANGE: MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size < plen || memcmp (k.mv_data, prefix, plen))
            break;
        char key [S_KEY_MAX + 1];
        assert (k.mv_size <= S_KEY_MAX);
        memcpy (key, k.mv_data, k.mv_size);
        key [k.mv_size] = 0;
        bool more;
        if (visit) {
            json_t *rec;
            status = s_decode (table, &k, &v, &rec);
            if (status)
                goto cleanup;
            more = visit (key, rec, arg);
            json_decref (rec);
        }
        else {
            status = s_check (table, &k, &v);
            if (status)
                goto cleanup;
            more = visit_raw (key, v.mv_data, v.mv_size, arg);
        }
        if (!more)
            goto cleanup;
        rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND)
        status = s_lmdb_fail (txn->store, rc, "scan", name);
cleanup:
    mdb_cursor_close (cursor);
    return status;
}

zv_status_t
zv_store_scan (zv_txn_t *txn, zv_table_t table, const char *prefix,
               zv_store_visit_fn *visit, void *arg)
{
    assert (visit);
    return s_scan (txn, table, prefix, visit, NULL, arg);
}

zv_status_t
zv_store_scan_raw (zv_txn_t *txn, zv_table_t table, const char *prefix,
                   zv_store_visit_raw_fn *visit, void *arg)
{
    assert (visit);
    return s_scan (txn, table, prefix, NULL, visit, arg);
}

size_t
zv_store_count (zv_txn_t *txn, zv_table_t table)
{
    assert (txn && !txn->child && (unsigned) table < ZV_TABLE_COUNT);
    MDB_stat st;
    int rc = mdb_stat (txn->txn, txn->store->dbi [table], &st);
    if (rc) {
        s_lmdb_fail (txn->store, rc, "stat", s_table_names [table]);
        return 0;
    }
    return st.ms_entries;
}

//  -------------------------------------------------------------------------
//  Open, schema version and migrations

//  Migration from version v to v + 1 runs as s_migrations [v], inside the
//  opening write transaction; nothing older than version 1 exists.  New
//  tables need no migration (every table is opened with MDB_CREATE).
typedef zv_status_t (s_migration_fn) (zv_txn_t *txn, char *errbuf, size_t errlen);

//  1 -> 2: instance records are checked before every write (flat string
//  metadata, bounded depth).  Records an older zova wrote unchecked are
//  brought within those bounds, so that no record can make a listing fail.
typedef struct {
    json_t *changed;                    //  [uuid, record] pairs to write back
} s_upgrade_t;

static bool
s_upgrade_visit (const char *key, json_t *rec, void *arg)
{
    s_upgrade_t *upgrade = (s_upgrade_t *) arg;
    if (zv_instance_upgrade (rec))
        json_array_append_new (upgrade->changed, json_pack ("[s,O]", key, rec));
    return true;
}

static zv_status_t
s_migrate_1_2 (zv_txn_t *txn, char *errbuf, size_t errlen)
{
    s_upgrade_t upgrade = { json_array () };
    zv_status_t status = zv_store_scan (txn, ZV_TABLE_INSTANCES, "", s_upgrade_visit, &upgrade);
    size_t index;
    json_t *pair;
    json_array_foreach (upgrade.changed, index, pair) {
        if (status != ZV_OK)
            break;
        status = zv_store_put (txn, ZV_TABLE_INSTANCES, json_string_value (json_array_get (pair, 0)),
                               json_array_get (pair, 1));
        zv_warning (S_ACTOR, NULL, "instance %s: record upgraded (metadata or nesting out of bounds)",
                    json_string_value (json_array_get (pair, 0)));
    }
    json_decref (upgrade.changed);
    if (status != ZV_OK)
        snprintf (errbuf, errlen, "cannot upgrade instance records: %s", zv_status_name (status));
    return status;
}

static s_migration_fn *const s_migrations [ZV_STORE_SCHEMA_VERSION + 1] = {
    [0] = NULL,
    [1] = s_migrate_1_2,
};

static zv_status_t
s_write_version (zv_txn_t *txn, json_int_t version)
{
    json_t *meta = json_pack ("{sI}", "version", version);
    if (!meta)
        return ZV_ENOMEM;
    zv_status_t status = zv_store_put (txn, ZV_TABLE_META, S_SCHEMA_KEY, meta);
    json_decref (meta);
    return status;
}

static zv_status_t
s_schema_check (zv_txn_t *txn, const char *path, char *errbuf, size_t errlen)
{
    json_t *meta = NULL;
    zv_status_t status = zv_store_get (txn, ZV_TABLE_META, S_SCHEMA_KEY, &meta);
    if (status == ZV_ENOTFOUND)
        return s_write_version (txn, ZV_STORE_SCHEMA_VERSION);
    if (status) {
        snprintf (errbuf, errlen, "store at %s: cannot read schema version", path);
        return status;
    }
    json_t *jversion = json_object_get (meta, "version");
    json_int_t version = json_is_integer (jversion)? json_integer_value (jversion): 0;
    json_decref (meta);
    if (version < 1) {
        snprintf (errbuf, errlen, "store at %s has an invalid schema version", path);
        return ZV_EIO;
    }
    if (version > ZV_STORE_SCHEMA_VERSION) {
        snprintf (errbuf, errlen,
                  "store at %s has schema version %lld, newer than this zova (%d)",
                  path, (long long) version, ZV_STORE_SCHEMA_VERSION);
        return ZV_EUNSUPPORTED;
    }
    if (version == ZV_STORE_SCHEMA_VERSION)
        return ZV_OK;
    for (json_int_t v = version; v < ZV_STORE_SCHEMA_VERSION; v++) {
        assert (s_migrations [v]);
        zv_info (S_ACTOR, NULL, "store at %s: migrating schema %lld -> %lld",
                 path, (long long) v, (long long) v + 1);
        status = s_migrations [v] (txn, errbuf, errlen);
        if (status)
            return status;
    }
    return s_write_version (txn, ZV_STORE_SCHEMA_VERSION);
}

static int
s_mkdir_p (const char *path)
{
    char buf [4096];
    size_t len = strlen (path);
    if (len == 0 || len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy (buf, path, len + 1);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir (buf, 0700) && errno != EEXIST)
                return -1;
            *p = saved;
            if (!saved)
                break;
        }
    }
    return 0;
}

zv_store_t *
zv_store_open (const char *path, size_t map_size_mb, char *errbuf, size_t errlen)
{
    assert (path);
    zv_txn_t *txn = NULL;
    zv_store_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (errbuf, errlen, "out of memory");
        return NULL;
    }
    self->map_size_mb = map_size_mb;
    if (s_mkdir_p (path)) {
        snprintf (errbuf, errlen, "cannot create store directory %s: %s",
                  path, strerror (errno));
        goto fail;
    }
    int rc = mdb_env_create (&self->env);
    if (!rc)
        rc = mdb_env_set_maxdbs (self->env, ZV_TABLE_COUNT + S_EXTRA_DBS);
    if (!rc)
        rc = mdb_env_set_mapsize (self->env, map_size_mb << 20);
    if (!rc)
        rc = mdb_env_open (self->env, path, MDB_NOTLS, 0600);
    if (rc) {
        snprintf (errbuf, errlen, "cannot open store at %s: %s", path, mdb_strerror (rc));
        goto fail;
    }
    //  An existing store keeps its larger map; report the real size.
    MDB_envinfo info;
    if (!mdb_env_info (self->env, &info))
        self->map_size_mb = info.me_mapsize >> 20;
    txn = zv_txn_begin (self, NULL, true);
    if (!txn) {
        snprintf (errbuf, errlen, "cannot open store at %s: no write transaction", path);
        goto fail;
    }
    for (int t = 0; t < ZV_TABLE_COUNT; t++) {
        rc = mdb_dbi_open (txn->txn, s_table_names [t], MDB_CREATE, &self->dbi [t]);
        if (rc) {
            snprintf (errbuf, errlen, "cannot open table %s in store at %s: %s",
                      s_table_names [t], path, mdb_strerror (rc));
            goto fail;
        }
    }
    if (s_schema_check (txn, path, errbuf, errlen))
        goto fail;
    if (zv_txn_commit (&txn)) {
        snprintf (errbuf, errlen, "cannot open store at %s: commit failed", path);
        goto fail;
    }
    return self;

fail:
    zv_txn_abort (&txn);
    zv_store_destroy (&self);
    return NULL;
}

void
zv_store_destroy (zv_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_store_t *self = *self_p;
    if (self->env)
        mdb_env_close (self->env);
    free (self);
    *self_p = NULL;
}

//  -------------------------------------------------------------------------
//  Instances

static void
s_set_updated (json_t *rec)
{
    char iso [32];
    int64_t now = zv_now_ms ();
    json_object_set_new (rec, "updated", json_string (zv_iso8601 (now, iso)));
    json_object_set_new (rec, "updated_ms", json_integer (now));
}

//  The state fields a change may set, and what makes a value valid.
static const struct {
    const char *field;
    int (*from_name) (const char *name);
    bool nullable;
} s_state_fields [] = {
    { "vm_state",    zv_vm_state_from_name,    false },
    { "task_state",  zv_task_state_from_name,  true },
    { "power_state", zv_power_state_from_name, false },
};

static zv_status_t
s_check_changes (const char *uuid, const json_t *changes, char *errbuf, size_t errlen)
{
    if (!json_is_object (changes)) {
        snprintf (errbuf, errlen, "changes to instance %s must be an object", uuid);
        return ZV_EINVAL;
    }
    const json_t *juuid = json_object_get (changes, "uuid");
    if (juuid && !(json_is_string (juuid) && !strcmp (json_string_value (juuid), uuid))) {
        snprintf (errbuf, errlen, "cannot change the uuid of instance %s", uuid);
        return ZV_EINVAL;
    }
    for (size_t i = 0; i < sizeof s_state_fields / sizeof s_state_fields [0]; i++) {
        const json_t *value = json_object_get (changes, s_state_fields [i].field);
        if (!value || (json_is_null (value) && s_state_fields [i].nullable))
            continue;
        if (!json_is_string (value)
        ||  s_state_fields [i].from_name (json_string_value (value)) < 0) {
            char *text = json_dumps (value, JSON_ENCODE_ANY);
            snprintf (errbuf, errlen, "invalid %s %s for instance %s",
                      s_state_fields [i].field, text? text: "?", uuid);
            free (text);
            return ZV_EINVAL;
        }
    }
    return ZV_OK;
}

//  Python's repr of a task_state, as Nova's messages show it.
static void
s_repr (const json_t *value, char *buf, size_t len)
{
    if (json_is_string (value))
        snprintf (buf, len, "'%s'", json_string_value (value));
    else
        snprintf (buf, len, "None");
}

static bool
s_task_matches (const json_t *expected, const json_t *actual)
{
    const char *name = json_is_string (actual)? json_string_value (actual): NULL;
    size_t i;
    json_t *item;
    json_array_foreach (expected, i, item) {
        if (json_is_null (item) && !name)
            return true;
        if (json_is_string (item) && name && !strcmp (json_string_value (item), name))
            return true;
    }
    return false;
}

static void
s_conflict (const char *uuid, const json_t *expected, const json_t *actual,
            char *errbuf, size_t errlen)
{
    char list [512] = "", one [128];
    size_t used = 0, i;
    json_t *item;
    json_array_foreach (expected, i, item) {
        s_repr (item, one, sizeof one);
        int n = snprintf (list + used, sizeof list - used, "%s%s", i? ", ": "", one);
        if (n < 0 || (size_t) n >= sizeof list - used)
            break;
        used += (size_t) n;
    }
    s_repr (actual, one, sizeof one);
    snprintf (errbuf, errlen, "Conflict updating instance %s. Expected: "
              "{'task_state': [%s]}. Actual: {'task_state': %s}", uuid, list, one);
}

static zv_status_t
s_instance_get (zv_txn_t *txn, const char *uuid, json_t **rec_p,
                char *errbuf, size_t errlen)
{
    zv_status_t status = zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, rec_p);
    if (status == ZV_ENOTFOUND)
        snprintf (errbuf, errlen, "Instance %s could not be found.", uuid);
    else
    if (status)
        snprintf (errbuf, errlen, "cannot read instance %s: %s", uuid,
                  zv_status_name (status));
    return status;
}

zv_status_t
zv_store_instance_cas (zv_txn_t *txn, const char *uuid,
                       const json_t *expected, const json_t *changes,
                       json_t **rec_p, char *errbuf, size_t errlen)
{
    assert (txn && uuid);
    json_t *rec = NULL;
    if (rec_p)
        *rec_p = NULL;
    if (expected && !json_is_array (expected)) {
        snprintf (errbuf, errlen, "expected task_states for instance %s must be a list", uuid);
        return ZV_EINVAL;
    }
    zv_status_t status = s_check_changes (uuid, changes, errbuf, errlen);
    if (status)
        return status;
    status = s_instance_get (txn, uuid, &rec, errbuf, errlen);
    if (status)
        return status;
    if (expected) {
        const json_t *actual = json_object_get (rec, "task_state");
        if (!s_task_matches (expected, actual)) {
            s_conflict (uuid, expected, actual, errbuf, errlen);
            status = ZV_ECONFLICT;
            goto cleanup;
        }
    }
    if (json_object_update (rec, (json_t *) changes)) {
        status = ZV_ENOMEM;
        goto cleanup;
    }
    status = zv_instance_check (rec, errbuf, errlen);
    if (status)
        goto cleanup;
    s_set_updated (rec);
    status = zv_store_put (txn, ZV_TABLE_INSTANCES, uuid, rec);
    if (status) {
        snprintf (errbuf, errlen, "cannot write instance %s: %s", uuid,
                  zv_status_name (status));
        goto cleanup;
    }
    if (rec_p)
        *rec_p = json_incref (rec);
cleanup:
    json_decref (rec);
    return status;
}

zv_status_t
zv_store_instance_action (zv_txn_t *txn, const char *uuid,
                          zv_action_t action, const char *request_id,
                          json_t **rec_p, char *errbuf, size_t errlen)
{
    assert (txn && uuid);
    json_t *rec = NULL;
    if (rec_p)
        *rec_p = NULL;
    if (!request_id || !*request_id) {
        snprintf (errbuf, errlen, "action on instance %s needs a request id", uuid);
        return ZV_EINVAL;
    }
    zv_status_t status = s_instance_get (txn, uuid, &rec, errbuf, errlen);
    if (status)
        return status;
    if (json_is_true (json_object_get (rec, "deleted"))) {
        snprintf (errbuf, errlen, "Instance %s could not be found.", uuid);
        status = ZV_ENOTFOUND;
        goto cleanup;
    }
    const json_t *jtask = json_object_get (rec, "task_state");
    int vm = zv_vm_state_from_name (json_string_value (json_object_get (rec, "vm_state")));
    int task = json_is_string (jtask)? zv_task_state_from_name (json_string_value (jtask))
                                     : ZV_TASK_NONE;
    if (vm < 0 || task < 0) {
        snprintf (errbuf, errlen, "instance %s has an invalid state in the store", uuid);
        zv_error (S_ACTOR, request_id, "%s", errbuf);
        status = ZV_EINTERNAL;
        goto cleanup;
    }
    zv_task_state_t next;
    status = zv_state_check (action, uuid, (zv_vm_state_t) vm, (zv_task_state_t) task,
                             &next, errbuf, errlen);
    if (status)
        goto cleanup;
    const char *next_name = zv_task_state_name (next);
    json_object_set_new (rec, "task_state", next_name? json_string (next_name): json_null ());
    //  A move or rebuild ends in the vm_state it started from (ZV_VM_PRIOR).
    if (zv_state_action_keeps_prior (action))
        json_object_set_new (rec, "old_vm_state", json_string (zv_vm_state_name ((zv_vm_state_t) vm)));
    s_set_updated (rec);
    status = zv_store_put (txn, ZV_TABLE_INSTANCES, uuid, rec);
    if (!status)
        status = zv_store_action_start (txn, uuid, zv_action_name (action), request_id);
    if (status) {
        snprintf (errbuf, errlen, "cannot record '%s' on instance %s: %s",
                  zv_action_name (action), uuid, zv_status_name (status));
        goto cleanup;
    }
    if (rec_p)
        *rec_p = json_incref (rec);
cleanup:
    json_decref (rec);
    return status;
}

//  -------------------------------------------------------------------------
//  Action log

zv_status_t
zv_store_action_start (zv_txn_t *txn, const char *uuid,
                       const char *action, const char *request_id)
{
    assert (txn && uuid && action);
    if (!request_id || !*request_id)
        return ZV_EINVAL;
    char key [S_KEY_MAX + 1], iso [32];
    int64_t now = zv_now_ms ();
    int n = snprintf (key, sizeof key, "%s/%013lld/%s", uuid, (long long) now, request_id);
    if (n < 0 || (size_t) n >= sizeof key)
        return ZV_EINVAL;
    json_t *rec = json_pack ("{ss ss ss ss sI sn sn sn}",
                             "request_id", request_id, "action", action,
                             "instance_uuid", uuid,
                             "start_time", zv_iso8601 (now, iso), "start_ms", (json_int_t) now,
                             "finish_time", "result", "message");
    if (!rec)
        return ZV_ENOMEM;
    zv_status_t status = zv_store_insert (txn, ZV_TABLE_ACTIONS, key, rec);
    json_decref (rec);
    return status;
}

typedef struct {
    const char *request_id;
    char key [S_KEY_MAX + 1];
    json_t *rec;                        //  best match so far
    bool unfinished;                    //  ... and whether it is still open
} s_finder_t;

static bool
s_find_action (const char *key, json_t *rec, void *arg)
{
    s_finder_t *finder = arg;
    const char *rq = json_string_value (json_object_get (rec, "request_id"));
    if (!rq || strcmp (rq, finder->request_id))
        return true;
    bool unfinished = json_is_null (json_object_get (rec, "finish_time"));
    //  Keys sort by start time: a later match wins unless it is finished
    //  and an open one was already seen.
    if (unfinished || !finder->unfinished) {
        json_decref (finder->rec);
        finder->rec = json_incref (rec);
        finder->unfinished = unfinished;
        snprintf (finder->key, sizeof finder->key, "%s", key);
    }
    return true;
}

zv_status_t
zv_store_action_finish (zv_txn_t *txn, const char *uuid,
                        const char *request_id, const char *result,
                        const char *message)
{
    assert (txn && uuid);
    if (!request_id || !result)
        return ZV_EINVAL;
    char prefix [S_KEY_MAX + 1], iso [32];
    int n = snprintf (prefix, sizeof prefix, "%s/", uuid);
    if (n < 0 || (size_t) n >= sizeof prefix)
        return ZV_EINVAL;
    s_finder_t finder = { .request_id = request_id };
    zv_status_t status = zv_store_scan (txn, ZV_TABLE_ACTIONS, prefix, s_find_action, &finder);
    if (status)
        goto cleanup;
    if (!finder.rec) {
        status = ZV_ENOTFOUND;
        goto cleanup;
    }
    json_object_set_new (finder.rec, "finish_time",
                         json_string (zv_iso8601 (zv_now_ms (), iso)));
    json_object_set_new (finder.rec, "result", json_string (result));
    json_object_set_new (finder.rec, "message", message? json_string (message): json_null ());
    status = zv_store_put (txn, ZV_TABLE_ACTIONS, finder.key, finder.rec);
cleanup:
    json_decref (finder.rec);
    return status;
}

static bool
s_collect (const char *key, json_t *rec, void *arg)
{
    (void) key;
    json_array_append (arg, rec);
    return true;
}

json_t *
zv_store_action_list (zv_txn_t *txn, const char *uuid)
{
    assert (txn && uuid);
    char prefix [S_KEY_MAX + 1];
    int n = snprintf (prefix, sizeof prefix, "%s/", uuid);
    json_t *list = json_array ();
    if (!list || n < 0 || (size_t) n >= sizeof prefix
    ||  zv_store_scan (txn, ZV_TABLE_ACTIONS, prefix, s_collect, list)) {
        json_decref (list);
        return NULL;
    }
    return list;
}
