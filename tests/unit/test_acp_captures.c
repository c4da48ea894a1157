/* The recorded ACP wire of the real agents (tests/fixtures/qwen/,
 * tests/fixtures/pi/ and tests/fixtures/gemini/, made with tests/fixtures/acp_capture.py against
 * sj-fake-model) replayed through the ACP parser (adapters/acp_parse.c):
 * our side of each capture is played by the parser itself (its initialize,
 * session/new or session/load, session/prompt, permission answers and
 * cancel), the agent's side is fed line by line.  expected.jsonl holds,
 * per agent line, the conversions it gave, and every line the parser wrote
 * ("> "), so both the universal events and the protocol are pinned; the
 * parser's lines must also match the capture's methods in order.  Every
 * conversion is vetted by a normalizer; every prefix of every agent line
 * parses without an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "adapters/acp.h"
#include "base/err.h"
#include "events/normalize.h"
#include "fixtures.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The capture's records ({"dir":"send"|"recv","msg":...}), in order. new. */
static json_t *wire_records(const char *input, size_t len)
{
    json_t *all = json_array();
    assert_non_null(all);
    const char *line = input, *end = input + len;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (n) {
            json_t *rec = json_loadb(line, n, 0, NULL);
            assert_non_null(rec);
            assert_int_equal(json_array_append_new(all, rec), 0);
        }
        line = nl ? nl + 1 : end;
    }
    return all;
}

static const char *method_of(const json_t *msg)
{
    return json_string_value(json_object_get(msg, "method"));
}

/* The first message we sent with `method`, or NULL. */
static const json_t *first_sent(const json_t *records, const char *method)
{
    size_t i;
    const json_t *rec;
    json_array_foreach(records, i, rec) {
        const json_t *msg = json_object_get(rec, "msg");
        if (strcmp(json_string_value(json_object_get(rec, "dir")), "send") == 0 &&
            method_of(msg) && strcmp(method_of(msg), method) == 0)
            return msg;
    }
    return NULL;
}

/* The methods of our lines still to be matched, in order (responses are
 * "result"). */
struct expect_sent {
    const json_t *records;
    size_t next;
};

static const char *sent_kind(const json_t *msg)
{
    return method_of(msg) ? method_of(msg) : "result";
}

/* Checks that the parser's `line` is the capture's next line of ours (same
 * method, or both responses with the same id) and prints it. */
static void our_line(FILE *out, struct expect_sent *e, const char *line)
{
    json_t *mine = json_loads(line, 0, NULL);
    assert_non_null(mine);
    const json_t *rec = NULL;
    while (e->next < json_array_size(e->records)) {
        rec = json_array_get(e->records, e->next++);
        if (strcmp(json_string_value(json_object_get(rec, "dir")), "send") == 0)
            break;
        rec = NULL;
    }
    if (!rec)
        fail_msg("the parser wrote a line the capture does not have: %s", line);
    const json_t *theirs = json_object_get(rec, "msg");
    if (strcmp(sent_kind(mine), sent_kind(theirs)) != 0)
        fail_msg("the parser wrote %s where the capture has %s", sent_kind(mine),
                 sent_kind(theirs));
    if (!method_of(mine) &&
        !json_equal(json_object_get(mine, "id"), json_object_get(theirs, "id")))
        fail_msg("the parser answered another request than the capture: %s", line);
    char *s = json_dumps(mine, JSON_COMPACT | JSON_SORT_KEYS);
    fprintf(out, "> %s\n", s);
    free(s);
    json_decref(mine);
}

/* The reply ("once", "always", "reject") our captured answer to permission
 * request `id` chose, from the option kinds of `request`. */
