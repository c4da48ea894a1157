/* Integration tests of durability: everything a client saw before a stop
 * (or a kill -9) is served byte for byte after a restart on the same data
 * directory, pending permissions and questions stay answerable, and new
 * events, turns and item ids continue where they left off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "httpc.h"
#include "server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000

static char *list_text(struct sj_server *s)
{
    struct httpc_response resp;
    char *text;
    sj_request(s, "GET", "/v1/sessions", NULL, 1, &resp);
    assert_int_equal(resp.status, 200);
    text = resp.body;
    resp.body = NULL;
    httpc_response_free(&resp);
    return text;
}

/* Stops the server (it must exit cleanly) and starts it on the same dir. */
static void restart(struct sj_server *s)
{
    if (sj_server_restart(s) != 0)
        fail_msg("restart failed (exit status %d, killed %d)", s->exit_status, s->killed);
}

static void assert_same_text(const char *before, const char *after, const char *what)
{
    if (strcmp(before, after) != 0)
        fprintf(stderr, "%s changed across restart:\nbefore: %s\nafter:  %s\n", what, before,
                after);
    assert_string_equal(before, after);
}

static void check_resolved(const json_t *events, long long seq, const char *sid,
                           const char *data_json, const char *type)
{
    char *got = sj_event_masked(json_array_get(events, (size_t)seq - 1));
    char *want = sj_fmt("{\"event_id\":\"evt_%lld\",\"sequence\":%lld,\"time\":\"T\","
                        "\"session_id\":\"%s\",\"native_session_id\":\"mock-%s\","
                        "\"synthetic\":true,\"source\":\"daemon\",\"type\":\"%s\",\"data\":%s,"
                        "\"raw\":null}",
                        seq, seq, sid, sid, type, data_json);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "expected: %s\n     got: %s\n", want, got);
    assert_string_equal(got, want);
    free(got);
    free(want);
}

