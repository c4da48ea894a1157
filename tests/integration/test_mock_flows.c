/* Integration tests: every mock agent command, as the journaled event
 * sequence read back through GET /events (sequence numbers, item ids,
 * synthetic companions from the normalizer, exact JSON of the
 * representative events). */
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

#define SID "f"
#define WAIT_MS 10000

/* The expected shape of one event. */
struct ev {
    const char *type;
    int synthetic;
    const char *item_id; /* item and delta events; NULL otherwise */
    const char *native;  /* native_item_id */
    const char *kind;    /* items */
    const char *role;
    const char *status;
    const char *text;    /* deltas: the delta; items: the first (text) part; NULL: skip */
};

#define STARTED(id, native, kind, role, text) {"item.started", 0, id, native, kind, role, "in_progress", text}
#define COMPLETED(id, native, kind, role, status, text) {"item.completed", 0, id, native, kind, role, status, text}
#define DELTA(id, native, text) {"item.delta", 0, id, native, NULL, NULL, NULL, text}
#define SDELTA(id, native, text) {"item.delta", 1, id, native, NULL, NULL, NULL, text}
#define OTHER(type, synthetic) {type, synthetic, NULL, NULL, NULL, NULL, NULL, NULL}
/* A message item the mock starts and completes without deltas: the
 * normalizer adds a synthetic delta with its text. */
#define MESSAGE(id, native, role, text)                                                       \
    STARTED(id, native, "message", role, text), SDELTA(id, native, text),                     \
        COMPLETED(id, native, "message", role, "completed", text)
#define USER(id, native, text) MESSAGE(id, native, "user", text)
#define ASSIST(id, native, text) MESSAGE(id, native, "assistant", text)

static const char HELP_TEXT[] = "Mock agent commands:\n"
                                "- demo: run a full UI coverage sequence with markers.\n"
                                "- markdown: streaming markdown fixture.\n"
                                "- tool: tool call + tool result with file refs.\n"
                                "- status: status item updates.\n"
                                "- image: message with image content part.\n"
                                "- unknown: item.kind=unknown example.\n"
                                "- permission: permission requests (pending).\n"
                                "- question: question requests (pending).\n"
                                "- error: error + agent.unparsed events.\n"
                                "- unparsed: emit agent.unparsed only.\n"
                                "- end: emit session.ended.\n"
                                "\n"
                                "Any other text will be echoed as an assistant message.";

static const char MARKDOWN_TEXT[] =
    "# Markdown Demo\n\n**Bold**, *italic*, ***bold-italic***, and ~~strikethrough~~.\n\n"
    "Inline code: `const x = 1`.\n\n## Lists\n- Item one\n  - Nested item\n- Item two\n\n"
    "1. First\n2. Second\n\n> Blockquote with **bold** text.\n\n## Code\n```ts\n"
    "const answer: number = 42;\nconsole.log(answer);\n```\n\n## Table\n"
    "| Column A | Column B |\n|:---------|---------:|\n| Left     | Right    |\n"
    "| Alpha    | Beta     |\n\n## Link\n[Example](https://example.com)\n\n---\n\n"
    "End of markdown demo.";

#define MD_D1 "# Markdown Demo\n\n**Bo"
#define MD_D2 "ld**, *ita"
#define MD_D3 "lic*, ***bold-"
#define MD_D4 "italic***, and ~~stri"
#define MD_D5                                                                                 \
    "kethrough~~.\n\nInline code: `const x = 1`.\n\n## Lists\n- Item one\n  - Nested item\n"  \
    "- Item two\n\n1."
#define MD_D6 " First\n2. Second\n\n> Blockquote with **bold** text.\n\n## Code\n```t"
#define MD_D7                                                                                 \
    "s\nconst answer: number = 42;\nconsole.log(answer);\n```\n\n## Table\n"                  \
    "| Column A | Column B |\n|:---------|---------:|\n| Left"
#define MD_D8                                                                                 \
    "     | Right    |\n| Alpha    | Beta     |\n\n## Link\n[Example](https://example.com)\n"   \
    "\n---\n\nEnd of markdown demo."

#define RICH_TEXT "Mock assistant response with rich content."

static void check_events(const json_t *events, const char *sid, size_t first_seq,
                         const struct ev *spec, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(events, first_seq - 1 + i);
        const struct ev *x = &spec[i];
        const json_t *data;
        assert_non_null(e);
        sj_assert_envelope(e, (long long)(first_seq + i), sid, x->type, x->synthetic);
        if (!x->item_id)
            continue;
        data = json_object_get(e, "data");
        if (strcmp(x->type, "item.delta") == 0) {
            assert_string_equal(sj_str(data, "item_id"), x->item_id);
            assert_non_null(sj_str(data, "native_item_id"));
            assert_string_equal(sj_str(data, "native_item_id"), x->native);
            if (x->text)
                assert_string_equal(sj_str(data, "delta"), x->text);
        } else {
            const json_t *item = json_object_get(data, "item");
            assert_non_null(item);
            assert_string_equal(sj_str(item, "item_id"), x->item_id);
            assert_non_null(sj_str(item, "native_item_id"));
            assert_string_equal(sj_str(item, "native_item_id"), x->native);
            assert_true(json_is_null(json_object_get(item, "parent_id")));
            assert_string_equal(sj_str(item, "kind"), x->kind);
            assert_string_equal(sj_str(item, "role"), x->role);
            assert_string_equal(sj_str(item, "status"), x->status);
            if (x->text) {
                assert_non_null(sj_str(item, "content.0.text"));
                assert_string_equal(sj_str(item, "content.0.type"), "text");
                assert_string_equal(sj_str(item, "content.0.text"), x->text);
            }
        }
    }
}

