/*  zv_virt_libvirt.c: the libvirt implementation of the driver table: a
    connection, what every operation shares, host facts, the table.

    A zv_virt_t is one virConnect shared by the compute loop and its
    workers (libvirt connections are thread-safe), with an atomic reference
    count: the last close deregisters the event callbacks and closes the
    connection.  Every operation is one or two libvirt calls; every failure
    goes through zv_libvirt_fail, which maps libvirt's error code to a zv
    status and writes one message with its context, so callers report it
    once.  The operations themselves live by concern in the files that
    zv_virt_libvirt.h lists; this file gathers them into the one table.

    Power states map as Nova's libvirt driver maps them (blocked counts as
    running, shutoff as shutdown, pmsuspended as suspended).               */

#include "virt/zv_virt_libvirt.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Errors

//  Errors: libvirt's code decides the status, and the status the message.
static const struct {
    int code;
    zv_status_t status;
} s_errors [] = {
    { VIR_ERR_NO_SUPPORT,             ZV_EUNSUPPORTED },
    { VIR_ERR_OPERATION_UNSUPPORTED,  ZV_EUNSUPPORTED },
    { VIR_ERR_ARGUMENT_UNSUPPORTED,   ZV_EUNSUPPORTED },
    { VIR_ERR_NO_DOMAIN,              ZV_ENOTFOUND },
    { VIR_ERR_AGENT_UNRESPONSIVE,     ZV_EUNAVAILABLE },
    { VIR_ERR_AGENT_UNSYNCED,         ZV_EUNAVAILABLE },
    { VIR_ERR_OPERATION_INVALID,      ZV_ECONFLICT },
};

//  The last libvirt error of this thread as a status, with its message in
//  errbuf: operation is the driver operation ("power_off"), call the
//  libvirt function, uuid the domain (NULL for the connection).  Resets
//  libvirt's error.
zv_status_t
zv_libvirt_fail (zv_virt_t *self, const char *operation, const char *call, const char *uuid,
                 char *errbuf, size_t errlen)
{
    virErrorPtr error = virGetLastError ();
    int code = error ? error->code : VIR_ERR_OK;
    const char *message = error && error->message ? error->message : "unknown libvirt error";
    zv_status_t status = ZV_EIO;
    for (size_t index = 0; index < sizeof s_errors / sizeof s_errors [0]; index++)
        if (s_errors [index].code == code)
            status = s_errors [index].status;
    if (status == ZV_EUNSUPPORTED)
        snprintf (errbuf, errlen, "%s is unsupported by %s: %s", operation, self->uri, message);
    else
    if (status == ZV_ENOTFOUND)
        snprintf (errbuf, errlen, "domain %s does not exist on %s", uuid ? uuid : "?", self->uri);
    else
    if (status == ZV_EUNAVAILABLE)
        snprintf (errbuf, errlen, "guest agent of %s is not responding: %s", uuid ? uuid : "?", message);
    else
    if (uuid)
        snprintf (errbuf, errlen, "%s " ZV_DOMAIN_PREFIX "%s: %s", call, uuid, message);
    else
        snprintf (errbuf, errlen, "%s %s: %s", call, self->uri, message);
    virResetLastError ();
    return status;
}

//  Did the last call fail only because the driver refuses its flags?
//  (virCheckFlags says so with VIR_ERR_INVALID_ARG.)
bool
zv_libvirt_flags_refused (void)
{
    int code = virGetLastErrorCode ();
    return code == VIR_ERR_NO_SUPPORT || code == VIR_ERR_ARGUMENT_UNSUPPORTED
        || code == VIR_ERR_OPERATION_UNSUPPORTED || code == VIR_ERR_INVALID_ARG;
}

//  --------------------------------------------------------------------------
//  Domains: what every operation asks first

zv_power_state_t
zv_libvirt_map_state (int state)
{
    switch ((virDomainState) state) {
        case VIR_DOMAIN_RUNNING:
        case VIR_DOMAIN_BLOCKED:     return ZV_POWER_RUNNING;
        case VIR_DOMAIN_PAUSED:      return ZV_POWER_PAUSED;
        case VIR_DOMAIN_SHUTDOWN:
        case VIR_DOMAIN_SHUTOFF:     return ZV_POWER_SHUTDOWN;
        case VIR_DOMAIN_CRASHED:     return ZV_POWER_CRASHED;
        case VIR_DOMAIN_PMSUSPENDED: return ZV_POWER_SUSPENDED;
        case VIR_DOMAIN_NOSTATE:
        case VIR_DOMAIN_LAST:        return ZV_POWER_NOSTATE;
    }
    return ZV_POWER_NOSTATE;
}

bool
zv_libvirt_running (int state)
{
    return state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_BLOCKED;
}

//  The uuid of a zova domain into uuid [VIR_UUID_STRING_BUFLEN]; false for
//  any other domain (events of those are not ours).
bool
zv_libvirt_zova_domain (virDomainPtr domain, char *uuid)
{
    const char *name = virDomainGetName (domain);
    return name && strncmp (name, ZV_DOMAIN_PREFIX, strlen (ZV_DOMAIN_PREFIX)) == 0
        && virDomainGetUUIDString (domain, uuid) == 0;
}

