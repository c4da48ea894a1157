/* Integration tests of the plain API surface: health, root, agents, modes,
 * install, session create/list/terminate, event paging, errors and unknown
 * routes, against the real binary. */
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

static void assert_json_equal_text(const json_t *v, const char *expected)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(s);
    if (strcmp(s, expected) != 0)
        fprintf(stderr, "expected: %s\n     got: %s\n", expected, s);
    assert_string_equal(s, expected);
    free(s);
}

static void test_health(void **state)
{
    struct sj_server *s = *state;
    struct httpc_response resp;
    json_t *body;

    sj_request(s, "GET", "/v1/health", NULL, 0, &resp);
    assert_int_equal(resp.status, 200);
    assert_non_null(httpc_header(&resp, "Content-Type"));
    assert_true(strncmp(httpc_header(&resp, "Content-Type"), "application/json", 16) == 0);
    body = httpc_json(&resp);
    /* v1's one field, and how far the search index is (issue 14). */
    assert_string_equal(sj_str(body, "status"), "ok");
    json_t *si = json_object_get(body, "searchIndex");
    assert_true(json_is_integer(json_object_get(si, "indexedThrough")));
    assert_true(json_is_integer(json_object_get(si, "lag")));
    assert_int_equal(json_object_size(body), 2);
    json_decref(body);
    httpc_response_free(&resp);

    /* HEAD answers like GET, without a body. */
    sj_request(s, "HEAD", "/v1/health", NULL, 0, &resp);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, 0);
    httpc_response_free(&resp);
}

static void test_root(void **state)
{
    struct sj_server *s = *state;
    struct httpc_response resp;
    /* The anchor answers a short text/plain description (wording not fixed). */
    sj_request(s, "GET", "/", NULL, 0, &resp);
    assert_int_equal(resp.status, 200);
    assert_non_null(httpc_header(&resp, "Content-Type"));
    assert_true(strncmp(httpc_header(&resp, "Content-Type"), "text/plain", 10) == 0);
    assert_true(resp.body_len > 0);
    httpc_response_free(&resp);
}

static void test_agents(void **state)
{
    static const char *const ids[] = {"claude", "codex",  "opencode", "amp",
                                      "mock",   "qwen",   "pi",       "gemini", "cursor"};
    struct sj_server *s = *state;
    json_t *r = sj_call(s, "GET", "/v1/agents", NULL, 200);
    json_t *agents = json_object_get(r, "agents");
    json_t *mock, *caps;

    assert_true(json_is_array(agents));
    assert_int_equal(json_array_size(agents), 9);
    for (size_t i = 0; i < 9; i++) {
        json_t *a = json_array_get(agents, i);
        assert_string_equal(sj_str(a, "id"), ids[i]);
        assert_true(json_is_boolean(json_object_get(a, "installed")));
        assert_true(json_is_object(json_object_get(a, "capabilities")));
        assert_int_equal(json_object_size(json_object_get(a, "capabilities")), 18);
    }
    mock = json_array_get(agents, 4);
    assert_true(json_is_true(json_object_get(mock, "installed")));
    caps = json_object_get(mock, "capabilities");
    {
        static const char *const keys[] = {
            "planMode",        "permissions",      "questions",   "toolCalls",
            "toolResults",     "textMessages",     "images",      "fileAttachments",
            "sessionLifecycle", "errorEvents",     "reasoning",   "status",
            "commandExecution", "fileChanges",     "mcpTools",    "streamingDeltas",
            "itemStarted"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            if (!json_is_true(json_object_get(caps, keys[i])))
                fail_msg("mock capability %s is not true", keys[i]);
        }
        assert_true(json_is_false(json_object_get(caps, "sharedProcess")));
    }
    /* No shared process, so no server status. */
    assert_true(json_object_get(mock, "serverStatus") == NULL ||
                json_is_null(json_object_get(mock, "serverStatus")));
    json_decref(r);
}

static void test_modes(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_call(s, "GET", "/v1/agents/mock/modes", NULL, 200);
    assert_json_equal_text(r, "{\"modes\":[{\"id\":\"build\",\"name\":\"Build\",\"description\":"
                              "\"Mock agent for UI testing\"},{\"id\":\"plan\",\"name\":\"Plan\","
                              "\"description\":\"Plan-only mock mode\"}]}");
    json_decref(r);
    sj_expect_problem(s, "GET", "/v1/agents/nope/modes", NULL, 400, "unsupported_agent");
}

