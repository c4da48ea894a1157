/* Request handling for sj-fake-model; see fm_http.h.
 *
 * libmicrohttpd runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION)
 * so a scripted delay can simply sleep in the handler or in the stream
 * reader without holding up other connections.  The connection limit bounds
 * the threads, the body limit bounds each request's memory, and every
 * sleep polls fm_util_stopping so SIGTERM is answered at once.
 *
 * Every request, whatever its fate (model call, 404, 400, 413), is written
 * to the log before its response is queued, so by the time a client has
 * read a response the matching log line is on disk. */
#include "fm_http.h"

#include "fm_render.h"
#include "fm_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define FM_HTTP_MAX_CONNECTIONS 64u
#define FM_HTTP_IDLE_TIMEOUT_S 300u
#define FM_HTTP_CONN_MEMORY (256u * 1024u)
#define FM_HTTP_STREAM_BLOCK (32u * 1024u)
#define FM_HTTP_MAX_LOGGED_TEXT (64u * 1024u)

struct fm_http {
    struct MHD_Daemon *daemon;
    struct fm_http_config config;
};

enum fm_http_route {
    FM_ROUTE_NONE,
    FM_ROUTE_ROOT,
    FM_ROUTE_MODELS,
    FM_ROUTE_MESSAGES,
    FM_ROUTE_COUNT_TOKENS,
    FM_ROUTE_RESPONSES,
    FM_ROUTE_CHAT,
    FM_ROUTE_GEMINI,
    FM_ROUTE_STATE,
    FM_ROUTE_RESET,
};

struct fm_http_route_def {
    enum fm_http_route id;
    const char *path;
    const char *allow; /* the Allow header: the methods this path answers */
};

/* HEAD / is the preflight Claude Code sends before its first POST. */
static const struct fm_http_route_def fm_http_routes[] = {
    {FM_ROUTE_ROOT, "/", "GET, HEAD"},
    {FM_ROUTE_MODELS, "/v1/models", "GET, HEAD"},
    {FM_ROUTE_MESSAGES, "/v1/messages", "POST"},
    {FM_ROUTE_COUNT_TOKENS, "/v1/messages/count_tokens", "POST"},
    {FM_ROUTE_RESPONSES, "/v1/responses", "POST"},
    {FM_ROUTE_CHAT, "/v1/chat/completions", "POST"},
    {FM_ROUTE_STATE, "/__fake/state", "GET"},
    {FM_ROUTE_RESET, "/__fake/reset", "POST"},
};

/* Gemini names the model and the method in the path:
 * /v1beta/models/{model}:{generateContent|streamGenerateContent|countTokens}. */
#define FM_HTTP_GEMINI_PREFIX "/v1beta/models/"
static const struct fm_http_route_def fm_http_gemini_route = {
    FM_ROUTE_GEMINI, FM_HTTP_GEMINI_PREFIX "{model}:{method}", "POST"};

/* The headers worth asserting on: credentials, API versions, the CLIs'
 * session and retry markers.  --all-headers logs everything instead. */
static const char *const fm_http_logged_headers[] = {
    "content-type", "content-length", "transfer-encoding", "accept", "user-agent",
    "authorization", "x-api-key", "anthropic-version", "anthropic-beta",
    "anthropic-dangerous-direct-browser-access", "x-app", "x-claude-code-session-id",
    "x-stainless-retry-count", "x-stainless-timeout", "session-id", "thread-id", "originator",
    "x-client-request-id", "x-codex-turn-metadata", "x-codex-beta-features",
    "x-codex-window-id", "openai-beta", "x-session-id", "x-session-affinity", "x-goog-api-key",
    "x-goog-api-client", NULL};

static const char *const fm_http_secret_headers[] = {"authorization", "x-api-key",
                                                     "x-goog-api-key", NULL};

/* Per-request state across the access handler's calls. */
struct fm_http_req {
    char *uri; /* the raw request target, query included */
    int started;
    struct fm_util_buf body;
    int too_large;
    int answered; /* a response is queued; ignore whatever else arrives */
};

/* An event stream being sent. */
struct fm_http_stream {
    struct fm_render_reply reply; /* owns the frames */
    size_t cur, off;
};

/* ---- per-request state ----------------------------------------------------- */

/* libmicrohttpd hands the raw URI (with its query) only here; the access
 * handler sees the decoded path without "?beta=true". */
