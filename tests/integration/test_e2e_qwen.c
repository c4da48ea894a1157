/* End to end with the real Qwen Code (@qwen-code/qwen-code,
 * `qwen --acp`) at its
 * pinned version, installed by `sandbox-journal install-agent qwen` into
 * SJ_AGENTS_DIR, against the fake model's chat.completions API on
 * loopback, through the HTTP API: the flows of tests/support/e2e_acp.c
 * (streamed text, the shell tool granted and rejected, two sessions at
 * once, the agent killed mid-turn, a server restart, terminate mid-turn),
 * and the same CLI registered under another name with --acp-agent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "e2e_acp.h"
#include "server.h"

static const struct e2e_acp_agent agent = {
    .id = "qwen",
    .shell_tool = "run_shell_command",
    .shell_input = "{\"command\":\"echo hi > out.txt\",\"description\":\"write out.txt\"}",
    .asks_permission = 1,
};

/* Any ACP agent without a code change: the pinned qwen, registered from the
 * command line as "myqwen", is listed and streams a turn like a built-in. */
static void test_custom_acp_agent(void **state)
{
    struct e2e_rig *t = *state;
    const char *agents = getenv("SJ_AGENTS_DIR");
    assert_non_null(agents);
    char *def = sj_fmt("myqwen=%s/qwen/node_modules/.bin/qwen --acp", agents);
    const char *args[] = { "--acp-agent", def, NULL };
    e2e_rig_start(t, "qwen", "{\"steps\":[{\"text\":[\"Hello \",\"from \",\"myqwen.\"]}]}", args);
    free(def);
    json_t *list = sj_call(&t->srv, "GET", "/v1/agents", NULL, 200);
    assert_true(e2e_json_contains(list, "\"myqwen\""));
    json_decref(list);
    json_decref(sj_create_session(&t->srv, "c1", "{\"agent\":\"myqwen\",\"model\":\"fake-model\"}"));
    sj_send_message(&t->srv, "c1", "say hello");
    json_t *done = e2e_wait_assistant_done(&t->srv, "c1", 0, 120000);
    assert_true(e2e_json_contains(done, "Hello from myqwen."));
    json_decref(done);
    json_t *reqs = e2e_fake_requests(&t->fake, "/v1/chat/completions");
    assert_int_equal(json_array_size(reqs), 1);
    assert_true(e2e_json_contains(json_array_get(reqs, 0), "say hello"));
    json_decref(reqs);
}

int main(void)
{
    e2e_acp_use(&agent);
    if (getenv("SJ_TEST_FILTER"))
        cmocka_set_test_filter(getenv("SJ_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        E2E_TEST(e2e_acp_text_turn),
        E2E_TEST(e2e_acp_shell_granted),
        E2E_TEST(e2e_acp_shell_rejected),
        E2E_TEST(e2e_acp_two_sessions),
        E2E_TEST(e2e_acp_killed_mid_turn),
        E2E_TEST(e2e_acp_restart_carries_history),
        E2E_TEST(e2e_acp_terminate_mid_turn),
        E2E_TEST(test_custom_acp_agent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
