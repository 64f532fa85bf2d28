/*  zv_imageclean.c: which files of a host's image cache are unused.

    A pass is two reads of the file system and one pure decision.  The
    base files are the cache folder's entries named by an image id.  The
    instances' uses come from their directories: every regular file's
    first bytes (a qcow2 header names its backing file; an overlay made by
    zv_disk names its base by an absolute path, a relative one is taken as
    qemu takes it, against the disk's folder), and each libvirt.xml, whose
    kernel, initrd and disk paths name the base files the domain boots.  A
    backing file counts when its folder is the cache folder (the same
    inode, however the path is spelt); an XML path counts when it is spelt
    as compute spells the cache folder, which is how compute writes it.
    Nothing here keeps state: zv_imagecache runs the pass.                  */

#include "virt/zv_imageclean.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_QCOW2_MAGIC       0x514649fbu
//  A domain's XML is a few KiB; more is no file compute wrote.
#define S_XML_MAX           (1024 * 1024)

static const char *s_verdict_names [ZV_IMAGECLEAN_COUNT] = {
    [ZV_IMAGECLEAN_IN_USE] = "in_use",
    [ZV_IMAGECLEAN_YOUNG]  = "young",
    [ZV_IMAGECLEAN_REMOVE] = "remove",
};

const char *
zv_imageclean_verdict_name (zv_imageclean_verdict_t verdict)
{
    return verdict < ZV_IMAGECLEAN_COUNT ? s_verdict_names [verdict] : "?";
}

zv_imageclean_verdict_t
zv_imageclean_verdict (bool used, int64_t mtime_s, int64_t now_s, int64_t min_age_s)
{
    if (used)
        return ZV_IMAGECLEAN_IN_USE;
    if (now_s < mtime_s || now_s - mtime_s < min_age_s)
        return ZV_IMAGECLEAN_YOUNG;
    return ZV_IMAGECLEAN_REMOVE;
}

json_t *
zv_imageclean_select (const json_t *files, const json_t *used, int64_t now_s, int64_t min_age_s)
{
    json_t *verdicts = json_object ();
    const char *id;
    json_t *mtime;
    json_object_foreach ((json_t *) files, id, mtime) {
        zv_imageclean_verdict_t verdict = zv_imageclean_verdict (json_object_get (used, id) != NULL,
                                                                 json_integer_value (mtime), now_s, min_age_s);
        json_object_set_new (verdicts, id, json_string (zv_imageclean_verdict_name (verdict)));
    }
    return verdicts;
}

json_t *
zv_imageclean_list (const char *cache_dir)
{
    DIR *handle = opendir (cache_dir);
    if (!handle)
        return errno == ENOENT ? json_object () : NULL;
    json_t *files = json_object ();
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        struct stat info;
        if (!zv_uuid_valid (entry->d_name)
        ||  fstatat (dirfd (handle), entry->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0
        ||  !S_ISREG (info.st_mode))
            continue;
        json_object_set_new (files, entry->d_name, json_integer ((json_int_t) info.st_mtim.tv_sec));
    }
    closedir (handle);
    return files;
}

static uint64_t
s_be (const unsigned char *bytes, int count)
{
    uint64_t value = 0;
    for (int index = 0; index < count; index++)
        value = value << 8 | bytes [index];
    return value;
}

int
zv_imageclean_backing (const char *path, char *buf, size_t len)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    unsigned char header [20];
    int rc = -1;
    if (pread (fd, header, sizeof header, 0) == (ssize_t) sizeof header && s_be (header, 4) == S_QCOW2_MAGIC) {
        uint64_t offset = s_be (header + 8, 8);
        uint64_t size = s_be (header + 16, 4);
        //  The format caps the name at 1023 bytes.
        if (offset && size && size < 1024 && size < len && offset < INT64_MAX
        &&  pread (fd, buf, (size_t) size, (off_t) offset) == (ssize_t) size) {
            buf [size] = '\0';
            rc = strlen (buf) == size ? 0 : -1;
        }
    }
    close (fd);
    return rc;
}

//  The cache folder's path without a trailing '/', for comparisons.
static void
s_trimmed (const char *dir, char *buf, size_t len)
{
    snprintf (buf, len, "%s", dir);
    size_t length = strlen (buf);
    while (length > 1 && buf [length - 1] == '/')
        buf [--length] = '\0';
}

