/*  zv_msg.c: one zova message and its wire codec (frames in zv_msg.h).

    A message owns its strings in fixed buffers sized to the wire limits, its
    body (a json object), and the routing id and payload frames.  Encoding
    packs the envelope's fixed keys straight into one msgpack_sbuffer, in a
    fixed order (v id re rq ts src dl cx b|e) so the bytes are reproducible, and
    the body through zv_pack_append into the same buffer.

    Decoding never gives up early: it walks every frame, records the first
    problem as the message's status and reason, and keeps whatever it could
    recover (type, id, rq, routing id) so the receiver can still answer the
    sender with zv_msg_error.  That holds even when the envelope frame fails
    to decode because of something inside the body: a second, read-only walk
    (zv_pack_peek_map, run only on that failure path) then picks the
    envelope's scalar keys out of the bytes.  Strings recovered from a bad message are made
    safe to send back (printable type, valid UTF-8 error text).

    A body is checked in full when it arrives but built into a json tree
    only when someone reads it (zv_msg_body and the getters): until then it
    stays the bytes of the envelope frame, which the message keeps.  A
    request's body is read at once (the catalogue validates the tree); a
    reply's often never is: the api relays a listing of thousands of
    servers by moving those bytes into its own reply (zv_msg_move_body),
    and the encoder writes them as they came, without a tree either way.

    Message ids are "<8 hex, random per process>-<counter in hex>": unique per
    process without a syscall per message.  The prefix is chosen once, and
    chosen again in a forked child so parent and child never share ids.      */

#include "proto/zv_msg.h"
#include "proto/zv_pack.h"

#include <msgpack.h>
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define S_MAX_TYPE   128
#define S_MAX_ID     64        //  id, re, rq
#define S_MAX_SRC    128
#define S_MAX_ERROR  4096

struct _zv_msg_t {
    char type [S_MAX_TYPE + 1];
    char id [S_MAX_ID + 1];
    char re [S_MAX_ID + 1];
    bool is_reply;
    char rq [S_MAX_ID + 1];
    char src [S_MAX_SRC + 1];
    int64_t ts;
    int64_t deadline;               //  0: none
    zv_context_t context;
    bool has_context;
    const zv_msgdef_t *def;         //  requests and casts of a known type
    json_t *body;                   //  an object, or NULL while the body is bytes
    zframe_t *body_frame;           //  holds the bytes of a body not yet built
    const uint8_t *body_bytes;      //  a msgpack map, checked (zv_pack_check)
    size_t body_size;
    zv_status_t status;
    char *error_text;               //  NULL reads as ""
    zframe_t *payload;
    zframe_t *routing_id;
};

//  Message ids

static char s_id_prefix [9];
static atomic_uint_fast64_t s_id_counter;
static pthread_once_t s_id_once = PTHREAD_ONCE_INIT;

//  Async-signal-safe, as it also runs in a forked child.
static void
s_id_reroll (void)
{
    static const char hex [] = "0123456789abcdef";
    uint32_t seed;
    if (getrandom (&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t) sizeof seed)
        seed = (uint32_t) getpid () * 2654435761u ^ (uint32_t) zv_mono_ms ();
    for (int i = 0; i < 8; i++)
        s_id_prefix [i] = hex [(seed >> (28 - 4 * i)) & 0xf];
    s_id_prefix [8] = '\0';
}

static void
s_id_init (void)
{
    s_id_reroll ();
    pthread_atfork (NULL, NULL, s_id_reroll);
}

static void
s_id_new (char out [S_MAX_ID + 1])
{
    pthread_once (&s_id_once, s_id_init);
    uint64_t counter = atomic_fetch_add (&s_id_counter, 1) + 1;
    char digits [17];
    int n = 0;
    do {
        digits [n++] = "0123456789abcdef" [counter & 0xf];
        counter >>= 4;
    } while (counter);
    memcpy (out, s_id_prefix, 8);
    out [8] = '-';
    for (int i = 0; i < n; i++)
        out [9 + i] = digits [n - 1 - i];
    out [9 + n] = '\0';
}

//  Strings

//  Copy at most max bytes of src (len bytes), cutting at a UTF-8 boundary.
static void
s_copy (char *dst, size_t max, const char *src, size_t len)
{
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char) src [len] & 0xc0) == 0x80)
            len--;
    }
    memcpy (dst, src, len);
    dst [len] = '\0';
}

static void
s_copy_str (char *dst, size_t max, const char *src)
{
    s_copy (dst, max, src ? src : "", src ? strlen (src) : 0);
}

