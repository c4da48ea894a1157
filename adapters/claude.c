/* The Claude Code adapter.
 *
 * Process: one `claude -p --input-format stream-json --output-format
 * stream-json --verbose --include-partial-messages --permission-prompt-tool
 * stdio` per session, started on the first message and kept for the next
 * ones (Claude Code takes a user line after each result line).  It runs in
 * the session's working directory with a private HOME under the data
 * directory, where it keeps its conversations: the session's native id is
 * the UUID we give it with --session-id, so after a crash or a server
 * restart the next message starts `claude --resume <id>` from the same
 * directory and the conversation goes on.
 *
 * Threads.  The functions of `adapter_claude` run on HTTP workers with the
 * session locked: they journal the user's message, build the stdin line and
 * post it to the supervisor loop, never waiting for it.  Everything about
 * the process (spawn, stdin, stdout lines, exit, kill timer, the parser and
 * its pending control requests) lives on the loop, in `struct claude_loop`,
 * and journals through host->emit_async().  Stdin only ever receives
 * complete JSON lines: a non-JSON line makes Claude Code exit.
 *
 * Ends.  An exit we did not ask for (crash, kill, a failed resume) is
 * journaled as an error and a synthetic session.ended (reason error, exit
 * code, the stderr head/tail); a clean exit 0 is not, since the next message
 * resumes.  Terminate (the API) and server shutdown close stdin and send
 * SIGTERM, then SIGKILL after CLAUDE_KILL_MS; neither journals anything here
 * (terminate's session.ended comes from the session layer; a shutdown is not
 * the end of a session).
 */
#include "adapters/claude.h"

#include "agents/adapter.h"
#include "agents/agent_env.h"
#include "agents/agent_proc.h"
#include "base/buf.h"
#include "base/err.h"
#include "events/event.h"
#include "base/hmap.h"
#include "agents/install.h"
#include "agents/supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLAUDE_KILL_MS 3000
#define CLAUDE_MAX_LINE (64u * 1024 * 1024)

/* ======================================================================
 * The process side
 * ====================================================================== */

/* Loop-side state of one session.  Everything here is touched on the loop
 * thread only, except the immutable copies set before the first post. */
struct claude_loop {
    struct adapter_ctx *ctx;    /* for host->emit_async (the host locks) */
    /* Immutable after creation. */
    char *session_id;
    char *native_id;
    char *model;
    char *working_dir;
    char *data_dir;
    int start_in_plan;
    int bypass;
    /* Loop only. */
    uv_loop_t *uv;              /* set by the first spawn */
    supervisor_proc_t *proc;
    adapter_claude_parser_t *parser;
    struct agent_proc_stop stop; /* proc = &proc */
    int stopping;               /* terminate or shutdown: the exit is ours */
    int down;                   /* shutdown: never start again */
};

/* ctx->state: the session's adapter state. */
struct claude_state {
    unsigned long long turns;   /* persisted as {"turns":N}: names user items */
    struct claude_loop *loop;
};

static void claude_log(const struct claude_loop *l, const char *what, const char *detail)
{
    fprintf(stderr, "sandbox-journal: session %s: claude: %s%s%s\n", l->session_id, what,
            detail ? ": " : "", detail ? detail : "");
}

/* Loop: journals `conversions` (borrowed). */
static void claude_emit(struct claude_loop *l, const json_t *conversions)
{
    if (!json_array_size(conversions))
        return;
    struct err err;
    if (l->ctx->host->emit_async(l->ctx, conversions, &err) != 0)
        claude_log(l, "event not journaled", err.msg);
}

static void claude_write(struct claude_loop *l, const char *line)
{
    struct err err;
    if (!l->proc || supervisor_proc_write(l->proc, line, strlen(line), &err) != 0)
        claude_log(l, "cannot write to claude", l->proc ? err.msg : "not running");
}

