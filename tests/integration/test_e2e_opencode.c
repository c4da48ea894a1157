/* End to end with the real OpenCode CLI (`opencode serve`, the pinned
 * version, installed by `sandbox-journal install-agent` into SJ_AGENTS_DIR)
 * against the scripted fake model's chat.completions API on loopback,
 * through the HTTP API: streamed text, a bash call whose permission is
 * granted and one where it is denied (the fake's request log shows what
 * reached the model), several turns in one session, two sessions at once
 * on the one server, the shared OpenCode
 * server killed under a turn (error event, restart with back-off,
 * serverStatus, the next turn in the same OpenCode session), a restart
 * of sandbox-journal that goes on with the same OpenCode session, and one
 * after a SIGKILL, whose orphaned OpenCode server the next start ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "e2e.h"
#include "httpc.h"
#include "server.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS 120000

/* OpenCode names its session after the conversation unless it has a title;
 * the adapter gives one, and this rule answers if it ever asks anyway. */
#define TITLE_RULE "\"rules\":[{\"match\":\"You are a title generator\",\"reply\":{\"text\":\"T\"}}]"

static void start(struct e2e_rig *t, const char *script)
{
    e2e_rig_start(t, "opencode", script, NULL);
}

/* The first create waits for `opencode serve` to start and answer, which
 * under valgrind and a loaded machine outlasts the client's default bound. */
#define CREATE_TIMEOUT_MS 120000

static char *create(struct e2e_rig *t, const char *id)
{
    static const char body[] = "{\"agent\":\"opencode\",\"model\":\"fake-model\"}";
    char *path = sj_fmt("/v1/sessions/%s", id);
    char auth[192];
    const char *headers[3] = { "Content-Type: application/json", NULL, NULL };
    if (t->srv.token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", t->srv.token);
        headers[1] = auth;
    }
    struct httpc_response resp;
    int rc = httpc_request(t->srv.port, "POST", path, headers, body, sizeof body - 1,
                           CREATE_TIMEOUT_MS, &resp);
    if (rc != 0)
        fail_msg("POST %s: %s", path, httpc_strerror(rc));
    if (resp.status != 200)
        fail_msg("POST %s: %d %s", path, resp.status, resp.body ? resp.body : "");
    json_t *r = json_loadb(resp.body, resp.body_len, 0, NULL);
    httpc_response_free(&resp);
    free(path);
    assert_non_null(r);
    const char *native = sj_str(r, "nativeSessionId");
    assert_non_null(native); /* the OpenCode session */
    assert_int_equal(strncmp(native, "ses_", 4), 0);
    char *copy = strdup(native);
    json_decref(r);
    return copy;
}

static int is_idle(const json_t *ev)
{
    const json_t *item = json_object_get(json_object_get(ev, "data"), "item");
    const json_t *part = json_array_get(json_object_get(item, "content"), 0);
    const char *label = json_string_value(json_object_get(part, "label"));
    return label && strcmp(label, "session.idle") == 0;
}

static json_t *wait_idle(struct e2e_rig *t, const char *id, long long after)
{
    return e2e_wait_event(&t->srv, id, after, "item.completed", is_idle, WAIT_MS);
}

/* The agent-loop requests OpenCode made to the fake (title requests left out). */
static json_t *model_requests(struct e2e_rig *t)
{
    json_t *all = e2e_fake_requests(&t->fake, "/v1/chat/completions");
    json_t *loop = json_array();
    size_t i;
    const json_t *r;
    json_array_foreach(all, i, r)
        if (!e2e_json_contains(r, "You are a title generator"))
            json_array_append(loop, (json_t *)r);
    json_decref(all);
    return loop;
}

static json_t *model_body(struct e2e_rig *t, size_t n)
{
    json_t *reqs = model_requests(t);
    if (json_array_size(reqs) <= n)
        fail_msg("the fake saw %zu agent requests, not %zu", json_array_size(reqs), n + 1);
    json_t *body = json_incref(json_object_get(json_array_get(reqs, n), "body"));
    json_decref(reqs);
    return body;
}

