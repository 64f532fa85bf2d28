/*  zv_sha256.c: SHA-256 on OpenSSL's EVP interface (see zv_sha256.h).     */

#include "common/zv_sha256.h"
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

struct _zv_sha256_t {
    EVP_MD_CTX *ctx;
};

zv_sha256_t *
zv_sha256_new (void)
{
    zv_sha256_t *self = (zv_sha256_t *) calloc (1, sizeof (zv_sha256_t));
    if (!self)
        return NULL;
    self->ctx = EVP_MD_CTX_new ();
    if (!self->ctx || EVP_DigestInit_ex (self->ctx, EVP_sha256 (), NULL) != 1) {
        EVP_MD_CTX_free (self->ctx);
        free (self);
        return NULL;
    }
    return self;
}

void
zv_sha256_destroy (zv_sha256_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    EVP_MD_CTX_free ((*self_p)->ctx);
    free (*self_p);
    *self_p = NULL;
}

void
zv_sha256_update (zv_sha256_t *self, const void *data, size_t size)
{
    EVP_DigestUpdate (self->ctx, data, size);
}

void
zv_sha256_hex (zv_sha256_t *self, char hex [65])
{
    static const char digits [] = "0123456789abcdef";
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex (self->ctx, digest, &length);
    for (unsigned int index = 0; index < 32; index++) {
        hex [2 * index] = digits [digest [index] >> 4];
        hex [2 * index + 1] = digits [digest [index] & 15];
    }
    hex [64] = '\0';
}

int
zv_sha256_file (const char *path, char hex [65], int64_t *size_p)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    zv_sha256_t *sha = zv_sha256_new ();
    unsigned char *buffer = (unsigned char *) malloc (1 << 20);
    if (!sha || !buffer) {
        zv_sha256_destroy (&sha);
        free (buffer);
        close (fd);
        errno = ENOMEM;
        return -1;
    }
    int64_t size = 0;
    ssize_t got;
    while ((got = read (fd, buffer, 1 << 20)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            break;
        zv_sha256_update (sha, buffer, (size_t) got);
        size += got;
    }
    int saved = errno;
    free (buffer);
    close (fd);
    if (got < 0) {
        zv_sha256_destroy (&sha);
        errno = saved;
        return -1;
    }
    zv_sha256_hex (sha, hex);
    zv_sha256_destroy (&sha);
    if (size_p)
        *size_p = size;
    return 0;
}

void
zv_sha256_thread_end (void)
{
    OPENSSL_thread_stop ();
}