/* Creates session SID, sends `message`, waits for exactly `total` events
 * (the turn's last event) for a test that goes on with the session. */
static json_t *run_open(struct sj_server *s, const char *message, size_t total)
{
    json_t *r = sj_create_session(s, SID, NULL);
    json_decref(r);
    sj_send_message(s, SID, message);
    return sj_wait_events_exact(s, SID, total, WAIT_MS);
}

/* run_open for a test's only turn: also proves that nothing follows it
 * (the session gains a barrier turn). */
static json_t *run(struct sj_server *s, const char *message, size_t total)
{
    json_t *events = run_open(s, message, total);
    json_decref(events);
    return sj_wait_events_quiet(s, SID, total, WAIT_MS);
}

static void test_echo(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "echo   hello  world"),
        ASSIST("itm_2", "mock_1_echo", "hello world"),
    };
    json_t *events = run(*state, "  echo   hello  world \n", 7);
    sj_assert_envelope(json_array_get(events, 0), 1, SID, "session.started", 1);
    check_events(events, SID, 2, spec, 6);
    sj_assert_event_exact(events, SID, 2, "item.started", 0,
                "{\"item\":{\"item_id\":\"itm_1\",\"native_item_id\":\"mock_1_user\","
                "\"parent_id\":null,\"kind\":\"message\",\"role\":\"user\",\"content\":"
                "[{\"type\":\"text\",\"text\":\"echo   hello  world\"}],\"status\":\"in_progress\"}}");
    sj_assert_event_exact(events, SID, 3, "item.delta", 1,
                "{\"item_id\":\"itm_1\",\"native_item_id\":\"mock_1_user\","
                "\"delta\":\"echo   hello  world\"}");
    sj_assert_event_exact(events, SID, 7, "item.completed", 0,
                "{\"item\":{\"item_id\":\"itm_2\",\"native_item_id\":\"mock_1_echo\","
                "\"parent_id\":null,\"kind\":\"message\",\"role\":\"assistant\",\"content\":"
                "[{\"type\":\"text\",\"text\":\"hello world\"}],\"status\":\"completed\"}}");
    json_decref(events);
}

static void test_echo_and_say_without_text(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "ECHO"),
        ASSIST("itm_2", "mock_1_echo", "Tell me what to say after `echo`."),
        USER("itm_3", "mock_2_user", "say"),
        ASSIST("itm_4", "mock_2_echo", "Tell me what to say after `echo`."),
        USER("itm_5", "mock_3_user", "say it again"),
        ASSIST("itm_6", "mock_3_echo", "it again"),
    };
    struct sj_server *s = *state;
    json_t *events = run_open(s, "ECHO", 7);
    json_decref(events);
    sj_send_message(s, SID, "say");
    events = sj_wait_events_exact(s, SID, 13, WAIT_MS);
    json_decref(events);
    sj_send_message(s, SID, "say it again");
    events = sj_wait_events_quiet(s, SID, 19, WAIT_MS);
    check_events(events, SID, 2, spec, 18);
    json_decref(events);
}

static void test_plain_text_echoed(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "Hello,  mock!"),
        ASSIST("itm_2", "mock_1_reply", "Hello,  mock!"),
    };
    json_t *events = run(*state, "\tHello,  mock!  ", 7);
    check_events(events, SID, 2, spec, 6);
    json_decref(events);
}

static void test_help(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "HeLp"),
        ASSIST("itm_2", "mock_1_help", HELP_TEXT),
    };
    json_t *events = run(*state, "HeLp", 7);
    check_events(events, SID, 2, spec, 6);
    json_decref(events);
}

static void test_special_prompts(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "reply with exactly the single word ok."),
        ASSIST("itm_2", "mock_1_ok", "OK"),
        USER("itm_3", "mock_2_user", "Reply with exactly the word FIRST."),
        ASSIST("itm_4", "mock_2_first", "FIRST"),
        USER("itm_5", "mock_3_user", "Reply with exactly the word SECOND."),
        ASSIST("itm_6", "mock_3_second", "SECOND"),
    };
    struct sj_server *s = *state;
    json_t *events = run_open(s, "reply with exactly the single word ok.", 7);
    json_decref(events);
    sj_send_message(s, SID, "Reply with exactly the word FIRST.");
    events = sj_wait_events_exact(s, SID, 13, WAIT_MS);
    json_decref(events);
    sj_send_message(s, SID, "Reply with exactly the word SECOND.");
    events = sj_wait_events_quiet(s, SID, 19, WAIT_MS);
    check_events(events, SID, 2, spec, 18);
    json_decref(events);
}

