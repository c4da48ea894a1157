#include "events/event.h"

#include "base/buf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- builders ------------------------------------------------------------ */

/* Moves *value into obj[key] (jansson steals it even when the set fails) and
 * clears *value, so a failure path only has to drop what was never moved. */
static int event_take(json_t *obj, const char *key, json_t **value)
{
    json_t *v = *value;
    *value = NULL;
    if (!v)
        return -1;
    return json_object_set_new(obj, key, v);
}

static int event_set_str(json_t *obj, const char *key, const char *s)
{
    if (!s)
        return -1;
    return json_object_set_new(obj, key, json_string(s));
}

/* Option<String>: NULL is written as JSON null. */
static int event_set_opt_str(json_t *obj, const char *key, const char *s)
{
    return json_object_set_new(obj, key, s ? json_string(s) : json_null());
}

/* Option<Value>: NULL is written as JSON null. */
static int event_set_opt_value(json_t *obj, const char *key, json_t **value)
{
    if (!*value)
        return json_object_set_new(obj, key, json_null());
    return event_take(obj, key, value);
}

json_t *event_conversion(const char *type, json_t *data)
{
    json_t *c = json_object();
    if (!c || !data || event_set_str(c, "type", type) || event_take(c, "data", &data) ||
        json_object_set_new(c, "synthetic", json_false()) ||
        event_set_str(c, "source", "agent"))
        goto fail;
    return c;
fail:
    json_decref(data);
    json_decref(c);
    return NULL;
}

json_t *event_synthetic(json_t *conversion)
{
    if (!conversion)
        return NULL;
    if (json_object_set_new(conversion, "synthetic", json_true()) ||
        event_set_str(conversion, "source", "daemon")) {
        json_decref(conversion);
        return NULL;
    }
    return conversion;
}

json_t *event_with_raw(json_t *conversion, json_t *raw)
{
    if (!conversion || event_take(conversion, "raw", &raw)) {
        json_decref(raw);
        json_decref(conversion);
        return NULL;
    }
    return conversion;
}

json_t *event_with_native_session(json_t *conversion, const char *native_session_id)
{
    if (!conversion || !native_session_id)
        return conversion;
    if (event_set_str(conversion, "native_session_id", native_session_id)) {
        json_decref(conversion);
        return NULL;
    }
    return conversion;
}

json_t *event_session_started_data(json_t *metadata)
{
    json_t *d = json_object();
    if (!d || event_set_opt_value(d, "metadata", &metadata))
        goto fail;
    return d;
fail:
    json_decref(metadata);
    json_decref(d);
    return NULL;
}

json_t *event_session_ended_data(const char *reason, const char *terminated_by,
                                 const char *message, int exit_code, json_t *stderr_output)
{
    json_t *d = json_object();
    if (!d || event_set_str(d, "reason", reason) ||
        event_set_str(d, "terminated_by", terminated_by) ||
        (message && event_set_str(d, "message", message)) ||
        (exit_code >= 0 && json_object_set_new(d, "exit_code", json_integer(exit_code))) ||
        (stderr_output && event_take(d, "stderr", &stderr_output)))
        goto fail;
    return d;
fail:
    json_decref(stderr_output);
    json_decref(d);
    return NULL;
}

json_t *event_item(const char *kind, const char *role, const char *status,
                   const char *native_item_id, json_t *content)
{
    json_t *it = json_object();
    if (!it || !content || event_set_str(it, "item_id", "") ||
        event_set_opt_str(it, "native_item_id", native_item_id) ||
        json_object_set_new(it, "parent_id", json_null()) || event_set_str(it, "kind", kind) ||
        event_set_opt_str(it, "role", role) || event_take(it, "content", &content) ||
        event_set_str(it, "status", status))
        goto fail;
    return it;
fail:
    json_decref(content);
    json_decref(it);
    return NULL;
}

json_t *event_item_data(json_t *item)
{
    json_t *d = json_object();
    if (!d || event_take(d, "item", &item))
        goto fail;
    return d;
fail:
    json_decref(item);
    json_decref(d);
    return NULL;
}

