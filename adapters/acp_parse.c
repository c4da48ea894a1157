/* The pure part of the ACP adapter (see acp.h): one agent process's
 * JSON-RPC lines to conversions, and every line we write.  No I/O, no locks,
 * no clock: unit tests and the fuzzer call it directly.
 *
 * The parser lives as long as one process.  Its phases follow the
 * handshake: nothing sent, initialize sent, session/new or session/load
 * sent, ready.  User messages arriving before "ready", or while a prompt
 * runs, wait in `queue` and go out one at a time, each after the previous
 * prompt's result: ACP runs one prompt per session at a time. */
#include "adapters/acp.h"

#include "base/err.h"
#include "events/event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum acp_phase {
    ACP_IDLE,         /* nothing written yet */
    ACP_INITIALIZING, /* initialize sent */
    ACP_OPENING,      /* session/new or session/load sent */
    ACP_READY,
    ACP_FAILED,       /* the handshake failed: every message fails at once */
};

struct adapter_acp_parser {
    char *session_id;
    char *id_prefix;
    char *cwd;
    json_t *mcp_servers;
    char *resume_id;
    char *agent_mode;
    char *context;

    enum acp_phase phase;
    int can_load;
    int loading;              /* session/load sent: replayed updates are skipped */
    int sync_after_load;      /* see adapter_acp_start */
    long long next_id;        /* our JSON-RPC request ids */
    long long init_id, open_id, prompt_id, sync_id; /* 0: none outstanding */
    char *acp_session;
    json_t *modes;            /* [{id,name,description}] or NULL */
    char *current_mode;

    json_t *queue;            /* texts of the messages waiting */
    unsigned long long open_turns;
    int prompt_running;
    char *message_native;     /* the running turn's assistant message */
    json_t *parts;            /* its reasoning and text parts so far */
    unsigned long long counter;

    json_t *tools;            /* {toolCallId: the call as merged so far} */
    /* {toolCallId: true}: calls in `tools` known only from a permission
     * request's toolCall, whose tool_call item is still to come (Qwen Code
     * and Gemini CLI announce no call of their own: its title, kind and
     * rawInput are only in the permission request). */
    json_t *unannounced;
    json_t *pending;          /* {permission id: {"id": rpc id, "options", "action"}} */
};

/* ---- small helpers --------------------------------------------------------- */

static const char *acp_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int acp_nomem(struct err *err)
{
    return err_set(err, ERR_NOMEM, "out of memory parsing an ACP line");
}

/* Appends `c` (stolen); a NULL `c` means a builder ran out of memory. */
static int acp_push(json_t *list, json_t *c, struct err *err)
{
    if (!c || json_array_append_new(list, c) != 0)
        return acp_nomem(err);
    return 0;
}

static char *acp_dup(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *failed = 1;
    return c;
}

/* new (free()): `v` (stolen) as one line: compact JSON and "\n". */
static char *acp_line(json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    size_t n = text ? strlen(text) : 0;
    char *line = text ? malloc(n + 2) : NULL;
    if (line) {
        memcpy(line, text, n);
        memcpy(line + n, "\n", 2);
    }
    free(text);
    return line;
}

static int acp_push_line(json_t *replies, char *line, struct err *err)
{
    json_t *s = line ? json_string(line) : NULL;
    free(line);
    return acp_push(replies, s, err);
}

/* new: agent.unparsed carrying `raw` (stolen, may be NULL). */
static json_t *acp_unparsed(const char *error, json_t *raw)
{
    json_t *c = event_synthetic(
        event_conversion("agent.unparsed", event_unparsed_data(error, "acp", NULL)));
    return raw ? event_with_raw(c, raw) : c;
}

/* new (free()): "<a><b><n>" whole (an id cut to a buffer could split a
 * character or give two items one id). */
static char *acp_id(const char *a, const char *b, unsigned long long n)
{
    int len = snprintf(NULL, 0, "%s%s%llu", a, b, n);
    char *s = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (s)
        snprintf(s, (size_t)len + 1, "%s%s%llu", a, b, n);
    return s;
}

static char *acp_join(const char *a, const char *b)
{
    size_t x = strlen(a), y = strlen(b);
    char *s = malloc(x + y + 1);
    if (s) {
        memcpy(s, a, x);
        memcpy(s + x, b, y + 1);
    }
    return s;
}

/* ---- life ------------------------------------------------------------------ */

adapter_acp_parser_t *adapter_acp_parser_new(const struct adapter_acp_start *start)
{
    adapter_acp_parser_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    int failed = 0;
    p->session_id = acp_dup(start->session_id ? start->session_id : "session", &failed);
    p->id_prefix = acp_dup(start->id_prefix ? start->id_prefix : "acp", &failed);
    p->cwd = acp_dup(start->cwd ? start->cwd : "/", &failed);
    p->resume_id = acp_dup(start->resume_id, &failed);
    p->agent_mode = acp_dup(start->agent_mode, &failed);
    p->context = acp_dup(start->context, &failed);
    p->sync_after_load = start->sync_after_load;
    p->mcp_servers = start->mcp_servers ? json_deep_copy(start->mcp_servers) : json_array();
    p->queue = json_array();
    p->parts = json_array();
    p->tools = json_object();
    p->unannounced = json_object();
    p->pending = json_object();
    p->next_id = 1;
    if (failed || !p->mcp_servers || !p->queue || !p->parts || !p->tools || !p->unannounced ||
        !p->pending) {
        adapter_acp_parser_free(p);
        return NULL;
    }
    return p;
}

