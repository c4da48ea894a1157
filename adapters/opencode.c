/* The OpenCode adapter: the process and HTTP side (the pure part is in
 * opencode_parse.c, see opencode.h).
 *
 * Process: one `opencode serve` for the whole server, started when the
 * first OpenCode session needs it, on a free loopback port, with a private
 * HOME and XDG directories under <data dir>/homes/opencode, an opencode.json
 * of ours (a provider at OPENAI_BASE_URL when that is set) and the switches
 * and seeded plugin lockfile that keep it off the internet.  Its cwd is the
 * working directory of the session that started it, which is OpenCode's
 * default project directory: every request goes there.  Each journal
 * session is one OpenCode session (POST /session at create, its id is the
 * native id; OpenCode keeps sessions in its data dir, so they survive a
 * restart of either side); each message is one POST .../prompt_async.
 *
 * Threads.  The child process belongs to the supervisor loop (spawn, exit,
 * signals).  Talking HTTP to it is blocking work that must not stall the
 * loop, so two threads of ours do it with libcurl: the worker runs the
 * requests HTTP workers queue (create, prompt, replies, abort) and starts
 * and health-checks the server; the stream thread holds `GET /event` open,
 * reconnecting whenever it breaks, and hands each event's conversions to
 * the session it names (emit_async).  A libuv TCP client would have meant
 * writing HTTP/1.1 chunked decoding on the loop; libcurl already does it,
 * and a thread per long poll keeps each side simple.  All of it lives in
 * the adapter's instance (struct oc_instance), one per server.  Everything
 * shared is under the instance's lock, which is never held while a session
 * lock is taken (HTTP workers take it with their session locked).
 *
 * Failures.  A server that exits while it should run is restarted with a
 * back-off (supervisor_restart.h: 0.5 s doubling to 30 s, reset after a
 * minute of uptime); every
 * session with a turn under way gets an error event (which ends its turn);
 * its next message goes to the new server, which still knows the session.
 * Shutdown stops it (supervisor_proc_stop: EOF, SIGTERM, SIGKILL after
 * OC_KILL_MS) and journals nothing.
 */
#include "adapters/opencode.h"

#include "agents/adapter.h"
#include "agents/agent_proc.h"
#include "agents/agent_env.h"
#include "agents/user_config.h"
#include "agents/mcp_config.h"
#include "base/buf.h"
#include "agents/credentials.h"
#include "base/datadir.h"
#include "base/err.h"
#include "events/event.h"
#include "agents/supervisor.h"
#include "agents/supervisor_restart.h"

#include <arpa/inet.h>
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OC_KILL_MS 3000
#define OC_READY_TIMEOUT_MS 60000
#define OC_CREATE_TIMEOUT_MS 90000
#define OC_REQUEST_TIMEOUT_MS 30000
#define OC_MAX_RESPONSE (16u * 1024 * 1024)
#define OC_PROVIDER "sandbox-journal"

/* ---- state ------------------------------------------------------------------ */

/* A journal session bound to its OpenCode session (from its first message). */
struct oc_sess {
    char *native_id;
    struct adapter_ctx *ctx; /* NULL once terminated */
    int turn_active;
    struct oc_sess *next;
};

struct oc_waiter {
    int refs;  /* the waiting worker + the adapter's worker thread */
    int done;
    int rc;
    char id[128];
    char message[200];
};

enum oc_job_kind { OC_JOB_CREATE, OC_JOB_PROMPT, OC_JOB_POST };

struct oc_job {
    enum oc_job_kind kind;
    char *path;              /* e.g. /session/ses_x/prompt_async */
    char *body;              /* JSON text, or NULL */
    char *native_id;         /* PROMPT */
    struct oc_waiter *waiter; /* CREATE */
    struct oc_job *next;
};

/* The adapter's instance: one `opencode serve` for all the OpenCode
 * sessions of a server, and the two threads that talk to it. */
struct oc_instance {
    /* Set by instance_new, read-only after. */
    supervisor_t *supervisor;
    uv_loop_t *loop;
    const char *data_dir;    /* borrowed from the settings */
    /* Any thread: serverStatus and the back-off (its own lock, taken after
     * `lock`). */
    supervisor_restart_t *restart;
    /* Taken and released with oc_lock() / oc_unlock(), which record the
     * holder for oc_locked(): atomic, as threads without the lock read it. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    _Atomic(const char *) lock_owner; /* &oc_thread of the holder, or NULL */
    /* Under lock. */
    char *binary;
    char *cwd;
    json_t *models;          /* model ids sessions asked for (provider listing) */
    int threads_started;
    pthread_t worker, stream;
    int curl_ready;
    int alive;               /* the child runs */
    int spawning;            /* a spawn is posted to the loop */
    int spawn_rc;
    char spawn_error[256];   /* why the last spawn failed */
    unsigned gen;            /* bumped at every spawn */
    unsigned ready_gen;      /* gen that answered /global/health (0: none) */
    unsigned stream_gen;     /* gen the event stream is connected to */
    int port;
    long long started_ms;
    int need_server;         /* start it (again) once the back-off allows */
    struct oc_job *jobs, **jobs_tail;
    struct oc_sess *sessions;
    json_t *modes;           /* from GET /agent, or NULL */
    /* Loop only. */
    supervisor_proc_t *proc;
    /* Any thread. */
    atomic_int down;
};