void
zv_imageclean_xml_ids (const char *xml, const char *cache_dir, const char *where, json_t *ids)
{
    char prefix [PATH_MAX + 1];
    s_trimmed (cache_dir, prefix, sizeof prefix - 1);
    strcat (prefix, "/");
    size_t length = strlen (prefix);
    for (const char *at = strstr (xml, prefix); at; at = strstr (at + 1, prefix)) {
        //  The whole path: preceded by what encloses a value in XML.
        if (at > xml && !strchr ("'\">", at [-1]))
            continue;
        char id [ZV_UUID_LEN + 1];
        snprintf (id, sizeof id, "%.*s", ZV_UUID_LEN, at + length);
        const char *after = at + length + strlen (id);
        if (zv_uuid_valid (id) && strchr ("'\"<", *after) && !json_object_get (ids, id))
            json_object_set_new (ids, id, json_string (where));
    }
}

//  Is the folder of path (relative: to base_dir) the cache folder?  The
//  last part of path into name.
static bool
s_in_cache (const char *path, const char *base_dir, const struct stat *cache, char *name, size_t len)
{
    char full [PATH_MAX];
    if (path [0] == '/')
        snprintf (full, sizeof full, "%s", path);
    else
        snprintf (full, sizeof full, "%s/%s", base_dir, path);
    char *slash = strrchr (full, '/');
    if (!slash || !slash [1])
        return false;
    snprintf (name, len, "%s", slash + 1);
    *slash = '\0';
    struct stat info;
    if (stat (*full ? full : "/", &info) != 0)
        return false;
    return info.st_dev == cache->st_dev && info.st_ino == cache->st_ino;
}

static char *
s_read_small (int dir_fd, const char *name)
{
    int fd = openat (dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    char *text = (char *) malloc (S_XML_MAX + 1);
    ssize_t got = text ? read (fd, text, S_XML_MAX) : -1;
    close (fd);
    if (got < 0) {
        free (text);
        return NULL;
    }
    text [got] = '\0';
    return text;
}

//  The uses in one instance directory.
static void
s_scan_instance (const char *instances_path, const char *entry, const char *cache_dir,
                 const struct stat *cache, json_t *ids)
{
    char dir [PATH_MAX];
    snprintf (dir, sizeof dir, "%s/%s", instances_path, entry);
    DIR *handle = opendir (dir);
    if (!handle)
        return;
    struct dirent *file;
    while ((file = readdir (handle))) {
        struct stat info;
        if (fstatat (dirfd (handle), file->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG (info.st_mode))
            continue;
        char where [PATH_MAX + 64];
        snprintf (where, sizeof where, "%s/%s", entry, file->d_name);
        if (strcmp (file->d_name, "libvirt.xml") == 0) {
            char *xml = s_read_small (dirfd (handle), file->d_name);
            if (xml)
                zv_imageclean_xml_ids (xml, cache_dir, where, ids);
            free (xml);
            continue;
        }
        char path [PATH_MAX + 64], backing [1024], id [PATH_MAX];
        snprintf (path, sizeof path, "%s/%s", dir, file->d_name);
        if (zv_imageclean_backing (path, backing, sizeof backing) == 0
        &&  s_in_cache (backing, dir, cache, id, sizeof id) && zv_uuid_valid (id) && !json_object_get (ids, id))
            json_object_set_new (ids, id, json_string (where));
    }
    closedir (handle);
}

json_t *
zv_imageclean_in_use (const char *instances_path, const char *cache_dir)
{
    json_t *ids = json_object ();
    struct stat cache;
    DIR *handle = opendir (instances_path);
    if (!handle || stat (cache_dir, &cache) != 0) {
        if (handle)
            closedir (handle);
        return ids;                 //  no cache, nothing to keep
    }
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        struct stat info;
        if (*entry->d_name == '.'
        ||  fstatat (dirfd (handle), entry->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0
        ||  !S_ISDIR (info.st_mode)
        ||  (info.st_dev == cache.st_dev && info.st_ino == cache.st_ino))
            continue;
        s_scan_instance (instances_path, entry->d_name, cache_dir, &cache, ids);
    }
    closedir (handle);
    return ids;
}
