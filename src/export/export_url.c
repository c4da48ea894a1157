/* Export target URLs; see export_url.h. */
#include "export/export_url.h"

#include "base/buf.h"
#include "base/err.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define EXPORT_URL_MASK "***"
#define EXPORT_URL_CH_HTTP_PORT 8123
#define EXPORT_URL_CH_HTTPS_PORT 8443

/* ---- masking -------------------------------------------------------------- */

/* Appends s[0..n) to out[size] at *pos, truncating; out stays terminated. */
static void export_url_put(char *out, size_t size, size_t *pos, const char *s, size_t n)
{
    if (*pos + 1 >= size)
        return;
    size_t room = size - 1 - *pos;
    if (n > room)
        n = room;
    memcpy(out + *pos, s, n);
    *pos += n;
    out[*pos] = '\0';
}

/* 1 if text[i] starts a "password=" parameter: at the start, after '?',
 * '&' or whitespace (libpq's key=value strings too). */
static int export_url_is_password_param(const char *text, size_t i)
{
    static const char key[] = "password=";
    if (strncasecmp(text + i, key, sizeof key - 1) != 0)
        return 0;
    return i == 0 || text[i - 1] == '?' || text[i - 1] == '&' ||
           isspace((unsigned char)text[i - 1]);
}

void export_url_mask(const char *text, char *out, size_t size)
{
    if (!out || size == 0)
        return;
    out[0] = '\0';
    if (!text)
        return;
    size_t pos = 0, len = strlen(text), i = 0;
    /* The authority's "user:password@": hide what follows the first ':'.
     * The span ends at '?', '#' or whitespace but not at '/': a password
     * typed with a bare '/' in it must not show either (hiding a little too
     * much of an odd URL is the safe mistake). */
    const char *sep = strstr(text, "://");
    if (sep) {
        size_t start = (size_t)(sep - text) + 3;
        size_t auth_len = strcspn(text + start, "?# \t\n");
        const char *at = NULL;
        for (size_t k = 0; k < auth_len; k++)
            if (text[start + k] == '@')
                at = text + start + k; /* the last '@': passwords may hold one */
        if (at) {
            const char *colon = memchr(text + start, ':', (size_t)(at - (text + start)));
            if (colon) {
                export_url_put(out, size, &pos, text, (size_t)(colon + 1 - text));
                export_url_put(out, size, &pos, EXPORT_URL_MASK, sizeof EXPORT_URL_MASK - 1);
                i = (size_t)(at - text);
            }
        }
    }
    /* password=... parameters, up to the next '&', '#' or blank. */
    while (i < len) {
        if (export_url_is_password_param(text, i)) {
            size_t key_len = sizeof "password=" - 1;
            export_url_put(out, size, &pos, text + i, key_len);
            export_url_put(out, size, &pos, EXPORT_URL_MASK, sizeof EXPORT_URL_MASK - 1);
            i += key_len;
            while (i < len && text[i] != '&' && text[i] != '#' && !isspace((unsigned char)text[i]))
                i++;
            continue;
        }
        export_url_put(out, size, &pos, text + i, 1);
        i++;
    }
}

void export_url_scrub(const struct export_url *u, char *msg, size_t size)
{
    if (!msg || size == 0)
        return;
    /* Messages are short (struct err holds 256 bytes); longer ones are cut. */
    char tmp[1024];
    size_t pos = 0;
    tmp[0] = '\0';
    const char *pw = u && u->password && *u->password ? u->password : NULL;
    size_t plen = pw ? strlen(pw) : 0;
    for (const char *p = msg; *p;) {
        if (pw && strncmp(p, pw, plen) == 0) {
            export_url_put(tmp, sizeof tmp, &pos, EXPORT_URL_MASK, sizeof EXPORT_URL_MASK - 1);
            p += plen;
        } else {
            export_url_put(tmp, sizeof tmp, &pos, p, 1);
            p++;
        }
    }
    /* A driver may also echo the URL itself, with the password still
     * percent-encoded: mask any URL or password= in the text as well. */
    export_url_mask(tmp, msg, size);
}

/* ---- parsing -------------------------------------------------------------- */

