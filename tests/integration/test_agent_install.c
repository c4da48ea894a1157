/* Agent installation through the real binary, with a stand-in npm on PATH
 * (a script laying out what `npm install --prefix` would), so no registry
 * is needed: POST /v1/agents/{agent}/install, GET /v1/agents reporting what
 * is there, the lazy install when a session is created, the errors for a
 * missing npm and a failing registry, and `sandbox-journal install-agent`
 * on the command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "server.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Writes <dir>/npm: fails like npm offline when `fail`, else installs a
 * fake package and counts its runs in <dir>/calls. */
static void make_npm(const char *dir, int fail)
{
    char *path = sj_fmt("%s/npm", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\n"
            "echo run >> '%s/calls'\n"
            "%s"
            "prefix=''; spec=''\n"
            "while [ $# -gt 0 ]; do\n"
            "  case \"$1\" in --prefix) prefix=$2; shift ;; -*|install) ;; *) spec=$1 ;; esac\n"
            "  shift\n"
            "done\n"
            "ver=${spec##*@}; pkg=${spec%%@$ver}\n"
            "bin=claude; [ \"$pkg\" = @openai/codex ] && bin=codex\n"
            "mkdir -p \"$prefix/node_modules/$pkg\" \"$prefix/node_modules/.bin\"\n"
            "printf '{\"name\":\"%%s\",\"version\":\"%%s\"}' \"$pkg\" \"$ver\" "
            "> \"$prefix/node_modules/$pkg/package.json\"\n"
            "printf '#!/bin/sh\\necho %%s\\n' \"$ver\" > \"$prefix/node_modules/$pkg/cli\"\n"
            "chmod +x \"$prefix/node_modules/$pkg/cli\"\n"
            "ln -s \"../$pkg/cli\" \"$prefix/node_modules/.bin/$bin\"\n",
            dir,
            fail ? "echo 'npm error code ENOTFOUND' >&2\n"
                   "echo 'npm error request to https://registry.npmjs.org failed' >&2\n"
                   "exit 1\n"
                 : "");
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0755), 0);
    free(path);
}

static int calls(const char *dir)
{
    char *path = sj_fmt("%s/calls", dir);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Starts a server whose PATH is `bin_dir` plus the system's (so the agents
 * on this machine's PATH, if any, stay out of it). */
static void start_with_path(struct sj_server *s, const char *bin_dir)
{
    char *path = sj_fmt("%s:/usr/bin:/bin", bin_dir);
    char *saved = strdup(getenv("PATH"));
    assert_int_equal(setenv("PATH", path, 1), 0);
    char dir[512];
    sj_fresh_dir(dir, sizeof dir, "agent-install");
    int rc = sj_server_start(s, dir, NULL);
    assert_int_equal(setenv("PATH", saved, 1), 0);
    free(saved);
    free(path);
    assert_int_equal(rc, 0);
}

static const json_t *agent_info(const json_t *list, const char *id)
{
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(list, "agents"), i, a)
        if (strcmp(sj_str(a, "id"), id) == 0)
            return a;
    fail_msg("no agent %s", id);
    return NULL;
}

static void test_install_endpoint(void **state)
{
    (void)state;
    char bin[512];
    sj_fresh_dir(bin, sizeof bin, "npm-ok");
    make_npm(bin, 0);
    struct sj_server s;
    start_with_path(&s, bin);

    json_t *list = sj_call(&s, "GET", "/v1/agents", NULL, 200);
    assert_false(json_is_true(json_object_get(agent_info(list, "claude"), "installed")));
    assert_null(json_object_get(agent_info(list, "claude"), "path"));
    json_decref(list);

    json_decref(sj_call(&s, "POST", "/v1/agents/claude/install", "{}", 204));
    assert_int_equal(calls(bin), 1);
    list = sj_call(&s, "GET", "/v1/agents", NULL, 200);
    const json_t *c = agent_info(list, "claude");
    assert_true(json_is_true(json_object_get(c, "installed")));
    assert_string_equal(sj_str(c, "version"), "2.1.197");
    char *want = sj_fmt("%s/agents/claude/node_modules/.bin/claude", s.data_dir);
    assert_string_equal(sj_str(c, "path"), want);
    free(want);
    json_decref(list);

    /* The pinned version is there: nothing to do, unless asked. */
    json_decref(sj_call(&s, "POST", "/v1/agents/claude/install", NULL, 204));
    assert_int_equal(calls(bin), 1);
    json_decref(sj_call(&s, "POST", "/v1/agents/claude/install", "{\"reinstall\":true}", 204));
    assert_int_equal(calls(bin), 2);
    /* The mock is built in.  This fake npm puts no `amp` binary in place:
     * the install is refused, never reported done. */
    json_decref(sj_call(&s, "POST", "/v1/agents/mock/install", NULL, 204));
    struct httpc_response resp;
    sj_request(&s, "POST", "/v1/agents/amp/install", NULL, 1, &resp);
    json_decref(sj_assert_problem(&resp, 500, "install_failed"));
    httpc_response_free(&resp);
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
}

