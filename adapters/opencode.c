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
 * and a thread per long poll keeps each side simple.  Everything shared is
 * under `oc.lock`, which is never held while a session lock is taken (HTTP
 * workers take it with their session locked).
 *
 * Failures.  A server that exits while it should run is restarted with a
 * back-off (0.5 s doubling to 30 s, reset after a minute of uptime); every
 * session with a turn under way gets an error event (which ends its turn);
 * its next message goes to the new server, which still knows the session.
 * Shutdown sends SIGTERM (SIGKILL after OC_KILL_MS) and journals nothing.
 */
#include "adapters/opencode.h"

#include "agents/adapter.h"
#include "agents/agent_proc.h"
#include "agents/agent_env.h"
#include "base/buf.h"
#include "agents/credentials.h"
#include "base/datadir.h"
#include "base/err.h"
#include "events/event.h"
#include "agents/supervisor.h"

#include <arpa/inet.h>
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

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* Under lock. */
    supervisor_t *supervisor;
    char *data_dir;
    char *binary;
    char *cwd;
    json_t *models;          /* model ids sessions asked for (provider listing) */
    int threads_started;
    pthread_t worker, stream;
    int curl_ready;
    int alive;               /* the child runs */
    int spawning;            /* a spawn is posted to the loop */
    int spawn_rc;
    unsigned gen;            /* bumped at every spawn */
    unsigned ready_gen;      /* gen that answered /global/health (0: none) */
    unsigned stream_gen;     /* gen the event stream is connected to */
    int port;
    long long started_ms;
    long long next_start_ms; /* restart not before (back-off) */
    unsigned crashes;
    int need_server;         /* start it (again) once the back-off allows */
    struct oc_job *jobs, **jobs_tail;
    struct oc_sess *sessions;
    json_t *modes;           /* from GET /agent, or NULL */
    const char *status;      /* "running", "stopped", "error" */
    long long restart_count;
    char last_error[256];
    long long uptime_base_ms;
    /* Loop only. */
    uv_loop_t *loop;
    supervisor_proc_t *proc;
    int stopping;            /* our SIGTERM: the exit is expected */
    uv_timer_t kill_timer;
    int kill_ready;
    /* Any thread. */
    atomic_int down;
} oc = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
         .status = "stopped" };

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

/* Locked. */
static void oc_set_status(const char *status, const char *last_error)
{
    oc.status = status;
    if (last_error)
        snprintf(oc.last_error, sizeof oc.last_error, "%s", last_error);
    oc.uptime_base_ms = strcmp(status, "running") == 0 ? oc_now_ms() : 0;
}

static json_t *oc_server_status_json(void *instance)
{
    (void)instance; /* still process-wide: becomes the instance next (issue 12) */
    pthread_mutex_lock(&oc.lock);
    json_t *s = json_pack("{s:s,s:I}", "status", oc.status, "restartCount",
                          (json_int_t)oc.restart_count);
    if (s && oc.last_error[0])
        json_object_set_new(s, "lastError", json_string(oc.last_error));
    if (s && oc.uptime_base_ms)
        json_object_set_new(s, "uptimeMs",
                            json_integer((json_int_t)(oc_now_ms() - oc.uptime_base_ms)));
    pthread_mutex_unlock(&oc.lock);
    return s;
}

static json_t *oc_modes_json(void *instance)
{
    (void)instance; /* still process-wide: becomes the instance next (issue 12) */
    pthread_mutex_lock(&oc.lock);
    json_t *m = oc.modes ? json_deep_copy(oc.modes) : NULL;
    pthread_mutex_unlock(&oc.lock);
    return m;
}

/* Locked. */
static struct oc_sess *oc_sess_find(const char *native_id)
{
    for (struct oc_sess *s = oc.sessions; s; s = s->next)
        if (strcmp(s->native_id, native_id) == 0)
            return s;
    return NULL;
}

