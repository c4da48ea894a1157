/* Integration tests of the webhook export target (server --export-to
 * http://..., sandbox-journal export --to http://...), against the tests'
 * own receiver (tests/support/webhook_receiver.c) on 127.0.0.1, which
 * checks every Standard Webhooks signature with its own key.
 *
 *   - through faults (a third of the requests answered 503, every tenth
 *     held past the sender's timeout, every seventh taken with its answer
 *     lost), the receiver stopped and started
 *     again, and two kill -9s of the server (one inside the window between
 *     a confirmed delivery and its checkpoint), every event of every
 *     session arrives, in order per session, byte for byte what GET
 *     /events serves; an id delivered again carries the same body; no
 *     signature fails; GET /v1/exports shows the target caught up;
 *   - a wrong secret: every delivery is refused by the receiver (401), the
 *     command gives up and says so, and no password from the URL shows;
 *     the right secret then delivers every journal event exactly;
 *   - a short batch confirmed just before a kill -9 is sent again as it
 *     was, even when more events were committed meanwhile;
 *   - 410 Gone stops the target for good, and GET /v1/exports says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/base64.h"
#include "export_fixture.h"
#include "httpc.h"
#include "server.h"
#include "webhook_receiver.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_SESSIONS 6
#define N_EVENTS 40
#define BATCH "7"

static const unsigned char wh_key[24] = "sandbox-journal-test-key";

/* Writes whsec_<base64 key> into dir/name; the path goes to out. */
static void write_secret(const char *dir, const char *name, const unsigned char *key,
                         size_t len, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", dir, name);
    char b64[BASE64_ENCODED_SIZE(64)];
    base64_encode(key, len, b64);
    FILE *f = fopen(out, "w");
    assert_non_null(f);
    fprintf(f, "whsec_%s\n", b64);
    assert_int_equal(fclose(f), 0);
}

/* The events of one session as the receiver got them: text[seq] (exact
 * bytes), checking that overlapping deliveries agree byte for byte and
 * that each delivery's first sequence was at most one past what the
 * session had before it (in order: never a gap).  Returns the highest
 * sequence covered. */
static uint64_t collect(const struct wr_delivery *d, size_t n, const char *sid, char **text,
                        uint64_t cap)
{
    uint64_t covered = 0;
    for (size_t i = 0; i < n; i++) {
        if (!d[i].accepted || strcmp(d[i].session_id, sid) != 0)
            continue;
        if (d[i].first > covered + 1)
            fail_msg("session %s: delivery %s starts at %llu with only 1..%llu delivered",
                     sid, d[i].id, (unsigned long long)d[i].first,
                     (unsigned long long)covered);
        size_t *starts = NULL, *lens = NULL;
        long k = wr_split_events(d[i].body, d[i].body_len, &starts, &lens);
        assert_int_equal(k, (long)(d[i].last - d[i].first + 1));
        for (long j = 0; j < k; j++) {
            uint64_t seq = d[i].first + (uint64_t)j;
            assert_true(seq < cap);
            char *t = strndup(d[i].body + starts[j], lens[j]);
            assert_non_null(t);
            if (text[seq]) {
                assert_string_equal(text[seq], t); /* a copy is the same bytes */
                free(t);
            } else {
                text[seq] = t;
            }
        }
        free(starts);
        free(lens);
        if (d[i].last > covered)
            covered = d[i].last;
        /* Each batch is sent under one id only: no other accepted
         * delivery of the session overlaps it. */
        for (size_t o = 0; o < i; o++)
            if (d[o].accepted && strcmp(d[o].session_id, sid) == 0 &&
                d[o].first <= d[i].last && d[i].first <= d[o].last)
                fail_msg("session %s: deliveries %llu..%llu and %llu..%llu overlap", sid,
                         (unsigned long long)d[o].first, (unsigned long long)d[o].last,
                         (unsigned long long)d[i].first, (unsigned long long)d[i].last);
    }
    return covered;
}

