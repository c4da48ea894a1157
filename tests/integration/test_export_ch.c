/* Integration tests of `sandbox-journal export` to a real ClickHouse
 * (Debian's clickhouse-server, tests/servers/start-clickhouse.sh, started by
 * scripts/test.sh): a full export matches the journal row for row (read
 * with FINAL, and without: no copies at all) and a second sends nothing;
 * an export killed with SIGKILL between ClickHouse's commit and the
 * checkpoint, or anywhere, resumes with nothing missing and nothing twice;
 * --follow picks new events up within a second and survives the server
 * being stopped and started. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "export_fixture.h"
#include "server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define EXPORT_WAIT_MS 20000

struct fx {
    char dir[512];
    const char *base; /* $CLICKHOUSE_URL, http://127.0.0.1:PORT/ */
    char db[64];
    char url[600];    /* clickhouse+http://127.0.0.1:PORT/<db> */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    sj_fresh_dir(f->dir, sizeof f->dir, "export-ch");
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    if (f->db[0]) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", f->db);
        free(sjx_ch_query(f->base, sql));
    }
    free(f);
    return 0;
}

static void fresh_target(struct fx *f, const char *tag)
{
    f->base = sjx_env("CLICKHOUSE_URL");
    snprintf(f->db, sizeof f->db, "sjx_%s_%ld", tag, (long)getpid());
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", f->db);
    free(sjx_ch_query(f->base, sql));
    const char *hostport = strstr(f->base, "://");
    assert_non_null(hostport);
    size_t len = strcspn(hostport + 3, "/");
    snprintf(f->url, sizeof f->url, "clickhouse+http://%.*s/%s", (int)len, hostport + 3, f->db);
}

/* 0 until the exporter has created the table; copies counted once. */
static long long target_events(const struct fx *f)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count() FROM system.tables WHERE database = '%s' AND name = 'sj_events'",
             f->db);
    if (!sjx_ch_int(f->base, sql))
        return 0;
    snprintf(sql, sizeof sql, "SELECT count() FROM %s.sj_events FINAL", f->db);
    return sjx_ch_int(f->base, sql);
}

static long long wait_target(const struct fx *f, long long n, int timeout_ms)
{
    long long t0 = sjx_now_ms();
    while (target_events(f) < n) {
        if (sjx_now_ms() - t0 > timeout_ms)
            fail_msg("clickhouse still has %lld of %lld events after %d ms", target_events(f),
                     n, timeout_ms);
        sj_sleep_ms(10);
    }
    return sjx_now_ms() - t0;
}

static void test_full_export_then_nothing(void **state)
{
    struct fx *f = *state;
    fresh_target(f, "full");
    sjx_fill(f->dir, "s", 120, 60); /* 7200 events over 120 sessions */
    char *out = NULL;
    const char *args[] = {"export", "--to", f->url, "--data-dir", f->dir, "--batch", "1000",
                          NULL};
    assert_int_equal(sjx_run(args, NULL, &out), 0);
    assert_non_null(strstr(out, "exported 7200 events"));
    free(out);
    sjx_assert_ch_matches(f->base, f->db, f->dir, 1);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT max(version) FROM %s.sj_schema_versions", f->db);
    assert_int_equal(sjx_ch_int(f->base, sql), 1);

    /* a second export sends nothing */
    assert_int_equal(sjx_run(args, NULL, &out), 0);
    assert_non_null(strstr(out, "exported 0 events (0 batches"));
    free(out);
    sjx_assert_ch_matches(f->base, f->db, f->dir, 1);

    /* new events: only they travel */
    sjx_append(f->dir, "s-7", 5);
    sjx_append(f->dir, "late", 3);
    assert_int_equal(sjx_run(args, NULL, &out), 0);
    assert_non_null(strstr(out, "exported 8 events (1 batches, 2 sessions"));
    free(out);
    sjx_assert_ch_matches(f->base, f->db, f->dir, 1);

    /* the data column is compact JSON that 18.16's visitParam functions read */
    snprintf(sql, sizeof sql,
             "SELECT count() FROM %s.sj_events WHERE type = 'item.delta' AND "
             "visitParamExtractString(data, 'item_id') LIKE 'itm_%%'",
             f->db);
    assert_true(sjx_ch_int(f->base, sql) > 7000);
}

