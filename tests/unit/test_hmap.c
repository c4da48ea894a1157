/* Unit tests for src/hmap.c and src/buf.c, the containers under everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/hmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_put_get_replace(void **state)
{
    (void)state; /* cmocka fixture unused */
    hmap_t *m = hmap_new();
    int a = 1, b = 2;
    assert_int_equal(hmap_put(m, "k", &a), 0);
    assert_ptr_equal(hmap_get(m, "k"), &a);
    assert_int_equal(hmap_put(m, "k", &b), 0);
    assert_ptr_equal(hmap_get(m, "k"), &b);
    assert_int_equal(hmap_count(m), 1);
    assert_null(hmap_get(m, "other"));
    hmap_free(m);
}

/* Many keys, growth, and removal of every other key: every survivor must
 * still be found (removal re-seats the rest of its probe run). */
static void test_grow_and_remove(void **state)
{
    (void)state; /* cmocka fixture unused */
    hmap_t *m = hmap_new();
    enum { N = 5000 };
    static int values[N];
    char key[32];
    for (int i = 0; i < N; i++) {
        values[i] = i;
        snprintf(key, sizeof key, "session-%d", i);
        assert_int_equal(hmap_put(m, key, &values[i]), 0);
    }
    assert_int_equal(hmap_count(m), N);
    for (int i = 0; i < N; i += 2) {
        snprintf(key, sizeof key, "session-%d", i);
        assert_ptr_equal(hmap_remove(m, key), &values[i]);
    }
    assert_int_equal(hmap_count(m), N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "session-%d", i);
        if (i % 2)
            assert_ptr_equal(hmap_get(m, key), &values[i]);
        else
            assert_null(hmap_get(m, key));
    }
    assert_null(hmap_remove(m, "session-0"));
    hmap_free(m);
}

static void count_entry(const char *key, void *value, void *arg)
{
    assert_non_null(key);
    *(int *)arg += *(int *)value;
}

static void test_foreach(void **state)
{
    (void)state; /* cmocka fixture unused */
    hmap_t *m = hmap_new();
    int v[3] = { 1, 10, 100 };
    assert_int_equal(hmap_put(m, "a", &v[0]), 0);
    assert_int_equal(hmap_put(m, "b", &v[1]), 0);
    assert_int_equal(hmap_put(m, "c", &v[2]), 0);
    int sum = 0;
    hmap_foreach(m, count_entry, &sum);
    assert_int_equal(sum, 111);
    hmap_free(m);
}

static void test_buf(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct buf b;
    buf_init(&b);
    assert_int_equal(buf_puts(&b, "id: "), 0);
    assert_int_equal(buf_printf(&b, "%d", 42), 0);
    assert_int_equal(buf_append(&b, "\n\n", 2), 0);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "id: 42\n\n");
    buf_consume(&b, 4);
    assert_string_equal(b.data, "42\n\n");
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf_append(&b, "x", 1), 0);
    assert_int_equal(b.len, 10004);
    char *s = buf_steal(&b);
    assert_int_equal(strlen(s), 10004);
    assert_null(b.data);
    free(s);
    s = buf_steal(&b); /* an empty buffer still yields a string */
    assert_string_equal(s, "");
    free(s);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_grow_and_remove),
        cmocka_unit_test(test_foreach),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
