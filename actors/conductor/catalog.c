/*  catalog.c: what servers are made from: flavors and images (Glance's
    part of the conductor), and the image records an instance's host needs.

    Image metadata is a store record; the bytes are a file under
    <state_path>/images, written chunk by chunk at the offset the record
    expects (<id>.part), checked against the declared size and sha256 on
    the last chunk, synced and renamed into place.  A compute fetches them
    back in chunks (image_download) for its image cache, and a user with
    image save (image_read: the same chunks).  image set renames and sets
    properties, never the bytes.                                             */

#include "actors/conductor/conductor.h"
#include "common/zv_sha256.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  Flavors

//  conductor.flavor_create
static bool
s_same_name (zv_conductor_t *self, json_t *rec, void *arg)
{
    (void) self;
    const char *name = s_str (rec, "name");
    return name && strcmp (name, (const char *) arg) == 0;
}

zv_status_t
zv_conductor_flavor_create (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *name = zv_msg_get_str (msg, "name");
    if (!zv_conductor_valid_name ("flavor", name, errbuf, errlen))
        return ZV_EINVAL;
    json_t *same = zv_conductor_collect (self, txn, ZV_TABLE_FLAVORS, s_same_name, (void *) name);
    size_t count = json_array_size (same);
    json_decref (same);
    if (count) {
        snprintf (errbuf, errlen, "Flavor with name %s already exists.", name);
        return ZV_EEXIST;
    }
    char id [ZV_UUID_LEN + 1];
    if (zv_msg_get_str (msg, "id"))
        snprintf (id, sizeof id, "%.36s", zv_msg_get_str (msg, "id"));
    else
        zv_uuid_new (id);
    if (strchr (id, '/')) {
        snprintf (errbuf, errlen, "Flavor id must not contain '/'.");
        return ZV_EINVAL;
    }
    char now [32];
    json_t *flavor = json_pack ("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:s, s:{}}",
        "id", id, "name", name,
        "vcpus", (json_int_t) zv_msg_get_int (msg, "vcpus", 1),
        "ram_mb", (json_int_t) zv_msg_get_int (msg, "ram_mb", 1),
        "disk_gb", (json_int_t) zv_msg_get_int (msg, "disk_gb", 0),
        "ephemeral_gb", (json_int_t) zv_msg_get_int (msg, "ephemeral_gb", 0),
        "swap_mb", (json_int_t) zv_msg_get_int (msg, "swap_mb", 0),
        "is_public", zv_msg_get_bool (msg, "is_public", true),
        "created_at", s_iso_now (now), "extra_specs");
    zv_status_t status = zv_store_insert (txn, ZV_TABLE_FLAVORS, id, flavor);
    if (status == ZV_EEXIST)
        snprintf (errbuf, errlen, "Flavor with ID %s already exists.", id);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "flavor", flavor);
    else
        json_decref (flavor);
    return status;
}

//  Flavors and images are listed and shown alike (the route's row says which).
const zv_conductor_resource_t zv_conductor_flavors = { ZV_TABLE_FLAVORS, "flavor", "flavors" };
const zv_conductor_resource_t zv_conductor_images = { ZV_TABLE_IMAGES, "image", "images" };

zv_status_t
zv_conductor_resource_list (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    (void) errbuf;
    (void) errlen;
    const zv_conductor_resource_t *resource = (const zv_conductor_resource_t *) call->route_arg;
    call->reply = json_pack ("{s:o}", resource->plural, zv_conductor_collect (self, txn, resource->table, NULL, NULL));
    return ZV_OK;
}

zv_status_t
zv_conductor_resource_show (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    (void) self;
    const zv_conductor_resource_t *resource = (const zv_conductor_resource_t *) call->route_arg;
    json_t *rec = NULL;
    zv_status_t status = zv_conductor_find (txn, resource->table, resource->singular,
                                            zv_msg_get_str (call->msg, "ref"), NULL, &rec, errbuf, errlen);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", resource->singular, zv_conductor_strip (rec));
    return status;
}

zv_status_t
zv_conductor_flavor_delete (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                            char *errbuf, size_t errlen)
{
    (void) self;
    json_t *flavor = NULL;
    zv_status_t status = zv_conductor_find (txn, ZV_TABLE_FLAVORS, "flavor", zv_msg_get_str (call->msg, "ref"),
                                            NULL, &flavor, errbuf, errlen);
    if (status == ZV_OK) {
        //  Instances keep their own copy of the flavor, as Nova's do.
        status = zv_store_del (txn, ZV_TABLE_FLAVORS, s_str (flavor, "id"));
        json_decref (flavor);
        call->reply = json_object ();
    }
    return status;
}

