/*  test_proto.c: the message catalogue, its codec, and zv_common.

    Data-driven where the catalogue allows it: a valid body is built for every
    row from its field specs, so a new row is covered by the round-trip,
    wrong-kind, oversize and out-of-range tests without a new case.  Malformed
    input is crafted as raw bytes (truncations, trailing bytes, bad keys).
    Golden files in tests/data/proto/ (one frame per line, hex) pin the wire
    format: a change to it shows as a diff.  ZV_REGEN_GOLDEN=1 rewrites them.
    Run from the repository root.                                            */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "zv_test.h"

#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zv_common.h"
#include "proto/zv_pack.h"
#include "proto/zv_catalogue.h"
#include "proto/zv_msg.h"

#define S_GOLDEN_DIR "tests/data/proto"

//  Helpers

static size_t
s_unhex (const char *hex, unsigned char *out)
{
    size_t n = 0;
    for (; hex [0] && hex [1]; hex += 2) {
        unsigned int byte;
        sscanf (hex, "%2x", &byte);
        out [n++] = (unsigned char) byte;
    }
    return n;
}

static zv_status_t
s_pack_decode_hex (const char *hex, json_t **value_p, char *err, size_t errlen)
{
    unsigned char bytes [256];
    size_t size = s_unhex (hex, bytes);
    return zv_pack_decode (bytes, size, value_p, err, errlen);
}

static json_t *
s_valid_value (const zv_field_t *field)
{
    switch (field->kind) {
        case ZV_FIELD_STR:
            return json_string ("val-1");
        case ZV_FIELD_UUID: {
            char uuid [ZV_UUID_LEN + 1];
            zv_uuid_new (uuid);
            return json_string (uuid);
        }
        case ZV_FIELD_INT:
            return json_integer (field->min + (json_int_t) (((uint64_t) field->max - (uint64_t) field->min) / 2));
        case ZV_FIELD_NUMBER:
            return json_real (2.5);
        case ZV_FIELD_BOOL:
            return json_true ();
        case ZV_FIELD_MAP:
            return json_pack ("{s:s, s:i, s:[b]}", "k", "v", "n", 1, "list", 1);
        case ZV_FIELD_ARRAY:
            return json_pack ("[s, i, n]", "a", 1);
        case ZV_FIELD_STR_ARRAY:
            return json_pack ("[s, s]", "h1", "h2");
        case ZV_FIELD_ANY:
            return json_integer (7);
        case ZV_FIELD_NAME:
            return json_string ("name-1");
        case ZV_FIELD_STR_MAP:
            return json_pack ("{s:s, s:s}", "role", "web", "empty", "");
        case ZV_FIELD_KIND_COUNT:
            break;
    }
    fail_msg ("field '%s' has a bad kind", field->name);
    return NULL;
}

//  A valid body for a row: every field, or only the required ones.
static json_t *
s_valid_body (const zv_msgdef_t *def, bool all_fields)
{
    json_t *body = json_object ();
    for (size_t i = 0; i < ZV_CATALOGUE_MAX_FIELDS && def->fields [i].name; i++)
        if (all_fields || def->fields [i].required)
            json_object_set_new (body, def->fields [i].name, s_valid_value (&def->fields [i]));
    return body;
}

//  Encode then decode (as a DEALER -> DEALER hop, no routing id).
static zv_msg_t *
s_wire (const zv_msg_t *msg)
{
    zmsg_t *zmsg = zv_msg_encode (msg);
    assert_non_null (zmsg);
    zv_msg_t *copy = zv_msg_decode (&zmsg, false);
    assert_null (zmsg);
    assert_non_null (copy);
    return copy;
}

//  Decode raw frames: type, then envelope bytes (any may be NULL = absent).
static zv_msg_t *
s_decode_raw (const char *type, const void *envelope, size_t size)
{
    zmsg_t *zmsg = zmsg_new ();
    if (type)
        zmsg_addstr (zmsg, type);
    if (envelope)
        zmsg_addmem (zmsg, envelope, size);
    zv_msg_t *msg = zv_msg_decode (&zmsg, false);
    assert_non_null (msg);
    return msg;
}

//  Decode an envelope given as a json tree under a type.
static zv_msg_t *
s_decode_json (const char *type, json_t *envelope)
{
    char *data;
    size_t size;
    assert_int_equal (zv_pack_encode (envelope, &data, &size), ZV_OK);
    zv_msg_t *msg = s_decode_raw (type, data, size);
    free (data);
    return msg;
}

static json_t *
s_base_envelope (void)
{
    return json_pack ("{s:i, s:s, s:s, s:I, s:s, s:{}}",
                      "v", 1, "id", "t-1", "rq", "req-t", "ts", (json_int_t) 1000,
                      "src", "test", "b");
}

//  zv_common

static void
test_common_status (void **state)
{
    (void) state;
    for (int i = 0; i < ZV_STATUS_COUNT; i++) {
        const char *name = zv_status_name ((zv_status_t) i);
        assert_non_null (name);
        assert_int_equal (zv_status_from_name (name), i);
        assert_true (zv_status_http ((zv_status_t) i) >= 200);
        for (int j = 0; j < i; j++)
            assert_string_not_equal (name, zv_status_name ((zv_status_t) j));
    }
    assert_string_equal (zv_status_name (ZV_ECONFLICT), "conflict");
    assert_string_equal (zv_status_name (ZV_ENOVALIDHOST), "no_valid_host");
    assert_int_equal (zv_status_http (ZV_OK), 200);
    assert_int_equal (zv_status_http (ZV_EINVAL), 400);
    assert_int_equal (zv_status_http (ZV_ENOTFOUND), 404);
    assert_int_equal (zv_status_http (ZV_EEXIST), 409);
    assert_int_equal (zv_status_http (ZV_EUNSUPPORTED), 501);
    assert_int_equal (zv_status_http (ZV_ETIMEOUT), 504);
    assert_int_equal (zv_status_http (ZV_EUNAVAILABLE), 503);
    assert_int_equal (zv_status_http (ZV_ETOOBIG), 413);
    assert_int_equal (zv_status_from_name ("no such status"), ZV_EINTERNAL);
    assert_int_equal (zv_status_from_name (NULL), ZV_EINTERNAL);
    assert_string_equal (zv_status_name (ZV_STATUS_COUNT), "internal");
}

