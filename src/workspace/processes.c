/* Workspace processes: children of the supervisor loop whose output is
 * journaled.
 *
 * State lives in `struct wproc`, guarded by the manager's lock; the child
 * handle (`sp`) and the output path (pending bytes, sequences, the byte
 * cap's accounting) are the loop thread's alone.  Output is collected into
 * one pending chunk per stream and handed to the journal's writer when it
 * reaches PROC_CHUNK_BYTES, when the other stream speaks, after
 * PROC_FLUSH_MS, or at the exit; the writer groups those submits into its
 * commits.  A child that writes faster than the journal commits has its
 * reads paused above PROC_INFLIGHT_HIGH chunks in flight and resumed below
 * PROC_INFLIGHT_LOW, so memory stays bounded and nothing is dropped but
 * what the byte cap drops on purpose (oldest first, with a marker).
 *
 * A process is "exited" for readers once its exit record is committed,
 * after every chunk: a client that sees it exited and reads the log gets
 * all of it.  A wproc is reference-counted: the map, the running child and
 * each journal submit in flight hold one. */
#include "workspace/processes.h"

#include "base/base64.h"
#include "base/buf.h"
#include "base/hmap.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;

#define PROC_CHUNK_BYTES (64 * 1024)
#define PROC_FLUSH_MS 5
/* Chunks handed to the journal and not yet committed, per process (each
 * at most PROC_CHUNK_BYTES and a read): above HIGH its reads pause, below
 * LOW they resume. */
#define PROC_INFLIGHT_HIGH 256
#define PROC_INFLIGHT_LOW 64
#define PROC_STOP_GRACE_MS 5000
/* The most /v1/processes/config may set (see processes_config_set()). */
#define PROC_MAX_CONCURRENT_CEILING 1024
#define PROC_MAX_BYTES_CEILING ((int64_t)64 << 20)
/* Input queued for a child that has not read it: a request that would
 * pass this is refused (one alone, on an empty queue, always goes). */
#define PROC_INPUT_QUEUE_MAX (4 * 1024 * 1024)
#define PROC_ID_MAX 32

struct proc_config {
    int64_t default_run_timeout_ms;
    int64_t max_run_timeout_ms;
    int64_t max_concurrent;
    int64_t max_input_bytes;
    int64_t max_log_bytes;
    int64_t max_output_bytes;
};

static const struct proc_config proc_defaults = {
    .default_run_timeout_ms = 30000,
    .max_run_timeout_ms = 600000,
    .max_concurrent = 64,
    .max_input_bytes = 1024 * 1024,
    .max_log_bytes = 64 * 1024 * 1024,
    .max_output_bytes = 1024 * 1024,
};

/* A journaled chunk, for the byte cap: oldest first. */
struct proc_kept {
    uint64_t sequence;
    size_t len;
};

struct wproc {
    struct processes *mgr;
    int refs;             /* under mgr->lock */
    char id[PROC_ID_MAX];
    /* fixed at creation */
    json_t *command;      /* the request's command, args, cwd: what ProcessInfo echoes */
    json_t *args;
    json_t *cwd;
    int tty, interactive;
    int64_t created_ms;
    /* under mgr->lock */
    int pid;
    int running;          /* the child has not been reported exited yet */
    int ended;            /* the exit record is committed (or loaded) */
    int has_code;
    int exit_code;
    int64_t exited_ms;    /* 0: unknown */
    struct wproc *next, *prev; /* creation order */
    /* loop thread only */
    supervisor_proc_t *sp;
    supervisor_timer_t *flush_timer;
    struct buf pending;
    int pending_fd;       /* 1, 2 */
    int64_t pending_ts;
    uint64_t next_seq;
    struct proc_kept *kept;
    size_t kept_head, kept_len, kept_cap;
    size_t kept_bytes;
    uint64_t dropped_bytes;
    size_t max_log;
    /* under mgr->lock */
    int paused;           /* its reads are paused (set on the loop) */
    int resume_posted;
    size_t inflight;      /* chunk submits not yet committed */
};

struct processes {
    journal_t *journal;
    supervisor_t *supervisor;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* an exit committed */
    hmap_t *by_id;
    struct wproc *head, *tail;
    uint64_t next_id;
    size_t running;
    int closing;
    struct processes_run_job *runs; /* waiting for their child */
    struct processes_run_job *loop_runs; /* whose child runs: loop thread only */
    struct proc_config cfg;
    uint64_t exits;       /* exits seen ended (processes_exit_count()) */
};

static int64_t proc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wproc_free(struct wproc *w)
{
    json_decref(w->command);
    json_decref(w->args);
    json_decref(w->cwd);
    buf_free(&w->pending);
    free(w->kept);
    free(w);
}

/* Drops one reference; the last frees.  mgr->lock held. */
static void wproc_unref_locked(struct wproc *w)
{
    if (--w->refs == 0)
        wproc_free(w);
}

static void wproc_unref(struct wproc *w)
{
    struct processes *p = w->mgr;
    pthread_mutex_lock(&p->lock);
    wproc_unref_locked(w);
    pthread_mutex_unlock(&p->lock);
}

