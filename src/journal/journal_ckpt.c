/* Checkpoints, moved out of the COMMIT.
 *
 * SQLite's own auto-checkpoint runs inside the COMMIT that takes the WAL
 * past 1,000 frames: that group's acknowledgement, and every group queued
 * behind it, waits for the copy of the WAL into journal.db and for its two
 * fsyncs (before and after the copy, at both durabilities).  So the write
 * connection's WAL hook only notes the WAL's length, and the checkpoints
 * run elsewhere, by durability (measured in docs/benchmarks.md, issue 19):
 *
 * NORMAL.  The checkpoints' fsyncs are the only ones the writer would wait
 * for, and they cost it a third of its throughput.  A thread of its own, on
 * a connection of its own, runs a PASSIVE checkpoint each time
 * JOURNAL_CKPT_FRAMES frames have not been copied yet, while the writer
 * goes on committing.
 *
 * FULL.  Every commit fsyncs the WAL already; a checkpoint's fsyncs of
 * journal.db running beside them slowed the commits down (the disk serves
 * one flush at a time), and so did many small checkpoints.  The thread that
 * committed checkpoints itself once the WAL passes JOURNAL_CKPT_INLINE_FRAMES,
 * after its group was acknowledged: fewer, larger copies (a page written by
 * many commits is copied once), none inside a COMMIT.
 *
 * BOUNDED WAL.  SQLite rewinds the WAL only at a write that starts when
 * every frame has been copied.  A background checkpoint rarely finishes
 * between two commits under sustained appends, so at NORMAL the same inline
 * checkpoint past JOURNAL_CKPT_INLINE_FRAMES bounds the WAL: what is left to
 * copy is what the background missed, and no commit lands meanwhile, so the
 * next write rewinds the WAL.
 *
 * THE WAL AT THE PATH (see A FILE THAT MOVED in journal_int.h).  A
 * checkpoint through a WAL another process replaced would copy stale pages
 * over its newer ones.  ckpt_run_lock is held through every checkpoint and
 * through the writer's WAL recovery (which notes the new WAL), and a
 * background checkpoint runs only while the file at the WAL's path is the
 * one the writer noted; after a recovery (wal_gen moved) the thread opens
 * its connection again.
 *
 * Lock order: ckpt_run_lock, then SQLite's own locks; ckpt_lock alone (the
 * WAL hook takes it inside COMMIT, holding nothing of ours). */
#include "journal/journal_int.h"

#include <sys/stat.h>

/* The frames not yet copied that wake the checkpointer (NORMAL): SQLite's
 * default for the WAL's length. */
#define JOURNAL_CKPT_FRAMES 1000
/* ... and past which the committer checkpoints once itself (about 40 MiB). */
#define JOURNAL_CKPT_INLINE_FRAMES 10000

/* The write connection's WAL hook, after each commit, inside it. */
static int ckpt_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;   /* the write connection, which the committer holds */
    (void)name; /* always "main": the journal attaches nothing */
    journal_t *j = arg;
    if (frames >= JOURNAL_CKPT_INLINE_FRAMES)
        j->ckpt_inline = 1;
    /* Waking it at every commit past the mark made it checkpoint a handful
     * of frames, with two fsyncs, hundreds of times a second: it waits for
     * JOURNAL_CKPT_FRAMES frames not copied yet.  A WAL shorter than what
     * was copied has been rewound: all of it is new. */
    int copied = atomic_load(&j->ckpt_copied);
    int behind = frames >= copied ? frames - copied : frames;
    if (behind >= JOURNAL_CKPT_FRAMES && j->ckpt_started) {
        pthread_mutex_lock(&j->ckpt_lock);
        if (!j->ckpt_due) {
            j->ckpt_due = 1;
            pthread_cond_signal(&j->ckpt_cond);
        }
        pthread_mutex_unlock(&j->ckpt_lock);
    }
    return SQLITE_OK;
}

void journal__ckpt_hook_install(journal_t *j)
{
    /* Replaces the auto-checkpoint, which is itself a WAL hook.  It returns
     * the previous hook's argument, nothing to check. */
    sqlite3_wal_hook(j->db, ckpt_hook, j);
}

void journal__ckpt_inline(journal_t *j)
{
    assert(runs_group(j));
    if (!j->ckpt_inline || !j->db)
        return;
    j->ckpt_inline = 0;
    pthread_mutex_lock(&j->ckpt_run_lock);
    int rc = sqlite3_wal_checkpoint_v2(j->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    pthread_mutex_unlock(&j->ckpt_run_lock);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        fprintf(stderr, "journal: checkpoint of %s: %s\n", j->path, sqlite3_errmsg(j->db));
    else if (rc == SQLITE_OK)
        atomic_fetch_add(&j->ckpt_count, 1);
}

/* 1 if the file at the WAL's path is the one the writer noted.  Under
 * ckpt_run_lock, which the writer holds while it notes a new one. */
static int ckpt_wal_ours(const journal_t *j)
{
    struct stat st;
    return stat(j->wal_path, &st) == 0 && st.st_dev == j->wal_dev && st.st_ino == j->wal_ino;
}

/* The checkpointer's connection: no checkpoint of its own at close (the
 * writer's close does the last one), and the writer's durability, which
 * decides the checkpoint's fsyncs. */
static int ckpt_open(journal_t *j, sqlite3 **out, struct err *err)
{
    sqlite3 *db = NULL;
    int rc = open_conn(j->path, SQLITE_OPEN_READWRITE, &db, err);
    if (rc)
        return rc;
    const char *sync = j->durability == JOURNAL_DURABILITY_NORMAL ? "PRAGMA synchronous=NORMAL"
                                                                  : "PRAGMA synchronous=FULL";
    if (sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) != SQLITE_OK)
        rc = sql_fail(err, db, SQLITE_ERROR, "no checkpoint on close");
    else
        rc = exec_sql(db, sync, err, "synchronous");
    if (rc) {
        close_db(db, j->path);
        return rc;
    }
    *out = db;
    return 0;
}

