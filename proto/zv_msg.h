/*  zv_msg.h: one zova message, its envelope, and its wire codec.

    On the wire a message is the frames
        [routing id]  type  envelope  [payload]
    where the routing id exists only on a ROUTER socket, type is the
    catalogue name ("conductor.server_create", routable without decoding),
    envelope is one msgpack map with short fixed keys
        v   int     wire version (1)
        id  str     message id, unique per sender
        re  str     id of the request this replies to (replies only)
        rq  str     request id carried end to end ("req-<uuid>")
        ts  int     send time, ms since the epoch
        src str     sender ("api", "compute.node1", "cli")
        dl  int     optional deadline, ms since the epoch
        cx  map     optional request context {p: project, u: user, r: [roles]}:
                    who asks, set only by an api (the conductor refuses a
                    context from any other peer)
        b   map     body (requests, casts and successful replies)
        e   map     {c: status name, m: message} on an error reply
    and payload is an optional opaque byte frame (image chunks), so bulk bytes
    never pass through msgpack.

    zv_msg_decode checks everything: frame count, sizes, envelope keys and
    types, that a request's type is in the catalogue, and its body against the
    catalogue row.  It never fails silently: a message that cannot be used is
    still returned, with zv_msg_status () != ZV_OK and a reason, carrying
    whatever envelope and routing id could be recovered, so that the receiver
    can answer the sender with an error instead of dropping it.              */

#ifndef ZV_MSG_H
#define ZV_MSG_H

#include <czmq.h>
#include <jansson.h>
#include "common/zv_common.h"
#include "proto/zv_catalogue.h"

#define ZV_MSG_VERSION      1
//  A request or cast is small; a reply may carry a whole listing (10,000
//  servers is about 5 MB), and comes only from a peer the receiver asked.
#define ZV_MSG_MAX_REQUEST  (1024 * 1024)       //  envelope frame of a request or cast
#define ZV_MSG_MAX_BYTES    (64 * 1024 * 1024)  //  envelope frame of any message
#define ZV_MSG_MAX_PAYLOAD  (4 * 1024 * 1024)   //  payload frame
//  Sockets that others connect to (ROUTERs: requests arrive there) refuse
//  any larger frame at the transport, before it is even read.
#define ZV_MSG_MAX_WIRE     (ZV_MSG_MAX_REQUEST + ZV_MSG_MAX_PAYLOAD + 4096)

typedef struct _zv_msg_t zv_msg_t;

//  Who a request acts for: the project and user the api authenticated, and
//  their roles.  Only an api sets one (bus/ binds peers to identities); the
//  conductor judges every route against it.
typedef enum {
    ZV_ROLE_READER = 1 << 0,
    ZV_ROLE_MEMBER = 1 << 1,
    ZV_ROLE_ADMIN  = 1 << 2,
} zv_role_t;

#define ZV_CONTEXT_MAX_ID 64

typedef struct {
    char project_id [ZV_CONTEXT_MAX_ID + 1];
    char user_id [ZV_CONTEXT_MAX_ID + 1];
    unsigned roles;                 //  zv_role_t bits; names outside them are ignored
} zv_context_t;

//  Roles from a comma-separated list of names ("admin,member,reader");
//  unknown names are left out.
unsigned zv_context_roles_parse (const char *names);
bool zv_context_is_admin (const zv_context_t *context);

//  New request or cast of the given type, with a fresh id and timestamp and
//  an empty body.  The request id is new unless set with zv_msg_set_rq.
zv_msg_t *zv_msg_new (const char *type);
//  New successful reply to request: same type, re = request's id, same rq,
//  same routing id (so it can be sent straight back on a ROUTER).
zv_msg_t *zv_msg_reply (const zv_msg_t *request);
//  What answering a request later needs, kept past its handler: a copy
//  with its type, id, request id and routing id, and no body (for
//  zv_msg_reply / zv_msg_error once the answer is known).
zv_msg_t *zv_msg_request_stub (const zv_msg_t *request);
//  New error reply to request with a status and a formatted message.
zv_msg_t *zv_msg_error (const zv_msg_t *request, zv_status_t status,
                        const char *format, ...) __attribute__ ((format (printf, 3, 4)));
void zv_msg_destroy (zv_msg_t **self_p);