//  Types are printable ASCII without spaces, so logs and frames stay sane.
static bool
s_type_valid (const char *type, size_t len)
{
    if (len == 0 || len > S_MAX_TYPE)
        return false;
    for (size_t i = 0; i < len; i++)
        if (type [i] < 0x21 || type [i] > 0x7e)
            return false;
    return true;
}

//  Error text is sent back to peers: cap it and keep it valid UTF-8.
static void
s_set_error_text (zv_msg_t *self, const char *text, size_t len)
{
    free (self->error_text);
    self->error_text = malloc (S_MAX_ERROR + 1);
    if (!self->error_text)
        return;
    s_copy (self->error_text, S_MAX_ERROR, text, len);
    len = strlen (self->error_text);
    json_t *check = json_stringn (self->error_text, len);
    if (!check)
        for (size_t i = 0; i < len; i++)
            if ((unsigned char) self->error_text [i] >= 0x80)
                self->error_text [i] = '?';
    json_decref (check);
}

//  Lifetime

static zv_msg_t *
s_blank (void)
{
    zv_msg_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->body = json_object ();
    if (!self->body) {
        free (self);
        return NULL;
    }
    s_id_new (self->id);
    self->ts = zv_now_ms ();
    return self;
}

zv_msg_t *
zv_msg_new (const char *type)
{
    if (!type || !s_type_valid (type, strlen (type)))
        return NULL;
    zv_msg_t *self = s_blank ();
    if (!self)
        return NULL;
    s_copy_str (self->type, S_MAX_TYPE, type);
    self->def = zv_catalogue_find (type);
    char uuid [ZV_UUID_LEN + 1];
    zv_uuid_new (uuid);
    snprintf (self->rq, sizeof self->rq, "req-%s", uuid);
    return self;
}

zv_msg_t *
zv_msg_request_stub (const zv_msg_t *request)
{
    assert (request);
    zv_msg_t *self = s_blank ();
    if (!self)
        return NULL;
    memcpy (self->type, request->type, sizeof self->type);
    memcpy (self->id, request->id, sizeof self->id);
    memcpy (self->rq, request->rq, sizeof self->rq);
    self->def = request->def;
    if (request->routing_id) {
        self->routing_id = zframe_dup (request->routing_id);
        if (!self->routing_id)
            zv_msg_destroy (&self);
    }
    return self;
}

zv_msg_t *
zv_msg_reply (const zv_msg_t *request)
{
    assert (request);
    zv_msg_t *self = s_blank ();
    if (!self)
        return NULL;
    memcpy (self->type, request->type, sizeof self->type);
    memcpy (self->re, request->id, sizeof self->re);
    memcpy (self->rq, request->rq, sizeof self->rq);
    self->is_reply = true;
    if (request->routing_id) {
        self->routing_id = zframe_dup (request->routing_id);
        if (!self->routing_id)
            zv_msg_destroy (&self);
    }
    return self;
}

zv_msg_t *
zv_msg_error (const zv_msg_t *request, zv_status_t status, const char *format, ...)
{
    assert (status != ZV_OK && status < ZV_STATUS_COUNT);
    zv_msg_t *self = zv_msg_reply (request);
    if (!self)
        return NULL;
    char text [S_MAX_ERROR + 1];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    self->status = status;
    s_set_error_text (self, text, strlen (text));
    return self;
}

void
zv_msg_destroy (zv_msg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_msg_t *self = *self_p;
    json_decref (self->body);
    zframe_destroy (&self->body_frame);
    free (self->error_text);
    zframe_destroy (&self->payload);
    zframe_destroy (&self->routing_id);
    free (self);
    *self_p = NULL;
}

//  Accessors

const char *zv_msg_type (const zv_msg_t *self) { assert (self); return self->type; }
const char *zv_msg_id (const zv_msg_t *self)   { assert (self); return self->id; }
const char *zv_msg_re (const zv_msg_t *self)   { assert (self); return self->is_reply ? self->re : NULL; }
bool zv_msg_is_reply (const zv_msg_t *self)    { assert (self); return self->is_reply; }
const char *zv_msg_rq (const zv_msg_t *self)   { assert (self); return self->rq; }
const char *zv_msg_src (const zv_msg_t *self)  { assert (self); return self->src; }
int64_t zv_msg_ts (const zv_msg_t *self)       { assert (self); return self->ts; }
int64_t zv_msg_deadline (const zv_msg_t *self) { assert (self); return self->deadline; }
const zv_msgdef_t *zv_msg_def (const zv_msg_t *self) { assert (self); return self->is_reply ? NULL : self->def; }
zv_status_t zv_msg_status (const zv_msg_t *self) { assert (self); return self->status; }
zframe_t *zv_msg_routing_id (const zv_msg_t *self) { assert (self); return self->routing_id; }

