/* The driver of line-oriented agent CLIs: see cli_driver.h.
 *
 * The state of a session has two halves.  The HTTP side (turn count) is
 * touched with the session locked; everything about the process (the
 * protocol's state, the proc, the queue of waiting messages, the native id
 * once learned) lives on the supervisor loop, reached by posted jobs, and
 * journals through host->emit_async().  The copies of the session's strings
 * are made before the first post and never change.
 */
#include "agents/cli_driver.h"

#include "agents/agent_proc.h"
#include "agents/supervisor.h"
#include "events/event.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One message waiting for its turn (per-turn CLIs) or for the loop. */
struct cli_message {
    struct cli_message *next;
    char *text;
    char *binary;
};

struct cli_driver {
    const struct cli_driver_protocol *p;
    struct adapter_ctx *ctx; /* for host->emit_async (the host locks) */
    /* Immutable after creation. */
    char *session_id;
    char *working_dir;
    char *data_dir;
    /* Session locked. */
    unsigned long long turns; /* persisted as {"turns":N}: names user items */
    /* Loop only. */
    void *state;              /* the protocol's */
    uv_loop_t *uv;            /* set by the first job */
    char *native_id;          /* the agent's own session id, once known */
    supervisor_proc_t *proc;
    struct cli_message *queue, **queue_tail;
    int down;                 /* shutdown: never start again */
};

/* ---- the loop side ------------------------------------------------------- */

static void cli_log(const struct cli_driver *d, const char *what, const char *detail)
{
    fprintf(stderr, "sandbox-journal: session %s: %s: %s%s%s\n", d->session_id, d->p->name,
            what, detail ? ": " : "", detail ? detail : "");
}

/* Journals `conversions` (borrowed). */
static void cli_emit(struct cli_driver *d, const json_t *conversions)
{
    if (!json_array_size(conversions))
        return;
    struct err err;
    if (d->ctx->host->emit_async(d->ctx, conversions, &err) != 0)
        cli_log(d, "event not journaled", err.msg);
}

static void cli_write(struct cli_driver *d, const char *line)
{
    struct err err;
    if (!d->proc || supervisor_proc_write(d->proc, line, strlen(line), &err) != 0)
        cli_log(d, "cannot write to the agent", d->proc ? err.msg : "not running");
}

static void cli_message_free(struct cli_message *m)
{
    free(m->text);
    free(m->binary);
    free(m);
}

/* Forgets the waiting messages, appending a failed assistant completion for
 * each to `list` (if non-NULL): the session layer started an assistant item
 * for every message.  0, or -1 when memory ran out. */
static int cli_drop_queue(struct cli_driver *d, json_t *list)
{
    int rc = 0;
    while (d->queue) {
        struct cli_message *m = d->queue;
        d->queue = m->next;
        cli_message_free(m);
        if (!list || rc)
            continue;
        json_t *c = event_conversion("item.completed",
                                     event_item_data(event_item("message", "assistant", "failed",
                                                                NULL, json_array())));
        if (!c || json_array_append_new(list, c) != 0)
            rc = -1;
    }
    d->queue_tail = &d->queue;
    return rc;
}

/* Appends a synthetic error event (`code`, `message`) to `list`.  0, or -1
 * when memory ran out. */
static int cli_push_error(json_t *list, const char *message, const char *code)
{
    json_t *c = event_synthetic(
        event_conversion("error", event_error_data(message, code, NULL)));
    return c && json_array_append_new(list, c) == 0 ? 0 : -1;
}

static void cli_on_line(void *arg, const char *line, size_t len, int cut)
{
    struct cli_driver *d = arg;
    assert(supervisor_on_loop(d->uv));
    json_t *conversions = json_array();
    json_t *replies = json_array();
    struct err err;
    if (!conversions || !replies) {
        cli_log(d, "out of memory: line dropped", NULL);
    } else {
        if (d->p->parse_line(d->state, line, len, cut, conversions, replies, &err))
            cli_log(d, "line partly dropped", err.msg);
        size_t i;
        json_t *r;
        json_array_foreach(replies, i, r)
            cli_write(d, json_string_value(r));
        const char *id = d->p->native_id ? d->p->native_id(d->state) : NULL;
        if (id && (!d->native_id || strcmp(d->native_id, id) != 0)) {
            char *copy = strdup(id);
            if (copy) {
                free(d->native_id);
                d->native_id = copy;
            }
        }
        cli_emit(d, conversions);
    }
    json_decref(conversions);
    json_decref(replies);
}

static void cli_start_next(struct cli_driver *d);