//  ---------------------------------------------------------------------
//  Images: metadata in the store, bytes in <state_path>/images/<id>
static void
s_image_path (zv_conductor_t *self, const char *id, bool partial, char *path, size_t len)
{
    snprintf (path, len, "%s/%s%s", self->images_dir, id, partial ? ".part" : "");
}

zv_status_t
zv_conductor_image_create (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                           char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    if (!zv_conductor_valid_name ("image", zv_msg_get_str (msg, "name"), errbuf, errlen))
        return ZV_EINVAL;
    const char *format = zv_msg_get_str (msg, "disk_format");
    if (!format)
        format = "raw";
    static const char *formats [] = { "raw", "qcow2", "ami", "ari", "aki", "iso", NULL };
    bool known = false;
    for (int index = 0; formats [index]; index++)
        known |= strcmp (formats [index], format) == 0;
    if (!known) {
        snprintf (errbuf, errlen, "Invalid disk format '%s' (raw, qcow2, ami, ari, aki, iso).", format);
        return ZV_EINVAL;
    }
    char id [ZV_UUID_LEN + 1], now [32], path [1200];
    zv_uuid_new (id);
    const char *container = zv_msg_get_str (msg, "container_format");
    json_t *properties = json_object_get (zv_msg_body (msg), "properties");
    const char *checksum = zv_msg_get_str (msg, "checksum");
    json_t *image = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:s, s:o, s:s, s:s, s:s}",
        "id", id, "name", zv_msg_get_str (msg, "name"), "status", "queued",
        "disk_format", format, "container_format", container ? container : "bare",
        "size", (json_int_t) zv_msg_get_int (msg, "size", 0), "received", (json_int_t) 0,
        "checksum", checksum ? json_string (checksum) : json_null (),
        "os_hash_algo", "sha256",
        "properties", json_is_object (properties) ? json_incref (properties) : json_object (),
        "owner", zv_conductor_project (call),
        "created_at", s_iso_now (now), "updated_at", now);
    s_image_path (self, id, true, path, sizeof path);
    int fd = open (path, O_CREAT | O_TRUNC | O_WRONLY, 0640);
    if (fd < 0) {
        snprintf (errbuf, errlen, "cannot create image file %s: %s", path, strerror (errno));
        json_decref (image);
        return ZV_EIO;
    }
    close (fd);
    zv_status_t status = zv_store_insert (txn, ZV_TABLE_IMAGES, id, image);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:o}", "image", image);
    else
        json_decref (image);
    return status;
}

//  sha256 of a file as lowercase hex into hex[65].
static zv_status_t
s_file_sha256 (const char *path, char hex [65], int64_t *size_p, char *errbuf, size_t errlen)
{
    if (zv_sha256_file (path, hex, size_p) != 0) {
        snprintf (errbuf, errlen, "cannot read %s: %s", path, strerror (errno));
        return ZV_EIO;
    }
    return ZV_OK;
}

