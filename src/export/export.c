/* The exporter; see export.h for the promise and export_target.h for what
 * each target guarantees.
 *
 * ONE RUN
 *
 *   scan      journal_export_scan(): the sessions whose committed last
 *             sequence is past this target's checkpoint.  The first scan
 *             looks at every session; later ones (following) only at those
 *             with events committed since, by the events table's rowid.
 *   probe     on the first scan, and for the sessions of a batch whose send
 *             failed, ask the target what it already holds (a crash may have
 *             come between its commit and our checkpoint) and checkpoint
 *             that, so nothing is sent twice even before ClickHouse merges.
 *   batch     up to --batch events, taken session by session (following,
 *             round-robin: one busy session cannot starve the others; once,
 *             in the journal's order, kept by a JSONL file): each session's
 *             row first, then its events after the checkpoint, so the row's
 *             last_sequence bounds what is read.
 *   send      the target commits the batch or fails.
 *   advance   only then: journal_export_advance() raises the checkpoints
 *             (and the JSONL file's confirmed length) in one transaction.
 *
 * FAILURES
 *
 * A target call that fails sets t->transient.  Transient failures (target
 * down, connection lost, overloaded) are retried after a back-off that
 * doubles from 100 ms to 5 s; a command without --follow gives up after
 * EXPORT_RETRIES in a row.  Anything else (the target refused the data)
 * ends a command; the server's exporter logs it and tries again slowly,
 * since it must not take the server down with it.
 *
 * A per-session target (webhooks, export_target.h) gets batches of one
 * session each, round-robin.  A failed delivery pins that session's batch
 * (the same events go again, so the same webhook-id and body) and gives
 * the session its own back-off, exponential with jitter, from 100 ms up to
 * 30 s; the other sessions go on meanwhile, and a session's events still
 * go in order.  When every pending session is backing off, the exporter
 * waits for the earliest retry or a commit.  A target that says stop (410
 * Gone) ends the export for good.
 *
 * Such a batch is the session's events done+1 .. min(last, done+batch).  A
 * full one is the same whenever it is formed again; a short one (the tail
 * of what was committed) would grow if formed again after a restart, under
 * another webhook-id.  So before a short batch is first sent its end is
 * pinned in the journal too (the target's state: {"session": end, ...}, one
 * commit), and a restarted exporter sends exactly that batch again.  The
 * checkpoint commit that confirms it drops the pin.
 *
 * WAITING
 *
 * Following, the exporter parks on the journal (journal_park_any): a commit
 * of this process wakes it at once.  A separate process cannot be woken
 * that way, so it also checks PRAGMA data_version every 200 ms; the server
 * checks it every second, in case another process wrote the file. */
#include "export/export.h"

#include "base/buf.h"
#include "base/err.h"
#include "export/export_row.h"
#include "export/export_target.h"
#include "export/export_url.h"
#include "base/hmap.h"
#include "journal/journal.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXPORT_POLL_MS 200      /* a separate process looks at data_version this often */
#define EXPORT_PARK_MS 1000     /* the server's safety net for other processes' commits */
#define EXPORT_LINGER_MS 20     /* after a wake: let a burst of commits gather */
#define EXPORT_BACKOFF_MIN_MS 100
#define EXPORT_BACKOFF_MAX_MS 5000
#define EXPORT_RETRIES 5        /* without --follow: transient failures in a row */
#define EXPORT_PROBE_CHUNK 500  /* sessions per probe request */
#define EXPORT_PROGRESS_MS 250
#define EXPORT_SESSION_BACKOFF_MAX_MS 30000 /* a per-session target's cap */
#define EXPORT_STATUS_MS 200    /* the status snapshot is rebuilt at most this often */
#define EXPORT_STATUS_SESSIONS 100 /* sessions listed in it, the most behind first */

/* What a run did, for the summary line. */
struct export_summary {
    uint64_t events;   /* events the target confirmed in this run */
    uint64_t batches;
    uint64_t sessions; /* sessions brought up to date */
    uint64_t skipped;  /* events the target already held (found by probing) */
    uint64_t retries;  /* failed attempts retried */
    double seconds;
};

/* A session with events the target has not confirmed. */
struct export_pending {
    char *session_id;
    uint64_t done; /* confirmed by the target: the checkpoint */
    uint64_t last; /* committed in the journal, as far as we know */
    int probe;     /* the target may hold more than `done`: ask before sending */
    /* per-session targets only: */
    uint64_t pin;      /* a failed batch ended here: the retry sends done+1..pin again */
    unsigned failures; /* failed deliveries in a row */
    int64_t retry_at;  /* monotonic ms before which it is not tried again; 0: now */
};

struct export {
    struct export_options o;
    struct export_url url;
    struct export_target *t;
    int connected; /* t->ops->connect() succeeded since the last failure */
    int resumed;   /* t->ops->resume() too (targets that have one) */
    unsigned pause_ms; /* SJ_TEST_EXPORT_PAUSE_MS: tests kill us in this window */
    int tty;

    hmap_t *by_id; /* session_id -> struct export_pending (owned) */
    struct export_pending **list;
    size_t n, cap, rr;
    int64_t cursor;

    pthread_mutex_t lock; /* woken; the condition variable */
    pthread_cond_t cond;
    int lock_ok, cond_ok;
    int woken;
    atomic_int stopping;
    struct journal_waiter waiter;

    journal_t *j; /* export_start()'s journal */
    pthread_t thread;
    int thread_started;

    struct export_summary sum;
    int interrupted;
    int64_t t0_ms;
    int64_t tick_ms;        /* the progress line's last update */
    uint64_t tick_events;   /* sum.events at that update */
    double rate;            /* events/s over the last tick */
    int progress_shown;
    unsigned failures;      /* failed attempts in a row */
    int reported;           /* the current outage has been logged */
    int64_t next_retry_ms;  /* per-session targets: the earliest back-off's end, or 0 */
    unsigned seed;          /* the back-off's jitter */