static const char *permission_reply(const json_t *records, const json_t *request)
{
    const json_t *id = json_object_get(request, "id");
    size_t i;
    const json_t *rec;
    const char *option = NULL;
    json_array_foreach(records, i, rec) {
        const json_t *msg = json_object_get(rec, "msg");
        if (strcmp(json_string_value(json_object_get(rec, "dir")), "send") == 0 &&
            !method_of(msg) && json_equal(json_object_get(msg, "id"), id))
            option = json_string_value(json_object_get(
                json_object_get(json_object_get(msg, "result"), "outcome"), "optionId"));
    }
    assert_non_null(option);
    const json_t *options = json_object_get(json_object_get(request, "params"), "options");
    json_array_foreach(options, i, rec) {
        if (strcmp(json_string_value(json_object_get(rec, "optionId")), option) == 0) {
            const char *kind = json_string_value(json_object_get(rec, "kind"));
            return strcmp(kind, "allow_once") == 0     ? "once"
                   : strcmp(kind, "allow_always") == 0 ? "always"
                                                       : "reject";
        }
    }
    fail_msg("option %s is not offered", option);
    return NULL;
}

static void print_lines(FILE *out, struct expect_sent *e, const json_t *replies)
{
    size_t i;
    const json_t *r;
    json_array_foreach(replies, i, r)
        our_line(out, e, json_string_value(r));
}

static char *run_case(const char *input, size_t len)
{
    json_t *records = wire_records(input, len);
    const json_t *load = first_sent(records, "session/load");
    const json_t *open = load ? load : first_sent(records, "session/new");
    assert_non_null(open);
    const json_t *open_params = json_object_get(open, "params");
    struct adapter_acp_start start = {
        .session_id = "s1", .id_prefix = "p0",
        .cwd = json_string_value(json_object_get(open_params, "cwd")),
        .resume_id = load ? json_string_value(json_object_get(open_params, "sessionId")) : NULL,
        /* The capture's client synced after the load as the adapter does
         * for an agent that replays after the result (Gemini CLI). */
        .sync_after_load = first_sent(records, ADAPTER_ACP_SYNC_METHOD) != NULL,
    };
    adapter_acp_parser_t *p = adapter_acp_parser_new(&start);
    assert_non_null(p);
    struct normalize_config config = { .session_id = "s1", .agent_emits_item_started = 0,
                                       .agent_can_resume = 1,
                                       .assistant_message_ends_turn = 1 };
    normalize_t *n = normalize_new(&config);
    assert_non_null(n);

    char *out = NULL;
    size_t out_len = 0;
    FILE *mem = open_memstream(&out, &out_len);
    assert_non_null(mem);
    struct expect_sent e = { .records = records, .next = 0 };
    struct err err;
    size_t i;
    const json_t *rec;
    json_array_foreach(records, i, rec) {
        const json_t *msg = json_object_get(rec, "msg");
        const char *dir = json_string_value(json_object_get(rec, "dir"));
        const char *method = method_of(msg);
        if (strcmp(dir, "send") == 0) {
            /* Our side: only what starts a step of ours is played here;
             * the rest are the parser's own answers, checked as it writes
             * them. */
            char *line = NULL;
            if (method && strcmp(method, "initialize") == 0) {
                /* The first user message: the pending assistant item,
                 * then the initialize line; the prompt waits. */
                const json_t *prompt = first_sent(records, "session/prompt");
                const char *text = json_string_value(json_object_get(
                    json_array_get(json_object_get(json_object_get(prompt, "params"), "prompt"),
                                   0),
                    "text"));
                json_t *list = json_array();
                assert_int_equal(
                    json_array_append_new(list, normalize_pending_assistant_start(n)), 0);
                fixtures_vet(n, list);
                json_decref(list);
                line = adapter_acp_prompt(p, text);
            } else if (method && strcmp(method, "session/cancel") == 0) {
                line = adapter_acp_cancel_line(p);
            } else {
                continue;
            }
            assert_non_null(line);
            for (char *l = line, *nl; *l; l = nl + 1) {
                nl = strchr(l, '\n');
                assert_non_null(nl);
                *nl = '\0';
                our_line(mem, &e, l);
            }
            free(line);
            continue;
        }
        char *text = json_dumps(msg, JSON_COMPACT);
        assert_non_null(text);
        json_t *conversions = json_array(), *replies = json_array(), *requests = json_array();
        assert_int_equal(adapter_acp_parse_line(p, text, strlen(text), 0, conversions, replies,
                                                requests, &err),
                         0);
        free(text);
        fixtures_vet(n, conversions);
        fprintf(mem, "< %s\n", method ? method : "response");
        fixtures_print_conversions(mem, "  ", conversions);
        print_lines(mem, &e, replies);
        assert_int_equal(json_array_size(requests), 0); /* no fs requests were captured */
        if (method && strcmp(method, "session/request_permission") == 0) {
            char pid[64], *line = NULL;
            const json_t *id = json_object_get(msg, "id");
            assert_true(json_is_integer(id));
            snprintf(pid, sizeof pid, "p0-%lld", (long long)json_integer_value(id));
            assert_int_equal(
                adapter_acp_permission_line(p, pid, permission_reply(records, msg), &line, &err),
                0);
            char *nl = strchr(line, '\n');
            assert_non_null(nl);
            *nl = '\0';
            our_line(mem, &e, line);
            free(line);
        }
        json_decref(conversions);
        json_decref(replies);
        json_decref(requests);
    }
    fclose(mem);
    normalize_free(n);
    adapter_acp_parser_free(p);
    json_decref(records);
    return out;
}

