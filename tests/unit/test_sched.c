/*  test_sched.c: the scheduler's filters and weighers (zv_sched).

    Decisions are data-driven: each tests/data/sched/<case>.json holds the
    scheduler's settings (filters and max_attempts; optionally any weigher
    multiplier, host_subset_size, max_instances_per_host and the random
    seed, else Nova's defaults), the host states as the conductor's
    host_states returns them, the request spec, the instance count and the
    hosts to ignore; <case>.out holds the expected destinations, one line
    per instance (a compact json array: the choice, then its alternates), or
    the single line "no_valid_host".  Every *.json in the folder is a case
    (the .conf files beside them are config cases), so a new
    decision to pin is two files.  ZV_REGEN_GOLDEN=1 rewrites the .out files
    from what the scheduler decides; review the diff.  Run from the
    repository root.                                                         */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "zv_test.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zv_config.h"
#include "actors/scheduler/zv_sched.h"

#define S_GOLDEN_DIR "tests/data/sched"
#define S_ALL_FILTERS "ComputeFilter,CoreFilter,RamFilter,DiskFilter"

//  Helpers

//  The .out text of a decision: one compact array per instance, or
//  "no_valid_host".  Caller frees.
static char *
s_render (const json_t *destinations, zv_status_t status)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert_non_null (out);
    if (!destinations) {
        assert_int_equal (status, ZV_ENOVALIDHOST);
        fputs ("no_valid_host\n", out);
    }
    else {
        assert_int_equal (status, ZV_OK);
        size_t index;
        json_t *hosts;
        json_array_foreach (destinations, index, hosts) {
            char *line = json_dumps (hosts, JSON_COMPACT | JSON_ENCODE_ANY);
            fprintf (out, "%s\n", line);
            free (line);
        }
    }
    fclose (out);
    return text;
}

//  A host record with room to spare; tests change what they need.
static json_t *
s_host (const char *name, int memory_mb)
{
    return json_pack ("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i,"
                      " s:f, s:f, s:f, s:i, s:i}",
                      "host", name, "state", "up", "status", "enabled",
                      "vcpus", 8, "vcpus_used", 0,
                      "memory_mb", memory_mb, "memory_mb_used", 0,
                      "local_gb", 100, "local_gb_used", 0,
                      "cpu_allocation_ratio", 4.0, "ram_allocation_ratio", 1.0,
                      "disk_allocation_ratio", 1.0,
                      "reserved_host_memory_mb", 0, "reserved_host_disk_mb", 0);
}

static zv_sched_t *
s_sched_with (const zv_sched_options_t *options)
{
    char err [1200] = "";
    zv_sched_t *sched = zv_sched_new (options, err, sizeof err);
    if (!sched)
        fail_msg ("zv_sched_new (%s): %s", options->enabled_filters, err);
    return sched;
}

//  Nova's defaults but for the filters, the RAM multiplier and the attempts.
static zv_sched_t *
s_sched (const char *filters, double multiplier, int max_attempts)
{
    zv_sched_options_t options;
    zv_sched_options_defaults (&options);
    options.enabled_filters = filters;
    options.ram_weight_multiplier = multiplier;
    options.max_attempts = max_attempts;
    return s_sched_with (&options);
}

static double
s_opt_num (const json_t *doc, const char *key, double dflt)
{
    json_t *value = json_object_get (doc, key);
    return json_is_number (value) ? json_number_value (value) : dflt;
}

