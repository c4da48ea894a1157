/* The Amp adapter.
 *
 * Process: one `amp --execute --stream-json --stream-json-input` per turn,
 * in the session's working directory with a private HOME under the data
 * directory.  The user's message is the one JSON line written to its stdin,
 * which is then closed: Amp runs the turn, prints it as stream-json and
 * exits.  The first turn starts a new Amp thread; Amp names it in its
 * output (session_id "T-..."), which becomes the session's native id, and
 * every later turn runs `amp threads continue <thread id> ...`.  Amp keeps
 * its threads on its own service, so a server restart loses nothing: the
 * native id is in the journal.
 *
 * Threads.  The functions of `adapter_amp` run on HTTP workers with the
 * session locked: they journal the user's message and post it to the
 * supervisor loop, never waiting for it.  The loop owns the process, the
 * parser and the queue of messages that arrived while a turn was running
 * (they run one after the other, each in its own process), and journals
 * through host->emit_async().
 *
 * Ends.  A turn that ends with exit 0 after its result is the normal case
 * and journals nothing more.  Any other exit (non-zero, a signal, exit 0
 * in the middle of a turn) closes the open turns as failed and journals an
 * error and a synthetic session.ended (reason error, exit code, the stderr
 * head/tail); the next message continues the thread.  Terminate and server
 * shutdown close stdin and send SIGTERM, then SIGKILL after AMP_KILL_MS.
 */
#include "adapters/amp.h"

#include "agents/adapter.h"
#include "agents/agent_env.h"
#include "agents/agent_proc.h"
#include "adapters/claude.h"
#include "base/err.h"
#include "events/event.h"
#include "agents/supervisor.h"

#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AMP_KILL_MS 3000
#define AMP_MAX_LINE (64u * 1024 * 1024)

/* ======================================================================
 * The process side
 * ====================================================================== */

/* One message waiting for its turn. */
struct amp_message {
    struct amp_message *next;
    char *text;
    char *binary;
};

/* Loop-side state of one session.  Touched on the loop thread only, except
 * the immutable copies set before the first post. */
struct amp_loop {
    struct adapter_ctx *ctx;    /* for host->emit_async (the host locks) */
    /* Immutable after creation. */
    char *session_id;
    char *working_dir;
    char *data_dir;
    int bypass;
    /* Loop only. */
    uv_loop_t *uv;
    char *thread_id;            /* the native id, once known */
    supervisor_proc_t *proc;
    adapter_amp_parser_t *parser;
    struct amp_message *queue, **queue_tail;
    struct agent_proc_stop stop; /* proc = &proc */
    int stopping;               /* terminate or shutdown: the exit is ours */
    int down;                   /* shutdown: never start again */
};

/* ctx->state. */
struct amp_state {
    unsigned long long turns;   /* persisted as {"turns":N}: names user items */
    struct amp_loop *loop;
};

static void amp_log(const struct amp_loop *l, const char *what, const char *detail)
{
    fprintf(stderr, "sandbox-journal: session %s: amp: %s%s%s\n", l->session_id, what,
            detail ? ": " : "", detail ? detail : "");
}

/* Loop: journals `conversions` (borrowed). */
static void amp_emit(struct amp_loop *l, const json_t *conversions)
{
    if (!json_array_size(conversions))
        return;
    struct err err;
    if (l->ctx->host->emit_async(l->ctx, conversions, &err) != 0)
        amp_log(l, "event not journaled", err.msg);
}

static void amp_message_free(struct amp_message *m)
{
    free(m->text);
    free(m->binary);
    free(m);
}

/* Loop: forgets the waiting messages, appending a failed assistant
 * completion for each to `list` (if non-NULL): the session layer started an
 * assistant item for every message. */
static int amp_drop_queue(struct amp_loop *l, json_t *list)
{
    int rc = 0;
    while (l->queue) {
        struct amp_message *m = l->queue;
        l->queue = m->next;
        amp_message_free(m);
        if (!list || rc)
            continue;
        json_t *c = event_conversion("item.completed",
                                     event_item_data(event_item("message", "assistant", "failed",
                                                                NULL, json_array())));
        if (!c || json_array_append_new(list, c) != 0)
            rc = -1;
    }
    l->queue_tail = &l->queue;
    return rc;
}

