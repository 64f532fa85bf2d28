/*  test_config.c: zova's configuration (zv_config).

    The defaults are checked value by value against what zova.conf.sample
    documents, and the sample itself must load to exactly the defaults (so
    the sample cannot drift from the code).  Files that load are dumped, one
    "[section] key = value" line per field, and compared with golden files:
    tests/data/config/<case>.conf -> <case>.out (ZV_REGEN_GOLDEN=1 rewrites
    them; review the diff).  Files that must not load are checked for their
    status and for a message that names the file and the key.  Run from the
    repository root.                                                         */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "zv_test.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/zv_config.h"

#define S_DATA_DIR "tests/data/config"
#define S_SAMPLE   "config/zova.conf.sample"

//  The test's own view of every field, independent of zv_config.c's table,
//  so a value that lands in the wrong field shows as a wrong line.
typedef enum { F_STR, F_INT, F_DOUBLE, F_BOOL } s_kind_t;
typedef struct {
    const char *section;
    const char *key;
    s_kind_t kind;
    size_t offset;
} s_field_t;

#define FS(sec, key, field) { sec, key, F_STR, offsetof (zv_config_t, field) }
#define FI(sec, key, field) { sec, key, F_INT, offsetof (zv_config_t, field) }
#define FD(sec, key, field) { sec, key, F_DOUBLE, offsetof (zv_config_t, field) }
#define FB(sec, key, field) { sec, key, F_BOOL, offsetof (zv_config_t, field) }

static const s_field_t s_fields [] = {
    FS ("DEFAULT", "host", host),
    FS ("DEFAULT", "state_path", state_path),
    FS ("DEFAULT", "log_level", log_level),
    FI ("DEFAULT", "report_interval", report_interval_s),
    FI ("DEFAULT", "service_down_time", service_down_time_s),
    FB ("DEFAULT", "allow_resize_to_same_host", allow_resize_to_same_host),
    FI ("DEFAULT", "resize_confirm_window", resize_confirm_window_s),
    FS ("api", "endpoint", api_endpoint),
    FI ("api", "request_timeout", api_request_timeout_s),
    FS ("api", "default_project", default_project),
    FS ("api", "default_user", default_user),
    FS ("api", "default_roles", default_roles),
    FS ("conductor", "endpoint", conductor_endpoint),
    FI ("conductor", "store_map_size_mb", store_map_size_mb),
    FI ("conductor", "group_commit_max", group_commit_max),
    FI ("conductor", "build_timeout", build_timeout_s),
    FI ("conductor", "housekeeping_interval", housekeeping_interval_s),
    FI ("conductor", "rpc_timeout", rpc_timeout_s),
    FI ("conductor", "move_phase_timeout", move_phase_timeout_s),
    FI ("scheduler", "host_refresh_interval_ms", host_refresh_interval_ms),
    FI ("scheduler", "max_attempts", max_attempts),
    FS ("scheduler", "enabled_filters", enabled_filters),
    FD ("scheduler", "ram_weight_multiplier", ram_weight_multiplier),
    FD ("compute", "cpu_allocation_ratio", cpu_allocation_ratio),
    FD ("compute", "ram_allocation_ratio", ram_allocation_ratio),
    FD ("compute", "disk_allocation_ratio", disk_allocation_ratio),
    FI ("compute", "reserved_host_memory_mb", reserved_host_memory_mb),
    FI ("compute", "reserved_host_disk_mb", reserved_host_disk_mb),
    FI ("compute", "local_gb", local_gb),
    FS ("compute", "instances_path", instances_path),
    FI ("compute", "sync_power_state_interval", sync_power_state_interval_s),
    FI ("image_cache", "manager_interval", image_cache_manager_interval_s),
    FB ("image_cache", "remove_unused_base_images", remove_unused_base_images),
    FI ("image_cache", "remove_unused_original_minimum_age_seconds", remove_unused_original_minimum_age_s),
    FS ("libvirt", "connection_uri", connection_uri),
    FS ("libvirt", "virt_type", virt_type),
};
#define S_FIELD_COUNT (sizeof (s_fields) / sizeof (s_fields [0]))

//  Helpers