static void claude_on_line(void *arg, const char *line, size_t len, int cut)
{
    struct claude_loop *l = arg;
    json_t *conversions = json_array();
    json_t *replies = json_array();
    struct err err;
    if (!conversions || !replies) {
        claude_log(l, "out of memory: line dropped", NULL);
    } else {
        if (adapter_claude_parse_line(l->parser, line, len, cut, conversions, replies, &err))
            claude_log(l, "line partly dropped", err.msg);
        size_t i;
        json_t *r;
        json_array_foreach(replies, i, r)
            claude_write(l, json_string_value(r));
        claude_emit(l, conversions);
    }
    json_decref(conversions);
    json_decref(replies);
}

/* Appends to `list` one failed completion of the assistant message per turn
 * still open (the running one shows what it said so far), so every pending
 * assistant item of the session is closed and the next turn gets its own.
 * 0, or -1 when memory ran out. */
static int claude_close_turns(const adapter_claude_parser_t *p, json_t *list)
{
    unsigned long long open = p ? adapter_claude_open_turns(p) : 0;
    for (unsigned long long i = 0; i < open; i++) {
        json_t *content = i == 0 ? adapter_claude_turn_parts(p) : json_array();
        json_t *c = event_conversion("item.completed",
                                     event_item_data(event_item("message", "assistant", "failed",
                                                                NULL, content)));
        if (!c || json_array_append_new(list, c) != 0)
            return -1;
    }
    return 0;
}

static void claude_on_exit(void *arg, const struct supervisor_exit *e)
{
    struct claude_loop *l = arg;
    int mid_turn = l->parser && adapter_claude_turn_active(l->parser);
    json_t *list = json_array();
    struct err err;
    /* Requests the dead process asked are void: no answer can reach it. */
    int ok = list && claude_close_turns(l->parser, list) == 0 &&
             (!l->parser || adapter_claude_withdraw_pending(l->parser, list, &err) == 0);
    adapter_claude_parser_free(l->parser);
    l->parser = NULL;
    l->proc = NULL;
    agent_proc_stop_done(&l->stop);
    if (l->stopping) {
        l->stopping = 0;
        json_decref(list);
        return;
    }
    int code = e->term_signal ? 128 + e->term_signal : (int)e->exit_status;
    if (code == 0 && !mid_turn) {
        json_decref(list);
        return; /* a clean end: the next message resumes */
    }

    char message[160];
    if (e->term_signal)
        snprintf(message, sizeof message, "claude was killed by signal %d", e->term_signal);
    else
        snprintf(message, sizeof message, "claude exited with status %d", code);
    claude_log(l, message, e->stderr_head);
    if (ok) {
        json_t *c = event_synthetic(
            event_conversion("error", event_error_data(message, "process_exit", NULL)));
        ok = c && json_array_append_new(list, c) == 0;
    }
    if (ok) {
        json_t *c = event_synthetic(event_conversion(
            "session.ended", event_session_ended_data(code ? "error" : "completed", "agent",
                                                      message, code, agent_proc_stderr_json(e))));
        ok = c && json_array_append_new(list, c) == 0;
    }
    if (ok)
        claude_emit(l, list);
    else
        claude_log(l, "out of memory: exit not journaled", NULL);
    json_decref(list);
}

/* Loop: ends the process (stdin EOF, SIGTERM, SIGKILL after CLAUDE_KILL_MS). */
static void claude_stop(struct claude_loop *l)
{
    if (!l->proc)
        return;
    l->stopping = 1;
    agent_proc_stop(&l->stop, l->uv, CLAUDE_KILL_MS);
}

/* 1 if Claude Code has a conversation with this id under HOME (then
 * --resume, else --session-id).  Its projects directory names each project
 * after its working directory; look in all of them rather than guess. */
static int claude_has_conversation(const char *home, const char *native_id)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/.claude/projects", home) >= (int)sizeof dir)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *ent;
    while (!found && (ent = readdir(d))) {
        if (ent->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s/%s.jsonl", dir, ent->d_name, native_id) <
                (int)sizeof path &&
            stat(path, &st) == 0)
            found = 1;
    }
    closedir(d);
    return found;
}

