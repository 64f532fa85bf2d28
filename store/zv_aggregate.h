/*  zv_aggregate.h: host aggregates and availability zones, as Nova has them.

    An aggregate is a named set of hosts with metadata (key=value strings);
    its availability_zone, when set, makes its hosts that zone.  A host may
    be in many aggregates but in one zone only: adding it to an aggregate,
    or setting an aggregate's zone, that would put one host in two zones is
    refused with Nova's reason.  A host in no zoned aggregate is in the
    default zone ([DEFAULT] default_availability_zone, "nova").  Records in
    ZV_TABLE_AGGREGATES keyed by id: {id, uuid, name, availability_zone,
    hosts: [...], metadata: {...}, created_at, updated_at}.  Every function
    works inside the caller's transaction.                                  */

#ifndef ZV_AGGREGATE_H
#define ZV_AGGREGATE_H

#include "store/zv_store.h"

//  New aggregate (zone may be NULL).  ZV_EEXIST for a taken name.
zv_status_t zv_aggregate_create (zv_txn_t *txn, const char *name, const char *zone,
                                 json_t **rec_p, char *errbuf, size_t errlen);
//  By id or unique name.  ZV_ENOTFOUND.
zv_status_t zv_aggregate_find (zv_txn_t *txn, const char *ref, json_t **rec_p,
                               char *errbuf, size_t errlen);
//  Refused (ZV_ECONFLICT) while the aggregate still has hosts, as Nova does.
zv_status_t zv_aggregate_delete (zv_txn_t *txn, const char *ref, char *errbuf, size_t errlen);
zv_status_t zv_aggregate_add_host (zv_txn_t *txn, const char *ref, const char *host,
                                   json_t **rec_p, char *errbuf, size_t errlen);
zv_status_t zv_aggregate_remove_host (zv_txn_t *txn, const char *ref, const char *host,
                                      json_t **rec_p, char *errbuf, size_t errlen);
//  Set metadata (a json null value unsets a key) and/or the zone (zone NULL:
//  unchanged; "" : no zone).  The "availability_zone" metadata key is the
//  zone, as in Nova.
zv_status_t zv_aggregate_set (zv_txn_t *txn, const char *ref, const json_t *metadata,
                              const char *zone, json_t **rec_p, char *errbuf, size_t errlen);
//  Every aggregate (caller owns).
json_t *zv_aggregate_list (zv_txn_t *txn);
//  The aggregates a host is in: [{name, metadata, availability_zone}].
json_t *zv_aggregate_of_host (zv_txn_t *txn, const char *host);
//  Every host's aggregates in one pass: {host: [{name, metadata,
//  availability_zone}]} (caller owns).  For listing many hosts at once.
json_t *zv_aggregate_by_host (zv_txn_t *txn);
//  The zone of a host into buf (default_zone when in no zoned aggregate).
const char *zv_aggregate_host_zone (zv_txn_t *txn, const char *host, const char *default_zone,
                                    char *buf, size_t len);

#endif
