/* normalize.c: the reference's SessionState rules, one test per rule, and
 * the replay guarantee that a rebuilt normalizer continues byte for byte. */
#include "events/event.h"
#include "events/normalize.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T "2026-11-23T11:30:00.123456Z"
#define EV(seq, native, synthetic, source, type)                                          \
    "{\"event_id\":\"evt_" #seq "\",\"sequence\":" #seq ",\"time\":\"" T                  \
    "\",\"session_id\":\"s1\",\"native_session_id\":" native ",\"synthetic\":" synthetic \
    ",\"source\":\"" source "\",\"type\":\"" type "\",\"data\":"
#define AGENT(seq, type) EV(seq, "null", "false", "agent", type)
#define DAEMON(seq, type) EV(seq, "null", "true", "daemon", type)

static normalize_t *make(int emits_item_started, int can_resume, int message_ends_turn)
{
    struct normalize_config cfg = {
        .session_id = "s1",
        .agent_emits_item_started = emits_item_started,
        .agent_can_resume = can_resume,
        .assistant_message_ends_turn = message_ends_turn,
    };
    normalize_t *n = normalize_new(&cfg);
    assert_non_null(n);
    return n;
}

/* Applies `conv` (stolen) into a cleared `out` and checks the event count. */
static void apply(normalize_t *n, json_t *conv, struct normalize_output *out, size_t count)
{
    struct err err = {0};
    assert_non_null(conv);
    normalize_output_clear(out);
    int rc = normalize_apply(n, conv, T, out, &err);
    json_decref(conv);
    assert_int_equal(rc, 0);
    assert_int_equal(out->count, count);
}

static void expect_event(const struct normalize_output *out, size_t i, uint64_t seq,
                         const char *type, const char *json)
{
    assert_true(i < out->count);
    assert_int_equal(out->events[i].sequence, seq);
    assert_string_equal(out->events[i].type, type);
    assert_string_equal(out->events[i].json, json);
    assert_int_equal(out->events[i].json_len, strlen(json));
}

static json_t *conv_item(const char *type, const char *kind, const char *role,
                         const char *status, const char *native, json_t *content)
{
    return event_conversion(type,
                            event_item_data(event_item(kind, role, status, native, content)));
}

static json_t *text_content(const char *text)
{
    return json_pack("[o]", event_part_text(text));
}

static void test_item_ids_and_sequences(void **state)
{
    (void)state;
    normalize_t *n = make(1, 0, 1);
    struct normalize_output out;
    normalize_output_init(&out);
    assert_int_equal(normalize_last_sequence(n), 0);

    apply(n, conv_item("item.started", "tool_call", NULL, "in_progress", "t1", json_array()),
          &out, 1);
    expect_event(&out, 0, 1, "item.started",
                 AGENT(1, "item.started")
                 "{\"item\":{\"item_id\":\"itm_1\",\"native_item_id\":\"t1\",\"parent_id\":null,"
                 "\"kind\":\"tool_call\",\"role\":null,\"content\":[],"
                 "\"status\":\"in_progress\"}},\"raw\":null}");
    assert_null(out.events[0].raw);
    assert_int_equal(out.events[0].turn_end, 0);

    apply(n, event_conversion("item.delta", event_delta_data("", "t1", "x")), &out, 1);
    expect_event(&out, 0, 2, "item.delta",
                 AGENT(2, "item.delta")
                 "{\"item_id\":\"itm_1\",\"native_item_id\":\"t1\",\"delta\":\"x\"},"
                 "\"raw\":null}");

    apply(n, conv_item("item.started", "message", "user", "in_progress", NULL, json_array()),
          &out, 1);
    expect_event(&out, 0, 3, "item.started",
                 AGENT(3, "item.started")
                 "{\"item\":{\"item_id\":\"itm_2\",\"native_item_id\":null,\"parent_id\":null,"
                 "\"kind\":\"message\",\"role\":\"user\",\"content\":[],"
                 "\"status\":\"in_progress\"}},\"raw\":null}");

    apply(n, event_conversion("item.delta", event_delta_data(NULL, NULL, "y")), &out, 1);
    expect_event(&out, 0, 4, "item.delta",
                 AGENT(4, "item.delta")
                 "{\"item_id\":\"itm_3\",\"native_item_id\":null,\"delta\":\"y\"},\"raw\":null}");

    /* An explicit id is kept and never handed out again. */
    json_t *c = event_conversion("item.delta", event_delta_data("itm_9", "t9", "z"));
    apply(n, c, &out, 1);
    apply(n, event_conversion("item.delta", event_delta_data("", "t10", "z")), &out, 1);
    expect_event(&out, 0, 6, "item.delta",
                 AGENT(6, "item.delta")
                 "{\"item_id\":\"itm_10\",\"native_item_id\":\"t10\",\"delta\":\"z\"},"
                 "\"raw\":null}");
    assert_int_equal(normalize_last_sequence(n), 6);

    normalize_output_clear(&out);
    normalize_free(n);
}

