/* Server-Sent Events straight from the journal.
 *
 * A stream is a cursor: the last sequence it sent.  Each time
 * libmicrohttpd wants bytes, the stream reads the next committed events
 * after its cursor from the journal and frames them as
 *     id: <sequence>\ndata: <event json>\n\n
 * so a slow reader simply reads further behind: nothing is buffered on its
 * behalf and nothing can be dropped.  With nothing to send, the stream parks
 * itself on the journal and suspends its connection (no CPU while idle); the
 * commit that advances its session resumes it.  A hub thread resumes parked
 * streams that have been silent for a heartbeat interval so they can send a
 * comment, which keeps proxies from closing them and reveals dead clients.
 *
 * One commit wakes every stream of its session at once.  So that a thousand
 * subscribers do not run a thousand identical queries, the streams of a
 * session share its newest frames (sse_tail.h): the first stream to read new
 * events offers their frames, the others copy them.  A stream that is not
 * behind the committed watermark parks without reading at all.  The cache
 * only ever saves a read: a stream that misses it reads the journal as
 * before, and the heartbeat thread empties the caches of quiet sessions.
 *
 * Lock order: hub lock, then a session's shared lock or the journal's watch
 * lock (inside journal_park and journal_unpark), never both.  The journal
 * calls park/wake under its watch lock.
 */
#include "http/routes.h"

#include "events/event.h"
#include "base/hmap.h"
#include "http/parse.h"
#include "http/sse_tail.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* MHD allocates a buffer of this size per open stream: an idle subscriber
 * pays for it in RSS (docs/benchmarks.md, "Memory").  A journal read of
 * SSE_EVENTS_PER_READ events is handed out over several blocks. */
#define SSE_BLOCK_SIZE (4 * 1024)
#define SSE_EVENTS_PER_READ 64
/* A session whose cache nobody used for this long gets it emptied. */
#define SSE_SHARED_IDLE_MS 2000

/* What the streams of one session share.  refs, and the entry in the hub's
 * map, under the hub lock; the rest under `lock`. */
struct sse_shared {
    int refs;
    pthread_mutex_t lock;
    sse_tail_t *tail;          /* NULL until the first offer */
    long long last_used_ms;
};

struct sse_hub {
    journal_t *journal;
    unsigned heartbeat_ms;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct sse_stream *streams;
    hmap_t *shared;            /* session_id -> struct sse_shared */
    atomic_int closing;
    int stop;
    pthread_t thread;
};

/* One journal read of a stream: where each frame ends in the stream's
 * buffer, to offer them to the other streams.  On the reading thread's
 * stack, so idle streams do not pay for it. */
struct sse_reading {
    struct sse_stream *s;
    size_t n;
    struct {
        uint64_t sequence;
        size_t end;
        int turn_end;
    } frames[SSE_EVENTS_PER_READ];
};

struct sse_stream {
    struct journal_waiter waiter; /* first: park/wake get this pointer */
    struct sse_hub *hub;
    struct sse_shared *shared;
    struct MHD_Connection *conn;
    char *session_id;
    uint64_t last_sent;
    int include_raw;
    int turn_mode; /* end after the first turn-ending event */
    int done;
    struct buf out;
    size_t out_pos;
    atomic_int heartbeat_due;
    atomic_llong last_write_ms;
    struct sse_stream *next;
    struct sse_stream *prev;
};

static long long sse_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sse_park(struct journal_waiter *w)
{
    MHD_suspend_connection(((struct sse_stream *)w)->conn);
}

static void sse_wake(struct journal_waiter *w)
{
    MHD_resume_connection(((struct sse_stream *)w)->conn);
}

static int sse_frame(void *arg, uint64_t sequence, const char *json, size_t json_len,
                     const char *raw, size_t raw_len, int turn_end)
{
    struct sse_reading *rd = arg;
    struct sse_stream *s = rd->s;
    int rc = buf_printf(&s->out, "id: %llu\ndata: ", (unsigned long long)sequence);
    if (rc == 0 && s->include_raw && raw && json_len >= EVENT_RAW_SUFFIX_LEN) {
        rc = buf_append(&s->out, json, json_len - EVENT_RAW_SUFFIX_LEN);
        if (rc == 0)
            rc = buf_append(&s->out, raw, raw_len);
        if (rc == 0)
            rc = buf_append(&s->out, "}", 1);
    } else if (rc == 0) {
        rc = buf_append(&s->out, json, json_len);
    }
    if (rc == 0)
        rc = buf_append(&s->out, "\n\n", 2);
    if (rc)
        return rc;
    if (rd->n < SSE_EVENTS_PER_READ) {
        rd->frames[rd->n].sequence = sequence;
        rd->frames[rd->n].end = s->out.len;
        rd->frames[rd->n++].turn_end = turn_end != 0;
    }
    s->last_sent = sequence;
    if (s->turn_mode && turn_end) {
        s->done = 1;
        return 1; /* stop reading: the turn is over */
    }
    return 0;
}

