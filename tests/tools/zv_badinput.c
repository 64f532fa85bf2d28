/*  zv_badinput: send malformed and hostile frames to a zova socket and check
    that each one is answered with an error, never a crash or silence.

        zv_badinput ENDPOINT [--identity ID] [--service api|conductor]
                    [--server UUID] [--deleted UUID] [--timeout SECONDS]
                    CASE...|all
        zv_badinput --list

    Design.  One DEALER (with the given identity, so that on the conductor's
    ROUTER it looks like a peer such as "compute.node1") connected to
    ENDPOINT.  Frames are built by hand with msgpack-c, because zv_msg would
    refuse to encode most of them; replies are read with zv_msg_decode.  The
    cases run one after the other: each drains what is pending, sends its
    frames, and waits (with a deadline) for an error reply whose "re" is the
    request's id, or empty when the peer could not recover one.  After every
    case a valid request must still be answered, so a peer that died or went
    deaf is blamed on the case that did it; once the peer is gone the rest
    are not attempted.  The service (api or conductor) decides the types the
    cases use; without --service it is asked with api.ping.

    Output: one line per case, "ok CASE: <status> <message> [rq=...]",
    "FAIL CASE: why" or "skip CASE: why"; the exit status is 1 when any case
    failed, 2 on bad usage.  The request ids let a test find the peer's log
    line for a refused request.                                              */

#include "proto/zv_msg.h"
#include "proto/zv_pack.h"

#include <msgpack.h>
#include <assert.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The largest envelope a request may have.
#ifdef ZV_MSG_MAX_REQUEST
#   define S_MAX_REQUEST        ZV_MSG_MAX_REQUEST
#else
#   define S_MAX_REQUEST        ZV_MSG_MAX_BYTES
#endif
#define S_DEFAULT_TIMEOUT_MS    3000
#define S_SILENCE_MS            200
#define S_MASK(status)          (1u << (status))
#define S_ANY_ERROR             0u

typedef struct {
    const char *endpoint;
    const char *identity;           //  NULL: anonymous
    char service [16];              //  "api" or "conductor"
    const char *server;             //  uuid of an ACTIVE instance, or NULL
    const char *deleted;            //  uuid of a deleted instance, or NULL
    int timeout_ms;
    zsock_t *sock;
    int serial;
    //  The current case.
    char id [72];
    char rq [72];
    zv_status_t status;
    char text [600];
    char why [1024];
    bool skipped;
    //  The envelope's fixed keys are intact, so the reply must name the
    //  request (re == id): an error the sender cannot match is no answer.
    bool strict;
} s_ctx_t;

typedef int (s_case_fn) (s_ctx_t *ctx);

//  ---------------------------------------------------------------------
//  Frames by hand

typedef struct {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} s_buf_t;

static void
s_buf_init (s_buf_t *buf)
{
    msgpack_sbuffer_init (&buf->sbuf);
    msgpack_packer_init (&buf->pk, &buf->sbuf, msgpack_sbuffer_write);
}

static void
s_buf_free (s_buf_t *buf)
{
    msgpack_sbuffer_destroy (&buf->sbuf);
}

static void
s_str (s_buf_t *buf, const char *text)
{
    size_t len = strlen (text);
    msgpack_pack_str (&buf->pk, len);
    msgpack_pack_str_body (&buf->pk, text, len);
}

static void
s_raw (s_buf_t *buf, const void *data, size_t size)
{
    msgpack_sbuffer_write (&buf->sbuf, (const char *) data, size);
}

//  A json value packed as zova packs it (body maps, arrays).
static void
s_json (s_buf_t *buf, json_t *value)
{
    zv_status_t status = zv_pack_append (value, &buf->sbuf, 1);
    assert (status == ZV_OK);
    (void) status;
    json_decref (value);
}

//  Fresh message and request ids for the next request.
static void
s_new_ids (s_ctx_t *ctx)
{
    char uuid [ZV_UUID_LEN + 1];
    zv_uuid_new (uuid);
    snprintf (ctx->rq, sizeof ctx->rq, "req-%s", uuid);
    snprintf (ctx->id, sizeof ctx->id, "badinput-%d", ++ctx->serial);
    ctx->strict = true;
}

//  The envelope keys every request has (v id rq ts src) under a map header
//  of keys entries; the caller packs the remaining keys - 5.
static void
s_head (s_ctx_t *ctx, s_buf_t *buf, size_t keys, int64_t version)
{
    msgpack_pack_map (&buf->pk, keys);
    s_str (buf, "v");   msgpack_pack_int64 (&buf->pk, version);
    s_str (buf, "id");  s_str (buf, ctx->id);
    s_str (buf, "rq");  s_str (buf, ctx->rq);
    s_str (buf, "ts");  msgpack_pack_int64 (&buf->pk, zv_now_ms ());
    s_str (buf, "src"); s_str (buf, "badinput");
}

//  A well-formed request envelope with body (taken), in buf.
static void
s_envelope (s_ctx_t *ctx, s_buf_t *buf, json_t *body)
{
    s_head (ctx, buf, 6, ZV_MSG_VERSION);
    s_str (buf, "b");
    s_json (buf, body);
}

//  "<service>.<verb>", the type the current service serves.
static const char *
s_type (s_ctx_t *ctx, const char *verb)
{
    static char type [160];
    snprintf (type, sizeof type, "%s.%s", ctx->service, verb);
    return type;
}

//  What a user request earns: at the api, mask; straight at the conductor,
//  403, since only an api may say which user a request acts for.
static unsigned
s_user (s_ctx_t *ctx, unsigned mask)
{
    return streq (ctx->service, "conductor") ? S_MASK (ZV_EFORBIDDEN) : mask;
}

//  What a host's report earns: from a compute, mask; from any other peer
//  (an anonymous one), 403.
static unsigned
s_host (s_ctx_t *ctx, unsigned mask)
{
    return ctx->identity && strncmp (ctx->identity, "compute.", 8) == 0 ? mask : S_MASK (ZV_EFORBIDDEN);
}

static zmsg_t *
s_frames (const char *type, const void *envelope, size_t size)
{
    zmsg_t *zmsg = zmsg_new ();
    zmsg_addmem (zmsg, type, strlen (type));
    zmsg_addmem (zmsg, envelope, size);
    return zmsg;
}

//  ---------------------------------------------------------------------
//  Sending and checking

static zsock_t *
s_connect (s_ctx_t *ctx, bool with_identity)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    assert (sock);
    if (with_identity && ctx->identity)
        zsock_set_identity (sock, ctx->identity);
    zsock_set_linger (sock, 0);
    zsock_set_sndtimeo (sock, ctx->timeout_ms);
    if (zsock_connect (sock, "%s", ctx->endpoint) != 0) {
        fprintf (stderr, "zv_badinput: cannot connect to %s\n", ctx->endpoint);
        zsock_destroy (&sock);
    }
    return sock;
}