/* The text of the last completed assistant message after `after`. */
static char *last_assistant_text(struct e2e_rig *t, const char *id, long long after)
{
    json_t *events = e2e_events(&t->srv, id);
    size_t i;
    const json_t *ev;
    char *text = NULL;
    json_array_foreach(events, i, ev) {
        const json_t *item = json_object_get(json_object_get(ev, "data"), "item");
        const char *kind = json_string_value(json_object_get(item, "kind"));
        const char *role = json_string_value(json_object_get(item, "role"));
        const char *s = json_string_value(
            json_object_get(json_array_get(json_object_get(item, "content"), 0), "text"));
        if (sj_int(ev, "sequence") > after && strcmp(sj_str(ev, "type"), "item.completed") == 0 &&
            kind && strcmp(kind, "message") == 0 && role && strcmp(role, "assistant") == 0 && s) {
            free(text);
            text = strdup(s);
        }
    }
    json_decref(events);
    return text;
}

static void test_text_turn(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{" TITLE_RULE ",\"steps\":[{\"text\":\"Hello from the chat fake.\",\"chunks\":4}]}");
    json_t *st = e2e_server_status(&t->srv, "opencode");
    assert_string_equal(sj_str(st, "status"), "stopped");
    json_decref(st);
    char *native = create(t, "x1");
    st = e2e_server_status(&t->srv, "opencode");
    assert_string_equal(sj_str(st, "status"), "running");
    json_decref(st);
    /* The modes now come from the running OpenCode's agents. */
    json_t *modes = sj_call(&t->srv, "GET", "/v1/agents/opencode/modes", NULL, 200);
    assert_true(e2e_json_contains(modes, "\"plan\""));
    assert_true(e2e_json_contains(modes, "\"custom\""));
    assert_true(e2e_json_contains(modes, "Disallows all edit tools"));
    json_decref(modes);

    sj_send_message(&t->srv, "x1", "say hello");
    json_t *done = wait_idle(t, "x1", 0);
    json_t *events = e2e_events(&t->srv, "x1");
    size_t i, deltas = 0, user = 0;
    const json_t *ev;
    const char *assistant_native = NULL;
    json_array_foreach(events, i, ev) {
        const char *type = sj_str(ev, "type");
        const json_t *item = json_object_get(json_object_get(ev, "data"), "item");
        const char *role = json_string_value(json_object_get(item, "role"));
        if (strcmp(type, "item.started") == 0 && role && strcmp(role, "assistant") == 0 &&
            !json_is_true(json_object_get(ev, "synthetic")))
            assistant_native = json_string_value(json_object_get(item, "native_item_id"));
        if (strcmp(type, "item.delta") == 0 && assistant_native &&
            strcmp(sj_str(ev, "data.native_item_id"), assistant_native) == 0)
            deltas++;
        if (strcmp(type, "item.completed") == 0 && role && strcmp(role, "user") == 0) {
            assert_true(e2e_json_contains(item, "say hello"));
            user++;
        }
    }
    assert_non_null(assistant_native);
    assert_int_equal(deltas, 4);
    assert_int_equal(user, 1);
    char *final = last_assistant_text(t, "x1", 0);
    assert_non_null(final);
    assert_string_equal(final, "Hello from the chat fake.");
    /* It reached the model as OpenCode's session, with our key. */
    json_t *reqs = model_requests(t);
    assert_int_equal(json_array_size(reqs), 1);
    assert_string_equal(sj_str(json_array_get(reqs, 0), "headers.x-session-id"), native);
    assert_true(e2e_json_contains(json_array_get(reqs, 0), "sk-test-e2e"));
    json_decref(reqs);
    free(final);
    free(native);
    json_decref(events);
    json_decref(done);
}

