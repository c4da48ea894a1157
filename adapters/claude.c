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
 * The pure part: native lines -> conversions
 * ====================================================================== */

struct adapter_claude_parser {
    char *session_id;
    int plan;                   /* Claude is in plan mode */
    char *message_id;           /* the assistant message being streamed */
    json_t *turn_parts;         /* reasoning and text parts since the last result */
    unsigned long long turns_open; /* user lines without their result yet */
    unsigned long long counter; /* generated ids */
    hmap_t *requests;           /* request_id -> owned json_t: pending can_use_tool */
};

static void claude_free_request(const char *key, void *value, void *arg)
{
    (void)key, (void)arg; /* values are the only owned part */
    json_decref(value);
}

adapter_claude_parser_t *adapter_claude_parser_new(const char *session_id, int plan)
{
    adapter_claude_parser_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->session_id = strdup(session_id);
    p->plan = plan;
    p->turn_parts = json_array();
    p->requests = hmap_new();
    if (!p->session_id || !p->turn_parts || !p->requests) {
        adapter_claude_parser_free(p);
        return NULL;
    }
    return p;
}

void adapter_claude_parser_free(adapter_claude_parser_t *p)
{
    if (!p)
        return;
    if (p->requests) {
        hmap_foreach(p->requests, claude_free_request, NULL);
        hmap_free(p->requests);
    }
    json_decref(p->turn_parts);
    free(p->message_id);
    free(p->session_id);
    free(p);
}

int adapter_claude_turn_active(const adapter_claude_parser_t *p)
{
    return p->turns_open > 0;
}

unsigned long long adapter_claude_open_turns(const adapter_claude_parser_t *p)
{
    return p->turns_open;
}

json_t *adapter_claude_turn_parts(const adapter_claude_parser_t *p)
{
    return json_deep_copy(p->turn_parts);
}

int adapter_claude_plan_active(const adapter_claude_parser_t *p)
{
    return p->plan;
}

/* ---- small helpers ----------------------------------------------------- */

static const char *claude_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int claude_str_is(const json_t *obj, const char *key, const char *want)
{
    const char *v = claude_str(obj, key);
    return v && strcmp(v, want) == 0;
}

/* Appends `c` (stolen); a NULL `c` means a builder ran out of memory. */
static int claude_push(json_t *list, json_t *c, struct err *err)
{
    if (!c || json_array_append_new(list, c) != 0)
        return err_set(err, ERR_NOMEM, "out of memory parsing a claude line");
    return 0;
}

/* new: a one-element array holding `part` (stolen). */
static json_t *claude_content1(json_t *part)
{
    json_t *arr = part ? json_array() : NULL;
    if (!arr || json_array_append_new(arr, part) != 0) {
        json_decref(arr);
        if (!arr)
            json_decref(part);
        return NULL;
    }
    return arr;
}

/* new: text with bytes that are not UTF-8 replaced by '?', as a JSON string. */
static json_t *claude_lossy_string(const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);
    if (v)
        return v;
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        copy[i] = c < 0x80 && c != 0 ? (char)c : '?';
    }
    copy[len] = '\0';
    v = json_stringn(copy, len);
    free(copy);
    return v;
}

/* new: an agent.unparsed conversion carrying `raw` (stolen, may be NULL). */
static json_t *claude_unparsed(const char *error, json_t *raw)
{
    json_t *c = event_synthetic(
        event_conversion("agent.unparsed", event_unparsed_data(error, "claude", NULL)));
    if (!raw)
        return c;
    return event_with_raw(c, raw);
}

/* new: the compact text of `v` followed by "\n" (one stdin line). */
static char *claude_line_of(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    return line;
}

/* Appends a reply line (JSON string) built from `v` (stolen). */
static int claude_reply(json_t *replies, json_t *v, struct err *err)
{
    char *line = v ? claude_line_of(v) : NULL;
    json_decref(v);
    int rc = claude_push(replies, line ? json_string(line) : NULL, err);
    free(line);
    return rc;
}

