/*  boot_client.c: boots (or deletes) servers through zova's api socket and
    times each one from its request to the moment it is seen done.

        boot_client create --endpoint EP --flavor F --image I --count N
                           [--window W] [--multi] [--label L] [--poll-ms MS]
                           [--uuids-out FILE] [--timeout S]
                           [--availability-zone AZ]
        boot_client delete --endpoint EP --uuids FILE [--window W] [--label L]
                           [--poll-ms MS] [--timeout S]

    One thread, one DEALER to the api, exactly as the CLI talks to it (the
    same zv_msg requests).  create sends api.server_create with max_count 1,
    keeping W requests in flight (--multi: one request with min = max = N,
    what `zova server create --min N --max N` sends).  Meanwhile it polls
    api.server_list every poll-ms, one list in flight at a time, filtered on
    status BUILD: a server whose create was answered before the list was sent
    and that is no longer BUILD has finished (the final full list checks it
    is ACTIVE, counting errors).  delete sends api.server_delete per uuid and
    polls the unfiltered list until none of them is there.  Only servers
    whose request was answered before a list was sent are judged by that
    list, so a server can never look finished before it exists.
    --availability-zone goes into every create as the CLI's option does
    (nova:HOST puts the servers on one host).

    Figures (prefixed by the label): rate_servers_per_s (servers / span from
    the first request sent to the last server seen done), p50_ms and p99_ms
    of per-server request-to-done times, errors.  A per-server time includes
    up to one poll interval of observation delay.                          */

#include <czmq.h>
#include <getopt.h>
#include "proto/zv_msg.h"
#include "zv_bench.h"

typedef struct {
    bool deleting;
    const char *endpoint, *flavor, *image, *label, *uuids_in, *uuids_out, *zone;
    int count, window, poll_ms, timeout_s;
    bool multi;
} s_opts_t;

typedef struct {
    s_opts_t opts;
    zsock_t *sock;
    zpoller_t *poller;
    char (*uuid) [ZV_UUID_LEN + 1];
    int64_t *sent_us;
    int64_t *done_us;
    bool *failed;
    int *answered;                  //  indices in the order their request was answered
    int answered_count;
    int sent_count;                 //  requests sent (servers covered, for --multi: all)
    int in_flight;
    int done_count;
    int errors;
    zhashx_t *requests;             //  message id -> index + 1 (multi: 1)
    char list_id [80];              //  list in flight, "" when none
    int list_snapshot;              //  answered_count when that list was sent
    int64_t next_list_us;
} s_client_t;

static void
s_usage (void)
{
    fprintf (stderr, "usage: boot_client create --endpoint EP --flavor F --image I --count N\n"
                     "                          [--window W] [--multi] [--label L] [--poll-ms MS]\n"
                     "                          [--uuids-out FILE] [--timeout S] [--availability-zone AZ]\n"
                     "       boot_client delete --endpoint EP --uuids FILE [--window W] [--label L]\n"
                     "                          [--poll-ms MS] [--timeout S]\n");
    exit (2);
}

static void
s_send (s_client_t *self, const char *type, json_t *body, int index)
{
    zv_msg_t *msg = zv_msg_new (type);
    zv_msg_set_src (msg, "bench");
    zv_msg_set_body (msg, &body);
    if (index >= 0)
        zhashx_insert (self->requests, zv_msg_id (msg), (void *) (intptr_t) (index + 1));
    else
        snprintf (self->list_id, sizeof self->list_id, "%s", zv_msg_id (msg));
    if (zv_msg_send (&msg, self->sock) != 0) {
        fprintf (stderr, "boot_client: cannot send %s: %s\n", type, zmq_strerror (errno));
        exit (1);
    }
}

//  A create's body with the zone asked for, if any.
static json_t *
s_zoned (s_client_t *self, json_t *body)
{
    if (self->opts.zone)
        json_object_set_new (body, "availability_zone", json_string (self->opts.zone));
    return body;
}

