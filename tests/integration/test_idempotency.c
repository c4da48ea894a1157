/* Integration tests of Idempotency-Key on every POST that changes state:
 * a repeat gets the first answer and acts no further (also after kill -9),
 * concurrent repeats act once, another request under the same key gets 422
 * and acts not at all, keys expire, malformed keys get 400. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "httpc.h"
#include "server.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000

/* POST with an Idempotency-Key header (key NULL: none; the line is sent as
 * given, so malformed values reach the server). */
static void post_key(struct sj_server *s, const char *path, const char *body, const char *key,
                     struct httpc_response *resp)
{
    char line[600];
    snprintf(line, sizeof line, "Idempotency-Key: %s", key ? key : "");
    const char *headers[] = { "Content-Type: application/json", key ? line : NULL, NULL };
    int rc = httpc_request(s->port, "POST", path, headers, body, body ? strlen(body) : 0,
                           HTTPC_DEFAULT_TIMEOUT_MS, resp);
    if (rc != 0)
        fail_msg("POST %s: %s", path, httpc_strerror(rc));
}

/* Asserts status and body, and whether the answer says it is a replay. */
static void expect(struct sj_server *s, const char *path, const char *body, const char *key,
                   int status, const char *want_body, int replayed)
{
    struct httpc_response r;
    post_key(s, path, body, key, &r);
    if (r.status != status)
        fprintf(stderr, "POST %s (key %s): %d %s\n", path, key, r.status, r.body);
    assert_int_equal(r.status, status);
    if (want_body)
        assert_string_equal(r.body, want_body);
    const char *h = httpc_header(&r, "Idempotent-Replayed");
    if (replayed)
        assert_true(h && strcmp(h, "true") == 0);
    else
        assert_null(h);
    httpc_response_free(&r);
}

/* Asserts a plain-HTTP ProblemDetails answer (about:blank) of `status`. */
static void expect_problem(struct sj_server *s, const char *path, const char *body,
                           const char *key, int status)
{
    struct httpc_response r;
    post_key(s, path, body, key, &r);
    if (r.status != status)
        fprintf(stderr, "POST %s (key %s): %d %s\n", path, key, r.status, r.body);
    assert_int_equal(r.status, status);
    const char *ct = httpc_header(&r, "Content-Type");
    assert_true(ct && strncmp(ct, "application/problem+json", 24) == 0);
    json_t *p = httpc_json(&r);
    assert_non_null(p);
    assert_int_equal(sj_int(p, "status"), status);
    assert_non_null(sj_str(p, "detail"));
    json_decref(p);
    httpc_response_free(&r);
}

static void restart_after_kill(struct sj_server *s)
{
    sj_server_kill(s);
    if (sj_server_restart(s) != 0) /* the stop is a no-op: starts it again */
        fail_msg("restart failed (exit status %d)", s->exit_status);
}

/* A repeated create answers like the first (200, same body), not 409. */
static void test_create_repeat(void **state)
{
    struct sj_server *s = *state;
    struct httpc_response r;
    post_key(s, "/v1/sessions/c", "{\"agent\":\"mock\"}", "create-1", &r);
    assert_int_equal(r.status, 200);
    char *first = strdup(r.body);
    assert_null(httpc_header(&r, "Idempotent-Replayed"));
    httpc_response_free(&r);
    expect(s, "/v1/sessions/c", "{\"agent\":\"mock\"}", "create-1", 200, first, 1);
    /* Without the key, the same create is the conflict it always was. */
    sj_expect_problem(s, "POST", "/v1/sessions/c", "{\"agent\":\"mock\"}", 409,
                      "session_already_exists");
    /* The key on another path: 422, and no session "c2". */
    expect_problem(s, "/v1/sessions/c2", "{\"agent\":\"mock\"}", "create-1", 422);
    sj_expect_problem(s, "GET", "/v1/sessions/c2/events", NULL, 404, "session_not_found");
    restart_after_kill(s);
    expect(s, "/v1/sessions/c", "{\"agent\":\"mock\"}", "create-1", 200, first, 1);
    free(first);
    json_t *events = sj_wait_events_quiet(s, "c", 1, WAIT_MS);
    json_decref(events);
}