zv_status_t
zv_conductor_image_upload (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                           char *errbuf, size_t errlen)
{
    const zv_msg_t *msg = call->msg;
    const char *id = zv_msg_get_str (msg, "id");
    json_t *image = NULL;
    if (zv_store_get (txn, ZV_TABLE_IMAGES, id, &image) != ZV_OK) {
        snprintf (errbuf, errlen, "Image %s could not be found.", id);
        return ZV_ENOTFOUND;
    }
    zv_status_t status = ZV_OK;
    const char *state = s_str (image, "status");
    int64_t offset = zv_msg_get_int (msg, "offset", 0);
    int64_t received = s_int (image, "received");
    int64_t declared = s_int (image, "size");
    size_t size = 0;
    const void *data = zv_msg_payload (msg, &size);
    char path [1200], final [1200];
    s_image_path (self, id, true, path, sizeof path);
    s_image_path (self, id, false, final, sizeof final);
    if (strcmp (state, "queued") != 0 && strcmp (state, "saving") != 0) {
        snprintf (errbuf, errlen, "Image %s is %s; data can only be uploaded to a queued image.", id, state);
        status = ZV_ECONFLICT;
    }
    else
    if (offset != received) {
        snprintf (errbuf, errlen, "Image %s: chunk at offset %lld, expected %lld.", id,
                  (long long) offset, (long long) received);
        status = ZV_ECONFLICT;
    }
    else
    if (received + (int64_t) size > declared) {
        snprintf (errbuf, errlen, "Image %s: data exceeds the declared size of %lld bytes.", id,
                  (long long) declared);
        status = ZV_ETOOBIG;
    }
    if (status == ZV_OK && size) {
        int fd = open (path, O_WRONLY);
        ssize_t wrote = fd < 0 ? -1 : pwrite (fd, data, size, offset);
        if (fd < 0 || wrote != (ssize_t) size) {
            snprintf (errbuf, errlen, "cannot write image data to %s: %s", path, strerror (errno));
            status = ZV_EIO;
        }
        if (fd >= 0)
            close (fd);
    }
    if (status == ZV_OK) {
        char now [32];
        received += (int64_t) size;
        json_object_set_new (image, "received", json_integer (received));
        json_object_set_new (image, "status", json_string ("saving"));
        json_object_set_new (image, "updated_at", json_string (s_iso_now (now)));
        if (zv_msg_get_bool (msg, "last", false)) {
            char hex [65];
            int64_t length = 0;
            status = s_file_sha256 (path, hex, &length, errbuf, errlen);
            const char *expected = s_str (image, "checksum");
            if (status == ZV_OK && length != declared) {
                snprintf (errbuf, errlen, "Image %s: received %lld bytes, declared %lld.", id,
                          (long long) length, (long long) declared);
                status = ZV_EINVAL;
            }
            else
            if (status == ZV_OK && expected && strcmp (expected, hex) != 0) {
                snprintf (errbuf, errlen, "Image %s: checksum mismatch (expected %s, got %s).", id, expected, hex);
                status = ZV_EINVAL;
            }
            if (status == ZV_OK) {
                int fd = open (path, O_RDONLY);
                if (fd >= 0) {
                    fsync (fd);
                    close (fd);
                }
                if (rename (path, final) != 0) {
                    snprintf (errbuf, errlen, "cannot store image %s: %s", final, strerror (errno));
                    status = ZV_EIO;
                }
            }
            if (status == ZV_OK) {
                json_object_set_new (image, "checksum", json_string (hex));
                json_object_set_new (image, "os_hash_value", json_string (hex));
                json_object_set_new (image, "status", json_string ("active"));
            }
            else {
                //  A failed upload is final, as Glance's "killed": the record
                //  stays (committed) to say why, the bytes go, the caller
                //  gets the error.
                json_object_set_new (image, "status", json_string ("killed"));
                unlink (path);
                call->error = status;
                snprintf (call->errtext, sizeof call->errtext, "%s", errbuf);
                status = ZV_OK;
            }
        }
        if (status == ZV_OK)
            status = zv_store_put (txn, ZV_TABLE_IMAGES, id, image);
    }
    if (status == ZV_OK)
        call->reply = json_pack ("{s:O}", "image", zv_conductor_strip (image));
    json_decref (image);
    return status;
}

