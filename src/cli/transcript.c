/* Rendering stored events as a human transcript (see transcript.h).
 *
 * Each entry is a label and blocks of text: the first block follows the
 * label on its line, the others (and every continuation line) are indented
 * by four spaces, so a reader's eye finds the labels down the left edge:
 *
 *   [11:49:59] tool result (failed): [call_1] no such file
 *       read src/main.c
 *       write out.txt
 *       +new line
 */
#include "cli/transcript.h"

#include "base/hmap.h"

#include <jansson.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRANSCRIPT_INDENT "    "

/* An item that started and has not completed yet. */
struct transcript_open_item {
    json_t *item;       /* the item as item.started gave it */
    struct buf deltas;  /* the text item.delta events added since */
    char time[40];      /* when it started, "" if unknown */
    unsigned long long order;
};

struct transcript {
    hmap_t *open;              /* item_id -> struct transcript_open_item */
    unsigned long long started; /* items started so far, for their order */
    char date[11];             /* the date of the last entry, "" before the first */
};

/* The blocks of one entry, each a malloc'd string. */
struct transcript_blocks {
    char *v[64];
    size_t n;
    int nomem;
};

int transcript_new(transcript_t **out, struct err *err)
{
    transcript_t *t = calloc(1, sizeof *t);
    if (t)
        t->open = hmap_new();
    if (!t || !t->open) {
        free(t);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    *out = t;
    return 0;
}

static void transcript_open_free(struct transcript_open_item *o)
{
    json_decref(o->item);
    buf_free(&o->deltas);
    free(o);
}

static void transcript_free_one(const char *key, void *value, void *arg)
{
    (void)key; /* hmap_foreach's signature; the value holds everything */
    (void)arg; /* no context needed */
    transcript_open_free(value);
}

void transcript_free(transcript_t *t)
{
    if (!t)
        return;
    hmap_foreach(t->open, transcript_free_one, NULL);
    hmap_free(t->open);
    free(t);
}

/* ---- blocks ------------------------------------------------------------------ */

static void transcript_add(struct transcript_blocks *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void transcript_add(struct transcript_blocks *b, const char *fmt, ...)
{
    if (b->nomem)
        return;
    if (b->n == sizeof b->v / sizeof b->v[0]) {
        /* An item with more parts than this is summarized, not refused. */
        if (b->n > 0 && strcmp(b->v[b->n - 1], "...") != 0) {
            free(b->v[b->n - 1]);
            b->v[b->n - 1] = strdup("...");
            if (!b->v[b->n - 1])
                b->nomem = 1;
        }
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    struct buf s;
    buf_init(&s);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(&s, (size_t)n) != 0) {
        b->nomem = 1;
        buf_free(&s);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s.data, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s.len = (size_t)n;
    b->v[b->n++] = buf_steal(&s);
}

static void transcript_blocks_free(struct transcript_blocks *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->v[i]);
    b->n = 0;
}

/* Appends the character at s[*i] made harmless for a terminal, and moves *i
 * past it: C0 controls as ^X, DEL as ^?, C1 controls (U+0080..U+009F, which
 * some terminals obey too) as '?', anything else as it is. */
static int transcript_put_char(struct buf *out, const char *s, size_t len, size_t *i)
{
    unsigned char ch = (unsigned char)s[*i];
    if (ch < 0x20 || ch == 0x7f) {
        char caret[2] = { '^', (char)(ch == 0x7f ? '?' : ch + '@') };
        (*i)++;
        return buf_append(out, caret, 2);
    }
    if (ch == 0xc2 && *i + 1 < len && (unsigned char)s[*i + 1] >= 0x80 &&
        (unsigned char)s[*i + 1] <= 0x9f) {
        *i += 2;
        return buf_append(out, "?", 1);
    }
    (*i)++;
    return buf_append(out, s + *i - 1, 1);
}

/* Writes `s` with every line after the first indented, control characters
 * made visible and trailing line breaks dropped. */
static int transcript_put(struct buf *out, const char *s)
{
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') {
            rc = buf_append(out, "\n", 1);
            i++;
            if (!rc && i < len && s[i] != '\n' && s[i] != '\r')
                rc = buf_puts(out, TRANSCRIPT_INDENT);
        } else if (ch == '\r' && i + 1 < len && s[i + 1] == '\n') {
            i++; /* CRLF: the '\n' ends the line */
        } else if (ch == '\t') {
            rc = buf_append(out, "\t", 1);
            i++;
        } else {
            rc = transcript_put_char(out, s, len, &i);
        }
    }
    return rc;
}

