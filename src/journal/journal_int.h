/* What the journal's files share, and nothing for other layers: journal.h
 * is the contract; this header is included by the .c files of src/journal/ only.
 *
 *   journal.c          opening, migrating and closing
 *   journal_write.c    the submit queue, group commit and the writer thread
 *   journal_watch.c    watermarks and parked waiters
 *   journal_read.c     reader connections, event pages, session rows
 *   journal_export.c   export checkpoints
 *   journal_search.c   session summaries, the paged session list, full-text
 *                      search (what migrations/0006_search.sql keeps)
 *   journal_index.c    the full-text index, written behind the commit
 *   journal_ckpt.c     checkpoints, run behind the commit
 *   journal_config.c   the workspace configuration (MCP servers, skills)
 *
 * The journal: every session and event of the server in one SQLite database.
 *
 * THE TABLES
 *
 *   sessions(id, session_id, agent, ..., ended, last_sequence)
 *   events(id, session, sequence, type, turn_end, json, raw)
 *   UNIQUE INDEX events_by_session ON events(session, sequence)
 *   export_targets(id, target, state), export_checkpoints(target, session,
 *   last_sequence): how far each export target has confirmed each session
 *   item_aliases(session, native_id, item_id): item ids no event records
 *
 * `events` is a rowid table, so rows are appended at the right edge of the
 * b-tree in commit order: a transaction holding events of a hundred sessions
 * dirties one or two table leaves, not one leaf per session.  Readers never
 * walk it in rowid order; they go through events_by_session, whose integer
 * `session` key (sessions.id, not the client's text id) keeps the entries
 * narrow.  The schema itself comes only from the numbered migrations compiled
 * into the binary, each applied in its own transaction together with
 * PRAGMA user_version, so a crash mid-migration leaves the previous version.
 *
 * THE SEQUENCE RULE
 *
 * A session's sequences are 1, 2, 3, ... with no gap and no repeat, across
 * restarts and crashes.  The writer checks each batch against the session's
 * watermark (its committed last sequence) before any SQL runs: the first
 * event must be watermark + 1 and the rest must follow one by one, or the
 * batch fails with ERR_CONFLICT alone.  Because the watermark only moves after
 * COMMIT returns, a failed or rolled-back transaction cannot leave a hole that
 * a later batch would be allowed to skip.  The unique index is the backstop.
 *
 * A writer that queues without waiting (the paced agent output) may have
 * numbered more batches past one the storage then refused.  Those are not
 * conflicts but the same failure: a batch whose first sequence falls right
 * after refused ones fails with the refusal's ERR_STORAGE and message, so a
 * client hears "disk full" and not a sequence error it cannot act on.  The
 * first commit that moves the watermark forgets the refused range.
 *
 * COMMIT BEFORE VISIBLE
 *
 * There is one writer thread and one write connection.  journal_submit()
 * copies a batch into a queue; the writer takes everything queued (up to
 * JOURNAL_GROUP_EVENTS events) and commits it in one transaction, because one
 * fsync costs as much as a few hundred inserts.  A journal_append() that
 * finds the queue empty and the connection free commits its batch itself
 * (run_alone()); q_busy says who holds the connection, so groups never
 * overlap and their order is still the order batches were taken in.  Readers use their own
 * read-only connections, and SQLite's WAL gives them the last committed
 * snapshot only, so nothing of a transaction can be read before its commit.
 * The in-memory watermarks, and the wake-ups of parked readers that depend on
 * them, move only after COMMIT succeeded, so a woken reader always finds the
 * rows it was woken for.  Exporters' checkpoints (journal_export_advance())
 * travel through the same queue and share the group's transaction.  "Acknowledged" (journal_append returning 0, a done
 * callback with rc 0) means committed, with fsync under durability FULL.
 *
 * A FILE THAT MOVED
 *
 * In WAL mode SQLite goes on committing into the files it has open even if
 * journal.db was renamed or deleted meanwhile; a restart would never see
 * those commits.  So the writer asks before each COMMIT whether the file is
 * still at its path (SQLITE_FCNTL_HAS_MOVED) and refuses the group with
 * ERR_STORAGE if not; once the file is back, commits resume.
 *
 * The WAL is the same kind of trap: deleted under a running server, its
 * commits go on into the unlinked file, which a restart never reads, so every
 * event acknowledged since would be gone after a crash.  journal_open() notes
 * the device and inode of the WAL the write connection opened; before each
 * COMMIT the writer stat()s the WAL's path and refuses the group if another
 * file (or none) is there.  It then recovers by itself: a TRUNCATE checkpoint
 * through the descriptors SQLite still holds copies every committed frame
 * into journal.db, and a new write connection makes a fresh WAL at the path.
 * Readers still hold the old file, which the checkpoint emptied, so a read
 * through one fails (a short read, never stale rows); each thread's reader is
 * reopened at its next journal_reader_for_thread() once `wal_gen` moved.
 * Another process writing the same journal (an exporter) meets the same
 * deleted WAL and recovers the same way; whoever comes second finds the WAL
 * index describing the other's new WAL (journal__wal_taken_over()) and only
 * reopens, since a checkpoint through its stale file would copy wrong pages.
 *
 * WHAT START-UP LOADS
 *
 * journal_open() reads `session_id, id, last_sequence` of every session row
 * into the watermark map and nothing else: last_sequence is updated in the
 * same transaction as the events it counts, so it is exact and start-up cost
 * does not grow with the number of events.
 *
 * LOCKS
 *
 *   q_lock      the submit queue, the closing flag and q_busy (submitters,
 *               writer)
 *   watch_lock  the watermark map's committed fields, the waiter lists (per
 *               session, and journal_park_any()'s), the stats; never held
 *               while SQL runs
 *   readers_lock  the registry of reader connections
 *   ckpt_lock   the checkpointer's wake-up (journal_ckpt.c)
 *   ckpt_run_lock  held through a background checkpoint and through a WAL
 *               recovery; taken before SQLite's locks, never with the others
 * No two are ever held together.  The watermark map is changed only by the
 * writer (under watch_lock), so the writer may read it without the lock.
 */
