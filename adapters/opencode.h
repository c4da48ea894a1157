/* The OpenCode adapter: one shared `opencode serve` per server, one OpenCode
 * session per journal session, prompts over its HTTP API and its progress
 * read from one `GET /event` stream (see adapters/opencode.c for the process
 * side).  This header exposes the pure part for tests and fuzzers: the SSE
 * framing of that stream, each event's conversions (event.h), and the JSON
 * bodies the adapter sends.  No I/O, no locks, no clock.
 *
 * Mapping (OpenCode event -> conversions).  Items are OpenCode *parts*; the
 * parser remembers what it has reported of each part until its session goes
 * idle, so repeated updates of one part never repeat an event:
 *   message.part.updated
 *     text                 item.started message (assistant), then
 *                          item.completed with the full text once time.end
 *                          is set; the part of a user message (known from its
 *                          message.updated) is item.completed message (user)
 *     reasoning            the same, with a public reasoning part
 *     tool pending         item.started tool_call (arguments "{}")
 *     tool running         item.completed tool_call with the input; bash's
 *                          growing metadata.output: item.started tool_result
 *                          then item.delta of what is new
 *     tool completed/error item.completed tool_result "<callID>_result"
 *                          (failed on error), plus a file_ref part for write
 *                          (write) and edit (patch, with the diff), and
 *                          {command, exitCode} for bash
 *     file                 item.completed message with an image part
 *                          (image/ *) or a file_ref read part
 *     step-finish          status item "step.finished" {reason, tokens, cost}
 *     patch, agent, ...    status item "part.<type>" with the part as JSON
 *     step-start           nothing
 *   message.part.delta     item.delta of the part (field "text" only)
 *   permission.asked       permission.requested: id, action = the
 *                          permission ("bash", "edit", ...), metadata = the
 *                          request (patterns, metadata, always, tool)
 *   question.asked         question.requested: the first question's text
 *                          and option labels
 *   session.idle           status item "session.idle" (ends the turn)
 *   session.error          error (code = the error's name)
 *   session.status retry   status item "session.retry"
 *   other session events   status item "opencode.<type>" with the properties
 *   noise (plugin.added, heartbeats, session.updated, *.replied, ...)
 *                          nothing
 *   non-JSON data          agent.unparsed (with no session: the caller logs it)
 */
#ifndef SJ_ADAPTER_OPENCODE_H
#define SJ_ADAPTER_OPENCODE_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

typedef struct adapter_opencode_parser adapter_opencode_parser_t;

/* new: free with adapter_opencode_parser_free().  NULL when memory ran out. */
adapter_opencode_parser_t *adapter_opencode_parser_new(void);
void adapter_opencode_parser_free(adapter_opencode_parser_t *p);

/* One parsed event.  Cleared with adapter_opencode_event_clear(). */
struct adapter_opencode_event {
    json_t *message;        /* new: the parsed event, or NULL */
    const char *type;       /* borrowed from message; "" if none */
    char session_id[128];   /* the OpenCode session it concerns, "" if none */
    int connected;          /* server.connected: the stream is live */
    int busy;               /* session.status busy */
    int idle;               /* session.idle */
    int failed;             /* session.error */
    json_t *conversions;    /* new array (maybe empty) for session_id */
};

/* Parses the data of one SSE event (a JSON text).  0, or ERR_NOMEM (out is
 * cleared then).  Anything unexpected becomes agent.unparsed or a status
 * item, never an error. */
int adapter_opencode_parse_event(adapter_opencode_parser_t *p, const char *data, size_t len,
                                 struct adapter_opencode_event *out, struct err *err);

void adapter_opencode_event_clear(struct adapter_opencode_event *ev);

/* Called for each event of the stream; `ev` is cleared after it returns. */
typedef void (*adapter_opencode_event_fn)(void *arg, struct adapter_opencode_event *ev);

/* Feeds bytes of the `text/event-stream` body: "data:" lines up to a blank
 * line make one event, parsed as above and handed to `fn`.  Other fields
 * and comments are ignored; an event over 32 MiB is dropped.  0, or
 * ERR_NOMEM. */
int adapter_opencode_parse_stream(adapter_opencode_parser_t *p, const char *bytes, size_t len,
                                  adapter_opencode_event_fn fn, void *arg, struct err *err);

/* Forgets a partly received event (the stream broke off). */
void adapter_opencode_stream_reset(adapter_opencode_parser_t *p);

/* new: the prompt_async body for `text`.  `model` is "provider/model" or a
 * bare model id of `default_provider` (NULL: OpenCode's default model);
 * `agent` is the OpenCode agent (mode) to use.  NULL when memory ran out. */
json_t *adapter_opencode_prompt_body(const char *text, const char *model,
                                     const char *default_provider, const char *agent);

/* new: the modes of GET /agent's answer: the primary (not hidden) agents as
 * [{id, name, description}], then "custom".  NULL if the answer holds no
 * usable agent or memory ran out. */
json_t *adapter_opencode_modes(const json_t *agents);

/* new (free()): the opencode.json for a server: no sharing or autoupdate,
 * bash, edit and webfetch asking for permission, and, when `base_url` is
 * set, an OpenAI-compatible provider `provider_id` at that URL with
 * `api_key` (may be NULL) offering `models` (array of model ids; the first
 * is the default).  NULL when memory ran out. */
char *adapter_opencode_config(const char *provider_id, const char *base_url,
                              const char *api_key, const json_t *models);

#endif
