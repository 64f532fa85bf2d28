/*  zv_disk.c: qemu-img as a child process, and a few folder helpers.

    s_qemu_img is the one place a child is started: posix_spawnp (no shell,
    so no quoting of paths), stdin from /dev/null, stdout into a buffer when
    the caller wants it (info) or /dev/null, stderr into a buffer for the
    error message.  Both pipes are read with poll until they close, so a
    child that writes much to one cannot block on the other; then waitpid.
    Pipes are close-on-exec, and the child gets default SIGPIPE handling and
    an empty signal mask, whatever the actor's thread had.  Everything here
    runs on a worker thread and keeps no state.                              */

#include "virt/zv_disk.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define S_GIB           (INT64_C (1) << 30)
#define S_STDERR_MAX    4096                //  the message keeps the start
#define S_STDOUT_MAX    (4 * 1024 * 1024)   //  info of a long backing chain is a few KB

typedef struct {
    char *data;
    size_t size;
    size_t max;                             //  bytes kept; the rest is read and dropped
} s_buf_t;

//  Read what fd has into buf; false at end of file or error.
static bool
s_buf_read (s_buf_t *buf, int fd)
{
    char chunk [16384];
    ssize_t got = read (fd, chunk, sizeof chunk);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (got <= 0)
        return false;
    size_t keep = buf->max - buf->size < (size_t) got ? buf->max - buf->size : (size_t) got;
    if (keep) {
        char *data = (char *) realloc (buf->data, buf->size + keep + 1);
        if (!data)
            return true;                    //  keep draining: the child must not block
        buf->data = data;
        memcpy (buf->data + buf->size, chunk, keep);
        buf->size += keep;
        buf->data [buf->size] = '\0';
    }
    return true;
}

//  qemu-img's stderr as one line: "qemu-img: " prefixes dropped, line
//  breaks become "; ", trailing blanks trimmed.
static void
s_one_line (const char *text, char *out, size_t outlen)
{
    size_t used = 0;
    out [0] = '\0';
    const char *line = text ? text : "";
    while (*line && used + 1 < outlen) {
        const char *end = strchr (line, '\n');
        size_t length = end ? (size_t) (end - line) : strlen (line);
        if (strncmp (line, "qemu-img: ", 10) == 0) {
            line += 10;
            length -= 10;
        }
        while (length && (line [length - 1] == ' ' || line [length - 1] == '\r'))
            length--;
        if (length) {
            int wrote = snprintf (out + used, outlen - used, "%s%.*s", used ? "; " : "",
                                  (int) length, line);
            if (wrote < 0)
                break;
            used += (size_t) wrote < outlen - used ? (size_t) wrote : outlen - used - 1;
        }
        line = end ? end + 1 : line + length;
    }
}

