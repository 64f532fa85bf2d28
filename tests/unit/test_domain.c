/*  test_domain.c: domain XML from an instance record (zv_domain_xml).

    Golden files: each tests/data/domain/<case>.json (an instance record as
    the conductor stores it) gives <case>.test.xml and <case>.qemu.xml, the
    XML for libvirt's test driver and for QEMU.  A case whose record
    carries "_spec" (the zv_domain_spec_t fields by name: what compute
    prepared on the host) is generated with that spec, and also gives
    <case>.kvm.xml; the key is taken out of the record first, as the
    conductor's records have no such key.  ZV_REGEN_GOLDEN=1 rewrites the
    golden files; review the diff.

    Every generated document is also defined on libvirt's in-process test
    driver (test:///default), which parses it: a document that is not
    well-formed, or that libvirt reads differently (uuid, name, memory,
    vcpus, zova's metadata; for a spec, disks, serial log, the serial
    console's kind and TCP host and port, agent channel, VNC listen
    address, NIC), fails here rather than in a compute host's build.  QEMU documents are also checked against libvirt's schema with
    virt-xml-validate when it is installed.  Run from the repository root. */

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
#include <sys/wait.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "virt/zv_virt.h"

#define S_GOLDEN_DIR "tests/data/domain"
#define S_ZOVA_NS    "https://zova.dev/xmlns/instance/1"
#define S_AGENT      "org.qemu.guest_agent.0"

//  The fields of zv_domain_spec_t, by the names "_spec" uses: strings,
//  and integers (S_INT).
#define S_FIELD(name) { #name, offsetof (zv_domain_spec_t, name), false }
#define S_INT(name)   { #name, offsetof (zv_domain_spec_t, name), true }
static const struct {
    const char *name;
    size_t offset;
    bool integer;
} s_spec_fields [] = {
    S_FIELD (instance_dir), S_FIELD (disk), S_FIELD (disk_local), S_FIELD (disk_swap),
    S_FIELD (kernel), S_FIELD (ramdisk), S_FIELD (cmdline),
    S_FIELD (rescue_disk), S_FIELD (rescue_kernel), S_FIELD (rescue_ramdisk),
    S_FIELD (rescue_cmdline), S_FIELD (console_log), S_FIELD (vnc_listen),
    S_FIELD (nic), S_FIELD (mac), S_FIELD (serial_host), S_INT (serial_port),
};

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

//  Take "_spec" out of instance into *spec; returns the spec object, which
//  holds the strings spec points to (caller decrefs), or NULL when the
//  case has none.  A key that names no field, or a value not of the
//  field's type, fails the test: a misspelt field would silently test
//  nothing.
static json_t *
s_spec_take (const char *path, json_t *instance, zv_domain_spec_t *spec)
{
    memset (spec, 0, sizeof *spec);
    json_t *object = json_object_get (instance, "_spec");
    if (!object)
        return NULL;
    json_incref (object);
    json_object_del (instance, "_spec");
    const char *key;
    json_t *value;
    json_object_foreach (object, key, value) {
        size_t index = 0;
        size_t count = sizeof s_spec_fields / sizeof s_spec_fields [0];
        while (index < count && strcmp (s_spec_fields [index].name, key) != 0)
            index++;
        if (index == count
        ||  !(s_spec_fields [index].integer ? json_is_integer (value) : json_is_string (value)))
            fail_msg ("%s: _spec.%s is not a field of zv_domain_spec_t of that type", path, key);
        char *field = (char *) spec + s_spec_fields [index].offset;
        if (s_spec_fields [index].integer)
            *(int *) field = (int) json_integer_value (value);
        else
            *(const char **) field = json_string_value (value);
    }
    return object;
}

static bool
s_set (const char *value)
{
    return value && *value;
}