static void test_reasoning_prompt(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "Answer briefly and include your reasoning."),
        STARTED("itm_2", "mock_1_assistant_rich", "message", "assistant", RICH_TEXT),
        DELTA("itm_2", "mock_1_assistant_rich", "Mock assistant "),
        DELTA("itm_2", "mock_1_assistant_rich", "streaming delta."),
        /* Deltas were streamed: no synthetic delta. */
        COMPLETED("itm_2", "mock_1_assistant_rich", "message", "assistant", "completed", RICH_TEXT),
    };
    json_t *events = run(*state, "Answer briefly and include your reasoning.", 8);
    check_events(events, SID, 2, spec, 7);
    sj_assert_event_exact(events, SID, 8, "item.completed", 0,
                "{\"item\":{\"item_id\":\"itm_2\",\"native_item_id\":\"mock_1_assistant_rich\","
                "\"parent_id\":null,\"kind\":\"message\",\"role\":\"assistant\",\"content\":["
                "{\"type\":\"text\",\"text\":\"" RICH_TEXT "\"},"
                "{\"type\":\"reasoning\",\"text\":\"Public reasoning for display.\","
                "\"visibility\":\"public\"},"
                "{\"type\":\"reasoning\",\"text\":\"Private reasoning hidden by default.\","
                "\"visibility\":\"private\"},"
                "{\"type\":\"json\",\"json\":{\"ok\":true,\"stage\":\"analysis\"}}],"
                "\"status\":\"completed\"}}");
    json_decref(events);
}

static void test_status(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "status"),
        STARTED("itm_2", "mock_1_status", "status", "assistant", NULL),
        COMPLETED("itm_2", "mock_1_status", "status", "assistant", "completed", NULL),
    };
    json_t *events = run(*state, "status", 6);
    check_events(events, SID, 2, spec, 5);
    sj_assert_event_exact(events, SID, 5, "item.started", 0,
                "{\"item\":{\"item_id\":\"itm_2\",\"native_item_id\":\"mock_1_status\","
                "\"parent_id\":null,\"kind\":\"status\",\"role\":\"assistant\",\"content\":["
                "{\"type\":\"status\",\"label\":\"Indexing\",\"detail\":\"2 files\"}],"
                "\"status\":\"in_progress\"}}");
    sj_assert_event_exact(events, SID, 6, "item.completed", 0,
                "{\"item\":{\"item_id\":\"itm_2\",\"native_item_id\":\"mock_1_status\","
                "\"parent_id\":null,\"kind\":\"status\",\"role\":\"assistant\",\"content\":["
                "{\"type\":\"status\",\"label\":\"Indexing\",\"detail\":\"Done\"}],"
                "\"status\":\"completed\"}}");
    json_decref(events);
}

static void test_status_prompt(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "PROVIDE A SHORT STATUS UPDATE."),
        STARTED("itm_2", "mock_1_status", "status", "assistant", NULL),
        COMPLETED("itm_2", "mock_1_status", "status", "assistant", "completed", NULL),
    };
    json_t *events = run(*state, "PROVIDE A SHORT STATUS UPDATE.", 6);
    check_events(events, SID, 2, spec, 5);
    json_decref(events);
}

static void test_markdown(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "markdown"),
        STARTED("itm_2", "mock_1_markdown", "message", "assistant",
                "Markdown demo (streaming follows)..."),
        DELTA("itm_2", "mock_1_markdown", MD_D1),
        DELTA("itm_2", "mock_1_markdown", MD_D2),
        DELTA("itm_2", "mock_1_markdown", MD_D3),
        DELTA("itm_2", "mock_1_markdown", MD_D4),
        DELTA("itm_2", "mock_1_markdown", MD_D5),
        DELTA("itm_2", "mock_1_markdown", MD_D6),
        DELTA("itm_2", "mock_1_markdown", MD_D7),
        DELTA("itm_2", "mock_1_markdown", MD_D8),
        COMPLETED("itm_2", "mock_1_markdown", "message", "assistant", "completed", MARKDOWN_TEXT),
    };
    json_t *events = run(*state, "markdown", 14);
    check_events(events, SID, 2, spec, 13);
    json_decref(events);
}

static const char TOOL_RESULT_CONTENT[] =
    "[{\"type\":\"tool_result\",\"call_id\":\"mock_1_call\",\"output\":\"mock search results\"},"
    "{\"type\":\"file_ref\",\"path\":\"mock_1/readme.md\",\"action\":\"read\",\"diff\":null},"
    "{\"type\":\"file_ref\",\"path\":\"mock_1/output.txt\",\"action\":\"write\","
    "\"diff\":\"+mock output\\n\"},"
    "{\"type\":\"file_ref\",\"path\":\"mock_1/patch.txt\",\"action\":\"patch\","
    "\"diff\":\"@@ -1,1 +1,1 @@\\n-old\\n+new\\n\"}]";