static void test_synthetic_started_before_unstarted_completed(void **state)
{
    (void)state;
    normalize_t *n = make(1, 0, 1);
    struct normalize_output out;
    normalize_output_init(&out);
    json_t *content = json_pack("[o]", event_part_tool_call("bash", "{}", "c1"));
    json_t *c = conv_item("item.completed", "tool_call", "assistant", "completed", "t1", content);
    c = event_with_raw(event_with_native_session(c, "ns"), json_pack("{s:s,s:f}", "k", "v", "x", 0.5));
    apply(n, c, &out, 2);
    expect_event(&out, 0, 1, "item.started",
                 EV(1, "\"ns\"", "true", "daemon", "item.started")
                 "{\"item\":{\"item_id\":\"itm_1\",\"native_item_id\":\"t1\",\"parent_id\":null,"
                 "\"kind\":\"tool_call\",\"role\":\"assistant\",\"content\":[{\"type\":"
                 "\"tool_call\",\"name\":\"bash\",\"arguments\":\"{}\",\"call_id\":\"c1\"}],"
                 "\"status\":\"in_progress\"}},\"raw\":null}");
    expect_event(&out, 1, 2, "item.completed",
                 EV(2, "\"ns\"", "false", "agent", "item.completed")
                 "{\"item\":{\"item_id\":\"itm_1\",\"native_item_id\":\"t1\",\"parent_id\":null,"
                 "\"kind\":\"tool_call\",\"role\":\"assistant\",\"content\":[{\"type\":"
                 "\"tool_call\",\"name\":\"bash\",\"arguments\":\"{}\",\"call_id\":\"c1\"}],"
                 "\"status\":\"completed\"}},\"raw\":null}");
    assert_null(out.events[0].raw);
    assert_string_equal(out.events[1].raw, "{\"k\":\"v\",\"x\":0.5}");
    assert_int_equal(out.events[1].raw_len, strlen("{\"k\":\"v\",\"x\":0.5}"));
    assert_int_equal(out.native_session_changed, 1);

    /* Started already: no companion. */
    apply(n, conv_item("item.started", "tool_result", NULL, "in_progress", "t2", json_array()),
          &out, 1);
    apply(n, conv_item("item.completed", "tool_result", NULL, "completed", "t2", json_array()),
          &out, 1);
    assert_string_equal(out.events[0].type, "item.completed");
    assert_int_equal(out.events[0].sequence, 4);
    assert_int_equal(out.native_session_changed, 0);

    normalize_output_clear(&out);
    normalize_free(n);
}

static void test_synthetic_delta_for_message_without_delta(void **state)
{
    (void)state;
    normalize_t *n = make(1, 0, 1);
    struct normalize_output out;
    normalize_output_init(&out);

    json_t *content = json_pack("[o,o,o,o]", event_part_text("a"),
                                event_part_json(json_true()), event_part_text(""),
                                event_part_text("b"));
    apply(n, conv_item("item.completed", "message", "assistant", "completed", "m1", content),
          &out, 3);
    assert_string_equal(out.events[0].type, "item.started");
    expect_event(&out, 1, 2, "item.delta",
                 DAEMON(2, "item.delta")
                 "{\"item_id\":\"itm_1\",\"native_item_id\":\"m1\",\"delta\":\"a\\n\\nb\"},"
                 "\"raw\":null}");
    assert_string_equal(out.events[2].type, "item.completed");
    assert_int_equal(out.events[2].turn_end, 1);
    assert_int_equal(out.events[0].turn_end, 0);
    assert_int_equal(out.events[1].turn_end, 0);

    /* Streamed already: neither companion. */
    apply(n, conv_item("item.started", "message", "assistant", "in_progress", "m2", json_array()),
          &out, 1);
    apply(n, event_conversion("item.delta", event_delta_data("", "m2", "hi")), &out, 1);
    apply(n, conv_item("item.completed", "message", "assistant", "completed", "m2",
                       text_content("hi")),
          &out, 1);

    /* No text at all: only the started companion. */
    apply(n, conv_item("item.completed", "message", "user", "completed", NULL,
                       json_pack("[o]", event_part_image("p", NULL))),
          &out, 2);
    assert_string_equal(out.events[0].type, "item.started");
    assert_string_equal(out.events[1].type, "item.completed");

    /* Not a message: no delta even with text. */
    apply(n, conv_item("item.completed", "tool_result", "tool", "completed", NULL,
                       text_content("out")),
          &out, 2);
    assert_string_equal(out.events[1].type, "item.completed");

    /* A message without a native id: the delta carries null. */
    apply(n, conv_item("item.completed", "message", "user", "completed", NULL,
                       text_content("q")),
          &out, 3);
    expect_event(&out, 1, 12, "item.delta",
                 DAEMON(12, "item.delta")
                 "{\"item_id\":\"itm_5\",\"native_item_id\":null,\"delta\":\"q\"},\"raw\":null}");

    normalize_output_clear(&out);
    normalize_free(n);
}

static void test_session_started_once(void **state)
{
    (void)state;
    normalize_t *n = make(1, 0, 1);
    struct normalize_output out;
    normalize_output_init(&out);
    apply(n, event_conversion("session.started", event_session_started_data(NULL)), &out, 1);
    expect_event(&out, 0, 1, "session.started",
                 AGENT(1, "session.started") "{\"metadata\":null},\"raw\":null}");
    apply(n, event_synthetic(event_conversion("session.started",
                                              event_session_started_data(NULL))),
          &out, 0);
    assert_int_equal(normalize_last_sequence(n), 1);
    normalize_output_clear(&out);
    normalize_free(n);
}

