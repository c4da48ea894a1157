/* event.c: builders, the canonical serialization of every event type and
 * content part, and the turn-end predicate. */
#include "events/event.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T "2026-11-23T11:30:00.123456Z"
#define ENVELOPE(seq, native, synthetic, source, type)                                    \
    "{\"event_id\":\"evt_" #seq "\",\"sequence\":" #seq ",\"time\":\"" T                  \
    "\",\"session_id\":\"s1\",\"native_session_id\":" native ",\"synthetic\":" synthetic \
    ",\"source\":\"" source "\",\"type\":\"" type "\",\"data\":"

/* Serializes `data` (stolen) as event 1 of session s1 and checks the text. */
static void check_event(const char *type, json_t *data, const char *expected)
{
    size_t len = 0;
    assert_non_null(data);
    char *s = event_serialize(1, T, "s1", NULL, 0, "agent", type, data, &len);
    json_decref(data);
    assert_non_null(s);
    assert_string_equal(s, expected);
    assert_int_equal(len, strlen(expected));
    assert_int_equal(memcmp(s + len - EVENT_RAW_SUFFIX_LEN, EVENT_RAW_SUFFIX,
                            EVENT_RAW_SUFFIX_LEN),
                     0);
    free(s);
}

/* Serializes an item.started whose item holds the one `part` (stolen). */
static void check_part(json_t *part, const char *expected_part)
{
    json_t *content = json_array();
    assert_non_null(part);
    assert_int_equal(json_array_append_new(content, part), 0);
    json_t *item = event_item("message", "assistant", "in_progress", NULL, content);
    char expected[1024];
    snprintf(expected, sizeof expected,
             ENVELOPE(1, "null", "false", "agent", "item.started")
             "{\"item\":{\"item_id\":\"\",\"native_item_id\":null,\"parent_id\":null,"
             "\"kind\":\"message\",\"role\":\"assistant\",\"content\":[%s],"
             "\"status\":\"in_progress\"}},\"raw\":null}",
             expected_part);
    check_event("item.started", event_item_data(item), expected);
}

static void test_conversion_builders(void **state)
{
    (void)state;
    json_t *c = event_with_raw(
        event_with_native_session(
            event_synthetic(event_conversion("error", event_error_data("boom", NULL, NULL))),
            "nat-1"),
        json_pack("{s:i}", "n", 1));
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "type")), "error");
    assert_true(json_is_true(json_object_get(c, "synthetic")));
    assert_string_equal(json_string_value(json_object_get(c, "source")), "daemon");
    assert_string_equal(json_string_value(json_object_get(c, "native_session_id")), "nat-1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "raw"), "n")), 1);
    json_decref(c);

    c = event_with_native_session(event_conversion("session.started",
                                                   event_session_started_data(NULL)),
                                  NULL);
    assert_non_null(c);
    assert_true(json_is_false(json_object_get(c, "synthetic")));
    assert_string_equal(json_string_value(json_object_get(c, "source")), "agent");
    assert_null(json_object_get(c, "native_session_id"));
    assert_null(json_object_get(c, "raw"));
    json_decref(c);
}

/* A NULL stolen argument (a failed inner builder) fails the whole chain and
 * frees everything else it was given; ASan reports any leak. */
static void test_builders_propagate_null(void **state)
{
    (void)state;
    assert_null(event_conversion("item.started", event_item_data(NULL)));
    assert_null(event_item("message", NULL, "completed", NULL, NULL));
    assert_null(event_item("message", NULL, NULL, NULL, json_array()));
    assert_null(event_question_data("q", NULL, json_array(), NULL, "requested"));
    assert_null(event_part_json(NULL));
    assert_null(event_with_raw(event_conversion("error", event_error_data("m", NULL, NULL)),
                               NULL));
    assert_null(event_synthetic(NULL));
    assert_null(event_conversion(NULL, json_object()));
    assert_null(event_part_text(NULL));
    assert_null(event_session_ended_data(NULL, "agent", NULL, -1, json_object()));
}