/* Loop: starts claude for this session.  0, or an error for the journal. */
static int claude_spawn(uv_loop_t *loop, struct claude_loop *l, const char *binary,
                        struct err *err)
{
    char home[PATH_MAX];
    int rc = agent_env_home(l->data_dir, "claude", home, err);
    if (rc)
        return rc;
    int resume = claude_has_conversation(home, l->native_id);
    const char *args[24];
    size_t n = 0;
    args[n++] = binary;
    args[n++] = "-p";
    args[n++] = "--input-format";
    args[n++] = "stream-json";
    args[n++] = "--output-format";
    args[n++] = "stream-json";
    args[n++] = "--verbose";
    args[n++] = "--include-partial-messages";
    args[n++] = "--permission-prompt-tool";
    args[n++] = "stdio";
    if (l->start_in_plan) {
        args[n++] = "--permission-mode";
        args[n++] = "plan";
    } else if (l->bypass) {
        args[n++] = "--dangerously-skip-permissions";
    }
    if (l->model) {
        args[n++] = "--model";
        args[n++] = l->model;
    }
    args[n++] = resume ? "--resume" : "--session-id";
    args[n++] = l->native_id;
    args[n] = NULL;

    struct agent_env env;
    agent_env_init(&env);
    agent_env_pass_common(&env);
    agent_env_set(&env, "HOME", home);
    agent_env_pass(&env, "ANTHROPIC_BASE_URL");
    agent_env_pass(&env, "ANTHROPIC_AUTH_TOKEN");
    agent_env_pass(&env, "ANTHROPIC_CUSTOM_HEADERS");
    agent_env_pass(&env, "CLAUDE_CODE_MAX_RETRIES");
    agent_env_credential(&env, "anthropic", "ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN");
    /* Nothing but the model endpoint: no telemetry, updates or error reports. */
    agent_env_set(&env, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
    agent_env_set(&env, "DISABLE_TELEMETRY", "1");
    agent_env_set(&env, "DISABLE_AUTOUPDATER", "1");
    agent_env_set(&env, "DISABLE_ERROR_REPORTING", "1");
    /* Claude refuses to skip permissions as root unless told it is sandboxed,
     * which is what this server is for. */
    if (l->bypass && geteuid() == 0)
        agent_env_set(&env, "IS_SANDBOX", "1");
    char *const *envp = agent_env_finish(&env, err);
    if (!envp) {
        agent_env_free(&env);
        return ERR_NOMEM;
    }

    l->uv = loop;
    l->parser = adapter_claude_parser_new(l->session_id, l->start_in_plan);
    if (!l->parser) {
        agent_env_free(&env);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    struct supervisor_proc_options po = {
        .file = binary, .args = args, .env = envp, .cwd = l->working_dir,
        .max_line_bytes = CLAUDE_MAX_LINE,
    };
    struct supervisor_proc_callbacks cb = { .on_line = claude_on_line,
                                            .on_exit = claude_on_exit, .arg = l };
    rc = supervisor_proc_spawn(loop, &po, &cb, &l->proc, err);
    agent_env_free(&env);
    if (rc) {
        adapter_claude_parser_free(l->parser);
        l->parser = NULL;
        l->proc = NULL;
    }
    return rc;
}

/* ---- work posted by the HTTP side -------------------------------------------- */

enum claude_job_kind { CLAUDE_JOB_MESSAGE, CLAUDE_JOB_PERMISSION, CLAUDE_JOB_QUESTION,
                       CLAUDE_JOB_TERMINATE };

struct claude_job {
    enum claude_job_kind kind;
    struct claude_loop *l;
    char *text;       /* MESSAGE: the user's text; PERMISSION: the reply */
    char *binary;     /* MESSAGE */
    char *request_id; /* PERMISSION, QUESTION */
    json_t *answers;  /* QUESTION: NULL to reject */
};

static void claude_job_free(struct claude_job *j)
{
    free(j->text);
    free(j->binary);
    free(j->request_id);
    json_decref(j->answers);
    free(j);
}

/* Loop: a turn could not reach claude: close its assistant item, say why. */
static void claude_turn_failed(struct claude_loop *l, const char *why)
{
    json_t *list = json_array();
    json_t *done = event_conversion("item.completed",
                                    event_item_data(event_item("message", "assistant", "failed",
                                                               NULL, json_array())));
    json_t *error = event_synthetic(
        event_conversion("error", event_error_data(why, "agent_start_failed", NULL)));
    if (list && done && json_array_append_new(list, done) == 0) {
        done = NULL;
        if (error && json_array_append_new(list, error) == 0)
            error = NULL;
        claude_emit(l, list);
    }
    json_decref(done);
    json_decref(error);
    json_decref(list);
}

static void claude_job_run(uv_loop_t *loop, void *arg)
{
    struct claude_job *j = arg;
    struct claude_loop *l = j->l;
    struct err err;
    err_clear(&err);
    switch (j->kind) {
    case CLAUDE_JOB_MESSAGE: {
        if (l->down)
            break;
        if (!l->proc && claude_spawn(loop, l, j->binary, &err) != 0) {
            claude_log(l, "cannot start claude", err.msg);
            claude_turn_failed(l, err.msg);
            break;
        }
        char *line = adapter_claude_user_line(l->parser, j->text);
        if (!line) {
            claude_turn_failed(l, "out of memory writing the message to claude");
            break;
        }
        claude_write(l, line);
        free(line);
        break;
    }
    case CLAUDE_JOB_PERMISSION:
    case CLAUDE_JOB_QUESTION: {
        char *line = NULL;
        int rc = !l->parser ? err_set(&err, ERR_NOT_FOUND, "claude is not running")
                 : j->kind == CLAUDE_JOB_PERMISSION
                     ? adapter_claude_permission_line(l->parser, j->request_id, j->text, &line,
                                                      &err)
                     : adapter_claude_question_line(l->parser, j->request_id, j->answers, &line,
                                                    &err);
        if (rc == 0)
            claude_write(l, line);
        else
            /* The process that asked is gone (crash, restart): the reply is
             * journaled by the session layer and has no one to reach. */
            claude_log(l, "reply not forwarded", err.msg);
        free(line);
        break;
    }
    case CLAUDE_JOB_TERMINATE:
        claude_stop(l);
        break;
    }
    claude_job_free(j);
}

static int claude_post(struct adapter_ctx *ctx, struct claude_job *j, struct err *err)
{
    int rc = supervisor_post(ctx->supervisor, claude_job_run, j, err);
    if (rc)
        claude_job_free(j);
    return rc;
}

/* ---- the adapter --------------------------------------------------------------- */

static char *claude_dup(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *failed = 1;
    return c;
}

static void claude_loop_free(struct claude_loop *l)
{
    if (!l)
        return;
    adapter_claude_parser_free(l->parser);
    free(l->session_id);
    free(l->native_id);
    free(l->model);
    free(l->working_dir);
    free(l->data_dir);
    free(l);
}

/* The state, created on first use (restored turns from saved_state). */
static struct claude_state *claude_state_get(struct adapter_ctx *ctx, struct err *err)
{
    struct claude_state *st = ctx->state;
    if (st)
        return st;
    st = calloc(1, sizeof *st);
    struct claude_loop *l = calloc(1, sizeof *l);
    if (!st || !l)
        goto nomem;
    int failed = 0;
    l->ctx = ctx;
    l->session_id = claude_dup(ctx->session_id, &failed);
    l->stop = (struct agent_proc_stop){ .proc = &l->proc, .agent = "claude",
                                        .session_id = l->session_id };
    l->native_id = claude_dup(ctx->native_session_id, &failed);
    l->model = claude_dup(ctx->model, &failed);
    l->working_dir = claude_dup(ctx->working_dir, &failed);
    l->data_dir = claude_dup(ctx->data_dir, &failed);
    l->start_in_plan = strcmp(ctx->permission_mode, "plan") == 0 ||
                       strcmp(ctx->agent_mode, "plan") == 0;
    l->bypass = strcmp(ctx->permission_mode, "bypass") == 0;
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
    claude_loop_free(l);
    free(st);
    err_set(err, ERR_NOMEM, "out of memory");
    return NULL;
}

static int claude_resolve_modes(const char *agent_mode, const char *permission_mode,
                                char agent_mode_out[32], char permission_mode_out[32],
                                struct err *err)
{
    const char *am = agent_mode ? agent_mode : "build";
    const char *pm = permission_mode ? permission_mode : "default";
    if (strcmp(am, "build") != 0 && strcmp(am, "plan") != 0)
        return err_set_mode(err, "claude", am);
    if (strcmp(pm, "default") != 0 && strcmp(pm, "plan") != 0 && strcmp(pm, "bypass") != 0 &&
        strcmp(pm, "acceptEdits") != 0)
        return err_set(err, ERR_INVALID, "invalid request: invalid permission mode: %s", pm);
    snprintf(agent_mode_out, 32, "%s", am);
    snprintf(permission_mode_out, 32, "%s", pm);
    return 0;
}

/* A random (version 4) UUID: Claude Code's session ids are UUIDs. */
static int claude_uuid(char out[37], struct err *err)
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b) : -1;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)sizeof b)
        return err_set(err, ERR_INTERNAL, "cannot read /dev/urandom");
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    return 0;
}

