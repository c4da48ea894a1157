/* Integration tests of the workspace processes (/v1/processes*): runs to
 * completion, exit codes and signals, stdin, a pseudo-terminal, many at
 * once, the byte cap, logs followed live and then the same log, byte for
 * byte, from the journal after a kill -9 of the server; auth and unknown
 * ids on every route, and no zombie left behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "httpc.h"
#include "server.h"

#include <dirent.h>
#include <pthread.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 10000

/* Decodes base64 (the log entries' encoding) onto the end of `out`. */
static void b64_append(const char *in, char **out, size_t *len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in);
    *out = realloc(*out, *len + n / 4 * 3 + 4);
    assert_non_null(*out);
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && in[i] != '='; i++) {
        const char *p = strchr(abc, in[i]);
        assert_non_null(p);
        acc = acc << 6 | (unsigned)(p - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            (*out)[(*len)++] = (char)(acc >> bits & 0xff);
        }
    }
    (*out)[*len] = '\0';
}

/* The concatenated output of a process's log entries (markers included). */
static char *log_text(struct sj_server *s, const char *id, const char *query, size_t *len)
{
    char *path = sj_fmt("/v1/processes/%s/logs%s", id, query ? query : "");
    json_t *page = sj_call(s, "GET", path, NULL, 200);
    free(path);
    char *out = NULL;
    *len = 0;
    b64_append("", &out, len);
    json_t *entries = json_object_get(page, "entries");
    size_t i;
    json_t *e;
    long long last = 0;
    json_array_foreach(entries, i, e) {
        assert_true(sj_int(e, "sequence") > last);
        last = sj_int(e, "sequence");
        assert_string_equal(sj_str(e, "encoding"), "base64");
        b64_append(sj_str(e, "data"), &out, len);
    }
    json_decref(page);
    return out;
}

static json_t *create(struct sj_server *s, const char *body)
{
    return sj_call(s, "POST", "/v1/processes", body, 200);
}

/* Waits until the process is reported exited; returns its ProcessInfo. */
static json_t *wait_exited(struct sj_server *s, const char *id)
{
    char *path = sj_fmt("/v1/processes/%s", id);
    for (int i = 0; i < WAIT_MS / 10; i++) {
        json_t *info = sj_call(s, "GET", path, NULL, 200);
        if (strcmp(sj_str(info, "status"), "exited") == 0) {
            free(path);
            return info;
        }
        json_decref(info);
        sj_sleep_ms(10);
    }
    free(path);
    fail_msg("process %s did not exit", id);
    return NULL;
}

/* Fails if any child of the server is a zombie (state Z in /proc). */
static void assert_no_zombie(struct sj_server *s)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *de;
    int zombies = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *close_paren = strrchr(buf, ')');
        char state = 0;
        int ppid = 0;
        if (close_paren && sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 &&
            ppid == s->pid && state == 'Z') {
            fprintf(stderr, "zombie child of the server: %s", buf);
            zombies++;
        }
    }
    closedir(d);
    assert_int_equal(zombies, 0);
}

