/* The Codex adapter: the process side (the pure part is in codex_parse.c,
 * see codex.h).
 *
 * Process: one `codex app-server` for the whole server, started when the
 * first Codex session needs it, speaking JSON-RPC over stdio (one object
 * per line).  Each session is one Codex thread: thread/start when the
 * session is created (its id is the session's native id), turn/start per
 * message, thread/resume first when the app-server does not know the thread
 * (after a crash of the app-server or a restart of this server; Codex keeps
 * threads under CODEX_HOME, a private directory in the data dir).
 *
 * Threads.  Everything about the app-server lives on the supervisor loop in
 * the adapter's instance (process, request ids, pending requests, the
 * thread -> session map); HTTP workers post jobs to it.  Only create waits
 * for the loop (for thread/start's answer, bounded, with no lock held).
 * serverStatus is read by HTTP workers from the instance's restart record
 * (supervisor_restart.h), which has its own lock.
 *
 * Failures.  An app-server that exits while it should run is restarted with
 * a back-off (supervisor_restart.h: 0.5 s doubling to 30 s, reset after a
 * minute of uptime); every
 * session with a turn under way gets an error event (which ends its turn),
 * and every thread is resumed on its next message.  One that refuses to
 * initialize, or leaves a request unanswered for CODEX_ANSWER_TIMEOUT_MS,
 * is killed and takes the same path.  Shutdown stops it (supervisor_proc_stop:
 * EOF, SIGTERM, SIGKILL after CODEX_KILL_MS) and journals nothing.
 */
#include "adapters/codex.h"

#include "agents/adapter.h"
#include "agents/agent_proc.h"
#include "agents/agent_env.h"
#include "agents/user_config.h"
#include "agents/mcp_config.h"
#include "base/buf.h"
#include "base/err.h"
#include "events/event.h"
#include "agents/supervisor.h"
#include "agents/supervisor_restart.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CODEX_KILL_MS 3000
#define CODEX_START_TIMEOUT_MS 60000
/* The app-server answers every request at once (a turn's work streams as
 * notifications afterwards), so a request unanswered this long means a
 * hung process: it is killed, and the crash path restarts it.  Without
 * this, a hung app-server would stall every Codex session for good.
 * SJ_CODEX_ANSWER_TIMEOUT_MS overrides it (tests). */
#define CODEX_ANSWER_TIMEOUT_MS 30000
#define CODEX_MAX_LINE (64u * 1024 * 1024)

/* ======================================================================
 * The process side: one shared app-server
 * ====================================================================== */

/* An approval the app-server asked for and waits on (its permission is
 * pending in the session). */
struct codex_approval {
    char *permission_id;
    char *action;             /* commandExecution, fileChange */
    struct codex_approval *next;
};

/* A session bound to its thread (after its first message). */
struct codex_thread {
    char *thread_id;
    struct adapter_ctx *ctx;
    int loaded;               /* the running app-server knows the thread */
    int turn_active;
    char turn_id[160];
    struct codex_approval *approvals;
    /* Items started and not completed yet: native item id -> the started
     * item.  A crash completes them as failed, so that no client waits on
     * an item whose process is gone.  NULL until the first one. */
    json_t *open_items;
    struct codex_thread *next;
};

/* A client request waiting for its response. */
enum codex_req_kind { CODEX_REQ_INIT, CODEX_REQ_START, CODEX_REQ_RESUME, CODEX_REQ_TURN,
                      CODEX_REQ_OTHER };

struct codex_waiter; /* create's wait for thread/start */

struct codex_pending {
    long long id;
    enum codex_req_kind kind;
    struct codex_waiter *waiter;  /* START */
    struct codex_thread *thread;  /* RESUME, TURN */
    char *text;                   /* RESUME: the turn to start once resumed */
    long long sent_ms;            /* monotonic */
    struct codex_pending *next;
};

/* Work posted by HTTP workers. */
enum codex_job_kind { CODEX_JOB_START, CODEX_JOB_TURN, CODEX_JOB_APPROVAL, CODEX_JOB_STOP_TURN };

struct codex_instance;

struct codex_job {
    enum codex_job_kind kind;
    struct codex_instance *inst;
    struct adapter_ctx *ctx;    /* TURN, STOP_TURN */
    char *thread_id;            /* TURN, STOP_TURN */
    char *text;                 /* TURN */
    json_t *params;             /* START, TURN: thread/start or thread/resume params */
    struct codex_waiter *waiter; /* START */
    char *prefix;               /* APPROVAL: the app-server it was asked by */
    long long request_id;       /* APPROVAL */
    char *reply;                /* APPROVAL */
    struct codex_job *next;     /* deferred while the app-server restarts */
};

struct codex_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;                   /* the waiting worker + the loop */
    int done;
    int rc;
    char thread_id[128];
    char message[200];
};

/* The adapter's instance: one app-server for all the Codex sessions of a
 * server. */
struct codex_instance {
    /* Set by instance_new, read-only after. */
    uv_loop_t *loop;
    const char *data_dir;       /* borrowed from the settings */
    long long answer_timeout_ms;
    /* Any thread: serverStatus and the back-off (its own lock). */
    supervisor_restart_t *restart;
    /* Loop only. */
    char *binary;               /* the last binary a job named */
    supervisor_proc_t *proc;
    long long next_id;
    char prefix[32];            /* permission id prefix of this app-server */
    int down;                   /* server shutdown: never start again */
    /* Made by the first job on the loop (codex_ensure); NULL until then and
     * after shutdown. */
    supervisor_timer_t *restart_timer; /* armed: a restart is pending */
    supervisor_timer_t *answer_timer;  /* armed while the app-server runs */
    int unanswered;             /* killed for not answering: says so at exit */
    char refused[160];          /* killed for refusing to initialize: why */
    struct codex_thread *threads;
    struct codex_pending *pending;
    struct codex_job *deferred;
    struct codex_job **deferred_tail;
};

