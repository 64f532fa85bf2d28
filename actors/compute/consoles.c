/*  consoles.c: what only this host can answer about a guest's consoles:
    its console log, its screen, the TCP port of its serial console.

    The console log is read from the end of <instance dir>/console.log
    (QEMU writes it) on the loop's thread, bounded by S_LOG_MAX, and cleaned
    into valid UTF-8 to travel as a msgpack string.  A screenshot waits on
    QEMU, so it runs on a worker with its own reference of the connection
    and answers the request from there.  Serial console ports are given out
    from [serial_console] port_range when a domain is (re)defined and kept
    for the instance while this compute runs; terminate frees them.        */

#include "actors/compute/compute.h"
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

//  Text that travels as a msgpack string: valid UTF-8 (no overlong
//  forms, no surrogates) without NUL; any other byte of the guest's output
//  becomes '?'.
static void
s_utf8_clean (char *text, size_t len)
{
    size_t at = 0;
    while (at < len) {
        unsigned char c = (unsigned char) text [at];
        size_t need;
        uint32_t point, least;
        if (c >= 0x01 && c < 0x80) {
            at++;
            continue;
        }
        if ((c & 0xE0) == 0xC0)      { need = 1; point = c & 0x1F; least = 0x80; }
        else if ((c & 0xF0) == 0xE0) { need = 2; point = c & 0x0F; least = 0x800; }
        else if ((c & 0xF8) == 0xF0) { need = 3; point = c & 0x07; least = 0x10000; }
        else {
            text [at++] = '?';
            continue;
        }
        bool ok = at + need < len;
        for (size_t k = 1; ok && k <= need; k++) {
            unsigned char next = (unsigned char) text [at + k];
            ok = (next & 0xC0) == 0x80;
            point = (point << 6) | (next & 0x3F);
        }
        if (ok && (point < least || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF)))
            ok = false;
        if (!ok) {
            text [at++] = '?';
            continue;
        }
        at += need + 1;
    }
}

//  ---------------------------------------------------------------------
//  Console log

//  compute.console_log: the last lines of <instance dir>/console.log.
#define S_LOG_MAX (4 * 1024 * 1024)

void
zv_compute_console_log (zv_compute_t *self, zv_msg_t *msg)
{
    const char *uuid = zv_msg_get_str (msg, "uuid");
    int64_t lines = zv_msg_get_int (msg, "lines", 50);
    char path [1300], dir [1200];
    snprintf (path, sizeof path, "%s/console.log", zv_compute_instance_dir (self, uuid, dir, sizeof dir));
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat (fd, &info) != 0) {
        zv_msg_t *error = zv_msg_error (msg, ZV_ECONFLICT, "Guest of instance %s has no console log on host %s "
                                        "(it needs a hypervisor with consoles)", uuid, self->cfg.host);
        if (fd >= 0)
            close (fd);
        zv_compute_answer (self, &error);
        return;
    }
    //  Back from the end until lines + 1 newlines are seen (the last line
    //  may end in one) or the cap.
    off_t size = info.st_size, from = size;
    char *text = NULL;
    size_t got = 0;
    int64_t newlines = 0;
    while (from > 0 && newlines <= lines && got < S_LOG_MAX) {
        size_t step = from > 65536 ? 65536 : (size_t) from;
        from -= (off_t) step;
        char *bigger = (char *) malloc (got + step + 1);
        ssize_t read_now = pread (fd, bigger, step, from);
        if (read_now != (ssize_t) step) {
            free (bigger);
            break;
        }
        memcpy (bigger + step, text ? text : "", got);
        free (text);
        text = bigger;
        got += step;
        for (size_t k = 0; k < step; k++)
            newlines += text [k] == '\n';
    }
    close (fd);
    size_t start = 0;
    //  Lines to drop from the front: a text ending in a newline holds as
    //  many lines as newlines, one without it one more.
    int64_t skip = newlines - lines + (got && text [got - 1] == '\n' ? 0 : 1);
    for (size_t k = 0; k < got && skip > 0; k++)
        if (text [k] == '\n') {
            skip--;
            start = k + 1;
        }
    if (got - start > S_LOG_MAX)
        start = got - S_LOG_MAX;
    if (text)
        s_utf8_clean (text + start, got - start);
    zv_msg_t *reply = zv_msg_reply (msg);
    json_t *body = json_pack ("{s:s%}", "output", text ? text + start : "", got - start);
    zv_msg_set_body (reply, &body);
    free (text);
    zv_compute_answer (self, &reply);
}

