/*  consoles.c: remote consoles (Nova's consoleauth) and what only the
    instance's host can answer.

    A console token is 256 random bits given to the user once; the store
    keeps only its sha256, with the instance, kind, host and port it opens
    and its expiry.  The console proxy asks console_authorize before
    connecting anyone.  console_log and server_screenshot are relayed to
    the host as rpc calls: the handler returns at once (call->deferred) and
    the reply goes out when the host answers, inside a batch like any
    continuation.                                                           */

#include "actors/conductor/conductor.h"
#include <sodium.h>

//  ---------------------------------------------------------------------
//  What only the host can answer

static void
s_request_free (void *ctx)
{
    zv_msg_t *copy = (zv_msg_t *) ctx;
    zv_msg_destroy (&copy);
}

//  The host answered: its body (and payload) become the asker's reply,
//  moved across as they came (a move's file chunk is a MiB).
static void
s_relay_done (void *actor, void *ctx, zv_msg_t *reply)
{
    zv_conductor_t *self = (zv_conductor_t *) actor;
    zv_msg_t *request = (zv_msg_t *) ctx;
    zv_msg_t *answer;
    if (zv_msg_status (reply) == ZV_OK) {
        answer = zv_msg_reply (request);
        zv_msg_move_body (answer, reply);
        zv_msg_move_payload (answer, reply);
    }
    else
        answer = zv_msg_error (request, zv_msg_status (reply), "%s", zv_msg_error_text (reply));
    zv_msg_set_src (answer, ACTOR);
    zv_conductor_out (self, &answer);
    zv_msg_destroy (&request);
}

zv_status_t
zv_conductor_relay (zv_conductor_t *self, zv_conductor_call_t *call, const char *host, const char *type,
                    json_t *body, int timeout_ms)
{
    zv_msg_t *ask = zv_msg_new (type);
    zv_msg_set_rq (ask, zv_msg_rq (call->msg));
    zv_msg_set_src (ask, ACTOR);
    char identity [320];
    snprintf (identity, sizeof identity, "compute.%s", host);
    zv_msg_set_routing_str (ask, identity);
    zv_msg_set_body (ask, &body);
    zv_conductor_out_call (self, &ask, timeout_ms, s_relay_done, zv_msg_request_stub (call->msg), s_request_free);
    call->deferred = true;
    return ZV_OK;
}

//  Ask the instance's host (type, body) and answer the caller with what it
//  says, once it does: the handler returns at once (call->deferred).
static zv_status_t
s_relay_to_host (zv_conductor_t *self, zv_conductor_call_t *call, const json_t *rec, const char *type, json_t *body,
                 char *errbuf, size_t errlen)
{
    const char *host = s_str (rec, "host");
    if (!host || !*host || json_is_true (json_object_get (rec, "deleted"))) {
        snprintf (errbuf, errlen, "Instance %s is on no host.", s_str (rec, "uuid"));
        json_decref (body);
        return ZV_ECONFLICT;
    }
    return zv_conductor_relay (self, call, host, type, body, 10000);
}

//  conductor.console_log: the tail of the guest's serial console log.
zv_status_t
zv_conductor_console_log (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                          char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    status = s_relay_to_host (self, call, rec, "compute.console_log",
                              json_pack ("{s:s, s:I}", "uuid", s_str (rec, "uuid"),
                                         "lines", (json_int_t) zv_msg_get_int (call->msg, "lines", 50)),
                              errbuf, errlen);
    json_decref (rec);
    return status;
}

//  conductor.server_screenshot: the guest's screen as PNG (payload).
zv_status_t
zv_conductor_server_screenshot (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                char *errbuf, size_t errlen)
{
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    if (strcmp (s_str (rec, "power_state"), "running") != 0 && strcmp (s_str (rec, "power_state"), "paused") != 0) {
        snprintf (errbuf, errlen, "Instance %s is not running (power state %s): it has no screen.",
                  s_str (rec, "uuid"), s_str (rec, "power_state"));
        json_decref (rec);
        return ZV_ECONFLICT;
    }
    status = s_relay_to_host (self, call, rec, "compute.screenshot",
                              json_pack ("{s:s}", "uuid", s_str (rec, "uuid")), errbuf, errlen);
    json_decref (rec);
    return status;
}