static void approval_flow(struct e2e_rig *t, const char *reply)
{
    start(t, "{" TITLE_RULE ",\"steps\":["
             "{\"tool\":{\"name\":\"bash\",\"input\":{\"command\":\"echo hi > out.txt\","
             "\"description\":\"write out.txt\"}}},{\"text\":\"done\"}]}");
    char *native = create(t, "a1");
    sj_send_message(&t->srv, "a1", "create out.txt");
    json_t *asked = e2e_wait_event(&t->srv, "a1", 0, "permission.requested", NULL, WAIT_MS);
    assert_string_equal(sj_str(asked, "data.action"), "bash");
    assert_string_equal(sj_str(asked, "data.metadata.metadata.command"), "echo hi > out.txt");
    assert_int_equal(strncmp(sj_str(asked, "data.permission_id"), "per_", 4), 0);
    /* The call came first, with its arguments. */
    json_t *events = e2e_events(&t->srv, "a1");
    assert_true(e2e_json_contains(events, "\"tool_call\""));
    assert_true(e2e_json_contains(events, "echo hi > out.txt"));
    json_decref(events);

    char *path = sj_fmt("/v1/sessions/a1/permissions/%s/reply", sj_str(asked, "data.permission_id"));
    char *body = sj_fmt("{\"reply\":\"%s\"}", reply);
    json_decref(sj_call(&t->srv, "POST", path, body, 204));
    json_t *done = wait_idle(t, "a1", sj_int(asked, "sequence"));
    char *out = sj_fmt("%s/out.txt", t->work);
    struct stat st;
    events = e2e_events(&t->srv, "a1");
    if (strcmp(reply, "reject") == 0) {
        assert_int_not_equal(stat(out, &st), 0);
        assert_true(e2e_json_contains(events, "rejected permission"));
        assert_true(e2e_json_contains(events, "\"failed\""));
        /* A plain rejection ends OpenCode's loop: the model is not asked again. */
        json_t *reqs = model_requests(t);
        assert_int_equal(json_array_size(reqs), 1);
        json_decref(reqs);
    } else {
        /* It ran in the session's working directory. */
        assert_int_equal(stat(out, &st), 0);
        assert_int_equal(st.st_size, 3);
        json_t *req = model_body(t, 1);
        assert_true(e2e_json_contains(req, "\"role\":\"tool\""));
        json_decref(req);
        char *final = last_assistant_text(t, "a1", sj_int(asked, "sequence"));
        assert_non_null(final);
        assert_string_equal(final, "done");
        free(final);
        assert_true(e2e_json_contains(events, "\"tool_result\""));
        assert_true(e2e_json_contains(events, "\"exitCode\":0"));
    }
    json_decref(events);
    free(out);
    free(path);
    free(body);
    free(native);
    json_decref(asked);
    json_decref(done);
}

static void test_permission_once(void **state)
{
    approval_flow(*state, "once");
}

static void test_permission_reject(void **state)
{
    approval_flow(*state, "reject");
}

static void test_multi_turn(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{" TITLE_RULE ",\"steps\":[{\"text\":\"ONE\"},{\"text\":\"TWO\"},{\"text\":\"THREE\"}]}");
    char *native = create(t, "m1");
    const char *prompts[] = { "first: remember banana", "second: and apple", "third: list them" };
    const char *answers[] = { "ONE", "TWO", "THREE" };
    long long after = 0;
    for (size_t i = 0; i < 3; i++) {
        sj_send_message(&t->srv, "m1", prompts[i]);
        json_t *done = wait_idle(t, "m1", after);
        char *final = last_assistant_text(t, "m1", after);
        assert_non_null(final);
        assert_string_equal(final, answers[i]);
        free(final);
        after = sj_int(done, "sequence");
        json_decref(done);
    }
    /* The third request carries the whole conversation. */
    json_t *req = model_body(t, 2);
    assert_true(e2e_json_contains(req, "remember banana"));
    assert_true(e2e_json_contains(req, "and apple"));
    assert_true(e2e_json_contains(req, "TWO"));
    json_decref(req);
    free(native);
}

