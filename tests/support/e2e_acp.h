/* End-to-end flows shared by the real ACP agents (test_e2e_qwen.c,
 * test_e2e_pi.c, test_e2e_gemini.c): the agent CLI at its pinned version,
 * through the HTTP API, against the fake model on loopback (its
 * chat.completions API, or Gemini's).  Each
 * flow is a cmocka test body; the agent is described by a
 * `struct e2e_acp_agent` the test file sets with e2e_acp_use() first. */
#ifndef SJ_TEST_E2E_ACP_H
#define SJ_TEST_E2E_ACP_H

struct e2e_acp_agent {
    const char *id;           /* "qwen" */
    const char *shell_tool;   /* its shell tool's name in the model's tools */
    const char *shell_input;  /* that tool's input (JSON object text) writing "hi" to out.txt */
    int asks_permission;      /* 1 if the shell call waits for a permission reply */
    /* The agent's model API, NULL for chat.completions (model "fake-model"
     * in the body, "Authorization: Bearer <key>", tool results as
     * "role":"tool" messages): */
    const char *model_path;   /* the path prefix of its turn requests, model included */
    const char *key_header;   /* the header carrying the key as is */
    const char *tool_result;  /* what marks a tool result in a request */
};

/* borrowed: `agent` outlives the tests. */
void e2e_acp_use(const struct e2e_acp_agent *agent);

void e2e_acp_text_turn(void **state);
void e2e_acp_shell_granted(void **state);
void e2e_acp_shell_rejected(void **state);
void e2e_acp_two_sessions(void **state);
void e2e_acp_killed_mid_turn(void **state);
void e2e_acp_restart_carries_history(void **state);
void e2e_acp_terminate_mid_turn(void **state);

#endif