//  Run one golden case; true when it matched (or was regenerated).
static bool
s_run_case (const char *json_path, bool regen)
{
    json_error_t jerr;
    json_t *doc = json_load_file (json_path, 0, &jerr);
    if (!doc)
        fail_msg ("%s:%d: %s", json_path, jerr.line, jerr.text);
    const char *filters = json_string_value (json_object_get (doc, "filters"));
    json_t *attempts = json_object_get (doc, "max_attempts");
    json_t *spec = json_object_get (doc, "spec");
    json_t *count = json_object_get (doc, "num_instances");
    if (!filters || !json_is_integer (attempts)
    ||  !json_is_object (spec) || !json_is_integer (count)
    ||  !json_is_array (json_object_get (doc, "hosts")))
        fail_msg ("%s: needs filters, max_attempts, hosts, spec, num_instances", json_path);

    //  Every other setting is optional, Nova's default when absent.
    zv_sched_options_t options;
    zv_sched_options_defaults (&options);
    options.enabled_filters = filters;
    options.max_attempts = (int) json_integer_value (attempts);
    options.host_subset_size = (int) s_opt_num (doc, "host_subset_size", options.host_subset_size);
    options.max_instances_per_host = (int) s_opt_num (doc, "max_instances_per_host",
                                                      options.max_instances_per_host);
    options.ram_weight_multiplier = s_opt_num (doc, "ram_weight_multiplier", options.ram_weight_multiplier);
    options.cpu_weight_multiplier = s_opt_num (doc, "cpu_weight_multiplier", options.cpu_weight_multiplier);
    options.disk_weight_multiplier = s_opt_num (doc, "disk_weight_multiplier", options.disk_weight_multiplier);
    options.build_failure_weight_multiplier = s_opt_num (doc, "build_failure_weight_multiplier",
                                                         options.build_failure_weight_multiplier);
    options.soft_affinity_weight_multiplier = s_opt_num (doc, "soft_affinity_weight_multiplier",
                                                         options.soft_affinity_weight_multiplier);
    options.soft_anti_affinity_weight_multiplier = s_opt_num (doc, "soft_anti_affinity_weight_multiplier",
                                                              options.soft_anti_affinity_weight_multiplier);
    zv_sched_t *sched = s_sched_with (&options);
    zv_sched_set_seed (sched, (uint64_t) s_opt_num (doc, "seed", 1));
    json_t *hosts = json_incref (json_object_get (doc, "hosts"));
    size_t host_count = json_array_size (hosts);
    zv_sched_set_hosts (sched, &hosts);
    assert_null (hosts);
    assert_int_equal (zv_sched_host_count (sched), host_count);

    zv_status_t status = ZV_EINTERNAL;
    json_t *destinations = zv_sched_select (sched, spec, (int) json_integer_value (count),
                                            json_object_get (doc, "ignore_hosts"), &status);
    if (destinations)
        assert_int_equal (json_array_size (destinations), json_integer_value (count));
    char *actual = s_render (destinations, status);

    char out_path [1024];
    snprintf (out_path, sizeof out_path, "%.*s.out", (int) (strlen (json_path) - 5), json_path);
    bool matched = true;
    if (regen) {
        FILE *file = fopen (out_path, "w");
        assert_non_null (file);
        fputs (actual, file);
        fclose (file);
    }
    else {
        char *expected = zv_test_slurp (out_path);
        if (!expected)
            fail_msg ("%s is missing: write it, or regenerate with ZV_REGEN_GOLDEN=1", out_path);
        if (strcmp (expected, actual) != 0) {
            print_error ("%s: scheduler decided\n%swhere %s expects\n%s",
                         json_path, actual, out_path, expected);
            matched = false;
        }
        free (expected);
    }
    free (actual);
    json_decref (destinations);
    zv_sched_destroy (&sched);
    json_decref (doc);
    return matched;
}

//  Golden decisions

static void
test_sched_golden (void **state)
{
    (void) state;
    bool regen = getenv ("ZV_REGEN_GOLDEN") && *getenv ("ZV_REGEN_GOLDEN") == '1';
    glob_t found;
    assert_int_equal (glob (S_GOLDEN_DIR "/*.json", 0, NULL, &found), 0);
    //  Fewer means the cases were not found (wrong working directory?).
    assert_true (found.gl_pathc >= 12);
    size_t failed = 0;
    for (size_t index = 0; index < found.gl_pathc; index++)
        if (!s_run_case (found.gl_pathv [index], regen))
            failed++;
    size_t total = found.gl_pathc;
    globfree (&found);
    if (failed)
        fail_msg ("%zu of %zu scheduler golden cases differ", failed, total);
}

//  Construction and errors

static void
test_sched_new_destroy (void **state)
{
    (void) state;
    zv_sched_t *sched = s_sched (S_ALL_FILTERS, 1.0, 3);
    assert_int_equal (zv_sched_host_count (sched), 0);
    zv_sched_destroy (&sched);
    assert_null (sched);
    zv_sched_destroy (&sched);              //  second destroy is harmless
    zv_sched_destroy (NULL);

    //  Spaces around names are allowed, as a config file writes them.
    sched = s_sched (" ComputeFilter , RamFilter\t", 1.0, 3);
    zv_sched_destroy (&sched);
    //  NULL or empty: no filters at all.
    sched = s_sched (NULL, 1.0, 3);
    zv_sched_destroy (&sched);
    sched = s_sched ("", 1.0, 3);
    zv_sched_destroy (&sched);
}

