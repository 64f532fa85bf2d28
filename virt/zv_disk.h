/*  zv_disk.h: a compute host's disk files, made and read with qemu-img.

    Blocking helpers for the compute's workers (never the loop's thread):
    each runs qemu-img (found on PATH) as a child process, without a shell,
    and on failure returns a status with a message in errbuf that carries
    qemu-img's own stderr.  An instance's root disk is a qcow2 overlay whose
    backing file is the raw image in the cache (<instances_path>/_base);
    the backing format is always given (-F raw), never probed.

    Formats are probed only where the file was made on this host.  An image
    that came from elsewhere goes through zv_disk_import, which names its
    format and refuses one that refers to other files (a qcow2 with a
    backing file or an external data file could read any file of the host
    into the guest's disk).                                                 */

#ifndef ZV_DISK_H
#define ZV_DISK_H

#include <jansson.h>
#include "common/zv_common.h"

//  Create path as a qcow2 overlay of the raw file backing_raw_path, of
//  size_gb GiB (0: the backing file's size).  Give backing_raw_path as an
//  absolute path: qemu-img resolves a relative one against path's folder.
//  ZV_ENOTFOUND when path's folder or the backing file is missing,
//  ZV_EINVAL when size_gb is smaller than the backing file, ZV_EIO when
//  qemu-img fails.
zv_status_t zv_disk_overlay (const char *path, const char *backing_raw_path, int64_t size_gb,
                             char *errbuf, size_t errlen);

//  Create path as an empty qcow2 disk of size_mb MiB (ephemeral, swap).
//  ZV_ENOTFOUND when path's folder is missing, ZV_EIO when qemu-img fails.
zv_status_t zv_disk_blank (const char *path, int64_t size_mb, char *errbuf, size_t errlen);

//  Convert src (format probed: a file this host made) into dst in format
//  ("raw", "qcow2").  ZV_EIO with qemu-img's message on failure.
zv_status_t zv_disk_convert (const char *src, const char *dst, const char *format,
                             char *errbuf, size_t errlen);

//  Convert an image that came from elsewhere, in src_format (as its record
//  says: never probed), into a raw dst, once `qemu-img info` shows that it
//  refers to no other file.  ZV_EINVAL when it does, or is not src_format;
//  ZV_EIO when qemu-img fails.  dst is not synced.
zv_status_t zv_disk_import (const char *src, const char *src_format, const char *dst,
                            char *errbuf, size_t errlen);

//  Grow the qcow2 disk path to size_gb GiB; a disk as big or bigger is
//  left as it is (a disk never shrinks: a resize to a smaller flavor is
//  refused before anything moves).  ZV_ENOTFOUND when path is missing,
//  ZV_EINVAL for a size <= 0 or a file that is no qcow2, ZV_EIO when
//  qemu-img fails.  Its backing file must be there: rebase first.
zv_status_t zv_disk_resize (const char *path, int64_t size_gb, char *errbuf, size_t errlen);

//  Make the qcow2 overlay path name backing_raw_path (absolute, raw) as its
//  backing file, as a disk that came from another host must (its old
//  backing path is the other host's cache, which may not exist here):
//  unsafe, only the path changes, never the bytes.  Nothing when it names
//  it already.  ZV_ENOTFOUND when path or the backing file is missing,
//  ZV_EINVAL when path is no qcow2 or has an external data file, ZV_EIO
//  when qemu-img fails.
zv_status_t zv_disk_rebase (const char *path, const char *backing_raw_path, char *errbuf, size_t errlen);

//  ZV_OK when path is a qcow2 disk that refers to no other file (no
//  backing file, no external data file), as an ephemeral or swap disk
//  that came from another host must be; ZV_EINVAL when it does or is no
//  qcow2, ZV_ENOTFOUND when it is missing.
zv_status_t zv_disk_standalone (const char *path, char *errbuf, size_t errlen);

//  `qemu-img info --output=json` of path (format probed, shared lock so a
//  running guest's disk can be read): {"format", "virtual-size",
//  "backing-filename", ...}.  Caller owns; NULL when qemu-img fails.
json_t *zv_disk_info (const char *path);

//  mkdir -p path (mode 0755).  0, or -1 with errno set.
int zv_disk_mkdirs (const char *path);

//  Remove the files of the flat folder dir, then dir.  0 (also when dir is
//  already gone), or -1 with errno set (e.g. EISDIR: dir has a subfolder).
int zv_disk_remove_dir (const char *dir);

#endif
