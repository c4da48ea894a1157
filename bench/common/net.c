/* Loopback HTTP plumbing for the benchmark clients; see net.h. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t net_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void net_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int net_connect(int port, int nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

int net_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

void net_buf_free(struct net_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = b->used = 0;
}

/* Makes sure b holds at least `want` bytes, reading more; 0 or -1. */
static int net_fill(int fd, struct net_buf *b, size_t want)
{
    while (b->len < want) {
        if (b->cap < want + 1 || b->len + 1 >= b->cap) {
            size_t cap = b->cap ? b->cap : 65536;
            while (cap < want + 1 || cap <= b->len + 1)
                cap *= 2;
            char *p = realloc(b->data, cap);
            if (!p)
                return -1;
            b->data = p;
            b->cap = cap;
        }
        ssize_t r = recv(fd, b->data + b->len, b->cap - b->len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b->len += (size_t)r;
    }
    return 0;
}

static const char *net_header(const char *head, size_t head_len, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = head; p + n < head + head_len; p++)
        if ((p == head || p[-1] == '\n') && strncasecmp(p, name, n) == 0)
            return p + n;
    return NULL;
}

int net_read_response(int fd, struct net_buf *b, const char **body, size_t *body_len)
{
    /* The previous response was kept until now so its body stayed valid. */
    if (b->used) {
        memmove(b->data, b->data + b->used, b->len - b->used);
        b->len -= b->used;
        b->used = 0;
    }
    size_t head = 0;
    for (;;) {
        char *end = b->len ? memmem(b->data, b->len, "\r\n\r\n", 4) : NULL;
        if (end) {
            head = (size_t)(end - b->data) + 4;
            break;
        }
        if (net_fill(fd, b, b->len + 1) != 0)
            return -1;
    }
    int status = 0;
    if (sscanf(b->data, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    const char *te = net_header(b->data, head, "transfer-encoding:");
    size_t total;
    if (te && strncasecmp(te + strspn(te, " "), "chunked", 7) == 0) {
        /* Chunks are moved down over their size lines so the body ends up
         * contiguous right after the head. */
        size_t out = head, in = head;
        for (;;) {
            char *crlf;
            while (!(crlf = memmem(b->data + in, b->len - in, "\r\n", 2)))
                if (net_fill(fd, b, b->len + 1) != 0)
                    return -1;
            size_t n = strtoul(b->data + in, NULL, 16);
            size_t data = (size_t)(crlf - b->data) + 2;
            if (net_fill(fd, b, data + n + 2) != 0)
                return -1;
            memmove(b->data + out, b->data + data, n);
            out += n;
            in = data + n + 2;
            if (n == 0)
                break;
        }
        *body = b->data + head;
        *body_len = out - head;
        /* Close the gap left by the framing so what follows is next. */
        memmove(b->data + out, b->data + in, b->len - in);
        b->len -= in - out;
        total = out;
    } else {
        const char *cl = net_header(b->data, head, "content-length:");
        size_t n = cl ? strtoul(cl, NULL, 10) : 0;
        if (net_fill(fd, b, head + n) != 0)
            return -1;
        *body = b->data + head;
        *body_len = n;
        total = head + n;
    }
    b->used = total;
    return status;
}

int net_request(int port, const char *method, const char *path, const char *content_type,
                const char *body)
{
    int fd = net_connect(port, 0);
    if (fd < 0)
        return -1;
    char req[1024];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                     method, path, content_type ? content_type : "application/json", blen);
    struct net_buf b = {0};
    const char *rb;
    size_t rlen;
    int status = -1;
    if (n > 0 && (size_t)n < sizeof req && net_write_all(fd, req, (size_t)n) == 0 &&
        (blen == 0 || net_write_all(fd, body, blen) == 0))
        status = net_read_response(fd, &b, &rb, &rlen);
    net_buf_free(&b);
    close(fd);
    return status;
}

/* Appends body bytes to the line buffer, calling `fn` for each complete
 * line.  -1 when a line outgrows the buffer. */
static int net_sse_body(struct net_sse *s, const char *p, size_t n, net_sse_line_fn fn,
                        void *arg, int64_t now)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (s->len + take >= NET_SSE_BUF)
            return -1;
        memcpy(s->buf + s->len, p, take);
        s->len += take;
        if (!nl)
            return 0;
        s->buf[s->len] = '\0';
        fn(arg, s->buf, now);
        s->len = 0;
        p = nl + 1;
        n -= take + 1;
    }
    return 0;
}

