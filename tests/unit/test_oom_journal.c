/* Out-of-memory tests of the journal API (src/journal/) on a real SQLite
 * file under $SJ_TEST_TMPDIR, with the Nth allocation failing in our code,
 * in jansson or inside SQLite (oom_alloc.h).
 *
 * What must hold after each failure:
 *   - open: a clean error, no leak; opening again works and finds the
 *     schema complete (migrations are all or nothing);
 *   - append (with or without a create): a clean error, nothing of the batch
 *     stored, the session's last sequence unchanged, and the same batch
 *     appended again works;
 *   - reads (a page of events, the session list, one session, a reader's
 *     own opening): a clean error, outputs untouched, and the same read
 *     again gives what it would have.
 * "Clean" is ERR_NOMEM with err saying so, whether our allocation failed
 * or SQLite's (journal.c maps SQLITE_NOMEM).  Only the calling thread's
 * allocations fail: an append runs on it when the writer is idle
 * (run_alone() in journal.c), as it is here; the writer thread's own
 * group commits are not covered. */
#include "base/err.h"
#include "journal/journal.h"
#include "journal/migrations.h"

#include "oom_alloc.h"

#include <dirent.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h> /* cmocka needs these three first */
#include <cmocka.h>

/* ---- fixture --------------------------------------------------------------- */

struct fx {
    char dir[512];
    char path[600];
    journal_t *j;
    unsigned long serial; /* names the sessions of each attempt */
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
    snprintf(f->dir, sizeof f->dir, "%s/oom-journal-XXXXXX", base);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/journal.db", f->dir);
    *state = f;
    return 0;
}

static void fx_remove_files(struct fx *f)
{
    DIR *d = opendir(f->dir);
    if (!d)
        return;
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

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    journal_close(f->j);
    fx_remove_files(f);
    if (rmdir(f->dir) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

static void fx_open(struct fx *f)
{
    struct err e;
    err_clear(&e);
    int rc = journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &f->j, &e);
    if (rc)
        fail_msg("journal_open: %s", e.msg);
}

/* The failure the journal must report when memory ran out. */
static void expect_clean(const char *what, int rc, const struct err *e)
{
    if (rc != ERR_NOMEM)
        fail_msg("%s at N=%lu%s: %s (%s)", what, oom_n(), oom_sticky() ? " (sticky)" : "",
                 err_name(rc), e->msg);
    if (e->code != rc)
        fail_msg("%s at N=%lu: returned %s but err says %s", what, oom_n(), err_name(rc),
                 err_name(e->code));
}

/* ---- batches ---------------------------------------------------------------- */

static const struct journal_session_row ROW = {
    .agent = "mock",
    .agent_mode = "build",
    .permission_mode = "default",
    .model = "mock-1",
    .agent_version = "1.0.0",
    .working_dir = "/work",
};

#define EVS 3

struct evs {
    struct journal_event e[EVS];
    char text[EVS][2][200];
    struct journal_alias alias;
};

static void evs_make(struct evs *v, const char *sid, uint64_t first)
{
    for (size_t i = 0; i < EVS; i++) {
        uint64_t seq = first + i;
        snprintf(v->text[i][0], sizeof v->text[i][0],
                 "{\"sequence\":%llu,\"session_id\":\"%s\",\"type\":\"item.delta\","
                 "\"data\":{\"delta\":\"h\\u00e9llo\"},\"raw\":null}",
                 (unsigned long long)seq, sid);
        snprintf(v->text[i][1], sizeof v->text[i][1], "{\"native\":%llu}",
                 (unsigned long long)seq);
        v->e[i] = (struct journal_event){
            .sequence = seq,
            .type = "item.delta",
            .json = v->text[i][0],
            .json_len = strlen(v->text[i][0]),
            .raw = v->text[i][1],
            .raw_len = strlen(v->text[i][1]),
            .turn_end = i == EVS - 1,
        };
    }
    v->alias = (struct journal_alias){"native-parent", "itm_9"};
}

static struct journal_batch batch_of(const char *sid, struct evs *v, int create)
{
    return (struct journal_batch){
        .session_id = sid,
        .create = create ? &ROW : NULL,
        .events = v->e,
        .n_events = EVS,
        .native_session_id = "native-1",
        .adapter_state = "{\"state\":1}",
        .aliases = &v->alias,
        .n_aliases = 1,
    };
}

static void append_ok(journal_t *j, const char *sid, uint64_t first, int create)
{
    struct evs v;
    evs_make(&v, sid, first);
    struct journal_batch b = batch_of(sid, &v, create);
    struct err e;
    err_clear(&e);
    if (journal_append(j, &b, &e) != 0)
        fail_msg("append to %s: %s", sid, e.msg);
}

/* Counts the session's events through a fresh read-only view. */
static int count_cb(void *arg, uint64_t sequence, const char *json, size_t json_len,
                    const char *raw, size_t raw_len, int turn_end)
{
    (void)json;
    (void)json_len;
    (void)raw;
    (void)raw_len;
    (void)turn_end;
    uint64_t *n = arg;
    assert_true(sequence == *n + 1);
    (*n)++;
    return 0;
}

static uint64_t stored_events(journal_t *j, const char *sid)
{
    struct err e;
    journal_reader_t *r = journal_reader_for_thread(j, &e);
    if (!r)
        fail_msg("reader: %s", e.msg);
    uint64_t n = 0;
    if (journal_read_events(r, sid, 0, 0, count_cb, &n, NULL, &e) < 0)
        fail_msg("read: %s", e.msg);
    return n;
}

/* ---- open ------------------------------------------------------------------- */

static int open_attempt(void *arg)
{
    struct fx *f = arg;
    fx_remove_files(f);
    journal_t *j = NULL;
    struct err e;
    err_clear(&e);
    oom_arm();
    int rc = journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &j, &e);
    int fired = oom_disarm();
    if (rc) {
        assert_true(fired);
        expect_clean("journal_open", rc, &e);
        assert_null(j);
        /* Opening again works, and the schema is whole. */
        err_clear(&e);
        rc = journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &j, &e);
        if (rc)
            fail_msg("journal_open after a failed one: %s", e.msg);
    }
    assert_int_equal(journal_schema_version(j), migrations_all[migrations_count - 1].version);
    append_ok(j, "after-open", 1, 1);
    journal_close(j);
    return fired;
}

