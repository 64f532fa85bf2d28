/*  test_domain.c: domain XML from an instance record (zv_domain_xml).

    Golden files: each tests/data/domain/<case>.json (an instance record as
    the conductor stores it) gives <case>.test.xml and <case>.qemu.xml, the
    XML for libvirt's test driver and for QEMU.  ZV_REGEN_GOLDEN=1 rewrites
    them; review the diff.  Every generated document is also defined on
    libvirt's in-process test driver (test:///default), which parses it: a
    document that is not well-formed, or that libvirt reads differently
    (uuid, name, memory, vcpus, zova's metadata), fails here rather than in
    a compute host's build.  Run from the repository root.                  */

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
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "../../actors/zv_virt.h"

#define S_GOLDEN_DIR "tests/data/domain"
#define S_ZOVA_NS    "https://zova.dev/xmlns/instance/1"

//  Helpers

static json_t *
s_load (const char *path)
{
    json_error_t jerr;
    json_t *instance = json_load_file (path, 0, &jerr);
    if (!instance)
        fail_msg ("%s:%d: %s", path, jerr.line, jerr.text);
    return instance;
}

static void
s_quiet (void *data, virErrorPtr error)
{
    (void) data; (void) error;
}

//  Define xml on libvirt's test driver and check what libvirt read back;
//  the domain is undefined again.  The test driver runs only domains of
//  type 'test', so another type is checked under that one (the rest of the
//  document is the same).  NULL when it parsed, else libvirt's message
//  (caller frees).
static char *
s_define (const json_t *instance, const char *xml)
{
    const char *uuid = json_string_value (json_object_get (instance, "uuid"));
    const json_t *flavor = json_object_get (instance, "flavor");
    char *text = strdup (xml);
    char *type = strstr (text, "<domain type='");
    assert_non_null (type);
    char *quote = strchr (type + 14, '\'');
    assert_non_null (quote);
    char *fixed = NULL;
    assert_true (asprintf (&fixed, "%.*stest%s", (int) (type + 14 - text), text, quote) > 0);
    free (text);

    virConnectPtr conn = virConnectOpen ("test:///default");
    assert_non_null (conn);
    char *problem = NULL;
    virDomainPtr domain = virDomainDefineXML (conn, fixed);
    free (fixed);
    if (!domain) {
        virErrorPtr error = virGetLastError ();
        problem = strdup (error && error->message ? error->message : "virDomainDefineXML failed");
        virConnectClose (conn);
        return problem;
    }
    char *desc = virDomainGetXMLDesc (domain, 0);
    assert_non_null (desc);
    char expect [256];
    snprintf (expect, sizeof expect, "<uuid>%s</uuid>", uuid);
    assert_true (zv_test_has (desc, expect));
    snprintf (expect, sizeof expect, "<name>" ZV_DOMAIN_PREFIX "%s</name>", uuid);
    assert_true (zv_test_has (desc, expect));
    snprintf (expect, sizeof expect, ">%lld</memory>",
              (long long) json_integer_value (json_object_get (flavor, "ram_mb")) * 1024);
    assert_true (zv_test_has (desc, expect));
    snprintf (expect, sizeof expect, ">%lld</vcpu>",
              (long long) json_integer_value (json_object_get (flavor, "vcpus")));
    assert_true (zv_test_has (desc, expect));
    free (desc);

    //  zova's metadata survives, under its namespace.
    char *metadata = virDomainGetMetadata (domain, VIR_DOMAIN_METADATA_ELEMENT, S_ZOVA_NS, 0);
    assert_non_null (metadata);
    assert_true (zv_test_has (metadata, "instance"));
    free (metadata);

    assert_int_equal (virDomainUndefine (domain), 0);
    virDomainFree (domain);
    virConnectClose (conn);
    return NULL;
}

//  Golden files, and each one parsed by libvirt

static void
test_domain_golden (void **state)
{
    (void) state;
    static const char *types [] = { "test", "qemu" };
    bool regen = getenv ("ZV_REGEN_GOLDEN") && *getenv ("ZV_REGEN_GOLDEN") == '1';
    glob_t found;
    assert_int_equal (glob (S_GOLDEN_DIR "/*.json", 0, NULL, &found), 0);
    assert_true (found.gl_pathc >= 3);
    size_t failed = 0;
    for (size_t index = 0; index < found.gl_pathc; index++) {
        const char *json_path = found.gl_pathv [index];
        json_t *instance = s_load (json_path);
        for (size_t type = 0; type < sizeof types / sizeof types [0]; type++) {
            char *xml = zv_domain_xml (instance, types [type]);
            assert_non_null (xml);
            char out_path [1024];
            snprintf (out_path, sizeof out_path, "%.*s.%s.xml",
                      (int) (strlen (json_path) - 5), json_path, types [type]);
            if (regen) {
                FILE *file = fopen (out_path, "w");
                assert_non_null (file);
                fputs (xml, file);
                fclose (file);
            }
            else {
                char *expected = zv_test_slurp (out_path);
                if (!expected)
                    fail_msg ("%s is missing: regenerate with ZV_REGEN_GOLDEN=1", out_path);
                if (strcmp (expected, xml) != 0) {
                    print_error ("%s (%s) gives\n%swhere %s expects\n%s",
                                 json_path, types [type], xml, out_path, expected);
                    failed++;
                }
                free (expected);
            }
            char *problem = s_define (instance, xml);
            if (problem) {
                print_error ("%s (%s): libvirt refuses the XML: %s\n", json_path, types [type], problem);
                free (problem);
                failed++;
            }
            free (xml);
        }
        json_decref (instance);
    }
    globfree (&found);
    if (failed)
        fail_msg ("%zu domain documents differ or do not parse", failed);
}