json_t *event_delta_data(const char *item_id, const char *native_item_id, const char *delta)
{
    json_t *d = json_object();
    /* Adapters leave item_id empty for the normalizer to fill; NULL means the same. */
    if (!d || event_set_str(d, "item_id", item_id ? item_id : "") ||
        event_set_opt_str(d, "native_item_id", native_item_id) ||
        event_set_str(d, "delta", delta)) {
        json_decref(d);
        return NULL;
    }
    return d;
}

json_t *event_error_data(const char *message, const char *code, json_t *details)
{
    json_t *d = json_object();
    if (!d || event_set_str(d, "message", message) || event_set_opt_str(d, "code", code) ||
        event_set_opt_value(d, "details", &details))
        goto fail;
    return d;
fail:
    json_decref(details);
    json_decref(d);
    return NULL;
}

json_t *event_permission_data(const char *permission_id, const char *action,
                              const char *status, json_t *metadata)
{
    json_t *d = json_object();
    if (!d || event_set_str(d, "permission_id", permission_id) ||
        event_set_str(d, "action", action) || event_set_str(d, "status", status) ||
        event_set_opt_value(d, "metadata", &metadata))
        goto fail;
    return d;
fail:
    json_decref(metadata);
    json_decref(d);
    return NULL;
}

json_t *event_question_data(const char *question_id, const char *prompt, json_t *options,
                            const char *response, const char *status)
{
    json_t *d = json_object();
    if (!d || !options || event_set_str(d, "question_id", question_id) ||
        event_set_str(d, "prompt", prompt) || event_take(d, "options", &options) ||
        event_set_opt_str(d, "response", response) || event_set_str(d, "status", status))
        goto fail;
    return d;
fail:
    json_decref(options);
    json_decref(d);
    return NULL;
}

json_t *event_unparsed_data(const char *error, const char *location, const char *raw_hash)
{
    json_t *d = json_object();
    if (!d || event_set_str(d, "error", error) || event_set_str(d, "location", location) ||
        event_set_opt_str(d, "raw_hash", raw_hash)) {
        json_decref(d);
        return NULL;
    }
    return d;
}

/* A part with its tag and up to three string fields; `nullable` marks which
 * of them are Option<String> (NULL -> null) rather than required. */
static json_t *event_part(const char *type, const char *k1, const char *v1, const char *k2,
                          const char *v2, const char *k3, const char *v3, unsigned nullable)
{
    const char *keys[3] = {k1, k2, k3};
    const char *vals[3] = {v1, v2, v3};
    json_t *p = json_object();
    if (!p || event_set_str(p, "type", type))
        goto fail;
    for (int i = 0; i < 3 && keys[i]; i++) {
        int rc = (nullable & (1u << i)) ? event_set_opt_str(p, keys[i], vals[i])
                                        : event_set_str(p, keys[i], vals[i]);
        if (rc)
            goto fail;
    }
    return p;
fail:
    json_decref(p);
    return NULL;
}

json_t *event_part_text(const char *text)
{
    return event_part("text", "text", text, NULL, NULL, NULL, NULL, 0);
}

json_t *event_part_json(json_t *value)
{
    json_t *p = json_object();
    if (!p || !value || event_set_str(p, "type", "json") || event_take(p, "json", &value))
        goto fail;
    return p;
fail:
    json_decref(value);
    json_decref(p);
    return NULL;
}

json_t *event_part_tool_call(const char *name, const char *arguments, const char *call_id)
{
    return event_part("tool_call", "name", name, "arguments", arguments, "call_id", call_id, 0);
}

json_t *event_part_tool_result(const char *call_id, const char *output)
{
    return event_part("tool_result", "call_id", call_id, "output", output, NULL, NULL, 0);
}

json_t *event_part_file_ref(const char *path, const char *action, const char *diff)
{
    return event_part("file_ref", "path", path, "action", action, "diff", diff, 4u);
}

json_t *event_part_reasoning(const char *text, const char *visibility)
{
    return event_part("reasoning", "text", text, "visibility", visibility, NULL, NULL, 0);
}

