/* A growable byte buffer, always NUL-terminated when non-empty, used to
 * build responses, SSE frames and SQL-free JSON pages without re-copying. */
#ifndef SJ_BUF_H
#define SJ_BUF_H

#include <stddef.h>

struct buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
/* All appenders return 0 or ERR_NOMEM, leaving `b` unchanged on failure. */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first `n` bytes, keeping the rest. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* new: the contents as a NUL-terminated string the caller frees with free();
 * `b` is left empty.  Returns NULL on allocation failure. */
char *buf_steal(struct buf *b);

#endif
