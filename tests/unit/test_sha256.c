/*  test_sha256.c: zv_sha256 (common/zv_sha256.c) against the standard's
    vectors, streamed in uneven pieces against libsodium's one-shot hash,
    and over files (empty, 3 MiB + 1 byte, missing).                       */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "zv_test.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/zv_sha256.h"

static void
s_hex_of (const char *text, char hex [65])
{
    zv_sha256_t *sha = zv_sha256_new ();
    assert_non_null (sha);
    zv_sha256_update (sha, text, strlen (text));
    zv_sha256_hex (sha, hex);
    zv_sha256_destroy (&sha);
    assert_null (sha);
}

static void
test_sha256_vectors (void **state)
{
    (void) state;
    char hex [65];
    s_hex_of ("", hex);
    assert_string_equal (hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    s_hex_of ("abc", hex);
    assert_string_equal (hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    s_hex_of ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", hex);
    assert_string_equal (hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    zv_sha256_destroy (NULL);
}

static void
test_sha256_streamed (void **state)
{
    (void) state;
    assert_true (sodium_init () >= 0);
    size_t size = 3 * 1024 * 1024 + 17;
    unsigned char *data = malloc (size);
    assert_non_null (data);
    randombytes_buf (data, size);
    zv_sha256_t *sha = zv_sha256_new ();
    size_t at = 0, step = 1;
    while (at < size) {
        size_t take = step < size - at ? step : size - at;
        zv_sha256_update (sha, data + at, take);
        at += take;
        step = step * 3 + 1;
    }
    char hex [65], expected [65];
    zv_sha256_hex (sha, hex);
    zv_sha256_destroy (&sha);
    unsigned char digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, data, size);
    sodium_bin2hex (expected, sizeof expected, digest, sizeof digest);
    assert_string_equal (hex, expected);

    //  The same bytes from a file.
    char path [] = "/tmp/zv-sha256-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, data, size), (ssize_t) size);
    close (fd);
    int64_t length = 0;
    assert_int_equal (zv_sha256_file (path, hex, &length), 0);
    assert_string_equal (hex, expected);
    assert_int_equal (length, (int64_t) size);
    //  An empty file.
    fd = open (path, O_WRONLY | O_TRUNC);
    close (fd);
    assert_int_equal (zv_sha256_file (path, hex, NULL), 0);
    assert_string_equal (hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    unlink (path);
    //  A missing one.
    errno = 0;
    assert_int_equal (zv_sha256_file (path, hex, &length), -1);
    assert_int_equal (errno, ENOENT);
    free (data);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_sha256_vectors),
        cmocka_unit_test (test_sha256_streamed),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
