/* Unit tests for the ACP adapter's pure part (adapters/acp_parse.c): the
 * handshake (initialize, session/new, session/load and its fallback), the
 * prompts one at a time, every session/update kind, permissions and their
 * options, the agent's fs / terminal / unknown requests, cancel, the turns
 * a dead process leaves, MCP servers in ACP's form, broken input, and every
 * prefix of every line these tests feed.  Every conversion is vetted by a
 * normalizer set up as an ACP session's is.  The recorded captures of the
 * real agents are tested beside these (tests/fixtures/<agent>/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "adapters/acp.h"
#include "base/err.h"
#include "events/event.h"
#include "events/normalize.h"
#include "fixtures.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every line fed to a parser below, for the prefix test. */
static const char *const acp_lines[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":1,\"agentCapabilities\":"
    "{\"loadSession\":false,\"promptCapabilities\":{\"image\":false}},\"authMethods\":[]}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":1,\"agentCapabilities\":"
    "{\"loadSession\":true}}}",
    "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"sessionId\":\"sess-1\",\"modes\":"
    "{\"currentModeId\":\"default\",\"availableModes\":[{\"id\":\"default\",\"name\":"
    "\"Default\"},{\"id\":\"plan\",\"name\":\"Plan\",\"description\":\"Read only\"}]}}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{\"sessionId\":\"sess-1\","
    "\"update\":{\"sessionUpdate\":\"agent_thought_chunk\",\"content\":{\"type\":\"text\","
    "\"text\":\"Thinking.\"}}}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{\"sessionId\":\"sess-1\","
    "\"update\":{\"sessionUpdate\":\"agent_message_chunk\",\"content\":{\"type\":\"text\","
    "\"text\":\"Hello\"}}}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{\"sessionId\":\"sess-1\","
    "\"update\":{\"sessionUpdate\":\"agent_message_chunk\",\"content\":{\"type\":\"text\","
    "\"text\":\", world\"}}}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{\"sessionId\":\"sess-1\","
    "\"update\":{\"sessionUpdate\":\"tool_call\",\"toolCallId\":\"call_1\",\"title\":"
    "\"Edit a.txt\",\"kind\":\"edit\",\"status\":\"pending\",\"locations\":[{\"path\":"
    "\"/w/a.txt\"}],\"rawInput\":{\"path\":\"/w/a.txt\"}}}}",
    "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"session/request_permission\",\"params\":"
    "{\"sessionId\":\"sess-1\",\"toolCall\":{\"toolCallId\":\"call_1\"},\"options\":["
    "{\"optionId\":\"yes\",\"name\":\"Allow\",\"kind\":\"allow_once\"},{\"optionId\":"
    "\"all\",\"name\":\"Always\",\"kind\":\"allow_always\"},{\"optionId\":\"no\",\"name\":"
    "\"Reject\",\"kind\":\"reject_once\"}]}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{\"sessionId\":\"sess-1\","
    "\"update\":{\"sessionUpdate\":\"tool_call_update\",\"toolCallId\":\"call_1\",\"status\":"
    "\"completed\",\"content\":[{\"type\":\"content\",\"content\":{\"type\":\"text\",\"text\":"
    "\"done\"}},{\"type\":\"diff\",\"path\":\"/w/a.txt\",\"oldText\":\"a\\n\",\"newText\":"
    "\"b\\n\"}]}}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{\"sessionId\":\"sess-1\","
    "\"update\":{\"sessionUpdate\":\"plan\",\"entries\":[{\"content\":\"Read\",\"priority\":"
    "\"high\",\"status\":\"completed\"},{\"content\":\"Write\",\"priority\":\"low\","
    "\"status\":\"pending\"}]}}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{\"sessionId\":\"sess-1\","
    "\"update\":{\"sessionUpdate\":\"current_mode_update\",\"currentModeId\":\"plan\"}}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{\"sessionId\":\"sess-1\","
    "\"update\":{\"sessionUpdate\":\"available_commands_update\",\"availableCommands\":[]}}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{\"sessionId\":\"other\","
    "\"update\":{\"sessionUpdate\":\"agent_message_chunk\",\"content\":{\"type\":\"text\","
    "\"text\":\"not ours\"}}}}",
    "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"stopReason\":\"end_turn\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"stopReason\":\"cancelled\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32603,\"message\":\"model down\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"auth required\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32002,\"message\":\"no such session\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"method\":\"fs/read_text_file\",\"params\":"
    "{\"sessionId\":\"sess-1\",\"path\":\"/w/a.txt\",\"line\":2,\"limit\":1}}",
    "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"fs/write_text_file\",\"params\":"
    "{\"sessionId\":\"nope\",\"path\":\"/w/a.txt\",\"content\":\"x\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"terminal/create\",\"params\":"
    "{\"sessionId\":\"sess-1\",\"command\":\"ls\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"x/unknown\",\"params\":{}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"x/notice\",\"params\":{}}",
    "{\"not\":\"json-rpc\"}",
    "[1,2]",
    "this is not JSON",
};

