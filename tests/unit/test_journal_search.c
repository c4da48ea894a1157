/* Unit tests of src/journal/journal_search.c and migrations/0006_search.sql:
 * a journal written before 0006 (the events are there, the summaries and
 * the index are not) gets its summaries from the migration and its index
 * from the follower (journal_index.c), behind the commits; what is appended
 * afterwards keeps the summaries through the triggers and reaches the index
 * once the follower caught up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "journal/journal.h"
#include "journal/migrations.h"

#include <errno.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fx {
    char dir[512];
    char path[600];
    journal_t *j;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *base = getenv("SJ_TEST_TMPDIR");
    if (!f)
        return -1;
    if (!base || !*base)
        base = "/tmp";
    if (mkdir(base, 0700) != 0 && errno != EEXIST) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/jsearch-XXXXXX", base);
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
    char p[700];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

/* An event's JSON as the server stores it. */
static char *event_json(const char *sid, int seq, const char *type, const char *data)
{
    char *out = malloc(2048);
    if (!out || snprintf(out, 2048,
                 "{\"event_id\":\"evt_%d\",\"sequence\":%d,\"time\":\"2026-12-01T10:00:%02d."
                 "123456Z\",\"session_id\":\"%s\",\"type\":\"%s\",\"data\":%s,\"raw\":null}",
                 seq, seq, seq, sid, type, data) >= 2048)
        fail();
    return out;
}

#define USER_MSG(text)                                                                     \
    "{\"item\":{\"item_id\":\"itm_1\",\"kind\":\"message\",\"role\":\"user\","            \
    "\"content\":[{\"type\":\"text\",\"text\":\"" text "\"}],\"status\":\"completed\"}}"
#define PERM(id, status)                                                                   \
    "{\"permission_id\":\"" id "\",\"action\":\"command_execution\",\"status\":\"" status \
    "\",\"metadata\":{\"kind\":\"commandExecution\",\"command\":\"rm -rf obsidian\"}}"

/* A version-5 journal: migrations 1..5, one session with a user message and
 * a pending permission, one ended session. */
static void make_v5_journal(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    for (size_t i = 0; i < migrations_count && migrations_all[i].version <= 5; i++)
        exec_ok(db, migrations_all[i].sql);
    exec_ok(db, "PRAGMA user_version = 5");
    exec_ok(db, "INSERT INTO sessions(session_id, agent, agent_mode, permission_mode, "
                "created_at, last_sequence) VALUES "
                "('old', 'mock', 'build', 'default', '2026-12-01T09:00:00.000Z', 3), "
                "('done', 'claude', 'build', 'default', '2026-12-01T08:00:00.000Z', 0)");
    exec_ok(db, "UPDATE sessions SET ended = 1 WHERE session_id = 'done'");
    const char *types[] = {"item.started", "item.completed", "permission.requested"};
    const char *datas[] = {USER_MSG("find the obsidian tablet"),
                           USER_MSG("find the obsidian tablet"), PERM("p1", "requested")};
    for (int i = 0; i < 3; i++) {
        char *json = event_json("old", i + 1, types[i], datas[i]);
        char *sql = sqlite3_mprintf("INSERT INTO events(session, sequence, type, turn_end, json) "
                                    "VALUES (1, %d, %Q, %d, %Q)",
                                    i + 1, types[i], i == 2, json);
        exec_ok(db, sql);
        sqlite3_free(sql);
        free(json);
    }
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

struct got {
    char status[16];
    char updated_at[40];
    char title[128];
    char perms[128];
    int rows;
    char ids[256];
};

static int on_summary(void *arg, const struct journal_session_info *s,
                      const struct journal_session_extra *x)
{
    struct got *g = arg;
    snprintf(g->status, sizeof g->status, "%s", x->status);
    snprintf(g->updated_at, sizeof g->updated_at, "%s", x->updated_at);
    snprintf(g->title, sizeof g->title, "%s", x->title ? x->title : "(null)");
    snprintf(g->perms, sizeof g->perms, "%s", x->pending_permissions);
    g->rows++;
    size_t len = strlen(g->ids);
    snprintf(g->ids + len, sizeof g->ids - len, "%s%s", len ? "," : "", s->session_id);
    return 0;
}

static int on_hit(void *arg, const struct journal_hit *h)
{
    struct got *g = arg;
    g->rows++;
    snprintf(g->title, sizeof g->title, "%s", h->snippet);
    snprintf(g->status, sizeof g->status, "%llu", (unsigned long long)h->sequence);
    return 0;
}

static void nap_2ms(void)
{
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
}

/* Waits (bounded) until the follower has read every committed event. */
static void wait_indexed(journal_reader_t *r)
{
    struct err err;
    struct journal_index_pos pos = {0, 1};
    for (int i = 0; i < 30000 && pos.lag; i++) { /* 60 s: valgrind */
        assert_int_equal(journal_index_position(r, &pos, &err), 0);
        if (pos.lag)
            nap_2ms();
    }
    assert_int_equal(pos.lag, 0);
}

/* ---- a VFS that counts fsyncs ----------------------------------------------
 * The journal's durability is what SQLite syncs, so the tests below count
 * xSync calls through a VFS that forwards everything to the default one. */
struct sync_file {
    sqlite3_file base;
    sqlite3_file *real; /* the default VFS's file, allocated just after */
};

static sqlite3_vfs *sync_real_vfs;
static sqlite3_vfs sync_vfs;
static sqlite3_io_methods sync_io;
static atomic_int sync_count;

#define REAL(f) (((struct sync_file *)(f))->real)
static int sf_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int sf_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int sf_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int sf_truncate(sqlite3_file *f, sqlite3_int64 n)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int sf_sync(sqlite3_file *f, int flags)
{
    atomic_fetch_add(&sync_count, 1);
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int sf_size(sqlite3_file *f, sqlite3_int64 *n)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), n);
}
static int sf_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int sf_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int sf_check(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int sf_fcntl(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int sf_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int sf_caps(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int sf_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **out)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, out);
}
static int sf_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void sf_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int sf_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int sf_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **out)
{
    return REAL(f)->pMethods->xFetch(REAL(f), o, n, out);
}
static int sf_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static int sf_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    struct sync_file *sf = (struct sync_file *)f;
    sf->real = (sqlite3_file *)(sf + 1);
    int rc = sync_real_vfs->xOpen(sync_real_vfs, name, sf->real, flags, out);
    /* The file is ours to close only if the real one opened. */
    f->pMethods = rc == SQLITE_OK && sf->real->pMethods ? &sync_io : NULL;
    return rc;
}

