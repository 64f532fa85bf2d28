/*  zv_common.h: what every zova module shares and nothing more.

    Status codes (returned by every fallible call, LMDB-style), a strerror for
    them, wall-clock milliseconds, UUID helpers and the logging macros.  Logging
    goes through czmq's zsys so that one process (zovad all) has one log stream;
    every line carries the actor name and, where there is one, the request id.
    The level is checked before the arguments are formatted.                  */

#ifndef ZV_COMMON_H
#define ZV_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ZV_OK = 0,
    ZV_EINVAL,          //  malformed or invalid input (HTTP 400)
    ZV_ENOTFOUND,       //  no such record (404)
    ZV_ECONFLICT,       //  state forbids it, or compare-and-swap lost (409)
    ZV_EEXIST,          //  already exists (409)
    ZV_ENOVALIDHOST,    //  scheduler found no host (Nova's NoValidHost)
    ZV_EUNSUPPORTED,    //  hypervisor or peer cannot do it (501)
    ZV_ETIMEOUT,        //  peer did not answer before the deadline (504)
    ZV_EUNAVAILABLE,    //  peer or service is down (503)
    ZV_ETOOBIG,         //  frame, string or array over its limit (413)
    ZV_EIO,             //  local I/O, LMDB or libvirt failure (500)
    ZV_ENOMEM,          //  allocation failed (500)
    ZV_EINTERNAL,       //  a bug: broken invariant reported to a peer (500)
    ZV_EFORBIDDEN,      //  the caller may not do this (403)
    ZV_STATUS_COUNT
} zv_status_t;

//  Short stable name of a status ("conflict"), used on the wire and in JSON.
const char *zv_status_name (zv_status_t status);
//  Status from its name; ZV_EINTERNAL when unknown.
zv_status_t zv_status_from_name (const char *name);
//  HTTP-like code for a status (for the CLI's and a future HTTP api's use).
int zv_status_http (zv_status_t status);

//  Milliseconds since the epoch (wall clock) and a monotonic clock in ms.
int64_t zv_now_ms (void);
int64_t zv_mono_ms (void);
//  ISO 8601 UTC ("2026-11-22T06:17:46Z") of a ms timestamp into buf[32].
const char *zv_iso8601 (int64_t ms, char buf[32]);

#define ZV_UUID_LEN 36
//  New random UUID string (36 chars + NUL) into out[37].
void zv_uuid_new (char out[ZV_UUID_LEN + 1]);
//  True when s is a canonical 36-char UUID string.
bool zv_uuid_valid (const char *s);

//  Is text[0..len) (valid UTF-8) a printable name: no control character
//  (C0, DEL), no U+FFFE or U+FFFF (which XML 1.0, and so libvirt's domain
//  XML, does not allow), no leading or trailing blank?  What Nova's name
//  parameter requires, in one place for every name zova stores.
bool zv_text_printable (const char *text, size_t len);

//  Logging.  Levels: 0 error, 1 warning, 2 info, 3 debug.
extern int zv_log_level;
void zv_log_set_level_name (const char *name);   //  "debug", "info", ...
void zv_log_emit (int level, const char *actor, const char *request_id,
                  const char *format, ...) __attribute__ ((format (printf, 4, 5)));
#define zv_log(lvl, actor, rq, ...) \
    do { if ((lvl) <= zv_log_level) zv_log_emit ((lvl), (actor), (rq), __VA_ARGS__); } while (0)
#define zv_error(actor, rq, ...)   zv_log (0, actor, rq, __VA_ARGS__)
#define zv_warning(actor, rq, ...) zv_log (1, actor, rq, __VA_ARGS__)
#define zv_info(actor, rq, ...)    zv_log (2, actor, rq, __VA_ARGS__)
#define zv_debug(actor, rq, ...)   zv_log (3, actor, rq, __VA_ARGS__)

#endif