#ifndef SJ_JOURNAL_INT_H
#define SJ_JOURNAL_INT_H

#include "journal/journal.h"

#include "base/err.h"
#include "base/hmap.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* One transaction stops taking batches past this many events, so a burst
 * cannot hold the write lock (and delay every acknowledgement) for long. */
#define JOURNAL_GROUP_EVENTS 4096

#define JOURNAL_BUSY_TIMEOUT_MS 5000

/* apply_batch()'s and journal__apply_export()'s own outcomes, outside SQLite's code
 * space: a missing row loses the group; a refused checkpoint request (it
 * names a session the journal lacks) fails alone, before it wrote anything. */
#define JOURNAL_ROW_MISSING (-1)
#define JOURNAL_NODE_REFUSED (-2)
/* The database file was renamed or deleted under the server: a commit now
 * would land in a file nobody will open again, so the group is refused. */
#define JOURNAL_FILE_MOVED (-3)
/* The WAL at its path is not the file the write connection writes. */
#define JOURNAL_WAL_MOVED (-4)

/* The tail every event's json must have: readers splice raw in there. */
#define JOURNAL_JSON_TAIL "\"raw\":null}"

/* A session's entry in the watermark map.  The committed fields are what
 * other threads see (under watch_lock); the tent_* fields are the writer's
 * private view while a group is being applied and are meaningful only when
 * tent_gen equals the current group's number. */
struct journal_mark {
    int64_t id;         /* sessions.id */
    uint64_t last;      /* committed last sequence */
    int exists;         /* 0 while the creating transaction is in flight */
    /* Writer only: sequences last+1 .. lost_through were in batches the
     * storage refused (0: none).  See THE SEQUENCE RULE. */
    uint64_t lost_through;

    uint64_t tent_gen;
    int64_t tent_id;
    uint64_t tent_last;
    int tent_exists;
    int tent_new;                    /* inserted in the map by this group */
    const char *tent_key;            /* borrowed from a node of the group */
    struct journal_mark *tent_next;  /* the group's touched list */
};

/* Checkpoint writes queued by an exporter: they go through the writer like
 * batches, so the one write connection stays the only one and they share
 * the group's fsync. */