/* Two sessions at once on the one shared server: each sees only its own
 * OpenCode session's events (the fake keeps a script cursor per session). */
static void test_two_sessions(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"chat\":{\"per_session\":true," TITLE_RULE ",\"steps\":[{\"text\":\"{{re:"
             "(apples|pears)}} are noted\",\"chunks\":8,\"chunk_delay_ms\":100}]}}");
    char *n1 = create(t, "p1");
    char *n2 = create(t, "p2");
    assert_string_not_equal(n1, n2);
    sj_send_message(&t->srv, "p1", "count the apples");
    sj_send_message(&t->srv, "p2", "count the pears");
    json_t *d1 = wait_idle(t, "p1", 0);
    json_t *d2 = wait_idle(t, "p2", 0);
    char *f1 = last_assistant_text(t, "p1", 0);
    char *f2 = last_assistant_text(t, "p2", 0);
    assert_non_null(f1);
    assert_non_null(f2);
    assert_string_equal(f1, "apples are noted");
    assert_string_equal(f2, "pears are noted");
    json_t *e1 = e2e_events(&t->srv, "p1");
    json_t *e2 = e2e_events(&t->srv, "p2");
    assert_false(e2e_json_contains(e1, "pears"));
    assert_false(e2e_json_contains(e2, "apples"));
    json_t *st = e2e_server_status(&t->srv, "opencode");
    assert_int_equal(sj_int(st, "restartCount"), 0);
    json_decref(st);
    json_decref(e1);
    json_decref(e2);
    free(f1);
    free(f2);
    free(n1);
    free(n2);
    json_decref(d1);
    json_decref(d2);
}

static int is_server_exit(const json_t *ev)
{
    const char *code = sj_str(ev, "data.code");
    return code && strcmp(code, "server_exit") == 0;
}

/* A delta of the agent's own (the user's message gets a synthetic one). */
static int is_agent_delta(const json_t *ev)
{
    return !json_is_true(json_object_get(ev, "synthetic"));
}

static void test_server_killed_restarts(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{" TITLE_RULE ",\"steps\":[{\"text\":\"a slow answer that the test interrupts "
             "by killing the opencode server\",\"chunks\":40,\"chunk_delay_ms\":250},"
             "{\"text\":\"back\"}]}");
    char *native = create(t, "k1");
    sj_send_message(&t->srv, "k1", "talk slowly");
    json_t *delta = e2e_wait_event(&t->srv, "k1", 0, "item.delta", is_agent_delta, WAIT_MS);
    pid_t oc = e2e_descendant_pid(t->srv.pid, "opencode");
    assert_true(oc > 0);
    assert_int_equal(kill(oc, SIGKILL), 0);

    json_t *error = e2e_wait_event(&t->srv, "k1", 0, "error", is_server_exit, WAIT_MS);
    assert_non_null(strstr(sj_str(error, "data.message"), "opencode server"));
    json_t *st = NULL;
    for (int i = 0; i < 1200; i++) {
        json_decref(st);
        st = e2e_server_status(&t->srv, "opencode");
        if (strcmp(sj_str(st, "status"), "running") == 0 && sj_int(st, "restartCount") >= 1)
            break;
        sj_sleep_ms(100);
    }
    assert_string_equal(sj_str(st, "status"), "running");
    assert_int_equal(sj_int(st, "restartCount"), 1);
    assert_non_null(strstr(sj_str(st, "lastError"), "signal 9"));
    json_decref(st);
    pid_t again = e2e_descendant_pid(t->srv.pid, "opencode");
    assert_true(again > 0 && again != oc);

    /* The same OpenCode session goes on in the new server. */
    long long last = e2e_last_sequence(&t->srv, "k1");
    sj_send_message(&t->srv, "k1", "are you back?");
    json_t *done = wait_idle(t, "k1", last);
    char *final = last_assistant_text(t, "k1", last);
    assert_non_null(final);
    assert_string_equal(final, "back");
    json_t *reqs = model_requests(t);
    const json_t *second = json_array_get(reqs, json_array_size(reqs) - 1);
    assert_string_equal(sj_str(second, "headers.x-session-id"), native);
    assert_true(e2e_json_contains(second, "talk slowly"));
    assert_true(e2e_json_contains(second, "are you back?"));
    json_decref(reqs);
    free(final);
    free(native);
    json_decref(delta);
    json_decref(error);
    json_decref(done);
}