zv_status_t
zv_conductor_image_delete (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                           char *errbuf, size_t errlen)
{
    json_t *image = NULL;
    zv_status_t status = zv_conductor_find (txn, ZV_TABLE_IMAGES, "image", zv_msg_get_str (call->msg, "ref"),
                                            NULL, &image, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    //  An image is deleted by its owner's project or an admin (Glance's
    //  default policy).
    const char *owner = s_str (image, "owner");
    if (!zv_conductor_is_admin (call) && owner && *owner && !streq (owner, zv_conductor_project (call))) {
        json_decref (image);
        return zv_conductor_forbidden ("delete_image", errbuf, errlen);
    }
    const char *id = s_str (image, "id");
    status = zv_store_del (txn, ZV_TABLE_IMAGES, id);
    if (status == ZV_OK) {
        //  The bytes go with the record, as Glance deletes an image that
        //  servers were booted from: their hosts keep the cached copy
        //  (their disks' backing file), so the servers run, reboot and hard
        //  reboot from it; only a host without it can no longer get it.
        char path [1200];
        s_image_path (self, id, false, path, sizeof path);
        unlink (path);
        s_image_path (self, id, true, path, sizeof path);
        unlink (path);
        call->reply = json_object ();
    }
    json_decref (image);
    return status;
}

//  One chunk of an active image's bytes into the call's payload, with what
//  the reader checks them against: {id, offset, length, size, checksum,
//  disk_format, last}.  Compute hosts (image_download) and users (image
//  save, image_read) read alike.
static zv_status_t
s_image_chunk (zv_conductor_t *self, const json_t *image, zv_conductor_call_t *call, char *errbuf, size_t errlen)
{
    const char *id = s_str (image, "id");
    int64_t size = s_int (image, "size");
    int64_t offset = zv_msg_get_int (call->msg, "offset", 0);
    int64_t length = zv_msg_get_int (call->msg, "length", 0);
    if (strcmp (s_str (image, "status"), "active") != 0) {
        snprintf (errbuf, errlen, "Image %s is %s: it has no data to download.", id, s_str (image, "status"));
        return ZV_ECONFLICT;
    }
    if (offset > size) {
        snprintf (errbuf, errlen, "Image %s: offset %lld is past its size %lld.", id,
                  (long long) offset, (long long) size);
        return ZV_EINVAL;
    }
    if (length > size - offset)
        length = size - offset;
    char path [1200];
    s_image_path (self, id, false, path, sizeof path);
    call->payload = malloc (length ? (size_t) length : 1);
    int fd = open (path, O_RDONLY);
    ssize_t got = fd < 0 ? -1 : pread (fd, call->payload, (size_t) length, offset);
    if (fd >= 0)
        close (fd);
    if (got != (ssize_t) length) {
        snprintf (errbuf, errlen, "cannot read image %s from %s: %s", id, path,
                  got < 0 ? strerror (errno) : "file shorter than the image");
        free (call->payload);
        call->payload = NULL;
        return ZV_EIO;
    }
    call->payload_size = (size_t) length;
    call->reply = json_pack ("{s:s, s:I, s:I, s:I, s:O, s:O, s:b}", "id", id,
                             "offset", (json_int_t) offset, "length", (json_int_t) length,
                             "size", (json_int_t) size, "checksum", json_object_get (image, "checksum"),
                             "disk_format", json_object_get (image, "disk_format"),
                             "last", offset + length >= size);
    return ZV_OK;
}

//  conductor.image_download: one chunk of an active image's bytes, for a
//  compute host's image cache (virt/zv_imagecache.c).
zv_status_t
zv_conductor_image_download (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                             char *errbuf, size_t errlen)
{
    const char *id = zv_msg_get_str (call->msg, "id");
    json_t *image = NULL;
    if (zv_store_get (txn, ZV_TABLE_IMAGES, id, &image) != ZV_OK) {
        snprintf (errbuf, errlen, "Image %s could not be found.", id);
        return ZV_ENOTFOUND;
    }
    zv_status_t status = s_image_chunk (self, image, call, errbuf, errlen);
    json_decref (image);
    return status;
}

//  conductor.image_read: the same chunks for a user (zova image save), the
//  image named by id or name.  Anyone who may show an image may read it.
zv_status_t
zv_conductor_image_read (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                         char *errbuf, size_t errlen)
{
    json_t *image = NULL;
    zv_status_t status = zv_conductor_find (txn, ZV_TABLE_IMAGES, "image", zv_msg_get_str (call->msg, "ref"),
                                            NULL, &image, errbuf, errlen);
    if (status == ZV_OK)
        status = s_image_chunk (self, image, call, errbuf, errlen);
    json_decref (image);
    return status;
}

//  Names Glance keeps for an image's own attributes (and those zova's
//  record adds): never a property, so that a property cannot pass for
//  one of them.
static const char *s_image_attributes [] = {
    "id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo",
    "os_hash_value", "owner", "size", "virtual_size", "container_format", "disk_format",
    "created_at", "updated_at", "tags", "direct_url", "locations", "location", "self", "file",
    "schema", "min_ram", "min_disk", "properties", "received", NULL
};

//  Glance's image_property_quota.
#define S_IMAGE_PROPERTY_MAX    128
#define S_IMAGE_VALUE_MAX       65535

static zv_status_t
s_check_image_properties (const json_t *properties, char *errbuf, size_t errlen)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) properties, key, value) {
        size_t length = strlen (key);
        bool printable = length > 0 && length <= 255;
        for (size_t index = 0; printable && index < length; index++)
            printable = (unsigned char) key [index] > 0x20 && key [index] != 0x7f;
        if (!printable) {
            snprintf (errbuf, errlen, "Invalid property name '%.255s': 1 to 255 printable bytes, "
                      "without spaces.", key);
            return ZV_EINVAL;
        }
        for (int index = 0; s_image_attributes [index]; index++)
            if (streq (key, s_image_attributes [index])) {
                snprintf (errbuf, errlen, "Attribute '%s' is reserved: it is not a property%s.", key,
                          streq (key, "name") ? " (set the name with --name)" : "");
                return ZV_EINVAL;
            }
        if (!json_is_string (value) && !json_is_null (value)) {
            snprintf (errbuf, errlen, "Invalid value of property '%s': a string, or null to unset.", key);
            return ZV_EINVAL;
        }
        if (json_is_string (value) && json_string_length (value) > S_IMAGE_VALUE_MAX) {
            snprintf (errbuf, errlen, "Invalid value of property '%s': longer than %d bytes.", key,
                      S_IMAGE_VALUE_MAX);
            return ZV_EINVAL;
        }
    }
    return ZV_OK;
}

