/* Integration tests of the JSONL export and `sandbox-journal import`: a
 * transcript exported from one data directory and imported into a fresh
 * one is served byte for byte the same (GET /events with and without raw,
 * SSE, the session list) by servers started on both; importing again adds
 * nothing; a file that differs from the journal, or is malformed, is
 * refused with the journal untouched; an export appends only what is new,
 * resumes after SIGKILL without a duplicate line, and refuses a file that
 * was cut behind its back (until --reset). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "export_fixture.h"
#include "httpc.h"
#include "server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

struct fx {
    char a[512];       /* the source data directory */
    char b[600];       /* the import's, not created beforehand */
    char file[600];    /* the export */
    char target[700];  /* jsonl:<file> */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    sj_fresh_dir(f->a, sizeof f->a, "export-jsonl");
    snprintf(f->b, sizeof f->b, "%s/imported", f->a);
    snprintf(f->file, sizeof f->file, "%s/out.jsonl", f->a);
    snprintf(f->target, sizeof f->target, "jsonl:%s", f->file);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    free(*state);
    return 0;
}

/* Waits for the session's `n`th event, the last of the turn just sent (the
 * mock's paced replies), and checks that there are exactly `n`; returns it. */
static size_t settle(struct sj_server *s, const char *id, size_t n)
{
    json_decref(sj_wait_events_exact(s, id, n, 10000));
    return n;
}

/* The events of session "talk" after make_sessions' script. */
#define TALK_EVENTS 118

static void make_sessions(struct fx *f)
{
    struct sj_server s;
    if (sj_server_start(&s, f->a, NULL) != 0)
        fail_msg("server did not start");
    const char *script[] = {"demo", "tool", "markdown", "unparsed", "image", "status",
                            "error", "echo tab\tand \"quotes\" é", "question", NULL};
    /* The events after each turn: the user item's three, then the reply's. */
    static const size_t total[] = {67, 74, 87, 91, 97, 102, 107, 113, TALK_EVENTS};
    json_decref(sj_create_session(&s, "talk", NULL));
    for (size_t i = 0; script[i]; i++) {
        sj_send_message(&s, "talk", script[i]);
        settle(&s, "talk", total[i]);
    }
    json_decref(sj_create_session(&s, "ends", NULL));
    sj_send_message(&s, "ends", "end");
    settle(&s, "ends", 5);
    json_decref(sj_create_session(&s, "stopped", NULL));
    sj_send_message(&s, "stopped", "permission");
    settle(&s, "stopped", 6);
    json_decref(sj_call(&s, "POST", "/v1/sessions/stopped/terminate", NULL, 204));
    settle(&s, "stopped", 7);
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
    /* and some written straight to the journal, with raw payloads */
    sjx_fill(f->a, "bulk", 4, 40);
}

static char *get_text(struct sj_server *s, const char *path)
{
    struct httpc_response resp;
    sj_request(s, "GET", path, NULL, 1, &resp);
    assert_int_equal(resp.status, 200);
    char *text = resp.body;
    resp.body = NULL;
    httpc_response_free(&resp);
    return text;
}

static void assert_same(const char *what, const char *a, const char *b)
{
    if (strcmp(a, b) != 0)
        fail_msg("%s differs:\n  source:   %.300s\n  imported: %.300s", what, a, b);
}

/* The SSE stream of a session from the start: its first `n` events, as
 * received (id:, data:, blank line). */
static char *sse_text(struct sj_server *s, const char *id, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/sessions/%s/events/sse?offset=0", id);
    struct httpc_response head;
    struct httpc_sse *sse = NULL;
    assert_int_equal(httpc_sse_open(s->port, "GET", path, NULL, NULL, 0, 10000, &head, &sse), 0);
    assert_int_equal(head.status, 200);
    assert_non_null(sse);
    httpc_response_free(&head);
    size_t cap = 1 << 16, len = 0;
    char *all = malloc(cap);
    assert_non_null(all);
    for (size_t i = 0; i < n; i++) {
        struct httpc_sse_event ev;
        assert_int_equal(httpc_sse_next(sse, 10000, &ev), 1);
        while (len + ev.raw_len + 1 > cap) {
            cap *= 2;
            all = realloc(all, cap);
            assert_non_null(all);
        }
        memcpy(all + len, ev.raw, ev.raw_len);
        len += ev.raw_len;
        httpc_sse_event_free(&ev);
    }
    all[len] = '\0';
    httpc_sse_close(sse);
    return all;
}