//  One field as text ("%.17g" for doubles: exact, so any change shows).
static void
s_field_text (const zv_config_t *config, const s_field_t *field, char *buf, size_t len)
{
    const char *base = (const char *) config + field->offset;
    switch (field->kind) {
        case F_STR:    snprintf (buf, len, "%s", base); break;
        case F_INT:    snprintf (buf, len, "%d", *(const int *) base); break;
        case F_BOOL:   snprintf (buf, len, "%s", *(const bool *) base ? "true" : "false"); break;
        case F_DOUBLE: snprintf (buf, len, "%.17g", *(const double *) base); break;
    }
}

//  Every field, one line each.  Caller frees.
static char *
s_dump (const zv_config_t *config)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert_non_null (out);
    for (size_t index = 0; index < S_FIELD_COUNT; index++) {
        char value [1100];
        s_field_text (config, &s_fields [index], value, sizeof value);
        fprintf (out, "[%s] %s = %s\n", s_fields [index].section, s_fields [index].key, value);
    }
    fclose (out);
    return text;
}

//  Load a file that must fail; returns its status, message in err.
static zv_status_t
s_load_fails (const char *path, char *err, size_t errlen)
{
    zv_config_t config;
    zv_config_defaults (&config);
    err [0] = '\0';
    zv_status_t status = zv_config_load (&config, path, err, errlen);
    if (status == ZV_OK)
        fail_msg ("%s loaded, but must be refused", path);
    assert_true (zv_test_has (err, path));
    return status;
}

//  Defaults

static void
test_config_defaults (void **state)
{
    (void) state;
    zv_config_t config;
    memset (&config, 0x5a, sizeof config);         //  defaults must set everything
    zv_config_defaults (&config);

    char hostname [256] = "";
    assert_int_equal (gethostname (hostname, sizeof hostname - 1), 0);
    assert_string_equal (config.host, *hostname ? hostname : "localhost");
    assert_string_equal (config.state_path, "./var");
    assert_string_equal (config.log_level, "info");
    assert_int_equal (config.report_interval_s, 10);
    assert_int_equal (config.service_down_time_s, 60);
    assert_string_equal (config.api_endpoint, "tcp://127.0.0.1:5774");
    assert_string_equal (config.api_endpoint, ZV_DEFAULT_API_ENDPOINT);
    assert_int_equal (config.api_request_timeout_s, 30);
    assert_string_equal (config.default_project, "admin");
    assert_string_equal (config.default_user, "admin");
    assert_string_equal (config.default_roles, "admin,member,reader");
    assert_string_equal (config.conductor_endpoint, "tcp://127.0.0.1:5775");
    assert_string_equal (config.conductor_endpoint, ZV_DEFAULT_CONDUCTOR_ENDPOINT);
    assert_int_equal (config.store_map_size_mb, 4096);
    assert_int_equal (config.group_commit_max, 256);
    assert_int_equal (config.build_timeout_s, 600);
    assert_int_equal (config.housekeeping_interval_s, 10);
    assert_int_equal (config.rpc_timeout_s, 30);
    assert_int_equal (config.host_refresh_interval_ms, 1000);
    assert_int_equal (config.max_attempts, 3);
    assert_string_equal (config.enabled_filters, "ComputeFilter,CoreFilter,RamFilter,DiskFilter");
    assert_true (config.ram_weight_multiplier == 1.0);
    assert_true (config.cpu_allocation_ratio == 4.0);
    assert_true (config.ram_allocation_ratio == 1.0);
    assert_true (config.disk_allocation_ratio == 1.0);
    assert_int_equal (config.reserved_host_memory_mb, 512);
    assert_int_equal (config.reserved_host_disk_mb, 0);
    assert_int_equal (config.local_gb, 0);
    assert_string_equal (config.instances_path, "");
    assert_int_equal (config.sync_power_state_interval_s, 600);
    assert_string_equal (config.connection_uri, "test:///default");
    assert_string_equal (config.virt_type, "auto");

    //  Deterministic: two calls give the same bytes (padding included).
    zv_config_t again;
    memset (&again, 0xa5, sizeof again);
    zv_config_defaults (&again);
    assert_memory_equal (&config, &again, sizeof config);
}

//  Valid files

