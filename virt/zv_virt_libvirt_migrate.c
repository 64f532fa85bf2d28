/*  zv_virt_libvirt_migrate.c: the libvirt driver's live migration (the
    source's half): migrate_live, the running job's figures, abort,
    post-copy and downtime; the migratable XML, and whether this host can
    run a guest's CPU (asked on the destination).

    Peer to peer, as Nova's libvirt driver migrates: the source's libvirtd
    connects to the destination's (how->peer_uri) and drives every phase
    itself, so no connection from this process to the destination is held
    open while the guest moves, and a compute that dies does not strand the
    job.  Memory (and with how->block the top overlay of each disk, over
    NBD) travels on how->migrate_uri.  The domain ends persistent on the
    destination and undefined here; the destination's definition is
    how->dest_xml both live and persistent (Nova passes it twice too:
    without VIR_MIGRATE_PARAM_PERSIST_XML libvirt would persist the
    source's own definition there, with the source's paths).

    Shared storage is not provable by libvirt when both hosts see one local
    path (or an NFS mount it does not recognise): without block, the
    VIR_MIGRATE_UNSAFE flag says so (scripts/two-hosts.sh, --shared).

    Threads: migrate_live blocks until the job ends, on a compute worker
    holding its own reference of the zv_virt_t; job_stats, job_abort,
    migrate_postcopy and migrate_downtime come meanwhile from another
    thread on the zv_virt_t's connection (libvirt's QEMU driver lets these
    calls in while the migration job runs).  migrate_live makes its one
    long call on a connection of its own, opened for it and closed after:
    libvirt 9.0's client, while one thread waits on a call, delivers the
    replies of the others' calls on the same connection only when that
    thread wakes (its own reply, or the next keepalive, 5 s here); measured
    on scripts/two-hosts.sh, job_stats took 2-5 s on the shared connection
    and 1-4 ms on another.

    libvirt's test driver has no migration and no jobs: every operation
    that would move a guest says ZV_EUNSUPPORTED in so many words (zova
    moves its domains on the simulated path instead), job_stats finds no
    job, and any CPU is compatible.                                        */

#include "virt/zv_virt_libvirt.h"
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  XML is parsed without the network, and libxml2's own error printing is
//  off (a failure is reported once, by the caller).
#define S_XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

#define S_TEST_WHY "libvirt's test driver cannot migrate live; zova moves such domains on its simulated path"

//  virDomainJobType as job_stats names it.
static const char *
s_job_type (int type)
{
    switch ((virDomainJobType) type) {
        case VIR_DOMAIN_JOB_NONE:      return "none";
        case VIR_DOMAIN_JOB_BOUNDED:   return "bounded";
        case VIR_DOMAIN_JOB_UNBOUNDED: return "unbounded";
        case VIR_DOMAIN_JOB_COMPLETED: return "completed";
        case VIR_DOMAIN_JOB_FAILED:    return "failed";
        case VIR_DOMAIN_JOB_CANCELLED: return "cancelled";
        case VIR_DOMAIN_JOB_LAST:      break;
    }
    return "unknown";
}

//  virDomainJobOperation as job_stats names it.
static const char *
s_job_operation (int operation)
{
    switch ((virDomainJobOperation) operation) {
        case VIR_DOMAIN_JOB_OPERATION_UNKNOWN:         return "unknown";
        case VIR_DOMAIN_JOB_OPERATION_START:           return "start";
        case VIR_DOMAIN_JOB_OPERATION_SAVE:            return "save";
        case VIR_DOMAIN_JOB_OPERATION_RESTORE:         return "restore";
        case VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN:    return "migration_in";
        case VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT:   return "migration_out";
        case VIR_DOMAIN_JOB_OPERATION_SNAPSHOT:        return "snapshot";
        case VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_REVERT: return "snapshot_revert";
        case VIR_DOMAIN_JOB_OPERATION_DUMP:            return "dump";
        case VIR_DOMAIN_JOB_OPERATION_BACKUP:          return "backup";
        case VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_DELETE: return "snapshot_delete";
        case VIR_DOMAIN_JOB_OPERATION_LAST:            break;
    }
    return "unknown";
}

