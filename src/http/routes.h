/* What route handlers see of a request, and how they answer.  Shared by
 * http.c (which parses and dispatches), routes_*.c and sse.c only. */
#ifndef SJ_ROUTES_H
#define SJ_ROUTES_H

#include "base/buf.h"
#include "base/err.h"
#include "journal/journal.h"
#include "sessions/sessions.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>

struct http_server_ctx {
    sessions_t *sessions;
    journal_t *journal;
    unsigned heartbeat_ms;
    struct sse_hub *sse;
};

struct http_request {
    struct MHD_Connection *conn;
    const struct http_server_ctx *server;
    const char *method;
    char *params[2];     /* decoded path parameters ({session_id}, {permission_id}...) */
    struct buf body;
    json_t *cors_headers; /* {name: value} to add to the response; owned */
    void *wait;           /* a suspended handler's state until it is called again */
    void (*wait_free)(void *wait); /* frees `wait` when the request ends */
};

/* Looks up a query argument, percent-decoded.  new: free() it; NULL if absent. */
char *http_query(struct http_request *req, const char *name);
/* Looks up a request header (case-insensitive).  borrowed, or NULL. */
const char *http_header(struct http_request *req, const char *name);

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

/* Parses a MessageRequest body.  new: *body_out owns the string in *message. */
int routes_parse_message(struct http_request *req, json_t **body_out, const char **message,
                         struct err *err);

struct install_job;

/* Waits for an agent install without holding this worker (routes_meta.c):
 * takes `job`, suspends the connection and returns MHD_YES; the install's
 * end resumes it and libmicrohttpd calls the handler again, which gets the
 * result from routes_install_waited(). */
enum MHD_Result routes_install_wait(struct http_request *req, struct install_job *job);
/* 1 if this request waited for an install (its result in *rc and *err), else 0. */
int routes_install_waited(struct http_request *req, int *rc, struct err *err);

/* Route handlers (routes_meta.c, routes_sessions.c, sse.c). */
enum MHD_Result routes_root(struct http_request *req);
enum MHD_Result routes_health(struct http_request *req);
enum MHD_Result routes_openapi(struct http_request *req);
enum MHD_Result routes_agents(struct http_request *req);
enum MHD_Result routes_agent_install(struct http_request *req);
enum MHD_Result routes_agent_modes(struct http_request *req);
enum MHD_Result routes_sessions_list(struct http_request *req);
enum MHD_Result routes_session_create(struct http_request *req);
enum MHD_Result routes_session_message(struct http_request *req);
enum MHD_Result routes_session_terminate(struct http_request *req);
enum MHD_Result routes_session_events(struct http_request *req);
enum MHD_Result routes_permission_reply(struct http_request *req);
enum MHD_Result routes_question_reply(struct http_request *req);
enum MHD_Result routes_question_reject(struct http_request *req);

/* sse.c */
struct sse_hub;
/* new: the hub that tracks open streams for heartbeats; sse_hub_stop() frees. */
int sse_hub_start(journal_t *journal, unsigned heartbeat_ms, struct sse_hub **out,
                  struct err *err);
/* Ends every stream (they see end-of-stream at their next read). */
void sse_hub_close_streams(struct sse_hub *hub);
void sse_hub_stop(struct sse_hub *hub);
enum MHD_Result routes_session_events_sse(struct http_request *req);
enum MHD_Result routes_session_message_stream(struct http_request *req);

#endif
