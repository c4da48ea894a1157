/* Blocking HTTP/1.1 client for the integration tests; see httpc.h. */
#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD_BYTES (64 * 1024)
#define MAX_CHUNK_LINE 1024

const char *httpc_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
    case HTTPC_ETIMEOUT: return "timeout";
    case HTTPC_ECLOSED: return "connection closed early";
    case HTTPC_EPROTO: return "malformed HTTP response";
    case HTTPC_ESYS: return "socket error";
    case HTTPC_ENOMEM: return "out of memory";
    default: return "unknown error";
    }
}

/* ---- growable byte buffer ------------------------------------------------ */

struct dbuf {
    char *data;
    size_t len;
    size_t cap;
};

static int dbuf_append(struct dbuf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *nd;
        while (cap < b->len + n + 1)
            cap *= 2;
        nd = realloc(b->data, cap);
        if (!nd)
            return HTTPC_ENOMEM;
        b->data = nd;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static int dbuf_puts(struct dbuf *b, const char *s)
{
    return dbuf_append(b, s, strlen(s));
}

static void dbuf_consume(struct dbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data)
        b->data[b->len] = '\0';
}

static void dbuf_free(struct dbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* new: the contents as a NUL-terminated string ("" when empty); b is emptied. */
static char *dbuf_steal(struct dbuf *b)
{
    char *s = b->data;
    if (!s) {
        s = malloc(1);
        if (s)
            s[0] = '\0';
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

/* ---- time ---------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ms_left(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    if (left < 0)
        return 0;
    if (left > INT32_MAX)
        return INT32_MAX;
    return (int)left;
}

/* ---- connection ---------------------------------------------------------- */

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };
enum chunk_state { CS_SIZE, CS_DATA, CS_DATA_END, CS_TRAILER };

struct conn {
    int fd;
    struct dbuf in; /* received, not yet consumed */
    int eof;
    enum body_mode mode;
    enum chunk_state cs;
    unsigned long long left;
    int done;
};

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    dbuf_free(&c->in);
}

/* Waits for `events` on the socket until the deadline: 0, or HTTPC_ETIMEOUT / ESYS. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events, .revents = 0};
        int r = poll(&p, 1, ms_left(deadline));
        if (r > 0)
            return 0;
        if (r == 0)
            return HTTPC_ETIMEOUT;
        if (errno != EINTR)
            return HTTPC_ESYS;
    }
}

static int conn_open(struct conn *c, int port, int64_t deadline)
{
    struct sockaddr_in addr;
    int fd, rc, soerr = 0;
    socklen_t len = sizeof soerr;

    memset(c, 0, sizeof *c);
    c->fd = -1;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return HTTPC_ESYS;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        close(fd);
        return HTTPC_ESYS;
    }
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return HTTPC_ESYS;
        }
        rc = wait_fd(fd, POLLOUT, deadline);
        if (rc != 0) {
            close(fd);
            return rc;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
            close(fd);
            errno = soerr;
            return HTTPC_ESYS;
        }
    }
    c->fd = fd;
    return 0;
}

static int conn_send(struct conn *c, const char *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(c->fd, POLLOUT, deadline);
            if (rc != 0)
                return rc;
            continue;
        }
        return (w < 0 && (errno == EPIPE || errno == ECONNRESET)) ? HTTPC_ECLOSED : HTTPC_ESYS;
    }
    return 0;
}

/* Reads more bytes into c->in.  >0 bytes read, 0 at end of stream, or an error. */
static int conn_fill(struct conn *c, int64_t deadline)
{
    char tmp[16384];
    if (c->eof)
        return 0;
    for (;;) {
        ssize_t r = recv(c->fd, tmp, sizeof tmp, 0);
        if (r > 0) {
            if (dbuf_append(&c->in, tmp, (size_t)r) != 0)
                return HTTPC_ENOMEM;
            return (int)r;
        }
        if (r == 0) {
            c->eof = 1;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = wait_fd(c->fd, POLLIN, deadline);
            if (rc != 0)
                return rc;
            continue;
        }
        if (errno == ECONNRESET) {
            c->eof = 1;
            return 0;
        }
        return HTTPC_ESYS;
    }
}

static int ascii_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca >= 'A' && ca <= 'Z')
            ca += 'a' - 'A';
        if (cb >= 'A' && cb <= 'Z')
            cb += 'a' - 'A';
        if (ca != cb || ca == 0)
            return ca - cb;
    }
}