/* Emits (no lock held) one synthetic error to `ctx`. */
static void oc_emit_error(struct adapter_ctx *ctx, const char *message, const char *code)
{
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

/* Locked: the turn of `native_id` failed; returns its ctx for an error
 * event (emitted by the caller once the lock is released), or NULL. */
static struct adapter_ctx *oc_turn_failed(const char *native_id)
{
    struct oc_sess *s = oc_sess_find(native_id);
    if (!s || !s->ctx)
        return NULL;
    s->turn_active = 0;
    return s->ctx;
}

/* ---- waiters and jobs --------------------------------------------------------- */

/* Locked: reports the outcome and drops one reference. */
static void oc_waiter_finish(struct oc_waiter *w, int rc, const char *id, const char *message)
{
    w->done = 1;
    w->rc = rc;
    if (id)
        snprintf(w->id, sizeof w->id, "%s", id);
    if (message)
        snprintf(w->message, sizeof w->message, "%s", message);
    if (--w->refs == 0)
        free(w);
    pthread_cond_broadcast(&oc.cond);
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

/* Locked: a job that cannot run; its owner hears of it.  Returns the ctx
 * to send an error to (after unlocking), or NULL. */
static struct adapter_ctx *oc_job_fail(struct oc_job *j, const char *message)
{
    struct adapter_ctx *ctx = NULL;
    if (j->kind == OC_JOB_CREATE && j->waiter)
        oc_waiter_finish(j->waiter, ERR_AGENT_EXITED, NULL, message);
    else if (j->kind == OC_JOB_PROMPT)
        ctx = oc_turn_failed(j->native_id);
    else
        oc_log("request dropped", message);
    oc_job_free(j);
    return ctx;
}

/* Fails every queued job (no lock held on entry). */
static void oc_fail_all(const char *message)
{
    for (;;) {
        pthread_mutex_lock(&oc.lock);
        struct oc_job *j = oc.jobs;
        if (j) {
            oc.jobs = j->next;
            if (!oc.jobs)
                oc.jobs_tail = &oc.jobs;
        }
        struct adapter_ctx *ctx = j ? oc_job_fail(j, message) : NULL;
        pthread_mutex_unlock(&oc.lock);
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
    (void)arg, (void)dt, (void)dn, (void)ut, (void)un; /* only the flag matters */
    return atomic_load(&oc.down) ? 1 : 0;
}

/* A blocking request.  0 with *status (and the body in r, which the caller
 * frees) or -1 with the reason in why[200]. */
static int oc_http(const char *url, const char *method, const char *body, long timeout_ms,
                   long *status, struct oc_resp *r, char why[200])
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
static int oc_call(int port, const char *method, const char *path, const char *body,
                   long timeout_ms, long *status, struct oc_resp *r, char why[200])
{
    char url[PATH_MAX + 64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    return oc_http(url, method, body, timeout_ms, status, r, why);
}

/* ---- the process (loop side) -------------------------------------------------- */

struct oc_spawn {
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

static void oc_kill_closed(uv_handle_t *h)
{
    (void)h; /* static storage */
    oc.kill_ready = 0;
}

static void oc_on_exit(void *arg, const struct supervisor_exit *e)
{
    (void)arg; /* one server */
    oc.proc = NULL;
    if (oc.kill_ready && !uv_is_closing((uv_handle_t *)&oc.kill_timer))
        uv_close((uv_handle_t *)&oc.kill_timer, oc_kill_closed);
    int expected = oc.stopping;
    oc.stopping = 0;
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
    pthread_mutex_lock(&oc.lock);
    int down = atomic_load(&oc.down);
    oc.alive = 0;
    oc.ready_gen = 0;
    for (struct oc_sess *s = oc.sessions; s; s = s->next) {
        if (s->turn_active && s->ctx && !down && n_failed < sizeof failed / sizeof failed[0])
            failed[n_failed++] = s->ctx;
        s->turn_active = 0;
    }
    if (down || expected) {
        oc_set_status("stopped", NULL);
    } else {
        if (oc_now_ms() - oc.started_ms > 60000)
            oc.crashes = 0;
        oc.crashes++;
        unsigned shift = oc.crashes > 7 ? 6 : oc.crashes - 1;
        long long delay = 500LL << shift;
        oc.next_start_ms = oc_now_ms() + (delay > 30000 ? 30000 : delay);
        oc.need_server = 1;
        oc.restart_count++;
        oc_set_status("error", message);
    }
    pthread_cond_broadcast(&oc.cond);
    pthread_mutex_unlock(&oc.lock);
    if (!down && !expected)
        oc_log(message, NULL);
    for (size_t i = 0; i < n_failed; i++)
        oc_emit_error(failed[i], message, "server_exit");
}

static void oc_loop_spawn(uv_loop_t *loop, void *arg)
{
    struct oc_spawn *sp = arg;
    struct err err;
    int rc = ERR_INVALID;
    err_clear(&err);
    oc.loop = loop;
    if (!atomic_load(&oc.down) && !oc.proc) {
        char *const *envp = agent_env_finish(&sp->env, &err);
        struct supervisor_proc_options po = { .file = sp->args[0], .args = sp->args,
                                              .env = envp, .cwd = sp->cwd };
        struct supervisor_proc_callbacks cb = { .on_line = oc_on_line, .on_exit = oc_on_exit,
                                                .arg = NULL };
        oc_kill_leftover(sp->home);
        rc = envp ? supervisor_proc_spawn(loop, &po, &cb, &oc.proc, &err) : ERR_NOMEM;
        if (rc)
            oc.proc = NULL;
        else
            oc_note_pid(sp->home, supervisor_proc_pid(oc.proc));
    }
    pthread_mutex_lock(&oc.lock);
    oc.spawning = 0;
    oc.spawn_rc = rc;
    if (rc)
        snprintf(oc.last_error, sizeof oc.last_error, "cannot start opencode: %.200s",
                 err.msg[0] ? err.msg : "the server is shutting down");
    else
        oc.alive = 1;
    pthread_cond_broadcast(&oc.cond);
    pthread_mutex_unlock(&oc.lock);
    oc_spawn_free(sp);
}

static void oc_loop_kill(uv_loop_t *loop, void *arg)
{
    (void)loop, (void)arg; /* one server */
    if (oc.proc && supervisor_proc_kill(oc.proc, SIGKILL) != 0)
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
static void oc_endpoint_models(const char *base_url, json_t *models)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/models", base_url);
    struct oc_resp r;
    long status = 0;
    char why[200];
    if (oc_http(url, "GET", NULL, 3000, &status, &r, why) != 0)
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
static int oc_prepare(const char *data_dir, const char *binary, const char *cwd,
                      json_t *models /* stolen */, int port, struct oc_spawn **out,
                      struct err *err)
{
    char home[PATH_MAX], path[PATH_MAX + 64];
    int rc = agent_env_home(data_dir, "opencode", home, err);
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
        oc_endpoint_models(base_url, models);
    }
    char *config = rc ? NULL : adapter_opencode_config(OC_PROVIDER, base_url, api_key, models);
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
    *out = sp;
    return 0;
}

/* Worker, locked on entry and exit: starts the server and waits until it
 * answers.  0, or -1 with the reason in oc.last_error (jobs then fail). */
static int oc_start_locked(void)
{
    if (!oc.binary || !oc.data_dir) {
        snprintf(oc.last_error, sizeof oc.last_error, "agent not installed: opencode");
        return -1;
    }
    char *data_dir = strdup(oc.data_dir);
    char *binary = strdup(oc.binary);
    char *cwd = oc.cwd ? strdup(oc.cwd) : NULL;
    json_t *models = json_deep_copy(oc.models);
    supervisor_t *sup = oc.supervisor;
    int port = oc_free_port();
    pthread_mutex_unlock(&oc.lock);

    struct err err;
    err_clear(&err);
    struct oc_spawn *sp = NULL;
    int rc;
    if (!data_dir || !binary || !models || port < 0) {
        json_decref(models);
        rc = port < 0 ? err_set(&err, ERR_INTERNAL, "no free loopback port")
                      : err_set(&err, ERR_NOMEM, "out of memory");
    } else {
        rc = oc_prepare(data_dir, binary, cwd, models, port, &sp, &err);
    }
    free(data_dir);
    free(binary);
    free(cwd);
    pthread_mutex_lock(&oc.lock);
    if (rc) {
        snprintf(oc.last_error, sizeof oc.last_error, "cannot start opencode: %.200s", err.msg);
        return -1;
    }
    oc.spawning = 1;
    pthread_mutex_unlock(&oc.lock);
    rc = supervisor_post(sup, oc_loop_spawn, sp, &err);
    pthread_mutex_lock(&oc.lock);
    if (rc) {
        oc.spawning = 0;
        oc_spawn_free(sp);
        snprintf(oc.last_error, sizeof oc.last_error, "cannot start opencode: %.200s", err.msg);
        return -1;
    }
    while (oc.spawning && !atomic_load(&oc.down))
        pthread_cond_wait(&oc.cond, &oc.lock);
    if (oc.spawning || oc.spawn_rc)
        return -1;
    unsigned gen = ++oc.gen;
    oc.port = port;
    oc.started_ms = oc_now_ms();
    pthread_mutex_unlock(&oc.lock);

    /* It accepts connections before it can answer them, and a request in
     * that window may never be answered: short timeouts, retried. */
    long long deadline = oc_now_ms() + OC_READY_TIMEOUT_MS;
    int healthy = 0;
    while (!healthy && !atomic_load(&oc.down) && oc_now_ms() < deadline) {
        pthread_mutex_lock(&oc.lock);
        int still = oc.alive && oc.gen == gen;
        pthread_mutex_unlock(&oc.lock);
        if (!still)
            break;
        struct oc_resp r;
        long status = 0;
        char why[200];
        if (oc_call(port, "GET", "/global/health", NULL, 2000, &status, &r, why) == 0) {
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
        char why[200];
        if (oc_call(port, "GET", "/agent", NULL, 5000, &status, &r, why) == 0) {
            json_t *agents = status == 200 ? json_loadb(r.body.data ? r.body.data : "",
                                                        r.body.len, 0, NULL)
                                           : NULL;
            modes = adapter_opencode_modes(agents);
            json_decref(agents);
            buf_free(&r.body);
        }
    }
    pthread_mutex_lock(&oc.lock);
    if (!healthy) {
        snprintf(oc.last_error, sizeof oc.last_error,
                 "opencode did not answer /global/health within %d s",
                 OC_READY_TIMEOUT_MS / 1000);
        json_decref(modes);
        if (oc.alive && oc.gen == gen) {
            struct err perr;
            if (supervisor_post(sup, oc_loop_kill, NULL, &perr) != 0)
                oc_log("cannot stop the unresponsive server", perr.msg);
        }
        return -1;
    }
    if (modes) {
        json_decref(oc.modes);
        oc.modes = modes;
    }
    oc.ready_gen = gen;
    oc_set_status("running", NULL);
    pthread_cond_broadcast(&oc.cond);
    return 0;
}

/* ---- the worker thread ----------------------------------------------------------- */

static void oc_run_job(struct oc_job *j, int port)
{
    struct oc_resp r;
    long status = 0;
    char why[200];
    int rc = oc_call(port, "POST", j->path, j->body,
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
    pthread_mutex_lock(&oc.lock);
    if (j->kind == OC_JOB_CREATE) {
        const char *id = json_string_value(json_object_get(answer, "id"));
        if (id)
            oc_waiter_finish(j->waiter, 0, id, NULL);
        else
            oc_waiter_finish(j->waiter, ERR_AGENT_EXITED, NULL,
                             ok ? "POST /session answered no id" : why);
    } else if (!ok && j->kind == OC_JOB_PROMPT) {
        snprintf(message, sizeof message, "opencode refused the prompt: %s", why);
        ctx = oc_turn_failed(j->native_id);
    } else if (!ok) {
        snprintf(message, sizeof message, "POST %s: %s", j->path, why);
        oc_log("request failed", message);
    }
    pthread_mutex_unlock(&oc.lock);
    json_decref(answer);
    if (ctx)
        oc_emit_error(ctx, message, "turn_failed");
    oc_job_free(j);
}

static void *oc_worker_main(void *arg)
{
    (void)arg; /* state is global */
    pthread_mutex_lock(&oc.lock);
    while (!atomic_load(&oc.down)) {
        if (oc.jobs)
            oc.need_server = 1;
        if (oc.need_server && !oc.alive && !oc.spawning) {
            long long wait = oc.next_start_ms - oc_now_ms();
            if (wait > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += wait / 1000;
                ts.tv_nsec += (wait % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&oc.cond, &oc.lock, &ts);
                continue;
            }
            if (oc_start_locked() != 0) {
                char message[256];
                snprintf(message, sizeof message, "%s", oc.last_error);
                oc_set_status("error", message);
                oc.need_server = 0;
                if (oc.crashes < 8)
                    oc.crashes++;
                long long delay = 500LL << (oc.crashes - 1);
                oc.next_start_ms = oc_now_ms() + (delay > 30000 ? 30000 : delay);
                pthread_mutex_unlock(&oc.lock);
                oc_log(message, NULL);
                oc_fail_all(message);
                pthread_mutex_lock(&oc.lock);
            }
            continue;
        }
        int ready = oc.alive && oc.ready_gen == oc.gen && oc.ready_gen != 0;
        if (oc.jobs && ready) {
            struct oc_job *j = oc.jobs;
            /* A prompt's events are only seen on a connected stream. */
            if (j->kind == OC_JOB_PROMPT && oc.stream_gen != oc.gen) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&oc.cond, &oc.lock, &ts);
                if (oc.stream_gen != oc.gen && oc_now_ms() - oc.started_ms < 15000)
                    continue;
            }
            oc.jobs = j->next;
            if (!oc.jobs)
                oc.jobs_tail = &oc.jobs;
            int port = oc.port;
            pthread_mutex_unlock(&oc.lock);
            oc_run_job(j, port);
            pthread_mutex_lock(&oc.lock);
            continue;
        }
        pthread_cond_wait(&oc.cond, &oc.lock);
    }
    pthread_mutex_unlock(&oc.lock);
    return NULL;
}

/* ---- the event stream thread ------------------------------------------------------ */

struct oc_stream {
    adapter_opencode_parser_t *parser;
    unsigned gen;
    int failed;
};

static void oc_on_event(void *arg, struct adapter_opencode_event *ev)
{
    struct oc_stream *st = arg;
    if (ev->connected) {
        pthread_mutex_lock(&oc.lock);
        if (oc.gen == st->gen)
            oc.stream_gen = st->gen;
        pthread_cond_broadcast(&oc.cond);
        pthread_mutex_unlock(&oc.lock);
    }
    if (!ev->session_id[0]) {
        if (json_array_size(ev->conversions))
            oc_log("event not understood", ev->type[0] ? ev->type : "(no type)");
        return;
    }
    pthread_mutex_lock(&oc.lock);
    struct oc_sess *s = oc_sess_find(ev->session_id);
    struct adapter_ctx *ctx = s ? s->ctx : NULL;
    if (s && (ev->idle || ev->failed))
        s->turn_active = 0;
    pthread_mutex_unlock(&oc.lock);
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
    (void)arg; /* state is global */
    adapter_opencode_parser_t *parser = adapter_opencode_parser_new();
    if (!parser) {
        oc_log("out of memory: no event stream", NULL);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&oc.lock);
        while (!atomic_load(&oc.down) && !(oc.alive && oc.ready_gen && oc.ready_gen == oc.gen))
            pthread_cond_wait(&oc.cond, &oc.lock);
        unsigned gen = oc.gen;
        int port = oc.port;
        pthread_mutex_unlock(&oc.lock);
        if (atomic_load(&oc.down))
            break;
        struct oc_stream st = { .parser = parser, .gen = gen };
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
            CURLcode cc = curl_easy_perform(c);
            if (!atomic_load(&oc.down) && cc != CURLE_OK && !st.failed)
                oc_log("event stream broke off", curl_easy_strerror(cc));
            curl_easy_cleanup(c);
        }
        pthread_mutex_lock(&oc.lock);
        if (oc.stream_gen == gen)
            oc.stream_gen = 0;
        pthread_mutex_unlock(&oc.lock);
        if (atomic_load(&oc.down))
            break;
        struct timespec ts = { 0, 300 * 1000000L };
        nanosleep(&ts, NULL);
    }
    adapter_opencode_parser_free(parser);
    return NULL;
}

/* ---- shutdown ------------------------------------------------------------------------ */

static void oc_kill_timeout(uv_timer_t *t)
{
    (void)t; /* one timer */
    if (oc.proc && supervisor_proc_kill(oc.proc, SIGKILL) == 0)
        oc_log("did not stop after SIGTERM: killed", NULL);
}

static void oc_shutdown_shared(void *instance)
{
    (void)instance; /* still process-wide: becomes the instance next (issue 12) */
    atomic_store(&oc.down, 1);
    pthread_mutex_lock(&oc.lock);
    pthread_cond_broadcast(&oc.cond);
    int joined = oc.threads_started;
    oc.threads_started = 0;
    pthread_mutex_unlock(&oc.lock);
    if (joined) {
        pthread_join(oc.worker, NULL);
        pthread_join(oc.stream, NULL);
    }
    oc_fail_all("the server is shutting down");
    if (oc.proc) {
        oc.stopping = 1;
        if (supervisor_proc_kill(oc.proc, SIGTERM) == 0 &&
            uv_timer_init(oc.loop, &oc.kill_timer) == 0) {
            oc.kill_ready = 1;
            if (uv_timer_start(&oc.kill_timer, oc_kill_timeout, OC_KILL_MS, 0) != 0)
                oc_log("cannot arm the kill timer", NULL);
        }
    }
    pthread_mutex_lock(&oc.lock);
    while (oc.sessions) {
        struct oc_sess *s = oc.sessions;
        oc.sessions = s->next;
        free(s->native_id);
        free(s);
    }
    json_decref(oc.models);
    oc.models = NULL;
    json_decref(oc.modes);
    oc.modes = NULL;
    free(oc.data_dir);
    free(oc.binary);
    free(oc.cwd);
    oc.data_dir = oc.binary = oc.cwd = NULL;
    int curl_ready = oc.curl_ready;
    oc.curl_ready = 0;
    pthread_mutex_unlock(&oc.lock);
    if (curl_ready)
        curl_global_cleanup();
}

/* ---- the adapter ---------------------------------------------------------------------- */

/* Locked: remembers what a session tells about the server to start and
 * starts our threads the first time. */
static int oc_note_locked(const struct adapter_ctx *ctx, struct err *err)
{
    if (atomic_load(&oc.down))
        return err_set(err, ERR_INVALID, "the server is shutting down");
    oc.supervisor = ctx->supervisor;
    if (!oc.data_dir && !(oc.data_dir = strdup(ctx->data_dir)))
        return err_set(err, ERR_NOMEM, "out of memory");
    if (ctx->binary_path && (!oc.binary || strcmp(oc.binary, ctx->binary_path) != 0)) {
        char *b = strdup(ctx->binary_path);
        if (!b)
            return err_set(err, ERR_NOMEM, "out of memory");
        free(oc.binary);
        oc.binary = b;
    }
    if (!oc.cwd && ctx->working_dir && !(oc.cwd = strdup(ctx->working_dir)))
        return err_set(err, ERR_NOMEM, "out of memory");
    if (!oc.models && !(oc.models = json_array()))
        return err_set(err, ERR_NOMEM, "out of memory");
    /* A bare model id (or one of our provider) is offered by our provider. */
    const char *model = ctx->model;
    if (model && strncmp(model, OC_PROVIDER "/", sizeof OC_PROVIDER) == 0)
        model += sizeof OC_PROVIDER;
    if (model && *model && !strchr(model, '/')) {
        int seen = 0;
        size_t i;
        const json_t *m;
        json_array_foreach(oc.models, i, m)
            seen |= strcmp(json_string_value(m), model) == 0;
        if (!seen && json_array_append_new(oc.models, json_string(model)) != 0)
            return err_set(err, ERR_NOMEM, "out of memory");
    }
    if (!oc.jobs_tail)
        oc.jobs_tail = &oc.jobs;
    if (oc.threads_started)
        return 0;
    if (!oc.curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return err_set(err, ERR_INTERNAL, "cannot initialize libcurl");
        oc.curl_ready = 1;
    }
    if (pthread_create(&oc.worker, NULL, oc_worker_main, NULL) != 0)
        return err_set(err, ERR_INTERNAL, "cannot start the opencode worker thread");
    if (pthread_create(&oc.stream, NULL, oc_stream_main, NULL) != 0) {
        atomic_store(&oc.down, 1);
        pthread_cond_broadcast(&oc.cond);
        pthread_mutex_unlock(&oc.lock);
        pthread_join(oc.worker, NULL);
        pthread_mutex_lock(&oc.lock);
        atomic_store(&oc.down, 0);
        return err_set(err, ERR_INTERNAL, "cannot start the opencode event thread");
    }
    oc.threads_started = 1;
    return 0;
}

/* Locked: queues `j` (taken). */
static void oc_queue_locked(struct oc_job *j)
{
    *oc.jobs_tail = j;
    oc.jobs_tail = &j->next;
    pthread_cond_broadcast(&oc.cond);
}

static int oc_resolve_modes(const char *agent_mode, const char *permission_mode,
                            char agent_mode_out[32], char permission_mode_out[32],
                            struct err *err)
{
    /* Modes are OpenCode agents, which users define themselves: any name
     * OpenCode could know is passed on, and OpenCode judges it. */
    const char *am = agent_mode ? agent_mode : "build";
    const char *pm = permission_mode ? permission_mode : "default";
    size_t n = strlen(am);
    int ok = n > 0 && n < 32;
    for (size_t i = 0; ok && i < n; i++)
        ok = (am[i] >= 'a' && am[i] <= 'z') || (am[i] >= 'A' && am[i] <= 'Z') ||
             (am[i] >= '0' && am[i] <= '9') || am[i] == '-' || am[i] == '_' || am[i] == '.';
    if (!ok)
        return err_set_mode(err, "opencode", am);
    if (strcmp(pm, "default") != 0 && strcmp(pm, "bypass") != 0) {
        if (strcmp(pm, "plan") == 0 || strcmp(pm, "acceptEdits") == 0)
            return err_set_mode(err, "opencode", pm);
        return err_set(err, ERR_INVALID, "invalid request: invalid permission mode: %s", pm);
    }
    snprintf(agent_mode_out, 32, "%s", am);
    snprintf(permission_mode_out, 32, "%s", pm);
    return 0;
}

static int oc_start_session(struct adapter_ctx *ctx, char native_id_out[128], struct err *err)
{
    if (!ctx->binary_path)
        return err_set_subject(err, ERR_NOT_INSTALLED, "opencode",
                               "agent not installed: opencode");
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
    pthread_mutex_lock(&oc.lock);
    int rc = oc_note_locked(ctx, err);
    if (rc) {
        pthread_mutex_unlock(&oc.lock);
        oc_job_free(j);
        free(w);
        return rc;
    }
    oc_queue_locked(j);
    /* Wait (no session lock held) for the server and its answer. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += OC_CREATE_TIMEOUT_MS / 1000;
    while (!w->done && !atomic_load(&oc.down))
        if (pthread_cond_timedwait(&oc.cond, &oc.lock, &deadline) == ETIMEDOUT)
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
    pthread_mutex_unlock(&oc.lock);
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
    pthread_mutex_lock(&oc.lock);
    int rc = oc_note_locked(ctx, err);
    struct oc_sess *s = rc ? NULL : oc_sess_find(ctx->native_session_id);
    if (!rc && !s) {
        s = calloc(1, sizeof *s);
        if (!s || !(s->native_id = strdup(ctx->native_session_id))) {
            free(s);
            s = NULL;
            rc = err_set(err, ERR_NOMEM, "out of memory");
        } else {
            s->next = oc.sessions;
            oc.sessions = s;
        }
    }
    if (!rc) {
        s->ctx = ctx;
        s->turn_active = 1;
        oc_queue_locked(j);
        j = NULL;
    }
    pthread_mutex_unlock(&oc.lock);
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
    pthread_mutex_lock(&oc.lock);
    int rc = oc_note_locked(ctx, err);
    if (!rc) {
        oc_queue_locked(j);
        j = NULL;
    }
    pthread_mutex_unlock(&oc.lock);
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
    pthread_mutex_lock(&oc.lock);
    struct oc_sess *s = oc_sess_find(ctx->native_session_id);
    if (s) {
        active = s->turn_active;
        s->ctx = NULL; /* its later events are not journaled */
        s->turn_active = 0;
    }
    pthread_mutex_unlock(&oc.lock);
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
    .resolve_modes = oc_resolve_modes,
    .start_session = oc_start_session,
    .send_message = oc_send_message,
    .reply_permission = oc_reply_permission,
    .reply_question = oc_reply_question,
    .reject_question = oc_reject_question,
    .terminate = oc_terminate,
    .free_state = NULL,
    .shutdown = NULL,
    .server_status_json = oc_server_status_json,
    .shutdown_shared = oc_shutdown_shared,
    .modes_json = oc_modes_json,
};