static void test_restart_keeps_everything(void **state)
{
    struct sj_server *s = *state;
    json_t *r, *events, *list, *info;
    char *before_r1, *before_r1_raw, *before_r2, *before_r2_raw, *before_list;
    char *after;

    r = sj_create_session(s, "r1", NULL);
    json_decref(r);
    sj_send_message(s, "r1", "echo hello");
    events = sj_wait_events_exact(s, "r1", 7, WAIT_MS);
    json_decref(events);
    sj_send_message(s, "r1", "permission");
    events = sj_wait_events_exact(s, "r1", 12, WAIT_MS);
    json_decref(events);
    r = sj_call(s, "POST", "/v1/sessions/r1/permissions/mock_2_permission/reply",
                "{\"reply\":\"once\"}", 204);
    assert_null(r);
    events = sj_wait_events_exact(s, "r1", 13, WAIT_MS);
    json_decref(events);

    r = sj_create_session(s, "r2", "{\"agent\":\"mock\",\"agentMode\":\"plan\",\"model\":\"mm\"}");
    json_decref(r);
    sj_send_message(s, "r2", "unparsed");
    events = sj_wait_events_exact(s, "r2", 5, WAIT_MS);
    json_decref(events);
    r = sj_call(s, "POST", "/v1/sessions/r2/terminate", NULL, 204);
    assert_null(r);
    events = sj_wait_events_exact(s, "r2", 6, WAIT_MS);
    json_decref(events);

    before_r1 = sj_get_events_text(s, "r1", "");
    before_r1_raw = sj_get_events_text(s, "r1", "?include_raw=true");
    before_r2 = sj_get_events_text(s, "r2", "");
    before_r2_raw = sj_get_events_text(s, "r2", "?include_raw=true");
    before_list = list_text(s);

    restart(s);

    after = sj_get_events_text(s, "r1", "");
    assert_same_text(before_r1, after, "r1 events");
    free(after);
    after = sj_get_events_text(s, "r1", "?include_raw=true");
    assert_same_text(before_r1_raw, after, "r1 events with raw");
    free(after);
    after = sj_get_events_text(s, "r2", "");
    assert_same_text(before_r2, after, "r2 events");
    free(after);
    after = sj_get_events_text(s, "r2", "?include_raw=true");
    assert_same_text(before_r2_raw, after, "r2 events with raw");
    assert_non_null(strstr(after, "\"raw\":{\"raw\":\"mock\"}"));
    free(after);
    after = list_text(s);
    assert_same_text(before_list, after, "session list");
    free(after);

    /* The permission still pending before the restart is still answerable;
     * the answered one is not. */
    r = sj_call(s, "POST", "/v1/sessions/r1/permissions/mock_2_permission_denied/reply",
                "{\"reply\":\"reject\"}", 204);
    assert_null(r);
    events = sj_wait_events_exact(s, "r1", 14, WAIT_MS);
    check_resolved(events, 14, "r1",
                   "{\"permission_id\":\"mock_2_permission_denied\",\"action\":\"file_change\","
                   "\"status\":\"denied\",\"metadata\":{\"codexRequestKind\":\"fileChange\","
                   "\"path\":\"mock_2/deny.txt\"}}",
                   "permission.resolved");
    json_decref(events);
    {
        struct httpc_response resp;
        json_t *p;
        sj_request(s, "POST", "/v1/sessions/r1/permissions/mock_2_permission/reply",
                   "{\"reply\":\"once\"}", 1, &resp);
        p = sj_assert_problem(&resp, 400, "invalid_request");
        json_decref(p);
        httpc_response_free(&resp);
    }

    /* New events continue the sequence; turn numbers and item ids too. */
    sj_send_message(s, "r1", "echo again");
    events = sj_wait_events_exact(s, "r1", 20, WAIT_MS);
    sj_assert_envelope(json_array_get(events, 14), 15, "r1", "item.started", 0);
    assert_string_equal(sj_str(json_array_get(events, 14), "data.item.native_item_id"),
                        "mock_3_user");
    assert_string_equal(sj_str(json_array_get(events, 14), "data.item.item_id"), "itm_4");
    sj_assert_envelope(json_array_get(events, 17), 18, "r1", "item.started", 0);
    assert_string_equal(sj_str(json_array_get(events, 17), "data.item.native_item_id"),
                        "mock_3_echo");
    assert_string_equal(sj_str(json_array_get(events, 17), "data.item.item_id"), "itm_5");
    sj_assert_envelope(json_array_get(events, 19), 20, "r1", "item.completed", 0);
    assert_string_equal(sj_str(json_array_get(events, 19), "data.item.content.0.text"), "again");
    json_decref(events);

    /* The terminated session stays terminated. */
    {
        struct httpc_response resp;
        json_t *p;
        sj_request(s, "POST", "/v1/sessions/r2/messages", "{\"message\":\"hi\"}", 1, &resp);
        p = sj_assert_problem(&resp, 400, "invalid_request");
        json_decref(p);
        httpc_response_free(&resp);
    }
    list = sj_call(s, "GET", "/v1/sessions", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "sessions")), 2);
    info = json_array_get(json_object_get(list, "sessions"), 0);
    assert_string_equal(sj_str(info, "sessionId"), "r2");
    assert_true(json_is_true(json_object_get(info, "ended")));
    assert_int_equal(sj_int(info, "eventCount"), 6);
    assert_string_equal(sj_str(info, "agentMode"), "plan");
    assert_string_equal(sj_str(info, "model"), "mm");
    info = json_array_get(json_object_get(list, "sessions"), 1);
    assert_string_equal(sj_str(info, "sessionId"), "r1");
    assert_true(json_is_false(json_object_get(info, "ended")));
    assert_int_equal(sj_int(info, "eventCount"), 20);
    json_decref(list);

    /* A second restart changes nothing either. */
    free(before_r1);
    before_r1 = sj_get_events_text(s, "r1", "");
    restart(s);
    after = sj_get_events_text(s, "r1", "");
    assert_same_text(before_r1, after, "r1 events (second restart)");
    free(after);

    free(before_r1);
    free(before_r1_raw);
    free(before_r2);
    free(before_r2_raw);
    free(before_list);
}

static void test_restart_pending_question(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_create_session(s, "q", NULL), *events;
    json_decref(r);
    sj_send_message(s, "q", "question");
    events = sj_wait_events_exact(s, "q", 6, WAIT_MS);
    json_decref(events);
    restart(s);
    r = sj_call(s, "POST", "/v1/sessions/q/questions/mock_1_question/reply",
                "{\"answers\":[[\"Blue\"]]}", 204);
    assert_null(r);
    r = sj_call(s, "POST", "/v1/sessions/q/questions/mock_1_question_reject/reject", NULL, 204);
    assert_null(r);
    events = sj_wait_events_quiet(s, "q", 8, WAIT_MS);
    check_resolved(events, 7, "q",
                   "{\"question_id\":\"mock_1_question\",\"prompt\":\"Choose a color\","
                   "\"options\":[\"Red\",\"Blue\"],\"response\":\"Blue\",\"status\":\"answered\"}",
                   "question.resolved");
    check_resolved(events, 8, "q",
                   "{\"question_id\":\"mock_1_question_reject\",\"prompt\":\"Allow mock "
                   "experiment?\",\"options\":[\"Yes\",\"No\"],\"response\":null,"
                   "\"status\":\"rejected\"}",
                   "question.resolved");
    json_decref(events);
}