static void *fm_http_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct fm_http_req *r = calloc(1, sizeof *r);
    (void)cls;
    (void)conn;
    if (r)
        r->uri = strdup(uri ? uri : "");
    return r;
}

static void fm_http_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct fm_http_req *r = *req_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (r) {
        free(r->uri);
        fm_util_buf_free(&r->body);
        free(r);
        *req_cls = NULL;
    }
}

/* libmicrohttpd's own messages (malformed requests and the like). */
__attribute__((format(printf, 2, 0))) static void fm_http_mhd_log(void *cls, const char *fmt,
                                                                  va_list ap)
{
    (void)cls;
    fputs("sj-fake-model: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---- the log record ---------------------------------------------------------- */

struct fm_http_header_ctx {
    json_t *headers;
    int redact;
    int all;
};

static enum MHD_Result fm_http_collect_header(void *cls, enum MHD_ValueKind kind,
                                              const char *key, const char *value)
{
    struct fm_http_header_ctx *ctx = cls;
    char name[128];
    size_t len = strlen(key);
    char *clean;
    (void)kind;
    if (len >= sizeof name || (!ctx->all && !fm_util_in_list(key, fm_http_logged_headers)))
        return MHD_YES;
    for (size_t i = 0; i <= len; i++)
        name[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] - 'A' + 'a' : key[i]);
    if (json_object_get(ctx->headers, name))
        return MHD_YES; /* the first one wins */
    /* Out of memory only thins the log, so the set calls are not checked. */
    if (ctx->redact && fm_util_in_list(name, fm_http_secret_headers)) {
        json_object_set_new(ctx->headers, name, json_string("[redacted]"));
        return MHD_YES;
    }
    clean = fm_util_sanitize(value ? value : "", value ? strlen(value) : 0);
    if (clean)
        json_object_set_new(ctx->headers, name, json_string(clean));
    free(clean);
    return MHD_YES;
}

/* new: {"method","path","headers","body"} for the log; the body is the
 * parsed JSON when it is JSON, else null plus a "body_text" excerpt. */
static json_t *fm_http_record(const fm_http_t *h, struct MHD_Connection *conn, const char *method,
                              const struct fm_http_req *r, const json_t *body)
{
    struct fm_http_header_ctx ctx = {.headers = json_object(), .redact = h->config.redact,
                                     .all = h->config.all_headers};
    /* The request target is raw bytes; the log must stay valid JSON. */
    char *path = fm_util_sanitize(r->uri ? r->uri : "", r->uri ? strlen(r->uri) : 0);
    json_t *rec;
    if (!ctx.headers || !path) {
        json_decref(ctx.headers);
        free(path);
        return NULL;
    }
    MHD_get_connection_values(conn, MHD_HEADER_KIND, fm_http_collect_header, &ctx);
    rec = json_pack("{s:s,s:s,s:o,s:O?,s:I}", "method", method, "path", path, "headers",
                    ctx.headers, "body", body, "body_bytes", (json_int_t)r->body.len);
    free(path);
    if (rec && !body && r->body.len) {
        size_t n = r->body.len < FM_HTTP_MAX_LOGGED_TEXT ? r->body.len : FM_HTTP_MAX_LOGGED_TEXT;
        char *text = fm_util_sanitize(r->body.data, n);
        if (text) /* unchecked: without it the line is still a valid record */
            json_object_set_new(rec, "body_text", json_string(text));
        free(text);
    }
    return rec;
}

/* ---- responses ------------------------------------------------------------------ */

static ssize_t fm_http_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct fm_http_stream *st = cls;
    size_t left, n;
    (void)pos;
    if (atomic_load(&fm_util_stopping))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (st->cur == st->reply.n_frames)
        return st->reply.disconnect ? MHD_CONTENT_READER_END_WITH_ERROR
                                    : MHD_CONTENT_READER_END_OF_STREAM;
    /* The delay goes between frames, so a frame is never split by it. */
    if (st->off == 0 && st->cur > 0 && st->reply.chunk_delay_ms > 0 &&
        fm_util_sleep_ms(st->reply.chunk_delay_ms) != 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    left = st->reply.frame_lens[st->cur] - st->off;
    n = left < max ? left : max;
    memcpy(buf, st->reply.frames[st->cur] + st->off, n);
    st->off += n;
    if (st->off == st->reply.frame_lens[st->cur]) {
        st->cur++;
        st->off = 0;
    }
    return (ssize_t)n;
}

static void fm_http_stream_free(void *cls)
{
    struct fm_http_stream *st = cls;
    fm_render_reply_free(&st->reply);
    free(st);
}

/* Queues `body` (copied) with `status` and content type. */
static enum MHD_Result fm_http_send(struct MHD_Connection *conn, int status,
                                    const char *content_type, const char *body, size_t len,
                                    const char *allow)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;
    if (!resp)
        return MHD_NO;
    if (content_type && MHD_add_response_header(resp, "Content-Type", content_type) != MHD_YES)
        goto fail;
    if (allow && MHD_add_response_header(resp, "Allow", allow) != MHD_YES)
        goto fail;
    rc = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
fail:
    MHD_destroy_response(resp);
    return MHD_NO;
}