static void
s_drain (zsock_t *sock)
{
    while (zsock_events (sock) & ZMQ_POLLIN) {
        zmsg_t *stale = zmsg_recv (sock);
        if (!stale)
            break;
        zmsg_destroy (&stale);
    }
}

static int
s_fail (s_ctx_t *ctx, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
static int
s_fail (s_ctx_t *ctx, const char *format, ...)
{
    //  A second reason is the context of the first: "why (context)".
    char text [512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    size_t used = strlen (ctx->why);
    if (used)
        snprintf (ctx->why + used, sizeof ctx->why - used, " (%s)", text);
    else
        snprintf (ctx->why, sizeof ctx->why, "%s", text);
    return -1;
}

//  The next reply on sock to request id (or with an empty "re": a peer that
//  could not read our id), before the deadline.  NULL on timeout.
static zv_msg_t *
s_await (s_ctx_t *ctx, zsock_t *sock, const char *id, int timeout_ms)
{
    int64_t deadline = zv_mono_ms () + timeout_ms;
    zpoller_t *poller = zpoller_new (sock, NULL);
    zv_msg_t *found = NULL;
    while (!found) {
        int64_t left = deadline - zv_mono_ms ();
        if (left <= 0 || !zpoller_wait (poller, (int) left))
            break;
        zmsg_t *zmsg = zmsg_recv (sock);
        zv_msg_t *msg = zv_msg_decode (&zmsg, false);
        if (msg && zv_msg_is_reply (msg)
        &&  (streq (zv_msg_re (msg), id) || streq (zv_msg_re (msg), "")))
            found = msg;
        else
            zv_msg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    (void) ctx;
    return found;
}

static const char *
s_mask_names (unsigned mask, char *buf, size_t len)
{
    buf [0] = '\0';
    for (int status = 1; status < ZV_STATUS_COUNT; status++)
        if (mask & S_MASK (status)) {
            size_t used = strlen (buf);
            snprintf (buf + used, len - used, "%s%s", used ? " or " : "",
                      zv_status_name ((zv_status_t) status));
        }
    return buf;
}

//  Send zmsg (taken) and expect an error reply with a status in mask (any
//  error when mask is S_ANY_ERROR) and a message.  0 or -1 (ctx->why).
static int
s_expect (s_ctx_t *ctx, zmsg_t **zmsg_p, unsigned mask)
{
    s_drain (ctx->sock);
    if (zmsg_send (zmsg_p, ctx->sock) != 0) {
        zmsg_destroy (zmsg_p);
        return s_fail (ctx, "cannot send: %s", zmq_strerror (zmq_errno ()));
    }
    zv_msg_t *reply = s_await (ctx, ctx->sock, ctx->id, ctx->timeout_ms);
    if (!reply)
        return s_fail (ctx, "no reply within %d ms (rq=%s)", ctx->timeout_ms, ctx->rq);
    int rc = 0;
    char names [128];
    ctx->status = zv_msg_status (reply);
    snprintf (ctx->text, sizeof ctx->text, "%s", zv_msg_error_text (reply));
    if (ctx->status == ZV_OK)
        rc = s_fail (ctx, "answered with success (rq=%s)", ctx->rq);
    else
    if (ctx->strict && !streq (zv_msg_re (reply), ctx->id))
        rc = s_fail (ctx, "error reply '%s: %s' does not name the request (re \"%s\", not \"%s\"; rq=%s)",
                     zv_status_name (ctx->status), ctx->text, zv_msg_re (reply), ctx->id, ctx->rq);
    else
    if (!*ctx->text)
        rc = s_fail (ctx, "error reply '%s' without a message", zv_status_name (ctx->status));
    else
    if (mask != S_ANY_ERROR && !(mask & S_MASK (ctx->status)))
        rc = s_fail (ctx, "expected %s, got %s: %s", s_mask_names (mask, names, sizeof names),
                     zv_status_name (ctx->status), ctx->text);
    zv_msg_destroy (&reply);
    return rc;
}

//  Shorthands: a request of type with body (taken) / with raw envelope bytes.
static int
s_expect_body (s_ctx_t *ctx, const char *type, json_t *body, unsigned mask)
{
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_envelope (ctx, &buf, body);
    zmsg_t *zmsg = s_frames (type, buf.sbuf.data, buf.sbuf.size);
    s_buf_free (&buf);
    return s_expect (ctx, &zmsg, mask);
}

static int
s_expect_raw (s_ctx_t *ctx, const char *type, s_buf_t *buf, unsigned mask)
{
    zmsg_t *zmsg = s_frames (type, buf->sbuf.data, buf->sbuf.size);
    s_buf_free (buf);
    return s_expect (ctx, &zmsg, mask);
}

//  A valid request on sock must be answered with success: the peer is alive
//  and still serving.  api.ping on the api; a read-only list on the conductor.
static int
s_probe (s_ctx_t *ctx, zsock_t *sock)
{
    bool api = streq (ctx->service, "api");
    zv_msg_t *msg = zv_msg_new (api ? "api.ping" : "conductor.flavor_list");
    zv_msg_set_src (msg, "badinput");
    char id [72];
    snprintf (id, sizeof id, "%s", zv_msg_id (msg));
    s_drain (sock);
    if (zv_msg_send (&msg, sock) != 0)
        return -1;
    zv_msg_t *reply = s_await (ctx, sock, id, ctx->timeout_ms);
    //  A conductor may refuse a flavor listing from a peer that is no api
    //  (it acts for no user): that answer still says who is there.
    bool ok = reply && streq (zv_msg_re (reply), id)
           && (zv_msg_status (reply) == ZV_OK || (!api && zv_msg_status (reply) == ZV_EFORBIDDEN));
    zv_msg_destroy (&reply);
    return ok ? 0 : -1;
}

//  Send zmsg (taken) to which no reply is due; the peer must stay silent
//  about it and keep serving.
static int
s_expect_silence (s_ctx_t *ctx, zmsg_t **zmsg_p, const char *re)
{
    s_drain (ctx->sock);
    if (zmsg_send (zmsg_p, ctx->sock) != 0) {
        zmsg_destroy (zmsg_p);
        return s_fail (ctx, "cannot send: %s", zmq_strerror (zmq_errno ()));
    }
    zv_msg_t *answer = s_await (ctx, ctx->sock, re, S_SILENCE_MS);
    if (answer) {
        zv_msg_destroy (&answer);
        return s_fail (ctx, "a reply was answered (rq=%s)", ctx->rq);
    }
    ctx->status = ZV_OK;
    snprintf (ctx->text, sizeof ctx->text, "no answer, as none is due; still serving");
    return 0;
}

static json_t *
s_flavor_body (const char *name)
{
    return json_pack ("{s:s, s:i, s:i, s:i}", "name", name, "vcpus", 1, "ram_mb", 64, "disk_gb", 1);
}

//  ---------------------------------------------------------------------
//  The cases

static int
s_not_msgpack (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    ctx->strict = false;
    //  0xc1 is the one byte msgpack never uses; text alone would read as a fixint.
    static const char junk [] = "\xc1 this is not msgpack \xff\xfe";
    zmsg_t *zmsg = s_frames (s_type (ctx, "flavor_list"), junk, sizeof junk - 1);
    if (s_expect (ctx, &zmsg, S_MASK (ZV_EINVAL)))
        return -1;
    //  Valid msgpack, but only a number: not an envelope either.
    zmsg = s_frames (s_type (ctx, "flavor_list"), "\x2a", 1);
    return s_expect (ctx, &zmsg, S_MASK (ZV_EINVAL));
}

static int
s_truncated (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    ctx->strict = false;
    s_buf_t buf;
    s_buf_init (&buf);
    s_envelope (ctx, &buf, s_flavor_body ("badinput-truncated"));
    size_t full = buf.sbuf.size;
    size_t cuts [] = { 0, 1, 2, 5, 9, full / 2, full - 2, full - 1 };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof cuts / sizeof cuts [0]; i++) {
        zmsg_t *zmsg = s_frames (s_type (ctx, "flavor_create"), buf.sbuf.data, cuts [i]);
        rc = s_expect (ctx, &zmsg, S_MASK (ZV_EINVAL));
        if (rc)
            s_fail (ctx, "cut at %zu of %zu bytes", cuts [i], full);
    }
    s_buf_free (&buf);
    return rc;
}

static int
s_trailing_garbage (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    ctx->strict = false;
    s_buf_t buf;
    s_buf_init (&buf);
    s_envelope (ctx, &buf, s_flavor_body ("badinput-trailing"));
    s_raw (&buf, "\x93\x01\x02", 3);
    return s_expect_raw (ctx, s_type (ctx, "flavor_create"), &buf, S_MASK (ZV_EINVAL));
}

static int
s_envelope_not_map (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    ctx->strict = false;
    s_buf_t buf;
    s_buf_init (&buf);
    msgpack_pack_array (&buf.pk, 3);
    s_str (&buf, "v");
    s_str (&buf, ctx->id);
    s_str (&buf, ctx->rq);
    return s_expect_raw (ctx, s_type (ctx, "flavor_list"), &buf, S_MASK (ZV_EINVAL));
}

static int
s_wire_version (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_head (ctx, &buf, 6, 2);
    s_str (&buf, "b");
    s_json (&buf, json_object ());
    return s_expect_raw (ctx, s_type (ctx, "flavor_list"), &buf, S_MASK (ZV_EINVAL));
}

static int
s_missing_id (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    ctx->strict = false;
    s_buf_t buf;
    s_buf_init (&buf);
    msgpack_pack_map (&buf.pk, 5);
    s_str (&buf, "v");   msgpack_pack_int64 (&buf.pk, ZV_MSG_VERSION);
    s_str (&buf, "rq");  s_str (&buf, ctx->rq);
    s_str (&buf, "ts");  msgpack_pack_int64 (&buf.pk, zv_now_ms ());
    s_str (&buf, "src"); s_str (&buf, "badinput");
    s_str (&buf, "b");   s_json (&buf, json_object ());
    return s_expect_raw (ctx, s_type (ctx, "flavor_list"), &buf, S_MASK (ZV_EINVAL));
}

//  Envelope keys of the wrong type or length, one at a time.
static int
s_bad_envelope_keys (s_ctx_t *ctx)
{
    static const char *what [] = { "ts", "src", "rq", "id", "dl", "e", NULL };
    for (int i = 0; what [i]; i++) {
        s_new_ids (ctx);
        s_buf_t buf;
        s_buf_init (&buf);
        const char *key = what [i];
        ctx->strict = !streq (key, "id");
        msgpack_pack_map (&buf.pk, streq (key, "dl") || streq (key, "e") ? 7 : 6);
        s_str (&buf, "v");  msgpack_pack_int64 (&buf.pk, ZV_MSG_VERSION);
        s_str (&buf, "id");
        if (streq (key, "id"))
            s_str (&buf, "an-id-that-is-far-longer-than-the-sixty-four-bytes-an-id-may-have-on-the-wire");
        else
            s_str (&buf, ctx->id);
        s_str (&buf, "rq");
        if (streq (key, "rq"))
            msgpack_pack_int64 (&buf.pk, 42);
        else
            s_str (&buf, ctx->rq);
        s_str (&buf, "ts");
        if (streq (key, "ts"))
            s_str (&buf, "yesterday");
        else
            msgpack_pack_int64 (&buf.pk, zv_now_ms ());
        s_str (&buf, "src");
        if (streq (key, "src"))
            msgpack_pack_array (&buf.pk, 0);
        else
            s_str (&buf, "badinput");
        if (streq (key, "dl")) {
            s_str (&buf, "dl");
            msgpack_pack_int64 (&buf.pk, -5);
        }
        if (streq (key, "e")) {
            //  An error map on a message that is not a reply.
            s_str (&buf, "e");
            s_json (&buf, json_pack ("{s:s, s:s}", "c", "invalid", "m", "not a reply"));
        }
        s_str (&buf, "b");
        s_json (&buf, json_object ());
        if (s_expect_raw (ctx, s_type (ctx, "flavor_list"), &buf, S_MASK (ZV_EINVAL)))
            return s_fail (ctx, "envelope key '%s'", key);
    }
    return 0;
}

static int
s_body_not_map (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_head (ctx, &buf, 6, ZV_MSG_VERSION);
    s_str (&buf, "b");
    s_json (&buf, json_pack ("[s,i]", "name", 1));
    return s_expect_raw (ctx, s_type (ctx, "flavor_create"), &buf, S_MASK (ZV_EINVAL));
}

static int
s_unknown_type (s_ctx_t *ctx)
{
    return s_expect_body (ctx, s_type (ctx, "nope"), json_object (), S_MASK (ZV_EINVAL));
}

static int
s_binary_type (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_envelope (ctx, &buf, json_object ());
    static const char type [] = "\x00\xff\x01\x80 api.ping\n";
    zmsg_t *zmsg = zmsg_new ();
    zmsg_addmem (zmsg, type, sizeof type - 1);
    zmsg_addmem (zmsg, buf.sbuf.data, buf.sbuf.size);
    s_buf_free (&buf);
    if (s_expect (ctx, &zmsg, S_MASK (ZV_EINVAL)))
        return -1;
    //  A type of 4 KiB: longer than any type may be.
    s_new_ids (ctx);
    s_buf_init (&buf);
    s_envelope (ctx, &buf, json_object ());
    char *long_type = malloc (4097);
    memset (long_type, 'x', 4096);
    long_type [4096] = '\0';
    zmsg = s_frames (long_type, buf.sbuf.data, buf.sbuf.size);
    free (long_type);
    s_buf_free (&buf);
    return s_expect (ctx, &zmsg, S_MASK (ZV_EINVAL));
}

static int
s_wrong_type_field (s_ctx_t *ctx)
{
    json_t *body = json_pack ("{s:s, s:s, s:i, s:i}", "name", "badinput-wrong-type",
                              "vcpus", "two", "ram_mb", 64, "disk_gb", 1);
    if (s_expect_body (ctx, s_type (ctx, "flavor_create"), body, S_MASK (ZV_EINVAL)))
        return -1;
    body = json_pack ("{s:s, s:f, s:i, s:i}", "name", "badinput-float", "vcpus", 2.0,
                      "ram_mb", 64, "disk_gb", 1);
    if (s_expect_body (ctx, s_type (ctx, "flavor_create"), body, S_MASK (ZV_EINVAL)))
        return -1;
    body = json_pack ("{s:i, s:i, s:i, s:i}", "name", 7, "vcpus", 1, "ram_mb", 64, "disk_gb", 1);
    if (s_expect_body (ctx, s_type (ctx, "flavor_create"), body, S_MASK (ZV_EINVAL)))
        return -1;
    body = json_pack ("{s:s, s:i, s:i, s:i, s:s}", "name", "badinput-bool", "vcpus", 1,
                      "ram_mb", 64, "disk_gb", 1, "is_public", "yes");
    if (s_expect_body (ctx, s_type (ctx, "flavor_create"), body, S_MASK (ZV_EINVAL)))
        return -1;
    return s_expect_body (ctx, s_type (ctx, "server_show"), json_pack ("{s:[s]}", "ref", "x"),
                          S_MASK (ZV_EINVAL));
}

static int
s_missing_field (s_ctx_t *ctx)
{
    json_t *body = json_pack ("{s:s, s:i, s:i}", "name", "badinput-missing", "vcpus", 1, "disk_gb", 1);
    if (s_expect_body (ctx, s_type (ctx, "flavor_create"), body, S_MASK (ZV_EINVAL)))
        return -1;
    //  Present but empty, or nil, counts as missing for a required field.
    body = json_pack ("{s:s, s:i, s:i, s:i}", "name", "", "vcpus", 1, "ram_mb", 64, "disk_gb", 1);
    if (s_expect_body (ctx, s_type (ctx, "flavor_create"), body, S_MASK (ZV_EINVAL)))
        return -1;
    return s_expect_body (ctx, s_type (ctx, "server_show"), json_pack ("{s:n}", "ref"),
                          S_MASK (ZV_EINVAL));
}

//  A string over the codec's limit (100 KiB), and one over its field's.
static int
s_oversized_string (s_ctx_t *ctx)
{
    size_t len = 100 * 1024;
    char *name = malloc (len + 1);
    memset (name, 'n', len);
    name [len] = '\0';
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_head (ctx, &buf, 6, ZV_MSG_VERSION);
    s_str (&buf, "b");
    msgpack_pack_map (&buf.pk, 4);
    s_str (&buf, "name");    s_str (&buf, name);
    s_str (&buf, "vcpus");   msgpack_pack_int64 (&buf.pk, 1);
    s_str (&buf, "ram_mb");  msgpack_pack_int64 (&buf.pk, 64);
    s_str (&buf, "disk_gb"); msgpack_pack_int64 (&buf.pk, 1);
    int rc = s_expect_raw (ctx, s_type (ctx, "flavor_create"), &buf, S_MASK (ZV_ETOOBIG));
    if (rc == 0) {
        name [300] = '\0';          //  within the codec, over name's 255
        rc = s_expect_body (ctx, s_type (ctx, "flavor_create"), s_flavor_body (name),
                            S_MASK (ZV_ETOOBIG));
    }
    free (name);
    return rc;
}

//  Strings that are not what they claim: invalid UTF-8, an embedded NUL.
static int
s_bad_string (s_ctx_t *ctx)
{
    static const char *names [] = { "bad\xc0\xafutf8", "bad\xed\xa0\x80surrogate" };
    for (size_t i = 0; i < 2; i++) {
        s_new_ids (ctx);
        s_buf_t buf;
        s_buf_init (&buf);
        s_head (ctx, &buf, 6, ZV_MSG_VERSION);
        s_str (&buf, "b");
        msgpack_pack_map (&buf.pk, 1);
        s_str (&buf, "ref");
        s_str (&buf, names [i]);
        if (s_expect_raw (ctx, s_type (ctx, "server_show"), &buf, S_MASK (ZV_EINVAL)))
            return -1;
    }
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_head (ctx, &buf, 6, ZV_MSG_VERSION);
    s_str (&buf, "b");
    msgpack_pack_map (&buf.pk, 1);
    s_str (&buf, "ref");
    msgpack_pack_str (&buf.pk, 7);
    msgpack_pack_str_body (&buf.pk, "abc\0def", 7);
    return s_expect_raw (ctx, s_type (ctx, "server_show"), &buf, S_MASK (ZV_EINVAL));
}

static int
s_map_key_not_string (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_head (ctx, &buf, 6, ZV_MSG_VERSION);
    s_str (&buf, "b");
    msgpack_pack_map (&buf.pk, 1);
    msgpack_pack_int64 (&buf.pk, 1);
    s_str (&buf, "one");
    return s_expect_raw (ctx, s_type (ctx, "flavor_list"), &buf, S_MASK (ZV_EINVAL));
}

//  An array with more items than any may have (really sent), and headers
//  that claim 2^32 - 1 items in five bytes.
static int
s_array_too_long (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_head (ctx, &buf, 6, ZV_MSG_VERSION);
    s_str (&buf, "b");
    msgpack_pack_map (&buf.pk, 1);
    s_str (&buf, "junk");
    size_t items = 100001;
    msgpack_pack_array (&buf.pk, items);
    for (size_t i = 0; i < items; i++)
        msgpack_pack_nil (&buf.pk);
    if (s_expect_raw (ctx, s_type (ctx, "flavor_list"), &buf, S_MASK (ZV_ETOOBIG)))
        return -1;
    static const char *claims [] = { "\xdd\xff\xff\xff\xff", "\xdf\xff\xff\xff\xff" };
    for (size_t i = 0; i < 2; i++) {
        s_new_ids (ctx);
        s_buf_init (&buf);
        s_head (ctx, &buf, 6, ZV_MSG_VERSION);
        s_str (&buf, "b");
        msgpack_pack_map (&buf.pk, 1);
        s_str (&buf, "junk");
        s_raw (&buf, claims [i], 5);
        if (s_expect_raw (ctx, s_type (ctx, "flavor_list"), &buf, S_MASK (ZV_ETOOBIG) | S_MASK (ZV_EINVAL)))
            return -1;
    }
    //  A header claiming a few more items than bytes follow.
    s_new_ids (ctx);
    s_buf_init (&buf);
    s_head (ctx, &buf, 6, ZV_MSG_VERSION);
    s_str (&buf, "b");
    msgpack_pack_map (&buf.pk, 1);
    s_str (&buf, "junk");
    msgpack_pack_array (&buf.pk, 1000);
    return s_expect_raw (ctx, s_type (ctx, "flavor_list"), &buf, S_MASK (ZV_EINVAL));
}

static int
s_too_deep (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_head (ctx, &buf, 6, ZV_MSG_VERSION);
    s_str (&buf, "b");
    msgpack_pack_map (&buf.pk, 1);
    s_str (&buf, "junk");
    for (int depth = 0; depth < 1000; depth++)
        msgpack_pack_array (&buf.pk, 1);
    msgpack_pack_nil (&buf.pk);
    return s_expect_raw (ctx, s_type (ctx, "flavor_list"), &buf, S_MASK (ZV_EINVAL));
}

static int
s_out_of_range (s_ctx_t *ctx)
{
    static const struct { const char *key; int64_t value; } bad [] = {
        { "vcpus", 0 }, { "ram_mb", -1 }, { "vcpus", 4097 }, { "disk_gb", INT64_MIN },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        json_t *body = s_flavor_body ("badinput-range");
        json_object_set_new (body, bad [i].key, json_integer (bad [i].value));
        if (s_expect_body (ctx, s_type (ctx, "flavor_create"), body, S_MASK (ZV_EINVAL)))
            return s_fail (ctx, "%s = %lld", bad [i].key, (long long) bad [i].value);
    }
    //  2^64 - 1 does not fit the int64 every integer is.
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_head (ctx, &buf, 6, ZV_MSG_VERSION);
    s_str (&buf, "b");
    msgpack_pack_map (&buf.pk, 4);
    s_str (&buf, "name");    s_str (&buf, "badinput-uint64");
    s_str (&buf, "vcpus");   msgpack_pack_uint64 (&buf.pk, UINT64_MAX);
    s_str (&buf, "ram_mb");  msgpack_pack_int64 (&buf.pk, 64);
    s_str (&buf, "disk_gb"); msgpack_pack_int64 (&buf.pk, 1);
    return s_expect_raw (ctx, s_type (ctx, "flavor_create"), &buf, S_MASK (ZV_EINVAL));
}

static int
s_too_many_frames (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_envelope (ctx, &buf, json_object ());
    zmsg_t *zmsg = s_frames (s_type (ctx, "flavor_list"), buf.sbuf.data, buf.sbuf.size);
    s_buf_free (&buf);
    zmsg_addstr (zmsg, "payload");
    zmsg_addstr (zmsg, "one too many");
    zmsg_addstr (zmsg, "two too many");
    return s_expect (ctx, &zmsg, S_MASK (ZV_EINVAL));
}

static int
s_empty_frame (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    ctx->strict = false;
    zmsg_t *zmsg = zmsg_new ();
    zmsg_addmem (zmsg, "", 0);
    if (s_expect (ctx, &zmsg, S_MASK (ZV_EINVAL)))
        return s_fail (ctx, "one empty frame");
    //  A type and an empty envelope.
    zmsg = s_frames (s_type (ctx, "flavor_list"), "", 0);
    if (s_expect (ctx, &zmsg, S_MASK (ZV_EINVAL)))
        return s_fail (ctx, "empty envelope frame");
    //  A type alone.
    zmsg = zmsg_new ();
    zmsg_addstr (zmsg, s_type (ctx, "flavor_list"));
    if (s_expect (ctx, &zmsg, S_MASK (ZV_EINVAL)))
        return s_fail (ctx, "type frame alone");
    return 0;
}

//  Replies (ok and error) to requests nobody made: nothing is due back.
static int
s_reply_to_nobody (s_ctx_t *ctx)
{
    for (int error = 0; error < 2; error++) {
        s_new_ids (ctx);
        s_buf_t buf;
        s_buf_init (&buf);
        s_head (ctx, &buf, 7, ZV_MSG_VERSION);
        s_str (&buf, "re");
        s_str (&buf, "nobody-asked-1");
        if (error) {
            s_str (&buf, "e");
            s_json (&buf, json_pack ("{s:s, s:s}", "c", "conflict", "m", "to nobody"));
        }
        else {
            s_str (&buf, "b");
            s_json (&buf, json_pack ("{s:[]}", "hosts"));
        }
        zmsg_t *zmsg = s_frames (s_type (ctx, "flavor_list"), buf.sbuf.data, buf.sbuf.size);
        s_buf_free (&buf);
        if (s_expect_silence (ctx, &zmsg, ctx->id))
            return -1;
    }
    return 0;
}

static int
s_no_such_instance (s_ctx_t *ctx)
{
    char uuid [ZV_UUID_LEN + 1];
    zv_uuid_new (uuid);
    if (s_expect_body (ctx, s_type (ctx, "server_show"), json_pack ("{s:s}", "ref", uuid),
                       s_user (ctx, S_MASK (ZV_ENOTFOUND))))
        return -1;
    zv_uuid_new (uuid);
    if (s_expect_body (ctx, s_type (ctx, "server_delete"), json_pack ("{s:s}", "ref", uuid),
                       s_user (ctx, S_MASK (ZV_ENOTFOUND))))
        return -1;
    if (streq (ctx->service, "conductor")) {
        json_t *body = json_pack ("{s:s, s:[s], s:s}", "uuid", uuid, "expected_task_state",
                                  "spawning", "outcome", "done");
        if (s_expect_body (ctx, "conductor.instance_update", body, s_host (ctx, S_MASK (ZV_ENOTFOUND))))
            return -1;
    }
    return 0;
}

//  A state that forbids the action.  Deleting a deleted server; through the
//  conductor, a report on a task an ACTIVE instance is not in, an instance
//  "destroyed" that was never being deleted, a vm_state named by the host
//  (the state table decides, not the host), and an outcome that is none.
//  From a peer that is no compute, each is refused before it is judged.
static int
s_forbidden_transition (s_ctx_t *ctx)
{
    bool conductor = streq (ctx->service, "conductor");
    if (!ctx->deleted && !(conductor && ctx->server)) {
        ctx->skipped = true;
        return s_fail (ctx, "needs --deleted UUID%s", conductor ? " or --server UUID" : "");
    }
    if (ctx->deleted
    &&  s_expect_body (ctx, s_type (ctx, "server_delete"), json_pack ("{s:s}", "ref", ctx->deleted),
                       s_user (ctx, S_MASK (ZV_ENOTFOUND) | S_MASK (ZV_ECONFLICT))))
        return -1;
    if (!conductor || !ctx->server)
        return 0;
    json_t *body = json_pack ("{s:s, s:[s], s:s}", "uuid", ctx->server,
                              "expected_task_state", "spawning", "outcome", "done");
    if (s_expect_body (ctx, "conductor.instance_update", body, s_host (ctx, S_MASK (ZV_ECONFLICT))))
        return -1;
    body = json_pack ("{s:s, s:s}", "uuid", ctx->server, "host", "badinput-host");
    if (s_expect_body (ctx, "conductor.instance_destroyed", body, s_host (ctx, S_MASK (ZV_ECONFLICT))))
        return -1;
    body = json_pack ("{s:s, s:[n], s:{s:s}}", "uuid", ctx->server, "expected_task_state",
                      "changes", "vm_state", "error");
    if (s_expect_body (ctx, "conductor.instance_update", body, s_host (ctx, S_MASK (ZV_EINVAL))))
        return -1;
    body = json_pack ("{s:s, s:[n], s:s}", "uuid", ctx->server, "expected_task_state", "outcome", "bogus");
    if (s_expect_body (ctx, "conductor.instance_update", body, s_host (ctx, S_MASK (ZV_EINVAL))))
        return -1;
    body = json_pack ("{s:s, s:[n], s:i}", "uuid", ctx->server, "expected_task_state", "outcome", 3);
    return s_expect_body (ctx, "conductor.instance_update", body, S_MASK (ZV_EINVAL));
}

//  Server actions and consoles: a wrong field type, an unknown action, one
//  not implemented, a missing password, an unknown console kind, a line
//  count out of range; with --server (ACTIVE, test driver) a forbidden
//  transition and a console it cannot have; at the conductor, tokens that
//  open nothing.
static int
s_bad_action (s_ctx_t *ctx)
{
    //  User requests: not a peer's to send.  (A run that borrows a peer's
    //  identity is kept short: the real peer takes its identity back.)
    if (ctx->identity) {
        ctx->skipped = true;
        return s_fail (ctx, "user requests are sent anonymously");
    }
    const char *ref = ctx->server ? ctx->server : "badinput-no-such-server";
    const char *type = s_type (ctx, "server_action");
    if (s_expect_body (ctx, type, json_pack ("{s:s, s:i}", "ref", ref, "action", 7), S_MASK (ZV_EINVAL))
    ||  s_expect_body (ctx, type, json_pack ("{s:s, s:s}", "ref", ref, "action", "explode"), S_MASK (ZV_EINVAL))
    ||  s_expect_body (ctx, type, json_pack ("{s:s, s:s}", "ref", ref, "action", "shelve"),
                       S_MASK (ZV_EUNSUPPORTED))
    ||  s_expect_body (ctx, type, json_pack ("{s:s, s:s}", "ref", ref, "action", "changePassword"),
                       S_MASK (ZV_EINVAL))
    ||  s_expect_body (ctx, s_type (ctx, "console_url"), json_pack ("{s:s, s:s}", "ref", ref, "kind", "rdp"),
                       S_MASK (ZV_EINVAL))
    ||  s_expect_body (ctx, s_type (ctx, "console_log"), json_pack ("{s:s, s:i}", "ref", ref, "lines", 0),
                       S_MASK (ZV_EINVAL)))
        return -1;
    if (ctx->server
    &&  (s_expect_body (ctx, type, json_pack ("{s:s, s:s}", "ref", ref, "action", "unpause"),
                        s_user (ctx, S_MASK (ZV_ECONFLICT)))
    ||   s_expect_body (ctx, s_type (ctx, "console_url"), json_pack ("{s:s}", "ref", ref),
                        s_user (ctx, S_MASK (ZV_ECONFLICT)))))
        return -1;
    if (!streq (ctx->service, "conductor"))
        return 0;
    char long_token [201];
    memset (long_token, 'a', 200);
    long_token [200] = '\0';
    //  Only the console proxy may ask whether a token opens a console.
    return s_expect_body (ctx, "conductor.console_authorize", json_pack ("{s:s}", "token", "00ff"),
                          S_MASK (ZV_EFORBIDDEN))
        || s_expect_body (ctx, "conductor.console_authorize", json_pack ("{s:s}", "token", long_token),
                          S_MASK (ZV_ETOOBIG) | S_MASK (ZV_EINVAL))
        || s_expect_body (ctx, "conductor.console_authorize", json_pack ("{s:i}", "token", 5), S_MASK (ZV_EINVAL));
}

//  Frames over the decoder's limits but under the transport's.
static int
s_envelope_too_big (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_head (ctx, &buf, 6, ZV_MSG_VERSION);
    s_str (&buf, "b");
    size_t chunks = S_MAX_REQUEST / 60000 + 2;
    msgpack_pack_map (&buf.pk, chunks);
    char *filler = malloc (60000);
    memset (filler, 'f', 60000);
    for (size_t i = 0; i < chunks; i++) {
        char key [32];
        snprintf (key, sizeof key, "k%zu", i);
        s_str (&buf, key);
        msgpack_pack_str (&buf.pk, 60000);
        msgpack_pack_str_body (&buf.pk, filler, 60000);
    }
    free (filler);
    if (s_expect_raw (ctx, s_type (ctx, "flavor_list"), &buf, S_MASK (ZV_ETOOBIG)))
        return s_fail (ctx, "envelope frame over %d bytes", S_MAX_REQUEST);
    //  A payload frame one byte over its limit.
    s_new_ids (ctx);
    s_buf_init (&buf);
    s_envelope (ctx, &buf, json_object ());
    zmsg_t *zmsg = s_frames (s_type (ctx, "flavor_list"), buf.sbuf.data, buf.sbuf.size);
    s_buf_free (&buf);
    size_t size = ZV_MSG_MAX_PAYLOAD + 1;
    char *payload = calloc (1, size);
    zmsg_addmem (zmsg, payload, size);
    free (payload);
    if (s_expect (ctx, &zmsg, S_MASK (ZV_ETOOBIG)))
        return s_fail (ctx, "payload frame over %d bytes", ZV_MSG_MAX_PAYLOAD);
    return 0;
}

//  A frame over ZV_MSG_MAX_WIRE: the transport drops the connection, so no
//  reply is due.  The peer must survive and a fresh connection must work.
static int
s_over_wire_max (s_ctx_t *ctx)
{
    s_new_ids (ctx);
    size_t size = ZV_MSG_MAX_WIRE + 1024;
    char *big = calloc (1, size);
    zmsg_t *zmsg = s_frames (s_type (ctx, "flavor_list"), big, size);
    free (big);
    s_drain (ctx->sock);
    if (zmsg_send (&zmsg, ctx->sock) != 0) {
        zmsg_destroy (&zmsg);
        return s_fail (ctx, "cannot send: %s", zmq_strerror (zmq_errno ()));
    }
    zv_msg_t *answer = s_await (ctx, ctx->sock, ctx->id, S_SILENCE_MS);
    if (answer) {
        //  Allowed only as an error: a peer that read it all must refuse it.
        bool ok = zv_msg_status (answer) != ZV_OK;
        zv_msg_destroy (&answer);
        if (!ok)
            return s_fail (ctx, "a %zu-byte frame was accepted", size);
    }
    //  A new connection (anonymous, so it cannot race the old one's identity).
    zsock_t *fresh = s_connect (ctx, false);
    int rc = fresh && s_probe (ctx, fresh) == 0 ? 0
           : s_fail (ctx, "a fresh connection is not served after a %zu-byte frame", size);
    zsock_destroy (&fresh);
    //  And the cases that follow use a new socket too.
    zsock_destroy (&ctx->sock);
    ctx->sock = s_connect (ctx, true);
    if (!ctx->sock)
        return s_fail (ctx, "cannot reconnect");
    ctx->status = ZV_OK;
    snprintf (ctx->text, sizeof ctx->text, "connection dropped by the transport; a fresh one is served");
    return rc;
}

//  Types of the catalogue that this socket does not serve.
static int
s_unserved_type (s_ctx_t *ctx)
{
    bool api = streq (ctx->service, "api");
    const char *other = api ? "conductor.flavor_list" : "api.flavor_list";
    if (s_expect_body (ctx, other, json_object (), S_MASK (ZV_EINVAL)))
        return -1;
    if (s_expect_body (ctx, api ? "conductor.host_states" : "api.ping", json_object (),
                       S_MASK (ZV_EINVAL)))
        return -1;
    if (s_expect_body (ctx, "scheduler.select_destinations",
                       json_pack ("{s:{}, s:i}", "spec", "num_instances", 1), S_MASK (ZV_EINVAL)))
        return -1;
    //  A cast: the catalogue says fire and forget, but this socket still
    //  owes the sender an error for a type it does not serve.
    return s_expect_body (ctx, "compute.sync_now", json_object (), S_MASK (ZV_EINVAL));
}

//  Through the conductor only: a heartbeat that would plant junk in the
//  hypervisor record, and a sync listing junk domains.
static int
s_peer_junk (s_ctx_t *ctx)
{
    if (!streq (ctx->service, "conductor")) {
        ctx->skipped = true;
        return s_fail (ctx, "conductor only");
    }
    json_t *body = json_pack ("{s:s, s:[i,s,{},{s:i,s:[]},{s:s,s:s}]}", "host", "badinput-host",
                              "domains", 1, "two", "uuid", 5, "power_state",
                              "uuid", "not-a-uuid", "power_state", "crashed");
    //  compute_sync is a request: it gets an answer, whatever its domains.
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_envelope (ctx, &buf, body);
    zmsg_t *zmsg = s_frames ("conductor.compute_sync", buf.sbuf.data, buf.sbuf.size);
    s_buf_free (&buf);
    s_drain (ctx->sock);
    zmsg_send (&zmsg, ctx->sock);
    zv_msg_t *reply = s_await (ctx, ctx->sock, ctx->id, ctx->timeout_ms);
    if (!reply)
        return s_fail (ctx, "compute_sync with junk domains: no reply (rq=%s)", ctx->rq);
    zv_msg_destroy (&reply);
    //  An unknown field of a known kind is ignored; a known one of the
    //  wrong kind is refused.
    body = json_pack ("{s:s, s:s, s:s}", "binary", "compute", "host", "badinput-host",
                      "node", "not a map");
    return s_expect_body (ctx, "conductor.service_heartbeat", body, S_MASK (ZV_EINVAL));
}

//  Input a script could send that once broke zova: a server's metadata
//  nested 12 and 14 maps deep (it was stored, and then every listing that
//  held it failed; at 14 the creator got no answer at all), metadata that
//  is not Nova's flat map of strings, and a name with U+FFFE or U+FFFF
//  (valid UTF-8 that libvirt's XML refuses, so builds failed late).  Each
//  is refused at the door with a clear error; nothing is stored.
static int
s_unstorable (s_ctx_t *ctx)
{
    const char *type = s_type (ctx, "server_create");
    for (int depth = 12; depth <= 14; depth += 2) {
        json_t *deep = json_string ("leaf");
        for (int level = 1; level < depth; level++)
            deep = json_pack ("{s:o}", "d", deep);
        json_t *body = json_pack ("{s:s, s:s, s:s, s:{s:o}}", "name", "nested", "flavor", "tiny",
                                  "image", "cirros", "metadata", "k", deep);
        if (s_expect_body (ctx, type, body, S_MASK (ZV_EINVAL)))
            return s_fail (ctx, "metadata %d levels deep", depth);
    }
    if (s_expect_body (ctx, type, json_pack ("{s:s, s:s, s:s, s:{s:i}}", "name", "numeric", "flavor", "tiny",
                                             "image", "cirros", "metadata", "n", 1), S_MASK (ZV_EINVAL)))
        return s_fail (ctx, "metadata with a number");
    static const char *names [] = { "bad\xef\xbf\xbe", "bad\xef\xbf\xbf", "tab\tname", " lead" };
    for (size_t index = 0; index < sizeof names / sizeof names [0]; index++)
        if (s_expect_body (ctx, type, json_pack ("{s:s, s:s, s:s}", "name", names [index], "flavor", "tiny",
                                                 "image", "cirros"), S_MASK (ZV_EINVAL)))
            return s_fail (ctx, "name %zu", index);
    return 0;
}

//  A request context ("cx") is an api's to set: from any other peer of the
//  conductor it is refused, whatever the request.
static int
s_foreign_context (s_ctx_t *ctx)
{
    if (!streq (ctx->service, "conductor")) {
        ctx->skipped = true;
        return s_fail (ctx, "a conductor's rule");
    }
    s_new_ids (ctx);
    s_buf_t buf;
    s_buf_init (&buf);
    s_head (ctx, &buf, 7, ZV_MSG_VERSION);
    s_str (&buf, "cx");
    msgpack_pack_map (&buf.pk, 3);
    s_str (&buf, "p");  s_str (&buf, "admin");
    s_str (&buf, "u");  s_str (&buf, "admin");
    s_str (&buf, "r");  msgpack_pack_array (&buf.pk, 1);  s_str (&buf, "admin");
    s_str (&buf, "b");
    s_json (&buf, json_pack ("{s:s}", "name", "sneaky"));
    if (s_expect_raw (ctx, "conductor.aggregate_create", &buf, S_MASK (ZV_EFORBIDDEN)))
        return -1;
    if (!strstr (ctx->text, "accepted only from an api"))
        return s_fail (ctx, "refused, but not for the context: %s", ctx->text);
    return 0;
}

//  ---------------------------------------------------------------------
//  The table

static const struct {
    const char *name;
    s_case_fn *fn;
    const char *what;
} s_cases [] = {
    { "not_msgpack",          s_not_msgpack,          "envelope frame that is not msgpack" },
    { "truncated",            s_truncated,            "envelope cut at several lengths" },
    { "trailing_garbage",     s_trailing_garbage,     "bytes after the envelope map" },
    { "envelope_not_map",     s_envelope_not_map,     "envelope that is an array" },
    { "wire_version",         s_wire_version,         "wire version 2" },
    { "missing_id",           s_missing_id,           "envelope without an id" },
    { "bad_envelope_keys",    s_bad_envelope_keys,    "ts, src, rq, id, dl, e of the wrong type or size" },
    { "body_not_map",         s_body_not_map,         "body that is an array" },
    { "unknown_type",         s_unknown_type,         "<service>.nope" },
    { "binary_type",          s_binary_type,          "type frame of binary junk, and of 4 KiB" },
    { "wrong_type_field",     s_wrong_type_field,     "vcpus \"two\", vcpus 2.0, name 7, is_public \"yes\", ref [..]" },
    { "missing_field",        s_missing_field,        "required field absent, empty or nil" },
    { "oversized_string",     s_oversized_string,     "name of 100 KiB, and of 300 bytes" },
    { "bad_string",           s_bad_string,           "invalid UTF-8, surrogate, embedded NUL" },
    { "map_key_not_string",   s_map_key_not_string,   "integer map key" },
    { "array_too_long",       s_array_too_long,       "100001 items, 2^32-1 claimed, more claimed than sent" },
    { "too_deep",             s_too_deep,             "1000 nested arrays" },
    { "out_of_range",         s_out_of_range,         "vcpus 0, ram_mb -1, vcpus 4097, INT64_MIN, 2^64-1" },
    { "too_many_frames",      s_too_many_frames,      "two frames after the payload" },
    { "empty_frame",          s_empty_frame,          "one empty frame, empty envelope, type alone" },
    { "reply_to_nobody",      s_reply_to_nobody,      "ok and error replies nobody asked for" },
    { "no_such_instance",     s_no_such_instance,     "show / delete / update of a random uuid" },
    { "forbidden_transition", s_forbidden_transition, "delete of a deleted server; CAS on the wrong task_state" },
    { "envelope_too_big",     s_envelope_too_big,     "envelope over 1 MiB, payload over 4 MiB" },
    { "over_wire_max",        s_over_wire_max,        "frame over the transport's maximum" },
    { "unserved_type",        s_unserved_type,        "catalogue types this socket does not serve" },
    { "peer_junk",            s_peer_junk,            "conductor: junk sync domains, heartbeat node not a map" },
    { "bad_action",           s_bad_action,           "server actions and consoles: bad names, types, states, tokens" },
    { "unstorable",           s_unstorable,           "metadata nested 12 and 14 deep, not flat; names with U+FFFE/U+FFFF" },
    { "foreign_context",      s_foreign_context,      "conductor: a request context from a peer that is no api" },
};
#define S_CASE_COUNT (sizeof (s_cases) / sizeof (s_cases [0]))

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: zv_badinput ENDPOINT [--identity ID] [--service api|conductor]\n"
                  "                   [--server UUID] [--deleted UUID] [--timeout SECONDS] CASE...|all\n"
                  "       zv_badinput --list\n");
}

