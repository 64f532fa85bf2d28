/*  consoles.c: a server's consoles in the zova CLI.

    console url show asks for a token-bearing URL (Nova's remote console:
    noVNC by default, or with --serial a WebSocket onto the serial port);
    console log show prints the guest's serial output as it is, its last
    --lines lines (50 by default).  server screenshot is a server command
    and lives in servers.c.                                               */

#include <czmq.h>
#include <jansson.h>

#include <stdio.h>
#include <string.h>

#include "cmd/zova/zova.h"

//  console url show [--novnc|--serial] REF: a token-bearing URL (Nova's
//  remote console).
int
zv_cli_cmd_console_url (cli_t *cli)
{
    if (zv_cli_opt_flag (cli, "novnc") && zv_cli_opt_flag (cli, "serial")) {
        zv_cli_fail ("console url show takes one of --novnc and --serial");
        return ZOVA_EXIT_USAGE;
    }
    json_t *body = zv_cli_body_str ("ref", cli->args [0]);
    json_object_set_new (body, "kind", json_string (zv_cli_opt_flag (cli, "serial") ? "serial" : "novnc"));
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *console = zv_cli_reply_member (reply, "console", false, cli->cmd->type);
    int rc = console ? zv_cli_print_show (cli, NULL, console) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}

//  console log show [--lines N] REF: the guest's serial output, as it is.
int
zv_cli_cmd_console_log (cli_t *cli)
{
    json_t *body = zv_cli_body_str ("ref", cli->args [0]);
    json_object_set_new (body, "lines", json_integer (zv_cli_opt_int (cli, "lines", 50)));
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    const char *output = json_string_value (json_object_get (reply, "output"));
    int rc = ZOVA_EXIT_OK;
    if (!output) {
        zv_cli_fail ("malformed reply to %s: no output", cli->cmd->type);
        rc = ZOVA_EXIT_FAIL;
    }
    else
    if (cli->json)
        rc = zv_cli_print_json (reply) ? ZOVA_EXIT_FAIL : ZOVA_EXIT_OK;
    else
    if (fwrite (output, 1, strlen (output), stdout) != strlen (output) || fflush (stdout) != 0)
        rc = ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}