/* A message repeated before and after kill -9 is taken once. */
static void test_message_repeat_kill9(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "m", NULL));
    const char *path = "/v1/sessions/m/messages";
    const char *body = "{\"message\":\"echo once\"}";
    expect(s, path, body, "msg-1", 204, "", 0);
    json_decref(sj_wait_events_exact(s, "m", 7, WAIT_MS));
    expect(s, path, body, "msg-1", 204, "", 1);
    restart_after_kill(s);
    expect(s, path, body, "msg-1", 204, "", 1);
    /* The barrier turn follows event 7 directly: no second "echo once". */
    json_decref(sj_wait_events_quiet(s, "m", 7, WAIT_MS));
}

/* kill -9 right after the answer: "acknowledged" means "remembered". */
static void test_kill9_right_after_answer(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "k", NULL));
    expect(s, "/v1/sessions/k/messages", "{\"message\":\"echo fast\"}", "fast-1", 204, "", 0);
    restart_after_kill(s);
    expect(s, "/v1/sessions/k/messages", "{\"message\":\"echo fast\"}", "fast-1", 204, "", 1);
    /* The user's message (event 2) was journaled once; the turn the kill
     * cut short may or may not have ended, so count user items only. */
    json_t *events = sj_get_events(s, "k", "");
    size_t n_user = 0, i;
    json_t *ev;
    json_array_foreach(json_object_get(events, "events"), i, ev) {
        const char *role = sj_str(ev, "data.item.role");
        const char *type = sj_str(ev, "type");
        if (role && type && strcmp(role, "user") == 0 && strcmp(type, "item.completed") == 0)
            n_user++;
    }
    assert_int_equal(n_user, 1);
    json_decref(events);
}

/* The same key for another body or another route: 422, nothing done. */
static void test_other_request_422(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "d", NULL));
    expect(s, "/v1/sessions/d/messages", "{\"message\":\"echo a\"}", "d-1", 204, "", 0);
    json_decref(sj_wait_events_exact(s, "d", 7, WAIT_MS));
    expect_problem(s, "/v1/sessions/d/messages", "{\"message\":\"echo b\"}", "d-1", 422);
    expect_problem(s, "/v1/sessions/d/messages/stream", "{\"message\":\"echo a\"}", "d-1", 422);
    expect_problem(s, "/v1/sessions/d/terminate", NULL, "d-1", 422);
    /* Not terminated, and no "echo b": the barrier turn follows event 7. */
    json_decref(sj_wait_events_quiet(s, "d", 7, WAIT_MS));
}

struct racer {
    struct sj_server *s;
    pthread_barrier_t *start;
    int status;
    int replayed;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct httpc_response resp;
    const char *headers[] = { "Content-Type: application/json", "Idempotency-Key: race-1",
                              NULL };
    const char *body = "{\"message\":\"echo raced\"}";
    pthread_barrier_wait(r->start);
    if (httpc_request(r->s->port, "POST", "/v1/sessions/r/messages", headers, body,
                      strlen(body), HTTPC_DEFAULT_TIMEOUT_MS, &resp) != 0)
        return NULL;
    r->status = resp.status;
    r->replayed = httpc_header(&resp, "Idempotent-Replayed") != NULL;
    httpc_response_free(&resp);
    return NULL;
}

/* N requests with one key at once: one acts; the others wait their turn
 * (409) or get its answer. */
static void test_concurrent_repeats(void **state)
{
    enum { N = 8 };
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "r", NULL));
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, N), 0);
    struct racer racers[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        racers[i] = (struct racer){ .s = s, .start = &start };
        assert_int_equal(pthread_create(&th[i], NULL, race, &racers[i]), 0);
    }
    int acted = 0, answered = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_true(racers[i].status == 204 || racers[i].status == 409);
        if (racers[i].status == 204 && !racers[i].replayed)
            acted++;
        if (racers[i].status == 204)
            answered++;
    }
    pthread_barrier_destroy(&start);
    fprintf(stderr, "%d of %d answered 204, %d acted\n", answered, N, acted);
    assert_int_equal(acted, 1);
    json_decref(sj_wait_events_quiet(s, "r", 7, WAIT_MS));
}

/* A refused request is not remembered: its key works once the cause is
 * gone.  A failed one (5xx) is not either; 4xx shown here. */