//  Forget a body's bytes (they are built, moved or replaced).
static void
s_body_drop_bytes (zv_msg_t *self)
{
    zframe_destroy (&self->body_frame);
    self->body_bytes = NULL;
    self->body_size = 0;
}

//  Build the tree of a body that is still bytes.  They were checked when
//  the message was decoded, so only memory can fail: the body then reads
//  as empty, which every reader already handles.
static json_t *
s_body (zv_msg_t *self)
{
    if (!self->body) {
        json_t *body = NULL;
        char reason [256];
        if (zv_pack_decode (self->body_bytes, self->body_size, &body, reason, sizeof reason) != ZV_OK
        ||  !json_is_object (body)) {
            zv_error ("proto", self->rq, "cannot build the body of %s: %s", self->type,
                      body ? "not a map" : reason);
            json_decref (body);
            body = json_object ();
        }
        self->body = body;
        s_body_drop_bytes (self);
    }
    return self->body;
}

json_t *
zv_msg_body (const zv_msg_t *self)
{
    assert (self);
    //  Building on first read changes only the body's form, not its value.
    return s_body ((zv_msg_t *) self);
}

const void *
zv_msg_body_bytes (const zv_msg_t *self, size_t *size_p)
{
    assert (self && size_p);
    *size_p = self->body ? 0 : self->body_size;
    return self->body ? NULL : self->body_bytes;
}

void
zv_msg_move_body (zv_msg_t *self, zv_msg_t *source)
{
    assert (self && source && self != source);
    json_decref (self->body);
    s_body_drop_bytes (self);
    self->body = source->body;
    self->body_frame = source->body_frame;
    self->body_bytes = source->body_bytes;
    self->body_size = source->body_size;
    source->body = json_object ();
    source->body_frame = NULL;
    source->body_bytes = NULL;
    source->body_size = 0;
}

const char *
zv_msg_error_text (const zv_msg_t *self)
{
    assert (self);
    return self->error_text ? self->error_text : "";
}

//  Ids, request ids and sources longer than the wire allows are cut, so that
//  what we send is always what a peer accepts.
void
zv_msg_set_rq (zv_msg_t *self, const char *request_id)
{
    assert (self);
    s_copy_str (self->rq, S_MAX_ID, request_id);
}

void
zv_msg_set_src (zv_msg_t *self, const char *source)
{
    assert (self);
    s_copy_str (self->src, S_MAX_SRC, source);
}

void
zv_msg_set_id (zv_msg_t *self, const char *id)
{
    assert (self && id && *id);
    s_copy_str (self->id, S_MAX_ID, id);
}

void
zv_msg_set_ts (zv_msg_t *self, int64_t ts_ms)
{
    assert (self);
    self->ts = ts_ms;
}

void
zv_msg_set_deadline (zv_msg_t *self, int64_t deadline_ms)
{
    assert (self);
    self->deadline = deadline_ms > 0 ? deadline_ms : 0;
}

void
zv_msg_set_body (zv_msg_t *self, json_t **body_p)
{
    assert (self && body_p && json_is_object (*body_p));
    json_decref (self->body);
    s_body_drop_bytes (self);
    self->body = *body_p;
    *body_p = NULL;
}

const char *
zv_msg_get_str (const zv_msg_t *self, const char *key)
{
    assert (self);
    return json_string_value (json_object_get (zv_msg_body (self), key));
}

int64_t
zv_msg_get_int (const zv_msg_t *self, const char *key, int64_t dflt)
{
    assert (self);
    json_t *value = json_object_get (zv_msg_body (self), key);
    return json_is_integer (value) ? (int64_t) json_integer_value (value) : dflt;
}

bool
zv_msg_get_bool (const zv_msg_t *self, const char *key, bool dflt)
{
    assert (self);
    json_t *value = json_object_get (zv_msg_body (self), key);
    return json_is_boolean (value) ? json_is_true (value) : dflt;
}

const void *
zv_msg_payload (const zv_msg_t *self, size_t *size_p)
{
    assert (self);
    if (size_p)
        *size_p = self->payload ? zframe_size (self->payload) : 0;
    return self->payload ? zframe_data (self->payload) : NULL;
}

void
zv_msg_set_payload (zv_msg_t *self, const void *data, size_t size)
{
    assert (self);
    zframe_destroy (&self->payload);
    if (data)
        self->payload = zframe_new (data, size);
}

