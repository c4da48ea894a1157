/* The pure part of the OpenCode adapter (see opencode.h): SSE framing, event
 * conversions and request bodies. */
#include "adapters/opencode.h"

#include "base/buf.h"
#include "base/err.h"
#include "events/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OC_MAX_EVENT (32u * 1024 * 1024)
#define OC_USER_MESSAGES 32

/* What has been reported of one part, until its session goes idle. */
struct oc_part {
    char *id;
    char *session;
    int started;        /* item.started sent (text, reasoning, tool call) */
    int done;           /* item.completed sent (text, reasoning, tool result) */
    int call_done;      /* tool: the tool_call item completed */
    int result_started; /* tool: the tool_result item started (streamed output) */
    size_t output_sent; /* tool: bytes of metadata.output sent as deltas */
    struct oc_part *next;
};

struct adapter_opencode_parser {
    struct oc_part *parts;
    /* Recent user message ids: their text parts are the user's prompt. */
    char user_messages[OC_USER_MESSAGES][128];
    unsigned next_user;
    /* SSE framing. */
    struct buf line;   /* the current line */
    struct buf data;   /* the event's data lines so far */
    int has_data;
    int dropping;      /* the event grew too large: skip to its end */
};

adapter_opencode_parser_t *adapter_opencode_parser_new(void)
{
    adapter_opencode_parser_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    buf_init(&p->line);
    buf_init(&p->data);
    return p;
}

static void oc_part_free(struct oc_part *part)
{
    free(part->id);
    free(part->session);
    free(part);
}

void adapter_opencode_parser_free(adapter_opencode_parser_t *p)
{
    if (!p)
        return;
    while (p->parts) {
        struct oc_part *next = p->parts->next;
        oc_part_free(p->parts);
        p->parts = next;
    }
    buf_free(&p->line);
    buf_free(&p->data);
    free(p);
}

static const char *oc_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int oc_push(json_t *list, json_t *c, struct err *err)
{
    if (!c || json_array_append_new(list, c) != 0)
        return err_set(err, ERR_NOMEM, "out of memory parsing an opencode event");
    return 0;
}

