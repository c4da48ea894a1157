/* End-to-end helpers; see e2e.h. */
#include "e2e.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long e2e_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int e2e_ready(const char *agent)
{
    const char *fake = getenv("SJ_FAKE_MODEL");
    const char *agents = getenv("SJ_AGENTS_DIR");
    if (!fake || !*fake || access(fake, X_OK) != 0) {
        fprintf(stderr, "e2e: SJ_FAKE_MODEL (%s) is not runnable: skipped\n",
                fake ? fake : "unset");
        return 0;
    }
    char bin[PATH_MAX];
    if (!agents || !*agents ||
        snprintf(bin, sizeof bin, "%s/%s/node_modules/.bin/%s", agents, agent, agent) >=
            (int)sizeof bin ||
        access(bin, X_OK) != 0) {
        fprintf(stderr, "e2e: %s is not installed under SJ_AGENTS_DIR (%s): skipped\n", agent,
                agents ? agents : "unset");
        return 0;
    }
    return 1;
}

void e2e_fake_start(struct e2e_fake *f, const char *dir, const char *script)
{
    memset(f, 0, sizeof *f);
    f->out_fd = -1;
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    char script_path[PATH_MAX + 32];
    snprintf(script_path, sizeof script_path, "%s/script.json", dir);
    snprintf(f->log, sizeof f->log, "%s/requests.jsonl", dir);
    FILE *sf = fopen(script_path, "w");
    assert_non_null(sf);
    assert_true(fputs(script, sf) >= 0);
    assert_int_equal(fclose(sf), 0);

    const char *bin = getenv("SJ_FAKE_MODEL");
    assert_non_null(bin);
    const char *argv[] = { bin, "--host", "127.0.0.1", "--port", "0", "--script", script_path,
                           "--log", f->log, NULL };
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addclose(&fa, pipefd[1]);
    int rc = posix_spawn(&f->pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0)
        fail_msg("cannot start %s: %s", bin, strerror(rc));
    f->out_fd = pipefd[0];

    /* The ready line: "listening on http://127.0.0.1:<port>". */
    char line[256];
    size_t len = 0;
    long long deadline = e2e_now_ms() + 10000;
    for (;;) {
        long long left = deadline - e2e_now_ms();
        if (left <= 0)
            fail_msg("sj-fake-model printed no ready line");
        struct pollfd p = { .fd = f->out_fd, .events = POLLIN, .revents = 0 };
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char ch;
        ssize_t n = read(f->out_fd, &ch, 1);
        if (n <= 0)
            fail_msg("sj-fake-model exited before it was ready (script error?)");
        if (ch != '\n') {
            if (len + 1 < sizeof line)
                line[len++] = ch;
            continue;
        }
        line[len] = '\0';
        const char *prefix = "listening on http://127.0.0.1:";
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            f->port = atoi(line + strlen(prefix));
            break;
        }
        len = 0;
    }
    assert_true(f->port > 0);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
}

void e2e_fake_stop(struct e2e_fake *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        long long deadline = e2e_now_ms() + 5000;
        int status;
        while (waitpid(f->pid, &status, WNOHANG) == 0) {
            if (e2e_now_ms() > deadline) {
                kill(f->pid, SIGKILL);
                waitpid(f->pid, &status, 0);
                break;
            }
            sj_sleep_ms(20);
        }
        f->pid = 0;
    }
    if (f->out_fd >= 0) {
        close(f->out_fd);
        f->out_fd = -1;
    }
}

json_t *e2e_fake_requests(const struct e2e_fake *f, const char *path_prefix)
{
    json_t *list = json_array();
    assert_non_null(list);
    FILE *in = fopen(f->log, "r");
    if (!in)
        return list;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) > 0) {
        json_t *rec = json_loadb(line, (size_t)n, 0, NULL);
        const char *path = json_string_value(json_object_get(rec, "path"));
        if (rec && path && strncmp(path, path_prefix, strlen(path_prefix)) == 0 &&
            json_is_object(json_object_get(rec, "body")))
            json_array_append(list, rec);
        json_decref(rec);
    }
    free(line);
    fclose(in);
    return list;
}