int transcript_put_safe(struct buf *out, const char *s)
{
    size_t len = strlen(s);
    int rc = 0;
    for (size_t i = 0; i < len && !rc;)
        rc = transcript_put_char(out, s, len, &i);
    return rc;
}

/* Appends "[hh:mm:ss] label: block0\n    block1\n...", preceded by a date
 * line when the event's date differs from the previous entry's. */
static int transcript_emit(transcript_t *t, struct buf *out, const char *time,
                           const char *label, struct transcript_blocks *b)
{
    int rc = 0;
    int ok_time = time && strlen(time) >= 19 && time[4] == '-' && time[7] == '-' &&
                  (time[10] == 'T' || time[10] == ' ') && time[13] == ':' && time[16] == ':';
    if (b->nomem) {
        rc = ERR_NOMEM;
        goto done;
    }
    if (ok_time && strncmp(t->date, time, 10) != 0) {
        memcpy(t->date, time, 10);
        t->date[10] = '\0';
        rc = buf_printf(out, "--- %s ---\n", t->date);
    }
    if (!rc)
        rc = ok_time ? buf_printf(out, "[%.8s] ", time + 11) : buf_puts(out, "[??:??:??] ");
    if (!rc)
        rc = transcript_put(out, label);
    size_t shown = 0;
    for (size_t i = 0; i < b->n && !rc; i++) {
        if (!b->v[i][0])
            continue; /* an empty field shows nothing, not "label: " */
        rc = buf_puts(out, shown++ == 0 ? ": " : TRANSCRIPT_INDENT);
        if (!rc)
            rc = transcript_put(out, b->v[i]);
        if (!rc)
            rc = buf_append(out, "\n", 1);
    }
    if (!rc && shown == 0)
        rc = buf_append(out, "\n", 1);
done:
    transcript_blocks_free(b);
    return rc;
}

/* ---- JSON helpers ------------------------------------------------------------ */

static const char *transcript_str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* new (free()): `v` as compact JSON, or NULL if memory ran out. */
static char *transcript_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
}

static void transcript_add_json(struct transcript_blocks *b, const char *prefix,
                                const json_t *v)
{
    char *s = transcript_dump(v);
    if (!s) {
        b->nomem = 1;
        return;
    }
    transcript_add(b, "%s%s", prefix, s);
    free(s);
}

/* "key: value" for each field of a metadata object. */
static void transcript_add_fields(struct transcript_blocks *b, const json_t *obj)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (json_is_string(v)) {
            transcript_add(b, "%s: %s", key, json_string_value(v));
        } else if (!json_is_null(v)) {
            char prefix[256];
            snprintf(prefix, sizeof prefix, "%s: ", key);
            transcript_add_json(b, prefix, v);
        }
    }
}

/* ---- items ------------------------------------------------------------------- */

