/* Unit tests for the Claude Code adapter's pure part (adapters/claude.c):
 * recorded stdout transcripts of the real CLI (tests/fixtures/claude/<case>/
 * input.jsonl, from agent-notes) parsed line by line and compared with the
 * expected conversions and reply lines (expected.jsonl), every conversion
 * vetted by the normalizer; the stdin lines for replies; the plan-mode
 * guard; and broken input of every kind, which must become agent.unparsed
 * and never crash.
 *
 * SJ_UPDATE_FIXTURES=1 rewrites expected.jsonl from the current output (read
 * the diff before committing it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "adapters/claude.h"
#include "adapters/registry.h"
#include "base/err.h"
#include "events/event.h"
#include "fixtures.h"
#include "events/normalize.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

static normalize_t *claude_normalizer(void)
{
    struct normalize_config config = { .session_id = "s1", .agent_emits_item_started = 0,
                                       .agent_can_resume = 1,
                                       .assistant_message_ends_turn = 1 };
    normalize_t *n = normalize_new(&config);
    assert_non_null(n);
    return n;
}

/* Parses all lines of `input`; returns the output text (new). */
static char *run_case(const char *input, size_t len)
{
    adapter_claude_parser_t *p = adapter_claude_parser_new("s1", 0);
    normalize_t *n = claude_normalizer();
    assert_non_null(p);
    char *out = NULL;
    size_t out_len = 0;
    FILE *mem = open_memstream(&out, &out_len);
    assert_non_null(mem);
    const char *line = input, *end = input + len;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n_bytes = nl ? (size_t)(nl - line) : (size_t)(end - line);
        json_t *conversions = json_array(), *replies = json_array();
        struct err err;
        assert_int_equal(adapter_claude_parse_line(p, line, n_bytes, 0, conversions, replies,
                                                   &err),
                         0);
        /* A user turn starts the pending assistant item the way the session
         * layer does, so re-targeting is exercised too. */
        json_t *start = normalize_pending_assistant_start(n);
        assert_non_null(start);
        json_decref(start);
        fixtures_vet(n, conversions);
        fixtures_print_conversions(mem, "", conversions);
        size_t i;
        json_t *v;
        json_array_foreach(replies, i, v) {
            const char *r = json_string_value(v);
            assert_non_null(r);
            size_t rl = strlen(r);
            assert_true(rl > 1 && r[rl - 1] == '\n');
            assert_null(memchr(r, '\n', rl - 1)); /* one line */
            json_t *parsed = json_loadb(r, rl, 0, NULL);
            assert_non_null(parsed); /* only JSON ever reaches Claude's stdin */
            json_t *wrap = json_pack("{s:o}", "reply", parsed);
            char *s = json_dumps(wrap, JSON_COMPACT);
            fprintf(mem, "%s\n", s);
            free(s);
            json_decref(wrap);
        }
        json_decref(conversions);
        json_decref(replies);
        line = nl ? nl + 1 : end;
    }
    fclose(mem);
    normalize_free(n);
    adapter_claude_parser_free(p);
    return out;
}

/* ---- fixtures ------------------------------------------------------------ */

static void test_fixture(void **state)
{
    fixtures_check(*state, "input.jsonl", run_case);
}

/* Every prefix of every fixture line (the shapes a cut or broken line
 * takes) parses without an error or a crash. */
static void parse_prefix(void *parser, const char *line, size_t prefix, size_t whole)
{
    json_t *c = json_array(), *r = json_array();
    struct err err;
    assert_int_equal(adapter_claude_parse_line(parser, line, prefix, prefix < whole, c, r, &err),
                     0);
    json_decref(c);
    json_decref(r);
}

static void test_fixture_prefixes(void **state)
{
    adapter_claude_parser_t *p = adapter_claude_parser_new("s1", 0);
    assert_non_null(p);
    fixtures_each_prefix(*state, "input.jsonl", "", 7, 97, parse_prefix, p);
    adapter_claude_parser_free(p);
}

/* ---- targeted cases ------------------------------------------------------- */

static void parse1(adapter_claude_parser_t *p, const char *line, json_t **conv, json_t **replies)
{
    *conv = json_array();
    *replies = json_array();
    struct err err;
    assert_int_equal(adapter_claude_parse_line(p, line, strlen(line), 0, *conv, *replies, &err),
                     0);
}

static const char *type_of(const json_t *c)
{
    return json_string_value(json_object_get(c, "type"));
}