static void test_round_trip_byte_identical(void **state)
{
    struct fx *f = *state;
    make_sessions(f);
    char *out = NULL;
    const char *exp[] = {"export", "--to", f->target, "--data-dir", f->a, "--batch", "100",
                         NULL};
    assert_int_equal(sjx_run(exp, NULL, &out), 0);
    free(out);
    const char *imp[] = {"import", f->target, "--data-dir", f->b, NULL};
    assert_int_equal(sjx_run(imp, NULL, &out), 0);
    assert_non_null(strstr(out, "7 new"));
    free(out);

    struct sj_server sa, sb;
    if (sj_server_start(&sa, f->a, NULL) != 0 || sj_server_start(&sb, f->b, NULL) != 0)
        fail_msg("servers did not start");
    char *list_a = get_text(&sa, "/v1/sessions");
    char *list_b = get_text(&sb, "/v1/sessions");
    assert_same("GET /v1/sessions", list_a, list_b);
    json_t *list = json_loads(list_a, 0, NULL);
    json_t *sessions = json_object_get(list, "sessions");
    assert_int_equal(json_array_size(sessions), 7);
    size_t i;
    json_t *row;
    json_array_foreach(sessions, i, row) {
        const char *id = json_string_value(json_object_get(row, "sessionId"));
        size_t n = (size_t)json_integer_value(json_object_get(row, "eventCount"));
        const char *queries[] = {"?offset=0&limit=10000", "?offset=0&limit=10000&include_raw=true",
                                 "?offset=5&limit=7"};
        for (size_t q = 0; q < 3; q++) {
            char path[256];
            snprintf(path, sizeof path, "/v1/sessions/%s/events%s", id, queries[q]);
            char *a = get_text(&sa, path);
            char *b = get_text(&sb, path);
            assert_same(path, a, b);
            free(a);
            free(b);
        }
        char *a = sse_text(&sa, id, n);
        char *b = sse_text(&sb, id, n);
        assert_same("SSE", a, b);
        free(a);
        free(b);
    }
    json_decref(list);
    free(list_a);
    free(list_b);
    /* the imported sessions are live: the next message continues them */
    sj_send_message(&sb, "talk", "echo after the move");
    json_t *more = sj_wait_events(&sb, "talk", settle(&sa, "talk", TALK_EVENTS) + 1, 10000);
    json_decref(more);
    assert_int_equal(sj_server_stop(&sa), 0);
    assert_int_equal(sj_server_stop(&sb), 0);
    sj_server_release(&sa);
    sj_server_release(&sb);
}

