/* Unit tests for src/base/err.c and the error table base/errors.def. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"

#include <string.h>

/* Every code of the table is named after itself, and the values are -1, -2,
 * ... in table order with none skipped: http.c indexes its ProblemDetails
 * by -code. */
static void test_table_names_and_values(void **state)
{
    (void)state; /* cmocka fixture unused */
    int want = -1, n = 0;
#define ERR(name, value, status, type, title, subject_key)                                     \
    assert_string_equal(err_name(ERR_##name), "ERR_" #name);                                   \
    assert_int_equal(value, want);                                                             \
    assert_true((status) >= 400 && (status) < 600);                                            \
    assert_non_null(title);                                                                    \
    want--;                                                                                    \
    n++;
#include "base/errors.def"
    assert_int_equal(n, 24);
    assert_string_equal(err_name(ERR_OK), "ERR_OK");
    assert_string_equal(err_name(want), "ERR_UNKNOWN");
    assert_string_equal(err_name(1), "ERR_UNKNOWN");
}

static void test_set_fills_the_record(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct err e;
    assert_int_equal(err_set_subject(&e, ERR_NOT_FOUND, "s1", "session not found: %s", "s1"),
                     ERR_NOT_FOUND);
    assert_int_equal(e.code, ERR_NOT_FOUND);
    assert_string_equal(e.msg, "session not found: s1");
    assert_string_equal(e.subject, "s1");
    assert_int_equal(err_set_mode(&e, "mock", "plan"), ERR_MODE_NOT_SUPPORTED);
    assert_string_equal(e.mode, "plan");
    assert_string_equal(e.subject, "mock");
    assert_int_equal(err_set(NULL, ERR_STORAGE, "no record"), ERR_STORAGE);
    err_clear(&e);
    assert_int_equal(e.code, ERR_OK);
    assert_string_equal(e.msg, "");
    assert_string_equal(e.mode, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_names_and_values),
        cmocka_unit_test(test_set_fills_the_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
