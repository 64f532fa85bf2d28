/*  zv_virt_libvirt_consoles.c: the libvirt driver's consoles and
    screenshots.

    Where a domain's VNC server and TCP serial port listen is known only
    once QEMU runs (autoport): consoles reads it from the live XML with
    libxml2's XPath.  screenshot receives libvirt's stream into memory
    (blocking, on the calling worker).  A PNG passes through as it is: the
    test driver's picture, and QEMU 7.2's screen under libvirt 9.0
    (measured: about 60 ms for 720x400); an older QEMU sends PPM, which
    libpng encodes as PNG here (zv_virt_ppm_to_png).                       */

#include "virt/zv_virt_libvirt.h"
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <png.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Where consoles listen

//  XML from libvirt is parsed without the network, and libxml2's own error
//  printing is off (a failure is reported once, by the caller).
#define S_XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

//  The string value of an XPath expression on doc: a malloc'd string, NULL
//  when the expression selects nothing or memory runs out.
static char *
s_xpath_string (xmlXPathContextPtr context, const char *expression)
{
    xmlXPathObjectPtr result = xmlXPathEvalExpression ((const xmlChar *) expression, context);
    char *value = NULL;
    if (result && result->type == XPATH_STRING && result->stringval && *result->stringval)
        value = strdup ((const char *) result->stringval);
    xmlXPathFreeObject (result);
    return value;
}

//  A TCP port as an XML attribute gives it; 0 for none (absent, -1 while
//  libvirt has not given one yet, a service name, out of range).
static int
s_port (const char *text)
{
    if (!text || !*text)
        return 0;
    char *end = NULL;
    errno = 0;
    long port = strtol (text, &end, 10);
    return errno == 0 && *end == 0 && port > 0 && port <= 65535 ? (int) port : 0;
}

//  {host, port} into consoles under key when port is one; host is left
//  out when the XML names none.  Frees host and port.
static void
s_console_add (json_t *consoles, const char *key, char *host, char *port)
{
    int number = s_port (port);
    if (number > 0) {
        json_t *console = json_pack ("{s:i}", "port", number);
        if (host)
            json_object_set_new (console, "host", json_string (host));
        json_object_set_new (consoles, key, console);
    }
    free (host);
    free (port);
}

//  The consoles of a live domain XML: its first VNC server and its first
//  serial port QEMU listens on over TCP (a pty or a client-mode socket is
//  no console the proxy can reach).  NULL when xml does not parse.
static json_t *
s_consoles_of (const char *xml)
{
    xmlDocPtr doc = xmlReadMemory (xml, (int) strlen (xml), "domain.xml", NULL, S_XML_OPTIONS);
    xmlXPathContextPtr context = doc ? xmlXPathNewContext (doc) : NULL;
    json_t *consoles = NULL;
    if (!context)
        goto cleanup;
    consoles = json_object ();
    //  libvirt writes the first listen address both as the attribute and
    //  as a <listen> element; older documents have only one of them.
    char *host = s_xpath_string (context, "string(/domain/devices/graphics[@type='vnc'][1]/@listen)");
    if (!host)
        host = s_xpath_string (context,
            "string(/domain/devices/graphics[@type='vnc'][1]/listen[@type='address'][1]/@address)");
    s_console_add (consoles, "vnc", host,
                   s_xpath_string (context, "string(/domain/devices/graphics[@type='vnc'][1]/@port)"));
    s_console_add (consoles, "serial",
        s_xpath_string (context, "string(/domain/devices/serial[@type='tcp'][source/@mode='bind'][1]/source/@host)"),
        s_xpath_string (context, "string(/domain/devices/serial[@type='tcp'][source/@mode='bind'][1]/source/@service)"));
cleanup:
    xmlXPathFreeContext (context);
    xmlFreeDoc (doc);
    return consoles;
}

