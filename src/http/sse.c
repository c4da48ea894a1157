/* Server-Sent Events straight from the journal.
 *
 * A stream is a cursor: the last sequence it sent.  Each time
 * libmicrohttpd wants bytes, the stream reads the next committed events
 * after its cursor from the journal and frames them as
 *     id: <sequence>\ndata: <event json>\n\n
 * so a slow reader simply reads further behind: nothing can be dropped.
 * libmicrohttpd asks for bytes only once the previous ones are in the
 * socket, and a stream reads at most SSE_BUDGET_BYTES of events at a time
 * (one event of any size at least), so a client that stops reading pins
 * that budget and no more, whatever the event size.  Drained buffers are
 * freed: an idle stream holds no frame.  With nothing to send, the stream
 * parks itself on the journal and suspends its connection (no CPU while
 * idle); the commit that advances its session resumes it.
 *
 * The hub thread does two things for parked streams, whose sockets
 * libmicrohttpd does not watch while they are suspended: every heartbeat
 * interval it resumes the silent ones so they send a comment (which keeps
 * proxies from closing them), and it watches every stream's socket for the
 * client's hang-up (EPOLLRDHUP), ending that stream at once so its
 * descriptor and memory go back without waiting for a heartbeat.  An event
 * stream's client has nothing more to send, so a half-close is a goodbye.
 *
 * One commit wakes every stream of its session at once.  So that a thousand
 * subscribers do not run a thousand identical queries, the streams of a
 * session share its newest frames (sse_tail.h): the first stream to read new
 * events offers their frames, the others copy them.  A stream that is not
 * behind the committed watermark parks without reading at all.  The cache
 * only ever saves a read: a stream that misses it reads the journal as
 * before, and the heartbeat thread empties the caches of quiet sessions.
 * The streams a commit wakes run on every HTTP worker at once, so they all
 * miss the cache together: one of them claims the read and the others wait
 * for its frames (once; a stream that still misses reads alone), or a
 * commit would cost a query per worker instead of one.
 *
 * Pushing.  Resuming a parked stream costs more than the frames it then
 * sends: libmicrohttpd signals the worker (a write), the worker wakes, calls
 * sse_read, sends, calls it again and suspends the connection, once per
 * stream per commit.  So a stream that parks caught up, with nothing of its
 * own buffered, is "pushable": the commit that wakes it queues it for the
 * hub thread instead, which frames the new events once per session (as an
 * HTTP/1.1 chunk, or raw for HTTP/1.0, exactly as libmicrohttpd would),
 * sends them to the socket itself and parks the stream again, its
 * connection suspended throughout.  Only a stream whose socket cannot take
 * the frames, or that ends, goes back to libmicrohttpd: on EAGAIN at once
 * (nothing was written), on a partial send once the hub has written the
 * rest of that chunk (it watches the socket for EPOLLOUT meanwhile), so the
 * body stays well framed.  libmicrohttpd calls sse_read only with its own
 * buffer sent, and never touches a suspended connection, so the two writers
 * never interleave.  A queued stream is unparked, so journal_unpark() finds
 * nothing and leaves it to the hub, which hands it back when it ends.
 *
 * Lock order: hub lock, then a session's shared lock or the journal's watch
 * lock (inside journal_park and journal_unpark), never both.  The journal
 * calls park/wake under its watch lock; the push queue's lock is innermost.
 */
#include "http/sse.h"

#include "base/hmap.h"
#include "events/event.h"
#include "http/sse_tail.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* The most a stream copies from its session's shared frames at a time. */
#define SSE_COPY_BYTES (4 * 1024)
/* The most one push writes (one event of any size at least). */
#define SSE_PUSH_BYTES (32 * 1024)
/* Room before a push's frames for its chunk-size line. */
#define SSE_CHUNK_HEAD 16
/* The block libmicrohttpd allocates (and zeroes) with each response, which
 * an idle subscriber pays for in RSS (docs/benchmarks.md, "Memory per
 * connection").  Only HTTP/1.0 streams are written through it, in pieces
 * of its size; HTTP/1.1 ones are chunked straight into the connection's
 * pool and never touch it. */
#define SSE_BLOCK_HTTP10 1024
#define SSE_BLOCK_HTTP11 64
#define SSE_EVENTS_PER_READ 64
/* A session whose cache nobody used for this long gets it emptied. */
#define SSE_SHARED_IDLE_MS 2000
/* Hang-ups the hub thread takes from epoll at a time. */
#define SSE_EPOLL_BATCH 64
/* The epoll key of the hub's own wake-up descriptor. */
#define SSE_WAKE_KEY UINT64_MAX
#define SSE_NO_SLOT UINT32_MAX

/* What the streams of one session share.  refs, and the entry in the hub's
 * map, under the hub lock; the rest under `lock`. */
struct sse_shared {
    int refs;
    pthread_mutex_t lock;
    sse_tail_t *tail;          /* NULL until the first offer */
    long long last_used_ms;
    int filling;               /* a stream is reading new frames for the cache */
    pthread_cond_t filled;     /* broadcast when that read is offered */
};

/* A stream's place in the hub's epoll set.  epoll hands back a key, not a
 * pointer: a hang-up reported just before its stream is freed must find
 * nothing rather than freed memory, so the key is a slot and the slot's
 * generation, checked under the hub lock. */
struct sse_slot {
    struct sse_stream *s;      /* NULL: free */
    uint32_t gen;
    uint32_t next_free;
};

