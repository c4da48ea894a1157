/* Unit tests for the OpenCode adapter's pure part (adapters/opencode_parse.c):
 * the recorded `GET /event` streams of the real `opencode serve`
 * (tests/fixtures/opencode/<case>/input.sse, from agent-notes' captures,
 * plus a hand-written case for what they lack) parsed and compared with
 * expected.jsonl (each event's type, session and flags, then its
 * conversions), every conversion vetted by a normalizer per session set up
 * as for OpenCode; the same stream fed in pieces of every size; request
 * bodies, modes and the config; broken input.
 *
 * SJ_UPDATE_FIXTURES=1 rewrites expected.jsonl (read the diff). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "adapters/registry.h"
#include "agents/adapter.h"
#include "base/err.h"
#include "fixtures.h"
#include "events/normalize.h"
#include "adapters/opencode.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SESSIONS 8

struct run {
    FILE *out;
    char sessions[MAX_SESSIONS][128];
    normalize_t *norms[MAX_SESSIONS];
    size_t n;
};

static normalize_t *norm_for(struct run *r, const char *session)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->sessions[i], session) == 0)
            return r->norms[i];
    assert_true(r->n < MAX_SESSIONS);
    /* As sessions.c sets one up for OpenCode. */
    struct normalize_config config = { .session_id = "s1", .agent_emits_item_started = 1,
                                       .agent_can_resume = 1,
                                       .assistant_message_ends_turn = 0 };
    snprintf(r->sessions[r->n], sizeof r->sessions[0], "%s", session);
    r->norms[r->n] = normalize_new(&config);
    assert_non_null(r->norms[r->n]);
    return r->norms[r->n++];
}

static void on_event(void *arg, struct adapter_opencode_event *ev)
{
    struct run *r = arg;
    json_t *head = json_pack("{s:s}", "type", ev->type);
    if (ev->session_id[0])
        json_object_set_new(head, "session", json_string(ev->session_id));
    if (ev->connected)
        json_object_set_new(head, "connected", json_true());
    if (ev->busy)
        json_object_set_new(head, "busy", json_true());
    if (ev->idle)
        json_object_set_new(head, "idle", json_true());
    if (ev->failed)
        json_object_set_new(head, "failed", json_true());
    char *s = json_dumps(head, JSON_COMPACT);
    fprintf(r->out, "%s\n", s);
    free(s);
    json_decref(head);
    /* Events of no session are only logged by the adapter: nothing to vet. */
    if (ev->session_id[0])
        fixtures_vet(norm_for(r, ev->session_id), ev->conversions);
    fixtures_print_conversions(r->out, "  ", ev->conversions);
}

/* new: the listing of `input` fed `piece` bytes at a time (0: at once). */
static char *run_case(const char *input, size_t len, size_t piece)
{
    struct run r = { 0 };
    char *out = NULL;
    size_t out_len = 0;
    r.out = open_memstream(&out, &out_len);
    assert_non_null(r.out);
    adapter_opencode_parser_t *p = adapter_opencode_parser_new();
    assert_non_null(p);
    struct err err;
    for (size_t at = 0; at < len;) {
        size_t k = piece && len - at > piece ? piece : len - at;
        assert_int_equal(adapter_opencode_parse_stream(p, input + at, k, on_event, &r, &err), 0);
        at += k;
    }
    adapter_opencode_parser_free(p);
    fclose(r.out);
    for (size_t i = 0; i < r.n; i++)
        normalize_free(r.norms[i]);
    return out;
}

static void test_fixture(void **state)
{
    const struct fixtures_case *c = *state;
    size_t len = 0;
    char *input = fixtures_read(c, "input.sse", &len);
    char *got = run_case(input, len, 0);
    fixtures_expect(c, got);
    /* Where the network cuts the stream changes nothing. */
    static const size_t pieces[] = { 1, 2, 7, 64, 1000 };
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        char *again = run_case(input, len, pieces[i]);
        if (strcmp(again, got) != 0)
            fail_msg("%s fed %zu bytes at a time parses differently", c->name, pieces[i]);
        free(again);
    }
    free(input);
    free(got);
}