    /* GET /v1/exports: a snapshot the exporter rebuilds, read by any thread. */
    pthread_mutex_t status_lock;
    int status_lock_ok;
    json_t *status;         /* owned; under status_lock */
    int64_t status_ms;      /* when it was last rebuilt */
    char last_error[256];   /* scrubbed, or "" */
    int64_t last_error_wall_ms;
    int retrying;           /* the whole target is backing off */
    json_t *pins;           /* per-session targets: {session_id: end} of short batches
                             * in flight, as stored in the journal; NULL: not loaded */
    int pins_dirty;         /* pins has an entry the journal lacks */
    int gone;               /* the target said stop: the exporter has ended */
};

/* ---- small helpers ------------------------------------------------------------ */

static int64_t export_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0; /* cannot fail for CLOCK_MONOTONIC on Linux */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int export_stopped(const export_t *e)
{
    return atomic_load(&e->stopping) || (e->o.stop_flag && *e->o.stop_flag);
}

static void export_progress_clear(export_t *e)
{
    if (e->progress_shown) {
        fputs("\r\033[K", stderr);
        e->progress_shown = 0;
    }
}

/* One line on stderr about this target, above any progress line. */
static void export_log(export_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void export_log(export_t *e, const char *fmt, ...)
{
    export_progress_clear(e);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The target's own messages went through export_url_scrub() already;
     * scrubbing again costs nothing and covers ours. */
    export_url_scrub(&e->url, msg, sizeof msg);
    fprintf(stderr, "sandbox-journal: export to %s: %s\n", e->url.masked, msg);
}

static uint64_t export_lag(const export_t *e)
{
    uint64_t lag = 0;
    for (size_t i = 0; i < e->n; i++)
        if (e->list[i]->last > e->list[i]->done)
            lag += e->list[i]->last - e->list[i]->done;
    return lag;
}

static int64_t export_wall_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* new: wall-clock ms as RFC 3339 UTC with milliseconds, or JSON null. */
static json_t *export_json_time(int64_t wall_ms)
{
    if (wall_ms <= 0)
        return json_null();
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    char text[40];
    if (!gmtime_r(&secs, &tm))
        return json_null();
    size_t n = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(text + n, sizeof text - n, ".%03dZ", (int)(wall_ms % 1000));
    return json_string(text);
}

/* A monotonic deadline as wall-clock time, for the status. */
static json_t *export_json_deadline(int64_t mono_ms, int64_t now_mono, int64_t now_wall)
{
    if (!mono_ms)
        return json_null();
    return export_json_time(now_wall + (mono_ms > now_mono ? mono_ms - now_mono : 0));
}

static int export_by_lag(const void *a, const void *b)
{
    const struct export_pending *p = *(struct export_pending *const *)a;
    const struct export_pending *q = *(struct export_pending *const *)b;
    uint64_t lp = p->last > p->done ? p->last - p->done : 0;
    uint64_t lq = q->last > q->done ? q->last - q->done : 0;
    return lp < lq ? 1 : lp > lq ? -1 : strcmp(p->session_id, q->session_id);
}

/* Rebuilds the status snapshot (at most every EXPORT_STATUS_MS unless
 * `force`).  Exporter thread only; memory trouble keeps the old snapshot. */
static void export_publish(export_t *e, int force)
{
    int64_t now = export_now_ms();
    if (!e->status_lock_ok || (!force && now - e->status_ms < EXPORT_STATUS_MS))
        return;
    e->status_ms = now;
    int64_t wall = export_wall_ms();
    size_t n = e->n < EXPORT_STATUS_SESSIONS ? e->n : EXPORT_STATUS_SESSIONS;
    struct export_pending **top = NULL;
    if (e->n) {
        top = malloc(e->n * sizeof *top);
        if (!top)
            return;
        memcpy(top, e->list, e->n * sizeof *top);
        qsort(top, e->n, sizeof *top, export_by_lag);
    }
    json_t *sessions = json_array();
    int64_t next = e->next_retry_ms; /* the whole target's retry, or the earliest session's */
    for (size_t i = 0; sessions && i < n; i++) {
        const struct export_pending *p = top[i];
        json_t *one = json_pack("{s:s, s:I, s:I, s:I, s:o}", "session_id", p->session_id,
                                "confirmed", (json_int_t)p->done, "lag",
                                (json_int_t)(p->last > p->done ? p->last - p->done : 0),
                                "failures", (json_int_t)p->failures, "next_retry_at",
                                export_json_deadline(p->retry_at, now, wall));
        if (!one || json_array_append_new(sessions, one) != 0) {
            json_decref(sessions);
            sessions = NULL;
        }
    }
    free(top);
    const char *state = e->gone ? "stopped" : e->retrying ? "retrying"
                        : e->next_retry_ms && e->n ? "retrying_sessions"
                        : e->n ? "sending" : "up_to_date";
    json_t *st = sessions ? json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:o}",
                                      "kind", e->t->ops->kind, "target", e->url.masked,
                                      "state", state, "events_sent", (json_int_t)e->sum.events,
                                      "lag_events", (json_int_t)export_lag(e),
                                      "sessions_behind", (json_int_t)e->n, "sessions", sessions,
                                      "last_error",
                                      e->last_error[0] ? json_string(e->last_error) : json_null(),
                                      "last_error_at", export_json_time(e->last_error_wall_ms),
                                      "next_retry_at",
                                      export_json_deadline(next, now, wall))
                          : NULL;
    if (!st)
        return;
    pthread_mutex_lock(&e->status_lock);
    json_decref(e->status);
    e->status = st;
    pthread_mutex_unlock(&e->status_lock);
}

/* Remembers the failure for the status (err->msg is already scrubbed). */
static void export_note_error(export_t *e, const struct err *err)
{
    snprintf(e->last_error, sizeof e->last_error, "%s", err ? err->msg : "failed");
    export_url_scrub(&e->url, e->last_error, sizeof e->last_error);
    e->last_error_wall_ms = export_wall_ms();
}

