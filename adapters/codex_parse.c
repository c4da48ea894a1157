/* The pure part of the Codex adapter (see codex.h): one app-server stdout
 * line in, its classification and conversions out; the JSON-RPC answers to
 * approvals.  No processes, no libuv, no locks, no clock: the unit tests
 * and tests/fuzz/fuzz_adapter_codex.c call it directly. */
#include "adapters/codex.h"

#include "base/err.h"
#include "events/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *codex_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int codex_str_is(const json_t *obj, const char *key, const char *want)
{
    const char *v = codex_str(obj, key);
    return v && strcmp(v, want) == 0;
}

static int codex_push(json_t *list, json_t *c, struct err *err)
{
    if (!c || json_array_append_new(list, c) != 0)
        return err_set(err, ERR_NOMEM, "out of memory parsing a codex line");
    return 0;
}

static json_t *codex_unparsed(const char *error, json_t *raw)
{
    json_t *c = event_synthetic(
        event_conversion("agent.unparsed", event_unparsed_data(error, "codex", NULL)));
    return raw ? event_with_raw(c, raw) : c;
}

/* new: compact JSON text of `v` (any value), or NULL. */
static char *codex_dump(const json_t *v)
{
    return json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
}

static json_t *codex_status_item(const char *native_id, const char *label, const char *detail,
                                 const char *status)
{
    return event_item("status", "system", status, native_id,
                      event_content(event_part_status(label, detail)));
}

/* new: the universal item of a Codex ThreadItem. */
static json_t *codex_item(const json_t *it, const char *status)
{
    const char *type = codex_str(it, "type");
    const char *id = codex_str(it, "id");
    json_t *parts = json_array();
    if (!type || !parts) {
        json_decref(parts);
        return parts ? event_item("unknown", NULL, status, id,
                                  event_content(event_part_json(it ? json_deep_copy(it)
                                                               : json_null())))
                     : NULL;
    }
    if (strcmp(type, "userMessage") == 0) {
        size_t i;
        const json_t *in;
        json_array_foreach(json_object_get(it, "content"), i, in) {
            if (codex_str_is(in, "type", "text") && codex_str(in, "text"))
                parts = event_content_add(parts, event_part_text(codex_str(in, "text")));
            else if (codex_str(in, "url") || codex_str(in, "image_url"))
                parts = event_content_add(parts, event_part_image(codex_str(in, "url")
                                                              ? codex_str(in, "url")
                                                              : codex_str(in, "image_url"),
                                                          NULL));
            else if (codex_str(in, "path"))
                parts = event_content_add(parts, event_part_image(codex_str(in, "path"), NULL));
            else
                parts = event_content_add(parts, event_part_json(json_deep_copy(in)));
        }
        return event_item("message", "user", status, id, parts);
    }
    if (strcmp(type, "agentMessage") == 0) {
        const char *text = codex_str(it, "text");
        parts = event_content_add(parts, event_part_text(text ? text : ""));
        return event_item("message", "assistant", status, id, parts);
    }
    if (strcmp(type, "reasoning") == 0) {
        size_t i;
        const json_t *line;
        json_array_foreach(json_object_get(it, "content"), i, line)
            if (json_is_string(line))
                parts = event_content_add(
                    parts, event_part_reasoning(json_string_value(line), "private"));
        json_array_foreach(json_object_get(it, "summary"), i, line)
            if (json_is_string(line))
                parts = event_content_add(
                    parts, event_part_reasoning(json_string_value(line), "public"));
        return event_item("message", "assistant", status, id, parts);
    }
    if (strcmp(type, "commandExecution") == 0) {
        const char *output = codex_str(it, "aggregatedOutput");
        if (output)
            parts = event_content_add(parts, event_part_tool_result(id ? id : "", output));
        json_t *summary = json_pack("{s:O,s:O,s:O,s:O}", "command",
                                    json_object_get(it, "command") ? json_object_get(it, "command")
                                                                   : json_null(),
                                    "cwd",
                                    json_object_get(it, "cwd") ? json_object_get(it, "cwd")
                                                               : json_null(),
                                    "exitCode",
                                    json_object_get(it, "exitCode")
                                        ? json_object_get(it, "exitCode")
                                        : json_null(),
                                    "status",
                                    json_object_get(it, "status") ? json_object_get(it, "status")
                                                                  : json_null());
        parts = event_content_add(parts, event_part_json(summary));
        return event_item("tool_result", "tool", status, id, parts);
    }
    if (strcmp(type, "fileChange") == 0) {
        json_t *summary = json_pack("{s:O,s:O}", "changes",
                                    json_object_get(it, "changes") ? json_object_get(it, "changes")
                                                                   : json_null(),
                                    "status",
                                    json_object_get(it, "status") ? json_object_get(it, "status")
                                                                  : json_null());
        parts = event_content_add(parts, event_part_json(summary));
        return event_item("tool_result", "tool", status, id, parts);
    }
    if (strcmp(type, "mcpToolCall") == 0) {
        const char *st = codex_str(it, "status");
        int finished = st && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0);
        if (finished) {
            char *out = strcmp(st, "completed") == 0
                            ? codex_dump(json_object_get(it, "result"))
                            : strdup(codex_str(json_object_get(it, "error"), "message")
                                         ? codex_str(json_object_get(it, "error"), "message")
                                         : "");
            parts = event_content_add(parts,
                                      out ? event_part_tool_result(id ? id : "", out) : NULL);
            free(out);
            return event_item("tool_result", "tool", status, id, parts);
        }
        char name[256];
        snprintf(name, sizeof name, "%s.%s", codex_str(it, "server") ? codex_str(it, "server") : "",
                 codex_str(it, "tool") ? codex_str(it, "tool") : "");
        char *args = codex_dump(json_object_get(it, "arguments"));
        parts = event_content_add(parts,
                                  args ? event_part_tool_call(name, args, id ? id : "") : NULL);
        free(args);
        return event_item("tool_call", "assistant", status, id, parts);
    }
    if (strcmp(type, "webSearch") == 0) {
        const char *q = codex_str(it, "query");
        parts = event_content_add(parts,
                                  event_part_tool_call("web_search", q ? q : "", id ? id : ""));
        return event_item("tool_call", "assistant", status, id, parts);
    }
    if (strcmp(type, "imageView") == 0) {
        const char *path = codex_str(it, "path");
        parts = event_content_add(parts, event_part_image(path ? path : "", NULL));
        return event_item("message", "assistant", status, id, parts);
    }
    if (strcmp(type, "enteredReviewMode") == 0 || strcmp(type, "exitedReviewMode") == 0) {
        json_decref(parts);
        return codex_status_item(id, strcmp(type, "enteredReviewMode") == 0 ? "review.entered"
                                                                             : "review.exited",
                                 codex_str(it, "review"), status);
    }
    parts = event_content_add(parts, event_part_json(json_deep_copy(it)));
    return event_item("unknown", NULL, status, id, parts);
}

