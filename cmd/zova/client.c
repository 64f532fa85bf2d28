/*  client.c: the zova CLI's link to the api, and the command's options.

    Single threaded: one DEALER socket connected to the api endpoint on the
    first request, and one poller on it.  Every request is a zv_msg with src
    "cli" and a deadline; its reply is matched by "re" == the request's id,
    and anything else that arrives (a late answer to a request we already
    gave up on) is dropped.  Nothing ever waits without a deadline, so a
    missing daemon is a clean error after --timeout seconds, never a hang.
    Independent requests (polling many servers, deleting several) are
    pipelined through a window of ZOVA_WINDOW requests, so neither side's
    high-water mark drops messages.  Errors are reported here, once, where
    they are found: callers see NULL or -1 and only pass it on.           */

#include <czmq.h>
#include <jansson.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/zv_common.h"
#include "proto/zv_msg.h"
#include "cmd/zova/zova.h"

//  Requests in flight at once: far below ZeroMQ's default HWM of 1000, so
//  the api's ROUTER never has to drop a reply to us.
#define ZOVA_WINDOW             256


//  ---------------------------------------------------------------------
//  Talking to the api

void
zv_cli_no_answer (const cli_t *cli)
{
    zv_cli_fail ("no answer from the api at %s within %g s (is zovad running?)",
                 cli->endpoint, cli->timeout_s);
}

//  A failed reply in one line: the api's message, or the status name.
void
zv_cli_report_error (const zv_msg_t *reply)
{
    const char *text = zv_msg_error_text (reply);
    zv_cli_fail ("%s", text && *text ? text : zv_status_name (zv_msg_status (reply)));
}

