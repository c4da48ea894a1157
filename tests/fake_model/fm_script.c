/* The scenario script: load, validate, normalize, pick.  See fm_script.h
 * for the canonical step form and README.md for the file format.
 *
 * A script has a "default" section and optionally one section per API
 * ("anthropic", "responses", "chat", "gemini").  A request uses its API's section if
 * the script has one, else the default section; each section has its own
 * cursor, so one fake can serve a Claude and a Codex session with separate
 * scripts.  Within a section the order of precedence is: rules (never
 * consumed), then the "count":"tools" filter (requests without tools get
 * the side reply), then the next step, then the "after" policy. */
#include "fm_script.h"

#include "fm_util.h"

#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FM_SCRIPT_MAX_BYTES (16L << 20)
#define FM_SCRIPT_MAX_CHUNKS 100000
#define FM_SCRIPT_MAX_DELAY_MS 3600000
#define FM_SCRIPT_WHERE 256

enum fm_script_after { FM_AFTER_FIXED, FM_AFTER_REPEAT_LAST, FM_AFTER_CYCLE };

struct fm_script_section {
    int present;
    json_t *steps; /* canonical steps */
    json_t *rules; /* [{"match":S,"api":S|null,"reply":STEP}] */
    json_t *after; /* canonical step (FM_AFTER_FIXED, or no steps to repeat) */
    json_t *side;  /* canonical step */
    enum fm_script_after after_mode;
    int count_tools;
    size_t next; /* guarded by fm_script.lock */
    /* "per_session": one cursor per x-session-id value instead of `next`
     * (OpenCode sends its session id there), guarded by fm_script.lock. */
    int per_session;
    json_t *cursors; /* {"<x-session-id>": next} */
};

/* Section 0 is the default one; API a uses section a + 1 when present. */
#define FM_SCRIPT_SECTIONS (FM_API_COUNT + 1)
static const char *const fm_script_section_names[FM_SCRIPT_SECTIONS] = {
    "default", "anthropic", "responses", "chat", "gemini"};

struct fm_script {
    pthread_mutex_t lock;
    struct fm_script_section sec[FM_SCRIPT_SECTIONS];
    json_t *models;
    unsigned long seq; /* guarded by lock */
};

/* Where load errors go. */
struct fm_script_ctx {
    char *err;
    size_t size;
};

const char *fm_script_api_name(enum fm_api api)
{
    return api < FM_API_COUNT ? fm_script_section_names[api + 1] : "unknown";
}

__attribute__((format(printf, 3, 4))) static int
fm_script_fail(struct fm_script_ctx *c, const char *where, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->size, "%s%s%s", where, *where ? ": " : "", msg);
    return -1;
}

static int fm_script_oom(struct fm_script_ctx *c, const char *where)
{
    return fm_script_fail(c, where, "out of memory");
}

/* Refuses keys outside `allowed` (NULL-terminated); "comment" is always
 * allowed so scripts can explain themselves. */
static int fm_script_check_keys(struct fm_script_ctx *c, const char *where, const json_t *obj,
                                const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value) {
        int ok = strcmp(key, "comment") == 0;
        (void)value;
        for (size_t i = 0; !ok && allowed[i]; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return fm_script_fail(c, where, "unknown key \"%s\"", key);
    }
    return 0;
}

/* Reads the optional integer `key` of `obj` within [min, max]. */
static int fm_script_int(struct fm_script_ctx *c, const char *where, const json_t *obj,
                         const char *key, long min, long max, long dflt, long *out /* OUT */)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fm_script_fail(c, where, "\"%s\" must be an integer in [%ld, %ld]", key, min, max);
    *out = (long)json_integer_value(v);
    return 0;
}

static int fm_script_set_int(struct fm_script_ctx *c, const char *where, json_t *obj,
                             const char *key, long value)
{
    if (json_object_set_new(obj, key, json_integer(value)) != 0)
        return fm_script_oom(c, where);
    return 0;
}

/* Checks every {{re:PATTERN}} in the strings of `v`: closed, and a valid
 * POSIX extended regular expression. */
static int fm_script_check_templates(struct fm_script_ctx *c, const char *where, const json_t *v)
{
    if (json_is_string(v)) {
        const char *p = json_string_value(v);
        const char *q;
        while ((q = strstr(p, "{{re:")) != NULL) {
            const char *end = strstr(q + 5, "}}");
            char *pattern;
            regex_t re;
            int rc;
            if (!end)
                return fm_script_fail(c, where, "unterminated {{re: template");
            pattern = strndup(q + 5, (size_t)(end - q - 5));
            if (!pattern)
                return fm_script_oom(c, where);
            rc = regcomp(&re, pattern, REG_EXTENDED);
            if (rc != 0) {
                char msg[160];
                regerror(rc, &re, msg, sizeof msg);
                fm_script_fail(c, where, "bad pattern \"%s\" in {{re:}}: %s", pattern, msg);
                free(pattern);
                return -1;
            }
            regfree(&re);
            free(pattern);
            p = end + 2;
        }
        return 0;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
            if (fm_script_check_templates(c, where, item) != 0)
                return -1;
    } else if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach((json_t *)v, key, item)
            if (fm_script_check_templates(c, where, item) != 0)
                return -1;
    }
    return 0;
}

