/* Out-of-memory tests of src/base/: buf, hmap and opts under a failing Nth
 * allocation (oom_alloc.h).  Each failed call must return ERR_NOMEM and
 * leave its object as the header promises (unchanged), and the same call
 * made again must work. */
#include "base/buf.h"
#include "base/err.h"
#include "base/hmap.h"
#include "base/opts.h"

#include "oom_alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h> /* cmocka needs these three first */
#include <cmocka.h>

/* ---- buf ------------------------------------------------------------------ */

/* One append step of the buf attempt: 0 when it worked. */
static int buf_step(struct buf *b, int i)
{
    switch (i % 3) {
    case 0:
        return buf_puts(b, "a sentence that fills the buffer a little more each time; ");
    case 1:
        return buf_printf(b, "[%d:%s]", i, "printf");
    default: {
        char big[700];
        memset(big, 'x', sizeof big);
        return buf_append(b, big, sizeof big);
    }
    }
}

static int buf_attempt(void *arg)
{
    (void)arg;
    struct buf b, want;
    buf_init(&b);
    buf_init(&want);
    for (int i = 0; i < 12; i++)
        assert_int_equal(buf_step(&want, i), 0);

    oom_arm();
    int failed = 0;
    for (int i = 0; i < 12 && !failed; i++) {
        size_t before = b.len;
        int rc = buf_step(&b, i);
        if (rc == 0)
            continue;
        assert_int_equal(rc, ERR_NOMEM);
        /* Unchanged: same length, same bytes, still terminated. */
        assert_int_equal(b.len, before);
        if (b.data) {
            assert_int_equal(b.data[b.len], '\0');
            assert_memory_equal(b.data, want.data, b.len);
        }
        if (oom_sticky()) {
            failed = 1;
            break;
        }
        /* One-shot: the same call now works. */
        assert_int_equal(buf_step(&b, i), 0);
    }
    char *s = failed ? NULL : buf_steal(&b);
    int fired = oom_disarm();
    if (!failed && !s) {
        assert_true(fired); /* buf_steal allocates only for an empty buf */
    } else if (s) {
        assert_string_equal(s, want.data);
    }
    free(s);
    buf_free(&b);
    buf_free(&want);
    return fired;
}

static void test_buf(void **state)
{
    (void)state;
    oom_loop("buf append/printf/steal", buf_attempt, NULL, 1000);
}

static int buf_steal_empty_attempt(void *arg)
{
    (void)arg;
    struct buf b;
    buf_init(&b);
    oom_arm();
    char *s = buf_steal(&b);
    int fired = oom_disarm();
    if (fired) {
        assert_null(s);
        assert_null(b.data);
    } else {
        assert_string_equal(s, "");
    }
    free(s);
    buf_free(&b);
    return fired;
}

static void test_buf_steal_empty(void **state)
{
    (void)state;
    oom_loop("buf steal of an empty buf", buf_steal_empty_attempt, NULL, 10);
}

/* ---- hmap ----------------------------------------------------------------- */

#define HMAP_KEYS 200

static int hmap_attempt(void *arg)
{
    (void)arg;
    static int values[HMAP_KEYS];
    oom_arm();
    hmap_t *m = hmap_new();
    if (!m) {
        assert_true(oom_disarm()); /* NULL only when memory ran out */
        return 1;
    }
    int stop = 0;
    for (int i = 0; i < HMAP_KEYS && !stop; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", i);
        size_t before = hmap_count(m);
        int rc = hmap_put(m, key, &values[i]);
        if (rc) {
            assert_int_equal(rc, ERR_NOMEM);
            /* Unchanged: the key is not there, the others are. */
            assert_int_equal(hmap_count(m), before);
            assert_null(hmap_get(m, key));
            if (oom_sticky())
                stop = 1;
            else
                assert_int_equal(hmap_put(m, key, &values[i]), 0);
        }
    }
    /* Replacing a key allocates nothing. */
    if (!stop)
        assert_int_equal(hmap_put(m, "key-7", &values[8]), 0);
    int fired = oom_disarm();
    if (!stop) {
        assert_int_equal(hmap_count(m), HMAP_KEYS);
        for (int i = 0; i < HMAP_KEYS; i++) {
            char key[32];
            snprintf(key, sizeof key, "key-%d", i);
            assert_ptr_equal(hmap_get(m, key), i == 7 ? &values[8] : &values[i]);
        }
        for (int i = 0; i < HMAP_KEYS; i += 2) {
            char key[32];
            snprintf(key, sizeof key, "key-%d", i);
            assert_non_null(hmap_remove(m, key));
        }
        assert_int_equal(hmap_count(m), HMAP_KEYS / 2);
    }
    hmap_free(m);
    return fired;
}

static void test_hmap(void **state)
{
    (void)state;
    oom_loop("hmap new/put (growing)", hmap_attempt, NULL, 1000);
}

/* ---- opts ----------------------------------------------------------------- */

/* The option parsers allocate nothing: the loop ends at N = 1. */
static int opts_attempt(void *arg)
{
    (void)arg;
    char a0[] = "sandbox-journal", a1[] = "--port=8080", a2[] = "-d", a3[] = "/tmp/x";
    char *argv[] = {a0, a1, a2, a3};
    int i = 1, missing = 0;
    const char *value = NULL;
    unsigned long port = 0;
    oom_arm();
    int m1 = opts_match(4, argv, &i, "--port", "-p", 1, &value, &missing);
    int u = opts_uint(value, 65535, &port);
    i = 2;
    int m2 = opts_match(4, argv, &i, "--data-dir", "-d", 1, &value, &missing);
    int fired = oom_disarm();
    assert_int_equal(m1, 1);
    assert_int_equal(u, 0);
    assert_int_equal(port, 8080);
    assert_int_equal(m2, 1);
    assert_int_equal(i, 3);
    assert_string_equal(value, "/tmp/x");
    assert_int_equal(missing, 0);
    return fired;
}

static void test_opts(void **state)
{
    (void)state;
    oom_loop("opts match/uint", opts_attempt, NULL, 1);
}

int main(void)
{
    oom_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_buf_steal_empty),
        cmocka_unit_test(test_hmap),
        cmocka_unit_test(test_opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