/* Highest sequence delivered for `sid` so far. */
static uint64_t covered_now(wr_t *w, const char *sid)
{
    struct wr_delivery *d = NULL;
    size_t n = wr_deliveries(w, &d);
    uint64_t top = 0;
    for (size_t i = 0; i < n; i++)
        if (d[i].accepted && strcmp(d[i].session_id, sid) == 0 && d[i].last > top)
            top = d[i].last;
    wr_deliveries_free(d, n);
    return top;
}

static void wait_accepted(wr_t *w, unsigned n, int timeout_ms)
{
    for (long long end = sjx_now_ms() + timeout_ms; sjx_now_ms() < end;) {
        struct wr_stats st;
        wr_stats(w, &st);
        if (st.accepted >= n)
            return;
        sj_sleep_ms(10);
    }
    fail_msg("the receiver did not get %u deliveries in %d ms", n, timeout_ms);
}

static void test_every_event_through_faults_and_kills(void **state)
{
    (void)state; /* cmocka fixture unused */
    char dir[512], secret[700], url[128];
    sj_fresh_dir(dir, sizeof dir, "export-webhook");
    write_secret(dir, "wh.key", wh_key, sizeof wh_key, secret, sizeof secret);
    sjx_fill(dir, "s", N_SESSIONS, N_EVENTS);

    wr_t *w = wr_start(0, wh_key, sizeof wh_key, 1, 1500);
    assert_non_null(w);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hooks/sj?tenant=t1", wr_port(w));
    /* Short sender timeout for the receiver's held requests, and a pause
     * between a confirmed delivery and its checkpoint for the kills. */
    assert_int_equal(setenv("SJ_TEST_WEBHOOK_TIMEOUT_MS", "300", 1), 0);
    assert_int_equal(setenv("SJ_TEST_EXPORT_PAUSE_MS", "60", 1), 0);
    const char *const args[] = {"--export-to", url, "--webhook-secret-file", secret,
                                "--export-batch", BATCH, NULL};
    struct sj_server s;
    memset(&s, 0, sizeof s);
    assert_int_equal(sj_server_start(&s, dir, args), 0);

    wait_accepted(w, 8, 20000);
    sj_server_kill(&s); /* mid-delivery */
    sjx_append(dir, "s-0", 15);
    sjx_append(dir, "s-late", 12);
    assert_int_equal(sj_server_restart(&s), 0);
    wait_accepted(w, 20, 20000);
    wr_stop(w); /* the receiver goes away for a while */
    sj_sleep_ms(600);
    assert_int_equal(wr_restart(w), 0);
    wait_accepted(w, 30, 20000);
    sj_server_kill(&s);
    assert_int_equal(sj_server_restart(&s), 0);
    sjx_append(dir, "s-1", 9); /* committed by another process while it runs */

    /* Until every session's last event is in. */
    char sids[N_SESSIONS + 1][32];
    for (int i = 0; i < N_SESSIONS; i++)
        snprintf(sids[i], sizeof sids[i], "s-%d", i);
    snprintf(sids[N_SESSIONS], sizeof sids[N_SESSIONS], "s-late");
    uint64_t want[N_SESSIONS + 1];
    for (int i = 0; i <= N_SESSIONS; i++) {
        char sql[512]; /* gcc at -O1 cannot bound the id by its array */
        snprintf(sql, sizeof sql, "SELECT last_sequence FROM sessions WHERE session_id = '%s'",
                 sids[i]);
        want[i] = (uint64_t)sjx_journal_int(dir, sql);
        assert_true(want[i] > 0);
    }
    long long end = sjx_now_ms() + 30000;
    for (int i = 0; i <= N_SESSIONS; i++)
        while (covered_now(w, sids[i]) < want[i]) {
            if (sjx_now_ms() > end)
                fail_msg("session %s: %llu of %llu events delivered", sids[i],
                         (unsigned long long)covered_now(w, sids[i]),
                         (unsigned long long)want[i]);
            sj_sleep_ms(20);
        }

    /* Byte for byte what the API serves, in order, nothing missing. */
    struct wr_delivery *d = NULL;
    size_t n = wr_deliveries(w, &d);
    for (int i = 0; i <= N_SESSIONS; i++) {
        char *text[256] = {NULL};
        uint64_t top = collect(d, n, sids[i], text, 256);
        assert_int_equal(top, want[i]);
        size_t len = 0;
        for (uint64_t q = 1; q <= top; q++) {
            assert_non_null(text[q]);
            len += strlen(text[q]) + 1;
        }
        char *joined = calloc(1, len + 1);
        assert_non_null(joined);
        for (uint64_t q = 1; q <= top; q++) {
            if (q > 1)
                strcat(joined, ",");
            strcat(joined, text[q]);
        }
        char *served = sj_get_events_text(&s, sids[i], "?offset=0&limit=1000");
        static const char open[] = "{\"events\":[";
        assert_memory_equal(served, open, sizeof open - 1);
        char *close = strstr(served, "],\"hasMore\":false}");
        assert_non_null(close);
        *close = '\0';
        assert_string_equal(served + sizeof open - 1, joined);
        free(served);
        free(joined);
        for (int q = 0; q < 256; q++)
            free(text[q]);
    }
    wr_deliveries_free(d, n);

    struct wr_stats st;
    wr_stats(w, &st);
    fprintf(stderr, "receiver: %u requests, %u accepted (%u answers lost), %u failed, %u held, "
                    "%u repeated ids, %u accepted again, %llu events\n", st.requests,
            st.accepted, st.lost, st.failed, st.hung, st.redelivered, st.reaccepted,
            (unsigned long long)st.events);
    assert_int_equal(st.bad_signatures, 0);
    assert_int_equal(st.id_body_mismatches, 0);
    assert_true(st.failed > 0 && st.hung > 0 && st.lost > 0 && st.redelivered > 0);
    /* Batches the receiver took but the sender did not see taken (its
     * timeout fired while the receiver was busy, or it was killed between
     * the answer and its checkpoint) came again, with the same id and body. */
    assert_true(st.reaccepted > 0);

    /* The status route: caught up, the URL as given (no secret in it).  A
     * session that failed often waits out its back-off (at most 30 s,
     * EXPORT_SESSION_BACKOFF_MAX_MS) before it sends what the receiver took
     * without the sender seeing it, so "up to date" may take that long. */
    json_t *body = NULL;
    for (long long stop = sjx_now_ms() + 40000; sjx_now_ms() < stop; sj_sleep_ms(50)) {
        json_decref(body);
        body = sj_call(&s, "GET", "/v1/exports", NULL, 200);
        json_t *one = json_array_get(json_object_get(body, "exports"), 0);
        if (json_integer_value(json_object_get(one, "lag_events")) == 0 &&
            strcmp(json_string_value(json_object_get(one, "state")), "up_to_date") == 0)
            break;
    }
    json_t *one = json_array_get(json_object_get(body, "exports"), 0);
    assert_string_equal(json_string_value(json_object_get(one, "kind")), "webhook");
    assert_string_equal(json_string_value(json_object_get(one, "target")), url);
    assert_string_equal(json_string_value(json_object_get(one, "state")), "up_to_date");
    assert_int_equal(json_integer_value(json_object_get(one, "lag_events")), 0);
    assert_true(json_is_array(json_object_get(one, "sessions")));
    json_decref(body);

    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
    wr_free(w);
    assert_int_equal(unsetenv("SJ_TEST_EXPORT_PAUSE_MS"), 0);
}

