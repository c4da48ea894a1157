/* Out-of-memory tests of src/http/parse.c: query values (percent-decoding,
 * integers, booleans), Last-Event-ID, session ids and JSON request bodies
 * under a failing Nth allocation (oom_alloc.h).  A parser that ran out of
 * memory must say so (ERR_NOMEM, a 503), not blame the client's input
 * (ERR_INVALID, a 400), leave its outputs untouched and work when called
 * again. */
#include "base/err.h"
#include "http/parse.h"

#include "oom_alloc.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h> /* cmocka needs these three first */
#include <cmocka.h>

/* ---- query values --------------------------------------------------------- */

static int query_attempt(void *arg)
{
    (void)arg;
    static const char q[] = "a%20b+c%2Fd%C3%A9";
    struct err e;
    err_clear(&e);
    uint64_t offset = 0, last = 0;
    int flag = -1;
    oom_arm();
    char *v = parse_percent_decode(q, sizeof q - 1, 1, &e);
    int rc_v = v ? 0 : e.code;
    int rc_o = parse_u64("offset", "9223372036854775807", &offset, &e);
    int rc_b = parse_bool("include_raw", "true", &flag, &e);
    /* What the SSE route does with a Last-Event-ID header. */
    int rc_l = parse_u64("Last-Event-ID", "42", &last, &e);
    int rc_s = parse_session_id("sess-\xC3\xA9", &e);
    int fired = oom_disarm();
    if (!v) {
        assert_true(fired);
        assert_int_equal(rc_v, ERR_NOMEM);
        /* Again, with memory: the same answer as always. */
        v = parse_percent_decode(q, sizeof q - 1, 1, &e);
    }
    assert_string_equal(v, "a b c/d\xC3\xA9");
    free(v);
    assert_int_equal(rc_o, 0);
    assert_true(offset == (uint64_t)INT64_MAX);
    assert_int_equal(rc_b, 0);
    assert_int_equal(flag, 1);
    assert_int_equal(rc_l, 0);
    assert_true(last == 42);
    assert_int_equal(rc_s, 0);
    return fired;
}

static void test_query_values(void **state)
{
    (void)state;
    oom_loop("query values and Last-Event-ID", query_attempt, NULL, 10);
}

/* ---- bodies ----------------------------------------------------------------- */

struct body_case {
    const char *name;
    const char *body;
};

static int body_attempt(void *arg)
{
    const struct body_case *c = arg;
    struct err e;
    err_clear(&e);
    json_t *obj = NULL;
    oom_arm();
    int rc = parse_body_object(c->body, strlen(c->body), &obj, &e);
    int fired = oom_disarm();
    if (rc) {
        assert_true(fired);
        assert_null(obj);
        if (rc != ERR_NOMEM)
            fail_msg("%s at N=%lu: %s (%s), not ERR_NOMEM", c->name, oom_n(), err_name(rc),
                     e.msg);
        rc = parse_body_object(c->body, strlen(c->body), &obj, &e);
    }
    assert_int_equal(rc, 0);
    assert_true(json_is_object(obj));
    const char *reply = NULL;
    const json_t *answers = NULL;
    if (json_object_get(obj, "reply"))
        assert_int_equal(parse_permission_reply(obj, &reply, &e), 0);
    if (json_object_get(obj, "answers"))
        assert_int_equal(parse_question_answers(obj, &answers, &e), 0);
    json_decref(obj);
    return fired;
}

static void test_bodies(void **state)
{
    (void)state;
    static const struct body_case cases[] = {
        {"message body", "{\"message\":\"hello there, a message long enough to grow the "
                         "lexer's buffer\",\"attachments\":[]}"},
        {"permission reply", "{\"reply\":\"always\"}"},
        {"question reply", "{\"answers\":[[\"a\",\"b\"],[],[\"a longer answer string\"]]}"},
        {"create session", "{\"agent\":\"mock\",\"agentMode\":\"build\",\"permissionMode\":"
                           "\"default\",\"model\":null,\"variant\":null,\"n\":12345,"
                           "\"x\":1.5,\"y\":true}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        oom_loop(cases[i].name, body_attempt, (void *)&cases[i], 200);
}

static int install_attempt(void *arg)
{
    (void)arg;
    static const char body[] = "{\"reinstall\":true}";
    struct err e;
    err_clear(&e);
    int reinstall = -1;
    oom_arm();
    int rc = parse_install_request(body, sizeof body - 1, &reinstall, &e);
    int fired = oom_disarm();
    if (rc) {
        assert_true(fired);
        if (rc != ERR_NOMEM)
            fail_msg("install request at N=%lu: %s (%s)", oom_n(), err_name(rc), e.msg);
        rc = parse_install_request(body, sizeof body - 1, &reinstall, &e);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(reinstall, 1);
    return fired;
}

static void test_install_request(void **state)
{
    (void)state;
    oom_loop("install request", install_attempt, NULL, 50);
}

/* Telling memory from bad input must not excuse bad input: each of these is
 * still a 400, with memory to spare. */
static void test_bad_bodies_stay_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "\"abc\"",
        "{\"a\":tru}",
        "{\"a\":\"\x01\"}",
        "{\"aaaaaaaaaaaaaaaaaaaaaaaaa\":bogusidentifierlongerthantwenty}",
        "{\"a\":\"x\"]",
        "{\"k\":\"v\"",
        "{\"k\":\"v\",\"k\":1}",
        "{\"k\":01}",
        "{\"k\":-}",
        "{\"k\" \"v\"}",
        "{\"k\":\"v\" \"w\"}",
        "{\"k\":\"v\",\"k2\"}",
        "{\"k\":[\"v\" \"w\"]}",
        "{\"k\":{\"a\":1,2}}",
        "{\"k\":\"\\u00\"}",
        "{\"k\":\"\xff\"}",
        "[1,2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct err e;
        json_t *obj = NULL;
        int rc = parse_body_object(bad[i], strlen(bad[i]), &obj, &e);
        if (rc != ERR_INVALID)
            fail_msg("body %zu (%s): %s (%s), not ERR_INVALID", i, bad[i], err_name(rc), e.msg);
        assert_null(obj);
    }
}

int main(void)
{
    oom_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_values),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_install_request),
        cmocka_unit_test(test_bad_bodies_stay_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
