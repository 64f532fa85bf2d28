/*  zv_virt_libvirt.c: the libvirt implementation of the driver table.

    A zv_virt_t is one virConnect shared by the compute loop and its
    workers (libvirt connections are thread-safe), with an atomic reference
    count: the last close deregisters the event callbacks and closes the
    connection.  Every operation is one or two libvirt calls; every failure
    goes through s_fail, which maps libvirt's error code to a zv status and
    writes one message with its context, so callers report it once.

    Events.  libvirt delivers domain events and keepalives only through an
    event loop: zv_virt_init (once per process, from pthread_once) registers
    libvirt's default loop before any connection is opened and runs it on
    one thread of ours; zv_virt_shutdown wakes and joins it.  The callbacks
    run on that thread and append to the connection's event queue, a
    mutex-protected list with an eventfd that is readable while the list is
    not empty, which the compute loop polls.  The queue has its own
    reference count because libvirt may still be running a domain-event
    callback when close deregisters it: each registration holds a reference
    that libvirt drops, through the free callback, once the callback can no
    longer run.  The close callback holds none: libvirt serialises it with
    its unregistration, and drivers without one never call it.

    Power states map as Nova's libvirt driver maps them (blocked counts as
    running, shutoff as shutdown, pmsuspended as suspended).

    Consoles.  Where a domain's VNC server and TCP serial port listen is
    known only once QEMU runs (autoport): consoles reads it from the live
    XML with libxml2's XPath.  screenshot receives libvirt's stream into
    memory (blocking, on the calling worker).  A PNG passes through as it
    is: the test driver's picture, and QEMU 7.2's screen under libvirt 9.0
    (measured: about 60 ms for 720x400); an older QEMU sends PPM, which
    libpng encodes as PNG here (zv_virt_ppm_to_png).                         */

#include "virt/zv_virt.h"
#define VIR_ENUM_SENTINELS     //  name every case of libvirt enums (-Wswitch-enum)
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <png.h>
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  Events kept for a loop that does not read them; past this the oldest
//  lifecycle events go (the periodic power-state sync repairs them).
#define S_QUEUE_MAX       65536
//  How often power_off looks whether the guest has shut down.
#define S_POWER_POLL_MS   200

//  --------------------------------------------------------------------------
//  Process-wide: library initialisation and the event thread

static pthread_once_t s_init_once = PTHREAD_ONCE_INIT;
static bool s_loop_registered;              //  libvirt's default event loop is ours
static pthread_mutex_t s_loop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t s_loop_thread;
static bool s_loop_running;                 //  under s_loop_lock
static atomic_bool s_loop_stop;

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
    //  libxml2 (consoles reads live domain XML) is thread-safe only once
    //  initialised, which must happen on one thread before any parse.
    xmlInitParser ();
    //  Every failure is reported by the caller, once, with libvirt's message.
    virSetErrorFunc (NULL, s_quiet);
    //  Before any connection: a connection opened without an event loop
    //  has no keepalive and delivers no events.
    s_loop_registered = virEventRegisterDefaultImpl () == 0;
}

static void *
s_loop (void *arg)
{
    (void) arg;
    while (!atomic_load (&s_loop_stop))
        if (virEventRunDefaultImpl () < 0) {
            //  Only a failing poll() gets here: retrying would spin.
            zv_error ("virt", NULL, "libvirt's event loop stopped: %s", virGetLastErrorMessage ());
            break;
        }
    return NULL;
}

//  The timer that wakes the loop for zv_virt_shutdown: it fires once.
static void
s_wake (int timer, void *opaque)
{
    (void) opaque;
    virEventRemoveTimeout (timer);
}

void
zv_virt_init (void)
{
    pthread_once (&s_init_once, s_init);
    pthread_mutex_lock (&s_loop_lock);
    if (s_loop_registered && !s_loop_running) {
        atomic_store (&s_loop_stop, false);
        s_loop_running = pthread_create (&s_loop_thread, NULL, s_loop, NULL) == 0;
        if (s_loop_running)
            pthread_setname_np (s_loop_thread, "zv-virt-events");
        else
            zv_error ("virt", NULL, "cannot start libvirt's event thread: no domain events");
    }
    pthread_mutex_unlock (&s_loop_lock);
}

