/*  zv_virt_libvirt.c: the libvirt implementation of the driver table.

    One virConnect per compute actor, used only from that actor's thread.
    libvirt's default error printer is silenced once per process: every
    failure is reported by the caller, once, with libvirt's own message.
    Power states map as Nova's libvirt driver maps them (blocked counts as
    running, shutoff as shutdown, pmsuspended as suspended).                 */

#include "zv_virt.h"
#define VIR_ENUM_SENTINELS     //  name every case of libvirt enums (-Wswitch-enum)
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _zv_virt_t {
    virConnectPtr conn;
    char uri [1024];
    char domain_type [16];
};

static pthread_once_t s_init_once = PTHREAD_ONCE_INIT;

static void
s_quiet (void *arg, virErrorPtr error)
{
    (void) arg;
    (void) error;
}

static void
s_init (void)
{
    virInitialize ();
    virSetErrorFunc (NULL, s_quiet);
}

void
zv_virt_init (void)
{
    pthread_once (&s_init_once, s_init);
}

static void
s_last_error (char *errbuf, size_t errlen, const char *what)
{
    const char *message = virGetLastErrorMessage ();
    snprintf (errbuf, errlen, "%s: %s", what, message ? message : "unknown libvirt error");
}

static zv_virt_t *
s_open (const char *uri, const char *virt_type, char *errbuf, size_t errlen)
{
    pthread_once (&s_init_once, s_init);
    virConnectPtr conn = virConnectOpen (uri);
    if (!conn) {
        s_last_error (errbuf, errlen, uri);
        return NULL;
    }
    zv_virt_t *self = (zv_virt_t *) calloc (1, sizeof (zv_virt_t));
    self->conn = conn;
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
    return self;
}

static void
s_close (zv_virt_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->conn)
        virConnectClose ((*self_p)->conn);
    free (*self_p);
    *self_p = NULL;
}

static bool
s_alive (zv_virt_t *self)
{
    return virConnectIsAlive (self->conn) == 1;
}

