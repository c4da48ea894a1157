/* Unit tests for the Codex adapter's pure part (adapters/codex_parse.c): the
 * recorded stdout of the real `codex app-server` (tests/fixtures/codex/
 * <case>/input.jsonl, the "< " lines of agent-notes' wire captures) parsed
 * line by line and compared with expected.jsonl (kind, id, thread and the
 * conversions), every conversion vetted by a normalizer set up as for Codex;
 * approval decision lines; permission ids; broken input of every kind.
 *
 * SJ_UPDATE_FIXTURES=1 rewrites expected.jsonl (read the diff). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "adapters/codex.h"
#include "base/err.h"
#include "fixtures.h"
#include "events/normalize.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_name(enum adapter_codex_kind k)
{
    switch (k) {
    case ADAPTER_CODEX_RESPONSE:
        return "response";
    case ADAPTER_CODEX_NOTIFICATION:
        return "notification";
    case ADAPTER_CODEX_REQUEST:
        return "request";
    case ADAPTER_CODEX_INVALID:
        break;
    }
    return "invalid";
}

static normalize_t *codex_normalizer(void)
{
    struct normalize_config config = { .session_id = "s1", .agent_emits_item_started = 1,
                                       .agent_can_resume = 1,
                                       .assistant_message_ends_turn = 0 };
    normalize_t *n = normalize_new(&config);
    assert_non_null(n);
    return n;
}

static char *run_case(const char *input, size_t len)
{
    normalize_t *n = codex_normalizer();
    char *out = NULL;
    size_t out_len = 0;
    FILE *mem = open_memstream(&out, &out_len);
    assert_non_null(mem);
    const char *line = input, *end = input + len;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t k = nl ? (size_t)(nl - line) : (size_t)(end - line);
        struct adapter_codex_line l;
        struct err err;
        assert_int_equal(adapter_codex_parse_line(line, k, 0, "P", &l, &err), 0);
        json_t *head = json_pack("{s:s}", "kind", kind_name(l.kind));
        if (l.has_id)
            json_object_set_new(head, "id", json_integer(l.id));
        if (l.method)
            json_object_set_new(head, "method", json_string(l.method));
        if (l.thread_id[0])
            json_object_set_new(head, "thread", json_string(l.thread_id));
        if (l.turn_started)
            json_object_set_new(head, "turn_started", json_string(l.turn_id));
        if (l.turn_done)
            json_object_set_new(head, "turn_done", json_true());
        if (l.is_approval)
            json_object_set_new(head, "approval", json_true());
        if (l.error)
            json_object_set_new(head, "error", json_true());
        char *s = json_dumps(head, JSON_COMPACT);
        if (k > 0 || json_array_size(l.conversions))
            fprintf(mem, "%s\n", s);
        free(s);
        json_decref(head);
        fixtures_vet(n, l.conversions);
        fixtures_print_conversions(mem, "  ", l.conversions);
        adapter_codex_line_clear(&l);
        line = nl ? nl + 1 : end;
    }
    fclose(mem);
    normalize_free(n);
    return out;
}

static void test_fixture(void **state)
{
    fixtures_check(*state, "input.jsonl", run_case);
}

/* Every prefix of every line parses without an error or a crash. */
static void parse_prefix(void *ctx, const char *line, size_t prefix, size_t whole)
{
    (void)ctx; /* the Codex line parser keeps no state */
    struct adapter_codex_line l;
    struct err err;
    assert_int_equal(adapter_codex_parse_line(line, prefix, prefix < whole, "P", &l, &err), 0);
    adapter_codex_line_clear(&l);
}

static void test_fixture_prefixes(void **state)
{
    fixtures_each_prefix(*state, "input.jsonl", "", 5, 53, parse_prefix, NULL);
}

