/* The journal: every session and event of the server in one SQLite database.
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
 * No two are ever held together.  The watermark map is changed only by the
 * writer (under watch_lock), so the writer may read it without the lock.
 */
#include "journal/journal.h"

#include "base/err.h"
#include "base/hmap.h"
#include "journal/migrations.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One transaction stops taking batches past this many events, so a burst
 * cannot hold the write lock (and delay every acknowledgement) for long. */
#define JOURNAL_GROUP_EVENTS 4096

#define JOURNAL_BUSY_TIMEOUT_MS 5000

/* apply_batch()'s and apply_export()'s own outcomes, outside SQLite's code
 * space: a missing row loses the group; a refused checkpoint request (it
 * names a session the journal lacks) fails alone, before it wrote anything. */
#define JOURNAL_ROW_MISSING (-1)
#define JOURNAL_NODE_REFUSED (-2)
/* The database file was renamed or deleted under the server: a commit now
 * would land in a file nobody will open again, so the group is refused. */
#define JOURNAL_FILE_MOVED (-3)

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

/* A queued batch, or (is_export) a checkpoint write with `b` all zero.  `b`,
 * `create` and everything they point at share one allocation, so one free()
 * releases the copy. */
struct journal_node {
    struct journal_node *next;
    journal_done_fn done;
    void *arg;
    struct journal_batch b;
    struct journal_session_row create;
    int is_export;
    struct journal_export_op x;
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
    struct journal_reader *next;
};

struct journal {
    char *path;
    int schema_version;

    /* the write connection: used by whichever thread set q_busy */
    sqlite3 *db;
    sqlite3_stmt *st_begin;
    sqlite3_stmt *st_commit;
    sqlite3_stmt *st_rollback;
    sqlite3_stmt *st_ins_session;
    sqlite3_stmt *st_ins_event;
    sqlite3_stmt *st_upd_session;
    sqlite3_stmt *st_ins_alias;
    sqlite3_stmt *st_x_session_id;
    sqlite3_stmt *st_x_target;
    sqlite3_stmt *st_x_target_id;
    sqlite3_stmt *st_x_reset;
    sqlite3_stmt *st_x_mark;
    uint64_t gen; /* group number, writer only */
    struct err lost_err; /* writer only: why the last refused group failed */

    pthread_mutex_t q_lock;
    pthread_cond_t q_cond;
    struct journal_node *q_head, *q_tail;
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
    struct journal_stats stats;

    pthread_mutex_t readers_lock;
    struct journal_reader *readers;
    struct journal_reader *spare; /* opened by journal_open_readers(), no thread's yet */
    pthread_key_t reader_key;

    int readonly; /* journal_open_readonly(): no writer, nothing ever written */

    /* which of the above exist, so a failed open can undo exactly them */
    int q_lock_ok, q_cond_ok, watch_lock_ok, readers_lock_ok, reader_key_ok;
};

/* ---- small helpers ---------------------------------------------------- */

#ifndef NDEBUG
/* For assert()s.  "Writer only" means the thread running the current group:
 * the writer thread, or an appender committing alone (run_alone()). */
static int runs_group(const journal_t *j)
{
    return pthread_equal(pthread_self(), j->group_runner);
}

/* watch_lock is held (a mutex cannot say by whom; the callers are few). */
static int watch_held(journal_t *j)
{
    return pthread_mutex_trylock(&j->watch_lock) == EBUSY;
}

/* `r` is the calling thread's reader, as journal_reader_for_thread() gave it. */
static int reader_is_mine(journal_reader_t *r)
{
    return pthread_getspecific(r->j->reader_key) == r;
}
#endif

static int sql_code(int rc)
{
    return (rc & 0xff) == SQLITE_NOMEM ? ERR_NOMEM : ERR_STORAGE;
}

/* Maps a failed SQLite call on `db` to our codes; sqlite's text goes into
 * err->msg because it is the only clue an operator gets. */