struct journal_export_op {
    const char *target;
    const char *state;   /* NULL: keep the stored state (unless reset) */
    const struct journal_export_mark *marks;
    int64_t *ids;        /* sessions.id of each mark, filled by the writer */
    size_t n_marks;
    int reset;           /* forget the target's checkpoints and state first */
};

/* A workspace configuration write (journal_config.c): `config` NULL deletes. */
struct journal_config_op {
    const char *kind;
    const char *directory;
    const char *name;
    const char *config;
};

/* A queued batch, or (is_export) a checkpoint write with `b` all zero, or
 * (is_config) a workspace configuration write, likewise.  `b`,
 * `create` and everything they point at share one allocation, so one free()
 * releases the copy. */
struct journal_node {
    struct journal_node *next;
    journal_done_fn done;
    void *arg;
    struct journal_batch b;
    struct journal_session_row create;
    struct journal_idem idem;
    int is_export;
    struct journal_export_op x;
    int is_proc; /* a process write (journal_proc.c), `b` all zero */
    struct journal_proc_write p;
    int is_config;
    struct journal_config_op cfg;
    size_t async_bytes; /* journal_submit(): what it counts in q_async_bytes */
    int rc;
    struct err err;
};

/* The parked waiters of one session.  `key` is what waiters' session_id
 * points at, so unpark finds the list without a lookup. */
struct journal_wait_list {
    struct journal_wait_list *prev, *next; /* every list, for wake_all */
    struct journal_waiter *head, *tail;
    char key[];
};

struct journal_reader {
    journal_t *j;
    sqlite3 *db;
    sqlite3_stmt *read_events;
    sqlite3_stmt *list_sessions;
    sqlite3_stmt *get_session;
    /* prepared on first use: only exporters need them */
    sqlite3_stmt *export_scan_all;
    sqlite3_stmt *export_scan_since;
    sqlite3_stmt *export_cursor;
    sqlite3_stmt *export_state;
    sqlite3_stmt *data_version;
    sqlite3_stmt *read_aliases;
    sqlite3_stmt *idem_get;
    sqlite3_stmt *index_pos; /* journal_index_position() */
    sqlite3_stmt *proc_list;
    sqlite3_stmt *proc_logs;
    sqlite3_stmt *proc_logs_stream;
    sqlite3_stmt *proc_tail;
    sqlite3_stmt *proc_tail_stream;
    unsigned wal_gen; /* the journal's wal_gen when this connection opened */
    struct journal_reader *next;
};

struct journal {
    char *path;
    int schema_version;
    enum journal_durability durability;

    /* The WAL the write connection writes (writer only), and how many times
     * a new one replaced it: readers opened before then reopen. */
    char *wal_path;
    dev_t wal_dev;
    ino_t wal_ino;
    atomic_uint wal_gen;

    /* the write connection: used by whichever thread set q_busy; NULL only
     * after a WAL recovery could not reopen it (the next group tries again) */
    sqlite3 *db;
    sqlite3_stmt *st_begin;
    sqlite3_stmt *st_commit;
    sqlite3_stmt *st_rollback;
    sqlite3_stmt *st_ins_session;
    sqlite3_stmt *st_ins_event;
    sqlite3_stmt *st_upd_session;
    sqlite3_stmt *st_ins_alias;
    sqlite3_stmt *st_ins_idem;
    sqlite3_stmt *st_prune_idem;
    sqlite3_stmt *st_x_session_id;
    sqlite3_stmt *st_x_target;
    sqlite3_stmt *st_x_target_id;
    sqlite3_stmt *st_x_reset;
    sqlite3_stmt *st_x_mark;
    /* the search index follower (journal_index.c) */
    sqlite3_stmt *st_idx_get;
    sqlite3_stmt *st_idx_scan;
    sqlite3_stmt *st_idx_ins;
    sqlite3_stmt *st_idx_set;
    atomic_int idx_on;                 /* journal_index_follow() was called */
    atomic_int idx_stalled;            /* a step failed; cleared by a commit */
    atomic_uint_fast32_t idx_quantum_us;
    atomic_int_fast64_t idx_through;   /* search_index.indexed_through, committed */
    atomic_int_fast64_t events_last;   /* events.id of the newest committed event */
    atomic_int_fast64_t text_last;     /* ... of the newest that may have text */
    int64_t tent_text_last;            /* writer only: the group's newest such */
    int64_t tent_events_last;          /* writer only: the group's newest event */
    uint64_t idx_us_per_event;         /* writer only: a text event's index cost */
    struct journal_index_stats idx_stats; /* under watch_lock */
    sqlite3_stmt *st_p_info;
    sqlite3_stmt *st_p_drop;
    sqlite3_stmt *st_p_chunk;
    sqlite3_stmt *st_p_rm_logs;
    sqlite3_stmt *st_p_rm;
    uint64_t gen; /* group number, writer only */
    /* Idempotency keys: how long they are kept (journal_idem_set_ttl()), and
     * when the writer last deleted older ones (writer only). */
    atomic_uint_fast64_t idem_ttl_s;
    int64_t idem_pruned_at;
    struct err lost_err; /* writer only: why the last refused group failed */

