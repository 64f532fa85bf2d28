/*  test_store.c: the LMDB store, each test on a fresh store in its own
    temporary directory (removed afterwards), so tests share nothing and run
    in any order.  Covers records, scans, persistence, the schema version,
    nested transactions (how the conductor batches requests), instance
    compare-and-swap, user actions with their log, and a full map.           */

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <ftw.h>
#include <unistd.h>
#include <cmocka.h>
#include "store/zv_store.h"
#include "proto/zv_pack.h"

#define UUID  "4f1c2a0e-8d3b-4c55-9a6e-0b7d2f1e9c31"
#define UUID2 "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"

typedef struct {
    char dir [64];
    char path [128];                    //  the store, one level down: mkdir -p
    zv_store_t *store;
} fixture_t;

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static int
s_setup (void **state)
{
    fixture_t *self = calloc (1, sizeof *self);
    assert_non_null (self);
    snprintf (self->dir, sizeof self->dir, "/tmp/zv_test_store.XXXXXX");
    assert_non_null (mkdtemp (self->dir));
    snprintf (self->path, sizeof self->path, "%s/state/store", self->dir);
    char err [256] = "";
    self->store = zv_store_open (self->path, 16, err, sizeof err);
    if (!self->store)
        fail_msg ("open: %s", err);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    zv_store_destroy (&self->store);
    zv_store_destroy (&self->store);    //  second destroy is harmless
    nftw (self->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    assert_int_equal (access (self->dir, F_OK), -1);
    free (self);
    return 0;
}

static void
s_reopen (fixture_t *self, size_t map_size_mb)
{
    zv_store_destroy (&self->store);
    char err [256] = "";
    self->store = zv_store_open (self->path, map_size_mb, err, sizeof err);
    if (!self->store)
        fail_msg ("reopen: %s", err);
}

static json_t *
s_instance (const char *uuid, const char *vm, const char *task)
{
    json_t *rec = json_pack ("{ss ss ss so ss ss}", "uuid", uuid, "name", "vm1",
                             "vm_state", vm,
                             "task_state", task? json_string (task): json_null (),
                             "power_state", "running", "host", "node1");
    assert_non_null (rec);
    return rec;
}

static void
s_seed (fixture_t *self, const char *uuid, const char *vm, const char *task)
{
    zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
    assert_non_null (txn);
    json_t *rec = s_instance (uuid, vm, task);
    assert_int_equal (zv_store_put (txn, ZV_TABLE_INSTANCES, uuid, rec), ZV_OK);
    json_decref (rec);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);
    assert_null (txn);
}

//  The stored instance, for checks outside any caller transaction.
static json_t *
s_fetch (fixture_t *self, zv_table_t table, const char *key)
{
    zv_txn_t *txn = zv_txn_begin (self->store, NULL, false);
    assert_non_null (txn);
    json_t *rec = NULL;
    zv_status_t status = zv_store_get (txn, table, key, &rec);
    zv_txn_abort (&txn);
    return status == ZV_OK? rec: NULL;
}

static void
test_table_names (void **state)
{
    (void) state;
    static const char *names [] = { "meta", "instances", "flavors", "images",
                                    "services", "nodes", "allocations", "actions",
                                    "aggregates", "server_groups", "console_tokens",
                                    "migrations", "open_migrations" };
    assert_int_equal (sizeof names / sizeof names [0], ZV_TABLE_COUNT);
    for (int t = 0; t < ZV_TABLE_COUNT; t++)
        assert_string_equal (zv_table_name ((zv_table_t) t), names [t]);
    assert_null (zv_table_name (ZV_TABLE_COUNT));
}

typedef struct { json_t *keys; } seen_t;

static bool
s_visit (const char *key, json_t *rec, void *arg)
{
    assert_true (json_is_object (rec));
    json_array_append_new (((seen_t *) arg)->keys, json_string (key));
    return true;
}

