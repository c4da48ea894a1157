/* The HTTP side of sj-fake-model: a libmicrohttpd daemon on a loopback
 * address that answers model requests from the script, logs every request
 * and serves the few side endpoints the CLIs probe. */
#ifndef FM_HTTP_H
#define FM_HTTP_H

#include "fm_log.h"
#include "fm_script.h"

#include <stddef.h>
#include <stdint.h>

struct fm_http_config {
    const char *host;      /* an IPv4 loopback address, or "localhost" */
    uint16_t port;         /* 0: any free port */
    size_t max_body_bytes; /* larger request bodies get 413 */
    int redact;            /* log credentials as "[redacted]" */
    int all_headers;       /* log every header, not just the selected ones */
    fm_script_t *script;   /* borrowed; must outlive the daemon */
    fm_log_t *log;         /* borrowed; must outlive the daemon */
};

typedef struct fm_http fm_http_t;

/* Binds and starts serving.  new: stop with fm_http_stop().  NULL on
 * failure with the reason in err[size].  *port_out gets the bound port. */
fm_http_t *fm_http_start(const struct fm_http_config *config, uint16_t *port_out /* OUT */,
                         char *err, size_t size);

/* Sets fm_util_stopping, cuts scripted delays and open streams short,
 * closes every connection and frees `h`.  NULL is a no-op. */
void fm_http_stop(fm_http_t *h);

#endif