static void check_tool_exact(const json_t *events, long long call_seq, const char *call_item,
                             const char *result_item)
{
    char *data = sj_fmt("{\"item\":{\"item_id\":\"%s\",\"native_item_id\":\"mock_1_tool_call\","
                        "\"parent_id\":null,\"kind\":\"tool_call\",\"role\":\"assistant\","
                        "\"content\":[{\"type\":\"tool_call\",\"name\":\"mock.search\","
                        "\"arguments\":\"{\\\"query\\\":\\\"example\\\"}\","
                        "\"call_id\":\"mock_1_call\"}],\"status\":\"completed\"}}",
                        call_item);
    sj_assert_event_exact(events, SID, call_seq + 1, "item.completed", 0, data);
    free(data);
    data = sj_fmt("{\"item\":{\"item_id\":\"%s\",\"native_item_id\":\"mock_1_tool_result\","
                  "\"parent_id\":null,\"kind\":\"tool_result\",\"role\":\"tool\","
                  "\"content\":%s,\"status\":\"failed\"}}",
                  result_item, TOOL_RESULT_CONTENT);
    sj_assert_event_exact(events, SID, call_seq + 3, "item.completed", 0, data);
    free(data);
}

static void test_tool(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "tools"),
        STARTED("itm_2", "mock_1_tool_call", "tool_call", "assistant", NULL),
        COMPLETED("itm_2", "mock_1_tool_call", "tool_call", "assistant", "completed", NULL),
        STARTED("itm_3", "mock_1_tool_result", "tool_result", "tool", NULL),
        COMPLETED("itm_3", "mock_1_tool_result", "tool_result", "tool", "failed", NULL),
    };
    json_t *events = run(*state, "tools", 8);
    check_events(events, SID, 2, spec, 7);
    check_tool_exact(events, 5, "itm_2", "itm_3");
    json_decref(events);
}

static void test_tool_prompt(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user",
             "Use the bash tool to run `ls` in the current directory. Do not answer without "
             "using the tool."),
        OTHER("permission.requested", 0),
        STARTED("itm_2", "mock_1_tool_call", "tool_call", "assistant", NULL),
        COMPLETED("itm_2", "mock_1_tool_call", "tool_call", "assistant", "completed", NULL),
        STARTED("itm_3", "mock_1_tool_result", "tool_result", "tool", NULL),
        COMPLETED("itm_3", "mock_1_tool_result", "tool_result", "tool", "failed", NULL),
    };
    json_t *events = run(*state,
                         "Use the bash tool to run `ls` in the current directory. Do not answer "
                         "without using the tool.",
                         9);
    check_events(events, SID, 2, spec, 8);
    sj_assert_event_exact(events, SID, 5, "permission.requested", 0,
                "{\"permission_id\":\"mock_1_permission\",\"action\":\"command_execution\","
                "\"status\":\"requested\",\"metadata\":{\"codexRequestKind\":\"commandExecution\","
                "\"command\":\"ls\"}}");
    check_tool_exact(events, 6, "itm_2", "itm_3");
    json_decref(events);
}

static void test_image(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "image"),
        ASSIST("itm_2", "mock_1_image", "Here is a mock image output."),
    };
    json_t *events = run(*state, "image", 7);
    check_events(events, SID, 2, spec, 6);
    sj_assert_event_exact(events, SID, 5, "item.started", 0,
                "{\"item\":{\"item_id\":\"itm_2\",\"native_item_id\":\"mock_1_image\","
                "\"parent_id\":null,\"kind\":\"message\",\"role\":\"assistant\",\"content\":["
                "{\"type\":\"text\",\"text\":\"Here is a mock image output.\"},"
                "{\"type\":\"image\",\"path\":\"mock_1/image.png\",\"mime\":\"image/png\"}],"
                "\"status\":\"in_progress\"}}");
    json_decref(events);
}

static void test_unknown(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "unknown"),
        /* Not a message item: no synthetic delta. */
        STARTED("itm_2", "mock_1_unknown", "unknown", "assistant", "Unknown item kind example."),
        COMPLETED("itm_2", "mock_1_unknown", "unknown", "assistant", "completed",
                  "Unknown item kind example."),
    };
    json_t *events = run(*state, "unknown", 6);
    check_events(events, SID, 2, spec, 5);
    json_decref(events);
}

#define PERM_ECHO                                                                             \
    "{\"permission_id\":\"mock_1_permission\",\"action\":\"command_execution\","              \
    "\"status\":\"requested\",\"metadata\":{\"codexRequestKind\":\"commandExecution\","       \
    "\"command\":\"echo mock\"}}"