static bool
s_visit_one (const char *key, json_t *rec, void *arg)
{
    (void) rec;
    json_array_append_new (((seen_t *) arg)->keys, json_string (key));
    return false;
}

//  The raw visitor: each stored map, as zv_store_get would decode it.
static bool
s_visit_raw (const char *key, const void *data, size_t size, void *arg)
{
    (void) key;
    json_t *rec = NULL;
    assert_int_equal (zv_pack_decode (data, size, &rec, NULL, 0), ZV_OK);
    assert_true (json_is_object (rec));
    json_array_append_new ((json_t *) arg, rec);
    return true;
}

static void
test_records (void **state)
{
    fixture_t *self = *state;
    zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
    assert_non_null (txn);
    json_t *flavor = json_pack ("{ss si si}", "name", "m1.small", "ram_mb", 2048, "vcpus", 1);
    assert_int_equal (zv_store_put (txn, ZV_TABLE_FLAVORS, "2", flavor), ZV_OK);
    //  The caller's object is not touched by the record version.
    assert_null (json_object_get (flavor, "_rv"));
    assert_int_equal (zv_store_insert (txn, ZV_TABLE_FLAVORS, "2", flavor), ZV_EEXIST);
    assert_int_equal (zv_store_insert (txn, ZV_TABLE_FLAVORS, "1", flavor), ZV_OK);
    assert_int_equal (zv_store_insert (txn, ZV_TABLE_FLAVORS, "", flavor), ZV_EINVAL);
    json_t *scalar = json_integer (1);
    assert_int_equal (zv_store_put (txn, ZV_TABLE_FLAVORS, "x", scalar), ZV_EINVAL);
    json_decref (scalar);

    json_t *got = NULL;
    assert_int_equal (zv_store_get (txn, ZV_TABLE_FLAVORS, "2", &got), ZV_OK);
    assert_string_equal (json_string_value (json_object_get (got, "name")), "m1.small");
    assert_int_equal (json_integer_value (json_object_get (got, "ram_mb")), 2048);
    assert_int_equal (json_integer_value (json_object_get (got, "_rv")), 1);
    json_decref (got);
    //  Tables are separate.
    assert_int_equal (zv_store_get (txn, ZV_TABLE_IMAGES, "2", &got), ZV_ENOTFOUND);
    assert_null (got);

    static const char *keys [] = { "compute/a", "compute/b", "computer/z",
                                   "conductor/a", "api/a" };
    for (size_t i = 0; i < 5; i++)
        assert_int_equal (zv_store_put (txn, ZV_TABLE_SERVICES, keys [i], flavor), ZV_OK);
    json_decref (flavor);
    assert_int_equal (zv_store_count (txn, ZV_TABLE_SERVICES), 5);
    assert_int_equal (zv_store_count (txn, ZV_TABLE_FLAVORS), 2);

    seen_t seen = { json_array () };
    assert_int_equal (zv_store_scan (txn, ZV_TABLE_SERVICES, "compute/", s_visit, &seen), ZV_OK);
    assert_int_equal (json_array_size (seen.keys), 2);
    assert_string_equal (json_string_value (json_array_get (seen.keys, 0)), "compute/a");
    assert_string_equal (json_string_value (json_array_get (seen.keys, 1)), "compute/b");
    json_array_clear (seen.keys);
    assert_int_equal (zv_store_scan (txn, ZV_TABLE_SERVICES, "", s_visit, &seen), ZV_OK);
    assert_int_equal (json_array_size (seen.keys), 5);
    assert_string_equal (json_string_value (json_array_get (seen.keys, 0)), "api/a");
    json_array_clear (seen.keys);
    assert_int_equal (zv_store_scan (txn, ZV_TABLE_SERVICES, "compute", s_visit_one, &seen), ZV_OK);
    assert_int_equal (json_array_size (seen.keys), 1);
    json_array_clear (seen.keys);
    assert_int_equal (zv_store_scan (txn, ZV_TABLE_SERVICES, "zzz", s_visit, &seen), ZV_OK);
    assert_int_equal (json_array_size (seen.keys), 0);
    json_decref (seen.keys);
    json_t *raw = json_array ();
    assert_int_equal (zv_store_scan_raw (txn, ZV_TABLE_SERVICES, "compute/", s_visit_raw, raw), ZV_OK);
    assert_int_equal (json_array_size (raw), 2);
    assert_string_equal (json_string_value (json_object_get (json_array_get (raw, 0), "name")), "m1.small");
    assert_int_equal (json_integer_value (json_object_get (json_array_get (raw, 1), "_rv")), 1);
    json_decref (raw);

    assert_int_equal (zv_store_del (txn, ZV_TABLE_SERVICES, "api/a"), ZV_OK);
    assert_int_equal (zv_store_del (txn, ZV_TABLE_SERVICES, "api/a"), ZV_ENOTFOUND);
    assert_int_equal (zv_store_count (txn, ZV_TABLE_SERVICES), 4);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);

    //  A read transaction sees the commit.
    txn = zv_txn_begin (self->store, NULL, false);
    assert_int_equal (zv_store_count (txn, ZV_TABLE_SERVICES), 4);
    zv_txn_abort (&txn);
    zv_txn_abort (&txn);                //  harmless on NULL
}