static void test_restart_sse_resume(void **state)
{
    static const char *const headers[] = {"Last-Event-ID: 3", NULL};
    struct sj_server *s = *state;
    json_t *r = sj_create_session(s, "sse", NULL), *events;
    struct httpc_response head;
    struct httpc_sse *sse = NULL;
    json_t *before;

    json_decref(r);
    sj_send_message(s, "sse", "echo before");
    before = sj_wait_events_exact(s, "sse", 7, WAIT_MS);
    restart(s);
    assert_int_equal(httpc_sse_open(s->port, "GET", "/v1/sessions/sse/events/sse", headers, NULL,
                                    0, 5000, &head, &sse),
                     0);
    assert_int_equal(head.status, 200);
    assert_non_null(sse);
    httpc_response_free(&head);
    for (long long seq = 4; seq <= 7; seq++) {
        struct httpc_sse_event ev;
        json_t *e;
        char *a, *b;
        assert_int_equal(httpc_sse_next(sse, 5000, &ev), 1);
        e = json_loads(ev.data, 0, NULL);
        assert_non_null(e);
        /* Identical to what was served before the restart, time included. */
        a = json_dumps(e, JSON_COMPACT);
        b = json_dumps(json_array_get(before, (size_t)seq - 1), JSON_COMPACT);
        assert_string_equal(a, b);
        free(a);
        free(b);
        json_decref(e);
        httpc_sse_event_free(&ev);
    }
    /* Live events after the restart reach the resumed stream. */
    sj_send_message(s, "sse", "echo after");
    for (long long seq = 8; seq <= 13; seq++) {
        struct httpc_sse_event ev;
        char id[24];
        assert_int_equal(httpc_sse_next(sse, 5000, &ev), 1);
        snprintf(id, sizeof id, "%lld", seq);
        assert_string_equal(ev.id, id);
        httpc_sse_event_free(&ev);
    }
    httpc_sse_close(sse);
    json_decref(before);
    events = sj_wait_events_quiet(s, "sse", 13, WAIT_MS);
    assert_string_equal(sj_str(json_array_get(events, 7), "data.item.native_item_id"),
                        "mock_2_user");
    json_decref(events);
}

static void test_restart_empty(void **state)
{
    struct sj_server *s = *state;
    json_t *list;
    restart(s);
    list = sj_call(s, "GET", "/v1/sessions", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "sessions")), 0);
    json_decref(list);
}

static void test_restart_session_id_still_taken(void **state)
{
    struct sj_server *s = *state;
    struct httpc_response resp;
    json_t *r = sj_create_session(s, "taken", NULL), *p;
    json_decref(r);
    restart(s);
    sj_request(s, "POST", "/v1/sessions/taken", "{\"agent\":\"mock\"}", 1, &resp);
    p = sj_assert_problem(&resp, 409, "session_already_exists");
    json_decref(p);
    httpc_response_free(&resp);
    r = sj_wait_events_quiet(s, "taken", 1, WAIT_MS);
    json_decref(r);
}

static int setup_slow(void **state)
{
    static const char *const args[] = {"--mock-delay-ms", "25", NULL};
    return sj_setup_with(state, args);
}

/* Highest N among "itm_N" item ids in the events. */
static long max_item_id(const json_t *events)
{
    long max = 0;
    for (size_t i = 0; i < json_array_size(events); i++) {
        const json_t *e = json_array_get(events, i);
        const char *id = sj_str(e, "data.item.item_id");
        if (!id)
            id = sj_str(e, "data.item_id");
        if (id && strncmp(id, "itm_", 4) == 0) {
            long n = strtol(id + 4, NULL, 10);
            if (n > max)
                max = n;
        }
    }
    return max;
}

static void test_kill9_loses_nothing_acknowledged(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_create_session(s, "k", NULL), *events, *seen;
    char *seen_text;
    size_t n_seen, n_after;
    long max_item;

    json_decref(r);
    sj_send_message(s, "k", "demo");
    /* Some of the demo has been journaled and read; then the power goes. */
    seen = sj_wait_events(s, "k", 20, WAIT_MS);
    json_decref(seen);
    seen_text = sj_get_events_text(s, "k", "");
    seen = json_loads(seen_text, 0, NULL);
    assert_non_null(seen);
    n_seen = json_array_size(json_object_get(seen, "events"));
    sj_server_kill(s);

    restart(s);
    events = sj_wait_events(s, "k", n_seen, WAIT_MS);
    n_after = json_array_size(events);
    fprintf(stderr, "read %zu events before kill -9, %zu after restart\n", n_seen, n_after);
    assert_true(n_after >= n_seen);
    /* Contiguous sequences, no duplicates. */
    for (size_t i = 0; i < n_after; i++)
        assert_int_equal(sj_int(json_array_get(events, i), "sequence"), (long long)i + 1);
    /* Every event read before the crash is served byte for byte. */
    {
        char *query = sj_fmt("?limit=%zu", n_seen);
        char *page = sj_get_events_text(s, "k", query);
        char *cut = strstr(seen_text, "],\"hasMore\":");
        char *cut2 = strstr(page, "],\"hasMore\":");
        assert_non_null(cut);
        assert_non_null(cut2);
        *cut = '\0';
        *cut2 = '\0';
        assert_same_text(seen_text, page, "events read before kill -9");
        free(page);
        free(query);
    }
    max_item = max_item_id(events);
    json_decref(events);

    /* The session goes on after whatever was committed. */
    sj_send_message(s, "k", "echo after the crash");
    events = sj_wait_events(s, "k", n_after + 6, WAIT_MS);
    {
        const json_t *e = json_array_get(events, n_after);
        char want_item[32];
        sj_assert_envelope(e, (long long)n_after + 1, "k", "item.started", 0);
        assert_string_equal(sj_str(e, "data.item.native_item_id"), "mock_2_user");
        snprintf(want_item, sizeof want_item, "itm_%ld", max_item + 1);
        assert_string_equal(sj_str(e, "data.item.item_id"), want_item);
    }
    json_decref(events);
    json_decref(seen);
    free(seen_text);
}