void e2e_server_start(struct sj_server *s, const char *cwd, const char *const *extra_args)
{
    char dir[512];
    sj_fresh_dir(dir, sizeof dir, "e2e-data");
    const char *args[SJ_MAX_EXTRA_ARGS + 1];
    size_t n = 0;
    args[n++] = "--agents-dir";
    args[n++] = getenv("SJ_AGENTS_DIR");
    for (size_t i = 0; extra_args && extra_args[i] && n < SJ_MAX_EXTRA_ARGS; i++)
        args[n++] = extra_args[i];
    args[n] = NULL;
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(cwd), 0);
    int rc = sj_server_start(s, dir, args);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
}

int e2e_rig_setup(void **state)
{
    struct e2e_rig *r = calloc(1, sizeof *r);
    assert_non_null(r);
    /* Teardown stops the fake even if the test skipped before starting it:
     * an fd of 0 would close stdin. */
    r->fake.out_fd = -1;
    *state = r;
    return 0;
}

int e2e_rig_teardown(void **state)
{
    struct e2e_rig *r = *state;
    int rc = 0;
    if (r->started) {
        rc = sj_server_stop(&r->srv);
        sj_server_release(&r->srv);
    }
    e2e_fake_stop(&r->fake);
    free(r);
    return rc;
}

/* Where each CLI takes its model's address from; Codex and OpenCode append
 * their routes to a base that already ends in /v1. */
static const struct {
    const char *agent, *url_var, *url_suffix, *key_var;
} e2e_model_env[] = {
    { "claude", "ANTHROPIC_BASE_URL", "", "ANTHROPIC_API_KEY" },
    { "codex", "OPENAI_BASE_URL", "/v1", "OPENAI_API_KEY" },
    { "opencode", "OPENAI_BASE_URL", "/v1", "OPENAI_API_KEY" },
    { "qwen", "OPENAI_BASE_URL", "/v1", "OPENAI_API_KEY" },
    { "pi", "OPENAI_BASE_URL", "/v1", "OPENAI_API_KEY" },
    { "gemini", "GOOGLE_GEMINI_BASE_URL", "", "GEMINI_API_KEY" },
};

void e2e_rig_start(struct e2e_rig *r, const char *agent, const char *script,
                   const char *const *extra_args)
{
    size_t i = 0;
    while (i < sizeof e2e_model_env / sizeof e2e_model_env[0] &&
           strcmp(e2e_model_env[i].agent, agent) != 0)
        i++;
    if (i == sizeof e2e_model_env / sizeof e2e_model_env[0])
        fail_msg("e2e_rig_start: no model environment for agent %s", agent);
    if (!e2e_ready(agent))
        skip();
    char tag[64];
    snprintf(tag, sizeof tag, "e2e-%s-work", agent);
    sj_fresh_dir(r->work, sizeof r->work, tag);
    snprintf(tag, sizeof tag, "e2e-%s-fake", agent);
    sj_fresh_dir(r->fake_dir, sizeof r->fake_dir, tag);
    e2e_fake_start(&r->fake, r->fake_dir, script);
    char *url = sj_fmt("%s%s", r->fake.url, e2e_model_env[i].url_suffix);
    assert_int_equal(setenv(e2e_model_env[i].url_var, url, 1), 0);
    assert_int_equal(setenv(e2e_model_env[i].key_var, "sk-test-e2e", 1), 0);
    free(url);
    e2e_server_start(&r->srv, r->work, extra_args);
    r->started = 1;
}

json_t *e2e_events(struct sj_server *s, const char *session_id)
{
    json_t *page = sj_get_events(s, session_id, "?offset=0&limit=10000");
    json_t *events = json_incref(json_object_get(page, "events"));
    json_decref(page);
    assert_true(json_is_array(events));
    return events;
}

long long e2e_last_sequence(struct sj_server *s, const char *session_id)
{
    json_t *events = e2e_events(s, session_id);
    size_t n = json_array_size(events);
    long long last = n ? sj_int(json_array_get(events, n - 1), "sequence") : 0;
    json_decref(events);
    return last;
}

static void e2e_dump(const json_t *events)
{
    size_t i;
    const json_t *ev;
    json_array_foreach(events, i, ev) {
        char *s = json_dumps(json_object_get(ev, "data"), JSON_COMPACT);
        fprintf(stderr, "  %lld %s %.300s\n", (long long)json_integer_value(
                                                   json_object_get(ev, "sequence")),
                json_string_value(json_object_get(ev, "type")), s ? s : "");
        free(s);
    }
}

