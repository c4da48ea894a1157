/* End to end with the real Claude Code CLI (the pinned version, installed by
 * `sandbox-journal install-agent` into SJ_AGENTS_DIR) against the scripted
 * fake model on loopback, through the HTTP API: streamed text, a tool call
 * allowed and denied (the fake's request log shows what reached the model),
 * a question, plan mode, two turns, a server restart that resumes the
 * conversation, the CLI dying under the session, and the MCP servers and
 * skills configured for the session's directory reaching the model.
 *
 * Nothing leaves 127.0.0.1: the server passes Claude only the fake's URL
 * and the switches that keep it quiet (see adapters/claude.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "e2e.h"
#include "server.h"

#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS 90000

/* Claude Code retries a failed model request several times with back-off:
 * with one retry, a request the fake cannot answer fails within the test's
 * waits instead of outlasting them. */
static void start(struct e2e_rig *t, const char *script, const char *const *extra)
{
    assert_int_equal(setenv("CLAUDE_CODE_MAX_RETRIES", "1", 1), 0);
    e2e_rig_start(t, "claude", script, extra);
}

static void create(struct e2e_rig *t, const char *id, const char *body)
{
    json_t *r = sj_create_session(&t->srv, id, body ? body : "{\"agent\":\"claude\"}");
    const char *native = sj_str(r, "nativeSessionId");
    assert_non_null(native);
    assert_int_equal(strlen(native), 36); /* a UUID: --session-id, later --resume */
    json_decref(r);
}

static const char *item_text(const json_t *ev, size_t part)
{
    const json_t *content =
        json_object_get(json_object_get(json_object_get(ev, "data"), "item"), "content");
    return json_string_value(json_object_get(json_array_get(content, part), "text"));
}

/* The messages of the n-th (0-based) request Claude made to the fake. */
static json_t *model_messages(struct e2e_rig *t, size_t n)
{
    json_t *reqs = e2e_fake_requests(&t->fake, "/v1/messages");
    if (json_array_size(reqs) <= n)
        fail_msg("the fake saw %zu requests, not %zu", json_array_size(reqs), n + 1);
    json_t *msgs = json_incref(
        json_object_get(json_object_get(json_array_get(reqs, n), "body"), "messages"));
    json_decref(reqs);
    assert_true(json_is_array(msgs));
    return msgs;
}

static size_t model_requests(struct e2e_rig *t)
{
    json_t *reqs = e2e_fake_requests(&t->fake, "/v1/messages");
    size_t n = json_array_size(reqs);
    json_decref(reqs);
    return n;
}

/* The tool_result block for `tool_use_id` in the messages, or NULL. */
static const json_t *tool_result(const json_t *messages, const char *tool_use_id)
{
    size_t i, k;
    const json_t *m, *b;
    json_array_foreach(messages, i, m) {
        json_array_foreach(json_object_get(m, "content"), k, b) {
            const char *type = json_string_value(json_object_get(b, "type"));
            const char *id = json_string_value(json_object_get(b, "tool_use_id"));
            if (type && strcmp(type, "tool_result") == 0 && id && strcmp(id, tool_use_id) == 0)
                return b;
        }
    }
    return NULL;
}

/* new: `s` with what a query value cannot hold as is percent-encoded. */
static char *curl_escape_min(const char *s)
{
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    assert_non_null(out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '/' || c == '-' || c == '_' || c == '.')
            *o++ = (char)c;
        else
            o += sprintf(o, "%%%02X", c);
    }
    *o = '\0';
    return out;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_agents_list(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"count\":\"tools\",\"steps\":[{\"text\":\"hi\"}]}", NULL);
    json_t *agents = sj_call(&t->srv, "GET", "/v1/agents", NULL, 200);
    size_t i;
    const json_t *a;
    int seen = 0;
    json_array_foreach(json_object_get(agents, "agents"), i, a) {
        if (strcmp(sj_str(a, "id"), "claude") != 0)
            continue;
        seen = 1;
        assert_true(json_is_true(json_object_get(a, "installed")));
        assert_string_equal(sj_str(a, "version"), "2.1.197");
        assert_non_null(strstr(sj_str(a, "path"), "/claude/node_modules/.bin/claude"));
    }
    assert_true(seen);
    json_decref(agents);
    /* Installed already: the install endpoint is a quick no-op. */
    json_decref(sj_call(&t->srv, "POST", "/v1/agents/claude/install", "{}", 204));
}

