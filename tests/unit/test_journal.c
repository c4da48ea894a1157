/* Unit tests of the journal: schema and migrations, the sequence rule, group
 * commit, readers, waiters and shutdown.  Each test gets a fresh directory
 * under $SJ_TEST_TMPDIR (or /tmp) and removes it afterwards. */
#include "journal/journal.h"
#include "journal/migrations.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h> /* cmocka needs these three first */
#include <cmocka.h>

/* ---- fixture ------------------------------------------------------------ */

struct fx {
    char dir[512];
    char path[600];
    journal_t *j;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *base = getenv("SJ_TEST_TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    if (mkdir(base, 0700) != 0 && errno != EEXIST) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/journal-XXXXXX", base);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/journal.db", f->dir);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    journal_close(f->j);
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[1200];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            if (unlink(p) != 0)
                fprintf(stderr, "cannot remove %s\n", p);
        }
        closedir(d);
    }
    if (rmdir(f->dir) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

static journal_t *fx_open(struct fx *f, enum journal_durability d)
{
    struct err e;
    err_clear(&e);
    int rc = journal_open(f->path, d, &f->j, &e);
    if (rc)
        fprintf(stderr, "journal_open: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_non_null(f->j);
    return f->j;
}

static void fx_reopen(struct fx *f)
{
    journal_close(f->j);
    f->j = NULL;
    fx_open(f, JOURNAL_DURABILITY_FULL);
}

/* ---- building batches --------------------------------------------------- */

static const struct journal_session_row ROW = {
    .session_id = NULL,
    .agent = "mock",
    .agent_mode = "build",
    .permission_mode = "default",
    .model = "mock-1",
    .variant = NULL,
    .agent_version = "1.0.0",
    .native_session_id = NULL,
    .working_dir = "/work",
};

/* Events first..first+n-1 of `sid`, with owned json/raw text. */
struct evs {
    struct journal_event *e;
    char **text;
    size_t n;
};

static void evs_make(struct evs *v, const char *sid, uint64_t first, size_t n)
{
    v->n = n;
    v->e = calloc(n ? n : 1, sizeof *v->e);
    v->text = calloc(n ? 2 * n : 1, sizeof *v->text);
    assert_non_null(v->e);
    assert_non_null(v->text);
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = first + i;
        char buf[256];
        snprintf(buf, sizeof buf,
                 "{\"sequence\":%llu,\"session_id\":\"%s\",\"type\":\"item.delta\","
                 "\"data\":{\"delta\":\"h\\u00e9llo \\\"w\\\" \xe2\x9c\x93\"},\"raw\":null}",
                 (unsigned long long)seq, sid);
        v->text[2 * i] = strdup(buf);
        snprintf(buf, sizeof buf, "{\"native\":%llu,\"s\":\"%s\"}", (unsigned long long)seq,
                 sid);
        v->text[2 * i + 1] = strdup(buf);
        assert_non_null(v->text[2 * i]);
        assert_non_null(v->text[2 * i + 1]);
        v->e[i].sequence = seq;
        v->e[i].type = "item.delta";
        v->e[i].json = v->text[2 * i];
        v->e[i].json_len = strlen(v->text[2 * i]);
        /* every third event has no native payload */
        v->e[i].raw = seq % 3 == 0 ? NULL : v->text[2 * i + 1];
        v->e[i].raw_len = v->e[i].raw ? strlen(v->e[i].raw) : 0;
        v->e[i].turn_end = seq % 4 == 0;
    }
}

static void evs_free(struct evs *v)
{
    for (size_t i = 0; i < 2 * v->n; i++)
        free(v->text[i]);
    free(v->text);
    free(v->e);
}

static int append_range(journal_t *j, const char *sid, int create, uint64_t first, size_t n,
                        struct err *e)
{
    struct evs v;
    evs_make(&v, sid, first, n);
    struct journal_batch b = {
        .session_id = sid, .create = create ? &ROW : NULL, .events = v.e, .n_events = n};
    int rc = journal_append(j, &b, e);
    evs_free(&v);
    return rc;
}

static void must_append(journal_t *j, const char *sid, int create, uint64_t first, size_t n)
{
    struct err e;
    err_clear(&e);
    int rc = append_range(j, sid, create, first, n, &e);
    if (rc)
        fprintf(stderr, "append %s %llu+%zu: %s\n", sid, (unsigned long long)first, n, e.msg);
    assert_int_equal(rc, 0);
}

/* ---- reading back ------------------------------------------------------- */

struct got {
    size_t n;
    uint64_t *seq;
    char **json;
    size_t *json_len;
    char **raw; /* NULL when none was stored */
    size_t *raw_len;
    int *turn_end;
    size_t stop_after; /* 0: never stop */
};

static int got_cb(void *arg, uint64_t sequence, const char *json, size_t json_len,
                  const char *raw, size_t raw_len, int turn_end)
{
    struct got *g = arg;
    size_t n = g->n + 1;
    g->seq = realloc(g->seq, n * sizeof *g->seq);
    g->json = realloc(g->json, n * sizeof *g->json);
    g->json_len = realloc(g->json_len, n * sizeof *g->json_len);
    g->raw = realloc(g->raw, n * sizeof *g->raw);
    g->raw_len = realloc(g->raw_len, n * sizeof *g->raw_len);
    g->turn_end = realloc(g->turn_end, n * sizeof *g->turn_end);
    if (!g->seq || !g->json || !g->json_len || !g->raw || !g->raw_len || !g->turn_end)
        abort();
    g->seq[g->n] = sequence;
    g->json[g->n] = malloc(json_len + 1);
    if (!g->json[g->n])
        abort();
    memcpy(g->json[g->n], json, json_len);
    g->json[g->n][json_len] = '\0';
    g->json_len[g->n] = json_len;
    g->raw[g->n] = NULL;
    if (raw) {
        g->raw[g->n] = malloc(raw_len + 1);
        if (!g->raw[g->n])
            abort();
        memcpy(g->raw[g->n], raw, raw_len);
        g->raw[g->n][raw_len] = '\0';
    }
    g->raw_len[g->n] = raw_len;
    g->turn_end[g->n] = turn_end;
    g->n = n;
    return g->stop_after && g->n == g->stop_after ? 7 : 0;
}

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->json[i]);
        free(g->raw[i]);
    }
    free(g->seq);
    free(g->json);
    free(g->json_len);
    free(g->raw);
    free(g->raw_len);
    free(g->turn_end);
    memset(g, 0, sizeof *g);
}

static int read_all(journal_t *j, const char *sid, uint64_t after, uint32_t limit,
                    struct got *g, int *has_more)
{
    struct err e;
    err_clear(&e);
    journal_reader_t *r = journal_reader_for_thread(j, &e);
    assert_non_null(r);
    int rc = journal_read_events(r, sid, after, limit, got_cb, g, has_more, &e);
    if (rc < 0)
        fprintf(stderr, "read_events: %s\n", e.msg);
    return rc;
}

static size_t count_events(journal_t *j, const char *sid)
{
    struct got g = {0};
    assert_int_equal(read_all(j, sid, 0, 0, &g, NULL), 0);
    size_t n = g.n;
    for (size_t i = 0; i < g.n; i++)
        assert_int_equal(g.seq[i], i + 1);
    got_free(&g);
    return n;
}

/* Counts rows through a separate plain connection, so a test can see what
 * is in the file independently of the journal's own readers. */
static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(db, 5000), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* ---- schema and opening -------------------------------------------------- */

static void test_open_creates_schema(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    /* Numbers may skip (one reserved for another branch): the newest counts. */
    const int newest = migrations_all[migrations_count - 1].version;
    assert_int_equal(journal_schema_version(j), newest);
    assert_int_equal(sql_int(f->path, "PRAGMA user_version"), (int64_t)newest);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type='table' "
                                      "AND name IN ('sessions','events')"),
                     2);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type='index' "
                                      "AND name='events_by_session'"),
                     1);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT sequence, json FROM events "
                                        "WHERE session=(SELECT id FROM sessions WHERE "
                                        "session_id='x') AND sequence>0 ORDER BY sequence "
                                        "LIMIT 10",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int uses_index = 0, scans = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        if (strstr(detail, "events_by_session"))
            uses_index = 1;
        if (strncmp(detail, "SCAN", 4) == 0)
            scans = 1;
    }
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    /* the plan for a page read goes through the index, never a scan */
    assert_true(uses_index);
    assert_false(scans);

    /* a second open of a migrated file applies nothing and keeps the version */
    fx_reopen(f);
    assert_int_equal(journal_schema_version(f->j), newest);
}

static void test_reopen_keeps_data(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 5);
    must_append(j, "s2", 1, 1, 2);
    fx_reopen(f);
    j = f->j;
    assert_true(journal_session_exists(j, "s1"));
    assert_true(journal_session_exists(j, "s2"));
    assert_false(journal_session_exists(j, "s3"));
    assert_int_equal(journal_last_sequence(j, "s1"), 5);
    assert_int_equal(journal_last_sequence(j, "s2"), 2);
    assert_int_equal(count_events(j, "s1"), 5);

    /* the watermark loaded at start-up still enforces the sequence rule */
    struct err e;
    assert_int_equal(append_range(j, "s1", 0, 5, 1, &e), ERR_CONFLICT);
    assert_int_equal(append_range(j, "s1", 1, 1, 1, &e), ERR_CONFLICT);
    must_append(j, "s1", 0, 6, 3);
    fx_reopen(f);
    assert_int_equal(journal_last_sequence(f->j, "s1"), 8);
    assert_int_equal(count_events(f->j, "s1"), 8);
}