void
zv_msg_move_payload (zv_msg_t *self, zv_msg_t *source)
{
    assert (self && source);
    zframe_destroy (&self->payload);
    self->payload = source->payload;
    source->payload = NULL;
}

void
zv_msg_set_routing_id (zv_msg_t *self, zframe_t **frame_p)
{
    assert (self && frame_p);
    zframe_destroy (&self->routing_id);
    self->routing_id = *frame_p;
    *frame_p = NULL;
}

void
zv_msg_set_routing_str (zv_msg_t *self, const char *identity)
{
    assert (self && identity);
    zframe_destroy (&self->routing_id);
    self->routing_id = zframe_new (identity, strlen (identity));
}

//  Encoding

static int
s_pack_str (msgpack_packer *pk, const char *text)
{
    size_t len = strlen (text);
    return msgpack_pack_str (pk, len) || msgpack_pack_str_body (pk, text, len);
}

//  steal: move the routing id and payload frames out of self (zv_msg_send,
//  which destroys self next) instead of copying them.
//  The request context

static const struct {
    const char *name;
    zv_role_t role;
} s_roles [] = {
    { "reader", ZV_ROLE_READER }, { "member", ZV_ROLE_MEMBER }, { "admin", ZV_ROLE_ADMIN },
};
#define S_ROLES (sizeof (s_roles) / sizeof (s_roles [0]))
#define S_MAX_ROLES 16

static unsigned
s_role_bit (const char *name, size_t len)
{
    for (size_t index = 0; index < S_ROLES; index++)
        if (strlen (s_roles [index].name) == len && !memcmp (s_roles [index].name, name, len))
            return s_roles [index].role;
    return 0;
}

unsigned
zv_context_roles_parse (const char *names)
{
    unsigned roles = 0;
    for (const char *at = names; at && *at; ) {
        at += strspn (at, " ,\t");
        size_t len = strcspn (at, " ,\t");
        roles |= s_role_bit (at, len);
        at += len;
    }
    return roles;
}

bool
zv_context_is_admin (const zv_context_t *context)
{
    return context && (context->roles & ZV_ROLE_ADMIN);
}

const zv_context_t *
zv_msg_context (const zv_msg_t *self)
{
    assert (self);
    return self->has_context ? &self->context : NULL;
}

void
zv_msg_set_context (zv_msg_t *self, const zv_context_t *context)
{
    assert (self);
    self->has_context = context != NULL;
    if (context) {
        memset (&self->context, 0, sizeof self->context);
        s_copy_str (self->context.project_id, ZV_CONTEXT_MAX_ID, context->project_id);
        s_copy_str (self->context.user_id, ZV_CONTEXT_MAX_ID, context->user_id);
        self->context.roles = context->roles;
    }
}

static int
s_pack_context (msgpack_packer *pk, const zv_context_t *context)
{
    size_t roles = 0;
    for (size_t index = 0; index < S_ROLES; index++)
        roles += (context->roles & s_roles [index].role) != 0;
    int rc = s_pack_str (pk, "cx") || msgpack_pack_map (pk, 3)
          || s_pack_str (pk, "p") || s_pack_str (pk, context->project_id)
          || s_pack_str (pk, "u") || s_pack_str (pk, context->user_id)
          || s_pack_str (pk, "r") || msgpack_pack_array (pk, roles);
    for (size_t index = 0; !rc && index < S_ROLES; index++)
        if (context->roles & s_roles [index].role)
            rc = s_pack_str (pk, s_roles [index].name);
    return rc;
}

//  The envelope's context: 0 read, -1 malformed.
static int
s_read_context (zv_msg_t *self, const json_t *cx)
{
    const json_t *project = json_object_get (cx, "p"), *user = json_object_get (cx, "u");
    const json_t *roles = json_object_get (cx, "r");
    if (!json_is_object (cx) || !json_is_string (project) || !json_is_string (user)
    ||  !json_is_array (roles) || json_array_size (roles) > S_MAX_ROLES
    ||  json_string_length (project) > ZV_CONTEXT_MAX_ID || json_string_length (user) > ZV_CONTEXT_MAX_ID
    ||  memchr (json_string_value (project), '\0', json_string_length (project))
    ||  memchr (json_string_value (user), '\0', json_string_length (user)))
        return -1;
    zv_context_t context = { .roles = 0 };
    s_copy_str (context.project_id, ZV_CONTEXT_MAX_ID, json_string_value (project));
    s_copy_str (context.user_id, ZV_CONTEXT_MAX_ID, json_string_value (user));
    size_t index;
    const json_t *role;
    json_array_foreach (roles, index, role) {
        if (!json_is_string (role) || json_string_length (role) > ZV_CONTEXT_MAX_ID)
            return -1;
        context.roles |= s_role_bit (json_string_value (role), json_string_length (role));
    }
    zv_msg_set_context (self, &context);
    return 0;
}

