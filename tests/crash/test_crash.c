/* The crash harness: kill -9 at random moments, restart, and prove that the
 * journal lost nothing it acknowledged.
 *
 * Two writers take turns, one cycle each, on their own data directories:
 *
 *   server cycles  The real server (--mock-delay-ms 0) under three HTTP
 *                  writer threads (POST messages to four long-lived mock
 *                  sessions, plus a session created, fed and sometimes
 *                  terminated in each cycle) and four SSE readers that
 *                  resume with Last-Event-ID.  After a random 20-300 ms the
 *                  server is SIGKILLed and started again.  Acknowledged =
 *                  the HTTP answer arrived (200 for a create, 204 for a
 *                  message or a terminate), or an SSE reader was sent the
 *                  event.
 *   driver cycles  tests/crash/crash_driver appends straight through
 *                  journal.h (four threads; synchronous and pipelined
 *                  batches of 1-16 events; durability full, every third
 *                  cycle normal) and prints each batch the journal
 *                  acknowledged; it is SIGKILLed after a random 20-300 ms.
 *
 * After every kill the journal is opened read-only next to the restarted
 * server (or after the dead driver) and checked: PRAGMA integrity_check is
 * ok; each session's sequences are 1..last with no gap and no duplicate and
 * last equals the session row's count; every acknowledged message, create
 * and terminate is there exactly once; every event an SSE reader received is
 * stored with the same bytes; every driver event is the exact text the
 * driver wrote.  SSE readers must see each sequence exactly once across all
 * their reconnections, and at the end each one catches up and must have seen
 * 1..last.  One summary line reports cycles, acknowledgements and losses;
 * any loss, gap, duplicate or corruption fails the test.
 *
 * Environment: SJ_CRASH_CYCLES (server cycles and driver cycles each,
 * default 50), SJ_CRASH_SEED (default: from the clock; printed), SJ_BINARY,
 * SJ_CRASH_DRIVER, SJ_TEST_TMPDIR.  Only processes this test started are
 * ever signalled, by their PIDs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crash_event.h"
#include "base/hmap.h"
#include "httpc.h"
#include "journal/journal.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CRASH_SESSIONS 4   /* long-lived sessions s0..s3 */
#define CRASH_WRITERS 3
#define CRASH_READERS 4    /* two on s0, two on s1 */
#define CRASH_DRIVER_THREADS 4
#define CRASH_REQUEST_MS 5000
#define CRASH_CATCH_UP_MS 15000

static const char *const crash_server_args[] = {"--mock-delay-ms", "0", NULL};

/* ---- what was acknowledged ------------------------------------------------ */

struct crash_ack {
    char session[32];
    char text[64];   /* the message text ("" for a create or terminate) */
    int kind;        /* CRASH_ACK_* */
};

enum { CRASH_ACK_MESSAGE, CRASH_ACK_CREATE, CRASH_ACK_TERMINATE };

/* One SSE reader's whole history across reconnections. */
struct crash_reader {
    char session[32];
    uint64_t last;          /* last sequence received */
    char **texts;           /* texts[i]: data of sequence i + 1 */
    size_t n_texts, cap;
    unsigned duplicates;    /* a sequence received twice */
    unsigned gaps;          /* a sequence skipped */
    unsigned reconnects;
    pthread_t thread;
};

struct crash {
    unsigned seed;
    struct sj_server srv;
    char srv_dir[512];
    char drv_dir[512];
    char drv_db[600];
    int cycle;
    atomic_int stop;

    pthread_mutex_t lock;
    struct crash_ack *acks;
    size_t n_acks, cap_acks;
    unsigned unexpected; /* answers other than the acknowledgements above */

    struct crash_reader readers[CRASH_READERS];

    uint64_t drv_acked[CRASH_DRIVER_THREADS]; /* highest acknowledged sequence */
    uint64_t drv_checked[CRASH_DRIVER_THREADS]; /* events whose bytes were checked */