/* Every prefix of every event's data parses without an error or a crash. */
static void parse_prefix(void *parser, const char *data, size_t prefix, size_t whole)
{
    (void)whole; /* an event's data is parsed whole or not at all */
    struct adapter_opencode_event ev;
    struct err err;
    assert_int_equal(adapter_opencode_parse_event(parser, data, prefix, &ev, &err), 0);
    adapter_opencode_event_clear(&ev);
}

static void test_fixture_prefixes(void **state)
{
    adapter_opencode_parser_t *p = adapter_opencode_parser_new();
    assert_non_null(p);
    fixtures_each_prefix(*state, "input.sse", "data: ", 5, 37, parse_prefix, p);
    adapter_opencode_parser_free(p);
}

static json_t *parse_one(adapter_opencode_parser_t *p, const char *json,
                         struct adapter_opencode_event *ev)
{
    struct err err;
    assert_int_equal(adapter_opencode_parse_event(p, json, strlen(json), ev, &err), 0);
    return ev->conversions;
}

static void test_broken_input(void **state)
{
    (void)state;
    adapter_opencode_parser_t *p = adapter_opencode_parser_new();
    assert_non_null(p);
    struct adapter_opencode_event ev;
    static const char *const unparsed[] = { "", "[1,2]", "{\"type\":", "\"text\"",
                                            "{\"properties\":{}}", "{\"type\":7}" };
    for (size_t i = 0; i < sizeof unparsed / sizeof unparsed[0]; i++) {
        json_t *c = parse_one(p, unparsed[i], &ev);
        assert_int_equal(json_array_size(c), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "type")),
                            "agent.unparsed");
        assert_string_equal(ev.session_id, "");
        adapter_opencode_event_clear(&ev);
    }
    const char bad[] = "{\"type\":\"\xff\"}";
    struct err err;
    assert_int_equal(adapter_opencode_parse_event(p, bad, sizeof bad - 1, &ev, &err), 0);
    assert_int_equal(json_array_size(ev.conversions), 1);
    adapter_opencode_event_clear(&ev);
    /* Wrong shapes inside a known event: status items or nothing, never a crash. */
    static const char *const odd[] = {
        "{\"type\":\"message.part.updated\",\"properties\":{\"sessionID\":\"s\",\"part\":7}}",
        "{\"type\":\"message.part.updated\",\"properties\":{\"sessionID\":\"s\",\"part\":"
        "{\"id\":\"p\",\"type\":\"tool\",\"state\":[]}}}",
        "{\"type\":\"message.part.updated\",\"properties\":{\"sessionID\":\"s\",\"part\":"
        "{\"id\":\"q\",\"type\":\"tool\",\"state\":{\"status\":\"weird\"}}}}",
        "{\"type\":\"permission.asked\",\"properties\":{\"sessionID\":\"s\"}}",
        "{\"type\":\"question.asked\",\"properties\":{\"sessionID\":\"s\",\"id\":\"que\","
        "\"questions\":[{\"options\":[{\"label\":3},{}]}]}}",
        "{\"type\":\"session.error\",\"properties\":{\"sessionID\":\"s\"}}",
        "{\"type\":\"message.part.delta\",\"properties\":{\"sessionID\":\"s\",\"delta\":\"x\"}}",
        "{\"type\":\"session.idle\",\"properties\":{\"sessionID\":7}}",
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        json_t *c = parse_one(p, odd[i], &ev);
        size_t k;
        json_t *v;
        json_array_foreach(c, k, v) {
            const char *type = json_string_value(json_object_get(v, "type"));
            assert_non_null(type);
        }
        adapter_opencode_event_clear(&ev);
    }
    adapter_opencode_parser_free(p);
}

