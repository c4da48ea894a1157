/* The Claude Code adapter: a protocol of the line-oriented CLI driver
 * (agents/cli_driver.h), with its pure parser in claude_parse.c.
 *
 * Process: one `claude -p --input-format stream-json --output-format
 * stream-json --verbose --include-partial-messages --permission-prompt-tool
 * stdio` per session, started on the first message and kept for the next
 * ones (Claude Code takes a user line after each result line).  It runs in
 * the session's working directory with a private HOME under the data
 * directory, where it keeps its conversations: the session's native id is
 * the UUID we give it with --session-id, so after a crash or a server
 * restart the next message starts `claude --resume <id>` from the same
 * directory and the conversation goes on.  Stdin only ever receives
 * complete JSON lines: a non-JSON line makes Claude Code exit.
 *
 * The parser lives as long as one process: the control requests it keeps
 * pending (permissions, questions) die with the process that asked.
 * Permission and question replies are made into control_response lines on
 * the loop, where the parser is.
 *
 * Ends (the driver's rules): an exit we did not ask for (crash, kill, a
 * failed resume, exit 0 mid-turn) is journaled as an error and a synthetic
 * session.ended; a clean exit 0 between turns is not, since the next message
 * resumes.  Terminate and server shutdown stop the process (stdin EOF,
 * SIGTERM, SIGKILL after CLAUDE_KILL_MS).
 */
#include "adapters/claude.h"

#include "agents/adapter.h"
#include "agents/agent_env.h"
#include "agents/user_config.h"
#include "agents/cli_driver.h"
#include "agents/mcp_config.h"
#include "agents/skills.h"
#include "base/err.h"
#include "base/sha256.h"
#include "events/event.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLAUDE_KILL_MS 3000
#define CLAUDE_MAX_LINE (64u * 1024 * 1024)

/* The protocol's state of one session. */
struct claude_proto {
    /* Immutable after creation. */
    char *session_id;
    char *model;
    int start_in_plan;
    int bypass;
    /* Claude's --mcp-config document (text) for the session's MCP servers,
     * or NULL for none; written into its home before each start. */
    char *mcp_json;
    /* Loop only: where the document was last written, args' borrow. */
    char mcp_path[PATH_MAX];
    /* The session's skills (ctx.skills, copied), or NULL for none: a
     * plugin of them is written into the home before each start. */
    json_t *skills;
    /* Loop only: that plugin's directory, args' borrow. */
    char plugin_dir[PATH_MAX];
    /* Loop only: the running process's parser, NULL without one. */
    adapter_claude_parser_t *parser;
};

static void claude_state_free(void *state)
{
    struct claude_proto *c = state;
    adapter_claude_parser_free(c->parser);
    free(c->session_id);
    free(c->model);
    free(c->mcp_json);
    json_decref(c->skills);
    free(c);
}

static void *claude_state_new(const struct adapter_ctx *ctx)
{
    struct claude_proto *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->session_id = strdup(ctx->session_id);
    c->model = ctx->model ? strdup(ctx->model) : NULL;
    c->start_in_plan = strcmp(ctx->permission_mode, "plan") == 0 ||
                       strcmp(ctx->agent_mode, "plan") == 0;
    c->bypass = strcmp(ctx->permission_mode, "bypass") == 0;
    if (ctx->mcp_servers) {
        json_t *doc = mcp_config_claude(ctx->mcp_servers);
        c->mcp_json = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!c->mcp_json) {
            claude_state_free(c);
            return NULL;
        }
    }
    if (ctx->skills && !(c->skills = json_deep_copy(ctx->skills))) {
        claude_state_free(c);
        return NULL;
    }
    if (!c->session_id || (ctx->model && !c->model)) {
        claude_state_free(c);
        return NULL;
    }
    return c;
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

/* Writes `text` to `path` (0600, its directory made 0700), through a
 * temporary file renamed over it, so a running agent never reads half. */