#define S_KNOWN "ComputeFilter, PlacementFilter, CoreFilter, RamFilter, DiskFilter, " \
    "AvailabilityZoneFilter, AggregateInstanceExtraSpecsFilter, AggregateMultiTenancyIsolation, " \
    "ImagePropertiesFilter, ServerGroupAffinityFilter, ServerGroupAntiAffinityFilter, " \
    "SameHostFilter, DifferentHostFilter, NumInstancesFilter"

static void
test_sched_known_filters (void **state)
{
    (void) state;
    const char *known = zv_sched_known_filters ();
    assert_string_equal (known, S_KNOWN);
    //  Stable across calls (a static buffer, built once).
    assert_ptr_equal (zv_sched_known_filters (), known);
    assert_string_equal (zv_sched_known_filters (), S_KNOWN);
    //  Every known name is accepted, all at once too.
    zv_sched_t *sched = s_sched (S_KNOWN, 1.0, 3);
    zv_sched_destroy (&sched);
}

static void
test_sched_unknown_filter (void **state)
{
    (void) state;
    char err [1200] = "";
    zv_sched_options_t options;
    zv_sched_options_defaults (&options);
    options.enabled_filters = "ComputeFilter,AvailabilityZoneFilter,JsonFilter,RamFilter";
    zv_sched_t *sched = zv_sched_new (&options, err, sizeof err);
    assert_null (sched);
    assert_non_null (strstr (err, "unknown filter 'JsonFilter' in enabled_filters"));
    //  The message lists every name that would be accepted.
    assert_non_null (strstr (err, "(known: " S_KNOWN ")"));

    //  Names are case-sensitive, as in Nova.
    err [0] = '\0';
    options.enabled_filters = "computefilter";
    sched = zv_sched_new (&options, err, sizeof err);
    assert_null (sched);
    assert_non_null (strstr (err, "unknown filter 'computefilter'"));

    //  Nova's weigher names are not filters.
    options.enabled_filters = "RAMWeigher";
    assert_null (zv_sched_new (&options, err, sizeof err));

    //  A short buffer is truncated, never overrun.
    char tiny [8];
    memset (tiny, 'x', sizeof tiny);
    options.enabled_filters = "Bogus";
    sched = zv_sched_new (&options, tiny, sizeof tiny);
    assert_null (sched);
    assert_int_equal (strlen (tiny), sizeof tiny - 1);
}

//  The defaults are Nova's and zova.conf.sample's.
static void
test_sched_options_defaults (void **state)
{
    (void) state;
    zv_sched_options_t options;
    memset (&options, 0x5a, sizeof options);
    zv_sched_options_defaults (&options);
    assert_string_equal (options.enabled_filters,
                         "ComputeFilter,AvailabilityZoneFilter,PlacementFilter,ImagePropertiesFilter,"
                         "ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,"
                         "DifferentHostFilter");
    assert_int_equal (options.host_subset_size, 1);
    assert_int_equal (options.max_attempts, 3);
    assert_int_equal (options.max_instances_per_host, 50);
    assert_true (options.ram_weight_multiplier == 1.0);
    assert_true (options.cpu_weight_multiplier == 1.0);
    assert_true (options.disk_weight_multiplier == 1.0);
    assert_true (options.build_failure_weight_multiplier == 1000000.0);
    assert_true (options.soft_affinity_weight_multiplier == 1.0);
    assert_true (options.soft_anti_affinity_weight_multiplier == 1.0);
    zv_sched_t *sched = s_sched_with (&options);
    assert_string_equal (zv_sched_describe_weighers (sched),
                         "RAMWeigher=1, CPUWeigher=1, DiskWeigher=1, BuildFailureWeigher=1e+06, "
                         "ServerGroupSoftAffinityWeigher=1, ServerGroupSoftAntiAffinityWeigher=1");
    zv_sched_destroy (&sched);
}

//  Hosts and selection through the API (no golden file needed)

