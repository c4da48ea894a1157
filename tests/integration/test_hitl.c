/* Integration tests of the human-in-the-loop endpoints with the mock agent:
 * permission replies (once / always / reject), question replies and
 * rejections, and the errors for unknown ids and bad bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "httpc.h"
#include "server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SID "h"
#define WAIT_MS 10000

/* Session SID with the two pending permissions (events 5 and 6). */
static void start_permissions(struct sj_server *s)
{
    json_t *r = sj_create_session(s, SID, NULL), *events;
    json_decref(r);
    sj_send_message(s, SID, "permission");
    events = sj_wait_events_exact(s, SID, 6, WAIT_MS);
    json_decref(events);
}

/* Session SID with the two pending questions (events 5 and 6). */
static void start_questions(struct sj_server *s)
{
    json_t *r = sj_create_session(s, SID, NULL), *events;
    json_decref(r);
    sj_send_message(s, SID, "question");
    events = sj_wait_events_exact(s, SID, 6, WAIT_MS);
    json_decref(events);
}

static void reply_permission(struct sj_server *s, const char *id, const char *reply)
{
    char *path = sj_fmt("/v1/sessions/" SID "/permissions/%s/reply", id);
    char *body = sj_fmt("{\"reply\":\"%s\"}", reply);
    json_t *r = sj_call(s, "POST", path, body, 204);
    assert_null(r);
    free(path);
    free(body);
}

#define RESOLVED_ECHO(status)                                                                 \
    "{\"permission_id\":\"mock_1_permission\",\"action\":\"command_execution\","              \
    "\"status\":\"" status "\",\"metadata\":{\"codexRequestKind\":\"commandExecution\","      \
    "\"command\":\"echo mock\"}}"
#define RESOLVED_DENY(status)                                                                 \
    "{\"permission_id\":\"mock_1_permission_denied\",\"action\":\"file_change\","             \
    "\"status\":\"" status "\",\"metadata\":{\"codexRequestKind\":\"fileChange\","            \
    "\"path\":\"mock_1/deny.txt\"}}"

static void test_permission_once(void **state)
{
    struct sj_server *s = *state;
    json_t *events;
    start_permissions(s);
    reply_permission(s, "mock_1_permission", "once");
    events = sj_wait_events_exact(s, SID, 7, WAIT_MS);
    sj_assert_event_exact(events, SID, 7, "permission.resolved", 1, RESOLVED_ECHO("approved"));
    json_decref(events);
    /* It is no longer pending. */
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/permissions/mock_1_permission/reply",
                   "{\"reply\":\"once\"}", 400, "invalid_request");
    /* The other one still is. */
    reply_permission(s, "mock_1_permission_denied", "once");
    events = sj_wait_events_quiet(s, SID, 8, WAIT_MS);
    sj_assert_event_exact(events, SID, 8, "permission.resolved", 1, RESOLVED_DENY("approved"));
    json_decref(events);
}

static void test_permission_always(void **state)
{
    struct sj_server *s = *state;
    json_t *events;
    start_permissions(s);
    reply_permission(s, "mock_1_permission", "always");
    events = sj_wait_events_quiet(s, SID, 7, WAIT_MS);
    sj_assert_event_exact(events, SID, 7, "permission.resolved", 1, RESOLVED_ECHO("approved"));
    json_decref(events);
}

static void test_permission_reject(void **state)
{
    struct sj_server *s = *state;
    json_t *events;
    start_permissions(s);
    reply_permission(s, "mock_1_permission_denied", "reject");
    events = sj_wait_events_exact(s, SID, 7, WAIT_MS);
    sj_assert_event_exact(events, SID, 7, "permission.resolved", 1, RESOLVED_DENY("denied"));
    json_decref(events);
    reply_permission(s, "mock_1_permission", "reject");
    events = sj_wait_events_quiet(s, SID, 8, WAIT_MS);
    sj_assert_event_exact(events, SID, 8, "permission.resolved", 1, RESOLVED_ECHO("denied"));
    json_decref(events);
}

static void test_permission_prompt_reply(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_create_session(s, SID, NULL), *events;
    json_decref(r);
    sj_send_message(s, SID, "List files in the current directory using available tools.");
    events = sj_wait_events_exact(s, SID, 5, WAIT_MS);
    json_decref(events);
    reply_permission(s, "mock_1_permission", "once");
    events = sj_wait_events_quiet(s, SID, 6, WAIT_MS);
    sj_assert_event_exact(events, SID, 6, "permission.resolved", 1,
                "{\"permission_id\":\"mock_1_permission\",\"action\":\"command_execution\","
                "\"status\":\"approved\",\"metadata\":{\"codexRequestKind\":\"commandExecution\","
                "\"command\":\"ls\"}}");
    json_decref(events);
}

static void test_permission_errors(void **state)
{
    struct sj_server *s = *state;
    json_t *events;
    start_permissions(s);
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/permissions/nope/reply", "{\"reply\":\"once\"}",
                   400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/permissions/mock_1_permission/reply",
                   "{\"reply\":\"maybe\"}", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/permissions/mock_1_permission/reply", "{}",
                   400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/permissions/mock_1_permission/reply", "{bad",
                   400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/permissions/mock_1_permission/reply",
                   "{\"reply\":1}", 400, "invalid_request");
    /* A question id is not a permission id. */
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/questions/mock_1_permission/reply",
                   "{\"answers\":[[\"x\"]]}", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/ghost/permissions/mock_1_permission/reply",
                   "{\"reply\":\"once\"}", 404, "session_not_found");
    /* None of that journaled anything, and the permission is still pending. */
    events = sj_wait_events_exact(s, SID, 6, WAIT_MS);
    json_decref(events);
    reply_permission(s, "mock_1_permission", "once");
    events = sj_wait_events_quiet(s, SID, 7, WAIT_MS);
    json_decref(events);
}

