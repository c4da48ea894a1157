/* The full-text index as a follower of the journal.
 *
 * An FTS5 insert costs 100-150 us per event (docs/benchmarks.md): paid in
 * the writer's transaction it cut indexed appends to a fifth.  So events_fts
 * is written behind the commit.  search_index.indexed_through is the
 * watermark: every event with id <= it has been read, and is in the index if
 * it has text.  events.id is a rowid appended at the right edge in commit
 * order, so "the events after the watermark" is one range of the table and
 * the lag is max(id) - watermark.
 *
 * WHO WRITES: the writer thread, on the one write connection, in the time no
 * group is being committed (journal__writer_main() decides when): one step is
 * one transaction that reads the watermark, indexes the following events and
 * moves the watermark.  The watermark and the index rows commit together, so
 * a crash loses both or neither and the next step redoes the lost part.
 * Reading the watermark inside the transaction (BEGIN IMMEDIATE holds the
 * write lock) keeps two processes indexing the same file from indexing an
 * event twice, though only the server asks for the follower.
 *
 * HOW LONG A COMMIT WAITS: a step indexes as many text events as fit in the
 * quantum (a cost per event learned from the past steps, COMMIT included:
 * FTS5 does most of its work there), and stops early on the clock when a
 * batch is queued.  So a queued group waits about one quantum, plus what a
 * step's COMMIT costs beyond the estimate (FTS5's segment merges); measured
 * in bench/search.sh.  With nothing queued the writer runs the next step at
 * once, so the small steps cost only their per-transaction overhead.  Under durability
 * FULL the step commits with synchronous=NORMAL: a step lost to a crash is
 * redone, and the next group's fsync makes it durable anyway.
 *
 * WHEN: while appends come, a step starts once JOURNAL_INDEX_GATHER events
 * with some text are behind (so a step's fixed cost is shared), or
 * JOURNAL_INDEX_GAP events of any kind; whatever is left is indexed when
 * the writer has been idle for JOURNAL_INDEX_IDLE_MS.  Rows without text
 * (item.delta) thus cost the append path nothing but the watermark's move.
 *
 * FAIRNESS: while a step is due, the writer alternates a group and a step,
 * so sustained appends cannot starve the index.  A step that fails (disk full) stalls the follower until
 * the next group commits, so it never spins on an error. */
#include "journal/journal_int.h"

/* A step's limit on the clock, whatever the estimate below says. */
#define JOURNAL_INDEX_STEP_US 20000
/* While appends come: a step starts once this many events (some with text)
 * or this many in all are behind; else when the writer had nothing to do
 * for JOURNAL_INDEX_IDLE_MS (journal_write.c). */
#define JOURNAL_INDEX_GATHER 32
#define JOURNAL_INDEX_GAP 4096

/* Events a step reads per scan statement (item.delta rows cost nothing). */
#define JOURNAL_INDEX_SCAN 256