/* Makes the counting VFS the default one (once per process). */
static void sync_vfs_install(void)
{
    if (sync_real_vfs)
        return;
    sync_real_vfs = sqlite3_vfs_find(NULL);
    assert_non_null(sync_real_vfs);
    sync_vfs = *sync_real_vfs;
    sync_vfs.zName = "sj-count-syncs";
    sync_vfs.szOsFile = (int)sizeof(struct sync_file) + sync_real_vfs->szOsFile;
    sync_vfs.xOpen = sf_open;
    sync_io = (sqlite3_io_methods){3,         sf_close,   sf_read,        sf_write,
                                   sf_truncate, sf_sync,  sf_size,        sf_lock,
                                   sf_unlock, sf_check,   sf_fcntl,       sf_sector,
                                   sf_caps,   sf_shm_map, sf_shm_lock,    sf_shm_barrier,
                                   sf_shm_unmap, sf_fetch, sf_unfetch};
    assert_int_equal(sqlite3_vfs_register(&sync_vfs, 1), SQLITE_OK);
}

/* Appends `n` text events to session "d" one commit at a time, letting the
 * follower index after each (a step of its own); returns the syncs those
 * commits and steps made. */
static int syncs_for_appends(struct fx *f, enum journal_durability durability, int n)
{
    struct err err;
    sync_vfs_install();
    assert_int_equal(journal_open(f->path, durability, &f->j, &err), 0);
    journal_index_follow(f->j, 0);
    journal_reader_t *r = journal_reader_for_thread(f->j, &err);
    assert_non_null(r);
    struct journal_session_row row = {.session_id = "d", .agent = "mock", .agent_mode = "m",
                                      .permission_mode = "p"};
    struct journal_batch b = {.session_id = "d", .create = &row};
    assert_int_equal(journal_append(f->j, &b, &err), 0);
    wait_indexed(r);
    int before = atomic_load(&sync_count);
    for (int i = 1; i <= n; i++) {
        char *json = event_json("d", i, "item.completed", USER_MSG("durable basalt"));
        struct journal_event ev = {.sequence = (uint64_t)i, .type = "item.completed",
                                   .json = json, .json_len = strlen(json)};
        b = (struct journal_batch){.session_id = "d", .events = &ev, .n_events = 1};
        assert_int_equal(journal_append(f->j, &b, &err), 0);
        free(json);
        wait_indexed(r);
    }
    /* The last step's COMMIT is what wait_indexed() saw; the writer counts
     * the step just after it, so a preempted writer may not have yet. */
    struct journal_index_stats st;
    journal_index_get_stats(f->j, &st);
    for (int i = 0; i < 5000 && st.steps < (uint64_t)n; i++) {
        nap_2ms();
        journal_index_get_stats(f->j, &st);
    }
    assert_true(st.steps >= (uint64_t)n); /* the steps had their chance to sync */
    return atomic_load(&sync_count) - before;
}