static void test_wrong_secret_is_refused_then_right_one_delivers(void **state)
{
    (void)state; /* cmocka fixture unused */
    char dir[512], good[700], bad[700], url[160];
    sj_fresh_dir(dir, sizeof dir, "export-webhook-secret");
    static const unsigned char other[24] = "not-the-receivers-key!!!";
    write_secret(dir, "good.key", wh_key, sizeof wh_key, good, sizeof good);
    write_secret(dir, "bad.key", other, sizeof other, bad, sizeof bad);
    sjx_fill(dir, "c", 3, 20);
    wr_t *w = wr_start(0, wh_key, sizeof wh_key, 0, 0);
    assert_non_null(w);
    snprintf(url, sizeof url, "http://hook:pa55word@127.0.0.1:%u/in", wr_port(w));

    const char *const wrong[] = {"export", "--to", url, "--webhook-secret-file", bad,
                                 "--data-dir", dir, "--batch", "5", NULL};
    char *out = NULL;
    assert_int_equal(sjx_run(wrong, NULL, &out), 1);
    assert_non_null(strstr(out, "HTTP 401"));
    assert_non_null(strstr(out, "gave up"));
    assert_null(strstr(out, "pa55word"));
    free(out);
    struct wr_stats st;
    wr_stats(w, &st);
    assert_true(st.bad_signatures > 0);
    assert_int_equal(st.accepted, 0);

    const char *const right[] = {"export", "--to", url, "--webhook-secret-file", good,
                                 "--data-dir", dir, "--batch", "5", NULL};
    assert_int_equal(sjx_run(right, NULL, &out), 0);
    assert_null(strstr(out, "pa55word"));
    free(out);
    size_t n_ev = 0;
    struct sjx_event *ev = sjx_journal_events(dir, &n_ev);
    struct wr_delivery *d = NULL;
    size_t n = wr_deliveries(w, &d);
    const char *sid = NULL;
    char *text[64] = {NULL};
    for (size_t i = 0; i < n_ev; i++) {
        if (!sid || strcmp(sid, ev[i].session_id) != 0) {
            for (int q = 0; q < 64; q++) {
                free(text[q]);
                text[q] = NULL;
            }
            sid = ev[i].session_id;
            assert_int_equal(collect(d, n, sid, text, 64), 20);
        }
        assert_string_equal(text[ev[i].sequence], ev[i].json);
    }
    for (int q = 0; q < 64; q++)
        free(text[q]);
    wr_deliveries_free(d, n);
    sjx_events_free(ev, n_ev);
    wr_stats(w, &st);
    assert_int_equal(st.events, 60);
    assert_int_equal(st.id_body_mismatches, 0);

    /* Nothing new: nothing sent. */
    unsigned before = st.requests;
    assert_int_equal(sjx_run(right, NULL, &out), 0);
    free(out);
    wr_stats(w, &st);
    assert_int_equal(st.requests, before);
    wr_free(w);
}

