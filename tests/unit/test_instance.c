/*  test_instance.c: the instance record's codec: a new record's keys and
    defaults, the name and metadata checks (Nova's rules, and what libvirt's
    XML cannot carry), the depth bound that keeps every listing decodable,
    the upgrade of records an older zova wrote, and the one view.          */

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>
#include "store/zv_instance.h"
#include "proto/zv_pack.h"

#define UUID "4f1c2a0e-8d3b-4c55-9a6e-0b7d2f1e9c31"

static json_t *
s_new (const json_t *metadata)
{
    json_t *flavor = json_pack ("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:{s:s}, s:s}",
                                "id", "f1", "name", "m1.tiny", "vcpus", 1, "ram_mb", 128,
                                "disk_gb", 1, "ephemeral_gb", 0, "swap_mb", 0,
                                "extra_specs", "hw:cpu_policy", "shared", "created_at", "x");
    json_t *image = json_pack ("{s:s, s:s, s:{s:s}, s:s}", "id", "i1", "name", "cirros",
                               "properties", "kernel_id", "k1", "status", "active");
    json_t *spec = json_pack ("{s:{s:i}}", "resources", "VCPU", 1);
    zv_instance_init_t init = {
        .uuid = UUID, .name = "web", .project_id = "p1", .user_id = "u1",
        .flavor = flavor, .image = image, .availability_zone = "nova",
        .reservation_id = "r-00000001", .launch_index = 0, .metadata = metadata,
        .request_id = "req-1", .request_spec = spec, .group_id = NULL, .now_ms = 1700000000000,
    };
    json_t *rec = zv_instance_new (&init);
    json_decref (flavor);
    json_decref (image);
    json_decref (spec);
    return rec;
}

static void
test_new_record (void **state)
{
    (void) state;
    json_t *rec = s_new (NULL);
    assert_non_null (rec);
    assert_int_equal (json_integer_value (json_object_get (rec, "_rv")), ZV_INSTANCE_VERSION);
    assert_string_equal (json_string_value (json_object_get (rec, "vm_state")), "building");
    assert_string_equal (json_string_value (json_object_get (rec, "task_state")), "scheduling");
    assert_string_equal (json_string_value (json_object_get (rec, "power_state")), "nostate");
    assert_true (json_is_null (json_object_get (rec, "host")));
    assert_true (json_is_object (json_object_get (rec, "metadata")));
    assert_int_equal (json_object_size (json_object_get (rec, "metadata")), 0);
    //  The flavor copy keeps what an instance needs, not the record's extras.
    json_t *flavor = json_object_get (rec, "flavor");
    assert_string_equal (json_string_value (json_object_get (flavor, "name")), "m1.tiny");
    assert_null (json_object_get (flavor, "created_at"));
    assert_string_equal (json_string_value (json_object_get (json_object_get (flavor, "extra_specs"),
                                                             "hw:cpu_policy")), "shared");
    assert_null (json_object_get (json_object_get (rec, "image"), "status"));
    assert_string_equal (json_string_value (json_object_get (rec, "created")), "2023-11-14T22:13:20Z");
    char err [256];
    assert_int_equal (zv_instance_check (rec, err, sizeof err), ZV_OK);
    //  The view: status and id, no internal keys.
    json_object_set_new (rec, "old_vm_state", json_string ("active"));
    json_t *view = zv_instance_view (rec);
    assert_string_equal (json_string_value (json_object_get (view, "status")), "BUILD");
    assert_string_equal (json_string_value (json_object_get (view, "id")), UUID);
    size_t count = 0;
    const char *const *internal = zv_instance_internal_keys (&count);
    assert_true (count >= 4);
    for (size_t index = 0; index < count; index++)
        assert_null (json_object_get (view, internal [index]));
    json_decref (view);
    //  Every summary field names a key a view has.
    json_t *fresh = zv_instance_view (s_new (NULL));
    for (const zv_instance_field_t *field = zv_instance_summary; field->key; field++)
        assert_non_null (json_object_get (fresh, field->source));
    json_decref (fresh);
}

