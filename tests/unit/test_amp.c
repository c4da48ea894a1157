/* Unit tests for the Amp adapter's pure part (adapters/amp.c): stdout
 * transcripts in Amp's published formats (tests/fixtures/amp/<case>/
 * input.jsonl: Claude Code's stream-json as `amp --stream-json` prints it,
 * and the StreamJSONMessage lines of Amp's schema) parsed line by line as
 * one turn and compared with the expected conversions (expected.jsonl),
 * every conversion vetted by a normalizer set up as Amp's sessions are; the
 * fixtures cover every line type; the thread id, the command line of a
 * turn, its stdin line, and broken input.
 *
 * SJ_UPDATE_FIXTURES=1 rewrites expected.jsonl from the current output (read
 * the diff before committing it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "adapters/amp.h"
#include "base/err.h"
#include "events/event.h"
#include "fixtures.h"
#include "events/normalize.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREAD "T-2775dc92-90ed-4f85-8b73-8f9766029e83"

static normalize_t *amp_normalizer(void)
{
    struct normalize_config config = { .session_id = "s1", .agent_emits_item_started = 0,
                                       .agent_can_resume = 1,
                                       .assistant_message_ends_turn = 1 };
    normalize_t *n = normalize_new(&config);
    assert_non_null(n);
    return n;
}

/* Parses `input` as one turn, as the process side does: the turn begins,
 * the session layer starts the assistant item, then line by line.  Returns
 * the output text (new): one conversion per line, "raw" shown as true. */
static char *run_case(const char *input, size_t len)
{
    adapter_amp_parser_t *p = adapter_amp_parser_new("s1");
    assert_non_null(p);
    normalize_t *n = amp_normalizer();
    struct err err;
    assert_int_equal(adapter_amp_turn_begin(p, &err), 0);
    json_t *start = normalize_pending_assistant_start(n);
    json_t *first = json_array();
    assert_int_equal(json_array_append_new(first, start), 0);
    fixtures_vet(n, first);
    json_decref(first);

    char *out = NULL;
    size_t out_len = 0;
    FILE *mem = open_memstream(&out, &out_len);
    assert_non_null(mem);
    const char *line = input, *end = input + len;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n_bytes = nl ? (size_t)(nl - line) : (size_t)(end - line);
        json_t *conversions = json_array();
        assert_int_equal(adapter_amp_parse_line(p, line, n_bytes, 0, conversions, &err), 0);
        fixtures_vet(n, conversions);
        fixtures_print_conversions(mem, "", conversions);
        json_decref(conversions);
        line = nl ? nl + 1 : end;
    }
    /* What the turn left open shows as the process side would close it. */
    json_t *closing = json_array();
    assert_int_equal(adapter_amp_close_turn(p, closing, &err), 0);
    if (json_array_size(closing)) {
        char *s = json_dumps(json_array_get(closing, 0), JSON_COMPACT);
        fprintf(mem, "# at exit: %s\n", s);
        free(s);
    }
    json_decref(closing);
    fclose(mem);
    normalize_free(n);
    adapter_amp_parser_free(p);
    return out;
}

/* ---- fixtures ------------------------------------------------------------ */

static void test_fixture(void **state)
{
    fixtures_check(*state, "input.jsonl", run_case);
}

/* Every prefix of every fixture line, cut or not, parses without an error. */
static void parse_prefix(void *parser, const char *line, size_t prefix, size_t whole)
{
    json_t *c = json_array();
    struct err err;
    assert_int_equal(
        adapter_amp_parse_line(parser, line, prefix, prefix < whole && prefix % 2, c, &err), 0);
    json_decref(c);
}

static void test_fixture_prefixes(void **state)
{
    adapter_amp_parser_t *p = adapter_amp_parser_new("s1");
    assert_non_null(p);
    fixtures_each_prefix(*state, "input.jsonl", "", 5, 0, parse_prefix, p);
    adapter_amp_parser_free(p);
}

