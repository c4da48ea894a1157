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
 *   jbench journal ... --index 1
 *       The same with the search index follower on (journal_index_follow()):
 *       adds its steps, their longest (what a commit may wait), the lag when
 *       the appends stop and how long it then takes to catch up.
 *   jbench index --db F [--quantum US]
 *       Starts the follower on an existing journal and times its catch-up
 *       (the back-fill of a journal written without it, as after gen).
 *   jbench search --db F --seconds S [--sessions N --events E]
 *       GET /v1/search's journal call (limit 20) in a loop over a few query
 *       shapes on a journal made with --text 1 (N and E as given to gen,
 *       for the session filter and cursor shapes): queries/s and latency.
 *
 * Events are ~400 bytes of JSON shaped like the server's item.delta events,
 * which the search index skips (item.completed holds the item's text); with
 * --text 1 they are assistant messages' item.completed events of ~60 words
 * from a 5000-word vocabulary, every one indexed: the worst case of the
 * index's cost on the append path.
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
static int jbench_text; /* --text 1: indexed item.completed events */
static int jbench_index; /* --index 1: the search index follower runs */
static int jbench_quantum_us; /* --quantum: the follower's (0: its default) */

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
static size_t jbench_delta_json(char *out, const char *session, uint64_t seq)
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

/* Word `k` of the text vocabulary: 5000 distinct lowercase words. */
static void jbench_word(char out[8], unsigned k)
{
    k %= 5000;
    for (int i = 0; i < 5; i++, k /= 6)
        out[i] = (char)('a' + (k % 6) * 4 + (unsigned)i % 4);
    out[5] = '\0';
}

/* An assistant message's item.completed (--text 1): its words follow a
 * cheap skewed draw, so some words are in most events and most in few. */
static size_t jbench_text_json(char *out, const char *session, uint64_t seq)
{
    int n = snprintf(out, JBENCH_EVENT_BYTES + 1,
                     "{\"event_id\":\"%s-%llu\",\"sequence\":%llu,"
                     "\"time\":\"2026-11-23T00:00:00.000Z\",\"session_id\":\"%s\","
                     "\"type\":\"item.completed\",\"data\":{\"item\":{\"item_id\":\"itm_%llu\","
                     "\"kind\":\"message\",\"role\":\"assistant\",\"status\":\"completed\","
                     "\"content\":[{\"type\":\"text\",\"text\":\"",
                     session, (unsigned long long)seq, (unsigned long long)seq, session,
                     (unsigned long long)seq);
    static const char tail[] = "\"}]}},\"raw\":null}";
    size_t len = (size_t)n;
    uint64_t x = seq * 0x9E3779B97F4A7C15ull + 1;
    while (len + 6 + sizeof tail - 1 < JBENCH_EVENT_BYTES) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        char w[8];
        unsigned r = (unsigned)(x % 5000);
        jbench_word(w, (r * r) / 5000); /* skewed toward small k */
        memcpy(out + len, w, 5);
        out[len + 5] = ' ';
        len += 6;
    }
    memcpy(out + len, tail, sizeof tail);
    return len + sizeof tail - 1;
}

static size_t jbench_event_json(char *out, const char *session, uint64_t seq)
{
    return jbench_text ? jbench_text_json(out, session, seq) : jbench_delta_json(out, session, seq);
}

/* Fills a batch of n events from sequence `first`; texts live in `texts`
 * (n * (JBENCH_EVENT_BYTES + 1) bytes). */