/* Which error shape a non-model path gets: Anthropic's when the client
 * looks like an Anthropic SDK, OpenAI's otherwise. */
static enum fm_api fm_http_guess_api(struct MHD_Connection *conn, const char *url)
{
    if (strncmp(url, "/v1/messages", 12) == 0 ||
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "anthropic-version"))
        return FM_API_ANTHROPIC;
    if (strncmp(url, "/v1beta/", 8) == 0)
        return FM_API_GEMINI;
    return FM_API_RESPONSES; /* chat has the same error shape */
}

/* Adds "status" to `rec` (stolen; NULL still numbers the request) and
 * writes it to the log. */
static void fm_http_log(fm_http_t *h, json_t *rec, int status)
{
    if (rec && json_object_set_new(rec, "status", json_integer(status)) != 0) {
        json_decref(rec);
        rec = NULL;
    }
    fm_log_write(h->config.log, rec);
    json_decref(rec);
}

/* Logs `rec` (stolen) and answers with an error in the shape of `api`. */
static enum MHD_Result fm_http_fail(fm_http_t *h, struct MHD_Connection *conn, json_t *rec,
                                    enum fm_api api, int status, const char *message,
                                    const char *allow)
{
    char *body = fm_render_error_body(api, status, NULL, message, NULL);
    enum MHD_Result rc;
    fm_http_log(h, rec, status);
    if (!body)
        return MHD_NO;
    rc = fm_http_send(conn, status, "application/json", body, strlen(body), allow);
    free(body);
    return rc;
}

/* Answers 200 with `obj` (stolen; NULL: out of memory) as JSON. */
static enum MHD_Result fm_http_send_json(struct MHD_Connection *conn, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    enum MHD_Result rc;
    json_decref(obj);
    if (!text)
        return MHD_NO;
    rc = fm_http_send(conn, 200, "application/json", text, strlen(text), NULL);
    free(text);
    return rc;
}

/* Logs `rec` (stolen) and answers 200 with `obj` (stolen) as JSON. */
static enum MHD_Result fm_http_ok_json(fm_http_t *h, struct MHD_Connection *conn, json_t *rec,
                                       json_t *obj)
{
    fm_http_log(h, rec, obj ? 200 : 500);
    return fm_http_send_json(conn, obj);
}

/* new: the model list in a shape both SDKs accept: OpenAI's
 * {"object":"list","data":[{id,object,created,owned_by}]} with Anthropic's
 * {type,display_name,created_at} and paging fields added. */
static json_t *fm_http_models(const fm_http_t *h)
{
    const json_t *ids = fm_script_models(h->config.script);
    json_t *data = json_array();
    size_t i;
    json_t *id;
    if (!data)
        return NULL;
    json_array_foreach(ids, i, id) {
        if (json_array_append_new(data, json_pack("{s:O,s:s,s:i,s:s,s:s,s:O,s:s}", "id", id,
                                                  "object", "model", "created", 0, "owned_by",
                                                  "sj-fake-model", "type", "model",
                                                  "display_name", id, "created_at",
                                                  "2025-01-01T00:00:00Z")) != 0) {
            json_decref(data);
            return NULL;
        }
    }
    return json_pack("{s:s,s:o,s:b,s:O,s:O}", "object", "list", "data", data, "has_more", 0,
                     "first_id", json_array_get(ids, 0), "last_id",
                     json_array_get(ids, json_array_size(ids) - 1));
}

