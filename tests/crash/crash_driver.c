/* The crash harness's writer for the journal's own append path: it appends
 * to a journal through journal.h until it is killed (the harness sends
 * SIGKILL at a random moment), and reports every acknowledged batch on
 * stdout as one line
 *     A <session id> <last sequence of the batch>
 * written only after journal_append() returned 0 (or, for the pipelined
 * thread, after journal_submit()'s done callback reported rc 0).  The
 * harness (test_crash.c) then checks that every sequence it was told about
 * is in the database, byte for byte.
 *
 * usage: crash_driver DB_PATH SEED full|normal THREADS
 *
 * Each thread owns one session "drv-<n>" and appends batches of 1 to 16
 * events whose text is a pure function of (session, sequence) (see
 * crash_event_json), so a torn or foreign event cannot go unnoticed.  The
 * last thread keeps up to four batches in flight with journal_submit() so
 * group commits mix synchronous and asynchronous batches.  It stops by itself
 * after CRASH_DRIVER_MAX_MS, so a harness that forgot it leaves no writer
 * behind for long. */
#include "crash_event.h"
#include "journal/journal.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CRASH_DRIVER_MAX_THREADS 8
#define CRASH_DRIVER_MAX_BATCH 16
#define CRASH_DRIVER_MAX_MS 30000
#define CRASH_DRIVER_WINDOW 4

static journal_t *driver_journal;
static pthread_mutex_t driver_out_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t driver_deadline_ms;

static int64_t driver_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One write(2) per line, so lines from several threads never interleave and
 * nothing sits in a stdio buffer when SIGKILL arrives. */
static void driver_ack(const char *sid, uint64_t last)
{
    char line[160];
    int n = snprintf(line, sizeof line, "A %s %llu\n", sid, (unsigned long long)last);
    pthread_mutex_lock(&driver_out_lock);
    for (int off = 0; off < n;) {
        ssize_t w = write(STDOUT_FILENO, line + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            pthread_mutex_unlock(&driver_out_lock);
            _exit(3); /* the harness is gone: nobody to report to */
        }
        off += (int)w;
    }
    pthread_mutex_unlock(&driver_out_lock);
}

/* A batch of `n` events from `first`, built in caller-owned storage. */
struct driver_batch {
    struct journal_event ev[CRASH_DRIVER_MAX_BATCH];
    char *json[CRASH_DRIVER_MAX_BATCH];
    char *raw[CRASH_DRIVER_MAX_BATCH];
    struct journal_batch b;
    struct journal_session_row row;
};

static void driver_batch_free(struct driver_batch *db)
{
    for (size_t i = 0; i < db->b.n_events; i++) {
        free(db->json[i]);
        free(db->raw[i]);
        db->json[i] = db->raw[i] = NULL;
    }
}

static int driver_batch_build(struct driver_batch *db, const char *sid, uint64_t first, size_t n,
                              int create)
{
    memset(db, 0, sizeof *db);
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = first + i;
        size_t len = 0, raw_len = 0;
        db->json[i] = crash_event_json(sid, seq, &len);
        db->raw[i] = crash_event_raw(seq, &raw_len);
        if (!db->json[i]) {
            db->b.n_events = i + 1;
            driver_batch_free(db);
            return -1;
        }
        db->ev[i] = (struct journal_event){
            .sequence = seq, .type = crash_event_type(seq), .json = db->json[i],
            .json_len = len, .raw = db->raw[i], .raw_len = raw_len,
            .turn_end = seq % 5 == 0,
        };
    }
    db->b.session_id = sid;
    db->b.events = db->ev;
    db->b.n_events = n;
    if (create) {
        db->row = (struct journal_session_row){
            .session_id = sid, .agent = "mock", .agent_mode = "build",
            .permission_mode = "default",
        };
        db->b.create = &db->row;
    }
    return 0;
}

struct driver_thread {
    pthread_t thread;
    char sid[32];
    unsigned seed;
    int pipelined;
    /* pipelined thread: acknowledgements arrive on the writer thread */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t acked;
    int in_flight;
    int failed;
};

