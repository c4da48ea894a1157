/* Unit tests of src/http/ws.c: the handshake key (RFC 6455's example), the
 * RFC's example frames, masking, fragmentation with control frames between
 * fragments, the three payload length forms, the limits (1009) and the
 * protocol errors (1002, 1007), and bytes arriving one at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/ws.h"

#include <stdlib.h>
#include <string.h>

static void test_accept_key(void **state)
{
    (void)state; /* cmocka fixture unused */
    char out[WS_ACCEPT_LEN];
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(ws_accept_key("", out), -1);
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ", out), -1);
    assert_int_equal(ws_accept_key("not base64 at all!!!!!==", out), -1);
    /* base64, but of 15 bytes */
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==x", out), -1);
}

static void test_header_forms(void **state)
{
    (void)state; /* cmocka fixture unused */
    unsigned char h[WS_HEADER_MAX];
    assert_int_equal(ws_header_encode(h, WS_TEXT, 5), 2);
    assert_int_equal(h[0], 0x81);
    assert_int_equal(h[1], 5);
    assert_int_equal(ws_header_encode(h, WS_BINARY, 125), 2);
    assert_int_equal(ws_header_encode(h, WS_BINARY, 126), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal(h[2], 0);
    assert_int_equal(h[3], 126);
    assert_int_equal(ws_header_encode(h, WS_BINARY, 256), 4);
    assert_int_equal(h[0], 0x82);
    assert_int_equal(h[2], 1);
    assert_int_equal(h[3], 0);
    assert_int_equal(ws_header_encode(h, WS_BINARY, 65535), 4);
    assert_int_equal(ws_header_encode(h, WS_BINARY, 65536), 10);
    assert_int_equal(h[1], 127);
    static const unsigned char want[8] = { 0, 0, 0, 0, 0, 1, 0, 0 };
    assert_memory_equal(h + 2, want, 8);

    struct buf b;
    buf_init(&b);
    assert_int_equal(ws_close_append(&b, 1000, "bye"), 0);
    static const unsigned char close[] = { 0x88, 5, 0x03, 0xe8, 'b', 'y', 'e' };
    assert_int_equal(b.len, sizeof close);
    assert_memory_equal(b.data, close, sizeof close);
    buf_reset(&b);
    char longr[300];
    memset(longr, 'x', sizeof longr - 1);
    longr[sizeof longr - 1] = 0;
    assert_int_equal(ws_close_append(&b, 1009, longr), 0);
    assert_int_equal(b.len, 2 + 125); /* a control frame's payload limit */
    buf_free(&b);
}

/* A client frame: masked with `mask`, header in the shortest form. */
static size_t client_frame(unsigned char *out, int fin, unsigned op, const void *payload,
                           size_t len)
{
    static const unsigned char mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
    size_t hl = 2;
    out[0] = (unsigned char)((fin ? 0x80 : 0) | op);
    if (len < 126) {
        out[1] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        out[1] = 0x80 | 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        hl = 4;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(out + hl, mask, 4);
    memcpy(out + hl + 4, payload, len);
    ws_mask(out + hl + 4, len, mask, 0);
    return hl + 4 + len;
}

static void test_rfc_examples(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct ws_reader r;
    struct ws_event ev;
    ws_reader_init(&r, 1024);
    /* RFC 6455 5.7: a masked "Hello". */
    static const unsigned char hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
                                           0x9f, 0x4d, 0x51, 0x58 };
    /* Byte by byte: nothing until the last byte. */
    for (size_t i = 0; i < sizeof hello; i++) {
        assert_int_equal(ws_reader_next(&r, &ev), 0);
        assert_int_equal(ev.kind, WS_EV_NONE);
        assert_true(ws_reader_room(&r) > 0);
        assert_int_equal(ws_reader_push(&r, hello + i, 1), 0);
    }
    assert_int_equal(ws_reader_next(&r, &ev), 0);
    assert_int_equal(ev.kind, WS_EV_MESSAGE);
    assert_int_equal(ev.opcode, WS_TEXT);
    assert_int_equal(ev.len, 5);
    assert_memory_equal(ev.data, "Hello", 5);
    assert_int_equal(ws_reader_next(&r, &ev), 0);
    assert_int_equal(ev.kind, WS_EV_NONE);

    /* Fragmented "Hel" + "lo" with a ping between the fragments. */
    unsigned char in[256];
    size_t n = client_frame(in, 0, WS_TEXT, "Hel", 3);
    n += client_frame(in + n, 1, WS_PING, "pi", 2);
    n += client_frame(in + n, 1, WS_CONTINUATION, "lo", 2);
    n += client_frame(in + n, 1, WS_PONG, "", 0);
    assert_int_equal(ws_reader_push(&r, in, n), 0);
    assert_int_equal(ws_reader_next(&r, &ev), 0);
    assert_int_equal(ev.kind, WS_EV_PING);
    assert_int_equal(ev.len, 2);
    assert_memory_equal(ev.data, "pi", 2);
    assert_int_equal(ws_reader_next(&r, &ev), 0);
    assert_int_equal(ev.kind, WS_EV_MESSAGE);
    assert_int_equal(ev.len, 5);
    assert_memory_equal(ev.data, "Hello", 5);
    assert_int_equal(ws_reader_next(&r, &ev), 0);
    assert_int_equal(ev.kind, WS_EV_PONG);
    assert_int_equal(ev.len, 0);

    /* A close with a code and a reason, then one without a code. */
    unsigned char cp[] = { 0x03, 0xe9, 'g', 'o' };
    n = client_frame(in, 1, WS_CLOSE, cp, sizeof cp);
    n += client_frame(in + n, 1, WS_CLOSE, "", 0);
    assert_int_equal(ws_reader_push(&r, in, n), 0);
    assert_int_equal(ws_reader_next(&r, &ev), 0);
    assert_int_equal(ev.kind, WS_EV_CLOSE);
    assert_int_equal(ev.code, 1001);
    assert_int_equal(ev.len, 2);
    assert_int_equal(ws_reader_next(&r, &ev), 0);
    assert_int_equal(ev.kind, WS_EV_CLOSE);
    assert_int_equal(ev.code, WS_CLOSE_NO_STATUS);
    ws_reader_free(&r);
}

static void test_length_forms(void **state)
{
    (void)state; /* cmocka fixture unused */
    size_t sizes[] = { 0, 125, 126, 256, 65535, 65536, 70000 };
    unsigned char *payload = malloc(70000);
    unsigned char *in = malloc(70000 + WS_HEADER_MAX);
    assert_non_null(payload);
    assert_non_null(in);
    for (size_t i = 0; i < 70000; i++)
        payload[i] = (unsigned char)(i * 31 + 7);
    struct ws_reader r;
    ws_reader_init(&r, 70000);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = client_frame(in, 1, WS_BINARY, payload, sizes[k]);
        /* In two pieces, split inside the header for the long forms. */
        size_t cut = n > 3 ? 3 : 1;
        assert_int_equal(ws_reader_push(&r, in, cut), 0);
        struct ws_event ev;
        assert_int_equal(ws_reader_next(&r, &ev), 0);
        assert_int_equal(ev.kind, WS_EV_NONE);
        assert_true(ws_reader_room(&r) >= n - cut);
        assert_int_equal(ws_reader_push(&r, in + cut, n - cut), 0);
        assert_int_equal(ws_reader_next(&r, &ev), 0);
        assert_int_equal(ev.kind, WS_EV_MESSAGE);
        assert_int_equal(ev.opcode, WS_BINARY);
        assert_int_equal(ev.len, sizes[k]);
        if (sizes[k])
            assert_memory_equal(ev.data, payload, sizes[k]);
    }
    ws_reader_free(&r);
    free(payload);
    free(in);
}