//  The figures of job_stats: its key, libvirt's typed parameter.  A
//  figure QEMU does not give (disks without block, the dirty rate before
//  the first iteration ends) is 0.
static const struct {
    const char *key;
    const char *field;
} s_figures [] = {
    { "elapsed_ms",       VIR_DOMAIN_JOB_TIME_ELAPSED },
    { "memory_total",     VIR_DOMAIN_JOB_MEMORY_TOTAL },
    { "memory_processed", VIR_DOMAIN_JOB_MEMORY_PROCESSED },
    { "memory_remaining", VIR_DOMAIN_JOB_MEMORY_REMAINING },
    { "disk_total",       VIR_DOMAIN_JOB_DISK_TOTAL },
    { "disk_processed",   VIR_DOMAIN_JOB_DISK_PROCESSED },
    { "disk_remaining",   VIR_DOMAIN_JOB_DISK_REMAINING },
    { "memory_bps",       VIR_DOMAIN_JOB_MEMORY_BPS },
    { "dirty_rate",       VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE },
    { "iteration",        VIR_DOMAIN_JOB_MEMORY_ITERATION },
};

//  --------------------------------------------------------------------------
//  Helpers

//  ZV_EUNSUPPORTED on libvirt's test driver, with why; ZV_OK elsewhere.
static zv_status_t
s_test_driver (zv_virt_t *self, const char *operation, char *errbuf, size_t errlen)
{
    if (strcmp (self->domain_type, "test") != 0)
        return ZV_OK;
    snprintf (errbuf, errlen, "%s is unsupported by %s: " S_TEST_WHY, operation, self->uri);
    return ZV_EUNSUPPORTED;
}

//  Is the domain in post-copy (either side, failed or not)?  From its
//  state's reason: libvirt's job figures do not say.
static bool
s_postcopy (virDomainPtr domain)
{
    int state = VIR_DOMAIN_NOSTATE, reason = 0;
    if (virDomainGetState (domain, &state, &reason, 0) < 0) {
        virResetLastError ();
        return false;
    }
    if (state == VIR_DOMAIN_PAUSED)
        return reason == VIR_DOMAIN_PAUSED_POSTCOPY || reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED;
    if (state == VIR_DOMAIN_RUNNING)
        return reason == VIR_DOMAIN_RUNNING_POSTCOPY || reason == VIR_DOMAIN_RUNNING_POSTCOPY_FAILED;
    return false;
}

//  Does a job run on the domain?  (false when libvirt cannot say.)
static bool
s_job_runs (virDomainPtr domain)
{
    virDomainJobInfo info;
    bool runs = virDomainGetJobInfo (domain, &info) == 0
             && (info.type == VIR_DOMAIN_JOB_BOUNDED || info.type == VIR_DOMAIN_JOB_UNBOUNDED);
    virResetLastError ();
    return runs;
}

//  --------------------------------------------------------------------------
//  Migrate