static int64_t index_clock_us(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        return 0; /* a step then stops on its event cap only */
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t index_now_us(void)
{
    return index_clock_us(CLOCK_MONOTONIC);
}

int journal__index_prepare(journal_t *j, struct err *err)
{
    int rc;
    /* An event's text is events_text's body; item.started and item.delta
     * repeat the item.completed's text and are skipped without a lookup. */
    if ((rc = prepare(j->db, "SELECT indexed_through FROM search_index WHERE one = 1",
                      &j->st_idx_get, err)) ||
        (rc = prepare(j->db,
                      "SELECT e.id, CASE WHEN e.type IN ('item.started', 'item.delta') "
                      "THEN NULL ELSE (SELECT t.body FROM events_text AS t WHERE t.id = e.id) "
                      "END FROM events AS e WHERE e.id > ?1 ORDER BY e.id LIMIT ?2",
                      &j->st_idx_scan, err)) ||
        (rc = prepare(j->db, "INSERT INTO events_fts(rowid, body) VALUES(?1, ?2)",
                      &j->st_idx_ins, err)) ||
        (rc = prepare(j->db, "UPDATE search_index SET indexed_through = ?1 WHERE one = 1",
                      &j->st_idx_set, err)))
        return rc;
    return 0;
}

void journal__index_finalize(journal_t *j)
{
    finalize_cached(&j->st_idx_get);
    finalize_cached(&j->st_idx_scan);
    finalize_cached(&j->st_idx_ins);
    finalize_cached(&j->st_idx_set);
}

int journal__index_load(journal_t *j, struct err *err)
{
    j->idx_us_per_event = 150; /* measured on the build machine; then learned */
    int64_t through = 0, last = 0;
    if (query_int(j->db, "SELECT indexed_through FROM search_index WHERE one = 1", &through,
                  err, "search index watermark") ||
        query_int(j->db, "SELECT coalesce(max(id), 0) FROM events", &last, err,
                  "newest event"))
        return err->code;
    atomic_store(&j->idx_through, through);
    atomic_store(&j->events_last, last);
    atomic_store(&j->text_last, last); /* not known: taken as text */
    return 0;
}

int journal__index_due(journal_t *j, int idle)
{
    if (!atomic_load(&j->idx_on) || atomic_load(&j->idx_stalled))
        return 0;
    int64_t through = atomic_load(&j->idx_through), last = atomic_load(&j->events_last);
    if (through >= last)
        return 0;
    if (idle)
        return 1;
    /* While appends come, a step waits for enough to do: a step costs a
     * transaction whatever it indexes, and rows without text (item.delta,
     * most of a turn) need no step soon, only the watermark moved past
     * them, which the next idle moment or a long gap does. */
    return (atomic_load(&j->text_last) > through && last - through >= JOURNAL_INDEX_GATHER) ||
           last - through >= JOURNAL_INDEX_GAP;
}

/* 1 if a batch is queued for the writer. */
static int index_queue_waits(journal_t *j)
{
    pthread_mutex_lock(&j->q_lock);
    int waits = j->q_head != NULL;
    pthread_mutex_unlock(&j->q_lock);
    return waits;
}

/* Indexes the events after `*through` until a limit; moves `*through` to the
 * last event read.  SQLite's code.  Most of an FTS5 insert's cost is paid at
 * COMMIT (the in-memory terms written out as a segment, the merges), after
 * the loop could look at the clock, so the loop also stops at the number of
 * text events the past steps say fit in the quantum. */
static int index_events(journal_t *j, int64_t t0, int64_t *through, uint64_t *read,
                        uint64_t *indexed)
{
    int64_t quantum = (int64_t)atomic_load(&j->idx_quantum_us);
    uint64_t cap = (uint64_t)quantum / (j->idx_us_per_event ? j->idx_us_per_event : 1);
    if (cap < 1)
        cap = 1;
    sqlite3_stmt *scan = j->st_idx_scan;
    for (;;) {
        int rc = sqlite3_bind_int64(scan, 1, *through);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int(scan, 2, JOURNAL_INDEX_SCAN);
        int rows = 0, stop = 0;
        while (rc == SQLITE_OK && (rc = sqlite3_step(scan)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(scan, 0);
            rows++;
            rc = SQLITE_OK;
            if (sqlite3_column_type(scan, 1) != SQLITE_NULL) {
                const unsigned char *body = sqlite3_column_text(scan, 1);
                if (!body) {
                    rc = SQLITE_NOMEM;
                    break;
                }
                sqlite3_stmt *ins = j->st_idx_ins;
                if ((rc = sqlite3_bind_int64(ins, 1, id)) ||
                    (rc = sqlite3_bind_text(ins, 2, (const char *)body, -1, SQLITE_STATIC))) {
                    rc = stmt_release(ins, rc);
                    break;
                }
                if ((rc = step_write(ins)) != SQLITE_OK)
                    break;
                (*indexed)++;
            }
            *through = id;
            (*read)++;
            int64_t spent = index_now_us() - t0;
            if (*indexed >= cap || spent >= JOURNAL_INDEX_STEP_US ||
                (spent >= quantum && index_queue_waits(j))) {
                stop = 1;
                break;
            }
        }
        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
            rc = SQLITE_OK;
        rc = stmt_release(scan, rc);
        if (rc != SQLITE_OK)
            return rc;
        if (stop || rows < JOURNAL_INDEX_SCAN)
            return SQLITE_OK;
    }
}

/* PRAGMA synchronous takes effect when the statement is compiled, not when
 * it is stepped: a prepared copy sets the level once, at prepare time, and
 * stepping it later does nothing.  (Two prepared copies, NORMAL then FULL,
 * once left every journal at FULL: a normal-durability server fsynced each
 * commit, and each step paid an fsync of its own.)  So the level is set by
 * compiling the pragma each time; it costs microseconds. */
static int index_set_synchronous(journal_t *j, const char *level)
{
    char sql[40];
    snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", level);
    return sqlite3_exec(j->db, sql, NULL, NULL, NULL);
}

void journal__index_step(journal_t *j)
{
    assert(runs_group(j));
    if (!j->db) {
        atomic_store(&j->idx_stalled, 1); /* a WAL recovery will reopen it */
        return;
    }
    int64_t t0 = index_now_us(), cpu0 = index_clock_us(CLOCK_THREAD_CPUTIME_ID);
    int relaxed = j->durability == JOURNAL_DURABILITY_FULL;
    int rc = relaxed ? index_set_synchronous(j, "NORMAL") : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = step_write(j->st_begin);
    int64_t start = 0, through = 0;
    uint64_t read = 0, indexed = 0;
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(j->st_idx_get);
        if (rc == SQLITE_ROW)
            start = sqlite3_column_int64(j->st_idx_get, 0);
        else if (rc == SQLITE_DONE)
            rc = SQLITE_CORRUPT; /* migration 0006 inserted the row */
        rc = stmt_release(j->st_idx_get, rc);
        through = start;
    }
    if (rc == SQLITE_OK)
        rc = index_events(j, t0, &through, &read, &indexed);
    if (rc == SQLITE_OK && through > start) {
        if ((rc = sqlite3_bind_int64(j->st_idx_set, 1, through)) != SQLITE_OK)
            rc = stmt_release(j->st_idx_set, rc);
        else
            rc = step_write(j->st_idx_set);
    }
    if (rc == SQLITE_OK)
        rc = step_write(j->st_commit);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "journal: search index of %s: %s (the index waits for the next "
                        "commit)\n", j->path, sqlite3_errmsg(j->db));
        if (!sqlite3_get_autocommit(j->db) && step_write(j->st_rollback) != SQLITE_OK)
            fprintf(stderr, "journal: search index rollback: %s\n", sqlite3_errmsg(j->db));
        atomic_store(&j->idx_stalled, 1);
    }
    if (relaxed && index_set_synchronous(j, "FULL") != SQLITE_OK) {
        /* Commits must not go on without their fsync: the connection goes,
         * and the next group opens a new one at the journal's durability
         * (as after a WAL recovery). */
        fprintf(stderr, "journal: restoring synchronous=FULL: %s\n", sqlite3_errmsg(j->db));
        journal__writer_conn_close(j);
        atomic_store(&j->idx_stalled, 1);
        return;
    }
    if (rc != SQLITE_OK)
        return;
    atomic_store(&j->idx_through, through);
    int64_t spent = index_now_us() - t0;
    int64_t cpu = index_clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    if (indexed && cpu > 0) {
        /* What one text event costs, commit included, smoothed over steps.
         * CPU time, not the clock: on a loaded machine the clock counts
         * other processes' time slices too, and would shrink the steps to
         * one event each, which then pay nothing but their overhead. */
        uint64_t per = (uint64_t)cpu / indexed;
        j->idx_us_per_event = (3 * j->idx_us_per_event + (per ? per : 1)) / 4;
    }
    pthread_mutex_lock(&j->watch_lock);
    j->idx_stats.steps++;
    j->idx_stats.events_read += read;
    j->idx_stats.events_indexed += indexed;
    if ((uint64_t)spent > j->idx_stats.max_step_us)
        j->idx_stats.max_step_us = (uint64_t)spent;
    j->idx_stats.total_step_us += (uint64_t)spent;
    j->idx_stats.total_step_cpu_us += cpu > 0 ? (uint64_t)cpu : 0;
    pthread_mutex_unlock(&j->watch_lock);
}