static void test_refusal_not_remembered(void **state)
{
    struct sj_server *s = *state;
    sj_expect_problem(s, "POST", "/v1/sessions/later/messages", "{\"message\":\"x\"}", 404,
                      "session_not_found");
    struct httpc_response r;
    post_key(s, "/v1/sessions/later/messages", "{\"message\":\"echo x\"}", "later-1", &r);
    assert_int_equal(r.status, 404);
    httpc_response_free(&r);
    json_decref(sj_create_session(s, "later", NULL));
    expect(s, "/v1/sessions/later/messages", "{\"message\":\"echo x\"}", "later-1", 204, "", 0);
    expect(s, "/v1/sessions/later/messages", "{\"message\":\"echo x\"}", "later-1", 204, "", 1);
    json_decref(sj_wait_events_quiet(s, "later", 7, WAIT_MS));
}

static void test_invalid_keys(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "v", NULL));
    char longkey[300];
    memset(longkey, 'k', 256);
    longkey[256] = '\0';
    const char *bad[] = { "", longkey, "caf\xc3\xa9", "a\tb" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_problem(s, "/v1/sessions/v/messages", "{\"message\":\"echo no\"}", bad[i], 400);
    longkey[255] = '\0'; /* 255 is the longest allowed */
    expect(s, "/v1/sessions/v/messages", "{\"message\":\"echo yes\"}", longkey, 204, "", 0);
    json_decref(sj_wait_events_quiet(s, "v", 7, WAIT_MS));
}

/* Reads a turn stream to its end; new: the events' ids joined by ",". */
static char *stream_ids(struct sj_server *s, const char *path, const char *body, const char *key,
                        int *replayed)
{
    char line[300];
    snprintf(line, sizeof line, "Idempotency-Key: %s", key);
    const char *headers[] = { "Content-Type: application/json", line, NULL };
    struct httpc_response head;
    struct httpc_sse *sse = NULL;
    assert_int_equal(httpc_sse_open(s->port, "POST", path, headers, body, strlen(body), WAIT_MS,
                                    &head, &sse),
                     0);
    assert_int_equal(head.status, 200);
    assert_non_null(sse);
    *replayed = httpc_header(&head, "Idempotent-Replayed") != NULL;
    httpc_response_free(&head);
    char ids[4096] = "";
    struct httpc_sse_event ev;
    int rc;
    while ((rc = httpc_sse_next(sse, WAIT_MS, &ev)) == 1) {
        if (strlen(ids) + 32 < sizeof ids)
            snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s,", ev.id ? ev.id : "?");
        httpc_sse_event_free(&ev);
    }
    assert_int_equal(rc, 0);
    httpc_sse_close(sse);
    return strdup(ids);
}

/* Every route that takes the header: the repeat gets the first answer and
 * acts no further. */
static void test_every_route(void **state)
{
    struct sj_server *s = *state;
    expect(s, "/v1/sessions/e", "{\"agent\":\"mock\"}", "e-create", 200, NULL, 0);
    expect(s, "/v1/sessions/e", "{\"agent\":\"mock\"}", "e-create", 200, NULL, 1);

    /* messages/stream: a repeat streams the same turn from the journal. */
    int replayed;
    char *first = stream_ids(s, "/v1/sessions/e/messages/stream", "{\"message\":\"echo s\"}",
                             "e-stream", &replayed);
    assert_false(replayed);
    char *again = stream_ids(s, "/v1/sessions/e/messages/stream", "{\"message\":\"echo s\"}",
                             "e-stream", &replayed);
    assert_true(replayed);
    assert_string_equal(first, "2,3,4,5,6,7,");
    assert_string_equal(first, again);
    free(first);
    free(again);

    /* Permission and question replies (the mock asks two of each). */
    expect(s, "/v1/sessions/e/messages", "{\"message\":\"permission\"}", "e-perm-msg", 204, "",
           0);
    json_decref(sj_wait_events_exact(s, "e", 12, WAIT_MS));
    const char *perm = "/v1/sessions/e/permissions/mock_2_permission/reply";
    expect(s, perm, "{\"reply\":\"once\"}", "e-perm", 204, "", 0);
    expect(s, perm, "{\"reply\":\"once\"}", "e-perm", 204, "", 1);
    json_decref(sj_wait_events_exact(s, "e", 13, WAIT_MS));
    expect(s, "/v1/sessions/e/messages", "{\"message\":\"question\"}", "e-q-msg", 204, "", 0);
    json_decref(sj_wait_events_exact(s, "e", 18, WAIT_MS));
    const char *qr = "/v1/sessions/e/questions/mock_3_question/reply";
    expect(s, qr, "{\"answers\":[[\"Red\"]]}", "e-q", 204, "", 0);
    expect(s, qr, "{\"answers\":[[\"Red\"]]}", "e-q", 204, "", 1);
    const char *qj = "/v1/sessions/e/questions/mock_3_question_reject/reject";
    expect(s, qj, NULL, "e-qj", 204, "", 0);
    expect(s, qj, NULL, "e-qj", 204, "", 1);
    json_decref(sj_wait_events_exact(s, "e", 20, WAIT_MS));

    expect(s, "/v1/agents/mock/install", "{}", "e-install", 204, "", 0);
    expect(s, "/v1/agents/mock/install", "{}", "e-install", 204, "", 1);

    expect(s, "/v1/sessions/e/terminate", NULL, "e-term", 204, "", 0);
    expect(s, "/v1/sessions/e/terminate", NULL, "e-term", 204, "", 1);
    /* Terminating twice journals nothing the second time: remembered alone. */
    expect(s, "/v1/sessions/e/terminate", NULL, "e-term-2", 204, "", 0);
    expect(s, "/v1/sessions/e/terminate", NULL, "e-term-2", 204, "", 1);
    restart_after_kill(s);
    expect(s, "/v1/sessions/e/terminate", NULL, "e-term-2", 204, "", 1);
    expect(s, qr, "{\"answers\":[[\"Red\"]]}", "e-q", 204, "", 1);
    json_decref(sj_wait_events_quiet(s, "e", 21, WAIT_MS));
}

