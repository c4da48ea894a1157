/* The ACP adapter: a protocol of the line-oriented CLI driver
 * (agents/cli_driver.h) for every agent that speaks the Agent Client
 * Protocol on its stdio; its pure parser is acp_parse.c (see acp.h for the
 * mapping).
 *
 * Agents.  One `struct adapter` per agent: the built-in ones of
 * acp_agents.def (adapter_<id>, listed by the registry), and those
 * `server --acp-agent NAME=COMMAND [ARGS...]` registers at start-up
 * (adapter_acp_custom_new).  They differ only in their launch line, the
 * adapter's `spec`; the instance made from it (instance_new) holds the
 * split argument and variable lists and the driver protocol named after the
 * agent, so each agent has its own private HOME.
 *
 * Process: one long-lived agent process per session, started on the first
 * message in the session's working directory.  Its first line is
 * `initialize`; the parser then opens the session (session/load of the
 * native id when resuming and the agent can load, else session/new) and
 * sends the prompts one at a time.  The native id is the ACP session id.
 * After a server restart, the first message reads the journal's transcript
 * (host->transcript) and it is offered as context when the agent cannot
 * load its old session; the parser says so in a status item.
 *
 * The agent's requests: permissions become permission.requested and are
 * answered through the reply endpoint (cli_driver_reply); fs/read_text_file
 * and fs/write_text_file are answered here, on the loop, for paths inside
 * the session's working directory only (resolved with realpath(), so ".."
 * and symlinks cannot leave it); terminals and unknown methods are refused
 * by the parser.  The file work is small and local (the agent's own
 * edits), so it runs on the loop rather than a thread of its own.
 *
 * Ends (the driver's rules): a crash or kill journals an error and a
 * synthetic session.ended, and the next message starts the agent again and
 * resumes.  Terminate sends session/cancel, then stops the process (stdin
 * EOF, SIGTERM, SIGKILL after ACP_KILL_MS).
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "adapters/acp.h"
#include "adapters/acp_home.h"

#include "agents/adapter.h"
#include "agents/agent_env.h"
#include "agents/cli_driver.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACP_KILL_MS 3000
#define ACP_MAX_LINE (64u * 1024 * 1024)
#define ACP_MAX_FILE (16u * 1024 * 1024) /* the largest file read or written for the agent */
#define ACP_MAX_WORDS 24                 /* launch arguments, binary excluded */
#define ACP_MAX_VARS 24

/* An agent's launch line, as acp_agents.def has it. */
struct acp_spec {
    const char *id;
    const char *binary;
    const char *args; /* space-separated */
    const char *vars; /* space-separated */
};

/* One agent in this server (adapter.h instance_new). */
struct acp_instance {
    struct cli_driver_protocol proto; /* first: the driver hands it back */
    char *id;
    char *arg_words, *var_words;      /* args and vars point into them */
    const char *args[ACP_MAX_WORDS + 1];
    const char *vars[ACP_MAX_VARS + 1];
    pthread_mutex_t lock;             /* guards modes */
    json_t *modes;                    /* as the agent last reported them, or NULL */
};

/* The protocol's state of one session. */
struct acp_proto {
    struct acp_instance *inst;
    /* Immutable after creation. */
    char *session_id;
    char *working_dir;                /* resolved (realpath) */
    char *agent_mode;
    char *model;
    json_t *mcp_servers;              /* ACP's form */
    int bypass;
    /* Loop only. */
    char *context;                    /* the transcript for a resume without load,
                                       * until the first process starts */
    adapter_acp_parser_t *parser;     /* the running process's */
};

/* ---- the instance ------------------------------------------------------------ */

/* Splits `text` at spaces into out[max+1] (NULL-terminated), pointing into
 * *storage (new).  -1 when memory ran out or there are too many words. */
static int acp_split(const char *text, char **storage, const char **out, size_t max)
{
    size_t n = 0;
    *storage = strdup(text ? text : "");
    if (!*storage)
        return -1;
    for (char *save = NULL, *w = strtok_r(*storage, " \t", &save); w;
         w = strtok_r(NULL, " \t", &save)) {
        if (n == max)
            return -1;
        out[n++] = w;
    }
    out[n] = NULL;
    return 0;
}

static void acp_instance_free(void *instance)
{
    struct acp_instance *in = instance;
    if (!in)
        return;
    json_decref(in->modes);
    pthread_mutex_destroy(&in->lock);
    free(in->arg_words);
    free(in->var_words);
    free(in->id);
    free(in);
}