static void test_open(void **state)
{
    struct fx *f = *state;
    /* A fresh file runs every migration: about 1,800 allocations, most of
     * them SQLite parsing the schema, and each attempt syncs the file.  Every
     * N up to 20, then every 97th, reaches each phase of the open and keeps
     * the test short under valgrind; SJ_OOM_FULL=1 tries every N.  The
     * existing-file and read-only opens below are sampled the same way. */
    oom_loop_sampled("journal_open (new file)", open_attempt, f, 20000, 20, 97);
}

/* Opening an existing journal: no migration, the watermarks are loaded. */
static int reopen_attempt(void *arg)
{
    struct fx *f = arg;
    journal_t *j = NULL;
    struct err e;
    err_clear(&e);
    oom_arm();
    int rc = journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &j, &e);
    int fired = oom_disarm();
    if (rc) {
        assert_true(fired);
        expect_clean("journal_open (existing)", rc, &e);
        assert_null(j);
        rc = journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &j, &e);
        if (rc)
            fail_msg("journal_open after a failed one: %s", e.msg);
    }
    for (int i = 0; i < 5; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "pre-%d", i);
        assert_true(journal_last_sequence(j, sid) == EVS);
    }
    journal_close(j);
    return fired;
}

static void test_reopen(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    for (int i = 0; i < 5; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "pre-%d", i);
        append_ok(f->j, sid, 1, 1);
    }
    journal_close(f->j);
    f->j = NULL;
    oom_loop_sampled("journal_open (existing file)", reopen_attempt, f, 20000, 20, 41);
}

/* ---- append ----------------------------------------------------------------- */