static void
test_reopen_persists (void **state)
{
    fixture_t *self = *state;
    s_seed (self, UUID, "active", NULL);
    //  An aborted write leaves nothing behind.
    zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
    json_t *rec = s_instance (UUID2, "active", NULL);
    assert_int_equal (zv_store_put (txn, ZV_TABLE_INSTANCES, UUID2, rec), ZV_OK);
    json_decref (rec);
    zv_txn_abort (&txn);

    s_reopen (self, 16);
    rec = s_fetch (self, ZV_TABLE_INSTANCES, UUID);
    assert_non_null (rec);
    assert_string_equal (json_string_value (json_object_get (rec, "vm_state")), "active");
    assert_true (json_is_null (json_object_get (rec, "task_state")));
    json_decref (rec);
    assert_null (s_fetch (self, ZV_TABLE_INSTANCES, UUID2));
    json_t *meta = s_fetch (self, ZV_TABLE_META, "schema_version");
    assert_non_null (meta);
    assert_int_equal (json_integer_value (json_object_get (meta, "version")),
                      ZV_STORE_SCHEMA_VERSION);
    json_decref (meta);
}

static void
test_schema_newer_refused (void **state)
{
    fixture_t *self = *state;
    zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
    json_t *meta = json_pack ("{si}", "version", 99);
    assert_int_equal (zv_store_put (txn, ZV_TABLE_META, "schema_version", meta), ZV_OK);
    json_decref (meta);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);
    zv_store_destroy (&self->store);

    char err [512] = "", want [512];
    assert_null (zv_store_open (self->path, 16, err, sizeof err));
    snprintf (want, sizeof want, "store at %s has schema version 99, "
              "newer than this zova (%d)", self->path, ZV_STORE_SCHEMA_VERSION);
    assert_string_equal (err, want);
}