void
zv_virt_shutdown (void)
{
    pthread_mutex_lock (&s_loop_lock);
    if (s_loop_running) {
        atomic_store (&s_loop_stop, true);
        //  Adding a timer interrupts the loop's poll; the flag ends it.
        virEventAddTimeout (0, s_wake, NULL, NULL);
        pthread_join (s_loop_thread, NULL);
        s_loop_running = false;
    }
    pthread_mutex_unlock (&s_loop_lock);
}

//  --------------------------------------------------------------------------
//  The event queue

typedef struct _s_event_t {
    zv_virt_event_t event;
    struct _s_event_t *next;
} s_event_t;

typedef struct {
    atomic_int refs;
    pthread_mutex_t lock;
    s_event_t *head;
    s_event_t *tail;
    size_t count;
    int fd;                     //  eventfd: non-zero while count > 0
} s_queue_t;

static s_queue_t *
s_queue_new (void)
{
    s_queue_t *queue = (s_queue_t *) calloc (1, sizeof (s_queue_t));
    if (!queue)
        return NULL;
    queue->fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (queue->fd < 0) {
        free (queue);
        return NULL;
    }
    atomic_init (&queue->refs, 1);
    pthread_mutex_init (&queue->lock, NULL);
    return queue;
}

static void *
s_queue_ref (s_queue_t *queue)
{
    atomic_fetch_add (&queue->refs, 1);
    return queue;
}

//  A virFreeCallback: libvirt drops a registration's reference with it.
static void
s_queue_unref (void *opaque)
{
    s_queue_t *queue = (s_queue_t *) opaque;
    if (!queue || atomic_fetch_sub (&queue->refs, 1) != 1)
        return;
    while (queue->head) {
        s_event_t *next = queue->head->next;
        free (queue->head);
        queue->head = next;
    }
    close (queue->fd);
    pthread_mutex_destroy (&queue->lock);
    free (queue);
}

//  Drop one event to make room: the oldest lifecycle event (a power-state
//  sync repairs it), else the oldest of any kind.
static void
s_queue_drop (s_queue_t *queue)
{
    s_event_t *prev = NULL, *node = queue->head;
    while (node && node->event.kind != ZV_VIRT_EVENT_LIFECYCLE) {
        prev = node;
        node = node->next;
    }
    if (!node) {
        prev = NULL;
        node = queue->head;
    }
    if (prev)
        prev->next = node->next;
    else
        queue->head = node->next;
    if (queue->tail == node)
        queue->tail = prev;
    queue->count--;
    free (node);
}

static void
s_queue_push (s_queue_t *queue, zv_virt_event_kind_t kind, const char *uuid, const char *detail)
{
    s_event_t *node = (s_event_t *) calloc (1, sizeof (s_event_t));
    if (!node)
        return;                 //  lost like a dropped one: the sync repairs it
    node->event.kind = kind;
    snprintf (node->event.uuid, sizeof node->event.uuid, "%s", uuid ? uuid : "");
    snprintf (node->event.detail, sizeof node->event.detail, "%s", detail);
    pthread_mutex_lock (&queue->lock);
    if (queue->count >= S_QUEUE_MAX)
        s_queue_drop (queue);
    if (queue->tail)
        queue->tail->next = node;
    else
        queue->head = node;
    queue->tail = node;
    if (++queue->count == 1) {
        uint64_t one = 1;
        if (write (queue->fd, &one, sizeof one) != sizeof one)
            zv_error ("virt", NULL, "cannot signal a domain event: %s", strerror (errno));
    }
    pthread_mutex_unlock (&queue->lock);
}

static bool
s_queue_pop (s_queue_t *queue, zv_virt_event_t *event)
{
    pthread_mutex_lock (&queue->lock);
    s_event_t *node = queue->head;
    if (node) {
        queue->head = node->next;
        if (!queue->head)
            queue->tail = NULL;
        if (--queue->count == 0) {
            uint64_t value;
            if (read (queue->fd, &value, sizeof value) < 0 && errno != EAGAIN)
                zv_error ("virt", NULL, "cannot drain the domain event fd: %s", strerror (errno));
        }
    }
    pthread_mutex_unlock (&queue->lock);
    if (!node)
        return false;
    *event = node->event;
    free (node);
    return true;
}

//  --------------------------------------------------------------------------
//  libvirt's event callbacks (on the event thread)