zv_status_t
zv_libvirt_migrate_live (zv_virt_t *self, const char *uuid, const zv_virt_migration_t *how,
                         char *errbuf, size_t errlen)
{
    zv_status_t status = s_test_driver (self, "migrate_live", errbuf, errlen);
    if (status != ZV_OK)
        return status;
    if (!how || !how->peer_uri || !*how->peer_uri || how->bandwidth_mib < 0 || how->downtime_ms < 0) {
        snprintf (errbuf, errlen, "migrate_live: needs the destination's URI and no negative figures");
        return ZV_EINVAL;
    }
    virTypedParameterPtr params = NULL;
    int nparams = 0, maxparams = 0;
    virConnectPtr conn = NULL;
    virDomainPtr mover = NULL;
    virDomainPtr domain = zv_libvirt_lookup (self, "migrate_live", uuid, &status, errbuf, errlen);
    if (!domain)
        goto cleanup;
    int state = zv_libvirt_state (self, domain, "migrate_live", uuid, &status, errbuf, errlen);
    if (state < 0)
        goto cleanup;
    //  A paused guest moves as well (it stays paused there).
    if (!zv_libvirt_running (state) && state != VIR_DOMAIN_PAUSED) {
        status = zv_libvirt_conflict ("migrate_live", uuid, state, errbuf, errlen);
        goto cleanup;
    }
    if ((how->migrate_uri && *how->migrate_uri
         && virTypedParamsAddString (&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_URI,
                                     how->migrate_uri) < 0)
    ||  (how->dest_xml
         && (virTypedParamsAddString (&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_DEST_XML,
                                      how->dest_xml) < 0
             || virTypedParamsAddString (&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_PERSIST_XML,
                                         how->dest_xml) < 0))
    ||  (how->bandwidth_mib > 0
         && virTypedParamsAddULLong (&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_BANDWIDTH,
                                     (unsigned long long) how->bandwidth_mib) < 0)) {
        status = zv_libvirt_fail (self, "migrate_live", "virTypedParamsAdd", uuid, errbuf, errlen);
        goto cleanup;
    }
    unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST
                       | VIR_MIGRATE_UNDEFINE_SOURCE;
    if (how->block)
        flags |= VIR_MIGRATE_NON_SHARED_INC;
    else
        flags |= VIR_MIGRATE_UNSAFE;
    if (how->auto_converge)
        flags |= VIR_MIGRATE_AUTO_CONVERGE;
    if (how->postcopy)
        flags |= VIR_MIGRATE_POSTCOPY;
    //  QEMU keeps the limit as a migration parameter, so it holds for the
    //  job about to start; a driver that takes it only while a job runs
    //  leaves it to migrate_downtime.
    if (how->downtime_ms > 0
    &&  virDomainMigrateSetMaxDowntime (domain, (unsigned long long) how->downtime_ms, 0) < 0)
        virResetLastError ();
    //  The long call on a connection of its own (see the banner), which
    //  notices a dead libvirtd as the shared one does.
    conn = virConnectOpen (self->uri);
    if (!conn) {
        status = zv_libvirt_fail (self, "migrate_live", "virConnectOpen", uuid, errbuf, errlen);
        goto cleanup;
    }
    if (virConnectSetKeepAlive (conn, 5, 3) < 0)
        virResetLastError ();
    mover = virDomainLookupByUUIDString (conn, uuid);
    if (!mover) {
        status = zv_libvirt_fail (self, "migrate_live", "virDomainLookupByUUIDString", uuid, errbuf, errlen);
        goto cleanup;
    }
    if (virDomainMigrateToURI3 (mover, how->peer_uri, params, (unsigned int) nparams, flags) < 0) {
        status = zv_libvirt_fail (self, "migrate_live", "virDomainMigrateToURI3", uuid, errbuf, errlen);
        //  A post-copy that failed leaves the guest split between the two
        //  hosts, running on neither: say so, it is no ordinary failure.
        if (s_postcopy (domain)) {
            size_t len = strlen (errbuf);
            snprintf (errbuf + len, errlen - len, " (post-copy failed: the guest is paused, its memory split "
                      "between the hosts)");
        }
        goto cleanup;
    }
    status = ZV_OK;
cleanup:
    virTypedParamsFree (params, nparams);
    if (mover)
        virDomainFree (mover);
    if (conn)
        virConnectClose (conn);
    if (domain)
        virDomainFree (domain);
    virResetLastError ();
    return status;
}

//  --------------------------------------------------------------------------
//  The running job