static void test_text_turn_streams(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"count\":\"tools\",\"steps\":[{\"text\":\"Hello from the fake model.\","
             "\"chunks\":4}]}",
          NULL);
    create(t, "c1", NULL);
    sj_send_message(&t->srv, "c1", "say hello");
    json_t *done = e2e_wait_assistant_done(&t->srv, "c1", 0, WAIT_MS);
    assert_string_equal(sj_str(done, "data.item.status"), "completed");
    assert_string_equal(item_text(done, 0), "Hello from the fake model.");
    const char *item_id = sj_str(done, "data.item.item_id");

    /* The text arrived as several deltas of that item before it completed,
     * and they add up to the text. */
    json_t *events = e2e_events(&t->srv, "c1");
    size_t i, deltas = 0;
    const json_t *ev;
    char joined[256] = "";
    json_array_foreach(events, i, ev) {
        if (strcmp(sj_str(ev, "type"), "item.delta") != 0 ||
            strcmp(sj_str(ev, "data.item_id"), item_id) != 0)
            continue;
        deltas++;
        strncat(joined, sj_str(ev, "data.delta"), sizeof joined - strlen(joined) - 1);
        assert_true(sj_int(ev, "sequence") < sj_int(done, "sequence"));
    }
    assert_true(deltas >= 2);
    assert_string_equal(joined, "Hello from the fake model.");
    /* Every event carries Claude's session id. */
    json_t *info = sj_call(&t->srv, "GET", "/v1/sessions", NULL, 200);
    const char *native = sj_str(json_array_get(json_object_get(info, "sessions"), 0),
                                "nativeSessionId");
    json_array_foreach(events, i, ev)
        assert_string_equal(sj_str(ev, "native_session_id"), native);
    json_decref(info);
    json_decref(events);
    json_decref(done);

    json_t *msgs = model_messages(t, 0);
    assert_true(e2e_json_contains(msgs, "say hello"));
    json_decref(msgs);
}

static const char TOOL_SCRIPT[] =
    "{\"count\":\"tools\",\"steps\":["
    "{\"text\":\"I will write the file.\",\"tool\":{\"name\":\"Bash\",\"id\":\"toolu_e2e_1\","
    "\"input\":{\"command\":\"echo hi > out.txt\",\"description\":\"Write hi to out.txt\"}}},"
    "{\"text\":\"Done with the file.\"}]}";

static int is_bash_permission(const json_t *ev)
{
    const char *action = sj_str(ev, "data.action");
    return action && strcmp(action, "Bash") == 0;
}

