/* The Agent Client Protocol (ACP) adapter: any agent that speaks ACP on its
 * stdio (Qwen Code, Pi through pi-acp, Gemini CLI, Cursor through
 * cursor-agent-acp, and whatever `server --acp-agent` registers), see
 * adapters/acp.c for the process side.  This header exposes the pure part
 * for tests and fuzzers: a parser of one agent process's JSON-RPC 2.0 lines
 * and the builders of every line we write.  No I/O, no locks, no clock.
 *
 * The conversation with one process:
 *   we                                 the agent
 *   initialize {protocolVersion 1,
 *     fs read/write, no terminal}  ->
 *                                  <-  result {agentCapabilities.loadSession}
 *   session/load {sessionId, cwd, mcpServers}   when resuming and the agent
 *                                               can load; its replayed
 *                                               updates are not journaled
 *   session/new {cwd, mcpServers}               otherwise
 *                                  <-  result {sessionId, modes}
 *   session/set_mode                            when the session asked for a
 *                                               mode other than "build"
 *   session/prompt {prompt}        ->           one at a time; messages that
 *                                               arrive meanwhile wait
 *                                  <-  session/update ... (notifications)
 *                                  <-  session/request_permission (request)
 *                                  <-  fs/read_text_file, fs/write_text_file
 *                                  <-  result {stopReason}: the turn ends
 *   session/cancel                 ->           on terminate
 *
 * Mapping (agent line -> conversions):
 *   agent_message_chunk        item.delta of the turn's assistant message
 *   agent_thought_chunk        a reasoning part of that message
 *   prompt result              item.completed assistant message (reasoning
 *                              and text parts); failed for stopReason
 *                              "cancelled" or an error (then also error)
 *   tool_call                  item.completed tool_call (name = title or
 *                              kind, arguments = rawInput); the call is
 *                              remembered, and its updates merged in
 *   tool_call(_update) ending  item.completed tool_result "<id>_result",
 *     (completed / failed)     status as told: text content as output,
 *                              diffs as file_ref parts (patch / write)
 *   plan                       item.completed status item "plan", one
 *                              "[status] content" line per entry
 *   current_mode_update        remembered (adapter_acp_current_mode)
 *   available_commands_update, user_message_chunk   ignored on purpose: the
 *                              user's message is journaled by us, commands
 *                              are not part of the v1 API
 *   session/request_permission permission.requested (id
 *                              "<prefix>-<JSON-RPC id>", action = the tool
 *                              call's title; metadata: toolCall, options)
 *   fs/read_text_file,         handed to the caller (`requests`), which
 *     fs/write_text_file       does the file work and answers
 *   terminal methods           refused: a JSON-RPC error reply (-32601), we
 *                              advertise no terminal
 *   any other request          method-not-found reply (-32601)
 *   error response to a setup  error event; the waiting turns fail
 *   session/new after a resume a synthetic status item "session.resumed"
 *     the agent could not load  saying so (and whether the transcript went
 *                              with the first prompt as context)
 *   non-JSON, cut, not JSON-RPC agent.unparsed (never an error)
 *   other notifications, updates of other sessions: ignored.
 *
 * Every conversion carries the ACP session id as its native session id once
 * it is known. */
#ifndef SJ_ADAPTER_ACP_H
#define SJ_ADAPTER_ACP_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

#define ADAPTER_ACP_PROTOCOL_VERSION 1

/* The JSON-RPC error codes we answer with. */
#define ADAPTER_ACP_METHOD_NOT_FOUND (-32601)
#define ADAPTER_ACP_INVALID_PARAMS (-32602)
#define ADAPTER_ACP_INTERNAL_ERROR (-32603)

typedef struct adapter_acp_parser adapter_acp_parser_t;

/* How one process's ACP session starts.  Strings and JSON borrowed (copied
 * by adapter_acp_parser_new). */
struct adapter_acp_start {
    const char *session_id;  /* ours: names generated ids */
    const char *id_prefix;   /* this process's permission ids begin with it */
    const char *cwd;         /* the session's working directory (absolute) */
    const json_t *mcp_servers; /* ACP's McpServer array (adapter_acp_mcp_servers), or NULL: [] */
    const char *resume_id;   /* the ACP session to load, or NULL for a new one */
    const char *agent_mode;  /* asked with session/set_mode unless NULL or "build" */
    /* Offered with the first prompt when the agent cannot load `resume_id`
     * (the conversation so far, as text); NULL for none. */
    const char *context;
    /* 1 for an agent that goes on replaying a loaded session after its
     * session/load result (Gemini CLI 0.61.0; ACP wants the replay first).
     * The parser then sends ADAPTER_ACP_SYNC_METHOD, a request no agent
     * knows, before the first prompt and keeps skipping updates until it is
     * answered: the agent reads it only once the replay it writes in one
     * go is out, so the answer follows the replay's last line. */
    int sync_after_load;
};