/* Stores a text-like value (a string, or a non-empty array of strings that
 * are the exact deltas) in blk as "text" or "pieces". */
static int fm_script_textish(struct fm_script_ctx *c, const char *where, const char *key,
                             const json_t *v, json_t *blk)
{
    if (json_is_string(v)) {
        if (json_object_set_new(blk, "text", json_deep_copy(v)) != 0)
            return fm_script_oom(c, where);
        return 0;
    }
    if (json_is_array(v) && json_array_size(v) > 0) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
            if (!json_is_string(item))
                return fm_script_fail(c, where, "\"%s\" array must hold only strings", key);
        if (json_object_set_new(blk, "pieces", json_deep_copy(v)) != 0)
            return fm_script_oom(c, where);
        return 0;
    }
    return fm_script_fail(c, where, "\"%s\" must be a string or a non-empty array of strings",
                          key);
}

static int fm_script_opt_string(struct fm_script_ctx *c, const char *where, const json_t *in,
                                const char *key, int nonempty, json_t *out)
{
    const json_t *v = json_object_get(in, key);
    if (!v)
        return 0;
    if (!json_is_string(v) || (nonempty && json_string_length(v) == 0))
        return fm_script_fail(c, where, "\"%s\" must be a %sstring", key,
                              nonempty ? "non-empty " : "");
    if (json_object_set_new(out, key, json_deep_copy(v)) != 0)
        return fm_script_oom(c, where);
    return 0;
}

/* One block of a reply step (see fm_script.h for the canonical form).
 * new, or NULL with the reason in c. */
static json_t *fm_script_block(struct fm_script_ctx *c, const char *where, const json_t *in)
{
    static const char *const text_keys[] = {"type", "text", "chunks", NULL};
    static const char *const thinking_keys[] = {"type", "thinking", "text", "signature",
                                                "chunks", NULL};
    static const char *const tool_keys[] = {"type", "name", "id", "input", "arguments",
                                            "chunks", NULL};
    static const char *const custom_keys[] = {"type", "name", "id", "input", "chunks", NULL};
    const char *type = json_string_value(json_object_get(in, "type"));
    json_t *blk = json_object();
    long chunks;

    if (!blk) {
        fm_script_oom(c, where);
        return NULL;
    }
    if (!json_is_object(in) || !type) {
        fm_script_fail(c, where, "a block must be an object with a string \"type\"");
        goto fail;
    }
    if (strcmp(type, "text") == 0) {
        const json_t *text = json_object_get(in, "text");
        if (fm_script_check_keys(c, where, in, text_keys) != 0)
            goto fail;
        if (!text) {
            fm_script_fail(c, where, "a text block needs \"text\"");
            goto fail;
        }
        if (json_object_set_new(blk, "type", json_string("text")) != 0 ||
            fm_script_textish(c, where, "text", text, blk) != 0 ||
            fm_script_int(c, where, in, "chunks", 1, FM_SCRIPT_MAX_CHUNKS, 3, &chunks) != 0 ||
            fm_script_set_int(c, where, blk, "chunks", chunks) != 0)
            goto fail;
    } else if (strcmp(type, "thinking") == 0 || strcmp(type, "reasoning") == 0) {
        const json_t *text = json_object_get(in, "thinking");
        if (fm_script_check_keys(c, where, in, thinking_keys) != 0)
            goto fail;
        if (!text == !json_object_get(in, "text")) {
            fm_script_fail(c, where,
                           "a thinking block needs exactly one of \"thinking\", \"text\"");
            goto fail;
        }
        if (!text)
            text = json_object_get(in, "text");
        if (json_object_set_new(blk, "type", json_string("thinking")) != 0 ||
            fm_script_textish(c, where, "thinking", text, blk) != 0 ||
            fm_script_opt_string(c, where, in, "signature", 0, blk) != 0 ||
            fm_script_int(c, where, in, "chunks", 1, FM_SCRIPT_MAX_CHUNKS, 2, &chunks) != 0 ||
            fm_script_set_int(c, where, blk, "chunks", chunks) != 0)
            goto fail;
    } else if (strcmp(type, "tool_use") == 0 || strcmp(type, "tool_call") == 0 ||
               strcmp(type, "function_call") == 0) {
        const json_t *input = json_object_get(in, "input");
        const json_t *args = json_object_get(in, "arguments");
        if (fm_script_check_keys(c, where, in, tool_keys) != 0)
            goto fail;
        if (!json_is_string(json_object_get(in, "name")) ||
            json_string_length(json_object_get(in, "name")) == 0) {
            fm_script_fail(c, where, "a tool block needs a non-empty string \"name\"");
            goto fail;
        }
        if (input && args) {
            fm_script_fail(c, where, "give \"input\" or \"arguments\", not both");
            goto fail;
        }
        if (args && !json_is_string(args) && !json_is_object(args)) {
            fm_script_fail(c, where, "\"arguments\" must be an object or a JSON text string");
            goto fail;
        }
        if (json_object_set_new(blk, "type", json_string("tool")) != 0 ||
            fm_script_opt_string(c, where, in, "name", 1, blk) != 0 ||
            fm_script_opt_string(c, where, in, "id", 1, blk) != 0)
            goto fail;
        if (args && json_is_string(args)) {
            if (json_object_set_new(blk, "arguments", json_deep_copy(args)) != 0)
                goto oom;
        } else {
            const json_t *value = args ? args : input;
            json_t *copy = value ? json_deep_copy(value) : json_object();
            if (json_object_set_new(blk, "input", copy) != 0)
                goto oom;
        }
        if (fm_script_int(c, where, in, "chunks", 1, FM_SCRIPT_MAX_CHUNKS, 2, &chunks) != 0 ||
            fm_script_set_int(c, where, blk, "chunks", chunks) != 0)
            goto fail;
    } else if (strcmp(type, "custom_tool_call") == 0) {
        if (fm_script_check_keys(c, where, in, custom_keys) != 0)
            goto fail;
        if (!json_is_string(json_object_get(in, "name")) ||
            !json_is_string(json_object_get(in, "input"))) {
            fm_script_fail(c, where, "a custom_tool_call needs string \"name\" and \"input\"");
            goto fail;
        }
        if (json_object_set_new(blk, "type", json_string("custom")) != 0 ||
            fm_script_opt_string(c, where, in, "name", 1, blk) != 0 ||
            fm_script_opt_string(c, where, in, "input", 0, blk) != 0 ||
            fm_script_opt_string(c, where, in, "id", 1, blk) != 0 ||
            fm_script_int(c, where, in, "chunks", 1, FM_SCRIPT_MAX_CHUNKS, 2, &chunks) != 0 ||
            fm_script_set_int(c, where, blk, "chunks", chunks) != 0)
            goto fail;
    } else {
        fm_script_fail(c, where,
                       "unknown block type \"%s\" (text, thinking, tool_use, custom_tool_call)",
                       type);
        goto fail;
    }
    return blk;
oom:
    fm_script_oom(c, where);
fail:
    json_decref(blk);
    return NULL;
}