//  Run qemu-img with argv (argv [0] is "qemu-img", NULL-terminated).  On
//  success ZV_OK and, if out_p, its stdout (caller frees).  On failure
//  ZV_EIO and "<what>: <qemu-img's stderr>" in errbuf.
static zv_status_t
s_qemu_img (char *const argv [], char **out_p, const char *what, char *errbuf, size_t errlen)
{
    zv_status_t status = ZV_EIO;
    int err_pipe [2] = { -1, -1 }, out_pipe [2] = { -1, -1 };
    s_buf_t err = { NULL, 0, S_STDERR_MAX }, out = { NULL, 0, S_STDOUT_MAX };
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    bool have_actions = false, have_attr = false;
    if (out_p)
        *out_p = NULL;

    if (pipe2 (err_pipe, O_CLOEXEC) != 0 || (out_p && pipe2 (out_pipe, O_CLOEXEC) != 0)) {
        snprintf (errbuf, errlen, "%s: cannot make a pipe: %s", what, strerror (errno));
        goto cleanup;
    }
    if (posix_spawn_file_actions_init (&actions) != 0)
        goto cleanup;
    have_actions = true;
    posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    if (out_p)
        posix_spawn_file_actions_adddup2 (&actions, out_pipe [1], 1);
    else
        posix_spawn_file_actions_addopen (&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2 (&actions, err_pipe [1], 2);

    if (posix_spawnattr_init (&attr) != 0)
        goto cleanup;
    have_attr = true;
    sigset_t none, defaults;
    sigemptyset (&none);
    sigemptyset (&defaults);
    sigaddset (&defaults, SIGPIPE);
    posix_spawnattr_setsigmask (&attr, &none);
    posix_spawnattr_setsigdefault (&attr, &defaults);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    pid_t pid;
    int rc = posix_spawnp (&pid, argv [0], &actions, &attr, argv, environ);
    if (rc != 0) {
        snprintf (errbuf, errlen, "%s: cannot run %s: %s", what, argv [0], strerror (rc));
        goto cleanup;
    }
    //  Our copies of the write ends go, so the reads see the child's end.
    close (err_pipe [1]);
    err_pipe [1] = -1;
    if (out_p) {
        close (out_pipe [1]);
        out_pipe [1] = -1;
    }
    struct pollfd fds [2] = {
        { .fd = err_pipe [0], .events = POLLIN },
        { .fd = out_p ? out_pipe [0] : -1, .events = POLLIN },
    };
    while (fds [0].fd >= 0 || fds [1].fd >= 0) {
        if (poll (fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds [0].revents && !s_buf_read (&err, fds [0].fd))
            fds [0].fd = -1;
        if (fds [1].revents && !s_buf_read (&out, fds [1].fd))
            fds [1].fd = -1;
    }
    int wstatus = 0;
    while (waitpid (pid, &wstatus, 0) < 0) {
        if (errno != EINTR) {
            snprintf (errbuf, errlen, "%s: cannot wait for %s: %s", what, argv [0], strerror (errno));
            goto cleanup;
        }
    }
    if (WIFEXITED (wstatus) && WEXITSTATUS (wstatus) == 0) {
        status = ZV_OK;
        if (out_p) {
            *out_p = out.data ? out.data : strdup ("");
            out.data = NULL;
        }
    }
    else {
        char message [1024];
        s_one_line (err.data, message, sizeof message);
        if (WIFSIGNALED (wstatus))
            snprintf (errbuf, errlen, "%s: %s killed by signal %d%s%s", what, argv [0],
                      WTERMSIG (wstatus), *message ? ": " : "", message);
        else
        if (*message)
            snprintf (errbuf, errlen, "%s: %s", what, message);
        else
        if (WEXITSTATUS (wstatus) == 127)       //  the exec failed after a fork
            snprintf (errbuf, errlen, "%s: cannot run %s: not found on PATH or not executable",
                      what, argv [0]);
        else
            snprintf (errbuf, errlen, "%s: %s exited with status %d", what, argv [0],
                      WEXITSTATUS (wstatus));
    }

cleanup:
    if (status != ZV_OK && errbuf [0] == '\0')
        snprintf (errbuf, errlen, "%s: cannot start %s", what, argv [0]);
    if (have_actions)
        posix_spawn_file_actions_destroy (&actions);
    if (have_attr)
        posix_spawnattr_destroy (&attr);
    for (int index = 0; index < 2; index++) {
        if (err_pipe [index] >= 0)
            close (err_pipe [index]);
        if (out_pipe [index] >= 0)
            close (out_pipe [index]);
    }
    free (err.data);
    free (out.data);
    return status;
}

//  ZV_OK when the folder that would hold path exists.
static zv_status_t
s_folder_exists (const char *path, const char *what, char *errbuf, size_t errlen)
{
    char folder [4096];
    snprintf (folder, sizeof folder, "%s", path);
    char *slash = strrchr (folder, '/');
    if (!slash)
        snprintf (folder, sizeof folder, ".");
    else
    if (slash == folder)
        folder [1] = '\0';
    else
        *slash = '\0';
    struct stat info;
    if (stat (folder, &info) != 0) {
        snprintf (errbuf, errlen, "%s: folder %s: %s", what, folder, strerror (errno));
        return ZV_ENOTFOUND;
    }
    if (!S_ISDIR (info.st_mode)) {
        snprintf (errbuf, errlen, "%s: %s is not a folder", what, folder);
        return ZV_ENOTFOUND;
    }
    return ZV_OK;
}

zv_status_t
zv_disk_overlay (const char *path, const char *backing_raw_path, int64_t size_gb,
                 char *errbuf, size_t errlen)
{
    assert (path && backing_raw_path && errbuf && errlen);
    errbuf [0] = '\0';
    char what [4200];
    snprintf (what, sizeof what, "cannot create disk %s", path);
    if (size_gb < 0) {
        snprintf (errbuf, errlen, "%s: size of %" PRId64 " GB", what, size_gb);
        return ZV_EINVAL;
    }
    zv_status_t status = s_folder_exists (path, what, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    //  qemu-img would say it too, but as "Could not open backing image".
    struct stat backing;
    if (stat (backing_raw_path, &backing) != 0) {
        snprintf (errbuf, errlen, "%s: backing file %s: %s", what, backing_raw_path, strerror (errno));
        return ZV_ENOTFOUND;
    }
    //  A disk smaller than its image would cut the guest's file system.
    if (size_gb && size_gb < INT64_MAX / S_GIB && size_gb * S_GIB < (int64_t) backing.st_size) {
        snprintf (errbuf, errlen, "%s: %" PRId64 " GB is smaller than its image %s (%" PRId64 " bytes)",
                  what, size_gb, backing_raw_path, (int64_t) backing.st_size);
        return ZV_EINVAL;
    }
    char size [32];
    snprintf (size, sizeof size, "%" PRId64 "G", size_gb);
    char *argv [] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                      "-b", (char *) backing_raw_path, (char *) path,
                      size_gb ? size : NULL, NULL };
    return s_qemu_img (argv, NULL, what, errbuf, errlen);
}

zv_status_t
zv_disk_blank (const char *path, int64_t size_mb, char *errbuf, size_t errlen)
{
    assert (path && errbuf && errlen);
    errbuf [0] = '\0';
    char what [4200];
    snprintf (what, sizeof what, "cannot create disk %s", path);
    if (size_mb <= 0) {
        snprintf (errbuf, errlen, "%s: size of %" PRId64 " MB", what, size_mb);
        return ZV_EINVAL;
    }
    zv_status_t status = s_folder_exists (path, what, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    char size [32];
    snprintf (size, sizeof size, "%" PRId64 "M", size_mb);
    char *argv [] = { "qemu-img", "create", "-q", "-f", "qcow2", (char *) path, size, NULL };
    return s_qemu_img (argv, NULL, what, errbuf, errlen);
}

zv_status_t
zv_disk_convert (const char *src, const char *dst, const char *format, char *errbuf, size_t errlen)
{
    assert (src && dst && format && errbuf && errlen);
    errbuf [0] = '\0';
    char what [8400];
    snprintf (what, sizeof what, "cannot convert %s to %s %s", src, format, dst);
    zv_status_t status = s_folder_exists (dst, what, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    char *argv [] = { "qemu-img", "convert", "-O", (char *) format, (char *) src, (char *) dst, NULL };
    return s_qemu_img (argv, NULL, what, errbuf, errlen);
}

//  `qemu-img info` of path read as format, or NULL with errbuf set.
static json_t *
s_info_as (const char *path, const char *format, const char *what, char *errbuf, size_t errlen)
{
    char *text = NULL;
    char *argv [] = { "qemu-img", "info", "--output=json", "-U", "-f", (char *) format,
                      (char *) path, NULL };
    if (s_qemu_img (argv, &text, what, errbuf, errlen) != ZV_OK)
        return NULL;
    json_error_t error;
    json_t *info = json_loads (text, 0, &error);
    if (!json_is_object (info)) {
        snprintf (errbuf, errlen, "%s: unreadable qemu-img info: %s", what, error.text);
        json_decref (info);
        info = NULL;
    }
    free (text);
    return info;
}

//  ZV_EINVAL (errbuf says why) when info shows a backing file (unless
//  backing_ok) or an external data file: a file that came from elsewhere
//  could read any file of the host into a guest's disk through either.
static zv_status_t
s_refers_elsewhere (const json_t *info, bool backing_ok, const char *what, char *errbuf, size_t errlen)
{
    const char *backing = json_string_value (json_object_get (info, "backing-filename"));
    json_t *specific = json_object_get (json_object_get (info, "format-specific"), "data");
    const char *data_file = json_string_value (json_object_get (specific, "data-file"));
    if (backing && !backing_ok) {
        snprintf (errbuf, errlen, "%s: it has a backing file (%s)", what, backing);
        return ZV_EINVAL;
    }
    if (data_file) {
        snprintf (errbuf, errlen, "%s: it has an external data file (%s)", what, data_file);
        return ZV_EINVAL;
    }
    return ZV_OK;
}

zv_status_t
zv_disk_import (const char *src, const char *src_format, const char *dst,
                char *errbuf, size_t errlen)
{
    assert (src && src_format && dst && errbuf && errlen);
    errbuf [0] = '\0';
    char what [4200];
    snprintf (what, sizeof what, "cannot import %s image %s", src_format, src);
    json_t *info = s_info_as (src, src_format, what, errbuf, errlen);
    if (!info)
        return ZV_EINVAL;
    zv_status_t status = s_refers_elsewhere (info, false, what, errbuf, errlen);
    json_decref (info);
    if (status != ZV_OK)
        return status;
    char *argv [] = { "qemu-img", "convert", "-f", (char *) src_format, "-O", "raw",
                      (char *) src, (char *) dst, NULL };
    return s_qemu_img (argv, NULL, what, errbuf, errlen);
}

//  `qemu-img info` of an existing qcow2 disk, or NULL with the status
//  (ZV_ENOTFOUND when path is missing, ZV_EINVAL when it is no qcow2).
static json_t *
s_qcow2_info (const char *path, const char *what, zv_status_t *status_p, char *errbuf, size_t errlen)
{
    struct stat info;
    if (stat (path, &info) != 0) {
        snprintf (errbuf, errlen, "%s: %s", what, strerror (errno));
        *status_p = errno == ENOENT ? ZV_ENOTFOUND : ZV_EIO;
        return NULL;
    }
    json_t *result = s_info_as (path, "qcow2", what, errbuf, errlen);
    *status_p = result ? ZV_OK : ZV_EINVAL;
    return result;
}

zv_status_t
zv_disk_resize (const char *path, int64_t size_gb, char *errbuf, size_t errlen)
{
    assert (path && errbuf && errlen);
    errbuf [0] = '\0';
    char what [4200];
    snprintf (what, sizeof what, "cannot resize disk %s", path);
    if (size_gb <= 0 || size_gb >= INT64_MAX / S_GIB) {
        snprintf (errbuf, errlen, "%s: size of %" PRId64 " GB", what, size_gb);
        return ZV_EINVAL;
    }
    zv_status_t status;
    json_t *info = s_qcow2_info (path, what, &status, errbuf, errlen);
    if (!info)
        return status;
    json_int_t virtual_size = json_integer_value (json_object_get (info, "virtual-size"));
    json_decref (info);
    if (virtual_size >= size_gb * S_GIB)
        return ZV_OK;               //  as big already: a disk never shrinks
    char size [32];
    snprintf (size, sizeof size, "%" PRId64 "G", size_gb);
    char *argv [] = { "qemu-img", "resize", "-q", "-f", "qcow2", (char *) path, size, NULL };
    return s_qemu_img (argv, NULL, what, errbuf, errlen);
}

zv_status_t
zv_disk_rebase (const char *path, const char *backing_raw_path, char *errbuf, size_t errlen)
{
    assert (path && backing_raw_path && errbuf && errlen);
    errbuf [0] = '\0';
    char what [4200];
    snprintf (what, sizeof what, "cannot rebase disk %s", path);
    struct stat backing;
    if (stat (backing_raw_path, &backing) != 0) {
        snprintf (errbuf, errlen, "%s: backing file %s: %s", what, backing_raw_path, strerror (errno));
        return ZV_ENOTFOUND;
    }
    zv_status_t status;
    json_t *info = s_qcow2_info (path, what, &status, errbuf, errlen);
    if (!info)
        return status;
    status = s_refers_elsewhere (info, true, what, errbuf, errlen);
    const char *had = json_string_value (json_object_get (info, "backing-filename"));
    const char *had_format = json_string_value (json_object_get (info, "backing-filename-format"));
    bool same = had && strcmp (had, backing_raw_path) == 0 && had_format && strcmp (had_format, "raw") == 0;
    json_decref (info);
    if (status != ZV_OK || same)
        return status;
    //  Unsafe: only the path changes, the bytes behind it are the same
    //  image (and the old path may not exist on this host).
    char *argv [] = { "qemu-img", "rebase", "-q", "-u", "-f", "qcow2", "-F", "raw",
                      "-b", (char *) backing_raw_path, (char *) path, NULL };
    return s_qemu_img (argv, NULL, what, errbuf, errlen);
}

zv_status_t
zv_disk_standalone (const char *path, char *errbuf, size_t errlen)
{
    assert (path && errbuf && errlen);
    errbuf [0] = '\0';
    char what [4200];
    snprintf (what, sizeof what, "disk %s", path);
    zv_status_t status;
    json_t *info = s_qcow2_info (path, what, &status, errbuf, errlen);
    if (!info)
        return status;
    status = s_refers_elsewhere (info, false, what, errbuf, errlen);
    json_decref (info);
    return status;
}

json_t *
zv_disk_info (const char *path)
{
    assert (path);
    char *text = NULL, errbuf [512] = "";
    char *argv [] = { "qemu-img", "info", "--output=json", "-U", (char *) path, NULL };
    if (s_qemu_img (argv, &text, "qemu-img info", errbuf, sizeof errbuf) != ZV_OK)
        return NULL;
    json_t *info = json_loads (text, 0, NULL);
    free (text);
    if (!json_is_object (info)) {
        json_decref (info);
        return NULL;
    }
    return info;
}

int
zv_disk_mkdirs (const char *path)
{
    assert (path);
    char partial [4096];
    if (!*path) {
        errno = ENOENT;
        return -1;
    }
    if (snprintf (partial, sizeof partial, "%s", path) >= (int) sizeof partial) {
        errno = ENAMETOOLONG;
        return -1;
    }
    //  Each prefix ending before a '/', then the whole path.
    for (char *slash = strchr (partial + 1, '/'); ; slash = strchr (slash + 1, '/')) {
        if (slash)
            *slash = '\0';
        if (*partial && mkdir (partial, 0755) != 0 && errno != EEXIST)
            return -1;
        if (!slash)
            break;
        *slash = '/';
    }
    struct stat info;
    if (stat (path, &info) != 0)
        return -1;
    if (!S_ISDIR (info.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int
zv_disk_remove_dir (const char *dir)
{
    assert (dir);
    DIR *handle = opendir (dir);
    if (!handle)
        return errno == ENOENT ? 0 : -1;
    int rc = 0, saved = 0;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
            continue;
        //  Keep going: remove what can be, report the first failure.
        if (unlinkat (dirfd (handle), entry->d_name, 0) != 0 && rc == 0) {
            saved = errno == EPERM ? EISDIR : errno;    //  Linux says EISDIR; POSIX allows EPERM
            rc = -1;
        }
    }
    closedir (handle);
    if (rc == 0 && rmdir (dir) != 0 && errno != ENOENT)
        return -1;
    errno = saved;
    return rc;
}
