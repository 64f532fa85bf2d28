/*  policy.c: who may call a conductor route, judged once before its
    handler runs.

    Two facts say who asks.  The peer's identity is its DEALER's routing id,
    "<binary>.<host>" (bus/ will bind it to the peer's key); the user is the
    request's context (project, user, roles), which only an api may set, so
    a context from any other peer is refused outright.  Each route's row
    (conductor.c) names one rule of zv_allow_t; this file applies it, with
    Nova's words: 403 "Policy doesn't allow <policy> to be performed." for
    a user who lacks the role, 404 for a server of another project (a user
    is not told it exists), and a 403 naming the host for a compute that
    reports on a server that is not on it.  A server's open move names two
    hosts, and both may report on it.                                        */

#include "actors/conductor/conductor.h"
#include "store/zv_migration.h"

const char *
zv_conductor_project (const zv_conductor_call_t *call)
{
    return call->context ? call->context->project_id : "";
}

const char *
zv_conductor_user (const zv_conductor_call_t *call)
{
    return call->context ? call->context->user_id : "";
}

bool
zv_conductor_is_admin (const zv_conductor_call_t *call)
{
    return zv_context_is_admin (call->context);
}

zv_status_t
zv_conductor_forbidden (const char *policy, char *errbuf, size_t errlen)
{
    snprintf (errbuf, errlen, "Policy doesn't allow %s to be performed.", policy ? policy : "this request");
    return ZV_EFORBIDDEN;
}

//  The peer "<binary>.<host>" from the routing id; binary "" when none.
static void
s_peer (zv_conductor_call_t *call)
{
    zframe_t *rid = zv_msg_routing_id (call->msg);
    char identity [320] = "";
    if (rid)
        snprintf (identity, sizeof identity, "%.*s", (int) zframe_size (rid), (const char *) zframe_data (rid));
    char *dot = strchr (identity, '.');
    if (dot)
        *dot = '\0';
    snprintf (call->peer_binary, sizeof call->peer_binary, "%s", identity);
    snprintf (call->peer_host, sizeof call->peer_host, "%s", dot ? dot + 1 : "");
}

//  A compute host may report on an instance that is on it, or that an
//  open move takes to it or from it.
static zv_status_t
s_host_check (zv_conductor_call_t *call, zv_txn_t *txn, const char *policy, char *errbuf, size_t errlen)
{
    const char *uuid = zv_msg_get_str (call->msg, "uuid");
    if (!streq (call->peer_binary, "compute"))
        return zv_conductor_forbidden (policy, errbuf, errlen);
    if (zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &call->instance) != ZV_OK) {
        snprintf (errbuf, errlen, "Instance %s could not be found.", uuid);
        return ZV_ENOTFOUND;
    }
    const char *host = s_str (call->instance, "host");
    if (host && streq (host, call->peer_host))
        return ZV_OK;
    json_t *move = NULL;
    bool named = false;
    if (zv_migration_open_of (txn, uuid, &move) == ZV_OK) {
        const char *source = s_str (move, "source_host"), *dest = s_str (move, "dest_host");
        named = (source && streq (source, call->peer_host)) || (dest && streq (dest, call->peer_host));
    }
    json_decref (move);
    if (named)
        return ZV_OK;
    snprintf (errbuf, errlen, "compute.%s may not report on instance %s: it is on host %s.",
              call->peer_host, uuid, host ? host : "(none)");
    return ZV_EFORBIDDEN;
}

zv_status_t
zv_conductor_authorize (zv_conductor_t *self, zv_txn_t *txn, const zv_conductor_route_t *route,
                        zv_conductor_call_t *call, char *errbuf, size_t errlen)
{
    s_peer (call);
    call->context = zv_msg_context (call->msg);
    const char *policy = route->policy ? route->policy : route->type;
    //  Only an api says which user a request acts for.
    if (call->context && !streq (call->peer_binary, "api")) {
        snprintf (errbuf, errlen, "A request context is accepted only from an api, not from %s.%s.",
                  call->peer_binary, call->peer_host);
        return ZV_EFORBIDDEN;
    }
    bool user_route = route->allow == ZV_ALLOW_USER || route->allow == ZV_ALLOW_OWNER
                   || route->allow == ZV_ALLOW_ADMIN;
    if (user_route && !call->context) {
        snprintf (errbuf, errlen, "%s acts for a user: it needs a request context, from an api.", route->type);
        return ZV_EFORBIDDEN;
    }
    switch (route->allow) {
        case ZV_ALLOW_USER:
            return ZV_OK;
        case ZV_ALLOW_ADMIN:
            return zv_conductor_is_admin (call) ? ZV_OK : zv_conductor_forbidden (policy, errbuf, errlen);
        case ZV_ALLOW_OWNER: {
            json_t *rec = NULL;
            zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
            if (status == ZV_OK)
                call->instance = rec;
            return status;
        }
        case ZV_ALLOW_HOST:
            return s_host_check (call, txn, policy, errbuf, errlen);
        case ZV_ALLOW_SELF: {
            //  The body names the service (or the route does) and its host.
            const char *binary = zv_msg_get_str (call->msg, "binary");
            const char *host = zv_msg_get_str (call->msg, "host");
            if (!binary)
                binary = route->service;
            if (!binary || !streq (binary, call->peer_binary))
                return zv_conductor_forbidden (policy, errbuf, errlen);
            if (host && !streq (host, call->peer_host)) {
                snprintf (errbuf, errlen, "%s.%s may not speak for host %s.", call->peer_binary,
                          call->peer_host, host);
                return ZV_EFORBIDDEN;
            }
            return ZV_OK;
        }
        case ZV_ALLOW_SERVICE:
            if (route->service && streq (call->peer_binary, route->service))
                return ZV_OK;
            return zv_conductor_forbidden (policy, errbuf, errlen);
        case ZV_ALLOW_COUNT:
            break;
    }
    assert (false);
    return zv_conductor_forbidden (policy, errbuf, errlen);
}