static void cli_on_exit(void *arg, const struct supervisor_exit *e)
{
    struct cli_driver *d = arg;
    assert(supervisor_on_loop(d->uv));
    int asked = supervisor_proc_stopping(d->proc);
    int mid_turn = d->p->turn_open(d->state);
    json_t *list = json_array();
    struct err err;
    /* What the process left open is void: no answer can reach it now. */
    int ok = list && d->p->close_turns(d->state, list, &err) == 0;
    if (d->p->process_gone)
        d->p->process_gone(d->state);
    d->proc = NULL;
    int code = e->term_signal ? 128 + e->term_signal : (int)e->exit_status;
    if (asked || (code == 0 && !mid_turn)) {
        /* Stopped on purpose (terminate, shutdown: nothing more to say), or
         * a clean end after the turn: the next message resumes. */
        json_decref(list);
        if (asked)
            cli_drop_queue(d, NULL);
        else
            cli_start_next(d);
        return;
    }

    char message[160];
    const char *reason = "error";
    if (e->term_signal)
        snprintf(message, sizeof message, "%s was killed by signal %d", d->p->name,
                 e->term_signal);
    else if (code)
        snprintf(message, sizeof message, "%s exited with status %d", d->p->name, code);
    else
        reason = d->p->unfinished_exit(message, sizeof message);
    cli_log(d, message, e->stderr_head);
    ok = ok && cli_drop_queue(d, list) == 0 && cli_push_error(list, message, "process_exit") == 0;
    if (ok) {
        json_t *c = event_synthetic(event_conversion(
            "session.ended",
            event_session_ended_data(reason, "agent", message, code, agent_proc_stderr_json(e))));
        ok = c && json_array_append_new(list, c) == 0;
    }
    if (ok)
        cli_emit(d, list);
    else
        cli_log(d, "out of memory: exit not journaled", NULL);
    cli_drop_queue(d, NULL);
    json_decref(list);
}

/* Starts the agent's process.  0, or an error for the journal. */
static int cli_spawn(struct cli_driver *d, const char *binary, struct err *err)
{
    char home[PATH_MAX];
    int rc = agent_env_home(d->data_dir, d->p->name, home, err);
    if (rc)
        return rc;
    const char *args[CLI_DRIVER_MAX_ARGS];
    struct agent_env env;
    agent_env_init(&env);
    agent_env_pass_common(&env);
    agent_env_set(&env, "HOME", home);
    rc = d->p->command(d->state, binary, home, d->native_id, args, &env, err);
    char *const *envp = rc ? NULL : agent_env_finish(&env, err);
    if (!rc && !envp)
        rc = ERR_NOMEM;
    char label[320]; /* session ids run to 255 bytes */
    snprintf(label, sizeof label, "session %s: %s", d->session_id, d->p->name);
    if (rc == 0) {
        struct supervisor_proc_options po = {
            .file = binary, .args = args, .env = envp, .cwd = d->working_dir,
            .max_line_bytes = d->p->max_line_bytes, .label = label,
        };
        struct supervisor_proc_callbacks cb = { .on_line = cli_on_line, .on_exit = cli_on_exit,
                                                .arg = d };
        rc = supervisor_proc_spawn(d->uv, &po, &cb, &d->proc, err);
        if (rc)
            d->proc = NULL;
    }
    agent_env_free(&env);
    return rc;
}

/* A turn could not reach the agent: close its assistant item (with what the
 * protocol knows of it, when `close_turns`), say why. */
static void cli_turn_failed(struct cli_driver *d, const char *why, int close_turns)
{
    json_t *list = json_array();
    struct err err;
    int ok = list && (!close_turns || d->p->close_turns(d->state, list, &err) == 0);
    if (ok && json_array_size(list) == 0) {
        json_t *done = event_conversion(
            "item.completed",
            event_item_data(event_item("message", "assistant", "failed", NULL, json_array())));
        ok = done && json_array_append_new(list, done) == 0;
    }
    if (ok && cli_push_error(list, why, "agent_start_failed") == 0)
        cli_emit(d, list);
    else
        cli_log(d, "out of memory: failed turn not journaled", why);
    json_decref(list);
}

/* Hands one message to the agent, starting it if it is not running. */
static void cli_run(struct cli_driver *d, const struct cli_message *m)
{
    assert(supervisor_on_loop(d->uv));
    struct err err;
    err_clear(&err);
    if (!d->proc && cli_spawn(d, m->binary, &err) != 0) {
        cli_log(d, "cannot start the agent", err.msg);
        cli_turn_failed(d, err.msg, 1);
        if (d->p->process_gone)
            d->p->process_gone(d->state);
        return;
    }
    char *line = d->p->encode(d->state, m->text);
    if (!line) {
        char why[96];
        snprintf(why, sizeof why, "out of memory writing the message to %s", d->p->name);
        cli_turn_failed(d, why, 0);
        if (d->p->per_turn) /* it waits for its one message: nothing will come */
            supervisor_proc_stop(d->proc, d->p->kill_ms);
        return;
    }
    /* "": the protocol keeps the message until the agent is ready for it
     * (ACP's handshake, one prompt at a time). */
    if (*line)
        cli_write(d, line);
    free(line);
    /* EOF after the one message: the CLI ends once the turn is done. */
    if (d->p->per_turn)
        supervisor_proc_close_stdin(d->proc);
}