static void test_append_read_back_identical(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    struct evs v;
    evs_make(&v, "s1", 1, 8);
    /* a payload with bytes SQLite must not touch: embedded NUL in raw */
    static const char raw_nul[] = "{\"a\":\"x\0y\"}";
    v.e[1].raw = raw_nul;
    v.e[1].raw_len = sizeof raw_nul - 1;
    struct journal_batch b = {.session_id = "s1", .create = &ROW, .events = v.e, .n_events = 8};
    struct err e;
    assert_int_equal(journal_append(j, &b, &e), 0);

    struct got g = {0};
    int more = -1;
    assert_int_equal(read_all(j, "s1", 0, 0, &g, &more), 0);
    assert_int_equal(more, 0);
    assert_int_equal(g.n, 8);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(g.seq[i], i + 1);
        assert_int_equal(g.json_len[i], v.e[i].json_len);
        assert_memory_equal(g.json[i], v.e[i].json, v.e[i].json_len);
        if (v.e[i].raw) {
            assert_non_null(g.raw[i]);
            assert_int_equal(g.raw_len[i], v.e[i].raw_len);
            assert_memory_equal(g.raw[i], v.e[i].raw, v.e[i].raw_len);
        } else {
            assert_null(g.raw[i]);
        }
        assert_int_equal(g.turn_end[i], v.e[i].turn_end ? 1 : 0);
    }
    /* turn_end is a column of its own, not just a reader-side flag */
    assert_int_equal(sql_int(f->path, "SELECT group_concat(sequence) = '4,8' FROM "
                                      "(SELECT sequence FROM events WHERE turn_end = 1 "
                                      "ORDER BY sequence)"),
                     1);
    got_free(&g);
    evs_free(&v);
}

/* ---- the sequence rule --------------------------------------------------- */

static void assert_untouched(struct fx *f, const char *sid, uint64_t last)
{
    assert_int_equal(journal_last_sequence(f->j, sid), last);
    assert_int_equal(count_events(f->j, sid), last);
}

static void test_gap_conflicts(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 3);
    struct err e;
    err_clear(&e);
    assert_int_equal(append_range(j, "s1", 0, 5, 2, &e), ERR_CONFLICT);
    assert_int_equal(e.code, ERR_CONFLICT);
    assert_string_equal(e.subject, "s1");
    assert_non_null(strstr(e.msg, "5"));
    assert_untouched(f, "s1", 3);

    /* a hole inside one batch: 4, 5, 7 */
    struct evs v;
    evs_make(&v, "s1", 4, 3);
    v.e[2].sequence = 7;
    struct journal_batch b = {.session_id = "s1", .events = v.e, .n_events = 3};
    assert_int_equal(journal_append(j, &b, &e), ERR_CONFLICT);
    evs_free(&v);
    assert_untouched(f, "s1", 3);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM events"), 3);
    must_append(j, "s1", 0, 4, 1);
}

static void test_duplicate_conflicts(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 3);
    struct err e;
    assert_int_equal(append_range(j, "s1", 0, 3, 2, &e), ERR_CONFLICT);
    assert_int_equal(append_range(j, "s1", 0, 1, 1, &e), ERR_CONFLICT);
    struct evs v;
    evs_make(&v, "s1", 4, 2);
    v.e[1].sequence = 4; /* 4, 4 */
    struct journal_batch b = {.session_id = "s1", .events = v.e, .n_events = 2};
    assert_int_equal(journal_append(j, &b, &e), ERR_CONFLICT);
    evs_free(&v);
    assert_untouched(f, "s1", 3);
}

static void test_unknown_session_conflicts(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    struct err e;
    err_clear(&e);
    assert_int_equal(append_range(j, "ghost", 0, 1, 2, &e), ERR_CONFLICT);
    assert_string_equal(e.subject, "ghost");
    assert_false(journal_session_exists(j, "ghost"));
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM events"), 0);
    /* a row update for a session that does not exist is refused too */
    struct journal_batch b = {.session_id = "ghost", .mark_ended = 1};
    assert_int_equal(journal_append(j, &b, &e), ERR_CONFLICT);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 0);
}

static void test_second_create_conflicts(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 2);
    struct err e;
    err_clear(&e);
    /* a second create, even one whose events would follow, stores nothing */
    assert_int_equal(append_range(j, "s1", 1, 3, 1, &e), ERR_CONFLICT);
    assert_int_equal(append_range(j, "s1", 1, 1, 1, &e), ERR_CONFLICT);
    assert_int_equal(e.code, ERR_CONFLICT);
    assert_untouched(f, "s1", 2);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 1);

    /* a create whose own events do not start at 1 creates nothing */
    assert_int_equal(append_range(j, "s2", 1, 2, 1, &e), ERR_CONFLICT);
    assert_false(journal_session_exists(j, "s2"));
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 1);
    /* and a bare create (no events) is fine */
    struct journal_batch b = {.session_id = "s3", .create = &ROW};
    assert_int_equal(journal_append(j, &b, &e), 0);
    assert_true(journal_session_exists(j, "s3"));
    assert_int_equal(journal_last_sequence(j, "s3"), 0);
}

static void test_invalid_batches(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    struct err e;
    struct journal_batch none = {0};
    assert_int_equal(journal_append(j, &none, &e), ERR_INVALID);
    struct journal_event ev = {.sequence = 1, .type = "x", .json = "{}", .json_len = 2};
    struct journal_batch b = {.session_id = "s1", .create = &ROW, .events = &ev, .n_events = 1};
    assert_int_equal(journal_append(j, &b, &e), ERR_INVALID); /* no "raw":null} tail */
    struct journal_session_row bad = ROW;
    bad.session_id = "other";
    struct journal_batch c = {.session_id = "s1", .create = &bad};
    assert_int_equal(journal_append(j, &c, &e), ERR_INVALID);
    assert_false(journal_session_exists(j, "s1"));
}

/* ---- group commit -------------------------------------------------------- */

struct outcome {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
    int rc[64];
    struct err err[64];
    /* gate: the first callback waits here until released */
    int gate, entered, released;
};

static void outcome_init(struct outcome *o)
{
    memset(o, 0, sizeof *o);
    assert_int_equal(pthread_mutex_init(&o->lock, NULL), 0);
    assert_int_equal(pthread_cond_init(&o->cond, NULL), 0);
}

static void outcome_destroy(struct outcome *o)
{
    pthread_cond_destroy(&o->cond);
    pthread_mutex_destroy(&o->lock);
}

struct slot {
    struct outcome *o;
    int index;
};

static void on_done(void *arg, int rc, const struct err *err)
{
    struct slot *s = arg;
    struct outcome *o = s->o;
    pthread_mutex_lock(&o->lock);
    o->rc[s->index] = rc;
    o->err[s->index] = *err;
    o->calls++;
    pthread_cond_broadcast(&o->cond);
    /* Holding the writer here (tests only) makes everything submitted in
     * the meantime one group. */
    if (o->gate && s->index == 0) {
        o->entered = 1;
        pthread_cond_broadcast(&o->cond);
        while (!o->released)
            pthread_cond_wait(&o->cond, &o->lock);
    }
    pthread_mutex_unlock(&o->lock);
}

static void outcome_wait(struct outcome *o, int calls)
{
    pthread_mutex_lock(&o->lock);
    while (o->calls < calls)
        pthread_cond_wait(&o->cond, &o->lock);
    pthread_mutex_unlock(&o->lock);
}

/* Returns once the writer is parked in a gated outcome's first callback. */
static void gate_await(struct outcome *o)
{
    pthread_mutex_lock(&o->lock);
    while (!o->entered)
        pthread_cond_wait(&o->cond, &o->lock);
    pthread_mutex_unlock(&o->lock);
}

