/* Session summaries, the paged session list and full-text search: the reads
 * of GET /v1/sessions[/{id}] and GET /v1/search.
 *
 * What they read is kept by the triggers of migrations/0006_search.sql in
 * the writer's transaction (sessions.updated_at, turn_open, title,
 * pending_requests) and, behind the commit, by the index follower
 * (events_fts, journal_index.c), so these functions only read.  The
 * statements depend on the query's filters, so they are prepared per call:
 * a prepare costs tens of microseconds, nothing next to an HTTP request.
 *
 * Cursors are opaque to clients but plain to us:
 *   session list, by activity  "a<id>_<updated_at>"  (keyset on updated_at, id)
 *   session list, by creation  "c<id>"               (keyset on id)
 *   search                     "s<events.id>"        (newest hit first)
 * A cursor names the last row handed out, so rows added meanwhile (a new
 * session, a new event) never shift a page: they sort before the cursor. */
#include "journal/journal_int.h"

#include <ctype.h>
#include <inttypes.h>

/* The status rule, in SQL, for `s` a sessions row. */
#define SEARCH_STATUS_SQL                                                               \
    "CASE WHEN s.ended <> 0 THEN 'ended' "                                              \
    "WHEN EXISTS (SELECT 1 FROM pending_requests AS p WHERE p.session = s.id) "         \
    "THEN 'waiting' WHEN s.turn_open THEN 'running' ELSE 'idle' END"

#define SEARCH_PENDING_SQL(kind)                                                        \
    "(SELECT json_group_array(request_id) FROM (SELECT request_id FROM "                \
    "pending_requests AS p WHERE p.session = s.id AND s.ended = 0 "                     \
    "AND p.kind = '" kind "' "                                                          \
    "ORDER BY p.sequence))"

#define SEARCH_SUMMARY_COLUMNS                                                          \
    "s.session_id, s.agent, s.agent_mode, s.permission_mode, s.model, s.variant, "      \
    "s.agent_version, s.native_session_id, s.working_dir, NULL, s.created_at, s.ended, " \
    "s.last_sequence, " SEARCH_STATUS_SQL ", coalesce(s.updated_at, s.created_at), "    \
    "s.title, " SEARCH_PENDING_SQL("permission") ", " SEARCH_PENDING_SQL("question")   \
    ", s.id "

static const char *const search_statuses[] = {"running", "waiting", "idle", "ended", NULL};

/* Reads a summary row of SEARCH_SUMMARY_COLUMNS; borrowed views into `st`.
 * SQLITE_NOMEM if a NOT NULL column came back NULL (only SQLite running out
 * of memory converting it can do that). */
static int search_row(sqlite3_stmt *st, struct journal_session_info *s,
                      struct journal_session_extra *x)
{
    memset(s, 0, sizeof *s);
    char **cols[] = {&s->session_id, &s->agent, &s->agent_mode, &s->permission_mode,
                     &s->model, &s->variant, &s->agent_version, &s->native_session_id,
                     &s->working_dir, &s->adapter_state, &s->created_at};
    for (int i = 0; i < (int)(sizeof cols / sizeof cols[0]); i++)
        *cols[i] = (char *)sqlite3_column_text(st, i);
    s->ended = sqlite3_column_int(st, 11);
    sqlite3_int64 last = sqlite3_column_int64(st, 12);
    s->last_sequence = last > 0 ? (uint64_t)last : 0;
    x->status = (const char *)sqlite3_column_text(st, 13);
    x->updated_at = (const char *)sqlite3_column_text(st, 14);
    x->title = (const char *)sqlite3_column_text(st, 15);
    x->pending_permissions = (const char *)sqlite3_column_text(st, 16);
    x->pending_questions = (const char *)sqlite3_column_text(st, 17);
    if (!s->session_id || !s->agent || !s->agent_mode || !s->permission_mode ||
        !s->created_at || !x->status || !x->updated_at || !x->pending_permissions ||
        !x->pending_questions)
        return SQLITE_NOMEM;
    return SQLITE_OK;
}