/* The progress line: only on a terminal, only for the command. */
static void export_progress(export_t *e, int force)
{
    if (e->o.quiet || e->o.background || !e->tty)
        return;
    int64_t now = export_now_ms();
    if (!force && now - e->tick_ms < EXPORT_PROGRESS_MS)
        return;
    if (now > e->tick_ms)
        e->rate = (double)(e->sum.events - e->tick_events) * 1000.0 / (double)(now - e->tick_ms);
    e->tick_ms = now;
    e->tick_events = e->sum.events;
    fprintf(stderr,
            "\r\033[K%s: %llu events, %.0f events/s, %llu sessions done, %zu pending, lag %llu "
            "events",
            e->url.masked, (unsigned long long)e->sum.events, e->rate,
            (unsigned long long)e->sum.sessions, e->n, (unsigned long long)export_lag(e));
    fflush(stderr);
    e->progress_shown = 1;
}

/* Sleeps up to `ms`, returning early when stopped or, if `on_commit`, when
 * a commit woke us (export_take_woken() tells).  A stop flag set by a
 * signal handler cannot signal the condition variable, so it is looked at
 * every EXPORT_POLL_MS. */
static void export_block(export_t *e, int64_t ms, int on_commit)
{
    int64_t end = export_now_ms() + ms;
    pthread_mutex_lock(&e->lock);
    while (!(on_commit && e->woken) && !export_stopped(e)) {
        int64_t left = end - export_now_ms();
        if (left <= 0)
            break;
        if (e->o.stop_flag && left > EXPORT_POLL_MS)
            left = EXPORT_POLL_MS;
        struct timespec at;
        if (clock_gettime(CLOCK_MONOTONIC, &at) != 0)
            break;
        at.tv_sec += left / 1000;
        at.tv_nsec += (left % 1000) * 1000000L;
        if (at.tv_nsec >= 1000000000L) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&e->cond, &e->lock, &at);
        if (rc != 0 && rc != ETIMEDOUT)
            break; /* EINVAL would mean a bug; do not spin on it */
    }
    pthread_mutex_unlock(&e->lock);
}

/* 1 if a commit woke us since the last call; clears it. */
static int export_take_woken(export_t *e)
{
    pthread_mutex_lock(&e->lock);
    int woken = e->woken;
    e->woken = 0;
    pthread_mutex_unlock(&e->lock);
    return woken;
}

/* Sleeps `ms` whatever commits happen, unless stopped: back-offs. */
static void export_sleep(export_t *e, int64_t ms)
{
    export_block(e, ms, 0);
}

/* The journal's wake-up: on whichever thread committed (journal.h), under the
 * journal's watch lock, so it only signals. */
static void export_on_commit(struct journal_waiter *w)
{
    export_t *e = (export_t *)(void *)((char *)w - offsetof(struct export, waiter));
    pthread_mutex_lock(&e->lock);
    e->woken = 1;
    pthread_cond_signal(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* ---- pending sessions --------------------------------------------------------- */

static void export_pending_free(struct export_pending *p)
{
    if (p) {
        free(p->session_id);
        free(p);
    }
}

static int export_is_selected(const export_t *e, const char *session_id)
{
    if (!e->o.n_sessions)
        return 1;
    for (size_t i = 0; i < e->o.n_sessions; i++)
        if (strcmp(e->o.sessions[i], session_id) == 0)
            return 1;
    return 0;
}

struct export_scan_ctx {
    export_t *e;
    int first;
    struct err *err;
};

static int export_scan_one(void *arg, const char *session_id, uint64_t last, uint64_t checkpoint)
{
    struct export_scan_ctx *ctx = arg;
    export_t *e = ctx->e;
    if (!export_is_selected(e, session_id))
        return 0;
    struct export_pending *p = hmap_get(e->by_id, session_id);
    if (!p) {
        if (e->n == e->cap) {
            size_t cap = e->cap ? e->cap * 2 : 64;
            struct export_pending **list = realloc(e->list, cap * sizeof *list);
            if (!list)
                return err_set(ctx->err, ERR_NOMEM, "out of memory");
            e->list = list;
            e->cap = cap;
        }
        p = calloc(1, sizeof *p);
        if (p)
            p->session_id = strdup(session_id);
        if (!p || !p->session_id || hmap_put(e->by_id, session_id, p) != 0) {
            export_pending_free(p);
            return err_set(ctx->err, ERR_NOMEM, "out of memory");
        }
        e->list[e->n++] = p;
    }
    if (last > p->last)
        p->last = last;
    if (checkpoint > p->done)
        p->done = checkpoint; /* another exporter of the same target got further */
    json_t *pin = e->pins ? json_object_get(e->pins, session_id) : NULL;
    if (pin && (uint64_t)json_integer_value(pin) > p->done && !p->pin)
        p->pin = (uint64_t)json_integer_value(pin); /* a restart sends that batch again */
    if (ctx->first && e->t->ops->probe)
        p->probe = 1;
    return 0;
}

/* Drops the sessions that are up to date, counting them. */
static void export_prune(export_t *e)
{
    size_t k = 0;
    for (size_t i = 0; i < e->n; i++) {
        struct export_pending *p = e->list[i];
        if (p->done >= p->last && !p->probe) {
            hmap_remove(e->by_id, p->session_id);
            export_pending_free(p);
            e->sum.sessions++;
            continue;
        }
        e->list[k++] = p;
    }
    e->n = k;
    if (e->rr >= e->n)
        e->rr = 0;
}

/* ---- failures ----------------------------------------------------------------- */

/* After a failed target call (err filled): drops the connection and decides
 * whether to go on.  0: try again (the back-off has been slept), or the code
 * to stop with (err says why). */
static int export_target_failed(export_t *e, int rc, struct err *err)
{
    e->t->ops->disconnect(e->t);
    e->connected = 0;
    e->resumed = 0;
    e->failures++;
    export_note_error(e, err);
    if (e->t->stop) {
        e->gone = 1;
        export_log(e, "%s; stopping this export for good", err->msg);
        export_publish(e, 1);
        return rc;
    }
    int transient = e->t->transient;
    if (!e->o.background) {
        if (!transient)
            return rc;
        if (!e->o.follow && e->failures > EXPORT_RETRIES) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            return err_set(err, rc, "%s (gave up after %u attempts)", why, e->failures);
        }
    }
    if (!e->reported) {
        export_log(e, "%s; retrying", err->msg);
        e->reported = 1;
    }
    e->sum.retries++;
    unsigned shift = e->failures - 1 < 10 ? e->failures - 1 : 10;
    int64_t backoff = (int64_t)EXPORT_BACKOFF_MIN_MS << shift;
    if (backoff > EXPORT_BACKOFF_MAX_MS || !transient)
        backoff = EXPORT_BACKOFF_MAX_MS;
    e->retrying = 1;
    e->next_retry_ms = export_now_ms() + backoff;
    export_publish(e, 1);
    export_sleep(e, backoff);
    e->retrying = 0;
    e->next_retry_ms = 0;
    return 0;
}

/* A per-session target failed one session's delivery (transiently): that
 * session waits out its own back-off, from 100 ms doubling to 30 s, each
 * drawn between half and all of it (jitter, so sessions that failed
 * together do not retry together); its batch is pinned so the retry is the
 * same delivery.  0 to go on, or (a command without --follow, after
 * EXPORT_RETRIES failures in a row) the code to stop with. */
static int export_session_failed(export_t *e, const struct export_batch *b, int rc,
                                 struct err *err)
{
    e->failures++;
    e->sum.retries++;
    export_note_error(e, err);
    for (size_t i = 0; i < b->n_sessions; i++) {
        struct export_pending *p = hmap_get(e->by_id, b->sessions[i].info.session_id);
        if (!p)
            continue;
        p->pin = b->sessions[i].event_count;
        unsigned shift = p->failures < 18 ? p->failures : 18;
        p->failures++;
        int64_t backoff = (int64_t)EXPORT_BACKOFF_MIN_MS << shift;
        if (backoff > EXPORT_SESSION_BACKOFF_MAX_MS)
            backoff = EXPORT_SESSION_BACKOFF_MAX_MS;
        backoff = backoff / 2 + (int64_t)(rand_r(&e->seed) % (unsigned)(backoff / 2 + 1));
        p->retry_at = export_now_ms() + backoff;
    }
    if (!e->o.background && !e->o.follow && e->failures > EXPORT_RETRIES) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return err_set(err, rc, "%s (gave up after %u attempts)", why, e->failures);
    }
    /* A receiver may fail a delivery now and then and take the next: say
     * so only when several in a row failed (the status has every error). */
    if (!e->reported && e->failures >= 3) {
        export_log(e, "%s; retrying", err->msg);
        e->reported = 1;
    }
    export_publish(e, 1);
    return 0;
}

