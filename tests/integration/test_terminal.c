/* Integration tests of the process terminal WebSocket
 * (GET /v1/processes/{id}/terminal/ws) through the test client in
 * tests/support/wsc.c: a shell on a tty typed into, its echo read back, a
 * resize seen by `stty size`, ping/pong, the exit frame and the close; the
 * token by header and by access_token, 401 without it, 404 for an unknown
 * process, 409 without a tty, 400 without a handshake; the framing errors
 * (unmasked 1002, too big 1009); and a client that never reads while its
 * process floods the terminal, which must neither grow the server's memory
 * nor stall anyone else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "httpc.h"
#include "server.h"
#include "wsc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN "term-T0ken"

/* The server is built like this test: with ASan its RSS is the
 * quarantine's as much as ours. */
#if defined(__SANITIZE_ADDRESS__)
#define SJ_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SJ_TEST_SANITIZED 1
#endif
#endif
#ifndef SJ_TEST_SANITIZED
#define SJ_TEST_SANITIZED 0
#endif
#define WAIT_MS 10000

static int setup(void **state)
{
    static const char *const args[] = { "--token", TOKEN, NULL };
    return sj_setup_with(state, args);
}

static char *create_proc(struct sj_server *s, const char *body)
{
    json_t *info = sj_call(s, "POST", "/v1/processes", body, 200);
    char *id = strdup(sj_str(info, "id"));
    json_decref(info);
    assert_non_null(id);
    return id;
}

static void kill_proc(struct sj_server *s, const char *id)
{
    char *path = sj_fmt("/v1/processes/%s/kill", id);
    json_decref(sj_call(s, "POST", path, NULL, 200));
    free(path);
}

static struct wsc *open_term(struct sj_server *s, const char *id)
{
    char *path = sj_fmt("/v1/processes/%s/terminal/ws", id);
    const char *headers[] = { "Authorization: Bearer " TOKEN, NULL };
    struct wsc *w = NULL;
    int status = 0;
    char *body = NULL;
    int rc = wsc_open(s->port, path, headers, 0, WAIT_MS, &w, &status, &body);
    if (rc != 0)
        fprintf(stderr, "open %s: status %d body %s\n", path, status, body ? body : "");
    free(path);
    free(body);
    assert_int_equal(rc, 0);
    return w;
}

/* Expects the ready frame first. */
static void expect_ready(struct wsc *w, const char *id)
{
    struct wsc_msg m;
    assert_int_equal(wsc_recv(w, WAIT_MS, &m), 0);
    assert_int_equal(m.opcode, 1);
    json_t *f = json_loads(m.data, 0, NULL);
    assert_non_null(f);
    assert_string_equal(sj_str(f, "type"), "ready");
    assert_string_equal(sj_str(f, "processId"), id);
    json_decref(f);
    wsc_msg_free(&m);
}

/* Reads binary frames into *screen until it holds `want`; control frames
 * other than pong fail the test.  Returns the pongs seen. */
static int read_until(struct wsc *w, char **screen, size_t *len, const char *want)
{
    int pongs = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!*screen || !strstr(*screen, want)) {
        struct wsc_msg m;
        int rc = wsc_recv(w, WAIT_MS, &m);
        if (rc != 0)
            fprintf(stderr, "waiting for \"%s\", have: %s\n", want, *screen ? *screen : "");
        assert_int_equal(rc, 0);
        if (m.opcode == 10) {
            pongs++;
        } else {
            if (m.opcode != 2)
                fprintf(stderr, "unexpected frame %d: %s\n", m.opcode, m.data);
            assert_int_equal(m.opcode, 2);
            *screen = realloc(*screen, *len + m.len + 1);
            assert_non_null(*screen);
            memcpy(*screen + *len, m.data, m.len);
            *len += m.len;
            (*screen)[*len] = 0;
        }
        wsc_msg_free(&m);
    }
    return pongs;
}