static int sql_fail(struct err *err, sqlite3 *db, int rc, const char *what)
{
    /* The connection's message is the precise one, but only if the failure
     * was recorded on it (not, say, a NULL column we turned into NOMEM). */
    int recorded = db && sqlite3_errcode(db) != SQLITE_OK;
    return err_set(err, sql_code(rc), "journal: %s: %s", what,
                   recorded ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Finalizes a statement on a path that already failed: finalize only returns
 * that same failure again, which the caller has reported. */
static void finalize_after_error(sqlite3_stmt *st)
{
    int rc = sqlite3_finalize(st);
    if (rc == SQLITE_MISUSE)
        fprintf(stderr, "journal: finalize: %s\n", sqlite3_errstr(rc));
}

/* Resets a statement after use so it releases its read snapshot, and drops
 * the bindings so no pointer into freed batch memory stays attached.  Returns
 * the first failure of `rc` (the caller's) and the reset. */
static int stmt_release(sqlite3_stmt *st, int rc)
{
    int r = sqlite3_reset(st);
    int c = sqlite3_clear_bindings(st);
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        return rc;
    if (r != SQLITE_OK)
        return r;
    return c;
}

static int bind_str(sqlite3_stmt *st, int idx, const char *s)
{
    if (!s)
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
}

static int bind_bytes(sqlite3_stmt *st, int idx, const char *s, size_t len)
{
    if (!s)
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text64(st, idx, s, (sqlite3_uint64)len, SQLITE_STATIC, SQLITE_UTF8);
}

static int64_t clamp_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static int size_add(size_t *acc, size_t n)
{
    if (*acc > SIZE_MAX - n)
        return ERR_NOMEM;
    *acc += n;
    return 0;
}

static size_t str_space(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static char *dup_or_null(const unsigned char *s, int *failed)
{
    if (!s)
        return NULL;
    char *copy = strdup((const char *)s);
    if (!copy)
        *failed = 1;
    return copy;
}

/* Runs a statement that returns no rows and is used once (setup, close). */
static int exec_sql(sqlite3 *db, const char *sql, struct err *err, const char *what)
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
static int query_int(sqlite3 *db, const char *sql, int64_t *out, struct err *err,
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

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct err *err)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(err, db, rc, "prepare");
    return 0;
}

/* Finalizes a cached statement at shutdown.  A statement is always reset
 * after use, so a failure here means a bug worth a line on stderr: close has
 * no caller left to report to. */
static void finalize_cached(sqlite3_stmt **st)
{
    if (!*st)
        return;
    int rc = sqlite3_finalize(*st);
    if (rc != SQLITE_OK)
        fprintf(stderr, "journal: finalize: %s\n", sqlite3_errstr(rc));
    *st = NULL;
}

static void close_db(sqlite3 *db, const char *path)
{
    if (!db)
        return;
    int rc = sqlite3_close(db);
    if (rc != SQLITE_OK)
        fprintf(stderr, "journal: closing %s: %s\n", path, sqlite3_errstr(rc));
}

/* ---- opening and migrating --------------------------------------------- */

static int open_conn(const char *path, int flags, sqlite3 **out, struct err *err)
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

/* Switches the write connection to WAL, which readers depend on to read
 * without blocking the writer; a database that cannot be WAL (in-memory,
 * some network filesystems) is refused rather than served with locking. */
static int setup_writer_conn(journal_t *j, enum journal_durability durability,
                             struct err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(j->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return err_set(err, sql_code(rc), "journal: cannot use database %s: %s", j->path,
                       sqlite3_errmsg(j->db));
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        err_set(err, sql_code(rc), "journal: cannot use database %s: %s", j->path,
                sqlite3_errmsg(j->db));
        finalize_after_error(st);
        return sql_code(rc);
    }
    const unsigned char *mode = sqlite3_column_text(st, 0);
    int is_wal = mode && strcmp((const char *)mode, "wal") == 0;
    rc = sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return sql_fail(err, j->db, rc, "journal_mode");
    if (!is_wal)
        return err_set(err, ERR_STORAGE, "journal: database %s cannot be put in WAL mode",
                       j->path);
    const char *sync = durability == JOURNAL_DURABILITY_NORMAL ? "PRAGMA synchronous=NORMAL"
                                                               : "PRAGMA synchronous=FULL";
    return exec_sql(j->db, sync, err, "synchronous");
}

static int run_migrations(journal_t *j, struct err *err)
{
    int newest = 0;
    for (size_t i = 0; i < migrations_count; i++) {
        if (migrations_all[i].version <= newest)
            return err_set(err, ERR_INTERNAL, "journal: migration %s is out of order",
                           migrations_all[i].name);
        newest = migrations_all[i].version;
    }

    int64_t version = 0;
    int rc = query_int(j->db, "PRAGMA user_version", &version, err, "user_version");
    if (rc)
        return err_set(err, rc, "journal: cannot read database %s: %s", j->path,
                       sqlite3_errmsg(j->db));
    if (version > newest)
        return err_set(err, ERR_STORAGE,
                       "journal: database %s is at schema version %lld, newer than the %d "
                       "this binary knows; refusing to open it",
                       j->path, (long long)version, newest);

    for (size_t i = 0; i < migrations_count; i++) {
        const struct migration *m = &migrations_all[i];
        if (m->version <= version)
            continue;
        rc = exec_sql(j->db, "BEGIN IMMEDIATE", err, "migration begin");
        if (rc)
            return rc;
        /* Another process may have migrated between our read and our lock. */
        int64_t now = 0;
        rc = query_int(j->db, "PRAGMA user_version", &now, err, "user_version");
        if (rc == 0 && now < m->version) {
            char pragma[64];
            snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
            rc = exec_sql(j->db, m->sql, err, m->name);
            if (rc == 0)
                rc = exec_sql(j->db, pragma, err, m->name);
        }
        if (rc == 0)
            rc = exec_sql(j->db, "COMMIT", err, m->name);
        if (rc) {
            struct err ignored;
            if (!sqlite3_get_autocommit(j->db) &&
                exec_sql(j->db, "ROLLBACK", &ignored, "rollback") != 0)
                fprintf(stderr, "journal: %s\n", ignored.msg);
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            return err_set(err, rc, "journal: migration %s of %s failed: %s", m->name,
                           j->path, why);
        }
        version = m->version;
    }
    j->schema_version = (int)version;
    return 0;
}

static int load_marks(journal_t *j, struct err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(j->db, "SELECT session_id, id, last_sequence FROM sessions",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(err, j->db, rc, "loading sessions");
    int code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *sid = sqlite3_column_text(st, 0);
        if (!sid) {
            code = err_set(err, ERR_NOMEM, "journal: loading sessions: out of memory");
            break;
        }
        struct journal_mark *m = calloc(1, sizeof *m);
        if (!m) {
            code = err_set(err, ERR_NOMEM, "journal: loading sessions: out of memory");
            break;
        }
        m->id = sqlite3_column_int64(st, 1);
        int64_t last = sqlite3_column_int64(st, 2);
        m->last = last > 0 ? (uint64_t)last : 0;
        m->exists = 1;
        if (hmap_put(j->marks, (const char *)sid, m) != 0) {
            free(m);
            code = err_set(err, ERR_NOMEM, "journal: loading sessions: out of memory");
            break;
        }
    }
    if (code == 0 && rc != SQLITE_DONE)
        code = sql_fail(err, j->db, rc, "loading sessions");
    rc = sqlite3_finalize(st);
    if (code == 0 && rc != SQLITE_OK)
        code = sql_fail(err, j->db, rc, "loading sessions");
    return code;
}

static int prepare_writer(journal_t *j, struct err *err)
{
    int rc;
    if ((rc = prepare(j->db, "BEGIN IMMEDIATE", &j->st_begin, err)) ||
        (rc = prepare(j->db, "COMMIT", &j->st_commit, err)) ||
        (rc = prepare(j->db, "ROLLBACK", &j->st_rollback, err)) ||
        (rc = prepare(j->db,
                      "INSERT INTO sessions(session_id, agent, agent_mode, permission_mode, "
                      "model, variant, agent_version, native_session_id, working_dir, "
                      "created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                      "coalesce(?10, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
                      &j->st_ins_session, err)) ||
        (rc = prepare(j->db,
                      "INSERT INTO events(session, sequence, type, turn_end, json, raw) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                      &j->st_ins_event, err)) ||
        (rc = prepare(j->db,
                      "UPDATE sessions SET last_sequence = ?2, "
                      "native_session_id = coalesce(?3, native_session_id), "
                      "ended = CASE WHEN ?4 < 0 THEN 0 ELSE max(ended, ?4) END, adapter_state = coalesce(?5, adapter_state) "
                      "WHERE id = ?1",
                      &j->st_upd_session, err)) ||
        (rc = prepare(j->db,
                      "INSERT INTO item_aliases(session, native_id, item_id) "
                      "VALUES(?1, ?2, ?3) ON CONFLICT(session, native_id) DO NOTHING",
                      &j->st_ins_alias, err)) ||
        (rc = prepare(j->db, "SELECT id FROM sessions WHERE session_id = ?1",
                      &j->st_x_session_id, err)) ||
        /* ?3: whether to replace the state (a reset stores NULL). */
        (rc = prepare(j->db,
                      "INSERT INTO export_targets(target, state, updated_at) "
                      "VALUES(?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) "
                      "ON CONFLICT(target) DO UPDATE SET "
                      "state = CASE WHEN ?3 THEN excluded.state ELSE state END, "
                      "updated_at = excluded.updated_at",
                      &j->st_x_target, err)) ||
        (rc = prepare(j->db, "SELECT id FROM export_targets WHERE target = ?1",
                      &j->st_x_target_id, err)) ||
        (rc = prepare(j->db, "DELETE FROM export_checkpoints WHERE target = ?1",
                      &j->st_x_reset, err)) ||
        (rc = prepare(j->db,
                      "INSERT INTO export_checkpoints(target, session, last_sequence) "
                      "VALUES(?1, ?2, ?3) ON CONFLICT(target, session) DO UPDATE SET "
                      "last_sequence = max(last_sequence, excluded.last_sequence)",
                      &j->st_x_mark, err)))
        return rc;
    return 0;
}

/* ---- the writer -------------------------------------------------------- */

/* Steps a write statement to completion; 0 or the SQLite code. */
static int step_write(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    rc = stmt_release(st, rc);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void mark_touch(journal_t *j, struct journal_mark *m, struct journal_mark **touched,
                       const char *key)
{
    if (m->tent_gen == j->gen)
        return;
    m->tent_gen = j->gen;
    m->tent_id = m->id;
    m->tent_last = m->last;
    m->tent_exists = m->exists;
    m->tent_key = key;
    m->tent_next = *touched;
    *touched = m;
}

/* 1 if `b` (not in step with `last`) was numbered right after batches the
 * storage refused, its own sequences following one by one. */
static int follows_refused(const struct journal_mark *m, uint64_t last,
                           const struct journal_batch *b)
{
    uint64_t first = b->events[0].sequence;
    if (m->lost_through <= last || first < last + 2 || first > m->lost_through + 1)
        return 0;
    for (size_t i = 1; i < b->n_events; i++)
        if (b->events[i].sequence != first + i)
            return 0;
    return 1;
}

/* Fails `n` with the refusal its sequences depend on, and extends the
 * refused range over it so the batches queued behind it fail alike. */
static int refuse_as_lost(journal_t *j, struct journal_node *n, struct journal_mark *m)
{
    const struct journal_batch *b = &n->b;
    uint64_t through = b->events[b->n_events - 1].sequence;
    if (through > m->lost_through)
        m->lost_through = through;
    return err_set_subject(&n->err, j->lost_err.code ? j->lost_err.code : ERR_STORAGE,
                           b->session_id,
                           "journal: session %s: not journaled, as events before it were "
                           "not: %s",
                           b->session_id, j->lost_err.msg);
}

/* Checks one batch against the group's tentative view.  0, or the code with
 * which this batch alone fails (nothing of it has touched SQL). */
static int validate(journal_t *j, struct journal_node *n, struct journal_mark **out)
{
    assert(runs_group(j));
    const struct journal_batch *b = &n->b;
    struct journal_mark *m = hmap_get(j->marks, b->session_id);
    int exists = 0;
    uint64_t last = 0;
    if (m) {
        exists = m->tent_gen == j->gen ? m->tent_exists : m->exists;
        last = m->tent_gen == j->gen ? m->tent_last : m->last;
    }
    if (b->create && exists)
        return err_set_subject(&n->err, ERR_CONFLICT, b->session_id,
                               "journal: session %s already exists", b->session_id);
    if (!b->create && !exists)
        return err_set_subject(&n->err, ERR_CONFLICT, b->session_id,
                               "journal: session %s does not exist", b->session_id);
    if (b->create)
        last = 0;
    if (m && !b->create && b->n_events && b->events[0].sequence != last + 1 &&
        follows_refused(m, last, b))
        return refuse_as_lost(j, n, m);
    for (size_t i = 0; i < b->n_events; i++) {
        uint64_t want = last + 1 + i;
        if (b->events[i].sequence != want)
            return err_set_subject(&n->err, ERR_CONFLICT, b->session_id,
                                   "journal: session %s: event sequence %llu where %llu "
                                   "was due",
                                   b->session_id, (unsigned long long)b->events[i].sequence,
                                   (unsigned long long)want);
    }
    if (!m) {
        /* Entered now, invisible (exists = 0) until the commit, so that the
         * commit itself needs no allocation that could fail. */
        m = calloc(1, sizeof *m);
        if (!m)
            return err_set_subject(&n->err, ERR_NOMEM, b->session_id,
                                   "journal: out of memory");
        pthread_mutex_lock(&j->watch_lock);
        int rc = hmap_put(j->marks, b->session_id, m);
        pthread_mutex_unlock(&j->watch_lock);
        if (rc) {
            free(m);
            return err_set_subject(&n->err, ERR_NOMEM, b->session_id,
                                   "journal: out of memory");
        }
        m->tent_new = 1; /* apply_batch() touches it next, so rollback finds it */
    }
    *out = m;
    return 0;
}

/* Writes one validated batch; SQLITE_OK, the SQLite code, or
 * JOURNAL_ROW_MISSING.  Any failure loses the whole group. */
static int apply_batch(journal_t *j, const struct journal_batch *b, struct journal_mark *m,
                       struct journal_mark **touched)
{
    int rc;
    mark_touch(j, m, touched, b->session_id);
    if (b->create) {
        const struct journal_session_row *c = b->create;
        sqlite3_stmt *st = j->st_ins_session;
        if ((rc = bind_str(st, 1, b->session_id)) || (rc = bind_str(st, 2, c->agent)) ||
            (rc = bind_str(st, 3, c->agent_mode)) ||
            (rc = bind_str(st, 4, c->permission_mode)) || (rc = bind_str(st, 5, c->model)) ||
            (rc = bind_str(st, 6, c->variant)) || (rc = bind_str(st, 7, c->agent_version)) ||
            (rc = bind_str(st, 8, c->native_session_id)) ||
            (rc = bind_str(st, 9, c->working_dir)) || (rc = bind_str(st, 10, c->created_at)))
            return stmt_release(st, rc);
        if ((rc = step_write(st)))
            return rc;
        m->tent_id = sqlite3_last_insert_rowid(j->db);
        m->tent_exists = 1;
        m->tent_last = 0;
    }
    sqlite3_stmt *ev = j->st_ins_event;
    for (size_t i = 0; i < b->n_events; i++) {
        const struct journal_event *e = &b->events[i];
        if ((rc = sqlite3_bind_int64(ev, 1, m->tent_id)) ||
            (rc = sqlite3_bind_int64(ev, 2, (sqlite3_int64)e->sequence)) ||
            (rc = bind_str(ev, 3, e->type)) ||
            (rc = sqlite3_bind_int(ev, 4, e->turn_end ? 1 : 0)) ||
            (rc = bind_bytes(ev, 5, e->json, e->json_len)) ||
            (rc = bind_bytes(ev, 6, e->raw, e->raw_len)))
            return stmt_release(ev, rc);
        if ((rc = step_write(ev)))
            return rc;
    }
    if (b->n_events)
        m->tent_last = b->events[b->n_events - 1].sequence;
    sqlite3_stmt *al = j->st_ins_alias;
    for (size_t i = 0; i < b->n_aliases; i++) {
        if ((rc = sqlite3_bind_int64(al, 1, m->tent_id)) ||
            (rc = bind_str(al, 2, b->aliases[i].native_id)) ||
            (rc = bind_str(al, 3, b->aliases[i].item_id)))
            return stmt_release(al, rc);
        if ((rc = step_write(al)))
            return rc;
    }
    if (b->n_events == 0 && !b->native_session_id && !b->mark_ended && !b->adapter_state)
        return SQLITE_OK; /* a bare create: the INSERT said it all */
    sqlite3_stmt *up = j->st_upd_session;
    if ((rc = sqlite3_bind_int64(up, 1, m->tent_id)) ||
        (rc = sqlite3_bind_int64(up, 2, (sqlite3_int64)m->tent_last)) ||
        (rc = bind_str(up, 3, b->native_session_id)) ||
        (rc = sqlite3_bind_int(up, 4, b->mark_ended)) ||
        (rc = bind_str(up, 5, b->adapter_state)))
        return stmt_release(up, rc);
    if ((rc = step_write(up)))
        return rc;
    /* The map and the table disagree (someone else wrote the file): better
     * to lose this group than to commit events for a missing session row. */
    if (sqlite3_changes(j->db) != 1)
        return JOURNAL_ROW_MISSING;
    return SQLITE_OK;
}

/* Looks one integer up with a cached statement taking one text parameter.
 * *found says whether a row came back.  SQLITE_OK or the failure. */
static int lookup_id(sqlite3_stmt *st, const char *key, int64_t *out, int *found)
{
    *found = 0;
    int rc = bind_str(st, 1, key);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            *found = 1;
        }
    }
    rc = stmt_release(st, rc);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Writes one checkpoint request; SQLITE_OK, the SQLite code, or
 * JOURNAL_NODE_REFUSED (n->err says why) when it names a session the
 * journal lacks: every session is looked up before anything is written, so
 * a refused request leaves the group's transaction as it found it. */
static int apply_export(journal_t *j, struct journal_node *n)
{
    struct journal_export_op *x = &n->x;
    int rc, found;
    for (size_t i = 0; i < x->n_marks; i++) {
        const char *sid = x->marks[i].session_id;
        if ((rc = lookup_id(j->st_x_session_id, sid, &x->ids[i], &found)))
            return rc;
        if (!found) {
            err_set_subject(&n->err, ERR_NOT_FOUND, sid,
                            "journal: export checkpoint for unknown session %s", sid);
            return JOURNAL_NODE_REFUSED;
        }
    }
    sqlite3_stmt *st = j->st_x_target;
    if ((rc = bind_str(st, 1, x->target)) || (rc = bind_str(st, 2, x->state)) ||
        (rc = sqlite3_bind_int(st, 3, x->reset || x->state)))
        return stmt_release(st, rc);
    if ((rc = step_write(st)))
        return rc;
    int64_t target_id = 0;
    if ((rc = lookup_id(j->st_x_target_id, x->target, &target_id, &found)))
        return rc;
    if (!found)
        return JOURNAL_ROW_MISSING; /* inserted just above: the file changed under us */
    if (x->reset) {
        st = j->st_x_reset;
        if ((rc = sqlite3_bind_int64(st, 1, target_id)))
            return stmt_release(st, rc);
        if ((rc = step_write(st)))
            return rc;
    }
    st = j->st_x_mark;
    for (size_t i = 0; i < x->n_marks; i++) {
        if ((rc = sqlite3_bind_int64(st, 1, target_id)) ||
            (rc = sqlite3_bind_int64(st, 2, x->ids[i])) ||
            (rc = sqlite3_bind_int64(st, 3, clamp_i64(x->marks[i].last_sequence))))
            return stmt_release(st, rc);
        if ((rc = step_write(st)))
            return rc;
    }
    return SQLITE_OK;
}

static void wait_list_unlink(journal_t *j, struct journal_wait_list *l,
                             struct journal_waiter *w)
{
    assert(watch_held(j));
    if (w->prev)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
    w->next = w->prev = NULL;
    w->parked = 0;
    w->session_id = NULL;
    if (!l->head) {
        hmap_remove(j->waits, l->key);
        if (l->prev)
            l->prev->next = l->next;
        else
            j->wait_lists = l->next;
        if (l->next)
            l->next->prev = l->prev;
        free(l);
    }
}

static struct journal_wait_list *wait_list_of(struct journal_waiter *w)
{
    return (struct journal_wait_list *)(void *)(w->session_id -
                                                offsetof(struct journal_wait_list, key));
}

/* Unlinks a journal_park_any() waiter (session_id NULL).  Under watch_lock. */
static void any_unlink(journal_t *j, struct journal_waiter *w)
{
    assert(watch_held(j));
    if (w->prev)
        w->prev->next = w->next;
    else
        j->any_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        j->any_tail = w->prev;
    w->next = w->prev = NULL;
    w->parked = 0;
}

/* Wakes every journal_park_any() waiter whose `seen` the commit count has
 * passed.  Under watch_lock; each is unlinked before its wake runs. */
static void wake_any(journal_t *j, int all)
{
    assert(watch_held(j));
    for (struct journal_waiter *w = j->any_head, *next; w; w = next) {
        next = w->next;
        if (all || w->after < j->stats.transactions) {
            any_unlink(j, w);
            if (w->wake)
                w->wake(w);
        }
    }
}

/* Wakes the waiters of `l` that `last` has passed.  Called under watch_lock.
 * Each waiter is unlinked before its wake runs: its owner may reuse it as
 * soon as wake returns. */
static void wake_passed(journal_t *j, struct journal_wait_list *l, uint64_t last)
{
    assert(watch_held(j));
    /* Unlinking the last waiter frees l, but then `next` is already NULL. */
    for (struct journal_waiter *w = l->head, *next; w; w = next) {
        next = w->next;
        if (w->after < last) {
            wait_list_unlink(j, l, w);
            if (w->wake)
                w->wake(w);
        }
    }
}

static void finish_group(journal_t *j, struct journal_node *group, size_t n_ok,
                         struct journal_mark *touched, int committed)
{
    assert(runs_group(j));
    size_t n_events = 0;
    for (struct journal_node *n = group; n; n = n->next)
        if (n->rc == 0)
            n_events += n->b.n_events;

    pthread_mutex_lock(&j->watch_lock);
    for (struct journal_mark *m = touched, *next; m; m = next) {
        next = m->tent_next;
        m->tent_next = NULL;
        m->tent_gen = 0;
        if (!committed) {
            /* Only a batch that passed validation enters a pending mark, and
             * apply_batch() touches it first thing, so all are on this list. */
            if (m->tent_new) {
                hmap_remove(j->marks, m->tent_key);
                free(m);
            }
            continue;
        }
        m->tent_new = 0;
        m->id = m->tent_id;
        m->exists = m->tent_exists;
        int advanced = m->tent_last > m->last;
        m->last = m->tent_last;
        if (advanced)
            m->lost_through = 0; /* its writer is back in step */
        if (advanced) {
            struct journal_wait_list *l = hmap_get(j->waits, m->tent_key);
            if (l)
                wake_passed(j, l, m->last);
        }
        m->tent_key = NULL;
    }
    if (committed && n_ok) {
        j->stats.transactions++;
        j->stats.batches += n_ok;
        j->stats.events += n_events;
        if (n_ok > j->stats.max_tx_batches)
            j->stats.max_tx_batches = n_ok;
        wake_any(j, 0);
    }
    pthread_mutex_unlock(&j->watch_lock);

    while (group) {
        struct journal_node *next = group->next;
        if (group->done)
            group->done(group->arg, group->rc, &group->err);
        free(group);
        group = next;
    }
}

/* 1 if the database file is no longer at its path (renamed or deleted).
 * SQLite would go on committing into the open file (WAL mode has no check of
 * its own), where a restart would never find those events: acknowledging
 * them would be a lie.  One stat(2) per group; a file renamed back makes
 * commits work again. */
static int file_moved(journal_t *j)
{
    int moved = 0;
    if (sqlite3_file_control(j->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK)
        return 0; /* a VFS that cannot tell: nothing to go on */
    return moved != 0;
}

/* Records that the storage refused `b`, which had passed validation, so its
 * first sequence followed the session's (tentative) last one. */
static void note_refused(journal_t *j, const struct journal_batch *b)
{
    struct journal_mark *m = hmap_get(j->marks, b->session_id);
    uint64_t through = b->events[b->n_events - 1].sequence;
    if (m && through > m->lost_through)
        m->lost_through = through;
}

/* Commits one group.  Batches failing validation get their own error; an
 * SQL failure anywhere fails every other batch of the group with it. */
static void run_group(journal_t *j, struct journal_node *group)
{
    assert(runs_group(j));
    j->gen++;
    if (j->gen == 0)
        j->gen = 1; /* 0 means "untouched" in tent_gen */
    struct journal_mark *touched = NULL;
    struct err sqlerr;
    err_clear(&sqlerr);
    size_t n_ok = 0;

    int rc = step_write(j->st_begin);
    if (rc != SQLITE_OK)
        sql_fail(&sqlerr, j->db, rc, "begin");
    for (struct journal_node *n = group; n && rc == SQLITE_OK; n = n->next) {
        if (n->is_export) {
            rc = apply_export(j, n);
            if (rc == JOURNAL_NODE_REFUSED) {
                n->rc = n->err.code;
                rc = SQLITE_OK;
            } else if (rc == JOURNAL_ROW_MISSING) {
                err_set(&sqlerr, ERR_STORAGE, "journal: export target row of %s vanished",
                        n->x.target);
            } else if (rc != SQLITE_OK) {
                sql_fail(&sqlerr, j->db, rc, "export checkpoint");
            } else {
                n_ok++;
            }
            continue;
        }
        struct journal_mark *m = NULL;
        n->rc = validate(j, n, &m);
        if (n->rc)
            continue;
        rc = apply_batch(j, &n->b, m, &touched);
        if (rc == JOURNAL_ROW_MISSING)
            err_set(&sqlerr, ERR_STORAGE,
                    "journal: session row of %s is missing from the database",
                    n->b.session_id);
        else if (rc != SQLITE_OK)
            sql_fail(&sqlerr, j->db, rc, "append");
        else
            n_ok++;
    }
    if (rc == SQLITE_OK && file_moved(j)) {
        err_set(&sqlerr, ERR_STORAGE,
                "journal: database file %s was moved or deleted; nothing is written until "
                "it is back", j->path);
        rc = JOURNAL_FILE_MOVED;
    }
    if (rc == SQLITE_OK) {
        rc = step_write(j->st_commit);
        if (rc != SQLITE_OK)
            sql_fail(&sqlerr, j->db, rc, "commit");
    }
    if (rc != SQLITE_OK) {
        if (!sqlite3_get_autocommit(j->db)) {
            int r = step_write(j->st_rollback);
            if (r != SQLITE_OK) {
                char first[sizeof sqlerr.msg];
                snprintf(first, sizeof first, "%s", sqlerr.msg);
                err_set(&sqlerr, ERR_STORAGE, "%s (and rollback failed: %s)", first,
                        sqlite3_errmsg(j->db));
            }
        }
        j->lost_err = sqlerr;
        for (struct journal_node *n = group; n; n = n->next) {
            if (n->rc)
                continue; /* failed validation on its own, before any SQL */
            n->rc = sqlerr.code;
            n->err = sqlerr;
            snprintf(n->err.subject, sizeof n->err.subject, "%s",
                     n->is_export ? "" : n->b.session_id);
            if (!n->is_export && n->b.n_events && !n->b.create)
                note_refused(j, &n->b);
        }
        finish_group(j, group, 0, touched, 0);
        return;
    }
    finish_group(j, group, n_ok, touched, 1);
}

static void *writer_main(void *arg)
{
    journal_t *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->q_lock);
        /* An appender committing its own batch holds the write connection:
         * wait for it, also before exiting, so that close finds it free. */
        while ((!j->q_head || j->q_busy) && !(j->q_closing && !j->q_busy))
            pthread_cond_wait(&j->q_cond, &j->q_lock);
        if (!j->q_head) {
            pthread_mutex_unlock(&j->q_lock);
            break; /* closing and drained */
        }
        j->q_busy = 1;
        j->group_runner = pthread_self();
        struct journal_node *group = j->q_head, *tail = group;
        size_t events = group->b.n_events;
        while (tail->next && events + tail->next->b.n_events <= JOURNAL_GROUP_EVENTS) {
            tail = tail->next;
            events += tail->b.n_events;
        }
        j->q_head = tail->next;
        if (!j->q_head)
            j->q_tail = NULL;
        tail->next = NULL;
        pthread_mutex_unlock(&j->q_lock);
        run_group(j, group);
        pthread_mutex_lock(&j->q_lock);
        j->q_busy = 0;
        pthread_mutex_unlock(&j->q_lock);
    }
    return NULL;
}

/* ---- open and close ---------------------------------------------------- */

static void free_mark(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
}

static void reader_free(journal_reader_t *r, const char *path)
{
    finalize_cached(&r->read_events);
    finalize_cached(&r->list_sessions);
    finalize_cached(&r->get_session);
    finalize_cached(&r->export_scan_all);
    finalize_cached(&r->export_scan_since);
    finalize_cached(&r->export_cursor);
    finalize_cached(&r->export_state);
    finalize_cached(&r->data_version);
    finalize_cached(&r->read_aliases);
    close_db(r->db, path);
    free(r);
}

static void close_readers(journal_t *j)
{
    struct journal_reader *r = j->readers;
    j->readers = NULL;
    while (r) {
        struct journal_reader *next = r->next;
        reader_free(r, j->path);
        r = next;
    }
    r = j->spare;
    j->spare = NULL;
    while (r) {
        struct journal_reader *next = r->next;
        reader_free(r, j->path);
        r = next;
    }
}

/* Releases whatever part of `j` exists; the writer must be stopped. */
static void journal_destroy(journal_t *j)
{
    close_readers(j);
    finalize_cached(&j->st_begin);
    finalize_cached(&j->st_commit);
    finalize_cached(&j->st_rollback);
    finalize_cached(&j->st_ins_session);
    finalize_cached(&j->st_ins_event);
    finalize_cached(&j->st_upd_session);
    finalize_cached(&j->st_ins_alias);
    finalize_cached(&j->st_x_session_id);
    finalize_cached(&j->st_x_target);
    finalize_cached(&j->st_x_target_id);
    finalize_cached(&j->st_x_reset);
    finalize_cached(&j->st_x_mark);
    close_db(j->db, j->path);
    if (j->marks) {
        hmap_foreach(j->marks, free_mark, NULL);
        hmap_free(j->marks);
    }
    while (j->wait_lists) {
        struct journal_wait_list *l = j->wait_lists;
        j->wait_lists = l->next;
        free(l);
    }
    hmap_free(j->waits);
    if (j->reader_key_ok) {
        int rc = pthread_key_delete(j->reader_key);
        if (rc != 0)
            fprintf(stderr, "journal: pthread_key_delete: %s\n", strerror(rc));
    }
    if (j->readers_lock_ok)
        pthread_mutex_destroy(&j->readers_lock);
    if (j->watch_lock_ok)
        pthread_mutex_destroy(&j->watch_lock);
    if (j->q_cond_ok)
        pthread_cond_destroy(&j->q_cond);
    if (j->q_lock_ok)
        pthread_mutex_destroy(&j->q_lock);
    free(j->path);
    free(j);
}

static int init_sync(journal_t *j, struct err *err)
{
    if (pthread_mutex_init(&j->q_lock, NULL) != 0)
        return err_set(err, ERR_NOMEM, "journal: cannot create a mutex");
    j->q_lock_ok = 1;
    if (pthread_cond_init(&j->q_cond, NULL) != 0)
        return err_set(err, ERR_NOMEM, "journal: cannot create a condition variable");
    j->q_cond_ok = 1;
    if (pthread_mutex_init(&j->watch_lock, NULL) != 0)
        return err_set(err, ERR_NOMEM, "journal: cannot create a mutex");
    j->watch_lock_ok = 1;
    if (pthread_mutex_init(&j->readers_lock, NULL) != 0)
        return err_set(err, ERR_NOMEM, "journal: cannot create a mutex");
    j->readers_lock_ok = 1;
    if (pthread_key_create(&j->reader_key, NULL) != 0)
        return err_set(err, ERR_NOMEM, "journal: cannot create a thread key");
    j->reader_key_ok = 1;
    return 0;
}

int journal_open(const char *path, enum journal_durability durability, journal_t **out,
                 struct err *err)
{
    if (!path || !*path || !out)
        return err_set(err, ERR_INVALID, "journal: no database path given");
    *out = NULL;
    if (!sqlite3_threadsafe())
        return err_set(err, ERR_STORAGE, "journal: SQLite was built without thread support");
    journal_t *j = calloc(1, sizeof *j);
    if (!j)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    int rc = 0;
    j->path = strdup(path);
    j->marks = hmap_new();
    j->waits = hmap_new();
    if (!j->path || !j->marks || !j->waits)
        rc = err_set(err, ERR_NOMEM, "journal: out of memory");
    if (!rc)
        rc = init_sync(j, err);
    if (!rc)
        rc = open_conn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &j->db, err);
    if (!rc)
        rc = setup_writer_conn(j, durability, err);
    if (!rc)
        rc = run_migrations(j, err);
    if (!rc)
        rc = load_marks(j, err);
    if (!rc)
        rc = prepare_writer(j, err);
    if (!rc) {
        int prc = pthread_create(&j->writer, NULL, writer_main, j);
        if (prc != 0)
            rc = err_set(err, ERR_INTERNAL, "journal: cannot start the writer thread: %s",
                         strerror(prc));
        else
            j->writer_started = 1;
    }
    if (rc) {
        journal_destroy(j);
        return rc;
    }
    *out = j;
    return 0;
}

/* The schema version this binary's migrations end at. */
static int newest_migration(void)
{
    return migrations_count ? migrations_all[migrations_count - 1].version : 0;
}

int journal_open_readonly(const char *path, journal_t **out, struct err *err)
{
    if (!path || !*path || !out)
        return err_set(err, ERR_INVALID, "journal: no database path given");
    *out = NULL;
    journal_t *j = calloc(1, sizeof *j);
    if (!j)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    j->readonly = 1;
    int rc = 0;
    j->path = strdup(path);
    j->marks = hmap_new();
    j->waits = hmap_new();
    if (!j->path || !j->marks || !j->waits)
        rc = err_set(err, ERR_NOMEM, "journal: out of memory");
    if (!rc)
        rc = init_sync(j, err);
    if (!rc)
        rc = open_conn(path, SQLITE_OPEN_READONLY, &j->db, err);
    int64_t version = 0;
    if (!rc)
        rc = query_int(j->db, "PRAGMA user_version", &version, err, "user_version");
    /* Migrating is a write: a read-only open only reads what it knows. */
    if (!rc && version != newest_migration())
        rc = err_set(err, ERR_STORAGE,
                     "journal: database %s is at schema version %lld and this binary reads "
                     "version %d; %s",
                     path, (long long)version, newest_migration(),
                     version < newest_migration() ? "start the server on it once to migrate"
                                                  : "use a newer sandbox-journal");
    if (!rc) {
        j->schema_version = (int)version;
        rc = load_marks(j, err);
    }
    if (rc) {
        journal_destroy(j);
        return rc;
    }
    *out = j;
    return 0;
}

void journal_close(journal_t *j)
{
    if (!j)
        return;
    if (j->readonly) {
        pthread_mutex_lock(&j->readers_lock);
        close_readers(j);
        pthread_mutex_unlock(&j->readers_lock);
        journal_destroy(j);
        return;
    }
    pthread_mutex_lock(&j->q_lock);
    j->q_closing = 1;
    pthread_cond_signal(&j->q_cond);
    pthread_mutex_unlock(&j->q_lock);
    if (j->writer_started) {
        int rc = pthread_join(j->writer, NULL);
        if (rc != 0)
            fprintf(stderr, "journal: joining the writer: %s\n", strerror(rc));
    }
    journal_wake_all(j, 1);

    /* Readers go first: an idle reader does not block a TRUNCATE checkpoint,
     * but closing them leaves the writer the last connection for certain. */
    pthread_mutex_lock(&j->readers_lock);
    close_readers(j);
    pthread_mutex_unlock(&j->readers_lock);

    int64_t busy = 0;
    struct err e;
    err_clear(&e);
    if (query_int(j->db, "PRAGMA wal_checkpoint(TRUNCATE)", &busy, &e, "checkpoint") != 0)
        fprintf(stderr, "%s\n", e.msg);
    else if (busy)
        fprintf(stderr, "journal: checkpoint of %s could not complete (busy)\n", j->path);
    journal_destroy(j);
}

int journal_schema_version(const journal_t *j)
{
    return j->schema_version;
}

/* ---- submitting -------------------------------------------------------- */

static int check_batch(const struct journal_batch *b, struct err *err)
{
    if (!b || !b->session_id || !*b->session_id)
        return err_set(err, ERR_INVALID, "journal: batch without a session id");
    const char *sid = b->session_id;
    if (b->n_events && !b->events)
        return err_set_subject(err, ERR_INVALID, sid, "journal: batch without its events");
    if (b->n_aliases && !b->aliases)
        return err_set_subject(err, ERR_INVALID, sid, "journal: batch without its aliases");
    for (size_t i = 0; i < b->n_aliases; i++)
        if (!b->aliases[i].native_id || !b->aliases[i].item_id)
            return err_set_subject(err, ERR_INVALID, sid, "journal: alias %zu lacks an id", i);
    if (b->create) {
        const struct journal_session_row *c = b->create;
        if (c->session_id && strcmp(c->session_id, sid) != 0)
            return err_set_subject(err, ERR_INVALID, sid,
                                   "journal: session row names %s, batch names %s",
                                   c->session_id, sid);
        if (!c->agent || !c->agent_mode || !c->permission_mode)
            return err_set_subject(err, ERR_INVALID, sid,
                                   "journal: session row lacks agent or modes");
    }
    const size_t tail = sizeof JOURNAL_JSON_TAIL - 1;
    for (size_t i = 0; i < b->n_events; i++) {
        const struct journal_event *e = &b->events[i];
        if (!e->type || !e->json)
            return err_set_subject(err, ERR_INVALID, sid,
                                   "journal: event %zu lacks its type or json", i);
        if (e->sequence == 0 || e->sequence > (uint64_t)INT64_MAX)
            return err_set_subject(err, ERR_INVALID, sid,
                                   "journal: event sequence %llu out of range",
                                   (unsigned long long)e->sequence);
        if (e->json_len < tail || memcmp(e->json + e->json_len - tail, JOURNAL_JSON_TAIL,
                                         tail) != 0)
            return err_set_subject(err, ERR_INVALID, sid,
                                   "journal: event %llu json does not end in %s",
                                   (unsigned long long)e->sequence, JOURNAL_JSON_TAIL);
    }
    return 0;
}

static char *put_str(char **cursor, const char *s, size_t len)
{
    if (!s)
        return NULL;
    char *dst = *cursor;
    memcpy(dst, s, len);
    dst[len] = '\0';
    *cursor += len + 1;
    return dst;
}

static const char *put_cstr(char **cursor, const char *s)
{
    return s ? put_str(cursor, s, strlen(s)) : NULL;
}

/* Copies `b` into one allocation: node, event array, alias array, then
 * every string. */
static struct journal_node *copy_batch(const struct journal_batch *b)
{
    size_t head = sizeof(struct journal_node);
    size_t align = alignof(struct journal_event);
    head = (head + align - 1) / align * align;
    if (b->n_events > (SIZE_MAX - head) / sizeof(struct journal_event))
        return NULL;
    size_t total = head + b->n_events * sizeof(struct journal_event);
    /* An event array's size keeps pointer alignment, so the aliases follow. */
    size_t alias_at = total;
    if (b->n_aliases > (SIZE_MAX - total) / sizeof(struct journal_alias))
        return NULL;
    total += b->n_aliases * sizeof(struct journal_alias);
    int bad = size_add(&total, str_space(b->session_id)) ||
              size_add(&total, str_space(b->native_session_id)) ||
              size_add(&total, str_space(b->adapter_state));
    if (b->create) {
        const struct journal_session_row *c = b->create;
        bad = bad || size_add(&total, str_space(c->agent)) ||
              size_add(&total, str_space(c->agent_mode)) ||
              size_add(&total, str_space(c->permission_mode)) ||
              size_add(&total, str_space(c->model)) ||
              size_add(&total, str_space(c->variant)) ||
              size_add(&total, str_space(c->agent_version)) ||
              size_add(&total, str_space(c->native_session_id)) ||
              size_add(&total, str_space(c->working_dir)) ||
              size_add(&total, str_space(c->created_at));
    }
    for (size_t i = 0; i < b->n_events && !bad; i++) {
        const struct journal_event *e = &b->events[i];
        bad = size_add(&total, str_space(e->type)) || size_add(&total, e->json_len) ||
              size_add(&total, 1) || (e->raw && (size_add(&total, e->raw_len) ||
                                                  size_add(&total, 1)));
    }
    for (size_t i = 0; i < b->n_aliases && !bad; i++)
        bad = size_add(&total, str_space(b->aliases[i].native_id)) ||
              size_add(&total, str_space(b->aliases[i].item_id));
    if (bad)
        return NULL;

    struct journal_node *n = malloc(total);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    struct journal_event *events = (struct journal_event *)(void *)((char *)n + head);
    struct journal_alias *aliases = (struct journal_alias *)(void *)((char *)n + alias_at);
    char *cursor = (char *)aliases + b->n_aliases * sizeof *aliases;

    n->b.session_id = put_cstr(&cursor, b->session_id);
    n->b.native_session_id = put_cstr(&cursor, b->native_session_id);
    n->b.adapter_state = put_cstr(&cursor, b->adapter_state);
    n->b.mark_ended = b->mark_ended;
    if (b->create) {
        const struct journal_session_row *c = b->create;
        n->create.session_id = n->b.session_id;
        n->create.agent = put_cstr(&cursor, c->agent);
        n->create.agent_mode = put_cstr(&cursor, c->agent_mode);
        n->create.permission_mode = put_cstr(&cursor, c->permission_mode);
        n->create.model = put_cstr(&cursor, c->model);
        n->create.variant = put_cstr(&cursor, c->variant);
        n->create.agent_version = put_cstr(&cursor, c->agent_version);
        n->create.native_session_id = put_cstr(&cursor, c->native_session_id);
        n->create.working_dir = put_cstr(&cursor, c->working_dir);
        n->create.created_at = put_cstr(&cursor, c->created_at);
        n->b.create = &n->create;
    }
    for (size_t i = 0; i < b->n_events; i++) {
        const struct journal_event *e = &b->events[i];
        events[i].sequence = e->sequence;
        events[i].turn_end = e->turn_end;
        events[i].type = put_cstr(&cursor, e->type);
        events[i].json = put_str(&cursor, e->json, e->json_len);
        events[i].json_len = e->json_len;
        events[i].raw = put_str(&cursor, e->raw, e->raw_len);
        events[i].raw_len = e->raw ? e->raw_len : 0;
    }
    n->b.events = b->n_events ? events : NULL;
    n->b.n_events = b->n_events;
    for (size_t i = 0; i < b->n_aliases; i++) {
        aliases[i].native_id = put_cstr(&cursor, b->aliases[i].native_id);
        aliases[i].item_id = put_cstr(&cursor, b->aliases[i].item_id);
    }
    n->b.aliases = b->n_aliases ? aliases : NULL;
    n->b.n_aliases = b->n_aliases;
    return n;
}

/* Hands `n` (takes ownership) to the writer.  `subject` names it in errors. */
static int enqueue(journal_t *j, struct journal_node *n, const char *subject, struct err *err)
{
    if (j->readonly) {
        free(n);
        return err_set_subject(err, ERR_INVALID, subject, "journal: opened read-only");
    }
    pthread_mutex_lock(&j->q_lock);
    if (j->q_closing) {
        pthread_mutex_unlock(&j->q_lock);
        free(n);
        return err_set_subject(err, ERR_STORAGE, subject, "journal: closing");
    }
    if (j->q_tail)
        j->q_tail->next = n;
    else
        j->q_head = n;
    j->q_tail = n;
    pthread_cond_signal(&j->q_cond);
    pthread_mutex_unlock(&j->q_lock);
    return 0;
}

int journal_submit(journal_t *j, const struct journal_batch *b, journal_done_fn done,
                   void *arg, struct err *err)
{
    int rc = check_batch(b, err);
    if (rc)
        return rc;
    struct journal_node *n = copy_batch(b);
    if (!n)
        return err_set_subject(err, ERR_NOMEM, b->session_id, "journal: out of memory");
    n->done = done;
    n->arg = arg;
    return enqueue(j, n, b->session_id, err);
}

struct journal_completion {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int rc;
    struct err err;
};

static void complete(void *arg, int rc, const struct err *err)
{
    struct journal_completion *c = arg;
    pthread_mutex_lock(&c->lock);
    c->rc = rc;
    if (err)
        c->err = *err;
    c->done = 1;
    /* Signalled under the lock: the waiter may destroy `c` once it sees
     * done, which it cannot before we unlock. */
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* With nothing queued and nobody writing, the appender runs its own group
 * (`n` alone) on its own thread: handing it to the writer thread and being
 * woken again costs two context switches, more than the commit itself at
 * durability normal.  Under load the queue is not empty, so batches still
 * meet in one group on the writer.  1 if `n` ran (and is freed), else 0. */
static int run_alone(journal_t *j, struct journal_node *n)
{
    if (j->readonly)
        return 0;
    pthread_mutex_lock(&j->q_lock);
    int mine = !j->q_busy && !j->q_head && !j->q_closing && j->writer_started;
    if (mine) {
        j->q_busy = 1;
        j->group_runner = pthread_self();
    }
    pthread_mutex_unlock(&j->q_lock);
    if (!mine)
        return 0;
    n->next = NULL;
    run_group(j, n);
    pthread_mutex_lock(&j->q_lock);
    j->q_busy = 0;
    pthread_cond_signal(&j->q_cond); /* what queued meanwhile is the writer's */
    pthread_mutex_unlock(&j->q_lock);
    return 1;
}

/* Queues `n` (takes ownership) and waits for the writer's verdict. */
static int run_and_wait(journal_t *j, struct journal_node *n, const char *subject,
                        struct err *err)
{
    if (j->writer_started && pthread_equal(pthread_self(), j->writer)) {
        free(n);
        return err_set(err, ERR_INVALID, "journal: append from the writer thread would "
                                         "wait for itself");
    }
    struct journal_completion c;
    memset(&c, 0, sizeof c);
    if (pthread_mutex_init(&c.lock, NULL) != 0) {
        free(n);
        return err_set(err, ERR_NOMEM, "journal: cannot create a mutex");
    }
    if (pthread_cond_init(&c.cond, NULL) != 0) {
        pthread_mutex_destroy(&c.lock);
        free(n);
        return err_set(err, ERR_NOMEM, "journal: cannot create a condition variable");
    }
    n->done = complete;
    n->arg = &c;
    int rc = run_alone(j, n) ? 0 : enqueue(j, n, subject, err);
    if (rc == 0) {
        pthread_mutex_lock(&c.lock);
        while (!c.done)
            pthread_cond_wait(&c.cond, &c.lock);
        pthread_mutex_unlock(&c.lock);
        rc = c.rc;
        if (rc && err)
            *err = c.err;
    }
    pthread_cond_destroy(&c.cond);
    pthread_mutex_destroy(&c.lock);
    return rc;
}

int journal_append(journal_t *j, const struct journal_batch *b, struct err *err)
{
    int rc = check_batch(b, err);
    if (rc)
        return rc;
    struct journal_node *n = copy_batch(b);
    if (!n)
        return err_set_subject(err, ERR_NOMEM, b->session_id, "journal: out of memory");
    return run_and_wait(j, n, b->session_id, err);
}

/* Copies a checkpoint request into one allocation: node, marks, ids, then
 * every string.  NULL when memory ran out. */
static struct journal_node *copy_export(const char *target, const char *state,
                                        const struct journal_export_mark *marks,
                                        size_t n_marks, int reset)
{
    size_t head = sizeof(struct journal_node);
    size_t align = alignof(struct journal_export_mark) > alignof(int64_t)
                       ? alignof(struct journal_export_mark)
                       : alignof(int64_t);
    head = (head + align - 1) / align * align;
    size_t per = sizeof(struct journal_export_mark) + sizeof(int64_t);
    if (n_marks > (SIZE_MAX - head) / per)
        return NULL;
    size_t total = head + n_marks * per;
    int bad = size_add(&total, str_space(target)) || size_add(&total, str_space(state));
    for (size_t i = 0; i < n_marks && !bad; i++)
        bad = size_add(&total, str_space(marks[i].session_id));
    if (bad)
        return NULL;
    struct journal_node *n = malloc(total);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    struct journal_export_mark *m = (struct journal_export_mark *)(void *)((char *)n + head);
    int64_t *ids = (int64_t *)(void *)(m + n_marks);
    char *cursor = (char *)(ids + n_marks);
    n->is_export = 1;
    n->x.target = put_cstr(&cursor, target);
    n->x.state = put_cstr(&cursor, state);
    n->x.reset = reset;
    for (size_t i = 0; i < n_marks; i++) {
        m[i].session_id = put_cstr(&cursor, marks[i].session_id);
        m[i].last_sequence = marks[i].last_sequence;
        ids[i] = 0;
    }
    n->x.marks = n_marks ? m : NULL;
    n->x.ids = n_marks ? ids : NULL;
    n->x.n_marks = n_marks;
    return n;
}

int journal_export_advance(journal_t *j, const char *target, const char *state,
                           const struct journal_export_mark *marks, size_t n_marks,
                           struct err *err)
{
    if (!target || !*target)
        return err_set(err, ERR_INVALID, "journal: export checkpoint without a target");
    if (n_marks && !marks)
        return err_set(err, ERR_INVALID, "journal: export checkpoint without its marks");
    for (size_t i = 0; i < n_marks; i++)
        if (!marks[i].session_id || marks[i].last_sequence > (uint64_t)INT64_MAX)
            return err_set(err, ERR_INVALID, "journal: export checkpoint %zu is invalid", i);
    struct journal_node *n = copy_export(target, state, marks, n_marks, 0);
    if (!n)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    return run_and_wait(j, n, "", err);
}

int journal_export_reset(journal_t *j, const char *target, struct err *err)
{
    if (!target || !*target)
        return err_set(err, ERR_INVALID, "journal: export reset without a target");
    struct journal_node *n = copy_export(target, NULL, NULL, 0, 1);
    if (!n)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    return run_and_wait(j, n, "", err);
}

/* ---- watermarks and waiting -------------------------------------------- */

int journal_session_exists(journal_t *j, const char *session_id)
{
    if (!session_id)
        return 0;
    pthread_mutex_lock(&j->watch_lock);
    const struct journal_mark *m = hmap_get(j->marks, session_id);
    int exists = m && m->exists;
    pthread_mutex_unlock(&j->watch_lock);
    return exists;
}

uint64_t journal_last_sequence(journal_t *j, const char *session_id)
{
    if (!session_id)
        return 0;
    pthread_mutex_lock(&j->watch_lock);
    const struct journal_mark *m = hmap_get(j->marks, session_id);
    uint64_t last = m && m->exists ? m->last : 0;
    pthread_mutex_unlock(&j->watch_lock);
    return last;
}

void journal_get_stats(journal_t *j, struct journal_stats *out)
{
    pthread_mutex_lock(&j->watch_lock);
    *out = j->stats;
    pthread_mutex_unlock(&j->watch_lock);
}

int journal_park(journal_t *j, const char *session_id, uint64_t after,
                 struct journal_waiter *w)
{
    if (!session_id || !w)
        return ERR_INVALID;
    pthread_mutex_lock(&j->watch_lock);
    if (j->watch_closing || w->parked) {
        pthread_mutex_unlock(&j->watch_lock);
        return ERR_INVALID;
    }
    const struct journal_mark *m = hmap_get(j->marks, session_id);
    if (m && m->exists && m->last > after) {
        pthread_mutex_unlock(&j->watch_lock);
        return 1;
    }
    struct journal_wait_list *l = hmap_get(j->waits, session_id);
    if (!l) {
        size_t len = strlen(session_id);
        l = calloc(1, sizeof *l + len + 1);
        if (!l) {
            pthread_mutex_unlock(&j->watch_lock);
            return ERR_NOMEM;
        }
        memcpy(l->key, session_id, len + 1);
        if (hmap_put(j->waits, session_id, l) != 0) {
            free(l);
            pthread_mutex_unlock(&j->watch_lock);
            return ERR_NOMEM;
        }
        l->next = j->wait_lists;
        if (l->next)
            l->next->prev = l;
        j->wait_lists = l;
    }
    w->session_id = l->key;
    w->after = after;
    w->parked = 1;
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
    if (w->park)
        w->park(w);
    pthread_mutex_unlock(&j->watch_lock);
    return 0;
}

int journal_unpark(journal_t *j, struct journal_waiter *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&j->watch_lock);
    int was = w->parked;
    if (was && !w->session_id)
        any_unlink(j, w);
    else if (was)
        wait_list_unlink(j, wait_list_of(w), w);
    pthread_mutex_unlock(&j->watch_lock);
    return was;
}

uint64_t journal_commit_count(journal_t *j)
{
    pthread_mutex_lock(&j->watch_lock);
    uint64_t n = j->stats.transactions;
    pthread_mutex_unlock(&j->watch_lock);
    return n;
}

int journal_park_any(journal_t *j, uint64_t seen, struct journal_waiter *w)
{
    if (!w)
        return ERR_INVALID;
    pthread_mutex_lock(&j->watch_lock);
    if (j->watch_closing || w->parked) {
        pthread_mutex_unlock(&j->watch_lock);
        return ERR_INVALID;
    }
    if (j->stats.transactions > seen) {
        pthread_mutex_unlock(&j->watch_lock);
        return 1;
    }
    w->session_id = NULL; /* marks it as one of the any-list */
    w->after = seen;
    w->parked = 1;
    w->next = NULL;
    w->prev = j->any_tail;
    if (j->any_tail)
        j->any_tail->next = w;
    else
        j->any_head = w;
    j->any_tail = w;
    if (w->park)
        w->park(w);
    pthread_mutex_unlock(&j->watch_lock);
    return 0;
}

void journal_wake_all(journal_t *j, int closing)
{
    pthread_mutex_lock(&j->watch_lock);
    if (closing)
        j->watch_closing = 1;
    /* Unlinking a list's last waiter frees the list and advances
     * j->wait_lists, so this always takes the first waiter still parked. */
    for (struct journal_wait_list *l; (l = j->wait_lists);) {
        struct journal_waiter *w = l->head;
        wait_list_unlink(j, l, w);
        if (w->wake)
            w->wake(w);
    }
    wake_any(j, 1);
    pthread_mutex_unlock(&j->watch_lock);
}

/* ---- reading ----------------------------------------------------------- */

#define SESSION_COLUMNS                                                                   \
    "session_id, agent, agent_mode, permission_mode, model, variant, agent_version, "    \
    "native_session_id, working_dir, adapter_state, created_at, ended, last_sequence "

/* new: a reader with its statements prepared, or NULL (err filled). */
static journal_reader_t *reader_open(journal_t *j, struct err *err)
{
    journal_reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        err_set(err, ERR_NOMEM, "journal: out of memory");
        return NULL;
    }
    r->j = j;
    int rc = open_conn(j->path, SQLITE_OPEN_READONLY, &r->db, err);
    if (!rc)
        rc = prepare(r->db,
                     "SELECT sequence, json, raw, turn_end FROM events "
                     "WHERE session = (SELECT id FROM sessions WHERE session_id = ?1) "
                     "AND sequence > ?2 ORDER BY sequence LIMIT ?3",
                     &r->read_events, err);
    if (!rc)
        rc = prepare(r->db, "SELECT " SESSION_COLUMNS "FROM sessions ORDER BY id DESC",
                     &r->list_sessions, err);
    if (!rc)
        rc = prepare(r->db, "SELECT " SESSION_COLUMNS "FROM sessions WHERE session_id = ?1",
                     &r->get_session, err);
    if (rc) {
        reader_free(r, j->path);
        return NULL;
    }
    return r;
}

journal_reader_t *journal_reader_for_thread(journal_t *j, struct err *err)
{
    journal_reader_t *r = pthread_getspecific(j->reader_key);
    if (r)
        return r;
    pthread_mutex_lock(&j->readers_lock);
    r = j->spare;
    if (r)
        j->spare = r->next;
    pthread_mutex_unlock(&j->readers_lock);
    if (!r)
        r = reader_open(j, err);
    if (!r)
        return NULL;
    int rc = pthread_setspecific(j->reader_key, r);
    if (rc != 0) {
        reader_free(r, j->path);
        err_set(err, ERR_NOMEM, "journal: cannot attach a reader to this thread: %s",
                strerror(rc));
        return NULL;
    }
    pthread_mutex_lock(&j->readers_lock);
    r->next = j->readers;
    j->readers = r;
    pthread_mutex_unlock(&j->readers_lock);
    return r;
}

int journal_open_readers(journal_t *j, unsigned n, struct err *err)
{
    for (unsigned i = 0; i < n; i++) {
        journal_reader_t *r = reader_open(j, err);
        if (!r)
            return err ? err->code : ERR_STORAGE;
        pthread_mutex_lock(&j->readers_lock);
        r->next = j->spare;
        j->spare = r;
        pthread_mutex_unlock(&j->readers_lock);
    }
    return 0;
}

int journal_read_events(journal_reader_t *r, const char *session_id, uint64_t after,
                        uint32_t limit, journal_event_fn fn, void *arg, int *has_more,
                        struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (has_more)
        *has_more = 0;
    if (!r || !session_id || !fn)
        return err_set(err, ERR_INVALID, "journal: read_events without reader, session or "
                                         "callback");
    sqlite3_stmt *st = r->read_events;
    /* One row past the page tells has_more without a second query. */
    sqlite3_int64 fetch = limit ? (sqlite3_int64)limit + 1 : -1;
    int rc;
    if ((rc = bind_str(st, 1, session_id)) || (rc = sqlite3_bind_int64(st, 2, clamp_i64(after))) ||
        (rc = sqlite3_bind_int64(st, 3, fetch))) {
        rc = stmt_release(st, rc);
        return sql_fail(err, r->db, rc, "read events");
    }
    uint32_t seen = 0;
    int stopped = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((limit && seen == limit) || stopped) {
            if (has_more)
                *has_more = 1;
            rc = SQLITE_DONE;
            break;
        }
        sqlite3_int64 seq = sqlite3_column_int64(st, 0);
        const char *json = (const char *)sqlite3_column_text(st, 1);
        size_t json_len = (size_t)sqlite3_column_bytes(st, 1);
        const char *raw = NULL;
        size_t raw_len = 0;
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
            raw = (const char *)sqlite3_column_text(st, 2);
            raw_len = (size_t)sqlite3_column_bytes(st, 2);
            if (!raw) {
                rc = SQLITE_NOMEM;
                break;
            }
        }
        if (!json) {
            rc = SQLITE_NOMEM;
            break;
        }
        int turn_end = sqlite3_column_int(st, 3);
        seen++;
        stopped = fn(arg, (uint64_t)seq, json, json_len, raw, raw_len, turn_end);
    }
    rc = stmt_release(st, rc);
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "read events");
    return stopped;
}