static long long oc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void oc_log(const char *what, const char *detail)
{
    fprintf(stderr, "sandbox-journal: opencode server: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
}

/* ---- the lock, with its holder recorded for assert(oc_locked(inst)) ---------- */

/* Its address names the calling thread (no value is ever stored). */
static _Thread_local char oc_thread;

static void oc_lock(struct oc_instance *inst)
{
    pthread_mutex_lock(&inst->lock);
    atomic_store(&inst->lock_owner, &oc_thread);
}

/* 1 when the calling thread holds inst->lock.  Inline: unused once NDEBUG
 * compiles the asserts out. */
static inline int oc_locked(struct oc_instance *inst)
{
    return atomic_load(&inst->lock_owner) == &oc_thread;
}

static void oc_unlock(struct oc_instance *inst)
{
    assert(oc_locked(inst));
    atomic_store(&inst->lock_owner, NULL);
    pthread_mutex_unlock(&inst->lock);
}

/* Waits on inst->cond (until `deadline`, CLOCK_REALTIME, unless NULL).
 * Locked on entry and on return; the pthread_cond_timedwait() result. */
static int oc_wait(struct oc_instance *inst, const struct timespec *deadline)
{
    assert(oc_locked(inst));
    atomic_store(&inst->lock_owner, NULL);
    int rc = deadline ? pthread_cond_timedwait(&inst->cond, &inst->lock, deadline)
                      : pthread_cond_wait(&inst->cond, &inst->lock);
    atomic_store(&inst->lock_owner, &oc_thread);
    return rc;
}

static json_t *oc_server_status_json(void *instance)
{
    struct oc_instance *inst = instance;
    return supervisor_restart_status_json(inst ? inst->restart : NULL);
}

static json_t *oc_modes_json(void *instance)
{
    struct oc_instance *inst = instance;
    if (!inst)
        return NULL;
    oc_lock(inst);
    json_t *m = inst->modes ? json_deep_copy(inst->modes) : NULL;
    oc_unlock(inst);
    return m;
}

static struct oc_sess *oc_sess_find(struct oc_instance *inst, const char *native_id)
{
    assert(oc_locked(inst));
    for (struct oc_sess *s = inst->sessions; s; s = s->next)
        if (strcmp(s->native_id, native_id) == 0)
            return s;
    return NULL;
}

/* Emits one synthetic error to `ctx` (the instance's lock not held: the
 * session's is taken). */
static void oc_emit_error(struct adapter_ctx *ctx, const char *message, const char *code)
{
    assert(!oc_locked(ctx->instance));
    json_t *list = json_array();
    json_t *c = event_synthetic(event_conversion("error", event_error_data(message, code, NULL)));
    struct err err;
    if (!list || !c || json_array_append_new(list, c) != 0) {
        json_decref(c);
        json_decref(list);
        fprintf(stderr, "sandbox-journal: session %s: out of memory reporting: %s\n",
                ctx->session_id, message);
        return;
    }
    if (ctx->host->emit_async(ctx, list, &err) != 0)
        fprintf(stderr, "sandbox-journal: session %s: opencode error not journaled: %s\n",
                ctx->session_id, err.msg);
    json_decref(list);
}

/* The turn of `native_id` failed; returns its ctx for an error event
 * (emitted by the caller once the lock is released), or NULL. */
static struct adapter_ctx *oc_turn_failed(struct oc_instance *inst, const char *native_id)
{
    struct oc_sess *s = oc_sess_find(inst, native_id);
    if (!s || !s->ctx)
        return NULL;
    s->turn_active = 0;
    return s->ctx;
}

/* ---- waiters and jobs --------------------------------------------------------- */

/* Reports the outcome and drops one reference. */
static void oc_waiter_finish(struct oc_instance *inst, struct oc_waiter *w, int rc,
                             const char *id, const char *message)
{
    assert(oc_locked(inst));
    w->done = 1;
    w->rc = rc;
    if (id)
        snprintf(w->id, sizeof w->id, "%s", id);
    if (message)
        snprintf(w->message, sizeof w->message, "%s", message);
    if (--w->refs == 0)
        free(w);
    pthread_cond_broadcast(&inst->cond);
}

static void oc_job_free(struct oc_job *j)
{
    if (!j)
        return;
    free(j->path);
    free(j->body);
    free(j->native_id);
    free(j);
}

/* A job that cannot run; its owner hears of it.  Returns the ctx to send
 * an error to (after unlocking), or NULL. */
static struct adapter_ctx *oc_job_fail(struct oc_instance *inst, struct oc_job *j,
                                       const char *message)
{
    struct adapter_ctx *ctx = NULL;
    if (j->kind == OC_JOB_CREATE && j->waiter)
        oc_waiter_finish(inst, j->waiter, ERR_AGENT_EXITED, NULL, message);
    else if (j->kind == OC_JOB_PROMPT)
        ctx = oc_turn_failed(inst, j->native_id);
    else
        oc_log("request dropped", message);
    oc_job_free(j);
    return ctx;
}

/* Fails every queued job. */
static void oc_fail_all(struct oc_instance *inst, const char *message)
{
    assert(!oc_locked(inst));
    for (;;) {
        oc_lock(inst);
        struct oc_job *j = inst->jobs;
        if (j) {
            inst->jobs = j->next;
            if (!inst->jobs)
                inst->jobs_tail = &inst->jobs;
        }
        struct adapter_ctx *ctx = j ? oc_job_fail(inst, j, message) : NULL;
        oc_unlock(inst);
        if (!j)
            return;
        if (ctx)
            oc_emit_error(ctx, message, "server_unavailable");
    }
}

/* ---- HTTP --------------------------------------------------------------------- */

struct oc_resp {
    struct buf body;
    int too_large;
};

static size_t oc_write_body(char *data, size_t size, size_t n, void *arg)
{
    struct oc_resp *r = arg;
    size_t len = size * n;
    if (r->body.len + len > OC_MAX_RESPONSE) {
        r->too_large = 1;
        return 0;
    }
    return buf_append(&r->body, data, len) == 0 ? len : 0;
}

static int oc_abort_if_down(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un; /* only the flag matters */
    struct oc_instance *inst = arg;
    return atomic_load(&inst->down) ? 1 : 0;
}

/* A blocking request.  0 with *status (and the body in r, which the caller
 * frees) or -1 with the reason in why[200]. */
static int oc_http(struct oc_instance *inst, const char *url, const char *method,
                   const char *body, long timeout_ms, long *status, struct oc_resp *r,
                   char why[200])
{
    CURL *c = curl_easy_init();
    struct curl_slist *headers = NULL;
    buf_init(&r->body);
    r->too_large = 0;
    if (!c) {
        snprintf(why, 200, "cannot start an HTTP request");
        return -1;
    }
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, oc_write_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, oc_abort_if_down);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, inst);
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    else
        snprintf(why, 200, "%s", r->too_large ? "answer too large" : curl_easy_strerror(cc));
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK) {
        buf_free(&r->body);
        return -1;
    }
    return 0;
}