/* Every line type of both dialects appears in some fixture. */
static void test_fixtures_cover_every_type(void **state)
{
    (void)state;
    static const char *const types[] = {
        /* amp.json's StreamJSONMessage */
        "message", "tool_call", "tool_result", "error", "done",
        /* `amp --stream-json` (Claude Code's format) */
        "system", "user", "assistant", "result",
    };
    char *names[64];
    int listed = fixtures_list("amp", names, 64);
    assert_true(listed > 0);
    size_t n = (size_t)listed;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        int seen = 0;
        for (size_t i = 0; i < n && !seen; i++) {
            char rel[300];
            size_t len;
            snprintf(rel, sizeof rel, "%s/input.jsonl", names[i]);
            char *input = fixtures_read_agent("amp", rel, &len);
            for (char *line = strtok(input, "\n"); line && !seen; line = strtok(NULL, "\n")) {
                json_t *v = json_loads(line, 0, NULL);
                const char *type = json_string_value(json_object_get(v, "type"));
                seen = type && strcmp(type, types[t]) == 0;
                json_decref(v);
            }
            free(input);
        }
        if (!seen)
            fail_msg("no fixture has a line of type %s", types[t]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
}

/* ---- targeted cases ------------------------------------------------------- */

static json_t *parse1(adapter_amp_parser_t *p, const char *line)
{
    json_t *conv = json_array();
    struct err err;
    assert_int_equal(adapter_amp_parse_line(p, line, strlen(line), 0, conv, &err), 0);
    return conv;
}

static void test_thread_id(void **state)
{
    (void)state;
    adapter_amp_parser_t *p = adapter_amp_parser_new("s1");
    assert_non_null(p);
    assert_null(adapter_amp_thread_id(p));
    /* Nothing on the command line may look like an option or a path. */
    json_t *c = parse1(p, "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"--help\"}");
    assert_null(adapter_amp_thread_id(p));
    assert_null(json_object_get(json_array_get(c, 0), "native_session_id"));
    json_decref(c);
    c = parse1(p, "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"T-../etc\"}");
    assert_null(adapter_amp_thread_id(p));
    json_decref(c);
    c = parse1(p, "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"" THREAD "\"}");
    assert_string_equal(adapter_amp_thread_id(p), THREAD);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0),
                                                          "native_session_id")),
                        THREAD);
    json_decref(c);
    /* Later lines of the published format carry the thread too. */
    c = parse1(p, "{\"type\":\"error\",\"error\":\"x\"}");
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0),
                                                          "native_session_id")),
                        THREAD);
    json_decref(c);
    assert_true(adapter_amp_is_thread_id(THREAD));
    assert_false(adapter_amp_is_thread_id("T-"));
    assert_false(adapter_amp_is_thread_id("T-a b"));
    assert_false(adapter_amp_is_thread_id(NULL));
    adapter_amp_parser_free(p);
}

static void test_args(void **state)
{
    (void)state;
    const char *args[ADAPTER_AMP_MAX_ARGS];
    adapter_amp_args("/bin/amp", NULL, 0, args);
    const char *want_new[] = { "/bin/amp", "--execute", "--stream-json", "--stream-json-input",
                               "--stream-json-thinking", NULL };
    for (size_t i = 0; i < sizeof want_new / sizeof want_new[0]; i++) {
        if (!want_new[i])
            assert_null(args[i]);
        else
            assert_string_equal(args[i], want_new[i]);
    }
    adapter_amp_args("/bin/amp", THREAD, 1, args);
    const char *want_continue[] = { "/bin/amp", "threads", "continue", THREAD, "--execute",
                                    "--stream-json", "--stream-json-input",
                                    "--stream-json-thinking", "--dangerously-allow-all", NULL };
    for (size_t i = 0; i < sizeof want_continue / sizeof want_continue[0]; i++) {
        if (!want_continue[i])
            assert_null(args[i]);
        else
            assert_string_equal(args[i], want_continue[i]);
    }
    /* Not a thread id: a new thread rather than an option injected. */
    adapter_amp_args("/bin/amp", "--settings-file=/x", 0, args);
    assert_string_equal(args[1], "--execute");
}