/* 1 if the comma-separated list `value` has the token `tok` (case-insensitive). */
static int has_token(const char *value, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = value;
    while (*p) {
        const char *start, *end;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        start = p;
        while (*p && *p != ',')
            p++;
        end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tl) {
            size_t i;
            for (i = 0; i < tl; i++) {
                char a = start[i], b = tok[i];
                if (a >= 'A' && a <= 'Z')
                    a = (char)(a + 'a' - 'A');
                if (b >= 'A' && b <= 'Z')
                    b = (char)(b + 'a' - 'A');
                if (a != b)
                    break;
            }
            if (i == tl)
                return 1;
        }
    }
    return 0;
}

static char *dup_range(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static int add_header(struct httpc_response *r, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    const char *v, *end = line + len;
    struct httpc_header *nh;
    if (!colon || colon == line)
        return HTTPC_EPROTO;
    v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    nh = realloc(r->headers, (r->n_headers + 1) * sizeof *nh);
    if (!nh)
        return HTTPC_ENOMEM;
    r->headers = nh;
    nh[r->n_headers].name = dup_range(line, (size_t)(colon - line));
    nh[r->n_headers].value = dup_range(v, (size_t)(end - v));
    r->n_headers++;
    if (!nh[r->n_headers - 1].name || !nh[r->n_headers - 1].value)
        return HTTPC_ENOMEM;
    return 0;
}

/* Reads and parses the status line and headers; sets the body framing. */
static int read_head(struct conn *c, const char *method, int64_t deadline,
                     struct httpc_response *r)
{
    char *end;
    size_t head_len, pos;
    const char *cl, *te;
    int rc;

    for (;;) {
        end = c->in.data ? strstr(c->in.data, "\r\n\r\n") : NULL;
        if (end)
            break;
        if (c->in.len > MAX_HEAD_BYTES)
            return HTTPC_EPROTO;
        rc = conn_fill(c, deadline);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return c->in.len ? HTTPC_EPROTO : HTTPC_ECLOSED;
    }
    head_len = (size_t)(end - c->in.data) + 4;

    /* Status line: HTTP/1.x NNN reason */
    {
        const char *line = c->in.data;
        const char *eol = strstr(line, "\r\n");
        if (strncmp(line, "HTTP/1.", 7) != 0 || eol - line < 12 || line[8] != ' ')
            return HTTPC_EPROTO;
        if (line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' ||
            line[11] < '0' || line[11] > '9')
            return HTTPC_EPROTO;
        r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
        pos = (size_t)(eol - line) + 2;
    }
    while (pos < head_len - 2) {
        const char *line = c->in.data + pos;
        const char *eol = strstr(line, "\r\n");
        rc = add_header(r, line, (size_t)(eol - line));
        if (rc != 0)
            return rc;
        pos = (size_t)(eol - c->in.data) + 2;
    }
    dbuf_consume(&c->in, head_len);

    te = httpc_header(r, "Transfer-Encoding");
    cl = httpc_header(r, "Content-Length");
    if (strcmp(method, "HEAD") == 0 || r->status / 100 == 1 || r->status == 204 ||
        r->status == 304) {
        c->mode = BODY_NONE;
        c->done = 1;
    } else if (te && has_token(te, "chunked")) {
        c->mode = BODY_CHUNKED;
        c->cs = CS_SIZE;
    } else if (cl) {
        char *e;
        errno = 0;
        c->left = strtoull(cl, &e, 10);
        if (errno || e == cl || *e)
            return HTTPC_EPROTO;
        c->mode = BODY_LENGTH;
        c->done = c->left == 0;
    } else {
        c->mode = BODY_CLOSE;
    }
    return 0;
}

/* Moves what can be decoded from c->in into `out`.  Returns the number of
 * body bytes appended (possibly 0), or an error. */
static int body_step(struct conn *c, struct dbuf *out, size_t *appended)
{
    *appended = 0;
    for (;;) {
        if (c->done)
            return 0;
        switch (c->mode) {
        case BODY_NONE:
            c->done = 1;
            return 0;
        case BODY_CLOSE:
            if (c->in.len == 0)
                return 0;
            if (dbuf_append(out, c->in.data, c->in.len) != 0)
                return HTTPC_ENOMEM;
            *appended += c->in.len;
            dbuf_consume(&c->in, c->in.len);
            return 0;
        case BODY_LENGTH: {
            size_t n = c->in.len < c->left ? c->in.len : (size_t)c->left;
            if (n == 0)
                return 0;
            if (dbuf_append(out, c->in.data, n) != 0)
                return HTTPC_ENOMEM;
            dbuf_consume(&c->in, n);
            *appended += n;
            c->left -= n;
            if (c->left == 0)
                c->done = 1;
            return 0;
        }
        case BODY_CHUNKED:
            break;
        }
        /* chunked */
        if (c->cs == CS_SIZE || c->cs == CS_TRAILER) {
            char *eol = c->in.data ? memchr(c->in.data, '\n', c->in.len) : NULL;
            size_t line_len;
            if (!eol) {
                if (c->in.len > MAX_CHUNK_LINE)
                    return HTTPC_EPROTO;
                return 0;
            }
            line_len = (size_t)(eol - c->in.data);
            if (line_len == 0 || c->in.data[line_len - 1] != '\r')
                return HTTPC_EPROTO;
            if (c->cs == CS_SIZE) {
                char *e;
                unsigned long long size;
                errno = 0;
                size = strtoull(c->in.data, &e, 16);
                if (errno || e == c->in.data || (*e != '\r' && *e != ';' && *e != ' '))
                    return HTTPC_EPROTO;
                dbuf_consume(&c->in, line_len + 1);
                if (size == 0) {
                    c->cs = CS_TRAILER;
                } else {
                    c->left = size;
                    c->cs = CS_DATA;
                }
            } else {
                dbuf_consume(&c->in, line_len + 1);
                if (line_len == 1)
                    c->done = 1;
            }
            continue;
        }
        if (c->cs == CS_DATA) {
            size_t n = c->in.len < c->left ? c->in.len : (size_t)c->left;
            if (n == 0)
                return 0;
            if (dbuf_append(out, c->in.data, n) != 0)
                return HTTPC_ENOMEM;
            dbuf_consume(&c->in, n);
            *appended += n;
            c->left -= n;
            if (c->left == 0)
                c->cs = CS_DATA_END;
            continue;
        }
        /* CS_DATA_END: the CRLF after a chunk's data */
        if (c->in.len < 2)
            return 0;
        if (c->in.data[0] != '\r' || c->in.data[1] != '\n')
            return HTTPC_EPROTO;
        dbuf_consume(&c->in, 2);
        c->cs = CS_SIZE;
    }
}

/* Reads body bytes into `out` until at least one arrives or the body ends.
 * >0: bytes appended; 0: the body is complete; <0: error (ETIMEOUT keeps
 * the state intact). */
static int body_read(struct conn *c, struct dbuf *out, int64_t deadline)
{
    for (;;) {
        size_t appended;
        int rc = body_step(c, out, &appended);
        if (rc < 0)
            return rc;
        if (appended > 0)
            return appended > INT32_MAX ? INT32_MAX : (int)appended;
        if (c->done)
            return 0;
        rc = conn_fill(c, deadline);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (c->mode == BODY_CLOSE) {
                c->done = 1;
                return 0;
            }
            return HTTPC_ECLOSED;
        }
    }
}