enum {
    L_INIT, L_INIT_LOAD, L_NEW, L_THOUGHT, L_CHUNK1, L_CHUNK2, L_TOOL, L_PERMISSION,
    L_TOOL_DONE, L_PLAN, L_MODE, L_COMMANDS, L_OTHER_SESSION, L_END_TURN, L_CANCELLED,
    L_PROMPT_ERROR, L_INIT_ERROR, L_OPEN_ERROR, L_READ, L_WRITE_OTHER, L_TERMINAL, L_UNKNOWN,
    L_NOTICE, L_NOT_RPC, L_ARRAY, L_GARBAGE, L_COUNT
};

struct run {
    adapter_acp_parser_t *p;
    normalize_t *n;
    json_t *conversions, *replies, *requests;
};

static void run_open_sync(struct run *r, const char *resume_id, const char *context,
                          int sync_after_load)
{
    struct normalize_config config = { .session_id = "s1", .agent_emits_item_started = 0,
                                       .agent_can_resume = 1,
                                       .assistant_message_ends_turn = 1 };
    r->n = normalize_new(&config);
    assert_non_null(r->n);
    json_t *mcp = json_pack("{s:{s:s,s:s,s:[s],s:{s:s}},s:{s:s,s:s,s:{s:s}},s:{s:s,s:s,s:b}}",
                            "files", "type", "local", "command", "mcp-files", "args", "--ro",
                            "env", "ROOT", "/w", "web", "type", "remote", "url",
                            "http://127.0.0.1:9/mcp", "headers", "X-A", "1", "off", "type",
                            "local", "command", "x", "enabled", 0);
    json_t *servers = adapter_acp_mcp_servers(mcp);
    assert_non_null(servers);
    struct adapter_acp_start start = { .session_id = "s1", .id_prefix = "p0", .cwd = "/w",
                                       .mcp_servers = servers, .resume_id = resume_id,
                                       .agent_mode = "build", .context = context,
                                       .sync_after_load = sync_after_load };
    r->p = adapter_acp_parser_new(&start);
    assert_non_null(r->p);
    json_decref(servers);
    json_decref(mcp);
    r->conversions = r->replies = r->requests = NULL;
}

static void run_open(struct run *r, const char *resume_id, const char *context)
{
    run_open_sync(r, resume_id, context, 0);
}

static void run_clear(struct run *r)
{
    json_decref(r->conversions);
    json_decref(r->replies);
    json_decref(r->requests);
    r->conversions = json_array();
    r->replies = json_array();
    r->requests = json_array();
    assert_non_null(r->conversions);
    assert_non_null(r->replies);
    assert_non_null(r->requests);
}

static void run_close(struct run *r)
{
    adapter_acp_parser_free(r->p);
    normalize_free(r->n);
    json_decref(r->conversions);
    json_decref(r->replies);
    json_decref(r->requests);
}

/* Feeds line `which`; its output replaces the last. */
static void feed(struct run *r, int which)
{
    run_clear(r);
    struct err err;
    const char *line = acp_lines[which];
    assert_int_equal(adapter_acp_parse_line(r->p, line, strlen(line), 0, r->conversions,
                                            r->replies, r->requests, &err),
                     0);
    fixtures_vet(r->n, r->conversions);
}

/* The user's message, as the session layer journals it and the driver
 * writes it: the pending assistant item first. */
static char *send(struct run *r, const char *text)
{
    json_t *start = normalize_pending_assistant_start(r->n);
    json_t *list = json_array();
    assert_int_equal(json_array_append_new(list, start), 0);
    fixtures_vet(r->n, list);
    json_decref(list);
    char *line = adapter_acp_prompt(r->p, text);
    assert_non_null(line);
    return line;
}

static json_t *reply(const struct run *r, size_t i)
{
    const char *text = json_string_value(json_array_get(r->replies, i));
    assert_non_null(text);
    assert_true(strlen(text) > 1 && text[strlen(text) - 1] == '\n');
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    return v;
}

