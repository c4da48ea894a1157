/* Unit tests for src/agents/mcp_config.c: the SDK's McpServerConfig (local
 * and remote) spelled for Claude (--mcp-config), Codex (mcp_servers) and
 * OpenCode ("mcp"), with what an agent has no place for left out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agents/mcp_config.h"

#include <stdlib.h>

#define SERVERS                                                                              \
    "{\"files\":{\"type\":\"local\",\"command\":\"node\",\"args\":[\"s.js\",\"--x\"],"        \
    "\"env\":{\"A\":\"1\"},\"cwd\":\"/w\",\"enabled\":true,\"timeoutMs\":1500},"               \
    "\"web\":{\"type\":\"remote\",\"url\":\"http://127.0.0.1:9/mcp\",\"headers\":{\"H\":\"v\"}," \
    "\"envHeaders\":{\"X-K\":\"K\"},\"bearerTokenEnvVar\":\"TOK\",\"transport\":\"sse\"}}"

static void assert_converts(json_t *(*convert)(const json_t *), const char *want_text)
{
    json_t *servers = json_loads(SERVERS, 0, NULL);
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(servers);
    assert_non_null(want);
    json_t *got = convert(servers);
    assert_non_null(got);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("got %s", g ? g : "?");
    }
    json_decref(got);
    json_decref(want);
    json_decref(servers);
}

static void test_claude(void **state)
{
    (void)state; /* cmocka fixture unused */
    assert_converts(mcp_config_claude,
                    "{\"mcpServers\":{"
                    "\"files\":{\"type\":\"stdio\",\"command\":\"node\",\"args\":[\"s.js\",\"--x\"],"
                    "\"env\":{\"A\":\"1\"},\"alwaysLoad\":true},"
                    "\"web\":{\"type\":\"sse\",\"url\":\"http://127.0.0.1:9/mcp\","
                    "\"headers\":{\"H\":\"v\"},\"alwaysLoad\":true}}}");
}

static void test_codex(void **state)
{
    (void)state; /* cmocka fixture unused */
    assert_converts(mcp_config_codex,
                    "{\"files\":{\"command\":\"node\",\"args\":[\"s.js\",\"--x\"],"
                    "\"env\":{\"A\":\"1\"},\"cwd\":\"/w\",\"startup_timeout_sec\":2,"
                    "\"tool_timeout_sec\":2},"
                    "\"web\":{\"url\":\"http://127.0.0.1:9/mcp\",\"http_headers\":{\"H\":\"v\"},"
                    "\"env_http_headers\":{\"X-K\":\"K\"},\"bearer_token_env_var\":\"TOK\"}}");
}

static void test_opencode(void **state)
{
    (void)state; /* cmocka fixture unused */
    assert_converts(mcp_config_opencode,
                    "{\"files\":{\"type\":\"local\",\"command\":[\"node\",\"s.js\",\"--x\"],"
                    "\"environment\":{\"A\":\"1\"},\"enabled\":true,\"timeout\":1500},"
                    "\"web\":{\"type\":\"remote\",\"url\":\"http://127.0.0.1:9/mcp\","
                    "\"headers\":{\"H\":\"v\"},\"enabled\":true}}");
}

/* The streamable HTTP transport unless the SDK says "sse"; nulls are left out. */
static void test_claude_http_and_nulls(void **state)
{
    (void)state; /* cmocka fixture unused */
    json_t *servers = json_loads("{\"r\":{\"type\":\"remote\",\"url\":\"http://h/m\","
                                 "\"headers\":null,\"transport\":null}}",
                                 0, NULL);
    json_t *got = mcp_config_claude(servers);
    json_t *want = json_loads("{\"mcpServers\":{\"r\":{\"type\":\"http\",\"url\":\"http://h/m\","
                              "\"alwaysLoad\":true}}}",
                              0, NULL);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    json_decref(servers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claude),
        cmocka_unit_test(test_codex),
        cmocka_unit_test(test_opencode),
        cmocka_unit_test(test_claude_http_and_nulls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