static const char CAN_USE_BASH[] =
    "{\"type\":\"control_request\",\"request_id\":\"req-1\",\"request\":{\"subtype\":"
    "\"can_use_tool\",\"tool_name\":\"Bash\",\"input\":{\"command\":\"echo hi > out.txt\"},"
    "\"permission_suggestions\":[{\"type\":\"addRules\",\"rules\":[{\"toolName\":\"Bash\","
    "\"ruleContent\":\"echo hi *\"}],\"behavior\":\"allow\",\"destination\":\"localSettings\"}],"
    "\"blocked_path\":\"/w/out.txt\",\"tool_use_id\":\"toolu_1\"}}";

static json_t *reply_json(const char *line)
{
    size_t n = strlen(line);
    assert_true(n > 1 && line[n - 1] == '\n');
    json_t *v = json_loadb(line, n, 0, NULL);
    assert_non_null(v);
    return v;
}

static void test_permission_replies(void **state)
{
    (void)state;
    static const char *const replies[] = { "once", "always", "reject" };
    for (int k = 0; k < 3; k++) {
        adapter_claude_parser_t *p = adapter_claude_parser_new("s1", 0);
        json_t *conv, *rep;
        parse1(p, CAN_USE_BASH, &conv, &rep);
        assert_int_equal(json_array_size(conv), 1);
        assert_int_equal(json_array_size(rep), 0);
        const json_t *c = json_array_get(conv, 0);
        assert_string_equal(type_of(c), "permission.requested");
        const json_t *data = json_object_get(c, "data");
        assert_string_equal(json_string_value(json_object_get(data, "permission_id")), "req-1");
        assert_string_equal(json_string_value(json_object_get(data, "action")), "Bash");
        const json_t *md = json_object_get(data, "metadata");
        assert_string_equal(json_string_value(json_object_get(md, "toolName")), "Bash");
        assert_string_equal(json_string_value(json_object_get(md, "blockedPath")), "/w/out.txt");

        char *line = NULL;
        struct err err;
        assert_int_equal(adapter_claude_permission_line(p, "req-1", replies[k], &line, &err), 0);
        json_t *v = reply_json(line);
        const json_t *resp = json_object_get(v, "response");
        assert_string_equal(json_string_value(json_object_get(v, "type")), "control_response");
        assert_string_equal(json_string_value(json_object_get(resp, "subtype")), "success");
        assert_string_equal(json_string_value(json_object_get(resp, "request_id")), "req-1");
        const json_t *d = json_object_get(resp, "response");
        if (k < 2) {
            assert_string_equal(json_string_value(json_object_get(d, "behavior")), "allow");
            /* allow must carry updatedInput: the request's input echoed */
            assert_string_equal(json_string_value(json_object_get(
                                    json_object_get(d, "updatedInput"), "command")),
                                "echo hi > out.txt");
            const json_t *perms = json_object_get(d, "updatedPermissions");
            if (k == 1) {
                assert_int_equal(json_array_size(perms), 1);
                assert_string_equal(json_string_value(json_object_get(json_array_get(perms, 0),
                                                                      "destination")),
                                    "session");
            } else {
                assert_null(perms);
            }
        } else {
            assert_string_equal(json_string_value(json_object_get(d, "behavior")), "deny");
            assert_non_null(json_string_value(json_object_get(d, "message")));
        }
        json_decref(v);
        free(line);
        /* Answered once: a second answer has nothing to go to. */
        assert_int_equal(adapter_claude_permission_line(p, "req-1", "once", &line, &err),
                         ERR_NOT_FOUND);
        assert_int_equal(adapter_claude_permission_line(p, "nope", "once", &line, &err),
                         ERR_NOT_FOUND);
        json_decref(conv);
        json_decref(rep);
        adapter_claude_parser_free(p);
    }
    adapter_claude_parser_t *p = adapter_claude_parser_new("s1", 0);
    json_t *conv, *rep;
    char *line;
    struct err err;
    parse1(p, CAN_USE_BASH, &conv, &rep);
    assert_int_equal(adapter_claude_permission_line(p, "req-1", "sometimes", &line, &err),
                     ERR_INVALID);
    /* A question id is not a permission. */
    assert_int_equal(adapter_claude_question_line(p, "req-1", NULL, &line, &err), ERR_NOT_FOUND);
    json_decref(conv);
    json_decref(rep);
    adapter_claude_parser_free(p);
}

/* Found by fuzz_adapter_claude: a request whose input is not an object
 * (allow still carries an object as updatedInput, and nothing leaks). */
