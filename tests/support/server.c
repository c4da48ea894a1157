/* Runs the sandbox-journal binary for integration tests; see server.h. */
#include "server.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

/* ---- small utilities ------------------------------------------------------ */

char *sj_fmt(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void sj_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int mkdir_p(const char *path)
{
    char tmp[1024];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static void program_name(char *out, size_t size)
{
    FILE *f = fopen("/proc/self/comm", "r");
    snprintf(out, size, "test");
    if (f) {
        if (fgets(out, (int)size, f)) {
            size_t n = strlen(out);
            while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
                out[--n] = '\0';
            if (n == 0)
                snprintf(out, size, "test");
        }
        fclose(f);
    }
}

void sj_fresh_dir(char *out, size_t size, const char *tag)
{
    static unsigned counter;
    const char *base = getenv("SJ_TEST_TMPDIR");
    int n;
    if (!base || !*base)
        base = "/tmp";
    if (mkdir_p(base) != 0)
        fail_msg("cannot create SJ_TEST_TMPDIR %s: %s", base, strerror(errno));
    for (int attempt = 0; attempt < 1000; attempt++) {
        n = snprintf(out, size, "%s/%s-%ld-%u", base, tag, (long)getpid(), ++counter);
        if (n < 0 || (size_t)n >= size)
            fail_msg("data dir path too long");
        if (mkdir(out, 0755) == 0)
            return;
        if (errno != EEXIST)
            fail_msg("cannot create %s: %s", out, strerror(errno));
    }
    fail_msg("no fresh directory under %s", base);
}

/* ---- process control ------------------------------------------------------- */

/* Servers still running are killed when the test binary exits, so a failed
 * assertion never leaves one behind. */
#define MAX_LIVE 16
static pid_t live_pids[MAX_LIVE];
static int atexit_registered;

static void kill_live_servers(void)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        if (live_pids[i] > 0) {
            kill(live_pids[i], SIGKILL);
            waitpid(live_pids[i], NULL, 0);
            live_pids[i] = 0;
        }
    }
}

static void live_add(pid_t pid)
{
    if (!atexit_registered) {
        atexit(kill_live_servers);
        atexit_registered = 1;
    }
    for (int i = 0; i < MAX_LIVE; i++)
        if (live_pids[i] == 0) {
            live_pids[i] = pid;
            return;
        }
}

static void live_remove(pid_t pid)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live_pids[i] == pid)
            live_pids[i] = 0;
}

/* Copies the server's stdout (after the ready line) to our stderr until EOF. */
static void *drain_main(void *arg)
{
    int fd = *(int *)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            ssize_t off = 0;
            while (off < n) {
                ssize_t w = write(STDERR_FILENO, buf + off, (size_t)(n - off));
                if (w <= 0)
                    break;
                off += w;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    return NULL;
}

/* Waits for the child to exit for at most timeout_ms.  1 if reaped (status
 * in *status), 0 if still running. */
static int wait_child(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return 1; /* not our child any more */
        if (mono_ms() >= deadline)
            return 0;
        sj_sleep_ms(10);
    }
}

static void reap_after_failure(struct sj_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &s->exit_status, 0);
        live_remove(s->pid);
        s->pid = 0;
    }
    if (s->drain_running) {
        pthread_join(s->drain, NULL);
        s->drain_running = 0;
    }
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
}

/* A server under a wrapper (valgrind in CI's stage 2) starts, and stops with
 * its leak check, many times slower: its start and stop bounds stretch. */
static int server_bound_ms(int base_ms)
{
    const char *wrapper = getenv("SJ_SERVER_WRAPPER");
    return wrapper && *wrapper ? base_ms * 3 : base_ms;
}