static void test_run_exit_output_timeout(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_call(s, "POST", "/v1/processes/run",
                        "{\"command\":\"sh\",\"args\":[\"-c\",\"printf out; printf err >&2; "
                        "exit 7\"]}",
                        200);
    assert_int_equal(sj_int(r, "exitCode"), 7);
    assert_string_equal(sj_str(r, "stdout"), "out");
    assert_string_equal(sj_str(r, "stderr"), "err");
    assert_true(json_is_false(json_object_get(r, "timedOut")));
    assert_true(json_is_false(json_object_get(r, "stdoutTruncated")));
    assert_true(json_is_integer(json_object_get(r, "durationMs")));
    json_decref(r);

    r = sj_call(s, "POST", "/v1/processes/run",
                "{\"command\":\"sh\",\"args\":[\"-c\",\"echo 0123456789abcdef\"],"
                "\"maxOutputBytes\":4}",
                200);
    assert_string_equal(sj_str(r, "stdout"), "0123");
    assert_true(json_is_true(json_object_get(r, "stdoutTruncated")));
    json_decref(r);

    r = sj_call(s, "POST", "/v1/processes/run",
                "{\"command\":\"sleep\",\"args\":[\"30\"],\"timeoutMs\":200}", 200);
    assert_true(json_is_true(json_object_get(r, "timedOut")));
    assert_true(json_is_null(json_object_get(r, "exitCode")));
    assert_true(sj_int(r, "durationMs") < 10000);
    json_decref(r);

    sj_expect_problem(s, "POST", "/v1/processes/run", "{\"command\":\"no-such-program-xyz\"}",
                      400, "invalid_request");
    sj_expect_problem(s, "POST", "/v1/processes/run", "{\"args\":[]}", 400, "invalid_request");
    /* A missing working directory is named as such, not as a missing program. */
    static const char *const routes[] = { "/v1/processes/run", "/v1/processes" };
    for (int i = 0; i < 2; i++) {
        json_t *pd = sj_call(s, "POST", routes[i],
                             "{\"command\":\"echo\",\"cwd\":\"/no/such/dir\"}", 400);
        assert_non_null(strstr(sj_str(pd, "detail"), "cwd /no/such/dir"));
        json_decref(pd);
    }
    assert_no_zombie(s);
}

static void test_exit_codes_and_signals(void **state)
{
    struct sj_server *s = *state;
    json_t *p = create(s, "{\"command\":\"sh\",\"args\":[\"-c\",\"exit 3\"]}");
    json_t *info = wait_exited(s, sj_str(p, "id"));
    assert_int_equal(sj_int(info, "exitCode"), 3);
    assert_true(json_is_integer(json_object_get(info, "exitedAtMs")));
    json_decref(info);
    json_decref(p);

    p = create(s, "{\"command\":\"sleep\",\"args\":[\"30\"]}");
    char *path = sj_fmt("/v1/processes/%s/kill?waitMs=5000", sj_str(p, "id"));
    info = sj_call(s, "POST", path, NULL, 200);
    assert_string_equal(sj_str(info, "status"), "exited");
    assert_int_equal(sj_int(info, "exitCode"), 128 + 9);
    json_decref(info);
    free(path);
    json_decref(p);

    /* stop: EOF, then SIGTERM, which sleep does not survive. */
    p = create(s, "{\"command\":\"sleep\",\"args\":[\"30\"]}");
    path = sj_fmt("/v1/processes/%s/stop?waitMs=5000", sj_str(p, "id"));
    info = sj_call(s, "POST", path, NULL, 200);
    assert_string_equal(sj_str(info, "status"), "exited");
    assert_int_equal(sj_int(info, "exitCode"), 128 + 15);
    json_decref(info);
    free(path);

    /* delete: only once exited; then it is gone. */
    path = sj_fmt("/v1/processes/%s", sj_str(p, "id"));
    sj_call(s, "DELETE", path, NULL, 204);
    sj_expect_problem(s, "GET", path, NULL, 404, "not_found");
    free(path);
    json_decref(p);

    p = create(s, "{\"command\":\"sleep\",\"args\":[\"30\"]}");
    path = sj_fmt("/v1/processes/%s", sj_str(p, "id"));
    sj_expect_problem(s, "DELETE", path, NULL, 409, "conflict");
    free(path);
    path = sj_fmt("/v1/processes/%s/kill?waitMs=5000", sj_str(p, "id"));
    json_decref(sj_call(s, "POST", path, NULL, 200));
    free(path);
    json_decref(p);
    assert_no_zombie(s);
}