/* ProcessInfo.  mgr->lock held.  new, or NULL when memory ran out. */
static json_t *wproc_info(const struct wproc *w)
{
    json_t *o = json_pack("{s:s,s:O,s:O,s:I,s:b,s:b,s:s,s:s}", "id", w->id, "command",
                          w->command, "args", w->args, "createdAtMs", (json_int_t)w->created_ms,
                          "interactive", w->interactive, "tty", w->tty, "owner", "user",
                          "status", w->ended ? "exited" : "running");
    if (!o)
        return NULL;
    int bad = json_object_set(o, "cwd", w->cwd ? w->cwd : json_null()) ||
              json_object_set_new(o, "pid", w->pid ? json_integer(w->pid) : json_null()) ||
              json_object_set_new(o, "exitCode",
                                  w->has_code ? json_integer(w->exit_code) : json_null()) ||
              json_object_set_new(o, "exitedAtMs",
                                  w->exited_ms ? json_integer(w->exited_ms) : json_null());
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static char *wproc_info_text(struct wproc *w)
{
    pthread_mutex_lock(&w->mgr->lock);
    json_t *o = wproc_info(w);
    pthread_mutex_unlock(&w->mgr->lock);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static int proc_not_found(struct err *err, const char *id)
{
    return err_set_subject(err, ERR_PROC_NOT_FOUND, id, "process %s not found", id);
}

/* A referenced process, or NULL (err set). */
static struct wproc *proc_find(struct processes *p, const char *id, struct err *err)
{
    pthread_mutex_lock(&p->lock);
    struct wproc *w = hmap_get(p->by_id, id);
    if (w)
        w->refs++;
    pthread_mutex_unlock(&p->lock);
    if (!w)
        proc_not_found(err, id);
    return w;
}

/* ---- loading ------------------------------------------------------------------ */

static int64_t json_i64(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* Adds `w` to the map and the list (with the map's reference, which the
 * caller counted).  Locked. */
static int proc_insert(struct processes *p, struct wproc *w)
{
    if (hmap_put(p->by_id, w->id, w) != 0)
        return ERR_NOMEM;
    w->prev = p->tail;
    if (p->tail)
        p->tail->next = w;
    else
        p->head = w;
    p->tail = w;
    return 0;
}

struct proc_load {
    struct processes *p;
    struct err *err;
    int rc;
};

static int proc_load_one(void *arg, const char *id, const char *info)
{
    struct proc_load *ld = arg;
    struct processes *p = ld->p;
    json_t *o = json_loads(info, 0, NULL);
    struct wproc *w = calloc(1, sizeof *w);
    if (!o || !w || strlen(id) >= PROC_ID_MAX) {
        json_decref(o);
        free(w);
        fprintf(stderr, "sandbox-journal: processes: record of %s unreadable: skipped\n", id);
        return 0;
    }
    w->mgr = p;
    snprintf(w->id, sizeof w->id, "%s", id);
    w->command = json_incref(json_object_get(o, "command"));
    w->args = json_incref(json_object_get(o, "args"));
    const json_t *cwd = json_object_get(o, "cwd");
    w->cwd = json_is_string(cwd) ? json_incref((json_t *)cwd) : NULL;
    w->tty = json_is_true(json_object_get(o, "tty"));
    w->interactive = json_is_true(json_object_get(o, "interactive"));
    w->created_ms = json_i64(o, "createdAtMs");
    w->pid = (int)json_i64(o, "pid");
    const json_t *code = json_object_get(o, "exitCode");
    w->has_code = json_is_integer(code);
    w->exit_code = (int)json_i64(o, "exitCode");
    w->exited_ms = json_i64(o, "exitedAtMs");
    w->ended = 1;
    w->refs = 1; /* the map's */
    buf_init(&w->pending);
    const char *status = json_string_value(json_object_get(o, "status"));
    int was_running = !status || strcmp(status, "exited") != 0;
    json_decref(o);
    if (!w->command)
        w->command = json_string("");
    if (!w->args)
        w->args = json_array();
    unsigned long long n = 0;
    if (sscanf(id, "proc_%llu", &n) == 1 && n >= p->next_id)
        p->next_id = n + 1;
    if (!w->command || !w->args || proc_insert(p, w) != 0) {
        wproc_free(w);
        ld->rc = err_set(ld->err, ERR_NOMEM, "out of memory loading processes");
        return 1;
    }
    if (was_running) {
        /* The server stopped (or died) under it: whatever became of it is
         * unknown, so it is exited with no code, from now on. */
        char *text = wproc_info_text(w);
        struct journal_proc_write jw = { .process_id = w->id, .info = text };
        int rc = text ? journal_proc_append(p->journal, &jw, ld->err)
                      : err_set(ld->err, ERR_NOMEM, "out of memory");
        free(text);
        if (rc) {
            ld->rc = rc;
            return 1;
        }
    }
    return 0;
}

int processes_open(journal_t *journal, supervisor_t *supervisor, processes_t **out,
                   struct err *err)
{
    struct processes *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(err, ERR_NOMEM, "out of memory");
    p->journal = journal;
    p->supervisor = supervisor;
    p->cfg = proc_defaults;
    p->next_id = 1;
    p->by_id = hmap_new();
    if (!p->by_id || pthread_mutex_init(&p->lock, NULL) != 0) {
        hmap_free(p->by_id);
        free(p);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    if (pthread_cond_init(&p->changed, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        hmap_free(p->by_id);
        free(p);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    journal_reader_t *r = journal_reader_for_thread(journal, err);
    struct proc_load ld = { .p = p, .err = err, .rc = 0 };
    int rc = r ? journal_proc_list(r, proc_load_one, &ld, err) : ERR_STORAGE;
    if (rc < 0 || ld.rc) {
        processes_free(p);
        return ld.rc ? ld.rc : rc;
    }
    *out = p;
    return 0;
}

void processes_free(processes_t *p)
{
    if (!p)
        return;
    for (struct wproc *w = p->head, *next; w; w = next) {
        next = w->next;
        wproc_free(w);
    }
    hmap_free(p->by_id);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ---- the output path (loop thread) ------------------------------------------- */

static void proc_resume_on_loop(uv_loop_t *loop, void *arg)
{
    (void)loop; /* the child's handle knows its loop */
    struct wproc *w = arg;
    struct processes *p = w->mgr;
    pthread_mutex_lock(&p->lock);
    int was = w->paused;
    w->paused = 0;
    w->resume_posted = 0;
    pthread_mutex_unlock(&p->lock);
    if (was && w->sp)
        supervisor_proc_resume_output(w->sp);
    wproc_unref(w);
}

/* Writer thread: a chunk submit of `w` committed or failed. */
static void proc_chunk_done(void *arg, int rc, const struct err *err)
{
    struct wproc *w = arg;
    struct processes *p = w->mgr;
    if (rc)
        fprintf(stderr, "sandbox-journal: process %s: output not journaled: %s\n", w->id,
                err ? err->msg : "?");
    pthread_mutex_lock(&p->lock);
    w->inflight--;
    if (w->paused && !w->resume_posted && w->inflight < PROC_INFLIGHT_LOW) {
        struct err perr;
        w->refs++;
        w->resume_posted = 1;
        /* Fails only once the supervisor stops, after processes_close()
         * resumed every paused child. */
        if (supervisor_post(p->supervisor, proc_resume_on_loop, w, &perr) != 0) {
            w->refs--;
            w->resume_posted = 0;
        }
    }
    wproc_unref_locked(w);
    pthread_mutex_unlock(&p->lock);
}

/* Keeps the accounting of the byte cap; returns the sequence through which
 * older chunks go (0: none).  Loop thread. */
static uint64_t proc_account(struct wproc *w, uint64_t seq, size_t len)
{
    if (w->kept_len == w->kept_cap) {
        size_t cap = w->kept_cap ? w->kept_cap * 2 : 64;
        struct proc_kept *k = malloc(cap * sizeof *k);
        if (!k)
            return 0; /* the cap is enforced at the next chunk */
        for (size_t i = 0; i < w->kept_len; i++)
            k[i] = w->kept[(w->kept_head + i) % w->kept_cap];
        free(w->kept);
        w->kept = k;
        w->kept_cap = cap;
        w->kept_head = 0;
    }
    w->kept[(w->kept_head + w->kept_len) % w->kept_cap] = (struct proc_kept){ seq, len };
    w->kept_len++;
    w->kept_bytes += len;
    uint64_t drop = 0;
    while (w->kept_bytes > w->max_log && w->kept_len > 1) {
        struct proc_kept *k = &w->kept[w->kept_head];
        drop = k->sequence;
        w->kept_bytes -= k->len;
        w->dropped_bytes += k->len;
        w->kept_head = (w->kept_head + 1) % w->kept_cap;
        w->kept_len--;
    }
    return drop;
}

/* Hands the pending chunk to the journal.  Loop thread. */
static void proc_flush(struct wproc *w)
{
    struct processes *p = w->mgr;
    if (!w->pending.len)
        return;
    if (w->flush_timer)
        supervisor_timer_disarm(w->flush_timer);
    uint64_t seq = ++w->next_seq;
    size_t len = w->pending.len;
    uint64_t drop = proc_account(w, seq, len);
    struct journal_proc_chunk chunks[2];
    size_t n = 0;
    char marker[128];
    if (drop) {
        /* The marker takes the last dropped sequence: it stands where the
         * deleted chunks were, first of what is left. */
        int m = snprintf(marker, sizeof marker,
                         "[sandbox-journal: %llu bytes of older output dropped]\n",
                         (unsigned long long)w->dropped_bytes);
        chunks[n++] = (struct journal_proc_chunk){ .sequence = drop, .stream = "dropped",
                                                   .ts_ms = w->pending_ts, .data = marker,
                                                   .len = (size_t)m };
    }
    chunks[n++] = (struct journal_proc_chunk){
        .sequence = seq,
        .stream = w->tty ? "pty" : w->pending_fd == 2 ? "stderr" : "stdout",
        .ts_ms = w->pending_ts,
        .data = w->pending.data,
        .len = len,
    };
    struct journal_proc_write jw = { .process_id = w->id, .drop_through = drop,
                                     .chunks = chunks, .n_chunks = n };
    pthread_mutex_lock(&p->lock);
    w->refs++;
    w->inflight++;
    pthread_mutex_unlock(&p->lock);
    struct err err;
    if (journal_proc_submit(p->journal, &jw, proc_chunk_done, w, &err) != 0) {
        fprintf(stderr, "sandbox-journal: process %s: output not journaled: %s\n", w->id,
                err.msg);
        pthread_mutex_lock(&p->lock);
        w->inflight--;
        wproc_unref_locked(w);
        pthread_mutex_unlock(&p->lock);
    }
    if (w->pending.cap > 2 * PROC_CHUNK_BYTES)
        buf_free(&w->pending);
    else
        buf_reset(&w->pending);
    pthread_mutex_lock(&p->lock);
    int pause = w->sp && !w->paused && !p->closing && w->inflight > PROC_INFLIGHT_HIGH;
    if (pause)
        w->paused = 1;
    pthread_mutex_unlock(&p->lock);
    if (pause)
        supervisor_proc_pause_output(w->sp);
}

static void proc_flush_fire(void *arg)
{
    proc_flush(arg);
}

static void proc_on_output(void *arg, int fd, const char *data, size_t len)
{
    struct wproc *w = arg;
    if (w->pending.len && fd != w->pending_fd)
        proc_flush(w);
    if (!w->pending.len) {
        w->pending_fd = fd;
        w->pending_ts = proc_now_ms();
    }
    if (buf_append(&w->pending, data, len) != 0) {
        proc_flush(w); /* out of memory: journal what is there, lose this read */
        fprintf(stderr, "sandbox-journal: process %s: out of memory: %zu bytes lost\n", w->id,
                len);
        return;
    }
    if (w->pending.len >= PROC_CHUNK_BYTES) {
        proc_flush(w);
        return;
    }
    if (w->flush_timer && !supervisor_timer_armed(w->flush_timer)) {
        struct err err;
        if (supervisor_timer_arm(w->flush_timer, PROC_FLUSH_MS, 0, &err) != 0)
            proc_flush(w);
    }
}

/* Writer thread: the exit record is committed. */
static void proc_exit_done(void *arg, int rc, const struct err *err)
{
    struct wproc *w = arg;
    struct processes *p = w->mgr;
    if (rc)
        fprintf(stderr, "sandbox-journal: process %s: exit not journaled: %s\n", w->id,
                err ? err->msg : "?");
    pthread_mutex_lock(&p->lock);
    w->ended = 1;
    p->exits++;
    pthread_cond_broadcast(&p->changed);
    wproc_unref_locked(w);
    pthread_mutex_unlock(&p->lock);
    /* Followers of the log (GET /logs?follow, the terminal) wait for "any
     * commit", and this one woke them before `ended` was set (the journal
     * wakes waiters before it calls `done`): one that read then saw the
     * process running, found nothing and parked again.  Wake them now that
     * a read finds it ended. */
    journal_wake_all(p->journal, 0);
}

static void proc_on_exit(void *arg, const struct supervisor_exit *e)
{
    struct wproc *w = arg;
    struct processes *p = w->mgr;
    proc_flush(w);
    supervisor_timer_free(w->flush_timer);
    w->flush_timer = NULL;
    w->sp = NULL;
    pthread_mutex_lock(&p->lock);
    w->running = 0;
    p->running--;
    /* A signal's death reads as the shell would say it: 128 + signal. */
    w->has_code = 1;
    w->exit_code = e->term_signal ? 128 + e->term_signal : (int)e->exit_status;
    w->exited_ms = proc_now_ms();
    json_t *o = wproc_info(w);
    if (o)
        json_object_set_new(o, "status", json_string("exited"));
    pthread_mutex_unlock(&p->lock);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    struct journal_proc_write jw = { .process_id = w->id, .info = text };
    struct err err;
    /* The child's reference goes to the exit record's submit. */
    if (!text || journal_proc_submit(p->journal, &jw, proc_exit_done, w, &err) != 0) {
        fprintf(stderr, "sandbox-journal: process %s: exit not journaled\n", w->id);
        proc_exit_done(w, 0, NULL);
    }
    free(text);
}

/* ---- starting ---------------------------------------------------------------- */

struct proc_spawn {
    struct wproc *w;
    struct supervisor_proc_options o;
    const struct supervisor_proc_callbacks *cb;
    int close_stdin;
    int rc;
    struct err err;
    supervisor_proc_t *sp; /* loop thread only: it may be gone once the call returns */
    int pid;
};

/* The environment: the server's, with the request's variables over it.
 * new: *out (NULL-terminated; every string owned). */
static int proc_env(const json_t *env, char ***out, struct err *err)
{
    size_t n = 0;
    while (environ[n])
        n++;
    size_t extra = json_is_object(env) ? json_object_size(env) : 0;
    char **e = calloc(n + extra + 1, sizeof *e);
    if (!e)
        return err_set(err, ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t name = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int replaced = 0;
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)env, key, v) {
            if (strlen(key) == name && strncmp(key, environ[i], name) == 0)
                replaced = 1;
        }
        if (!replaced && !(e[k++] = strdup(environ[i])))
            goto nomem;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)env, key, v) {
        size_t len = strlen(key) + strlen(json_string_value(v)) + 2;
        if (!(e[k] = malloc(len)))
            goto nomem;
        snprintf(e[k++], len, "%s=%s", key, json_string_value(v));
    }
    *out = e;
    return 0;
nomem:
    for (size_t i = 0; i < k; i++)
        free(e[i]);
    free(e);
    return err_set(err, ERR_NOMEM, "out of memory");
}

static void proc_env_free(char **e)
{
    for (size_t i = 0; e && e[i]; i++)
        free(e[i]);
    free(e);
}

static void proc_spawn_on_loop(uv_loop_t *loop, void *arg)
{
    struct proc_spawn *s = arg;
    if (s->w && supervisor_timer_new(loop, proc_flush_fire, s->w, &s->w->flush_timer,
                                     &s->err) != 0) {
        s->rc = s->err.code;
        return;
    }
    s->rc = supervisor_proc_spawn(loop, &s->o, s->cb, &s->sp, &s->err);
    if (s->rc == ERR_NOT_INSTALLED) { /* a request's mistake, not an agent's absence */
        char why[sizeof s->err.msg];
        snprintf(why, sizeof why, "%s", s->err.msg);
        s->rc = err_set(&s->err, ERR_INVALID, "%s", why);
    }
    if (s->rc) {
        if (s->w) {
            supervisor_timer_free(s->w->flush_timer);
            s->w->flush_timer = NULL;
        }
        return;
    }
    s->pid = supervisor_proc_pid(s->sp);
    if (s->w)
        s->w->sp = s->sp;
    if (s->close_stdin)
        supervisor_proc_close_stdin(s->sp);
}

/* Reads command, args, cwd and env of a create or run request into `o`
 * and *env (new).  0 or ERR_INVALID. */
static int proc_parse(const json_t *body, const char ***argv, char ***env, const char **cwd,
                      struct err *err)
{
    const json_t *command = json_object_get(body, "command");
    const json_t *args = json_object_get(body, "args");
    const json_t *jcwd = json_object_get(body, "cwd");
    const json_t *jenv = json_object_get(body, "env");
    if (!json_is_string(command) || !*json_string_value(command))
        return err_set(err, ERR_INVALID, "command must be a non-empty string");
    if (args && !json_is_null(args) && !json_is_array(args))
        return err_set(err, ERR_INVALID, "args must be an array of strings");
    if (jcwd && !json_is_null(jcwd) && !json_is_string(jcwd))
        return err_set(err, ERR_INVALID, "cwd must be a string");
    /* Said here: a failed spawn's ENOENT would blame the command. */
    struct stat st;
    if (json_is_string(jcwd) && (stat(json_string_value(jcwd), &st) != 0 || !S_ISDIR(st.st_mode)))
        return err_set(err, ERR_INVALID, "cwd %s is not a directory", json_string_value(jcwd));
    if (jenv && !json_is_null(jenv) && !json_is_object(jenv))
        return err_set(err, ERR_INVALID, "env must be an object of strings");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)jenv, key, v) {
        if (!json_is_string(v) || !*key || strchr(key, '='))
            return err_set(err, ERR_INVALID, "env.%s must be a string with a name "
                                             "without '='", key);
    }
    size_t n = json_is_array(args) ? json_array_size(args) : 0;
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_array_get(args, i)))
            return err_set(err, ERR_INVALID, "args[%zu] must be a string", i);
    const char **a = calloc(n + 2, sizeof *a);
    if (!a)
        return err_set(err, ERR_NOMEM, "out of memory");
    a[0] = json_string_value(command);
    for (size_t i = 0; i < n; i++)
        a[i + 1] = json_string_value(json_array_get(args, i));
    int rc = proc_env(json_is_object(jenv) ? jenv : NULL, env, err);
    if (rc) {
        free(a);
        return rc;
    }
    *argv = a;
    *cwd = json_is_string(jcwd) ? json_string_value(jcwd) : NULL;
    return 0;
}