/* Reads the child's stdout until the ready line.  0 and s->port set, or -1. */
static int read_ready_line(struct sj_server *s)
{
    char line[512];
    size_t len = 0;
    const int bound_ms = server_bound_ms(SJ_READY_TIMEOUT_MS);
    int64_t deadline = mono_ms() + bound_ms;

    for (;;) {
        struct pollfd p = {.fd = s->out_fd, .events = POLLIN, .revents = 0};
        int64_t left = deadline - mono_ms();
        char ch;
        ssize_t n;
        int r;

        if (left <= 0) {
            fprintf(stderr, "server: no ready line within %d ms\n", bound_ms);
            return -1;
        }
        r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue; /* timeout is caught at the top */
        /* One byte at a time so nothing after the line is consumed here. */
        n = read(s->out_fd, &ch, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "server: exited before it was ready\n");
            return -1;
        }
        if (ch != '\n') {
            if (len + 1 < sizeof line)
                line[len++] = ch;
            continue;
        }
        line[len] = '\0';
        {
            const char *prefix = "listening on http://127.0.0.1:";
            size_t pl = strlen(prefix);
            if (strncmp(line, prefix, pl) == 0) {
                char *end;
                long port = strtol(line + pl, &end, 10);
                if (end != line + pl && *end == '\0' && port > 0 && port < 65536) {
                    s->port = (int)port;
                    return 0;
                }
            }
            fprintf(stderr, "server stdout (before ready): %s\n", line);
            len = 0;
        }
    }
}

static int spawn_server(struct sj_server *s)
{
    const char *bin = getenv("SJ_BINARY");
    const char *argv[32 + SJ_MAX_EXTRA_ARGS];
    int argc = 0, has_token = 0, has_delay = 0;
    int pipefd[2];
    posix_spawn_file_actions_t fa;
    int rc;

    if (!bin || !*bin) {
        fprintf(stderr, "SJ_BINARY is not set\n");
        return -1;
    }
    for (int i = 0; s->extra[i]; i++)
        if (strcmp(s->extra[i], "--token") == 0 || strcmp(s->extra[i], "--token-file") == 0)
            has_token = 1;
        else if (strcmp(s->extra[i], "--mock-delay-ms") == 0)
            has_delay = 1;

    /* SJ_SERVER_WRAPPER (e.g. "valgrind --error-exitcode=9 ...") runs the
     * server under a checker; its exit status then speaks for the checker. */
    char wrapper[1024] = "";
    const char *wrap_env = getenv("SJ_SERVER_WRAPPER");
    if (wrap_env && *wrap_env && strlen(wrap_env) < sizeof wrapper) {
        strcpy(wrapper, wrap_env);
        for (char *tok = strtok(wrapper, " "); tok && argc < 16; tok = strtok(NULL, " "))
            argv[argc++] = tok;
    }
    const char *program = argc ? argv[0] : bin;
    argv[argc++] = bin;
    argv[argc++] = "server";
    argv[argc++] = "--host";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--port";
    argv[argc++] = "0";
    argv[argc++] = "--data-dir";
    argv[argc++] = s->data_dir;
    if (!has_token)
        argv[argc++] = "--no-token";
    if (!has_delay) {
        argv[argc++] = "--mock-delay-ms";
        argv[argc++] = "1";
    }
    for (int i = 0; s->extra[i]; i++)
        argv[argc++] = s->extra[i];
    argv[argc] = NULL;

    if (pipe(pipefd) != 0)
        return -1;
    fcntl(pipefd[0], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, pipefd[1]);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    rc = posix_spawnp(&s->pid, program, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        fprintf(stderr, "cannot start %s: %s\n", bin, strerror(rc));
        close(pipefd[0]);
        s->pid = 0;
        return -1;
    }
    live_add(s->pid);
    s->out_fd = pipefd[0];

    if (read_ready_line(s) != 0) {
        reap_after_failure(s);
        return -1;
    }
    if (pthread_create(&s->drain, NULL, drain_main, &s->out_fd) == 0)
        s->drain_running = 1;
    return 0;
}

int sj_server_start(struct sj_server *s, const char *data_dir, const char *const *extra_args)
{
    int n = 0;
    memset(s, 0, sizeof *s);
    s->out_fd = -1;
    snprintf(s->data_dir, sizeof s->data_dir, "%s", data_dir);
    for (; extra_args && extra_args[n]; n++) {
        if (n >= SJ_MAX_EXTRA_ARGS) {
            fprintf(stderr, "too many extra args\n");
            return -1;
        }
        s->extra[n] = strdup(extra_args[n]);
        if (strcmp(extra_args[n], "--token") == 0 && extra_args[n + 1])
            snprintf(s->token, sizeof s->token, "%s", extra_args[n + 1]);
    }
    s->extra[n] = NULL;
    return spawn_server(s);
}

