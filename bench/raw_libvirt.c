/*  raw_libvirt.c: the hypervisor's own limit for the boot benchmark.

        raw_libvirt NODE_XML COUNT

    One thread, one private test:///NODE_XML connection, COUNT times
    virDomainDefineXML + virDomainCreate of the domain compute would define
    for a tiny instance: the XML comes from zv_domain_xml (the function the
    compute's libvirt driver calls) on an instance record of the conductor's
    shape, so both sides hand libvirt identical documents.  The XML is made
    before the clock starts: what is timed is libvirt alone.  The rate is the
    ceiling zova's end-to-end boot rate is compared with
    (boot_ratio_vs_raw_libvirt = zova servers/s / this).  This program, like
    the driver it stands in for, is allowed to include libvirt.            */

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>
#include "virt/zv_virt.h"
#include "zv_bench.h"

static void
s_quiet (void *arg, virErrorPtr error)
{
    (void) arg;
    (void) error;
}

int
main (int argc, char *argv [])
{
    if (argc < 3) {
        fprintf (stderr, "usage: raw_libvirt NODE_XML COUNT\n");
        return 2;
    }
    int count = atoi (argv [2]);
    char uri [1100];
    snprintf (uri, sizeof uri, "test://%s", argv [1]);
    virSetErrorFunc (NULL, s_quiet);
    virConnectPtr conn = virConnectOpen (uri);
    if (!conn) {
        virErrorPtr error = virGetLastError ();
        fprintf (stderr, "raw_libvirt: cannot open %s: %s\n", uri, error ? error->message : "?");
        return 1;
    }
    char **xml = (char **) calloc ((size_t) count, sizeof (char *));
    for (int index = 0; index < count; index++) {
        char uuid [ZV_UUID_LEN + 1], name [32];
        zv_uuid_new (uuid);
        snprintf (name, sizeof name, "raw-%d", index + 1);
        json_t *rec = zv_bench_instance (uuid, name, NULL, false);
        xml [index] = zv_domain_xml (rec, "test", NULL);
        json_decref (rec);
    }
    int64_t start = zv_bench_us ();
    for (int index = 0; index < count; index++) {
        virDomainPtr domain = virDomainDefineXML (conn, xml [index]);
        if (!domain || virDomainCreate (domain) < 0) {
            virErrorPtr error = virGetLastError ();
            fprintf (stderr, "raw_libvirt: domain %d: %s\n", index, error ? error->message : "?");
            return 1;
        }
        virDomainFree (domain);
    }
    double seconds = (double) (zv_bench_us () - start) / 1e6;
    int running = virConnectNumOfDomains (conn);
    for (int index = 0; index < count; index++)
        free (xml [index]);
    free (xml);
    virConnectClose (conn);
    if (running < count) {
        fprintf (stderr, "raw_libvirt: only %d of %d domains running\n", running, count);
        return 1;
    }
    zv_bench_figure ("raw_libvirt_define_start_per_s", count / seconds);
    return 0;
}
