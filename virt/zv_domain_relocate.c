/*  zv_domain_relocate.c: a domain's XML made ready for another host
    (zv_domain_xml_relocate).

    A live migration between hosts whose instance directories differ (no
    shared storage) gives libvirt the destination's own XML, as Nova does:
    the source's migratable XML with every file path under the source's
    directory moved to the destination's, and the serial console on the
    TCP port the destination chose.  Pure, apart from the libvirt driver,
    so that it is checked on documents zv_domain_xml writes without a
    hypervisor.

    The document is parsed with libxml2 and changed in place, attribute by
    attribute and text by text, through a table of XPath expressions (one
    row per kind of path a domain holds); everything else is serialized as
    it was parsed (libxml2 writes attributes in double quotes and drops the
    XML declaration, which libvirt never writes).  A path is moved only
    when it is from_dir itself or lies under it at a path boundary:
    "/a/inst2/disk" is not under "/a/inst".                                */

#include "virt/zv_virt.h"
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  XML is parsed without the network, and libxml2's own error printing is
//  off (a failure is reported once, in errbuf).
#define S_XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

//  Where a domain holds file paths: attributes, or the text of elements.
//  Character devices hold a file (type 'file') or a socket (type 'unix')
//  in source/@path; a pty's is /dev/pts/N, never under an instance
//  directory.  Disks' source/@file at any depth covers their backing
//  chains (backingStore/source) as well.
static const char *s_paths [] = {
    "/domain/devices/disk//source/@file",
    "/domain/os/kernel",
    "/domain/os/initrd",
    "/domain/os/dtb",
    "/domain/os/nvram",
    "/domain/devices/*[self::serial or self::console or self::channel or self::parallel]/log/@file",
    "/domain/devices/*[self::serial or self::console or self::channel or self::parallel]"
        "[@type='file' or @type='unix']/source/@path",
};

//  The serial console's TCP port, and the <console> that mirrors serial
//  port 0 (libvirt reads them as one device, so they must agree).  Only a
//  port QEMU listens on (bind) is this host's to choose.
#define S_SERIAL_PORTS \
    "/domain/devices/*[self::serial or self::console][@type='tcp']/source[@mode='bind']/@service"

//  The length of dir without its trailing slashes ("/" stays "/").
static size_t
s_dir_len (const char *dir)
{
    size_t len = strlen (dir);
    while (len > 1 && dir [len - 1] == '/')
        len--;
    return len;
}

//  path moved from from_dir to to_dir (malloc'd), or NULL when it is not
//  under from_dir.  from_len and to_len are the directories' lengths
//  without trailing slashes.
static char *
s_moved (const char *path, const char *from_dir, size_t from_len, const char *to_dir, size_t to_len)
{
    //  A root from_dir ("/") holds every absolute path.
    if (from_len == 1 && from_dir [0] == '/')
        from_len = 0;
    if (strncmp (path, from_dir, from_len) != 0)
        return NULL;
    const char *rest = path + from_len;
    if (*rest != 0 && *rest != '/')
        return NULL;
    if (from_len == 0 && *rest != '/')
        return NULL;
    if (to_len == 1 && to_dir [0] == '/' && *rest == '/')
        to_len = 0;
    size_t rest_len = strlen (rest);
    char *moved = (char *) malloc (to_len + rest_len + 1);
    if (!moved)
        return NULL;
    memcpy (moved, to_dir, to_len);
    memcpy (moved + to_len, rest, rest_len + 1);
    return moved;
}

//  Set the value of an attribute or the text of an element, taken as
//  plain text (libxml2 escapes it when writing).
static void
s_set_value (xmlNodePtr node, const char *value)
{
    if (node->type == XML_ATTRIBUTE_NODE)
        xmlSetProp (node->parent, node->name, (const xmlChar *) value);
    else {
        xmlNodeSetContent (node, NULL);
        xmlNodeAddContent (node, (const xmlChar *) value);
    }
}