static void test_input_line(void **state)
{
    (void)state;
    char *line = adapter_amp_input_line("line one\nline \"two\" --help");
    assert_non_null(line);
    size_t n = strlen(line);
    assert_true(n > 1 && line[n - 1] == '\n');
    assert_null(memchr(line, '\n', n - 1));
    json_t *v = json_loads(line, 0, NULL);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "type")), "user");
    json_t *msg = json_object_get(v, "message");
    assert_string_equal(json_string_value(json_object_get(msg, "role")), "user");
    json_t *part = json_array_get(json_object_get(msg, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(part, "type")), "text");
    assert_string_equal(json_string_value(json_object_get(part, "text")),
                        "line one\nline \"two\" --help");
    json_decref(v);
    free(line);
    assert_null(adapter_amp_input_line("\xff\xfe not UTF-8"));
}

/* A turn cut short closes as failed with what it showed. */
static void test_close_turn(void **state)
{
    (void)state;
    adapter_amp_parser_t *p = adapter_amp_parser_new("s1");
    struct err err;
    assert_int_equal(adapter_amp_turn_begin(p, &err), 0);
    assert_true(adapter_amp_turn_open(p));
    json_t *c = parse1(p, "{\"type\":\"assistant\",\"message\":{\"role\":\"assistant\",\"content\":"
                          "[{\"type\":\"thinking\",\"thinking\":\"hm\"},{\"type\":\"text\",\"text\":"
                          "\"so far\"}]}}");
    assert_int_equal(json_array_size(c), 0); /* shown with the turn's message */
    json_decref(c);
    json_t *out = json_array();
    assert_int_equal(adapter_amp_close_turn(p, out, &err), 0);
    assert_int_equal(json_array_size(out), 1);
    json_t *item = json_object_get(json_object_get(json_array_get(out, 0), "data"), "item");
    assert_string_equal(json_string_value(json_object_get(item, "status")), "failed");
    json_t *content = json_object_get(item, "content");
    assert_int_equal(json_array_size(content), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 0), "type")),
                        "reasoning");
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 1), "text")),
                        "so far");
    assert_false(adapter_amp_turn_open(p));
    /* Closed once only. */
    assert_int_equal(adapter_amp_close_turn(p, out, &err), 0);
    assert_int_equal(json_array_size(out), 1);
    json_decref(out);
    /* A new turn forgets the parts of the one cut short. */
    assert_int_equal(adapter_amp_turn_begin(p, &err), 0);
    c = parse1(p, "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,"
                  "\"result\":\"fresh\"}");
    item = json_object_get(json_object_get(json_array_get(c, 0), "data"), "item");
    content = json_object_get(item, "content");
    assert_int_equal(json_array_size(content), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 0), "text")),
                        "fresh");
    assert_false(adapter_amp_turn_open(p));
    json_decref(c);
    adapter_amp_parser_free(p);
}

static const char *native_of(const json_t *conversions, size_t i)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(json_array_get(conversions, i), "data"), "item"),
        "native_item_id"));
}

/* Item ids made from a long session id or tool id are whole: cut to a
 * buffer, one split a character (the turn's completion was lost) or two
 * items shared one id. */
static void test_long_ids(void **state)
{
    (void)state;
    char id[161];
    for (size_t i = 0; i < 160; i += 2)
        memcpy(id + i, "\xc3\xa9", 2); /* é */
    id[160] = '\0';
    adapter_amp_parser_t *p = adapter_amp_parser_new(id);
    struct err err;
    json_t *out = json_array();
    char want[200];
    for (int turn = 1; turn <= 2; turn++) {
        assert_int_equal(adapter_amp_turn_begin(p, &err), 0);
        assert_int_equal(adapter_amp_close_turn(p, out, &err), 0);
        assert_int_equal(json_array_size(out), (size_t)turn);
        snprintf(want, sizeof want, "%s_amp_message_%d", id, turn);
        assert_string_equal(native_of(out, (size_t)turn - 1), want);
    }
    json_decref(out);
    char tool[152];
    memset(tool, 'x', 150);
    tool[151] = '\0';
    for (int i = 0; i < 2; i++) {
        tool[150] = i ? 'z' : 'y';
        char line[256];
        snprintf(line, sizeof line, "{\"type\":\"tool_result\",\"id\":\"%s\",\"content\":\"\"}",
                 tool);
        json_t *c = parse1(p, line);
        snprintf(want, sizeof want, "%s_result", tool);
        assert_string_equal(native_of(c, 0), want);
        json_decref(c);
    }
    adapter_amp_parser_free(p);
}

