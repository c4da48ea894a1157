/* Unit tests for the built-in mock agent (adapters/mock.c): the scripted
 * conversion lists for every command and special prompt, mode resolution,
 * and the adapter's use of its host (state, emit) and of the supervisor loop,
 * where it paces a turn's conversions out through emit_async. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "adapters/registry.h"
#include "agents/adapter.h"
#include "agents/supervisor.h"
#include "base/err.h"
#include "events/event.h"
#include "adapters/mock.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------- */

static const json_t *conv_at(const json_t *list, size_t i)
{
    const json_t *c = json_array_get(list, i);
    assert_non_null(c);
    return c;
}

static const char *str_at(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("key %s is not a string", key);
    return json_string_value(v);
}

static const json_t *data_of(const json_t *c)
{
    const json_t *d = json_object_get(c, "data");
    assert_true(json_is_object(d));
    return d;
}

static const json_t *item_of(const json_t *c)
{
    const json_t *item = json_object_get(data_of(c), "item");
    assert_true(json_is_object(item));
    return item;
}

static int is_synthetic(const json_t *c)
{
    return json_is_true(json_object_get(c, "synthetic"));
}

/* Checks an item event's type, native id, kind, role, status and that its
 * conversion is an agent (non-synthetic) one. */
static void check_item(const json_t *c, const char *type, const char *native_id,
                       const char *kind, const char *role, const char *status)
{
    const json_t *item;
    assert_string_equal(str_at(c, "type"), type);
    assert_false(is_synthetic(c));
    assert_string_equal(str_at(c, "source"), "agent");
    item = item_of(c);
    assert_string_equal(str_at(item, "native_item_id"), native_id);
    assert_string_equal(str_at(item, "kind"), kind);
    assert_string_equal(str_at(item, "role"), role);
    assert_string_equal(str_at(item, "status"), status);
}

static const json_t *content_of_conv(const json_t *c)
{
    const json_t *content = json_object_get(item_of(c), "content");
    assert_true(json_is_array(content));
    return content;
}

/* The item's content is exactly one text part `text`. */
static void check_single_text(const json_t *c, const char *text)
{
    const json_t *content = content_of_conv(c);
    const json_t *part;
    assert_int_equal(json_array_size(content), 1);
    part = json_array_get(content, 0);
    assert_string_equal(str_at(part, "type"), "text");
    assert_string_equal(str_at(part, "text"), text);
}

/* Checks a started+completed pair of an assistant message with one text part. */
static void check_assistant_pair(const json_t *list, size_t at, const char *native_id,
                                 const char *text)
{
    check_item(conv_at(list, at), "item.started", native_id, "message", "assistant",
               "in_progress");
    check_single_text(conv_at(list, at), text);
    check_item(conv_at(list, at + 1), "item.completed", native_id, "message", "assistant",
               "completed");
    check_single_text(conv_at(list, at + 1), text);
}

static void check_delta(const json_t *c, const char *native_id, const char *delta)
{
    const json_t *d;
    assert_string_equal(str_at(c, "type"), "item.delta");
    assert_false(is_synthetic(c));
    d = data_of(c);
    assert_string_equal(str_at(d, "native_item_id"), native_id);
    assert_string_equal(str_at(d, "delta"), delta);
}

static char *dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(s);
    return s;
}

static void assert_json_text(const json_t *v, const char *expected)
{
    char *s = dump(v);
    assert_string_equal(s, expected);
    free(s);
}

/* Each sequence checker takes the list and the index it starts at, and
 * returns the index after it, so demo can reuse them. */

static size_t check_rich(const json_t *list, size_t at, const char *prefix)
{
    char id[64];
    snprintf(id, sizeof id, "%s_assistant_rich", prefix);
    for (size_t k = 0; k < 2; k++) {
        const json_t *c = conv_at(list, k == 0 ? at : at + 3);
        const json_t *content, *p;
        check_item(c, k == 0 ? "item.started" : "item.completed", id, "message", "assistant",
                   k == 0 ? "in_progress" : "completed");
        content = content_of_conv(c);
        assert_int_equal(json_array_size(content), 4);
        p = json_array_get(content, 0);
        assert_string_equal(str_at(p, "type"), "text");
        assert_string_equal(str_at(p, "text"), "Mock assistant response with rich content.");
        p = json_array_get(content, 1);
        assert_string_equal(str_at(p, "type"), "reasoning");
        assert_string_equal(str_at(p, "text"), "Public reasoning for display.");
        assert_string_equal(str_at(p, "visibility"), "public");
        p = json_array_get(content, 2);
        assert_string_equal(str_at(p, "type"), "reasoning");
        assert_string_equal(str_at(p, "text"), "Private reasoning hidden by default.");
        assert_string_equal(str_at(p, "visibility"), "private");
        p = json_array_get(content, 3);
        assert_string_equal(str_at(p, "type"), "json");
        /* serde_json's map order: sorted keys. */
        assert_json_text(json_object_get(p, "json"), "{\"ok\":true,\"stage\":\"analysis\"}");
    }
    check_delta(conv_at(list, at + 1), id, "Mock assistant ");
    check_delta(conv_at(list, at + 2), id, "streaming delta.");
    return at + 4;
}

static size_t check_status(const json_t *list, size_t at, const char *prefix)
{
    char id[64];
    const json_t *p;
    snprintf(id, sizeof id, "%s_status", prefix);
    check_item(conv_at(list, at), "item.started", id, "status", "assistant", "in_progress");
    assert_int_equal(json_array_size(content_of_conv(conv_at(list, at))), 1);
    p = json_array_get(content_of_conv(conv_at(list, at)), 0);
    assert_string_equal(str_at(p, "type"), "status");
    assert_string_equal(str_at(p, "label"), "Indexing");
    assert_string_equal(str_at(p, "detail"), "2 files");
    check_item(conv_at(list, at + 1), "item.completed", id, "status", "assistant", "completed");
    assert_int_equal(json_array_size(content_of_conv(conv_at(list, at + 1))), 1);
    p = json_array_get(content_of_conv(conv_at(list, at + 1)), 0);
    assert_string_equal(str_at(p, "type"), "status");
    assert_string_equal(str_at(p, "label"), "Indexing");
    assert_string_equal(str_at(p, "detail"), "Done");
    return at + 2;
}