static void
test_common_uuid (void **state)
{
    (void) state;
    char a [ZV_UUID_LEN + 1], b [ZV_UUID_LEN + 1];
    zv_uuid_new (a);
    zv_uuid_new (b);
    assert_true (zv_uuid_valid (a));
    assert_true (zv_uuid_valid (b));
    assert_string_not_equal (a, b);
    assert_int_equal (strlen (a), ZV_UUID_LEN);
    assert_true (zv_uuid_valid ("4f1c2d3e-0000-4abc-8def-0123456789ab"));
    assert_true (zv_uuid_valid ("4F1C2D3E-0000-4ABC-8DEF-0123456789AB"));
    const char *bad [] = {
        "", "4f1c2d3e", "4f1c2d3e-0000-4abc-8def-0123456789a",
        "4f1c2d3e-0000-4abc-8def-0123456789abc", "4f1c2d3e00000-4abc-8def-0123456789ab",
        "4f1c2d3e-0000-4abc-8def-0123456789ag", "{f1c2d3e-0000-4abc-8def-0123456789ab",
        "4f1c2d3e-0000-4abc-8def_0123456789ab", " 4f1c2d3-0000-4abc-8def-0123456789ab",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        assert_false (zv_uuid_valid (bad [i]));
    assert_false (zv_uuid_valid (NULL));
}

static void
test_common_time (void **state)
{
    (void) state;
    char buf [32];
    assert_string_equal (zv_iso8601 (0, buf), "1970-01-01T00:00:00Z");
    assert_string_equal (zv_iso8601 (1700000000123, buf), "2023-11-14T22:13:20Z");
    assert_string_equal (zv_iso8601 (-1, buf), "1969-12-31T23:59:59Z");
    assert_true (zv_now_ms () > INT64_C (1600000000000));
    int64_t before = zv_mono_ms ();
    assert_true (zv_mono_ms () >= before);
}

static void
test_common_log (void **state)
{
    (void) state;
    int saved = zv_log_level;
    zv_log_set_level_name ("debug");
    assert_int_equal (zv_log_level, 3);
    zv_log_set_level_name ("error");
    assert_int_equal (zv_log_level, 0);
    zv_log_set_level_name ("no such level");
    assert_int_equal (zv_log_level, 0);
    zv_log_set_level_name ("warning");
    assert_int_equal (zv_log_level, 1);
    zv_info ("test", "req-1", "not printed %d", 1);
    zv_warning ("test", "req-1", "printed once: %s", "warning with request id");
    zv_warning ("test", NULL, "printed once: %s", "warning without request id");
    zv_log_level = saved;
}

//  zv_pack

static void
test_pack_canonical_bytes (void **state)
{
    (void) state;
    struct { const char *json; const char *hex; } cases [] = {
        { "{\"a\": 1}",             "81a16101" },
        { "[-1, -32, -33, 127, 128, 255, 256, 65536]",
          "98ffe0d0df7fcc80ccffcd0100ce00010000" },
        { "[true, false, null, 1.5, \"\"]", "95c3c2c0cb3ff8000000000000a0" },
        { "[-9223372036854775808, 9223372036854775807]",
          "92d38000000000000000cf7fffffffffffffff" },
        { "{}",                     "80" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        json_t *value = json_loads (cases [i].json, JSON_DECODE_ANY, NULL);
        assert_non_null (value);
        char *data;
        size_t size;
        assert_int_equal (zv_pack_encode (value, &data, &size), ZV_OK);
        char hex [256] = "";
        for (size_t j = 0; j < size; j++)
            sprintf (hex + 2 * j, "%02x", (unsigned char) data [j]);
        assert_string_equal (hex, cases [i].hex);
        json_t *back;
        assert_int_equal (zv_pack_decode (data, size, &back, NULL, 0), ZV_OK);
        assert_true (json_equal (value, back));
        json_decref (back);
        json_decref (value);
        free (data);
    }
}

static void
test_pack_decode_forms (void **state)
{
    (void) state;
    //  Forms zova never writes but must read: wide ints, float32, str8/16.
    struct { const char *hex; const char *json; } cases [] = {
        { "d0ff",                   "-1" },
        { "d1fffe",                 "-2" },
        { "d2fffffffd",             "-3" },
        { "d3fffffffffffffffc",     "-4" },
        { "cd0005",                 "5" },
        { "cf0000000000000006",     "6" },
        { "ca3fc00000",             "1.5" },
        { "d903616263",             "\"abc\"" },
        { "da0002c3a9",             "\"\\u00e9\"" },
        { "dc0001c0",               "[null]" },
        { "de0001a0c3",             "{\"\": true}" },
        { "82a16101a16102",         "{\"a\": 2}" },         //  duplicate: last wins
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        json_t *value = NULL;
        char err [128];
        assert_int_equal (s_pack_decode_hex (cases [i].hex, &value, err, sizeof err), ZV_OK);
        json_t *expect = json_loads (cases [i].json, JSON_DECODE_ANY, NULL);
        assert_true (json_equal (value, expect));
        json_decref (expect);
        json_decref (value);
    }
}

static void
test_pack_decode_rejects (void **state)
{
    (void) state;
    struct { const char *hex; zv_status_t status; const char *reason; } cases [] = {
        { "",                       ZV_EINVAL,  "truncated" },
        { "c1",                     ZV_EINVAL,  "invalid msgpack byte" },
        { "c0c0",                   ZV_EINVAL,  "trailing" },
        { "92c0",                   ZV_EINVAL,  "truncated" },
        { "a3616263ff",             ZV_EINVAL,  "trailing" },
        { "cd00",                   ZV_EINVAL,  "truncated" },
        { "cf8000000000000000",     ZV_EINVAL,  "beyond int64" },
        { "cfffffffffffffffff",     ZV_EINVAL,  "beyond int64" },
        { "c40100",                 ZV_EINVAL,  "bin" },
        { "c7010100",               ZV_EINVAL,  "ext" },
        { "d40100",                 ZV_EINVAL,  "ext" },
        { "810100",                 ZV_EINVAL,  "not a string" },        //  {1: 0}
        { "81c0c0",                 ZV_EINVAL,  "not a string" },
        { "8192c0c0c0",             ZV_EINVAL,  "not a string" },
        { "81a20061c0",             ZV_EINVAL,  "NUL" },
        { "a2fffe",                 ZV_EINVAL,  "UTF-8" },
        { "a2c080",                 ZV_EINVAL,  "UTF-8" },               //  overlong NUL
        { "a3eda080",               ZV_EINVAL,  "UTF-8" },               //  surrogate
        { "a4f4908080",             ZV_EINVAL,  "UTF-8" },               //  > U+10FFFF
        { "a2e282",                 ZV_EINVAL,  "UTF-8" },               //  cut sequence
        { "81a2ff00c0",             ZV_EINVAL,  "UTF-8" },               //  in a key
        { "cb7ff8000000000000",     ZV_EINVAL,  "non-finite" },          //  NaN
        { "ca7f800000",             ZV_EINVAL,  "non-finite" },          //  +inf
        { "ddffffffff",             ZV_ETOOBIG, "entries" },             //  claims 4G items
        { "dd00010000",             ZV_EINVAL,  "truncated" },           //  65536 items, no bytes
        { "df000186a1",             ZV_ETOOBIG, "entries" },             //  100001 pairs
        { "dbffffffff",             ZV_ETOOBIG, "string of" },
        { "db00010001",             ZV_ETOOBIG, "string of" },           //  65537 bytes
        { "db00010000",             ZV_EINVAL,  "truncated" },           //  65536: allowed, absent
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        json_t *value = (json_t *) 1;
        char err [128];
        zv_status_t status = s_pack_decode_hex (cases [i].hex, &value, err, sizeof err);
        if (status != cases [i].status)
            print_error ("case %zu (%s): status %d, %s\n", i, cases [i].hex, status, err);
        assert_int_equal (status, cases [i].status);
        assert_null (value);
        assert_true (zv_test_has (err, cases [i].reason));
    }
    json_t *value;
    assert_int_equal (zv_pack_decode (NULL, 0, &value, NULL, 0), ZV_EINVAL);
}

static void
test_pack_limits (void **state)
{
    (void) state;
    //  Depth: 16 nested arrays decode and encode, 17 do not.
    unsigned char deep [32];
    memset (deep, 0x91, sizeof deep);
    for (int depth = 15; depth <= 18; depth++) {
        deep [depth] = 0xc0;
        json_t *value = NULL;
        char err [128];
        zv_status_t status = zv_pack_decode (deep, (size_t) depth + 1, &value, err, sizeof err);
        if (depth <= ZV_PACK_MAX_DEPTH) {
            assert_int_equal (status, ZV_OK);
            char *data;
            size_t size;
            assert_int_equal (zv_pack_encode (value, &data, &size), ZV_OK);
            assert_memory_equal (data, deep, size);
            free (data);
            json_t *wrapped = json_pack ("[O]", value);
            if (depth == ZV_PACK_MAX_DEPTH) {
                assert_int_equal (zv_pack_encode (wrapped, &data, &size), ZV_EINVAL);
                assert_null (data);
            }
            else {
                assert_int_equal (zv_pack_encode (wrapped, &data, &size), ZV_OK);
                free (data);
            }
            json_decref (wrapped);
        }
        else {
            assert_int_equal (status, ZV_EINVAL);
            assert_true (zv_test_has (err, "nesting"));
        }
        json_decref (value);
        deep [depth] = 0x91;
    }
    //  Strings: 65536 bytes round-trip, 65537 are refused both ways.
    char *big = malloc (ZV_PACK_MAX_STR + 2);
    memset (big, 'a', ZV_PACK_MAX_STR + 1);
    big [ZV_PACK_MAX_STR + 1] = '\0';
    json_t *string = json_stringn (big, ZV_PACK_MAX_STR);
    char *data;
    size_t size;
    assert_int_equal (zv_pack_encode (string, &data, &size), ZV_OK);
    json_t *back;
    assert_int_equal (zv_pack_decode (data, size, &back, NULL, 0), ZV_OK);
    assert_true (json_equal (string, back));
    json_decref (back);
    free (data);
    json_decref (string);
    string = json_stringn (big, ZV_PACK_MAX_STR + 1);
    assert_int_equal (zv_pack_encode (string, &data, &size), ZV_EINVAL);
    json_decref (string);
    free (big);

    //  Items: 100000 round-trip, 100001 are refused both ways.
    json_t *array = json_array ();
    for (int i = 0; i < ZV_PACK_MAX_ITEMS; i++)
        json_array_append_new (array, json_integer (i % 100));
    assert_int_equal (zv_pack_encode (array, &data, &size), ZV_OK);
    assert_int_equal (zv_pack_decode (data, size, &back, NULL, 0), ZV_OK);
    assert_true (json_equal (array, back));
    json_decref (back);
    //  Patch the header (dd 00 01 86 a0) to claim one more item, and add it.
    data = realloc (data, size + 1);
    assert_int_equal ((unsigned char) data [0], 0xdd);
    data [4] = (char) 0xa1;
    data [size] = 0;
    char err [128];
    assert_int_equal (zv_pack_decode (data, size + 1, &back, err, sizeof err), ZV_ETOOBIG);
    free (data);
    json_array_append_new (array, json_null ());
    assert_int_equal (zv_pack_encode (array, &data, &size), ZV_EINVAL);
    json_decref (array);

    //  Invalid UTF-8 slipped in past jansson's checks cannot be encoded.
    json_t *bad = json_stringn_nocheck ("\xff\xfe", 2);
    assert_int_equal (zv_pack_encode (bad, &data, &size), ZV_EINVAL);
    json_decref (bad);
    bad = json_object ();
    json_object_set_new_nocheck (bad, "\xc3\x28", json_null ());
    assert_int_equal (zv_pack_encode (bad, &data, &size), ZV_EINVAL);
    json_decref (bad);
    assert_int_equal (zv_pack_encode (NULL, &data, &size), ZV_EINVAL);
}

static void
test_pack_roundtrip_values (void **state)
{
    (void) state;
    json_t *value = json_pack ("{s:s, s:I, s:I, s:f, s:b, s:n, s:[s, {s:[]}], s:s#}",
                               "text", "h\xc3\xa9llo \xf0\x9f\x98\x80",
                               "min", (json_int_t) INT64_MIN, "max", (json_int_t) INT64_MAX,
                               "real", -0.125, "flag", 1, "nothing",
                               "nested", "x", "empty",
                               "nul", "a\0b", (int) 3);
    assert_non_null (value);
    char *data;
    size_t size;
    assert_int_equal (zv_pack_encode (value, &data, &size), ZV_OK);
    json_t *back;
    assert_int_equal (zv_pack_decode (data, size, &back, NULL, 0), ZV_OK);
    assert_true (json_equal (value, back));
    assert_int_equal (json_string_length (json_object_get (back, "nul")), 3);
    json_decref (back);
    json_decref (value);
    free (data);
}

//  zv_catalogue

static void
test_catalogue_table (void **state)
{
    (void) state;
    size_t rows = zv_catalogue_size ();
    //  Adding a message is one row here and one more in this count.
    assert_int_equal (rows, 129);
    assert_null (zv_catalogue_at (rows));
    for (size_t i = 0; i < rows; i++) {
        const zv_msgdef_t *def = zv_catalogue_at (i);
        assert_ptr_equal (zv_catalogue_find (def->type), def);
        const char *dot = strchr (def->type, '.');
        assert_non_null (dot);
        assert_true (dot > def->type && dot [1] != '\0');
        assert_true (def->kind < ZV_MSG_KIND_COUNT);
        //  A terminator, unique field names, sane limits.
        size_t count = 0;
        while (count < ZV_CATALOGUE_MAX_FIELDS && def->fields [count].name)
            count++;
        assert_true (count < ZV_CATALOGUE_MAX_FIELDS);
        for (size_t f = 0; f < count; f++) {
            const zv_field_t *field = &def->fields [f];
            assert_true (field->kind < ZV_FIELD_KIND_COUNT);
            if (field->kind == ZV_FIELD_INT)
                assert_true (field->min <= field->max);
            else
                assert_true (field->max >= 0 && field->min == 0);
            for (size_t g = 0; g < f; g++)
                assert_string_not_equal (field->name, def->fields [g].name);
        }
        //  api rows forward to a conductor row with the same fields (who
        //  asks is the envelope's context); only api.ping is answered by
        //  the api itself.
        if (strncmp (def->type, "api.", 4) == 0 && !streq (def->type, "api.ping")) {
            assert_non_null (def->forward);
            const zv_msgdef_t *target = zv_catalogue_find (def->forward);
            assert_non_null (target);
            assert_string_equal (target->type + strlen ("conductor."), def->type + 4);
            assert_null (target->forward);
            assert_int_equal (target->kind, def->kind);
            size_t target_count = 0;
            while (target_count < ZV_CATALOGUE_MAX_FIELDS && target->fields [target_count].name)
                target_count++;
            assert_int_equal (target_count, count);
            for (size_t f = 0; f < target_count; f++) {
                const zv_field_t *tf = &target->fields [f];
                assert_string_not_equal (tf->name, "project_id");
                bool found = false;
                for (size_t g = 0; g < count; g++)
                    if (streq (def->fields [g].name, tf->name)) {
                        assert_memory_equal (&def->fields [g].kind, &tf->kind, sizeof tf->kind);
                        assert_int_equal (def->fields [g].required, tf->required);
                        assert_int_equal (def->fields [g].min, tf->min);
                        assert_int_equal (def->fields [g].max, tf->max);
                        found = true;
                    }
                assert_true (found);
            }
        }
        else
            assert_null (def->forward);
    }
    assert_null (zv_catalogue_find ("api.nothing"));
    assert_null (zv_catalogue_find (""));
    assert_null (zv_catalogue_find ("zzz"));
    assert_null (zv_catalogue_find (NULL));
    assert_int_equal (zv_catalogue_find ("compute.build_instance")->kind, ZV_MSG_CAST);
    assert_int_equal (zv_catalogue_find ("api.ping")->kind, ZV_MSG_REQUEST);
}

//  Wrong-kind values and the words the error must use.
static json_t *
s_wrong_value (zv_field_kind_t kind, const char **expect_p)
{
    switch (kind) {
        case ZV_FIELD_STR:       *expect_p = "expected string";  return json_integer (5);
        case ZV_FIELD_UUID:      *expect_p = "expected uuid";    return json_integer (5);
        case ZV_FIELD_INT:       *expect_p = "expected integer"; return json_string ("5");
        case ZV_FIELD_NUMBER:    *expect_p = "expected number";  return json_string ("1.5");
        case ZV_FIELD_BOOL:      *expect_p = "expected boolean"; return json_integer (1);
        case ZV_FIELD_MAP:       *expect_p = "expected map";     return json_array ();
        case ZV_FIELD_ARRAY:     *expect_p = "expected array";   return json_object ();
        case ZV_FIELD_STR_ARRAY: *expect_p = "expected array of strings"; return json_string ("x");
        case ZV_FIELD_NAME:      *expect_p = "expected string";  return json_integer (5);
        case ZV_FIELD_STR_MAP:   *expect_p = "expected a map of strings"; return json_array ();
        case ZV_FIELD_ANY:
        case ZV_FIELD_KIND_COUNT:
            break;
    }
    return NULL;
}

static void
s_expect_invalid (const zv_msgdef_t *def, json_t *body, zv_status_t status, const char *reason)
{
    char err [256];
    zv_status_t got = zv_catalogue_validate (def, body, err, sizeof err);
    if (got != status)
        print_error ("%s: status %d (%s), expected %d '%s'\n", def->type, got, err, status, reason);
    assert_int_equal (got, status);
    assert_true (zv_test_has (err, reason));
}

static void
test_catalogue_validate (void **state)
{
    (void) state;
    for (size_t i = 0; i < zv_catalogue_size (); i++) {
        const zv_msgdef_t *def = zv_catalogue_at (i);
        json_t *body = s_valid_body (def, true);
        assert_int_equal (zv_catalogue_validate (def, body, NULL, 0), ZV_OK);
        json_t *minimal = s_valid_body (def, false);
        assert_int_equal (zv_catalogue_validate (def, minimal, NULL, 0), ZV_OK);
        json_decref (minimal);

        for (size_t f = 0; f < ZV_CATALOGUE_MAX_FIELDS && def->fields [f].name; f++) {
            const zv_field_t *field = &def->fields [f];
            char reason [128];
            json_t *good = json_incref (json_object_get (body, field->name));

            //  Absent and null.
            json_object_del (body, field->name);
            snprintf (reason, sizeof reason, "missing field '%s'", field->name);
            if (field->required)
                s_expect_invalid (def, body, ZV_EINVAL, reason);
            else
                assert_int_equal (zv_catalogue_validate (def, body, NULL, 0), ZV_OK);
            json_object_set_new (body, field->name, json_null ());
            if (field->required)
                s_expect_invalid (def, body, ZV_EINVAL, reason);
            else
                assert_int_equal (zv_catalogue_validate (def, body, NULL, 0), ZV_OK);

            //  Wrong kind.
            const char *expect = NULL;
            json_t *wrong = s_wrong_value (field->kind, &expect);
            if (wrong) {
                json_object_set_new (body, field->name, wrong);
                snprintf (reason, sizeof reason, "field '%s': %s", field->name, expect);
                s_expect_invalid (def, body, ZV_EINVAL, reason);
            }

            //  Limits.
            size_t max = field->max > 0 ? (size_t) field->max : 0;
            if (field->kind == ZV_FIELD_STR) {
                size_t limit = max ? max : ZV_FIELD_DEFAULT_MAX;
                char *text = malloc (limit + 2);
                memset (text, 'a', limit + 1);
                text [limit + 1] = '\0';
                json_object_set_new (body, field->name, json_stringn (text, limit));
                assert_int_equal (zv_catalogue_validate (def, body, NULL, 0), ZV_OK);
                json_object_set_new (body, field->name, json_string (text));
                snprintf (reason, sizeof reason, "field '%s': string longer than %zu bytes",
                          field->name, limit);
                s_expect_invalid (def, body, ZV_ETOOBIG, reason);
                free (text);
                json_object_set_new (body, field->name, json_stringn ("a\0b", 3));
                s_expect_invalid (def, body, ZV_EINVAL, "contains NUL");
                json_object_set_new (body, field->name, json_string (""));
                if (field->required)
                    s_expect_invalid (def, body, ZV_EINVAL, "must not be empty");
                else
                    assert_int_equal (zv_catalogue_validate (def, body, NULL, 0), ZV_OK);
            }
            if (field->kind == ZV_FIELD_UUID) {
                const char *bad [] = { "", "not-a-uuid", "4f1c2d3e-0000-4abc-8def-0123456789ab0",
                                       "4f1c2d3e-0000-4abc-8def-0123456789az" };
                for (size_t b = 0; b < sizeof bad / sizeof bad [0]; b++) {
                    json_object_set_new (body, field->name, json_string (bad [b]));
                    snprintf (reason, sizeof reason, "field '%s': not a valid UUID", field->name);
                    s_expect_invalid (def, body, ZV_EINVAL, reason);
                }
            }
            if (field->kind == ZV_FIELD_INT) {
                json_object_set_new (body, field->name, json_integer (field->min));
                assert_int_equal (zv_catalogue_validate (def, body, NULL, 0), ZV_OK);
                json_object_set_new (body, field->name, json_integer (field->max));
                assert_int_equal (zv_catalogue_validate (def, body, NULL, 0), ZV_OK);
                json_object_set_new (body, field->name, json_real (1.0));
                s_expect_invalid (def, body, ZV_EINVAL, "expected integer");
                if (field->min > INT64_MIN) {
                    json_object_set_new (body, field->name, json_integer (field->min - 1));
                    snprintf (reason, sizeof reason, "field '%s': %lld out of range [%lld, %lld]",
                              field->name, (long long) field->min - 1,
                              (long long) field->min, (long long) field->max);
                    s_expect_invalid (def, body, ZV_EINVAL, reason);
                }
                if (field->max < INT64_MAX) {
                    json_object_set_new (body, field->name, json_integer (field->max + 1));
                    s_expect_invalid (def, body, ZV_EINVAL, "out of range");
                }
            }
            if (field->kind == ZV_FIELD_ARRAY || field->kind == ZV_FIELD_STR_ARRAY) {
                size_t limit = max ? max : 1000;
                json_t *array = json_array ();
                for (size_t k = 0; k < limit; k++)
                    json_array_append_new (array, json_string ("h"));
                json_object_set (body, field->name, array);
                assert_int_equal (zv_catalogue_validate (def, body, NULL, 0), ZV_OK);
                json_array_append_new (array, json_string ("h"));
                snprintf (reason, sizeof reason, "field '%s': more than %zu items",
                          field->name, limit);
                s_expect_invalid (def, body, ZV_ETOOBIG, reason);
                json_decref (array);
            }
            if (field->kind == ZV_FIELD_NAME) {
                //  Printable, as a server name must be for its domain XML.
                const char *bad [] = { "bad\xef\xbf\xbe", "\xef\xbf\xbf", "tab\there", " lead",
                                       "trail ", "del\x7f" };
                for (size_t b = 0; b < sizeof bad / sizeof bad [0]; b++) {
                    json_object_set_new (body, field->name, json_string (bad [b]));
                    snprintf (reason, sizeof reason, "field '%s': must be printable", field->name);
                    s_expect_invalid (def, body, ZV_EINVAL, reason);
                }
                json_object_set_new (body, field->name, json_string ("caf\xc3\xa9 \xef\xbf\xbd"));
                assert_int_equal (zv_catalogue_validate (def, body, NULL, 0), ZV_OK);
                char text [300];
                memset (text, 'n', 256);
                text [256] = '\0';
                json_object_set_new (body, field->name, json_string (text));
                s_expect_invalid (def, body, ZV_ETOOBIG, "string longer than 255 bytes");
            }
            if (field->kind == ZV_FIELD_STR_MAP) {
                //  Flat: a nested map, a number, an empty key are refused.
                json_object_set_new (body, field->name, json_pack ("{s:{s:s}}", "a", "b", "c"));
                s_expect_invalid (def, body, ZV_EINVAL, "value of 'a': expected string (a flat map of strings)");
                json_object_set_new (body, field->name, json_pack ("{s:i}", "n", 1));
                s_expect_invalid (def, body, ZV_EINVAL, "expected string");
                json_object_set_new (body, field->name, json_pack ("{s:s}", "", "v"));
                s_expect_invalid (def, body, ZV_EINVAL, "keys must be 1 to 255 bytes");
                char text [300];
                memset (text, 'v', 256);
                text [256] = '\0';
                json_object_set_new (body, field->name, json_pack ("{s:s}", "k", text));
                s_expect_invalid (def, body, ZV_ETOOBIG, "string longer than 255 bytes");
                size_t limit = max ? max : 1000;
                json_t *map = json_object ();
                for (size_t k = 0; k <= limit; k++) {
                    char key [24];
                    snprintf (key, sizeof key, "k%zu", k);
                    json_object_set_new (map, key, json_string ("v"));
                }
                json_object_set_new (body, field->name, map);
                s_expect_invalid (def, body, ZV_ETOOBIG, "more than");
            }
            if (field->kind == ZV_FIELD_MAP || field->kind == ZV_FIELD_ARRAY || field->kind == ZV_FIELD_ANY) {
                //  Nested at most ZV_FIELD_MAX_NESTING deep (a scalar is 1).
                json_t *deep = json_string ("leaf");
                for (int level = 1; level < ZV_FIELD_MAX_NESTING; level++)
                    deep = json_pack ("{s:o}", "d", deep);
                json_t *outer = field->kind == ZV_FIELD_ARRAY ? json_pack ("[O]", json_object_get (deep, "d"))
                                                              : json_incref (deep);
                json_object_set_new (body, field->name, outer);
                assert_int_equal (zv_catalogue_validate (def, body, NULL, 0), ZV_OK);
                json_object_set_new (body, field->name, field->kind == ZV_FIELD_ARRAY
                                     ? json_pack ("[o]", deep) : json_pack ("{s:o}", "d", deep));
                snprintf (reason, sizeof reason, "field '%s': nests deeper than %d levels",
                          field->name, ZV_FIELD_MAX_NESTING);
                s_expect_invalid (def, body, ZV_ETOOBIG, reason);
            }
            if (field->kind == ZV_FIELD_STR_ARRAY) {
                json_object_set_new (body, field->name, json_pack ("[s, i]", "h", 1));
                s_expect_invalid (def, body, ZV_EINVAL, "item 1: expected string");
                char long_item [300];
                memset (long_item, 'x', 256);
                long_item [256] = '\0';
                json_object_set_new (body, field->name, json_pack ("[s]", long_item));
                s_expect_invalid (def, body, ZV_ETOOBIG, "item 0: string longer than 255");
            }
            json_object_set_new (body, field->name, good);
        }
        //  Unknown keys are ignored; a body must be a map.
        json_object_set_new (body, "some_future_key", json_pack ("[i]", 1));
        assert_int_equal (zv_catalogue_validate (def, body, NULL, 0), ZV_OK);
        json_t *array = json_array ();
        s_expect_invalid (def, array, ZV_EINVAL, "body is not a map");
        json_decref (array);
        json_decref (body);
    }
}

//  zv_msg: round trips

static void
test_msg_roundtrip_every_type (void **state)
{
    (void) state;
    for (size_t i = 0; i < zv_catalogue_size (); i++) {
        const zv_msgdef_t *def = zv_catalogue_at (i);
        for (int all = 0; all < 2; all++) {
            zv_msg_t *msg = zv_msg_new (def->type);
            assert_non_null (msg);
            assert_ptr_equal (zv_msg_def (msg), def);
            zv_msg_set_src (msg, "test");
            json_t *body = s_valid_body (def, all);
            zv_msg_set_body (msg, &body);
            assert_null (body);
            zv_msg_t *copy = s_wire (msg);
            if (zv_msg_status (copy) != ZV_OK)
                print_error ("%s: %s\n", def->type, zv_msg_error_text (copy));
            assert_int_equal (zv_msg_status (copy), ZV_OK);
            assert_string_equal (zv_msg_error_text (copy), "");
            assert_string_equal (zv_msg_type (copy), def->type);
            assert_string_equal (zv_msg_id (copy), zv_msg_id (msg));
            assert_string_equal (zv_msg_rq (copy), zv_msg_rq (msg));
            assert_string_equal (zv_msg_src (copy), "test");
            assert_int_equal (zv_msg_ts (copy), zv_msg_ts (msg));
            assert_false (zv_msg_is_reply (copy));
            assert_null (zv_msg_re (copy));
            assert_ptr_equal (zv_msg_def (copy), def);
            assert_true (json_equal (zv_msg_body (copy), zv_msg_body (msg)));

            //  A reply to it carries any body back.
            zv_msg_t *reply = zv_msg_reply (copy);
            json_t *result = json_pack ("{s:[{s:s}], s:i}", "items", "name", "x", "count", 1);
            zv_msg_set_body (reply, &result);
            zv_msg_t *back = s_wire (reply);
            assert_int_equal (zv_msg_status (back), ZV_OK);
            assert_true (zv_msg_is_reply (back));
            assert_string_equal (zv_msg_re (back), zv_msg_id (msg));
            assert_string_equal (zv_msg_rq (back), zv_msg_rq (msg));
            assert_null (zv_msg_def (back));
            assert_true (json_equal (zv_msg_body (back), zv_msg_body (reply)));
            zv_msg_destroy (&back);
            zv_msg_destroy (&reply);
            zv_msg_destroy (&copy);
            zv_msg_destroy (&msg);
            assert_null (msg);
            zv_msg_destroy (&msg);
        }
    }
}

static void
test_msg_wrong_field_on_wire (void **state)
{
    (void) state;
    for (size_t i = 0; i < zv_catalogue_size (); i++) {
        const zv_msgdef_t *def = zv_catalogue_at (i);
        for (size_t f = 0; f < ZV_CATALOGUE_MAX_FIELDS && def->fields [f].name; f++) {
            const char *expect;
            json_t *wrong = s_wrong_value (def->fields [f].kind, &expect);
            if (!wrong)
                continue;
            zv_msg_t *msg = zv_msg_new (def->type);
            json_t *body = s_valid_body (def, true);
            json_object_set_new (body, def->fields [f].name, wrong);
            zv_msg_set_body (msg, &body);
            zv_msg_t *copy = s_wire (msg);
            assert_int_equal (zv_msg_status (copy), ZV_EINVAL);
            char reason [256];
            snprintf (reason, sizeof reason, "%s: field '%s': %s",
                      def->type, def->fields [f].name, expect);
            assert_true (zv_test_has (zv_msg_error_text (copy), reason));
            //  Recovered enough to answer, and nothing of the body leaks.
            assert_string_equal (zv_msg_id (copy), zv_msg_id (msg));
            assert_string_equal (zv_msg_rq (copy), zv_msg_rq (msg));
            assert_int_equal (json_object_size (zv_msg_body (copy)), 0);
            zv_msg_destroy (&copy);
            zv_msg_destroy (&msg);
        }
    }
}

//  A stub keeps what answering later needs: the reply to it is the reply
//  to the request (type, re = id, rq), and it carries no body.
static void
test_msg_request_stub (void **state)
{
    (void) state;
    zv_msg_t *request = zv_msg_new ("conductor.console_log");
    assert_non_null (request);
    json_t *body = json_pack ("{s:s}", "ref", "web");
    zv_msg_set_body (request, &body);
    zv_msg_t *stub = zv_msg_request_stub (request);
    assert_non_null (stub);
    assert_string_equal (zv_msg_type (stub), "conductor.console_log");
    assert_string_equal (zv_msg_id (stub), zv_msg_id (request));
    assert_string_equal (zv_msg_rq (stub), zv_msg_rq (request));
    assert_false (zv_msg_is_reply (stub));
    assert_int_equal (json_object_size (zv_msg_body (stub)), 0);
    zv_msg_t *reply = zv_msg_reply (stub);
    assert_string_equal (zv_msg_re (reply), zv_msg_id (request));
    assert_string_equal (zv_msg_rq (reply), zv_msg_rq (request));
    zv_msg_destroy (&reply);
    zv_msg_destroy (&stub);
    zv_msg_destroy (&request);
}

static void
test_msg_error_reply (void **state)
{
    (void) state;
    zv_msg_t *request = zv_msg_new ("conductor.instance_update");
    zv_msg_set_routing_str (request, "compute.node1");
    for (int status = ZV_EINVAL; status < ZV_STATUS_COUNT; status++) {
        zv_msg_t *reply = zv_msg_error (request, (zv_status_t) status,
                                        "Cannot 'pause' instance %s while it is in vm_state %s",
                                        "4f1c", "stopped");
        assert_non_null (zv_msg_routing_id (reply));
        assert_true (zframe_streq (zv_msg_routing_id (reply), "compute.node1"));
        zv_msg_set_routing_id (reply, &(zframe_t *) { NULL });
        zv_msg_t *back = s_wire (reply);
        assert_int_equal (zv_msg_status (back), status);
        assert_string_equal (zv_msg_error_text (back),
                             "Cannot 'pause' instance 4f1c while it is in vm_state stopped");
        assert_true (zv_msg_is_reply (back));
        assert_string_equal (zv_msg_re (back), zv_msg_id (request));
        assert_string_equal (zv_msg_rq (back), zv_msg_rq (request));
        assert_string_equal (zv_msg_type (back), "conductor.instance_update");
        assert_int_equal (json_object_size (zv_msg_body (back)), 0);
        zv_msg_destroy (&back);
        zv_msg_destroy (&reply);
    }
    //  Long and non-UTF-8 text is cut and made safe to send.
    zv_msg_set_routing_id (request, &(zframe_t *) { NULL });
    char long_text [6000];
    memset (long_text, 'e', sizeof long_text - 1);
    long_text [sizeof long_text - 1] = '\0';
    zv_msg_t *reply = zv_msg_error (request, ZV_EIO, "%s", long_text);
    zv_msg_t *back = s_wire (reply);
    assert_int_equal (zv_msg_status (back), ZV_EIO);
    assert_int_equal (strlen (zv_msg_error_text (back)), 4096);
    zv_msg_destroy (&back);
    zv_msg_destroy (&reply);
    reply = zv_msg_error (request, ZV_EINVAL, "bad name '%s'", "\xff\xfe");
    back = s_wire (reply);
    assert_int_equal (zv_msg_status (back), ZV_EINVAL);
    assert_string_equal (zv_msg_error_text (back), "bad name '?" "?'");
    zv_msg_destroy (&back);
    zv_msg_destroy (&reply);
    zv_msg_destroy (&request);
}

//  zv_msg: malformed input

static void
test_msg_truncated_envelope (void **state)
{
    (void) state;
    zv_msg_t *msg = zv_msg_new ("api.server_create");
    json_t *body = s_valid_body (zv_msg_def (msg), true);
    zv_msg_set_body (msg, &body);
    zmsg_t *zmsg = zv_msg_encode (msg);
    zframe_t *envelope = zmsg_last (zmsg);
    size_t size = zframe_size (envelope);
    //  The same envelope with an empty body ends with "b" {} (a1 62 80):
    //  a cut at or after that key leaves every envelope key before it whole,
    //  so the reply can still name the request.
    json_t *empty = json_object ();
    zv_msg_set_body (msg, &empty);
    zmsg_t *bare = zv_msg_encode (msg);
    size_t body_key_at = zframe_size (zmsg_last (bare)) - 3;
    zmsg_destroy (&bare);
    for (size_t len = 0; len < size; len++) {
        zv_msg_t *bad = s_decode_raw ("api.server_create", zframe_data (envelope), len);
        assert_int_equal (zv_msg_status (bad), ZV_EINVAL);
        assert_true (zv_test_has (zv_msg_error_text (bad), "envelope: truncated"));
        assert_int_equal (json_object_size (zv_msg_body (bad)), 0);
        zv_msg_t *reply = zv_msg_error (bad, zv_msg_status (bad), "%s", zv_msg_error_text (bad));
        assert_string_equal (zv_msg_re (reply), len >= body_key_at ? zv_msg_id (msg) : "");
        assert_string_equal (zv_msg_rq (reply), len >= body_key_at ? zv_msg_rq (msg) : "");
        zv_msg_destroy (&reply);
        zv_msg_destroy (&bad);
    }
    //  Trailing garbage.
    unsigned char *longer = malloc (size + 1);
    memcpy (longer, zframe_data (envelope), size);
    longer [size] = 0xc0;
    zv_msg_t *bad = s_decode_raw ("api.server_create", longer, size + 1);
    assert_int_equal (zv_msg_status (bad), ZV_EINVAL);
    assert_true (zv_test_has (zv_msg_error_text (bad), "trailing"));
    assert_string_equal (zv_msg_id (bad), zv_msg_id (msg));
    assert_int_equal (json_object_size (zv_msg_body (bad)), 0);
    zv_msg_destroy (&bad);
    free (longer);
    zmsg_destroy (&zmsg);
    zv_msg_destroy (&msg);
}

static void
test_msg_bad_envelopes (void **state)
{
    (void) state;
    //  Each case edits the base envelope (api.ping, valid) by one key.
    struct { const char *key; json_t *value; zv_status_t status; const char *reason; } cases [] = {
        { "v",  json_integer (2),     ZV_EINVAL, "unsupported wire version" },
        { "v",  json_string ("1"),    ZV_EINVAL, "unsupported wire version" },
        { "v",  NULL,                 ZV_EINVAL, "unsupported wire version" },
        { "id", NULL,                 ZV_EINVAL, "'id'" },
        { "id", json_string (""),     ZV_EINVAL, "'id'" },
        { "id", json_integer (1),     ZV_EINVAL, "'id'" },
        { "id", json_string ("0123456789012345678901234567890123456789012345678901234567890123456789"),
                                      ZV_EINVAL, "'id'" },
        { "rq", json_integer (1),     ZV_EINVAL, "'rq'" },
        { "re", json_integer (1),     ZV_EINVAL, "'re'" },
        { "ts", NULL,                 ZV_EINVAL, "'ts'" },
        { "ts", json_string ("now"),  ZV_EINVAL, "'ts'" },
        { "src", NULL,                ZV_EINVAL, "'src'" },
        { "src", json_true (),        ZV_EINVAL, "'src'" },
        { "dl", json_integer (-5),    ZV_EINVAL, "'dl'" },
        { "dl", json_real (5.0),      ZV_EINVAL, "'dl'" },
        { "b",  json_array (),        ZV_EINVAL, "body is not a map" },
        { "b",  json_string ("x"),    ZV_EINVAL, "body is not a map" },
        { "e",  json_pack ("{s:s, s:s}", "c", "conflict", "m", "x"),
                                      ZV_EINVAL, "both 'b' and 'e'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        json_t *envelope = s_base_envelope ();
        if (cases [i].value)
            json_object_set_new (envelope, cases [i].key, cases [i].value);
        else
            json_object_del (envelope, cases [i].key);
        zv_msg_t *msg = s_decode_json ("api.ping", envelope);
        assert_int_equal (zv_msg_status (msg), cases [i].status);
        assert_true (zv_test_has (zv_msg_error_text (msg), cases [i].reason));
        assert_string_equal (zv_msg_type (msg), "api.ping");
        if (!streq (cases [i].key, "id"))
            assert_string_equal (zv_msg_id (msg), "t-1");
        zv_msg_destroy (&msg);
        json_decref (envelope);
    }
    //  The base itself is fine; unknown envelope keys are ignored.
    json_t *envelope = s_base_envelope ();
    json_object_set_new (envelope, "zz", json_integer (1));
    zv_msg_t *msg = s_decode_json ("api.ping", envelope);
    assert_int_equal (zv_msg_status (msg), ZV_OK);
    zv_msg_destroy (&msg);

    //  Error replies: e only on replies, well formed, never status ok.
    json_object_del (envelope, "b");
    json_object_set_new (envelope, "e", json_pack ("{s:s, s:s}", "c", "conflict", "m", "x"));
    msg = s_decode_json ("api.ping", envelope);
    assert_true (zv_test_has (zv_msg_error_text (msg), "not a reply"));
    zv_msg_destroy (&msg);
    json_object_set_new (envelope, "re", json_string ("r-1"));
    msg = s_decode_json ("api.ping", envelope);
    assert_int_equal (zv_msg_status (msg), ZV_ECONFLICT);
    assert_string_equal (zv_msg_error_text (msg), "x");
    zv_msg_destroy (&msg);
    json_object_set_new (envelope, "e", json_pack ("{s:s, s:s}", "c", "what", "m", "y"));
    msg = s_decode_json ("api.ping", envelope);
    assert_int_equal (zv_msg_status (msg), ZV_EINTERNAL);
    zv_msg_destroy (&msg);
    json_object_set_new (envelope, "e", json_pack ("{s:s, s:s}", "c", "ok", "m", "y"));
    msg = s_decode_json ("api.ping", envelope);
    assert_true (zv_test_has (zv_msg_error_text (msg), "status 'ok'"));
    zv_msg_destroy (&msg);
    json_object_set_new (envelope, "e", json_pack ("{s:i}", "c", 1));
    msg = s_decode_json ("api.ping", envelope);
    assert_true (zv_test_has (zv_msg_error_text (msg), "'e' must be"));
    zv_msg_destroy (&msg);
    json_decref (envelope);

    //  Unknown type: recovered enough to answer the sender.
    envelope = s_base_envelope ();
    msg = s_decode_json ("nosuch.thing", envelope);
    assert_int_equal (zv_msg_status (msg), ZV_EINVAL);
    assert_string_equal (zv_msg_error_text (msg), "unknown message type 'nosuch.thing'");
    assert_null (zv_msg_def (msg));
    zv_msg_t *reply = zv_msg_error (msg, zv_msg_status (msg), "%s", zv_msg_error_text (msg));
    assert_string_equal (zv_msg_re (reply), "t-1");
    assert_string_equal (zv_msg_rq (reply), "req-t");
    zv_msg_t *back = s_wire (reply);
    assert_int_equal (zv_msg_status (back), ZV_EINVAL);
    assert_string_equal (zv_msg_error_text (back), "unknown message type 'nosuch.thing'");
    zv_msg_destroy (&back);
    zv_msg_destroy (&reply);
    zv_msg_destroy (&msg);

    //  A request that breaks its row: missing required field.
    msg = s_decode_json ("api.flavor_show", envelope);
    assert_string_equal (zv_msg_error_text (msg), "api.flavor_show: missing field 'ref'");
    assert_non_null (zv_msg_def (msg));
    zv_msg_destroy (&msg);
    json_decref (envelope);
}

static void
test_msg_bad_frames (void **state)
{
    (void) state;
    json_t *envelope = s_base_envelope ();
    char *data;
    size_t size;
    assert_int_equal (zv_pack_encode (envelope, &data, &size), ZV_OK);
    json_decref (envelope);

    //  Empty or absent: NULL.
    assert_null (zv_msg_decode (NULL, false));
    zmsg_t *zmsg = NULL;
    assert_null (zv_msg_decode (&zmsg, false));
    zmsg = zmsg_new ();
    assert_null (zv_msg_decode (&zmsg, false));
    assert_null (zmsg);

    zv_msg_t *msg = s_decode_raw ("api.ping", NULL, 0);
    assert_true (zv_test_has (zv_msg_error_text (msg), "missing envelope frame"));
    zv_msg_destroy (&msg);

    //  Routing id only.
    zmsg = zmsg_new ();
    zmsg_addstr (zmsg, "peer");
    msg = zv_msg_decode (&zmsg, true);
    assert_true (zv_test_has (zv_msg_error_text (msg), "missing type frame"));
    assert_true (zframe_streq (zv_msg_routing_id (msg), "peer"));
    zv_msg_destroy (&msg);

    //  Too many frames.
    zmsg = zmsg_new ();
    zmsg_addstr (zmsg, "api.ping");
    zmsg_addmem (zmsg, data, size);
    zmsg_addstr (zmsg, "payload");
    zmsg_addstr (zmsg, "extra");
    msg = zv_msg_decode (&zmsg, false);
    assert_int_equal (zv_msg_status (msg), ZV_EINVAL);
    assert_true (zv_test_has (zv_msg_error_text (msg), "too many frames"));
    assert_string_equal (zv_msg_id (msg), "t-1");
    zv_msg_destroy (&msg);

    //  Bad type frames: empty, unprintable, too long.
    const char *types [] = { "", "api ping", "api.ping\n",
        "a.0123456789012345678901234567890123456789012345678901234567890123456789"
        "012345678901234567890123456789012345678901234567890123456789" };
    for (size_t i = 0; i < sizeof types / sizeof types [0]; i++) {
        msg = s_decode_raw (types [i], data, size);
        assert_int_equal (zv_msg_status (msg), ZV_EINVAL);
        assert_true (zv_test_has (zv_msg_error_text (msg), "invalid type frame"));
        assert_string_equal (zv_msg_id (msg), "t-1");
        assert_true (strlen (zv_msg_type (msg)) <= 128);
        zv_msg_t *reply = zv_msg_error (msg, ZV_EINVAL, "%s", zv_msg_error_text (msg));
        zmsg_t *out = zv_msg_encode (reply);
        assert_non_null (out);
        zmsg_destroy (&out);
        zv_msg_destroy (&reply);
        zv_msg_destroy (&msg);
    }

    //  Oversize frames.
    size_t huge = ZV_MSG_MAX_PAYLOAD + 1;
    char *big = calloc (1, huge);
    char *giant = calloc (1, ZV_MSG_MAX_BYTES + 1);
    msg = s_decode_raw ("api.ping", giant, ZV_MSG_MAX_BYTES + 1);
    assert_int_equal (zv_msg_status (msg), ZV_ETOOBIG);
    zv_msg_destroy (&msg);
    free (giant);
    //  A well-formed request over the request limit is refused too (a reply
    //  of that size is fine: listings are large).
    {
        zv_msg_t *request = zv_msg_new ("api.server_create");
        json_t *metadata = json_object ();
        char *value = malloc (60001);
        memset (value, 'x', 60000);
        value [60000] = 0;
        for (int index = 0; index < 20; index++) {
            char key [16];
            snprintf (key, sizeof key, "k%d", index);
            json_object_set_new (metadata, key, json_string (value));
        }
        json_t *body = json_pack ("{s:s, s:s, s:s, s:o}", "name", "n", "flavor", "f", "image", "i",
                                  "metadata", metadata);
        zv_msg_set_body (request, &body);
        assert_null (zv_msg_encode (request));          //  the sender refuses it
        zv_msg_t *reply = zv_msg_reply (request);
        json_t *reply_body = json_pack ("{s:O}", "metadata", metadata);
        zv_msg_set_body (reply, &reply_body);
        zmsg_t *wire = zv_msg_encode (reply);
        assert_non_null (wire);                          //  a large reply is fine
        zv_msg_t *back = zv_msg_decode (&wire, false);
        assert_int_equal (zv_msg_status (back), ZV_OK);
        zv_msg_destroy (&back);
        zv_msg_destroy (&reply);
        zv_msg_destroy (&request);
        free (value);
    }
    zmsg = zmsg_new ();
    zmsg_addstr (zmsg, "api.ping");
    zmsg_addmem (zmsg, data, size);
    zmsg_addmem (zmsg, big, huge);
    msg = zv_msg_decode (&zmsg, false);
    assert_int_equal (zv_msg_status (msg), ZV_ETOOBIG);
    assert_true (zv_test_has (zv_msg_error_text (msg), "payload"));
    zv_msg_destroy (&msg);
    //  ... and the sender refuses to make them.
    msg = zv_msg_new ("api.ping");
    zv_msg_set_payload (msg, big, huge);
    assert_null (zv_msg_encode (msg));
    zv_msg_destroy (&msg);
    free (big);
    free (data);

    //  Raw bytes: not a map, int key, invalid UTF-8, too deep, bin.
    struct { const char *hex; const char *reason; } raw [] = {
        { "93010203",               "envelope is not a map" },
        { "8101c0",                 "not a string" },
        { "81a3737263a2fffe",       "UTF-8" },
        { "9191919191919191919191919191919191c0", "nesting" },
        { "81a162c40100",           "bin" },
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw [0]; i++) {
        unsigned char bytes [64];
        size_t len = s_unhex (raw [i].hex, bytes);
        msg = s_decode_raw ("api.ping", bytes, len);
        assert_int_equal (zv_msg_status (msg), ZV_EINVAL);
        assert_true (zv_test_has (zv_msg_error_text (msg), raw [i].reason));
        zv_msg_destroy (&msg);
    }

    //  An unencodable body: zv_msg_encode says so with NULL.
    msg = zv_msg_new ("api.ping");
    json_t *body = json_object ();
    json_object_set_new (body, "x", json_stringn_nocheck ("\xff", 1));
    zv_msg_set_body (msg, &body);
    assert_null (zv_msg_encode (msg));
    zv_msg_destroy (&msg);
}

//  zv_msg: accessors, ids, sockets

static void
test_msg_accessors (void **state)
{
    (void) state;
    assert_null (zv_msg_new (NULL));
    assert_null (zv_msg_new (""));
    assert_null (zv_msg_new ("has space"));
    zv_msg_t *msg = zv_msg_new ("api.server_list");
    assert_int_equal (json_object_size (zv_msg_body (msg)), 0);
    assert_string_equal (zv_msg_src (msg), "");
    assert_int_equal (strncmp (zv_msg_rq (msg), "req-", 4), 0);
    assert_true (zv_uuid_valid (zv_msg_rq (msg) + 4));
    assert_true (zv_msg_ts (msg) > INT64_C (1600000000000));
    assert_int_equal (zv_msg_deadline (msg), 0);
    assert_int_equal (zv_msg_status (msg), ZV_OK);
    json_t *body = json_pack ("{s:b, s:i, s:s}", "all_projects", 1, "limit", 10, "host", "node1");
    zv_msg_set_body (msg, &body);
    assert_true (zv_msg_get_bool (msg, "all_projects", false));
    assert_true (zv_msg_get_bool (msg, "deleted", true));
    assert_false (zv_msg_get_bool (msg, "limit", false));
    assert_int_equal (zv_msg_get_int (msg, "limit", 5), 10);
    assert_int_equal (zv_msg_get_int (msg, "host", 5), 5);
    assert_string_equal (zv_msg_get_str (msg, "host"), "node1");
    assert_null (zv_msg_get_str (msg, "limit"));
    assert_null (zv_msg_get_str (msg, "none"));

    zv_msg_set_rq (msg, "req-fixed");
    zv_msg_set_src (msg, "cli");
    zv_msg_set_deadline (msg, 1234);
    zv_msg_set_id (msg, "abc-1");
    zv_msg_set_ts (msg, 99);
    char line [256];
    assert_string_equal (zv_msg_describe (msg, line, sizeof line),
                         "api.server_list id=abc-1 rq=req-fixed src=cli");
    zv_msg_t *copy = s_wire (msg);
    assert_int_equal (zv_msg_deadline (copy), 1234);
    assert_int_equal (zv_msg_ts (copy), 99);
    zv_msg_t *reply = zv_msg_error (copy, ZV_ENOTFOUND, "gone");
    zv_msg_set_src (reply, "api");
    zv_msg_set_id (reply, "def-2");
    assert_string_equal (zv_msg_describe (reply, line, sizeof line),
                         "api.server_list id=def-2 re=abc-1 rq=req-fixed src=api status=not_found");
    zv_msg_destroy (&reply);
    zv_msg_destroy (&copy);

    //  Over-long strings are cut to what the wire accepts.
    char long_src [300];
    memset (long_src, 's', sizeof long_src - 1);
    long_src [sizeof long_src - 1] = '\0';
    zv_msg_set_src (msg, long_src);
    assert_int_equal (strlen (zv_msg_src (msg)), 128);
    zv_msg_set_rq (msg, long_src);
    assert_int_equal (strlen (zv_msg_rq (msg)), 64);
    copy = s_wire (msg);
    assert_int_equal (zv_msg_status (copy), ZV_OK);
    zv_msg_destroy (&copy);

    //  Payloads.
    size_t size = 1;
    assert_null (zv_msg_payload (msg, &size));
    assert_int_equal (size, 0);
    zv_msg_set_payload (msg, "\0\1\2", 3);
    copy = s_wire (msg);
    const void *payload = zv_msg_payload (copy, &size);
    assert_int_equal (size, 3);
    assert_memory_equal (payload, "\0\1\2", 3);
    zv_msg_destroy (&copy);
    zv_msg_set_payload (msg, NULL, 0);
    assert_null (zv_msg_payload (msg, NULL));
    zv_msg_destroy (&msg);
}

#define S_ID_THREADS 4
#define S_ID_EACH    2000

static void *
s_make_ids (void *arg)
{
    char (*ids) [65] = arg;
    for (int i = 0; i < S_ID_EACH; i++) {
        zv_msg_t *msg = zv_msg_new ("compute.sync_now");
        strcpy (ids [i], zv_msg_id (msg));
        zv_msg_destroy (&msg);
    }
    return NULL;
}

static int
s_compare_ids (const void *a, const void *b)
{
    return strcmp (a, b);
}

static void
test_msg_ids_unique (void **state)
{
    (void) state;
    char (*ids) [65] = calloc (S_ID_THREADS * S_ID_EACH, 65);
    pthread_t threads [S_ID_THREADS];
    for (int t = 0; t < S_ID_THREADS; t++)
        pthread_create (&threads [t], NULL, s_make_ids, ids + t * S_ID_EACH);
    for (int t = 0; t < S_ID_THREADS; t++)
        pthread_join (threads [t], NULL);
    qsort (ids, S_ID_THREADS * S_ID_EACH, 65, s_compare_ids);
    for (int i = 1; i < S_ID_THREADS * S_ID_EACH; i++)
        assert_string_not_equal (ids [i - 1], ids [i]);
    assert_int_equal (ids [0][8], '-');
    free (ids);
}

static void
test_msg_sockets (void **state)
{
    (void) state;
    zsock_t *router = zsock_new_router ("inproc://test-proto");
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_identity (dealer, "compute.node1");
    assert_int_equal (zsock_connect (dealer, "inproc://test-proto"), 0);
    zsock_set_rcvtimeo (router, 2000);
    zsock_set_rcvtimeo (dealer, 2000);

    zv_msg_t *msg = zv_msg_new ("api.image_upload");
    char uuid [ZV_UUID_LEN + 1];
    zv_uuid_new (uuid);
    json_t *body = json_pack ("{s:s, s:i, s:b}", "id", uuid, "offset", 0, "last", 1);
    zv_msg_set_body (msg, &body);
    zv_msg_set_payload (msg, "chunk", 5);
    char id [65];
    strcpy (id, zv_msg_id (msg));
    assert_int_equal (zv_msg_send (&msg, dealer), 0);
    assert_null (msg);

    zv_msg_t *got = zv_msg_recv (router);
    assert_non_null (got);
    assert_int_equal (zv_msg_status (got), ZV_OK);
    assert_true (zframe_streq (zv_msg_routing_id (got), "compute.node1"));
    size_t size;
    assert_memory_equal (zv_msg_payload (got, &size), "chunk", 5);
    assert_string_equal (zv_msg_get_str (got, "id"), uuid);

    zv_msg_t *reply = zv_msg_reply (got);
    body = json_pack ("{s:i}", "received", 5);
    zv_msg_set_body (reply, &body);
    assert_int_equal (zv_msg_send (&reply, router), 0);
    zv_msg_t *answer = zv_msg_recv (dealer);
    assert_non_null (answer);
    assert_true (zv_msg_is_reply (answer));
    assert_string_equal (zv_msg_re (answer), id);
    assert_null (zv_msg_routing_id (answer));
    assert_int_equal (zv_msg_get_int (answer, "received", 0), 5);
    zv_msg_destroy (&answer);

    //  A gone peer on a mandatory ROUTER: -1 and EHOSTUNREACH.
    zsock_set_router_mandatory (router, 1);
    reply = zv_msg_error (got, ZV_EUNAVAILABLE, "later");
    zv_msg_set_routing_str (reply, "nobody");
    assert_int_equal (zv_msg_send (&reply, router), -1);
    assert_int_equal (errno, EHOSTUNREACH);
    assert_null (reply);
    zv_msg_t *none = NULL;
    assert_int_equal (zv_msg_send (&none, router), -1);
    zv_msg_destroy (&got);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}

//  Golden bytes

static zv_msg_t *
s_golden_server_create (void)
{
    zv_msg_t *msg = zv_msg_new ("api.server_create");
    zv_msg_set_id (msg, "0a1b2c3d-1");
    zv_msg_set_rq (msg, "req-00000000-0000-4000-8000-000000000001");
    zv_msg_set_ts (msg, INT64_C (1767225600000));
    zv_msg_set_src (msg, "cli");
    json_t *body = json_pack ("{s:s, s:s, s:s, s:i, s:i, s:{s:[s]}, s:{s:s}}",
                              "name", "web-1", "flavor", "m1.small", "image", "debian-12",
                              "min_count", 1, "max_count", 3,
                              "hints", "different_host", "web-0",
                              "metadata", "role", "web");
    zv_msg_set_body (msg, &body);
    return msg;
}

static zv_msg_t *
s_golden_error_reply (void)
{
    zv_msg_t *request = zv_msg_new ("conductor.instance_update");
    zv_msg_set_id (request, "0a1b2c3d-2");
    zv_msg_set_rq (request, "req-00000000-0000-4000-8000-000000000002");
    zv_msg_t *msg = zv_msg_error (request, ZV_ECONFLICT,
                                  "Cannot 'pause' instance %s while it is in vm_state %s",
                                  "4f1c2d3e-0000-4abc-8def-0123456789ab", "stopped");
    zv_msg_destroy (&request);
    zv_msg_set_id (msg, "5e6f7a8b-9");
    zv_msg_set_ts (msg, INT64_C (1767225600123));
    zv_msg_set_src (msg, "conductor");
    return msg;
}

static zv_msg_t *
s_golden_image_upload (void)
{
    zv_msg_t *msg = zv_msg_new ("api.image_upload");
    zv_msg_set_id (msg, "0a1b2c3d-3");
    zv_msg_set_rq (msg, "req-00000000-0000-4000-8000-000000000003");
    zv_msg_set_ts (msg, INT64_C (1767225600456));
    zv_msg_set_deadline (msg, INT64_C (1767225630456));
    zv_msg_set_src (msg, "cli");
    json_t *body = json_pack ("{s:s, s:I, s:b}", "id", "4f1c2d3e-0000-4abc-8def-0123456789ab",
                              "offset", (json_int_t) 4194304, "last", 0);
    zv_msg_set_body (msg, &body);
    zv_msg_set_payload (msg, "\x00\x01\x02zova\xff", 8);
    return msg;
}

static char *
s_frames_hex (zmsg_t *zmsg)
{
    size_t total = 256;
    for (zframe_t *f = zmsg_first (zmsg); f; f = zmsg_next (zmsg))
        total += 2 * zframe_size (f) + 1;
    char *text = malloc (total);
    size_t n = (size_t) sprintf (text,
        "# zova wire golden file: one frame per line, lowercase hex.\n"
        "# Regenerate with ZV_REGEN_GOLDEN=1 and review the diff.\n");
    for (zframe_t *f = zmsg_first (zmsg); f; f = zmsg_next (zmsg)) {
        const unsigned char *data = zframe_data (f);
        for (size_t i = 0; i < zframe_size (f); i++)
            n += (size_t) sprintf (text + n, "%02x", data [i]);
        text [n++] = '\n';
    }
    text [n] = '\0';
    return text;
}

static char *
s_read_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    fseek (file, 0, SEEK_SET);
    char *text = malloc ((size_t) size + 1);
    size_t got = fread (text, 1, (size_t) size, file);
    text [got] = '\0';
    fclose (file);
    return text;
}

static void
test_msg_golden (void **state)
{
    (void) state;
    struct { const char *name; zv_msg_t *(*build) (void); } cases [] = {
        { "server_create_request", s_golden_server_create },
        { "error_reply",           s_golden_error_reply },
        { "image_upload_payload",  s_golden_image_upload },
    };
    const char *regen = getenv ("ZV_REGEN_GOLDEN");
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char path [256];
        snprintf (path, sizeof path, S_GOLDEN_DIR "/%s.hex", cases [i].name);
        zv_msg_t *msg = cases [i].build ();
        zmsg_t *zmsg = zv_msg_encode (msg);
        assert_non_null (zmsg);
        char *text = s_frames_hex (zmsg);
        if (regen && streq (regen, "1")) {
            FILE *file = fopen (path, "wb");
            assert_non_null (file);
            fputs (text, file);
            fclose (file);
        }
        char *expect = s_read_file (path);
        if (!expect)
            fail_msg ("%s missing: run from the repository root, or regenerate "
                      "with ZV_REGEN_GOLDEN=1", path);
        if (!streq (text, expect))
            print_error ("%s differs:\n--- expected\n%s--- got\n%s", path, expect, text);
        assert_string_equal (text, expect);

        //  The golden bytes decode back to the same message.
        zv_msg_t *back = zv_msg_decode (&zmsg, false);
        assert_string_equal (zv_msg_type (back), zv_msg_type (msg));
        assert_string_equal (zv_msg_id (back), zv_msg_id (msg));
        assert_string_equal (zv_msg_rq (back), zv_msg_rq (msg));
        assert_int_equal (zv_msg_ts (back), zv_msg_ts (msg));
        assert_int_equal (zv_msg_status (back), zv_msg_status (msg));
        assert_string_equal (zv_msg_error_text (back), zv_msg_error_text (msg));
        assert_true (json_equal (zv_msg_body (back), zv_msg_body (msg)));
        zmsg_t *again = zv_msg_encode (back);
        char *text_again = s_frames_hex (again);
        assert_string_equal (text_again, text);
        free (text_again);
        zmsg_destroy (&again);
        zv_msg_destroy (&back);
        free (expect);
        free (text);
        zv_msg_destroy (&msg);
    }
}

//  Every byte of each golden envelope replaced by hostile values: decoding
//  must neither crash nor leak, and a good result must re-encode.
static void
test_msg_mutations (void **state)
{
    (void) state;
    zv_msg_t *(*builds []) (void) = {
        s_golden_server_create, s_golden_error_reply, s_golden_image_upload };
    const unsigned char values [] = { 0x00, 0x01, 0x7f, 0x80, 0x8f, 0x9f, 0xa0, 0xbf,
                                      0xc0, 0xc1, 0xc4, 0xca, 0xcf, 0xd3, 0xd9, 0xdb,
                                      0xdd, 0xdf, 0xe0, 0xff };
    for (size_t b = 0; b < sizeof builds / sizeof builds [0]; b++) {
        zv_msg_t *msg = builds [b] ();
        zmsg_t *zmsg = zv_msg_encode (msg);
        zframe_t *type = zmsg_first (zmsg);
        zframe_t *envelope = zmsg_next (zmsg);
        size_t size = zframe_size (envelope);
        unsigned char *copy = malloc (size);
        for (size_t i = 0; i < size; i++)
            for (size_t v = 0; v < sizeof values; v++) {
                memcpy (copy, zframe_data (envelope), size);
                copy [i] = values [v];
                zmsg_t *mutant = zmsg_new ();
                zmsg_addmem (mutant, zframe_data (type), zframe_size (type));
                zmsg_addmem (mutant, copy, size);
                zv_msg_t *got = zv_msg_decode (&mutant, false);
                assert_non_null (got);
                assert_true (zv_msg_status (got) < ZV_STATUS_COUNT);
                if (zv_msg_status (got) != ZV_OK)
                    assert_true (zv_msg_is_reply (got) || zv_msg_error_text (got) [0]);
                zmsg_t *again = zv_msg_encode (got);
                zmsg_destroy (&again);
                zv_msg_destroy (&got);
            }
        free (copy);
        zmsg_destroy (&zmsg);
        zv_msg_destroy (&msg);
    }
}

//  zv_pack recovery walkers and zv_msg recovery of an envelope whose body
//  fails to decode.  Inputs are packed by hand with msgpack-c, as a peer
//  that does not use zova would send them.

static void
s_pk_str (msgpack_packer *pk, const char *text)
{
    size_t len = strlen (text);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, text, len);
}

