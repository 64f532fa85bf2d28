/*  test_placement.c: placement on the store: inventories, claims against
    capacity (total - reserved) x allocation_ratio, min/max/step units,
    releases, admin overrides, flavor resources, and that claims up to the
    capacity succeed exactly K times and never over-commit.                */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store/zv_placement.h"

typedef struct {
    char dir [64];
    zv_store_t *store;
    zv_txn_t *txn;
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *fx = calloc (1, sizeof (s_fixture_t));
    strcpy (fx->dir, "/tmp/zova-test-placement.XXXXXX");
    assert_non_null (mkdtemp (fx->dir));
    char errbuf [256];
    fx->store = zv_store_open (fx->dir, 64, errbuf, sizeof errbuf);
    assert_non_null (fx->store);
    fx->txn = zv_txn_begin (fx->store, NULL, true);
    json_t *inventories = json_pack (
        "{s:{s:i, s:i, s:i, s:i, s:i, s:f}, s:{s:i, s:i, s:i, s:i, s:i, s:f}, s:{s:i, s:i, s:i, s:i, s:i, s:f}}",
        "VCPU", "total", 4, "reserved", 0, "min_unit", 1, "max_unit", 4, "step_size", 1, "allocation_ratio", 4.0,
        "MEMORY_MB", "total", 2048, "reserved", 512, "min_unit", 1, "max_unit", 2048, "step_size", 1,
        "allocation_ratio", 1.0,
        "DISK_GB", "total", 100, "reserved", 0, "min_unit", 1, "max_unit", 100, "step_size", 10,
        "allocation_ratio", 1.0);
    bool changed = false;
    assert_int_equal (zv_placement_report (fx->txn, "h1", inventories, &changed, errbuf, sizeof errbuf), ZV_OK);
    assert_true (changed);
    assert_int_equal (zv_placement_report (fx->txn, "h1", inventories, &changed, errbuf, sizeof errbuf), ZV_OK);
    assert_false (changed);
    json_decref (inventories);
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

static json_t *
s_res (int vcpu, int memory, int disk)
{
    return json_pack ("{s:i, s:i, s:i}", "VCPU", vcpu, "MEMORY_MB", memory, "DISK_GB", disk);
}

static json_int_t
s_used (zv_txn_t *txn, const char *class_name)
{
    json_t *provider = NULL;
    assert_int_equal (zv_store_get (txn, ZV_TABLE_NODES, "h1", &provider), ZV_OK);
    json_int_t used = json_integer_value (json_object_get (json_object_get (provider, "usages"), class_name));
    json_decref (provider);
    return used;
}

static void
test_claim_and_release (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    char errbuf [256];
    json_t *res = s_res (2, 512, 10);
    assert_int_equal (zv_placement_claim (fx->txn, "c1", "p", "h1", res, errbuf, sizeof errbuf), ZV_OK);
    assert_int_equal (s_used (fx->txn, "MEMORY_MB"), 512);
    assert_int_equal (zv_placement_claim (fx->txn, "c1", "p", "h1", res, errbuf, sizeof errbuf), ZV_EEXIST);
    json_t *of = zv_placement_allocations_of (fx->txn, "h1");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (of, "c1"), "VCPU")), 2);
    json_decref (of);
    assert_int_equal (zv_placement_release (fx->txn, "c1"), ZV_OK);
    assert_int_equal (s_used (fx->txn, "MEMORY_MB"), 0);
    assert_int_equal (s_used (fx->txn, "VCPU"), 0);
    assert_int_equal (zv_placement_release (fx->txn, "c1"), ZV_OK);     //  twice is harmless
    json_decref (res);
}

static void
test_capacity_reserved_ratio (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    char errbuf [256];
    //  Memory: (2048 - 512) x 1.0 = 1536 exactly fits; one more MB does not.
    json_t *res = s_res (1, 1536, 0);
    assert_int_equal (zv_placement_claim (fx->txn, "a", "p", "h1", res, errbuf, sizeof errbuf), ZV_OK);
    json_decref (res);
    res = s_res (1, 1, 0);
    assert_int_equal (zv_placement_claim (fx->txn, "b", "p", "h1", res, errbuf, sizeof errbuf), ZV_ECONFLICT);
    assert_non_null (strstr (errbuf, "Insufficient inventory of MEMORY_MB on host h1"));
    //  Nothing of the refused claim was recorded.
    assert_int_equal (s_used (fx->txn, "VCPU"), 1);
    json_t *none = NULL;
    assert_int_equal (zv_store_get (fx->txn, ZV_TABLE_ALLOCATIONS, "b", &none), ZV_ENOTFOUND);
    json_decref (res);
    //  VCPU: 4 x 4.0 = 16.
    assert_int_equal (zv_placement_release (fx->txn, "a"), ZV_OK);
    int fits = 0;
    for (int index = 0; index < 40; index++) {
        char consumer [16];
        snprintf (consumer, sizeof consumer, "v%d", index);
        res = s_res (1, 1, 0);
        fits += zv_placement_claim (fx->txn, consumer, "p", "h1", res, errbuf, sizeof errbuf) == ZV_OK;
        json_decref (res);
    }
    assert_int_equal (fits, 16);
    assert_int_equal (s_used (fx->txn, "VCPU"), 16);
}