static const char *conv_type(const struct run *r, size_t i)
{
    return json_string_value(json_object_get(json_array_get(r->conversions, i), "type"));
}

static const json_t *conv_item(const struct run *r, size_t i)
{
    return json_object_get(json_object_get(json_array_get(r->conversions, i), "data"), "item");
}

/* initialize, session/new, the first prompt. */
static void handshake(struct run *r, const char *text)
{
    char *line = send(r, text);
    json_t *init = json_loads(line, 0, NULL);
    free(line);
    assert_string_equal(json_string_value(json_object_get(init, "method")), "initialize");
    json_t *params = json_object_get(init, "params");
    assert_int_equal(json_integer_value(json_object_get(params, "protocolVersion")), 1);
    json_t *caps = json_object_get(params, "clientCapabilities");
    assert_true(json_is_true(json_object_get(json_object_get(caps, "fs"), "readTextFile")));
    assert_true(json_is_true(json_object_get(json_object_get(caps, "fs"), "writeTextFile")));
    assert_true(json_is_false(json_object_get(caps, "terminal")));
    json_decref(init);

    feed(r, L_INIT);
    assert_int_equal(json_array_size(r->replies), 1);
    json_t *open = reply(r, 0);
    assert_string_equal(json_string_value(json_object_get(open, "method")), "session/new");
    assert_string_equal(json_string_value(json_object_get(json_object_get(open, "params"),
                                                          "cwd")),
                        "/w");
    json_t *mcp = json_object_get(json_object_get(open, "params"), "mcpServers");
    char *dumped = json_dumps(mcp, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(dumped,
                        "[{\"args\":[\"--ro\"],\"command\":\"mcp-files\",\"env\":[{\"name\":"
                        "\"ROOT\",\"value\":\"/w\"}],\"name\":\"files\"},{\"headers\":[{\"name\":"
                        "\"X-A\",\"value\":\"1\"}],\"name\":\"web\",\"type\":\"http\",\"url\":"
                        "\"http://127.0.0.1:9/mcp\"}]");
    free(dumped);
    json_decref(open);

    feed(r, L_NEW);
    assert_string_equal(adapter_acp_session_id(r->p), "sess-1");
    assert_int_equal(json_array_size(r->replies), 1);
    json_t *prompt = reply(r, 0);
    assert_string_equal(json_string_value(json_object_get(prompt, "method")), "session/prompt");
    assert_int_equal(json_integer_value(json_object_get(prompt, "id")), 3);
    json_t *pp = json_object_get(prompt, "params");
    assert_string_equal(json_string_value(json_object_get(pp, "sessionId")), "sess-1");
    json_t *blocks = json_object_get(pp, "prompt");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(blocks, json_array_size(blocks) - 1), "text")),
                        text);
    json_decref(prompt);
}