struct sse_hub {
    journal_t *journal;
    unsigned heartbeat_ms;
    pthread_mutex_t lock;
    struct sse_stream *streams;
    hmap_t *shared;            /* session_id -> struct sse_shared */
    atomic_int closing;
    int stop;
    int epoll_fd;              /* the streams' sockets, for hang-ups */
    int wake_fd;               /* an eventfd in that set: stop, or streams queued */
    struct sse_slot *slots;
    uint32_t n_slots, cap_slots, free_slot;
    pthread_t thread;
    /* Counters for GET /v1/debug/sse (tests). */
    size_t n_streams;          /* under the lock */
    atomic_size_t peak_buffered;
    atomic_ullong reads;
    atomic_ullong hangups;
    /* The push queue (see the top): streams a commit woke that the hub
     * thread writes to itself.  Under queue_lock, innermost of all. */
    pthread_mutex_t queue_lock;
    struct sse_stream *queue_head, *queue_tail;
    size_t queue_len;
    /* The hub thread's last framed push, shared by the streams one commit
     * woke: the frames of `shared` after `after`, at wire + SSE_CHUNK_HEAD
     * (frames_len bytes) with room before them for the chunk-size line and
     * "\r\n" after them.  Valid while `shared` is not NULL; dropped when
     * that session's shared part goes. */
    struct {
        const struct sse_shared *shared;
        uint64_t after, last;
        size_t frames_len;
        struct buf wire;
    } push;
    int push_off;              /* SJ_TEST_SSE_NO_PUSH: every stream goes through MHD */
    long long stall_ms;        /* HTTP_IDLE_TIMEOUT_S; SJ_TEST_SSE_STALL_MS in tests */
    atomic_ullong pushes;
    atomic_ullong partial_pushes; /* the socket took part of a push */
    /* SJ_TEST_SSE_READ_DELAY_MS: each journal read of a session's events
     * first sleeps this long, so a test can see what a slow read does to
     * the streams woken with it.  0 outside tests. */
    unsigned test_read_delay_ms;
};

/* One journal read: the frames go to `out`, and where each one ends is
 * noted to offer them to the session's other streams.  On the reading
 * thread's stack, so idle streams do not pay for it. */
