/* /v1/config/mcp and /v1/config/skills (issue 17) on the real server: the
 * round trip in the SDK's shapes, every error, the token on every route, a
 * directory spelled several ways naming one entry, and entries surviving a
 * restart (they live in the journal, migration 0008). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL "{\"type\":\"local\",\"command\":\"node\",\"args\":[\"mcp.js\"]," \
              "\"env\":{\"LEVEL\":\"debug\"},\"cwd\":null,\"enabled\":true,\"timeoutMs\":5000}"
#define REMOTE "{\"type\":\"remote\",\"url\":\"http://127.0.0.1:9/mcp\"," \
               "\"headers\":{\"X-Team\":\"a\"},\"bearerTokenEnvVar\":\"TOKEN\"}"
#define SKILLS "{\"sources\":[{\"type\":\"local\",\"source\":\"/srv/skills\"}," \
               "{\"type\":\"github\",\"source\":\"octo/skills\",\"ref\":\"main\"," \
               "\"subpath\":\"skills\",\"skills\":[\"lint\"]}]}"

static void assert_json_equal(const json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT);
        fail_msg("got %s, want %s", g ? g : "?", want_text);
    }
    json_decref(want);
}

static void test_mcp_round_trip(void **state)
{
    struct sj_server *s = *state;
    const char *q = "/v1/config/mcp?directory=/srv/app&mcpName=files";
    sj_expect_problem(s, "GET", q, NULL, 404, "not_found");
    json_decref(sj_call(s, "PUT", q, LOCAL, 204));
    json_t *got = sj_call(s, "GET", q, NULL, 200);
    assert_json_equal(got, LOCAL);
    json_decref(got);
    /* A PUT replaces the entry. */
    json_decref(sj_call(s, "PUT", q, REMOTE, 204));
    got = sj_call(s, "GET", q, NULL, 200);
    assert_json_equal(got, REMOTE);
    json_decref(got);
    /* Another name and another directory are other entries. */
    sj_expect_problem(s, "GET", "/v1/config/mcp?directory=/srv/app&mcpName=other", NULL, 404,
                      "not_found");
    sj_expect_problem(s, "GET", "/v1/config/mcp?directory=/srv/app2&mcpName=files", NULL, 404,
                      "not_found");
    /* Skills with the same directory and name are a different kind. */
    sj_expect_problem(s, "GET", "/v1/config/skills?directory=/srv/app&skillName=files", NULL,
                      404, "not_found");
    json_decref(sj_call(s, "DELETE", q, NULL, 204));
    sj_expect_problem(s, "GET", q, NULL, 404, "not_found");
    json_decref(sj_call(s, "DELETE", q, NULL, 204)); /* gone already: still 204 */
}

static void test_skills_round_trip(void **state)
{
    struct sj_server *s = *state;
    const char *q = "/v1/config/skills?directory=/srv/app&skillName=house";
    json_decref(sj_call(s, "PUT", q, SKILLS, 204));
    json_t *got = sj_call(s, "GET", q, NULL, 200);
    assert_json_equal(got, SKILLS);
    json_decref(got);
    json_decref(sj_call(s, "DELETE", q, NULL, 204));
    sj_expect_problem(s, "GET", q, NULL, 404, "not_found");
}

/* "/srv//app/./x/../" and "/srv/app" are one directory (it need not exist). */
static void test_directory_spellings(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_call(s, "PUT", "/v1/config/mcp?directory=/srv//app/./x/../&mcpName=a",
                        LOCAL, 204));
    json_t *got = sj_call(s, "GET", "/v1/config/mcp?directory=/srv/app&mcpName=a", NULL, 200);
    assert_json_equal(got, LOCAL);
    json_decref(got);
    got = sj_call(s, "GET", "/v1/config/mcp?directory=%2Fsrv%2Fapp%2F&mcpName=a", NULL, 200);
    assert_json_equal(got, LOCAL);
    json_decref(got);
}

static void test_bad_input(void **state)
{
    struct sj_server *s = *state;
    static const struct {
        const char *method, *path, *body;
    } cases[] = {
        { "GET", "/v1/config/mcp?mcpName=a", NULL },
        { "GET", "/v1/config/mcp?directory=/srv", NULL },
        { "PUT", "/v1/config/skills?directory=/srv", SKILLS },
        { "DELETE", "/v1/config/skills?skillName=a", NULL },
        { "GET", "/v1/config/mcp?directory=&mcpName=a", NULL },
        { "GET", "/v1/config/mcp?directory=/srv&mcpName=", NULL },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a%01b", LOCAL },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a", "not json" },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a", "[1]" },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a", "{\"command\":\"x\"}" },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a", "{\"type\":\"stdio\",\"command\":\"x\"}" },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a", "{\"type\":\"local\"}" },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a",
          "{\"type\":\"local\",\"command\":\"x\",\"args\":[1]}" },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a",
          "{\"type\":\"local\",\"command\":\"x\",\"env\":{\"A\":1}}" },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a",
          "{\"type\":\"local\",\"command\":\"x\",\"timeoutMs\":\"5\"}" },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a", "{\"type\":\"remote\"}" },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a",
          "{\"type\":\"remote\",\"url\":\"http://x\",\"headers\":[]}" },
        { "PUT", "/v1/config/skills?directory=/srv&skillName=a", "{}" },
        { "PUT", "/v1/config/skills?directory=/srv&skillName=a", "{\"sources\":[{}]}" },
        { "PUT", "/v1/config/skills?directory=/srv&skillName=a",
          "{\"sources\":[{\"type\":\"local\",\"source\":\"/x\",\"skills\":\"lint\"}]}" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        sj_expect_problem(s, cases[i].method, cases[i].path, cases[i].body, 400,
                          "invalid_request");
    /* Nothing of the refused bodies was stored. */
    sj_expect_problem(s, "GET", "/v1/config/mcp?directory=/srv&mcpName=a", NULL, 404,
                      "not_found");
    /* Another method on the path is a 405. */
    struct httpc_response r;
    sj_request(s, "POST", "/v1/config/mcp?directory=/srv&mcpName=a", LOCAL, 1, &r);
    assert_int_equal(r.status, 405);
    httpc_response_free(&r);
}