/* Lets the parked writer go on. */
static void gate_open(struct outcome *o)
{
    pthread_mutex_lock(&o->lock);
    o->released = 1;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

static void submit_range(journal_t *j, const char *sid, int create, uint64_t first, size_t n,
                         struct slot *s)
{
    struct evs v;
    evs_make(&v, sid, first, n);
    struct journal_batch b = {
        .session_id = sid, .create = create ? &ROW : NULL, .events = v.e, .n_events = n};
    struct err e;
    /* the batch is copied: our buffers can go right away */
    assert_int_equal(journal_submit(j, &b, on_done, s, &e), 0);
    evs_free(&v);
}

static void test_submit_done_callback(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    struct outcome o;
    outcome_init(&o);
    struct slot s[4] = {{&o, 0}, {&o, 1}, {&o, 2}, {&o, 3}};
    submit_range(j, "s1", 1, 1, 2, &s[0]);
    submit_range(j, "s1", 0, 5, 1, &s[1]); /* gap: fails alone */
    submit_range(j, "s1", 0, 3, 2, &s[2]); /* follows the first */
    submit_range(j, "s9", 0, 1, 1, &s[3]); /* unknown */
    outcome_wait(&o, 4);
    assert_int_equal(o.rc[0], 0);
    assert_int_equal(o.err[0].code, 0);
    assert_int_equal(o.rc[1], ERR_CONFLICT);
    assert_int_equal(o.err[1].code, ERR_CONFLICT);
    assert_int_equal(o.rc[2], 0);
    assert_int_equal(o.rc[3], ERR_CONFLICT);
    assert_untouched(f, "s1", 4);
    outcome_destroy(&o);

    /* a done callback may be NULL */
    struct evs v;
    evs_make(&v, "s1", 5, 1);
    struct journal_batch b = {.session_id = "s1", .events = v.e, .n_events = 1};
    struct err e;
    assert_int_equal(journal_submit(j, &b, NULL, NULL, &e), 0);
    evs_free(&v);
    journal_close(j);
    f->j = NULL;
    fx_open(f, JOURNAL_DURABILITY_FULL);
    assert_int_equal(journal_last_sequence(f->j, "s1"), 5);
}

/* Makes SQLite refuse, with "boom refused", every event insert of sequence
 * `seq` (until DROP TRIGGER boom): a storage failure on demand. */
static void refuse_sequence(struct fx *f, int seq)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.sequence = %d "
             "BEGIN SELECT RAISE(ABORT, 'boom refused'); END;", seq);
    sql_exec(f->path, sql);
}

struct alone_arg {
    journal_t *j;
    atomic_int calling, returned;
    int rc;
};

static void *alone_thread(void *arg)
{
    struct alone_arg *a = arg;
    struct err e;
    atomic_store(&a->calling, 1);
    a->rc = append_range(a->j, "s2", 1, 1, 3, &e);
    atomic_store(&a->returned, 1);
    return NULL;
}

/* journal_append() commits on the caller's thread only when nobody holds the
 * write connection: while the writer is inside a group (parked in a done
 * callback here) an append waits its turn, then goes through. */
static void test_append_waits_for_a_running_group(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 1); /* idle: runs on this thread */
    struct outcome o;
    outcome_init(&o);
    o.gate = 1;
    struct slot s0 = {&o, 0};
    submit_range(j, "s1", 0, 2, 1, &s0);
    gate_await(&o);

    struct alone_arg a = {.j = j};
    atomic_init(&a.calling, 0);
    atomic_init(&a.returned, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, alone_thread, &a), 0);
    /* the 200 ms start once the thread is at the call, so that a slow
     * thread start cannot pass for waiting */
    const struct timespec step = {0, 1000 * 1000};
    for (int i = 0; i < 10000 && !atomic_load(&a.calling); i++)
        nanosleep(&step, NULL);
    assert_true(atomic_load(&a.calling));
    struct timespec pause = {0, 200 * 1000 * 1000};
    while (nanosleep(&pause, &pause) != 0)
        assert_int_equal(errno, EINTR);
    int early = atomic_load(&a.returned); /* asserted once the writer is free */
    gate_open(&o);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(early, 0); /* it waited while the writer held the connection */
    assert_int_equal(a.rc, 0);
    assert_int_equal(journal_last_sequence(j, "s1"), 2);
    assert_int_equal(journal_last_sequence(j, "s2"), 3);
    outcome_destroy(&o);
    must_append(j, "s1", 0, 3, 1);
    assert_untouched(f, "s1", 3);
}

/* A thread that submits one batch of `s2` and notes when it got back. */
struct submit_arg {
    journal_t *j;
    uint64_t first;
    struct slot *slot;
    atomic_int calling, returned;
    int rc;
};

static void *submit_thread(void *arg)
{
    struct submit_arg *a = arg;
    struct evs v;
    evs_make(&v, "s2", a->first, 1);
    struct journal_batch b = {.session_id = "s2", .events = v.e, .n_events = 1};
    struct err e;
    atomic_store(&a->calling, 1);
    a->rc = journal_submit(a->j, &b, on_done, a->slot, &e);
    atomic_store(&a->returned, 1);
    evs_free(&v);
    return NULL;
}

/* Starts submit_thread and returns once it is at the call, plus 200 ms:
 * whether it returned by then.  A slow thread start cannot pass for a
 * submitter that waits. */
static int submit_returned_within(struct submit_arg *a, pthread_t *t)
{
    atomic_init(&a->calling, 0);
    atomic_init(&a->returned, 0);
    assert_int_equal(pthread_create(t, NULL, submit_thread, a), 0);
    const struct timespec step = {0, 1000 * 1000};
    for (int i = 0; i < 10000 && !atomic_load(&a->calling); i++)
        nanosleep(&step, NULL);
    assert_true(atomic_load(&a->calling));
    struct timespec pause = {0, 200 * 1000 * 1000};
    while (nanosleep(&pause, &pause) != 0)
        assert_int_equal(errno, EINTR);
    return atomic_load(&a->returned);
}

/* A journal whose submit queue is full: the limit is one byte, the writer
 * is parked in the done callback of s2's sequence 2, and sequence 3 is
 * queued (one batch is always let in).  Outcomes go to o's slots 0 and 1. */
static journal_t *open_with_full_queue(struct fx *f, struct outcome *o, struct slot s[3])
{
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s2", 1, 1, 1);
    journal_set_async_limit(j, 1);
    outcome_init(o);
    o->gate = 1;
    for (int i = 0; i < 3; i++)
        s[i] = (struct slot){o, i};
    submit_range(j, "s2", 0, 2, 1, &s[0]);
    gate_await(o);
    submit_range(j, "s2", 0, 3, 1, &s[1]);
    return j;
}

/* BACKPRESSURE: submitted batches the writer has not taken count against
 * a limit, and a submitter past it waits for the writer instead of
 * queueing without end, until the writer takes the queued batch. */
static void test_submit_waits_for_room(void **state)
{
    struct fx *f = *state;
    struct outcome o;
    struct slot s[3];
    journal_t *j = open_with_full_queue(f, &o, s);
    struct submit_arg a = {.j = j, .first = 4, .slot = &s[2]};
    pthread_t t;
    int early = submit_returned_within(&a, &t);
    gate_open(&o);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(early, 0); /* it waited while the queue was full */
    assert_int_equal(a.rc, 0);
    outcome_wait(&o, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(o.rc[i], 0);
    assert_int_equal(journal_last_sequence(j, "s2"), 4);
    outcome_destroy(&o);
}

static void *close_thread(void *arg)
{
    journal_close(arg);
    return NULL;
}

/* A submitter waiting for room when the journal closes is refused, not
 * left waiting for a writer that is going away. */
static void test_submit_waiting_at_close_fails(void **state)
{
    struct fx *f = *state;
    struct outcome o;
    struct slot s[3];
    journal_t *j = open_with_full_queue(f, &o, s);
    struct submit_arg a = {.j = j, .first = 4, .slot = &s[2]};
    pthread_t t, closer;
    assert_int_equal(submit_returned_within(&a, &t), 0);

    /* close flags the queue, then joins the writer, still parked */
    assert_int_equal(pthread_create(&closer, NULL, close_thread, j), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.rc, ERR_STORAGE); /* "journal: closing" */
    gate_open(&o);
    assert_int_equal(pthread_join(closer, NULL), 0);
    f->j = NULL;
    outcome_destroy(&o);
}

/* An SQL failure rolls the whole group back: every batch fails with
 * ERR_STORAGE and sqlite's message, and no watermark moves. */
static void test_sql_failure_fails_group(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 2);
    refuse_sequence(f, 3);
    struct outcome o;
    outcome_init(&o);
    o.gate = 1;
    struct slot s[4] = {{&o, 0}, {&o, 1}, {&o, 2}, {&o, 3}};
    submit_range(j, "gate", 1, 1, 1, &s[0]);
    gate_await(&o);
    /* the writer is parked in the first callback: these three are one group */
    submit_range(j, "s2", 1, 1, 2, &s[1]); /* fine on its own */
    submit_range(j, "s1", 0, 9, 1, &s[2]); /* fails validation by itself */
    submit_range(j, "s1", 0, 3, 1, &s[3]); /* hits the trigger */
    gate_open(&o);
    outcome_wait(&o, 4);
    assert_int_equal(o.rc[0], 0);
    assert_int_equal(o.rc[1], ERR_STORAGE);
    assert_int_equal(o.rc[2], ERR_CONFLICT); /* its own failure is kept */
    assert_int_equal(o.rc[3], ERR_STORAGE);
    assert_non_null(strstr(o.err[1].msg, "boom refused"));
    assert_string_equal(o.err[1].subject, "s2");
    assert_non_null(strstr(o.err[3].msg, "boom refused"));
    assert_false(journal_session_exists(j, "s2"));
    assert_int_equal(journal_last_sequence(j, "s2"), 0);
    assert_untouched(f, "s1", 2);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions WHERE session_id='s2'"),
                     0);
    outcome_destroy(&o);

    /* once the cause is gone the same batches go through */
    sql_exec(f->path, "DROP TRIGGER boom");
    must_append(j, "s2", 1, 1, 2);
    must_append(j, "s1", 0, 3, 1);
    struct journal_stats st;
    journal_get_stats(j, &st);
    assert_int_equal(st.batches, 4); /* s1, gate, s2, s1: the lost group is not counted */
}

