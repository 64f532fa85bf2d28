/*  zv_common.c: status names, clocks, UUIDs and the log line format.

    Everything here is stateless apart from zv_log_level, a plain int that the
    logging macros read before formatting anything (a stale read only changes
    whether one line is printed).  Statuses live in one table indexed by the
    enum, so a new status is one row: its wire name and its HTTP code.
    Log lines go to czmq's zsys so that every actor in one process shares one
    stream; the line is formatted once here, into a stack buffer.            */

#include "common/zv_common.h"

#include <czmq.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

typedef struct {
    const char *name;       //  stable wire name
    int http;               //  HTTP-like code
} s_status_row_t;

static const s_status_row_t s_status [ZV_STATUS_COUNT] = {
    [ZV_OK]           = { "ok",            200 },
    [ZV_EINVAL]       = { "invalid",       400 },
    [ZV_ENOTFOUND]    = { "not_found",     404 },
    [ZV_ECONFLICT]    = { "conflict",      409 },
    [ZV_EEXIST]       = { "exists",        409 },
    [ZV_ENOVALIDHOST] = { "no_valid_host", 500 },   //  what Nova answers
    [ZV_EUNSUPPORTED] = { "unsupported",   501 },
    [ZV_ETIMEOUT]     = { "timeout",       504 },
    [ZV_EUNAVAILABLE] = { "unavailable",   503 },
    [ZV_ETOOBIG]      = { "too_big",       413 },
    [ZV_EIO]          = { "io",            500 },
    [ZV_ENOMEM]       = { "nomem",         500 },
    [ZV_EINTERNAL]    = { "internal",      500 },
    [ZV_EFORBIDDEN]   = { "forbidden",     403 },
};

const char *
zv_status_name (zv_status_t status)
{
    if ((unsigned) status >= ZV_STATUS_COUNT || !s_status [status].name)
        return s_status [ZV_EINTERNAL].name;
    return s_status [status].name;
}

zv_status_t
zv_status_from_name (const char *name)
{
    if (name)
        for (int i = 0; i < ZV_STATUS_COUNT; i++)
            if (s_status [i].name && streq (s_status [i].name, name))
                return (zv_status_t) i;
    return ZV_EINTERNAL;
}

int
zv_status_http (zv_status_t status)
{
    if ((unsigned) status >= ZV_STATUS_COUNT || !s_status [status].http)
        return 500;
    return s_status [status].http;
}

static int64_t
s_clock_ms (clockid_t clock)
{
    struct timespec ts;
    clock_gettime (clock, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
zv_now_ms (void)
{
    return s_clock_ms (CLOCK_REALTIME);
}

int64_t
zv_mono_ms (void)
{
    return s_clock_ms (CLOCK_MONOTONIC);
}

const char *
zv_iso8601 (int64_t ms, char buf [32])
{
    //  Floor division, so that -1 ms is 23:59:59 of the day before.
    int64_t secs = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
    time_t t = (time_t) secs;
    struct tm tm;
    if (!gmtime_r (&t, &tm)
    ||  strftime (buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf (buf, 32, "invalid-time");
    return buf;
}

void
zv_uuid_new (char out [ZV_UUID_LEN + 1])
{
    uuid_t uuid;
    uuid_generate_random (uuid);
    uuid_unparse_lower (uuid, out);
}

bool
zv_uuid_valid (const char *s)
{
    if (!s)
        return false;
    for (int i = 0; i < ZV_UUID_LEN; i++) {
        char c = s [i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        }
        else
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
           || (c >= 'A' && c <= 'F')))
            return false;           //  also stops at a short string's NUL
    }
    return s [ZV_UUID_LEN] == '\0';
}

//  Logging

int zv_log_level = 2;

static const char *s_level_names [] = { "error", "warning", "info", "debug" };
#define S_LEVELS ((int) (sizeof (s_level_names) / sizeof (s_level_names [0])))

void
zv_log_set_level_name (const char *name)
{
    for (int i = 0; name && i < S_LEVELS; i++)
        if (streq (name, s_level_names [i])) {
            zv_log_level = i;
            return;
        }
    zsys_warning ("[zova] unknown log level '%s', keeping '%s'",
                  name ? name : "(null)",
                  s_level_names [zv_log_level < 0 ? 0
                               : zv_log_level >= S_LEVELS ? S_LEVELS - 1
                               : zv_log_level]);
}

void
zv_log_emit (int level, const char *actor, const char *request_id,
             const char *format, ...)
{
    char text [2048];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);

    char line [2200];
    if (request_id)
        snprintf (line, sizeof line, "[%s] rq=%s %s",
                  actor ? actor : "zova", request_id, text);
    else
        snprintf (line, sizeof line, "[%s] %s", actor ? actor : "zova", text);

    switch (level) {
        case 0:  zsys_error ("%s", line);   break;
        case 1:  zsys_warning ("%s", line); break;
        case 2:  zsys_info ("%s", line);    break;
        default: zsys_debug ("%s", line);   break;
    }
}

bool
zv_text_printable (const char *text, size_t len)
{
    if (!text || len == 0 || text [0] == ' ' || text [len - 1] == ' ')
        return false;
    const unsigned char *bytes = (const unsigned char *) text;
    for (size_t at = 0; at < len; at++) {
        if (bytes [at] < 0x20 || bytes [at] == 0x7f)
            return false;
        //  U+FFFE and U+FFFF are EF BF BE and EF BF BF.
        if (bytes [at] == 0xef && at + 2 < len && bytes [at + 1] == 0xbf
        &&  (bytes [at + 2] == 0xbe || bytes [at + 2] == 0xbf))
            return false;
    }
    return true;
}