/* A short batch (the tail of a session) confirmed by the receiver, then
 * the exporter killed before its checkpoint, then more events committed:
 * the next run sends that same batch again (its end was pinned in the
 * journal), same id and body, not a longer one under another id. */
static void test_short_batch_pinned_across_kill(void **state)
{
    (void)state; /* cmocka fixture unused */
    char dir[512], secret[700], url[128], log[700];
    sj_fresh_dir(dir, sizeof dir, "export-webhook-pin");
    write_secret(dir, "wh.key", wh_key, sizeof wh_key, secret, sizeof secret);
    sjx_append(dir, "p", 3);
    wr_t *w = wr_start(0, wh_key, sizeof wh_key, 0, 0);
    assert_non_null(w);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", wr_port(w));
    snprintf(log, sizeof log, "%s/export.log", dir);
    const char *const args[] = {"export", "--to", url, "--webhook-secret-file", secret,
                                "--data-dir", dir, "--batch", "5", "--quiet", NULL};
    /* Sleeps 20 s between the receiver's 2xx and the checkpoint. */
    const char *const env[] = {"SJ_TEST_EXPORT_PAUSE_MS=20000", NULL};
    pid_t pid = sjx_spawn(args, env, log);
    wait_accepted(w, 1, 20000);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(sjx_wait(pid, 10000), -SIGKILL);
    sjx_append(dir, "p", 4);
    char *out = NULL;
    assert_int_equal(sjx_run(args, NULL, &out), 0);
    free(out);
    struct wr_stats st;
    wr_stats(w, &st);
    assert_int_equal(st.reaccepted, 1); /* 1..3 again, same id and body */
    assert_int_equal(st.id_body_mismatches, 0);
    assert_int_equal(st.events, 7);
    struct wr_delivery *d = NULL;
    size_t n = wr_deliveries(w, &d);
    char *text[16] = {NULL};
    assert_int_equal(collect(d, n, "p", text, 16), 7);
    assert_int_equal(n, 2);
    assert_int_equal(d[0].last, 3);
    assert_int_equal(d[1].first, 4);
    for (int q = 0; q < 16; q++)
        free(text[q]);
    wr_deliveries_free(d, n);
    wr_free(w);
}