/* Runs the waiting messages that may run now: all of them for a long-lived
 * process, the next one when no turn runs for a per-turn one. */
static void cli_start_next(struct cli_driver *d)
{
    while (d->queue && !d->down && !(d->p->per_turn && d->proc)) {
        struct cli_message *m = d->queue;
        d->queue = m->next;
        if (!d->queue)
            d->queue_tail = &d->queue;
        cli_run(d, m);
        cli_message_free(m);
    }
}

/* Ends the process (stdin EOF, SIGTERM, SIGKILL after kill_ms) and forgets
 * the waiting messages. */
static void cli_stop(struct cli_driver *d)
{
    assert(!d->uv || supervisor_on_loop(d->uv));
    cli_drop_queue(d, NULL);
    if (d->proc)
        supervisor_proc_stop(d->proc, d->p->kill_ms);
}

/* ---- jobs posted by the HTTP side ------------------------------------------ */

enum cli_job_kind { CLI_JOB_MESSAGE, CLI_JOB_REPLY, CLI_JOB_STOP };

struct cli_job {
    enum cli_job_kind kind;
    struct cli_driver *d;
    struct cli_message *message; /* MESSAGE */
    char *native_id;             /* MESSAGE: the journaled native id, if any */
    /* REPLY */
    int (*make_line)(void *state, void *arg, char **line, struct err *err);
    void (*free_arg)(void *arg);
    void *arg;
};

static void cli_job_free(struct cli_job *j)
{
    if (j->message)
        cli_message_free(j->message);
    if (j->free_arg)
        j->free_arg(j->arg);
    free(j->native_id);
    free(j);
}

static void cli_job_run(uv_loop_t *loop, void *arg)
{
    assert(supervisor_on_loop(loop));
    struct cli_job *j = arg;
    struct cli_driver *d = j->d;
    d->uv = loop;
    switch (j->kind) {
    case CLI_JOB_MESSAGE:
        if (d->down)
            break;
        if (!d->native_id && j->native_id) {
            d->native_id = j->native_id;
            j->native_id = NULL;
        }
        *d->queue_tail = j->message;
        d->queue_tail = &j->message->next;
        j->message = NULL;
        cli_start_next(d);
        break;
    case CLI_JOB_REPLY: {
        char *line = NULL;
        struct err err;
        err_clear(&err);
        if (j->make_line(d->state, j->arg, &line, &err) == 0) {
            if (*line) /* "": nothing to say after all (no prompt to cancel) */
                cli_write(d, line);
        }
        else
            /* The process that asked is gone (crash, restart): the reply is
             * journaled by the session layer and has no one to reach. */
            cli_log(d, "reply not forwarded", err.msg);
        free(line);
        break;
    }
    case CLI_JOB_STOP:
        cli_stop(d);
        break;
    }
    cli_job_free(j);
}

static int cli_post(struct adapter_ctx *ctx, struct cli_job *j, struct err *err)
{
    int rc = supervisor_post(ctx->supervisor, cli_job_run, j, err);
    if (rc)
        cli_job_free(j);
    return rc;
}

/* ---- the HTTP side ----------------------------------------------------------- */

static char *cli_dup(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *failed = 1;
    return c;
}

static void cli_driver_free(struct cli_driver *d)
{
    if (!d)
        return;
    cli_drop_queue(d, NULL);
    if (d->state)
        d->p->state_free(d->state);
    free(d->native_id);
    free(d->session_id);
    free(d->working_dir);
    free(d->data_dir);
    free(d);
}

/* The driver's state, made on first use (the turn count from saved_state).
 * Session locked. */