int sj_server_stop(struct sj_server *s)
{
    int ok;
    if (s->pid <= 0)
        return 0;
    const int bound_ms = server_bound_ms(SJ_STOP_TIMEOUT_MS);
    s->killed = 0;
    kill(s->pid, SIGTERM);
    if (!wait_child(s->pid, bound_ms, &s->exit_status)) {
        fprintf(stderr, "server %ld did not exit within %d ms of SIGTERM; killing it\n",
                (long)s->pid, bound_ms);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &s->exit_status, 0);
        s->killed = 1;
    }
    live_remove(s->pid);
    s->pid = 0;
    if (s->drain_running) {
        pthread_join(s->drain, NULL);
        s->drain_running = 0;
    }
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
    ok = !s->killed && WIFEXITED(s->exit_status) && WEXITSTATUS(s->exit_status) == 0;
    if (!ok && !s->killed) {
        if (WIFEXITED(s->exit_status))
            fprintf(stderr, "server exited with status %d after SIGTERM\n",
                    WEXITSTATUS(s->exit_status));
        else if (WIFSIGNALED(s->exit_status))
            fprintf(stderr, "server died of signal %d after SIGTERM\n",
                    WTERMSIG(s->exit_status));
    }
    return ok ? 0 : -1;
}

int sj_server_restart(struct sj_server *s)
{
    int rc = sj_server_stop(s);
    if (spawn_server(s) != 0)
        return -1;
    return rc;
}

void sj_server_release(struct sj_server *s)
{
    for (int i = 0; i < SJ_MAX_EXTRA_ARGS && s->extra[i]; i++) {
        free(s->extra[i]);
        s->extra[i] = NULL;
    }
}

