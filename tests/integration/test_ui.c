/* The inspector's files at /ui/ (src/http/routes_ui.c): content types,
 * strong ETags with If-None-Match -> 304, the security headers, the
 * redirect of /ui, the app's own URLs answering index.html, unknown files
 * as ProblemDetails, and no token needed for any of it (the API calls the
 * page makes need it).  The page's behaviour is tests/browser's. */
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

static void ui_get(struct sj_server *s, const char *method, const char *path,
                   const char *header, struct httpc_response *resp)
{
    const char *headers[] = {header, NULL};
    int rc = httpc_request(s->port, method, path, header ? headers : NULL, NULL, 0,
                           HTTPC_DEFAULT_TIMEOUT_MS, resp);
    if (rc != 0)
        fail_msg("%s %s: %s", method, path, httpc_strerror(rc));
}

/* Asserts a 200 of `type` with every header the files carry; returns the
 * ETag (new). */
static char *ui_expect_file(struct sj_server *s, const char *path, const char *type)
{
    struct httpc_response r;
    ui_get(s, "GET", path, NULL, &r);
    if (r.status != 200)
        fail_msg("GET %s: %d", path, r.status);
    assert_string_equal(httpc_header(&r, "Content-Type"), type);
    const char *csp = httpc_header(&r, "Content-Security-Policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'self'"));
    assert_string_equal(httpc_header(&r, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(httpc_header(&r, "Cache-Control"), "no-cache");
    const char *etag = httpc_header(&r, "ETag");
    assert_non_null(etag);
    /* Strong (no W/), quoted. */
    assert_true(etag[0] == '"' && etag[strlen(etag) - 1] == '"' && strlen(etag) > 10);
    assert_true(r.body_len > 0);
    char *copy = strdup(etag);
    assert_non_null(copy);
    httpc_response_free(&r);
    return copy;
}

static void test_files_and_headers(void **state)
{
    struct sj_server *s = *state;
    char *index = ui_expect_file(s, "/ui/", "text/html; charset=utf-8");
    char *app = ui_expect_file(s, "/ui/app.js", "text/javascript; charset=utf-8");
    char *css = ui_expect_file(s, "/ui/style.css", "text/css; charset=utf-8");
    char *icon = ui_expect_file(s, "/ui/favicon.svg", "image/svg+xml");
    assert_string_not_equal(index, app);
    assert_string_not_equal(app, css);
    free(index);
    free(app);
    free(css);
    free(icon);
}

/* Every file the page names (index.html's /ui/ links, each module's
 * imports) is served: a file left out of the build would break the page. */
static void test_every_reference_resolves(void **state)
{
    struct sj_server *s = *state;
    const char *pages[] = {"/ui/", "/ui/app.js", "/ui/api.js", "/ui/transcript.js",
                           "/ui/early.js"};
    int checked = 0;
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        struct httpc_response r;
        ui_get(s, "GET", pages[i], NULL, &r);
        assert_int_equal(r.status, 200);
        for (const char *p = r.body; (p = strstr(p, "./"));) {
            /* from './x.js' in a module */
            const char *end = strchr(p, '\'');
            if (!end || end - p > 64 || !strstr(p, ".js")) {
                p += 2;
                continue;
            }
            char path[96];
            snprintf(path, sizeof path, "/ui/%.*s", (int)(end - p - 2), p + 2);
            struct httpc_response f;
            ui_get(s, "GET", path, NULL, &f);
            if (f.status != 200)
                fail_msg("%s imports %s: %d", pages[i], path, f.status);
            httpc_response_free(&f);
            checked++;
            p = end;
        }
        for (const char *p = r.body; (p = strstr(p, "\"/ui/"));) {
            const char *end = strchr(p + 1, '"');
            assert_non_null(end);
            char path[96];
            snprintf(path, sizeof path, "%.*s", (int)(end - p - 1), p + 1);
            struct httpc_response f;
            ui_get(s, "GET", path, NULL, &f);
            if (f.status != 200)
                fail_msg("%s names %s: %d", pages[i], path, f.status);
            httpc_response_free(&f);
            checked++;
            p = end;
        }
        httpc_response_free(&r);
    }
    fprintf(stderr, "ui: %d references resolved\n", checked);
    assert_true(checked >= 5);
}