static void test_stdin_round_trip(void **state)
{
    struct sj_server *s = *state;
    json_t *p = create(s, "{\"command\":\"cat\",\"interactive\":true}");
    const char *id = sj_str(p, "id");
    char *path = sj_fmt("/v1/processes/%s/input", id);
    /* "hi\0\xff\n" in base64, then text */
    json_t *r = sj_call(s, "POST", path, "{\"data\":\"aGkA/wo=\",\"encoding\":\"base64\"}", 200);
    assert_int_equal(sj_int(r, "bytesWritten"), 5);
    json_decref(r);
    json_decref(sj_call(s, "POST", path, "{\"data\":\"text\\n\",\"encoding\":\"utf8\"}", 200));
    sj_expect_problem(s, "POST", path, "{\"data\":\"***\",\"encoding\":\"base64\"}", 400,
                      "invalid_request");
    char *stop = sj_fmt("/v1/processes/%s/stop?waitMs=5000", id);
    json_t *info = sj_call(s, "POST", stop, NULL, 200);
    assert_int_equal(sj_int(info, "exitCode"), 0); /* cat ends on EOF */
    json_decref(info);
    size_t len;
    char *text = log_text(s, id, NULL, &len);
    assert_int_equal(len, 10);
    assert_memory_equal(text, "hi\0\xff\ntext\n", 10);
    free(text);
    /* input to an exited process */
    sj_expect_problem(s, "POST", path, "{\"data\":\"x\"}", 409, "conflict");
    free(stop);
    free(path);
    json_decref(p);

    /* not interactive: no input at all */
    p = create(s, "{\"command\":\"sleep\",\"args\":[\"30\"]}");
    path = sj_fmt("/v1/processes/%s/input", sj_str(p, "id"));
    sj_expect_problem(s, "POST", path, "{\"data\":\"x\"}", 409, "conflict");
    free(path);
    path = sj_fmt("/v1/processes/%s/kill?waitMs=5000", sj_str(p, "id"));
    json_decref(sj_call(s, "POST", path, NULL, 200));
    free(path);
    json_decref(p);
}

static void test_pty(void **state)
{
    struct sj_server *s = *state;
    json_t *p = create(s, "{\"command\":\"tty\",\"tty\":true}");
    json_t *info = wait_exited(s, sj_str(p, "id"));
    assert_int_equal(sj_int(info, "exitCode"), 0);
    assert_true(json_is_true(json_object_get(info, "tty")));
    size_t len;
    char *text = log_text(s, sj_str(p, "id"), "?stream=pty", &len);
    assert_non_null(strstr(text, "/dev/pts/"));
    free(text);
    json_decref(info);
    json_decref(p);

    p = create(s, "{\"command\":\"sh\",\"args\":[\"-c\",\"read x; stty size\"],\"tty\":true}");
    const char *id = sj_str(p, "id");
    char *path = sj_fmt("/v1/processes/%s/terminal/resize", id);
    json_t *r = sj_call(s, "POST", path, "{\"cols\":100,\"rows\":40}", 200);
    assert_int_equal(sj_int(r, "cols"), 100);
    assert_int_equal(sj_int(r, "rows"), 40);
    json_decref(r);
    sj_expect_problem(s, "POST", path, "{\"cols\":0,\"rows\":40}", 400, "invalid_request");
    free(path);
    path = sj_fmt("/v1/processes/%s/input", id);
    json_decref(sj_call(s, "POST", path, "{\"data\":\"go\\n\"}", 200));
    free(path);
    json_decref(wait_exited(s, id));
    text = log_text(s, id, NULL, &len);
    assert_non_null(strstr(text, "40 100"));
    free(text);
    json_decref(p);

    /* not a terminal */
    p = create(s, "{\"command\":\"sh\",\"args\":[\"-c\",\"exit 0\"]}");
    path = sj_fmt("/v1/processes/%s/terminal/resize", sj_str(p, "id"));
    sj_expect_problem(s, "POST", path, "{\"cols\":10,\"rows\":10}", 409, "conflict");
    free(path);
    json_decref(wait_exited(s, sj_str(p, "id")));
    json_decref(p);
    assert_no_zombie(s);
}