static void test_turn(void **state)
{
    (void)state; /* every case makes its own parser */
    struct run r;
    run_open(&r, NULL, NULL);
    handshake(&r, "hi");
    json_t *modes = adapter_acp_modes(r.p);
    assert_int_equal(json_array_size(modes), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(modes, 1),
                                                          "description")),
                        "Read only");
    json_decref(modes);
    assert_string_equal(adapter_acp_current_mode(r.p), "default");

    feed(&r, L_THOUGHT);
    assert_int_equal(json_array_size(r.conversions), 0); /* a part of the final message */
    feed(&r, L_CHUNK1);
    assert_int_equal(json_array_size(r.conversions), 1);
    assert_string_equal(conv_type(&r, 0), "item.delta");
    json_t *c0 = json_array_get(r.conversions, 0);
    assert_string_equal(json_string_value(json_object_get(c0, "native_session_id")), "sess-1");
    assert_non_null(json_object_get(c0, "raw"));
    feed(&r, L_CHUNK2);
    feed(&r, L_TOOL);
    assert_int_equal(json_array_size(r.conversions), 1);
    const json_t *call = conv_item(&r, 0);
    assert_string_equal(json_string_value(json_object_get(call, "kind")), "tool_call");
    const json_t *part = json_array_get(json_object_get(call, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(part, "name")), "Edit a.txt");
    assert_string_equal(json_string_value(json_object_get(part, "arguments")),
                        "{\"path\":\"/w/a.txt\"}");
    feed(&r, L_TOOL_DONE);
    assert_int_equal(json_array_size(r.conversions), 1);
    const json_t *result = conv_item(&r, 0);
    assert_string_equal(json_string_value(json_object_get(result, "kind")), "tool_result");
    assert_string_equal(json_string_value(json_object_get(result, "native_item_id")),
                        "call_1_result");
    const json_t *content = json_object_get(result, "content");
    assert_int_equal(json_array_size(content), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 0), "output")),
                        "done");
    const json_t *file = json_array_get(content, 1);
    assert_string_equal(json_string_value(json_object_get(file, "type")), "file_ref");
    assert_string_equal(json_string_value(json_object_get(file, "action")), "patch");
    assert_string_equal(json_string_value(json_object_get(file, "diff")), "-a\n+b\n");
    feed(&r, L_PLAN);
    const json_t *plan = conv_item(&r, 0);
    assert_string_equal(json_string_value(json_object_get(plan, "kind")), "status");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(plan, "content"), 0), "detail")),
                        "[completed] Read\n[pending] Write");
    feed(&r, L_MODE);
    assert_string_equal(adapter_acp_current_mode(r.p), "plan");
    feed(&r, L_COMMANDS);
    assert_int_equal(json_array_size(r.conversions), 0);
    feed(&r, L_OTHER_SESSION);
    assert_int_equal(json_array_size(r.conversions), 0);
    feed(&r, L_NOTICE);
    assert_int_equal(json_array_size(r.conversions), 0);

    assert_int_equal(adapter_acp_open_turns(r.p), 1);
    feed(&r, L_END_TURN);
    assert_int_equal(json_array_size(r.conversions), 1);
    const json_t *msg = conv_item(&r, 0);
    assert_string_equal(json_string_value(json_object_get(msg, "status")), "completed");
    char *parts = json_dumps(json_object_get(msg, "content"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(parts, "[{\"text\":\"Thinking.\",\"type\":\"reasoning\",\"visibility\":"
                               "\"public\"},{\"text\":\"Hello, world\",\"type\":\"text\"}]");
    free(parts);
    assert_int_equal(adapter_acp_open_turns(r.p), 0);
    assert_int_equal(json_array_size(r.replies), 0);
    /* A response nobody waits for is not news. */
    feed(&r, L_END_TURN);
    assert_int_equal(json_array_size(r.conversions), 0);
    run_close(&r);
}

/* Messages wait for the handshake and for the running prompt. */
static void test_one_prompt_at_a_time(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, NULL, NULL);
    char *first = send(&r, "one");
    free(first);
    char *second = send(&r, "two");
    assert_string_equal(second, ""); /* waits */
    free(second);
    feed(&r, L_INIT);
    feed(&r, L_NEW);
    assert_int_equal(json_array_size(r.replies), 1); /* "one" only */
    assert_int_equal(adapter_acp_open_turns(r.p), 2);
    feed(&r, L_END_TURN);
    assert_int_equal(json_array_size(r.replies), 1);
    json_t *next = reply(&r, 0);
    assert_int_equal(json_integer_value(json_object_get(next, "id")), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(
                            json_object_get(json_object_get(next, "params"), "prompt"), 0),
                                                          "text")),
                        "two");
    json_decref(next);
    run_close(&r);
}