static void test_permission_odd_input(void **state)
{
    (void)state;
    static const char *const replies[] = { "once", "always" };
    for (int k = 0; k < 2; k++) {
        adapter_claude_parser_t *p = adapter_claude_parser_new("s1", 0);
        json_t *conv, *rep;
        parse1(p,
               "{\"type\":\"control_request\",\"request_id\":\"r\",\"request\":{\"subtype\":"
               "\"can_use_tool\",\"tool_name\":\"Bash\",\"input\":\"ls\","
               "\"permission_suggestions\":[1,{\"type\":\"addRules\"}]}}",
               &conv, &rep);
        assert_string_equal(type_of(json_array_get(conv, 0)), "permission.requested");
        char *line = NULL;
        struct err err;
        assert_int_equal(adapter_claude_permission_line(p, "r", replies[k], &line, &err), 0);
        json_t *v = reply_json(line);
        const json_t *d = json_object_get(json_object_get(v, "response"), "response");
        assert_true(json_is_object(json_object_get(d, "updatedInput")));
        json_decref(v);
        free(line);
        json_decref(conv);
        json_decref(rep);
        adapter_claude_parser_free(p);
    }
}

static const char ASK_TWO[] =
    "{\"type\":\"control_request\",\"request_id\":\"q-1\",\"request\":{\"subtype\":"
    "\"can_use_tool\",\"tool_name\":\"AskUserQuestion\",\"input\":{\"questions\":["
    "{\"question\":\"Toppings?\",\"header\":\"T\",\"options\":[{\"label\":\"Cheese\"},"
    "{\"label\":\"Basil\"}],\"multiSelect\":true},"
    "{\"question\":\"Size?\",\"header\":\"S\",\"options\":[{\"label\":\"S\"},{\"label\":\"L\"}],"
    "\"multiSelect\":false}]},\"tool_use_id\":\"toolu_2\"}}";

static void test_question_replies(void **state)
{
    (void)state;
    adapter_claude_parser_t *p = adapter_claude_parser_new("s1", 0);
    json_t *conv, *rep;
    parse1(p, ASK_TWO, &conv, &rep);
    assert_int_equal(json_array_size(conv), 1);
    const json_t *c = json_array_get(conv, 0);
    assert_string_equal(type_of(c), "question.requested");
    const json_t *data = json_object_get(c, "data");
    assert_string_equal(json_string_value(json_object_get(data, "question_id")), "q-1");
    assert_string_equal(json_string_value(json_object_get(data, "prompt")), "Toppings?");
    assert_int_equal(json_array_size(json_object_get(data, "options")), 2);

    /* A permission reply cannot answer a question. */
    char *line = NULL;
    struct err err;
    assert_int_equal(adapter_claude_permission_line(p, "q-1", "once", &line, &err),
                     ERR_NOT_FOUND);

    json_t *answers = json_pack("[[s,s],[s]]", "Cheese", "Basil", "L");
    assert_int_equal(adapter_claude_question_line(p, "q-1", answers, &line, &err), 0);
    json_t *v = reply_json(line);
    const json_t *d = json_object_get(json_object_get(v, "response"), "response");
    assert_string_equal(json_string_value(json_object_get(d, "behavior")), "allow");
    const json_t *upd = json_object_get(d, "updatedInput");
    assert_int_equal(json_array_size(json_object_get(upd, "questions")), 2);
    const json_t *ans = json_object_get(upd, "answers");
    assert_string_equal(json_string_value(json_object_get(ans, "Toppings?")), "Cheese, Basil");
    assert_string_equal(json_string_value(json_object_get(ans, "Size?")), "L");
    json_decref(v);
    free(line);
    json_decref(answers);
    assert_int_equal(adapter_claude_question_line(p, "q-1", NULL, &line, &err), ERR_NOT_FOUND);
    json_decref(conv);
    json_decref(rep);

    /* Rejected: a deny with a message. */
    parse1(p, ASK_TWO, &conv, &rep);
    assert_int_equal(adapter_claude_question_line(p, "q-1", NULL, &line, &err), 0);
    v = reply_json(line);
    d = json_object_get(json_object_get(v, "response"), "response");
    assert_string_equal(json_string_value(json_object_get(d, "behavior")), "deny");
    json_decref(v);
    free(line);
    json_decref(conv);
    json_decref(rep);
    adapter_claude_parser_free(p);
}