static void test_hundred_concurrent(void **state)
{
    struct sj_server *s = *state;
    json_t *cfg = sj_call(s, "GET", "/v1/processes/config", NULL, 200);
    json_object_set_new(cfg, "maxConcurrentProcesses", json_integer(150));
    char *body = json_dumps(cfg, JSON_COMPACT);
    json_t *set = sj_call(s, "POST", "/v1/processes/config", body, 200);
    assert_int_equal(sj_int(set, "maxConcurrentProcesses"), 150);
    json_decref(set);
    free(body);
    json_decref(cfg);

    enum { N = 100 };
    char *ids[N];
    for (int i = 0; i < N; i++) {
        char *req = sj_fmt("{\"command\":\"sh\",\"args\":[\"-c\",\"sleep 0.5; echo n%d\"]}", i);
        json_t *p = create(s, req);
        ids[i] = strdup(sj_str(p, "id"));
        json_decref(p);
        free(req);
    }
    json_t *list = sj_call(s, "GET", "/v1/processes", NULL, 200);
    assert_true(json_array_size(json_object_get(list, "processes")) >= N);
    json_decref(list);
    for (int i = 0; i < N; i++) {
        json_t *info = wait_exited(s, ids[i]);
        assert_int_equal(sj_int(info, "exitCode"), 0);
        json_decref(info);
        size_t len;
        char *text = log_text(s, ids[i], NULL, &len);
        char *want = sj_fmt("n%d\n", i);
        assert_string_equal(text, want);
        free(want);
        free(text);
        free(ids[i]);
    }
    assert_no_zombie(s);
}

static void test_byte_cap(void **state)
{
    struct sj_server *s = *state;
    json_t *cfg = sj_call(s, "POST", "/v1/processes/config",
            "{\"defaultRunTimeoutMs\":30000,\"maxRunTimeoutMs\":600000,"
            "\"maxConcurrentProcesses\":64,\"maxInputBytesPerRequest\":1048576,"
            "\"maxLogBytesPerProcess\":100000,\"maxOutputBytes\":1048576}",
            200);
    assert_int_equal(sj_int(cfg, "maxLogBytesPerProcess"), 100000);
    json_decref(cfg);
    /* About 1 MB in lines of 100 bytes. */
    json_t *p = create(s, "{\"command\":\"sh\",\"args\":[\"-c\",\"i=0; while [ $i -lt 10000 ]; "
                          "do printf '%099d\\\\n' $i; i=$((i+1)); done\"]}");
    json_decref(wait_exited(s, sj_str(p, "id")));
    char *path = sj_fmt("/v1/processes/%s/logs", sj_str(p, "id"));
    json_t *page = sj_call(s, "GET", path, NULL, 200);
    json_t *entries = json_object_get(page, "entries");
    assert_true(json_array_size(entries) > 1);
    size_t total = 0, i;
    json_t *e;
    char *first = NULL;
    size_t first_len = 0;
    b64_append(sj_str(json_array_get(entries, 0), "data"), &first, &first_len);
    assert_non_null(strstr(first, "bytes of older output dropped"));
    assert_string_equal(sj_str(json_array_get(entries, 0), "stream"), "combined");
    free(first);
    json_array_foreach(entries, i, e) total += strlen(sj_str(e, "data")) / 4 * 3;
    /* the cap, plus at most the chunk that pushed past it */
    assert_true(total <= 100000 + 70000);
    /* the newest line is kept */
    size_t len;
    char *text = log_text(s, sj_str(p, "id"), "?tail=1", &len);
    char want[101];
    snprintf(want, sizeof want, "%099d\n", 9999);
    assert_true(len >= 100);
    assert_memory_equal(text + len - 100, want, 100);
    free(text);
    json_decref(page);
    free(path);
    json_decref(p);
}

/* Follows the log live over SSE, kills the server with -9, and reads the
 * same bytes from the journal after the restart. */