/* Parses a session-list cursor of the query's order.  0 or ERR_INVALID. */
static int search_parse_list_cursor(const char *c, int by_activity, int64_t *id,
                                    const char **updated_at, struct err *err)
{
    const char *p = c;
    if (*p++ != (by_activity ? 'a' : 'c') || !isdigit((unsigned char)*p))
        goto bad;
    int64_t v = 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (INT64_MAX - 9) / 10)
            goto bad;
        v = v * 10 + (*p - '0');
    }
    if (by_activity) {
        if (*p++ != '_' || !*p || strlen(p) > 40)
            goto bad;
        for (const char *q = p; *q; q++)
            if (!isdigit((unsigned char)*q) && !strchr("-:.TZ", *q))
                goto bad;
        *updated_at = p;
    } else if (*p) {
        goto bad;
    }
    *id = v;
    return 0;
bad:
    return err_set(err, ERR_INVALID, "invalid request: cursor is not one this list made");
}

int journal_session_page(journal_reader_t *r, const struct journal_session_query *q,
                         journal_summary_fn fn, void *arg, char *next_cursor,
                         struct err *err)
{
    assert(reader_is_mine(r));
    if (!r || !q || !fn || !next_cursor)
        return err_set(err, ERR_INVALID, "journal: session_page without reader or callback");
    next_cursor[0] = '\0';
    int64_t cur_id = 0;
    const char *cur_at = NULL;
    if (q->cursor && search_parse_list_cursor(q->cursor, q->by_activity, &cur_id, &cur_at, err))
        return ERR_INVALID;
    if (q->status) {
        int known = 0;
        for (int i = 0; search_statuses[i]; i++)
            known |= strcmp(q->status, search_statuses[i]) == 0;
        if (!known)
            return err_set(err, ERR_INVALID,
                           "invalid request: status must be running, waiting, idle or ended");
    }

    /* ?1 agent, ?2 status, ?3/?4 the cursor, ?5 limit + 1 (one more row says
     * whether a next page exists).  A NULL parameter disables its filter, so
     * one statement text serves every combination of filters. */
    const char *sql =
        q->by_activity
            ? "SELECT " SEARCH_SUMMARY_COLUMNS "FROM sessions AS s "
              "WHERE (?1 IS NULL OR s.agent = ?1) "
              "AND (?2 IS NULL OR (" SEARCH_STATUS_SQL ") = ?2) "
              "AND (?3 IS NULL OR (s.updated_at, s.id) < (?3, ?4)) "
              "ORDER BY s.updated_at DESC, s.id DESC LIMIT ?5"
            : "SELECT " SEARCH_SUMMARY_COLUMNS "FROM sessions AS s "
              "WHERE (?1 IS NULL OR s.agent = ?1) "
              "AND (?2 IS NULL OR (" SEARCH_STATUS_SQL ") = ?2) "
              "AND (?4 IS NULL OR s.id < ?4) "
              "ORDER BY s.id DESC LIMIT ?5";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "prepare session page");
    int64_t lim = q->limit ? (int64_t)q->limit + 1 : -1;
    if ((rc = bind_str(st, 1, q->agent)) || (rc = bind_str(st, 2, q->status)) ||
        (rc = bind_str(st, 3, cur_at)) ||
        (rc = q->cursor ? sqlite3_bind_int64(st, 4, cur_id) : sqlite3_bind_null(st, 4)) ||
        (rc = sqlite3_bind_int64(st, 5, lim))) {
        sql_fail(err, r->db, rc, "session page");
        finalize_after_error(st);
        return sql_code(rc);
    }
    int stopped = 0;
    uint32_t n = 0;
    int64_t last_id = 0;
    char last_at[48] = "";
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (q->limit && n == q->limit) {
            if (q->by_activity)
                snprintf(next_cursor, JOURNAL_CURSOR_MAX, "a%" PRId64 "_%s", last_id, last_at);
            else
                snprintf(next_cursor, JOURNAL_CURSOR_MAX, "c%" PRId64, last_id);
            break;
        }
        struct journal_session_info s;
        struct journal_session_extra x;
        if ((rc = search_row(st, &s, &x)) != SQLITE_OK)
            break;
        last_id = sqlite3_column_int64(st, 18);
        snprintf(last_at, sizeof last_at, "%s", x.updated_at);
        n++;
        if ((stopped = fn(arg, &s, &x)) != 0)
            break;
    }
    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    if (rc != SQLITE_DONE && rc != SQLITE_OK) {
        int code = sql_fail(err, r->db, rc, "session page");
        finalize_after_error(st);
        next_cursor[0] = '\0';
        return code;
    }
    rc = sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "session page");
    return stopped;
}

