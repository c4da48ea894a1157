/* The process terminal's WebSocket (terminal.h has the protocol and who
 * owns what).
 *
 * A connection is a `struct term`, shared by the request that answered the
 * handshake (until libmicrohttpd ends it) and the hub (from the upgrade to
 * the close): reference-counted under the hub's lock, freed by the last.
 * Everything else in it is the hub thread's alone once it is handed over.
 *
 * The hub's loop: take the new terminals; for each, move journal output into
 * its buffer while the buffer is short, and write what the socket takes;
 * then, if some terminal has read everything and waits for more, park on
 * the journal ("wake me on any commit", whose wake writes to the hub's
 * pipe); poll every socket and the pipe; read what clients sent. */
#include "http/terminal.h"

#include "base/base64.h"
#include "base/buf.h"
#include "http/ws.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Journal bytes read for one terminal at once. */
#define TERM_READ_BUDGET (64 * 1024)
/* How long a close handshake may take before the socket is just closed. */
#define TERM_CLOSE_WAIT_MS 2000

enum term_state {
    TERM_OPEN,    /* following the log */
    TERM_CLOSING, /* our close frame is queued: flush it, then wait for theirs */
    TERM_DONE,    /* to be closed and released */
};

struct term {
    struct terminal_hub *hub;
    int refs;            /* under hub->lock: the request's, the hub's */
    int handed;          /* under hub->lock: the upgrade gave it to the hub */
    char *id;
    /* hub thread only, once handed over */
    int sock;
    struct MHD_UpgradeResponseHandle *urh;
    struct ws_reader in;
    struct buf out;
    size_t out_off;      /* bytes of `out` already sent */
    uint64_t cursor;     /* the last log sequence read */
    int started;         /* ready sent, replay cursor set */
    int waiting;         /* has read the whole log of a running process */
    int exit_sent;
    int peer_closed;     /* their close frame came, or EOF */
    enum term_state state;
    int64_t stall_since; /* when output last waited with no byte accepted; 0: none */
    int64_t close_by;    /* TERM_CLOSING: the deadline */
    struct term *next;
};

struct terminal_hub {
    journal_t *journal;
    processes_t *processes;
    pthread_t thread;
    int wake_fd[2];        /* the pipe that interrupts the hub's poll */
    struct journal_waiter waiter; /* hub thread (and the journal's wake) */
    pthread_mutex_t lock;
    struct term *incoming; /* under lock: handed over, not yet taken */
    size_t count;          /* under lock: terminals reserved (handshake to free) */
    int closing;           /* under lock */
    size_t open;           /* under lock: terminals the thread serves (for tests) */
    size_t peak_buffered;  /* under lock: the most bytes one socket has had waiting */
    struct term *active;   /* hub thread only */
};

static int64_t term_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void term_wake(struct terminal_hub *hub)
{
    char c = 1;
    /* A full pipe already holds a wake-up: EAGAIN loses nothing. */
    while (write(hub->wake_fd[1], &c, 1) < 0 && errno == EINTR)
        ;
}

static void term_free(struct term *t)
{
    ws_reader_free(&t->in);
    buf_free(&t->out);
    free(t->id);
    free(t);
}

static void term_unref(struct term *t)
{
    struct terminal_hub *hub = t->hub;
    pthread_mutex_lock(&hub->lock);
    int last = --t->refs == 0;
    if (last)
        hub->count--;
    pthread_mutex_unlock(&hub->lock);
    if (last)
        term_free(t);
}

/* ---- output ---------------------------------------------------------------------- */

static size_t term_pending(const struct term *t)
{
    return t->out.len - t->out_off;
}

/* Queues a text control frame {"type":type, ...}: 0 or ERR_NOMEM. */
static int term_control(struct term *t, json_t *frame)
{
    char *text = frame ? json_dumps(frame, JSON_COMPACT) : NULL;
    json_decref(frame);
    if (!text)
        return ERR_NOMEM;
    int rc = ws_frame_append(&t->out, WS_TEXT, text, strlen(text));
    free(text);
    return rc;
}

static int term_error_frame(struct term *t, const char *message)
{
    return term_control(t, json_pack("{s:s,s:s}", "type", "error", "message", message));
}

/* Queues our close frame and starts the closing handshake. */
static void term_close(struct term *t, unsigned code, const char *reason)
{
    if (t->state != TERM_OPEN)
        return;
    if (ws_close_append(&t->out, code, reason) != 0) {
        t->state = TERM_DONE; /* cannot even say goodbye: just close */
        return;
    }
    t->state = TERM_CLOSING;
    t->close_by = term_now_ms() + TERM_CLOSE_WAIT_MS;
}

