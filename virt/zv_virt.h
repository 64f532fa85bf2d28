/*  zv_virt.h: the hypervisor driver table, the only way compute reaches a
    hypervisor.

    As libvirt's own drivers are, a driver is a struct of operations; an
    operation the connected hypervisor cannot do returns ZV_EUNSUPPORTED
    with "<operation> is unsupported by <uri>: <why>", and the caller
    leaves the instance as it was.  The one implementation is libvirt itself
    (zv_virt_libvirt.c and the files its internal zv_virt_libvirt.h lists)
    for any URI: test:///default for development and simulated fleets,
    qemu:///system for real guests.  Only those files include libvirt.

    Instances cross this boundary as the conductor's json records; domains
    are named "zova-<uuid>" with the instance uuid as the domain uuid, so a
    host's domains map back to instances without any other index.  What is
    on the host's disks for a domain (the files compute prepared) comes as a
    zv_domain_spec_t, so the XML is a pure function of record + spec.

    Threads: a connection is shared by the compute loop (fast calls: list,
    power_state, node_info) and its workers (spawn, reboot, shutdown: calls
    that wait on a guest).  libvirt connections are thread-safe; the
    zv_virt_t is reference-counted so that a worker holding one survives the
    loop replacing a dead connection.  Domain events arrive on libvirt's
    event thread and are queued to a pipe the compute loop polls.           */

#ifndef ZV_VIRT_H
#define ZV_VIRT_H

#include <jansson.h>
#include "common/zv_common.h"
#include "store/zv_state.h"

#define ZV_DOMAIN_PREFIX "zova-"

typedef struct _zv_virt_t zv_virt_t;

//  What the host holds for one domain, prepared by compute.  Every path is
//  absolute; NULL means "none".  On libvirt's test driver disks are NULL
//  (it has no storage to give them).
typedef struct {
    const char *instance_dir;       //  <instances_path>/<uuid>; libvirt.xml is written there
    const char *disk;               //  root disk (qcow2 overlay on the _base file): vda
    const char *disk_local;         //  ephemeral disk (qcow2): vdb
    const char *disk_swap;          //  swap disk (qcow2): vdc (vdb when no ephemeral)
    const char *kernel;             //  direct kernel boot (image property kernel_id)
    const char *ramdisk;            //  its initrd (ramdisk_id)
    const char *cmdline;            //  its command line (os_command_line)
    //  Rescue: the domain boots from rescue_disk (vda, with its own kernel
    //  and ramdisk when the rescue image has them) and the instance's own
    //  root disk is attached second (vdb), as Nova's rescue does.
    const char *rescue_disk;
    const char *rescue_kernel;
    const char *rescue_ramdisk;
    const char *rescue_cmdline;
    const char *console_log;        //  serial console logged here (console.log)
    const char *vnc_listen;         //  VNC graphics listen address; NULL: no graphics
    //  NIC: "user" (QEMU user-mode networking), "bridge:<name>",
    //  "network:<name>", or "none".
    const char *nic;
    const char *mac;                //  the NIC's MAC address (derived from the uuid)
    //  Serial console on a TCP port of the host (raw, QEMU listening on
    //  serial_host:serial_port) for the console proxy, still logged to
    //  console_log; serial_port 0 keeps a pty.
    const char *serial_host;
    int serial_port;
    //  The guest CPU, as Nova's [libvirt] cpu_mode and cpu_models say:
    //  "host-model", "host-passthrough", "custom" (with cpu_model) or
    //  "none"; NULL or "": host-model on kvm, the hypervisor's default
    //  model otherwise.
    const char *cpu_mode;
    const char *cpu_model;
} zv_domain_spec_t;

//  A domain event, from libvirt's event thread to the compute loop.
typedef enum {
    ZV_VIRT_EVENT_LIFECYCLE,        //  started, stopped, suspended, resumed, ... (power changed)
    ZV_VIRT_EVENT_AGENT_CONNECTED,  //  the guest agent's channel connected
    ZV_VIRT_EVENT_AGENT_DISCONNECTED,
    ZV_VIRT_EVENT_CONNECTION_CLOSED //  libvirtd went away (uuid empty)
} zv_virt_event_kind_t;

typedef struct {
    zv_virt_event_kind_t kind;
    char uuid [ZV_UUID_LEN + 1];
    char detail [48];               //  libvirt's event/detail names, for logs ("stopped/crashed")
} zv_virt_event_t;