static void
test_config_full (void **state)
{
    (void) state;
    zv_config_t config, defaults;
    zv_config_defaults (&defaults);
    zv_config_defaults (&config);
    char err [512] = "";
    const char *path = S_DATA_DIR "/full.conf";
    assert_int_equal (zv_config_load (&config, path, err, sizeof err), ZV_OK);
    assert_string_equal (err, "");

    assert_string_equal (config.host, "compute-full-01");
    assert_string_equal (config.state_path, "/srv/zova/state");
    assert_string_equal (config.log_level, "debug");
    assert_int_equal (config.report_interval_s, 7);
    assert_int_equal (config.service_down_time_s, 45);
    assert_string_equal (config.api_endpoint, "tcp://10.0.0.1:6001");
    assert_int_equal (config.api_request_timeout_s, 31);
    assert_string_equal (config.default_project, "demo");
    assert_string_equal (config.default_user, "alice");
    assert_string_equal (config.default_roles, "member,reader");
    assert_string_equal (config.conductor_endpoint, "tcp://10.0.0.2:6002");
    assert_int_equal (config.store_map_size_mb, 2048);
    assert_int_equal (config.group_commit_max, 64);
    assert_int_equal (config.build_timeout_s, 900);
    assert_int_equal (config.housekeeping_interval_s, 11);
    assert_int_equal (config.rpc_timeout_s, 29);
    assert_int_equal (config.host_refresh_interval_ms, 2500);
    assert_int_equal (config.max_attempts, 5);
    assert_string_equal (config.enabled_filters, "ComputeFilter,RamFilter");
    assert_true (config.ram_weight_multiplier == -2.5);
    assert_true (config.cpu_allocation_ratio == 16.0);
    assert_true (config.ram_allocation_ratio == 1.5);
    assert_true (config.disk_allocation_ratio == 0.5);
    assert_int_equal (config.reserved_host_memory_mb, 2048);
    assert_int_equal (config.reserved_host_disk_mb, 10240);
    assert_int_equal (config.local_gb, 500);
    assert_string_equal (config.instances_path, "/srv/zova/instances");
    assert_int_equal (config.sync_power_state_interval_s, 300);
    assert_string_equal (config.connection_uri, "qemu:///system");
    assert_string_equal (config.virt_type, "kvm");

    //  full.conf sets every key to something else than its default, so a
    //  key that is not read (or read into another field) cannot hide.
    for (size_t index = 0; index < S_FIELD_COUNT; index++) {
        char got [1100], dflt [1100];
        s_field_text (&config, &s_fields [index], got, sizeof got);
        s_field_text (&defaults, &s_fields [index], dflt, sizeof dflt);
        if (strcmp (got, dflt) == 0)
            fail_msg ("[%s] %s kept its default '%s'", s_fields [index].section,
                      s_fields [index].key, got);
    }
}

//  A later file overrides only what it sets: load is "over" what is there.
static void
test_config_load_over (void **state)
{
    (void) state;
    zv_config_t config;
    zv_config_defaults (&config);
    char err [512] = "";
    assert_int_equal (zv_config_load (&config, S_DATA_DIR "/full.conf", err, sizeof err), ZV_OK);
    zv_log_level = -1;
    assert_int_equal (zv_config_load (&config, S_DATA_DIR "/unknown_key.conf", err, sizeof err), ZV_OK);
    assert_string_equal (config.host, "node1");                     //  set again
    assert_string_equal (config.api_endpoint, "tcp://10.0.0.1:6001");   //  kept from full.conf
    assert_int_equal (config.max_attempts, 5);
}

//  Golden dumps of the files that load.
static void
test_config_golden (void **state)
{
    (void) state;
    static const char *cases [] = { "full", "unknown_key" };
    bool regen = getenv ("ZV_REGEN_GOLDEN") && *getenv ("ZV_REGEN_GOLDEN") == '1';
    int saved_level = zv_log_level;
    zv_log_level = -1;
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        char in_path [256], out_path [256], err [512] = "";
        snprintf (in_path, sizeof in_path, S_DATA_DIR "/%s.conf", cases [index]);
        snprintf (out_path, sizeof out_path, S_DATA_DIR "/%s.out", cases [index]);
        zv_config_t config;
        zv_config_defaults (&config);
        //  The host is the only default that depends on the machine.
        snprintf (config.host, sizeof config.host, "default-host");
        if (zv_config_load (&config, in_path, err, sizeof err) != ZV_OK)
            fail_msg ("%s: %s", in_path, err);
        char *actual = s_dump (&config);
        if (regen) {
            FILE *file = fopen (out_path, "w");
            assert_non_null (file);
            fputs (actual, file);
            fclose (file);
        }
        else {
            char *expected = zv_test_slurp (out_path);
            if (!expected)
                fail_msg ("%s is missing: regenerate with ZV_REGEN_GOLDEN=1", out_path);
            if (strcmp (expected, actual) != 0)
                fail_msg ("%s loads to\n%swhere %s expects\n%s", in_path, actual, out_path, expected);
            free (expected);
        }
        free (actual);
    }
    zv_log_level = saved_level;
}

