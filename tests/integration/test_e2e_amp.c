/* End to end with Amp through the HTTP API, driven by a stand-in.
 *
 * Amp's model service (ampcode.com) is not reachable from here, so the
 * `amp` the server finds is sj-amp-standin (tests/amp_standin/standin.c,
 * path in SJ_AMP_STANDIN): linked as <dir>/bin/amp, with <dir>/bin first
 * on the server's PATH and an empty --agents-dir, it is found exactly as a
 * real `amp` on PATH would be, and the server spawns it, writes the message
 * to its stdin, reads its lines and reaps it on the same code path.  It
 * prints recorded Amp stream-json, records every command line and stdin
 * (runs.jsonl), and exits as told.
 *
 * Covered: the GET /v1/agents entry and modes; a text turn; a second turn
 * that continues the thread Amp named (`threads continue <id>`) with tool
 * calls and results; a non-zero exit (error + session.ended with the exit
 * code and stderr); a later turn that continues the same thread, also after
 * a server restart; a message sent during a turn, which waits for it;
 * terminate during a turn; bypass mode; modes Amp does not have. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "e2e.h"
#include "server.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS 30000
#define THREAD "T-2775dc92-90ed-4f85-8b73-8f9766029e83"

/* The rig's fake_dir holds the stand-in: bin/amp links to it (bin/ goes
 * first on PATH), bin/amp-standin/ holds what it plays and what it records,
 * and agents/ is the server's empty --agents-dir. */
#define PLAYS "bin/amp-standin"

/* Writes `text` to bin/amp-standin/<name>. */
static void write_file(struct e2e_rig *t, const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" PLAYS "/%s", t->fake_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* The recorded stdout of a text turn (Amp's published example). */
static const char TEXT_TURN[] =
    "{\"type\":\"system\",\"subtype\":\"init\",\"cwd\":\"/w\",\"session_id\":\"" THREAD "\","
    "\"tools\":[\"Bash\",\"Read\"],\"mcp_servers\":[]}\n"
    "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"text\","
    "\"text\":\"what is 2+2?\"}]},\"parent_tool_use_id\":null,\"session_id\":\"" THREAD "\"}\n"
    "{\"type\":\"assistant\",\"message\":{\"type\":\"message\",\"role\":\"assistant\","
    "\"content\":[{\"type\":\"text\",\"text\":\"2 + 2 equals 4.\"}],\"stop_reason\":"
    "\"end_turn\"},\"parent_tool_use_id\":null,\"session_id\":\"" THREAD "\"}\n"
    "{\"type\":\"result\",\"subtype\":\"success\",\"duration_ms\":2906,\"is_error\":false,"
    "\"num_turns\":1,\"result\":\"2 + 2 equals 4.\",\"session_id\":\"" THREAD "\"}\n";

/* A turn with thinking, a tool call and its result. */
static const char TOOL_TURN[] =
    "{\"type\":\"system\",\"subtype\":\"init\",\"cwd\":\"/w\",\"session_id\":\"" THREAD "\","
    "\"tools\":[\"Bash\"],\"mcp_servers\":[]}\n"
    "{\"type\":\"assistant\",\"message\":{\"type\":\"message\",\"role\":\"assistant\","
    "\"content\":[{\"type\":\"thinking\",\"thinking\":\"Add 7.\"},{\"type\":\"tool_use\","
    "\"id\":\"toolu_1\",\"name\":\"Bash\",\"input\":{\"cmd\":\"echo $((4+7))\"}}],"
    "\"stop_reason\":\"tool_use\"},\"parent_tool_use_id\":null,\"session_id\":\"" THREAD "\"}\n"
    "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
    "\"tool_use_id\":\"toolu_1\",\"content\":\"11\",\"is_error\":false}]},"
    "\"parent_tool_use_id\":null,\"session_id\":\"" THREAD "\"}\n"
    "{\"type\":\"assistant\",\"message\":{\"type\":\"message\",\"role\":\"assistant\","
    "\"content\":[{\"type\":\"text\",\"text\":\"11.\"}],\"stop_reason\":\"end_turn\"},"
    "\"parent_tool_use_id\":null,\"session_id\":\"" THREAD "\"}\n"
    "{\"type\":\"result\",\"subtype\":\"success\",\"duration_ms\":2906,\"is_error\":false,"
    "\"num_turns\":2,\"result\":\"11.\",\"session_id\":\"" THREAD "\"}\n";

/* Builds the stand-in's directory and starts the server with it first on
 * PATH, an empty agents dir, in a fresh working dir. */
static void start(struct e2e_rig *t)
{
    const char *standin = getenv("SJ_AMP_STANDIN");
    if (!standin || access(standin, X_OK) != 0) {
        fprintf(stderr, "skipped: SJ_AMP_STANDIN (sj-amp-standin) is not set or not runnable\n");
        skip();
    }
    sj_fresh_dir(t->fake_dir, sizeof t->fake_dir, "e2e-amp");
    sj_fresh_dir(t->work, sizeof t->work, "e2e-amp-work");
    char bin[600], plays[600], agents[600], link[600];
    snprintf(bin, sizeof bin, "%s/bin", t->fake_dir);
    snprintf(plays, sizeof plays, "%s/" PLAYS, t->fake_dir);
    snprintf(agents, sizeof agents, "%s/agents", t->fake_dir);
    snprintf(link, sizeof link, "%s/bin/amp", t->fake_dir);
    assert_int_equal(mkdir(bin, 0700), 0);
    assert_int_equal(mkdir(plays, 0700), 0);
    assert_int_equal(mkdir(agents, 0700), 0);
    assert_int_equal(symlink(standin, link), 0);
    write_file(t, "turn.jsonl", TEXT_TURN);

    const char *old = getenv("PATH");
    char *path = sj_fmt("%s:%s", bin, old ? old : "/usr/bin:/bin");
    assert_int_equal(setenv("PATH", path, 1), 0);
    free(path);
    char data[512];
    sj_fresh_dir(data, sizeof data, "e2e-amp-data");
    const char *args[] = { "--agents-dir", agents, NULL };
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(t->work), 0);
    int rc = sj_server_start(&t->srv, data, args);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    t->started = 1;
}