static zmsg_t *
s_encode (zv_msg_t *self, bool steal)
{
    bool error = self->is_reply && self->status != ZV_OK;
    const char *problem = NULL;
    zmsg_t *zmsg = NULL;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    //  A body that is still bytes has a known size: one allocation holds
    //  the whole frame instead of a doubling series of them (freeing those
    //  large blocks is what made malloc consolidate its free lists).
    if (!error && !self->body) {
        size_t guess = 1024 + self->body_size;
        sbuf.data = malloc (guess);
        sbuf.alloc = sbuf.data ? guess : 0;
    }
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);

    size_t keys = 6 + (self->is_reply ? 1 : 0) + (self->deadline ? 1 : 0) + (self->has_context ? 1 : 0);
    int rc = msgpack_pack_map (&pk, keys)
          || s_pack_str (&pk, "v")   || msgpack_pack_int64 (&pk, ZV_MSG_VERSION)
          || s_pack_str (&pk, "id")  || s_pack_str (&pk, self->id);
    if (!rc && self->is_reply)
        rc = s_pack_str (&pk, "re") || s_pack_str (&pk, self->re);
    rc = rc
          || s_pack_str (&pk, "rq")  || s_pack_str (&pk, self->rq)
          || s_pack_str (&pk, "ts")  || msgpack_pack_int64 (&pk, self->ts)
          || s_pack_str (&pk, "src") || s_pack_str (&pk, self->src);
    if (!rc && self->deadline)
        rc = s_pack_str (&pk, "dl") || msgpack_pack_int64 (&pk, self->deadline);
    if (!rc && self->has_context)
        rc = s_pack_context (&pk, &self->context);
    if (!rc && error)
        rc = s_pack_str (&pk, "e")   || msgpack_pack_map (&pk, 2)
          || s_pack_str (&pk, "c")   || s_pack_str (&pk, zv_status_name (self->status))
          || s_pack_str (&pk, "m")   || s_pack_str (&pk, zv_msg_error_text (self));
    if (rc) {
        problem = "out of memory";
        goto cleanup;
    }
    if (!error) {
        zv_status_t status = s_pack_str (&pk, "b") ? ZV_ENOMEM
                           : self->body ? zv_pack_append (self->body, &sbuf, 1)
                           : msgpack_sbuffer_write (&sbuf, (const char *) self->body_bytes,
                                                    self->body_size) ? ZV_ENOMEM : ZV_OK;
        if (status != ZV_OK) {
            problem = status == ZV_ENOMEM ? "out of memory" : "body cannot be encoded";
            goto cleanup;
        }
    }
    if (sbuf.size > (self->is_reply ? ZV_MSG_MAX_BYTES : ZV_MSG_MAX_REQUEST)) {
        problem = "envelope over the size limit";
        goto cleanup;
    }
    if (self->payload && zframe_size (self->payload) > ZV_MSG_MAX_PAYLOAD) {
        problem = "payload over the size limit";
        goto cleanup;
    }
    zmsg = zmsg_new ();
    if (!zmsg) {
        problem = "out of memory";
        goto cleanup;
    }
    if (self->routing_id) {
        zframe_t *routing = steal ? self->routing_id : zframe_dup (self->routing_id);
        if (steal)
            self->routing_id = NULL;
        rc = zmsg_append (zmsg, &routing);
    }
    rc = rc
      || zmsg_addmem (zmsg, self->type, strlen (self->type))
      || zmsg_addmem (zmsg, sbuf.data, sbuf.size);
    if (!rc && self->payload) {
        zframe_t *payload = steal ? self->payload : zframe_dup (self->payload);
        if (steal)
            self->payload = NULL;
        rc = zmsg_append (zmsg, &payload);
    }
    if (rc) {
        zmsg_destroy (&zmsg);
        problem = "out of memory";
    }
cleanup:
    if (problem)
        zv_error ("proto", self->rq, "cannot encode %s id=%s: %s", self->type, self->id, problem);
    msgpack_sbuffer_destroy (&sbuf);
    return zmsg;
}

zmsg_t *
zv_msg_encode (const zv_msg_t *self)
{
    assert (self);
    return s_encode ((zv_msg_t *) self, false);     //  no steal: self unchanged
}

//  Decoding