//  libvirt's lifecycle event and detail names, for "stopped/crashed".
static const struct {
    const char *name;
    const char *details [12];
} s_lifecycle [] = {
    [VIR_DOMAIN_EVENT_DEFINED] = { "defined", {
        [VIR_DOMAIN_EVENT_DEFINED_ADDED] = "added",
        [VIR_DOMAIN_EVENT_DEFINED_UPDATED] = "updated",
        [VIR_DOMAIN_EVENT_DEFINED_RENAMED] = "renamed",
        [VIR_DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT] = "from_snapshot" } },
    [VIR_DOMAIN_EVENT_UNDEFINED] = { "undefined", {
        [VIR_DOMAIN_EVENT_UNDEFINED_REMOVED] = "removed",
        [VIR_DOMAIN_EVENT_UNDEFINED_RENAMED] = "renamed" } },
    [VIR_DOMAIN_EVENT_STARTED] = { "started", {
        [VIR_DOMAIN_EVENT_STARTED_BOOTED] = "booted",
        [VIR_DOMAIN_EVENT_STARTED_MIGRATED] = "migrated",
        [VIR_DOMAIN_EVENT_STARTED_RESTORED] = "restored",
        [VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT] = "from_snapshot",
        [VIR_DOMAIN_EVENT_STARTED_WAKEUP] = "wakeup" } },
    [VIR_DOMAIN_EVENT_SUSPENDED] = { "suspended", {
        [VIR_DOMAIN_EVENT_SUSPENDED_PAUSED] = "paused",
        [VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED] = "migrated",
        [VIR_DOMAIN_EVENT_SUSPENDED_IOERROR] = "ioerror",
        [VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG] = "watchdog",
        [VIR_DOMAIN_EVENT_SUSPENDED_RESTORED] = "restored",
        [VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT] = "from_snapshot",
        [VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR] = "api_error",
        [VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY] = "postcopy",
        [VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED] = "postcopy_failed" } },
    [VIR_DOMAIN_EVENT_RESUMED] = { "resumed", {
        [VIR_DOMAIN_EVENT_RESUMED_UNPAUSED] = "unpaused",
        [VIR_DOMAIN_EVENT_RESUMED_MIGRATED] = "migrated",
        [VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT] = "from_snapshot",
        [VIR_DOMAIN_EVENT_RESUMED_POSTCOPY] = "postcopy",
        [VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED] = "postcopy_failed" } },
    [VIR_DOMAIN_EVENT_STOPPED] = { "stopped", {
        [VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN] = "shutdown",
        [VIR_DOMAIN_EVENT_STOPPED_DESTROYED] = "destroyed",
        [VIR_DOMAIN_EVENT_STOPPED_CRASHED] = "crashed",
        [VIR_DOMAIN_EVENT_STOPPED_MIGRATED] = "migrated",
        [VIR_DOMAIN_EVENT_STOPPED_SAVED] = "saved",
        [VIR_DOMAIN_EVENT_STOPPED_FAILED] = "failed",
        [VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT] = "from_snapshot" } },
    [VIR_DOMAIN_EVENT_SHUTDOWN] = { "shutdown", {
        [VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED] = "finished",
        [VIR_DOMAIN_EVENT_SHUTDOWN_GUEST] = "guest",
        [VIR_DOMAIN_EVENT_SHUTDOWN_HOST] = "host" } },
    [VIR_DOMAIN_EVENT_PMSUSPENDED] = { "pmsuspended", {
        [VIR_DOMAIN_EVENT_PMSUSPENDED_MEMORY] = "memory",
        [VIR_DOMAIN_EVENT_PMSUSPENDED_DISK] = "disk" } },
    [VIR_DOMAIN_EVENT_CRASHED] = { "crashed", {
        [VIR_DOMAIN_EVENT_CRASHED_PANICKED] = "panicked",
        [VIR_DOMAIN_EVENT_CRASHED_CRASHLOADED] = "crashloaded" } },
};
#define S_LIFECYCLE_COUNT (sizeof s_lifecycle / sizeof s_lifecycle [0])
#define S_DETAIL_COUNT    (sizeof s_lifecycle [0].details / sizeof s_lifecycle [0].details [0])