static const struct cli_driver_protocol acp_protocol_template;

static int acp_instance_new(const struct adapter_settings *settings, void **out,
                            struct err *err)
{
    const struct acp_spec *spec = settings->adapter ? settings->adapter->spec : NULL;
    if (!spec)
        return err_set(err, ERR_INTERNAL, "ACP adapter without its agent's launch line");
    struct acp_instance *in = calloc(1, sizeof *in);
    if (!in)
        return err_set(err, ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&in->lock, NULL) != 0) {
        free(in);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    if (!(in->id = strdup(spec->id)) ||
        acp_split(spec->args, &in->arg_words, in->args, ACP_MAX_WORDS) != 0 ||
        acp_split(spec->vars, &in->var_words, in->vars, ACP_MAX_VARS) != 0) {
        acp_instance_free(in);
        return err_set(err, ERR_NOMEM, "out of memory or too many words in %s's launch line",
                       spec->id);
    }
    in->proto = acp_protocol_template;
    in->proto.name = in->id;
    *out = in;
    return 0;
}

static json_t *acp_modes_json(void *instance)
{
    struct acp_instance *in = instance;
    if (!in)
        return NULL;
    pthread_mutex_lock(&in->lock);
    json_t *modes = in->modes ? json_deep_copy(in->modes) : NULL;
    pthread_mutex_unlock(&in->lock);
    return modes;
}

/* ---- the protocol ------------------------------------------------------------ */

static void acp_state_free(void *state)
{
    struct acp_proto *c = state;
    adapter_acp_parser_free(c->parser);
    json_decref(c->mcp_servers);
    free(c->session_id);
    free(c->working_dir);
    free(c->agent_mode);
    free(c->model);
    free(c->context);
    free(c);
}

static void *acp_state_new(const struct adapter_ctx *ctx)
{
    struct acp_proto *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    char real[PATH_MAX];
    const char *dir = ctx->working_dir && realpath(ctx->working_dir, real) ? real
                                                                           : ctx->working_dir;
    c->inst = ctx->instance;
    c->session_id = strdup(ctx->session_id);
    c->working_dir = strdup(dir ? dir : "/");
    c->agent_mode = ctx->agent_mode ? strdup(ctx->agent_mode) : NULL;
    c->model = ctx->model ? strdup(ctx->model) : NULL;
    c->mcp_servers = adapter_acp_mcp_servers(ctx->mcp_servers);
    c->bypass = ctx->permission_mode && strcmp(ctx->permission_mode, "bypass") == 0;
    if (!c->session_id || !c->working_dir || (ctx->agent_mode && !c->agent_mode) ||
        (ctx->model && !c->model) || !c->mcp_servers) {
        acp_state_free(c);
        return NULL;
    }
    /* A session that had an agent session before this server started: keep
     * the conversation at hand in case the agent cannot load it. */
    if (ctx->native_session_id && ctx->host->transcript) {
        char *text = NULL;
        struct err err;
        if (ctx->host->transcript((struct adapter_ctx *)ctx, &text, &err) != 0)
            fprintf(stderr, "sandbox-journal: session %s: no transcript for the agent: %s\n",
                    ctx->session_id, err.msg);
        else if (text && *text) {
            static const char intro[] =
                "This conversation continues an earlier one whose history you no longer "
                "have. Here it is, for context:\n\n";
            c->context = malloc(sizeof intro + strlen(text));
            if (c->context) {
                memcpy(c->context, intro, sizeof intro - 1);
                strcpy(c->context + sizeof intro - 1, text);
            }
        }
        free(text);
    }
    return c;
}

/* Eight random hex digits: the permission ids of one process. */
static void acp_token(char out[9])
{
    unsigned char b[4] = { 0 };
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, b, sizeof b) != (ssize_t)sizeof b) {
            /* Falls back to the pid: unique enough among one session's processes. */
            unsigned pid = (unsigned)getpid();
            memcpy(b, &pid, sizeof b);
        }
        close(fd);
    }
    snprintf(out, 9, "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
}