static void test_restart_resumes_session(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{" TITLE_RULE ",\"steps\":[{\"text\":\"ONE\"},{\"text\":\"TWO\"}]}");
    char *native = create(t, "r1");
    sj_send_message(&t->srv, "r1", "remember the word banana");
    json_t *d1 = wait_idle(t, "r1", 0);
    long long last = e2e_last_sequence(&t->srv, "r1");
    char here[4096];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(t->work), 0);
    int rc = sj_server_restart(&t->srv);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(e2e_last_sequence(&t->srv, "r1"), last);
    sj_send_message(&t->srv, "r1", "what was the word?");
    json_t *d2 = wait_idle(t, "r1", last);
    json_t *req = model_body(t, 1);
    assert_true(e2e_json_contains(req, "remember the word banana"));
    assert_true(e2e_json_contains(req, "what was the word?"));
    json_t *reqs = model_requests(t);
    assert_string_equal(sj_str(json_array_get(reqs, 1), "headers.x-session-id"), native);
    json_decref(reqs);
    json_decref(req);
    free(native);
    json_decref(d1);
    json_decref(d2);
}

/* 1 once `pid` is gone or a zombie (an orphan is reaped by whoever adopted
 * it, which in a container may be nobody). */
static int oc_gone(pid_t pid)
{
    char path[64], stat[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *close = strrchr(stat, ')');
    return close && close[1] == ' ' && (close[2] == 'Z' || close[2] == 'X');
}

/* sandbox-journal SIGKILLed: its `opencode serve`, orphaned and still on
 * the same opencode.db, is killed by the next start, which then serves the
 * session with a server of its own. */
static void test_leftover_server_killed(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{" TITLE_RULE ",\"steps\":[{\"text\":\"ONE\"},{\"text\":\"TWO\"}]}");
    char *native = create(t, "o1");
    sj_send_message(&t->srv, "o1", "first");
    json_t *d1 = wait_idle(t, "o1", 0);
    pid_t orphan = e2e_descendant_pid(t->srv.pid, "opencode");
    assert_true(orphan > 0);
    long long last = e2e_last_sequence(&t->srv, "o1");
    sj_server_kill(&t->srv);
    assert_false(oc_gone(orphan)); /* nothing else ends it */

    char here[4096];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(t->work), 0);
    int rc = sj_server_restart(&t->srv);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    sj_send_message(&t->srv, "o1", "second");
    json_t *d2 = wait_idle(t, "o1", last);
    for (int i = 0; i < 100 && !oc_gone(orphan); i++)
        sj_sleep_ms(100);
    assert_true(oc_gone(orphan));
    pid_t fresh = e2e_descendant_pid(t->srv.pid, "opencode");
    assert_true(fresh > 0 && fresh != orphan);
    json_t *reqs = model_requests(t);
    assert_string_equal(sj_str(json_array_get(reqs, 1), "headers.x-session-id"), native);
    json_decref(reqs);
    free(native);
    json_decref(d1);
    json_decref(d2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        E2E_TEST(test_text_turn),
        E2E_TEST(test_permission_once),
        E2E_TEST(test_permission_reject),
        E2E_TEST(test_multi_turn),
        E2E_TEST(test_two_sessions),
        E2E_TEST(test_server_killed_restarts),
        E2E_TEST(test_restart_resumes_session),
        E2E_TEST(test_leftover_server_killed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