static void permission_flow(struct e2e_rig *t, const char *reply)
{
    start(t, TOOL_SCRIPT, NULL);
    create(t, "p1", NULL);
    sj_send_message(&t->srv, "p1", "create out.txt containing hi");
    json_t *asked = e2e_wait_event(&t->srv, "p1", 0, "permission.requested", is_bash_permission,
                                   WAIT_MS);
    assert_string_equal(sj_str(asked, "data.metadata.input.command"), "echo hi > out.txt");
    char *path = sj_fmt("/v1/sessions/p1/permissions/%s/reply", sj_str(asked, "data.permission_id"));
    char *body = sj_fmt("{\"reply\":\"%s\"}", reply);
    json_decref(sj_call(&t->srv, "POST", path, body, 204));
    json_t *resolved = e2e_wait_event(&t->srv, "p1", sj_int(asked, "sequence"),
                                      "permission.resolved", NULL, WAIT_MS);
    assert_string_equal(sj_str(resolved, "data.status"),
                        strcmp(reply, "reject") == 0 ? "denied" : "approved");
    json_t *done = e2e_wait_assistant_done(&t->srv, "p1", sj_int(asked, "sequence"), WAIT_MS);
    assert_string_equal(sj_str(done, "data.item.status"), "completed");

    /* The tool result came back as an item too. */
    json_t *result = e2e_wait_event(&t->srv, "p1", 0, "item.completed", NULL, 1000);
    json_decref(result);

    char *out = sj_fmt("%s/out.txt", t->work);
    struct stat st;
    json_t *msgs = model_messages(t, 1);
    const json_t *tr = tool_result(msgs, "toolu_e2e_1");
    assert_non_null(tr);
    if (strcmp(reply, "reject") == 0) {
        /* Nothing ran; the model was told it was denied. */
        assert_int_not_equal(stat(out, &st), 0);
        assert_true(json_is_true(json_object_get(tr, "is_error")));
        assert_true(e2e_json_contains(tr, "denied"));
    } else {
        /* It ran in the session's working directory. */
        assert_int_equal(stat(out, &st), 0);
        assert_int_equal(st.st_size, 3);
        assert_false(json_is_true(json_object_get(tr, "is_error")));
    }
    json_decref(msgs);
    free(out);
    free(path);
    free(body);
    json_decref(asked);
    json_decref(resolved);
    json_decref(done);
}

static void test_permission_once(void **state)
{
    permission_flow(*state, "once");
}

static void test_permission_reject(void **state)
{
    permission_flow(*state, "reject");
}

static void test_question_answered(void **state)
{
    struct e2e_rig *t = *state;
    start(t,
          "{\"count\":\"tools\",\"steps\":["
          "{\"tool\":{\"name\":\"AskUserQuestion\",\"id\":\"toolu_e2e_q\",\"input\":{\"questions\":"
          "[{\"question\":\"Which color?\",\"header\":\"Color\",\"multiSelect\":false,"
          "\"options\":[{\"label\":\"Red\",\"description\":\"warm\"},"
          "{\"label\":\"Blue\",\"description\":\"cool\"}]}]}}},"
          "{\"text\":\"Blue it is.\"}]}",
          NULL);
    create(t, "q1", NULL);
    sj_send_message(&t->srv, "q1", "ask me for a color");
    json_t *q = e2e_wait_event(&t->srv, "q1", 0, "question.requested", NULL, WAIT_MS);
    assert_string_equal(sj_str(q, "data.prompt"), "Which color?");
    assert_int_equal(json_array_size(json_object_get(json_object_get(q, "data"), "options")), 2);
    char *path = sj_fmt("/v1/sessions/q1/questions/%s/reply", sj_str(q, "data.question_id"));
    json_decref(sj_call(&t->srv, "POST", path, "{\"answers\":[[\"Blue\"]]}", 204));
    json_t *resolved = e2e_wait_event(&t->srv, "q1", 0, "question.resolved", NULL, WAIT_MS);
    assert_string_equal(sj_str(resolved, "data.status"), "answered");
    assert_string_equal(sj_str(resolved, "data.response"), "Blue");
    json_t *done = e2e_wait_assistant_done(&t->srv, "q1", sj_int(q, "sequence"), WAIT_MS);
    assert_string_equal(item_text(done, 0), "Blue it is.");
    json_t *msgs = model_messages(t, 1);
    const json_t *tr = tool_result(msgs, "toolu_e2e_q");
    assert_non_null(tr);
    assert_true(e2e_json_contains(tr, "Blue"));
    json_decref(msgs);
    free(path);
    json_decref(q);
    json_decref(resolved);
    json_decref(done);
}