static long long codex_now_ms(int monotonic)
{
    struct timespec ts;
    clock_gettime(monotonic ? CLOCK_MONOTONIC : CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *codex_server_status_json(void *instance)
{
    struct codex_instance *inst = instance;
    return supervisor_restart_status_json(inst ? inst->restart : NULL);
}

static const char *codex_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void codex_log(const char *what, const char *detail)
{
    fprintf(stderr, "sandbox-journal: codex app-server: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
}

/* ---- waiters ------------------------------------------------------------- */

static struct codex_waiter *codex_waiter_new(void)
{
    struct codex_waiter *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        return NULL;
    }
    if (pthread_cond_init(&w->cond, NULL) != 0) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    w->refs = 2;
    return w;
}

static void codex_waiter_unref(struct codex_waiter *w)
{
    pthread_mutex_lock(&w->lock);
    int last = --w->refs == 0;
    pthread_mutex_unlock(&w->lock);
    if (last) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
    }
}

/* Reports the outcome and drops the loop's reference. */
static void codex_waiter_finish(struct codex_waiter *w, int rc, const char *thread_id,
                                const char *message)
{
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    w->rc = rc;
    if (thread_id)
        snprintf(w->thread_id, sizeof w->thread_id, "%s", thread_id);
    if (message)
        snprintf(w->message, sizeof w->message, "%s", message);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    codex_waiter_unref(w);
}

/* ---- writing ---------------------------------------------------------------- */

static int codex_write_json(struct codex_instance *inst, json_t *v /* stolen */)
{
    assert(supervisor_on_loop(inst->loop));
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    struct err err;
    int rc = -1;
    if (text && inst->proc) {
        size_t n = strlen(text);
        char *line = realloc(text, n + 2);
        if (line) {
            text = line;
            text[n] = '\n';
            text[n + 1] = '\0';
            rc = supervisor_proc_write(inst->proc, text, n + 1, &err);
            if (rc)
                codex_log("write failed", err.msg);
        }
    }
    free(text);
    return rc;
}

/* Sends a request; `p` (taken) is remembered for its response. */
static int codex_request_send(struct codex_instance *inst, const char *method,
                              json_t *params /* stolen */, struct codex_pending *p)
{
    p->id = ++inst->next_id;
    p->sent_ms = codex_now_ms(1);
    json_t *v = json_pack("{s:I,s:s,s:o}", "id", (json_int_t)p->id, "method", method, "params",
                          params ? params : json_object());
    if (codex_write_json(inst, v) != 0)
        return -1;
    p->next = inst->pending;
    inst->pending = p;
    return 0;
}

static struct codex_pending *codex_pending_take(struct codex_instance *inst, long long id)
{
    for (struct codex_pending **pp = &inst->pending; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct codex_pending *p = *pp;
            *pp = p->next;
            return p;
        }
    }
    return NULL;
}

static void codex_pending_free(struct codex_pending *p)
{
    free(p->text);
    free(p);
}

/* ---- sessions ------------------------------------------------------------------ */

static struct codex_thread *codex_thread_find(struct codex_instance *inst,
                                              const char *thread_id)
{
    for (struct codex_thread *t = inst->threads; t; t = t->next)
        if (strcmp(t->thread_id, thread_id) == 0)
            return t;
    return NULL;
}

/* Keeps t->open_items up to date with what `conversions` start and
 * complete.  Memory failures only lose a failed completion after a crash. */
static void codex_track_items(struct codex_thread *t, const json_t *conversions)
{
    size_t i;
    const json_t *c;
    json_array_foreach(conversions, i, c) {
        const char *type = codex_str(c, "type");
        const json_t *item = json_object_get(json_object_get(c, "data"), "item");
        const char *native = codex_str(item, "native_item_id");
        if (!type || !native)
            continue;
        if (strcmp(type, "item.started") == 0) {
            if (!t->open_items && !(t->open_items = json_object()))
                return;
            if (json_object_set_new(t->open_items, native, json_deep_copy(item)) != 0)
                codex_log("cannot track an item", native);
        } else if (strcmp(type, "item.completed") == 0 && t->open_items) {
            json_object_del(t->open_items, native); /* absent: nothing to do */
        }
    }
}

static void codex_emit(struct codex_thread *t, const json_t *conversions)
{
    if (!t || !t->ctx || !json_array_size(conversions))
        return;
    codex_track_items(t, conversions);
    struct err err;
    if (t->ctx->host->emit_async(t->ctx, conversions, &err) != 0)
        fprintf(stderr, "sandbox-journal: session %s: codex event not journaled: %s\n",
                t->ctx->session_id, err.msg);
}

/* Remembers the approval that `conversions` (a permission.requested) asks
 * the session for.  Memory failures only lose the withdrawal on exit. */
static void codex_approval_add(struct codex_thread *t, const json_t *conversions)
{
    const json_t *data = json_object_get(json_array_get(conversions, 0), "data");
    const char *id = codex_str(data, "permission_id");
    const char *action = codex_str(data, "action");
    struct codex_approval *a = id && action ? calloc(1, sizeof *a) : NULL;
    if (!a)
        return;
    a->permission_id = strdup(id);
    a->action = strdup(action);
    if (!a->permission_id || !a->action) {
        free(a->permission_id);
        free(a->action);
        free(a);
        return;
    }
    a->next = t->approvals;
    t->approvals = a;
}