static void test_install(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_call(s, "POST", "/v1/agents/mock/install", "{}", 204);
    assert_null(r);
    r = sj_call(s, "POST", "/v1/agents/mock/install", "{\"reinstall\":true}", 204);
    assert_null(r);
    sj_expect_problem(s, "POST", "/v1/agents/nope/install", "{}", 400, "unsupported_agent");
}

static void test_create_session(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_create_session(s, "s1", NULL);
    json_t *events;
    char *text;

    assert_true(json_is_true(json_object_get(r, "healthy")));
    assert_string_equal(sj_str(r, "nativeSessionId"), "mock-s1");
    assert_true(json_object_get(r, "error") == NULL || json_is_null(json_object_get(r, "error")));
    json_decref(r);

    /* Exactly one session.started, synthetic, with the request's metadata. */
    events = sj_wait_events_quiet(s, "s1", 1, 5000);
    sj_assert_envelope(json_array_get(events, 0), 1, "s1", "session.started", 1);
    text = sj_event_masked(json_array_get(events, 0));
    assert_string_equal(text, "{\"event_id\":\"evt_1\",\"sequence\":1,\"time\":\"T\","
                              "\"session_id\":\"s1\",\"native_session_id\":\"mock-s1\","
                              "\"synthetic\":true,\"source\":\"daemon\",\"type\":\"session.started\","
                              "\"data\":{\"metadata\":{\"agent\":\"mock\",\"agentMode\":\"build\","
                              "\"model\":null,\"permissionMode\":\"default\",\"variant\":null}},"
                              "\"raw\":null}");
    free(text);
    json_decref(events);
}

static void test_create_with_modes_and_list(void **state)
{
    struct sj_server *s = *state;
    json_t *r, *list, *sessions, *a, *b, *events;

    r = sj_create_session(s, "first", NULL);
    json_decref(r);
    r = sj_create_session(s, "second", "{\"agent\":\"mock\",\"agentMode\":\"plan\","
                                       "\"permissionMode\":\"bypass\",\"model\":\"m1\","
                                       "\"variant\":\"v1\"}");
    assert_string_equal(sj_str(r, "nativeSessionId"), "mock-second");
    json_decref(r);

    events = sj_wait_events(s, "second", 1, 5000);
    assert_json_equal_text(json_object_get(json_object_get(json_array_get(events, 0), "data"),
                                           "metadata"),
                           "{\"agent\":\"mock\",\"agentMode\":\"plan\",\"model\":\"m1\","
                           "\"permissionMode\":\"bypass\",\"variant\":\"v1\"}");
    json_decref(events);

    list = sj_call(s, "GET", "/v1/sessions", NULL, 200);
    sessions = json_object_get(list, "sessions");
    assert_int_equal(json_array_size(sessions), 2);
    /* Newest first. */
    a = json_array_get(sessions, 0);
    b = json_array_get(sessions, 1);
    assert_string_equal(sj_str(a, "sessionId"), "second");
    assert_string_equal(sj_str(a, "agent"), "mock");
    assert_string_equal(sj_str(a, "agentMode"), "plan");
    assert_string_equal(sj_str(a, "permissionMode"), "bypass");
    assert_string_equal(sj_str(a, "model"), "m1");
    assert_string_equal(sj_str(a, "variant"), "v1");
    assert_string_equal(sj_str(a, "nativeSessionId"), "mock-second");
    assert_true(json_is_false(json_object_get(a, "ended")));
    assert_int_equal(sj_int(a, "eventCount"), 1);

    assert_string_equal(sj_str(b, "sessionId"), "first");
    assert_string_equal(sj_str(b, "agentMode"), "build");
    assert_string_equal(sj_str(b, "permissionMode"), "default");
    assert_true(json_is_null(json_object_get(b, "model")));
    assert_true(json_is_null(json_object_get(b, "variant")));
    assert_string_equal(sj_str(b, "nativeSessionId"), "mock-first");
    assert_true(json_is_false(json_object_get(b, "ended")));
    assert_int_equal(sj_int(b, "eventCount"), 1);
    json_decref(list);
}

static void test_list_empty(void **state)
{
    struct sj_server *s = *state;
    json_t *list = sj_call(s, "GET", "/v1/sessions", NULL, 200);
    assert_json_equal_text(list, "{\"sessions\":[]}");
    json_decref(list);
}

