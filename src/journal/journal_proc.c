/* The workspace's processes in the journal (migrations/0007_process_logs.sql):
 * their records and output chunks go through the writer's queue like
 * session batches, so a chatty process shares the group commits (and their
 * fsync) instead of paying one of its own per read; and readers page
 * through a process's chunks by its sequence, after a restart as before. */
#include "journal/journal_int.h"

#include <stdalign.h>

/* Writes one process write; SQLITE_OK or the SQLite code (the group is lost). */
int journal__apply_proc(journal_t *j, struct journal_node *n)
{
    const struct journal_proc_write *w = &n->p;
    sqlite3_stmt *st;
    int rc;
    if (w->remove) {
        sqlite3_stmt *rm[2] = { j->st_p_rm_logs, j->st_p_rm };
        for (int i = 0; i < 2; i++) {
            if ((rc = bind_str(rm[i], 1, w->process_id)))
                return stmt_release(rm[i], rc);
            if ((rc = step_write(rm[i])))
                return rc;
        }
        return SQLITE_OK;
    }
    if (w->info) {
        st = j->st_p_info;
        if ((rc = bind_str(st, 1, w->process_id)) || (rc = bind_str(st, 2, w->info)))
            return stmt_release(st, rc);
        if ((rc = step_write(st)))
            return rc;
    }
    if (w->drop_through) {
        st = j->st_p_drop;
        if ((rc = bind_str(st, 1, w->process_id)) ||
            (rc = sqlite3_bind_int64(st, 2, clamp_i64(w->drop_through))))
            return stmt_release(st, rc);
        if ((rc = step_write(st)))
            return rc;
    }
    st = j->st_p_chunk;
    for (size_t i = 0; i < w->n_chunks; i++) {
        const struct journal_proc_chunk *c = &w->chunks[i];
        if ((rc = bind_str(st, 1, w->process_id)) ||
            (rc = sqlite3_bind_int64(st, 2, clamp_i64(c->sequence))) ||
            (rc = bind_str(st, 3, c->stream)) ||
            (rc = sqlite3_bind_int64(st, 4, c->ts_ms)) ||
            (rc = sqlite3_bind_blob64(st, 5, c->len ? c->data : "", (sqlite3_uint64)c->len,
                                      SQLITE_STATIC)))
            return stmt_release(st, rc);
        if ((rc = step_write(st)))
            return rc;
    }
    return SQLITE_OK;
}

static int check_proc(const struct journal_proc_write *w, struct err *err)
{
    if (!w || !w->process_id || !*w->process_id)
        return err_set(err, ERR_INVALID, "journal: process write without a process id");
    if (w->n_chunks && !w->chunks)
        return err_set(err, ERR_INVALID, "journal: process write without its chunks");
    if (w->remove && (w->info || w->n_chunks || w->drop_through))
        return err_set(err, ERR_INVALID, "journal: a process removal writes nothing else");
    for (size_t i = 0; i < w->n_chunks; i++) {
        const struct journal_proc_chunk *c = &w->chunks[i];
        if (!c->stream || (c->len && !c->data) || c->sequence == 0 ||
            c->sequence > (uint64_t)INT64_MAX)
            return err_set(err, ERR_INVALID, "journal: process chunk %zu is invalid", i);
    }
    return 0;
}

/* Copies `w` into one allocation: node, chunks, then every string and
 * byte.  NULL when memory ran out. */
static struct journal_node *copy_proc(const struct journal_proc_write *w)
{
    size_t head = sizeof(struct journal_node);
    size_t align = alignof(struct journal_proc_chunk);
    head = (head + align - 1) / align * align;
    if (w->n_chunks > (SIZE_MAX - head) / sizeof(struct journal_proc_chunk))
        return NULL;
    size_t total = head + w->n_chunks * sizeof(struct journal_proc_chunk);
    int bad = size_add(&total, str_space(w->process_id)) || size_add(&total, str_space(w->info));
    for (size_t i = 0; i < w->n_chunks && !bad; i++)
        bad = size_add(&total, str_space(w->chunks[i].stream)) ||
              size_add(&total, w->chunks[i].len) || size_add(&total, 1);
    if (bad)
        return NULL;
    struct journal_node *n = malloc(total);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    struct journal_proc_chunk *chunks =
        (struct journal_proc_chunk *)(void *)((char *)n + head);
    char *cursor = (char *)(chunks + w->n_chunks);
    n->is_proc = 1;
    n->p.process_id = put_cstr(&cursor, w->process_id);
    n->p.info = put_cstr(&cursor, w->info);
    n->p.drop_through = w->drop_through;
    n->p.remove = w->remove;
    for (size_t i = 0; i < w->n_chunks; i++) {
        chunks[i] = w->chunks[i];
        chunks[i].stream = put_cstr(&cursor, w->chunks[i].stream);
        chunks[i].data = put_str(&cursor, w->chunks[i].len ? w->chunks[i].data : "",
                                 w->chunks[i].len);
    }
    n->p.chunks = w->n_chunks ? chunks : NULL;
    n->p.n_chunks = w->n_chunks;
    return n;
}

