/*  zv_pack.c: jansson trees to msgpack bytes and back, with hard limits.

    Encoding walks the tree into a msgpack_sbuffer through msgpack-c's packer
    (the packer picks the shortest form of every integer, so the bytes are
    canonical and golden files are stable).  Keys go out in the object's
    insertion order, which jansson keeps.  Encoding applies the same limits as
    decoding, so zova never writes a value that zova would refuse to read.

    Decoding is a single pass over the bytes written here rather than
    msgpack-c's unpacker: msgpack_unpack_next allocates room for as many
    items as an array or map header claims before it has seen them, so a
    five-byte input claiming 2^32 items asks the allocator for 128 GiB.
    Walking the bytes ourselves lets every limit (depth, string length, item
    count, items that cannot fit in the bytes left) be checked before anything
    is allocated, and builds the json_t tree directly without a zone copy.
    Beside it, a read-only walker (zv_pack_skip, zv_pack_peek_map) steps over
    bytes without building anything, so that a caller can still read the
    envelope of a message whose body the decoder refused.

    No state outside the call: both directions are thread-safe.              */

#include "proto/zv_pack.h"

#include <msgpack.h>
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

//  Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
//  Most strings are ASCII, so eight bytes at a time are checked first.
static bool
s_utf8_valid (const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (len - i >= 8) {
            uint64_t word;
            memcpy (&word, s + i, 8);
            if ((word & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned char c = s [i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t extra;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf)      { extra = 1; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { extra = 2; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { extra = 3; cp = c & 0x07; }
        else
            return false;
        if (len - i - 1 < extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            unsigned char cc = s [i + k];
            if ((cc & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((extra == 2 && cp < 0x800)
        ||  (extra == 3 && (cp < 0x10000 || cp > 0x10ffff))
        ||  (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

//  Encoding

//  A raw value is an object whose one key holds a NUL byte, which no decoded
//  tree can carry (zv_pack_decode refuses such keys and so does jansson's
//  parser): only zv_pack_raw makes one, so a peer cannot smuggle bytes in.
#define S_RAW_KEY       "\0zv.raw"
#define S_RAW_KEY_LEN   (sizeof S_RAW_KEY - 1)

static const json_t *
s_raw_bytes (const json_t *value)
{
    if (json_object_size (value) != 1)
        return NULL;
    void *iter = json_object_iter ((json_t *) value);
    if (json_object_iter_key_len (iter) != S_RAW_KEY_LEN
    ||  memcmp (json_object_iter_key (iter), S_RAW_KEY, S_RAW_KEY_LEN) != 0)
        return NULL;
    return json_object_iter_value (iter);
}

json_t *
zv_pack_raw (const void *data, size_t size)
{
    assert (data || size == 0);
    json_t *raw = json_object ();
    json_t *bytes = json_stringn_nocheck (size ? data : "", size);
    if (!raw || !bytes
    ||  json_object_setn_new_nocheck (raw, S_RAW_KEY, S_RAW_KEY_LEN, bytes)) {
        json_decref (raw);
        return NULL;
    }
    return raw;
}

static zv_status_t
s_encode (msgpack_packer *pk, const json_t *value, int depth)
{
    int rc = 0;
    switch (json_typeof (value)) {
        case JSON_OBJECT: {
            const json_t *raw = s_raw_bytes (value);
            if (raw)
                return msgpack_sbuffer_write (pk->data, json_string_value (raw),
                                              json_string_length (raw)) ? ZV_ENOMEM : ZV_OK;
            if (depth >= ZV_PACK_MAX_DEPTH || json_object_size (value) > ZV_PACK_MAX_ITEMS)
                return ZV_EINVAL;
            if (msgpack_pack_map (pk, json_object_size (value)))
                return ZV_ENOMEM;
            json_t *object = (json_t *) value;      //  jansson's iterators are not const
            for (void *iter = json_object_iter (object); iter;
                 iter = json_object_iter_next (object, iter)) {
                const char *key = json_object_iter_key (iter);
                size_t key_len = json_object_iter_key_len (iter);
                if (key_len > ZV_PACK_MAX_STR
                ||  !s_utf8_valid ((const unsigned char *) key, key_len))
                    return ZV_EINVAL;
                if (msgpack_pack_str (pk, key_len)
                ||  msgpack_pack_str_body (pk, key, key_len))
                    return ZV_ENOMEM;
                zv_status_t status = s_encode (pk, json_object_iter_value (iter), depth + 1);
                if (status != ZV_OK)
                    return status;
            }
            return ZV_OK;
        }
        case JSON_ARRAY: {
            size_t size = json_array_size (value);
            if (depth >= ZV_PACK_MAX_DEPTH || size > ZV_PACK_MAX_ITEMS)
                return ZV_EINVAL;
            if (msgpack_pack_array (pk, size))
                return ZV_ENOMEM;
            for (size_t i = 0; i < size; i++) {
                zv_status_t status = s_encode (pk, json_array_get (value, i), depth + 1);
                if (status != ZV_OK)
                    return status;
            }
            return ZV_OK;
        }
        case JSON_STRING: {
            const char *text = json_string_value (value);
            size_t len = json_string_length (value);
            if (len > ZV_PACK_MAX_STR || !s_utf8_valid ((const unsigned char *) text, len))
                return ZV_EINVAL;
            rc = msgpack_pack_str (pk, len) || msgpack_pack_str_body (pk, text, len);
            break;
        }
        case JSON_INTEGER:
            rc = msgpack_pack_int64 (pk, (int64_t) json_integer_value (value));
            break;
        case JSON_REAL:
            rc = msgpack_pack_double (pk, json_real_value (value));
            break;
        case JSON_TRUE:
            rc = msgpack_pack_true (pk);
            break;
        case JSON_FALSE:
            rc = msgpack_pack_false (pk);
            break;
        case JSON_NULL:
            rc = msgpack_pack_nil (pk);
            break;
    }
    return rc ? ZV_ENOMEM : ZV_OK;
}

zv_status_t
zv_pack_append (const json_t *value, struct msgpack_sbuffer *sbuf, int depth)
{
    if (!value || !sbuf || depth < 0)
        return ZV_EINVAL;
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    return s_encode (&pk, value, depth);
}

zv_status_t
zv_pack_encode (const json_t *value, char **data_p, size_t *size_p)
{
    assert (data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    zv_status_t status = zv_pack_append (value, &sbuf, 0);
    if (status == ZV_OK) {
        *size_p = sbuf.size;
        *data_p = msgpack_sbuffer_release (&sbuf);
    }
    msgpack_sbuffer_destroy (&sbuf);
    return status;
}

//  Decoding

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    zv_status_t status;
    char *errbuf;
    size_t errlen;
    //  false: check every rule but build nothing (zv_pack_check, and a
    //  deferred value); values then come back as S_CHECKED.
    bool build;
    const char *defer_key;          //  top-level key checked, not built
    size_t defer_len;
    size_t defer_at, defer_size;    //  its last value's span
} s_reader_t;

//  What a value decoded without building reads as: never dereferenced.
static json_t s_checked;
#define S_CHECKED (&s_checked)

static json_t *
s_fail (s_reader_t *r, zv_status_t status, const char *format, ...)
{
    r->status = status;
    if (r->errbuf && r->errlen) {
        va_list args;
        va_start (args, format);
        vsnprintf (r->errbuf, r->errlen, format, args);
        va_end (args);
    }
    return NULL;
}

static json_t *
s_made (s_reader_t *r, json_t *value)
{
    return value ? value : s_fail (r, ZV_ENOMEM, "out of memory decoding msgpack");
}

//  The scalars, built only when the reader builds.
static json_t *
s_integer (s_reader_t *r, json_int_t value)
{
    return r->build ? s_made (r, json_integer (value)) : S_CHECKED;
}

static json_t *
s_real (s_reader_t *r, double value)
{
    return r->build ? s_made (r, json_real (value)) : S_CHECKED;
}

static bool
s_need (s_reader_t *r, size_t bytes)
{
    if (r->size - r->pos >= bytes)
        return true;
    s_fail (r, ZV_EINVAL, "truncated msgpack: %zu bytes needed at offset %zu, %zu left",
            bytes, r->pos, r->size - r->pos);
    return false;
}

//  Big-endian unsigned of width 1, 2, 4 or 8, after s_need.
static uint64_t
s_take (s_reader_t *r, size_t width)
{
    uint64_t value = 0;
    for (size_t i = 0; i < width; i++)
        value = (value << 8) | r->data [r->pos++];
    return value;
}

static json_t *
s_decode_str (s_reader_t *r, size_t len)
{
    if (len > ZV_PACK_MAX_STR)
        return s_fail (r, ZV_ETOOBIG, "string of %zu bytes exceeds %d", len, ZV_PACK_MAX_STR);
    if (!s_need (r, len))
        return NULL;
    const char *text = (const char *) r->data + r->pos;
    if (!s_utf8_valid ((const unsigned char *) text, len))
        return s_fail (r, ZV_EINVAL, "invalid UTF-8 in string at offset %zu", r->pos);
    r->pos += len;
    return r->build ? s_made (r, json_stringn_nocheck (text, len)) : S_CHECKED;
}

static json_t *s_decode_value (s_reader_t *r, int depth);

static bool
s_container_ok (s_reader_t *r, size_t count, size_t min_bytes_each, int depth)
{
    if (depth >= ZV_PACK_MAX_DEPTH) {
        s_fail (r, ZV_EINVAL, "nesting deeper than %d", ZV_PACK_MAX_DEPTH);
        return false;
    }
    if (count > ZV_PACK_MAX_ITEMS) {
        s_fail (r, ZV_ETOOBIG, "%zu entries exceed %d", count, ZV_PACK_MAX_ITEMS);
        return false;
    }
    //  Each entry takes at least one byte per value: refuse early, before
    //  building anything, a header that claims more than the bytes left.
    return s_need (r, count * min_bytes_each);
}

static json_t *
s_decode_array (s_reader_t *r, size_t count, int depth)
{
    if (!s_container_ok (r, count, 1, depth))
        return NULL;
    if (!r->build) {
        for (size_t i = 0; i < count; i++)
            if (!s_decode_value (r, depth + 1))
                return NULL;
        return S_CHECKED;
    }
    json_t *array = s_made (r, json_array ());
    for (size_t i = 0; array && i < count; i++) {
        json_t *item = s_decode_value (r, depth + 1);
        if (!item || json_array_append_new (array, item)) {
            if (item)
                s_fail (r, ZV_ENOMEM, "out of memory decoding msgpack");
            json_decref (array);
            array = NULL;
        }
    }
    return array;
}

static json_t *
s_decode_map (s_reader_t *r, size_t count, int depth)
{
    if (!s_container_ok (r, count, 2, depth))
        return NULL;
    json_t *map = r->build ? s_made (r, json_object ()) : S_CHECKED;
    for (size_t i = 0; map && i < count; i++) {
        size_t key_pos = r->pos;
        if (!s_need (r, 1))
            goto failed;
        uint8_t tag = r->data [r->pos++];
        size_t key_len;
        if (tag >= 0xa0 && tag <= 0xbf)
            key_len = tag & 0x1f;
        else
        if (tag >= 0xd9 && tag <= 0xdb) {
            size_t width = (size_t) 1 << (tag - 0xd9);
            if (!s_need (r, width))
                goto failed;
            key_len = (size_t) s_take (r, width);
        }
        else {
            s_fail (r, ZV_EINVAL, "map key at offset %zu is not a string", key_pos);
            goto failed;
        }
        //  The key is checked as any string, then used in place: no copy.
        if (key_len > ZV_PACK_MAX_STR) {
            s_fail (r, ZV_ETOOBIG, "string of %zu bytes exceeds %d", key_len, ZV_PACK_MAX_STR);
            goto failed;
        }
        if (!s_need (r, key_len))
            goto failed;
        const char *key_text = (const char *) r->data + r->pos;
        if (!s_utf8_valid ((const unsigned char *) key_text, key_len)) {
            s_fail (r, ZV_EINVAL, "invalid UTF-8 in string at offset %zu", r->pos);
            goto failed;
        }
        r->pos += key_len;
        if (memchr (key_text, '\0', key_len)) {
            s_fail (r, ZV_EINVAL, "map key at offset %zu contains NUL", key_pos);
            goto failed;
        }
        if (depth == 0 && r->defer_key && r->build
        &&  key_len == r->defer_len && memcmp (key_text, r->defer_key, key_len) == 0) {
            //  Checked now, built later (or never) from its span.
            size_t value_at = r->pos;
            r->build = false;
            json_t *checked = s_decode_value (r, depth + 1);
            r->build = true;
            if (!checked)
                goto failed;
            r->defer_at = value_at;
            r->defer_size = r->pos - value_at;
            continue;
        }
        json_t *value = s_decode_value (r, depth + 1);
        if (!value)
            goto failed;
        if (!r->build)
            continue;
        //  Duplicate keys: the last one wins.
        if (json_object_setn_new_nocheck (map, key_text, key_len, value)) {
            s_fail (r, ZV_ENOMEM, "out of memory decoding msgpack");
            goto failed;
        }
        continue;
    failed:
        if (map != S_CHECKED)
            json_decref (map);
        map = NULL;
    }
    return map;
}

static json_t *
s_decode_value (s_reader_t *r, int depth)
{
    if (!s_need (r, 1))
        return NULL;
    size_t at = r->pos;
    uint8_t tag = r->data [r->pos++];
    if (tag <= 0x7f)
        return s_integer (r, tag);
    if (tag >= 0xe0)
        return s_integer (r, (int8_t) tag);
    if (tag <= 0x8f)
        return s_decode_map (r, tag & 0x0f, depth);
    if (tag <= 0x9f)
        return s_decode_array (r, tag & 0x0f, depth);
    if (tag <= 0xbf)
        return s_decode_str (r, tag & 0x1f);

    //  0xc0 .. 0xdf: the width of the length or value that follows, if any.
    static const uint8_t width [32] = {
        [0x0a] = 4, [0x0b] = 8,                             //  float 32, 64
        [0x0c] = 1, [0x0d] = 2, [0x0e] = 4, [0x0f] = 8,     //  uint
        [0x10] = 1, [0x11] = 2, [0x12] = 4, [0x13] = 8,     //  int
        [0x19] = 1, [0x1a] = 2, [0x1b] = 4,                 //  str
        [0x1c] = 2, [0x1d] = 4, [0x1e] = 2, [0x1f] = 4,     //  array, map
    };
    size_t bytes = width [tag - 0xc0];
    if (bytes && !s_need (r, bytes))
        return NULL;
    uint64_t raw = bytes ? s_take (r, bytes) : 0;

    switch (tag) {
        case 0xc0: return r->build ? s_made (r, json_null ()) : S_CHECKED;
        case 0xc2: return r->build ? s_made (r, json_false ()) : S_CHECKED;
        case 0xc3: return r->build ? s_made (r, json_true ()) : S_CHECKED;
        case 0xc4: case 0xc5: case 0xc6:
            return s_fail (r, ZV_EINVAL, "bin value at offset %zu not accepted", at);
        case 0xc7: case 0xc8: case 0xc9:
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            return s_fail (r, ZV_EINVAL, "ext value at offset %zu not accepted", at);
        case 0xca: {
            float f;
            uint32_t bits = (uint32_t) raw;
            memcpy (&f, &bits, 4);
            if (!isfinite (f))
                return s_fail (r, ZV_EINVAL, "non-finite float at offset %zu", at);
            return s_real (r, (double) f);
        }
        case 0xcb: {
            double d;
            memcpy (&d, &raw, 8);
            if (!isfinite (d))
                return s_fail (r, ZV_EINVAL, "non-finite float at offset %zu", at);
            return s_real (r, d);
        }
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
            if (raw > INT64_MAX)
                return s_fail (r, ZV_EINVAL, "integer at offset %zu beyond int64", at);
            return s_integer (r, (json_int_t) raw);
        case 0xd0: return s_integer (r, (int8_t) raw);
        case 0xd1: return s_integer (r, (int16_t) raw);
        case 0xd2: return s_integer (r, (int32_t) raw);
        case 0xd3: return s_integer (r, (json_int_t) (int64_t) raw);
        case 0xd9: case 0xda: case 0xdb:
            return s_decode_str (r, (size_t) raw);
        case 0xdc: case 0xdd:
            return s_decode_array (r, (size_t) raw, depth);
        case 0xde: case 0xdf:
            return s_decode_map (r, (size_t) raw, depth);
        default:
            return s_fail (r, ZV_EINVAL, "invalid msgpack byte 0x%02x at offset %zu", tag, at);
    }
}

//  One object spanning all of r's bytes; NULL (r->status set) otherwise.
static json_t *
s_decode_all (s_reader_t *r)
{
    if (r->errbuf && r->errlen)
        r->errbuf [0] = '\0';
    json_t *value = s_decode_value (r, 0);
    if (value && r->pos != r->size) {
        if (value != S_CHECKED)
            json_decref (value);
        value = s_fail (r, ZV_EINVAL, "%zu trailing bytes after msgpack value", r->size - r->pos);
    }
    return value;
}

zv_status_t
zv_pack_decode (const void *data, size_t size, json_t **value_p,
                char *errbuf, size_t errlen)
{
    assert (value_p);
    s_reader_t r = { .data = data, .size = data ? size : 0, .status = ZV_OK,
                     .errbuf = errbuf, .errlen = errlen, .build = true };
    *value_p = s_decode_all (&r);
    return *value_p ? ZV_OK : r.status;
}

zv_status_t
zv_pack_check (const void *data, size_t size, char *errbuf, size_t errlen)
{
    s_reader_t r = { .data = data, .size = data ? size : 0, .status = ZV_OK,
                     .errbuf = errbuf, .errlen = errlen, .build = false };
    return s_decode_all (&r) ? ZV_OK : r.status;
}

zv_status_t
zv_pack_decode_defer (const void *data, size_t size, const char *key,
                      json_t **value_p, size_t *at_p, size_t *size_p,
                      char *errbuf, size_t errlen)
{
    assert (value_p && key && at_p && size_p);
    s_reader_t r = { .data = data, .size = data ? size : 0, .status = ZV_OK,
                     .errbuf = errbuf, .errlen = errlen, .build = true,
                     .defer_key = key, .defer_len = strlen (key) };
    *value_p = s_decode_all (&r);
    *at_p = *value_p ? r.defer_at : 0;
    *size_p = *value_p ? r.defer_size : 0;
    return *value_p ? ZV_OK : r.status;
}

//  Recovery: stepping over bytes without building anything
//
//  zv_pack_decode stops at the first value it refuses, which may sit deep in
//  a message body while the envelope around it is sound.  These walkers let
//  the caller still read that envelope.  They keep no stack: the only state
//  is how many objects remain to be stepped over, and as each object takes
//  at least one byte, a count above the bytes left is a truncation, refused
//  at once.  Nesting depth therefore costs nothing, and every loop turn eats
//  a byte, so the time is linear in the input whatever its headers claim.

static uint64_t
s_big_endian (const uint8_t *bytes, size_t width)
{
    uint64_t value = 0;
    for (size_t i = 0; i < width; i++)
        value = (value << 8) | bytes [i];
    return value;
}

zv_status_t
zv_pack_skip (const void *data, size_t size, size_t *pos_p)
{
    assert (pos_p);
    //  How to step over the forms 0xc0 .. 0xdf: the width of the length or
    //  count after the tag, the bytes that follow besides those a length
    //  counts (an ext's type byte, a number's value), and for containers how
    //  many objects each counted entry holds.
    static const struct { uint8_t width, fixed, per_entry; } forms [32] = {
        [0x04] = { 1, 0, 0 }, [0x05] = { 2, 0, 0 }, [0x06] = { 4, 0, 0 },   //  bin
        [0x07] = { 1, 1, 0 }, [0x08] = { 2, 1, 0 }, [0x09] = { 4, 1, 0 },   //  ext: type byte
        [0x0a] = { 0, 4, 0 }, [0x0b] = { 0, 8, 0 },                         //  float 32, 64
        [0x0c] = { 0, 1, 0 }, [0x0d] = { 0, 2, 0 }, [0x0e] = { 0, 4, 0 }, [0x0f] = { 0, 8, 0 },
        [0x10] = { 0, 1, 0 }, [0x11] = { 0, 2, 0 }, [0x12] = { 0, 4, 0 }, [0x13] = { 0, 8, 0 },
        [0x14] = { 0, 2, 0 }, [0x15] = { 0, 3, 0 }, [0x16] = { 0, 5, 0 },   //  fixext 1, 2, 4
        [0x17] = { 0, 9, 0 }, [0x18] = { 0, 17, 0 },                        //  fixext 8, 16
        [0x19] = { 1, 0, 0 }, [0x1a] = { 2, 0, 0 }, [0x1b] = { 4, 0, 0 },   //  str
        [0x1c] = { 2, 0, 1 }, [0x1d] = { 4, 0, 1 },                         //  array
        [0x1e] = { 2, 0, 2 }, [0x1f] = { 4, 0, 2 },                         //  map
    };
    const uint8_t *bytes = data;
    size_t pos = *pos_p;
    if (!bytes || pos > size)
        return ZV_EINVAL;
    uint64_t pending = 1;
    while (pending > 0) {
        if (pending > size - pos)
            return ZV_EINVAL;
        uint8_t tag = bytes [pos++];
        pending--;
        if (tag <= 0x7f || tag >= 0xe0)
            continue;                   //  fixint: the tag is the value
        uint64_t length;                //  bytes to step over, or entries
        unsigned per_entry = 0;
        if (tag <= 0x8f) {
            length = tag & 0x0f;
            per_entry = 2;
        }
        else
        if (tag <= 0x9f) {
            length = tag & 0x0f;
            per_entry = 1;
        }
        else
        if (tag <= 0xbf)
            length = tag & 0x1f;
        else
        if (tag == 0xc1)
            return ZV_EINVAL;           //  never used by msgpack
        else {
            size_t width = forms [tag - 0xc0].width;
            if (width > size - pos)
                return ZV_EINVAL;
            length = forms [tag - 0xc0].fixed + s_big_endian (bytes + pos, width);
            pos += width;
            per_entry = forms [tag - 0xc0].per_entry;
        }
        if (per_entry)
            pending += length * per_entry;  //  below 2^33 + size: no overflow
        else {
            if (length > size - pos)
                return ZV_EINVAL;
            pos += (size_t) length;
        }
    }
    *pos_p = pos;
    return ZV_OK;
}

//  The text of a string object spanning exactly bytes[0..size), or NULL.
static const uint8_t *
s_peek_str (const uint8_t *bytes, size_t size, size_t *len_p)
{
    size_t header;
    if (bytes [0] >= 0xa0 && bytes [0] <= 0xbf)
        header = 1;
    else
    if (bytes [0] >= 0xd9 && bytes [0] <= 0xdb)
        header = 1 + ((size_t) 1 << (bytes [0] - 0xd9));
    else
        return NULL;
    *len_p = size - header;         //  the span came from zv_pack_skip
    return bytes + header;
}

//  Present but unusable: of the wrong kind, or cut short by the end of data.
static void
s_peek_broken (zv_pack_peek_t *field)
{
    field->found = -1;
    field->str = NULL;
    field->len = 0;
    field->integer = 0;
    field->at = 0;
    field->size = 0;
}

static void
s_peek_value (zv_pack_peek_t *field, const uint8_t *bytes, size_t size)
{
    s_peek_broken (field);
    uint8_t tag = bytes [0];
    switch (field->kind) {
        case ZV_PACK_PEEK_STR: {
            size_t len;
            const uint8_t *text = s_peek_str (bytes, size, &len);
            if (!text || len > field->max_len || len > ZV_PACK_MAX_STR
            ||  memchr (text, '\0', len) || !s_utf8_valid (text, len))
                return;
            field->str = (const char *) text;
            field->len = len;
            break;
        }
        case ZV_PACK_PEEK_INT: {
            //  For 0xcc .. 0xd3 the span is the tag and exactly its width.
            uint64_t raw = tag >= 0xcc && tag <= 0xd3 ? s_big_endian (bytes + 1, size - 1) : 0;
            if (tag <= 0x7f)
                field->integer = tag;
            else
            if (tag >= 0xe0)
                field->integer = (int8_t) tag;
            else
            if (tag >= 0xcc && tag <= 0xcf && raw <= INT64_MAX)
                field->integer = (int64_t) raw;
            else
            if (tag == 0xd0)
                field->integer = (int8_t) raw;
            else
            if (tag == 0xd1)
                field->integer = (int16_t) raw;
            else
            if (tag == 0xd2)
                field->integer = (int32_t) raw;
            else
            if (tag == 0xd3)
                field->integer = (int64_t) raw;
            else
                return;
            break;
        }
        case ZV_PACK_PEEK_BOOL:
            if (tag != 0xc2 && tag != 0xc3)
                return;
            field->integer = tag == 0xc3;
            break;
        case ZV_PACK_PEEK_KIND_COUNT:
            return;
    }
    field->found = 1;
}

static void
s_peek_reset (zv_pack_peek_t *fields, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        fields [i].found = 0;
        fields [i].str = NULL;
        fields [i].len = 0;
        fields [i].integer = 0;
        fields [i].at = 0;
        fields [i].size = 0;
    }
}

zv_status_t
zv_pack_peek_map (const void *data, size_t size, zv_pack_peek_t *fields, size_t count)
{
    assert (fields || count == 0);
    s_peek_reset (fields, count);
    const uint8_t *bytes = data;
    if (!bytes || size == 0)
        return ZV_EINVAL;
    size_t pos = 1;
    uint64_t entries;
    if (bytes [0] >= 0x80 && bytes [0] <= 0x8f)
        entries = bytes [0] & 0x0f;
    else
    if (bytes [0] == 0xde || bytes [0] == 0xdf) {
        size_t width = bytes [0] == 0xde ? 2 : 4;
        if (width > size - pos)
            return ZV_EINVAL;
        entries = s_big_endian (bytes + pos, width);
        pos += width;
    }
    else
        return ZV_EINVAL;
    //  Each turn steps over at least two bytes or stops: a header claiming
    //  more entries than the data holds ends the walk where the data does.
    for (uint64_t i = 0; i < entries; i++) {
        size_t key_at = pos;
        if (zv_pack_skip (bytes, size, &pos) != ZV_OK)
            return ZV_EINVAL;
        size_t key_len = 0;
        const uint8_t *key = s_peek_str (bytes + key_at, pos - key_at, &key_len);
        size_t value_at = pos;
        bool whole = zv_pack_skip (bytes, size, &pos) == ZV_OK;
        for (size_t f = 0; key && f < count; f++)
            if (strlen (fields [f].key) == key_len && memcmp (fields [f].key, key, key_len) == 0) {
                if (whole) {
                    s_peek_value (&fields [f], bytes + value_at, pos - value_at);
                    fields [f].at = value_at;
                    fields [f].size = pos - value_at;
                }
                else
                    s_peek_broken (&fields [f]);
            }
        if (!whole)
            return ZV_EINVAL;
    }
    return pos == size ? ZV_OK : ZV_EINVAL;
}

zv_status_t
zv_pack_next (const void *data, size_t size, size_t *pos_p, zv_pack_item_t *item)
{
    assert (pos_p && item);
    const uint8_t *bytes = data;
    size_t pos = *pos_p;
    if (!bytes || pos >= size)
        return ZV_EINVAL;
    memset (item, 0, sizeof *item);
    uint8_t tag = bytes [pos++];
    uint64_t length = 0;            //  a str's bytes, a container's entries
    if (tag <= 0x7f || tag >= 0xe0) {
        item->type = ZV_PACK_INT;
        item->integer = tag <= 0x7f ? tag : (int8_t) tag;
        *pos_p = pos;
        return ZV_OK;
    }
    if (tag <= 0x8f) {
        item->type = ZV_PACK_MAP;
        length = tag & 0x0f;
    }
    else
    if (tag <= 0x9f) {
        item->type = ZV_PACK_ARRAY;
        length = tag & 0x0f;
    }
    else
    if (tag <= 0xbf) {
        item->type = ZV_PACK_STR;
        length = tag & 0x1f;
    }
    else {
        //  0xc0 .. 0xdf: the width of the value or length after the tag.
        static const uint8_t width [32] = {
            [0x0a] = 4, [0x0b] = 8,                             //  float 32, 64
            [0x0c] = 1, [0x0d] = 2, [0x0e] = 4, [0x0f] = 8,     //  uint
            [0x10] = 1, [0x11] = 2, [0x12] = 4, [0x13] = 8,     //  int
            [0x19] = 1, [0x1a] = 2, [0x1b] = 4,                 //  str
            [0x1c] = 2, [0x1d] = 4, [0x1e] = 2, [0x1f] = 4,     //  array, map
        };
        size_t bytes_wide = width [tag - 0xc0];
        if (bytes_wide > size - pos)
            return ZV_EINVAL;
        uint64_t raw = s_big_endian (bytes + pos, bytes_wide);
        switch (tag) {
            case 0xc0:
                item->type = ZV_PACK_NIL;
                break;
            case 0xc2: case 0xc3:
                item->type = ZV_PACK_BOOL;
                item->integer = tag == 0xc3;
                break;
            case 0xca: {
                float f;
                uint32_t bits = (uint32_t) raw;
                memcpy (&f, &bits, 4);
                item->type = ZV_PACK_REAL;
                item->real = f;
                break;
            }
            case 0xcb:
                item->type = ZV_PACK_REAL;
                memcpy (&item->real, &raw, 8);
                break;
            case 0xcc: case 0xcd: case 0xce: case 0xcf:
                if (raw > INT64_MAX)
                    return ZV_EINVAL;
                item->type = ZV_PACK_INT;
                item->integer = (int64_t) raw;
                break;
            case 0xd0: item->type = ZV_PACK_INT; item->integer = (int8_t) raw; break;
            case 0xd1: item->type = ZV_PACK_INT; item->integer = (int16_t) raw; break;
            case 0xd2: item->type = ZV_PACK_INT; item->integer = (int32_t) raw; break;
            case 0xd3: item->type = ZV_PACK_INT; item->integer = (int64_t) raw; break;
            case 0xd9: case 0xda: case 0xdb:
                item->type = ZV_PACK_STR;
                length = raw;
                break;
            case 0xdc: case 0xdd:
                item->type = ZV_PACK_ARRAY;
                length = raw;
                break;
            case 0xde: case 0xdf:
                item->type = ZV_PACK_MAP;
                length = raw;
                break;
            case 0xc1:
                return ZV_EINVAL;
            default: {
                //  bin and ext: zv_pack_skip knows their shapes.
                size_t at = *pos_p;
                if (zv_pack_skip (bytes, size, &at) != ZV_OK)
                    return ZV_EINVAL;
                item->type = ZV_PACK_OTHER;
                *pos_p = at;
                return ZV_OK;
            }
        }
        pos += bytes_wide;
    }
    if (item->type == ZV_PACK_STR) {
        if (length > size - pos)
            return ZV_EINVAL;
        item->str = (const char *) bytes + pos;
        item->len = (size_t) length;
        pos += (size_t) length;
    }
    else
    if (item->type == ZV_PACK_ARRAY || item->type == ZV_PACK_MAP)
        item->count = (size_t) length;
    *pos_p = pos;
    return ZV_OK;
}

//  Writing by hand

void
zv_pack_buf_free (zv_pack_buf_t *buf)
{
    if (!buf)
        return;
    free (buf->data);
    buf->data = NULL;
    buf->size = buf->alloc = 0;
}

zv_status_t
zv_pack_put_bytes (zv_pack_buf_t *buf, const void *data, size_t size)
{
    assert (buf);
    if (size > buf->alloc - buf->size) {
        size_t alloc = buf->alloc ? buf->alloc : 4096;
        while (alloc - buf->size < size)
            alloc *= 2;
        uint8_t *grown = realloc (buf->data, alloc);
        if (!grown)
            return ZV_ENOMEM;
        buf->data = grown;
        buf->alloc = alloc;
    }
    if (size)
        memcpy (buf->data + buf->size, data, size);
    buf->size += size;
    return ZV_OK;
}

//  A header: the one-byte form when count fits below small, else tag and
//  a big-endian count of 2 or 4 bytes (wide16 / wide16 + 1).
static zv_status_t
s_put_header (zv_pack_buf_t *buf, uint8_t fix, size_t small, uint8_t wide16, size_t count)
{
    uint8_t head [5];
    size_t len;
    if (count < small) {
        head [0] = (uint8_t) (fix | count);
        len = 1;
    }
    else
    if (count <= 0xffff) {
        head [0] = wide16;
        head [1] = (uint8_t) (count >> 8);
        head [2] = (uint8_t) count;
        len = 3;
    }
    else {
        head [0] = (uint8_t) (wide16 + 1);
        for (int i = 0; i < 4; i++)
            head [1 + i] = (uint8_t) (count >> (24 - 8 * i));
        len = 5;
    }
    return zv_pack_put_bytes (buf, head, len);
}

zv_status_t
zv_pack_put_array (zv_pack_buf_t *buf, size_t count)
{
    return s_put_header (buf, 0x90, 16, 0xdc, count);
}

zv_status_t
zv_pack_put_map (zv_pack_buf_t *buf, size_t count)
{
    return s_put_header (buf, 0x80, 16, 0xde, count);
}

zv_status_t
zv_pack_put_str (zv_pack_buf_t *buf, const char *text, size_t len)
{
    size_t at = buf->size;
    zv_status_t status;
    if (len < 32) {
        uint8_t head = (uint8_t) (0xa0 | len);
        status = zv_pack_put_bytes (buf, &head, 1);
    }
    else
    if (len <= 0xff) {
        uint8_t head [2] = { 0xd9, (uint8_t) len };
        status = zv_pack_put_bytes (buf, head, 2);
    }
    else                            //  str16 and str32 follow the array/map layout
        status = s_put_header (buf, 0, 0, 0xda, len);
    if (status == ZV_OK && (status = zv_pack_put_bytes (buf, text, len)) != ZV_OK)
        buf->size = at;
    return status;
}

static bool
s_key_is (const uint8_t *key, size_t len, const char *name)
{
    return strlen (name) == len && memcmp (key, name, len) == 0;
}

zv_status_t
zv_pack_put_map_edit (zv_pack_buf_t *buf, const void *map, size_t size,
                      const char *const *drop, size_t ndrop,
                      const zv_pack_set_t *set, size_t nset)
{
    assert (buf && map && (drop || !ndrop) && (set || !nset) && nset <= 32);
    const uint8_t *bytes = map;
    size_t end = 0;
    if (!size || zv_pack_skip (map, size, &end) != ZV_OK || end != size)
        return ZV_EINVAL;
    size_t pos = 1;
    uint64_t entries;
    if (bytes [0] >= 0x80 && bytes [0] <= 0x8f)
        entries = bytes [0] & 0x0f;
    else
    if (bytes [0] == 0xde || bytes [0] == 0xdf) {
        size_t width = bytes [0] == 0xde ? 2 : 4;
        entries = s_big_endian (bytes + 1, width);
        pos += width;
    }
    else
        return ZV_EINVAL;
    //  Two walks: the first counts what stays (the header comes first),
    //  the second copies.  zv_pack_skip checked the whole map above.
    size_t first = pos;
    bool present [32] = { false };
    size_t count = 0;
    for (int walk = 0; walk < 2; walk++) {
        pos = first;
        if (walk == 1) {
            for (size_t s = 0; s < nset; s++)
                count += set [s].value && !present [s];
            if (zv_pack_put_map (buf, count) != ZV_OK)
                return ZV_ENOMEM;
        }
        for (uint64_t i = 0; i < entries; i++) {
            size_t key_at = pos;
            (void) zv_pack_skip (bytes, size, &pos);
            size_t value_at = pos;
            (void) zv_pack_skip (bytes, size, &pos);
            size_t key_len = 0;
            const uint8_t *key = s_peek_str (bytes + key_at, value_at - key_at, &key_len);
            bool dropped = false;
            for (size_t d = 0; key && !dropped && d < ndrop; d++)
                dropped = s_key_is (key, key_len, drop [d]);
            const zv_pack_set_t *replace = NULL;
            for (size_t s = 0; key && !dropped && !replace && s < nset; s++)
                if (set [s].value && s_key_is (key, key_len, set [s].key)) {
                    replace = &set [s];
                    present [s] = true;
                }
            if (dropped)
                continue;
            if (walk == 0)
                count++;
            else
            if (zv_pack_put_bytes (buf, bytes + key_at, value_at - key_at) != ZV_OK
            ||  (replace ? zv_pack_put_bytes (buf, replace->value, replace->size)
                         : zv_pack_put_bytes (buf, bytes + value_at, pos - value_at)) != ZV_OK)
                return ZV_ENOMEM;
        }
    }
    for (size_t s = 0; s < nset; s++)
        if (set [s].value && !present [s]
        &&  (zv_pack_put_str (buf, set [s].key, strlen (set [s].key)) != ZV_OK
        ||   zv_pack_put_bytes (buf, set [s].value, set [s].size) != ZV_OK))
            return ZV_ENOMEM;
    return ZV_OK;
}
