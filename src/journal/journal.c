/* Opening, migrating and closing the journal, and the write connection's
 * setup (see journal_int.h for the design). */
#include "journal/journal_int.h"

#include "journal/migrations.h"

#include <errno.h>
#include <sys/stat.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* ---- opening and migrating --------------------------------------------- */

/* Switches the write connection to WAL, which readers depend on to read
 * without blocking the writer; a database that cannot be WAL (in-memory,
 * some network filesystems) is refused rather than served with locking. */
int journal__setup_writer_conn(journal_t *j, enum journal_durability durability,
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
    journal__ckpt_hook_install(j);
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

int journal__prepare_writer(journal_t *j, struct err *err)
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
                      "ended = CASE WHEN ?4 < 0 THEN 0 ELSE max(ended, ?4) END, adapter_state = coalesce(?5, adapter_state), "
                      /* ?6: the batch's last event, whose time is the session's
                       * last activity (migrations/0006_search.sql) */
                      "updated_at = coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', "
                      "json_extract(?6, '$.time')), updated_at) "
                      "WHERE id = ?1",
                      &j->st_upd_session, err)) ||
        (rc = prepare(j->db,
                      "INSERT INTO item_aliases(session, native_id, item_id) "
                      "VALUES(?1, ?2, ?3) ON CONFLICT(session, native_id) DO NOTHING",
                      &j->st_ins_alias, err)) ||
        /* OR REPLACE: a key still stored after its time (lookups ignore it,
         * the prune has not run yet) is taken by the new request. */
        (rc = prepare(j->db,
                      "INSERT OR REPLACE INTO idempotency_keys(key, route, session_id, "
                      "request_hash, status, body, after, created) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                      &j->st_ins_idem, err)) ||
        (rc = prepare(j->db, "DELETE FROM idempotency_keys WHERE created < ?1",
                      &j->st_prune_idem, err)) ||
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
                      &j->st_x_mark, err)) ||
        (rc = journal__index_prepare(j, err)) ||
        (rc = prepare(j->db,
                      "INSERT INTO processes(process_id, info) VALUES(?1, ?2) "
                      "ON CONFLICT(process_id) DO UPDATE SET info = excluded.info",
                      &j->st_p_info, err)) ||
        (rc = prepare(j->db, "DELETE FROM process_logs WHERE process = ?1 AND sequence <= ?2",
                      &j->st_p_drop, err)) ||
        (rc = prepare(j->db,
                      "INSERT INTO process_logs(process, sequence, stream, ts_ms, data) "
                      "VALUES(?1, ?2, ?3, ?4, ?5)",
                      &j->st_p_chunk, err)) ||
        (rc = prepare(j->db, "DELETE FROM process_logs WHERE process = ?1",
                      &j->st_p_rm_logs, err)) ||
        (rc = prepare(j->db, "DELETE FROM processes WHERE process_id = ?1", &j->st_p_rm,
                      err)))
        return rc;
    return 0;
}

/* Notes which file the write connection's WAL is, for wal_moved().  The
 * WAL exists once journal_mode=WAL ran on a database that has been written
 * (migrations write a new one), and SQLite keeps it open, at that inode,
 * until the connection closes. */
int journal__wal_note(journal_t *j, struct err *err)
{
    struct stat st;
    if (stat(j->wal_path, &st) != 0)
        return err_set(err, ERR_STORAGE, "journal: cannot find the WAL %s: %s", j->wal_path,
                       strerror(errno));
    j->wal_dev = st.st_dev;
    j->wal_ino = st.st_ino;
    return 0;
}

/* Reads the first `n` bytes of `path`; 1 if there were that many. */
static int read_prefix(const char *path, unsigned char *out, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t got = fread(out, 1, n, f);
    if (fclose(f) != 0)
        return 0;
    return got == n;
}

int journal__wal_taken_over(const journal_t *j)
{
    /* The salts: bytes 16..23 of a WAL header, copied as they are to bytes
     * 32..39 of the WAL-index header (sqlite.org/fileformat2.html#walformat,
     * sqlite.org/walformat.html). */
    struct stat st;
    if (stat(j->wal_path, &st) == 0 && st.st_dev == j->wal_dev && st.st_ino == j->wal_ino)
        return 0; /* ours */
    size_t len = strlen(j->path);
    char *shm_path = malloc(len + sizeof "-shm");
    if (!shm_path)
        return 0;
    snprintf(shm_path, len + sizeof "-shm", "%s-shm", j->path);
    unsigned char wal[24], shm[40];
    int taken = read_prefix(j->wal_path, wal, sizeof wal) &&
                read_prefix(shm_path, shm, sizeof shm) && memcmp(wal + 16, shm + 32, 8) == 0;
    free(shm_path);
    return taken;
}