#define ADAPTER_ACP_SYNC_METHOD "_sandbox_journal/sync"

/* new: free with adapter_acp_parser_free().  NULL when memory ran out. */
adapter_acp_parser_t *adapter_acp_parser_new(const struct adapter_acp_start *start);
void adapter_acp_parser_free(adapter_acp_parser_t *p);

/* new (free()): the stdin text for a user message: the initialize line for
 * the process's first message, the session/prompt line when the session is
 * ready and no prompt runs, else "" (the message waits its turn).  A turn
 * counts as open from here.  NULL when memory ran out. */
char *adapter_acp_prompt(adapter_acp_parser_t *p, const char *text);

/* Parses one stdout line (without its "\n"; `cut` set when it was cut
 * short).  Appends conversions (new) to `conversions`, lines to write back
 * (JSON strings, each one JSON object and "\n") to `replies`, and the
 * agent's fs requests to `requests` as {"id": <JSON-RPC id>, "method":
 * "fs/read_text_file" | "fs/write_text_file", "params": {...}} objects for
 * the caller to answer (adapter_acp_result_line, adapter_acp_error_line).
 * 0, or ERR_NOMEM (the arrays may hold part of the line's output). */
int adapter_acp_parse_line(adapter_acp_parser_t *p, const char *line, size_t len, int cut,
                           json_t *conversions, json_t *replies, json_t *requests,
                           struct err *err);

/* borrowed: the ACP session id once session/new or session/load answered,
 * else NULL. */
const char *adapter_acp_session_id(const adapter_acp_parser_t *p);

/* 1 if the agent advertised loadSession. */
int adapter_acp_can_load(const adapter_acp_parser_t *p);

/* How many user messages are without their prompt result (running and
 * waiting). */
unsigned long long adapter_acp_open_turns(const adapter_acp_parser_t *p);

/* Appends (new) the failed completion of every open turn (the running one
 * with what it showed so far) and the withdrawal of every pending
 * permission (permission.resolved denied, synthetic), and forgets them.
 * 0, or ERR_NOMEM. */
int adapter_acp_close_turns(adapter_acp_parser_t *p, json_t *conversions, struct err *err);

/* new (free()): the answer to permission `permission_id` with "once",
 * "always" or "reject", choosing the agent's option of the matching kind
 * (allow_once / allow_always / reject_once, the other allow or reject kind
 * when that one is missing, "cancelled" when neither is there), and
 * forgets the request.  ERR_NOT_FOUND if it is not pending, ERR_INVALID
 * for another reply. */
int adapter_acp_permission_line(adapter_acp_parser_t *p, const char *permission_id,
                                const char *reply, char **line_out, struct err *err);

/* new (free()): the session/cancel notification of the running prompt; ""
 * when nothing runs.  Pending permissions are answered "cancelled" in the
 * same text, as the protocol asks.  NULL when memory ran out. */
char *adapter_acp_cancel_line(adapter_acp_parser_t *p);

/* new (free()): a JSON-RPC response line to the agent's request `id`
 * (borrowed): the result `result` (stolen; NULL for null), or an error. */
char *adapter_acp_result_line(const json_t *id, json_t *result);
char *adapter_acp_error_line(const json_t *id, int code, const char *message);

/* new: the modes the agent reported ([{id, name, description}]), or NULL
 * when it reported none. */
json_t *adapter_acp_modes(const adapter_acp_parser_t *p);

/* borrowed: the mode the agent says it is in, or NULL. */
const char *adapter_acp_current_mode(const adapter_acp_parser_t *p);

/* new: ACP's McpServer array from the session's MCP servers as the v1 API
 * keeps them ({name: {type: "local", command, args, env, enabled} | {type:
 * "remote", url, transport, headers, enabled}}, borrowed; NULL gives []).
 * Disabled and malformed entries are left out.  NULL when memory ran out. */
json_t *adapter_acp_mcp_servers(const json_t *mcp);

/* new: the conversions of the user's own message (item.completed of a user
 * message item `native_id`, one text part).  NULL when memory ran out. */
json_t *adapter_acp_user_message(const char *native_id, const char *text);

/* ---- the process side (acp.c) ---------------------------------------------- */

struct adapter;

/* new (adapter_acp_custom_free()): the adapter of an ACP agent the server
 * is told about at start-up, from "NAME=COMMAND [ARGS...]" (NAME: 1 to 31
 * of a-z, 0-9, '-', '_'; COMMAND a path or a name on PATH; ARGS split at
 * spaces).  ERR_INVALID with the reason. */
int adapter_acp_custom_new(const char *definition, const struct adapter **out, struct err *err);
void adapter_acp_custom_free(const struct adapter *adapter);

#endif