int processes_create(processes_t *p, const json_t *body, json_t **out, struct err *err)
{
    const char **argv = NULL;
    char **env = NULL;
    const char *cwd = NULL;
    int rc = proc_parse(body, &argv, &env, &cwd, err);
    if (rc)
        return rc;
    const json_t *jtty = json_object_get(body, "tty");
    const json_t *jint = json_object_get(body, "interactive");
    if ((jtty && !json_is_boolean(jtty) && !json_is_null(jtty)) ||
        (jint && !json_is_boolean(jint) && !json_is_null(jint))) {
        free(argv);
        proc_env_free(env);
        return err_set(err, ERR_INVALID, "tty and interactive must be booleans");
    }
    struct wproc *w = calloc(1, sizeof *w);
    if (!w) {
        free(argv);
        proc_env_free(env);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    w->mgr = p;
    w->tty = json_is_true(jtty);
    w->interactive = json_is_true(jint);
    w->command = json_string(argv[0]);
    w->args = json_array();
    for (size_t i = 1; argv[i] && w->args; i++)
        if (json_array_append_new(w->args, json_string(argv[i])) != 0) {
            json_decref(w->args);
            w->args = NULL;
        }
    w->cwd = cwd ? json_string(cwd) : NULL;
    w->created_ms = proc_now_ms();
    /* The map's and the running child's: the child may exit (and drop
     * its own) before this thread has listed it. */
    w->refs = 2;
    w->running = 1;
    buf_init(&w->pending);
    if (!w->command || !w->args || (cwd && !w->cwd)) {
        wproc_free(w);
        free(argv);
        proc_env_free(env);
        return err_set(err, ERR_NOMEM, "out of memory");
    }

    pthread_mutex_lock(&p->lock);
    if (p->closing) {
        pthread_mutex_unlock(&p->lock);
        rc = err_set(err, ERR_PROC_CONFLICT, "the server is shutting down");
    } else if ((int64_t)p->running >= p->cfg.max_concurrent) {
        pthread_mutex_unlock(&p->lock);
        rc = err_set(err, ERR_PROC_CONFLICT, "%lld processes are running already "
                     "(maxConcurrentProcesses)", (long long)p->cfg.max_concurrent);
    } else {
        snprintf(w->id, sizeof w->id, "proc_%llu", (unsigned long long)p->next_id++);
        w->max_log = (size_t)p->cfg.max_log_bytes;
        p->running++;
        pthread_mutex_unlock(&p->lock);
    }
    if (rc) {
        wproc_free(w);
        free(argv);
        proc_env_free(env);
        return rc;
    }
    static const struct supervisor_proc_callbacks cb = { .on_output = proc_on_output,
                                                         .on_exit = proc_on_exit };
    struct supervisor_proc_callbacks cbw = cb;
    cbw.arg = w;
    char label[PROC_ID_MAX + 48];
    snprintf(label, sizeof label, "process %s: %.32s", w->id, argv[0]);
    struct proc_spawn s = {
        .w = w,
        .o = { .file = argv[0], .args = argv, .env = env, .cwd = cwd, .label = label,
               .tty = w->tty },
        .cb = &cbw,
        .close_stdin = !w->interactive && !w->tty,
    };
    /* The record first: a chunk is never journaled for a process that is not. */
    char *text = wproc_info_text(w);
    struct journal_proc_write jw = { .process_id = w->id, .info = text };
    rc = text ? journal_proc_append(p->journal, &jw, err)
              : err_set(err, ERR_NOMEM, "out of memory");
    free(text);
    if (rc == 0)
        rc = supervisor_call(p->supervisor, proc_spawn_on_loop, &s, err);
    if (rc == 0 && s.rc)
        *err = s.err, rc = s.rc;
    free(argv);
    proc_env_free(env);
    pthread_mutex_lock(&p->lock);
    if (rc) {
        p->running--;
        pthread_mutex_unlock(&p->lock);
        struct journal_proc_write rm = { .process_id = w->id, .remove = 1 };
        struct err ignored;
        if (journal_proc_append(p->journal, &rm, &ignored) != 0)
            fprintf(stderr, "sandbox-journal: process %s: %s\n", w->id, ignored.msg);
        wproc_free(w);
        return rc;
    }
    w->pid = s.pid;
    if (proc_insert(p, w) != 0) {
        /* Running, but unlisted: it still ends and is journaled. */
        wproc_unref_locked(w);
        pthread_mutex_unlock(&p->lock);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    *out = wproc_info(w);
    pthread_mutex_unlock(&p->lock);
    if (!*out)
        return err_set(err, ERR_NOMEM, "out of memory");
    return 0;
}

/* ---- asking a child ------------------------------------------------------------- */

struct proc_op {
    struct wproc *w;
    int what; /* 0 stop, 1 kill, 2 input, 3 resize */
    const void *data;
    size_t len;
    unsigned rows, cols;
    int rc;
    struct err err;
};

static void proc_op_on_loop(uv_loop_t *loop, void *arg)
{
    (void)loop; /* the child's handle knows its loop */
    struct proc_op *op = arg;
    supervisor_proc_t *sp = op->w->sp;
    if (!sp) {
        op->rc = err_set_subject(&op->err, ERR_PROC_CONFLICT, op->w->id,
                                 "process %s has exited", op->w->id);
        return;
    }
    switch (op->what) {
    case 0:
        supervisor_proc_stop(sp, PROC_STOP_GRACE_MS);
        break;
    case 1:
        if (supervisor_proc_kill(sp, SIGKILL) != 0)
            op->rc = err_set_subject(&op->err, ERR_PROC_CONFLICT, op->w->id,
                                     "process %s has exited", op->w->id);
        break;
    case 2: {
        /* A child that does not read its input must not make us hold
         * whatever clients keep sending (/input, the terminal's input). */
        size_t queued = supervisor_proc_queued(sp);
        if (queued && queued + op->len > PROC_INPUT_QUEUE_MAX) {
            op->rc = err_set_subject(&op->err, ERR_PROC_CONFLICT, op->w->id,
                                     "process %s is not reading its input (%zu bytes wait)",
                                     op->w->id, queued);
            break;
        }
        op->rc = supervisor_proc_write(sp, op->data, op->len, &op->err);
        if (op->rc)
            op->rc = err_set_subject(&op->err, ERR_PROC_CONFLICT, op->w->id,
                                     "process %s does not read its input: %s", op->w->id,
                                     op->err.msg);
        break;
    }
    default:
        op->rc = supervisor_proc_resize(sp, (unsigned short)op->rows, (unsigned short)op->cols,
                                        &op->err);
        if (op->rc)
            op->rc = err_set_subject(&op->err, ERR_PROC_CONFLICT, op->w->id, "process %s: %s",
                                     op->w->id, op->err.msg);
        break;
    }
}

static int proc_op_run(processes_t *p, struct proc_op *op, struct err *err)
{
    int rc = supervisor_call(p->supervisor, proc_op_on_loop, op, err);
    if (rc == 0 && op->rc) {
        *err = op->err;
        rc = op->rc;
    }
    return rc;
}

int processes_signal(processes_t *p, const char *id, int hard, uint64_t wait_ms, json_t **out,
                     struct err *err)
{
    struct wproc *w = proc_find(p, id, err);
    if (!w)
        return err->code;
    struct proc_op op = { .w = w, .what = hard ? 1 : 0 };
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    int running = w->running;
    pthread_mutex_unlock(&p->lock);
    if (running) {
        rc = proc_op_run(p, &op, err);
        if (rc == ERR_PROC_CONFLICT)
            rc = 0; /* it exited meanwhile: what was asked is done */
    }
    pthread_mutex_lock(&p->lock);
    if (rc == 0 && wait_ms) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(wait_ms / 1000);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!w->ended && pthread_cond_timedwait(&p->changed, &p->lock, &until) == 0)
            ;
    }
    if (rc == 0 && !(*out = wproc_info(w)))
        rc = err_set(err, ERR_NOMEM, "out of memory");
    wproc_unref_locked(w);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int processes_input(processes_t *p, const char *id, const void *data, size_t len,
                    struct err *err)
{
    struct wproc *w = proc_find(p, id, err);
    if (!w)
        return err->code;
    int rc;
    if (!w->interactive && !w->tty)
        rc = err_set_subject(err, ERR_PROC_CONFLICT, id,
                             "process %s was not started interactive: it has no input", id);
    else {
        struct proc_op op = { .w = w, .what = 2, .data = data, .len = len };
        rc = proc_op_run(p, &op, err);
    }
    wproc_unref(w);
    return rc;
}

size_t processes_max_input(processes_t *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = (size_t)p->cfg.max_input_bytes;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int processes_resize(processes_t *p, const char *id, unsigned rows, unsigned cols,
                     struct err *err)
{
    if (rows == 0 || cols == 0 || rows > 0xffff || cols > 0xffff)
        return err_set(err, ERR_INVALID, "rows and cols must be 1..65535");
    struct wproc *w = proc_find(p, id, err);
    if (!w)
        return err->code;
    int rc;
    if (!w->tty)
        rc = err_set_subject(err, ERR_PROC_CONFLICT, id, "process %s has no terminal", id);
    else {
        struct proc_op op = { .w = w, .what = 3, .rows = rows, .cols = cols };
        rc = proc_op_run(p, &op, err);
    }
    wproc_unref(w);
    return rc;
}

/* ---- reading ------------------------------------------------------------------ */

int processes_list(processes_t *p, const char *owner, json_t **out, struct err *err)
{
    json_t *list = json_array();
    json_t *o = json_pack("{s:o}", "processes", list);
    if (!o)
        return err_set(err, ERR_NOMEM, "out of memory");
    if (owner && strcmp(owner, "user") != 0) {
        if (strcmp(owner, "desktop") != 0 && strcmp(owner, "system") != 0) {
            json_decref(o);
            return err_set(err, ERR_INVALID, "owner must be user, desktop or system");
        }
        *out = o; /* nothing here belongs to them */
        return 0;
    }
    pthread_mutex_lock(&p->lock);
    int bad = 0;
    for (struct wproc *w = p->head; w && !bad; w = w->next)
        bad = json_array_append_new(list, wproc_info(w)) != 0;
    pthread_mutex_unlock(&p->lock);
    if (bad) {
        json_decref(o);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    *out = o;
    return 0;
}

int processes_get(processes_t *p, const char *id, json_t **out, struct err *err)
{
    pthread_mutex_lock(&p->lock);
    struct wproc *w = hmap_get(p->by_id, id);
    *out = w ? wproc_info(w) : NULL;
    pthread_mutex_unlock(&p->lock);
    if (!w)
        return proc_not_found(err, id);
    return *out ? 0 : err_set(err, ERR_NOMEM, "out of memory");
}

int processes_state(processes_t *p, const char *id, int *ended, struct err *err)
{
    pthread_mutex_lock(&p->lock);
    struct wproc *w = hmap_get(p->by_id, id);
    if (w)
        *ended = w->ended;
    pthread_mutex_unlock(&p->lock);
    return w ? 0 : proc_not_found(err, id);
}

uint64_t processes_exit_count(processes_t *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t n = p->exits;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int processes_delete(processes_t *p, const char *id, struct err *err)
{
    pthread_mutex_lock(&p->lock);
    struct wproc *w = hmap_get(p->by_id, id);
    if (!w) {
        pthread_mutex_unlock(&p->lock);
        return proc_not_found(err, id);
    }
    if (!w->ended) {
        pthread_mutex_unlock(&p->lock);
        return err_set_subject(err, ERR_PROC_CONFLICT, id,
                               "process %s is running: stop or kill it first", id);
    }
    hmap_remove(p->by_id, id);
    if (w->prev)
        w->prev->next = w->next;
    else
        p->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        p->tail = w->prev;
    w->next = w->prev = NULL;
    pthread_mutex_unlock(&p->lock);
    struct journal_proc_write rm = { .process_id = id, .remove = 1 };
    int rc = journal_proc_append(p->journal, &rm, err);
    wproc_unref(w);
    return rc;
}

json_t *processes_log_entry(const struct journal_proc_chunk *c)
{
    char *b64 = malloc(BASE64_ENCODED_SIZE(c->len));
    if (!b64)
        return NULL;
    base64_encode(c->data, c->len, b64);
    /* The byte cap's marker is no stream of the child's own. */
    const char *stream = strcmp(c->stream, "dropped") == 0 ? "combined" : c->stream;
    json_t *o = json_pack("{s:I,s:s,s:I,s:s,s:s}", "sequence", (json_int_t)c->sequence,
                          "stream", stream, "timestampMs", (json_int_t)c->ts_ms, "data", b64,
                          "encoding", "base64");
    free(b64);
    return o;
}

/* ---- configuration ----------------------------------------------------------------- */

static json_t *proc_config_json(const struct proc_config *c)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "defaultRunTimeoutMs",
                     (json_int_t)c->default_run_timeout_ms, "maxRunTimeoutMs",
                     (json_int_t)c->max_run_timeout_ms, "maxConcurrentProcesses",
                     (json_int_t)c->max_concurrent, "maxInputBytesPerRequest",
                     (json_int_t)c->max_input_bytes, "maxLogBytesPerProcess",
                     (json_int_t)c->max_log_bytes, "maxOutputBytes",
                     (json_int_t)c->max_output_bytes);
}

int processes_config_get(processes_t *p, json_t **out, struct err *err)
{
    pthread_mutex_lock(&p->lock);
    *out = proc_config_json(&p->cfg);
    pthread_mutex_unlock(&p->lock);
    return *out ? 0 : err_set(err, ERR_NOMEM, "out of memory");
}

int processes_config_set(processes_t *p, const json_t *body, json_t **out, struct err *err)
{
    /* The ceilings bound what the server itself holds: a /run keeps up to
     * twice maxOutputBytes in memory, an /input one request's bytes, and
     * each process a few descriptors. */
    static const struct {
        const char *name;
        size_t off;
        int64_t max;
    } fields[] = {
        { "defaultRunTimeoutMs", offsetof(struct proc_config, default_run_timeout_ms),
          INT64_MAX },
        { "maxRunTimeoutMs", offsetof(struct proc_config, max_run_timeout_ms), INT64_MAX },
        { "maxConcurrentProcesses", offsetof(struct proc_config, max_concurrent),
          PROC_MAX_CONCURRENT_CEILING },
        { "maxInputBytesPerRequest", offsetof(struct proc_config, max_input_bytes),
          PROC_MAX_BYTES_CEILING },
        { "maxLogBytesPerProcess", offsetof(struct proc_config, max_log_bytes), INT64_MAX },
        { "maxOutputBytes", offsetof(struct proc_config, max_output_bytes),
          PROC_MAX_BYTES_CEILING },
    };
    struct proc_config c;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const json_t *v = json_object_get(body, fields[i].name);
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return err_set(err, ERR_INVALID, "%s must be a positive integer", fields[i].name);
        if (json_integer_value(v) > fields[i].max)
            return err_set(err, ERR_INVALID, "%s must be at most %lld", fields[i].name,
                           (long long)fields[i].max);
        *(int64_t *)(void *)((char *)&c + fields[i].off) = (int64_t)json_integer_value(v);
    }
    if (c.default_run_timeout_ms > c.max_run_timeout_ms)
        return err_set(err, ERR_INVALID, "defaultRunTimeoutMs exceeds maxRunTimeoutMs");
    pthread_mutex_lock(&p->lock);
    p->cfg = c;
    *out = proc_config_json(&p->cfg);
    pthread_mutex_unlock(&p->lock);
    return *out ? 0 : err_set(err, ERR_NOMEM, "out of memory");
}

/* ---- run to completion --------------------------------------------------------------- */

/* A run: the loop holds it until the child's exit, the request until it
 * took the result (refs, under p->lock).  The request sleeps meanwhile
 * (its connection suspended), so no worker waits for a child. */
struct processes_run_job {
    struct processes *p;
    int refs;
    struct processes_run_job *next, *prev; /* p's waiting requests, for the shutdown */
    struct processes_run_job *loop_next, *loop_prev; /* p's running children (loop) */
    void (*notify)(void *arg);             /* under p->lock */
    void *notify_arg;
    int cancelled;                         /* the server stops: answered without it */
    int64_t start_ms;
    struct buf out[2];
    int truncated[2];
    size_t max_output;
    supervisor_proc_t *sp;
    supervisor_timer_t *timer;
    int timed_out;
    int done;
    int has_code;
    int code;
    int64_t duration_ms;
};

/* p->lock held. */
static void run_unref_locked(struct processes_run_job *r)
{
    if (--r->refs > 0)
        return;
    buf_free(&r->out[0]);
    buf_free(&r->out[1]);
    free(r);
}

/* Ends the request's wait (p->lock held): once, whichever comes first of
 * the exit and the shutdown. */
static void run_wake_locked(struct processes_run_job *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else if (r->p->runs == r)
        r->p->runs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
    if (r->notify)
        r->notify(r->notify_arg);
    r->notify = NULL;
}

static void run_on_output(void *arg, int fd, const char *data, size_t len)
{
    struct processes_run_job *r = arg;
    int i = fd == 2;
    size_t room = r->out[i].len < r->max_output ? r->max_output - r->out[i].len : 0;
    if (len > room) {
        r->truncated[i] = 1;
        len = room;
    }
    if (len && buf_append(&r->out[i], data, len) != 0)
        r->truncated[i] = 1;
}

static void run_on_exit(void *arg, const struct supervisor_exit *e)
{
    struct processes_run_job *r = arg;
    supervisor_timer_free(r->timer);
    r->timer = NULL;
    struct processes *p = r->p;
    if (r->loop_prev)
        r->loop_prev->loop_next = r->loop_next;
    else
        p->loop_runs = r->loop_next;
    if (r->loop_next)
        r->loop_next->loop_prev = r->loop_prev;
    r->sp = NULL;
    pthread_mutex_lock(&p->lock);
    r->has_code = !r->timed_out;
    r->code = e->term_signal ? 128 + e->term_signal : (int)e->exit_status;
    r->duration_ms = proc_now_ms() - r->start_ms;
    r->done = 1;
    run_wake_locked(r);
    run_unref_locked(r); /* the loop's */
    pthread_mutex_unlock(&p->lock);
}

static void run_timeout(void *arg)
{
    struct processes_run_job *r = arg;
    r->timed_out = 1;
    if (supervisor_proc_kill(r->sp, SIGKILL) != 0)
        fprintf(stderr, "sandbox-journal: processes/run: the child is gone already\n");
}

struct run_spawn {
    struct processes_run_job *r;
    struct proc_spawn s;
    uint64_t timeout_ms;
};

static void run_spawn_on_loop(uv_loop_t *loop, void *arg)
{
    struct run_spawn *rs = arg;
    struct processes_run_job *r = rs->r;
    if (supervisor_timer_new(loop, run_timeout, r, &r->timer, &rs->s.err) != 0) {
        rs->s.rc = rs->s.err.code;
        return;
    }
    proc_spawn_on_loop(loop, &rs->s);
    if (rs->s.rc) {
        supervisor_timer_free(r->timer);
        r->timer = NULL;
        return;
    }
    r->sp = rs->s.sp;
    struct processes *p = r->p;
    r->loop_next = p->loop_runs;
    if (p->loop_runs)
        p->loop_runs->loop_prev = r;
    p->loop_runs = r;
    if (supervisor_timer_arm(r->timer, rs->timeout_ms, 0, &rs->s.err) != 0 &&
        supervisor_proc_kill(r->sp, SIGKILL) != 0) /* no timeout without a timer: end it */
        fprintf(stderr, "sandbox-journal: processes/run: cannot end the child\n");
}

/* The length of the UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!len || len > n)
        return 0;
    for (size_t k = 1; k < len; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) ||
        (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
        return 0;
    return len;
}

/* The bytes as a JSON string, each byte that is not UTF-8 as U+FFFD.  new. */
static json_t *run_text(const struct buf *b)
{
    struct buf t;
    buf_init(&t);
    const unsigned char *s = (const unsigned char *)(b->data ? b->data : "");
    size_t n = b->len, i = 0;
    int bad = 0;
    while (i < n && !bad) {
        size_t len = utf8_len(s + i, n - i);
        bad = len ? buf_append(&t, (const char *)s + i, len)
                  : buf_append(&t, "\xef\xbf\xbd", 3);
        i += len ? len : 1;
    }
    json_t *v = bad ? NULL : json_stringn(t.data ? t.data : "", t.len);
    buf_free(&t);
    return v;
}

int processes_run_start(processes_t *p, const json_t *body, struct processes_run_job **out,
                        struct err *err)
{
    const char **argv = NULL;
    char **env = NULL;
    const char *cwd = NULL;
    int rc = proc_parse(body, &argv, &env, &cwd, err);
    if (rc)
        return rc;
    const json_t *jt = json_object_get(body, "timeoutMs");
    const json_t *jm = json_object_get(body, "maxOutputBytes");
    pthread_mutex_lock(&p->lock);
    struct proc_config cfg = p->cfg;
    int closing = p->closing;
    pthread_mutex_unlock(&p->lock);
    if ((jt && !json_is_null(jt) && (!json_is_integer(jt) || json_integer_value(jt) < 1)) ||
        (jm && !json_is_null(jm) && (!json_is_integer(jm) || json_integer_value(jm) < 0)))
        rc = err_set(err, ERR_INVALID, "timeoutMs and maxOutputBytes must be positive "
                                       "integers");
    else if (closing)
        rc = err_set(err, ERR_PROC_CONFLICT, "the server is shutting down");
    struct processes_run_job *r = rc ? NULL : calloc(1, sizeof *r);
    if (!rc && !r)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    if (rc) {
        free(argv);
        proc_env_free(env);
        return rc;
    }
    int64_t timeout = json_is_integer(jt) ? (int64_t)json_integer_value(jt)
                                          : cfg.default_run_timeout_ms;
    if (timeout > cfg.max_run_timeout_ms)
        timeout = cfg.max_run_timeout_ms;
    int64_t max_out = json_is_integer(jm) ? (int64_t)json_integer_value(jm)
                                          : cfg.max_output_bytes;
    if (max_out > cfg.max_output_bytes)
        max_out = cfg.max_output_bytes;
    r->p = p;
    r->refs = 2; /* the loop's (until the exit) and the request's */
    r->max_output = (size_t)max_out;
    buf_init(&r->out[0]);
    buf_init(&r->out[1]);
    struct supervisor_proc_callbacks cb = { .on_output = run_on_output,
                                            .on_exit = run_on_exit, .arg = r };
    struct run_spawn rs = {
        .r = r,
        .timeout_ms = (uint64_t)timeout,
        .s = { .o = { .file = argv[0], .args = argv, .env = env, .cwd = cwd,
                      .label = "processes/run" },
               .cb = &cb, .close_stdin = 1 },
    };
    r->start_ms = proc_now_ms();
    /* Listed before the child can end, so the shutdown finds every run. */
    pthread_mutex_lock(&p->lock);
    r->next = p->runs;
    if (p->runs)
        p->runs->prev = r;
    p->runs = r;
    pthread_mutex_unlock(&p->lock);
    rc = supervisor_call(p->supervisor, run_spawn_on_loop, &rs, err);
    if (rc == 0 && rs.s.rc)
        *err = rs.s.err, rc = rs.s.rc;
    free(argv);
    proc_env_free(env);
    if (rc) {
        pthread_mutex_lock(&p->lock);
        run_wake_locked(r);
        r->refs = 1; /* no child: nothing else holds it */
        run_unref_locked(r);
        pthread_mutex_unlock(&p->lock);
        return rc;
    }
    *out = r;
    return 0;
}

int processes_run_notify(struct processes_run_job *r, void (*fn)(void *arg), void *arg)
{
    struct processes *p = r->p;
    pthread_mutex_lock(&p->lock);
    int ended = r->done || r->cancelled;
    if (!ended) {
        r->notify = fn;
        r->notify_arg = arg;
    }
    pthread_mutex_unlock(&p->lock);
    return ended;
}

int processes_run_result(struct processes_run_job *r, json_t **out, struct err *err)
{
    struct processes *p = r->p;
    pthread_mutex_lock(&p->lock);
    int done = r->done;
    pthread_mutex_unlock(&p->lock);
    if (!done)
        return err_set(err, ERR_PROC_CONFLICT, "the server is shutting down");
    /* Done: the loop has finished with the buffers. */
    json_t *o = json_pack("{s:I,s:o,s:b,s:o,s:b,s:b}", "durationMs",
                          (json_int_t)r->duration_ms, "stdout", run_text(&r->out[0]),
                          "stdoutTruncated", r->truncated[0], "stderr", run_text(&r->out[1]),
                          "stderrTruncated", r->truncated[1], "timedOut", r->timed_out);
    if (o && json_object_set_new(o, "exitCode",
                                 r->has_code ? json_integer(r->code) : json_null()) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (!o)
        return err_set(err, ERR_NOMEM, "out of memory");
    *out = o;
    return 0;
}

void processes_run_release(struct processes_run_job *r)
{
    if (!r)
        return;
    struct processes *p = r->p;
    pthread_mutex_lock(&p->lock);
    r->notify = NULL; /* the request is gone: nothing to wake */
    run_unref_locked(r);
    pthread_mutex_unlock(&p->lock);
}

/* ---- shutting down ---------------------------------------------------------------- */

static void proc_close_on_loop(uv_loop_t *loop, void *arg)
{
    (void)loop; /* each child's handle knows its loop */
    struct processes *p = arg;
    pthread_mutex_lock(&p->lock);
    struct wproc *w = p->head;
    pthread_mutex_unlock(&p->lock);
    /* The list only grows at its tail, and only under `closing` no more:
     * walking it unlocked from the loop is safe once closing is set. */
    for (; w; w = w->next) {
        if (!w->sp)
            continue;
        pthread_mutex_lock(&p->lock);
        int was = w->paused;
        w->paused = 0;
        pthread_mutex_unlock(&p->lock);
        if (was)
            supervisor_proc_resume_output(w->sp);
        supervisor_proc_stop(w->sp, PROC_STOP_GRACE_MS);
    }
    for (struct processes_run_job *r = p->loop_runs; r; r = r->loop_next)
        supervisor_proc_stop(r->sp, PROC_STOP_GRACE_MS);
}

void processes_close(processes_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->closing = 1;
    /* Their requests are answered now, before the listener stops; the
     * children are the loop's to end. */
    while (p->runs) {
        p->runs->cancelled = 1;
        run_wake_locked(p->runs);
    }
    pthread_mutex_unlock(&p->lock);
    struct err err;
    if (supervisor_call(p->supervisor, proc_close_on_loop, p, &err) != 0)
        fprintf(stderr, "sandbox-journal: processes: stopping children: %s\n", err.msg);
}