static int claude_start_session(struct adapter_ctx *ctx, char native_id_out[128],
                                struct err *err)
{
    (void)ctx; /* a fresh id needs nothing of the session */
    char uuid[37];
    int rc = claude_uuid(uuid, err);
    if (rc)
        return rc;
    snprintf(native_id_out, 128, "%s", uuid);
    /* The loop state copies the native id when it is first needed, after
     * the session layer has stored it in ctx. */
    return 0;
}

static int claude_send_message(struct adapter_ctx *ctx, const char *message, struct err *err)
{
    if (!ctx->binary_path)
        return err_set_subject(err, ERR_NOT_INSTALLED, "claude", "agent not installed: claude");
    struct stat st;
    if (!ctx->working_dir || stat(ctx->working_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, ERR_INVALID, "invalid request: the session's working directory %s "
                                         "is gone",
                       ctx->working_dir ? ctx->working_dir : "(unknown)");
    if (!ctx->native_session_id)
        return err_set(err, ERR_INTERNAL, "claude session without a native id");
    struct claude_state *s = claude_state_get(ctx, err);
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

    struct claude_job *j = calloc(1, sizeof *j);
    int failed = !j;
    if (j) {
        j->kind = CLAUDE_JOB_MESSAGE;
        j->l = s->loop;
        j->text = claude_dup(message, &failed);
        j->binary = claude_dup(ctx->binary_path, &failed);
    }
    if (failed) {
        if (j)
            claude_job_free(j);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    return claude_post(ctx, j, err);
}

static int claude_reply_permission(struct adapter_ctx *ctx, const char *permission_id,
                                   const char *reply, const json_t *pending, struct err *err)
{
    (void)pending; /* the loop keeps Claude's request, input included */
    struct claude_state *s = claude_state_get(ctx, err);
    if (!s)
        return ERR_NOMEM;
    struct claude_job *j = calloc(1, sizeof *j);
    int failed = !j;
    if (j) {
        j->kind = CLAUDE_JOB_PERMISSION;
        j->l = s->loop;
        j->text = claude_dup(reply, &failed);
        j->request_id = claude_dup(permission_id, &failed);
    }
    if (failed) {
        if (j)
            claude_job_free(j);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    return claude_post(ctx, j, err);
}

static int claude_question(struct adapter_ctx *ctx, const char *question_id,
                           const json_t *answers, struct err *err)
{
    struct claude_state *s = claude_state_get(ctx, err);
    if (!s)
        return ERR_NOMEM;
    struct claude_job *j = calloc(1, sizeof *j);
    int failed = !j;
    if (j) {
        j->kind = CLAUDE_JOB_QUESTION;
        j->l = s->loop;
        j->request_id = claude_dup(question_id, &failed);
        if (answers && !(j->answers = json_deep_copy(answers)))
            failed = 1;
    }
    if (failed) {
        if (j)
            claude_job_free(j);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    return claude_post(ctx, j, err);
}

static int claude_reply_question(struct adapter_ctx *ctx, const char *question_id,
                                 const json_t *answers, const json_t *pending, struct err *err)
{
    (void)pending; /* the loop keeps Claude's request */
    return claude_question(ctx, question_id, answers, err);
}

static int claude_reject_question(struct adapter_ctx *ctx, const char *question_id,
                                  const json_t *pending, struct err *err)
{
    (void)pending; /* the loop keeps Claude's request */
    return claude_question(ctx, question_id, NULL, err);
}

static void claude_terminate(struct adapter_ctx *ctx)
{
    struct claude_state *s = ctx->state;
    if (!s)
        return; /* never started a process */
    struct claude_job *j = calloc(1, sizeof *j);
    struct err err;
    if (!j) {
        fprintf(stderr, "sandbox-journal: session %s: out of memory stopping claude\n",
                ctx->session_id);
        return;
    }
    j->kind = CLAUDE_JOB_TERMINATE;
    j->l = s->loop;
    if (claude_post(ctx, j, &err) != 0)
        fprintf(stderr, "sandbox-journal: session %s: cannot stop claude: %s\n",
                ctx->session_id, err.msg);
}

static void claude_shutdown(struct adapter_ctx *ctx)
{
    struct claude_state *s = ctx->state;
    if (!s)
        return;
    struct claude_loop *l = s->loop;
    l->down = 1;
    /* A turn the stop cuts short is over (Claude drops it; the next message
     * resumes the conversation without it): close its assistant item and
     * say why.  The session itself is not ended. */
    if (l->parser && adapter_claude_turn_active(l->parser)) {
        json_t *list = json_array();
        json_t *error = event_synthetic(event_conversion(
            "error", event_error_data("the server stopped during the turn", "server_shutdown",
                                      NULL)));
        struct err err;
        if (list && error && claude_close_turns(l->parser, list) == 0 &&
            adapter_claude_withdraw_pending(l->parser, list, &err) == 0 &&
            json_array_append_new(list, error) == 0) {
            error = NULL;
            claude_emit(l, list);
        } else {
            claude_log(l, "out of memory: interrupted turn not journaled", NULL);
        }
        json_decref(error);
        json_decref(list);
    }
    claude_stop(l);
}

static void claude_free_state(struct adapter_ctx *ctx)
{
    struct claude_state *s = ctx->state;
    if (!s)
        return;
    claude_loop_free(s->loop);
    free(s);
    ctx->state = NULL;
}

static const struct adapter_mode claude_modes[] = {
    { "build", "Build", "Default build mode" },
    { "plan", "Plan", "Plan mode (prompt-only)" },
};

const struct adapter adapter_claude = {
    .name = "claude",
    .caps =
        {
            .plan_mode = 1,
            .permissions = 1,
            .questions = 1,
            .tool_calls = 1,
            .tool_results = 1,
            .text_messages = 1,
            .error_events = 1,
            .reasoning = 1,
            .streaming_deltas = 1,
            /* The session layer starts assistant items for it, as the
             * reference does: Claude's output is re-targeted at them. */
            .item_started = 0,
        },
    .modes = claude_modes,
    .n_modes = sizeof claude_modes / sizeof claude_modes[0],
    .can_resume = 1,
    .builtin_version = NULL,
    .resolve_modes = claude_resolve_modes,
    .start_session = claude_start_session,
    .send_message = claude_send_message,
    .reply_permission = claude_reply_permission,
    .reply_question = claude_reply_question,
    .reject_question = claude_reject_question,
    .terminate = claude_terminate,
    .free_state = claude_free_state,
    .shutdown = claude_shutdown,
    .server_status_json = NULL,
};
