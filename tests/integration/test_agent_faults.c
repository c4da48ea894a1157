/* Agent faults (issue #6, part 4): agent processes that crash, hang, flood
 * their stdout, write broken lines, exit while a permission is pending, or
 * cannot be started at all.
 *
 * The agent is tests/fault_agent (sj-fault-agent), installed where the
 * server looks for the real CLIs (<agents dir>/<agent>/node_modules/.bin/)
 * as a script that execs it with a control directory; the server takes its
 * ordinary path (install lookup, spawn, stream-json / JSON-RPC, exit).  A
 * user message "fault:<what>" makes that turn misbehave (see
 * fault_agent.c); the control directory's `modes` file says how each start
 * of the process behaves and its `log` names each process started.
 *
 * After every fault: the session journals a clear session.ended and/or
 * error; its sequences are contiguous and survive a restart byte for byte;
 * a mock session beside it keeps answering; and no child of the server is
 * left a zombie (nor any agent process that should be gone).  No timing is
 * asserted; every wait is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "e2e.h"
#include "journal/journal.h"
#include "server.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Generous: the server may run under valgrind. */
#define WAIT_MS 60000

struct fx {
    struct sj_server srv;
    char agents[512];
    char work[512];
    char ctl_claude[512];
    char ctl_codex[512];
    int started;
};

static long long fx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fx_write(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void fx_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", tmp, strerror(errno));
}

static const char *fx_ctl(struct fx *f, const char *agent)
{
    return strcmp(agent, "claude") == 0 ? f->ctl_claude : f->ctl_codex;
}

/* The agent's binary where the server looks for it. */
static char *fx_bin(struct fx *f, const char *agent)
{
    return sj_fmt("%s/%s/node_modules/.bin/%s", f->agents, agent, agent);
}

/* Installs the fault agent as `agent`: "ok" (a script that execs it),
 * "badinterp" (a script whose interpreter does not exist), "noexec" (the
 * script without its x bit) or "missing". */
static void fx_install(struct fx *f, const char *agent, const char *how)
{
    const char *fa = getenv("SJ_FAULT_AGENT");
    if (!fa || access(fa, X_OK) != 0)
        fail_msg("SJ_FAULT_AGENT (%s) is not runnable", fa ? fa : "unset");
    char *bin = fx_bin(f, agent);
    char *dir = sj_fmt("%s/%s/node_modules/.bin", f->agents, agent);
    fx_mkdirs(dir);
    unlink(bin);
    if (strcmp(how, "missing") != 0) {
        char *script = sj_fmt("#!%s\nexec '%s' %s '%s' \"$@\"\n",
                              strcmp(how, "badinterp") == 0 ? "/nonexistent/sh" : "/bin/sh", fa,
                              agent, fx_ctl(f, agent));
        fx_write(bin, script, strcmp(how, "noexec") == 0 ? 0644 : 0755);
        free(script);
    }
    free(dir);
    free(bin);
}

/* The start modes of the agent's processes, one per line. */
static void fx_modes(struct fx *f, const char *agent, const char *modes)
{
    char *path = sj_fmt("%s/modes", fx_ctl(f, agent));
    fx_write(path, modes, 0644);
    free(path);
}

/* The pid of the agent's n-th start (1-based) from its log, 0 if none. */
static pid_t fx_agent_pid(struct fx *f, const char *agent, int n)
{
    char *path = sj_fmt("%s/log", fx_ctl(f, agent));
    FILE *in = fopen(path, "r");
    free(path);
    if (!in)
        return 0;
    char line[256];
    long pid = 0;
    int k = 0;
    while (fgets(line, sizeof line, in))
        if (sscanf(line, "start %ld", &pid) == 1 && ++k == n)
            break;
    fclose(in);
    return k == n ? (pid_t)pid : 0;
}

static int fx_agent_starts(struct fx *f, const char *agent)
{
    int n = 0;
    while (fx_agent_pid(f, agent, n + 1))
        n++;
    return n;
}

/* A fake npm first on PATH, so an agent that is missing cannot be installed
 * from the network: installing fails at once, as it does offline. */
static void fx_fake_npm(const char *dir)
{
    static int done;
    if (done)
        return;
    char *bin = sj_fmt("%s/bin", dir);
    fx_mkdirs(bin);
    char *npm = sj_fmt("%s/npm", bin);
    fx_write(npm, "#!/bin/sh\necho 'npm ERR! code E_FAULT_TEST_OFFLINE' >&2\nexit 1\n", 0755);
    const char *old = getenv("PATH");
    char *path = sj_fmt("%s:%s", bin, old ? old : "/usr/bin:/bin");
    assert_int_equal(setenv("PATH", path, 1), 0);
    free(path);
    free(npm);
    free(bin);
    done = 1;
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    char base[400];
    sj_fresh_dir(base, sizeof base, "agent-faults");
    snprintf(f->agents, sizeof f->agents, "%s/agents", base);
    snprintf(f->work, sizeof f->work, "%s/work", base);
    snprintf(f->ctl_claude, sizeof f->ctl_claude, "%s/ctl-claude", base);
    snprintf(f->ctl_codex, sizeof f->ctl_codex, "%s/ctl-codex", base);
    fx_mkdirs(f->work);
    fx_mkdirs(f->ctl_claude);
    fx_mkdirs(f->ctl_codex);
    fx_fake_npm(base);
    fx_install(f, "claude", "ok");
    fx_install(f, "codex", "ok");
    fx_modes(f, "claude", "ok\n");
    fx_modes(f, "codex", "ok\n");
    *state = f;
    return 0;
}

static void fx_start(struct fx *f)
{
    char data[512];
    sj_fresh_dir(data, sizeof data, "agent-faults-data");
    const char *args[] = { "--agents-dir", f->agents, NULL };
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(f->work), 0); /* sessions run their agent here */
    int rc = sj_server_start(&f->srv, data, args);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    f->started = 1;
}

static void fx_assert_no_zombies(struct fx *f);
static void fx_wait_gone(pid_t pid);
static pid_t fx_agent_pid(struct fx *f, const char *agent, int n);

/* After every case: no zombie under the server; the server stops cleanly
 * (SIGTERM) and every agent process it ever started is gone with it. */