//  Bodies (values of b) that zv_pack_decode refuses.
static void
s_body_long_str (msgpack_packer *pk)
{
    size_t len = ZV_PACK_MAX_STR + 1;
    char *text = malloc (len);
    assert_non_null (text);
    memset (text, 'x', len);
    msgpack_pack_map (pk, 1);
    s_pk_str (pk, "name");
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, text, len);
    free (text);
}

static void
s_body_bad_utf8 (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_pk_str (pk, "name");
    msgpack_pack_str (pk, 2);
    msgpack_pack_str_body (pk, "\xff\xfe", 2);
}

static void
s_body_int_key (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    msgpack_pack_int (pk, 1);
    msgpack_pack_nil (pk);
}

static void
s_body_many (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_pk_str (pk, "list");
    msgpack_pack_array (pk, ZV_PACK_MAX_ITEMS + 1);
    for (int i = 0; i < ZV_PACK_MAX_ITEMS + 1; i++)
        msgpack_pack_nil (pk);
}

static void
s_body_deep (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_pk_str (pk, "x");
    for (int i = 0; i < ZV_PACK_MAX_DEPTH + 4; i++)
        msgpack_pack_array (pk, 1);
    msgpack_pack_nil (pk);
}

static void
s_body_big_int (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_pk_str (pk, "n");
    msgpack_pack_uint64 (pk, (uint64_t) INT64_MAX + 1);
}