/* Writes what the socket takes now. */
static void term_flush(struct term *t)
{
    while (term_pending(t)) {
        ssize_t n = send(t->sock, t->out.data + t->out_off, term_pending(t), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!t->stall_since)
                t->stall_since = term_now_ms();
            return;
        }
        if (n <= 0) {
            t->state = TERM_DONE; /* the peer is gone */
            return;
        }
        t->out_off += (size_t)n;
        t->stall_since = 0;
    }
    buf_reset(&t->out);
    t->out_off = 0;
}

static int term_chunk(void *arg, const struct journal_proc_chunk *c)
{
    struct term *t = arg;
    t->cursor = c->sequence;
    /* The byte cap's marker is not terminal output: the bytes it stands
     * for are gone, and the screen just continues. */
    if (strcmp(c->stream, "pty") != 0)
        return 0;
    return ws_frame_append(&t->out, WS_BINARY, c->data, c->len);
}

static void term_exit_frame(struct term *t)
{
    json_t *info = NULL;
    struct err err;
    json_t *code = json_null();
    if (processes_get(t->hub->processes, t->id, &info, &err) == 0) {
        json_t *c = json_object_get(info, "exitCode");
        if (json_is_integer(c))
            code = c;
    }
    int rc = term_control(t, json_pack("{s:s,s:O}", "type", "exit", "exitCode", code));
    json_decref(info);
    t->exit_sent = 1;
    if (rc != 0) {
        t->state = TERM_DONE;
        return;
    }
    term_close(t, WS_CLOSE_NORMAL, "process exited");
}

/* Sends the ready frame and places the cursor for the replay. */
static void term_start(struct term *t, journal_reader_t *r)
{
    struct err err;
    uint64_t after = 0;
    t->started = 1;
    if (term_control(t, json_pack("{s:s,s:s}", "type", "ready", "processId", t->id)) != 0) {
        t->state = TERM_DONE;
        return;
    }
    if (journal_proc_tail_after(r, t->id, "pty", TERMINAL_REPLAY_CHUNKS, &after, &err) != 0) {
        term_error_frame(t, err.msg);
        term_close(t, WS_CLOSE_INTERNAL, "cannot read the log");
        return;
    }
    t->cursor = after;
}

/* Moves log output into the buffer while it is short. */
static void term_pump(struct term *t, journal_reader_t *r)
{
    t->waiting = 0;
    if (t->state != TERM_OPEN || t->exit_sent)
        return;
    while (term_pending(t) < TERMINAL_OUT_LOW) {
        struct err err;
        int ended = 0;
        /* Ended before the read: a read that then finds nothing has it all. */
        if (processes_state(t->hub->processes, t->id, &ended, &err) != 0) {
            if (term_error_frame(t, "the process was deleted") != 0)
                t->state = TERM_DONE;
            term_close(t, WS_CLOSE_NORMAL, "process deleted");
            return;
        }
        uint64_t before = t->cursor;
        int rc = journal_proc_read_logs(r, t->id, "pty", t->cursor, 64, TERM_READ_BUDGET,
                                        term_chunk, t, NULL, &err);
        if (rc != 0) {
            term_close(t, WS_CLOSE_INTERNAL, "cannot read the log");
            return;
        }
        if (t->cursor == before) {
            if (ended)
                term_exit_frame(t);
            else
                t->waiting = 1;
            return;
        }
    }
}

/* ---- input ----------------------------------------------------------------------- */

static void term_input(struct term *t, const void *data, size_t len)
{
    struct err err;
    if (len > processes_max_input(t->hub->processes)) {
        term_error_frame(t, "input larger than maxInputBytesPerRequest");
        return;
    }
    if (len && processes_input(t->hub->processes, t->id, data, len, &err) != 0)
        term_error_frame(t, err.msg);
}