static char *oc_dump(const json_t *v)
{
    return json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Pushes `type` (item.started / item.completed) of `item` (stolen) with the
 * event as raw. */
static int oc_push_item(struct adapter_opencode_event *out, const char *type, json_t *item,
                        struct err *err)
{
    json_t *c = event_conversion(type, event_item_data(item));
    return oc_push(out->conversions, event_with_raw(c, json_deep_copy(out->message)), err);
}

static int oc_push_status(struct adapter_opencode_event *out, const char *label,
                          const json_t *detail_of, struct err *err)
{
    char *detail = detail_of ? oc_dump(detail_of) : NULL;
    if (detail_of && !detail)
        return err_set(err, ERR_NOMEM, "out of memory");
    json_t *item = event_item("status", "system", "completed", NULL,
                              event_content(event_part_status(label, detail)));
    free(detail);
    return oc_push_item(out, "item.completed", item, err);
}

static int oc_push_delta(struct adapter_opencode_event *out, const char *native_id,
                         const char *delta, struct err *err)
{
    json_t *c = event_conversion("item.delta", event_delta_data("", native_id, delta));
    return oc_push(out->conversions, event_with_raw(c, json_deep_copy(out->message)), err);
}

static struct oc_part *oc_part_get(adapter_opencode_parser_t *p, const char *id,
                                   const char *session, struct err *err)
{
    for (struct oc_part *part = p->parts; part; part = part->next)
        if (strcmp(part->id, id) == 0)
            return part;
    struct oc_part *part = calloc(1, sizeof *part);
    if (part) {
        part->id = strdup(id);
        part->session = strdup(session);
    }
    if (!part || !part->id || !part->session) {
        if (part)
            oc_part_free(part);
        err_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    part->next = p->parts;
    p->parts = part;
    return part;
}

/* A session went idle: its parts are finished. */
static void oc_forget_session(adapter_opencode_parser_t *p, const char *session)
{
    for (struct oc_part **pp = &p->parts; *pp;) {
        if (strcmp((*pp)->session, session) == 0) {
            struct oc_part *dead = *pp;
            *pp = dead->next;
            oc_part_free(dead);
        } else {
            pp = &(*pp)->next;
        }
    }
}

static int oc_is_user_message(const adapter_opencode_parser_t *p, const char *message_id)
{
    for (unsigned i = 0; i < OC_USER_MESSAGES; i++)
        if (p->user_messages[i][0] && strcmp(p->user_messages[i], message_id) == 0)
            return 1;
    return 0;
}

/* text and reasoning parts */
static int oc_text_part(adapter_opencode_parser_t *p, struct adapter_opencode_event *out,
                        const json_t *part, const char *id, int reasoning, struct err *err)
{
    const char *text = oc_str(part, "text");
    const char *message_id = oc_str(part, "messageID");
    if (!text)
        text = "";
    if (!reasoning && message_id && oc_is_user_message(p, message_id)) {
        json_t *item = event_item("message", "user", "completed", id,
                                  event_content(event_part_text(text)));
        return oc_push_item(out, "item.completed", item, err);
    }
    struct oc_part *st = oc_part_get(p, id, out->session_id, err);
    if (!st)
        return err->code;
    if (st->done)
        return 0;
    const json_t *time = json_object_get(part, "time");
    int ended = json_object_get(time, "end") != NULL && !json_is_null(json_object_get(time, "end"));
    if (!ended && st->started)
        return 0; /* the deltas carry the news */
    json_t *content = event_content(reasoning ? event_part_reasoning(text, "public")
                                            : event_part_text(text));
    json_t *item = event_item("message", "assistant", ended ? "completed" : "in_progress", id,
                              content);
    st->started = 1;
    st->done = ended;
    return oc_push_item(out, ended ? "item.completed" : "item.started", item, err);
}

static char *oc_result_id(const char *call_id)
{
    size_t n = strlen(call_id) + sizeof "_result";
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s_result", call_id);
    return s;
}

static int oc_tool_call_item(struct adapter_opencode_event *out, const char *tool,
                             const char *call_id, const json_t *input, int completed,
                             struct err *err)
{
    char *args = oc_dump(input && json_is_object(input) ? input : NULL);
    if (!args)
        return err_set(err, ERR_NOMEM, "out of memory");
    json_t *item = event_item("tool_call", "assistant", completed ? "completed" : "in_progress",
                              call_id,
                              event_content(event_part_tool_call(tool, json_is_object(input)
                                                                         ? args
                                                                         : "{}",
                                                               call_id)));
    free(args);
    return oc_push_item(out, completed ? "item.completed" : "item.started", item, err);
}

static int oc_tool_part(adapter_opencode_parser_t *p, struct adapter_opencode_event *out,
                        const json_t *part, const char *id, struct err *err)
{
    const char *tool = oc_str(part, "tool");
    const char *call_id = oc_str(part, "callID");
    const json_t *state = json_object_get(part, "state");
    const char *status = oc_str(state, "status");
    if (!tool)
        tool = "unknown";
    if (!call_id)
        call_id = id;
    if (!status)
        return oc_push_status(out, "part.tool", part, err);
    struct oc_part *st = oc_part_get(p, id, out->session_id, err);
    if (!st)
        return err->code;
    if (st->done)
        return 0;
    const json_t *input = json_object_get(state, "input");
    int rc = 0;
    if (strcmp(status, "pending") == 0) {
        if (!st->started)
            rc = oc_tool_call_item(out, tool, call_id, NULL, 0, err);
        st->started = 1;
        return rc;
    }
    if (!st->call_done) {
        rc = oc_tool_call_item(out, tool, call_id, input, 1, err);
        st->started = st->call_done = 1;
        if (rc)
            return rc;
    }
    char *result_id = oc_result_id(call_id);
    if (!result_id)
        return err_set(err, ERR_NOMEM, "out of memory");
    if (strcmp(status, "running") == 0) {
        /* bash streams its output as it runs. */
        const char *output = oc_str(json_object_get(state, "metadata"), "output");
        size_t n = output ? strlen(output) : 0;
        if (n > st->output_sent) {
            if (!st->result_started) {
                json_t *item = event_item("tool_result", "tool", "in_progress", result_id,
                                          event_content(event_part_tool_result(call_id, "")));
                rc = oc_push_item(out, "item.started", item, err);
                st->result_started = 1;
            }
            if (!rc)
                rc = oc_push_delta(out, result_id, output + st->output_sent, err);
            st->output_sent = n;
        }
        free(result_id);
        return rc;
    }
    int failed = strcmp(status, "error") == 0;
    if (!failed && strcmp(status, "completed") != 0) {
        free(result_id);
        return oc_push_status(out, "part.tool", part, err);
    }
    const char *output = failed ? oc_str(state, "error") : oc_str(state, "output");
    const json_t *md = json_object_get(state, "metadata");
    json_t *content = event_content(event_part_tool_result(call_id, output ? output : ""));
    if (!failed && strcmp(tool, "write") == 0 && oc_str(md, "filepath"))
        content = event_content_add(content,
                                    event_part_file_ref(oc_str(md, "filepath"), "write", NULL));
    else if (!failed && strcmp(tool, "edit") == 0 && oc_str(json_object_get(md, "filediff"), "file"))
        content = event_content_add(content,
                         event_part_file_ref(oc_str(json_object_get(md, "filediff"), "file"),
                                             "patch", oc_str(md, "diff")));
    else if (strcmp(tool, "bash") == 0 && json_is_object(input))
        content = event_content_add(content,
                         event_part_json(json_pack("{s:O,s:O}", "command",
                                                   json_object_get(input, "command")
                                                       ? json_object_get(input, "command")
                                                       : json_null(),
                                                   "exitCode",
                                                   json_object_get(md, "exit")
                                                       ? json_object_get(md, "exit")
                                                       : json_null())));
    json_t *item = event_item("tool_result", "tool", failed ? "failed" : "completed", result_id,
                              content);
    free(result_id);
    st->done = 1;
    return oc_push_item(out, "item.completed", item, err);
}

static int oc_file_part(adapter_opencode_parser_t *p, struct adapter_opencode_event *out,
                        const json_t *part, const char *id, struct err *err)
{
    const char *mime = oc_str(part, "mime");
    const char *url = oc_str(part, "url");
    const char *message_id = oc_str(part, "messageID");
    if (!url)
        url = oc_str(part, "filename");
    if (!url)
        url = "";
    int user = message_id && oc_is_user_message(p, message_id);
    json_t *content = event_content(mime && strncmp(mime, "image/", 6) == 0
                                      ? event_part_image(url, mime)
                                      : event_part_file_ref(url, "read", NULL));
    json_t *item = event_item("message", user ? "user" : "assistant", "completed", id, content);
    return oc_push_item(out, "item.completed", item, err);
}

static int oc_part_updated(adapter_opencode_parser_t *p, struct adapter_opencode_event *out,
                           const json_t *props, struct err *err)
{
    const json_t *part = json_object_get(props, "part");
    const char *type = oc_str(part, "type");
    const char *id = oc_str(part, "id");
    if (!type || !id)
        return oc_push_status(out, "opencode.message.part.updated", props, err);
    if (strcmp(type, "text") == 0)
        return oc_text_part(p, out, part, id, 0, err);
    if (strcmp(type, "reasoning") == 0)
        return oc_text_part(p, out, part, id, 1, err);
    if (strcmp(type, "tool") == 0)
        return oc_tool_part(p, out, part, id, err);
    if (strcmp(type, "file") == 0)
        return oc_file_part(p, out, part, id, err);
    if (strcmp(type, "step-start") == 0)
        return 0;
    if (strcmp(type, "step-finish") == 0) {
        json_t *detail = json_pack("{s:O,s:O,s:O}", "reason",
                                   json_object_get(part, "reason") ? json_object_get(part, "reason")
                                                                   : json_null(),
                                   "tokens",
                                   json_object_get(part, "tokens") ? json_object_get(part, "tokens")
                                                                   : json_null(),
                                   "cost",
                                   json_object_get(part, "cost") ? json_object_get(part, "cost")
                                                                 : json_null());
        if (!detail)
            return err_set(err, ERR_NOMEM, "out of memory");
        int rc = oc_push_status(out, "step.finished", detail, err);
        json_decref(detail);
        return rc;
    }
    char label[96];
    snprintf(label, sizeof label, "part.%.60s", type);
    return oc_push_status(out, label, part, err);
}

static int oc_permission(struct adapter_opencode_event *out, const json_t *props,
                         struct err *err)
{
    const char *id = oc_str(props, "id");
    const char *action = oc_str(props, "permission");
    if (!id)
        return oc_push(out->conversions,
                       event_with_raw(event_synthetic(event_conversion(
                                          "agent.unparsed",
                                          event_unparsed_data("permission.asked without an id",
                                                              "opencode", NULL))),
                                      json_deep_copy(out->message)),
                       err);
    json_t *c = event_conversion("permission.requested",
                                 event_permission_data(id, action ? action : "unknown",
                                                       "requested", json_deep_copy(props)));
    return oc_push(out->conversions, event_with_raw(c, json_deep_copy(out->message)), err);
}

static int oc_question(struct adapter_opencode_event *out, const json_t *props,
                       struct err *err)
{
    const char *id = oc_str(props, "id");
    const json_t *first = json_array_get(json_object_get(props, "questions"), 0);
    const char *prompt = oc_str(first, "question");
    if (!id)
        return oc_push(out->conversions,
                       event_with_raw(event_synthetic(event_conversion(
                                          "agent.unparsed",
                                          event_unparsed_data("question.asked without an id",
                                                              "opencode", NULL))),
                                      json_deep_copy(out->message)),
                       err);
    json_t *options = json_array();
    size_t i;
    const json_t *opt;
    json_array_foreach(json_object_get(first, "options"), i, opt) {
        const char *label = oc_str(opt, "label");
        if (label && options && json_array_append_new(options, json_string(label)) != 0) {
            json_decref(options);
            options = NULL;
        }
    }
    json_t *c = event_conversion("question.requested",
                                 event_question_data(id, prompt ? prompt : "", options, NULL,
                                                     "requested"));
    return oc_push(out->conversions, event_with_raw(c, json_deep_copy(out->message)), err);
}

/* Events that say nothing a client of the journal needs. */
static int oc_is_quiet(const char *type)
{
    static const char *const quiet[] = {
        "server.connected", "server.heartbeat", "plugin.added", "catalog.updated",
        "reference.updated", "integration.updated", "session.created", "session.updated",
        "session.deleted", "session.diff", "file.edited", "file.watcher.updated",
        "permission.replied", "question.replied", "question.rejected", "installation.updated",
        "installation.update-available", "lsp.updated", "lsp.client.diagnostics",
        "project.updated", "vcs.branch.updated", "server.instance.disposed", "message.removed",
        "message.part.removed", "mcp.tools.changed", "command.executed", "tui.toast.show",
    };
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
        if (strcmp(type, quiet[i]) == 0)
            return 1;
    return 0;
}

/* The session an event is about, wherever OpenCode put it. */
static const char *oc_find_session(const json_t *props)
{
    const char *s = oc_str(props, "sessionID");
    if (!s)
        s = oc_str(json_object_get(props, "part"), "sessionID");
    if (!s)
        s = oc_str(json_object_get(props, "info"), "sessionID");
    return s;
}

void adapter_opencode_event_clear(struct adapter_opencode_event *ev)
{
    json_decref(ev->message);
    json_decref(ev->conversions);
    memset(ev, 0, sizeof *ev);
    ev->type = "";
}

static int oc_unparsed(struct adapter_opencode_event *out, const char *why, json_t *raw,
                       struct err *err)
{
    json_t *c = event_synthetic(
        event_conversion("agent.unparsed", event_unparsed_data(why, "opencode", NULL)));
    return oc_push(out->conversions, raw ? event_with_raw(c, raw) : c, err);
}

int adapter_opencode_parse_event(adapter_opencode_parser_t *p, const char *data, size_t len,
                                 struct adapter_opencode_event *out, struct err *err)
{
    memset(out, 0, sizeof *out);
    out->type = "";
    out->conversions = json_array();
    if (!out->conversions)
        return err_set(err, ERR_NOMEM, "out of memory");
    json_error_t jerr;
    int rc = 0;
    out->message = json_loadb(data, len, 0, &jerr);
    const char *type = oc_str(out->message, "type");
    if (!json_is_object(out->message) || !type) {
        json_t *raw = json_stringn(data, len);
        rc = oc_unparsed(out, json_is_object(out->message) ? "event without a type"
                              : out->message             ? "not a JSON object"
                                                         : jerr.text,
                         raw ? raw : json_string("(not UTF-8)"), err);
        json_decref(out->message);
        out->message = NULL;
        goto done;
    }
    out->type = type;
    const json_t *props = json_object_get(out->message, "properties");
    const char *session = oc_find_session(props);
    snprintf(out->session_id, sizeof out->session_id, "%s", session ? session : "");
    if (strcmp(type, "server.connected") == 0)
        out->connected = 1;
    if (strcmp(type, "message.updated") == 0) {
        const json_t *info = json_object_get(props, "info");
        const char *id = oc_str(info, "id");
        if (id && strlen(id) < sizeof p->user_messages[0] && oc_str(info, "role") &&
            strcmp(oc_str(info, "role"), "user") == 0 && !oc_is_user_message(p, id)) {
            snprintf(p->user_messages[p->next_user], sizeof p->user_messages[0], "%s", id);
            p->next_user = (p->next_user + 1) % OC_USER_MESSAGES;
        }
        goto done; /* the parts are the items */
    }
    if (oc_is_quiet(type))
        goto done;
    if (!out->session_id[0]) {
        /* Not about a session (and not known noise): nobody to tell. */
        goto done;
    }
    if (strcmp(type, "message.part.updated") == 0) {
        rc = oc_part_updated(p, out, props, err);
    } else if (strcmp(type, "message.part.delta") == 0) {
        const char *field = oc_str(props, "field");
        const char *delta = oc_str(props, "delta");
        const char *part = oc_str(props, "partID");
        if (part && delta && *delta && (!field || strcmp(field, "text") == 0))
            rc = oc_push_delta(out, part, delta, err);
    } else if (strcmp(type, "permission.asked") == 0) {
        rc = oc_permission(out, props, err);
    } else if (strcmp(type, "question.asked") == 0) {
        rc = oc_question(out, props, err);
    } else if (strcmp(type, "session.idle") == 0) {
        out->idle = 1;
        oc_forget_session(p, out->session_id);
        rc = oc_push_status(out, "session.idle", NULL, err);
    } else if (strcmp(type, "session.status") == 0) {
        const json_t *status = json_object_get(props, "status");
        const char *st = oc_str(status, "type");
        out->busy = st && strcmp(st, "busy") == 0;
        if (st && strcmp(st, "retry") == 0)
            rc = oc_push_status(out, "session.retry", status, err);
    } else if (strcmp(type, "session.error") == 0) {
        const json_t *e = json_object_get(props, "error");
        const char *name = oc_str(e, "name");
        const char *message = oc_str(json_object_get(e, "data"), "message");
        out->failed = 1;
        json_t *c = event_conversion("error",
                                     event_error_data(message ? message
                                                      : name  ? name
                                                              : "opencode session error",
                                                      name, e ? json_deep_copy(e) : NULL));
        rc = oc_push(out->conversions, event_with_raw(c, json_deep_copy(out->message)), err);
    } else {
        char label[96];
        snprintf(label, sizeof label, "opencode.%.80s", type);
        rc = oc_push_status(out, label, props, err);
    }
done:
    if (rc)
        adapter_opencode_event_clear(out);
    return rc;
}

/* ---- SSE framing ---------------------------------------------------------- */

void adapter_opencode_stream_reset(adapter_opencode_parser_t *p)
{
    buf_reset(&p->line);
    buf_reset(&p->data);
    p->has_data = 0;
    p->dropping = 0;
}

/* One complete line (without its end). */
static int oc_sse_line(adapter_opencode_parser_t *p, const char *line, size_t n,
                       adapter_opencode_event_fn fn, void *arg, struct err *err)
{
    if (n == 0) {
        int rc = 0;
        if (p->has_data && !p->dropping) {
            struct adapter_opencode_event ev;
            rc = adapter_opencode_parse_event(p, p->data.data ? p->data.data : "", p->data.len,
                                              &ev, err);
            if (rc == 0) {
                fn(arg, &ev);
                adapter_opencode_event_clear(&ev);
            }
        }
        buf_reset(&p->data);
        p->has_data = 0;
        p->dropping = 0;
        return rc;
    }
    if (n < 5 || memcmp(line, "data:", 5) != 0 || p->dropping)
        return 0; /* comments, event:, id:, retry: */
    const char *v = line + 5;
    size_t vn = n - 5;
    if (vn && *v == ' ') {
        v++;
        vn--;
    }
    if (p->data.len + vn + 1 > OC_MAX_EVENT) {
        p->dropping = 1;
        buf_reset(&p->data);
        return 0;
    }
    if ((p->has_data && buf_append(&p->data, "\n", 1) != 0) || buf_append(&p->data, v, vn) != 0)
        return err_set(err, ERR_NOMEM, "out of memory");
    p->has_data = 1;
    return 0;
}

int adapter_opencode_parse_stream(adapter_opencode_parser_t *p, const char *bytes, size_t len,
                                  adapter_opencode_event_fn fn, void *arg, struct err *err)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(bytes + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - bytes) : len;
        if (p->line.len + (end - i) > OC_MAX_EVENT) {
            /* A line that never ends: drop the event it belongs to. */
            buf_reset(&p->line);
            p->dropping = 1;
        } else if (buf_append(&p->line, bytes + i, end - i) != 0) {
            return err_set(err, ERR_NOMEM, "out of memory");
        }
        if (!nl)
            break;
        size_t n = p->line.len;
        const char *line = p->line.data ? p->line.data : "";
        if (n && line[n - 1] == '\r')
            n--;
        int rc = oc_sse_line(p, line, n, fn, arg, err);
        buf_reset(&p->line);
        if (rc)
            return rc;
        i = end + 1;
    }
    return 0;
}