int journal_proc_submit(journal_t *j, const struct journal_proc_write *w, journal_done_fn done,
                        void *arg, struct err *err)
{
    int rc = check_proc(w, err);
    if (rc)
        return rc;
    struct journal_node *n = copy_proc(w);
    if (!n)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    n->done = done;
    n->arg = arg;
    if (j->readonly) {
        free(n);
        return err_set(err, ERR_INVALID, "journal: opened read-only");
    }
    pthread_mutex_lock(&j->q_lock);
    if (j->q_closing) {
        pthread_mutex_unlock(&j->q_lock);
        free(n);
        return err_set(err, ERR_STORAGE, "journal: closing");
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

int journal_proc_append(journal_t *j, const struct journal_proc_write *w, struct err *err)
{
    int rc = check_proc(w, err);
    if (rc)
        return rc;
    struct journal_node *n = copy_proc(w);
    if (!n)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    return journal__run_and_wait(j, n, "", err);
}

int journal_proc_list(journal_reader_t *r, journal_proc_fn fn, void *arg, struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (!r || !fn)
        return err_set(err, ERR_INVALID, "journal: process list without reader or callback");
    int rc = journal__reader_stmt(r, &r->proc_list,
                                  "SELECT process_id, info FROM processes ORDER BY rowid", err);
    if (rc)
        return rc;
    sqlite3_stmt *st = r->proc_list;
    int stopped = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *info = (const char *)sqlite3_column_text(st, 1);
        if (!id || !info) {
            rc = SQLITE_NOMEM;
            break;
        }
        if ((stopped = fn(arg, id, info)) != 0)
            break;
    }
    rc = stmt_release(st, rc);
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sql_fail(err, r->db, rc, "process list");
    return stopped;
}

int journal_proc_read_logs(journal_reader_t *r, const char *process_id, const char *stream,
                           uint64_t after, uint32_t limit, size_t max_bytes,
                           journal_proc_log_fn fn, void *arg, int *has_more, struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (has_more)
        *has_more = 0;
    if (!r || !process_id || !fn)
        return err_set(err, ERR_INVALID, "journal: process logs without reader, id or callback");
    sqlite3_stmt **slot = stream ? &r->proc_logs_stream : &r->proc_logs;
    int rc = journal__reader_stmt(
        r, slot,
        stream ? "SELECT sequence, stream, ts_ms, data FROM process_logs "
                 "WHERE process = ?1 AND sequence > ?2 AND stream IN (?4, 'dropped') "
                 "ORDER BY sequence LIMIT ?3"
               : "SELECT sequence, stream, ts_ms, data FROM process_logs "
                 "WHERE process = ?1 AND sequence > ?2 ORDER BY sequence LIMIT ?3",
        err);
    if (rc)
        return rc;
    sqlite3_stmt *st = *slot;
    /* One row more than asked, to tell "more" from "exactly that many". */
    int64_t lim = limit ? (int64_t)limit + 1 : -1;
    if ((rc = bind_str(st, 1, process_id)) ||
        (rc = sqlite3_bind_int64(st, 2, clamp_i64(after))) ||
        (rc = sqlite3_bind_int64(st, 3, lim)) || (stream && (rc = bind_str(st, 4, stream)))) {
        rc = stmt_release(st, rc);
        return sql_fail(err, r->db, rc, "process logs");
    }
    int stopped = 0;
    uint32_t n = 0;
    size_t bytes = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct journal_proc_chunk c = {
            .sequence = (uint64_t)sqlite3_column_int64(st, 0),
            .stream = (const char *)sqlite3_column_text(st, 1),
            .ts_ms = sqlite3_column_int64(st, 2),
            .data = sqlite3_column_blob(st, 3),
            .len = (size_t)sqlite3_column_bytes(st, 3),
        };
        if (!c.stream || (c.len && !c.data)) {
            rc = SQLITE_NOMEM;
            break;
        }
        if ((limit && n == limit) || (max_bytes && n && bytes + c.len > max_bytes)) {
            if (has_more)
                *has_more = 1;
            break;
        }
        n++;
        bytes += c.len;
        if ((stopped = fn(arg, &c)) != 0)
            break;
    }
    rc = stmt_release(st, rc);
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sql_fail(err, r->db, rc, "process logs");
    return stopped;
}

int journal_proc_tail_after(journal_reader_t *r, const char *process_id, const char *stream,
                            uint64_t n, uint64_t *after, struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (!r || !process_id || !after)
        return err_set(err, ERR_INVALID, "journal: process tail without reader or id");
    *after = 0;
    uint64_t offset = n ? n - 1 : 0; /* n 0: after the newest, nothing of the past */
    sqlite3_stmt **slot = stream ? &r->proc_tail_stream : &r->proc_tail;
    /* The n-th newest chunk's sequence; reading after it less one gives n. */
    int rc = journal__reader_stmt(
        r, slot,
        stream ? "SELECT sequence FROM process_logs WHERE process = ?1 "
                 "AND stream IN (?3, 'dropped') ORDER BY sequence DESC LIMIT 1 OFFSET ?2"
               : "SELECT sequence FROM process_logs WHERE process = ?1 "
                 "ORDER BY sequence DESC LIMIT 1 OFFSET ?2",
        err);
    if (rc)
        return rc;
    sqlite3_stmt *st = *slot;
    if ((rc = bind_str(st, 1, process_id)) ||
        (rc = sqlite3_bind_int64(st, 2, clamp_i64(offset))) ||
        (stream && (rc = bind_str(st, 3, stream)))) {
        rc = stmt_release(st, rc);
        return sql_fail(err, r->db, rc, "process tail");
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 seq = sqlite3_column_int64(st, 0);
        *after = seq > 0 ? (uint64_t)seq - (n ? 1 : 0) : 0;
    }
    rc = stmt_release(st, rc);
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sql_fail(err, r->db, rc, "process tail");
    return 0;
}