static void
s_body_bin (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_pk_str (pk, "x");
    msgpack_pack_bin (pk, 3);
    msgpack_pack_bin_body (pk, "abc", 3);
}

static void
s_body_ext (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_pk_str (pk, "x");
    msgpack_pack_ext (pk, 5, 7);
    msgpack_pack_ext_body (pk, "abcde", 5);
}

static void
s_body_nan (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_pk_str (pk, "x");
    msgpack_pack_double (pk, NAN);
}

static void
s_body_empty (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 0);
}

//  One envelope entry: kind 's' string, 'i' integer, 'b' the body, 'k' an
//  integer key (with a nil value).
typedef struct {
    const char *key;
    char kind;
    const char *str;
    int64_t num;
} s_entry_t;

#define S_ENTRIES_MAX 10

static char *
s_pack_entries (const s_entry_t *entries, void (*body_fn) (msgpack_packer *), size_t *size_p)
{
    size_t count = 0;
    while (count < S_ENTRIES_MAX && entries [count].kind)
        count++;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, count);
    for (size_t i = 0; i < count; i++) {
        if (entries [i].kind == 'k') {
            msgpack_pack_int64 (&pk, entries [i].num);
            msgpack_pack_nil (&pk);
            continue;
        }
        s_pk_str (&pk, entries [i].key);
        if (entries [i].kind == 's')
            s_pk_str (&pk, entries [i].str);
        else
        if (entries [i].kind == 'i')
            msgpack_pack_int64 (&pk, entries [i].num);
        else
            body_fn (&pk);
    }
    *size_p = sbuf.size;
    return msgpack_sbuffer_release (&sbuf);
}