/* Undoes chunked framing: the data of each chunk goes to net_sse_body().
 * -1 on a malformed size line. */
static int net_sse_dechunk(struct net_sse *s, const char *p, size_t n, net_sse_line_fn fn,
                           void *arg, int64_t now)
{
    while (n) {
        if (s->chunk_state == 1) {
            size_t take = n < s->chunk_left ? n : s->chunk_left;
            if (net_sse_body(s, p, take, fn, arg, now) != 0)
                return -1;
            p += take;
            n -= take;
            if ((s->chunk_left -= take) == 0)
                s->chunk_state = 2;
            continue;
        }
        char c = *p++;
        n--;
        if (c != '\n') {
            if (s->chunk_state == 0) {
                if (s->size_len + 1 >= sizeof s->size_line)
                    return -1;
                s->size_line[s->size_len++] = c;
            }
            continue;
        }
        if (s->chunk_state == 2) { /* the CRLF that ends a chunk's data */
            s->chunk_state = 0;
            continue;
        }
        s->size_line[s->size_len] = '\0';
        char *end;
        unsigned long size = strtoul(s->size_line, &end, 16);
        if (end == s->size_line)
            return -1;
        s->size_len = 0;
        if (size == 0)
            return -1; /* the last chunk: the stream ended */
        s->chunk_left = size;
        s->chunk_state = 1;
    }
    return 0;
}

/* One recv without blocking: its length, 0 when nothing is there yet, -1
 * when the stream broke or ended. */
static ssize_t net_recv_now(int fd, char *p, size_t cap)
{
    for (;;) {
        ssize_t r = recv(fd, p, cap, 0);
        if (r > 0)
            return r;
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    }
}

int net_sse_read(struct net_sse *s, net_sse_line_fn fn, void *arg)
{
    char raw[NET_SSE_BUF];
    for (;;) {
        char *p = raw;
        size_t n;
        if (!s->headers_done) {
            if (s->len + 4096 > NET_SSE_BUF)
                return -1;
            ssize_t r = net_recv_now(s->fd, s->buf + s->len, NET_SSE_BUF - 1 - s->len);
            if (r <= 0)
                return (int)r;
            s->len += (size_t)r;
            s->buf[s->len] = '\0';
            char *end = strstr(s->buf, "\r\n\r\n");
            if (!end)
                continue;
            if (strncmp(s->buf, "HTTP/1.", 7) != 0 || strncmp(s->buf + 8, " 200", 4) != 0)
                return -1;
            size_t head = (size_t)(end + 4 - s->buf);
            const char *te = net_header(s->buf, head, "transfer-encoding:");
            s->chunked = te && strstr(te, "chunked") && strstr(te, "chunked") < end;
            s->headers_done = 1;
            n = s->len - head;
            memcpy(raw, s->buf + head, n);
            s->len = 0;
        } else {
            ssize_t r = net_recv_now(s->fd, raw, sizeof raw);
            if (r <= 0)
                return (int)r;
            n = (size_t)r;
        }
        int64_t now = net_now_ns();
        int rc = s->chunked ? net_sse_dechunk(s, p, n, fn, arg, now)
                            : net_sse_body(s, p, n, fn, arg, now);
        if (rc != 0)
            return -1;
    }
}

void net_samples_add(struct net_samples *s, int64_t us)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1 << 16;
        uint32_t *p = realloc(s->us, cap * sizeof *p);
        if (!p)
            return;
        s->us = p;
        s->cap = cap;
    }
    s->us[s->n++] = us < 0 ? 0 : (uint32_t)(us > 4000000000LL ? 4000000000LL : us);
}

static int net_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void net_samples_sort(struct net_samples *s)
{
    if (s->n)
        qsort(s->us, s->n, sizeof *s->us, net_cmp_u32);
}

double net_samples_ms(const struct net_samples *s, double q)
{
    if (!s->n)
        return -1;
    size_t i = (size_t)((double)s->n * q);
    return s->us[i < s->n ? i : s->n - 1] / 1000.0;
}

void net_samples_free(struct net_samples *s)
{
    free(s->us);
    s->us = NULL;
    s->n = s->cap = 0;
}

long net_rss_kb(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

long long net_cpu_ticks(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which may hold spaces: state is 3rd,
     * utime 14th and stime 15th. */
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}