void adapter_acp_parser_free(adapter_acp_parser_t *p)
{
    if (!p)
        return;
    free(p->session_id);
    free(p->id_prefix);
    free(p->cwd);
    free(p->resume_id);
    free(p->agent_mode);
    free(p->context);
    free(p->acp_session);
    free(p->current_mode);
    free(p->message_native);
    json_decref(p->mcp_servers);
    json_decref(p->modes);
    json_decref(p->queue);
    json_decref(p->parts);
    json_decref(p->tools);
    json_decref(p->unannounced);
    json_decref(p->pending);
    free(p);
}

const char *adapter_acp_session_id(const adapter_acp_parser_t *p)
{
    return p->acp_session;
}

int adapter_acp_can_load(const adapter_acp_parser_t *p)
{
    return p->can_load;
}

unsigned long long adapter_acp_open_turns(const adapter_acp_parser_t *p)
{
    return p->open_turns;
}

json_t *adapter_acp_modes(const adapter_acp_parser_t *p)
{
    return p->modes ? json_deep_copy(p->modes) : NULL;
}

const char *adapter_acp_current_mode(const adapter_acp_parser_t *p)
{
    return p->current_mode;
}

/* ---- lines we write ---------------------------------------------------------- */

/* new (free()): a request line `method` with `params` (stolen); its id in
 * *id_out. */
static char *acp_request(adapter_acp_parser_t *p, const char *method, json_t *params,
                         long long *id_out)
{
    long long id = p->next_id++;
    if (id_out)
        *id_out = id;
    return acp_line(params ? json_pack("{s:s,s:I,s:s,s:o}", "jsonrpc", "2.0", "id",
                                       (json_int_t)id, "method", method, "params", params)
                           : NULL);
}

char *adapter_acp_result_line(const json_t *id, json_t *result)
{
    return acp_line(json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                              "result", result ? result : json_null()));
}

char *adapter_acp_error_line(const json_t *id, int code, const char *message)
{
    return acp_line(json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id",
                              id ? id : json_null(), "error", "code", code, "message", message));
}

static char *acp_initialize_line(adapter_acp_parser_t *p)
{
    json_t *params = json_pack("{s:i,s:{s:{s:b,s:b},s:b},s:{s:s,s:s}}", "protocolVersion",
                               ADAPTER_ACP_PROTOCOL_VERSION, "clientCapabilities", "fs",
                               "readTextFile", 1, "writeTextFile", 1, "terminal", 0,
                               "clientInfo", "name", "sandbox-journal", "version", "1");
    return acp_request(p, "initialize", params, &p->init_id);
}

/* The session/new or session/load line, after the initialize result. */
static char *acp_open_line(adapter_acp_parser_t *p)
{
    if (p->resume_id && p->can_load) {
        p->loading = 1;
        return acp_request(p, "session/load",
                           json_pack("{s:s,s:s,s:O}", "sessionId", p->resume_id, "cwd", p->cwd,
                                     "mcpServers", p->mcp_servers),
                           &p->open_id);
    }
    p->loading = 0;
    return acp_request(p, "session/new",
                       json_pack("{s:s,s:O}", "cwd", p->cwd, "mcpServers", p->mcp_servers),
                       &p->open_id);
}

/* Starts the next waiting message's prompt when the session is ready and
 * none runs: appends its line to `replies`.  The first prompt of a session
 * that could not be loaded carries the earlier conversation. */
static int acp_next_prompt(adapter_acp_parser_t *p, json_t *replies, struct err *err)
{
    if (p->phase != ACP_READY || p->prompt_running || json_array_size(p->queue) == 0)
        return 0;
    const char *text = json_string_value(json_array_get(p->queue, 0));
    json_t *prompt = json_array();
    int rc = prompt ? 0 : -1;
    if (rc == 0 && p->context)
        rc = json_array_append_new(prompt, json_pack("{s:s,s:s}", "type", "text", "text",
                                                     p->context));
    if (rc == 0)
        rc = json_array_append_new(prompt, json_pack("{s:s,s:s}", "type", "text", "text",
                                                     text ? text : ""));
    if (rc) {
        json_decref(prompt);
        return acp_nomem(err);
    }
    char *native = acp_id(p->session_id, "_acp_message_", ++p->counter);
    if (!native) {
        json_decref(prompt);
        return acp_nomem(err);
    }
    char *line = acp_request(p, "session/prompt",
                             json_pack("{s:s,s:o}", "sessionId", p->acp_session, "prompt",
                                       prompt),
                             &p->prompt_id);
    if (!line) {
        free(native);
        return acp_nomem(err);
    }
    free(p->context); /* offered once */
    p->context = NULL;
    free(p->message_native);
    p->message_native = native;
    json_array_clear(p->parts);
    p->prompt_running = 1;
    if (json_array_remove(p->queue, 0) != 0) {
        free(line);
        return acp_nomem(err);
    }
    return acp_push_line(replies, line, err);
}

char *adapter_acp_prompt(adapter_acp_parser_t *p, const char *text)
{
    if (json_array_append_new(p->queue, json_string(text ? text : "")) != 0)
        return NULL;
    p->open_turns++;
    if (p->phase == ACP_IDLE) {
        p->phase = ACP_INITIALIZING;
        return acp_initialize_line(p);
    }
    json_t *replies = json_array();
    struct err err;
    if (!replies || acp_next_prompt(p, replies, &err) != 0) {
        json_decref(replies);
        return NULL;
    }
    const char *line = json_string_value(json_array_get(replies, 0));
    char *out = strdup(line ? line : "");
    json_decref(replies);
    return out;
}

