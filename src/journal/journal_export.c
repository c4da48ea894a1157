/* Export checkpoints: the writer's side (a request queued like a batch and
 * applied inside the group) and the readers' side (which sessions a target
 * still lacks, and its resume state). */
#include "journal/journal_int.h"

#include <stdalign.h>

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
int journal__apply_export(journal_t *j, struct journal_node *n)
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
    return journal__run_and_wait(j, n, "", err);
}

int journal_export_reset(journal_t *j, const char *target, struct err *err)
{
    if (!target || !*target)
        return err_set(err, ERR_INVALID, "journal: export reset without a target");
    struct journal_node *n = copy_export(target, NULL, NULL, 0, 1);
    if (!n)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    return journal__run_and_wait(j, n, "", err);
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
    if ((rc = journal__reader_stmt(r, &r->export_scan_all,
                          EXPORT_SCAN_SELECT
                          "WHERE s.last_sequence > coalesce(c.last_sequence, 0) ORDER BY s.id",
                          err)) ||
        /* The events table is append-ordered by rowid (one writer at a time,
         * rows never deleted), so "id > cursor" is exactly what committed
         * since the last scan, found by a range of the table itself. */
        (rc = journal__reader_stmt(r, &r->export_scan_since,
                          EXPORT_SCAN_SELECT
                          "WHERE s.id IN (SELECT session FROM events WHERE id > ?2) "
                          "AND s.last_sequence > coalesce(c.last_sequence, 0) ORDER BY s.id",
                          err)) ||
        (rc = journal__reader_stmt(r, &r->export_cursor, "SELECT coalesce(max(id), 0) FROM events",
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
    int rc = journal__reader_stmt(r, &r->export_state,
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