static void
s_send_next (s_client_t *self)
{
    int index = self->sent_count;
    self->sent_us [index] = zv_bench_us ();
    if (self->opts.deleting)
        s_send (self, "api.server_delete", json_pack ("{s:s}", "ref", self->uuid [index]), index);
    else
    if (self->opts.multi) {
        for (int other = 1; other < self->opts.count; other++)
            self->sent_us [other] = self->sent_us [0];
        s_send (self, "api.server_create",
                s_zoned (self, json_pack ("{s:s, s:s, s:s, s:i, s:i}", "name", self->opts.label,
                                          "flavor", self->opts.flavor, "image", self->opts.image,
                                          "min_count", self->opts.count, "max_count", self->opts.count)), 0);
        self->sent_count = self->opts.count;
        self->in_flight++;
        return;
    }
    else {
        char name [128];
        snprintf (name, sizeof name, "%s-%d", self->opts.label, index + 1);
        s_send (self, "api.server_create",
                s_zoned (self, json_pack ("{s:s, s:s, s:s, s:i}", "name", name, "flavor", self->opts.flavor,
                                          "image", self->opts.image, "max_count", 1)), index);
    }
    self->sent_count++;
    self->in_flight++;
}

static void
s_finish (s_client_t *self, int index, bool failed)
{
    if (self->done_us [index])
        return;
    self->done_us [index] = zv_bench_us ();
    self->failed [index] = failed;
    self->done_count++;
    if (failed)
        self->errors++;
}

static void
s_on_request_reply (s_client_t *self, zv_msg_t *reply, int first)
{
    self->in_flight--;
    if (zv_msg_status (reply) != ZV_OK) {
        fprintf (stderr, "boot_client: request refused: %s\n", zv_msg_error_text (reply));
        int last = self->opts.multi && !self->opts.deleting ? self->opts.count : first + 1;
        for (int index = first; index < last; index++)
            s_finish (self, index, true);
        return;
    }
    if (self->opts.deleting) {
        self->answered [self->answered_count++] = first;
        return;
    }
    json_t *servers = json_object_get (zv_msg_body (reply), "servers");
    size_t at;
    json_t *server;
    json_array_foreach (servers, at, server) {
        int index = first + (int) at;
        if (index >= self->opts.count)
            break;
        const char *uuid = json_string_value (json_object_get (server, "id"));
        snprintf (self->uuid [index], sizeof self->uuid [index], "%s", uuid ? uuid : "");
        self->answered [self->answered_count++] = index;
    }
}

static void
s_on_list_reply (s_client_t *self, zv_msg_t *reply)
{
    self->list_id [0] = 0;
    if (zv_msg_status (reply) != ZV_OK) {
        fprintf (stderr, "boot_client: server list refused: %s\n", zv_msg_error_text (reply));
        return;
    }
    zhashx_t *pending = zhashx_new ();
    json_t *servers = json_object_get (zv_msg_body (reply), "servers");
    size_t at;
    json_t *server;
    json_array_foreach (servers, at, server) {
        const char *uuid = json_string_value (json_object_get (server, "id"));
        if (uuid)
            zhashx_insert (pending, uuid, (void *) 1);
    }
    for (int order = 0; order < self->list_snapshot; order++) {
        int index = self->answered [order];
        if (!self->done_us [index] && !zhashx_lookup (pending, self->uuid [index]))
            s_finish (self, index, false);
    }
    zhashx_destroy (&pending);
}

static void
s_send_list (s_client_t *self)
{
    json_t *body = self->opts.deleting ? json_object () : json_pack ("{s:s}", "status", "BUILD");
    self->list_snapshot = self->answered_count;
    s_send (self, "api.server_list", body, -1);
}

//  One full list at the end: every created server must be ACTIVE.
static void
s_verify_active (s_client_t *self)
{
    zv_msg_t *reply = NULL;
    zsock_t *which;
    json_t *body = json_object ();
    s_send (self, "api.server_list", body, -1);
    char want [80];
    snprintf (want, sizeof want, "%s", self->list_id);
    while ((which = (zsock_t *) zpoller_wait (self->poller, 60000))) {
        reply = zv_msg_recv (which);
        if (reply && zv_msg_re (reply) && streq (zv_msg_re (reply), want))
            break;
        zv_msg_destroy (&reply);
    }
    if (!reply || zv_msg_status (reply) != ZV_OK) {
        fprintf (stderr, "boot_client: final list failed: %s\n", reply ? zv_msg_error_text (reply) : "no answer");
        zv_msg_destroy (&reply);
        return;
    }
    zhashx_t *active = zhashx_new ();
    json_t *servers = json_object_get (zv_msg_body (reply), "servers");
    size_t at;
    json_t *server;
    json_array_foreach (servers, at, server) {
        const char *status = json_string_value (json_object_get (server, "status"));
        const char *uuid = json_string_value (json_object_get (server, "id"));
        if (uuid && status && streq (status, "ACTIVE"))
            zhashx_insert (active, uuid, (void *) 1);
    }
    for (int index = 0; index < self->opts.count; index++)
        if (!self->failed [index] && !zhashx_lookup (active, self->uuid [index])) {
            self->failed [index] = true;
            self->errors++;
        }
    zhashx_destroy (&active);
    zv_msg_destroy (&reply);
}