/* After the journal itself failed (err filled): the command stops; the
 * server's exporter waits and starts over, as the journal may recover. */
static int export_journal_failed(export_t *e, int rc, struct err *err)
{
    if (!e->o.background)
        return rc;
    export_log(e, "%s; trying again in %d ms", err->msg, EXPORT_BACKOFF_MAX_MS);
    export_sleep(e, EXPORT_BACKOFF_MAX_MS);
    return 0;
}

static void export_recovered(export_t *e)
{
    if (e->reported)
        export_log(e, "target is back; catching up (%llu events behind)",
                   (unsigned long long)export_lag(e));
    e->reported = 0;
    e->failures = 0;
}

/* Connects (and positions a JSONL file) if needed.  0 or the failure. */
static int export_ensure_ready(export_t *e, journal_reader_t *r, struct err *err)
{
    int rc = 0;
    if (!e->connected) {
        rc = e->t->ops->connect(e->t, err);
        if (rc)
            return rc;
        e->connected = 1;
    }
    if (e->t->ops->resume && !e->resumed) {
        char *state = NULL;
        rc = journal_export_state(r, e->url.key, &state, err);
        if (rc) {
            e->t->transient = 1; /* the journal's trouble, not the target's */
            return rc;
        }
        rc = e->t->ops->resume(e->t, state, err);
        free(state);
        if (rc)
            return rc;
        e->resumed = 1;
    }
    return 0;
}

/* ---- probing ------------------------------------------------------------------ */

/* Sends the session rows of the sessions `marks` names (their events are
 * on the target already) and then checkpoints them.  A target may hold a
 * session's events without its row: ClickHouse writes the two in separate
 * requests, and a crash can fall between them. */
static int export_skip(export_t *e, journal_t *j, journal_reader_t *r,
                       const struct journal_export_mark *marks, size_t n, int *target_failed,
                       struct err *err)
{
    struct export_batch b;
    memset(&b, 0, sizeof b);
    b.sessions = calloc(n, sizeof *b.sessions);
    if (!b.sessions)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        struct export_session *s = &b.sessions[i];
        rc = journal_get_session(r, marks[i].session_id, &s->info, err);
        if (rc)
            break;
        b.n_sessions++;
        s->event_count = marks[i].last_sequence;
        s->ended = s->event_count == s->info.last_sequence ? s->info.ended : 0;
    }
    if (!rc) {
        rc = e->t->ops->send(e->t, &b, err);
        *target_failed = rc != 0;
    }
    if (!rc)
        rc = journal_export_advance(j, e->url.key, NULL, marks, n, err);
    for (size_t i = 0; i < b.n_sessions; i++)
        journal_session_info_clear(&b.sessions[i].info);
    free(b.sessions);
    return rc;
}

/* Asks the target what the flagged sessions already hold and checkpoints
 * that.  A target failure is returned with *target_failed set. */
