/* Integration tests of `sandbox-journal api`: every subcommand against the
 * real server with the mock agent.  What the CLI prints on a pipe must be
 * the server's answer byte for byte; errors are one line on stderr and a
 * non-zero exit; streams print one event per line and stop cleanly on
 * SIGINT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "httpc.h"
#include "server.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000
#define MAX_ARGS 32

/* Runs `sandbox-journal api -e <server> <args...>` (NULL-terminated). */
static void api(struct sj_server *s, struct sj_cli_result *r, ...)
{
    const char *args[MAX_ARGS];
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", s->port);
    size_t n = 0;
    args[n++] = "api";
    args[n++] = "-e";
    args[n++] = endpoint;
    va_list ap;
    va_start(ap, r);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n + 1 < MAX_ARGS)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    sj_cli_run(args, NULL, r);
}

static struct sj_cli_proc *api_start(struct sj_server *s, const char *const *rest)
{
    const char *args[MAX_ARGS];
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", s->port);
    size_t n = 0;
    args[n++] = "api";
    args[n++] = "-e";
    args[n++] = endpoint;
    for (size_t i = 0; rest[i] && n + 1 < MAX_ARGS; i++)
        args[n++] = rest[i];
    args[n] = NULL;
    return sj_cli_start(args, NULL);
}

static void assert_ok(const struct sj_cli_result *r, const char *what)
{
    if (r->exit_code != 0 || r->err_len != 0)
        sj_cli_dump(what, r);
    assert_int_equal(r->exit_code, 0);
    assert_int_equal(r->err_len, 0);
}

/* Asserts a failed call: exit 1, nothing on stdout, one line on stderr
 * containing `needle`. */
static void assert_failed(const struct sj_cli_result *r, const char *needle)
{
    if (r->exit_code != 1 || r->out_len != 0)
        sj_cli_dump("expected failure", r);
    assert_int_equal(r->exit_code, 1);
    assert_int_equal(r->out_len, 0);
    sj_cli_assert_one_line(r->err, needle);
}

/* stdout must be the body of `method path` plus one newline. */
static void assert_same_as_server(struct sj_server *s, const struct sj_cli_result *r,
                                  const char *path)
{
    struct httpc_response resp;
    sj_request(s, "GET", path, NULL, 1, &resp);
    assert_int_equal(resp.status, 200);
    char *want = sj_fmt("%s\n", resp.body);
    if (strcmp(r->out, want) != 0)
        fprintf(stderr, "GET %s\nserver: %scli:    %s", path, want, r->out);
    assert_string_equal(r->out, want);
    free(want);
    httpc_response_free(&resp);
}

static void test_agents(void **state)
{
    struct sj_server *s = *state;
    struct sj_cli_result r;

    api(s, &r, "agents", "list", NULL);
    assert_ok(&r, "agents list");
    assert_same_as_server(s, &r, "/v1/agents");
    sj_cli_result_free(&r);

    api(s, &r, "agents", "modes", "mock", NULL);
    assert_ok(&r, "agents modes");
    assert_same_as_server(s, &r, "/v1/agents/mock/modes");
    sj_cli_result_free(&r);

    api(s, &r, "agents", "install", "mock", NULL);
    assert_ok(&r, "agents install");
    assert_int_equal(r.out_len, 0);
    sj_cli_result_free(&r);

    api(s, &r, "agents", "install", "mock", "--reinstall", NULL);
    assert_ok(&r, "agents install --reinstall");
    sj_cli_result_free(&r);

    api(s, &r, "agents", "install", "nope", NULL);
    assert_failed(&r, "Unsupported Agent: unsupported agent: nope (HTTP 400)");
    sj_cli_result_free(&r);

    api(s, &r, "agents", "modes", "nope", NULL);
    assert_failed(&r, "Unsupported Agent: unsupported agent: nope (HTTP 400)");
    sj_cli_result_free(&r);
}

