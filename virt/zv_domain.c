/*  zv_domain.c: domain XML from an instance record and what compute
    prepared for it on the host.

    Pure string generation, kept apart from the libvirt driver so that its
    output is checked against golden files (tests/data/domain/) without a
    hypervisor.  Every value from the record, the spec or the caller
    (server name, ids, uuid, paths, command line, listen address, bridge
    name, domain type) enters the document through one function,
    s_escaped: XML-escaped, with any character XML 1.0 cannot carry
    (control characters, U+FFFE, U+FFFF, malformed UTF-8) replaced by
    U+FFFD, so that any record gives a document libvirt accepts; only this
    file's own tables and numbers are written as they are.

    Two shapes.  Without a spec, or for libvirt's test driver (which has no
    storage), a domain carries memory, vcpus, an hvm os and zova's own
    metadata: enough for any driver to define and start it.  For QEMU with
    a spec, the document is the one Nova's libvirt driver writes, trimmed
    for a guest that may run under TCG, where every emulated device costs
    boot time: no USB controller, no memory balloon, the NIC's option ROM
    off, virtio disks (qcow2 overlays) with the default cache mode (cache
    'none' needs O_DIRECT, which tmpfs instance paths lack), the serial
    console logged to console.log, on a TCP port when compute gives one
    (raw, for the console proxy; loopback unless a host is given), else on
    a pty, the guest agent's channel (libvirt picks its socket), VNC when
    a listen address is given.  The host CPU
    model is asked for only under KVM; TCG keeps QEMU's default model.
    Rescue boots the rescue disk (vda, with the rescue kernel when there is
    one) and attaches the instance's root disk second (vdb), without its
    ephemeral and swap disks, as Nova's rescue does; zova's metadata names
    the instance's own kernel and ramdisk meanwhile.

    NULL when memory runs out or spec->nic is not one of the kinds below
    (a configuration error: the caller reports it).                        */

#include "virt/zv_virt.h"
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Guest architectures: the machine type a guest gets when its image names
//  none (hw_machine_type), and whether it has an x86 local APIC.
typedef struct {
    const char *arch;
    const char *machine;
    bool apic;
} s_arch_t;

static const s_arch_t s_arches [] = {
    { "x86_64",  "pc",      true },
    { "i686",    "pc",      true },
    { "aarch64", "virt",    false },
    { "armv7l",  "virt",    false },
    { "ppc64le", "pseries", false },
    { "s390x",   "s390-ccw-virtio", false },
};

//  NIC kinds of spec->nic: "<kind>" or "<kind>:<name>".
typedef struct {
    const char *kind;
    const char *type;               //  the interface type; NULL: no interface
    const char *source;             //  the source attribute carrying <name>; NULL: no name
} s_nic_t;

static const s_nic_t s_nics [] = {
    { "none",    NULL,      NULL },
    { "user",    "user",    NULL },
    { "bridge",  "bridge",  "bridge" },
    { "network", "network", "network" },
};

//  Characters that XML gives a meaning to, as references; \t, \n and \r
//  too, which an attribute would otherwise turn into spaces.
static const struct {
    char c;
    const char *reference;
} s_references [] = {
    { '<',  "&lt;" },
    { '>',  "&gt;" },
    { '&',  "&amp;" },
    { '\'', "&apos;" },
    { '"',  "&quot;" },
    { '\t', "&#9;" },
    { '\n', "&#10;" },
    { '\r', "&#13;" },
};

//  What stands for a character XML 1.0 cannot carry: U+FFFD.
#define S_REPLACEMENT "\xEF\xBF\xBD"

//  The code point of the UTF-8 sequence at text into *point_p, and its
//  length; 0 when the bytes there are no well-formed sequence (a stray
//  continuation byte, a truncated or overlong one, a surrogate, past
//  U+10FFFF).  Never reads past the terminating NUL, which is no
//  continuation byte.
static size_t
s_utf8_decode (const unsigned char *text, uint32_t *point_p)
{
    unsigned char lead = text [0];
    size_t need;
    uint32_t point, least;
    if (lead < 0x80) {
        *point_p = lead;
        return 1;
    }
    if ((lead & 0xE0) == 0xC0)      { need = 1; point = lead & 0x1F; least = 0x80; }
    else if ((lead & 0xF0) == 0xE0) { need = 2; point = lead & 0x0F; least = 0x800; }
    else if ((lead & 0xF8) == 0xF0) { need = 3; point = lead & 0x07; least = 0x10000; }
    else
        return 0;
    for (size_t at = 1; at <= need; at++) {
        if ((text [at] & 0xC0) != 0x80)
            return 0;
        point = (point << 6) | (text [at] & 0x3F);
    }
    if (point < least || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF))
        return 0;
    *point_p = point;
    return need + 1;
}