static const char MARKDOWN_FINAL[] =
    "# Markdown Demo\n\n**Bold**, *italic*, ***bold-italic***, and ~~strikethrough~~.\n\n"
    "Inline code: `const x = 1`.\n\n## Lists\n- Item one\n  - Nested item\n- Item two\n\n"
    "1. First\n2. Second\n\n> Blockquote with **bold** text.\n\n## Code\n```ts\n"
    "const answer: number = 42;\nconsole.log(answer);\n```\n\n## Table\n"
    "| Column A | Column B |\n|:---------|---------:|\n| Left     | Right    |\n"
    "| Alpha    | Beta     |\n\n## Link\n[Example](https://example.com)\n\n---\n\n"
    "End of markdown demo.";

static size_t check_markdown(const json_t *list, size_t at, const char *prefix)
{
    char id[64];
    char joined[2048] = "";
    snprintf(id, sizeof id, "%s_markdown", prefix);
    check_item(conv_at(list, at), "item.started", id, "message", "assistant", "in_progress");
    check_single_text(conv_at(list, at), "Markdown demo (streaming follows)...");
    for (size_t i = 0; i < 8; i++) {
        const json_t *c = conv_at(list, at + 1 + i);
        const char *d;
        assert_string_equal(str_at(c, "type"), "item.delta");
        assert_false(is_synthetic(c));
        assert_string_equal(str_at(data_of(c), "native_item_id"), id);
        d = str_at(data_of(c), "delta");
        assert_true(strlen(d) > 0);
        assert_true(strlen(joined) + strlen(d) < sizeof joined);
        strcat(joined, d);
    }
    check_delta(conv_at(list, at + 1), id, "# Markdown Demo\n\n**Bo");
    check_delta(conv_at(list, at + 2), id, "ld**, *ita");
    assert_string_equal(joined, MARKDOWN_FINAL);
    check_item(conv_at(list, at + 9), "item.completed", id, "message", "assistant", "completed");
    check_single_text(conv_at(list, at + 9), MARKDOWN_FINAL);
    return at + 10;
}

static void check_file_ref(const json_t *p, const char *path, const char *action,
                           const char *diff)
{
    const json_t *d = json_object_get(p, "diff");
    assert_string_equal(str_at(p, "type"), "file_ref");
    assert_string_equal(str_at(p, "path"), path);
    assert_string_equal(str_at(p, "action"), action);
    if (diff)
        assert_string_equal(json_string_value(d), diff);
    else
        assert_true(d == NULL || json_is_null(d));
}

static size_t check_tool(const json_t *list, size_t at, const char *prefix)
{
    char call_native[64], result_native[64], call_id[64], path[64];
    snprintf(call_native, sizeof call_native, "%s_tool_call", prefix);
    snprintf(result_native, sizeof result_native, "%s_tool_result", prefix);
    snprintf(call_id, sizeof call_id, "%s_call", prefix);
    for (size_t k = 0; k < 2; k++) {
        const json_t *c = conv_at(list, at + k);
        const json_t *p;
        check_item(c, k == 0 ? "item.started" : "item.completed", call_native, "tool_call",
                   "assistant", k == 0 ? "in_progress" : "completed");
        assert_int_equal(json_array_size(content_of_conv(c)), 1);
        p = json_array_get(content_of_conv(c), 0);
        assert_string_equal(str_at(p, "type"), "tool_call");
        assert_string_equal(str_at(p, "name"), "mock.search");
        assert_string_equal(str_at(p, "arguments"), "{\"query\":\"example\"}");
        assert_string_equal(str_at(p, "call_id"), call_id);
    }
    for (size_t k = 0; k < 2; k++) {
        const json_t *c = conv_at(list, at + 2 + k);
        const json_t *content, *p;
        check_item(c, k == 0 ? "item.started" : "item.completed", result_native, "tool_result",
                   "tool", k == 0 ? "in_progress" : "failed");
        content = content_of_conv(c);
        assert_int_equal(json_array_size(content), 4);
        p = json_array_get(content, 0);
        assert_string_equal(str_at(p, "type"), "tool_result");
        assert_string_equal(str_at(p, "call_id"), call_id);
        assert_string_equal(str_at(p, "output"), "mock search results");
        snprintf(path, sizeof path, "%s/readme.md", prefix);
        check_file_ref(json_array_get(content, 1), path, "read", NULL);
        snprintf(path, sizeof path, "%s/output.txt", prefix);
        check_file_ref(json_array_get(content, 2), path, "write", "+mock output\n");
        snprintf(path, sizeof path, "%s/patch.txt", prefix);
        check_file_ref(json_array_get(content, 3), path, "patch",
                       "@@ -1,1 +1,1 @@\n-old\n+new\n");
    }
    return at + 4;
}

static size_t check_image(const json_t *list, size_t at, const char *prefix)
{
    char id[64], path[64];
    snprintf(id, sizeof id, "%s_image", prefix);
    snprintf(path, sizeof path, "%s/image.png", prefix);
    for (size_t k = 0; k < 2; k++) {
        const json_t *c = conv_at(list, at + k);
        const json_t *content, *p;
        check_item(c, k == 0 ? "item.started" : "item.completed", id, "message", "assistant",
                   k == 0 ? "in_progress" : "completed");
        content = content_of_conv(c);
        assert_int_equal(json_array_size(content), 2);
        p = json_array_get(content, 0);
        assert_string_equal(str_at(p, "type"), "text");
        assert_string_equal(str_at(p, "text"), "Here is a mock image output.");
        p = json_array_get(content, 1);
        assert_string_equal(str_at(p, "type"), "image");
        assert_string_equal(str_at(p, "path"), path);
        assert_string_equal(str_at(p, "mime"), "image/png");
    }
    return at + 2;
}

static size_t check_unknown(const json_t *list, size_t at, const char *prefix)
{
    char id[64];
    snprintf(id, sizeof id, "%s_unknown", prefix);
    check_item(conv_at(list, at), "item.started", id, "unknown", "assistant", "in_progress");
    check_single_text(conv_at(list, at), "Unknown item kind example.");
    check_item(conv_at(list, at + 1), "item.completed", id, "unknown", "assistant", "completed");
    check_single_text(conv_at(list, at + 1), "Unknown item kind example.");
    return at + 2;
}

static void check_permission(const json_t *c, const char *id, const char *action,
                             const char *metadata_json)
{
    const json_t *d;
    assert_string_equal(str_at(c, "type"), "permission.requested");
    assert_false(is_synthetic(c));
    assert_string_equal(str_at(c, "source"), "agent");
    d = data_of(c);
    assert_string_equal(str_at(d, "permission_id"), id);
    assert_string_equal(str_at(d, "action"), action);
    assert_string_equal(str_at(d, "status"), "requested");
    assert_json_text(json_object_get(d, "metadata"), metadata_json);
}