static void test_token_on_every_route(void **state)
{
    (void)state; /* a server of its own, with a token */
    char dir[512];
    sj_fresh_dir(dir, sizeof dir, "wscfg-auth");
    struct sj_server s;
    const char *const extra[] = { "--token", "cfg-secret", NULL };
    assert_int_equal(sj_server_start(&s, dir, extra), 0);
    static const char *const routes[][2] = {
        { "GET", "/v1/config/mcp?directory=/srv&mcpName=a" },
        { "PUT", "/v1/config/mcp?directory=/srv&mcpName=a" },
        { "DELETE", "/v1/config/mcp?directory=/srv&mcpName=a" },
        { "GET", "/v1/config/skills?directory=/srv&skillName=a" },
        { "PUT", "/v1/config/skills?directory=/srv&skillName=a" },
        { "DELETE", "/v1/config/skills?directory=/srv&skillName=a" },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *body = strcmp(routes[i][0], "PUT") == 0
                               ? (strstr(routes[i][1], "mcp") ? LOCAL : SKILLS)
                               : NULL;
        struct httpc_response r;
        sj_request(&s, routes[i][0], routes[i][1], body, 0, &r);
        json_decref(sj_assert_problem(&r, 401, "token_invalid"));
        httpc_response_free(&r);
    }
    /* Refused without the token: nothing was stored. */
    sj_expect_problem(&s, "GET", "/v1/config/mcp?directory=/srv&mcpName=a", NULL, 404,
                      "not_found");
    json_decref(sj_call(&s, "PUT", "/v1/config/mcp?directory=/srv&mcpName=a", LOCAL, 204));
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
}

static void test_entries_survive_restart(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_call(s, "PUT", "/v1/config/mcp?directory=/srv/keep&mcpName=a", REMOTE, 204));
    json_decref(sj_call(s, "PUT", "/v1/config/skills?directory=/srv/keep&skillName=b", SKILLS,
                        204));
    json_decref(sj_call(s, "PUT", "/v1/config/mcp?directory=/srv/keep&mcpName=gone", LOCAL, 204));
    json_decref(sj_call(s, "DELETE", "/v1/config/mcp?directory=/srv/keep&mcpName=gone", NULL,
                        204));
    assert_int_equal(sj_server_restart(s), 0);
    json_t *got = sj_call(s, "GET", "/v1/config/mcp?directory=/srv/keep&mcpName=a", NULL, 200);
    assert_json_equal(got, REMOTE);
    json_decref(got);
    got = sj_call(s, "GET", "/v1/config/skills?directory=/srv/keep&skillName=b", NULL, 200);
    assert_json_equal(got, SKILLS);
    json_decref(got);
    sj_expect_problem(s, "GET", "/v1/config/mcp?directory=/srv/keep&mcpName=gone", NULL, 404,
                      "not_found");
}

/* sandbox-journal api config mcp|skills get|set|rm mirror the routes. */
static void test_cli(void **state)
{
    struct sj_server *s = *state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s->port);
    struct sj_cli_result r;
    const char *const set[] = { "api", "-e", url, "config", "mcp", "set", "-d", "/srv/cli",
                                "-N", "files", "--config", LOCAL, NULL };
    sj_cli_run(set, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "");
    sj_cli_result_free(&r);
    const char *const get[] = { "api", "-e", url, "config", "mcp", "get", "--directory",
                                "/srv/cli", "--name", "files", NULL };
    sj_cli_run(get, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    json_t *got = json_loads(r.out, 0, NULL);
    assert_json_equal(got, LOCAL);
    json_decref(got);
    sj_cli_result_free(&r);
    const char *const rm[] = { "api", "-e", url, "config", "mcp", "rm", "-d", "/srv/cli", "-N",
                               "files", NULL };
    sj_cli_run(rm, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    sj_cli_result_free(&r);
    sj_cli_run(get, NULL, &r);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "HTTP 404"));
    sj_cli_result_free(&r);
    const char *const skills[] = { "api", "-e", url, "config", "skills", "set", "-d", "/srv/cli",
                                   "-N", "s", "-c", SKILLS, NULL };
    sj_cli_run(skills, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    sj_cli_result_free(&r);
    got = sj_call(s, "GET", "/v1/config/skills?directory=/srv/cli&skillName=s", NULL, 200);
    assert_json_equal(got, SKILLS);
    json_decref(got);
    /* Usage errors exit 2 without a request. */
    const char *const bad[] = { "api", "-e", url, "config", "mcp", "frob", "-d", "/x", "-N",
                                "y", NULL };
    sj_cli_run(bad, NULL, &r);
    assert_int_equal(r.exit_code, 2);
    sj_cli_result_free(&r);
    const char *const nobody[] = { "api", "-e", url, "config", "mcp", "set", "-d", "/x", "-N",
                                   "y", NULL };
    sj_cli_run(nobody, NULL, &r);
    assert_int_equal(r.exit_code, 2);
    sj_cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mcp_round_trip, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_skills_round_trip, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_directory_spellings, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_bad_input, sj_setup_default, sj_teardown_default),
        cmocka_unit_test(test_token_on_every_route),
        cmocka_unit_test_setup_teardown(test_entries_survive_restart, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_cli, sj_setup_default, sj_teardown_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
