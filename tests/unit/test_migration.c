/*  test_migration.c: migration records and their open index on a real
    store (a fresh LMDB in a temporary directory per test): one open move
    per instance, phase compare-and-swap, closing statuses, listings, and
    the open index that compute_sync reads; and the store's schema upgrade
    (1 -> 2) that brings instance records an older zova wrote within the
    bounds every listing needs.                                              */

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <ftw.h>
#include <unistd.h>
#include <cmocka.h>
#include <lmdb.h>
#include "store/zv_migration.h"
#include "store/zv_instance.h"
#include "proto/zv_pack.h"

#define UUID  "4f1c2a0e-8d3b-4c55-9a6e-0b7d2f1e9c31"
#define UUID2 "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"

typedef struct {
    char dir [64];
    char path [128];
    zv_store_t *store;
} fixture_t;

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static json_t *
s_instance (const char *uuid, const char *host)
{
    json_t *flavor = json_pack ("{s:s, s:s, s:i, s:i, s:i}", "id", "f1", "name", "m1.tiny",
                                "vcpus", 1, "ram_mb", 128, "disk_gb", 1);
    json_t *image = json_pack ("{s:s, s:s}", "id", "i1", "name", "cirros");
    zv_instance_init_t init = { .uuid = uuid, .name = "web", .flavor = flavor, .image = image,
                                .now_ms = zv_now_ms () };
    json_t *rec = zv_instance_new (&init);
    json_object_set_new (rec, "host", json_string (host));
    json_object_set_new (rec, "vm_state", json_string ("active"));
    json_object_set_new (rec, "task_state", json_null ());
    json_decref (flavor);
    json_decref (image);
    return rec;
}

static int
s_setup (void **state)
{
    fixture_t *self = calloc (1, sizeof *self);
    assert_non_null (self);
    snprintf (self->dir, sizeof self->dir, "/tmp/zv_test_migration.XXXXXX");
    assert_non_null (mkdtemp (self->dir));
    snprintf (self->path, sizeof self->path, "%s/store", self->dir);
    char err [256] = "";
    self->store = zv_store_open (self->path, 16, err, sizeof err);
    if (!self->store)
        fail_msg ("open: %s", err);
    zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
    json_t *one = s_instance (UUID, "node1"), *two = s_instance (UUID2, "node2");
    assert_int_equal (zv_store_put (txn, ZV_TABLE_INSTANCES, UUID, one), ZV_OK);
    assert_int_equal (zv_store_put (txn, ZV_TABLE_INSTANCES, UUID2, two), ZV_OK);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);
    json_decref (one);
    json_decref (two);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    zv_store_destroy (&self->store);
    nftw (self->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free (self);
    return 0;
}

static zv_status_t
s_create (zv_txn_t *txn, const char *uuid, const char *source, const char *dest, json_t **rec_p,
          char *err, size_t len)
{
    json_t *flavor = json_pack ("{s:s, s:s}", "id", "f1", "name", "m1.tiny");
    zv_migration_init_t init = {
        .instance_uuid = uuid, .kind = ZV_MIGRATION_COLD, .source_host = source, .dest_host = dest,
        .old_flavor = flavor, .status = "pre-migrating", .phase = "prepare",
        .request_id = "req-1", .project_id = "p1", .user_id = "u1",
    };
    zv_status_t status = zv_migration_create (txn, &init, rec_p, err, len);
    json_decref (flavor);
    return status;
}