    /* figures */
    unsigned server_cycles, driver_cycles;
    uint64_t drv_events_acked, http_acked, sse_events, lost;
};

static int64_t crash_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void crash_record(struct crash *c, const char *session, const char *text, int kind)
{
    pthread_mutex_lock(&c->lock);
    if (c->n_acks == c->cap_acks) {
        size_t cap = c->cap_acks ? c->cap_acks * 2 : 256;
        struct crash_ack *a = realloc(c->acks, cap * sizeof *a);
        assert_non_null(a);
        c->acks = a;
        c->cap_acks = cap;
    }
    struct crash_ack *a = &c->acks[c->n_acks++];
    snprintf(a->session, sizeof a->session, "%s", session);
    snprintf(a->text, sizeof a->text, "%s", text ? text : "");
    a->kind = kind;
    pthread_mutex_unlock(&c->lock);
}

/* ---- HTTP load ---------------------------------------------------------------- */

/* One POST; returns the status, or 0 on a transport error (the server died:
 * the request may or may not have been committed, and nothing is claimed). */
static int crash_post(struct crash *c, const char *path, const char *body)
{
    static const char *const json_headers[] = {"Content-Type: application/json", NULL};
    struct httpc_response resp;
    int rc = httpc_request(c->srv.port, "POST", path, body ? json_headers : NULL, body,
                           body ? strlen(body) : 0, CRASH_REQUEST_MS, &resp);
    if (rc != 0)
        return 0;
    int status = resp.status;
    httpc_response_free(&resp);
    return status;
}

struct crash_writer {
    struct crash *c;
    int index;
    unsigned seed;
    pthread_t thread;
};

static void crash_unexpected(struct crash *c, const char *what, int status)
{
    if (atomic_load(&c->stop))
        return; /* a 5xx from a dying server is no claim either way */
    pthread_mutex_lock(&c->lock);
    c->unexpected++;
    pthread_mutex_unlock(&c->lock);
    fprintf(stderr, "crash: cycle %d: %s answered %d\n", c->cycle, what, status);
}

static void *crash_writer_main(void *arg)
{
    struct crash_writer *w = arg;
    struct crash *c = w->c;
    char own[32] = "", path[128], body[160], text[64];
    int own_live = 0, n = 0;

    if (w->index == 0) {
        /* A session born (and maybe terminated) in this cycle. */
        snprintf(own, sizeof own, "c%d", c->cycle);
        snprintf(path, sizeof path, "/v1/sessions/%s", own);
        int st = crash_post(c, path, "{\"agent\":\"mock\"}");
        if (st == 200) {
            crash_record(c, own, NULL, CRASH_ACK_CREATE);
            own_live = 1;
        } else if (st != 0) {
            crash_unexpected(c, path, st);
        }
    }
    while (!atomic_load(&c->stop)) {
        const char *sid;
        char fixed[8];
        if (own_live && n % 2 == 0) {
            sid = own;
        } else {
            snprintf(fixed, sizeof fixed, "s%d", (int)(rand_r(&w->seed) % CRASH_SESSIONS));
            sid = fixed;
        }
        snprintf(text, sizeof text, "echo w%d-c%d-n%d", w->index, c->cycle, n);
        snprintf(path, sizeof path, "/v1/sessions/%s/messages", sid);
        snprintf(body, sizeof body, "{\"message\":\"%s\"}", text);
        int st = crash_post(c, path, body);
        if (st == 204)
            crash_record(c, sid, text, CRASH_ACK_MESSAGE);
        else if (st != 0)
            crash_unexpected(c, path, st);
        else
            sj_sleep_ms(5); /* the server is down: do not spin */
        n++;
        if (own_live && n == 12 && (w->seed & 1)) {
            snprintf(path, sizeof path, "/v1/sessions/%s/terminate", own);
            st = crash_post(c, path, NULL);
            if (st == 204)
                crash_record(c, own, NULL, CRASH_ACK_TERMINATE);
            else if (st != 0)
                crash_unexpected(c, path, st);
            own_live = 0;
        }
    }
    return NULL;
}