int
zv_cli_connect (cli_t *cli)
{
    if (cli->sock)
        return 0;
    cli->sock = zsock_new (ZMQ_DEALER);
    if (!cli->sock) {
        zv_cli_fail ("cannot create a socket: %s", zmq_strerror (zmq_errno ()));
        return -1;
    }
    //  Unsent requests die with the process, and a send never blocks past
    //  the timeout even if every queue is full.
    zsock_set_linger (cli->sock, 0);
    zsock_set_sndtimeo (cli->sock, cli->timeout_ms);
    if (zsock_connect (cli->sock, "%s", cli->endpoint)) {
        zv_cli_fail ("cannot connect to '%s': %s", cli->endpoint, zmq_strerror (zmq_errno ()));
        return -1;
    }
    cli->poller = zpoller_new (cli->sock, NULL);
    if (!cli->poller) {
        zv_cli_fail ("cannot poll the api socket: %s", zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

//  Send one request.  Takes ownership of *body_p.  Returns its message id
//  (caller frees), or NULL after reporting why.
char *
zv_cli_send (cli_t *cli, const char *type, json_t **body_p, const void *payload, size_t size)
{
    zv_msg_t *msg = zv_msg_new (type);
    if (!msg) {
        json_decref (*body_p);
        *body_p = NULL;
        zv_cli_fail ("cannot build a '%s' request", type);
        return NULL;
    }
    zv_msg_set_src (msg, "cli");
    zv_msg_set_deadline (msg, zv_now_ms () + cli->timeout_ms);
    if (*body_p)
        zv_msg_set_body (msg, body_p);
    if (payload)
        zv_msg_set_payload (msg, payload, size);
    char *id = strdup (zv_msg_id (msg));
    if (!id)
        zv_cli_out_of_memory ();
    if (zv_msg_send (&msg, cli->sock)) {
        if (errno == EAGAIN)
            zv_cli_no_answer (cli);
        else
            zv_cli_fail ("cannot send to the api at %s: %s", cli->endpoint, zmq_strerror (errno));
        free (id);
        return NULL;
    }
    return id;
}

//  Next message from the api before deadline (monotonic ms), or NULL when
//  the deadline passed.  A poll woken by a stray signal just polls again.
zv_msg_t *
zv_cli_recv_until (cli_t *cli, int64_t deadline)
{
    while (true) {
        int64_t left = deadline - zv_mono_ms ();
        if (left < 0)
            left = 0;
        if (zpoller_wait (cli->poller, (int) left)) {
            zv_msg_t *msg = zv_msg_recv (cli->sock);
            if (msg)
                return msg;
        }
        if (left == 0)
            return NULL;
    }
}

//  Let time pass until deadline, dropping whatever arrives meanwhile (late
//  answers to requests already given up on).
void
zv_cli_idle (cli_t *cli, int64_t deadline)
{
    zv_msg_t *msg;
    while (zv_mono_ms () < deadline && (msg = zv_cli_recv_until (cli, deadline)))
        zv_msg_destroy (&msg);
}

//  A message that failed to decode carries no usable "re", so it cannot be
//  matched; but with every request of this process answered in turn, it is
//  almost surely the answer we wait for (say, a reply over the size limit).
//  Saying why beats waiting out the timeout.  When true, *msg_p is
//  destroyed and nulled.
bool
zv_cli_unreadable (zv_msg_t **msg_p)
{
    if (zv_msg_re (*msg_p) || zv_msg_status (*msg_p) == ZV_OK)
        return false;
    zv_cli_fail ("unreadable answer from the api: %s", zv_msg_error_text (*msg_p));
    zv_msg_destroy (msg_p);
    return true;
}

//  One request, one reply.  Takes ownership of *body_p.  Returns the reply
//  (caller owns; it may carry an error status) or NULL after reporting a
//  transport failure or a timeout.
static zv_msg_t *
s_rpc (cli_t *cli, const char *type, json_t **body_p, const void *payload, size_t size)
{
    if (zv_cli_connect (cli)) {
        json_decref (*body_p);
        *body_p = NULL;
        return NULL;
    }
    char *id = zv_cli_send (cli, type, body_p, payload, size);
    if (!id)
        return NULL;
    int64_t deadline = zv_mono_ms () + cli->timeout_ms;
    zv_msg_t *reply = NULL;
    while (!reply) {
        zv_msg_t *msg = zv_cli_recv_until (cli, deadline);
        if (!msg) {
            zv_cli_no_answer (cli);
            break;
        }
        const char *re = zv_msg_re (msg);
        if (re && streq (re, id))
            reply = msg;
        else
        if (zv_cli_unreadable (&msg))
            break;
        else
            zv_msg_destroy (&msg);
    }
    free (id);
    return reply;
}

//  One request; its successful reply (caller owns), or NULL after
//  reporting the error.  Takes ownership of body.
zv_msg_t *
zv_cli_call_reply (cli_t *cli, const char *type, json_t *body)
{
    zv_msg_t *reply = s_rpc (cli, type, &body, NULL, 0);
    if (reply && zv_msg_status (reply) != ZV_OK) {
        zv_cli_report_error (reply);
        zv_msg_destroy (&reply);
    }
    return reply;
}

//  The body of a successful reply (caller owns), or NULL after reporting
//  that it has none.  Destroys *reply_p.
json_t *
zv_cli_reply_body (zv_msg_t **reply_p, const char *type)
{
    json_t *result = NULL;
    if (!zv_msg_body (*reply_p))
        zv_cli_fail ("empty reply to %s", type);
    else
        result = json_incref (zv_msg_body (*reply_p));
    zv_msg_destroy (reply_p);
    return result;
}

//  One request; the body of its successful reply (caller owns), or NULL
//  after reporting the error.  Takes ownership of body.
json_t *
zv_cli_call (cli_t *cli, const char *type, json_t *body)
{
    zv_msg_t *reply = zv_cli_call_reply (cli, type, body);
    return reply ? zv_cli_reply_body (&reply, type) : NULL;
}

//  Pipelined requests of one type.  make (ctx, i) builds the body of
//  request i (ownership passes to the batch); on_reply (ctx, i, reply) sees
//  its reply (borrowed).  At most ZOVA_WINDOW are in flight; the batch gives
//  up when no awaited reply arrives for a whole timeout.  0 when every
//  reply came, -1 after reporting why not.
int
zv_cli_batch (cli_t *cli, const char *type, size_t count,
              batch_make_fn *make, batch_reply_fn *on_reply, void *ctx)
{
    if (zv_cli_connect (cli))
        return -1;
    json_t *pending = json_object ();       //  message id -> request index
    if (!pending)
        zv_cli_out_of_memory ();
    size_t sent = 0, answered = 0;
    int rc = 0;
    int64_t deadline = zv_mono_ms () + cli->timeout_ms;
    while (answered < count) {
        while (sent < count && json_object_size (pending) < ZOVA_WINDOW) {
            json_t *body = make (ctx, sent);
            char *id = zv_cli_send (cli, type, &body, NULL, 0);
            if (!id) {
                rc = -1;
                goto cleanup;
            }
            json_object_set_new (pending, id, json_integer ((json_int_t) sent));
            free (id);
            sent++;
        }
        zv_msg_t *reply = zv_cli_recv_until (cli, deadline);
        if (!reply) {
            zv_cli_no_answer (cli);
            rc = -1;
            goto cleanup;
        }
        if (zv_cli_unreadable (&reply)) {
            rc = -1;
            goto cleanup;
        }
        const char *re = zv_msg_re (reply);
        json_t *slot = re ? json_object_get (pending, re) : NULL;
        if (slot) {
            size_t idx = (size_t) json_integer_value (slot);
            json_object_del (pending, re);
            on_reply (ctx, idx, reply);
            answered++;
            deadline = zv_mono_ms () + cli->timeout_ms;
        }
        zv_msg_destroy (&reply);
    }
cleanup:
    json_decref (pending);
    return rc;
}


//  ---------------------------------------------------------------------
//  Options of the command being run

json_t *
zv_cli_opt (const cli_t *cli, const char *name)
{
    return json_object_get (cli->opts, name);
}

bool
zv_cli_opt_flag (const cli_t *cli, const char *name)
{
    return json_is_true (zv_cli_opt (cli, name));
}

int64_t
zv_cli_opt_int (const cli_t *cli, const char *name, int64_t dflt)
{
    json_t *value = zv_cli_opt (cli, name);
    return json_is_integer (value) ? json_integer_value (value) : dflt;
}

//  The request body that the command's options fill, by their body_key.
json_t *
zv_cli_body_from_opts (const cli_t *cli)
{
    json_t *body = json_object ();
    if (!body)
        zv_cli_out_of_memory ();
    for (const opt_spec_t *spec = cli->cmd->opts; spec && spec->name; spec++) {
        json_t *value = zv_cli_opt (cli, spec->name);
        if (spec->body_key && value)
            json_object_set (body, spec->body_key, value);
    }
    return body;
}

//  A body {key: value} for one positional argument.
json_t *
zv_cli_body_str (const char *key, const char *value)
{
    json_t *body = json_pack ("{s:s}", key, value);
    if (!body)
        zv_cli_out_of_memory ();
    return body;
}