/* Durability normal: commits are not synced (only checkpoints are, and a few
 * small commits reach none).  This failed while the follower's prepared
 * PRAGMA synchronous = FULL had set the connection to FULL at prepare time. */
static void test_normal_commits_do_not_sync(void **state)
{
    assert_int_equal(syncs_for_appends(*state, JOURNAL_DURABILITY_NORMAL, 8), 0);
}

/* Durability full: one sync per commit, and the index steps in between add
 * none (they commit with synchronous=NORMAL; the next commit's sync covers
 * them). */
static void test_full_syncs_each_commit_only(void **state)
{
    assert_int_equal(syncs_for_appends(*state, JOURNAL_DURABILITY_FULL, 8), 8);
}

static void test_migration_backfills(void **state)
{
    struct fx *f = *state;
    make_v5_journal(f->path);
    struct err err;
    assert_int_equal(journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &f->j, &err), 0);
    journal_reader_t *r = journal_reader_for_thread(f->j, &err);
    assert_non_null(r);

    struct got g = {0};
    assert_int_equal(journal_session_summary(r, "old", on_summary, &g, &err), 0);
    assert_string_equal(g.status, "waiting");
    assert_string_equal(g.updated_at, "2026-12-01T10:00:03.123Z");
    assert_string_equal(g.title, "find the obsidian tablet");
    assert_string_equal(g.perms, "[\"p1\"]");
    memset(&g, 0, sizeof g);
    assert_int_equal(journal_session_summary(r, "done", on_summary, &g, &err), 0);
    assert_string_equal(g.status, "ended");
    assert_string_equal(g.updated_at, "2026-12-01T08:00:00.000Z");
    assert_int_equal(journal_session_summary(r, "ghost", on_summary, &g, &err), ERR_NOT_FOUND);

    /* The migration indexed nothing: the follower back-fills, and only once
     * asked to; until then the lag says what a search misses. */
    char next[JOURNAL_CURSOR_MAX];
    struct journal_index_pos pos;
    assert_int_equal(journal_index_position(r, &pos, &err), 0);
    assert_int_equal(pos.indexed_through, 0);
    assert_int_equal(pos.lag, 3);
    memset(&g, 0, sizeof g);
    assert_int_equal(journal_search(r, "obsidian", NULL, NULL, 10, on_hit, &g, next, &err), 0);
    assert_int_equal(g.rows, 0);
    journal_index_follow(f->j, 0);
    wait_indexed(r);
    assert_int_equal(journal_index_position(r, &pos, &err), 0);
    assert_int_equal(pos.indexed_through, 3);

    /* The index holds the old events: the user message's item.completed and
     * the permission (its command), not the item.started. */
    memset(&g, 0, sizeof g);
    assert_int_equal(journal_search(r, "obsidian", NULL, NULL, 10, on_hit, &g, next, &err), 0);
    assert_int_equal(g.rows, 2);
    assert_string_equal(next, "");
    memset(&g, 0, sizeof g);
    assert_int_equal(journal_search(r, "tablet", "old", NULL, 10, on_hit, &g, next, &err), 0);
    assert_int_equal(g.rows, 1);
    assert_string_equal(g.status, "2");
    assert_string_equal(g.title, "find the obsidian <mark>tablet</mark>");

    /* Appends after the migration keep it up: the permission resolved, an
     * agent's item starts (running), the turn ends (idle). */
    struct journal_event ev[3];
    char *j1 = event_json("old", 4, "permission.resolved", PERM("p1", "approved"));
    char *j2 = event_json("old", 5, "item.started",
                          "{\"item\":{\"item_id\":\"itm_2\",\"kind\":\"message\","
                          "\"role\":\"assistant\",\"content\":[],\"status\":\"in_progress\"}}");
    char *j3 = event_json("old", 6, "item.completed",
                          "{\"item\":{\"item_id\":\"itm_2\",\"kind\":\"message\","
                          "\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
                          "\"the tablet is under the basalt\"}],\"status\":\"completed\"}}");
    ev[0] = (struct journal_event){.sequence = 4, .type = "permission.resolved", .json = j1,
                                   .json_len = strlen(j1)};
    ev[1] = (struct journal_event){.sequence = 5, .type = "item.started", .json = j2,
                                   .json_len = strlen(j2)};
    ev[2] = (struct journal_event){.sequence = 6, .type = "item.completed", .json = j3,
                                   .json_len = strlen(j3), .turn_end = 1};
    struct journal_batch b = {.session_id = "old", .events = ev, .n_events = 2};
    assert_int_equal(journal_append(f->j, &b, &err), 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(journal_session_summary(r, "old", on_summary, &g, &err), 0);
    assert_string_equal(g.status, "running");
    assert_string_equal(g.perms, "[]");
    b = (struct journal_batch){.session_id = "old", .events = ev + 2, .n_events = 1};
    assert_int_equal(journal_append(f->j, &b, &err), 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(journal_session_summary(r, "old", on_summary, &g, &err), 0);
    assert_string_equal(g.status, "idle");
    assert_string_equal(g.updated_at, "2026-12-01T10:00:06.123Z");
    wait_indexed(r);
    memset(&g, 0, sizeof g);
    assert_int_equal(journal_search(r, "basalt", NULL, NULL, 10, on_hit, &g, next, &err), 0);
    assert_int_equal(g.rows, 1);

    /* The watermark is in the file: reopened without the follower, the
     * index is still there and nothing is behind. */
    journal_close(f->j);
    f->j = NULL;
    assert_int_equal(journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &f->j, &err), 0);
    r = journal_reader_for_thread(f->j, &err);
    assert_non_null(r);
    assert_int_equal(journal_index_position(r, &pos, &err), 0);
    assert_int_equal(pos.indexed_through, 6);
    assert_int_equal(pos.lag, 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(journal_search(r, "basalt OR obsidian", NULL, NULL, 10, on_hit, &g, next,
                                    &err), 0);
    assert_int_equal(g.rows, 4); /* 3 with obsidian (the resolution too), 1 basalt */
    free(j1);
    free(j2);
    free(j3);
}

static void test_pages_and_errors(void **state)
{
    struct fx *f = *state;
    struct err err;
    assert_int_equal(journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &f->j, &err), 0);
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i % 10);
        struct journal_session_row row = {.session_id = id, .agent = i % 2 ? "a" : "b",
                                          .agent_mode = "m", .permission_mode = "p"};
        struct journal_batch b = {.session_id = id, .create = &row};
        assert_int_equal(journal_append(f->j, &b, &err), 0);
    }
    journal_reader_t *r = journal_reader_for_thread(f->j, &err);
    struct journal_session_query q = {.by_activity = 1, .limit = 2};
    char next[JOURNAL_CURSOR_MAX], cur[JOURNAL_CURSOR_MAX];
    struct got g = {0};
    int pages = 0;
    do {
        assert_int_equal(journal_session_page(r, &q, on_summary, &g, next, &err), 0);
        memcpy(cur, next, sizeof cur);
        q.cursor = cur[0] ? cur : NULL;
        pages++;
    } while (q.cursor && pages < 10);
    assert_int_equal(pages, 3);
    assert_int_equal(g.rows, 5);
    assert_string_equal(g.ids, "s4,s3,s2,s1,s0");

    /* Creation order, filtered by agent. */
    memset(&g, 0, sizeof g);
    q = (struct journal_session_query){.agent = "a"};
    assert_int_equal(journal_session_page(r, &q, on_summary, &g, next, &err), 0);
    assert_string_equal(g.ids, "s3,s1");

    const char *bad_list[] = {"", "a", "a1", "a1_", "ax_2026", "c1", "a1_2026'--",
                              "a99999999999999999999_1"};
    for (size_t i = 0; i < sizeof bad_list / sizeof bad_list[0]; i++) {
        q = (struct journal_session_query){.by_activity = 1, .cursor = bad_list[i]};
        assert_int_equal(journal_session_page(r, &q, on_summary, &g, next, &err), ERR_INVALID);
    }
    q = (struct journal_session_query){.by_activity = 0, .cursor = "a1_2026"};
    assert_int_equal(journal_session_page(r, &q, on_summary, &g, next, &err), ERR_INVALID);
    q = (struct journal_session_query){.status = "busy"};
    assert_int_equal(journal_session_page(r, &q, on_summary, &g, next, &err), ERR_INVALID);

    const char *bad_q[] = {"", "   ", "a AND", "\"open", "nocol:x", "(a", "NEAR(", "*"};
    for (size_t i = 0; i < sizeof bad_q / sizeof bad_q[0]; i++) {
        int rc = journal_search(r, bad_q[i], NULL, NULL, 5, on_hit, &g, next, &err);
        if (rc != ERR_INVALID)
            fail_msg("query '%s': %d (%s)", bad_q[i], rc, err.msg);
    }
    assert_int_equal(journal_search(r, "x", NULL, "s", 5, on_hit, &g, next, &err), ERR_INVALID);
    assert_int_equal(journal_search(r, "x", NULL, "c12", 5, on_hit, &g, next, &err),
                     ERR_INVALID);
    assert_int_equal(journal_search(r, "x", "ghost", NULL, 5, on_hit, &g, next, &err),
                     ERR_NOT_FOUND);
    assert_int_equal(journal_search(r, "x", "s1", "s12", 5, on_hit, &g, next, &err), 0);
}