/* ---- SSE readers -------------------------------------------------------------- */

static void crash_reader_take(struct crash_reader *r, uint64_t seq, const char *data)
{
    if (seq <= r->last) {
        r->duplicates++;
        fprintf(stderr, "crash: reader on %s got sequence %llu again (last %llu)\n", r->session,
                (unsigned long long)seq, (unsigned long long)r->last);
        return;
    }
    if (seq != r->last + 1) {
        r->gaps++;
        fprintf(stderr, "crash: reader on %s skipped from %llu to %llu\n", r->session,
                (unsigned long long)r->last, (unsigned long long)seq);
    }
    while (r->n_texts < seq) {
        if (r->n_texts == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 256;
            char **t = realloc(r->texts, cap * sizeof *t);
            assert_non_null(t);
            r->texts = t;
            r->cap = cap;
        }
        r->texts[r->n_texts++] = NULL;
    }
    r->texts[seq - 1] = strdup(data);
    assert_non_null(r->texts[seq - 1]);
    r->last = seq;
}

/* Reads one connection's worth of events: until the stream ends (the server
 * died), `until` is reached (0: no target), or the stop flag / deadline. */
static void crash_reader_run(struct crash *c, struct crash_reader *r, uint64_t until,
                             int64_t deadline)
{
    char path[96], header[64];
    const char *headers[2] = {NULL, NULL};
    snprintf(path, sizeof path, "/v1/sessions/%s/events/sse", r->session);
    while (crash_now_ms() < deadline && !(until && r->last >= until)) {
        if (!until && atomic_load(&c->stop))
            return;
        if (r->last) {
            snprintf(header, sizeof header, "Last-Event-ID: %llu", (unsigned long long)r->last);
            headers[0] = header;
        }
        struct httpc_response head;
        struct httpc_sse *sse = NULL;
        int rc = httpc_sse_open(c->srv.port, "GET", path, headers, NULL, 0, CRASH_REQUEST_MS,
                                &head, &sse);
        if (rc != 0 || !sse) {
            if (rc == 0)
                httpc_response_free(&head);
            sj_sleep_ms(10);
            continue;
        }
        httpc_response_free(&head);
        r->reconnects++;
        for (;;) {
            struct httpc_sse_event ev;
            int got = httpc_sse_next(sse, 100, &ev);
            if (got == 1) {
                if (ev.id)
                    crash_reader_take(r, strtoull(ev.id, NULL, 10), ev.data);
                httpc_sse_event_free(&ev);
                if (until && r->last >= until)
                    break;
                continue;
            }
            if (got == HTTPC_ETIMEOUT && crash_now_ms() < deadline &&
                (until || !atomic_load(&c->stop)))
                continue;
            break; /* ended, failed, or told to stop */
        }
        httpc_sse_close(sse);
        if (!until)
            return; /* one connection per cycle: the kill ends it */
    }
}

struct crash_reader_arg {
    struct crash *c;
    struct crash_reader *r;
};

static void *crash_reader_main(void *arg)
{
    struct crash_reader_arg *a = arg;
    crash_reader_run(a->c, a->r, 0, crash_now_ms() + 60000);
    free(a);
    return NULL;
}

/* ---- checking the journal ------------------------------------------------- */

struct crash_scan {
    const char *session;
    uint64_t expect;        /* next sequence due */
    unsigned bad_order;
    hmap_t *user_texts;     /* text -> count (as a pointer-sized integer) */
    int has_started_first;
    int has_terminated;
    /* driver sessions: every event past `checked` must be exactly
     * crash_event_json() (earlier ones were checked by an earlier cycle) */
    int driver;
    uint64_t checked;
    unsigned corrupt;
    /* SSE comparison */
    struct crash_reader *reader;
    unsigned sse_mismatch;
};

