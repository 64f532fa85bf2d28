/*  catalog.c: flavors and images in the zova CLI.

    flavor create fills in Nova's defaults (no ephemeral disk, no swap,
    public).  image create reads its file twice: once for the SHA-256, sent
    with the create so that the api can check the bytes it assembles
    against what we meant to send, then in 1 MiB payload frames with up to
    ZOVA_UPLOAD_WINDOW of them in flight.  The conductor takes them in the
    order sent (one connection, one queue) and commits those that arrive
    together at once; waiting for the window's replies is the flow control.
    The first refusal is the error reported.  image save is the way back:
    the same chunks and window (api.image_read), written at their offsets
    into a file beside the target, which takes the target's name only once
    its SHA-256 matches the image's checksum.                             */

#include <czmq.h>
#include <jansson.h>

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zv_common.h"
#include "common/zv_sha256.h"
#include "proto/zv_msg.h"
#include "cmd/zova/zova.h"

#define ZOVA_IMAGE_CHUNK        (1024 * 1024)
#define ZOVA_UPLOAD_WINDOW      4       //  image chunks in flight

static const column_t s_flavor_columns [] = {
    { "ID", "id" }, { "Name", "name" }, { "RAM", "ram_mb" }, { "Disk", "disk_gb" },
    { "Ephemeral", "ephemeral_gb" }, { "Swap", "swap_mb" }, { "VCPUs", "vcpus" },
    { "Is Public", "is_public" },
    { NULL, NULL }
};

static const column_t s_image_columns [] = {
    { "ID", "id" }, { "Name", "name" }, { "Status", "status" },
    { "Disk Format", "disk_format" }, { "Size", "size" },
    { NULL, NULL }
};

const resource_t zv_cli_res_flavor = {
    .name = "flavor", .one = "flavor", .many = "flavors",
    .columns = s_flavor_columns
};

const resource_t zv_cli_res_image = {
    .name = "image", .one = "image", .many = "images",
    .columns = s_image_columns
};


//  ---------------------------------------------------------------------
//  flavor create

int
zv_cli_cmd_flavor_create (cli_t *cli)
{
    json_t *body = zv_cli_body_from_opts (cli);
    json_object_set_new (body, "name", json_string (cli->args [0]));
    if (!json_object_get (body, "ephemeral_gb"))
        json_object_set_new (body, "ephemeral_gb", json_integer (0));
    if (!json_object_get (body, "swap_mb"))
        json_object_set_new (body, "swap_mb", json_integer (0));
    json_object_set_new (body, "is_public", json_boolean (!zv_cli_opt_flag (cli, "private")));
    json_t *reply = zv_cli_call (cli, cli->cmd->type, body);
    if (!reply)
        return ZOVA_EXIT_FAIL;
    json_t *flavor = zv_cli_reply_member (reply, "flavor", false, cli->cmd->type);
    int rc = flavor ? zv_cli_print_show (cli, &zv_cli_res_flavor, flavor) : ZOVA_EXIT_FAIL;
    json_decref (reply);
    return rc;
}


//  ---------------------------------------------------------------------
//  image create

//  Read up to len bytes, retrying short reads; the count read, or -1.
static ssize_t
s_read_full (int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read (fd, (char *) buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t) n;
    }
    return (ssize_t) got;
}

