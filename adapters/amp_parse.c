/* The pure part of the Amp adapter (see amp.h): stdout lines to
 * conversions, the command line of a turn and its stdin line.  No I/O, no
 * locks, no clock: unit tests and the fuzzer call it directly. */
#include "adapters/amp.h"

#include "adapters/claude.h"
#include "base/err.h"
#include "events/event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct adapter_amp_parser {
    char *session_id;
    /* Claude Code's stream-json lines go through Claude's own parser; a new
     * one per turn, so a turn cut short leaves nothing behind. */
    adapter_claude_parser_t *claude;
    char *thread_id;
    int turn_open;
    unsigned long long counter; /* generated ids */
};

adapter_amp_parser_t *adapter_amp_parser_new(const char *session_id)
{
    adapter_amp_parser_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->session_id = strdup(session_id);
    p->claude = p->session_id ? adapter_claude_parser_new(session_id, 0) : NULL;
    if (!p->claude) {
        adapter_amp_parser_free(p);
        return NULL;
    }
    return p;
}

void adapter_amp_parser_free(adapter_amp_parser_t *p)
{
    if (!p)
        return;
    adapter_claude_parser_free(p->claude);
    free(p->thread_id);
    free(p->session_id);
    free(p);
}

int adapter_amp_turn_begin(adapter_amp_parser_t *p, struct err *err)
{
    adapter_claude_parser_t *fresh = adapter_claude_parser_new(p->session_id, 0);
    if (!fresh)
        return err_set(err, ERR_NOMEM, "out of memory");
    adapter_claude_parser_free(p->claude);
    p->claude = fresh;
    p->turn_open = 1;
    return 0;
}

int adapter_amp_turn_open(const adapter_amp_parser_t *p)
{
    return p->turn_open;
}

const char *adapter_amp_thread_id(const adapter_amp_parser_t *p)
{
    return p->thread_id;
}

int adapter_amp_is_thread_id(const char *id)
{
    if (!id || strncmp(id, "T-", 2) != 0 || !id[2] || strlen(id) > 100)
        return 0;
    for (const char *c = id + 2; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
              (*c >= 'A' && *c <= 'Z') || *c == '-'))
            return 0;
    return 1;
}

/* ---- small helpers ------------------------------------------------------- */

static const char *amp_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Appends `c` (stolen); a NULL `c` means a builder ran out of memory. */
static int amp_push(json_t *list, json_t *c, struct err *err)
{
    if (!c || json_array_append_new(list, c) != 0)
        return err_set(err, ERR_NOMEM, "out of memory parsing an amp line");
    return 0;
}

/* new: agent.unparsed carrying `raw` (stolen, may be NULL). */
static json_t *amp_unparsed(const char *error, json_t *raw)
{
    json_t *c = event_synthetic(
        event_conversion("agent.unparsed", event_unparsed_data(error, "amp", NULL)));
    return raw ? event_with_raw(c, raw) : c;
}

/* new (free()): `base` then `suffix`, whole: an id cut to a buffer could
 * split a character, or give two items one id.  NULL when memory ran out. */
static char *amp_join(const char *base, const char *suffix)
{
    size_t a = strlen(base), b = strlen(suffix);
    char *s = malloc(a + b + 1);
    if (s) {
        memcpy(s, base, a);
        memcpy(s + a, suffix, b + 1);
    }
    return s;
}

/* The assistant message the turn is waiting for is done. */
static int amp_complete_turn(adapter_amp_parser_t *p, const char *status, json_t *out,
                             struct err *err)
{
    if (!p->turn_open)
        return 0;
    p->turn_open = 0;
    char suffix[48];
    snprintf(suffix, sizeof suffix, "_amp_message_%llu", ++p->counter);
    char *native = amp_join(p->session_id, suffix);
    json_t *parts = native ? adapter_claude_turn_parts(p->claude) : NULL;
    json_t *c = parts ? event_conversion("item.completed",
                                         event_item_data(event_item("message", "assistant",
                                                                    status, native, parts)))
                      : NULL;
    free(native);
    return amp_push(out, c, err);
}

int adapter_amp_close_turn(adapter_amp_parser_t *p, json_t *out, struct err *err)
{
    return amp_complete_turn(p, "failed", out, err);
}

/* Learns the thread id from a line's session_id. */
static int amp_learn_thread(adapter_amp_parser_t *p, const json_t *line, struct err *err)
{
    const char *id = amp_str(line, "session_id");
    if (!adapter_amp_is_thread_id(id) || (p->thread_id && strcmp(p->thread_id, id) == 0))
        return 0;
    char *copy = strdup(id);
    if (!copy)
        return err_set(err, ERR_NOMEM, "out of memory");
    free(p->thread_id);
    p->thread_id = copy;
    return 0;
}

