/* The write path: the submit queue, group commit, the writer thread, and
 * the checks before each COMMIT (see THE SEQUENCE RULE, COMMIT BEFORE
 * VISIBLE and A FILE THAT MOVED in journal_int.h). */
#include "journal/journal_int.h"

#include <stdalign.h>
#include <sys/stat.h>

/* ---- the writer -------------------------------------------------------- */

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
    if (!b->session_id)
        return 0; /* an idempotency record alone: nothing to check */
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

/* Writes a batch's idempotency record. */
static int apply_idem(journal_t *j, const struct journal_idem *d)
{
    sqlite3_stmt *st = j->st_ins_idem;
    int rc;
    if ((rc = bind_str(st, 1, d->key)) || (rc = bind_str(st, 2, d->route)) ||
        (rc = bind_str(st, 3, d->session_id)) ||
        (rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)d->request_hash)) ||
        (rc = sqlite3_bind_int(st, 5, (int)d->status)) ||
        (rc = d->body ? sqlite3_bind_blob64(st, 6, d->body, (sqlite3_uint64)d->body_len,
                                            SQLITE_STATIC)
                      : sqlite3_bind_null(st, 6)) ||
        (rc = sqlite3_bind_int64(st, 7, clamp_i64(d->after))) ||
        (rc = sqlite3_bind_int64(st, 8, (sqlite3_int64)time(NULL))))
        return stmt_release(st, rc);
    return step_write(st);
}

/* Writes one validated batch; SQLITE_OK, the SQLite code, or
 * JOURNAL_ROW_MISSING.  Any failure loses the whole group. */