/* Forgets the approval `permission_id` (answered) in whichever thread. */
static void codex_approval_forget(struct codex_instance *inst, const char *permission_id)
{
    for (struct codex_thread *t = inst->threads; t; t = t->next) {
        for (struct codex_approval **pp = &t->approvals; *pp; pp = &(*pp)->next) {
            struct codex_approval *a = *pp;
            if (strcmp(a->permission_id, permission_id) != 0)
                continue;
            *pp = a->next;
            free(a->permission_id);
            free(a->action);
            free(a);
            return;
        }
    }
}

/* The app-server that asked is gone: its approvals can never be answered.
 * Journals each as resolved denied (when `journal`) and forgets them. */
static void codex_approvals_withdraw(struct codex_thread *t, int journal)
{
    json_t *list = journal ? json_array() : NULL;
    while (t->approvals) {
        struct codex_approval *a = t->approvals;
        t->approvals = a->next;
        if (list &&
            json_array_append_new(list, event_synthetic(event_conversion(
                                            "permission.resolved",
                                            event_permission_data(a->permission_id, a->action,
                                                                  "denied", NULL)))) != 0)
            codex_log("out of memory: a withdrawn approval is not journaled", NULL);
        free(a->permission_id);
        free(a->action);
        free(a);
    }
    codex_emit(t, list);
    json_decref(list);
}

/* Tells the session its turn failed: an error event (which ends its turn). */
static void codex_thread_error(struct codex_thread *t, const char *message, const char *code)
{
    json_t *list = json_array();
    const char *native;
    json_t *item;
    json_object_foreach(t->open_items, native, item) {
        json_t *failed = json_deep_copy(item);
        if (failed && json_object_set_new(failed, "status", json_string("failed")) != 0) {
            json_decref(failed);
            failed = NULL;
        }
        json_t *done = failed ? event_synthetic(event_conversion(
                                    "item.completed", event_item_data(failed)))
                              : NULL;
        if (!done || json_array_append_new(list, done) != 0)
            codex_log("cannot close an item", native);
    }
    json_decref(t->open_items);
    t->open_items = NULL;
    json_t *c = event_synthetic(event_conversion("error", event_error_data(message, code, NULL)));
    if (list && c && json_array_append_new(list, c) == 0) {
        c = NULL;
        codex_emit(t, list);
    }
    json_decref(c);
    json_decref(list);
    t->turn_active = 0;
}

static json_t *codex_turn_params(const char *thread_id, const char *text)
{
    return json_pack("{s:s,s:[{s:s,s:s}]}", "threadId", thread_id, "input", "type", "text",
                     "text", text);
}

/* ---- the process --------------------------------------------------------------- */

static int codex_spawn_binary(struct codex_instance *inst, struct err *err);
static void codex_job_run(uv_loop_t *loop, void *arg);
static struct codex_thread *codex_bind(struct codex_instance *inst, struct adapter_ctx *ctx,
                                       const char *thread_id);
static void codex_job_free(struct codex_job *j);

static void codex_restart_fire(void *arg)
{
    struct codex_instance *inst = arg;
    assert(supervisor_on_loop(inst->loop));
    if (inst->down || inst->proc)
        return;
    struct err err;
    if (codex_spawn_binary(inst, &err) != 0) {
        codex_log("restart failed", err.msg);
        /* The next job tries again at once: its caller hears why. */
        supervisor_restart_failed(inst->restart, err.msg);
    }
    /* Deferred jobs run now, or fail for want of a server. */
    struct codex_job *j = inst->deferred;
    inst->deferred = NULL;
    inst->deferred_tail = &inst->deferred;
    while (j) {
        struct codex_job *next = j->next;
        j->next = NULL;
        codex_job_run(inst->loop, j);
        j = next;
    }
}

/* 1 while a restart is pending: jobs wait for it. */
static int codex_restarting(const struct codex_instance *inst)
{
    return inst->restart_timer && supervisor_timer_armed(inst->restart_timer);
}

static void codex_schedule_restart(struct codex_instance *inst, uint64_t delay)
{
    struct err err;
    if (inst->down || codex_restarting(inst))
        return;
    if (!inst->restart_timer)
        codex_log("no restart timer: the next job starts the app-server", NULL);
    else if (supervisor_timer_arm(inst->restart_timer, delay, 0, &err) != 0)
        codex_log("cannot schedule the restart", err.msg);
}

