/* What a route handler sees of a request, and how it answers.  Implemented
 * by http.c (which parses, authenticates and dispatches); used by the route
 * tables (routes_*.c) and the SSE writer (sse.c).  Knows no handler. */
#ifndef SJ_REQUEST_H
#define SJ_REQUEST_H

#include "base/buf.h"
#include "base/err.h"
#include "journal/journal.h"
#include "sessions/sessions.h"
#include "workspace/processes.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdint.h>

/* A connection that makes no progress for this long is closed: libmicrohttpd
 * times out the ones it drives, the SSE hub the pushes it is finishing. */
#define HTTP_IDLE_TIMEOUT_S 60

struct sse_hub;
struct terminal_hub;
struct http_inflight;
struct http_route;

/* What every handler may reach; owned by the listener, shared read-only. */
struct http_server_ctx {
    sessions_t *sessions;
    journal_t *journal;
    struct sse_hub *sse;
    int (*exports_status)(void *arg, json_t **out); /* http_config's, or NULL */
    void *exports_arg;
    struct http_inflight *inflight; /* Idempotency-Keys of requests running now */
    processes_t *processes;         /* the workspace's processes */
    uint64_t max_upload_bytes;       /* the largest file or tar a /v1/fs route takes */
    /* A handler that may hold its worker waiting (/stop and /kill with
     * waitMs) takes one of `wait_slots` first: one worker fewer than there
     * are, so one always stays free for every other client. */
    unsigned wait_slots;
    _Atomic unsigned *waiting;
    struct terminal_hub *terminals;  /* the process terminals' sockets (terminal.h) */
};

struct http_request {
    struct MHD_Connection *conn;
    const struct http_server_ctx *server;
    const char *method;  /* as sent; HEAD is routed as GET */
    const char *version; /* "HTTP/1.1", "HTTP/1.0" */
    char *params[2];     /* decoded path parameters ({session_id}, {permission_id}...) */
    struct buf body;
    json_t *cors_headers; /* {name: value} to add to the response (CORS, and
                           * Idempotent-Replayed), or NULL; owned */
    void *wait;           /* a suspended handler's state until it is called again */
    void (*wait_free)(void *wait); /* frees `wait` when the request ends */
    const struct http_route *route; /* the route matched */
    const char *path;    /* as sent (percent-encoded), without the query */
    /* The Idempotency-Key record to hand to sessions_*() (http_idem_begin()),
     * or NULL; owned, with the key held, until the handler has returned for
     * the last time. */
    struct journal_idem *idem;
    /* A streamed body's state (struct http_body_stream), set by its `begin`
     * and freed with stream_free when the request ends, however it ends. */
    void *stream;
    void (*stream_free)(void *stream);
};

/* One line of a route table: a pattern's "*" segments are the path
 * parameters, in order.  Tables end with a NULL method. */
#define HTTP_ROUTE_QUERY_TOKEN 2
struct http_route {
    const char *method;
    const char *pattern;
    enum MHD_Result (*handler)(struct http_request *req);
    int public_route; /* 1: reachable without a token; HTTP_ROUTE_QUERY_TOKEN:
                       * the token may also come as ?access_token= (a browser's
                       * WebSocket cannot set headers) */
};

/* A route that takes its body as a stream rather than in req->body (file
 * uploads, which --max-body-bytes does not bound): a line of a stream table
 * (routes.h) names its route's row.  After the route matched and the token
 * was checked, http.c calls `begin` (before any body byte: refuse a declared
 * Content-Length here), then `chunk` for each piece of the body as it
 * arrives, then the route's handler, with req->body empty.  A non-zero
 * return of `begin` or `chunk` answers that error: at once for `begin`,
 * after the rest of the body was read and discarded for `chunk` (this
 * libmicrohttpd cannot answer mid-body), and the handler is not called.
 * Thread: the request's HTTP worker. */
struct http_body_stream {
    const struct http_route *route;
    int (*begin)(struct http_request *req, struct err *err);
    int (*chunk)(struct http_request *req, const char *data, size_t len, struct err *err);
};

/* The request's params, body and CORS headers are freed once its handler
 * returns: a handler copies what outlives it. */

/* Looks up a query argument, percent-decoded.  0 with *out new (free()
 * it) or NULL when absent; ERR_INVALID naming the argument when its
 * escapes are broken or decode to a NUL byte, ERR_NOMEM. */
int http_query(struct http_request *req, const char *name, char **out, struct err *err);
/* Looks up a request header (case-insensitive).  borrowed, or NULL. */
const char *http_header(struct http_request *req, const char *name);
/* 1 for a HEAD request: the handler answers with headers only. */
int http_is_head(const struct http_request *req);

/* Parses the body as a JSON object.  new: *out; ERR_INVALID with a message. */
int http_body_object(struct http_request *req, json_t **out, struct err *err);

/* Reads an optional boolean query argument (true/false/1/0). */
int http_query_bool(struct http_request *req, const char *name, const char *alias, int *out,
                    struct err *err);
/* Reads an optional non-negative integer query argument; *present says if given. */
int http_query_u64(struct http_request *req, const char *name, uint64_t *out, int *present,
                   struct err *err);

/* Idempotency-Key, for a route that changes state: call it first.  A
 * request with the header is handled at most once per key (see
 * docs/openapi.json): the key is held while the request runs, and its
 * outcome is journaled by the sessions call, with what that call committed.
 *   0: go on.  req->idem is NULL (no header) or the record to pass to the
 *      sessions call, whose answer will be `status` (and, for a create, the
 *      body sessions_create() builds); the handler's answer must be that one.
 *   1: answered already, *result is the handler's return value: a 400 for a
 *      malformed key, 409 while a request with the key runs, 422 for a key
 *      first used for another request (method, path or body), or the
 *      remembered answer replayed.
 *   2: only when `replay` is non-NULL: the request is a repeat and the
 *      handler answers it from *replay (new: journal_idem_info_clear()).
 * A request re-run after a wait (an install) goes on with its record. */
int http_idem_begin(struct http_request *req, unsigned status,
                    struct journal_idem_info *replay, enum MHD_Result *result);

/* For a request that commits nothing through a sessions call (an install):
 * remembers req->idem's outcome alone.  0 if there is none. */
int http_idem_commit_alone(struct http_request *req, struct err *err);

/* FNV-1a 64 of method, NUL, path, NUL, the body's length (8 bytes, little
 * endian) and the body: what tells a repeated request from another one
 * under the same key.  Not a defence against a client that forges
 * collisions with its own keys, which could only confuse itself. */
uint64_t http_request_hash(const char *method, const char *path, const char *body,
                           size_t body_len);

/* Responders: each queues the response and returns MHD_YES/MHD_NO. */
enum MHD_Result http_respond_json(struct http_request *req, unsigned status, json_t *body);
enum MHD_Result http_respond_text(struct http_request *req, unsigned status,
                                  const char *content_type, const char *text, size_t len,
                                  int copy);
enum MHD_Result http_respond_empty(struct http_request *req, unsigned status);
enum MHD_Result http_respond_error(struct http_request *req, const struct err *err);
/* Queues `resp` with the CORS headers added, and destroys the handle. */
enum MHD_Result http_queue(struct http_request *req, unsigned status, struct MHD_Response *resp);

#endif