static void test_stop_mid_turn(void **state)
{
    /* A clean stop while the mock's reply is still being paced out exits
     * promptly and cleanly; the journal stays contiguous and the session
     * goes on after a restart. */
    struct sj_server *s = *state;
    json_t *r = sj_create_session(s, "m", NULL), *events;
    size_t n;
    long max_item;
    json_decref(r);
    sj_send_message(s, "m", "demo");
    events = sj_wait_events(s, "m", 12, WAIT_MS);
    json_decref(events);
    restart(s);
    /* No sleep to see whether the cut turn goes on after the restart: it
     * would go on through the session's paced queue, ahead of the reply to
     * "echo next" below, which sj_wait_events_quiet checks is exactly the
     * six events after n (and nothing after them). */
    events = sj_wait_events(s, "m", 12, WAIT_MS);
    n = json_array_size(events);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sj_int(json_array_get(events, i), "sequence"), (long long)i + 1);
    max_item = max_item_id(events);
    json_decref(events);
    sj_send_message(s, "m", "echo next");
    events = sj_wait_events_quiet(s, "m", n + 6, WAIT_MS);
    {
        const json_t *e = json_array_get(events, n);
        char want_item[32];
        sj_assert_envelope(e, (long long)n + 1, "m", "item.started", 0);
        assert_string_equal(sj_str(e, "data.item.native_item_id"), "mock_2_user");
        snprintf(want_item, sizeof want_item, "itm_%ld", max_item + 1);
        assert_string_equal(sj_str(e, "data.item.item_id"), want_item);
    }
    json_decref(events);
}

/* A second server on a data directory in use exits 1 at once, saying whose it
 * is, and touches nothing; the read-only commands keep working beside the
 * first; once the first is gone (even by kill -9) a server starts again. */
static void test_second_server_refused(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "mine", NULL));
    char *before = sj_get_events_text(s, "mine", "");

    const char *args[] = { "server", "--no-token", "--host", "127.0.0.1", "--port", "0",
                           "--data-dir", s->data_dir, NULL };
    struct sj_cli_result r;
    /* Before the lock, the second server ran until killed: a bounded wait. */
    sj_cli_finish(sj_cli_start(args, NULL), 10000, &r);
    if (r.exit_code != 1)
        sj_cli_dump("second server", &r);
    assert_int_equal(r.exit_code, 1);
    assert_string_equal(r.out, "");
    char *pid = sj_fmt("in use by another server (pid %ld)", (long)s->pid);
    sj_cli_assert_one_line(r.err, pid);
    free(pid);
    sj_cli_result_free(&r);

    const char *list[] = { "sessions", "list", "--quiet", "--data-dir", s->data_dir, NULL };
    sj_cli_run(list, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "mine\n");
    sj_cli_result_free(&r);
    const char *show[] = { "sessions", "show", "mine", "--data-dir", s->data_dir, NULL };
    sj_cli_run(show, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    sj_cli_result_free(&r);

    char *after = sj_get_events_text(s, "mine", "");
    assert_same_text(before, after, "the first server's events");
    free(after);
    sj_server_kill(s);
    restart(s); /* the stop is a no-op: this starts it on the same dir */
    after = sj_get_events_text(s, "mine", "");
    assert_same_text(before, after, "the events after kill -9");
    free(after);
    free(before);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, sj_setup_default, sj_teardown_default)
    const struct CMUnitTest tests[] = {
        T(test_restart_keeps_everything),
        T(test_restart_pending_question),
        T(test_restart_sse_resume),
        T(test_restart_empty),
        T(test_restart_session_id_still_taken),
        T(test_second_server_refused),
        cmocka_unit_test_setup_teardown(test_kill9_loses_nothing_acknowledged, setup_slow,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_stop_mid_turn, setup_slow, sj_teardown_default),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
