/* The request log of sj-fake-model: one JSON object per line, one line per
 * request, flushed as soon as it is written so a test can read it while
 * the fake keeps running. */
#ifndef FM_LOG_H
#define FM_LOG_H

#include <jansson.h>
#include <stddef.h>

typedef struct fm_log fm_log_t;

/* Opens `path` for appending (an existing log is never truncated); NULL
 * `path` gives a log that only counts.  new: close with fm_log_close().
 * NULL on failure with the reason in err[size]. */
fm_log_t *fm_log_open(const char *path, char *err, size_t size);

/* Numbers the request (1, 2, ... in the order the lines are written),
 * writes {"n":N, ...rec} (just {"n":N} for a NULL `rec`) as one line and
 * flushes it.  A write error is reported once on stderr and does not stop
 * the fake.  Returns N.
 * Thread: any (lines never interleave). */
unsigned long fm_log_write(fm_log_t *l, const json_t *rec);

/* How many requests were numbered so far. */
unsigned long fm_log_count(fm_log_t *l);

void fm_log_close(fm_log_t *l);

#endif
