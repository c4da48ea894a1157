/* End-to-end flows of the real ACP agents; see e2e_acp.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "e2e_acp.h"

#include "e2e.h"
#include "server.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The agents are Node programs; the first turn includes their start-up. */
#define WAIT_MS 120000

static const struct e2e_acp_agent *acp;

void e2e_acp_use(const struct e2e_acp_agent *agent)
{
    acp = agent;
}

static void start(struct e2e_rig *t, const char *script)
{
    e2e_rig_start(t, acp->id, script, NULL);
}

static void create(struct e2e_rig *t, const char *sid)
{
    char *body = sj_fmt("{\"agent\":\"%s\",\"model\":\"fake-model\"}", acp->id);
    json_decref(sj_create_session(&t->srv, sid, body));
    free(body);
}

/* Sends `text`; the sequence before it. */
static long long turn(struct e2e_rig *t, const char *sid, const char *text)
{
    long long before = e2e_last_sequence(&t->srv, sid);
    sj_send_message(&t->srv, sid, text);
    return before;
}

/* new: the text of the assistant message completed after `after`. */
static char *answer(struct e2e_rig *t, const char *sid, long long after)
{
    json_t *done = e2e_wait_assistant_done(&t->srv, sid, after, WAIT_MS);
    const json_t *content = json_object_get(json_object_get(json_object_get(done, "data"),
                                                            "item"),
                                            "content");
    size_t i;
    const json_t *part;
    char *text = NULL;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        const char *s = json_string_value(json_object_get(part, "text"));
        if (type && strcmp(type, "text") == 0 && s) {
            char *joined = sj_fmt("%s%s", text ? text : "", s);
            free(text);
            text = joined;
        }
    }
    json_decref(done);
    return text ? text : strdup("");
}

static void expect_answer(struct e2e_rig *t, const char *sid, long long after, const char *want)
{
    char *got = answer(t, sid, after);
    assert_string_equal(got, want);
    free(got);
}

/* new: the turn requests the agent made to the fake, in order. */
static json_t *model_requests(struct e2e_rig *t)
{
    return e2e_fake_requests(&t->fake, acp->model_path ? acp->model_path : "/v1/chat/completions");
}

/* The first live child of the server (the agent process), or 0. */
static int first_child(void *ctx, pid_t pid, const char *comm, char state)
{
    (void)comm;
    if (state == 'Z')
        return 0;
    *(pid_t *)ctx = pid;
    return 1;
}

static pid_t agent_pid(struct e2e_rig *t)
{
    pid_t pid = 0;
    assert_true(e2e_each_child(t->srv.pid, first_child, &pid) >= 0);
    return pid;
}

static void wait_no_agent(struct e2e_rig *t)
{
    for (int waited = 0; waited < 20000; waited += 50) {
        if (agent_pid(t) == 0)
            return;
        sj_sleep_ms(50);
    }
    fail_msg("the agent process is still there");
}

/* An item.delta of the agent's own (the user's message has a synthetic one). */
static int is_agent_delta(const json_t *ev)
{
    return !json_is_true(json_object_get(ev, "synthetic"));
}

void e2e_acp_text_turn(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"steps\":[{\"text\":[\"Hello \",\"from \",\"the \",\"chat fake.\"]}]}");
    create(t, "x1");
    long long before = turn(t, "x1", "say hello");
    expect_answer(t, "x1", before, "Hello from the chat fake.");
    json_t *events = e2e_events(&t->srv, "x1");
    size_t i, deltas = 0;
    const json_t *ev;
    json_array_foreach(events, i, ev)
        if (strcmp(sj_str(ev, "type"), "item.delta") == 0 && is_agent_delta(ev))
            deltas++;
    /* Streamed: the four pieces the model sent arrive as deltas. */
    assert_int_equal(deltas, 4);
    assert_true(e2e_json_contains(events, "say hello"));
    json_decref(events);
    /* The session's model and our key reached the endpoint. */
    json_t *reqs = model_requests(t);
    assert_int_equal(json_array_size(reqs), 1);
    const json_t *req = json_array_get(reqs, 0);
    if (acp->key_header) {
        char *header = sj_fmt("headers.%s", acp->key_header);
        assert_string_equal(sj_str(req, header), "sk-test-e2e");
        free(header);
    } else {
        assert_string_equal(sj_str(req, "body.model"), "fake-model");
        assert_string_equal(sj_str(req, "headers.authorization"), "Bearer sk-test-e2e");
    }
    assert_true(e2e_json_contains(req, "say hello"));
    json_decref(reqs);
}