struct sse_reading {
    struct buf *out;
    size_t base;      /* where the first frame starts in out */
    int include_raw;
    int turn_mode;    /* stop after a turn-ending event */
    uint64_t last;    /* the last event framed, 0: none */
    int turn_ended;
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
    char *session_id;     /* NULL for a source stream */
    struct sse_source src; /* read NULL: a session's events */
    uint64_t last_sent;
    int include_raw;
    int turn_mode; /* end after the first turn-ending event */
    int done;
    int filling;   /* this stream claimed its session's cache fill */
    int chunked;   /* HTTP/1.1: the body goes out in chunks */
    int pushable;  /* parked caught up: its wake queues it for the hub */
    int hub_parks; /* the hub is parking it, its connection already suspended */
    int queued;    /* in the push queue (queue_lock) */
    int pushing;   /* out holds the rest of a pushed chunk, written by the hub */
    int cut;       /* ended in the middle of a pushed chunk: no clean end */
    struct sse_stream *queue_next;
    int fd;        /* the connection's socket, in the hub's epoll set; -1: not */
    uint32_t slot;
    struct buf out;
    size_t out_pos;
    atomic_int hung_up; /* the client is gone: end now */
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

static void sse_sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void sse_park(struct journal_waiter *w)
{
    struct sse_stream *s = (struct sse_stream *)w;
    if (!s->hub_parks)
        MHD_suspend_connection(s->conn);
}

/* Tells the hub thread there is work (a stop, or queued streams). */
static void sse_poke(struct sse_hub *hub)
{
    uint64_t one = 1;
    /* An eventfd counter does not fill up from one write per wake. */
    if (write(hub->wake_fd, &one, sizeof one) != (ssize_t)sizeof one)
        fprintf(stderr, "sandbox-journal: sse: wake: %s\n", strerror(errno));
}

/* Queues `s` for a push.  1 if the queue was empty (the hub may be asleep). */
static int sse_queue_push(struct sse_hub *hub, struct sse_stream *s)
{
    pthread_mutex_lock(&hub->queue_lock);
    int first = hub->queue_head == NULL;
    s->queued = 1;
    s->queue_next = NULL;
    if (hub->queue_tail)
        hub->queue_tail->queue_next = s;
    else
        hub->queue_head = s;
    hub->queue_tail = s;
    hub->queue_len++;
    pthread_mutex_unlock(&hub->queue_lock);
    return first;
}

/* Under the journal's watch lock, from the committing thread. */
static void sse_wake(struct journal_waiter *w)
{
    struct sse_stream *s = (struct sse_stream *)w;
    struct sse_hub *hub = s->hub;
    if (!s->pushable) {
        MHD_resume_connection(s->conn);
        return;
    }
    if (sse_queue_push(hub, s))
        sse_poke(hub);
}

static int sse_frame(void *arg, uint64_t sequence, const char *json, size_t json_len,
                     const char *raw, size_t raw_len, int turn_end)
{
    struct sse_reading *rd = arg;
    struct buf *out = rd->out;
    int rc = buf_printf(out, "id: %llu\ndata: ", (unsigned long long)sequence);
    if (rc == 0 && rd->include_raw && raw && json_len >= EVENT_RAW_SUFFIX_LEN) {
        rc = buf_append(out, json, json_len - EVENT_RAW_SUFFIX_LEN);
        if (rc == 0)
            rc = buf_append(out, raw, raw_len);
        if (rc == 0)
            rc = buf_append(out, "}", 1);
    } else if (rc == 0) {
        rc = buf_append(out, json, json_len);
    }
    if (rc == 0)
        rc = buf_append(out, "\n\n", 2);
    if (rc)
        return rc;
    if (rd->n < SSE_EVENTS_PER_READ) {
        rd->frames[rd->n].sequence = sequence;
        rd->frames[rd->n].end = out->len;
        rd->frames[rd->n++].turn_end = turn_end != 0;
    }
    rd->last = sequence;
    if (rd->turn_mode && turn_end) {
        rd->turn_ended = 1;
        return 1; /* stop reading: the turn is over */
    }
    return 0;
}

/* Reads the events of `session_id` after `after` into rd->out as frames.
 * 0 or -1 with `err` set. */
static int sse_read_frames(struct sse_hub *hub, journal_reader_t *r, const char *session_id,
                           uint64_t after, size_t budget, struct sse_reading *rd,
                           struct err *err)
{
    if (hub->test_read_delay_ms)
        sse_sleep_ms(hub->test_read_delay_ms);
    rd->base = rd->out->len;
    int rc = journal_read_events_budget(r, session_id, after, SSE_EVENTS_PER_READ, budget,
                                        sse_frame, rd, NULL, err);
    if (rc < 0)
        return -1;
    atomic_fetch_add(&hub->reads, 1);
    return 0;
}

/* Copies the session's shared frames after the cursor into `out`.  1 if it
 * did, 0 if they are not there, -1 when memory ran out.  On a miss while
 * another stream fills the cache, waits for its frames and tries once more;
 * a miss with nobody filling claims the fill (s->filling), which the stream
 * gives back with sse_fill_done() after its journal read. */
static int sse_copy_shared(struct sse_stream *s)
{
    struct sse_shared *sh = s->shared;
    uint64_t last = 0;
    int turn_ended = 0, n = 0, waited = 0;
    pthread_mutex_lock(&sh->lock);
    for (;;) {
        if (sh->tail) {
            n = sse_tail_copy(sh->tail, s->last_sent, SSE_EVENTS_PER_READ, SSE_COPY_BYTES,
                              s->turn_mode, &s->out, &last, &turn_ended);
            if (n > 0)
                sh->last_used_ms = sse_now_ms();
        }
        if (n != 0 || waited)
            break;
        if (!sh->filling) {
            sh->filling = s->filling = 1;
            break;
        }
        /* The filler only reads the journal, which never waits on a stream. */
        while (sh->filling)
            pthread_cond_wait(&sh->filled, &sh->lock);
        waited = 1;
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

/* Offers the frames of a journal read to the session's streams.  sh locked. */
static void sse_offer(struct sse_shared *sh, const struct sse_reading *rd)
{
    if (!sh->tail)
        sh->tail = sse_tail_new();
    size_t start = rd->base;
    for (size_t i = 0; sh->tail && i < rd->n; i++) {
        /* Out of memory only empties the cache, which readers survive. */
        if (sse_tail_offer(sh->tail, rd->frames[i].sequence, rd->frames[i].turn_end,
                           rd->out->data + start, rd->frames[i].end - start) != 0)
            break;
        start = rd->frames[i].end;
    }
    sh->last_used_ms = sse_now_ms();
}

/* Offers the frames of the journal read just done (none: rd NULL) to the
 * other streams, and ends the fill `s` claimed, if it did. */
static void sse_fill_done(struct sse_stream *s, const struct sse_reading *rd)
{
    struct sse_shared *sh = s->shared;
    if (!s->filling && (!rd || rd->n == 0))
        return;
    pthread_mutex_lock(&sh->lock);
    if (s->filling) {
        s->filling = sh->filling = 0;
        pthread_cond_broadcast(&sh->filled);
    }
    if (rd && rd->n)
        sse_offer(sh, rd);
    pthread_mutex_unlock(&sh->lock);
}

/* Keeps the high-water mark of what one stream held for its socket. */
static void sse_note_buffered(struct sse_hub *hub, size_t n)
{
    size_t peak = atomic_load(&hub->peak_buffered);
    while (n > peak && !atomic_compare_exchange_weak(&hub->peak_buffered, &peak, n))
        ;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos; /* the cursor is the last sequence sent, not a byte offset */
    struct sse_stream *s = cls;
    struct sse_hub *hub = s->hub;
    for (;;) {
        /* The client is gone: end quietly (an error would be logged), and
         * libmicrohttpd then reads the end of the connection and closes it. */
        if (atomic_load(&s->hung_up))
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* Cut inside a pushed chunk (the server is closing): a clean end
         * would follow a broken chunk, so the connection is dropped. */
        if (s->cut)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (s->out_pos < s->out.len) {
            size_t n = s->out.len - s->out_pos;
            if (n > max)
                n = max;
            memcpy(out, s->out.data + s->out_pos, n);
            s->out_pos += n;
            atomic_store(&s->last_write_ms, sse_now_ms());
            return (ssize_t)n;
        }
        /* Drained: give the memory back, an idle stream holds none. */
        buf_free(&s->out);
        s->out_pos = 0;
        if (s->done || atomic_load(&hub->closing))
            return MHD_CONTENT_READER_END_OF_STREAM;

        if (s->src.read) {
            /* Read before looking, so a commit in between is not missed. */
            uint64_t seen = journal_wake_count(hub->journal);
            struct err err;
            journal_reader_t *r = journal_reader_for_thread(hub->journal, &err);
            int done = 0;
            if (!r || s->src.read(s->src.arg, r, &s->last_sent, SSE_BUDGET_BYTES, &s->out,
                                  &done, &err) != 0) {
                fprintf(stderr, "sandbox-journal: sse: %s\n", err.msg);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            atomic_fetch_add(&hub->reads, 1);
            sse_note_buffered(hub, s->out.len);
            if (done)
                s->done = 1;
            if (s->out.len || done)
                continue;
            if (atomic_exchange(&s->heartbeat_due, 0)) {
                if (buf_puts(&s->out, ": heartbeat\n\n") != 0)
                    return MHD_CONTENT_READER_END_WITH_ERROR;
                continue;
            }
            pthread_mutex_lock(&hub->lock);
            int ready = atomic_load(&hub->closing) || atomic_load(&s->hung_up)
                            ? -1
                            : journal_park_any(hub->journal, seen, &s->waiter);
            pthread_mutex_unlock(&hub->lock);
            if (ready == 1)
                continue;
            if (ready < 0)
                return MHD_CONTENT_READER_END_OF_STREAM;
            return 0;
        }
        if (!s->include_raw) {
            int copied = sse_copy_shared(s);
            if (copied < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            if (copied) {
                sse_note_buffered(hub, s->out.len);
                continue;
            }
        }
        /* The watermark moves only after a commit, so a stream at it has
         * nothing to read; journal_park() below re-checks under its lock. */
        if (journal_last_sequence(hub->journal, s->session_id) > s->last_sent) {
            struct err err;
            struct sse_reading rd = { .out = &s->out, .include_raw = s->include_raw,
                                      .turn_mode = s->turn_mode };
            journal_reader_t *r = journal_reader_for_thread(hub->journal, &err);
            int rc = r ? sse_read_frames(hub, r, s->session_id, s->last_sent, SSE_BUDGET_BYTES,
                                         &rd, &err)
                       : -1;
            /* Ends the claim on every path, or its waiters would wait on. */
            sse_fill_done(s, rc < 0 || s->include_raw ? NULL : &rd);
            if (rc < 0) {
                fprintf(stderr, "sandbox-journal: sse: %s\n", err.msg);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            if (rd.last)
                s->last_sent = rd.last;
            if (rd.turn_ended)
                s->done = 1;
            sse_note_buffered(hub, s->out.len);
            if (s->out.len)
                continue;
        }
        sse_fill_done(s, NULL);
        if (atomic_exchange(&s->heartbeat_due, 0)) {
            if (buf_puts(&s->out, ": heartbeat\n\n") != 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        pthread_mutex_lock(&hub->lock);
        /* Caught up, with nothing buffered: the hub may write its next
         * frames (a turn stream and raw payloads stay on this path). */
        s->pushable = !hub->push_off && !s->include_raw && !s->turn_mode && s->fd >= 0;
        /* Under the hub lock, so a hang-up cannot slip in between the
         * check and the park: the hub thread marks and unparks under it. */
        int ready = atomic_load(&hub->closing) || atomic_load(&s->hung_up)
                        ? -1
                        : journal_park(hub->journal, s->session_id, s->last_sent, &s->waiter);
        pthread_mutex_unlock(&hub->lock);
        if (ready == 1)
            continue; /* committed meanwhile */
        if (ready < 0)
            return MHD_CONTENT_READER_END_OF_STREAM; /* closing, or the client left */
        return 0; /* suspended until a commit, a heartbeat or a hang-up resumes us */
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
        if (pthread_cond_init(&sh->filled, NULL) != 0) {
            pthread_mutex_destroy(&sh->lock);
            free(sh);
            return ERR_NOMEM;
        }
        if (hmap_put(hub->shared, s->session_id, sh) != 0) {
            pthread_cond_destroy(&sh->filled);
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
    pthread_cond_destroy(&sh->filled);
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
    if (hub->push.shared == sh)
        hub->push.shared = NULL; /* another session's part may reuse the address */
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

/* ---- the epoll slots (hub locked) ---------------------------------------------- */

static uint64_t sse_slot_key(const struct sse_hub *hub, uint32_t slot)
{
    return (uint64_t)hub->slots[slot].gen << 32 | slot;
}

/* Gives `s` a slot.  0 or ERR_NOMEM. */
static int sse_slot_take(struct sse_hub *hub, struct sse_stream *s)
{
    uint32_t i = hub->free_slot;
    if (i != SSE_NO_SLOT) {
        hub->free_slot = hub->slots[i].next_free;
    } else {
        if (hub->n_slots == hub->cap_slots) {
            uint32_t cap = hub->cap_slots ? hub->cap_slots * 2 : 64;
            struct sse_slot *slots = realloc(hub->slots, cap * sizeof *slots);
            if (!slots)
                return ERR_NOMEM;
            hub->slots = slots;
            hub->cap_slots = cap;
        }
        i = hub->n_slots++;
        hub->slots[i].gen = 0;
    }
    hub->slots[i].s = s;
    hub->slots[i].gen++;
    s->slot = i;
    return 0;
}

static void sse_slot_put(struct sse_hub *hub, struct sse_stream *s)
{
    if (s->slot == SSE_NO_SLOT)
        return;
    hub->slots[s->slot].s = NULL;
    hub->slots[s->slot].next_free = hub->free_slot;
    hub->free_slot = s->slot;
    s->slot = SSE_NO_SLOT;
}

static struct sse_stream *sse_slot_find(const struct sse_hub *hub, uint64_t key)
{
    uint32_t i = (uint32_t)(key & 0xffffffffu);
    if (i >= hub->n_slots || !hub->slots[i].s || hub->slots[i].gen != (uint32_t)(key >> 32))
        return NULL;
    return hub->slots[i].s;
}

/* Stops watching the stream's socket.  Before libmicrohttpd closes it:
 * sse_free runs when the response is destroyed, which comes first. */
static void sse_unwatch(struct sse_hub *hub, struct sse_stream *s)
{
    if (s->fd < 0)
        return;
    if (epoll_ctl(hub->epoll_fd, EPOLL_CTL_DEL, s->fd, NULL) != 0)
        fprintf(stderr, "sandbox-journal: sse: epoll_ctl(DEL): %s\n", strerror(errno));
    s->fd = -1;
}

/* ---- pushing (the hub thread, hub locked) ------------------------------------------ */

static struct sse_stream *sse_queue_pop(struct sse_hub *hub)
{
    pthread_mutex_lock(&hub->queue_lock);
    struct sse_stream *s = hub->queue_head;
    if (s) {
        hub->queue_head = s->queue_next;
        if (!hub->queue_head)
            hub->queue_tail = NULL;
        hub->queue_len--;
        s->queued = 0;
        s->queue_next = NULL;
    }
    pthread_mutex_unlock(&hub->queue_lock);
    return s;
}

/* Takes `s` out of the queue if it is in it.  Any thread, hub locked. */
static void sse_queue_remove(struct sse_hub *hub, struct sse_stream *s)
{
    pthread_mutex_lock(&hub->queue_lock);
    if (s->queued) {
        struct sse_stream **p = &hub->queue_head, *prev = NULL;
        while (*p != s) {
            prev = *p;
            p = &(*p)->queue_next;
        }
        *p = s->queue_next;
        if (hub->queue_tail == s)
            hub->queue_tail = prev;
        hub->queue_len--;
        s->queued = 0;
        s->queue_next = NULL;
    }
    pthread_mutex_unlock(&hub->queue_lock);
}

/* Gives a stream the hub held back to libmicrohttpd, whose next sse_read
 * carries on (it ends the stream if it hung up or the server is closing). */
static void sse_hand_back(struct sse_stream *s)
{
    s->pushable = 0;
    MHD_resume_connection(s->conn);
}

/* Frames the events of s's session after s->last_sent into hub->push,
 * from the shared frames or, when they are not there, from the journal
 * (offering them to the shared frames).  Streams woken by the same commit
 * find them framed already.  1 when there are frames, 0 when there are none
 * or they could not be read (the stream then reads them on its own path). */
static int sse_push_frames(struct sse_hub *hub, struct sse_stream *s)
{
    struct sse_shared *sh = s->shared;
    if (hub->push.shared == sh && hub->push.after == s->last_sent)
        return 1;
    hub->push.shared = NULL;
    struct buf *wire = &hub->push.wire;
    buf_reset(wire);
    if (buf_reserve(wire, SSE_CHUNK_HEAD) != 0)
        return 0;
    wire->len = SSE_CHUNK_HEAD;
    uint64_t last = 0;
    int turn_ended = 0, n = 0;
    pthread_mutex_lock(&sh->lock);
    if (sh->tail) {
        n = sse_tail_copy(sh->tail, s->last_sent, SSE_EVENTS_PER_READ, SSE_PUSH_BYTES, 0, wire,
                          &last, &turn_ended);
        if (n > 0)
            sh->last_used_ms = sse_now_ms();
    }
    pthread_mutex_unlock(&sh->lock);
    if (n < 0)
        return 0;
    if (n == 0) {
        struct err err;
        struct sse_reading rd = { .out = wire };
        journal_reader_t *r = journal_reader_for_thread(hub->journal, &err);
        if (!r || sse_read_frames(hub, r, s->session_id, s->last_sent, SSE_PUSH_BYTES, &rd,
                                  &err) != 0) {
            fprintf(stderr, "sandbox-journal: sse: %s\n", err.msg);
            return 0;
        }
        if (rd.n == 0)
            return 0;
        pthread_mutex_lock(&sh->lock);
        sse_offer(sh, &rd);
        pthread_mutex_unlock(&sh->lock);
        last = rd.last;
    }
    if (buf_append(wire, "\r\n", 2) != 0)
        return 0;
    hub->push.shared = sh;
    hub->push.after = s->last_sent;
    hub->push.last = last;
    hub->push.frames_len = wire->len - SSE_CHUNK_HEAD - 2;
    return 1;
}

/* Starts watching for the socket to drain, to write the rest of a chunk. */
static int sse_watch_out(struct sse_hub *hub, struct sse_stream *s, int out)
{
    struct epoll_event ev = { .events = EPOLLRDHUP | (out ? EPOLLOUT : 0),
                              .data.u64 = sse_slot_key(hub, s->slot) };
    return epoll_ctl(hub->epoll_fd, EPOLL_CTL_MOD, s->fd, &ev);
}

/* Parks a stream the hub wrote to again.  Its connection stays suspended. */
static void sse_repark(struct sse_hub *hub, struct sse_stream *s)
{
    s->hub_parks = 1;
    int ready = atomic_load(&hub->closing)
                    ? -1
                    : journal_park(hub->journal, s->session_id, s->last_sent, &s->waiter);
    s->hub_parks = 0;
    if (ready == 1)
        sse_queue_push(hub, s); /* committed meanwhile: its turn comes (this thread) */
    else if (ready != 0)
        sse_hand_back(s); /* closing, or no memory: its own path decides */
}

/* Writes the new frames to a stream the commit queued. */
static void sse_push(struct sse_hub *hub, struct sse_stream *s)
{
    if (atomic_load(&hub->closing) || atomic_load(&s->hung_up) || s->fd < 0 ||
        !sse_push_frames(hub, s)) {
        sse_hand_back(s);
        return;
    }
    struct buf *wire = &hub->push.wire;
    const char *p = wire->data + SSE_CHUNK_HEAD;
    size_t len = hub->push.frames_len;
    if (s->chunked) {
        char head[SSE_CHUNK_HEAD + 1];
        int hl = snprintf(head, sizeof head, "%zx\r\n", len);
        p -= hl;
        memcpy(wire->data + SSE_CHUNK_HEAD - hl, head, (size_t)hl);
        len += (size_t)hl + 2;
    }
    ssize_t n = send(s->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        sse_hand_back(s); /* nothing written: libmicrohttpd waits for the socket */
        return;
    }
    if (n <= 0) {
        atomic_store(&s->hung_up, 1); /* the client is gone */
        sse_hand_back(s);
        return;
    }
    s->last_sent = hub->push.last;
    atomic_store(&s->last_write_ms, sse_now_ms());
    atomic_fetch_add(&hub->pushes, 1);
    if ((size_t)n == len) {
        sse_repark(hub, s);
        return;
    }
    /* The socket took part of the chunk: the rest must follow before
     * anything libmicrohttpd frames, so the hub writes it as it drains. */
    if (buf_append(&s->out, p + n, len - (size_t)n) != 0 || sse_watch_out(hub, s, 1) != 0) {
        buf_free(&s->out);
        s->cut = 1; /* cannot go on well framed */
        sse_hand_back(s);
        return;
    }
    s->out_pos = 0;
    s->pushing = 1;
    atomic_fetch_add(&hub->partial_pushes, 1);
    sse_note_buffered(hub, s->out.len);
}

/* The socket of a stream with the rest of a chunk to write drained. */
static void sse_push_more(struct sse_hub *hub, struct sse_stream *s)
{
    ssize_t n = send(s->fd, s->out.data + s->out_pos, s->out.len - s->out_pos,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        atomic_store(&s->hung_up, 1);
    } else {
        atomic_store(&s->last_write_ms, sse_now_ms()); /* progress: not stalled */
        if ((s->out_pos += (size_t)n) < s->out.len)
            return;
    }
    buf_free(&s->out);
    s->out_pos = 0;
    s->pushing = 0;
    if (!atomic_load(&s->hung_up) && sse_watch_out(hub, s, 0) != 0)
        atomic_store(&s->hung_up, 1);
    sse_hand_back(s); /* it catches up on its own path, then parks pushable again */
}

/* Writes to the streams queued when this pass began; those a commit queues
 * meanwhile wait for the next pass, so hang-ups and heartbeats get their
 * turn under a steady stream of commits. */
static void sse_push_queued(struct sse_hub *hub)
{
    pthread_mutex_lock(&hub->queue_lock);
    size_t n = hub->queue_len;
    pthread_mutex_unlock(&hub->queue_lock);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&hub->lock);
        struct sse_stream *s = sse_queue_pop(hub);
        if (s)
            sse_push(hub, s);
        pthread_mutex_unlock(&hub->lock);
        if (!s)
            break;
    }
}

static void sse_free(void *cls)
{
    struct sse_stream *s = cls;
    struct sse_hub *hub = s->hub;
    pthread_mutex_lock(&hub->lock);
    journal_unpark(hub->journal, &s->waiter);
    sse_queue_remove(hub, s);
    sse_unwatch(hub, s);
    sse_slot_put(hub, s);
    if (s->prev)
        s->prev->next = s->next;
    else
        hub->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    hub->n_streams--;
    sse_shared_release(hub, s);
    pthread_mutex_unlock(&hub->lock);
    buf_free(&s->out);
    if (s->src.free)
        s->src.free(s->src.arg);
    free(s->session_id);
    free(s);
}

/* ---- the hub thread ---------------------------------------------------------------- */

/* Forgets the rest of a pushed chunk the socket has not taken: the stream
 * is ending.  1 if there was one (the hub then holds the stream, suspended). */
static int sse_drop_push(struct sse_hub *hub, struct sse_stream *s)
{
    if (!s->pushing)
        return 0;
    buf_free(&s->out);
    s->out_pos = 0;
    s->pushing = 0;
    s->cut = 1;
    /* Level-triggered: a socket left armed for EPOLLOUT would wake the hub
     * until libmicrohttpd closes it. */
    if (s->fd >= 0 && sse_watch_out(hub, s, 0) != 0)
        fprintf(stderr, "sandbox-journal: sse: epoll_ctl(MOD): %s\n", strerror(errno));
    return 1;
}

/* A client hung up: its stream ends at once (hub locked). */
static void sse_hangup(struct sse_hub *hub, uint64_t key)
{
    struct sse_stream *s = sse_slot_find(hub, key);
    if (!s)
        return; /* freed since epoll reported it */
    sse_unwatch(hub, s); /* level-triggered: report it once */
    atomic_store(&s->hung_up, 1);
    atomic_fetch_add(&hub->hangups, 1);
    if (journal_unpark(hub->journal, &s->waiter) || sse_drop_push(hub, s))
        sse_hand_back(s);
    /* Otherwise the stream is writing (or queued, and the hub's push sees
     * hung_up), and sees hung_up at its next read. */
}

/* Resumes the streams silent for a heartbeat interval, and ends those whose
 * client took nothing of a push for as long as libmicrohttpd would wait for
 * a connection it drives (a suspended one it does not time out). */
static void sse_heartbeats(struct sse_hub *hub, long long now)
{
    hmap_foreach(hub->shared, sse_shared_expire, &now);
    for (struct sse_stream *s = hub->streams; s; s = s->next) {
        long long silent = now - atomic_load(&s->last_write_ms);
        if (s->pushing && silent >= hub->stall_ms) {
            sse_drop_push(hub, s); /* a cut stream closes without a clean end */
            sse_hand_back(s);
            continue;
        }
        if (silent < (long long)hub->heartbeat_ms)
            continue;
        if (journal_unpark(hub->journal, &s->waiter)) {
            atomic_store(&s->heartbeat_due, 1);
            atomic_store(&s->last_write_ms, now); /* one heartbeat per interval */
            MHD_resume_connection(s->conn);
        }
    }
}

static void *sse_hub_main(void *arg)
{
    struct sse_hub *hub = arg;
    int tick = (int)(hub->heartbeat_ms < 1000 ? hub->heartbeat_ms : 1000);
    long long last_beat = sse_now_ms();
    for (;;) {
        struct epoll_event ev[SSE_EPOLL_BATCH];
        long long wait = last_beat + tick - sse_now_ms();
        pthread_mutex_lock(&hub->queue_lock);
        if (hub->queue_len)
            wait = 0; /* a pass left work for the next */
        pthread_mutex_unlock(&hub->queue_lock);
        int n = epoll_wait(hub->epoll_fd, ev, SSE_EPOLL_BATCH, wait > 0 ? (int)wait : 0);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "sandbox-journal: sse: epoll_wait: %s\n", strerror(errno));
            n = 0; /* heartbeats still end dead streams, later */
        }
        pthread_mutex_lock(&hub->lock);
        if (hub->stop) {
            pthread_mutex_unlock(&hub->lock);
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 == SSE_WAKE_KEY) {
                uint64_t count;
                /* Resets the counter; empty (EAGAIN) when a pass took it. */
                if (read(hub->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
                    fprintf(stderr, "sandbox-journal: sse: wake: %s\n", strerror(errno));
            } else if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                sse_hangup(hub, ev[i].data.u64);
            } else if (ev[i].events & EPOLLOUT) {
                struct sse_stream *s = sse_slot_find(hub, ev[i].data.u64);
                if (s && s->pushing)
                    sse_push_more(hub, s);
            }
        }
        long long now = sse_now_ms();
        if (now - last_beat >= tick) {
            sse_heartbeats(hub, now);
            last_beat = now;
        }
        pthread_mutex_unlock(&hub->lock);
        sse_push_queued(hub);
    }
}

static void sse_hub_free(struct sse_hub *hub)
{
    if (hub->wake_fd >= 0)
        close(hub->wake_fd);
    if (hub->epoll_fd >= 0)
        close(hub->epoll_fd);
    buf_free(&hub->push.wire);
    pthread_mutex_destroy(&hub->queue_lock);
    pthread_mutex_destroy(&hub->lock);
    /* Every stream is freed by now, and with it every shared part. */
    hmap_free(hub->shared);
    free(hub->slots);
    free(hub);
}

int sse_hub_start(journal_t *journal, unsigned heartbeat_ms, struct sse_hub **out,
                  struct err *err)
{
    struct sse_hub *hub = calloc(1, sizeof *hub);
    if (!hub)
        return err_set(err, ERR_NOMEM, "out of memory");
    hub->journal = journal;
    hub->heartbeat_ms = heartbeat_ms ? heartbeat_ms : 15000;
    hub->free_slot = SSE_NO_SLOT;
    const char *delay = getenv("SJ_TEST_SSE_READ_DELAY_MS");
    hub->test_read_delay_ms = delay ? (unsigned)strtoul(delay, NULL, 10) : 0;
    hub->push_off = getenv("SJ_TEST_SSE_NO_PUSH") != NULL;
    const char *stall = getenv("SJ_TEST_SSE_STALL_MS");
    hub->stall_ms = stall ? strtoll(stall, NULL, 10) : HTTP_IDLE_TIMEOUT_S * 1000LL;
    buf_init(&hub->push.wire);
    hub->epoll_fd = hub->wake_fd = -1;
    if (pthread_mutex_init(&hub->lock, NULL) != 0) {
        free(hub);
        return err_set(err, ERR_INTERNAL, "pthread_mutex_init failed");
    }
    if (pthread_mutex_init(&hub->queue_lock, NULL) != 0) {
        pthread_mutex_destroy(&hub->lock);
        free(hub);
        return err_set(err, ERR_INTERNAL, "pthread_mutex_init failed");
    }
    hub->shared = hmap_new();
    if (!hub->shared) {
        sse_hub_free(hub);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    hub->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    hub->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SSE_WAKE_KEY };
    if (hub->epoll_fd < 0 || hub->wake_fd < 0 ||
        epoll_ctl(hub->epoll_fd, EPOLL_CTL_ADD, hub->wake_fd, &ev) != 0) {
        int e = errno;
        sse_hub_free(hub);
        return err_set(err, ERR_INTERNAL, "sse: epoll set-up: %s", strerror(e));
    }
    if (pthread_create(&hub->thread, NULL, sse_hub_main, hub) != 0) {
        sse_hub_free(hub);
        return err_set(err, ERR_INTERNAL, "could not start the heartbeat thread");
    }
    *out = hub;
    return 0;
}

void sse_hub_close_streams(struct sse_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    atomic_store(&hub->closing, 1);
    /* Every suspended stream goes back to libmicrohttpd, which cannot stop
     * with one left: parked, queued for a push, or mid-push. */
    for (struct sse_stream *s; (s = sse_queue_pop(hub));)
        sse_hand_back(s);
    for (struct sse_stream *s = hub->streams; s; s = s->next)
        if (journal_unpark(hub->journal, &s->waiter) || sse_drop_push(hub, s))
            sse_hand_back(s);
    pthread_mutex_unlock(&hub->lock);
}

void sse_hub_stop(struct sse_hub *hub)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->lock);
    hub->stop = 1;
    pthread_mutex_unlock(&hub->lock);
    sse_poke(hub);
    pthread_join(hub->thread, NULL);
    sse_hub_free(hub);
}

/* ---- responding ------------------------------------------------------------------ */

/* The headers of an event stream, on the stream or on a HEAD answer. */
static int sse_headers(struct MHD_Response *resp)
{
    return MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream") ==
               MHD_YES &&
           MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") ==
               MHD_YES &&
           MHD_add_response_header(resp, "X-Accel-Buffering", "no") == MHD_YES;
}

/* HEAD: the stream's headers and no body.  libmicrohttpd 0.9.75 would end a
 * callback response of unknown size with the chunked terminator "0\r\n\r\n"
 * even for HEAD, so the answer is an empty buffer instead (it then says
 * Content-Length: 0, which a HEAD answer may). */
static enum MHD_Result sse_respond_head(struct http_request *req)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (!sse_headers(resp)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return http_queue(req, MHD_HTTP_OK, resp);
}

/* Puts `s` in the hub: its list, its session's shared part, and the epoll
 * set watching its socket.  0 or an error code (nothing done). */
static int sse_register(struct sse_hub *hub, struct sse_stream *s, struct err *err)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return err_set(err, ERR_INTERNAL, "sse: the connection has no socket");
    pthread_mutex_lock(&hub->lock);
    int rc = s->session_id ? sse_shared_acquire(hub, s) : 0;
    if (rc == 0 && (rc = sse_slot_take(hub, s)) != 0)
        sse_shared_release(hub, s);
    if (rc) {
        pthread_mutex_unlock(&hub->lock);
        return err_set(err, rc, "out of memory");
    }
    struct epoll_event ev = { .events = EPOLLRDHUP, .data.u64 = sse_slot_key(hub, s->slot) };
    if (epoll_ctl(hub->epoll_fd, EPOLL_CTL_ADD, ci->connect_fd, &ev) != 0) {
        int e = errno;
        sse_slot_put(hub, s);
        sse_shared_release(hub, s);
        pthread_mutex_unlock(&hub->lock);
        return err_set(err, e == ENOMEM || e == ENOSPC ? ERR_NOMEM : ERR_INTERNAL,
                       "sse: cannot watch the connection: %s", strerror(e));
    }
    s->fd = ci->connect_fd;
    s->next = hub->streams;
    if (hub->streams)
        hub->streams->prev = s;
    hub->streams = s;
    hub->n_streams++;
    pthread_mutex_unlock(&hub->lock);
    return 0;
}

enum MHD_Result sse_respond(struct http_request *req, const char *session_id, uint64_t after,
                            int include_raw, int turn_mode)
{
    if (http_is_head(req))
        return sse_respond_head(req);
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
    /* libmicrohttpd chunks a body of unknown size for HTTP/1.1 and sends it
     * as it comes for HTTP/1.0 (closing at the end); a push does the same. */
    s->chunked = strcmp(req->version, MHD_HTTP_VERSION_1_1) == 0;
    s->fd = -1;
    s->slot = SSE_NO_SLOT;
    buf_init(&s->out);
    atomic_store(&s->last_write_ms, sse_now_ms());
    /* A comment first, so clients see the response before the first event. */
    if (buf_puts(&s->out, ": connected\n\n") != 0) {
        free(s->session_id);
        free(s);
        return MHD_NO;
    }
    struct err err;
    if (sse_register(hub, s, &err) != 0) {
        buf_free(&s->out);
        free(s->session_id);
        free(s);
        return http_respond_error(req, &err);
    }
    size_t block = strcmp(req->version, MHD_HTTP_VERSION_1_0) == 0 ? SSE_BLOCK_HTTP10
                                                                      : SSE_BLOCK_HTTP11;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, block, sse_read, s, sse_free);
    if (!resp) {
        sse_free(s);
        return MHD_NO;
    }
    if (!sse_headers(resp)) {
        MHD_destroy_response(resp); /* calls sse_free */
        return MHD_NO;
    }
    return http_queue(req, MHD_HTTP_OK, resp);
}

enum MHD_Result sse_respond_source(struct http_request *req, const struct sse_source *src,
                                   uint64_t after)
{
    if (http_is_head(req)) {
        if (src->free)
            src->free(src->arg);
        return sse_respond_head(req);
    }
    struct sse_hub *hub = req->server->sse;
    struct sse_stream *s = calloc(1, sizeof *s);
    if (!s) {
        if (src->free)
            src->free(src->arg);
        return MHD_NO;
    }
    s->src = *src;
    s->waiter.park = sse_park;
    s->waiter.wake = sse_wake;
    s->hub = hub;
    s->conn = req->conn;
    s->last_sent = after;
    s->fd = -1;
    s->slot = SSE_NO_SLOT;
    buf_init(&s->out);
    atomic_store(&s->last_write_ms, sse_now_ms());
    struct err err;
    if (buf_puts(&s->out, ": connected\n\n") != 0 || sse_register(hub, s, &err) != 0) {
        buf_free(&s->out);
        if (src->free)
            src->free(src->arg);
        free(s);
        return MHD_NO;
    }
    size_t block = strcmp(req->version, MHD_HTTP_VERSION_1_0) == 0 ? SSE_BLOCK_HTTP10
                                                                      : SSE_BLOCK_HTTP11;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, block, sse_read, s, sse_free);
    if (!resp) {
        sse_free(s);
        return MHD_NO;
    }
    if (!sse_headers(resp)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return http_queue(req, MHD_HTTP_OK, resp);
}

/* ---- GET /v1/debug/sse ------------------------------------------------------------- */

static enum MHD_Result sse_debug(struct http_request *req)
{
    struct sse_hub *hub = req->server->sse;
    pthread_mutex_lock(&hub->lock);
    json_int_t streams = (json_int_t)hub->n_streams;
    pthread_mutex_unlock(&hub->lock);
    return http_respond_json(
        req, MHD_HTTP_OK,
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "streams", streams, "budgetBytes",
                  (json_int_t)SSE_BUDGET_BYTES, "peakBufferedBytes",
                  (json_int_t)atomic_load(&hub->peak_buffered), "reads",
                  (json_int_t)atomic_load(&hub->reads), "hangups",
                  (json_int_t)atomic_load(&hub->hangups), "pushes",
                  (json_int_t)atomic_load(&hub->pushes), "partialPushes",
                  (json_int_t)atomic_load(&hub->partial_pushes)));
}

const struct http_route sse_debug_table[] = {
    { "GET", "/v1/debug/sse", sse_debug, 0 },
    { NULL, NULL, NULL, 0 },
};