static void test_follow_then_kill9_restart(void **state)
{
    struct sj_server *s = *state;
    json_t *p = create(s, "{\"command\":\"sh\",\"args\":[\"-c\",\"i=0; while [ $i -lt 300 ]; do "
                          "echo line $i; i=$((i+1)); done; echo err >&2; sleep 3\"]}");
    char *id = strdup(sj_str(p, "id"));
    json_decref(p);
    char *path = sj_fmt("/v1/processes/%s/logs?follow=true", id);
    char auth[192];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
    const char *headers[] = { auth, NULL };
    struct httpc_response head;
    struct httpc_sse *sse = NULL;
    assert_int_equal(httpc_sse_open(s->port, "GET", path, headers, NULL, 0, WAIT_MS, &head,
                                    &sse),
                     0);
    assert_int_equal(head.status, 200);
    httpc_response_free(&head);
    char *live = NULL;
    size_t live_len = 0;
    b64_append("", &live, &live_len);
    long long last = 0;
    int saw_err = 0;
    while (!saw_err) {
        struct httpc_sse_event ev;
        assert_int_equal(httpc_sse_next(sse, WAIT_MS, &ev), 1);
        assert_string_equal(ev.event, "log");
        json_t *e = json_loads(ev.data, 0, NULL);
        assert_non_null(e);
        assert_true(sj_int(e, "sequence") > last);
        last = sj_int(e, "sequence");
        assert_int_equal(atoll(ev.id), last);
        if (strcmp(sj_str(e, "stream"), "stderr") == 0)
            saw_err = 1;
        b64_append(sj_str(e, "data"), &live, &live_len);
        json_decref(e);
        httpc_sse_event_free(&ev);
    }
    httpc_sse_close(sse);
    assert_non_null(strstr(live, "line 299\nerr\n"));

    /* Resuming with Last-Event-ID gives nothing already seen. */
    char *last_id = sj_fmt("Last-Event-ID: %lld", last > 1 ? last - 1 : 0);
    const char *headers2[] = { auth, last_id, NULL };
    assert_int_equal(httpc_sse_open(s->port, "GET", path, headers2, NULL, 0, WAIT_MS, &head,
                                    &sse),
                     0);
    httpc_response_free(&head);
    struct httpc_sse_event ev;
    assert_int_equal(httpc_sse_next(sse, WAIT_MS, &ev), 1);
    assert_int_equal(atoll(ev.id), last > 1 ? last : 1);
    httpc_sse_event_free(&ev);
    httpc_sse_close(sse);
    free(last_id);

    size_t before_len;
    char *before = log_text(s, id, NULL, &before_len);
    assert_int_equal(before_len, live_len);
    assert_memory_equal(before, live, live_len);

    sj_server_kill(s);
    if (sj_server_restart(s) != 0)
        fail_msg("restart failed");
    char *ipath = sj_fmt("/v1/processes/%s", id);
    json_t *info = sj_call(s, "GET", ipath, NULL, 200);
    assert_string_equal(sj_str(info, "status"), "exited");
    assert_true(json_is_null(json_object_get(info, "exitCode")));
    json_decref(info);
    size_t after_len;
    char *after = log_text(s, id, NULL, &after_len);
    assert_int_equal(after_len, live_len);
    assert_memory_equal(after, live, live_len);
    /* and the follow stream of an exited process replays it and ends */
    assert_int_equal(httpc_sse_open(s->port, "GET", path, headers, NULL, 0, WAIT_MS, &head,
                                    &sse),
                     0);
    httpc_response_free(&head);
    unsigned skipped = 0;
    assert_int_equal(httpc_sse_wait_closed(sse, WAIT_MS, &skipped), 0);
    assert_true(skipped >= 2);
    httpc_sse_close(sse);
    free(after);
    free(before);
    free(live);
    free(ipath);
    free(path);
    free(id);
    assert_no_zombie(s);
}