/* Skips output frames up to the next text frame: new, its JSON. */
static json_t *next_control(struct wsc *w)
{
    for (;;) {
        struct wsc_msg m;
        int rc = wsc_recv(w, WAIT_MS, &m);
        if (rc != 0)
            fprintf(stderr, "no control frame came (%d)\n", rc);
        assert_int_equal(rc, 0);
        if (m.opcode == 1) {
            json_t *f = json_loads(m.data, 0, NULL);
            assert_non_null(f);
            wsc_msg_free(&m);
            return f;
        }
        assert_true(m.opcode == 2 || m.opcode == 10);
        wsc_msg_free(&m);
    }
}

/* Expects a close frame with `code` next (output frames skipped). */
static void expect_close(struct wsc *w, unsigned code)
{
    for (;;) {
        struct wsc_msg m;
        assert_int_equal(wsc_recv(w, WAIT_MS, &m), 0);
        int op = m.opcode;
        unsigned got = m.code;
        wsc_msg_free(&m);
        if (op == 2)
            continue;
        assert_int_equal(op, 8);
        assert_int_equal(got, code);
        return;
    }
}

static void test_shell(void **state)
{
    struct sj_server *s = *state;
    char *id = create_proc(s, "{\"command\":\"sh\",\"tty\":true,\"interactive\":true,"
                              "\"env\":{\"PS1\":\"$ \"}}");
    struct wsc *w = open_term(s, id);
    expect_ready(w, id);
    char *screen = NULL;
    size_t len = 0;

    /* Typed as text input: the shell echoes the line, then runs it.  The
     * quotes prove it is the shell's output and not the echo alone. */
    assert_int_equal(wsc_send_text(w, "{\"type\":\"input\",\"data\":\"echo hel''lo\\n\"}"), 0);
    read_until(w, &screen, &len, "hello\r\n");

    /* Base64 input, and a binary frame as raw input. */
    assert_int_equal(wsc_send_text(w, "{\"type\":\"input\",\"data\":\"ZWNobyBiNjQnJ29rCg==\","
                                      "\"encoding\":\"base64\"}"), 0); /* echo b64''ok\n */
    read_until(w, &screen, &len, "b64ok\r\n");
    assert_int_equal(wsc_send_frame(w, 2, 1, "echo r''aw\n", 11), 0);
    read_until(w, &screen, &len, "raw\r\n");

    /* A resize seen by the program on the terminal. */
    assert_int_equal(wsc_send_text(w, "{\"type\":\"resize\",\"cols\":101,\"rows\":37}"), 0);
    assert_int_equal(wsc_send_text(w, "{\"type\":\"input\",\"data\":\"stty size\\n\"}"), 0);
    read_until(w, &screen, &len, "37 101\r\n");

    /* Ping between fragments of one input message: pong, then the input. */
    assert_int_equal(wsc_send_frame(w, 1, 0, "{\"type\":\"input\",", 16), 0);
    assert_int_equal(wsc_send_frame(w, 9, 1, "hi", 2), 0);
    assert_int_equal(wsc_send_frame(w, 0, 1, "\"data\":\"echo fr''ag\\n\"}", 23), 0);
    int pongs = read_until(w, &screen, &len, "frag\r\n");
    assert_int_equal(pongs, 1);

    /* Bad requests answer an error frame and keep the terminal open. */
    assert_int_equal(wsc_send_text(w, "{\"type\":\"resize\",\"cols\":0,\"rows\":5}"), 0);
    json_t *f = next_control(w);
    assert_string_equal(sj_str(f, "type"), "error");
    json_decref(f);
    assert_int_equal(wsc_send_text(w, "not json"), 0);
    f = next_control(w);
    assert_string_equal(sj_str(f, "type"), "error");
    json_decref(f);

    /* The exit: its frame with the code, then a normal close. */
    assert_int_equal(wsc_send_text(w, "{\"type\":\"input\",\"data\":\"exit 3\\n\"}"), 0);
    f = next_control(w);
    assert_string_equal(sj_str(f, "type"), "exit");
    assert_int_equal(sj_int(f, "exitCode"), 3);
    json_decref(f);
    expect_close(w, 1000);
    wsc_free(w);

    /* A late terminal replays the recent output, then the exit. */
    w = open_term(s, id);
    expect_ready(w, id);
    free(screen);
    screen = NULL;
    len = 0;
    read_until(w, &screen, &len, "37 101");
    f = next_control(w);
    assert_string_equal(sj_str(f, "type"), "exit");
    assert_int_equal(sj_int(f, "exitCode"), 3);
    json_decref(f);
    expect_close(w, 1000);
    wsc_free(w);
    free(screen);
    free(id);
}

