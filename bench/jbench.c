/* The in-process side of bench/run.sh (docs/benchmarks.md): what the journal
 * can do without HTTP, and the raw SQLite ceiling under it.
 *
 *   jbench journal --db F --durability full|normal --batch B --threads T --seconds S
 *       T threads, one session each, each calling journal_append() with B
 *       events per batch, back to back: events/s through the journal.
 *   jbench sqlite --db F --durability full|normal --batch B --seconds S
 *       The same rows INSERTed straight into the journal's own schema, B
 *       per transaction, one connection: the ceiling for a batch of B.
 *   jbench gen --db F --sessions N --events E
 *       Builds a journal of N sessions of E events each, fast (durability
 *       normal, batches of E submitted without waiting): the big journals
 *       of the read and restart workloads.
 *
 * Events are ~400 bytes of JSON shaped like the server's item.delta events.
 * Prints one line of key=value pairs. */
#include "journal/journal.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JBENCH_EVENT_BYTES 400
#define JBENCH_MAX_THREADS 256

static const char *jbench_db;
static enum journal_durability jbench_durability = JOURNAL_DURABILITY_FULL;
static int jbench_batch = 1, jbench_threads = 1, jbench_seconds = 5;
static long jbench_sessions = 10, jbench_events = 1000;

static atomic_int jbench_stop;
static atomic_llong jbench_done_events, jbench_failed;

static double jbench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes event `seq` of `session` into out (JBENCH_EVENT_BYTES + 1 bytes),
 * padded to JBENCH_EVENT_BYTES; its length. */
static size_t jbench_event_json(char *out, const char *session, uint64_t seq)
{
    int n = snprintf(out, JBENCH_EVENT_BYTES + 1,
                     "{\"event_id\":\"%s-%llu\",\"sequence\":%llu,"
                     "\"time\":\"2026-11-23T00:00:00.000Z\",\"session_id\":\"%s\","
                     "\"native_session_id\":null,\"synthetic\":false,\"source\":\"agent\","
                     "\"type\":\"item.delta\",\"data\":{\"item_id\":\"itm_1\",\"delta\":\"",
                     session, (unsigned long long)seq, (unsigned long long)seq, session);
    static const char tail[] = "\"},\"raw\":null}";
    size_t len = (size_t)n;
    while (len + sizeof tail - 1 < JBENCH_EVENT_BYTES)
        out[len++] = 'x';
    memcpy(out + len, tail, sizeof tail);
    return len + sizeof tail - 1;
}

/* Fills a batch of n events from sequence `first`; texts live in `texts`
 * (n * (JBENCH_EVENT_BYTES + 1) bytes). */
static void jbench_fill(struct journal_event *ev, char *texts, const char *session,
                        uint64_t first, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *t = texts + i * (JBENCH_EVENT_BYTES + 1);
        ev[i] = (struct journal_event){.sequence = first + i, .type = "item.delta", .json = t,
                                       .json_len = jbench_event_json(t, session, first + i)};
    }
}

static struct journal_session_row jbench_row(const char *id)
{
    return (struct journal_session_row){.session_id = id, .agent = "mock", .agent_mode = "build",
                                        .permission_mode = "default"};
}

/* ---- journal ------------------------------------------------------------------ */

struct jbench_thread {
    journal_t *j;
    int index;
};

static void *jbench_appender(void *arg)
{
    struct jbench_thread *t = arg;
    char id[32];
    snprintf(id, sizeof id, "bench-%d", t->index);
    struct journal_event *ev = calloc((size_t)jbench_batch, sizeof *ev);
    char *texts = malloc((size_t)jbench_batch * (JBENCH_EVENT_BYTES + 1));
    struct journal_session_row row = jbench_row(id);
    uint64_t next = 1;
    struct err err = {0};
    while (ev && texts && !atomic_load(&jbench_stop)) {
        jbench_fill(ev, texts, id, next, (size_t)jbench_batch);
        struct journal_batch b = {.session_id = id, .create = next == 1 ? &row : NULL,
                                  .events = ev, .n_events = (size_t)jbench_batch};
        if (journal_append(t->j, &b, &err) != 0) {
            fprintf(stderr, "jbench: %s\n", err.msg);
            atomic_fetch_add(&jbench_failed, 1);
            break;
        }
        next += (uint64_t)jbench_batch;
        atomic_fetch_add(&jbench_done_events, jbench_batch);
    }
    free(ev);
    free(texts);
    return NULL;
}

