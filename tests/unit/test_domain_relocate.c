/*  test_domain_relocate.c: a domain's XML made ready for another host
    (zv_domain_xml_relocate).

    The documents are the ones compute defines: zv_domain_xml for an
    instance record like tests/data/domain/small.json with a spec whose
    every file (disks, kernel, initrd, console log) lies in one instance
    directory, a serial console on a TCP port, and values that only look
    like paths (a command line, a server name).  What relocate must give is
    worked out here apart from it, by text substitution on the original
    ("'<from>/" and "><from>/" become the new directory: every attribute
    and element text that starts with the directory, nothing else), and
    compared as canonical XML (C14N), which ignores quote style and
    attribute order but nothing that libvirt reads.

    Golden files: tests/data/domain_relocate/<case>.in (a running domain's
    migratable XML as libvirt 9.0 gave it for a document of zv_domain_xml:
    the model and addresses libvirt adds, the serial console's mirror,
    paths renamed to /srv) relocates to <case>.out with the directories and
    port that <case>.args gives on one line, "from to port".
    ZV_REGEN_GOLDEN=1 rewrites the .out files; review the diff.  Run from
    the repository root.                                                    */

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
#include <libxml/c14n.h>
#include <libxml/parser.h>

#include "virt/zv_virt.h"

#define S_GOLDEN_DIR "tests/data/domain_relocate"
#define S_UUID       "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
#define S_FROM       "/a/inst"
#define S_TO         "/b/new"

//  Helpers

//  A realistic document: every file under S_FROM/<uuid> but the swap
//  disk, in S_FROM "2" (a directory that merely shares the prefix); a
//  command line and a server name that mention S_FROM; the serial console
//  on port 10000.  Caller frees.
static char *
s_domain (const char *domain_type, int serial_port)
{
    json_error_t jerr;
    json_t *instance = json_load_file ("tests/data/domain/small.json", 0, &jerr);
    if (!instance)
        fail_msg ("tests/data/domain/small.json:%d: %s", jerr.line, jerr.text);
    json_object_set_new (instance, "uuid", json_string (S_UUID));
    json_object_set_new (instance, "name", json_string ("copy of " S_FROM "/" S_UUID "/disk"));
    zv_domain_spec_t spec = {
        .instance_dir = S_FROM "/" S_UUID,
        .disk = S_FROM "/" S_UUID "/disk",
        .disk_local = S_FROM "/" S_UUID "/disk.local",
        .disk_swap = S_FROM "2/" S_UUID "/disk.swap",
        .kernel = S_FROM "/" S_UUID "/kernel",
        .ramdisk = S_FROM "/" S_UUID "/ramdisk",
        .cmdline = "console=ttyS0 root=/dev/vda log=" S_FROM "/" S_UUID "/boot.log",
        .console_log = S_FROM "/" S_UUID "/console.log",
        .vnc_listen = "127.0.0.1",
        .nic = "user",
        .mac = "fa:16:3e:6f:7a:8b",
        .serial_host = "127.0.0.1",
        .serial_port = serial_port,
    };
    char *xml = zv_domain_xml (instance, domain_type, &spec);
    assert_non_null (xml);
    json_decref (instance);
    return xml;
}

//  text with every occurrence of from replaced by to (caller frees).
static char *
s_replace (const char *text, const char *from, const char *to)
{
    char *out = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&out, &size);
    assert_non_null (stream);
    size_t from_len = strlen (from);
    for (const char *at = strstr (text, from); at; at = strstr (text, from)) {
        fwrite (text, 1, (size_t) (at - text), stream);
        fputs (to, stream);
        text = at + from_len;
    }
    fputs (text, stream);
    fclose (stream);
    return out;
}