static void test_cut_and_broken(void **state)
{
    (void)state;
    adapter_amp_parser_t *p = adapter_amp_parser_new("s1");
    json_t *c = json_array();
    struct err err;
    const char cut[] = "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\"";
    assert_int_equal(adapter_amp_parse_line(p, cut, sizeof cut - 1, 1, c, &err), 0);
    assert_int_equal(json_array_size(c), 1);
    json_t *u = json_array_get(c, 0);
    assert_string_equal(json_string_value(json_object_get(u, "type")), "agent.unparsed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(u, "data"), "location")),
                        "amp");
    assert_true(json_is_true(json_object_get(u, "synthetic")));
    json_decref(c);
    /* Not UTF-8: unparsed, without the bytes. */
    c = json_array();
    assert_int_equal(adapter_amp_parse_line(p, "\xff\xfe{", 3, 0, c, &err), 0);
    assert_int_equal(json_array_size(c), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "type")),
                        "agent.unparsed");
    json_decref(c);
    /* NUL bytes (which jansson would take inside keys): unparsed, no raw. */
    static const char nul[] = "{\"type\":\"system\",\"session_id\0\":\"" THREAD "\"}";
    c = json_array();
    assert_int_equal(adapter_amp_parse_line(p, nul, sizeof nul - 1, 0, c, &err), 0);
    assert_int_equal(json_array_size(c), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "type")),
                        "agent.unparsed");
    assert_null(json_object_get(json_array_get(c, 0), "raw"));
    assert_null(adapter_amp_thread_id(p));
    json_decref(c);
    adapter_amp_parser_free(p);
}

/* A failed result: the message fails and an error says why, in Amp's words. */
static void test_result_error(void **state)
{
    (void)state;
    adapter_amp_parser_t *p = adapter_amp_parser_new("s1");
    struct err err;
    assert_int_equal(adapter_amp_turn_begin(p, &err), 0);
    json_t *c = parse1(p, "{\"type\":\"result\",\"subtype\":\"error_during_execution\","
                          "\"is_error\":true,\"error\":\"Out of credits\"}");
    assert_int_equal(json_array_size(c), 2);
    json_t *item = json_object_get(json_object_get(json_array_get(c, 0), "data"), "item");
    assert_string_equal(json_string_value(json_object_get(item, "status")), "failed");
    json_t *error = json_array_get(c, 1);
    assert_string_equal(json_string_value(json_object_get(error, "type")), "error");
    assert_string_equal(json_string_value(json_object_get(json_object_get(error, "data"),
                                                          "message")),
                        "Out of credits");
    /* raw is what Amp printed, not the form given to Claude's parser. */
    assert_null(json_object_get(json_object_get(error, "raw"), "errors"));
    assert_false(adapter_amp_turn_open(p));
    json_decref(c);
    adapter_amp_parser_free(p);
}

/* ---- main ------------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_fixtures_cover_every_type),
        cmocka_unit_test(test_thread_id),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_input_line),
        cmocka_unit_test(test_close_turn),
        cmocka_unit_test(test_cut_and_broken),
        cmocka_unit_test(test_long_ids),
        cmocka_unit_test(test_result_error),
    };
    return fixtures_run_group("amp", test_fixture, test_fixture_prefixes, fixed,
                              sizeof fixed / sizeof fixed[0]);
}
