/*  test_aggregate.c: aggregates and zones: names, hosts, metadata, the
    one-zone-per-host rule on every path, delete only when empty, and the
    zone of a host; server groups: policies, rules, members and the late
    check of affinity and anti-affinity against committed hosts.          */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store/zv_aggregate.h"
#include "store/zv_group.h"

typedef struct {
    char dir [64];
    zv_store_t *store;
    zv_txn_t *txn;
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *fx = calloc (1, sizeof (s_fixture_t));
    strcpy (fx->dir, "/tmp/zova-test-aggregate.XXXXXX");
    assert_non_null (mkdtemp (fx->dir));
    char errbuf [256];
    fx->store = zv_store_open (fx->dir, 64, errbuf, sizeof errbuf);
    assert_non_null (fx->store);
    fx->txn = zv_txn_begin (fx->store, NULL, true);
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_txn_abort (&fx->txn);
    zv_store_destroy (&fx->store);
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s", fx->dir);
    assert_int_equal (system (command), 0);
    free (fx);
    return 0;
}

static void
test_aggregates_and_zones (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_txn_t *txn = fx->txn;
    char errbuf [512], zone [64];
    json_t *rec = NULL;
    assert_int_equal (zv_aggregate_create (txn, "fast", "az1", &rec, errbuf, sizeof errbuf), ZV_OK);
    assert_string_equal (json_string_value (json_object_get (rec, "id")), "1");
    json_decref (rec);
    assert_int_equal (zv_aggregate_create (txn, "fast", NULL, NULL, errbuf, sizeof errbuf), ZV_EEXIST);
    assert_int_equal (zv_aggregate_create (txn, "ssd", NULL, NULL, errbuf, sizeof errbuf), ZV_OK);
    assert_int_equal (zv_aggregate_create (txn, "slow", "az2", NULL, errbuf, sizeof errbuf), ZV_OK);

    assert_int_equal (zv_aggregate_add_host (txn, "fast", "h1", NULL, errbuf, sizeof errbuf), ZV_OK);
    assert_int_equal (zv_aggregate_add_host (txn, "fast", "h1", NULL, errbuf, sizeof errbuf), ZV_EEXIST);
    //  Many aggregates, one zone: ssd has no zone, so h1 may join it ...
    assert_int_equal (zv_aggregate_add_host (txn, "ssd", "h1", NULL, errbuf, sizeof errbuf), ZV_OK);
    //  ... but not slow (az2), and nothing changed.
    assert_int_equal (zv_aggregate_add_host (txn, "slow", "h1", NULL, errbuf, sizeof errbuf), ZV_ECONFLICT);
    assert_non_null (strstr (errbuf, "already in availability zone(s) ['az1']"));
    assert_string_equal (zv_aggregate_host_zone (txn, "h1", "nova", zone, sizeof zone), "az1");
    assert_string_equal (zv_aggregate_host_zone (txn, "h9", "nova", zone, sizeof zone), "nova");
    //  Giving ssd a zone other than h1's is refused too; the same zone is fine.
    assert_int_equal (zv_aggregate_set (txn, "ssd", NULL, "az2", NULL, errbuf, sizeof errbuf), ZV_ECONFLICT);
    json_t *meta = json_pack ("{s:s}", "ssd", "true");
    assert_int_equal (zv_aggregate_set (txn, "ssd", meta, "az1", &rec, errbuf, sizeof errbuf), ZV_OK);
    assert_string_equal (json_string_value (json_object_get (json_object_get (rec, "metadata"), "ssd")), "true");
    json_decref (rec);
    json_decref (meta);
    //  The zone as metadata, as Nova's API allows; null unsets a key.
    meta = json_pack ("{s:n}", "ssd");
    assert_int_equal (zv_aggregate_set (txn, "2", meta, NULL, &rec, errbuf, sizeof errbuf), ZV_OK);
    assert_null (json_object_get (json_object_get (rec, "metadata"), "ssd"));
    json_decref (rec);
    json_decref (meta);
    meta = json_pack ("{s:i}", "bad", 1);
    assert_int_equal (zv_aggregate_set (txn, "ssd", meta, NULL, NULL, errbuf, sizeof errbuf), ZV_EINVAL);
    json_decref (meta);

    json_t *mine = zv_aggregate_of_host (txn, "h1");
    assert_int_equal (json_array_size (mine), 2);
    json_decref (mine);
    json_t *by_host = zv_aggregate_by_host (txn);
    assert_int_equal (json_array_size (json_object_get (by_host, "h1")), 2);
    json_decref (by_host);

    //  Delete only when empty.
    assert_int_equal (zv_aggregate_delete (txn, "fast", errbuf, sizeof errbuf), ZV_ECONFLICT);
    assert_int_equal (zv_aggregate_remove_host (txn, "fast", "h1", NULL, errbuf, sizeof errbuf), ZV_OK);
    assert_int_equal (zv_aggregate_remove_host (txn, "fast", "h1", NULL, errbuf, sizeof errbuf), ZV_ENOTFOUND);
    assert_int_equal (zv_aggregate_delete (txn, "fast", errbuf, sizeof errbuf), ZV_OK);
    assert_int_equal (zv_aggregate_find (txn, "fast", &rec, errbuf, sizeof errbuf), ZV_ENOTFOUND);
    //  Now h1 is in az1 only through ssd.
    assert_string_equal (zv_aggregate_host_zone (txn, "h1", "nova", zone, sizeof zone), "az1");
    json_t *all = zv_aggregate_list (txn);
    assert_int_equal (json_array_size (all), 2);
    json_decref (all);
}