static void test_sessions_basic(void **state)
{
    struct sj_server *s = *state;
    struct sj_cli_result r;

    api(s, &r, "sessions", "create", "c1", "--agent", "mock", "--agent-mode", "build",
        "--permission-mode", "default", NULL);
    assert_ok(&r, "create");
    assert_string_equal(r.out, "{\"healthy\":true,\"nativeSessionId\":\"mock-c1\"}\n");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "create", "c1", "-a", "mock", NULL);
    assert_failed(&r, "Session Already Exists: session already exists: c1 (HTTP 409)");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "create", "c2", "-a", "nope", NULL);
    assert_failed(&r, "Unsupported Agent");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "send-message", "c1", "--message", "echo hello", NULL);
    assert_ok(&r, "send-message");
    assert_int_equal(r.out_len, 0);
    sj_cli_result_free(&r);
    json_decref(sj_wait_events_exact(s, "c1", 7, WAIT_MS));

    api(s, &r, "sessions", "list", NULL);
    assert_ok(&r, "sessions list");
    assert_same_as_server(s, &r, "/v1/sessions");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "events", "c1", NULL);
    assert_ok(&r, "events");
    assert_same_as_server(s, &r, "/v1/sessions/c1/events");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "events", "c1", "--offset", "2", "--limit", "3", NULL);
    assert_ok(&r, "events offset limit");
    assert_same_as_server(s, &r, "/v1/sessions/c1/events?offset=2&limit=3");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "get-messages", "c1", "-o", "5", "-l", "1", "--include-raw", NULL);
    assert_ok(&r, "get-messages");
    assert_same_as_server(s, &r, "/v1/sessions/c1/events?offset=5&limit=1&include_raw=true");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "events", "c1", "--offset", "x", NULL);
    assert_int_equal(r.exit_code, 2);
    sj_cli_assert_one_line(r.err, "--offset must be a number");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "terminate", "c1", NULL);
    assert_ok(&r, "terminate");
    assert_int_equal(r.out_len, 0);
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "send-message", "c1", "-m", "hello again", NULL);
    assert_failed(&r, "(HTTP 400)");
    sj_cli_result_free(&r);
}

static void test_not_found(void **state)
{
    struct sj_server *s = *state;
    struct sj_cli_result r;
    api(s, &r, "sessions", "events", "nope", NULL);
    assert_failed(&r, "sandbox-journal: Session Not Found: session not found: nope (HTTP 404)");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "send-message", "nope", "-m", "hi", NULL);
    assert_failed(&r, "Session Not Found");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "terminate", "nope", NULL);
    assert_failed(&r, "(HTTP 404)");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "events-sse", "nope", NULL);
    assert_failed(&r, "Session Not Found");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "send-message-stream", "nope", "-m", "hi", NULL);
    assert_failed(&r, "Session Not Found");
    sj_cli_result_free(&r);
}

/* Ids are escaped as one path segment: '/' and ' ' reach the server intact. */
static void test_escaped_ids(void **state)
{
    struct sj_server *s = *state;
    struct sj_cli_result r;
    api(s, &r, "sessions", "create", "a/b c", "-a", "mock", NULL);
    assert_ok(&r, "create a/b c");
    assert_string_equal(r.out, "{\"healthy\":true,\"nativeSessionId\":\"mock-a/b c\"}\n");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "events", "a/b c", NULL);
    assert_ok(&r, "events a/b c");
    assert_same_as_server(s, &r, "/v1/sessions/a%2Fb%20c/events");
    sj_cli_result_free(&r);
}

/* Each stdout line must equal (as JSON) the stored event of that sequence. */
static void assert_lines_are_events(struct sj_server *s, const char *id, const char *out,
                                    long long first_seq, size_t n)
{
    json_t *events = sj_wait_events(s, id, (size_t)first_seq + n - 1, WAIT_MS);
    assert_int_equal(sj_cli_count_lines(out), n);
    const char *line = out;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        json_error_t jerr;
        json_t *got = json_loadb(line, (size_t)(end - line), 0, &jerr);
        assert_non_null(got);
        json_t *want = json_array_get(events, (size_t)first_seq - 1 + i);
        if (!json_equal(got, want))
            fprintf(stderr, "line %zu: %.*s\n", i, (int)(end - line), line);
        assert_true(json_equal(got, want));
        json_decref(got);
        line = end + 1;
    }
    json_decref(events);
}