static int read_body_all(struct conn *c, int64_t deadline, struct httpc_response *r)
{
    struct dbuf body = {0};
    for (;;) {
        int rc = body_read(c, &body, deadline);
        if (rc < 0) {
            dbuf_free(&body);
            return rc;
        }
        if (rc == 0)
            break;
    }
    r->body_len = body.len;
    r->body = dbuf_steal(&body);
    return r->body ? 0 : HTTPC_ENOMEM;
}

static int build_request(struct dbuf *req, int port, const char *method, const char *path,
                         const char *const *headers, const char *body, size_t body_len)
{
    char line[128];
    int rc = 0;
    rc |= dbuf_puts(req, method);
    rc |= dbuf_puts(req, " ");
    rc |= dbuf_puts(req, path);
    snprintf(line, sizeof line, " HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n", port);
    rc |= dbuf_puts(req, line);
    for (size_t i = 0; headers && headers[i]; i++) {
        rc |= dbuf_puts(req, headers[i]);
        rc |= dbuf_puts(req, "\r\n");
    }
    if (body) {
        snprintf(line, sizeof line, "Content-Length: %zu\r\n", body_len);
        rc |= dbuf_puts(req, line);
    }
    rc |= dbuf_puts(req, "\r\n");
    if (body)
        rc |= dbuf_append(req, body, body_len);
    return rc ? HTTPC_ENOMEM : 0;
}

static void response_init(struct httpc_response *r)
{
    memset(r, 0, sizeof *r);
}

