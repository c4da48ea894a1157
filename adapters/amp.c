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
 * It is a per-turn protocol of the line-oriented CLI driver
 * (agents/cli_driver.h): messages that arrive while a turn runs wait for
 * its exit, and run one after the other, each in its own process.  The
 * pure parser is in amp_parse.c; it lives as long as the session, since it
 * learns the thread id.
 *
 * Ends.  A turn that ends with exit 0 after its result is the normal case
 * and journals nothing more.  Any other exit (non-zero, a signal, exit 0
 * in the middle of a turn) closes the open turns as failed and journals an
 * error and a synthetic session.ended (reason error, exit code, the stderr
 * head/tail); the next message continues the thread.  Terminate and server
 * shutdown close stdin and send SIGTERM, then SIGKILL after AMP_KILL_MS.
 */
#include "adapters/amp.h"

#include "adapters/claude.h"
#include "agents/adapter.h"
#include "agents/agent_env.h"
#include "agents/cli_driver.h"
#include "base/err.h"

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

/* The protocol's state of one session. */
struct amp_proto {
    /* Immutable after creation. */
    char *session_id;
    int bypass;
    /* Loop only: made by the first turn, kept for the thread id. */
    adapter_amp_parser_t *parser;
};

static void amp_state_free(void *state)
{
    struct amp_proto *a = state;
    adapter_amp_parser_free(a->parser);
    free(a->session_id);
    free(a);
}

static void *amp_state_new(const struct adapter_ctx *ctx)
{
    struct amp_proto *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->bypass = strcmp(ctx->permission_mode, "bypass") == 0;
    if (!(a->session_id = strdup(ctx->session_id))) {
        amp_state_free(a);
        return NULL;
    }
    return a;
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

/* One turn's process: `amp [threads continue <thread id>] --execute ...`. */
static int amp_command(void *state, const char *binary, const char *home, const char *native_id,
                       const char *args[CLI_DRIVER_MAX_ARGS], struct agent_env *env,
                       struct err *err)
{
    struct amp_proto *a = state;
    int rc = amp_settings(home, err);
    if (rc)
        return rc;
    if (!a->parser && !(a->parser = adapter_amp_parser_new(a->session_id)))
        return err_set(err, ERR_NOMEM, "out of memory");
    rc = adapter_amp_turn_begin(a->parser, err);
    if (rc)
        return rc;
    adapter_amp_args(binary, native_id, a->bypass, args);
    /* Amp's own access token and service; Amp has no other model endpoint. */
    agent_env_pass(env, "AMP_API_KEY");
    agent_env_pass(env, "AMP_URL");
    return 0;
}

static char *amp_encode(void *state, const char *text)
{
    (void)state; /* the turn began with the process */
    return adapter_amp_input_line(text);
}

static int amp_parse(void *state, const char *line, size_t len, int cut, json_t *conversions,
                     json_t *replies, struct err *err)
{
    (void)replies; /* Amp asks nothing the server answers */
    struct amp_proto *a = state;
    return adapter_amp_parse_line(a->parser, line, len, cut, conversions, err);
}

static const char *amp_thread(const void *state)
{
    const struct amp_proto *a = state;
    return a->parser ? adapter_amp_thread_id(a->parser) : NULL;
}

static int amp_turn_open(const void *state)
{
    const struct amp_proto *a = state;
    return a->parser && adapter_amp_turn_open(a->parser);
}

static int amp_close_turns(void *state, json_t *list, struct err *err)
{
    struct amp_proto *a = state;
    return a->parser ? adapter_amp_close_turn(a->parser, list, err) : 0;
}

static const char *amp_unfinished_exit(char *message, size_t size)
{
    snprintf(message, size, "amp exited before it finished the turn");
    return "error";
}

static const struct cli_driver_protocol amp_protocol = {
    .name = "amp",
    .kill_ms = AMP_KILL_MS,
    .max_line_bytes = AMP_MAX_LINE,
    .per_turn = 1,
    .state_new = amp_state_new,
    .state_free = amp_state_free,
    .user_message = adapter_claude_user_message,
    .command = amp_command,
    .encode = amp_encode,
    .parse_line = amp_parse,
    .native_id = amp_thread,
    .turn_open = amp_turn_open,
    .close_turns = amp_close_turns,
    .process_gone = NULL,
    .unfinished_exit = amp_unfinished_exit,
};

/* ---- the adapter ------------------------------------------------------------ */

static const char *const amp_agent_modes[] = { "build", NULL };
static const char *const amp_permission_modes[] = { "default", "bypass", NULL };
/* Amp asks for nothing over stream-json: it either runs a tool or, with
 * --dangerously-allow-all, runs every tool; there is no plan mode. */
static const struct adapter_mode_rule amp_mode_rule = {
    .agent = "amp",
    .agent_modes = amp_agent_modes,
    .permission_modes = amp_permission_modes,
};

static int amp_send_message(struct adapter_ctx *ctx, const char *message, struct err *err)
{
    return cli_driver_send(ctx, &amp_protocol, message, err);
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
    .mode_rule = &amp_mode_rule,
    .start_session = NULL,
    .send_message = amp_send_message,
    .reply_permission = NULL,
    .reply_question = NULL,
    .reject_question = NULL,
    .terminate = cli_driver_terminate,
    .free_state = cli_driver_free_state,
    .shutdown = cli_driver_shutdown,
    .server_status_json = NULL,
};
