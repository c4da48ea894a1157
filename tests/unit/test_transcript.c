/* Unit tests for src/transcript.c: stored events in, the exact transcript
 * text out, including items still open at the end, text that tries to
 * drive the terminal, unreadable events and the session header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/transcript.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renders the events (NULL-terminated) and, if `finish`, what is open. */
static char *render(const char *const *events, int finish)
{
    transcript_t *t = NULL;
    struct err err;
    err_clear(&err);
    assert_int_equal(transcript_new(&t, &err), 0);
    struct buf out;
    buf_init(&out);
    for (size_t i = 0; events[i]; i++)
        assert_int_equal(transcript_render(t, events[i], strlen(events[i]), &out, &err), 0);
    if (finish) {
        assert_int_equal(transcript_finish(t, &out, &err), 0);
        /* Finishing again finds nothing left open. */
        size_t len = out.len;
        assert_int_equal(transcript_finish(t, &out, &err), 0);
        assert_int_equal(out.len, len);
    }
    transcript_free(t);
    char *s = buf_steal(&out);
    assert_non_null(s);
    return s;
}

static void assert_text(const char *got, const char *want)
{
    if (strcmp(got, want) != 0)
        fprintf(stderr, "--- want\n%s--- got\n%s---\n", want, got);
    assert_string_equal(got, want);
}

#define EV(seq, time, type, data)                                                            \
    "{\"event_id\":\"evt_" #seq "\",\"sequence\":" #seq ",\"time\":\"" time                 \
    "\",\"session_id\":\"s\",\"native_session_id\":null,\"synthetic\":false,"                \
    "\"source\":\"agent\",\"type\":\"" type "\",\"data\":" data ",\"raw\":null}"

#define T1 "2026-11-23T11:49:59.374276Z"
#define T2 "2026-11-23T11:50:03.000001Z"
#define T3 "2026-11-24T00:00:01Z"

#define ITEM(id, kind, role, content, status)                                               \
    "{\"item\":{\"item_id\":\"" id "\",\"native_item_id\":null,\"parent_id\":null,"        \
    "\"kind\":\"" kind "\",\"role\":" role ",\"content\":" content ",\"status\":\"" status  \
    "\"}}"

