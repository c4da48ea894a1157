/* The ClickHouse export target: the HTTP interface through libcurl.
 *
 * A batch is two POSTs, "INSERT INTO sj_events FORMAT JSONEachRow" then the
 * session rows, each answered 200 only once ClickHouse has written it.
 * ClickHouse has no unique keys: sj_events is a ReplacingMergeTree ordered
 * by (session_id, sequence), which folds a re-sent row into the first at
 * merge time, and readers use FINAL.  To keep even the unmerged table free
 * of copies, the exporter asks probe() what a session already holds before
 * it re-sends after a crash or a failed request.
 *
 * Must work on Debian's clickhouse-server 18.16 and on current releases:
 * settings go in the URL (no SET over HTTP), one statement per request, no
 * query parameters, no DateTime64, no JSON functions. */
#include "export/export_target.h"

#include "base/buf.h"
#include "base/err.h"
#include "export/export_row.h"
#include "export/export_url.h"
#include "base/hmap.h"
#include "journal/migrations.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPORT_CH_CONNECT_TIMEOUT_MS 3000L
#define EXPORT_CH_TIMEOUT_MS 120000L

struct export_ch {
    struct export_target base; /* first: the exporter holds a pointer to it */
    CURL *curl;      /* kept between requests: keep-alive */
    int curl_global; /* curl_global_init() succeeded, so cleanup is owed */
    struct buf body;  /* the request being built */
    struct buf reply; /* the response */
};

static struct export_ch *export_ch_of(struct export_target *t)
{
    return (struct export_ch *)(void *)t;
}

static size_t export_ch_collect(char *data, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    if (n && size > (size_t)-1 / n)
        return 0;
    return buf_append(b, data, size * n) ? 0 : size * n;
}

/* ClickHouse error codes that pass with time: timeouts, overload, too many
 * parts (merges catch up), memory, a read-only table during startup. */
static int export_ch_code_transient(long code)
{
    static const long codes[] = {159, 164, 202, 203, 209, 210, 241, 242, 252, 425};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i] == code)
            return 1;
    return 0;
}

/* Runs one request.  `query` (may be NULL) goes in the URL, `body` is the
 * POST body; `use_db` adds database=<db> so unqualified names resolve
 * there.  The reply is in c->reply.  0 only on HTTP 200. */
static int export_ch_request(struct export_ch *c, const char *query, const char *body,
                             size_t body_len, int use_db, const char *what, struct err *err)
{
    const struct export_url *u = c->base.url;
    if (!c->curl) {
        c->curl = curl_easy_init();
        if (!c->curl) {
            c->base.transient = 0;
            return err_set(err, ERR_NOMEM, "clickhouse: cannot create a curl handle");
        }
    }
    CURL *h = c->curl;
    struct buf url;
    buf_init(&url);
    int v6 = strchr(u->host, ':') != NULL;
    int rc = buf_printf(&url, "%s://%s%s%s:%u/?", u->tls ? "https" : "http", v6 ? "[" : "",
                        u->host, v6 ? "]" : "", u->port);
    if (!rc && use_db)
        rc = buf_printf(&url, "database=%s&", u->database);
    if (!rc && query) {
        char *q = curl_easy_escape(h, query, 0);
        rc = !q || buf_printf(&url, "query=%s&", q);
        curl_free(q);
    }
    if (!rc && u->params)
        rc = buf_printf(&url, "%s", u->params);
    if (rc) {
        buf_free(&url);
        c->base.transient = 0;
        return err_set(err, ERR_NOMEM, "clickhouse: out of memory");
    }
    buf_reset(&c->reply);
    curl_easy_reset(h);
    CURLcode cc = CURLE_OK;
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_URL, url.data);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, EXPORT_CH_CONNECT_TIMEOUT_MS);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, EXPORT_CH_TIMEOUT_MS);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_POST, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, export_ch_collect);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->reply);
    if (cc == CURLE_OK && u->user)
        cc = curl_easy_setopt(h, CURLOPT_USERNAME, u->user);
    if (cc == CURLE_OK && u->password)
        cc = curl_easy_setopt(h, CURLOPT_PASSWORD, u->password);
    if (cc == CURLE_OK && (u->user || u->password))
        cc = curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    if (cc == CURLE_OK)
        cc = curl_easy_perform(h);
    buf_free(&url);
    if (cc != CURLE_OK) {
        /* The request never got an answer: the server is down, unreachable
         * or too slow.  Worth trying again, unless curl itself is broken. */
        c->base.transient = cc != CURLE_OUT_OF_MEMORY && cc != CURLE_UNKNOWN_OPTION &&
                            cc != CURLE_BAD_FUNCTION_ARGUMENT;
        err_set(err, c->base.transient ? ERR_STORAGE : ERR_INTERNAL, "clickhouse: %s: %s",
                what, curl_easy_strerror(cc));
        if (err)
            export_url_scrub(u, err->msg, sizeof err->msg);
        return err ? err->code : ERR_STORAGE;
    }
    long status = 0;
    cc = curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK && status == 200)
        return 0;
    /* "Code: 60, e.displayText() = DB::Exception: ...": keep the first line. */
    char line[200];
    snprintf(line, sizeof line, "%s", c->reply.data ? c->reply.data : "");
    line[strcspn(line, "\r\n")] = '\0';
    long code = 0;
    if (strncmp(line, "Code: ", 6) == 0)
        code = strtol(line + 6, NULL, 10);
    c->base.transient = status == 503 || export_ch_code_transient(code);
    err_set(err, c->base.transient ? ERR_STORAGE : ERR_INVALID, "clickhouse: %s: HTTP %ld: %s",
            what, status, line[0] ? line : "(no message)");
    if (err)
        export_url_scrub(u, err->msg, sizeof err->msg);
    return err ? err->code : ERR_STORAGE;
}

