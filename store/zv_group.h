/*  zv_group.h: server groups: affinity policies between instances.

    A group has one policy (affinity, anti-affinity, soft-affinity,
    soft-anti-affinity; Nova's microversion 2.64 shape) and, for
    anti-affinity, the rule max_server_per_host (default 1).  A server
    created with the hint group=ID joins it.  The hard policies are
    enforced twice, as Nova does: by the scheduler's filters on its view,
    and by the late check here, inside the claim's transaction, which sees
    every member's committed host, so a race the scheduler could not see
    still cannot break the policy.  Records in ZV_TABLE_SERVER_GROUPS:
    {id, name, policy, rules, members: [uuid...], project_id, user_id,
     created_at}.                                                           */

#ifndef ZV_GROUP_H
#define ZV_GROUP_H

#include "store/zv_store.h"

//  ZV_EINVAL for an unknown policy or a rule the policy does not take.
zv_status_t zv_group_create (zv_txn_t *txn, const char *name, const char *policy,
                             const json_t *rules, const char *project_id,
                             json_t **rec_p, char *errbuf, size_t errlen);
//  By uuid, or unique name within project (NULL: any project).
zv_status_t zv_group_find (zv_txn_t *txn, const char *ref, const char *project_id,
                           json_t **rec_p, char *errbuf, size_t errlen);
zv_status_t zv_group_delete (zv_txn_t *txn, const char *ref, const char *project_id,
                             char *errbuf, size_t errlen);
json_t *zv_group_list (zv_txn_t *txn, const char *project_id);
zv_status_t zv_group_add_member (zv_txn_t *txn, const char *group_id, const char *uuid);
//  ZV_OK also when uuid was not a member.
zv_status_t zv_group_remove_member (zv_txn_t *txn, const char *group_id, const char *uuid);
//  {host: members there} over the group's live members other than except.
json_t *zv_group_hosts (zv_txn_t *txn, const json_t *group, const char *except);
//  The late check: may instance uuid of group land on host?  ZV_ECONFLICT
//  with the reason when a hard policy forbids it.
zv_status_t zv_group_check (zv_txn_t *txn, const json_t *group, const char *uuid, const char *host,
                            char *errbuf, size_t errlen);

#endif