static size_t check_permissions(const json_t *list, size_t at, const char *prefix)
{
    char id[64], deny_id[64], meta[128];
    snprintf(id, sizeof id, "%s_permission", prefix);
    snprintf(deny_id, sizeof deny_id, "%s_permission_denied", prefix);
    check_permission(conv_at(list, at), id, "command_execution",
                     "{\"codexRequestKind\":\"commandExecution\",\"command\":\"echo mock\"}");
    snprintf(meta, sizeof meta, "{\"codexRequestKind\":\"fileChange\",\"path\":\"%s/deny.txt\"}",
             prefix);
    check_permission(conv_at(list, at + 1), deny_id, "file_change", meta);
    return at + 2;
}

static void check_question(const json_t *c, const char *id, const char *prompt,
                           const char *options_json)
{
    const json_t *d, *response;
    assert_string_equal(str_at(c, "type"), "question.requested");
    assert_false(is_synthetic(c));
    d = data_of(c);
    assert_string_equal(str_at(d, "question_id"), id);
    assert_string_equal(str_at(d, "prompt"), prompt);
    assert_string_equal(str_at(d, "status"), "requested");
    assert_json_text(json_object_get(d, "options"), options_json);
    response = json_object_get(d, "response");
    assert_true(response == NULL || json_is_null(response));
}

static size_t check_questions(const json_t *list, size_t at, const char *prefix)
{
    char id[64], reject_id[64];
    snprintf(id, sizeof id, "%s_question", prefix);
    snprintf(reject_id, sizeof reject_id, "%s_question_reject", prefix);
    check_question(conv_at(list, at), id, "Choose a color", "[\"Red\",\"Blue\"]");
    check_question(conv_at(list, at + 1), reject_id, "Allow mock experiment?",
                   "[\"Yes\",\"No\"]");
    return at + 2;
}

static void check_unparsed(const json_t *c)
{
    const json_t *d, *hash;
    assert_string_equal(str_at(c, "type"), "agent.unparsed");
    assert_true(is_synthetic(c));
    assert_string_equal(str_at(c, "source"), "daemon");
    d = data_of(c);
    assert_string_equal(str_at(d, "error"), "unsupported payload");
    assert_string_equal(str_at(d, "location"), "mock.stream");
    hash = json_object_get(d, "raw_hash");
    assert_true(hash == NULL || json_is_null(hash));
    assert_json_text(json_object_get(c, "raw"), "{\"raw\":\"mock\"}");
}

static size_t check_error(const json_t *list, size_t at)
{
    const json_t *c = conv_at(list, at);
    const json_t *d;
    assert_string_equal(str_at(c, "type"), "error");
    assert_true(is_synthetic(c));
    assert_string_equal(str_at(c, "source"), "daemon");
    d = data_of(c);
    assert_string_equal(str_at(d, "message"), "Mock error event.");
    assert_string_equal(str_at(d, "code"), "mock_error");
    assert_json_text(json_object_get(d, "details"), "{\"mock\":true}");
    check_unparsed(conv_at(list, at + 1));
    return at + 2;
}

static json_t *turn(const char *prefix, const char *input)
{
    json_t *list = adapter_mock_turn(prefix, input);
    assert_non_null(list);
    assert_true(json_is_array(list));
    return list;
}

/* ---- conversion tests ---------------------------------------------------- */

static void test_user_message(void **state)
{
    json_t *list = adapter_mock_user_message("mock_3", "hello there");
    (void)state;
    assert_non_null(list);
    assert_int_equal(json_array_size(list), 2);
    check_item(conv_at(list, 0), "item.started", "mock_3_user", "message", "user", "in_progress");
    check_single_text(conv_at(list, 0), "hello there");
    check_item(conv_at(list, 1), "item.completed", "mock_3_user", "message", "user", "completed");
    check_single_text(conv_at(list, 1), "hello there");
    json_decref(list);
}

static void test_empty_input(void **state)
{
    json_t *list;
    (void)state;
    list = turn("mock_1", "");
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    list = turn("mock_1", " \t\r\n ");
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

static void test_help(void **state)
{
    json_t *list = turn("mock_1", "help");
    (void)state;
    assert_int_equal(json_array_size(list), 2);
    check_assistant_pair(list, 0, "mock_1_help",
                         "Mock agent commands:\n"
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
                         "Any other text will be echoed as an assistant message.");
    json_decref(list);
    /* The command word is case-insensitive and extra words are ignored. */
    list = turn("mock_2", "  HeLp me please ");
    assert_int_equal(json_array_size(list), 2);
    check_item(conv_at(list, 0), "item.started", "mock_2_help", "message", "assistant",
               "in_progress");
    json_decref(list);
}

static size_t check_marker(const json_t *list, size_t at, const char *prefix, unsigned n,
                           const char *text)
{
    char id[64];
    snprintf(id, sizeof id, "%s_marker_%u", prefix, n);
    check_assistant_pair(list, at, id, text);
    return at + 2;
}

static void test_demo(void **state)
{
    const char *p = "mock_7";
    json_t *list = turn(p, "demo");
    size_t at = 0;
    char id[64];
    (void)state;
    /* 10 markers (20) + system 2 + rich 4 + status 2 + markdown 10 + tool 4
     * + image 2 + unknown 2 + permissions 2 + questions 2 + error 2. */
    assert_int_equal(json_array_size(list), 52);
    at = check_marker(list, at, p, 1, "Next: system message (system role).");
    snprintf(id, sizeof id, "%s_system", p);
    check_item(conv_at(list, at), "item.started", id, "system", "system", "in_progress");
    check_single_text(conv_at(list, at), "System ready for mock events.");
    check_item(conv_at(list, at + 1), "item.completed", id, "system", "system", "completed");
    check_single_text(conv_at(list, at + 1), "System ready for mock events.");
    at += 2;
    at = check_marker(list, at, p, 2,
                      "Next: assistant message with deltas, reasoning, and JSON content parts.");
    at = check_rich(list, at, p);
    at = check_marker(list, at, p, 3, "Next: status item updates.");
    at = check_status(list, at, p);
    at = check_marker(list, at, p, 4, "Next: markdown rendering + streaming markdown deltas.");
    at = check_markdown(list, at, p);
    at = check_marker(list, at, p, 5, "Next: tool call item.");
    at = check_tool(list, at, p);
    at = check_marker(list, at, p, 6, "Next: image output content part.");
    at = check_image(list, at, p);
    at = check_marker(list, at, p, 7, "Next: unknown item kind.");
    at = check_unknown(list, at, p);
    at = check_marker(list, at, p, 8, "Next: permission requests (pending).");
    at = check_permissions(list, at, p);
    at = check_marker(list, at, p, 9, "Next: question requests (pending).");
    at = check_questions(list, at, p);
    at = check_marker(list, at, p, 10, "Next: error and agent.unparsed events.");
    at = check_error(list, at);
    assert_int_equal(at, 52);
    json_decref(list);
}

static void test_markdown(void **state)
{
    json_t *list = turn("mock_2", "markdown");
    (void)state;
    assert_int_equal(json_array_size(list), 10);
    assert_int_equal(check_markdown(list, 0, "mock_2"), 10);
    json_decref(list);
}

static void test_tool(void **state)
{
    const char *const words[] = {"tool", "tools", "TOOLING", "Tool extra words"};
    (void)state;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        json_t *list = turn("mock_4", words[i]);
        assert_int_equal(json_array_size(list), 4);
        assert_int_equal(check_tool(list, 0, "mock_4"), 4);
        json_decref(list);
    }
}

