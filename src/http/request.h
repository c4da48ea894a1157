/* What a route handler sees of a request, and how it answers.  Implemented
 * by http.c (which parses, authenticates and dispatches); used by the route
 * tables (routes_*.c) and the SSE writer (sse.c).  Knows no handler. */
#ifndef SJ_REQUEST_H
#define SJ_REQUEST_H

#include "base/buf.h"
#include "base/err.h"
#include "journal/journal.h"
#include "sessions/sessions.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>

struct sse_hub;

/* What every handler may reach; owned by the listener, shared read-only. */
struct http_server_ctx {
    sessions_t *sessions;
    journal_t *journal;
    struct sse_hub *sse;
    int (*exports_status)(void *arg, json_t **out); /* http_config's, or NULL */
    void *exports_arg;
};

struct http_request {
    struct MHD_Connection *conn;
    const struct http_server_ctx *server;
    const char *method;  /* as sent; HEAD is routed as GET */
    const char *version; /* "HTTP/1.1", "HTTP/1.0" */
    char *params[2];     /* decoded path parameters ({session_id}, {permission_id}...) */
    struct buf body;
    json_t *cors_headers; /* {name: value} to add to the response, or NULL; owned */
    void *wait;           /* a suspended handler's state until it is called again */
    void (*wait_free)(void *wait); /* frees `wait` when the request ends */
};

/* One line of a route table: a pattern's "*" segments are the path
 * parameters, in order.  Tables end with a NULL method. */
struct http_route {
    const char *method;
    const char *pattern;
    enum MHD_Result (*handler)(struct http_request *req);
    int public_route; /* reachable without a token */
};

/* The request's params, body and CORS headers are freed once its handler
 * returns: a handler copies what outlives it. */

/* Looks up a query argument, percent-decoded.  new: free() it; NULL if absent. */
char *http_query(struct http_request *req, const char *name);
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