//  XML 1.0's Char production: what a document may hold at all, even as a
//  character reference.
static bool
s_xml_char (uint32_t point)
{
    return point == 0x9 || point == 0xA || point == 0xD
        || (point >= 0x20 && point <= 0xD7FF)
        || (point >= 0xE000 && point <= 0xFFFD)
        || (point >= 0x10000 && point <= 0x10FFFF);
}

//  The one way a value enters the document, as element text or attribute
//  alike: XML's characters become references, and what XML 1.0 does not
//  allow (C0 controls but tab, newline and carriage return; U+FFFE,
//  U+FFFF; each byte of malformed UTF-8) becomes U+FFFD, so that libvirt
//  accepts the document whatever the record holds.  NULL writes nothing.
static void
s_escaped (FILE *out, const char *text)
{
    const unsigned char *at = (const unsigned char *) (text ? text : "");
    while (*at) {
        uint32_t point = 0;
        size_t len = s_utf8_decode (at, &point);
        if (len == 0 || !s_xml_char (point)) {
            fputs (S_REPLACEMENT, out);
            at += len ? len : 1;
            continue;
        }
        const char *reference = NULL;
        for (size_t index = 0; len == 1 && index < sizeof s_references / sizeof s_references [0]; index++)
            if (s_references [index].c == (char) point)
                reference = s_references [index].reference;
        if (reference)
            fputs (reference, out);
        else
            fwrite (at, 1, len, out);
        at += len;
    }
}

//  <tag>text</tag> on its own line, text escaped.
static void
s_element (FILE *out, const char *indent, const char *tag, const char *text)
{
    fprintf (out, "%s<%s>", indent, tag);
    s_escaped (out, text);
    fprintf (out, "</%s>\n", tag);
}

static const char *
s_str (const json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    return value ? value : "";
}

//  A spec field, with "" meaning none as NULL does (an empty config key).
static const char *
s_set (const char *value)
{
    return value && *value ? value : NULL;
}

static const s_arch_t *
s_arch_find (const char *arch)
{
    for (size_t index = 0; index < sizeof s_arches / sizeof s_arches [0]; index++)
        if (strcmp (s_arches [index].arch, arch) == 0)
            return &s_arches [index];
    return NULL;
}

//  The row of spec->nic, with *name_p the text after the colon (NULL when
//  none); NULL when the kind is unknown or its name is missing or extra.
static const s_nic_t *
s_nic_find (const char *nic, const char **name_p)
{
    if (!s_set (nic))
        nic = "none";
    const char *colon = strchr (nic, ':');
    size_t kind_len = colon ? (size_t) (colon - nic) : strlen (nic);
    *name_p = colon ? colon + 1 : NULL;
    for (size_t index = 0; index < sizeof s_nics / sizeof s_nics [0]; index++) {
        const s_nic_t *row = &s_nics [index];
        if (strlen (row->kind) != kind_len || strncmp (row->kind, nic, kind_len) != 0)
            continue;
        bool named = *name_p && **name_p;
        if ((row->source != NULL) != named || (!row->source && colon))
            return NULL;
        return row;
    }
    return NULL;
}

static void
s_disk (FILE *out, const char *path, char *letter)
{
    if (!path)
        return;
    fputs ("    <disk type='file' device='disk'>\n"
           "      <driver name='qemu' type='qcow2'/>\n"
           "      <source file='", out);
    s_escaped (out, path);
    fprintf (out, "'/>\n      <target dev='vd%c' bus='virtio'/>\n    </disk>\n", *letter);
    (*letter)++;
}