static void test_send_message_stream(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "st", NULL));
    struct sj_cli_result r;
    api(s, &r, "sessions", "send-message-stream", "st", "--message", "echo streamed", NULL);
    assert_ok(&r, "send-message-stream");
    /* session.started is before the turn; the turn is events 2..7. */
    assert_lines_are_events(s, "st", r.out, 2, 6);
    assert_non_null(strstr(r.out, "\"text\":\"streamed\""));
    sj_cli_result_free(&r);

    /* A turn that waits for a permission ends the stream at its request: the
     * user's message (3 events) and the first permission.requested. */
    api(s, &r, "sessions", "send-message-stream", "st", "-m", "permission", "--include-raw",
        NULL);
    assert_ok(&r, "send-message-stream permission");
    assert_lines_are_events(s, "st", r.out, 8, 4);
    assert_non_null(strstr(r.out, "\"type\":\"permission.requested\""));
    sj_cli_result_free(&r);
}

static void test_events_sse(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "sse", NULL));
    sj_send_message(s, "sse", "echo one");
    json_decref(sj_wait_events_exact(s, "sse", 7, WAIT_MS));

    const char *rest[] = { "sessions", "events-sse", "sse", NULL };
    struct sj_cli_proc *p = api_start(s, rest);
    assert_true(sj_cli_wait_for(p, "\"sequence\":7,", WAIT_MS));
    sj_send_message(s, "sse", "echo two");
    assert_true(sj_cli_wait_for(p, "\"sequence\":13,", WAIT_MS));
    sj_cli_signal(p, SIGINT);
    struct sj_cli_result r;
    sj_cli_finish(p, WAIT_MS, &r);
    assert_ok(&r, "events-sse after SIGINT");
    assert_lines_are_events(s, "sse", r.out, 1, 13);
    sj_cli_result_free(&r);

    /* --offset resumes after a sequence. */
    const char *resume[] = { "sessions", "events-sse", "sse", "--offset", "10", NULL };
    p = api_start(s, resume);
    assert_true(sj_cli_wait_for(p, "\"sequence\":13,", WAIT_MS));
    sj_cli_signal(p, SIGINT);
    sj_cli_finish(p, WAIT_MS, &r);
    assert_ok(&r, "events-sse --offset");
    assert_lines_are_events(s, "sse", r.out, 11, 3);
    sj_cli_result_free(&r);
}

static void test_permissions_and_questions(void **state)
{
    struct sj_server *s = *state;
    struct sj_cli_result r;
    json_decref(sj_create_session(s, "hitl", NULL));
    sj_send_message(s, "hitl", "permission");
    json_decref(sj_wait_events_exact(s, "hitl", 6, WAIT_MS));

    api(s, &r, "sessions", "reply-permission", "hitl", "mock_1_permission", "--reply", "maybe",
        NULL);
    assert_int_equal(r.exit_code, 2);
    sj_cli_assert_one_line(r.err, "--reply must be once, always or reject");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "reply-permission", "hitl", "mock_1_permission", "-r", "once", NULL);
    assert_ok(&r, "reply-permission");
    sj_cli_result_free(&r);
    json_t *events = sj_wait_events(s, "hitl", 7, WAIT_MS);
    assert_string_equal(sj_str(json_array_get(events, 6), "type"), "permission.resolved");
    assert_string_equal(sj_str(json_array_get(events, 6), "data.status"), "approved");
    json_decref(events);

    api(s, &r, "sessions", "reply-permission", "hitl", "nope", "-r", "reject", NULL);
    assert_failed(&r, "(HTTP 4");
    sj_cli_result_free(&r);

    sj_send_message(s, "hitl", "question");
    events = sj_wait_events(s, "hitl", 12, WAIT_MS);
    json_decref(events);

    api(s, &r, "sessions", "reply-question", "hitl", "mock_2_question", "--answers", "[\"Red\"]",
        NULL);
    assert_int_equal(r.exit_code, 2);
    sj_cli_assert_one_line(r.err, "--answers must be a JSON array of arrays of strings");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "reply-question", "hitl", "mock_2_question", "-a", "[[\"Red\"]]",
        NULL);
    assert_ok(&r, "reply-question");
    sj_cli_result_free(&r);

    api(s, &r, "sessions", "reject-question", "hitl", "mock_2_question_reject", NULL);
    assert_ok(&r, "reject-question");
    sj_cli_result_free(&r);

    events = sj_wait_events(s, "hitl", 14, WAIT_MS);
    assert_string_equal(sj_str(json_array_get(events, 12), "data.status"), "answered");
    assert_string_equal(sj_str(json_array_get(events, 12), "data.response"), "Red");
    assert_string_equal(sj_str(json_array_get(events, 13), "data.status"), "rejected");
    json_decref(events);

    api(s, &r, "sessions", "reject-question", "hitl", "mock_2_question_reject", NULL);
    assert_failed(&r, "(HTTP 4");
    sj_cli_result_free(&r);
}