static int apply_batch(journal_t *j, const struct journal_batch *b, struct journal_mark *m,
                       struct journal_mark **touched)
{
    int rc;
    if (b->idem && (rc = apply_idem(j, b->idem)) != SQLITE_OK)
        return rc;
    if (!b->session_id)
        return SQLITE_OK; /* the record alone */
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
        /* item.started and item.delta repeat an item's text: the index
         * skips them (migrations/0006_search.sql, events_text). */
        if (strcmp(e->type, "item.delta") != 0 && strcmp(e->type, "item.started") != 0)
            j->tent_text_last = sqlite3_last_insert_rowid(j->db);
    }
    if (b->n_events) {
        m->tent_last = b->events[b->n_events - 1].sequence;
        j->tent_events_last = sqlite3_last_insert_rowid(j->db);
    }
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
        (rc = bind_str(up, 5, b->adapter_state)) ||
        (rc = b->n_events ? bind_bytes(up, 6, b->events[b->n_events - 1].json,
                                       b->events[b->n_events - 1].json_len)
                          : sqlite3_bind_null(up, 6)))
        return stmt_release(up, rc);
    if ((rc = step_write(up)))
        return rc;
    /* The map and the table disagree (someone else wrote the file): better
     * to lose this group than to commit events for a missing session row. */
    if (sqlite3_changes(j->db) != 1)
        return JOURNAL_ROW_MISSING;
    return SQLITE_OK;
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
                journal__wake_passed(j, l, m->last);
        }
        m->tent_key = NULL;
    }
    if (committed && j->tent_events_last > atomic_load(&j->events_last))
        atomic_store(&j->events_last, j->tent_events_last);
    if (committed && j->tent_text_last > atomic_load(&j->text_last))
        atomic_store(&j->text_last, j->tent_text_last);
    if (committed)
        atomic_store(&j->idx_stalled, 0); /* the storage takes writes again */
    if (committed && n_ok) {
        j->stats.transactions++;
        j->wake_gen++;
        j->stats.batches += n_ok;
        j->stats.events += n_events;
        if (n_ok > j->stats.max_tx_batches)
            j->stats.max_tx_batches = n_ok;
        journal__wake_any(j, 0);
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

/* 1 if the WAL at its path is not the one the write connection writes
 * (deleted, or another file put there): a commit would go into a file no
 * restart reads.  One stat(2) per group; a failing stat counts as moved,
 * since then nothing says the commit would be found again. */
static int wal_moved(journal_t *j)
{
    struct stat st;
    if (stat(j->wal_path, &st) != 0)
        return 1;
    return st.st_dev != j->wal_dev || st.st_ino != j->wal_ino;
}

/* Opens the write connection again (after a WAL recovery closed it): the
 * database is not created, migrated or loaded, it is the one already open. */
static int writer_conn_reopen(journal_t *j, struct err *err)
{
    int rc = open_conn(j->path, SQLITE_OPEN_READWRITE, &j->db, err);
    if (!rc)
        rc = journal__setup_writer_conn(j, j->durability, err);
    if (!rc)
        rc = journal__prepare_writer(j, err);
    if (!rc)
        rc = journal__wal_note(j, err);
    if (rc)
        journal__writer_conn_close(j);
    return rc;
}

/* The WAL at the path is not ours.  A TRUNCATE checkpoint copies every
 * committed frame from the file SQLite still holds into journal.db (so what
 * was acknowledged before survives a restart) and empties that file; a new
 * write connection then creates a fresh WAL at the path (or takes the one
 * there), and readers reopen (wal_gen).  When another process already did
 * all this (journal__wal_taken_over()), only the reopen is left to do.
 * Fails while a reader holds a snapshot in the old WAL past the busy
 * timeout; the next refused group tries again.  0 or the error. */
static int wal_recover_locked(journal_t *j, struct err *err)
{
    if (j->db && journal__wal_taken_over(j)) {
        if (sqlite3_db_config(j->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) != SQLITE_OK)
            return sql_fail(err, j->db, SQLITE_ERROR, "no checkpoint on close");
        journal__writer_conn_close(j);
    } else if (j->db) {
        int64_t busy = 0;
        int rc = query_int(j->db, "PRAGMA wal_checkpoint(TRUNCATE)", &busy, err, "checkpoint");
        if (rc)
            return rc;
        if (busy)
            return err_set(err, ERR_STORAGE, "journal: readers still use the old WAL");
        journal__writer_conn_close(j);
    }
    int rc = writer_conn_reopen(j, err);
    if (rc)
        return rc;
    atomic_fetch_add(&j->wal_gen, 1);
    return 0;
}

static int wal_recover(journal_t *j, struct err *err)
{
    /* No background checkpoint runs through the old WAL meanwhile, and the
     * checkpointer sees the new one only once it is noted. */
    pthread_mutex_lock(&j->ckpt_run_lock);
    int rc = wal_recover_locked(j, err);
    pthread_mutex_unlock(&j->ckpt_run_lock);
    return rc;
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

/* Deletes the idempotency keys past their time, at most once per
 * min(60 s, ttl), in a transaction of its own after a group: a failure here
 * must not cost a group its commit, and only delays the next prune (lookups
 * ignore expired keys anyway). */
static void prune_idem(journal_t *j)
{
    assert(runs_group(j));
    if (!j->db)
        return;
    int64_t ttl = (int64_t)atomic_load(&j->idem_ttl_s);
    int64_t every = ttl < 60 ? ttl : 60;
    int64_t now = (int64_t)time(NULL);
    if (j->idem_pruned_at && now - j->idem_pruned_at < every)
        return;
    j->idem_pruned_at = now;
    sqlite3_stmt *st = j->st_prune_idem;
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)(now - ttl));
    rc = rc ? stmt_release(st, rc) : step_write(st);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sandbox-journal: journal: pruning idempotency keys: %s\n",
                sqlite3_errstr(rc));
}