static void test_create_conflict(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_create_session(s, "dup", NULL), *events;
    json_decref(r);
    sj_expect_problem(s, "POST", "/v1/sessions/dup", "{\"agent\":\"mock\"}", 409,
                   "session_already_exists");
    /* The failed create journaled nothing. */
    events = sj_wait_events_quiet(s, "dup", 1, 5000);
    json_decref(events);
}

static void test_create_errors(void **state)
{
    struct sj_server *s = *state;
    json_t *list;

    sj_expect_problem(s, "POST", "/v1/sessions/e1", "{not json", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/e1", "{}", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/e1", "{\"agent\":7}", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/e1", "[\"mock\"]", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/e1", "{\"agent\":\"mock\",\"agentMode\":5}", 400,
                   "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/e1", "{\"agent\":\"nope\"}", 400,
                   "unsupported_agent");
    sj_expect_problem(s, "POST", "/v1/sessions/e1", "{\"agent\":\"mock\",\"agentMode\":\"custom\"}",
                   400, "mode_not_supported");
    sj_expect_problem(s, "POST", "/v1/sessions/e1",
                   "{\"agent\":\"mock\",\"permissionMode\":\"acceptEdits\"}", 400,
                   "mode_not_supported");
    sj_expect_problem(s, "POST", "/v1/sessions/e1", "{\"agent\":\"mock\",\"permissionMode\":\"yolo\"}",
                   400, "invalid_request");

    /* Nothing was created. */
    list = sj_call(s, "GET", "/v1/sessions", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "sessions")), 0);
    json_decref(list);
    sj_expect_problem(s, "GET", "/v1/sessions/e1/events", NULL, 404, "session_not_found");
}

static void test_mode_error_detail(void **state)
{
    struct sj_server *s = *state;
    struct httpc_response resp;
    json_t *p;
    sj_request(s, "POST", "/v1/sessions/e2", "{\"agent\":\"mock\",\"agentMode\":\"custom\"}", 1,
               &resp);
    p = sj_assert_problem(&resp, 400, "mode_not_supported");
    assert_string_equal(sj_str(p, "title"), "Mode Not Supported");
    assert_non_null(strstr(sj_str(p, "detail"), "mode not supported: mock custom"));
    json_decref(p);
    httpc_response_free(&resp);

    sj_request(s, "POST", "/v1/sessions/e2", "{\"agent\":\"mock\",\"permissionMode\":\"yolo\"}", 1,
               &resp);
    p = sj_assert_problem(&resp, 400, "invalid_request");
    assert_string_equal(sj_str(p, "title"), "Invalid Request");
    assert_non_null(strstr(sj_str(p, "detail"), "invalid permission mode: yolo"));
    json_decref(p);
    httpc_response_free(&resp);
}

static void test_session_not_found(void **state)
{
    struct sj_server *s = *state;
    struct httpc_response resp;
    json_t *p;

    sj_request(s, "GET", "/v1/sessions/ghost/events", NULL, 1, &resp);
    p = sj_assert_problem(&resp, 404, "session_not_found");
    assert_string_equal(sj_str(p, "title"), "Session Not Found");
    assert_non_null(strstr(sj_str(p, "detail"), "ghost"));
    json_decref(p);
    httpc_response_free(&resp);

    sj_expect_problem(s, "POST", "/v1/sessions/ghost/messages", "{\"message\":\"hi\"}", 404,
                   "session_not_found");
    sj_expect_problem(s, "POST", "/v1/sessions/ghost/terminate", NULL, 404, "session_not_found");
    sj_expect_problem(s, "POST", "/v1/sessions/ghost/permissions/p1/reply", "{\"reply\":\"once\"}",
                   404, "session_not_found");
    sj_expect_problem(s, "POST", "/v1/sessions/ghost/questions/q1/reply", "{\"answers\":[[\"a\"]]}",
                   404, "session_not_found");
    sj_expect_problem(s, "POST", "/v1/sessions/ghost/questions/q1/reject", NULL, 404,
                   "session_not_found");
}

static void test_message_errors(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_create_session(s, "m", NULL), *events;
    json_decref(r);
    sj_expect_problem(s, "POST", "/v1/sessions/m/messages", "{oops", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/m/messages", "{}", 400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/m/messages", "{\"message\":42}", 400,
                   "invalid_request");
    sj_expect_problem(s, "POST", "/v1/sessions/m/messages", "{\"message\":null}", 400,
                   "invalid_request");
    /* None of them reached the agent. */
    events = sj_wait_events_quiet(s, "m", 1, 5000);
    json_decref(events);
}