static int crash_scan_event(void *arg, uint64_t seq, const char *json, size_t json_len,
                            const char *raw, size_t raw_len, int turn_end)
{
    (void)turn_end; /* not part of what is checked */
    struct crash_scan *s = arg;
    if (seq != s->expect) {
        s->bad_order++;
        fprintf(stderr, "crash: session %s: sequence %llu where %llu was due\n", s->session,
                (unsigned long long)seq, (unsigned long long)s->expect);
    }
    s->expect = seq + 1;
    if (s->driver && seq > s->checked) {
        size_t want_len = 0, want_raw_len = 0;
        char *want = crash_event_json(s->session, seq, &want_len);
        char *want_raw = crash_event_raw(seq, &want_raw_len);
        int ok = want && want_len == json_len && memcmp(want, json, json_len) == 0 &&
                 (want_raw ? raw && raw_len == want_raw_len &&
                                 memcmp(want_raw, raw, raw_len) == 0
                           : raw == NULL);
        if (!ok) {
            s->corrupt++;
            fprintf(stderr, "crash: session %s: event %llu is not what was written\n",
                    s->session, (unsigned long long)seq);
        }
        free(want);
        free(want_raw);
        return 0;
    }
    if (s->driver)
        return 0;
    if (s->reader && seq <= s->reader->n_texts && s->reader->texts[seq - 1] &&
        (strlen(s->reader->texts[seq - 1]) != json_len ||
         memcmp(s->reader->texts[seq - 1], json, json_len) != 0)) {
        s->sse_mismatch++;
        fprintf(stderr, "crash: session %s: event %llu differs from what SSE delivered\n",
                s->session, (unsigned long long)seq);
    }
    if (seq == 1 && strstr(json, "\"type\":\"session.started\""))
        s->has_started_first = 1;
    if (strstr(json, "\"type\":\"session.ended\"") && strstr(json, "\"reason\":\"terminated\""))
        s->has_terminated = 1;
    if (strstr(json, "\"type\":\"item.completed\"") && strstr(json, "\"role\":\"user\"")) {
        json_t *ev = json_loadb(json, json_len, 0, NULL);
        const char *text = json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(json_object_get(ev, "data"), "item"),
                                           "content"),
                           0),
            "text"));
        if (text) {
            uintptr_t n = (uintptr_t)hmap_get(s->user_texts, text);
            assert_int_equal(hmap_put(s->user_texts, text, (void *)(n + 1)), 0);
        }
        json_decref(ev);
    }
    return 0;
}

struct crash_session_list {
    char **ids;
    uint64_t *last;
    size_t n, cap;
};

static int crash_list_row(void *arg, const struct journal_session_info *row)
{
    struct crash_session_list *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->ids = realloc(l->ids, l->cap * sizeof *l->ids);
        l->last = realloc(l->last, l->cap * sizeof *l->last);
        assert_non_null(l->ids);
        assert_non_null(l->last);
    }
    l->ids[l->n] = strdup(row->session_id);
    l->last[l->n] = row->last_sequence;
    l->n++;
    return 0;
}

static void crash_list_free(struct crash_session_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ids[i]);
    free(l->ids);
    free(l->last);
}

static struct crash_reader *crash_reader_of(struct crash *c, const char *session)
{
    /* The first reader of a session stands for it; the others are compared
     * against their own history below. */
    for (int i = 0; i < CRASH_READERS; i++)
        if (strcmp(c->readers[i].session, session) == 0)
            return &c->readers[i];
    return NULL;
}

/* Scans one session; fails the test on any structural problem. */
static void crash_scan_session(journal_reader_t *r, const char *sid, uint64_t last,
                               struct crash_scan *s)
{
    struct err err;
    s->session = sid;
    s->expect = 1;
    int rc = journal_read_events(r, sid, 0, 0, crash_scan_event, s, NULL, &err);
    if (rc != 0)
        fail_msg("crash: reading %s: %s", sid, err.msg);
    if (s->expect - 1 != last) {
        fprintf(stderr, "crash: session %s: %llu events, row says %llu\n", sid,
                (unsigned long long)(s->expect - 1), (unsigned long long)last);
        s->bad_order++;
    }
}