static int fx_teardown(void **state)
{
    struct fx *f = *state;
    int rc = 0;
    if (f->started) {
        if (f->srv.pid > 0)
            fx_assert_no_zombies(f);
        rc = sj_server_stop(&f->srv);
        sj_server_release(&f->srv);
        static const char *const agents[] = { "claude", "codex" };
        for (size_t a = 0; a < 2; a++)
            for (int n = 1; fx_agent_pid(f, agents[a], n); n++)
                fx_wait_gone(fx_agent_pid(f, agents[a], n));
    }
    free(f);
    return rc;
}

/* ---- processes -------------------------------------------------------------- */

struct children {
    int n, zombies;
};

static int count_child(void *ctx, pid_t pid, const char *comm, char state)
{
    (void)pid, (void)comm; /* every child counts */
    struct children *c = ctx;
    c->n++;
    c->zombies += state == 'Z';
    return 0;
}

/* Counts the server's children, and among them the zombies. */
static int fx_children(pid_t parent, int *zombies)
{
    struct children c = {0, 0};
    assert_int_equal(e2e_each_child(parent, count_child, &c), 0);
    *zombies = c.zombies;
    return c.n;
}

/* Waits until the server has no zombie child and at most `max_children`
 * children.  An exited child may be a zombie for the moment between its
 * exit and the server's SIGCHLD handling: only one that stays is a fault. */
static void fx_assert_reaped(struct fx *f, int max_children)
{
    long long deadline = fx_now_ms() + WAIT_MS;
    int zombies, n;
    while ((n = fx_children(f->srv.pid, &zombies)) > max_children || zombies) {
        if (fx_now_ms() > deadline)
            fail_msg("server %ld still has %d children (%d zombies), at most %d expected",
                     (long)f->srv.pid, n, zombies, max_children);
        sj_sleep_ms(20);
    }
}

static void fx_assert_no_zombies(struct fx *f)
{
    long long deadline = fx_now_ms() + WAIT_MS;
    int zombies;
    while (fx_children(f->srv.pid, &zombies) >= 0 && zombies) {
        if (fx_now_ms() > deadline)
            fail_msg("server %ld keeps %d zombie children", (long)f->srv.pid, zombies);
        sj_sleep_ms(20);
    }
}

/* 1 while `pid` exists and is not a zombie. */
static int fx_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *in = fopen(path, "r");
    if (!in)
        return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, in);
    fclose(in);
    buf[len] = '\0';
    char *close = strrchr(buf, ')');
    return close && close[1] == ' ' && close[2] != 'Z' && close[2] != 'X';
}

static void fx_wait_gone(pid_t pid)
{
    long long deadline = fx_now_ms() + WAIT_MS;
    while (fx_alive(pid)) {
        if (fx_now_ms() > deadline)
            fail_msg("agent process %ld still runs", (long)pid);
        sj_sleep_ms(20);
    }
}

/* The server's peak and current resident set, in KiB. */
static long fx_rss_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    long v = -1;
    while (fgets(line, sizeof line, in))
        if (strncmp(line, field, strlen(field)) == 0)
            v = atol(line + strlen(field) + 1);
    fclose(in);
    return v;
}

/* ---- sessions and events ------------------------------------------------------ */

static void fx_create(struct fx *f, const char *id, const char *agent)
{
    char *body = sj_fmt("{\"agent\":\"%s\"}", agent);
    json_t *r = sj_create_session(&f->srv, id, body);
    json_decref(r);
    free(body);
}

static void fx_send(struct fx *f, const char *id, const char *text)
{
    sj_send_message(&f->srv, id, text);
}

static const char *fx_item_field(const json_t *ev, const char *field)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(ev, "data"), "item"), field));
}

static int fx_is_assistant(const json_t *ev)
{
    const char *kind = fx_item_field(ev, "kind");
    const char *role = fx_item_field(ev, "role");
    return kind && role && strcmp(kind, "message") == 0 && strcmp(role, "assistant") == 0;
}

static int fx_is_assistant_ok(const json_t *ev)
{
    const char *status = fx_item_field(ev, "status");
    return fx_is_assistant(ev) && status && strcmp(status, "completed") == 0;
}

static int fx_is_assistant_failed(const json_t *ev)
{
    const char *status = fx_item_field(ev, "status");
    return fx_is_assistant(ev) && status && strcmp(status, "failed") == 0;
}

/* A codex turn is over with its turn.completed status item. */
static int fx_is_turn_completed(const json_t *ev)
{
    return e2e_json_contains(json_object_get(ev, "data"), "turn.completed");
}

/* A delta the agent wrote (not the synthetic one of the user's message). */
static int fx_is_agent_delta(const json_t *ev)
{
    return json_is_false(json_object_get(ev, "synthetic"));
}

static int fx_is_flood_delta(const json_t *ev)
{
    const char *d = sj_str(ev, "data.delta");
    return d && strcmp(d, "x") == 0;
}

static json_t *fx_wait(struct fx *f, const char *id, long long after, const char *type,
                       int (*pred)(const json_t *))
{
    return e2e_wait_event(&f->srv, id, after, type, pred, WAIT_MS);
}

/* Sends a normal turn and waits for its end.  Returns the last sequence. */
static long long fx_turn_ok(struct fx *f, const char *id, const char *agent)
{
    long long last = e2e_last_sequence(&f->srv, id);
    fx_send(f, id, "hello");
    json_t *done = strcmp(agent, "codex") == 0
                       ? fx_wait(f, id, last, "item.completed", fx_is_turn_completed)
                       : fx_wait(f, id, last, "item.completed", fx_is_assistant_ok);
    long long seq = sj_int(done, "sequence");
    json_decref(done);
    return seq;
}

/* The mock session beside the faulty one still answers. */
static void fx_mock_answers(struct fx *f, const char *id)
{
    long long last = e2e_last_sequence(&f->srv, id);
    fx_send(f, id, "hello");
    json_t *done = fx_wait(f, id, last, "item.completed", fx_is_assistant_ok);
    json_decref(done);
}