/* 1 if `name` is an HTTP token (RFC 9110 tchar+). */
static int fm_script_is_token(const char *name)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (!*name)
        return 0;
    for (const char *p = name; *p; p++) {
        char ch = *p;
        int alnum = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= 'A' && ch <= 'Z');
        if (!alnum && !strchr(extra, ch))
            return 0;
    }
    return 1;
}

static int fm_script_add_header(struct fm_script_ctx *c, const char *where, json_t *headers,
                                const char *name, const char *value)
{
    if (!fm_script_is_token(name))
        return fm_script_fail(c, where, "bad header name \"%s\"", name);
    if (strpbrk(value, "\r\n"))
        return fm_script_fail(c, where, "header \"%s\" has a line break", name);
    if (json_object_set_new(headers, name, json_string(value)) != 0)
        return fm_script_oom(c, where);
    return 0;
}

/* The "error" object of an error step.  new, or NULL. */
static json_t *fm_script_error(struct fm_script_ctx *c, const char *where, const json_t *in)
{
    static const char *const keys[] = {"status", "type", "message", "code", "headers",
                                       "should_retry", "retry_after", "body", NULL};
    json_t *out = json_object();
    json_t *headers = json_object();
    const json_t *v;
    long status;

    if (!out || !headers) {
        fm_script_oom(c, where);
        goto fail;
    }
    if (!json_is_object(in)) {
        fm_script_fail(c, where, "\"error\" must be an object");
        goto fail;
    }
    if (fm_script_check_keys(c, where, in, keys) != 0 ||
        fm_script_int(c, where, in, "status", 400, 599, 500, &status) != 0 ||
        fm_script_set_int(c, where, out, "status", status) != 0 ||
        fm_script_opt_string(c, where, in, "type", 1, out) != 0)
        goto fail;
    v = json_object_get(in, "message");
    if (v && !json_is_string(v)) {
        fm_script_fail(c, where, "\"message\" must be a string");
        goto fail;
    }
    if (json_object_set_new(out, "message",
                            v ? json_deep_copy(v) : json_string("scripted error")) != 0)
        goto oom;
    v = json_object_get(in, "code");
    if (v && !json_is_string(v) && !json_is_null(v)) {
        fm_script_fail(c, where, "\"code\" must be a string or null");
        goto fail;
    }
    if (v && json_object_set_new(out, "code", json_deep_copy(v)) != 0)
        goto oom;
    v = json_object_get(in, "headers");
    if (v) {
        const char *name;
        json_t *value;
        if (!json_is_object(v)) {
            fm_script_fail(c, where, "\"headers\" must be an object of strings");
            goto fail;
        }
        json_object_foreach((json_t *)v, name, value) {
            if (!json_is_string(value)) {
                fm_script_fail(c, where, "header \"%s\" must be a string", name);
                goto fail;
            }
            if (fm_script_add_header(c, where, headers, name, json_string_value(value)) != 0)
                goto fail;
        }
    }
    v = json_object_get(in, "should_retry");
    if (v) {
        if (!json_is_boolean(v)) {
            fm_script_fail(c, where, "\"should_retry\" must be true or false");
            goto fail;
        }
        if (fm_script_add_header(c, where, headers, "x-should-retry",
                                 json_is_true(v) ? "true" : "false") != 0)
            goto fail;
    }
    v = json_object_get(in, "retry_after");
    if (v) {
        char num[32];
        if (json_is_integer(v) && json_integer_value(v) >= 0)
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        else if (json_is_string(v) && json_string_length(v) < sizeof num)
            snprintf(num, sizeof num, "%s", json_string_value(v));
        else {
            fm_script_fail(c, where, "\"retry_after\" must be seconds or a short string");
            goto fail;
        }
        if (fm_script_add_header(c, where, headers, "retry-after", num) != 0)
            goto fail;
    }
    if (json_object_set(out, "headers", headers) != 0)
        goto oom;
    v = json_object_get(in, "body");
    if (v && json_object_set_new(out, "body", json_deep_copy(v)) != 0)
        goto oom;
    json_decref(headers);
    return out;
oom:
    fm_script_oom(c, where);
fail:
    json_decref(headers);
    json_decref(out);
    return NULL;
}