/* ---- the turn's message ---------------------------------------------------------- */

/* Adds `text` to the turn's parts, extending the last part when it is of
 * the same type. */
static int acp_add_part(adapter_acp_parser_t *p, const char *type, const char *text,
                        struct err *err)
{
    json_t *last = json_array_get(p->parts, json_array_size(p->parts) - 1);
    if (last && strcmp(acp_str(last, "type"), type) == 0) {
        char *joined = acp_join(acp_str(last, "text"), text);
        int rc = joined ? json_object_set_new(last, "text", json_string(joined)) : -1;
        free(joined);
        return rc ? acp_nomem(err) : 0;
    }
    json_t *part = strcmp(type, "text") == 0 ? event_part_text(text)
                                             : event_part_reasoning(text, "public");
    return acp_push(p->parts, part, err);
}

/* Completes the running turn's assistant message with `status`. */
static int acp_complete_turn(adapter_acp_parser_t *p, const char *status, json_t *out,
                             struct err *err)
{
    if (!p->prompt_running)
        return 0;
    p->prompt_running = 0;
    p->prompt_id = 0;
    if (p->open_turns)
        p->open_turns--;
    json_t *parts = json_deep_copy(p->parts);
    json_array_clear(p->parts);
    return acp_push(out, event_conversion("item.completed",
                                          event_item_data(event_item("message", "assistant",
                                                                     status, p->message_native,
                                                                     parts))),
                    err);
}

/* ---- session/update ---------------------------------------------------------------- */

/* new (free()): the text of a ContentBlock or of a list of ToolCallContent
 * (text blocks joined by "\n"); "" when there is none. */
static char *acp_content_text(const json_t *content)
{
    if (json_is_object(content)) {
        const char *t = acp_str(content, "text");
        return strdup(t ? t : "");
    }
    size_t total = 1, i;
    json_t *c;
    json_array_foreach(content, i, c) {
        const json_t *block = json_object_get(c, "content");
        const char *t = acp_str(block, "text");
        if (t && (!acp_str(c, "type") || strcmp(acp_str(c, "type"), "content") == 0))
            total += strlen(t) + 1;
    }
    char *s = malloc(total), *w = s;
    if (!s)
        return NULL;
    json_array_foreach(content, i, c) {
        const json_t *block = json_object_get(c, "content");
        const char *t = acp_str(block, "text");
        if (!t || (acp_str(c, "type") && strcmp(acp_str(c, "type"), "content") != 0))
            continue;
        if (w != s)
            *w++ = '\n';
        size_t n = strlen(t);
        memcpy(w, t, n);
        w += n;
    }
    *w = '\0';
    return s;
}

/* new (free()): a diff of `old_text` (NULL: a new file) to `new_text`,
 * every old line with "-", every new one with "+". */
static char *acp_diff(const char *old_text, const char *new_text)
{
    size_t total = 1;
    for (int pass = 0; pass < 2; pass++) {
        const char *t = pass ? new_text : old_text;
        for (const char *c = t; c && *c; c++)
            total += *c == '\n' ? 2 : 1;
        total += t && *t ? 2 : 0;
    }
    char *s = malloc(total + 1), *w = s;
    if (!s)
        return NULL;
    for (int pass = 0; pass < 2; pass++) {
        const char *t = pass ? new_text : old_text;
        if (!t || !*t)
            continue;
        *w++ = pass ? '+' : '-';
        for (const char *c = t; *c; c++) {
            *w++ = *c;
            if (*c == '\n' && c[1])
                *w++ = pass ? '+' : '-';
        }
        if (w[-1] != '\n')
            *w++ = '\n';
    }
    *w = '\0';
    return s;
}

/* Merges the fields the update carries into the remembered call. */
static int acp_merge_tool(json_t *call, const json_t *update)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)update, key, v) {
        if (strcmp(key, "sessionUpdate") == 0 || json_is_null(v))
            continue;
        if (json_object_set(call, key, v) != 0)
            return -1;
    }
    return 0;
}

/* new: the tool_call item of a call: named after the tool when the agent
 * says which (Qwen Code's _meta.toolName), else after its title or kind. */
static json_t *acp_tool_call_item(const char *id, const json_t *call)
{
    const char *name = acp_str(json_object_get(call, "_meta"), "toolName");
    if (!name || !*name)
        name = acp_str(call, "title");
    if (!name || !*name)
        name = acp_str(call, "kind");
    const json_t *input = json_object_get(call, "rawInput");
    char *args = input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
    json_t *item = args ? event_item("tool_call", "assistant", "completed", id,
                                     event_content(event_part_tool_call(
                                         name && *name ? name : "tool", args, id)))
                        : NULL;
    free(args);
    return item;
}