/* A batch numbered right after ones the storage refused (a writer that
 * queued without waiting) fails with that refusal, not as a sequence
 * conflict; a real gap is still a conflict, and a commit in step ends it. */
static void test_batch_after_refused_fails_alike(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 2);
    refuse_sequence(f, 3);
    struct outcome o;
    outcome_init(&o);
    struct slot s0 = {&o, 0};
    submit_range(j, "s1", 0, 3, 2, &s0);
    outcome_wait(&o, 1);
    assert_int_equal(o.rc[0], ERR_STORAGE);
    outcome_destroy(&o);

    struct err e;
    err_clear(&e);
    assert_int_equal(append_range(j, "s1", 0, 5, 2, &e), ERR_STORAGE);
    assert_non_null(strstr(e.msg, "boom refused"));
    assert_string_equal(e.subject, "s1");
    err_clear(&e);
    assert_int_equal(append_range(j, "s1", 0, 7, 1, &e), ERR_STORAGE); /* behind that one */
    assert_non_null(strstr(e.msg, "boom refused"));
    assert_int_equal(append_range(j, "s1", 0, 9, 1, &e), ERR_CONFLICT); /* a real gap */
    assert_int_equal(append_range(j, "s1", 0, 2, 1, &e), ERR_CONFLICT); /* a repeat */
    assert_untouched(f, "s1", 2);

    sql_exec(f->path, "DROP TRIGGER boom");
    must_append(j, "s1", 0, 3, 1);
    assert_int_equal(append_range(j, "s1", 0, 5, 1, &e), ERR_CONFLICT);
    assert_int_equal(journal_last_sequence(j, "s1"), 3);
}

static int collect_alias(void *arg, const char *native_id, const char *item_id)
{
    char *list = arg;
    size_t len = strlen(list);
    snprintf(list + len, 256 - len, "%s=%s;", native_id, item_id);
    return 0;
}

/* Appends events first..first+n-1 of `sid` with the aliases; the rc. */
static int append_with_aliases(journal_t *j, const char *sid, uint64_t first, size_t n,
                               const struct journal_alias *aliases, size_t n_aliases,
                               struct err *e)
{
    struct evs v;
    evs_make(&v, sid, first, n);
    struct journal_batch b = {.session_id = sid, .events = v.e, .n_events = n,
                              .aliases = aliases, .n_aliases = n_aliases};
    int rc = journal_append(j, &b, e);
    evs_free(&v);
    return rc;
}

/* Item aliases commit with their batch, or not at all; the first one kept
 * for a native id stays. */
static void test_aliases_commit_with_their_batch(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 1);
    must_append(j, "s2", 1, 1, 1);
    struct err e;
    const struct journal_alias first[] = {{"msg9", "itm_2"}, {"msg7", "itm_4"}};
    assert_int_equal(append_with_aliases(j, "s1", 2, 1, first, 2, &e), 0);
    const struct journal_alias again[] = {{"msg9", "itm_8"}};
    assert_int_equal(append_with_aliases(j, "s1", 3, 1, again, 1, &e), 0);

    refuse_sequence(f, 4);
    const struct journal_alias lost[] = {{"msg5", "itm_9"}};
    assert_int_equal(append_with_aliases(j, "s1", 4, 1, lost, 1, &e), ERR_STORAGE);
    const struct journal_alias bad[] = {{"msg6", NULL}};
    assert_int_equal(append_with_aliases(j, "s2", 2, 1, bad, 1, &e), ERR_INVALID);

    journal_reader_t *r = journal_reader_for_thread(j, &e);
    assert_non_null(r);
    char list[256] = "";
    assert_int_equal(journal_read_aliases(r, "s1", collect_alias, list, &e), 0);
    assert_string_equal(list, "msg7=itm_4;msg9=itm_2;");
    list[0] = '\0';
    assert_int_equal(journal_read_aliases(r, "s2", collect_alias, list, &e), 0);
    assert_int_equal(journal_read_aliases(r, "nobody", collect_alias, list, &e), 0);
    assert_string_equal(list, "");
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM item_aliases"), 2);
}

/* ---- reading ------------------------------------------------------------- */

static void test_limit_has_more_after(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 10);
    must_append(j, "s2", 1, 1, 3);
    struct got g = {0};
    int more = -1;
    assert_int_equal(read_all(j, "s1", 0, 4, &g, &more), 0);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.seq[0], 1);
    assert_int_equal(g.seq[3], 4);
    assert_int_equal(more, 1);
    got_free(&g);

    assert_int_equal(read_all(j, "s1", 6, 4, &g, &more), 0);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.seq[0], 7);
    assert_int_equal(g.seq[3], 10);
    assert_int_equal(more, 0); /* exactly the last page */
    got_free(&g);

    assert_int_equal(read_all(j, "s1", 8, 0, &g, &more), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(more, 0);
    got_free(&g);

    assert_int_equal(read_all(j, "s1", 10, 5, &g, &more), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(more, 0);
    got_free(&g);

    assert_int_equal(read_all(j, "s1", UINT64_MAX, 5, &g, &more), 0);
    assert_int_equal(g.n, 0);
    got_free(&g);

    /* an unknown session simply has no events */
    assert_int_equal(read_all(j, "nobody", 0, 5, &g, &more), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(more, 0);
    got_free(&g);

    /* the callback's non-zero stops the read and is returned */
    g.stop_after = 2;
    assert_int_equal(read_all(j, "s1", 0, 0, &g, &more), 7);
    assert_int_equal(g.n, 2);
    assert_int_equal(more, 1);
    got_free(&g);
    g.stop_after = 3;
    assert_int_equal(read_all(j, "s2", 0, 0, &g, &more), 7);
    assert_int_equal(more, 0);
    got_free(&g);

    /* has_more may be NULL */
    assert_int_equal(read_all(j, "s2", 0, 1, &g, NULL), 0);
    assert_int_equal(g.n, 1);
    got_free(&g);
}

struct listed {
    int n;
    char ids[8][16];
};

static int list_cb(void *arg, const struct journal_session_info *s)
{
    struct listed *l = arg;
    if (l->n < 8)
        snprintf(l->ids[l->n], sizeof l->ids[0], "%s", s->session_id);
    l->n++;
    return 0;
}

static int list_stop_cb(void *arg, const struct journal_session_info *s)
{
    (void)s;
    int *n = arg;
    return ++*n == 2 ? 42 : 0;
}

static void test_session_row_updates(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "a", 1, 1, 1);
    must_append(j, "b", 1, 1, 2);
    must_append(j, "c", 1, 1, 3);

    struct err e;
    journal_reader_t *r = journal_reader_for_thread(j, &e);
    assert_non_null(r);
    struct journal_session_info s;
    assert_int_equal(journal_get_session(r, "b", &s, &e), 0);
    assert_string_equal(s.session_id, "b");
    assert_string_equal(s.agent, "mock");
    assert_string_equal(s.agent_mode, "build");
    assert_string_equal(s.permission_mode, "default");
    assert_string_equal(s.model, "mock-1");
    assert_null(s.variant);
    assert_string_equal(s.agent_version, "1.0.0");
    assert_null(s.native_session_id);
    assert_string_equal(s.working_dir, "/work");
    assert_null(s.adapter_state);
    assert_int_equal(s.ended, 0);
    assert_int_equal(s.last_sequence, 2);
    /* RFC 3339 UTC, e.g. 2024-05-01T12:34:56.789Z */
    assert_int_equal(strlen(s.created_at), 24);
    assert_int_equal(s.created_at[10], 'T');
    assert_int_equal(s.created_at[23], 'Z');
    journal_session_info_clear(&s);
    assert_null(s.session_id);

    /* events plus row updates in one batch */
    struct evs v;
    evs_make(&v, "b", 3, 2);
    struct journal_batch b = {.session_id = "b", .events = v.e, .n_events = 2,
                              .native_session_id = "native-b", .adapter_state = "{\"k\":1}"};
    assert_int_equal(journal_append(j, &b, &e), 0);
    evs_free(&v);
    /* a batch with no events and only row updates */
    struct journal_batch upd = {.session_id = "b", .mark_ended = 1};
    assert_int_equal(journal_append(j, &upd, &e), 0);
    struct journal_batch upd2 = {.session_id = "b", .adapter_state = "{\"k\":2}"};
    assert_int_equal(journal_append(j, &upd2, &e), 0);

    assert_int_equal(journal_get_session(r, "b", &s, &e), 0);
    assert_string_equal(s.native_session_id, "native-b"); /* kept: not set again */
    assert_string_equal(s.adapter_state, "{\"k\":2}");
    assert_int_equal(s.ended, 1);
    assert_int_equal(s.last_sequence, 4);
    journal_session_info_clear(&s);
    assert_int_equal(journal_last_sequence(j, "b"), 4);

    /* the session row can be created with its native id already known */
    struct journal_session_row row = ROW;
    row.native_session_id = "native-d";
    row.variant = "fast";
    struct journal_batch d = {.session_id = "d", .create = &row};
    assert_int_equal(journal_append(j, &d, &e), 0);
    assert_int_equal(journal_get_session(r, "d", &s, &e), 0);
    assert_string_equal(s.native_session_id, "native-d");
    assert_string_equal(s.variant, "fast");
    assert_int_equal(s.last_sequence, 0);
    journal_session_info_clear(&s);

    err_clear(&e);
    assert_int_equal(journal_get_session(r, "zzz", &s, &e), ERR_NOT_FOUND);
    assert_string_equal(e.subject, "zzz");
    assert_null(s.session_id);

    struct listed l = {0};
    assert_int_equal(journal_list_sessions(r, list_cb, &l, &e), 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.ids[0], "d");
    assert_string_equal(l.ids[1], "c");
    assert_string_equal(l.ids[2], "b");
    assert_string_equal(l.ids[3], "a");
    int seen = 0;
    assert_int_equal(journal_list_sessions(r, list_stop_cb, &seen, &e), 42);
    assert_int_equal(seen, 2);

    /* row updates survive a restart */
    fx_reopen(f);
    r = journal_reader_for_thread(f->j, &e);
    assert_non_null(r);
    assert_int_equal(journal_get_session(r, "b", &s, &e), 0);
    assert_int_equal(s.ended, 1);
    assert_string_equal(s.native_session_id, "native-b");
    journal_session_info_clear(&s);
}

static void *reader_of_thread(void *arg)
{
    journal_t *j = arg;
    struct err e;
    return journal_reader_for_thread(j, &e);
}

static void test_reader_per_thread(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    struct err e;
    journal_reader_t *mine = journal_reader_for_thread(j, &e);
    assert_non_null(mine);
    assert_ptr_equal(journal_reader_for_thread(j, &e), mine);
    pthread_t t;
    void *theirs = NULL;
    assert_int_equal(pthread_create(&t, NULL, reader_of_thread, j), 0);
    assert_int_equal(pthread_join(t, &theirs), 0);
    assert_non_null(theirs);
    assert_ptr_not_equal(theirs, mine);
    assert_int_equal(journal_integrity_check(mine, &e), 0);
}

static void test_integrity_check(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    for (int i = 0; i < 20; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "s%d", i);
        must_append(j, sid, 1, 1, 20);
    }
    struct err e;
    err_clear(&e);
    journal_reader_t *r = journal_reader_for_thread(j, &e);
    assert_non_null(r);
    assert_int_equal(journal_integrity_check(r, &e), 0);
}

