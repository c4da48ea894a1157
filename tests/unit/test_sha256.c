/* Unit tests of src/base/sha256.c and src/base/base64.c against published
 * vectors: FIPS 180-4's examples (and the million 'a's), RFC 4231's
 * HMAC-SHA256 cases, RFC 4648's base64 examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/base64.h"
#include "base/sha256.h"

#include <stdio.h>
#include <string.h>

static void hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_sha(const void *data, size_t len, const char *want)
{
    unsigned char d[SHA256_DIGEST_LEN];
    char got[65];
    sha256_digest(data, len, d);
    hex(d, sizeof d, got);
    assert_string_equal(got, want);
}

static void test_fips_180(void **state)
{
    (void)state; /* cmocka fixture unused */
    check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha(two, strlen(two),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* One million 'a's, fed in uneven pieces so every buffering path runs. */
    static char a[1000];
    memset(a, 'a', sizeof a);
    struct sha256 s;
    sha256_init(&s);
    size_t fed = 0, step = 1;
    while (fed < 1000000) {
        size_t n = step < 1000000 - fed ? step : 1000000 - fed;
        if (n > sizeof a)
            n = sizeof a;
        sha256_update(&s, a, n);
        fed += n;
        step = step * 7 % 997 + 1;
    }
    unsigned char d[SHA256_DIGEST_LEN];
    char got[65];
    sha256_final(&s, d);
    hex(d, sizeof d, got);
    assert_string_equal(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* 55, 56 and 64 bytes: the padding's edges. */
    check_sha(a, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    check_sha(a, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    check_sha(a, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

static void check_hmac(const void *key, size_t klen, const void *data, size_t len,
                       const char *want)
{
    unsigned char d[SHA256_DIGEST_LEN];
    char got[65];
    sha256_hmac(key, klen, data, len, d);
    hex(d, sizeof d, got);
    assert_string_equal(got, want);
}

static void test_rfc_4231(void **state)
{
    (void)state; /* cmocka fixture unused */
    unsigned char k[131];
    memset(k, 0x0b, 20);
    check_hmac(k, 20, "Hi There", 8,
               "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    check_hmac("Jefe", 4, "what do ya want for nothing?", 28,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    unsigned char d50[50];
    memset(k, 0xaa, 20);
    memset(d50, 0xdd, sizeof d50);
    check_hmac(k, 20, d50, sizeof d50,
               "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    unsigned char k25[25];
    for (int i = 0; i < 25; i++)
        k25[i] = (unsigned char)(i + 1);
    memset(d50, 0xcd, sizeof d50);
    check_hmac(k25, sizeof k25, d50, sizeof d50,
               "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
    /* Case 6 and 7: a key longer than a block is hashed first. */
    memset(k, 0xaa, 131);
    const char *c6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    check_hmac(k, 131, c6, strlen(c6),
               "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    const char *c7 = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the "
                     "HMAC algorithm.";
    check_hmac(k, 131, c7, strlen(c7),
               "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
    /* In steps: the same as in one call. */
    struct sha256_hmac m;
    unsigned char one[SHA256_DIGEST_LEN], steps[SHA256_DIGEST_LEN];
    sha256_hmac(k, 131, c7, strlen(c7), one);
    sha256_hmac_init(&m, k, 131);
    sha256_hmac_update(&m, c7, 10);
    sha256_hmac_update(&m, c7 + 10, strlen(c7) - 10);
    sha256_hmac_final(&m, steps);
    assert_memory_equal(one, steps, sizeof one);
}

static void test_base64_rfc_4648(void **state)
{
    (void)state; /* cmocka fixture unused */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                        "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        char out[BASE64_ENCODED_SIZE(6)];
        assert_int_equal(base64_encode(plain[i], strlen(plain[i]), out), strlen(coded[i]));
        assert_string_equal(out, coded[i]);
        unsigned char back[8];
        size_t n = 99;
        assert_int_equal(base64_decode(coded[i], strlen(coded[i]), back, &n), 0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(back, plain[i], n);
    }
    unsigned char b[16];
    size_t n = 0;
    assert_int_equal(base64_decode("Zm9vYg", 6, b, &n), 0); /* padding left off */
    assert_int_equal(n, 4);
    assert_int_equal(base64_decode("Zm9v!mFy", 8, b, &n), -1);
    assert_int_equal(base64_decode("Zm9vY", 5, b, &n), -1);
    assert_int_equal(base64_decode("Zh==", 4, b, &n), -1); /* stray bits */
    assert_int_equal(base64_decode("Zm 9", 4, b, &n), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_180),
        cmocka_unit_test(test_rfc_4231),
        cmocka_unit_test(test_base64_rfc_4648),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