/* hmap_foreach callback: counts user messages stored more than once. */
static void crash_count_twice(const char *key, void *value, void *arg)
{
    if ((uintptr_t)value > 1) {
        fprintf(stderr, "crash: user message \"%s\" stored %lu times\n", key,
                (unsigned long)(uintptr_t)value);
        (*(unsigned *)arg)++;
    }
}

/* Checks the server's journal against everything acknowledged so far. */
static void crash_check_server(struct crash *c)
{
    char path[600];
    snprintf(path, sizeof path, "%s/journal.db", c->srv_dir);
    journal_reader_t *r;
    journal_t *j = sj_journal_open_checked(path, &r);
    struct err err;

    struct crash_session_list list = {0};
    assert_int_equal(journal_list_sessions(r, crash_list_row, &list, &err), 0);
    hmap_t *sessions = hmap_new(); /* id -> struct crash_scan */
    assert_non_null(sessions);
    struct crash_scan *scans = calloc(list.n ? list.n : 1, sizeof *scans);
    assert_non_null(scans);
    unsigned structural = 0;
    for (size_t i = 0; i < list.n; i++) {
        struct crash_scan *s = &scans[i];
        s->user_texts = hmap_new();
        assert_non_null(s->user_texts);
        s->reader = crash_reader_of(c, list.ids[i]);
        crash_scan_session(r, list.ids[i], list.last[i], s);
        structural += s->bad_order + s->sse_mismatch;
        assert_int_equal(hmap_put(sessions, list.ids[i], s), 0);
    }
    /* The second reader of each session must agree with the journal too. */
    for (int k = 0; k < CRASH_READERS; k++) {
        struct crash_reader *rd = &c->readers[k];
        if (crash_reader_of(c, rd->session) == rd)
            continue;
        struct crash_scan s = {.reader = rd, .user_texts = hmap_new()};
        assert_non_null(s.user_texts);
        struct crash_scan *main_scan = hmap_get(sessions, rd->session);
        crash_scan_session(r, rd->session, main_scan ? main_scan->expect - 1 : 0, &s);
        structural += s.bad_order + s.sse_mismatch;
        hmap_free(s.user_texts);
    }

    /* Every acknowledgement is in the journal, once; so is every event a
     * reader was sent. */
    uint64_t lost = 0;
    for (int k = 0; k < CRASH_READERS; k++) {
        const struct crash_reader *rd = &c->readers[k];
        const struct crash_scan *s = hmap_get(sessions, rd->session);
        uint64_t stored = s ? s->expect - 1 : 0;
        if (rd->last > stored) {
            lost += rd->last - stored;
            fprintf(stderr, "crash: cycle %d: a reader of %s was sent %llu events, %llu stored\n",
                    c->cycle, rd->session, (unsigned long long)rd->last,
                    (unsigned long long)stored);
        }
    }
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_acks; i++) {
        const struct crash_ack *a = &c->acks[i];
        struct crash_scan *s = hmap_get(sessions, a->session);
        int found = 0;
        if (s && a->kind == CRASH_ACK_CREATE)
            found = s->has_started_first;
        else if (s && a->kind == CRASH_ACK_TERMINATE)
            found = s->has_terminated;
        else if (s)
            found = (uintptr_t)hmap_get(s->user_texts, a->text) == 1;
        if (!found) {
            lost++;
            fprintf(stderr, "crash: cycle %d: acknowledged %s on %s (%s) not found exactly once\n",
                    c->cycle,
                    a->kind == CRASH_ACK_CREATE ? "create"
                    : a->kind == CRASH_ACK_TERMINATE ? "terminate" : "message",
                    a->session, a->text);
        }
    }
    pthread_mutex_unlock(&c->lock);
    /* No message was stored twice, acknowledged or not. */
    unsigned twice = 0;
    for (size_t i = 0; i < list.n; i++) {
        hmap_foreach(scans[i].user_texts, crash_count_twice, &twice);
        hmap_free(scans[i].user_texts);
    }
    structural += twice;
    free(scans);
    hmap_free(sessions);
    crash_list_free(&list);
    journal_close(j);
    c->lost += lost;
    if (structural || lost)
        fail_msg("crash: cycle %d (seed %u): %u ordering/SSE problems, %llu acknowledged lost",
                 c->cycle, c->seed, structural, (unsigned long long)lost);
}