//  The sample documents the defaults: it must load to exactly them.
static void
test_config_sample_is_defaults (void **state)
{
    (void) state;
    if (access (S_SAMPLE, R_OK) != 0) {
        print_message ("skipping: %s does not exist yet\n", S_SAMPLE);
        skip ();
    }
    zv_config_t config, defaults;
    zv_config_defaults (&defaults);
    zv_config_defaults (&config);
    char err [512] = "";
    //  An unknown key in the sample is a warning, not an error; count it
    //  through the log stream so a misspelt sample key fails here.
    char *logged = NULL;
    size_t logged_size = 0;
    FILE *log = open_memstream (&logged, &logged_size);
    assert_non_null (log);
    int saved_level = zv_log_level;
    zv_log_level = 1;
    zsys_set_logstream (log);
    zv_status_t status = zv_config_load (&config, S_SAMPLE, err, sizeof err);
    zsys_set_logstream (stdout);
    zv_log_level = saved_level;
    fclose (log);
    if (status != ZV_OK)
        fail_msg ("%s does not load: %s", S_SAMPLE, err);
    if (strstr (logged, "unknown key"))
        fail_msg ("%s has keys zova does not read:\n%s", S_SAMPLE, logged);
    free (logged);
    for (size_t index = 0; index < S_FIELD_COUNT; index++) {
        char got [1100], dflt [1100];
        s_field_text (&config, &s_fields [index], got, sizeof got);
        s_field_text (&defaults, &s_fields [index], dflt, sizeof dflt);
        if (strcmp (got, dflt) != 0)
            fail_msg ("%s sets [%s] %s = '%s' but the default is '%s'", S_SAMPLE,
                      s_fields [index].section, s_fields [index].key, got, dflt);
    }
}

//  A misspelt key is reported, but loading goes on.
static void
test_config_unknown_key_warns (void **state)
{
    (void) state;
    zv_config_t config;
    zv_config_defaults (&config);
    char err [512] = "";
    char *logged = NULL;
    size_t logged_size = 0;
    FILE *log = open_memstream (&logged, &logged_size);
    assert_non_null (log);
    int saved_level = zv_log_level;
    zv_log_level = 1;
    zsys_set_logstream (log);
    const char *path = S_DATA_DIR "/unknown_key.conf";
    zv_status_t status = zv_config_load (&config, path, err, sizeof err);
    zsys_set_logstream (stdout);
    zv_log_level = saved_level;
    fclose (log);
    assert_int_equal (status, ZV_OK);
    assert_string_equal (config.host, "node1");
    assert_string_equal (config.api_endpoint, ZV_DEFAULT_API_ENDPOINT);
    assert_true (zv_test_has (logged, path));
    assert_true (zv_test_has (logged, "unknown key [api] endpont"));
    assert_true (zv_test_has (logged, "unknown key [nosuchsection] key"));
    free (logged);
}

//  Errors

static void
test_config_missing_file (void **state)
{
    (void) state;
    char err [512];
    const char *path = "/nonexistent/zova/zova.conf";
    assert_int_equal (s_load_fails (path, err, sizeof err), ZV_ENOTFOUND);
    assert_true (zv_test_has (err, "No such file"));
}