static void test_serialize_session_started(void **state)
{
    (void)state;
    check_event("session.started", event_session_started_data(NULL),
                ENVELOPE(1, "null", "false", "agent", "session.started")
                "{\"metadata\":null},\"raw\":null}");
    check_event("session.started",
                event_session_started_data(json_pack("{s:s,s:[i,b]}", "z", "é/", "a", 1, 1)),
                ENVELOPE(1, "null", "false", "agent", "session.started")
                "{\"metadata\":{\"z\":\"é/\",\"a\":[1,true]}},\"raw\":null}");
    /* Envelope variants: native id, synthetic, daemon, large sequence. */
    json_t *d = event_session_started_data(NULL);
    char *s = event_serialize(18446744073709551615ULL, T, "s1", "nat", 1, "daemon",
                              "session.started", d, NULL);
    json_decref(d);
    assert_non_null(s);
    assert_string_equal(s, "{\"event_id\":\"evt_18446744073709551615\",\"sequence\":"
                           "18446744073709551615,\"time\":\"" T "\",\"session_id\":\"s1\","
                           "\"native_session_id\":\"nat\",\"synthetic\":true,\"source\":"
                           "\"daemon\",\"type\":\"session.started\",\"data\":{\"metadata\":"
                           "null},\"raw\":null}");
    free(s);
}

static void test_serialize_session_ended_omits_absent(void **state)
{
    (void)state;
    check_event("session.ended", event_session_ended_data("completed", "agent", NULL, -1, NULL),
                ENVELOPE(1, "null", "false", "agent", "session.ended")
                "{\"reason\":\"completed\",\"terminated_by\":\"agent\"},\"raw\":null}");
    json_t *err = json_pack("{s:b,s:s,s:i,s:s}", "truncated", 1, "tail", "t", "total_lines",
                            300, "head", "h");
    check_event("session.ended", event_session_ended_data("error", "daemon", "died", 2, err),
                ENVELOPE(1, "null", "false", "agent", "session.ended")
                "{\"reason\":\"error\",\"terminated_by\":\"daemon\",\"message\":\"died\","
                "\"exit_code\":2,\"stderr\":{\"head\":\"h\",\"tail\":\"t\",\"truncated\":true,"
                "\"total_lines\":300}},\"raw\":null}");
    /* Explicit nulls are None too, so skip-if-none fields vanish. */
    check_event("session.ended",
                json_pack("{s:s,s:n,s:n,s:s,s:{s:n,s:b}}", "terminated_by", "agent", "message",
                          "exit_code", "reason", "terminated", "stderr", "head", "truncated", 0),
                ENVELOPE(1, "null", "false", "agent", "session.ended")
                "{\"reason\":\"terminated\",\"terminated_by\":\"agent\","
                "\"stderr\":{\"truncated\":false}},\"raw\":null}");
}

static void test_serialize_item_and_delta(void **state)
{
    (void)state;
    json_t *content = json_array();
    json_array_append_new(content, event_part_text("hi"));
    json_t *item = event_item("message", "assistant", "completed", "n1", content);
    json_object_set_new(item, "item_id", json_string("itm_3"));
    json_object_set_new(item, "parent_id", json_string("itm_1"));
    check_event("item.completed", event_item_data(item),
                ENVELOPE(1, "null", "false", "agent", "item.completed")
                "{\"item\":{\"item_id\":\"itm_3\",\"native_item_id\":\"n1\","
                "\"parent_id\":\"itm_1\",\"kind\":\"message\",\"role\":\"assistant\","
                "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"status\":\"completed\"}},"
                "\"raw\":null}");
    check_event("item.started",
                event_item_data(event_item("tool_call", NULL, "in_progress", NULL, json_array())),
                ENVELOPE(1, "null", "false", "agent", "item.started")
                "{\"item\":{\"item_id\":\"\",\"native_item_id\":null,\"parent_id\":null,"
                "\"kind\":\"tool_call\",\"role\":null,\"content\":[],"
                "\"status\":\"in_progress\"}},\"raw\":null}");
    check_event("item.delta", event_delta_data("itm_2", NULL, "a\nb"),
                ENVELOPE(1, "null", "false", "agent", "item.delta")
                "{\"item_id\":\"itm_2\",\"native_item_id\":null,\"delta\":\"a\\nb\"},"
                "\"raw\":null}");
    check_event("item.delta", event_delta_data(NULL, "n9", "x"),
                ENVELOPE(1, "null", "false", "agent", "item.delta")
                "{\"item_id\":\"\",\"native_item_id\":\"n9\",\"delta\":\"x\"},\"raw\":null}");
}

