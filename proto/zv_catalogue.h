/*  zv_catalogue.h: the one table of every message type zova speaks.

    A message type is "<service>.<verb>" (frame 0 on the wire).  Each row of
    the catalogue names the type, says whether it is a request (expects a
    reply) or a cast, which actor serves it, and lists the body's fields with
    their kind, whether they are required, and their limits.  zv_msg_decode
    validates every received body against its row; receivers therefore never
    see a wrongly typed or oversized field.  Unknown body keys are ignored
    (forward compatibility); a key is never renamed or retyped.

    Adding a message is one row here, one handler in its actor, and one case
    in tests/unit/test_proto.c.                                               */

#ifndef ZV_CATALOGUE_H
#define ZV_CATALOGUE_H

#include <jansson.h>
#include "common/zv_common.h"

typedef enum {
    ZV_FIELD_STR,       //  UTF-8 string, max_len bytes (0: ZV_FIELD_DEFAULT_MAX)
    ZV_FIELD_UUID,      //  canonical UUID string
    ZV_FIELD_INT,       //  integer in [min, max]
    ZV_FIELD_NUMBER,    //  integer or real, finite (ratios); bounds are the handler's
    ZV_FIELD_BOOL,
    ZV_FIELD_MAP,       //  nested map, not validated further (sub-records)
    ZV_FIELD_ARRAY,     //  array of at most max_len items, any kind
    ZV_FIELD_STR_ARRAY, //  array of at most max_len strings (each <= 255 bytes)
    ZV_FIELD_ANY,       //  any value (reply payloads carried opaque)
    ZV_FIELD_NAME,      //  a name: printable UTF-8 (zv_text_printable), max_len bytes
    ZV_FIELD_STR_MAP,   //  a flat map of at most max_len strings, keys 1..255 and values
                        //  0..255 bytes (Nova's metadata and properties)
    ZV_FIELD_KIND_COUNT
} zv_field_kind_t;

#define ZV_FIELD_DEFAULT_MAX 255
//  A map, array or any-value field nests at most this deep (a scalar is 1):
//  a stored copy of it stays far from what a message can carry (16).
#define ZV_FIELD_MAX_NESTING 8

typedef struct {
    const char *name;
    zv_field_kind_t kind;
    bool required;
    int64_t min;            //  INT: lower bound
    int64_t max;            //  INT: upper bound; STR/ARRAY: max length (0 = default)
} zv_field_t;

typedef enum {
    ZV_MSG_REQUEST,         //  sender waits for a reply with the same id in "re"
    ZV_MSG_CAST,            //  fire and forget
    ZV_MSG_KIND_COUNT
} zv_msg_kind_t;

#define ZV_CATALOGUE_MAX_FIELDS 16

typedef struct {
    const char *type;               //  "conductor.server_create"
    zv_msg_kind_t kind;
    const char *forward;            //  api.* rows: the conductor type it becomes, or NULL
    zv_field_t fields [ZV_CATALOGUE_MAX_FIELDS];   //  terminated by name == NULL
} zv_msgdef_t;

//  The row for a type, or NULL when the type is unknown.
const zv_msgdef_t *zv_catalogue_find (const char *type);
//  Number of rows and row i (for tests and documentation).
size_t zv_catalogue_size (void);
const zv_msgdef_t *zv_catalogue_at (size_t index);

//  Validate body (a json object) against def: every required field present,
//  every known field of the right kind and within limits.  ZV_OK or ZV_EINVAL
//  / ZV_ETOOBIG with a reason like "field 'ram_mb': expected integer".
zv_status_t zv_catalogue_validate (const zv_msgdef_t *def, const json_t *body,
                                   char *errbuf, size_t errlen);

#endif