static void term_text(struct term *t, const unsigned char *text, size_t len)
{
    json_error_t jerr;
    json_t *f = json_loadb((const char *)text, len, JSON_ALLOW_NUL, &jerr);
    const char *type = json_string_value(json_object_get(f, "type"));
    struct err err;
    if (!type) {
        term_error_frame(t, "invalid terminal control frame");
    } else if (strcmp(type, "input") == 0) {
        json_t *data = json_object_get(f, "data");
        const char *enc = json_string_value(json_object_get(f, "encoding"));
        if (!json_is_string(data)) {
            term_error_frame(t, "input needs a string `data`");
        } else if (enc && strcmp(enc, "base64") == 0) {
            size_t n = json_string_length(data), out_len = 0;
            unsigned char *bytes = malloc(n / 4 * 3 + 3);
            if (!bytes)
                term_error_frame(t, "out of memory");
            else if (base64_decode(json_string_value(data), n, bytes, &out_len) != 0)
                term_error_frame(t, "input data is not base64");
            else
                term_input(t, bytes, out_len);
            free(bytes);
        } else if (!enc || strcmp(enc, "utf8") == 0 || strcmp(enc, "utf-8") == 0 ||
                   strcmp(enc, "text") == 0) {
            term_input(t, json_string_value(data), json_string_length(data));
        } else {
            term_error_frame(t, "encoding must be base64 or utf8");
        }
    } else if (strcmp(type, "resize") == 0) {
        json_t *c = json_object_get(f, "cols"), *r = json_object_get(f, "rows");
        json_int_t cols = json_integer_value(c), rows = json_integer_value(r);
        if (!json_is_integer(c) || !json_is_integer(r) || cols < 1 || rows < 1 ||
            cols > 0xffff || rows > 0xffff)
            term_error_frame(t, "resize needs cols and rows 1..65535");
        else if (processes_resize(t->hub->processes, t->id, (unsigned)rows, (unsigned)cols,
                                  &err) != 0)
            term_error_frame(t, err.msg);
    } else if (strcmp(type, "close") == 0) {
        term_close(t, WS_CLOSE_NORMAL, "closed by the client");
    } else {
        term_error_frame(t, "unknown terminal frame type");
    }
    json_decref(f);
}

/* Reads what the client sent and acts on each complete message. */
static void term_read(struct term *t)
{
    unsigned char tmp[16384];
    size_t room = ws_reader_room(&t->in);
    if (room > sizeof tmp)
        room = sizeof tmp;
    ssize_t n = recv(t->sock, tmp, room, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        t->peer_closed = 1;
        t->state = TERM_DONE;
        return;
    }
    if (ws_reader_push(&t->in, tmp, (size_t)n) != 0) {
        t->state = TERM_DONE;
        return;
    }
    for (;;) {
        struct ws_event ev;
        if (ws_reader_next(&t->in, &ev) != 0) {
            t->state = TERM_DONE;
            return;
        }
        switch (ev.kind) {
        case WS_EV_NONE:
            return;
        case WS_EV_MESSAGE:
            if (t->state != TERM_OPEN)
                break; /* closing: what they send now is not acted on */
            if (ev.opcode == WS_BINARY)
                term_input(t, ev.data, ev.len);
            else
                term_text(t, ev.data, ev.len);
            break;
        case WS_EV_PING:
            if (t->state == TERM_OPEN && ws_frame_append(&t->out, WS_PONG, ev.data, ev.len))
                t->state = TERM_DONE;
            break;
        case WS_EV_PONG:
            break;
        case WS_EV_CLOSE:
            t->peer_closed = 1;
            term_close(t, ev.code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : ev.code, "");
            return;
        case WS_EV_ERROR:
            t->peer_closed = 1; /* nothing more of theirs is read */
            term_close(t, ev.code, ev.code == WS_CLOSE_TOO_BIG ? "message too big"
                                                                : "protocol error");
            return;
        }
    }
}

/* ---- the hub thread -------------------------------------------------------------- */

static void term_release(struct term *t)
{
    if (MHD_upgrade_action(t->urh, MHD_UPGRADE_ACTION_CLOSE) != MHD_YES)
        fprintf(stderr, "sandbox-journal: terminal %s: closing the socket failed\n", t->id);
    term_unref(t);
}

static void term_waiter_park(struct journal_waiter *w)
{
    (void)w; /* the hub polls its pipe: nothing to arm */
}

static void term_waiter_wake(struct journal_waiter *w)
{
    struct terminal_hub *hub = (struct terminal_hub *)((char *)w -
                                                       offsetof(struct terminal_hub, waiter));
    term_wake(hub);
}

/* The terminals still open at shutdown: a going-away close, one try to
 * send it, and the socket closed. */
static void term_goodbye_all(struct terminal_hub *hub)
{
    while (hub->active) {
        struct term *t = hub->active;
        hub->active = t->next;
        if (t->state == TERM_OPEN)
            term_close(t, WS_CLOSE_GOING_AWAY, "server stopping");
        if (t->state != TERM_DONE)
            term_flush(t);
        term_release(t);
    }
}