/* Finalizes the write connection's statements and closes it. */
void journal__writer_conn_close(journal_t *j)
{
    finalize_cached(&j->st_begin);
    finalize_cached(&j->st_commit);
    finalize_cached(&j->st_rollback);
    finalize_cached(&j->st_ins_session);
    finalize_cached(&j->st_ins_event);
    finalize_cached(&j->st_upd_session);
    finalize_cached(&j->st_ins_alias);
    finalize_cached(&j->st_ins_idem);
    finalize_cached(&j->st_prune_idem);
    finalize_cached(&j->st_x_session_id);
    finalize_cached(&j->st_x_target);
    finalize_cached(&j->st_x_target_id);
    finalize_cached(&j->st_x_reset);
    finalize_cached(&j->st_x_mark);
    journal__index_finalize(j);
    finalize_cached(&j->st_p_info);
    finalize_cached(&j->st_p_drop);
    finalize_cached(&j->st_p_chunk);
    finalize_cached(&j->st_p_rm_logs);
    finalize_cached(&j->st_p_rm);
    close_db(j->db, j->path);
    j->db = NULL;
}

/* ---- open and close ---------------------------------------------------- */

static void free_mark(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
}

/* Releases whatever part of `j` exists; the writer must be stopped. */
static void journal_destroy(journal_t *j)
{
    journal__ckpt_stop(j);
    journal__close_readers(j);
    journal__writer_conn_close(j);
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
    if (j->q_room_ok)
        pthread_cond_destroy(&j->q_room);
    if (j->q_lock_ok)
        pthread_mutex_destroy(&j->q_lock);
    journal__ckpt_destroy(j);
    free(j->path);
    free(j->wal_path);
    free(j->read_name);
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
    if (pthread_cond_init(&j->q_room, NULL) != 0)
        return err_set(err, ERR_NOMEM, "journal: cannot create a condition variable");
    j->q_room_ok = 1;
    j->q_async_limit = JOURNAL_ASYNC_QUEUE_BYTES;
    if (pthread_mutex_init(&j->watch_lock, NULL) != 0)
        return err_set(err, ERR_NOMEM, "journal: cannot create a mutex");
    j->watch_lock_ok = 1;
    if (pthread_mutex_init(&j->readers_lock, NULL) != 0)
        return err_set(err, ERR_NOMEM, "journal: cannot create a mutex");
    j->readers_lock_ok = 1;
    if (pthread_key_create(&j->reader_key, NULL) != 0)
        return err_set(err, ERR_NOMEM, "journal: cannot create a thread key");
    j->reader_key_ok = 1;
    return journal__ckpt_init(j, err);
}