json_t *event_part_image(const char *path, const char *mime)
{
    return event_part("image", "path", path, "mime", mime, NULL, NULL, 2u);
}

json_t *event_part_status(const char *label, const char *detail)
{
    return event_part("status", "label", label, "detail", detail, NULL, NULL, 2u);
}

json_t *event_content_add(json_t *content, json_t *part)
{
    if (!content || !part || json_array_append_new(content, part) != 0) {
        json_decref(content);
        if (!content)
            json_decref(part);
        return NULL;
    }
    return content;
}

json_t *event_content(json_t *part)
{
    return event_content_add(json_array(), part);
}

/* ---- compact JSON writer ---------------------------------------------------
 *
 * json_dumps() differs from serde_json in two ways that show in stored text:
 * it writes control characters as "\u001B" where serde writes "\u001b", and
 * reals with 17 significant digits ("0.10000000000000001") where serde writes
 * the shortest text that reads back to the same double ("0.1").  Writing the
 * JSON ourselves keeps the journal byte-identical to the reference. */

/* Twice what jansson's parser accepts, so parsed payloads nested inside
 * event data always fit; also stops reference cycles. */
#define EVENT_MAX_DEPTH 4096

static int event_write_string(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (buf_append(b, "\"", 1))
        return -1;
    size_t run = 0; /* start of the pending unescaped run */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t esc_len = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (c >= 0x20)
                continue;
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            esc_len = 6;
            break;
        }
        if (buf_append(b, s + run, i - run) || buf_append(b, esc, esc_len))
            return -1;
        run = i + 1;
    }
    if (buf_append(b, s + run, len - run) || buf_append(b, "\"", 1))
        return -1;
    return 0;
}

static int event_write_cstr(struct buf *b, const char *s)
{
    return event_write_string(b, s, strlen(s));
}

/* The layout of Rust's ryu (what serde_json uses) applied to the shortest
 * round-tripping digits, which "%.*e" finds by trying each precision. */
static int event_write_real(struct buf *b, double d)
{
    if (!isfinite(d))
        return buf_puts(b, "null") ? -1 : 0;
    if (d == 0.0)
        return buf_puts(b, signbit(d) ? "-0.0" : "0.0") ? -1 : 0;

    char tmp[40];
    for (int prec = 0; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    /* tmp is "[-]D[.DDD]e(+|-)XX". */
    const char *p = tmp;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    char digits[24];
    int len = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && len < (int)sizeof digits - 1)
            digits[len++] = *p;
    digits[len] = '\0';
    if (*p != 'e')
        return -1;
    int exp10 = atoi(p + 1);
    /* %.*e may keep zeros the shortest form would drop (e.g. precision 0 never
     * needs it, but be safe). */
    while (len > 1 && digits[len - 1] == '0') {
        digits[--len] = '\0';
    }
    int k = exp10 - (len - 1); /* value = digits * 10^k */
    int kk = len + k;          /* position of the decimal point */

    if (neg && buf_append(b, "-", 1))
        return -1;
    int rc = 0;
    if (k >= 0 && kk <= 16) {
        rc = buf_append(b, digits, (size_t)len);
        for (int i = len; i < kk && !rc; i++)
            rc = buf_append(b, "0", 1);
        if (!rc)
            rc = buf_append(b, ".0", 2);
    } else if (kk > 0 && kk <= 16) {
        rc = buf_append(b, digits, (size_t)kk);
        if (!rc)
            rc = buf_append(b, ".", 1);
        if (!rc)
            rc = buf_append(b, digits + kk, (size_t)(len - kk));
    } else if (kk > -5 && kk <= 0) {
        rc = buf_append(b, "0.", 2);
        for (int i = kk; i < 0 && !rc; i++)
            rc = buf_append(b, "0", 1);
        if (!rc)
            rc = buf_append(b, digits, (size_t)len);
    } else if (len == 1) {
        rc = buf_printf(b, "%ce%d", digits[0], kk - 1);
    } else {
        rc = buf_printf(b, "%c.%se%d", digits[0], digits + 1, kk - 1);
    }
    return rc ? -1 : 0;
}

