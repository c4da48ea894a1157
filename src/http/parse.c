#include "http/parse.h"

#include "events/event.h"

#include <stdlib.h>
#include <string.h>

static int parse_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *parse_percent_decode(const char *s, size_t len, int plus_is_space, struct err *err)
{
    char *out = malloc(len + 1);
    if (!out) {
        err_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < len ? parse_hex((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < len ? parse_hex((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                err_set(err, ERR_INVALID, "invalid request: malformed percent-encoding");
                return NULL;
            }
            c = hi * 16 + lo;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == 0) {
            free(out);
            err_set(err, ERR_INVALID, "invalid request: encoded NUL byte");
            return NULL;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return out;
}

int parse_u64(const char *name, const char *text, uint64_t *out, struct err *err)
{
    size_t len = strlen(text);
    uint64_t n = 0;
    int ok = len > 0 && len <= 19;
    for (size_t i = 0; ok && i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            ok = 0;
        else
            n = n * 10 + (uint64_t)(text[i] - '0');
    }
    if (!ok || n > (uint64_t)INT64_MAX)
        return err_set(err, ERR_INVALID,
                       "invalid request: %s must be an integer from 0 to 9223372036854775807",
                       name);
    *out = n;
    return 0;
}

int parse_header_u64(const char *name, const char *text, uint64_t *out, struct err *err)
{
    size_t len = strlen(text);
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    while (len && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    char digits[24];
    if (len >= sizeof digits) /* longer than any number parse_u64 takes */
        len = sizeof digits - 1;
    memcpy(digits, text, len);
    digits[len] = '\0';
    return parse_u64(name, digits, out, err);
}

int parse_bool(const char *name, const char *text, int *out, struct err *err)
{
    if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
        *out = 1;
    else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
        *out = 0;
    else
        return err_set(err, ERR_INVALID, "invalid request: %s must be true or false", name);
    return 0;
}

size_t parse_utf8_char(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    if (len == 0)
        return 0;
    if (u[0] < 0x80)
        return 1;
    size_t n;
    unsigned cp;
    if (u[0] >= 0xC2 && u[0] <= 0xDF) {
        n = 2;
        cp = u[0] & 0x1Fu;
    } else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
        n = 3;
        cp = u[0] & 0x0Fu;
    } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
        n = 4;
        cp = u[0] & 0x07u;
    } else {
        return 0; /* a continuation byte, an overlong lead (C0, C1) or past F4 */
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (u[i] & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

int parse_session_id(const char *id, struct err *err)
{
    size_t len = strlen(id);
    if (len == 0 || len > 255)
        return err_set(err, ERR_INVALID,
                       "invalid request: session id must be 1 to 255 bytes long");
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return err_set(err, ERR_INVALID,
                           "invalid request: session id must not contain control characters");
    /* Every event carries the id in its JSON text, which must be UTF-8. */
    for (size_t i = 0, n; i < len; i += n)
        if (!(n = parse_utf8_char(id + i, len - i)))
            return err_set(err, ERR_INVALID,
                           "invalid request: session id must be valid UTF-8");
    return 0;
}

int parse_body_object(const char *body, size_t len, json_t **out, struct err *err)
{
    json_error_t jerr;
    json_t *v = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v && event_json_load_nomem(&jerr, body ? body : "", len))
        return err_set(err, ERR_NOMEM, "out of memory reading the request body");
    if (!v)
        return err_set(err, ERR_INVALID,
                       "invalid request: body is not valid JSON: %s (at byte %d)", jerr.text,
                       jerr.position);
    if (!json_is_object(v)) {
        json_decref(v);
        return err_set(err, ERR_INVALID, "invalid request: body must be a JSON object");
    }
    *out = v;
    return 0;
}

int parse_opt_string(const json_t *obj, const char *key, const char **out, struct err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return err_set(err, ERR_INVALID, "invalid request: %s must be a string", key);
    *out = json_string_value(v);
    return 0;
}

int parse_req_string(const json_t *obj, const char *key, const char **out, struct err *err)
{
    int rc = parse_opt_string(obj, key, out, err);
    if (rc == 0 && !*out)
        rc = err_set(err, ERR_INVALID, "invalid request: missing field `%s`", key);
    return rc;
}

int parse_permission_reply(const json_t *body, const char **reply, struct err *err)
{
    int rc = parse_req_string(body, "reply", reply, err);
    if (rc == 0 && strcmp(*reply, "once") != 0 && strcmp(*reply, "always") != 0 &&
        strcmp(*reply, "reject") != 0)
        rc = err_set(err, ERR_INVALID,
                     "invalid request: reply must be \"once\", \"always\" or \"reject\"");
    return rc;
}

int parse_question_answers(const json_t *body, const json_t **answers, struct err *err)
{
    const json_t *a = json_object_get(body, "answers");
    if (!a)
        return err_set(err, ERR_INVALID, "invalid request: missing field `answers`");
    if (!json_is_array(a))
        return err_set(err, ERR_INVALID,
                       "invalid request: answers must be an array of arrays of strings");
    size_t i, k;
    const json_t *inner, *v;
    json_array_foreach(a, i, inner) {
        if (!json_is_array(inner))
            return err_set(err, ERR_INVALID, "invalid request: answers[%zu] must be an array",
                           i);
        json_array_foreach(inner, k, v) {
            if (!json_is_string(v))
                return err_set(err, ERR_INVALID,
                               "invalid request: answers[%zu][%zu] must be a string", i, k);
        }
    }
    *answers = a;
    return 0;
}

int parse_install_request(const char *body, size_t len, int *reinstall, struct err *err)
{
    *reinstall = 0;
    if (len == 0)
        return 0;
    json_t *obj;
    int rc = parse_body_object(body, len, &obj, err);
    if (rc)
        return rc;
    json_t *v = json_object_get(obj, "reinstall");
    if (v && !json_is_null(v)) {
        if (json_is_boolean(v))
            *reinstall = json_is_true(v);
        else
            rc = err_set(err, ERR_INVALID, "invalid request: reinstall must be a boolean");
    }
    json_decref(obj);
    return rc;
}