int sj_setup_with(void **state, const char *const *extra_args)
{
    struct sj_server *s = calloc(1, sizeof *s);
    char dir[512], name[64];
    if (!s)
        return -1;
    program_name(name, sizeof name);
    sj_fresh_dir(dir, sizeof dir, name);
    if (sj_server_start(s, dir, extra_args) != 0) {
        sj_server_release(s);
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

int sj_setup_default(void **state)
{
    return sj_setup_with(state, NULL);
}

int sj_teardown_default(void **state)
{
    struct sj_server *s = *state;
    int rc;
    if (!s)
        return 0;
    rc = sj_server_stop(s);
    sj_server_release(s);
    free(s);
    *state = NULL;
    return rc;
}

/* ---- requests -------------------------------------------------------------- */

void sj_request(struct sj_server *s, const char *method, const char *path, const char *json_body,
                int auth, struct httpc_response *resp)
{
    char auth_line[192];
    const char *headers[3];
    int nh = 0, rc;

    if (auth && s->token[0]) {
        snprintf(auth_line, sizeof auth_line, "Authorization: Bearer %s", s->token);
        headers[nh++] = auth_line;
    }
    if (json_body)
        headers[nh++] = "Content-Type: application/json";
    headers[nh] = NULL;
    rc = httpc_request(s->port, method, path, headers, json_body,
                       json_body ? strlen(json_body) : 0, HTTPC_DEFAULT_TIMEOUT_MS, resp);
    if (rc != 0)
        fail_msg("%s %s: %s", method, path, httpc_strerror(rc));
}

json_t *sj_call(struct sj_server *s, const char *method, const char *path, const char *json_body,
                int expect_status)
{
    struct httpc_response resp;
    json_t *body = NULL;
    sj_request(s, method, path, json_body, 1, &resp);
    if (resp.status != expect_status) {
        fprintf(stderr, "%s %s -> %d, expected %d; body: %s\n", method, path, resp.status,
                expect_status, resp.body ? resp.body : "");
        httpc_response_free(&resp);
        fail_msg("unexpected status");
    }
    if (resp.body_len > 0) {
        body = httpc_json(&resp);
        if (!body) {
            fprintf(stderr, "%s %s: body is not JSON: %s\n", method, path, resp.body);
            httpc_response_free(&resp);
            fail_msg("body is not JSON");
        }
    }
    httpc_response_free(&resp);
    return body;
}

json_t *sj_assert_problem(const struct httpc_response *resp, int status, const char *error_type)
{
    const char *ct = httpc_header(resp, "Content-Type");
    char expected_type[128];
    json_t *body;

    if (resp->status != status)
        fprintf(stderr, "expected %d %s, got %d: %s\n", status, error_type, resp->status,
                resp->body ? resp->body : "");
    assert_int_equal(resp->status, status);
    assert_non_null(ct);
    assert_true(strncmp(ct, "application/problem+json", 24) == 0);
    body = httpc_json(resp);
    assert_non_null(body);
    assert_true(json_is_object(body));
    snprintf(expected_type, sizeof expected_type, "urn:sandbox-agent:error:%s", error_type);
    assert_non_null(sj_str(body, "type"));
    assert_string_equal(sj_str(body, "type"), expected_type);
    assert_non_null(sj_str(body, "title"));
    assert_int_equal(sj_int(body, "status"), status);
    assert_non_null(sj_str(body, "detail"));
    return body;
}

json_t *sj_create_session(struct sj_server *s, const char *id, const char *body)
{
    char *path = sj_fmt("/v1/sessions/%s", id);
    json_t *r = sj_call(s, "POST", path, body ? body : "{\"agent\":\"mock\"}", 200);
    free(path);
    assert_non_null(r);
    return r;
}

void sj_send_message(struct sj_server *s, const char *id, const char *text)
{
    char *path = sj_fmt("/v1/sessions/%s/messages", id);
    json_t *msg = json_pack("{s:s}", "message", text);
    char *body = json_dumps(msg, JSON_COMPACT);
    json_t *r = sj_call(s, "POST", path, body, 204);
    json_decref(r);
    free(body);
    json_decref(msg);
    free(path);
}

json_t *sj_get_events(struct sj_server *s, const char *id, const char *query)
{
    char *path = sj_fmt("/v1/sessions/%s/events%s", id, query ? query : "");
    json_t *r = sj_call(s, "GET", path, NULL, 200);
    free(path);
    assert_non_null(r);
    assert_true(json_is_array(json_object_get(r, "events")));
    assert_true(json_is_boolean(json_object_get(r, "hasMore")));
    return r;
}

char *sj_get_events_text(struct sj_server *s, const char *id, const char *query)
{
    char *path = sj_fmt("/v1/sessions/%s/events%s", id, query ? query : "");
    struct httpc_response resp;
    char *text;
    sj_request(s, "GET", path, NULL, 1, &resp);
    free(path);
    assert_int_equal(resp.status, 200);
    text = resp.body;
    resp.body = NULL;
    httpc_response_free(&resp);
    return text;
}

json_t *sj_wait_events(struct sj_server *s, const char *id, size_t n, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        json_t *r = sj_get_events(s, id, "");
        json_t *events = json_incref(json_object_get(r, "events"));
        json_decref(r);
        if (json_array_size(events) >= n)
            return events;
        if (mono_ms() >= deadline) {
            fprintf(stderr, "session %s: %zu events after %d ms, expected %zu\n", id,
                    json_array_size(events), timeout_ms, n);
            json_decref(events);
            fail_msg("timed out waiting for events");
        }
        json_decref(events);
        sj_sleep_ms(20);
    }
}

json_t *sj_wait_events_exact(struct sj_server *s, const char *id, size_t n, int timeout_ms)
{
    json_t *events = sj_wait_events(s, id, n, timeout_ms);
    if (json_array_size(events) != n) {
        char *dump = json_dumps(events, JSON_COMPACT);
        fprintf(stderr, "session %s: expected exactly %zu events, got %zu: %s\n", id, n,
                json_array_size(events), dump ? dump : "");
        free(dump);
    }
    assert_int_equal(json_array_size(events), n);
    return events;
}

/* The barrier turn: the mock echoes SJ_BARRIER_TEXT back as its reply. */
#define SJ_BARRIER_TEXT "sj-barrier"
#define SJ_BARRIER_MESSAGE "echo " SJ_BARRIER_TEXT
/* Its events: the user item and the reply, each started, delta, completed. */
#define SJ_BARRIER_EVENTS 6

/* 1 if `ev` is the item.completed of the barrier turn's reply. */
static int barrier_is_reply_end(const json_t *ev)
{
    const char *type = sj_str(ev, "type"), *role = sj_str(ev, "data.item.role");
    const char *text = sj_str(ev, "data.item.content.0.text");
    return type && strcmp(type, "item.completed") == 0 && role &&
           strcmp(role, "assistant") == 0 && text && strcmp(text, SJ_BARRIER_TEXT) == 0;
}

/* Polls `id` (every 20 ms, at most timeout_ms) until the barrier turn's
 * reply is complete at or after index `from`.  new: the events then. */
static json_t *barrier_wait(struct sj_server *s, const char *id, size_t from, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        json_t *events = sj_wait_events(s, id, from, timeout_ms);
        for (size_t i = from; i < json_array_size(events); i++)
            if (barrier_is_reply_end(json_array_get(events, i)))
                return events;
        if (mono_ms() >= deadline) {
            char *dump = json_dumps(events, JSON_COMPACT);
            fprintf(stderr, "session %s: no barrier reply after %d ms: %s\n", id, timeout_ms,
                    dump ? dump : "");
            free(dump);
            json_decref(events);
            fail_msg("timed out waiting for the barrier turn");
        }
        json_decref(events);
        sj_sleep_ms(20);
    }
}