/* Sequences 1..n, each event once; returns n. */
static size_t fx_assert_contiguous(struct fx *f, const char *id)
{
    json_t *events = e2e_events(&f->srv, id);
    size_t i;
    const json_t *ev;
    json_array_foreach(events, i, ev) {
        if (sj_int(ev, "sequence") != (long long)i + 1)
            fail_msg("%s: event %zu has sequence %lld", id, i, sj_int(ev, "sequence"));
    }
    size_t n = json_array_size(events);
    json_decref(events);
    return n;
}

static size_t fx_count(struct fx *f, const char *id, const char *type,
                       int (*pred)(const json_t *))
{
    json_t *events = e2e_events(&f->srv, id);
    size_t i, n = 0;
    const json_t *ev;
    json_array_foreach(events, i, ev)
        if (strcmp(sj_str(ev, "type"), type) == 0 && (!pred || pred(ev)))
            n++;
    json_decref(events);
    return n;
}

/* Nothing half-written: the journal serves the same bytes after a restart
 * (and the server stopped cleanly with its agents). */
static void fx_assert_survives_restart(struct fx *f, const char *const *ids)
{
    char *before[8] = { 0 };
    size_t n = 0;
    for (; ids[n]; n++)
        before[n] = sj_get_events_text(&f->srv, ids[n], "?offset=0&limit=100000");
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(f->work), 0);
    int rc = sj_server_restart(&f->srv);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < n; i++) {
        char *after = sj_get_events_text(&f->srv, ids[i], "?offset=0&limit=100000");
        assert_string_equal(before[i], after);
        free(after);
        free(before[i]);
        fx_assert_contiguous(f, ids[i]);
    }
}

static int fx_is_exit_error(const json_t *ev)
{
    const char *code = sj_str(ev, "data.code");
    return code && strcmp(code, "process_exit") == 0;
}

static int fx_is_server_exit(const json_t *ev)
{
    const char *code = sj_str(ev, "data.code");
    return code && strcmp(code, "server_exit") == 0;
}

/* ---- Claude: one process per session --------------------------------------- */

/* The Claude process dies mid-turn: the turn's item is closed as failed, an
 * error and a session.ended (reason error, exit code, stderr) are journaled,
 * and the next message starts a new process that completes. */
static void fx_claude_dies(void **state, const char *fault, int exit_code)
{
    struct fx *f = *state;
    fx_start(f);
    fx_create(f, "c1", "claude");
    fx_create(f, "m1", "mock");
    fx_turn_ok(f, "c1", "claude");
    long long last = e2e_last_sequence(&f->srv, "c1");
    fx_send(f, "c1", fault);
    json_t *ended = fx_wait(f, "c1", last, "session.ended", NULL);
    assert_string_equal(sj_str(ended, "data.reason"), "error");
    assert_string_equal(sj_str(ended, "data.terminated_by"), "agent");
    assert_int_equal(sj_int(ended, "data.exit_code"), exit_code);
    assert_true(json_is_object(json_object_get(json_object_get(ended, "data"), "stderr")));
    assert_non_null(sj_str(ended, "data.message"));
    json_t *failed = fx_wait(f, "c1", last, "item.completed", fx_is_assistant_failed);
    json_t *error = fx_wait(f, "c1", last, "error", fx_is_exit_error);
    /* In that order: the turn closed, why, then the end. */
    assert_true(sj_int(failed, "sequence") < sj_int(error, "sequence"));
    assert_true(sj_int(error, "sequence") < sj_int(ended, "sequence"));
    /* The delta before the fault was kept. */
    assert_true(fx_count(f, "c1", "item.delta", fx_is_agent_delta) >= 2);
    fx_assert_reaped(f, 0);
    fx_wait_gone(fx_agent_pid(f, "claude", 1));
    fx_mock_answers(f, "m1");

    /* The session goes on with a new process. */
    fx_turn_ok(f, "c1", "claude");
    assert_int_equal(fx_agent_starts(f, "claude"), 2);
    fx_assert_contiguous(f, "c1");
    const char *ids[] = { "c1", "m1", NULL };
    fx_assert_survives_restart(f, ids);
    json_decref(ended);
    json_decref(failed);
    json_decref(error);
}

static void test_claude_sigkill(void **state)
{
    fx_claude_dies(state, "fault:kill", 128 + SIGKILL);
}

static void test_claude_sigsegv(void **state)
{
    fx_claude_dies(state, "fault:segv", 128 + SIGSEGV);
}

static void test_claude_exit1_stderr(void **state)
{
    fx_claude_dies(state, "fault:exit1", 1);
    /* The stderr record: the first lines, the last lines, the count. */
    struct fx *f = *state;
    json_t *ended = fx_wait(f, "c1", 0, "session.ended", NULL);
    const char *head = sj_str(ended, "data.stderr.head");
    const char *tail = sj_str(ended, "data.stderr.tail");
    assert_non_null(head);
    assert_non_null(tail);
    assert_non_null(strstr(head, "stderr line 1 of 30\n"));
    assert_null(strstr(head, "stderr line 30 of 30"));
    assert_non_null(strstr(tail, "stderr line 30 of 30\n"));
    assert_int_equal(sj_int(ended, "data.stderr.total_lines"), 30);
    assert_true(json_is_true(json_object_get(json_object_get(json_object_get(ended, "data"),
                                                             "stderr"),
                                             "truncated")));
    json_decref(ended);
}

/* Exit 0 in the middle of a turn still closes the turn and says so. */
static void test_claude_exit0_mid_turn(void **state)
{
    struct fx *f = *state;
    fx_start(f);
    fx_create(f, "c1", "claude");
    fx_send(f, "c1", "fault:exit0");
    json_t *ended = fx_wait(f, "c1", 0, "session.ended", NULL);
    assert_int_equal(sj_int(ended, "data.exit_code"), 0);
    json_t *failed = fx_wait(f, "c1", 0, "item.completed", fx_is_assistant_failed);
    json_t *error = fx_wait(f, "c1", 0, "error", fx_is_exit_error);
    fx_assert_reaped(f, 0);
    fx_turn_ok(f, "c1", "claude");
    fx_assert_contiguous(f, "c1");
    json_decref(ended);
    json_decref(failed);
    json_decref(error);
}

/* Hung (reads nothing, writes nothing, ignores SIGTERM): terminate still
 * ends it (SIGTERM, then SIGKILL), and the mock session is not held up. */