/* The shell call; with `reply` ("once" or "reject") when the agent asks. */
static void shell_flow(struct e2e_rig *t, const char *reply)
{
    char *script = sj_fmt("{\"steps\":[{\"tool\":{\"name\":\"%s\",\"input\":%s}},"
                          "{\"text\":\"done\"}]}",
                          acp->shell_tool, acp->shell_input);
    start(t, script);
    free(script);
    create(t, "a1");
    long long before = turn(t, "a1", "create out.txt");
    long long after = before;
    if (acp->asks_permission) {
        json_t *asked = e2e_wait_event(&t->srv, "a1", before, "permission.requested", NULL,
                                       WAIT_MS);
        assert_non_null(strstr(sj_str(asked, "data.action"), "echo hi > out.txt"));
        char *path = sj_fmt("/v1/sessions/a1/permissions/%s/reply",
                            sj_str(asked, "data.permission_id"));
        char *body = sj_fmt("{\"reply\":\"%s\"}", reply);
        json_decref(sj_call(&t->srv, "POST", path, body, 204));
        free(path);
        free(body);
        after = sj_int(asked, "sequence");
        json_decref(asked);
    }
    expect_answer(t, "a1", after, "done");
    char *out = sj_fmt("%s/out.txt", t->work);
    struct stat st;
    json_t *events = e2e_events(&t->srv, "a1");
    json_t *reqs = model_requests(t);
    assert_int_equal(json_array_size(reqs), 2);
    const json_t *second = json_array_get(reqs, 1);
    /* The tool's outcome went back to the model as a tool message. */
    assert_true(e2e_json_contains(second, acp->tool_result ? acp->tool_result
                                                           : "\"role\":\"tool\""));
    if (strcmp(reply, "reject") == 0) {
        assert_int_not_equal(stat(out, &st), 0);
        assert_true(e2e_json_contains(second, "canceled by the user"));
    } else {
        /* It ran in the session's working directory. */
        assert_int_equal(stat(out, &st), 0);
        assert_int_equal(st.st_size, 3);
        assert_true(e2e_json_contains(events, "\"tool_result\""));
    }
    json_decref(reqs);
    json_decref(events);
    free(out);
}

void e2e_acp_shell_granted(void **state)
{
    shell_flow(*state, "once");
}

void e2e_acp_shell_rejected(void **state)
{
    if (!acp->asks_permission) {
        fprintf(stderr, "e2e: %s never asks before running a tool: skipped\n", acp->id);
        skip();
    }
    shell_flow(*state, "reject");
}

/* Two sessions at once, each its own agent process: each sees only its
 * own answer (the fake answers from the request's own text). */
void e2e_acp_two_sessions(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"after\":{\"text\":\"{{re:count the (apples|pears)}} are noted\",\"chunks\":6,"
             "\"chunk_delay_ms\":100}}");
    create(t, "p1");
    create(t, "p2");
    long long b1 = turn(t, "p1", "count the apples");
    long long b2 = turn(t, "p2", "count the pears");
    expect_answer(t, "p1", b1, "apples are noted");
    expect_answer(t, "p2", b2, "pears are noted");
    json_t *e1 = e2e_events(&t->srv, "p1");
    json_t *e2 = e2e_events(&t->srv, "p2");
    assert_false(e2e_json_contains(e1, "pears"));
    assert_false(e2e_json_contains(e2, "apples"));
    json_decref(e1);
    json_decref(e2);
}