/* Appends shortcut blocks ("thinking", "text" or "tool") built from the
 * user's value to `blocks`.  A step-level "chunks" applies to each of
 * them; a tool object's own "chunks" wins. */
static int fm_script_shortcut(struct fm_script_ctx *c, const char *where, const json_t *in,
                              const char *key, json_t *blocks)
{
    const json_t *v = json_object_get(in, key);
    json_t *blk, *src;
    if (!v)
        return 0;
    if (strcmp(key, "tool") == 0) {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        if (!json_is_array(v) && !json_is_object(v))
            return fm_script_fail(c, where, "\"tool\" must be an object or an array of them");
        for (size_t i = 0; i < n; i++) {
            const json_t *t = json_is_array(v) ? json_array_get(v, i) : v;
            if (!json_is_object(t))
                return fm_script_fail(c, where, "\"tool\" must be an object or an array of them");
            src = json_deep_copy(t);
            if (src && json_object_get(in, "chunks") && !json_object_get(t, "chunks") &&
                json_object_set(src, "chunks", json_object_get(in, "chunks")) != 0) {
                json_decref(src);
                return fm_script_oom(c, where);
            }
            if (!src || json_object_set_new(src, "type", json_string("tool_use")) != 0) {
                json_decref(src);
                return fm_script_oom(c, where);
            }
            blk = fm_script_block(c, where, src);
            json_decref(src);
            if (!blk || json_array_append_new(blocks, blk) != 0)
                return blk ? fm_script_oom(c, where) : -1;
        }
        return 0;
    }
    src = json_pack("{s:s,s:O}", "type", key, key, v);
    if (!src)
        return fm_script_oom(c, where);
    if (json_object_get(in, "chunks") &&
        json_object_set(src, "chunks", json_object_get(in, "chunks")) != 0) {
        json_decref(src);
        return fm_script_oom(c, where);
    }
    blk = fm_script_block(c, where, src);
    json_decref(src);
    if (!blk)
        return -1;
    if (json_array_append_new(blocks, blk) != 0)
        return fm_script_oom(c, where);
    return 0;
}

/* One step, normalized.  `allow_match`: the step sits in "steps", where a
 * "match" condition makes sense.  new, or NULL. */