static void test_auth_and_unknown_ids(void **state)
{
    struct sj_server *s = *state;
    static const struct {
        const char *method, *path, *body;
    } routes[] = {
        { "GET", "/v1/processes", NULL },
        { "POST", "/v1/processes", "{\"command\":\"true\"}" },
        { "GET", "/v1/processes/config", NULL },
        { "POST", "/v1/processes/config", "{}" },
        { "POST", "/v1/processes/run", "{\"command\":\"true\"}" },
        { "GET", "/v1/processes/ghost", NULL },
        { "DELETE", "/v1/processes/ghost", NULL },
        { "POST", "/v1/processes/ghost/stop", NULL },
        { "POST", "/v1/processes/ghost/kill", NULL },
        { "POST", "/v1/processes/ghost/input", "{\"data\":\"x\"}" },
        { "GET", "/v1/processes/ghost/logs", NULL },
        { "POST", "/v1/processes/ghost/terminal/resize", "{\"cols\":1,\"rows\":1}" },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        struct httpc_response resp;
        sj_request(s, routes[i].method, routes[i].path, routes[i].body, 0, &resp);
        if (resp.status != 401)
            fprintf(stderr, "%s %s without a token: %d\n", routes[i].method, routes[i].path,
                    resp.status);
        assert_int_equal(resp.status, 401);
        httpc_response_free(&resp);
        if (strstr(routes[i].path, "ghost"))
            sj_expect_problem(s, routes[i].method, routes[i].path, routes[i].body, 404,
                              "not_found");
    }
    sj_expect_problem(s, "GET", "/v1/processes/ghost/logs?follow=true", NULL, 404, "not_found");
    sj_expect_problem(s, "POST", "/v1/processes/config", "{\"maxOutputBytes\":-1}", 400,
                      "invalid_request");
    /* Limits past what the server can hold for a client are refused. */
    static const char *const too_big[] = {
        "\"maxConcurrentProcesses\":100000,\"maxInputBytesPerRequest\":1024,"
        "\"maxOutputBytes\":1024",
        "\"maxConcurrentProcesses\":8,\"maxInputBytesPerRequest\":99999999999,"
        "\"maxOutputBytes\":1024",
        "\"maxConcurrentProcesses\":8,\"maxInputBytesPerRequest\":1024,"
        "\"maxOutputBytes\":99999999999",
    };
    for (size_t i = 0; i < sizeof too_big / sizeof too_big[0]; i++) {
        char *body = sj_fmt("{\"defaultRunTimeoutMs\":1000,\"maxRunTimeoutMs\":2000,"
                            "\"maxLogBytesPerProcess\":100000,%s}", too_big[i]);
        json_t *pd = sj_call(s, "POST", "/v1/processes/config", body, 400);
        assert_non_null(strstr(sj_str(pd, "detail"), "must be at most"));
        json_decref(pd);
        free(body);
    }
}

/* A clean stop ends the running processes itself (EOF, SIGTERM) and
 * journals their exits before it exits. */
static void test_stop_ends_processes(void **state)
{
    struct sj_server *s = *state;
    json_t *p = create(s, "{\"command\":\"sleep\",\"args\":[\"60\"]}");
    char *path = sj_fmt("/v1/processes/%s", sj_str(p, "id"));
    int pid = (int)sj_int(p, "pid");
    json_decref(p);
    if (sj_server_restart(s) != 0)
        fail_msg("the server did not stop cleanly (killed %d)", s->killed);
    json_t *info = sj_call(s, "GET", path, NULL, 200);
    assert_string_equal(sj_str(info, "status"), "exited");
    assert_int_equal(sj_int(info, "exitCode"), 128 + 15);
    json_decref(info);
    free(path);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%d/cmdline", pid);
    FILE *f = fopen(proc, "r"); /* gone, or at most a reused pid */
    if (f) {
        char cmd[64] = "";
        size_t n = fread(cmd, 1, sizeof cmd - 1, f);
        cmd[n] = '\0';
        fclose(f);
        assert_true(strcmp(cmd, "sleep") != 0);
    }
}

struct bg_run {
    int port;
    const char *auth;
    const char *body;
    int status; /* the answer's, or a HTTPC_E* code */
    char out[256];
};

