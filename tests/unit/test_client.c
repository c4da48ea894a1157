/* Unit tests for src/client.c: the Server-Sent Events parser (fed every
 * way a stream can be split), path escaping, endpoint checks, and a
 * transport error from a closed loopback port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 16

struct collected {
    size_t n;
    char *id[MAX_EVENTS];
    char *event[MAX_EVENTS];
    char *data[MAX_EVENTS];
    size_t data_len[MAX_EVENTS];
    int stop_after; /* stop (ERR_INTERNAL) once this many arrived; 0: never */
};

static int collect(void *arg, const struct client_sse_event *ev)
{
    struct collected *c = arg;
    assert_true(c->n < MAX_EVENTS);
    c->id[c->n] = strdup(ev->id);
    c->event[c->n] = strdup(ev->event);
    c->data[c->n] = malloc(ev->data_len + 1);
    assert_non_null(c->data[c->n]);
    memcpy(c->data[c->n], ev->data, ev->data_len);
    c->data[c->n][ev->data_len] = '\0';
    assert_int_equal(strlen(c->data[c->n]), ev->data_len);
    c->data_len[c->n] = ev->data_len;
    c->n++;
    return c->stop_after && c->n >= (size_t)c->stop_after ? ERR_INTERNAL : 0;
}

static void collected_free(struct collected *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->id[i]);
        free(c->event[i]);
        free(c->data[i]);
    }
    memset(c, 0, sizeof *c);
}

/* Feeds `len` bytes of `s` as chunks of the given sizes (0-terminated list,
 * the last size repeated), asserting success. */
static void feed_chunks(const char *s, size_t len, const size_t *sizes, struct collected *c)
{
    struct client_sse_parser p;
    client_sse_init(&p);
    struct err err;
    err_clear(&err);
    size_t off = 0, k = 0;
    while (off < len) {
        size_t n = sizes[k];
        if (sizes[k + 1])
            k++;
        if (n > len - off)
            n = len - off;
        assert_int_equal(client_sse_feed(&p, s + off, n, collect, c, &err), 0);
        off += n;
    }
    client_sse_free(&p);
}

static void feed_all(const char *s, size_t len, struct collected *c)
{
    const size_t whole[] = { len ? len : 1, 0 };
    feed_chunks(s, len, whole, c);
}

static void assert_event(const struct collected *c, size_t i, const char *id, const char *event,
                         const char *data)
{
    assert_true(i < c->n);
    assert_string_equal(c->id[i], id);
    assert_string_equal(c->event[i], event);
    assert_string_equal(c->data[i], data);
}

static void test_sse_basic(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char s[] = "id: 1\ndata: {\"a\":1}\n\nid: 2\ndata: {\"b\":2}\n\n";
    struct collected c = { 0 };
    feed_all(s, sizeof s - 1, &c);
    assert_int_equal(c.n, 2);
    assert_event(&c, 0, "1", "message", "{\"a\":1}");
    assert_event(&c, 1, "2", "message", "{\"b\":2}");
    collected_free(&c);
}

/* The same events whatever the line endings and wherever the stream is cut. */
static void test_sse_every_split(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char s[] = "\xEF\xBB\xBF: hello\r\n"
                     "id: 1\r\ndata: a\r\n\r\n"
                     "id: 2\rdata: b\r\r"
                     "event: ping\ndata:c\ndata:  d\n\n"
                     "data: e\r\n\n";
    size_t len = sizeof s - 1;
    for (size_t cut = 0; cut <= len; cut++) {
        for (size_t step = 1; step <= 3; step++) {
            const size_t sizes[] = { cut ? cut : step, step, 0 };
            struct collected c = { 0 };
            feed_chunks(s, len, sizes, &c);
            if (c.n != 4)
                fail_msg("cut %zu step %zu: %zu events", cut, step, c.n);
            assert_event(&c, 0, "1", "message", "a");
            assert_event(&c, 1, "2", "message", "b");
            assert_event(&c, 2, "2", "ping", "c\n d");
            assert_event(&c, 3, "2", "message", "e");
            collected_free(&c);
        }
    }
}

static void test_sse_comments_and_fields(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char s[] = ": keep-alive\n\n"       /* a heartbeat: no event */
                     "retry: 100\nfoo: bar\n" /* ignored fields */
                     ":comment in the middle\n"
                     "data\n\n"               /* a field without colon: empty data */
                     "id: 3\n\n"              /* no data: not dispatched, id kept */
                     "data: x\n\n"
                     "id\ndata: y\n\n";       /* an empty id resets it */
    struct collected c = { 0 };
    feed_all(s, sizeof s - 1, &c);
    assert_int_equal(c.n, 3);
    assert_event(&c, 0, "", "message", "");
    assert_event(&c, 1, "3", "message", "x");
    assert_event(&c, 2, "", "message", "y");
    collected_free(&c);
}

