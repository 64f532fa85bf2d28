/*  records.c: the zova CLI's handlers that every kind of record shares.

    list, show, delete, create, set and ping know nothing of a kind of
    record: the command's row gives the request type and the resource
    (reply keys, columns, flat form), and the options fill the request body
    by their body_key.  A command needs a handler of its own only when it
    does more than that.  delete sends one request per ref, pipelined, and
    with --wait (servers) polls until every one is gone.                  */

#include <czmq.h>
#include <jansson.h>

#include <inttypes.h>
#include <stdlib.h>

#include "common/zv_common.h"
#include "proto/zv_msg.h"
#include "cmd/zova/zova.h"

//  X list [options]: the options fill the request; the records come back
//  as a table (the wider one with --long) or as JSON.
int
zv_cli_cmd_list (cli_t *cli)
{
    const resource_t *res = cli->cmd->resource;
    zv_msg_t *msg = zv_cli_call_reply (cli, cli->cmd->type, zv_cli_body_from_opts (cli));
    if (!msg)
        return ZOVA_EXIT_FAIL;
    //  -f json straight from the body's bytes when the resource can; the
    //  tree below is the fallback for any body the fast path refuses.
    size_t size;
    const void *bytes = zv_msg_body_bytes (msg, &size);
    if (cli->json && res->json_list && bytes) {
        strbuf_t out = { 0 };
        int fast = res->json_list (&out, bytes, size);
        int written = fast == 0 ? zv_cli_buf_write (&out) : 0;
        zv_cli_buf_free (&out);
        if (fast == 0) {
            zv_msg_destroy (&msg);
            return written ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
        }
    }
    json_t *reply = zv_cli_reply_body (&msg, cli->cmd->type);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *records = zv_cli_reply_member (reply, res->many, true, cli->cmd->type);
    int rc = records ? zv_cli_print_list (cli, res, records) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  X show REF: one record, by id or name.
int
zv_cli_cmd_show (cli_t *cli)
{
    const resource_t *res = cli->cmd->resource;
    json_t *reply = zv_cli_call (cli, cli->cmd->type, zv_cli_body_str ("ref", cli->args [0]));
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *record = zv_cli_reply_member (reply, res->one, false, cli->cmd->type);
    int rc = record ? zv_cli_print_show (cli, res, record) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  server event list: the events of one server, a list keyed by a ref.
int
zv_cli_cmd_list_of (cli_t *cli)
{
    const resource_t *res = cli->cmd->resource;
    json_t *reply = zv_cli_call (cli, cli->cmd->type, zv_cli_body_str ("ref", cli->args [0]));
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *records = zv_cli_reply_member (reply, res->many, true, cli->cmd->type);
    int rc = records ? zv_cli_print_list (cli, res, records) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  Send body (taking ownership) and show the record the reply carries.
int
zv_cli_call_show (cli_t *cli, json_t *body)
{
    const resource_t *res = cli->cmd->resource;
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *record = zv_cli_reply_member (reply, res->one, false, cli->cmd->type);
    int rc = record ? zv_cli_print_show (cli, res, record) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  aggregate create: the options' fields and the name.
int
zv_cli_cmd_create (cli_t *cli)
{
    json_t *body = zv_cli_body_from_opts (cli);
    json_object_set_new (body, "name", json_string (cli->args [0]));
    return zv_cli_call_show (cli, body);
}

//  flavor/aggregate set and unset: the options' fields on the record REF.
//  Unset is the same request with null values (OPT_KEYS), so the
//  properties map is always sent, empty when only other fields change.
int
zv_cli_cmd_set (cli_t *cli)
{
    json_t *body = zv_cli_body_from_opts (cli);
    json_object_set_new (body, "ref", json_string (cli->args [0]));
    if (!json_object_get (body, "properties"))
        json_object_set_new (body, "properties", json_object ());
    return zv_cli_call_show (cli, body);
}

typedef struct {
    cli_t *cli;
    size_t failures;
    json_t *deleted;        //  records (or refs) of what was deleted, in order
} deleter_t;

static json_t *
s_delete_make (void *ctx, size_t idx)
{
    deleter_t *self = ctx;
    return zv_cli_body_str ("ref", self->cli->args [idx]);
}

static void
s_delete_reply (void *ctx, size_t idx, zv_msg_t *reply)
{
    deleter_t *self = ctx;
    if (zv_msg_status (reply) != ZV_OK) {
        zv_cli_report_error (reply);
        self->failures++;
        return;
    }
    //  Keep what --wait will poll: the record when the api returned one.
    json_t *record = json_object_get (zv_msg_body (reply), self->cli->cmd->resource->one);
    if (json_is_object (record) && json_is_string (json_object_get (record, "id")))
        json_array_append (self->deleted, record);
    else
        json_array_append_new (self->deleted,
                               json_pack ("{s:s}", "id", self->cli->args [idx]));
}

//  flavor/image/server delete REF...: every ref is tried; any failure makes
//  the exit status 1, as with the openstack client.
int
zv_cli_cmd_delete (cli_t *cli)
{
    const resource_t *res = cli->cmd->resource;
    deleter_t deleter = { .cli = cli, .deleted = json_array () };
    if (!deleter.deleted)
        zv_cli_out_of_memory ();
    int rc = ZOVA_EXIT_OK;
    if (zv_cli_batch (cli, cli->cmd->type, cli->nargs, s_delete_make, s_delete_reply, &deleter)) {
        rc = ZOVA_EXIT_FAIL;
        goto cleanup;
    }
    if (deleter.failures) {
        if (cli->nargs > 1)
            zv_cli_fail ("%zu of %zu %ss failed to delete", deleter.failures, cli->nargs, res->name);
        rc = ZOVA_EXIT_FAIL;
    }
    if (zv_cli_opt_flag (cli, "wait") && json_array_size (deleter.deleted)) {
        waiter_t waiter;
        zv_cli_waiter_init (&waiter, deleter.deleted, true);
        int64_t wait_s = zv_cli_opt_int (cli, "wait-timeout", ZOVA_DEFAULT_WAIT_S);
        size_t left = 0;
        int waited = zv_cli_wait_servers (cli, &waiter, wait_s, &left);
        if (waited == 1)
            zv_cli_fail ("timed out after %" PRId64 " s waiting for %zu of %zu servers to be deleted",
                         wait_s, left, json_array_size (deleter.deleted));
        if (waited)
            rc = ZOVA_EXIT_FAIL;
        zv_cli_waiter_free (&waiter);
    }
cleanup:
    json_decref (deleter.deleted);
    return rc;
}

int
zv_cli_cmd_ping (cli_t *cli)
{
    json_t *reply = zv_cli_call (cli, cli->cmd->type, json_object ());
    if (!reply)
        return ZOVA_EXIT_FAIL;
    int rc = zv_cli_print_show (cli, NULL, reply);
    json_decref (reply);
    return rc;
}