/* On a terminal, JSON answers are indented; streams stay one event a line. */
static void test_pretty_on_terminal(void **state)
{
    struct sj_server *s = *state;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", s->port);
    struct sj_cli_result r;
    const char *create[] = { "api", "-e", endpoint, "sessions", "create", "tty", "-a", "mock",
                             NULL };
    sj_cli_run_tty(create, NULL, &r);
    assert_ok(&r, "create on a terminal");
    assert_string_equal(r.out, "{\n  \"healthy\": true,\n  \"nativeSessionId\": \"mock-tty\"\n}\n");
    sj_cli_result_free(&r);

    const char *stream[] = { "api", "-e", endpoint, "sessions", "send-message-stream", "tty",
                             "-m", "echo hi", NULL };
    sj_cli_run_tty(stream, NULL, &r);
    assert_ok(&r, "stream on a terminal");
    assert_lines_are_events(s, "tty", r.out, 2, 6);
    sj_cli_result_free(&r);
}

static void test_connection_refused(void **state)
{
    (void)state; /* no server on the port used here */
    /* Port 1 on loopback: nothing listens there in a test environment. */
    const char *args[] = { "api", "--endpoint", "http://127.0.0.1:1", "agents", "list", NULL };
    struct sj_cli_result r;
    sj_cli_run(args, NULL, &r);
    assert_failed(&r, "sandbox-journal: cannot reach http://127.0.0.1:1");
    sj_cli_result_free(&r);

    const char *stream[] = { "api", "-e", "http://127.0.0.1:1/", "sessions", "events-sse",
                             "x", NULL };
    sj_cli_run(stream, NULL, &r);
    assert_failed(&r, "cannot reach http://127.0.0.1:1");
    sj_cli_result_free(&r);

    /* A password in the endpoint is masked as `export` masks it (issue 13:
     * it was printed as typed). */
    const char *secret[][7] = {
        { "api", "-e", "http://me:hunter2@127.0.0.1:1/", "agents", "list", NULL },
        { "api", "-e", "http://me:hunter2@127.0.0.1:1", "sessions", "events-sse", "x", NULL },
        { "api", "-e", "ftp://me:hunter2@127.0.0.1", "agents", "list", NULL },
    };
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) {
        sj_cli_run(secret[i], NULL, &r);
        assert_true(r.exit_code != 0);
        if (strstr(r.err, "hunter2") || strstr(r.out, "hunter2"))
            fail_msg("password shown: %s", r.err);
        assert_non_null(strstr(r.err, "me:***@127.0.0.1"));
        sj_cli_result_free(&r);
    }
}

static void test_usage_errors(void **state)
{
    (void)state; /* usage is checked before any request */
    const char *cases[][8] = {
        { "api", NULL },
        { "api", "nope", NULL },
        { "api", "sessions", NULL },
        { "api", "sessions", "nope", NULL },
        { "api", "sessions", "create", "x", NULL },
        { "api", "sessions", "create", "--agent", "mock", NULL },
        { "api", "sessions", "send-message", "x", "--bogus", NULL },
        { "api", "sessions", "terminate", "x", "y", NULL },
        { "api", "--endpoint", "ftp://127.0.0.1", "agents", "list", NULL },
        { "api", "agents", "list", "--token", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sj_cli_result r;
        sj_cli_run(cases[i], NULL, &r);
        if (r.exit_code != 2)
            sj_cli_dump(cases[i][1] ? cases[i][1] : "api", &r);
        assert_int_equal(r.exit_code, 2);
        assert_int_equal(r.out_len, 0);
        sj_cli_assert_one_line(r.err, "sandbox-journal: ");
        sj_cli_result_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agents, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_sessions_basic, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_not_found, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_escaped_ids, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_send_message_stream, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_events_sse, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_permissions_and_questions, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_pretty_on_terminal, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