/* Points `s` at the current row's columns: valid until the next step.
 * SQLITE_NOMEM if a NOT NULL column came back NULL, which only SQLite
 * running out of memory converting it can cause. */
static int row_view(sqlite3_stmt *st, struct journal_session_info *s)
{
    char **cols[] = {&s->session_id, &s->agent, &s->agent_mode, &s->permission_mode,
                     &s->model, &s->variant, &s->agent_version, &s->native_session_id,
                     &s->working_dir, &s->adapter_state, &s->created_at};
    for (int i = 0; i < (int)(sizeof cols / sizeof cols[0]); i++)
        *cols[i] = (char *)sqlite3_column_text(st, i);
    s->ended = sqlite3_column_int(st, 11);
    sqlite3_int64 last = sqlite3_column_int64(st, 12);
    s->last_sequence = last > 0 ? (uint64_t)last : 0;
    if (!s->session_id || !s->agent || !s->agent_mode || !s->permission_mode ||
        !s->created_at)
        return SQLITE_NOMEM;
    return SQLITE_OK;
}

void journal_session_info_clear(struct journal_session_info *s)
{
    if (!s)
        return;
    free(s->session_id);
    free(s->agent);
    free(s->agent_mode);
    free(s->permission_mode);
    free(s->model);
    free(s->variant);
    free(s->agent_version);
    free(s->native_session_id);
    free(s->working_dir);
    free(s->adapter_state);
    free(s->created_at);
    memset(s, 0, sizeof *s);
}