static int append_attempt(void *arg, int create)
{
    struct fx *f = arg;
    char sid[32];
    snprintf(sid, sizeof sid, "%s-%lu", create ? "create" : "append", ++f->serial);
    uint64_t first = 1;
    if (!create) {
        append_ok(f->j, sid, 1, 1);
        first = EVS + 1;
    }
    struct evs v;
    evs_make(&v, sid, first);
    struct journal_batch b = batch_of(sid, &v, create);
    struct err e;
    err_clear(&e);
    oom_arm();
    int rc = journal_append(f->j, &b, &e);
    int fired = oom_disarm();
    if (rc) {
        assert_true(fired);
        expect_clean(create ? "append with create" : "append", rc, &e);
        /* Nothing of the batch is stored or counted. */
        assert_int_equal(journal_session_exists(f->j, sid), !create);
        assert_true(journal_last_sequence(f->j, sid) == first - 1);
        assert_true(stored_events(f->j, sid) == first - 1);
        /* The same batch goes in now. */
        err_clear(&e);
        rc = journal_append(f->j, &b, &e);
        if (rc)
            fail_msg("append after a failed one: %s (%s)", err_name(rc), e.msg);
    }
    assert_true(journal_last_sequence(f->j, sid) == first + EVS - 1);
    assert_true(stored_events(f->j, sid) == first + EVS - 1);
    /* And the next one follows it. */
    append_ok(f->j, sid, first + EVS, 0);
    assert_true(stored_events(f->j, sid) == first + 2 * EVS - 1);
    return fired;
}

static int append_create_attempt(void *arg)
{
    return append_attempt(arg, 1);
}

static int append_only_attempt(void *arg)
{
    return append_attempt(arg, 0);
}

static void test_append(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    oom_loop("journal_append (create + events)", append_create_attempt, f, 5000);
    oom_loop("journal_append (events)", append_only_attempt, f, 5000);
}

/* ---- reads ------------------------------------------------------------------ */

struct page {
    char text[4096];
    size_t len;
};

static int page_cb(void *arg, uint64_t sequence, const char *json, size_t json_len,
                   const char *raw, size_t raw_len, int turn_end)
{
    struct page *p = arg;
    int n = snprintf(p->text + p->len, sizeof p->text - p->len, "%llu:%d:%.*s:%.*s\n",
                     (unsigned long long)sequence, turn_end, (int)json_len, json,
                     raw ? (int)raw_len : 4, raw ? raw : "null");
    assert_true(n > 0 && (size_t)n < sizeof p->text - p->len);
    p->len += (size_t)n;
    return 0;
}

struct read_fx {
    struct fx *f;
    struct page want;
    char sessions_want[1024];
};

