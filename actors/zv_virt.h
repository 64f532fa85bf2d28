/*  zv_virt.h: the hypervisor driver table, the only way compute reaches a
    hypervisor.

    As libvirt's own drivers are, a driver is a struct of operations; an
    operation a driver (or the connected hypervisor) cannot do is NULL or
    returns ZV_EUNSUPPORTED with "unsupported by <uri>", and the caller
    leaves the instance as it was.  The one implementation today is libvirt
    itself (zv_virt_libvirt.c) for any URI: test:///default for development
    and simulated fleets, qemu:///system for real guests.  Only that file
    includes libvirt.

    Instances cross this boundary as the conductor's json records; domains
    are named "zova-<uuid>" with the instance uuid as the domain uuid, so a
    host's domains map back to instances without any other index.           */

#ifndef ZV_VIRT_H
#define ZV_VIRT_H

#include <jansson.h>
#include "../common/zv_common.h"
#include "../store/zv_state.h"

#define ZV_DOMAIN_PREFIX "zova-"

typedef struct _zv_virt_t zv_virt_t;

typedef struct {
    const char *name;
    //  Connect to uri.  NULL on failure with the reason in errbuf.
    zv_virt_t *(*open) (const char *uri, const char *virt_type, char *errbuf, size_t errlen);
    void (*close) (zv_virt_t **self_p);
    //  Is the connection alive?  (false after libvirtd went away)
    bool (*alive) (zv_virt_t *self);
    //  Host facts: {vcpus, memory_mb, hypervisor_type, hypervisor_version,
    //  cpu_model, uri}.  New object (caller owns) or NULL with errbuf.
    json_t *(*node_info) (zv_virt_t *self, char *errbuf, size_t errlen);
    //  Every zova domain on the host: [{uuid, power_state}] (caller owns).
    json_t *(*list) (zv_virt_t *self, char *errbuf, size_t errlen);
    //  Define and start the domain of an instance record.  Its XML is
    //  first written to <instance_dir>/libvirt.xml (the directory is made),
    //  as Nova's libvirt driver keeps it, when instance_dir is not NULL.
    zv_status_t (*spawn) (zv_virt_t *self, const json_t *instance, const char *instance_dir,
                          char *errbuf, size_t errlen);
    //  Stop and undefine; a domain that does not exist is not an error.
    zv_status_t (*destroy) (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
    //  Current power state of one domain (ZV_POWER_NOSTATE when absent).
    zv_power_state_t (*power_state) (zv_virt_t *self, const char *uuid);
} zv_virt_driver_t;

//  The libvirt driver.
extern const zv_virt_driver_t zv_virt_libvirt;

//  Initialise the hypervisor library once per process, from the main
//  thread before any actor starts: libvirt initialises OpenSSL there, whose
//  per-thread state must belong to a thread that outlives the actors.
void zv_virt_init (void);

//  Domain XML for an instance on a hypervisor of the given domain type
//  ("test", "qemu", "kvm").  Caller frees.  Pure: no libvirt, for golden tests.
char *zv_domain_xml (const json_t *instance, const char *domain_type);

#endif