/* Copies the session's shared frames after the cursor into `out`.  1 if it
 * did, 0 if they are not there, -1 when memory ran out. */
static int sse_copy_shared(struct sse_stream *s)
{
    struct sse_shared *sh = s->shared;
    uint64_t last = 0;
    int turn_ended = 0, n = 0;
    pthread_mutex_lock(&sh->lock);
    if (sh->tail) {
        n = sse_tail_copy(sh->tail, s->last_sent, SSE_EVENTS_PER_READ, SSE_BLOCK_SIZE,
                          s->turn_mode, &s->out, &last, &turn_ended);
        if (n > 0)
            sh->last_used_ms = sse_now_ms();
    }
    pthread_mutex_unlock(&sh->lock);
    if (n < 0)
        return -1;
    if (n == 0)
        return 0;
    s->last_sent = last;
    if (turn_ended)
        s->done = 1;
    return 1;
}

/* Offers the frames of the journal read just done to the other streams. */
static void sse_offer_read(const struct sse_reading *rd)
{
    const struct sse_stream *s = rd->s;
    struct sse_shared *sh = s->shared;
    pthread_mutex_lock(&sh->lock);
    if (!sh->tail)
        sh->tail = sse_tail_new();
    size_t start = 0;
    for (size_t i = 0; sh->tail && i < rd->n; i++) {
        /* Out of memory only empties the cache, which readers survive. */
        if (sse_tail_offer(sh->tail, rd->frames[i].sequence, rd->frames[i].turn_end,
                           s->out.data + start, rd->frames[i].end - start) != 0)
            break;
        start = rd->frames[i].end;
    }
    sh->last_used_ms = sse_now_ms();
    pthread_mutex_unlock(&sh->lock);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos; /* the cursor is the last sequence sent, not a byte offset */
    struct sse_stream *s = cls;
    struct sse_hub *hub = s->hub;
    for (;;) {
        if (s->out_pos < s->out.len) {
            size_t n = s->out.len - s->out_pos;
            if (n > max)
                n = max;
            memcpy(out, s->out.data + s->out_pos, n);
            s->out_pos += n;
            atomic_store(&s->last_write_ms, sse_now_ms());
            return (ssize_t)n;
        }
        buf_reset(&s->out);
        s->out_pos = 0;
        if (s->done || atomic_load(&hub->closing))
            return MHD_CONTENT_READER_END_OF_STREAM;

        if (!s->include_raw) {
            int copied = sse_copy_shared(s);
            if (copied < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            if (copied)
                continue;
        }
        /* The watermark moves only after a commit, so a stream at it has
         * nothing to read; journal_park() below re-checks under its lock. */
        if (journal_last_sequence(hub->journal, s->session_id) > s->last_sent) {
            struct err err;
            journal_reader_t *r = journal_reader_for_thread(hub->journal, &err);
            if (!r) {
                fprintf(stderr, "sandbox-journal: sse: %s\n", err.msg);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            struct sse_reading rd = { .s = s, .n = 0 };
            int rc = journal_read_events(r, s->session_id, s->last_sent, SSE_EVENTS_PER_READ,
                                         sse_frame, &rd, NULL, &err);
            if (rc < 0) {
                fprintf(stderr, "sandbox-journal: sse: %s\n", err.msg);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            if (rd.n && !s->include_raw)
                sse_offer_read(&rd);
            if (s->out.len)
                continue;
        }
        if (atomic_exchange(&s->heartbeat_due, 0)) {
            if (buf_puts(&s->out, ": heartbeat\n\n") != 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        pthread_mutex_lock(&hub->lock);
        int ready = atomic_load(&hub->closing)
                        ? -1
                        : journal_park(hub->journal, s->session_id, s->last_sent, &s->waiter);
        pthread_mutex_unlock(&hub->lock);
        if (ready == 1)
            continue; /* committed meanwhile */
        if (ready < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        return 0; /* suspended until a commit or a heartbeat resumes us */
    }
}

/* The shared part of `s`'s session, made on its first stream.  Hub locked.
 * 0 or ERR_NOMEM. */
static int sse_shared_acquire(struct sse_hub *hub, struct sse_stream *s)
{
    struct sse_shared *sh = hmap_get(hub->shared, s->session_id);
    if (!sh) {
        sh = calloc(1, sizeof *sh);
        if (!sh)
            return ERR_NOMEM;
        if (pthread_mutex_init(&sh->lock, NULL) != 0) {
            free(sh);
            return ERR_NOMEM;
        }
        if (hmap_put(hub->shared, s->session_id, sh) != 0) {
            pthread_mutex_destroy(&sh->lock);
            free(sh);
            return ERR_NOMEM;
        }
    }
    sh->refs++;
    s->shared = sh;
    return 0;
}

static void sse_shared_destroy(struct sse_shared *sh)
{
    sse_tail_free(sh->tail);
    pthread_mutex_destroy(&sh->lock);
    free(sh);
}

/* Hub locked. */
static void sse_shared_release(struct sse_hub *hub, struct sse_stream *s)
{
    struct sse_shared *sh = s->shared;
    if (!sh || --sh->refs > 0)
        return;
    hmap_remove(hub->shared, s->session_id);
    sse_shared_destroy(sh);
}

/* Heartbeat thread, hub locked: empties the caches nobody used lately. */
static void sse_shared_expire(const char *key, void *value, void *arg)
{
    (void)key; /* the cache is found through its value */
    struct sse_shared *sh = value;
    long long now = *(const long long *)arg;
    pthread_mutex_lock(&sh->lock);
    if (sh->tail && sse_tail_count(sh->tail) && now - sh->last_used_ms > SSE_SHARED_IDLE_MS)
        sse_tail_clear(sh->tail);
    pthread_mutex_unlock(&sh->lock);
}

static void sse_free(void *cls)
{
    struct sse_stream *s = cls;
    struct sse_hub *hub = s->hub;
    pthread_mutex_lock(&hub->lock);
    journal_unpark(hub->journal, &s->waiter);
    if (s->prev)
        s->prev->next = s->next;
    else
        hub->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    sse_shared_release(hub, s);
    pthread_mutex_unlock(&hub->lock);
    buf_free(&s->out);
    free(s->session_id);
    free(s);
}

static void *sse_heartbeat_main(void *arg)
{
    struct sse_hub *hub = arg;
    unsigned tick = hub->heartbeat_ms < 1000 ? hub->heartbeat_ms : 1000;
    pthread_mutex_lock(&hub->lock);
    while (!hub->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(tick % 1000) * 1000000L;
        until.tv_sec += tick / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&hub->cond, &hub->lock, &until);
        long long now = sse_now_ms();
        hmap_foreach(hub->shared, sse_shared_expire, &now);
        for (struct sse_stream *s = hub->streams; s && !hub->stop; s = s->next) {
            if (now - atomic_load(&s->last_write_ms) < (long long)hub->heartbeat_ms)
                continue;
            if (journal_unpark(hub->journal, &s->waiter)) {
                atomic_store(&s->heartbeat_due, 1);
                atomic_store(&s->last_write_ms, now); /* one heartbeat per interval */
                MHD_resume_connection(s->conn);
            }
        }
    }
    pthread_mutex_unlock(&hub->lock);
    return NULL;
}

int sse_hub_start(journal_t *journal, unsigned heartbeat_ms, struct sse_hub **out,
                  struct err *err)
{
    struct sse_hub *hub = calloc(1, sizeof *hub);
    if (!hub)
        return err_set(err, ERR_NOMEM, "out of memory");
    hub->journal = journal;
    hub->heartbeat_ms = heartbeat_ms ? heartbeat_ms : 15000;
    hub->shared = hmap_new();
    if (!hub->shared) {
        free(hub);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    if (pthread_mutex_init(&hub->lock, NULL) != 0) {
        hmap_free(hub->shared);
        free(hub);
        return err_set(err, ERR_INTERNAL, "pthread_mutex_init failed");
    }
    if (pthread_cond_init(&hub->cond, NULL) != 0) {
        pthread_mutex_destroy(&hub->lock);
        hmap_free(hub->shared);
        free(hub);
        return err_set(err, ERR_INTERNAL, "pthread_cond_init failed");
    }
    if (pthread_create(&hub->thread, NULL, sse_heartbeat_main, hub) != 0) {
        pthread_cond_destroy(&hub->cond);
        pthread_mutex_destroy(&hub->lock);
        hmap_free(hub->shared);
        free(hub);
        return err_set(err, ERR_INTERNAL, "could not start the heartbeat thread");
    }
    *out = hub;
    return 0;
}

void sse_hub_close_streams(struct sse_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    atomic_store(&hub->closing, 1);
    for (struct sse_stream *s = hub->streams; s; s = s->next)
        if (journal_unpark(hub->journal, &s->waiter))
            MHD_resume_connection(s->conn);
    pthread_mutex_unlock(&hub->lock);
}

void sse_hub_stop(struct sse_hub *hub)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->lock);
    hub->stop = 1;
    pthread_cond_signal(&hub->cond);
    pthread_mutex_unlock(&hub->lock);
    pthread_join(hub->thread, NULL);
    pthread_cond_destroy(&hub->cond);
    pthread_mutex_destroy(&hub->lock);
    /* Every stream is freed by now, and with it every shared part. */
    hmap_free(hub->shared);
    free(hub);
}

/* Answers with an event stream of `session_id` after `after`. */
static enum MHD_Result sse_respond(struct http_request *req, const char *session_id,
                                   uint64_t after, int include_raw, int turn_mode)
{
    struct sse_hub *hub = req->server->sse;
    struct sse_stream *s = calloc(1, sizeof *s);
    if (!s || !(s->session_id = strdup(session_id))) {
        free(s);
        return MHD_NO;
    }
    s->waiter.park = sse_park;
    s->waiter.wake = sse_wake;
    s->hub = hub;
    s->conn = req->conn;
    s->last_sent = after;
    s->include_raw = include_raw;
    s->turn_mode = turn_mode;
    buf_init(&s->out);
    atomic_store(&s->last_write_ms, sse_now_ms());
    /* A comment first, so clients see the response before the first event. */
    if (buf_puts(&s->out, ": connected\n\n") != 0) {
        free(s->session_id);
        free(s);
        return MHD_NO;
    }
    pthread_mutex_lock(&hub->lock);
    if (sse_shared_acquire(hub, s) != 0) {
        pthread_mutex_unlock(&hub->lock);
        buf_free(&s->out);
        free(s->session_id);
        free(s);
        return MHD_NO;
    }
    s->next = hub->streams;
    if (hub->streams)
        hub->streams->prev = s;
    hub->streams = s;
    pthread_mutex_unlock(&hub->lock);

    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK_SIZE, sse_read, s, sse_free);
    if (!resp) {
        sse_free(s);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream") !=
            MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES ||
        MHD_add_response_header(resp, "X-Accel-Buffering", "no") != MHD_YES) {
        MHD_destroy_response(resp); /* calls sse_free */
        return MHD_NO;
    }
    return http_queue(req, MHD_HTTP_OK, resp);
}

/* Last-Event-ID (what a reconnecting EventSource sends) wins over offset. */
static int sse_start_after(struct http_request *req, uint64_t *after, struct err *err)
{
    const char *last = http_header(req, "Last-Event-ID");
    if (!last) {
        int present;
        return http_query_u64(req, "offset", after, &present, err);
    }
    return parse_u64("Last-Event-ID", last, after, err);
}

enum MHD_Result routes_session_events_sse(struct http_request *req)
{
    struct err err;
    uint64_t after = 0;
    int include_raw = 0;
    int rc = sse_start_after(req, &after, &err);
    if (rc == 0)
        rc = http_query_bool(req, "include_raw", "includeRaw", &include_raw, &err);
    if (rc == 0 && !sessions_exists(req->server->sessions, req->params[0]))
        rc = err_set_subject(&err, ERR_NOT_FOUND, req->params[0], "session not found: %s",
                             req->params[0]);
    if (rc)
        return http_respond_error(req, &err);
    return sse_respond(req, req->params[0], after, include_raw, 0);
}

enum MHD_Result routes_session_message_stream(struct http_request *req)
{
    struct err err;
    json_t *body = NULL;
    const char *message = NULL;
    int include_raw = 0;
    uint64_t before = 0;
    int rc = http_query_bool(req, "include_raw", "includeRaw", &include_raw, &err);
    if (rc == 0)
        rc = routes_parse_message(req, &body, &message, &err);
    if (rc == 0)
        rc = sessions_send_message(req->server->sessions, req->params[0], message, &before,
                                   &err);
    json_decref(body);
    if (rc)
        return http_respond_error(req, &err);
    return sse_respond(req, req->params[0], before, include_raw, 1);
}