static void test_permission(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, NULL, NULL);
    handshake(&r, "edit");
    feed(&r, L_TOOL);
    feed(&r, L_PERMISSION);
    assert_int_equal(json_array_size(r.conversions), 1);
    assert_string_equal(conv_type(&r, 0), "permission.requested");
    json_t *data = json_object_get(json_array_get(r.conversions, 0), "data");
    assert_string_equal(json_string_value(json_object_get(data, "permission_id")), "p0-7");
    assert_string_equal(json_string_value(json_object_get(data, "action")), "Edit a.txt");
    assert_int_equal(json_array_size(json_object_get(json_object_get(data, "metadata"),
                                                     "options")),
                     3);
    struct err err;
    char *line = NULL;
    assert_int_equal(adapter_acp_permission_line(r.p, "p0-7", "maybe", &line, &err),
                     ERR_INVALID);
    assert_int_equal(adapter_acp_permission_line(r.p, "p0-8", "once", &line, &err),
                     ERR_NOT_FOUND);
    assert_int_equal(adapter_acp_permission_line(r.p, "p0-7", "always", &line, &err), 0);
    json_t *v = json_loads(line, 0, NULL);
    free(line);
    assert_int_equal(json_integer_value(json_object_get(v, "id")), 7);
    json_t *outcome = json_object_get(json_object_get(v, "result"), "outcome");
    assert_string_equal(json_string_value(json_object_get(outcome, "outcome")), "selected");
    assert_string_equal(json_string_value(json_object_get(outcome, "optionId")), "all");
    json_decref(v);
    /* Answered once. */
    assert_int_equal(adapter_acp_permission_line(r.p, "p0-7", "once", &line, &err),
                     ERR_NOT_FOUND);
    feed(&r, L_PERMISSION);
    assert_int_equal(adapter_acp_permission_line(r.p, "p0-7", "reject", &line, &err), 0);
    assert_non_null(strstr(line, "\"optionId\":\"no\""));
    free(line);
    feed(&r, L_PERMISSION);
    assert_int_equal(adapter_acp_permission_line(r.p, "p0-7", "once", &line, &err), 0);
    assert_non_null(strstr(line, "\"optionId\":\"yes\""));
    free(line);

    /* Pending when the turn is cancelled: answered "cancelled" with it. */
    feed(&r, L_PERMISSION);
    char *cancel = adapter_acp_cancel_line(r.p);
    assert_non_null(cancel);
    char *nl = strchr(cancel, '\n');
    assert_non_null(nl);
    assert_non_null(strstr(cancel, "\"outcome\":\"cancelled\""));
    assert_non_null(strstr(nl, "\"method\":\"session/cancel\""));
    free(cancel);
    feed(&r, L_CANCELLED);
    assert_string_equal(json_string_value(json_object_get(conv_item(&r, 0), "status")),
                        "failed");
    char *none = adapter_acp_cancel_line(r.p);
    assert_string_equal(none, "");
    free(none);
    run_close(&r);
}

/* Without a reject option, a rejection cancels; without any allow option,
 * an allow does too. */
static void test_permission_without_matching_option(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, NULL, NULL);
    handshake(&r, "x");
    static const char line[] =
        "{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"method\":\"session/request_permission\",\"params\":"
        "{\"sessionId\":\"sess-1\",\"toolCall\":{\"toolCallId\":\"c\",\"title\":\"Run\"},"
        "\"options\":[{\"optionId\":\"ok\",\"name\":\"Allow\",\"kind\":\"allow_always\"}]}}";
    run_clear(&r);
    struct err err;
    assert_int_equal(adapter_acp_parse_line(r.p, line, sizeof line - 1, 0, r.conversions,
                                            r.replies, r.requests, &err),
                     0);
    fixtures_vet(r.n, r.conversions);
    char *out = NULL;
    assert_int_equal(adapter_acp_permission_line(r.p, "p0-q", "once", &out, &err), 0);
    assert_non_null(strstr(out, "\"optionId\":\"ok\""));
    assert_non_null(strstr(out, "\"id\":\"q\""));
    free(out);
    run_clear(&r);
    assert_int_equal(adapter_acp_parse_line(r.p, line, sizeof line - 1, 0, r.conversions,
                                            r.replies, r.requests, &err),
                     0);
    assert_int_equal(adapter_acp_permission_line(r.p, "p0-q", "reject", &out, &err), 0);
    assert_non_null(strstr(out, "{\"outcome\":\"cancelled\"}"));
    free(out);
    run_close(&r);
}

static void test_agent_requests(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, NULL, NULL);
    handshake(&r, "x");
    feed(&r, L_READ);
    assert_int_equal(json_array_size(r.replies), 0);
    assert_int_equal(json_array_size(r.requests), 1);
    const json_t *req = json_array_get(r.requests, 0);
    assert_string_equal(json_string_value(json_object_get(req, "id")), "r1");
    assert_string_equal(json_string_value(json_object_get(req, "method")), "fs/read_text_file");
    feed(&r, L_WRITE_OTHER);
    assert_int_equal(json_array_size(r.requests), 0);
    json_t *v = reply(&r, 0);
    assert_int_equal(json_integer_value(json_object_get(v, "id")), 9);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "error"), "code")),
                     ADAPTER_ACP_INVALID_PARAMS);
    json_decref(v);
    int expect_refused[] = { L_TERMINAL, L_UNKNOWN };
    for (size_t i = 0; i < 2; i++) {
        feed(&r, expect_refused[i]);
        assert_int_equal(json_array_size(r.conversions), 0);
        v = reply(&r, 0);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "error"),
                                                            "code")),
                         ADAPTER_ACP_METHOD_NOT_FOUND);
        json_decref(v);
    }
    json_t *id = json_string("r1");
    char *ok = adapter_acp_result_line(id, NULL);
    json_decref(id);
    assert_string_equal(ok, "{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"result\":null}\n");
    free(ok);
    run_close(&r);
}