static void driver_done(void *arg, int rc, const struct err *err)
{
    struct driver_thread *t = arg;
    pthread_mutex_lock(&t->lock);
    if (rc != 0) {
        fprintf(stderr, "crash_driver: %s: async batch failed: %s\n", t->sid,
                err ? err->msg : "?");
        t->failed = 1;
    }
    t->in_flight--;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* Tracks the pipelined thread's acknowledged sequence: batches of one
 * session commit in order, so the last one acknowledged is the watermark. */
struct driver_ticket {
    struct driver_thread *t;
    uint64_t last;
};

static void driver_ticket_done(void *arg, int rc, const struct err *err)
{
    struct driver_ticket *k = arg;
    struct driver_thread *t = k->t;
    if (rc == 0) {
        pthread_mutex_lock(&t->lock);
        if (k->last > t->acked)
            t->acked = k->last;
        pthread_mutex_unlock(&t->lock);
    }
    free(k);
    driver_done(t, rc, err);
}

static void *driver_main(void *arg)
{
    struct driver_thread *t = arg;
    struct err err;
    uint64_t last = journal_last_sequence(driver_journal, t->sid);
    int create = !journal_session_exists(driver_journal, t->sid);
    uint64_t reported = last;
    while (driver_now_ms() < driver_deadline_ms) {
        size_t n = 1 + (size_t)(rand_r(&t->seed) % CRASH_DRIVER_MAX_BATCH);
        struct driver_batch db;
        if (driver_batch_build(&db, t->sid, last + 1, n, create) != 0) {
            fprintf(stderr, "crash_driver: out of memory\n");
            exit(2);
        }
        if (!t->pipelined) {
            int rc = journal_append(driver_journal, &db.b, &err);
            driver_batch_free(&db);
            if (rc != 0) {
                fprintf(stderr, "crash_driver: %s: append failed: %s\n", t->sid, err.msg);
                exit(2);
            }
            last += n;
            create = 0;
            driver_ack(t->sid, last);
            continue;
        }
        struct driver_ticket *k = malloc(sizeof *k);
        if (!k) {
            fprintf(stderr, "crash_driver: out of memory\n");
            exit(2);
        }
        k->t = t;
        k->last = last + n;
        pthread_mutex_lock(&t->lock);
        while (t->in_flight >= CRASH_DRIVER_WINDOW)
            pthread_cond_wait(&t->cond, &t->lock);
        t->in_flight++;
        uint64_t acked = t->acked;
        int failed = t->failed;
        pthread_mutex_unlock(&t->lock);
        if (failed)
            exit(2);
        int rc = journal_submit(driver_journal, &db.b, driver_ticket_done, k, &err);
        driver_batch_free(&db); /* the journal copied it */
        if (rc != 0) {
            fprintf(stderr, "crash_driver: %s: submit failed: %s\n", t->sid, err.msg);
            exit(2);
        }
        last += n;
        create = 0;
        if (acked > reported) {
            driver_ack(t->sid, acked);
            reported = acked;
        }
    }
    if (t->pipelined) {
        pthread_mutex_lock(&t->lock);
        while (t->in_flight > 0)
            pthread_cond_wait(&t->cond, &t->lock);
        uint64_t acked = t->acked;
        pthread_mutex_unlock(&t->lock);
        if (acked > reported)
            driver_ack(t->sid, acked);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: crash_driver DB_PATH SEED full|normal THREADS\n");
        return 2;
    }
    unsigned seed = (unsigned)strtoul(argv[2], NULL, 10);
    enum journal_durability d =
        strcmp(argv[3], "normal") == 0 ? JOURNAL_DURABILITY_NORMAL : JOURNAL_DURABILITY_FULL;
    int n = atoi(argv[4]);
    if (n < 1 || n > CRASH_DRIVER_MAX_THREADS) {
        fprintf(stderr, "crash_driver: THREADS must be 1 to %d\n", CRASH_DRIVER_MAX_THREADS);
        return 2;
    }
    struct err err;
    if (journal_open(argv[1], d, &driver_journal, &err) != 0) {
        fprintf(stderr, "crash_driver: %s\n", err.msg);
        return 2;
    }
    driver_deadline_ms = driver_now_ms() + CRASH_DRIVER_MAX_MS;
    static struct driver_thread threads[CRASH_DRIVER_MAX_THREADS];
    for (int i = 0; i < n; i++) {
        struct driver_thread *t = &threads[i];
        snprintf(t->sid, sizeof t->sid, "drv-%d", i);
        t->seed = seed * 31u + (unsigned)i;
        t->pipelined = n > 1 && i == n - 1;
        pthread_mutex_init(&t->lock, NULL);
        pthread_cond_init(&t->cond, NULL);
        if (pthread_create(&t->thread, NULL, driver_main, t) != 0) {
            fprintf(stderr, "crash_driver: cannot start a thread\n");
            return 2;
        }
    }
    for (int i = 0; i < n; i++)
        pthread_join(threads[i].thread, NULL);
    journal_close(driver_journal);
    return 0;
}