static void test_claude_hang_terminate(void **state)
{
    struct fx *f = *state;
    fx_start(f);
    fx_create(f, "c1", "claude");
    fx_create(f, "m1", "mock");
    fx_send(f, "c1", "fault:hang");
    json_t *delta = fx_wait(f, "c1", 0, "item.delta", fx_is_agent_delta);
    pid_t agent = fx_agent_pid(f, "claude", 1);
    assert_true(agent > 0);
    fx_mock_answers(f, "m1");
    assert_true(fx_alive(agent));
    json_t *r = sj_call(&f->srv, "POST", "/v1/sessions/c1/terminate", NULL, 204);
    json_decref(r);
    json_t *ended = fx_wait(f, "c1", 0, "session.ended", NULL);
    assert_string_equal(sj_str(ended, "data.reason"), "terminated");
    assert_string_equal(sj_str(ended, "data.terminated_by"), "daemon");
    fx_wait_gone(agent);
    fx_assert_reaped(f, 0);
    fx_mock_answers(f, "m1");
    /* Nothing after the end. */
    assert_int_equal(e2e_last_sequence(&f->srv, "c1"), sj_int(ended, "sequence"));
    const char *ids[] = { "c1", "m1", NULL };
    fx_assert_survives_restart(f, ids);
    json_decref(delta);
    json_decref(ended);
}

/* Hung at server shutdown: the server still stops cleanly and takes the
 * agent with it; the cut turn is closed, the session is not ended. */
static void test_claude_hang_shutdown(void **state)
{
    struct fx *f = *state;
    fx_start(f);
    fx_create(f, "c1", "claude");
    fx_send(f, "c1", "fault:hang");
    json_t *delta = fx_wait(f, "c1", 0, "item.delta", fx_is_agent_delta);
    pid_t agent = fx_agent_pid(f, "claude", 1);
    assert_true(agent > 0);
    assert_int_equal(sj_server_stop(&f->srv), 0);
    fx_wait_gone(agent);
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(f->work), 0);
    assert_int_equal(sj_server_restart(&f->srv), 0);
    assert_int_equal(chdir(here), 0);
    json_t *failed = fx_wait(f, "c1", 0, "item.completed", fx_is_assistant_failed);
    assert_int_equal(fx_count(f, "c1", "session.ended", NULL), 0);
    fx_assert_contiguous(f, "c1");
    fx_turn_ok(f, "c1", "claude");
    json_decref(delta);
    json_decref(failed);
}

static int fx_is_line_too_long(const json_t *ev)
{
    const char *e = sj_str(ev, "data.error");
    return e && strcmp(e, "line too long") == 0;
}

/* 200 MiB without a newline: framing keeps at most the line limit (64 MiB)
 * of it and drops the rest, the line is journaled as agent.unparsed (cut)
 * and the turn goes on.  The server's peak RSS grows by a bound that does
 * not depend on the flood: less than the flood itself; once the line is
 * handled its buffer is given back.  (ASan's quarantine of freed blocks
 * would be counted too: it is kept small for this server.  Under valgrind
 * the figures are only printed.) */
static void fx_noline(struct fx *f, const char *agent)
{
    enum { FLOOD_MIB = 200, BOUND_MIB = 160 };
    const char *old = getenv("ASAN_OPTIONS");
    char *saved = old ? strdup(old) : NULL;
    char *asan = sj_fmt("%s%squarantine_size_mb=8", old ? old : "", old && *old ? ":" : "");
    assert_int_equal(setenv("ASAN_OPTIONS", asan, 1), 0);
    fx_start(f);
    if (saved)
        assert_int_equal(setenv("ASAN_OPTIONS", saved, 1), 0);
    else
        assert_int_equal(unsetenv("ASAN_OPTIONS"), 0);
    free(saved);
    free(asan);
    fx_create(f, "s1", agent);
    fx_create(f, "m1", "mock");
    long before = fx_rss_kib(f->srv.pid, "VmHWM:");
    long long last = e2e_last_sequence(&f->srv, "s1");
    char *msg = sj_fmt("fault:noline:%d", FLOOD_MIB);
    fx_send(f, "s1", msg);
    free(msg);
    json_t *done = strcmp(agent, "codex") == 0
                       ? fx_wait(f, "s1", last, "item.completed", fx_is_turn_completed)
                       : fx_wait(f, "s1", last, "item.completed", fx_is_assistant_ok);
    long after = fx_rss_kib(f->srv.pid, "VmHWM:");
    long now = fx_rss_kib(f->srv.pid, "VmRSS:");
    fprintf(stderr,
            "agent faults: %s %d MiB line: server peak RSS %ld -> %ld KiB (+%ld), %ld KiB "
            "after the turn\n",
            agent, FLOOD_MIB, before, after, after - before, now);
    if (strcmp(agent, "claude") == 0) {
        json_t *cut = fx_wait(f, "s1", last, "agent.unparsed", fx_is_line_too_long);
        json_decref(cut);
    }
    const char *wrapper = getenv("SJ_SERVER_WRAPPER");
    if (!wrapper || !*wrapper) {
        assert_true(after - before < BOUND_MIB * 1024);
        /* The line's buffer is not kept by the process that still runs. */
        assert_true(now - before < 48 * 1024);
    }
    fx_mock_answers(f, "m1");
    fx_assert_contiguous(f, "s1");
    fx_turn_ok(f, "s1", agent);
    json_decref(done);
}

static void test_claude_flood_no_newline(void **state)
{
    fx_noline(*state, "claude");
}

static void test_codex_flood_no_newline(void **state)
{
    fx_noline(*state, "codex");
}

/* Thousands of lines as fast as the agent can write them: every one is
 * journaled, in order, and the mock session is served meanwhile. */