static int acp_command(void *state, const char *binary, const char *home, const char *native_id,
                       const char *args[CLI_DRIVER_MAX_ARGS], struct agent_env *env,
                       struct err *err)
{
    struct acp_proto *c = state;
    struct acp_instance *in = c->inst;
    size_t n = 0;
    args[n++] = binary;
    for (size_t i = 0; in->args[i] && n < CLI_DRIVER_MAX_ARGS - 1; i++)
        args[n++] = in->args[i];
    args[n] = NULL;
    int wants_openai = 0, wants_anthropic = 0;
    for (size_t i = 0; in->vars[i]; i++) {
        agent_env_pass(env, in->vars[i]);
        wants_openai |= strcmp(in->vars[i], "OPENAI_API_KEY") == 0;
        wants_anthropic |= strcmp(in->vars[i], "ANTHROPIC_API_KEY") == 0;
        if (c->model && strcmp(in->vars[i], "OPENAI_MODEL") == 0)
            agent_env_set(env, "OPENAI_MODEL", c->model);
    }
    if (wants_openai)
        agent_env_credential(env, "openai", "OPENAI_API_KEY", NULL);
    if (wants_anthropic)
        agent_env_credential(env, "anthropic", "ANTHROPIC_API_KEY", NULL);
    int rc = adapter_acp_home_prepare(in->id, binary, home, c->model, env, err);
    if (rc)
        return rc;

    char token[9];
    acp_token(token);
    struct adapter_acp_start start = {
        .session_id = c->session_id, .id_prefix = token, .cwd = c->working_dir,
        .mcp_servers = c->mcp_servers, .resume_id = native_id, .agent_mode = c->agent_mode,
        .context = native_id ? c->context : NULL,
        /* Gemini CLI 0.61.0 replays a loaded session after the result. */
        .sync_after_load = strcmp(in->id, "gemini") == 0,
    };
    adapter_acp_parser_free(c->parser);
    c->parser = adapter_acp_parser_new(&start);
    if (!c->parser)
        return err_set(err, ERR_NOMEM, "out of memory");
    /* The transcript is the journal's as of this server's start: offered to
     * the first process only (a later one after a crash either loads the
     * session this one made or starts without it). */
    free(c->context);
    c->context = NULL;
    return 0;
}

static char *acp_encode(void *state, const char *text)
{
    struct acp_proto *c = state;
    return c->parser ? adapter_acp_prompt(c->parser, text) : NULL;
}

/* 1 if `path` is `dir` or below it (both resolved). */
static int acp_is_inside(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    if (strcmp(dir, "/") == 0)
        return 1;
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Resolves the agent's `path` for reading (the file must exist) or writing
 * (its directory must; the file itself may be new) into out[PATH_MAX].
 * Refused (-1, the reason in why) outside `dir`, symlinks included. */
static int acp_resolve(const char *dir, const char *path, int for_write, char out[PATH_MAX],
                       const char **why)
{
    if (path[0] != '/') {
        *why = "the path must be absolute";
        return -1;
    }
    if (realpath(path, out)) {
        if (!acp_is_inside(dir, out)) {
            *why = "the path is outside the session's working directory";
            return -1;
        }
        return 0;
    }
    if (!for_write || errno != ENOENT) {
        *why = strerror(errno);
        return -1;
    }
    /* A new file: its directory must resolve inside, and the name be plain. */
    const char *slash = strrchr(path, '/');
    const char *name = slash + 1;
    char parent[PATH_MAX];
    size_t plen = (size_t)(slash - path);
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || plen >= sizeof parent) {
        *why = "not a file name";
        return -1;
    }
    memcpy(parent, path, plen);
    parent[plen] = '\0';
    char real[PATH_MAX];
    if (!realpath(plen ? parent : "/", real)) {
        *why = strerror(errno);
        return -1;
    }
    if (!acp_is_inside(dir, real)) {
        *why = "the path is outside the session's working directory";
        return -1;
    }
    if (snprintf(out, PATH_MAX, "%s/%s", strcmp(real, "/") == 0 ? "" : real, name) >= PATH_MAX) {
        *why = "path too long";
        return -1;
    }
    return 0;
}