//  The parts that matter, asserted directly

static void
test_domain_type_and_ids (void **state)
{
    (void) state;
    json_t *instance = s_load (S_GOLDEN_DIR "/small.json");
    char *xml = zv_domain_xml (instance, "kvm");
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<domain type='kvm'>"));
    assert_true (zv_test_has (xml, "<name>zova-4f1c2a0e-8d3b-4c55-9a6e-0b7d2f1e9c31</name>"));
    assert_true (zv_test_has (xml, "<uuid>4f1c2a0e-8d3b-4c55-9a6e-0b7d2f1e9c31</uuid>"));
    assert_true (zv_test_has (xml, "<memory unit='MiB'>2048</memory>"));
    assert_true (zv_test_has (xml, "<vcpu>1</vcpu>"));
    assert_true (zv_test_has (xml, "<zova:name>web-1</zova:name>"));
    assert_true (zv_test_has (xml, "<zova:flavor id='1'>m1.small</zova:flavor>"));
    assert_true (zv_test_has (xml, "<zova:image id='7d2b4e6a-1c3f-4a5b-9e8d-0f1a2b3c4d5e'/>"));
    assert_true (zv_test_has (xml, "<zova:project id='admin'/>"));
    free (xml);
    json_decref (instance);
}

//  Every character XML gives a meaning to is escaped, in text and in
//  attributes alike; nothing of the user's text appears raw.
static void
test_domain_escaping (void **state)
{
    (void) state;
    json_t *instance = s_load (S_GOLDEN_DIR "/special_chars.json");
    char *xml = zv_domain_xml (instance, "test");
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<zova:name>&lt;web&amp;&apos;db&quot;&gt;</zova:name>"));
    assert_true (zv_test_has (xml, "<zova:flavor id='x&apos;1'>tiny &amp; &lt;fast&gt;</zova:flavor>"));
    assert_true (zv_test_has (xml, "<zova:image id='img&quot;&amp;&apos;&lt;&gt;'/>"));
    assert_true (zv_test_has (xml, "<zova:project id='team &quot;blue&quot; &amp; &lt;ops&gt;'/>"));
    assert_null (strstr (xml, "<web"));
    assert_null (strstr (xml, "<ops>"));
    assert_null (strstr (xml, "<fast>"));

    //  libvirt reads the name back as the user wrote it.
    virConnectPtr conn = virConnectOpen ("test:///default");
    assert_non_null (conn);
    virDomainPtr domain = virDomainDefineXML (conn, xml);
    assert_non_null (domain);
    char *metadata = virDomainGetMetadata (domain, VIR_DOMAIN_METADATA_ELEMENT, S_ZOVA_NS, 0);
    assert_non_null (metadata);
    //  Re-serialised by libxml2: quotes need no escape in text.
    assert_true (zv_test_has (metadata, "&lt;web&amp;'db\"&gt;"));
    free (metadata);
    assert_int_equal (virDomainUndefine (domain), 0);
    virDomainFree (domain);
    virConnectClose (conn);
    free (xml);
    json_decref (instance);
}

//  A server name is any string the api accepts; control characters cannot
//  be written in XML 1.0 even escaped, so the document must leave them out
//  (or replace them) rather than make every build of such a server fail.
static void
test_domain_control_chars_in_name (void **state)
{
    (void) state;
    json_t *instance = s_load (S_GOLDEN_DIR "/small.json");
    json_object_set_new (instance, "name", json_string ("bell\x07 esc\x1b tab\t end"));
    char *xml = zv_domain_xml (instance, "test");
    assert_non_null (xml);
    char *problem = s_define (instance, xml);
    free (xml);
    json_decref (instance);
    if (problem) {
        print_error ("libvirt refuses the XML of a name with control characters: %s\n", problem);
        free (problem);
        fail ();
    }
}

//  A record without a flavor or image still gives a document (zeroes and
//  empty ids): generation never crashes on a partial record.
static void
test_domain_partial_record (void **state)
{
    (void) state;
    json_t *instance = json_pack ("{s:s}", "uuid", "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b");
    char *xml = zv_domain_xml (instance, "test");
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<uuid>5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b</uuid>"));
    assert_true (zv_test_has (xml, "<memory unit='MiB'>0</memory>"));
    assert_true (zv_test_has (xml, "<zova:name></zova:name>"));
    assert_true (zv_test_has (xml, "<zova:image id=''/>"));
    assert_true (zv_test_has (xml, "</domain>\n"));
    free (xml);
    json_decref (instance);
}

int
main (void)
{
    zv_log_level = -1;
    //  Expected refusals are reported by the tests themselves.
    virSetErrorFunc (NULL, s_quiet);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_domain_golden),
        cmocka_unit_test (test_domain_type_and_ids),
        cmocka_unit_test (test_domain_escaping),
        cmocka_unit_test (test_domain_control_chars_in_name),
        cmocka_unit_test (test_domain_partial_record),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