static void transcript_add_part(struct transcript_blocks *b, const json_t *part)
{
    const char *type = transcript_str(part, "type");
    const char *text = transcript_str(part, "text");
    if (!type) {
        transcript_add_json(b, "", part);
    } else if (strcmp(type, "text") == 0 && text) {
        transcript_add(b, "%s", text);
    } else if (strcmp(type, "reasoning") == 0 && text) {
        const char *vis = transcript_str(part, "visibility");
        transcript_add(b, "(%sreasoning) %s", vis && strcmp(vis, "private") == 0 ? "private " : "",
                       text);
    } else if (strcmp(type, "json") == 0) {
        transcript_add_json(b, "json: ", json_object_get(part, "json"));
    } else if (strcmp(type, "tool_call") == 0) {
        const char *name = transcript_str(part, "name");
        const char *args = transcript_str(part, "arguments");
        const char *id = transcript_str(part, "call_id");
        transcript_add(b, "[%s] %s %s", id ? id : "?", name ? name : "?", args ? args : "");
    } else if (strcmp(type, "tool_result") == 0) {
        const char *id = transcript_str(part, "call_id");
        const char *output = transcript_str(part, "output");
        transcript_add(b, "[%s] %s", id ? id : "?", output ? output : "");
    } else if (strcmp(type, "file_ref") == 0) {
        const char *action = transcript_str(part, "action");
        const char *path = transcript_str(part, "path");
        const char *diff = transcript_str(part, "diff");
        transcript_add(b, "%s %s%s%s", action ? action : "file", path ? path : "?",
                       diff && *diff ? "\n" : "", diff ? diff : "");
    } else if (strcmp(type, "image") == 0) {
        const char *path = transcript_str(part, "path");
        const char *mime = transcript_str(part, "mime");
        transcript_add(b, "image %s%s%s%s", path ? path : "?", mime ? " (" : "", mime ? mime : "",
                       mime ? ")" : "");
    } else if (strcmp(type, "status") == 0) {
        const char *label = transcript_str(part, "label");
        const char *detail = transcript_str(part, "detail");
        transcript_add(b, "%s%s%s", label ? label : "", detail ? ": " : "",
                       detail ? detail : "");
    } else {
        transcript_add_json(b, "", part);
    }
}

/* Renders one item; `deltas` (may be NULL) replaces its text parts when the
 * item is still open and its text arrived only as deltas. */
static int transcript_item(transcript_t *t, struct buf *out, const char *time,
                           const json_t *item, const struct buf *deltas, int open)
{
    const char *kind = transcript_str(item, "kind");
    const char *role = transcript_str(item, "role");
    const char *status = transcript_str(item, "status");
    char label[96];
    if (!kind || strcmp(kind, "message") == 0)
        snprintf(label, sizeof label, "%s", role ? role : "message");
    else if (strcmp(kind, "tool_call") == 0)
        snprintf(label, sizeof label, "tool call");
    else if (strcmp(kind, "tool_result") == 0)
        snprintf(label, sizeof label, "tool result");
    else
        snprintf(label, sizeof label, "%s", kind);
    size_t used = strlen(label);
    if (open)
        snprintf(label + used, sizeof label - used, " (in progress)");
    else if (status && strcmp(status, "failed") == 0)
        snprintf(label + used, sizeof label - used, " (failed)");

    struct transcript_blocks b = { .n = 0 };
    int use_deltas = deltas && deltas->len > 0;
    if (use_deltas)
        transcript_add(&b, "%s", deltas->data);
    const json_t *content = json_object_get(item, "content");
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        if (use_deltas && json_is_string(json_object_get(part, "type")) &&
            strcmp(transcript_str(part, "type"), "text") == 0)
            continue;
        transcript_add_part(&b, part);
    }
    if (b.n == 0)
        transcript_add(&b, "(no content)");
    return transcript_emit(t, out, time, label, &b);
}

static int transcript_item_started(transcript_t *t, const char *time, const json_t *data)
{
    const json_t *item = json_object_get(data, "item");
    const char *id = transcript_str(item, "item_id");
    if (!id)
        return 0;
    struct transcript_open_item *o = calloc(1, sizeof *o);
    if (!o)
        return ERR_NOMEM;
    o->item = json_deep_copy(item);
    buf_init(&o->deltas);
    snprintf(o->time, sizeof o->time, "%s", time ? time : "");
    o->order = ++t->started;
    /* A second start of the same item replaces the first. */
    struct transcript_open_item *old = hmap_remove(t->open, id);
    if (old)
        transcript_open_free(old);
    if (!o->item || hmap_put(t->open, id, o) != 0) {
        transcript_open_free(o);
        return ERR_NOMEM;
    }
    return 0;
}