json_t *
zv_libvirt_consoles (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    json_t *consoles = NULL;
    char *xml = NULL;
    virDomainPtr domain = zv_libvirt_lookup (self, "consoles", uuid, &status, errbuf, errlen);
    if (!domain)
        goto cleanup;
    int state = zv_libvirt_state (self, domain, "consoles", uuid, &status, errbuf, errlen);
    if (state < 0)
        goto cleanup;
    //  A paused QEMU still listens; a stopped domain's XML has no ports.
    if (virDomainIsActive (domain) != 1) {
        zv_libvirt_conflict ("consoles", uuid, state, errbuf, errlen);
        goto cleanup;
    }
    xml = virDomainGetXMLDesc (domain, 0);
    if (!xml) {
        zv_libvirt_fail (self, "consoles", "virDomainGetXMLDesc", uuid, errbuf, errlen);
        goto cleanup;
    }
    consoles = s_consoles_of (xml);
    if (!consoles)
        snprintf (errbuf, errlen, "consoles: the live XML of " ZV_DOMAIN_PREFIX "%s does not parse", uuid);
cleanup:
    free (xml);
    if (domain)
        virDomainFree (domain);
    virResetLastError ();
    return consoles;
}

//  --------------------------------------------------------------------------
//  PPM -> PNG

//  The largest screenshot taken in: a 7680x4320 PPM is 100 MB.
#define S_SCREENSHOT_MAX  (128u << 20)
//  The largest PPM side converted (far beyond any screen; libpng refuses
//  sides over a million).
#define S_PPM_SIDE_MAX    65535

//  A growing byte buffer, for the stream and for libpng's output.
typedef struct {
    unsigned char *data;
    size_t size;
    size_t cap;
    size_t max;                 //  what it may grow to
    bool too_big;               //  an addition would pass max
    bool no_memory;
    char error [128];           //  libpng's message
} s_bytes_t;

static bool
s_bytes_add (s_bytes_t *bytes, const void *data, size_t len)
{
    if (len > bytes->max - bytes->size) {
        bytes->too_big = true;
        return false;
    }
    if (len > bytes->cap - bytes->size) {
        size_t cap = bytes->cap ? bytes->cap : 65536;
        while (cap - bytes->size < len)
            cap = cap > bytes->max / 2 ? bytes->max : cap * 2;
        unsigned char *grown = (unsigned char *) realloc (bytes->data, cap);
        if (!grown) {
            bytes->no_memory = true;
            return false;
        }
        bytes->data = grown;
        bytes->cap = cap;
    }
    memcpy (bytes->data + bytes->size, data, len);
    bytes->size += len;
    return true;
}

//  libpng's callbacks: output to an s_bytes_t, errors into its message
//  (libpng then returns to the setjmp in s_png_encode), warnings dropped.
static void
s_png_write (png_structp png, png_bytep data, size_t len)
{
    if (!s_bytes_add ((s_bytes_t *) png_get_io_ptr (png), data, len))
        png_error (png, "out of memory");
}

static void
s_png_flush (png_structp png)
{
    (void) png;
}

static void
s_png_error (png_structp png, png_const_charp message)
{
    s_bytes_t *bytes = (s_bytes_t *) png_get_error_ptr (png);
    snprintf (bytes->error, sizeof bytes->error, "%s", message);
    png_longjmp (png, 1);
}

static void
s_png_warning (png_structp png, png_const_charp message)
{
    (void) png;
    (void) message;
}

//  A decimal of a PPM header at *at_p, after whitespace and comments.
static bool
s_ppm_number (const unsigned char *ppm, size_t len, size_t *at_p, unsigned long *value_p)
{
    size_t at = *at_p;
    while (at < len && (ppm [at] == '#' || ppm [at] == ' ' || ppm [at] == '\t'
                        || ppm [at] == '\n' || ppm [at] == '\r' || ppm [at] == '\v' || ppm [at] == '\f')) {
        if (ppm [at] == '#')
            while (at < len && ppm [at] != '\n' && ppm [at] != '\r')
                at++;
        else
            at++;
    }
    unsigned long value = 0;
    size_t digits = 0;
    for (; at < len && ppm [at] >= '0' && ppm [at] <= '9'; at++, digits++) {
        if (value > 1000000)
            return false;       //  far beyond any field's limit: no overflow
        value = value * 10 + (unsigned long) (ppm [at] - '0');
    }
    *at_p = at;
    *value_p = value;
    return digits > 0;
}