/* A problem body for a plain HTTP error (no v1 ErrorType is defined for an
 * unknown path or method; the type URI is not pinned). */
static void expect_http_problem(struct sj_server *s, const char *method, const char *path,
                                int status, const char *allow)
{
    struct httpc_response resp;
    json_t *p;
    sj_request(s, method, path, NULL, 1, &resp);
    assert_int_equal(resp.status, status);
    assert_non_null(httpc_header(&resp, "Content-Type"));
    assert_true(strncmp(httpc_header(&resp, "Content-Type"), "application/problem+json", 24) == 0);
    p = httpc_json(&resp);
    assert_non_null(p);
    assert_non_null(sj_str(p, "type"));
    assert_non_null(sj_str(p, "title"));
    assert_non_null(sj_str(p, "detail"));
    assert_int_equal(sj_int(p, "status"), status);
    if (allow) {
        assert_non_null(httpc_header(&resp, "Allow"));
        assert_string_equal(httpc_header(&resp, "Allow"), allow);
    }
    json_decref(p);
    httpc_response_free(&resp);
}

static void test_unknown_route(void **state)
{
    struct sj_server *s = *state;
    expect_http_problem(s, "GET", "/v1/nope", 404, NULL);
    expect_http_problem(s, "GET", "/v1/sessions/x/events/extra", 404, NULL);
    expect_http_problem(s, "GET", "/nope", 404, NULL);
    /* A known path with the wrong method. */
    expect_http_problem(s, "DELETE", "/v1/sessions/x", 405, "POST");
    expect_http_problem(s, "DELETE", "/v1/health", 405, "GET");
    expect_http_problem(s, "POST", "/v1/sessions/x/events", 405, "GET");
}

static void test_terminate(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_create_session(s, "t", NULL), *events, *ev, *data, *list, *info;
    char *text;
    json_decref(r);

    r = sj_call(s, "POST", "/v1/sessions/t/terminate", NULL, 204);
    assert_null(r);
    events = sj_wait_events_exact(s, "t", 2, 5000);
    ev = json_array_get(events, 1);
    sj_assert_envelope(ev, 2, "t", "session.ended", 1);
    data = json_object_get(ev, "data");
    assert_string_equal(sj_str(data, "reason"), "terminated");
    assert_string_equal(sj_str(data, "terminated_by"), "daemon");
    text = sj_event_masked(ev);
    assert_string_equal(text, "{\"event_id\":\"evt_2\",\"sequence\":2,\"time\":\"T\","
                              "\"session_id\":\"t\",\"native_session_id\":\"mock-t\","
                              "\"synthetic\":true,\"source\":\"daemon\",\"type\":\"session.ended\","
                              "\"data\":{\"reason\":\"terminated\",\"terminated_by\":\"daemon\"},"
                              "\"raw\":null}");
    free(text);
    json_decref(events);

    list = sj_call(s, "GET", "/v1/sessions", NULL, 200);
    info = json_array_get(json_object_get(list, "sessions"), 0);
    assert_true(json_is_true(json_object_get(info, "ended")));
    assert_int_equal(sj_int(info, "eventCount"), 2);
    json_decref(list);

    /* A message to a terminated session is refused. */
    sj_expect_problem(s, "POST", "/v1/sessions/t/messages", "{\"message\":\"hi\"}", 400,
                   "invalid_request");
    /* Terminating again is accepted and journals nothing. */
    r = sj_call(s, "POST", "/v1/sessions/t/terminate", NULL, 204);
    assert_null(r);
    events = sj_wait_events_quiet(s, "t", 2, 5000);
    json_decref(events);
}

