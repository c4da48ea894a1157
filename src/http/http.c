/* The HTTP listener: request lifecycle, routing, authentication, CORS and
 * RFC 7807 error bodies.  Handlers come in tables (routes.h): this file
 * knows none by name.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * with the headers, then once per body chunk, then once more.  Everything
 * that can be refused without the body (unknown route, bad token, CORS
 * preflight, a declared Content-Length over the limit) is answered on the
 * first call, so a refused upload is never read.
 *
 * The URL is left percent-encoded by libmicrohttpd (see http_keep_escaped)
 * so "%2F" inside a session id cannot be mistaken for a path separator; each
 * path segment and query value is decoded here.
 */
#include "http/http.h"

#include "http/parse.h"
#include "http/request.h"
#include "http/routes.h"
#include "http/sse.h"
#include "http/terminal.h"

#include "base/hmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_INSPECTOR_ORIGIN "https://inspect.sandboxagent.dev"
#define HTTP_MAX_SEGMENTS 8
#define HTTP_POOL_BYTES (6 * 1024)
/* The route tables: the service's, the sessions', the inspector's, the
 * workspace's, and the debug one that only tests turn on
 * (SJ_TEST_DEBUG_ROUTES, see http_start). */
#define HTTP_MAX_TABLES 10
/* The tables of routes whose bodies are streams (http_body_stream). */
#define HTTP_MAX_STREAM_TABLES 1

/* The Idempotency-Keys of the requests running now: a second request with
 * one of them is refused (409) rather than run twice.  Across restarts the
 * journal remembers what finished; what ran when the server died was not
 * acknowledged, and its key is free again. */
struct http_inflight {
    pthread_mutex_t lock;
    hmap_t *keys; /* key -> its request's struct journal_idem */
};

struct http {
    struct MHD_Daemon *daemon;
    struct http_inflight inflight;
    int listen_fd;
    struct http_config config;
    struct http_server_ctx ctx;
    _Atomic unsigned waiting; /* ctx.waiting points here */
    const struct http_route *tables[HTTP_MAX_TABLES + 1]; /* searched in order; NULL ends */
    const struct http_body_stream *streams[HTTP_MAX_STREAM_TABLES + 1]; /* NULL ends */
};

/* Per-request state between the access handler's calls.  An event stream
 * keeps it as long as it is open, so every byte here is paid by each idle
 * subscriber: what only some requests need is allocated when they do. */
struct http_pending {
    struct http_request req;
    const struct http_route *route;
    int too_large;
    int stream_refused;                    /* a chunk was refused: drop the rest */
    const struct http_body_stream *stream; /* the route's, or NULL: a buffered body */
    struct err *stream_err;                /* the refusal (owned), answered at the end;
                                            * NULL if it could not be kept */
};
/* A 452-byte struct err kept here cost every idle subscriber that much. */
_Static_assert(sizeof(struct http_pending) <= 192, "every open event stream pays for this");

/* ---- decoding (see parse.c) ---------------------------------------------- */

/* libmicrohttpd would decode the path before we split it; keep it as sent. */
static size_t http_keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c; /* required by the callback's signature */
    return strlen(s);
}

/* ---- responses ------------------------------------------------------------- */

static void http_add_cors(struct http_request *req, struct MHD_Response *resp)
{
    const char *name;
    json_t *value;
    if (!req->cors_headers)
        return;
    json_object_foreach(req->cors_headers, name, value) {
        if (MHD_add_response_header(resp, name, json_string_value(value)) != MHD_YES)
            fprintf(stderr, "sandbox-journal: could not add header %s\n", name);
    }
}

enum MHD_Result http_queue(struct http_request *req, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    http_add_cors(req, resp);
    enum MHD_Result rc = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result http_respond_text(struct http_request *req, unsigned status,
                                  const char *content_type, const char *text, size_t len,
                                  int copy)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, (void *)text, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (content_type &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return http_queue(req, status, resp);
}

static enum MHD_Result http_respond_owned(struct http_request *req, unsigned status,
                                          const char *content_type, char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return http_queue(req, status, resp);
}

enum MHD_Result http_respond_json(struct http_request *req, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        struct err err;
        err_set(&err, ERR_NOMEM, "out of memory building the response");
        return http_respond_error(req, &err);
    }
    return http_respond_owned(req, status, "application/json", text);
}