/* A session that takes no more messages: the barrier turn runs on a fresh
 * session of the same server instead.  Sound because every mock session
 * paces its events on the one supervisor loop with the server's one
 * --mock-delay-ms, and libuv runs timers due at the same time in the order
 * they were armed: the fresh session's second paced event (its reply's
 * completion) is armed after, and due no earlier than, any tick `id` still
 * had armed, so that tick has run by then.  The journal commits batches in
 * the order they were queued, so whatever such a tick journaled is visible
 * once the barrier reply is. */
static void barrier_elsewhere(struct sj_server *s, int timeout_ms)
{
    static unsigned counter;
    char other[64];
    snprintf(other, sizeof other, "sj-barrier-%u", ++counter);
    json_decref(sj_create_session(s, other, NULL));
    sj_send_message(s, other, SJ_BARRIER_MESSAGE);
    json_decref(barrier_wait(s, other, 1, timeout_ms));
}

json_t *sj_wait_events_quiet(struct sj_server *s, const char *id, size_t n, int timeout_ms)
{
    json_t *events = sj_wait_events_exact(s, id, n, timeout_ms);
    char *path = sj_fmt("/v1/sessions/%s/messages", id);
    struct httpc_response resp;
    assert_non_null(path);
    sj_request(s, "POST", path, "{\"message\":\"" SJ_BARRIER_MESSAGE "\"}", 1, &resp);
    free(path);
    if (resp.status == 204) {
        /* The mock paces a session's events through one queue, first in,
         * first out: the barrier's reply is journaled after anything still
         * pending from before (its user item is journaled at once, so such
         * an event would land inside the barrier turn instead).  So the
         * barrier turn must follow event n directly, and be exactly its own
         * SJ_BARRIER_EVENTS events. */
        json_t *after = barrier_wait(s, id, n, timeout_ms);
        const json_t *first = json_array_get(after, n);
        const char *first_text = sj_str(first, "data.item.content.0.text");
        int ok = json_array_size(after) == n + SJ_BARRIER_EVENTS &&
                 barrier_is_reply_end(json_array_get(after, n + SJ_BARRIER_EVENTS - 1)) &&
                 sj_str(first, "type") && strcmp(sj_str(first, "type"), "item.started") == 0 &&
                 first_text && strcmp(first_text, SJ_BARRIER_MESSAGE) == 0;
        if (!ok) {
            char *dump = json_dumps(after, JSON_COMPACT);
            fprintf(stderr, "session %s: expected %zu events, then the barrier turn: %s\n", id, n,
                    dump ? dump : "");
            free(dump);
        }
        json_decref(after);
        assert_true(ok);
    } else {
        /* A session terminated by the daemon refuses messages as invalid, one
         * the mock ended as an exited agent. */
        json_t *p = resp.status == 400 ? sj_assert_problem(&resp, 400, "invalid_request")
                                       : sj_assert_problem(&resp, 500, "agent_process_exited");
        json_decref(p);
        barrier_elsewhere(s, timeout_ms);
        json_t *again = sj_wait_events(s, id, n, 0);
        if (json_array_size(again) != n) {
            char *dump = json_dumps(again, JSON_COMPACT);
            fprintf(stderr, "session %s: expected exactly %zu events after the barrier, got %zu: "
                            "%s\n",
                    id, n, json_array_size(again), dump ? dump : "");
            free(dump);
        }
        assert_int_equal(json_array_size(again), n);
        json_decref(again);
    }
    httpc_response_free(&resp);
    return events;
}

