/* ACP agents through the HTTP API, driven by sj-acp-standin
 * (tests/acp_standin/standin.c, path in SJ_ACP_STANDIN), a small agent
 * that speaks the Agent Client Protocol, registered at start-up with
 * `--acp-agent standin=<path> --record <wire log>` and, without
 * loadSession, as `noload`.  The server spawns it, runs the handshake,
 * answers its requests and reaps it on the code path of every ACP agent.
 *
 * Covered: GET /v1/agents (the custom agents installed, the built-in ACP
 * agents listed) and the modes the agent reports; a streamed text turn
 * (deltas, reasoning, plan); a permission granted and one rejected;
 * fs/read_text_file and fs/write_text_file inside the working directory,
 * refused outside it (absolute, "..", symlink), terminals refused; a line
 * that is not JSON; a crash mid-turn (error + session.ended) and the next
 * message resuming it with session/load; a server restart resumed with
 * session/load, and with the transcript as context for an agent without
 * it; terminate mid-turn (session/cancel, the process gone); a permission
 * never answered when the session is terminated; bad --acp-agent values. */
#define _XOPEN_SOURCE 700 /* realpath, symlink */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "e2e.h"
#include "server.h"

#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 20000

struct rig {
    struct sj_server srv;
    char work[512];   /* the sessions' working directory */
    char other[512];  /* a directory outside it */
    char wire[PATH_MAX];
    char def_standin[PATH_MAX + 600];
    char def_noload[PATH_MAX + 100];
    int started;
};

static int rig_setup(void **state)
{
    struct rig *r = calloc(1, sizeof *r);
    assert_non_null(r);
    *state = r;
    return 0;
}

static int rig_teardown(void **state)
{
    struct rig *r = *state;
    int rc = 0;
    if (r->started) {
        rc = sj_server_stop(&r->srv);
        sj_server_release(&r->srv);
    }
    free(r);
    return rc;
}

static void start(struct rig *r)
{
    const char *standin = getenv("SJ_ACP_STANDIN");
    assert_non_null(standin);
    sj_fresh_dir(r->work, sizeof r->work, "acp-work");
    sj_fresh_dir(r->other, sizeof r->other, "acp-other");
    char agents[512], data[512];
    sj_fresh_dir(agents, sizeof agents, "acp-agents");
    sj_fresh_dir(data, sizeof data, "acp-data");
    snprintf(r->wire, sizeof r->wire, "%s/wire.jsonl", r->other);
    snprintf(r->def_standin, sizeof r->def_standin, "standin=%s --record %s", standin, r->wire);
    snprintf(r->def_noload, sizeof r->def_noload, "noload=%s --no-load", standin);
    const char *args[] = { "--agents-dir", agents, "--acp-agent", r->def_standin,
                           "--acp-agent", r->def_noload, NULL };
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(r->work), 0);
    int rc = sj_server_start(&r->srv, data, args);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    r->started = 1;
}

static const char *want_text;

static int has_text(const json_t *ev)
{
    const json_t *content = json_object_get(json_object_get(json_object_get(ev, "data"), "item"),
                                            "content");
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const char *t = json_string_value(json_object_get(part, "text"));
        if (t && strstr(t, want_text))
            return 1;
    }
    return 0;
}

/* The completed assistant message after `after` whose text holds `text`. */
static json_t *wait_answer(struct rig *r, const char *sid, long long after, const char *text)
{
    json_t *ev = e2e_wait_assistant_done(&r->srv, sid, after, WAIT_MS);
    want_text = text;
    if (!has_text(ev)) {
        char *s = json_dumps(ev, JSON_COMPACT);
        fail_msg("the answer has no \"%s\": %s", text, s);
    }
    return ev;
}

/* One turn: sends `message`, returns the sequence before it. */
static long long turn(struct rig *r, const char *sid, const char *message)
{
    long long before = e2e_last_sequence(&r->srv, sid);
    sj_send_message(&r->srv, sid, message);
    return before;
}

static void expect_answer(struct rig *r, const char *sid, const char *message, const char *text)
{
    long long before = turn(r, sid, message);
    json_decref(wait_answer(r, sid, before, text));
}

static void create(struct rig *r, const char *sid, const char *agent)
{
    char *body = sj_fmt("{\"agent\":\"%s\"}", agent);
    json_decref(sj_create_session(&r->srv, sid, body));
    free(body);
}

static int count_type(const json_t *events, long long after, const char *type)
{
    int n = 0;
    size_t i;
    const json_t *ev;
    json_array_foreach(events, i, ev)
        if (json_integer_value(json_object_get(ev, "sequence")) > after &&
            strcmp(sj_str(ev, "type"), type) == 0)
            n++;
    return n;
}