static json_t *
s_node_info (zv_virt_t *self, char *errbuf, size_t errlen)
{
    virNodeInfo info;
    if (virNodeGetInfo (self->conn, &info) < 0) {
        s_last_error (errbuf, errlen, "virNodeGetInfo");
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
    return json_pack ("{s:i, s:I, s:s, s:I, s:s, s:s, s:s}",
                      "vcpus", (int) info.cpus,
                      "memory_mb", (json_int_t) (info.memory / 1024),
                      "hypervisor_type", type ? type : "unknown",
                      "hypervisor_version", (json_int_t) version,
                      "cpu_model", info.model,
                      "cpu_arch", arch,
                      "uri", self->uri);
}

static zv_power_state_t
s_map_state (int state)
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

static json_t *
s_list (zv_virt_t *self, char *errbuf, size_t errlen)
{
    virDomainPtr *domains = NULL;
    int count = virConnectListAllDomains (self->conn, &domains, 0);
    if (count < 0) {
        s_last_error (errbuf, errlen, "virConnectListAllDomains");
        return NULL;
    }
    json_t *list = json_array ();
    for (int index = 0; index < count; index++) {
        const char *name = virDomainGetName (domains [index]);
        char uuid [VIR_UUID_STRING_BUFLEN];
        int state = VIR_DOMAIN_NOSTATE, reason = 0;
        if (name && strncmp (name, ZV_DOMAIN_PREFIX, strlen (ZV_DOMAIN_PREFIX)) == 0
        &&  virDomainGetUUIDString (domains [index], uuid) == 0
        &&  virDomainGetState (domains [index], &state, &reason, 0) == 0)
            json_array_append_new (list, json_pack ("{s:s, s:s}", "uuid", uuid,
                "power_state", zv_power_state_name (s_map_state (state))));
        virDomainFree (domains [index]);
    }
    free (domains);
    return list;
}

//  Write xml to <dir>/libvirt.xml, making dir (and its parents).
static zv_status_t
s_write_xml (const char *dir, const char *xml, char *errbuf, size_t errlen)
{
    char path [2048];
    snprintf (path, sizeof path, "%s", dir);
    for (char *slash = path + 1; *slash; slash++) {
        if (*slash != '/')
            continue;
        *slash = 0;
        if (mkdir (path, 0755) != 0 && errno != EEXIST) {
            snprintf (errbuf, errlen, "cannot create %s: %s", path, strerror (errno));
            return ZV_EIO;
        }
        *slash = '/';
    }
    if (mkdir (path, 0755) != 0 && errno != EEXIST) {
        snprintf (errbuf, errlen, "cannot create %s: %s", path, strerror (errno));
        return ZV_EIO;
    }
    snprintf (path, sizeof path, "%s/libvirt.xml", dir);
    FILE *file = fopen (path, "w");
    if (!file || fputs (xml, file) < 0 || fclose (file) != 0) {
        snprintf (errbuf, errlen, "cannot write %s: %s", path, strerror (errno));
        return ZV_EIO;
    }
    return ZV_OK;
}

static zv_status_t
s_spawn (zv_virt_t *self, const json_t *instance, const char *instance_dir, char *errbuf, size_t errlen)
{
    char *xml = zv_domain_xml (instance, self->domain_type);
    if (!xml) {
        snprintf (errbuf, errlen, "cannot generate domain XML");
        return ZV_ENOMEM;
    }
    if (instance_dir) {
        zv_status_t written = s_write_xml (instance_dir, xml, errbuf, errlen);
        if (written != ZV_OK) {
            free (xml);
            return written;
        }
    }
    virDomainPtr domain = virDomainDefineXML (self->conn, xml);
    free (xml);
    if (!domain) {
        s_last_error (errbuf, errlen, "virDomainDefineXML");
        return ZV_EIO;
    }
    zv_status_t status = ZV_OK;
    if (virDomainCreate (domain) < 0) {
        s_last_error (errbuf, errlen, "virDomainCreate");
        virDomainUndefine (domain);
        status = ZV_EIO;
    }
    virDomainFree (domain);
    return status;
}

static zv_status_t
s_destroy (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    virDomainPtr domain = virDomainLookupByUUIDString (self->conn, uuid);
    if (!domain) {
        virErrorPtr error = virGetLastError ();
        if (error && error->code == VIR_ERR_NO_DOMAIN)
            return ZV_OK;
        s_last_error (errbuf, errlen, "virDomainLookupByUUIDString");
        return ZV_EIO;
    }
    zv_status_t status = ZV_OK;
    if (virDomainIsActive (domain) == 1 && virDomainDestroy (domain) < 0) {
        s_last_error (errbuf, errlen, "virDomainDestroy");
        status = ZV_EIO;
    }
    if (status == ZV_OK
    &&  virDomainUndefineFlags (domain, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                      | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0
    &&  virDomainUndefine (domain) < 0) {
        virErrorPtr error = virGetLastError ();
        //  A transient domain is gone once destroyed.
        if (!error || error->code != VIR_ERR_NO_DOMAIN) {
            s_last_error (errbuf, errlen, "virDomainUndefine");
            status = ZV_EIO;
        }
    }
    virDomainFree (domain);
    return status;
}

static zv_power_state_t
s_power_state (zv_virt_t *self, const char *uuid)
{
    virDomainPtr domain = virDomainLookupByUUIDString (self->conn, uuid);
    if (!domain)
        return ZV_POWER_NOSTATE;
    int state = VIR_DOMAIN_NOSTATE, reason = 0;
    zv_power_state_t power = ZV_POWER_NOSTATE;
    if (virDomainGetState (domain, &state, &reason, 0) == 0)
        power = s_map_state (state);
    virDomainFree (domain);
    return power;
}

const zv_virt_driver_t zv_virt_libvirt = {
    .name = "libvirt",
    .open = s_open,
    .close = s_close,
    .alive = s_alive,
    .node_info = s_node_info,
    .list = s_list,
    .spawn = s_spawn,
    .destroy = s_destroy,
    .power_state = s_power_state,
};