static void test_plan_mode_refuses_writes(void **state)
{
    struct e2e_rig *t = *state;
    start(t,
          "{\"count\":\"tools\",\"steps\":["
          "{\"tool\":{\"name\":\"Bash\",\"id\":\"toolu_e2e_p\",\"input\":{\"command\":"
          "\"touch forbidden.txt\",\"description\":\"write in plan mode\"}}},"
          "{\"text\":\"I will plan instead.\"}]}",
          NULL);
    create(t, "plan1", "{\"agent\":\"claude\",\"permissionMode\":\"plan\"}");
    sj_send_message(&t->srv, "plan1", "touch forbidden.txt");
    json_t *done = e2e_wait_assistant_done(&t->srv, "plan1", 0, WAIT_MS);
    /* Refused by the server without asking anyone; nothing was written and
     * the model heard why. */
    json_t *events = e2e_events(&t->srv, "plan1");
    assert_false(e2e_json_contains(events, "\"permission.requested\""));
    json_decref(events);
    char *out = sj_fmt("%s/forbidden.txt", t->work);
    struct stat st;
    assert_int_not_equal(stat(out, &st), 0);
    json_t *msgs = model_messages(t, 1);
    const json_t *tr = tool_result(msgs, "toolu_e2e_p");
    assert_non_null(tr);
    assert_true(e2e_json_contains(tr, "Plan mode"));
    json_decref(msgs);
    free(out);
    json_decref(done);
}

static void test_two_turns_one_process(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"count\":\"tools\",\"steps\":[{\"text\":\"FIRST\"},{\"text\":\"SECOND\"}]}", NULL);
    create(t, "m1", "{\"agent\":\"claude\",\"model\":\"claude-e2e-model\"}");
    sj_send_message(&t->srv, "m1", "first question");
    json_t *d1 = e2e_wait_assistant_done(&t->srv, "m1", 0, WAIT_MS);
    assert_string_equal(item_text(d1, 0), "FIRST");
    pid_t claude = e2e_child_pid(t->srv.pid, "claude");
    assert_true(claude > 0);
    sj_send_message(&t->srv, "m1", "second question");
    json_t *d2 = e2e_wait_assistant_done(&t->srv, "m1", sj_int(d1, "sequence"), WAIT_MS);
    assert_string_equal(item_text(d2, 0), "SECOND");
    /* Two assistant items, one per turn. */
    assert_string_not_equal(sj_str(d1, "data.item.item_id"), sj_str(d2, "data.item.item_id"));
    /* Same process, and the model saw the first exchange again. */
    assert_int_equal(e2e_child_pid(t->srv.pid, "claude"), claude);
    /* The session's model reached the model endpoint. */
    json_t *reqs = e2e_fake_requests(&t->fake, "/v1/messages");
    assert_string_equal(sj_str(json_array_get(reqs, 1), "body.model"), "claude-e2e-model");
    json_decref(reqs);
    json_t *msgs = model_messages(t, 1);
    assert_true(e2e_json_contains(msgs, "first question"));
    assert_true(e2e_json_contains(msgs, "FIRST"));
    assert_true(e2e_json_contains(msgs, "second question"));
    json_decref(msgs);
    json_decref(d1);
    json_decref(d2);
}

static void test_restart_resumes(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"count\":\"tools\",\"steps\":[{\"text\":\"ONE\"},{\"text\":\"TWO\"}]}", NULL);
    create(t, "r1", NULL);
    sj_send_message(&t->srv, "r1", "remember the word banana");
    json_t *d1 = e2e_wait_assistant_done(&t->srv, "r1", 0, WAIT_MS);
    long long last = e2e_last_sequence(&t->srv, "r1");

    /* A server stop is not the end of the session: nothing is journaled. */
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(t->work), 0);
    int rc = sj_server_restart(&t->srv);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(e2e_last_sequence(&t->srv, "r1"), last);

    sj_send_message(&t->srv, "r1", "what was the word?");
    json_t *d2 = e2e_wait_assistant_done(&t->srv, "r1", last, WAIT_MS);
    assert_string_equal(item_text(d2, 0), "TWO");
    /* The new process resumed: the model got the earlier history. */
    assert_int_equal(model_requests(t), 2);
    json_t *msgs = model_messages(t, 1);
    assert_true(e2e_json_contains(msgs, "remember the word banana"));
    assert_true(e2e_json_contains(msgs, "ONE"));
    assert_true(e2e_json_contains(msgs, "what was the word?"));
    json_decref(msgs);
    json_decref(d1);
    json_decref(d2);
}