static void codex_on_line(void *arg, const char *line, size_t len, int cut)
{
    struct codex_instance *inst = arg;
    assert(supervisor_on_loop(inst->loop));
    struct adapter_codex_line l;
    struct err err;
    if (adapter_codex_parse_line(line, len, cut, inst->prefix, &l, &err) != 0) {
        codex_log("line dropped", err.msg);
        return;
    }
    if (l.kind == ADAPTER_CODEX_RESPONSE) {
        struct codex_pending *p = codex_pending_take(inst, l.id);
        const char *emsg = l.error ? codex_str(l.error, "message") : NULL;
        if (!p) {
            /* Not ours (or after a restart): nothing waits for it. */
        } else if (p->kind == CODEX_REQ_START) {
            const char *tid = codex_str(json_object_get(l.result, "thread"), "id");
            if (!tid)
                tid = codex_str(l.result, "threadId");
            /* Known to this app-server from now on (no resume needed); the
             * session binds to it with its first message. */
            struct codex_thread *t = tid ? codex_bind(inst, NULL, tid) : NULL;
            if (t)
                t->loaded = 1;
            codex_waiter_finish(p->waiter, tid ? 0 : ERR_AGENT_EXITED, tid,
                                tid ? NULL : emsg ? emsg : "thread/start answered no thread id");
        } else if (p->kind == CODEX_REQ_RESUME && p->thread) {
            if (l.error) {
                char msg[256];
                snprintf(msg, sizeof msg, "codex could not resume the thread: %s",
                         emsg ? emsg : "error");
                codex_thread_error(p->thread, msg, "resume_failed");
            } else {
                p->thread->loaded = 1;
                struct codex_pending *turn = calloc(1, sizeof *turn);
                if (turn) {
                    turn->kind = CODEX_REQ_TURN;
                    turn->thread = p->thread;
                }
                if (!turn || codex_request_send(inst, "turn/start",
                                                codex_turn_params(p->thread->thread_id, p->text),
                                                turn) != 0) {
                    free(turn);
                    codex_thread_error(p->thread, "could not start the turn", "turn_failed");
                }
            }
        } else if (p->kind == CODEX_REQ_TURN && p->thread && l.error) {
            char msg[256];
            snprintf(msg, sizeof msg, "codex refused the turn: %s", emsg ? emsg : "error");
            codex_thread_error(p->thread, msg, "turn_failed");
        } else if (p->kind == CODEX_REQ_INIT && !l.error) {
            /* Running means answering: a process that exits or refuses
             * before this never shows as running. */
            supervisor_restart_running(inst->restart);
        } else if (p->kind == CODEX_REQ_INIT && l.error) {
            /* An app-server that cannot initialize answers nothing else
             * either; left up, it would fail every create for good.  Killed,
             * it goes the crash path: restarted with back-off. */
            snprintf(inst->refused, sizeof inst->refused, "%.150s",
                     emsg ? emsg : "error");
            if (inst->proc && supervisor_proc_kill(inst->proc, SIGKILL) != 0)
                codex_log("initialize failed", emsg);
        }
        if (p)
            codex_pending_free(p);
    } else if (l.kind == ADAPTER_CODEX_REQUEST) {
        struct codex_thread *t = l.thread_id[0] ? codex_thread_find(inst, l.thread_id) : NULL;
        if (!l.is_approval || !t) {
            /* Never leave the app-server waiting on an answer nobody gives. */
            json_t *e = json_pack("{s:I,s:{s:i,s:s}}", "id", (json_int_t)l.id, "error", "code",
                                  -32601, "message",
                                  t || !l.is_approval ? "not supported by sandbox-journal"
                                                      : "no session for this thread");
            if (codex_write_json(inst, e) != 0)
                codex_log("cannot answer a request", l.method);
        }
        codex_emit(t, l.conversions);
        if (l.is_approval && t && t->ctx)
            codex_approval_add(t, l.conversions);
    } else if (l.kind == ADAPTER_CODEX_NOTIFICATION) {
        struct codex_thread *t = l.thread_id[0] ? codex_thread_find(inst, l.thread_id) : NULL;
        if (t && l.turn_started) {
            t->turn_active = 1;
            snprintf(t->turn_id, sizeof t->turn_id, "%s", l.turn_id);
        }
        if (t && l.turn_done)
            t->turn_active = 0;
        codex_emit(t, l.conversions);
    } else if (json_array_size(l.conversions)) {
        char shown[200]; /* a flood must not flood the log too */
        snprintf(shown, sizeof shown, "%.*s%s", (int)(len > 150 ? 150 : len), line,
                 len > 150 || cut ? "..." : "");
        codex_log("unparsed line", shown);
    }
    adapter_codex_line_clear(&l);
}

static void codex_on_exit(void *arg, const struct supervisor_exit *e)
{
    struct codex_instance *inst = arg;
    assert(supervisor_on_loop(inst->loop));
    int expected = supervisor_proc_stopping(inst->proc); /* our stop */
    inst->proc = NULL;
    if (inst->answer_timer)
        supervisor_timer_disarm(inst->answer_timer);
    char message[256];
    if (inst->unanswered)
        snprintf(message, sizeof message,
                 "codex app-server did not answer a request within %lld ms and was killed",
                 inst->answer_timeout_ms);
    else if (inst->refused[0])
        snprintf(message, sizeof message, "codex app-server refused to initialize: %s",
                 inst->refused);
    else if (e->term_signal)
        snprintf(message, sizeof message, "codex app-server killed by signal %d",
                 e->term_signal);
    else
        snprintf(message, sizeof message, "codex app-server exited with status %lld",
                 (long long)e->exit_status);
    if (!expected)
        agent_proc_append_last_words(message, sizeof message, e);
    /* Every request in flight dies with it. */
    while (inst->pending) {
        struct codex_pending *p = inst->pending;
        inst->pending = p->next;
        if (p->kind == CODEX_REQ_START)
            codex_waiter_finish(p->waiter, ERR_AGENT_EXITED, NULL, message);
        codex_pending_free(p);
    }
    for (struct codex_thread *t = inst->threads; t; t = t->next) {
        t->loaded = 0;
        codex_approvals_withdraw(t, !inst->down);
        if (t->turn_active && !inst->down)
            codex_thread_error(t, message, "server_exit");
    }
    if (inst->down || expected) {
        supervisor_restart_stopped(inst->restart);
        return;
    }
    inst->unanswered = 0;
    inst->refused[0] = '\0';
    codex_log(message, NULL);
    codex_schedule_restart(inst, supervisor_restart_crashed(inst->restart, message));
}

/* ---- starting the app-server ------------------------------------------------------ */

static void codex_answer_check(void *arg)
{
    struct codex_instance *inst = arg;
    assert(supervisor_on_loop(inst->loop));
    long long now = codex_now_ms(1);
    for (struct codex_pending *p = inst->pending; p; p = p->next) {
        if (now - p->sent_ms < inst->answer_timeout_ms)
            continue;
        if (inst->proc && !inst->unanswered &&
            supervisor_proc_kill(inst->proc, SIGKILL) == 0)
            inst->unanswered = 1;
        return;
    }
}