static void test_sse_id_with_nul_is_ignored(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char s[] = "id: 7\ndata: a\n\nid: 8\0x\ndata: b\n\n";
    struct collected c = { 0 };
    feed_all(s, sizeof s - 1, &c);
    assert_int_equal(c.n, 2);
    assert_event(&c, 1, "7", "message", "b");
    collected_free(&c);
}

/* An event is dispatched only at its blank line; the end of the stream
 * discards an unfinished one. */
static void test_sse_unfinished(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct client_sse_parser p;
    client_sse_init(&p);
    struct collected c = { 0 };
    struct err err;
    assert_int_equal(client_sse_feed(&p, "data: x\n", 8, collect, &c, &err), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(client_sse_feed(&p, "data: y", 7, collect, &c, &err), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(client_sse_feed(&p, "\n\n", 2, collect, &c, &err), 0);
    assert_int_equal(c.n, 1);
    assert_event(&c, 0, "", "message", "x\ny");
    client_sse_free(&p);
    collected_free(&c);
}

static void test_sse_callback_stops(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct client_sse_parser p;
    client_sse_init(&p);
    struct collected c = { .stop_after = 1 };
    struct err err;
    const char s[] = "data: 1\n\ndata: 2\n\n";
    assert_int_equal(client_sse_feed(&p, s, sizeof s - 1, collect, &c, &err), ERR_INTERNAL);
    assert_int_equal(c.n, 1);
    client_sse_free(&p);
    collected_free(&c);
}

static void test_sse_too_long(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct client_sse_parser p;
    struct collected c = { 0 };
    struct err err;

    client_sse_init(&p);
    p.max_line = 16;
    assert_int_equal(client_sse_feed(&p, "data: 0123456789", 16, collect, &c, &err), 0);
    assert_int_equal(client_sse_feed(&p, "x", 1, collect, &c, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "longer than 16 bytes"));
    client_sse_free(&p);

    /* Many short data lines cannot build an event past the bound either. */
    client_sse_init(&p);
    p.max_line = 16;
    int rc = 0;
    for (int i = 0; i < 10 && !rc; i++)
        rc = client_sse_feed(&p, "data: abcd\n", 11, collect, &c, &err);
    assert_int_equal(rc, ERR_INVALID);
    assert_int_equal(c.n, 0);
    client_sse_free(&p);
}

static void test_escape(void **state)
{
    (void)state; /* cmocka fixture unused */
    char *e = client_escape("a/b c%~._-Z9");
    assert_string_equal(e, "a%2Fb%20c%25~._-Z9");
    free(e);
    e = client_escape("\xe2\x9c\x93?#&=");
    assert_string_equal(e, "%E2%9C%93%3F%23%26%3D");
    free(e);
    e = client_escape("");
    assert_string_equal(e, "");
    free(e);
}

static void test_new_checks_endpoint(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char *bad[] = { "ftp://127.0.0.1", "http://", "https:///x", "127.0.0.1:2468",
                          "http://a b", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        client_t *c = NULL;
        struct err err;
        err_clear(&err);
        assert_int_equal(client_new(bad[i], NULL, &c, &err), ERR_INVALID);
        assert_null(c);
        assert_true(err.msg[0] != '\0');
    }
    client_t *c = NULL;
    struct err err;
    assert_int_equal(client_new("http://127.0.0.1:2468", "tok\nen", &c, &err), ERR_INVALID);
    assert_int_equal(client_new("HTTP://127.0.0.1:2468//", "token", &c, &err), 0);
    client_free(c);
}

/* Nothing listens on 127.0.0.1:1: the error is one line naming the endpoint
 * (without the trailing slash), and the response is left empty. */
static void test_transport_error(void **state)
{
    (void)state; /* cmocka fixture unused */
    client_t *c = NULL;
    struct err err;
    err_clear(&err);
    assert_int_equal(client_new("http://127.0.0.1:1/", "secret-token", &c, &err), 0);
    struct client_response r;
    int rc = client_request(c, "GET", "/v1/health", NULL, &r, &err);
    assert_true(rc < 0);
    assert_true(strncmp(err.msg, "cannot reach http://127.0.0.1:1: ", 33) == 0);
    assert_null(strchr(err.msg, '\n'));
    assert_null(strstr(err.msg, "secret-token"));
    assert_null(r.body);
    assert_null(r.content_type);
    client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_basic),
        cmocka_unit_test(test_sse_every_split),
        cmocka_unit_test(test_sse_comments_and_fields),
        cmocka_unit_test(test_sse_id_with_nul_is_ignored),
        cmocka_unit_test(test_sse_unfinished),
        cmocka_unit_test(test_sse_callback_stops),
        cmocka_unit_test(test_sse_too_long),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_new_checks_endpoint),
        cmocka_unit_test(test_transport_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