    pthread_mutex_t q_lock;
    pthread_cond_t q_cond;
    struct journal_node *q_head, *q_tail;
    /* Bytes of journal_submit() batches queued and not yet taken by a group,
     * and the most they may reach before a submitter waits on q_room (see
     * BACKPRESSURE in journal_write.c). */
    size_t q_async_bytes, q_async_limit;
    pthread_cond_t q_room;
    int q_closing;
    int q_busy;    /* a thread (the writer or an appender) is running a group */
    pthread_t group_runner; /* the thread that last set q_busy: the only one that
                             * may use `db` and the "writer only" fields */
    pthread_t writer;
    int writer_started;

    pthread_mutex_t watch_lock;
    hmap_t *marks; /* session_id -> struct journal_mark */
    hmap_t *waits; /* session_id -> struct journal_wait_list */
    struct journal_wait_list *wait_lists;
    struct journal_waiter *any_head, *any_tail; /* journal_park_any() */
    int watch_closing;
    /* Grows with every commit and every journal_wake_all(): what
     * journal_park_any() waiters wait to see pass (journal_wake_count()). */
    uint64_t wake_gen;
    struct journal_stats stats;

    pthread_mutex_t readers_lock;
    struct journal_reader *readers;
    struct journal_reader *spare; /* opened by journal_open_readers(), no thread's yet */
    pthread_key_t reader_key;

    int readonly; /* journal_open_readonly(): no writer, nothing ever written */
    /* What reader connections open: `path`, or the immutable URI when a
     * read-only open could not use the WAL index (journal_is_immutable()). */
    char *read_name;
    int read_flags;

    /* The checkpointer (journal_ckpt.c).  ckpt_due and ckpt_stop under
     * ckpt_lock; ckpt_inline writer only. */
    pthread_mutex_t ckpt_lock;
    pthread_cond_t ckpt_cond;
    pthread_mutex_t ckpt_run_lock;
    pthread_t ckpt_thread;
    int ckpt_lock_ok, ckpt_started, ckpt_due, ckpt_stop, ckpt_inline;
    atomic_uint_fast64_t ckpt_count; /* checkpoints that completed */
    atomic_int ckpt_copied; /* WAL frames the last background checkpoint left copied */

    /* which of the above exist, so a failed open can undo exactly them */
    int q_lock_ok, q_cond_ok, q_room_ok, watch_lock_ok, readers_lock_ok, reader_key_ok;
};

/* ---- small helpers ---------------------------------------------------- */

/* Used by several of the files; static inline, so that they stay out of the
 * library's symbols as when they were one file's statics. */

#ifndef NDEBUG
/* For assert()s.  "Writer only" means the thread running the current group:
 * the writer thread, or an appender committing alone. */
static inline int runs_group(const journal_t *j)
{
    return pthread_equal(pthread_self(), j->group_runner);
}

/* watch_lock is held (a mutex cannot say by whom; the callers are few). */
static inline int watch_held(journal_t *j)
{
    return pthread_mutex_trylock(&j->watch_lock) == EBUSY;
}