static void amp_on_line(void *arg, const char *line, size_t len, int cut)
{
    struct amp_loop *l = arg;
    json_t *conversions = json_array();
    struct err err;
    if (!conversions || !l->parser) {
        amp_log(l, "out of memory: line dropped", NULL);
    } else {
        if (adapter_amp_parse_line(l->parser, line, len, cut, conversions, &err))
            amp_log(l, "line partly dropped", err.msg);
        const char *id = adapter_amp_thread_id(l->parser);
        if (id && (!l->thread_id || strcmp(l->thread_id, id) != 0)) {
            char *copy = strdup(id);
            if (copy) {
                free(l->thread_id);
                l->thread_id = copy;
            }
        }
        amp_emit(l, conversions);
    }
    json_decref(conversions);
}

static void amp_start_next(struct amp_loop *l);

static void amp_on_exit(void *arg, const struct supervisor_exit *e)
{
    struct amp_loop *l = arg;
    l->proc = NULL;
    agent_proc_stop_done(&l->stop);
    if (l->stopping) {
        l->stopping = 0;
        amp_drop_queue(l, NULL);
        return;
    }
    int mid_turn = l->parser && adapter_amp_turn_open(l->parser);
    int code = e->term_signal ? 128 + e->term_signal : (int)e->exit_status;
    if (code == 0 && !mid_turn) {
        amp_start_next(l);
        return;
    }
    char message[160];
    if (e->term_signal)
        snprintf(message, sizeof message, "amp was killed by signal %d", e->term_signal);
    else if (code)
        snprintf(message, sizeof message, "amp exited with status %d", code);
    else
        snprintf(message, sizeof message, "amp exited before it finished the turn");
    amp_log(l, message, e->stderr_head);
    json_t *list = json_array();
    struct err err;
    int ok = list && (!l->parser || adapter_amp_close_turn(l->parser, list, &err) == 0) &&
             amp_drop_queue(l, list) == 0;
    if (ok) {
        json_t *c = event_synthetic(
            event_conversion("error", event_error_data(message, "process_exit", NULL)));
        ok = c && json_array_append_new(list, c) == 0;
    }
    if (ok) {
        json_t *c = event_synthetic(event_conversion(
            "session.ended",
            event_session_ended_data("error", "agent", message, code, agent_proc_stderr_json(e))));
        ok = c && json_array_append_new(list, c) == 0;
    }
    if (ok)
        amp_emit(l, list);
    else
        amp_log(l, "out of memory: exit not journaled", NULL);
    amp_drop_queue(l, NULL);
    json_decref(list);
}

/* Loop: ends the running turn (stdin EOF, SIGTERM, SIGKILL after
 * AMP_KILL_MS) and forgets the waiting ones. */
static void amp_stop(struct amp_loop *l)
{
    amp_drop_queue(l, NULL);
    if (!l->proc)
        return;
    l->stopping = 1;
    agent_proc_stop(&l->stop, l->uv, AMP_KILL_MS);
}

/* Amp's settings in its private HOME: no update checks or self-updates
 * (the pinned version stays).  Written once; the user may edit it then. */
static int amp_settings(const char *home, struct err *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.config/amp/settings.json", home) >= (int)sizeof path)
        return err_set(err, ERR_INTERNAL, "amp's home directory path is too long");
    if (access(path, F_OK) == 0)
        return 0;
    /* Each directory may exist already: the open below tells. */
    char *name = strrchr(path, '/'), *amp_dir = name - 4;
    *amp_dir = '\0';
    (void)mkdir(path, 0700);
    *amp_dir = '/';
    *name = '\0';
    (void)mkdir(path, 0700);
    *name = '/';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(err, ERR_INTERNAL, "cannot write %s", path);
    static const char settings[] = "{\n  \"amp.updates.mode\": \"disabled\"\n}\n";
    ssize_t n = write(fd, settings, sizeof settings - 1);
    close(fd);
    if (n != (ssize_t)(sizeof settings - 1))
        return err_set(err, ERR_INTERNAL, "cannot write %s", path);
    return 0;
}