static void test_events_paging(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_create_session(s, "p", NULL), *events, *page;
    json_decref(r);
    sj_send_message(s, "p", "echo one two");
    /* session.started + user (3) + reply (3) */
    events = sj_wait_events_exact(s, "p", 7, 10000);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(sj_int(json_array_get(events, i), "sequence"), (long long)i + 1);
    json_decref(events);

    page = sj_get_events(s, "p", "?offset=2&limit=3");
    events = json_object_get(page, "events");
    assert_int_equal(json_array_size(events), 3);
    assert_int_equal(sj_int(json_array_get(events, 0), "sequence"), 3);
    assert_int_equal(sj_int(json_array_get(events, 2), "sequence"), 5);
    assert_true(json_is_true(json_object_get(page, "hasMore")));
    json_decref(page);

    page = sj_get_events(s, "p", "?offset=4&limit=3");
    events = json_object_get(page, "events");
    assert_int_equal(json_array_size(events), 3);
    assert_int_equal(sj_int(json_array_get(events, 0), "sequence"), 5);
    assert_true(json_is_false(json_object_get(page, "hasMore")));
    json_decref(page);

    page = sj_get_events(s, "p", "?offset=7");
    assert_int_equal(json_array_size(json_object_get(page, "events")), 0);
    assert_true(json_is_false(json_object_get(page, "hasMore")));
    json_decref(page);

    page = sj_get_events(s, "p", "?offset=100");
    assert_int_equal(json_array_size(json_object_get(page, "events")), 0);
    json_decref(page);

    page = sj_get_events(s, "p", "?limit=1");
    events = json_object_get(page, "events");
    assert_int_equal(json_array_size(events), 1);
    assert_int_equal(sj_int(json_array_get(events, 0), "sequence"), 1);
    assert_true(json_is_true(json_object_get(page, "hasMore")));
    json_decref(page);

    page = sj_get_events(s, "p", "?offset=0&limit=7");
    assert_int_equal(json_array_size(json_object_get(page, "events")), 7);
    assert_true(json_is_false(json_object_get(page, "hasMore")));
    json_decref(page);

    /* include_raw without any raw payload keeps raw null. */
    page = sj_get_events(s, "p", "?include_raw=true");
    events = json_object_get(page, "events");
    assert_int_equal(json_array_size(events), 7);
    for (size_t i = 0; i < 7; i++)
        assert_true(json_is_null(json_object_get(json_array_get(events, i), "raw")));
    json_decref(page);

    /* tail=N: the newest N events, without knowing the session's length. */
    page = sj_get_events(s, "p", "?tail=3");
    events = json_object_get(page, "events");
    assert_int_equal(json_array_size(events), 3);
    assert_int_equal(sj_int(json_array_get(events, 0), "sequence"), 5);
    assert_int_equal(sj_int(json_array_get(events, 2), "sequence"), 7);
    assert_true(json_is_false(json_object_get(page, "hasMore")));
    json_decref(page);
    page = sj_get_events(s, "p", "?tail=50");
    events = json_object_get(page, "events");
    assert_int_equal(json_array_size(events), 7);
    assert_int_equal(sj_int(json_array_get(events, 0), "sequence"), 1);
    json_decref(page);

    /* Malformed query values are rejected. */
    sj_expect_problem(s, "GET", "/v1/sessions/p/events?offset=abc", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/sessions/p/events?limit=-1", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/sessions/p/events?tail=0", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/sessions/p/events?tail=10001", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/sessions/p/events?tail=2&offset=1", NULL, 400,
                      "invalid_request");
}

static int setup_big(void **state)
{
    static const char *const args[] = {"--max-body-bytes", "8388608", NULL};
    return sj_setup_with(state, args);
}

#define PAGE_BUDGET (4 * 1024 * 1024)

static void test_events_page_byte_budget(void **state)
{
    /* A page stops at 4 MiB of events with hasMore, so one unread response
     * never pins a whole session; the pages still cover every event once. */
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "big", NULL));
    sj_send_big(s, "big", 1200 * 1024);
    sj_send_big(s, "big", 1200 * 1024);
    sj_wait_sequence(s, "big", 13, 60000);
    long long next = 1;
    int pages = 0, more = 1;
    while (more) {
        char *q = sj_fmt("?offset=%lld", next - 1);
        char *text = sj_get_events_text(s, "big", q);
        free(q);
        json_t *page = json_loads(text, 0, NULL);
        assert_non_null(page);
        json_t *events = json_object_get(page, "events");
        size_t n = json_array_size(events);
        fprintf(stderr, "page %d: %zu events, %zu bytes\n", pages, n, strlen(text));
        assert_true(n >= 1);
        assert_true(strlen(text) <= PAGE_BUDGET + 1024);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(sj_int(json_array_get(events, i), "sequence"), next++);
        more = json_is_true(json_object_get(page, "hasMore"));
        json_decref(page);
        free(text);
        pages++;
        assert_true(pages < 20);
    }
    assert_int_equal(next, 14);
    assert_true(pages >= 4); /* 12 events of 1.2 MiB: at most 3 a page */
}