/* Resuming: session/load when the agent can; its replay is not journaled. */
static void test_load(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, "sess-1", "user: earlier\n");
    char *line = send(&r, "again");
    free(line);
    feed(&r, L_INIT_LOAD);
    assert_true(adapter_acp_can_load(r.p));
    json_t *load = reply(&r, 0);
    assert_string_equal(json_string_value(json_object_get(load, "method")), "session/load");
    assert_string_equal(json_string_value(json_object_get(json_object_get(load, "params"),
                                                          "sessionId")),
                        "sess-1");
    json_decref(load);
    feed(&r, L_CHUNK1); /* the replayed history */
    assert_int_equal(json_array_size(r.conversions), 0);
    static const char loaded[] = "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}";
    run_clear(&r);
    struct err err;
    assert_int_equal(adapter_acp_parse_line(r.p, loaded, sizeof loaded - 1, 0, r.conversions,
                                            r.replies, r.requests, &err),
                     0);
    assert_string_equal(adapter_acp_session_id(r.p), "sess-1");
    json_t *prompt = reply(&r, 0);
    json_t *blocks = json_object_get(json_object_get(prompt, "params"), "prompt");
    assert_int_equal(json_array_size(blocks), 1); /* no context: the agent has it */
    json_decref(prompt);
    run_close(&r);
}

/* Feeds `line` (a literal); its output replaces the last. */
static void feed_text(struct run *r, const char *line)
{
    run_clear(r);
    struct err err;
    assert_int_equal(adapter_acp_parse_line(r->p, line, strlen(line), 0, r->conversions,
                                            r->replies, r->requests, &err),
                     0);
    fixtures_vet(r->n, r->conversions);
}

/* An agent that goes on replaying after its session/load result (Gemini
 * CLI): the prompt waits for the answer to the sync request, and what
 * comes before that answer is history, not the turn. */
static void test_sync_after_load(void **state)
{
    (void)state;
    struct run r;
    run_open_sync(&r, "sess-1", NULL, 1);
    free(send(&r, "again"));
    feed(&r, L_INIT_LOAD);
    json_decref(reply(&r, 0)); /* session/load */
    feed_text(&r, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}");
    assert_int_equal(json_array_size(r.replies), 1);
    json_t *sync = reply(&r, 0);
    assert_string_equal(json_string_value(json_object_get(sync, "method")),
                        ADAPTER_ACP_SYNC_METHOD);
    assert_int_equal(json_integer_value(json_object_get(sync, "id")), 3);
    json_decref(sync);
    feed(&r, L_CHUNK1); /* more of the replayed history */
    assert_int_equal(json_array_size(r.conversions), 0);
    assert_int_equal(json_array_size(r.replies), 0);
    feed_text(&r, "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32601,\"message\":"
                  "\"Method not found\"}}");
    assert_int_equal(json_array_size(r.conversions), 0);
    json_t *prompt = reply(&r, 0);
    assert_string_equal(json_string_value(json_object_get(prompt, "method")), "session/prompt");
    json_decref(prompt);
    feed(&r, L_CHUNK1); /* the turn's own */
    assert_int_equal(json_array_size(r.conversions), 1);
    assert_string_equal(conv_type(&r, 0), "item.delta");
    run_close(&r);
}

/* A call the agent announces only in its permission request (Qwen Code,
 * Gemini CLI): the tool_call item its first update makes has the
 * request's title and rawInput, and the update's _meta.toolName. */
