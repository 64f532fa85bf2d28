/*  zv_movefiles.h: the files of an instance that a cold move carries from
    one host to another, as they lie in a host's instance directory.

    A move on local storage copies an instance's directory chunk by chunk
    through the conductor: the source sets the directory aside
    (<uuid>_resize), says which files it holds with their size and sha256
    (the manifest), and answers reads of one chunk at a time; the
    destination (zv_movepull) writes them into <file>.part and resumes an
    interrupted copy from what the .part holds.  The rules both ends share
    are here, kept pure or blocking-but-stateless so that they can be tested
    alone: which names may travel (a peer's name is never a path), what a
    well-formed manifest is, one chunk read, and where a copy resumes.

    The manifest and the chunk read block on the disk: the manifest hashes
    whole disks and runs on a compute worker; a chunk read is one pread of
    at most ZV_MSG_MAX_PAYLOAD, mostly from the page cache, on the loop.    */

#ifndef ZV_MOVEFILES_H
#define ZV_MOVEFILES_H

#include <jansson.h>
#include "common/zv_common.h"

//  Is name one of the files a move carries (disk, disk.local, disk.swap,
//  console.log)?  Anything else, a path above all, is refused.
bool zv_movefiles_name_ok (const char *name);

//  The manifest of the carried files present in dir, in a fixed order:
//  [{name, size, sha256}] (caller owns).  Only regular files count (a
//  symbolic link is left out: it is no file zova made).  NULL with errbuf
//  when dir or a file cannot be read.  Blocking: reads every byte.
json_t *zv_movefiles_manifest (const char *dir, char *errbuf, size_t errlen);

//  ZV_OK when files is a manifest a destination may act on: an array of
//  {name: an allowed name, each at most once; size: an integer >= 0;
//  sha256: 64 hex digits}.  ZV_EINVAL with errbuf otherwise.
zv_status_t zv_movefiles_check (const json_t *files, char *errbuf, size_t errlen);

//  The chunk [offset, offset + length) of dir/name: *data_p (malloc'd,
//  caller frees; NULL when *length_p is 0) holds *length_p bytes, fewer
//  than length at the end of the file (none at offset == size), and
//  *size_p is the file's size.  ZV_EINVAL for a name that may not travel,
//  a length <= 0, or an offset past the end; ZV_ENOTFOUND when the file
//  is not there (or is no regular file); ZV_EIO on a read error.  length
//  is capped to ZV_MSG_MAX_PAYLOAD.
zv_status_t zv_movefiles_read (const char *dir, const char *name, int64_t offset, int64_t length,
                               void **data_p, size_t *length_p, int64_t *size_p,
                               char *errbuf, size_t errlen);

//  Where a copy of a file of size bytes resumes when its .part is
//  part_size bytes long, written chunk_size at a time with at most window
//  chunks in flight, each at its offset: every byte below the returned
//  offset (a multiple of chunk_size) is known to be written, since only
//  the last window chunks requested can be holes.  0 when nothing is
//  known (an empty .part, or one longer than the file).  The sha256 of the
//  whole file checks the rest.
int64_t zv_movefiles_resume (int64_t part_size, int64_t size, int64_t chunk_size, int window);

#endif