static int export_probe(export_t *e, journal_t *j, journal_reader_t *r, int *target_failed,
                        struct err *err)
{
    *target_failed = 0;
    const char *ids[EXPORT_PROBE_CHUNK];
    uint64_t have[EXPORT_PROBE_CHUNK];
    struct export_pending *who[EXPORT_PROBE_CHUNK];
    struct journal_export_mark marks[EXPORT_PROBE_CHUNK];
    size_t i = 0;
    while (i < e->n) {
        size_t n = 0;
        for (; i < e->n && n < EXPORT_PROBE_CHUNK; i++)
            if (e->list[i]->probe) {
                who[n] = e->list[i];
                ids[n++] = e->list[i]->session_id;
            }
        if (!n)
            break;
        int rc = e->t->ops->probe(e->t, ids, n, have, err);
        if (rc) {
            *target_failed = 1;
            return rc;
        }
        size_t n_marks = 0;
        for (size_t k = 0; k < n; k++) {
            struct export_pending *p = who[k];
            uint64_t got = have[k] < p->last ? have[k] : p->last;
            if (got > p->done)
                marks[n_marks++] = (struct journal_export_mark){p->session_id, got};
        }
        if (n_marks && (rc = export_skip(e, j, r, marks, n_marks, target_failed, err)))
            return rc;
        for (size_t k = 0; k < n; k++) {
            struct export_pending *p = who[k];
            uint64_t got = have[k] < p->last ? have[k] : p->last;
            if (got > p->done) {
                e->sum.skipped += got - p->done;
                p->done = got;
            }
            p->probe = 0;
        }
    }
    return 0;
}

/* ---- batches ------------------------------------------------------------------ */

static void export_batch_free(struct export_batch *b)
{
    for (size_t i = 0; i < b->n_rows; i++)
        export_row_clear(&b->rows[i]);
    for (size_t i = 0; i < b->n_sessions; i++)
        journal_session_info_clear(&b->sessions[i].info);
    free(b->rows);
    free(b->sessions);
    memset(b, 0, sizeof *b);
}

struct export_read_ctx {
    struct export_batch *b;
    const char *session_id; /* borrowed from the batch's session */
    uint64_t expect;
    int rc;
    struct err *err;
};

static int export_read_one(void *arg, uint64_t sequence, const char *json, size_t json_len,
                           const char *raw, size_t raw_len, int turn_end)
{
    struct export_read_ctx *ctx = arg;
    if (sequence != ctx->expect)
        return ctx->rc = err_set_subject(ctx->err, ERR_STORAGE, ctx->session_id,
                                         "journal: session %s: sequence %llu where %llu was "
                                         "due",
                                         ctx->session_id, (unsigned long long)sequence,
                                         (unsigned long long)ctx->expect);
    struct export_batch *b = ctx->b;
    int rc = export_row_init(&b->rows[b->n_rows], ctx->session_id, sequence, json, json_len,
                             raw, raw_len, turn_end, ctx->err);
    if (rc)
        return ctx->rc = rc;
    b->n_rows++;
    ctx->expect++;
    return 0;
}