static void expect_refused(struct sj_server *s, const char *path, const char *const *headers,
                           int status, const char *type)
{
    struct wsc *w = NULL;
    int got = 0;
    char *body = NULL;
    assert_int_equal(wsc_open(s->port, path, headers, 0, WAIT_MS, &w, &got, &body), -1);
    assert_null(w);
    assert_int_equal(got, status);
    assert_non_null(body);
    json_t *p = json_loads(body, 0, NULL);
    assert_non_null(p);
    assert_int_equal(sj_int(p, "status"), status);
    if (type) {
        char *want = sj_fmt("urn:sandbox-agent:error:%s", type);
        assert_string_equal(sj_str(p, "type"), want);
        free(want);
    }
    json_decref(p);
    free(body);
}

static void test_auth_and_refusals(void **state)
{
    struct sj_server *s = *state;
    char *id = create_proc(s, "{\"command\":\"cat\",\"tty\":true,\"interactive\":true}");
    char *path = sj_fmt("/v1/processes/%s/terminal/ws", id);
    const char *bad[] = { "Authorization: Bearer wrong", NULL };

    /* The token: none, a wrong one by header or by query. */
    expect_refused(s, path, NULL, 401, "token_invalid");
    expect_refused(s, path, bad, 401, "token_invalid");
    char *q = sj_fmt("%s?access_token=wrong", path);
    expect_refused(s, q, NULL, 401, "token_invalid");
    free(q);
    /* The query token is for this route only. */
    struct httpc_response r;
    assert_int_equal(httpc_request(s->port, "GET", "/v1/processes?access_token=" TOKEN, NULL,
                                   NULL, 0, WAIT_MS, &r), 0);
    assert_int_equal(r.status, 401);
    httpc_response_free(&r);

    /* The right one by query, as the SDK sends it. */
    q = sj_fmt("%s?access_token=%s", path, TOKEN);
    struct wsc *w = NULL;
    int status = 0;
    char *body = NULL;
    assert_int_equal(wsc_open(s->port, q, NULL, 0, WAIT_MS, &w, &status, &body), 0);
    free(body);
    free(q);
    expect_ready(w, id);
    assert_int_equal(wsc_send_text(w, "{\"type\":\"close\"}"), 0);
    expect_close(w, 1000);
    wsc_free(w);

    /* Unknown process, before any upgrade. */
    const char *good[] = { "Authorization: Bearer " TOKEN, NULL };
    expect_refused(s, "/v1/processes/proc_nope/terminal/ws", good, 404, "not_found");
    /* A process without a terminal. */
    char *plain = create_proc(s, "{\"command\":\"cat\",\"interactive\":true}");
    char *ppath = sj_fmt("/v1/processes/%s/terminal/ws", plain);
    expect_refused(s, ppath, good, 409, "conflict");
    /* Not a WebSocket handshake. */
    assert_int_equal(httpc_request(s->port, "GET", path, good, NULL, 0, WAIT_MS, &r), 0);
    assert_int_equal(r.status, 400);
    httpc_response_free(&r);

    kill_proc(s, plain);
    kill_proc(s, id);
    free(ppath);
    free(plain);
    free(path);
    free(id);
}

