/* The pure part of the Claude Code adapter (see claude.h): stdout lines to
 * conversions, and the stdin lines of messages and replies.  No I/O, no
 * locks, no clock: unit tests and the fuzzer call it directly. */
#include "adapters/claude.h"

#include "base/buf.h"
#include "base/err.h"
#include "base/hmap.h"
#include "events/event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* new (free()): the native id of the assistant message: Claude's message
 * id, else one named after the session, whole however long the session id
 * is (a cut one could split a character, or give two messages one id).
 * NULL when memory ran out. */
static char *claude_message_native(adapter_claude_parser_t *p)
{
    if (p->message_id)
        return strdup(p->message_id);
    p->counter++;
    int n = snprintf(NULL, 0, "%s_message_%llu", p->session_id, p->counter);
    char *native = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (native)
        snprintf(native, (size_t)n + 1, "%s_message_%llu", p->session_id, p->counter);
    return native;
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
    char *native = claude_message_native(p);
    json_t *c = native ? event_conversion("item.delta", event_delta_data("", native, text)) : NULL;
    free(native);
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
                                             event_content(event_part_tool_call(
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
                                       event_content(event_part_tool_result(id, text)));
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
    char *native = claude_message_native(p);
    free(p->message_id);
    p->message_id = NULL;
    if (p->turns_open)
        p->turns_open--;
    if (!native) {
        json_decref(content);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    json_t *c = event_conversion(
        "item.completed",
        event_item_data(event_item("message", "assistant", is_error ? "failed" : "completed",
                                   native, content)));
    free(native);
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
                                   event_content(event_part_text(text)))));
    if (!list || !c || json_array_append_new(list, c) != 0) {
        json_decref(list);
        if (list)
            return NULL;
        json_decref(c);
        return NULL;
    }
    return list;
}
