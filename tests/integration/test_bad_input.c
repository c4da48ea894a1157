/* Bad input, table-driven: malformed and mistyped JSON bodies, oversized
 * bodies, invalid session ids, unknown agents, absurd offset/limit, bad
 * Last-Event-ID, path traversal attempts, malformed HTTP, header floods and
 * slow (slowloris-style) clients.  Each must get a clear 4xx (ProblemDetails
 * when it reached the API) or a closed connection: never a crash, never a
 * hang, and the server keeps answering everyone else meanwhile.  The server
 * runs with --max-body-bytes 4096 so that "huge" is cheap; it must stop
 * cleanly at the end (under ASan/UBSan and valgrind: no error, no leak). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "httpc.h"
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BAD_MAX_BODY 4096

/* What a case expects: a status and an error type ("" for about:blank,
 * NULL for no ProblemDetails check), or BAD_CLOSED_OK in `status` when a
 * closed connection is as good an answer as a 4xx. */
#define BAD_CLOSED_OK (-1)

struct bad_case {
    const char *name;
    const char *method;
    const char *path;
    const char *header;   /* one extra header line, or NULL */
    const char *body;     /* NULL: none */
    int status;
    const char *type;
};

static int bad_setup(void **state)
{
    static const char *const args[] = {"--max-body-bytes", "4096", NULL};
    if (sj_setup_with(state, args) != 0)
        return -1;
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "ok", NULL));
    sj_send_message(s, "ok", "permission");
    json_decref(sj_wait_events(s, "ok", 6, 10000));
    return 0;
}

static int64_t bad_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The server still answers, promptly. */
static void bad_assert_alive(struct sj_server *s)
{
    struct httpc_response resp;
    int64_t t0 = bad_now_ms();
    int rc = httpc_request(s->port, "GET", "/v1/health", NULL, NULL, 0, 5000, &resp);
    if (rc != 0)
        fail_msg("the server stopped answering: %s", httpc_strerror(rc));
    assert_int_equal(resp.status, 200);
    httpc_response_free(&resp);
    assert_true(bad_now_ms() - t0 < 2000);
}

static void bad_check(struct sj_server *s, const struct bad_case *c)
{
    const char *headers[3] = {NULL, NULL, NULL};
    int nh = 0;
    if (c->body)
        headers[nh++] = "Content-Type: application/json";
    if (c->header)
        headers[nh++] = c->header;
    struct httpc_response resp;
    int64_t t0 = bad_now_ms();
    int rc = httpc_request(s->port, c->method, c->path, headers, c->body,
                           c->body ? strlen(c->body) : 0, 5000, &resp);
    int64_t took = bad_now_ms() - t0;
    if (rc != 0) {
        if (c->status == BAD_CLOSED_OK && rc != HTTPC_ETIMEOUT)
            return;
        fail_msg("%s: %s %s: %s", c->name, c->method, c->path, httpc_strerror(rc));
    }
    if (took > 3000)
        fail_msg("%s: took %lld ms", c->name, (long long)took);
    int want = c->status == BAD_CLOSED_OK ? resp.status : c->status;
    if (resp.status != want || resp.status < 400 || resp.status >= 500)
        fail_msg("%s: %s %s answered %d (expected %d): %s", c->name, c->method, c->path,
                 resp.status, c->status, resp.body ? resp.body : "");
    if (c->type && c->type[0]) {
        json_t *p = sj_assert_problem(&resp, want, c->type);
        json_decref(p);
    } else if (c->type) {
        json_t *p = httpc_json(&resp);
        assert_non_null(p);
        assert_string_equal(sj_str(p, "type"), "about:blank");
        assert_int_equal(sj_int(p, "status"), want);
        json_decref(p);
    }
    httpc_response_free(&resp);
}

static char *bad_repeat(const char *head, char c, size_t n, const char *tail)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char *s = malloc(hl + n + tl + 1);
    assert_non_null(s);
    memcpy(s, head, hl);
    memset(s + hl, c, n);
    memcpy(s + hl + n, tail, tl + 1);
    return s;
}

/* ---- the table ------------------------------------------------------------ */

