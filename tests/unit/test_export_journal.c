/* Unit tests of what the journal offers exporters and importers: export
 * checkpoints (raised only, refused for unknown sessions without harming
 * the group, reset), the scan by cursor, the resume state, "wake me on any
 * commit", data_version, and session rows imported with their creation
 * time.  Each test gets a fresh directory under $SJ_TEST_TMPDIR. */
#include "base/err.h"
#include "events/event.h"
#include "journal/journal.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <cmocka.h>

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
    snprintf(f->dir, sizeof f->dir, "%s/export-journal-XXXXXX", base);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/journal.db", f->dir);
    struct err e;
    if (journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &f->j, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        free(f);
        return -1;
    }
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

/* Appends events first..first+n-1 to `sid` (creating it when first == 1). */
static void append(journal_t *j, const char *sid, uint64_t first, size_t n)
{
    struct journal_event ev[16];
    char *texts[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        json_t *data = event_delta_data("itm_1", NULL, "x");
        size_t len = 0;
        texts[i] = event_serialize(first + i, "2026-11-23T11:30:00.000000Z", sid, NULL, 0,
                                   "agent", "item.delta", data, &len);
        json_decref(data);
        assert_non_null(texts[i]);
        ev[i] = (struct journal_event){.sequence = first + i, .type = "item.delta",
                                       .json = texts[i], .json_len = len};
    }
    struct journal_session_row row = {.agent = "mock", .agent_mode = "build",
                                      .permission_mode = "default"};
    struct journal_batch b = {.session_id = sid, .create = first == 1 ? &row : NULL,
                              .events = ev, .n_events = n};
    struct err e;
    int rc = journal_append(j, &b, &e);
    if (rc)
        fail_msg("append %s: %s", sid, e.msg);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
}

struct seen {
    char ids[8][32];
    uint64_t last[8];
    uint64_t done[8];
    size_t n;
};

static int collect(void *arg, const char *sid, uint64_t last, uint64_t checkpoint)
{
    struct seen *s = arg;
    assert_true(s->n < 8);
    snprintf(s->ids[s->n], sizeof s->ids[s->n], "%s", sid);
    s->last[s->n] = last;
    s->done[s->n] = checkpoint;
    s->n++;
    return 0;
}

static struct seen scan(journal_t *j, const char *target, int64_t *cursor)
{
    struct seen s;
    memset(&s, 0, sizeof s);
    struct err e;
    journal_reader_t *r = journal_reader_for_thread(j, &e);
    assert_non_null(r);
    int rc = journal_export_scan(r, target, cursor, collect, &s, &e);
    if (rc)
        fail_msg("scan: %s", e.msg);
    return s;
}

static void test_checkpoints_and_scan(void **state)
{
    struct fx *f = *state;
    append(f->j, "a", 1, 3);
    append(f->j, "b", 1, 2);
    int64_t cursor = 0;
    struct seen s = scan(f->j, "pg://x", &cursor);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ids[0], "a");
    assert_int_equal(s.last[0], 3);
    assert_int_equal(s.done[0], 0);
    assert_int_equal(cursor, 5); /* five events, rowids 1..5 */

    struct journal_export_mark m[] = {{"a", 3}, {"b", 1}};
    struct err e;
    assert_int_equal(journal_export_advance(f->j, "pg://x", NULL, m, 2, &e), 0);
    int64_t fresh = 0;
    s = scan(f->j, "pg://x", &fresh);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.ids[0], "b");
    assert_int_equal(s.done[0], 1);

    /* a checkpoint is only ever raised */
    struct journal_export_mark back = {"a", 1};
    assert_int_equal(journal_export_advance(f->j, "pg://x", NULL, &back, 1, &e), 0);
    fresh = 0;
    s = scan(f->j, "pg://x", &fresh);
    assert_int_equal(s.n, 1);

    /* another target has its own checkpoints */
    fresh = 0;
    s = scan(f->j, "ch://y", &fresh);
    assert_int_equal(s.n, 2);

    /* the cursor: only sessions with events committed since */
    s = scan(f->j, "pg://x", &cursor);
    assert_int_equal(s.n, 0);
    append(f->j, "a", 4, 2);
    s = scan(f->j, "pg://x", &cursor);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.ids[0], "a");
    assert_int_equal(s.last[0], 5);
    assert_int_equal(s.done[0], 3);
    assert_int_equal(cursor, 7);

    /* reset forgets them all */
    assert_int_equal(journal_export_reset(f->j, "pg://x", &e), 0);
    fresh = 0;
    s = scan(f->j, "pg://x", &fresh);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.done[0], 0);
    assert_int_equal(s.done[1], 0);
}

static void test_unknown_session_refused_alone(void **state)
{
    struct fx *f = *state;
    append(f->j, "a", 1, 2);
    struct journal_export_mark m[] = {{"a", 2}, {"ghost", 1}};
    struct err e;
    err_clear(&e);
    assert_int_equal(journal_export_advance(f->j, "t", NULL, m, 2, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "ghost"));
    /* nothing of the request was stored, and the journal still writes */
    int64_t cursor = 0;
    struct seen s = scan(f->j, "t", &cursor);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.done[0], 0);
    append(f->j, "a", 3, 1);
    assert_int_equal(journal_export_advance(f->j, "t", NULL, m, 1, &e), 0);
    assert_int_equal(journal_export_advance(f->j, "", NULL, m, 1, &e), ERR_INVALID);
    struct journal_export_mark huge = {"a", UINT64_MAX};
    assert_int_equal(journal_export_advance(f->j, "t", NULL, &huge, 1, &e), ERR_INVALID);
}