/* ---- waiters ------------------------------------------------------------- */

struct wt {
    struct journal_waiter w; /* first: the callbacks get &w */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int parks, wakes;
};

static void wt_park(struct journal_waiter *w)
{
    struct wt *t = (struct wt *)w;
    pthread_mutex_lock(&t->lock);
    t->parks++;
    pthread_mutex_unlock(&t->lock);
}

static void wt_wake(struct journal_waiter *w)
{
    struct wt *t = (struct wt *)w;
    pthread_mutex_lock(&t->lock);
    t->wakes++;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static void wt_init(struct wt *t)
{
    memset(t, 0, sizeof *t);
    t->w.park = wt_park;
    t->w.wake = wt_wake;
    assert_int_equal(pthread_mutex_init(&t->lock, NULL), 0);
    assert_int_equal(pthread_cond_init(&t->cond, NULL), 0);
}

static void wt_destroy(struct wt *t)
{
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
}

static int wt_wakes(struct wt *t)
{
    pthread_mutex_lock(&t->lock);
    int n = t->wakes;
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* Waits up to 5 s for a wake; returns the wake count. */
static int wt_wait(struct wt *t)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&t->lock);
    while (t->wakes == 0)
        if (pthread_cond_timedwait(&t->cond, &t->lock, &until) == ETIMEDOUT)
            break;
    int n = t->wakes;
    pthread_mutex_unlock(&t->lock);
    return n;
}

static void test_park_when_already_past(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 3);
    struct wt t;
    wt_init(&t);
    assert_int_equal(journal_park(j, "s1", 0, &t.w), 1);
    assert_int_equal(journal_park(j, "s1", 2, &t.w), 1);
    assert_int_equal(t.parks, 0);
    assert_int_equal(journal_unpark(j, &t.w), 0);
    /* at the watermark it parks */
    assert_int_equal(journal_park(j, "s1", 3, &t.w), 0);
    assert_int_equal(t.parks, 1);
    assert_int_equal(journal_unpark(j, &t.w), 1);
    assert_int_equal(wt_wakes(&t), 0);
    wt_destroy(&t);
}

struct appender {
    journal_t *j;
    const char *sid;
    int create;
    uint64_t first;
    size_t n;
    int rc;
};

static void *append_thread(void *arg)
{
    struct appender *a = arg;
    struct err e;
    a->rc = append_range(a->j, a->sid, a->create, a->first, a->n, &e);
    return NULL;
}

static void run_appender(journal_t *j, const char *sid, int create, uint64_t first, size_t n)
{
    struct appender a = {j, sid, create, first, n, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, append_thread, &a), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.rc, 0);
}

static void test_park_then_append_wakes_once(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 3);
    struct wt t, u, ghost;
    wt_init(&t);
    wt_init(&u);
    wt_init(&ghost);
    assert_int_equal(journal_park(j, "s1", 3, &t.w), 0);
    assert_int_equal(journal_park(j, "s1", 5, &u.w), 0); /* wants past 5 */
    assert_int_equal(journal_park(j, "later", 0, &ghost.w), 0); /* not created yet */
    assert_int_equal(journal_park(j, "s1", 3, &t.w), ERR_INVALID); /* already parked */

    run_appender(j, "s1", 0, 4, 2); /* 4..5 */
    assert_int_equal(wt_wait(&t), 1);
    assert_int_equal(wt_wakes(&u), 0);
    assert_int_equal(journal_unpark(j, &t.w), 0); /* already woken */

    run_appender(j, "s1", 0, 6, 1);
    assert_int_equal(wt_wait(&u), 1);
    run_appender(j, "s1", 0, 7, 1);
    assert_int_equal(wt_wakes(&t), 1); /* exactly once */
    assert_int_equal(wt_wakes(&u), 1);

    run_appender(j, "later", 1, 1, 1);
    assert_int_equal(wt_wait(&ghost), 1);
    assert_int_equal(t.parks + u.parks + ghost.parks, 3);
    wt_destroy(&t);
    wt_destroy(&u);
    wt_destroy(&ghost);
}

static void test_unpark_prevents_wake(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 1);
    struct wt t, other;
    wt_init(&t);
    wt_init(&other);
    assert_int_equal(journal_park(j, "s1", 1, &t.w), 0);
    assert_int_equal(journal_park(j, "s1", 1, &other.w), 0);
    assert_int_equal(journal_unpark(j, &t.w), 1);
    assert_int_equal(journal_unpark(j, &t.w), 0);
    /* journal_append returns after the wake-ups of its commit */
    must_append(j, "s1", 0, 2, 1);
    assert_int_equal(wt_wakes(&t), 0);
    assert_int_equal(wt_wakes(&other), 1);
    /* a waiter can be parked again after unpark */
    assert_int_equal(journal_park(j, "s1", 2, &t.w), 0);
    must_append(j, "s1", 0, 3, 1);
    assert_int_equal(wt_wakes(&t), 1);
    wt_destroy(&t);
    wt_destroy(&other);
}

static void test_wake_all_and_closing(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 1);
    struct wt t[3];
    for (int i = 0; i < 3; i++)
        wt_init(&t[i]);
    assert_int_equal(journal_park(j, "s1", 1, &t[0].w), 0);
    assert_int_equal(journal_park(j, "s1", 9, &t[1].w), 0);
    assert_int_equal(journal_park(j, "s2", 0, &t[2].w), 0);
    journal_wake_all(j, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(wt_wakes(&t[i]), 1);
        assert_int_equal(journal_unpark(j, &t[i].w), 0);
    }
    /* not closing: parking still works */
    assert_int_equal(journal_park(j, "s1", 1, &t[0].w), 0);
    journal_wake_all(j, 1);
    assert_int_equal(wt_wakes(&t[0]), 2);
    assert_int_equal(journal_park(j, "s1", 1, &t[1].w), ERR_INVALID);
    assert_int_equal(journal_park(j, "s1", 0, &t[1].w), ERR_INVALID);
    must_append(j, "s1", 0, 2, 1); /* writing still works; nothing to wake */
    for (int i = 0; i < 3; i++)
        wt_destroy(&t[i]);
}

/* ---- concurrency --------------------------------------------------------- */

#define CC_THREADS 8
#define CC_SESSIONS_PER_THREAD 2
#define CC_BATCHES 120

struct cc_arg {
    journal_t *j;
    int index;
    int failures;
    uint64_t last[CC_SESSIONS_PER_THREAD];
};

static void *cc_thread(void *arg)
{
    struct cc_arg *a = arg;
    unsigned seed = (unsigned)a->index * 7919u + 1;
    for (int i = 0; i < CC_BATCHES; i++) {
        int k = i % CC_SESSIONS_PER_THREAD;
        char sid[32];
        snprintf(sid, sizeof sid, "t%d-s%d", a->index, k);
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 5;
        struct err e;
        if (append_range(a->j, sid, a->last[k] == 0 && i < CC_SESSIONS_PER_THREAD,
                         a->last[k] + 1, n, &e) != 0) {
            a->failures++;
            continue;
        }
        a->last[k] += n;
    }
    return NULL;
}

