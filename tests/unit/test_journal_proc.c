/* Unit tests of the journal's process records and output chunks
 * (journal_proc.c, migration 0007): what is written reads back in sequence
 * order, per stream, by tail, after a reopen; the byte cap's deletion and
 * marker; removal; and chunks submitted without waiting commit in order. */
#include "journal/journal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h> /* cmocka needs these three first */
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
    snprintf(f->dir, sizeof f->dir, "%s/jproc-XXXXXX", base);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/journal.db", f->dir);
    struct err err;
    if (journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &f->j, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
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

/* What a read handed over: "seq:stream:data;" for each chunk. */
struct seen {
    char text[4096];
    size_t n;
};

static int collect(void *arg, const struct journal_proc_chunk *c)
{
    struct seen *s = arg;
    size_t len = strlen(s->text);
    snprintf(s->text + len, sizeof s->text - len, "%llu:%s:%.*s;",
             (unsigned long long)c->sequence, c->stream, (int)c->len, c->data);
    s->n++;
    return 0;
}

static void read_all(journal_t *j, const char *id, const char *stream, uint64_t after,
                     uint32_t limit, size_t max_bytes, struct seen *s, int *more)
{
    struct err err;
    memset(s, 0, sizeof *s);
    journal_reader_t *r = journal_reader_for_thread(j, &err);
    assert_non_null(r);
    assert_int_equal(journal_proc_read_logs(r, id, stream, after, limit, max_bytes, collect, s,
                                            more, &err),
                     0);
}

static void append(journal_t *j, const char *id, const char *info, uint64_t drop,
                   const struct journal_proc_chunk *c, size_t n)
{
    struct err err;
    struct journal_proc_write w = { .process_id = id, .info = info, .drop_through = drop,
                                    .chunks = c, .n_chunks = n };
    if (journal_proc_append(j, &w, &err) != 0)
        fail_msg("%s", err.msg);
}

static void test_chunks_read_back(void **state)
{
    struct fx *f = *state;
    struct journal_proc_chunk c[] = {
        { 1, "stdout", 10, "a", 1 }, { 2, "stderr", 11, "bb", 2 }, { 3, "stdout", 12, "c\0d", 3 },
    };
    append(f->j, "p1", "{\"id\":\"p1\",\"status\":\"running\"}", 0, c, 3);
    append(f->j, "p2", "{\"id\":\"p2\"}", 0, NULL, 0);
    struct seen s;
    int more = -1;
    read_all(f->j, "p1", NULL, 0, 0, 0, &s, &more);
    assert_string_equal(s.text, "1:stdout:a;2:stderr:bb;3:stdout:c;");
    assert_int_equal(more, 0);
    read_all(f->j, "p1", "stderr", 0, 0, 0, &s, NULL);
    assert_string_equal(s.text, "2:stderr:bb;");
    read_all(f->j, "p1", NULL, 1, 1, 0, &s, &more);
    assert_string_equal(s.text, "2:stderr:bb;");
    assert_int_equal(more, 1);
    /* the byte budget: the first chunk always, then no further past it */
    read_all(f->j, "p1", NULL, 0, 0, 2, &s, &more);
    assert_string_equal(s.text, "1:stdout:a;");
    assert_int_equal(more, 1);
    read_all(f->j, "p2", NULL, 0, 0, 0, &s, NULL);
    assert_int_equal(s.n, 0);

    struct err err;
    journal_reader_t *r = journal_reader_for_thread(f->j, &err);
    uint64_t after = 99;
    assert_int_equal(journal_proc_tail_after(r, "p1", NULL, 2, &after, &err), 0);
    assert_int_equal(after, 1);
    assert_int_equal(journal_proc_tail_after(r, "p1", "stdout", 1, &after, &err), 0);
    assert_int_equal(after, 2);
    assert_int_equal(journal_proc_tail_after(r, "p1", NULL, 10, &after, &err), 0);
    assert_int_equal(after, 0);
    assert_int_equal(journal_proc_tail_after(r, "p1", NULL, 0, &after, &err), 0);
    assert_int_equal(after, 3);
}

static int count_records(void *arg, const char *id, const char *info)
{
    struct seen *s = arg;
    size_t len = strlen(s->text);
    snprintf(s->text + len, sizeof s->text - len, "%s=%s;", id, info);
    s->n++;
    return 0;
}

static void test_records_survive_reopen_and_remove(void **state)
{
    struct fx *f = *state;
    struct journal_proc_chunk c = { 1, "pty", 5, "x", 1 };
    append(f->j, "p1", "{\"v\":1}", 0, &c, 1);
    append(f->j, "p1", "{\"v\":2}", 0, NULL, 0); /* replaces the record */
    append(f->j, "p2", "{\"v\":3}", 0, NULL, 0);
    journal_close(f->j);
    struct err err;
    assert_int_equal(journal_open(f->path, JOURNAL_DURABILITY_NORMAL, &f->j, &err), 0);
    struct seen s;
    memset(&s, 0, sizeof s);
    journal_reader_t *r = journal_reader_for_thread(f->j, &err);
    assert_int_equal(journal_proc_list(r, count_records, &s, &err), 0);
    assert_string_equal(s.text, "p1={\"v\":2};p2={\"v\":3};");
    read_all(f->j, "p1", NULL, 0, 0, 0, &s, NULL);
    assert_string_equal(s.text, "1:pty:x;");

    struct journal_proc_write rm = { .process_id = "p1", .remove = 1 };
    assert_int_equal(journal_proc_append(f->j, &rm, &err), 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(journal_proc_list(r, count_records, &s, &err), 0);
    assert_string_equal(s.text, "p2={\"v\":3};");
    read_all(f->j, "p1", NULL, 0, 0, 0, &s, NULL);
    assert_int_equal(s.n, 0);

    /* a removal that also writes is refused */
    struct journal_proc_write bad = { .process_id = "p2", .remove = 1, .info = "{}" };
    assert_int_equal(journal_proc_append(f->j, &bad, &err), ERR_INVALID);
}

static void test_drop_leaves_marker(void **state)
{
    struct fx *f = *state;
    struct journal_proc_chunk c[] = {
        { 1, "stdout", 1, "one", 3 }, { 2, "stdout", 2, "two", 3 }, { 3, "stdout", 3, "six", 3 },
    };
    append(f->j, "p", "{}", 0, c, 3);
    /* deletes 1 and 2; the marker takes sequence 2, then chunk 4 */
    struct journal_proc_chunk d[] = { { 2, "dropped", 4, "[6 dropped]", 11 },
                                      { 4, "stdout", 4, "new", 3 } };
    append(f->j, "p", NULL, 2, d, 2);
    struct seen s;
    read_all(f->j, "p", "stdout", 0, 0, 0, &s, NULL);
    assert_string_equal(s.text, "2:dropped:[6 dropped];3:stdout:six;4:stdout:new;");
}

struct order {
    int done;
    int rc;
};

static void on_done(void *arg, int rc, const struct err *err)
{
    (void)err; /* rc says it */
    struct order *o = arg;
    o->rc |= rc;
    o->done++;
}

static void test_submits_commit_in_order(void **state)
{
    struct fx *f = *state;
    struct order o = { 0, 0 };
    struct err err;
    append(f->j, "p", "{}", 0, NULL, 0);
    enum { N = 500 };
    for (uint64_t i = 1; i <= N; i++) {
        char data[16];
        int len = snprintf(data, sizeof data, "%llu,", (unsigned long long)i);
        struct journal_proc_chunk c = { i, "stdout", 0, data, (size_t)len };
        struct journal_proc_write w = { .process_id = "p", .chunks = &c, .n_chunks = 1 };
        assert_int_equal(journal_proc_submit(f->j, &w, on_done, &o, &err), 0);
    }
    /* an append waits for everything queued before it */
    append(f->j, "p", "{\"end\":1}", 0, NULL, 0);
    assert_int_equal(o.done, N);
    assert_int_equal(o.rc, 0);
    struct seen s;
    int more = 0;
    read_all(f->j, "p", NULL, N - 3, 0, 0, &s, &more);
    char want[128];
    snprintf(want, sizeof want, "%d:stdout:%d,;%d:stdout:%d,;%d:stdout:%d,;", N - 2, N - 2,
             N - 1, N - 1, N, N);
    assert_string_equal(s.text, want);
    struct journal_stats st;
    journal_get_stats(f->j, &st);
    assert_true(st.transactions <= N + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chunks_read_back, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_records_survive_reopen_and_remove, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_drop_leaves_marker, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_submits_commit_in_order, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