static char *read_wire(const struct rig *r)
{
    FILE *f = fopen(r->wire, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_agents_listed(void **state)
{
    struct rig *r = *state;
    start(r);
    json_t *list = sj_call(&r->srv, "GET", "/v1/agents", NULL, 200);
    const char *want[] = { "qwen", "pi", "gemini", "cursor", "standin", "noload" };
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        size_t i;
        const json_t *a;
        int found = 0;
        json_array_foreach(json_object_get(list, "agents"), i, a) {
            if (strcmp(sj_str(a, "id"), want[w]) != 0)
                continue;
            found = 1;
            /* Cursor's ACP bridge reports only its answer's text (acp_agents.def). */
            int reports_all = strcmp(want[w], "cursor") != 0;
            const json_t *caps = json_object_get(a, "capabilities");
            assert_int_equal(json_is_true(json_object_get(caps, "permissions")), reports_all);
            assert_int_equal(json_is_true(json_object_get(caps, "toolCalls")), reports_all);
            assert_true(json_is_true(json_object_get(caps, "textMessages")));
            if (w >= 4) {
                assert_true(json_is_true(json_object_get(a, "installed")));
                assert_string_equal(sj_str(a, "path"), getenv("SJ_ACP_STANDIN"));
            }
        }
        if (!found)
            fail_msg("GET /v1/agents has no %s", want[w]);
    }
    json_decref(list);
    /* Installing a custom agent whose command is there does nothing. */
    json_decref(sj_call(&r->srv, "POST", "/v1/agents/standin/install", "{}", 204));

    /* Before a session: our one mode; after: the agent's. */
    json_t *modes = sj_call(&r->srv, "GET", "/v1/agents/standin/modes", NULL, 200);
    assert_string_equal(sj_str(json_array_get(json_object_get(modes, "modes"), 0), "id"),
                        "build");
    json_decref(modes);
    create(r, "m1", "standin");
    expect_answer(r, "m1", "hello", "hello");
    modes = sj_call(&r->srv, "GET", "/v1/agents/standin/modes", NULL, 200);
    json_t *list2 = json_object_get(modes, "modes");
    assert_int_equal(json_array_size(list2), 2);
    assert_string_equal(sj_str(json_array_get(list2, 1), "id"), "careful");
    json_decref(modes);
}

static void test_text_turn(void **state)
{
    struct rig *r = *state;
    start(r);
    create(r, "t1", "standin");
    long long before = turn(r, "t1", "hello there");
    json_t *done = wait_answer(r, "t1", before, "echo: hello there");
    const char *native = sj_str(done, "native_session_id");
    assert_non_null(native);
    assert_int_equal(strncmp(native, "standin-", 8), 0);
    json_t *content = json_object_get(json_object_get(json_object_get(done, "data"), "item"),
                                      "content");
    assert_string_equal(sj_str(json_array_get(content, 0), "type"), "reasoning");
    json_decref(done);
    json_t *events = e2e_events(&r->srv, "t1");
    assert_true(count_type(events, before, "item.delta") >= 2);
    assert_true(e2e_json_contains(events, "[in_progress] Answer"));
    json_decref(events);
    /* The next turn goes to the same process and session. */
    expect_answer(r, "t1", "again", "echo: again");
    /* The wire: one initialize, one session/new, the cwd and no MCP servers. */
    char *wire = read_wire(r);
    assert_non_null(strstr(wire, "\"method\":\"session/new\""));
    char *cwd = sj_fmt("\"cwd\":\"%s\"", r->work);
    char real[PATH_MAX];
    assert_non_null(realpath(r->work, real));
    char *cwd_real = sj_fmt("\"cwd\":\"%s\"", real);
    assert_true(strstr(wire, cwd) || strstr(wire, cwd_real));
    free(cwd);
    free(cwd_real);
    assert_non_null(strstr(wire, "\"mcpServers\":[]"));
    assert_null(strstr(strstr(wire, "\"method\":\"initialize\"") + 1,
                       "\"method\":\"initialize\""));
}

static void reply(struct rig *r, const char *sid, const char *perm, const char *answer)
{
    char *path = sj_fmt("/v1/sessions/%s/permissions/%s/reply", sid, perm);
    char *body = sj_fmt("{\"reply\":\"%s\"}", answer);
    json_decref(sj_call(&r->srv, "POST", path, body, 204));
    free(path);
    free(body);
}

static int is_result_failed(const json_t *ev)
{
    const json_t *item = json_object_get(json_object_get(ev, "data"), "item");
    return strcmp(sj_str(item, "kind"), "tool_result") == 0 &&
           strcmp(sj_str(item, "status"), "failed") == 0;
}

static int is_result_completed(const json_t *ev)
{
    const json_t *item = json_object_get(json_object_get(ev, "data"), "item");
    return strcmp(sj_str(item, "kind"), "tool_result") == 0 &&
           strcmp(sj_str(item, "status"), "completed") == 0;
}

static void test_permissions(void **state)
{
    struct rig *r = *state;
    start(r);
    create(r, "p1", "standin");
    const char *answers[] = { "once", "reject", "always" };
    const char *expect[] = { "allowed", "rejected", "allowed" };
    for (int k = 0; k < 3; k++) {
        long long before = turn(r, "p1", "permission");
        json_t *asked = e2e_wait_event(&r->srv, "p1", before, "permission.requested", NULL,
                                       WAIT_MS);
        assert_string_equal(sj_str(asked, "data.action"), "echo hi");
        reply(r, "p1", sj_str(asked, "data.permission_id"), answers[k]);
        json_decref(asked);
        json_decref(wait_answer(r, "p1", before, expect[k]));
        json_decref(e2e_wait_event(&r->srv, "p1", before, "item.completed",
                                   k == 1 ? is_result_failed : is_result_completed, WAIT_MS));
    }
    /* The agent saw the options we chose. */
    char *wire = read_wire(r);
    assert_non_null(strstr(wire, "\"optionId\":\"allow\""));
    assert_non_null(strstr(wire, "\"optionId\":\"reject\""));
    assert_non_null(strstr(wire, "\"optionId\":\"always\""));
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void test_files(void **state)
{
    struct rig *r = *state;
    start(r);
    char real[PATH_MAX];
    assert_non_null(realpath(r->work, real));
    char *inside = sj_fmt("%s/inside.txt", real);
    char *outside = sj_fmt("%s/secret.txt", r->other);
    char *link = sj_fmt("%s/link.txt", real);
    write_text(inside, "inside text");
    write_text(outside, "secret text");
    assert_int_equal(symlink(outside, link), 0);
    create(r, "f1", "standin");

    char *m = sj_fmt("read %s", inside);
    expect_answer(r, "f1", m, "read: inside text");
    free(m);
    const char *refused[] = { outside, link, NULL };
    char *dotdot = sj_fmt("%s/../%s/secret.txt", real, strrchr(r->other, '/') + 1);
    refused[2] = dotdot;
    for (int k = 0; k < 3; k++) {
        m = sj_fmt("read %s", refused[k]);
        expect_answer(r, "f1", m, "read error: ");
        free(m);
    }
    m = sj_fmt("write %s/new.txt hello file", real);
    expect_answer(r, "f1", m, "wrote");
    free(m);
    char *made = sj_fmt("%s/new.txt", real);
    FILE *f = fopen(made, "rb");
    assert_non_null(f);
    char buf[64] = "";
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "hello file");
    free(made);
    /* Outside, through "..", and through the symlink: refused, nothing written. */
    char *targets[] = { sj_fmt("%s/x.txt", r->other),
                        sj_fmt("%s/../%s/y.txt", real, strrchr(r->other, '/') + 1), link };
    for (int k = 0; k < 3; k++) {
        m = sj_fmt("write %s nope", targets[k]);
        expect_answer(r, "f1", m, "write error: ");
        free(m);
    }
    struct stat st;
    char *x = sj_fmt("%s/x.txt", r->other), *y = sj_fmt("%s/y.txt", r->other);
    assert_int_not_equal(stat(x, &st), 0);
    assert_int_not_equal(stat(y, &st), 0);
    f = fopen(outside, "rb");
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "secret text");
    expect_answer(r, "f1", "terminal", "terminal refused: -32601");
    free(x);
    free(y);
    free(targets[0]);
    free(targets[1]);
    free(dotdot);
    free(inside);
    free(outside);
    free(link);
}