static int event_write_value(struct buf *b, const json_t *v, int depth)
{
    if (depth > EVENT_MAX_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        int first = 1;
        if (buf_append(b, "{", 1))
            return -1;
        /* jansson keeps insertion order, which is the order we must emit. */
        json_object_foreach((json_t *)v, key, val) {
            if ((!first && buf_append(b, ",", 1)) || event_write_cstr(b, key) ||
                buf_append(b, ":", 1) || event_write_value(b, val, depth + 1))
                return -1;
            first = 0;
        }
        return buf_append(b, "}", 1) ? -1 : 0;
    }
    case JSON_ARRAY: {
        if (buf_append(b, "[", 1))
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++) {
            if ((i && buf_append(b, ",", 1)) ||
                event_write_value(b, json_array_get(v, i), depth + 1))
                return -1;
        }
        return buf_append(b, "]", 1) ? -1 : 0;
    }
    case JSON_STRING:
        return event_write_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) ? -1 : 0;
    case JSON_REAL:
        return event_write_real(b, json_real_value(v));
    case JSON_TRUE:
        return buf_puts(b, "true") ? -1 : 0;
    case JSON_FALSE:
        return buf_puts(b, "false") ? -1 : 0;
    case JSON_NULL:
        return buf_puts(b, "null") ? -1 : 0;
    }
    return -1;
}

char *event_dump(const json_t *value, size_t *len_out)
{
    struct buf b;
    buf_init(&b);
    if (!value || event_write_value(&b, value, 0)) {
        buf_free(&b);
        return NULL;
    }
    size_t len = b.len;
    char *s = buf_steal(&b);
    if (s && len_out)
        *len_out = len;
    return s;
}

int event_json_load_nomem(const json_error_t *jerr, const char *text, size_t len)
{
    /* Every error jansson finds in the text has a message; its allocation
     * failures mostly leave none, and the code is only set with one. */
    if (!jerr->text[0] || json_error_code(jerr) == json_error_out_of_memory)
        return 1;
    /* A string token whose copy failed comes back invalid, so jansson
     * complains where a string is welcome: as a value ("invalid token") or
     * as a key.  Text cannot cause either right after a whole string (a
     * broken string reports its own fault first, and jansson keeps the
     * first). */
    return json_error_code(jerr) == json_error_invalid_syntax &&
           (strncmp(jerr->text, "invalid token", 13) == 0 ||
            strncmp(jerr->text, "string or '}' expected", 22) == 0) &&
           jerr->position > 0 && (size_t)jerr->position <= len &&
           text[jerr->position - 1] == '"';
}

/* ---- canonical data --------------------------------------------------------
 *
 * Each data type is a table of fields in the schema's declaration order.  One
 * walk both validates and (when given a buffer) writes, so checking a
 * conversion and serializing it can never disagree. */

enum event_field_kind {
    EF_STR,        /* String */
    EF_STR_NULL,   /* Option<String>: absent is written as null */
    EF_STR_SKIP,   /* Option<String>, skip_serializing_if: absent/null omitted */
    EF_ENUM,       /* unit enum, one of `values` */
    EF_ENUM_NULL,  /* Option<enum> */
    EF_BOOL,       /* bool */
    EF_VALUE,      /* serde_json::Value (required, may be null) */
    EF_VALUE_NULL, /* Option<Value> */
    EF_I32_SKIP,   /* Option<i32>, skipped when absent */
    EF_USIZE_SKIP, /* Option<usize>, skipped when absent */
    EF_STR_ARRAY,  /* Vec<String> */
    EF_STRUCT,     /* nested struct */
    EF_STRUCT_SKIP,/* Option<struct>, skipped when absent */
    EF_PARTS,      /* Vec<ContentPart> */
};

struct event_shape;

struct event_field {
    const char *name;
    enum event_field_kind kind;
    const char *const *values;       /* EF_ENUM* */
    const struct event_shape *shape; /* EF_STRUCT* */
};