#define S_V     { "v", 'i', NULL, 1 }
#define S_ID    { "id", 's', "abc-1", 0 }
#define S_RQ    { "rq", 's', "req-xyz", 0 }
#define S_TS    { "ts", 'i', NULL, 1000 }
#define S_SRC   { "src", 's', "cli", 0 }
#define S_BODY  { "b", 'b', NULL, 0 }

static const struct {
    const char *name;
    void (*body_fn) (msgpack_packer *);
    zv_status_t status;
    const char *reason;
} s_bad_bodies [] = {
    { "long string",   s_body_long_str, ZV_ETOOBIG, "string of 65537 bytes exceeds 65536" },
    { "invalid UTF-8", s_body_bad_utf8, ZV_EINVAL,  "invalid UTF-8" },
    { "integer key",   s_body_int_key,  ZV_EINVAL,  "is not a string" },
    { "too many",      s_body_many,     ZV_ETOOBIG, "100001 entries exceed 100000" },
    { "too deep",      s_body_deep,     ZV_EINVAL,  "nesting deeper than 16" },
    { "big integer",   s_body_big_int,  ZV_EINVAL,  "beyond int64" },
    { "bin",           s_body_bin,      ZV_EINVAL,  "bin value" },
    { "ext",           s_body_ext,      ZV_EINVAL,  "ext value" },
    { "nan",           s_body_nan,      ZV_EINVAL,  "non-finite float" },
};
#define S_BAD_BODIES (sizeof s_bad_bodies / sizeof s_bad_bodies [0])

//  Envelopes whose own keys are sound, in several orders and shapes.
static const struct {
    const char *name;
    s_entry_t entries [S_ENTRIES_MAX];
    const char *re;                 //  a reply's re, or NULL
    int64_t deadline;
} s_sound_layouts [] = {
    { "request",    { S_V, S_ID, S_RQ, S_TS, S_SRC, S_BODY }, NULL, 0 },
    { "body first", { S_BODY, S_V, S_ID, S_RQ, S_TS, S_SRC }, NULL, 0 },
    { "reply",      { S_V, S_ID, { "re", 's', "r-9", 0 }, S_RQ, S_TS, S_SRC, S_BODY }, "r-9", 0 },
    { "deadline",   { S_V, S_ID, S_RQ, S_TS, S_SRC, { "dl", 'i', NULL, 5000 }, S_BODY }, NULL, 5000 },
    { "unknown key", { S_V, S_ID, S_BODY, { "zz", 'b', NULL, 0 }, S_RQ, S_TS, S_SRC }, NULL, 0 },
    { "duplicate",  { S_V, { "id", 's', "old-1", 0 }, S_ID, S_RQ, S_TS, S_SRC, S_BODY }, NULL, 0 },
    { "integer key", { S_V, S_ID, S_RQ, S_TS, S_SRC, S_BODY, { NULL, 'k', NULL, 3 } }, NULL, 0 },
};