static void test_decisions(void **state)
{
    (void)state;
    static const struct {
        const char *reply, *decision;
    } cases[] = { { "once", "accept" }, { "always", "acceptForSession" }, { "reject", "decline" } };
    for (size_t i = 0; i < 3; i++) {
        char *line = adapter_codex_decision_line(42, cases[i].reply);
        assert_non_null(line);
        size_t n = strlen(line);
        assert_true(line[n - 1] == '\n');
        assert_null(memchr(line, '\n', n - 1));
        json_t *v = json_loads(line, 0, NULL);
        assert_non_null(v);
        assert_int_equal(json_integer_value(json_object_get(v, "id")), 42);
        assert_string_equal(json_string_value(json_object_get(json_object_get(v, "result"),
                                                              "decision")),
                            cases[i].decision);
        json_decref(v);
        free(line);
    }
    assert_null(adapter_codex_decision_line(1, "maybe"));
}

static void test_permission_ids(void **state)
{
    (void)state;
    char prefix[32];
    long long id = -1;
    struct err err;
    assert_int_equal(adapter_codex_permission_id("1795437164674-0", prefix, sizeof prefix, &id,
                                                 &err),
                     0);
    assert_string_equal(prefix, "1795437164674");
    assert_int_equal(id, 0);
    assert_int_equal(adapter_codex_permission_id("P-17", prefix, sizeof prefix, &id, &err), 0);
    assert_int_equal(id, 17);
    assert_int_equal(adapter_codex_permission_id("17", prefix, sizeof prefix, &id, &err),
                     ERR_INVALID);
    assert_int_equal(adapter_codex_permission_id("P-x", prefix, sizeof prefix, &id, &err),
                     ERR_INVALID);
    assert_int_equal(adapter_codex_permission_id("-3", prefix, sizeof prefix, &id, &err),
                     ERR_INVALID);
    assert_int_equal(adapter_codex_permission_id("P-", prefix, sizeof prefix, &id, &err),
                     ERR_INVALID);

    /* The approval request's permission id round-trips. */
    const char *req = "{\"method\":\"item/fileChange/requestApproval\",\"id\":5,\"params\":"
                      "{\"threadId\":\"t\",\"turnId\":\"u\",\"itemId\":\"c\",\"reason\":null,"
                      "\"grantRoot\":null}}";
    struct adapter_codex_line l;
    assert_int_equal(adapter_codex_parse_line(req, strlen(req), 0, "99", &l, &err), 0);
    assert_int_equal(l.kind, ADAPTER_CODEX_REQUEST);
    assert_true(l.is_approval);
    const json_t *data = json_object_get(json_array_get(l.conversions, 0), "data");
    const char *pid = json_string_value(json_object_get(data, "permission_id"));
    assert_string_equal(pid, "99-5");
    assert_string_equal(json_string_value(json_object_get(data, "action")), "fileChange");
    assert_int_equal(adapter_codex_permission_id(pid, prefix, sizeof prefix, &id, &err), 0);
    assert_int_equal(id, 5);
    assert_string_equal(prefix, "99");
    adapter_codex_line_clear(&l);
}

static void test_cut_and_invalid(void **state)
{
    (void)state;
    struct adapter_codex_line l;
    struct err err;
    const char *line = "{\"method\":\"item/started\"";
    assert_int_equal(adapter_codex_parse_line(line, strlen(line), 1, "P", &l, &err), 0);
    assert_int_equal(l.kind, ADAPTER_CODEX_INVALID);
    assert_int_equal(json_array_size(l.conversions), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l.conversions, 0),
                                                          "type")),
                        "agent.unparsed");
    adapter_codex_line_clear(&l);
    const char bad[] = "{\"x\":\"\xff\"}";
    assert_int_equal(adapter_codex_parse_line(bad, sizeof bad - 1, 0, "P", &l, &err), 0);
    assert_int_equal(l.kind, ADAPTER_CODEX_INVALID);
    assert_int_equal(json_array_size(l.conversions), 1);
    adapter_codex_line_clear(&l);
}

int main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_permission_ids),
        cmocka_unit_test(test_cut_and_invalid),
    };
    return fixtures_run_group("codex", test_fixture, test_fixture_prefixes, fixed,
                              sizeof fixed / sizeof fixed[0]);
}