/* new (free()): the reply line to an fs/read_text_file request. */
static char *acp_read_file(const struct acp_proto *c, const json_t *id, const json_t *params)
{
    char path[PATH_MAX];
    const char *why = NULL;
    if (acp_resolve(c->working_dir, json_string_value(json_object_get(params, "path")), 0,
                    path, &why) != 0)
        return adapter_acp_error_line(id, ADAPTER_ACP_INVALID_PARAMS, why);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > ACP_MAX_FILE) {
        if (fd >= 0)
            close(fd);
        return adapter_acp_error_line(id, ADAPTER_ACP_INVALID_PARAMS,
                                      fd < 0 ? strerror(errno) : "not a readable text file");
    }
    char *data = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (data && got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!data)
        return NULL;
    data[got] = '\0';
    /* line (1-based) and limit select lines. */
    json_int_t line = json_integer_value(json_object_get(params, "line"));
    json_int_t limit = json_integer_value(json_object_get(params, "limit"));
    const char *start = data;
    for (json_int_t l = 1; l < line && start; l++) {
        start = strchr(start, '\n');
        start = start ? start + 1 : NULL;
    }
    if (!start)
        start = data + got;
    const char *end = data + got;
    if (limit > 0) {
        const char *e = start;
        for (json_int_t l = 0; l < limit && e && e < end; l++) {
            e = strchr(e, '\n');
            e = e ? e + 1 : NULL;
        }
        if (e)
            end = e;
    }
    json_t *text = json_stringn(start, (size_t)(end - start));
    free(data);
    if (!text)
        return adapter_acp_error_line(id, ADAPTER_ACP_INVALID_PARAMS, "not UTF-8 text");
    return adapter_acp_result_line(id, json_pack("{s:o}", "content", text));
}

/* new (free()): the reply line to an fs/write_text_file request. */
static char *acp_write_file(const struct acp_proto *c, const json_t *id, const json_t *params)
{
    char path[PATH_MAX];
    const char *why = NULL;
    if (acp_resolve(c->working_dir, json_string_value(json_object_get(params, "path")), 1,
                    path, &why) != 0)
        return adapter_acp_error_line(id, ADAPTER_ACP_INVALID_PARAMS, why);
    const json_t *content = json_object_get(params, "content");
    /* O_NOFOLLOW: a symlink put there since the check is not followed. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return adapter_acp_error_line(id, ADAPTER_ACP_INTERNAL_ERROR, strerror(errno));
    const char *data = json_string_value(content);
    size_t len = json_string_length(content), done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    int failed = close(fd) != 0 || done < len;
    if (failed)
        return adapter_acp_error_line(id, ADAPTER_ACP_INTERNAL_ERROR, "write failed");
    return adapter_acp_result_line(id, json_null());
}

static int acp_parse(void *state, const char *line, size_t len, int cut, json_t *conversions,
                     json_t *replies, struct err *err)
{
    struct acp_proto *c = state;
    if (!c->parser)
        return 0;
    json_t *requests = json_array();
    if (!requests)
        return err_set(err, ERR_NOMEM, "out of memory");
    size_t first = json_array_size(conversions);
    int rc = adapter_acp_parse_line(c->parser, line, len, cut, conversions, replies, requests,
                                    err);
    size_t i;
    json_t *r;
    json_array_foreach(requests, i, r) {
        const json_t *id = json_object_get(r, "id");
        const char *method = json_string_value(json_object_get(r, "method"));
        const json_t *params = json_object_get(r, "params");
        char *reply = strcmp(method, "fs/read_text_file") == 0 ? acp_read_file(c, id, params)
                                                               : acp_write_file(c, id, params);
        json_t *s = reply ? json_string(reply) : NULL;
        free(reply);
        if (!s || json_array_append_new(replies, s) != 0)
            rc = err_set(err, ERR_NOMEM, "out of memory answering the agent");
    }
    json_decref(requests);
    /* With bypass, every permission is granted at once. */
    for (i = first; c->bypass && i < json_array_size(conversions); i++) {
        json_t *conv = json_array_get(conversions, i);
        const char *type = json_string_value(json_object_get(conv, "type"));
        const char *perm = json_string_value(
            json_object_get(json_object_get(conv, "data"), "permission_id"));
        char *reply = NULL;
        struct err perr;
        if (type && perm && strcmp(type, "permission.requested") == 0 &&
            adapter_acp_permission_line(c->parser, perm, "always", &reply, &perr) == 0) {
            json_t *s = json_string(reply);
            free(reply);
            if (!s || json_array_append_new(replies, s) != 0)
                rc = err_set(err, ERR_NOMEM, "out of memory answering the agent");
            /* Nothing was asked of anyone: not journaled as a request. */
            if (json_array_remove(conversions, i) == 0)
                i--;
        }
    }
    /* The modes the agent reports, for GET /v1/agents/{id}/modes. */
    json_t *modes = adapter_acp_modes(c->parser);
    if (modes) {
        pthread_mutex_lock(&c->inst->lock);
        json_decref(c->inst->modes);
        c->inst->modes = modes;
        pthread_mutex_unlock(&c->inst->lock);
    }
    return rc;
}