//  Move every path that expression selects and that lies under from_dir.
//  false when the expression fails or memory runs out.
static bool
s_relocate_nodes (xmlXPathContextPtr context, const char *expression, const char *from_dir,
                  const char *to_dir)
{
    xmlXPathObjectPtr result = xmlXPathEvalExpression ((const xmlChar *) expression, context);
    if (!result)
        return false;
    size_t from_len = s_dir_len (from_dir);
    size_t to_len = s_dir_len (to_dir);
    bool ok = true;
    xmlNodeSetPtr nodes = result->nodesetval;
    for (int index = 0; ok && nodes && index < nodes->nodeNr; index++) {
        xmlNodePtr node = nodes->nodeTab [index];
        xmlChar *path = xmlNodeGetContent (node);
        if (!path) {
            ok = false;
            break;
        }
        char *moved = s_moved ((const char *) path, from_dir, from_len, to_dir, to_len);
        if (moved)
            s_set_value (node, moved);
        free (moved);
        xmlFree (path);
    }
    xmlXPathFreeObject (result);
    return ok;
}

static bool
s_set_ports (xmlXPathContextPtr context, int serial_port)
{
    xmlXPathObjectPtr result = xmlXPathEvalExpression ((const xmlChar *) S_SERIAL_PORTS, context);
    if (!result)
        return false;
    char port [16];
    snprintf (port, sizeof port, "%d", serial_port);
    xmlNodeSetPtr nodes = result->nodesetval;
    for (int index = 0; nodes && index < nodes->nodeNr; index++)
        s_set_value (nodes->nodeTab [index], port);
    xmlXPathFreeObject (result);
    return true;
}

//  The document as text without an XML declaration (malloc'd), or NULL.
static char *
s_serialize (xmlDocPtr doc)
{
    xmlBufferPtr buffer = xmlBufferCreate ();
    xmlSaveCtxtPtr save = buffer ? xmlSaveToBuffer (buffer, "UTF-8", XML_SAVE_NO_DECL) : NULL;
    char *text = NULL;
    if (save) {
        bool saved = xmlSaveDoc (save, doc) >= 0;
        if (xmlSaveClose (save) >= 0 && saved)
            text = strdup ((const char *) xmlBufferContent (buffer));
    }
    xmlBufferFree (buffer);
    return text;
}

char *
zv_domain_xml_relocate (const char *xml, const char *from_dir, const char *to_dir, int serial_port,
                        char *errbuf, size_t errlen)
{
    if (!xml || !from_dir || !to_dir || *from_dir != '/' || *to_dir != '/'
    ||  serial_port < 0 || serial_port > 65535) {
        snprintf (errbuf, errlen, "relocate: needs a domain XML, two absolute directories and a port "
                  "(from '%s' to '%s', port %d)", from_dir ? from_dir : "(null)",
                  to_dir ? to_dir : "(null)", serial_port);
        return NULL;
    }
    xmlDocPtr doc = xmlReadMemory (xml, (int) strlen (xml), "domain.xml", NULL, S_XML_OPTIONS);
    xmlXPathContextPtr context = NULL;
    char *moved = NULL;
    if (!doc) {
        const xmlError *error = xmlGetLastError ();
        snprintf (errbuf, errlen, "relocate: the domain XML does not parse: line %d: %s",
                  error ? error->line : 0, error && error->message ? error->message : "unknown error");
        //  Messages end in a newline.
        size_t len = strlen (errbuf);
        if (len && errbuf [len - 1] == '\n')
            errbuf [len - 1] = 0;
        xmlResetLastError ();
        goto cleanup;
    }
    xmlNodePtr root = xmlDocGetRootElement (doc);
    if (!root || xmlStrcmp (root->name, (const xmlChar *) "domain") != 0) {
        snprintf (errbuf, errlen, "relocate: the document is not a domain (<%s>)",
                  root ? (const char *) root->name : "");
        goto cleanup;
    }
    context = xmlXPathNewContext (doc);
    if (!context)
        goto no_memory;
    for (size_t row = 0; row < sizeof s_paths / sizeof s_paths [0]; row++)
        if (!s_relocate_nodes (context, s_paths [row], from_dir, to_dir))
            goto no_memory;
    if (serial_port > 0 && !s_set_ports (context, serial_port))
        goto no_memory;
    moved = s_serialize (doc);
    if (!moved)
        goto no_memory;
    goto cleanup;
no_memory:
    snprintf (errbuf, errlen, "relocate: out of memory");
cleanup:
    xmlXPathFreeContext (context);
    xmlFreeDoc (doc);
    return moved;
}
