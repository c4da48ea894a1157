/* The integration tests' WebSocket client (wsc.h). */
#include "wsc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/sha1.h"

struct wsc {
    int fd;
    unsigned char *in; /* received, not yet parsed */
    size_t in_len, in_cap;
    unsigned seed;
};

static int64_t wsc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads more into w->in, waiting until `deadline`: 0, -1 timeout, -2 closed. */
static int wsc_fill(struct wsc *w, int64_t deadline)
{
    if (w->in_cap - w->in_len < 65536) {
        size_t cap = w->in_cap * 2 + 65536;
        unsigned char *n = realloc(w->in, cap);
        if (!n)
            return -2;
        w->in = n;
        w->in_cap = cap;
    }
    for (;;) {
        int64_t left = deadline - wsc_now();
        if (left < 0)
            return -1;
        struct pollfd p = { .fd = w->fd, .events = POLLIN };
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -1;
        ssize_t n = recv(w->fd, w->in + w->in_len, w->in_cap - w->in_len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return -2;
        w->in_len += (size_t)n;
        return 0;
    }
}

static void wsc_consume(struct wsc *w, size_t n)
{
    memmove(w->in, w->in + n, w->in_len - n);
    w->in_len -= n;
}

int wsc_send_raw(struct wsc *w, const void *data, size_t len)
{
    const char *p = data;
    int64_t deadline = wsc_now() + 10000;
    while (len) {
        ssize_t n = send(w->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pf = { .fd = w->fd, .events = POLLOUT };
            if (wsc_now() > deadline || poll(&pf, 1, 100) < 0)
                return -1;
            continue;
        }
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int wsc_send_frame(struct wsc *w, int opcode, int fin, const void *data, size_t len)
{
    unsigned char *f = malloc(len + 14);
    if (!f)
        return -1;
    size_t h = 2;
    f[0] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        f[1] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        f[1] = 0x80 | 126;
        f[2] = (unsigned char)(len >> 8);
        f[3] = (unsigned char)len;
        h = 4;
    } else {
        f[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            f[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    unsigned char mask[4];
    for (int i = 0; i < 4; i++) {
        w->seed = w->seed * 1103515245u + 12345u;
        mask[i] = (unsigned char)(w->seed >> 16);
    }
    memcpy(f + h, mask, 4);
    for (size_t i = 0; i < len; i++)
        f[h + 4 + i] = (unsigned char)(((const unsigned char *)data)[i] ^ mask[i & 3]);
    int rc = wsc_send_raw(w, f, h + 4 + len);
    free(f);
    return rc;
}

int wsc_send_text(struct wsc *w, const char *text)
{
    return wsc_send_frame(w, 1, 1, text, strlen(text));
}

int wsc_recv(struct wsc *w, int timeout_ms, struct wsc_msg *m)
{
    memset(m, 0, sizeof *m);
    int64_t deadline = wsc_now() + timeout_ms;
    for (;;) {
        if (w->in_len >= 2) {
            if ((w->in[0] & 0x70) || (w->in[1] & 0x80))
                return -3;
            uint64_t len = w->in[1] & 0x7f;
            size_t h = 2;
            if (len == 126 && w->in_len >= 4) {
                len = (uint64_t)w->in[2] << 8 | w->in[3];
                h = 4;
            } else if (len == 127 && w->in_len >= 10) {
                len = 0;
                for (int i = 0; i < 8; i++)
                    len = len << 8 | w->in[2 + i];
                h = 10;
            } else if (len >= 126) {
                h = 0; /* header incomplete */
            }
            if (h && w->in_len - h >= len) {
                m->opcode = w->in[0] & 0x0f;
                const unsigned char *p = w->in + h;
                size_t n = (size_t)len;
                if (m->opcode == 8) {
                    m->code = n >= 2 ? (unsigned)p[0] << 8 | p[1] : 1005;
                    if (n >= 2) {
                        p += 2;
                        n -= 2;
                    }
                }
                m->data = malloc(n + 1);
                if (!m->data)
                    return -2;
                memcpy(m->data, p, n);
                m->data[n] = 0;
                m->len = n;
                wsc_consume(w, h + (size_t)len);
                return 0;
            }
        }
        int rc = wsc_fill(w, deadline);
        if (rc)
            return rc;
    }
}

void wsc_msg_free(struct wsc_msg *m)
{
    free(m->data);
    m->data = NULL;
}

void wsc_free(struct wsc *w)
{
    if (!w)
        return;
    close(w->fd);
    free(w->in);
    free(w);
}

/* Finds the end of the response head in w->in: its length, or 0. */
static size_t wsc_head_end(const struct wsc *w)
{
    for (size_t i = 3; i < w->in_len; i++)
        if (memcmp(w->in + i - 3, "\r\n\r\n", 4) == 0)
            return i + 1;
    return 0;
}

/* The value of header `name` in the head (NUL-terminated), copied to out. */
static int wsc_head_header(const char *head, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n >= size)
                return -1;
            memcpy(out, v, n);
            out[n] = 0;
            return 0;
        }
    }
    return -1;
}

int wsc_open(int port, const char *path, const char *const *headers, int rcvbuf, int timeout_ms,
             struct wsc **out, int *status, char **body)
{
    *out = NULL;
    *status = 0;
    *body = NULL;
    struct wsc *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->seed = (unsigned)wsc_now() ^ (unsigned)port;
    w->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (w->fd < 0) {
        free(w);
        return -1;
    }
    if (rcvbuf > 0 && setsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0) {
        wsc_free(w);
        return -1;
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(w->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        wsc_free(w);
        return -1;
    }
    unsigned char raw[16];
    for (int i = 0; i < 16; i++) {
        w->seed = w->seed * 1103515245u + 12345u;
        raw[i] = (unsigned char)(w->seed >> 16);
    }
    char key[BASE64_ENCODED_SIZE(16)];
    base64_encode(raw, sizeof raw, key);
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n",
                     path, port, key);
    for (size_t i = 0; headers && headers[i] && n > 0 && (size_t)n < sizeof req; i++)
        n += snprintf(req + n, sizeof req - (size_t)n, "%s\r\n", headers[i]);
    if (n <= 0 || (size_t)n + 2 >= sizeof req) {
        wsc_free(w);
        return -1;
    }
    memcpy(req + n, "\r\n", 3);
    if (wsc_send_raw(w, req, (size_t)n + 2) != 0) {
        wsc_free(w);
        return -1;
    }
    int64_t deadline = wsc_now() + timeout_ms;
    size_t end;
    while (!(end = wsc_head_end(w)))
        if (wsc_fill(w, deadline) != 0) {
            wsc_free(w);
            return -1;
        }
    char *head = malloc(end + 1);
    if (!head) {
        wsc_free(w);
        return -1;
    }
    memcpy(head, w->in, end);
    head[end] = 0;
    wsc_consume(w, end);
    if (sscanf(head, "HTTP/1.%*d %d", status) != 1)
        *status = 0;
    char accept[64];
    if (*status != 101) {
        char len_s[32];
        size_t len = 0;
        if (wsc_head_header(head, "Content-Length", len_s, sizeof len_s) == 0)
            len = strtoul(len_s, NULL, 10);
        while (w->in_len < len && wsc_fill(w, deadline) == 0)
            ;
        if (w->in_len >= len && (*body = malloc(len + 1))) {
            memcpy(*body, w->in, len);
            (*body)[len] = 0;
        }
        free(head);
        wsc_free(w);
        return -1;
    }
    /* The accept key the RFC prescribes for our key. */
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    struct sha1 s;
    unsigned char d[SHA1_DIGEST_LEN];
    char want[BASE64_ENCODED_SIZE(SHA1_DIGEST_LEN)];
    sha1_init(&s);
    sha1_update(&s, key, strlen(key));
    sha1_update(&s, guid, sizeof guid - 1);
    sha1_final(&s, d);
    base64_encode(d, sizeof d, want);
    int ok = wsc_head_header(head, "Sec-WebSocket-Accept", accept, sizeof accept) == 0 &&
             strcmp(accept, want) == 0;
    free(head);
    if (!ok) {
        fprintf(stderr, "wsc: wrong or missing Sec-WebSocket-Accept\n");
        wsc_free(w);
        *status = 0;
        return -1;
    }
    *out = w;
    return 0;
}
