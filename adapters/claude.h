/* The Claude Code adapter: one long-lived `claude -p` per session in
 * bidirectional stream-json mode (see adapters/claude.c for the process
 * side).  This header exposes the pure part for tests and fuzzers: a parser
 * that turns each stdout line into conversions (event.h) and, where the
 * protocol needs an answer the server gives by itself, lines to write back;
 * and the builders of every stdin line.  No I/O, no locks, no clock.
 *
 * Mapping (native line -> conversions), after the reference's rules:
 *   system (init, status, ...)      session.started (the normalizer keeps only
 *                                   the first of a session); permissionMode
 *                                   updates the plan-mode guard
 *   stream_event text_delta         item.delta of the assistant message
 *   assistant text / thinking       remembered for the turn's final message
 *   assistant tool_use              item.completed tool_call (the normalizer
 *                                   adds its synthetic item.started)
 *   user tool_result                item.completed tool_result (failed if
 *                                   is_error)
 *   result                          item.completed assistant message: the
 *                                   turn's reasoning and text parts (or the
 *                                   result text); an error event too when
 *                                   is_error
 *   control_request can_use_tool    permission.requested (id = request_id);
 *     AskUserQuestion               question.requested instead
 *     ExitPlanMode                  question.requested "Approve plan
 *                                   execution?" (approve / reject)
 *     mutating tool in plan mode    refused at once (a deny reply line);
 *                                   Claude does not enforce plan mode
 *   control_cancel_request          permission.resolved denied /
 *                                   question.resolved rejected
 *   control_response, keep_alive    nothing
 *   anything else, non-JSON, cut    agent.unparsed (never an error)
 */
#ifndef SJ_ADAPTER_CLAUDE_H
#define SJ_ADAPTER_CLAUDE_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

typedef struct adapter_claude_parser adapter_claude_parser_t;

/* new: free with adapter_claude_parser_free().  `session_id` (copied) names
 * generated ids; `plan` is 1 when Claude starts in plan mode.  NULL when
 * memory ran out. */
adapter_claude_parser_t *adapter_claude_parser_new(const char *session_id, int plan);
void adapter_claude_parser_free(adapter_claude_parser_t *p);

/* Parses one stdout line (without its "\n"; `cut` set when the line was cut
 * short).  Appends conversions (new objects) to the `conversions` array and
 * the lines the server answers with by itself (new strings, each one JSON
 * object and "\n") to the `replies` array of JSON strings.  0, or ERR_NOMEM
 * (the arrays may then hold part of the line's output).  Unknown or broken
 * lines become agent.unparsed: they are never an error. */
int adapter_claude_parse_line(adapter_claude_parser_t *p, const char *line, size_t len, int cut,
                              json_t *conversions, json_t *replies, struct err *err);

/* 1 while a turn is running: a user line was built and its result line has
 * not been parsed yet. */
int adapter_claude_turn_active(const adapter_claude_parser_t *p);

/* How many user lines are still without their result (the running turn and
 * the ones Claude has queued behind it). */
unsigned long long adapter_claude_open_turns(const adapter_claude_parser_t *p);

/* new: a copy of the parts (reasoning, text) the running turn has shown so
 * far, or NULL when memory ran out. */
json_t *adapter_claude_turn_parts(const adapter_claude_parser_t *p);

/* 1 while Claude is in plan mode as far as its output tells. */
int adapter_claude_plan_active(const adapter_claude_parser_t *p);

/* Appends to `conversions` (new objects) the withdrawal of every request
 * still pending, as if Claude had cancelled each (permission.resolved
 * denied, question.resolved rejected; synthetic), and forgets them: for when
 * the process that asked is gone.  0, or ERR_NOMEM. */
int adapter_claude_withdraw_pending(adapter_claude_parser_t *p, json_t *conversions,
                                    struct err *err);

/* new (free()): the stdin line of a user message: one JSON object + "\n".
 * Counts a turn as started.  NULL when memory ran out or `text` is not
 * UTF-8. */
char *adapter_claude_user_line(adapter_claude_parser_t *p, const char *text);

/* new (free()): the control_response line answering the permission request
 * `request_id` with "once", "always" or "reject" (allow carries
 * updatedInput, "always" also the request's suggested rules for the rest of
 * the session), and forgets the request.  ERR_NOT_FOUND if no such request
 * is pending (answered, cancelled, or asked by an earlier process),
 * ERR_INVALID for another reply. */
int adapter_claude_permission_line(adapter_claude_parser_t *p, const char *request_id,
                                   const char *reply, char **line_out, struct err *err);

/* new (free()): the control_response line answering the question request
 * `request_id`: `answers` (array of arrays of strings, borrowed; one per
 * question, several labels joined with ", ") or NULL to reject it.  For
 * ExitPlanMode the first answer "reject" (any case) rejects the plan and
 * anything else approves it.  ERR_NOT_FOUND as above. */
int adapter_claude_question_line(adapter_claude_parser_t *p, const char *request_id,
                                 const json_t *answers, char **line_out, struct err *err);

/* new: the conversions of the user's own message: item.completed of a user
 * message item (native id `native_id`) with one text part.  NULL when
 * memory ran out. */
json_t *adapter_claude_user_message(const char *native_id, const char *text);

#endif