/* ---- server cycles ---------------------------------------------------------- */

static void crash_server_start(struct crash *c)
{
    sj_server_release(&c->srv); /* the previous start's copies of the arguments */
    if (sj_server_start(&c->srv, c->srv_dir, crash_server_args) != 0)
        fail_msg("crash: cycle %d: the server did not start again", c->cycle);
}

static void crash_server_cycle(struct crash *c)
{
    struct crash_writer writers[CRASH_WRITERS];
    atomic_store(&c->stop, 0);
    for (int i = 0; i < CRASH_READERS; i++) {
        struct crash_reader_arg *a = malloc(sizeof *a);
        assert_non_null(a);
        a->c = c;
        a->r = &c->readers[i];
        assert_int_equal(pthread_create(&c->readers[i].thread, NULL, crash_reader_main, a), 0);
    }
    for (int i = 0; i < CRASH_WRITERS; i++) {
        writers[i] = (struct crash_writer){.c = c, .index = i,
                                           .seed = c->seed ^ (unsigned)(c->cycle * 97 + i)};
        assert_int_equal(pthread_create(&writers[i].thread, NULL, crash_writer_main,
                                        &writers[i]), 0);
    }
    unsigned s = c->seed + (unsigned)c->cycle;
    sj_sleep_ms(20 + (int)(rand_r(&s) % 281));
    sj_server_kill(&c->srv); /* by its PID: SIGKILL, reaped */
    atomic_store(&c->stop, 1);
    for (int i = 0; i < CRASH_WRITERS; i++)
        pthread_join(writers[i].thread, NULL);
    for (int i = 0; i < CRASH_READERS; i++)
        pthread_join(c->readers[i].thread, NULL);
    crash_server_start(c);
    crash_check_server(c);
    c->server_cycles++;
}

/* ---- driver cycles ---------------------------------------------------------- */

static void crash_driver_line(struct crash *c, const char *line)
{
    int t;
    unsigned long long seq;
    if (sscanf(line, "A drv-%d %llu", &t, &seq) != 2 || t < 0 || t >= CRASH_DRIVER_THREADS)
        fail_msg("crash: driver said: %s", line);
    if (seq > c->drv_acked[t]) {
        c->drv_events_acked += seq - c->drv_acked[t];
        c->drv_acked[t] = seq;
    }
}

/* Reads the driver's acknowledgements until `deadline` (or its end). */
static void crash_driver_read(struct crash *c, int fd, char *buf, size_t *len, int64_t deadline,
                              int to_eof)
{
    for (;;) {
        int64_t left = deadline - crash_now_ms();
        if (!to_eof && left <= 0)
            return;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, to_eof ? 5000 : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            if (to_eof)
                fail_msg("crash: the dead driver's pipe did not close");
            return;
        }
        ssize_t n = read(fd, buf + *len, 4095 - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* EOF: the driver is gone */
        *len += (size_t)n;
        buf[*len] = '\0';
        char *start = buf, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = '\0';
            crash_driver_line(c, start);
            start = nl + 1;
        }
        *len = strlen(start);
        memmove(buf, start, *len + 1);
    }
}