/* ---- the published StreamJSONMessage lines -------------------------------- */

static int amp_legacy_message(adapter_amp_parser_t *p, const json_t *line, json_t *out,
                              struct err *err)
{
    const char *text = amp_str(line, "content");
    json_t *content = json_array();
    if (content && text && *text && json_array_append_new(content, event_part_text(text)) != 0) {
        json_decref(content);
        content = NULL;
    }
    p->turn_open = 0;
    json_t *c = event_conversion("item.completed",
                                 event_item_data(event_item("message", "assistant", "completed",
                                                            amp_str(line, "id"), content)));
    return amp_push(out, c, err);
}

static int amp_legacy_tool_call(adapter_amp_parser_t *p, const json_t *line, json_t *out,
                                struct err *err)
{
    const json_t *call = json_object_get(line, "tool_call");
    const char *name = amp_str(call, "name");
    const char *id = amp_str(call, "id");
    char generated[64];
    if (!id) {
        snprintf(generated, sizeof generated, "amp_tool_%llu", ++p->counter);
        id = generated;
    }
    const json_t *arguments = json_object_get(call, "arguments");
    char *args = json_is_string(arguments) ? strdup(json_string_value(arguments))
                 : arguments ? json_dumps(arguments, JSON_COMPACT | JSON_ENCODE_ANY)
                             : strdup("{}");
    json_t *item = args ? event_item("tool_call", "assistant", "completed", id,
                                     event_content(event_part_tool_call(name ? name : "unknown",
                                                                       args, id)))
                        : NULL;
    free(args);
    return amp_push(out, event_conversion("item.completed", event_item_data(item)), err);
}

static int amp_legacy_tool_result(adapter_amp_parser_t *p, const json_t *line, json_t *out,
                                  struct err *err)
{
    const char *id = amp_str(line, "id");
    char generated[64];
    if (!id) {
        snprintf(generated, sizeof generated, "amp_tool_%llu", ++p->counter);
        id = generated;
    }
    char *native = amp_join(id, "_result");
    const char *output = amp_str(line, "content");
    json_t *item = native ? event_item("tool_result", "tool", "completed", native,
                                       event_content(event_part_tool_result(id, output ? output
                                                                                     : "")))
                          : NULL;
    free(native);
    return amp_push(out, event_conversion("item.completed", event_item_data(item)), err);
}

static int amp_legacy_error(const json_t *line, json_t *out, struct err *err)
{
    const char *message = amp_str(line, "error");
    json_t *c = event_conversion("error",
                                 event_error_data(message && *message ? message : "amp error",
                                                  "amp", json_deep_copy(line)));
    return amp_push(out, c, err);
}

/* ---- one line ------------------------------------------------------------- */

static int amp_is_claude_kind(const char *type)
{
    return strcmp(type, "system") == 0 || strcmp(type, "assistant") == 0 ||
           strcmp(type, "user") == 0 || strcmp(type, "result") == 0;
}