static const char *acp_native_id(const void *state)
{
    const struct acp_proto *c = state;
    return c->parser ? adapter_acp_session_id(c->parser) : NULL;
}

static int acp_turn_open(const void *state)
{
    const struct acp_proto *c = state;
    return c->parser && adapter_acp_open_turns(c->parser) > 0;
}

static int acp_close_turns(void *state, json_t *list, struct err *err)
{
    struct acp_proto *c = state;
    return c->parser ? adapter_acp_close_turns(c->parser, list, err) : 0;
}

static void acp_process_gone(void *state)
{
    struct acp_proto *c = state;
    adapter_acp_parser_free(c->parser);
    c->parser = NULL;
}

static const char *acp_unfinished_exit(char *message, size_t size)
{
    snprintf(message, size, "the ACP agent exited before it finished the turn");
    return "error";
}

static const struct cli_driver_protocol acp_protocol_template = {
    .name = "acp", /* each instance names its own copy after the agent */
    .kill_ms = ACP_KILL_MS,
    .max_line_bytes = ACP_MAX_LINE,
    .per_turn = 0,
    .state_new = acp_state_new,
    .state_free = acp_state_free,
    .user_message = adapter_acp_user_message,
    .command = acp_command,
    .encode = acp_encode,
    .parse_line = acp_parse,
    .native_id = acp_native_id,
    .turn_open = acp_turn_open,
    .close_turns = acp_close_turns,
    .process_gone = acp_process_gone,
    .unfinished_exit = acp_unfinished_exit,
};

/* ---- lines made on the loop for the HTTP side ------------------------------------ */

struct acp_reply {
    char *permission_id; /* NULL: the cancel line */
    char *reply;
};

static void acp_reply_free(void *arg)
{
    struct acp_reply *r = arg;
    free(r->permission_id);
    free(r->reply);
    free(r);
}

static int acp_reply_line(void *state, void *arg, char **line, struct err *err)
{
    struct acp_proto *c = state;
    struct acp_reply *r = arg;
    if (!c->parser)
        return err_set(err, ERR_NOT_FOUND, "the agent is not running");
    if (!r->permission_id) {
        *line = adapter_acp_cancel_line(c->parser);
        return *line ? 0 : err_set(err, ERR_NOMEM, "out of memory");
    }
    return adapter_acp_permission_line(c->parser, r->permission_id, r->reply, line, err);
}

