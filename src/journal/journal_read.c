/* The read path: one read-only connection per thread, event pages,
 * session rows, aliases and change detection. */
#include "journal/journal_int.h"

/* Finalizes the reader's statements and closes its connection. */
static void reader_release(journal_reader_t *r, const char *path)
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
    finalize_cached(&r->idem_get);
    finalize_cached(&r->index_pos);
    close_db(r->db, path);
    r->db = NULL;
}

static void reader_free(journal_reader_t *r, const char *path)
{
    reader_release(r, path);
    free(r);
}

void journal__close_readers(journal_t *j)
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
    r->wal_gen = atomic_load(&j->wal_gen);
    int rc = open_conn(j->read_name ? j->read_name : j->path,
                       SQLITE_OPEN_READONLY | j->read_flags, &r->db, err);
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

/* Reopens `r` in place if the writer replaced the WAL since it opened (see
 * A FILE THAT MOVED): its connection still reads the old, emptied file.  Not
 * while a statement or transaction of it is open on this thread; a reopen
 * that fails leaves `r` as it was, to try again next time. */
static void reader_refresh(journal_reader_t *r)
{
    journal_t *j = r->j;
    if (r->wal_gen == atomic_load(&j->wal_gen) || !sqlite3_get_autocommit(r->db))
        return;
    for (sqlite3_stmt *st = sqlite3_next_stmt(r->db, NULL); st;
         st = sqlite3_next_stmt(r->db, st))
        if (sqlite3_stmt_busy(st))
            return;
    struct err e;
    err_clear(&e);
    journal_reader_t *fresh = reader_open(j, &e);
    if (!fresh) {
        fprintf(stderr, "journal: reopening a reader after a new WAL: %s\n", e.msg);
        return;
    }
    struct journal_reader *next = r->next;
    reader_release(r, j->path);
    *r = *fresh;
    r->next = next;
    free(fresh);
}

journal_reader_t *journal_reader_for_thread(journal_t *j, struct err *err)
{
    journal_reader_t *r = pthread_getspecific(j->reader_key);
    if (r) {
        reader_refresh(r);
        return r;
    }
    pthread_mutex_lock(&j->readers_lock);
    r = j->spare;
    if (r)
        j->spare = r->next;
    pthread_mutex_unlock(&j->readers_lock);
    if (r)
        reader_refresh(r);
    else
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
    return journal_read_events_budget(r, session_id, after, limit, 0, fn, arg, has_more, err);
}

int journal_read_events_budget(journal_reader_t *r, const char *session_id, uint64_t after,
                               uint32_t limit, size_t max_bytes, journal_event_fn fn,
                               void *arg, int *has_more, struct err *err)
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
    size_t bytes = 0;
    int stopped = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* Sizes before texts: an event over the budget is never fetched. */
        size_t size = (size_t)sqlite3_column_bytes(st, 1);
        if (sqlite3_column_type(st, 2) != SQLITE_NULL)
            size += (size_t)sqlite3_column_bytes(st, 2);
        if ((limit && seen == limit) || stopped ||
            (max_bytes && seen && size > max_bytes - bytes)) {
            if (has_more)
                *has_more = 1;
            rc = SQLITE_DONE;
            break;
        }
        bytes = size > max_bytes - bytes ? max_bytes : bytes + size;
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

/* ---- aliases and change detection --------------------------------------- */

/* Prepares one of the reader's optional statements on first use. */
int journal__reader_stmt(journal_reader_t *r, sqlite3_stmt **st, const char *sql,
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
    int rc = journal__reader_stmt(r, &r->read_aliases,
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
    int rc = journal__reader_stmt(r, &r->data_version, "PRAGMA data_version", err);
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


/* ---- idempotency keys ---------------------------------------------------- */

void journal_idem_info_clear(struct journal_idem_info *info)
{
    if (!info)
        return;
    free(info->route);
    free(info->session_id);
    free(info->body);
    memset(info, 0, sizeof *info);
}

int journal_idem_get(journal_reader_t *r, const char *key, struct journal_idem_info *out,
                     struct err *err)
{
    assert(reader_is_mine(r));
    if (!r || !key || !out)
        return err_set(err, ERR_INVALID, "journal: idem_get without reader, key or output");
    int rc = journal__reader_stmt(r, &r->idem_get,
                                  "SELECT route, session_id, request_hash, status, body, "
                                  "after, created FROM idempotency_keys "
                                  "WHERE key = ?1 AND created >= ?2",
                                  err);
    if (rc)
        return rc;
    sqlite3_stmt *st = r->idem_get;
    int64_t ttl = (int64_t)atomic_load(&r->j->idem_ttl_s);
    if ((rc = bind_str(st, 1, key)) ||
        (rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL) - ttl))) {
        rc = stmt_release(st, rc);
        return sql_fail(err, r->db, rc, "idempotency key lookup");
    }
    struct journal_idem_info info;
    memset(&info, 0, sizeof info);
    int failed = 0;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        info.route = dup_or_null(sqlite3_column_text(st, 0), &failed);
        info.session_id = dup_or_null(sqlite3_column_text(st, 1), &failed);
        info.request_hash = (uint64_t)sqlite3_column_int64(st, 2);
        info.status = (unsigned)sqlite3_column_int(st, 3);
        const void *body = sqlite3_column_blob(st, 4);
        size_t len = (size_t)sqlite3_column_bytes(st, 4);
        if (body) {
            info.body = malloc(len + 1);
            if (info.body) {
                memcpy(info.body, body, len);
                info.body[len] = '\0';
                info.body_len = len;
            } else {
                failed = 1;
            }
        } else if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
            failed = 1; /* a body SQLite could not hand over */
        }
        info.after = (uint64_t)sqlite3_column_int64(st, 5);
        info.created = sqlite3_column_int64(st, 6);
        if (!info.route)
            failed = 1;
    }
    step = stmt_release(st, step);
    if (step != SQLITE_OK && step != SQLITE_ROW && step != SQLITE_DONE) {
        journal_idem_info_clear(&info);
        return sql_fail(err, r->db, step, "idempotency key lookup");
    }
    if (failed) {
        journal_idem_info_clear(&info);
        return err_set(err, ERR_NOMEM, "journal: out of memory reading an idempotency key");
    }
    if (!info.route)
        return err_set(err, ERR_NOT_FOUND, "journal: idempotency key not stored");
    *out = info;
    return 0;
}
