/* Unit tests for src/sse_tail.c, the frames a session's streams share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/buf.h"
#include "http/sse_tail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void offer(sse_tail_t *t, uint64_t seq, int turn_end)
{
    char frame[64];
    int n = snprintf(frame, sizeof frame, "id: %llu\ndata: {}\n\n", (unsigned long long)seq);
    assert_int_equal(sse_tail_offer(t, seq, turn_end, frame, (size_t)n), 0);
}

/* Copies after `after` into a fresh buffer; returns the frames copied and
 * the text (caller frees). */
static int copy(const sse_tail_t *t, uint64_t after, size_t max_frames, size_t max_bytes,
                int turn_mode, char **text, uint64_t *last, int *ended)
{
    struct buf b;
    buf_init(&b);
    int n = sse_tail_copy(t, after, max_frames, max_bytes, turn_mode, &b, last, ended);
    *text = b.data ? buf_steal(&b) : strdup("");
    assert_non_null(*text);
    return n;
}

static void test_copies_what_follows_the_cursor(void **state)
{
    (void)state; /* cmocka fixture unused */
    sse_tail_t *t = sse_tail_new();
    assert_non_null(t);
    for (uint64_t s = 5; s <= 8; s++)
        offer(t, s, 0);
    char *text;
    uint64_t last = 0;
    int ended = 1;
    assert_int_equal(copy(t, 6, 64, 4096, 0, &text, &last, &ended), 2);
    assert_string_equal(text, "id: 7\ndata: {}\n\nid: 8\ndata: {}\n\n");
    assert_int_equal(last, 8);
    assert_int_equal(ended, 0);
    free(text);
    /* the first kept frame, and nothing past the end or before the start */
    assert_int_equal(copy(t, 4, 1, 4096, 0, &text, &last, &ended), 1);
    assert_string_equal(text, "id: 5\ndata: {}\n\n");
    free(text);
    assert_int_equal(copy(t, 8, 64, 4096, 0, &text, &last, &ended), 0);
    assert_string_equal(text, "");
    free(text);
    assert_int_equal(copy(t, 3, 64, 4096, 0, &text, &last, &ended), 0);
    free(text);
    sse_tail_free(t);
}

static void test_offer_keeps_one_contiguous_run(void **state)
{
    (void)state; /* cmocka fixture unused */
    sse_tail_t *t = sse_tail_new();
    offer(t, 10, 0);
    offer(t, 11, 0);
    offer(t, 11, 0); /* again: ignored */
    offer(t, 9, 0);  /* older: ignored */
    assert_int_equal(sse_tail_count(t), 2);
    assert_int_equal(sse_tail_last(t), 11);
    offer(t, 20, 0); /* a gap: the newer run starts over */
    assert_int_equal(sse_tail_count(t), 1);
    assert_int_equal(sse_tail_last(t), 20);
    char *text;
    uint64_t last;
    int ended;
    assert_int_equal(copy(t, 10, 64, 4096, 0, &text, &last, &ended), 0);
    free(text);
    assert_int_equal(copy(t, 19, 64, 4096, 0, &text, &last, &ended), 1);
    assert_string_equal(text, "id: 20\ndata: {}\n\n");
    free(text);
    sse_tail_clear(t);
    assert_int_equal(sse_tail_count(t), 0);
    assert_int_equal(sse_tail_last(t), 0);
    offer(t, 3, 0); /* cleared: any sequence starts it again */
    assert_int_equal(sse_tail_last(t), 3);
    sse_tail_free(t);
}

static void test_limits_and_turn_end(void **state)
{
    (void)state; /* cmocka fixture unused */
    sse_tail_t *t = sse_tail_new();
    for (uint64_t s = 1; s <= 6; s++)
        offer(t, s, s == 3);
    char *text;
    uint64_t last;
    int ended;
    /* max_frames */
    assert_int_equal(copy(t, 3, 2, 4096, 0, &text, &last, &ended), 2);
    assert_int_equal(last, 5);
    free(text);
    /* max_bytes: stops once reached, but always one frame */
    assert_int_equal(copy(t, 0, 64, 1, 0, &text, &last, &ended), 1);
    assert_int_equal(last, 1);
    free(text);
    assert_int_equal(copy(t, 0, 64, 20, 0, &text, &last, &ended), 2);
    free(text);
    /* a turn stream stops after the turn's end; others go on */
    assert_int_equal(copy(t, 1, 64, 4096, 1, &text, &last, &ended), 2);
    assert_int_equal(last, 3);
    assert_int_equal(ended, 1);
    free(text);
    assert_int_equal(copy(t, 1, 64, 4096, 0, &text, &last, &ended), 5);
    assert_int_equal(ended, 0);
    free(text);
    sse_tail_free(t);
}

/* A long live session keeps only its newest frames, and they stay right. */
static void test_oldest_frames_go(void **state)
{
    (void)state; /* cmocka fixture unused */
    sse_tail_t *t = sse_tail_new();
    for (uint64_t s = 1; s <= 5000; s++)
        offer(t, s, 0);
    assert_int_equal(sse_tail_last(t), 5000);
    size_t kept = sse_tail_count(t);
    assert_true(kept > 0 && kept < 5000);
    char *text;
    uint64_t last;
    int ended;
    assert_int_equal(copy(t, 5000 - kept, 64, 1 << 20, 0, &text, &last, &ended),
                     kept < 64 ? (int)kept : 64);
    char want[64];
    snprintf(want, sizeof want, "id: %llu\n", (unsigned long long)(5000 - kept + 1));
    assert_memory_equal(text, want, strlen(want));
    free(text);
    assert_int_equal(copy(t, 4999, 64, 4096, 0, &text, &last, &ended), 1);
    assert_string_equal(text, "id: 5000\ndata: {}\n\n");
    free(text);
    /* one frame larger than the whole cache is not kept, nor is what it breaks */
    size_t huge = 1 << 20;
    char *big = malloc(huge);
    assert_non_null(big);
    memset(big, 'x', huge);
    assert_int_equal(sse_tail_offer(t, 5001, 0, big, huge), 0);
    free(big);
    assert_int_equal(copy(t, 5000, 64, 4096, 0, &text, &last, &ended), 0);
    free(text);
    offer(t, 5002, 0);
    assert_int_equal(sse_tail_count(t), 1);
    assert_int_equal(copy(t, 5000, 64, 4096, 0, &text, &last, &ended), 0);
    free(text);
    sse_tail_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copies_what_follows_the_cursor),
        cmocka_unit_test(test_offer_keeps_one_contiguous_run),
        cmocka_unit_test(test_limits_and_turn_end),
        cmocka_unit_test(test_oldest_frames_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