void journal_idem_set_ttl(journal_t *j, uint64_t seconds)
{
    atomic_store(&j->idem_ttl_s, seconds ? seconds : 1);
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
    j->tent_events_last = 0;
    j->tent_text_last = 0;

    int rc = SQLITE_OK;
    if (!j->db && wal_recover(j, &sqlerr) != 0)
        rc = JOURNAL_WAL_MOVED;
    if (rc == SQLITE_OK) {
        rc = step_write(j->st_begin);
        if (rc != SQLITE_OK)
            sql_fail(&sqlerr, j->db, rc, "begin");
    }
    for (struct journal_node *n = group; n && rc == SQLITE_OK; n = n->next) {
        if (n->is_proc) {
            rc = journal__apply_proc(j, n);
            if (rc != SQLITE_OK)
                sql_fail(&sqlerr, j->db, rc, "process log");
            else
                n_ok++;
            continue;
        }
        if (n->is_export) {
            rc = journal__apply_export(j, n);
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
        if (n->is_config) {
            rc = journal__apply_config(j, n);
            if (rc != SQLITE_OK)
                sql_fail(&sqlerr, j->db, rc, "workspace config");
            else
                n_ok++;
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
    if (rc == SQLITE_OK && wal_moved(j))
        rc = JOURNAL_WAL_MOVED; /* the message follows the recovery below */
    if (rc == SQLITE_OK) {
        rc = step_write(j->st_commit);
        if (rc != SQLITE_OK)
            sql_fail(&sqlerr, j->db, rc, "commit");
    }
    /* A statement that failed reading through a WAL the WAL index no longer
     * describes (another process recovered from the deletion first) fails
     * because of the WAL: recover from that, not report an I/O error. */
    if (rc != SQLITE_OK && rc != JOURNAL_WAL_MOVED && rc != JOURNAL_FILE_MOVED && j->db &&
        wal_moved(j))
        rc = JOURNAL_WAL_MOVED;
    if (rc != SQLITE_OK) {
        if (j->db && !sqlite3_get_autocommit(j->db)) {
            int r = step_write(j->st_rollback);
            if (r != SQLITE_OK) {
                char first[sizeof sqlerr.msg];
                snprintf(first, sizeof first, "%s", sqlerr.msg);
                err_set(&sqlerr, ERR_STORAGE, "%s (and rollback failed: %s)", first,
                        sqlite3_errmsg(j->db));
            }
        }
        if (rc == JOURNAL_WAL_MOVED && j->db) {
            struct err why;
            err_clear(&why);
            if (wal_recover(j, &why) == 0)
                err_set(&sqlerr, ERR_STORAGE,
                        "journal: the WAL %s was deleted or replaced; nothing of this write "
                        "was stored, the journal now has a new WAL and takes writes again",
                        j->wal_path);
            else
                err_set(&sqlerr, ERR_STORAGE,
                        "journal: the WAL %s was deleted or replaced; nothing is written "
                        "until a new one can be made (%s)",
                        j->wal_path, why.msg);
        } else if (rc == JOURNAL_WAL_MOVED) {
            char why[sizeof sqlerr.msg];
            snprintf(why, sizeof why, "%s", sqlerr.msg);
            err_set(&sqlerr, ERR_STORAGE,
                    "journal: the WAL %s was deleted or replaced; nothing is written until "
                    "a new one can be made (%s)",
                    j->wal_path, why);
        }
        j->lost_err = sqlerr;
        for (struct journal_node *n = group; n; n = n->next) {
            if (n->rc)
                continue; /* failed validation on its own, before any SQL */
            n->rc = sqlerr.code;
            n->err = sqlerr;
            snprintf(n->err.subject, sizeof n->err.subject, "%s",
                     n->is_export || n->is_proc || !n->b.session_id ? "" : n->b.session_id);
            if (!n->is_export && !n->is_proc && n->b.n_events && !n->b.create)
                note_refused(j, &n->b);
        }
        finish_group(j, group, 0, touched, 0);
        return;
    }
    finish_group(j, group, n_ok, touched, 1);
    prune_idem(j);
    journal__ckpt_inline(j);
}

/* A group took `group`'s nodes off the queue: their bytes leave the
 * submit limit.  q_lock held. */
static void give_room(journal_t *j, const struct journal_node *group)
{
    size_t freed = 0;
    for (const struct journal_node *n = group; n; n = n->next)
        freed += n->async_bytes;
    if (!freed)
        return;
    j->q_async_bytes -= freed;
    pthread_cond_broadcast(&j->q_room);
}

void *journal__writer_main(void *arg)
{
    journal_t *j = arg;
    int index_turn = 0; /* a group ran since the last index step */
    for (;;) {
        pthread_mutex_lock(&j->q_lock);
        /* An appender committing its own batch holds the write connection:
         * wait for it, also before exiting, so that close finds it free.
         * Queued batches go first, except that while the index lags a step
         * runs between two groups, so sustained appends cannot starve it;
         * closing stops the index at once (journal_index.c). */
        int index;
        for (;;) {
            int due = !j->q_closing && journal__index_due(j, 0);
            if (!j->q_busy && j->q_head && !(due && index_turn)) {
                index = 0;
                break;
            }
            if (!j->q_busy && due) {
                index = 1;
                break;
            }
            if (!j->q_busy && j->q_closing && !j->q_head) {
                pthread_mutex_unlock(&j->q_lock);
                return NULL; /* closing and drained */
            }
            if (!j->q_busy && !j->q_closing && journal__index_due(j, 1)) {
                /* Only a little is behind: index it if nothing comes for a
                 * moment (a timeout with the queue still empty). */
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += JOURNAL_INDEX_IDLE_MS * 1000000L;
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                if (pthread_cond_timedwait(&j->q_cond, &j->q_lock, &until) == ETIMEDOUT &&
                    !j->q_busy && !j->q_head && !j->q_closing && journal__index_due(j, 1)) {
                    index = 1;
                    break;
                }
                continue;
            }
            pthread_cond_wait(&j->q_cond, &j->q_lock);
        }
        j->q_busy = 1;
        j->group_runner = pthread_self();
        if (index) {
            pthread_mutex_unlock(&j->q_lock);
            journal__index_step(j);
            index_turn = 0;
            pthread_mutex_lock(&j->q_lock);
            j->q_busy = 0;
            pthread_mutex_unlock(&j->q_lock);
            continue;
        }
        struct journal_node *group = j->q_head, *tail = group;
        /* A process's chunks count as events: up to 64 KiB each, they
         * bound a group's transaction the same way. */
        size_t events = group->b.n_events + group->p.n_chunks;
        while (tail->next &&
               events + tail->next->b.n_events + tail->next->p.n_chunks <=
                   JOURNAL_GROUP_EVENTS) {
            tail = tail->next;
            events += tail->b.n_events + tail->p.n_chunks;
        }
        j->q_head = tail->next;
        if (!j->q_head)
            j->q_tail = NULL;
        tail->next = NULL;
        give_room(j, group);
        pthread_mutex_unlock(&j->q_lock);
        run_group(j, group);
        index_turn = 1;
        pthread_mutex_lock(&j->q_lock);
        j->q_busy = 0;
        pthread_mutex_unlock(&j->q_lock);
    }
}

/* ---- submitting -------------------------------------------------------- */

static int check_idem(const struct journal_idem *d, struct err *err)
{
    if (!d->key || !*d->key || !d->route || d->status < 100 || d->status > 599)
        return err_set(err, ERR_INVALID, "journal: idempotency record without key, route or "
                                         "status");
    return 0;
}

static int check_batch(const struct journal_batch *b, struct err *err)
{
    if (b && !b->session_id && b->idem && !b->create && !b->n_events && !b->n_aliases &&
        !b->native_session_id && !b->mark_ended && !b->adapter_state)
        return check_idem(b->idem, err); /* the record alone */
    if (!b || !b->session_id || !*b->session_id)
        return err_set(err, ERR_INVALID, "journal: batch without a session id");
    if (b->idem && check_idem(b->idem, err))
        return ERR_INVALID;
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

/* Copies `b` into one allocation: node, event array, alias array, then
 * every string.  `*size` (may be NULL) gets the allocation's size. */
static struct journal_node *copy_batch(const struct journal_batch *b, size_t *size)
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
    if (b->idem)
        bad = bad || size_add(&total, str_space(b->idem->key)) ||
              size_add(&total, str_space(b->idem->route)) ||
              size_add(&total, str_space(b->idem->session_id)) ||
              (b->idem->body && (size_add(&total, b->idem->body_len) ||
                                 size_add(&total, 1)));
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
    if (size)
        *size = total;
    memset(n, 0, sizeof *n);
    struct journal_event *events = (struct journal_event *)(void *)((char *)n + head);
    struct journal_alias *aliases = (struct journal_alias *)(void *)((char *)n + alias_at);
    char *cursor = (char *)aliases + b->n_aliases * sizeof *aliases;

    n->b.session_id = put_cstr(&cursor, b->session_id);
    n->b.native_session_id = put_cstr(&cursor, b->native_session_id);
    n->b.adapter_state = put_cstr(&cursor, b->adapter_state);
    n->b.mark_ended = b->mark_ended;
    if (b->idem) {
        n->idem = *b->idem;
        n->idem.key = put_cstr(&cursor, b->idem->key);
        n->idem.route = put_cstr(&cursor, b->idem->route);
        n->idem.session_id = put_cstr(&cursor, b->idem->session_id);
        n->idem.body = put_str(&cursor, b->idem->body, b->idem->body_len);
        n->idem.body_len = b->idem->body ? b->idem->body_len : 0;
        n->b.idem = &n->idem;
    }
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

/* BACKPRESSURE.  A journal_append() caller waits for its commit, so those
 * queue at most one batch per thread.  journal_submit() callers do not
 * wait: an agent printing faster than the disk commits would otherwise grow
 * the queue, and the memory behind it, without end.  So submitted batches
 * count their bytes until a group takes them, and a submitter that finds
 * the count at the limit waits until the writer has taken some. */
static void wait_for_room(journal_t *j, size_t bytes)
{
    if (j->writer_started && pthread_equal(pthread_self(), j->writer))
        return; /* the writer empties the queue: it must not wait on it */
    while (!j->q_closing && j->q_async_bytes > 0 &&
           j->q_async_bytes + bytes > j->q_async_limit)
        pthread_cond_wait(&j->q_room, &j->q_lock);
}

/* Hands `n` (takes ownership) to the writer, counting n->async_bytes
 * against the limit (after waiting for room).  `subject` names it in
 * errors. */
static int enqueue(journal_t *j, struct journal_node *n, const char *subject, struct err *err)
{
    if (j->readonly) {
        free(n);
        return err_set_subject(err, ERR_INVALID, subject, "journal: opened read-only");
    }
    pthread_mutex_lock(&j->q_lock);
    if (n->async_bytes)
        wait_for_room(j, n->async_bytes);
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
    j->q_async_bytes += n->async_bytes;
    pthread_cond_signal(&j->q_cond);
    pthread_mutex_unlock(&j->q_lock);
    return 0;
}

void journal_set_async_limit(journal_t *j, size_t bytes)
{
    pthread_mutex_lock(&j->q_lock);
    j->q_async_limit = bytes;
    pthread_cond_broadcast(&j->q_room);
    pthread_mutex_unlock(&j->q_lock);
}

int journal_submit(journal_t *j, const struct journal_batch *b, journal_done_fn done,
                   void *arg, struct err *err)
{
    int rc = check_batch(b, err);
    if (rc)
        return rc;
    const char *subject = b->session_id ? b->session_id : "";
    size_t bytes = 0;
    struct journal_node *n = copy_batch(b, &bytes);
    if (!n)
        return err_set_subject(err, ERR_NOMEM, subject, "journal: out of memory");
    n->done = done;
    n->arg = arg;
    n->async_bytes = bytes;
    return enqueue(j, n, subject, err);
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
int journal__run_and_wait(journal_t *j, struct journal_node *n, const char *subject,
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
    const char *subject = b->session_id ? b->session_id : "";
    struct journal_node *n = copy_batch(b, NULL);
    if (!n)
        return err_set_subject(err, ERR_NOMEM, subject, "journal: out of memory");
    return journal__run_and_wait(j, n, subject, err);
}