static void
test_sched_set_hosts_replaces (void **state)
{
    (void) state;
    zv_sched_t *sched = s_sched (S_ALL_FILTERS, 1.0, 3);
    json_t *hosts = json_pack ("[o, o, o]", s_host ("a", 4096), s_host ("b", 8192), s_host ("c", 2048));
    zv_sched_set_hosts (sched, &hosts);
    assert_null (hosts);
    assert_int_equal (zv_sched_host_count (sched), 3);

    //  A refresh replaces the view entirely: a gone host is never chosen.
    hosts = json_pack ("[o]", s_host ("d", 1024));
    zv_sched_set_hosts (sched, &hosts);
    assert_int_equal (zv_sched_host_count (sched), 1);
    json_t *spec = json_pack ("{s:i, s:i, s:i}", "vcpus", 1, "ram_mb", 512, "disk_gb", 1);
    zv_status_t status = ZV_EINTERNAL;
    json_t *destinations = zv_sched_select (sched, spec, 1, NULL, &status);
    assert_int_equal (status, ZV_OK);
    assert_non_null (destinations);
    assert_int_equal (json_array_size (destinations), 1);
    json_t *first = json_array_get (destinations, 0);
    assert_int_equal (json_array_size (first), 1);
    assert_string_equal (json_string_value (json_array_get (first, 0)), "d");
    json_decref (destinations);

    //  An empty refresh leaves nothing to choose.
    hosts = json_array ();
    zv_sched_set_hosts (sched, &hosts);
    assert_int_equal (zv_sched_host_count (sched), 0);
    status = ZV_OK;
    assert_null (zv_sched_select (sched, spec, 1, NULL, &status));
    assert_int_equal (status, ZV_ENOVALIDHOST);

    json_decref (spec);
    zv_sched_destroy (&sched);
}

//  A choice consumes its resources in the scheduler's local view (as Nova's
//  HostState.consume_from_request does) until the next refresh replaces it.
static void
test_sched_select_consumes_until_refresh (void **state)
{
    (void) state;
    zv_sched_t *sched = s_sched ("RamFilter", 1.0, 1);
    json_t *hosts = json_pack ("[o]", s_host ("only", 2048));
    zv_sched_set_hosts (sched, &hosts);
    json_t *spec = json_pack ("{s:i, s:i, s:i}", "vcpus", 1, "ram_mb", 2048, "disk_gb", 1);
    zv_status_t status;
    json_t *destinations = zv_sched_select (sched, spec, 1, NULL, &status);
    assert_int_equal (status, ZV_OK);
    json_decref (destinations);
    //  The same view is now full...
    assert_null (zv_sched_select (sched, spec, 1, NULL, &status));
    assert_int_equal (status, ZV_ENOVALIDHOST);
    //  ...until the conductor's states are loaded again.
    hosts = json_pack ("[o]", s_host ("only", 2048));
    zv_sched_set_hosts (sched, &hosts);
    destinations = zv_sched_select (sched, spec, 1, NULL, &status);
    assert_int_equal (status, ZV_OK);
    json_decref (destinations);
    json_decref (spec);
    zv_sched_destroy (&sched);
}

//  Naming a filter twice must not push a later filter out of the list: with
//  four ComputeFilters first, RamFilter must still keep a host that is too
//  small from being chosen.
static void
test_sched_duplicate_filter_names (void **state)
{
    (void) state;
    zv_sched_t *sched = s_sched ("ComputeFilter,ComputeFilter,ComputeFilter,ComputeFilter,RamFilter",
                                 1.0, 3);
    json_t *hosts = json_pack ("[o]", s_host ("small", 1024));
    zv_sched_set_hosts (sched, &hosts);
    json_t *spec = json_pack ("{s:i, s:i, s:i}", "vcpus", 1, "ram_mb", 2048, "disk_gb", 1);
    zv_status_t status = ZV_OK;
    json_t *destinations = zv_sched_select (sched, spec, 1, NULL, &status);
    char *placed = destinations ? json_dumps (destinations, JSON_COMPACT) : NULL;
    json_decref (destinations);
    json_decref (spec);
    zv_sched_destroy (&sched);
    if (placed) {
        print_error ("RamFilter was dropped: 2048 MB placed on a 1024 MB host: %s\n", placed);
        free (placed);
        fail ();
    }
    assert_int_equal (status, ZV_ENOVALIDHOST);
}