static void test_question_reply(void **state)
{
    struct sj_server *s = *state;
    json_t *events, *r;
    start_questions(s);
    r = sj_call(s, "POST", "/v1/sessions/" SID "/questions/mock_1_question/reply",
                "{\"answers\":[[\"Red\",\"Blue\"],[\"ignored\"]]}", 204);
    assert_null(r);
    events = sj_wait_events_quiet(s, SID, 7, WAIT_MS);
    sj_assert_event_exact(events, SID, 7, "question.resolved", 1,
                "{\"question_id\":\"mock_1_question\",\"prompt\":\"Choose a color\","
                "\"options\":[\"Red\",\"Blue\"],\"response\":\"Red\",\"status\":\"answered\"}");
    json_decref(events);
    /* Answered once only. */
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/questions/mock_1_question/reply",
                   "{\"answers\":[[\"Red\"]]}", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/questions/mock_1_question/reject", NULL, 400,
                   "invalid_request");
}

static void test_question_reply_empty_answers(void **state)
{
    struct sj_server *s = *state;
    json_t *events, *r;
    start_questions(s);
    r = sj_call(s, "POST", "/v1/sessions/" SID "/questions/mock_1_question/reply",
                "{\"answers\":[]}", 204);
    assert_null(r);
    events = sj_wait_events_quiet(s, SID, 7, WAIT_MS);
    sj_assert_event_exact(events, SID, 7, "question.resolved", 1,
                "{\"question_id\":\"mock_1_question\",\"prompt\":\"Choose a color\","
                "\"options\":[\"Red\",\"Blue\"],\"response\":null,\"status\":\"answered\"}");
    json_decref(events);
}

static void test_question_reject(void **state)
{
    struct sj_server *s = *state;
    json_t *events, *r;
    start_questions(s);
    r = sj_call(s, "POST", "/v1/sessions/" SID "/questions/mock_1_question_reject/reject", NULL,
                204);
    assert_null(r);
    events = sj_wait_events_exact(s, SID, 7, WAIT_MS);
    sj_assert_event_exact(events, SID, 7, "question.resolved", 1,
                "{\"question_id\":\"mock_1_question_reject\",\"prompt\":\"Allow mock experiment?\","
                "\"options\":[\"Yes\",\"No\"],\"response\":null,\"status\":\"rejected\"}");
    json_decref(events);
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/questions/mock_1_question_reject/reject", NULL,
                   400, "invalid_request");
    /* The other question is still open. */
    r = sj_call(s, "POST", "/v1/sessions/" SID "/questions/mock_1_question/reply",
                "{\"answers\":[[\"Blue\"]]}", 204);
    assert_null(r);
    events = sj_wait_events_quiet(s, SID, 8, WAIT_MS);
    sj_assert_event_exact(events, SID, 8, "question.resolved", 1,
                "{\"question_id\":\"mock_1_question\",\"prompt\":\"Choose a color\","
                "\"options\":[\"Red\",\"Blue\"],\"response\":\"Blue\",\"status\":\"answered\"}");
    json_decref(events);
}

static void test_question_errors(void **state)
{
    struct sj_server *s = *state;
    json_t *events;
    start_questions(s);
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/questions/nope/reply",
                   "{\"answers\":[[\"Red\"]]}", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/questions/nope/reject", NULL, 400,
                   "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/questions/mock_1_question/reply", "{}", 400,
                   "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/questions/mock_1_question/reply",
                   "{\"answers\":\"Red\"}", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/questions/mock_1_question/reply",
                   "{\"answers\":[\"Red\"]}", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/questions/mock_1_question/reply",
                   "{\"answers\":[[1]]}", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/" SID "/permissions/mock_1_question/reply",
                   "{\"reply\":\"once\"}", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/ghost/questions/mock_1_question/reject", NULL, 404,
                   "session_not_found");
    events = sj_wait_events_quiet(s, SID, 6, WAIT_MS);
    json_decref(events);
}

static void test_pending_across_turns(void **state)
{
    /* Pending requests survive later turns and are answered by id. */
    struct sj_server *s = *state;
    json_t *events, *r;
    start_permissions(s);
    sj_send_message(s, SID, "question");
    events = sj_wait_events_exact(s, SID, 11, WAIT_MS);
    json_decref(events);
    r = sj_call(s, "POST", "/v1/sessions/" SID "/questions/mock_2_question/reply",
                "{\"answers\":[[\"Red\"]]}", 204);
    assert_null(r);
    reply_permission(s, "mock_1_permission_denied", "reject");
    events = sj_wait_events_quiet(s, SID, 13, WAIT_MS);
    sj_assert_envelope(json_array_get(events, 11), 12, SID, "question.resolved", 1);
    assert_string_equal(sj_str(json_array_get(events, 11), "data.question_id"), "mock_2_question");
    sj_assert_envelope(json_array_get(events, 12), 13, SID, "permission.resolved", 1);
    assert_string_equal(sj_str(json_array_get(events, 12), "data.status"), "denied");
    json_decref(events);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, sj_setup_default, sj_teardown_default)
    const struct CMUnitTest tests[] = {
        T(test_permission_once),
        T(test_permission_always),
        T(test_permission_reject),
        T(test_permission_prompt_reply),
        T(test_permission_errors),
        T(test_question_reply),
        T(test_question_reply_empty_answers),
        T(test_question_reject),
        T(test_question_errors),
        T(test_pending_across_turns),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
