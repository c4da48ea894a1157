/* The Amp adapter: one `amp --execute --stream-json` process per turn (see
 * adapters/amp.c for the process side).  This header exposes the pure part
 * for tests and fuzzers: the stdout line parser, the command line of a turn
 * and its stdin line.  No I/O, no locks, no clock.
 *
 * Amp prints two dialects, and both are understood:
 *
 *   Claude Code's stream-json (what `--stream-json` prints today): system,
 *   user, assistant and result lines.  They go through the Claude adapter's
 *   parser (claude.h), so the mapping is the same where the formats agree:
 *     system (init)          session.started; its session_id is Amp's
 *                            thread id, the session's native id
 *     assistant text/thinking remembered for the turn's final message
 *                            (thinking only with --stream-json-thinking)
 *     assistant tool_use     item.completed tool_call
 *     user tool_result       item.completed tool_result
 *     result                 item.completed assistant message (failed, plus
 *                            an error, when is_error)
 *
 *   The StreamJSONMessage lines of Amp's published schema
 *   (agent-schemas/amp.json):
 *     message                item.completed assistant message (text)
 *     tool_call              item.completed tool_call (arguments as text)
 *     tool_result            item.completed tool_result (native id
 *                            "<id>_result": the call keeps its own item)
 *     error                  error (code "amp", the line as details)
 *     done                   completes the turn's assistant message if
 *                            nothing did yet.  Not a session.ended: the
 *                            process ends after every turn and the next
 *                            message continues the thread
 *
 *   anything else, non-JSON, cut lines: agent.unparsed, never an error.
 *
 * Every conversion carries the thread id as its native session id once it
 * is known. */
#ifndef SJ_ADAPTER_AMP_H
#define SJ_ADAPTER_AMP_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

typedef struct adapter_amp_parser adapter_amp_parser_t;

/* new: free with adapter_amp_parser_free().  `session_id` (copied) names
 * generated ids.  NULL when memory ran out. */
adapter_amp_parser_t *adapter_amp_parser_new(const char *session_id);
void adapter_amp_parser_free(adapter_amp_parser_t *p);

/* Starts a turn: its assistant message is pending until a result, message
 * or done line completes it.  Forgets what an earlier, cut-short turn
 * showed.  0, or ERR_NOMEM. */
int adapter_amp_turn_begin(adapter_amp_parser_t *p, struct err *err);

/* 1 while the turn's assistant message is not completed yet. */
int adapter_amp_turn_open(const adapter_amp_parser_t *p);

/* Appends to `out` the failed completion of the open turn's assistant
 * message, with what it showed so far, and ends the turn.  Nothing when no
 * turn is open.  0, or ERR_NOMEM. */
int adapter_amp_close_turn(adapter_amp_parser_t *p, json_t *out, struct err *err);

/* borrowed: Amp's thread id (the session's native id) as the output told
 * it, or NULL.  Only ids that look like Amp's ("T-" then letters, digits
 * and dashes) are taken: the id goes on a command line. */
const char *adapter_amp_thread_id(const adapter_amp_parser_t *p);

/* 1 if `id` is usable as an Amp thread id on a command line (see above). */
int adapter_amp_is_thread_id(const char *id);

/* Parses one stdout line (without its "\n"; `cut` set when the line was cut
 * short) and appends its conversions (new objects) to `conversions`.  0, or
 * ERR_NOMEM (the array may then hold part of the line's output). */
int adapter_amp_parse_line(adapter_amp_parser_t *p, const char *line, size_t len, int cut,
                           json_t *conversions, struct err *err);

#define ADAPTER_AMP_MAX_ARGS 16

/* Fills args[ADAPTER_AMP_MAX_ARGS] (NULL-terminated, borrowed strings) with
 * the command line of one turn:
 *   <binary> [threads continue <thread id>] --execute --stream-json
 *            --stream-json-input --stream-json-thinking
 *            [--dangerously-allow-all]
 * `thread_id` NULL (or not a thread id) starts a new thread; `bypass` skips
 * every confirmation.  The message itself goes on stdin (see below), so it
 * can never be taken for an option and has no argv size limit. */
void adapter_amp_args(const char *binary, const char *thread_id, int bypass,
                      const char *args[ADAPTER_AMP_MAX_ARGS]);

/* new (free()): the stdin line of a user message for --stream-json-input:
 * one JSON object and "\n".  NULL when memory ran out or `text` is not
 * UTF-8. */
char *adapter_amp_input_line(const char *text);

#endif