static struct cli_driver *cli_get(struct adapter_ctx *ctx,
                                  const struct cli_driver_protocol *protocol, struct err *err)
{
    struct cli_driver *d = ctx->state;
    if (d)
        return d;
    d = calloc(1, sizeof *d);
    if (!d)
        goto nomem;
    int failed = 0;
    d->p = protocol;
    d->ctx = ctx;
    d->session_id = cli_dup(ctx->session_id, &failed);
    d->working_dir = cli_dup(ctx->working_dir, &failed);
    d->data_dir = cli_dup(ctx->data_dir, &failed);
    d->queue_tail = &d->queue;
    d->state = protocol->state_new(ctx);
    if (failed || !d->state)
        goto nomem;
    if (ctx->saved_state && ctx->saved_state[0]) {
        json_t *saved = json_loads(ctx->saved_state, 0, NULL);
        json_t *turns = json_object_get(saved, "turns");
        if (json_is_integer(turns) && json_integer_value(turns) > 0)
            d->turns = (unsigned long long)json_integer_value(turns);
        json_decref(saved);
    }
    ctx->state = d;
    return d;
nomem:
    cli_driver_free(d);
    err_set(err, ERR_NOMEM, "out of memory");
    return NULL;
}

int cli_driver_send(struct adapter_ctx *ctx, const struct cli_driver_protocol *protocol,
                    const char *message, struct err *err)
{
    if (!ctx->binary_path)
        return err_set_subject(err, ERR_NOT_INSTALLED, protocol->name,
                               "agent not installed: %s", protocol->name);
    struct stat st;
    if (!ctx->working_dir || stat(ctx->working_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, ERR_INVALID, "invalid request: the session's working directory %s "
                                         "is gone",
                       ctx->working_dir ? ctx->working_dir : "(unknown)");
    struct cli_driver *d = cli_get(ctx, protocol, err);
    if (!d)
        return ERR_NOMEM;

    char native[64], state_json[48];
    snprintf(native, sizeof native, "user_%llu", d->turns + 1);
    snprintf(state_json, sizeof state_json, "{\"turns\":%llu}", d->turns + 1);
    json_t *user = protocol->user_message(native, message);
    if (!user)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = ctx->host->save_state(ctx, state_json, err);
    if (rc == 0)
        rc = ctx->host->emit(ctx, user, err);
    json_decref(user);
    if (rc)
        return rc;
    d->turns++;

    struct cli_job *j = calloc(1, sizeof *j);
    struct cli_message *m = calloc(1, sizeof *m);
    int failed = !j || !m;
    if (!failed) {
        j->kind = CLI_JOB_MESSAGE;
        j->d = d;
        j->message = m;
        m->text = cli_dup(message, &failed);
        m->binary = cli_dup(ctx->binary_path, &failed);
        j->native_id = cli_dup(ctx->native_session_id, &failed);
        m = NULL; /* the job's now */
    }
    if (failed) {
        if (m)
            cli_message_free(m);
        if (j)
            cli_job_free(j);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    return cli_post(ctx, j, err);
}

int cli_driver_reply(struct adapter_ctx *ctx, const struct cli_driver_protocol *protocol,
                     int (*make_line)(void *state, void *arg, char **line, struct err *err),
                     void (*free_arg)(void *arg), void *arg, struct err *err)
{
    struct cli_driver *d = cli_get(ctx, protocol, err);
    struct cli_job *j = d ? calloc(1, sizeof *j) : NULL;
    if (!j) {
        free_arg(arg);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    *j = (struct cli_job){ .kind = CLI_JOB_REPLY, .d = d, .make_line = make_line,
                           .free_arg = free_arg, .arg = arg };
    return cli_post(ctx, j, err);
}

void cli_driver_terminate(struct adapter_ctx *ctx)
{
    struct cli_driver *d = ctx->state;
    if (!d)
        return; /* never started a process */
    struct cli_job *j = calloc(1, sizeof *j);
    struct err err;
    if (!j) {
        cli_log(d, "out of memory: cannot stop the agent", NULL);
        return;
    }
    *j = (struct cli_job){ .kind = CLI_JOB_STOP, .d = d };
    if (cli_post(ctx, j, &err) != 0)
        cli_log(d, "cannot stop the agent", err.msg);
}

void cli_driver_shutdown(struct adapter_ctx *ctx)
{
    struct cli_driver *d = ctx->state;
    if (!d)
        return;
    assert(!d->uv || supervisor_on_loop(d->uv));
    d->down = 1;
    /* The turns the stop cuts short are over (the next message resumes the
     * conversation without them): close their assistant items and say why.
     * The session itself is not ended. */
    if (d->p->turn_open(d->state) || d->queue) {
        json_t *list = json_array();
        struct err err;
        if (list && d->p->close_turns(d->state, list, &err) == 0 &&
            cli_drop_queue(d, list) == 0 &&
            cli_push_error(list, "the server stopped during the turn", "server_shutdown") == 0)
            cli_emit(d, list);
        else
            cli_log(d, "out of memory: interrupted turn not journaled", NULL);
        json_decref(list);
    }
    cli_stop(d);
}

void cli_driver_free_state(struct adapter_ctx *ctx)
{
    cli_driver_free(ctx->state);
    ctx->state = NULL;
}