static void test_status(void **state)
{
    json_t *list = turn("mock_1", "status");
    (void)state;
    assert_int_equal(json_array_size(list), 2);
    check_status(list, 0, "mock_1");
    json_decref(list);
}

static void test_image(void **state)
{
    json_t *list = turn("mock_9", "image");
    (void)state;
    assert_int_equal(json_array_size(list), 2);
    check_image(list, 0, "mock_9");
    json_decref(list);
}

static void test_unknown(void **state)
{
    json_t *list = turn("mock_1", "unknown");
    (void)state;
    assert_int_equal(json_array_size(list), 2);
    check_unknown(list, 0, "mock_1");
    json_decref(list);
}

static void test_permissions(void **state)
{
    const char *const words[] = {"permission", "permissions", "PERMISSION now"};
    (void)state;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        json_t *list = turn("mock_5", words[i]);
        assert_int_equal(json_array_size(list), 2);
        check_permissions(list, 0, "mock_5");
        json_decref(list);
    }
}

static void test_questions(void **state)
{
    const char *const words[] = {"question", "questions"};
    (void)state;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        json_t *list = turn("mock_6", words[i]);
        assert_int_equal(json_array_size(list), 2);
        check_questions(list, 0, "mock_6");
        json_decref(list);
    }
}

static void test_error(void **state)
{
    json_t *list = turn("mock_1", "error");
    (void)state;
    assert_int_equal(json_array_size(list), 2);
    check_error(list, 0);
    json_decref(list);
}

static void test_unparsed(void **state)
{
    json_t *list = turn("mock_1", "unparsed");
    (void)state;
    assert_int_equal(json_array_size(list), 1);
    check_unparsed(conv_at(list, 0));
    json_decref(list);
}

static void test_end(void **state)
{
    const char *const words[] = {"end", "ended", "session.end", "END"};
    (void)state;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        json_t *list = turn("mock_1", words[i]);
        const json_t *c, *d, *v;
        assert_int_equal(json_array_size(list), 1);
        c = conv_at(list, 0);
        assert_string_equal(str_at(c, "type"), "session.ended");
        assert_true(is_synthetic(c));
        assert_string_equal(str_at(c, "source"), "daemon");
        d = data_of(c);
        assert_string_equal(str_at(d, "reason"), "completed");
        assert_string_equal(str_at(d, "terminated_by"), "agent");
        v = json_object_get(d, "message");
        assert_true(v == NULL || json_is_null(v));
        v = json_object_get(d, "exit_code");
        assert_true(v == NULL || json_is_null(v));
        json_decref(list);
    }
}

static void test_echo(void **state)
{
    json_t *list;
    (void)state;
    list = turn("mock_3", "echo   hello \t  big   world  ");
    assert_int_equal(json_array_size(list), 2);
    check_assistant_pair(list, 0, "mock_3_echo", "hello big world");
    json_decref(list);

    list = turn("mock_3", "echo");
    assert_int_equal(json_array_size(list), 2);
    check_assistant_pair(list, 0, "mock_3_echo", "Tell me what to say after `echo`.");
    json_decref(list);

    list = turn("mock_3", "  ECHO   ");
    check_assistant_pair(list, 0, "mock_3_echo", "Tell me what to say after `echo`.");
    json_decref(list);

    list = turn("mock_8", "say Hi\nthere");
    assert_int_equal(json_array_size(list), 2);
    check_assistant_pair(list, 0, "mock_8_echo", "Hi there");
    json_decref(list);

    list = turn("mock_8", "say");
    check_assistant_pair(list, 0, "mock_8_echo", "Tell me what to say after `echo`.");
    json_decref(list);
}

static void test_special_prompts(void **state)
{
    json_t *list;
    (void)state;
    list = turn("mock_1", "Reply with exactly the single word OK.");
    assert_int_equal(json_array_size(list), 2);
    check_assistant_pair(list, 0, "mock_1_ok", "OK");
    json_decref(list);

    list = turn("mock_1", "  reply WITH exactly the single word ok.\n");
    assert_int_equal(json_array_size(list), 2);
    check_assistant_pair(list, 0, "mock_1_ok", "OK");
    json_decref(list);

    list = turn("mock_2", "Reply with exactly the word FIRST.");
    check_assistant_pair(list, 0, "mock_2_first", "FIRST");
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);

    list = turn("mock_3", "REPLY WITH EXACTLY THE WORD SECOND.");
    check_assistant_pair(list, 0, "mock_3_second", "SECOND");
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);

    list = turn("mock_4", "Answer briefly and include your reasoning.");
    assert_int_equal(json_array_size(list), 4);
    check_rich(list, 0, "mock_4");
    json_decref(list);

    list = turn("mock_5", "provide a short status update.");
    assert_int_equal(json_array_size(list), 2);
    check_status(list, 0, "mock_5");
    json_decref(list);

    list = turn("mock_6", "List files in the current directory using available tools.");
    assert_int_equal(json_array_size(list), 1);
    check_permission(conv_at(list, 0), "mock_6_permission", "command_execution",
                     "{\"codexRequestKind\":\"commandExecution\",\"command\":\"ls\"}");
    json_decref(list);

    list = turn("mock_7", "Use the bash tool to run `ls` in the current directory. Do not "
                          "answer without using the tool.");
    assert_int_equal(json_array_size(list), 5);
    check_permission(conv_at(list, 0), "mock_7_permission", "command_execution",
                     "{\"codexRequestKind\":\"commandExecution\",\"command\":\"ls\"}");
    check_tool(list, 1, "mock_7");
    json_decref(list);

    list = turn("mock_8", "Use the AskUserQuestion tool to ask exactly one yes/no question, "
                          "then wait for a reply. Do not answer yourself.");
    assert_int_equal(json_array_size(list), 1);
    check_question(conv_at(list, 0), "mock_8_question", "Proceed?", "[\"Yes\",\"No\"]");
    json_decref(list);

    list = turn("mock_9", "call the askuserquestion tool with exactly one yes/no question and "
                          "wait for a reply. do not answer yourself.");
    assert_int_equal(json_array_size(list), 1);
    check_question(conv_at(list, 0), "mock_9_question", "Proceed?", "[\"Yes\",\"No\"]");
    json_decref(list);

    /* Almost a special prompt: echoed as a reply. */
    list = turn("mock_1", "Reply with exactly the single word OK");
    check_assistant_pair(list, 0, "mock_1_reply", "Reply with exactly the single word OK");
    json_decref(list);
}