static void fx_lines(struct fx *f, const char *agent)
{
    enum { N = 5000 };
    fx_start(f);
    fx_create(f, "s1", agent);
    fx_create(f, "m1", "mock");
    long long t0 = fx_now_ms();
    char *msg = sj_fmt("fault:lines:%d", N);
    fx_send(f, "s1", msg);
    free(msg);
    fx_mock_answers(f, "m1");
    json_t *done = strcmp(agent, "codex") == 0
                       ? fx_wait(f, "s1", 0, "item.completed", fx_is_turn_completed)
                       : fx_wait(f, "s1", 0, "item.completed", fx_is_assistant_ok);
    long long ms = fx_now_ms() - t0;
    assert_int_equal(fx_count(f, "s1", "item.delta", fx_is_flood_delta), N);
    size_t n = fx_assert_contiguous(f, "s1");
    char *path = sj_fmt("%s/log", fx_ctl(f, agent));
    FILE *in = fopen(path, "r");
    char line[256];
    long lines = 0, wrote_ms = -1;
    while (in && fgets(line, sizeof line, in))
        sscanf(line, "flood %ld %ld", &lines, &wrote_ms);
    if (in)
        fclose(in);
    free(path);
    fprintf(stderr,
            "agent faults: %s flood: %d lines written in %ld ms; %zu events journaled, turn "
            "done %lld ms after the message\n",
            agent, N, wrote_ms, n, ms);
    fx_turn_ok(f, "s1", agent);
    json_decref(done);
}

static void test_claude_flood_lines(void **state)
{
    fx_lines(*state, "claude");
}

static void test_codex_flood_lines(void **state)
{
    fx_lines(*state, "codex");
}

/* Invalid UTF-8, a half line and a NUL byte become agent.unparsed; then a
 * JSON line cut short at exit is one too, and the exit ends the session. */
static void test_claude_garbage_and_truncated_exit(void **state)
{
    struct fx *f = *state;
    fx_start(f);
    fx_create(f, "c1", "claude");
    fx_send(f, "c1", "fault:garbage");
    json_t *done = fx_wait(f, "c1", 0, "item.completed", fx_is_assistant_ok);
    assert_int_equal(fx_count(f, "c1", "agent.unparsed", NULL), 4);
    long long last = sj_int(done, "sequence");
    fx_send(f, "c1", "fault:truncexit");
    json_t *ended = fx_wait(f, "c1", last, "session.ended", NULL);
    json_t *cut = fx_wait(f, "c1", last, "agent.unparsed", NULL);
    assert_true(sj_int(cut, "sequence") < sj_int(ended, "sequence"));
    assert_int_equal(fx_count(f, "c1", "agent.unparsed", NULL), 5);
    fx_assert_reaped(f, 0);
    fx_turn_ok(f, "c1", "claude");
    const char *ids[] = { "c1", NULL };
    fx_assert_survives_restart(f, ids);
    json_decref(done);
    json_decref(ended);
    json_decref(cut);
}

static int fx_is_denied(const json_t *ev)
{
    const char *status = sj_str(ev, "data.status");
    return status && strcmp(status, "denied") == 0;
}

/* Claude exits while its permission request is pending: the request is
 * withdrawn (resolved denied) before the session ends, a late reply is
 * refused, and the next message starts afresh. */
static void test_claude_exit_mid_permission(void **state)
{
    struct fx *f = *state;
    fx_start(f);
    fx_create(f, "c1", "claude");
    fx_send(f, "c1", "fault:permexit");
    json_t *asked = fx_wait(f, "c1", 0, "permission.requested", NULL);
    json_t *ended = fx_wait(f, "c1", 0, "session.ended", NULL);
    assert_int_equal(sj_int(ended, "data.exit_code"), 3);
    json_t *resolved = fx_wait(f, "c1", 0, "permission.resolved", fx_is_denied);
    assert_true(sj_int(resolved, "sequence") < sj_int(ended, "sequence"));
    char *path = sj_fmt("/v1/sessions/c1/permissions/%s/reply",
                        sj_str(asked, "data.permission_id"));
    sj_expect_problem(&f->srv, "POST", path, "{\"reply\":\"once\"}", 400, "invalid_request");
    fx_assert_reaped(f, 0);
    fx_turn_ok(f, "c1", "claude");
    /* Still refused once the session runs again: nothing asked for it. */
    sj_expect_problem(&f->srv, "POST", path, "{\"reply\":\"once\"}", 400, "invalid_request");
    assert_int_equal(fx_count(f, "c1", "permission.resolved", NULL), 1);
    free(path);
    json_decref(asked);
    json_decref(ended);
    json_decref(resolved);
}

/* The server stops while a permission is pending: the process that asked
 * is gone after the restart (a resumed agent will not ask again), so the
 * request is withdrawn at shutdown and a reply after the restart is refused
 * instead of being journaled as approved. */
static void fx_permission_at_shutdown(struct fx *f, const char *agent)
{
    fx_start(f);
    fx_create(f, "s1", agent);
    fx_send(f, "s1", "fault:permwait");
    json_t *asked = fx_wait(f, "s1", 0, "permission.requested", NULL);
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(f->work), 0);
    assert_int_equal(sj_server_restart(&f->srv), 0);
    assert_int_equal(chdir(here), 0);
    json_t *resolved = fx_wait(f, "s1", 0, "permission.resolved", fx_is_denied);
    assert_string_equal(sj_str(resolved, "data.permission_id"),
                        sj_str(asked, "data.permission_id"));
    assert_true(json_is_true(json_object_get(resolved, "synthetic")));
    char *path = sj_fmt("/v1/sessions/s1/permissions/%s/reply",
                        sj_str(asked, "data.permission_id"));
    sj_expect_problem(&f->srv, "POST", path, "{\"reply\":\"once\"}", 400, "invalid_request");
    assert_int_equal(fx_count(f, "s1", "session.ended", NULL), 0);
    fx_assert_contiguous(f, "s1");
    fx_turn_ok(f, "s1", agent);
    free(path);
    json_decref(asked);
    json_decref(resolved);
}

static void test_claude_permission_at_shutdown(void **state)
{
    fx_permission_at_shutdown(*state, "claude");
}

static void test_codex_permission_at_shutdown(void **state)
{
    fx_permission_at_shutdown(*state, "codex");
}

/* The binary cannot be run: missing at creation (and not installable),
 * removed, without its x bit, or with a missing interpreter. */