//  How a live migration goes (the source's side, migrate_live).
typedef struct {
    const char *peer_uri;           //  the destination's libvirtd as the source's libvirtd reaches it
                                    //  (peer to peer: "qemu+tcp://host/system", "qemu+unix:///system?socket=...")
    const char *migrate_uri;        //  where memory and disks travel ("tcp://addr"); NULL: libvirt's choice
    const char *dest_xml;           //  the domain as the destination defines it (NULL: as it runs here)
    bool block;                     //  copy the disks that are not shared (the top overlay of each)
    bool auto_converge;             //  permit throttling the guest's CPUs so that memory converges
    bool postcopy;                  //  permit switching to post-copy (migrate_postcopy)
    int bandwidth_mib;              //  MiB/s, 0: no limit
    int downtime_ms;                //  the maximum downtime allowed at first (0: libvirt's default)
} zv_virt_migration_t;

typedef struct {
    const char *name;
    //  Connect to uri.  NULL on failure with the reason in errbuf.  The
    //  connection registers for domain events at once; they queue until
    //  read with event_next.
    zv_virt_t *(*open) (const char *uri, const char *virt_type, char *errbuf, size_t errlen);
    //  Drop one reference (the last closes the connection).
    void (*close) (zv_virt_t **self_p);
    //  Take one more reference (for a worker).
    zv_virt_t *(*ref) (zv_virt_t *self);
    //  Is the connection alive?  (false after libvirtd went away)
    bool (*alive) (zv_virt_t *self);
    //  The domain type this connection defines: "test", "qemu" or "kvm".
    const char *(*domain_type) (zv_virt_t *self);
    //  The connection's URI, for messages.
    const char *(*uri) (zv_virt_t *self);
    //  Host facts: {vcpus, memory_mb, hypervisor_type, hypervisor_version,
    //  cpu_model, cpu_arch, uri}.  New object (caller owns) or NULL with errbuf.
    json_t *(*node_info) (zv_virt_t *self, char *errbuf, size_t errlen);
    //  Every zova domain on the host: [{uuid, power_state}] (caller owns).
    json_t *(*list) (zv_virt_t *self, char *errbuf, size_t errlen);
    //  Write the domain XML of an instance record to <instance_dir>/libvirt.xml
    //  (when instance_dir is set; the directory is made), define it (an
    //  existing definition is replaced) and start it.  A domain that runs
    //  is destroyed first (hard reboot, start after stop, rescue, unrescue).
    //  A failed start leaves the domain undefined only when it was not
    //  defined before.
    zv_status_t (*spawn) (zv_virt_t *self, const json_t *instance, const zv_domain_spec_t *spec,
                          char *errbuf, size_t errlen);
    //  Write the domain XML as spawn does and define it without starting
    //  it: an existing definition is replaced.  A domain that runs goes on
    //  running as it is (the new definition applies at its next start); one
    //  that is off loses its managed-save image, which would restore the
    //  old definition.  What a move's destination does before it starts the
    //  guest only if it was running.
    zv_status_t (*define) (zv_virt_t *self, const json_t *instance, const zv_domain_spec_t *spec,
                           char *errbuf, size_t errlen);
    //  Stop and undefine (with any managed-save image, snapshots metadata
    //  and NVRAM); a domain that does not exist is not an error.
    zv_status_t (*destroy) (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
    //  Power off: ask the guest (agent, else ACPI) and wait up to timeout_s
    //  for it to shut off; then (or at once with timeout_s 0) destroy the
    //  domain, keeping its definition.  *clean_p (may be NULL) says whether
    //  the guest shut itself down.  A domain already off is not an error.
    zv_status_t (*power_off) (zv_virt_t *self, const char *uuid, int timeout_s, bool *clean_p,
                              char *errbuf, size_t errlen);
    //  Start the defined domain as it is (restores a managed save).
    zv_status_t (*power_on) (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
    //  QEMU paused / running again, RAM kept in memory.
    zv_status_t (*pause) (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
    zv_status_t (*unpause) (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
    //  Managed save to disk (the domain stops) / restore (power_on).
    zv_status_t (*suspend) (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
    //  Set a user's password through the guest agent.
    zv_status_t (*set_password) (zv_virt_t *self, const char *uuid, const char *user,
                                 const char *password, char *errbuf, size_t errlen);
    //  What the guest agent says: {hostname, os: {id, name, version,
    //  kernel_release, machine}, ip_addresses: [{interface, mac, address,
    //  prefix, family}]}; NULL with errbuf when the agent does not answer
    //  within timeout_s (ZV_EUNAVAILABLE) or the driver cannot ask.
    json_t *(*guest_info) (zv_virt_t *self, const char *uuid, int timeout_s, zv_status_t *status_p,
                           char *errbuf, size_t errlen);
    //  Where a running domain's consoles listen, from its live XML:
    //  {vnc: {host, port}, serial: {host, port}} (members absent when the
    //  domain has none); NULL with errbuf when the domain is not running.
    json_t *(*consoles) (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
    //  The screen of a running domain as PNG bytes (*png_p malloc'd,
    //  caller frees; *size_p its length); ZV_EUNSUPPORTED where the
    //  hypervisor cannot take one.
    zv_status_t (*screenshot) (zv_virt_t *self, const char *uuid, unsigned char **png_p, size_t *size_p,
                               char *errbuf, size_t errlen);
    //  Current power state of one domain (ZV_POWER_NOSTATE when absent).
    zv_power_state_t (*power_state) (zv_virt_t *self, const char *uuid);
    //  Live migration (the source's half).  migrate_live blocks until the
    //  job ends: ZV_OK when the domain runs on the destination (persistent
    //  there, undefined here), else an error with libvirt's reason (the
    //  guest runs on here).  The others act on the running job from
    //  another thread: its figures as {type ("unbounded", "bounded"),
    //  operation ("migration_out", "save", ...), elapsed_ms, memory_total,
    //  memory_processed, memory_remaining, disk_total, disk_processed,
    //  disk_remaining, memory_bps, dirty_rate (pages/s), iteration,
    //  postcopy (bool)} (NULL with ZV_ENOTFOUND in *status_p when no job
    //  runs, or the last one ended), abort (ZV_ENOTFOUND: no job), switch
    //  to post-copy (ZV_ECONFLICT unless a migration started with
    //  postcopy runs), and a new maximum downtime.  Drivers without
    //  migration say ZV_EUNSUPPORTED.
    zv_status_t (*migrate_live) (zv_virt_t *self, const char *uuid, const zv_virt_migration_t *how,
                                 char *errbuf, size_t errlen);
    json_t *(*job_stats) (zv_virt_t *self, const char *uuid, zv_status_t *status_p, char *errbuf, size_t errlen);
    zv_status_t (*job_abort) (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
    zv_status_t (*migrate_postcopy) (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
    zv_status_t (*migrate_downtime) (zv_virt_t *self, const char *uuid, int downtime_ms, char *errbuf, size_t errlen);
    //  The running domain's XML as another host must define it
    //  (VIR_DOMAIN_XML_MIGRATABLE; caller frees), NULL with errbuf.
    char *(*migratable_xml) (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen);
    //  Can this host run the guest CPU of domain_xml (its <cpu>, none: the
    //  hypervisor's default model)?  ZV_OK, ZV_EINVAL (incompatible: errbuf
    //  says why) or another error.
    zv_status_t (*cpu_compatible) (zv_virt_t *self, const char *domain_xml, char *errbuf, size_t errlen);
    //  Domain events: a file descriptor that is readable while events are
    //  queued (for zmq_poll / zloop), and the next event (false when none).
    int (*event_fd) (zv_virt_t *self);
    bool (*event_next) (zv_virt_t *self, zv_virt_event_t *event);
} zv_virt_driver_t;

//  The libvirt driver.
extern const zv_virt_driver_t zv_virt_libvirt;

//  Initialise the hypervisor library once per process, from the main
//  thread before any actor starts: libvirt initialises OpenSSL there, whose
//  per-thread state must belong to a thread that outlives the actors.  It
//  also starts the event thread that delivers domain events and keepalives.
void zv_virt_init (void);
//  Stop the event thread (at process exit, after every actor stopped).
void zv_virt_shutdown (void);

//  A binary PPM (P6, any maxval; samples scaled to 8 bits) as PNG bytes
//  (*png_p malloc'd, caller frees; *size_p its length): how the screenshot
//  of a QEMU older than 7.1, which sends PPM, becomes one a browser shows.  ZV_EINVAL when ppm is not such
//  an image (truncated, malformed header), ZV_ENOMEM; *png_p NULL then.
zv_status_t zv_virt_ppm_to_png (const unsigned char *ppm, size_t len, unsigned char **png_p, size_t *size_p);

//  Domain XML for an instance on a hypervisor of the given domain type
//  ("test", "qemu", "kvm").  Caller frees.  Pure: no libvirt, for golden
//  tests.  spec may be NULL (no disks, no devices: the test driver's case).
//  Every string value is XML-escaped and any character XML 1.0 cannot
//  carry (control characters, U+FFFE, U+FFFF, malformed UTF-8) becomes
//  U+FFFD, so any record gives a document libvirt accepts.
char *zv_domain_xml (const json_t *instance, const char *domain_type, const zv_domain_spec_t *spec);

//  A domain's XML made ready for another host (caller frees; NULL with
//  errbuf on XML that does not parse): every file path under from_dir
//  (disks, kernel, initrd, the console log) moved under to_dir, and the
//  serial console's TCP port set to serial_port (0: left as it is).
//  Pure (libxml2), for golden tests.
char *zv_domain_xml_relocate (const char *xml, const char *from_dir, const char *to_dir, int serial_port,
                              char *errbuf, size_t errlen);

#endif