/* new: the tool_result item of a call that ended with `status`. */
static json_t *acp_tool_result_item(const char *id, const json_t *call, const char *status)
{
    const json_t *content = json_object_get(call, "content");
    char *output = acp_content_text(content);
    if (output && !*output && json_object_get(call, "rawOutput")) {
        free(output);
        const json_t *raw = json_object_get(call, "rawOutput");
        output = json_is_string(raw) ? strdup(json_string_value(raw))
                                     : json_dumps(raw, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    char *native = acp_join(id, "_result");
    json_t *parts = output && native ? event_content(event_part_tool_result(id, output)) : NULL;
    size_t i;
    json_t *c;
    json_array_foreach(content, i, c) {
        const char *type = acp_str(c, "type");
        const char *path = acp_str(c, "path");
        if (!parts || !type || strcmp(type, "diff") != 0 || !path)
            continue;
        const char *old_text = acp_str(c, "oldText");
        char *diff = acp_diff(old_text, acp_str(c, "newText"));
        if (!diff) {
            json_decref(parts);
            parts = NULL;
            continue;
        }
        parts = event_content_add(parts,
                                  event_part_file_ref(path, old_text ? "patch" : "write", diff));
        free(diff);
    }
    json_t *item = parts ? event_item("tool_result", "tool",
                                      strcmp(status, "failed") == 0 ? "failed" : "completed",
                                      native, parts)
                         : NULL;
    free(output);
    free(native);
    return item;
}

static int acp_tool_update(adapter_acp_parser_t *p, const json_t *update, int first,
                           const json_t *raw, json_t *out, struct err *err)
{
    const char *id = acp_str(update, "toolCallId");
    if (!id || !*id)
        return acp_push(out, acp_unparsed("tool call without a toolCallId",
                                          json_deep_copy(raw)),
                        err);
    json_t *call = json_object_get(p->tools, id);
    int announce = 0;
    if (!call) {
        /* An update of a call we never saw announced still shows it. */
        call = json_object();
        if (!call || json_object_set_new(p->tools, id, call) != 0)
            return acp_nomem(err);
        announce = 1;
    } else if (json_object_get(p->unannounced, id)) {
        /* Known from its permission request: this update adds to that. */
        json_object_del(p->unannounced, id);
        announce = 1;
    } else if (first) {
        /* The same id again: a new announcement replaces the call. */
        json_object_clear(call);
        announce = 1;
    }
    if (acp_merge_tool(call, update) != 0)
        return acp_nomem(err);
    int rc = 0;
    if (announce)
        rc = acp_push(out, event_with_raw(event_conversion("item.completed",
                                                           event_item_data(
                                                               acp_tool_call_item(id, call))),
                                          json_deep_copy(raw)),
                      err);
    const char *status = acp_str(call, "status");
    if (rc == 0 && status && (strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0)) {
        rc = acp_push(out, event_with_raw(event_conversion("item.completed",
                                                           event_item_data(acp_tool_result_item(
                                                               id, call, status))),
                                          json_deep_copy(raw)),
                      err);
        if (rc == 0)
            json_object_del(p->tools, id);
    }
    return rc;
}

static int acp_plan(adapter_acp_parser_t *p, const json_t *update, const json_t *raw,
                    json_t *out, struct err *err)
{
    const json_t *entries = json_object_get(update, "entries");
    size_t total = 1, i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *content = acp_str(e, "content");
        const char *status = acp_str(e, "status");
        total += (content ? strlen(content) : 0) + (status ? strlen(status) : 7) + 5;
    }
    char *detail = malloc(total), *w = detail;
    if (!detail)
        return acp_nomem(err);
    *w = '\0';
    json_array_foreach(entries, i, e) {
        const char *content = acp_str(e, "content");
        const char *status = acp_str(e, "status");
        w += sprintf(w, "%s[%s] %s", w == detail ? "" : "\n", status ? status : "pending",
                     content ? content : "");
    }
    char *native = acp_id(p->session_id, "_acp_plan_", ++p->counter);
    json_t *c = native ? event_conversion("item.completed",
                                          event_item_data(event_item(
                                              "status", NULL, "completed", native,
                                              event_content(event_part_status("plan", detail)))))
                       : NULL;
    free(native);
    free(detail);
    return acp_push(out, event_with_raw(c, json_deep_copy(raw)), err);
}

static int acp_update(adapter_acp_parser_t *p, const json_t *params, const json_t *raw,
                      json_t *out, struct err *err)
{
    const char *sid = acp_str(params, "sessionId");
    const json_t *update = json_object_get(params, "update");
    const char *kind = acp_str(update, "sessionUpdate");
    /* Updates of another session, or the history a session/load replays
     * (journaled when it happened), are not news. */
    if (p->loading || !p->acp_session || !sid || strcmp(sid, p->acp_session) != 0 || !kind)
        return 0;
    if (strcmp(kind, "agent_message_chunk") == 0 || strcmp(kind, "agent_thought_chunk") == 0) {
        const char *text = acp_str(json_object_get(update, "content"), "text");
        if (!text || !*text || !p->prompt_running)
            return 0; /* images and the like have no text part; nothing outside a turn */
        if (kind[6] == 't') /* thought */
            return acp_add_part(p, "reasoning", text, err);
        int rc = acp_add_part(p, "text", text, err);
        if (rc == 0)
            rc = acp_push(out, event_with_raw(event_conversion("item.delta",
                                                               event_delta_data(
                                                                   "", p->message_native, text)),
                                              json_deep_copy(raw)),
                          err);
        return rc;
    }
    if (strcmp(kind, "tool_call") == 0)
        return acp_tool_update(p, update, 1, raw, out, err);
    if (strcmp(kind, "tool_call_update") == 0)
        return acp_tool_update(p, update, 0, raw, out, err);
    if (strcmp(kind, "plan") == 0)
        return acp_plan(p, update, raw, out, err);
    if (strcmp(kind, "current_mode_update") == 0) {
        const char *mode = acp_str(update, "currentModeId");
        if (!mode)
            return 0;
        char *copy = strdup(mode);
        if (!copy)
            return acp_nomem(err);
        free(p->current_mode);
        p->current_mode = copy;
        return 0;
    }
    return 0; /* user_message_chunk, available_commands_update, and kinds to come */
}

/* ---- the agent's requests ------------------------------------------------------------ */

/* new (free()): our permission id of the agent's request id. */
static char *acp_permission_id(const adapter_acp_parser_t *p, const json_t *id)
{
    char num[32];
    const char *text = json_string_value(id);
    if (!text) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        text = num;
    }
    size_t a = strlen(p->id_prefix), b = strlen(text);
    char *s = malloc(a + b + 2);
    if (s) {
        memcpy(s, p->id_prefix, a);
        s[a] = '-';
        memcpy(s + a + 1, text, b + 1);
    }
    return s;
}

