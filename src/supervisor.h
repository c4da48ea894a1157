/* The supervisor: one libuv loop thread that owns every agent child
 * process, timer and pipe.  Other threads never touch loop handles; they
 * hand work to the loop with supervisor_post(). */
#ifndef SJ_SUPERVISOR_H
#define SJ_SUPERVISOR_H

#include "err.h"

#include <uv.h>

typedef struct supervisor supervisor_t;

/* Starts the loop thread.  new: stopped and freed by supervisor_stop(). */
int supervisor_start(supervisor_t **out, struct err *err);

/* Runs `fn(loop, arg)` on the loop thread, in posting order.  Returns
 * ERR_INVALID once the supervisor is stopping (fn will not run) or
 * ERR_NOMEM.  Thread: any. */
int supervisor_post(supervisor_t *s, void (*fn)(uv_loop_t *loop, void *arg), void *arg,
                    struct err *err);

/* Runs `fn` on the loop thread and waits for it to return.  Thread: any but
 * the loop's. */
int supervisor_call(supervisor_t *s, void (*fn)(uv_loop_t *loop, void *arg), void *arg,
                    struct err *err);

/* Runs the posted work still queued, closes every handle still open on the
 * loop, joins the thread and frees `s`. */
void supervisor_stop(supervisor_t *s);

#endif
