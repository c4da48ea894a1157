/* End to end with the real Gemini CLI (@google/gemini-cli, `gemini --acp`)
 * at its pinned version, installed by `sandbox-journal install-agent
 * gemini` into SJ_AGENTS_DIR, against the fake model's Gemini API
 * (GOOGLE_GEMINI_BASE_URL) on loopback, through the HTTP API: the flows of
 * tests/support/e2e_acp.c (streamed text, the shell tool granted and
 * rejected, two sessions at once, the agent killed mid-turn, a server
 * restart, terminate mid-turn).  The session's model reaches the CLI as
 * GEMINI_MODEL, so its turns are POST
 * /v1beta/models/fake-model:streamGenerateContent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "e2e.h"
#include "e2e_acp.h"

static const struct e2e_acp_agent agent = {
    .id = "gemini",
    .shell_tool = "run_shell_command",
    .shell_input = "{\"command\":\"echo hi > out.txt\",\"description\":\"write out.txt\"}",
    .asks_permission = 1,
    .model_path = "/v1beta/models/fake-model:streamGenerateContent",
    .key_header = "x-goog-api-key",
    .tool_result = "\"functionResponse\"",
};

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