const char *zv_msg_type (const zv_msg_t *self);
const char *zv_msg_id (const zv_msg_t *self);
const char *zv_msg_re (const zv_msg_t *self);           //  NULL unless a reply
bool zv_msg_is_reply (const zv_msg_t *self);
const char *zv_msg_rq (const zv_msg_t *self);
void zv_msg_set_rq (zv_msg_t *self, const char *request_id);
const char *zv_msg_src (const zv_msg_t *self);
void zv_msg_set_src (zv_msg_t *self, const char *source);
int64_t zv_msg_ts (const zv_msg_t *self);
int64_t zv_msg_deadline (const zv_msg_t *self);         //  0 when none
void zv_msg_set_deadline (zv_msg_t *self, int64_t deadline_ms);
//  The request context, or NULL when the message carries none (borrowed).
const zv_context_t *zv_msg_context (const zv_msg_t *self);
//  Set (a copy) or, with NULL, clear the request context.
void zv_msg_set_context (zv_msg_t *self, const zv_context_t *context);
//  Fix the message id (at most 64 bytes, longer is cut) and the timestamp,
//  for tests and replay (golden files need bytes that do not change).
void zv_msg_set_id (zv_msg_t *self, const char *id);
void zv_msg_set_ts (zv_msg_t *self, int64_t ts_ms);
//  The catalogue row of the type, or NULL (unknown type, or a reply).
const zv_msgdef_t *zv_msg_def (const zv_msg_t *self);

//  Body: always a json object; borrowed until the message is destroyed.
//  A decoded body is built on this first read (it was checked on arrival).
json_t *zv_msg_body (const zv_msg_t *self);
//  The body of a decoded message that nobody has read yet, as the msgpack
//  map that arrived (checked as zv_pack_decode would): borrowed until the
//  message is destroyed or its body read, moved or replaced.  NULL (and
//  *size_p 0) once the body is a tree.
const void *zv_msg_body_bytes (const zv_msg_t *self, size_t *size_p);
//  Move source's body, tree or bytes, into self (whose body is dropped);
//  source is left with an empty body.  Relaying a reply this way never
//  builds its tree, and encoding self writes the bytes unchanged.
void zv_msg_move_body (zv_msg_t *self, zv_msg_t *source);
//  Replace the body; takes ownership of *body_p (which must be an object).
void zv_msg_set_body (zv_msg_t *self, json_t **body_p);
//  Convenience readers of body fields: NULL / default when absent.
const char *zv_msg_get_str (const zv_msg_t *self, const char *key);
int64_t zv_msg_get_int (const zv_msg_t *self, const char *key, int64_t dflt);
bool zv_msg_get_bool (const zv_msg_t *self, const char *key, bool dflt);

//  Status: ZV_OK for a good message; for a decoded error reply, the status
//  the peer sent; for a message that failed to decode, the reason.
zv_status_t zv_msg_status (const zv_msg_t *self);
const char *zv_msg_error_text (const zv_msg_t *self);  //  "" when none

//  Optional payload frame (borrowed pointer, size).  set copies the bytes.
const void *zv_msg_payload (const zv_msg_t *self, size_t *size_p);
void zv_msg_set_payload (zv_msg_t *self, const void *data, size_t size);
//  Move source's payload frame (if any) into self, without copying its
//  bytes: a relay passes a chunk on as it came.
void zv_msg_move_payload (zv_msg_t *self, zv_msg_t *source);

//  Routing id (ROUTER sockets): set takes ownership of *frame_p.
zframe_t *zv_msg_routing_id (const zv_msg_t *self);
void zv_msg_set_routing_id (zv_msg_t *self, zframe_t **frame_p);
//  Routing id from a string (a DEALER's identity, e.g. "compute.node1").
void zv_msg_set_routing_str (zv_msg_t *self, const char *identity);

//  Encode into a zmsg (routing id first when set).  Caller owns the result.
//  NULL only when the body cannot be encoded (logged).
zmsg_t *zv_msg_encode (const zv_msg_t *self);
//  Decode a zmsg (destroyed).  with_routing_id: first frame is a routing id
//  (message read from a ROUTER).  Never NULL except when *zmsg_p is NULL or
//  empty; check zv_msg_status ().
zv_msg_t *zv_msg_decode (zmsg_t **zmsg_p, bool with_routing_id);

//  Send and destroy (*self_p nulled even on failure).  0 on success, -1 on
//  failure (errno from ZeroMQ: EHOSTUNREACH when a ROUTER peer is gone).
int zv_msg_send (zv_msg_t **self_p, zsock_t *dest);
//  Receive one message; routing id expected when source is a ROUTER.
//  NULL when interrupted or the socket had nothing.
zv_msg_t *zv_msg_recv (zsock_t *source);

//  A readable one-line summary for logs ("conductor.server_create id=.. rq=..").
const char *zv_msg_describe (const zv_msg_t *self, char *buf, size_t len);

#endif