static void
s_instance (zv_txn_t *txn, const char *uuid, const char *host)
{
    json_t *rec = json_pack ("{s:s, s:s, s:b}", "uuid", uuid, "host", host, "deleted", 0);
    assert_int_equal (zv_store_put (txn, ZV_TABLE_INSTANCES, uuid, rec), ZV_OK);
    json_decref (rec);
}

static void
test_server_groups (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    zv_txn_t *txn = fx->txn;
    char errbuf [512];
    json_t *rules = json_pack ("{s:i}", "max_server_per_host", 2);
    assert_int_equal (zv_group_create (txn, "g", "affinity", rules, "p", NULL, errbuf, sizeof errbuf), ZV_EINVAL);
    assert_int_equal (zv_group_create (txn, "g", "bogus", NULL, "p", NULL, errbuf, sizeof errbuf), ZV_EINVAL);
    json_t *anti = NULL, *aff = NULL;
    assert_int_equal (zv_group_create (txn, "spread", "anti-affinity", rules, "p", &anti, errbuf, sizeof errbuf), ZV_OK);
    assert_int_equal (zv_group_create (txn, "pack", "affinity", NULL, "p", &aff, errbuf, sizeof errbuf), ZV_OK);
    json_decref (rules);
    const char *anti_id = json_string_value (json_object_get (anti, "id"));
    const char *aff_id = json_string_value (json_object_get (aff, "id"));

    //  Anti-affinity with max 2 per host.
    s_instance (txn, "a1", "h1");
    s_instance (txn, "a2", "h1");
    assert_int_equal (zv_group_add_member (txn, anti_id, "a1"), ZV_OK);
    assert_int_equal (zv_group_add_member (txn, anti_id, "a2"), ZV_OK);
    assert_int_equal (zv_group_add_member (txn, anti_id, "a3"), ZV_OK);
    json_t *group = NULL;
    assert_int_equal (zv_group_find (txn, "spread", "p", &group, errbuf, sizeof errbuf), ZV_OK);
    assert_int_equal (zv_group_check (txn, group, "a3", "h1", errbuf, sizeof errbuf), ZV_ECONFLICT);
    assert_non_null (strstr (errbuf, "Anti-affinity instance group policy was violated"));
    assert_int_equal (zv_group_check (txn, group, "a3", "h2", errbuf, sizeof errbuf), ZV_OK);
    json_t *hosts = zv_group_hosts (txn, group, NULL);
    assert_int_equal (json_integer_value (json_object_get (hosts, "h1")), 2);
    json_decref (hosts);
    json_decref (group);

    //  Affinity: once a member has a host, the others follow it.
    assert_int_equal (zv_group_add_member (txn, aff_id, "b1"), ZV_OK);
    assert_int_equal (zv_group_add_member (txn, aff_id, "b2"), ZV_OK);
    assert_int_equal (zv_group_find (txn, aff_id, NULL, &group, errbuf, sizeof errbuf), ZV_OK);
    assert_int_equal (zv_group_check (txn, group, "b1", "h5", errbuf, sizeof errbuf), ZV_OK);
    s_instance (txn, "b1", "h5");
    assert_int_equal (zv_group_check (txn, group, "b2", "h6", errbuf, sizeof errbuf), ZV_ECONFLICT);
    assert_int_equal (zv_group_check (txn, group, "b2", "h5", errbuf, sizeof errbuf), ZV_OK);
    json_decref (group);

    assert_int_equal (zv_group_remove_member (txn, aff_id, "b2"), ZV_OK);
    assert_int_equal (zv_group_remove_member (txn, aff_id, "b2"), ZV_OK);
    json_t *list = zv_group_list (txn, "p");
    assert_int_equal (json_array_size (list), 2);
    json_decref (list);
    list = zv_group_list (txn, "other");
    assert_int_equal (json_array_size (list), 0);
    json_decref (list);
    assert_int_equal (zv_group_delete (txn, "pack", "p", errbuf, sizeof errbuf), ZV_OK);
    assert_int_equal (zv_group_find (txn, "pack", "p", &group, errbuf, sizeof errbuf), ZV_ENOTFOUND);
    json_decref (anti);
    json_decref (aff);
}

int
main (void)
{
    zv_log_level = -1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_aggregates_and_zones, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_server_groups, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