json_t *
zv_libvirt_job_stats (zv_virt_t *self, const char *uuid, zv_status_t *status_p, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    json_t *stats = NULL;
    virTypedParameterPtr params = NULL;
    int nparams = 0, type = VIR_DOMAIN_JOB_NONE;
    virDomainPtr domain = NULL;
    if (strcmp (self->domain_type, "test") == 0) {
        snprintf (errbuf, errlen, "job_stats: no job runs on " ZV_DOMAIN_PREFIX "%s (libvirt's test driver "
                  "has no jobs)", uuid ? uuid : "?");
        status = ZV_ENOTFOUND;
        goto cleanup;
    }
    domain = zv_libvirt_lookup (self, "job_stats", uuid, &status, errbuf, errlen);
    if (!domain)
        goto cleanup;
    if (virDomainGetJobStats (domain, &type, &params, &nparams, 0) < 0) {
        status = zv_libvirt_fail (self, "job_stats", "virDomainGetJobStats", uuid, errbuf, errlen);
        goto cleanup;
    }
    //  A job that ended (completed, failed, cancelled) is reported, with
    //  its figures zeroed, until the call that ran it returns: no job runs.
    if (type != VIR_DOMAIN_JOB_BOUNDED && type != VIR_DOMAIN_JOB_UNBOUNDED) {
        if (type == VIR_DOMAIN_JOB_NONE)
            snprintf (errbuf, errlen, "job_stats: no job runs on " ZV_DOMAIN_PREFIX "%s", uuid);
        else
            snprintf (errbuf, errlen, "job_stats: no job runs on " ZV_DOMAIN_PREFIX "%s (the last one %s)",
                      uuid, s_job_type (type));
        status = ZV_ENOTFOUND;
        goto cleanup;
    }
    int operation = VIR_DOMAIN_JOB_OPERATION_UNKNOWN;
    if (virTypedParamsGetInt (params, nparams, VIR_DOMAIN_JOB_OPERATION, &operation) < 0)
        virResetLastError ();
    stats = json_pack ("{s:s, s:s}", "type", s_job_type (type), "operation", s_job_operation (operation));
    for (size_t row = 0; stats && row < sizeof s_figures / sizeof s_figures [0]; row++) {
        unsigned long long value = 0;
        if (virTypedParamsGetULLong (params, nparams, s_figures [row].field, &value) < 0)
            virResetLastError ();
        json_object_set_new (stats, s_figures [row].key, json_integer ((json_int_t) value));
    }
    if (stats)
        json_object_set_new (stats, "postcopy", json_boolean (s_postcopy (domain)));
    else {
        snprintf (errbuf, errlen, "job_stats: out of memory");
        status = ZV_ENOMEM;
    }
cleanup:
    virTypedParamsFree (params, nparams);
    if (domain)
        virDomainFree (domain);
    virResetLastError ();
    if (status_p)
        *status_p = status;
    return stats;
}

