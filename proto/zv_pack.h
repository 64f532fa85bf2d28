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
#include "common/zv_common.h"

#define ZV_PACK_MAX_DEPTH   16
#define ZV_PACK_MAX_STR     65536           //  bytes, any single string
#define ZV_PACK_MAX_ITEMS   100000          //  entries in one array or map

//  Encode value as msgpack.  On success *data_p is malloc'ed (caller frees)
//  and *size_p its length.  Returns ZV_OK, ZV_EINVAL (a value msgpack-in-zova
//  cannot carry, e.g. a string with invalid UTF-8) or ZV_ENOMEM.
zv_status_t zv_pack_encode (const json_t *value, char **data_p, size_t *size_p);

//  Append value's encoding to a msgpack_sbuffer that the caller owns (the
//  same checks and errors as zv_pack_encode; on error the buffer may hold a
//  partial value).  depth is the nesting level value starts at (0 at the
//  top; a message body sits at 1, inside its envelope), so that what is
//  written is exactly what zv_pack_decode accepts of the whole.  zv_msg
//  uses it to pack the body straight into the envelope, without an
//  intermediate buffer and copy.
struct msgpack_sbuffer;
zv_status_t zv_pack_append (const json_t *value, struct msgpack_sbuffer *sbuf, int depth);

//  Decode exactly one msgpack object spanning all of data[0..size).
//  On success *value_p is a new reference (caller owns).  On failure returns
//  ZV_EINVAL or ZV_ETOOBIG and writes a one-line reason into errbuf.
zv_status_t zv_pack_decode (const void *data, size_t size, json_t **value_p,
                            char *errbuf, size_t errlen);

//  Check data exactly as zv_pack_decode would (same limits, same reasons),
//  building nothing: no allocation.  For bytes that are only passed on.
zv_status_t zv_pack_check (const void *data, size_t size, char *errbuf, size_t errlen);

//  zv_pack_decode, except that the value of the top-level map's key (the
//  last one, if repeated) is checked but left out of *value_p: *at_p and
//  *size_p give its span in data (size 0 when the key is absent), to be
//  decoded later or passed on as bytes.  Used for a message's body.
zv_status_t zv_pack_decode_defer (const void *data, size_t size, const char *key,
                                  json_t **value_p, size_t *at_p, size_t *size_p,
                                  char *errbuf, size_t errlen);

//  A value that zv_pack_encode / zv_pack_append write as data[0..size)
//  verbatim: bytes already in msgpack (a store record, a list built from
//  records) join a tree without being decoded.  The caller vouches that
//  they are one msgpack object zv_pack_decode accepts.  Only zova encodes
//  it; to anything else it is an opaque object.  NULL when out of memory.
json_t *zv_pack_raw (const void *data, size_t size);

//  Writing msgpack by hand, for code that assembles a reply from bytes it
//  already has (store records) instead of from a tree.  Each put appends
//  the shortest form, as the encoder does; ZV_ENOMEM leaves buf as it was.
typedef struct {
    uint8_t *data;                  //  malloc'ed; zv_pack_buf_free frees it
    size_t size, alloc;
} zv_pack_buf_t;

void zv_pack_buf_free (zv_pack_buf_t *buf);
zv_status_t zv_pack_put_array (zv_pack_buf_t *buf, size_t count);
zv_status_t zv_pack_put_map (zv_pack_buf_t *buf, size_t count);
zv_status_t zv_pack_put_str (zv_pack_buf_t *buf, const char *text, size_t len);
zv_status_t zv_pack_put_bytes (zv_pack_buf_t *buf, const void *data, size_t size);

//  One key zv_pack_put_map_edit sets: its value as msgpack bytes.
typedef struct {
    const char *key;
    const void *value;
    size_t size;
} zv_pack_set_t;

//  Append a copy of the map at map[0..size) (one whole msgpack map, as
//  zv_pack_skip steps over it) without the keys in drop[0..ndrop), and with
//  each set[i] put in: in place of that key where the map has it, else
//  added after the others in set order.  A set entry with a NULL value is
//  skipped.  ZV_EINVAL when map is not a whole map.
zv_status_t zv_pack_put_map_edit (zv_pack_buf_t *buf, const void *map, size_t size,
                                  const char *const *drop, size_t ndrop,
                                  const zv_pack_set_t *set, size_t nset);

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
    ZV_PACK_PEEK_BOOL,              //  true or false (in integer: 1 or 0)
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
    size_t at, size;                //  out: the value's span in data, whatever its kind
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

//  One object as zv_pack_next reads it.
typedef enum {
    ZV_PACK_NIL,
    ZV_PACK_BOOL,                   //  integer: 1 true, 0 false
    ZV_PACK_INT,                    //  integer
    ZV_PACK_REAL,                   //  real
    ZV_PACK_STR,                    //  str, len: borrowed from data, not NUL-ended
    ZV_PACK_ARRAY,                  //  count: items that follow
    ZV_PACK_MAP,                    //  count: key/value pairs that follow
    ZV_PACK_OTHER,                  //  bin or ext, stepped over
    ZV_PACK_TYPE_COUNT
} zv_pack_type_t;

typedef struct {
    zv_pack_type_t type;
    int64_t integer;
    double real;
    const char *str;
    size_t len;
    size_t count;
} zv_pack_item_t;

//  Read the object at *pos_p into *item and step over it: a scalar whole,
//  an array or map only its header (*pos_p then names its first entry, and
//  the caller reads count entries, or skips the rest with zv_pack_skip).
//  For walking bytes already checked (a received body) without building a
//  tree; a string's content is not checked again.  Returns ZV_OK, or
//  ZV_EINVAL (*pos_p unchanged) when the object is cut short, holds 0xc1 or
//  an integer beyond int64.  A container's count is not believed beyond
//  what a caller's walk finds: each entry read can still fail.
zv_status_t zv_pack_next (const void *data, size_t size, size_t *pos_p,
                          zv_pack_item_t *item);

#endif
