/* Unit tests of the webhook target's pure parts (src/export/export_webhook.c):
 * the Standard Webhooks signature reproduces the convention's published
 * example exactly (so a receiver's stock library accepts ours, and a wrong
 * key is caught), the secret file's format, and the delivery id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "export/export_webhook.h"

#include <string.h>

/* The example published with the Standard Webhooks specification and its
 * reference libraries. */
static const char spec_secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static const char spec_id[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
static const int64_t spec_ts = 1614265330;
static const char spec_body[] = "{\"test\": 2432232314}";
static const char spec_sig[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

static void test_spec_vector(void **state)
{
    (void)state; /* cmocka fixture unused */
    unsigned char key[EXPORT_WEBHOOK_KEY_MAX];
    size_t len = 0;
    struct err e;
    assert_int_equal(export_webhook_secret_parse(spec_secret, key, &len, &e), 0);
    assert_int_equal(len, 24);
    char sig[EXPORT_WEBHOOK_SIGNATURE_SIZE];
    export_webhook_sign(key, len, spec_id, spec_ts, spec_body, strlen(spec_body), sig);
    assert_string_equal(sig, spec_sig);
    /* A wrong key, body, id or timestamp gives another signature. */
    key[0] ^= 1;
    export_webhook_sign(key, len, spec_id, spec_ts, spec_body, strlen(spec_body), sig);
    assert_string_not_equal(sig, spec_sig);
    key[0] ^= 1;
    export_webhook_sign(key, len, spec_id, spec_ts + 1, spec_body, strlen(spec_body), sig);
    assert_string_not_equal(sig, spec_sig);
    export_webhook_sign(key, len, "msg_other", spec_ts, spec_body, strlen(spec_body), sig);
    assert_string_not_equal(sig, spec_sig);
    export_webhook_sign(key, len, spec_id, spec_ts, spec_body, strlen(spec_body) - 1, sig);
    assert_string_not_equal(sig, spec_sig);
}

static void test_secret_format(void **state)
{
    (void)state; /* cmocka fixture unused */
    unsigned char key[EXPORT_WEBHOOK_KEY_MAX], key2[EXPORT_WEBHOOK_KEY_MAX];
    size_t len = 0, len2 = 0;
    struct err e;
    /* Blanks and a line ending around it; the prefix may be left off. */
    assert_int_equal(export_webhook_secret_parse("  whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\r\n",
                                                 key, &len, &e), 0);
    assert_int_equal(export_webhook_secret_parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key2,
                                                 &len2, &e), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(key, key2, len);
    static const char *const bad[] = {"", "whsec_", "whsec_not base64!", "whsec_Zh==",
                                      "whsec_a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        assert_int_equal(export_webhook_secret_parse(bad[i], key, &len, &e), ERR_INVALID);
        assert_non_null(strstr(e.msg, "webhook secret"));
        if (strlen(bad[i]) > 10)
            assert_null(strstr(e.msg, bad[i] + 6)); /* never quoted */
    }
    char big[600] = "whsec_";
    memset(big + 6, 'A', 400); /* 300 bytes: too long */
    assert_int_equal(export_webhook_secret_parse(big, key, &len, &e), ERR_INVALID);
}

static void test_delivery_id(void **state)
{
    (void)state; /* cmocka fixture unused */
    char a[EXPORT_WEBHOOK_ID_SIZE], b[EXPORT_WEBHOOK_ID_SIZE];
    export_webhook_id("demo", 1, 7, a);
    export_webhook_id("demo", 1, 7, b);
    assert_string_equal(a, b); /* a re-delivery, even after a restart */
    assert_int_equal(strlen(a), 36);
    assert_memory_equal(a, "msg_", 4);
    export_webhook_id("demo", 1, 8, b);
    assert_string_not_equal(a, b);
    export_webhook_id("demo", 2, 7, b);
    assert_string_not_equal(a, b);
    export_webhook_id("demo1", 1, 7, b); /* no run-together: "demo1"+"1" vs "demo"+"11" */
    export_webhook_id("demo", 11, 7, a);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vector),
        cmocka_unit_test(test_secret_format),
        cmocka_unit_test(test_delivery_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