static void test_other_text_echoed(void **state)
{
    json_t *list;
    (void)state;
    list = turn("mock_12", "  Hello,   mock agent!\n");
    assert_int_equal(json_array_size(list), 2);
    /* The whole trimmed text, inner whitespace kept. */
    check_assistant_pair(list, 0, "mock_12_reply", "Hello,   mock agent!");
    json_decref(list);

    list = turn("mock_1", "helpme");
    check_assistant_pair(list, 0, "mock_1_reply", "helpme");
    json_decref(list);

    list = turn("mock_1", "averyveryverylongfirstwordthatisnotacommand tail");
    check_assistant_pair(list, 0, "mock_1_reply",
                         "averyveryverylongfirstwordthatisnotacommand tail");
    json_decref(list);
}


/* Every conversion the mock can produce fits its event type: the canonical
 * serializer accepts it. */
static void test_all_conversions_serialize(void **state)
{
    static const char *const inputs[] = {
        "help", "demo", "markdown", "tool", "status", "image", "unknown", "permission",
        "question", "error", "unparsed", "end", "echo hi", "echo", "anything else",
        "Reply with exactly the single word OK.",
        "Use the bash tool to run `ls` in the current directory. Do not answer without using "
        "the tool.",
        "Use the AskUserQuestion tool to ask exactly one yes/no question, then wait for a "
        "reply. Do not answer yourself.",
        "Answer briefly and include your reasoning."};
    size_t total = 0;
    (void)state;
    for (size_t i = 0; i <= sizeof inputs / sizeof inputs[0]; i++) {
        json_t *list = i < sizeof inputs / sizeof inputs[0]
                           ? turn("mock_1", inputs[i])
                           : adapter_mock_user_message("mock_1", "hello");
        for (size_t k = 0; k < json_array_size(list); k++) {
            const json_t *c = conv_at(list, k);
            size_t len = 0;
            char *text = event_serialize(
                (uint64_t)k + 1, "2026-01-01T00:00:00.000000Z", "s", "mock-s", is_synthetic(c),
                str_at(c, "source"), str_at(c, "type"), json_object_get(c, "data"), &len);
            if (!text)
                fail_msg("input %zu conversion %zu (%s) does not serialize", i, k,
                         str_at(c, "type"));
            assert_int_equal(strlen(text), len);
            free(text);
            total++;
        }
        json_decref(list);
    }
    assert_true(total > 52);
}

/* The canonical text of two representative events, as the anchor prints them. */
static void test_serialized_text(void **state)
{
    json_t *list = turn("mock_1", "tool");
    const json_t *c = conv_at(list, 3);
    char *text;
    (void)state;
    text = event_serialize(9, "T", "s", "mock-s", 0, "agent", "item.completed",
                           json_object_get(c, "data"), NULL);
    assert_non_null(text);
    assert_string_equal(
        text,
        "{\"event_id\":\"evt_9\",\"sequence\":9,\"time\":\"T\",\"session_id\":\"s\","
        "\"native_session_id\":\"mock-s\",\"synthetic\":false,\"source\":\"agent\","
        "\"type\":\"item.completed\",\"data\":{\"item\":{\"item_id\":\"\","
        "\"native_item_id\":\"mock_1_tool_result\",\"parent_id\":null,\"kind\":\"tool_result\","
        "\"role\":\"tool\",\"content\":[{\"type\":\"tool_result\",\"call_id\":\"mock_1_call\","
        "\"output\":\"mock search results\"},{\"type\":\"file_ref\",\"path\":\"mock_1/readme.md\","
        "\"action\":\"read\",\"diff\":null},{\"type\":\"file_ref\",\"path\":\"mock_1/output.txt\","
        "\"action\":\"write\",\"diff\":\"+mock output\\n\"},{\"type\":\"file_ref\","
        "\"path\":\"mock_1/patch.txt\",\"action\":\"patch\","
        "\"diff\":\"@@ -1,1 +1,1 @@\\n-old\\n+new\\n\"}],\"status\":\"failed\"}},\"raw\":null}");
    free(text);
    json_decref(list);

    list = turn("mock_2", "error");
    c = conv_at(list, 0);
    text = event_serialize(3, "T", "s", NULL, 1, "daemon", "error", json_object_get(c, "data"),
                           NULL);
    assert_non_null(text);
    assert_string_equal(text, "{\"event_id\":\"evt_3\",\"sequence\":3,\"time\":\"T\","
                              "\"session_id\":\"s\",\"native_session_id\":null,"
                              "\"synthetic\":true,\"source\":\"daemon\",\"type\":\"error\","
                              "\"data\":{\"message\":\"Mock error event.\",\"code\":\"mock_error\","
                              "\"details\":{\"mock\":true}},\"raw\":null}");
    free(text);
    json_decref(list);
}

/* ---- modes --------------------------------------------------------------- */