static void test_serialize_every_content_part(void **state)
{
    (void)state;
    check_part(event_part_text("t"), "{\"type\":\"text\",\"text\":\"t\"}");
    check_part(event_part_json(json_pack("{s:[i,n]}", "k", 1)),
               "{\"type\":\"json\",\"json\":{\"k\":[1,null]}}");
    check_part(event_part_json(json_null()), "{\"type\":\"json\",\"json\":null}");
    check_part(event_part_tool_call("bash", "{\"cmd\":\"ls\"}", "c1"),
               "{\"type\":\"tool_call\",\"name\":\"bash\",\"arguments\":"
               "\"{\\\"cmd\\\":\\\"ls\\\"}\",\"call_id\":\"c1\"}");
    check_part(event_part_tool_result("c1", "out"),
               "{\"type\":\"tool_result\",\"call_id\":\"c1\",\"output\":\"out\"}");
    check_part(event_part_file_ref("p", "read", NULL),
               "{\"type\":\"file_ref\",\"path\":\"p\",\"action\":\"read\",\"diff\":null}");
    check_part(event_part_file_ref("p", "patch", "@@"),
               "{\"type\":\"file_ref\",\"path\":\"p\",\"action\":\"patch\",\"diff\":\"@@\"}");
    check_part(event_part_reasoning("r", "private"),
               "{\"type\":\"reasoning\",\"text\":\"r\",\"visibility\":\"private\"}");
    check_part(event_part_image("p", NULL), "{\"type\":\"image\",\"path\":\"p\",\"mime\":null}");
    check_part(event_part_image("p", "image/png"),
               "{\"type\":\"image\",\"path\":\"p\",\"mime\":\"image/png\"}");
    check_part(event_part_status("l", NULL),
               "{\"type\":\"status\",\"label\":\"l\",\"detail\":null}");
    check_part(event_part_status("l", "d"),
               "{\"type\":\"status\",\"label\":\"l\",\"detail\":\"d\"}");
}

static void test_serialize_error_permission_question_unparsed(void **state)
{
    (void)state;
    check_event("error", event_error_data("bad", NULL, NULL),
                ENVELOPE(1, "null", "false", "agent", "error")
                "{\"message\":\"bad\",\"code\":null,\"details\":null},\"raw\":null}");
    check_event("error", event_error_data("bad", "E1", json_pack("{s:i}", "x", 1)),
                ENVELOPE(1, "null", "false", "agent", "error")
                "{\"message\":\"bad\",\"code\":\"E1\",\"details\":{\"x\":1}},\"raw\":null}");
    check_event("permission.requested", event_permission_data("p1", "bash", "requested", NULL),
                ENVELOPE(1, "null", "false", "agent", "permission.requested")
                "{\"permission_id\":\"p1\",\"action\":\"bash\",\"status\":\"requested\","
                "\"metadata\":null},\"raw\":null}");
    check_event("permission.resolved",
                event_permission_data("p1", "bash", "approved", json_pack("{s:s}", "a", "b")),
                ENVELOPE(1, "null", "false", "agent", "permission.resolved")
                "{\"permission_id\":\"p1\",\"action\":\"bash\",\"status\":\"approved\","
                "\"metadata\":{\"a\":\"b\"}},\"raw\":null}");
    check_event("question.requested",
                event_question_data("q1", "Pick", json_pack("[s,s]", "a", "b"), NULL,
                                    "requested"),
                ENVELOPE(1, "null", "false", "agent", "question.requested")
                "{\"question_id\":\"q1\",\"prompt\":\"Pick\",\"options\":[\"a\",\"b\"],"
                "\"response\":null,\"status\":\"requested\"},\"raw\":null}");
    check_event("question.resolved",
                event_question_data("q1", "Pick", json_array(), "a", "answered"),
                ENVELOPE(1, "null", "false", "agent", "question.resolved")
                "{\"question_id\":\"q1\",\"prompt\":\"Pick\",\"options\":[],"
                "\"response\":\"a\",\"status\":\"answered\"},\"raw\":null}");
    check_event("agent.unparsed", event_unparsed_data("parse", "stdout", NULL),
                ENVELOPE(1, "null", "false", "agent", "agent.unparsed")
                "{\"error\":\"parse\",\"location\":\"stdout\",\"raw_hash\":null},\"raw\":null}");
    check_event("agent.unparsed", event_unparsed_data("parse", "stdout", "abc"),
                ENVELOPE(1, "null", "false", "agent", "agent.unparsed")
                "{\"error\":\"parse\",\"location\":\"stdout\",\"raw_hash\":\"abc\"},"
                "\"raw\":null}");
}

