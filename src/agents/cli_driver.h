/* The driver of line-oriented agent CLIs: a child process per session on the
 * supervisor loop that takes the user's messages as lines on its stdin and
 * prints its progress as lines on stdout (Claude Code, Amp; the ACP agents
 * agents).  The driver does what every such CLI needs:
 *   - journals the user's message (item user_<n>, persisted as {"turns":n})
 *     and hands it to the loop without waiting;
 *   - spawns the CLI in the session's working directory, with the common
 *     environment and a private HOME under the data directory (agent_env.h),
 *     resuming the agent's own session once its native id is known;
 *   - writes stdin lines, delivers stdout lines to the protocol's parser and
 *     journals what it makes (host->emit_async), writing back the lines the
 *     protocol answers by itself;
 *   - stops the process through supervisor_proc_stop() (terminate, server
 *     shutdown);
 *   - turns an exit nobody asked for into the failed completion of the open
 *     turns, an error and a session.ended (reason, exit code, the
 *     StderrOutput record); a clean exit between turns ends nothing.
 * What differs between CLIs is their protocol: the table of callbacks below.
 *
 * Two shapes, chosen by `per_turn`:
 *   0  one long-lived process per session (Claude Code): each message is a
 *      line on its stdin; after an exit the next message starts a new one;
 *   1  one process per message (Amp): its stdin is closed after the message,
 *      and messages that arrive meanwhile wait for the exit.
 *
 * Threads.  cli_driver_send and cli_driver_reply run on HTTP workers with the
 * session locked and never wait for the loop; cli_driver_terminate is called
 * with the session locked too, cli_driver_shutdown on the loop, and
 * cli_driver_free_state once the loop has stopped.  The driver's state is
 * ctx->state.  The protocol's callbacks run on the loop, except state_new
 * (HTTP worker, session locked) and state_free (with free_state). */
#ifndef SJ_CLI_DRIVER_H
#define SJ_CLI_DRIVER_H

#include "agents/adapter.h"
#include "agents/agent_env.h"
#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

#define CLI_DRIVER_MAX_ARGS 32 /* argv entries, the final NULL included */

struct cli_driver_protocol {
    const char *name;      /* "claude": log lines, messages, its HOME directory */
    unsigned kill_ms;      /* from SIGTERM to SIGKILL when stopping */
    size_t max_line_bytes; /* longer stdout lines are cut (see supervisor.h) */
    int per_turn;          /* one process per message (see above) */

    /* new: the protocol's state of one session, made from ctx (strings
     * copied), or NULL when memory ran out. */
    void *(*state_new)(const struct adapter_ctx *ctx);
    void (*state_free)(void *state);
    /* new: the conversions of the user's own message, item `native_id`. */
    json_t *(*user_message)(const char *native_id, const char *text);

    /* Gets ready to start the process: fills args (NULL-terminated, at most
     * CLI_DRIVER_MAX_ARGS entries; its strings borrowed from the arguments
     * or the state) and adds the protocol's variables to `env`, which holds
     * the common ones and HOME already.  `native_id` is the agent's own
     * session id, NULL until known.  0, or an error for the journal. */
    int (*command)(void *state, const char *binary, const char *home, const char *native_id,
                   const char *args[CLI_DRIVER_MAX_ARGS], struct agent_env *env,
                   struct err *err);
    /* new (free()): the stdin text of a user message, JSON lines each
     * ending in "\n", or "" when the protocol holds the message back to
     * write it later as a reply of parse_line (ACP sends a prompt once the
     * agent is ready and the previous one ended); a turn starts.  NULL when
     * memory ran out. */
    char *(*encode)(void *state, const char *text);
    /* One stdout line (see supervisor.h): appends its conversions (new) to
     * `conversions` and the lines to write back (JSON strings) to `replies`.
     * 0, or ERR_NOMEM (the arrays may hold part of the line's output). */
    int (*parse_line)(void *state, const char *line, size_t len, int cut, json_t *conversions,
                      json_t *replies, struct err *err);
    /* borrowed: the agent's own session id as the output told it, or NULL.
     * May be NULL. */
    const char *(*native_id)(const void *state);
    /* 1 while a turn's answer is still coming. */
    int (*turn_open)(const void *state);
    /* Appends (new) the failed completion of every open turn, with what it
     * showed so far, and the withdrawal of every pending request, and
     * forgets them.  0, or ERR_NOMEM. */
    int (*close_turns)(void *state, json_t *list, struct err *err);
    /* The process is gone: forget what lived only as long as it.  May be
     * NULL. */
    void (*process_gone)(void *state);
    /* What a clean exit (status 0) in the middle of a turn means: writes the
     * message into message[size] and returns the session.ended reason. */
    const char *(*unfinished_exit)(char *message, size_t size);
};

/* The adapter's send_message: journals the user's message and hands it to
 * the process.  ERR_NOT_INSTALLED without a binary, ERR_INVALID when the
 * session's working directory is gone, or the journal's error. */
int cli_driver_send(struct adapter_ctx *ctx, const struct cli_driver_protocol *protocol,
                    const char *message, struct err *err);

/* Writes a line the protocol makes on the loop to the running process's
 * stdin: make_line(state, arg, &line, err) returns 0 and a new (free())
 * line ("" writes nothing), or an error that is logged (the process that asked is gone).  `arg`
 * is freed with free_arg(arg) in every case, a failed post included. */
int cli_driver_reply(struct adapter_ctx *ctx, const struct cli_driver_protocol *protocol,
                     int (*make_line)(void *state, void *arg, char **line, struct err *err),
                     void (*free_arg)(void *arg), void *arg, struct err *err);

/* The adapter's terminate, shutdown and free_state (see adapter.h). */
void cli_driver_terminate(struct adapter_ctx *ctx);
void cli_driver_shutdown(struct adapter_ctx *ctx);
void cli_driver_free_state(struct adapter_ctx *ctx);

#endif