static void *bg_run_main(void *arg)
{
    struct bg_run *b = arg;
    const char *headers[] = { b->auth, "Content-Type: application/json", NULL };
    struct httpc_response resp;
    int rc = httpc_request(b->port, "POST", "/v1/processes/run", headers, b->body,
                           strlen(b->body), 20000, &resp);
    b->status = rc ? rc : resp.status;
    if (rc == 0) {
        snprintf(b->out, sizeof b->out, "%s", resp.body ? resp.body : "");
        httpc_response_free(&resp);
    }
    return NULL;
}

/* A run waits for its child without a worker: with one HTTP thread, health
 * still answers while two runs sleep; and a server stopping with a run in
 * flight exits cleanly, its child stopped. */
static void test_run_holds_no_worker(void **state)
{
    struct sj_server *s = *state;
    char auth[192];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
    struct bg_run a = { .port = s->port, .auth = auth,
                        .body = "{\"command\":\"sh\",\"args\":[\"-c\",\"sleep 5; echo done\"]}" };
    struct bg_run b = { .port = s->port, .auth = auth,
                        .body = "{\"command\":\"sleep\",\"args\":[\"60\"]}" };
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, bg_run_main, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, bg_run_main, &b), 0);
    sj_sleep_ms(300); /* both runs are in flight (a worker would be held) */
    /* Well under the 5 s the first run takes, with room for valgrind. */
    for (int i = 0; i < 2; i++) {
        struct httpc_response resp;
        assert_int_equal(httpc_request(s->port, "GET", "/v1/health", NULL, NULL, 0, 2000, &resp),
                         0);
        assert_int_equal(resp.status, 200);
        httpc_response_free(&resp);
    }
    pthread_join(ta, NULL);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.out, "\"stdout\":\"done\\n\""));
    /* The server stops with `sleep 60` still running under a run. */
    assert_int_equal(sj_server_stop(s), 0);
    assert_int_equal(s->killed, 0);
    pthread_join(tb, NULL);
    assert_true(b.status == 409 || b.status < 0);
}

struct bg_stop {
    int port;
    const char *auth;
    char path[128];
    int status;
};

static void *bg_stop_main(void *arg)
{
    struct bg_stop *b = arg;
    struct httpc_response resp;
    const char *headers[] = { b->auth, NULL };
    b->status = httpc_request(b->port, "POST", b->path, headers, NULL, 0, 60000, &resp) == 0
                    ? resp.status : -1;
    if (b->status > 0)
        httpc_response_free(&resp);
    return NULL;
}

/* With one worker, /stop?waitMs cannot take it: the wait for a child that
 * shrugs off SIGTERM (5 s until the SIGKILL) would stall every other
 * client. */
static void test_stop_wait_holds_no_last_worker(void **state)
{
    struct sj_server *s = *state;
    json_t *p = create(s, "{\"command\":\"sh\",\"args\":[\"-c\","
                          "\"trap '' TERM; echo ready; while :; do sleep 1; done\"]}");
    const char *id = sj_str(p, "id");
    for (int i = 0; i < WAIT_MS / 10; i++) {
        size_t len;
        char *text = log_text(s, id, NULL, &len);
        int ready = strstr(text, "ready") != NULL;
        free(text);
        if (ready)
            break;
        sj_sleep_ms(10);
    }
    char auth[192];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
    struct bg_stop b = { .port = s->port, .auth = auth };
    snprintf(b.path, sizeof b.path, "/v1/processes/%s/stop?waitMs=30000", id);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_stop_main, &b), 0);
    sj_sleep_ms(300);
    struct httpc_response resp;
    assert_int_equal(httpc_request(s->port, "GET", "/v1/health", NULL, NULL, 0, 2000, &resp), 0);
    assert_int_equal(resp.status, 200);
    httpc_response_free(&resp);
    pthread_join(t, NULL);
    assert_int_equal(b.status, 200);
    json_decref(wait_exited(s, id));
    json_decref(p);
}

