/*  zv_instance.h: the instance record, its shape in one place.

    An instance is a json map in the store's instances table.  This module
    is the one that knows its keys: zv_instance_new builds a new record with
    every key and its default (the record version "_rv" included), the
    checks say what a record may hold before anything writes it (a name
    libvirt's XML can carry, Nova's flat metadata, a bounded depth so that
    any listing of records can always be encoded and decoded again), and
    zv_instance_view is the one view of a server every reply uses (the CLI
    today, an HTTP API tomorrow): the record, its derived status and id,
    without the keys that never leave the store.  zv_instance_summary names
    the fields a listing shows, for every client that prints servers.

    An older record (version 1, written before metadata was checked) is
    brought to the current version by zv_instance_upgrade, which the store
    runs on every instance when it migrates its schema.                      */

#ifndef ZV_INSTANCE_H
#define ZV_INSTANCE_H

#include <jansson.h>
#include "common/zv_common.h"
#include "store/zv_state.h"

#define ZV_INSTANCE_VERSION         2
//  Nova's limits on a server's metadata (quota metadata_items, and the
//  length of keys and values).
#define ZV_METADATA_MAX_ITEMS       128
#define ZV_METADATA_MAX_LEN         255
#define ZV_INSTANCE_NAME_MAX        255
//  How deep a record may nest.  A listing wraps each record three levels
//  down (envelope, body, list), and a message decodes at most
//  ZV_PACK_MAX_DEPTH (16) levels: a record within this bound always fits.
#define ZV_INSTANCE_MAX_DEPTH       8

//  What a new record is made of.  Strings are copied; json values are
//  copied or increfed, never taken.
typedef struct {
    const char *uuid;
    const char *name;
    const char *project_id;
    const char *user_id;
    const json_t *flavor;           //  the flavor record (its copy is kept, as Nova's)
    const json_t *image;            //  the image record (id, name, properties kept)
    const char *availability_zone;
    const char *reservation_id;
    int64_t launch_index;
    const json_t *metadata;         //  checked with zv_instance_check_metadata; NULL: {}
    const char *request_id;         //  the create's request id
    const json_t *request_spec;     //  what a reschedule needs (stays in the store)
    const char *group_id;           //  its server group, or NULL
    int64_t now_ms;
} zv_instance_init_t;

//  A new record: vm_state building, task_state scheduling, power nostate,
//  no host, every other key at its default.  Caller owns; NULL when out
//  of memory.
json_t *zv_instance_new (const zv_instance_init_t *init);

//  The flavor as an instance keeps it (id, name, vcpus, ram_mb, disk_gb,
//  ephemeral_gb, swap_mb, extra_specs): new object, caller owns.  A resize
//  puts another such copy in place.
json_t *zv_instance_flavor (const json_t *flavor);

//  Checks.  ZV_OK, or ZV_EINVAL / ZV_ETOOBIG with Nova's kind of message.
//  A server name: printable (zv_text_printable), at most 255 bytes.
zv_status_t zv_instance_check_name (const char *name, char *errbuf, size_t errlen);
//  Metadata as Nova's: a flat map of at most 128 items whose keys (1..255
//  bytes) and values (0..255 bytes) are strings.
zv_status_t zv_instance_check_metadata (const json_t *metadata, char *errbuf, size_t errlen);
//  A whole record before it is written: a map, its metadata as above, and
//  no deeper than ZV_INSTANCE_MAX_DEPTH.
zv_status_t zv_instance_check (const json_t *rec, char *errbuf, size_t errlen);

//  Bring a record written by an older zova to ZV_INSTANCE_VERSION in place:
//  metadata that is not Nova's flat map of strings keeps only the items
//  that are, and anything that nests too deep is cut to its bound.  True
//  when it changed the record.
bool zv_instance_upgrade (json_t *rec);

//  The keys that never leave the store (record version, ms timestamps, the
//  request spec, what the conductor keeps for itself).  *count_p gets the
//  number of keys; the array is static.
const char *const *zv_instance_internal_keys (size_t *count_p);
//  The user-facing status of a record ("ACTIVE", "BUILD", ...; "UNKNOWN"
//  when its states are not valid names).  Static string.
const char *zv_instance_status (const json_t *rec);
//  The view of a server that leaves the conductor: the record plus status
//  and id, without the internal keys.  Takes rec and returns it.
json_t *zv_instance_view (json_t *rec);

//  The fields a listing of servers shows, in order: the field's name, the
//  record key it comes from, and the member of that key's map when the key
//  holds a map (flavor.name, fault.message).  Terminated by key NULL.
typedef struct {
    const char *key;
    const char *source;
    const char *sub;
} zv_instance_field_t;

extern const zv_instance_field_t zv_instance_summary [];

#endif