//  The rows of a P6 raster as 8-bit RGB, scaling samples of another
//  maxval (two bytes each, big-endian, past 255).  Its own function so
//  that no local of s_png_encode changes after its setjmp.
static void
s_png_rows (png_structp png, const unsigned char *pixels, size_t width, size_t height,
            unsigned maxval, unsigned char *row)
{
    size_t samples = width * 3;
    size_t sample_bytes = maxval > 255 ? 2 : 1;
    for (size_t y = 0; y < height; y++) {
        const unsigned char *in = pixels + y * samples * sample_bytes;
        if (maxval == 255) {
            png_write_row (png, in);
            continue;
        }
        for (size_t x = 0; x < samples; x++) {
            unsigned value = sample_bytes == 2 ? (unsigned) in [2 * x] << 8 | in [2 * x + 1] : in [x];
            if (value > maxval)
                value = maxval;
            row [x] = (unsigned char) ((value * 255u + maxval / 2) / maxval);
        }
        png_write_row (png, row);
    }
}

static zv_status_t
s_png_encode (s_bytes_t *out, const unsigned char *pixels, size_t width, size_t height,
              unsigned maxval, unsigned char *row)
{
    png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, out, s_png_error, s_png_warning);
    png_infop info = png ? png_create_info_struct (png) : NULL;
    if (!info) {
        png_destroy_write_struct (&png, NULL);
        return ZV_ENOMEM;
    }
    if (setjmp (png_jmpbuf (png))) {
        png_destroy_write_struct (&png, &info);
        //  Our data is checked before: only memory can fail (libpng's own
        //  allocations say so in their message).
        return out->no_memory || strstr (out->error, "memory") ? ZV_ENOMEM : ZV_EINVAL;
    }
    png_set_write_fn (png, out, s_png_write, s_png_flush);
    png_set_IHDR (png, info, (png_uint_32) width, (png_uint_32) height, 8, PNG_COLOR_TYPE_RGB,
                  PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    //  A screen is mostly flat colour: fast compression loses little.
    png_set_compression_level (png, 3);
    png_write_info (png, info);
    s_png_rows (png, pixels, width, height, maxval, row);
    png_write_end (png, info);
    png_destroy_write_struct (&png, &info);
    return ZV_OK;
}

zv_status_t
zv_virt_ppm_to_png (const unsigned char *ppm, size_t len, unsigned char **png_p, size_t *size_p)
{
    assert (png_p && size_p);
    *png_p = NULL;
    *size_p = 0;
    size_t at = 2;
    unsigned long width = 0, height = 0, maxval = 0;
    if (!ppm || len < 2 || ppm [0] != 'P' || ppm [1] != '6'
    ||  !s_ppm_number (ppm, len, &at, &width) || !s_ppm_number (ppm, len, &at, &height)
    ||  !s_ppm_number (ppm, len, &at, &maxval)
    ||  width == 0 || height == 0 || width > S_PPM_SIDE_MAX || height > S_PPM_SIDE_MAX
    ||  maxval == 0 || maxval > 65535)
        return ZV_EINVAL;
    //  Exactly one whitespace character ends the header.
    if (at >= len || !(ppm [at] == ' ' || ppm [at] == '\t' || ppm [at] == '\n' || ppm [at] == '\r'))
        return ZV_EINVAL;
    at++;
    size_t raster = (size_t) width * height * 3 * (maxval > 255 ? 2 : 1);
    if (len - at < raster)
        return ZV_EINVAL;
    s_bytes_t out = { .max = SIZE_MAX };
    unsigned char *row = maxval == 255 ? NULL : (unsigned char *) malloc ((size_t) width * 3);
    zv_status_t status = maxval != 255 && !row
                       ? ZV_ENOMEM : s_png_encode (&out, ppm + at, width, height, (unsigned) maxval, row);
    free (row);
    if (status != ZV_OK) {
        free (out.data);
        return status;
    }
    *png_p = out.data;
    *size_p = out.size;
    return ZV_OK;
}