static void *term_hub_main(void *arg)
{
    struct terminal_hub *hub = arg;
    struct err err;
    journal_reader_t *r = journal_reader_for_thread(hub->journal, &err);
    if (!r)
        fprintf(stderr, "sandbox-journal: terminals: %s\n", err.msg);
    struct pollfd *fds = NULL;
    size_t fds_cap = 0;
    int parked = 0;
    for (;;) {
        pthread_mutex_lock(&hub->lock);
        int closing = hub->closing;
        while (hub->incoming) {
            struct term *t = hub->incoming;
            hub->incoming = t->next;
            t->next = hub->active;
            hub->active = t;
        }
        pthread_mutex_unlock(&hub->lock);
        if (closing)
            break;

        uint64_t seen = journal_wake_count(hub->journal);
        uint64_t exits = processes_exit_count(hub->processes);
        int want_park = 0, again = 0;
        size_t peak = 0;
        size_t n = 0;
        int64_t now = term_now_ms();
        for (struct term *t = hub->active; t; t = t->next, n++) {
            if (!r && t->state == TERM_OPEN)
                term_close(t, WS_CLOSE_INTERNAL, "cannot read the journal");
            if (r && !t->started)
                term_start(t, r);
            if (r)
                term_pump(t, r);
            if (t->state != TERM_DONE)
                term_flush(t);
            if (t->state == TERM_CLOSING && !term_pending(t) && t->peer_closed)
                t->state = TERM_DONE; /* both closes exchanged */
            if (t->state == TERM_CLOSING && now >= t->close_by)
                t->state = TERM_DONE;
            if (term_pending(t) && t->stall_since && now - t->stall_since >= TERMINAL_STALL_MS)
                t->state = TERM_DONE; /* a client that takes nothing */
            if (term_pending(t) > peak)
                peak = term_pending(t);
            want_park |= t->waiting;
            again |= t->state == TERM_OPEN && !t->waiting && !t->exit_sent &&
                     term_pending(t) < TERMINAL_OUT_LOW;
        }
        /* Release the finished ones. */
        for (struct term **pp = &hub->active; *pp;) {
            struct term *t = *pp;
            if (t->state == TERM_DONE) {
                *pp = t->next;
                n--;
                term_release(t);
            } else {
                pp = &t->next;
            }
        }
        pthread_mutex_lock(&hub->lock);
        hub->open = n;
        if (peak > hub->peak_buffered)
            hub->peak_buffered = peak;
        pthread_mutex_unlock(&hub->lock);
        if (want_park && !again) {
            int rc = journal_park_any(hub->journal, seen, &hub->waiter);
            if (rc == 1)
                again = 1; /* committed meanwhile: read again */
            else if (rc == 0)
                parked = 1;
            /* else the journal is closing: the poll below still ends */
            if (processes_exit_count(hub->processes) != exits)
                again = 1; /* an exit whose wake came before the park */
        }
        if (n + 1 > fds_cap) {
            struct pollfd *grown = realloc(fds, (n + 1) * sizeof *fds);
            if (!grown) {
                /* Cannot watch them all: end every terminal rather than
                 * leave one unwatched. */
                for (struct term *t = hub->active; t; t = t->next)
                    t->state = TERM_DONE;
                continue;
            }
            fds = grown;
            fds_cap = n + 1;
        }
        fds[0] = (struct pollfd){ .fd = hub->wake_fd[0], .events = POLLIN };
        int timeout = -1;
        size_t i = 1;
        for (struct term *t = hub->active; t; t = t->next, i++) {
            short ev = 0;
            if (!t->peer_closed && ws_reader_room(&t->in) > 0)
                ev |= POLLIN;
            if (term_pending(t))
                ev |= POLLOUT;
            fds[i] = (struct pollfd){ .fd = t->sock, .events = ev };
            int64_t due = -1;
            if (t->state == TERM_CLOSING)
                due = t->close_by;
            if (term_pending(t) && t->stall_since &&
                (due < 0 || t->stall_since + TERMINAL_STALL_MS < due))
                due = t->stall_since + TERMINAL_STALL_MS;
            if (due >= 0) {
                int64_t left = due - now;
                int ms = left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
                if (timeout < 0 || ms < timeout)
                    timeout = ms;
            }
        }
        if (again)
            timeout = 0;
        int pr = poll(fds, n + 1, timeout);
        if (parked) {
            parked = 0;
            if (journal_unpark(hub->journal, &hub->waiter) == 0) {
                /* Woken already: its byte is in the pipe, drained below. */
            }
        }
        if (pr < 0)
            continue; /* EINTR; anything else shows again on the next poll */
        if (fds[0].revents) {
            char drain[64];
            while (read(hub->wake_fd[0], drain, sizeof drain) > 0)
                ;
        }
        i = 1;
        for (struct term *t = hub->active; t && i < n + 1; t = t->next, i++) {
            short re = fds[i].revents;
            if (re & (POLLIN | POLLHUP | POLLERR))
                term_read(t);
            if ((re & POLLOUT) && t->state != TERM_DONE)
                term_flush(t);
        }
    }
    if (parked && journal_unpark(hub->journal, &hub->waiter) == 0) {
        /* woken meanwhile: nothing to undo */
    }
    free(fds);
    term_goodbye_all(hub);
    return NULL;
}