/* ---- request bodies -------------------------------------------------------- */

json_t *adapter_opencode_prompt_body(const char *text, const char *model,
                                     const char *default_provider, const char *agent)
{
    json_t *body = json_pack("{s:[{s:s,s:s}]}", "parts", "type", "text", "text", text);
    if (!body)
        return NULL;
    if (agent && *agent && json_object_set_new(body, "agent", json_string(agent)) != 0)
        goto fail;
    if (model && *model) {
        const char *slash = strchr(model, '/');
        json_t *m = slash ? json_pack("{s:s%,s:s}", "providerID", model, (size_t)(slash - model),
                                      "modelID", slash + 1)
                          : default_provider
                              ? json_pack("{s:s,s:s}", "providerID", default_provider,
                                          "modelID", model)
                              : NULL;
        if ((slash || default_provider) && (!m || json_object_set_new(body, "model", m) != 0))
            goto fail;
    }
    return body;
fail:
    json_decref(body);
    return NULL;
}

json_t *adapter_opencode_modes(const json_t *agents)
{
    json_t *modes = json_array();
    size_t i;
    const json_t *a;
    int have_custom = 0;
    if (!modes)
        return NULL;
    json_array_foreach(agents, i, a) {
        const char *name = oc_str(a, "name");
        const char *mode = oc_str(a, "mode");
        const char *desc = oc_str(a, "description");
        if (!name || (mode && strcmp(mode, "subagent") == 0) ||
            json_is_true(json_object_get(a, "hidden")))
            continue;
        int dup = 0;
        size_t k;
        const json_t *seen;
        json_array_foreach(modes, k, seen)
            dup |= strcmp(oc_str(seen, "id"), name) == 0;
        if (dup)
            continue;
        char title[64];
        snprintf(title, sizeof title, "%s", name);
        if (title[0] >= 'a' && title[0] <= 'z')
            title[0] = (char)(title[0] - 'a' + 'A');
        have_custom |= strcmp(name, "custom") == 0;
        json_t *m = json_pack("{s:s,s:s,s:s}", "id", name, "name", title, "description",
                              desc ? desc : "");
        if (!m || json_array_append_new(modes, m) != 0) {
            json_decref(modes);
            return NULL;
        }
    }
    if (!json_array_size(modes)) {
        json_decref(modes);
        return NULL;
    }
    if (!have_custom &&
        json_array_append_new(modes, json_pack("{s:s,s:s,s:s}", "id", "custom", "name", "Custom",
                                               "description",
                                               "Any user-defined OpenCode agent name")) != 0) {
        json_decref(modes);
        return NULL;
    }
    return modes;
}