zv_status_t
zv_libvirt_job_abort (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = s_test_driver (self, "job_abort", errbuf, errlen);
    if (status != ZV_OK)
        return status;
    virDomainPtr domain = zv_libvirt_lookup (self, "job_abort", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    if (virDomainAbortJob (domain) < 0) {
        status = zv_libvirt_fail (self, "job_abort", "virDomainAbortJob", uuid, errbuf, errlen);
        //  The job ended meanwhile: nothing left to abort.
        if (status == ZV_ECONFLICT && !s_job_runs (domain)) {
            snprintf (errbuf, errlen, "job_abort: no job runs on " ZV_DOMAIN_PREFIX "%s", uuid);
            status = ZV_ENOTFOUND;
        }
    }
    virDomainFree (domain);
    virResetLastError ();
    return status;
}

zv_status_t
zv_libvirt_migrate_postcopy (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = s_test_driver (self, "migrate_postcopy", errbuf, errlen);
    if (status != ZV_OK)
        return status;
    virDomainPtr domain = zv_libvirt_lookup (self, "migrate_postcopy", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    if (virDomainMigrateStartPostCopy (domain, 0) < 0)
        status = zv_libvirt_fail (self, "migrate_postcopy", "virDomainMigrateStartPostCopy", uuid,
                                  errbuf, errlen);
    virDomainFree (domain);
    virResetLastError ();
    return status;
}

zv_status_t
zv_libvirt_migrate_downtime (zv_virt_t *self, const char *uuid, int downtime_ms, char *errbuf, size_t errlen)
{
    zv_status_t status = s_test_driver (self, "migrate_downtime", errbuf, errlen);
    if (status != ZV_OK)
        return status;
    if (downtime_ms <= 0) {
        snprintf (errbuf, errlen, "migrate_downtime: %d ms is no downtime", downtime_ms);
        return ZV_EINVAL;
    }
    virDomainPtr domain = zv_libvirt_lookup (self, "migrate_downtime", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    if (virDomainMigrateSetMaxDowntime (domain, (unsigned long long) downtime_ms, 0) < 0)
        status = zv_libvirt_fail (self, "migrate_downtime", "virDomainMigrateSetMaxDowntime", uuid,
                                  errbuf, errlen);
    virDomainFree (domain);
    virResetLastError ();
    return status;
}

//  --------------------------------------------------------------------------
//  Before the move

char *
zv_libvirt_migratable_xml (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    virDomainPtr domain = zv_libvirt_lookup (self, "migratable_xml", uuid, &status, errbuf, errlen);
    if (!domain)
        return NULL;
    //  SECURE: a VNC password, if any, goes along.
    char *xml = virDomainGetXMLDesc (domain, VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE);
    if (!xml)
        zv_libvirt_fail (self, "migratable_xml", "virDomainGetXMLDesc", uuid, errbuf, errlen);
    virDomainFree (domain);
    virResetLastError ();
    return xml;
}

//  The string value of an XPath expression (malloc'd), NULL when empty.
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

//  The <cpu> element of doc as text (malloc'd), NULL when it has none.
static char *
s_cpu_xml (xmlDocPtr doc, xmlXPathContextPtr context)
{
    xmlXPathObjectPtr result = xmlXPathEvalExpression ((const xmlChar *) "/domain/cpu", context);
    char *text = NULL;
    if (result && result->nodesetval && result->nodesetval->nodeNr > 0) {
        xmlBufferPtr buffer = xmlBufferCreate ();
        if (buffer && xmlNodeDump (buffer, doc, result->nodesetval->nodeTab [0], 0, 0) >= 0)
            text = strdup ((const char *) xmlBufferContent (buffer));
        xmlBufferFree (buffer);
    }
    xmlXPathFreeObject (result);
    return text;
}

zv_status_t
zv_libvirt_cpu_compatible (zv_virt_t *self, const char *domain_xml, char *errbuf, size_t errlen)
{
    if (strcmp (self->domain_type, "test") == 0)
        return ZV_OK;
    if (!domain_xml) {
        snprintf (errbuf, errlen, "cpu_compatible: no domain XML");
        return ZV_EINVAL;
    }
    zv_status_t status = ZV_OK;
    char *cpu = NULL, *emulator = NULL, *arch = NULL, *machine = NULL, *virttype = NULL, *model = NULL;
    xmlXPathContextPtr context = NULL;
    xmlDocPtr doc = xmlReadMemory (domain_xml, (int) strlen (domain_xml), "domain.xml", NULL, S_XML_OPTIONS);
    if (doc)
        context = xmlXPathNewContext (doc);
    if (!context) {
        snprintf (errbuf, errlen, "cpu_compatible: the domain XML does not parse");
        status = ZV_EINVAL;
        goto cleanup;
    }
    cpu = s_cpu_xml (doc, context);
    //  No <cpu>: the hypervisor's default model, which any host of the
    //  same hypervisor runs.
    if (!cpu)
        goto cleanup;
    emulator = s_xpath_string (context, "string(/domain/devices/emulator)");
    arch = s_xpath_string (context, "string(/domain/os/type/@arch)");
    machine = s_xpath_string (context, "string(/domain/os/type/@machine)");
    virttype = s_xpath_string (context, "string(/domain/@type)");
    model = s_xpath_string (context, "string(/domain/cpu/model)");
    if (!model)
        model = s_xpath_string (context, "string(/domain/cpu/@mode)");
    //  FAIL_INCOMPATIBLE: libvirt's error then names what is missing.
    int result = virConnectCompareHypervisorCPU (self->conn, emulator, arch, machine, virttype, cpu,
                                                 VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE);
    if (result == VIR_CPU_COMPARE_INCOMPATIBLE
    ||  (result < 0 && virGetLastErrorCode () == VIR_ERR_CPU_INCOMPATIBLE)) {
        const char *message = virGetLastErrorMessage ();
        snprintf (errbuf, errlen, "the guest CPU model %s cannot run on %s: %s", model ? model : "(none)",
                  self->uri, result < 0 && message ? message : "incompatible with the host");
        status = ZV_EINVAL;
    }
    else
    if (result < 0)
        status = zv_libvirt_fail (self, "cpu_compatible", "virConnectCompareHypervisorCPU", NULL,
                                  errbuf, errlen);
cleanup:
    free (cpu);
    free (emulator);
    free (arch);
    free (machine);
    free (virttype);
    free (model);
    xmlXPathFreeContext (context);
    xmlFreeDoc (doc);
    virResetLastError ();
    return status;
}
