/* The route tables the listener dispatches through, one per file: the
 * service and agent routes (routes_meta.c) and the session routes
 * (routes_sessions.c, whose event streams are written by sse.c).  Each table
 * ends with a NULL method; http.c matches requests against them in order and
 * knows no handler by name. */
#ifndef SJ_ROUTES_H
#define SJ_ROUTES_H

#include "http/request.h"

extern const struct http_route routes_meta_table[];
extern const struct http_route routes_sessions_table[];

#endif