/* The status of a completed item: failed for Codex's failed or declined. */
static const char *codex_done_status(const json_t *it)
{
    const char *st = codex_str(it, "status");
    return st && (strcmp(st, "failed") == 0 || strcmp(st, "declined") == 0) ? "failed"
                                                                           : "completed";
}

static json_t *codex_status_conv(const char *label, const json_t *detail_of)
{
    char *detail = detail_of ? codex_dump(detail_of) : NULL;
    json_t *c = event_conversion("item.completed",
                                 event_item_data(codex_status_item(NULL, label, detail,
                                                                   "completed")));
    free(detail);
    return c;
}

/* Notifications that need nothing journaled. */
static int codex_is_quiet(const char *method)
{
    static const char *const quiet[] = {
        "thread/status/changed", "serverRequest/resolved", "account/rateLimits/updated",
        "account/updated", "configWarning", "remoteControl/status/changed", "warning",
        "deprecationNotice", "thread/goal/cleared", "thread/goal/updated",
        "item/reasoning/summaryPartAdded", "mcpServer/startupStatus/updated",
        "sessionConfigured", "authStatusChange", "loginChatGptComplete",
    };
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
        if (strcmp(method, quiet[i]) == 0)
            return 1;
    return 0;
}

static int codex_notification(struct adapter_codex_line *out, const char *method,
                              const json_t *params, struct err *err)
{
    json_t *list = out->conversions;
    json_t *raw = out->message;
    const char *delta_methods[] = { "item/agentMessage/delta", "item/reasoning/textDelta",
                                    "item/reasoning/summaryTextDelta",
                                    "item/commandExecution/outputDelta",
                                    "item/fileChange/outputDelta" };
    if (strcmp(method, "item/started") == 0 || strcmp(method, "item/completed") == 0) {
        const json_t *it = json_object_get(params, "item");
        int done = method[5] == 'c';
        json_t *item = codex_item(it, done ? codex_done_status(it) : "in_progress");
        json_t *c = event_conversion(done ? "item.completed" : "item.started",
                                     event_item_data(item));
        return codex_push(list, event_with_raw(c, json_deep_copy(raw)), err);
    }
    for (size_t i = 0; i < sizeof delta_methods / sizeof delta_methods[0]; i++) {
        if (strcmp(method, delta_methods[i]) != 0)
            continue;
        const char *delta = codex_str(params, "delta");
        const char *item_id = codex_str(params, "itemId");
        if (!delta || !*delta)
            return 0;
        json_t *c = event_conversion("item.delta", event_delta_data("", item_id, delta));
        return codex_push(list, event_with_raw(c, json_deep_copy(raw)), err);
    }
    if (strcmp(method, "item/commandExecution/terminalInteraction") == 0) {
        const char *stdin_text = codex_str(params, "stdin");
        if (!stdin_text || !*stdin_text)
            return 0;
        json_t *c = event_conversion("item.delta",
                                     event_delta_data("", codex_str(params, "itemId"), stdin_text));
        return codex_push(list, event_with_raw(c, json_deep_copy(raw)), err);
    }
    if (strcmp(method, "thread/started") == 0) {
        json_t *c = event_conversion("session.started",
                                     event_session_started_data(json_deep_copy(
                                         json_object_get(params, "thread"))));
        return codex_push(list, event_with_raw(c, json_deep_copy(raw)), err);
    }
    if (strcmp(method, "turn/started") == 0 || strcmp(method, "turn/completed") == 0) {
        const json_t *turn = json_object_get(params, "turn");
        int done = method[5] == 'c';
        if (!done && codex_str(turn, "id"))
            snprintf(out->turn_id, sizeof out->turn_id, "%s", codex_str(turn, "id"));
        out->turn_started = !done;
        out->turn_done = done;
        return codex_push(list,
                          event_with_raw(codex_status_conv(done ? "turn.completed"
                                                                : "turn.started",
                                                           turn),
                                         json_deep_copy(raw)),
                          err);
    }
    static const struct {
        const char *method;
        const char *label;
    } statuses[] = {
        { "thread/tokenUsage/updated", "thread.token_usage.updated" },
        { "turn/diff/updated", "turn.diff.updated" },
        { "turn/plan/updated", "turn.plan.updated" },
        { "thread/compacted", "thread.compacted" },
        { "item/mcpToolCall/progress", "mcp.progress" },
    };
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (strcmp(method, statuses[i].method) == 0)
            return codex_push(list,
                              event_with_raw(codex_status_conv(statuses[i].label, params),
                                             json_deep_copy(raw)),
                              err);
    if (strcmp(method, "error") == 0) {
        const json_t *e = json_object_get(params, "error");
        const char *message = codex_str(e, "message");
        const char *code = json_is_string(json_object_get(e, "codexErrorInfo"))
                               ? codex_str(e, "codexErrorInfo")
                               : NULL;
        json_t *c = event_conversion("error",
                                     event_error_data(message ? message : "codex error", code,
                                                      json_deep_copy(params)));
        return codex_push(list, event_with_raw(c, json_deep_copy(raw)), err);
    }
    if (codex_is_quiet(method))
        return 0;
    char message[160];
    snprintf(message, sizeof message, "unsupported codex notification: %.100s", method);
    return codex_push(list, codex_unparsed(message, json_deep_copy(raw)), err);
}