static void test_claude_cannot_start(void **state)
{
    struct fx *f = *state;
    fx_install(f, "claude", "missing");
    fx_start(f);
    struct httpc_response resp;
    sj_request(&f->srv, "POST", "/v1/sessions/c0", "{\"agent\":\"claude\"}", 1, &resp);
    json_t *p = sj_assert_problem(&resp, 500, "install_failed");
    assert_non_null(strstr(sj_str(p, "detail"), "E_FAULT_TEST_OFFLINE"));
    json_decref(p);
    httpc_response_free(&resp);
    sj_expect_problem(&f->srv, "GET", "/v1/sessions/c0/events", NULL, 404, "session_not_found");

    static const char *const hows[] = { "badinterp", "noexec", "missing" };
    fx_install(f, "claude", "ok");
    fx_create(f, "c1", "claude");
    for (size_t i = 0; i < sizeof hows / sizeof hows[0]; i++) {
        fx_install(f, "claude", hows[i]);
        long long last = e2e_last_sequence(&f->srv, "c1");
        fx_send(f, "c1", "hello");
        json_t *error = fx_wait(f, "c1", last, "error", NULL);
        /* Under valgrind a script whose interpreter is missing passes
         * valgrind's own exec check, and the child then exits 101 when the
         * real exec fails: an exit like any other, not a failed spawn. */
        const char *wrapper = getenv("SJ_SERVER_WRAPPER");
        if (wrapper && *wrapper && strcmp(hows[i], "badinterp") == 0 &&
            strcmp(sj_str(error, "data.code"), "process_exit") == 0) {
            json_t *ended = fx_wait(f, "c1", last, "session.ended", NULL);
            assert_int_equal(sj_int(ended, "data.exit_code"), 101);
            json_decref(ended);
        } else {
            assert_string_equal(sj_str(error, "data.code"), "agent_start_failed");
        }
        fprintf(stderr, "agent faults: claude %s: %s\n", hows[i], sj_str(error, "data.message"));
        json_t *failed = fx_wait(f, "c1", last, "item.completed", fx_is_assistant_failed);
        json_decref(failed);
        json_decref(error);
        fx_assert_reaped(f, 0);
    }
    assert_int_equal(fx_agent_starts(f, "claude"), 0);
    fx_install(f, "claude", "ok");
    fx_turn_ok(f, "c1", "claude");
    const char *ids[] = { "c1", NULL };
    fx_assert_survives_restart(f, ids);
}

/* The server is killed (SIGKILL) while the agent floods it with output:
 * the journal holds a contiguous prefix of what was said and passes its
 * integrity check, the orphaned agent ends (its stdout is gone), and after
 * a restart the session goes on with a new process. */
static void test_server_killed_during_agent_output(void **state)
{
    struct fx *f = *state;
    fx_start(f);
    fx_create(f, "c1", "claude");
    fx_turn_ok(f, "c1", "claude");
    fx_send(f, "c1", "fault:lines:1000000");
    json_t *d = fx_wait(f, "c1", 0, "item.delta", fx_is_flood_delta);
    pid_t agent = fx_agent_pid(f, "claude", 1);
    assert_true(agent > 0);
    sj_server_kill(&f->srv);
    fx_wait_gone(agent);

    char *db = sj_fmt("%s/journal.db", f->srv.data_dir);
    journal_reader_t *r;
    journal_close(sj_journal_open_checked(db, &r));
    free(db);

    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(f->work), 0);
    assert_int_equal(sj_server_restart(&f->srv), 0);
    assert_int_equal(chdir(here), 0);
    size_t n = fx_assert_contiguous(f, "c1");
    size_t flood = fx_count(f, "c1", "item.delta", fx_is_flood_delta);
    fprintf(stderr,
            "agent faults: server killed after %zu of 1000000 lines journaled (%zu events)\n",
            flood, n);
    assert_true(flood >= 1 && flood < 1000000);
    assert_int_equal(fx_count(f, "c1", "session.ended", NULL), 0);
    fx_turn_ok(f, "c1", "claude");
    assert_int_equal(fx_agent_starts(f, "claude"), 2);
    json_decref(d);
}

/* ---- Codex: one shared app-server -------------------------------------------- */

static json_t *fx_codex_status(struct fx *f)
{
    json_t *agents = sj_call(&f->srv, "GET", "/v1/agents", NULL, 200);
    size_t i;
    json_t *a, *st = NULL;
    json_array_foreach(json_object_get(agents, "agents"), i, a)
        if (strcmp(sj_str(a, "id"), "codex") == 0)
            st = json_incref(json_object_get(a, "serverStatus"));
    json_decref(agents);
    assert_non_null(st);
    return st;
}

/* Polls serverStatus until `status` with restartCount >= count. */
static json_t *fx_codex_wait_status(struct fx *f, const char *status, long long count)
{
    long long deadline = fx_now_ms() + WAIT_MS;
    for (;;) {
        json_t *st = fx_codex_status(f);
        if (strcmp(sj_str(st, "status"), status) == 0 && sj_int(st, "restartCount") >= count)
            return st;
        if (fx_now_ms() > deadline) {
            char *s = json_dumps(st, JSON_COMPACT);
            fail_msg("codex serverStatus %s, not %s with %lld restarts", s, status, count);
        }
        json_decref(st);
        sj_sleep_ms(20);
    }
}

/* The app-server dies mid-turn: the session with the turn gets an error,
 * the idle one nothing; it is restarted (serverStatus counts it) and both
 * sessions go on, resumed in the new app-server. */
