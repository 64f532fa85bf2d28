/*  zv_migration.c: migration records and their open index.

    Two tables: migrations (every record, kept after it closes) and
    open_migrations (instance uuid -> where the open move goes), written in
    the same transaction, so that the index never disagrees with the
    records.  The sequence of ids lives in the meta table.  Everything runs
    inside the caller's write transaction; nothing here commits.            */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <assert.h>
#include "store/zv_migration.h"

#define S_SEQUENCE_KEY "migration_seq"

static const char *s_kind_names [ZV_MIGRATION_KIND_COUNT] = {
    [ZV_MIGRATION_COLD]       = "migration",
    [ZV_MIGRATION_RESIZE]     = "resize",
    [ZV_MIGRATION_LIVE]       = "live-migration",
    [ZV_MIGRATION_EVACUATION] = "evacuation",
};

//  Nova's statuses (objects/migration.py and the compute manager), each
//  with whether it ends the migration.
static const struct {
    const char *name;
    bool closed;
} s_statuses [] = {
    { "accepted", false },      { "queued", false },        { "preparing", false },
    { "pre-migrating", false }, { "migrating", false },     { "running", false },
    { "post-migrating", false }, { "finished", false },     { "confirming", false },
    { "reverting", false },     { "rebuilding", false },
    { "confirmed", true },      { "reverted", true },       { "error", true },
    { "done", true },           { "failed", true },         { "cancelled", true },
    { "completed", true },
};
#define S_STATUSES (sizeof (s_statuses) / sizeof (s_statuses [0]))

const char *
zv_migration_kind_name (zv_migration_kind_t kind)
{
    return (unsigned) kind < ZV_MIGRATION_KIND_COUNT? s_kind_names [kind]: NULL;
}

int
zv_migration_kind_from_name (const char *name)
{
    for (int kind = 0; name && kind < ZV_MIGRATION_KIND_COUNT; kind++)
        if (!strcmp (s_kind_names [kind], name))
            return kind;
    return -1;
}

bool
zv_migration_status_valid (const char *status)
{
    for (size_t index = 0; status && index < S_STATUSES; index++)
        if (!strcmp (s_statuses [index].name, status))
            return true;
    return false;
}

bool
zv_migration_status_closed (const char *status)
{
    for (size_t index = 0; status && index < S_STATUSES; index++)
        if (!strcmp (s_statuses [index].name, status))
            return s_statuses [index].closed;
    return false;
}

static const char *
s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  The table key of an integer id: ten digits, so key order is id order.
static void
s_key (json_int_t id, char key [24])
{
    snprintf (key, 24, "%010lld", (long long) id);
}

static zv_status_t
s_next_id (zv_txn_t *txn, json_int_t *id_p)
{
    json_t *sequence = NULL;
    json_int_t next = 1;
    if (zv_store_get (txn, ZV_TABLE_META, S_SEQUENCE_KEY, &sequence) == ZV_OK)
        next = json_integer_value (json_object_get (sequence, "next"));
    json_decref (sequence);
    if (next < 1)
        next = 1;
    sequence = json_pack ("{s:I}", "next", next + 1);
    zv_status_t status = sequence? zv_store_put (txn, ZV_TABLE_META, S_SEQUENCE_KEY, sequence)
                                 : ZV_ENOMEM;
    json_decref (sequence);
    *id_p = next;
    return status;
}

//  What the open index keeps of a record.
static json_t *
s_index_entry (const json_t *rec)
{
    return json_pack ("{s:O, s:O, s:O, s:O, s:O, s:O}",
                      "id", json_object_get (rec, "id"),
                      "instance_uuid", json_object_get (rec, "instance_uuid"),
                      "source_host", json_object_get (rec, "source_host"),
                      "dest_host", json_object_get (rec, "dest_host"),
                      "kind", json_object_get (rec, "kind"),
                      "phase", json_object_get (rec, "phase"));
}

//  Set or clear an instance's migration_id (a key of the store's own, no
//  task_state check: the caller's CAS on the instance is the judge).
static zv_status_t
s_instance_mark (zv_txn_t *txn, const char *uuid, json_t *id, char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec);
    if (status == ZV_ENOTFOUND) {
        snprintf (errbuf, errlen, "Instance %s could not be found.", uuid);
        return status;
    }
    if (status)
        return status;
    if (id)
        json_object_set (rec, "migration_id", id);
    else
        json_object_del (rec, "migration_id");
    status = zv_store_put (txn, ZV_TABLE_INSTANCES, uuid, rec);
    json_decref (rec);
    if (status)
        snprintf (errbuf, errlen, "cannot write instance %s: %s", uuid, zv_status_name (status));
    return status;
}

