/* The newest SSE frames of one session, shared by its subscribers.
 *
 * When a commit wakes a thousand streams of one session, the first one reads
 * the new events from the journal and offers their frames here; the others
 * copy them instead of running the same query.  A frame is the exact bytes
 * of one event on the wire ("id: N\ndata: {...}\n\n", without raw payload).
 * Committed events never change, so a cached frame is never stale: the cache
 * only decides whether a stream can skip a read, never what it sends.
 *
 * Not thread-safe: the owner guards each tail with its own lock. */
#ifndef SJ_SSE_TAIL_H
#define SJ_SSE_TAIL_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sse_tail sse_tail_t;

/* new: free with sse_tail_free().  NULL on allocation failure. */
sse_tail_t *sse_tail_new(void);
void sse_tail_free(sse_tail_t *t);

/* Offers the frame of event `sequence`.  It is kept when it follows the last
 * kept frame, or starts the cache over when it is newer than that; an older
 * or already kept one is ignored.  The oldest frames go when the cache holds
 * more than SSE_TAIL_MAX_FRAMES or SSE_TAIL_MAX_BYTES.  0 or ERR_NOMEM (the
 * cache is then empty, which is always correct). */
int sse_tail_offer(sse_tail_t *t, uint64_t sequence, int turn_end, const char *frame,
                   size_t len);

/* Appends to `out` the kept frames after event `after`, in order: at most
 * `max_frames`, and no more once `out` holds `max_bytes` (one frame at
 * least), stopping after a turn-ending frame when `stop_at_turn_end`.
 * *last is the sequence of the last frame copied and *turn_ended whether it
 * ended a turn.  Returns the number of frames copied: 0 when the frame of
 * after + 1 is not kept.  ERR_NOMEM leaves `out` as it was. */
int sse_tail_copy(const sse_tail_t *t, uint64_t after, size_t max_frames, size_t max_bytes,
                  int stop_at_turn_end, struct buf *out, uint64_t *last, int *turn_ended);

/* Forgets every frame (an idle session's cache costs nothing). */
void sse_tail_clear(sse_tail_t *t);

/* How many frames are kept, and the sequence of the last one (0: none). */
size_t sse_tail_count(const sse_tail_t *t);
uint64_t sse_tail_last(const sse_tail_t *t);

#endif