//  Text as libvirt writes it in an attribute.
static void
s_escape (char *buffer, size_t size, const char *text)
{
    size_t used = 0;
    buffer [0] = 0;
    for (; *text; text++) {
        const char *piece;
        char one [2] = { *text, 0 };
        switch (*text) {
            case '<':  piece = "&lt;"; break;
            case '>':  piece = "&gt;"; break;
            case '&':  piece = "&amp;"; break;
            case '\'': piece = "&apos;"; break;
            case '"':  piece = "&quot;"; break;
            default:   piece = one;
        }
        used += (size_t) snprintf (buffer + used, size - used, "%s", piece);
        assert_true (used < size);
    }
}

static void
s_quiet (void *data, virErrorPtr error)
{
    (void) data; (void) error;
}

//  How many times part occurs in text.
static size_t
s_count (const char *text, const char *part)
{
    size_t count = 0;
    for (const char *at = strstr (text, part); at; at = strstr (at + 1, part))
        count++;
    return count;
}

//  What libvirt read back of a spec's devices, against what the spec asks
//  for (worked out here independently of the generator).
static void
s_check_devices (const char *desc, const zv_domain_spec_t *spec)
{
    const char *disks [3] = { NULL };
    size_t disk_count = 0;
    if (s_set (spec->rescue_disk)) {
        disks [disk_count++] = spec->rescue_disk;
        if (s_set (spec->disk))
            disks [disk_count++] = spec->disk;
    }
    else {
        const char *all [] = { spec->disk, spec->disk_local, spec->disk_swap };
        for (size_t index = 0; index < 3; index++)
            if (s_set (all [index]))
                disks [disk_count++] = all [index];
    }
    char escaped [1024];
    char expect [1200];
    assert_int_equal (s_count (desc, "<disk type='file' device='disk'>"), disk_count);
    for (size_t index = 0; index < disk_count; index++) {
        s_escape (escaped, sizeof escaped, disks [index]);
        snprintf (expect, sizeof expect, "<source file='%s'/>", escaped);
        assert_true (zv_test_has (desc, expect));
        //  The target that follows this source is the disk's own.
        const char *target = strstr (strstr (desc, expect), "<target ");
        snprintf (expect, sizeof expect, "<target dev='vd%c' bus='virtio'/>", (char) ('a' + index));
        assert_non_null (target);
        if (strncmp (target, expect, strlen (expect)) != 0)
            fail_msg ("disk %s: expected %s, libvirt read %.40s", disks [index], expect, target);
    }
    if (s_set (spec->console_log)) {
        s_escape (escaped, sizeof escaped, spec->console_log);
        snprintf (expect, sizeof expect, "<log file='%s' append='on'/>", escaped);
        assert_true (zv_test_has (desc, expect));
    }
    if (spec->serial_port > 0) {
        //  Raw TCP, listening where the spec says (loopback by default),
        //  for the serial port and the console libvirt mirrors from it.
        assert_true (zv_test_has (desc, "<serial type='tcp'>"));
        assert_true (zv_test_has (desc, "<console type='tcp'>"));
        s_escape (escaped, sizeof escaped, s_set (spec->serial_host) ? spec->serial_host : "127.0.0.1");
        snprintf (expect, sizeof expect, "<source mode='bind' host='%s' service='%d'/>",
                  escaped, spec->serial_port);
        assert_int_equal (s_count (desc, expect), 2);
        assert_int_equal (s_count (desc, "<protocol type='raw'/>"), 2);
        assert_true (zv_test_has (desc, "<target type='serial' port='0'/>"));
    }
    else
    if (s_set (spec->console_log)) {
        assert_true (zv_test_has (desc, "<serial type='pty'>"));
        assert_true (zv_test_has (desc, "<console type='pty'>"));
    }
    else
        assert_null (strstr (desc, "<serial"));
    assert_true (zv_test_has (desc, "<target type='virtio' name='" S_AGENT "'"));
    if (s_set (spec->vnc_listen)) {
        s_escape (escaped, sizeof escaped, spec->vnc_listen);
        snprintf (expect, sizeof expect, "listen='%s'", escaped);
        assert_true (zv_test_has (desc, "<graphics type='vnc'"));
        assert_true (zv_test_has (desc, expect));
    }
    else
        assert_null (strstr (desc, "<graphics"));
    const char *nic = s_set (spec->nic) ? spec->nic : "none";
    if (strcmp (nic, "none") == 0)
        assert_null (strstr (desc, "<interface"));
    else {
        const char *colon = strchr (nic, ':');
        snprintf (expect, sizeof expect, "<interface type='%.*s'>",
                  (int) (colon ? (size_t) (colon - nic) : strlen (nic)), nic);
        assert_true (zv_test_has (desc, expect));
        assert_int_equal (s_count (desc, "<interface "), 1);
        if (colon) {
            s_escape (escaped, sizeof escaped, colon + 1);
            snprintf (expect, sizeof expect, "='%s'/>", escaped);
            assert_true (zv_test_has (strstr (desc, "<interface "), expect));
        }
        if (s_set (spec->mac)) {
            snprintf (expect, sizeof expect, "<mac address='%s'/>", spec->mac);
            assert_true (zv_test_has (desc, expect));
        }
    }
}

