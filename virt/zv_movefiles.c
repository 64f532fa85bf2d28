/*  zv_movefiles.c: the files a cold move carries, the manifest, one chunk
    read, and the resume offset (zv_movefiles.h says why each is shaped so).

    No state: every function works on the paths it is given.  The names
    that may travel are one table; a name from a peer is only ever compared
    with it, never joined to a path before it matched, and files are opened
    with O_NOFOLLOW so a link planted in an instance directory leads
    nowhere.                                                                 */

#include "virt/zv_movefiles.h"
#include "common/zv_sha256.h"
#include "proto/zv_msg.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  What a move carries, in the order a manifest lists them: the root
//  disk, the ephemeral and swap disks, and the serial console's log (the
//  user's view of the guest's past).  libvirt.xml is made anew on the
//  destination; disk.rescue never moves (a rescued server cannot).
static const char *s_names [] = { "disk", "disk.local", "disk.swap", "console.log" };
#define S_NAMES (sizeof s_names / sizeof s_names [0])

bool
zv_movefiles_name_ok (const char *name)
{
    for (size_t index = 0; name && index < S_NAMES; index++)
        if (strcmp (s_names [index], name) == 0)
            return true;
    return false;
}

json_t *
zv_movefiles_manifest (const char *dir, char *errbuf, size_t errlen)
{
    struct stat info;
    if (stat (dir, &info) != 0 || !S_ISDIR (info.st_mode)) {
        snprintf (errbuf, errlen, "cannot read %s: %s", dir, errno ? strerror (errno) : "not a folder");
        return NULL;
    }
    json_t *files = json_array ();
    for (size_t index = 0; index < S_NAMES; index++) {
        char path [4200], hex [65];
        snprintf (path, sizeof path, "%s/%s", dir, s_names [index]);
        if (lstat (path, &info) != 0 && errno == ENOENT)
            continue;
        if (!S_ISREG (info.st_mode))
            continue;
        int64_t size = 0;
        if (zv_sha256_file (path, hex, &size) != 0) {
            snprintf (errbuf, errlen, "cannot read %s: %s", path, strerror (errno));
            json_decref (files);
            return NULL;
        }
        json_array_append_new (files, json_pack ("{s:s, s:I, s:s}", "name", s_names [index],
                                                 "size", (json_int_t) size, "sha256", hex));
    }
    return files;
}

static bool
s_hex64 (const char *text)
{
    if (!text || strlen (text) != 64)
        return false;
    for (const char *at = text; *at; at++)
        if (!isxdigit ((unsigned char) *at))
            return false;
    return true;
}

zv_status_t
zv_movefiles_check (const json_t *files, char *errbuf, size_t errlen)
{
    if (!json_is_array (files)) {
        snprintf (errbuf, errlen, "the manifest of files is not a list");
        return ZV_EINVAL;
    }
    bool seen [S_NAMES] = { false };
    size_t index;
    const json_t *file;
    json_array_foreach (files, index, file) {
        const char *name = json_string_value (json_object_get (file, "name"));
        const json_t *size = json_object_get (file, "size");
        const char *sha256 = json_string_value (json_object_get (file, "sha256"));
        size_t row = S_NAMES;
        for (size_t k = 0; name && k < S_NAMES; k++)
            if (strcmp (s_names [k], name) == 0)
                row = k;
        if (row == S_NAMES) {
            snprintf (errbuf, errlen, "file %zu of the manifest: '%.64s' is not a file a move carries",
                      index, name ? name : "(no name)");
            return ZV_EINVAL;
        }
        if (seen [row]) {
            snprintf (errbuf, errlen, "the manifest names %s twice", name);
            return ZV_EINVAL;
        }
        seen [row] = true;
        if (!json_is_integer (size) || json_integer_value (size) < 0) {
            snprintf (errbuf, errlen, "file %s of the manifest has no valid size", name);
            return ZV_EINVAL;
        }
        if (!s_hex64 (sha256)) {
            snprintf (errbuf, errlen, "file %s of the manifest has no valid sha256", name);
            return ZV_EINVAL;
        }
    }
    return ZV_OK;
}

zv_status_t
zv_movefiles_read (const char *dir, const char *name, int64_t offset, int64_t length,
                   void **data_p, size_t *length_p, int64_t *size_p, char *errbuf, size_t errlen)
{
    *data_p = NULL;
    *length_p = 0;
    *size_p = 0;
    if (!zv_movefiles_name_ok (name)) {
        snprintf (errbuf, errlen, "'%.64s' is not a file a move carries", name ? name : "(null)");
        return ZV_EINVAL;
    }
    if (offset < 0 || length <= 0) {
        snprintf (errbuf, errlen, "cannot read %" PRId64 " bytes of %s at offset %" PRId64,
                  length, name, offset);
        return ZV_EINVAL;
    }
    if (length > ZV_MSG_MAX_PAYLOAD)
        length = ZV_MSG_MAX_PAYLOAD;
    char path [4200];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat (fd, &info) != 0 || !S_ISREG (info.st_mode)) {
        int error = fd < 0 ? errno : EINVAL;
        snprintf (errbuf, errlen, "no file %s to carry: %s", path,
                  error == EINVAL ? "not a regular file" : strerror (error));
        if (fd >= 0)
            close (fd);
        return error == ENOENT || error == ELOOP || error == ENOTDIR || error == EINVAL
               ? ZV_ENOTFOUND : ZV_EIO;
    }
    zv_status_t status = ZV_OK;
    int64_t size = (int64_t) info.st_size;
    *size_p = size;
    if (offset > size) {
        snprintf (errbuf, errlen, "offset %" PRId64 " is past the end of %s (%" PRId64 " bytes)",
                  offset, path, size);
        status = ZV_EINVAL;
        goto cleanup;
    }
    size_t want = (size_t) (size - offset < length ? size - offset : length);
    if (want == 0)
        goto cleanup;
    char *data = (char *) malloc (want);
    if (!data) {
        snprintf (errbuf, errlen, "cannot read %s: out of memory", path);
        status = ZV_ENOMEM;
        goto cleanup;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t now = pread (fd, data + got, want - got, offset + (int64_t) got);
        if (now < 0 && errno == EINTR)
            continue;
        if (now <= 0) {
            //  0: the file shrank under us, which a carried file never does.
            snprintf (errbuf, errlen, "cannot read %s at %" PRId64 ": %s", path, offset + (int64_t) got,
                      now < 0 ? strerror (errno) : "the file is shorter than it was");
            free (data);
            status = ZV_EIO;
            goto cleanup;
        }
        got += (size_t) now;
    }
    *data_p = data;
    *length_p = got;
cleanup:
    close (fd);
    return status;
}

int64_t
zv_movefiles_resume (int64_t part_size, int64_t size, int64_t chunk_size, int window)
{
    if (part_size <= 0 || part_size > size || chunk_size <= 0 || window < 1)
        return 0;
    //  The chunks of the .part, whole or not, less the window: every chunk
    //  before those was written (see the header).
    int64_t chunks = part_size / chunk_size - window;
    return chunks > 0 ? chunks * chunk_size : 0;
}
