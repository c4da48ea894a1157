/* The workspace's processes (/v1/processes): programs a client starts in the
 * sandbox, run as children of the supervisor loop like agents, with every
 * read of their output journaled (journal_proc_*) under a per-process
 * sequence, so their logs read the same after a restart.  A process found
 * running in the journal at start-up (the server died under it) is
 * reported exited with an unknown exit code, its log intact.
 *
 * Request and response bodies are the sandbox-agent SDK's JSON shapes
 * (ProcessCreateRequest, ProcessInfo, ProcessRunRequest/Response,
 * ProcessConfig, ProcessLogsResponse).  Errors: ERR_INVALID (400),
 * ERR_PROC_NOT_FOUND (404), ERR_PROC_CONFLICT (409: running, exited, not a
 * terminal, too many), ERR_TOO_LARGE (413), ERR_NOT_INSTALLED (no such
 * program).  Thread: any, unless said otherwise. */
#ifndef SJ_PROCESSES_H
#define SJ_PROCESSES_H

#include "agents/supervisor.h"
#include "base/err.h"
#include "journal/journal.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct processes processes_t;

/* Loads the journal's process records.  new: *out; processes_close() before
 * supervisor_stop(), processes_free() after journal_close(). */
int processes_open(journal_t *journal, supervisor_t *supervisor, processes_t **out,
                   struct err *err);
/* Stops every running child (their exits are journaled while the
 * supervisor drains), answers the runs still waiting, and refuses new
 * ones.  Before http_stop(), so no request is left suspended.  Thread: main. */
void processes_close(processes_t *p);
void processes_free(processes_t *p);

/* GET/POST /v1/processes/config.  new: *out. */
int processes_config_get(processes_t *p, json_t **out, struct err *err);
int processes_config_set(processes_t *p, const json_t *body, json_t **out, struct err *err);

/* POST /v1/processes: new: *out is the ProcessInfo. */
int processes_create(processes_t *p, const json_t *body, json_t **out, struct err *err);
/* GET /v1/processes: owner NULL or "user" (every process is the user's). */
int processes_list(processes_t *p, const char *owner, json_t **out, struct err *err);
int processes_get(processes_t *p, const char *id, json_t **out, struct err *err);
/* DELETE: ERR_PROC_CONFLICT while it runs. */
int processes_delete(processes_t *p, const char *id, struct err *err);
/* /stop (hard 0: stdin EOF, SIGTERM, SIGKILL after a grace) or /kill (hard
 * 1: SIGKILL), then waits up to wait_ms for the exit.  new: *out. */
int processes_signal(processes_t *p, const char *id, int hard, uint64_t wait_ms, json_t **out,
                     struct err *err);
/* /input: `data` (decoded) to the child's stdin or terminal. */
int processes_input(processes_t *p, const char *id, const void *data, size_t len,
                    struct err *err);
/* The largest /input a request may carry (maxInputBytesPerRequest). */
size_t processes_max_input(processes_t *p);
/* /terminal/resize. */
int processes_resize(processes_t *p, const char *id, unsigned rows, unsigned cols,
                     struct err *err);
/* POST /v1/processes/run: runs to completion (or timeout), nothing
 * journaled.  A run is a job the caller waits for without a thread:
 * processes_run_start() starts the child (new: *out, released with
 * processes_run_release()); processes_run_notify() asks for fn(arg) at its
 * end (called once, on the loop thread or at processes_close(), under the
 * manager's lock: it must only wake the caller) and returns 1 instead when
 * it has ended already; processes_run_result() then gives the
 * ProcessRunResponse (new), or ERR_PROC_CONFLICT when the server stopped
 * first. */
struct processes_run_job;
int processes_run_start(processes_t *p, const json_t *body, struct processes_run_job **out,
                        struct err *err);
int processes_run_notify(struct processes_run_job *job, void (*fn)(void *arg), void *arg);
int processes_run_result(struct processes_run_job *job, json_t **out, struct err *err);
void processes_run_release(struct processes_run_job *job);

/* For /logs: 0 if `id` is known (*ended set once its exit is committed, so
 * a reader that finds no chunk after that has read everything), else
 * ERR_PROC_NOT_FOUND. */
int processes_state(processes_t *p, const char *id, int *ended, struct err *err);

/* How many exits have been seen ended.  The wake of an exit (the
 * journal_wake_all() once it is `ended`) can come before a follower that
 * just read it running parks again: such a follower reads this before its
 * read and, once parked, again; a change means read again. */
uint64_t processes_exit_count(processes_t *p);

/* One ProcessLogEntry (the chunk's data base64-encoded).  new, or NULL when
 * memory ran out. */
json_t *processes_log_entry(const struct journal_proc_chunk *c);

#endif
