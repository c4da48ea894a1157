/* The HTTP client behind `sandbox-journal api`: one libcurl transfer per
 * call against a sandbox-agent v1 endpoint, plus a pure Server-Sent Events
 * parser (no I/O) that the streaming calls feed and the unit tests call
 * directly.
 *
 * Thread: the command line's main thread only (client_new() initializes
 * libcurl, which must happen before any other thread exists). */
#ifndef SJ_CLIENT_H
#define SJ_CLIENT_H

#include "base/buf.h"
#include "base/err.h"

#include <signal.h>
#include <stdio.h>
#include <stddef.h>

typedef struct client client_t;

/* `endpoint` is "http(s)://host[:port][/prefix]" (a trailing '/' is
 * dropped); `token` (may be NULL) is sent as "Authorization: Bearer <token>".
 * Both are copied.  ERR_INVALID for an endpoint that is not http(s).
 * new: *out is freed with client_free(). */
int client_new(const char *endpoint, const char *token, client_t **out, struct err *err);
void client_free(client_t *c);

/* Sends "Idempotency-Key: <key>" with every later request (copied), so a
 * POST repeated with the same key is carried out once.  ERR_INVALID unless
 * 1 to 255 printable ASCII characters. */
int client_set_idempotency_key(client_t *c, const char *key, struct err *err);

/* new: `segment` percent-encoded for use as one path segment (a '/' inside
 * an id cannot split the path), freed with free().  NULL if memory ran out. */
char *client_escape(const char *segment);

/* A response as received.  Strings are owned by the struct. */
struct client_response {
    long status;        /* HTTP status code */
    char *content_type; /* NULL when the server sent none */
    char *body;         /* NUL-terminated (not counted in body_len); NULL if empty */
    size_t body_len;
};

void client_response_clear(struct client_response *r);

/* Sends `method` to endpoint + `path` (`path` starts with '/' and is already
 * escaped); `json_body` (NULL: an empty body) goes with Content-Type
 * application/json.  Returns 0 once any response arrived, whatever its
 * status, with *resp filled (the caller clears it); a negative ERR_* code
 * with a one-line err->msg when the server could not be reached or the
 * exchange broke (*resp then holds nothing to free). */
int client_request(client_t *c, const char *method, const char *path, const char *json_body,
                   struct client_response *resp, struct err *err);

/* Like client_request, with raw bodies streamed both ways: `in` (NULL: no
 * body) is read with fread() as it is sent, with Content-Type
 * `content_type`, declaring `in_size` bytes (-1: unknown, sent chunked);
 * a 2xx answer's body is written to `out` as it arrives when `out` is
 * non-NULL (resp->body then stays NULL), any other answer is buffered into
 * resp->body.  Nothing is held whole in memory.  Both files are borrowed. */
int client_transfer(client_t *c, const char *method, const char *path, FILE *in,
                    long long in_size, const char *content_type, FILE *out,
                    struct client_response *resp, struct err *err);

/* ---- server-sent events -------------------------------------------------- */

/* One dispatched event.  Strings are borrowed for the callback. */
struct client_sse_event {
    const char *id;    /* the last event id seen on the stream ("" if none yet) */
    const char *event; /* the "event:" type, "message" when absent */
    const char *data;  /* the "data:" lines joined with '\n' */
    size_t data_len;
};

/* Return 0 to go on, or a negative ERR_* code to stop (that code is then
 * returned by whoever fed the parser; the callback explains it itself, the
 * parser leaves `err` untouched). */
typedef int (*client_sse_fn)(void *arg, const struct client_sse_event *ev);

/* The parser's state between chunks.  Embed it; fields are private. */
struct client_sse_parser {
    struct buf line;    /* the unfinished line */
    struct buf data;    /* data lines of the unfinished event, each + '\n' */
    struct buf event;   /* its event type */
    struct buf last_id; /* the last event id, kept across events */
    int cr_pending;     /* the previous chunk ended in '\r' (a '\n' may follow) */
    int first_line;     /* a byte-order mark may still start the stream */
    size_t max_line;    /* longest line or event accepted, in bytes */
};

/* Lines or events longer than this are refused as a protocol error. */
#define CLIENT_SSE_MAX_LINE (16u * 1024u * 1024u)

void client_sse_init(struct client_sse_parser *p);
void client_sse_free(struct client_sse_parser *p);

/* Parses the next `len` bytes of an event stream, however they are split,
 * following the WHATWG rules: lines end in CRLF, LF or CR; ":" starts a
 * comment; one space after the field's colon is dropped; a blank line
 * dispatches the event if it has data; "id" persists across events unless it
 * contains a NUL; "retry" and unknown fields are ignored; a leading UTF-8
 * byte-order mark is skipped.  Calls `fn` for each complete event.  Returns
 * 0, the callback's non-zero value, ERR_INVALID for an over-long line, or
 * ERR_NOMEM.  Bytes after the last blank line stay buffered; an unfinished
 * event at the end of a stream is never dispatched. */
int client_sse_feed(struct client_sse_parser *p, const char *bytes, size_t len,
                    client_sse_fn fn, void *arg, struct err *err);

/* Like client_request, for a route answering with an event stream: sends
 * "Accept: text/event-stream" and, when the answer is 2xx text/event-stream,
 * calls `fn` for each event as it arrives until the server ends the stream,
 * `fn` returns non-zero, or *stop becomes non-zero (checked at least every
 * 100 ms, so a signal handler can set it).  Any other answer is buffered into
 * resp->body as client_request would.  resp->status and content_type are set
 * in every case.  Returns 0 (a clean end or a stop), the callback's code, or
 * a transport error with err filled.  `stop` may be NULL. */
int client_stream(client_t *c, const char *method, const char *path, const char *json_body,
                  const volatile sig_atomic_t *stop, client_sse_fn fn, void *arg,
                  struct client_response *resp, struct err *err);

#endif
