/* Unit tests for src/agents/supervisor_timer.c: real timers, on a test's own
 * loop and on a running supervisor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agents/supervisor.h"

#include <stdlib.h>

struct fired {
    supervisor_timer_t *t;
    int count;
    int disarm_at;   /* disarms itself at this count (0: never) */
    int free_at;     /* frees itself at this count (0: never) */
};

static void on_fire(void *arg)
{
    struct fired *f = arg;
    f->count++;
    assert_true(f->count < 1000); /* a repeat that never stops fails, not hangs */
    if (f->count == f->disarm_at)
        supervisor_timer_disarm(f->t);
    if (f->count == f->free_at) {
        supervisor_timer_free(f->t);
        f->t = NULL;
    }
}

static void new_timer(uv_loop_t *loop, struct fired *f)
{
    struct err err;
    assert_int_equal(supervisor_timer_new(loop, on_fire, f, &f->t, &err), 0);
    assert_non_null(f->t);
}

static void arm(supervisor_timer_t *t, uint64_t delay_ms, uint64_t repeat_ms)
{
    struct err err;
    assert_int_equal(supervisor_timer_arm(t, delay_ms, repeat_ms, &err), 0);
}

/* Runs the loop until nothing keeps it alive: no armed timer. */
static void run(uv_loop_t *loop)
{
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
}

/* Each test gets its own loop, which no supervisor runs (data NULL). */
static int loop_setup(void **state)
{
    uv_loop_t *loop = calloc(1, sizeof *loop);
    if (!loop || uv_loop_init(loop) != 0)
        return -1;
    *state = loop;
    return 0;
}

/* Every timer was freed by its test: the loop closes, ASan finds no leak. */
static int loop_teardown(void **state)
{
    uv_loop_t *loop = *state;
    run(loop);
    int rc = uv_loop_close(loop);
    free(loop);
    return rc;
}

static void test_once(void **state)
{
    uv_loop_t *loop = *state;
    struct fired f = { 0 };
    new_timer(loop, &f);
    assert_false(supervisor_timer_armed(f.t));
    run(loop); /* a disarmed timer keeps nothing alive: the loop ends at once */
    assert_int_equal(f.count, 0);
    arm(f.t, 5, 0);
    assert_true(supervisor_timer_armed(f.t));
    run(loop);
    assert_int_equal(f.count, 1);
    assert_false(supervisor_timer_armed(f.t));
    arm(f.t, 1, 0); /* armed again, it fires again */
    run(loop);
    assert_int_equal(f.count, 2);
    supervisor_timer_free(f.t);
}

static void test_repeat_until_disarmed(void **state)
{
    uv_loop_t *loop = *state;
    struct fired f = { .disarm_at = 3 };
    new_timer(loop, &f);
    arm(f.t, 1, 1);
    run(loop); /* ends once disarmed */
    assert_int_equal(f.count, 3);
    assert_false(supervisor_timer_armed(f.t));
    supervisor_timer_free(f.t);
}

static void test_rearm_replaces_delay(void **state)
{
    uv_loop_t *loop = *state;
    struct fired f = { 0 };
    new_timer(loop, &f);
    arm(f.t, 3600 * 1000, 0);
    arm(f.t, 1, 0);
    uint64_t before = uv_now(loop);
    run(loop);
    assert_int_equal(f.count, 1);
    assert_true(uv_now(loop) - before < 60 * 1000); /* not the hour */
    supervisor_timer_free(f.t);
}

static void test_disarm_and_free_never_fire(void **state)
{
    uv_loop_t *loop = *state;
    struct fired a = { 0 }, b = { 0 };
    new_timer(loop, &a);
    new_timer(loop, &b);
    arm(a.t, 1, 0);
    arm(b.t, 1, 1);
    supervisor_timer_disarm(a.t);
    supervisor_timer_free(b.t); /* armed, repeating: freed all the same */
    supervisor_timer_free(NULL);
    run(loop); /* nothing is armed any more, so the loop ends without waiting */
    assert_int_equal(a.count, 0);
    assert_int_equal(b.count, 0);
    supervisor_timer_free(a.t);
}

static void test_free_from_its_own_fire(void **state)
{
    uv_loop_t *loop = *state;
    struct fired f = { .free_at = 2 };
    new_timer(loop, &f);
    arm(f.t, 1, 1);
    run(loop);
    assert_int_equal(f.count, 2);
    assert_null(f.t);
}

/* ---- on a running supervisor ------------------------------------------ */

struct on_sup {
    struct fired f;
    int on_loop;
    int rc;
};

static void make_timer(uv_loop_t *loop, void *arg)
{
    struct on_sup *o = arg;
    struct err err;
    o->on_loop = supervisor_on_loop(loop);
    o->rc = supervisor_timer_new(loop, on_fire, &o->f, &o->f.t, &err);
    if (o->rc == 0)
        o->rc = supervisor_timer_arm(o->f.t, 3600 * 1000, 0, &err);
    if (o->rc == 0)
        supervisor_timer_disarm(o->f.t); /* armed, it would hold the loop up */
}

/* A timer still open when the supervisor stops is closed by it and freed by
 * its owner afterwards, from another thread: no leak, no fire. */
static void test_free_after_supervisor_stop(void **state)
{
    (void)state; /* cmocka fixture unused */
    supervisor_t *s = NULL;
    struct err err;
    assert_int_equal(supervisor_start(&s, &err), 0);
    assert_false(supervisor_on_loop(supervisor_loop(s))); /* the test's thread */
    struct on_sup o = { 0 };
    assert_int_equal(supervisor_call(s, make_timer, &o, &err), 0);
    assert_int_equal(o.rc, 0);
    assert_true(o.on_loop);
    supervisor_stop(s);
    assert_int_equal(o.f.count, 0);
    supervisor_timer_free(o.f.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_once, loop_setup, loop_teardown),
        cmocka_unit_test_setup_teardown(test_repeat_until_disarmed, loop_setup, loop_teardown),
        cmocka_unit_test_setup_teardown(test_rearm_replaces_delay, loop_setup, loop_teardown),
        cmocka_unit_test_setup_teardown(test_disarm_and_free_never_fire, loop_setup,
                                        loop_teardown),
        cmocka_unit_test_setup_teardown(test_free_from_its_own_fire, loop_setup, loop_teardown),
        cmocka_unit_test(test_free_after_supervisor_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