static void jbench_fill(struct journal_event *ev, char *texts, const char *session,
                        uint64_t first, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *t = texts + i * (JBENCH_EVENT_BYTES + 1);
        ev[i] = (struct journal_event){.sequence = first + i,
                                       .type = jbench_text ? "item.completed" : "item.delta",
                                       .json = t,
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
    if (jbench_index)
        journal_index_follow(j, (uint32_t)jbench_quantum_us);
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
    struct journal_index_stats ix;
    journal_index_get_stats(j, &ix);
    double catchup = 0;
    if (jbench_index) {
        /* How long the follower needs for what the appends left behind. */
        double c0 = jbench_now();
        struct journal_index_stats now = ix;
        while (now.lag && jbench_now() - c0 < 600) {
            usleep(1000);
            journal_index_get_stats(j, &now);
        }
        catchup = jbench_now() - c0;
    }
    journal_close(j);
    printf("events=%lld secs=%.2f events_per_s=%.0f transactions=%llu events_per_tx=%.1f "
           "errors=%lld",
           events, secs, (double)events / secs, (unsigned long long)st.transactions,
           st.transactions ? (double)st.events / (double)st.transactions : 0,
           (long long)atomic_load(&jbench_failed));
    if (jbench_index)
        printf(" index_steps=%llu indexed=%llu step_avg_us=%.0f step_cpu_avg_us=%.0f "
               "step_max_us=%llu lag_at_stop=%llu catchup_s=%.2f",
               (unsigned long long)ix.steps, (unsigned long long)ix.events_indexed,
               ix.steps ? (double)ix.total_step_us / (double)ix.steps : 0,
               ix.steps ? (double)ix.total_step_cpu_us / (double)ix.steps : 0,
               (unsigned long long)ix.max_step_us, (unsigned long long)ix.lag, catchup);
    printf("\n");
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
                           " VALUES (1, ?1, ?3, 0, ?2, NULL)",
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
            sqlite3_bind_text(ins, 3, jbench_text ? "item.completed" : "item.delta", -1,
                              SQLITE_STATIC);
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

/* ---- the index follower's catch-up ------------------------------------------------ */

static int jbench_index_catchup(void)
{
    journal_t *j;
    struct err err = {0};
    if (journal_open(jbench_db, jbench_durability, &j, &err) != 0) {
        fprintf(stderr, "jbench: %s\n", err.msg);
        return 1;
    }
    struct journal_index_stats ix;
    journal_index_get_stats(j, &ix);
    uint64_t behind = ix.lag;
    double t0 = jbench_now();
    journal_index_follow(j, (uint32_t)jbench_quantum_us);
    while (ix.lag && jbench_now() - t0 < 3600) {
        usleep(10000);
        journal_index_get_stats(j, &ix);
    }
    double secs = jbench_now() - t0;
    journal_close(j);
    printf("events_behind=%llu secs=%.1f events_per_s=%.0f indexed=%llu steps=%llu "
           "step_max_us=%llu lag_left=%llu\n",
           (unsigned long long)behind, secs, (double)behind / secs,
           (unsigned long long)ix.events_indexed, (unsigned long long)ix.steps,
           (unsigned long long)ix.max_step_us, (unsigned long long)ix.lag);
    return ix.lag ? 1 : 0;
}

/* ---- search --------------------------------------------------------------------- */

static int jbench_hit(void *arg, const struct journal_hit *h)
{
    (void)h; /* counted only */
    (*(long *)arg)++;
    return 0;
}

static int jbench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int jbench_search(void)
{
    journal_t *j;
    struct err err = {0};
    if (journal_open(jbench_db, JOURNAL_DURABILITY_NORMAL, &j, &err) != 0) {
        fprintf(stderr, "jbench: %s\n", err.msg);
        return 1;
    }
    journal_reader_t *r = journal_reader_for_thread(j, &err);
    char common[8], mid[8], rare[8], rare2[8], phrase[24], prefix[8], prefix2[8], prefix1[8];
    jbench_word(common, 0);
    jbench_word(mid, 700);
    jbench_word(rare, 4990);
    jbench_word(rare2, 4900);
    snprintf(phrase, sizeof phrase, "\"%s %s\"", common, mid);
    snprintf(prefix, sizeof prefix, "%.3s*", rare);
    snprintf(prefix2, sizeof prefix2, "%.2s*", rare);
    snprintf(prefix1, sizeof prefix1, "%.1s*", rare);
    char two[20];
    snprintf(two, sizeof two, "%s %s", rare, rare2);
    /* The shapes an API client makes: a word, words, a phrase, prefixes;
     * the same within one session (the oldest of gen's sessions, s0: every
     * hit of the newer sessions lies before its own) and the newest (s<N-1>);
     * and a later page (the cursor of an event a tenth of the way in). */
    char oldest[32] = "s0", newest[32], deep[32];
    snprintf(newest, sizeof newest, "s%ld", jbench_sessions - 1);
    snprintf(deep, sizeof deep, "s%ld", jbench_sessions * jbench_events / 10);
    struct {
        const char *name, *q, *session, *cursor;
    } shapes[] = {
        {"common", common, NULL, NULL},
        {"mid", mid, NULL, NULL},
        {"rare", rare, NULL, NULL},
        {"two_rare", two, NULL, NULL},
        {"phrase", phrase, NULL, NULL},
        {"prefix", prefix, NULL, NULL},
        {"prefix2", prefix2, NULL, NULL},
        {"prefix1", prefix1, NULL, NULL},
        {"common_page", common, NULL, deep},
        {"prefix_page", prefix, NULL, deep},
        {"common_s_old", common, oldest, NULL},
        {"rare_s_old", rare, oldest, NULL},
        {"two_rare_s_old", two, oldest, NULL},
        {"phrase_s_old", phrase, oldest, NULL},
        {"prefix_s_old", prefix, oldest, NULL},
        {"common_s_new", common, newest, NULL},
        {"rare_s_new", rare, newest, NULL},
    };
    int rc = r ? 0 : 1;
    for (size_t q = 0; rc == 0 && q < sizeof shapes / sizeof shapes[0]; q++) {
        static double lat[1000000];
        long n = 0, hits = 0;
        double t0 = jbench_now(), until = t0 + jbench_seconds;
        while (n < 1000000 && jbench_now() < until) {
            double a = jbench_now();
            char next[JOURNAL_CURSOR_MAX];
            if (journal_search(r, shapes[q].q, shapes[q].session, shapes[q].cursor, 20,
                               jbench_hit, &hits, next, &err)) {
                fprintf(stderr, "jbench: %s\n", err.msg);
                rc = 1;
                break;
            }
            lat[n++] = (jbench_now() - a) * 1000;
        }
        if (n == 0)
            break;
        qsort(lat, (size_t)n, sizeof lat[0], jbench_cmp_double);
        printf("query=%s q=%s session=%s cursor=%s queries=%ld hits_per_query=%.1f "
               "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
               shapes[q].name, shapes[q].q, shapes[q].session ? shapes[q].session : "-",
               shapes[q].cursor ? shapes[q].cursor : "-", n, (double)hits / (double)n, lat[n / 2],
               lat[(size_t)((double)n * 0.99)], lat[n - 1]);
    }
    journal_close(j);
    return rc;
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
        else if (strcmp(a, "--text") == 0)
            jbench_text = atoi(v);
        else if (strcmp(a, "--index") == 0)
            jbench_index = atoi(v);
        else if (strcmp(a, "--quantum") == 0)
            jbench_quantum_us = atoi(v);
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
    if (strcmp(argv[1], "search") == 0)
        return jbench_search();
    if (strcmp(argv[1], "index") == 0)
        return jbench_index_catchup();
usage:
    fprintf(stderr, "usage: jbench journal|sqlite|gen|search|index --db FILE [--durability full|normal]\n"
                    "         [--batch B] [--threads T] [--seconds S] [--sessions N] [--events E]\n"
                    "         [--text 0|1] [--index 0|1] [--quantum US]\n");
    return 2;
}