#define PERM_DENY                                                                             \
    "{\"permission_id\":\"mock_1_permission_denied\",\"action\":\"file_change\","             \
    "\"status\":\"requested\",\"metadata\":{\"codexRequestKind\":\"fileChange\","             \
    "\"path\":\"mock_1/deny.txt\"}}"
#define QUESTION_COLOR                                                                        \
    "{\"question_id\":\"mock_1_question\",\"prompt\":\"Choose a color\","                     \
    "\"options\":[\"Red\",\"Blue\"],\"response\":null,\"status\":\"requested\"}"
#define QUESTION_REJECT                                                                       \
    "{\"question_id\":\"mock_1_question_reject\",\"prompt\":\"Allow mock experiment?\","      \
    "\"options\":[\"Yes\",\"No\"],\"response\":null,\"status\":\"requested\"}"
#define ERROR_DATA                                                                            \
    "{\"message\":\"Mock error event.\",\"code\":\"mock_error\",\"details\":{\"mock\":true}}"
#define UNPARSED_DATA                                                                         \
    "{\"error\":\"unsupported payload\",\"location\":\"mock.stream\",\"raw_hash\":null}"

static void test_permission(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "permission"),
        OTHER("permission.requested", 0),
        OTHER("permission.requested", 0),
    };
    json_t *events = run(*state, "permission", 6);
    check_events(events, SID, 2, spec, 5);
    sj_assert_event_exact(events, SID, 5, "permission.requested", 0, PERM_ECHO);
    sj_assert_event_exact(events, SID, 6, "permission.requested", 0, PERM_DENY);
    json_decref(events);
}

static void test_permission_prompt(void **state)
{
    static const struct ev spec[] = {
        /* Matched case-insensitively; the user item keeps the text as sent. */
        USER("itm_1", "mock_1_user",
             "list files in the current directory using available tools."),
        OTHER("permission.requested", 0),
    };
    json_t *events =
        run(*state, "list files in the current directory using available tools.", 5);
    check_events(events, SID, 2, spec, 4);
    sj_assert_event_exact(events, SID, 5, "permission.requested", 0,
                "{\"permission_id\":\"mock_1_permission\",\"action\":\"command_execution\","
                "\"status\":\"requested\",\"metadata\":{\"codexRequestKind\":\"commandExecution\","
                "\"command\":\"ls\"}}");
    json_decref(events);
}

static void test_question(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "questions"),
        OTHER("question.requested", 0),
        OTHER("question.requested", 0),
    };
    json_t *events = run(*state, "questions", 6);
    check_events(events, SID, 2, spec, 5);
    sj_assert_event_exact(events, SID, 5, "question.requested", 0, QUESTION_COLOR);
    sj_assert_event_exact(events, SID, 6, "question.requested", 0, QUESTION_REJECT);
    json_decref(events);
}

static void test_question_prompts(void **state)
{
    struct sj_server *s = *state;
    json_t *events = run_open(s,
                              "Use the AskUserQuestion tool to ask exactly one yes/no question, "
                              "then wait for a reply. Do not answer yourself.",
                              5);
    sj_assert_event_exact(events, SID, 5, "question.requested", 0,
                "{\"question_id\":\"mock_1_question\",\"prompt\":\"Proceed?\","
                "\"options\":[\"Yes\",\"No\"],\"response\":null,\"status\":\"requested\"}");
    json_decref(events);
    sj_send_message(s, SID,
                    "Call the AskUserQuestion tool with exactly one yes/no question and wait for "
                    "a reply. Do not answer yourself.");
    events = sj_wait_events_quiet(s, SID, 9, WAIT_MS);
    sj_assert_event_exact(events, SID, 9, "question.requested", 0,
                "{\"question_id\":\"mock_2_question\",\"prompt\":\"Proceed?\","
                "\"options\":[\"Yes\",\"No\"],\"response\":null,\"status\":\"requested\"}");
    json_decref(events);
}

static void test_error(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "error"),
        OTHER("error", 1),
        OTHER("agent.unparsed", 1),
    };
    json_t *events = run(*state, "error", 6);
    check_events(events, SID, 2, spec, 5);
    sj_assert_event_exact(events, SID, 5, "error", 1, ERROR_DATA);
    sj_assert_event_exact(events, SID, 6, "agent.unparsed", 1, UNPARSED_DATA);
    json_decref(events);
}