static int
s_find_case (const char *name)
{
    for (size_t i = 0; i < S_CASE_COUNT; i++)
        if (streq (s_cases [i].name, name))
            return (int) i;
    return -1;
}

//  api or conductor: what answers api.ping with success is an api.
static int
s_detect_service (s_ctx_t *ctx)
{
    snprintf (ctx->service, sizeof ctx->service, "api");
    if (s_probe (ctx, ctx->sock) == 0)
        return 0;
    snprintf (ctx->service, sizeof ctx->service, "conductor");
    return s_probe (ctx, ctx->sock);
}

int
main (int argc, char *argv [])
{
    s_ctx_t ctx = { .timeout_ms = S_DEFAULT_TIMEOUT_MS };
    const char *service = NULL;
    static const struct option options [] = {
        { "identity", required_argument, NULL, 'i' },
        { "service", required_argument, NULL, 's' },
        { "server", required_argument, NULL, 'S' },
        { "deleted", required_argument, NULL, 'D' },
        { "timeout", required_argument, NULL, 't' },
        { "list", no_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    while ((option = getopt_long (argc, argv, "i:s:S:D:t:lh", options, NULL)) != -1) {
        switch (option) {
            case 'i': ctx.identity = optarg; break;
            case 's': service = optarg; break;
            case 'S': ctx.server = optarg; break;
            case 'D': ctx.deleted = optarg; break;
            case 't': ctx.timeout_ms = (int) (atof (optarg) * 1000); break;
            case 'l':
                for (size_t i = 0; i < S_CASE_COUNT; i++)
                    printf ("%-22s %s\n", s_cases [i].name, s_cases [i].what);
                return 0;
            case 'h': s_usage (stdout); return 0;
            default:  s_usage (stderr); return 2;
        }
    }
    if (argc - optind < 2 || ctx.timeout_ms <= 0
    ||  (service && !streq (service, "api") && !streq (service, "conductor"))) {
        s_usage (stderr);
        return 2;
    }
    ctx.endpoint = argv [optind++];
    bool chosen [S_CASE_COUNT] = { false };
    for (int i = optind; i < argc; i++) {
        if (streq (argv [i], "all")) {
            for (size_t k = 0; k < S_CASE_COUNT; k++)
                chosen [k] = true;
            continue;
        }
        int index = s_find_case (argv [i]);
        if (index < 0) {
            fprintf (stderr, "zv_badinput: unknown case '%s' (see --list)\n", argv [i]);
            return 2;
        }
        chosen [index] = true;
    }

    zsys_init ();
    zsys_set_logstream (stderr);
    zv_log_set_level_name ("error");
    ctx.sock = s_connect (&ctx, true);
    if (!ctx.sock)
        return 1;
    if (service)
        snprintf (ctx.service, sizeof ctx.service, "%s", service);
    if (service ? s_probe (&ctx, ctx.sock) != 0 : s_detect_service (&ctx) != 0) {
        printf ("FAIL setup: %s does not answer a valid request\n", ctx.endpoint);
        zsock_destroy (&ctx.sock);
        return 1;
    }
    int failed = 0;
    bool alive = true;
    for (size_t i = 0; i < S_CASE_COUNT; i++) {
        if (!chosen [i])
            continue;
        const char *name = s_cases [i].name;
        if (!alive) {
            printf ("FAIL %s: not attempted, the peer stopped answering\n", name);
            failed++;
            continue;
        }
        ctx.why [0] = '\0';
        ctx.text [0] = '\0';
        ctx.rq [0] = '\0';
        ctx.status = ZV_OK;
        ctx.skipped = false;
        int rc = s_cases [i].fn (&ctx);
        if (ctx.sock && s_probe (&ctx, ctx.sock) != 0) {
            alive = false;
            rc = s_fail (&ctx, "the peer no longer answers a valid request (last rq=%s)", ctx.rq);
        }
        if (ctx.skipped)
            printf ("skip %s: %s\n", name, ctx.why);
        else
        if (rc != 0) {
            printf ("FAIL %s: %s\n", name, ctx.why);
            failed++;
        }
        else
            printf ("ok %s: %s %s [rq=%s]\n", name,
                    ctx.status == ZV_OK ? "-" : zv_status_name (ctx.status), ctx.text, ctx.rq);
        fflush (stdout);
    }
    zsock_destroy (&ctx.sock);
    return failed ? 1 : 0;
}
