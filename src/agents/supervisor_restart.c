/* Restart with back-off and ServerStatusInfo for shared agent servers
 * (supervisor_restart.h). */
#include "agents/supervisor_restart.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Crashes counted beyond this change nothing (the delay is capped long
 * before) and could only overflow the shift. */
#define RESTART_MAX_CRASHES 32

const struct supervisor_restart_policy supervisor_restart_default = {
    .first_ms = 500, .max_ms = 30000, .reset_after_ms = 60000,
};

struct supervisor_restart {
    pthread_mutex_t lock;
    struct supervisor_restart_policy policy;
    /* All under lock. */
    const char *status;      /* "running", "stopped", "error" */
    long long restart_count;
    char last_error[256];
    uint64_t running_since;  /* monotonic ms; 0 unless running */
    uint64_t started_ms;     /* the current run's start */
    unsigned crashes;        /* in a row, for the back-off */
    uint64_t next_start_ms;  /* no start before this */
};

static uint64_t restart_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* + 1: 0 stands for "never" in the fields above. */
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + 1;
}

int supervisor_restart_new(const struct supervisor_restart_policy *policy,
                           supervisor_restart_t **out, struct err *err)
{
    supervisor_restart_t *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(err, ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return err_set(err, ERR_INTERNAL, "pthread_mutex_init failed");
    }
    r->policy = policy ? *policy : supervisor_restart_default;
    r->status = "stopped";
    *out = r;
    return 0;
}

void supervisor_restart_free(supervisor_restart_t *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void supervisor_restart_started(supervisor_restart_t *r)
{
    pthread_mutex_lock(&r->lock);
    r->started_ms = restart_now_ms();
    pthread_mutex_unlock(&r->lock);
}

void supervisor_restart_running(supervisor_restart_t *r)
{
    pthread_mutex_lock(&r->lock);
    r->status = "running";
    r->running_since = restart_now_ms();
    pthread_mutex_unlock(&r->lock);
}

void supervisor_restart_stopped(supervisor_restart_t *r)
{
    pthread_mutex_lock(&r->lock);
    r->status = "stopped";
    r->running_since = 0;
    pthread_mutex_unlock(&r->lock);
}

/* One more crash or failed start; sets and returns the delay.  r->lock
 * held (by the caller: trylock can only fail). */
static uint64_t restart_back_off(supervisor_restart_t *r, const char *why, uint64_t now)
{
    assert(pthread_mutex_trylock(&r->lock) == EBUSY);
    if (r->crashes < RESTART_MAX_CRASHES)
        r->crashes++;
    uint64_t delay = r->policy.first_ms;
    for (unsigned i = 1; i < r->crashes && delay < r->policy.max_ms; i++)
        delay *= 2;
    if (delay > r->policy.max_ms)
        delay = r->policy.max_ms;
    r->next_start_ms = now + delay;
    r->status = "error";
    r->running_since = 0;
    snprintf(r->last_error, sizeof r->last_error, "%s", why);
    return delay;
}

uint64_t supervisor_restart_crashed(supervisor_restart_t *r, const char *why)
{
    uint64_t now = restart_now_ms();
    pthread_mutex_lock(&r->lock);
    if (r->started_ms && now - r->started_ms > r->policy.reset_after_ms)
        r->crashes = 0;
    r->restart_count++;
    uint64_t delay = restart_back_off(r, why, now);
    pthread_mutex_unlock(&r->lock);
    return delay;
}

uint64_t supervisor_restart_failed(supervisor_restart_t *r, const char *why)
{
    uint64_t now = restart_now_ms();
    pthread_mutex_lock(&r->lock);
    uint64_t delay = restart_back_off(r, why, now);
    pthread_mutex_unlock(&r->lock);
    return delay;
}

uint64_t supervisor_restart_wait_ms(supervisor_restart_t *r)
{
    uint64_t now = restart_now_ms();
    pthread_mutex_lock(&r->lock);
    uint64_t wait = r->next_start_ms > now ? r->next_start_ms - now : 0;
    pthread_mutex_unlock(&r->lock);
    return wait;
}

json_t *supervisor_restart_status_json(supervisor_restart_t *r)
{
    if (!r)
        return json_pack("{s:s,s:i}", "status", "stopped", "restartCount", 0);
    pthread_mutex_lock(&r->lock);
    json_t *s = json_pack("{s:s,s:I}", "status", r->status, "restartCount",
                          (json_int_t)r->restart_count);
    int rc = s ? 0 : -1;
    if (!rc && r->last_error[0])
        rc = json_object_set_new(s, "lastError", json_string(r->last_error));
    if (!rc && r->running_since)
        rc = json_object_set_new(s, "uptimeMs",
                                 json_integer((json_int_t)(restart_now_ms() - r->running_since)));
    pthread_mutex_unlock(&r->lock);
    if (rc) {
        json_decref(s);
        return NULL;
    }
    return s;
}