//  ---------------------------------------------------------------------
//  Tokens

//  Tokens are stored by their sha256 only: the store never holds one that
//  could open a console.
static void
s_token_key (const char *token, char key [65])
{
    unsigned char digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, (const unsigned char *) token, strlen (token));
    sodium_bin2hex (key, 65, digest, sizeof digest);
}

typedef struct {
    const char *uuid;               //  tokens of this instance (NULL: expired ones)
    int64_t now_ms;
    json_t *keys;
} s_tokens_t;

static bool
s_token_visit (const char *key, json_t *rec, void *arg)
{
    s_tokens_t *tokens = (s_tokens_t *) arg;
    if (tokens->uuid ? streq (s_str (rec, "instance_uuid") ? s_str (rec, "instance_uuid") : "", tokens->uuid)
                     : s_int (rec, "expires_ms") <= tokens->now_ms)
        json_array_append_new (tokens->keys, json_string (key));
    return true;
}

//  Revoke an instance's console tokens (delete), or every expired one.
void
zv_conductor_tokens_revoke (zv_txn_t *txn, const char *uuid)
{
    s_tokens_t tokens = { uuid, zv_now_ms (), json_array () };
    zv_store_scan (txn, ZV_TABLE_CONSOLE_TOKENS, "", s_token_visit, &tokens);
    size_t index;
    json_t *key;
    json_array_foreach (tokens.keys, index, key)
        zv_store_del (txn, ZV_TABLE_CONSOLE_TOKENS, json_string_value (key));
    json_decref (tokens.keys);
}

//  conductor.console_url: a console token for one instance and kind, and
//  the URL that carries it (Nova's remote console).
zv_status_t
zv_conductor_console_url_check (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                char *errbuf, size_t errlen)
{
    (void) self;
    (void) txn;
    const char *kind = zv_msg_get_str (call->msg, "kind") ? zv_msg_get_str (call->msg, "kind") : "novnc";
    if (!streq (kind, "novnc") && !streq (kind, "serial")) {
        snprintf (errbuf, errlen, "Unsupported console type '%s' (novnc, serial).", kind);
        return ZV_EINVAL;
    }
    return ZV_OK;
}

