/*  zv_test.h: the few helpers every unit test shares.  Header only (each
    test is its own program); include it after cmocka's headers.  Tests run
    from the repository root, so data paths are "tests/data/...".          */

#ifndef ZV_TEST_H
#define ZV_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

//  A whole file as a NUL-terminated string (caller frees), NULL if absent.
static inline char *
zv_test_slurp (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert_non_null (out);
    char chunk [4096];
    size_t got;
    while ((got = fread (chunk, 1, sizeof chunk, file)) > 0)
        fwrite (chunk, 1, got, out);
    fclose (out);
    fclose (file);
    return text;
}

//  Does text contain part?  Says what was missing when not.
static inline bool
zv_test_has (const char *text, const char *part)
{
    if (!strstr (text, part))
        print_error ("expected '%s' in '%s'\n", part, text);
    return strstr (text, part) != NULL;
}

#endif