static void
test_config_bad_values (void **state)
{
    (void) state;
    static const struct {
        const char *file;
        const char *key;                    //  as the message names it
        const char *value;
    } cases [] = {
        { "bad_int",             "[DEFAULT] report_interval",          "'ten'" },
        { "out_of_range",        "[scheduler] max_attempts",           "'0'" },
        { "out_of_range_double", "[compute] cpu_allocation_ratio",     "'0'" },
        { "int_overflow",        "[conductor] group_commit_max",       "'99999999999999999999'" },
        { "trailing_garbage",    "[compute] reserved_host_memory_mb",  "'512MB'" },
        { "too_long",            "[api] default_project",              "longer than 63 bytes" },
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        char path [256], err [512];
        snprintf (path, sizeof path, S_DATA_DIR "/%s.conf", cases [index].file);
        zv_status_t status = s_load_fails (path, err, sizeof err);
        if (status != ZV_EINVAL)
            fail_msg ("%s: status %s, expected invalid", path, zv_status_name (status));
        assert_true (zv_test_has (err, cases [index].key));
        assert_true (zv_test_has (err, cases [index].value));
    }
    //  The bounds are named, so the user knows what would be accepted.
    char err [512];
    s_load_fails (S_DATA_DIR "/out_of_range.conf", err, sizeof err);
    assert_true (zv_test_has (err, "[1, 100]"));
}

//  The header promises "a message naming the file, line and key" for a bad
//  value, as for a syntax error: report_interval is on line 4 of bad_int.conf.
static void
test_config_bad_value_names_line (void **state)
{
    (void) state;
    char err [512];
    const char *path = S_DATA_DIR "/bad_int.conf";
    assert_int_equal (s_load_fails (path, err, sizeof err), ZV_EINVAL);
    assert_true (zv_test_has (err, S_DATA_DIR "/bad_int.conf:4"));
}

//  A value may be as long as its field allows (host: 255 bytes, paths: 1023),
//  whatever line length the INI parser reads at once.
static void
test_config_long_values (void **state)
{
    (void) state;
    //  The INI parser splits lines longer than its buffer; zova refuses
    //  such a file, naming the line, rather than read half a value.
    zv_config_t config;
    zv_config_defaults (&config);
    char err [512] = "";
    const char *path = S_DATA_DIR "/long_values.conf";
    assert_int_equal (zv_config_load (&config, path, err, sizeof err), ZV_EINVAL);
    assert_true (zv_test_has (err, S_DATA_DIR "/long_values.conf:4"));
    assert_true (zv_test_has (err, "longer than"));
    //  Nothing was half-applied.
    zv_config_t defaults;
    zv_config_defaults (&defaults);
    assert_string_equal (config.host, defaults.host);
}

//  "nan" parses as a double but is in no range: it must be refused like
//  "inf" is, or every weight computed from it is NaN.
static void
test_config_nan_refused (void **state)
{
    (void) state;
    char err [512];
    assert_int_equal (s_load_fails (S_DATA_DIR "/nan.conf", err, sizeof err), ZV_EINVAL);
    assert_true (zv_test_has (err, "[scheduler] ram_weight_multiplier"));
}

static void
test_config_syntax_error (void **state)
{
    (void) state;
    char err [512];
    assert_int_equal (s_load_fails (S_DATA_DIR "/syntax.conf", err, sizeof err), ZV_EINVAL);
    assert_true (zv_test_has (err, S_DATA_DIR "/syntax.conf:5"));
    assert_true (zv_test_has (err, "syntax error"));
}

//  A short error buffer is truncated, never overrun.
static void
test_config_short_errbuf (void **state)
{
    (void) state;
    zv_config_t config;
    zv_config_defaults (&config);
    char err [16];
    memset (err, 'x', sizeof err);
    assert_int_equal (zv_config_load (&config, S_DATA_DIR "/bad_int.conf", err, sizeof err),
                      ZV_EINVAL);
    assert_int_equal (strlen (err), sizeof err - 1);
    memset (err, 'x', sizeof err);
    assert_int_equal (zv_config_load (&config, "/nonexistent/zova.conf", err, sizeof err),
                      ZV_ENOTFOUND);
    assert_int_equal (strlen (err), sizeof err - 1);
}

int
main (void)
{
    zv_log_level = -1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_config_defaults),
        cmocka_unit_test (test_config_full),
        cmocka_unit_test (test_config_load_over),
        cmocka_unit_test (test_config_golden),
        cmocka_unit_test (test_config_sample_is_defaults),
        cmocka_unit_test (test_config_unknown_key_warns),
        cmocka_unit_test (test_config_missing_file),
        cmocka_unit_test (test_config_bad_values),
        cmocka_unit_test (test_config_bad_value_names_line),
        cmocka_unit_test (test_config_long_values),
        cmocka_unit_test (test_config_nan_refused),
        cmocka_unit_test (test_config_syntax_error),
        cmocka_unit_test (test_config_short_errbuf),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