static void test_garbage_line(void **state)
{
    struct rig *r = *state;
    start(r);
    create(r, "g1", "standin");
    long long before = turn(r, "g1", "garbage");
    json_decref(e2e_wait_event(&r->srv, "g1", before, "agent.unparsed", NULL, WAIT_MS));
    json_decref(wait_answer(r, "g1", before, "after garbage"));
}

static void test_crash_then_resume(void **state)
{
    struct rig *r = *state;
    start(r);
    create(r, "c1", "standin");
    expect_answer(r, "c1", "first", "echo: first");
    long long before = turn(r, "c1", "crash");
    json_t *ended = e2e_wait_event(&r->srv, "c1", before, "session.ended", NULL, WAIT_MS);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ended, "data"),
                                                        "exit_code")),
                     3);
    json_decref(ended);
    json_t *events = e2e_events(&r->srv, "c1");
    assert_int_equal(count_type(events, before, "error"), 1);
    json_decref(events);
    /* The next message starts it again and loads the session. */
    expect_answer(r, "c1", "history", "history: first|crash; context: no");
    assert_non_null(strstr(read_wire(r), "\"method\":\"session/load\""));
}

static void test_restart_resumes(void **state)
{
    struct rig *r = *state;
    start(r);
    create(r, "r1", "standin");
    create(r, "r2", "noload");
    expect_answer(r, "r1", "one", "echo: one");
    expect_answer(r, "r2", "two", "echo: two");
    assert_int_equal(sj_server_restart(&r->srv), 0);
    /* With session/load: the agent has the history itself. */
    expect_answer(r, "r1", "history", "history: one; context: no");
    assert_non_null(strstr(read_wire(r), "\"method\":\"session/load\""));
    /* Without: a new session, the transcript as context, said in an event. */
    long long before = turn(r, "r2", "history");
    json_decref(wait_answer(r, "r2", before, "history: ; context: yes"));
    json_t *events = e2e_events(&r->srv, "r2");
    assert_true(e2e_json_contains(events, "session.resumed"));
    assert_true(e2e_json_contains(events, "could not load session"));
    json_decref(events);
}

