/* Storage faults, on the real filesystem: the disk fills up, the database
 * file vanishes (renamed away, then back), another process holds the write
 * lock, the data directory is read-only at start.  In every case appends
 * are refused with a 503 ProblemDetails (stream_error) and nothing of them
 * is stored, reads and event streams go on, the journal stays intact
 * (PRAGMA integrity_check, contiguous sequences), and the server recovers by
 * itself once the fault is gone: the sessions' normalizers are rebuilt from
 * the journal, so item ids and the mock's turn numbers continue as if the
 * refused requests had never been made.
 *
 * The disk-full and read-only tests mount a small tmpfs of their own, which
 * needs root (CAP_SYS_ADMIN); without it they are skipped, saying so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "httpc.h"
#include "journal/journal.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 15000

/* The tmpfs mounted by the running test, detached by the teardown whatever
 * happened. */
static char faults_mount_point[600];

/* The server of the running test, which the teardown stops if an assertion
 * left it running: otherwise its paced turns would go on into the next test. */
static struct sj_server *faults_server;

static int64_t faults_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Mounts a tmpfs of `size` at base/mnt.  0, or -1 when this process may not
 * mount (the caller skips). */
static int faults_mount(const char *base, const char *size, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s/mnt", base);
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", out, strerror(errno));
    char opts[64];
    snprintf(opts, sizeof opts, "size=%s,mode=0755", size);
    if (mount("tmpfs", out, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) {
        fprintf(stderr, "faults: cannot mount a tmpfs (%s): this test needs root; skipped\n",
                strerror(errno));
        return -1;
    }
    snprintf(faults_mount_point, sizeof faults_mount_point, "%s", out);
    return 0;
}

static int faults_teardown(void **state)
{
    (void)state; /* the tests keep their server in faults_server */
    if (faults_server) {
        if (sj_server_stop(faults_server) != 0)
            fprintf(stderr, "faults: the server left running did not stop cleanly\n");
        sj_server_release(faults_server);
        faults_server = NULL;
    }
    if (faults_mount_point[0]) {
        if (umount2(faults_mount_point, MNT_DETACH) != 0)
            fprintf(stderr, "faults: umount %s: %s\n", faults_mount_point, strerror(errno));
        faults_mount_point[0] = '\0';
    }
    return 0;
}

/* Writes `path` until the filesystem is full.  Returns the bytes written. */
static size_t faults_fill(const char *path)
{
    static char block[64 * 1024];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    size_t total = 0, chunk = sizeof block;
    while (chunk >= 512) {
        ssize_t n = write(fd, block, chunk);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != ENOSPC)
            fail_msg("write %s: %s", path, strerror(errno));
        chunk /= 2; /* the last pages, smaller and smaller */
    }
    close(fd);
    return total;
}

/* `s` must be zeroed before its first start, and outlive the test. */
static void faults_start(struct sj_server *s, const char *data_dir, const char *const *args)
{
    faults_server = s;
    sj_server_release(s); /* a previous start's copies of the arguments */
    if (sj_server_start(s, data_dir, args) != 0)
        fail_msg("the server did not start on %s", data_dir);
}

static void faults_stop(struct sj_server *s)
{
    int rc = sj_server_stop(s);
    if (rc != 0)
        fail_msg("the server did not stop cleanly (status %d)", s->exit_status);
}

/* POSTs and returns the whole response (caller frees). */
static void faults_post(struct sj_server *s, const char *path, const char *body,
                        struct httpc_response *resp)
{
    sj_request(s, "POST", path, body, 1, resp);
}

/* Asserts a 503 stream_error whose detail contains `why`. */
static void faults_expect_503(struct httpc_response *resp, const char *why)
{
    json_t *p = sj_assert_problem(resp, 503, "stream_error");
    const char *detail = sj_str(p, "detail");
    if (!strstr(detail, why))
        fail_msg("503 detail \"%s\" does not say \"%s\"", detail, why);
    json_decref(p);
}

static int faults_message(struct sj_server *s, const char *sid, const char *text,
                          struct httpc_response *resp)
{
    char *path = sj_fmt("/v1/sessions/%s/messages", sid);
    char *body = sj_fmt("{\"message\":\"%s\"}", text);
    faults_post(s, path, body, resp);
    free(path);
    free(body);
    return resp->status;
}