static void test_resolve_modes(void **state)
{
    char am[32], pm[32];
    struct err e;
    (void)state;

    assert_int_equal(adapter_modes_resolve(adapter_mock.mode_rule, NULL, NULL, am, pm, &e), 0);
    assert_string_equal(am, "build");
    assert_string_equal(pm, "default");

    assert_int_equal(adapter_modes_resolve(adapter_mock.mode_rule,
                                           "plan", "bypass", am, pm, &e), 0);
    assert_string_equal(am, "plan");
    assert_string_equal(pm, "bypass");

    assert_int_equal(adapter_modes_resolve(adapter_mock.mode_rule, "build", "plan", am, pm, &e), 0);
    assert_string_equal(am, "build");
    assert_string_equal(pm, "plan");

    err_clear(&e);
    assert_int_equal(adapter_modes_resolve(adapter_mock.mode_rule, "custom", NULL, am, pm, &e),
                     ERR_MODE_NOT_SUPPORTED);
    assert_int_equal(e.code, ERR_MODE_NOT_SUPPORTED);
    assert_string_equal(e.msg, "mode not supported: mock custom");
    assert_string_equal(e.subject, "mock");

    err_clear(&e);
    assert_int_equal(adapter_modes_resolve(adapter_mock.mode_rule, "Build", NULL, am, pm, &e),
                     ERR_MODE_NOT_SUPPORTED);
    assert_string_equal(e.msg, "mode not supported: mock Build");

    err_clear(&e);
    assert_int_equal(adapter_modes_resolve(adapter_mock.mode_rule, NULL, "acceptEdits", am, pm, &e),
                     ERR_MODE_NOT_SUPPORTED);
    assert_string_equal(e.msg, "mode not supported: mock acceptEdits");
    assert_string_equal(e.subject, "mock");

    err_clear(&e);
    assert_int_equal(adapter_modes_resolve(adapter_mock.mode_rule,
                                           NULL, "yolo", am, pm, &e), ERR_INVALID);
    assert_int_equal(e.code, ERR_INVALID);
    /* Like every ERR_INVALID message in the server, it reads as the anchor's
     * "invalid request: <message>" detail. */
    assert_string_equal(e.msg, "invalid request: invalid permission mode: yolo");

    /* The agent mode is checked first. */
    err_clear(&e);
    assert_int_equal(adapter_modes_resolve(adapter_mock.mode_rule, "x", "yolo", am, pm, &e),
                     ERR_MODE_NOT_SUPPORTED);
}

static void test_adapter_record(void **state)
{
    (void)state;
    assert_string_equal(adapter_mock.name, "mock");
    assert_int_equal(adapter_mock.n_modes, 2);
    assert_string_equal(adapter_mock.modes[0].id, "build");
    assert_string_equal(adapter_mock.modes[0].name, "Build");
    assert_string_equal(adapter_mock.modes[0].description, "Mock agent for UI testing");
    assert_string_equal(adapter_mock.modes[1].id, "plan");
    assert_string_equal(adapter_mock.modes[1].name, "Plan");
    assert_string_equal(adapter_mock.modes[1].description, "Plan-only mock mode");
    assert_true(adapter_mock.caps.plan_mode && adapter_mock.caps.permissions &&
                adapter_mock.caps.questions && adapter_mock.caps.tool_calls &&
                adapter_mock.caps.tool_results && adapter_mock.caps.text_messages &&
                adapter_mock.caps.images && adapter_mock.caps.file_attachments &&
                adapter_mock.caps.session_lifecycle && adapter_mock.caps.error_events &&
                adapter_mock.caps.reasoning && adapter_mock.caps.status &&
                adapter_mock.caps.command_execution && adapter_mock.caps.file_changes &&
                adapter_mock.caps.mcp_tools && adapter_mock.caps.streaming_deltas &&
                adapter_mock.caps.item_started);
    assert_false(adapter_mock.caps.shared_process);
    assert_int_equal(adapter_mock.can_resume, 0);
    assert_null(adapter_mock.reply_permission);
    assert_null(adapter_mock.reply_question);
    assert_null(adapter_mock.reject_question);
    /* Both stop the pacing. */
    assert_non_null(adapter_mock.terminate);
    assert_non_null(adapter_mock.shutdown);
    assert_non_null(adapter_mock.free_state);
}

/* ---- the adapter against a recording host -------------------------------- */

/* What the host saw.  emit and save_state are called on this thread;
 * emit_async on the supervisor loop, hence the lock. */
struct recorder {
    char saved[64];
    int save_calls;
    json_t *emitted;      /* copy of the last emit() */
    int emit_calls;
    char order[16];       /* 's', 'e' in call order */
    pthread_mutex_t lock; /* guards the paced fields below */
    pthread_cond_t paced_more;
    json_t *paced;        /* every conversion emit_async() was given, in order */
    int paced_calls;
    size_t paced_max;     /* the most conversions one call carried */
    struct timespec first, last; /* when the first and last came */
};

static struct recorder rec = { .lock = PTHREAD_MUTEX_INITIALIZER,
                               .paced_more = PTHREAD_COND_INITIALIZER };
static supervisor_t *sup;

static void rec_mark(char c)
{
    size_t n = strlen(rec.order);
    if (n + 1 < sizeof rec.order) {
        rec.order[n] = c;
        rec.order[n + 1] = '\0';
    }
}

static int rec_emit(struct adapter_ctx *ctx, const json_t *conversions, struct err *err)
{
    (void)ctx;
    (void)err;
    json_decref(rec.emitted);
    rec.emitted = json_deep_copy(conversions);
    rec.emit_calls++;
    rec_mark('e');
    return 0;
}

static int rec_emit_async(struct adapter_ctx *ctx, const json_t *conversions, struct err *err)
{
    (void)ctx;
    (void)err;
    pthread_mutex_lock(&rec.lock);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (rec.paced_calls++ == 0)
        rec.first = now;
    rec.last = now;
    if (json_array_size(conversions) > rec.paced_max)
        rec.paced_max = json_array_size(conversions);
    if (!rec.paced)
        rec.paced = json_array();
    json_t *copy = json_deep_copy(conversions);
    if (json_array_extend(rec.paced, copy) != 0)
        abort();
    json_decref(copy);
    pthread_cond_broadcast(&rec.paced_more);
    pthread_mutex_unlock(&rec.lock);
    return 0;
}

static int rec_save_state(struct adapter_ctx *ctx, const char *state_json, struct err *err)
{
    (void)ctx;
    (void)err;
    snprintf(rec.saved, sizeof rec.saved, "%s", state_json);
    rec.save_calls++;
    rec_mark('s');
    return 0;
}

static int fail_emit(struct adapter_ctx *ctx, const json_t *conversions, struct err *err)
{
    (void)ctx;
    (void)conversions;
    rec.emit_calls++;
    return err_set(err, ERR_STORAGE, "disk full");
}

static const struct adapter_host rec_host = {
    .emit = rec_emit, .emit_async = rec_emit_async, .save_state = rec_save_state};