/* Appends that never pause (each batch queued before the last commits)
 * still let the follower through: it gets a step between two groups, so
 * the index is caught up soon after the appends stop, with nothing left
 * out, and no step ran longer than a bounded time. */
static void test_follower_keeps_up(void **state)
{
    struct fx *f = *state;
    struct err err;
    assert_int_equal(journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &f->j, &err), 0);
    journal_index_follow(f->j, 0);
    struct journal_session_row row = {.session_id = "busy", .agent = "mock",
                                      .agent_mode = "m", .permission_mode = "p"};
    struct journal_batch b = {.session_id = "busy", .create = &row};
    assert_int_equal(journal_append(f->j, &b, &err), 0);
    enum { N = 600, PER = 3 };
    char *jsons[N];
    for (int i = 0; i < N; i++) {
        char data[256];
        snprintf(data, sizeof data,
                 "{\"item\":{\"item_id\":\"itm_%d\",\"kind\":\"message\",\"role\":"
                 "\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"granite w%d "
                 "quartz\"}],\"status\":\"completed\"}}", i, i);
        jsons[i] = event_json("busy", i + 1, "item.completed", data);
    }
    for (int i = 0; i < N; i += PER) {
        struct journal_event ev[PER];
        for (int k = 0; k < PER; k++)
            ev[k] = (struct journal_event){.sequence = (uint64_t)(i + k + 1),
                                           .type = "item.completed", .json = jsons[i + k],
                                           .json_len = strlen(jsons[i + k])};
        b = (struct journal_batch){.session_id = "busy", .events = ev, .n_events = PER};
        assert_int_equal(journal_submit(f->j, &b, NULL, NULL, &err), 0);
    }
    journal_reader_t *r = journal_reader_for_thread(f->j, &err);
    assert_non_null(r);
    /* journal_submit() copied the batches; the last one's commit is the
     * last sequence. */
    for (int i = 0; i < 4000 && journal_last_sequence(f->j, "busy") < N; i++)
        nap_2ms();
    assert_int_equal(journal_last_sequence(f->j, "busy"), N);
    wait_indexed(r);
    struct got g = {0};
    char next[JOURNAL_CURSOR_MAX];
    assert_int_equal(journal_search(r, "granite", NULL, NULL, 0, on_hit, &g, next, &err), 0);
    assert_int_equal(g.rows, N);
    memset(&g, 0, sizeof g);
    assert_int_equal(journal_search(r, "w599", NULL, NULL, 0, on_hit, &g, next, &err), 0);
    assert_int_equal(g.rows, 1);
    struct journal_index_stats st;
    journal_index_get_stats(f->j, &st);
    assert_int_equal(st.events_indexed, N);
    assert_int_equal(st.lag, 0);
    assert_true(st.steps >= 1);
    for (int i = 0; i < N; i++)
        free(jsons[i]);
}

