/*  zv_pack.h: msgpack <-> jansson values, with hard limits.

    zova's in-memory form of every message body and every store record is a
    jansson json_t tree (refcounted, well tested, and what the CLI prints).
    This module is the one place that turns such trees into msgpack bytes and
    back; it is the only code outside zv_msg.c that includes msgpack.h.

    Decoding never trusts its input: it rejects truncated data, trailing bytes,
    map keys that are not strings, nesting deeper than ZV_PACK_MAX_DEPTH,
    strings longer than ZV_PACK_MAX_STR, arrays or maps with more than
    ZV_PACK_MAX_ITEMS entries, bin/ext values, and invalid UTF-8.  Integers
    are int64; floats are doubles; nil is json null.                          */

#ifndef ZV_PACK_H
#define ZV_PACK_H

#include <jansson.h>
#include "../common/zv_common.h"

#define ZV_PACK_MAX_DEPTH   16
#define ZV_PACK_MAX_STR     65536           //  bytes, any single string
#define ZV_PACK_MAX_ITEMS   100000          //  entries in one array or map

//  Encode value as msgpack.  On success *data_p is malloc'ed (caller frees)
//  and *size_p its length.  Returns ZV_OK, ZV_EINVAL (a value msgpack-in-zova
//  cannot carry, e.g. a string with invalid UTF-8) or ZV_ENOMEM.
zv_status_t zv_pack_encode (const json_t *value, char **data_p, size_t *size_p);

//  Append value's encoding to a msgpack_sbuffer that the caller owns (the
//  same checks and errors as zv_pack_encode; on error the buffer may hold a
//  partial value).  zv_msg uses it to pack the body straight into the
//  envelope, without an intermediate buffer and copy.
struct msgpack_sbuffer;
zv_status_t zv_pack_append (const json_t *value, struct msgpack_sbuffer *sbuf);

//  Decode exactly one msgpack object spanning all of data[0..size).
//  On success *value_p is a new reference (caller owns).  On failure returns
//  ZV_EINVAL or ZV_ETOOBIG and writes a one-line reason into errbuf.
zv_status_t zv_pack_decode (const void *data, size_t size, json_t **value_p,
                            char *errbuf, size_t errlen);

//  Recovery after a failed decode.  Both functions only read: no allocation,
//  no recursion, time linear in size, and no length or count is believed
//  beyond the bytes actually present.  They check structure (every header,
//  length and count fits), not content: strings over ZV_PACK_MAX_STR, invalid
//  UTF-8, non-string keys in nested maps, deep nesting, huge but present
//  containers, bin/ext and out-of-range integers are all stepped over.

//  Step *pos_p over the one msgpack object that starts there.  Returns ZV_OK,
//  or ZV_EINVAL (*pos_p unchanged) when it is truncated or holds 0xc1.
zv_status_t zv_pack_skip (const void *data, size_t size, size_t *pos_p);

//  What zv_pack_peek_map expects under one key, and what it found there.
typedef enum {
    ZV_PACK_PEEK_STR,               //  string, valid UTF-8, no NUL
    ZV_PACK_PEEK_INT,               //  integer that fits int64
    ZV_PACK_PEEK_KIND_COUNT
} zv_pack_peek_kind_t;

typedef struct {
    const char *key;                //  in: top-level key to look for
    zv_pack_peek_kind_t kind;       //  in
    size_t max_len;                 //  in: longest string accepted, bytes
    int found;                      //  out: 1 well-formed, 0 absent, -1 present but not
    const char *str;                //  out: borrowed from data, len bytes, not NUL-ended
    size_t len;                     //  out
    int64_t integer;                //  out
} zv_pack_peek_t;

//  Read the short scalar values of some keys of the map at data[0], stepping
//  over every other key and value whatever it holds (the last of duplicate
//  keys wins, as in zv_pack_decode).  Fills the out members of
//  fields[0..count) with what the walk met before the map ended or its bytes
//  did (a value cut short reads as found -1).  Returns ZV_OK when the map is
//  structurally whole and spans exactly data[0..size); ZV_EINVAL when data
//  is not a map, is cut short, or has bytes after the map: the fields still
//  say what was found before that point.
zv_status_t zv_pack_peek_map (const void *data, size_t size,
                              zv_pack_peek_t *fields, size_t count);

#endif