static int acp_post(struct adapter_ctx *ctx, const char *permission_id, const char *reply,
                    struct err *err)
{
    struct acp_instance *in = ctx->instance;
    struct acp_reply *r = calloc(1, sizeof *r);
    if (!r || (permission_id && !(r->permission_id = strdup(permission_id))) ||
        (reply && !(r->reply = strdup(reply)))) {
        if (r)
            acp_reply_free(r);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    return cli_driver_reply(ctx, &in->proto, acp_reply_line, acp_reply_free, r, err);
}

/* ---- the adapters ------------------------------------------------------------------ */

static int acp_send_message(struct adapter_ctx *ctx, const char *message, struct err *err)
{
    struct acp_instance *in = ctx->instance;
    if (!in)
        return err_set(err, ERR_INTERNAL, "ACP agent without its instance");
    return cli_driver_send(ctx, &in->proto, message, err);
}

static int acp_reply_permission(struct adapter_ctx *ctx, const char *permission_id,
                                const char *reply, const json_t *pending, struct err *err)
{
    (void)pending; /* the parser keeps the agent's request and options */
    return acp_post(ctx, permission_id, reply, err);
}

static void acp_terminate(struct adapter_ctx *ctx)
{
    /* session/cancel first (posted jobs run in order), then the stop. */
    struct err err;
    if (ctx->state && acp_post(ctx, NULL, NULL, &err) != 0)
        fprintf(stderr, "sandbox-journal: session %s: cannot cancel the ACP prompt: %s\n",
                ctx->session_id, err.msg);
    cli_driver_terminate(ctx);
}

static const char *const acp_permission_modes[] = { "default", "bypass", NULL };
/* The agent's own modes are its to judge (any name passes; "build" is the
 * agent's default mode). */
static const struct adapter_mode_rule acp_mode_rule = {
    .agent = "acp",
    .agent_modes = NULL,
    .permission_modes = acp_permission_modes,
};

static const struct adapter_mode acp_modes[] = {
    { "build", "Build", "The agent's default mode" },
};

/* What every ACP agent shows over the protocol (docs/agents.md): diffs are
 * file_ref parts of the tool's result, not items of their own; shell
 * commands and MCP tools are tool calls like any other. */
#define ACP_REPORTS_ALL                                                                      \
    { .permissions = 1, .tool_calls = 1, .tool_results = 1, .text_messages = 1,               \
      .file_attachments = 1, .error_events = 1, .reasoning = 1, .status = 1,                  \
      .streaming_deltas = 1, .item_started = 0 }
#define ACP_REPORTS_FINAL_TEXT                                                               \
    { .text_messages = 1, .error_events = 1, .status = 1, .streaming_deltas = 1 }
#define ACP_ADAPTER_FIELDS                                                                   \
    .modes = acp_modes, .n_modes = sizeof acp_modes / sizeof acp_modes[0], .can_resume = 1,   \
    .builtin_version = NULL, .mode_rule = &acp_mode_rule, .start_session = NULL,              \
    .send_message = acp_send_message, .reply_permission = acp_reply_permission,               \
    .reply_question = NULL, .reject_question = NULL, .terminate = acp_terminate,              \
    .free_state = cli_driver_free_state, .shutdown = cli_driver_shutdown,                     \
    .instance_new = acp_instance_new, .instance_free = acp_instance_free,                     \
    .server_status_json = NULL, .modes_json = acp_modes_json

#define ACP_AGENT(id_, binary_, args_, vars_, reports_)                                       \
    static const struct acp_spec acp_spec_##id_ = { #id_, binary_, args_, vars_ };           \
    const struct adapter adapter_##id_ = { .name = #id_, .command = binary_,                  \
                                           .spec = &acp_spec_##id_, .caps = reports_,         \
                                           ACP_ADAPTER_FIELDS };
#include "adapters/acp_agents.def"
#undef ACP_AGENT

/* A custom agent: its adapter, spec and strings in one allocation. */
struct acp_custom {
    struct adapter adapter;
    struct acp_spec spec;
    char text[];
};

static const struct adapter acp_custom_template = { .name = NULL, .caps = ACP_REPORTS_ALL,
                                                    ACP_ADAPTER_FIELDS };

int adapter_acp_custom_new(const char *definition, const struct adapter **out, struct err *err)
{
    const char *eq = strchr(definition, '=');
    size_t nlen = eq ? (size_t)(eq - definition) : 0;
    if (!eq || nlen == 0 || nlen > 31)
        return err_set(err, ERR_INVALID, "--acp-agent takes NAME=COMMAND [ARGS...], not '%s'",
                       definition);
    for (size_t i = 0; i < nlen; i++) {
        char ch = definition[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
            return err_set(err, ERR_INVALID,
                           "--acp-agent: the name may hold a-z, 0-9, '-' and '_' only: '%.*s'",
                           (int)nlen, definition);
    }
    const char *cmd = eq + 1;
    while (*cmd == ' ' || *cmd == '\t')
        cmd++;
    size_t blen = strcspn(cmd, " \t");
    if (blen == 0)
        return err_set(err, ERR_INVALID, "--acp-agent %.*s: the command is missing", (int)nlen,
                       definition);
    const char *rest = cmd + blen;
    size_t rlen = strlen(rest);
    static const char vars[] = "OPENAI_API_KEY OPENAI_BASE_URL OPENAI_MODEL ANTHROPIC_API_KEY "
                               "ANTHROPIC_BASE_URL GEMINI_API_KEY";
    struct acp_custom *a = calloc(1, sizeof *a + nlen + 1 + blen + 1 + rlen + 1);
    if (!a)
        return err_set(err, ERR_NOMEM, "out of memory");
    char *name = a->text, *binary = name + nlen + 1, *args = binary + blen + 1;
    memcpy(name, definition, nlen);
    memcpy(binary, cmd, blen);
    memcpy(args, rest, rlen + 1);
    a->spec = (struct acp_spec){ name, binary, args, vars };
    a->adapter = acp_custom_template;
    a->adapter.name = name;
    a->adapter.command = binary;
    a->adapter.spec = &a->spec;
    *out = &a->adapter;
    return 0;
}

void adapter_acp_custom_free(const struct adapter *adapter)
{
    /* The adapter is the allocation's first member. */
    free((void *)adapter);
}