static long long kill_export_midway(struct fx *f, const char *const *env, long long at_least,
                                    const char *batch)
{
    char log[700];
    snprintf(log, sizeof log, "%s/export.log", f->dir);
    const char *args[] = {"export", "--to", f->url, "--data-dir", f->dir, "--batch", batch,
                          NULL};
    pid_t pid = sjx_spawn(args, env, log);
    long long t0 = sjx_now_ms(), have = 0;
    while ((have = target_events(f)) < at_least) {
        if (sjx_now_ms() - t0 > EXPORT_WAIT_MS) {
            kill(pid, SIGKILL);
            fail_msg("the export never got %lld events to clickhouse", at_least);
        }
        sj_sleep_ms(2);
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(sjx_wait(pid, 10000), -SIGKILL);
    return have;
}

static void test_kill_between_commit_and_checkpoint(void **state)
{
    struct fx *f = *state;
    fresh_target(f, "kill");
    sjx_fill(f->dir, "k", 50, 100); /* 5000 events */
    const char *env[] = {"SJ_TEST_EXPORT_PAUSE_MS=3000", NULL};
    long long have = kill_export_midway(f, env, 1000, "1000");
    assert_true(have >= 1000 && have < 5000);
    assert_int_equal(sjx_journal_int(f->dir, "SELECT count(*) FROM export_checkpoints"), 0);

    char *out = NULL;
    const char *args[] = {"export", "--to", f->url, "--data-dir", f->dir, NULL};
    assert_int_equal(sjx_run(args, NULL, &out), 0);
    char want[64];
    snprintf(want, sizeof want, "exported %lld events", 5000 - have);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "already there"));
    free(out);
    /* not even an unmerged copy: the restarted export asked first */
    sjx_assert_ch_matches(f->base, f->db, f->dir, 1);
}

static void test_kill_anywhere(void **state)
{
    struct fx *f = *state;
    fresh_target(f, "killany");
    sjx_fill(f->dir, "r", 40, 150); /* 6000 events */
    kill_export_midway(f, NULL, 1, "500");
    const char *args[] = {"export", "--to", f->url, "--data-dir", f->dir, NULL};
    assert_int_equal(sjx_run(args, NULL, NULL), 0);
    sjx_assert_ch_matches(f->base, f->db, f->dir, 1);
    char *out = NULL;
    assert_int_equal(sjx_run(args, NULL, &out), 0);
    assert_non_null(strstr(out, "exported 0 events"));
    free(out);
}

static void test_follow_and_target_restart(void **state)
{
    struct fx *f = *state;
    fresh_target(f, "follow");
    const char *ch_dir = sjx_env("CHCI_DIR");
    sjx_fill(f->dir, "f", 3, 10);
    char log[700];
    snprintf(log, sizeof log, "%s/follow.log", f->dir);
    const char *args[] = {"export", "--to", f->url, "--data-dir", f->dir, "--follow", NULL};
    pid_t pid = sjx_spawn(args, NULL, log);
    wait_target(f, 30, EXPORT_WAIT_MS);

    sjx_append(f->dir, "f-new", 4);
    long long took = wait_target(f, 34, 5000);
    fprintf(stderr, "follow: new events in clickhouse after %lld ms\n", took);
    assert_true(took < (sjx_slow() ? 5000 : 1000));

    sjx_server_script("restart-clickhouse.sh", ch_dir, "stop");
    sjx_append(f->dir, "f-new", 6);
    sjx_append(f->dir, "f-0", 5);
    sj_sleep_ms(700);
    sjx_server_script("restart-clickhouse.sh", ch_dir, "start");
    took = wait_target(f, 45, EXPORT_WAIT_MS);
    fprintf(stderr, "follow: caught up %lld ms after clickhouse returned\n", took);
    sjx_append(f->dir, "f-1", 2);
    wait_target(f, 47, 5000);

    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(sjx_wait(pid, 10000), 0);
    size_t len = 0;
    char *text = sjx_file(log, &len);
    text = realloc(text, len + 1);
    text[len] = '\0';
    fprintf(stderr, "%s", text);
    assert_non_null(strstr(text, "retrying"));
    assert_non_null(strstr(text, "target is back"));
    free(text);
    sjx_assert_ch_matches(f->base, f->db, f->dir, 1);
}

static void test_unreachable(void **state)
{
    struct fx *f = *state;
    sjx_fill(f->dir, "u", 1, 3);
    char *out = NULL;
    const char *args[] = {"export", "--to", "clickhouse+http://default:hunter2@127.0.0.1:1/x",
                          "--data-dir", f->dir, NULL};
    assert_int_equal(sjx_run(args, NULL, &out), 1);
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "default:***@"));
    assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
    free(out);
    assert_int_equal(sjx_journal_int(f->dir, "SELECT count(*) FROM export_targets"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_export_then_nothing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kill_between_commit_and_checkpoint, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kill_anywhere, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_follow_and_target_restart, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