static const char EXIT_PLAN[] =
    "{\"type\":\"control_request\",\"request_id\":\"p-1\",\"request\":{\"subtype\":"
    "\"can_use_tool\",\"tool_name\":\"ExitPlanMode\",\"input\":{\"plan\":\"# Plan\\n1. do it\","
    "\"planFilePath\":\"/h/.claude/plans/x.md\"},\"tool_use_id\":\"toolu_3\"}}";

/* The process that asked is gone: every pending request is withdrawn
 * (permission denied, question rejected) and forgotten. */
static void test_withdraw_pending(void **state)
{
    (void)state;
    adapter_claude_parser_t *p = adapter_claude_parser_new("s1", 0);
    json_t *conv, *rep;
    parse1(p, CAN_USE_BASH, &conv, &rep);
    json_decref(conv);
    json_decref(rep);
    parse1(p, ASK_TWO, &conv, &rep);
    json_decref(conv);
    json_decref(rep);
    json_t *out = json_array();
    struct err err;
    assert_int_equal(adapter_claude_withdraw_pending(p, out, &err), 0);
    assert_int_equal(json_array_size(out), 2);
    int permissions = 0, questions = 0;
    size_t i;
    const json_t *c;
    json_array_foreach(out, i, c) {
        const json_t *data = json_object_get(c, "data");
        assert_true(json_is_true(json_object_get(c, "synthetic")));
        if (strcmp(type_of(c), "permission.resolved") == 0) {
            permissions++;
            assert_string_equal(json_string_value(json_object_get(data, "permission_id")),
                                "req-1");
            assert_string_equal(json_string_value(json_object_get(data, "status")), "denied");
        } else {
            questions++;
            assert_string_equal(type_of(c), "question.resolved");
            assert_string_equal(json_string_value(json_object_get(data, "question_id")), "q-1");
            assert_string_equal(json_string_value(json_object_get(data, "status")), "rejected");
        }
    }
    assert_int_equal(permissions, 1);
    assert_int_equal(questions, 1);
    char *line = NULL;
    assert_int_equal(adapter_claude_permission_line(p, "req-1", "once", &line, &err),
                     ERR_NOT_FOUND);
    assert_int_equal(adapter_claude_question_line(p, "q-1", NULL, &line, &err), ERR_NOT_FOUND);
    /* Nothing left: a second call adds nothing. */
    assert_int_equal(adapter_claude_withdraw_pending(p, out, &err), 0);
    assert_int_equal(json_array_size(out), 2);
    json_decref(out);
    adapter_claude_parser_free(p);
}

static void test_plan_mode(void **state)
{
    (void)state;
    adapter_claude_parser_t *p = adapter_claude_parser_new("s1", 1);
    json_t *conv, *rep;
    struct err err;
    char *line;
    assert_true(adapter_claude_plan_active(p));

    /* A mutating tool in plan mode is refused at once, nothing journaled. */
    parse1(p, CAN_USE_BASH, &conv, &rep);
    assert_int_equal(json_array_size(conv), 0);
    assert_int_equal(json_array_size(rep), 1);
    json_t *v = reply_json(json_string_value(json_array_get(rep, 0)));
    const json_t *d = json_object_get(json_object_get(v, "response"), "response");
    assert_string_equal(json_string_value(json_object_get(d, "behavior")), "deny");
    assert_non_null(strstr(json_string_value(json_object_get(d, "message")), "Plan mode"));
    json_decref(v);
    json_decref(conv);
    json_decref(rep);
    assert_int_equal(adapter_claude_permission_line(p, "req-1", "once", &line, &err),
                     ERR_NOT_FOUND);

    /* A read-only tool still asks. */
    parse1(p,
           "{\"type\":\"control_request\",\"request_id\":\"r-2\",\"request\":{\"subtype\":"
           "\"can_use_tool\",\"tool_name\":\"WebFetch\",\"input\":{\"url\":\"http://x\"}}}",
           &conv, &rep);
    assert_int_equal(json_array_size(conv), 1);
    assert_string_equal(type_of(json_array_get(conv, 0)), "permission.requested");
    json_decref(conv);
    json_decref(rep);

    /* ExitPlanMode is a question; approving allows with the input. */
    parse1(p, EXIT_PLAN, &conv, &rep);
    assert_int_equal(json_array_size(conv), 1);
    const json_t *data = json_object_get(json_array_get(conv, 0), "data");
    assert_string_equal(type_of(json_array_get(conv, 0)), "question.requested");
    assert_non_null(strstr(json_string_value(json_object_get(data, "prompt")), "# Plan"));
    json_t *approve = json_pack("[[s]]", "approve");
    assert_int_equal(adapter_claude_question_line(p, "p-1", approve, &line, &err), 0);
    v = reply_json(line);
    d = json_object_get(json_object_get(v, "response"), "response");
    assert_string_equal(json_string_value(json_object_get(d, "behavior")), "allow");
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "updatedInput"),
                                                          "plan")),
                        "# Plan\n1. do it");
    json_decref(v);
    free(line);
    json_decref(conv);
    json_decref(rep);

    /* "reject" keeps planning. */
    parse1(p, EXIT_PLAN, &conv, &rep);
    json_t *reject = json_pack("[[s]]", "Reject");
    assert_int_equal(adapter_claude_question_line(p, "p-1", reject, &line, &err), 0);
    v = reply_json(line);
    d = json_object_get(json_object_get(v, "response"), "response");
    assert_string_equal(json_string_value(json_object_get(d, "behavior")), "deny");
    json_decref(v);
    free(line);
    json_decref(conv);
    json_decref(rep);
    json_decref(approve);
    json_decref(reject);

    /* Claude says plan mode is over: Bash asks again. */
    parse1(p, "{\"type\":\"system\",\"subtype\":\"status\",\"permissionMode\":\"default\"}", &conv,
           &rep);
    json_decref(conv);
    json_decref(rep);
    assert_false(adapter_claude_plan_active(p));
    parse1(p, CAN_USE_BASH, &conv, &rep);
    assert_int_equal(json_array_size(rep), 0);
    assert_string_equal(type_of(json_array_get(conv, 0)), "permission.requested");
    json_decref(conv);
    json_decref(rep);
    adapter_claude_parser_free(p);
}