static int transcript_item_delta(transcript_t *t, const json_t *data)
{
    const char *id = transcript_str(data, "item_id");
    const char *delta = transcript_str(data, "delta");
    struct transcript_open_item *o = id ? hmap_get(t->open, id) : NULL;
    if (!o || !delta)
        return 0;
    return buf_puts(&o->deltas, delta);
}

static int transcript_item_completed(transcript_t *t, struct buf *out, const char *time,
                                     const json_t *data)
{
    const json_t *item = json_object_get(data, "item");
    const char *id = transcript_str(item, "item_id");
    struct transcript_open_item *o = id ? hmap_remove(t->open, id) : NULL;
    if (o)
        transcript_open_free(o);
    return transcript_item(t, out, time, item, NULL, 0);
}

/* ---- events ------------------------------------------------------------------ */

static int transcript_session_started(transcript_t *t, struct buf *out, const char *time,
                                      const json_t *data)
{
    static const char *const fields[][2] = {
        { "agent", "agent" }, { "agentMode", "mode" }, { "permissionMode", "permissions" },
        { "model", "model" }, { "variant", "variant" },
    };
    const json_t *meta = json_object_get(data, "metadata");
    char label[512] = "session started";
    size_t used = strlen(label);
    int any = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = transcript_str(meta, fields[i][0]);
        if (!v || used >= sizeof label)
            continue;
        int n = snprintf(label + used, sizeof label - used, "%s%s %s", any ? ", " : " (",
                         fields[i][1], v);
        if (n > 0)
            used += (size_t)n;
        any = 1;
    }
    if (any && used + 1 < sizeof label)
        memcpy(label + used, ")", 2);
    struct transcript_blocks b = { .n = 0 };
    return transcript_emit(t, out, time, label, &b);
}

static int transcript_session_ended(transcript_t *t, struct buf *out, const char *time,
                                    const json_t *data)
{
    const char *reason = transcript_str(data, "reason");
    const char *by = transcript_str(data, "terminated_by");
    const char *message = transcript_str(data, "message");
    const json_t *code = json_object_get(data, "exit_code");
    const json_t *stderr_out = json_object_get(data, "stderr");
    struct transcript_blocks b = { .n = 0 };
    char exit_text[48] = "";
    if (json_is_integer(code))
        snprintf(exit_text, sizeof exit_text, ", exit code %lld",
                 (long long)json_integer_value(code));
    transcript_add(&b, "%s%s%s%s%s%s", reason ? reason : "unknown", by ? " by " : "",
                   by ? by : "", exit_text, message ? ": " : "", message ? message : "");
    const char *head = transcript_str(stderr_out, "head");
    const char *tail = transcript_str(stderr_out, "tail");
    if (head)
        transcript_add(&b, "stderr:\n%s", head);
    if (tail)
        transcript_add(&b, "...\n%s", tail);
    return transcript_emit(t, out, time, "session ended", &b);
}

static int transcript_permission(transcript_t *t, struct buf *out, const char *time,
                                 const json_t *data, int requested)
{
    const char *id = transcript_str(data, "permission_id");
    const char *action = transcript_str(data, "action");
    const char *status = transcript_str(data, "status");
    char label[320];
    snprintf(label, sizeof label, "permission %s [%s]",
             requested ? "requested" : (status ? status : "resolved"), id ? id : "?");
    struct transcript_blocks b = { .n = 0 };
    transcript_add(&b, "%s", action ? action : "?");
    const json_t *meta = json_object_get(data, "metadata");
    if (json_is_object(meta))
        transcript_add_fields(&b, meta);
    else if (meta && !json_is_null(meta))
        transcript_add_json(&b, "metadata: ", meta);
    return transcript_emit(t, out, time, label, &b);
}

