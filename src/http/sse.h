/* The one Server-Sent Events writer, used by GET /events/sse, POST
 * /messages/stream and a process's GET /logs?follow=true: a stream is a cursor into the journal, read as the
 * socket drains (sse.c has the whole story).  The hub tracks the open
 * streams for heartbeats, shutdown and disconnected clients. */
#ifndef SJ_SSE_H
#define SJ_SSE_H

#include "base/err.h"
#include "http/request.h"
#include "journal/journal.h"

#include <stdint.h>

/* Event bytes a stream holds for its socket at most, besides one event of
 * any size: what a client that stops reading can pin in the server. */
#define SSE_BUDGET_BYTES (256 * 1024)

/* new: the hub, stopped and freed with sse_hub_stop().  Starts its
 * heartbeat thread (a comment every `heartbeat_ms` on a quiet stream; 0:
 * 15 s). */
int sse_hub_start(journal_t *journal, unsigned heartbeat_ms, struct sse_hub **out,
                  struct err *err);
/* Ends every stream (they see end-of-stream at their next read).  Any thread. */
void sse_hub_close_streams(struct sse_hub *hub);
/* After the listener stopped, so no stream is left.  Frees `hub`. */
void sse_hub_stop(struct sse_hub *hub);

/* Answers `req` with the events of `session_id` after sequence `after`, live:
 * the response stays open until the client leaves or the server stops, or,
 * with `turn_mode`, ends after the first turn-ending event.  `include_raw`
 * splices each event's native payload in.  A HEAD request gets the headers
 * only.  Thread: the request's HTTP worker. */
enum MHD_Result sse_respond(struct http_request *req, const char *session_id, uint64_t after,
                            int include_raw, int turn_mode);

/* A stream of something else the journal holds (a process's log,
 * routes_processes.c), written by this same writer: the source frames its
 * records, the hub does the rest (the socket's pace, parking until a
 * commit, heartbeats, hang-ups, shutdown). */
struct sse_source {
    /* Appends to `out` the complete SSE frames of the records after *cursor,
     * about `budget` bytes of them (one at least), and moves *cursor past
     * them; sets *done once nothing will ever follow.  0 or an error code.
     * Thread: the stream's HTTP worker, with its own reader. */
    int (*read)(void *arg, journal_reader_t *r, uint64_t *cursor, size_t budget,
                struct buf *out, int *done, struct err *err);
    void (*free)(void *arg); /* frees arg when the stream ends */
    void *arg;
};

/* Answers `req` with the frames of `src` after `after`, live, parked on
 * any commit while there is nothing new.  Takes src->arg (freed through
 * src->free, also on failure).  Thread: the request's HTTP worker. */
enum MHD_Result sse_respond_source(struct http_request *req, const struct sse_source *src,
                                   uint64_t after);

/* GET /v1/debug/sse: the hub's counters as JSON, for tests.  http.c serves
 * it only when SJ_TEST_DEBUG_ROUTES is set in the environment. */
extern const struct http_route sse_debug_table[];

#endif