char *adapter_opencode_config(const char *provider_id, const char *base_url,
                              const char *api_key, const json_t *models)
{
    json_t *c = json_pack("{s:b,s:s,s:{s:s,s:s,s:s}}", "autoupdate", 0, "share", "disabled",
                          "permission", "bash", "ask", "edit", "ask", "webfetch", "ask");
    if (!c)
        return NULL;
    if (base_url && *base_url) {
        json_t *list = json_object();
        size_t i;
        const json_t *m;
        int ok = list != NULL;
        json_array_foreach(models, i, m) {
            if (!ok || !json_is_string(m))
                continue;
            ok = json_object_set_new(list, json_string_value(m),
                                     json_pack("{s:s,s:b,s:b,s:{s:i,s:i}}", "name",
                                               json_string_value(m), "tool_call", 1,
                                               "reasoning", 0, "limit", "context", 128000,
                                               "output", 16384)) == 0;
        }
        json_t *options = ok ? json_pack("{s:s}", "baseURL", base_url) : NULL;
        if (options && api_key && json_object_set_new(options, "apiKey", json_string(api_key)))
            ok = 0;
        json_t *provider = ok && options
                               ? json_pack("{s:s,s:s,s:O,s:O}", "npm",
                                           "@ai-sdk/openai-compatible", "name", "sandbox-journal",
                                           "options", options, "models", list)
                               : NULL;
        json_decref(options);
        json_decref(list);
        json_t *providers = provider ? json_object() : NULL;
        if (!providers || json_object_set_new(providers, provider_id, provider) != 0 ||
            json_object_set_new(c, "provider", providers) != 0) {
            if (!providers)
                json_decref(provider);
            json_decref(c);
            return NULL;
        }
        const char *first = json_string_value(json_array_get(models, 0));
        if (first) {
            char *def = malloc(strlen(provider_id) + strlen(first) + 2);
            if (!def) {
                json_decref(c);
                return NULL;
            }
            sprintf(def, "%s/%s", provider_id, first);
            ok = json_object_set_new(c, "model", json_string(def)) == 0 &&
                 json_object_set_new(c, "small_model", json_string(def)) == 0;
            free(def);
            if (!ok) {
                json_decref(c);
                return NULL;
            }
        }
    }
    char *text = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return text;
}