static void crash_check_driver(struct crash *c)
{
    if (c->drv_events_acked == 0) {
        /* Killed inside its first journal_open() (a slow start under load):
         * no file, or one not yet migrated, and nothing acknowledged to
         * look for.  The next driver opens that file and must succeed. */
        journal_t *probe = NULL;
        struct err why;
        if (journal_open_readonly(c->drv_db, &probe, &why) != 0) {
            fprintf(stderr, "crash: driver cycle %d: killed before its journal was ready "
                            "(%s); nothing was acknowledged\n", c->cycle, why.msg);
            return;
        }
        journal_close(probe);
    }
    journal_reader_t *r;
    journal_t *j = sj_journal_open_checked(c->drv_db, &r);
    struct err err;
    uint64_t lost = 0;
    unsigned bad = 0;
    for (int t = 0; t < CRASH_DRIVER_THREADS; t++) {
        char sid[32];
        snprintf(sid, sizeof sid, "drv-%d", t);
        struct journal_session_info info;
        memset(&info, 0, sizeof info);
        uint64_t last = 0;
        if (journal_get_session(r, sid, &info, &err) == 0) {
            last = info.last_sequence;
            journal_session_info_clear(&info);
            /* Every event's bytes every tenth cycle, else the new ones;
             * sequences and integrity every cycle. */
            struct crash_scan s = {.driver = 1,
                                   .checked = c->cycle % 10 == 9 ? 0 : c->drv_checked[t]};
            crash_scan_session(r, sid, last, &s);
            bad += s.bad_order + s.corrupt;
            c->drv_checked[t] = last;
        }
        if (last < c->drv_acked[t]) {
            lost += c->drv_acked[t] - last;
            fprintf(stderr, "crash: driver cycle %d: %s acknowledged %llu, stored %llu\n",
                    c->cycle, sid, (unsigned long long)c->drv_acked[t],
                    (unsigned long long)last);
        }
    }
    journal_close(j);
    c->lost += lost;
    if (bad || lost)
        fail_msg("crash: driver cycle %d (seed %u): %u bad events, %llu acknowledged lost",
                 c->cycle, c->seed, bad, (unsigned long long)lost);
}

static void crash_driver_cycle(struct crash *c)
{
    const char *bin = getenv("SJ_CRASH_DRIVER");
    if (!bin || !*bin)
        fail_msg("SJ_CRASH_DRIVER is not set");
    char seed[32];
    snprintf(seed, sizeof seed, "%u", c->seed + (unsigned)c->cycle);
    const char *durability = c->cycle % 3 == 2 ? "normal" : "full";
    char threads[8];
    snprintf(threads, sizeof threads, "%d", CRASH_DRIVER_THREADS);
    const char *argv[] = {bin, c->drv_db, seed, durability, threads, NULL};
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0)
        fail_msg("crash: cannot start %s: %s", bin, strerror(rc));

    char buf[4096];
    size_t len = 0;
    unsigned s = c->seed ^ (unsigned)c->cycle;
    /* The driver's start-up (journal_open, recovery) is part of the window. */
    crash_driver_read(c, fds[0], buf, &len, crash_now_ms() + 20 + (int)(rand_r(&s) % 281), 0);
    kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    /* Lines written before the kill are acknowledgements too. */
    crash_driver_read(c, fds[0], buf, &len, 0, 1);
    close(fds[0]);
    if (WIFEXITED(status))
        fail_msg("crash: the driver exited by itself with status %d", WEXITSTATUS(status));
    crash_check_driver(c);
    c->driver_cycles++;
}

/* ---- the test ------------------------------------------------------------------- */