int journal_list_sessions(journal_reader_t *r, journal_session_fn fn, void *arg,
                          struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (!r || !fn)
        return err_set(err, ERR_INVALID, "journal: list_sessions without reader or callback");
    sqlite3_stmt *st = r->list_sessions;
    int rc, stopped = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct journal_session_info s;
        if ((rc = row_view(st, &s)) != SQLITE_OK)
            break;
        stopped = fn(arg, &s);
        if (stopped) {
            rc = SQLITE_DONE;
            break;
        }
    }
    rc = stmt_release(st, rc);
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "list sessions");
    return stopped;
}

int journal_get_session(journal_reader_t *r, const char *session_id,
                        struct journal_session_info *out, struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (!r || !session_id || !out)
        return err_set(err, ERR_INVALID, "journal: get_session without reader or session");
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = r->get_session;
    int rc = bind_str(st, 1, session_id);
    if (rc != SQLITE_OK) {
        rc = stmt_release(st, rc);
        return sql_fail(err, r->db, rc, "get session");
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = stmt_release(st, rc);
        if (rc != SQLITE_OK && rc != SQLITE_DONE)
            return sql_fail(err, r->db, rc, "get session");
        return err_set_subject(err, ERR_NOT_FOUND, session_id, "journal: no session %s",
                               session_id);
    }
    if (rc != SQLITE_ROW) {
        rc = stmt_release(st, rc);
        return sql_fail(err, r->db, rc, "get session");
    }
    struct journal_session_info view;
    int failed = row_view(st, &view) != SQLITE_OK;
    out->session_id = dup_or_null((const unsigned char *)view.session_id, &failed);
    out->agent = dup_or_null((const unsigned char *)view.agent, &failed);
    out->agent_mode = dup_or_null((const unsigned char *)view.agent_mode, &failed);
    out->permission_mode = dup_or_null((const unsigned char *)view.permission_mode, &failed);
    out->model = dup_or_null((const unsigned char *)view.model, &failed);
    out->variant = dup_or_null((const unsigned char *)view.variant, &failed);
    out->agent_version = dup_or_null((const unsigned char *)view.agent_version, &failed);
    out->native_session_id =
        dup_or_null((const unsigned char *)view.native_session_id, &failed);
    out->working_dir = dup_or_null((const unsigned char *)view.working_dir, &failed);
    out->adapter_state = dup_or_null((const unsigned char *)view.adapter_state, &failed);
    out->created_at = dup_or_null((const unsigned char *)view.created_at, &failed);
    out->ended = view.ended;
    out->last_sequence = view.last_sequence;
    rc = stmt_release(st, SQLITE_OK);
    if (failed) {
        journal_session_info_clear(out);
        return err_set_subject(err, ERR_NOMEM, session_id, "journal: out of memory");
    }
    if (rc != SQLITE_OK) {
        journal_session_info_clear(out);
        return sql_fail(err, r->db, rc, "get session");
    }
    return 0;
}