/* Answers one model request from the script: picks the step, renders it,
 * logs, sleeps the scripted delay, then queues a buffer or a stream.
 * `shape` is what the renderer reads ("model", "stream"): the body itself,
 * except for Gemini, which says both in the path. */
static enum MHD_Result fm_http_model(fm_http_t *h, struct MHD_Connection *conn, json_t *rec,
                                     enum fm_api api, const json_t *body, const json_t *shape,
                                     const struct fm_http_req *r)
{
    struct fm_script_choice choice;
    struct fm_render_reply reply;
    struct fm_http_stream *st = NULL;
    struct MHD_Response *resp;
    const json_t *headers;
    const char *name;
    json_t *value;
    char request_id[64];
    enum MHD_Result rc;
    int rendered;

    if (fm_script_pick(h->config.script, api, r->body.data, body,
                       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-session-id"),
                       &choice) != 0)
        return fm_http_fail(h, conn, rec, api, 500, "sj-fake-model: out of memory", NULL);
    rendered = fm_render_step(api, choice.step, shape, choice.seq, &reply);
    json_decref(choice.step);
    if (rendered != 0)
        return fm_http_fail(h, conn, rec, api, 500, "sj-fake-model: out of memory", NULL);
    if (rec &&
        (json_object_set_new(rec, "api", json_string(fm_script_api_name(api))) != 0 ||
         json_object_set_new(rec, "reply",
                             json_pack("{s:s,s:o,s:s,s:I,s:b}", "kind", choice.kind, "index",
                                       choice.index < 0 ? json_null()
                                                        : json_integer(choice.index),
                                       "section", choice.section, "seq",
                                       (json_int_t)choice.seq, "stream", reply.stream)) != 0)) {
        json_decref(rec);
        rec = NULL;
    }
    fm_http_log(h, rec, reply.status);

    if (reply.delay_ms > 0 && fm_util_sleep_ms(reply.delay_ms) != 0) {
        fm_render_reply_free(&reply);
        return MHD_NO; /* shutting down */
    }
    if (reply.stream) {
        st = calloc(1, sizeof *st);
        if (!st) {
            fm_render_reply_free(&reply);
            return MHD_NO;
        }
        st->reply = reply; /* the stream owns the frames from here on */
        memset(&reply, 0, sizeof reply);
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, FM_HTTP_STREAM_BLOCK,
                                                 fm_http_stream_read, st, fm_http_stream_free);
        if (!resp) {
            fm_http_stream_free(st);
            return MHD_NO;
        }
        if (MHD_add_response_header(resp, "Cache-Control", "no-cache") != MHD_YES)
            goto fail;
    } else if (reply.disconnect) {
        /* A non-streamed "disconnect": hang up without any answer. */
        fm_render_reply_free(&reply);
        return MHD_NO;
    } else {
        resp = MHD_create_response_from_buffer(reply.body_len, reply.body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            fm_render_reply_free(&reply);
            return MHD_NO;
        }
        reply.body = NULL; /* freed by libmicrohttpd with the response */
    }
    {
        const struct fm_render_reply *rp = st ? &st->reply : &reply;
        if (MHD_add_response_header(resp, "Content-Type", rp->content_type) != MHD_YES)
            goto fail;
        snprintf(request_id, sizeof request_id, "req_fake_%lu", choice.seq);
        if (MHD_add_response_header(resp, api == FM_API_ANTHROPIC ? "request-id" : "x-request-id",
                                    request_id) != MHD_YES)
            goto fail;
        headers = rp->headers;
        json_object_foreach((json_t *)headers, name, value)
            if (MHD_add_response_header(resp, name, json_string_value(value)) != MHD_YES)
                goto fail;
        rc = MHD_queue_response(conn, (unsigned)rp->status, resp);
    }
    MHD_destroy_response(resp);
    fm_render_reply_free(&reply);
    return rc;
fail:
    MHD_destroy_response(resp);
    fm_render_reply_free(&reply);
    return MHD_NO;
}

static const struct fm_http_route_def *fm_http_find_route(const char *url)
{
    const char *model = url + strlen(FM_HTTP_GEMINI_PREFIX);
    for (size_t i = 0; i < sizeof fm_http_routes / sizeof fm_http_routes[0]; i++)
        if (strcmp(url, fm_http_routes[i].path) == 0)
            return &fm_http_routes[i];
    if (strncmp(url, FM_HTTP_GEMINI_PREFIX, strlen(FM_HTTP_GEMINI_PREFIX)) == 0 &&
        *model != ':' && strchr(model, ':') && !strchr(model, '/'))
        return &fm_http_gemini_route;
    return NULL;
}