static void test_concurrent_appenders(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    pthread_t t[CC_THREADS];
    struct cc_arg a[CC_THREADS];
    for (int i = 0; i < CC_THREADS; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].j = j;
        a[i].index = i;
        assert_int_equal(pthread_create(&t[i], NULL, cc_thread, &a[i]), 0);
    }
    for (int i = 0; i < CC_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);

    uint64_t total = 0;
    for (int i = 0; i < CC_THREADS; i++) {
        assert_int_equal(a[i].failures, 0);
        for (int k = 0; k < CC_SESSIONS_PER_THREAD; k++) {
            char sid[32];
            snprintf(sid, sizeof sid, "t%d-s%d", i, k);
            assert_int_equal(journal_last_sequence(j, sid), a[i].last[k]);
            assert_int_equal(count_events(j, sid), a[i].last[k]); /* contiguous from 1 */
            total += a[i].last[k];
        }
    }
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM events"), (int64_t)total);
    struct journal_stats st;
    journal_get_stats(j, &st);
    assert_int_equal(st.events, total);
    assert_int_equal(st.batches, CC_THREADS * CC_BATCHES);
    assert_true(st.transactions < st.batches);
    assert_true(st.max_tx_batches > 1);

    fx_reopen(f);
    for (int i = 0; i < CC_THREADS; i++) {
        char sid[32];
        snprintf(sid, sizeof sid, "t%d-s0", i);
        assert_int_equal(journal_last_sequence(f->j, sid), a[i].last[0]);
    }
    struct err e;
    journal_reader_t *r = journal_reader_for_thread(f->j, &e);
    assert_non_null(r);
    assert_int_equal(journal_integrity_check(r, &e), 0);
}

/* A reader tailing a session while batches of 10 commit must only ever see
 * whole batches: nothing of a transaction is visible before its commit.
 * Appends commit on the caller's thread and finish in microseconds, so the
 * appender waits for a read begun after each batch; otherwise every commit
 * could land before the reader's first query and the check would see only
 * the final state. */
struct tail_arg {
    journal_t *j;
    atomic_int stop;
    atomic_int reads;
    int bad; /* read by the main thread only after the join */
};

static void *tail_thread(void *arg)
{
    struct tail_arg *a = arg;
    struct err e;
    journal_reader_t *r = journal_reader_for_thread(a->j, &e);
    if (!r)
        a->bad++;
    while (r && !atomic_load(&a->stop)) {
        struct got g = {0};
        int more = 0;
        if (journal_read_events(r, "tail", 0, 0, got_cb, &g, &more, &e) != 0)
            a->bad++;
        if (g.n % 10 != 0)
            a->bad++;
        for (size_t i = 0; i < g.n; i++)
            if (g.seq[i] != i + 1)
                a->bad++;
        got_free(&g);
        atomic_fetch_add(&a->reads, 1);
        /* a pause between reads: under valgrind, which runs one thread at
         * a time, a reader that never sleeps starves the appender */
        const struct timespec pause = {.tv_nsec = 50 * 1000};
        nanosleep(&pause, NULL);
    }
    atomic_store(&a->stop, 1);
    return NULL;
}

/* Waits until the tail thread has finished more than `reads` reads.
 * Returns the new count, or -1 after 10 s or once the thread has stopped. */
static int await_read_after(struct tail_arg *a, int reads)
{
    const struct timespec pause = {.tv_nsec = 100 * 1000};
    for (int waited = 0; waited < 100000; waited++) {
        int now = atomic_load(&a->reads);
        if (now > reads)
            return now;
        if (atomic_load(&a->stop))
            return -1;
        nanosleep(&pause, NULL);
    }
    return -1;
}

static void test_commit_before_visible(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_NORMAL);
    struct tail_arg a = {.j = j};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, tail_thread, &a), 0);
    int reads = await_read_after(&a, 0);
    for (int i = 0; i < 60 && reads > 0; i++) {
        must_append(j, "tail", i == 0, (uint64_t)i * 10 + 1, 10);
        /* the read under way may have begun before this commit; the one
         * after it cannot have */
        reads = await_read_after(&a, atomic_load(&a.reads) + 1);
    }
    atomic_store(&a.stop, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.bad, 0);
    assert_true(reads > 0); /* every batch was followed by a read */
    assert_int_equal(journal_last_sequence(j, "tail"), 600);
}

/* ---- durability and shutdown ------------------------------------------- */

static void test_durability_normal(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_NORMAL);
    must_append(j, "s1", 1, 1, 50);
    must_append(j, "s1", 0, 51, 50);
    assert_int_equal(count_events(j, "s1"), 100);
    journal_close(j);
    f->j = NULL;
    fx_open(f, JOURNAL_DURABILITY_NORMAL);
    assert_int_equal(journal_last_sequence(f->j, "s1"), 100);
}

/* Counts journal_submit() outcomes. */
struct tally {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls, failed;
};

static void tally_done(void *arg, int rc, const struct err *err)
{
    (void)err; /* a failure is counted; the test reads no message */
    struct tally *t = arg;
    pthread_mutex_lock(&t->lock);
    t->calls++;
    t->failed += rc != 0;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* Batches of ~600 KiB (ten 60 KiB events, ~150 WAL frames), submitted
 * back to back so the writer commits without a pause, until the WAL has
 * taken ~24,000 frames: twice the inline mark of journal_ckpt.c (10,000).
 * Checkpoints must have run outside SQLite's own auto-checkpoint (which the
 * statistics do not count), the WAL must have stayed below the mark plus
 * one group (the submit queue holds at most 8 MiB, ~2,100 frames) even
 * though a background checkpoint cannot finish between commits, and
 * nothing may be lost. */
static void checkpoints_behind_commits(struct fx *f, enum journal_durability d)
{
    enum { EVENT_BYTES = 60000, PER_BATCH = 10, BATCHES = 160 };
    const long frame = 4096 + 24, bound = (10000 + 2300) * frame + 32;
    journal_t *j = fx_open(f, d);
    must_append(j, "s1", 1, 1, 1);
    struct tally t = {.calls = 0};
    assert_int_equal(pthread_mutex_init(&t.lock, NULL), 0);
    assert_int_equal(pthread_cond_init(&t.cond, NULL), 0);
    char *json = malloc(EVENT_BYTES + 200);
    assert_non_null(json);
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    long most = 0;
    uint64_t seq = 2;
    for (int c = 0; c < BATCHES; c++) {
        struct journal_event ev[PER_BATCH];
        char *texts[PER_BATCH];
        for (int i = 0; i < PER_BATCH; i++, seq++) {
            int n = snprintf(json, 200, "{\"sequence\":%llu,\"session_id\":\"s1\",\"type\":"
                             "\"item.delta\",\"data\":{\"delta\":\"",
                             (unsigned long long)seq);
            /* varied bytes, so no page compresses into another's */
            for (int k = 0; k < EVENT_BYTES; k++)
                json[n + k] = (char)('a' + (seq * 7 + (uint64_t)k * 13) % 26);
            strcpy(json + n + EVENT_BYTES, "\"},\"raw\":null}");
            texts[i] = strdup(json);
            assert_non_null(texts[i]);
            ev[i] = (struct journal_event){.sequence = seq, .type = "item.delta",
                                           .json = texts[i], .json_len = strlen(texts[i])};
        }
        struct journal_batch b = {.session_id = "s1", .events = ev, .n_events = PER_BATCH};
        struct err e;
        err_clear(&e);
        assert_int_equal(journal_submit(j, &b, tally_done, &t, &e), 0);
        for (int i = 0; i < PER_BATCH; i++)
            free(texts[i]);
        struct stat sb;
        if (stat(wal, &sb) == 0 && sb.st_size > most)
            most = (long)sb.st_size;
    }
    free(json);
    pthread_mutex_lock(&t.lock);
    while (t.calls < BATCHES)
        pthread_cond_wait(&t.cond, &t.lock);
    pthread_mutex_unlock(&t.lock);
    assert_int_equal(t.failed, 0);
    pthread_cond_destroy(&t.cond);
    pthread_mutex_destroy(&t.lock);
    struct journal_stats st;
    journal_get_stats(j, &st);
    assert_true(st.checkpoints >= 1);
    /* About one per 1,000 frames not yet copied (and a few inline ones),
     * not one per commit past the mark. */
    if (st.checkpoints > 40)
        fprintf(stderr, "%llu checkpoints for ~24,000 frames\n",
                (unsigned long long)st.checkpoints);
    assert_true(st.checkpoints <= 40);
    assert_true(most > 0);
    if (most > bound)
        fprintf(stderr, "the WAL reached %ld bytes (at most %ld)\n", most, bound);
    assert_true(most <= bound);
    journal_close(j);
    f->j = NULL;
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM events"), 1 + PER_BATCH * BATCHES);
}

static void test_checkpoints_behind_commits_full(void **state)
{
    checkpoints_behind_commits(*state, JOURNAL_DURABILITY_FULL);
}