/* A request to the running server: `path` from its root. */
static int oc_call(struct oc_instance *inst, int port, const char *method, const char *path,
                   const char *body, long timeout_ms, long *status, struct oc_resp *r,
                   char why[200])
{
    char url[PATH_MAX + 64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    return oc_http(inst, url, method, body, timeout_ms, status, r, why);
}

/* ---- the process (loop side) -------------------------------------------------- */

struct oc_spawn {
    struct oc_instance *inst;
    const char *args[8];
    char *owned[4];
    struct agent_env env;
    char cwd[PATH_MAX];
    char home[PATH_MAX];
};

/* A sandbox-journal that was SIGKILLed leaves its `opencode serve` running
 * (nothing tells it: it never writes to the pipe that broke), on the same
 * opencode.db a new one would open.  Its pid is kept in <home>/serve.pid;
 * the process is killed if it is still there and still ours, that is, runs
 * with this HOME (a recycled pid belongs to something else). */
static void oc_kill_leftover(const char *home)
{
    char path[PATH_MAX + 32], want[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/serve.pid", home);
    FILE *f = fopen(path, "r");
    if (!f)
        return; /* first start, or the file was removed: nothing to find */
    long pid = 0;
    int got = fscanf(f, "%ld", &pid);
    if (fclose(f) != 0 || got != 1 || pid <= 1 || pid == (long)getpid())
        return;
    snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* gone, or not ours to read */
    int wlen = snprintf(want, sizeof want, "HOME=%s", home);
    char buf[8192];
    size_t have = 0, at = 0;
    int ours = 0;
    ssize_t n;
    /* Entries are NUL-terminated; one may straddle two reads. */
    while (!ours && (n = read(fd, buf + have, sizeof buf - have)) > 0) {
        have += (size_t)n;
        size_t start = 0;
        for (at = 0; at < have; at++) {
            if (buf[at] != '\0')
                continue;
            if (at - start == (size_t)wlen && memcmp(buf + start, want, (size_t)wlen) == 0)
                ours = 1;
            start = at + 1;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
        if (have == sizeof buf)
            have = 0; /* an entry longer than the buffer is not the one */
    }
    if (close(fd) != 0)
        oc_log("cannot close", path);
    if (!ours)
        return;
    char what[64];
    snprintf(what, sizeof what, "pid %ld", pid);
    if (kill((pid_t)pid, SIGKILL) == 0)
        oc_log("killed the opencode server an earlier run left behind", what);
}

static int oc_write_file(const char *path, const char *text, struct err *err);

static void oc_note_pid(const char *home, int pid)
{
    char path[PATH_MAX + 32], text[32];
    snprintf(path, sizeof path, "%s/serve.pid", home);
    snprintf(text, sizeof text, "%d\n", pid);
    struct err err;
    if (oc_write_file(path, text, &err) != 0)
        oc_log("cannot record the server's pid", err.msg);
}

static void oc_spawn_free(struct oc_spawn *sp)
{
    for (size_t i = 0; i < sizeof sp->owned / sizeof sp->owned[0]; i++)
        free(sp->owned[i]);
    agent_env_free(&sp->env);
    free(sp);
}

static void oc_on_line(void *arg, const char *line, size_t len, int cut)
{
    (void)arg, (void)line, (void)len, (void)cut; /* readiness is polled over HTTP */
}

static void oc_on_exit(void *arg, const struct supervisor_exit *e)
{
    struct oc_instance *inst = arg;
    assert(supervisor_on_loop(inst->loop));
    int expected = supervisor_proc_stopping(inst->proc); /* our stop */
    inst->proc = NULL;
    char message[256];
    if (e->term_signal)
        snprintf(message, sizeof message, "opencode server killed by signal %d", e->term_signal);
    else
        snprintf(message, sizeof message, "opencode server exited with status %lld",
                 (long long)e->exit_status);
    if (!expected)
        agent_proc_append_last_words(message, sizeof message, e);
    /* The sessions with a turn under way lose it; collected under the lock,
     * told without it. */
    struct adapter_ctx *failed[64];
    size_t n_failed = 0;
    oc_lock(inst);
    int down = atomic_load(&inst->down);
    inst->alive = 0;
    inst->ready_gen = 0;
    for (struct oc_sess *s = inst->sessions; s; s = s->next) {
        if (s->turn_active && s->ctx && !down && n_failed < sizeof failed / sizeof failed[0])
            failed[n_failed++] = s->ctx;
        s->turn_active = 0;
    }
    if (down || expected) {
        supervisor_restart_stopped(inst->restart);
    } else {
        /* The worker starts it again once supervisor_restart_wait_ms()
         * allows. */
        supervisor_restart_crashed(inst->restart, message);
        inst->need_server = 1;
    }
    pthread_cond_broadcast(&inst->cond);
    oc_unlock(inst);
    if (!down && !expected)
        oc_log(message, NULL);
    for (size_t i = 0; i < n_failed; i++)
        oc_emit_error(failed[i], message, "server_exit");
}

static void oc_loop_spawn(uv_loop_t *loop, void *arg)
{
    struct oc_spawn *sp = arg;
    struct oc_instance *inst = sp->inst;
    assert(loop == inst->loop && supervisor_on_loop(loop));
    struct err err;
    int rc = ERR_INVALID;
    err_clear(&err);
    if (!atomic_load(&inst->down) && !inst->proc) {
        char *const *envp = agent_env_finish(&sp->env, &err);
        struct supervisor_proc_options po = { .file = sp->args[0], .args = sp->args,
                                              .env = envp, .cwd = sp->cwd };
        struct supervisor_proc_callbacks cb = { .on_line = oc_on_line, .on_exit = oc_on_exit,
                                                .arg = inst };
        oc_kill_leftover(sp->home);
        rc = envp ? supervisor_proc_spawn(loop, &po, &cb, &inst->proc, &err) : ERR_NOMEM;
        if (rc)
            inst->proc = NULL;
        else
            oc_note_pid(sp->home, supervisor_proc_pid(inst->proc));
    }
    oc_lock(inst);
    inst->spawning = 0;
    inst->spawn_rc = rc;
    if (rc)
        snprintf(inst->spawn_error, sizeof inst->spawn_error, "cannot start opencode: %.200s",
                 err.msg[0] ? err.msg : "the server is shutting down");
    else
        inst->alive = 1;
    pthread_cond_broadcast(&inst->cond);
    oc_unlock(inst);
    oc_spawn_free(sp);
}

static void oc_loop_kill(uv_loop_t *loop, void *arg)
{
    (void)loop; /* the instance knows its loop */
    struct oc_instance *inst = arg;
    assert(supervisor_on_loop(inst->loop));
    if (inst->proc && supervisor_proc_kill(inst->proc, SIGKILL) != 0)
        oc_log("cannot kill the unresponsive server", NULL);
}

/* ---- starting the server (worker side) ------------------------------------------ */

static int oc_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    socklen_t n = sizeof a;
    int port = -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int oc_write_file(const char *path, const char *text, struct err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t n = strlen(text);
    if (fd < 0)
        return err_set(err, ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
    ssize_t w = write(fd, text, n);
    int rc = close(fd);
    if (w < 0 || (size_t)w != n || rc != 0)
        return err_set(err, ERR_INTERNAL, "cannot write %s", path);
    return 0;
}

/* Adds the ids the model endpoint lists (GET <base>/models, which the
 * tests' fake and most gateways answer without a key) to `models`: best
 * effort, the sessions' own models come first. */
static void oc_endpoint_models(struct oc_instance *inst, const char *base_url, json_t *models)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/models", base_url);
    struct oc_resp r;
    long status = 0;
    char why[200];
    if (oc_http(inst, url, "GET", NULL, 3000, &status, &r, why) != 0)
        return;
    json_t *v = status == 200 ? json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL)
                              : NULL;
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(v, "data"), i, m) {
        const char *id = json_string_value(json_object_get(m, "id"));
        int seen = 0;
        size_t k;
        const json_t *have;
        json_array_foreach(models, k, have)
            seen |= id && strcmp(json_string_value(have), id) == 0;
        if (id && !seen && json_array_append_new(models, json_string(id)) != 0)
            break;
    }
    json_decref(v);
    buf_free(&r.body);
}

/* Builds what `opencode serve` needs (no lock held; reads the snapshot
 * taken under it).  new: *out for oc_loop_spawn. */
static int oc_prepare(struct oc_instance *inst, const char *binary, const char *cwd,
                      json_t *models /* stolen */, int port, struct oc_spawn **out,
                      struct err *err)
{
    assert(!oc_locked(inst));
    char home[PATH_MAX], path[PATH_MAX + 64];
    int rc = agent_env_home(inst->data_dir, "opencode", home, err);
    if (rc) {
        json_decref(models);
        return rc;
    }
    static const char *const dirs[] = { ".config/opencode/node_modules", ".local/share",
                                        ".cache", ".local/state" };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", home, dirs[i]);
        if (datadir_mkdirs(path) != 0) {
            json_decref(models);
            return err_set(err, ERR_INTERNAL, "cannot create %s: %s", path, strerror(errno));
        }
    }
    /* OpenCode installs @opencode-ai/plugin into its config dir with npm
     * unless it finds it installed: this lockfile says it is. */
    snprintf(path, sizeof path, "%s/.config/opencode/package-lock.json", home);
    rc = oc_write_file(path,
                       "{\"name\":\"opencode-config\",\"lockfileVersion\":3,\"requires\":true,"
                       "\"packages\":{\"\":{\"dependencies\":{\"@opencode-ai/plugin\":\"1.18.33\"}}}}\n",
                       err);
    const char *base_url = getenv("OPENAI_BASE_URL");
    char *api_key = NULL;
    if (!rc && base_url && *base_url) {
        const char *h = getenv("HOME");
        struct credentials_options co = { .home_dir = h && *h ? h : "/nonexistent" };
        struct credentials_set set;
        if (credentials_extract(&co, &set, NULL) == 0) {
            const struct credentials_entry *c = credentials_find(&set, "openai");
            if (c && c->secret && c->auth == CREDENTIALS_API_KEY)
                api_key = strdup(c->secret);
            credentials_set_clear(&set);
        }
        oc_endpoint_models(inst, base_url, models);
    }
    char *config = rc ? NULL : adapter_opencode_config(OC_PROVIDER, base_url, api_key, models);
    if (config) { /* the user's providers and model, ours first */
        char *merged = user_config_opencode_apply(config);
        free(config);
        config = merged;
    }
    json_decref(models);
    free(api_key);
    if (!rc && !config)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/opencode.json", home);
    if (!rc)
        rc = oc_write_file(path, config, err);
    free(config);
    if (rc)
        return rc;

    struct oc_spawn *sp = calloc(1, sizeof *sp);
    if (!sp)
        return err_set(err, ERR_NOMEM, "out of memory");
    agent_env_init(&sp->env);
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    sp->owned[0] = strdup(binary);
    sp->owned[1] = strdup(port_text);
    sp->args[0] = sp->owned[0];
    sp->args[1] = "serve";
    sp->args[2] = "--hostname";
    sp->args[3] = "127.0.0.1";
    sp->args[4] = "--port";
    sp->args[5] = sp->owned[1];
    sp->args[6] = NULL;
    snprintf(sp->cwd, sizeof sp->cwd, "%s", cwd ? cwd : home);
    snprintf(sp->home, sizeof sp->home, "%s", home);

    struct agent_env *e = &sp->env;
    agent_env_pass_common(e);
    agent_env_set(e, "HOME", home);
    static const struct {
        const char *var, *sub;
    } xdg[] = { { "XDG_CONFIG_HOME", ".config" }, { "XDG_DATA_HOME", ".local/share" },
                { "XDG_CACHE_HOME", ".cache" }, { "XDG_STATE_HOME", ".local/state" } };
    for (size_t i = 0; i < sizeof xdg / sizeof xdg[0]; i++) {
        char v[PATH_MAX + 32];
        snprintf(v, sizeof v, "%s/%s", home, xdg[i].sub);
        agent_env_set(e, xdg[i].var, v);
    }
    agent_env_set(e, "OPENCODE_CONFIG", path);
    static const char *const off[] = {
        "OPENCODE_DISABLE_MODELS_FETCH", "OPENCODE_DISABLE_DEFAULT_PLUGINS",
        "OPENCODE_DISABLE_AUTOUPDATE", "OPENCODE_DISABLE_LSP_DOWNLOAD", "OPENCODE_DISABLE_SHARE",
        "OPENCODE_DISABLE_CLAUDE_CODE", "OPENCODE_DISABLE_EXTERNAL_SKILLS",
    };
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
        agent_env_set(e, off[i], "1");
    agent_env_credential(e, "openai", "OPENAI_API_KEY", NULL);
    agent_env_credential(e, "anthropic", "ANTHROPIC_API_KEY", NULL);
    if (!sp->owned[0] || !sp->owned[1] || e->failed) {
        oc_spawn_free(sp);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    sp->inst = inst;
    *out = sp;
    return 0;
}

/* Worker, locked on entry and exit: starts the server and waits until it
 * answers.  0, or -1 with the reason in why[256] (jobs then fail). */
static int oc_start_locked(struct oc_instance *inst, char why[256])
{
    assert(oc_locked(inst));
    if (!inst->binary) {
        snprintf(why, 256, "agent not installed: opencode");
        return -1;
    }
    char *binary = strdup(inst->binary);
    char *cwd = inst->cwd ? strdup(inst->cwd) : NULL;
    json_t *models = json_deep_copy(inst->models);
    supervisor_t *sup = inst->supervisor;
    int port = oc_free_port();
    oc_unlock(inst);

    struct err err;
    err_clear(&err);
    struct oc_spawn *sp = NULL;
    int rc;
    if (!binary || !models || port < 0) {
        json_decref(models);
        rc = port < 0 ? err_set(&err, ERR_INTERNAL, "no free loopback port")
                      : err_set(&err, ERR_NOMEM, "out of memory");
    } else {
        rc = oc_prepare(inst, binary, cwd, models, port, &sp, &err);
    }
    free(binary);
    free(cwd);
    oc_lock(inst);
    if (rc) {
        snprintf(why, 256, "cannot start opencode: %.200s", err.msg);
        return -1;
    }
    inst->spawning = 1;
    oc_unlock(inst);
    rc = supervisor_post(sup, oc_loop_spawn, sp, &err);
    oc_lock(inst);
    if (rc) {
        inst->spawning = 0;
        oc_spawn_free(sp);
        snprintf(why, 256, "cannot start opencode: %.200s", err.msg);
        return -1;
    }
    while (inst->spawning && !atomic_load(&inst->down))
        oc_wait(inst, NULL);
    if (inst->spawning || inst->spawn_rc) {
        snprintf(why, 256, "%s",
                 inst->spawning ? "the server is shutting down" : inst->spawn_error);
        return -1;
    }
    unsigned gen = ++inst->gen;
    inst->port = port;
    inst->started_ms = oc_now_ms();
    supervisor_restart_started(inst->restart);
    oc_unlock(inst);

    /* It accepts connections before it can answer them, and a request in
     * that window may never be answered: short timeouts, retried. */
    long long deadline = oc_now_ms() + OC_READY_TIMEOUT_MS;
    int healthy = 0;
    while (!healthy && !atomic_load(&inst->down) && oc_now_ms() < deadline) {
        oc_lock(inst);
        int still = inst->alive && inst->gen == gen;
        oc_unlock(inst);
        if (!still)
            break;
        struct oc_resp r;
        long status = 0;
        char failed[200];
        if (oc_call(inst, port, "GET", "/global/health", NULL, 2000, &status, &r, failed) == 0) {
            healthy = status == 200 && r.body.data && strstr(r.body.data, "\"healthy\":true");
            buf_free(&r.body);
        }
        if (!healthy) {
            struct timespec ts = { 0, 250 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    json_t *modes = NULL;
    if (healthy) {
        struct oc_resp r;
        long status = 0;
        char failed[200];
        if (oc_call(inst, port, "GET", "/agent", NULL, 5000, &status, &r, failed) == 0) {
            json_t *agents = status == 200 ? json_loadb(r.body.data ? r.body.data : "",
                                                        r.body.len, 0, NULL)
                                           : NULL;
            modes = adapter_opencode_modes(agents);
            json_decref(agents);
            buf_free(&r.body);
        }
    }
    oc_lock(inst);
    if (!healthy) {
        snprintf(why, 256, "opencode did not answer /global/health within %d s",
                 OC_READY_TIMEOUT_MS / 1000);
        json_decref(modes);
        if (inst->alive && inst->gen == gen) {
            struct err perr;
            if (supervisor_post(sup, oc_loop_kill, inst, &perr) != 0)
                oc_log("cannot stop the unresponsive server", perr.msg);
        }
        return -1;
    }
    if (modes) {
        json_decref(inst->modes);
        inst->modes = modes;
    }
    inst->ready_gen = gen;
    supervisor_restart_running(inst->restart);
    pthread_cond_broadcast(&inst->cond);
    return 0;
}

/* ---- the worker thread ----------------------------------------------------------- */

static void oc_run_job(struct oc_instance *inst, struct oc_job *j, int port)
{
    struct oc_resp r;
    long status = 0;
    char why[200];
    int rc = oc_call(inst, port, "POST", j->path, j->body,
                     j->kind == OC_JOB_CREATE ? 20000 : OC_REQUEST_TIMEOUT_MS, &status, &r, why);
    int ok = rc == 0 && status >= 200 && status < 300;
    if (rc == 0 && !ok)
        snprintf(why, sizeof why, "HTTP %ld: %.150s", status, r.body.data ? r.body.data : "");
    json_t *answer = ok && j->kind == OC_JOB_CREATE
                         ? json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL)
                         : NULL;
    if (rc == 0)
        buf_free(&r.body);
    struct adapter_ctx *ctx = NULL;
    char message[300];
    oc_lock(inst);
    if (j->kind == OC_JOB_CREATE) {
        const char *id = json_string_value(json_object_get(answer, "id"));
        if (id)
            oc_waiter_finish(inst, j->waiter, 0, id, NULL);
        else
            oc_waiter_finish(inst, j->waiter, ERR_AGENT_EXITED, NULL,
                             ok ? "POST /session answered no id" : why);
    } else if (!ok && j->kind == OC_JOB_PROMPT) {
        snprintf(message, sizeof message, "opencode refused the prompt: %s", why);
        ctx = oc_turn_failed(inst, j->native_id);
    } else if (!ok) {
        snprintf(message, sizeof message, "POST %s: %s", j->path, why);
        oc_log("request failed", message);
    }
    oc_unlock(inst);
    json_decref(answer);
    if (ctx)
        oc_emit_error(ctx, message, "turn_failed");
    oc_job_free(j);
}

static void *oc_worker_main(void *arg)
{
    struct oc_instance *inst = arg;
    oc_lock(inst);
    while (!atomic_load(&inst->down)) {
        if (inst->jobs)
            inst->need_server = 1;
        if (inst->need_server && !inst->alive && !inst->spawning) {
            uint64_t wait = supervisor_restart_wait_ms(inst->restart);
            if (wait > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += (time_t)(wait / 1000);
                ts.tv_nsec += (long)(wait % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                oc_wait(inst, &ts);
                continue;
            }
            char message[256];
            if (oc_start_locked(inst, message) != 0) {
                supervisor_restart_failed(inst->restart, message);
                inst->need_server = 0;
                oc_unlock(inst);
                oc_log(message, NULL);
                oc_fail_all(inst, message);
                oc_lock(inst);
            }
            continue;
        }
        int ready = inst->alive && inst->ready_gen == inst->gen && inst->ready_gen != 0;
        if (inst->jobs && ready) {
            struct oc_job *j = inst->jobs;
            /* A prompt's events are only seen on a connected stream. */
            if (j->kind == OC_JOB_PROMPT && inst->stream_gen != inst->gen) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                oc_wait(inst, &ts);
                if (inst->stream_gen != inst->gen && oc_now_ms() - inst->started_ms < 15000)
                    continue;
            }
            inst->jobs = j->next;
            if (!inst->jobs)
                inst->jobs_tail = &inst->jobs;
            int port = inst->port;
            oc_unlock(inst);
            oc_run_job(inst, j, port);
            oc_lock(inst);
            continue;
        }
        oc_wait(inst, NULL);
    }
    oc_unlock(inst);
    return NULL;
}

/* ---- the event stream thread ------------------------------------------------------ */

struct oc_stream {
    struct oc_instance *inst;
    adapter_opencode_parser_t *parser;
    unsigned gen;
    int failed;
};

static void oc_on_event(void *arg, struct adapter_opencode_event *ev)
{
    struct oc_stream *st = arg;
    struct oc_instance *inst = st->inst;
    if (ev->connected) {
        oc_lock(inst);
        if (inst->gen == st->gen)
            inst->stream_gen = st->gen;
        pthread_cond_broadcast(&inst->cond);
        oc_unlock(inst);
    }
    if (!ev->session_id[0]) {
        if (json_array_size(ev->conversions))
            oc_log("event not understood", ev->type[0] ? ev->type : "(no type)");
        return;
    }
    oc_lock(inst);
    struct oc_sess *s = oc_sess_find(inst, ev->session_id);
    struct adapter_ctx *ctx = s ? s->ctx : NULL;
    if (s && (ev->idle || ev->failed))
        s->turn_active = 0;
    oc_unlock(inst);
    struct err err;
    if (ctx && json_array_size(ev->conversions) &&
        ctx->host->emit_async(ctx, ev->conversions, &err) != 0)
        fprintf(stderr, "sandbox-journal: session %s: opencode event not journaled: %s\n",
                ctx->session_id, err.msg);
}

static size_t oc_stream_write(char *data, size_t size, size_t n, void *arg)
{
    struct oc_stream *st = arg;
    struct err err;
    if (adapter_opencode_parse_stream(st->parser, data, size * n, oc_on_event, st, &err) != 0) {
        oc_log("event stream", err.msg);
        st->failed = 1;
        return 0;
    }
    return size * n;
}

static void *oc_stream_main(void *arg)
{
    struct oc_instance *inst = arg;
    adapter_opencode_parser_t *parser = adapter_opencode_parser_new();
    if (!parser) {
        oc_log("out of memory: no event stream", NULL);
        return NULL;
    }
    for (;;) {
        oc_lock(inst);
        while (!atomic_load(&inst->down) &&
               !(inst->alive && inst->ready_gen && inst->ready_gen == inst->gen))
            oc_wait(inst, NULL);
        unsigned gen = inst->gen;
        int port = inst->port;
        oc_unlock(inst);
        if (atomic_load(&inst->down))
            break;
        struct oc_stream st = { .inst = inst, .parser = parser, .gen = gen };
        adapter_opencode_stream_reset(parser);
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/event", port);
        CURL *c = curl_easy_init();
        if (c) {
            curl_easy_setopt(c, CURLOPT_URL, url);
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
            curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
            /* Heartbeats come about every 10 s: a silent minute is a dead stream. */
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, oc_stream_write);
            curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
            curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, oc_abort_if_down);
            curl_easy_setopt(c, CURLOPT_XFERINFODATA, inst);
            CURLcode cc = curl_easy_perform(c);
            if (!atomic_load(&inst->down) && cc != CURLE_OK && !st.failed)
                oc_log("event stream broke off", curl_easy_strerror(cc));
            curl_easy_cleanup(c);
        }
        oc_lock(inst);
        if (inst->stream_gen == gen)
            inst->stream_gen = 0;
        oc_unlock(inst);
        if (atomic_load(&inst->down))
            break;
        struct timespec ts = { 0, 300 * 1000000L };
        nanosleep(&ts, NULL);
    }
    adapter_opencode_parser_free(parser);
    return NULL;
}

/* ---- shutdown ------------------------------------------------------------------------ */

static void oc_shutdown_shared(void *instance)
{
    struct oc_instance *inst = instance;
    assert(supervisor_on_loop(inst->loop));
    atomic_store(&inst->down, 1);
    oc_lock(inst);
    pthread_cond_broadcast(&inst->cond);
    int joined = inst->threads_started;
    inst->threads_started = 0;
    oc_unlock(inst);
    if (joined) {
        pthread_join(inst->worker, NULL);
        pthread_join(inst->stream, NULL);
    }
    oc_fail_all(inst, "the server is shutting down");
    if (inst->proc)
        supervisor_proc_stop(inst->proc, OC_KILL_MS);
    /* Sessions are freed after the loop stops; drop our pointers to them. */
    oc_lock(inst);
    while (inst->sessions) {
        struct oc_sess *s = inst->sessions;
        inst->sessions = s->next;
        free(s->native_id);
        free(s);
    }
    oc_unlock(inst);
}

static int oc_instance_new(const struct adapter_settings *settings, void **out, struct err *err)
{
    struct oc_instance *inst = calloc(1, sizeof *inst);
    if (!inst)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = supervisor_restart_new(NULL, &inst->restart, err);
    if (rc)
        goto fail;
    if (pthread_mutex_init(&inst->lock, NULL) != 0) {
        rc = err_set(err, ERR_INTERNAL, "pthread_mutex_init failed");
        goto fail;
    }
    if (pthread_cond_init(&inst->cond, NULL) != 0) {
        pthread_mutex_destroy(&inst->lock);
        rc = err_set(err, ERR_INTERNAL, "pthread_cond_init failed");
        goto fail;
    }
    inst->data_dir = settings->data_dir;
    inst->supervisor = settings->supervisor;
    inst->loop = supervisor_loop(settings->supervisor);
    inst->jobs_tail = &inst->jobs;
    atomic_init(&inst->down, 0);
    atomic_init(&inst->lock_owner, NULL);
    *out = inst;
    return 0;
fail:
    supervisor_restart_free(inst->restart);
    free(inst);
    return rc;
}

/* After the loop stopped and shutdown_shared joined our threads. */
static void oc_instance_free(void *instance)
{
    struct oc_instance *inst = instance;
    json_decref(inst->models);
    json_decref(inst->modes);
    free(inst->binary);
    free(inst->cwd);
    if (inst->curl_ready)
        curl_global_cleanup();
    supervisor_restart_free(inst->restart);
    pthread_cond_destroy(&inst->cond);
    pthread_mutex_destroy(&inst->lock);
    free(inst);
}

/* ---- the adapter ---------------------------------------------------------------------- */

/* Remembers what a session tells about the server to start and starts our
 * threads the first time. */
static int oc_note_locked(struct oc_instance *inst, const struct adapter_ctx *ctx,
                          struct err *err)
{
    assert(oc_locked(inst));
    if (atomic_load(&inst->down))
        return err_set(err, ERR_INVALID, "the server is shutting down");
    if (ctx->binary_path && (!inst->binary || strcmp(inst->binary, ctx->binary_path) != 0)) {
        char *b = strdup(ctx->binary_path);
        if (!b)
            return err_set(err, ERR_NOMEM, "out of memory");
        free(inst->binary);
        inst->binary = b;
    }
    if (!inst->cwd && ctx->working_dir && !(inst->cwd = strdup(ctx->working_dir)))
        return err_set(err, ERR_NOMEM, "out of memory");
    if (!inst->models && !(inst->models = json_array()))
        return err_set(err, ERR_NOMEM, "out of memory");
    /* A bare model id (or one of our provider) is offered by our provider. */
    const char *model = ctx->model;
    if (model && strncmp(model, OC_PROVIDER "/", sizeof OC_PROVIDER) == 0)
        model += sizeof OC_PROVIDER;
    if (model && *model && !strchr(model, '/')) {
        int seen = 0;
        size_t i;
        const json_t *m;
        json_array_foreach(inst->models, i, m)
            seen |= strcmp(json_string_value(m), model) == 0;
        if (!seen && json_array_append_new(inst->models, json_string(model)) != 0)
            return err_set(err, ERR_NOMEM, "out of memory");
    }
    if (inst->threads_started)
        return 0;
    if (!inst->curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return err_set(err, ERR_INTERNAL, "cannot initialize libcurl");
        inst->curl_ready = 1;
    }
    if (pthread_create(&inst->worker, NULL, oc_worker_main, inst) != 0)
        return err_set(err, ERR_INTERNAL, "cannot start the opencode worker thread");
    if (pthread_create(&inst->stream, NULL, oc_stream_main, inst) != 0) {
        atomic_store(&inst->down, 1);
        pthread_cond_broadcast(&inst->cond);
        oc_unlock(inst);
        pthread_join(inst->worker, NULL);
        oc_lock(inst);
        atomic_store(&inst->down, 0);
        return err_set(err, ERR_INTERNAL, "cannot start the opencode event thread");
    }
    inst->threads_started = 1;
    return 0;
}

/* Queues `j` (taken). */
static void oc_queue_locked(struct oc_instance *inst, struct oc_job *j)
{
    assert(oc_locked(inst));
    *inst->jobs_tail = j;
    inst->jobs_tail = &j->next;
    pthread_cond_broadcast(&inst->cond);
}

static const char *const oc_permission_modes[] = { "default", "bypass", NULL };
/* Modes are OpenCode agents, which users define themselves: any name
 * OpenCode could know is passed on, and OpenCode judges it. */
static const struct adapter_mode_rule oc_mode_rule = {
    .agent = "opencode",
    .agent_modes = NULL,
    .permission_modes = oc_permission_modes,
};

static int oc_post(struct adapter_ctx *ctx, char *path /* taken */, json_t *body /* stolen */,
                   struct err *err);

/* The session's MCP servers, added to the running OpenCode (POST /mcp)
 * ahead of the session's creation in the same queue.  OpenCode keeps them
 * for its project directory, which is every session's here, until it
 * stops; an entry deleted meanwhile stays until then. */
static int oc_add_mcp(struct adapter_ctx *ctx, struct err *err)
{
    if (!ctx->mcp_servers)
        return 0;
    json_t *mcp = mcp_config_opencode(ctx->mcp_servers);
    if (!mcp)
        return err_set(err, ERR_NOMEM, "out of memory");
    const char *name;
    json_t *config;
    int rc = 0;
    json_object_foreach(mcp, name, config) {
        char *path = strdup("/mcp");
        json_t *body = json_pack("{s:s,s:O}", "name", name, "config", config);
        if (!path || !body) {
            free(path);
            json_decref(body);
            rc = err_set(err, ERR_NOMEM, "out of memory");
            break;
        }
        if ((rc = oc_post(ctx, path, body, err)) != 0)
            break;
    }
    json_decref(mcp);
    return rc;
}

static int oc_start_session(struct adapter_ctx *ctx, char native_id_out[128], struct err *err)
{
    if (!ctx->binary_path)
        return err_set_subject(err, ERR_NOT_INSTALLED, "opencode",
                               "agent not installed: opencode");
    int mrc = oc_add_mcp(ctx, err);
    if (mrc)
        return mrc;
    /* A title of our own spares a title-generating model request. */
    json_t *body = json_pack("{s:s+}", "title", "sandbox-journal ", ctx->session_id);
    if (body && strcmp(ctx->permission_mode, "bypass") == 0 &&
        json_object_set_new(body, "permission",
                            json_pack("[{s:s,s:s,s:s}]", "permission", "*", "pattern", "*",
                                      "action", "allow")) != 0) {
        json_decref(body);
        body = NULL;
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    struct oc_job *j = text ? calloc(1, sizeof *j) : NULL;
    struct oc_waiter *w = j ? calloc(1, sizeof *w) : NULL;
    if (!w || !(j->path = strdup("/session"))) {
        free(text);
        if (j)
            free(j->path);
        free(j);
        free(w);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    j->kind = OC_JOB_CREATE;
    j->body = text;
    j->waiter = w;
    w->refs = 2;
    struct oc_instance *inst = ctx->instance;
    oc_lock(inst);
    int rc = oc_note_locked(inst, ctx, err);
    if (rc) {
        oc_unlock(inst);
        oc_job_free(j);
        free(w);
        return rc;
    }
    oc_queue_locked(inst, j);
    /* Wait (no session lock held) for the server and its answer. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += OC_CREATE_TIMEOUT_MS / 1000;
    while (!w->done && !atomic_load(&inst->down))
        if (oc_wait(inst, &deadline) == ETIMEDOUT)
            break;
    int done = w->done;
    rc = w->rc;
    if (done && rc == 0)
        snprintf(native_id_out, 128, "%s", w->id);
    else if (done)
        err_set_subject(err, rc, "opencode", "opencode could not start a session: %s",
                        w->message);
    if (--w->refs == 0)
        free(w);
    oc_unlock(inst);
    if (!done)
        return err_set_subject(err, ERR_AGENT_EXITED, "opencode",
                               "opencode did not start a session within %d s",
                               OC_CREATE_TIMEOUT_MS / 1000);
    return rc;
}

/* new: "/session/<id><suffix>". */
static char *oc_session_path(const char *native_id, const char *suffix)
{
    size_t n = strlen(native_id) + strlen(suffix) + sizeof "/session/";
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "/session/%s%s", native_id, suffix);
    return p;
}

static int oc_send_message(struct adapter_ctx *ctx, const char *message, struct err *err)
{
    if (!ctx->binary_path)
        return err_set_subject(err, ERR_NOT_INSTALLED, "opencode",
                               "agent not installed: opencode");
    if (!ctx->native_session_id)
        return err_set(err, ERR_INTERNAL, "opencode session without a native id");
    const char *base_url = getenv("OPENAI_BASE_URL");
    json_t *body = adapter_opencode_prompt_body(message, ctx->model,
                                                base_url && *base_url ? OC_PROVIDER : NULL,
                                                ctx->agent_mode);
    struct oc_job *j = calloc(1, sizeof *j);
    if (j) {
        j->kind = OC_JOB_PROMPT;
        j->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
        j->path = oc_session_path(ctx->native_session_id, "/prompt_async");
        j->native_id = strdup(ctx->native_session_id);
    }
    json_decref(body);
    if (!j || !j->body || !j->path || !j->native_id) {
        oc_job_free(j);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    struct oc_instance *inst = ctx->instance;
    oc_lock(inst);
    int rc = oc_note_locked(inst, ctx, err);
    struct oc_sess *s = rc ? NULL : oc_sess_find(inst, ctx->native_session_id);
    if (!rc && !s) {
        s = calloc(1, sizeof *s);
        if (!s || !(s->native_id = strdup(ctx->native_session_id))) {
            free(s);
            s = NULL;
            rc = err_set(err, ERR_NOMEM, "out of memory");
        } else {
            s->next = inst->sessions;
            inst->sessions = s;
        }
    }
    if (!rc) {
        s->ctx = ctx;
        s->turn_active = 1;
        oc_queue_locked(inst, j);
        j = NULL;
    }
    oc_unlock(inst);
    oc_job_free(j);
    return rc;
}

/* Queues a POST whose answer only matters to the log. */
static int oc_post(struct adapter_ctx *ctx, char *path /* taken */, json_t *body /* stolen */,
                   struct err *err)
{
    struct oc_job *j = calloc(1, sizeof *j);
    if (j) {
        j->kind = OC_JOB_POST;
        j->path = path;
        path = NULL;
        j->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    }
    int nomem = !j || (body && !j->body);
    json_decref(body);
    free(path);
    if (nomem || !j->path) {
        oc_job_free(j);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    struct oc_instance *inst = ctx->instance;
    oc_lock(inst);
    int rc = oc_note_locked(inst, ctx, err);
    if (!rc) {
        oc_queue_locked(inst, j);
        j = NULL;
    }
    oc_unlock(inst);
    oc_job_free(j);
    return rc;
}

/* new: "/<kind>/<id>/<action>". */
static char *oc_request_path(const char *kind, const char *id, const char *action)
{
    size_t n = strlen(kind) + strlen(id) + strlen(action) + 4;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "/%s/%s/%s", kind, id, action);
    return p;
}

static int oc_reply_permission(struct adapter_ctx *ctx, const char *permission_id,
                               const char *reply, const json_t *pending, struct err *err)
{
    (void)pending; /* the id is OpenCode's own */
    return oc_post(ctx, oc_request_path("permission", permission_id, "reply"),
                   json_pack("{s:s}", "reply", reply), err);
}

static int oc_reply_question(struct adapter_ctx *ctx, const char *question_id,
                             const json_t *answers, const json_t *pending, struct err *err)
{
    (void)pending; /* the id is OpenCode's own */
    return oc_post(ctx, oc_request_path("question", question_id, "reply"),
                   json_pack("{s:O}", "answers", (json_t *)answers), err);
}

static int oc_reject_question(struct adapter_ctx *ctx, const char *question_id,
                              const json_t *pending, struct err *err)
{
    (void)pending; /* the id is OpenCode's own */
    return oc_post(ctx, oc_request_path("question", question_id, "reject"), NULL, err);
}

static void oc_terminate(struct adapter_ctx *ctx)
{
    if (!ctx->native_session_id)
        return;
    int active = 0;
    struct oc_instance *inst = ctx->instance;
    oc_lock(inst);
    struct oc_sess *s = oc_sess_find(inst, ctx->native_session_id);
    if (s) {
        active = s->turn_active;
        s->ctx = NULL; /* its later events are not journaled */
        s->turn_active = 0;
    }
    oc_unlock(inst);
    struct err err;
    if (active && oc_post(ctx, oc_session_path(ctx->native_session_id, "/abort"), NULL, &err))
        fprintf(stderr, "sandbox-journal: session %s: cannot stop opencode: %s\n",
                ctx->session_id, err.msg);
}

static const struct adapter_mode oc_modes[] = {
    { "build", "Build", "Default build mode" },
    { "plan", "Plan", "Planning mode" },
    { "custom", "Custom", "Any user-defined OpenCode agent name" },
};

const struct adapter adapter_opencode = {
    .name = "opencode",
    .caps =
        {
            .plan_mode = 1,
            .permissions = 1,
            .questions = 1,
            .tool_calls = 1,
            .tool_results = 1,
            .text_messages = 1,
            .images = 1,
            .file_attachments = 1,
            .error_events = 1,
            .reasoning = 1,
            .status = 1,
            .command_execution = 1,
            .file_changes = 1,
            .streaming_deltas = 1,
            .item_started = 1,
            .shared_process = 1,
        },
    .modes = oc_modes,
    .n_modes = sizeof oc_modes / sizeof oc_modes[0],
    .can_resume = 1,
    .builtin_version = NULL,
    .mode_rule = &oc_mode_rule,
    .start_session = oc_start_session,
    .send_message = oc_send_message,
    .reply_permission = oc_reply_permission,
    .reply_question = oc_reply_question,
    .reject_question = oc_reject_question,
    .terminate = oc_terminate,
    .free_state = NULL,
    .shutdown = NULL,
    .instance_new = oc_instance_new,
    .instance_free = oc_instance_free,
    .server_status_json = oc_server_status_json,
    .shutdown_shared = oc_shutdown_shared,
    .modes_json = oc_modes_json,
};