/* The session filter reads only the rowids between the session's first and
 * last events (journal_search()): with sessions appended in turns, those
 * bounds hold the other sessions' events too, which must still be left out;
 * a session without events has no hits; a cursor inside the range pages on.
 * Prefix queries of every length (1-3 read 0009's prefix indexes, longer
 * ones merge terms) find what the word finds. */
static void test_session_filter_and_prefixes(void **state)
{
    struct fx *f = *state;
    struct err err;
    assert_int_equal(journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &f->j, &err), 0);
    journal_index_follow(f->j, 0);
    const char *ids[] = {"ant", "bee", "empty", "cat"};
    for (int s = 0; s < 4; s++) {
        struct journal_session_row row = {.session_id = ids[s], .agent = "mock",
                                          .agent_mode = "m", .permission_mode = "p"};
        struct journal_batch b = {.session_id = ids[s], .create = &row};
        assert_int_equal(journal_append(f->j, &b, &err), 0);
    }
    /* ant and bee in turns, then cat: ant's range covers bee's events */
    enum { N = 30 };
    for (int i = 0; i < 2 * N + 5; i++) {
        const char *sid = i < 2 * N ? ids[i % 2] : "cat";
        uint64_t seq = i < 2 * N ? (uint64_t)(i / 2 + 1) : (uint64_t)(i - 2 * N + 1);
        char data[256];
        snprintf(data, sizeof data,
                 "{\"item\":{\"item_id\":\"itm_%d\",\"kind\":\"message\",\"role\":"
                 "\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"granite %s%d\"}],"
                 "\"status\":\"completed\"}}", i, sid, (int)seq);
        char *json = event_json(sid, (int)seq, "item.completed", data);
        struct journal_event ev = {.sequence = seq, .type = "item.completed", .json = json,
                                   .json_len = strlen(json)};
        struct journal_batch b = {.session_id = sid, .events = &ev, .n_events = 1};
        assert_int_equal(journal_append(f->j, &b, &err), 0);
        free(json);
    }
    journal_reader_t *r = journal_reader_for_thread(f->j, &err);
    assert_non_null(r);
    wait_indexed(r);

    /* ant, 7 hits a page, newest first, every page inside ant's range */
    char next[JOURNAL_CURSOR_MAX], cur[JOURNAL_CURSOR_MAX] = "";
    struct got g = {0};
    int pages = 0, expect = N;
    do {
        memset(&g, 0, sizeof g);
        assert_int_equal(journal_search(r, "granite", "ant", cur[0] ? cur : NULL, 7, on_hit,
                                        &g, next, &err), 0);
        int want = expect < 7 ? expect : 7;
        assert_int_equal(g.rows, want);
        char last[16];
        snprintf(last, sizeof last, "%d", expect - want + 1);
        assert_string_equal(g.status, last); /* the page's oldest hit */
        assert_non_null(strstr(g.title, "ant"));
        expect -= want;
        memcpy(cur, next, sizeof cur);
        pages++;
    } while (cur[0] && pages < 10);
    assert_int_equal(expect, 0);
    assert_int_equal(pages, 5);

    /* bee's own, none of ant's or cat's; an empty session: none */
    const struct {
        const char *q, *session;
        int rows;
    } want[] = {
        {"granite", "bee", N},  {"ant1", "bee", 0},    {"granite", "empty", 0},
        {"granite", "cat", 5},  {"granite", NULL, 2 * N + 5},
        {"g*", NULL, 2 * N + 5}, {"gr*", NULL, 2 * N + 5}, {"gra*", NULL, 2 * N + 5},
        {"gran*", NULL, 2 * N + 5}, {"granite*", NULL, 2 * N + 5}, {"gra*", "bee", N},
        {"a*", NULL, N},        {"ant2*", "ant", 11},  {"c*", "ant", 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        memset(&g, 0, sizeof g);
        assert_int_equal(journal_search(r, want[i].q, want[i].session, NULL, 0, on_hit, &g,
                                        next, &err), 0);
        if (g.rows != want[i].rows)
            fail_msg("'%s' in %s: %d hits, not %d", want[i].q,
                     want[i].session ? want[i].session : "all", g.rows, want[i].rows);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migration_backfills, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pages_and_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_follower_keeps_up, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_session_filter_and_prefixes, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_normal_commits_do_not_sync, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_full_syncs_each_commit_only, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
