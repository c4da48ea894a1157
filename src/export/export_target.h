/* The export targets behind one interface (as redis's ae.h fronts
 * ae_epoll.c and ae_kqueue.c): export_pg.c (PostgreSQL, libpq),
 * export_ch.c (ClickHouse over HTTP, libcurl), export_jsonl.c (a file),
 * export_webhook.c (signed POSTs to a receiver, libcurl).
 *
 * The contract every target keeps, on which exactly-once rests:
 *   - send() returns 0 only once the target has durably committed the whole
 *     batch; any other outcome may have stored all, part or none of it;
 *   - storing an event twice is harmless: rows are keyed by
 *     (session_id, sequence) and a second copy changes nothing a reader sees
 *     (PostgreSQL: ON CONFLICT DO NOTHING; ClickHouse: ReplacingMergeTree
 *     read with FINAL; JSONL: the file is cut back to the last confirmed
 *     length before anything is written again; webhooks: a re-delivery
 *     carries the same webhook-id and body, which the receiver drops).
 * The exporter (export.c) advances the journal's checkpoint only after a
 * successful send(), so a crash anywhere re-sends at most the unconfirmed
 * batch.
 *
 * Thread: a target is used by one thread at a time (the exporter's). */
#ifndef SJ_EXPORT_TARGET_H
#define SJ_EXPORT_TARGET_H

#include "base/err.h"
#include "export/export_row.h"
#include "export/export_url.h"
#include "journal/migrations.h"

#include <stddef.h>
#include <stdint.h>

/* One batch: sessions in order, and their rows grouped by session in the
 * same order, each session's rows in ascending sequence. */
struct export_batch {
    struct export_session *sessions;
    size_t n_sessions;
    struct export_row *rows;
    size_t n_rows;
};

struct export_target;

struct export_target_ops {
    const char *kind; /* "postgres", "clickhouse", "jsonl", "webhook" */
    /* 1: batches of one session each, and a failed session waits out its
     * own back-off while the others go on (webhooks: a receiver may fail
     * one delivery and take the next).  0: batches span sessions and a
     * failure stops them all until the target is back. */
    int per_session;
    /* Connects and brings the target's schema up to date (creating it on
     * first use).  Safe to call again after disconnect(). */
    int (*connect)(struct export_target *t, struct err *err);
    /* JSONL only (else NULL): positions the file at `state`, the length
     * stored with the last checkpoint (NULL: a new file), dropping any
     * unconfirmed tail.  ERR_CONFLICT when the file is shorter than that. */
    int (*resume)(struct export_target *t, const char *state, struct err *err);
    /* May be NULL.  For each session_ids[i], have[i] = s when the target
     * holds exactly sequences 1..s of it (0 when none, or when what it
     * holds has a hole), so a restarted exporter can skip what a crash kept
     * it from checkpointing. */
    int (*probe)(struct export_target *t, const char *const *session_ids, size_t n,
                 uint64_t *have /* OUT: n entries */, struct err *err);
    /* Stores the batch; 0 only once the target has committed all of it.
     * A batch may carry session rows and no events (after probe()). */
    int (*send)(struct export_target *t, const struct export_batch *b, struct err *err);
    /* borrowed (until the next call): the resume state to store with the
     * checkpoint of the batch just sent, or NULL.  May be NULL. */
    const char *(*state)(struct export_target *t);
    /* May be NULL.  Nothing to send for a while: let go of what a target
     * would wait for (ClickHouse lets an idle keep-alive connection delay
     * its shutdown by keep_alive_timeout), keeping what connect() set up. */
    void (*idle)(struct export_target *t);
    /* Drops the connection (or file); connect() may follow. */
    void (*disconnect)(struct export_target *t);
    void (*free)(struct export_target *t);
};

/* The part every target shares; each embeds it first. */
struct export_target {
    const struct export_target_ops *ops;
    const struct export_url *url; /* borrowed from the exporter */
    int transient; /* set by each failing call: 1 when trying again later may succeed
                    * (connection refused or lost, target overloaded), 0 when the
                    * target refused the request itself */
    int stop;      /* set by a failing call when the target asked never to be sent to
                    * again (a webhook's 410 Gone): the exporter ends for good */
};

/* Constructors: nothing is connected yet.  new: *out, freed with
 * (*out)->ops->free(*out).  `u` is borrowed for the target's life. */
int export_pg_new(const struct export_url *u, struct export_target **out, struct err *err);
int export_ch_new(const struct export_url *u, struct export_target **out, struct err *err);
int export_jsonl_new(const struct export_url *u, struct export_target **out, struct err *err);
/* `secret`: the secret file's text, "whsec_<base64 key>" (borrowed; the
 * decoded key is copied). */
int export_webhook_new(const struct export_url *u, const char *secret,
                       struct export_target **out, struct err *err);

/* The targets' schemas, migrations/postgres/ and migrations/clickhouse/,
 * compiled into the generated migrations_data.c by cmake/embed.cmake. */
extern const struct migration migrations_postgres_all[];
extern const size_t migrations_postgres_count;
extern const struct migration migrations_clickhouse_all[];
extern const size_t migrations_clickhouse_count;

#endif
