/*  zv_virt_libvirt.h: what the files of the libvirt driver share.

    Internal: only virt/zv_virt_libvirt*.c include it (they are the only
    files that include libvirt); compute reaches the driver through the
    table of zv_virt.h, whose one implementation is zv_virt_libvirt.
    Internal symbols are zv_libvirt_*.  The files, by concern:

        zv_virt_libvirt.c           a connection (open, close, references),
                                    libvirt errors as zv statuses, lookups
                                    every operation shares, host facts,
                                    the list of domains, the table
        zv_virt_libvirt_events.c    libvirt's initialisation, the event
                                    thread, the event queue and the
                                    lifecycle, agent and close callbacks
        zv_virt_libvirt_domain.c    domain operations: spawn, define, destroy,
                                    power off and on, pause, suspend,
                                    password, guest info
        zv_virt_libvirt_consoles.c  where consoles listen, screenshots, and
                                    the PPM -> PNG conversion
        zv_virt_libvirt_migrate.c   live migration (the source's half), its
                                    running job, the migratable XML, CPU
                                    compatibility                          */

#ifndef ZV_VIRT_LIBVIRT_H
#define ZV_VIRT_LIBVIRT_H

#include "virt/zv_virt.h"
#define VIR_ENUM_SENTINELS     //  name every case of libvirt enums (-Wswitch-enum)
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdatomic.h>

//  A connection's queue of domain events (zv_virt_libvirt_events.c).
typedef struct _zv_libvirt_queue_t zv_libvirt_queue_t;

struct _zv_virt_t {
    atomic_int refs;
    virConnectPtr conn;
    zv_libvirt_queue_t *queue;
    int lifecycle_id;           //  event callback ids, -1 when not registered
    int agent_id;
    bool close_registered;
    char uri [1024];
    char domain_type [16];
};

//  ---------------------------------------------------------------------
//  zv_virt_libvirt.c

//  The last libvirt error of this thread as a status, with its message in
//  errbuf: operation is the driver operation ("power_off"), call the
//  libvirt function, uuid the domain (NULL for the connection).  Resets
//  libvirt's error.
zv_status_t zv_libvirt_fail (zv_virt_t *self, const char *operation, const char *call, const char *uuid,
                             char *errbuf, size_t errlen);
//  Did the last call fail only because the driver refuses its flags?
bool zv_libvirt_flags_refused (void);
//  libvirt's virDomainState as a zova power state.
zv_power_state_t zv_libvirt_map_state (int state);
//  Is a virDomainState a running one (running, blocked)?
bool zv_libvirt_running (int state);
//  The uuid of a zova domain into uuid [VIR_UUID_STRING_BUFLEN]; false for
//  any other domain.
bool zv_libvirt_zova_domain (virDomainPtr domain, char *uuid);
//  The domain of uuid (caller frees with virDomainFree), or NULL with the
//  status (ZV_ENOTFOUND when absent, ZV_EINVAL for no uuid) and errbuf.
virDomainPtr zv_libvirt_lookup (zv_virt_t *self, const char *operation, const char *uuid,
                                zv_status_t *status_p, char *errbuf, size_t errlen);
//  The domain's virDomainState, or -1 with the status and errbuf.
int zv_libvirt_state (zv_virt_t *self, virDomainPtr domain, const char *operation, const char *uuid,
                      zv_status_t *status_p, char *errbuf, size_t errlen);
//  ZV_ECONFLICT, with errbuf saying the operation is refused in state.
zv_status_t zv_libvirt_conflict (const char *operation, const char *uuid, int state,
                                 char *errbuf, size_t errlen);

//  ---------------------------------------------------------------------
//  zv_virt_libvirt_events.c

//  A new event queue with one reference, or NULL (errno says why).
zv_libvirt_queue_t *zv_libvirt_queue_new (void);
//  Drop one reference of a queue (a virFreeCallback: takes void *).
void zv_libvirt_queue_unref (void *queue);
//  Register self's close, lifecycle and agent callbacks on self->queue.
//  Only the lifecycle one is needed: its failure is the status, with
//  errbuf; what was registered stays for zv_libvirt_events_deregister.
zv_status_t zv_libvirt_events_register (zv_virt_t *self, char *errbuf, size_t errlen);
//  Deregister what zv_libvirt_events_register registered.
void zv_libvirt_events_deregister (zv_virt_t *self);
//  The table's event_fd and event_next.
int zv_libvirt_event_fd (zv_virt_t *self);
bool zv_libvirt_event_next (zv_virt_t *self, zv_virt_event_t *event);

//  ---------------------------------------------------------------------
//  zv_virt_libvirt_domain.c: the table's domain operations (zv_virt.h)

zv_status_t zv_libvirt_spawn (zv_virt_t *self, const json_t *instance, const zv_domain_spec_t *spec,
                              char *errbuf, size_t errlen);
zv_status_t zv_libvirt_define (zv_virt_t *self, const json_t *instance, const zv_domain_spec_t *spec,
                               char *errbuf, size_t errlen);
zv_status_t zv_libvirt_destroy (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
zv_status_t zv_libvirt_power_off (zv_virt_t *self, const char *uuid, int timeout_s, bool *clean_p,
                                  char *errbuf, size_t errlen);
zv_status_t zv_libvirt_power_on (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
zv_status_t zv_libvirt_pause (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
zv_status_t zv_libvirt_unpause (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
zv_status_t zv_libvirt_suspend (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
zv_status_t zv_libvirt_set_password (zv_virt_t *self, const char *uuid, const char *user,
                                     const char *password, char *errbuf, size_t errlen);
json_t *zv_libvirt_guest_info (zv_virt_t *self, const char *uuid, int timeout_s, zv_status_t *status_p,
                               char *errbuf, size_t errlen);

//  ---------------------------------------------------------------------
//  zv_virt_libvirt_consoles.c: the table's consoles and screenshot

json_t *zv_libvirt_consoles (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
zv_status_t zv_libvirt_screenshot (zv_virt_t *self, const char *uuid, unsigned char **png_p,
                                   size_t *size_p, char *errbuf, size_t errlen);

//  ---------------------------------------------------------------------
//  zv_virt_libvirt_migrate.c: the table's live migration operations

zv_status_t zv_libvirt_migrate_live (zv_virt_t *self, const char *uuid, const zv_virt_migration_t *how,
                                     char *errbuf, size_t errlen);
json_t *zv_libvirt_job_stats (zv_virt_t *self, const char *uuid, zv_status_t *status_p,
                              char *errbuf, size_t errlen);
zv_status_t zv_libvirt_job_abort (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
zv_status_t zv_libvirt_migrate_postcopy (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
zv_status_t zv_libvirt_migrate_downtime (zv_virt_t *self, const char *uuid, int downtime_ms,
                                         char *errbuf, size_t errlen);
char *zv_libvirt_migratable_xml (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
zv_status_t zv_libvirt_cpu_compatible (zv_virt_t *self, const char *domain_xml, char *errbuf, size_t errlen);

#endif
