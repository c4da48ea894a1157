/* Unit tests for src/agents/supervisor_restart.c: the back-off schedule,
 * its cap and reset, and the ServerStatusInfo record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agents/supervisor_restart.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static supervisor_restart_t *new_restart(const struct supervisor_restart_policy *policy)
{
    supervisor_restart_t *r = NULL;
    struct err err;
    assert_int_equal(supervisor_restart_new(policy, &r, &err), 0);
    assert_non_null(r);
    return r;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static const char *status_of(json_t *s)
{
    return json_string_value(json_object_get(s, "status"));
}

static void test_default_schedule_and_cap(void **state)
{
    (void)state; /* cmocka fixture unused */
    supervisor_restart_t *r = new_restart(NULL);
    assert_int_equal(supervisor_restart_wait_ms(r), 0); /* never crashed: start now */
    static const uint64_t want[] = { 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000 };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        supervisor_restart_started(r);
        assert_int_equal(supervisor_restart_crashed(r, "boom"), want[i]);
    }
    /* The delay just set is what is left to wait (give or take the call). */
    uint64_t wait = supervisor_restart_wait_ms(r);
    assert_true(wait <= 30000 && wait > 29000);
    /* Many more crashes stay at the cap (no overflow of the doubling). */
    for (int i = 0; i < 100; i++)
        assert_int_equal(supervisor_restart_crashed(r, "boom"), 30000);
    supervisor_restart_free(r);
}

static void test_reset_after_a_long_run(void **state)
{
    (void)state; /* cmocka fixture unused */
    const struct supervisor_restart_policy p = { .first_ms = 10, .max_ms = 50,
                                                 .reset_after_ms = 30 };
    supervisor_restart_t *r = new_restart(&p);
    supervisor_restart_started(r);
    assert_int_equal(supervisor_restart_crashed(r, "a"), 10);
    supervisor_restart_started(r);
    assert_int_equal(supervisor_restart_crashed(r, "b"), 20);
    supervisor_restart_started(r);
    assert_int_equal(supervisor_restart_crashed(r, "c"), 40);
    supervisor_restart_started(r);
    assert_int_equal(supervisor_restart_crashed(r, "d"), 50); /* capped */
    /* A run longer than reset_after_ms forgets the crashes before it. */
    supervisor_restart_started(r);
    sleep_ms(40);
    assert_int_equal(supervisor_restart_crashed(r, "e"), 10);
    /* The wait counts down to zero. */
    sleep_ms(15);
    assert_int_equal(supervisor_restart_wait_ms(r), 0);
    supervisor_restart_free(r);
}

static void test_failed_starts_back_off_without_counting(void **state)
{
    (void)state; /* cmocka fixture unused */
    supervisor_restart_t *r = new_restart(NULL);
    assert_int_equal(supervisor_restart_failed(r, "not installed"), 500);
    assert_int_equal(supervisor_restart_failed(r, "not installed"), 1000);
    json_t *s = supervisor_restart_status_json(r);
    assert_string_equal(status_of(s), "error");
    assert_int_equal(json_integer_value(json_object_get(s, "restartCount")), 0);
    assert_string_equal(json_string_value(json_object_get(s, "lastError")), "not installed");
    assert_null(json_object_get(s, "uptimeMs"));
    json_decref(s);
    /* A crash after them goes on doubling, and counts. */
    assert_int_equal(supervisor_restart_crashed(r, "exited"), 2000);
    s = supervisor_restart_status_json(r);
    assert_int_equal(json_integer_value(json_object_get(s, "restartCount")), 1);
    assert_string_equal(json_string_value(json_object_get(s, "lastError")), "exited");
    json_decref(s);
    supervisor_restart_free(r);
}

static void test_status_json(void **state)
{
    (void)state; /* cmocka fixture unused */
    /* No server ever: stopped, no restart. */
    json_t *s = supervisor_restart_status_json(NULL);
    char *text = json_dumps(s, JSON_COMPACT);
    assert_string_equal(text, "{\"status\":\"stopped\",\"restartCount\":0}");
    free(text);
    json_decref(s);

    supervisor_restart_t *r = new_restart(NULL);
    s = supervisor_restart_status_json(r);
    text = json_dumps(s, JSON_COMPACT);
    assert_string_equal(text, "{\"status\":\"stopped\",\"restartCount\":0}");
    free(text);
    json_decref(s);

    supervisor_restart_started(r);
    supervisor_restart_running(r);
    s = supervisor_restart_status_json(r);
    assert_string_equal(status_of(s), "running");
    assert_true(json_is_integer(json_object_get(s, "uptimeMs")));
    assert_true(json_integer_value(json_object_get(s, "uptimeMs")) >= 0);
    assert_null(json_object_get(s, "lastError"));
    json_decref(s);

    supervisor_restart_crashed(r, "killed by signal 9");
    supervisor_restart_started(r);
    supervisor_restart_running(r);
    s = supervisor_restart_status_json(r);
    /* Running again after a crash: the last error stays on show. */
    assert_string_equal(status_of(s), "running");
    assert_int_equal(json_integer_value(json_object_get(s, "restartCount")), 1);
    assert_string_equal(json_string_value(json_object_get(s, "lastError")),
                        "killed by signal 9");
    json_decref(s);

    supervisor_restart_stopped(r);
    s = supervisor_restart_status_json(r);
    assert_string_equal(status_of(s), "stopped");
    assert_null(json_object_get(s, "uptimeMs"));
    json_decref(s);
    supervisor_restart_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_schedule_and_cap),
        cmocka_unit_test(test_reset_after_a_long_run),
        cmocka_unit_test(test_failed_starts_back_off_without_counting),
        cmocka_unit_test(test_status_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
