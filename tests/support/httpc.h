/* A small blocking HTTP/1.1 client for the integration tests.
 *
 * It only talks to 127.0.0.1, opens one connection per request
 * ("Connection: close"), and bounds every connect and read by a timeout
 * (poll), so a hung server fails a test instead of hanging it.  Responses
 * with Content-Length, chunked transfer coding, or read-until-close bodies
 * are handled.  The SSE reader keeps its connection open and hands back one
 * parsed event at a time. */
#ifndef SJ_TEST_HTTPC_H
#define SJ_TEST_HTTPC_H

#include <jansson.h>
#include <stddef.h>

/* Error codes (all negative). */
#define HTTPC_ETIMEOUT (-1) /* nothing arrived within the timeout */
#define HTTPC_ECLOSED (-2)  /* the peer closed the connection too early */
#define HTTPC_EPROTO (-3)   /* not a well-formed HTTP response */
#define HTTPC_ESYS (-4)     /* socket error (errno) */
#define HTTPC_ENOMEM (-5)

/* The default bound on one request, in milliseconds. */
#define HTTPC_DEFAULT_TIMEOUT_MS 10000

/* A static name for an HTTPC_E* code. */
const char *httpc_strerror(int code);

struct httpc_header {
    char *name;
    char *value;
};

struct httpc_response {
    int status;
    struct httpc_header *headers;
    size_t n_headers;
    char *body; /* NUL-terminated (the NUL is not counted in body_len) */
    size_t body_len;
};

/* Sends `method path` to 127.0.0.1:port with the extra header lines in
 * `headers` (each "Name: value", NULL-terminated array, may be NULL) and the
 * body (NULL: none; a Content-Length is sent whenever body is non-NULL).
 * Fills *resp (free with httpc_response_free()).  0 or an HTTPC_E* code. */
int httpc_request(int port, const char *method, const char *path, const char *const *headers,
                  const char *body, size_t body_len, int timeout_ms,
                  struct httpc_response *resp);

/* Sends `raw` verbatim (a whole request, possibly malformed) and reads the
 * response. */
int httpc_raw(int port, const char *raw, size_t raw_len, int timeout_ms,
              struct httpc_response *resp);

/* The first header named `name` (case-insensitive), or NULL. */
const char *httpc_header(const struct httpc_response *resp, const char *name);
/* How many headers are named `name`. */
size_t httpc_header_count(const struct httpc_response *resp, const char *name);

/* new: the body parsed as JSON, or NULL. */
json_t *httpc_json(const struct httpc_response *resp);

void httpc_response_free(struct httpc_response *resp);

/* ---- server-sent events -------------------------------------------------- */

struct httpc_sse;

struct httpc_sse_event {
    char *id;       /* the last "id:" value of the block, or NULL if none */
    char *event;    /* the "event:" value, or NULL */
    char *data;     /* the "data:" lines joined by "\n" ("" if none) */
    size_t data_len;
    char *raw;      /* the block exactly as received, blank line included */
    size_t raw_len;
    unsigned comments; /* comment lines (":...") in this block */
};

/* Opens a request whose response is an event stream.  Fills *head with the
 * status and headers.  If the status is 200 and the content type is
 * text/event-stream, *out gets the stream (0 returned); otherwise the whole
 * body is read into head->body, *out is NULL, and 0 is returned, so callers
 * can assert on an error response.  HTTPC_E* on transport failure. */
int httpc_sse_open(int port, const char *method, const char *path, const char *const *headers,
                   const char *body, size_t body_len, int timeout_ms, struct httpc_response *head,
                   struct httpc_sse **out);

/* Waits up to timeout_ms for the next event (a block with at least one data
 * or id field; comment-only blocks are counted but not returned).
 *   1: *ev filled (free with httpc_sse_event_free())
 *   0: the stream ended cleanly (connection closed / last chunk)
 *   HTTPC_ETIMEOUT or another HTTPC_E* code. */
int httpc_sse_next(struct httpc_sse *s, int timeout_ms, struct httpc_sse_event *ev);

/* Waits up to timeout_ms for the stream to end, discarding anything else.
 * 0 when it ended, HTTPC_ETIMEOUT if it is still open, or an error.  The
 * number of events discarded is stored in *skipped if non-NULL. */
int httpc_sse_wait_closed(struct httpc_sse *s, int timeout_ms, unsigned *skipped);

/* Comment lines seen on the stream so far (keep-alives and the like). */
unsigned httpc_sse_comments(const struct httpc_sse *s);

void httpc_sse_event_free(struct httpc_sse_event *ev);
void httpc_sse_close(struct httpc_sse *s);

#endif