static int acp_request_permission(adapter_acp_parser_t *p, const json_t *id,
                                  const json_t *params, const json_t *raw, json_t *out,
                                  json_t *replies, struct err *err)
{
    const json_t *call = json_object_get(params, "toolCall");
    const json_t *options = json_object_get(params, "options");
    if (!json_is_array(options) || json_array_size(options) == 0)
        return acp_push_line(replies,
                             adapter_acp_error_line(id, ADAPTER_ACP_INVALID_PARAMS,
                                                    "a permission request needs options"),
                             err);
    const char *call_id = acp_str(call, "toolCallId");
    const json_t *known = call_id ? json_object_get(p->tools, call_id) : NULL;
    if (call_id && *call_id && !known && json_is_object(call)) {
        /* Kept for the tool_call item the call's first update makes. */
        json_t *copy = json_object();
        if (copy && acp_merge_tool(copy, call) != 0) {
            json_decref(copy);
            copy = NULL;
        }
        if (!copy || json_object_set_new(p->tools, call_id, copy) != 0 ||
            json_object_set_new(p->unannounced, call_id, json_true()) != 0)
            return acp_nomem(err);
    }
    const char *action = acp_str(call, "title");
    if (!action)
        action = acp_str(known, "title");
    if (!action)
        action = acp_str(call, "kind");
    if (!action)
        action = "tool";
    char *perm = acp_permission_id(p, id);
    if (!perm)
        return acp_nomem(err);
    if (json_object_get(p->pending, perm)) {
        free(perm);
        return acp_push_line(replies,
                             adapter_acp_error_line(id, ADAPTER_ACP_INVALID_PARAMS,
                                                    "request id already in use"),
                             err);
    }
    json_t *metadata = json_pack("{s:O,s:O}", "toolCall", call ? call : json_null(), "options",
                                 options);
    int rc = json_object_set_new(p->pending, perm,
                                 json_pack("{s:O,s:O,s:s}", "id", id, "options", options,
                                           "action", action));
    json_t *c = metadata && rc == 0
                    ? event_conversion("permission.requested",
                                       event_permission_data(perm, action, "requested",
                                                             json_incref(metadata)))
                    : NULL;
    json_decref(metadata);
    free(perm);
    return acp_push(out, event_with_raw(c, json_deep_copy(raw)), err);
}

static int acp_agent_request(adapter_acp_parser_t *p, const json_t *v, const char *method,
                             json_t *out, json_t *replies, json_t *requests, struct err *err)
{
    const json_t *id = json_object_get(v, "id");
    const json_t *params = json_object_get(v, "params");
    if (strcmp(method, "session/request_permission") == 0)
        return acp_request_permission(p, id, params, v, out, replies, err);
    if (strcmp(method, "fs/read_text_file") == 0 || strcmp(method, "fs/write_text_file") == 0) {
        const char *sid = acp_str(params, "sessionId");
        if (!json_is_object(params) || !acp_str(params, "path") ||
            (method[3] == 'w' && !acp_str(params, "content")))
            return acp_push_line(replies,
                                 adapter_acp_error_line(id, ADAPTER_ACP_INVALID_PARAMS,
                                                        "invalid params"),
                                 err);
        if (!p->acp_session || !sid || strcmp(sid, p->acp_session) != 0)
            return acp_push_line(replies,
                                 adapter_acp_error_line(id, ADAPTER_ACP_INVALID_PARAMS,
                                                        "unknown session"),
                                 err);
        return acp_push(requests, json_pack("{s:O,s:s,s:O}", "id", id, "method", method,
                                            "params", params),
                        err);
    }
    if (strncmp(method, "terminal/", 9) == 0)
        return acp_push_line(replies,
                             adapter_acp_error_line(id, ADAPTER_ACP_METHOD_NOT_FOUND,
                                                    "terminals are not offered by this client"),
                             err);
    return acp_push_line(replies,
                         adapter_acp_error_line(id, ADAPTER_ACP_METHOD_NOT_FOUND,
                                                "Method not found"),
                         err);
}

/* ---- responses to our requests ---------------------------------------------------------- */

/* new: the error event of a failed request `what`. */
static json_t *acp_error_event(const char *what, const json_t *error)
{
    const char *message = acp_str(error, "message");
    char text[512];
    snprintf(text, sizeof text, "%s failed: %s", what, message ? message : "error");
    return event_conversion("error", event_error_data(text, "acp", json_deep_copy(error)));
}

/* The handshake failed: every waiting message fails now. */
static int acp_fail_setup(adapter_acp_parser_t *p, const char *what, const json_t *error,
                          json_t *out, struct err *err)
{
    p->phase = ACP_FAILED;
    int rc = adapter_acp_close_turns(p, out, err);
    return rc ? rc : acp_push(out, acp_error_event(what, error), err);
}