static void
test_nested_txn (void **state)
{
    fixture_t *self = *state;
    json_t *rec = json_pack ("{ss}", "k", "v");

    //  Child aborted: the parent's writes stay, the child's go.
    zv_txn_t *parent = zv_txn_begin (self->store, NULL, true);
    assert_int_equal (zv_store_put (parent, ZV_TABLE_IMAGES, "p1", rec), ZV_OK);
    zv_txn_t *child = zv_txn_begin (self->store, parent, true);
    assert_non_null (child);
    assert_int_equal (zv_store_put (child, ZV_TABLE_IMAGES, "c1", rec), ZV_OK);
    json_t *got = NULL;
    assert_int_equal (zv_store_get (child, ZV_TABLE_IMAGES, "p1", &got), ZV_OK);
    json_decref (got);
    zv_txn_abort (&child);
    assert_null (child);
    //  A committed child is part of the batch.
    child = zv_txn_begin (self->store, parent, true);
    assert_int_equal (zv_store_put (child, ZV_TABLE_IMAGES, "c2", rec), ZV_OK);
    assert_int_equal (zv_txn_commit (&child), ZV_OK);
    assert_int_equal (zv_store_get (parent, ZV_TABLE_IMAGES, "c1", &got), ZV_ENOTFOUND);
    assert_int_equal (zv_store_get (parent, ZV_TABLE_IMAGES, "c2", &got), ZV_OK);
    json_decref (got);
    assert_int_equal (zv_txn_commit (&parent), ZV_OK);
    json_t *p1 = s_fetch (self, ZV_TABLE_IMAGES, "p1");
    json_t *c2 = s_fetch (self, ZV_TABLE_IMAGES, "c2");
    assert_non_null (p1);
    assert_non_null (c2);
    assert_null (s_fetch (self, ZV_TABLE_IMAGES, "c1"));
    json_decref (p1);
    json_decref (c2);

    //  Child committed, then parent aborted: both gone.
    parent = zv_txn_begin (self->store, NULL, true);
    assert_int_equal (zv_store_put (parent, ZV_TABLE_IMAGES, "p2", rec), ZV_OK);
    child = zv_txn_begin (self->store, parent, true);
    assert_int_equal (zv_store_put (child, ZV_TABLE_IMAGES, "c3", rec), ZV_OK);
    assert_int_equal (zv_txn_commit (&child), ZV_OK);
    zv_txn_abort (&parent);
    assert_null (s_fetch (self, ZV_TABLE_IMAGES, "p2"));
    assert_null (s_fetch (self, ZV_TABLE_IMAGES, "c3"));
    json_decref (rec);
}