static void test_call_known_from_permission(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, NULL, NULL);
    handshake(&r, "run it");
    feed_text(&r, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"session/request_permission\","
                  "\"params\":{\"sessionId\":\"sess-1\",\"toolCall\":{\"toolCallId\":\"c9\","
                  "\"status\":\"pending\",\"title\":\"ls -l\",\"kind\":\"execute\","
                  "\"rawInput\":{\"command\":\"ls -l\"}},\"options\":[{\"optionId\":\"y\","
                  "\"name\":\"Allow\",\"kind\":\"allow_once\"}]}}");
    assert_int_equal(json_array_size(r.conversions), 1);
    assert_string_equal(conv_type(&r, 0), "permission.requested");
    feed_text(&r, "{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{\"sessionId\":"
                  "\"sess-1\",\"update\":{\"sessionUpdate\":\"tool_call_update\",\"toolCallId\":"
                  "\"c9\",\"status\":\"completed\",\"content\":[{\"type\":\"content\","
                  "\"content\":{\"type\":\"text\",\"text\":\"a.txt\"}}],"
                  "\"_meta\":{\"toolName\":\"run_shell_command\"}}}}");
    assert_int_equal(json_array_size(r.conversions), 2);
    const json_t *part = json_array_get(json_object_get(conv_item(&r, 0), "content"), 0);
    assert_string_equal(json_string_value(json_object_get(part, "name")), "run_shell_command");
    assert_string_equal(json_string_value(json_object_get(part, "arguments")),
                        "{\"command\":\"ls -l\"}");
    part = json_array_get(json_object_get(conv_item(&r, 1), "content"), 0);
    assert_string_equal(json_string_value(json_object_get(part, "output")), "a.txt");
    /* Without a tool name: the permission's title. */
    feed_text(&r, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"session/request_permission\","
                  "\"params\":{\"sessionId\":\"sess-1\",\"toolCall\":{\"toolCallId\":\"c10\","
                  "\"title\":\"echo hi\",\"kind\":\"execute\"},\"options\":[{\"optionId\":\"y\","
                  "\"name\":\"Allow\",\"kind\":\"allow_once\"}]}}");
    feed_text(&r, "{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{\"sessionId\":"
                  "\"sess-1\",\"update\":{\"sessionUpdate\":\"tool_call_update\",\"toolCallId\":"
                  "\"c10\",\"status\":\"in_progress\"}}}");
    assert_int_equal(json_array_size(r.conversions), 1);
    part = json_array_get(json_object_get(conv_item(&r, 0), "content"), 0);
    assert_string_equal(json_string_value(json_object_get(part, "name")), "echo hi");
    run_close(&r);
}

/* An agent that cannot load (or lost the session) gets a new one, and the
 * transcript as context with the first prompt, said in a status item. */
static void test_resume_without_load(void **state)
{
    (void)state;
    for (int lost = 0; lost < 2; lost++) {
        struct run r;
        run_open(&r, "sess-0", "user: earlier\n");
        char *line = send(&r, "again");
        free(line);
        feed(&r, lost ? L_INIT_LOAD : L_INIT);
        if (lost)
            feed(&r, L_OPEN_ERROR);
        json_t *open = reply(&r, 0);
        assert_string_equal(json_string_value(json_object_get(open, "method")), "session/new");
        json_decref(open);
        if (lost) { /* the failed load took id 2 */
            static const char created[] =
                "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"sessionId\":\"sess-1\"}}";
            run_clear(&r);
            struct err err;
            assert_int_equal(adapter_acp_parse_line(r.p, created, sizeof created - 1, 0,
                                                    r.conversions, r.replies, r.requests, &err),
                             0);
            fixtures_vet(r.n, r.conversions);
        } else {
            feed(&r, L_NEW);
        }
        assert_int_equal(json_array_size(r.conversions), 1);
        const json_t *status = conv_item(&r, 0);
        assert_string_equal(json_string_value(json_object_get(status, "kind")), "status");
        json_t *prompt = reply(&r, 0);
        json_t *blocks = json_object_get(json_object_get(prompt, "params"), "prompt");
        assert_int_equal(json_array_size(blocks), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(blocks, 0),
                                                              "text")),
                            "user: earlier\n");
        json_decref(prompt);
        run_close(&r);
    }
}

static void test_setup_and_prompt_errors(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, NULL, NULL);
    char *line = send(&r, "x");
    free(line);
    feed(&r, L_INIT_ERROR);
    assert_int_equal(json_array_size(r.conversions), 2);
    assert_string_equal(json_string_value(json_object_get(conv_item(&r, 0), "status")),
                        "failed");
    assert_string_equal(conv_type(&r, 1), "error");
    assert_int_equal(adapter_acp_open_turns(r.p), 0);
    run_close(&r);

    run_open(&r, NULL, NULL);
    handshake(&r, "x");
    feed(&r, L_PROMPT_ERROR);
    assert_int_equal(json_array_size(r.conversions), 2);
    assert_string_equal(json_string_value(json_object_get(conv_item(&r, 0), "status")),
                        "failed");
    assert_string_equal(conv_type(&r, 1), "error");
    run_close(&r);
}

/* What a dead process leaves: every open turn failed, permissions
 * withdrawn. */