static int setup_short_ttl(void **state)
{
    static const char *const args[] = { "--idempotency-ttl-s", "2", NULL };
    return sj_setup_with(state, args);
}

/* Past its time a key is forgotten: the same request acts again. */
static void test_expiry(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "x", NULL));
    const char *path = "/v1/sessions/x/messages", *body = "{\"message\":\"echo t\"}";
    expect(s, path, body, "ttl-1", 204, "", 0);
    expect(s, path, body, "ttl-1", 204, "", 1); /* within its 2 s: remembered */
    json_decref(sj_wait_events_exact(s, "x", 7, WAIT_MS));
    int acted = 0;
    for (int i = 0; i < 50 && !acted; i++) { /* at most 10 s */
        struct httpc_response r;
        post_key(s, path, body, "ttl-1", &r);
        assert_int_equal(r.status, 204);
        acted = httpc_header(&r, "Idempotent-Replayed") == NULL;
        httpc_response_free(&r);
        if (!acted)
            sj_sleep_ms(200);
    }
    assert_true(acted);
    json_decref(sj_wait_events_quiet(s, "x", 13, WAIT_MS));
}

/* `sandbox-journal api ... --idempotency-key K`: run twice, the message is
 * taken once; a key the server would refuse is refused before sending. */
static void test_cli_option(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "cli", NULL));
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", s->port);
    const char *args[] = { "api", "-e", endpoint, "sessions", "send-message", "cli", "-m",
                           "echo by cli", "--idempotency-key", "cli-1", NULL };
    struct sj_cli_result r;
    for (int i = 0; i < 2; i++) {
        sj_cli_run(args, NULL, &r);
        if (r.exit_code != 0)
            sj_cli_dump("send-message", &r);
        assert_int_equal(r.exit_code, 0);
        sj_cli_result_free(&r);
    }
    json_decref(sj_wait_events_quiet(s, "cli", 7, WAIT_MS));
    const char *bad[] = { "api", "-e", endpoint, "sessions", "send-message", "cli", "-m",
                          "echo no", "--idempotency-key", "a\nb", NULL };
    sj_cli_run(bad, NULL, &r);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "printable ASCII"));
    sj_cli_result_free(&r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, sj_setup_default, sj_teardown_default)
    const struct CMUnitTest tests[] = {
        T(test_create_repeat),
        T(test_message_repeat_kill9),
        T(test_kill9_right_after_answer),
        T(test_other_request_422),
        T(test_concurrent_repeats),
        T(test_refusal_not_remembered),
        T(test_invalid_keys),
        T(test_every_route),
        T(test_cli_option),
        cmocka_unit_test_setup_teardown(test_expiry, setup_short_ttl, sj_teardown_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