//  Ten thousand hosts: the decision completes and is right.  No timing is
//  asserted (sanitizers and valgrind are slow); bench/ measures speed.
static void
test_sched_ten_thousand_hosts (void **state)
{
    (void) state;
    const int count = 10000;
    zv_sched_t *sched = s_sched (S_ALL_FILTERS, 1.0, 3);
    json_t *hosts = json_array ();
    for (int index = 0; index < count; index++) {
        char name [32];
        snprintf (name, sizeof name, "node%05d", index);
        //  Free RAM rises with the index but for a few, so the best three are
        //  known: node09999, node09998, node09997.
        json_t *host = s_host (name, 4096 + index);
        if (index % 97 == 0)
            json_object_set_new (host, "state", json_string ("down"));
        json_array_append_new (hosts, host);
    }
    zv_sched_set_hosts (sched, &hosts);
    assert_int_equal (zv_sched_host_count (sched), (size_t) count);
    json_t *spec = json_pack ("{s:i, s:i, s:i}", "vcpus", 1, "ram_mb", 1024, "disk_gb", 1);
    json_t *ignore = json_pack ("[s]", "node09998");
    zv_status_t status;
    json_t *destinations = zv_sched_select (sched, spec, 10, ignore, &status);
    assert_int_equal (status, ZV_OK);
    assert_int_equal (json_array_size (destinations), 10);
    json_t *first = json_array_get (destinations, 0);
    assert_int_equal (json_array_size (first), 3);
    assert_string_equal (json_string_value (json_array_get (first, 0)), "node09999");
    assert_string_equal (json_string_value (json_array_get (first, 1)), "node09997");
    assert_string_equal (json_string_value (json_array_get (first, 2)), "node09996");
    size_t index;
    json_t *choice;
    json_array_foreach (destinations, index, choice) {
        assert_int_equal (json_array_size (choice), 3);
        assert_string_not_equal (json_string_value (json_array_get (choice, 0)), "node09998");
    }
    json_decref (destinations);
    json_decref (ignore);
    json_decref (spec);
    zv_sched_destroy (&sched);
}

//  host_subset_size: the choice is drawn among the best N and only among
//  them, every one of them is drawn in time, a seed replays a draw, and the
//  alternates are the best of the rest.
static json_t *
s_ranked_hosts (void)
{
    json_t *hosts = json_array ();
    for (int index = 1; index <= 6; index++) {
        char name [16];
        snprintf (name, sizeof name, "node%d", index);
        json_array_append_new (hosts, s_host (name, 1024 * (10 - index)));
    }
    return hosts;
}

static void
test_sched_host_subset_size (void **state)
{
    (void) state;
    zv_sched_options_t options;
    zv_sched_options_defaults (&options);
    options.enabled_filters = "ComputeFilter,PlacementFilter";
    options.host_subset_size = 3;
    options.cpu_weight_multiplier = 0;
    options.disk_weight_multiplier = 0;
    zv_sched_t *sched = s_sched_with (&options);
    json_t *spec = json_pack ("{s:i, s:i, s:i}", "vcpus", 1, "ram_mb", 64, "disk_gb", 1);
    int drawn [7] = { 0 };
    for (uint64_t seed = 0; seed < 300; seed++) {
        json_t *hosts = s_ranked_hosts ();
        zv_sched_set_hosts (sched, &hosts);
        zv_sched_set_seed (sched, seed);
        zv_status_t status;
        json_t *destinations = zv_sched_select (sched, spec, 1, NULL, &status);
        assert_int_equal (status, ZV_OK);
        json_t *choice = json_array_get (destinations, 0);
        assert_int_equal (json_array_size (choice), 3);
        const char *chosen = json_string_value (json_array_get (choice, 0));
        int rank = chosen [4] - '0';
        assert_true (rank >= 1 && rank <= 3);
        drawn [rank]++;
        //  Alternates: the best two of the others, in order.
        const char *first = json_string_value (json_array_get (choice, 1));
        const char *second = json_string_value (json_array_get (choice, 2));
        assert_string_equal (first, rank == 1 ? "node2" : "node1");
        assert_string_equal (second, rank == 3 ? "node2" : "node3");

        //  The same seed on the same view draws the same host.
        hosts = s_ranked_hosts ();
        zv_sched_set_hosts (sched, &hosts);
        zv_sched_set_seed (sched, seed);
        json_t *again = zv_sched_select (sched, spec, 1, NULL, &status);
        assert_true (json_equal (again, destinations));
        json_decref (again);
        json_decref (destinations);
    }
    for (int rank = 1; rank <= 3; rank++)
        if (drawn [rank] < 50)
            fail_msg ("node%d drawn %d times of 300 among the best 3", rank, drawn [rank]);
    json_decref (spec);
    zv_sched_destroy (&sched);
}