//  Record the first problem only: later ones are usually its consequences.
static void
s_bad (zv_msg_t *self, zv_status_t status, const char *format, ...)
{
    if (self->status != ZV_OK)
        return;
    char text [512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    self->status = status;
    s_set_error_text (self, text, strlen (text));
}

//  An envelope string: 1 when present and valid (copied into dst when dst),
//  0 when absent, -1 when of the wrong type, too long or holding a NUL.
static int
s_envelope_str (json_t *envelope, const char *key, char *dst, size_t max)
{
    json_t *value = json_object_get (envelope, key);
    if (!value)
        return 0;
    if (!json_is_string (value))
        return -1;
    const char *text = json_string_value (value);
    size_t len = json_string_length (value);
    if (len > max || memchr (text, '\0', len))
        return -1;
    if (dst)
        s_copy (dst, max, text, len);
    return 1;
}

//  Reads the envelope's keys into self.  On success of everything else, the
//  caller applies the peer's error (e) as the message status.
static void
s_read_envelope (zv_msg_t *self, json_t *envelope, zframe_t **frame_p,
                 size_t body_at, size_t body_size, json_t **error_p)
{
    //  Recover the ids first, whatever else is wrong, to be able to answer.
    int has_id = s_envelope_str (envelope, "id", self->id, S_MAX_ID);
    if (has_id != 1)
        self->id [0] = '\0';
    int has_re = s_envelope_str (envelope, "re", self->re, S_MAX_ID);
    self->is_reply = has_re == 1;
    int has_rq = s_envelope_str (envelope, "rq", self->rq, S_MAX_ID);

    json_t *version = json_object_get (envelope, "v");
    if (!json_is_integer (version) || json_integer_value (version) != ZV_MSG_VERSION)
        s_bad (self, ZV_EINVAL, "unsupported wire version");
    if (has_id != 1 || self->id [0] == '\0')
        s_bad (self, ZV_EINVAL, "envelope: 'id' must be a string of 1 to %d bytes", S_MAX_ID);
    if (has_re < 0)
        s_bad (self, ZV_EINVAL, "envelope: 're' must be a string of at most %d bytes", S_MAX_ID);
    if (has_rq < 0)
        s_bad (self, ZV_EINVAL, "envelope: 'rq' must be a string of at most %d bytes", S_MAX_ID);

    json_t *ts = json_object_get (envelope, "ts");
    if (json_is_integer (ts))
        self->ts = (int64_t) json_integer_value (ts);
    else
        s_bad (self, ZV_EINVAL, "envelope: 'ts' must be an integer");
    if (s_envelope_str (envelope, "src", self->src, S_MAX_SRC) != 1)
        s_bad (self, ZV_EINVAL, "envelope: 'src' must be a string of at most %d bytes", S_MAX_SRC);

    json_t *deadline = json_object_get (envelope, "dl");
    if (deadline) {
        if (json_is_integer (deadline) && json_integer_value (deadline) >= 0)
            self->deadline = (int64_t) json_integer_value (deadline);
        else
            s_bad (self, ZV_EINVAL, "envelope: 'dl' must be a non-negative integer");
    }

    json_t *context = json_object_get (envelope, "cx");
    if (context && s_read_context (self, context) != 0)
        s_bad (self, ZV_EINVAL, "envelope: 'cx' must be a map {p: string, u: string, r: [strings]} "
               "of at most %d bytes each", ZV_CONTEXT_MAX_ID);

    //  The body was checked by zv_pack_decode_defer: keep its bytes.
    const uint8_t *body = body_size ? (const uint8_t *) zframe_data (*frame_p) + body_at : NULL;
    json_t *error = json_object_get (envelope, "e");
    if (body && error)
        s_bad (self, ZV_EINVAL, "envelope: both 'b' and 'e'");
    if (body) {
        if ((body [0] >= 0x80 && body [0] <= 0x8f) || body [0] == 0xde || body [0] == 0xdf) {
            json_decref (self->body);
            self->body = NULL;
            self->body_frame = *frame_p;
            *frame_p = NULL;
            self->body_bytes = body;
            self->body_size = body_size;
        }
        else
            s_bad (self, ZV_EINVAL, "body is not a map");
    }
    if (error) {
        json_t *code = json_object_get (error, "c");
        json_t *text = json_object_get (error, "m");
        if (!self->is_reply)
            s_bad (self, ZV_EINVAL, "envelope: 'e' on a message that is not a reply");
        else
        if (!json_is_object (error) || !json_is_string (code) || !json_is_string (text))
            s_bad (self, ZV_EINVAL, "envelope: 'e' must be a map {c: string, m: string}");
        else
        if (json_string_length (text) > S_MAX_ERROR)
            s_bad (self, ZV_ETOOBIG, "envelope: error message longer than %d bytes", S_MAX_ERROR);
        else
        if (zv_status_from_name (json_string_value (code)) == ZV_OK)
            s_bad (self, ZV_EINVAL, "envelope: error reply with status 'ok'");
        else
            *error_p = json_incref (error);
    }
}

//  After zv_pack_decode refused the envelope: when the refusal came from
//  inside a value (typically the body: an oversized string, bad UTF-8, too
//  deep, a header claiming more than follows...) read the envelope's own
//  keys without decoding the rest, so the error reply carries re and rq and
//  a pipelining sender can match it.  Whether the walk reached the end does
//  not matter (a body cut short, or bytes after the map, leave the keys read
//  before them whole); what it found does.  All or nothing: these keys must
//  be exactly what a valid message would carry, or nothing is taken (the
//  bytes are then not trusted to be a zova envelope at all).  The body stays
//  empty either way.
static void
s_recover_envelope (zv_msg_t *self, const void *data, size_t size)
{
    enum { V, ID, RE, RQ, TS, SRC, DL, KEYS };
    zv_pack_peek_t keys [KEYS] = {
        [V]   = { .key = "v",   .kind = ZV_PACK_PEEK_INT },
        [ID]  = { .key = "id",  .kind = ZV_PACK_PEEK_STR, .max_len = S_MAX_ID },
        [RE]  = { .key = "re",  .kind = ZV_PACK_PEEK_STR, .max_len = S_MAX_ID },
        [RQ]  = { .key = "rq",  .kind = ZV_PACK_PEEK_STR, .max_len = S_MAX_ID },
        [TS]  = { .key = "ts",  .kind = ZV_PACK_PEEK_INT },
        [SRC] = { .key = "src", .kind = ZV_PACK_PEEK_STR, .max_len = S_MAX_SRC },
        [DL]  = { .key = "dl",  .kind = ZV_PACK_PEEK_INT },
    };
    (void) zv_pack_peek_map (data, size, keys, KEYS);
    if (keys [V].found != 1 || keys [V].integer != ZV_MSG_VERSION
    ||  keys [ID].found != 1 || keys [ID].len == 0
    ||  keys [RE].found < 0 || keys [RQ].found < 0
    ||  keys [TS].found != 1 || keys [SRC].found != 1
    ||  keys [DL].found < 0 || keys [DL].integer < 0)
        return;
    s_copy (self->id, S_MAX_ID, keys [ID].str, keys [ID].len);
    self->is_reply = keys [RE].found == 1;
    if (self->is_reply)
        s_copy (self->re, S_MAX_ID, keys [RE].str, keys [RE].len);
    if (keys [RQ].found == 1)
        s_copy (self->rq, S_MAX_ID, keys [RQ].str, keys [RQ].len);
    s_copy (self->src, S_MAX_SRC, keys [SRC].str, keys [SRC].len);
    self->ts = keys [TS].integer;
    self->deadline = keys [DL].integer;
}

static void
s_decode_frames (zv_msg_t *self, zmsg_t *zmsg)
{
    json_t *error = NULL;
    zframe_t *type = zmsg_pop (zmsg);
    if (!type) {
        s_bad (self, ZV_EINVAL, "missing type frame");
        return;
    }
    //  Keep a printable copy of even a bad type, for logs and the reply.
    const char *type_data = (const char *) zframe_data (type);
    size_t type_size = zframe_size (type);
    if (!s_type_valid (type_data, type_size))
        s_bad (self, ZV_EINVAL, "invalid type frame (%zu bytes)", type_size);
    s_copy (self->type, S_MAX_TYPE, type_data, type_size > S_MAX_TYPE ? S_MAX_TYPE : type_size);
    for (char *c = self->type; *c; c++)
        if (*c < 0x21 || *c > 0x7e)
            *c = '?';
    zframe_destroy (&type);

    zframe_t *frame = zmsg_pop (zmsg);
    if (!frame)
        s_bad (self, ZV_EINVAL, "missing envelope frame");
    else
    if (zframe_size (frame) > ZV_MSG_MAX_BYTES)
        s_bad (self, ZV_ETOOBIG, "envelope of %zu bytes exceeds %d",
               zframe_size (frame), ZV_MSG_MAX_BYTES);
    else {
        char reason [256];
        json_t *envelope = NULL;
        size_t frame_size = zframe_size (frame);
        size_t body_at, body_size;
        zv_status_t status = zv_pack_decode_defer (zframe_data (frame), frame_size, "b",
                                                   &envelope, &body_at, &body_size,
                                                   reason, sizeof reason);
        if (status != ZV_OK) {
            s_bad (self, status, "envelope: %s", reason);
            s_recover_envelope (self, zframe_data (frame), frame_size);
        }
        else
        if (!json_is_object (envelope))
            s_bad (self, ZV_EINVAL, "envelope is not a map");
        else
            s_read_envelope (self, envelope, &frame, body_at, body_size, &error);
        json_decref (envelope);
        if (self->status == ZV_OK && !self->is_reply && frame_size > ZV_MSG_MAX_REQUEST)
            s_bad (self, ZV_ETOOBIG, "request envelope of %zu bytes exceeds %d",
                   frame_size, ZV_MSG_MAX_REQUEST);
    }
    zframe_destroy (&frame);

    self->payload = zmsg_pop (zmsg);
    if (self->payload && zframe_size (self->payload) > ZV_MSG_MAX_PAYLOAD)
        s_bad (self, ZV_ETOOBIG, "payload of %zu bytes exceeds %d",
               zframe_size (self->payload), ZV_MSG_MAX_PAYLOAD);
    if (zmsg_size (zmsg) > 0)
        s_bad (self, ZV_EINVAL, "too many frames (%zu extra)", zmsg_size (zmsg));

    if (!self->is_reply) {
        //  The row even of a bad message says whether it was a cast.
        self->def = zv_catalogue_find (self->type);
        if (!self->def)
            s_bad (self, ZV_EINVAL, "unknown message type '%s'", self->type);
        else
        if (self->status == ZV_OK) {
            char reason [256];
            zv_status_t status = zv_catalogue_validate (self->def, s_body (self),
                                                        reason, sizeof reason);
            if (status != ZV_OK)
                s_bad (self, status, "%s: %s", self->type, reason);
        }
    }
    if (self->status != ZV_OK) {
        //  Nothing of a bad body reaches a handler.
        s_body_drop_bytes (self);
        if (self->body)
            json_object_clear (self->body);
        else
            self->body = json_object ();
    }
    else
    if (error) {
        json_t *text = json_object_get (error, "m");
        self->status = zv_status_from_name (json_string_value (json_object_get (error, "c")));
        s_set_error_text (self, json_string_value (text), json_string_length (text));
    }
    json_decref (error);
}

zv_msg_t *
zv_msg_decode (zmsg_t **zmsg_p, bool with_routing_id)
{
    if (!zmsg_p || !*zmsg_p)
        return NULL;
    zmsg_t *zmsg = *zmsg_p;
    *zmsg_p = NULL;
    zv_msg_t *self = NULL;
    if (zmsg_size (zmsg) == 0)
        goto cleanup;
    self = s_blank ();
    if (!self)
        goto cleanup;
    //  Id, source and time are the peer's, never our own.
    self->id [0] = '\0';
    self->ts = 0;
    if (with_routing_id)
        self->routing_id = zmsg_pop (zmsg);
    s_decode_frames (self, zmsg);
cleanup:
    zmsg_destroy (&zmsg);
    return self;
}

//  Sockets

int
zv_msg_send (zv_msg_t **self_p, zsock_t *dest)
{
    assert (self_p);
    zv_msg_t *self = *self_p;
    *self_p = NULL;
    if (!self) {
        errno = EINVAL;
        return -1;
    }
    zmsg_t *zmsg = s_encode (self, true);
    zv_msg_destroy (&self);
    if (!zmsg) {
        errno = EINVAL;
        return -1;
    }
    int rc = zmsg_send (&zmsg, dest);
    int saved = errno;
    zmsg_destroy (&zmsg);           //  czmq keeps the message when sending fails
    errno = saved;
    return rc;
}

zv_msg_t *
zv_msg_recv (zsock_t *source)
{
    assert (source);
    zmsg_t *zmsg = zmsg_recv (source);
    if (!zmsg)
        return NULL;
    return zv_msg_decode (&zmsg, zsock_type (source) == ZMQ_ROUTER);
}

const char *
zv_msg_describe (const zv_msg_t *self, char *buf, size_t len)
{
    assert (buf && len);
    if (!self)
        snprintf (buf, len, "(null)");
    else
        snprintf (buf, len, "%s id=%s%s%s rq=%s src=%s%s%s",
                  self->type, self->id,
                  self->is_reply ? " re=" : "", self->is_reply ? self->re : "",
                  self->rq, self->src,
                  self->status != ZV_OK ? " status=" : "",
                  self->status != ZV_OK ? zv_status_name (self->status) : "");
    return buf;
}