/* SIGKILL under a turn: error and session.ended; the next message starts
 * the agent again on the same ACP session, whose history it still has. */
void e2e_acp_killed_mid_turn(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"steps\":[{\"text\":\"ONE\"},{\"text\":\"a slow answer that the test "
             "interrupts by killing the agent\",\"chunks\":40,\"chunk_delay_ms\":250},"
             "{\"text\":\"back\"}]}");
    create(t, "k1");
    expect_answer(t, "k1", turn(t, "k1", "remember the word banana"), "ONE");
    long long before = turn(t, "k1", "talk slowly");
    json_decref(e2e_wait_event(&t->srv, "k1", before, "item.delta", is_agent_delta, WAIT_MS));
    pid_t agent = agent_pid(t);
    assert_true(agent > 0);
    assert_int_equal(kill(agent, SIGKILL), 0);
    json_decref(e2e_wait_event(&t->srv, "k1", before, "error", NULL, WAIT_MS));
    json_decref(e2e_wait_event(&t->srv, "k1", before, "session.ended", NULL, WAIT_MS));
    expect_answer(t, "k1", turn(t, "k1", "are you back?"), "back");
    json_t *reqs = model_requests(t);
    const json_t *last = json_array_get(reqs, json_array_size(reqs) - 1);
    assert_true(e2e_json_contains(last, "remember the word banana"));
    assert_true(e2e_json_contains(last, "are you back?"));
    json_decref(reqs);
}

/* sandbox-journal restarted: the next turn goes to the agent's own session
 * again (session/load), and the model sees the earlier turn. */
void e2e_acp_restart_carries_history(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"steps\":[{\"text\":\"ONE\"},{\"text\":\"TWO\"}]}");
    create(t, "r1");
    expect_answer(t, "r1", turn(t, "r1", "remember the word banana"), "ONE");
    long long last = e2e_last_sequence(&t->srv, "r1");
    char here[4096];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(t->work), 0);
    int rc = sj_server_restart(&t->srv);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(e2e_last_sequence(&t->srv, "r1"), last);
    expect_answer(t, "r1", turn(t, "r1", "what was the word?"), "TWO");
    json_t *reqs = model_requests(t);
    assert_int_equal(json_array_size(reqs), 2);
    const json_t *second = json_array_get(reqs, 1);
    assert_true(e2e_json_contains(second, "remember the word banana"));
    assert_true(e2e_json_contains(second, "ONE"));
    assert_true(e2e_json_contains(second, "what was the word?"));
    json_decref(reqs);
    /* Loaded, not replayed as context: no "session.resumed" note. */
    json_t *events = e2e_events(&t->srv, "r1");
    assert_false(e2e_json_contains(events, "session.resumed"));
    json_decref(events);
}

/* Terminate under a turn: the session ends "terminated", the agent goes. */
void e2e_acp_terminate_mid_turn(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"steps\":[{\"text\":\"a slow answer that the test ends by terminating the "
             "session\",\"chunks\":40,\"chunk_delay_ms\":250}]}");
    create(t, "t1");
    long long before = turn(t, "t1", "talk slowly");
    json_decref(e2e_wait_event(&t->srv, "t1", before, "item.delta", is_agent_delta, WAIT_MS));
    assert_true(agent_pid(t) > 0);
    json_decref(sj_call(&t->srv, "POST", "/v1/sessions/t1/terminate", NULL, 204));
    json_t *ended = e2e_wait_event(&t->srv, "t1", before, "session.ended", NULL, WAIT_MS);
    assert_string_equal(sj_str(ended, "data.reason"), "terminated");
    json_decref(ended);
    wait_no_agent(t);
}
