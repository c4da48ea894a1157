/* End to end with Cursor through the HTTP API: the real
 * @blowmage/cursor-agent-acp at its pinned version (installed by
 * `sandbox-journal install-agent cursor` into SJ_AGENTS_DIR), driving a
 * stand-in for Cursor's own `cursor-agent` CLI, whose model service is
 * cloud only.  sj-cursor-standin (tests/cursor_standin/, path in
 * SJ_CURSOR_STANDIN) is linked as <dir>/bin/cursor-agent with <dir>/bin
 * first on the server's PATH, which the server hands its agents; it
 * answers the invocations cursor-agent-acp makes (models, --version,
 * status, create-chat, then one `--print --output-format json` run per
 * prompt) and records each.
 *
 * Covered: a text turn; a prompt that makes the agent use a tool (a file
 * written in the session's working directory); a second turn that resumes
 * the same Cursor chat; a server restart and a next turn that carries the
 * history.  cursor-agent-acp forwards only the final text of a run (its
 * non-streaming path, the one standard ACP prompts take), so Cursor's tool
 * calls are not seen as tool_call items and a turn's text arrives as one
 * chunk: docs/agents.md says so. */
#define _XOPEN_SOURCE 700 /* realpath */
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

#define WAIT_MS 60000
#define PLAYS "bin/cursor-standin"

/* Skips unless the stand-in and the pinned cursor-agent-acp are there;
 * starts the server with the stand-in first on PATH, in a fresh working dir. */
static void start(struct e2e_rig *t)
{
    const char *standin = getenv("SJ_CURSOR_STANDIN");
    const char *agents = getenv("SJ_AGENTS_DIR");
    char acp[PATH_MAX];
    if (!standin || access(standin, X_OK) != 0) {
        fprintf(stderr, "skipped: SJ_CURSOR_STANDIN is not set or not runnable\n");
        skip();
    }
    if (!agents || snprintf(acp, sizeof acp, "%s/cursor/node_modules/.bin/cursor-agent-acp",
                            agents) >= (int)sizeof acp ||
        access(acp, X_OK) != 0) {
        fprintf(stderr, "skipped: cursor-agent-acp is not installed under SJ_AGENTS_DIR\n");
        skip();
    }
    sj_fresh_dir(t->fake_dir, sizeof t->fake_dir, "e2e-cursor");
    sj_fresh_dir(t->work, sizeof t->work, "e2e-cursor-work");
    char bin[600], plays[600], link[600];
    snprintf(bin, sizeof bin, "%s/bin", t->fake_dir);
    snprintf(plays, sizeof plays, "%s/" PLAYS, t->fake_dir);
    snprintf(link, sizeof link, "%s/bin/cursor-agent", t->fake_dir);
    assert_int_equal(mkdir(bin, 0700), 0);
    assert_int_equal(mkdir(plays, 0700), 0);
    assert_int_equal(symlink(standin, link), 0);
    const char *old = getenv("PATH");
    char *path = sj_fmt("%s:%s", bin, old ? old : "/usr/bin:/bin");
    assert_int_equal(setenv("PATH", path, 1), 0);
    free(path);
    e2e_server_start(&t->srv, t->work, NULL);
    t->started = 1;
}

static void set_reply(struct e2e_rig *t, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" PLAYS "/reply.txt", t->fake_dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* new: every run the stand-in recorded, as an array of {"argv", "cwd"}. */
static json_t *runs(struct e2e_rig *t)
{
    char path[PATH_MAX], line[65536];
    snprintf(path, sizeof path, "%s/" PLAYS "/runs.jsonl", t->fake_dir);
    json_t *all = json_array();
    FILE *f = fopen(path, "rb");
    while (f && fgets(line, sizeof line, f)) {
        json_t *rec = json_loads(line, 0, NULL);
        assert_non_null(rec);
        json_array_append_new(all, rec);
    }
    if (f)
        fclose(f);
    return all;
}

/* The runs that were prompts (--print), in order.  new. */
static json_t *prompt_runs(struct e2e_rig *t)
{
    json_t *all = runs(t), *prompts = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(all, i, rec) {
        if (e2e_json_contains(json_object_get(rec, "argv"), "\"--print\""))
            json_array_append(prompts, rec);
    }
    json_decref(all);
    return prompts;
}

/* The value after `option` in the run's argv, or NULL. */
static const char *run_option(const json_t *rec, const char *option)
{
    const json_t *argv = json_object_get(rec, "argv");
    for (size_t i = 0; i + 1 < json_array_size(argv); i++)
        if (strcmp(json_string_value(json_array_get(argv, i)), option) == 0)
            return json_string_value(json_array_get(argv, i + 1));
    return NULL;
}

/* The run's prompt: its last argument. */
static const char *run_prompt(const json_t *rec)
{
    const json_t *argv = json_object_get(rec, "argv");
    return json_string_value(json_array_get(argv, json_array_size(argv) - 1));
}

static long long turn(struct e2e_rig *t, const char *id, const char *text)
{
    long long before = e2e_last_sequence(&t->srv, id);
    sj_send_message(&t->srv, id, text);
    return before;
}

/* The text of the turn's completed assistant message. */
static void expect_answer(struct e2e_rig *t, const char *id, long long after, const char *text)
{
    json_t *done = e2e_wait_assistant_done(&t->srv, id, after, WAIT_MS);
    const json_t *content = json_object_get(json_object_get(json_object_get(done, "data"),
                                                            "item"),
                                            "content");
    struct {
        char s[4096];
        size_t n;
    } all = { .n = 0 };
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const char *s = json_string_value(json_object_get(part, "text"));
        if (s)
            all.n += (size_t)snprintf(all.s + all.n, sizeof all.s - all.n, "%s", s);
    }
    if (!strstr(all.s, text))
        fail_msg("the answer \"%s\" lacks \"%s\"", all.s, text);
    json_decref(done);
}