/* new: the n-th (1-based) run the stand-in recorded: {"argv":[...],"stdin":...}. */
static json_t *run_record(struct e2e_rig *t, int n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" PLAYS "/runs.jsonl", t->fake_dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("the stand-in never ran (%s)", path);
    char line[65536];
    json_t *rec = NULL;
    for (int i = 1; !rec && fgets(line, sizeof line, f); i++)
        if (i == n)
            rec = json_loads(line, 0, NULL);
    fclose(f);
    if (!rec)
        fail_msg("the stand-in did not record run %d", n);
    return rec;
}

/* The run's argv (without argv[0]) joined by spaces (new). */
static char *run_args(struct e2e_rig *t, int n)
{
    json_t *rec = run_record(t, n);
    size_t i;
    json_t *a;
    char *out = strdup("");
    json_array_foreach(json_object_get(rec, "argv"), i, a) {
        char *next = sj_fmt("%s%s%s", out, i ? " " : "", json_string_value(a));
        free(out);
        out = next;
    }
    json_decref(rec);
    return out;
}

/* The text of the user message the run got on stdin. */
static void assert_run_message(struct e2e_rig *t, int n, const char *text)
{
    json_t *rec = run_record(t, n);
    json_t *msg = json_loads(sj_str(rec, "stdin"), 0, NULL);
    assert_non_null(msg);
    assert_string_equal(sj_str(msg, "type"), "user");
    json_t *part = json_array_get(json_object_get(json_object_get(msg, "message"), "content"), 0);
    assert_string_equal(sj_str(part, "text"), text);
    json_decref(msg);
    json_decref(rec);
}

static int is_assistant_message(const json_t *ev)
{
    const char *kind = sj_str(ev, "data.item.kind");
    const char *role = sj_str(ev, "data.item.role");
    return kind && role && strcmp(kind, "message") == 0 && strcmp(role, "assistant") == 0;
}

/* Waits for the run count to reach `n`, then for the server to have seen
 * the process end: the session accepts the next message either way, but a
 * test asserting what a run did must know it ran. */