//  The domain of uuid, or NULL with the status (ENOTFOUND when absent).
virDomainPtr
zv_libvirt_lookup (zv_virt_t *self, const char *operation, const char *uuid, zv_status_t *status_p,
                   char *errbuf, size_t errlen)
{
    if (!uuid || !zv_uuid_valid (uuid)) {
        snprintf (errbuf, errlen, "%s: '%s' is not a uuid", operation, uuid ? uuid : "(null)");
        *status_p = ZV_EINVAL;
        return NULL;
    }
    virDomainPtr domain = virDomainLookupByUUIDString (self->conn, uuid);
    if (!domain)
        *status_p = zv_libvirt_fail (self, operation, "virDomainLookupByUUIDString", uuid, errbuf, errlen);
    return domain;
}

//  The domain's virDomainState, or -1 with the status.
int
zv_libvirt_state (zv_virt_t *self, virDomainPtr domain, const char *operation, const char *uuid,
                  zv_status_t *status_p, char *errbuf, size_t errlen)
{
    int state = VIR_DOMAIN_NOSTATE, reason = 0;
    if (virDomainGetState (domain, &state, &reason, 0) < 0) {
        *status_p = zv_libvirt_fail (self, operation, "virDomainGetState", uuid, errbuf, errlen);
        return -1;
    }
    return state;
}

//  An operation the domain's state forbids.  Checked before the call so
//  that every driver answers alike (the test driver says "internal error"
//  where QEMU says "operation invalid").
zv_status_t
zv_libvirt_conflict (const char *operation, const char *uuid, int state, char *errbuf, size_t errlen)
{
    snprintf (errbuf, errlen, "%s: domain " ZV_DOMAIN_PREFIX "%s is %s", operation, uuid,
              zv_power_state_name (zv_libvirt_map_state (state)));
    return ZV_ECONFLICT;
}

//  --------------------------------------------------------------------------
//  Connections

static void
s_close (zv_virt_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_virt_t *self = *self_p;
    *self_p = NULL;
    if (atomic_fetch_sub (&self->refs, 1) != 1)
        return;
    zv_libvirt_events_deregister (self);
    virConnectClose (self->conn);
    zv_libvirt_queue_unref (self->queue);
    free (self);
}

static zv_virt_t *
s_open (const char *uri, const char *virt_type, char *errbuf, size_t errlen)
{
    zv_virt_init ();
    virConnectPtr conn = virConnectOpen (uri);
    if (!conn) {
        const char *message = virGetLastErrorMessage ();
        snprintf (errbuf, errlen, "%s: %s", uri, message ? message : "unknown libvirt error");
        virResetLastError ();
        return NULL;
    }
    zv_virt_t *self = (zv_virt_t *) calloc (1, sizeof (zv_virt_t));
    zv_libvirt_queue_t *queue = self ? zv_libvirt_queue_new () : NULL;
    if (!queue) {
        snprintf (errbuf, errlen, "%s: cannot make the event queue: %s", uri, strerror (errno));
        virConnectClose (conn);
        free (self);
        return NULL;
    }
    atomic_init (&self->refs, 1);
    self->conn = conn;
    self->queue = queue;
    self->lifecycle_id = -1;
    self->agent_id = -1;
    snprintf (self->uri, sizeof self->uri, "%s", uri);
    const char *type = virConnectGetType (conn);
    if (type && strcmp (type, "TEST") == 0)
        strcpy (self->domain_type, "test");
    else
    if (virt_type && (strcmp (virt_type, "kvm") == 0 || strcmp (virt_type, "qemu") == 0))
        snprintf (self->domain_type, sizeof self->domain_type, "%s", virt_type);
    else {
        //  auto: KVM only when the CPU can really run guests (vmx/svm).
        FILE *cpuinfo = fopen ("/proc/cpuinfo", "r");
        bool hw = false;
        char line [4096];
        while (cpuinfo && !hw && fgets (line, sizeof line, cpuinfo))
            if (strncmp (line, "flags", 5) == 0 && (strstr (line, " vmx") || strstr (line, " svm")))
                hw = true;
        if (cpuinfo)
            fclose (cpuinfo);
        strcpy (self->domain_type, hw ? "kvm" : "qemu");
    }

    //  A dead libvirtd is noticed within 5 s x 3 (the test driver, in
    //  process, has no keepalive).
    if (virConnectSetKeepAlive (conn, 5, 3) < 0)
        virResetLastError ();
    if (zv_libvirt_events_register (self, errbuf, errlen) != ZV_OK) {
        s_close (&self);
        return NULL;
    }
    return self;
}

static zv_virt_t *
s_ref (zv_virt_t *self)
{
    atomic_fetch_add (&self->refs, 1);
    return self;
}

