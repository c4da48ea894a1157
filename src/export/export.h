/* The exporter: ships the journal's sessions to one target (PostgreSQL,
 * ClickHouse, a JSONL file or a webhook receiver), exactly once and
 * resumably.
 *
 * Exactly once: for each session the journal keeps the last sequence the
 * target has confirmed (journal_export_advance()).  The exporter reads the
 * events after it, sends them as one batch, and advances the checkpoint only
 * after the target said the batch is committed.  Targets store events keyed
 * by (session_id, sequence) and ignore a second copy (export_target.h), so
 * a crash between the send and the checkpoint re-sends the batch without
 * duplicating anything, and a crash before the send loses nothing.  A
 * restarted exporter first asks the target how much of each session it
 * already holds, so even ClickHouse's not-yet-merged parts get no copies.
 *
 * With `follow` it keeps going: parked on the journal (in the server) or
 * polling PRAGMA data_version every 200 ms (as a separate process), and when
 * the target goes away it retries with back-off and catches up on return.
 *
 * Used by `sandbox-journal export` (export_new/connect/run) and by
 * `server --export-to` (export_start/export_stop: one thread per target). */
#ifndef SJ_EXPORT_H
#define SJ_EXPORT_H

#include "base/err.h"
#include "journal/journal.h"

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define EXPORT_DEFAULT_BATCH 5000u
#define EXPORT_MAX_BATCH 1000000u

struct export_options {
    const char *url;                 /* the target; borrowed for the exporter's life */
    const char *const *sessions;     /* only these sessions (borrowed); n_sessions 0: all */
    size_t n_sessions;
    unsigned batch;                  /* events per batch; 0: EXPORT_DEFAULT_BATCH */
    int follow;                      /* keep exporting new events until stopped */
    int reset;                       /* forget the target's checkpoints first */
    int quiet;                       /* no progress line, no summary */
    int background;                  /* inside the server: never give up, log failures */
    const char *webhook_secret_file; /* an http(s):// target's secret (borrowed), else unused */
    const volatile sig_atomic_t *stop_flag; /* may be NULL: set by a signal handler to stop
                                             * (seen within 200 ms) */
};

typedef struct export export_t;

/* Parses o->url and makes the target, without connecting.  ERR_INVALID (a
 * one-line message with any password masked) for a bad URL.
 * new: *out, freed with export_free().  Thread: any; call it before any
 * other thread uses libcurl (it initializes it). */
int export_new(const struct export_options *o, export_t **out, struct err *err);

/* Connects to the target and brings its schema up to date, once, failing
 * fast: for a command line that should say "unreachable" and stop. */
int export_connect(export_t *e, struct err *err);

/* Exports until every event committed when it started is confirmed (or,
 * with follow, until stopped).  Connects first if export_connect() was not
 * called.  0, or the failure that ended it.  Thread: one at a time; the
 * journal reader it uses is the calling thread's. */
int export_run(export_t *e, journal_t *j, struct err *err);

/* borrowed: the target's URL with its password masked, for messages. */
const char *export_target_name(const export_t *e);

void export_free(export_t *e);

/* In the server: a thread that runs a following export of `j` to o->url,
 * retrying forever (o->follow and o->background are implied).  Fails only on
 * a bad URL or when the thread cannot start.  new: *out, stopped and freed
 * with export_stop(). */
int export_start(journal_t *j, const struct export_options *o, export_t **out,
                 struct err *err);

/* Stops the thread (its batch in flight finishes first), joins and frees.
 * Call before journal_close().  NULL is a no-op. */
void export_stop(export_t *e);

/* The exporter's state for GET /v1/exports: {kind, target (password
 * masked), state, events_sent, lag_events, sessions_behind, sessions: [the
 * most behind, with lag, failures, next_retry_at], last_error,
 * last_error_at, next_retry_at}, as of its last update (at most 200 ms
 * old while it works).  new: *out.  0 or ERR_NOMEM.  Thread: any. */
int export_status(export_t *e, json_t **out);

#endif