zv_status_t
zv_conductor_console_url (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                          char *errbuf, size_t errlen)
{
    const char *kind = zv_msg_get_str (call->msg, "kind") ? zv_msg_get_str (call->msg, "kind") : "novnc";
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find_server (self, txn, call, &rec, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *uuid = s_str (rec, "uuid");
    const json_t *console = json_object_get (json_object_get (rec, "console"), streq (kind, "novnc") ? "vnc" : "serial");
    const char *host = s_str (console, "host");
    json_int_t port = json_integer_value (json_object_get (console, "port"));
    const char *task = s_str (rec, "task_state");
    if (json_is_true (json_object_get (rec, "deleted")) || (task && streq (task, "deleting"))) {
        snprintf (errbuf, errlen, "Instance %s is being deleted: it has no console.", uuid);
        status = ZV_ECONFLICT;
    }
    else
    if (!host || port <= 0 || strcmp (s_str (rec, "power_state"), "running") != 0) {
        snprintf (errbuf, errlen, "Guest of instance %s has no %s console available (it must run on a "
                  "hypervisor with consoles).", uuid, kind);
        status = ZV_ECONFLICT;
    }
    if (status == ZV_OK) {
        unsigned char random [32];
        char token [65], key [65], now [32], until [32];
        randombytes_buf (random, sizeof random);
        sodium_bin2hex (token, sizeof token, random, sizeof random);
        s_token_key (token, key);
        int64_t expires_ms = zv_now_ms () + (int64_t) self->cfg.token_ttl_s * 1000;
        json_t *record = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "instance_uuid", uuid,
                                    "kind", kind, "host", host, "compute", s_str (rec, "host"),
                                    "port", port, "expires_ms", (json_int_t) expires_ms,
                                    "created_at", s_iso_now (now), "expires_at", zv_iso8601 (expires_ms, until));
        status = zv_store_put (txn, ZV_TABLE_CONSOLE_TOKENS, key, record);
        char url [1400];
        if (streq (kind, "novnc"))
            snprintf (url, sizeof url, "%s%spath=websockify%%3Ftoken%%3D%s", self->cfg.novncproxy_base_url,
                      strchr (self->cfg.novncproxy_base_url, '?') ? "&" : "?", token);
        else
            snprintf (url, sizeof url, "%s%stoken=%s", self->cfg.serial_base_url,
                      strchr (self->cfg.serial_base_url, '?') ? "&" : "?", token);
        if (status == ZV_OK) {
            call->reply = json_pack ("{s:{s:s, s:s, s:s, s:O}}", "console", "type", kind,
                                     "protocol", streq (kind, "novnc") ? "vnc" : "serial", "url", url,
                                     "expires_at", json_object_get (record, "expires_at"));
            zv_info (ACTOR, zv_msg_rq (call->msg), "console %s of %s: token %.8s... until %s", kind, uuid,
                     token, s_str (record, "expires_at"));
        }
        sodium_memzero (token, sizeof token);
        json_decref (record);
    }
    json_decref (rec);
    return status;
}

//  conductor.console_authorize: the console proxy asks whether a token
//  opens a console, and where.  A token dies with its instance, when its
//  instance leaves the host it was made for, and when it expires.
zv_status_t
zv_conductor_console_authorize (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                                char *errbuf, size_t errlen)
{
    (void) self;
    char key [65];
    s_token_key (zv_msg_get_str (call->msg, "token"), key);
    json_t *token = NULL, *rec = NULL;
    zv_status_t status = ZV_OK;
    if (zv_store_get (txn, ZV_TABLE_CONSOLE_TOKENS, key, &token) != ZV_OK) {
        snprintf (errbuf, errlen, "Invalid or expired console token.");
        return ZV_ENOTFOUND;
    }
    const char *uuid = s_str (token, "instance_uuid");
    if (s_int (token, "expires_ms") <= zv_now_ms ()) {
        snprintf (errbuf, errlen, "Invalid or expired console token.");
        status = ZV_ENOTFOUND;
    }
    else
    if (zv_store_get (txn, ZV_TABLE_INSTANCES, uuid, &rec) != ZV_OK
    ||  json_is_true (json_object_get (rec, "deleted"))
    ||  !s_str (rec, "host") || !streq (s_str (rec, "host"), s_str (token, "compute") ? s_str (token, "compute") : "")) {
        snprintf (errbuf, errlen, "Invalid or expired console token (its instance is gone or has moved).");
        status = ZV_ENOTFOUND;
    }
    if (status == ZV_OK)
        call->reply = json_pack ("{s:s, s:O, s:O, s:O, s:O}", "instance_uuid", uuid,
                                 "kind", json_object_get (token, "kind"), "host", json_object_get (token, "host"),
                                 "port", json_object_get (token, "port"),
                                 "expires_at", json_object_get (token, "expires_at"));
    else {
        //  A dead token goes; the refusal is the answer (kept: ZV_OK).
        zv_store_del (txn, ZV_TABLE_CONSOLE_TOKENS, key);
        call->error = status;
        snprintf (call->errtext, sizeof call->errtext, "%s", errbuf);
        status = ZV_OK;
    }
    json_decref (token);
    json_decref (rec);
    return status;
}