static json_t *fm_script_step(struct fm_script_ctx *c, const char *where, const json_t *in,
                              long chunk_delay_default, int allow_match)
{
    static const char *const reply_keys[] = {
        "text", "chunks", "thinking", "tool", "blocks", "stop_reason", "stream_error",
        "disconnect", "delay_ms", "chunk_delay_ms", "match", NULL};
    static const char *const error_keys[] = {"error", "delay_ms", "match", NULL};
    static const char *const stream_error_keys[] = {"type", "message", NULL};
    json_t *out = json_object();
    long delay, chunk_delay;
    const json_t *v;

    if (!out) {
        fm_script_oom(c, where);
        return NULL;
    }
    if (!json_is_object(in)) {
        fm_script_fail(c, where, "a step must be an object");
        goto fail;
    }
    if (!allow_match && json_object_get(in, "match")) {
        fm_script_fail(c, where, "\"match\" is only allowed on entries of \"steps\"");
        goto fail;
    }
    if (fm_script_int(c, where, in, "delay_ms", 0, FM_SCRIPT_MAX_DELAY_MS, 0, &delay) != 0 ||
        fm_script_set_int(c, where, out, "delay_ms", delay) != 0 ||
        fm_script_opt_string(c, where, in, "match", 1, out) != 0)
        goto fail;

    if (json_object_get(in, "error")) {
        json_t *err;
        if (fm_script_check_keys(c, where, in, error_keys) != 0)
            goto fail;
        err = fm_script_error(c, where, json_object_get(in, "error"));
        if (!err || json_object_set_new(out, "error", err) != 0) {
            if (err)
                fm_script_oom(c, where);
            goto fail;
        }
    } else {
        json_t *blocks = json_array();
        if (!blocks || json_object_set_new(out, "blocks", blocks) != 0) {
            fm_script_oom(c, where);
            goto fail;
        }
        if (fm_script_check_keys(c, where, in, reply_keys) != 0)
            goto fail;
        v = json_object_get(in, "blocks");
        if (v) {
            size_t i;
            json_t *item;
            if (json_object_get(in, "text") || json_object_get(in, "thinking") ||
                json_object_get(in, "tool") || json_object_get(in, "chunks")) {
                fm_script_fail(c, where,
                               "\"blocks\" cannot be combined with text/thinking/tool/chunks");
                goto fail;
            }
            if (!json_is_array(v)) {
                fm_script_fail(c, where, "\"blocks\" must be an array");
                goto fail;
            }
            json_array_foreach(v, i, item) {
                char at[FM_SCRIPT_WHERE];
                json_t *blk;
                snprintf(at, sizeof at, "%s.blocks[%zu]", where, i);
                blk = fm_script_block(c, at, item);
                if (!blk)
                    goto fail;
                if (json_array_append_new(blocks, blk) != 0) {
                    fm_script_oom(c, where);
                    goto fail;
                }
            }
        } else {
            /* Shortcuts build blocks in the order a model emits them. */
            if (fm_script_shortcut(c, where, in, "thinking", blocks) != 0 ||
                fm_script_shortcut(c, where, in, "text", blocks) != 0 ||
                fm_script_shortcut(c, where, in, "tool", blocks) != 0)
                goto fail;
            if (json_array_size(blocks) == 0) {
                fm_script_fail(c, where,
                               "a step needs \"text\", \"thinking\", \"tool\", \"blocks\" or "
                               "\"error\"");
                goto fail;
            }
        }
        if (fm_script_opt_string(c, where, in, "stop_reason", 1, out) != 0 ||
            fm_script_int(c, where, in, "chunk_delay_ms", 0, FM_SCRIPT_MAX_DELAY_MS,
                          chunk_delay_default, &chunk_delay) != 0 ||
            fm_script_set_int(c, where, out, "chunk_delay_ms", chunk_delay) != 0)
            goto fail;
        v = json_object_get(in, "disconnect");
        if (v && !json_is_boolean(v)) {
            fm_script_fail(c, where, "\"disconnect\" must be true or false");
            goto fail;
        }
        if (json_is_true(v) && json_object_set_new(out, "disconnect", json_true()) != 0) {
            fm_script_oom(c, where);
            goto fail;
        }
        v = json_object_get(in, "stream_error");
        if (v) {
            json_t *se = json_object();
            if (!se || json_object_set_new(out, "stream_error", se) != 0) {
                fm_script_oom(c, where);
                goto fail;
            }
            if (!json_is_object(v)) {
                fm_script_fail(c, where, "\"stream_error\" must be an object");
                goto fail;
            }
            if (fm_script_check_keys(c, where, v, stream_error_keys) != 0 ||
                fm_script_opt_string(c, where, v, "type", 1, se) != 0 ||
                fm_script_opt_string(c, where, v, "message", 0, se) != 0)
                goto fail;
            if (json_is_true(json_object_get(out, "disconnect"))) {
                fm_script_fail(c, where, "\"stream_error\" and \"disconnect\" exclude each other");
                goto fail;
            }
        }
    }
    if (fm_script_check_templates(c, where, out) != 0)
        goto fail;
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* A reply step holding just `text`: the built-in "side" and "after". */
static json_t *fm_script_default_step(struct fm_script_ctx *c, const char *text)
{
    json_t *in = json_pack("{s:s}", "text", text);
    json_t *out;
    if (!in) {
        fm_script_oom(c, "");
        return NULL;
    }
    out = fm_script_step(c, "", in, 0, 0);
    json_decref(in);
    return out;
}

static void fm_script_section_clear(struct fm_script_section *sec)
{
    json_decref(sec->steps);
    json_decref(sec->rules);
    json_decref(sec->after);
    json_decref(sec->side);
    json_decref(sec->cursors);
    memset(sec, 0, sizeof *sec);
}

static int fm_script_section_load(struct fm_script_ctx *c, const char *name, const json_t *in,
                                  int top, struct fm_script_section *sec)
{
    static const char *const top_keys[] = {"steps", "after", "rules", "count", "side",
                                           "chunk_delay_ms", "anthropic", "responses", "chat",
                                           "gemini",
                                           "models", "per_session", NULL};
    static const char *const sub_keys[] = {"steps", "after", "rules", "count", "side",
                                           "chunk_delay_ms", "per_session", NULL};
    static const char *const rule_keys[] = {"match", "api", "reply", NULL};
    char at[FM_SCRIPT_WHERE];
    const char *prefix = top ? "" : name;
    const char *dot = top ? "" : ".";
    const json_t *v;
    long chunk_delay;
    size_t i;
    json_t *item;

    if (!json_is_object(in))
        return fm_script_fail(c, prefix, "a script must be a JSON object");
    if (fm_script_check_keys(c, prefix, in, top ? top_keys : sub_keys) != 0 ||
        fm_script_int(c, prefix, in, "chunk_delay_ms", 0, FM_SCRIPT_MAX_DELAY_MS, 0,
                      &chunk_delay) != 0)
        return -1;
    sec->present = 1;
    sec->steps = json_array();
    sec->rules = json_array();
    if (!sec->steps || !sec->rules)
        return fm_script_oom(c, prefix);

    v = json_object_get(in, "steps");
    if (v && !json_is_array(v))
        return fm_script_fail(c, prefix, "\"steps\" must be an array");
    json_array_foreach(v, i, item) {
        json_t *step;
        snprintf(at, sizeof at, "%s%ssteps[%zu]", prefix, dot, i);
        step = fm_script_step(c, at, item, chunk_delay, 1);
        if (!step)
            return -1;
        if (json_array_append_new(sec->steps, step) != 0)
            return fm_script_oom(c, at);
    }

    v = json_object_get(in, "rules");
    if (v && !json_is_array(v))
        return fm_script_fail(c, prefix, "\"rules\" must be an array");
    json_array_foreach(v, i, item) {
        const json_t *match = json_object_get(item, "match");
        const json_t *api = json_object_get(item, "api");
        json_t *reply, *rule;
        snprintf(at, sizeof at, "%s%srules[%zu]", prefix, dot, i);
        if (!json_is_object(item))
            return fm_script_fail(c, at, "a rule must be an object");
        if (fm_script_check_keys(c, at, item, rule_keys) != 0)
            return -1;
        if (!json_is_string(match) || json_string_length(match) == 0)
            return fm_script_fail(c, at, "a rule needs a non-empty string \"match\"");
        if (api && !(json_is_string(api) && (strcmp(json_string_value(api), "anthropic") == 0 ||
                                             strcmp(json_string_value(api), "responses") == 0 ||
                                             strcmp(json_string_value(api), "chat") == 0 ||
                                             strcmp(json_string_value(api), "gemini") == 0)))
            return fm_script_fail(c, at,
                                  "\"api\" must be \"anthropic\", \"responses\", \"chat\" "
                                  "or \"gemini\"");
        if (!json_object_get(item, "reply"))
            return fm_script_fail(c, at, "a rule needs \"reply\"");
        snprintf(at, sizeof at, "%s%srules[%zu].reply", prefix, dot, i);
        reply = fm_script_step(c, at, json_object_get(item, "reply"), chunk_delay, 0);
        if (!reply)
            return -1;
        rule = json_pack("{s:O,s:O,s:o}", "match", match, "api", api ? api : json_null(),
                         "reply", reply);
        if (!rule || json_array_append_new(sec->rules, rule) != 0)
            return fm_script_oom(c, at);
    }

    v = json_object_get(in, "count");
    if (v && !(json_is_string(v) && (strcmp(json_string_value(v), "all") == 0 ||
                                     strcmp(json_string_value(v), "tools") == 0)))
        return fm_script_fail(c, prefix, "\"count\" must be \"all\" or \"tools\"");
    sec->count_tools = v && strcmp(json_string_value(v), "tools") == 0;

    v = json_object_get(in, "per_session");
    if (v && !json_is_boolean(v))
        return fm_script_fail(c, prefix, "\"per_session\" must be true or false");
    sec->per_session = json_is_true(v);
    if (sec->per_session && !(sec->cursors = json_object()))
        return fm_script_oom(c, prefix);

    snprintf(at, sizeof at, "%s%sside", prefix, dot);
    v = json_object_get(in, "side");
    sec->side = v ? fm_script_step(c, at, v, chunk_delay, 0)
                  : fm_script_default_step(c, "Side answer.");
    if (!sec->side)
        return -1;

    snprintf(at, sizeof at, "%s%safter", prefix, dot);
    v = json_object_get(in, "after");
    sec->after_mode = FM_AFTER_FIXED;
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "repeat_last") == 0)
            sec->after_mode = FM_AFTER_REPEAT_LAST;
        else if (strcmp(json_string_value(v), "cycle") == 0)
            sec->after_mode = FM_AFTER_CYCLE;
        else
            return fm_script_fail(c, at, "must be \"repeat_last\", \"cycle\" or a step");
        v = NULL;
    }
    /* Even "repeat_last" keeps a fixed step for a script without steps. */
    sec->after = v ? fm_script_step(c, at, v, chunk_delay, 0)
                   : fm_script_default_step(c, "Script exhausted.");
    if (!sec->after)
        return -1;
    return 0;
}