//  Define xml on libvirt's test driver and check what libvirt read back;
//  the domain is undefined again.  The test driver runs only domains of
//  type 'test', so another type is checked under that one (the rest of the
//  document is the same).  spec (may be NULL) is what the document was
//  made with.  NULL when it parsed, else libvirt's message (caller frees).
static char *
s_define (const json_t *instance, const char *xml, const zv_domain_spec_t *spec)
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
    if (spec)
        s_check_devices (desc, spec);
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

//  libvirt's schema check, when the host has the validator: NULL when xml
//  is valid or it cannot be checked, else the validator's output (caller
//  frees).  The document goes through a file under a temporary directory.
static char *
s_validate (const char *xml)
{
    static int available = -1;
    if (available < 0) {
        available = system ("command -v virt-xml-validate >/dev/null 2>&1") == 0;
        if (!available)
            print_message ("virt-xml-validate is absent (package libvirt-clients): "
                           "QEMU documents are not checked against libvirt's schema\n");
    }
    if (!available)
        return NULL;
    char dir [] = "/tmp/zv_test_domain.XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path [64], log [64], *command = NULL;
    snprintf (path, sizeof path, "%s/domain.xml", dir);
    snprintf (log, sizeof log, "%s/validate.log", dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (xml, file);
    assert_int_equal (fclose (file), 0);
    assert_true (asprintf (&command, "virt-xml-validate %s domain >%s 2>&1", path, log) > 0);
    int status = system (command);
    free (command);
    char *problem = NULL;
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        problem = zv_test_slurp (log);
        if (!problem)
            problem = strdup ("virt-xml-validate failed");
    }
    remove (log);
    remove (path);
    rmdir (dir);
    return problem;
}

//  Golden files, and each one parsed by libvirt

static void
test_domain_golden (void **state)
{
    (void) state;
    static const char *types [] = { "test", "qemu", "kvm" };
    bool regen = getenv ("ZV_REGEN_GOLDEN") && *getenv ("ZV_REGEN_GOLDEN") == '1';
    glob_t found;
    assert_int_equal (glob (S_GOLDEN_DIR "/*.json", 0, NULL, &found), 0);
    assert_true (found.gl_pathc >= 9);
    size_t failed = 0;
    size_t spec_cases = 0;
    for (size_t index = 0; index < found.gl_pathc; index++) {
        const char *json_path = found.gl_pathv [index];
        json_t *instance = s_load (json_path);
        zv_domain_spec_t spec_buffer;
        json_t *spec_object = s_spec_take (json_path, instance, &spec_buffer);
        const zv_domain_spec_t *spec = spec_object ? &spec_buffer : NULL;
        spec_cases += spec != NULL;
        //  kvm differs from qemu only where there are devices.
        size_t type_count = spec ? 3 : 2;
        for (size_t type = 0; type < type_count; type++) {
            bool test_type = strcmp (types [type], "test") == 0;
            char *xml = zv_domain_xml (instance, types [type], spec);
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
            char *problem = s_define (instance, xml, test_type ? NULL : spec);
            if (problem) {
                print_error ("%s (%s): libvirt refuses the XML: %s\n", json_path, types [type], problem);
                free (problem);
                failed++;
            }
            problem = test_type ? NULL : s_validate (xml);
            if (problem) {
                print_error ("%s (%s): not valid by libvirt's schema:\n%s", json_path, types [type], problem);
                free (problem);
                failed++;
            }
            free (xml);
        }
        json_decref (spec_object);
        json_decref (instance);
    }
    globfree (&found);
    assert_true (spec_cases >= 5);
    if (failed)
        fail_msg ("%zu domain documents differ, do not parse or are not valid", failed);
}