json_t *e2e_wait_event(struct sj_server *s, const char *session_id, long long after,
                       const char *type, int (*pred)(const json_t *event), int timeout_ms)
{
    long long deadline = e2e_now_ms() + timeout_ms;
    for (;;) {
        json_t *events = e2e_events(s, session_id);
        size_t i;
        const json_t *ev;
        json_array_foreach(events, i, ev) {
            if (json_integer_value(json_object_get(ev, "sequence")) <= after)
                continue;
            if (strcmp(json_string_value(json_object_get(ev, "type")), type) != 0)
                continue;
            if (pred && !pred(ev))
                continue;
            json_t *found = json_incref((json_t *)ev);
            json_decref(events);
            return found;
        }
        if (e2e_now_ms() > deadline) {
            fprintf(stderr, "e2e: no %s after sequence %lld in session %s within %d ms:\n",
                    type, after, session_id, timeout_ms);
            e2e_dump(events);
            json_decref(events);
            fail();
        }
        json_decref(events);
        sj_sleep_ms(50);
    }
}

static int e2e_is_assistant_message(const json_t *ev)
{
    const json_t *item = json_object_get(json_object_get(ev, "data"), "item");
    const char *kind = json_string_value(json_object_get(item, "kind"));
    const char *role = json_string_value(json_object_get(item, "role"));
    return kind && role && strcmp(kind, "message") == 0 && strcmp(role, "assistant") == 0;
}

json_t *e2e_wait_assistant_done(struct sj_server *s, const char *session_id, long long after,
                                int timeout_ms)
{
    return e2e_wait_event(s, session_id, after, "item.completed", e2e_is_assistant_message,
                          timeout_ms);
}

json_t *e2e_server_status(struct sj_server *s, const char *agent)
{
    json_t *agents = sj_call(s, "GET", "/v1/agents", NULL, 200);
    size_t i;
    const json_t *a;
    json_t *status = NULL;
    json_array_foreach(json_object_get(agents, "agents"), i, a)
        if (strcmp(sj_str(a, "id"), agent) == 0)
            status = json_incref(json_object_get(a, "serverStatus"));
    json_decref(agents);
    if (!status)
        fail_msg("GET /v1/agents has no serverStatus for %s", agent);
    return status;
}

int e2e_json_contains(const json_t *v, const char *needle)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    int found = s && strstr(s, needle) != NULL;
    free(s);
    return found;
}

int e2e_each_child(pid_t parent, int (*visit)(void *ctx, pid_t pid, const char *comm, char state),
                   void *ctx)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int stop = 0;
    struct dirent *e;
    while (!stop && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* it exited while we listed */
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* pid (comm) state ppid ... ; comm may hold spaces: find the last ')'. */
        char *open = strchr(buf, '(');
        char *close = strrchr(buf, ')');
        long ppid = 0;
        char state;
        if (!open || !close || close < open ||
            sscanf(close + 1, " %c %ld", &state, &ppid) != 2 || ppid != parent)
            continue;
        *close = '\0';
        stop = visit(ctx, (pid_t)atol(e->d_name), open + 1, state);
    }
    closedir(d);
    return stop;
}

struct child_by_comm {
    const char *comm;
    pid_t found;
};

static int match_comm(void *ctx, pid_t pid, const char *comm, char state)
{
    (void)state; /* a zombie of that name counts: it has not been reaped */
    struct child_by_comm *want = ctx;
    if (strncmp(comm, want->comm, strlen(want->comm)) != 0)
        return 0;
    want->found = pid;
    return 1;
}

pid_t e2e_child_pid(pid_t parent, const char *comm)
{
    struct child_by_comm want = {comm, 0};
    return e2e_each_child(parent, match_comm, &want) == 1 ? want.found : 0;
}

/* One level down through any child (a wrapper process). */
static int match_grandchild(void *ctx, pid_t pid, const char *comm, char state)
{
    (void)comm, (void)state; /* any child may be the wrapper */
    struct child_by_comm *want = ctx;
    want->found = e2e_child_pid(pid, want->comm);
    return want->found != 0;
}

pid_t e2e_descendant_pid(pid_t root, const char *comm)
{
    pid_t found = e2e_child_pid(root, comm);
    if (found)
        return found;
    struct child_by_comm want = {comm, 0};
    return e2e_each_child(root, match_grandchild, &want) == 1 ? want.found : 0;
}