static void test_repeated_item_started_dropped(void **state)
{
    (void)state;
    normalize_t *n = make(1, 0, 1);
    struct normalize_output out;
    normalize_output_init(&out);
    apply(n, conv_item("item.started", "tool_call", NULL, "in_progress", "t1", json_array()),
          &out, 1);
    apply(n, conv_item("item.started", "tool_call", NULL, "in_progress", "t1", json_array()),
          &out, 0);
    json_t *again = conv_item("item.started", "status", NULL, "in_progress", NULL, json_array());
    json_object_set_new(json_object_get(json_object_get(again, "data"), "item"), "item_id",
                        json_string("itm_1"));
    apply(n, again, &out, 0);
    assert_int_equal(normalize_last_sequence(n), 1);
    normalize_output_clear(&out);
    normalize_free(n);
}

/* Ids an adapter names itself must not be confused with the "itm_N" ids the
 * normalizer hands out, however alike they look. */
static void test_adapter_named_item_ids(void **state)
{
    (void)state;
    static const char *const ids[] = {"itm_7", "itm_007", "itm_70", "custom",
                                      "itm_99999999999", "itm_", "itm_16777216"};
    const size_t n_ids = sizeof ids / sizeof ids[0];
    normalize_t *n = make(1, 0, 1);
    struct normalize_output out;
    normalize_output_init(&out);
    for (size_t i = 0; i < n_ids; i++) {
        json_t *c = conv_item("item.started", "tool_call", NULL, "in_progress", NULL,
                              json_array());
        json_object_set_new(json_object_get(json_object_get(c, "data"), "item"), "item_id",
                            json_string(ids[i]));
        apply(n, c, &out, 1);
        /* Seen once each: starting any of them again is dropped. */
        for (size_t j = 0; j <= i; j++) {
            c = conv_item("item.started", "tool_call", NULL, "in_progress", NULL, json_array());
            json_object_set_new(json_object_get(json_object_get(c, "data"), "item"),
                                "item_id", json_string(ids[j]));
            apply(n, c, &out, 0);
        }
    }
    /* A completion of an id never started gets its synthetic start, even when
     * it differs from a started one only by a leading zero. */
    json_t *c = conv_item("item.completed", "tool_call", NULL, "completed", NULL, json_array());
    json_object_set_new(json_object_get(json_object_get(c, "data"), "item"), "item_id",
                        json_string("itm_0070"));
    apply(n, c, &out, 2);
    assert_string_equal(out.events[0].type, "item.started");
    c = conv_item("item.completed", "tool_call", NULL, "completed", NULL, json_array());
    json_object_set_new(json_object_get(json_object_get(c, "data"), "item"), "item_id",
                        json_string("itm_70"));
    apply(n, c, &out, 1);
    normalize_output_clear(&out);
    normalize_free(n);
}

static void test_session_ended_for_resumable_agent(void **state)
{
    (void)state;
    normalize_t *n = make(1, 1, 1);
    struct normalize_output out;
    normalize_output_init(&out);
    apply(n, event_conversion("session.ended",
                              event_session_ended_data("completed", "agent", NULL, 0, NULL)),
          &out, 0);
    assert_int_equal(out.ended, 0);
    assert_int_equal(normalize_is_ended(n), 0);
    apply(n, event_synthetic(event_conversion(
                 "session.ended", event_session_ended_data("terminated", "daemon", NULL, -1,
                                                           NULL))),
          &out, 1);
    expect_event(&out, 0, 1, "session.ended",
                 DAEMON(1, "session.ended")
                 "{\"reason\":\"terminated\",\"terminated_by\":\"daemon\"},\"raw\":null}");
    assert_int_equal(out.ended, 1);
    assert_int_equal(out.events[0].turn_end, 1);
    assert_int_equal(normalize_is_ended(n), 1);
    normalize_output_clear(&out);
    normalize_free(n);

    n = make(1, 0, 1);
    normalize_output_init(&out);
    apply(n, event_conversion("session.ended",
                              event_session_ended_data("error", "agent", "crash", 3, NULL)),
          &out, 1);
    expect_event(&out, 0, 1, "session.ended",
                 AGENT(1, "session.ended")
                 "{\"reason\":\"error\",\"terminated_by\":\"agent\",\"message\":\"crash\","
                 "\"exit_code\":3},\"raw\":null}");
    assert_int_equal(out.ended, 1);
    normalize_output_clear(&out);
    normalize_free(n);
}