static int acp_set_modes(adapter_acp_parser_t *p, const json_t *result, struct err *err)
{
    const json_t *modes = json_object_get(result, "modes");
    const json_t *available = json_object_get(modes, "availableModes");
    const char *current = acp_str(modes, "currentModeId");
    if (current) {
        char *copy = strdup(current);
        if (!copy)
            return acp_nomem(err);
        free(p->current_mode);
        p->current_mode = copy;
    }
    if (!json_is_array(available))
        return 0;
    json_t *list = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(available, i, m) {
        const char *id = acp_str(m, "id");
        const char *name = acp_str(m, "name");
        const char *description = acp_str(m, "description");
        if (!id)
            continue;
        if (!list || json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "id", id, "name",
                                                           name ? name : id, "description",
                                                           description ? description : "")) !=
                         0) {
            json_decref(list);
            return acp_nomem(err);
        }
    }
    json_decref(p->modes);
    p->modes = list;
    return 0;
}

/* Says that the agent could not load the session it had: a new one took
 * its place, with the earlier conversation as context when there is one. */
static int acp_resumed_anew(adapter_acp_parser_t *p, json_t *out, struct err *err)
{
    const char *how = p->context ? "the earlier conversation is offered as context"
                                 : "the earlier conversation is not in its context";
    int n = snprintf(NULL, 0, "the agent could not load session %s; new session %s: %s",
                     p->resume_id, p->acp_session, how);
    char *detail = n >= 0 ? malloc((size_t)n + 1) : NULL;
    char *native = detail ? acp_id(p->session_id, "_acp_resume_", ++p->counter) : NULL;
    if (native)
        snprintf(detail, (size_t)n + 1, "the agent could not load session %s; new session %s: %s",
                 p->resume_id, p->acp_session, how);
    json_t *c = native ? event_synthetic(event_conversion(
                             "item.completed",
                             event_item_data(event_item("status", NULL, "completed", native,
                                                        event_content(event_part_status(
                                                            "session.resumed", detail))))))
                       : NULL;
    free(native);
    free(detail);
    return acp_push(out, c, err);
}

static int acp_response(adapter_acp_parser_t *p, const json_t *v, json_t *out, json_t *replies,
                        struct err *err)
{
    const json_t *idv = json_object_get(v, "id");
    const json_t *error = json_object_get(v, "error");
    const json_t *result = json_object_get(v, "result");
    if (!json_is_integer(idv))
        return 0; /* not one of ours: ours are numbers */
    long long id = json_integer_value(idv);
    if (id == p->init_id && p->phase == ACP_INITIALIZING) {
        p->init_id = 0;
        if (error)
            return acp_fail_setup(p, "initialize", error, out, err);
        const json_t *caps = json_object_get(result, "agentCapabilities");
        p->can_load = json_is_true(json_object_get(caps, "loadSession"));
        p->phase = ACP_OPENING;
        return acp_push_line(replies, acp_open_line(p), err);
    }
    if (p->open_id && id == p->open_id && p->phase == ACP_OPENING) {
        p->open_id = 0;
        int was_loading = p->loading;
        p->loading = 0;
        if (error && was_loading) {
            /* The agent no longer has it: a new session, the history as
             * context (if the caller gave it). */
            p->can_load = 0;
            return acp_push_line(replies, acp_open_line(p), err);
        }
        if (error)
            return acp_fail_setup(p, "session/new", error, out, err);
        const char *sid = was_loading ? p->resume_id : acp_str(result, "sessionId");
        if (!sid || !*sid) {
            json_t *why = json_pack("{s:s}", "message", "no sessionId in the result");
            int rc = why ? acp_fail_setup(p, "session/new", why, out, err) : acp_nomem(err);
            json_decref(why);
            return rc;
        }
        char *copy = strdup(sid);
        if (!copy)
            return acp_nomem(err);
        free(p->acp_session);
        p->acp_session = copy;
        if (was_loading) {
            free(p->context); /* the agent has the history itself */
            p->context = NULL;
        }
        int rc = acp_set_modes(p, result, err);
        if (rc == 0 && p->resume_id && !was_loading)
            rc = acp_resumed_anew(p, out, err);
        if (rc == 0 && p->agent_mode && strcmp(p->agent_mode, "build") != 0 &&
            (!p->current_mode || strcmp(p->current_mode, p->agent_mode) != 0))
            rc = acp_push_line(replies,
                               acp_request(p, "session/set_mode",
                                           json_pack("{s:s,s:s}", "sessionId", p->acp_session,
                                                     "modeId", p->agent_mode),
                                           NULL),
                               err);
        if (rc == 0 && was_loading && p->sync_after_load) {
            /* Still replaying: the prompts wait for the sync's answer. */
            p->loading = 1;
            char *sync = acp_request(p, ADAPTER_ACP_SYNC_METHOD, json_object(), &p->sync_id);
            return acp_push_line(replies, sync, err);
        }
        p->phase = ACP_READY;
        return rc ? rc : acp_next_prompt(p, replies, err);
    }
    if (p->sync_id && id == p->sync_id && p->phase == ACP_OPENING) {
        /* Its error ("method not found") ends the replay as well as a result. */
        p->sync_id = 0;
        p->loading = 0;
        p->phase = ACP_READY;
        return acp_next_prompt(p, replies, err);
    }
    if (id == p->prompt_id && p->prompt_running) {
        const char *stop = acp_str(result, "stopReason");
        int failed = error || (stop && strcmp(stop, "cancelled") == 0);
        int rc = acp_complete_turn(p, failed ? "failed" : "completed", out, err);
        if (rc == 0 && error)
            rc = acp_push(out, event_with_raw(acp_error_event("session/prompt", error),
                                              json_deep_copy(v)),
                          err);
        return rc ? rc : acp_next_prompt(p, replies, err);
    }
    if (error) /* session/set_mode and the like: say it, go on */
        return acp_push(out, event_with_raw(acp_error_event("request", error),
                                            json_deep_copy(v)),
                        err);
    return 0;
}

