/* Frames live back to back in one buffer; an index entry per frame gives its
 * place.  Sequences of kept frames are consecutive, so the frame of sequence
 * s is entry s - first: no search.  Dropping the oldest frames moves the
 * rest to the front, once per half of the cache, so appends stay cheap. */
#include "http/sse_tail.h"

#include "base/err.h"

#include <stdlib.h>
#include <string.h>

/* A wake storm needs the frames of one commit; these bound what an active
 * session keeps beyond that (a commit of a few hundred events). */
#define SSE_TAIL_MAX_FRAMES 512
#define SSE_TAIL_MAX_BYTES (512 * 1024)

struct sse_tail_frame {
    size_t offset; /* into bytes */
    size_t len;
    int turn_end;
};

struct sse_tail {
    uint64_t first;                /* sequence of frames[0] */
    size_t count, cap;
    struct sse_tail_frame *frames; /* grown on demand: an idle tail holds nothing */
    struct buf bytes;
};

sse_tail_t *sse_tail_new(void)
{
    sse_tail_t *t = calloc(1, sizeof *t);
    if (t)
        buf_init(&t->bytes);
    return t;
}

void sse_tail_free(sse_tail_t *t)
{
    if (!t)
        return;
    buf_free(&t->bytes);
    free(t->frames);
    free(t);
}

void sse_tail_clear(sse_tail_t *t)
{
    t->count = 0;
    t->cap = 0;
    t->first = 0;
    free(t->frames); /* give the memory back, not only the frames */
    t->frames = NULL;
    buf_free(&t->bytes);
}

size_t sse_tail_count(const sse_tail_t *t)
{
    return t->count;
}

uint64_t sse_tail_last(const sse_tail_t *t)
{
    return t->count ? t->first + t->count - 1 : 0;
}

/* Drops the oldest `n` frames. */
static void sse_tail_drop(sse_tail_t *t, size_t n)
{
    if (n >= t->count) {
        t->count = 0;
        t->first = 0;
        buf_reset(&t->bytes);
        return;
    }
    size_t cut = t->frames[n].offset;
    buf_consume(&t->bytes, cut);
    memmove(t->frames, t->frames + n, (t->count - n) * sizeof t->frames[0]);
    t->count -= n;
    t->first += n;
    for (size_t i = 0; i < t->count; i++)
        t->frames[i].offset -= cut;
}

int sse_tail_offer(sse_tail_t *t, uint64_t sequence, int turn_end, const char *frame,
                   size_t len)
{
    uint64_t last = sse_tail_last(t);
    if (t->count && sequence <= last)
        return 0; /* kept already, or older than what streams need */
    if (t->count && sequence != last + 1)
        sse_tail_drop(t, t->count); /* a gap: the newer run wins */
    if (len > SSE_TAIL_MAX_BYTES)
        return 0; /* one huge event: its readers read it themselves */
    if (t->count == SSE_TAIL_MAX_FRAMES)
        sse_tail_drop(t, t->count / 2);
    while (t->count && t->bytes.len + len > SSE_TAIL_MAX_BYTES)
        sse_tail_drop(t, t->count > 1 ? t->count / 2 : 1);
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct sse_tail_frame *grown = realloc(t->frames, cap * sizeof *grown);
        if (!grown) {
            sse_tail_drop(t, t->count);
            return ERR_NOMEM;
        }
        t->frames = grown;
        t->cap = cap;
    }
    size_t offset = t->bytes.len;
    if (buf_append(&t->bytes, frame, len) != 0) {
        sse_tail_drop(t, t->count);
        return ERR_NOMEM;
    }
    if (!t->count)
        t->first = sequence;
    t->frames[t->count++] = (struct sse_tail_frame){ offset, len, turn_end };
    return 0;
}

int sse_tail_copy(const sse_tail_t *t, uint64_t after, size_t max_frames, size_t max_bytes,
                  int stop_at_turn_end, struct buf *out, uint64_t *last, int *turn_ended)
{
    *turn_ended = 0;
    if (!t->count || after + 1 < t->first || after + 1 > sse_tail_last(t))
        return 0;
    size_t from = (size_t)(after + 1 - t->first), to = from, bytes = 0;
    while (to < t->count && to - from < max_frames && (to == from || bytes < max_bytes)) {
        bytes += t->frames[to].len;
        if (t->frames[to++].turn_end && stop_at_turn_end) {
            *turn_ended = 1;
            break;
        }
    }
    size_t start = t->frames[from].offset;
    if (buf_append(out, t->bytes.data + start, bytes) != 0) {
        *turn_ended = 0;
        return ERR_NOMEM;
    }
    *last = t->first + to - 1;
    return (int)(to - from);
}