static void
test_names (void **state)
{
    (void) state;
    char err [256];
    assert_int_equal (zv_instance_check_name ("web-1", err, sizeof err), ZV_OK);
    assert_int_equal (zv_instance_check_name ("caf\xc3\xa9 \xe2\x98\x83", err, sizeof err), ZV_OK);
    //  U+FFFE and U+FFFF: valid UTF-8 that XML 1.0 (domain XML) refuses.
    assert_int_equal (zv_instance_check_name ("bad\xef\xbf\xbe", err, sizeof err), ZV_EINVAL);
    assert_string_equal (err, "Invalid server name: it must be printable, without leading or "
                              "trailing spaces.");
    assert_int_equal (zv_instance_check_name ("\xef\xbf\xbf", err, sizeof err), ZV_EINVAL);
    assert_int_equal (zv_instance_check_name ("tab\there", err, sizeof err), ZV_EINVAL);
    assert_int_equal (zv_instance_check_name (" lead", err, sizeof err), ZV_EINVAL);
    assert_int_equal (zv_instance_check_name ("trail ", err, sizeof err), ZV_EINVAL);
    assert_int_equal (zv_instance_check_name ("", err, sizeof err), ZV_EINVAL);
    assert_int_equal (zv_instance_check_name (NULL, err, sizeof err), ZV_EINVAL);
    assert_int_equal (zv_instance_check_name ("del\x7f", err, sizeof err), ZV_EINVAL);
    char longest [300];
    memset (longest, 'n', sizeof longest);
    longest [255] = '\0';
    assert_int_equal (zv_instance_check_name (longest, err, sizeof err), ZV_OK);
    longest [255] = 'n';
    longest [256] = '\0';
    assert_int_equal (zv_instance_check_name (longest, err, sizeof err), ZV_ETOOBIG);
    //  U+FFFD and U+FFFC are fine.
    assert_int_equal (zv_instance_check_name ("\xef\xbf\xbd\xef\xbf\xbc", err, sizeof err), ZV_OK);
}

static void
test_metadata (void **state)
{
    (void) state;
    char err [256];
    json_t *good = json_pack ("{s:s, s:s}", "role", "web", "empty", "");
    assert_int_equal (zv_instance_check_metadata (good, err, sizeof err), ZV_OK);
    json_decref (good);
    json_t *nested = json_pack ("{s:{s:s}}", "a", "b", "c");
    assert_int_equal (zv_instance_check_metadata (nested, err, sizeof err), ZV_EINVAL);
    assert_true (strstr (err, "flat map of strings") != NULL);
    json_decref (nested);
    json_t *number = json_pack ("{s:i}", "n", 1);
    assert_int_equal (zv_instance_check_metadata (number, err, sizeof err), ZV_EINVAL);
    json_decref (number);
    json_t *list = json_pack ("[]");
    assert_int_equal (zv_instance_check_metadata (list, err, sizeof err), ZV_EINVAL);
    json_decref (list);
    char big [300];
    memset (big, 'v', sizeof big);
    big [256] = '\0';
    json_t *long_value = json_pack ("{s:s}", "k", big);
    assert_int_equal (zv_instance_check_metadata (long_value, err, sizeof err), ZV_ETOOBIG);
    json_decref (long_value);
    json_t *long_key = json_object ();
    json_object_set_new (long_key, big, json_string ("v"));
    assert_int_equal (zv_instance_check_metadata (long_key, err, sizeof err), ZV_EINVAL);
    json_decref (long_key);
    json_t *empty_key = json_pack ("{s:s}", "", "v");
    assert_int_equal (zv_instance_check_metadata (empty_key, err, sizeof err), ZV_EINVAL);
    json_decref (empty_key);
    json_t *many = json_object ();
    for (int index = 0; index <= ZV_METADATA_MAX_ITEMS; index++) {
        char key [16];
        snprintf (key, sizeof key, "k%d", index);
        json_object_set_new (many, key, json_string ("v"));
    }
    assert_int_equal (zv_instance_check_metadata (many, err, sizeof err), ZV_ETOOBIG);
    json_object_del (many, "k0");
    assert_int_equal (zv_instance_check_metadata (many, err, sizeof err), ZV_OK);
    json_decref (many);
}