/* Starts the check of unanswered requests for a freshly spawned app-server. */
static int codex_answer_watch(struct codex_instance *inst, struct err *err)
{
    uint64_t every = (uint64_t)(inst->answer_timeout_ms / 4 ? inst->answer_timeout_ms / 4 : 1);
    return supervisor_timer_arm(inst->answer_timer, every, every, err);
}

/* Appends `-c key="value"` with TOML string escaping. */
static int codex_config_arg(const char **args, size_t *n, char **owned, size_t *n_owned,
                            const char *key, const char *value)
{
    struct buf b;
    buf_init(&b);
    int rc = buf_printf(&b, "%s=\"", key);
    for (const char *p = value; !rc && *p; p++)
        rc = (*p == '"' || *p == '\\') ? buf_printf(&b, "\\%c", *p) : buf_append(&b, p, 1);
    if (!rc)
        rc = buf_puts(&b, "\"");
    char *s = rc ? NULL : buf_steal(&b);
    buf_free(&b);
    if (!s)
        return -1;
    owned[(*n_owned)++] = s;
    args[(*n)++] = "-c";
    args[(*n)++] = s;
    return 0;
}

static int codex_spawn_binary(struct codex_instance *inst, struct err *err)
{
    assert(supervisor_on_loop(inst->loop));
    char home[PATH_MAX];
    int rc = agent_env_home(inst->data_dir, "codex", home, err);
    if (rc)
        return rc;
    if (!inst->binary)
        return err_set(err, ERR_NOT_INSTALLED, "agent not installed: codex");
    /* The user's providers and model go into CODEX_HOME's config.toml; the
     * -c options below (OPENAI_BASE_URL) override them. */
    struct user_config_codex user;
    struct err uerr;
    if (user_config_codex_write(home, &user, &uerr) != 0)
        codex_log("the user's config.toml is not carried over", uerr.msg);
    const char *args[32];
    char *owned[8];
    size_t n = 0, n_owned = 0;
    args[n++] = inst->binary;
    args[n++] = "app-server";
    const char *base_url = getenv("OPENAI_BASE_URL");
    int failed = 0;
    if (base_url && *base_url) {
        /* A model endpoint of the operator's (a gateway, or the tests' fake):
         * a provider of our own pointing at it, speaking the Responses API. */
        args[n++] = "-c";
        args[n++] = "model_provider=\"sandbox_journal\"";
        failed |= codex_config_arg(args, &n, owned, &n_owned, "model_providers.sandbox_journal.name",
                                   "sandbox-journal") != 0;
        failed |= codex_config_arg(args, &n, owned, &n_owned,
                                   "model_providers.sandbox_journal.base_url", base_url) != 0;
        failed |= codex_config_arg(args, &n, owned, &n_owned,
                                   "model_providers.sandbox_journal.env_key", "OPENAI_API_KEY") != 0;
        failed |= codex_config_arg(args, &n, owned, &n_owned,
                                   "model_providers.sandbox_journal.wire_api", "responses") != 0;
    }
    args[n++] = "-c";
    args[n++] = "analytics.enabled=false";
    /* No plugin lookups (github.com, chatgpt.com): only the model endpoint. */
    args[n++] = "--disable";
    args[n++] = "plugins";
    args[n] = NULL;

    struct agent_env env;
    agent_env_init(&env);
    agent_env_pass_common(&env);
    for (size_t i = 0; i < user.n_env_keys; i++)
        agent_env_pass(&env, user.env_keys[i]);
    user_config_codex_free(&user);
    agent_env_set(&env, "HOME", home);
    agent_env_set(&env, "CODEX_HOME", home);
    agent_env_credential(&env, "openai", "OPENAI_API_KEY", NULL);
    agent_env_pass(&env, "CODEX_API_KEY");
    char *const *envp = agent_env_finish(&env, err);
    if (failed || !envp) {
        for (size_t i = 0; i < n_owned; i++)
            free(owned[i]);
        agent_env_free(&env);
        return failed ? err_set(err, ERR_NOMEM, "out of memory") : ERR_NOMEM;
    }
    struct supervisor_proc_options po = {
        .file = inst->binary, .args = args, .env = envp, .cwd = home,
        .max_line_bytes = CODEX_MAX_LINE,
    };
    struct supervisor_proc_callbacks cb = { .on_line = codex_on_line, .on_exit = codex_on_exit,
                                            .arg = inst };
    rc = supervisor_proc_spawn(inst->loop, &po, &cb, &inst->proc, err);
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    agent_env_free(&env);
    if (rc) {
        inst->proc = NULL;
        return rc;
    }
    supervisor_restart_started(inst->restart);
    inst->unanswered = 0;
    inst->refused[0] = '\0';
    if ((rc = codex_answer_watch(inst, err)) != 0)
        return rc;
    snprintf(inst->prefix, sizeof inst->prefix, "%lld", codex_now_ms(0));
    /* The handshake; requests written after it are served in order. */
    struct codex_pending *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(err, ERR_NOMEM, "out of memory");
    p->kind = CODEX_REQ_INIT;
    if (codex_request_send(inst, "initialize",
                           json_pack("{s:{s:s,s:s,s:s}}", "clientInfo", "name", "sandbox-journal",
                                     "title", "sandbox-journal", "version", "0.1.0"),
                           p) != 0 ||
        codex_write_json(inst, json_pack("{s:s}", "method", "initialized")) != 0) {
        codex_pending_take(inst, p->id); /* unlinks it if it was sent */
        free(p);
        return err_set(err, ERR_INTERNAL, "cannot talk to the codex app-server");
    }
    return 0;
}