/* Follows a dotted path ("data.item.kind"); array indices as numbers. */
static const json_t *walk(const json_t *obj, const char *path)
{
    char part[128];
    const char *p = path;
    const json_t *cur = obj;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof part)
            return NULL;
        memcpy(part, p, n);
        part[n] = '\0';
        if (json_is_array(cur)) {
            char *end;
            long idx = strtol(part, &end, 10);
            cur = (*end == '\0' && idx >= 0) ? json_array_get(cur, (size_t)idx) : NULL;
        } else {
            cur = json_object_get(cur, part);
        }
        p += n;
        if (*p == '.')
            p++;
    }
    return cur;
}

const char *sj_str(const json_t *obj, const char *path)
{
    const json_t *v = walk(obj, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

long long sj_int(const json_t *obj, const char *path)
{
    const json_t *v = walk(obj, path);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    return (long long)json_integer_value(v);
}

void sj_assert_envelope(const json_t *ev, long long seq, const char *session_id, const char *type,
                        int synthetic)
{
    char event_id[48], native[160];
    const char *time;
    const json_t *raw;
    snprintf(event_id, sizeof event_id, "evt_%lld", seq);
    snprintf(native, sizeof native, "mock-%s", session_id);
    if (!sj_str(ev, "type") || strcmp(sj_str(ev, "type"), type) != 0 ||
        sj_int(ev, "sequence") != seq) {
        char *dump = json_dumps(ev, JSON_COMPACT);
        fprintf(stderr, "expected event %lld %s, got %s\n", seq, type, dump ? dump : "");
        free(dump);
    }
    assert_non_null(sj_str(ev, "event_id"));
    assert_string_equal(sj_str(ev, "event_id"), event_id);
    assert_int_equal(sj_int(ev, "sequence"), seq);
    assert_non_null(sj_str(ev, "session_id"));
    assert_string_equal(sj_str(ev, "session_id"), session_id);
    assert_non_null(sj_str(ev, "native_session_id"));
    assert_string_equal(sj_str(ev, "native_session_id"), native);
    assert_non_null(sj_str(ev, "type"));
    assert_string_equal(sj_str(ev, "type"), type);
    assert_true(json_is_boolean(json_object_get(ev, "synthetic")));
    assert_int_equal(json_is_true(json_object_get(ev, "synthetic")), synthetic ? 1 : 0);
    assert_non_null(sj_str(ev, "source"));
    assert_string_equal(sj_str(ev, "source"), synthetic ? "daemon" : "agent");
    time = sj_str(ev, "time");
    assert_non_null(time);
    /* 2026-11-23T11:30:00[.ffffff]Z */
    assert_true(strlen(time) >= 20);
    assert_true(time[4] == '-' && time[7] == '-' && time[10] == 'T' && time[13] == ':' &&
                time[16] == ':');
    assert_true(time[strlen(time) - 1] == 'Z');
    raw = json_object_get(ev, "raw");
    assert_non_null(raw);
    assert_true(json_is_null(raw));
}

char *sj_event_masked(const json_t *ev)
{
    json_t *copy = json_deep_copy(ev);
    char *s;
    assert_non_null(copy);
    if (json_object_get(copy, "time"))
        json_object_set_new(copy, "time", json_string("T"));
    s = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    assert_non_null(s);
    return s;
}

void sj_server_kill(struct sj_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &s->exit_status, 0);
    live_remove(s->pid);
    s->pid = 0;
    if (s->drain_running) {
        pthread_join(s->drain, NULL);
        s->drain_running = 0;
    }
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
}

void sj_expect_problem(struct sj_server *s, const char *method, const char *path,
                       const char *body, int status, const char *type)
{
    struct httpc_response resp;
    sj_request(s, method, path, body, 1, &resp);
    json_t *p = sj_assert_problem(&resp, status, type);
    json_decref(p);
    httpc_response_free(&resp);
}

void sj_assert_event_exact(const json_t *events, const char *session_id, long long seq,
                           const char *type, int synthetic, const char *data_json)
{
    char *got = sj_event_masked(json_array_get(events, (size_t)seq - 1));
    char *want = sj_fmt("{\"event_id\":\"evt_%lld\",\"sequence\":%lld,\"time\":\"T\","
                        "\"session_id\":\"%s\",\"native_session_id\":\"mock-%s\","
                        "\"synthetic\":%s,\"source\":\"%s\",\"type\":\"%s\",\"data\":%s,"
                        "\"raw\":null}",
                        seq, seq, session_id, session_id, synthetic ? "true" : "false",
                        synthetic ? "daemon" : "agent", type, data_json);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "expected: %s\n     got: %s\n", want, got);
    assert_string_equal(got, want);
    free(got);
    free(want);
}