/* The events of `sid`, checked: sequences 1..n, every "itm_N" first seen in
 * order 1, 2, 3... (the normalizer never skipped or reused an id).  On a
 * failure the events are printed.  new. */
static json_t *faults_events_checked(struct sj_server *s, const char *sid)
{
    json_t *r = sj_get_events(s, sid, "");
    json_t *events = json_incref(json_object_get(r, "events"));
    json_decref(r);
    long next_item = 1;
    for (size_t i = 0; i < json_array_size(events); i++) {
        const json_t *e = json_array_get(events, i);
        assert_int_equal(sj_int(e, "sequence"), (long long)i + 1);
        /* A delta names its item too, and may be the first to: a paced turn
         * whose item.started hit the full disk goes on once space is back. */
        const char *item = sj_str(e, "data.item.item_id");
        if (!item)
            item = sj_str(e, "data.item_id");
        if (item && strncmp(item, "itm_", 4) == 0) {
            long n = strtol(item + 4, NULL, 10);
            if (n > next_item) {
                for (size_t k = 0; k < json_array_size(events); k++) {
                    char *line = json_dumps(json_array_get(events, k), JSON_COMPACT);
                    fprintf(stderr, "  %s\n", line ? line : "?");
                    free(line);
                }
                fail_msg("%s: event %zu uses %s before itm_%ld", sid, i + 1, item, next_item);
            }
            if (n == next_item)
                next_item++;
        }
    }
    return events;
}

/* 1 if a user message with exactly `text` is in `events`. */
static int faults_has_user_text(const json_t *events, const char *text)
{
    for (size_t i = 0; i < json_array_size(events); i++) {
        const json_t *e = json_array_get(events, i);
        const char *role = sj_str(e, "data.item.role");
        const char *t = sj_str(e, "data.item.content.0.text");
        if (role && strcmp(role, "user") == 0 && t && strcmp(t, text) == 0)
            return 1;
    }
    return 0;
}

/* Polls until the session's last event is the completed assistant reply
 * to the message `text` ("echo X": the mock says X), or fails. */
static json_t *faults_wait_reply(struct sj_server *s, const char *sid, const char *message)
{
    const char *text = strncmp(message, "echo ", 5) == 0 ? message + 5 : message;
    int64_t deadline = faults_now_ms() + WAIT_MS;
    for (;;) {
        json_t *events = faults_events_checked(s, sid);
        const json_t *last = json_array_get(events, json_array_size(events) - 1);
        const char *role = sj_str(last, "data.item.role");
        const char *t = sj_str(last, "data.item.content.0.text");
        if (last && strcmp(sj_str(last, "type"), "item.completed") == 0 && role &&
            strcmp(role, "assistant") == 0 && t && strcmp(t, text) == 0)
            return events;
        json_decref(events);
        if (faults_now_ms() > deadline)
            fail_msg("%s: no reply to \"%s\"", sid, text);
        sj_sleep_ms(20);
    }
}

static void faults_integrity(const char *data_dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/journal.db", data_dir);
    journal_reader_t *r;
    journal_close(sj_journal_open_checked(path, &r));
}

/* Reads an open event stream until sequence `until`; every sequence must
 * come once, in order, after `*last`. */
static void faults_sse_follow(struct httpc_sse *sse, uint64_t *last, uint64_t until)
{
    int64_t deadline = faults_now_ms() + WAIT_MS;
    while (*last < until) {
        struct httpc_sse_event ev;
        int rc = httpc_sse_next(sse, 200, &ev);
        if (rc == 1) {
            uint64_t seq = ev.id ? strtoull(ev.id, NULL, 10) : 0;
            httpc_sse_event_free(&ev);
            if (seq != *last + 1)
                fail_msg("event stream: sequence %llu after %llu", (unsigned long long)seq,
                         (unsigned long long)*last);
            *last = seq;
            continue;
        }
        if (rc != HTTPC_ETIMEOUT || faults_now_ms() > deadline)
            fail_msg("event stream ended at %llu of %llu (%s)", (unsigned long long)*last,
                     (unsigned long long)until, httpc_strerror(rc));
    }
}