static void test_parent_id_mapped_to_item_id(void **state)
{
    (void)state;
    normalize_t *n = make(1, 0, 1);
    struct normalize_output out;
    normalize_output_init(&out);
    json_t *c = conv_item("item.started", "tool_call", NULL, "in_progress", "part1", json_array());
    json_object_set_new(json_object_get(json_object_get(c, "data"), "item"), "parent_id",
                        json_string("msg9"));
    apply(n, c, &out, 1);
    expect_event(&out, 0, 1, "item.started",
                 AGENT(1, "item.started")
                 "{\"item\":{\"item_id\":\"itm_1\",\"native_item_id\":\"part1\","
                 "\"parent_id\":\"itm_2\",\"kind\":\"tool_call\",\"role\":null,\"content\":[],"
                 "\"status\":\"in_progress\"}},\"raw\":null}");
    /* The parent's own events reuse the id it was given as a parent. */
    apply(n, conv_item("item.started", "message", "assistant", "in_progress", "msg9",
                       json_array()),
          &out, 1);
    assert_non_null(strstr(out.events[0].json, "\"item_id\":\"itm_2\",\"native_item_id\":\"msg9\""));
    /* Already an item id: left alone. */
    c = conv_item("item.started", "tool_call", NULL, "in_progress", NULL, json_array());
    json_object_set_new(json_object_get(json_object_get(c, "data"), "item"), "parent_id",
                        json_string("itm_1"));
    apply(n, c, &out, 1);
    assert_non_null(strstr(out.events[0].json, "\"item_id\":\"itm_3\",\"native_item_id\":null,"
                                               "\"parent_id\":\"itm_1\""));
    normalize_output_clear(&out);
    normalize_free(n);
}

/* A native parent id seen only as a parent_id gets its item id where no
 * event records it: it comes out as an alias, and a normalizer rebuilt from
 * the events plus the alias gives the parent that id again. */
static void test_parent_only_native_id_is_an_alias(void **state)
{
    (void)state; /* cmocka fixture unused */
    normalize_t *a = make(1, 0, 1), *b = make(1, 0, 1), *c = make(1, 0, 1);
    struct normalize_output out;
    struct err err = {0};
    normalize_output_init(&out);
    json_t *child = conv_item("item.started", "tool_call", NULL, "in_progress", "part1",
                              json_array());
    json_object_set_new(json_object_get(json_object_get(child, "data"), "item"), "parent_id",
                        json_string("msg9"));
    apply(a, child, &out, 1);
    assert_int_equal(out.n_aliases, 1);
    assert_string_equal(out.aliases[0].native_id, "msg9");
    assert_string_equal(out.aliases[0].item_id, "itm_2");
    /* b is rebuilt with the alias, c without it */
    for (size_t i = 0; i < out.count; i++) {
        assert_int_equal(normalize_replay(b, out.events[i].json, out.events[i].json_len, &err), 0);
        assert_int_equal(normalize_replay(c, out.events[i].json, out.events[i].json_len, &err), 0);
    }
    assert_int_equal(normalize_add_alias(b, "msg9", "itm_2"), 0);
    assert_int_equal(normalize_add_alias(b, "msg9", "bogus"), ERR_INVALID);

    json_t *parent = conv_item("item.started", "message", "assistant", "in_progress", "msg9",
                               json_array());
    json_t *parent_again = json_deep_copy(parent);
    json_t *parent_third = json_deep_copy(parent);
    apply(a, parent, &out, 1);
    assert_int_equal(out.n_aliases, 0); /* its own native id is recorded now */
    char *want = strdup(out.events[0].json);
    assert_non_null(strstr(want, "\"item_id\":\"itm_2\",\"native_item_id\":\"msg9\""));
    apply(b, parent_again, &out, 1);
    assert_string_equal(out.events[0].json, want);
    apply(c, parent_third, &out, 1); /* what a rebuild without the alias would do */
    assert_null(strstr(out.events[0].json, "\"item_id\":\"itm_2\""));
    free(want);

    /* a refused conversion leaves no alias behind */
    json_t *bad = conv_item("item.started", "tool_call", NULL, "in_progress", "p2", json_array());
    json_object_set_new(json_object_get(json_object_get(bad, "data"), "item"), "parent_id",
                        json_string("msg10"));
    json_object_set_new(bad, "source", json_string("nobody"));
    normalize_output_clear(&out);
    assert_int_equal(normalize_apply(a, bad, T, &out, &err), ERR_INVALID);
    json_decref(bad);
    assert_int_equal(out.n_aliases, 0);
    normalize_output_clear(&out);
    normalize_free(a);
    normalize_free(b);
    normalize_free(c);
}