static const char *s_agent_states [] = {
    [VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED] = "connected",
    [VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_DISCONNECTED] = "disconnected",
};
static const char *s_agent_reasons [] = {
    [VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_REASON_UNKNOWN] = "unknown",
    [VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_REASON_DOMAIN_STARTED] = "domain_started",
    [VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_REASON_CHANNEL] = "channel",
};
static const char *s_close_reasons [] = {
    [VIR_CONNECT_CLOSE_REASON_ERROR] = "error",
    [VIR_CONNECT_CLOSE_REASON_EOF] = "eof",
    [VIR_CONNECT_CLOSE_REASON_KEEPALIVE] = "keepalive",
    [VIR_CONNECT_CLOSE_REASON_CLIENT] = "client",
};

//  A table's name for value, else the number (a newer libvirt's value).
static const char *
s_name_of (const char *const *names, size_t count, int value, char *buf, size_t len)
{
    if (value >= 0 && (size_t) value < count && names [value])
        return names [value];
    snprintf (buf, len, "%d", value);
    return buf;
}
#define S_NAME_OF(table, value, buf) \
    s_name_of ((table), sizeof (table) / sizeof ((table) [0]), (value), (buf), sizeof (buf))

//  The uuid of a zova domain into uuid [VIR_UUID_STRING_BUFLEN]; false for
//  any other domain (events of those are not ours).
static bool
s_zova_domain (virDomainPtr domain, char *uuid)
{
    const char *name = virDomainGetName (domain);
    return name && strncmp (name, ZV_DOMAIN_PREFIX, strlen (ZV_DOMAIN_PREFIX)) == 0
        && virDomainGetUUIDString (domain, uuid) == 0;
}

static void
s_on_lifecycle (virConnectPtr conn, virDomainPtr domain, int event, int detail, void *opaque)
{
    (void) conn;
    char uuid [VIR_UUID_STRING_BUFLEN];
    if (!s_zova_domain (domain, uuid))
        return;
    char detail_buf [16], text [48];
    if (event >= 0 && (size_t) event < S_LIFECYCLE_COUNT && s_lifecycle [event].name)
        snprintf (text, sizeof text, "%s/%s", s_lifecycle [event].name,
                  s_name_of (s_lifecycle [event].details, S_DETAIL_COUNT, detail,
                             detail_buf, sizeof detail_buf));
    else
        snprintf (text, sizeof text, "%d/%d", event, detail);
    s_queue_push ((s_queue_t *) opaque, ZV_VIRT_EVENT_LIFECYCLE, uuid, text);
}

static void
s_on_agent (virConnectPtr conn, virDomainPtr domain, int state, int reason, void *opaque)
{
    (void) conn;
    char uuid [VIR_UUID_STRING_BUFLEN];
    if (!s_zova_domain (domain, uuid))
        return;
    char state_buf [16], reason_buf [16], text [48];
    snprintf (text, sizeof text, "agent %s/%s", S_NAME_OF (s_agent_states, state, state_buf),
              S_NAME_OF (s_agent_reasons, reason, reason_buf));
    s_queue_push ((s_queue_t *) opaque,
                  state == VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED
                  ? ZV_VIRT_EVENT_AGENT_CONNECTED : ZV_VIRT_EVENT_AGENT_DISCONNECTED,
                  uuid, text);
}

static void
s_on_close (virConnectPtr conn, int reason, void *opaque)
{
    (void) conn;
    char reason_buf [16], text [48];
    snprintf (text, sizeof text, "closed/%s", S_NAME_OF (s_close_reasons, reason, reason_buf));
    s_queue_push ((s_queue_t *) opaque, ZV_VIRT_EVENT_CONNECTION_CLOSED, NULL, text);
}

//  --------------------------------------------------------------------------
//  Connections