/* Connects, sends `raw`, reads the head.  On success *c is open. */
static int exchange_head(int port, const char *method, const char *raw, size_t raw_len,
                         int64_t deadline, struct conn *c, struct httpc_response *resp)
{
    int rc = conn_open(c, port, deadline);
    if (rc != 0)
        return rc;
    rc = conn_send(c, raw, raw_len, deadline);
    /* A server may answer and close before reading everything we sent; try
     * to read its answer anyway. */
    if (rc != 0 && rc != HTTPC_ECLOSED) {
        conn_close(c);
        return rc;
    }
    rc = read_head(c, method, deadline, resp);
    if (rc != 0) {
        conn_close(c);
        return rc;
    }
    return 0;
}

static int do_request(int port, const char *method, const char *raw, size_t raw_len,
                      int timeout_ms, struct httpc_response *resp)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS);
    struct conn c;
    int rc;

    response_init(resp);
    rc = exchange_head(port, method, raw, raw_len, deadline, &c, resp);
    if (rc == 0) {
        rc = read_body_all(&c, deadline, resp);
        conn_close(&c);
    }
    if (rc != 0)
        httpc_response_free(resp);
    return rc;
}

int httpc_request(int port, const char *method, const char *path, const char *const *headers,
                  const char *body, size_t body_len, int timeout_ms,
                  struct httpc_response *resp)
{
    struct dbuf req = {0};
    int rc = build_request(&req, port, method, path, headers, body, body_len);
    if (rc == 0)
        rc = do_request(port, method, req.data, req.len, timeout_ms, resp);
    else
        response_init(resp);
    dbuf_free(&req);
    return rc;
}

int httpc_raw(int port, const char *raw, size_t raw_len, int timeout_ms,
              struct httpc_response *resp)
{
    const char *method = strncmp(raw, "HEAD ", 5) == 0 ? "HEAD" : "GET";
    return do_request(port, method, raw, raw_len, timeout_ms, resp);
}

const char *httpc_header(const struct httpc_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->n_headers; i++)
        if (ascii_casecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

size_t httpc_header_count(const struct httpc_response *resp, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < resp->n_headers; i++)
        if (ascii_casecmp(resp->headers[i].name, name) == 0)
            n++;
    return n;
}

json_t *httpc_json(const struct httpc_response *resp)
{
    json_error_t jerr;
    if (!resp->body)
        return NULL;
    return json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY, &jerr);
}

void httpc_response_free(struct httpc_response *resp)
{
    for (size_t i = 0; i < resp->n_headers; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    free(resp->headers);
    free(resp->body);
    response_init(resp);
}

/* ---- SSE ----------------------------------------------------------------- */

struct httpc_sse {
    struct conn c;
    struct dbuf body; /* decoded body bytes not yet parsed into lines */
    int ended;
    unsigned comments;
    /* the block being assembled */
    struct dbuf raw;
    struct dbuf data;
    char *id;
    char *event;
    int has_data;
    int has_id;
    unsigned block_comments;
};

static void sse_block_reset(struct httpc_sse *s)
{
    s->raw.len = 0;
    if (s->raw.data)
        s->raw.data[0] = '\0';
    s->data.len = 0;
    if (s->data.data)
        s->data.data[0] = '\0';
    free(s->id);
    free(s->event);
    s->id = NULL;
    s->event = NULL;
    s->has_data = 0;
    s->has_id = 0;
    s->block_comments = 0;
}

int httpc_sse_open(int port, const char *method, const char *path, const char *const *headers,
                   const char *body, size_t body_len, int timeout_ms, struct httpc_response *head,
                   struct httpc_sse **out)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS);
    struct dbuf req = {0};
    struct conn c;
    const char *ct;
    int rc;

    *out = NULL;
    response_init(head);
    rc = build_request(&req, port, method, path, headers, body, body_len);
    if (rc == 0)
        rc = exchange_head(port, method, req.data, req.len, deadline, &c, head);
    dbuf_free(&req);
    if (rc != 0) {
        httpc_response_free(head);
        return rc;
    }
    ct = httpc_header(head, "Content-Type");
    if (head->status == 200 && ct && strncmp(ct, "text/event-stream", 17) == 0) {
        struct httpc_sse *s = calloc(1, sizeof *s);
        if (!s) {
            conn_close(&c);
            httpc_response_free(head);
            return HTTPC_ENOMEM;
        }
        s->c = c;
        *out = s;
        return 0;
    }
    rc = read_body_all(&c, deadline, head);
    conn_close(&c);
    if (rc != 0)
        httpc_response_free(head);
    return rc;
}