struct event_shape {
    const struct event_field *fields;
    size_t n;
};

#define EVENT_SHAPE(arr) {arr, sizeof arr / sizeof arr[0]}

static const char *const event_end_reasons[] = {"completed", "error", "terminated", NULL};
static const char *const event_terminators[] = {"agent", "daemon", NULL};
static const char *const event_item_kinds[] = {"message", "tool_call", "tool_result",
                                               "system",  "status",    "unknown", NULL};
static const char *const event_item_roles[] = {"user", "assistant", "system", "tool", NULL};
static const char *const event_item_statuses[] = {"in_progress", "completed", "failed", NULL};
static const char *const event_permission_statuses[] = {"requested", "approved", "denied",
                                                        NULL};
static const char *const event_question_statuses[] = {"requested", "answered", "rejected",
                                                      NULL};
static const char *const event_file_actions[] = {"read", "write", "patch", NULL};
static const char *const event_visibilities[] = {"public", "private", NULL};

static const struct event_field event_f_session_started[] = {
    {"metadata", EF_VALUE_NULL, NULL, NULL},
};
static const struct event_field event_f_stderr[] = {
    {"head", EF_STR_SKIP, NULL, NULL},
    {"tail", EF_STR_SKIP, NULL, NULL},
    {"truncated", EF_BOOL, NULL, NULL},
    {"total_lines", EF_USIZE_SKIP, NULL, NULL},
};
static const struct event_shape event_s_stderr = EVENT_SHAPE(event_f_stderr);
static const struct event_field event_f_session_ended[] = {
    {"reason", EF_ENUM, event_end_reasons, NULL},
    {"terminated_by", EF_ENUM, event_terminators, NULL},
    {"message", EF_STR_SKIP, NULL, NULL},
    {"exit_code", EF_I32_SKIP, NULL, NULL},
    {"stderr", EF_STRUCT_SKIP, NULL, &event_s_stderr},
};
static const struct event_field event_f_item[] = {
    {"item_id", EF_STR, NULL, NULL},
    {"native_item_id", EF_STR_NULL, NULL, NULL},
    {"parent_id", EF_STR_NULL, NULL, NULL},
    {"kind", EF_ENUM, event_item_kinds, NULL},
    {"role", EF_ENUM_NULL, event_item_roles, NULL},
    {"content", EF_PARTS, NULL, NULL},
    {"status", EF_ENUM, event_item_statuses, NULL},
};
static const struct event_shape event_s_item = EVENT_SHAPE(event_f_item);
static const struct event_field event_f_item_data[] = {
    {"item", EF_STRUCT, NULL, &event_s_item},
};
static const struct event_field event_f_delta[] = {
    {"item_id", EF_STR, NULL, NULL},
    {"native_item_id", EF_STR_NULL, NULL, NULL},
    {"delta", EF_STR, NULL, NULL},
};
static const struct event_field event_f_error[] = {
    {"message", EF_STR, NULL, NULL},
    {"code", EF_STR_NULL, NULL, NULL},
    {"details", EF_VALUE_NULL, NULL, NULL},
};
static const struct event_field event_f_permission[] = {
    {"permission_id", EF_STR, NULL, NULL},
    {"action", EF_STR, NULL, NULL},
    {"status", EF_ENUM, event_permission_statuses, NULL},
    {"metadata", EF_VALUE_NULL, NULL, NULL},
};
static const struct event_field event_f_question[] = {
    {"question_id", EF_STR, NULL, NULL},
    {"prompt", EF_STR, NULL, NULL},
    {"options", EF_STR_ARRAY, NULL, NULL},
    {"response", EF_STR_NULL, NULL, NULL},
    {"status", EF_ENUM, event_question_statuses, NULL},
};
static const struct event_field event_f_unparsed[] = {
    {"error", EF_STR, NULL, NULL},
    {"location", EF_STR, NULL, NULL},
    {"raw_hash", EF_STR_NULL, NULL, NULL},
};