static void
test_instance_cas (void **state)
{
    fixture_t *self = *state;
    s_seed (self, UUID, "active", "powering-off");
    char err [512] = "";
    json_t *rec = NULL;

    //  Success: expected matches, changes merged, nulls stored as null.
    zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
    json_t *expected = json_pack ("[ns]", "powering-off");
    json_t *changes = json_pack ("{ss sn ss ss}", "vm_state", "stopped", "task_state",
                                 "power_state", "shutdown", "note", "x");
    assert_int_equal (zv_store_instance_cas (txn, UUID, expected, changes, &rec,
                                             err, sizeof err), ZV_OK);
    assert_string_equal (json_string_value (json_object_get (rec, "vm_state")), "stopped");
    assert_true (json_is_null (json_object_get (rec, "task_state")));
    assert_string_equal (json_string_value (json_object_get (rec, "note")), "x");
    assert_string_equal (json_string_value (json_object_get (rec, "host")), "node1");
    assert_true (json_is_string (json_object_get (rec, "updated")));
    assert_true (json_integer_value (json_object_get (rec, "updated_ms")) > 0);
    json_decref (rec);
    json_decref (expected);
    json_decref (changes);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);
    rec = s_fetch (self, ZV_TABLE_INSTANCES, UUID);
    assert_string_equal (json_string_value (json_object_get (rec, "power_state")), "shutdown");
    const char *updated = json_string_value (json_object_get (rec, "updated"));
    assert_int_equal (strlen (updated), 20);
    assert_int_equal (updated [19], 'Z');
    json_decref (rec);

    //  Conflict: Nova's UnexpectedTaskStateError text, record unchanged.
    txn = zv_txn_begin (self->store, NULL, true);
    expected = json_pack ("[ss]", "powering-on", "deleting");
    changes = json_pack ("{ss}", "vm_state", "active");
    assert_int_equal (zv_store_instance_cas (txn, UUID, expected, changes, &rec,
                                             err, sizeof err), ZV_ECONFLICT);
    assert_null (rec);
    assert_string_equal (err, "Conflict updating instance " UUID ". Expected: "
                         "{'task_state': ['powering-on', 'deleting']}. "
                         "Actual: {'task_state': None}");
    json_decref (expected);
    //  expected NULL: no check.
    assert_int_equal (zv_store_instance_cas (txn, UUID, NULL, changes, NULL,
                                             err, sizeof err), ZV_OK);
    json_decref (changes);
    changes = json_pack ("{ss}", "task_state", "powering-off");
    assert_int_equal (zv_store_instance_cas (txn, UUID, NULL, changes, NULL,
                                             err, sizeof err), ZV_OK);
    json_decref (changes);
    expected = json_pack ("[n]");
    changes = json_pack ("{sn}", "task_state");
    assert_int_equal (zv_store_instance_cas (txn, UUID, expected, changes, NULL,
                                             err, sizeof err), ZV_ECONFLICT);
    assert_string_equal (err, "Conflict updating instance " UUID ". Expected: "
                         "{'task_state': [None]}. Actual: {'task_state': 'powering-off'}");
    json_decref (expected);
    json_decref (changes);

    //  Not found.
    changes = json_pack ("{ss}", "vm_state", "active");
    assert_int_equal (zv_store_instance_cas (txn, UUID2, NULL, changes, NULL,
                                             err, sizeof err), ZV_ENOTFOUND);
    assert_string_equal (err, "Instance " UUID2 " could not be found.");
    json_decref (changes);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);

    //  Invalid names are refused and change nothing.
    static const char *bad [] = {
        "{\"vm_state\": \"ACTIVE\"}", "{\"vm_state\": null}",
        "{\"task_state\": \"powering_off\"}", "{\"power_state\": 1}",
        "{\"uuid\": \"" UUID2 "\"}", "[]",
    };
    json_t *before = s_fetch (self, ZV_TABLE_INSTANCES, UUID);
    txn = zv_txn_begin (self->store, NULL, true);
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        changes = json_loads (bad [i], 0, NULL);
        assert_non_null (changes);
        assert_int_equal (zv_store_instance_cas (txn, UUID, NULL, changes, &rec,
                                                 err, sizeof err), ZV_EINVAL);
        assert_null (rec);
        json_decref (changes);
    }
    changes = json_pack ("{ss}", "vm_state", "active");
    json_t *not_a_list = json_string ("powering-off");
    assert_int_equal (zv_store_instance_cas (txn, UUID, not_a_list, changes, NULL,
                                             err, sizeof err), ZV_EINVAL);
    json_decref (not_a_list);
    json_decref (changes);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);
    json_t *after = s_fetch (self, ZV_TABLE_INSTANCES, UUID);
    assert_true (json_equal (before, after));
    json_decref (before);
    json_decref (after);
}