/* One HTTP worker, and a token. */
static int setup_one_worker(void **state)
{
    static const char *const args[] = { "--token", "proc-secret", "--http-threads", "1", NULL };
    return sj_setup_with(state, args);
}

/* Every test runs with a token, so that requests without it can be tried. */
static int setup_token(void **state)
{
    static const char *const args[] = { "--token", "proc-secret", NULL };
    return sj_setup_with(state, args);
}

/* A followed log ends when its process has exited, at once: the exit is
 * known a moment after the commit that journaled it wakes the follower,
 * and a follower that looked in between must be woken again (else it
 * waits for the next commit or heartbeat: an hour here). */
static void test_follow_ends_at_exit(void **state)
{
    struct sj_server *s = *state;
    char auth[192];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
    const char *headers[] = { auth, NULL };
    for (int i = 0; i < 20; i++) {
        json_t *p = create(s, "{\"command\":\"sh\",\"args\":[\"-c\",\"echo x\"]}");
        char *path = sj_fmt("/v1/processes/%s/logs?follow=true", sj_str(p, "id"));
        struct httpc_response resp;
        assert_int_equal(httpc_request(s->port, "GET", path, headers, NULL, 0, 10000, &resp), 0);
        assert_int_equal(resp.status, 200);
        assert_non_null(strstr(resp.body, "event: log"));
        httpc_response_free(&resp);
        free(path);
        json_decref(p);
    }
}

static int setup_no_heartbeat(void **state)
{
    static const char *const args[] = { "--token", "proc-secret", "--sse-heartbeat-ms",
                                        "3600000", NULL };
    return sj_setup_with(state, args);
}

/* 1 while `pid` is alive: neither gone nor a zombie waiting for init. */
static int alive(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    char st = 0;
    return close_paren && sscanf(close_paren + 1, " %c", &st) == 1 && st != 'Z' && st != 'X';
}

/* A stop reaches what the process started: a shell's background job dies
 * with the shell instead of living on as an orphan. */
static void test_stop_reaches_the_group(void **state)
{
    struct sj_server *s = *state;
    json_t *p = create(s, "{\"command\":\"sh\",\"args\":[\"-c\",\"sleep 300 & echo $!; wait\"]}");
    const char *id = sj_str(p, "id");
    long job = 0;
    for (int i = 0; i < WAIT_MS / 10 && job <= 0; i++) {
        size_t len;
        char *text = log_text(s, id, NULL, &len);
        if (strchr(text, '\n'))
            job = atol(text);
        free(text);
        if (job <= 0)
            sj_sleep_ms(10);
    }
    assert_true(job > 0);
    assert_true(alive(job));
    char *path = sj_fmt("/v1/processes/%s/stop?waitMs=5000", id);
    json_t *info = sj_call(s, "POST", path, NULL, 200);
    assert_string_equal(sj_str(info, "status"), "exited");
    json_decref(info);
    free(path);
    int gone = 0;
    for (int i = 0; i < 500 && !gone; i++) {
        gone = !alive(job);
        if (!gone)
            sj_sleep_ms(10);
    }
    assert_true(gone);
    json_decref(p);
    assert_no_zombie(s);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_token, sj_teardown_default)
    const struct CMUnitTest tests[] = {
        T(test_run_exit_output_timeout),
        T(test_exit_codes_and_signals),
        T(test_stdin_round_trip),
        T(test_pty),
        T(test_hundred_concurrent),
        T(test_byte_cap),
        T(test_follow_then_kill9_restart),
        T(test_auth_and_unknown_ids),
        T(test_stop_ends_processes),
        T(test_stop_reaches_the_group),
        cmocka_unit_test_setup_teardown(test_run_holds_no_worker, setup_one_worker,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_stop_wait_holds_no_last_worker,
                                        setup_one_worker, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_follow_ends_at_exit, setup_no_heartbeat,
                                        sj_teardown_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