/* Fills `b` with up to o.batch events.  Journal failures are returned. */
static int export_build(export_t *e, journal_reader_t *r, struct export_batch *b,
                        struct err *err)
{
    memset(b, 0, sizeof *b);
    size_t cap = e->o.batch;
    size_t cap_sessions = e->n < cap ? e->n : cap;
    int per_session = e->t->ops->per_session;
    int64_t now = per_session ? export_now_ms() : 0;
    size_t chosen = 0;
    if (per_session && cap_sessions > 1)
        cap_sessions = 1;
    e->next_retry_ms = 0;
    b->rows = calloc(cap, sizeof *b->rows);
    b->sessions = calloc(cap_sessions ? cap_sessions : 1, sizeof *b->sessions);
    if (!b->rows || !b->sessions) {
        export_batch_free(b);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    int rc = 0;
    for (size_t k = 0; k < e->n && b->n_rows < cap && b->n_sessions < cap_sessions; k++) {
        struct export_pending *p = e->list[(e->rr + k) % e->n];
        if (p->done >= p->last && e->o.follow == 0)
            continue;
        if (per_session && p->retry_at > now) {
            if (!e->next_retry_ms || p->retry_at < e->next_retry_ms)
                e->next_retry_ms = p->retry_at;
            continue;
        }
        struct export_session *s = &b->sessions[b->n_sessions];
        rc = journal_get_session(r, p->session_id, &s->info, err);
        if (rc)
            break;
        uint64_t last = s->info.last_sequence;
        /* Without --follow the export ends with what was committed when it
         * started, however busy the session. */
        if (!e->o.follow && last > p->last)
            last = p->last;
        if (last > p->last)
            p->last = last;
        uint64_t want = last > p->done ? last - p->done : 0;
        if (want > cap - b->n_rows)
            want = cap - b->n_rows;
        /* A retry re-sends exactly the failed batch: the same webhook-id
         * and body, however much was committed since. */
        if (per_session && p->pin > p->done && p->pin <= last)
            want = p->pin - p->done;
        else if (per_session && want < cap && e->pins) {
            /* A short batch: pin its end before it is first sent. */
            p->pin = p->done + want;
            if (json_object_set_new(e->pins, p->session_id,
                                    json_integer((json_int_t)p->pin)) != 0) {
                rc = err_set(err, ERR_NOMEM, "out of memory");
                break;
            }
            e->pins_dirty = 1;
        }
        chosen = k;
        if (!want) {
            /* Nothing committed past the checkpoint after all: let prune
             * drop it rather than look again forever. */
            if (last <= p->done)
                p->last = p->done;
            journal_session_info_clear(&s->info);
            continue;
        }
        b->n_sessions++;
        struct export_read_ctx ctx = {b, s->info.session_id, p->done + 1, 0, err};
        rc = journal_read_events(r, p->session_id, p->done, (uint32_t)want, export_read_one,
                                 &ctx, NULL, err);
        if (rc) {
            rc = ctx.rc ? ctx.rc : rc;
            break;
        }
        if (ctx.expect != p->done + 1 + want) {
            rc = err_set_subject(err, ERR_STORAGE, p->session_id,
                                 "journal: session %s: events up to %llu are missing",
                                 p->session_id, (unsigned long long)(p->done + want));
            break;
        }
        s->event_count = p->done + want;
        s->ended = s->event_count == s->info.last_sequence ? s->info.ended : 0;
    }
    /* Following, the next batch starts one session later, so a busy
     * session cannot starve the rest.  A one-off export keeps the journal's
     * order, so an import creates the sessions in their original order. */
    if (per_session)
        e->rr = e->n ? (e->rr + chosen + 1) % e->n : 0;
    else if (e->o.follow)
        e->rr = e->n ? (e->rr + 1) % e->n : 0;
    if (rc)
        export_batch_free(b);
    return rc;
}

/* Sends everything pending.  0 when done (or stopped), else the failure. */
static int export_drain(export_t *e, journal_t *j, journal_reader_t *r, struct err *err)
{
    while (e->n && !export_stopped(e)) {
        int rc = export_ensure_ready(e, r, err);
        if (rc) {
            if ((rc = export_target_failed(e, rc, err)))
                return rc;
            continue;
        }
        int target_failed = 0;
        if (e->t->ops->probe && (rc = export_probe(e, j, r, &target_failed, err))) {
            rc = target_failed ? export_target_failed(e, rc, err)
                               : export_journal_failed(e, rc, err);
            if (rc)
                return rc;
            continue;
        }
        export_prune(e);
        if (!e->n)
            break;

        struct export_batch b;
        if ((rc = export_build(e, r, &b, err))) {
            if ((rc = export_journal_failed(e, rc, err)))
                return rc;
            continue;
        }
        if (!b.n_rows) {
            export_batch_free(&b);
            export_prune(e);
            if (e->n && e->next_retry_ms) {
                /* Every pending session is backing off.  Following, the
                 * run waits for the earliest retry or a commit. */
                export_publish(e, 1);
                if (e->o.follow)
                    return 0;
                export_sleep(e, e->next_retry_ms - export_now_ms());
            }
            continue;
        }
        if (e->pins_dirty) {
            char *pins = json_dumps(e->pins, JSON_COMPACT);
            rc = pins ? journal_export_advance(j, e->url.key, pins, NULL, 0, err)
                      : err_set(err, ERR_NOMEM, "out of memory");
            free(pins);
            if (rc) {
                export_batch_free(&b);
                if ((rc = export_journal_failed(e, rc, err)))
                    return rc;
                continue;
            }
            e->pins_dirty = 0;
        }
        rc = e->t->ops->send(e->t, &b, err);
        if (rc && e->t->ops->per_session && e->t->transient && !e->t->stop) {
            rc = export_session_failed(e, &b, rc, err);
            export_batch_free(&b);
            if (rc)
                return rc;
            continue;
        }
        if (rc) {
            /* The target may have kept some or all of it: ask before the
             * next attempt rather than send copies. */
            for (size_t i = 0; i < b.n_sessions && e->t->ops->probe; i++) {
                struct export_pending *p = hmap_get(e->by_id, b.sessions[i].info.session_id);
                if (p)
                    p->probe = 1;
            }
            export_batch_free(&b);
            if ((rc = export_target_failed(e, rc, err)))
                return rc;
            continue;
        }
        export_recovered(e);
        if (e->pause_ms) {
            struct timespec ts = {(time_t)(e->pause_ms / 1000),
                                  (long)(e->pause_ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }

        struct journal_export_mark *marks = calloc(b.n_sessions, sizeof *marks);
        if (!marks) {
            export_batch_free(&b);
            return err_set(err, ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < b.n_sessions; i++)
            marks[i] = (struct journal_export_mark){b.sessions[i].info.session_id,
                                                    b.sessions[i].event_count};
        const char *state = e->t->ops->state ? e->t->ops->state(e->t) : NULL;
        char *pins = NULL;
        if (e->pins) {
            /* The batch is confirmed: its pin goes with its checkpoint. */
            for (size_t i = 0; i < b.n_sessions; i++)
                if (json_object_del(e->pins, b.sessions[i].info.session_id) == 0)
                    e->pins_dirty = 1;
            if (e->pins_dirty && !(state = pins = json_dumps(e->pins, JSON_COMPACT))) {
                free(marks);
                export_batch_free(&b);
                return err_set(err, ERR_NOMEM, "out of memory");
            }
        }
        rc = journal_export_advance(j, e->url.key, state, marks, b.n_sessions, err);
        free(pins);
        if (!rc)
            e->pins_dirty = 0;
        free(marks);
        if (rc) {
            /* The target has the batch; the checkpoint lags, which only
             * means a re-send later.  A JSONL file must be positioned again
             * from the checkpoint, which no longer matches its end. */
            e->resumed = 0;
            export_batch_free(&b);
            if ((rc = export_journal_failed(e, rc, err)))
                return rc;
            continue;
        }
        for (size_t i = 0; i < b.n_sessions; i++) {
            struct export_pending *p = hmap_get(e->by_id, b.sessions[i].info.session_id);
            if (p && b.sessions[i].event_count > p->done)
                p->done = b.sessions[i].event_count;
            if (p) {
                p->pin = 0;
                p->failures = 0;
                p->retry_at = 0;
            }
        }
        e->sum.events += b.n_rows;
        e->sum.batches++;
        export_batch_free(&b);
        export_prune(e);
        export_progress(e, 0);
        export_publish(e, 0);
    }
    return 0;
}

/* Returns once something may have been committed since `seen`/`dv`, or when
 * stopped. */
static void export_wait_change(export_t *e, journal_t *j, journal_reader_t *r, uint64_t seen,
                               uint64_t dv, int64_t until)
{
    int64_t period = e->o.background ? EXPORT_PARK_MS : EXPORT_POLL_MS;
    while (!export_stopped(e)) {
        int64_t left = until ? until - export_now_ms() : period;
        if (left <= 0)
            return; /* a session's back-off is over */
        int parked = journal_park_any(j, seen, &e->waiter);
        if (parked == 1)
            return; /* committed since `seen` */
        export_block(e, left < period ? left : period, 1);
        /* Unpark finding it gone means its wake ran (under the journal's
         * lock, so it has finished), perhaps after the block above timed
         * out; the flag it set is cleared after, not before, the unpark. */
        int woken = parked == 0 && journal_unpark(j, &e->waiter) == 0;
        woken = export_take_woken(e) || woken;
        if (woken) {
            export_sleep(e, EXPORT_LINGER_MS);
            return;
        }
        uint64_t now_dv = 0;
        if (journal_data_version(r, &now_dv, NULL) != 0 || now_dv != dv)
            return; /* a failure shows up in the scan that follows */
        export_progress(e, 0);
    }
}

/* ---- the run ------------------------------------------------------------------ */

/* Reads the pinned short batches of a per-session target (the state stored
 * with its checkpoints); a state that is not such an object counts as none:
 * losing a pin only means a longer batch under a new id. */
static int export_load_pins(export_t *e, journal_reader_t *r, struct err *err)
{
    char *state = NULL;
    int rc = journal_export_state(r, e->url.key, &state, err);
    if (rc)
        return rc;
    json_t *pins = state ? json_loads(state, 0, NULL) : NULL;
    free(state);
    if (!json_is_object(pins)) {
        json_decref(pins);
        pins = json_object();
    }
    if (!pins)
        return err_set(err, ERR_NOMEM, "out of memory");
    e->pins = pins;
    return 0;
}

int export_run(export_t *e, journal_t *j, struct err *err)
{
    journal_reader_t *r = journal_reader_for_thread(j, err);
    if (!r)
        return err && err->code ? err->code : ERR_STORAGE;
    e->t0_ms = export_now_ms();
    e->tick_ms = e->t0_ms;
    int rc = 0;
    if (e->o.reset) {
        if ((rc = journal_export_reset(j, e->url.key, err)))
            return rc;
        e->resumed = 0;
        e->o.reset = 0; /* once, not at every restart of the server's exporter */
        json_decref(e->pins);
        e->pins = NULL;
    }
    if (e->t->ops->per_session && !e->pins && (rc = export_load_pins(e, r, err)))
        return rc;
    for (size_t i = 0; i < e->o.n_sessions; i++) {
        struct journal_session_info info;
        if ((rc = journal_get_session(r, e->o.sessions[i], &info, err)))
            return rc;
        journal_session_info_clear(&info);
    }
    /* The command checks its target before looking for work, so a JSONL
     * file cut behind its back is reported even when nothing is new. */
    if (!e->o.background && (rc = export_ensure_ready(e, r, err)))
        return rc;
    int first = 1;
    e->cursor = 0;
    while (!export_stopped(e)) {
        /* Read before the scan: a commit after it must wake the wait below. */
        uint64_t seen = journal_wake_count(j);
        uint64_t dv = 0;
        struct export_scan_ctx ctx = {e, first, err};
        rc = journal_data_version(r, &dv, err);
        if (!rc)
            rc = journal_export_scan(r, e->url.key, &e->cursor, export_scan_one, &ctx, err);
        if (rc) {
            if ((rc = export_journal_failed(e, rc, err)))
                break;
            continue;
        }
        first = 0;
        if ((rc = export_drain(e, j, r, err)))
            break;
        if (!e->o.follow)
            break;
        export_progress(e, 1);
        export_publish(e, 1);
        int64_t until = e->n && e->t->ops->per_session ? e->next_retry_ms : 0;
        if (e->t->ops->idle && !until)
            e->t->ops->idle(e->t);
        export_wait_change(e, j, r, seen, dv, until);
    }
    export_publish(e, 1);
    e->interrupted = export_stopped(e) && e->n > 0;
    e->sum.seconds = (double)(export_now_ms() - e->t0_ms) / 1000.0;
    if (e->progress_shown) {
        export_progress(e, 1);
        export_progress_clear(e);
    }
    if (!e->o.quiet && !e->o.background) {
        double rate = e->sum.seconds > 0 ? (double)e->sum.events / e->sum.seconds : 0;
        char extra[160] = "";
        size_t used = 0;
        if (e->sum.skipped)
            used += (size_t)snprintf(extra + used, sizeof extra - used, ", %llu already there",
                                     (unsigned long long)e->sum.skipped);
        if (e->sum.retries && used < sizeof extra)
            used += (size_t)snprintf(extra + used, sizeof extra - used, ", %llu retries",
                                     (unsigned long long)e->sum.retries);
        if (rc == 0 && e->n && used < sizeof extra)
            snprintf(extra + used, sizeof extra - used, ", %zu sessions left", e->n);
        fprintf(stderr,
                "sandbox-journal: exported %llu events (%llu batches, %llu sessions up to date) "
                "to %s in %.2f s, %.0f events/s%s\n",
                (unsigned long long)e->sum.events, (unsigned long long)e->sum.batches,
                (unsigned long long)e->sum.sessions, e->url.masked, e->sum.seconds, rate, extra);
    }
    if (rc == 0 && e->interrupted && !e->o.follow)
        rc = err_set(err, ERR_INTERNAL, "interrupted with %zu sessions left; run the same "
                                        "export again to resume", e->n);
    return rc;
}

/* ---- life cycle --------------------------------------------------------------- */

void export_free(export_t *e)
{
    if (!e)
        return;
    if (e->t)
        e->t->ops->free(e->t);
    for (size_t i = 0; i < e->n; i++)
        export_pending_free(e->list[i]);
    free(e->list);
    hmap_free(e->by_id);
    export_url_clear(&e->url);
    json_decref(e->status);
    json_decref(e->pins);
    if (e->status_lock_ok)
        pthread_mutex_destroy(&e->status_lock);
    if (e->cond_ok)
        pthread_cond_destroy(&e->cond);
    if (e->lock_ok)
        pthread_mutex_destroy(&e->lock);
    free(e);
}

/* Reads the secret file (whsec_<base64 key>) and makes the target.  The
 * file's text is wiped from memory once decoded, and never quoted. */
static int export_new_webhook(export_t *e, struct err *err)
{
    const char *path = e->o.webhook_secret_file;
    if (!path || !*path)
        return err_set(err, ERR_INVALID, "export: the webhook target %s needs "
                                         "--webhook-secret-file PATH", e->url.masked);
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(err, ERR_INVALID, "export: cannot read --webhook-secret-file %s: %s",
                       path, strerror(errno));
    char text[1024];
    size_t n = fread(text, 1, sizeof text - 1, f);
    int bad = ferror(f) || !feof(f);
    if (fclose(f) != 0)
        bad = 1;
    text[n] = '\0';
    int rc = bad ? err_set(err, ERR_INVALID, "export: --webhook-secret-file %s: unreadable or "
                                             "over 1 KiB", path)
                 : export_webhook_new(&e->url, text, &e->t, err);
    memset(text, 0, sizeof text);
    return rc;
}

int export_new(const struct export_options *o, export_t **out, struct err *err)
{
    if (!o || !o->url)
        return err_set(err, ERR_INVALID, "export: no target given (--to URL)");
    if (o->batch > EXPORT_MAX_BATCH)
        return err_set(err, ERR_INVALID, "export: --batch must be at most %u", EXPORT_MAX_BATCH);
    export_t *e = calloc(1, sizeof *e);
    if (!e)
        return err_set(err, ERR_NOMEM, "out of memory");
    e->o = *o;
    if (!e->o.batch)
        e->o.batch = EXPORT_DEFAULT_BATCH;
    atomic_init(&e->stopping, 0);
    e->waiter.wake = export_on_commit;
    e->tty = isatty(STDERR_FILENO);
    const char *pause = getenv("SJ_TEST_EXPORT_PAUSE_MS");
    if (pause && *pause)
        e->pause_ms = (unsigned)strtoul(pause, NULL, 10);

    int rc = export_url_parse(o->url, &e->url, err);
    if (rc) {
        free(e);
        return rc;
    }
    pthread_condattr_t ca;
    int ca_ok = pthread_condattr_init(&ca) == 0;
    e->lock_ok = pthread_mutex_init(&e->lock, NULL) == 0;
    e->cond_ok = ca_ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                 pthread_cond_init(&e->cond, &ca) == 0;
    if (ca_ok)
        pthread_condattr_destroy(&ca);
    e->by_id = hmap_new();
    e->status_lock_ok = pthread_mutex_init(&e->status_lock, NULL) == 0;
    e->seed = (unsigned)export_wall_ms() ^ (unsigned)(uintptr_t)e;
    if (!e->lock_ok || !e->cond_ok || !e->by_id || !e->status_lock_ok) {
        export_free(e);
        return err_set(err, ERR_NOMEM, "export: cannot create a lock");
    }
    switch (e->url.kind) {
    case EXPORT_URL_POSTGRES: rc = export_pg_new(&e->url, &e->t, err); break;
    case EXPORT_URL_CLICKHOUSE: rc = export_ch_new(&e->url, &e->t, err); break;
    case EXPORT_URL_JSONL: rc = export_jsonl_new(&e->url, &e->t, err); break;
    case EXPORT_URL_WEBHOOK: rc = export_new_webhook(e, err); break;
    default: rc = err_set(err, ERR_INVALID, "export: unknown target kind"); break;
    }
    if (rc) {
        export_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

int export_connect(export_t *e, struct err *err)
{
    if (e->connected)
        return 0;
    int rc = e->t->ops->connect(e->t, err);
    if (rc)
        return rc;
    e->connected = 1;
    return 0;
}

const char *export_target_name(const export_t *e)
{
    return e->url.masked;
}

int export_status(export_t *e, json_t **out)
{
    pthread_mutex_lock(&e->status_lock);
    json_t *st = e->status ? json_deep_copy(e->status) : NULL;
    pthread_mutex_unlock(&e->status_lock);
    if (!st)
        st = json_pack("{s:s, s:s, s:s}", "kind", e->t->ops->kind, "target", e->url.masked,
                       "state", "starting");
    if (!st)
        return ERR_NOMEM;
    *out = st;
    return 0;
}

static void *export_main(void *arg)
{
    export_t *e = arg;
    while (!export_stopped(e)) {
        struct err err;
        err_clear(&err);
        int rc = export_run(e, e->j, &err);
        if (rc == 0 || export_stopped(e) || e->gone)
            break;
        /* Only what it cannot wait out itself ends a run (memory, a session
         * filter naming nothing): say so, and start over later. */
        export_log(e, "%s; starting over in %d ms", err.msg, EXPORT_BACKOFF_MAX_MS);
        export_sleep(e, EXPORT_BACKOFF_MAX_MS);
    }
    return NULL;
}

int export_start(journal_t *j, const struct export_options *o, export_t **out,
                 struct err *err)
{
    struct export_options bo = *o;
    bo.follow = 1;
    bo.background = 1;
    bo.quiet = 1;
    bo.stop_flag = NULL;
    export_t *e = NULL;
    int rc = export_new(&bo, &e, err);
    if (rc)
        return rc;
    e->j = j;
    rc = pthread_create(&e->thread, NULL, export_main, e);
    if (rc != 0) {
        export_free(e);
        return err_set(err, ERR_INTERNAL, "export: cannot start a thread: %s", strerror(rc));
    }
    e->thread_started = 1;
    *out = e;
    return 0;
}

void export_stop(export_t *e)
{
    if (!e)
        return;
    /* From its own thread the join below would wait for itself. */
    assert(!e->thread_started || !pthread_equal(pthread_self(), e->thread));
    atomic_store(&e->stopping, 1);
    pthread_mutex_lock(&e->lock);
    pthread_cond_signal(&e->cond);
    pthread_mutex_unlock(&e->lock);
    if (e->thread_started) {
        int rc = pthread_join(e->thread, NULL);
        if (rc != 0)
            fprintf(stderr, "sandbox-journal: export to %s: joining: %s\n", e->url.masked,
                    strerror(rc));
    }
    export_free(e);
}