//  The parts that matter, asserted directly

static void
test_domain_type_and_ids (void **state)
{
    (void) state;
    json_t *instance = s_load (S_GOLDEN_DIR "/small.json");
    char *xml = zv_domain_xml (instance, "kvm", NULL);
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
    char *xml = zv_domain_xml (instance, "test", NULL);
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

//  Paths and names from the host are escaped as a user's text is.
static void
test_domain_spec_escaping (void **state)
{
    (void) state;
    json_t *instance = s_load (S_GOLDEN_DIR "/special_paths.json");
    zv_domain_spec_t spec;
    json_t *spec_object = s_spec_take ("special_paths.json", instance, &spec);
    assert_non_null (spec_object);
    //  Not in the golden case: libvirt's schema allows no such bridge name,
    //  but a bad name must still give a well-formed document.
    spec.nic = "bridge:br'0&";
    char *xml = zv_domain_xml (instance, "qemu", &spec);
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<source file='/srv/it&apos;s &amp; &lt;more&gt;/disk'/>"));
    assert_true (zv_test_has (xml, "<kernel>/srv/it&apos;s &amp; &lt;more&gt;/kernel</kernel>"));
    assert_true (zv_test_has (xml, "<cmdline>console=ttyS0 root=/dev/vda1 x=&quot;a&lt;b&quot;</cmdline>"));
    assert_true (zv_test_has (xml, "<log file='/srv/it&apos;s &amp; &lt;more&gt;/console.log'"));
    assert_true (zv_test_has (xml, "<source bridge='br&apos;0&amp;'/>"));
    assert_null (strstr (xml, "<more>"));
    free (xml);
    json_decref (spec_object);
    json_decref (instance);
}

//  The serial console: raw TCP for the console proxy when compute gives a
//  port (the console mirroring it, the log kept on the serial), loopback
//  when no host is given, the host escaped; a pty without a port; none
//  without a port or a log.
static void
test_domain_serial (void **state)
{
    (void) state;
    json_t *instance = s_load (S_GOLDEN_DIR "/small.json");
    zv_domain_spec_t spec = { .serial_port = 10007 };
    char *xml = zv_domain_xml (instance, "qemu", &spec);
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "    <serial type='tcp'>\n"
                                   "      <source mode='bind' host='127.0.0.1' service='10007'/>\n"
                                   "      <protocol type='raw'/>\n"
                                   "      <target port='0'/>\n"
                                   "    </serial>\n"
                                   "    <console type='tcp'>\n"
                                   "      <source mode='bind' host='127.0.0.1' service='10007'/>\n"
                                   "      <protocol type='raw'/>\n"
                                   "      <target type='serial' port='0'/>\n"
                                   "    </console>\n"));
    assert_null (strstr (xml, "<log "));
    char *problem = s_define (instance, xml, &spec);
    if (problem)
        fail_msg ("libvirt refuses a TCP serial without a log: %s", problem);
    free (xml);

    spec.serial_host = "::1'&";
    spec.console_log = "/srv/x/console.log";
    xml = zv_domain_xml (instance, "kvm", &spec);
    assert_non_null (xml);
    assert_int_equal (s_count (xml, "<source mode='bind' host='::1&apos;&amp;' service='10007'/>"), 2);
    assert_int_equal (s_count (xml, "<log file='/srv/x/console.log' append='on'/>"), 1);
    assert_null (strstr (xml, "type='pty'"));
    free (xml);

    spec.serial_port = 0;
    xml = zv_domain_xml (instance, "qemu", &spec);
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<serial type='pty'>"));
    assert_true (zv_test_has (xml, "<console type='pty'>"));
    assert_null (strstr (xml, "<source mode='bind' host="));
    free (xml);

    spec.console_log = NULL;
    xml = zv_domain_xml (instance, "qemu", &spec);
    assert_non_null (xml);
    assert_null (strstr (xml, "<serial"));
    assert_null (strstr (xml, "<console"));
    free (xml);
    json_decref (instance);
}