static void test_lazy_install_on_create(void **state)
{
    (void)state;
    char bin[512];
    sj_fresh_dir(bin, sizeof bin, "npm-lazy");
    make_npm(bin, 0);
    struct sj_server s;
    start_with_path(&s, bin);
    json_t *r = sj_create_session(&s, "c1", "{\"agent\":\"claude\"}");
    assert_int_equal(strlen(sj_str(r, "nativeSessionId")), 36);
    json_decref(r);
    assert_int_equal(calls(bin), 1);
    json_t *list = sj_call(&s, "GET", "/v1/agents", NULL, 200);
    assert_true(json_is_true(json_object_get(agent_info(list, "claude"), "installed")));
    json_decref(list);
    /* A second session finds it installed. */
    json_decref(sj_create_session(&s, "c2", "{\"agent\":\"claude\"}"));
    assert_int_equal(calls(bin), 1);
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
}

static void test_install_errors(void **state)
{
    (void)state;
    char nothing[512], bad[512];
    sj_fresh_dir(nothing, sizeof nothing, "npm-none");
    sj_fresh_dir(bad, sizeof bad, "npm-bad");
    make_npm(bad, 1);

    /* No npm at all: /usr/bin is on PATH, so only where npm is not there. */
    if (access("/usr/bin/npm", X_OK) != 0 && access("/bin/npm", X_OK) != 0) {
        struct sj_server s;
        start_with_path(&s, nothing);
        struct httpc_response resp;
        sj_request(&s, "POST", "/v1/agents/codex/install", NULL, 1, &resp);
        json_t *p = sj_assert_problem(&resp, 500, "install_failed");
        assert_non_null(strstr(sj_str(p, "detail"), "npm not found"));
        json_decref(p);
        httpc_response_free(&resp);
        assert_int_equal(sj_server_stop(&s), 0);
        sj_server_release(&s);
    }

    /* npm that cannot reach its registry: the error says so, at install and
     * at the lazy install of a new session, and no session is created. */
    struct sj_server s;
    start_with_path(&s, bad);
    struct httpc_response resp;
    sj_request(&s, "POST", "/v1/agents/claude/install", NULL, 1, &resp);
    json_t *p = sj_assert_problem(&resp, 500, "install_failed");
    assert_non_null(strstr(sj_str(p, "detail"), "ENOTFOUND"));
    json_decref(p);
    httpc_response_free(&resp);
    sj_request(&s, "POST", "/v1/sessions/x1", "{\"agent\":\"claude\"}", 1, &resp);
    json_decref(sj_assert_problem(&resp, 500, "install_failed"));
    httpc_response_free(&resp);
    sj_request(&s, "GET", "/v1/sessions/x1/events", NULL, 1, &resp);
    assert_int_equal(resp.status, 404);
    httpc_response_free(&resp);
    json_t *list = sj_call(&s, "GET", "/v1/agents", NULL, 200);
    assert_false(json_is_true(json_object_get(agent_info(list, "claude"), "installed")));
    json_decref(list);
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
}

static void test_cli_install_agent(void **state)
{
    (void)state;
    char bin[512], agents[512];
    sj_fresh_dir(bin, sizeof bin, "npm-cli");
    sj_fresh_dir(agents, sizeof agents, "agents-cli");
    make_npm(bin, 0);
    char *npm = sj_fmt("%s/npm", bin);
    struct sj_cli_result r;
    const char *args[] = { "install-agent", "codex", "--agents-dir", agents, "--npm", npm, NULL };
    sj_cli_run(args, NULL, &r);
    if (r.exit_code != 0)
        sj_cli_dump("install-agent", &r);
    assert_int_equal(r.exit_code, 0);
    char *want = sj_fmt("codex 0.169.0 installed: %s/codex/node_modules/.bin/codex\n", agents);
    assert_string_equal(r.out, want);
    assert_non_null(strstr(r.err, "installing codex (@openai/codex@0.169.0)"));
    free(want);
    sj_cli_result_free(&r);

    /* Unknown agent, and the built-in one. */
    const char *bad[] = { "install-agent", "nope", "--agents-dir", agents, NULL };
    sj_cli_run(bad, NULL, &r);
    assert_int_equal(r.exit_code, 2);
    sj_cli_result_free(&r);
    const char *mock[] = { "install-agent", "mock", NULL };
    sj_cli_run(mock, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    sj_cli_result_free(&r);

    /* npm failing: exit 1 and one line saying why. */
    char failing[512];
    sj_fresh_dir(failing, sizeof failing, "npm-cli-bad");
    make_npm(failing, 1);
    char *bad_npm = sj_fmt("%s/npm", failing);
    const char *args2[] = { "install-agent", "claude", "--agents-dir", agents, "--npm", bad_npm,
                            NULL };
    sj_cli_run(args2, NULL, &r);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "install failed"));
    assert_non_null(strstr(r.err, "ENOTFOUND"));
    sj_cli_result_free(&r);
    free(bad_npm);
    free(npm);
}