static void
test_instance_action (void **state)
{
    fixture_t *self = *state;
    s_seed (self, UUID, "active", NULL);
    char err [512] = "";
    json_t *rec = NULL;

    zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
    assert_int_equal (zv_store_action_start (txn, UUID, "create", "req-a"), ZV_OK);
    assert_int_equal (zv_store_instance_action (txn, UUID, ZV_ACTION_STOP, "req-b",
                                                &rec, err, sizeof err), ZV_OK);
    assert_string_equal (json_string_value (json_object_get (rec, "task_state")),
                         "powering-off");
    json_decref (rec);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);

    //  Refused while the stop is under way; the record is unchanged and no
    //  action is logged.
    json_t *before = s_fetch (self, ZV_TABLE_INSTANCES, UUID);
    txn = zv_txn_begin (self->store, NULL, true);
    assert_int_equal (zv_store_instance_action (txn, UUID, ZV_ACTION_PAUSE, "req-c",
                                                &rec, err, sizeof err), ZV_ECONFLICT);
    assert_null (rec);
    assert_string_equal (err, "Cannot 'pause' instance " UUID
                              " while it is in task_state powering-off");
    assert_int_equal (zv_store_instance_action (txn, UUID2, ZV_ACTION_PAUSE, "req-c",
                                                NULL, err, sizeof err), ZV_ENOTFOUND);
    assert_string_equal (err, "Instance " UUID2 " could not be found.");
    assert_int_equal (zv_store_instance_action (txn, UUID, ZV_ACTION_CREATE, "req-c",
                                                NULL, err, sizeof err), ZV_EINVAL);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);
    json_t *after = s_fetch (self, ZV_TABLE_INSTANCES, UUID);
    assert_true (json_equal (before, after));
    json_decref (before);
    json_decref (after);

    //  The compute host finishes the stop; then pause is judged on vm_state.
    txn = zv_txn_begin (self->store, NULL, true);
    json_t *expected = json_pack ("[s]", "powering-off");
    json_t *changes = json_pack ("{ss sn}", "vm_state", "stopped", "task_state");
    assert_int_equal (zv_store_instance_cas (txn, UUID, expected, changes, NULL,
                                             err, sizeof err), ZV_OK);
    json_decref (expected);
    json_decref (changes);
    assert_int_equal (zv_store_action_finish (txn, UUID, "req-b", "Success", NULL), ZV_OK);
    assert_int_equal (zv_store_action_finish (txn, UUID, "req-a", "Error", "no host"), ZV_OK);
    assert_int_equal (zv_store_action_finish (txn, UUID, "req-z", "Success", NULL),
                      ZV_ENOTFOUND);
    assert_int_equal (zv_store_instance_action (txn, UUID, ZV_ACTION_PAUSE, "req-d",
                                                NULL, err, sizeof err), ZV_ECONFLICT);
    assert_string_equal (err, "Cannot 'pause' instance " UUID
                              " while it is in vm_state stopped");
    assert_int_equal (zv_store_instance_action (txn, UUID, ZV_ACTION_START, "req-e",
                                                NULL, err, sizeof err), ZV_OK);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);

    txn = zv_txn_begin (self->store, NULL, false);
    json_t *list = zv_store_action_list (txn, UUID);
    json_t *none = zv_store_action_list (txn, UUID2);
    zv_txn_abort (&txn);
    assert_non_null (list);
    assert_int_equal (json_array_size (none), 0);
    json_decref (none);
    assert_int_equal (json_array_size (list), 3);
    static const struct { const char *rq, *action, *result, *message; } want [] = {
        { "req-a", "create", "Error",   "no host" },
        { "req-b", "stop",   "Success", NULL },
        { "req-e", "start",  NULL,      NULL },
    };
    for (size_t i = 0; i < 3; i++) {
        json_t *a = json_array_get (list, i);
        assert_string_equal (json_string_value (json_object_get (a, "request_id")), want [i].rq);
        assert_string_equal (json_string_value (json_object_get (a, "action")), want [i].action);
        assert_string_equal (json_string_value (json_object_get (a, "instance_uuid")), UUID);
        assert_true (json_is_string (json_object_get (a, "start_time")));
        assert_true (json_is_integer (json_object_get (a, "start_ms")));
        if (want [i].result) {
            assert_string_equal (json_string_value (json_object_get (a, "result")), want [i].result);
            assert_true (json_is_string (json_object_get (a, "finish_time")));
        }
        else {
            assert_true (json_is_null (json_object_get (a, "result")));
            assert_true (json_is_null (json_object_get (a, "finish_time")));
        }
        if (want [i].message)
            assert_string_equal (json_string_value (json_object_get (a, "message")), want [i].message);
        else
            assert_true (json_is_null (json_object_get (a, "message")));
        if (i)
            assert_true (json_integer_value (json_object_get (a, "start_ms"))
                      >= json_integer_value (json_object_get (json_array_get (list, i - 1), "start_ms")));
    }
    json_decref (list);

    //  A deleted instance is gone for users.
    txn = zv_txn_begin (self->store, NULL, true);
    changes = json_pack ("{sb ss sn}", "deleted", 1, "vm_state", "deleted", "task_state");
    assert_int_equal (zv_store_instance_cas (txn, UUID, NULL, changes, NULL,
                                             err, sizeof err), ZV_OK);
    json_decref (changes);
    assert_int_equal (zv_store_instance_action (txn, UUID, ZV_ACTION_DELETE, "req-f",
                                                NULL, err, sizeof err), ZV_ENOTFOUND);
    assert_string_equal (err, "Instance " UUID " could not be found.");
    zv_txn_abort (&txn);
}

