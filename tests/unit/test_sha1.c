/* Unit tests of src/base/sha1.c against FIPS 180-4's examples (and the
 * million 'a's), fed whole and in uneven pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/sha1.h"

#include <stdio.h>
#include <string.h>

static void check_sha1(const void *data, size_t len, const char *want)
{
    unsigned char d[SHA1_DIGEST_LEN];
    char got[2 * SHA1_DIGEST_LEN + 1];
    sha1_digest(data, len, d);
    for (size_t i = 0; i < sizeof d; i++)
        snprintf(got + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(got, want);
}

static void test_fips_180(void **state)
{
    (void)state; /* cmocka fixture unused */
    check_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    check_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha1(two, strlen(two), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    /* 55, 56 and 64 bytes: the padding's boundary cases. */
    check_sha1("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 55,
               "c1c8bbdc22796e28c0e15163d20899b65621d65a");
    check_sha1("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 56,
               "c2db330f6083854c99d4b5bfb6e8f29f201be699");
}

static void test_million_a(void **state)
{
    (void)state; /* cmocka fixture unused */
    static char a[1000];
    memset(a, 'a', sizeof a);
    struct sha1 s;
    sha1_init(&s);
    size_t done = 0, step = 1;
    while (done < 1000000) {
        size_t n = step < 1000000 - done ? step : 1000000 - done;
        if (n > sizeof a)
            n = sizeof a;
        sha1_update(&s, a, n);
        done += n;
        step = step * 7 % 997 + 1;
    }
    unsigned char d[SHA1_DIGEST_LEN];
    char got[2 * SHA1_DIGEST_LEN + 1];
    sha1_final(&s, d);
    for (size_t i = 0; i < sizeof d; i++)
        snprintf(got + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(got, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_180),
        cmocka_unit_test(test_million_a),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