zv_status_t
zv_migration_create (zv_txn_t *txn, const zv_migration_init_t *init,
                     json_t **rec_p, char *errbuf, size_t errlen)
{
    assert (txn && init && init->instance_uuid);
    if (rec_p)
        *rec_p = NULL;
    const char *kind = zv_migration_kind_name (init->kind);
    if (!kind || !zv_migration_status_valid (init->status) || !init->phase) {
        snprintf (errbuf, errlen, "invalid migration: kind, status and phase are required");
        return ZV_EINVAL;
    }
    json_t *instance = NULL;
    if (zv_store_get (txn, ZV_TABLE_INSTANCES, init->instance_uuid, &instance) != ZV_OK) {
        snprintf (errbuf, errlen, "Instance %s could not be found.", init->instance_uuid);
        return ZV_ENOTFOUND;
    }
    json_decref (instance);
    json_t *open = NULL;
    if (zv_store_get (txn, ZV_TABLE_OPEN_MIGRATIONS, init->instance_uuid, &open) == ZV_OK) {
        snprintf (errbuf, errlen, "Instance %s is already being moved (migration %lld).",
                  init->instance_uuid, (long long) json_integer_value (json_object_get (open, "id")));
        json_decref (open);
        return ZV_ECONFLICT;
    }
    json_int_t id = 0;
    zv_status_t status = s_next_id (txn, &id);
    if (status)
        return status;
    char uuid [ZV_UUID_LEN + 1], now [32], key [24];
    zv_uuid_new (uuid);
    int64_t now_ms = zv_now_ms ();
    zv_iso8601 (now_ms, now);
    const json_t *new_flavor = init->new_flavor? init->new_flavor: init->old_flavor;
    json_t *rec = json_pack ("{s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:O, s:s, s:s,"
                             " s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:n}",
        "id", id, "uuid", uuid, "instance_uuid", init->instance_uuid,
        "kind", kind, "source_host", init->source_host? init->source_host: "",
        "dest_host", init->dest_host? json_string (init->dest_host): json_null (),
        "source_node", init->source_host? init->source_host: "",
        "dest_node", init->dest_host? json_string (init->dest_host): json_null (),
        "old_flavor", init->old_flavor? json_deep_copy (init->old_flavor): json_null (),
        "new_flavor", new_flavor? json_deep_copy (new_flavor): json_null (),
        "old_instance_type_id", json_object_get (init->old_flavor, "id")
                                ? json_object_get (init->old_flavor, "id"): json_null (),
        "status", init->status, "phase", init->phase,
        "request_id", init->request_id? init->request_id: "",
        "project_id", init->project_id? init->project_id: "",
        "user_id", init->user_id? init->user_id: "",
        "created_at", now, "updated_at", now,
        "created_ms", (json_int_t) now_ms, "updated_ms", (json_int_t) now_ms,
        "error");
    if (!rec)
        return ZV_ENOMEM;
    s_key (id, key);
    status = zv_store_insert (txn, ZV_TABLE_MIGRATIONS, key, rec);
    json_t *entry = status? NULL: s_index_entry (rec);
    if (!status)
        status = zv_store_put (txn, ZV_TABLE_OPEN_MIGRATIONS, init->instance_uuid, entry);
    json_decref (entry);
    if (!status)
        status = s_instance_mark (txn, init->instance_uuid, json_object_get (rec, "id"), errbuf, errlen);
    else
        snprintf (errbuf, errlen, "cannot record migration %lld: %s", (long long) id,
                  zv_status_name (status));
    if (!status && rec_p)
        *rec_p = json_incref (rec);
    json_decref (rec);
    return status;
}

zv_status_t
zv_migration_get (zv_txn_t *txn, const char *id, json_t **rec_p)
{
    assert (txn && rec_p);
    *rec_p = NULL;
    if (!id || !*id)
        return ZV_ENOTFOUND;
    char *end = NULL;
    long long number = strtoll (id, &end, 10);
    if (end && *end == '\0' && number > 0) {
        char key [24];
        s_key (number, key);
        return zv_store_get (txn, ZV_TABLE_MIGRATIONS, key, rec_p);
    }
    //  By uuid: a scan (listings are rare; ids are what the CLI sends).
    json_t *all = zv_migration_list (txn, NULL, NULL, NULL);
    size_t index;
    json_t *rec;
    json_array_foreach (all, index, rec)
        if (s_str (rec, "uuid") && !strcmp (s_str (rec, "uuid"), id)) {
            *rec_p = json_incref (rec);
            break;
        }
    json_decref (all);
    return *rec_p? ZV_OK: ZV_ENOTFOUND;
}

zv_status_t
zv_migration_open_of (zv_txn_t *txn, const char *instance_uuid, json_t **rec_p)
{
    json_t *entry = NULL;
    *rec_p = NULL;
    zv_status_t status = zv_store_get (txn, ZV_TABLE_OPEN_MIGRATIONS, instance_uuid, &entry);
    if (status)
        return status;
    char key [24];
    s_key (json_integer_value (json_object_get (entry, "id")), key);
    json_decref (entry);
    return zv_store_get (txn, ZV_TABLE_MIGRATIONS, key, rec_p);
}

