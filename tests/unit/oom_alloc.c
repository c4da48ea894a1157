/* Allocation failure injection; see oom_alloc.h. */
#include "oom_alloc.h"

#include <execinfo.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h> /* cmocka needs these three first */
#include <cmocka.h>

/* The real allocators, reached past --wrap. */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* The loop's settings, shared by every thread but written only between
 * attempts by the testing thread. */
static unsigned long oom_fail_at; /* the N of the current attempt */
static int oom_sticky_pass;
static int oom_trace;
static int oom_json_oneshot; /* SJ_OOM_JANSSON_ONESHOT=1: show jansson's fault */

/* Per thread, so that only the thread under test counts and fails. */
static _Thread_local int oom_armed;
static _Thread_local unsigned long oom_seen;
static _Thread_local int oom_fired;

/* 1 if this allocation must fail. */
static int oom_should_fail(void)
{
    if (!oom_armed)
        return 0;
    oom_seen++;
    if (oom_seen == oom_fail_at || (oom_sticky_pass && oom_seen > oom_fail_at)) {
        if (oom_trace && !oom_fired) {
            /* SJ_OOM_TRACE=1: where the first failure of each attempt was
             * injected (backtrace() itself must not recurse into us). */
            void *frames[16];
            oom_armed = 0;
            int n = backtrace(frames, 16);
            fprintf(stderr, "oom: N=%lu%s fails here:\n", oom_fail_at,
                    oom_sticky_pass ? " (sticky)" : "");
            backtrace_symbols_fd(frames, n, 2);
            oom_armed = 1;
        }
        oom_fired = 1;
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t size)
{
    return oom_should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return oom_should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    /* realloc(p, 0) frees on glibc; failing it would be a different call. */
    if (size && oom_should_fail())
        return NULL;
    return __real_realloc(p, size);
}

char *__wrap_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = oom_should_fail() ? NULL : __real_malloc(len);
    if (copy)
        memcpy(copy, s, len);
    return copy;
}

char *__wrap_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *copy = oom_should_fail() ? NULL : __real_malloc(len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

/* jansson: its allocations fail only in the sticky pass.  Its parser
 * ignores a failed append to its token buffer and goes on with a byte
 * missing, so when that one allocation fails and the next ones succeed, it
 * can return a wrong string or number without an error (docs/testing.md);
 * with every later allocation failing too it always fails cleanly, which
 * is the case jansson's own test_chaos.c covers. */
static void *oom_json_malloc(size_t size)
{
    return oom_sticky_pass || oom_json_oneshot ? __wrap_malloc(size) : __real_malloc(size);
}

static void oom_json_free(void *p)
{
    free(p);
}

/* SQLite: its default allocator behind the same counter. */
static sqlite3_mem_methods oom_sqlite_default;

static void *oom_sqlite_malloc(int size)
{
    return oom_should_fail() ? NULL : oom_sqlite_default.xMalloc(size);
}

static void *oom_sqlite_realloc(void *p, int size)
{
    return oom_should_fail() ? NULL : oom_sqlite_default.xRealloc(p, size);
}

void oom_init(void)
{
    const char *trace = getenv("SJ_OOM_TRACE");
    oom_trace = trace && *trace && strcmp(trace, "0") != 0;
    const char *oneshot = getenv("SJ_OOM_JANSSON_ONESHOT");
    oom_json_oneshot = oneshot && *oneshot && strcmp(oneshot, "0") != 0;
    json_set_alloc_funcs(oom_json_malloc, oom_json_free);
    sqlite3_mem_methods m;
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &oom_sqlite_default) != SQLITE_OK) {
        fprintf(stderr, "oom: cannot read SQLite's allocator\n");
        exit(1);
    }
    m = oom_sqlite_default;
    m.xMalloc = oom_sqlite_malloc;
    m.xRealloc = oom_sqlite_realloc;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK) {
        fprintf(stderr, "oom: cannot hook SQLite's allocator (already initialized?)\n");
        exit(1);
    }
}

void oom_arm(void)
{
    oom_seen = 0;
    oom_fired = 0;
    oom_armed = 1;
}

int oom_disarm(void)
{
    oom_armed = 0;
    return oom_fired;
}

int oom_sticky(void)
{
    return oom_sticky_pass;
}

unsigned long oom_n(void)
{
    return oom_fail_at;
}

void oom_loop_sampled(const char *name, int (*attempt)(void *arg), void *arg,
                      unsigned long max_n, unsigned long dense, unsigned long stride)
{
    const char *full = getenv("SJ_OOM_FULL");
    if (full && *full && strcmp(full, "0") != 0)
        stride = 1;
    for (int sticky = 0; sticky <= 1; sticky++) {
        oom_sticky_pass = sticky;
        unsigned long n = 1, tried = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            if (n > max_n)
                fail_msg("%s: still failing after %lu allocations", name, max_n);
            oom_fail_at = n;
            tried++;
            if (!attempt(arg))
                break;
            n += n < dense ? 1 : stride;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        printf("oom: %-34s %s: succeeded at N=%lu (%lu attempts, %ld ms)\n", name,
               sticky ? "sticky  " : "one-shot", n, tried, ms);
    }
    oom_sticky_pass = 0;
    oom_fail_at = 0;
}

void oom_loop(const char *name, int (*attempt)(void *arg), void *arg, unsigned long max_n)
{
    oom_loop_sampled(name, attempt, arg, max_n, (unsigned long)-1, 1);
}