static const struct adapter_host failing_host = {
    .emit = fail_emit, .emit_async = rec_emit_async, .save_state = rec_save_state};

static void rec_reset(void)
{
    json_decref(rec.emitted);
    rec.emitted = NULL;
    rec.emit_calls = rec.save_calls = 0;
    rec.saved[0] = rec.order[0] = '\0';
    pthread_mutex_lock(&rec.lock);
    json_decref(rec.paced);
    rec.paced = NULL;
    rec.paced_calls = 0;
    rec.paced_max = 0;
    pthread_mutex_unlock(&rec.lock);
}

/* Waits (at most 10 s) until emit_async has been given `n` conversions in
 * all; then they are in rec.paced. */
static void rec_wait_paced(size_t n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&rec.lock);
    while (json_array_size(rec.paced) < n)
        if (pthread_cond_timedwait(&rec.paced_more, &rec.lock, &deadline) != 0)
            break;
    size_t got = json_array_size(rec.paced);
    pthread_mutex_unlock(&rec.lock);
    assert_int_equal(got, n);
}

static double rec_paced_span_ms(void)
{
    return (double)(rec.last.tv_sec - rec.first.tv_sec) * 1e3 +
           (double)(rec.last.tv_nsec - rec.first.tv_nsec) / 1e6;
}

/* The mock's instance in this test "server": its delay is the pause
 * between paced conversions. */
static void *mock_instance;

static int instance_setup(void **state)
{
    (void)state; /* the instance is file-wide */
    const struct adapter_settings settings = { .mock_delay_ms = 7 };
    struct err err;
    if (supervisor_start(&sup, &err) != 0)
        return -1;
    return adapter_mock.instance_new(&settings, &mock_instance, &err);
}

static int instance_teardown(void **state)
{
    (void)state; /* the instance is file-wide */
    supervisor_stop(sup);
    adapter_mock.instance_free(mock_instance);
    rec_reset();
    return 0;
}

static void ctx_init(struct adapter_ctx *ctx, const struct adapter_host *host,
                     const char *saved_state)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->host = host;
    ctx->supervisor = sup;
    ctx->session_id = "s1";
    ctx->agent_mode = "build";
    ctx->permission_mode = "default";
    ctx->saved_state = saved_state;
    ctx->instance = mock_instance;
}

static void shutdown_on_loop(uv_loop_t *loop, void *arg)
{
    (void)loop; /* the adapter reaches its timer through the context */
    adapter_mock.shutdown(arg);
}

/* The server's order: shutdown on the loop (the pacing stops), then free. */
static void ctx_done(struct adapter_ctx *ctx)
{
    struct err e;
    assert_int_equal(supervisor_call(sup, shutdown_on_loop, ctx, &e), 0);
    adapter_mock.free_state(ctx);
    assert_null(ctx->state);
}

static void test_start_session(void **state)
{
    struct adapter_ctx ctx;
    char native[128] = "junk";
    struct err e;
    (void)state;
    ctx_init(&ctx, &rec_host, NULL);
    ctx.session_id = "my-session";
    assert_int_equal(adapter_mock.start_session(&ctx, native, &e), 0);
    assert_string_equal(native, "mock-my-session");
    adapter_mock.free_state(&ctx);
    assert_null(ctx.state);
}

static void test_send_message_flow(void **state)
{
    struct adapter_ctx ctx;
    char native[128];
    struct err e;
    (void)state;
    rec_reset();
    ctx_init(&ctx, &rec_host, NULL);
    assert_int_equal(adapter_mock.start_session(&ctx, native, &e), 0);

    assert_int_equal(adapter_mock.send_message(&ctx, "  echo hi  ", &e), 0);
    assert_string_equal(rec.order, "se");
    assert_string_equal(rec.saved, "{\"turns\":1}");
    assert_int_equal(json_array_size(rec.emitted), 2);
    check_item(conv_at(rec.emitted, 0), "item.started", "mock_1_user", "message", "user",
               "in_progress");
    check_single_text(conv_at(rec.emitted, 0), "echo hi");
    /* The reply comes on the loop, one conversion at a time, the instance's
     * delay (7 ms) apart. */
    rec_wait_paced(2);
    check_assistant_pair(rec.paced, 0, "mock_1_echo", "hi");
    assert_int_equal(rec.paced_calls, 2);
    assert_int_equal(rec.paced_max, 1);
    assert_true(rec_paced_span_ms() >= 7.0);

    /* An empty message uses up a turn number but emits nothing. */
    rec.order[0] = '\0';
    assert_int_equal(adapter_mock.send_message(&ctx, " \n ", &e), 0);
    assert_string_equal(rec.order, "");

    rec.order[0] = '\0';
    assert_int_equal(adapter_mock.send_message(&ctx, "status", &e), 0);
    assert_string_equal(rec.order, "se");
    assert_string_equal(rec.saved, "{\"turns\":3}");
    check_item(conv_at(rec.emitted, 1), "item.completed", "mock_3_user", "message", "user",
               "completed");
    rec_wait_paced(4);
    check_status(rec.paced, 2, "mock_3");

    ctx_done(&ctx);
    rec_reset();
}

static void test_send_message_restores_turns(void **state)
{
    struct adapter_ctx ctx;
    struct err e;
    (void)state;
    rec_reset();
    /* After a restart, start_session is not called: state comes from saved_state. */
    ctx_init(&ctx, &rec_host, "{\"turns\":41}");
    assert_int_equal(adapter_mock.send_message(&ctx, "permission", &e), 0);
    assert_string_equal(rec.saved, "{\"turns\":42}");
    check_item(conv_at(rec.emitted, 0), "item.started", "mock_42_user", "message", "user",
               "in_progress");
    rec_wait_paced(2);
    check_permissions(rec.paced, 0, "mock_42");
    ctx_done(&ctx);
    rec_reset();
}

static void test_send_message_emit_error(void **state)
{
    struct adapter_ctx ctx;
    struct err e;
    (void)state;
    rec_reset();
    ctx_init(&ctx, &failing_host, NULL);
    err_clear(&e);
    assert_int_equal(adapter_mock.send_message(&ctx, "hello", &e), ERR_STORAGE);
    assert_int_equal(e.code, ERR_STORAGE);
    assert_int_equal(rec.emit_calls, 1);
    /* The failed turn's number is reused by the next message, and nothing
     * of the failed turn is paced out ahead of it. */
    ctx.host = &rec_host;
    assert_int_equal(adapter_mock.send_message(&ctx, "hello", &e), 0);
    assert_string_equal(rec.saved, "{\"turns\":1}");
    check_item(conv_at(rec.emitted, 0), "item.started", "mock_1_user", "message", "user",
               "in_progress");
    rec_wait_paced(2);
    check_assistant_pair(rec.paced, 0, "mock_1_reply", "hello");
    ctx_done(&ctx);
    rec_reset();
}