static void count_events(void *arg, struct adapter_opencode_event *ev)
{
    (void)ev; /* only counted */
    (*(int *)arg)++;
}

static void test_stream_limits(void **state)
{
    (void)state;
    adapter_opencode_parser_t *p = adapter_opencode_parser_new();
    assert_non_null(p);
    struct err err;
    int n = 0;
    /* An event cut off by a reconnect is forgotten, not glued to the next. */
    const char *half = "data: {\"type\":\"session.idle\",\"prop";
    assert_int_equal(adapter_opencode_parse_stream(p, half, strlen(half), count_events, &n, &err),
                     0);
    adapter_opencode_stream_reset(p);
    const char *whole = "data: {\"type\":\"server.connected\",\"properties\":{}}\n\n";
    assert_int_equal(
        adapter_opencode_parse_stream(p, whole, strlen(whole), count_events, &n, &err), 0);
    assert_int_equal(n, 1);
    /* A line of 33 MiB without an end is dropped with its event. */
    size_t big = 33u * 1024 * 1024;
    char *blob = malloc(big);
    assert_non_null(blob);
    memcpy(blob, "data: ", 6);
    memset(blob + 6, 'x', big - 6);
    assert_int_equal(adapter_opencode_parse_stream(p, blob, big, count_events, &n, &err), 0);
    assert_int_equal(adapter_opencode_parse_stream(p, "\n\n", 2, count_events, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(
        adapter_opencode_parse_stream(p, whole, strlen(whole), count_events, &n, &err), 0);
    assert_int_equal(n, 2);
    free(blob);
    adapter_opencode_parser_free(p);
}

static void test_prompt_body(void **state)
{
    (void)state;
    json_t *b = adapter_opencode_prompt_body("hi", "fake-model", "sandbox-journal", "build");
    assert_non_null(b);
    char *s = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"agent\":\"build\",\"model\":{\"modelID\":\"fake-model\","
                           "\"providerID\":\"sandbox-journal\"},\"parts\":[{\"text\":\"hi\","
                           "\"type\":\"text\"}]}");
    free(s);
    json_decref(b);
    b = adapter_opencode_prompt_body("x", "anthropic/claude-x", "sandbox-journal", "plan");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "model"),
                                                          "providerID")),
                        "anthropic");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "model"),
                                                          "modelID")),
                        "claude-x");
    json_decref(b);
    /* A bare model without a provider of ours: OpenCode's default model. */
    b = adapter_opencode_prompt_body("x", "m", NULL, NULL);
    assert_null(json_object_get(b, "model"));
    assert_null(json_object_get(b, "agent"));
    json_decref(b);
}

static void test_modes(void **state)
{
    (void)state;
    json_t *agents = json_loads(
        "[{\"name\":\"build\",\"description\":\"The default agent.\",\"mode\":\"primary\"},"
        "{\"name\":\"general\",\"mode\":\"subagent\"},"
        "{\"name\":\"plan\",\"description\":\"Plan mode.\",\"mode\":\"primary\"},"
        "{\"name\":\"title\",\"mode\":\"primary\",\"hidden\":true},"
        "{\"name\":\"build\",\"mode\":\"all\"},{\"mode\":\"primary\"}]",
        0, NULL);
    json_t *m = adapter_opencode_modes(agents);
    char *s = json_dumps(m, JSON_COMPACT);
    assert_string_equal(s, "[{\"id\":\"build\",\"name\":\"Build\",\"description\":\"The default "
                           "agent.\"},{\"id\":\"plan\",\"name\":\"Plan\",\"description\":\"Plan "
                           "mode.\"},{\"id\":\"custom\",\"name\":\"Custom\",\"description\":\"Any "
                           "user-defined OpenCode agent name\"}]");
    free(s);
    json_decref(m);
    json_decref(agents);
    /* Nothing usable: the caller falls back to the built-in list. */
    assert_null(adapter_opencode_modes(NULL));
    agents = json_loads("[{\"name\":\"general\",\"mode\":\"subagent\"}]", 0, NULL);
    assert_null(adapter_opencode_modes(agents));
    json_decref(agents);
}