static void
s_os (FILE *out, const json_t *image, const zv_domain_spec_t *spec, const s_arch_t **row_p)
{
    //  Nova's image properties hw_architecture and hw_machine_type pick
    //  the guest architecture and machine.
    const json_t *properties = json_object_get (image, "properties");
    const char *arch = s_set (json_string_value (json_object_get (properties, "hw_architecture")));
    if (!arch)
        arch = "x86_64";
    fputs ("  <os>\n    <type arch='", out);
    s_escaped (out, arch);
    *row_p = s_arch_find (arch);
    if (spec) {
        const char *machine = s_set (json_string_value (json_object_get (properties,
                                                                         "hw_machine_type")));
        if (!machine && *row_p)
            machine = (*row_p)->machine;
        if (machine) {
            fputs ("' machine='", out);
            s_escaped (out, machine);
        }
    }
    fputs ("'>hvm</type>\n", out);
    if (spec) {
        bool rescue = s_set (spec->rescue_disk) != NULL;
        const char *kernel = s_set (rescue ? spec->rescue_kernel : spec->kernel);
        const char *ramdisk = s_set (rescue ? spec->rescue_ramdisk : spec->ramdisk);
        const char *cmdline = s_set (rescue ? spec->rescue_cmdline : spec->cmdline);
        if (kernel) {
            s_element (out, "    ", "kernel", kernel);
            if (ramdisk)
                s_element (out, "    ", "initrd", ramdisk);
            if (cmdline)
                s_element (out, "    ", "cmdline", cmdline);
        }
        else
            fputs ("    <boot dev='hd'/>\n", out);
    }
    fputs ("  </os>\n", out);
}

//  The serial console and the <console> that mirrors it (libvirt reads a
//  serial port 0 console back as a copy of the serial, so they must agree).
//  A TCP one listens raw for the console proxy; a pty one only when there
//  is a log to keep, as before TCP consoles.
static void
s_serial (FILE *out, const zv_domain_spec_t *spec)
{
    bool tcp = spec->serial_port > 0;
    const char *log = s_set (spec->console_log);
    if (!tcp && !log)
        return;
    const char *type = tcp ? "tcp" : "pty";
    //  Without a host QEMU would listen on every address: a raw console
    //  with no authentication stays on loopback unless asked otherwise.
    const char *host = s_set (spec->serial_host) ? spec->serial_host : "127.0.0.1";
    for (int console = 0; console < 2; console++) {
        fprintf (out, "    <%s type='%s'>\n", console ? "console" : "serial", type);
        if (tcp) {
            fputs ("      <source mode='bind' host='", out);
            s_escaped (out, host);
            fprintf (out, "' service='%d'/>\n"
                          "      <protocol type='raw'/>\n", spec->serial_port);
        }
        if (!console && log) {
            fputs ("      <log file='", out);
            s_escaped (out, log);
            fputs ("' append='on'/>\n", out);
        }
        fprintf (out, "      <target %sport='0'/>\n    </%s>\n",
                 console ? "type='serial' " : "", console ? "console" : "serial");
    }
}

static void
s_devices (FILE *out, const zv_domain_spec_t *spec, const s_nic_t *nic, const char *nic_name)
{
    fputs ("  <devices>\n"
           "    <controller type='usb' model='none'/>\n", out);
    char letter = 'a';
    if (s_set (spec->rescue_disk)) {
        s_disk (out, spec->rescue_disk, &letter);
        s_disk (out, s_set (spec->disk), &letter);
    }
    else {
        s_disk (out, s_set (spec->disk), &letter);
        s_disk (out, s_set (spec->disk_local), &letter);
        s_disk (out, s_set (spec->disk_swap), &letter);
    }
    if (nic->type) {
        fprintf (out, "    <interface type='%s'>\n", nic->type);
        if (s_set (spec->mac)) {
            fputs ("      <mac address='", out);
            s_escaped (out, spec->mac);
            fputs ("'/>\n", out);
        }
        if (nic->source) {
            fprintf (out, "      <source %s='", nic->source);
            s_escaped (out, nic_name);
            fputs ("'/>\n", out);
        }
        fputs ("      <model type='virtio'/>\n"
               "      <rom bar='off'/>\n"
               "    </interface>\n", out);
    }
    s_serial (out, spec);
    fputs ("    <channel type='unix'>\n"
           "      <source mode='bind'/>\n"
           "      <target type='virtio' name='org.qemu.guest_agent.0'/>\n"
           "    </channel>\n", out);
    if (s_set (spec->vnc_listen)) {
        fputs ("    <graphics type='vnc' port='-1' autoport='yes' listen='", out);
        s_escaped (out, spec->vnc_listen);
        fputs ("'/>\n"
               "    <video>\n"
               "      <model type='vga'/>\n"
               "    </video>\n", out);
    }
    fputs ("    <memballoon model='none'/>\n"
           "  </devices>\n", out);
}