static void expect_inm(struct sj_server *s, const char *value, int status)
{
    char header[256];
    snprintf(header, sizeof header, "If-None-Match: %s", value);
    struct httpc_response r;
    ui_get(s, "GET", "/ui/app.js", header, &r);
    if (r.status != status)
        fail_msg("If-None-Match: %s -> %d, expected %d", value, r.status, status);
    if (status == 304) {
        assert_int_equal(r.body_len, 0);
        assert_non_null(httpc_header(&r, "ETag"));
        assert_non_null(httpc_header(&r, "Cache-Control"));
    }
    httpc_response_free(&r);
}

static void test_if_none_match(void **state)
{
    struct sj_server *s = *state;
    char *etag = ui_expect_file(s, "/ui/app.js", "text/javascript; charset=utf-8");
    char v[256];
    expect_inm(s, etag, 304);
    snprintf(v, sizeof v, "W/%s", etag);
    expect_inm(s, v, 304);
    snprintf(v, sizeof v, "\"other\", %s", etag);
    expect_inm(s, v, 304);
    expect_inm(s, "*", 304);
    expect_inm(s, "\"other\"", 200);
    /* A prefix of the tag is another tag. */
    snprintf(v, sizeof v, "%.*s\"", (int)strlen(etag) - 2, etag);
    expect_inm(s, v, 200);
    free(etag);
}

static void test_redirect_deep_links_and_errors(void **state)
{
    struct sj_server *s = *state;
    struct httpc_response r;
    ui_get(s, "GET", "/ui", NULL, &r);
    assert_int_equal(r.status, 308);
    assert_string_equal(httpc_header(&r, "Location"), "/ui/");
    httpc_response_free(&r);

    char *index = ui_expect_file(s, "/ui/", "text/html; charset=utf-8");
    const char *deep[] = {"/ui/sessions/abc", "/ui/sessions/a%2Fb%20c/events/42"};
    for (size_t i = 0; i < 2; i++) {
        char *etag = ui_expect_file(s, deep[i], "text/html; charset=utf-8");
        assert_string_equal(etag, index);
        free(etag);
    }
    free(index);

    ui_get(s, "GET", "/ui/nope.js", NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(httpc_header(&r, "Content-Type"), "application/problem+json");
    json_t *p = httpc_json(&r);
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 404);
    assert_non_null(strstr(json_string_value(json_object_get(p, "detail")), "nope.js"));
    json_decref(p);
    httpc_response_free(&r);
    ui_get(s, "GET", "/ui/sessions/x/raw", NULL, &r);
    assert_int_equal(r.status, 404);
    httpc_response_free(&r);
    ui_get(s, "POST", "/ui/", NULL, &r);
    assert_int_equal(r.status, 405);
    httpc_response_free(&r);

    ui_get(s, "HEAD", "/ui/app.js", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_non_null(httpc_header(&r, "ETag"));
    httpc_response_free(&r);
}

static int ui_setup_token(void **state)
{
    static const char *const args[] = {"--token", "ui-T0ken", NULL};
    return sj_setup_with(state, args);
}

/* The files hold no data: a browser navigating to /ui/ cannot send a
 * header, so they are public; the API behind them is not. */
static void test_token_needed_for_the_api_only(void **state)
{
    struct sj_server *s = *state;
    char *etag = ui_expect_file(s, "/ui/", "text/html; charset=utf-8");
    free(etag);
    etag = ui_expect_file(s, "/ui/sessions/x", "text/html; charset=utf-8");
    free(etag);
    struct httpc_response r;
    ui_get(s, "GET", "/v1/sessions", NULL, &r);
    assert_int_equal(r.status, 401);
    httpc_response_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files_and_headers, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_every_reference_resolves, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_if_none_match, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_redirect_deep_links_and_errors, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_token_needed_for_the_api_only, ui_setup_token,
                                        sj_teardown_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