int terminal_hub_start(journal_t *journal, processes_t *processes, struct terminal_hub **out,
                       struct err *err)
{
    struct terminal_hub *hub = calloc(1, sizeof *hub);
    if (!hub)
        return err_set(err, ERR_NOMEM, "out of memory");
    hub->journal = journal;
    hub->processes = processes;
    hub->waiter.park = term_waiter_park;
    hub->waiter.wake = term_waiter_wake;
    if (pipe(hub->wake_fd) != 0) {
        int e = errno;
        free(hub);
        return err_set(err, ERR_INTERNAL, "terminals: pipe: %s", strerror(e));
    }
    for (int k = 0; k < 2; k++) {
        int fl = fcntl(hub->wake_fd[k], F_GETFL);
        if (fl < 0 || fcntl(hub->wake_fd[k], F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(hub->wake_fd[k], F_SETFD, FD_CLOEXEC) != 0) {
            int e = errno;
            close(hub->wake_fd[0]);
            close(hub->wake_fd[1]);
            free(hub);
            return err_set(err, ERR_INTERNAL, "terminals: fcntl: %s", strerror(e));
        }
    }
    int rc = pthread_mutex_init(&hub->lock, NULL);
    if (rc == 0) {
        rc = pthread_create(&hub->thread, NULL, term_hub_main, hub);
        if (rc != 0)
            pthread_mutex_destroy(&hub->lock);
    }
    if (rc != 0) {
        close(hub->wake_fd[0]);
        close(hub->wake_fd[1]);
        free(hub);
        return err_set(err, ERR_INTERNAL, "terminals: cannot start the thread: %s",
                       strerror(rc));
    }
    *out = hub;
    return 0;
}

void terminal_hub_close(struct terminal_hub *hub)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->lock);
    hub->closing = 1;
    pthread_mutex_unlock(&hub->lock);
    term_wake(hub);
    int rc = pthread_join(hub->thread, NULL);
    if (rc != 0)
        fprintf(stderr, "sandbox-journal: terminals: join: %s\n", strerror(rc));
    /* Handed over after the thread's last look: closed here. */
    while (hub->incoming) {
        struct term *t = hub->incoming;
        hub->incoming = t->next;
        term_release(t);
    }
    close(hub->wake_fd[0]);
    close(hub->wake_fd[1]);
    hub->wake_fd[0] = hub->wake_fd[1] = -1;
}

void terminal_hub_free(struct terminal_hub *hub)
{
    if (!hub)
        return;
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}

/* ---- the handshake --------------------------------------------------------------- */

/* 1 if the comma-separated header value has `token` (case-insensitive). */
static int term_header_has(const char *value, const char *token)
{
    size_t tl = strlen(token);
    const char *p = value;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - p) == tl && strncasecmp(p, token, tl) == 0)
            return 1;
        p = end;
    }
    return 0;
}

/* libmicrohttpd sent the 101: the socket is the hub's from here. */
static void term_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls,
                          const char *extra_in, size_t extra_in_size, MHD_socket sock,
                          struct MHD_UpgradeResponseHandle *urh)
{
    (void)conn, (void)con_cls; /* everything needed is in the term */
    struct term *t = cls;
    struct terminal_hub *hub = t->hub;
    t->sock = sock;
    t->urh = urh;
    int fl = fcntl(sock, F_GETFL);
    int ok = fl >= 0 && fcntl(sock, F_SETFL, fl | O_NONBLOCK) == 0;
    if (ok && extra_in_size)
        ok = ws_reader_push(&t->in, extra_in, extra_in_size) == 0;
    pthread_mutex_lock(&hub->lock);
    int take = ok && !hub->closing && !t->handed;
    if (take) {
        t->handed = 1;
        t->refs++;
        t->next = hub->incoming;
        hub->incoming = t;
    }
    pthread_mutex_unlock(&hub->lock);
    if (!take) {
        if (MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE) != MHD_YES)
            fprintf(stderr, "sandbox-journal: terminal %s: closing the socket failed\n",
                    t->id);
        return;
    }
    term_wake(hub);
}