/* ---- one line ------------------------------------------------------------------------------ */

static int acp_dispatch(adapter_acp_parser_t *p, const json_t *v, json_t *out, json_t *replies,
                        json_t *requests, struct err *err)
{
    if (!json_is_object(v))
        return acp_push(out, acp_unparsed("not a JSON-RPC message", json_deep_copy(v)), err);
    const char *method = acp_str(v, "method");
    const json_t *id = json_object_get(v, "id");
    int has_id = id && (json_is_integer(id) || json_is_string(id));
    if (method && has_id)
        return acp_agent_request(p, v, method, out, replies, requests, err);
    if (method && !id) {
        if (strcmp(method, "session/update") == 0)
            return acp_update(p, json_object_get(v, "params"), v, out, err);
        return 0; /* notifications we have no use for */
    }
    if (!method && id && (json_object_get(v, "result") || json_object_get(v, "error")))
        return acp_response(p, v, out, replies, err);
    return acp_push(out, acp_unparsed("not a JSON-RPC message", json_deep_copy(v)), err);
}

int adapter_acp_parse_line(adapter_acp_parser_t *p, const char *line, size_t len, int cut,
                           json_t *conversions, json_t *replies, json_t *requests,
                           struct err *err)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    while (len && (line[0] == ' ' || line[0] == '\t'))
        line++, len--;
    if (!len && !cut)
        return 0;
    size_t first = json_array_size(conversions);
    int rc;
    if (memchr(line, '\0', len)) {
        /* jansson would take it, with NUL bytes inside strings that readers
         * of the raw payload refuse: no raw payload then. */
        rc = acp_push(conversions, acp_unparsed("NUL byte in the line", NULL), err);
    } else if (cut) {
        rc = acp_push(conversions,
                      acp_unparsed("line too long", json_stringn(line, len > 1024 ? 1024 : len)),
                      err);
    } else {
        json_error_t jerr;
        json_t *v = json_loadb(line, len, 0, &jerr);
        if (!v)
            rc = event_json_load_nomem(&jerr, line, len)
                     ? acp_nomem(err)
                     : acp_push(conversions, acp_unparsed(jerr.text, json_stringn(line, len)),
                                err);
        else
            rc = acp_dispatch(p, v, conversions, replies, requests, err);
        json_decref(v);
    }
    for (size_t i = first; p->acp_session && i < json_array_size(conversions); i++) {
        json_t *c = json_array_get(conversions, i);
        if (!json_object_get(c, "native_session_id") &&
            json_object_set_new(c, "native_session_id", json_string(p->acp_session)) != 0)
            return acp_nomem(err);
    }
    return rc;
}

/* ---- ending ---------------------------------------------------------------------------------- */

/* The pending permissions, withdrawn (permission.resolved denied). */
static int acp_withdraw(adapter_acp_parser_t *p, json_t *out, struct err *err)
{
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(p->pending, key, v) {
        if (rc == 0)
            rc = acp_push(out, event_synthetic(event_conversion(
                                   "permission.resolved",
                                   event_permission_data(key, acp_str(v, "action"), "denied",
                                                         NULL))),
                          err);
    }
    json_object_clear(p->pending);
    return rc;
}

int adapter_acp_close_turns(adapter_acp_parser_t *p, json_t *conversions, struct err *err)
{
    int rc = 0;
    unsigned long long waiting = p->open_turns - (p->prompt_running ? 1 : 0);
    if (p->prompt_running)
        rc = acp_complete_turn(p, "failed", conversions, err);
    for (unsigned long long i = 0; rc == 0 && i < waiting; i++)
        rc = acp_push(conversions,
                      event_conversion("item.completed",
                                       event_item_data(event_item("message", "assistant",
                                                                  "failed", NULL, json_array()))),
                      err);
    p->open_turns = 0;
    json_array_clear(p->queue);
    json_object_clear(p->tools);
    json_object_clear(p->unannounced);
    return rc ? rc : acp_withdraw(p, conversions, err);
}

/* The option of `kind`, else of `fallback`; NULL when neither is offered. */
static const char *acp_option(const json_t *options, const char *kind, const char *fallback)
{
    for (int pass = 0; pass < 2; pass++) {
        size_t i;
        json_t *o;
        json_array_foreach(options, i, o) {
            const char *k = acp_str(o, "kind");
            if (k && strcmp(k, pass ? fallback : kind) == 0 && acp_str(o, "optionId"))
                return acp_str(o, "optionId");
        }
    }
    return NULL;
}