static void test_config(void **state)
{
    (void)state;
    json_t *models = json_pack("[s,s]", "fake-model", "other");
    char *text = adapter_opencode_config("sandbox-journal", "http://127.0.0.1:9/v1", "sk-x",
                                         models);
    json_t *c = json_loads(text, 0, NULL);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "model")),
                        "sandbox-journal/fake-model");
    assert_string_equal(json_string_value(json_object_get(c, "small_model")),
                        "sandbox-journal/fake-model");
    assert_string_equal(json_string_value(json_object_get(c, "share")), "disabled");
    assert_true(json_is_false(json_object_get(c, "autoupdate")));
    const json_t *perm = json_object_get(c, "permission");
    assert_string_equal(json_string_value(json_object_get(perm, "bash")), "ask");
    assert_string_equal(json_string_value(json_object_get(perm, "edit")), "ask");
    const json_t *prov = json_object_get(json_object_get(c, "provider"), "sandbox-journal");
    assert_string_equal(json_string_value(json_object_get(prov, "npm")),
                        "@ai-sdk/openai-compatible");
    const json_t *opts = json_object_get(prov, "options");
    assert_string_equal(json_string_value(json_object_get(opts, "baseURL")),
                        "http://127.0.0.1:9/v1");
    assert_string_equal(json_string_value(json_object_get(opts, "apiKey")), "sk-x");
    assert_non_null(json_object_get(json_object_get(prov, "models"), "other"));
    json_decref(c);
    free(text);
    /* No endpoint of ours: OpenCode's own providers, no default model. */
    text = adapter_opencode_config("sandbox-journal", NULL, NULL, models);
    c = json_loads(text, 0, NULL);
    assert_non_null(c);
    assert_null(json_object_get(c, "provider"));
    assert_null(json_object_get(c, "model"));
    json_decref(c);
    free(text);
    json_decref(models);
}

static void test_resolve_modes(void **state)
{
    (void)state;
    char am[32], pm[32];
    struct err err;
    assert_int_equal(adapter_modes_resolve(adapter_opencode.mode_rule,
                                           NULL, NULL, am, pm, &err), 0);
    assert_string_equal(am, "build");
    assert_string_equal(pm, "default");
    assert_int_equal(adapter_modes_resolve(adapter_opencode.mode_rule,
                                           "my-agent_2", "bypass", am, pm, &err), 0);
    assert_string_equal(am, "my-agent_2");
    assert_string_equal(pm, "bypass");
    assert_int_equal(adapter_modes_resolve(adapter_opencode.mode_rule,
                                           "bad mode", NULL, am, pm, &err),
                     ERR_MODE_NOT_SUPPORTED);
    assert_int_equal(adapter_modes_resolve(adapter_opencode.mode_rule, "", NULL, am, pm, &err),
                     ERR_MODE_NOT_SUPPORTED);
    assert_int_equal(adapter_modes_resolve(adapter_opencode.mode_rule, NULL, "plan", am, pm, &err),
                     ERR_MODE_NOT_SUPPORTED);
    assert_int_equal(adapter_modes_resolve(adapter_opencode.mode_rule,
                                           NULL, "nonsense", am, pm, &err), ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_broken_input),  cmocka_unit_test(test_stream_limits),
        cmocka_unit_test(test_prompt_body),   cmocka_unit_test(test_modes),
        cmocka_unit_test(test_config),        cmocka_unit_test(test_resolve_modes),
    };
    return fixtures_run_group("opencode", test_fixture, test_fixture_prefixes, fixed,
                              sizeof fixed / sizeof fixed[0]);
}