static void wait_runs(struct e2e_rig *t, int n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" PLAYS "/runs.jsonl", t->fake_dir);
    for (int waited = 0; waited < WAIT_MS; waited += 20) {
        FILE *f = fopen(path, "rb");
        int lines = 0, c;
        while (f && (c = fgetc(f)) != EOF)
            lines += c == '\n';
        if (f)
            fclose(f);
        if (lines >= n)
            return;
        sj_sleep_ms(20);
    }
    fail_msg("the stand-in ran fewer than %d times", n);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_agents_entry(void **state)
{
    struct e2e_rig *t = *state;
    start(t);
    json_t *agents = sj_call(&t->srv, "GET", "/v1/agents", NULL, 200);
    size_t i;
    const json_t *a;
    int seen = 0;
    json_array_foreach(json_object_get(agents, "agents"), i, a) {
        if (strcmp(sj_str(a, "id"), "amp") != 0)
            continue;
        seen = 1;
        assert_true(json_is_true(json_object_get(a, "installed")));
        assert_string_equal(sj_str(a, "version"), "0.0.0-standin");
        char *want = sj_fmt("%s/bin/amp", t->fake_dir);
        assert_string_equal(sj_str(a, "path"), want);
        free(want);
        /* What the adapter emits (docs/agents.md has the whole matrix). */
        char *caps = json_dumps(json_object_get(a, "capabilities"), JSON_COMPACT);
        assert_string_equal(caps,
                            "{\"planMode\":false,\"permissions\":false,\"questions\":false,"
                            "\"toolCalls\":true,\"toolResults\":true,\"textMessages\":true,"
                            "\"images\":false,\"fileAttachments\":false,"
                            "\"sessionLifecycle\":false,\"errorEvents\":true,"
                            "\"reasoning\":true,\"status\":false,\"commandExecution\":false,"
                            "\"fileChanges\":false,\"mcpTools\":false,"
                            "\"streamingDeltas\":false,\"itemStarted\":false,"
                            "\"sharedProcess\":false}");
        free(caps);
        assert_null(json_object_get(a, "serverStatus")); /* a process per turn */
    }
    assert_true(seen);
    json_decref(agents);
    json_t *modes = sj_call(&t->srv, "GET", "/v1/agents/amp/modes", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(modes, "modes")), 1);
    assert_string_equal(sj_str(json_array_get(json_object_get(modes, "modes"), 0), "id"),
                        "build");
    json_decref(modes);
}

static void test_turns_continue_the_thread(void **state)
{
    struct e2e_rig *t = *state;
    start(t);
    write_file(t, "turn-2.jsonl", TOOL_TURN);
    json_t *r = sj_create_session(&t->srv, "a1", "{\"agent\":\"amp\"}");
    /* Amp names its thread only once a turn runs. */
    assert_false(json_is_string(json_object_get(r, "nativeSessionId")));
    json_decref(r);

    sj_send_message(&t->srv, "a1", "what is 2+2?");
    json_t *done = e2e_wait_assistant_done(&t->srv, "a1", 0, WAIT_MS);
    assert_string_equal(sj_str(done, "data.item.status"), "completed");
    assert_string_equal(sj_str(done, "data.item.content.0.text"), "2 + 2 equals 4.");
    assert_string_equal(sj_str(done, "native_session_id"), THREAD);
    wait_runs(t, 1);
    char *args = run_args(t, 1);
    assert_string_equal(args, "--execute --stream-json --stream-json-input "
                              "--stream-json-thinking");
    free(args);
    assert_run_message(t, 1, "what is 2+2?");
    json_t *list = sj_call(&t->srv, "GET", "/v1/sessions", NULL, 200);
    assert_string_equal(sj_str(json_array_get(json_object_get(list, "sessions"), 0),
                               "nativeSessionId"),
                        THREAD);
    json_decref(list);

    /* The second turn continues the thread Amp named. */
    long long after = sj_int(done, "sequence");
    sj_send_message(&t->srv, "a1", "and now add 7 to that");
    json_t *done2 = e2e_wait_assistant_done(&t->srv, "a1", after, WAIT_MS);
    assert_string_equal(sj_str(done2, "data.item.status"), "completed");
    assert_string_equal(sj_str(done2, "data.item.content.0.type"), "reasoning");
    assert_string_equal(sj_str(done2, "data.item.content.1.text"), "11.");
    wait_runs(t, 2);
    args = run_args(t, 2);
    assert_string_equal(args, "threads continue " THREAD " --execute --stream-json "
                              "--stream-json-input --stream-json-thinking");
    free(args);
    assert_run_message(t, 2, "and now add 7 to that");

    /* The tool call and its result, as items of their own. */
    json_t *events = e2e_events(&t->srv, "a1");
    int calls = 0, results = 0, ended = 0;
    size_t i;
    const json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *type = sj_str(ev, "type");
        const char *kind = sj_str(ev, "data.item.kind");
        if (strcmp(type, "session.ended") == 0)
            ended++;
        if (strcmp(type, "item.completed") != 0 || !kind)
            continue;
        if (strcmp(kind, "tool_call") == 0) {
            calls++;
            assert_string_equal(sj_str(ev, "data.item.content.0.name"), "Bash");
            assert_string_equal(sj_str(ev, "data.item.content.0.call_id"), "toolu_1");
        } else if (strcmp(kind, "tool_result") == 0) {
            results++;
            assert_string_equal(sj_str(ev, "data.item.content.0.output"), "11");
        }
    }
    assert_int_equal(calls, 1);
    assert_int_equal(results, 1);
    assert_int_equal(ended, 0); /* a turn's process ending is not the session's end */
    json_decref(events);
    json_decref(done);
    json_decref(done2);
}