static int amp_dispatch(adapter_amp_parser_t *p, const json_t *v, const char *line, size_t len,
                        json_t *out, struct err *err)
{
    const char *type = json_is_object(v) ? amp_str(v, "type") : NULL;
    if (!type)
        return amp_push(out, amp_unparsed("line without a type", json_incref((json_t *)v)), err);
    if (amp_is_claude_kind(type)) {
        int rc = amp_learn_thread(p, v, err);
        json_t *replies = rc ? NULL : json_array();
        if (!rc && !replies)
            rc = err_set(err, ERR_NOMEM, "out of memory");
        /* Amp names a failed turn's reason in "error", where Claude has
         * "errors": give it to Claude's parser there. */
        char *patched = NULL;
        const json_t *reason = json_object_get(v, "error");
        if (!rc && strcmp(type, "result") == 0 && json_is_string(reason) &&
            !json_object_get(v, "errors")) {
            json_t *copy = json_copy((json_t *)v);
            if (!copy || json_object_set_new(copy, "errors", json_pack("[O]", reason)) != 0 ||
                !(patched = json_dumps(copy, JSON_COMPACT)))
                rc = err_set(err, ERR_NOMEM, "out of memory");
            json_decref(copy);
        }
        /* Claude answers none of these four kinds: replies stay empty. */
        size_t first = json_array_size(out);
        if (!rc)
            rc = adapter_claude_parse_line(p->claude, patched ? patched : line,
                                           patched ? strlen(patched) : len, 0, out, replies, err);
        /* The raw payload stays what Amp printed. */
        for (size_t i = first; patched && !rc && i < json_array_size(out); i++)
            if (json_object_get(json_array_get(out, i), "raw") &&
                json_object_set_new(json_array_get(out, i), "raw", json_deep_copy(v)) != 0)
                rc = err_set(err, ERR_NOMEM, "out of memory");
        free(patched);
        json_decref(replies);
        if (!rc && strcmp(type, "result") == 0)
            p->turn_open = 0;
        return rc;
    }
    json_t *raw_from = json_array(); /* the legacy conversions get the line as raw */
    if (!raw_from)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc;
    if (strcmp(type, "message") == 0)
        rc = amp_legacy_message(p, v, raw_from, err);
    else if (strcmp(type, "tool_call") == 0)
        rc = amp_legacy_tool_call(p, v, raw_from, err);
    else if (strcmp(type, "tool_result") == 0)
        rc = amp_legacy_tool_result(p, v, raw_from, err);
    else if (strcmp(type, "error") == 0)
        rc = amp_legacy_error(v, raw_from, err);
    else if (strcmp(type, "done") == 0)
        rc = amp_complete_turn(p, "completed", raw_from, err);
    else {
        char message[128];
        snprintf(message, sizeof message, "unsupported Amp event type: %.80s", type);
        rc = amp_push(raw_from, amp_unparsed(message, NULL), err);
    }
    size_t i;
    json_t *c;
    json_array_foreach(raw_from, i, c) {
        if (rc == 0)
            rc = amp_push(out, event_with_raw(json_incref(c), json_deep_copy(v)), err);
    }
    json_decref(raw_from);
    return rc;
}

int adapter_amp_parse_line(adapter_amp_parser_t *p, const char *line, size_t len, int cut,
                           json_t *conversions, struct err *err)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    while (len && (line[0] == ' ' || line[0] == '\t'))
        line++, len--;
    if (!len && !cut)
        return 0;
    size_t first = conversions ? json_array_size(conversions) : 0;
    int rc;
    if (memchr(line, '\0', len)) {
        /* Not JSON text (a control character outside an escape), though
         * jansson would take it, with NUL bytes inside keys and strings
         * that readers of the raw payload refuse.  No raw payload then. */
        rc = amp_push(conversions, amp_unparsed("NUL byte in the line", NULL), err);
    } else if (cut) {
        /* The raw text only if it is UTF-8: a cut may split a character. */
        rc = amp_push(conversions,
                      amp_unparsed("line too long", json_stringn(line, len > 1024 ? 1024 : len)),
                      err);
    } else {
        json_error_t jerr;
        json_t *v = json_loadb(line, len, 0, &jerr);
        if (!v)
            rc = amp_push(conversions, amp_unparsed(jerr.text, json_stringn(line, len)), err);
        else
            rc = amp_dispatch(p, v, line, len, conversions, err);
        json_decref(v);
    }
    /* The thread every conversion belongs to, once Amp has named it. */
    for (size_t i = first; p->thread_id && i < json_array_size(conversions); i++) {
        json_t *c = json_array_get(conversions, i);
        if (!json_object_get(c, "native_session_id") &&
            json_object_set_new(c, "native_session_id", json_string(p->thread_id)) != 0)
            return err_set(err, ERR_NOMEM, "out of memory");
    }
    return rc;
}

/* ---- the command line and stdin -------------------------------------------- */

void adapter_amp_args(const char *binary, const char *thread_id, int bypass,
                      const char *args[ADAPTER_AMP_MAX_ARGS])
{
    size_t n = 0;
    args[n++] = binary;
    if (adapter_amp_is_thread_id(thread_id)) {
        args[n++] = "threads";
        args[n++] = "continue";
        args[n++] = thread_id;
    }
    args[n++] = "--execute";
    args[n++] = "--stream-json";
    args[n++] = "--stream-json-input";
    args[n++] = "--stream-json-thinking";
    if (bypass)
        args[n++] = "--dangerously-allow-all";
    args[n] = NULL;
}

char *adapter_amp_input_line(const char *text)
{
    json_t *v = json_pack("{s:s,s:{s:s,s:[{s:s,s:s}]}}", "type", "user", "message", "role",
                          "user", "content", "type", "text", "text", text);
    char *dumped = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    size_t n = dumped ? strlen(dumped) : 0;
    char *line = dumped ? malloc(n + 2) : NULL;
    if (line) {
        memcpy(line, dumped, n);
        memcpy(line + n, "\n", 2);
    }
    free(dumped);
    return line;
}