/* 1 if `method` is one of the comma-separated names in `allow`. */
static int fm_http_allowed(const char *allow, const char *method)
{
    size_t len = strlen(method);
    const char *p = allow;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, method, n) == 0)
            return 1;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

/* The whole request is in: route it, log it, answer it. */
static enum MHD_Result fm_http_dispatch(fm_http_t *h, struct MHD_Connection *conn,
                                        const char *url, const char *method,
                                        const struct fm_http_req *r)
{
    const struct fm_http_route_def *route = fm_http_find_route(url);
    enum fm_api api = fm_http_guess_api(conn, url);
    json_error_t jerr;
    json_t *body = NULL, *rec, *shape = NULL;
    const char *gemini_method = NULL;
    char msg[256];
    enum MHD_Result rc;

    if (r->body.len && !r->too_large)
        body = json_loadb(r->body.data, r->body.len, 0, &jerr);
    rec = fm_http_record(h, conn, method, r, body);

    if (!route) {
        /* The decoded path may hold any byte ("%FF"); keep the message UTF-8. */
        char *clean = fm_util_sanitize(url, strnlen(url, 150));
        snprintf(msg, sizeof msg, "sj-fake-model: no route for %s %s", method,
                 clean ? clean : "?");
        free(clean);
        rc = fm_http_fail(h, conn, rec, api, 404, msg, NULL);
        goto done;
    }
    if (!fm_http_allowed(route->allow, method)) {
        snprintf(msg, sizeof msg, "sj-fake-model: %s does not answer %s", route->path, method);
        rc = fm_http_fail(h, conn, rec, api, 405, msg, route->allow);
        goto done;
    }
    switch (route->id) {
    case FM_ROUTE_ROOT:
        rc = fm_http_ok_json(h, conn, rec, json_pack("{s:s}", "service", "sj-fake-model"));
        goto done;
    case FM_ROUTE_MODELS:
        rc = fm_http_ok_json(h, conn, rec, fm_http_models(h));
        goto done;
    case FM_ROUTE_STATE: {
        /* Logged first, so "requests" counts this one too. */
        json_t *state;
        fm_http_log(h, rec, 200);
        state = fm_script_state(h->config.script);
        if (state && json_object_set_new(state, "requests",
                                         json_integer((json_int_t)fm_log_count(h->config.log))) !=
                         0) {
            json_decref(state);
            state = NULL;
        }
        rc = fm_http_send_json(conn, state);
        goto done;
    }
    case FM_ROUTE_RESET:
        fm_script_reset(h->config.script);
        rc = fm_http_ok_json(h, conn, rec, json_pack("{s:b}", "ok", 1));
        goto done;
    case FM_ROUTE_MESSAGES:
    case FM_ROUTE_COUNT_TOKENS:
        api = FM_API_ANTHROPIC;
        break;
    case FM_ROUTE_RESPONSES:
        api = FM_API_RESPONSES;
        break;
    case FM_ROUTE_CHAT:
        api = FM_API_CHAT;
        break;
    case FM_ROUTE_GEMINI: {
        const char *model = url + strlen(FM_HTTP_GEMINI_PREFIX);
        const char *colon = strchr(model, ':');
        gemini_method = colon + 1;
        api = FM_API_GEMINI;
        if (strcmp(gemini_method, "generateContent") != 0 &&
            strcmp(gemini_method, "streamGenerateContent") != 0 &&
            strcmp(gemini_method, "countTokens") != 0) {
            char *clean = fm_util_sanitize(gemini_method, strnlen(gemini_method, 100));
            snprintf(msg, sizeof msg, "sj-fake-model: no Gemini method %s", clean ? clean : "?");
            free(clean);
            rc = fm_http_fail(h, conn, rec, api, 404, msg, NULL);
            goto done;
        }
        shape = json_pack("{s:s%,s:b}", "model", model, (size_t)(colon - model), "stream",
                          strcmp(gemini_method, "streamGenerateContent") == 0);
        if (!shape) {
            rc = fm_http_fail(h, conn, rec, api, 500, "sj-fake-model: out of memory", NULL);
            goto done;
        }
        break;
    }
    case FM_ROUTE_NONE:
    default:
        rc = fm_http_fail(h, conn, rec, api, 404, "sj-fake-model: no route", NULL);
        goto done;
    }

    if (r->too_large) {
        snprintf(msg, sizeof msg, "request body larger than %zu bytes",
                 h->config.max_body_bytes);
        rc = fm_http_fail(h, conn, rec, api, 413, msg, NULL);
        goto done;
    }
    if (!body) {
        if (r->body.len)
            snprintf(msg, sizeof msg, "invalid JSON in the request body: %s (line %d, column %d)",
                     jerr.text, jerr.line, jerr.column);
        else
            snprintf(msg, sizeof msg, "the request body is empty; expected a JSON object");
        rc = fm_http_fail(h, conn, rec, api, 400, msg, NULL);
        goto done;
    }
    if (!json_is_object(body)) {
        rc = fm_http_fail(h, conn, rec, api, 400, "the request body must be a JSON object", NULL);
        goto done;
    }
    if (route->id == FM_ROUTE_COUNT_TOKENS)
        rc = fm_http_ok_json(h, conn, rec, json_pack("{s:i}", "input_tokens", 10));
    else if (gemini_method && strcmp(gemini_method, "countTokens") == 0)
        rc = fm_http_ok_json(h, conn, rec, json_pack("{s:i}", "totalTokens", 10));
    else
        rc = fm_http_model(h, conn, rec, api, body, shape ? shape : body, r);
done:
    json_decref(shape);
    json_decref(body);
    return rc;
}