journal_t *sj_journal_open_checked(const char *db_path, journal_reader_t **reader)
{
    journal_t *j = NULL;
    struct err err;
    if (journal_open_readonly(db_path, &j, &err) != 0)
        fail_msg("cannot open %s: %s", db_path, err.msg);
    *reader = journal_reader_for_thread(j, &err);
    if (!*reader)
        fail_msg("no reader for %s: %s", db_path, err.msg);
    if (journal_integrity_check(*reader, &err) != 0)
        fail_msg("%s: integrity check: %s", db_path, err.msg);
    return j;
}

/* Waits (bounded) until event `seq` of `sid` is journaled, asking for no
 * events at all: pages of big events stop at their byte budget. */
void sj_wait_sequence(struct sj_server *s, const char *sid, long long seq, int timeout_ms)
{
    char *q = sj_fmt("?offset=%lld&limit=0", seq - 1);
    int more = 0;
    for (int waited = 0; !more && waited <= timeout_ms; waited += 20) {
        json_t *page = sj_get_events(s, sid, q);
        more = json_is_true(json_object_get(page, "hasMore"));
        json_decref(page);
        if (!more)
            sj_sleep_ms(20);
    }
    free(q);
    if (!more)
        fail_msg("event %lld of %s not journaled within %d ms", seq, sid, timeout_ms);
}

/* Sends a mock turn echoing `bytes` of 'x': six events of about that size. */
void sj_send_big(struct sj_server *s, const char *sid, size_t bytes)
{
    char *body = malloc(bytes + 32);
    assert_non_null(body);
    int n = snprintf(body, 32, "{\"message\":\"");
    memset(body + n, 'x', bytes);
    strcpy(body + n + bytes, "\"}");
    char *path = sj_fmt("/v1/sessions/%s/messages", sid);
    /* The message is journaled before the answer: megabytes parsed, stored
     * and fsynced take seconds under valgrind, more than a plain request's
     * bound. */
    char auth_line[192];
    snprintf(auth_line, sizeof auth_line, "Authorization: Bearer %s", s->token);
    const char *headers[] = { "Content-Type: application/json", s->token[0] ? auth_line : NULL,
                              NULL };
    struct httpc_response resp;
    int rc = httpc_request(s->port, "POST", path, headers, body, strlen(body), 120000, &resp);
    if (rc != 0)
        fail_msg("POST %s: %s", path, httpc_strerror(rc));
    if (resp.status != 204)
        fail_msg("POST %s: %d", path, resp.status);
    httpc_response_free(&resp);
    free(path);
    free(body);
}