static void test_nonzero_exit_ends_session(void **state)
{
    struct e2e_rig *t = *state;
    start(t);
    /* Run 2 dies: it starts the thread's output, then fails. */
    write_file(t, "turn-2.jsonl",
               "{\"type\":\"system\",\"subtype\":\"init\",\"cwd\":\"/w\",\"session_id\":\"" THREAD
               "\",\"tools\":[],\"mcp_servers\":[]}\n");
    write_file(t, "turn-2.stderr", "Error: Out of credits\n");
    write_file(t, "turn-2.exit", "2\n");
    json_decref(sj_create_session(&t->srv, "x1", "{\"agent\":\"amp\"}"));
    sj_send_message(&t->srv, "x1", "first");
    json_t *done = e2e_wait_assistant_done(&t->srv, "x1", 0, WAIT_MS);
    long long after = sj_int(done, "sequence");

    sj_send_message(&t->srv, "x1", "second");
    json_t *ended = e2e_wait_event(&t->srv, "x1", after, "session.ended", NULL, WAIT_MS);
    assert_string_equal(sj_str(ended, "data.reason"), "error");
    assert_string_equal(sj_str(ended, "data.terminated_by"), "agent");
    assert_int_equal(sj_int(ended, "data.exit_code"), 2);
    assert_true(json_is_true(json_object_get(ended, "synthetic")));
    assert_non_null(strstr(sj_str(ended, "data.stderr.head"), "Out of credits"));
    assert_string_equal(sj_str(ended, "native_session_id"), THREAD);
    json_t *failed = e2e_wait_event(&t->srv, "x1", after, "item.completed", is_assistant_message,
                                    1000);
    assert_string_equal(sj_str(failed, "data.item.status"), "failed");
    json_t *error = e2e_wait_event(&t->srv, "x1", after, "error", NULL, 1000);
    assert_string_equal(sj_str(error, "data.code"), "process_exit");
    assert_string_equal(sj_str(error, "data.message"), "amp exited with status 2");
    assert_true(sj_int(error, "sequence") < sj_int(ended, "sequence"));
    json_t *list = sj_call(&t->srv, "GET", "/v1/sessions", NULL, 200);
    assert_true(json_is_true(json_object_get(json_array_get(json_object_get(list, "sessions"), 0),
                                             "ended")));
    json_decref(list);

    /* The next message continues the same thread, also after a restart. */
    sj_send_message(&t->srv, "x1", "third");
    json_t *d3 = e2e_wait_assistant_done(&t->srv, "x1", sj_int(ended, "sequence"), WAIT_MS);
    assert_string_equal(sj_str(d3, "data.item.status"), "completed");
    wait_runs(t, 3);
    char *args = run_args(t, 3);
    assert_non_null(strstr(args, "threads continue " THREAD " "));
    free(args);
    assert_int_equal(sj_server_restart(&t->srv), 0);
    sj_send_message(&t->srv, "x1", "fourth");
    json_t *d4 = e2e_wait_assistant_done(&t->srv, "x1", sj_int(d3, "sequence"), WAIT_MS);
    assert_string_equal(sj_str(d4, "data.item.status"), "completed");
    wait_runs(t, 4);
    args = run_args(t, 4);
    assert_non_null(strstr(args, "threads continue " THREAD " "));
    free(args);
    assert_run_message(t, 4, "fourth");
    json_decref(done);
    json_decref(ended);
    json_decref(failed);
    json_decref(error);
    json_decref(d3);
    json_decref(d4);
}