static void
test_create_and_index (void **state)
{
    fixture_t *self = *state;
    char err [256] = "";
    zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
    json_t *rec = NULL;
    assert_int_equal (s_create (txn, UUID, "node1", "node2", &rec, err, sizeof err), ZV_OK);
    assert_int_equal (json_integer_value (json_object_get (rec, "id")), 1);
    assert_string_equal (json_string_value (json_object_get (rec, "kind")), "migration");
    assert_string_equal (json_string_value (json_object_get (rec, "status")), "pre-migrating");
    assert_true (zv_uuid_valid (json_string_value (json_object_get (rec, "uuid"))));
    //  The new flavor of a migration is its old one.
    assert_string_equal (json_string_value (json_object_get (json_object_get (rec, "new_flavor"), "name")),
                         "m1.tiny");
    //  One open move per instance.
    json_t *again = NULL;
    assert_int_equal (s_create (txn, UUID, "node1", "node3", &again, err, sizeof err), ZV_ECONFLICT);
    assert_true (strstr (err, "already being moved") != NULL);
    assert_null (again);
    //  No instance, no migration.
    assert_int_equal (s_create (txn, "11111111-2222-4333-8444-555555555555", "a", "b", NULL, err,
                                sizeof err), ZV_ENOTFOUND);
    //  The instance knows its open move; the index names both hosts.
    json_t *instance = NULL;
    assert_int_equal (zv_store_get (txn, ZV_TABLE_INSTANCES, UUID, &instance), ZV_OK);
    assert_int_equal (json_integer_value (json_object_get (instance, "migration_id")), 1);
    json_decref (instance);
    json_t *on_dest = zv_migration_open_on_host (txn, "node2");
    assert_int_equal (json_object_size (on_dest), 1);
    assert_string_equal (json_string_value (json_object_get (json_object_get (on_dest, UUID), "source_host")),
                         "node1");
    json_decref (on_dest);
    json_t *on_source = zv_migration_open_on_host (txn, "node1");
    assert_int_equal (json_object_size (on_source), 1);
    json_decref (on_source);
    json_t *elsewhere = zv_migration_open_on_host (txn, "node3");
    assert_int_equal (json_object_size (elsewhere), 0);
    json_decref (elsewhere);
    json_t *open = NULL;
    assert_int_equal (zv_migration_open_of (txn, UUID, &open), ZV_OK);
    assert_int_equal (json_integer_value (json_object_get (open, "id")), 1);
    json_decref (open);
    assert_int_equal (zv_migration_open_of (txn, UUID2, &open), ZV_ENOTFOUND);
    //  By id and by uuid.
    json_t *got = NULL;
    assert_int_equal (zv_migration_get (txn, "1", &got), ZV_OK);
    json_decref (got);
    assert_int_equal (zv_migration_get (txn, json_string_value (json_object_get (rec, "uuid")), &got), ZV_OK);
    json_decref (got);
    assert_int_equal (zv_migration_get (txn, "2", &got), ZV_ENOTFOUND);
    assert_int_equal (zv_migration_get (txn, "", &got), ZV_ENOTFOUND);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);
    json_decref (rec);
}

static void
test_phases_and_close (void **state)
{
    fixture_t *self = *state;
    char err [256] = "";
    zv_txn_t *txn = zv_txn_begin (self->store, NULL, true);
    assert_int_equal (s_create (txn, UUID, "node1", "node2", NULL, err, sizeof err), ZV_OK);
    //  A phase change is a compare-and-swap on the phase.
    json_t *next = json_pack ("{s:s, s:s}", "phase", "transfer", "status", "migrating");
    json_t *rec = NULL;
    assert_int_equal (zv_migration_cas (txn, "1", "prepare", next, &rec, err, sizeof err), ZV_OK);
    assert_string_equal (json_string_value (json_object_get (rec, "phase")), "transfer");
    json_decref (rec);
    assert_int_equal (zv_migration_cas (txn, "1", "prepare", next, NULL, err, sizeof err), ZV_ECONFLICT);
    assert_string_equal (err, "Conflict updating migration 1. Expected phase prepare, actual transfer.");
    json_decref (next);
    //  The index follows the phase.
    json_t *open = zv_migration_open_all (txn);
    assert_int_equal (json_array_size (open), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (open, 0), "phase")), "transfer");
    json_decref (open);
    //  Not a status of Nova's: refused, nothing changed.
    json_t *bogus = json_pack ("{s:s}", "status", "sideways");
    assert_int_equal (zv_migration_cas (txn, "1", NULL, bogus, NULL, err, sizeof err), ZV_EINVAL);
    json_decref (bogus);
    //  A closing status ends the move: the index entry and the instance's
    //  migration_id go; a second move may open.
    json_t *close = json_pack ("{s:s, s:s}", "status", "confirmed", "phase", "done");
    assert_int_equal (zv_migration_cas (txn, "1", "transfer", close, NULL, err, sizeof err), ZV_OK);
    json_decref (close);
    open = zv_migration_open_all (txn);
    assert_int_equal (json_array_size (open), 0);
    json_decref (open);
    json_t *instance = NULL;
    assert_int_equal (zv_store_get (txn, ZV_TABLE_INSTANCES, UUID, &instance), ZV_OK);
    assert_null (json_object_get (instance, "migration_id"));
    json_decref (instance);
    json_t *late = json_pack ("{s:s}", "status", "error");
    assert_int_equal (zv_migration_cas (txn, "1", NULL, late, NULL, err, sizeof err), ZV_ECONFLICT);
    json_decref (late);
    assert_int_equal (s_create (txn, UUID, "node2", "node3", NULL, err, sizeof err), ZV_OK);
    assert_int_equal (s_create (txn, UUID2, "node2", "node1", NULL, err, sizeof err), ZV_OK);
    //  Listings: newest first, by instance, host and status.
    json_t *all = zv_migration_list (txn, NULL, NULL, NULL);
    assert_int_equal (json_array_size (all), 3);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (all, 0), "id")), 3);
    json_decref (all);
    json_t *mine = zv_migration_list (txn, UUID, NULL, NULL);
    assert_int_equal (json_array_size (mine), 2);
    json_decref (mine);
    json_t *node3 = zv_migration_list (txn, NULL, "node3", NULL);
    assert_int_equal (json_array_size (node3), 1);
    json_decref (node3);
    json_t *confirmed = zv_migration_list (txn, NULL, NULL, "confirmed");
    assert_int_equal (json_array_size (confirmed), 1);
    json_decref (confirmed);
    assert_int_equal (zv_txn_commit (&txn), ZV_OK);
    //  Names and statuses.
    assert_string_equal (zv_migration_kind_name (ZV_MIGRATION_EVACUATION), "evacuation");
    assert_int_equal (zv_migration_kind_from_name ("live-migration"), ZV_MIGRATION_LIVE);
    assert_int_equal (zv_migration_kind_from_name ("teleport"), -1);
    assert_true (zv_migration_status_closed ("reverted"));
    assert_false (zv_migration_status_closed ("finished"));
    assert_false (zv_migration_status_valid ("sideways"));
}