static void fx_codex_dies(void **state, const char *fault, const char *said)
{
    struct fx *f = *state;
    fx_start(f);
    fx_create(f, "x1", "codex");
    fx_create(f, "x2", "codex");
    fx_create(f, "m1", "mock");
    fx_turn_ok(f, "x2", "codex");
    long long last1 = e2e_last_sequence(&f->srv, "x1");
    long long last2 = e2e_last_sequence(&f->srv, "x2");
    fx_send(f, "x1", fault);
    json_t *error = fx_wait(f, "x1", last1, "error", fx_is_server_exit);
    assert_non_null(strstr(sj_str(error, "data.message"), said));
    /* The assistant item the dead process had started is closed, failed,
     * just before the error. */
    json_t *closed = fx_wait(f, "x1", last1, "item.completed", fx_is_assistant);
    assert_string_equal(sj_str(closed, "data.item.status"), "failed");
    assert_int_equal(sj_int(closed, "sequence") + 1, sj_int(error, "sequence"));
    json_decref(closed);
    fx_wait_gone(fx_agent_pid(f, "codex", 1));
    json_t *st = fx_codex_wait_status(f, "running", 1);
    assert_int_equal(sj_int(st, "restartCount"), 1);
    assert_non_null(strstr(sj_str(st, "lastError"), said));
    json_decref(st);
    /* The idle session heard nothing of it. */
    assert_int_equal(e2e_last_sequence(&f->srv, "x2"), last2);
    assert_int_equal(fx_count(f, "x1", "session.ended", NULL), 0);
    fx_mock_answers(f, "m1");
    fx_assert_reaped(f, 1); /* the new app-server */
    fx_turn_ok(f, "x2", "codex");
    fx_turn_ok(f, "x1", "codex");
    assert_int_equal(fx_agent_starts(f, "codex"), 2);
    const char *ids[] = { "x1", "x2", "m1", NULL };
    fx_assert_survives_restart(f, ids);
    json_decref(error);
}

static void test_codex_sigkill(void **state)
{
    fx_codex_dies(state, "fault:kill", "killed by signal 9");
}

static void test_codex_sigsegv(void **state)
{
    fx_codex_dies(state, "fault:segv", "killed by signal 11");
}

static void test_codex_exit1(void **state)
{
    fx_codex_dies(state, "fault:exit1", "stderr line 30 of 30");
}

static void test_codex_truncated_exit(void **state)
{
    fx_codex_dies(state, "fault:truncexit", "exited with status 0");
}

/* Crashes again at each restart: the restarts back off and are counted,
 * lastError says why, and once a start succeeds sessions go on. */
static void test_codex_restart_backoff(void **state)
{
    struct fx *f = *state;
    fx_modes(f, "codex", "ok\nstartexit\nstartexit\nok\n");
    fx_start(f);
    fx_create(f, "x1", "codex");
    fx_send(f, "x1", "fault:kill");
    json_t *error = fx_wait(f, "x1", 0, "error", fx_is_server_exit);
    json_t *st = fx_codex_wait_status(f, "error", 2);
    assert_non_null(strstr(sj_str(st, "lastError"), "refusing to start"));
    json_decref(st);
    st = fx_codex_wait_status(f, "running", 3);
    assert_int_equal(sj_int(st, "restartCount"), 3);
    json_decref(st);
    /* "running" is reported once spawned: its log line may come later. */
    long long deadline = fx_now_ms() + WAIT_MS;
    while (fx_agent_starts(f, "codex") < 4 && fx_now_ms() < deadline)
        sj_sleep_ms(20);
    assert_int_equal(fx_agent_starts(f, "codex"), 4);
    fx_assert_reaped(f, 1);
    fx_turn_ok(f, "x1", "codex");
    fx_assert_contiguous(f, "x1");
    json_decref(error);
}

/* The app-server hangs mid-turn: terminate ends the session at once (the
 * shared process stays: other sessions use it), and server shutdown ends
 * the hung process (SIGTERM, then SIGKILL). */
static void test_codex_hang(void **state)
{
    struct fx *f = *state;
    fx_start(f);
    fx_create(f, "x1", "codex");
    fx_create(f, "m1", "mock");
    fx_send(f, "x1", "fault:hang");
    json_t *delta = fx_wait(f, "x1", 0, "item.delta", fx_is_agent_delta);
    fx_mock_answers(f, "m1");
    json_t *r = sj_call(&f->srv, "POST", "/v1/sessions/x1/terminate", NULL, 204);
    json_decref(r);
    json_t *ended = fx_wait(f, "x1", 0, "session.ended", NULL);
    assert_string_equal(sj_str(ended, "data.reason"), "terminated");
    pid_t agent = fx_agent_pid(f, "codex", 1);
    assert_true(fx_alive(agent));
    fx_mock_answers(f, "m1");
    assert_int_equal(sj_server_stop(&f->srv), 0);
    fx_wait_gone(agent);
    assert_int_equal(kill(agent, 0), -1);
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(f->work), 0);
    assert_int_equal(sj_server_restart(&f->srv), 0);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(e2e_last_sequence(&f->srv, "x1"), sj_int(ended, "sequence"));
    fx_assert_contiguous(f, "x1");
    json_decref(delta);
    json_decref(ended);
}

/* The app-server hangs and is then asked something (a create).  Left
 * unanswered past the answer timeout, it is killed and restarted: the hung
 * turn gets its error, the create fails with the reason, and both sessions
 * go on with the new process. */
static void test_codex_unanswered(void **state)
{
    struct fx *f = *state;
    assert_int_equal(setenv("SJ_CODEX_ANSWER_TIMEOUT_MS", "3000", 1), 0);
    fx_start(f);
    assert_int_equal(unsetenv("SJ_CODEX_ANSWER_TIMEOUT_MS"), 0);
    fx_create(f, "x1", "codex");
    fx_send(f, "x1", "fault:hang");
    json_t *delta = fx_wait(f, "x1", 0, "item.delta", fx_is_agent_delta);
    struct httpc_response resp;
    sj_request(&f->srv, "POST", "/v1/sessions/x2", "{\"agent\":\"codex\"}", 1, &resp);
    json_t *p = sj_assert_problem(&resp, 500, "agent_process_exited");
    assert_non_null(strstr(sj_str(p, "detail"), "did not answer"));
    json_decref(p);
    httpc_response_free(&resp);
    sj_expect_problem(&f->srv, "GET", "/v1/sessions/x2/events", NULL, 404, "session_not_found");
    json_t *error = fx_wait(f, "x1", 0, "error", fx_is_server_exit);
    assert_non_null(strstr(sj_str(error, "data.message"), "did not answer"));
    fx_wait_gone(fx_agent_pid(f, "codex", 1));
    json_t *st = fx_codex_wait_status(f, "running", 1);
    json_decref(st);
    fx_create(f, "x2", "codex");
    fx_turn_ok(f, "x2", "codex");
    fx_turn_ok(f, "x1", "codex");
    fx_assert_reaped(f, 1);
    fx_assert_contiguous(f, "x1");
    json_decref(delta);
    json_decref(error);
}

/* Garbage on the shared stdout (no thread to pin it on) is only logged; the
 * turn completes. */