fm_script_t *fm_script_load(const char *path, char *err, size_t size)
{
    struct fm_script_ctx c = {.err = err, .size = size};
    fm_script_t *s = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    struct stat st;
    const json_t *models;

    if (stat(path, &st) != 0) {
        snprintf(err, size, "%s: cannot stat the script", path);
        return NULL;
    }
    if (st.st_size > FM_SCRIPT_MAX_BYTES) {
        snprintf(err, size, "%s: script larger than %ld bytes", path, FM_SCRIPT_MAX_BYTES);
        return NULL;
    }
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, size, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, size, "out of memory");
        goto fail;
    }
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        snprintf(err, size, "cannot create a mutex");
        free(s);
        s = NULL;
        goto fail;
    }
    if (fm_script_section_load(&c, "default", root, 1, &s->sec[0]) != 0)
        goto fail;
    for (int i = 1; i < FM_SCRIPT_SECTIONS; i++) {
        const json_t *sub = json_object_get(root, fm_script_section_names[i]);
        if (sub && fm_script_section_load(&c, fm_script_section_names[i], sub, 0, &s->sec[i]) != 0)
            goto fail;
    }
    models = json_object_get(root, "models");
    if (models) {
        size_t i;
        json_t *item;
        if (!json_is_array(models) || json_array_size(models) == 0) {
            fm_script_fail(&c, "models", "must be a non-empty array of strings");
            goto fail;
        }
        json_array_foreach(models, i, item)
            if (!json_is_string(item) || json_string_length(item) == 0) {
                fm_script_fail(&c, "models", "must be a non-empty array of strings");
                goto fail;
            }
        s->models = json_deep_copy(models);
    } else {
        s->models = json_pack("[s]", "fake-model");
    }
    if (!s->models) {
        snprintf(err, size, "out of memory");
        goto fail;
    }
    json_decref(root);
    return s;