/* The app-server is running (or is being restarted: 1, the job waits). */
static int codex_ensure(struct codex_instance *inst, const char *binary, struct err *err)
{
    assert(supervisor_on_loop(inst->loop));
    if (binary) {
        char *copy = strdup(binary);
        if (!copy)
            return err_set(err, ERR_NOMEM, "out of memory");
        free(inst->binary);
        inst->binary = copy;
    }
    if (inst->down)
        return err_set(err, ERR_INVALID, "the server is shutting down");
    if (inst->proc)
        return 0;
    if (codex_restarting(inst))
        return 1;
    /* The timers are made here, on the loop, by the first job. */
    int rc = 0;
    if (!inst->restart_timer)
        rc = supervisor_timer_new(inst->loop, codex_restart_fire, inst, &inst->restart_timer, err);
    if (!rc && !inst->answer_timer)
        rc = supervisor_timer_new(inst->loop, codex_answer_check, inst, &inst->answer_timer, err);
    return rc ? rc : codex_spawn_binary(inst, err);
}

/* ---- jobs ------------------------------------------------------------------------- */

static void codex_job_free(struct codex_job *j)
{
    if (!j)
        return;
    free(j->thread_id);
    free(j->text);
    json_decref(j->params);
    free(j->prefix);
    free(j->reply);
    free(j);
}

static struct codex_thread *codex_bind(struct codex_instance *inst, struct adapter_ctx *ctx,
                                       const char *thread_id)
{
    struct codex_thread *t = codex_thread_find(inst, thread_id);
    if (t) {
        if (ctx)
            t->ctx = ctx;
        return t;
    }
    t = calloc(1, sizeof *t);
    if (!t || !(t->thread_id = strdup(thread_id))) {
        free(t);
        return NULL;
    }
    t->ctx = ctx;
    t->next = inst->threads;
    inst->threads = t;
    return t;
}

static void codex_job_run(uv_loop_t *loop, void *arg)
{
    (void)loop; /* the instance knows its loop */
    struct codex_job *j = arg;
    struct codex_instance *inst = j->inst;
    assert(supervisor_on_loop(inst->loop));
    struct err err;
    err_clear(&err);
    int rc;
    switch (j->kind) {
    case CODEX_JOB_START: {
        rc = codex_ensure(inst, j->text, &err);
        if (rc == 1) {
            *inst->deferred_tail = j;
            inst->deferred_tail = &j->next;
            return;
        }
        struct codex_pending *p = rc ? NULL : calloc(1, sizeof *p);
        if (p) {
            p->kind = CODEX_REQ_START;
            p->waiter = j->waiter;
            json_t *params = j->params;
            j->params = NULL;
            if (codex_request_send(inst, "thread/start", params, p) != 0) {
                free(p);
                p = NULL;
                err_set(&err, ERR_AGENT_EXITED, "cannot talk to the codex app-server");
            }
        } else if (!rc) {
            err_set(&err, ERR_NOMEM, "out of memory");
        }
        if (!p)
            codex_waiter_finish(j->waiter, err.code ? err.code : ERR_INTERNAL, NULL, err.msg);
        break;
    }
    case CODEX_JOB_TURN: {
        rc = codex_ensure(inst, j->prefix, &err);
        if (rc == 1) {
            *inst->deferred_tail = j;
            inst->deferred_tail = &j->next;
            return;
        }
        struct codex_thread *t = codex_bind(inst, j->ctx, j->thread_id);
        if (!t) {
            codex_log("out of memory: turn dropped", NULL);
            break;
        }
        if (rc) {
            codex_thread_error(t, err.msg, "server_unavailable");
            break;
        }
        t->turn_active = 1;
        struct codex_pending *p = calloc(1, sizeof *p);
        if (!p) {
            codex_thread_error(t, "out of memory", "turn_failed");
            break;
        }
        p->thread = t;
        if (t->loaded) {
            p->kind = CODEX_REQ_TURN;
            rc = codex_request_send(inst, "turn/start", codex_turn_params(t->thread_id, j->text),
                                    p);
        } else {
            /* New to this app-server (a restart of either side): resume the
             * thread from CODEX_HOME first, then start the turn. */
            p->kind = CODEX_REQ_RESUME;
            p->text = j->text;
            j->text = NULL;
            json_t *params = j->params;
            j->params = NULL;
            rc = codex_request_send(inst, "thread/resume", params, p);
        }
        if (rc) {
            codex_pending_free(p);
            codex_thread_error(t, "cannot talk to the codex app-server", "turn_failed");
        }
        break;
    }
    case CODEX_JOB_APPROVAL: {
        if (!inst->proc || strcmp(j->prefix, inst->prefix) != 0) {
            /* Asked by an app-server that is gone: its request died with it. */
            codex_log("approval not forwarded: the app-server that asked is gone", NULL);
            break;
        }
        char *line = adapter_codex_decision_line(j->request_id, j->reply);
        if (!line || supervisor_proc_write(inst->proc, line, strlen(line), &err) != 0)
            codex_log("approval not forwarded", line ? err.msg : "out of memory");
        free(line);
        char permission_id[128];
        snprintf(permission_id, sizeof permission_id, "%s-%lld", j->prefix, j->request_id);
        codex_approval_forget(inst, permission_id);
        break;
    }
    case CODEX_JOB_STOP_TURN: {
        struct codex_thread *t = codex_thread_find(inst, j->thread_id);
        if (!t)
            break;
        if (t->turn_active && inst->proc && t->turn_id[0]) {
            struct codex_pending *p = calloc(1, sizeof *p);
            if (p) {
                p->kind = CODEX_REQ_OTHER;
                if (codex_request_send(inst, "turn/interrupt",
                                       json_pack("{s:s,s:s}", "threadId", t->thread_id, "turnId",
                                                 t->turn_id),
                                       p) != 0)
                    free(p);
            }
        }
        t->ctx = NULL; /* terminated: later events of the thread are not journaled */
        codex_approvals_withdraw(t, 0);
        t->turn_active = 0;
        break;
    }
    }
    codex_job_free(j);
}