static void test_pending_permissions_and_questions(void **state)
{
    (void)state;
    normalize_t *n = make(1, 0, 1);
    struct normalize_output out;
    normalize_output_init(&out);
    apply(n, event_conversion("permission.requested",
                              event_permission_data("p1", "bash", "requested",
                                                    json_pack("{s:s}", "cmd", "ls"))),
          &out, 1);
    assert_int_equal(out.events[0].turn_end, 1);
    /* Built in another order and without metadata: kept as journaled. */
    apply(n, event_conversion("permission.requested",
                              json_pack("{s:s,s:s,s:s}", "status", "requested", "action", "w",
                                        "permission_id", "p2")),
          &out, 1);
    const json_t *p1 = normalize_pending_permission(n, "p1");
    assert_non_null(p1);
    assert_string_equal(json_string_value(json_object_get(p1, "action")), "bash");
    assert_string_equal(json_string_value(json_object_get(json_object_get(p1, "metadata"), "cmd")),
                        "ls");
    const json_t *p2 = normalize_pending_permission(n, "p2");
    assert_non_null(p2);
    assert_true(json_is_null(json_object_get(p2, "metadata")));
    assert_string_equal(json_object_iter_key(json_object_iter((json_t *)p2)), "permission_id");

    apply(n, event_conversion("permission.resolved",
                              event_permission_data("p1", "bash", "approved", NULL)),
          &out, 1);
    assert_int_equal(out.events[0].turn_end, 0);
    assert_null(normalize_pending_permission(n, "p1"));
    assert_non_null(normalize_pending_permission(n, "p2"));

    apply(n, event_conversion("question.requested",
                              event_question_data("q1", "Which?", json_pack("[s]", "x"), NULL,
                                                  "requested")),
          &out, 1);
    assert_int_equal(out.events[0].turn_end, 1);
    const json_t *q = normalize_pending_question(n, "q1");
    assert_non_null(q);
    assert_string_equal(json_string_value(json_object_get(q, "prompt")), "Which?");
    assert_null(normalize_pending_question(n, "q2"));
    apply(n, event_conversion("question.resolved",
                              event_question_data("q1", "Which?", json_array(), "x", "answered")),
          &out, 1);
    assert_null(normalize_pending_question(n, "q1"));
    normalize_output_clear(&out);
    normalize_free(n);
}

static void test_native_session_id(void **state)
{
    (void)state;
    normalize_t *n = make(1, 0, 1);
    struct normalize_output out;
    normalize_output_init(&out);
    assert_null(normalize_native_session_id(n));
    apply(n, event_conversion("error", event_error_data("e", NULL, NULL)), &out, 1);
    assert_int_equal(out.native_session_changed, 0);
    assert_non_null(strstr(out.events[0].json, "\"native_session_id\":null,"));

    apply(n, event_with_native_session(
                 event_conversion("error", event_error_data("e", NULL, NULL)), "nat1"),
          &out, 1);
    assert_int_equal(out.native_session_changed, 1);
    assert_string_equal(normalize_native_session_id(n), "nat1");

    /* Lent to conversions without one; a conversion's own id wins for it. */
    apply(n, event_conversion("error", event_error_data("e", NULL, NULL)), &out, 1);
    assert_int_equal(out.native_session_changed, 0);
    assert_non_null(strstr(out.events[0].json, "\"native_session_id\":\"nat1\","));
    apply(n, event_with_native_session(
                 event_conversion("error", event_error_data("e", NULL, NULL)), "nat2"),
          &out, 1);
    assert_int_equal(out.native_session_changed, 0);
    assert_non_null(strstr(out.events[0].json, "\"native_session_id\":\"nat2\","));
    assert_string_equal(normalize_native_session_id(n), "nat1");
    normalize_output_clear(&out);
    normalize_free(n);

    /* Set by the session layer up front: not "learned" from a conversion. */
    n = make(1, 0, 1);
    normalize_output_init(&out);
    assert_int_equal(normalize_set_native_session_id(n, "pre"), 0);
    apply(n, event_conversion("error", event_error_data("e", NULL, NULL)), &out, 1);
    assert_int_equal(out.native_session_changed, 0);
    expect_event(&out, 0, 1, "error",
                 EV(1, "\"pre\"", "false", "agent", "error")
                 "{\"message\":\"e\",\"code\":null,\"details\":null},\"raw\":null}");
    assert_int_equal(out.events[0].turn_end, 1);
    normalize_output_clear(&out);
    normalize_free(n);
}

static void test_turn_end_flags(void **state)
{
    (void)state;
    normalize_t *codex = make(1, 1, 0);
    struct normalize_output out;
    normalize_output_init(&out);
    apply(codex, conv_item("item.completed", "message", "assistant", "completed", "m",
                           text_content("x")),
          &out, 3);
    assert_int_equal(out.events[2].turn_end, 0);
    apply(codex, conv_item("item.completed", "status", NULL, "completed", NULL,
                           json_pack("[o]", event_part_status("turn.completed", NULL))),
          &out, 2);
    assert_int_equal(out.events[0].turn_end, 0);
    assert_int_equal(out.events[1].turn_end, 1);
    apply(codex, event_conversion("agent.unparsed", event_unparsed_data("e", "l", NULL)), &out,
          1);
    assert_int_equal(out.events[0].turn_end, 1);
    normalize_output_clear(&out);
    normalize_free(codex);
}

static int apply_rc(normalize_t *n, json_t *conv, struct normalize_output *out)
{
    struct err err = {0};
    int rc = normalize_apply(n, conv, T, out, &err);
    json_decref(conv);
    if (rc)
        assert_int_equal(err.code, rc);
    return rc;
}