static void
s_parse (int argc, char *argv [], s_opts_t *opts)
{
    memset (opts, 0, sizeof *opts);
    opts->window = 50;
    opts->poll_ms = 20;
    opts->timeout_s = 120;
    opts->label = "boot";
    if (argc < 2)
        s_usage ();
    if (streq (argv [1], "delete"))
        opts->deleting = true;
    else
    if (!streq (argv [1], "create"))
        s_usage ();
    static const struct option options [] = {
        { "endpoint", required_argument, NULL, 'e' }, { "flavor", required_argument, NULL, 'f' },
        { "image", required_argument, NULL, 'i' },    { "count", required_argument, NULL, 'n' },
        { "window", required_argument, NULL, 'w' },   { "multi", no_argument, NULL, 'm' },
        { "label", required_argument, NULL, 'l' },    { "poll-ms", required_argument, NULL, 'p' },
        { "uuids-out", required_argument, NULL, 'o' }, { "uuids", required_argument, NULL, 'u' },
        { "timeout", required_argument, NULL, 't' },  { "availability-zone", required_argument, NULL, 'z' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    optind = 2;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 'e': opts->endpoint = optarg; break;
            case 'f': opts->flavor = optarg; break;
            case 'i': opts->image = optarg; break;
            case 'n': opts->count = atoi (optarg); break;
            case 'w': opts->window = atoi (optarg); break;
            case 'm': opts->multi = true; break;
            case 'l': opts->label = optarg; break;
            case 'p': opts->poll_ms = atoi (optarg); break;
            case 'o': opts->uuids_out = optarg; break;
            case 'u': opts->uuids_in = optarg; break;
            case 't': opts->timeout_s = atoi (optarg); break;
            case 'z': opts->zone = optarg; break;
            default: s_usage ();
        }
    }
    if (!opts->endpoint || opts->window < 1 || opts->poll_ms < 1)
        s_usage ();
    if (!opts->deleting && (!opts->flavor || !opts->image || opts->count < 1))
        s_usage ();
    if (opts->deleting && !opts->uuids_in)
        s_usage ();
}

//  Read one uuid a line; returns the count.
static int
s_read_uuids (const char *path, char (**uuid_p) [ZV_UUID_LEN + 1])
{
    FILE *file = fopen (path, "r");
    if (!file) {
        fprintf (stderr, "boot_client: cannot read %s\n", path);
        exit (1);
    }
    int count = 0, size = 1024;
    char (*uuid) [ZV_UUID_LEN + 1] = malloc ((size_t) size * sizeof *uuid);
    char line [128];
    while (fgets (line, sizeof line, file)) {
        line [strcspn (line, "\r\n")] = 0;
        if (!zv_uuid_valid (line))
            continue;
        if (count == size) {
            size *= 2;
            uuid = realloc (uuid, (size_t) size * sizeof *uuid);
        }
        snprintf (uuid [count++], ZV_UUID_LEN + 1, "%s", line);
    }
    fclose (file);
    *uuid_p = uuid;
    return count;
}