static void codex_shutdown_shared(void *instance)
{
    struct codex_instance *inst = instance;
    assert(supervisor_on_loop(inst->loop));
    inst->down = 1;
    supervisor_timer_free(inst->restart_timer);
    inst->restart_timer = NULL;
    supervisor_timer_free(inst->answer_timer);
    inst->answer_timer = NULL;
    while (inst->deferred) {
        struct codex_job *j = inst->deferred;
        inst->deferred = j->next;
        if (j->waiter)
            codex_waiter_finish(j->waiter, ERR_INVALID, NULL, "the server is shutting down");
        codex_job_free(j);
    }
    inst->deferred_tail = &inst->deferred;
    while (inst->pending) {
        struct codex_pending *p = inst->pending;
        inst->pending = p->next;
        if (p->kind == CODEX_REQ_START)
            codex_waiter_finish(p->waiter, ERR_INVALID, NULL, "the server is shutting down");
        codex_pending_free(p);
    }
    if (inst->proc)
        supervisor_proc_stop(inst->proc, CODEX_KILL_MS);
    /* Sessions are freed after the loop stops; drop our pointers to them. */
    while (inst->threads) {
        struct codex_thread *t = inst->threads;
        inst->threads = t->next;
        codex_approvals_withdraw(t, 1); /* a restarted app-server will not ask again */
        json_decref(t->open_items);
        free(t->thread_id);
        free(t);
    }
}

static int codex_instance_new(const struct adapter_settings *settings, void **out,
                              struct err *err)
{
    struct codex_instance *inst = calloc(1, sizeof *inst);
    if (!inst)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = supervisor_restart_new(NULL, &inst->restart, err);
    if (rc) {
        free(inst);
        return rc;
    }
    inst->data_dir = settings->data_dir;
    inst->loop = supervisor_loop(settings->supervisor);
    const char *env = getenv("SJ_CODEX_ANSWER_TIMEOUT_MS");
    long long ms = env ? atoll(env) : 0;
    inst->answer_timeout_ms = ms > 0 ? ms : CODEX_ANSWER_TIMEOUT_MS;
    inst->deferred_tail = &inst->deferred;
    *out = inst;
    return 0;
}

/* After the loop stopped (adapter.h): what shutdown_shared left is freed
 * here, and timers it never reached were closed by supervisor_stop(). */
static void codex_instance_free(void *instance)
{
    struct codex_instance *inst = instance;
    supervisor_timer_free(inst->restart_timer);
    supervisor_timer_free(inst->answer_timer);
    supervisor_restart_free(inst->restart);
    free(inst->binary);
    free(inst);
}

/* ---- the adapter ------------------------------------------------------------------ */

static const char *const codex_agent_modes[] = { "build", "plan", NULL };
static const char *const codex_permission_modes[] = { "default", "plan", "bypass", NULL };
static const struct adapter_mode_rule codex_mode_rule = {
    .agent = "codex",
    .agent_modes = codex_agent_modes,
    .permission_modes = codex_permission_modes,
};

/* new: thread/start or thread/resume params for the session. */
static json_t *codex_thread_params(const struct adapter_ctx *ctx, const char *thread_id)
{
    const char *pm = ctx->permission_mode;
    /* default asks for anything not known to be safe ("untrusted"); plan
     * reads only; bypass never asks and has no sandbox. */
    const char *policy = strcmp(pm, "bypass") == 0 ? "never" : "untrusted";
    const char *sandbox = strcmp(pm, "plan") == 0     ? "read-only"
                          : strcmp(pm, "bypass") == 0 ? "danger-full-access"
                                                      : "workspace-write";
    json_t *p = json_pack("{s:s,s:s}", "approvalPolicy", policy, "sandbox", sandbox);
    if (p && ctx->working_dir && json_object_set_new(p, "cwd", json_string(ctx->working_dir)))
        goto fail;
    if (p && ctx->model && json_object_set_new(p, "model", json_string(ctx->model)))
        goto fail;
    if (p && thread_id && json_object_set_new(p, "threadId", json_string(thread_id)))
        goto fail;
    /* The session's MCP servers, as a config override of this thread only:
     * the app-server is shared by every session, its config.toml too. */
    if (p && ctx->mcp_servers) {
        json_t *servers = mcp_config_codex(ctx->mcp_servers);
        if (!servers || json_object_set_new(p, "config", json_pack("{s:o}", "mcp_servers",
                                                                    servers)))
            goto fail;
    }
    return p;
fail:
    json_decref(p);
    return NULL;
}

static int codex_post(struct adapter_ctx *ctx, struct codex_job *j, struct err *err)
{
    int rc = supervisor_post(ctx->supervisor, codex_job_run, j, err);
    if (rc)
        codex_job_free(j);
    return rc;
}

/* new: a job of `kind` for the instance of `ctx`, or NULL. */
static struct codex_job *codex_job_new(const struct adapter_ctx *ctx, enum codex_job_kind kind)
{
    assert(ctx->instance);
    struct codex_job *j = calloc(1, sizeof *j);
    if (j) {
        j->kind = kind;
        j->inst = ctx->instance;
    }
    return j;
}