/* Content parts: "type" is written first, then these. */
static const struct event_field event_f_part_text[] = {{"text", EF_STR, NULL, NULL}};
static const struct event_field event_f_part_json[] = {{"json", EF_VALUE, NULL, NULL}};
static const struct event_field event_f_part_tool_call[] = {
    {"name", EF_STR, NULL, NULL},
    {"arguments", EF_STR, NULL, NULL},
    {"call_id", EF_STR, NULL, NULL},
};
static const struct event_field event_f_part_tool_result[] = {
    {"call_id", EF_STR, NULL, NULL},
    {"output", EF_STR, NULL, NULL},
};
static const struct event_field event_f_part_file_ref[] = {
    {"path", EF_STR, NULL, NULL},
    {"action", EF_ENUM, event_file_actions, NULL},
    {"diff", EF_STR_NULL, NULL, NULL},
};
static const struct event_field event_f_part_reasoning[] = {
    {"text", EF_STR, NULL, NULL},
    {"visibility", EF_ENUM, event_visibilities, NULL},
};
static const struct event_field event_f_part_image[] = {
    {"path", EF_STR, NULL, NULL},
    {"mime", EF_STR_NULL, NULL, NULL},
};
static const struct event_field event_f_part_status[] = {
    {"label", EF_STR, NULL, NULL},
    {"detail", EF_STR_NULL, NULL, NULL},
};

static const struct {
    const char *type;
    struct event_shape shape;
} event_parts[] = {
    {"text", EVENT_SHAPE(event_f_part_text)},
    {"json", EVENT_SHAPE(event_f_part_json)},
    {"tool_call", EVENT_SHAPE(event_f_part_tool_call)},
    {"tool_result", EVENT_SHAPE(event_f_part_tool_result)},
    {"file_ref", EVENT_SHAPE(event_f_part_file_ref)},
    {"reasoning", EVENT_SHAPE(event_f_part_reasoning)},
    {"image", EVENT_SHAPE(event_f_part_image)},
    {"status", EVENT_SHAPE(event_f_part_status)},
};

static const struct {
    const char *type;
    struct event_shape shape;
} event_types[] = {
    {"session.started", EVENT_SHAPE(event_f_session_started)},
    {"session.ended", EVENT_SHAPE(event_f_session_ended)},
    {"item.started", EVENT_SHAPE(event_f_item_data)},
    {"item.delta", EVENT_SHAPE(event_f_delta)},
    {"item.completed", EVENT_SHAPE(event_f_item_data)},
    {"error", EVENT_SHAPE(event_f_error)},
    {"permission.requested", EVENT_SHAPE(event_f_permission)},
    {"permission.resolved", EVENT_SHAPE(event_f_permission)},
    {"question.requested", EVENT_SHAPE(event_f_question)},
    {"question.resolved", EVENT_SHAPE(event_f_question)},
    {"agent.unparsed", EVENT_SHAPE(event_f_unparsed)},
};

static const struct event_shape *event_shape_for(const char *type)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < sizeof event_types / sizeof event_types[0]; i++)
        if (strcmp(event_types[i].type, type) == 0)
            return &event_types[i].shape;
    return NULL;
}

static int event_in(const char *const *values, const char *s)
{
    for (; *values; values++)
        if (strcmp(*values, s) == 0)
            return 1;
    return 0;
}

static int event_is_str_or_null(const json_t *v)
{
    return !v || json_is_null(v) || json_is_string(v);
}

static int event_write_struct(struct buf *b, const struct event_shape *shape,
                              const json_t *obj, const char *tag, int depth);

/* Writes `,"key":` (or `"key":` for the first field); no-op without a buffer. */
static int event_write_key(struct buf *b, const char *key, int *first)
{
    if (!b)
        return 0;
    if (!*first && buf_append(b, ",", 1))
        return -1;
    *first = 0;
    if (event_write_cstr(b, key) || buf_append(b, ":", 1))
        return -1;
    return 0;
}

