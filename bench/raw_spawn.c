/*  raw_spawn.c: the hypervisor's own limit for the real-guest spawn benchmark.

        raw_spawn URI XML_FILE

    One libvirt connection to URI, then virDomainDefineXML + virDomainCreate
    of the domain in XML_FILE: the two calls compute's libvirt driver makes
    when it spawns a server (zv_virt_libvirt.c), on a copy of a document
    compute wrote, so both sides hand libvirt the same guest.  It returns
    once virDomainCreate has, that is once QEMU runs the guest's vCPU.

    bench/guest.sh times this program as a whole, from before it starts to
    its exit (process start and connection included, as `zova server
    create` pays its own), and then polls the guest agent the same way for
    both sides.  It prints, as "name: value" lines, what happened inside:
    connect_ms, define_ms and start_ms, so that the share of process start
    and connection is visible.  The domain is left running: the caller
    destroys and undefines it outside the clock.  This program, like the
    driver it stands in for, is allowed to include libvirt.                */

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include "zv_bench.h"

static void
s_quiet (void *arg, virErrorPtr error)
{
    (void) arg;
    (void) error;
}

static int
s_error (const char *what)
{
    virErrorPtr error = virGetLastError ();
    fprintf (stderr, "raw_spawn: %s: %s\n", what, error ? error->message : "?");
    return 1;
}

//  The whole file as a string; caller owns.  NULL on any error.
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *text = NULL;
    long size = -1;
    if (fseek (file, 0, SEEK_END) == 0)
        size = ftell (file);
    if (size >= 0 && fseek (file, 0, SEEK_SET) == 0)
        text = (char *) malloc ((size_t) size + 1);
    if (text && fread (text, 1, (size_t) size, file) == (size_t) size)
        text [size] = 0;
    else {
        free (text);
        text = NULL;
    }
    fclose (file);
    return text;
}

int
main (int argc, char *argv [])
{
    if (argc != 3) {
        fprintf (stderr, "usage: raw_spawn URI XML_FILE\n");
        return 2;
    }
    char *xml = s_slurp (argv [2]);
    if (!xml) {
        fprintf (stderr, "raw_spawn: cannot read %s\n", argv [2]);
        return 1;
    }
    virSetErrorFunc (NULL, s_quiet);
    int rc = 1;
    virDomainPtr domain = NULL;
    int64_t start = zv_bench_us ();
    virConnectPtr conn = virConnectOpen (argv [1]);
    if (!conn) {
        rc = s_error ("virConnectOpen");
        goto cleanup;
    }
    int64_t connected = zv_bench_us ();
    domain = virDomainDefineXML (conn, xml);
    if (!domain) {
        rc = s_error ("virDomainDefineXML");
        goto cleanup;
    }
    int64_t defined = zv_bench_us ();
    if (virDomainCreate (domain) < 0) {
        rc = s_error ("virDomainCreate");
        goto cleanup;
    }
    int64_t started = zv_bench_us ();
    int state = 0, reason = 0;
    if (virDomainGetState (domain, &state, &reason, 0) < 0 || state != VIR_DOMAIN_RUNNING) {
        fprintf (stderr, "raw_spawn: domain not running after virDomainCreate (state %d)\n", state);
        goto cleanup;
    }
    zv_bench_figure ("connect_ms", (double) (connected - start) / 1000.0);
    zv_bench_figure ("define_ms", (double) (defined - connected) / 1000.0);
    zv_bench_figure ("start_ms", (double) (started - defined) / 1000.0);
    rc = 0;

cleanup:
    if (domain)
        virDomainFree (domain);
    if (conn)
        virConnectClose (conn);
    free (xml);
    return rc;
}