int journal_integrity_check(journal_reader_t *r, struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (!r)
        return err_set(err, ERR_INVALID, "journal: integrity_check without reader");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, "PRAGMA integrity_check", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "integrity_check");
    rc = sqlite3_step(st);
    int code = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *first = sqlite3_column_text(st, 0);
        if (!first)
            code = err_set(err, ERR_NOMEM, "journal: integrity_check: out of memory");
        else if (strcmp((const char *)first, "ok") != 0)
            code = err_set(err, ERR_STORAGE, "journal: integrity_check: %s",
                           (const char *)first);
    } else {
        code = sql_fail(err, r->db, rc, "integrity_check");
    }
    rc = sqlite3_finalize(st);
    if (code == 0 && rc != SQLITE_OK)
        code = sql_fail(err, r->db, rc, "integrity_check");
    return code;
}

/* ---- export checkpoints and change detection (readers) ------------------- */

/* Prepares one of the reader's optional statements on first use. */
static int reader_stmt(journal_reader_t *r, sqlite3_stmt **st, const char *sql,
                       struct err *err)
{
    if (*st)
        return 0;
    return prepare(r->db, sql, st, err);
}

int journal_read_aliases(journal_reader_t *r, const char *session_id, journal_alias_fn fn,
                         void *arg, struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (!r || !session_id || !fn)
        return err_set(err, ERR_INVALID, "journal: read_aliases without reader, session or "
                                         "callback");
    int rc = reader_stmt(r, &r->read_aliases,
                         "SELECT native_id, item_id FROM item_aliases WHERE session = "
                         "(SELECT id FROM sessions WHERE session_id = ?1)",
                         err);
    if (rc)
        return rc;
    sqlite3_stmt *st = r->read_aliases;
    if ((rc = bind_str(st, 1, session_id))) {
        rc = stmt_release(st, rc);
        return sql_fail(err, r->db, rc, "read aliases");
    }
    int stopped = 0;
    while (!stopped && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *native = (const char *)sqlite3_column_text(st, 0);
        const char *item = (const char *)sqlite3_column_text(st, 1);
        if (!native || !item) {
            rc = SQLITE_NOMEM;
            break;
        }
        stopped = fn(arg, native, item);
    }
    if (stopped)
        rc = SQLITE_DONE;
    rc = stmt_release(st, rc);
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "read aliases");
    return stopped;
}