static int read_page_attempt(void *arg)
{
    struct read_fx *r = arg;
    struct err e;
    journal_reader_t *rd = journal_reader_for_thread(r->f->j, &e);
    assert_non_null(rd);
    struct page got = {.len = 0};
    int more = -1;
    err_clear(&e);
    oom_arm();
    int rc = journal_read_events(rd, "read-1", 1, 4, page_cb, &got, &more, &e);
    int fired = oom_disarm();
    if (rc) {
        assert_true(fired);
        expect_clean("journal_read_events", rc, &e);
        got.len = 0;
        got.text[0] = '\0';
        rc = journal_read_events(rd, "read-1", 1, 4, page_cb, &got, &more, &e);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(more, 1);
    assert_string_equal(got.text, r->want.text);
    return fired;
}

static int list_cb(void *arg, const struct journal_session_info *s)
{
    char *out = arg;
    size_t len = strlen(out);
    snprintf(out + len, 1024 - len, "%s/%s/%s/%llu/%d\n", s->session_id, s->agent,
             s->native_session_id ? s->native_session_id : "-",
             (unsigned long long)s->last_sequence, s->ended);
    return 0;
}

static int list_attempt(void *arg)
{
    struct read_fx *r = arg;
    struct err e;
    journal_reader_t *rd = journal_reader_for_thread(r->f->j, &e);
    assert_non_null(rd);
    char got[1024] = "";
    err_clear(&e);
    oom_arm();
    int rc = journal_list_sessions(rd, list_cb, got, &e);
    int fired = oom_disarm();
    if (rc) {
        assert_true(fired);
        expect_clean("journal_list_sessions", rc, &e);
        got[0] = '\0';
        rc = journal_list_sessions(rd, list_cb, got, &e);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(got, r->sessions_want);
    return fired;
}

static int get_session_attempt(void *arg)
{
    struct read_fx *r = arg;
    struct err e;
    journal_reader_t *rd = journal_reader_for_thread(r->f->j, &e);
    assert_non_null(rd);
    struct journal_session_info s;
    err_clear(&e);
    oom_arm();
    int rc = journal_get_session(rd, "read-1", &s, &e);
    int fired = oom_disarm();
    if (rc) {
        assert_true(fired);
        expect_clean("journal_get_session", rc, &e);
        /* Nothing to free: the info is left empty. */
        assert_null(s.session_id);
        assert_null(s.agent);
        rc = journal_get_session(rd, "read-1", &s, &e);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(s.session_id, "read-1");
    assert_string_equal(s.agent, "mock");
    assert_string_equal(s.model, "mock-1");
    assert_null(s.variant);
    assert_string_equal(s.native_session_id, "native-1");
    assert_string_equal(s.adapter_state, "{\"state\":1}");
    assert_true(s.last_sequence == 3 * EVS);
    journal_session_info_clear(&s);
    return fired;
}

/* A reading tool's path: a read-only open, then its thread's reader. */
static int readonly_attempt(void *arg)
{
    struct read_fx *r = arg;
    journal_t *j = NULL;
    struct err e;
    err_clear(&e);
    oom_arm();
    int rc = journal_open_readonly(r->f->path, &j, &e);
    journal_reader_t *rd = rc ? NULL : journal_reader_for_thread(j, &e);
    if (!rc && !rd)
        rc = e.code;
    int fired = oom_disarm();
    if (rc) {
        assert_true(fired);
        expect_clean("journal_open_readonly + reader", rc, &e);
        journal_close(j);
        j = NULL;
        rc = journal_open_readonly(r->f->path, &j, &e);
        assert_int_equal(rc, 0);
        rd = journal_reader_for_thread(j, &e);
    }
    assert_non_null(rd);
    assert_true(journal_last_sequence(j, "read-1") == 3 * EVS);
    struct page got = {.len = 0};
    assert_int_equal(journal_read_events(rd, "read-1", 1, 4, page_cb, &got, NULL, &e), 0);
    assert_string_equal(got.text, r->want.text);
    journal_close(j);
    return fired;
}

static void test_reads(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    append_ok(f->j, "read-1", 1, 1);
    append_ok(f->j, "read-1", EVS + 1, 0);
    append_ok(f->j, "read-1", 2 * EVS + 1, 0);
    append_ok(f->j, "read-2", 1, 1);
    struct read_fx r = {.f = f};
    struct err e;
    journal_reader_t *rd = journal_reader_for_thread(f->j, &e);
    assert_non_null(rd);
    assert_int_equal(journal_read_events(rd, "read-1", 1, 4, page_cb, &r.want, NULL, &e), 0);
    assert_int_equal(journal_list_sessions(rd, list_cb, r.sessions_want, &e), 0);
    assert_non_null(strstr(r.sessions_want, "read-1/mock/native-1/9/0"));

    oom_loop("journal_read_events (a page)", read_page_attempt, &r, 5000);
    oom_loop("journal_list_sessions", list_attempt, &r, 5000);
    oom_loop("journal_get_session", get_session_attempt, &r, 5000);
    oom_loop_sampled("journal_open_readonly + reader", readonly_attempt, &r, 20000, 20, 47);
}

int main(void)
{
    oom_init();
    /* SQLite's own start-up is not what is tested: done once, unarmed. */
    if (sqlite3_initialize() != SQLITE_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reopen, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_append, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reads, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