//  The guest CPU of [libvirt] cpu_mode and cpu_models: host-model on kvm
//  and none on qemu by default; custom names its model (escaped), and
//  libvirt's test driver accepts the document.
static void
test_domain_cpu (void **state)
{
    (void) state;
    json_t *instance = s_load (S_GOLDEN_DIR "/small.json");
    zv_domain_spec_t spec = { .serial_port = 0 };
    char *xml = zv_domain_xml (instance, "qemu", &spec);
    assert_null (strstr (xml, "<cpu"));
    free (xml);
    xml = zv_domain_xml (instance, "kvm", &spec);
    assert_true (zv_test_has (xml, "  <cpu mode='host-model'/>\n"));
    free (xml);
    spec.cpu_mode = "host-passthrough";
    xml = zv_domain_xml (instance, "qemu", &spec);
    assert_true (zv_test_has (xml, "  <cpu mode='host-passthrough'/>\n"));
    free (xml);
    spec.cpu_mode = "none";
    xml = zv_domain_xml (instance, "kvm", &spec);
    assert_null (strstr (xml, "<cpu"));
    free (xml);
    spec.cpu_mode = "custom";
    spec.cpu_model = "qemu32";
    xml = zv_domain_xml (instance, "qemu", &spec);
    assert_true (zv_test_has (xml, "  <cpu mode='custom' match='exact' check='partial'>\n"
                                   "    <model fallback='forbid'>qemu32</model>\n  </cpu>\n"));
    char *problem = s_define (instance, xml, &spec);
    if (problem)
        fail_msg ("libvirt refuses a custom CPU: %s", problem);
    free (xml);
    spec.cpu_model = "a<b";
    xml = zv_domain_xml (instance, "qemu", &spec);
    assert_true (zv_test_has (xml, "<model fallback='forbid'>a&lt;b</model>"));
    free (xml);
    json_decref (instance);
}

//  The test driver has no storage: a spec changes nothing there.
static void
test_domain_test_type_ignores_spec (void **state)
{
    (void) state;
    json_t *instance = s_load (S_GOLDEN_DIR "/disk_boot.json");
    zv_domain_spec_t spec;
    json_t *spec_object = s_spec_take ("disk_boot.json", instance, &spec);
    assert_non_null (spec_object);
    char *with = zv_domain_xml (instance, "test", &spec);
    char *without = zv_domain_xml (instance, "test", NULL);
    assert_non_null (with);
    assert_non_null (without);
    assert_string_equal (with, without);
    assert_null (strstr (with, "<devices>"));
    free (with);
    free (without);
    json_decref (spec_object);
    json_decref (instance);
}