static void test_bad_requests(void **state)
{
    struct sj_server *s = *state;
    char *deep = bad_repeat("", '[', 3000, "");
    char *huge = bad_repeat("{\"agent\":\"", 'x', 2 * BAD_MAX_BODY, "\"}");
    char *long_id = bad_repeat("/v1/sessions/", 'a', 256, "");
    char *long_id_events = bad_repeat("/v1/sessions/", 'a', 300, "/events");
    char *max_id = bad_repeat("/v1/sessions/", 'b', 255, "/events");
    /* 1 + 127 two-byte characters: the "session not found: <id>" detail
     * is cut by the 256-byte error record in the middle of a character. */
    char odd_id[1024] = "/v1/sessions/a";
    for (int k = 0; k < 127; k++)
        strcat(odd_id, "%C3%A9");
    strcat(odd_id, "/events");
    const struct bad_case cases[] = {
        /* bodies */
        {"not JSON", "POST", "/v1/sessions/a", NULL, "{", 400, "invalid_request"},
        {"empty body", "POST", "/v1/sessions/a", NULL, "", 400, "invalid_request"},
        {"no body", "POST", "/v1/sessions/a", NULL, NULL, 400, "invalid_request"},
        {"array body", "POST", "/v1/sessions/a", NULL, "[]", 400, "invalid_request"},
        {"string body", "POST", "/v1/sessions/a", NULL, "\"mock\"", 400, "invalid_request"},
        {"trailing garbage", "POST", "/v1/sessions/a", NULL, "{\"agent\":\"mock\"} x", 400,
         "invalid_request"},
        {"agent not a string", "POST", "/v1/sessions/a", NULL, "{\"agent\":1}", 400,
         "invalid_request"},
        {"agent null", "POST", "/v1/sessions/a", NULL, "{\"agent\":null}", 400,
         "invalid_request"},
        {"agentMode not a string", "POST", "/v1/sessions/a", NULL,
         "{\"agent\":\"mock\",\"agentMode\":[]}", 400, "invalid_request"},
        {"duplicate keys", "POST", "/v1/sessions/a", NULL,
         "{\"agent\":\"mock\",\"agent\":\"mock\"}", 400, "invalid_request"},
        {"invalid UTF-8", "POST", "/v1/sessions/a", NULL, "{\"agent\":\"m\xff\xfe\"}", 400,
         "invalid_request"},
        {"escaped NUL", "POST", "/v1/sessions/a", NULL, "{\"agent\":\"mo\\u0000ck\"}", 400,
         "invalid_request"},
        {"lone surrogate", "POST", "/v1/sessions/a", NULL, "{\"agent\":\"\\ud800\"}", 400,
         "invalid_request"},
        {"nested 3000 deep", "POST", "/v1/sessions/a", NULL, deep, 400, "invalid_request"},
        {"body over --max-body-bytes", "POST", "/v1/sessions/a", NULL, huge, 413,
         "invalid_request"},
        {"unknown agent", "POST", "/v1/sessions/a", NULL, "{\"agent\":\"nope\"}", 400,
         "unsupported_agent"},
        {"agent name with a slash", "POST", "/v1/sessions/a", NULL,
         "{\"agent\":\"../mock\"}", 400, "unsupported_agent"},
        {"unknown permission mode", "POST", "/v1/sessions/a", NULL,
         "{\"agent\":\"mock\",\"permissionMode\":\"yolo\"}", 400, "invalid_request"},
        {"message not a string", "POST", "/v1/sessions/ok/messages", NULL,
         "{\"message\":5}", 400, "invalid_request"},
        {"message missing", "POST", "/v1/sessions/ok/messages", NULL, "{}", 400,
         "invalid_request"},
        {"stream message missing", "POST", "/v1/sessions/ok/messages/stream", NULL,
         "{\"msg\":\"x\"}", 400, "invalid_request"},
        {"message to nobody", "POST", "/v1/sessions/ghost/messages", NULL,
         "{\"message\":\"hi\"}", 404, "session_not_found"},
        {"permission reply word", "POST", "/v1/sessions/ok/permissions/mock_1_permission/reply",
         NULL, "{\"reply\":\"maybe\"}", 400, "invalid_request"},
        {"permission reply type", "POST", "/v1/sessions/ok/permissions/mock_1_permission/reply",
         NULL, "{\"reply\":true}", 400, "invalid_request"},
        {"unknown permission", "POST", "/v1/sessions/ok/permissions/nope/reply", NULL,
         "{\"reply\":\"once\"}", 400, "invalid_request"},
        {"answers not arrays", "POST", "/v1/sessions/ok/questions/q/reply", NULL,
         "{\"answers\":\"x\"}", 400, "invalid_request"},
        {"answers not strings", "POST", "/v1/sessions/ok/questions/q/reply", NULL,
         "{\"answers\":[[1]]}", 400, "invalid_request"},
        {"install body type", "POST", "/v1/agents/mock/install", NULL, "{\"reinstall\":\"y\"}",
         400, "invalid_request"},
        {"install unknown agent", "POST", "/v1/agents/nope/install", NULL, "{}", 400,
         "unsupported_agent"},
        {"modes of unknown agent", "GET", "/v1/agents/nope/modes", NULL, NULL, 400,
         "unsupported_agent"},
        /* session ids */
        {"id of 256 bytes", "POST", long_id, NULL, "{\"agent\":\"mock\"}", 400,
         "invalid_request"},
        {"id of 300 bytes, read", "GET", long_id_events, NULL, NULL, 404, "session_not_found"},
        {"id of 255 bytes, read", "GET", max_id, NULL, NULL, 404, "session_not_found"},
        {"id with a control byte", "POST", "/v1/sessions/a%01b", NULL, "{\"agent\":\"mock\"}",
         400, "invalid_request"},
        {"id with DEL", "POST", "/v1/sessions/a%7Fb", NULL, "{\"agent\":\"mock\"}", 400,
         "invalid_request"},
        {"id with an encoded NUL", "POST", "/v1/sessions/a%00b", NULL, "{\"agent\":\"mock\"}",
         400, "invalid_request"},
        {"id with a broken escape", "POST", "/v1/sessions/a%zz", NULL, "{\"agent\":\"mock\"}",
         400, "invalid_request"},
        {"id with a cut escape", "GET", "/v1/sessions/a%2/events", NULL, NULL, 400,
         "invalid_request"},
        /* not UTF-8 */
        {"detail cut mid-character", "GET", odd_id, NULL, NULL, 404, "session_not_found"},
        {"id not UTF-8, create", "POST", "/v1/sessions/%FF", NULL, "{\"agent\":\"mock\"}", 400,
         "invalid_request"},
        {"id of a surrogate, create", "POST", "/v1/sessions/%ED%A0%80", NULL,
         "{\"agent\":\"mock\"}", 400, "invalid_request"},
        {"id overlong, create", "POST", "/v1/sessions/%C0%AF", NULL, "{\"agent\":\"mock\"}",
         400, "invalid_request"},
        {"id not UTF-8, read", "GET", "/v1/sessions/%FF/events", NULL, NULL, 404,
         "session_not_found"},
        {"id not UTF-8, stream", "GET", "/v1/sessions/x%FE/events/sse", NULL, NULL, 404,
         "session_not_found"},
        {"id not UTF-8, message", "POST", "/v1/sessions/%C3%A9%FF/messages", NULL,
         "{\"message\":\"hi\"}", 404, "session_not_found"},
        {"agent not UTF-8", "GET", "/v1/agents/%FF/modes", NULL, NULL, 400, "unsupported_agent"},
        {"permission id not UTF-8", "POST", "/v1/sessions/ok/permissions/%FF%FE/reply", NULL,
         "{\"reply\":\"once\"}", 400, "invalid_request"},
        /* traversal */
        {"dot segments", "GET", "/v1/sessions/../../etc/passwd/events", NULL, NULL, 404, ""},
        {"dot segments at the root", "GET", "/../../../etc/passwd", NULL, NULL, 404, ""},
        {"encoded traversal id", "GET", "/v1/sessions/..%2F..%2Fetc%2Fpasswd/events", NULL,
         NULL, 404, "session_not_found"},
        {"encoded dots", "GET", "/v1/sessions/%2e%2e/events", NULL, NULL, 404,
         "session_not_found"},
        {"traversal in agent", "GET", "/v1/agents/..%2F..%2Fetc/modes", NULL, NULL, 400,
         "unsupported_agent"},
        {"empty segment", "GET", "/v1/sessions//events", NULL, NULL, 404, ""},
        {"too many segments", "GET", "/v1/sessions/a/b/c/d/e/f/g/h/i", NULL, NULL, 404, ""},
        {"wrong method", "DELETE", "/v1/sessions", NULL, NULL, 405, ""},
        {"odd method", "BREW", "/v1/health", NULL, NULL, 405, ""},
        /* offsets and limits */
        {"negative offset", "GET", "/v1/sessions/ok/events?offset=-1", NULL, NULL, 400,
         "invalid_request"},
        {"word offset", "GET", "/v1/sessions/ok/events?offset=abc", NULL, NULL, 400,
         "invalid_request"},
        {"offset past 2^63", "GET", "/v1/sessions/ok/events?offset=9223372036854775808", NULL,
         NULL, 400, "invalid_request"},
        {"offset of 20 digits", "GET", "/v1/sessions/ok/events?offset=99999999999999999999",
         NULL, NULL, 400, "invalid_request"},
        {"offset with a sign", "GET", "/v1/sessions/ok/events?offset=+1", NULL, NULL, 400,
         "invalid_request"},
        {"empty offset", "GET", "/v1/sessions/ok/events?offset=", NULL, NULL, 400,
         "invalid_request"},
        {"offset in hex", "GET", "/v1/sessions/ok/events?offset=0x10", NULL, NULL, 400,
         "invalid_request"},
        {"limit of 2^64 - 1", "GET", "/v1/sessions/ok/events?limit=18446744073709551615", NULL,
         NULL, 400, "invalid_request"},
        {"negative limit", "GET", "/v1/sessions/ok/events?limit=-5", NULL, NULL, 400,
         "invalid_request"},
        {"broken escape in a query", "GET", "/v1/sessions/ok/events?limit=%zz", NULL, NULL, 400,
         "invalid_request"},
        {"include_raw word", "GET", "/v1/sessions/ok/events?include_raw=maybe", NULL, NULL, 400,
         "invalid_request"},
        {"sse offset word", "GET", "/v1/sessions/ok/events/sse?offset=x", NULL, NULL, 400,
         "invalid_request"},
        /* Last-Event-ID */
        {"Last-Event-ID word", "GET", "/v1/sessions/ok/events/sse", "Last-Event-ID: abc", NULL,
         400, "invalid_request"},
        {"Last-Event-ID negative", "GET", "/v1/sessions/ok/events/sse", "Last-Event-ID: -1",
         NULL, 400, "invalid_request"},
        {"Last-Event-ID huge", "GET", "/v1/sessions/ok/events/sse",
         "Last-Event-ID: 123456789012345678901234567890", NULL, 400, "invalid_request"},
        {"Last-Event-ID float", "GET", "/v1/sessions/ok/events/sse", "Last-Event-ID: 1.5",
         NULL, 400, "invalid_request"},
        {"Last-Event-ID event id form", "GET", "/v1/sessions/ok/events/sse",
         "Last-Event-ID: evt_3", NULL, 400, "invalid_request"},
        {"Last-Event-ID on a missing session", "GET", "/v1/sessions/ghost/events/sse",
         "Last-Event-ID: 3", NULL, 404, "session_not_found"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bad_check(s, &cases[i]);
    bad_assert_alive(s);
    free(deep);
    free(huge);
    free(long_id);
    free(long_id_events);
    free(max_id);
}

/* Absurd but valid numbers are served, not refused. */
static void test_absurd_but_valid(void **state)
{
    struct sj_server *s = *state;
    json_t *r = sj_get_events(s, "ok", "?offset=9223372036854775807");
    assert_int_equal(json_array_size(json_object_get(r, "events")), 0);
    assert_false(json_is_true(json_object_get(r, "hasMore")));
    json_decref(r);
    r = sj_get_events(s, "ok", "?limit=9223372036854775807&offset=0");
    assert_int_equal(json_array_size(json_object_get(r, "events")), 6);
    json_decref(r);
    r = sj_get_events(s, "ok", "?limit=0");
    assert_int_equal(json_array_size(json_object_get(r, "events")), 0);
    assert_true(json_is_true(json_object_get(r, "hasMore")));
    json_decref(r);
    r = sj_get_events(s, "ok", "?offset=0003&limit=1");
    assert_int_equal(sj_int(json_array_get(json_object_get(r, "events"), 0), "sequence"), 4);
    json_decref(r);
    /* A Last-Event-ID past the end waits for the future, it is not an error. */
    static const char *const far[] = {"Last-Event-ID: 9223372036854775807", NULL};
    struct httpc_response head;
    struct httpc_sse *sse = NULL;
    assert_int_equal(httpc_sse_open(s->port, "GET", "/v1/sessions/ok/events/sse", far, NULL, 0,
                                    5000, &head, &sse),
                     0);
    assert_int_equal(head.status, 200);
    assert_non_null(sse);
    struct httpc_sse_event ev;
    assert_int_equal(httpc_sse_next(sse, 300, &ev), HTTPC_ETIMEOUT);
    httpc_sse_close(sse);
    httpc_response_free(&head);
    /* A session id of 255 bytes and one of odd characters are fine. */
    char *id = bad_repeat("", 'z', 255, "");
    json_decref(sj_create_session(s, id, NULL));
    json_decref(sj_create_session(s, "%E2%9C%93%20spaced%2Fslashed%3F", NULL));
    r = sj_get_events(s, "%E2%9C%93%20spaced%2Fslashed%3F", "");
    assert_string_equal(sj_str(json_array_get(json_object_get(r, "events"), 0), "session_id"),
                        "\xe2\x9c\x93 spaced/slashed?");
    json_decref(r);
    free(id);
    bad_assert_alive(s);
}

/* ---- raw HTTP ------------------------------------------------------------------ */

struct bad_raw {
    const char *name;
    char *request; /* owned */
    size_t len;
};

/* Sends a malformed request: a 4xx or a closed connection are both fine,
 * and so is the status `also_ok` (BAD_LENIENT: any answer below 500, for the
 * harmless deviations libmicrohttpd tolerates, such as a missing Host). */
#define BAD_LENIENT (-1)
static void bad_raw_check_x(struct sj_server *s, const char *name, const char *req, size_t len,
                            int also_ok)
{
    struct httpc_response resp;
    int64_t t0 = bad_now_ms();
    int rc = httpc_raw(s->port, req, len, 5000, &resp);
    int64_t took = bad_now_ms() - t0;
    if (rc == HTTPC_ETIMEOUT || took > 4000)
        fail_msg("%s: no answer within %lld ms", name, (long long)took);
    if (rc == 0) {
        int ok = (resp.status >= 400 && resp.status < 500) || resp.status == also_ok ||
                 (also_ok == BAD_LENIENT && resp.status < 500);
        if (!ok)
            fail_msg("%s: answered %d: %s", name, resp.status, resp.body ? resp.body : "");
    }
    fprintf(stderr, "bad input: %-32s -> %d %s\n", name, rc == 0 ? resp.status : 0,
            rc == 0 ? "" : httpc_strerror(rc));
    if (rc == 0)
        httpc_response_free(&resp);
    bad_assert_alive(s);
}

static void bad_raw_check(struct sj_server *s, const char *name, const char *req, size_t len)
{
    bad_raw_check_x(s, name, req, len, 0);
}

static void test_malformed_http(void **state)
{
    struct sj_server *s = *state;
    char buf[256];
    bad_raw_check(s, "garbage line", "GARBAGE\r\n\r\n", 11);
    bad_raw_check(s, "binary noise", "\x01\x02\x03\xff\r\n\r\n", 8);
    bad_raw_check_x(s, "no Host in HTTP/1.1", "GET /v1/health HTTP/1.1\r\n\r\n", 27,
                    BAD_LENIENT);
    bad_raw_check_x(s, "unknown version", "GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n", 36,
                    505);
    bad_raw_check(s, "absolute-form elsewhere",
                  "GET http://example.com/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 62);
    bad_raw_check(s, "header without colon", "GET /v1/health HTTP/1.1\r\nHost x\r\nBad\r\n\r\n",
                  40);
    int n = snprintf(buf, sizeof buf,
                     "POST /v1/sessions/a HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}");
    bad_raw_check(s, "Content-Length word", buf, (size_t)n);
    n = snprintf(buf, sizeof buf,
                 "POST /v1/sessions/a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}");
    bad_raw_check(s, "Content-Length negative", buf, (size_t)n);
    n = snprintf(buf, sizeof buf,
                 "POST /v1/sessions/a HTTP/1.1\r\nHost: x\r\n"
                 "Content-Length: 999999999999999999999999\r\n\r\n{}");
    bad_raw_check(s, "Content-Length enormous", buf, (size_t)n);
    n = snprintf(buf, sizeof buf,
                 "POST /v1/sessions/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                 "Content-Length: 3\r\n\r\n{}");
    bad_raw_check(s, "two Content-Lengths", buf, (size_t)n);
    n = snprintf(buf, sizeof buf,
                 "POST /v1/sessions/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "zz\r\n{}\r\n0\r\n\r\n");
    bad_raw_check(s, "bad chunk size", buf, (size_t)n);

    /* A chunked body over the limit: no Content-Length to refuse it early. */
    char *chunked = malloc(3 * BAD_MAX_BODY + 256);
    assert_non_null(chunked);
    size_t at = (size_t)sprintf(chunked, "POST /v1/sessions/a HTTP/1.1\r\nHost: x\r\n"
                                         "Content-Type: application/json\r\n"
                                         "Transfer-Encoding: chunked\r\n\r\n");
    for (int k = 0; k < 3; k++) {
        at += (size_t)sprintf(chunked + at, "%x\r\n", BAD_MAX_BODY);
        memset(chunked + at, ' ', BAD_MAX_BODY);
        at += BAD_MAX_BODY;
        at += (size_t)sprintf(chunked + at, "\r\n");
    }
    at += (size_t)sprintf(chunked + at, "0\r\n\r\n");
    struct httpc_response resp;
    assert_int_equal(httpc_raw(s->port, chunked, at, 5000, &resp), 0);
    json_decref(sj_assert_problem(&resp, 413, "invalid_request"));
    httpc_response_free(&resp);
    free(chunked);

    /* A URL of 64 KiB, one header of 64 KiB, 4000 headers. */
    size_t big = 64 * 1024;
    char *req = malloc(big + 4096 * 16);
    assert_non_null(req);
    at = (size_t)sprintf(req, "GET /v1/sessions/");
    memset(req + at, 'u', big);
    at += big;
    at += (size_t)sprintf(req + at, "/events HTTP/1.1\r\nHost: x\r\n\r\n");
    bad_raw_check(s, "URL of 64 KiB", req, at);
    at = (size_t)sprintf(req, "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + at, 'h', big);
    at += big;
    at += (size_t)sprintf(req + at, "\r\n\r\n");
    bad_raw_check(s, "header of 64 KiB", req, at);
    at = (size_t)sprintf(req, "GET /v1/health HTTP/1.1\r\nHost: x\r\n");
    for (int k = 0; k < 4000; k++)
        at += (size_t)sprintf(req + at, "X-%d: v\r\n", k);
    at += (size_t)sprintf(req + at, "\r\n");
    bad_raw_check(s, "4000 headers", req, at);
    free(req);
}

/* ---- slow clients --------------------------------------------------------------- */

static int bad_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("connect: %s", strerror(errno));
    return fd;
}

/* Reads everything the server sends on `fd` until it closes (bounded).
 * new: the bytes, NUL-terminated. */
static char *bad_read_all(int fd, int timeout_ms)
{
    size_t cap = 65536, got = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) <= 0)
            fail_msg("the server did not close within %d ms; got: %.*s", timeout_ms, (int)got,
                     out);
        ssize_t r = recv(fd, out + got, cap - 1 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        assert_true(got < cap - 1);
    }
    out[got] = '\0';
    return out;
}

static void test_malformed_content_length(void **state)
{
    /* libmicrohttpd answers a malformed Content-Length itself with 400 and
     * closes; the request never reaches a handler.  Up to 0.9.77 it writes
     * that answer's status line and headers twice (its idle loop overwrote
     * the error state with "headers processed", so the reply was built
     * again: fixed upstream in f1bfbe71, first released in 1.0.0).  No hook
     * runs before it, so nothing in the server can avoid the repeat; this
     * pins what clients get (docs/testing.md). */
    struct sj_server *s = *state;
    static const char req[] = "POST /v1/sessions/cl HTTP/1.1\r\nHost: x\r\n"
                              "Content-Type: application/json\r\nContent-Length: 16abc\r\n\r\n"
                              "{\"agent\":\"mock\"}";
    int fd = bad_connect(s->port);
    assert_int_equal(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    char *got = bad_read_all(fd, 5000);
    close(fd);
    size_t status_lines = 0;
    for (const char *p = got; (p = strstr(p, "HTTP/1.1 ")) != NULL; p += 9)
        status_lines++;
    fprintf(stderr, "libmicrohttpd %s: %zu status lines for a malformed Content-Length\n",
            MHD_get_version(), status_lines);
    if (strncmp(got, "HTTP/1.1 400 ", 13) != 0)
        fail_msg("expected a 400 first: %s", got);
    for (const char *p = got; (p = strstr(p, "HTTP/1.1 ")) != NULL; p += 9)
        assert_true(strncmp(p, "HTTP/1.1 400 ", 13) == 0);
#if MHD_VERSION >= 0x01000000
    assert_int_equal(status_lines, 1);
#else
    assert_true(status_lines >= 1 && status_lines <= 2);
#endif
    free(got);
    sj_expect_problem(s, "GET", "/v1/sessions/cl/events", NULL, 404, "session_not_found");
    bad_assert_alive(s);
}

#define BAD_SLOW_CLIENTS 200

/* Two hundred clients dribble a request one byte at a time (and some send
 * their headers, then a body that never comes) while ordinary requests keep
 * being answered promptly. */
static void test_slow_clients(void **state)
{
    struct sj_server *s = *state;
    static const char dribble[] = "GET /v1/sessions/ok/events HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    static const char stalled[] = "POST /v1/sessions/ok/messages HTTP/1.1\r\nHost: x\r\n"
                                  "Content-Type: application/json\r\nContent-Length: 100\r\n"
                                  "\r\n{\"message\":";
    int fds[BAD_SLOW_CLIENTS];
    size_t sent[BAD_SLOW_CLIENTS] = {0};
    for (int i = 0; i < BAD_SLOW_CLIENTS; i++) {
        fds[i] = bad_connect(s->port);
        if (i % 4 == 0) {
            ssize_t w = send(fds[i], stalled, sizeof stalled - 1, MSG_NOSIGNAL);
            assert_true(w == (ssize_t)(sizeof stalled - 1));
        }
    }
    int64_t worst = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < BAD_SLOW_CLIENTS; i++) {
            if (i % 4 == 0 || fds[i] < 0)
                continue;
            char ch = sent[i] < sizeof dribble - 1 ? dribble[sent[i]] : 'z';
            if (send(fds[i], &ch, 1, MSG_NOSIGNAL) == 1)
                sent[i]++;
        }
        int64_t t0 = bad_now_ms();
        json_decref(sj_get_events(s, "ok", "?limit=1"));
        int64_t took = bad_now_ms() - t0;
        if (took > worst)
            worst = took;
        sj_sleep_ms(50);
    }
    fprintf(stderr, "bad input: %d slow clients open, worst ordinary request %lld ms\n",
            BAD_SLOW_CLIENTS, (long long)worst);
    assert_true(worst < 2000);
    /* None of them got an answer for a request it never finished. */
    int answered = 0;
    for (int i = 0; i < BAD_SLOW_CLIENTS; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        if (poll(&p, 1, 0) == 1) {
            char b[64];
            if (recv(fds[i], b, sizeof b, MSG_DONTWAIT) > 0)
                answered++;
        }
        close(fds[i]);
    }
    assert_int_equal(answered, 0);
    /* The stalled messages never reached the session. */
    json_t *events = sj_wait_events_quiet(s, "ok", 6, 5000);
    json_decref(events);
    bad_assert_alive(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_requests, bad_setup, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_absurd_but_valid, bad_setup, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_malformed_http, bad_setup, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_malformed_content_length, bad_setup,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_slow_clients, bad_setup, sj_teardown_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