enum MHD_Result http_respond_empty(struct http_request *req, unsigned status)
{
    return http_respond_text(req, status, NULL, "", 0, 0);
}

/* The RFC 7807 answer to each error code, from the one error table and
 * indexed by -code; slot 0 (ERR_OK) is empty. */
struct http_problem {
    unsigned status;
    const char *type;  /* the v1 ErrorType, or NULL for a plain HTTP problem */
    const char *title;
    const char *subject_key; /* extension carrying err->subject */
};

static const struct http_problem http_problems[] = {
#define ERR(name, value, status, type, title, subject_key) \
    [-(value)] = { status, type, title, subject_key },
#include "base/errors.def"
};

/* A code missing from the table is a bug of ours: answered as ERR_INTERNAL. */
static const struct http_problem *http_problem_of(int code)
{
    const int n = (int)(sizeof http_problems / sizeof http_problems[0]);
    if (code < 0 && code > -n && http_problems[-code].title)
        return &http_problems[-code];
    return &http_problems[-ERR_INTERNAL];
}

/* Copies `s` into out[size] as well-formed UTF-8, each byte that starts no
 * character becoming '?'.  Error texts carry what clients sent (ids, agent
 * names) and err_set() may have cut a character in two at its size limit;
 * jansson refuses such a string, which would turn a clear 4xx into a bare
 * 503. */
static const char *http_utf8_clean(const char *s, char *out, size_t size)
{
    size_t len = strlen(s), o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = parse_utf8_char(s + i, len - i);
        if (o + (n ? n : 1) >= size)
            break;
        if (n == 0) {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    return out;
}

enum MHD_Result http_respond_error(struct http_request *req, const struct err *err)
{
    char msg[sizeof err->msg], subject[sizeof err->subject], mode[sizeof err->mode];
    http_utf8_clean(err->msg, msg, sizeof msg);
    http_utf8_clean(err->subject, subject, sizeof subject);
    http_utf8_clean(err->mode, mode, sizeof mode);
    const struct http_problem *p = http_problem_of(err->code);
    char type[96];
    if (p->type)
        snprintf(type, sizeof type, "urn:sandbox-agent:error:%s", p->type);
    else
        snprintf(type, sizeof type, "about:blank");
    json_t *body = json_pack("{s:s,s:s,s:i,s:s}", "type", type, "title", p->title, "status",
                             (int)p->status, "detail", msg);
    if (body && p->subject_key && subject[0])
        json_object_set_new(body, p->subject_key, json_string(subject));
    if (body && err->code == ERR_MODE_NOT_SUPPORTED && mode[0])
        json_object_set_new(body, "details", json_pack("{s:s}", "mode", mode));
    if (body && err->code == ERR_AUTH)
        json_object_set_new(body, "details",
                            json_pack("{s:s}", "message", "missing or invalid token"));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        static const char fallback[] =
            "{\"type\":\"urn:sandbox-agent:error:stream_error\",\"title\":\"Service "
            "Unavailable\",\"status\":503}";
        return http_respond_text(req, 503, "application/problem+json", fallback,
                                 sizeof fallback - 1, 0);
    }
    if (err->code == ERR_METHOD || err->code == ERR_TOO_LARGE || err->code == ERR_AUTH) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            free(text);
            return MHD_NO;
        }
        int ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                         "application/problem+json") == MHD_YES;
        if (ok && err->code == ERR_AUTH)
            ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                         "Bearer") == MHD_YES;
        if (ok && err->code == ERR_METHOD && err->subject[0])
            ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, err->subject) == MHD_YES;
        if (!ok) {
            MHD_destroy_response(resp);
            return MHD_NO;
        }
        return http_queue(req, p->status, resp);
    }
    return http_respond_owned(req, p->status, "application/problem+json", text);
}

/* ---- Idempotency-Key --------------------------------------------------------- */

#define HTTP_IDEM_KEY_MAX 255