static void
test_units (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    char errbuf [256];
    json_t *res = s_res (1, 1, 15);                 //  DISK_GB step_size is 10
    assert_int_equal (zv_placement_claim (fx->txn, "s", "p", "h1", res, errbuf, sizeof errbuf), ZV_ECONFLICT);
    assert_non_null (strstr (errbuf, "step_size 10"));
    json_decref (res);
    res = s_res (5, 1, 0);                          //  VCPU max_unit is 4
    assert_int_equal (zv_placement_claim (fx->txn, "m", "p", "h1", res, errbuf, sizeof errbuf), ZV_ECONFLICT);
    json_decref (res);
    res = json_pack ("{s:i}", "CUSTOM_GPU", 1);     //  a class the host does not have
    assert_int_equal (zv_placement_claim (fx->txn, "g", "p", "h1", res, errbuf, sizeof errbuf), ZV_ECONFLICT);
    assert_non_null (strstr (errbuf, "no inventory of CUSTOM_GPU"));
    json_decref (res);
    res = s_res (1, 1, 0);
    assert_int_equal (zv_placement_claim (fx->txn, "x", "p", "nohost", res, errbuf, sizeof errbuf), ZV_ENOTFOUND);
    json_decref (res);
}

static void
test_override (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    char errbuf [256];
    json_t *res = s_res (1, 1000, 0);
    assert_int_equal (zv_placement_claim (fx->txn, "o", "p", "h1", res, errbuf, sizeof errbuf), ZV_OK);
    json_decref (res);
    //  Raising reserved so that usage would not fit is refused.
    json_t *change = json_pack ("{s:i}", "reserved", 1500);
    assert_int_equal (zv_placement_override (fx->txn, "h1", "MEMORY_MB", change, errbuf, sizeof errbuf),
                      ZV_ECONFLICT);
    json_decref (change);
    //  A larger ratio raises capacity, and survives the host's next report.
    change = json_pack ("{s:f}", "allocation_ratio", 2.0);
    assert_int_equal (zv_placement_override (fx->txn, "h1", "MEMORY_MB", change, errbuf, sizeof errbuf), ZV_OK);
    json_decref (change);
    json_t *provider = NULL;
    assert_int_equal (zv_store_get (fx->txn, ZV_TABLE_NODES, "h1", &provider), ZV_OK);
    assert_true (zv_placement_capacity (provider, "MEMORY_MB") == 3072.0);
    json_t *reported = json_deep_copy (json_object_get (provider, "inventories"));
    json_object_set_new (json_object_get (reported, "VCPU"), "total", json_integer (8));
    assert_int_equal (zv_placement_report (fx->txn, "h1", reported, NULL, errbuf, sizeof errbuf), ZV_OK);
    json_decref (reported);
    json_decref (provider);
    assert_int_equal (zv_store_get (fx->txn, ZV_TABLE_NODES, "h1", &provider), ZV_OK);
    assert_true (zv_placement_capacity (provider, "MEMORY_MB") == 3072.0);
    assert_true (zv_placement_capacity (provider, "VCPU") == 32.0);
    provider = zv_placement_view (provider);
    assert_int_equal (json_integer_value (json_object_get (provider, "memory_mb_used")), 1000);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (json_object_get (provider,
                      "inventories"), "MEMORY_MB"), "capacity")), 3072);
    json_decref (provider);
    //  Bad values and unknown classes.
    change = json_pack ("{s:f}", "allocation_ratio", 0.0);
    assert_int_equal (zv_placement_override (fx->txn, "h1", "VCPU", change, errbuf, sizeof errbuf), ZV_EINVAL);
    assert_int_equal (zv_placement_override (fx->txn, "h1", "CUSTOM_X", change, errbuf, sizeof errbuf), ZV_ENOTFOUND);
    assert_int_equal (zv_placement_override (fx->txn, "h9", "VCPU", change, errbuf, sizeof errbuf), ZV_ENOTFOUND);
    json_decref (change);
}

static void
test_bad_inventory (void **state)
{
    s_fixture_t *fx = (s_fixture_t *) *state;
    char errbuf [256];
    json_t *bad = json_pack ("{s:{s:i}}", "bogus", "total", 1);
    assert_int_equal (zv_placement_report (fx->txn, "h2", bad, NULL, errbuf, sizeof errbuf), ZV_EINVAL);
    json_decref (bad);
    bad = json_pack ("{s:{s:i, s:i}}", "VCPU", "total", 4, "min_unit", 0);
    assert_int_equal (zv_placement_report (fx->txn, "h2", bad, NULL, errbuf, sizeof errbuf), ZV_EINVAL);
    json_decref (bad);
    json_t *none = NULL;
    assert_int_equal (zv_store_get (fx->txn, ZV_TABLE_NODES, "h2", &none), ZV_ENOTFOUND);
}

static void
test_flavor_resources (void **state)
{
    (void) state;
    json_t *flavor = json_pack ("{s:i, s:i, s:i, s:i, s:i, s:{s:s, s:s, s:s}}", "vcpus", 2, "ram_mb", 512,
                                "disk_gb", 10, "ephemeral_gb", 5, "swap_mb", 1500, "extra_specs",
                                "resources:CUSTOM_GPU", "1", "resources:VCPU", "3", "hw:cpu_policy", "dedicated");
    json_t *res = zv_placement_flavor_resources (flavor);
    assert_int_equal (json_integer_value (json_object_get (res, "VCPU")), 3);
    assert_int_equal (json_integer_value (json_object_get (res, "MEMORY_MB")), 512);
    assert_int_equal (json_integer_value (json_object_get (res, "DISK_GB")), 17);
    assert_int_equal (json_integer_value (json_object_get (res, "CUSTOM_GPU")), 1);
    assert_null (json_object_get (res, "hw:cpu_policy"));
    json_decref (res);
    json_decref (flavor);
}

int
main (void)
{
    zv_log_level = -1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_claim_and_release, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_capacity_reserved_ratio, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_units, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_override, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_inventory, s_setup, s_teardown),
        cmocka_unit_test (test_flavor_resources),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