static int is_server_shutdown(const json_t *ev)
{
    const char *code = sj_str(ev, "data.code");
    return code && strcmp(code, "server_shutdown") == 0;
}

/* A server stop in the middle of a turn ends the turn, not the session:
 * the assistant item fails with an error saying why, and after the restart
 * the next turn gets an item of its own and the conversation goes on. */
static void test_restart_mid_turn(void **state)
{
    struct e2e_rig *t = *state;
    start(t,
          "{\"count\":\"tools\",\"steps\":[{\"text\":\"this answer is so slow that the "
          "server stops in the middle of it\",\"chunks\":40,\"chunk_delay_ms\":250},"
          "{\"text\":\"AFTER\"}]}",
          NULL);
    create(t, "s1", NULL);
    sj_send_message(&t->srv, "s1", "talk slowly");
    json_t *delta = e2e_wait_event(&t->srv, "s1", 4, "item.delta", NULL, WAIT_MS);
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(t->work), 0);
    int rc = sj_server_restart(&t->srv);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);

    json_t *events = e2e_events(&t->srv, "s1");
    assert_false(e2e_json_contains(events, "\"session.ended\""));
    json_decref(events);
    json_t *cut = e2e_wait_assistant_done(&t->srv, "s1", 0, 1000);
    assert_string_equal(sj_str(cut, "data.item.status"), "failed");
    json_t *error = e2e_wait_event(&t->srv, "s1", 0, "error", is_server_shutdown, 1000);

    long long last = e2e_last_sequence(&t->srv, "s1");
    sj_send_message(&t->srv, "s1", "and now?");
    json_t *done = e2e_wait_assistant_done(&t->srv, "s1", last, WAIT_MS);
    assert_string_equal(sj_str(done, "data.item.status"), "completed");
    assert_string_equal(item_text(done, 0), "AFTER");
    assert_string_not_equal(sj_str(done, "data.item.item_id"), sj_str(cut, "data.item.item_id"));
    json_decref(delta);
    json_decref(cut);
    json_decref(error);
    json_decref(done);
}

static int has_first_delta(const json_t *ev)
{
    (void)ev; /* any delta of the assistant */
    return 1;
}

static void test_killed_mid_turn(void **state)
{
    struct e2e_rig *t = *state;
    start(t,
          "{\"count\":\"tools\",\"steps\":[{\"text\":\"this answer streams very slowly so the "
          "test can kill the agent in the middle of it\",\"chunks\":40,"
          "\"chunk_delay_ms\":250},{\"text\":\"back again\"}]}",
          NULL);
    create(t, "k1", NULL);
    sj_send_message(&t->srv, "k1", "talk slowly");
    json_t *delta = e2e_wait_event(&t->srv, "k1", 4, "item.delta", has_first_delta, WAIT_MS);
    pid_t claude = e2e_child_pid(t->srv.pid, "claude");
    assert_true(claude > 0);
    assert_int_equal(kill(claude, SIGKILL), 0);

    json_t *ended = e2e_wait_event(&t->srv, "k1", 0, "session.ended", NULL, WAIT_MS);
    assert_string_equal(sj_str(ended, "data.reason"), "error");
    assert_string_equal(sj_str(ended, "data.terminated_by"), "agent");
    assert_int_equal(sj_int(ended, "data.exit_code"), 137);
    assert_true(json_is_object(json_object_get(json_object_get(ended, "data"), "stderr")));
    assert_true(json_is_true(json_object_get(ended, "synthetic")));
    /* The interrupted assistant item was closed as failed, and an error said why. */
    json_t *failed = e2e_wait_assistant_done(&t->srv, "k1", 0, 1000);
    assert_string_equal(sj_str(failed, "data.item.status"), "failed");
    json_t *error = e2e_wait_event(&t->srv, "k1", 0, "error", NULL, 1000);
    assert_string_equal(sj_str(error, "data.code"), "process_exit");

    json_t *list = sj_call(&t->srv, "GET", "/v1/sessions", NULL, 200);
    assert_true(json_is_true(json_object_get(json_array_get(json_object_get(list, "sessions"), 0),
                                             "ended")));
    json_decref(list);

    /* The session can go on: the next message resumes the conversation, and
     * the session is listed as open again. */
    sj_send_message(&t->srv, "k1", "are you back?");
    json_t *d2 = e2e_wait_assistant_done(&t->srv, "k1", sj_int(ended, "sequence"), WAIT_MS);
    assert_string_equal(sj_str(d2, "data.item.status"), "completed");
    list = sj_call(&t->srv, "GET", "/v1/sessions", NULL, 200);
    assert_true(json_is_false(json_object_get(json_array_get(json_object_get(list, "sessions"), 0),
                                              "ended")));
    json_decref(list);
    json_decref(delta);
    json_decref(ended);
    json_decref(failed);
    json_decref(error);
    json_decref(d2);
}

