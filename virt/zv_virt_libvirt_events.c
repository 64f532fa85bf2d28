/*  zv_virt_libvirt_events.c: libvirt's initialisation, its event thread,
    and each connection's queue of domain events.

    libvirt delivers domain events and keepalives only through an
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
    its unregistration, and drivers without one never call it.  Events of
    domains that are not zova's (named zova-<uuid>) are dropped.           */

#include "virt/zv_virt_libvirt.h"
#include <libxml/parser.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

//  Events kept for a loop that does not read them; past this the oldest
//  lifecycle events go (the periodic power-state sync repairs them).
#define S_QUEUE_MAX       65536

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

struct _zv_libvirt_queue_t {
    atomic_int refs;
    pthread_mutex_t lock;
    s_event_t *head;
    s_event_t *tail;
    size_t count;
    int fd;                     //  eventfd: non-zero while count > 0
};

zv_libvirt_queue_t *
zv_libvirt_queue_new (void)
{
    zv_libvirt_queue_t *queue = (zv_libvirt_queue_t *) calloc (1, sizeof (zv_libvirt_queue_t));
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
s_queue_ref (zv_libvirt_queue_t *queue)
{
    atomic_fetch_add (&queue->refs, 1);
    return queue;
}

//  A virFreeCallback: libvirt drops a registration's reference with it.
void
zv_libvirt_queue_unref (void *opaque)
{
    zv_libvirt_queue_t *queue = (zv_libvirt_queue_t *) opaque;
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
s_queue_drop (zv_libvirt_queue_t *queue)
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
s_queue_push (zv_libvirt_queue_t *queue, zv_virt_event_kind_t kind, const char *uuid, const char *detail)
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
s_queue_pop (zv_libvirt_queue_t *queue, zv_virt_event_t *event)
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

static void
s_on_lifecycle (virConnectPtr conn, virDomainPtr domain, int event, int detail, void *opaque)
{
    (void) conn;
    char uuid [VIR_UUID_STRING_BUFLEN];
    if (!zv_libvirt_zova_domain (domain, uuid))
        return;
    char detail_buf [16], text [48];
    if (event >= 0 && (size_t) event < S_LIFECYCLE_COUNT && s_lifecycle [event].name)
        snprintf (text, sizeof text, "%s/%s", s_lifecycle [event].name,
                  s_name_of (s_lifecycle [event].details, S_DETAIL_COUNT, detail,
                             detail_buf, sizeof detail_buf));
    else
        snprintf (text, sizeof text, "%d/%d", event, detail);
    s_queue_push ((zv_libvirt_queue_t *) opaque, ZV_VIRT_EVENT_LIFECYCLE, uuid, text);
}

static void
s_on_agent (virConnectPtr conn, virDomainPtr domain, int state, int reason, void *opaque)
{
    (void) conn;
    char uuid [VIR_UUID_STRING_BUFLEN];
    if (!zv_libvirt_zova_domain (domain, uuid))
        return;
    char state_buf [16], reason_buf [16], text [48];
    snprintf (text, sizeof text, "agent %s/%s", S_NAME_OF (s_agent_states, state, state_buf),
              S_NAME_OF (s_agent_reasons, reason, reason_buf));
    s_queue_push ((zv_libvirt_queue_t *) opaque,
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
    s_queue_push ((zv_libvirt_queue_t *) opaque, ZV_VIRT_EVENT_CONNECTION_CLOSED, NULL, text);
}

//  --------------------------------------------------------------------------
//  Registration on a connection

zv_status_t
zv_libvirt_events_register (zv_virt_t *self, char *errbuf, size_t errlen)
{
    zv_libvirt_queue_t *queue = self->queue;
    if (virConnectRegisterCloseCallback (self->conn, s_on_close, queue, NULL) == 0)
        self->close_registered = true;
    else
        virResetLastError ();
    self->lifecycle_id = virConnectDomainEventRegisterAny (
        self->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK (s_on_lifecycle),
        s_queue_ref (queue), zv_libvirt_queue_unref);
    if (self->lifecycle_id < 0) {
        zv_libvirt_queue_unref (queue);
        return zv_libvirt_fail (self, "open", "virConnectDomainEventRegisterAny", NULL, errbuf, errlen);
    }
    //  A driver without guest agents may refuse this one: no agent events then.
    self->agent_id = virConnectDomainEventRegisterAny (
        self->conn, NULL, VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK (s_on_agent),
        s_queue_ref (queue), zv_libvirt_queue_unref);
    if (self->agent_id < 0) {
        zv_libvirt_queue_unref (queue);
        virResetLastError ();
    }
    return ZV_OK;
}

void
zv_libvirt_events_deregister (zv_virt_t *self)
{
    //  Deregistering drops the callbacks' queue references (now, or once a
    //  callback running on the event thread returns).
    if (self->lifecycle_id >= 0 && virConnectDomainEventDeregisterAny (self->conn, self->lifecycle_id) < 0)
        virResetLastError ();
    if (self->agent_id >= 0 && virConnectDomainEventDeregisterAny (self->conn, self->agent_id) < 0)
        virResetLastError ();
    //  Fails harmlessly when the connection closed (libvirt dropped it then).
    if (self->close_registered && virConnectUnregisterCloseCallback (self->conn, s_on_close) < 0)
        virResetLastError ();
}

int
zv_libvirt_event_fd (zv_virt_t *self)
{
    return self->queue->fd;
}

bool
zv_libvirt_event_next (zv_virt_t *self, zv_virt_event_t *event)
{
    return s_queue_pop (self->queue, event);
}

