/* Integration tests of `sandbox-journal api` against a server started with
 * --token: the token is sent only when given, --no-token wins over it, and
 * a refusal is one line on stderr with exit 1, for plain calls and streams
 * alike. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "httpc.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "s3cret-cli"

static int setup_token(void **state)
{
    const char *extra[] = { "--token", TOKEN, NULL };
    return sj_setup_with(state, extra);
}

/* Runs `sandbox-journal api -e <server> <args...>` (NULL-terminated). */
static void api(struct sj_server *s, struct sj_cli_result *r, ...)
{
    const char *args[24];
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", s->port);
    size_t n = 0;
    args[n++] = "api";
    args[n++] = "--endpoint";
    args[n++] = endpoint;
    va_list ap;
    va_start(ap, r);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n + 1 < sizeof args / sizeof args[0])
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    sj_cli_run(args, NULL, r);
}

static void assert_refused(const struct sj_cli_result *r)
{
    if (r->exit_code != 1)
        sj_cli_dump("expected 401", r);
    assert_int_equal(r->exit_code, 1);
    assert_int_equal(r->out_len, 0);
    sj_cli_assert_one_line(r->err, "(HTTP 401)");
    /* The refusal names the problem, never the token. */
    assert_null(strstr(r->err, TOKEN));
}

static void test_without_token(void **state)
{
    struct sj_server *s = *state;
    struct sj_cli_result r;
    api(s, &r, "agents", "list", NULL);
    assert_refused(&r);
    assert_non_null(strstr(r.err, "sandbox-journal: Token Invalid"));
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "create", "x", "-a", "mock", NULL);
    assert_refused(&r);
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "send-message-stream", "x", "-m", "hi", NULL);
    assert_refused(&r);
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "events-sse", "x", NULL);
    assert_refused(&r);
    sj_cli_result_free(&r);
}

static void test_wrong_token(void **state)
{
    struct sj_server *s = *state;
    struct sj_cli_result r;
    api(s, &r, "--token", "wrong", "sessions", "list", NULL);
    assert_refused(&r);
    sj_cli_result_free(&r);
}

static void test_with_token(void **state)
{
    struct sj_server *s = *state;
    struct sj_cli_result r;
    /* The token may come before or after the command, long or short. */
    api(s, &r, "-t", TOKEN, "sessions", "create", "auth1", "--agent", "mock", NULL);
    if (r.exit_code != 0)
        sj_cli_dump("create with token", &r);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "{\"healthy\":true,\"nativeSessionId\":\"mock-auth1\"}\n");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "send-message-stream", "auth1", "-m", "echo ok", "--token=" TOKEN,
        NULL);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(sj_cli_count_lines(r.out), 6);
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "events", "auth1", "--token", TOKEN, NULL);
    assert_int_equal(r.exit_code, 0);
    struct httpc_response resp;
    sj_request(s, "GET", "/v1/sessions/auth1/events", NULL, 1, &resp);
    assert_int_equal(resp.status, 200);
    char *want = sj_fmt("%s\n", resp.body);
    assert_string_equal(r.out, want);
    free(want);
    httpc_response_free(&resp);
    sj_cli_result_free(&r);

    /* --no-token wins over --token. */
    api(s, &r, "-t", TOKEN, "-n", "agents", "list", NULL);
    assert_refused(&r);
    sj_cli_result_free(&r);
    api(s, &r, "agents", "list", "--no-token", "--token", TOKEN, NULL);
    assert_refused(&r);
    sj_cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_without_token, setup_token, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_wrong_token, setup_token, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_with_token, setup_token, sj_teardown_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