/* Applies the same conversions to both and requires identical output. */
static void expect_same(normalize_t *a, normalize_t *b, json_t *conv /* stolen */)
{
    struct normalize_output oa, ob;
    struct err err = {0};
    normalize_output_init(&oa);
    normalize_output_init(&ob);
    assert_non_null(conv);
    assert_int_equal(normalize_apply(a, conv, T, &oa, &err), 0);
    assert_int_equal(normalize_apply(b, conv, T, &ob, &err), 0);
    json_decref(conv);
    assert_int_equal(oa.count, ob.count);
    assert_int_equal(oa.ended, ob.ended);
    assert_int_equal(oa.native_session_changed, ob.native_session_changed);
    for (size_t i = 0; i < oa.count; i++) {
        assert_int_equal(oa.events[i].sequence, ob.events[i].sequence);
        assert_string_equal(oa.events[i].type, ob.events[i].type);
        assert_int_equal(oa.events[i].json_len, ob.events[i].json_len);
        assert_memory_equal(oa.events[i].json, ob.events[i].json, oa.events[i].json_len);
        assert_int_equal(oa.events[i].turn_end, ob.events[i].turn_end);
        if (oa.events[i].raw)
            assert_string_equal(oa.events[i].raw, ob.events[i].raw);
        else
            assert_null(ob.events[i].raw);
    }
    normalize_output_clear(&oa);
    normalize_output_clear(&ob);
}

static void test_malformed_conversion_leaves_state(void **state)
{
    (void)state;
    normalize_t *n = make(0, 0, 1);
    normalize_t *fresh = make(0, 0, 1);
    struct normalize_output out;
    normalize_output_init(&out);

    json_t *start = normalize_pending_assistant_start(n);
    json_t *start2 = normalize_pending_assistant_start(fresh);
    apply(n, start, &out, 1);
    normalize_output_clear(&out);
    assert_int_equal(apply_rc(fresh, start2, &out), 0);
    normalize_output_clear(&out);

    /* One good event stays in `out` and must survive the failures. */
    assert_int_equal(apply_rc(n, event_conversion("error", event_error_data("e", NULL, NULL)),
                              &out),
                     0);
    assert_int_equal(apply_rc(fresh, event_conversion("error", event_error_data("e", NULL, NULL)),
                              &out),
                     0);
    assert_int_equal(out.count, 2);

    json_t *bad[9];
    bad[0] = json_string("not an object");
    bad[1] = event_conversion("item.finished", json_object());
    bad[2] = event_conversion("item.completed", json_object());
    /* An assistant message with a bad status must not pop the pending queue. */
    bad[3] = conv_item("item.completed", "message", "assistant", "done", "m", text_content("x"));
    bad[4] = event_conversion("error", event_error_data("e", NULL, NULL));
    json_object_set_new(bad[4], "synthetic", json_string("yes"));
    bad[5] = event_conversion("error", event_error_data("e", NULL, NULL));
    json_object_set_new(bad[5], "source", json_string("user"));
    bad[6] = event_conversion("error", event_error_data("e", NULL, NULL));
    json_object_set_new(bad[6], "native_session_id", json_integer(4));
    bad[7] = json_pack("{s:s,s:s}", "type", "session.started", "data", "x");
    bad[8] = event_with_native_session(
        conv_item("item.delta", "message", "assistant", "completed", "m", json_array()), "ns");
    for (size_t i = 0; i < 9; i++) {
        assert_non_null(bad[i]);
        assert_int_equal(apply_rc(n, bad[i], &out), ERR_INVALID);
        assert_int_equal(out.count, 2);
        assert_int_equal(out.native_session_changed, 0);
    }
    assert_int_equal(normalize_last_sequence(n), 2);
    assert_null(normalize_native_session_id(n));
    normalize_output_clear(&out);

    /* The failures changed nothing a later conversion could see. */
    expect_same(n, fresh, event_with_native_session(
                              conv_item("item.completed", "message", "assistant", "completed",
                                        "m", text_content("x")),
                              "ns"));
    expect_same(n, fresh, event_conversion("item.delta", event_delta_data("", NULL, "d")));

    normalize_free(n);
    normalize_free(fresh);
}

