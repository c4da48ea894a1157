/* Small helpers shared by the files of sj-fake-model: the shutdown flag,
 * interruptible sleeps, a growable byte buffer and UTF-8 handling.
 *
 * sj-fake-model is a test tool, not part of the server: it links only
 * libmicrohttpd, jansson and pthreads, never sjcore, so a broken core
 * library cannot take the fake down with it. */
#ifndef FM_UTIL_H
#define FM_UTIL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

/* Set once when the process is asked to stop.  Request threads that sleep
 * (scripted delays) poll it so shutdown is never held up by a script. */
extern atomic_int fm_util_stopping;

/* Sleeps `ms` milliseconds in slices of at most 10 ms.  0 after the full
 * time, -1 as soon as fm_util_stopping is set.  Thread: any. */
int fm_util_sleep_ms(long ms);

/* A growable byte buffer; `data` is NUL-terminated whenever non-NULL. */
struct fm_util_buf {
    char *data; /* owned */
    size_t len;
    size_t cap;
};

/* 0, or -1 when memory runs out or the total would exceed `limit` bytes
 * (0: no limit); on failure the buffer is unchanged. */
int fm_util_buf_append(struct fm_util_buf *b, const void *data, size_t len, size_t limit);
void fm_util_buf_free(struct fm_util_buf *b);

/* new: a JSON array of 1..n strings whose concatenation is `s`, cut at
 * UTF-8 code point boundaries into pieces of about equal length (the last
 * may be shorter; fewer than n when `s` has fewer code points; one "" for
 * an empty string).  NULL on allocation failure or invalid UTF-8. */
json_t *fm_util_split(const char *s, size_t n);

/* new (malloc): a NUL-terminated copy of s[0..len) in which every byte that
 * is not part of a valid UTF-8 sequence (and every NUL) is replaced by '?',
 * so it can go into a JSON string.  NULL on allocation failure. */
char *fm_util_sanitize(const char *s, size_t len);

/* 1 if `name` equals one of the NULL-terminated `names`, ignoring case. */
int fm_util_in_list(const char *name, const char *const *names);

#endif