static void test_unparsed_and_raw(void **state)
{
    struct sj_server *s = *state;
    json_t *events = run_open(s, "unparsed", 5), *page, *ev;
    sj_assert_event_exact(events, SID, 5, "agent.unparsed", 1, UNPARSED_DATA);
    json_decref(events);

    /* include_raw splices the stored native payload in; others stay null. */
    page = sj_get_events(s, SID, "?include_raw=true");
    events = json_object_get(page, "events");
    assert_int_equal(json_array_size(events), 5);
    ev = json_array_get(events, 4);
    {
        char *raw = json_dumps(json_object_get(ev, "raw"), JSON_COMPACT | JSON_ENCODE_ANY);
        assert_string_equal(raw, "{\"raw\":\"mock\"}");
        free(raw);
    }
    for (size_t i = 0; i < 4; i++)
        assert_true(json_is_null(json_object_get(json_array_get(events, i), "raw")));
    json_decref(page);

    page = sj_get_events(s, SID, "?offset=4&includeRaw=true");
    events = json_object_get(page, "events");
    assert_int_equal(json_array_size(events), 1);
    assert_string_equal(sj_str(json_array_get(events, 0), "raw.raw"), "mock");
    json_decref(page);

    page = sj_get_events(s, SID, "?offset=4&include_raw=false");
    assert_true(json_is_null(json_object_get(json_array_get(json_object_get(page, "events"), 0),
                                             "raw")));
    json_decref(page);

    /* The raw body text ends with the spliced payload. */
    {
        char *text = sj_get_events_text(s, SID, "?offset=4&include_raw=true");
        assert_non_null(strstr(text, "\"raw\":{\"raw\":\"mock\"}}]"));
        free(text);
    }
}

static void test_end(void **state)
{
    struct sj_server *s = *state;
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "session.end"),
        OTHER("session.ended", 1),
    };
    json_t *events = run_open(s, "session.end", 5), *list, *info;
    struct httpc_response resp;
    check_events(events, SID, 2, spec, 4);
    sj_assert_event_exact(events, SID, 5, "session.ended", 1,
                "{\"reason\":\"completed\",\"terminated_by\":\"agent\"}");
    json_decref(events);

    list = sj_call(s, "GET", "/v1/sessions", NULL, 200);
    info = json_array_get(json_object_get(list, "sessions"), 0);
    assert_true(json_is_true(json_object_get(info, "ended")));
    assert_int_equal(sj_int(info, "eventCount"), 5);
    json_decref(list);

    /* The agent ended the session: further messages fail. */
    sj_request(s, "POST", "/v1/sessions/" SID "/messages", "{\"message\":\"hi\"}", 1, &resp);
    {
        json_t *p = sj_assert_problem(&resp, 500, "agent_process_exited");
        json_decref(p);
    }
    httpc_response_free(&resp);
    events = sj_wait_events_quiet(s, SID, 5, WAIT_MS);
    json_decref(events);
}

static void test_empty_message(void **state)
{
    /* Issue 13, bug 5: a blank message got 204, journaled nothing and
     * started no turn, so a turn stream for it never ended.  It is refused
     * now, on both routes, before anything is journaled or counted: the
     * next message is turn 1. */
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "echo after"),
        ASSIST("itm_2", "mock_1_echo", "after"),
    };
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, SID, NULL));
    static const char *const bodies[] = { "{\"message\":\"   \"}", "{\"message\":\" \\t\\n \"}",
                                          "{\"message\":\"\"}" };
    static const char *const paths[] = { "/v1/sessions/" SID "/messages",
                                         "/v1/sessions/" SID "/messages/stream" };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
            struct httpc_response resp;
            sj_request(s, "POST", paths[k], bodies[i], 1, &resp);
            json_t *p = sj_assert_problem(&resp, 400, "invalid_request");
            assert_non_null(strstr(sj_str(p, "detail"), "whitespace"));
            json_decref(p);
            httpc_response_free(&resp);
        }
    }
    json_t *events = sj_wait_events_exact(s, SID, 1, WAIT_MS);
    json_decref(events);
    sj_send_message(s, SID, "echo after");
    events = sj_wait_events_quiet(s, SID, 7, WAIT_MS);
    check_events(events, SID, 2, spec, 6);
    json_decref(events);
}

static void test_turns_and_item_ids(void **state)
{
    static const struct ev spec[] = {
        USER("itm_1", "mock_1_user", "status"),
        STARTED("itm_2", "mock_1_status", "status", "assistant", NULL),
        COMPLETED("itm_2", "mock_1_status", "status", "assistant", "completed", NULL),
        USER("itm_3", "mock_2_user", "status"),
        STARTED("itm_4", "mock_2_status", "status", "assistant", NULL),
        COMPLETED("itm_4", "mock_2_status", "status", "assistant", "completed", NULL),
    };
    struct sj_server *s = *state;
    json_t *events = run_open(s, "status", 6);
    json_decref(events);
    sj_send_message(s, SID, "status");
    events = sj_wait_events_quiet(s, SID, 11, WAIT_MS);
    check_events(events, SID, 2, spec, 10);
    json_decref(events);
}

