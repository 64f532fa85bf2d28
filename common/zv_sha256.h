/*  zv_sha256.h: SHA-256 of image bytes, streamed.

    Images are hashed three times on their way (the CLI before upload, the
    conductor when the last chunk lands, each compute host as the chunks
    arrive), so the hash is what bounds an image's transfer.  OpenSSL's
    libcrypto uses the CPU's SHA extensions where it has them (about 1.5
    GB/s here, against 180 MB/s for a portable C implementation); this
    wrapper keeps that one library behind three calls.  Short values
    (console tokens) keep libsodium's one-shot hash.                         */

#ifndef ZV_SHA256_H
#define ZV_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct _zv_sha256_t zv_sha256_t;

//  NULL only when out of memory.
zv_sha256_t *zv_sha256_new (void);
void zv_sha256_destroy (zv_sha256_t **self_p);
void zv_sha256_update (zv_sha256_t *self, const void *data, size_t size);
//  The digest as 64 lowercase hex digits and a NUL; the state is spent.
void zv_sha256_hex (zv_sha256_t *self, char hex [65]);

//  The whole file at path: 0 with hex and *size_p (may be NULL) set, or
//  -1 with errno set.
int zv_sha256_file (const char *path, char hex [65], int64_t *size_p);

//  Free what libcrypto keeps for the calling thread, now: a thread that
//  hashed and is not joined (an actor's, which zactor detaches) calls it
//  last, so that nothing of it is freed again by libcrypto's own cleanup
//  at the process's exit, racing that thread's end.
void zv_sha256_thread_end (void);

#endif