static void test_events_page_large_event_alone(void **state)
{
    /* An event larger than the page budget is still served, alone. */
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "huge", NULL));
    sj_send_big(s, "huge", PAGE_BUDGET + 512 * 1024);
    sj_wait_sequence(s, "huge", 7, 60000);
    for (long long seq = 2; seq <= 7; seq++) {
        char *q = sj_fmt("?offset=%lld", seq - 1);
        json_t *page = sj_get_events(s, "huge", q);
        free(q);
        json_t *events = json_object_get(page, "events");
        assert_int_equal(json_array_size(events), 1);
        assert_int_equal(sj_int(json_array_get(events, 0), "sequence"), seq);
        assert_true(json_is_true(json_object_get(page, "hasMore")) == (seq < 7));
        json_decref(page);
    }
}

/* The anchor reports the built-in mock as version "builtin". */
static void test_mock_agent_version(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_call(s, "GET", "/v1/agents", NULL, 200);
    json_t *mock = json_array_get(json_object_get(r, "agents"), 4);
    assert_string_equal(sj_str(mock, "id"), "mock");
    if (!sj_str(mock, "version"))
        fprintf(stderr, "mock agent has no \"version\" (anchor: \"builtin\")\n");
    assert_non_null(sj_str(mock, "version"));
    assert_string_equal(sj_str(mock, "version"), "builtin");
    json_decref(r);
}

/* The anchor's ProblemDetails extensions: agent, sessionId, details. */
static void test_problem_extensions(void **state)
{
    struct sj_server *s = *state;
    struct httpc_response resp;
    json_t *p, *r;

    sj_request(s, "GET", "/v1/sessions/ghost/events", NULL, 1, &resp);
    p = sj_assert_problem(&resp, 404, "session_not_found");
    assert_string_equal(sj_str(p, "detail"), "session not found: ghost");
    assert_string_equal(sj_str(p, "sessionId"), "ghost");
    json_decref(p);
    httpc_response_free(&resp);

    r = sj_create_session(s, "x", NULL);
    json_decref(r);
    sj_request(s, "POST", "/v1/sessions/x", "{\"agent\":\"mock\"}", 1, &resp);
    p = sj_assert_problem(&resp, 409, "session_already_exists");
    assert_string_equal(sj_str(p, "detail"), "session already exists: x");
    assert_string_equal(sj_str(p, "sessionId"), "x");
    json_decref(p);
    httpc_response_free(&resp);

    sj_request(s, "POST", "/v1/sessions/y", "{\"agent\":\"zzz\"}", 1, &resp);
    p = sj_assert_problem(&resp, 400, "unsupported_agent");
    assert_string_equal(sj_str(p, "detail"), "unsupported agent: zzz");
    assert_string_equal(sj_str(p, "agent"), "zzz");
    json_decref(p);
    httpc_response_free(&resp);

    sj_request(s, "POST", "/v1/sessions/y", "{\"agent\":\"mock\",\"permissionMode\":\"yolo\"}", 1,
               &resp);
    p = sj_assert_problem(&resp, 400, "invalid_request");
    assert_string_equal(sj_str(p, "detail"), "invalid request: invalid permission mode: yolo");
    json_decref(p);
    httpc_response_free(&resp);

    sj_request(s, "POST", "/v1/sessions/y", "{\"agent\":\"mock\",\"agentMode\":\"custom\"}", 1,
               &resp);
    p = sj_assert_problem(&resp, 400, "mode_not_supported");
    assert_string_equal(sj_str(p, "detail"), "mode not supported: mock custom");
    assert_string_equal(sj_str(p, "agent"), "mock");
    if (!sj_str(p, "details.mode"))
        fprintf(stderr, "mode_not_supported has no details.mode (anchor: {\"mode\":\"custom\"})\n");
    assert_non_null(sj_str(p, "details.mode"));
    assert_string_equal(sj_str(p, "details.mode"), "custom");
    json_decref(p);
    httpc_response_free(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_root, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_agents, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_modes, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_install, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_create_session, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_create_with_modes_and_list, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_list_empty, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_create_conflict, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_create_errors, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_mode_error_detail, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_session_not_found, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_message_errors, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_unknown_route, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_terminate, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_events_paging, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_events_page_byte_budget, setup_big,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_events_page_large_event_alone, setup_big,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_mock_agent_version, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_problem_extensions, sj_setup_default,
                                        sj_teardown_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