/* A conversation Claude Code can no longer read (here: its file emptied)
 * cannot be resumed; Claude says so on stderr and exits 1, and the
 * session.ended keeps what it said. */
static void test_failed_resume_reports_stderr(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"count\":\"tools\",\"steps\":[{\"text\":\"ONE\"}]}", NULL);
    create(t, "f1", NULL);
    json_t *r = sj_call(&t->srv, "GET", "/v1/sessions", NULL, 200);
    char *native = strdup(sj_str(json_array_get(json_object_get(r, "sessions"), 0),
                                 "nativeSessionId"));
    json_decref(r);
    sj_send_message(&t->srv, "f1", "hello");
    json_t *d1 = e2e_wait_assistant_done(&t->srv, "f1", 0, WAIT_MS);
    assert_int_equal(sj_server_stop(&t->srv), 0);

    /* Empty the conversation file Claude kept under the session's HOME. */
    char *projects = sj_fmt("%s/homes/claude/.claude/projects", t->srv.data_dir);
    DIR *d = opendir(projects);
    assert_non_null(d);
    struct dirent *e;
    int emptied = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *file = sj_fmt("%s/%s/%s.jsonl", projects, e->d_name, native);
        FILE *f = fopen(file, "r+");
        if (f) {
            assert_int_equal(ftruncate(fileno(f), 0), 0);
            fclose(f);
            emptied = 1;
        }
        free(file);
    }
    closedir(d);
    assert_true(emptied);

    char data[512], here[PATH_MAX];
    snprintf(data, sizeof data, "%s", t->srv.data_dir);
    sj_server_release(&t->srv);
    const char *args[] = { "--agents-dir", getenv("SJ_AGENTS_DIR"), NULL };
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(t->work), 0);
    int rc = sj_server_start(&t->srv, data, args);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    long long last = e2e_last_sequence(&t->srv, "f1");
    sj_send_message(&t->srv, "f1", "again");
    json_t *ended = e2e_wait_event(&t->srv, "f1", last, "session.ended", NULL, WAIT_MS);
    assert_string_equal(sj_str(ended, "data.reason"), "error");
    assert_int_equal(sj_int(ended, "data.exit_code"), 1);
    const char *head = sj_str(ended, "data.stderr.head");
    assert_non_null(head);
    assert_non_null(strstr(head, "No conversation found"));
    free(projects);
    free(native);
    json_decref(d1);
    json_decref(ended);
}

/* The names of the tools offered in the n-th model request, joined by ','. */
static void offered_tools(struct e2e_rig *t, size_t n, char *out, size_t size)
{
    json_t *reqs = e2e_fake_requests(&t->fake, "/v1/messages");
    if (json_array_size(reqs) <= n)
        fail_msg("the fake saw %zu requests, not %zu", json_array_size(reqs), n + 1);
    const json_t *tools = json_object_get(json_object_get(json_array_get(reqs, n), "body"),
                                          "tools");
    size_t i, len = 0;
    const json_t *tool;
    out[0] = '\0';
    json_array_foreach(tools, i, tool) {
        const char *name = json_string_value(json_object_get(tool, "name"));
        int w = snprintf(out + len, size - len, "%s,", name ? name : "?");
        if (w < 0 || (size_t)w >= size - len)
            break;
        len += (size_t)w;
    }
    json_decref(reqs);
}