static void test_fixture(void **state)
{
    fixtures_check(*state, "wire.jsonl", run_case);
}

/* Every prefix of every agent line, cut or not, parses without an error
 * (on a parser that has seen nothing else). */
static void parse_prefix(void *ctx, const char *line, size_t prefix, size_t whole)
{
    (void)ctx;
    struct adapter_acp_start start = { .session_id = "s1", .id_prefix = "p0", .cwd = "/w" };
    adapter_acp_parser_t *p = adapter_acp_parser_new(&start);
    assert_non_null(p);
    json_t *c = json_array(), *r = json_array(), *q = json_array();
    struct err err;
    assert_int_equal(
        adapter_acp_parse_line(p, line, prefix, prefix < whole && prefix % 2, c, r, q, &err), 0);
    json_decref(c);
    json_decref(r);
    json_decref(q);
    adapter_acp_parser_free(p);
}

static void test_fixture_prefixes(void **state)
{
    fixtures_each_prefix(*state, "input.jsonl", "", 7, 40, parse_prefix, NULL);
}

/* Qwen Code announces no tool call: the call's tool, title and input are
 * only in the permission request's toolCall, its tool name only in the
 * tool_call_update's _meta.  The tool_call item has them all (it used to
 * say "tool" with arguments {}). */
static void test_qwen_tool_call_named(void **state)
{
    (void)state;
    size_t len;
    char *wire = fixtures_read_agent("qwen", "tool-allow/wire.jsonl", &len);
    assert_non_null(wire);
    char *out = run_case(wire, len);
    const char *item = strstr(out, "\"kind\":\"tool_call\"");
    assert_non_null(item);
    assert_non_null(strstr(item, "\"name\":\"run_shell_command\","));
    assert_non_null(strstr(item, "\"arguments\":\"{\\\"command\\\":\\\"echo hi > out.txt\\\""));
    assert_null(strstr(out, "\"name\":\"tool\""));
    free(out);
    free(wire);
}

int main(void)
{
    const struct CMUnitTest qwen[] = {
        cmocka_unit_test(test_qwen_tool_call_named),
    };
    int failed = fixtures_run_group("qwen", test_fixture, test_fixture_prefixes, qwen,
                                    sizeof qwen / sizeof qwen[0]);
    failed |= fixtures_run_group("pi", test_fixture, test_fixture_prefixes, NULL, 0);
    failed |= fixtures_run_group("gemini", test_fixture, test_fixture_prefixes, NULL, 0);
    return failed;
}