static void test_serialize_reorders_fields_and_keeps_extras(void **state)
{
    (void)state;
    /* Built backwards, with nullable fields missing and unknown extras. */
    json_t *part = json_pack("{s:s,s:s,s:s}", "extra", "x", "path", "f.c", "action", "write");
    json_object_set_new(part, "type", json_string("file_ref"));
    json_t *item = json_pack("{s:s,s:[o],s:s,s:s,s:i}", "status", "failed", "content", part,
                             "kind", "tool_result", "item_id", "itm_1", "zz", 7);
    check_event("item.completed", json_pack("{s:i,s:o}", "later", 1, "item", item),
                ENVELOPE(1, "null", "false", "agent", "item.completed")
                "{\"item\":{\"item_id\":\"itm_1\",\"native_item_id\":null,"
                "\"parent_id\":null,\"kind\":\"tool_result\",\"role\":null,\"content\":["
                "{\"type\":\"file_ref\",\"path\":\"f.c\",\"action\":\"write\",\"diff\":null,"
                "\"extra\":\"x\"}],\"status\":\"failed\",\"zz\":7},\"later\":1},\"raw\":null}");
    check_event("question.requested",
                json_pack("{s:s,s:[],s:s,s:s}", "status", "rejected", "options", "prompt", "P",
                          "question_id", "q"),
                ENVELOPE(1, "null", "false", "agent", "question.requested")
                "{\"question_id\":\"q\",\"prompt\":\"P\",\"options\":[],\"response\":null,"
                "\"status\":\"rejected\"},\"raw\":null}");
}

static void expect_rejected(const char *type, json_t *data)
{
    assert_int_equal(event_data_fits(type, data), 0);
    assert_null(event_serialize(1, T, "s1", NULL, 0, "agent", type, data, NULL));
    json_decref(data);
}

static void test_serialize_rejects_misfit_data(void **state)
{
    (void)state;
    expect_rejected("item.started", json_object());
    expect_rejected("item.started", json_pack("{s:{s:s,s:s,s:[],s:s}}", "item", "item_id", "",
                                              "kind", "thing", "content", "status",
                                              "completed"));
    expect_rejected("item.completed", json_pack("{s:{s:s,s:s,s:[{s:s}],s:s}}", "item",
                                                "item_id", "", "kind", "message", "content",
                                                "type", "video", "status", "completed"));
    expect_rejected("item.completed", json_pack("{s:{s:s,s:s,s:[{s:s}],s:s}}", "item",
                                                "item_id", "", "kind", "message", "content",
                                                "type", "text", "status", "completed"));
    expect_rejected("item.delta", json_pack("{s:s,s:i}", "item_id", "", "delta", 3));
    expect_rejected("session.ended", json_pack("{s:s,s:s,s:s}", "reason", "completed",
                                               "terminated_by", "agent", "exit_code", "1"));
    expect_rejected("session.ended", json_pack("{s:s,s:s}", "reason", "bored",
                                               "terminated_by", "agent"));
    expect_rejected("question.requested",
                    json_pack("{s:s,s:s,s:[i],s:s}", "question_id", "q", "prompt", "p",
                              "options", 1, "status", "requested"));
    expect_rejected("permission.requested",
                    json_pack("{s:s,s:s,s:s}", "permission_id", "p", "action", "a", "status",
                              "maybe"));
    expect_rejected("session.started", json_array());
    expect_rejected("no.such.type", json_object());
    expect_rejected("error", json_pack("{s:s,s:i}", "message", "m", "code", 5));

    json_t *ok = event_session_started_data(NULL);
    assert_null(event_serialize(1, T, "s1", NULL, 0, "robot", "session.started", ok, NULL));
    json_decref(ok);
}

static void test_dump_matches_serde(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s,s:[f,f,f,f,f,f,f,f,f,f],s:I}", "s",
                          "q\"\\/\b\f\n\r\t\x01\x1b\x7f é\xe2\x80\xa8", "r", 0.1, 100.0, 1e20,
                          1.5e-7, -2.5, 1e16, 1e15, 0.0001, 1e-5, 1e-6, "i",
                          (json_int_t)-9007199254740993LL);
    size_t len = 0;
    char *s = event_dump(v, &len);
    json_decref(v);
    assert_non_null(s);
    assert_string_equal(s, "{\"s\":\"q\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001b\x7f é\xe2\x80\xa8\","
                           "\"r\":[0.1,100.0,1e20,1.5e-7,-2.5,1e16,1000000000000000.0,0.0001,"
                           "0.00001,1e-6],\"i\":-9007199254740993}");
    assert_int_equal(len, strlen(s));
    free(s);

    json_t *nul = json_stringn("a\0b", 3);
    s = event_dump(nul, &len);
    json_decref(nul);
    assert_string_equal(s, "\"a\\u0000b\"");
    free(s);
    json_t *z = json_pack("[f,f,f]", 0.0, -0.0, 123.456);
    s = event_dump(z, NULL);
    json_decref(z);
    assert_string_equal(s, "[0.0,-0.0,123.456]");
    free(s);
}

