/* Integration tests of `sandbox-journal export` to a real PostgreSQL
 * (tests/servers/start-postgres.sh, started by scripts/test.sh): a full
 * export matches the journal row for row and a second sends nothing; an
 * export killed with SIGKILL between the target's commit and the checkpoint
 * (and at a random point) resumes with nothing missing and nothing twice;
 * --follow picks new events up within a second and survives the server
 * being stopped and started; the server's --export-to ships as it commits;
 * bad input leaves the journal byte for byte as it was. */
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
    char url[512];
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    sj_fresh_dir(f->dir, sizeof f->dir, "export-pg");
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    if (f->url[0])
        sjx_pg_drop_db(f->url);
    free(f);
    return 0;
}

static void fresh_target(struct fx *f, const char *tag)
{
    sjx_pg_fresh_db(tag, f->url, sizeof f->url);
}

/* 0 until the exporter has created the table. */
static long long target_events(const struct fx *f)
{
    if (!sjx_pg_int(f->url, "SELECT count(*) FROM pg_tables WHERE tablename = 'sj_events'"))
        return 0;
    return sjx_pg_int(f->url, "SELECT count(*) FROM sj_events");
}

/* Waits until the target has at least `n` events; the time it took. */
static long long wait_target(const struct fx *f, long long n, int timeout_ms)
{
    long long t0 = sjx_now_ms();
    while (target_events(f) < n) {
        if (sjx_now_ms() - t0 > timeout_ms)
            fail_msg("postgres still has %lld of %lld events after %d ms", target_events(f), n,
                     timeout_ms);
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
    sjx_assert_pg_matches(f->url, f->dir);
    assert_int_equal(sjx_journal_int(f->dir, "SELECT sum(last_sequence) FROM export_checkpoints"),
                     7200);
    assert_int_equal(sjx_pg_int(f->url, "SELECT max(version) FROM sj_schema_versions"), 1);

    /* a second export sends nothing and changes nothing */
    long long stamp = sjx_pg_int(f->url, "SELECT extract(epoch from max(exported_at))*1000000 "
                                         "FROM sj_sessions");
    assert_int_equal(sjx_run(args, NULL, &out), 0);
    assert_non_null(strstr(out, "exported 0 events (0 batches"));
    free(out);
    assert_int_equal(target_events(f), 7200);
    assert_int_equal(sjx_pg_int(f->url, "SELECT extract(epoch from max(exported_at))*1000000 "
                                        "FROM sj_sessions"),
                     stamp);

    /* new events: only they travel */
    sjx_append(f->dir, "s-7", 5);
    sjx_append(f->dir, "late", 3);
    assert_int_equal(sjx_run(args, NULL, &out), 0);
    assert_non_null(strstr(out, "exported 8 events (1 batches, 2 sessions"));
    free(out);
    sjx_assert_pg_matches(f->url, f->dir);

    /* --session takes only those; --quiet prints nothing */
    sjx_append(f->dir, "s-1", 2);
    sjx_append(f->dir, "s-2", 2);
    const char *one[] = {"export", "--to", f->url, "--data-dir", f->dir, "--session", "s-1",
                         "--quiet", NULL};
    assert_int_equal(sjx_run(one, NULL, &out), 0);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(target_events(f), 7210);
    assert_int_equal(sjx_run(args, NULL, NULL), 0);
    sjx_assert_pg_matches(f->url, f->dir);
}

/* Kills the export with SIGKILL once the target holds `at_least` events;
 * returns what the target held then. */
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
            fail_msg("the export never got %lld events to postgres", at_least);
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
    /* The exporter sleeps after each confirmed batch, before its checkpoint:
     * killing it there leaves the target ahead of the journal. */
    const char *env[] = {"SJ_TEST_EXPORT_PAUSE_MS=3000", NULL};
    long long have = kill_export_midway(f, env, 1000, "1000");
    assert_true(have >= 1000 && have < 5000);
    assert_int_equal(sjx_journal_int(f->dir, "SELECT count(*) FROM export_checkpoints"), 0);

    char *out = NULL;
    const char *args[] = {"export", "--to", f->url, "--data-dir", f->dir, NULL};
    assert_int_equal(sjx_run(args, NULL, &out), 0);
    /* what the dead run had committed was found and not sent again */
    char want[64];
    snprintf(want, sizeof want, "exported %lld events", 5000 - have);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "already there"));
    free(out);
    sjx_assert_pg_matches(f->url, f->dir);
    assert_int_equal(sjx_journal_int(f->dir, "SELECT sum(last_sequence) FROM export_checkpoints"),
                     5000);
}