/* `r` is the calling thread's reader, as journal_reader_for_thread() gave it. */
static inline int reader_is_mine(journal_reader_t *r)
{
    return pthread_getspecific(r->j->reader_key) == r;
}
#endif

static inline int sql_code(int rc)
{
    return (rc & 0xff) == SQLITE_NOMEM ? ERR_NOMEM : ERR_STORAGE;
}

/* Maps a failed SQLite call on `db` to our codes; sqlite's text goes into
 * err->msg because it is the only clue an operator gets. */
static inline int sql_fail(struct err *err, sqlite3 *db, int rc, const char *what)
{
    /* The connection's message is the precise one, but only if the failure
     * was recorded on it (not, say, a NULL column we turned into NOMEM). */
    int recorded = db && sqlite3_errcode(db) != SQLITE_OK;
    return err_set(err, sql_code(rc), "journal: %s: %s", what,
                   recorded ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Finalizes a statement on a path that already failed: finalize only returns
 * that same failure again, which the caller has reported. */
static inline void finalize_after_error(sqlite3_stmt *st)
{
    int rc = sqlite3_finalize(st);
    if (rc == SQLITE_MISUSE)
        fprintf(stderr, "journal: finalize: %s\n", sqlite3_errstr(rc));
}

/* Resets a statement after use so it releases its read snapshot, and drops
 * the bindings so no pointer into freed batch memory stays attached.  Returns
 * the first failure of `rc` (the caller's) and the reset. */
static inline int stmt_release(sqlite3_stmt *st, int rc)
{
    int r = sqlite3_reset(st);
    int c = sqlite3_clear_bindings(st);
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        return rc;
    if (r != SQLITE_OK)
        return r;
    return c;
}

static inline int bind_str(sqlite3_stmt *st, int idx, const char *s)
{
    if (!s)
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
}

static inline int bind_bytes(sqlite3_stmt *st, int idx, const char *s, size_t len)
{
    if (!s)
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text64(st, idx, s, (sqlite3_uint64)len, SQLITE_STATIC, SQLITE_UTF8);
}

static inline int64_t clamp_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static inline int size_add(size_t *acc, size_t n)
{
    if (*acc > SIZE_MAX - n)
        return ERR_NOMEM;
    *acc += n;
    return 0;
}

static inline size_t str_space(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static inline char *dup_or_null(const unsigned char *s, int *failed)
{
    if (!s)
        return NULL;
    char *copy = strdup((const char *)s);
    if (!copy)
        *failed = 1;
    return copy;
}

/* Runs a statement that returns no rows and is used once (setup, close). */
static inline int exec_sql(sqlite3 *db, const char *sql, struct err *err, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        err_set(err, sql_code(rc), "journal: %s: %s", what, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return sql_code(rc);
    }
    return 0;
}

/* Runs a one-row query and returns its first column as an integer. */
static inline int query_int(sqlite3 *db, const char *sql, int64_t *out, struct err *err,
                     const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(err, db, rc, what);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        finalize_after_error(st);
        return err_set(err, ERR_STORAGE, "journal: %s: no result", what);
    }
    if (rc != SQLITE_OK) {
        sql_fail(err, db, rc, what);
        finalize_after_error(st);
        return sql_code(rc);
    }
    rc = sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return sql_fail(err, db, rc, what);
    return 0;
}

static inline int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct err *err)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(err, db, rc, "prepare");
    return 0;
}

/* Finalizes a cached statement at shutdown.  A statement is always reset
 * after use, so a failure here means a bug worth a line on stderr: close has
 * no caller left to report to. */
static inline void finalize_cached(sqlite3_stmt **st)
{
    if (!*st)
        return;
    int rc = sqlite3_finalize(*st);
    if (rc != SQLITE_OK)
        fprintf(stderr, "journal: finalize: %s\n", sqlite3_errstr(rc));
    *st = NULL;
}

static inline void close_db(sqlite3 *db, const char *path)
{
    if (!db)
        return;
    int rc = sqlite3_close(db);
    if (rc != SQLITE_OK)
        fprintf(stderr, "journal: closing %s: %s\n", path, sqlite3_errstr(rc));
}