//  conductor.image_set: a new name, properties set or unset (Glance's image
//  update), by the image's owner or an admin.  The bytes never change: an
//  image's checksum stays true to them, so what a host cached of it stays
//  valid.
zv_status_t
zv_conductor_image_set (zv_conductor_t *self, zv_txn_t *txn, zv_conductor_call_t *call,
                        char *errbuf, size_t errlen)
{
    (void) self;
    const zv_msg_t *msg = call->msg;
    const char *name = zv_msg_get_str (msg, "name");
    json_t *properties = json_object_get (zv_msg_body (msg), "properties");
    if (name && !zv_conductor_valid_name ("image", name, errbuf, errlen))
        return ZV_EINVAL;
    zv_status_t status = s_check_image_properties (properties, errbuf, errlen);
    json_t *image = NULL;
    if (status == ZV_OK)
        status = zv_conductor_find (txn, ZV_TABLE_IMAGES, "image", zv_msg_get_str (msg, "ref"), NULL,
                                    &image, errbuf, errlen);
    if (status != ZV_OK)
        return status;
    const char *owner = s_str (image, "owner");
    if (!zv_conductor_is_admin (call) && owner && *owner && !streq (owner, zv_conductor_project (call))) {
        json_decref (image);
        return zv_conductor_forbidden ("modify_image", errbuf, errlen);
    }
    json_t *have = json_object_get (image, "properties");
    if (!json_is_object (have)) {
        have = json_object ();
        json_object_set_new (image, "properties", have);
    }
    const char *key;
    json_t *value;
    json_object_foreach (properties, key, value) {
        if (json_is_null (value))
            json_object_del (have, key);
        else
            json_object_set (have, key, value);
    }
    if (json_object_size (have) > S_IMAGE_PROPERTY_MAX) {
        snprintf (errbuf, errlen, "Maximum number of image properties (%d) exceeded.", S_IMAGE_PROPERTY_MAX);
        json_decref (image);
        return ZV_ETOOBIG;
    }
    char now [32];
    if (name)
        json_object_set_new (image, "name", json_string (name));
    json_object_set_new (image, "updated_at", json_string (s_iso_now (now)));
    status = zv_store_put (txn, ZV_TABLE_IMAGES, s_str (image, "id"), image);
    if (status == ZV_OK)
        call->reply = json_pack ("{s:O}", "image", zv_conductor_strip (image));
    json_decref (image);
    return status;
}

//  ---------------------------------------------------------------------
//  The image records an instance's host needs

//  Every image record an instance's domain needs on its host, by id: its
//  image, that image's kernel and ramdisk (Glance's kernel_id/ramdisk_id
//  properties), and the same for a rescue image.  Images that are gone
//  are left out; the compute says what is missing.
static void
s_add_image (zv_txn_t *txn, json_t *images, const char *id)
{
    json_t *image = NULL;
    if (!id || !*id || json_object_get (images, id) || zv_store_get (txn, ZV_TABLE_IMAGES, id, &image) != ZV_OK)
        return;
    json_object_set_new (images, id, zv_conductor_strip (image));
    json_t *properties = json_object_get (image, "properties");
    s_add_image (txn, images, s_str (properties, "kernel_id"));
    s_add_image (txn, images, s_str (properties, "ramdisk_id"));
}

json_t *
zv_conductor_action_images (zv_txn_t *txn, const json_t *rec, const char *rescue_image)
{
    json_t *images = json_object ();
    s_add_image (txn, images, s_str (json_object_get (rec, "image"), "id"));
    s_add_image (txn, images, rescue_image);
    return images;
}