static int event_write_parts(struct buf *b, const json_t *arr, int depth)
{
    if (!json_is_array(arr))
        return -1;
    if (b && buf_append(b, "[", 1))
        return -1;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *part = json_array_get(arr, i);
        const char *type = json_string_value(json_object_get(part, "type"));
        const struct event_shape *shape = NULL;
        if (!json_is_object(part) || !type)
            return -1;
        for (size_t j = 0; j < sizeof event_parts / sizeof event_parts[0]; j++)
            if (strcmp(event_parts[j].type, type) == 0)
                shape = &event_parts[j].shape;
        if (!shape)
            return -1;
        if (b && i && buf_append(b, ",", 1))
            return -1;
        if (event_write_struct(b, shape, part, type, depth + 1))
            return -1;
    }
    if (b && buf_append(b, "]", 1))
        return -1;
    return 0;
}

/* One field of a struct: validates `v` (NULL when absent) and writes it. */
static int event_write_field(struct buf *b, const struct event_field *f, const json_t *v,
                             int *first, int depth)
{
    switch (f->kind) {
    case EF_STR:
        if (!json_is_string(v))
            return -1;
        break;
    case EF_STR_NULL:
        if (!event_is_str_or_null(v))
            return -1;
        break;
    case EF_STR_SKIP:
        if (!event_is_str_or_null(v))
            return -1;
        if (!v || json_is_null(v))
            return 0;
        break;
    case EF_ENUM:
        if (!json_is_string(v) || !event_in(f->values, json_string_value(v)))
            return -1;
        break;
    case EF_ENUM_NULL:
        if (!event_is_str_or_null(v) ||
            (json_is_string(v) && !event_in(f->values, json_string_value(v))))
            return -1;
        break;
    case EF_BOOL:
        if (!json_is_boolean(v))
            return -1;
        break;
    case EF_VALUE:
        if (!v)
            return -1;
        break;
    case EF_VALUE_NULL:
        break;
    case EF_I32_SKIP:
        if (!v || json_is_null(v))
            return 0;
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
            json_integer_value(v) > INT32_MAX)
            return -1;
        break;
    case EF_USIZE_SKIP:
        if (!v || json_is_null(v))
            return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return -1;
        break;
    case EF_STR_ARRAY:
        if (!json_is_array(v))
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_string(json_array_get(v, i)))
                return -1;
        break;
    case EF_STRUCT:
        if (!json_is_object(v))
            return -1;
        return event_write_key(b, f->name, first) ||
               event_write_struct(b, f->shape, v, NULL, depth + 1);
    case EF_STRUCT_SKIP:
        if (!v || json_is_null(v))
            return 0;
        if (!json_is_object(v))
            return -1;
        return event_write_key(b, f->name, first) ||
               event_write_struct(b, f->shape, v, NULL, depth + 1);
    case EF_PARTS:
        return event_write_key(b, f->name, first) || event_write_parts(b, v, depth + 1);
    }
    if (!b)
        return 0;
    if (event_write_key(b, f->name, first))
        return -1;
    if (!v)
        return buf_puts(b, "null") ? -1 : 0;
    return event_write_value(b, v, depth + 1);
}

static int event_is_known(const struct event_shape *shape, const char *tag, const char *key)
{
    if (tag && strcmp(key, "type") == 0)
        return 1;
    for (size_t i = 0; i < shape->n; i++)
        if (strcmp(shape->fields[i].name, key) == 0)
            return 1;
    return 0;
}

/* `tag` (content parts) is written first as "type".  `b` NULL: validate only. */
static int event_write_struct(struct buf *b, const struct event_shape *shape,
                              const json_t *obj, const char *tag, int depth)
{
    int first = 1;
    if (depth > EVENT_MAX_DEPTH || !json_is_object(obj))
        return -1;
    if (b && buf_append(b, "{", 1))
        return -1;
    if (tag && b && (event_write_key(b, "type", &first) || event_write_cstr(b, tag)))
        return -1;
    for (size_t i = 0; i < shape->n; i++) {
        const struct event_field *f = &shape->fields[i];
        if (event_write_field(b, f, json_object_get(obj, f->name), &first, depth))
            return -1;
    }
    if (b) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)obj, key, val) {
            if (event_is_known(shape, tag, key))
                continue;
            if (event_write_key(b, key, &first) || event_write_value(b, val, depth + 1))
                return -1;
        }
        if (buf_append(b, "}", 1))
            return -1;
    }
    return 0;
}