static struct httpc_sse *faults_sse_open(struct sj_server *s, const char *sid)
{
    char *path = sj_fmt("/v1/sessions/%s/events/sse", sid);
    struct httpc_response head;
    struct httpc_sse *sse = NULL;
    int rc = httpc_sse_open(s->port, "GET", path, NULL, NULL, 0, 5000, &head, &sse);
    free(path);
    assert_int_equal(rc, 0);
    assert_non_null(sse);
    httpc_response_free(&head);
    return sse;
}

/* ---- disk full -------------------------------------------------------------- */

static void test_disk_full(void **state)
{
    (void)state; /* the test makes its own server */
    static const char *const args[] = {"--mock-delay-ms", "20", NULL};
    char base[512], mnt[600], data[700], filler[700];
    sj_fresh_dir(base, sizeof base, "faults-full");
    if (faults_mount(base, "8m", mnt, sizeof mnt) != 0)
        skip();
    snprintf(data, sizeof data, "%s/data", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    static struct sj_server s; /* static: the teardown reaches it after a failure */
    memset(&s, 0, sizeof s);
    faults_start(&s, data, args);
    struct httpc_response resp;

    json_decref(sj_create_session(&s, "full", NULL));
    json_decref(sj_create_session(&s, "perm", NULL));
    sj_send_message(&s, "full", "echo one");
    json_decref(faults_wait_reply(&s, "full", "echo one"));
    sj_send_message(&s, "perm", "permission");
    json_decref(sj_wait_events_exact(&s, "perm", 6, WAIT_MS));
    struct httpc_sse *sse = faults_sse_open(&s, "full");
    uint64_t seen = 0;
    faults_sse_follow(sse, &seen, 7);

    /* A turn is being paced out (one event every 20 ms) when the disk fills:
     * its later events fail to commit on the supervisor loop. */
    sj_send_message(&s, "full", "demo");
    json_decref(sj_wait_events(&s, "full", 7 + 8, WAIT_MS)); /* the turn is under way */
    size_t filled = faults_fill(filler);
    fprintf(stderr, "faults: filled the disk with %zu bytes\n", filled);

    /* Until the writer hits the full disk a message may still fit in space
     * the WAL already owns; from then on every append is refused. */
    int accepted = 0, refused = 0;
    char text[64];
    for (int i = 0; i < 50 && !refused; i++) {
        snprintf(text, sizeof text, "echo during %d", i);
        int st = faults_message(&s, "full", text, &resp);
        if (st == 204)
            accepted++;
        else {
            faults_expect_503(&resp, "full");
            refused = i + 1;
        }
        httpc_response_free(&resp);
    }
    assert_true(refused > 0);
    sj_sleep_ms(300); /* let the paced turn run into the wall as well */
    char *frozen = sj_get_events_text(&s, "full", "");
    for (int i = 0; i < 3; i++) {
        int64_t t0 = faults_now_ms();
        assert_int_equal(faults_message(&s, "full", "echo refused", &resp), 503);
        faults_expect_503(&resp, "full");
        httpc_response_free(&resp);
        assert_true(faults_now_ms() - t0 < 3000); /* refused at once, no hang */
    }
    faults_post(&s, "/v1/sessions/late", "{\"agent\":\"mock\"}", &resp);
    faults_expect_503(&resp, "full");
    httpc_response_free(&resp);
    faults_post(&s, "/v1/sessions/perm/permissions/mock_1_permission/reply",
                "{\"reply\":\"once\"}", &resp);
    faults_expect_503(&resp, "full");
    httpc_response_free(&resp);

    /* Reads go on, and nothing changed. */
    char *now = sj_get_events_text(&s, "full", "");
    assert_string_equal(frozen, now);
    free(now);
    json_decref(sj_call(&s, "GET", "/v1/sessions", NULL, 200));
    json_decref(sj_get_events(&s, "perm", "?offset=1&limit=2"));

    /* Space comes back: the server goes on by itself. */
    assert_int_equal(unlink(filler), 0);
    sj_send_message(&s, "full", "echo after");
    json_t *events = faults_wait_reply(&s, "full", "echo after");
    assert_false(faults_has_user_text(events, "echo refused"));
    assert_false(faults_has_user_text(events, text)); /* the first refused one */
    assert_true(faults_has_user_text(events, "echo after"));
    /* Turns refused gave their numbers back: "echo after" is turn 3 plus the
     * messages accepted before the wall. */
    char want_native[32];
    snprintf(want_native, sizeof want_native, "mock_%d_user", 3 + accepted);
    int found = 0;
    for (size_t i = 0; i < json_array_size(events); i++) {
        const char *n = sj_str(json_array_get(events, i), "data.item.native_item_id");
        const char *t = sj_str(json_array_get(events, i), "data.item.content.0.text");
        if (n && t && strcmp(t, "echo after") == 0 && strcmp(n, want_native) == 0)
            found = 1;
    }
    if (!found)
        fail_msg("the user message \"echo after\" is not %s", want_native);
    uint64_t total = json_array_size(events);
    json_decref(events);
    faults_sse_follow(sse, &seen, total); /* the stream saw it all, once */
    httpc_sse_close(sse);

    /* The refused permission reply is still possible, and so is the create. */
    json_decref(sj_call(&s, "POST", "/v1/sessions/perm/permissions/mock_1_permission/reply",
                        "{\"reply\":\"once\"}", 204));
    json_t *perm = faults_events_checked(&s, "perm");
    const json_t *resolved = json_array_get(perm, json_array_size(perm) - 1);
    assert_string_equal(sj_str(resolved, "type"), "permission.resolved");
    json_decref(perm);
    json_decref(sj_create_session(&s, "late", NULL));

    char *before = sj_get_events_text(&s, "full", "");
    faults_stop(&s);
    faults_integrity(data);
    faults_start(&s, data, args);
    char *after = sj_get_events_text(&s, "full", "");
    assert_string_equal(before, after);
    faults_stop(&s);
    sj_server_release(&s);
    free(before);
    free(after);
    free(frozen);
}

/* ---- the database file vanishes ------------------------------------------ */

static void test_db_vanishes(void **state)
{
    (void)state; /* the test makes its own server */
    char base[512], db[600], away[600];
    sj_fresh_dir(base, sizeof base, "faults-vanish");
    snprintf(db, sizeof db, "%s/journal.db", base);
    snprintf(away, sizeof away, "%s/journal.db.away", base);
    static struct sj_server s; /* static: the teardown reaches it after a failure */
    memset(&s, 0, sizeof s);
    faults_start(&s, base, NULL);
    struct httpc_response resp;

    json_decref(sj_create_session(&s, "v", NULL));
    sj_send_message(&s, "v", "echo one");
    json_decref(faults_wait_reply(&s, "v", "echo one"));
    char *before = sj_get_events_text(&s, "v", "");

    assert_int_equal(rename(db, away), 0);
    assert_int_equal(faults_message(&s, "v", "echo lost", &resp), 503);
    faults_expect_503(&resp, "moved or deleted");
    httpc_response_free(&resp);
    faults_post(&s, "/v1/sessions/w", "{\"agent\":\"mock\"}", &resp);
    faults_expect_503(&resp, "moved or deleted");
    httpc_response_free(&resp);
    /* Reads keep working on every worker thread (each has its connection
     * open already): ask often enough to meet them all. */
    for (int i = 0; i < 16; i++) {
        char *now = sj_get_events_text(&s, "v", "");
        assert_string_equal(before, now);
        free(now);
    }
    json_decref(sj_call(&s, "GET", "/v1/sessions", NULL, 200));

    assert_int_equal(rename(away, db), 0);
    sj_send_message(&s, "v", "echo two");
    json_t *events = faults_wait_reply(&s, "v", "echo two");
    assert_false(faults_has_user_text(events, "echo lost"));
    assert_string_equal(sj_str(json_array_get(events, 7), "data.item.native_item_id"),
                        "mock_2_user");
    json_decref(events);
    json_decref(sj_create_session(&s, "w", NULL));
    faults_stop(&s);
    faults_integrity(base);
    sj_server_release(&s);
    free(before);
}

/* ---- the WAL is deleted ------------------------------------------------------ */

/* `rm journal.db-wal` under a running server: SQLite would go on committing
 * into the unlinked file, and a kill -9 then loses everything since.  Every
 * message must either be refused (503, nothing stored) or survive a real
 * kill -9 and restart, as must everything acknowledged before the rm. */
static void test_wal_deleted(void **state)
{
    (void)state; /* the test makes its own server */
    char base[512], wal[600];
    sj_fresh_dir(base, sizeof base, "faults-wal");
    snprintf(wal, sizeof wal, "%s/journal.db-wal", base);
    static struct sj_server s; /* static: the teardown reaches it after a failure */
    memset(&s, 0, sizeof s);
    faults_start(&s, base, NULL);
    struct httpc_response resp;

    json_decref(sj_create_session(&s, "w", NULL));
    sj_send_message(&s, "w", "echo one");
    json_decref(faults_wait_reply(&s, "w", "echo one"));

    assert_int_equal(unlink(wal), 0);
    char text[64];
    int accepted = 0, refused = 0;
    for (int i = 0; i < 3 && !accepted; i++) {
        snprintf(text, sizeof text, "echo after %d", i);
        int st = faults_message(&s, "w", text, &resp);
        if (st == 204) {
            accepted = 1;
        } else {
            faults_expect_503(&resp, "WAL");
            refused++;
        }
        httpc_response_free(&resp);
    }
    fprintf(stderr, "faults: %d message(s) refused before the journal had a new WAL\n",
            refused);
    assert_true(accepted);
    json_decref(faults_wait_reply(&s, "w", text));
    sj_send_message(&s, "w", "echo steady");
    json_decref(faults_wait_reply(&s, "w", "echo steady"));
    json_decref(sj_create_session(&s, "w2", NULL));

    char *before = sj_get_events_text(&s, "w", "");
    sj_server_kill(&s);
    sj_server_release(&s);
    faults_integrity(base);
    faults_start(&s, base, NULL);
    char *after = sj_get_events_text(&s, "w", "");
    assert_string_equal(before, after);
    json_t *events = faults_events_checked(&s, "w");
    assert_true(faults_has_user_text(events, "echo one"));
    assert_true(faults_has_user_text(events, text));
    assert_true(faults_has_user_text(events, "echo steady"));
    for (int i = 0; i < refused; i++) {
        char lost[64];
        snprintf(lost, sizeof lost, "echo after %d", i);
        assert_false(faults_has_user_text(events, lost));
    }
    json_decref(events);
    json_decref(sj_get_events(&s, "w2", ""));
    faults_stop(&s);
    faults_integrity(base);
    sj_server_release(&s);
    free(before);
    free(after);
}

/* ---- another process holds the write lock ---------------------------------- */

struct faults_unlock {
    sqlite3 *db;
    int after_ms;
    int64_t unlocking_ms; /* when the lock was about to be released */
};

static void *faults_unlock_main(void *arg)
{
    struct faults_unlock *u = arg;
    sj_sleep_ms(u->after_ms);
    u->unlocking_ms = faults_now_ms();
    if (sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        fprintf(stderr, "faults: rollback: %s\n", sqlite3_errmsg(u->db));
    return NULL;
}

static void test_db_locked(void **state)
{
    (void)state; /* the test makes its own server */
    char base[512], db_path[600];
    sj_fresh_dir(base, sizeof base, "faults-lock");
    snprintf(db_path, sizeof db_path, "%s/journal.db", base);
    static struct sj_server s; /* static: the teardown reaches it after a failure */
    memset(&s, 0, sizeof s);
    faults_start(&s, base, NULL);
    struct httpc_response resp;
    json_decref(sj_create_session(&s, "l", NULL));
    sj_send_message(&s, "l", "echo one");
    json_decref(faults_wait_reply(&s, "l", "echo one"));

    /* This test process is "another process": its BEGIN IMMEDIATE takes
     * the database's one write lock. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    /* The server's search index may be taking a step behind the last
     * commit (slow under valgrind): wait for it like any other writer. */
    assert_int_equal(sqlite3_busy_timeout(db, 30000), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    /* Held past the writer's 5 s busy timeout: refused, after the wait. */
    int64_t t0 = faults_now_ms();
    assert_int_equal(faults_message(&s, "l", "echo blocked", &resp), 503);
    int64_t waited = faults_now_ms() - t0;
    faults_expect_503(&resp, "locked");
    httpc_response_free(&resp);
    fprintf(stderr, "faults: refused after %lld ms behind the lock\n", (long long)waited);
    assert_true(waited >= 4000 && waited < 12000);
    /* Reads are not behind the lock. */
    t0 = faults_now_ms();
    json_decref(sj_get_events(&s, "l", ""));
    json_decref(sj_call(&s, "GET", "/v1/sessions", NULL, 200));
    assert_true(faults_now_ms() - t0 < 2000);

    /* Held briefly: the append waits and succeeds. */
    struct faults_unlock u = {db, 800, 0};
    pthread_t unlocker;
    assert_int_equal(pthread_create(&unlocker, NULL, faults_unlock_main, &u), 0);
    t0 = faults_now_ms();
    sj_send_message(&s, "l", "echo waited");
    int64_t done = faults_now_ms();
    pthread_join(unlocker, NULL);
    fprintf(stderr, "faults: committed after %lld ms behind a short lock\n",
            (long long)(done - t0));
    assert_true(done >= u.unlocking_ms); /* the 204 came only once the lock was gone */
    json_t *events = faults_wait_reply(&s, "l", "echo waited");
    assert_false(faults_has_user_text(events, "echo blocked"));
    assert_string_equal(sj_str(json_array_get(events, 7), "data.item.native_item_id"),
                        "mock_2_user");
    json_decref(events);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    faults_stop(&s);
    faults_integrity(base);
    sj_server_release(&s);
}

/* ---- read-only at start ------------------------------------------------------- */

static void test_readonly_at_start(void **state)
{
    (void)state; /* the test makes its own server */
    char base[512], mnt[600], data[700], db[720];
    sj_fresh_dir(base, sizeof base, "faults-ro");
    if (faults_mount(base, "8m", mnt, sizeof mnt) != 0)
        skip();
    snprintf(data, sizeof data, "%s/data", mnt);
    snprintf(db, sizeof db, "%s/journal.db", data);
    static struct sj_server s; /* static: the teardown reaches it after a failure */
    memset(&s, 0, sizeof s);
    faults_start(&s, data, NULL);
    json_decref(sj_create_session(&s, "ro", NULL));
    sj_send_message(&s, "ro", "echo one");
    json_decref(faults_wait_reply(&s, "ro", "echo one"));
    char *before = sj_get_events_text(&s, "ro", "");
    faults_stop(&s);
    struct stat st0, st1;
    assert_int_equal(stat(db, &st0), 0);

    /* Read-only: the server refuses to start (exit status 1, the reason on
     * stderr) rather than serve a journal it cannot append to; nothing is
     * touched.  (Once running, a write error of the filesystem surfaces as
     * the 503 of the disk-full test: same path, ERR_STORAGE.) */
    if (mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL) != 0)
        fail_msg("remount read-only: %s", strerror(errno));
    sj_server_release(&s);
    assert_int_not_equal(sj_server_start(&s, data, NULL), 0);
    assert_true(WIFEXITED(s.exit_status) || WIFSIGNALED(s.exit_status));
    if (WIFEXITED(s.exit_status))
        assert_int_equal(WEXITSTATUS(s.exit_status), 1);
    assert_int_equal(stat(db, &st1), 0);
    assert_true(st0.st_size == st1.st_size && st0.st_mtime == st1.st_mtime);

    if (mount(NULL, mnt, NULL, MS_REMOUNT, NULL) != 0)
        fail_msg("remount read-write: %s", strerror(errno));
    sj_server_release(&s);
    faults_start(&s, data, NULL);
    char *after = sj_get_events_text(&s, "ro", "");
    assert_string_equal(before, after);
    faults_stop(&s);
    sj_server_release(&s);
    free(before);
    free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_disk_full, faults_teardown),
        cmocka_unit_test_teardown(test_db_vanishes, faults_teardown),
        cmocka_unit_test_teardown(test_wal_deleted, faults_teardown),
        cmocka_unit_test_teardown(test_db_locked, faults_teardown),
        cmocka_unit_test_teardown(test_readonly_at_start, faults_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
