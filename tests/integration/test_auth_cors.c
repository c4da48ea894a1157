/* Integration tests of bearer-token authentication and CORS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "httpc.h"
#include "server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup_token(void **state)
{
    static const char *const args[] = {"--token", "T0ken-xyz", NULL};
    return sj_setup_with(state, args);
}

static int setup_cors(void **state)
{
    static const char *const args[] = {"--token",
                                       "T0ken-xyz",
                                       "--cors-allow-origin",
                                       "http://example.com",
                                       "--cors-allow-method",
                                       "GET",
                                       "--cors-allow-header",
                                       "content-type",
                                       "--cors-allow-credentials",
                                       NULL};
    return sj_setup_with(state, args);
}

static int setup_cors_open(void **state)
{
    static const char *const args[] = {"--cors-allow-origin", "http://a.example",
                                       "--cors-allow-origin", "http://b.example",
                                       "--cors-allow-method", "GET",
                                       "--cors-allow-method", "POST",
                                       NULL};
    return sj_setup_with(state, args);
}

/* A request with exactly the given headers (no automatic auth). */
static void raw_request(struct sj_server *s, const char *method, const char *path,
                        const char *const *headers, const char *body, struct httpc_response *resp)
{
    int rc = httpc_request(s->port, method, path, headers, body, body ? strlen(body) : 0,
                           HTTPC_DEFAULT_TIMEOUT_MS, resp);
    if (rc != 0)
        fail_msg("%s %s: %s", method, path, httpc_strerror(rc));
}

static void expect_status(struct sj_server *s, const char *method, const char *path,
                          const char *const *headers, const char *body, int status)
{
    struct httpc_response resp;
    raw_request(s, method, path, headers, body, &resp);
    if (resp.status != status)
        fprintf(stderr, "%s %s -> %d (expected %d): %s\n", method, path, resp.status, status,
                resp.body ? resp.body : "");
    assert_int_equal(resp.status, status);
    httpc_response_free(&resp);
}

static void expect_unauthorized(struct sj_server *s, const char *method, const char *path,
                                const char *const *headers, const char *body)
{
    struct httpc_response resp;
    json_t *p;
    raw_request(s, method, path, headers, body, &resp);
    p = sj_assert_problem(&resp, 401, "token_invalid");
    assert_string_equal(sj_str(p, "title"), "Token Invalid");
    json_decref(p);
    httpc_response_free(&resp);
}

/* 1 if the comma-separated header value lists `tok` (case-insensitive). */
static int lists(const char *value, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = value;
    if (!value)
        return 0;
    while (*p) {
        const char *end;
        while (*p == ' ' || *p == ',')
            p++;
        end = p;
        while (*end && *end != ',')
            end++;
        {
            const char *e = end;
            while (e > p && e[-1] == ' ')
                e--;
            if ((size_t)(e - p) == tl) {
                size_t i = 0;
                for (; i < tl; i++) {
                    char a = p[i], b = tok[i];
                    if (a >= 'A' && a <= 'Z')
                        a = (char)(a - 'A' + 'a');
                    if (b >= 'A' && b <= 'Z')
                        b = (char)(b - 'A' + 'a');
                    if (a != b)
                        break;
                }
                if (i == tl)
                    return 1;
            }
        }
        p = end;
    }
    return 0;
}

/* ---- token ---------------------------------------------------------------- */

static void test_health_is_public(void **state)
{
    struct sj_server *s = *state;
    struct httpc_response resp;
    json_t *body;
    raw_request(s, "GET", "/v1/health", NULL, NULL, &resp);
    assert_int_equal(resp.status, 200);
    body = httpc_json(&resp);
    assert_string_equal(sj_str(body, "status"), "ok");
    json_decref(body);
    httpc_response_free(&resp);
}

