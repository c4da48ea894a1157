/* Restart with back-off for an agent server shared by all the sessions of
 * its agent (Codex's app-server, OpenCode's serve), and the v1
 * ServerStatusInfo record GET /v1/agents shows of it.
 *
 * The adapter reports what happened (started, answering, crashed, failed
 * to start, stopped); the record says how long to wait before the next
 * start: the first delay doubling at every crash or failed start up to a
 * cap, back to the first once a run lasted `reset_after_ms`.
 *
 * Thread: any.  Each record has its own lock, taken last and never held
 * while calling out, so callers may hold theirs. */
#ifndef SJ_SUPERVISOR_RESTART_H
#define SJ_SUPERVISOR_RESTART_H

#include "base/err.h"

#include <jansson.h>
#include <stdint.h>

typedef struct supervisor_restart supervisor_restart_t;

struct supervisor_restart_policy {
    uint64_t first_ms;       /* the delay after the first crash */
    uint64_t max_ms;         /* no delay is longer */
    uint64_t reset_after_ms; /* a run this long forgets earlier crashes */
};

/* 0.5 s doubling to 30 s, reset after a minute of uptime. */
extern const struct supervisor_restart_policy supervisor_restart_default;

/* new: a "stopped" record with no restart.  `policy` is copied (NULL: the
 * default).  Freed by supervisor_restart_free(). */
int supervisor_restart_new(const struct supervisor_restart_policy *policy,
                           supervisor_restart_t **out, struct err *err);

void supervisor_restart_free(supervisor_restart_t *r);

/* The server process was started: its run counts from now. */
void supervisor_restart_started(supervisor_restart_t *r);

/* The server answers: status "running", uptime from now. */
void supervisor_restart_running(supervisor_restart_t *r);

/* The server ended because it was asked to: status "stopped". */
void supervisor_restart_stopped(supervisor_restart_t *r);

/* The server ended on its own: status "error" with `why` (copied),
 * restartCount + 1.  Returns the delay before it should start again, which
 * supervisor_restart_wait_ms() counts down. */
uint64_t supervisor_restart_crashed(supervisor_restart_t *r, const char *why);

/* The server could not be started: status "error" with `why`; the back-off
 * grows as for a crash, the restart count does not.  Returns the delay. */
uint64_t supervisor_restart_failed(supervisor_restart_t *r, const char *why);

/* Milliseconds left before a start is due; 0 when it may start now. */
uint64_t supervisor_restart_wait_ms(supervisor_restart_t *r);

/* new: the v1 ServerStatusInfo {status, restartCount, lastError?,
 * uptimeMs?} of `r`; for NULL (an agent whose server never ran) "stopped"
 * with no restart.  NULL when memory ran out. */
json_t *supervisor_restart_status_json(supervisor_restart_t *r);

#endif