//  A repeated host name: whatever names it (ignore_hosts here) reaches
//  every host of that name.
static void
test_sched_duplicate_host_names (void **state)
{
    (void) state;
    zv_sched_t *sched = s_sched ("ComputeFilter", 1.0, 3);
    json_t *hosts = json_pack ("[o, o, o]", s_host ("twin", 8192), s_host ("other", 1024), s_host ("twin", 4096));
    zv_sched_set_hosts (sched, &hosts);
    json_t *spec = json_pack ("{s:i, s:i, s:i}", "vcpus", 1, "ram_mb", 64, "disk_gb", 1);
    json_t *ignore = json_pack ("[s]", "twin");
    zv_status_t status;
    json_t *destinations = zv_sched_select (sched, spec, 1, ignore, &status);
    assert_int_equal (status, ZV_OK);
    char *text = json_dumps (destinations, JSON_COMPACT);
    assert_string_equal (text, "[[\"other\"]]");
    free (text);
    json_decref (destinations);
    json_decref (ignore);
    json_decref (spec);
    zv_sched_destroy (&sched);
}

//  Placement semantics through the API: a class no host has, and usage of
//  a custom class consumed in the view by each choice.
static void
test_sched_custom_class_consumed (void **state)
{
    (void) state;
    zv_sched_t *sched = s_sched ("PlacementFilter", 1.0, 3);
    json_t *hosts = json_pack ("[{s:s, s:s, s:{s:{s:i}, s:{s:i}}, s:{s:i}}]",
                               "host", "gpu", "state", "up",
                               "inventories", "MEMORY_MB", "total", 4096, "CUSTOM_GPU", "total", 2,
                               "usages", "CUSTOM_GPU", 1);
    zv_sched_set_hosts (sched, &hosts);
    json_t *spec = json_pack ("{s:{s:i, s:i}}", "resources", "MEMORY_MB", 64, "CUSTOM_GPU", 1);
    zv_status_t status;
    json_t *destinations = zv_sched_select (sched, spec, 2, NULL, &status);
    assert_int_equal (status, ZV_OK);
    char *text = json_dumps (destinations, JSON_COMPACT);
    assert_string_equal (text, "[[\"gpu\"],[]]");
    free (text);
    json_decref (destinations);
    json_decref (spec);
    spec = json_pack ("{s:{s:i}}", "resources", "CUSTOM_FPGA", 1);
    assert_null (zv_sched_select (sched, spec, 1, NULL, &status));
    assert_int_equal (status, ZV_ENOVALIDHOST);
    json_decref (spec);
    zv_sched_destroy (&sched);
}