static void
test_action_finish_newest_open (void **state)
{
    fixture_t *self = *state;
    zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
    //  Two actions under one request id: finishing closes the open one, and
    //  with both open, the newest.
    assert_int_equal (zv_store_action_start (txn, UUID, "resize", "req-1"), ZV_OK);
    usleep (2000);
    assert_int_equal (zv_store_action_start (txn, UUID, "confirmResize", "req-1"), ZV_OK);
    assert_int_equal (zv_store_action_finish (txn, UUID, "req-1", "Success", NULL), ZV_OK);
    json_t *list = zv_store_action_list (txn, UUID);
    assert_true (json_is_null (json_object_get (json_array_get (list, 0), "result")));
    assert_string_equal (json_string_value (json_object_get (json_array_get (list, 1), "result")),
                         "Success");
    json_decref (list);
    assert_int_equal (zv_store_action_finish (txn, UUID, "req-1", "Error", "boom"), ZV_OK);
    list = zv_store_action_list (txn, UUID);
    assert_string_equal (json_string_value (json_object_get (json_array_get (list, 0), "result")),
                         "Error");
    assert_string_equal (json_string_value (json_object_get (json_array_get (list, 1), "result")),
                         "Success");
    json_decref (list);
    zv_txn_abort (&txn);
}

static void
test_map_full (void **state)
{
    fixture_t *self = *state;
    s_reopen (self, 1);
    s_seed (self, UUID, "active", NULL);

    char *blob = malloc (60001);
    assert_non_null (blob);
    memset (blob, 'x', 60000);
    blob [60000] = 0;
    json_t *rec = json_pack ("{ss}", "blob", blob);
    free (blob);
    //  One record per committed transaction until either the put or the
    //  commit runs out of map.
    zv_status_t status = ZV_OK;
    int stored = 0;
    for (int i = 0; i < 100 && status == ZV_OK; i++) {
        char key [32];
        snprintf (key, sizeof key, "img-%03d", i);
        zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
        assert_non_null (txn);
        status = zv_store_put (txn, ZV_TABLE_IMAGES, key, rec);
        if (status == ZV_OK)
            status = zv_txn_commit (&txn);
        else
            zv_txn_abort (&txn);
        if (status == ZV_OK)
            stored++;
    }
    assert_int_equal (status, ZV_EIO);
    assert_true (stored > 0);
    //  And in one big transaction.
    zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
    status = ZV_OK;
    for (int i = 0; i < 100 && status == ZV_OK; i++) {
        char key [32];
        snprintf (key, sizeof key, "big-%03d", i);
        status = zv_store_put (txn, ZV_TABLE_IMAGES, key, rec);
    }
    assert_int_equal (status, ZV_EIO);
    zv_txn_abort (&txn);
    json_decref (rec);

    s_reopen (self, 1);
    json_t *inst = s_fetch (self, ZV_TABLE_INSTANCES, UUID);
    assert_non_null (inst);
    json_decref (inst);
    txn = zv_txn_begin (self->store, NULL, false);
    assert_int_equal (zv_store_count (txn, ZV_TABLE_IMAGES), (size_t) stored);
    zv_txn_abort (&txn);
    //  A larger map lets writing resume.
    s_reopen (self, 8);
    s_seed (self, UUID2, "building", "scheduling");
}

int
main (void)
{
    zv_log_level = -1;                  //  expected failures need not be shown
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_table_names),
        cmocka_unit_test_setup_teardown (test_records, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reopen_persists, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_schema_newer_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_nested_txn, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_instance_cas, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_instance_action, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_action_finish_newest_open, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_map_full, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