static void test_framing_errors(void **state)
{
    struct sj_server *s = *state;
    char *id = create_proc(s, "{\"command\":\"cat\",\"tty\":true,\"interactive\":true}");

    /* An unmasked client frame: 1002. */
    struct wsc *w = open_term(s, id);
    expect_ready(w, id);
    static const unsigned char unmasked[] = { 0x81, 0x02, '{', '}' };
    assert_int_equal(wsc_send_raw(w, unmasked, sizeof unmasked), 0);
    expect_close(w, 1002);
    wsc_free(w);

    /* A frame announcing more than the bound: 1009 from the header alone. */
    w = open_term(s, id);
    expect_ready(w, id);
    static const unsigned char big[] = { 0x82, 0xff, 0, 0, 0, 0, 0x10, 0, 0, 0, 1, 2, 3, 4 };
    assert_int_equal(wsc_send_raw(w, big, sizeof big), 0);
    expect_close(w, 1009);
    wsc_free(w);

    /* The client's close is answered with its code. */
    w = open_term(s, id);
    expect_ready(w, id);
    assert_int_equal(wsc_send_frame(w, 8, 1, "\x0f\xa0", 2), 0); /* 4000 */
    expect_close(w, 4000);
    wsc_free(w);

    kill_proc(s, id);
    free(id);
}

/* A process that does not read its terminal while the client keeps typing:
 * past a bound of queued input the server refuses more (error frames)
 * instead of holding it all. */
static void test_input_not_read(void **state)
{
    struct sj_server *s = *state;
    char *id = create_proc(s, "{\"command\":\"sh\",\"args\":[\"-c\",\"stty raw -echo; "
                              "echo st''arted; exec sleep 60\"],\"tty\":true,\"interactive\":true}");
    struct wsc *w = open_term(s, id);
    expect_ready(w, id);
    char *screen = NULL;
    size_t len = 0;
    read_until(w, &screen, &len, "started");
    size_t mib = 1024 * 1024;
    char *big = malloc(mib);
    assert_non_null(big);
    memset(big, 'x', mib);
    for (int i = 0; i < 12; i++)
        assert_int_equal(wsc_send_frame(w, 2, 1, big, mib), 0);
    free(big);
    json_t *f = next_control(w);
    assert_string_equal(sj_str(f, "type"), "error");
    assert_non_null(strstr(sj_str(f, "message"), "not reading its input"));
    json_decref(f);
    kill_proc(s, id);
    wsc_free(w);
    free(screen);
    free(id);
}

/* A terminal still open when the server stops: the server's stop ends the
 * process (exit frame, close 1000) or says goodbye (close 1001), and the
 * server exits cleanly with the socket open. */