/* Feeds `in` and expects an error event with `code`, then the same again. */
static void expect_error(const unsigned char *in, size_t n, size_t max, unsigned code)
{
    struct ws_reader r;
    struct ws_event ev;
    ws_reader_init(&r, max);
    assert_int_equal(ws_reader_push(&r, in, n), 0);
    do {
        assert_int_equal(ws_reader_next(&r, &ev), 0);
    } while (ev.kind == WS_EV_MESSAGE || ev.kind == WS_EV_PING);
    assert_int_equal(ev.kind, WS_EV_ERROR);
    assert_int_equal(ev.code, code);
    assert_int_equal(ws_reader_next(&r, &ev), 0);
    assert_int_equal(ev.kind, WS_EV_ERROR);
    ws_reader_free(&r);
}

static void test_errors(void **state)
{
    (void)state; /* cmocka fixture unused */
    unsigned char in[512];
    /* Unmasked: the RFC's unmasked "Hello" from a client. */
    static const unsigned char unmasked[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
    expect_error(unmasked, sizeof unmasked, 1024, WS_CLOSE_PROTOCOL);
    /* Too big: refused from the header alone, before the payload. */
    static const unsigned char big[] = { 0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0 };
    expect_error(big, sizeof big, 1024, WS_CLOSE_TOO_BIG);
    static const unsigned char huge[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0 };
    expect_error(huge, sizeof huge, 1024, WS_CLOSE_PROTOCOL);
    /* Fragments adding up past the bound. */
    size_t n = client_frame(in, 0, WS_BINARY, in + 300, 100);
    n += client_frame(in + n, 1, WS_CONTINUATION, in + 300, 100);
    expect_error(in, n, 150, WS_CLOSE_TOO_BIG);
    /* A continuation with no message, a new message inside one. */
    n = client_frame(in, 1, WS_CONTINUATION, "x", 1);
    expect_error(in, n, 1024, WS_CLOSE_PROTOCOL);
    n = client_frame(in, 0, WS_TEXT, "x", 1);
    n += client_frame(in + n, 1, WS_TEXT, "y", 1);
    expect_error(in, n, 1024, WS_CLOSE_PROTOCOL);
    /* Control frames: fragmented, too long. */
    n = client_frame(in, 0, WS_PING, "x", 1);
    expect_error(in, n, 1024, WS_CLOSE_PROTOCOL);
    memset(in + 300, 'p', 126);
    n = client_frame(in, 1, WS_PING, in + 300, 126);
    expect_error(in, n, 1024, WS_CLOSE_PROTOCOL);
    /* Reserved bits, reserved opcodes. */
    n = client_frame(in, 1, WS_TEXT, "x", 1);
    in[0] |= 0x40;
    expect_error(in, n, 1024, WS_CLOSE_PROTOCOL);
    n = client_frame(in, 1, 0x3, "x", 1);
    expect_error(in, n, 1024, WS_CLOSE_PROTOCOL);
    n = client_frame(in, 1, 0xB, "x", 1);
    expect_error(in, n, 1024, WS_CLOSE_PROTOCOL);
    /* Text that is not UTF-8, whole and fragmented; a bad close. */
    n = client_frame(in, 1, WS_TEXT, "\xc3\x28", 2);
    expect_error(in, n, 1024, WS_CLOSE_BAD_DATA);
    n = client_frame(in, 0, WS_TEXT, "\xe2\x82", 2);
    n += client_frame(in + n, 1, WS_CONTINUATION, "\x28", 1);
    expect_error(in, n, 1024, WS_CLOSE_BAD_DATA);
    n = client_frame(in, 1, WS_CLOSE, "\x03", 1);
    expect_error(in, n, 1024, WS_CLOSE_PROTOCOL);
    n = client_frame(in, 1, WS_CLOSE, "\x03\xed", 2); /* 1005 is never sent */
    expect_error(in, n, 1024, WS_CLOSE_PROTOCOL);
}

static void test_many_empty_fragments(void **state)
{
    (void)state; /* cmocka fixture unused */
    /* 100,000 empty fragments: a loop, not a recursion per fragment. */
    size_t count = 100000;
    unsigned char *in = malloc(count * 6 + 16);
    assert_non_null(in);
    size_t n = client_frame(in, 0, WS_BINARY, "", 0);
    for (size_t i = 1; i < count; i++)
        n += client_frame(in + n, 0, WS_CONTINUATION, "", 0);
    n += client_frame(in + n, 1, WS_CONTINUATION, "z", 1);
    struct ws_reader r;
    struct ws_event ev;
    ws_reader_init(&r, count * 6 + 16);
    assert_int_equal(ws_reader_push(&r, in, n), 0);
    assert_int_equal(ws_reader_next(&r, &ev), 0);
    assert_int_equal(ev.kind, WS_EV_MESSAGE);
    assert_int_equal(ev.len, 1);
    ws_reader_free(&r);
    free(in);
}

static void test_utf8(void **state)
{
    (void)state; /* cmocka fixture unused */
    assert_true(ws_utf8_valid((const unsigned char *)"", 0));
    assert_true(ws_utf8_valid((const unsigned char *)"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
    assert_false(ws_utf8_valid((const unsigned char *)"\xc0\xaf", 2)); /* overlong */
    assert_false(ws_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3)); /* surrogate */
    assert_false(ws_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(ws_utf8_valid((const unsigned char *)"\xe2\x82", 2)); /* cut */
    assert_false(ws_utf8_valid((const unsigned char *)"\xff", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_header_forms),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_length_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_many_empty_fragments),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