int event_data_fits(const char *type, const json_t *data)
{
    const struct event_shape *shape = event_shape_for(type);
    return shape && event_write_struct(NULL, shape, data, NULL, 0) == 0;
}

char *event_serialize(uint64_t sequence, const char *time, const char *session_id,
                      const char *native_session_id, int synthetic, const char *source,
                      const char *type, const json_t *data, size_t *len_out)
{
    const struct event_shape *shape = event_shape_for(type);
    struct buf b;
    buf_init(&b);
    if (!shape || !time || !session_id || !source ||
        (strcmp(source, "agent") != 0 && strcmp(source, "daemon") != 0))
        goto fail;
    if (buf_printf(&b, "{\"event_id\":\"evt_%llu\",\"sequence\":%llu,\"time\":",
                   (unsigned long long)sequence, (unsigned long long)sequence) ||
        event_write_cstr(&b, time) || buf_puts(&b, ",\"session_id\":") ||
        event_write_cstr(&b, session_id) || buf_puts(&b, ",\"native_session_id\":"))
        goto fail;
    if (native_session_id ? event_write_cstr(&b, native_session_id) : buf_puts(&b, "null"))
        goto fail;
    if (buf_puts(&b, synthetic ? ",\"synthetic\":true,\"source\":"
                               : ",\"synthetic\":false,\"source\":") ||
        event_write_cstr(&b, source) || buf_puts(&b, ",\"type\":") ||
        event_write_cstr(&b, type) || buf_puts(&b, ",\"data\":") ||
        event_write_struct(&b, shape, data, NULL, 0) || buf_puts(&b, ",\"raw\":" EVENT_RAW_SUFFIX))
        goto fail;
    size_t len = b.len;
    char *s = buf_steal(&b);
    if (s && len_out)
        *len_out = len;
    return s;
fail:
    buf_free(&b);
    return NULL;
}

/* ---- predicates ------------------------------------------------------------ */

static int event_str_eq(const json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

int event_is_turn_end(const char *type, const json_t *data, int assistant_message_ends_turn)
{
    if (!type)
        return 0;
    if (strcmp(type, "session.ended") == 0 || strcmp(type, "error") == 0 ||
        strcmp(type, "agent.unparsed") == 0 || strcmp(type, "permission.requested") == 0 ||
        strcmp(type, "question.requested") == 0)
        return 1;
    if (strcmp(type, "item.completed") != 0)
        return 0;
    const json_t *item = json_object_get(data, "item");
    const json_t *kind = json_object_get(item, "kind");
    if (!json_is_object(item))
        return 0;
    if (event_str_eq(kind, "status")) {
        /* Only the first status part names the item's label. */
        const json_t *content = json_object_get(item, "content");
        for (size_t i = 0; i < json_array_size(content); i++) {
            const json_t *part = json_array_get(content, i);
            if (!event_str_eq(json_object_get(part, "type"), "status"))
                continue;
            const json_t *label = json_object_get(part, "label");
            if (event_str_eq(label, "turn.completed") || event_str_eq(label, "session.idle"))
                return 1;
            break;
        }
    }
    if (event_str_eq(json_object_get(item, "role"), "assistant") &&
        event_str_eq(kind, "message"))
        return assistant_message_ends_turn ? 1 : 0;
    return 0;
}

int event_type_is_valid(const char *type)
{
    return event_shape_for(type) != NULL;
}

void event_now(char out[32])
{
    struct timespec ts;
    struct tm tm;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm)) {
        snprintf(out, 32, "1970-01-01T00:00:00.000000Z");
        return;
    }
    /* Clamp so the text provably fits 32 bytes. */
    unsigned year = (unsigned)(tm.tm_year + 1900) % 10000u;
    snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%06uZ", year,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
             (unsigned)tm.tm_sec % 100u, (unsigned)(ts.tv_nsec / 1000) % 1000000u);
}