int adapter_acp_permission_line(adapter_acp_parser_t *p, const char *permission_id,
                                const char *reply, char **line_out, struct err *err)
{
    json_t *req = json_object_get(p->pending, permission_id);
    if (!req)
        return err_set_subject(err, ERR_NOT_FOUND, permission_id,
                               "no pending ACP permission request %s", permission_id);
    const json_t *options = json_object_get(req, "options");
    const char *option;
    if (strcmp(reply, "once") == 0)
        option = acp_option(options, "allow_once", "allow_always");
    else if (strcmp(reply, "always") == 0)
        option = acp_option(options, "allow_always", "allow_once");
    else if (strcmp(reply, "reject") == 0)
        option = acp_option(options, "reject_once", "reject_always");
    else
        return err_set(err, ERR_INVALID, "invalid permission reply: %s", reply);
    json_t *outcome = option ? json_pack("{s:{s:s,s:s}}", "outcome", "outcome", "selected",
                                         "optionId", option)
                             : json_pack("{s:{s:s}}", "outcome", "outcome", "cancelled");
    char *line = adapter_acp_result_line(json_object_get(req, "id"), outcome);
    if (!line)
        return err_set(err, ERR_NOMEM, "out of memory");
    json_object_del(p->pending, permission_id);
    *line_out = line;
    return 0;
}

char *adapter_acp_cancel_line(adapter_acp_parser_t *p)
{
    if (!p->prompt_running || !p->acp_session)
        return strdup("");
    /* Pending permissions answered "cancelled" first, then the notification. */
    size_t total = 1;
    json_t *lines = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(p->pending, key, v) {
        char *l = adapter_acp_result_line(json_object_get(v, "id"),
                                          json_pack("{s:{s:s}}", "outcome", "outcome",
                                                    "cancelled"));
        json_t *s = l ? json_string(l) : NULL;
        free(l);
        if (!lines || !s || json_array_append_new(lines, s) != 0) {
            json_decref(lines);
            return NULL;
        }
    }
    char *cancel = acp_line(json_pack("{s:s,s:s,s:{s:s}}", "jsonrpc", "2.0", "method",
                                      "session/cancel", "params", "sessionId", p->acp_session));
    if (!lines || !cancel || json_array_append_new(lines, json_string(cancel)) != 0) {
        free(cancel);
        json_decref(lines);
        return NULL;
    }
    free(cancel);
    size_t i;
    json_array_foreach(lines, i, v)
        total += json_string_length(v);
    char *out = malloc(total), *w = out;
    if (out) {
        json_array_foreach(lines, i, v) {
            memcpy(w, json_string_value(v), json_string_length(v));
            w += json_string_length(v);
        }
        *w = '\0';
    }
    json_decref(lines);
    return out;
}

/* ---- MCP servers and the user's message ----------------------------------------------------- */

/* new: [{name, value}] of a {name: value} map of strings (borrowed). */
static json_t *acp_pairs(const json_t *map)
{
    json_t *list = json_array();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)map, key, v) {
        if (!json_is_string(v))
            continue;
        if (!list || json_array_append_new(list, json_pack("{s:s,s:O}", "name", key, "value",
                                                           v)) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

/* new: ACP's form of one server, or json_null() to leave it out. */
static json_t *acp_mcp_server(const char *name, const json_t *cfg)
{
    if (!json_is_object(cfg) || json_is_false(json_object_get(cfg, "enabled")))
        return json_null();
    const char *type = acp_str(cfg, "type");
    if (type && strcmp(type, "remote") == 0) {
        const char *url = acp_str(cfg, "url");
        const char *transport = acp_str(cfg, "transport");
        if (!url)
            return json_null();
        return json_pack("{s:s,s:s,s:s,s:o}", "type",
                         transport && strcmp(transport, "sse") == 0 ? "sse" : "http", "name",
                         name, "url", url, "headers", acp_pairs(json_object_get(cfg, "headers")));
    }
    /* local: command is a string, or an array whose head is the program. */
    const json_t *command = json_object_get(cfg, "command");
    const json_t *args = json_object_get(cfg, "args");
    json_t *argv = json_array();
    const char *program = json_string_value(command);
    size_t i;
    json_t *a;
    if (json_is_array(command)) {
        program = json_string_value(json_array_get(command, 0));
        json_array_foreach(command, i, a)
            if (i > 0 && json_is_string(a) && argv && json_array_append(argv, a) != 0) {
                json_decref(argv);
                return NULL;
            }
    }
    json_array_foreach(args, i, a)
        if (json_is_string(a) && argv && json_array_append(argv, a) != 0) {
            json_decref(argv);
            return NULL;
        }
    if (!program || !argv) {
        int nomem = program && !argv;
        json_decref(argv);
        return nomem ? NULL : json_null();
    }
    return json_pack("{s:s,s:s,s:o,s:o}", "name", name, "command", program, "args", argv,
                     "env", acp_pairs(json_object_get(cfg, "env")));
}

json_t *adapter_acp_mcp_servers(const json_t *mcp)
{
    json_t *list = json_array();
    const char *name;
    json_t *cfg;
    json_object_foreach((json_t *)mcp, name, cfg) {
        json_t *s = acp_mcp_server(name, cfg);
        if (!s || !list) {
            json_decref(list);
            return NULL;
        }
        if (json_is_null(s))
            continue;
        if (json_array_append_new(list, s) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

json_t *adapter_acp_user_message(const char *native_id, const char *text)
{
    json_t *c = event_conversion("item.completed",
                                 event_item_data(event_item("message", "user", "completed",
                                                            native_id,
                                                            event_content(event_part_text(text)))));
    json_t *list = c ? json_array() : NULL;
    if (!list || json_array_append_new(list, c) != 0) {
        json_decref(list);
        return NULL;
    }
    return list;
}