//  image create: the checksum is computed before anything is sent, so the
//  api can verify the bytes it assembles against what we meant to send.
int
zv_cli_cmd_image_create (cli_t *cli)
{
    const char *path = json_string_value (zv_cli_opt (cli, "file"));
    int rc = ZOVA_EXIT_FAIL;
    json_t *reply = NULL;
    char *image_id = NULL;
    unsigned char *chunk = malloc (ZOVA_IMAGE_CHUNK);
    if (!chunk)
        zv_cli_out_of_memory ();
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat (fd, &info)) {
        zv_cli_fail ("cannot read %s: %s", path, strerror (errno));
        goto cleanup;
    }
    if (!S_ISREG (info.st_mode)) {
        zv_cli_fail ("cannot read %s: %s", path,
                     S_ISDIR (info.st_mode) ? strerror (EISDIR) : "not a regular file");
        goto cleanup;
    }
    uint64_t size = (uint64_t) info.st_size;

    zv_sha256_t *sha = zv_sha256_new ();
    if (!sha)
        zv_cli_out_of_memory ();
    uint64_t total = 0;
    while (true) {
        ssize_t n = s_read_full (fd, chunk, ZOVA_IMAGE_CHUNK);
        if (n < 0) {
            zv_cli_fail ("cannot read %s: %s", path, strerror (errno));
            zv_sha256_destroy (&sha);
            goto cleanup;
        }
        if (n == 0)
            break;
        zv_sha256_update (sha, chunk, (size_t) n);
        total += (uint64_t) n;
    }
    char checksum [65];
    zv_sha256_hex (sha, checksum);
    zv_sha256_destroy (&sha);
    if (total != size) {
        zv_cli_fail ("%s changed while it was being read", path);
        goto cleanup;
    }

    json_t *body = zv_cli_body_from_opts (cli);
    json_object_set_new (body, "name", json_string (cli->args [0]));
    if (!json_object_get (body, "disk_format"))
        json_object_set_new (body, "disk_format", json_string ("raw"));
    if (!json_object_get (body, "container_format"))
        json_object_set_new (body, "container_format", json_string ("bare"));
    json_object_set_new (body, "size", json_integer ((json_int_t) size));
    json_object_set_new (body, "checksum", json_string (checksum));
    if (!json_object_get (body, "properties"))
        json_object_set_new (body, "properties", json_object ());
    reply = zv_cli_call (cli, "api.image_create", body);
    if (!reply)
        goto cleanup;
    json_t *image = zv_cli_reply_member (reply, "image", false, "api.image_create");
    if (!image)
        goto cleanup;
    const char *id = json_string_value (json_object_get (image, "id"));
    if (!id) {
        zv_cli_fail ("malformed reply to api.image_create: no image id");
        goto cleanup;
    }
    image_id = strdup (id);
    json_decref (reply);
    reply = NULL;

    if (lseek (fd, 0, SEEK_SET) < 0) {
        zv_cli_fail ("cannot read %s: %s", path, strerror (errno));
        goto cleanup;
    }
    progress_t progress = { .tty = cli->stderr_tty };
    uint64_t offset = 0, acked = 0;
    bool last = false;
    //  Chunks go ZOVA_UPLOAD_WINDOW at a time: the conductor takes them in
    //  the order sent (one connection, one queue) and commits the ones that
    //  arrive together at once.  An empty image is still one (empty, last)
    //  chunk: the upload is what moves the image from queued to active.
    json_t *pending = json_object ();       //  request id -> chunk length
    if (!pending || zv_cli_connect (cli))
        goto upload_failed;
    int64_t deadline = zv_mono_ms () + cli->timeout_ms;
    while (!last || json_object_size (pending)) {
        while (!last && json_object_size (pending) < ZOVA_UPLOAD_WINDOW) {
            size_t want = size - offset < ZOVA_IMAGE_CHUNK ? (size_t) (size - offset) : ZOVA_IMAGE_CHUNK;
            ssize_t n = s_read_full (fd, chunk, want);
            if (n < 0 || (size_t) n != want) {
                zv_cli_progress_end (&progress);
                if (n < 0)
                    zv_cli_fail ("cannot read %s: %s", path, strerror (errno));
                else
                    zv_cli_fail ("%s changed while it was being uploaded", path);
                goto upload_failed;
            }
            last = offset + want == size;
            json_t *upload = json_pack ("{s:s, s:I, s:b}", "id", image_id,
                                        "offset", (json_int_t) offset, "last", last);
            if (!upload)
                zv_cli_out_of_memory ();
            char *request_id = zv_cli_send (cli, "api.image_upload", &upload, chunk, want);
            if (!request_id)
                goto upload_failed;
            json_object_set_new (pending, request_id, json_pack ("{s:I, s:b}", "length", (json_int_t) want,
                                                                 "last", last));
            free (request_id);
            offset += want;
        }
        zv_msg_t *answer = zv_cli_recv_until (cli, deadline);
        if (!answer) {
            zv_cli_progress_end (&progress);
            zv_cli_no_answer (cli);
            goto upload_failed;
        }
        if (zv_cli_unreadable (&answer))
            goto upload_failed;
        const char *re = zv_msg_re (answer);
        json_t *slot = re ? json_object_get (pending, re) : NULL;
        if (!slot) {
            zv_msg_destroy (&answer);       //  a reply to nothing of ours
            continue;
        }
        if (zv_msg_status (answer) != ZV_OK) {
            //  The first refusal is the reason; the chunks after it are
            //  refused for their offset and say nothing new.
            zv_cli_progress_end (&progress);
            zv_cli_report_error (answer);
            zv_msg_destroy (&answer);
            goto upload_failed;
        }
        acked += (uint64_t) json_integer_value (json_object_get (slot, "length"));
        if (json_is_true (json_object_get (slot, "last")))
            reply = json_incref (zv_msg_body (answer));
        json_object_del (pending, re);
        zv_msg_destroy (&answer);
        deadline = zv_mono_ms () + cli->timeout_ms;
        if (progress.tty) {
            int percent = size ? (int) (acked * 100 / size) : 100;
            fprintf (stderr, "\rUploading %s: %3d%%  (%.1f of %.1f MiB)", cli->args [0],
                     percent, acked / 1048576.0, size / 1048576.0);
            progress.drawn = true;
        }
    }
    json_decref (pending);
    pending = NULL;
    zv_cli_progress_end (&progress);

    image = zv_cli_reply_member (reply, "image", false, "api.image_upload");
    if (!image)
        goto cleanup;
    const char *theirs = json_string_value (json_object_get (image, "checksum"));
    if (!theirs || strcmp (theirs, checksum) != 0) {
        zv_cli_fail ("checksum mismatch for image %s: sent %s, the api stored %s",
                     image_id, checksum, theirs ? theirs : "none");
        goto cleanup;
    }
    const char *status = json_string_value (json_object_get (image, "status"));
    if (status && strcmp (status, "active") != 0) {
        zv_cli_fail ("image %s is %s after its upload, not active", image_id, status);
        goto cleanup;
    }
    rc = zv_cli_print_show (cli, &zv_cli_res_image, image);
    goto cleanup;