/* A message sent while a turn runs waits for it, then continues the thread
 * the first turn named. */
static void test_messages_wait_their_turn(void **state)
{
    struct e2e_rig *t = *state;
    start(t);
    write_file(t, "turn-1.sleep", "400\n");
    json_decref(sj_create_session(&t->srv, "q1", "{\"agent\":\"amp\"}"));
    sj_send_message(&t->srv, "q1", "one");
    sj_send_message(&t->srv, "q1", "two");
    json_t *first = e2e_wait_assistant_done(&t->srv, "q1", 0, WAIT_MS);
    json_t *second = e2e_wait_assistant_done(&t->srv, "q1", sj_int(first, "sequence"), WAIT_MS);
    assert_string_equal(sj_str(second, "data.item.status"), "completed");
    wait_runs(t, 2);
    assert_run_message(t, 1, "one");
    assert_run_message(t, 2, "two");
    char *args = run_args(t, 2);
    assert_non_null(strstr(args, "threads continue " THREAD " "));
    free(args);
    json_decref(first);
    json_decref(second);
}

/* Terminate during a turn stops the process (SIGTERM): the session ends as
 * terminated, with no error for the exit the server caused. */
static void test_terminate_mid_turn(void **state)
{
    struct e2e_rig *t = *state;
    start(t);
    write_file(t, "turn-1.jsonl",
               "{\"type\":\"system\",\"subtype\":\"init\",\"cwd\":\"/w\",\"session_id\":\"" THREAD
               "\",\"tools\":[],\"mcp_servers\":[]}\n");
    write_file(t, "turn-1.sleep", "30000\n");
    json_decref(sj_create_session(&t->srv, "k1", "{\"agent\":\"amp\"}"));
    sj_send_message(&t->srv, "k1", "take your time");
    wait_runs(t, 1);
    pid_t amp = 0;
    for (int waited = 0; !amp && waited < WAIT_MS; waited += 20) {
        amp = e2e_child_pid(t->srv.pid, "amp");
        if (!amp)
            sj_sleep_ms(20);
    }
    assert_true(amp > 0);
    json_decref(sj_call(&t->srv, "POST", "/v1/sessions/k1/terminate", NULL, 204));
    json_t *ended = e2e_wait_event(&t->srv, "k1", 0, "session.ended", NULL, WAIT_MS);
    assert_string_equal(sj_str(ended, "data.reason"), "terminated");
    int gone = 0;
    for (int waited = 0; !gone && waited < 10000; waited += 20) {
        gone = e2e_child_pid(t->srv.pid, "amp") == 0;
        if (!gone)
            sj_sleep_ms(20);
    }
    assert_true(gone); /* well before the stand-in's own 30 s */
    json_t *events = e2e_events(&t->srv, "k1");
    size_t i;
    const json_t *ev;
    json_array_foreach(events, i, ev)
        assert_string_not_equal(sj_str(ev, "type"), "error");
    json_decref(events);
    json_decref(ended);
}

static void test_modes(void **state)
{
    struct e2e_rig *t = *state;
    start(t);
    sj_expect_problem(&t->srv, "POST", "/v1/sessions/m1",
                      "{\"agent\":\"amp\",\"permissionMode\":\"plan\"}", 400,
                      "mode_not_supported");
    sj_expect_problem(&t->srv, "POST", "/v1/sessions/m1", "{\"agent\":\"amp\",\"agentMode\":\"plan\"}",
                      400, "mode_not_supported");
    json_decref(sj_create_session(&t->srv, "b1",
                                  "{\"agent\":\"amp\",\"permissionMode\":\"bypass\"}"));
    sj_send_message(&t->srv, "b1", "go");
    json_decref(e2e_wait_assistant_done(&t->srv, "b1", 0, WAIT_MS));
    wait_runs(t, 1);
    char *args = run_args(t, 1);
    assert_non_null(strstr(args, " --dangerously-allow-all"));
    free(args);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        E2E_TEST(test_agents_entry),
        E2E_TEST(test_turns_continue_the_thread),
        E2E_TEST(test_nonzero_exit_ends_session),
        E2E_TEST(test_messages_wait_their_turn),
        E2E_TEST(test_terminate_mid_turn),
        E2E_TEST(test_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