uint64_t http_request_hash(const char *method, const char *path, const char *body,
                           size_t body_len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const uint64_t prime = 0x100000001b3ULL;
    const char *parts[2] = { method ? method : "", path ? path : "" };
    for (int k = 0; k < 2; k++) {
        for (const char *c = parts[k]; *c; c++)
            h = (h ^ (unsigned char)*c) * prime;
        h *= prime; /* the NUL: "ab"+"c" is not "a"+"bc" */
    }
    uint64_t len = body_len;
    for (int k = 0; k < 8; k++)
        h = (h ^ (unsigned char)(len >> (8 * k))) * prime;
    for (size_t i = 0; i < body_len; i++)
        h = (h ^ (unsigned char)body[i]) * prime;
    return h;
}

/* The record and the strings it points to, in one allocation. */
struct http_idem_held {
    struct journal_idem rec;
    char route[96];
    char key[];
};

/* Gives the request's key back (the sessions call has committed or failed,
 * or the request ended).  Safe to call twice. */
static void http_idem_release(struct http_request *req)
{
    if (!req->idem)
        return;
    struct http_inflight *f = req->server->inflight;
    pthread_mutex_lock(&f->lock);
    if (hmap_get(f->keys, req->idem->key) == req->idem)
        hmap_remove(f->keys, req->idem->key);
    pthread_mutex_unlock(&f->lock);
    free(req->idem);
    req->idem = NULL;
}

static int http_idem_key_valid(const char *key)
{
    size_t n = 0;
    for (; key[n]; n++)
        if ((unsigned char)key[n] < 0x20 || (unsigned char)key[n] > 0x7e)
            return 0;
    return n >= 1 && n <= HTTP_IDEM_KEY_MAX;
}

/* Answers a repeat with the remembered status and body. */
static enum MHD_Result http_idem_replay(struct http_request *req,
                                        const struct journal_idem_info *info)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        info->body_len, info->body ? info->body : (char *)"", MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    int ok = MHD_add_response_header(resp, "Idempotent-Replayed", "true") == MHD_YES;
    if (ok && info->body)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                     "application/json") == MHD_YES;
    if (!ok) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return http_queue(req, info->status, resp);
}

int http_idem_begin(struct http_request *req, unsigned status,
                    struct journal_idem_info *replay, enum MHD_Result *result)
{
    if (req->idem)
        return 0; /* run again after a wait: the key is still ours */
    const char *key = http_header(req, "Idempotency-Key");
    if (!key)
        return 0;
    struct err err;
    if (!http_idem_key_valid(key)) {
        err_set(&err, ERR_INVALID,
                "invalid request: Idempotency-Key must be 1 to %d printable ASCII characters",
                HTTP_IDEM_KEY_MAX);
        *result = http_respond_error(req, &err);
        return 1;
    }
    size_t klen = strlen(key);
    struct http_idem_held *held = calloc(1, sizeof *held + klen + 1);
    if (!held) {
        err_set(&err, ERR_NOMEM, "out of memory");
        *result = http_respond_error(req, &err);
        return 1;
    }
    memcpy(held->key, key, klen + 1);
    snprintf(held->route, sizeof held->route, "%s %s", req->route->method,
             req->route->pattern);
    held->rec = (struct journal_idem){
        .key = held->key,
        .route = held->route,
        .session_id = strncmp(req->route->pattern, "/v1/sessions/", 13) == 0
                          ? req->params[0] : NULL,
        .request_hash = http_request_hash(req->route->method, req->path, req->body.data,
                                          req->body.len),
        .status = status,
    };

    struct http_inflight *f = req->server->inflight;
    pthread_mutex_lock(&f->lock);
    int rc = hmap_get(f->keys, held->key) ? ERR_IDEM_IN_FLIGHT
                                           : hmap_put(f->keys, held->key, &held->rec);
    pthread_mutex_unlock(&f->lock);
    if (rc) {
        free(held);
        if (rc == ERR_IDEM_IN_FLIGHT)
            err_set(&err, rc, "a request with this Idempotency-Key is still running; "
                              "retry once it has ended");
        else
            err_set(&err, ERR_NOMEM, "out of memory");
        *result = http_respond_error(req, &err);
        return 1;
    }
    req->idem = &held->rec;