/* A timer on the loop that shuts the session's pacing down when it fires:
 * the loop's own clock says when the conversions of a turn that should
 * have been dropped would have come. */
struct probe {
    struct adapter_ctx *ctx;
    supervisor_timer_t *timer;
    int fired;
};

static void probe_fire(void *arg)
{
    struct probe *pr = arg;
    adapter_mock.shutdown(pr->ctx);
    supervisor_timer_free(pr->timer);
    pthread_mutex_lock(&rec.lock);
    pr->fired = 1;
    pthread_cond_broadcast(&rec.paced_more);
    pthread_mutex_unlock(&rec.lock);
}

static void probe_arm(uv_loop_t *loop, void *arg)
{
    struct probe *pr = arg;
    struct err e;
    if (supervisor_timer_new(loop, probe_fire, pr, &pr->timer, &e) != 0 ||
        supervisor_timer_arm(pr->timer, 5 * 7, 0, &e) != 0)
        abort();
}

/* The mock's own session.ended ends its pacing: the turns behind it are
 * dropped, as the session layer dropped them before the pacing moved into
 * the mock.  Without that, the next turn's two conversions would come 7
 * and 14 ms after the end, before the probe fires at 35 ms. */
static void test_end_stops_pacing(void **state)
{
    struct adapter_ctx ctx;
    struct err e;
    (void)state;
    rec_reset();
    ctx_init(&ctx, &rec_host, NULL);
    assert_int_equal(adapter_mock.send_message(&ctx, "echo one", &e), 0);
    assert_int_equal(adapter_mock.send_message(&ctx, "end", &e), 0);
    assert_int_equal(adapter_mock.send_message(&ctx, "echo two", &e), 0);
    rec_wait_paced(3);
    check_assistant_pair(rec.paced, 0, "mock_1_echo", "one");
    assert_string_equal(json_string_value(json_object_get(conv_at(rec.paced, 2), "type")),
                        "session.ended");
    struct probe pr = { .ctx = &ctx };
    assert_int_equal(supervisor_call(sup, probe_arm, &pr, &e), 0);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&rec.lock);
    while (!pr.fired)
        if (pthread_cond_timedwait(&rec.paced_more, &rec.lock, &deadline) != 0)
            break;
    assert_true(pr.fired);
    assert_int_equal(json_array_size(rec.paced), 3);
    pthread_mutex_unlock(&rec.lock);
    adapter_mock.free_state(&ctx);
    rec_reset();
}

/* With no pause there is nothing to pace: the answer goes in the user's
 * message's batch, emitted and waited for before send_message returns, so
 * a client cannot queue answers faster than they commit.  After its own
 * session.ended the mock says nothing more. */
static void test_no_delay_answers_at_once(void **state)
{
    (void)state;
    const struct adapter_settings settings = { .mock_delay_ms = 0 };
    void *instant;
    struct err e;
    assert_int_equal(adapter_mock.instance_new(&settings, &instant, &e), 0);
    struct adapter_ctx ctx;
    rec_reset();
    ctx_init(&ctx, &rec_host, NULL);
    ctx.instance = instant;
    assert_int_equal(adapter_mock.send_message(&ctx, "echo hi", &e), 0);
    assert_string_equal(rec.order, "se");
    assert_int_equal(json_array_size(rec.emitted), 4);
    check_item(conv_at(rec.emitted, 0), "item.started", "mock_1_user", "message", "user",
               "in_progress");
    check_assistant_pair(rec.emitted, 2, "mock_1_echo", "hi");

    rec.order[0] = '\0';
    assert_int_equal(adapter_mock.send_message(&ctx, "end", &e), 0);
    assert_string_equal(rec.order, "se");
    assert_int_equal(json_array_size(rec.emitted), 3);
    assert_string_equal(str_at(conv_at(rec.emitted, 2), "type"), "session.ended");
    rec.order[0] = '\0';
    assert_int_equal(adapter_mock.send_message(&ctx, "echo after", &e), 0);
    assert_string_equal(rec.order, "se");
    assert_int_equal(json_array_size(rec.emitted), 2); /* the user's message only */
    assert_int_equal(rec.paced_calls, 0);
    ctx_done(&ctx);
    adapter_mock.instance_free(instant);
    rec_reset();
}

/* A client posting faster than the pauses let answers out is refused once
 * the pacer holds MOCK_PENDING_MAX (1024) conversions, instead of filling
 * memory: at 7 ms a conversion, 600 two-conversion answers posted at once
 * cannot all be let in. */
static void test_pending_answers_are_bounded(void **state)
{
    (void)state;
    struct adapter_ctx ctx;
    struct err e;
    rec_reset();
    ctx_init(&ctx, &rec_host, NULL);
    int accepted = 0, rc = 0;
    for (int i = 0; i < 600 && rc == 0; i++) {
        err_clear(&e);
        rc = adapter_mock.send_message(&ctx, "echo x", &e);
        if (rc == 0)
            accepted++;
    }
    assert_int_equal(rc, ERR_BUSY);
    assert_string_equal(e.subject, "s1");
    assert_non_null(strstr(e.msg, "retry"));
    assert_in_range(accepted, 400, 599);
    ctx_done(&ctx);
    rec_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_message),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_demo),
        cmocka_unit_test(test_markdown),
        cmocka_unit_test(test_tool),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_image),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_permissions),
        cmocka_unit_test(test_questions),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_unparsed),
        cmocka_unit_test(test_end),
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_special_prompts),
        cmocka_unit_test(test_other_text_echoed),
        cmocka_unit_test(test_all_conversions_serialize),
        cmocka_unit_test(test_serialized_text),
        cmocka_unit_test(test_resolve_modes),
        cmocka_unit_test(test_adapter_record),
        cmocka_unit_test(test_start_session),
        cmocka_unit_test(test_send_message_flow),
        cmocka_unit_test(test_send_message_restores_turns),
        cmocka_unit_test(test_send_message_emit_error),
        cmocka_unit_test(test_end_stops_pacing),
        cmocka_unit_test(test_no_delay_answers_at_once),
        cmocka_unit_test(test_pending_answers_are_bounded),
    };
    return cmocka_run_group_tests(tests, instance_setup, instance_teardown);
}