//  An instance record an older zova wrote (schema 1, nested metadata) is
//  upgraded when the store opens, so that it can be listed again.
static void
test_schema_upgrade (void **state)
{
    fixture_t *self = *state;
    zv_store_destroy (&self->store);
    //  Write the old record and the old schema version behind the store's back.
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta, instances;
    assert_int_equal (mdb_env_create (&env), 0);
    assert_int_equal (mdb_env_set_maxdbs (env, 32), 0);
    assert_int_equal (mdb_env_open (env, self->path, MDB_NOTLS, 0600), 0);
    assert_int_equal (mdb_txn_begin (env, NULL, 0, &txn), 0);
    assert_int_equal (mdb_dbi_open (txn, "meta", 0, &meta), 0);
    assert_int_equal (mdb_dbi_open (txn, "instances", 0, &instances), 0);
    json_t *deep = json_string ("x");
    for (int level = 0; level < 13; level++)
        deep = json_pack ("{s:o}", "d", deep);
    json_t *old = s_instance (UUID, "node1");
    json_object_set_new (old, "_rv", json_integer (1));
    json_object_set_new (old, "metadata", json_pack ("{s:s, s:o}", "keep", "me", "deep", deep));
    json_t *version = json_pack ("{s:i, s:i}", "version", 1, "_rv", 1);
    char *data = NULL;
    size_t size = 0;
    assert_int_equal (zv_pack_encode (old, &data, &size), ZV_OK);
    MDB_val key = { strlen (UUID), (void *) UUID }, value = { size, data };
    assert_int_equal (mdb_put (txn, instances, &key, &value, 0), 0);
    free (data);
    assert_int_equal (zv_pack_encode (version, &data, &size), ZV_OK);
    MDB_val vkey = { strlen ("schema_version"), (void *) "schema_version" }, vvalue = { size, data };
    assert_int_equal (mdb_put (txn, meta, &vkey, &vvalue, 0), 0);
    free (data);
    assert_int_equal (mdb_txn_commit (txn), 0);
    mdb_env_close (env);
    json_decref (old);
    json_decref (version);

    char err [256] = "";
    self->store = zv_store_open (self->path, 16, err, sizeof err);
    if (!self->store)
        fail_msg ("reopen: %s", err);
    zv_txn_t *read = zv_txn_begin (self->store, NULL, false);
    json_t *rec = NULL;
    assert_int_equal (zv_store_get (read, ZV_TABLE_INSTANCES, UUID, &rec), ZV_OK);
    json_t *metadata = json_object_get (rec, "metadata");
    assert_int_equal (json_object_size (metadata), 1);
    assert_string_equal (json_string_value (json_object_get (metadata, "keep")), "me");
    assert_int_equal (json_integer_value (json_object_get (rec, "_rv")), ZV_INSTANCE_VERSION);
    json_t *schema = NULL;
    assert_int_equal (zv_store_get (read, ZV_TABLE_META, "schema_version", &schema), ZV_OK);
    assert_int_equal (json_integer_value (json_object_get (schema, "version")), ZV_STORE_SCHEMA_VERSION);
    json_decref (schema);
    json_decref (rec);
    zv_txn_abort (&read);
    //  And a record that breaks the bounds cannot be written at all.
    zv_txn_t *write = zv_txn_begin (self->store, NULL, true);
    json_t *bad = s_instance (UUID2, "node1");
    json_object_set_new (bad, "metadata", json_pack ("{s:{s:s}}", "a", "b", "c"));
    assert_int_equal (zv_store_put (write, ZV_TABLE_INSTANCES, UUID2, bad), ZV_EINVAL);
    json_decref (bad);
    zv_txn_abort (&write);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_create_and_index, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_phases_and_close, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_schema_upgrade, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