    /* Held, so nothing with this key commits between the lookup and our
     * own commit. */
    struct journal_idem_info info;
    journal_reader_t *r = journal_reader_for_thread(req->server->journal, &err);
    rc = r ? journal_idem_get(r, held->key, &info, &err) : err.code;
    if (rc == ERR_NOT_FOUND)
        return 0; /* the first request with this key */
    int same = rc == 0 && info.request_hash == held->rec.request_hash &&
               strcmp(info.route, held->route) == 0;
    http_idem_release(req); /* frees `held` */
    if (rc) {
        *result = http_respond_error(req, &err);
        return 1;
    }
    if (!same) {
        err_set(&err, ERR_IDEM_MISMATCH,
                "Idempotency-Key already used for another request (%s, another path or "
                "body); use a new key",
                info.route);
        journal_idem_info_clear(&info);
        *result = http_respond_error(req, &err);
        return 1;
    }
    if (replay) {
        /* The handler's own response carries the mark too (through the
         * headers every response of this request gets). */
        if (!req->cors_headers)
            req->cors_headers = json_object();
        if (!req->cors_headers ||
            json_object_set_new(req->cors_headers, "Idempotent-Replayed",
                                json_string("true")) != 0) {
            journal_idem_info_clear(&info);
            err_set(&err, ERR_NOMEM, "out of memory");
            *result = http_respond_error(req, &err);
            return 1;
        }
        *replay = info;
        return 2;
    }
    *result = http_idem_replay(req, &info);
    journal_idem_info_clear(&info);
    return 1;
}

int http_idem_commit_alone(struct http_request *req, struct err *err)
{
    if (!req->idem)
        return 0;
    struct journal_batch b = { .idem = req->idem };
    return journal_append(req->server->journal, &b, err);
}

/* ---- request helpers ----------------------------------------------------- */

int http_is_head(const struct http_request *req)
{
    return strcmp(req->method, "HEAD") == 0;
}

const char *http_header(struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

int http_query(struct http_request *req, const char *name, char **out, struct err *err)
{
    *out = NULL;
    const char *raw = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!raw)
        return 0;
    *out = parse_percent_decode(raw, strlen(raw), 1, err);
    if (*out)
        return 0;
    if (err->code == ERR_INVALID)
        err_set(err, ERR_INVALID,
                "invalid request: query parameter '%s' has a malformed escape or a NUL byte",
                name);
    return err->code;
}

int http_query_bool(struct http_request *req, const char *name, const char *alias, int *out,
                    struct err *err)
{
    const char *used = name;
    char *v = NULL;
    int rc = http_query(req, name, &v, err);
    if (rc == 0 && !v && alias) {
        rc = http_query(req, alias, &v, err);
        used = alias;
    }
    if (rc || !v)
        return rc;
    rc = parse_bool(used, v, out, err);
    free(v);
    return rc;
}

int http_query_u64(struct http_request *req, const char *name, uint64_t *out, int *present,
                   struct err *err)
{
    char *v = NULL;
    int rc = http_query(req, name, &v, err);
    *present = v != NULL;
    if (rc || !v)
        return rc;
    rc = parse_u64(name, v, out, err);
    free(v);
    return rc;
}

int http_body_object(struct http_request *req, json_t **out, struct err *err)
{
    return parse_body_object(req->body.data, req->body.len, out, err);
}

/* ---- authentication and CORS --------------------------------------------- */

/* Compares without an early exit, so timing says nothing about the token
 * (only about its length, which the loop runs over). */
static int http_token_equal(const char *given, size_t glen, const char *expected)
{
    size_t elen = strlen(expected);
    unsigned char diff = (unsigned char)(glen != elen);
    for (size_t i = 0; i < elen; i++)
        diff |= (unsigned char)(expected[i] ^ (i < glen ? given[i] : 0));
    return diff == 0;
}

/* `query_token`: the route also takes ?access_token= (HTTP_ROUTE_QUERY_TOKEN). */
static int http_authorized(const struct http *h, struct http_request *req, int query_token)
{
    if (!h->config.token)
        return 1;
    const char *auth = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth && query_token) {
        char *given = NULL;
        struct err err;
        /* A token that cannot be decoded is a wrong token. */
        int ok = http_query(req, "access_token", &given, &err) == 0 && given &&
                 http_token_equal(given, strlen(given), h->config.token);
        free(given);
        return ok;
    }
    if (!auth)
        return 0;
    while (*auth == ' ' || *auth == '\t')
        auth++;
    const char *token = NULL;
    if (strncmp(auth, "Bearer ", 7) == 0)
        token = auth + 7;
    else if (strncmp(auth, "Token ", 6) == 0)
        token = auth + 6;
    if (!token)
        return 0;
    size_t len = strlen(token);
    while (len && (token[len - 1] == ' ' || token[len - 1] == '\t'))
        len--;
    /* No copy into a fixed buffer: a token of any length can match. */
    return http_token_equal(token, len, h->config.token);
}

