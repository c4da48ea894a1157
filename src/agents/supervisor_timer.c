/* Timers on the supervisor loop (supervisor.h).
 *
 * The handle lives inside a heap struct that only supervisor_timer_free()
 * releases.  When the owner frees a live timer the struct goes with the
 * handle's close callback; when supervisor_stop() closed it first (its pass
 * over every handle left open), the owner's later free finds it closed and
 * releases it directly.
 */
#include "agents/supervisor.h"

#include <assert.h>
#include <stdlib.h>

struct supervisor_timer {
    uv_timer_t handle;
    void (*fire)(void *arg);
    void *arg;
};

static void supervisor_timer_fired(uv_timer_t *handle)
{
    supervisor_timer_t *t = handle->data;
    t->fire(t->arg);
}

int supervisor_timer_new(uv_loop_t *loop, void (*fire)(void *arg), void *arg,
                         supervisor_timer_t **out, struct err *err)
{
    assert(supervisor_on_loop(loop));
    supervisor_timer_t *t = calloc(1, sizeof *t);
    if (!t)
        return err_set(err, ERR_NOMEM, "out of memory creating a timer");
    int rc = uv_timer_init(loop, &t->handle);
    if (rc < 0) {
        free(t);
        return err_set(err, ERR_INTERNAL, "uv_timer_init: %s", uv_strerror(rc));
    }
    t->handle.data = t;
    t->fire = fire;
    t->arg = arg;
    *out = t;
    return 0;
}

int supervisor_timer_arm(supervisor_timer_t *t, uint64_t delay_ms, uint64_t repeat_ms,
                         struct err *err)
{
    assert(supervisor_on_loop(t->handle.loop));
    int rc = uv_timer_start(&t->handle, supervisor_timer_fired, delay_ms, repeat_ms);
    if (rc < 0)
        return err_set(err, ERR_INTERNAL, "uv_timer_start: %s", uv_strerror(rc));
    return 0;
}

void supervisor_timer_disarm(supervisor_timer_t *t)
{
    assert(supervisor_on_loop(t->handle.loop));
    if (uv_timer_stop(&t->handle) != 0)
        abort(); /* uv_timer_stop cannot fail on an initialized timer */
}

int supervisor_timer_armed(const supervisor_timer_t *t)
{
    return uv_is_active((const uv_handle_t *)&t->handle);
}

static void supervisor_timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

void supervisor_timer_free(supervisor_timer_t *t)
{
    if (!t)
        return;
    if (uv_is_closing((uv_handle_t *)&t->handle)) {
        free(t); /* closed by supervisor_stop(): the loop is gone */
        return;
    }
    assert(supervisor_on_loop(t->handle.loop));
    uv_close((uv_handle_t *)&t->handle, supervisor_timer_closed);
}
