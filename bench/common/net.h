/* Loopback HTTP plumbing shared by the benchmark clients (bench/soak/soak.c,
 * bench/load.c): blocking keep-alive requests, response framing
 * (Content-Length or chunked), and the figures read from /proc about a
 * server under test.  Plain C11 + POSIX, no project code: the benchmarks
 * measure servers from outside.  Not thread-safe per connection; every
 * function here is safe to call from several threads on distinct fds. */
#ifndef SJ_BENCH_NET_H
#define SJ_BENCH_NET_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t net_now_ns(void);

void net_sleep_ms(int ms);

/* A TCP connection to 127.0.0.1:port with TCP_NODELAY, or -1.  With
 * `nonblock` the connect may still be in progress on return. */
int net_connect(int port, int nonblock);

/* 0 once all of p[0..n) is sent, -1 on error. */
int net_write_all(int fd, const void *p, size_t n);

/* A receive buffer that keeps bytes read past one response for the next. */
struct net_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t used; /* bytes of the last response, dropped at the next read */
};

void net_buf_free(struct net_buf *b);

/* Reads one response on a keep-alive connection: returns its status code and
 * sets *body and *body_len (borrowed: valid until the next call on `b`) to the
 * body with any chunked framing removed, or returns -1 when the connection
 * broke or the response is malformed. */
int net_read_response(int fd, struct net_buf *b, const char **body, size_t *body_len);

/* One request on a fresh connection (set-up only); the status or -1.
 * `body` may be NULL. */
int net_request(int port, const char *method, const char *path, const char *content_type,
                const char *body);

/* ---- SSE streams ------------------------------------------------------ */

#define NET_SSE_BUF 65536

/* One subscriber's stream, read without blocking after its request was sent.
 * Over HTTP/1.1, as browsers and the SDKs ask, the body usually arrives
 * chunked; net_sse_read() undoes the framing so callers see the event
 * stream's lines either way. */
struct net_sse {
    int fd;
    int headers_done; /* the status was 200 and the headers are consumed */
    char *buf;        /* NET_SSE_BUF bytes, the caller's: the unfinished line */
    size_t len;
    int chunked;        /* Transfer-Encoding: chunked */
    size_t chunk_left;  /* data bytes left in the current chunk */
    int chunk_state;    /* 0: size line, 1: data, 2: the CRLF after data */
    char size_line[24]; /* the size line read so far */
    size_t size_len;
};

/* Called for each complete line, without its newline; `now` is when the
 * bytes that completed it were read. */
typedef void (*net_sse_line_fn)(void *arg, char *line, int64_t now);

/* Reads what has arrived: 0 once drained, -1 when the stream broke, its
 * status was not 200 or a line outgrew the buffer. */
int net_sse_read(struct net_sse *s, net_sse_line_fn fn, void *arg);

/* ---- latency samples ---------------------------------------------------- */

struct net_samples {
    uint32_t *us; /* microseconds */
    size_t n;
    size_t cap;
};

/* Adds one sample (a sample lost to a failed allocation is dropped). */
void net_samples_add(struct net_samples *s, int64_t us);

/* Sorts the samples; net_samples_ms() needs them sorted. */
void net_samples_sort(struct net_samples *s);

/* The q-quantile (0 to 1, 1 is the max) in milliseconds, -1 with no samples. */
double net_samples_ms(const struct net_samples *s, double q);

void net_samples_free(struct net_samples *s);

/* VmRSS of process `pid` in kB, or -1. */
long net_rss_kb(long pid);

/* User + system CPU time of process `pid` in clock ticks, or -1. */
long long net_cpu_ticks(long pid);

#endif