/* A session created in a directory with an MCP server configured for it
 * (PUT /v1/config/mcp) starts Claude with that server (--mcp-config): the
 * server's tool is among the tools Claude offers the model, and a call of
 * it reaches the server and its answer goes back to the model. */
static void test_mcp_config_applied(void **state)
{
    struct e2e_rig *t = *state;
    const char *mcp = getenv("SJ_TEST_MCP_SERVER");
    assert_non_null(mcp);
    start(t, "{\"count\":\"tools\",\"steps\":["
             "{\"tool\":{\"name\":\"mcp__sjecho__sj_echo\",\"input\":{\"text\":\"ping\"}}},"
             "{\"match\":\"tool_result\",\"text\":\"done\"}]}",
          NULL);
    char log[600], body[2048], path[1200];
    snprintf(log, sizeof log, "%s/mcp-requests.jsonl", t->fake_dir);
    json_t *cfg = json_pack("{s:s,s:s,s:[s,s]}", "type", "local", "command", "python3", "args",
                            mcp, log);
    char *cfg_text = json_dumps(cfg, JSON_COMPACT);
    snprintf(body, sizeof body, "%s", cfg_text);
    free(cfg_text);
    json_decref(cfg);
    char *dir = curl_escape_min(t->work);
    snprintf(path, sizeof path, "/v1/config/mcp?directory=%s&mcpName=sjecho", dir);
    free(dir);
    json_decref(sj_call(&t->srv, "PUT", path, body, 204));

    create(t, "m1", "{\"agent\":\"claude\",\"permissionMode\":\"bypass\"}");
    sj_send_message(&t->srv, "m1", "echo ping through the MCP server");
    json_t *done = e2e_wait_assistant_done(&t->srv, "m1", 0, WAIT_MS);
    assert_string_equal(item_text(done, 0), "done");
    json_decref(done);

    char tools[8192];
    offered_tools(t, 0, tools, sizeof tools);
    if (!strstr(tools, "mcp__sjecho__sj_echo,"))
        fail_msg("the MCP tool is not among the tools offered: %s", tools);
    /* The call went to the server, and its answer back to the model. */
    json_t *msgs = model_messages(t, 1);
    assert_true(e2e_json_contains(msgs, "echo: ping"));
    json_decref(msgs);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[4096];
    int initialized = 0, called = 0;
    while (fgets(line, sizeof line, f)) {
        initialized |= strstr(line, "\"initialize\"") != NULL;
        called |= strstr(line, "\"tools/call\"") != NULL;
    }
    fclose(f);
    assert_true(initialized);
    assert_true(called);
}

/* Writes `dir`/SKILL.md (making `dir` and its parents) with front matter
 * naming it `name`, described by `description`. */
static void write_skill(const char *dir, const char *name, const char *description)
{
    char cmd[1400], path[1100];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/SKILL.md", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "---\nname: %s\ndescription: %s\n---\n\n# %s\n\nSay the marker.\n", name,
            description, name);
    assert_int_equal(fclose(f), 0);
}

/* A session created in a directory with skills configured for it (PUT
 * /v1/config/skills) starts Claude with them (--plugin-dir): a local skill
 * and one from a git repository (a file:// clone, never the network) are
 * offered to the model by name and description; a source type we cannot
 * fetch is an error event in the session, which works all the same. */