static void crash_final_catch_up(struct crash *c)
{
    /* Every reader resumes once more and must end with exactly 1..last. */
    char path[600];
    snprintf(path, sizeof path, "%s/journal.db", c->srv_dir);
    journal_t *j = NULL;
    struct err err;
    if (journal_open_readonly(path, &j, &err) != 0)
        fail_msg("crash: %s", err.msg);
    for (int i = 0; i < CRASH_READERS; i++) {
        struct crash_reader *r = &c->readers[i];
        uint64_t last = journal_last_sequence(j, r->session);
        crash_reader_run(c, r, last, crash_now_ms() + CRASH_CATCH_UP_MS);
        if (r->last != last)
            fail_msg("crash: reader on %s ended at %llu of %llu", r->session,
                     (unsigned long long)r->last, (unsigned long long)last);
        for (uint64_t k = 0; k < last; k++)
            if (!r->texts[k])
                fail_msg("crash: reader on %s never got event %llu", r->session,
                         (unsigned long long)k + 1);
        if (r->duplicates || r->gaps)
            fail_msg("crash: reader on %s: %u duplicates, %u gaps", r->session, r->duplicates,
                     r->gaps);
        c->sse_events += last;
    }
    journal_close(j);
}

static void test_crash_cycles(void **state)
{
    (void)state; /* the harness keeps its own */
    static struct crash c;
    memset(&c, 0, sizeof c);
    const char *env = getenv("SJ_CRASH_SEED");
    c.seed = env && *env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    env = getenv("SJ_CRASH_CYCLES");
    int cycles = env && *env ? atoi(env) : 50;
    if (cycles < 1)
        cycles = 1;
    fprintf(stderr, "crash: seed %u (SJ_CRASH_SEED), %d server and %d driver cycles\n", c.seed,
            cycles, cycles);
    pthread_mutex_init(&c.lock, NULL);
    sj_fresh_dir(c.srv_dir, sizeof c.srv_dir, "crash-server");
    sj_fresh_dir(c.drv_dir, sizeof c.drv_dir, "crash-driver");
    snprintf(c.drv_db, sizeof c.drv_db, "%s/journal.db", c.drv_dir);
    for (int i = 0; i < CRASH_READERS; i++)
        snprintf(c.readers[i].session, sizeof c.readers[i].session, "s%d", i / 2);

    int64_t t0 = crash_now_ms();
    crash_server_start(&c);
    for (int i = 0; i < CRASH_SESSIONS; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/sessions/s%d", i);
        assert_int_equal(crash_post(&c, path, "{\"agent\":\"mock\"}"), 200);
        crash_record(&c, path + strlen("/v1/sessions/"), NULL, CRASH_ACK_CREATE);
    }
    for (c.cycle = 0; c.cycle < cycles; c.cycle++) {
        crash_server_cycle(&c);
        crash_driver_cycle(&c);
    }
    crash_final_catch_up(&c);
    assert_int_equal(sj_server_stop(&c.srv), 0);
    sj_server_release(&c.srv);

    pthread_mutex_lock(&c.lock);
    c.http_acked = c.n_acks;
    unsigned unexpected = c.unexpected;
    pthread_mutex_unlock(&c.lock);
    unsigned reconnects = 0;
    for (int i = 0; i < CRASH_READERS; i++)
        reconnects += c.readers[i].reconnects;
    printf("crash: cycles %u (server %u, driver %u), acknowledged %llu (journal appends: %llu "
           "events; HTTP: %llu requests; SSE: %llu events over %u reconnections), lost %llu, "
           "unexpected answers %u, %.1f s, seed %u\n",
           c.server_cycles + c.driver_cycles, c.server_cycles, c.driver_cycles,
           (unsigned long long)(c.drv_events_acked + c.http_acked + c.sse_events),
           (unsigned long long)c.drv_events_acked, (unsigned long long)c.http_acked,
           (unsigned long long)c.sse_events, reconnects, (unsigned long long)c.lost,
           unexpected, (double)(crash_now_ms() - t0) / 1000.0, c.seed);
    fflush(stdout);
    assert_int_equal(c.lost, 0);
    assert_int_equal(unexpected, 0);
    for (int i = 0; i < CRASH_READERS; i++) {
        for (size_t k = 0; k < c.readers[i].n_texts; k++)
            free(c.readers[i].texts[k]);
        free(c.readers[i].texts);
    }
    free(c.acks);
    pthread_mutex_destroy(&c.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