static int transcript_question(transcript_t *t, struct buf *out, const char *time,
                               const json_t *data, int requested)
{
    const char *id = transcript_str(data, "question_id");
    const char *prompt = transcript_str(data, "prompt");
    const char *status = transcript_str(data, "status");
    const char *response = transcript_str(data, "response");
    char label[320];
    struct transcript_blocks b = { .n = 0 };
    if (requested) {
        snprintf(label, sizeof label, "question [%s]", id ? id : "?");
        transcript_add(&b, "%s", prompt ? prompt : "");
        const json_t *options = json_object_get(data, "options");
        struct buf opts;
        buf_init(&opts);
        size_t i;
        const json_t *opt;
        int rc = 0;
        json_array_foreach(options, i, opt) {
            if (json_is_string(opt) && !rc)
                rc = buf_printf(&opts, "%s%s", i ? " / " : "", json_string_value(opt));
        }
        if (rc)
            b.nomem = 1;
        else if (opts.len)
            transcript_add(&b, "options: %s", opts.data);
        buf_free(&opts);
    } else {
        snprintf(label, sizeof label, "question %s [%s]", status ? status : "resolved",
                 id ? id : "?");
        if (response)
            transcript_add(&b, "%s", response);
        else
            transcript_add(&b, "%s", prompt ? prompt : "");
    }
    return transcript_emit(t, out, time, label, &b);
}

static int transcript_error(transcript_t *t, struct buf *out, const char *time,
                            const json_t *data)
{
    const char *message = transcript_str(data, "message");
    const char *code = transcript_str(data, "code");
    const json_t *details = json_object_get(data, "details");
    struct transcript_blocks b = { .n = 0 };
    transcript_add(&b, "%s%s%s%s", message ? message : "", code ? " (" : "", code ? code : "",
                   code ? ")" : "");
    if (details && !json_is_null(details))
        transcript_add_json(&b, "details: ", details);
    return transcript_emit(t, out, time, "error", &b);
}

static int transcript_unparsed(transcript_t *t, struct buf *out, const char *time,
                               const json_t *data)
{
    const char *error = transcript_str(data, "error");
    const char *location = transcript_str(data, "location");
    char label[256];
    snprintf(label, sizeof label, "unparsed agent output at %s", location ? location : "?");
    struct transcript_blocks b = { .n = 0 };
    transcript_add(&b, "%s", error ? error : "");
    return transcript_emit(t, out, time, label, &b);
}

int transcript_render(transcript_t *t, const char *json, size_t len, struct buf *out,
                      struct err *err)
{
    json_error_t jerr;
    json_t *ev = json_loadb(json, len, 0, &jerr);
    int rc;
    if (!json_is_object(ev)) {
        struct transcript_blocks b = { .n = 0 };
        transcript_add(&b, "%s", ev ? "not a JSON object" : jerr.text);
        rc = transcript_emit(t, out, NULL, "unreadable event", &b);
        json_decref(ev);
        return rc ? err_set(err, ERR_NOMEM, "out of memory") : 0;
    }
    const char *type = transcript_str(ev, "type");
    const char *time = transcript_str(ev, "time");
    const json_t *data = json_object_get(ev, "data");
    if (!type)
        type = "?";
    if (strcmp(type, "item.started") == 0) {
        rc = transcript_item_started(t, time, data);
    } else if (strcmp(type, "item.delta") == 0) {
        rc = transcript_item_delta(t, data);
    } else if (strcmp(type, "item.completed") == 0) {
        rc = transcript_item_completed(t, out, time, data);
    } else if (strcmp(type, "session.started") == 0) {
        rc = transcript_session_started(t, out, time, data);
    } else if (strcmp(type, "session.ended") == 0) {
        rc = transcript_session_ended(t, out, time, data);
    } else if (strcmp(type, "permission.requested") == 0 ||
               strcmp(type, "permission.resolved") == 0) {
        rc = transcript_permission(t, out, time, data,
                                   strcmp(type, "permission.requested") == 0);
    } else if (strcmp(type, "question.requested") == 0 ||
               strcmp(type, "question.resolved") == 0) {
        rc = transcript_question(t, out, time, data, strcmp(type, "question.requested") == 0);
    } else if (strcmp(type, "error") == 0) {
        rc = transcript_error(t, out, time, data);
    } else if (strcmp(type, "agent.unparsed") == 0) {
        rc = transcript_unparsed(t, out, time, data);
    } else {
        struct transcript_blocks b = { .n = 0 };
        transcript_add_json(&b, "", data ? data : json_null());
        rc = transcript_emit(t, out, time, type, &b);
    }
    json_decref(ev);
    return rc ? err_set(err, ERR_NOMEM, "out of memory") : 0;
}