/* new: the text of a tool_result's content: a string as it is, the text
 * blocks of an array joined by "\n", anything else as compact JSON. */
static char *claude_result_text(const json_t *content)
{
    if (json_is_string(content))
        return strdup(json_string_value(content));
    if (json_is_array(content)) {
        struct buf b;
        buf_init(&b);
        size_t i;
        const json_t *block;
        json_array_foreach(content, i, block) {
            const char *t = claude_str_is(block, "type", "text") ? claude_str(block, "text") : NULL;
            if (!t)
                continue;
            if ((b.len && buf_append(&b, "\n", 1)) || buf_puts(&b, t)) {
                buf_free(&b);
                return NULL;
            }
        }
        if (b.len)
            return buf_steal(&b);
        buf_free(&b);
    }
    if (!content || json_is_null(content))
        return strdup("");
    return json_dumps(content, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int claude_is_question_tool(const char *name)
{
    return strcmp(name, "AskUserQuestion") == 0 || strcmp(name, "ask_user_question") == 0 ||
           strcmp(name, "askUserQuestion") == 0 || strcmp(name, "ask-user-question") == 0;
}

static int claude_is_exit_plan_tool(const char *name)
{
    return strcmp(name, "ExitPlanMode") == 0 || strcmp(name, "exit_plan_mode") == 0 ||
           strcmp(name, "exitPlanMode") == 0 || strcmp(name, "exit-plan-mode") == 0;
}

/* Tools that change nothing, which plan mode may run. */
static int claude_is_read_only_tool(const char *name)
{
    static const char *const safe[] = {
        "Read", "Glob", "Grep", "LS", "NotebookRead", "WebFetch", "WebSearch", "TodoWrite",
        "Task", "TaskCreate", "TaskGet", "TaskList", "TaskUpdate", "TaskOutput", "BashOutput",
        "ListMcpResourcesTool", "ReadMcpResourceTool", "EnterPlanMode",
    };
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        if (strcmp(name, safe[i]) == 0)
            return 1;
    return 0;
}

/* ---- line kinds ----------------------------------------------------------- */

static int claude_system(adapter_claude_parser_t *p, const json_t *line, json_t *out,
                         struct err *err)
{
    const char *mode = claude_str(line, "permissionMode");
    if (mode)
        p->plan = strcmp(mode, "plan") == 0;
    /* The reference turns every system line into session.started; the
     * normalizer keeps only a session's first one. */
    json_t *c = event_conversion("session.started",
                                 event_session_started_data(json_deep_copy(line)));
    return claude_push(out, event_with_raw(c, json_deep_copy(line)), err);
}

static int claude_set_message_id(adapter_claude_parser_t *p, const char *id, struct err *err)
{
    if (!id || (p->message_id && strcmp(p->message_id, id) == 0))
        return 0;
    char *copy = strdup(id);
    if (!copy)
        return err_set(err, ERR_NOMEM, "out of memory");
    free(p->message_id);
    p->message_id = copy;
    return 0;
}

/* The native id of the assistant message: Claude's message id, else one
 * named after the session. */
static int claude_message_native(adapter_claude_parser_t *p, char *out, size_t size)
{
    if (p->message_id)
        return snprintf(out, size, "%s", p->message_id) < (int)size ? 0 : -1;
    p->counter++;
    snprintf(out, size, "%s_message_%llu", p->session_id, p->counter);
    return 0;
}

static int claude_stream_event(adapter_claude_parser_t *p, const json_t *line, json_t *out,
                               struct err *err)
{
    const json_t *ev = json_object_get(line, "event");
    const char *type = claude_str(ev, "type");
    if (!type)
        return 0;
    if (strcmp(type, "message_start") == 0)
        return claude_set_message_id(p, claude_str(json_object_get(ev, "message"), "id"), err);
    if (strcmp(type, "content_block_delta") != 0)
        return 0;
    const json_t *delta = json_object_get(ev, "delta");
    if (!claude_str_is(delta, "type", "text_delta"))
        return 0; /* thinking, signatures and tool input arrive whole later */
    const char *text = claude_str(delta, "text");
    if (!text || !*text)
        return 0;
    char native[256];
    if (claude_message_native(p, native, sizeof native) != 0)
        return 0;
    json_t *c = event_conversion("item.delta", event_delta_data("", native, text));
    return claude_push(out, event_with_raw(c, json_deep_copy(line)), err);
}

static int claude_assistant(adapter_claude_parser_t *p, const json_t *line, json_t *out,
                            struct err *err)
{
    const json_t *msg = json_object_get(line, "message");
    int rc = claude_set_message_id(p, claude_str(msg, "id"), err);
    if (rc)
        return rc;
    size_t i;
    const json_t *block;
    json_array_foreach(json_object_get(msg, "content"), i, block) {
        const char *type = claude_str(block, "type");
        if (!type)
            continue;
        if (strcmp(type, "text") == 0 && claude_str(block, "text")) {
            rc = claude_push(p->turn_parts, event_part_text(claude_str(block, "text")), err);
        } else if (strcmp(type, "thinking") == 0 && claude_str(block, "thinking")) {
            const char *t = claude_str(block, "thinking");
            rc = *t ? claude_push(p->turn_parts, event_part_reasoning(t, "public"), err) : 0;
        } else if (strcmp(type, "tool_use") == 0) {
            const char *name = claude_str(block, "name");
            const char *id = claude_str(block, "id");
            char generated[64];
            if (!id) {
                snprintf(generated, sizeof generated, "claude_tool_%llu", ++p->counter);
                id = generated;
            }
            const json_t *input = json_object_get(block, "input");
            char *args = json_dumps(input ? input : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
            json_t *item = args ? event_item("tool_call", "assistant", "completed", id,
                                             claude_content1(event_part_tool_call(
                                                 name ? name : "unknown", args, id)))
                                : NULL;
            free(args);
            json_t *c = event_conversion("item.completed", event_item_data(item));
            rc = claude_push(out, event_with_raw(c, json_deep_copy(line)), err);
        }
        /* Other blocks (redacted thinking, server tools) carry nothing to show. */
        if (rc)
            return rc;
    }
    return 0;
}

static int claude_user(adapter_claude_parser_t *p, const json_t *line, json_t *out,
                       struct err *err)
{
    (void)p; /* tool results need no state */
    const json_t *content = json_object_get(json_object_get(line, "message"), "content");
    size_t i;
    const json_t *block;
    json_array_foreach(content, i, block) {
        if (!claude_str_is(block, "type", "tool_result"))
            continue; /* echoed prompts, "[Request interrupted by user]" */
        const char *id = claude_str(block, "tool_use_id");
        if (!id)
            id = claude_str(block, "toolUseId");
        if (!id)
            id = "unknown";
        char *text = claude_result_text(json_object_get(block, "content"));
        if (!text)
            return err_set(err, ERR_NOMEM, "out of memory");
        /* One item per result; the call's item keeps the call id. */
        struct buf native;
        buf_init(&native);
        int rc = buf_printf(&native, "%s_result", id);
        json_t *item = rc ? NULL
                          : event_item("tool_result", "tool",
                                       json_is_true(json_object_get(block, "is_error")) ? "failed"
                                                                                      : "completed",
                                       native.data,
                                       claude_content1(event_part_tool_result(id, text)));
        free(text);
        buf_free(&native);
        json_t *c = event_conversion("item.completed", event_item_data(item));
        rc = claude_push(out, event_with_raw(c, json_deep_copy(line)), err);
        if (rc)
            return rc;
    }
    return 0;
}

static int claude_result(adapter_claude_parser_t *p, const json_t *line, json_t *out,
                         struct err *err)
{
    int is_error = json_is_true(json_object_get(line, "is_error"));
    const char *result = claude_str(line, "result");
    int has_text = 0;
    size_t i;
    const json_t *part;
    json_array_foreach(p->turn_parts, i, part)
        has_text |= claude_str_is(part, "type", "text");
    json_t *content = p->turn_parts;
    p->turn_parts = json_array();
    if (!p->turn_parts) {
        json_decref(content);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    if (!has_text && result && *result &&
        json_array_append_new(content, event_part_text(result)) != 0) {
        json_decref(content);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    char native[256];
    if (claude_message_native(p, native, sizeof native) != 0)
        snprintf(native, sizeof native, "%s_message", p->session_id);
    free(p->message_id);
    p->message_id = NULL;
    if (p->turns_open)
        p->turns_open--;
    json_t *c = event_conversion(
        "item.completed",
        event_item_data(event_item("message", "assistant", is_error ? "failed" : "completed",
                                   native, content)));
    int rc = claude_push(out, event_with_raw(c, json_deep_copy(line)), err);
    if (rc || !is_error)
        return rc;

    /* The reason: the result text, Claude's errors[], or the subtype. */
    const char *subtype = claude_str(line, "subtype");
    const char *message = result && *result ? result : NULL;
    const json_t *errors = json_object_get(line, "errors");
    if (!message)
        message = json_string_value(json_array_get(errors, 0));
    if (!message)
        message = subtype ? subtype : "claude reported an error";
    json_t *details = json_object();
    if (details) {
        static const char *const keys[] = { "subtype", "api_error_status", "terminal_reason",
                                            "errors" };
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            json_t *v = json_object_get(line, keys[k]);
            if (v && json_object_set(details, keys[k], v) != 0) {
                json_decref(details);
                details = NULL;
                break;
            }
        }
    }
    const char *code = json_is_integer(json_object_get(line, "api_error_status"))
                           ? "api_error"
                           : (subtype ? subtype : "error");
    return claude_push(out,
                       event_with_raw(event_conversion("error", event_error_data(message, code,
                                                                                 details)),
                                      json_deep_copy(line)),
                       err);
}

/* new: the labels of the first question's options. */
static json_t *claude_question_options(const json_t *question)
{
    json_t *labels = json_array();
    size_t i;
    const json_t *opt;
    json_array_foreach(json_object_get(question, "options"), i, opt) {
        const char *label = json_is_string(opt) ? json_string_value(opt) : claude_str(opt, "label");
        if (label && labels && json_array_append_new(labels, json_string(label)) != 0) {
            json_decref(labels);
            return NULL;
        }
    }
    return labels;
}

/* Stores a pending request (kind, tool, input, suggestions, and for
 * questions the prompt and options shown). */
static int claude_remember(adapter_claude_parser_t *p, const char *request_id, const char *kind,
                           const json_t *request, const char *prompt, const json_t *options,
                           struct err *err)
{
    json_t *r = json_pack("{s:s,s:O,s:O}", "kind", kind, "request", request, "options",
                          options ? options : json_null());
    if (r && prompt && json_object_set_new(r, "prompt", json_string(prompt)) != 0) {
        json_decref(r);
        r = NULL;
    }
    if (!r)
        return err_set(err, ERR_NOMEM, "out of memory");
    json_t *old = hmap_get(p->requests, request_id);
    if (hmap_put(p->requests, request_id, r) != 0) {
        json_decref(r);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    json_decref(old);
    return 0;
}

static int claude_deny_line(json_t *replies, const char *request_id, const char *message,
                            struct err *err)
{
    return claude_reply(replies,
                        json_pack("{s:s,s:{s:s,s:s,s:{s:s,s:s}}}", "type", "control_response",
                                  "response", "subtype", "success", "request_id", request_id,
                                  "response", "behavior", "deny", "message", message),
                        err);
}

static int claude_can_use_tool(adapter_claude_parser_t *p, const json_t *line,
                               const char *request_id, const json_t *request, json_t *out,
                               json_t *replies, struct err *err)
{
    const char *tool = claude_str(request, "tool_name");
    if (!tool)
        tool = "unknown";
    const json_t *input = json_object_get(request, "input");
    json_t *c = NULL;
    int rc;

    if (claude_is_question_tool(tool) || claude_is_exit_plan_tool(tool)) {
        const char *prompt = NULL;
        json_t *options = NULL;
        char *plan_prompt = NULL;
        const json_t *first = json_array_get(json_object_get(input, "questions"), 0);
        if (claude_is_exit_plan_tool(tool)) {
            const char *plan = claude_str(input, "plan");
            if (plan && *plan) {
                size_t n = strlen(plan) + 64;
                if ((plan_prompt = malloc(n)))
                    snprintf(plan_prompt, n, "Approve plan execution?\n\n%s", plan);
            }
            prompt = plan_prompt ? plan_prompt : "Approve plan execution?";
            options = json_pack("[s,s]", "approve", "reject");
        } else if (claude_str(first, "question")) {
            prompt = claude_str(first, "question");
            options = claude_question_options(first);
        } else if (claude_str(input, "question")) {
            prompt = claude_str(input, "question");
            options = claude_question_options(input);
        }
        if (prompt) {
            rc = options ? claude_remember(p, request_id,
                                           claude_is_exit_plan_tool(tool) ? "plan" : "question",
                                           request, prompt, options, err)
                         : err_set(err, ERR_NOMEM, "out of memory");
            if (rc == 0) {
                c = event_conversion("question.requested",
                                     event_question_data(request_id, prompt,
                                                         json_incref(options), NULL,
                                                         "requested"));
                rc = claude_push(out, event_with_raw(c, json_deep_copy(line)), err);
            }
            json_decref(options);
            free(plan_prompt);
            return rc;
        }
        json_decref(options);
        free(plan_prompt);
        /* No question in it: ask for permission like any tool. */
    }

    if (p->plan && !claude_is_read_only_tool(tool)) {
        char message[256];
        snprintf(message, sizeof message,
                 "Plan mode is active: %s is not allowed until the plan is approved. Present "
                 "the plan with ExitPlanMode first.",
                 tool);
        return claude_deny_line(replies, request_id, message, err);
    }

    /* Keys sorted, as the reference's JSON maps print them. */
    json_t *metadata = json_pack("{s:O,s:O,s:O,s:s}", "blockedPath",
                                 json_object_get(request, "blocked_path")
                                     ? json_object_get(request, "blocked_path")
                                     : json_null(),
                                 "input", input ? input : json_null(), "permissionSuggestions",
                                 json_object_get(request, "permission_suggestions")
                                     ? json_object_get(request, "permission_suggestions")
                                     : json_null(),
                                 "toolName", tool);
    if (!metadata)
        return err_set(err, ERR_NOMEM, "out of memory");
    rc = claude_remember(p, request_id, "permission", request, NULL, NULL, err);
    if (rc) {
        json_decref(metadata);
        return rc;
    }
    c = event_conversion("permission.requested",
                         event_permission_data(request_id, tool, "requested", metadata));
    return claude_push(out, event_with_raw(c, json_deep_copy(line)), err);
}

static int claude_control_request(adapter_claude_parser_t *p, const json_t *line, json_t *out,
                                  json_t *replies, struct err *err)
{
    const char *request_id = claude_str(line, "request_id");
    const json_t *request = json_object_get(line, "request");
    const char *subtype = claude_str(request, "subtype");
    if (!request_id || !json_is_object(request))
        return claude_push(out, claude_unparsed("control_request without request_id or request",
                                                json_deep_copy(line)),
                           err);
    if (subtype && strcmp(subtype, "can_use_tool") == 0)
        return claude_can_use_tool(p, line, request_id, request, out, replies, err);
    /* Unanswered, Claude would wait forever: say we do not support it. */
    char message[160];
    snprintf(message, sizeof message, "unsupported control request subtype: %.100s",
             subtype ? subtype : "(none)");
    int rc = claude_reply(replies,
                          json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "control_response",
                                    "response", "subtype", "error", "request_id", request_id,
                                    "error", message),
                          err);
    if (rc == 0)
        rc = claude_push(out, claude_unparsed(message, json_deep_copy(line)), err);
    return rc;
}

/* new: the conversion that withdraws the pending request `r`: permission
 * resolved denied, or question resolved rejected. */
static json_t *claude_withdrawn(const char *request_id, const json_t *r)
{
    const json_t *request = json_object_get(r, "request");
    if (claude_str_is(r, "kind", "permission")) {
        const char *tool = claude_str(request, "tool_name");
        return event_conversion("permission.resolved",
                                event_permission_data(request_id, tool ? tool : "unknown",
                                                      "denied", NULL));
    }
    return event_conversion("question.resolved",
                            event_question_data(request_id, claude_str(r, "prompt"),
                                                json_deep_copy(json_object_get(r, "options")),
                                                NULL, "rejected"));
}

static int claude_control_cancel(adapter_claude_parser_t *p, const json_t *line, json_t *out,
                                 struct err *err)
{
    const char *request_id = claude_str(line, "request_id");
    json_t *r = request_id ? hmap_remove(p->requests, request_id) : NULL;
    if (!r)
        return 0;
    json_t *c = claude_withdrawn(request_id, r);
    json_decref(r);
    return claude_push(out, event_with_raw(c, json_deep_copy(line)), err);
}

struct claude_withdrawal {
    json_t *out;
    int failed;
};

static void claude_withdraw_one(const char *key, void *value, void *arg)
{
    struct claude_withdrawal *w = arg;
    if (json_array_append_new(w->out, event_synthetic(claude_withdrawn(key, value))) != 0)
        w->failed = 1;
    json_decref(value);
}

int adapter_claude_withdraw_pending(adapter_claude_parser_t *p, json_t *conversions,
                                    struct err *err)
{
    hmap_t *none = hmap_new();
    if (!none)
        return err_set(err, ERR_NOMEM, "out of memory");
    struct claude_withdrawal w = { conversions, 0 };
    hmap_foreach(p->requests, claude_withdraw_one, &w);
    hmap_free(p->requests);
    p->requests = none;
    return w.failed ? err_set(err, ERR_NOMEM, "out of memory") : 0;
}

int adapter_claude_parse_line(adapter_claude_parser_t *p, const char *line, size_t len, int cut,
                              json_t *conversions, json_t *replies, struct err *err)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    size_t skip = 0;
    while (skip < len && (line[skip] == ' ' || line[skip] == '\t'))
        skip++;
    if (skip == len && !cut)
        return 0;
    if (cut)
        return claude_push(conversions,
                           claude_unparsed("line too long",
                                           claude_lossy_string(line + skip,
                                                               len - skip > 1024 ? 1024
                                                                                 : len - skip)),
                           err);
    json_error_t jerr;
    json_t *v = json_loadb(line + skip, len - skip, 0, &jerr);
    if (!v)
        return claude_push(conversions,
                           claude_unparsed(jerr.text, claude_lossy_string(line + skip, len - skip)),
                           err);
    const char *type = json_is_object(v) ? claude_str(v, "type") : NULL;
    int rc;
    if (!type) {
        rc = claude_push(conversions, claude_unparsed("line without a type", json_incref(v)),
                         err);
    } else if (strcmp(type, "system") == 0) {
        rc = claude_system(p, v, conversions, err);
    } else if (strcmp(type, "stream_event") == 0) {
        rc = claude_stream_event(p, v, conversions, err);
    } else if (strcmp(type, "assistant") == 0) {
        rc = claude_assistant(p, v, conversions, err);
    } else if (strcmp(type, "user") == 0) {
        rc = claude_user(p, v, conversions, err);
    } else if (strcmp(type, "result") == 0) {
        rc = claude_result(p, v, conversions, err);
    } else if (strcmp(type, "control_request") == 0) {
        rc = claude_control_request(p, v, conversions, replies, err);
    } else if (strcmp(type, "control_cancel_request") == 0) {
        rc = claude_control_cancel(p, v, conversions, err);
    } else if (strcmp(type, "control_response") == 0 || strcmp(type, "keep_alive") == 0 ||
               strcmp(type, "update_environment_variables") == 0) {
        rc = 0;
    } else {
        char message[128];
        snprintf(message, sizeof message, "unsupported Claude event type: %.80s", type);
        rc = claude_push(conversions, claude_unparsed(message, json_incref(v)), err);
    }
    json_decref(v);
    return rc;
}

/* ---- stdin lines ------------------------------------------------------------ */

char *adapter_claude_user_line(adapter_claude_parser_t *p, const char *text)
{
    json_t *v = json_pack("{s:s,s:{s:s,s:s},s:n}", "type", "user", "message", "role", "user",
                          "content", text, "parent_tool_use_id");
    char *line = v ? claude_line_of(v) : NULL;
    json_decref(v);
    if (line)
        p->turns_open++;
    return line;
}

/* new: {"type":"control_response","response":{"subtype":"success",
 * "request_id":id,"response":<decision, stolen>}} as a line. */
static char *claude_decision_line(const char *request_id, json_t *decision)
{
    json_t *v = decision ? json_pack("{s:s,s:{s:s,s:s,s:o}}", "type", "control_response",
                                     "response", "subtype", "success", "request_id", request_id,
                                     "response", decision)
                         : NULL;
    char *line = v ? claude_line_of(v) : NULL;
    json_decref(v);
    return line;
}

/* new: the request's suggestions, each kept for this session only. */
static json_t *claude_session_rules(const json_t *suggestions)
{
    json_t *rules = json_array();
    size_t i;
    const json_t *s;
    json_array_foreach(suggestions, i, s) {
        if (!json_is_object(s) || !rules)
            continue;
        json_t *copy = json_deep_copy(s);
        if (!copy || json_object_set_new(copy, "destination", json_string("session")) != 0 ||
            json_array_append_new(rules, copy) != 0) {
            json_decref(copy);
            json_decref(rules);
            return NULL;
        }
    }
    return rules;
}

int adapter_claude_permission_line(adapter_claude_parser_t *p, const char *request_id,
                                   const char *reply, char **line_out, struct err *err)
{
    int allow = strcmp(reply, "once") == 0 || strcmp(reply, "always") == 0;
    if (!allow && strcmp(reply, "reject") != 0)
        return err_set(err, ERR_INVALID, "invalid permission reply: %s", reply);
    json_t *r = hmap_get(p->requests, request_id);
    if (!r || !claude_str_is(r, "kind", "permission"))
        return err_set(err, ERR_NOT_FOUND, "no pending claude permission request %s",
                       request_id);
    const json_t *request = json_object_get(r, "request");
    json_t *decision;
    if (!allow) {
        decision = json_pack("{s:s,s:s}", "behavior", "deny", "message",
                             "The user denied this tool use.");
    } else {
        /* Claude Code requires updatedInput on allow: echo the input. */
        const json_t *input = json_object_get(request, "input");
        decision = json_pack("{s:s,s:o}", "behavior", "allow", "updatedInput",
                             json_is_object(input) ? json_deep_copy(input) : json_object());
        if (decision && strcmp(reply, "always") == 0) {
            json_t *rules = claude_session_rules(json_object_get(request,
                                                                 "permission_suggestions"));
            if (!rules || json_object_set_new(decision, "updatedPermissions", rules) != 0) {
                json_decref(decision);
                decision = NULL;
            }
        }
    }
    char *line = claude_decision_line(request_id, decision);
    if (!line)
        return err_set(err, ERR_NOMEM, "out of memory");
    json_decref(hmap_remove(p->requests, request_id));
    *line_out = line;
    return 0;
}

/* new: `labels` (array of strings) joined by ", ". */
static char *claude_join(const json_t *labels)
{
    struct buf b;
    buf_init(&b);
    size_t i;
    const json_t *l;
    json_array_foreach(labels, i, l) {
        if (!json_is_string(l))
            continue;
        if ((b.len && buf_puts(&b, ", ")) || buf_puts(&b, json_string_value(l))) {
            buf_free(&b);
            return NULL;
        }
    }
    if (!b.len)
        return strdup("");
    return buf_steal(&b);
}

int adapter_claude_question_line(adapter_claude_parser_t *p, const char *request_id,
                                 const json_t *answers, char **line_out, struct err *err)
{
    json_t *r = hmap_get(p->requests, request_id);
    if (!r || claude_str_is(r, "kind", "permission"))
        return err_set(err, ERR_NOT_FOUND, "no pending claude question %s", request_id);
    const json_t *request = json_object_get(r, "request");
    const json_t *input = json_object_get(request, "input");
    json_t *decision = NULL;
    if (claude_str_is(r, "kind", "plan")) {
        const char *first = json_string_value(json_array_get(json_array_get(answers, 0), 0));
        int reject = !answers || (first && strcasecmp(first, "reject") == 0);
        if (reject)
            decision = json_pack("{s:s,s:s}", "behavior", "deny", "message",
                                 "The user rejected the plan. Keep planning.");
        else
            decision = json_pack("{s:s,s:o}", "behavior", "allow", "updatedInput",
                                 json_is_object(input) ? json_deep_copy(input) : json_object());
    } else if (!answers) {
        decision = json_pack("{s:s,s:s}", "behavior", "deny", "message",
                             "The user declined to answer the question.");
    } else {
        /* updatedInput = the input plus answers: {question text: answer}. */
        json_t *updated = json_is_object(input) ? json_deep_copy(input) : json_object();
        json_t *map = json_object();
        const json_t *questions = json_object_get(input, "questions");
        int ok = updated && map;
        size_t i;
        const json_t *q;
        json_array_foreach(questions, i, q) {
            const char *text = claude_str(q, "question");
            const json_t *labels = json_array_get(answers, i);
            if (!ok || !text || !labels)
                continue;
            char *joined = claude_join(labels);
            ok = joined && json_object_set_new(map, text, json_string(joined)) == 0;
            free(joined);
        }
        if (!json_is_array(questions) && ok && claude_str(input, "question")) {
            char *joined = claude_join(json_array_get(answers, 0));
            ok = joined && json_object_set_new(map, claude_str(input, "question"),
                                               json_string(joined)) == 0;
            free(joined);
        }
        if (ok && json_object_set_new(updated, "answers", map) == 0) {
            map = NULL;
            decision = json_pack("{s:s,s:o}", "behavior", "allow", "updatedInput", updated);
            updated = NULL;
        }
        json_decref(map);
        json_decref(updated);
    }
    char *line = claude_decision_line(request_id, decision);
    if (!line)
        return err_set(err, ERR_NOMEM, "out of memory");
    json_decref(hmap_remove(p->requests, request_id));
    *line_out = line;
    return 0;
}

json_t *adapter_claude_user_message(const char *native_id, const char *text)
{
    json_t *list = json_array();
    json_t *c = event_conversion(
        "item.completed",
        event_item_data(event_item("message", "user", "completed", native_id,
                                   claude_content1(event_part_text(text)))));
    if (!list || !c || json_array_append_new(list, c) != 0) {
        json_decref(list);
        if (list)
            return NULL;
        json_decref(c);
        return NULL;
    }
    return list;
}

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