fail:
    json_decref(root);
    fm_script_free(s);
    return NULL;
}

void fm_script_free(fm_script_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < FM_SCRIPT_SECTIONS; i++)
        fm_script_section_clear(&s->sec[i]);
    json_decref(s->models);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* new (malloc): `s` with each {{re:PATTERN}} replaced by group 1 of the
 * first match of PATTERN in `raw` (the whole match when the pattern has no
 * group; "" when nothing matches).  The patterns were checked at load. */
static char *fm_script_fill(const char *s, const char *raw)
{
    struct fm_util_buf b = {0};
    const char *p = s;
    const char *q;

    while ((q = strstr(p, "{{re:")) != NULL) {
        const char *end = strstr(q + 5, "}}");
        char *pattern;
        regex_t re;
        regmatch_t m[2];
        if (!end)
            break;
        if (fm_util_buf_append(&b, p, (size_t)(q - p), 0) != 0)
            goto fail;
        pattern = strndup(q + 5, (size_t)(end - q - 5));
        if (!pattern)
            goto fail;
        if (regcomp(&re, pattern, REG_EXTENDED) == 0) {
            if (regexec(&re, raw, 2, m, 0) == 0) {
                int g = re.re_nsub >= 1 && m[1].rm_so >= 0 ? 1 : 0;
                size_t len = (size_t)(m[g].rm_eo - m[g].rm_so);
                /* The body is raw bytes; keep the value valid UTF-8. */
                char *clean = fm_util_sanitize(raw + m[g].rm_so, len);
                int rc = clean ? fm_util_buf_append(&b, clean, len, 0) : -1;
                free(clean);
                if (rc != 0) {
                    regfree(&re);
                    free(pattern);
                    goto fail;
                }
            }
            regfree(&re);
        }
        free(pattern);
        p = end + 2;
    }
    if (fm_util_buf_append(&b, p, strlen(p), 0) != 0)
        goto fail;
    return b.data;
fail:
    fm_util_buf_free(&b);
    return NULL;
}