/* Runs `sql` and parses the reply as one unsigned number. */
static int export_ch_number(struct export_ch *c, const char *sql, unsigned long long *out,
                            struct err *err)
{
    int rc = export_ch_request(c, NULL, sql, strlen(sql), 1, "schema version", err);
    if (rc)
        return rc;
    char *end = NULL;
    *out = strtoull(c->reply.data ? c->reply.data : "", &end, 10);
    if (!c->reply.data || end == c->reply.data) {
        c->base.transient = 0;
        return err_set(err, ERR_INVALID, "clickhouse: unexpected reply to '%s'", sql);
    }
    return 0;
}

/* Runs one migration file: its statements end in ';' at the end of a line;
 * "--" comment lines are dropped (one statement per request). */
static int export_ch_run_file(struct export_ch *c, const struct migration *m, struct err *err)
{
    struct buf stmt;
    buf_init(&stmt);
    int rc = 0;
    for (const char *line = m->sql; *line && !rc;) {
        size_t len = strcspn(line, "\n");
        const char *p = line;
        while (p < line + len && (*p == ' ' || *p == '\t'))
            p++;
        int comment = (size_t)(line + len - p) >= 2 && p[0] == '-' && p[1] == '-';
        if (!comment && p < line + len)
            rc = buf_append(&stmt, line, len) || buf_puts(&stmt, "\n");
        const char *end = line + len;
        while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            end--;
        int last = !comment && end > line && end[-1] == ';';
        if (rc) {
            c->base.transient = 0;
            rc = err_set(err, ERR_NOMEM, "clickhouse: out of memory");
        } else if (last) {
            rc = export_ch_request(c, NULL, stmt.data, stmt.len, 1, m->name, err);
            buf_reset(&stmt);
        }
        line += len + (line[len] == '\n');
    }
    buf_free(&stmt);
    return rc;
}

static int export_ch_migrate(struct export_ch *c, struct err *err)
{
    const struct export_url *u = c->base.url;
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE DATABASE IF NOT EXISTS %s", u->database);
    int rc = export_ch_request(c, NULL, sql, strlen(sql), 0, "create database", err);
    if (!rc) {
        static const char versions[] =
            "CREATE TABLE IF NOT EXISTS sj_schema_versions (version UInt32, name String, "
            "applied_at DateTime('UTC')) ENGINE = MergeTree() ORDER BY version";
        rc = export_ch_request(c, NULL, versions, sizeof versions - 1, 1, "schema versions",
                               err);
    }
    unsigned long long have = 0;
    if (!rc)
        rc = export_ch_number(c, "SELECT max(version) FROM sj_schema_versions", &have, err);
    int newest = migrations_clickhouse_count
                     ? migrations_clickhouse_all[migrations_clickhouse_count - 1].version
                     : 0;
    if (!rc && have > (unsigned long long)newest) {
        c->base.transient = 0;
        rc = err_set(err, ERR_INVALID,
                     "clickhouse: the target's schema is at version %llu, newer than the %d "
                     "this binary knows",
                     have, newest);
    }
    for (size_t i = 0; !rc && i < migrations_clickhouse_count; i++) {
        const struct migration *m = &migrations_clickhouse_all[i];
        if ((unsigned long long)m->version <= have)
            continue;
        rc = export_ch_run_file(c, m, err);
        if (!rc) {
            /* Recorded after its statements: every one is IF NOT EXISTS, so
             * a crash in between only repeats harmless work. */
            char row[256];
            snprintf(row, sizeof row, "INSERT INTO sj_schema_versions VALUES (%d, '%s', now())",
                     m->version, m->name);
            rc = export_ch_request(c, NULL, row, strlen(row), 1, m->name, err);
        }
    }
    return rc;
}

static int export_ch_connect(struct export_target *t, struct err *err)
{
    return export_ch_migrate(export_ch_of(t), err);
}

static void export_ch_disconnect(struct export_target *t)
{
    struct export_ch *c = export_ch_of(t);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
}

/* The schema is in place; only the keep-alive connection goes (the next
 * request makes a new handle). */
static void export_ch_idle(struct export_target *t)
{
    export_ch_disconnect(t);
}