upload_failed:
    zv_cli_progress_end (&progress);
    json_decref (pending);
cleanup:
    if (fd >= 0)
        close (fd);
    json_decref (reply);
    free (image_id);
    free (chunk);
    return rc;
}


//  ---------------------------------------------------------------------
//  image save

//  Check one chunk's reply against the first one's figures and write it at
//  its offset.  0, or -1 (reported).
static int
s_save_chunk (zv_msg_t *answer, const char *image_id, int64_t size, const char *checksum,
              int64_t offset, int fd, const char *temp)
{
    json_t *body = zv_msg_body (answer);
    size_t bytes = 0;
    const void *data = zv_msg_payload (answer, &bytes);
    int64_t expected = size - offset < ZOVA_IMAGE_CHUNK ? size - offset : ZOVA_IMAGE_CHUNK;
    const char *id = json_string_value (json_object_get (body, "id"));
    const char *sum = json_string_value (json_object_get (body, "checksum"));
    if (!id || strcmp (id, image_id) != 0 || !sum || strcmp (sum, checksum) != 0
    ||  json_integer_value (json_object_get (body, "size")) != size
    ||  json_integer_value (json_object_get (body, "offset")) != offset
    ||  (int64_t) bytes != expected || (bytes && !data)) {
        zv_cli_fail ("image %s changed during the download (chunk at offset %lld)", image_id,
                     (long long) offset);
        return -1;
    }
    size_t done = 0;
    while (done < bytes) {
        ssize_t wrote = pwrite (fd, (const char *) data + done, bytes - done, offset + (off_t) done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote < 0) {
            zv_cli_fail ("cannot write %s: %s", temp, strerror (errno));
            return -1;
        }
        done += (size_t) wrote;
    }
    return 0;
}

