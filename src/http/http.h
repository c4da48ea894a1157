/* The HTTP listener: libmicrohttpd with an internal epoll thread pool and
 * suspend/resume, so idle event streams cost no CPU. */
#ifndef SJ_HTTP_H
#define SJ_HTTP_H

#include "base/err.h"
#include "journal/journal.h"
#include "sessions/sessions.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct http_cors {
    const char **origins; /* exact origins allowed, besides the inspector's */
    size_t n_origins;
    const char **methods; /* NULL: mirror what a preflight asks for */
    size_t n_methods;
    const char **headers; /* NULL: mirror what a preflight asks for */
    size_t n_headers;
    int allow_credentials;
    int no_inspector;     /* do not allow the hosted inspector's origin */
};

struct http_config {
    const char *host;          /* literal IPv4 or IPv6 address */
    uint16_t port;             /* 0: any free port */
    const char *token;         /* NULL: no authentication */
    struct http_cors cors;
    unsigned threads;          /* worker threads */
    size_t max_body_bytes;     /* larger request bodies get 413 */
    uint64_t max_upload_bytes; /* larger file uploads (/v1/fs) get 413 */
    unsigned heartbeat_ms;     /* SSE comment interval */
    /* GET /v1/exports: sets *out to a new array of the export targets'
     * states (the caller, a higher layer, owns the exporters); 0 or an
     * ERR_* code.  NULL: no exports, an empty array.  Any thread. */
    int (*exports_status)(void *arg, json_t **out);
    void *exports_arg;
};

typedef struct http http_t;

/* Binds and starts serving.  *port_out gets the bound port.  Strings in
 * `config` must outlive the server.  new: stopped with http_stop(). */
int http_start(const struct http_config *config, sessions_t *sessions, journal_t *journal,
               http_t **out, uint16_t *port_out, struct err *err);

/* Ends every event stream, stops the listener and its threads, frees `h`. */
void http_stop(http_t *h);

#endif