/* ---- finishing ----------------------------------------------------------- */

struct transcript_collect {
    struct transcript_open_item **v;
    size_t n;
};

static void transcript_collect_one(const char *key, void *value, void *arg)
{
    (void)key; /* the item keeps its own id */
    struct transcript_collect *c = arg;
    c->v[c->n++] = value;
}

static int transcript_by_order(const void *a, const void *b)
{
    const struct transcript_open_item *x = *(const struct transcript_open_item *const *)a;
    const struct transcript_open_item *y = *(const struct transcript_open_item *const *)b;
    return x->order < y->order ? -1 : x->order > y->order;
}

int transcript_finish(transcript_t *t, struct buf *out, struct err *err)
{
    size_t n = hmap_count(t->open);
    if (n == 0)
        return 0;
    struct transcript_collect c = { .v = calloc(n, sizeof *c.v), .n = 0 };
    if (!c.v)
        return err_set(err, ERR_NOMEM, "out of memory");
    hmap_foreach(t->open, transcript_collect_one, &c);
    qsort(c.v, c.n, sizeof *c.v, transcript_by_order);
    int rc = 0;
    for (size_t i = 0; i < c.n; i++) {
        const char *id = transcript_str(c.v[i]->item, "item_id");
        if (!rc)
            rc = transcript_item(t, out, c.v[i]->time, c.v[i]->item, &c.v[i]->deltas, 1);
        /* Every open item is keyed by its id (transcript_item_started). */
        void *removed = id ? hmap_remove(t->open, id) : NULL;
        if (removed != c.v[i] && !rc)
            rc = ERR_INTERNAL;
        transcript_open_free(c.v[i]);
    }
    free(c.v);
    if (rc == ERR_INTERNAL)
        return err_set(err, rc, "transcript: an open item lost its id");
    return rc ? err_set(err, rc, "out of memory") : 0;
}

/* ---- header -------------------------------------------------------------- */

const char *transcript_state_name(int ended)
{
    return ended == 0 ? "active" : ended == 2 ? "terminated" : "ended";
}

int transcript_header(const struct journal_session_info *s, struct buf *out, struct err *err)
{
    int rc = buf_puts(out, "session ");
    if (!rc)
        rc = transcript_put(out, s->session_id ? s->session_id : "?");
    if (!rc)
        rc = buf_puts(out, "\n");
    struct transcript_blocks b = { .n = 0 };
    transcript_add(&b, "agent %s, mode %s, permissions %s%s%s%s%s%s%s",
                   s->agent ? s->agent : "?", s->agent_mode ? s->agent_mode : "?",
                   s->permission_mode ? s->permission_mode : "?", s->model ? ", model " : "",
                   s->model ? s->model : "", s->variant ? ", variant " : "",
                   s->variant ? s->variant : "", s->agent_version ? ", version " : "",
                   s->agent_version ? s->agent_version : "");
    if (s->native_session_id)
        transcript_add(&b, "native session %s", s->native_session_id);
    if (s->working_dir)
        transcript_add(&b, "working directory %s", s->working_dir);
    transcript_add(&b, "created %s, %llu events, %s", s->created_at ? s->created_at : "?",
                   (unsigned long long)s->last_sequence, transcript_state_name(s->ended));
    if (b.nomem)
        rc = ERR_NOMEM;
    for (size_t i = 0; i < b.n && !rc; i++) {
        rc = buf_puts(out, TRANSCRIPT_INDENT);
        if (!rc)
            rc = transcript_put(out, b.v[i]);
        if (!rc)
            rc = buf_puts(out, "\n");
    }
    transcript_blocks_free(&b);
    return rc ? err_set(err, ERR_NOMEM, "out of memory") : 0;
}