static int export_url_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* new: s[0..n) with %XX decoded, or NULL (*bad set on a malformed escape or
 * an encoded NUL, left alone when memory ran out). */
static char *export_url_decode(const char *s, size_t n, int *bad)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 1 < n ? export_url_hex((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? export_url_hex((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            *bad = 1;
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

void export_url_clear(struct export_url *u)
{
    if (!u)
        return;
    free(u->text);
    free(u->masked);
    free(u->key);
    free(u->user);
    free(u->password);
    free(u->host);
    free(u->database);
    free(u->params);
    free(u->path);
    memset(u, 0, sizeof *u);
}

/* Fails the parse: the message quotes the masked URL, never the password. */
static int export_url_fail(struct export_url *u, const char *text, struct err *err,
                           const char *why)
{
    char shown[200];
    export_url_mask(text, shown, sizeof shown);
    export_url_clear(u);
    return err_set(err, ERR_INVALID, "bad target URL '%s': %s", shown, why);
}

/* Fails the parse for want of memory: not the URL's fault. */
static int export_url_nomem(struct export_url *u, struct err *err)
{
    export_url_clear(u);
    return err_set(err, ERR_NOMEM, "out of memory parsing the target URL");
}

static int export_url_jsonl(struct export_url *u, const char *text, const char *path,
                            struct err *err)
{
    if (!*path)
        return export_url_fail(u, text, err, "jsonl: needs a file path (jsonl:PATH)");
    struct buf b;
    buf_init(&b);
    int rc = 0;
    if (path[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) {
            char why[160];
            snprintf(why, sizeof why, "cannot resolve a relative path: %s", strerror(errno));
            return export_url_fail(u, text, err, why);
        }
        rc = buf_puts(&b, cwd) || buf_puts(&b, "/");
    }
    rc = rc || buf_puts(&b, path);
    if (!rc)
        u->path = buf_steal(&b);
    buf_free(&b);
    if (!u->path)
        return export_url_nomem(u, err);
    u->key = malloc(strlen(u->path) + sizeof "jsonl:");
    if (!u->key)
        return export_url_nomem(u, err);
    snprintf(u->key, strlen(u->path) + sizeof "jsonl:", "jsonl:%s", u->path);
    u->kind = EXPORT_URL_JSONL;
    return 0;
}

/* Splits "host[:port]" or "[v6][:port]" (a libpq host list with commas is
 * kept whole, port 0).  0, -1 with *why for a bad one, or ERR_NOMEM. */
static int export_url_hostport(struct export_url *u, const char *hp, size_t n,
                               const char **why)
{
    const char *host = hp;
    size_t host_len = n;
    const char *port = NULL;
    size_t port_len = 0;
    if (memchr(hp, ',', n)) {
        /* several hosts: libpq parses them; the key keeps the list as is */
    } else if (n && hp[0] == '[') {
        const char *close = memchr(hp, ']', n);
        if (!close) {
            *why = "unterminated [IPv6] host";
            return -1;
        }
        host = hp + 1;
        host_len = (size_t)(close - host);
        size_t rest = n - (size_t)(close + 1 - hp);
        if (rest) {
            if (close[1] != ':') {
                *why = "unexpected text after the ] of the host";
                return -1;
            }
            port = close + 2;
            port_len = rest - 1;
        }
    } else {
        const char *colon = memchr(hp, ':', n);
        if (colon) {
            host_len = (size_t)(colon - hp);
            port = colon + 1;
            port_len = n - host_len - 1;
        }
    }
    if (port) {
        unsigned long v = 0;
        if (port_len == 0 || port_len > 5) {
            *why = "the port must be a number from 1 to 65535";
            return -1;
        }
        for (size_t i = 0; i < port_len; i++) {
            if (!isdigit((unsigned char)port[i])) {
                *why = "the port must be a number from 1 to 65535";
                return -1;
            }
            v = v * 10 + (unsigned long)(port[i] - '0');
        }
        if (v == 0 || v > 65535) {
            *why = "the port must be a number from 1 to 65535";
            return -1;
        }
        u->port = (unsigned)v;
    }
    u->host = malloc(host_len + 1);
    if (!u->host)
        return ERR_NOMEM;
    memcpy(u->host, host, host_len);
    u->host[host_len] = '\0';
    return 0;
}

/* Builds u->key: scheme://user@host:port/database[?params], no password. */
static int export_url_make_key(struct export_url *u, const char *scheme)
{
    struct buf b;
    buf_init(&b);
    int v6 = u->host && strchr(u->host, ':') && !strchr(u->host, ',');
    int rc = buf_printf(&b, "%s://", scheme);
    if (!rc && u->user)
        rc = buf_printf(&b, "%s@", u->user);
    if (!rc)
        rc = buf_printf(&b, "%s%s%s", v6 ? "[" : "", u->host ? u->host : "", v6 ? "]" : "");
    if (!rc && u->port)
        rc = buf_printf(&b, ":%u", u->port);
    if (!rc)
        rc = buf_printf(&b, "/%s", u->database ? u->database : "");
    /* Parameters can name another target (a search_path, a host), so they
     * are part of the key, with any password in them masked. */
    if (!rc && u->params) {
        size_t size = strlen(u->params) * 2 + 8;
        char *masked = malloc(size);
        if (masked) {
            export_url_mask(u->params, masked, size);
            rc = buf_printf(&b, "?%s", masked);
            free(masked);
        } else {
            rc = ERR_NOMEM;
        }
    }
    if (!rc)
        u->key = buf_steal(&b);
    buf_free(&b);
    return u->key ? 0 : ERR_NOMEM;
}

/* http(s)://[user[:password]@]host[:port][/path][?query]: the URL goes to
 * libcurl as given; only the authority is taken apart, to check it and to
 * keep the password out of the key. */
static int export_url_webhook(struct export_url *u, const char *text, const char *rest,
                              struct err *err)
{
    size_t auth_len = strcspn(rest, "/?");
    const char *at = NULL;
    for (size_t k = 0; k < auth_len; k++)
        if (rest[k] == '@')
            at = rest + k;
    const char *hp = at ? at + 1 : rest;
    int bad = 0;
    if (at) {
        size_t ui_len = (size_t)(at - rest);
        const char *colon = memchr(rest, ':', ui_len);
        size_t user_len = colon ? (size_t)(colon - rest) : ui_len;
        u->user = export_url_decode(rest, user_len, &bad);
        if (!bad && u->user && colon)
            u->password = export_url_decode(colon + 1, ui_len - user_len - 1, &bad);
        if (bad)
            return export_url_fail(u, text, err, "bad %-escape in the user or password");
        if (!u->user || (colon && !u->password))
            return export_url_nomem(u, err);
    }
    const char *why = NULL;
    int rc = export_url_hostport(u, hp, (size_t)(rest + auth_len - hp), &why);
    if (rc == ERR_NOMEM)
        return export_url_nomem(u, err);
    if (rc != 0)
        return export_url_fail(u, text, err, why);
    if (!*u->host || strchr(u->host, ','))
        return export_url_fail(u, text, err, "a webhook needs one host");
    for (const char *c = rest; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return export_url_fail(u, text, err, "blanks and control characters must be "
                                                 "%-escaped");
    const char *after = rest + auth_len;
    u->path = *after == '/' ? strndup(after, strcspn(after, "?")) : strdup("/");
    if (!u->path)
        return export_url_nomem(u, err);
    if (*after == '/')
        after += strcspn(after, "?");
    if (*after == '?' && !(u->params = strdup(after + 1)))
        return export_url_nomem(u, err);
    size_t size = strlen(u->masked) + sizeof "webhook:";
    u->key = malloc(size);
    if (!u->key)
        return export_url_nomem(u, err);
    snprintf(u->key, size, "webhook:%s", u->masked);
    return 0;
}

int export_url_parse(const char *text, struct export_url *u, struct err *err)
{
    memset(u, 0, sizeof *u);
    if (!text || !*text)
        return err_set(err, ERR_INVALID, "bad target URL: empty");
    u->text = strdup(text);
    char masked[1024];
    export_url_mask(text, masked, sizeof masked);
    u->masked = strdup(masked);
    if (!u->text || !u->masked)
        return export_url_nomem(u, err);

    static const struct {
        const char *prefix;
        enum export_url_kind kind;
        int tls;
    } schemes[] = {
        {"postgres://", EXPORT_URL_POSTGRES, 0},
        {"postgresql://", EXPORT_URL_POSTGRES, 0},
        {"clickhouse+http://", EXPORT_URL_CLICKHOUSE, 0},
        {"clickhouse+https://", EXPORT_URL_CLICKHOUSE, 1},
        {"clickhouse://", EXPORT_URL_CLICKHOUSE, 0},
        {"http://", EXPORT_URL_WEBHOOK, 0},
        {"https://", EXPORT_URL_WEBHOOK, 1},
    };
    if (strncasecmp(text, "jsonl:", 6) == 0)
        return export_url_jsonl(u, text, text + 6, err);
    const char *rest = NULL;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i].prefix);
        if (strncasecmp(text, schemes[i].prefix, n) == 0) {
            rest = text + n;
            u->kind = schemes[i].kind;
            u->tls = schemes[i].tls;
            break;
        }
    }
    if (!rest)
        return export_url_fail(u, text, err,
                               "expected postgres://, clickhouse+http://, "
                               "clickhouse+https://, jsonl:PATH or an http(s):// "
                               "webhook");
    if (strchr(rest, '#'))
        return export_url_fail(u, text, err, "a #fragment means nothing here");

    if (u->kind == EXPORT_URL_WEBHOOK)
        return export_url_webhook(u, text, rest, err);
    size_t auth_len = strcspn(rest, "/?");
    const char *at = NULL;
    for (size_t k = 0; k < auth_len; k++)
        if (rest[k] == '@')
            at = rest + k;
    const char *hp = rest;
    int bad = 0;
    if (at) {
        size_t ui_len = (size_t)(at - rest);
        const char *colon = memchr(rest, ':', ui_len);
        size_t user_len = colon ? (size_t)(colon - rest) : ui_len;
        u->user = export_url_decode(rest, user_len, &bad);
        if (!bad && u->user && colon)
            u->password = export_url_decode(colon + 1, ui_len - user_len - 1, &bad);
        if (bad)
            return export_url_fail(u, text, err, "bad %-escape in the user or password");
        if (!u->user || (colon && !u->password))
            return export_url_nomem(u, err);
        if (!*u->user) {
            free(u->user);
            u->user = NULL;
        }
        hp = at + 1;
    }
    const char *why = NULL;
    int rc = export_url_hostport(u, hp, (size_t)(rest + auth_len - hp), &why);
    if (rc == ERR_NOMEM)
        return export_url_nomem(u, err);
    if (rc != 0)
        return export_url_fail(u, text, err, why);

    const char *after = rest + auth_len;
    if (*after == '/') {
        size_t db_len = strcspn(after + 1, "?");
        if (memchr(after + 1, '/', db_len))
            return export_url_fail(u, text, err, "the path must be one database name");
        if (db_len) {
            u->database = export_url_decode(after + 1, db_len, &bad);
            if (bad)
                return export_url_fail(u, text, err, "bad %-escape in the database name");
            if (!u->database)
                return export_url_nomem(u, err);
        }
        after += 1 + db_len;
    }
    if (*after == '?') {
        u->params = strdup(after + 1);
        if (!u->params)
            return export_url_nomem(u, err);
    }

    if (u->kind == EXPORT_URL_CLICKHOUSE) {
        if (!*u->host)
            return export_url_fail(u, text, err, "clickhouse needs a host");
        if (strchr(u->host, ','))
            return export_url_fail(u, text, err, "clickhouse takes one host");
        if (!u->port)
            u->port = u->tls ? EXPORT_URL_CH_HTTPS_PORT : EXPORT_URL_CH_HTTP_PORT;
        if (!u->database) {
            u->database = strdup("default");
            if (!u->database)
                return export_url_nomem(u, err);
        }
        for (const char *c = u->database; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_')
                return export_url_fail(u, text, err,
                                       "the clickhouse database name must be letters, "
                                       "digits and _");
    }
    if (export_url_make_key(u, u->kind == EXPORT_URL_POSTGRES ? "postgres" : "clickhouse"))
        return export_url_nomem(u, err);
    return 0;
}