int journal_session_summary(journal_reader_t *r, const char *session_id,
                            journal_summary_fn fn, void *arg, struct err *err)
{
    assert(reader_is_mine(r));
    if (!r || !session_id || !fn)
        return err_set(err, ERR_INVALID, "journal: session_summary without reader or id");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        r->db, "SELECT " SEARCH_SUMMARY_COLUMNS "FROM sessions AS s WHERE s.session_id = ?1",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "prepare session summary");
    if ((rc = bind_str(st, 1, session_id)) != SQLITE_OK) {
        sql_fail(err, r->db, rc, "session summary");
        finalize_after_error(st);
        return sql_code(rc);
    }
    int code = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct journal_session_info s;
        struct journal_session_extra x;
        rc = search_row(st, &s, &x);
        if (rc == SQLITE_OK)
            code = fn(arg, &s, &x);
    } else if (rc == SQLITE_DONE) {
        code = err_set_subject(err, ERR_NOT_FOUND, session_id, "session not found: %s",
                               session_id);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
        code = sql_fail(err, r->db, rc, "session summary");
        finalize_after_error(st);
        return code;
    }
    rc = sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "session summary");
    return code;
}

/* 1 if `q` has something to search for: FTS5 calls a query of blanks a
 * syntax error, which says less than "empty". */
static int search_query_is_blank(const char *q)
{
    for (; *q; q++)
        if (!isspace((unsigned char)*q))
            return 0;
    return 1;
}