static int export_ch_send(struct export_target *t, const struct export_batch *b,
                          struct err *err)
{
    struct export_ch *c = export_ch_of(t);
    buf_reset(&c->body);
    for (size_t i = 0; i < b->n_rows; i++)
        if (export_row_ch_event(&c->body, &b->rows[i])) {
            t->transient = 0;
            return err_set(err, ERR_NOMEM, "clickhouse: out of memory");
        }
    /* Events first: a session row never claims events the table lacks.  A
     * batch of session rows only (their events found there by probe())
     * skips this request. */
    int rc = b->n_rows ? export_ch_request(c, "INSERT INTO sj_events FORMAT JSONEachRow",
                                           c->body.data, c->body.len, 1, "insert events", err)
                       : 0;
    if (rc)
        return rc;
    buf_reset(&c->body);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < b->n_sessions; i++)
        if (export_row_ch_session(&c->body, &b->sessions[i], now)) {
            t->transient = 0;
            return err_set(err, ERR_NOMEM, "clickhouse: out of memory");
        }
    return export_ch_request(c, "INSERT INTO sj_sessions FORMAT JSONEachRow", c->body.data,
                             c->body.len, 1, "insert sessions", err);
}

/* Appends `s` as a ClickHouse string literal: quoted, backslash-escaped. */
static int export_ch_literal(struct buf *b, const char *s)
{
    if (buf_puts(b, "'"))
        return ERR_NOMEM;
    for (const char *p = s; *p; p++) {
        const char *esc = NULL;
        switch (*p) {
        case '\'': esc = "\\'"; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\0': esc = "\\0"; break;
        default: break;
        }
        if (esc ? buf_puts(b, esc) : buf_append(b, p, 1))
            return ERR_NOMEM;
    }
    return buf_puts(b, "'");
}

/* Reads a number ClickHouse's JSON output may quote (64-bit integers). */
static unsigned long long export_ch_json_u64(const json_t *v)
{
    if (json_is_integer(v))
        return (unsigned long long)json_integer_value(v);
    if (json_is_string(v))
        return strtoull(json_string_value(v), NULL, 10);
    return 0;
}

static int export_ch_probe(struct export_target *t, const char *const *ids, size_t n,
                           uint64_t *have, struct err *err)
{
    struct export_ch *c = export_ch_of(t);
    hmap_t *index = hmap_new();
    buf_reset(&c->body);
    int rc = !index || buf_puts(&c->body, "SELECT session_id, max(sequence) AS m, "
                                          "uniqExact(sequence) AS u FROM sj_events "
                                          "WHERE session_id IN (");
    for (size_t i = 0; i < n && !rc; i++) {
        have[i] = 0;
        rc = (i && buf_puts(&c->body, ",")) || export_ch_literal(&c->body, ids[i]) ||
             hmap_put(index, ids[i], &have[i]);
    }
    rc = rc || buf_puts(&c->body, ") GROUP BY session_id FORMAT JSONEachRow");
    if (rc) {
        hmap_free(index);
        t->transient = 0;
        return err_set(err, ERR_NOMEM, "clickhouse: out of memory");
    }
    rc = export_ch_request(c, NULL, c->body.data, c->body.len, 1, "probe", err);
    for (const char *line = c->reply.data; !rc && line && *line;) {
        size_t len = strcspn(line, "\n");
        json_error_t jerr;
        json_t *row = len ? json_loadb(line, len, 0, &jerr) : NULL;
        if (len && !row) {
            t->transient = 0;
            rc = err_set(err, ERR_INVALID, "clickhouse: probe: unexpected reply: %s",
                         jerr.text);
            break;
        }
        if (row) {
            const char *sid = json_string_value(json_object_get(row, "session_id"));
            uint64_t *slot = sid ? hmap_get(index, sid) : NULL;
            unsigned long long max = export_ch_json_u64(json_object_get(row, "m"));
            unsigned long long distinct = export_ch_json_u64(json_object_get(row, "u"));
            /* Sequences start at 1: as many distinct ones as the highest
             * means 1..max are all there, copies or not. */
            if (slot && max == distinct)
                *slot = max;
            json_decref(row);
        }
        line += len + (line[len] == '\n');
    }
    hmap_free(index);
    return rc;
}

static void export_ch_free(struct export_target *t)
{
    if (!t)
        return;
    struct export_ch *c = export_ch_of(t);
    export_ch_disconnect(t);
    buf_free(&c->body);
    buf_free(&c->reply);
    if (c->curl_global)
        curl_global_cleanup();
    free(c);
}

static const struct export_target_ops export_ch_ops = {
    .kind = "clickhouse",
    .connect = export_ch_connect,
    .probe = export_ch_probe,
    .send = export_ch_send,
    .idle = export_ch_idle,
    .disconnect = export_ch_disconnect,
    .free = export_ch_free,
};

int export_ch_new(const struct export_url *u, struct export_target **out, struct err *err)
{
    struct export_ch *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(err, ERR_NOMEM, "out of memory");
    /* Reference-counted by libcurl; called here, on the thread that creates
     * the exporter, before any exporter thread runs. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(c);
        return err_set(err, ERR_INTERNAL, "clickhouse: cannot initialize libcurl");
    }
    c->curl_global = 1;
    c->base.ops = &export_ch_ops;
    c->base.url = u;
    buf_init(&c->body);
    buf_init(&c->reply);
    *out = &c->base;
    return 0;
}
