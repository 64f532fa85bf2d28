/*  zv_domain.c: domain XML from an instance record.

    Pure string generation, kept apart from the libvirt driver so that its
    output is checked against golden files (tests/data/domain/) without a
    hypervisor.  Every value from a user (the server name) is XML-escaped.
    The foundation's domains carry memory, vcpus, an hvm os and zova's own
    metadata (instance name, flavor, image, project): enough for any libvirt
    driver to define and start them; real disks, consoles and NICs are added
    here for real guests, not elsewhere.                                      */

#include "zv_virt.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_escaped (FILE *out, const char *text)
{
    for (; text && *text; text++) {
        switch (*text) {
            case '<':  fputs ("&lt;", out); break;
            case '>':  fputs ("&gt;", out); break;
            case '&':  fputs ("&amp;", out); break;
            case '\'': fputs ("&apos;", out); break;
            case '"':  fputs ("&quot;", out); break;
            case '\t': fputs ("&#9;", out); break;
            case '\n': fputs ("&#10;", out); break;
            case '\r': fputs ("&#13;", out); break;
            default:
                //  XML 1.0 cannot carry other control characters at all.
                fputc ((unsigned char) *text < 0x20 || *text == 0x7f ? '?' : *text, out);
        }
    }
}

static const char *
s_str (const json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    return value ? value : "";
}

char *
zv_domain_xml (const json_t *instance, const char *domain_type)
{
    const json_t *flavor = json_object_get (instance, "flavor");
    const json_t *image = json_object_get (instance, "image");
    json_int_t ram_mb = json_integer_value (json_object_get (flavor, "ram_mb"));
    json_int_t vcpus = json_integer_value (json_object_get (flavor, "vcpus"));
    char *buffer = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&buffer, &size);
    if (!out)
        return NULL;
    fprintf (out, "<domain type='%s'>\n", domain_type);
    fprintf (out, "  <name>" ZV_DOMAIN_PREFIX "%s</name>\n", s_str (instance, "uuid"));
    fprintf (out, "  <uuid>%s</uuid>\n", s_str (instance, "uuid"));
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
    fputs ("'/>\n    </zova:instance>\n  </metadata>\n", out);
    fprintf (out, "  <memory unit='MiB'>%lld</memory>\n", (long long) ram_mb);
    fprintf (out, "  <vcpu>%lld</vcpu>\n", (long long) vcpus);
    //  Nova's image property hw_architecture picks the guest architecture.
    const char *arch = json_string_value (json_object_get (json_object_get (image, "properties"),
                                                           "hw_architecture"));
    fputs ("  <os>\n    <type arch='", out);
    s_escaped (out, arch && *arch ? arch : "x86_64");
    fputs ("'>hvm</type>\n  </os>\n", out);
    fputs ("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n"
           "  <on_crash>destroy</on_crash>\n", out);
    fputs ("</domain>\n", out);
    fclose (out);
    return buffer;
}