/* Writes <dir>/npm, a slow one for claude and amp (neither starts a process
 * at session creation): it logs "<binary>" to <dir>/calls, marks
 * <dir>/started-<binary>, and then, with `hold`, sleeps until killed
 * (its sleep's pid in <dir>/sleep-<binary>); else it waits (at most 10 s)
 * until the other agent's install has started too, so installs run one after
 * another fail, sleeps 2 s more and installs like make_npm. */
static void make_slow_npm(const char *dir, int hold)
{
    char *path = sj_fmt("%s/npm", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\n"
            "d='%s'\n"
            "prefix=''; spec=''\n"
            "while [ $# -gt 0 ]; do\n"
            "  case \"$1\" in --prefix) prefix=$2; shift ;; -*|install) ;; *) spec=$1 ;; esac\n"
            "  shift\n"
            "done\n"
            "ver=${spec##*@}; pkg=${spec%%%%@$ver}\n"
            "bin=claude; other=amp\n"
            "[ \"$pkg\" = @sourcegraph/amp ] && bin=amp && other=claude\n"
            "echo $bin >> \"$d/calls\"\n"
            "touch \"$d/started-$bin\"\n"
            "%s"
            "i=0\n"
            "while [ ! -e \"$d/started-$other\" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n"
            "[ -e \"$d/started-$other\" ] || { echo 'npm error: installs not in parallel' >&2; exit 1; }\n"
            "sleep 2\n"
            "mkdir -p \"$prefix/node_modules/$pkg\" \"$prefix/node_modules/.bin\"\n"
            "printf '{\"name\":\"%%s\",\"version\":\"%%s\"}' \"$pkg\" \"$ver\" "
            "> \"$prefix/node_modules/$pkg/package.json\"\n"
            "printf '#!/bin/sh\\necho %%s\\n' \"$ver\" > \"$prefix/node_modules/$pkg/cli\"\n"
            "chmod +x \"$prefix/node_modules/$pkg/cli\"\n"
            "ln -s \"../$pkg/cli\" \"$prefix/node_modules/.bin/$bin\"\n",
            dir,
            hold ? "mkdir -p \"$prefix/node_modules/half-written\"\n"
                   "sleep 120 & echo $! > \"$d/sleep-$bin\"; wait\n"
                   "exit 1\n"
                 : "");
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0755), 0);
    free(path);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls (every 20 ms, at most 15 s) until <dir>/<name> exists. */
static void wait_file(const char *dir, const char *name)
{
    char *path = sj_fmt("%s/%s", dir, name);
    for (int i = 0; i < 750 && access(path, F_OK) != 0; i++)
        sj_sleep_ms(20);
    if (access(path, F_OK) != 0)
        fail_msg("%s never appeared", path);
    free(path);
}

static int count_lines(const char *dir, const char *want)
{
    char *path = sj_fmt("%s/calls", dir);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return 0;
    char line[64];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        n += strcmp(line, want) == 0;
    }
    fclose(f);
    return n;
}

/* GET /v1/health answers within a second. */
static void assert_health_quick(struct sj_server *s)
{
    struct httpc_response resp;
    long long t0 = now_ms();
    int rc = httpc_request(s->port, "GET", "/v1/health", NULL, NULL, 0, 1000, &resp);
    long long took = now_ms() - t0;
    if (rc != 0)
        fail_msg("GET /v1/health during installs: %s after %lld ms", httpc_strerror(rc), took);
    assert_int_equal(resp.status, 200);
    assert_true(took < 1000);
    httpc_response_free(&resp);
}

struct create_call {
    int port;
    char id[16];
    const char *agent;
    int rc;
    int status;
};

static void *create_thread(void *arg)
{
    struct create_call *c = arg;
    char path[64], body[64];
    snprintf(path, sizeof path, "/v1/sessions/%s", c->id);
    snprintf(body, sizeof body, "{\"agent\":\"%s\"}", c->agent);
    struct httpc_response resp;
    c->rc = httpc_request(c->port, "POST", path, NULL, body, strlen(body), 30000, &resp);
    if (c->rc == 0) {
        c->status = resp.status;
        httpc_response_free(&resp);
    }
    return NULL;
}