//  Envelopes whose own keys are broken: no recovery, as before.
static const struct {
    const char *name;
    s_entry_t entries [S_ENTRIES_MAX];
} s_broken_layouts [] = {
    { "version 2",   { { "v", 'i', NULL, 2 }, S_ID, S_RQ, S_TS, S_SRC, S_BODY } },
    { "no version",  { S_ID, S_RQ, S_TS, S_SRC, S_BODY } },
    { "no id",       { S_V, S_RQ, S_TS, S_SRC, S_BODY } },
    { "empty id",    { S_V, { "id", 's', "", 0 }, S_RQ, S_TS, S_SRC, S_BODY } },
    { "integer id",  { S_V, { "id", 'i', NULL, 7 }, S_RQ, S_TS, S_SRC, S_BODY } },
    { "long id",     { S_V, { "id", 's', "0123456789012345678901234567890123456789012345678901234567890123456789", 0 },
                       S_RQ, S_TS, S_SRC, S_BODY } },
    { "integer rq",  { S_V, S_ID, { "rq", 'i', NULL, 7 }, S_TS, S_SRC, S_BODY } },
    { "integer re",  { S_V, S_ID, { "re", 'i', NULL, 7 }, S_RQ, S_TS, S_SRC, S_BODY } },
    { "string ts",   { S_V, S_ID, S_RQ, { "ts", 's', "now", 0 }, S_SRC, S_BODY } },
    { "no src",      { S_V, S_ID, S_RQ, S_TS, S_BODY } },
    { "negative dl", { S_V, S_ID, S_RQ, S_TS, S_SRC, { "dl", 'i', NULL, -1 }, S_BODY } },
    { "bad id last", { S_V, S_ID, S_RQ, S_TS, S_SRC, S_BODY, { "id", 'i', NULL, 7 } } },
    { "bad id body", { S_V, S_ID, S_RQ, S_TS, S_SRC, { "id", 'b', NULL, 0 } } },
};

static void
test_pack_skip (void **state)
{
    (void) state;
    //  Every form, followed by a marker byte the skip must stop at.
    const char *forms [] = {
        "00", "7f", "e0", "ff", "c0", "c2", "c3", "ca00000000", "cb0000000000000000",
        "cc01", "cd0001", "ce00000001", "cf0000000000000001",
        "d001", "d10001", "d200000001", "d30000000000000001",
        "a0", "a3616263", "d903616263", "da0003616263", "db00000003616263",
        "c403616263", "c50003616263", "c600000003616263",
        "d40101", "d5010102", "d60101020304", "d7010102030405060708",
        "d801" "0102030405060708090a0b0c0d0e0f10",
        "c702016162", "c80002016162", "c900000002016162",
        "90", "9201a161", "dc000201c0", "dd0000000201c0",
        "80", "81a16101", "de0001a16101", "df00000001a1618100c0",
        "9191919191919191919191919191919191919191c0",      //  deeper than decode allows
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms [0]; i++) {
        unsigned char bytes [64];
        size_t size = s_unhex (forms [i], bytes);
        bytes [size] = 0xc1;
        size_t pos = 0;
        assert_int_equal (zv_pack_skip (bytes, size + 1, &pos), ZV_OK);
        assert_int_equal (pos, size);
        //  Every truncation is refused and leaves pos alone.
        for (size_t len = 0; len < size; len++) {
            pos = 0;
            assert_int_equal (zv_pack_skip (bytes, len, &pos), ZV_EINVAL);
            assert_int_equal (pos, 0);
        }
    }
    //  Hostile headers fail at once, without believing the claims.
    const char *hostile [] = { "c1", "dfffffffff", "ddffffffff", "dbffffffff61",
                               "c6ffffffff", "c9ffffffff01", "dfffffffff" "a161" "dfffffffff" };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile [0]; i++) {
        unsigned char bytes [64];
        size_t size = s_unhex (hostile [i], bytes);
        size_t pos = 0;
        assert_int_equal (zv_pack_skip (bytes, size, &pos), ZV_EINVAL);
        assert_int_equal (pos, 0);
    }
    //  A long run of nesting is stepped over without recursion.
    size_t deep = 1000000;
    unsigned char *nest = malloc (deep + 1);
    memset (nest, 0x91, deep);
    nest [deep] = 0xc0;
    size_t pos = 0;
    assert_int_equal (zv_pack_skip (nest, deep + 1, &pos), ZV_OK);
    assert_int_equal (pos, deep + 1);
    pos = 0;
    assert_int_equal (zv_pack_skip (nest, deep, &pos), ZV_EINVAL);
    free (nest);
    //  Position past the end, NULL data, and a walk from the middle.
    unsigned char two [] = { 0x01, 0x02 };
    pos = 3;
    assert_int_equal (zv_pack_skip (two, 2, &pos), ZV_EINVAL);
    pos = 0;
    assert_int_equal (zv_pack_skip (NULL, 2, &pos), ZV_EINVAL);
    pos = 1;
    assert_int_equal (zv_pack_skip (two, 2, &pos), ZV_OK);
    assert_int_equal (pos, 2);
    pos = 2;
    assert_int_equal (zv_pack_skip (two, 2, &pos), ZV_EINVAL);
}

//  zv_pack_next reads each form's head: scalars whole, containers by count.
static void
test_pack_next (void **state)
{
    (void) state;
    struct { const char *hex; zv_pack_type_t type; int64_t integer; size_t count; size_t len; } forms [] = {
        { "c0", ZV_PACK_NIL, 0, 0, 1 },
        { "c2", ZV_PACK_BOOL, 0, 0, 1 },
        { "c3", ZV_PACK_BOOL, 1, 0, 1 },
        { "7f", ZV_PACK_INT, 127, 0, 1 },
        { "e0", ZV_PACK_INT, -32, 0, 1 },
        { "cd0102", ZV_PACK_INT, 258, 0, 3 },
        { "cf7fffffffffffffff", ZV_PACK_INT, INT64_MAX, 0, 9 },
        { "d0fe", ZV_PACK_INT, -2, 0, 2 },
        { "d1fffe", ZV_PACK_INT, -2, 0, 3 },
        { "d2fffffffe", ZV_PACK_INT, -2, 0, 5 },
        { "d38000000000000000", ZV_PACK_INT, INT64_MIN, 0, 9 },
        { "cb3ff8000000000000", ZV_PACK_REAL, 0, 0, 9 },
        { "ca3fc00000", ZV_PACK_REAL, 0, 0, 5 },
        { "a3616263", ZV_PACK_STR, 0, 3, 4 },
        { "d903616263", ZV_PACK_STR, 0, 3, 5 },
        { "da0003616263", ZV_PACK_STR, 0, 3, 6 },
        { "db00000003616263", ZV_PACK_STR, 0, 3, 8 },
        { "9201c0", ZV_PACK_ARRAY, 0, 2, 1 },
        { "dc000201c0", ZV_PACK_ARRAY, 0, 2, 3 },
        { "dd0000000201c0", ZV_PACK_ARRAY, 0, 2, 5 },
        { "81a16101", ZV_PACK_MAP, 0, 1, 1 },
        { "de0001a16101", ZV_PACK_MAP, 0, 1, 3 },
        { "df00000001a16101", ZV_PACK_MAP, 0, 1, 5 },
        { "c403616263", ZV_PACK_OTHER, 0, 0, 5 },
        { "d5010102", ZV_PACK_OTHER, 0, 0, 4 },
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms [0]; i++) {
        unsigned char bytes [64];
        size_t size = s_unhex (forms [i].hex, bytes);
        zv_pack_item_t item;
        size_t pos = 0;
        assert_int_equal (zv_pack_next (bytes, size, &pos, &item), ZV_OK);
        assert_int_equal (item.type, forms [i].type);
        assert_int_equal (pos, forms [i].len);
        if (item.type == ZV_PACK_INT || item.type == ZV_PACK_BOOL)
            assert_true (item.integer == forms [i].integer);
        if (item.type == ZV_PACK_STR) {
            assert_int_equal (item.len, forms [i].count);
            assert_memory_equal (item.str, "abc", 3);
        }
        if (item.type == ZV_PACK_ARRAY || item.type == ZV_PACK_MAP)
            assert_int_equal (item.count, forms [i].count);
        if (item.type == ZV_PACK_REAL)
            assert_true (item.real == 1.5);
        //  A scalar cut short is refused and leaves pos alone.
        if (item.type != ZV_PACK_ARRAY && item.type != ZV_PACK_MAP)
            for (size_t len = 0; len < size; len++) {
                pos = 0;
                assert_int_equal (zv_pack_next (bytes, len, &pos, &item), ZV_EINVAL);
                assert_int_equal (pos, 0);
            }
    }
    //  Refused: 0xc1, a uint beyond int64, a string longer than the data,
    //  NULL data, a position at the end.
    const char *bad [] = { "c1", "cf8000000000000000", "dbffffffff61", "c6ffffffff" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        unsigned char bytes [64];
        size_t size = s_unhex (bad [i], bytes);
        zv_pack_item_t item;
        size_t pos = 0;
        assert_int_equal (zv_pack_next (bytes, size, &pos, &item), ZV_EINVAL);
        assert_int_equal (pos, 0);
    }
    unsigned char one [] = { 0x01 };
    zv_pack_item_t item;
    size_t pos = 0;
    assert_int_equal (zv_pack_next (NULL, 1, &pos, &item), ZV_EINVAL);
    pos = 1;
    assert_int_equal (zv_pack_next (one, 1, &pos, &item), ZV_EINVAL);
    //  A walk over {a: [1, "b"]} item by item.
    unsigned char bytes [16];
    size_t size = s_unhex ("81a1619201a162", bytes);
    pos = 0;
    zv_pack_type_t walk [] = { ZV_PACK_MAP, ZV_PACK_STR, ZV_PACK_ARRAY, ZV_PACK_INT, ZV_PACK_STR };
    for (size_t i = 0; i < sizeof walk / sizeof walk [0]; i++) {
        assert_int_equal (zv_pack_next (bytes, size, &pos, &item), ZV_OK);
        assert_int_equal (item.type, walk [i]);
    }
    assert_int_equal (pos, size);
}