#define MK(n, id, text) ASSIST(id, "mock_1_marker_" #n, text)
static const struct ev demo_spec[] = {
    USER("itm_1", "mock_1_user", "demo"),
    MK(1, "itm_2", "Next: system message (system role)."),
    STARTED("itm_3", "mock_1_system", "system", "system", "System ready for mock events."),
    COMPLETED("itm_3", "mock_1_system", "system", "system", "completed",
              "System ready for mock events."),
    MK(2, "itm_4", "Next: assistant message with deltas, reasoning, and JSON content parts."),
    STARTED("itm_5", "mock_1_assistant_rich", "message", "assistant", RICH_TEXT),
    DELTA("itm_5", "mock_1_assistant_rich", "Mock assistant "),
    DELTA("itm_5", "mock_1_assistant_rich", "streaming delta."),
    COMPLETED("itm_5", "mock_1_assistant_rich", "message", "assistant", "completed", RICH_TEXT),
    MK(3, "itm_6", "Next: status item updates."),
    STARTED("itm_7", "mock_1_status", "status", "assistant", NULL),
    COMPLETED("itm_7", "mock_1_status", "status", "assistant", "completed", NULL),
    MK(4, "itm_8", "Next: markdown rendering + streaming markdown deltas."),
    STARTED("itm_9", "mock_1_markdown", "message", "assistant",
            "Markdown demo (streaming follows)..."),
    DELTA("itm_9", "mock_1_markdown", MD_D1),
    DELTA("itm_9", "mock_1_markdown", MD_D2),
    DELTA("itm_9", "mock_1_markdown", MD_D3),
    DELTA("itm_9", "mock_1_markdown", MD_D4),
    DELTA("itm_9", "mock_1_markdown", MD_D5),
    DELTA("itm_9", "mock_1_markdown", MD_D6),
    DELTA("itm_9", "mock_1_markdown", MD_D7),
    DELTA("itm_9", "mock_1_markdown", MD_D8),
    COMPLETED("itm_9", "mock_1_markdown", "message", "assistant", "completed", MARKDOWN_TEXT),
    MK(5, "itm_10", "Next: tool call item."),
    STARTED("itm_11", "mock_1_tool_call", "tool_call", "assistant", NULL),
    COMPLETED("itm_11", "mock_1_tool_call", "tool_call", "assistant", "completed", NULL),
    STARTED("itm_12", "mock_1_tool_result", "tool_result", "tool", NULL),
    COMPLETED("itm_12", "mock_1_tool_result", "tool_result", "tool", "failed", NULL),
    MK(6, "itm_13", "Next: image output content part."),
    ASSIST("itm_14", "mock_1_image", "Here is a mock image output."),
    MK(7, "itm_15", "Next: unknown item kind."),
    STARTED("itm_16", "mock_1_unknown", "unknown", "assistant", "Unknown item kind example."),
    COMPLETED("itm_16", "mock_1_unknown", "unknown", "assistant", "completed",
              "Unknown item kind example."),
    MK(8, "itm_17", "Next: permission requests (pending)."),
    OTHER("permission.requested", 0),
    OTHER("permission.requested", 0),
    MK(9, "itm_18", "Next: question requests (pending)."),
    OTHER("question.requested", 0),
    OTHER("question.requested", 0),
    MK(10, "itm_19", "Next: error and agent.unparsed events."),
    OTHER("error", 1),
    OTHER("agent.unparsed", 1),
};
#undef MK

static void test_demo(void **state)
{
    const size_t n = sizeof demo_spec / sizeof demo_spec[0];
    json_t *events;
    assert_int_equal(n, 66);
    events = run(*state, "demo", 67);
    check_events(events, SID, 2, demo_spec, n);
    check_tool_exact(events, 38, "itm_11", "itm_12");
    sj_assert_event_exact(events, SID, 56, "permission.requested", 0, PERM_ECHO);
    sj_assert_event_exact(events, SID, 57, "permission.requested", 0, PERM_DENY);
    sj_assert_event_exact(events, SID, 61, "question.requested", 0, QUESTION_COLOR);
    sj_assert_event_exact(events, SID, 62, "question.requested", 0, QUESTION_REJECT);
    sj_assert_event_exact(events, SID, 66, "error", 1, ERROR_DATA);
    sj_assert_event_exact(events, SID, 67, "agent.unparsed", 1, UNPARSED_DATA);
    json_decref(events);
}

static void test_concurrent_sessions(void **state)
{
    /* Several sessions streaming at once each get their own contiguous
     * sequences and item ids. */
    struct sj_server *s = *state;
    char sid[16];
    for (int i = 0; i < 8; i++) {
        json_t *r;
        snprintf(sid, sizeof sid, "c%d", i);
        r = sj_create_session(s, sid, NULL);
        json_decref(r);
    }
    for (int i = 0; i < 8; i++) {
        snprintf(sid, sizeof sid, "c%d", i);
        sj_send_message(s, sid, "demo");
    }
    for (int i = 0; i < 8; i++) {
        json_t *events;
        snprintf(sid, sizeof sid, "c%d", i);
        events = sj_wait_events_quiet(s, sid, 67, 20000);
        sj_assert_envelope(json_array_get(events, 0), 1, sid, "session.started", 1);
        check_events(events, sid, 2, demo_spec, sizeof demo_spec / sizeof demo_spec[0]);
        json_decref(events);
    }
}

static int setup_slow(void **state)
{
    static const char *const args[] = {"--mock-delay-ms", "25", NULL};
    return sj_setup_with(state, args);
}