zv_status_t
zv_migration_cas (zv_txn_t *txn, const char *id, const char *expected_phase,
                  const json_t *changes, json_t **rec_p, char *errbuf, size_t errlen)
{
    if (rec_p)
        *rec_p = NULL;
    json_t *rec = NULL;
    zv_status_t status = zv_migration_get (txn, id, &rec);
    if (status) {
        snprintf (errbuf, errlen, "Migration %s could not be found.", id);
        return status;
    }
    const char *phase = s_str (rec, "phase");
    const char *was = s_str (rec, "status");
    if (zv_migration_status_closed (was)) {
        snprintf (errbuf, errlen, "Conflict updating migration %s: it is %s already.", id, was);
        status = ZV_ECONFLICT;
        goto cleanup;
    }
    if (expected_phase && (!phase || strcmp (phase, expected_phase))) {
        snprintf (errbuf, errlen, "Conflict updating migration %s. Expected phase %s, actual %s.",
                  id, expected_phase, phase? phase: "none");
        status = ZV_ECONFLICT;
        goto cleanup;
    }
    const char *status_name = s_str (changes, "status");
    if (status_name && !zv_migration_status_valid (status_name)) {
        snprintf (errbuf, errlen, "'%s' is not a migration status", status_name);
        status = ZV_EINVAL;
        goto cleanup;
    }
    if (json_object_update (rec, (json_t *) changes)) {
        status = ZV_ENOMEM;
        goto cleanup;
    }
    char now [32], key [24];
    int64_t now_ms = zv_now_ms ();
    json_object_set_new (rec, "updated_at", json_string (zv_iso8601 (now_ms, now)));
    json_object_set_new (rec, "updated_ms", json_integer (now_ms));
    json_int_t number = json_integer_value (json_object_get (rec, "id"));
    s_key (number, key);
    status = zv_store_put (txn, ZV_TABLE_MIGRATIONS, key, rec);
    const char *instance = s_str (rec, "instance_uuid");
    if (!status && zv_migration_status_closed (s_str (rec, "status"))) {
        status = zv_store_del (txn, ZV_TABLE_OPEN_MIGRATIONS, instance);
        if (status == ZV_ENOTFOUND)
            status = ZV_OK;
        //  The instance may be gone (a delete finished the move).
        json_t *inst = NULL;
        if (!status && zv_store_get (txn, ZV_TABLE_INSTANCES, instance, &inst) == ZV_OK
        &&  json_integer_value (json_object_get (inst, "migration_id")) == number)
            status = s_instance_mark (txn, instance, NULL, errbuf, errlen);
        json_decref (inst);
    }
    else
    if (!status) {
        json_t *entry = s_index_entry (rec);
        status = zv_store_put (txn, ZV_TABLE_OPEN_MIGRATIONS, instance, entry);
        json_decref (entry);
    }
    if (status && !*errbuf)
        snprintf (errbuf, errlen, "cannot write migration %s: %s", id, zv_status_name (status));
    if (!status && rec_p)
        *rec_p = json_incref (rec);
cleanup:
    json_decref (rec);
    return status;
}

typedef struct {
    const char *instance, *host, *status;
    json_t *list;
} s_list_t;

static bool
s_list_visit (const char *key, json_t *rec, void *arg)
{
    (void) key;
    s_list_t *list = (s_list_t *) arg;
    const char *source = s_str (rec, "source_host"), *dest = s_str (rec, "dest_host");
    if (list->instance && (!s_str (rec, "instance_uuid") || strcmp (list->instance, s_str (rec, "instance_uuid"))))
        return true;
    if (list->host && !(source && !strcmp (source, list->host)) && !(dest && !strcmp (dest, list->host)))
        return true;
    if (list->status && (!s_str (rec, "status") || strcmp (list->status, s_str (rec, "status"))))
        return true;
    //  Newest first: keys are in id order, so prepend.
    json_array_insert (list->list, 0, rec);
    return true;
}

json_t *
zv_migration_list (zv_txn_t *txn, const char *instance_uuid, const char *host, const char *status)
{
    s_list_t list = { instance_uuid, host, status, json_array () };
    zv_store_scan (txn, ZV_TABLE_MIGRATIONS, "", s_list_visit, &list);
    return list.list;
}

typedef struct {
    const char *host;
    json_t *found;                  //  object (by host) or array (all)
} s_open_t;

static bool
s_open_visit (const char *key, json_t *rec, void *arg)
{
    s_open_t *open = (s_open_t *) arg;
    json_object_del (rec, "_rv");
    if (!open->host) {
        json_array_append (open->found, rec);
        return true;
    }
    const char *source = s_str (rec, "source_host"), *dest = s_str (rec, "dest_host");
    if ((source && !strcmp (source, open->host)) || (dest && !strcmp (dest, open->host)))
        json_object_set (open->found, key, rec);
    return true;
}

json_t *
zv_migration_open_on_host (zv_txn_t *txn, const char *host)
{
    s_open_t open = { host, json_object () };
    zv_store_scan (txn, ZV_TABLE_OPEN_MIGRATIONS, "", s_open_visit, &open);
    return open.found;
}

json_t *
zv_migration_open_all (zv_txn_t *txn)
{
    s_open_t open = { NULL, json_array () };
    zv_store_scan (txn, ZV_TABLE_OPEN_MIGRATIONS, "", s_open_visit, &open);
    return open.found;
}