static int jbench_journal(void)
{
    journal_t *j;
    struct err err = {0};
    if (journal_open(jbench_db, jbench_durability, &j, &err) != 0) {
        fprintf(stderr, "jbench: %s\n", err.msg);
        return 1;
    }
    pthread_t th[JBENCH_MAX_THREADS];
    struct jbench_thread args[JBENCH_MAX_THREADS];
    double t0 = jbench_now();
    int started = 0;
    for (; started < jbench_threads; started++) {
        args[started] = (struct jbench_thread){.j = j, .index = started};
        if (pthread_create(&th[started], NULL, jbench_appender, &args[started]) != 0)
            break;
    }
    usleep((useconds_t)jbench_seconds * 1000000);
    long long events = atomic_load(&jbench_done_events);
    double secs = jbench_now() - t0;
    atomic_store(&jbench_stop, 1);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    struct journal_stats st;
    journal_get_stats(j, &st);
    journal_close(j);
    printf("events=%lld secs=%.2f events_per_s=%.0f transactions=%llu events_per_tx=%.1f "
           "errors=%lld\n",
           events, secs, (double)events / secs, (unsigned long long)st.transactions,
           st.transactions ? (double)st.events / (double)st.transactions : 0,
           (long long)atomic_load(&jbench_failed));
    return atomic_load(&jbench_failed) || started < jbench_threads ? 1 : 0;
}

/* ---- raw SQLite ----------------------------------------------------------------- */

