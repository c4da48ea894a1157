/* Unit tests for src/parse.c: what clients send, and the errors they get. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/parse.h"

#include <stdlib.h>
#include <string.h>

static void test_percent_decode(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct err err;
    char *s = parse_percent_decode("a%2Fb%20c+d", 11, 0, &err);
    assert_string_equal(s, "a/b c+d");
    free(s);
    s = parse_percent_decode("a+b%2b", 6, 1, &err);
    assert_string_equal(s, "a b+");
    free(s);
    s = parse_percent_decode("%E2%9C%93", 9, 0, &err);
    assert_string_equal(s, "\xe2\x9c\x93");
    free(s);
}

static void test_percent_decode_rejects(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char *bad[] = { "%", "%2", "%zz", "abc%4", "%00", "a%0" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct err err;
        err_clear(&err);
        assert_null(parse_percent_decode(bad[i], strlen(bad[i]), 0, &err));
        assert_int_equal(err.code, ERR_INVALID);
    }
}

static void test_u64(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct err err;
    uint64_t v = 7;
    assert_int_equal(parse_u64("offset", "0", &v, &err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse_u64("offset", "9223372036854775807", &v, &err), 0);
    assert_true(v == (uint64_t)INT64_MAX);
    const char *bad[] = { "", "-1", "+1", "1.5", "1e3", " 1", "0x10", "9223372036854775808",
                          "99999999999999999999", "abc" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 42;
        assert_int_equal(parse_u64("limit", bad[i], &v, &err), ERR_INVALID);
        assert_int_equal(v, 42);
        assert_string_equal(err.msg,
                            "invalid request: limit must be an integer from 0 to "
                            "9223372036854775807");
    }
}

static void test_header_u64(void **state)
{
    (void)state; /* no fixture */
    struct err err;
    uint64_t v = 0;
    assert_int_equal(parse_header_u64("Last-Event-ID", "5 ", &v, &err), 0);
    assert_int_equal(v, 5);
    assert_int_equal(parse_header_u64("Last-Event-ID", " \t42\t ", &v, &err), 0);
    assert_int_equal(v, 42);
    assert_int_equal(parse_header_u64("Last-Event-ID", "9223372036854775807 ", &v, &err), 0);
    assert_int_equal(v, 9223372036854775807ULL);
    static const char *const bad[] = {"", "   ", "5 5", "x", "-1", "5\n",
                                      "9223372036854775808", "123456789012345678901234567890"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse_header_u64("Last-Event-ID", bad[i], &v, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "Last-Event-ID"));
}

static void test_bool(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct err err;
    int b = -1;
    assert_int_equal(parse_bool("include_raw", "true", &b, &err), 0);
    assert_int_equal(b, 1);
    assert_int_equal(parse_bool("include_raw", "0", &b, &err), 0);
    assert_int_equal(b, 0);
    assert_int_equal(parse_bool("include_raw", "yes", &b, &err), ERR_INVALID);
    assert_string_equal(err.msg, "invalid request: include_raw must be true or false");
    assert_int_equal(parse_bool("include_raw", "TRUE", &b, &err), ERR_INVALID);
}

static void test_session_id(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct err err;
    assert_int_equal(parse_session_id("s-1_ok.x", &err), 0);
    assert_int_equal(parse_session_id("with/slash and space", &err), 0);
    assert_int_equal(parse_session_id("", &err), ERR_INVALID);
    assert_int_equal(parse_session_id("tab\there", &err), ERR_INVALID);
    assert_int_equal(parse_session_id("del\x7f", &err), ERR_INVALID);
    char long_id[300];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(parse_session_id(long_id, &err), ERR_INVALID);
    long_id[255] = '\0';
    assert_int_equal(parse_session_id(long_id, &err), 0);
}

static void test_body_object(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct err err;
    json_t *obj = NULL;
    assert_int_equal(parse_body_object("{\"agent\":\"mock\"}", 16, &obj, &err), 0);
    assert_string_equal(json_string_value(json_object_get(obj, "agent")), "mock");
    json_decref(obj);
    const char *bad[] = { "", "[]", "\"x\"", "{", "{\"a\":1,\"a\":2}", "{} {}", "nul" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        obj = NULL;
        assert_int_equal(parse_body_object(bad[i], strlen(bad[i]), &obj, &err), ERR_INVALID);
        assert_null(obj);
        assert_true(strncmp(err.msg, "invalid request: body", 21) == 0);
    }
}