static void test_checkpoints_behind_commits_normal(void **state)
{
    checkpoints_behind_commits(*state, JOURNAL_DURABILITY_NORMAL);
}

static void test_close_empties_wal(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    for (int i = 0; i < 10; i++)
        must_append(j, "s1", i == 0, (uint64_t)i * 10 + 1, 10);
    struct err e;
    assert_non_null(journal_reader_for_thread(j, &e)); /* an open reader too */
    assert_int_equal(count_events(j, "s1"), 100);
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    struct stat sb;
    assert_int_equal(stat(wal, &sb), 0);
    assert_true(sb.st_size > 0);
    journal_close(j);
    f->j = NULL;
    assert_true(stat(wal, &sb) != 0 || sb.st_size == 0);
    /* everything is in the main file now */
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM events"), 100);
}

static void test_close_drains_queue(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    struct outcome o;
    outcome_init(&o);
    struct slot s[40];
    for (int i = 0; i < 40; i++) {
        s[i].o = &o;
        s[i].index = i;
        submit_range(j, "s1", i == 0, (uint64_t)i * 3 + 1, 3, &s[i]);
    }
    journal_close(j); /* every queued batch is committed before close returns */
    f->j = NULL;
    assert_int_equal(o.calls, 40);
    for (int i = 0; i < 40; i++)
        assert_int_equal(o.rc[i], 0);
    outcome_destroy(&o);
    assert_int_equal(sql_int(f->path, "SELECT max(sequence) FROM events"), 120);
    assert_int_equal(sql_int(f->path, "SELECT last_sequence FROM sessions"), 120);
}

static void test_newer_version_refused(void **state)
{
    struct fx *f = *state;
    sql_exec(f->path, "CREATE TABLE x(y); PRAGMA user_version = 999;");
    journal_t *j = NULL;
    struct err e;
    err_clear(&e);
    assert_int_equal(journal_open(f->path, JOURNAL_DURABILITY_FULL, &j, &e), ERR_STORAGE);
    assert_null(j);
    assert_int_equal(e.code, ERR_STORAGE);
    assert_non_null(strstr(e.msg, "999"));
    assert_non_null(strstr(e.msg, f->path));
    assert_int_equal(sql_int(f->path, "PRAGMA user_version"), 999); /* untouched */
}

static void test_bad_paths_refused(void **state)
{
    struct fx *f = *state;
    char path[700];
    snprintf(path, sizeof path, "%s/missing/dir/journal.db", f->dir);
    journal_t *j = NULL;
    struct err e;
    err_clear(&e);
    assert_int_equal(journal_open(path, JOURNAL_DURABILITY_FULL, &j, &e), ERR_STORAGE);
    assert_null(j);
    assert_non_null(strstr(e.msg, path));

    /* a file that is not a database */
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database, just text\n", fp);
    assert_int_equal(fclose(fp), 0);
    err_clear(&e);
    assert_int_equal(journal_open(f->path, JOURNAL_DURABILITY_FULL, &j, &e), ERR_STORAGE);
    assert_null(j);
    assert_non_null(strstr(e.msg, f->path));

    err_clear(&e);
    assert_int_equal(journal_open("", JOURNAL_DURABILITY_FULL, &j, &e), ERR_INVALID);
}

struct reentry {
    journal_t *j;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, rc, inner_rc;
};

static void reentry_done(void *arg, int rc, const struct err *err)
{
    (void)err;
    struct reentry *r = arg;
    struct err e;
    /* forbidden by the contract, but must fail fast instead of deadlocking */
    int inner = append_range(r->j, "s1", 0, 2, 1, &e);
    pthread_mutex_lock(&r->lock);
    r->rc = rc;
    r->inner_rc = inner;
    r->done = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void test_append_from_writer_refused(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    struct reentry r = {.j = j};
    assert_int_equal(pthread_mutex_init(&r.lock, NULL), 0);
    assert_int_equal(pthread_cond_init(&r.cond, NULL), 0);
    struct evs v;
    evs_make(&v, "s1", 1, 1);
    struct journal_batch b = {.session_id = "s1", .create = &ROW, .events = v.e, .n_events = 1};
    struct err e;
    assert_int_equal(journal_submit(j, &b, reentry_done, &r, &e), 0);
    evs_free(&v);
    pthread_mutex_lock(&r.lock);
    while (!r.done)
        pthread_cond_wait(&r.cond, &r.lock);
    pthread_mutex_unlock(&r.lock);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.inner_rc, ERR_INVALID);
    assert_int_equal(journal_last_sequence(j, "s1"), 1);
    pthread_cond_destroy(&r.cond);
    pthread_mutex_destroy(&r.lock);
}

/* A read-only open sees what a writer committed, writes nothing, and
 * refuses a database at another schema version instead of migrating it. */
static void test_open_readonly(void **state)
{
    struct fx *f = *state;
    struct err e;
    journal_t *ro = NULL;
    assert_int_equal(journal_open_readonly(f->path, &ro, &e), ERR_STORAGE);
    assert_null(ro);
    assert_non_null(strstr(e.msg, "cannot open"));

    fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(f->j, "ro", 1, 1, 5);
    assert_int_equal(journal_open_readonly(f->path, &ro, &e), 0);
    assert_int_equal(count_events(ro, "ro"), 5);
    assert_int_equal(journal_last_sequence(ro, "ro"), 5);
    must_append(f->j, "ro", 0, 6, 2); /* a live writer's commits show up */
    assert_int_equal(count_events(ro, "ro"), 7);
    assert_int_equal(append_range(ro, "ro", 0, 8, 1, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "read-only"));
    journal_close(ro);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM events"), 7);

    journal_close(f->j);
    f->j = NULL;
    sql_exec(f->path, "PRAGMA user_version = 1");
    assert_int_equal(journal_open_readonly(f->path, &ro, &e), ERR_STORAGE);
    assert_non_null(strstr(e.msg, "start the server on it once"));
    assert_int_equal(sql_int(f->path, "PRAGMA user_version"), 1);
}

/* ---- idempotency keys ------------------------------------------------------ */

static void idem_nap(void)
{
    struct timespec ts = { 0, 100 * 1000 * 1000 };
    nanosleep(&ts, NULL);
}

static int idem_get(journal_t *j, const char *key, struct journal_idem_info *out)
{
    struct err e;
    err_clear(&e);
    journal_reader_t *r = journal_reader_for_thread(j, &e);
    assert_non_null(r);
    memset(out, 0, sizeof *out);
    return journal_idem_get(r, key, out, &e);
}

static const struct journal_idem IDEM = {
    .key = "k-1", .route = "POST /v1/sessions/*/messages", .session_id = "s1",
    .request_hash = 0xfedcba9876543210ULL, .status = 204, .body = NULL, .after = 0,
};

/* The record commits with its batch and survives a reopen; a batch that
 * fails leaves none. */
static void test_idem_commits_with_batch(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    must_append(j, "s1", 1, 1, 2);
    struct evs v;
    evs_make(&v, "s1", 3, 2);
    struct journal_idem rec = IDEM;
    rec.body = "{\"healthy\":true}";
    rec.body_len = strlen(rec.body);
    rec.status = 200;
    rec.after = 2;
    struct journal_batch b = { .session_id = "s1", .events = v.e, .n_events = 2, .idem = &rec };
    struct err e;
    err_clear(&e);
    assert_int_equal(journal_append(j, &b, &e), 0);

    /* A batch out of step fails, and its record with it. */
    struct journal_idem other = IDEM;
    other.key = "k-2";
    b.idem = &other; /* events 3..4 again: a conflict */
    assert_int_equal(journal_append(j, &b, &e), ERR_CONFLICT);
    evs_free(&v);

    fx_reopen(f);
    struct journal_idem_info info;
    assert_int_equal(idem_get(f->j, "k-1", &info), 0);
    assert_string_equal(info.route, IDEM.route);
    assert_string_equal(info.session_id, "s1");
    assert_true(info.request_hash == IDEM.request_hash); /* all 64 bits, sign included */
    assert_int_equal(info.status, 200);
    assert_int_equal(info.body_len, strlen("{\"healthy\":true}"));
    assert_string_equal(info.body, "{\"healthy\":true}");
    assert_int_equal(info.after, 2);
    journal_idem_info_clear(&info);
    assert_int_equal(idem_get(f->j, "k-2", &info), ERR_NOT_FOUND);
    assert_int_equal(idem_get(f->j, "nope", &info), ERR_NOT_FOUND);
    assert_int_equal(journal_last_sequence(f->j, "s1"), 4);
}

/* A record alone (session NULL) for a request that committed nothing else;
 * a batch with neither session nor record is still refused. */
