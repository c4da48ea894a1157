/* The Codex adapter: one `codex app-server` (JSON-RPC over stdio) shared by
 * every Codex session of the server, one Codex thread per session (see
 * adapters/codex.c for the process side).  This header exposes the pure
 * part (adapters/codex_parse.c) for tests and fuzzers: the classification
 * of each stdout line and its conversions (event.h).  No I/O, no locks, no
 * clock.
 *
 * Mapping (after the reference's rules):
 *   item/started, item/completed     item.started / item.completed of the item:
 *     userMessage                    message, user
 *     agentMessage                   message, assistant
 *     reasoning                      message, assistant, reasoning parts
 *                                    (content private, summary public)
 *     commandExecution               tool_result: output (aggregatedOutput of
 *                                    the completed item) + {command, cwd, status}
 *     fileChange                     tool_result: {changes, status}
 *     mcpToolCall                    tool_call "server.tool", then tool_result
 *     webSearch, imageView, review   tool_call, image, status items
 *     anything else                  item kind unknown with the item as JSON
 *   (a declined or failed item completes with status failed)
 *   item/.../delta notifications     item.delta of the item
 *   turn/started, turn/completed,    status items "turn.started",
 *   token usage, diff, plan, compact "turn.completed" (ends a turn), ...
 *   thread/started                   session.started
 *   error                            error
 *   requestApproval (command, file)  permission.requested, id "<prefix>-<id>"
 *   other server requests            agent.unparsed (the caller answers them
 *                                    with a JSON-RPC error)
 *   notices without a thread         nothing
 *   non-JSON, cut lines              agent.unparsed
 */
#ifndef SJ_ADAPTER_CODEX_H
#define SJ_ADAPTER_CODEX_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

enum adapter_codex_kind {
    ADAPTER_CODEX_RESPONSE,     /* {"id":N,"result"|"error"} to one of our requests */
    ADAPTER_CODEX_NOTIFICATION, /* {"method",...} */
    ADAPTER_CODEX_REQUEST,      /* {"method","id"}: the server asks us */
    ADAPTER_CODEX_INVALID,      /* not JSON-RPC: conversions hold agent.unparsed */
};

/* One parsed line.  Cleared with adapter_codex_line_clear(). */
struct adapter_codex_line {
    enum adapter_codex_kind kind;
    long long id;           /* RESPONSE, REQUEST: the JSON-RPC id (integer ids only) */
    int has_id;
    json_t *message;        /* new: the parsed line, or NULL */
    const char *method;     /* borrowed from message; NULL for responses */
    const json_t *result;   /* RESPONSE: borrowed, NULL on error */
    const json_t *error;    /* RESPONSE: borrowed, NULL on success */
    char thread_id[160];    /* the thread it concerns, "" if none */
    char turn_id[160];      /* turn/started: the turn's id, else "" */
    int turn_started;       /* turn/started */
    int turn_done;          /* turn/completed */
    int is_approval;        /* REQUEST answered over HTTP (permission.requested) */
    json_t *conversions;    /* new array (maybe empty) for the session of thread_id */
};

/* Parses one stdout line (without "\n"; `cut` when it was cut short).
 * `permission_prefix` (e.g. the app-server's start time) makes permission
 * ids unique across app-server restarts: "<prefix>-<request id>".  0, or
 * ERR_NOMEM (out is cleared then).  Anything unexpected is ADAPTER_CODEX_INVALID
 * or agent.unparsed, never an error. */
int adapter_codex_parse_line(const char *line, size_t len, int cut,
                             const char *permission_prefix, struct adapter_codex_line *out,
                             struct err *err);

void adapter_codex_line_clear(struct adapter_codex_line *l);

/* new (free()): the JSON-RPC response line answering approval request `id`
 * of kind "commandExecution" or "fileChange" with "once" (accept),
 * "always" (acceptForSession) or "reject" (decline).  NULL when memory ran
 * out or the reply is unknown. */
char *adapter_codex_decision_line(long long id, const char *reply);

/* Splits a permission id "<prefix>-<id>" (see above).  0, or ERR_INVALID. */
int adapter_codex_permission_id(const char *permission_id, char *prefix, size_t size,
                                long long *id, struct err *err);

#endif
