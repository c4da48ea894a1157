/* Allocation failure injection for the out-of-memory tests (test_oom_*.c),
 * in the manner of jansson's test_chaos.c: the Nth allocation fails, for
 * N = 1, 2, 3, ... until the call under test runs with no failure left to
 * inject.
 *
 * What it sees:
 *   - malloc, calloc, realloc, strdup and strndup called by the core library
 *     and by the test: the test executables are linked with
 *     -Wl,--wrap=<each>, so every reference in sjcore's objects goes to the
 *     counting __wrap_<name> in oom_alloc.c (tests/CMakeLists.txt);
 *   - jansson's allocations, through json_set_alloc_funcs(), in the sticky
 *     pass only (oom_alloc.c says why);
 *   - SQLite's, through SQLITE_CONFIG_MALLOC wrapping its default methods.
 * Only the thread that armed the hook counts and fails: the journal's writer
 * thread and libc's own allocations are never touched, so a run is
 * deterministic.
 *
 * The loop itself: oom_loop() calls `attempt` with the hook described by
 * oom_mode(); `attempt` sets up unarmed, brackets the call under test with
 * oom_arm()/oom_disarm(), checks the outcome, cleans up and returns
 * oom_disarm()'s value. */
#ifndef SJ_TEST_OOM_ALLOC_H
#define SJ_TEST_OOM_ALLOC_H

#include <stddef.h>

/* Installs the jansson and SQLite hooks.  Call first in main(), before
 * anything has used SQLite. */
void oom_init(void);

/* Starts counting this thread's allocations: the loop's current one fails
 * (and, in the sticky pass, every later one too). */
void oom_arm(void);

/* Stops counting.  1 if a failure was injected since oom_arm(), else 0. */
int oom_disarm(void);

/* 1 in the sticky pass (every allocation from the Nth on fails), 0 in the
 * one-shot pass (only the Nth fails). */
int oom_sticky(void);

/* The N of the current attempt. */
unsigned long oom_n(void);

/* Runs `attempt` for N = 1, 2, ... until it reports that no failure was
 * injected, first one-shot, then sticky; fails the test if that takes more
 * than `max_n` attempts.  Prints the number of attempts per pass.  Every
 * `stride`-th N is tried past the first `dense` ones (stride 1: all), to
 * bound the runtime of long calls under valgrind.  SJ_OOM_FULL=1 in the
 * environment tries every N; SJ_OOM_TRACE=1 prints a backtrace where each
 * attempt's first failure is injected. */
void oom_loop(const char *name, int (*attempt)(void *arg), void *arg, unsigned long max_n);
void oom_loop_sampled(const char *name, int (*attempt)(void *arg), void *arg,
                      unsigned long max_n, unsigned long dense, unsigned long stride);

#endif