struct _zv_virt_t {
    atomic_int refs;
    virConnectPtr conn;
    s_queue_t *queue;
    int lifecycle_id;           //  event callback ids, -1 when not registered
    int agent_id;
    bool close_registered;
    char uri [1024];
    char domain_type [16];
};

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
static zv_status_t
s_fail (zv_virt_t *self, const char *operation, const char *call, const char *uuid,
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
static bool
s_flags_refused (void)
{
    int code = virGetLastErrorCode ();
    return code == VIR_ERR_NO_SUPPORT || code == VIR_ERR_ARGUMENT_UNSUPPORTED
        || code == VIR_ERR_OPERATION_UNSUPPORTED || code == VIR_ERR_INVALID_ARG;
}

static void
s_close (zv_virt_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_virt_t *self = *self_p;
    *self_p = NULL;
    if (atomic_fetch_sub (&self->refs, 1) != 1)
        return;
    //  Deregistering drops the callbacks' queue references (now, or once a
    //  callback running on the event thread returns).
    if (self->lifecycle_id >= 0 && virConnectDomainEventDeregisterAny (self->conn, self->lifecycle_id) < 0)
        virResetLastError ();
    if (self->agent_id >= 0 && virConnectDomainEventDeregisterAny (self->conn, self->agent_id) < 0)
        virResetLastError ();
    //  Fails harmlessly when the connection closed (libvirt dropped it then).
    if (self->close_registered && virConnectUnregisterCloseCallback (self->conn, s_on_close) < 0)
        virResetLastError ();
    virConnectClose (self->conn);
    s_queue_unref (self->queue);
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
    s_queue_t *queue = self ? s_queue_new () : NULL;
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
    if (virConnectRegisterCloseCallback (conn, s_on_close, queue, NULL) == 0)
        self->close_registered = true;
    else
        virResetLastError ();
    self->lifecycle_id = virConnectDomainEventRegisterAny (
        conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK (s_on_lifecycle),
        s_queue_ref (queue), s_queue_unref);
    if (self->lifecycle_id < 0) {
        s_queue_unref (queue);
        s_fail (self, "open", "virConnectDomainEventRegisterAny", NULL, errbuf, errlen);
        s_close (&self);
        return NULL;
    }
    //  A driver without guest agents may refuse this one: no agent events then.
    self->agent_id = virConnectDomainEventRegisterAny (
        conn, NULL, VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK (s_on_agent),
        s_queue_ref (queue), s_queue_unref);
    if (self->agent_id < 0) {
        s_queue_unref (queue);
        virResetLastError ();
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

static int
s_event_fd (zv_virt_t *self)
{
    return self->queue->fd;
}

static bool
s_event_next (zv_virt_t *self, zv_virt_event_t *event)
{
    return s_queue_pop (self->queue, event);
}

//  --------------------------------------------------------------------------
//  Host facts

static json_t *
s_node_info (zv_virt_t *self, char *errbuf, size_t errlen)
{
    virNodeInfo info;
    if (virNodeGetInfo (self->conn, &info) < 0) {
        s_fail (self, "node_info", "virNodeGetInfo", NULL, errbuf, errlen);
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
        s_fail (self, "list", "virConnectListAllDomains", NULL, errbuf, errlen);
        return NULL;
    }
    json_t *list = json_array ();
    for (int index = 0; index < count; index++) {
        char uuid [VIR_UUID_STRING_BUFLEN];
        int state = VIR_DOMAIN_NOSTATE, reason = 0;
        //  A domain undefined since the listing is simply not there.
        if (s_zova_domain (domains [index], uuid)
        &&  virDomainGetState (domains [index], &state, &reason, 0) == 0)
            json_array_append_new (list, json_pack ("{s:s, s:s}", "uuid", uuid,
                "power_state", zv_power_state_name (s_map_state (state))));
        virDomainFree (domains [index]);
    }
    free (domains);
    virResetLastError ();
    return list;
}

//  --------------------------------------------------------------------------
//  Domains

//  The domain of uuid, or NULL with the status (ENOTFOUND when absent).
static virDomainPtr
s_lookup (zv_virt_t *self, const char *operation, const char *uuid, zv_status_t *status_p,
          char *errbuf, size_t errlen)
{
    if (!uuid || !zv_uuid_valid (uuid)) {
        snprintf (errbuf, errlen, "%s: '%s' is not a uuid", operation, uuid ? uuid : "(null)");
        *status_p = ZV_EINVAL;
        return NULL;
    }
    virDomainPtr domain = virDomainLookupByUUIDString (self->conn, uuid);
    if (!domain)
        *status_p = s_fail (self, operation, "virDomainLookupByUUIDString", uuid, errbuf, errlen);
    return domain;
}

//  The domain's virDomainState, or -1 with the status.
static int
s_state (zv_virt_t *self, virDomainPtr domain, const char *operation, const char *uuid,
         zv_status_t *status_p, char *errbuf, size_t errlen)
{
    int state = VIR_DOMAIN_NOSTATE, reason = 0;
    if (virDomainGetState (domain, &state, &reason, 0) < 0) {
        *status_p = s_fail (self, operation, "virDomainGetState", uuid, errbuf, errlen);
        return -1;
    }
    return state;
}

//  An operation the domain's state forbids.  Checked before the call so
//  that every driver answers alike (the test driver says "internal error"
//  where QEMU says "operation invalid").
static zv_status_t
s_conflict (const char *operation, const char *uuid, int state, char *errbuf, size_t errlen)
{
    snprintf (errbuf, errlen, "%s: domain " ZV_DOMAIN_PREFIX "%s is %s", operation, uuid,
              zv_power_state_name (s_map_state (state)));
    return ZV_ECONFLICT;
}

static bool
s_running (int state)
{
    return state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_BLOCKED;
}

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
    zv_status_t status = s_fail (self, operation, "virDomainDestroy", uuid, errbuf, errlen);
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

static zv_status_t
s_spawn (zv_virt_t *self, const json_t *instance, const zv_domain_spec_t *spec,
         char *errbuf, size_t errlen)
{
    const char *uuid = json_string_value (json_object_get (instance, "uuid"));
    if (!uuid || !zv_uuid_valid (uuid)) {
        snprintf (errbuf, errlen, "spawn: the instance has no valid uuid");
        return ZV_EINVAL;
    }
    zv_status_t status = ZV_OK;
    virDomainPtr domain = NULL;
    char *xml = zv_domain_xml (instance, self->domain_type, spec);
    if (!xml) {
        snprintf (errbuf, errlen, "cannot make the domain XML of %s (nic '%s', or out of memory)",
                  uuid, spec && spec->nic ? spec->nic : "");
        return ZV_EINVAL;
    }
    if (spec && spec->instance_dir
    &&  (status = s_write_xml (spec->instance_dir, xml, errbuf, errlen)) != ZV_OK)
        goto cleanup;

    //  What was there: a running domain stops (hard reboot, rescue); a
    //  managed-save image goes, or virDomainCreate would restore it
    //  instead of booting the new definition.
    bool existed = false;
    virDomainPtr old = virDomainLookupByUUIDString (self->conn, uuid);
    if (old) {
        existed = true;
        if (virDomainIsActive (old) == 1)
            status = s_stop (self, old, "spawn", uuid, NULL, errbuf, errlen);
        if (status == ZV_OK
        &&  virDomainHasManagedSaveImage (old, 0) == 1 && virDomainManagedSaveRemove (old, 0) < 0)
            status = s_fail (self, "spawn", "virDomainManagedSaveRemove", uuid, errbuf, errlen);
        virDomainFree (old);
        if (status != ZV_OK)
            goto cleanup;
    }
    else
    if (virGetLastErrorCode () != VIR_ERR_NO_DOMAIN) {
        status = s_fail (self, "spawn", "virDomainLookupByUUIDString", uuid, errbuf, errlen);
        goto cleanup;
    }
    virResetLastError ();

    domain = virDomainDefineXML (self->conn, xml);
    if (!domain) {
        status = s_fail (self, "spawn", "virDomainDefineXML", uuid, errbuf, errlen);
        goto cleanup;
    }
    if (virDomainCreate (domain) < 0) {
        status = s_fail (self, "spawn", "virDomainCreate", uuid, errbuf, errlen);
        //  A definition that was there before stays (now the new one).
        if (!existed && virDomainUndefine (domain) < 0)
            virResetLastError ();
    }
cleanup:
    if (domain)
        virDomainFree (domain);
    free (xml);
    return status;
}

//  Undefine flags, most thorough first: a driver that refuses a flag
//  (the test driver has no NVRAM) gets the next row.
static const unsigned int s_undefine_flags [] = {
    VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM,
    VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
    VIR_DOMAIN_UNDEFINE_MANAGED_SAVE,
};

static zv_status_t
s_destroy (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    virDomainPtr domain = s_lookup (self, "destroy", uuid, &status, errbuf, errlen);
    if (!domain)
        return status == ZV_ENOTFOUND ? ZV_OK : status;
    if (virDomainIsActive (domain) == 1
    &&  (status = s_stop (self, domain, "destroy", uuid, NULL, errbuf, errlen)) != ZV_OK)
        goto cleanup;
    virResetLastError ();
    int rc = -1;
    for (size_t row = 0; rc < 0 && row < sizeof s_undefine_flags / sizeof s_undefine_flags [0]; row++) {
        rc = virDomainUndefineFlags (domain, s_undefine_flags [row]);
        if (rc < 0 && !s_flags_refused ())
            break;
    }
    if (rc < 0 && s_flags_refused ())
        rc = virDomainUndefine (domain);
    //  A transient domain is gone once destroyed.
    if (rc < 0 && virGetLastErrorCode () != VIR_ERR_NO_DOMAIN)
        status = s_fail (self, "destroy", "virDomainUndefineFlags", uuid, errbuf, errlen);
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
        if (!s_flags_refused ())
            return false;
    }
    return virDomainShutdown (domain) == 0;
}

static zv_status_t
s_power_off (zv_virt_t *self, const char *uuid, int timeout_s, bool *clean_p,
             char *errbuf, size_t errlen)
{
    bool clean = false;
    zv_status_t status = ZV_OK;
    virDomainPtr domain = s_lookup (self, "power_off", uuid, &status, errbuf, errlen);
    if (!domain)
        goto cleanup;
    int state = s_state (self, domain, "power_off", uuid, &status, errbuf, errlen);
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

static zv_status_t
s_power_on (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    virDomainPtr domain = s_lookup (self, "power_on", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    int state = s_state (self, domain, "power_on", uuid, &status, errbuf, errlen);
    if (state < 0)
        goto cleanup;
    if (virDomainIsActive (domain) == 1)
        status = s_conflict ("power_on", uuid, state, errbuf, errlen);
    else
    if (virDomainCreate (domain) < 0)
        status = s_fail (self, "power_on", "virDomainCreate", uuid, errbuf, errlen);
cleanup:
    virDomainFree (domain);
    return status;
}

static zv_status_t
s_pause (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    virDomainPtr domain = s_lookup (self, "pause", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    int state = s_state (self, domain, "pause", uuid, &status, errbuf, errlen);
    if (state < 0 || state == VIR_DOMAIN_PAUSED)
        ;                       //  already paused: done (a retried request)
    else
    if (!s_running (state))
        status = s_conflict ("pause", uuid, state, errbuf, errlen);
    else
    if (virDomainSuspend (domain) < 0)
        status = s_fail (self, "pause", "virDomainSuspend", uuid, errbuf, errlen);
    virDomainFree (domain);
    return status;
}

static zv_status_t
s_unpause (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    virDomainPtr domain = s_lookup (self, "unpause", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    int state = s_state (self, domain, "unpause", uuid, &status, errbuf, errlen);
    if (state < 0 || s_running (state))
        ;                       //  already running: done (a retried request)
    else
    if (state != VIR_DOMAIN_PAUSED)
        status = s_conflict ("unpause", uuid, state, errbuf, errlen);
    else
    if (virDomainResume (domain) < 0)
        status = s_fail (self, "unpause", "virDomainResume", uuid, errbuf, errlen);
    virDomainFree (domain);
    return status;
}

static zv_status_t
s_suspend (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    virDomainPtr domain = s_lookup (self, "suspend", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    int state = s_state (self, domain, "suspend", uuid, &status, errbuf, errlen);
    if (state < 0)
        ;
    else
    if (virDomainIsActive (domain) != 1)
        status = s_conflict ("suspend", uuid, state, errbuf, errlen);
    else
    if (virDomainManagedSave (domain, 0) < 0)
        status = s_fail (self, "suspend", "virDomainManagedSave", uuid, errbuf, errlen);
    virDomainFree (domain);
    return status;
}

static zv_status_t
s_set_password (zv_virt_t *self, const char *uuid, const char *user, const char *password,
                char *errbuf, size_t errlen)
{
    if (!user || !*user || !password) {
        snprintf (errbuf, errlen, "set_password: a user and a password are needed");
        return ZV_EINVAL;
    }
    zv_status_t status = ZV_OK;
    virDomainPtr domain = s_lookup (self, "set_password", uuid, &status, errbuf, errlen);
    if (!domain)
        return status;
    int state = s_state (self, domain, "set_password", uuid, &status, errbuf, errlen);
    if (state < 0)
        ;
    else
    if (!s_running (state))
        status = s_conflict ("set_password", uuid, state, errbuf, errlen);
    else
    if (virDomainSetUserPassword (domain, user, password, 0) < 0)
        status = s_fail (self, "set_password", "virDomainSetUserPassword", uuid, errbuf, errlen);
    virDomainFree (domain);
    return status;
}

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

static json_t *
s_guest_info (zv_virt_t *self, const char *uuid, int timeout_s, zv_status_t *status_p,
              char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    json_t *info = NULL;
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    virDomainPtr domain = s_lookup (self, "guest_info", uuid, &status, errbuf, errlen);
    if (!domain)
        goto cleanup;
    int state = s_state (self, domain, "guest_info", uuid, &status, errbuf, errlen);
    if (state < 0)
        goto cleanup;
    if (!s_running (state)) {
        status = s_conflict ("guest_info", uuid, state, errbuf, errlen);
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
        status = s_fail (self, "guest_info", "virDomainGetGuestInfo", uuid, errbuf, errlen);
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

//  --------------------------------------------------------------------------
//  Consoles and screenshots

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

static json_t *
s_consoles (zv_virt_t *self, const char *uuid, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_OK;
    json_t *consoles = NULL;
    char *xml = NULL;
    virDomainPtr domain = s_lookup (self, "consoles", uuid, &status, errbuf, errlen);
    if (!domain)
        goto cleanup;
    int state = s_state (self, domain, "consoles", uuid, &status, errbuf, errlen);
    if (state < 0)
        goto cleanup;
    //  A paused QEMU still listens; a stopped domain's XML has no ports.
    if (virDomainIsActive (domain) != 1) {
        s_conflict ("consoles", uuid, state, errbuf, errlen);
        goto cleanup;
    }
    xml = virDomainGetXMLDesc (domain, 0);
    if (!xml) {
        s_fail (self, "consoles", "virDomainGetXMLDesc", uuid, errbuf, errlen);
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

//  virStreamRecvAll's sink: the screenshot into an s_bytes_t.
static int
s_screenshot_sink (virStreamPtr stream, const char *data, size_t len, void *opaque)
{
    (void) stream;
    return s_bytes_add ((s_bytes_t *) opaque, data, len) ? (int) len : -1;
}

static zv_status_t
s_screenshot (zv_virt_t *self, const char *uuid, unsigned char **png_p, size_t *size_p,
              char *errbuf, size_t errlen)
{
    *png_p = NULL;
    *size_p = 0;
    zv_status_t status = ZV_OK;
    virStreamPtr stream = NULL;
    char *mime = NULL;
    s_bytes_t image = { .max = S_SCREENSHOT_MAX };
    virDomainPtr domain = s_lookup (self, "screenshot", uuid, &status, errbuf, errlen);
    if (!domain)
        goto cleanup;
    int state = s_state (self, domain, "screenshot", uuid, &status, errbuf, errlen);
    if (state < 0)
        goto cleanup;
    //  The test driver gives its picture even for a stopped domain: the
    //  state is checked here so that every driver answers alike.
    if (virDomainIsActive (domain) != 1) {
        status = s_conflict ("screenshot", uuid, state, errbuf, errlen);
        goto cleanup;
    }
    stream = virStreamNew (self->conn, 0);
    if (!stream) {
        status = s_fail (self, "screenshot", "virStreamNew", uuid, errbuf, errlen);
        goto cleanup;
    }
    mime = virDomainScreenshot (domain, stream, 0, 0);
    if (!mime) {
        status = s_fail (self, "screenshot", "virDomainScreenshot", uuid, errbuf, errlen);
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
            status = s_fail (self, "screenshot", "virStreamRecvAll", uuid, errbuf, errlen);
        goto cleanup;
    }
    if (virStreamFinish (stream) < 0) {
        status = s_fail (self, "screenshot", "virStreamFinish", uuid, errbuf, errlen);
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
        power = s_map_state (state);
    virResetLastError ();
    virDomainFree (domain);
    return power;
}

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
    .spawn = s_spawn,
    .destroy = s_destroy,
    .power_off = s_power_off,
    .power_on = s_power_on,
    .pause = s_pause,
    .unpause = s_unpause,
    .suspend = s_suspend,
    .set_password = s_set_password,
    .guest_info = s_guest_info,
    .consoles = s_consoles,
    .screenshot = s_screenshot,
    .power_state = s_power_state,
    .event_fd = s_event_fd,
    .event_next = s_event_next,
};