static int claude_write_private(const char *path, const char *text, struct err *err)
{
    char dir[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return err_set(err, ERR_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(err, ERR_INTERNAL, "cannot write %s: %s", tmp, strerror(errno));
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    int failed = done < len;
    if (close(fd) != 0)
        failed = 1;
    if (failed || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return err_set(err, ERR_INTERNAL, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

static int claude_command(void *state, const char *binary, const char *home,
                          const char *native_id, const char *args[CLI_DRIVER_MAX_ARGS],
                          struct agent_env *env, struct err *err)
{
    struct claude_proto *c = state;
    if (!native_id)
        return err_set(err, ERR_INTERNAL, "claude session without a native id");
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
    if (c->start_in_plan) {
        args[n++] = "--permission-mode";
        args[n++] = "plan";
    } else if (c->bypass) {
        args[n++] = "--dangerously-skip-permissions";
    }
    if (c->model) {
        args[n++] = "--model";
        args[n++] = c->model;
    }
    /* Files of this session in the shared home (sessions share the home,
     * not their servers or skills) are named by a digest since a session id
     * may hold any character. */
    unsigned char d[SHA256_DIGEST_LEN];
    char hex[33];
    sha256_digest(c->session_id, strlen(c->session_id), d);
    for (size_t i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    if (c->mcp_json) {
        int len = snprintf(c->mcp_path, sizeof c->mcp_path, "%s/.sandbox-journal/mcp-%s.json",
                           home, hex);
        if (len < 0 || (size_t)len >= sizeof c->mcp_path)
            return err_set(err, ERR_INTERNAL, "claude: MCP config path too long");
        int rc = claude_write_private(c->mcp_path, c->mcp_json, err);
        if (rc)
            return rc;
        args[n++] = "--mcp-config";
        args[n++] = c->mcp_path;
    }
    if (c->skills) {
        /* A plugin of this session only (--plugin-dir), rather than the
         * home's ~/.claude/skills that every session would see.  Claude
         * offers its skills as "sandbox-journal:<name>". */
        int len = snprintf(c->plugin_dir, sizeof c->plugin_dir,
                           "%s/.sandbox-journal/skills-%s", home, hex);
        if (len < 0 || (size_t)len >= sizeof c->plugin_dir)
            return err_set(err, ERR_INTERNAL, "claude: skills plugin path too long");
        int rc = skills_write_claude_plugin(c->plugin_dir, c->skills, err);
        if (rc)
            return rc;
        args[n++] = "--plugin-dir";
        args[n++] = c->plugin_dir;
    }
    args[n++] = claude_has_conversation(home, native_id) ? "--resume" : "--session-id";
    args[n++] = native_id;
    args[n] = NULL;

    /* The user's model settings; the ANTHROPIC_BASE_URL passed below wins. */
    struct err uerr;
    if (user_config_claude_write(home, &uerr) != 0)
        fprintf(stderr, "sandbox-journal: the user's claude settings are not carried over: %s\n",
                uerr.msg);
    agent_env_pass(env, "ANTHROPIC_BASE_URL");
    agent_env_pass(env, "ANTHROPIC_AUTH_TOKEN");
    agent_env_pass(env, "ANTHROPIC_CUSTOM_HEADERS");
    agent_env_pass(env, "CLAUDE_CODE_MAX_RETRIES");
    agent_env_credential(env, "anthropic", "ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN");
    /* Nothing but the model endpoint: no telemetry, updates or error reports. */
    agent_env_set(env, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
    agent_env_set(env, "DISABLE_TELEMETRY", "1");
    agent_env_set(env, "DISABLE_AUTOUPDATER", "1");
    agent_env_set(env, "DISABLE_ERROR_REPORTING", "1");
    /* Claude refuses to skip permissions as root unless told it is sandboxed,
     * which is what this server is for. */
    if (c->bypass && geteuid() == 0)
        agent_env_set(env, "IS_SANDBOX", "1");

    adapter_claude_parser_free(c->parser);
    c->parser = adapter_claude_parser_new(c->session_id, c->start_in_plan);
    if (!c->parser)
        return err_set(err, ERR_NOMEM, "out of memory");
    return 0;
}

static char *claude_encode(void *state, const char *text)
{
    struct claude_proto *c = state;
    return c->parser ? adapter_claude_user_line(c->parser, text) : NULL;
}

static int claude_parse(void *state, const char *line, size_t len, int cut, json_t *conversions,
                        json_t *replies, struct err *err)
{
    struct claude_proto *c = state;
    return adapter_claude_parse_line(c->parser, line, len, cut, conversions, replies, err);
}

static int claude_turn_open(const void *state)
{
    const struct claude_proto *c = state;
    return c->parser && adapter_claude_turn_active(c->parser);
}

/* One failed completion of the assistant message per turn still open (the
 * running one shows what it said so far), so every pending assistant item of
 * the session is closed and the next turn gets its own; then the requests
 * still pending, withdrawn. */
static int claude_close_turns(void *state, json_t *list, struct err *err)
{
    struct claude_proto *c = state;
    if (!c->parser)
        return 0;
    unsigned long long open = adapter_claude_open_turns(c->parser);
    for (unsigned long long i = 0; i < open; i++) {
        json_t *content = i == 0 ? adapter_claude_turn_parts(c->parser) : json_array();
        json_t *done = event_conversion("item.completed",
                                        event_item_data(event_item("message", "assistant",
                                                                   "failed", NULL, content)));
        if (!done || json_array_append_new(list, done) != 0)
            return err_set(err, ERR_NOMEM, "out of memory");
    }
    return adapter_claude_withdraw_pending(c->parser, list, err);
}

static void claude_process_gone(void *state)
{
    struct claude_proto *c = state;
    adapter_claude_parser_free(c->parser);
    c->parser = NULL;
}

static const char *claude_unfinished_exit(char *message, size_t size)
{
    snprintf(message, size, "claude exited with status 0");
    return "completed";
}

static const struct cli_driver_protocol claude_protocol = {
    .name = "claude",
    .kill_ms = CLAUDE_KILL_MS,
    .max_line_bytes = CLAUDE_MAX_LINE,
    .per_turn = 0,
    .state_new = claude_state_new,
    .state_free = claude_state_free,
    .user_message = adapter_claude_user_message,
    .command = claude_command,
    .encode = claude_encode,
    .parse_line = claude_parse,
    .native_id = NULL,
    .turn_open = claude_turn_open,
    .close_turns = claude_close_turns,
    .process_gone = claude_process_gone,
    .unfinished_exit = claude_unfinished_exit,
};

/* ---- replies to Claude's control requests ----------------------------------- */

struct claude_reply {
    char *request_id;
    char *reply;     /* a permission's reply; NULL for a question */
    json_t *answers; /* a question's answers; NULL to reject it */
};

static void claude_reply_free(void *arg)
{
    struct claude_reply *r = arg;
    free(r->request_id);
    free(r->reply);
    json_decref(r->answers);
    free(r);
}

/* Loop: the control_response line of a reply. */
static int claude_reply_line(void *state, void *arg, char **line, struct err *err)
{
    struct claude_proto *c = state;
    struct claude_reply *r = arg;
    if (!c->parser)
        return err_set(err, ERR_NOT_FOUND, "claude is not running");
    if (r->reply)
        return adapter_claude_permission_line(c->parser, r->request_id, r->reply, line, err);
    return adapter_claude_question_line(c->parser, r->request_id, r->answers, line, err);
}

static int claude_post_reply(struct adapter_ctx *ctx, const char *request_id, const char *reply,
                             const json_t *answers, struct err *err)
{
    struct claude_reply *r = calloc(1, sizeof *r);
    if (!r || !(r->request_id = strdup(request_id)) || (reply && !(r->reply = strdup(reply))) ||
        (answers && !(r->answers = json_deep_copy(answers)))) {
        if (r)
            claude_reply_free(r);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    return cli_driver_reply(ctx, &claude_protocol, claude_reply_line, claude_reply_free, r, err);
}

/* ---- the adapter --------------------------------------------------------------- */

static const char *const claude_agent_modes[] = { "build", "plan", NULL };
static const char *const claude_permission_modes[] = { "default", "plan", "bypass",
                                                        "acceptEdits", NULL };
static const struct adapter_mode_rule claude_mode_rule = {
    .agent = "claude",
    .agent_modes = claude_agent_modes,
    .permission_modes = claude_permission_modes,
};

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
    if (ctx->binary_path && !ctx->native_session_id)
        return err_set(err, ERR_INTERNAL, "claude session without a native id");
    return cli_driver_send(ctx, &claude_protocol, message, err);
}

static int claude_reply_permission(struct adapter_ctx *ctx, const char *permission_id,
                                   const char *reply, const json_t *pending, struct err *err)
{
    (void)pending; /* the parser keeps Claude's request, input included */
    return claude_post_reply(ctx, permission_id, reply, NULL, err);
}

static int claude_reply_question(struct adapter_ctx *ctx, const char *question_id,
                                 const json_t *answers, const json_t *pending, struct err *err)
{
    (void)pending; /* the parser keeps Claude's request */
    return claude_post_reply(ctx, question_id, NULL, answers, err);
}

static int claude_reject_question(struct adapter_ctx *ctx, const char *question_id,
                                  const json_t *pending, struct err *err)
{
    (void)pending; /* the parser keeps Claude's request */
    return claude_post_reply(ctx, question_id, NULL, NULL, err);
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
    .takes_skills = 1,
    .builtin_version = NULL,
    .mode_rule = &claude_mode_rule,
    .start_session = claude_start_session,
    .send_message = claude_send_message,
    .reply_permission = claude_reply_permission,
    .reply_question = claude_reply_question,
    .reject_question = claude_reject_question,
    .terminate = cli_driver_terminate,
    .free_state = cli_driver_free_state,
    .shutdown = cli_driver_shutdown,
    .server_status_json = NULL,
};
