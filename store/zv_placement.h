/*  zv_placement.h: resource providers, inventories, allocations, claims.

    What Nova's placement service does, as records in the conductor's store
    so that a claim is one more write in the transaction that moves an
    instance out of scheduling: two racing requests can never over-commit.

    A resource provider is a compute host (its record in ZV_TABLE_NODES):
        inventories  {class: {total, reserved, min_unit, max_unit, step_size,
                              allocation_ratio}}  (VCPU, MEMORY_MB, DISK_GB,
                              and CUSTOM_* classes)
        overrides    {class: {allocation_ratio, reserved}} set by an admin at
                     runtime; they win over what the host reports
        usages       {class: amount}   (the sum of its allocations)
        generation   grows with every change
    An allocation is one consumer's claim (an instance, or later a
    migration) against one or more providers, in ZV_TABLE_ALLOCATIONS:
        {consumer, project_id, created_at,
         allocations: {host: {resources: {class: amount}}}}
    Capacity of a class is (total - reserved) x allocation_ratio, as in
    placement; a request also respects min_unit, max_unit and step_size.
    Every function works inside the caller's write transaction.             */

#ifndef ZV_PLACEMENT_H
#define ZV_PLACEMENT_H

#include "store/zv_store.h"

//  Set a provider's inventories as its host reports them (created when
//  new), keeping usages and admin overrides.  inventories is borrowed.
//  *changed_p (optional) says whether anything changed.
zv_status_t zv_placement_report (zv_txn_t *txn, const char *host, const json_t *inventories,
                                 bool *changed_p, char *errbuf, size_t errlen);

//  An admin changes allocation_ratio and/or reserved of one class at
//  runtime (fields absent from change are left as they are).  ZV_ENOTFOUND
//  for an unknown provider or class, ZV_EINVAL for a bad value, ZV_ECONFLICT
//  when current usage would exceed the new capacity.
zv_status_t zv_placement_override (zv_txn_t *txn, const char *host, const char *resource_class,
                                   const json_t *change, char *errbuf, size_t errlen);

//  Claim resources ({class: amount}) on host for consumer, all or nothing.
//  ZV_ECONFLICT with the class that does not fit ("Insufficient inventory
//  of MEMORY_MB on host h: 64 requested, 32 free"), ZV_ENOTFOUND when host
//  is no provider, ZV_EEXIST when consumer already holds an allocation.
zv_status_t zv_placement_claim (zv_txn_t *txn, const char *consumer, const char *project_id,
                                const char *host, const json_t *resources,
                                char *errbuf, size_t errlen);

//  Release consumer's allocation (every provider).  ZV_OK when it had none.
zv_status_t zv_placement_release (zv_txn_t *txn, const char *consumer);

//  Hand consumer from's allocation to consumer to, usages unchanged (how a
//  move's source allocation passes from the instance to its migration and
//  back).  ZV_OK when from holds none; ZV_EEXIST when to holds one already.
zv_status_t zv_placement_move (zv_txn_t *txn, const char *from, const char *to);

//  The effective inventories of a provider record (overrides applied):
//  new object (caller owns).
json_t *zv_placement_effective (const json_t *provider);

//  Capacity of one class of a provider record (overrides applied); 0 when
//  the class is absent.
double zv_placement_capacity (const json_t *provider, const char *resource_class);

//  The resources a flavor asks for: VCPU, MEMORY_MB, DISK_GB (root +
//  ephemeral + swap rounded up to GB) and any "resources:CLASS=N" extra spec
//  (which also overrides a standard class, as in Nova).  New object.
json_t *zv_placement_flavor_resources (const json_t *flavor);

//  Provider view for people: the record with effective inventories,
//  usages and capacity per class, plus the legacy hypervisor totals
//  (vcpus, vcpus_used, memory_mb, memory_mb_used, local_gb, local_gb_used).
//  Takes provider, returns it.
json_t *zv_placement_view (json_t *provider);

//  Allocations against host: {consumer: {resources}} (caller owns).
json_t *zv_placement_allocations_of (zv_txn_t *txn, const char *host);

#endif