/* The user's own message streams as an item.delta too: only the agent's
 * chunk proves the agent is running. */
static int is_agent_delta(const json_t *event)
{
    const char *delta = json_string_value(json_object_get(json_object_get(event, "data"), "delta"));
    return delta && strcmp(delta, "working") == 0;
}

static void test_terminate_mid_turn(void **state)
{
    struct rig *r = *state;
    start(r);
    for (int k = 0; k < 2; k++) {
        const char *sid = k ? "x2" : "x1";
        create(r, sid, "standin");
        long long before = turn(r, sid, k ? "permission" : "hang");
        json_decref(e2e_wait_event(&r->srv, sid, before,
                                   k ? "permission.requested" : "item.delta",
                                   k ? NULL : is_agent_delta, WAIT_MS));
        pid_t agent = e2e_child_pid(r->srv.pid, "sj-acp-standin");
        assert_true(agent > 0);
        char *path = sj_fmt("/v1/sessions/%s/terminate", sid);
        json_decref(sj_call(&r->srv, "POST", path, NULL, 204));
        free(path);
        json_t *ended = e2e_wait_event(&r->srv, sid, before, "session.ended", NULL, WAIT_MS);
        assert_string_equal(sj_str(ended, "data.reason"), "terminated");
        json_decref(ended);
        int gone = 0;
        for (int waited = 0; !gone && waited < 10000; waited += 20) {
            gone = e2e_child_pid(r->srv.pid, "sj-acp-standin") == 0;
            if (!gone)
                sj_sleep_ms(20);
        }
        assert_true(gone);
    }
    assert_non_null(strstr(read_wire(r), "\"method\":\"session/cancel\""));
}

/* A bad --acp-agent stops the server before it starts, with the reason. */
static void test_bad_definitions(void **state)
{
    (void)state;
    const char *bad[] = { "nameonly", "=cmd", "Bad Name=x", "claude=/bin/true", "x=" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 2);
            execl(getenv("SJ_BINARY"), "sandbox-journal", "server", "--no-token", "--port", "0",
                  "--acp-agent", bad[i], (char *)NULL);
            _exit(127);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 2);
    }
}

/* Skills configured for the directory are not resolved for an agent that
 * does not take them (adapter.takes_skills, docs/agents.md): no clone, and
 * no `error` event for a source no ACP agent would get anyway.  The
 * session's events at creation are committed before the create answers. */
static void test_skills_not_resolved(void **state)
{
    struct rig *r = *state;
    start(r);
    char *path = sj_fmt("/v1/config/skills?directory=%s&skillName=house", r->work);
    json_decref(sj_call(&r->srv, "PUT", path,
                        "{\"sources\":[{\"type\":\"github\",\"source\":\"octo/skills\"}]}",
                        204));
    free(path);
    create(r, "k1", "standin");
    json_t *events = e2e_events(&r->srv, "k1");
    assert_int_equal(json_array_size(events), 1);
    assert_string_equal(sj_str(json_array_get(events, 0), "type"), "session.started");
    json_decref(events);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agents_listed, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_text_turn, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_permissions, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_files, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_line, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_crash_then_resume, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_restart_resumes, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_terminate_mid_turn, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_bad_definitions, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_skills_not_resolved, rig_setup, rig_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