static void test_skills_applied(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"steps\":[{\"text\":\"done\"}]}", NULL);
    char local[700], repo[700], cmd[2400], body[2600], path[1200];
    snprintf(local, sizeof local, "%s/skills-here", t->fake_dir);
    write_skill(local, "sj-local-skill", "SJMARK_LOCAL use it for the house style");
    /* A folder of skills in a git repository, under a subpath; the filter
     * keeps one of its two. */
    snprintf(repo, sizeof repo, "%s/skill-repo", t->fake_dir);
    snprintf(path, sizeof path, "%s/pack/sj-git-skill", repo);
    write_skill(path, "sj-git-skill", "SJMARK_GIT use it for the release notes");
    snprintf(path, sizeof path, "%s/pack/sj-unwanted", repo);
    write_skill(path, "sj-unwanted", "SJMARK_UNWANTED never offered");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && git init -q -b trunk && git add -A && "
             "git -c user.name=t -c user.email=t@t commit -q -m skills",
             repo);
    assert_int_equal(system(cmd), 0);

    snprintf(body, sizeof body,
             "{\"sources\":[{\"type\":\"local\",\"source\":\"%s\"},"
             "{\"type\":\"git\",\"source\":\"file://%s\",\"ref\":\"trunk\","
             "\"subpath\":\"pack\",\"skills\":[\"sj-git-skill\"]},"
             "{\"type\":\"github\",\"source\":\"octo/skills\"}]}",
             local, repo);
    char *dir = curl_escape_min(t->work);
    snprintf(path, sizeof path, "/v1/config/skills?directory=%s&skillName=house", dir);
    free(dir);
    json_decref(sj_call(&t->srv, "PUT", path, body, 204));

    create(t, "k1", NULL);
    sj_send_message(&t->srv, "k1", "write the release notes");
    json_t *done = e2e_wait_assistant_done(&t->srv, "k1", 0, WAIT_MS);
    assert_string_equal(item_text(done, 0), "done");
    json_decref(done);

    json_t *reqs = e2e_fake_requests(&t->fake, "/v1/messages");
    assert_true(json_array_size(reqs) >= 1);
    const json_t *req = json_object_get(json_array_get(reqs, json_array_size(reqs) - 1), "body");
    /* Plugin skills are offered under the plugin's name (skills.h). */
    if (!e2e_json_contains(req, "sandbox-journal:sj-local-skill") ||
        !e2e_json_contains(req, "SJMARK_LOCAL") ||
        !e2e_json_contains(req, "sandbox-journal:sj-git-skill") ||
        !e2e_json_contains(req, "SJMARK_GIT")) {
        char *text = json_dumps(req, JSON_COMPACT);
        fail_msg("the skills are not offered to the model: %.6000s", text);
    }
    assert_false(e2e_json_contains(req, "SJMARK_UNWANTED"));
    json_decref(reqs);

    json_t *events = e2e_events(&t->srv, "k1");
    size_t i;
    const json_t *ev;
    int said = 0;
    json_array_foreach(events, i, ev) {
        const char *msg =
            json_string_value(json_object_get(json_object_get(ev, "data"), "message"));
        if (strcmp(json_string_value(json_object_get(ev, "type")), "error") == 0 && msg &&
            strstr(msg, "\"github\" is not supported"))
            said = 1;
    }
    json_decref(events);
    assert_true(said);
}

int main(void)
{
    /* SJ_TEST_FILTER=test_mcp_* runs some of them (cmocka's pattern). */
    if (getenv("SJ_TEST_FILTER"))
        cmocka_set_test_filter(getenv("SJ_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        E2E_TEST(test_agents_list),
        E2E_TEST(test_text_turn_streams),
        E2E_TEST(test_permission_once),
        E2E_TEST(test_permission_reject),
        E2E_TEST(test_question_answered),
        E2E_TEST(test_plan_mode_refuses_writes),
        E2E_TEST(test_two_turns_one_process),
        E2E_TEST(test_restart_resumes),
        E2E_TEST(test_restart_mid_turn),
        E2E_TEST(test_killed_mid_turn),
        E2E_TEST(test_failed_resume_reports_stderr),
        E2E_TEST(test_mcp_config_applied),
        E2E_TEST(test_skills_applied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