static void test_close_turns(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, NULL, NULL);
    handshake(&r, "one");
    char *queued = send(&r, "two");
    free(queued);
    feed(&r, L_CHUNK1);
    feed(&r, L_PERMISSION);
    run_clear(&r);
    struct err err;
    assert_int_equal(adapter_acp_close_turns(r.p, r.conversions, &err), 0);
    assert_int_equal(json_array_size(r.conversions), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(conv_item(&r, 0), "content"), 0),
                            "text")),
                        "Hello");
    assert_string_equal(json_string_value(json_object_get(conv_item(&r, 1), "status")),
                        "failed");
    assert_string_equal(conv_type(&r, 2), "permission.resolved");
    assert_int_equal(adapter_acp_open_turns(r.p), 0);
    run_close(&r);
}

static void test_broken_lines(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, NULL, NULL);
    int broken[] = { L_NOT_RPC, L_ARRAY, L_GARBAGE };
    for (size_t i = 0; i < 3; i++) {
        feed(&r, broken[i]);
        assert_int_equal(json_array_size(r.conversions), 1);
        assert_string_equal(conv_type(&r, 0), "agent.unparsed");
    }
    run_clear(&r);
    struct err err;
    static const char nul[] = "{\"a\":\"\0\"}";
    assert_int_equal(adapter_acp_parse_line(r.p, nul, sizeof nul - 1, 0, r.conversions,
                                            r.replies, r.requests, &err),
                     0);
    assert_string_equal(conv_type(&r, 0), "agent.unparsed");
    run_clear(&r);
    assert_int_equal(adapter_acp_parse_line(r.p, "{\"jsonrpc\"", 10, 1, r.conversions,
                                            r.replies, r.requests, &err),
                     0);
    assert_string_equal(conv_type(&r, 0), "agent.unparsed");
    run_clear(&r);
    assert_int_equal(adapter_acp_parse_line(r.p, "  \r", 3, 0, r.conversions, r.replies,
                                            r.requests, &err),
                     0);
    assert_int_equal(json_array_size(r.conversions), 0);
    run_close(&r);
}

/* Every prefix of every line, cut or not, in every phase, parses without
 * an error. */
static void test_every_prefix(void **state)
{
    (void)state;
    for (int phase = 0; phase < 2; phase++) {
        struct run r;
        run_open(&r, NULL, NULL);
        if (phase)
            handshake(&r, "x");
        for (size_t l = 0; l < L_COUNT; l++) {
            size_t whole = strlen(acp_lines[l]);
            for (size_t n = 0; n <= whole; n++) {
                json_t *c = json_array(), *rep = json_array(), *req = json_array();
                struct err err;
                assert_int_equal(adapter_acp_parse_line(r.p, acp_lines[l], n, n < whole && n % 2,
                                                        c, rep, req, &err),
                                 0);
                json_decref(c);
                json_decref(rep);
                json_decref(req);
            }
        }
        run_close(&r);
    }
}

static void test_mcp_servers(void **state)
{
    (void)state;
    json_t *none = adapter_acp_mcp_servers(NULL);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    json_t *mcp = json_pack("{s:{s:s,s:[s,s],s:[s]},s:{s:s,s:s,s:s},s:{s:s},s:i}", "cmd",
                            "type", "local", "command", "node", "server.js", "args", "--x",
                            "sse", "type", "remote", "url", "http://127.0.0.1:1/sse",
                            "transport", "sse", "bad", "type", "remote", "num", 3);
    json_t *out = adapter_acp_mcp_servers(mcp);
    char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "[{\"args\":[\"server.js\",\"--x\"],\"command\":\"node\",\"env\":[],"
                           "\"name\":\"cmd\"},{\"headers\":[],\"name\":\"sse\",\"type\":\"sse\","
                           "\"url\":\"http://127.0.0.1:1/sse\"}]");
    free(s);
    json_decref(out);
    json_decref(mcp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_turn),
        cmocka_unit_test(test_one_prompt_at_a_time),
        cmocka_unit_test(test_permission),
        cmocka_unit_test(test_permission_without_matching_option),
        cmocka_unit_test(test_sync_after_load),
        cmocka_unit_test(test_call_known_from_permission),
        cmocka_unit_test(test_agent_requests),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_resume_without_load),
        cmocka_unit_test(test_setup_and_prompt_errors),
        cmocka_unit_test(test_close_turns),
        cmocka_unit_test(test_broken_lines),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_mcp_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