static int codex_request(struct adapter_codex_line *out, const char *method,
                         const json_t *params, const char *prefix, struct err *err)
{
    int is_command = strcmp(method, "item/commandExecution/requestApproval") == 0 ||
                     strcmp(method, "execCommandApproval") == 0;
    int is_file = strcmp(method, "item/fileChange/requestApproval") == 0 ||
                  strcmp(method, "applyPatchApproval") == 0;
    if (!is_command && !is_file) {
        char message[160];
        snprintf(message, sizeof message, "unsupported codex request: %.100s", method);
        return codex_push(out->conversions, codex_unparsed(message, json_deep_copy(out->message)),
                          err);
    }
    out->is_approval = 1;
    char permission_id[128];
    snprintf(permission_id, sizeof permission_id, "%s-%lld", prefix, out->id);
    /* Keys sorted, as the reference's JSON maps print them. */
    json_t *md = json_object();
    static const char *const copy_command[] = { "command", "cwd", "itemId", "reason",
                                                "threadId", "turnId" };
    static const char *const copy_file[] = { "grantRoot", "itemId", "reason", "threadId",
                                             "turnId" };
    int ok = md && json_object_set_new(md, "codexRequestId", json_integer(out->id)) == 0 &&
             json_object_set_new(md, "codexRequestKind",
                                 json_string(is_command ? "commandExecution" : "fileChange")) == 0;
    const char *const *keys = is_command ? copy_command : copy_file;
    size_t n = is_command ? sizeof copy_command / sizeof copy_command[0]
                          : sizeof copy_file / sizeof copy_file[0];
    for (size_t i = 0; ok && i < n; i++) {
        const json_t *v = json_object_get(params, keys[i]);
        if (v && !json_is_null(v))
            ok = json_object_set(md, keys[i], (json_t *)v) == 0;
    }
    if (!ok) {
        json_decref(md);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    json_t *c = event_conversion("permission.requested",
                                 event_permission_data(permission_id,
                                                       is_command ? "commandExecution"
                                                                  : "fileChange",
                                                       "requested", md));
    return codex_push(out->conversions, event_with_raw(c, json_deep_copy(out->message)), err);
}

void adapter_codex_line_clear(struct adapter_codex_line *l)
{
    json_decref(l->message);
    json_decref(l->conversions);
    memset(l, 0, sizeof *l);
}

/* The thread a notification or request is about. */
static void codex_find_thread(const json_t *params, char *out, size_t size)
{
    const char *t = codex_str(params, "threadId");
    if (!t)
        t = codex_str(json_object_get(params, "thread"), "id");
    if (!t)
        t = codex_str(params, "conversationId");
    snprintf(out, size, "%s", t ? t : "");
}

int adapter_codex_parse_line(const char *line, size_t len, int cut,
                             const char *permission_prefix, struct adapter_codex_line *out,
                             struct err *err)
{
    memset(out, 0, sizeof *out);
    out->conversions = json_array();
    if (!out->conversions)
        return err_set(err, ERR_NOMEM, "out of memory");
    out->kind = ADAPTER_CODEX_INVALID;
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (!len && !cut)
        return 0;
    int rc;
    if (cut) {
        rc = codex_push(out->conversions, codex_unparsed("line too long", NULL), err);
        goto done;
    }
    json_error_t jerr;
    out->message = json_loadb(line, len, 0, &jerr);
    if (!json_is_object(out->message)) {
        json_t *raw = json_stringn(line, len);
        rc = codex_push(out->conversions,
                        codex_unparsed(out->message ? "not a JSON-RPC object" : jerr.text,
                                       raw ? raw : json_string("(not UTF-8)")),
                        err);
        json_decref(out->message);
        out->message = NULL;
        goto done;
    }
    const json_t *id = json_object_get(out->message, "id");
    out->method = codex_str(out->message, "method");
    if (json_is_integer(id)) {
        out->id = (long long)json_integer_value(id);
        out->has_id = 1;
    } else if (json_is_string(id)) {
        char *end = NULL;
        out->id = strtoll(json_string_value(id), &end, 10);
        out->has_id = end && *end == '\0' && end != json_string_value(id);
    }
    const json_t *params = json_object_get(out->message, "params");
    if (!out->method) {
        if (!out->has_id) {
            rc = codex_push(out->conversions,
                            codex_unparsed("JSON-RPC message without method or id",
                                           json_deep_copy(out->message)),
                            err);
            goto done;
        }
        out->kind = ADAPTER_CODEX_RESPONSE;
        out->result = json_object_get(out->message, "result");
        out->error = json_object_get(out->message, "error");
        rc = 0;
        goto done;
    }
    codex_find_thread(params, out->thread_id, sizeof out->thread_id);
    if (json_object_get(out->message, "id")) {
        out->kind = ADAPTER_CODEX_REQUEST;
        rc = codex_request(out, out->method, params,
                           permission_prefix ? permission_prefix : "0", err);
    } else {
        out->kind = ADAPTER_CODEX_NOTIFICATION;
        rc = codex_notification(out, out->method, params, err);
    }
done:
    if (rc)
        adapter_codex_line_clear(out);
    return rc;
}

char *adapter_codex_decision_line(long long id, const char *reply)
{
    const char *decision = strcmp(reply, "once") == 0     ? "accept"
                           : strcmp(reply, "always") == 0 ? "acceptForSession"
                           : strcmp(reply, "reject") == 0 ? "decline"
                                                          : NULL;
    if (!decision)
        return NULL;
    json_t *v = json_pack("{s:I,s:{s:s}}", "id", (json_int_t)id, "result", "decision", decision);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
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

int adapter_codex_permission_id(const char *permission_id, char *prefix, size_t size,
                                long long *id, struct err *err)
{
    const char *dash = strrchr(permission_id, '-');
    char *end = NULL;
    if (!dash || dash == permission_id || (size_t)(dash - permission_id) >= size)
        return err_set(err, ERR_INVALID, "not a codex permission id: %s", permission_id);
    long long v = strtoll(dash + 1, &end, 10);
    if (!end || *end || end == dash + 1)
        return err_set(err, ERR_INVALID, "not a codex permission id: %s", permission_id);
    memcpy(prefix, permission_id, (size_t)(dash - permission_id));
    prefix[dash - permission_id] = '\0';
    *id = v;
    return 0;
}