static void test_open_at_shutdown(void **state)
{
    struct sj_server *s = *state;
    char *id = create_proc(s, "{\"command\":\"cat\",\"tty\":true,\"interactive\":true}");
    struct wsc *w = open_term(s, id);
    expect_ready(w, id);
    assert_int_equal(sj_server_stop(s), 0);
    for (;;) {
        struct wsc_msg m;
        assert_int_equal(wsc_recv(w, WAIT_MS, &m), 0);
        int op = m.opcode;
        unsigned code = m.code;
        wsc_msg_free(&m);
        if (op != 8)
            continue;
        assert_true(code == 1000 || code == 1001);
        break;
    }
    wsc_free(w);
    free(id);
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A client that never reads while its process floods the terminal: the
 * server reads the log for it only while its small buffer has room, so its
 * memory stays flat while the log runs far past it, and other requests and
 * another terminal are answered meanwhile. */
static void test_flood_never_read(void **state)
{
    struct sj_server *s = *state;
    /* A small log cap: the flood cycles through it many times over. */
    json_t *cfg = sj_call(s, "GET", "/v1/processes/config", NULL, 200);
    assert_int_equal(json_object_set_new(cfg, "maxLogBytesPerProcess", json_integer(4194304)), 0);
    char *cfg_text = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    json_decref(sj_call(s, "POST", "/v1/processes/config", cfg_text, 200));
    free(cfg_text);
    char *flood = create_proc(s, "{\"command\":\"yes\",\"args\":[\"0123456789abcdef"
                                 "0123456789abcdef0123456789abcdef0123456789abcdef\"],"
                                 "\"tty\":true}");
    char *path = sj_fmt("/v1/processes/%s/terminal/ws", flood);
    const char *headers[] = { "Authorization: Bearer " TOKEN, NULL };
    struct wsc *stuck = NULL;
    int status = 0;
    char *body = NULL;
    assert_int_equal(wsc_open(s->port, path, headers, 4096, WAIT_MS, &stuck, &status, &body), 0);
    free(body);
    sj_sleep_ms(300); /* let the socket buffers fill up */
    long base = rss_kib(s->pid);

    /* A well-behaved terminal on another process keeps working. */
    char *echo = create_proc(s, "{\"command\":\"cat\",\"tty\":true,\"interactive\":true}");
    struct wsc *w = open_term(s, echo);
    expect_ready(w, echo);
    char *screen = NULL;
    size_t len = 0;
    long peak = base;
    double worst = 0;
    for (int round = 0; round < 20; round++) {
        double t0 = now_s();
        struct httpc_response r;
        assert_int_equal(httpc_request(s->port, "GET", "/v1/health", NULL, NULL, 0, WAIT_MS,
                                       &r), 0);
        assert_int_equal(r.status, 200);
        httpc_response_free(&r);
        char *line = sj_fmt("{\"type\":\"input\",\"data\":\"ping%d\\n\"}", round);
        assert_int_equal(wsc_send_text(w, line), 0);
        free(line);
        char want[32];
        snprintf(want, sizeof want, "ping%d\r\n", round);
        read_until(w, &screen, &len, want);
        double took = now_s() - t0;
        if (took > worst)
            worst = took;
        long now = rss_kib(s->pid);
        if (now > peak)
            peak = now;
        sj_sleep_ms(100);
    }
    /* How far the flood got meanwhile: far past what the stuck client took. */
    char *lpath = sj_fmt("/v1/processes/%s/logs?tail=1", flood);
    json_t *logs = sj_call(s, "GET", lpath, NULL, 200);
    free(lpath);
    json_t *last = json_array_get(json_object_get(logs, "entries"), 0);
    long long seq = last ? sj_int(last, "sequence") : 0;
    json_decref(logs);
    fprintf(stderr, "flood: rss %ld KiB before, %ld KiB peak; log sequence %lld; slowest "
                    "round %.3f s\n", base, peak, seq, worst);
    json_t *info = sj_call(s, "GET", "/v1/processes", NULL, 200);
    json_decref(info);
    /* The bound itself: the most output one socket had waiting in the
     * server (/v1/debug/terminals) is the buffer's bound plus the last read
     * (a chunk over the read budget at most).  Without the bound the stuck
     * client's buffer holds the whole flood. */
    json_t *dbg = sj_call(s, "GET", "/v1/debug/terminals", NULL, 200);
    long long held = sj_int(dbg, "peakBufferedBytes"), bound = sj_int(dbg, "boundBytes");
    fprintf(stderr, "flood: at most %lld bytes waited for one socket (bound %lld)\n", held,
            bound);
    assert_true(held > 0);
    assert_true(held <= bound + 2 * 65536 + 1024);
    json_decref(dbg);
    /* RSS and time are the sanitizer's or the wrapper's (valgrind, TSan's
     * `env`) there: printed only, as the other RSS tests do. */
    const char *wrapper = getenv("SJ_SERVER_WRAPPER");
    if ((!wrapper || !*wrapper) && !SJ_TEST_SANITIZED) {
        assert_true(worst < 5.0);
        /* Without the bound: 67 MiB and more in these two seconds. */
        assert_true(peak - base < 24 * 1024);
    }

    wsc_free(w);
    wsc_free(stuck);
    kill_proc(s, flood);
    kill_proc(s, echo);
    free(screen);
    free(path);
    free(echo);
    free(flood);
}

int main(void)
{
    /* GET /v1/debug/terminals, for the flood test. */
    if (setenv("SJ_TEST_DEBUG_ROUTES", "1", 1) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shell, setup, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_auth_and_refusals, setup, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_framing_errors, setup, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_flood_never_read, setup, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_input_not_read, setup, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_open_at_shutdown, setup, sj_teardown_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
