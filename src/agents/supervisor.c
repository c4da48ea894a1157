/* The supervisor's loop thread.
 *
 * Work reaches the loop through a mutex-guarded FIFO and one uv_async_t:
 * libuv coalesces async sends, so the async callback drains the whole queue
 * each time it runs.  Stopping posts nothing new, drains what is queued,
 * closes every handle still open and only then lets uv_run() return, so
 * closing callbacks (which free the structs that embed handles) always run.
 */
#include "agents/supervisor.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

struct supervisor_work {
    void (*fn)(uv_loop_t *loop, void *arg);
    void *arg;
    struct supervisor_work *next;
};

struct supervisor {
    uv_loop_t loop;
    uv_async_t wakeup;
    pthread_t thread;
    pthread_mutex_t lock;
    struct supervisor_work *head;
    struct supervisor_work *tail;
    int stopping;
};

static void supervisor_drain(uv_async_t *handle)
{
    supervisor_t *s = handle->data;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        struct supervisor_work *w = s->head;
        if (w) {
            s->head = w->next;
            if (!s->head)
                s->tail = NULL;
        }
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->lock);
        if (!w) {
            if (stopping)
                uv_close((uv_handle_t *)&s->wakeup, NULL);
            return;
        }
        w->fn(&s->loop, w->arg);
        free(w);
    }
}

static void supervisor_close_handle(uv_handle_t *handle, void *arg)
{
    (void)arg; /* uv_walk's context pointer is not needed here */
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

static void *supervisor_main(void *arg)
{
    supervisor_t *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    /* Anything left open by an owner that did not close it: close it now so
     * the loop can be closed without leaking. */
    uv_walk(&s->loop, supervisor_close_handle, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

int supervisor_start(supervisor_t **out, struct err *err)
{
    supervisor_t *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(err, ERR_NOMEM, "out of memory starting the supervisor");
    int rc = uv_loop_init(&s->loop);
    if (rc < 0) {
        free(s);
        return err_set(err, ERR_INTERNAL, "uv_loop_init: %s", uv_strerror(rc));
    }
    rc = uv_async_init(&s->loop, &s->wakeup, supervisor_drain);
    if (rc < 0) {
        uv_loop_close(&s->loop);
        free(s);
        return err_set(err, ERR_INTERNAL, "uv_async_init: %s", uv_strerror(rc));
    }
    s->wakeup.data = s;
    s->loop.data = s;
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        goto fail_handles;
    if (pthread_create(&s->thread, NULL, supervisor_main, s) != 0) {
        pthread_mutex_destroy(&s->lock);
        goto fail_handles;
    }
    *out = s;
    return 0;

fail_handles:
    uv_close((uv_handle_t *)&s->wakeup, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    free(s);
    return err_set(err, ERR_INTERNAL, "could not start the supervisor thread");
}

uv_loop_t *supervisor_loop(supervisor_t *s)
{
    return &s->loop;
}

int supervisor_on_loop(const uv_loop_t *loop)
{
    const supervisor_t *s = loop->data;
    return !s || pthread_equal(pthread_self(), s->thread);
}

int supervisor_post(supervisor_t *s, void (*fn)(uv_loop_t *loop, void *arg), void *arg,
                    struct err *err)
{
    struct supervisor_work *w = malloc(sizeof *w);
    if (!w)
        return err_set(err, ERR_NOMEM, "out of memory queuing supervisor work");
    w->fn = fn;
    w->arg = arg;
    w->next = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        free(w);
        return err_set(err, ERR_INVALID, "the server is shutting down");
    }
    if (s->tail)
        s->tail->next = w;
    else
        s->head = w;
    s->tail = w;
    pthread_mutex_unlock(&s->lock);
    int rc = uv_async_send(&s->wakeup);
    if (rc < 0)
        return err_set(err, ERR_INTERNAL, "uv_async_send: %s", uv_strerror(rc));
    return 0;
}

struct supervisor_sync {
    void (*fn)(uv_loop_t *loop, void *arg);
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
};

static void supervisor_run_sync(uv_loop_t *loop, void *arg)
{
    struct supervisor_sync *sync = arg;
    sync->fn(loop, sync->arg);
    pthread_mutex_lock(&sync->lock);
    sync->done = 1;
    pthread_cond_signal(&sync->cond);
    pthread_mutex_unlock(&sync->lock);
}

int supervisor_call(supervisor_t *s, void (*fn)(uv_loop_t *loop, void *arg), void *arg,
                    struct err *err)
{
    assert(!supervisor_on_loop(&s->loop)); /* it would wait for itself */
    struct supervisor_sync sync = { .fn = fn, .arg = arg, .done = 0 };
    if (pthread_mutex_init(&sync.lock, NULL) != 0)
        return err_set(err, ERR_INTERNAL, "pthread_mutex_init failed");
    if (pthread_cond_init(&sync.cond, NULL) != 0) {
        pthread_mutex_destroy(&sync.lock);
        return err_set(err, ERR_INTERNAL, "pthread_cond_init failed");
    }
    int rc = supervisor_post(s, supervisor_run_sync, &sync, err);
    if (rc == 0) {
        pthread_mutex_lock(&sync.lock);
        while (!sync.done)
            pthread_cond_wait(&sync.cond, &sync.lock);
        pthread_mutex_unlock(&sync.lock);
    }
    pthread_cond_destroy(&sync.cond);
    pthread_mutex_destroy(&sync.lock);
    return rc;
}

void supervisor_stop(supervisor_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_mutex_unlock(&s->lock);
    /* The drain callback sees `stopping` with an empty queue and closes the
     * async handle, which lets uv_run() return once other handles are done. */
    if (uv_async_send(&s->wakeup) < 0)
        abort(); /* only fails on a closed handle: a double stop is a bug */
    pthread_join(s->thread, NULL);
    if (uv_loop_close(&s->loop) != 0)
        abort(); /* a handle outlived uv_walk's close pass: a bug, never a runtime condition */
    pthread_mutex_destroy(&s->lock);
    free(s);
}