static void test_strings(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct err err;
    json_t *obj = json_loads("{\"a\":\"x\",\"n\":null,\"i\":3}", 0, NULL);
    const char *v = "unset";
    assert_int_equal(parse_opt_string(obj, "a", &v, &err), 0);
    assert_string_equal(v, "x");
    assert_int_equal(parse_opt_string(obj, "n", &v, &err), 0);
    assert_null(v);
    assert_int_equal(parse_opt_string(obj, "missing", &v, &err), 0);
    assert_null(v);
    assert_int_equal(parse_opt_string(obj, "i", &v, &err), ERR_INVALID);
    assert_string_equal(err.msg, "invalid request: i must be a string");
    assert_int_equal(parse_req_string(obj, "missing", &v, &err), ERR_INVALID);
    assert_string_equal(err.msg, "invalid request: missing field `missing`");
    assert_int_equal(parse_req_string(obj, "n", &v, &err), ERR_INVALID);
    json_decref(obj);
}

static void test_permission_reply(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct err err;
    const char *ok[] = { "{\"reply\":\"once\"}", "{\"reply\":\"always\"}",
                         "{\"reply\":\"reject\"}" };
    for (size_t i = 0; i < 3; i++) {
        json_t *b = json_loads(ok[i], 0, NULL);
        const char *r = NULL;
        assert_int_equal(parse_permission_reply(b, &r, &err), 0);
        assert_non_null(r);
        json_decref(b);
    }
    const char *bad[] = { "{}", "{\"reply\":\"ONCE\"}", "{\"reply\":1}", "{\"reply\":\"yes\"}" };
    for (size_t i = 0; i < 4; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        const char *r = NULL;
        assert_int_equal(parse_permission_reply(b, &r, &err), ERR_INVALID);
        json_decref(b);
    }
}

static void test_question_answers(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct err err;
    json_t *b = json_loads("{\"answers\":[[\"Red\"],[]]}", 0, NULL);
    const json_t *a = NULL;
    assert_int_equal(parse_question_answers(b, &a, &err), 0);
    assert_int_equal(json_array_size(a), 2);
    json_decref(b);
    const char *bad[] = { "{}", "{\"answers\":\"Red\"}", "{\"answers\":[\"Red\"]}",
                          "{\"answers\":[[1]]}", "{\"answers\":null}" };
    const char *msg[] = { "invalid request: missing field `answers`",
                          "invalid request: answers must be an array of arrays of strings",
                          "invalid request: answers[0] must be an array",
                          "invalid request: answers[0][0] must be a string",
                          "invalid request: answers must be an array of arrays of strings" };
    for (size_t i = 0; i < 5; i++) {
        b = json_loads(bad[i], 0, NULL);
        assert_int_equal(parse_question_answers(b, &a, &err), ERR_INVALID);
        assert_string_equal(err.msg, msg[i]);
        json_decref(b);
    }
}

static void test_install_request(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct err err;
    int r = -1;
    assert_int_equal(parse_install_request("", 0, &r, &err), 0);
    assert_int_equal(r, 0);
    assert_int_equal(parse_install_request("{\"reinstall\":true}", 18, &r, &err), 0);
    assert_int_equal(r, 1);
    assert_int_equal(parse_install_request("{\"reinstall\":null}", 18, &r, &err), 0);
    assert_int_equal(r, 0);
    assert_int_equal(parse_install_request("{\"reinstall\":\"yes\"}", 19, &r, &err),
                     ERR_INVALID);
    assert_int_equal(parse_install_request("[]", 2, &r, &err), ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_percent_decode_rejects),
        cmocka_unit_test(test_u64),
        cmocka_unit_test(test_header_u64),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_session_id),
        cmocka_unit_test(test_body_object),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_permission_reply),
        cmocka_unit_test(test_question_answers),
        cmocka_unit_test(test_install_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