//  image save: the chunks the conductor serves compute hosts, ZOVA_UPLOAD_WINDOW
//  of them in flight, written at their offsets into a file beside the
//  target; its sha256 must match the image's checksum before it takes the
//  target's name.  The first chunk resolves the name and tells the size
//  and checksum; the others ask by id, so an image that another takes the
//  name of meanwhile is not mixed in.
int
zv_cli_cmd_image_save (cli_t *cli)
{
    const char *path = json_string_value (zv_cli_opt (cli, "file"));
    int rc = ZOVA_EXIT_FAIL;
    int fd = -1;
    char temp [PATH_MAX] = "";
    char *image_id = NULL, *checksum = NULL;
    json_t *pending = NULL;
    progress_t progress = { .tty = cli->stderr_tty };
    json_t *body = json_pack ("{s:s, s:I, s:I}", "ref", cli->args [0], "offset", (json_int_t) 0,
                              "length", (json_int_t) ZOVA_IMAGE_CHUNK);
    if (!body)
        zv_cli_out_of_memory ();
    zv_msg_t *first = zv_cli_call_reply (cli, "api.image_read", body);
    if (!first)
        goto cleanup;
    json_t *figures = zv_msg_body (first);
    const char *id = json_string_value (json_object_get (figures, "id"));
    const char *sum = json_string_value (json_object_get (figures, "checksum"));
    int64_t size = json_integer_value (json_object_get (figures, "size"));
    if (!id || !sum || !*sum || size < 0) {
        zv_cli_fail ("image %s has no checksum to check its bytes against", cli->args [0]);
        zv_msg_destroy (&first);
        goto cleanup;
    }
    image_id = strdup (id);
    checksum = strdup (sum);
    if (!image_id || !checksum)
        zv_cli_out_of_memory ();
    if (snprintf (temp, sizeof temp, "%s.XXXXXX", path) >= (int) sizeof temp) {
        zv_cli_fail ("cannot write %s: %s", path, strerror (ENAMETOOLONG));
        *temp = 0;
        zv_msg_destroy (&first);
        goto cleanup;
    }
    fd = mkstemp (temp);
    if (fd < 0) {
        zv_cli_fail ("cannot write %s: %s", path, strerror (errno));
        *temp = 0;
        zv_msg_destroy (&first);
        goto cleanup;
    }
    //  mkstemp's 0600 is for the file while it is half made; the saved
    //  file gets the mode any new file would.
    mode_t mask = umask (0);
    umask (mask);
    if (fchmod (fd, 0666 & ~mask) != 0) {
        zv_cli_fail ("cannot write %s: %s", temp, strerror (errno));
        zv_msg_destroy (&first);
        goto cleanup;
    }
    int failed = s_save_chunk (first, image_id, size, checksum, 0, fd, temp);
    zv_msg_destroy (&first);
    if (failed)
        goto cleanup;

    int64_t offset = size < ZOVA_IMAGE_CHUNK ? size : ZOVA_IMAGE_CHUNK;
    int64_t received = offset;
    pending = json_object ();               //  request id -> offset
    if (!pending)
        zv_cli_out_of_memory ();
    int64_t deadline = zv_mono_ms () + cli->timeout_ms;
    while (offset < size || json_object_size (pending)) {
        while (offset < size && json_object_size (pending) < ZOVA_UPLOAD_WINDOW) {
            int64_t length = size - offset < ZOVA_IMAGE_CHUNK ? size - offset : ZOVA_IMAGE_CHUNK;
            json_t *request = json_pack ("{s:s, s:I, s:I}", "ref", image_id, "offset", (json_int_t) offset,
                                      "length", (json_int_t) length);
            if (!request)
                zv_cli_out_of_memory ();
            char *request_id = zv_cli_send (cli, "api.image_read", &request, NULL, 0);
            if (!request_id)
                goto cleanup;
            json_object_set_new (pending, request_id, json_integer ((json_int_t) offset));
            free (request_id);
            offset += length;
        }
        zv_msg_t *answer = zv_cli_recv_until (cli, deadline);
        if (!answer) {
            zv_cli_progress_end (&progress);
            zv_cli_no_answer (cli);
            goto cleanup;
        }
        if (zv_cli_unreadable (&answer))
            goto cleanup;
        const char *re = zv_msg_re (answer);
        json_t *slot = re ? json_object_get (pending, re) : NULL;
        if (!slot) {
            zv_msg_destroy (&answer);       //  a reply to nothing of ours
            continue;
        }
        if (zv_msg_status (answer) != ZV_OK) {
            zv_cli_progress_end (&progress);
            zv_cli_report_error (answer);
            zv_msg_destroy (&answer);
            goto cleanup;
        }
        int64_t at = json_integer_value (slot);
        failed = s_save_chunk (answer, image_id, size, checksum, at, fd, temp);
        json_object_del (pending, re);      //  re lives in the answer
        zv_msg_destroy (&answer);
        if (failed) {
            zv_cli_progress_end (&progress);
            goto cleanup;
        }
        received += size - at < ZOVA_IMAGE_CHUNK ? size - at : ZOVA_IMAGE_CHUNK;
        deadline = zv_mono_ms () + cli->timeout_ms;
        if (progress.tty) {
            fprintf (stderr, "\rDownloading %s: %3d%%  (%.1f of %.1f MiB)", cli->args [0],
                     size ? (int) (received * 100 / size) : 100, received / 1048576.0, size / 1048576.0);
            progress.drawn = true;
        }
    }
    zv_cli_progress_end (&progress);
    if (fsync (fd) != 0) {
        zv_cli_fail ("cannot write %s: %s", temp, strerror (errno));
        goto cleanup;
    }
    char hex [65];
    int64_t length = 0;
    if (zv_sha256_file (temp, hex, &length) != 0) {
        zv_cli_fail ("cannot read %s back: %s", temp, strerror (errno));
        goto cleanup;
    }
    if (length != size || strcmp (hex, checksum) != 0) {
        zv_cli_fail ("checksum mismatch for image %s: expected %s, downloaded %s (%lld bytes)",
                     image_id, checksum, hex, (long long) length);
        goto cleanup;
    }
    if (rename (temp, path) != 0) {
        zv_cli_fail ("cannot write %s: %s", path, strerror (errno));
        goto cleanup;
    }
    *temp = 0;
    rc = ZOVA_EXIT_OK;

cleanup:
    zv_cli_progress_end (&progress);
    if (fd >= 0)
        close (fd);
    if (*temp)
        unlink (temp);
    json_decref (pending);
    free (image_id);
    free (checksum);
    return rc;
}