//  A value nested depth levels deep: {"d": {"d": ... "leaf"}}.
static json_t *
s_nest (int depth)
{
    json_t *value = json_string ("leaf");
    for (int level = 1; level < depth; level++)
        value = json_pack ("{s:o}", "d", value);
    return value;
}

static void
test_depth_and_upgrade (void **state)
{
    (void) state;
    char err [256];
    json_t *rec = s_new (NULL);
    //  Metadata that nests is refused before anything is written ...
    json_object_set_new (rec, "metadata", json_pack ("{s:o}", "a", s_nest (12)));
    assert_int_equal (zv_instance_check (rec, err, sizeof err), ZV_EINVAL);
    //  ... and so is any other key that nests past the bound.
    json_object_set_new (rec, "metadata", json_object ());
    json_object_set_new (rec, "guest", s_nest (ZV_INSTANCE_MAX_DEPTH));
    assert_int_equal (zv_instance_check (rec, err, sizeof err), ZV_ETOOBIG);
    json_object_set_new (rec, "guest", s_nest (ZV_INSTANCE_MAX_DEPTH - 1));
    assert_int_equal (zv_instance_check (rec, err, sizeof err), ZV_OK);
    json_decref (rec);

    //  A record an older zova wrote: nested metadata, version 1.  The
    //  upgrade keeps the flat string items and bounds the depth.
    json_t *old = s_new (NULL);
    json_object_set_new (old, "_rv", json_integer (1));
    json_object_set_new (old, "metadata", json_pack ("{s:s, s:o, s:i}", "keep", "me",
                                                     "deep", s_nest (13), "n", 5));
    json_object_set_new (old, "guest", s_nest (14));
    assert_true (zv_instance_upgrade (old));
    assert_int_equal (zv_instance_check (old, err, sizeof err), ZV_OK);
    json_t *metadata = json_object_get (old, "metadata");
    assert_int_equal (json_object_size (metadata), 1);
    assert_string_equal (json_string_value (json_object_get (metadata, "keep")), "me");
    assert_int_equal (json_integer_value (json_object_get (old, "_rv")), ZV_INSTANCE_VERSION);
    assert_false (zv_instance_upgrade (old));
    //  What the bound promises: the record inside a listing's envelope
    //  (envelope, body, list) still decodes.
    json_t *listing = json_pack ("{s:{s:[O]}}", "b", "servers", old);
    char *data = NULL;
    size_t size = 0;
    assert_int_equal (zv_pack_encode (listing, &data, &size), ZV_OK);
    json_t *back = NULL;
    assert_int_equal (zv_pack_decode (data, size, &back, err, sizeof err), ZV_OK);
    free (data);
    json_decref (back);
    json_decref (listing);
    json_decref (old);
}

static void
test_status (void **state)
{
    (void) state;
    json_t *rec = json_pack ("{s:s, s:s}", "vm_state", "active", "task_state", "rebooting_hard");
    assert_string_equal (zv_instance_status (rec), "HARD_REBOOT");
    json_object_set_new (rec, "task_state", json_null ());
    assert_string_equal (zv_instance_status (rec), "ACTIVE");
    json_object_set_new (rec, "vm_state", json_string ("sideways"));
    assert_string_equal (zv_instance_status (rec), "UNKNOWN");
    json_decref (rec);
    assert_null (zv_instance_view (NULL));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_new_record),
        cmocka_unit_test (test_names),
        cmocka_unit_test (test_metadata),
        cmocka_unit_test (test_depth_and_upgrade),
        cmocka_unit_test (test_status),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
