/*  zv_virt_libvirt_domain.c: the libvirt driver's domain operations:
    spawn, define, destroy, power off and on, pause, suspend, password,
    guest info.

    Each operation looks its domain up by uuid, checks its state before
    the call so that every libvirt driver refuses alike (the test driver
    says "internal error" where QEMU says "operation invalid"), makes one
    or two libvirt calls, and frees the domain.  Retried requests succeed
    (pausing a paused domain, unpausing a running one).  Flags a driver
    refuses (the test driver has no NVRAM, no guest agent) fall back row by
    row through a table of flags, most thorough first.  spawn and define
    write the domain XML (zv_domain_xml) to the instance directory before
    defining it; spawn then starts it.  power_off waits on the guest,
    polling: it runs on a compute worker, never on the compute loop.       */

#include "virt/zv_virt_libvirt.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

//  How often power_off looks whether the guest has shut down.
#define S_POWER_POLL_MS   200

//  --------------------------------------------------------------------------
//  Spawn

//  Destroy a running domain.  It may stop by itself meanwhile: only a
//  domain still running afterwards is a failure (*raced_p says it stopped
//  by itself).
static zv_status_t
s_stop (zv_virt_t *self, virDomainPtr domain, const char *operation, const char *uuid,
        bool *raced_p, char *errbuf, size_t errlen)
{
    if (virDomainDestroy (domain) == 0)
        return ZV_OK;
    //  Taken before virDomainIsActive, which clears libvirt's error.
    zv_status_t status = zv_libvirt_fail (self, operation, "virDomainDestroy", uuid, errbuf, errlen);
    if (virDomainIsActive (domain) == 0) {
        if (raced_p)
            *raced_p = true;
        status = ZV_OK;
    }
    virResetLastError ();
    return status;
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
    if (!file) {
        snprintf (errbuf, errlen, "cannot write %s: %s", path, strerror (errno));
        return ZV_EIO;
    }
    bool written = fputs (xml, file) >= 0;
    if (fclose (file) != 0 || !written) {
        snprintf (errbuf, errlen, "cannot write %s: %s", path, strerror (errno));
        return ZV_EIO;
    }
    return ZV_OK;
}

//  Write the XML of an instance to its directory and define it: the part
//  spawn and define share.  stop: a domain that runs is destroyed first
//  (spawn); otherwise it runs on with its old definition live.  A domain
//  that is off loses its managed-save image, or virDomainCreate would
//  restore it instead of booting the new definition.  On success *domain_p
//  is the defined domain (caller frees) and *existed_p says whether there
//  was a definition before.
static zv_status_t
s_define (zv_virt_t *self, const json_t *instance, const zv_domain_spec_t *spec, const char *operation,
          bool stop, virDomainPtr *domain_p, bool *existed_p, char *errbuf, size_t errlen)
{
    *domain_p = NULL;
    *existed_p = false;
    const char *uuid = json_string_value (json_object_get (instance, "uuid"));
    if (!uuid || !zv_uuid_valid (uuid)) {
        snprintf (errbuf, errlen, "%s: the instance has no valid uuid", operation);
        return ZV_EINVAL;
    }
    zv_status_t status = ZV_OK;
    char *xml = zv_domain_xml (instance, self->domain_type, spec);
    if (!xml) {
        snprintf (errbuf, errlen, "cannot make the domain XML of %s (nic '%s', or out of memory)",
                  uuid, spec && spec->nic ? spec->nic : "");
        return ZV_EINVAL;
    }
    if (spec && spec->instance_dir
    &&  (status = s_write_xml (spec->instance_dir, xml, errbuf, errlen)) != ZV_OK)
        goto cleanup;

    virDomainPtr old = virDomainLookupByUUIDString (self->conn, uuid);
    if (old) {
        *existed_p = true;
        bool active = virDomainIsActive (old) == 1;
        if (active && stop) {
            status = s_stop (self, old, operation, uuid, NULL, errbuf, errlen);
            active = false;
        }
        if (status == ZV_OK && !active
        &&  virDomainHasManagedSaveImage (old, 0) == 1 && virDomainManagedSaveRemove (old, 0) < 0)
            status = zv_libvirt_fail (self, operation, "virDomainManagedSaveRemove", uuid, errbuf, errlen);
        virDomainFree (old);
        if (status != ZV_OK)
            goto cleanup;
    }
    else
    if (virGetLastErrorCode () != VIR_ERR_NO_DOMAIN) {
        status = zv_libvirt_fail (self, operation, "virDomainLookupByUUIDString", uuid, errbuf, errlen);
        goto cleanup;
    }
    virResetLastError ();

    *domain_p = virDomainDefineXML (self->conn, xml);
    if (!*domain_p)
        status = zv_libvirt_fail (self, operation, "virDomainDefineXML", uuid, errbuf, errlen);
cleanup:
    free (xml);
    return status;
}