static void test_pending_assistant_retargeting(void **state)
{
    (void)state;
    normalize_t *n = make(0, 1, 1);
    struct normalize_output out;
    normalize_output_init(&out);

    json_t *start = normalize_pending_assistant_start(n);
    assert_non_null(start);
    assert_true(json_is_true(json_object_get(start, "synthetic")));
    apply(n, start, &out, 1);
    expect_event(&out, 0, 1, "item.started",
                 DAEMON(1, "item.started")
                 "{\"item\":{\"item_id\":\"itm_1\",\"native_item_id\":"
                 "\"s1_pending_assistant_1\",\"parent_id\":null,\"kind\":\"message\","
                 "\"role\":\"assistant\",\"content\":[],\"status\":\"in_progress\"}},"
                 "\"raw\":null}");

    /* The agent's own start of an assistant message is dropped... */
    apply(n, conv_item("item.started", "message", "assistant", "in_progress", "msg_a",
                       json_array()),
          &out, 0);
    /* ...but other items start normally. */
    apply(n, conv_item("item.started", "tool_call", "assistant", "in_progress", "tool_a",
                       json_array()),
          &out, 1);
    assert_non_null(strstr(out.events[0].json, "\"item_id\":\"itm_2\",\"native_item_id\":\"tool_a\""));

    /* Deltas go to the pending item, except the user's. */
    apply(n, event_conversion("item.delta", event_delta_data("", "msg_a", "Hel")), &out, 1);
    expect_event(&out, 0, 3, "item.delta",
                 AGENT(3, "item.delta")
                 "{\"item_id\":\"itm_1\",\"native_item_id\":\"s1_pending_assistant_1\","
                 "\"delta\":\"Hel\"},\"raw\":null}");
    apply(n, event_conversion("item.delta", event_delta_data("itm_77", NULL, "lo")), &out, 1);
    assert_non_null(strstr(out.events[0].json, "{\"item_id\":\"itm_1\",\"native_item_id\":"
                                               "\"s1_pending_assistant_1\",\"delta\":\"lo\"}"));
    apply(n, event_conversion("item.delta", event_delta_data("", "user_1", "me")), &out, 1);
    assert_non_null(strstr(out.events[0].json, "{\"item_id\":\"itm_3\",\"native_item_id\":"
                                               "\"user_1\",\"delta\":\"me\"}"));

    /* The completed message takes the pending item: no companions. */
    apply(n, conv_item("item.completed", "message", "assistant", "completed", "msg_a",
                       text_content("Hello")),
          &out, 1);
    expect_event(&out, 0, 6, "item.completed",
                 AGENT(6, "item.completed")
                 "{\"item\":{\"item_id\":\"itm_1\",\"native_item_id\":"
                 "\"s1_pending_assistant_1\",\"parent_id\":null,\"kind\":\"message\","
                 "\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Hello\"}],"
                 "\"status\":\"completed\"}},\"raw\":null}");
    assert_int_equal(out.events[0].turn_end, 1);

    /* Queue empty: nothing is re-targeted any more. */
    apply(n, event_conversion("item.delta", event_delta_data("", "msg_b", "x")), &out, 1);
    assert_non_null(strstr(out.events[0].json, "{\"item_id\":\"itm_4\",\"native_item_id\":"
                                               "\"msg_b\""));
    apply(n, conv_item("item.completed", "message", "assistant", "completed", "msg_b",
                       text_content("x")),
          &out, 2);
    assert_non_null(strstr(out.events[0].json, "\"item_id\":\"itm_4\",\"native_item_id\":"
                                               "\"msg_b\""));
    assert_string_equal(out.events[0].type, "item.started");

    json_t *next = normalize_pending_assistant_start(n);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(next, "data"), "item"),
                            "native_item_id")),
                        "s1_pending_assistant_2");
    json_decref(next);

    normalize_output_clear(&out);
    normalize_free(n);
}

/* Feeds every event `a` produced for `conv` into `b`'s replay. */
static void apply_and_replay(normalize_t *a, normalize_t *b, json_t *conv)
{
    struct normalize_output out;
    struct err err = {0};
    normalize_output_init(&out);
    assert_non_null(conv);
    assert_int_equal(normalize_apply(a, conv, T, &out, &err), 0);
    json_decref(conv);
    for (size_t i = 0; i < out.count; i++)
        assert_int_equal(normalize_replay(b, out.events[i].json, out.events[i].json_len, &err),
                         0);
    normalize_output_clear(&out);
}

static void test_replay_equivalence(void **state)
{
    (void)state;
    normalize_t *a = make(1, 0, 1);
    normalize_t *b = make(1, 0, 1);

    apply_and_replay(a, b, event_conversion("session.started", event_session_started_data(NULL)));
    apply_and_replay(a, b, event_with_native_session(
                               conv_item("item.started", "message", "user", "in_progress", "u1",
                                         json_array()),
                               "nat"));
    apply_and_replay(a, b, event_conversion("item.delta", event_delta_data("", "m1", "par")));
    apply_and_replay(a, b, conv_item("item.completed", "tool_call", NULL, "completed", "t1",
                                     json_array()));
    apply_and_replay(a, b, event_conversion("item.delta", event_delta_data("", NULL, "anon")));
    apply_and_replay(a, b, event_conversion("permission.requested",
                                            event_permission_data("p1", "bash", "requested",
                                                                  NULL)));
    apply_and_replay(a, b, event_conversion("permission.requested",
                                            event_permission_data("p2", "bash", "requested",
                                                                  NULL)));
    apply_and_replay(a, b, event_conversion("permission.resolved",
                                            event_permission_data("p1", "bash", "denied", NULL)));
    apply_and_replay(a, b, event_conversion("question.requested",
                                            event_question_data("q1", "?", json_array(), NULL,
                                                                "requested")));

    /* Last allocation is a parent's, visible only as parent_id. */
    json_t *child = conv_item("item.started", "tool_call", NULL, "in_progress", "c1",
                              json_array());
    json_object_set_new(json_object_get(json_object_get(child, "data"), "item"), "parent_id",
                        json_string("msgX"));
    apply_and_replay(a, b, child);

    assert_int_equal(normalize_last_sequence(b), normalize_last_sequence(a));
    assert_string_equal(normalize_native_session_id(b), "nat");
    assert_null(normalize_pending_permission(b, "p1"));
    assert_true(json_equal((json_t *)normalize_pending_permission(a, "p2"),
                           (json_t *)normalize_pending_permission(b, "p2")));
    assert_true(json_equal((json_t *)normalize_pending_question(a, "q1"),
                           (json_t *)normalize_pending_question(b, "q1")));
    assert_int_equal(normalize_is_ended(b), 0);

    /* Same ids for known natives, fresh ids continue, dedup sets agree. */
    expect_same(a, b, event_conversion("session.started", event_session_started_data(NULL)));
    expect_same(a, b, conv_item("item.started", "message", "user", "in_progress", "u1",
                                json_array()));
    expect_same(a, b, conv_item("item.completed", "message", "assistant", "completed", "m1",
                                text_content("par")));
    expect_same(a, b, conv_item("item.completed", "message", "user", "completed", "u1",
                                text_content("hello")));
    expect_same(a, b, conv_item("item.completed", "tool_call", NULL, "completed", "t1",
                                json_array()));
    expect_same(a, b, event_conversion("item.delta", event_delta_data("", "new", "n")));
    expect_same(a, b, event_conversion("session.ended",
                                       event_session_ended_data("completed", "agent", NULL, 0,
                                                                NULL)));
    assert_int_equal(normalize_is_ended(a), 1);
    assert_int_equal(normalize_is_ended(b), 1);
    normalize_free(a);
    normalize_free(b);
}