static int codex_start_session(struct adapter_ctx *ctx, char native_id_out[128],
                               struct err *err)
{
    if (!ctx->binary_path)
        return err_set_subject(err, ERR_NOT_INSTALLED, "codex", "agent not installed: codex");
    struct codex_waiter *w = codex_waiter_new();
    struct codex_job *j = codex_job_new(ctx, CODEX_JOB_START);
    if (!w || !j) {
        free(j);
        if (w) {
            pthread_cond_destroy(&w->cond);
            pthread_mutex_destroy(&w->lock);
            free(w);
        }
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    j->waiter = w;
    j->params = codex_thread_params(ctx, NULL);
    j->text = strdup(ctx->binary_path);
    if (!j->params || !j->text) {
        codex_job_free(j);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    int rc = supervisor_post(ctx->supervisor, codex_job_run, j, err);
    if (rc) {
        codex_job_free(j);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return rc;
    }
    /* Wait (no lock held) for thread/start's answer. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += CODEX_START_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&w->lock);
    while (!w->done) {
        if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == ETIMEDOUT)
            break;
    }
    int done = w->done;
    rc = w->rc;
    if (done && rc == 0)
        snprintf(native_id_out, 128, "%s", w->thread_id);
    else if (done)
        err_set_subject(err, rc, "codex", "codex could not start a thread: %s", w->message);
    pthread_mutex_unlock(&w->lock);
    codex_waiter_unref(w);
    if (!done)
        return err_set_subject(err, ERR_AGENT_EXITED, "codex",
                               "codex did not start a thread within %d s",
                               CODEX_START_TIMEOUT_MS / 1000);
    return rc;
}

static int codex_send_message(struct adapter_ctx *ctx, const char *message, struct err *err)
{
    if (!ctx->binary_path)
        return err_set_subject(err, ERR_NOT_INSTALLED, "codex", "agent not installed: codex");
    if (!ctx->native_session_id)
        return err_set(err, ERR_INTERNAL, "codex session without a thread id");
    struct codex_job *j = codex_job_new(ctx, CODEX_JOB_TURN);
    if (!j)
        return err_set(err, ERR_NOMEM, "out of memory");
    j->ctx = ctx;
    j->thread_id = strdup(ctx->native_session_id);
    j->prefix = strdup(ctx->binary_path); /* TURN: the binary to start if needed */
    j->params = codex_thread_params(ctx, ctx->native_session_id);
    if (strcmp(ctx->agent_mode, "plan") == 0) {
        size_t n = strlen(message) + 64;
        if ((j->text = malloc(n)))
            snprintf(j->text, n, "Make a plan before acting.\n\n%s", message);
    } else {
        j->text = strdup(message);
    }
    if (!j->thread_id || !j->prefix || !j->params || !j->text) {
        codex_job_free(j);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    return codex_post(ctx, j, err);
}

static int codex_reply_permission(struct adapter_ctx *ctx, const char *permission_id,
                                  const char *reply, const json_t *pending, struct err *err)
{
    (void)pending; /* the id says everything */
    char prefix[64];
    long long id;
    int rc = adapter_codex_permission_id(permission_id, prefix, sizeof prefix, &id, err);
    if (rc)
        return rc;
    struct codex_job *j = codex_job_new(ctx, CODEX_JOB_APPROVAL);
    if (!j)
        return err_set(err, ERR_NOMEM, "out of memory");
    j->prefix = strdup(prefix);
    j->reply = strdup(reply);
    j->request_id = id;
    if (!j->prefix || !j->reply) {
        codex_job_free(j);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    return codex_post(ctx, j, err);
}

static void codex_terminate(struct adapter_ctx *ctx)
{
    if (!ctx->native_session_id)
        return;
    struct codex_job *j = codex_job_new(ctx, CODEX_JOB_STOP_TURN);
    struct err err;
    if (!j || !(j->thread_id = strdup(ctx->native_session_id))) {
        free(j);
        fprintf(stderr, "sandbox-journal: session %s: out of memory stopping codex\n",
                ctx->session_id);
        return;
    }
    if (codex_post(ctx, j, &err) != 0)
        fprintf(stderr, "sandbox-journal: session %s: cannot stop codex: %s\n", ctx->session_id,
                err.msg);
}

static const struct adapter_mode codex_modes[] = {
    { "build", "Build", "Default build mode" },
    { "plan", "Plan", "Planning mode via prompt prefix" },
};

const struct adapter adapter_codex = {
    .name = "codex",
    .caps =
        {
            .plan_mode = 1,
            .permissions = 1,
            .tool_calls = 1,
            .tool_results = 1,
            .text_messages = 1,
            .images = 1,
            /* No file_ref parts: messages go out as text, and file changes
             * come back as tool results (fileChanges). */
            .file_attachments = 0,
            .session_lifecycle = 1,
            .error_events = 1,
            .reasoning = 1,
            .status = 1,
            .command_execution = 1,
            .file_changes = 1,
            .mcp_tools = 1,
            .streaming_deltas = 1,
            .item_started = 1,
            .shared_process = 1,
        },
    .modes = codex_modes,
    .n_modes = sizeof codex_modes / sizeof codex_modes[0],
    .can_resume = 1,
    .builtin_version = NULL,
    .mode_rule = &codex_mode_rule,
    .start_session = codex_start_session,
    .send_message = codex_send_message,
    .reply_permission = codex_reply_permission,
    .reply_question = NULL,
    .reject_question = NULL,
    .terminate = codex_terminate,
    .free_state = NULL,
    .shutdown = NULL,
    .instance_new = codex_instance_new,
    .instance_free = codex_instance_free,
    .server_status_json = codex_server_status_json,
    .shutdown_shared = codex_shutdown_shared,
};