int
main (int argc, char *argv [])
{
    s_client_t client;
    s_client_t *self = &client;
    memset (self, 0, sizeof *self);
    s_parse (argc, argv, &self->opts);
    zsys_init ();
    zsys_set_logstream (NULL);
    if (self->opts.deleting)
        self->opts.count = s_read_uuids (self->opts.uuids_in, &self->uuid);
    else
        self->uuid = calloc ((size_t) self->opts.count, sizeof *self->uuid);
    int count = self->opts.count;
    if (count < 1) {
        fprintf (stderr, "boot_client: nothing to do\n");
        return 1;
    }
    self->sent_us = calloc ((size_t) count, sizeof (int64_t));
    self->done_us = calloc ((size_t) count, sizeof (int64_t));
    self->failed = calloc ((size_t) count, sizeof (bool));
    self->answered = calloc ((size_t) count, sizeof (int));
    self->requests = zhashx_new ();

    self->sock = zsock_new (ZMQ_DEALER);
    zsock_set_linger (self->sock, 0);
    zsock_set_sndhwm (self->sock, 100000);
    zsock_set_rcvhwm (self->sock, 100000);
    if (zsock_connect (self->sock, "%s", self->opts.endpoint) != 0) {
        fprintf (stderr, "boot_client: cannot connect to %s\n", self->opts.endpoint);
        return 1;
    }
    self->poller = zpoller_new (self->sock, NULL);

    int64_t deadline = zv_bench_us () + (int64_t) self->opts.timeout_s * 1000000;
    int64_t poll_us = (int64_t) self->opts.poll_ms * 1000;
    self->next_list_us = zv_bench_us () + poll_us;
    while (self->done_count < count) {
        int64_t now = zv_bench_us ();
        if (now > deadline) {
            fprintf (stderr, "boot_client: timed out with %d of %d servers done\n", self->done_count, count);
            return 1;
        }
        while (self->sent_count < count && self->in_flight < self->opts.window)
            s_send_next (self);
        if (!self->list_id [0] && now >= self->next_list_us
        &&  self->answered_count > 0) {
            s_send_list (self);
            self->next_list_us = now + poll_us;
        }
        int64_t wait_us = self->list_id [0] ? poll_us : self->next_list_us - now;
        int wait_ms = (int) (wait_us / 1000) + 1;
        if (zpoller_wait (self->poller, wait_ms) == NULL && zpoller_terminated (self->poller))
            return 1;
        while (zsock_events (self->sock) & ZMQ_POLLIN) {
            zv_msg_t *reply = zv_msg_recv (self->sock);
            if (!reply)
                break;
            const char *re = zv_msg_re (reply);
            if (re && self->list_id [0] && streq (re, self->list_id))
                s_on_list_reply (self, reply);
            else
            if (re && zhashx_lookup (self->requests, re)) {
                int index = (int) (intptr_t) zhashx_lookup (self->requests, re) - 1;
                zhashx_delete (self->requests, re);
                s_on_request_reply (self, reply, index);
            }
            zv_msg_destroy (&reply);
        }
    }
    if (!self->opts.deleting)
        s_verify_active (self);

    int64_t first = INT64_MAX, last = 0;
    double *times = calloc ((size_t) count, sizeof (double));
    int ok = 0;
    for (int index = 0; index < count; index++) {
        if (self->sent_us [index] && self->sent_us [index] < first)
            first = self->sent_us [index];
        if (self->failed [index])
            continue;
        if (self->done_us [index] > last)
            last = self->done_us [index];
        times [ok++] = (double) (self->done_us [index] - self->sent_us [index]) / 1000.0;
    }
    qsort (times, (size_t) ok, sizeof (double), zv_bench_cmp_double);
    char name [160];
    double span_s = last > first ? (double) (last - first) / 1e6 : 0;
    snprintf (name, sizeof name, "%s_rate_servers_per_s", self->opts.label);
    zv_bench_figure (name, span_s > 0 ? ok / span_s : 0);
    snprintf (name, sizeof name, "%s_seconds", self->opts.label);
    zv_bench_figure (name, span_s);
    snprintf (name, sizeof name, "%s_p50_ms", self->opts.label);
    zv_bench_figure (name, zv_bench_percentile (times, (size_t) ok, 50));
    snprintf (name, sizeof name, "%s_p99_ms", self->opts.label);
    zv_bench_figure (name, zv_bench_percentile (times, (size_t) ok, 99));
    snprintf (name, sizeof name, "%s_errors", self->opts.label);
    zv_bench_figure (name, self->errors);

    if (self->opts.uuids_out) {
        FILE *file = fopen (self->opts.uuids_out, "w");
        for (int index = 0; file && index < count; index++)
            if (self->uuid [index][0])
                fprintf (file, "%s\n", self->uuid [index]);
        if (file)
            fclose (file);
    }
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->sock);
    zhashx_destroy (&self->requests);
    free (times);
    free (self->uuid);
    free (self->sent_us);
    free (self->done_us);
    free (self->failed);
    free (self->answered);
    return self->errors ? 1 : 0;
}