//  The NIC kinds: a malformed one gives no document (the caller reports a
//  configuration error) rather than a guest without the network it asked
//  for; none, empty and NULL give no interface.
static void
test_domain_nic_kinds (void **state)
{
    (void) state;
    json_t *instance = s_load (S_GOLDEN_DIR "/small.json");
    zv_domain_spec_t spec = { .disk = "/tmp/disk", .mac = "fa:16:3e:00:00:01" };
    static const char *refused [] = {
        "bridge", "bridge:", "network", "network:", "user:eth0", "none:x", "tap:x", "users", "x",
    };
    for (size_t index = 0; index < sizeof refused / sizeof refused [0]; index++) {
        spec.nic = refused [index];
        char *xml = zv_domain_xml (instance, "qemu", &spec);
        if (xml)
            fail_msg ("nic '%s' gives a document", refused [index]);
    }
    static const char *no_interface [] = { "none", "", NULL };
    for (size_t index = 0; index < 3; index++) {
        spec.nic = no_interface [index];
        char *xml = zv_domain_xml (instance, "qemu", &spec);
        assert_non_null (xml);
        assert_null (strstr (xml, "<interface"));
        free (xml);
    }
    spec.nic = "network:default";
    char *xml = zv_domain_xml (instance, "kvm", &spec);
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<interface type='network'>\n"
                                   "      <mac address='fa:16:3e:00:00:01'/>\n"
                                   "      <source network='default'/>\n"
                                   "      <model type='virtio'/>\n"
                                   "      <rom bar='off'/>\n"));
    assert_true (zv_test_has (xml, "<cpu mode='host-model'/>"));
    free (xml);
    //  A spec that gives nothing still gives a document that boots the disk.
    memset (&spec, 0, sizeof spec);
    xml = zv_domain_xml (instance, "qemu", &spec);
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<boot dev='hd'/>"));
    assert_null (strstr (xml, "<disk"));
    assert_null (strstr (xml, "<cpu"));
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
    char *xml = zv_domain_xml (instance, "test", NULL);
    assert_non_null (xml);
    char *problem = s_define (instance, xml, NULL);
    free (xml);
    json_decref (instance);
    if (problem) {
        print_error ("libvirt refuses the XML of a name with control characters: %s\n", problem);
        free (problem);
        fail ();
    }
}