/* Finds one complete line at the start of s->body.  Returns its length
 * without the terminator and sets *term to the terminator's length; -1 if no
 * complete line is buffered yet. */
static long sse_line(const struct httpc_sse *s, size_t *term)
{
    for (size_t i = 0; i < s->body.len; i++) {
        char ch = s->body.data[i];
        if (ch == '\n') {
            *term = 1;
            return (long)i;
        }
        if (ch == '\r') {
            if (i + 1 < s->body.len) {
                *term = s->body.data[i + 1] == '\n' ? 2 : 1;
                return (long)i;
            }
            if (s->ended) {
                *term = 1;
                return (long)i;
            }
            return -1; /* a CRLF may be split across reads */
        }
    }
    return -1;
}

/* Processes one line (without terminator).  Returns 1 if it ended a block
 * that should be dispatched. */
static int sse_process_line(struct httpc_sse *s, const char *line, size_t len)
{
    const char *colon, *value;
    size_t name_len, value_len;

    if (len == 0)
        return s->has_data || s->has_id;
    if (line[0] == ':') {
        s->comments++;
        s->block_comments++;
        return 0;
    }
    colon = memchr(line, ':', len);
    if (colon) {
        name_len = (size_t)(colon - line);
        value = colon + 1;
        value_len = len - name_len - 1;
        if (value_len > 0 && value[0] == ' ') {
            value++;
            value_len--;
        }
    } else {
        name_len = len;
        value = line + len;
        value_len = 0;
    }
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        if (s->has_data)
            dbuf_append(&s->data, "\n", 1);
        dbuf_append(&s->data, value, value_len);
        if (!s->data.data)
            dbuf_append(&s->data, "", 0);
        s->has_data = 1;
    } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
        free(s->id);
        s->id = dup_range(value, value_len);
        s->has_id = 1;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        free(s->event);
        s->event = dup_range(value, value_len);
    }
    /* "retry" and unknown fields are ignored. */
    return 0;
}

int httpc_sse_next(struct httpc_sse *s, int timeout_ms, struct httpc_sse_event *ev)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    memset(ev, 0, sizeof *ev);
    for (;;) {
        size_t term = 0;
        long len = sse_line(s, &term);
        if (len >= 0) {
            int dispatch;
            dbuf_append(&s->raw, s->body.data, (size_t)len + term);
            dispatch = sse_process_line(s, s->body.data, (size_t)len);
            dbuf_consume(&s->body, (size_t)len + term);
            if (len == 0) {
                if (dispatch) {
                    ev->id = s->id;
                    s->id = NULL;
                    ev->event = s->event;
                    s->event = NULL;
                    ev->data_len = s->data.len;
                    ev->data = dup_range(s->data.data ? s->data.data : "", s->data.len);
                    ev->raw_len = s->raw.len;
                    ev->raw = dup_range(s->raw.data, s->raw.len);
                    ev->comments = s->block_comments;
                    sse_block_reset(s);
                    if (!ev->data || !ev->raw) {
                        httpc_sse_event_free(ev);
                        return HTTPC_ENOMEM;
                    }
                    return 1;
                }
                sse_block_reset(s);
            }
            continue;
        }
        if (s->ended)
            return 0;
        {
            int rc = body_read(&s->c, &s->body, deadline);
            if (rc == 0 || rc == HTTPC_ECLOSED)
                s->ended = 1; /* a stream cut mid-chunk is still an end */
            else if (rc < 0)
                return rc;
        }
    }
}

int httpc_sse_wait_closed(struct httpc_sse *s, int timeout_ms, unsigned *skipped)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    unsigned n = 0;
    int rc;
    for (;;) {
        struct httpc_sse_event ev;
        rc = httpc_sse_next(s, ms_left(deadline), &ev);
        if (rc != 1)
            break;
        httpc_sse_event_free(&ev);
        n++;
    }
    if (skipped)
        *skipped = n;
    return rc;
}

unsigned httpc_sse_comments(const struct httpc_sse *s)
{
    return s->comments;
}

void httpc_sse_event_free(struct httpc_sse_event *ev)
{
    free(ev->id);
    free(ev->event);
    free(ev->data);
    free(ev->raw);
    memset(ev, 0, sizeof *ev);
}

void httpc_sse_close(struct httpc_sse *s)
{
    if (!s)
        return;
    conn_close(&s->c);
    dbuf_free(&s->body);
    sse_block_reset(s);
    dbuf_free(&s->raw);
    dbuf_free(&s->data);
    free(s);
}