static void test_user_line(void **state)
{
    (void)state;
    adapter_claude_parser_t *p = adapter_claude_parser_new("s1", 0);
    assert_false(adapter_claude_turn_active(p));
    char *line = adapter_claude_user_line(p, "line one\nline \"two\"");
    assert_non_null(line);
    assert_true(adapter_claude_turn_active(p));
    json_t *v = reply_json(line);
    assert_null(memchr(line, '\n', strlen(line) - 1));
    assert_string_equal(json_string_value(json_object_get(v, "type")), "user");
    const json_t *m = json_object_get(v, "message");
    assert_string_equal(json_string_value(json_object_get(m, "role")), "user");
    assert_string_equal(json_string_value(json_object_get(m, "content")), "line one\nline \"two\"");
    json_decref(v);
    free(line);
    json_t *c, *r;
    parse1(p, "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"ok\"}",
           &c, &r);
    assert_false(adapter_claude_turn_active(p));
    json_decref(c);
    json_decref(r);
    /* Not UTF-8: refused rather than sent broken. */
    assert_null(adapter_claude_user_line(p, "bad \xff"));
    adapter_claude_parser_free(p);

    json_t *u = adapter_claude_user_message("user_3", "hello");
    assert_non_null(u);
    assert_int_equal(json_array_size(u), 1);
    const json_t *item = json_object_get(json_object_get(json_array_get(u, 0), "data"), "item");
    assert_string_equal(json_string_value(json_object_get(item, "native_item_id")), "user_3");
    assert_string_equal(json_string_value(json_object_get(item, "role")), "user");
    json_decref(u);
}

static void test_cut_line(void **state)
{
    (void)state;
    adapter_claude_parser_t *p = adapter_claude_parser_new("s1", 0);
    json_t *c = json_array(), *r = json_array();
    struct err err;
    const char *line = "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\"";
    assert_int_equal(adapter_claude_parse_line(p, line, strlen(line), 1, c, r, &err), 0);
    assert_int_equal(json_array_size(c), 1);
    assert_string_equal(type_of(json_array_get(c, 0)), "agent.unparsed");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(c, 0), "data"), "error")),
                        "line too long");
    json_decref(c);
    json_decref(r);
    adapter_claude_parser_free(p);
}

/* Item ids named after the session are whole, however long its id (up to
 * 255 bytes): cut to a buffer, two messages shared one id. */