static void test_terminate_drops_paced_events(void **state)
{
    /* Terminating mid-turn journals session.ended, and nothing of the
     * mock's queued reply follows it. */
    struct sj_server *s = *state;
    json_t *r = sj_create_session(s, SID, NULL), *events, *last;
    size_t n;
    json_decref(r);
    sj_send_message(s, SID, "demo");
    events = sj_wait_events(s, SID, 10, WAIT_MS);
    json_decref(events);
    r = sj_call(s, "POST", "/v1/sessions/" SID "/terminate", NULL, 204);
    assert_null(r);
    /* session.ended was committed before the 204 and anything queued before
     * it with it, so this read ends with it; the sj_wait_events_quiet below
     * proves that nothing of the queued reply comes after. */
    events = sj_wait_events(s, SID, 11, 0);
    n = json_array_size(events);
    assert_true(n < 67);
    last = json_array_get(events, n - 1);
    sj_assert_envelope(last, (long long)n, SID, "session.ended", 1);
    assert_string_equal(sj_str(last, "data.reason"), "terminated");
    assert_string_equal(sj_str(last, "data.terminated_by"), "daemon");
    for (size_t i = 0; i + 1 < n; i++)
        assert_string_not_equal(sj_str(json_array_get(events, i), "type"), "session.ended");
    json_decref(events);
    events = sj_wait_events_quiet(s, SID, n, WAIT_MS);
    json_decref(events);
}

/* new: `n` copies of `c` between `head` and `tail`. */
static char *repeat(const char *head, char c, size_t n, const char *tail)
{
    char *mid = malloc(n + 1);
    assert_non_null(mid);
    memset(mid, c, n);
    mid[n] = '\0';
    char *s = sj_fmt("%s%s%s", head, mid, tail);
    free(mid);
    return s;
}

/* new: the nativeSessionId of a new mock session `path_id` (URL-encoded). */
static char *native_of_new(struct sj_server *s, const char *path_id)
{
    json_t *r = sj_create_session(s, path_id, NULL);
    const char *native = sj_str(r, "nativeSessionId");
    assert_non_null(native);
    assert_true(strlen(native) <= 127);
    assert_true(strncmp(native, "mock", 4) == 0);
    char *copy = strdup(native);
    json_decref(r);
    return copy;
}

static void test_long_ids(void **state)
{
    /* Issue 13 bug 4: "mock-<id>" is longer than the 127 bytes of a native
     * id for an id of more than 122 bytes.  It was cut there, inside the é
     * of 121 × a + é + 5 × b (128 bytes; 503 "out of memory" for a valid
     * id), and ids that share their first 122 bytes got one native id. */
    struct sj_server *s = *state;
    char *ids[] = {
        repeat("", 'a', 121, "%C3%A9bbbbb"),
        repeat("", 'a', 121, "%C3%A9ccccc"),
        repeat("", 'a', 122, "x"),
        repeat("", 'a', 122, "y"),
        repeat("", 'z', 255, ""),
        repeat("", 'z', 254, "y"),
    };
    enum { N = sizeof ids / sizeof ids[0] };
    char *natives[N];
    for (size_t i = 0; i < N; i++)
        natives[i] = native_of_new(s, ids[i]);
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++)
            if (strcmp(natives[i], natives[j]) == 0)
                fail_msg("sessions %zu and %zu share the native id %s", i, j, natives[i]);
    /* An id that fits keeps the plain form. */
    char *fits = repeat("", 'a', 122, "");
    char *native = native_of_new(s, fits);
    char *want = sj_fmt("mock-%s", fits);
    assert_string_equal(native, want);
    /* Such a session works, and its native id is the one journaled. */
    sj_send_message(s, ids[0], "echo long");
    json_t *events = sj_wait_events(s, ids[0], 7, WAIT_MS);
    assert_string_equal(sj_str(json_array_get(events, 0), "native_session_id"), natives[0]);
    json_decref(events);
    free(want);
    free(native);
    free(fits);
    for (size_t i = 0; i < N; i++) {
        free(natives[i]);
        free(ids[i]);
    }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, sj_setup_default, sj_teardown_default)
    const struct CMUnitTest tests[] = {
        T(test_echo),
        T(test_echo_and_say_without_text),
        T(test_plain_text_echoed),
        T(test_help),
        T(test_special_prompts),
        T(test_reasoning_prompt),
        T(test_status),
        T(test_status_prompt),
        T(test_markdown),
        T(test_tool),
        T(test_tool_prompt),
        T(test_image),
        T(test_unknown),
        T(test_permission),
        T(test_permission_prompt),
        T(test_question),
        T(test_question_prompts),
        T(test_error),
        T(test_unparsed_and_raw),
        T(test_end),
        T(test_empty_message),
        T(test_turns_and_item_ids),
        T(test_demo),
        T(test_concurrent_sessions),
        T(test_long_ids),
        cmocka_unit_test_setup_teardown(test_terminate_drops_paced_events, setup_slow,
                                        sj_teardown_default),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