//  What XML 1.0 cannot carry (C0 controls but tab, newline and carriage
//  return; U+FFFE, U+FFFF; malformed UTF-8, byte by byte) becomes U+FFFD,
//  the same in every value; what it allows stays as it is.  Each document
//  is one libvirt accepts.
#define S_FFFD "\xEF\xBF\xBD"
static void
test_domain_xml_forbidden_chars (void **state)
{
    (void) state;
    static const struct {
        const char *name;
        const char *expect;             //  the text of <zova:name>
    } cases [] = {
        { "a\xEF\xBF\xBE" "b",          "a" S_FFFD "b" },                       //  U+FFFE
        { "a\xEF\xBF\xBF" "b",          "a" S_FFFD "b" },                       //  U+FFFF
        { "a\x01\x08\x0b\x0c\x0e\x1f" "b", "a" S_FFFD S_FFFD S_FFFD S_FFFD S_FFFD S_FFFD "b" },
        { "t\tn\nr\r",                  "t&#9;n&#10;r&#13;" },
        { "del\x7f",                    "del\x7f" },                            //  allowed, if discouraged
        { "ok\xEF\xBF\xBD\xEF\xBF\xBC",  "ok\xEF\xBF\xBD\xEF\xBF\xBC" },        //  U+FFFD, U+FFFC
        { "\xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF", "\xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF" }, //  U+1F600, U+10FFFF
        { "stray\x80",                  "stray" S_FFFD },
        { "overlong\xC0\xAF",           "overlong" S_FFFD S_FFFD },
        { "surrogate\xED\xA0\x80",      "surrogate" S_FFFD S_FFFD S_FFFD },
        { "truncated\xE2\x82",          "truncated" S_FFFD S_FFFD },
        { "big\xF4\x90\x80\x80",        "big" S_FFFD S_FFFD S_FFFD S_FFFD },    //  past U+10FFFF
        { "lead\xF8\xFF",               "lead" S_FFFD S_FFFD },
        { "<\xEF\xBF\xBE&>",            "&lt;" S_FFFD "&amp;&gt;" },
    };
    json_t *instance = s_load (S_GOLDEN_DIR "/small.json");
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        //  Unchecked: a record may carry bytes that are not UTF-8.
        json_object_set_new (instance, "name", json_string_nocheck (cases [index].name));
        char *xml = zv_domain_xml (instance, "test", NULL);
        assert_non_null (xml);
        char expect [256];
        snprintf (expect, sizeof expect, "<zova:name>%s</zova:name>", cases [index].expect);
        if (!strstr (xml, expect))
            fail_msg ("case %zu: expected %s in\n%s", index, expect, xml);
        char *problem = s_define (instance, xml, NULL);
        if (problem)
            fail_msg ("case %zu: libvirt refuses the XML: %s", index, problem);
        free (xml);
    }

    //  Every other value goes the same way: ids, the uuid, the domain
    //  type, paths, the command line, the listen address.
    json_object_set_new (instance, "name", json_string ("web"));
    json_object_set_new (instance, "project_id", json_string_nocheck ("p\xEF\xBF\xBF\x01"));
    json_object_set_new (json_object_get (instance, "flavor"), "id", json_string_nocheck ("f\x80"));
    json_object_set_new (json_object_get (instance, "image"), "id", json_string_nocheck ("i\x02"));
    zv_domain_spec_t spec = {
        .disk = "/srv/d\x03isk", .kernel = "/srv/k\xEF\xBF\xBE", .cmdline = "console=ttyS0 x=\x1b",
        .console_log = "/srv/c\xC0\xAF.log", .vnc_listen = "127.0.0.1\x04", .nic = "bridge:br\xEF\xBF\xBF",
    };
    char *xml = zv_domain_xml (instance, "qemu\x05", &spec);
    assert_non_null (xml);
    static const char *parts [] = {
        "<domain type='qemu" S_FFFD "'>",
        "<zova:project id='p" S_FFFD S_FFFD "'/>",
        "<zova:flavor id='f" S_FFFD "'>",
        "<zova:image id='i" S_FFFD "'/>",
        "<source file='/srv/d" S_FFFD "isk'/>",
        "<kernel>/srv/k" S_FFFD "</kernel>",
        "<cmdline>console=ttyS0 x=" S_FFFD "</cmdline>",
        "<log file='/srv/c" S_FFFD S_FFFD ".log' append='on'/>",
        "listen='127.0.0.1" S_FFFD "'",
        "<source bridge='br" S_FFFD "'/>",
    };
    for (size_t index = 0; index < sizeof parts / sizeof parts [0]; index++)
        if (!strstr (xml, parts [index]))
            fail_msg ("expected %s in\n%s", parts [index], xml);
    free (xml);
    json_object_set_new (instance, "uuid", json_string_nocheck ("4f1c2a0e\x01"));
    xml = zv_domain_xml (instance, "test", NULL);
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<name>zova-4f1c2a0e" S_FFFD "</name>"));
    assert_true (zv_test_has (xml, "<uuid>4f1c2a0e" S_FFFD "</uuid>"));
    free (xml);
    json_decref (instance);
}

//  A record without a flavor or image still gives a document (zeroes and
//  empty ids): generation never crashes on a partial record.
static void
test_domain_partial_record (void **state)
{
    (void) state;
    json_t *instance = json_pack ("{s:s}", "uuid", "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b");
    char *xml = zv_domain_xml (instance, "test", NULL);
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<uuid>5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b</uuid>"));
    assert_true (zv_test_has (xml, "<memory unit='MiB'>0</memory>"));
    assert_true (zv_test_has (xml, "<zova:name></zova:name>"));
    assert_true (zv_test_has (xml, "<zova:image id=''/>"));
    assert_true (zv_test_has (xml, "</domain>\n"));
    free (xml);
    zv_domain_spec_t spec = { .nic = "user" };
    xml = zv_domain_xml (instance, "qemu", &spec);
    assert_non_null (xml);
    assert_true (zv_test_has (xml, "<interface type='user'>"));
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
        cmocka_unit_test (test_domain_spec_escaping),
        cmocka_unit_test (test_domain_serial),
        cmocka_unit_test (test_domain_cpu),
        cmocka_unit_test (test_domain_test_type_ignores_spec),
        cmocka_unit_test (test_domain_nic_kinds),
        cmocka_unit_test (test_domain_control_chars_in_name),
        cmocka_unit_test (test_domain_xml_forbidden_chars),
        cmocka_unit_test (test_domain_partial_record),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