/* Fills the templates in every string of `v` in place. */
static int fm_script_expand(json_t *v, const char *raw)
{
    if (json_is_string(v)) {
        char *filled;
        int rc;
        if (!strstr(json_string_value(v), "{{re:"))
            return 0;
        filled = fm_script_fill(json_string_value(v), raw);
        if (!filled)
            return -1;
        rc = json_string_set(v, filled);
        free(filled);
        return rc;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
            if (fm_script_expand(item, raw) != 0)
                return -1;
    } else if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach(v, key, item)
            if (fm_script_expand(item, raw) != 0)
                return -1;
    }
    return 0;
}

static int fm_script_has_tools(const json_t *body)
{
    const json_t *tools = json_object_get(body, "tools");
    return json_is_array(tools) && json_array_size(tools) > 0;
}

int fm_script_pick(fm_script_t *s, enum fm_api api, const char *raw, const json_t *body,
                   const char *session, struct fm_script_choice *out)
{
    int si = api < FM_API_COUNT && s->sec[api + 1].present ? (int)api + 1 : 0;
    struct fm_script_section *sec = &s->sec[si];
    const json_t *step = NULL;
    const char *kind = "after";
    long index = -1;
    unsigned long seq;
    json_t *copy;
    size_t n = json_array_size(sec->steps);

    const char *key = session ? session : "";
    size_t next;

    pthread_mutex_lock(&s->lock);
    next = sec->per_session ? (size_t)json_integer_value(json_object_get(sec->cursors, key))
                            : sec->next;
    seq = ++s->seq;
    for (size_t i = 0; i < json_array_size(sec->rules); i++) {
        const json_t *rule = json_array_get(sec->rules, i);
        const char *rule_api = json_string_value(json_object_get(rule, "api"));
        if (rule_api && strcmp(rule_api, fm_script_api_name(api)) != 0)
            continue;
        if (strstr(raw, json_string_value(json_object_get(rule, "match")))) {
            step = json_object_get(rule, "reply");
            kind = "rule";
            index = (long)i;
            break;
        }
    }
    if (!step && sec->count_tools && !fm_script_has_tools(body)) {
        step = sec->side;
        kind = "side";
    }
    if (!step && next < n) {
        const json_t *candidate = json_array_get(sec->steps, next);
        const char *match = json_string_value(json_object_get(candidate, "match"));
        if (match && !strstr(raw, match)) {
            /* The script is waiting for something this request lacks. */
            step = sec->side;
            kind = "side";
        } else {
            step = candidate;
            kind = "step";
            index = (long)next++;
        }
    }
    if (!step) {
        if (sec->after_mode == FM_AFTER_REPEAT_LAST && n > 0) {
            index = (long)n - 1;
            step = json_array_get(sec->steps, n - 1);
        } else if (sec->after_mode == FM_AFTER_CYCLE && n > 0) {
            index = (long)(next++ % n);
            step = json_array_get(sec->steps, (size_t)index);
        } else {
            step = sec->after;
        }
    }
    copy = json_deep_copy(step);
    if (sec->per_session) {
        if (json_object_set_new(sec->cursors, key, json_integer((json_int_t)next)) != 0) {
            json_decref(copy);
            copy = NULL;
        }
    } else {
        sec->next = next;
    }
    pthread_mutex_unlock(&s->lock);

    if (!copy || fm_script_expand(copy, raw) != 0) {
        json_decref(copy);
        return -1;
    }
    out->step = copy;
    out->kind = kind;
    out->index = index;
    out->section = fm_script_section_names[si];
    out->seq = seq;
    return 0;
}

void fm_script_reset(fm_script_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->seq = 0;
    for (int i = 0; i < FM_SCRIPT_SECTIONS; i++) {
        s->sec[i].next = 0;
        if (s->sec[i].cursors)
            json_object_clear(s->sec[i].cursors);
    }
    pthread_mutex_unlock(&s->lock);
}

json_t *fm_script_state(fm_script_t *s)
{
    json_t *sections = json_object();
    json_t *out;
    if (!sections)
        return NULL;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < FM_SCRIPT_SECTIONS; i++) {
        if (!s->sec[i].present)
            continue;
        json_t *st = json_pack("{s:I,s:I}", "next", (json_int_t)s->sec[i].next, "steps",
                               (json_int_t)json_array_size(s->sec[i].steps));
        if (st && s->sec[i].per_session &&
            json_object_set_new(st, "sessions", json_deep_copy(s->sec[i].cursors)) != 0) {
            json_decref(st);
            st = NULL;
        }
        if (!st || json_object_set_new(sections, fm_script_section_names[i], st) != 0) {
            pthread_mutex_unlock(&s->lock);
            json_decref(sections);
            return NULL;
        }
    }
    out = json_pack("{s:I,s:o}", "model_requests", (json_int_t)s->seq, "sections", sections);
    pthread_mutex_unlock(&s->lock);
    return out;
}

const json_t *fm_script_models(const fm_script_t *s)
{
    return s->models;
}