/* One background checkpoint, ckpt_run_lock held.  Reports a failure once
 * until a checkpoint succeeds again, so a full disk does not flood the log. */
static void ckpt_run(journal_t *j, sqlite3 **db, unsigned *gen, int *failing)
{
    struct err err;
    err_clear(&err);
    unsigned now = atomic_load(&j->wal_gen);
    if (*db && *gen != now) {
        close_db(*db, j->path);
        *db = NULL;
    }
    if (!ckpt_wal_ours(j))
        return; /* the writer recovers at its next group, then wakes us again */
    if (!*db) {
        if (ckpt_open(j, db, &err) != 0) {
            if (!*failing)
                fprintf(stderr, "%s\n", err.msg);
            *failing = 1;
            return;
        }
        *gen = now;
    }
    int copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(*db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, &copied);
    if (rc == SQLITE_OK) {
        atomic_store(&j->ckpt_copied, copied);
        atomic_fetch_add(&j->ckpt_count, 1);
        *failing = 0;
    } else if (rc != SQLITE_BUSY) {
        if (!*failing)
            fprintf(stderr, "journal: checkpoint of %s: %s\n", j->path, sqlite3_errmsg(*db));
        *failing = 1;
    }
}

static void *ckpt_main(void *arg)
{
    journal_t *j = arg;
    sqlite3 *db = NULL;
    unsigned gen = 0;
    int failing = 0;
    for (;;) {
        pthread_mutex_lock(&j->ckpt_lock);
        while (!j->ckpt_due && !j->ckpt_stop)
            pthread_cond_wait(&j->ckpt_cond, &j->ckpt_lock);
        int stop = j->ckpt_stop;
        j->ckpt_due = 0;
        pthread_mutex_unlock(&j->ckpt_lock);
        if (stop)
            break;
        pthread_mutex_lock(&j->ckpt_run_lock);
        ckpt_run(j, &db, &gen, &failing);
        pthread_mutex_unlock(&j->ckpt_run_lock);
    }
    close_db(db, j->path);
    return NULL;
}

int journal__ckpt_init(journal_t *j, struct err *err)
{
    if (pthread_mutex_init(&j->ckpt_lock, NULL) != 0)
        return err_set(err, ERR_NOMEM, "journal: cannot create a mutex");
    if (pthread_cond_init(&j->ckpt_cond, NULL) != 0) {
        pthread_mutex_destroy(&j->ckpt_lock);
        return err_set(err, ERR_NOMEM, "journal: cannot create a condition variable");
    }
    if (pthread_mutex_init(&j->ckpt_run_lock, NULL) != 0) {
        pthread_cond_destroy(&j->ckpt_cond);
        pthread_mutex_destroy(&j->ckpt_lock);
        return err_set(err, ERR_NOMEM, "journal: cannot create a mutex");
    }
    j->ckpt_lock_ok = 1;
    return 0;
}

int journal__ckpt_start(journal_t *j, struct err *err)
{
    if (j->durability != JOURNAL_DURABILITY_NORMAL)
        return 0; /* FULL checkpoints inline only (see the top) */
    int rc = pthread_create(&j->ckpt_thread, NULL, ckpt_main, j);
    if (rc != 0)
        return err_set(err, ERR_INTERNAL, "journal: cannot start the checkpointer: %s",
                       strerror(rc));
    j->ckpt_started = 1;
    return 0;
}

void journal__ckpt_stop(journal_t *j)
{
    if (!j->ckpt_started)
        return;
    pthread_mutex_lock(&j->ckpt_lock);
    j->ckpt_stop = 1;
    pthread_cond_signal(&j->ckpt_cond);
    pthread_mutex_unlock(&j->ckpt_lock);
    int rc = pthread_join(j->ckpt_thread, NULL);
    if (rc != 0)
        fprintf(stderr, "journal: joining the checkpointer: %s\n", strerror(rc));
    j->ckpt_started = 0;
}

void journal__ckpt_destroy(journal_t *j)
{
    if (!j->ckpt_lock_ok)
        return;
    pthread_mutex_destroy(&j->ckpt_run_lock);
    pthread_cond_destroy(&j->ckpt_cond);
    pthread_mutex_destroy(&j->ckpt_lock);
    j->ckpt_lock_ok = 0;
}