static void
test_pack_peek_map (void **state)
{
    (void) state;
    enum { A, B, C, N, KEYS };
    zv_pack_peek_t keys [KEYS] = {
        [A] = { .key = "a", .kind = ZV_PACK_PEEK_STR, .max_len = 4 },
        [B] = { .key = "b", .kind = ZV_PACK_PEEK_INT },
        [C] = { .key = "c", .kind = ZV_PACK_PEEK_STR, .max_len = 4 },
        [N] = { .key = "n", .kind = ZV_PACK_PEEK_INT },
    };
    //  {a: "xy", b: -2, zz: <bad body>, n: 2^63-1}: c absent.
    unsigned char bytes [64];
    size_t size = s_unhex ("84a161a27879a162fea27a7ac40100a16ecf7fffffffffffffff", bytes);
    assert_int_equal (zv_pack_peek_map (bytes, size, keys, KEYS), ZV_OK);
    assert_int_equal (keys [A].found, 1);
    assert_int_equal (keys [A].len, 2);
    assert_memory_equal (keys [A].str, "xy", 2);
    assert_int_equal (keys [B].found, 1);
    assert_int_equal (keys [B].integer, -2);
    assert_int_equal (keys [C].found, 0);
    assert_int_equal (keys [N].found, 1);
    assert_true (keys [N].integer == INT64_MAX);

    //  Integer forms, and what a key of each kind refuses.
    struct { const char *hex; int found_a; int found_b; int64_t b; } cases [] = {
        { "81a162d0fe",                 0, 1, -2 },
        { "81a162d1ff00",               0, 1, -256 },
        { "81a162d2ffff0000",           0, 1, -65536 },
        { "81a162d3ffffffffffffffff",   0, 1, -1 },
        { "81a162cc80",                 0, 1, 128 },
        { "81a162cd0100",               0, 1, 256 },
        { "81a162ce00010000",           0, 1, 65536 },
        { "81a162cf8000000000000000",   0, -1, 0 },      //  beyond int64
        { "81a162a131",                 0, -1, 0 },      //  a string
        { "81a162ca3f800000",           0, -1, 0 },      //  a float
        { "81a161a56162636465",         -1, 0, 0 },      //  longer than max_len
        { "81a161a2fffe",               -1, 0, 0 },      //  invalid UTF-8
        { "81a161a20061",               -1, 0, 0 },      //  NUL
        { "81a16101",                   -1, 0, 0 },      //  an integer
        { "81a161d9026162",             1, 0, 0 },       //  str 8
        { "82a16101a161a0",             1, 0, 0 },       //  the last duplicate wins
        { "82a161a0a16101",             -1, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        size = s_unhex (cases [i].hex, bytes);
        assert_int_equal (zv_pack_peek_map (bytes, size, keys, KEYS), ZV_OK);
        assert_int_equal (keys [A].found, cases [i].found_a);
        assert_int_equal (keys [B].found, cases [i].found_b);
        assert_true (keys [B].integer == cases [i].b);
    }
    //  Keys that are not strings are stepped over and match nothing.
    size = s_unhex ("83" "01a161" "c4016101" "a162d0fe", bytes);
    keys [A].found = 7;
    assert_int_equal (zv_pack_peek_map (bytes, size, keys, KEYS), ZV_OK);
    assert_int_equal (keys [A].found, 0);
    assert_int_equal (keys [B].found, 1);
    assert_int_equal (keys [B].integer, -2);

    //  Not one whole map: refused, but what came before the break stands
    //  (a value the data cuts short reads as present and unusable).
    struct { const char *hex; int found_a; int found_b; } broken [] = {
        { "",                           0, 0 },
        { "c0",                         0, 0 },
        { "91a161",                     0, 0 },
        { "de",                         0, 0 },
        { "de00",                       0, 0 },
        { "dfffffffff",                 0, 0 },
        { "80c0",                       0, 0 },         //  bytes after the map
        { "81a161",                     -1, 0 },        //  value missing
        { "81a161a37878",               -1, 0 },        //  value cut short
        { "82a161a27879",               1, 0 },         //  second entry missing
        { "83a161a27879a162",           1, -1 },
        { "82a161a27879a162" "02" "c1", 1, 1 },         //  then a byte after the map
        { "83a161a27879" "a17a" "dfffffffff" "a16201", 1, 0 },  //  a claim, then data ends
        { "82a16201" "a161a2fffe" "00", -1, 1 },
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken [0]; i++) {
        size = s_unhex (broken [i].hex, bytes);
        keys [C].found = 7;
        assert_int_equal (zv_pack_peek_map (bytes, size, keys, KEYS), ZV_EINVAL);
        assert_int_equal (keys [A].found, broken [i].found_a);
        assert_int_equal (keys [B].found, broken [i].found_b);
        assert_int_equal (keys [C].found, 0);
        assert_int_equal (keys [N].found, 0);
        if (keys [A].found == 1)
            assert_memory_equal (keys [A].str, "xy", 2);
        if (keys [A].found != 1)
            assert_null (keys [A].str);
    }
    assert_int_equal (zv_pack_peek_map (NULL, 4, keys, KEYS), ZV_EINVAL);
    size = s_unhex ("80", bytes);
    assert_int_equal (zv_pack_peek_map (bytes, size, NULL, 0), ZV_OK);
    size = s_unhex ("de0000", bytes);
    assert_int_equal (zv_pack_peek_map (bytes, size, keys, KEYS), ZV_OK);
}

//  Decode an envelope under api.ping, as read from a ROUTER.
static zv_msg_t *
s_decode_routed (const void *envelope, size_t size)
{
    zmsg_t *zmsg = zmsg_new ();
    zmsg_addstr (zmsg, "client-7");
    zmsg_addstr (zmsg, "api.ping");
    zmsg_addmem (zmsg, envelope, size);
    zv_msg_t *msg = zv_msg_decode (&zmsg, true);
    assert_non_null (msg);
    return msg;
}

static void
test_msg_body_failure_keeps_envelope (void **state)
{
    (void) state;
    for (size_t i = 0; i < S_BAD_BODIES; i++)
        for (size_t l = 0; l < sizeof s_sound_layouts / sizeof s_sound_layouts [0]; l++) {
            size_t size;
            char *envelope = s_pack_entries (s_sound_layouts [l].entries,
                                             s_bad_bodies [i].body_fn, &size);
            //  The decoder itself refuses it, for the body's reason.
            json_t *value = NULL;
            char reason [256];
            assert_int_equal (zv_pack_decode (envelope, size, &value, reason, sizeof reason),
                              s_bad_bodies [i].status);
            assert_null (value);

            zv_msg_t *msg = s_decode_routed (envelope, size);
            if (zv_msg_status (msg) != s_bad_bodies [i].status)
                print_error ("%s / %s: %s\n", s_bad_bodies [i].name,
                             s_sound_layouts [l].name, zv_msg_error_text (msg));
            assert_int_equal (zv_msg_status (msg), s_bad_bodies [i].status);
            assert_true (zv_test_has (zv_msg_error_text (msg), s_bad_bodies [i].reason));
            assert_string_equal (zv_msg_id (msg), "abc-1");
            assert_string_equal (zv_msg_rq (msg), "req-xyz");
            assert_string_equal (zv_msg_src (msg), "cli");
            assert_int_equal (zv_msg_ts (msg), 1000);
            assert_int_equal (zv_msg_deadline (msg), s_sound_layouts [l].deadline);
            assert_int_equal (zv_msg_is_reply (msg), s_sound_layouts [l].re != NULL);
            if (s_sound_layouts [l].re)
                assert_string_equal (zv_msg_re (msg), s_sound_layouts [l].re);
            else
                assert_non_null (zv_msg_def (msg));
            assert_int_equal (json_object_size (zv_msg_body (msg)), 0);

            //  The error reply goes back to the same peer, matched to the request.
            zv_msg_t *reply = zv_msg_error (msg, zv_msg_status (msg), "%s", zv_msg_error_text (msg));
            assert_true (zframe_streq (zv_msg_routing_id (reply), "client-7"));
            zv_msg_set_routing_id (reply, &(zframe_t *) { NULL });
            zv_msg_t *back = s_wire (reply);
            assert_true (zv_msg_is_reply (back));
            assert_string_equal (zv_msg_re (back), "abc-1");
            assert_string_equal (zv_msg_rq (back), "req-xyz");
            assert_int_equal (zv_msg_status (back), s_bad_bodies [i].status);
            assert_string_equal (zv_msg_error_text (back), zv_msg_error_text (msg));
            zv_msg_destroy (&back);
            zv_msg_destroy (&reply);
            zv_msg_destroy (&msg);
            free (envelope);
        }

    //  The same layouts with a good body (also under the unknown key) are
    //  plain valid messages, but for the integer key, which the decoder
    //  refuses and the recovery steps over.
    for (size_t l = 0; l < sizeof s_sound_layouts / sizeof s_sound_layouts [0]; l++) {
        size_t size;
        char *envelope = s_pack_entries (s_sound_layouts [l].entries, s_body_empty, &size);
        zv_msg_t *msg = s_decode_routed (envelope, size);
        if (streq (s_sound_layouts [l].name, "integer key")) {
            assert_int_equal (zv_msg_status (msg), ZV_EINVAL);
            assert_true (zv_test_has (zv_msg_error_text (msg), "is not a string"));
        }
        else
            assert_int_equal (zv_msg_status (msg), ZV_OK);
        assert_string_equal (zv_msg_id (msg), "abc-1");
        assert_string_equal (zv_msg_rq (msg), "req-xyz");
        zv_msg_destroy (&msg);
        free (envelope);
    }
}

static void
test_msg_body_failure_broken_envelope (void **state)
{
    (void) state;
    //  The envelope's own keys are broken too: nothing is recovered.
    for (size_t l = 0; l < sizeof s_broken_layouts / sizeof s_broken_layouts [0]; l++) {
        size_t size;
        char *envelope = s_pack_entries (s_broken_layouts [l].entries, s_body_bad_utf8, &size);
        zv_msg_t *msg = s_decode_routed (envelope, size);
        if (zv_msg_id (msg) [0])
            print_error ("%s: recovered id '%s'\n", s_broken_layouts [l].name, zv_msg_id (msg));
        assert_int_equal (zv_msg_status (msg), ZV_EINVAL);
        assert_string_equal (zv_msg_id (msg), "");
        assert_string_equal (zv_msg_rq (msg), "");
        assert_false (zv_msg_is_reply (msg));
        assert_int_equal (json_object_size (zv_msg_body (msg)), 0);
        zv_msg_t *reply = zv_msg_error (msg, zv_msg_status (msg), "%s", zv_msg_error_text (msg));
        assert_string_equal (zv_msg_re (reply), "");
        zv_msg_destroy (&reply);
        zv_msg_destroy (&msg);
        free (envelope);
    }
}

//  Bodies whose headers claim more than follows, as a hostile peer sends
//  them: the frame ends inside the body.
static void
s_body_claims_array (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_pk_str (pk, "junk");
    msgpack_pack_array (pk, UINT32_MAX);
}

static void
s_body_claims_map (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_pk_str (pk, "junk");
    msgpack_pack_map (pk, UINT32_MAX);
}

static void
s_body_claims_few (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_pk_str (pk, "junk");
    msgpack_pack_array (pk, 1000);
}

static void
test_msg_cut_or_padded_envelope (void **state)
{
    (void) state;
    //  A frame that ends inside the body still has whole envelope keys
    //  before it: they are read, and the reply names the request.
    struct { void (*body_fn) (msgpack_packer *); zv_status_t status; } cut [] = {
        { s_body_claims_array, ZV_ETOOBIG },
        { s_body_claims_map,   ZV_ETOOBIG },
        { s_body_claims_few,   ZV_EINVAL },
    };
    const size_t layouts [] = { 0, 2 };     //  request and reply, b last
    for (size_t i = 0; i < sizeof cut / sizeof cut [0]; i++)
        for (size_t l = 0; l < sizeof layouts / sizeof layouts [0]; l++) {
            size_t size;
            char *envelope = s_pack_entries (s_sound_layouts [layouts [l]].entries,
                                             cut [i].body_fn, &size);
            zv_msg_t *msg = s_decode_routed (envelope, size);
            assert_int_equal (zv_msg_status (msg), cut [i].status);
            assert_string_equal (zv_msg_id (msg), "abc-1");
            assert_string_equal (zv_msg_rq (msg), "req-xyz");
            assert_int_equal (zv_msg_is_reply (msg), s_sound_layouts [layouts [l]].re != NULL);
            zv_msg_t *reply = zv_msg_error (msg, zv_msg_status (msg), "%s", zv_msg_error_text (msg));
            zv_msg_set_routing_id (reply, &(zframe_t *) { NULL });
            zv_msg_t *back = s_wire (reply);
            assert_string_equal (zv_msg_re (back), "abc-1");
            assert_string_equal (zv_msg_rq (back), "req-xyz");
            zv_msg_destroy (&back);
            zv_msg_destroy (&reply);
            zv_msg_destroy (&msg);
            free (envelope);
        }

    //  Every cut of an envelope whose body is last: named once all the keys
    //  before "b" are whole, anonymous before that.
    size_t size, bare_size;
    char *envelope = s_pack_entries (s_sound_layouts [0].entries, s_body_bad_utf8, &size);
    char *bare = s_pack_entries (s_sound_layouts [0].entries, s_body_empty, &bare_size);
    size_t body_key_at = bare_size - 3;     //  "b" (a1 62) and {} (80) end it
    free (bare);
    for (size_t len = 0; len < size; len++) {
        zv_msg_t *msg = s_decode_routed (envelope, len);
        assert_int_equal (zv_msg_status (msg), ZV_EINVAL);
        assert_true (zv_test_has (zv_msg_error_text (msg), "truncated"));
        assert_int_equal (json_object_size (zv_msg_body (msg)), 0);
        assert_string_equal (zv_msg_id (msg), len >= body_key_at ? "abc-1" : "");
        assert_string_equal (zv_msg_rq (msg), len >= body_key_at ? "req-xyz" : "");
        zv_msg_destroy (&msg);
    }

    //  Bytes after the map: the keys are all whole.
    char *longer = malloc (size + 1);
    memcpy (longer, envelope, size);
    longer [size] = (char) 0xc0;
    zv_msg_t *msg = s_decode_routed (longer, size + 1);
    assert_int_equal (zv_msg_status (msg), ZV_EINVAL);
    assert_true (zv_test_has (zv_msg_error_text (msg), "UTF-8"));
    assert_string_equal (zv_msg_id (msg), "abc-1");
    zv_msg_destroy (&msg);
    free (longer);
    free (envelope);
    envelope = s_pack_entries (s_sound_layouts [0].entries, s_body_empty, &size);
    longer = malloc (size + 1);
    memcpy (longer, envelope, size);
    longer [size] = 0x01;
    msg = s_decode_routed (longer, size + 1);
    assert_int_equal (zv_msg_status (msg), ZV_EINVAL);
    assert_true (zv_test_has (zv_msg_error_text (msg), "trailing"));
    assert_string_equal (zv_msg_id (msg), "abc-1");
    assert_string_equal (zv_msg_rq (msg), "req-xyz");
    zv_msg_destroy (&msg);
    free (longer);
    free (envelope);
}

//  The walkers against one input: never crash, agree with the decoder (what
//  it accepts, they accept, spanning all of it), and the peek keeps its
//  pointers inside the input.
static void
s_walk_check (const unsigned char *bytes, size_t size)
{
    enum { ID, TS, KEYS };
    zv_pack_peek_t keys [KEYS] = {
        [ID] = { .key = "id", .kind = ZV_PACK_PEEK_STR, .max_len = 64 },
        [TS] = { .key = "ts", .kind = ZV_PACK_PEEK_INT },
    };
    size_t pos = 0;
    zv_status_t skipped = zv_pack_skip (bytes, size, &pos);
    assert_true (skipped == ZV_OK ? pos <= size : pos == 0);
    zv_status_t peeked = zv_pack_peek_map (bytes, size, keys, KEYS);
    if (peeked == ZV_OK) {
        assert_int_equal (skipped, ZV_OK);
        assert_int_equal (pos, size);
    }
    if (keys [ID].found == 1) {
        assert_true ((const unsigned char *) keys [ID].str >= bytes);
        assert_true ((const unsigned char *) keys [ID].str + keys [ID].len <= bytes + size);
        assert_true (keys [ID].len <= 64);
    }
    else
        assert_null (keys [ID].str);
    json_t *value = NULL;
    if (zv_pack_decode (bytes, size, &value, NULL, 0) == ZV_OK) {
        assert_int_equal (skipped, ZV_OK);
        assert_int_equal (pos, size);
        if (json_is_object (value))
            assert_int_equal (peeked, ZV_OK);
        json_decref (value);
    }
}

static void
test_msg_recovery_robust (void **state)
{
    (void) state;
    const unsigned char values [] = { 0x00, 0x01, 0x7f, 0x80, 0x8f, 0x9f, 0xa0, 0xbf,
                                      0xc0, 0xc1, 0xc4, 0xc7, 0xca, 0xcf, 0xd3, 0xd4,
                                      0xd9, 0xdb, 0xdd, 0xdf, 0xe0, 0xff };
    //  Truncations of every recoverable envelope: refused by the peek
    //  (msgpack is prefix-free), and decoded with the envelope's own keys
    //  or without any (never a part of them, never a body).  Each
    //  walk is linear, so all truncations of a body of 100001 items (walked
    //  item by item) would be quadratic: those get both ends and a stride.
    for (size_t i = 0; i < S_BAD_BODIES; i++)
        for (size_t l = 0; l < sizeof s_sound_layouts / sizeof s_sound_layouts [0]; l++) {
            size_t size;
            unsigned char *envelope = (unsigned char *) s_pack_entries (
                s_sound_layouts [l].entries, s_bad_bodies [i].body_fn, &size);
            for (size_t len = 0; len < size; len++) {
                if (s_bad_bodies [i].body_fn == s_body_many
                &&  len > 256 && size - len > 256 && len % 4099)
                    continue;
                enum { ID, KEYS };
                zv_pack_peek_t keys [KEYS] = {
                    [ID] = { .key = "id", .kind = ZV_PACK_PEEK_STR, .max_len = 64 } };
                assert_int_equal (zv_pack_peek_map (envelope, len, keys, KEYS), ZV_EINVAL);
                size_t pos = 0;
                assert_int_equal (zv_pack_skip (envelope, len, &pos), ZV_EINVAL);
                if (size < 4096) {
                    s_walk_check (envelope, len);
                    zv_msg_t *msg = s_decode_raw ("api.ping", envelope, len);
                    assert_int_not_equal (zv_msg_status (msg), ZV_OK);
                    assert_int_equal (json_object_size (zv_msg_body (msg)), 0);
                    if (zv_msg_id (msg) [0]) {
                        assert_string_equal (zv_msg_id (msg), "abc-1");
                        assert_string_equal (zv_msg_rq (msg), "req-xyz");
                        assert_string_equal (zv_msg_src (msg), "cli");
                    }
                    else
                        assert_string_equal (zv_msg_rq (msg), "");
                    zv_msg_destroy (&msg);
                }
            }
            //  Every byte of the small ones replaced by hostile values.
            if (size < 4096)
                for (size_t at = 0; at < size; at++)
                    for (size_t v = 0; v < sizeof values; v++) {
                        unsigned char saved = envelope [at];
                        envelope [at] = values [v];
                        s_walk_check (envelope, size);
                        zv_msg_t *msg = s_decode_raw ("api.ping", envelope, size);
                        assert_true (zv_msg_status (msg) < ZV_STATUS_COUNT);
                        zmsg_t *again = zv_msg_encode (msg);
                        zmsg_destroy (&again);
                        zv_msg_destroy (&msg);
                        envelope [at] = saved;
                    }
            free (envelope);
        }
    //  The golden corpus: every truncation and every mutation.
    zv_msg_t *(*builds []) (void) = {
        s_golden_server_create, s_golden_error_reply, s_golden_image_upload };
    for (size_t b = 0; b < sizeof builds / sizeof builds [0]; b++) {
        zv_msg_t *msg = builds [b] ();
        zmsg_t *zmsg = zv_msg_encode (msg);
        zmsg_first (zmsg);                  //  the type frame
        zframe_t *envelope = zmsg_next (zmsg);
        size_t size = zframe_size (envelope);
        unsigned char *copy = malloc (size);
        memcpy (copy, zframe_data (envelope), size);
        s_walk_check (copy, size);
        for (size_t len = 0; len < size; len++)
            s_walk_check (copy, len);
        for (size_t at = 0; at < size; at++)
            for (size_t v = 0; v < sizeof values; v++) {
                unsigned char saved = copy [at];
                copy [at] = values [v];
                s_walk_check (copy, size);
                copy [at] = saved;
            }
        free (copy);
        zmsg_destroy (&zmsg);
        zv_msg_destroy (&msg);
    }
}

//  zv_pack_check refuses what zv_pack_decode refuses, with the same reason;
//  zv_pack_decode_defer leaves one top-level key out, spanned.
static void
test_pack_check_and_defer (void **state)
{
    (void) state;
    json_t *value = json_pack ("{s:i, s:{s:s, s:[i, f, n, b]}, s:s}",
                               "v", 1, "b", "name", "x\xc3\xa9", "list", 7, 1.5, 1, "id", "m-1");
    char *data;
    size_t size;
    assert_int_equal (zv_pack_encode (value, &data, &size), ZV_OK);
    char reason [128], again [128];
    assert_int_equal (zv_pack_check (data, size, reason, sizeof reason), ZV_OK);
    for (size_t cut = 0; cut < size; cut++) {
        json_t *decoded = NULL;
        zv_status_t want = zv_pack_decode (data, cut, &decoded, reason, sizeof reason);
        assert_int_not_equal (want, ZV_OK);
        assert_int_equal (zv_pack_check (data, cut, again, sizeof again), want);
        assert_string_equal (again, reason);
    }
    json_t *envelope = NULL;
    size_t at, span;
    assert_int_equal (zv_pack_decode_defer (data, size, "b", &envelope, &at, &span,
                                            reason, sizeof reason), ZV_OK);
    assert_null (json_object_get (envelope, "b"));
    assert_string_equal (json_string_value (json_object_get (envelope, "id")), "m-1");
    json_t *body = NULL;
    assert_int_equal (zv_pack_decode (data + at, span, &body, NULL, 0), ZV_OK);
    assert_true (json_equal (body, json_object_get (value, "b")));
    json_decref (body);
    json_decref (envelope);
    assert_int_equal (zv_pack_decode_defer (data, size, "absent", &envelope, &at, &span,
                                            NULL, 0), ZV_OK);
    assert_int_equal (span, 0);
    assert_true (json_equal (envelope, value));
    json_decref (envelope);
    //  Bad UTF-8 inside the deferred value still fails the decode.
    static const uint8_t bad [] = { 0x81, 0xa1, 'b', 0x81, 0xa1, 'k', 0xa1, 0xff };
    assert_int_equal (zv_pack_decode_defer (bad, sizeof bad, "b", &envelope, &at, &span,
                                            reason, sizeof reason), ZV_EINVAL);
    assert_null (envelope);
    free (data);
    json_decref (value);
}

//  Raw values encode verbatim; the hand writer and map edit give the bytes
//  the tree encoder gives.
static void
test_pack_raw_and_writer (void **state)
{
    (void) state;
    json_t *rec = json_pack ("{s:i, s:s, s:s, s:i, s:s}", "_rv", 1, "uuid", "u-1",
                             "name", "a name longer than thirty-two bytes, surely", "created_ms", 5,
                             "status", "old");
    char *rec_data;
    size_t rec_size;
    assert_int_equal (zv_pack_encode (rec, &rec_data, &rec_size), ZV_OK);
    zv_pack_buf_t buf = { 0 };
    assert_int_equal (zv_pack_put_array (&buf, 1), ZV_OK);
    static const char *const drop [] = { "_rv", "created_ms" };
    const zv_pack_set_t set [] = { { "status", "\xa3new", 4 }, { "id", "\xa2u2", 3 },
                                   { "unset", NULL, 0 } };
    assert_int_equal (zv_pack_put_map_edit (&buf, rec_data, rec_size, drop, 2, set, 3), ZV_OK);
    assert_int_equal (zv_pack_put_map_edit (&buf, rec_data, rec_size - 1, drop, 2, set, 3), ZV_EINVAL);
    json_t *want = json_pack ("[{s:s, s:s, s:s, s:s}]", "uuid", "u-1",
                              "name", "a name longer than thirty-two bytes, surely",
                              "status", "new", "id", "u2");
    char *want_data;
    size_t want_size;
    assert_int_equal (zv_pack_encode (want, &want_data, &want_size), ZV_OK);
    assert_int_equal (buf.size, want_size);
    assert_memory_equal (buf.data, want_data, want_size);
    //  Wrapped as a raw value, the bytes go out unchanged inside a tree.
    json_t *body = json_pack ("{s:o}", "servers", zv_pack_raw (buf.data, buf.size));
    json_t *tree = json_pack ("{s:O}", "servers", want);
    char *a, *b;
    size_t alen, blen;
    assert_int_equal (zv_pack_encode (body, &a, &alen), ZV_OK);
    assert_int_equal (zv_pack_encode (tree, &b, &blen), ZV_OK);
    assert_int_equal (alen, blen);
    assert_memory_equal (a, b, alen);
    //  Long strings and wide headers.
    zv_pack_buf_t wide = { 0 };
    char text [300];
    memset (text, 'x', sizeof text);
    assert_int_equal (zv_pack_put_map (&wide, 20), ZV_OK);
    assert_int_equal (zv_pack_put_str (&wide, text, 200), ZV_OK);
    assert_int_equal (zv_pack_put_str (&wide, text, 300), ZV_OK);
    assert_int_equal (wide.data [0], 0xde);
    assert_int_equal (wide.data [3], 0xd9);
    assert_int_equal (wide.data [3 + 2 + 200], 0xda);
    zv_pack_buf_free (&wide);
    zv_pack_buf_free (&wide);
    free (a);
    free (b);
    free (want_data);
    free (rec_data);
    json_decref (body);
    json_decref (tree);
    json_decref (want);
    json_decref (rec);
    zv_pack_buf_free (&buf);
}

//  A decoded reply keeps its body as bytes until read; moving it relays
//  those bytes unchanged.
static void
test_msg_body_bytes_and_move (void **state)
{
    (void) state;
    zv_msg_t *request = zv_msg_new ("api.server_list");
    zv_msg_t *reply = zv_msg_reply (request);
    json_t *body = json_pack ("{s:[{s:s}]}", "servers", "id", "x");
    json_t *expect = json_deep_copy (body);
    zv_msg_set_body (reply, &body);
    zv_msg_t *answer = s_wire (reply);
    assert_int_equal (zv_msg_status (answer), ZV_OK);
    size_t size = 0;
    assert_non_null (zv_msg_body_bytes (answer, &size));
    assert_true (size > 0);
    zv_msg_t *relay = zv_msg_reply (request);
    zv_msg_move_body (relay, answer);
    assert_null (zv_msg_body_bytes (answer, &size));
    assert_int_equal (json_object_size (zv_msg_body (answer)), 0);
    zv_msg_t *client = s_wire (relay);
    assert_true (json_equal (zv_msg_body (client), expect));
    assert_null (zv_msg_body_bytes (client, &size));
    assert_int_equal (size, 0);
    //  A request's body is built at once (the catalogue checks it).
    zv_msg_t *copy = s_wire (request);
    assert_null (zv_msg_body_bytes (copy, &size));
    zv_msg_destroy (&copy);
    zv_msg_destroy (&client);
    zv_msg_destroy (&relay);
    zv_msg_destroy (&answer);
    zv_msg_destroy (&reply);
    zv_msg_destroy (&request);
    json_decref (expect);
}

//  The request context travels in the envelope ("cx"): round trip, what
//  a malformed one gets, and role names.
static void
test_msg_context (void **state)
{
    (void) state;
    zv_msg_t *msg = zv_msg_new ("conductor.server_list");
    zv_msg_set_src (msg, "api.test");
    assert_null (zv_msg_context (msg));
    zv_context_t context = { .project_id = "p-1", .user_id = "alice",
                             .roles = ZV_ROLE_MEMBER | ZV_ROLE_READER };
    zv_msg_set_context (msg, &context);
    zv_msg_t *copy = s_wire (msg);
    assert_int_equal (zv_msg_status (copy), ZV_OK);
    const zv_context_t *got = zv_msg_context (copy);
    assert_non_null (got);
    assert_string_equal (got->project_id, "p-1");
    assert_string_equal (got->user_id, "alice");
    assert_int_equal (got->roles, ZV_ROLE_MEMBER | ZV_ROLE_READER);
    assert_false (zv_context_is_admin (got));
    //  A reply carries none.
    zv_msg_t *reply = zv_msg_reply (copy);
    assert_null (zv_msg_context (reply));
    zv_msg_destroy (&reply);
    zv_msg_destroy (&copy);
    zv_msg_set_context (msg, NULL);
    copy = s_wire (msg);
    assert_null (zv_msg_context (copy));
    zv_msg_destroy (&copy);
    zv_msg_destroy (&msg);

    assert_int_equal (zv_context_roles_parse ("admin, member,reader"),
                      ZV_ROLE_ADMIN | ZV_ROLE_MEMBER | ZV_ROLE_READER);
    assert_int_equal (zv_context_roles_parse ("member,wizard"), ZV_ROLE_MEMBER);
    assert_int_equal (zv_context_roles_parse (""), 0);
    assert_int_equal (zv_context_roles_parse (NULL), 0);
    zv_context_t admin = { .roles = ZV_ROLE_ADMIN };
    assert_true (zv_context_is_admin (&admin));
    assert_false (zv_context_is_admin (NULL));

    //  Unknown role names are ignored; malformed contexts are refused.
    json_t *envelope = s_base_envelope ();
    json_object_set_new (envelope, "cx", json_pack ("{s:s, s:s, s:[s,s]}", "p", "p", "u", "u",
                                                    "r", "admin", "wizard"));
    zv_msg_t *decoded = s_decode_json ("api.ping", envelope);
    assert_int_equal (zv_msg_status (decoded), ZV_OK);
    assert_int_equal (zv_msg_context (decoded)->roles, ZV_ROLE_ADMIN);
    zv_msg_destroy (&decoded);
    json_decref (envelope);
    json_t *bad [] = {
        json_string ("admin"),
        json_pack ("{s:s, s:s}", "p", "p", "u", "u"),
        json_pack ("{s:i, s:s, s:[]}", "p", 1, "u", "u", "r"),
        json_pack ("{s:s, s:s, s:[i]}", "p", "p", "u", "u", "r", 1),
        json_pack ("{s:s, s:s, s:[]}", "p", "0123456789012345678901234567890123456789012345678901234567890123456789",
                   "u", "u", "r"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        envelope = s_base_envelope ();
        json_object_set_new (envelope, "cx", bad [i]);
        decoded = s_decode_json ("api.ping", envelope);
        assert_int_equal (zv_msg_status (decoded), ZV_EINVAL);
        assert_true (zv_test_has (zv_msg_error_text (decoded), "envelope: 'cx'"));
        zv_msg_destroy (&decoded);
        json_decref (envelope);
    }
}

//  What the encoder writes, the decoder accepts: a body nested as deep as
//  an envelope allows is sent and read back; one level more is refused
//  when it is encoded, not when the peer reads it.
static void
test_msg_depth_bound (void **state)
{
    (void) state;
    for (int depth = 1; depth <= ZV_PACK_MAX_DEPTH + 1; depth++) {
        json_t *value = json_string ("leaf");
        for (int level = 1; level < depth; level++)
            value = json_pack ("{s:o}", "d", value);
        //  The body map is one level, its "v" value the rest.
        json_t *body = json_pack ("{s:o}", "v", value);
        zv_msg_t *request = zv_msg_new ("api.ping");
        zv_msg_t *msg = zv_msg_reply (request);
        zv_msg_destroy (&request);
        zv_msg_set_body (msg, &body);
        zmsg_t *zmsg = zv_msg_encode (msg);
        //  envelope (0) > body (1) > value: the value's deepest container
        //  sits at depth + 0 and must stay below ZV_PACK_MAX_DEPTH.
        bool fits = depth + 1 <= ZV_PACK_MAX_DEPTH;
        if (!fits) {
            assert_null (zmsg);
            zv_msg_destroy (&msg);
            continue;
        }
        assert_non_null (zmsg);
        zv_msg_t *back = zv_msg_decode (&zmsg, false);
        if (zv_msg_status (back) != ZV_OK)
            fail_msg ("depth %d: encoded but not decoded: %s", depth, zv_msg_error_text (back));
        assert_non_null (json_object_get (zv_msg_body (back), "v"));
        zv_msg_destroy (&back);
        zv_msg_destroy (&msg);
    }
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_common_status),
        cmocka_unit_test (test_common_uuid),
        cmocka_unit_test (test_common_time),
        cmocka_unit_test (test_common_log),
        cmocka_unit_test (test_pack_canonical_bytes),
        cmocka_unit_test (test_pack_decode_forms),
        cmocka_unit_test (test_pack_decode_rejects),
        cmocka_unit_test (test_pack_limits),
        cmocka_unit_test (test_pack_roundtrip_values),
        cmocka_unit_test (test_catalogue_table),
        cmocka_unit_test (test_catalogue_validate),
        cmocka_unit_test (test_msg_roundtrip_every_type),
        cmocka_unit_test (test_msg_context),
        cmocka_unit_test (test_msg_depth_bound),
        cmocka_unit_test (test_msg_wrong_field_on_wire),
        cmocka_unit_test (test_msg_error_reply),
        cmocka_unit_test (test_msg_request_stub),
        cmocka_unit_test (test_msg_truncated_envelope),
        cmocka_unit_test (test_msg_bad_envelopes),
        cmocka_unit_test (test_msg_bad_frames),
        cmocka_unit_test (test_msg_accessors),
        cmocka_unit_test (test_msg_ids_unique),
        cmocka_unit_test (test_msg_sockets),
        cmocka_unit_test (test_msg_golden),
        cmocka_unit_test (test_msg_mutations),
        cmocka_unit_test (test_pack_skip),
        cmocka_unit_test (test_pack_next),
        cmocka_unit_test (test_pack_peek_map),
        cmocka_unit_test (test_msg_body_failure_keeps_envelope),
        cmocka_unit_test (test_msg_body_failure_broken_envelope),
        cmocka_unit_test (test_msg_cut_or_padded_envelope),
        cmocka_unit_test (test_msg_recovery_robust),
        cmocka_unit_test (test_pack_check_and_defer),
        cmocka_unit_test (test_pack_raw_and_writer),
        cmocka_unit_test (test_msg_body_bytes_and_move),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