static json_t *completed_item(const char *kind, const char *role, json_t *content)
{
    return event_item_data(event_item(kind, role, "completed", NULL, content));
}

static void test_turn_end(void **state)
{
    (void)state;
    const char *always[] = {"session.ended", "error", "agent.unparsed", "permission.requested",
                            "question.requested"};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        assert_int_equal(event_is_turn_end(always[i], NULL, 0), 1);
    const char *never[] = {"session.started", "item.started", "item.delta",
                           "permission.resolved", "question.resolved"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        assert_int_equal(event_is_turn_end(never[i], NULL, 1), 0);

    json_t *msg = completed_item("message", "assistant", json_array());
    assert_int_equal(event_is_turn_end("item.completed", msg, 1), 1);
    assert_int_equal(event_is_turn_end("item.completed", msg, 0), 0);
    assert_int_equal(event_is_turn_end("item.started", msg, 1), 0);
    json_decref(msg);

    json_t *user = completed_item("message", "user", json_array());
    assert_int_equal(event_is_turn_end("item.completed", user, 1), 0);
    json_decref(user);

    json_t *parts = json_pack("[o,o]", event_part_text("x"), event_part_status("turn.completed",
                                                                               NULL));
    json_t *status = completed_item("status", NULL, parts);
    assert_int_equal(event_is_turn_end("item.completed", status, 0), 1);
    json_decref(status);

    parts = json_pack("[o]", event_part_status("session.idle", "d"));
    status = completed_item("status", "system", parts);
    assert_int_equal(event_is_turn_end("item.completed", status, 0), 1);
    json_decref(status);

    /* Only the first status part counts. */
    parts = json_pack("[o,o]", event_part_status("thinking", NULL),
                      event_part_status("turn.completed", NULL));
    status = completed_item("status", NULL, parts);
    assert_int_equal(event_is_turn_end("item.completed", status, 1), 0);
    json_decref(status);

    /* A status label on a non-status item is not a label. */
    parts = json_pack("[o]", event_part_status("turn.completed", NULL));
    json_t *sys = completed_item("system", NULL, parts);
    assert_int_equal(event_is_turn_end("item.completed", sys, 1), 0);
    json_decref(sys);
}

static void test_type_is_valid_and_now(void **state)
{
    (void)state;
    const char *types[] = {"session.started",      "session.ended",       "item.started",
                           "item.delta",           "item.completed",      "error",
                           "permission.requested", "permission.resolved", "question.requested",
                           "question.resolved",    "agent.unparsed"};
    for (size_t i = 0; i < 11; i++)
        assert_true(event_type_is_valid(types[i]));
    assert_false(event_type_is_valid("item"));
    assert_false(event_type_is_valid(NULL));
    assert_false(event_type_is_valid("Error"));

    char now[32];
    event_now(now);
    assert_int_equal(strlen(now), 27);
    const char *shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    for (size_t i = 0; i < 27; i++) {
        if (shape[i] == 'd')
            assert_true(now[i] >= '0' && now[i] <= '9');
        else
            assert_int_equal(now[i], shape[i]);
    }
    assert_true(strncmp(now, "2020", 4) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversion_builders),
        cmocka_unit_test(test_builders_propagate_null),
        cmocka_unit_test(test_serialize_session_started),
        cmocka_unit_test(test_serialize_session_ended_omits_absent),
        cmocka_unit_test(test_serialize_item_and_delta),
        cmocka_unit_test(test_serialize_every_content_part),
        cmocka_unit_test(test_serialize_error_permission_question_unparsed),
        cmocka_unit_test(test_serialize_reorders_fields_and_keeps_extras),
        cmocka_unit_test(test_serialize_rejects_misfit_data),
        cmocka_unit_test(test_dump_matches_serde),
        cmocka_unit_test(test_turn_end),
        cmocka_unit_test(test_type_is_valid_and_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