//  ---------------------------------------------------------------------
//  Screenshot

//  compute.screenshot: the guest's screen as PNG, taken on a worker.
typedef struct {
    const zv_virt_driver_t *driver;
    zv_virt_t *virt;
    zv_msg_t *request;
    char uuid [ZV_UUID_LEN + 1];
    unsigned char *png;
    size_t size;
    zv_status_t status;
    char errbuf [512];
} s_shot_t;

static void
s_shot_work (void *job)
{
    s_shot_t *shot = (s_shot_t *) job;
    if (!shot->driver->screenshot) {
        shot->status = ZV_EUNSUPPORTED;
        snprintf (shot->errbuf, sizeof shot->errbuf, "screenshot is unsupported by driver %s", shot->driver->name);
        return;
    }
    shot->status = shot->driver->screenshot (shot->virt, shot->uuid, &shot->png, &shot->size,
                                             shot->errbuf, sizeof shot->errbuf);
}

static void
s_shot_done (void *actor, void *job)
{
    zv_compute_t *self = (zv_compute_t *) actor;
    s_shot_t *shot = (s_shot_t *) job;
    if (!zv_workers_cancelled (self->workers)) {
        zv_msg_t *reply;
        if (shot->status == ZV_OK) {
            reply = zv_msg_reply (shot->request);
            json_t *body = json_pack ("{s:s, s:I}", "format", "png", "size", (json_int_t) shot->size);
            zv_msg_set_body (reply, &body);
            zv_msg_set_payload (reply, shot->png, shot->size);
        }
        else
            reply = zv_msg_error (shot->request, shot->status, "%s", shot->errbuf);
        zv_compute_answer (self, &reply);
    }
    free (shot->png);
    zv_msg_destroy (&shot->request);
    shot->driver->close (&shot->virt);
    free (shot);
}

void
zv_compute_screenshot (zv_compute_t *self, zv_msg_t *msg)
{
    if (!zv_compute_virt_ready (self)) {
        zv_msg_t *error = zv_msg_error (msg, ZV_EUNAVAILABLE, "%s", *self->degraded ? self->degraded
                                                                    : "hypervisor unreachable");
        zv_compute_answer (self, &error);
        return;
    }
    s_shot_t *shot = (s_shot_t *) zmalloc (sizeof (s_shot_t));
    shot->driver = self->driver;
    shot->virt = self->driver->ref (self->virt);
    shot->request = zv_msg_request_stub (msg);
    snprintf (shot->uuid, sizeof shot->uuid, "%s", zv_msg_get_str (msg, "uuid"));
    if (zv_compute_real (self))
        zv_workers_submit (self->workers, s_shot_work, s_shot_done, shot);
    else {
        s_shot_work (shot);
        s_shot_done (self, shot);
    }
}

//  ---------------------------------------------------------------------
//  Serial console ports

//  The TCP port of an instance's serial console: the one it had while this
//  compute runs, else the lowest port of [serial_console] port_range that
//  no other domain of this host was given and that can be bound now (a
//  running QEMU holds its own).  0 when the range is exhausted (pty then).
int
zv_compute_serial_port (zv_compute_t *self, const char *uuid)
{
    json_t *had = json_object_get (self->serial_ports, uuid);
    if (had)
        return (int) json_integer_value (had);
    int low = 0, high = 0;
    if (sscanf (self->cfg.serial_port_range, "%d:%d", &low, &high) != 2 || low <= 0 || high < low || high > 65535)
        return 0;
    json_t *taken = json_object ();
    const char *key;
    json_t *value;
    char port_text [16];
    json_object_foreach (self->serial_ports, key, value) {
        snprintf (port_text, sizeof port_text, "%lld", (long long) json_integer_value (value));
        json_object_set_new (taken, port_text, json_true ());
    }
    int found = 0;
    for (int port = low; port <= high && !found; port++) {
        snprintf (port_text, sizeof port_text, "%d", port);
        if (json_object_get (taken, port_text))
            continue;
        struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
        if (inet_pton (AF_INET, self->cfg.vnc_server_listen, &address.sin_addr) != 1)
            address.sin_addr.s_addr = htonl (INADDR_ANY);
        int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && bind (fd, (struct sockaddr *) &address, sizeof address) == 0)
            found = port;
        if (fd >= 0)
            close (fd);
    }
    json_decref (taken);
    if (found)
        json_object_set_new (self->serial_ports, uuid, json_integer (found));
    return found;
}