static void test_session(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char *events[] = {
        EV(1, T1, "session.started",
           "{\"metadata\":{\"agent\":\"claude\",\"agentMode\":\"code\",\"model\":\"opus\","
           "\"permissionMode\":\"default\",\"variant\":null}}"),
        EV(2, T1, "item.started",
           ITEM("itm_1", "message", "\"user\"", "[{\"type\":\"text\",\"text\":\"hello\"}]",
                "in_progress")),
        EV(3, T1, "item.delta", "{\"item_id\":\"itm_1\",\"delta\":\"hello\"}"),
        EV(4, T1, "item.completed",
           ITEM("itm_1", "message", "\"user\"", "[{\"type\":\"text\",\"text\":\"hello\"}]",
                "completed")),
        EV(5, T1, "item.started", ITEM("itm_2", "message", "\"assistant\"", "[]", "in_progress")),
        EV(6, T1, "item.delta", "{\"item_id\":\"itm_2\",\"delta\":\"Hi \"}"),
        EV(7, T1, "item.delta", "{\"item_id\":\"itm_2\",\"delta\":\"there\"}"),
        EV(8, T1, "item.completed",
           ITEM("itm_2", "message", "\"assistant\"",
                "[{\"type\":\"text\",\"text\":\"Hi there\\nsecond line\\n\"},"
                "{\"type\":\"reasoning\",\"text\":\"thinking\",\"visibility\":\"public\"},"
                "{\"type\":\"reasoning\",\"text\":\"secret\",\"visibility\":\"private\"},"
                "{\"type\":\"json\",\"json\":{\"ok\":true}}]",
                "completed")),
        EV(9, T1, "item.completed",
           ITEM("itm_3", "tool_call", "\"assistant\"",
                "[{\"type\":\"tool_call\",\"name\":\"bash\","
                "\"arguments\":\"{\\\"cmd\\\":\\\"ls\\\"}\",\"call_id\":\"c1\"}]",
                "completed")),
        EV(10, T1, "item.completed",
           ITEM("itm_4", "tool_result", "\"tool\"",
                "[{\"type\":\"tool_result\",\"call_id\":\"c1\",\"output\":\"a\\nb\"},"
                "{\"type\":\"file_ref\",\"path\":\"x.c\",\"action\":\"patch\","
                "\"diff\":\"-old\\n+new\\n\"},"
                "{\"type\":\"file_ref\",\"path\":\"y.c\",\"action\":\"read\",\"diff\":null}]",
                "failed")),
        EV(11, T1, "item.completed",
           ITEM("itm_5", "status", "null",
                "[{\"type\":\"status\",\"label\":\"Indexing\",\"detail\":null}]", "completed")),
        EV(12, T1, "item.completed",
           ITEM("itm_6", "message", "\"assistant\"",
                "[{\"type\":\"image\",\"path\":\"p.png\",\"mime\":null},"
                "{\"type\":\"video\",\"url\":\"v\"}]",
                "completed")),
        EV(13, T1, "item.completed", ITEM("itm_7", "system", "\"system\"", "[]", "completed")),
        EV(14, T2, "permission.requested",
           "{\"permission_id\":\"p1\",\"action\":\"command_execution\",\"status\":\"requested\","
           "\"metadata\":{\"command\":\"rm -rf build\",\"cwd\":null,\"timeout\":30}}"),
        EV(15, T2, "permission.resolved",
           "{\"permission_id\":\"p1\",\"action\":\"command_execution\",\"status\":\"denied\","
           "\"metadata\":null}"),
        EV(16, T2, "question.requested",
           "{\"question_id\":\"q1\",\"prompt\":\"Pick\",\"options\":[\"A\",\"B\"],"
           "\"response\":null,\"status\":\"requested\"}"),
        EV(17, T2, "question.resolved",
           "{\"question_id\":\"q1\",\"prompt\":\"Pick\",\"options\":[\"A\",\"B\"],"
           "\"response\":\"B\",\"status\":\"answered\"}"),
        EV(18, T2, "question.resolved",
           "{\"question_id\":\"q2\",\"prompt\":\"Sure?\",\"options\":[],"
           "\"response\":null,\"status\":\"rejected\"}"),
        EV(19, T2, "error", "{\"message\":\"rate limited\",\"code\":null,\"details\":null}"),
        EV(20, T2, "agent.unparsed",
           "{\"error\":\"bad json\",\"location\":\"stdout\",\"raw_hash\":null}"),
        EV(21, T3, "custom.thing", "{\"x\":1}"),
        EV(22, T3, "session.ended",
           "{\"reason\":\"error\",\"terminated_by\":\"agent\",\"exit_code\":1,"
           "\"message\":\"crashed\",\"stderr\":{\"head\":\"line1\\nline2\\n\","
           "\"tail\":\"last\",\"truncated\":true,\"total_lines\":90}}"),
        NULL,
    };
    char *got = render(events, 1);
    assert_text(got,
                "--- 2026-11-23 ---\n"
                "[11:49:59] session started (agent claude, mode code, permissions default, "
                "model opus)\n"
                "[11:49:59] user: hello\n"
                "[11:49:59] assistant: Hi there\n"
                "    second line\n"
                "    (reasoning) thinking\n"
                "    (private reasoning) secret\n"
                "    json: {\"ok\":true}\n"
                "[11:49:59] tool call: [c1] bash {\"cmd\":\"ls\"}\n"
                "[11:49:59] tool result (failed): [c1] a\n"
                "    b\n"
                "    patch x.c\n"
                "    -old\n"
                "    +new\n"
                "    read y.c\n"
                "[11:49:59] status: Indexing\n"
                "[11:49:59] assistant: image p.png\n"
                "    {\"type\":\"video\",\"url\":\"v\"}\n"
                "[11:49:59] system: (no content)\n"
                "[11:50:03] permission requested [p1]: command_execution\n"
                "    command: rm -rf build\n"
                "    timeout: 30\n"
                "[11:50:03] permission denied [p1]: command_execution\n"
                "[11:50:03] question [q1]: Pick\n"
                "    options: A / B\n"
                "[11:50:03] question answered [q1]: B\n"
                "[11:50:03] question rejected [q2]: Sure?\n"
                "[11:50:03] error: rate limited\n"
                "[11:50:03] unparsed agent output at stdout: bad json\n"
                "--- 2026-11-24 ---\n"
                "[00:00:01] custom.thing: {\"x\":1}\n"
                "[00:00:01] session ended: error by agent, exit code 1: crashed\n"
                "    stderr:\n"
                "    line1\n"
                "    line2\n"
                "    ...\n"
                "    last\n");
    free(got);
}

/* Items still open are shown at the end in the order they started, with
 * their streamed text; completed ones are not repeated. */