char *
zv_domain_xml (const json_t *instance, const char *domain_type, const zv_domain_spec_t *spec)
{
    assert (domain_type);
    //  The test driver has no storage and no devices to give a guest.
    if (strcmp (domain_type, "test") == 0)
        spec = NULL;
    const s_nic_t *nic = NULL;
    const char *nic_name = NULL;
    if (spec && !(nic = s_nic_find (spec->nic, &nic_name)))
        return NULL;

    const json_t *flavor = json_object_get (instance, "flavor");
    const json_t *image = json_object_get (instance, "image");
    json_int_t ram_mb = json_integer_value (json_object_get (flavor, "ram_mb"));
    json_int_t vcpus = json_integer_value (json_object_get (flavor, "vcpus"));
    char *buffer = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&buffer, &size);
    if (!out)
        return NULL;
    fputs ("<domain type='", out);
    s_escaped (out, domain_type);
    fputs ("'>\n  <name>" ZV_DOMAIN_PREFIX, out);
    s_escaped (out, s_str (instance, "uuid"));
    fputs ("</name>\n", out);
    s_element (out, "  ", "uuid", s_str (instance, "uuid"));
    fputs ("  <metadata>\n    <zova:instance xmlns:zova='https://zova.dev/xmlns/instance/1'>\n", out);
    fputs ("      <zova:name>", out);
    s_escaped (out, s_str (instance, "name"));
    fputs ("</zova:name>\n      <zova:flavor id='", out);
    s_escaped (out, s_str (flavor, "id"));
    fputs ("'>", out);
    s_escaped (out, s_str (flavor, "name"));
    fputs ("</zova:flavor>\n      <zova:image id='", out);
    s_escaped (out, s_str (image, "id"));
    fputs ("'/>\n      <zova:project id='", out);
    s_escaped (out, s_str (instance, "project_id"));
    fputs ("'/>\n", out);
    //  A rescued domain boots the rescue image's kernel; its own, which
    //  unrescue boots again, is named here, so that the host's image cache
    //  (which reads libvirt.xml, zv_imageclean) keeps it meanwhile.
    if (spec && s_set (spec->rescue_disk) && s_set (spec->kernel)) {
        fputs ("      <zova:rescued kernel='", out);
        s_escaped (out, spec->kernel);
        if (s_set (spec->ramdisk)) {
            fputs ("' initrd='", out);
            s_escaped (out, spec->ramdisk);
        }
        fputs ("'/>\n", out);
    }
    fputs ("    </zova:instance>\n  </metadata>\n", out);
    fprintf (out, "  <memory unit='MiB'>%lld</memory>\n", (long long) ram_mb);
    fprintf (out, "  <vcpu>%lld</vcpu>\n", (long long) vcpus);
    const s_arch_t *arch = NULL;
    s_os (out, image, spec, &arch);
    if (spec) {
        fprintf (out, "  <features>\n    <acpi/>\n%s  </features>\n",
                 arch && arch->apic ? "    <apic/>\n" : "");
        const char *mode = spec->cpu_mode && *spec->cpu_mode ? spec->cpu_mode
                         : strcmp (domain_type, "kvm") == 0 ? "host-model" : "none";
        if (strcmp (mode, "custom") == 0 && spec->cpu_model && *spec->cpu_model) {
            fputs ("  <cpu mode='custom' match='exact' check='partial'>\n    <model fallback='forbid'>", out);
            s_escaped (out, spec->cpu_model);
            fputs ("</model>\n  </cpu>\n", out);
        }
        else
        if (strcmp (mode, "host-model") == 0 || strcmp (mode, "host-passthrough") == 0)
            fprintf (out, "  <cpu mode='%s'/>\n", mode);
        fputs ("  <clock offset='utc'/>\n", out);
    }
    fputs ("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n"
           "  <on_crash>destroy</on_crash>\n", out);
    if (spec)
        s_devices (out, spec, nic, nic_name);
    fputs ("</domain>\n", out);
    if (fclose (out) != 0) {
        free (buffer);
        return NULL;
    }
    return buffer;
}