static void test_state(void **state)
{
    struct fx *f = *state;
    append(f->j, "a", 1, 1);
    struct err e;
    journal_reader_t *r = journal_reader_for_thread(f->j, &e);
    char sentinel[] = "unset";
    char *st = sentinel;
    assert_int_equal(journal_export_state(r, "jsonl:/x", &st, &e), 0);
    assert_null(st);
    struct journal_export_mark m = {"a", 1};
    assert_int_equal(journal_export_advance(f->j, "jsonl:/x", "1234", &m, 1, &e), 0);
    assert_int_equal(journal_export_state(r, "jsonl:/x", &st, &e), 0);
    assert_string_equal(st, "1234");
    free(st);
    /* NULL keeps the state; a reset drops it */
    assert_int_equal(journal_export_advance(f->j, "jsonl:/x", NULL, &m, 1, &e), 0);
    assert_int_equal(journal_export_state(r, "jsonl:/x", &st, &e), 0);
    assert_string_equal(st, "1234");
    free(st);
    assert_int_equal(journal_export_reset(f->j, "jsonl:/x", &e), 0);
    assert_int_equal(journal_export_state(r, "jsonl:/x", &st, &e), 0);
    assert_null(st);
}

struct any_waiter {
    struct journal_waiter w;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int woken;
};

static void any_wake(struct journal_waiter *w)
{
    struct any_waiter *a = (struct any_waiter *)(void *)w;
    pthread_mutex_lock(&a->lock);
    a->woken++;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

static void test_park_any(void **state)
{
    struct fx *f = *state;
    struct any_waiter a;
    memset(&a, 0, sizeof a);
    assert_int_equal(pthread_mutex_init(&a.lock, NULL), 0);
    assert_int_equal(pthread_cond_init(&a.cond, NULL), 0);
    a.w.wake = any_wake;

    uint64_t seen = journal_wake_count(f->j);
    assert_int_equal(journal_park_any(f->j, seen, &a.w), 0);
    /* a commit of any session wakes it, once */
    append(f->j, "x", 1, 1);
    pthread_mutex_lock(&a.lock);
    for (int i = 0; i < 200 && !a.woken; i++) {
        struct timespec at;
        clock_gettime(CLOCK_REALTIME, &at);
        at.tv_nsec += 10 * 1000000L;
        if (at.tv_nsec >= 1000000000L) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&a.cond, &a.lock, &at);
        assert_true(rc == 0 || rc == ETIMEDOUT);
    }
    assert_int_equal(a.woken, 1);
    pthread_mutex_unlock(&a.lock);
    assert_int_equal(journal_unpark(f->j, &a.w), 0);

    /* a commit since `seen` means no parking at all */
    assert_int_equal(journal_park_any(f->j, seen, &a.w), 1);
    /* taken back before any commit: no wake */
    seen = journal_wake_count(f->j);
    assert_int_equal(journal_park_any(f->j, seen, &a.w), 0);
    assert_int_equal(journal_park_any(f->j, seen, &a.w), ERR_INVALID); /* already parked */
    assert_int_equal(journal_unpark(f->j, &a.w), 1);
    append(f->j, "x", 2, 1);
    assert_int_equal(a.woken, 1);
    /* wake_all (shutdown) reaches these waiters too */
    seen = journal_wake_count(f->j);
    assert_int_equal(journal_park_any(f->j, seen, &a.w), 0);
    journal_wake_all(f->j, 0);
    assert_int_equal(a.woken, 2);
    /* A wake_all between looking and parking is not missed either: the
     * state it announces (a process's exit, set after its commit woke
     * everyone) may have been read stale just before. */
    seen = journal_wake_count(f->j);
    journal_wake_all(f->j, 0);
    assert_int_equal(journal_park_any(f->j, seen, &a.w), 1);
    pthread_cond_destroy(&a.cond);
    pthread_mutex_destroy(&a.lock);
}

static void test_data_version(void **state)
{
    struct fx *f = *state;
    struct err e;
    journal_reader_t *r = journal_reader_for_thread(f->j, &e);
    assert_non_null(r);
    uint64_t before = 0, same = 0, after = 0;
    assert_int_equal(journal_data_version(r, &before, &e), 0);
    assert_int_equal(journal_data_version(r, &same, &e), 0);
    assert_true(before == same);
    append(f->j, "v", 1, 1); /* the writer is another connection */
    assert_int_equal(journal_data_version(r, &after, &e), 0);
    assert_true(after != before);
}

static void test_import_row_keeps_created_at(void **state)
{
    struct fx *f = *state;
    struct journal_session_row row = {.agent = "mock", .agent_mode = "build",
                                      .permission_mode = "default",
                                      .created_at = "2020-01-02T03:04:05.678Z"};
    struct journal_batch b = {.session_id = "old", .create = &row};
    struct err e;
    assert_int_equal(journal_append(f->j, &b, &e), 0);
    journal_reader_t *r = journal_reader_for_thread(f->j, &e);
    struct journal_session_info info;
    assert_int_equal(journal_get_session(r, "old", &info, &e), 0);
    assert_string_equal(info.created_at, "2020-01-02T03:04:05.678Z");
    journal_session_info_clear(&info);
    /* without one, the time of the commit */
    append(f->j, "new", 1, 1);
    assert_int_equal(journal_get_session(r, "new", &info, &e), 0);
    assert_int_equal(strncmp(info.created_at, "20", 2), 0);
    assert_string_not_equal(info.created_at, "2020-01-02T03:04:05.678Z");
    journal_session_info_clear(&info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_checkpoints_and_scan, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_session_refused_alone, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_state, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_park_any, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_data_version, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_import_row_keeps_created_at, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