zv_status_t
zv_libvirt_spawn (zv_virt_t *self, const json_t *instance, const zv_domain_spec_t *spec,
                  char *errbuf, size_t errlen)
{
    virDomainPtr domain = NULL;
    bool existed = false;
    //  What was there: a running domain stops (hard reboot, rescue).
    zv_status_t status = s_define (self, instance, spec, "spawn", true, &domain, &existed, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    if (virDomainCreate (domain) < 0) {
        const char *uuid = json_string_value (json_object_get (instance, "uuid"));
        status = zv_libvirt_fail (self, "spawn", "virDomainCreate", uuid, errbuf, errlen);
        //  A definition that was there before stays (now the new one).
        if (!existed && virDomainUndefine (domain) < 0)
            virResetLastError ();
    }
    virDomainFree (domain);
    return status;
}

zv_status_t
zv_libvirt_define (zv_virt_t *self, const json_t *instance, const zv_domain_spec_t *spec,
                   char *errbuf, size_t errlen)
{
    virDomainPtr domain = NULL;
    bool existed = false;
    zv_status_t status = s_define (self, instance, spec, "define", false, &domain, &existed, errbuf, errlen);
    if (domain)
        virDomainFree (domain);
    return status;
}

//  --------------------------------------------------------------------------
//  Destroy, power off and on, pause, suspend

//  Undefine flags, most thorough first: a driver that refuses a flag
//  (the test driver has no NVRAM) gets the next row.
static const unsigned int s_undefine_flags [] = {
    VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM,
    VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
    VIR_DOMAIN_UNDEFINE_MANAGED_SAVE,
};

zv_status_t
zv_libvirt_destroy (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    virDomainPtr domain = zv_libvirt_lookup (self, "destroy", uuid, &status, errbuf, errlen);
    if (!domain)
        return status == ZV_ENOTFOUND ? ZV_OK : status;
    if (virDomainIsActive (domain) == 1
    &&  (status = s_stop (self, domain, "destroy", uuid, NULL, errbuf, errlen)) != ZV_OK)
        goto cleanup;
    virResetLastError ();
    int rc = -1;
    for (size_t row = 0; rc < 0 && row < sizeof s_undefine_flags / sizeof s_undefine_flags [0]; row++) {
        rc = virDomainUndefineFlags (domain, s_undefine_flags [row]);
        if (rc < 0 && !zv_libvirt_flags_refused ())
            break;
    }
    if (rc < 0 && zv_libvirt_flags_refused ())
        rc = virDomainUndefine (domain);
    //  A transient domain is gone once destroyed.
    if (rc < 0 && virGetLastErrorCode () != VIR_ERR_NO_DOMAIN)
        status = zv_libvirt_fail (self, "destroy", "virDomainUndefineFlags", uuid, errbuf, errlen);
    virResetLastError ();
cleanup:
    virDomainFree (domain);
    return status;
}

//  Ways to ask a guest to shut down, preferred first: its agent, else the
//  ACPI power button (QEMU tries them in that order when given both).  A
//  driver that refuses the flags gets the next row; the last is plain
//  virDomainShutdown.
static const unsigned int s_shutdown_flags [] = {
    VIR_DOMAIN_SHUTDOWN_GUEST_AGENT | VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN,
    VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN,
};

//  Ask the guest to shut down; true when it was asked.
static bool
s_ask_shutdown (virDomainPtr domain)
{
    for (size_t row = 0; row < sizeof s_shutdown_flags / sizeof s_shutdown_flags [0]; row++) {
        if (virDomainShutdownFlags (domain, s_shutdown_flags [row]) == 0)
            return true;
        if (!zv_libvirt_flags_refused ())
            return false;
    }
    return virDomainShutdown (domain) == 0;
}

zv_status_t
zv_libvirt_power_off (zv_virt_t *self, const char *uuid, int timeout_s, bool *clean_p,
                      char *errbuf, size_t errlen)
{
    bool clean = false;
    zv_status_t status = ZV_OK;
    virDomainPtr domain = zv_libvirt_lookup (self, "power_off", uuid, &status, errbuf, errlen);
    if (!domain)
        goto cleanup;
    int state = zv_libvirt_state (self, domain, "power_off", uuid, &status, errbuf, errlen);
    if (state < 0)
        goto cleanup;
    if (virDomainIsActive (domain) != 1) {
        clean = true;           //  already off: nothing was forced
        goto cleanup;
    }
    //  A paused guest cannot answer: waiting on it would only use the timeout.
    if (timeout_s > 0 && state != VIR_DOMAIN_PAUSED && s_ask_shutdown (domain)) {
        //  This runs on a compute worker, whose whole job is this wait;
        //  the compute loop itself never calls power_off.
        int64_t deadline = zv_mono_ms () + (int64_t) timeout_s * 1000;
        while (virDomainIsActive (domain) == 1) {
            int64_t left = deadline - zv_mono_ms ();
            if (left <= 0)
                break;
            if (left > S_POWER_POLL_MS)
                left = S_POWER_POLL_MS;
            struct timespec nap = { 0, (long) left * 1000000L };
            nanosleep (&nap, NULL);
        }
        clean = virDomainIsActive (domain) == 0;
    }
    virResetLastError ();
    if (!clean)
        status = s_stop (self, domain, "power_off", uuid, &clean, errbuf, errlen);
cleanup:
    if (domain)
        virDomainFree (domain);
    if (clean_p)
        *clean_p = status == ZV_OK && clean;
    return status;
}

zv_status_t
zv_libvirt_power_on (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    virDomainPtr domain = zv_libvirt_lookup (self, "power_on", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    int state = zv_libvirt_state (self, domain, "power_on", uuid, &status, errbuf, errlen);
    if (state < 0)
        goto cleanup;
    if (virDomainIsActive (domain) == 1)
        status = zv_libvirt_conflict ("power_on", uuid, state, errbuf, errlen);
    else
    if (virDomainCreate (domain) < 0)
        status = zv_libvirt_fail (self, "power_on", "virDomainCreate", uuid, errbuf, errlen);
cleanup:
    virDomainFree (domain);
    return status;
}

zv_status_t
zv_libvirt_pause (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    virDomainPtr domain = zv_libvirt_lookup (self, "pause", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    int state = zv_libvirt_state (self, domain, "pause", uuid, &status, errbuf, errlen);
    if (state < 0 || state == VIR_DOMAIN_PAUSED)
        ;                       //  already paused: done (a retried request)
    else
    if (!zv_libvirt_running (state))
        status = zv_libvirt_conflict ("pause", uuid, state, errbuf, errlen);
    else
    if (virDomainSuspend (domain) < 0)
        status = zv_libvirt_fail (self, "pause", "virDomainSuspend", uuid, errbuf, errlen);
    virDomainFree (domain);
    return status;
}

zv_status_t
zv_libvirt_unpause (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    virDomainPtr domain = zv_libvirt_lookup (self, "unpause", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    int state = zv_libvirt_state (self, domain, "unpause", uuid, &status, errbuf, errlen);
    if (state < 0 || zv_libvirt_running (state))
        ;                       //  already running: done (a retried request)
    else
    if (state != VIR_DOMAIN_PAUSED)
        status = zv_libvirt_conflict ("unpause", uuid, state, errbuf, errlen);
    else
    if (virDomainResume (domain) < 0)
        status = zv_libvirt_fail (self, "unpause", "virDomainResume", uuid, errbuf, errlen);
    virDomainFree (domain);
    return status;
}

zv_status_t
zv_libvirt_suspend (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    virDomainPtr domain = zv_libvirt_lookup (self, "suspend", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    int state = zv_libvirt_state (self, domain, "suspend", uuid, &status, errbuf, errlen);
    if (state < 0)
        ;
    else
    if (virDomainIsActive (domain) != 1)
        status = zv_libvirt_conflict ("suspend", uuid, state, errbuf, errlen);
    else
    if (virDomainManagedSave (domain, 0) < 0)
        status = zv_libvirt_fail (self, "suspend", "virDomainManagedSave", uuid, errbuf, errlen);
    virDomainFree (domain);
    return status;
}

zv_status_t
zv_libvirt_set_password (zv_virt_t *self, const char *uuid, const char *user, const char *password,
                         char *errbuf, size_t errlen)
{
    if (!user || !*user || !password) {
        snprintf (errbuf, errlen, "set_password: a user and a password are needed");
        return ZV_EINVAL;
    }
    zv_status_t status = ZV_OK;
    virDomainPtr domain = zv_libvirt_lookup (self, "set_password", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    int state = zv_libvirt_state (self, domain, "set_password", uuid, &status, errbuf, errlen);
    if (state < 0)
        ;
    else
    if (!zv_libvirt_running (state))
        status = zv_libvirt_conflict ("set_password", uuid, state, errbuf, errlen);
    else
    if (virDomainSetUserPassword (domain, user, password, 0) < 0)
        status = zv_libvirt_fail (self, "set_password", "virDomainSetUserPassword", uuid, errbuf, errlen);
    virDomainFree (domain);
    return status;
}

//  --------------------------------------------------------------------------
//  The guest agent: password, guest info

//  The guest agent's os.* fields as guest_info names them.
static const struct {
    const char *param;
    const char *key;
} s_os_fields [] = {
    { "os.id", "id" },
    { "os.name", "name" },
    { "os.version", "version" },
    { "os.kernel-release", "kernel_release" },
    { "os.machine", "machine" },
};

//  The guest's addresses as [{interface, mac, address, prefix, family}],
//  loopback left out; NULL when the agent did not say.
static json_t *
s_guest_addresses (virDomainPtr domain)
{
    virDomainInterfacePtr *ifaces = NULL;
    int count = virDomainInterfaceAddresses (domain, &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0);
    if (count < 0) {
        virResetLastError ();
        return NULL;
    }
    json_t *list = json_array ();
    for (int index = 0; index < count; index++) {
        virDomainInterfacePtr iface = ifaces [index];
        for (unsigned int addr = 0; iface->name && strcmp (iface->name, "lo") != 0 && addr < iface->naddrs; addr++)
            json_array_append_new (list, json_pack ("{s:s, s:s?, s:s?, s:i, s:s}",
                "interface", iface->name,
                "mac", iface->hwaddr,
                "address", iface->addrs [addr].addr,
                "prefix", (int) iface->addrs [addr].prefix,
                "family", iface->addrs [addr].type == VIR_IP_ADDR_TYPE_IPV6 ? "ipv6" : "ipv4"));
        virDomainInterfaceFree (iface);
    }
    free (ifaces);
    return list;
}

json_t *
zv_libvirt_guest_info (zv_virt_t *self, const char *uuid, int timeout_s, zv_status_t *status_p,
                       char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    json_t *info = NULL;
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    virDomainPtr domain = zv_libvirt_lookup (self, "guest_info", uuid, &status, errbuf, errlen);
    if (!domain)
        goto cleanup;
    int state = zv_libvirt_state (self, domain, "guest_info", uuid, &status, errbuf, errlen);
    if (state < 0)
        goto cleanup;
    if (!zv_libvirt_running (state)) {
        status = zv_libvirt_conflict ("guest_info", uuid, state, errbuf, errlen);
        goto cleanup;
    }
#if LIBVIR_CHECK_VERSION (5, 10, 0)
    //  Bounds every agent command on this domain from now on, not only
    //  ours; drivers without an agent refuse it, and then have no wait.
    if (timeout_s > 0 && virDomainAgentSetResponseTimeout (domain, timeout_s, 0) < 0)
        virResetLastError ();
#else
    (void) timeout_s;
#endif
    if (virDomainGetGuestInfo (domain, VIR_DOMAIN_GUEST_INFO_OS | VIR_DOMAIN_GUEST_INFO_HOSTNAME,
                               &params, &nparams, 0) < 0) {
        status = zv_libvirt_fail (self, "guest_info", "virDomainGetGuestInfo", uuid, errbuf, errlen);
        goto cleanup;
    }
    info = json_object ();
    const char *value = NULL;
    if (virTypedParamsGetString (params, nparams, "hostname", &value) == 1)
        json_object_set_new (info, "hostname", json_string (value));
    json_t *os = json_object ();
    for (size_t index = 0; index < sizeof s_os_fields / sizeof s_os_fields [0]; index++)
        if (virTypedParamsGetString (params, nparams, s_os_fields [index].param, &value) == 1)
            json_object_set_new (os, s_os_fields [index].key, json_string (value));
    json_object_set_new (info, "os", os);
    //  Addresses are a second agent command: what the first gave stands
    //  when this one fails.
    json_t *addresses = s_guest_addresses (domain);
    if (addresses)
        json_object_set_new (info, "ip_addresses", addresses);
    virResetLastError ();
cleanup:
    virTypedParamsFree (params, nparams);
    if (domain)
        virDomainFree (domain);
    if (status_p)
        *status_p = status;
    return info;
}