static enum MHD_Result fm_http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    fm_http_t *h = cls;
    struct fm_http_req *r = *req_cls;
    (void)version;

    if (!r)
        return MHD_NO; /* the URI callback ran out of memory: drop the connection */
    if (r->answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!r->started) {
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        r->started = 1;
        /* A declared oversize body is refused before a byte of it is read. */
        if (cl) {
            char *end;
            unsigned long long n;
            errno = 0;
            n = strtoull(cl, &end, 10);
            if (errno == ERANGE || n > h->config.max_body_bytes) {
                r->too_large = 1;
                r->answered = 1;
                return fm_http_dispatch(h, conn, url, method, r);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!r->too_large &&
            fm_util_buf_append(&r->body, upload_data, *upload_data_size,
                               h->config.max_body_bytes) != 0) {
            r->too_large = 1; /* keep reading, but drop the bytes */
            fm_util_buf_free(&r->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    r->answered = 1;
    return fm_http_dispatch(h, conn, url, method, r);
}

/* ---- start and stop ----------------------------------------------------------- */

fm_http_t *fm_http_start(const struct fm_http_config *config, uint16_t *port_out, char *err,
                         size_t size)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    const char *host = strcmp(config->host, "localhost") == 0 ? "127.0.0.1" : config->host;
    int one = 1;
    int fd;
    fm_http_t *h;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(config->port);
    /* A fake that answers for a model must never be reachable from outside. */
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
        snprintf(err, size, "--host %s: only IPv4 loopback addresses (127.0.0.0/8) or localhost",
                 config->host);
        return NULL;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, size, "socket: %s", strerror(errno));
        return NULL;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        snprintf(err, size, "cannot listen on %s:%u: %s", host, (unsigned)config->port,
                 strerror(errno));
        close(fd);
        return NULL;
    }
    h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, size, "out of memory");
        close(fd);
        return NULL;
    }
    h->config = *config;
    h->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, fm_http_handle, h,
        /* The logger first, or libmicrohttpd complains on stderr. */
        MHD_OPTION_EXTERNAL_LOGGER, fm_http_mhd_log, h, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_URI_LOG_CALLBACK, fm_http_uri_log, h, MHD_OPTION_NOTIFY_COMPLETED,
        fm_http_completed, h, MHD_OPTION_CONNECTION_LIMIT, FM_HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, FM_HTTP_IDLE_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)FM_HTTP_CONN_MEMORY, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, size, "cannot start libmicrohttpd");
        close(fd);
        free(h);
        return NULL;
    }
    *port_out = ntohs(sa.sin_port);
    return h;
}

void fm_http_stop(fm_http_t *h)
{
    atomic_store(&fm_util_stopping, 1);
    if (!h)
        return;
    MHD_stop_daemon(h->daemon); /* joins every connection thread, closes the socket */
    free(h);
}