static void test_codex_garbage(void **state)
{
    struct fx *f = *state;
    fx_start(f);
    fx_create(f, "x1", "codex");
    long long last = e2e_last_sequence(&f->srv, "x1");
    fx_send(f, "x1", "fault:garbage");
    json_t *done = fx_wait(f, "x1", last, "item.completed", fx_is_turn_completed);
    fx_assert_contiguous(f, "x1");
    fx_turn_ok(f, "x1", "codex");
    json_decref(done);
}

/* The app-server exits while its approval request is pending: the approval
 * is withdrawn (resolved denied) and the turn gets its error; a late reply
 * is refused instead of being journaled as approved. */
static void test_codex_exit_mid_permission(void **state)
{
    struct fx *f = *state;
    fx_start(f);
    fx_create(f, "x1", "codex");
    fx_send(f, "x1", "fault:permexit");
    json_t *asked = fx_wait(f, "x1", 0, "permission.requested", NULL);
    json_t *error = fx_wait(f, "x1", 0, "error", fx_is_server_exit);
    json_t *resolved = fx_wait(f, "x1", 0, "permission.resolved", fx_is_denied);
    assert_true(sj_int(resolved, "sequence") < sj_int(error, "sequence"));
    assert_string_equal(sj_str(resolved, "data.permission_id"),
                        sj_str(asked, "data.permission_id"));
    char *path = sj_fmt("/v1/sessions/x1/permissions/%s/reply",
                        sj_str(asked, "data.permission_id"));
    sj_expect_problem(&f->srv, "POST", path, "{\"reply\":\"once\"}", 400, "invalid_request");
    json_t *st = fx_codex_wait_status(f, "running", 1);
    json_decref(st);
    fx_turn_ok(f, "x1", "codex");
    sj_expect_problem(&f->srv, "POST", path, "{\"reply\":\"once\"}", 400, "invalid_request");
    assert_int_equal(fx_count(f, "x1", "permission.resolved", NULL), 1);
    fx_assert_contiguous(f, "x1");
    free(path);
    json_decref(asked);
    json_decref(error);
    json_decref(resolved);
}

/* The app-server fails its handshake: exits at once, or answers every
 * request with an error (then it is killed and restarted, since it would
 * refuse every create).  Creating a session meanwhile fails with the
 * reason and leaves nothing in the journal; once a start works, creating
 * works. */
static void test_codex_handshake_fails(void **state)
{
    struct fx *f = *state;
    fx_modes(f, "codex", "startexit\nhserror\nok\n");
    fx_start(f);
    struct httpc_response resp;
    sj_request(&f->srv, "POST", "/v1/sessions/x0", "{\"agent\":\"codex\"}", 1, &resp);
    json_t *p = sj_assert_problem(&resp, 500, "agent_process_exited");
    assert_non_null(strstr(sj_str(p, "detail"), "refusing to start"));
    json_decref(p);
    httpc_response_free(&resp);
    sj_expect_problem(&f->srv, "GET", "/v1/sessions/x0/events", NULL, 404, "session_not_found");
    json_t *st = fx_codex_wait_status(f, "running", 1);
    json_decref(st);
    /* Start 2 refuses to initialize (it answers every request with an
     * error): it is killed and restarted by itself, and start 3 works. */
    st = fx_codex_wait_status(f, "running", 2);
    assert_non_null(strstr(sj_str(st, "lastError"), "refused to initialize"));
    assert_non_null(strstr(sj_str(st, "lastError"), "not initialized"));
    json_decref(st);
    fx_wait_gone(fx_agent_pid(f, "codex", 2));
    json_t *list = sj_call(&f->srv, "GET", "/v1/sessions", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "sessions")), 0);
    json_decref(list);
    fx_assert_reaped(f, 1);
    fx_create(f, "x1", "codex");
    fx_turn_ok(f, "x1", "codex");
}

/* The binary cannot be run: missing (and not installable), or with a
 * missing interpreter.  Creating fails with the reason, nothing is
 * journaled. */
static void test_codex_cannot_start(void **state)
{
    struct fx *f = *state;
    fx_install(f, "codex", "missing");
    fx_start(f);
    struct httpc_response resp;
    sj_request(&f->srv, "POST", "/v1/sessions/x0", "{\"agent\":\"codex\"}", 1, &resp);
    json_t *p = sj_assert_problem(&resp, 500, "install_failed");
    json_decref(p);
    httpc_response_free(&resp);
    fx_install(f, "codex", "badinterp");
    sj_request(&f->srv, "POST", "/v1/sessions/x0", "{\"agent\":\"codex\"}", 1, &resp);
    assert_true(resp.status >= 400);
    json_t *body = httpc_json(&resp);
    fprintf(stderr, "agent faults: codex badinterp: %d %s\n", resp.status,
            sj_str(body, "detail"));
    json_decref(body);
    httpc_response_free(&resp);
    sj_expect_problem(&f->srv, "GET", "/v1/sessions/x0/events", NULL, 404, "session_not_found");
    assert_int_equal(fx_agent_starts(f, "codex"), 0);
    fx_assert_reaped(f, 0);
    fx_install(f, "codex", "ok");
    fx_create(f, "x1", "codex");
    fx_turn_ok(f, "x1", "codex");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claude_sigkill, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_claude_sigsegv, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_claude_exit1_stderr, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_claude_exit0_mid_turn, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_claude_hang_terminate, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_claude_hang_shutdown, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_claude_flood_no_newline, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_claude_flood_lines, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_claude_garbage_and_truncated_exit, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_claude_exit_mid_permission, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_claude_permission_at_shutdown, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_claude_cannot_start, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_server_killed_during_agent_output, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_sigkill, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_sigsegv, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_exit1, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_truncated_exit, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_restart_backoff, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_hang, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_unanswered, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_flood_no_newline, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_flood_lines, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_garbage, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_exit_mid_permission, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_permission_at_shutdown, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_handshake_fails, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_codex_cannot_start, fx_setup, fx_teardown),
    };
    /* SJ_TEST_FILTER=test_codex_* runs some of them (cmocka's pattern). */
    if (getenv("SJ_TEST_FILTER"))
        cmocka_set_test_filter(getenv("SJ_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