static bool
s_alive (zv_virt_t *self)
{
    return virConnectIsAlive (self->conn) == 1;
}

static const char *
s_domain_type (zv_virt_t *self)
{
    return self->domain_type;
}

static const char *
s_uri (zv_virt_t *self)
{
    return self->uri;
}

//  --------------------------------------------------------------------------
//  Host facts

static json_t *
s_node_info (zv_virt_t *self, char *errbuf, size_t errlen)
{
    virNodeInfo info;
    if (virNodeGetInfo (self->conn, &info) < 0) {
        zv_libvirt_fail (self, "node_info", "virNodeGetInfo", NULL, errbuf, errlen);
        return NULL;
    }
    unsigned long version = 0;
    virConnectGetVersion (self->conn, &version);
    const char *type = virConnectGetType (self->conn);
    //  The host's architecture, from its capabilities (<host><cpu><arch>),
    //  for ImagePropertiesFilter's hw_architecture.
    char arch [32] = "unknown";
    char *caps = virConnectGetCapabilities (self->conn);
    const char *host = caps ? strstr (caps, "<host>") : NULL;
    const char *tag = host ? strstr (host, "<arch>") : NULL;
    if (tag)
        sscanf (tag + 6, "%31[^<]", arch);
    free (caps);
    virResetLastError ();
    return json_pack ("{s:i, s:I, s:s, s:I, s:s, s:s, s:s}",
                      "vcpus", (int) info.cpus,
                      "memory_mb", (json_int_t) (info.memory / 1024),
                      "hypervisor_type", type ? type : "unknown",
                      "hypervisor_version", (json_int_t) version,
                      "cpu_model", info.model,
                      "cpu_arch", arch,
                      "uri", self->uri);
}

static json_t *
s_list (zv_virt_t *self, char *errbuf, size_t errlen)
{
    virDomainPtr *domains = NULL;
    int count = virConnectListAllDomains (self->conn, &domains, 0);
    if (count < 0) {
        zv_libvirt_fail (self, "list", "virConnectListAllDomains", NULL, errbuf, errlen);
        return NULL;
    }
    json_t *list = json_array ();
    for (int index = 0; index < count; index++) {
        char uuid [VIR_UUID_STRING_BUFLEN];
        int state = VIR_DOMAIN_NOSTATE, reason = 0;
        //  A domain undefined since the listing is simply not there.
        if (zv_libvirt_zova_domain (domains [index], uuid)
        &&  virDomainGetState (domains [index], &state, &reason, 0) == 0)
            json_array_append_new (list, json_pack ("{s:s, s:s}", "uuid", uuid,
                "power_state", zv_power_state_name (zv_libvirt_map_state (state))));
        virDomainFree (domains [index]);
    }
    free (domains);
    virResetLastError ();
    return list;
}

static zv_power_state_t
s_power_state (zv_virt_t *self, const char *uuid)
{
    if (!uuid || !zv_uuid_valid (uuid))
        return ZV_POWER_NOSTATE;
    virDomainPtr domain = virDomainLookupByUUIDString (self->conn, uuid);
    if (!domain) {
        virResetLastError ();
        return ZV_POWER_NOSTATE;
    }
    int state = VIR_DOMAIN_NOSTATE, reason = 0;
    zv_power_state_t power = ZV_POWER_NOSTATE;
    if (virDomainGetState (domain, &state, &reason, 0) == 0)
        power = zv_libvirt_map_state (state);
    virResetLastError ();
    virDomainFree (domain);
    return power;
}

//  --------------------------------------------------------------------------
//  The table

const zv_virt_driver_t zv_virt_libvirt = {
    .name = "libvirt",
    .open = s_open,
    .close = s_close,
    .ref = s_ref,
    .alive = s_alive,
    .domain_type = s_domain_type,
    .uri = s_uri,
    .node_info = s_node_info,
    .list = s_list,
    .spawn = zv_libvirt_spawn,
    .define = zv_libvirt_define,
    .destroy = zv_libvirt_destroy,
    .power_off = zv_libvirt_power_off,
    .power_on = zv_libvirt_power_on,
    .pause = zv_libvirt_pause,
    .unpause = zv_libvirt_unpause,
    .suspend = zv_libvirt_suspend,
    .set_password = zv_libvirt_set_password,
    .guest_info = zv_libvirt_guest_info,
    .consoles = zv_libvirt_consoles,
    .screenshot = zv_libvirt_screenshot,
    .power_state = s_power_state,
    .migrate_live = zv_libvirt_migrate_live,
    .job_stats = zv_libvirt_job_stats,
    .job_abort = zv_libvirt_job_abort,
    .migrate_postcopy = zv_libvirt_migrate_postcopy,
    .migrate_downtime = zv_libvirt_migrate_downtime,
    .migratable_xml = zv_libvirt_migratable_xml,
    .cpu_compatible = zv_libvirt_cpu_compatible,
    .event_fd = zv_libvirt_event_fd,
    .event_next = zv_libvirt_event_next,
};