void journal_index_follow(journal_t *j, uint32_t quantum_us)
{
    if (!j || j->readonly)
        return;
    atomic_store(&j->idx_quantum_us, quantum_us ? quantum_us : JOURNAL_INDEX_QUANTUM_US);
    pthread_mutex_lock(&j->q_lock);
    atomic_store(&j->idx_on, 1);
    pthread_cond_signal(&j->q_cond);
    pthread_mutex_unlock(&j->q_lock);
}

void journal_index_get_stats(journal_t *j, struct journal_index_stats *out)
{
    pthread_mutex_lock(&j->watch_lock);
    *out = j->idx_stats;
    pthread_mutex_unlock(&j->watch_lock);
    out->indexed_through = (uint64_t)atomic_load(&j->idx_through);
    int64_t last = atomic_load(&j->events_last);
    out->lag = last > (int64_t)out->indexed_through ? (uint64_t)last - out->indexed_through : 0;
}

int journal_index_position(journal_reader_t *r, struct journal_index_pos *out,
                           struct err *err)
{
    assert(reader_is_mine(r));
    if (!r || !out)
        return err_set(err, ERR_INVALID, "journal: index_position without reader");
    /* One statement, one snapshot: the lag is what this snapshot's searches
     * miss. */
    int code = journal__reader_stmt(
        r, &r->index_pos,
        "SELECT indexed_through, (SELECT coalesce(max(id), 0) FROM events) "
        "FROM search_index WHERE one = 1",
        err);
    if (code)
        return code;
    sqlite3_stmt *st = r->index_pos;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t through = sqlite3_column_int64(st, 0), last = sqlite3_column_int64(st, 1);
        out->indexed_through = through > 0 ? (uint64_t)through : 0;
        out->lag = last > through ? (uint64_t)(last - through) : 0;
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_CORRUPT;
    }
    rc = stmt_release(st, rc);
    if (rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "search index position");
    return 0;
}