static int http_origin_allowed(const struct http *h, const char *origin)
{
    if (!h->config.cors.no_inspector && strcmp(origin, HTTP_INSPECTOR_ORIGIN) == 0)
        return 1;
    for (size_t i = 0; i < h->config.cors.n_origins; i++)
        if (strcmp(origin, h->config.cors.origins[i]) == 0)
            return 1;
    return 0;
}

static int http_cors_set(json_t *headers, const char *name, const char *value)
{
    return json_object_set_new(headers, name, json_string(value));
}

static int http_cors_join(json_t *headers, const char *name, const char **list, size_t n)
{
    struct buf b;
    buf_init(&b);
    int rc = buf_puts(&b, "");
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = buf_printf(&b, "%s%s", i ? "," : "", list[i]);
    if (rc == 0)
        rc = http_cors_set(headers, name, b.data);
    buf_free(&b);
    return rc;
}

/* Fills req->cors_headers for an allowed Origin.  Returns 1 if the request
 * is a preflight (answered by the caller without auth), 0 otherwise, <0 on
 * allocation failure. */
static int http_cors(const struct http *h, struct http_request *req)
{
    const char *origin = http_header(req, "Origin");
    int preflight = strcmp(req->method, "OPTIONS") == 0 && origin &&
                    http_header(req, "Access-Control-Request-Method");
    if (!origin || !http_origin_allowed(h, origin))
        return preflight;
    const struct http_cors *c = &h->config.cors;
    /* Made only for an allowed Origin: most requests carry none, and an
     * event stream would keep it for its whole life. */
    req->cors_headers = json_object();
    if (!req->cors_headers)
        return -1;
    int rc = http_cors_set(req->cors_headers, "Access-Control-Allow-Origin", origin);
    if (rc == 0)
        rc = http_cors_set(req->cors_headers, "Vary",
                           "origin, access-control-request-method, "
                           "access-control-request-headers");
    if (rc == 0 && c->allow_credentials)
        rc = http_cors_set(req->cors_headers, "Access-Control-Allow-Credentials", "true");
    if (rc == 0 && preflight) {
        const char *want_method = http_header(req, "Access-Control-Request-Method");
        const char *want_headers = http_header(req, "Access-Control-Request-Headers");
        if (c->methods)
            rc = http_cors_join(req->cors_headers, "Access-Control-Allow-Methods", c->methods,
                                c->n_methods);
        else
            rc = http_cors_set(req->cors_headers, "Access-Control-Allow-Methods", want_method);
        if (rc == 0 && c->headers)
            rc = http_cors_join(req->cors_headers, "Access-Control-Allow-Headers", c->headers,
                                c->n_headers);
        else if (rc == 0 && want_headers)
            rc = http_cors_set(req->cors_headers, "Access-Control-Allow-Headers", want_headers);
    }
    return rc ? -1 : preflight;
}

/* ---- routing --------------------------------------------------------------- */

/* Splits the raw path into raw segments.  Returns the count, or -1. */
static int http_split(const char *url, const char *segs[], size_t lens[])
{
    if (url[0] != '/')
        return -1;
    int n = 0;
    const char *p = url + 1;
    if (!*p)
        return 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (n == HTTP_MAX_SEGMENTS)
            return -1;
        segs[n] = p;
        lens[n] = len;
        n++;
        if (!slash)
            return n;
        p = slash + 1;
    }
}