static void test_missing_or_wrong_token(void **state)
{
    static const char *const wrong[] = {"Authorization: Bearer nope", NULL};
    static const char *const basic[] = {"Authorization: Basic T0ken-xyz", NULL};
    static const char *const bare[] = {"Authorization: T0ken-xyz", NULL};
    static const char *const prefix[] = {"Authorization: Bearer T0ken-xy", NULL};
    static const char *const longer[] = {"Authorization: Bearer T0ken-xyzz", NULL};
    struct sj_server *s = *state;

    expect_unauthorized(s, "GET", "/v1/agents", NULL, NULL);
    expect_unauthorized(s, "GET", "/v1/agents", wrong, NULL);
    expect_unauthorized(s, "GET", "/v1/agents", basic, NULL);
    expect_unauthorized(s, "GET", "/v1/agents", bare, NULL);
    expect_unauthorized(s, "GET", "/v1/agents", prefix, NULL);
    expect_unauthorized(s, "GET", "/v1/agents", longer, NULL);
    expect_unauthorized(s, "GET", "/v1/sessions", NULL, NULL);
    expect_unauthorized(s, "GET", "/v1/agents/mock/modes", NULL, NULL);
    /* Authentication comes before the session lookup. */
    expect_unauthorized(s, "GET", "/v1/sessions/ghost/events", NULL, NULL);
    expect_unauthorized(s, "GET", "/v1/sessions/ghost/events/sse", NULL, NULL);
}

static void test_bearer_and_token_schemes(void **state)
{
    static const char *const bearer[] = {"Authorization: Bearer T0ken-xyz", NULL};
    static const char *const token[] = {"Authorization: Token T0ken-xyz", NULL};
    static const char *const lower[] = {"authorization: Bearer T0ken-xyz", NULL};
    struct sj_server *s = *state;
    expect_status(s, "GET", "/v1/agents", bearer, NULL, 200);
    expect_status(s, "GET", "/v1/agents", token, NULL, 200);
    expect_status(s, "GET", "/v1/sessions", lower, NULL, 200);
    expect_status(s, "GET", "/v1/agents/mock/modes", token, NULL, 200);
}

static void test_writes_need_token(void **state)
{
    static const char *const json_only[] = {"Content-Type: application/json", NULL};
    struct sj_server *s = *state;
    json_t *list, *r;

    expect_unauthorized(s, "POST", "/v1/sessions/a", json_only, "{\"agent\":\"mock\"}");
    list = sj_call(s, "GET", "/v1/sessions", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "sessions")), 0);
    json_decref(list);

    /* sj_call authenticates with the server's token. */
    r = sj_create_session(s, "a", NULL);
    json_decref(r);
    expect_unauthorized(s, "POST", "/v1/sessions/a/messages", json_only, "{\"message\":\"hi\"}");
    expect_unauthorized(s, "POST", "/v1/sessions/a/messages/stream", json_only,
                        "{\"message\":\"hi\"}");
    expect_unauthorized(s, "POST", "/v1/sessions/a/terminate", NULL, NULL);
    expect_unauthorized(s, "POST", "/v1/agents/mock/install", json_only, "{}");
    expect_unauthorized(s, "POST", "/v1/sessions/a/permissions/p/reply", json_only,
                        "{\"reply\":\"once\"}");
    expect_unauthorized(s, "POST", "/v1/sessions/a/questions/q/reject", NULL, NULL);
    /* Nothing reached the session. */
    r = sj_wait_events_exact(s, "a", 1, 5000);
    json_decref(r);

    sj_send_message(s, "a", "echo ok");
    r = sj_wait_events_quiet(s, "a", 7, 10000);
    json_decref(r);
}

/* ---- CORS ------------------------------------------------------------------ */

static void test_cors_preflight(void **state)
{
    static const char *const headers[] = {"Origin: http://example.com",
                                          "Access-Control-Request-Method: GET",
                                          "Access-Control-Request-Headers: content-type", NULL};
    struct sj_server *s = *state;
    struct httpc_response resp;

    /* No token: preflights are answered before authentication. */
    raw_request(s, "OPTIONS", "/v1/sessions", headers, NULL, &resp);
    assert_true(resp.status == 200 || resp.status == 204);
    assert_non_null(httpc_header(&resp, "Access-Control-Allow-Origin"));
    assert_string_equal(httpc_header(&resp, "Access-Control-Allow-Origin"), "http://example.com");
    assert_int_equal(httpc_header_count(&resp, "Access-Control-Allow-Origin"), 1);
    assert_true(lists(httpc_header(&resp, "Access-Control-Allow-Methods"), "GET"));
    assert_false(lists(httpc_header(&resp, "Access-Control-Allow-Methods"), "POST"));
    assert_true(lists(httpc_header(&resp, "Access-Control-Allow-Headers"), "content-type"));
    assert_non_null(httpc_header(&resp, "Access-Control-Allow-Credentials"));
    assert_string_equal(httpc_header(&resp, "Access-Control-Allow-Credentials"), "true");
    assert_true(lists(httpc_header(&resp, "Vary"), "origin"));
    httpc_response_free(&resp);
}