int journal_open(const char *path, enum journal_durability durability, journal_t **out,
                 struct err *err)
{
    if (!path || !*path || !out)
        return err_set(err, ERR_INVALID, "journal: no database path given");
    *out = NULL;
    if (!sqlite3_threadsafe())
        return err_set(err, ERR_STORAGE, "journal: SQLite was built without thread support");
#ifdef __GLIBC__
    /* Each FTS5 insert (journal_index.c) frees a block big
     * enough that glibc, at its default 128 KiB trim threshold, gives the
     * heap's top back to the kernel and faults it in again at the next
     * insert: measured 15x slower appends of indexed events (bench/search.sh).
     * Keeping up to 64 MiB of free heap costs nothing but that memory.
     * Its failure (ASan's allocator ignores it) costs only that speed, and
     * says nothing worth an operator's attention, so it is not reported. */
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
    journal_t *j = calloc(1, sizeof *j);
    if (!j)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    int rc = 0;
    j->durability = durability;
    atomic_init(&j->idem_ttl_s, JOURNAL_IDEM_TTL_DEFAULT_S);
    j->path = strdup(path);
    size_t wal_size = strlen(path) + sizeof "-wal";
    j->wal_path = malloc(wal_size);
    if (j->wal_path)
        snprintf(j->wal_path, wal_size, "%s-wal", path);
    j->marks = hmap_new();
    j->waits = hmap_new();
    if (!j->path || !j->wal_path || !j->marks || !j->waits)
        rc = err_set(err, ERR_NOMEM, "journal: out of memory");
    if (!rc)
        rc = init_sync(j, err);
    if (!rc)
        rc = open_conn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &j->db, err);
    if (!rc)
        rc = journal__setup_writer_conn(j, durability, err);
    if (!rc)
        rc = run_migrations(j, err);
    if (!rc)
        rc = load_marks(j, err);
    if (!rc)
        rc = journal__index_load(j, err);
    if (!rc)
        rc = journal__prepare_writer(j, err);
    if (!rc)
        rc = journal__wal_note(j, err);
    if (!rc)
        rc = journal__ckpt_start(j, err);
    if (!rc) {
        int prc = pthread_create(&j->writer, NULL, journal__writer_main, j);
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

/* new: "file:<path>?immutable=1", the path escaped for a URI; NULL when
 * memory ran out. */
static char *immutable_uri(const char *path)
{
    static const char tail[] = "?immutable=1";
    size_t len = strlen(path);
    if (len > (SIZE_MAX - sizeof "file:" - sizeof tail) / 3)
        return NULL;
    char *uri = malloc(sizeof "file:" - 1 + len * 3 + sizeof tail);
    if (!uri)
        return NULL;
    char *p = uri;
    memcpy(p, "file:", 5);
    p += 5;
    for (const char *c = path; *c; c++) {
        if (*c == '%' || *c == '?' || *c == '#') {
            p += sprintf(p, "%%%02X", (unsigned)(unsigned char)*c);
        } else {
            *p++ = *c;
        }
    }
    memcpy(p, tail, sizeof tail);
    return uri;
}

/* 1 if a read-only connection failed because it may not create or write
 * the WAL index (-shm): a read-only mount, or another user's directory. */
static int needs_immutable(sqlite3 *db)
{
    int code = sqlite3_errcode(db) & 0xff;
    return code == SQLITE_CANTOPEN || code == SQLITE_READONLY;
}

/* Reads PRAGMA user_version on a read-only connection, falling back to an
 * immutable open (no WAL index, no locks: the database file alone) when the
 * WAL index cannot be used; later reader connections open the same way. */
static int readonly_version(journal_t *j, int64_t *version, struct err *err)
{
    int rc = open_conn(j->path, SQLITE_OPEN_READONLY, &j->db, err);
    if (rc)
        return rc;
    struct err first;
    err_clear(&first);
    rc = query_int(j->db, "PRAGMA user_version", version, &first, "user_version");
    if (!rc)
        return 0;
    if (!needs_immutable(j->db)) {
        if (err)
            *err = first;
        return rc;
    }
    close_db(j->db, j->path);
    j->db = NULL;
    j->read_name = immutable_uri(j->path);
    if (!j->read_name)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    j->read_flags = SQLITE_OPEN_URI;
    rc = open_conn(j->read_name, SQLITE_OPEN_READONLY | j->read_flags, &j->db, err);
    if (!rc)
        rc = query_int(j->db, "PRAGMA user_version", version, err, "user_version");
    if (rc && err) /* the first failure says what is wrong with the file */
        *err = first;
    return rc;
}

int journal_is_immutable(const journal_t *j)
{
    return j->read_name != NULL;
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
    int64_t version = 0;
    if (!rc)
        rc = readonly_version(j, &version, err);
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
        journal__close_readers(j);
        pthread_mutex_unlock(&j->readers_lock);
        journal_destroy(j);
        return;
    }
    pthread_mutex_lock(&j->q_lock);
    j->q_closing = 1;
    pthread_cond_signal(&j->q_cond);
    pthread_cond_broadcast(&j->q_room); /* waiting submitters fail now */
    pthread_mutex_unlock(&j->q_lock);
    if (j->writer_started) {
        int rc = pthread_join(j->writer, NULL);
        if (rc != 0)
            fprintf(stderr, "journal: joining the writer: %s\n", strerror(rc));
    }
    journal__ckpt_stop(j); /* the checkpoint below is the last, and the writer's */
    journal_wake_all(j, 1);

    /* Readers go first: an idle reader does not block a TRUNCATE checkpoint,
     * but closing them leaves the writer the last connection for certain. */
    pthread_mutex_lock(&j->readers_lock);
    journal__close_readers(j);
    pthread_mutex_unlock(&j->readers_lock);

    int64_t busy = 0;
    struct err e;
    err_clear(&e);
    if (!j->db) {
        fprintf(stderr, "journal: %s closes without its write connection (lost to a "
                        "WAL that could not be replaced)\n", j->path);
    } else if (journal__wal_taken_over(j)) {
        /* Another process made the file at the WAL's path its WAL: the WAL
         * index describes that file, so neither a checkpoint through ours
         * nor the one sqlite3_close() may run would copy the right pages. */
        fprintf(stderr, "journal: the WAL of %s was replaced by another process's; closing "
                        "without a checkpoint\n", j->path);
        if (sqlite3_db_config(j->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) != SQLITE_OK)
            fprintf(stderr, "journal: %s\n", sqlite3_errmsg(j->db));
    } else if (query_int(j->db, "PRAGMA wal_checkpoint(TRUNCATE)", &busy, &e, "checkpoint") != 0)
        fprintf(stderr, "%s\n", e.msg);
    else if (busy)
        fprintf(stderr, "journal: checkpoint of %s could not complete (busy)\n", j->path);
    journal_destroy(j);
}

int journal_schema_version(const journal_t *j)
{
    return j->schema_version;
}