static void test_in_progress(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char *events[] = {
        EV(1, T1, "item.started",
           ITEM("a", "message", "\"assistant\"", "[{\"type\":\"text\",\"text\":\"\"}]",
                "in_progress")),
        EV(2, T2, "item.started",
           ITEM("b", "tool_call", "\"assistant\"",
                "[{\"type\":\"tool_call\",\"name\":\"grep\",\"arguments\":\"x\","
                "\"call_id\":\"c9\"}]",
                "in_progress")),
        EV(3, T2, "item.delta", "{\"item_id\":\"a\",\"delta\":\"partial \"}"),
        EV(4, T2, "item.delta", "{\"item_id\":\"a\",\"delta\":\"answer\"}"),
        EV(5, T2, "item.delta", "{\"item_id\":\"unknown\",\"delta\":\"ignored\"}"),
        EV(6, T2, "item.started", ITEM("c", "message", "\"user\"", "[]", "in_progress")),
        EV(7, T2, "item.completed",
           ITEM("c", "message", "\"user\"", "[{\"type\":\"text\",\"text\":\"done\"}]",
                "completed")),
        NULL,
    };
    char *got = render(events, 1);
    assert_text(got, "--- 2026-11-23 ---\n"
                     "[11:50:03] user: done\n"
                     "[11:49:59] assistant (in progress): partial answer\n"
                     "[11:50:03] tool call (in progress): [c9] grep x\n");
    free(got);

    /* Without finish (as `tail` runs), nothing open is shown. */
    got = render(events, 0);
    assert_text(got, "--- 2026-11-23 ---\n[11:50:03] user: done\n");
    free(got);
}

static void test_control_characters(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char *events[] = {
        EV(1, T1, "item.completed",
           ITEM("a", "message", "\"assistant\"",
                "[{\"type\":\"text\",\"text\":\"red \\u001b[31mX\\u001b[0m\\tok\\r\\n"
                "next\x7f \xc2\x9b end \xc3\xa9\\r\\u0007\"}]",
                "completed")),
        NULL,
    };
    char *got = render(events, 0);
    assert_text(got, "--- 2026-11-23 ---\n"
                     "[11:49:59] assistant: red ^[[31mX^[[0m\tok\n"
                     "    next^? ? end \xc3\xa9^M^G\n");
    free(got);
}

/* The one-line form for session lists: every control visible, line breaks
 * and tabs included, C1 controls as '?', other UTF-8 kept. */
static void test_put_safe(void **state)
{
    (void)state; /* no fixture */
    struct buf b;
    buf_init(&b);
    assert_int_equal(transcript_put_safe(&b, "a\x1b[2J\n\t\x7f\xc2\x9b" "1m\xc3\xa9"), 0);
    assert_string_equal(b.data, "a^[[2J^J^I^??1m\xc3\xa9");
    buf_free(&b);
}

static void test_unreadable(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char *events[] = { "[1,2]", "{\"type\":\"error\",\"time\":\"soon\",\"data\":{}}",
                             "not json", NULL };
    char *got = render(events, 0);
    assert_true(strncmp(got,
                        "[??:??:??] unreadable event: not a JSON object\n"
                        "[??:??:??] error\n"
                        "[??:??:??] unreadable event: ",
                        strlen("[??:??:??] unreadable event: not a JSON object\n"
                               "[??:??:??] error\n"
                               "[??:??:??] unreadable event: ")) == 0);
    assert_int_equal(got[strlen(got) - 1], '\n');
    free(got);
}

static void test_header(void **state)
{
    (void)state; /* cmocka fixture unused */
    /* The struct's strings are not const (journal rows own them). */
    char id[] = "fix-42", agent[] = "claude", mode[] = "code", perm[] = "plan", model[] = "opus",
         native[] = "abc", created[] = "2026-11-23T11:49:59.374Z";
    struct journal_session_info s = {
        .session_id = id,
        .agent = agent,
        .agent_mode = mode,
        .permission_mode = perm,
        .model = model,
        .native_session_id = native,
        .created_at = created,
        .ended = 2,
        .last_sequence = 83,
    };
    struct buf out;
    buf_init(&out);
    struct err err;
    assert_int_equal(transcript_header(&s, &out, &err), 0);
    assert_text(out.data, "session fix-42\n"
                          "    agent claude, mode code, permissions plan, model opus\n"
                          "    native session abc\n"
                          "    created 2026-11-23T11:49:59.374Z, 83 events, terminated\n");
    buf_free(&out);
    assert_string_equal(transcript_state_name(0), "active");
    assert_string_equal(transcript_state_name(1), "ended");
    assert_string_equal(transcript_state_name(2), "terminated");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_in_progress),
        cmocka_unit_test(test_control_characters),
        cmocka_unit_test(test_put_safe),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