static void test_cors_preflight_other_origin(void **state)
{
    static const char *const headers[] = {"Origin: http://evil.example",
                                          "Access-Control-Request-Method: GET", NULL};
    struct sj_server *s = *state;
    struct httpc_response resp;
    raw_request(s, "OPTIONS", "/v1/sessions", headers, NULL, &resp);
    assert_null(httpc_header(&resp, "Access-Control-Allow-Origin"));
    assert_null(httpc_header(&resp, "Access-Control-Allow-Credentials"));
    httpc_response_free(&resp);
}

static void test_cors_simple_requests(void **state)
{
    static const char *const good[] = {"Origin: http://example.com", NULL};
    static const char *const good_auth[] = {"Origin: http://example.com",
                                            "Authorization: Bearer T0ken-xyz", NULL};
    static const char *const evil[] = {"Origin: http://evil.example",
                                       "Authorization: Bearer T0ken-xyz", NULL};
    struct sj_server *s = *state;
    struct httpc_response resp;

    raw_request(s, "GET", "/v1/health", good, NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(httpc_header(&resp, "Access-Control-Allow-Origin"), "http://example.com");
    assert_string_equal(httpc_header(&resp, "Access-Control-Allow-Credentials"), "true");
    assert_true(lists(httpc_header(&resp, "Vary"), "origin"));
    httpc_response_free(&resp);

    raw_request(s, "GET", "/v1/agents", good_auth, NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(httpc_header(&resp, "Access-Control-Allow-Origin"), "http://example.com");
    httpc_response_free(&resp);

    /* Errors carry CORS headers too, so a browser can read them. */
    raw_request(s, "GET", "/v1/agents", good, NULL, &resp);
    assert_int_equal(resp.status, 401);
    assert_string_equal(httpc_header(&resp, "Access-Control-Allow-Origin"), "http://example.com");
    httpc_response_free(&resp);

    raw_request(s, "GET", "/v1/agents", evil, NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_null(httpc_header(&resp, "Access-Control-Allow-Origin"));
    httpc_response_free(&resp);

    raw_request(s, "GET", "/v1/health", NULL, NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_null(httpc_header(&resp, "Access-Control-Allow-Origin"));
    httpc_response_free(&resp);
}

static void test_cors_several_origins(void **state)
{
    static const char *const b_pre[] = {"Origin: http://b.example",
                                        "Access-Control-Request-Method: POST", NULL};
    static const char *const a_get[] = {"Origin: http://a.example", NULL};
    struct sj_server *s = *state;
    struct httpc_response resp;

    raw_request(s, "OPTIONS", "/v1/sessions/x", b_pre, NULL, &resp);
    assert_true(resp.status == 200 || resp.status == 204);
    assert_string_equal(httpc_header(&resp, "Access-Control-Allow-Origin"), "http://b.example");
    assert_true(lists(httpc_header(&resp, "Access-Control-Allow-Methods"), "GET"));
    assert_true(lists(httpc_header(&resp, "Access-Control-Allow-Methods"), "POST"));
    /* Not configured: no credentials header. */
    assert_null(httpc_header(&resp, "Access-Control-Allow-Credentials"));
    httpc_response_free(&resp);

    raw_request(s, "GET", "/v1/sessions", a_get, NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(httpc_header(&resp, "Access-Control-Allow-Origin"), "http://a.example");
    assert_null(httpc_header(&resp, "Access-Control-Allow-Credentials"));
    httpc_response_free(&resp);
}

static void test_no_cors_by_default(void **state)
{
    static const char *const origin[] = {"Origin: http://example.com", NULL};
    struct sj_server *s = *state;
    struct httpc_response resp;
    raw_request(s, "GET", "/v1/health", origin, NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_null(httpc_header(&resp, "Access-Control-Allow-Origin"));
    httpc_response_free(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health_is_public, setup_token, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_missing_or_wrong_token, setup_token,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_bearer_and_token_schemes, setup_token,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_writes_need_token, setup_token, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_cors_preflight, setup_cors, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_cors_preflight_other_origin, setup_cors,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_cors_simple_requests, setup_cors,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_cors_several_origins, setup_cors_open,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_no_cors_by_default, sj_setup_default,
                                        sj_teardown_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