/* ---- tests ------------------------------------------------------------------ */

/* A text turn: cursor-agent-acp checks the CLI (--version, status), makes
 * a chat (create-chat) for session/new and runs the prompt in it, in the
 * session's working directory; the answer becomes the assistant message,
 * its text as a delta.  A second turn resumes the same chat. */
static void test_text_turns(void **state)
{
    struct e2e_rig *t = *state;
    start(t);
    set_reply(t, "Hello from the Cursor stand-in.");
    json_decref(sj_create_session(&t->srv, "c1", "{\"agent\":\"cursor\"}"));
    long long before = turn(t, "c1", "say hello");
    expect_answer(t, "c1", before, "Hello from the Cursor stand-in.");
    json_t *events = e2e_events(&t->srv, "c1");
    assert_true(e2e_json_contains(events, "\"item.delta\""));
    assert_true(e2e_json_contains(events, "say hello"));
    json_decref(events);

    json_t *all = runs(t);
    assert_true(e2e_json_contains(all, "[\"models\"]"));
    assert_true(e2e_json_contains(all, "[\"--version\"]"));
    assert_true(e2e_json_contains(all, "[\"status\"]"));
    assert_true(e2e_json_contains(all, "[\"create-chat\"]"));
    json_decref(all);
    json_t *prompts = prompt_runs(t);
    assert_int_equal(json_array_size(prompts), 1);
    const json_t *first = json_array_get(prompts, 0);
    assert_string_equal(run_option(first, "--output-format"), "json");
    const char *chat = run_option(first, "--resume");
    assert_non_null(chat);
    assert_non_null(strstr(run_prompt(first), "say hello"));
    char real_work[PATH_MAX];
    assert_non_null(realpath(t->work, real_work));
    assert_string_equal(sj_str(first, "cwd"), real_work);
    char chat_copy[128];
    snprintf(chat_copy, sizeof chat_copy, "%s", chat);
    json_decref(prompts);

    set_reply(t, "Second answer.");
    before = turn(t, "c1", "and again");
    expect_answer(t, "c1", before, "Second answer.");
    prompts = prompt_runs(t);
    assert_int_equal(json_array_size(prompts), 2);
    assert_string_equal(run_option(json_array_get(prompts, 1), "--resume"), chat_copy);
    json_decref(prompts);
}

/* A prompt that makes Cursor use a tool: the stand-in writes the file as
 * Cursor's agent would under --force, in the session's working directory,
 * and says so in its answer.  cursor-agent-acp reports no tool call for it
 * (only the run's final text reaches ACP). */
static void test_tool_use(void **state)
{
    struct e2e_rig *t = *state;
    start(t);
    set_reply(t, "Done.");
    json_decref(sj_create_session(&t->srv, "w1", "{\"agent\":\"cursor\"}"));
    long long before = turn(t, "w1", "please WRITE:notes.txt now");
    expect_answer(t, "w1", before, "I wrote notes.txt. Done.");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/notes.txt", t->work);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    json_t *events = e2e_events(&t->srv, "w1");
    assert_false(e2e_json_contains(events, "\"tool_call\""));
    json_decref(events);
}

/* A server restart: cursor-agent-acp keeps its sessions in memory only, so
 * its session/load fails after the restart; the adapter opens a new ACP
 * session (a new Cursor chat) and offers the journal's transcript with the
 * next prompt, which the stand-in sees in its argument. */
static void test_restart_carries_history(void **state)
{
    struct e2e_rig *t = *state;
    start(t);
    set_reply(t, "ONE");
    json_decref(sj_create_session(&t->srv, "r1", "{\"agent\":\"cursor\"}"));
    expect_answer(t, "r1", turn(t, "r1", "remember the word banana"), "ONE");
    long long last = e2e_last_sequence(&t->srv, "r1");
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(t->work), 0);
    int rc = sj_server_restart(&t->srv);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(e2e_last_sequence(&t->srv, "r1"), last);

    set_reply(t, "TWO");
    expect_answer(t, "r1", turn(t, "r1", "what was the word?"), "TWO");
    json_t *prompts = prompt_runs(t);
    assert_int_equal(json_array_size(prompts), 2);
    const char *second = run_prompt(json_array_get(prompts, 1));
    if (!strstr(second, "remember the word banana") || !strstr(second, "ONE") ||
        !strstr(second, "what was the word?"))
        fail_msg("the prompt after the restart lacks the history: %s", second);
    /* A chat of its own: the old one lived in the old process's memory. */
    assert_string_not_equal(run_option(json_array_get(prompts, 0), "--resume"),
                            run_option(json_array_get(prompts, 1), "--resume"));
    json_decref(prompts);
    json_t *events = e2e_events(&t->srv, "r1");
    assert_true(e2e_json_contains(events, "session.resumed"));
    json_decref(events);
}

int main(void)
{
    if (getenv("SJ_TEST_FILTER"))
        cmocka_set_test_filter(getenv("SJ_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        E2E_TEST(test_text_turns),
        E2E_TEST(test_tool_use),
        E2E_TEST(test_restart_carries_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
