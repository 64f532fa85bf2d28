/*  zv_imageclean.h: which files of a host's image cache are unused, as
    Nova's image cache manager judges them.

    A base file (<cache>/<image id>, raw) is in use while some instance
    directory of the host refers to it: as the backing file of a qcow2 disk
    there (disk, disk.rescue, a disk set aside by a move in <uuid>_resize),
    or as a path in its libvirt.xml (the kernel and ramdisk it boots, and,
    while it is rescued, those of its own image that unrescue boots again).
    A base file no instance uses is removed once it is older than the
    minimum age; one in use is touched at every pass, so its age restarts
    and counts from its last use.  Other hosts that share the instances
    path are seen the same way: their instance directories are there too.

    These are the blocking but stateless parts (the compute's workers run
    them) and the pure decision, kept apart from zv_imagecache, which runs
    a pass and knows what its own loop holds and fetches, so that they can
    be tested alone against a directory the test makes.                    */

#ifndef ZV_IMAGECLEAN_H
#define ZV_IMAGECLEAN_H

#include <jansson.h>
#include "common/zv_common.h"

//  What a pass does with one base file.
typedef enum {
    ZV_IMAGECLEAN_IN_USE,           //  an instance uses it, or the loop holds it: touched
    ZV_IMAGECLEAN_YOUNG,            //  unused, younger than the minimum age: kept
    ZV_IMAGECLEAN_REMOVE,           //  unused and old enough: removed
    ZV_IMAGECLEAN_COUNT
} zv_imageclean_verdict_t;

//  "in_use", "young", "remove".
const char *zv_imageclean_verdict_name (zv_imageclean_verdict_t verdict);

//  The verdict on a base file last modified at mtime_s (seconds since the
//  epoch), used or not, at now_s, with the minimum age min_age_s.  A file
//  from the future (a clock set back) is young.
zv_imageclean_verdict_t zv_imageclean_verdict (bool used, int64_t mtime_s, int64_t now_s,
                                               int64_t min_age_s);

//  The verdicts on every base file: files {id: mtime_s}, used {id: any}
//  (the instances' and the loop's); {id: verdict name} (caller owns).
json_t *zv_imageclean_select (const json_t *files, const json_t *used, int64_t now_s, int64_t min_age_s);

//  The base files of cache_dir: {id: mtime_s} of each regular file named
//  by a canonical image id (a download's .part or .converting is not one)
//  (caller owns).  An empty object when the folder does not exist; NULL
//  with errno when it cannot be read.
json_t *zv_imageclean_list (const char *cache_dir);

//  The backing file a qcow2 file names, as its header says (no qemu-img:
//  a pass reads every disk of the host), into buf.  0, or -1 when path is
//  no qcow2, names no backing file, or cannot be read.
int zv_imageclean_backing (const char *path, char *buf, size_t len);

//  Add to ids {id: where} every base file of cache_dir that the text of a
//  domain's XML names by path (cache_dir "/" id), where saying what names
//  it.
void zv_imageclean_xml_ids (const char *xml, const char *cache_dir, const char *where, json_t *ids);

//  The base files of cache_dir that the instance directories under
//  instances_path use: {id: "<dir>/<file>" that uses it} (caller owns;
//  empty when instances_path does not exist).  Blocking: reads the header
//  of every file of every instance directory and each libvirt.xml.
json_t *zv_imageclean_in_use (const char *instances_path, const char *cache_dir);

#endif