int journal_data_version(journal_reader_t *r, uint64_t *out, struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (!r || !out)
        return err_set(err, ERR_INVALID, "journal: data_version without reader");
    int rc = reader_stmt(r, &r->data_version, "PRAGMA data_version", err);
    if (rc)
        return rc;
    sqlite3_stmt *st = r->data_version;
    int step = sqlite3_step(st);
    sqlite3_int64 v = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    step = stmt_release(st, step);
    if (step != SQLITE_OK && step != SQLITE_ROW && step != SQLITE_DONE)
        return sql_fail(err, r->db, step, "data_version");
    *out = (uint64_t)v;
    return 0;
}

#define EXPORT_SCAN_SELECT                                                                 \
    "SELECT s.session_id, s.last_sequence, coalesce(c.last_sequence, 0) "                 \
    "FROM sessions s LEFT JOIN export_checkpoints c "                                     \
    "ON c.target = (SELECT id FROM export_targets WHERE target = ?1) AND c.session = s.id "

int journal_export_scan(journal_reader_t *r, const char *target, int64_t *cursor,
                        journal_export_fn fn, void *arg, struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (!r || !target || !cursor || !fn || *cursor < 0)
        return err_set(err, ERR_INVALID, "journal: export scan without reader, target, "
                                         "cursor or callback");
    int rc;
    if ((rc = reader_stmt(r, &r->export_scan_all,
                          EXPORT_SCAN_SELECT
                          "WHERE s.last_sequence > coalesce(c.last_sequence, 0) ORDER BY s.id",
                          err)) ||
        /* The events table is append-ordered by rowid (one writer at a time,
         * rows never deleted), so "id > cursor" is exactly what committed
         * since the last scan, found by a range of the table itself. */
        (rc = reader_stmt(r, &r->export_scan_since,
                          EXPORT_SCAN_SELECT
                          "WHERE s.id IN (SELECT session FROM events WHERE id > ?2) "
                          "AND s.last_sequence > coalesce(c.last_sequence, 0) ORDER BY s.id",
                          err)) ||
        (rc = reader_stmt(r, &r->export_cursor, "SELECT coalesce(max(id), 0) FROM events",
                          err)))
        return rc;
    /* One snapshot for the sessions and the cursor: a commit between them
     * would otherwise be counted as seen without having been scanned. */
    if ((rc = exec_sql(r->db, "BEGIN", err, "export scan")))
        return rc;
    sqlite3_stmt *st = *cursor ? r->export_scan_since : r->export_scan_all;
    int stopped = 0;
    rc = bind_str(st, 1, target);
    if (rc == SQLITE_OK && *cursor)
        rc = sqlite3_bind_int64(st, 2, *cursor);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *sid = (const char *)sqlite3_column_text(st, 0);
        if (!sid) {
            rc = SQLITE_NOMEM;
            break;
        }
        sqlite3_int64 last = sqlite3_column_int64(st, 1);
        sqlite3_int64 done = sqlite3_column_int64(st, 2);
        stopped = fn(arg, sid, last > 0 ? (uint64_t)last : 0, done > 0 ? (uint64_t)done : 0);
        if (stopped) {
            rc = SQLITE_DONE;
            break;
        }
        rc = SQLITE_OK;
    }
    rc = stmt_release(st, rc);
    int64_t reached = 0;
    if (rc == SQLITE_OK || rc == SQLITE_DONE) {
        st = r->export_cursor;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            reached = sqlite3_column_int64(st, 0);
        rc = stmt_release(st, rc);
    }
    int code = 0;
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        code = sql_fail(err, r->db, rc, "export scan");
    if (code) {
        /* The scan's failure is the one to report; a failed rollback of a
         * read transaction leaves nothing behind worth more than a log line. */
        struct err ignored;
        if (exec_sql(r->db, "ROLLBACK", &ignored, "export scan") != 0)
            fprintf(stderr, "%s\n", ignored.msg);
        return code;
    }
    if ((code = exec_sql(r->db, "COMMIT", err, "export scan")))
        return code;
    if (!stopped)
        *cursor = reached;
    return stopped;
}

int journal_export_state(journal_reader_t *r, const char *target, char **state,
                         struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (!r || !target || !state)
        return err_set(err, ERR_INVALID, "journal: export state without reader or target");
    int rc = reader_stmt(r, &r->export_state,
                         "SELECT state FROM export_targets WHERE target = ?1", err);
    if (rc)
        return rc;
    sqlite3_stmt *st = r->export_state;
    char *copy = NULL;
    int failed = 0;
    rc = bind_str(st, 1, target);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            copy = dup_or_null(sqlite3_column_text(st, 0), &failed);
    }
    rc = stmt_release(st, rc);
    if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) {
        free(copy);
        return sql_fail(err, r->db, rc, "export state");
    }
    if (failed)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    *state = copy;
    return 0;
}