static void test_gone_stops_the_target(void **state)
{
    (void)state; /* cmocka fixture unused */
    char dir[512], secret[700], url[128];
    sj_fresh_dir(dir, sizeof dir, "export-webhook-gone");
    write_secret(dir, "wh.key", wh_key, sizeof wh_key, secret, sizeof secret);
    sjx_fill(dir, "g", 2, 10);
    wr_t *w = wr_start(0, wh_key, sizeof wh_key, 0, 0);
    assert_non_null(w);
    wr_set_gone(w, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", wr_port(w));
    const char *const args[] = {"--export-to", url, "--webhook-secret-file", secret, NULL};
    struct sj_server s;
    memset(&s, 0, sizeof s);
    assert_int_equal(sj_server_start(&s, dir, args), 0);
    json_t *one = NULL, *body = NULL;
    for (long long end = sjx_now_ms() + 10000; sjx_now_ms() < end; sj_sleep_ms(20)) {
        json_decref(body);
        body = sj_call(&s, "GET", "/v1/exports", NULL, 200);
        one = json_array_get(json_object_get(body, "exports"), 0);
        if (strcmp(json_string_value(json_object_get(one, "state")), "stopped") == 0)
            break;
    }
    assert_string_equal(json_string_value(json_object_get(one, "state")), "stopped");
    assert_non_null(strstr(json_string_value(json_object_get(one, "last_error")), "410"));
    json_decref(body);
    struct wr_stats st;
    wr_stats(w, &st);
    assert_int_equal(st.requests, 1); /* one answer was enough */
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
    wr_free(w);
}

/* A webhook needs its secret; a bad secret file stops the start. */
static void test_secret_required(void **state)
{
    (void)state; /* cmocka fixture unused */
    char dir[512], path[700];
    sj_fresh_dir(dir, sizeof dir, "export-webhook-nosecret");
    sjx_fill(dir, "n", 1, 1);
    const char *const none[] = {"export", "--to", "https://u:pw@127.0.0.1:9/x", "--data-dir",
                                dir, NULL};
    char *out = NULL;
    assert_int_equal(sjx_run(none, NULL, &out), 2);
    assert_non_null(strstr(out, "--webhook-secret-file"));
    assert_null(strstr(out, ":pw@"));
    free(out);
    snprintf(path, sizeof path, "%s/bad.key", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("whsec_!!not base64!!\n", f);
    assert_int_equal(fclose(f), 0);
    const char *const badkey[] = {"export", "--to", "http://127.0.0.1:9/x",
                                  "--webhook-secret-file", path, "--data-dir", dir, NULL};
    assert_int_equal(sjx_run(badkey, NULL, &out), 2);
    assert_non_null(strstr(out, "webhook secret"));
    assert_null(strstr(out, "not base64"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_required),
        cmocka_unit_test(test_wrong_secret_is_refused_then_right_one_delivers),
        cmocka_unit_test(test_short_batch_pinned_across_kill),
        cmocka_unit_test(test_gone_stops_the_target),
        cmocka_unit_test(test_every_event_through_faults_and_kills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