/* Writes `text` to `path`. */
static void write_file(const char *path, const char *text, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void test_reimport_and_refusals(void **state)
{
    struct fx *f = *state;
    sjx_fill(f->a, "s", 3, 20);
    const char *exp[] = {"export", "--to", f->target, "--data-dir", f->a, NULL};
    assert_int_equal(sjx_run(exp, NULL, NULL), 0);
    const char *imp[] = {"import", f->target, "--data-dir", f->b, NULL};
    assert_int_equal(sjx_run(imp, NULL, NULL), 0);
    char *out = NULL;
    assert_int_equal(sjx_run(imp, NULL, &out), 0);
    assert_non_null(strstr(out, "imported 0 events"));
    free(out);

    char db[700];
    snprintf(db, sizeof db, "%s/journal.db", f->b);
    size_t len0 = 0, flen = 0;
    char *before = sjx_file(db, &len0);
    char *text = sjx_file(f->file, &flen);
    char bad[700];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", f->a);
    char bad_target[720];
    snprintf(bad_target, sizeof bad_target, "jsonl:%s", bad);
    const char *imp_bad[] = {"import", bad_target, "--data-dir", f->b, NULL};

    /* one event's text changed: refused, as it differs from the journal's */
    char *tampered = malloc(flen + 1);
    memcpy(tampered, text, flen);
    tampered[flen] = '\0';
    char *hit = strstr(tampered, "δ 7:");
    assert_non_null(hit);
    hit[strlen("δ ")] = '8';
    write_file(bad, tampered, flen);
    assert_int_equal(sjx_run(imp_bad, NULL, &out), 1);
    assert_non_null(strstr(out, "differs"));
    assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
    free(out);

    /* the last line cut short */
    write_file(bad, text, flen - 10);
    assert_int_equal(sjx_run(imp_bad, NULL, &out), 1);
    assert_non_null(strstr(out, "incomplete"));
    free(out);

    /* an event missing: a gap in the sequence */
    char *line = strstr(tampered, "{\"kind\":\"event\",\"session_id\":\"s-0\",\"sequence\":4,");
    assert_non_null(line);
    char *end = strchr(line, '\n');
    assert_non_null(end);
    memmove(line, end + 1, strlen(end + 1) + 1);
    write_file(bad, tampered, strlen(tampered));
    assert_int_equal(sjx_run(imp_bad, NULL, &out), 1);
    assert_non_null(strstr(out, "sequence 5 where 4 was due"));
    free(out);
    free(tampered);

    size_t len1 = 0;
    char *after = sjx_file(db, &len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(before);
    free(after);

    /* into a directory that does not exist yet: a bad file creates nothing */
    char fresh[700];
    snprintf(fresh, sizeof fresh, "%s/never", f->a);

    /* Issue 13: an event whose data does not fit its type was imported, and
     * the server then refused every message to its session (it could not
     * rebuild the session from it).  The whole file is refused now. */
    char *malformed = malloc(flen + 16);
    memcpy(malformed, text, flen);
    malformed[flen] = '\0';
    line = strstr(malformed, "{\"kind\":\"event\",\"session_id\":\"s-1\",\"sequence\":4,");
    assert_non_null(line);
    char *data = strstr(line, "\\\"data\\\":");
    assert_non_null(data);
    assert_true(data < strchr(line, '\n'));
    data += strlen("\\\"data\\\":");
    static const char splice[] = "7,\\\"was\\\":";
    memmove(data + strlen(splice), data, strlen(data) + 1);
    memcpy(data, splice, strlen(splice));
    write_file(bad, malformed, strlen(malformed));
    const char *imp_malformed[] = {"import", bad_target, "--data-dir", fresh, NULL};
    assert_int_equal(sjx_run(imp_malformed, NULL, &out), 1);
    if (!strstr(out, "session s-1 event 4: its data does not fit"))
        fail_msg("import said: %s", out);
    assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
    free(out);
    assert_int_equal(access(fresh, F_OK), -1);
    free(malformed);
    write_file(bad, "{\"kind\":\"sandbox-journal-export\",\"version\":1}\n"
                    "{\"kind\":\"event\",\"session_id\":\"x\",\"sequence\":1}\n",
               strlen("{\"kind\":\"sandbox-journal-export\",\"version\":1}\n"
                      "{\"kind\":\"event\",\"session_id\":\"x\",\"sequence\":1}\n"));
    const char *imp_fresh[] = {"import", bad_target, "--data-dir", fresh, NULL};
    assert_int_equal(sjx_run(imp_fresh, NULL, &out), 1);
    assert_non_null(strstr(out, "line 2"));
    free(out);
    assert_int_equal(access(fresh, F_OK), -1);
    const char *imp_missing[] = {"import", "jsonl:/nonexistent/x.jsonl", "--data-dir", fresh,
                                 NULL};
    assert_int_equal(sjx_run(imp_missing, NULL, NULL), 1);
    assert_int_equal(access(fresh, F_OK), -1);
    const char *imp_pg[] = {"import", "postgres://h/db", NULL};
    assert_int_equal(sjx_run(imp_pg, NULL, NULL), 2);
    free(text);
}

/* An import beside a running server created sessions that server did not
 * know (it loads session rows at start), so their next message failed: the
 * import is refused while a server holds the data directory, and nothing of
 * the file reaches the journal. */
static void test_import_refused_beside_a_server(void **state)
{
    struct fx *f = *state;
    sjx_fill(f->a, "s", 2, 5);
    const char *exp[] = {"export", "--to", f->target, "--data-dir", f->a, NULL};
    assert_int_equal(sjx_run(exp, NULL, NULL), 0);
    struct sj_server sb;
    if (sj_server_start(&sb, f->b, NULL) != 0)
        fail_msg("server did not start");
    char *out = NULL;
    const char *imp[] = {"import", f->target, "--data-dir", f->b, NULL};
    assert_int_not_equal(sjx_run(imp, NULL, &out), 0);
    if (!strstr(out, "in use by a running server"))
        fail_msg("import said: %s", out);
    free(out);
    char *list = get_text(&sb, "/v1/sessions");
    assert_non_null(strstr(list, "\"sessions\":[]"));
    free(list);
    assert_int_equal(sj_server_stop(&sb), 0);
    sj_server_release(&sb);
    /* With the server gone the same import goes through. */
    assert_int_equal(sjx_run(imp, NULL, NULL), 0);
}

/* Asserts that the import in f->b holds exactly the events of f->a. */
static void assert_same_journals(const char *a_dir, const char *b_dir)
{
    size_t na = 0, nb = 0;
    struct sjx_event *a = sjx_journal_events(a_dir, &na);
    struct sjx_event *b = sjx_journal_events(b_dir, &nb);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].session_id, b[i].session_id);
        assert_true(a[i].sequence == b[i].sequence);
        assert_string_equal(a[i].json, b[i].json);
        assert_int_equal(!a[i].raw, !b[i].raw);
        if (a[i].raw)
            assert_string_equal(a[i].raw, b[i].raw);
        assert_int_equal(a[i].turn_end, b[i].turn_end);
    }
    sjx_events_free(a, na);
    sjx_events_free(b, nb);
}