static int http_route_matches(const char *pattern, int nsegs, const char *segs[],
                              const size_t lens[], int *param_index, int params[2])
{
    const char *psegs[HTTP_MAX_SEGMENTS];
    size_t plens[HTTP_MAX_SEGMENTS];
    int pn = http_split(pattern, psegs, plens);
    if (pn != nsegs)
        return 0;
    *param_index = 0;
    for (int i = 0; i < pn; i++) {
        if (plens[i] == 1 && psegs[i][0] == '*') {
            if (lens[i] == 0 || *param_index == 2)
                return 0;
            params[(*param_index)++] = i;
        } else if (plens[i] != lens[i] || memcmp(psegs[i], segs[i], lens[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

/* Finds the route; on a path match with another method, ERR_METHOD with the
 * allowed method in err->subject. */
static const struct http_route *http_route_find(const struct http *h,
                                                struct http_request *req, const char *url,
                                                struct err *err)
{
    const char *segs[HTTP_MAX_SEGMENTS];
    size_t lens[HTTP_MAX_SEGMENTS];
    int n = http_split(url, segs, lens);
    const struct http_route *path_match = NULL;
    /* HEAD is GET without the body (http_is_head() tells the handler). */
    const char *method = http_is_head(req) ? "GET" : req->method;
    for (size_t t = 0; n >= 0 && h->tables[t]; t++) {
        for (const struct http_route *r = h->tables[t]; r->method; r++) {
            int params[2], np;
            if (!http_route_matches(r->pattern, n, segs, lens, &np, params))
                continue;
            if (strcmp(r->method, method) != 0) {
                path_match = r;
                continue;
            }
            for (int k = 0; k < np; k++) {
                req->params[k] = parse_percent_decode(segs[params[k]], lens[params[k]], 0, err);
                if (!req->params[k])
                    return NULL;
            }
            return r;
        }
    }
    if (path_match)
        err_set_subject(err, ERR_METHOD, path_match->method, "method %s not allowed here",
                        req->method);
    else
        err_set(err, ERR_ROUTE_NOT_FOUND, "no such path: %s", url);
    return NULL;
}

/* ---- the access handler ---------------------------------------------------- */

/* Frees what the request's handler needed; `p` itself stays until the
 * request completes. */
static void http_pending_release(struct http_pending *p)
{
    http_idem_release(&p->req);
    free(p->req.params[0]);
    free(p->req.params[1]);
    p->req.params[0] = p->req.params[1] = NULL;
    buf_free(&p->req.body);
    if (p->req.stream_free)
        p->req.stream_free(p->req.stream);
    p->req.stream = NULL;
    p->req.stream_free = NULL;
    json_decref(p->req.cors_headers);
    p->req.cors_headers = NULL;
}

static void http_pending_free(struct http_pending *p)
{
    if (!p)
        return;
    if (p->req.wait_free)
        p->req.wait_free(p->req.wait);
    http_pending_release(p);
    free(p->stream_err);
    free(p);
}

static const struct http_body_stream *http_stream_find(const struct http *h,
                                                      const struct http_route *route)
{
    for (size_t t = 0; h->streams[t]; t++)
        for (const struct http_body_stream *s = h->streams[t]; s->route; s++)
            if (s->route == route)
                return s;
    return NULL;
}

static enum MHD_Result http_first_call(struct http *h, struct MHD_Connection *conn,
                                       const char *url, const char *method,
                                       const char *version, struct http_pending **out)
{
    struct http_pending *p = calloc(1, sizeof *p);
    if (!p)
        return MHD_NO;
    p->req.conn = conn;
    p->req.server = &h->ctx;
    p->req.method = method;
    buf_init(&p->req.body);
    p->req.version = version;
    *out = p;

    int preflight = http_cors(h, &p->req);
    if (preflight < 0)
        return MHD_NO;
    if (preflight)
        return http_respond_empty(&p->req, MHD_HTTP_OK);

    struct err err;
    err_clear(&err);
    p->route = http_route_find(h, &p->req, url, &err);
    if (!p->route)
        return http_respond_error(&p->req, &err);
    p->req.route = p->route;
    p->req.path = url;
    if (p->route->public_route != 1 &&
        !http_authorized(h, &p->req, p->route->public_route == HTTP_ROUTE_QUERY_TOKEN)) {
        err_set(&err, ERR_AUTH, "token invalid");
        return http_respond_error(&p->req, &err);
    }
    p->stream = http_stream_find(h, p->route);
    if (p->stream) {
        if (p->stream->begin(&p->req, &err) != 0) {
            enum MHD_Result rc = http_respond_error(&p->req, &err);
            p->route = NULL; /* answered: no chunk or handler runs for it */
            return rc;
        }
        return MHD_YES;
    }
    const char *length = http_header(&p->req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && strtoull(length, NULL, 10) > h->config.max_body_bytes) {
        err_set(&err, ERR_TOO_LARGE, "invalid request: body larger than %zu bytes",
                h->config.max_body_bytes);
        return http_respond_error(&p->req, &err);
    }
    return MHD_YES;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **con_cls)
{
    struct http *h = cls;
    struct http_pending *p = *con_cls;
    if (!p) {
        enum MHD_Result rc = http_first_call(h, conn, url, method, version, &p);
        *con_cls = p;
        return rc;
    }
    if (!p->route)
        return MHD_YES; /* answered already: discard any body */
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (p->stream) {
            /* After a refusal the rest is read and dropped: nothing is kept. */
            struct err err;
            err.code = 0;
            if (!p->stream_refused && p->stream->chunk(&p->req, upload_data, n, &err) != 0) {
                if (!err.code)
                    err_set(&err, ERR_INTERNAL, "the request body was refused");
                p->stream_refused = 1;
                p->stream_err = malloc(sizeof *p->stream_err);
                if (p->stream_err)
                    *p->stream_err = err;
            }
            return MHD_YES;
        }
        if (p->too_large || p->req.body.len + n > h->config.max_body_bytes) {
            p->too_large = 1;
            return MHD_YES;
        }
        if (buf_append(&p->req.body, upload_data, n) != 0)
            return MHD_NO;
        return MHD_YES;
    }
    if (p->stream_refused) {
        struct err nomem;
        if (!p->stream_err)
            err_set(&nomem, ERR_NOMEM, "out of memory");
        enum MHD_Result rc = http_respond_error(&p->req, p->stream_err ? p->stream_err : &nomem);
        http_pending_release(p);
        p->route = NULL;
        return rc;
    }
    if (p->too_large) {
        struct err err;
        err_set(&err, ERR_TOO_LARGE, "invalid request: body larger than %zu bytes",
                h->config.max_body_bytes);
        return http_respond_error(&p->req, &err);
    }
    /* This call's pointers: the first call's may not last. */
    p->req.path = url;
    p->req.method = method;
    enum MHD_Result rc = p->route->handler(&p->req);
    /* The answer is queued: an event stream, which lives on, must not keep
     * the request's body (a message of up to --max-body-bytes) or headers.
     * A handler suspended for an install runs again with them. */
    if (!p->req.wait) {
        http_pending_release(p);
        /* Answered: a later call for this request (libmicrohttpd resuming a
         * connection again while it stops) finds nothing left to run. */
        p->route = NULL;
    }
    return rc;
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe; /* the request state is all that is freed */
    http_pending_free(*con_cls);
    *con_cls = NULL;
}

/* libmicrohttpd's format strings are its own, as for any printf wrapper. */
__attribute__((format(printf, 2, 0)))
static void http_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls; /* one global log */
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    /* A client leaving an event stream is how streams end, not an error:
     * a thousand subscribers going at once must not log a thousand lines. */
    if (strstr(line, "forcibly closed by remote peer") ||
        strstr(line, "no longer available for sending"))
        return;
    /* One call, so lines from several workers do not interleave. */
    fprintf(stderr, "sandbox-journal: http: %s", line);
}

/* ---- start and stop -------------------------------------------------------- */

static int http_listen(const char *host, uint16_t port, int *fd_out, uint16_t *port_out,
                       int *ipv6_out, struct err *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        sslen = sizeof *in4;
        *ipv6_out = 0;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        sslen = sizeof *in6;
        *ipv6_out = 1;
    } else {
        return err_set(err, ERR_INVALID, "--host must be an IPv4 or IPv6 address, not %s",
                       host);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set(err, ERR_INTERNAL, "socket: %s", strerror(errno));
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        return err_set(err, ERR_INTERNAL, "cannot listen on %s port %u: %s", host, port,
                       strerror(e));
    }
    sslen = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
        int e = errno;
        close(fd);
        return err_set(err, ERR_INTERNAL, "getsockname: %s", strerror(e));
    }
    *port_out = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
    *fd_out = fd;
    return 0;
}

/* Frees the listener's own memory (after it stopped, or failed to start). */
static void http_free(struct http *h)
{
    pthread_mutex_destroy(&h->inflight.lock);
    hmap_free(h->inflight.keys);
    free(h);
}

int http_start(const struct http_config *config, sessions_t *sessions, journal_t *journal,
               http_t **out, uint16_t *port_out, struct err *err)
{
    struct http *h = calloc(1, sizeof *h);
    if (!h)
        return err_set(err, ERR_NOMEM, "out of memory");
    h->config = *config;
    h->ctx.sessions = sessions;
    h->ctx.journal = journal;
    h->ctx.exports_status = config->exports_status;
    h->ctx.exports_arg = config->exports_arg;
    h->ctx.max_upload_bytes = config->max_upload_bytes;
    h->ctx.inflight = &h->inflight;
    h->ctx.processes = config->processes;
    h->ctx.wait_slots = config->threads > 1 ? config->threads - 1 : 0;
    h->ctx.waiting = &h->waiting;
    h->inflight.keys = hmap_new();
    if (!h->inflight.keys || pthread_mutex_init(&h->inflight.lock, NULL) != 0) {
        hmap_free(h->inflight.keys);
        free(h);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    size_t nt = 0;
    h->tables[nt++] = routes_meta_table;
    h->tables[nt++] = routes_sessions_table;
    if (config->processes)
        h->tables[nt++] = routes_processes_table;
    h->tables[nt++] = routes_config_table;
    h->tables[nt++] = routes_fs_table;
    h->streams[0] = routes_fs_streams;
    h->tables[nt++] = routes_ui_table;
    if (getenv("SJ_TEST_DEBUG_ROUTES"))
        h->tables[nt++] = sse_debug_table;
    if (getenv("SJ_TEST_DEBUG_ROUTES") && config->processes)
        h->tables[nt++] = terminal_debug_table;
    int ipv6 = 0;
    int rc = http_listen(config->host, config->port, &h->listen_fd, port_out, &ipv6, err);
    if (rc) {
        http_free(h);
        return rc;
    }
    rc = sse_hub_start(journal, config->heartbeat_ms, &h->ctx.sse, err);
    if (rc) {
        close(h->listen_fd);
        http_free(h);
        return rc;
    }
    if (config->processes) {
        rc = terminal_hub_start(journal, config->processes, &h->ctx.terminals, err);
        if (rc) {
            sse_hub_stop(h->ctx.sse);
            close(h->listen_fd);
            http_free(h);
            return rc;
        }
    }
    /* MHD_ALLOW_UPGRADE: the process terminal's WebSocket (terminal.h). */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, http_access, h,
        MHD_OPTION_EXTERNAL_LOGGER, http_log, h,
        MHD_OPTION_LISTEN_SOCKET, h->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, config->threads ? config->threads : 1,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
        /* Per-connection pool (headers, read and write buffers).  An open
         * connection's RSS is about the whole pool plus 2 KB (libmicrohttpd
         * zeroes the unused half it read the request into), so the pool
         * sets the cost of an idle event stream: 6 KiB keeps it under 8 KiB
         * (docs/benchmarks.md, "Memory per connection") and still takes
         * request headers of about 5 KiB; larger ones get 431.  Bodies do
         * not live in it: they are copied out as they arrive. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_POOL_BYTES,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)30000,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)0,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, h,
        MHD_OPTION_UNESCAPE_CALLBACK, http_keep_escaped, h,
        MHD_OPTION_END);
    if (!h->daemon) {
        terminal_hub_close(h->ctx.terminals);
        terminal_hub_free(h->ctx.terminals);
        sse_hub_stop(h->ctx.sse);
        close(h->listen_fd);
        http_free(h);
        return err_set(err, ERR_INTERNAL, "could not start the HTTP server on %s:%u",
                       config->host, (unsigned)*port_out);
    }
    *out = h;
    return 0;
}

void http_stop(http_t *h)
{
    if (!h)
        return;
    /* Suspended streams must be resumed to be closed: end them first. */
    sse_hub_close_streams(h->ctx.sse);
    /* Upgraded sockets must all be closed before the daemon stops, and
     * the upgraded requests it then ends still hold their terminals. */
    terminal_hub_close(h->ctx.terminals);
    MHD_stop_daemon(h->daemon);
    terminal_hub_free(h->ctx.terminals);
    sse_hub_stop(h->ctx.sse);
    close(h->listen_fd);
    http_free(h);
}