//  Config: [filter_scheduler] keys, their defaults (the same as the
//  scheduler's own), and the deprecated [scheduler] names.
static void
test_sched_config_keys (void **state)
{
    (void) state;
    int saved_level = zv_log_level;
    zv_log_level = -1;
    zv_config_t config;
    zv_config_defaults (&config);
    zv_sched_options_t options;
    zv_sched_options_defaults (&options);
    assert_string_equal (config.filter_enabled_filters, options.enabled_filters);
    assert_int_equal (config.host_subset_size, options.host_subset_size);
    assert_int_equal (config.max_attempts, options.max_attempts);
    assert_int_equal (config.max_instances_per_host, options.max_instances_per_host);
    assert_true (config.filter_ram_weight_multiplier == options.ram_weight_multiplier);
    assert_true (config.cpu_weight_multiplier == options.cpu_weight_multiplier);
    assert_true (config.disk_weight_multiplier == options.disk_weight_multiplier);
    assert_true (config.build_failure_weight_multiplier == options.build_failure_weight_multiplier);
    assert_true (config.soft_affinity_weight_multiplier == options.soft_affinity_weight_multiplier);
    assert_true (config.soft_anti_affinity_weight_multiplier == options.soft_anti_affinity_weight_multiplier);

    //  The sample documents exactly these defaults.
    char err [512] = "";
    zv_config_t sample;
    zv_config_defaults (&sample);
    assert_int_equal (zv_config_load (&sample, "config/zova.conf.sample", err, sizeof err), ZV_OK);
    assert_string_equal (sample.filter_enabled_filters, config.filter_enabled_filters);
    assert_int_equal (sample.host_subset_size, 1);
    assert_true (sample.build_failure_weight_multiplier == 1000000.0);

    zv_config_defaults (&config);
    assert_int_equal (zv_config_load (&config, S_GOLDEN_DIR "/filter_scheduler.conf", err, sizeof err), ZV_OK);
    assert_string_equal (config.filter_enabled_filters, "ComputeFilter,PlacementFilter,"
                         "AggregateInstanceExtraSpecsFilter,AggregateMultiTenancyIsolation,NumInstancesFilter");
    assert_int_equal (config.host_subset_size, 4);
    assert_int_equal (config.max_instances_per_host, 20);
    assert_true (config.filter_ram_weight_multiplier == -1.5);
    assert_true (config.cpu_weight_multiplier == 2.0);
    assert_true (config.disk_weight_multiplier == 0.5);
    assert_true (config.build_failure_weight_multiplier == 10.0);
    assert_true (config.soft_affinity_weight_multiplier == 3.0);
    assert_true (config.soft_anti_affinity_weight_multiplier == 4.0);
    //  The deprecated names are untouched by the new ones.
    assert_string_equal (config.enabled_filters, "ComputeFilter,CoreFilter,RamFilter,DiskFilter");
    assert_true (config.ram_weight_multiplier == 1.0);
    //  What the file gives builds a scheduler.
    options.enabled_filters = config.filter_enabled_filters;
    zv_sched_t *sched = s_sched_with (&options);
    zv_sched_destroy (&sched);

    //  Only the old names set: they apply.
    zv_config_defaults (&config);
    assert_int_equal (zv_config_load (&config, S_GOLDEN_DIR "/deprecated_alias.conf", err, sizeof err), ZV_OK);
    assert_string_equal (config.filter_enabled_filters, "ComputeFilter,CoreFilter,RamFilter");
    assert_true (config.filter_ram_weight_multiplier == -1.0);
    //  ...until a later file sets the new ones.
    assert_int_equal (zv_config_load (&config, S_GOLDEN_DIR "/filter_scheduler.conf", err, sizeof err), ZV_OK);
    assert_true (config.filter_ram_weight_multiplier == -1.5);

    //  Both set: the new names win, wherever they are in the file.
    zv_config_defaults (&config);
    assert_int_equal (zv_config_load (&config, S_GOLDEN_DIR "/deprecated_overridden.conf", err, sizeof err),
                      ZV_OK);
    assert_string_equal (config.filter_enabled_filters, "ComputeFilter,PlacementFilter");
    assert_true (config.filter_ram_weight_multiplier == 2.0);
    //  A later file with only the old names does not undo them.
    assert_int_equal (zv_config_load (&config, S_GOLDEN_DIR "/deprecated_alias.conf", err, sizeof err), ZV_OK);
    assert_string_equal (config.filter_enabled_filters, "ComputeFilter,PlacementFilter");

    //  Bounds are Nova's: the soft multipliers are not negative.
    zv_config_defaults (&config);
    assert_int_equal (zv_config_load (&config, S_GOLDEN_DIR "/bad_multiplier.conf", err, sizeof err), ZV_EINVAL);
    assert_non_null (strstr (err, "[filter_scheduler] soft_anti_affinity_weight_multiplier"));
    zv_log_level = saved_level;
}

int
main (void)
{
    zv_log_level = -1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_sched_golden),
        cmocka_unit_test (test_sched_new_destroy),
        cmocka_unit_test (test_sched_known_filters),
        cmocka_unit_test (test_sched_unknown_filter),
        cmocka_unit_test (test_sched_options_defaults),
        cmocka_unit_test (test_sched_set_hosts_replaces),
        cmocka_unit_test (test_sched_select_consumes_until_refresh),
        cmocka_unit_test (test_sched_duplicate_filter_names),
        cmocka_unit_test (test_sched_ten_thousand_hosts),
        cmocka_unit_test (test_sched_host_subset_size),
        cmocka_unit_test (test_sched_duplicate_host_names),
        cmocka_unit_test (test_sched_custom_class_consumed),
        cmocka_unit_test (test_sched_config_keys),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