static void term_request_free(void *wait)
{
    term_unref(wait);
}

static enum MHD_Result term_refuse(struct http_request *req, int code, const char *msg)
{
    struct err err;
    err_set(&err, code, "%s", msg);
    return http_respond_error(req, &err);
}

enum MHD_Result terminal_ws_handler(struct http_request *req)
{
    struct terminal_hub *hub = req->server->terminals;
    const char *id = req->params[0];
    struct err err;
    json_t *info = NULL;
    if (processes_get(req->server->processes, id, &info, &err) != 0)
        return http_respond_error(req, &err);
    int tty = json_is_true(json_object_get(info, "tty"));
    json_decref(info);
    if (!tty) {
        err_set_subject(&err, ERR_PROC_CONFLICT, id, "process %s has no terminal (tty: false)",
                        id);
        return http_respond_error(req, &err);
    }
    const char *upgrade = http_header(req, "Upgrade");
    const char *connection = http_header(req, "Connection");
    const char *version = http_header(req, "Sec-WebSocket-Version");
    const char *key = http_header(req, "Sec-WebSocket-Key");
    char accept[WS_ACCEPT_LEN];
    if (http_is_head(req) || !upgrade || !term_header_has(upgrade, "websocket") ||
        !connection || !term_header_has(connection, "upgrade"))
        return term_refuse(req, ERR_INVALID, "a WebSocket upgrade is required");
    if (!version || strcmp(version, "13") != 0)
        return term_refuse(req, ERR_INVALID, "Sec-WebSocket-Version must be 13");
    if (!key || ws_accept_key(key, accept) != 0)
        return term_refuse(req, ERR_INVALID, "Sec-WebSocket-Key is not 16 bytes of base64");
    if (!hub)
        return term_refuse(req, ERR_NOMEM, "terminals are not available");

    struct term *t = calloc(1, sizeof *t);
    if (!t || !(t->id = strdup(id))) {
        free(t);
        return term_refuse(req, ERR_NOMEM, "out of memory");
    }
    t->hub = hub;
    t->refs = 1;
    t->sock = -1;
    ws_reader_init(&t->in, TERMINAL_MAX_MESSAGE);
    buf_init(&t->out);
    pthread_mutex_lock(&hub->lock);
    int full = hub->count >= TERMINAL_MAX || hub->closing;
    if (!full)
        hub->count++;
    pthread_mutex_unlock(&hub->lock);
    if (full) {
        term_free(t);
        return term_refuse(req, ERR_NOMEM, "too many terminal connections");
    }
    /* The request holds one reference until it ends, whether or not the
     * upgrade happens (a client gone before the 101 never gets there). */
    req->wait = t;
    req->wait_free = term_request_free;
    struct MHD_Response *resp = MHD_create_response_for_upgrade(term_upgraded, t);
    if (!resp)
        return MHD_NO;
    enum MHD_Result rc = MHD_NO;
    if (MHD_add_response_header(resp, "Upgrade", "websocket") == MHD_YES &&
        MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept) == MHD_YES)
        rc = MHD_queue_response(req->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- GET /v1/debug/terminals ------------------------------------------------------- */

static enum MHD_Result terminal_debug(struct http_request *req)
{
    struct terminal_hub *hub = req->server->terminals;
    if (!hub)
        return term_refuse(req, ERR_ROUTE_NOT_FOUND, "terminals are not available");
    pthread_mutex_lock(&hub->lock);
    json_int_t open = (json_int_t)hub->open, peak = (json_int_t)hub->peak_buffered;
    pthread_mutex_unlock(&hub->lock);
    return http_respond_json(req, MHD_HTTP_OK,
                             json_pack("{s:I,s:I,s:I}", "open", open, "peakBufferedBytes", peak,
                                       "boundBytes", (json_int_t)TERMINAL_OUT_LOW));
}

const struct http_route terminal_debug_table[] = {
    { "GET", "/v1/debug/terminals", terminal_debug, 0 },
    { NULL, NULL, NULL, 0 },
};