static inline int open_conn(const char *path, int flags, sqlite3 **out, struct err *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int code = sql_code(rc);
        err_set(err, code, "journal: cannot open database %s: %s", path,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        close_db(db, path);
        return code;
    }
    rc = sqlite3_busy_timeout(db, JOURNAL_BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        int code = sql_fail(err, db, rc, "busy_timeout");
        close_db(db, path);
        return code;
    }
    *out = db;
    return 0;
}

/* Steps a write statement to completion; 0 or the SQLite code. */
static inline int step_write(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    rc = stmt_release(st, rc);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static inline char *put_str(char **cursor, const char *s, size_t len)
{
    if (!s)
        return NULL;
    char *dst = *cursor;
    memcpy(dst, s, len);
    dst[len] = '\0';
    *cursor += len + 1;
    return dst;
}

static inline const char *put_cstr(char **cursor, const char *s)
{
    return s ? put_str(cursor, s, strlen(s)) : NULL;
}

/* ---- across the journal's files ------------------------------------------ */

/* journal.c: the write connection's setup, also for a reopen after a WAL
 * recovery (journal_write.c). */
int journal__setup_writer_conn(journal_t *j, enum journal_durability durability,
                               struct err *err);
int journal__prepare_writer(journal_t *j, struct err *err);
int journal__wal_note(journal_t *j, struct err *err);
void journal__writer_conn_close(journal_t *j);
/* 1 if the file at the WAL's path, not the write connection's WAL, is the
 * one the WAL index (-shm, shared by every process) now describes: another
 * process, itself finding the WAL deleted, made a new one there and wrote to
 * it.  Its recovery checkpointed what was committed before.  A checkpoint
 * through our connection, whose WAL the index no longer describes, would
 * copy the wrong pages into the database: skip it then. */
int journal__wal_taken_over(const journal_t *j);

/* journal_write.c */
void *journal__writer_main(void *arg);

/* journal_ckpt.c.  init before the write connection opens (its WAL hook
 * wakes the thread), hook_install on every write connection, start once it
 * is open; stop before the writer's last checkpoint, destroy last.
 * journal__ckpt_inline(): the group's runner, after the acknowledgement. */
int journal__ckpt_init(journal_t *j, struct err *err);
void journal__ckpt_hook_install(journal_t *j);
int journal__ckpt_start(journal_t *j, struct err *err);
void journal__ckpt_inline(journal_t *j);
void journal__ckpt_stop(journal_t *j);
void journal__ckpt_destroy(journal_t *j);
int journal__run_and_wait(journal_t *j, struct journal_node *n, const char *subject,
                          struct err *err);

/* journal_index.c: the follower's statements (with the writer's), its
 * watermark at open, whether a step is due (any thread), one step (the
 * group runner, with q_busy set and q_lock not held). */
int journal__index_prepare(journal_t *j, struct err *err);
void journal__index_finalize(journal_t *j);
int journal__index_load(journal_t *j, struct err *err);
/* 1 if a step should run now; `idle`: the writer has had nothing to do
 * for JOURNAL_INDEX_IDLE_MS, so any lag at all is worth a step. */
#define JOURNAL_INDEX_IDLE_MS 5
int journal__index_due(journal_t *j, int idle);
void journal__index_step(journal_t *j);

/* journal_export.c: one checkpoint request inside the writer's group. */
int journal__apply_export(journal_t *j, struct journal_node *n);

/* journal_proc.c: one process write inside the writer's group. */
int journal__apply_proc(journal_t *j, struct journal_node *n);
/* journal_config.c: one configuration write inside the writer's group. */
int journal__apply_config(journal_t *j, struct journal_node *n);

/* journal_watch.c: wake-ups after a commit; under watch_lock. */
void journal__wake_any(journal_t *j, int all);
void journal__wake_passed(journal_t *j, struct journal_wait_list *l, uint64_t last);

/* journal_read.c */
void journal__close_readers(journal_t *j);
int journal__reader_stmt(journal_reader_t *r, sqlite3_stmt **st, const char *sql,
                         struct err *err);

#endif