//  A document's canonical form (C14N 1.0; caller frees); fails the test
//  when it does not parse.
static char *
s_canonical (const char *xml)
{
    xmlDocPtr doc = xmlReadMemory (xml, (int) strlen (xml), "x.xml", NULL,
                                   XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        fail_msg ("does not parse: %s", xml);
    xmlChar *canonical = NULL;
    assert_true (xmlC14NDocDumpMemory (doc, NULL, XML_C14N_1_0, NULL, 0, &canonical) >= 0);
    xmlFreeDoc (doc);
    char *copy = strdup ((const char *) canonical);
    xmlFree (canonical);
    return copy;
}

//  Are two documents the same XML?  Shows both when not.
static void
s_same_xml (const char *got, const char *want)
{
    char *got_c = s_canonical (got);
    char *want_c = s_canonical (want);
    if (strcmp (got_c, want_c) != 0) {
        //  cmocka cuts long messages: from the first difference on.
        size_t at = 0;
        while (got_c [at] && got_c [at] == want_c [at])
            at++;
        size_t from = at > 80 ? at - 80 : 0;
        print_error ("differs at %zu:\nexpected ...%.300s\ngot      ...%.300s\n", at,
                     want_c + from, got_c + from);
        fail ();
    }
    free (got_c);
    free (want_c);
}

//  What relocate must make of xml, from_dir to to_dir (no trailing
//  slashes), worked out by text (caller frees).
static char *
s_expected (const char *xml, const char *from_dir, const char *to_dir)
{
    char from [256], to [256];
    snprintf (from, sizeof from, "'%s/", from_dir);
    snprintf (to, sizeof to, "'%s/", to_dir);
    char *step = s_replace (xml, from, to);
    snprintf (from, sizeof from, ">%s/", from_dir);
    snprintf (to, sizeof to, ">%s/", to_dir);
    char *expected = s_replace (step, from, to);
    free (step);
    return expected;
}

//  Tests

//  Disks, kernel, initrd and console log moved; the swap disk in a
//  directory that only shares the prefix, the command line, the server
//  name and the serial port as they were.  With or without trailing
//  slashes, the same document.
static void
test_relocate_paths (void **state)
{
    (void) state;
    char errbuf [512] = "";
    const char *types [] = { "qemu", "kvm" };
    for (size_t type = 0; type < 2; type++) {
        char *xml = s_domain (types [type], 10000);
        char *expected = s_expected (xml, S_FROM "/" S_UUID, S_TO "/" S_UUID);
        const char *froms [] = { S_FROM "/" S_UUID, S_FROM "/" S_UUID "/", S_FROM "/" S_UUID "//" };
        const char *tos [] = { S_TO "/" S_UUID, S_TO "/" S_UUID "/", S_TO "/" S_UUID };
        for (size_t form = 0; form < 3; form++) {
            char *moved = zv_domain_xml_relocate (xml, froms [form], tos [form], 0, errbuf, sizeof errbuf);
            if (!moved)
                fail_msg ("relocate: %s", errbuf);
            s_same_xml (moved, expected);
            free (moved);
        }
        //  Each kind of path moved (the substitution above is not empty).
        assert_true (zv_test_has (expected, "<source file='" S_TO "/" S_UUID "/disk'/>"));
        assert_true (zv_test_has (expected, "<source file='" S_TO "/" S_UUID "/disk.local'/>"));
        assert_true (zv_test_has (expected, "<kernel>" S_TO "/" S_UUID "/kernel</kernel>"));
        assert_true (zv_test_has (expected, "<initrd>" S_TO "/" S_UUID "/ramdisk</initrd>"));
        assert_true (zv_test_has (expected, "<log file='" S_TO "/" S_UUID "/console.log'"));
        assert_true (zv_test_has (expected, "<source file='" S_FROM "2/" S_UUID "/disk.swap'/>"));
        assert_true (zv_test_has (expected, "log=" S_FROM "/" S_UUID "/boot.log"));
        assert_true (zv_test_has (expected, "service='10000'"));
        free (expected);
        free (xml);
    }
}

//  The parent directory moves everything under it, the prefix-sharing
//  directory included when it is the one named ("/a/inst2" is not under
//  "/a/inst", but it is under "/a").
static void
test_relocate_boundary (void **state)
{
    (void) state;
    char errbuf [512] = "";
    char *xml = s_domain ("qemu", 10000);

    //  "/a/inst" holds "/a/inst/<uuid>/..." and not "/a/inst2/...".
    char *moved = zv_domain_xml_relocate (xml, S_FROM, S_TO, 0, errbuf, sizeof errbuf);
    assert_non_null (moved);
    char *expected = s_expected (xml, S_FROM, S_TO);
    s_same_xml (moved, expected);
    assert_true (zv_test_has (moved, S_FROM "2/" S_UUID "/disk.swap"));
    free (moved);
    free (expected);

    //  "/a" holds both.
    moved = zv_domain_xml_relocate (xml, "/a", "/c", 0, errbuf, sizeof errbuf);
    assert_non_null (moved);
    expected = s_expected (xml, "/a", "/c");
    s_same_xml (moved, expected);
    assert_true (zv_test_has (moved, "/c/inst2/" S_UUID "/disk.swap"));
    free (moved);
    free (expected);

    //  A directory that holds nothing: the document as it was.
    moved = zv_domain_xml_relocate (xml, "/a/in", "/elsewhere", 0, errbuf, sizeof errbuf);
    assert_non_null (moved);
    s_same_xml (moved, xml);
    free (moved);
    free (xml);
}

//  The serial console's port, in the serial and in the console that
//  mirrors it; 0 leaves it, and a pty console has none to set.
static void
test_relocate_serial_port (void **state)
{
    (void) state;
    char errbuf [512] = "";
    char *xml = s_domain ("qemu", 10000);
    char *moved = zv_domain_xml_relocate (xml, S_FROM "/" S_UUID, S_TO "/" S_UUID, 10042,
                                          errbuf, sizeof errbuf);
    assert_non_null (moved);
    char *step = s_expected (xml, S_FROM "/" S_UUID, S_TO "/" S_UUID);
    char *expected = s_replace (step, "service='10000'", "service='10042'");
    s_same_xml (moved, expected);
    //  Both of them (the serial and its console).
    char *canonical = s_canonical (moved);
    char *at = strstr (canonical, "service=\"10042\"");
    assert_non_null (at);
    assert_non_null (strstr (at + 1, "service=\"10042\""));
    assert_null (strstr (canonical, "10000"));
    free (canonical);
    free (moved);
    free (step);
    free (expected);
    free (xml);

    //  A pty console: nothing to set.
    xml = s_domain ("qemu", 0);
    moved = zv_domain_xml_relocate (xml, "/nowhere", "/else", 10042, errbuf, sizeof errbuf);
    assert_non_null (moved);
    s_same_xml (moved, xml);
    assert_null (strstr (moved, "10042"));
    free (moved);
    free (xml);
}

//  Paths in a backing chain, a file-backed serial, a unix channel, and
//  characters that XML escapes.
static void
test_relocate_backing_and_devices (void **state)
{
    (void) state;
    char errbuf [512] = "";
    const char *xml =
        "<domain type='qemu'><name>zova-x</name><os><type>hvm</type>"
        "<kernel>/s/it's &amp; &lt;i&gt;/kernel</kernel></os><devices>"
        "<disk type='file' device='disk'><source file='/s/it&apos;s &amp; &lt;i&gt;/disk' index='2'/>"
        "<backingStore type='file' index='3'><format type='qcow2'/>"
        "<source file='/s/it&apos;s &amp; &lt;i&gt;/disk.base'/>"
        "<backingStore type='file' index='4'><format type='raw'/><source file='/s/_base/abc'/>"
        "<backingStore/></backingStore></backingStore>"
        "<target dev='vda' bus='virtio'/></disk>"
        "<serial type='file'><source path='/s/it&apos;s &amp; &lt;i&gt;/serial.out'/><target port='1'/></serial>"
        "<channel type='unix'><source mode='bind' path='/s/it&apos;s &amp; &lt;i&gt;/agent.sock'/>"
        "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
        "<serial type='pty'><source path='/dev/pts/3'/><target port='0'/></serial>"
        "</devices></domain>";
    const char *want =
        "<domain type='qemu'><name>zova-x</name><os><type>hvm</type>"
        "<kernel>/t/kernel</kernel></os><devices>"
        "<disk type='file' device='disk'><source file='/t/disk' index='2'/>"
        "<backingStore type='file' index='3'><format type='qcow2'/>"
        "<source file='/t/disk.base'/>"
        "<backingStore type='file' index='4'><format type='raw'/><source file='/s/_base/abc'/>"
        "<backingStore/></backingStore></backingStore>"
        "<target dev='vda' bus='virtio'/></disk>"
        "<serial type='file'><source path='/t/serial.out'/><target port='1'/></serial>"
        "<channel type='unix'><source mode='bind' path='/t/agent.sock'/>"
        "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
        "<serial type='pty'><source path='/dev/pts/3'/><target port='0'/></serial>"
        "</devices></domain>";
    char *moved = zv_domain_xml_relocate (xml, "/s/it's & <i>", "/t", 0, errbuf, sizeof errbuf);
    if (!moved)
        fail_msg ("relocate: %s", errbuf);
    s_same_xml (moved, want);
    free (moved);

    //  And back, into a directory whose name needs escaping.
    moved = zv_domain_xml_relocate (want, "/t", "/s/it's & <i>", 0, errbuf, sizeof errbuf);
    assert_non_null (moved);
    s_same_xml (moved, xml);
    free (moved);
}

//  What relocate refuses: XML that does not parse, a document that is not
//  a domain, directories that are not absolute, a port out of range.
static void
test_relocate_bad_input (void **state)
{
    (void) state;
    char errbuf [512] = "";
    assert_null (zv_domain_xml_relocate ("<domain><name>x</name>", "/a", "/b", 0, errbuf, sizeof errbuf));
    assert_true (zv_test_has (errbuf, "relocate: the domain XML does not parse: line 1: "));
    assert_null (strchr (errbuf, '\n'));
    assert_null (zv_domain_xml_relocate ("", "/a", "/b", 0, errbuf, sizeof errbuf));
    assert_true (zv_test_has (errbuf, "does not parse"));
    assert_null (zv_domain_xml_relocate ("<pool/>", "/a", "/b", 0, errbuf, sizeof errbuf));
    assert_string_equal (errbuf, "relocate: the document is not a domain (<pool>)");
    assert_null (zv_domain_xml_relocate (NULL, "/a", "/b", 0, errbuf, sizeof errbuf));
    assert_true (zv_test_has (errbuf, "needs a domain XML"));
    assert_null (zv_domain_xml_relocate ("<domain/>", "a", "/b", 0, errbuf, sizeof errbuf));
    assert_true (zv_test_has (errbuf, "from 'a' to '/b'"));
    assert_null (zv_domain_xml_relocate ("<domain/>", "/a", NULL, 0, errbuf, sizeof errbuf));
    assert_null (zv_domain_xml_relocate ("<domain/>", "/a", "/b", 65536, errbuf, sizeof errbuf));
    assert_null (zv_domain_xml_relocate ("<domain/>", "/a", "/b", -1, errbuf, sizeof errbuf));
    char *moved = zv_domain_xml_relocate ("<domain/>", "/", "/b", 65535, errbuf, sizeof errbuf);
    assert_non_null (moved);
    s_same_xml (moved, "<domain/>");
    free (moved);
    //  The root holds every path.
    moved = zv_domain_xml_relocate ("<domain><devices><disk><source file='/x/y'/></disk></devices></domain>",
                                    "/", "/b/", 0, errbuf, sizeof errbuf);
    assert_non_null (moved);
    s_same_xml (moved, "<domain><devices><disk><source file='/b/x/y'/></disk></devices></domain>");
    free (moved);
}

//  Golden files: real migratable XML from libvirt.
static void
test_relocate_golden (void **state)
{
    (void) state;
    bool regen = getenv ("ZV_REGEN_GOLDEN") && strcmp (getenv ("ZV_REGEN_GOLDEN"), "1") == 0;
    glob_t found;
    assert_int_equal (glob (S_GOLDEN_DIR "/*.in", 0, NULL, &found), 0);
    assert_true (found.gl_pathc > 0);
    for (size_t index = 0; index < found.gl_pathc; index++) {
        char path [1024], from [512], to [512];
        int port = 0;
        const char *in_path = found.gl_pathv [index];
        size_t stem = strlen (in_path) - 3;
        snprintf (path, sizeof path, "%.*s.args", (int) stem, in_path);
        char *args = zv_test_slurp (path);
        if (!args || sscanf (args, "%511s %511s %d", from, to, &port) != 3)
            fail_msg ("%s: want one line 'from to port'", path);
        free (args);
        char *in = zv_test_slurp (in_path);
        assert_non_null (in);
        char errbuf [512] = "";
        char *moved = zv_domain_xml_relocate (in, from, to, port, errbuf, sizeof errbuf);
        if (!moved)
            fail_msg ("%s: %s", in_path, errbuf);
        snprintf (path, sizeof path, "%.*s.out", (int) stem, in_path);
        if (regen) {
            FILE *out = fopen (path, "w");
            assert_non_null (out);
            fputs (moved, out);
            fclose (out);
        }
        char *want = zv_test_slurp (path);
        if (!want)
            fail_msg ("%s: missing (ZV_REGEN_GOLDEN=1 writes it)", path);
        if (strcmp (moved, want) != 0)
            fail_msg ("%s differs from what relocate gives:\n%s", path, moved);
        //  And the golden file says what the substitution says (the port
        //  in place of the serial console's first one).
        for (size_t len = strlen (from); len > 1 && from [len - 1] == '/'; len--)
            from [len - 1] = 0;
        for (size_t len = strlen (to); len > 1 && to [len - 1] == '/'; len--)
            to [len - 1] = 0;
        char *expected = s_expected (in, from, to);
        const char *service = strstr (in, "service='");
        if (port > 0 && service) {
            char old [64], new [64];
            snprintf (old, sizeof old, "%.*s", (int) (strchr (service + 9, '\'') - service + 1), service);
            snprintf (new, sizeof new, "service='%d'", port);
            char *ported = s_replace (expected, old, new);
            free (expected);
            expected = ported;
        }
        s_same_xml (moved, expected);
        free (expected);
        free (want);
        free (moved);
        free (in);
    }
    globfree (&found);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_relocate_paths),
        cmocka_unit_test (test_relocate_boundary),
        cmocka_unit_test (test_relocate_serial_port),
        cmocka_unit_test (test_relocate_backing_and_devices),
        cmocka_unit_test (test_relocate_bad_input),
        cmocka_unit_test (test_relocate_golden),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