static void test_idem_alone(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    struct journal_idem rec = IDEM;
    rec.session_id = NULL;
    rec.route = "POST /v1/agents/*/install";
    struct journal_batch b = { .idem = &rec };
    struct err e;
    err_clear(&e);
    assert_int_equal(journal_append(j, &b, &e), 0);
    struct journal_idem_info info;
    assert_int_equal(idem_get(j, "k-1", &info), 0);
    assert_null(info.session_id);
    assert_null(info.body);
    assert_int_equal(info.status, 204);
    journal_idem_info_clear(&info);

    struct journal_batch none = { .session_id = NULL };
    assert_int_equal(journal_append(j, &none, &e), ERR_INVALID);
    rec.key = "";
    assert_int_equal(journal_append(j, &b, &e), ERR_INVALID);
    rec.key = "k-3";
    rec.status = 0;
    assert_int_equal(journal_append(j, &b, &e), ERR_INVALID);
    /* Alone means alone: a record with events still needs a session. */
    rec.status = 204;
    struct evs v;
    evs_make(&v, "s1", 1, 1);
    struct journal_batch mixed = { .events = v.e, .n_events = 1, .idem = &rec };
    assert_int_equal(journal_append(j, &mixed, &e), ERR_INVALID);
    evs_free(&v);
}

/* Past the TTL a key is not found, a new request takes it, and the writer
 * deletes old rows after a later commit. */
static void test_idem_expiry_and_prune(void **state)
{
    struct fx *f = *state;
    journal_t *j = fx_open(f, JOURNAL_DURABILITY_FULL);
    journal_idem_set_ttl(j, 1);
    struct journal_idem rec = IDEM;
    rec.session_id = NULL;
    struct journal_batch b = { .idem = &rec };
    struct err e;
    err_clear(&e);
    assert_int_equal(journal_append(j, &b, &e), 0);
    struct journal_idem_info info;
    assert_int_equal(idem_get(j, "k-1", &info), 0);
    journal_idem_info_clear(&info);
    int gone = 0;
    for (int i = 0; i < 40 && !gone; i++) { /* at most 4 s */
        gone = idem_get(j, "k-1", &info) == ERR_NOT_FOUND;
        if (!gone) {
            journal_idem_info_clear(&info);
            idem_nap();
        }
    }
    assert_true(gone);
    /* Commits go on; one of them prunes (at most once a second here). */
    int pruned = 0;
    for (int i = 0; i < 40 && !pruned; i++) {
        must_append(j, "p", i == 0, (uint64_t)i + 1, 1);
        pruned = sql_int(f->path, "SELECT count(*) FROM idempotency_keys") == 0;
        if (!pruned)
            idem_nap();
    }
    assert_true(pruned);
    /* An expired key is free for a new request. */
    rec.status = 201;
    assert_int_equal(journal_append(j, &b, &e), 0);
    assert_int_equal(idem_get(j, "k-1", &info), 0);
    assert_int_equal(info.status, 201);
    journal_idem_info_clear(&info);
    /* The prune deletes through the index on the time, not a scan. */
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type='index' "
                                      "AND name='idempotency_keys_created'"),
                     1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

/* ---- the WAL deleted under a running journal ------------------------------ */

/* The child's part of test_wal_deleted: 0, or the step that went wrong.  It
 * ends with _exit() and no journal_close(), which to SQLite is a crash: no
 * checkpoint, the WAL left as it is. */
static int wal_deleted_child(struct fx *f)
{
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    struct err e;
    err_clear(&e);
    if (journal_open(f->path, JOURNAL_DURABILITY_FULL, &f->j, &e) != 0)
        return 10;
    if (append_range(f->j, "w", 1, 1, 3, &e) != 0)
        return 11;
    struct got g = {0};
    if (read_all(f->j, "w", 0, 0, &g, NULL) != 0 || g.n != 3) /* the reader holds the WAL */
        return 12;
    got_free(&g);
    if (unlink(wal) != 0)
        return 13;
    /* Refused, never acknowledged into the unlinked file. */
    if (append_range(f->j, "w", 0, 4, 2, &e) != ERR_STORAGE || !strstr(e.msg, "WAL"))
        return 14;
    /* The journal made a new WAL at the path and takes writes again. */
    if (append_range(f->j, "w", 0, 4, 2, &e) != 0)
        return 15;
    struct stat st;
    if (stat(wal, &st) != 0)
        return 16;
    /* The same reader, reopened on the new WAL, sees everything. */
    if (read_all(f->j, "w", 0, 0, &g, NULL) != 0 || g.n != 5)
        return 17;
    got_free(&g);
    return 0;
}

/* Runs `child` in a forked process, which must return 0. */
static void run_child(struct fx *f, int (*child)(struct fx *))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child(f));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("the journal's child failed at step %d", WEXITSTATUS(status));
}

/* As wal_deleted_child, with an empty file put at the WAL's path (what
 * `sqlite3 journal.db` does then): not the WAL SQLite writes either. */
static int wal_replaced_child(struct fx *f)
{
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    struct err e;
    err_clear(&e);
    if (journal_open(f->path, JOURNAL_DURABILITY_FULL, &f->j, &e) != 0 ||
        append_range(f->j, "w", 1, 1, 3, &e) != 0)
        return 10;
    FILE *other = NULL;
    if (unlink(wal) != 0 || !(other = fopen(wal, "w")) || fclose(other) != 0)
        return 11;
    if (append_range(f->j, "w", 0, 4, 2, &e) != ERR_STORAGE || !strstr(e.msg, "WAL"))
        return 12;
    if (append_range(f->j, "w", 0, 4, 2, &e) != 0)
        return 13;
    return 0;
}

static void test_wal_replaced(void **state)
{
    struct fx *f = *state;
    run_child(f, wal_replaced_child);
    fx_open(f, JOURNAL_DURABILITY_FULL);
    assert_int_equal(count_events(f->j, "w"), 5);
}

/* Two writers on one journal (here two journal_t, as the server and an
 * exporter would be two processes), both with the WAL open when it is
 * deleted.  The first to commit recovers (checkpoint, new WAL); the second
 * finds the WAL index about that new WAL and must not checkpoint through
 * its stale one, only reopen. */
static int wal_taken_over_child(struct fx *f)
{
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    struct err e;
    err_clear(&e);
    journal_t *b = NULL;
    if (journal_open(f->path, JOURNAL_DURABILITY_FULL, &f->j, &e) != 0 ||
        append_range(f->j, "a", 1, 1, 3, &e) != 0 ||
        journal_open(f->path, JOURNAL_DURABILITY_FULL, &b, &e) != 0 ||
        append_range(b, "b", 1, 1, 3, &e) != 0)
        return 10;
    if (unlink(wal) != 0)
        return 11;
    if (append_range(b, "b", 0, 4, 1, &e) != ERR_STORAGE || append_range(b, "b", 0, 4, 2, &e))
        return 12; /* b recovered: checkpoint, a new WAL, written */
    if (append_range(f->j, "a", 0, 4, 1, &e) != ERR_STORAGE || !strstr(e.msg, "WAL"))
        return 13;
    if (append_range(f->j, "a", 0, 4, 2, &e) != 0 || append_range(b, "b", 0, 6, 1, &e) != 0)
        return 14; /* a took b's WAL without a checkpoint of its own */
    return 0;
}

static void test_wal_taken_over(void **state)
{
    struct fx *f = *state;
    run_child(f, wal_taken_over_child);
    fx_open(f, JOURNAL_DURABILITY_FULL);
    assert_int_equal(count_events(f->j, "a"), 5);
    assert_int_equal(count_events(f->j, "b"), 6);
    struct err e;
    err_clear(&e);
    journal_reader_t *r = journal_reader_for_thread(f->j, &e);
    assert_non_null(r);
    assert_int_equal(journal_integrity_check(r, &e), 0);
}

static void test_wal_deleted(void **state)
{
    struct fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(wal_deleted_child(f));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("the journal's child failed at step %d", WEXITSTATUS(status));
    /* What a restart finds: every acknowledged event, 1..5. */
    fx_open(f, JOURNAL_DURABILITY_FULL);
    assert_int_equal(journal_last_sequence(f->j, "w"), 5);
    assert_int_equal(count_events(f->j, "w"), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_creates_schema),
        T(test_reopen_keeps_data),
        T(test_idem_commits_with_batch),
        T(test_idem_alone),
        T(test_idem_expiry_and_prune),
        T(test_append_read_back_identical),
        T(test_gap_conflicts),
        T(test_duplicate_conflicts),
        T(test_unknown_session_conflicts),
        T(test_second_create_conflicts),
        T(test_invalid_batches),
        T(test_submit_done_callback),
        T(test_sql_failure_fails_group),
        T(test_append_waits_for_a_running_group),
        T(test_submit_waits_for_room),
        T(test_submit_waiting_at_close_fails),
        T(test_batch_after_refused_fails_alike),
        T(test_aliases_commit_with_their_batch),
        T(test_limit_has_more_after),
        T(test_session_row_updates),
        T(test_reader_per_thread),
        T(test_integrity_check),
        T(test_park_when_already_past),
        T(test_park_then_append_wakes_once),
        T(test_unpark_prevents_wake),
        T(test_wake_all_and_closing),
        T(test_concurrent_appenders),
        T(test_commit_before_visible),
        T(test_durability_normal),
        T(test_checkpoints_behind_commits_full),
        T(test_checkpoints_behind_commits_normal),
        T(test_close_empties_wal),
        T(test_close_drains_queue),
        T(test_newer_version_refused),
        T(test_bad_paths_refused),
        T(test_append_from_writer_refused),
        T(test_open_readonly),
        T(test_wal_deleted),
        T(test_wal_replaced),
        T(test_wal_taken_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