int journal_search(journal_reader_t *r, const char *query, const char *session_id,
                   const char *cursor, uint32_t limit, journal_hit_fn fn, void *arg,
                   char *next_cursor, struct err *err)
{
    assert(reader_is_mine(r));
    if (!r || !fn || !next_cursor)
        return err_set(err, ERR_INVALID, "journal: search without reader or callback");
    next_cursor[0] = '\0';
    if (!query || search_query_is_blank(query))
        return err_set(err, ERR_INVALID, "invalid request: q (the search query) is empty");
    int64_t after = INT64_MAX;
    if (cursor) {
        const char *p = cursor;
        int64_t v = 0;
        int ok = *p++ == 's' && isdigit((unsigned char)*p);
        for (; ok && isdigit((unsigned char)*p); p++) {
            if (v > (INT64_MAX - 9) / 10)
                ok = 0;
            else
                v = v * 10 + (*p - '0');
        }
        if (!ok || *p)
            return err_set(err, ERR_INVALID,
                           "invalid request: cursor is not one this search made");
        after = v;
    }
    sqlite3_stmt *st = NULL;
    int64_t sid = 0, lo = 0, hi = after - 1;
    int rc;
    if (session_id) {
        /* The session's first and last event ids bound the rowids FTS5 reads:
         * without them a word common in the newer sessions had every one of
         * its hits read and joined before the session's own (a second per
         * query over 1M events, docs/benchmarks.md).  Within a session ids
         * grow with sequence (both are append order), so the ends of
         * events_by_session hold them. */
        rc = sqlite3_prepare_v2(
            r->db,
            "SELECT s.id, "
            "(SELECT e.id FROM events AS e WHERE e.session = s.id ORDER BY e.sequence LIMIT 1), "
            "(SELECT e.id FROM events AS e WHERE e.session = s.id "
            "ORDER BY e.sequence DESC LIMIT 1) "
            "FROM sessions AS s WHERE s.session_id = ?1",
            -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = bind_str(st, 1, session_id);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            sid = sqlite3_column_int64(st, 0);
            /* a session without events has no hits: an empty range */
            int64_t first = sqlite3_column_type(st, 1) == SQLITE_NULL
                                ? INT64_MAX
                                : sqlite3_column_int64(st, 1);
            int64_t newest = sqlite3_column_int64(st, 2);
            lo = first;
            if (newest < hi)
                hi = newest;
        } else if (rc == SQLITE_DONE) {
            rc = sqlite3_finalize(st), st = NULL;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_OK) {
            int code = sql_fail(err, r->db, rc, "search session");
            finalize_after_error(st);
            return code;
        }
        if (st && (rc = sqlite3_finalize(st)) != SQLITE_OK)
            return sql_fail(err, r->db, rc, "search session");
        st = NULL;
        if (!sid)
            return err_set_subject(err, ERR_NOT_FOUND, session_id, "session not found: %s",
                                   session_id);
    }
    /* The FTS5 index answers MATCH, the rowid range (the cursor, the
     * session's ends) and rowid order on its own; the join reads the hits'
     * rows by primary key only. */
    rc = sqlite3_prepare_v2(
        r->db,
        "SELECT s.session_id, e.sequence, e.type, "
        "snippet(events_fts, 0, '<mark>', '</mark>', '\xe2\x80\xa6', 16), f.rowid "
        "FROM events_fts AS f JOIN events AS e ON e.id = f.rowid "
        "JOIN sessions AS s ON s.id = e.session "
        "WHERE events_fts MATCH ?1 AND f.rowid >= ?5 AND f.rowid <= ?2 "
        "AND (?3 = 0 OR e.session = ?3) "
        "ORDER BY f.rowid DESC LIMIT ?4",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "prepare search");
    if ((rc = bind_str(st, 1, query)) || (rc = sqlite3_bind_int64(st, 2, hi)) ||
        (rc = sqlite3_bind_int64(st, 3, sid)) ||
        (rc = sqlite3_bind_int64(st, 4, limit ? (int64_t)limit + 1 : -1)) ||
        (rc = sqlite3_bind_int64(st, 5, lo))) {
        sql_fail(err, r->db, rc, "search");
        finalize_after_error(st);
        return sql_code(rc);
    }
    uint32_t n = 0;
    int64_t last = 0;
    int stopped = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (limit && n == limit) {
            snprintf(next_cursor, JOURNAL_CURSOR_MAX, "s%" PRId64, last);
            break;
        }
        struct journal_hit h = {
            .session_id = (const char *)sqlite3_column_text(st, 0),
            .sequence = (uint64_t)sqlite3_column_int64(st, 1),
            .type = (const char *)sqlite3_column_text(st, 2),
            .snippet = (const char *)sqlite3_column_text(st, 3),
        };
        last = sqlite3_column_int64(st, 4);
        if (!h.session_id || !h.type || !h.snippet) {
            rc = SQLITE_NOMEM;
            break;
        }
        n++;
        if ((stopped = fn(arg, &h)) != 0)
            break;
    }
    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    if (rc != SQLITE_DONE) {
        /* SQLITE_ERROR here is FTS5 refusing the query text ("fts5: syntax
         * error near ...", "no such column: x" for a column filter):
         * the client's mistake, and SQLite's message is the useful one. */
        int code = rc == SQLITE_ERROR
                       ? err_set(err, ERR_INVALID, "invalid request: bad search query: %s",
                                 sqlite3_errmsg(r->db))
                       : sql_fail(err, r->db, rc, "search");
        finalize_after_error(st);
        next_cursor[0] = '\0';
        return code;
    }
    rc = sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "search");
    return stopped;
}