static void test_replay_equivalence_pending_assistant(void **state)
{
    (void)state;
    normalize_t *a = make(0, 1, 1);
    normalize_t *b = make(0, 1, 1);

    apply_and_replay(a, b, normalize_pending_assistant_start(a));
    apply_and_replay(a, b, event_conversion("item.delta", event_delta_data("", "x", "one")));
    apply_and_replay(a, b, normalize_pending_assistant_start(a));
    apply_and_replay(a, b, conv_item("item.completed", "message", "assistant", "completed", "x",
                                     text_content("one")));

    /* Both still have pending_assistant_2 queued and counter 2. */
    expect_same(a, b, event_conversion("item.delta", event_delta_data("", "y", "two")));
    expect_same(a, b, conv_item("item.completed", "message", "assistant", "completed", "y",
                                text_content("two")));
    expect_same(a, b, conv_item("item.completed", "message", "assistant", "completed", "z",
                                text_content("three")));
    json_t *sa = normalize_pending_assistant_start(a);
    json_t *sb = normalize_pending_assistant_start(b);
    assert_true(json_equal(sa, sb));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(sb, "data"), "item"),
                            "native_item_id")),
                        "s1_pending_assistant_3");
    expect_same(a, b, sa);
    json_decref(sb);
    normalize_free(a);
    normalize_free(b);
}

static void test_replay_rejects_foreign_or_out_of_order(void **state)
{
    (void)state;
    normalize_t *n = make(1, 0, 1);
    struct err err = {0};
    const char *ok = AGENT(1, "error") "{\"message\":\"e\",\"code\":null,\"details\":null},"
                                      "\"raw\":null}";
    const char *gap = AGENT(3, "error") "{\"message\":\"e\",\"code\":null,\"details\":null},"
                                       "\"raw\":null}";
    const char *other = "{\"event_id\":\"evt_2\",\"sequence\":2,\"time\":\"" T "\","
                        "\"session_id\":\"s2\",\"native_session_id\":null,\"synthetic\":false,"
                        "\"source\":\"agent\",\"type\":\"error\",\"data\":{\"message\":\"e\","
                        "\"code\":null,\"details\":null},\"raw\":null}";
    const char *bad_type = AGENT(2, "item.started") "{\"message\":\"e\"},\"raw\":null}";

    assert_int_equal(normalize_replay(n, ok, strlen(ok), &err), 0);
    assert_int_equal(normalize_last_sequence(n), 1);
    assert_int_equal(normalize_replay(n, ok, strlen(ok), &err), ERR_INVALID);
    assert_int_equal(normalize_replay(n, gap, strlen(gap), &err), ERR_INVALID);
    assert_int_equal(normalize_replay(n, other, strlen(other), &err), ERR_INVALID);
    assert_int_equal(normalize_replay(n, bad_type, strlen(bad_type), &err), ERR_INVALID);
    assert_int_equal(normalize_replay(n, "{", 1, &err), ERR_INVALID);
    assert_int_equal(err.code, ERR_INVALID);
    assert_int_equal(normalize_last_sequence(n), 1);
    normalize_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_item_ids_and_sequences),
        cmocka_unit_test(test_synthetic_started_before_unstarted_completed),
        cmocka_unit_test(test_synthetic_delta_for_message_without_delta),
        cmocka_unit_test(test_session_started_once),
        cmocka_unit_test(test_repeated_item_started_dropped),
        cmocka_unit_test(test_adapter_named_item_ids),
        cmocka_unit_test(test_session_ended_for_resumable_agent),
        cmocka_unit_test(test_parent_id_mapped_to_item_id),
        cmocka_unit_test(test_parent_only_native_id_is_an_alias),
        cmocka_unit_test(test_pending_permissions_and_questions),
        cmocka_unit_test(test_native_session_id),
        cmocka_unit_test(test_turn_end_flags),
        cmocka_unit_test(test_malformed_conversion_leaves_state),
        cmocka_unit_test(test_pending_assistant_retargeting),
        cmocka_unit_test(test_replay_equivalence),
        cmocka_unit_test(test_replay_equivalence_pending_assistant),
        cmocka_unit_test(test_replay_rejects_foreign_or_out_of_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