static void test_kill_anywhere(void **state)
{
    struct fx *f = *state;
    fresh_target(f, "killany");
    sjx_fill(f->dir, "r", 40, 150); /* 6000 events */
    kill_export_midway(f, NULL, 1, "500");
    const char *args[] = {"export", "--to", f->url, "--data-dir", f->dir, NULL};
    assert_int_equal(sjx_run(args, NULL, NULL), 0);
    sjx_assert_pg_matches(f->url, f->dir);
    /* and once more: nothing left to send */
    char *out = NULL;
    assert_int_equal(sjx_run(args, NULL, &out), 0);
    assert_non_null(strstr(out, "exported 0 events"));
    free(out);
}

static void test_follow_and_target_restart(void **state)
{
    struct fx *f = *state;
    const char *pg_dir = sjx_env("PGCI_DIR");
    fresh_target(f, "follow");
    sjx_fill(f->dir, "f", 3, 10);
    char log[700];
    snprintf(log, sizeof log, "%s/follow.log", f->dir);
    const char *args[] = {"export", "--to", f->url, "--data-dir", f->dir, "--follow", NULL};
    pid_t pid = sjx_spawn(args, NULL, log);
    wait_target(f, 30, EXPORT_WAIT_MS);

    /* a commit by another process reaches the target within a second */
    sjx_append(f->dir, "f-new", 4);
    long long took = wait_target(f, 34, 5000);
    fprintf(stderr, "follow: new events in postgres after %lld ms\n", took);
    assert_true(took < (sjx_slow() ? 5000 : 1000));

    /* the target goes away, events keep coming, the target returns */
    sjx_server_script("restart-postgres.sh", pg_dir, "stop");
    sjx_append(f->dir, "f-new", 6);
    sjx_append(f->dir, "f-0", 5);
    sj_sleep_ms(700); /* let the exporter fail and back off */
    sjx_server_script("restart-postgres.sh", pg_dir, "start");
    took = wait_target(f, 45, EXPORT_WAIT_MS);
    fprintf(stderr, "follow: caught up %lld ms after postgres returned\n", took);
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
    sjx_assert_pg_matches(f->url, f->dir);
}

static void test_server_exports_as_it_commits(void **state)
{
    struct fx *f = *state;
    fresh_target(f, "server");
    const char *extra[] = {"--export-to", f->url, NULL};
    struct sj_server s;
    if (sj_server_start(&s, f->dir, extra) != 0)
        fail_msg("server did not start");
    json_t *created = sj_create_session(&s, "live", NULL);
    json_decref(created);
    sj_send_message(&s, "live", "hello");
    json_t *events = sj_wait_events(&s, "live", 4, 10000);
    size_t n = json_array_size(events);
    json_decref(events);
    long long took = wait_target(f, (long long)n, 5000);
    fprintf(stderr, "server: %zu events in postgres after %lld ms\n", n, took);
    assert_true(took < (sjx_slow() ? 5000 : 1000));
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
    sjx_assert_pg_matches(f->url, f->dir);
}

static void test_bad_input_changes_nothing(void **state)
{
    struct fx *f = *state;
    sjx_fill(f->dir, "b", 2, 5);
    char db[700];
    snprintf(db, sizeof db, "%s/journal.db", f->dir);
    size_t len0 = 0, len1 = 0;
    char *before = sjx_file(db, &len0);
    char *out = NULL;

    const char *bad_url[] = {"export", "--to", "postgres://u:hunter2@127.0.0.1:99999/x",
                             "--data-dir", f->dir, NULL};
    assert_int_equal(sjx_run(bad_url, NULL, &out), 2);
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "port"));
    assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1); /* one line */
    free(out);

    /* a port nothing listens on: refused at once */
    const char *unreachable[] = {"export", "--to", "postgres://u:hunter2@127.0.0.1:1/x",
                                 "--data-dir", f->dir, NULL};
    assert_int_equal(sjx_run(unreachable, NULL, &out), 1);
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "u:***@"));
    assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
    free(out);

    char missing[700];
    snprintf(missing, sizeof missing, "%s/nope", f->dir);
    const char *no_dir[] = {"export", "--to", "jsonl:/dev/null", "--data-dir", missing, NULL};
    assert_int_equal(sjx_run(no_dir, NULL, &out), 1);
    assert_non_null(strstr(out, "no journal"));
    free(out);
    assert_int_equal(access(missing, F_OK), -1); /* not created either */

    const char *no_target[] = {"export", "--data-dir", f->dir, NULL};
    assert_int_equal(sjx_run(no_target, NULL, NULL), 2);
    const char *bad_batch[] = {"export", "--to", "jsonl:/dev/null", "--batch", "0", NULL};
    assert_int_equal(sjx_run(bad_batch, NULL, NULL), 2);

    char *after = sjx_file(db, &len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(before);
    free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_export_then_nothing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kill_between_commit_and_checkpoint, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kill_anywhere, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_follow_and_target_restart, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_server_exports_as_it_commits, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_changes_nothing, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