/* n creates at once, claude and (with `both`) amp in turn. */
static void start_creates(struct sj_server *s, struct create_call *calls_, pthread_t *threads,
                          int n, int both)
{
    for (int i = 0; i < n; i++) {
        calls_[i].port = s->port;
        snprintf(calls_[i].id, sizeof calls_[i].id, "s%d", i);
        calls_[i].agent = both && i % 2 ? "amp" : "claude";
        calls_[i].rc = calls_[i].status = -1;
        assert_int_equal(pthread_create(&threads[i], NULL, create_thread, &calls_[i]), 0);
    }
}

/* Issue 13, bug 3: npm ran on the HTTP worker of the request.  Eight
 * concurrent creates (four threads by default) took every worker, so
 * /v1/health timed out, and one install lock made the agents wait for each
 * other.  Now: one npm per agent, both at once, and the API answers. */
static void test_slow_installs_keep_api_up(void **state)
{
    (void)state;
    char bin[512];
    sj_fresh_dir(bin, sizeof bin, "npm-slow");
    make_slow_npm(bin, 0);
    struct sj_server s;
    start_with_path(&s, bin);

    enum { N = 8 };
    struct create_call c[N];
    pthread_t threads[N];
    start_creates(&s, c, threads, N, 1);
    /* Both installs are running (each npm sleeps 2 s once both started). */
    wait_file(bin, "started-claude");
    wait_file(bin, "started-amp");
    for (int i = 0; i < 5; i++) {
        assert_health_quick(&s);
        json_decref(sj_call(&s, "GET", "/v1/sessions", NULL, 200));
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    for (int i = 0; i < N; i++) {
        if (c[i].rc != 0 || c[i].status != 200)
            fail_msg("create %s (%s): rc %d status %d", c[i].id, c[i].agent, c[i].rc,
                     c[i].status);
    }
    assert_int_equal(count_lines(bin, "claude"), 1);
    assert_int_equal(count_lines(bin, "amp"), 1);
    json_t *list = sj_call(&s, "GET", "/v1/sessions", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "sessions")), N);
    json_decref(list);
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
}

/* 1 while `pid` is alive (a zombie counts as gone). */
static int process_alive(pid_t pid)
{
    char *path = sj_fmt("/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return 0;
    char line[512];
    int alive = 1;
    if (fgets(line, sizeof line, f)) {
        const char *close_paren = strrchr(line, ')');
        alive = !(close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z');
    }
    fclose(f);
    return alive;
}

static pid_t read_pid(const char *dir, const char *name)
{
    char *path = sj_fmt("%s/%s", dir, name);
    int pid = 0;
    for (int i = 0; i < 250 && pid <= 0; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%d", &pid) != 1)
                pid = 0;
            fclose(f);
        }
        if (pid <= 0)
            sj_sleep_ms(20);
    }
    free(path);
    assert_true(pid > 0);
    return (pid_t)pid;
}

/* SIGTERM waited for npm (15 minutes at worst).  Now it kills npm's whole
 * process group within seconds and leaves no half-installed agent. */
static void test_shutdown_cancels_installs(void **state)
{
    (void)state;
    char bin[512];
    sj_fresh_dir(bin, sizeof bin, "npm-hold");
    make_slow_npm(bin, 1);
    struct sj_server s;
    start_with_path(&s, bin);
    enum { N = 4 };
    struct create_call c[N];
    pthread_t threads[N];
    start_creates(&s, c, threads, N, 0);
    pid_t claude = read_pid(bin, "sleep-claude");
    assert_health_quick(&s);

    long long t0 = now_ms();
    int rc = sj_server_stop(&s);
    long long took = now_ms() - t0;
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    if (rc != 0 || took > 5000)
        fail_msg("stop: rc %d after %lld ms (killed %d)", rc, took, s.killed);
    for (int i = 0; i < N; i++)
        assert_true(c[i].rc != 0 || c[i].status != 200); /* never a session */
    for (int i = 0; i < 100 && process_alive(claude); i++)
        sj_sleep_ms(20);
    assert_false(process_alive(claude));
    const char *left[] = { "claude", "claude.installing" };
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        char *path = sj_fmt("%s/agents/%s", s.data_dir, left[i]);
        struct stat st;
        if (lstat(path, &st) == 0)
            fail_msg("%s left behind", path);
        assert_int_equal(errno, ENOENT);
        free(path);
    }
    sj_server_release(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_endpoint),
        cmocka_unit_test(test_lazy_install_on_create),
        cmocka_unit_test(test_install_errors),
        cmocka_unit_test(test_cli_install_agent),
        cmocka_unit_test(test_slow_installs_keep_api_up),
        cmocka_unit_test(test_shutdown_cancels_installs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