static int jbench_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "jbench: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int jbench_sqlite(void)
{
    /* The journal creates the schema, so the rows go into exactly the
     * tables and index the server writes. */
    journal_t *j;
    struct err err = {0};
    if (journal_open(jbench_db, jbench_durability, &j, &err) != 0) {
        fprintf(stderr, "jbench: %s\n", err.msg);
        return 1;
    }
    journal_close(j);
    sqlite3 *db;
    sqlite3_stmt *ins = NULL;
    if (sqlite3_open(jbench_db, &db) != SQLITE_OK ||
        jbench_exec(db, "PRAGMA journal_mode=WAL") != 0 ||
        jbench_exec(db, jbench_durability == JOURNAL_DURABILITY_NORMAL
                            ? "PRAGMA synchronous=NORMAL"
                            : "PRAGMA synchronous=FULL") != 0 ||
        jbench_exec(db, "INSERT INTO sessions(session_id, agent, agent_mode, permission_mode,"
                        " created_at) VALUES ('bench-0', 'mock', 'build', 'default', 'now')") != 0 ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO events(session, sequence, type, turn_end, json, raw)"
                           " VALUES (1, ?, 'item.delta', 0, ?, NULL)",
                           -1, &ins, NULL) != SQLITE_OK) {
        fprintf(stderr, "jbench: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    char text[JBENCH_EVENT_BYTES + 1];
    long long events = 0, txs = 0;
    int rc = 0;
    double t0 = jbench_now(), until = t0 + jbench_seconds;
    while (rc == 0 && jbench_now() < until) {
        rc = jbench_exec(db, "BEGIN");
        for (int i = 0; rc == 0 && i < jbench_batch; i++) {
            size_t len = jbench_event_json(text, "bench-0", (uint64_t)events + 1);
            sqlite3_bind_int64(ins, 1, events + 1);
            sqlite3_bind_text(ins, 2, text, (int)len, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE || sqlite3_reset(ins) != SQLITE_OK)
                rc = -1;
            events++;
        }
        if (rc == 0)
            rc = jbench_exec(db, "COMMIT");
        txs++;
    }
    double secs = jbench_now() - t0;
    sqlite3_finalize(ins);
    sqlite3_close(db);
    printf("events=%lld secs=%.2f events_per_s=%.0f transactions=%lld events_per_tx=%d errors=%d\n",
           events, secs, (double)events / secs, txs, jbench_batch, rc ? 1 : 0);
    return rc ? 1 : 0;
}

/* ---- gen ------------------------------------------------------------------------ */

static atomic_long jbench_in_flight;

static void jbench_gen_done(void *arg, int rc, const struct err *err)
{
    (void)arg; /* one counter for every batch */
    if (rc != 0) {
        fprintf(stderr, "jbench: %s\n", err->msg);
        atomic_fetch_add(&jbench_failed, 1);
    }
    atomic_fetch_sub(&jbench_in_flight, 1);
}

static int jbench_gen(void)
{
    journal_t *j;
    struct err err = {0};
    if (journal_open(jbench_db, JOURNAL_DURABILITY_NORMAL, &j, &err) != 0) {
        fprintf(stderr, "jbench: %s\n", err.msg);
        return 1;
    }
    struct journal_event *ev = calloc((size_t)jbench_events, sizeof *ev);
    char *texts = malloc((size_t)jbench_events * (JBENCH_EVENT_BYTES + 1));
    double t0 = jbench_now();
    int rc = ev && texts ? 0 : 1;
    for (long s = 0; rc == 0 && s < jbench_sessions; s++) {
        char id[32];
        snprintf(id, sizeof id, "s%ld", s);
        struct journal_session_row row = jbench_row(id);
        jbench_fill(ev, texts, id, 1, (size_t)jbench_events);
        struct journal_batch b = {.session_id = id, .create = &row, .events = ev,
                                  .n_events = (size_t)jbench_events};
        /* journal_submit() copies the batch, so the buffers can be refilled
         * at once; a bound on what is queued keeps memory flat. */
        while (atomic_load(&jbench_in_flight) >= 8)
            usleep(200);
        atomic_fetch_add(&jbench_in_flight, 1);
        if (journal_submit(j, &b, jbench_gen_done, NULL, &err) != 0) {
            fprintf(stderr, "jbench: %s\n", err.msg);
            rc = 1;
        }
    }
    while (atomic_load(&jbench_in_flight) > 0)
        usleep(1000);
    journal_close(j);
    double secs = jbench_now() - t0;
    printf("sessions=%ld events=%ld secs=%.1f events_per_s=%.0f errors=%lld\n", jbench_sessions,
           jbench_sessions * jbench_events, secs,
           (double)jbench_sessions * (double)jbench_events / secs,
           (long long)atomic_load(&jbench_failed));
    free(ev);
    free(texts);
    return rc || atomic_load(&jbench_failed) ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        goto usage;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--db") == 0)
            jbench_db = v;
        else if (strcmp(a, "--durability") == 0)
            jbench_durability = strcmp(v, "normal") == 0 ? JOURNAL_DURABILITY_NORMAL
                                                         : JOURNAL_DURABILITY_FULL;
        else if (strcmp(a, "--batch") == 0)
            jbench_batch = atoi(v);
        else if (strcmp(a, "--threads") == 0)
            jbench_threads = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            jbench_seconds = atoi(v);
        else if (strcmp(a, "--sessions") == 0)
            jbench_sessions = atol(v);
        else if (strcmp(a, "--events") == 0)
            jbench_events = atol(v);
        else
            goto usage;
    }
    if (!jbench_db || jbench_batch < 1 || jbench_threads < 1 ||
        jbench_threads > JBENCH_MAX_THREADS || jbench_seconds < 1 || jbench_sessions < 1 ||
        jbench_events < 1)
        goto usage;
    if (strcmp(argv[1], "journal") == 0)
        return jbench_journal();
    if (strcmp(argv[1], "sqlite") == 0)
        return jbench_sqlite();
    if (strcmp(argv[1], "gen") == 0)
        return jbench_gen();
usage:
    fprintf(stderr, "usage: jbench journal|sqlite|gen --db FILE [--durability full|normal]\n"
                    "         [--batch B] [--threads T] [--seconds S] [--sessions N] [--events E]\n");
    return 2;
}
