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
extern const struct http_route routes_processes_table[];
extern const struct http_route routes_config_table[]; /* /v1/config/{mcp,skills} */
extern const struct http_route routes_fs_table[];

/* The routes whose bodies are streams (request.h), each table ending with a
 * NULL route: the workspace's file uploads (routes_fs.c). */
extern const struct http_body_stream routes_fs_streams[];
extern const struct http_route routes_ui_table[]; /* the inspector's files (routes_ui.c) */

struct install_job;

/* Waits for an agent install without holding this worker (routes_meta.c):
 * takes `job`, suspends the connection and returns MHD_YES; the install's
 * end resumes it and libmicrohttpd calls the handler again, which gets the
 * result from routes_install_waited(). */
enum MHD_Result routes_install_wait(struct http_request *req, struct install_job *job);
/* 1 if this request waited for an install (its result in *rc and *err), else 0. */
int routes_install_waited(struct http_request *req, int *rc, struct err *err);

#endif