static void test_incremental_resume_and_reset(void **state)
{
    struct fx *f = *state;
    sjx_fill(f->a, "i", 10, 50);
    const char *exp[] = {"export", "--to", f->target, "--data-dir", f->a, "--batch", "100",
                         NULL};
    assert_int_equal(sjx_run(exp, NULL, NULL), 0);
    size_t len1 = 0;
    free(sjx_file(f->file, &len1));
    sjx_append(f->a, "i-3", 7);
    sjx_append(f->a, "new", 4);
    char *out = NULL;
    assert_int_equal(sjx_run(exp, NULL, &out), 0);
    assert_non_null(strstr(out, "exported 11 events"));
    free(out);
    size_t len2 = 0;
    char *text = sjx_file(f->file, &len2);
    assert_true(len2 > len1);
    /* one header, at the top */
    text = realloc(text, len2 + 1);
    text[len2] = '\0';
    assert_int_equal(strncmp(text, "{\"kind\":\"sandbox-journal-export\"", 32), 0);
    assert_null(strstr(strchr(text, '\n') + 1, "sandbox-journal-export"));
    free(text);

    /* killed after writing a batch, before its checkpoint: the next run cuts
     * the unconfirmed lines and writes them once */
    sjx_append(f->a, "i-5", 300);
    char log[700];
    snprintf(log, sizeof log, "%s/kill.log", f->a);
    const char *env[] = {"SJ_TEST_EXPORT_PAUSE_MS=5000", NULL};
    pid_t pid = sjx_spawn(exp, env, log);
    long long t0 = sjx_now_ms();
    size_t len3 = len2;
    while (len3 == len2) {
        if (sjx_now_ms() - t0 > 20000) {
            kill(pid, SIGKILL);
            fail_msg("the export never wrote");
        }
        sj_sleep_ms(5);
        free(sjx_file(f->file, &len3));
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(sjx_wait(pid, 10000), -SIGKILL);
    assert_int_equal(sjx_run(exp, NULL, &out), 0);
    assert_non_null(strstr(out, "exported 300 events"));
    free(out);
    const char *imp[] = {"import", f->target, "--data-dir", f->b, NULL};
    assert_int_equal(sjx_run(imp, NULL, NULL), 0);
    assert_same_journals(f->a, f->b);

    /* the file cut behind the exporter's back: refused, until --reset */
    assert_int_equal(truncate(f->file, 100), 0);
    assert_int_equal(sjx_run(exp, NULL, &out), 1);
    assert_non_null(strstr(out, "--reset"));
    free(out);
    const char *reset[] = {"export", "--to", f->target, "--data-dir", f->a, "--reset", NULL};
    assert_int_equal(sjx_run(reset, NULL, &out), 0);
    assert_non_null(strstr(out, "exported 811 events"));
    free(out);
    char again[700];
    snprintf(again, sizeof again, "%s/again", f->a);
    const char *imp2[] = {"import", f->target, "--data-dir", again, "--quiet", NULL};
    assert_int_equal(sjx_run(imp2, NULL, &out), 0);
    assert_string_equal(out, "");
    free(out);
    assert_same_journals(f->a, again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_byte_identical, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reimport_and_refusals, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_import_refused_beside_a_server, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_incremental_resume_and_reset, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