/* Loop: runs one turn of `m`.  0, or an error for the journal. */
static int amp_spawn(struct amp_loop *l, const struct amp_message *m, struct err *err)
{
    char home[PATH_MAX];
    int rc = agent_env_home(l->data_dir, "amp", home, err);
    if (rc == 0)
        rc = amp_settings(home, err);
    if (rc)
        return rc;
    char *input = adapter_amp_input_line(m->text);
    if (!input)
        return err_set(err, ERR_NOMEM, "out of memory writing the message to amp");
    if (!l->parser && !(l->parser = adapter_amp_parser_new(l->session_id))) {
        free(input);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    rc = adapter_amp_turn_begin(l->parser, err);
    if (rc) {
        free(input);
        return rc;
    }
    const char *args[ADAPTER_AMP_MAX_ARGS];
    adapter_amp_args(m->binary, l->thread_id, l->bypass, args);

    struct agent_env env;
    agent_env_init(&env);
    agent_env_pass_common(&env);
    agent_env_set(&env, "HOME", home);
    /* Amp's own access token and service; Amp has no other model endpoint. */
    agent_env_pass(&env, "AMP_API_KEY");
    agent_env_pass(&env, "AMP_URL");
    char *const *envp = agent_env_finish(&env, err);
    if (!envp) {
        agent_env_free(&env);
        free(input);
        return ERR_NOMEM;
    }
    struct supervisor_proc_options po = {
        .file = m->binary, .args = args, .env = envp, .cwd = l->working_dir,
        .max_line_bytes = AMP_MAX_LINE,
    };
    struct supervisor_proc_callbacks cb = { .on_line = amp_on_line, .on_exit = amp_on_exit,
                                            .arg = l };
    rc = supervisor_proc_spawn(l->uv, &po, &cb, &l->proc, err);
    agent_env_free(&env);
    if (rc == 0) {
        rc = supervisor_proc_write(l->proc, input, strlen(input), err);
        /* EOF after the one message: Amp ends once the turn is done. */
        supervisor_proc_close_stdin(l->proc);
        if (rc)
            amp_log(l, "cannot write the message to amp", err->msg);
        rc = 0; /* the exit reports what became of the turn */
    } else {
        l->proc = NULL;
    }
    free(input);
    return rc;
}

/* Loop: a turn could not start: close its assistant item, say why. */
static void amp_turn_failed(struct amp_loop *l, const char *why)
{
    json_t *list = json_array();
    struct err err;
    int ok = list != NULL;
    if (ok && l->parser && adapter_amp_turn_open(l->parser)) {
        ok = adapter_amp_close_turn(l->parser, list, &err) == 0;
    } else if (ok) {
        json_t *done = event_conversion(
            "item.completed",
            event_item_data(event_item("message", "assistant", "failed", NULL, json_array())));
        ok = done && json_array_append_new(list, done) == 0;
    }
    if (ok) {
        json_t *error = event_synthetic(
            event_conversion("error", event_error_data(why, "agent_start_failed", NULL)));
        ok = error && json_array_append_new(list, error) == 0;
    }
    if (ok)
        amp_emit(l, list);
    else
        amp_log(l, "out of memory: failed turn not journaled", why);
    json_decref(list);
}

/* Loop: starts the next waiting turn, if no turn runs. */
static void amp_start_next(struct amp_loop *l)
{
    while (!l->proc && !l->down && l->queue) {
        struct amp_message *m = l->queue;
        l->queue = m->next;
        if (!l->queue)
            l->queue_tail = &l->queue;
        struct err err;
        err_clear(&err);
        if (amp_spawn(l, m, &err) != 0) {
            amp_log(l, "cannot start amp", err.msg);
            amp_turn_failed(l, err.msg);
        }
        amp_message_free(m);
    }
}

/* ---- work posted by the HTTP side ------------------------------------------- */

struct amp_job {
    struct amp_loop *l;
    struct amp_message *message; /* NULL: terminate */
    char *thread_id;             /* the journaled native id, if any */
};

static void amp_job_run(uv_loop_t *loop, void *arg)
{
    struct amp_job *j = arg;
    struct amp_loop *l = j->l;
    l->uv = loop;
    if (!j->message) {
        amp_stop(l);
    } else if (!l->down) {
        if (!l->thread_id && j->thread_id) {
            l->thread_id = j->thread_id;
            j->thread_id = NULL;
        }
        *l->queue_tail = j->message;
        l->queue_tail = &j->message->next;
        j->message = NULL;
        amp_start_next(l);
    }
    if (j->message)
        amp_message_free(j->message);
    free(j->thread_id);
    free(j);
}

static int amp_post(struct adapter_ctx *ctx, struct amp_job *j, struct err *err)
{
    int rc = supervisor_post(ctx->supervisor, amp_job_run, j, err);
    if (rc) {
        if (j->message)
            amp_message_free(j->message);
        free(j->thread_id);
        free(j);
    }
    return rc;
}

/* ---- the adapter ------------------------------------------------------------ */

static char *amp_dup(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *failed = 1;
    return c;
}

static void amp_loop_free(struct amp_loop *l)
{
    if (!l)
        return;
    amp_drop_queue(l, NULL);
    adapter_amp_parser_free(l->parser);
    free(l->session_id);
    free(l->working_dir);
    free(l->data_dir);
    free(l->thread_id);
    free(l);
}

/* The state, created on first use (the turn count from saved_state). */
static struct amp_state *amp_state_get(struct adapter_ctx *ctx, struct err *err)
{
    struct amp_state *st = ctx->state;
    if (st)
        return st;
    st = calloc(1, sizeof *st);
    struct amp_loop *l = calloc(1, sizeof *l);
    if (!st || !l)
        goto nomem;
    int failed = 0;
    l->ctx = ctx;
    l->session_id = amp_dup(ctx->session_id, &failed);
    l->working_dir = amp_dup(ctx->working_dir, &failed);
    l->data_dir = amp_dup(ctx->data_dir, &failed);
    l->stop = (struct agent_proc_stop){ .proc = &l->proc, .agent = "amp",
                                        .session_id = l->session_id };
    l->bypass = strcmp(ctx->permission_mode, "bypass") == 0;
    l->queue_tail = &l->queue;
    if (failed)
        goto nomem;
    st->loop = l;
    if (ctx->saved_state && ctx->saved_state[0]) {
        json_t *saved = json_loads(ctx->saved_state, 0, NULL);
        json_t *turns = json_object_get(saved, "turns");
        if (json_is_integer(turns) && json_integer_value(turns) > 0)
            st->turns = (unsigned long long)json_integer_value(turns);
        json_decref(saved);
    }
    ctx->state = st;
    return st;
nomem:
    amp_loop_free(l);
    free(st);
    err_set(err, ERR_NOMEM, "out of memory");
    return NULL;
}

static int amp_resolve_modes(const char *agent_mode, const char *permission_mode,
                             char agent_mode_out[32], char permission_mode_out[32],
                             struct err *err)
{
    const char *am = agent_mode ? agent_mode : "build";
    const char *pm = permission_mode ? permission_mode : "default";
    if (strcmp(am, "build") != 0)
        return err_set_mode(err, "amp", am);
    if (strcmp(pm, "default") != 0 && strcmp(pm, "plan") != 0 && strcmp(pm, "bypass") != 0 &&
        strcmp(pm, "acceptEdits") != 0)
        return err_set(err, ERR_INVALID, "invalid request: invalid permission mode: %s", pm);
    /* Amp asks for nothing over stream-json: it either runs a tool or, with
     * --dangerously-allow-all, runs every tool; there is no plan mode. */
    if (strcmp(pm, "default") != 0 && strcmp(pm, "bypass") != 0)
        return err_set_mode(err, "amp", pm);
    snprintf(agent_mode_out, 32, "%s", am);
    snprintf(permission_mode_out, 32, "%s", pm);
    return 0;
}

static int amp_send_message(struct adapter_ctx *ctx, const char *message, struct err *err)
{
    if (!ctx->binary_path)
        return err_set_subject(err, ERR_NOT_INSTALLED, "amp", "agent not installed: amp");
    struct stat st;
    if (!ctx->working_dir || stat(ctx->working_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, ERR_INVALID, "invalid request: the session's working directory %s "
                                         "is gone",
                       ctx->working_dir ? ctx->working_dir : "(unknown)");
    struct amp_state *s = amp_state_get(ctx, err);
    if (!s)
        return ERR_NOMEM;

    char native[64], state_json[48];
    snprintf(native, sizeof native, "user_%llu", s->turns + 1);
    snprintf(state_json, sizeof state_json, "{\"turns\":%llu}", s->turns + 1);
    json_t *user = adapter_claude_user_message(native, message);
    if (!user)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = ctx->host->save_state(ctx, state_json, err);
    if (rc == 0)
        rc = ctx->host->emit(ctx, user, err);
    json_decref(user);
    if (rc)
        return rc;
    s->turns++;

    struct amp_job *j = calloc(1, sizeof *j);
    struct amp_message *m = calloc(1, sizeof *m);
    int failed = !j || !m;
    if (!failed) {
        j->l = s->loop;
        j->message = m;
        m->text = amp_dup(message, &failed);
        m->binary = amp_dup(ctx->binary_path, &failed);
        j->thread_id = amp_dup(ctx->native_session_id, &failed);
    }
    if (failed) {
        if (m)
            amp_message_free(m);
        if (j)
            free(j->thread_id);
        free(j);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    return amp_post(ctx, j, err);
}

static void amp_terminate(struct adapter_ctx *ctx)
{
    struct amp_state *s = ctx->state;
    if (!s)
        return; /* never ran a turn */
    struct amp_job *j = calloc(1, sizeof *j);
    struct err err;
    if (!j) {
        fprintf(stderr, "sandbox-journal: session %s: out of memory stopping amp\n",
                ctx->session_id);
        return;
    }
    j->l = s->loop;
    if (amp_post(ctx, j, &err) != 0)
        fprintf(stderr, "sandbox-journal: session %s: cannot stop amp: %s\n", ctx->session_id,
                err.msg);
}

static void amp_shutdown(struct adapter_ctx *ctx)
{
    struct amp_state *s = ctx->state;
    if (!s)
        return;
    struct amp_loop *l = s->loop;
    l->down = 1;
    /* The turns the stop cuts short are over: close their assistant items
     * and say why.  The session itself is not ended. */
    if ((l->parser && adapter_amp_turn_open(l->parser)) || l->queue) {
        json_t *list = json_array();
        json_t *error = event_synthetic(event_conversion(
            "error", event_error_data("the server stopped during the turn", "server_shutdown",
                                      NULL)));
        struct err err;
        if (list && error &&
            (!l->parser || adapter_amp_close_turn(l->parser, list, &err) == 0) &&
            amp_drop_queue(l, list) == 0 && json_array_append_new(list, error) == 0) {
            error = NULL;
            amp_emit(l, list);
        } else {
            amp_log(l, "out of memory: interrupted turn not journaled", NULL);
        }
        json_decref(error);
        json_decref(list);
    }
    amp_stop(l);
}

static void amp_free_state(struct adapter_ctx *ctx)
{
    struct amp_state *s = ctx->state;
    if (!s)
        return;
    amp_loop_free(s->loop);
    free(s);
    ctx->state = NULL;
}

static const struct adapter_mode amp_modes[] = {
    { "build", "Build", "Default build mode" },
};

const struct adapter adapter_amp = {
    .name = "amp",
    .caps =
        {
            .tool_calls = 1,
            .tool_results = 1,
            .text_messages = 1,
            .error_events = 1,
            /* Thinking blocks, with --stream-json-thinking. */
            .reasoning = 1,
            /* Amp prints whole messages, no deltas, and starts no items:
             * the session layer starts the assistant item of each turn. */
        },
    .modes = amp_modes,
    .n_modes = sizeof amp_modes / sizeof amp_modes[0],
    .can_resume = 1,
    .builtin_version = NULL,
    .resolve_modes = amp_resolve_modes,
    .start_session = NULL,
    .send_message = amp_send_message,
    .reply_permission = NULL,
    .reply_question = NULL,
    .reject_question = NULL,
    .terminate = amp_terminate,
    .free_state = amp_free_state,
    .shutdown = amp_shutdown,
    .server_status_json = NULL,
};