static void test_long_session_id(void **state)
{
    (void)state;
    char id[256];
    memset(id, 'a', 5);
    for (size_t i = 5; i < 255; i += 2)
        memcpy(id + i, "\xc3\xa9", 2); /* é */
    id[255] = '\0';
    adapter_claude_parser_t *p = adapter_claude_parser_new(id, 0);
    assert_non_null(p);
    static const char delta[] = "{\"type\":\"stream_event\",\"event\":{\"type\":"
                                "\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
                                "\"text\":\"hi\"}}}";
    json_t *c1, *r1, *c2, *r2;
    parse1(p, delta, &c1, &r1);
    parse1(p, delta, &c2, &r2);
    assert_int_equal(json_array_size(c1), 1);
    assert_int_equal(json_array_size(c2), 1);
    const char *n1 = json_string_value(
        json_object_get(json_object_get(json_array_get(c1, 0), "data"), "native_item_id"));
    const char *n2 = json_string_value(
        json_object_get(json_object_get(json_array_get(c2, 0), "data"), "native_item_id"));
    char want[300];
    snprintf(want, sizeof want, "%s_message_1", id);
    assert_string_equal(n1, want);
    snprintf(want, sizeof want, "%s_message_2", id);
    assert_string_equal(n2, want);
    json_decref(c1);
    json_decref(r1);
    json_decref(c2);
    json_decref(r2);
    adapter_claude_parser_free(p);
}

/* The full flow of one turn through the normalizer: Claude's assistant
 * message lands in the session's pending assistant item. */
static void test_turn_through_normalizer(void **state)
{
    (void)state;
    size_t len;
    char *input = fixtures_read_agent("claude", "partial-messages-bash-tool/input.jsonl", &len);
    adapter_claude_parser_t *p = adapter_claude_parser_new("s1", 0);
    normalize_t *n = claude_normalizer();
    json_t *start = normalize_pending_assistant_start(n);
    struct normalize_output out;
    struct err err;
    normalize_output_init(&out);
    assert_int_equal(normalize_apply(n, start, "T", &out, &err), 0);
    json_decref(start);
    const char *line = input, *end = input + len;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t k = nl ? (size_t)(nl - line) : (size_t)(end - line);
        json_t *c = json_array(), *r = json_array();
        assert_int_equal(adapter_claude_parse_line(p, line, k, 0, c, r, &err), 0);
        size_t i;
        json_t *v;
        json_array_foreach(c, i, v) assert_int_equal(normalize_apply(n, v, "T", &out, &err), 0);
        json_decref(c);
        json_decref(r);
        line = nl ? nl + 1 : end;
    }
    /* Collect: deltas and the completed message all target itm_1, the
     * pending assistant item; the tool call and result got their own. */
    struct {
        const char *type;
        int n;
    } seen[8] = { { "item.delta", 0 }, { "item.completed", 0 }, { "permission.requested", 0 } };
    int message_done = 0;
    for (size_t i = 0; i < out.count; i++) {
        json_t *ev = json_loads(out.events[i].json, 0, NULL);
        assert_non_null(ev);
        const char *type = json_string_value(json_object_get(ev, "type"));
        const json_t *data = json_object_get(ev, "data");
        for (int k = 0; k < 3; k++)
            if (strcmp(type, seen[k].type) == 0)
                seen[k].n++;
        if (strcmp(type, "item.delta") == 0)
            assert_string_equal(json_string_value(json_object_get(data, "item_id")), "itm_1");
        const json_t *item = json_object_get(data, "item");
        if (strcmp(type, "item.completed") == 0 &&
            strcmp(json_string_value(json_object_get(item, "kind")), "message") == 0) {
            assert_string_equal(json_string_value(json_object_get(item, "item_id")), "itm_1");
            const json_t *content = json_object_get(item, "content");
            assert_int_equal(json_array_size(content), 2);
            assert_string_equal(json_string_value(json_object_get(json_array_get(content, 1),
                                                                  "text")),
                                "Done: the command finished.");
            assert_true(out.events[i].turn_end);
            message_done = 1;
        }
        json_decref(ev);
    }
    assert_int_equal(seen[0].n, 4);
    assert_int_equal(seen[2].n, 1);
    assert_true(message_done);
    normalize_output_clear(&out);
    normalize_free(n);
    adapter_claude_parser_free(p);
    free(input);
}

/* ---- main ------------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_permission_replies),
        cmocka_unit_test(test_permission_odd_input),
        cmocka_unit_test(test_question_replies),
        cmocka_unit_test(test_withdraw_pending),
        cmocka_unit_test(test_plan_mode),
        cmocka_unit_test(test_user_line),
        cmocka_unit_test(test_cut_line),
        cmocka_unit_test(test_long_session_id),
        cmocka_unit_test(test_turn_through_normalizer),
    };
    return fixtures_run_group("claude", test_fixture, test_fixture_prefixes, fixed,
                              sizeof fixed / sizeof fixed[0]);
}