//  --------------------------------------------------------------------------
//  Screenshots

//  virStreamRecvAll's sink: the screenshot into an s_bytes_t.
static int
s_screenshot_sink (virStreamPtr stream, const char *data, size_t len, void *opaque)
{
    (void) stream;
    return s_bytes_add ((s_bytes_t *) opaque, data, len) ? (int) len : -1;
}

zv_status_t
zv_libvirt_screenshot (zv_virt_t *self, const char *uuid, unsigned char **png_p, size_t *size_p,
                       char *errbuf, size_t errlen)
{
    *png_p = NULL;
    *size_p = 0;
    zv_status_t status = ZV_OK;
    virStreamPtr stream = NULL;
    char *mime = NULL;
    s_bytes_t image = { .max = S_SCREENSHOT_MAX };
    virDomainPtr domain = zv_libvirt_lookup (self, "screenshot", uuid, &status, errbuf, errlen);
    if (!domain)
        goto cleanup;
    int state = zv_libvirt_state (self, domain, "screenshot", uuid, &status, errbuf, errlen);
    if (state < 0)
        goto cleanup;
    //  The test driver gives its picture even for a stopped domain: the
    //  state is checked here so that every driver answers alike.
    if (virDomainIsActive (domain) != 1) {
        status = zv_libvirt_conflict ("screenshot", uuid, state, errbuf, errlen);
        goto cleanup;
    }
    stream = virStreamNew (self->conn, 0);
    if (!stream) {
        status = zv_libvirt_fail (self, "screenshot", "virStreamNew", uuid, errbuf, errlen);
        goto cleanup;
    }
    mime = virDomainScreenshot (domain, stream, 0, 0);
    if (!mime) {
        status = zv_libvirt_fail (self, "screenshot", "virDomainScreenshot", uuid, errbuf, errlen);
        goto cleanup;
    }
    //  On failure libvirt has aborted the stream already.
    if (virStreamRecvAll (stream, s_screenshot_sink, &image) < 0) {
        if (image.too_big || image.no_memory) {
            virResetLastError ();
            if (image.too_big)
                snprintf (errbuf, errlen, "screenshot of " ZV_DOMAIN_PREFIX "%s: larger than %u MiB",
                          uuid, S_SCREENSHOT_MAX >> 20);
            else
                snprintf (errbuf, errlen, "screenshot of " ZV_DOMAIN_PREFIX "%s: out of memory", uuid);
            status = image.too_big ? ZV_ETOOBIG : ZV_ENOMEM;
        }
        else
            status = zv_libvirt_fail (self, "screenshot", "virStreamRecvAll", uuid, errbuf, errlen);
        goto cleanup;
    }
    if (virStreamFinish (stream) < 0) {
        status = zv_libvirt_fail (self, "screenshot", "virStreamFinish", uuid, errbuf, errlen);
        goto cleanup;
    }
    static const unsigned char png_signature [8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    if (image.size >= sizeof png_signature && memcmp (image.data, png_signature, sizeof png_signature) == 0) {
        *png_p = image.data;            //  already PNG (whatever the mime type says)
        *size_p = image.size;
        image.data = NULL;
    }
    else {
        status = zv_virt_ppm_to_png (image.data, image.size, png_p, size_p);
        if (status == ZV_EINVAL) {
            snprintf (errbuf, errlen, "screenshot is unsupported by %s: its %s image (%zu bytes) "
                      "is neither PNG nor binary PPM", self->uri, mime, image.size);
            status = ZV_EUNSUPPORTED;
        }
        else
        if (status != ZV_OK)
            snprintf (errbuf, errlen, "screenshot of " ZV_DOMAIN_PREFIX "%s: out of memory", uuid);
    }
cleanup:
    free (image.data);
    free (mime);
    if (stream)
        virStreamFree (stream);
    if (domain)
        virDomainFree (domain);
    virResetLastError ();
    return status;
}

