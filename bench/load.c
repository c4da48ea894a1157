/* The load generator of bench/run.sh (docs/benchmarks.md): one client for
 * every system compared, so that client costs are the same on each side.
 * Everything goes to 127.0.0.1.
 *
 *   load post    C keep-alive connections, each one thread, each sending
 *                requests back to back for S seconds: appends.
 *   load get     the same with random pages: catch-up reads.
 *   load tail    M SSE subscribers read by one epoll thread while appenders
 *                post at a fixed rate; append-to-delivery latency, the
 *                server's CPU and RSS per connection.
 *   load restart starts a server (argv after "--") and times the first
 *                page it serves.
 *   load fill    pipelines appends over one connection (loading peers).
 *
 * Requests are templates.  Over HTTP (--proto http, the default) a template
 * is "METHOD PATH"; over Redis's protocol (--proto resp) it is a command
 * whose words become one RESP array.  In both, {k} is the key (connection
 * or stream index; random in `get`), {o} an offset (random in `get`), {o1}
 * that offset + 1, {ds} that offset as a Durable Streams offset of
 * --frame-byte frames, {body} the payload and {s} a per-connection counter.
 * --header adds one header line (a template too) to every HTTP request, e.g.
 * "Idempotency-Key: k{k}-{s}" for a key unique per request.
 *
 * Results go to stdout as one line of key=value pairs for run.sh to parse.
 * Plain C11 + POSIX, no project code (common/net.h). */
#include "common/net.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOAD_MAX_CONNS 1024

struct load_opts {
    int port;
    long pid;
    int resp;             /* Redis protocol instead of HTTP */
    int conns;
    int seconds;
    const char *req;      /* request template */
    const char *sse;      /* tail: subscription path template */
    const char *ctype;
    const char *body_tpl; /* the request body around {body}; default: {body} */
    const char *header;   /* an extra HTTP header line template, or NULL */
    int body_size;
    int keys;             /* get: keys to pick from; tail: streams */
    long long off_base;   /* get: offsets are base + random [0, span] */
    long long off_span;
    long long frame;      /* {ds}: bytes per Durable Streams frame */
    int expect;           /* the status (HTTP) a good answer has */
    size_t min_body;      /* get: a shorter body is an error (empty page) */
    int subs;             /* tail */
    double rate;          /* tail: appends per second, all streams together */
    long long count;      /* fill: appends per key */
    char **argv;          /* restart: the server's command line */
};

static struct load_opts load_o = {
    .conns = 64, .seconds = 10, .ctype = "application/json", .body_size = 400,
    .keys = 1, .frame = 405, .expect = 200, .subs = 1, .rate = 100, .count = 1000,
};

static atomic_int load_stop;
static atomic_llong load_ok, load_errors, load_bytes;

/* The payload: "lat:<ns>" then padding to --body-size bytes.  The marker
 * lets a subscriber tell when this append was written. */
static size_t load_payload(char *out, size_t cap, int64_t ns)
{
    int n = snprintf(out, cap, "lat:%" PRId64 "_", ns);
    size_t len = n > 0 ? (size_t)n : 0;
    while (len < (size_t)load_o.body_size && len + 1 < cap)
        out[len++] = 'x';
    out[len] = '\0';
    return len;
}

struct load_vars {
    long long k, o, s;
    const char *body;
};

/* Expands a template into out (NUL-terminated); its length, or -1. */
static long load_expand(const char *tpl, const struct load_vars *v, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = tpl; *p;) {
        char tmp[64];
        const char *put = NULL;
        size_t skip = 1;
        if (strncmp(p, "{k}", 3) == 0) {
            snprintf(tmp, sizeof tmp, "%lld", v->k);
            put = tmp, skip = 3;
        } else if (strncmp(p, "{o}", 3) == 0) {
            snprintf(tmp, sizeof tmp, "%lld", v->o);
            put = tmp, skip = 3;
        } else if (strncmp(p, "{o1}", 4) == 0) {
            snprintf(tmp, sizeof tmp, "%lld", v->o + 1);
            put = tmp, skip = 4;
        } else if (strncmp(p, "{s}", 3) == 0) {
            snprintf(tmp, sizeof tmp, "%lld", v->s);
            put = tmp, skip = 3;
        } else if (strncmp(p, "{ds}", 4) == 0) {
            snprintf(tmp, sizeof tmp, "%016d_%016lld", 0, v->o * load_o.frame);
            put = tmp, skip = 4;
        } else if (strncmp(p, "{body}", 6) == 0) {
            put = v->body ? v->body : "", skip = 6;
        }
        size_t len = put ? strlen(put) : 1;
        if (n + len + 1 > cap)
            return -1;
        memcpy(out + n, put ? put : p, len);
        n += len;
        p += skip;
    }
    out[n] = '\0';
    return (long)n;
}

/* Builds the request for the template `tpl` into out; its length or -1.
 * HTTP: "METHOD PATH", with `body` (may be NULL) as the request body.  RESP:
 * the expanded words as one command array. */
static long load_build(const char *tpl, const struct load_vars *v, char *out, size_t cap)
{
    char line[2048];
    if (load_expand(tpl, v, line, sizeof line) < 0)
        return -1;
    int n;
    if (load_o.resp) {
        int words = 0;
        for (char *w = line; *w; words++) {
            w += strcspn(w, " ");
            w += strspn(w, " ");
        }
        n = snprintf(out, cap, "*%d\r\n", words);
        for (char *w = line; *w && n > 0 && (size_t)n < cap;) {
            size_t len = strcspn(w, " ");
            n += snprintf(out + n, cap - (size_t)n, "$%zu\r\n%.*s\r\n", len, (int)len, w);
            w += len;
            w += strspn(w, " ");
        }
    } else {
        char *sp = strchr(line, ' ');
        if (!sp)
            return -1;
        *sp = '\0';
        char body[8192];
        const char *b = v->body;
        if (b && load_o.body_tpl) {
            if (load_expand(load_o.body_tpl, v, body, sizeof body) < 0)
                return -1;
            b = body;
        }
        size_t blen = b && strcmp(line, "GET") != 0 ? strlen(b) : 0;
        char header[600] = "";
        if (load_o.header) {
            long hn = load_expand(load_o.header, v, header, sizeof header - 2);
            if (hn < 0)
                return -1;
            memcpy(header + hn, "\r\n", 3);
        }
        n = snprintf(out, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     line, sp + 1, load_o.ctype, header, blen, blen ? b : "");
    }
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* ---- RESP replies ----------------------------------------------------------- */

/* Length of the one complete RESP value at p[0..n), 0 if incomplete, -1 if
 * malformed.  Sets *is_error for an error reply. */
static long load_resp_value(const char *p, size_t n, int *is_error)
{
    const char *crlf = memmem(p, n, "\r\n", 2);
    if (!crlf)
        return 0;
    size_t line = (size_t)(crlf - p) + 2;
    long long v = strtoll(p + 1, NULL, 10);
    switch (p[0]) {
    case '-':
        *is_error = 1;
        return (long)line;
    case '+':
    case ':':
        return (long)line;
    case '$':
        if (v < 0)
            return (long)line;
        return line + (size_t)v + 2 <= n ? (long)(line + (size_t)v + 2) : 0;
    case '*': {
        size_t at = line;
        for (long long i = 0; i < v; i++) {
            long r = load_resp_value(p + at, n - at, is_error);
            if (r <= 0)
                return r;
            at += (size_t)r;
        }
        return (long)at;
    }
    default:
        return -1;
    }
}

/* Reads one RESP reply: 200 for a good one, 500 for an error reply, -1 if the
 * connection broke.  *len is its size in bytes. */
static int load_resp_read(int fd, struct net_buf *b, size_t *len)
{
    if (b->used) {
        memmove(b->data, b->data + b->used, b->len - b->used);
        b->len -= b->used;
        b->used = 0;
    }
    for (;;) {
        int is_error = 0;
        long r = b->len ? load_resp_value(b->data, b->len, &is_error) : 0;
        if (r < 0)
            return -1;
        if (r > 0) {
            b->used = (size_t)r;
            *len = (size_t)r;
            return is_error ? 500 : 200;
        }
        if (b->cap - b->len < 4096) {
            size_t cap = b->cap ? b->cap * 2 : 65536;
            char *p = realloc(b->data, cap);
            if (!p)
                return -1;
            b->data = p;
            b->cap = cap;
        }
        ssize_t got = recv(fd, b->data + b->len, b->cap - b->len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        b->len += (size_t)got;
    }
}

/* ---- post / get --------------------------------------------------------------- */

static int load_is_get;

/* One keep-alive client connection and its buffers. */
struct load_conn {
    int fd;
    size_t cap; /* of req */
    char *req;
    char *body; /* the payload: --body-size + 64 bytes */
    struct net_buf in;
};

/* 0, or -1 with nothing left to close. */
static int load_conn_open(struct load_conn *c)
{
    *c = (struct load_conn){.cap = (size_t)load_o.body_size + 4096};
    c->req = malloc(c->cap);
    c->body = malloc((size_t)load_o.body_size + 64);
    c->fd = net_connect(load_o.port, 0);
    if (c->req && c->body && c->fd >= 0)
        return 0;
    if (c->fd >= 0)
        close(c->fd);
    free(c->req);
    free(c->body);
    return -1;
}

static void load_conn_close(struct load_conn *c)
{
    close(c->fd);
    net_buf_free(&c->in);
    free(c->req);
    free(c->body);
}

/* Sends the request the template makes of `v` and reads the answer: its
 * status (HTTP, or 200/500 for RESP) and *len its body's size, or -1 when
 * the connection broke. */
static int load_exchange(struct load_conn *c, const struct load_vars *v, size_t *len)
{
    long n = load_build(load_o.req, v, c->req, c->cap);
    if (n < 0 || net_write_all(c->fd, c->req, (size_t)n) != 0)
        return -1;
    const char *body;
    return load_o.resp ? load_resp_read(c->fd, &c->in, len)
                       : net_read_response(c->fd, &c->in, &body, len);
}

static void *load_worker(void *arg)
{
    long long index = (long long)(intptr_t)arg;
    unsigned seed = (unsigned)(index * 7919 + 17);
    struct load_conn c;
    if (load_conn_open(&c) != 0) {
        atomic_fetch_add(&load_errors, 1);
        return NULL;
    }
    long long s = 0;
    while (!atomic_load(&load_stop)) {
        struct load_vars v = {.k = index, .s = ++s, .body = c.body};
        if (load_is_get) {
            v.k = rand_r(&seed) % load_o.keys;
            v.o = load_o.off_base + (load_o.off_span ? rand_r(&seed) % (load_o.off_span + 1) : 0);
            v.body = NULL;
        } else {
            load_payload(c.body, (size_t)load_o.body_size + 64, net_now_ns());
        }
        size_t rlen;
        int status = load_exchange(&c, &v, &rlen);
        if (status < 0)
            break;
        if (status == load_o.expect && rlen >= load_o.min_body) {
            atomic_fetch_add(&load_ok, 1);
            atomic_fetch_add(&load_bytes, (long long)rlen);
        } else if (atomic_fetch_add(&load_errors, 1) < 3) {
            fprintf(stderr, "load: %.60s... answered %d (%zu bytes)\n", c.req, status, rlen);
        }
    }
    if (!atomic_load(&load_stop)) {
        atomic_fetch_add(&load_errors, 1);
        fprintf(stderr, "load: connection %lld ended early\n", index);
    }
    load_conn_close(&c);
    return NULL;
}

static int load_run_workers(void)
{
    pthread_t th[LOAD_MAX_CONNS];
    long long t0 = net_cpu_ticks(load_o.pid);
    int64_t start = net_now_ns();
    for (int i = 0; i < load_o.conns; i++)
        if (pthread_create(&th[i], NULL, load_worker, (void *)(intptr_t)i) != 0)
            return 1;
    net_sleep_ms(load_o.seconds * 1000);
    long long ok = atomic_load(&load_ok), bytes = atomic_load(&load_bytes);
    double secs = (double)(net_now_ns() - start) / 1e9;
    long long t1 = net_cpu_ticks(load_o.pid);
    atomic_store(&load_stop, 1);
    for (int i = 0; i < load_o.conns; i++)
        pthread_join(th[i], NULL);
    double cpu = load_o.pid && t0 >= 0 && t1 >= 0
                     ? 100.0 * (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / secs
                     : -1;
    printf("ops=%lld secs=%.2f ops_per_s=%.0f bytes_per_op=%.0f server_cpu_pct=%.0f errors=%lld\n",
           ok, secs, (double)ok / secs, ok ? (double)bytes / (double)ok : 0, cpu,
           (long long)atomic_load(&load_errors));
    return atomic_load(&load_errors) ? 1 : 0;
}

/* ---- tail ------------------------------------------------------------------------ */

struct load_sub {
    struct net_sse sse;
    int64_t last_marker; /* newest append marker seen */
};

static struct load_sub *load_subs;
static struct net_samples load_lat;
static atomic_int load_subs_ok;
static _Atomic int64_t load_measure_from; /* markers older than this are not counted */

/* A data line carrying a marker newer than the subscriber has seen is one
 * append delivered: its latency is a sample once measuring has started. */
static void load_sub_line(void *arg, char *line, int64_t now)
{
    struct load_sub *s = arg;
    const char *m = strncmp(line, "data:", 5) == 0 ? strstr(line, "lat:") : NULL;
    if (!m)
        return;
    int64_t t = strtoll(m + 4, NULL, 10);
    if (t <= s->last_marker)
        return;
    s->last_marker = t;
    int64_t from = atomic_load(&load_measure_from);
    if (from && t >= from)
        net_samples_add(&load_lat, (now - t) / 1000);
}

static void *load_sub_main(void *arg)
{
    int epfd = *(int *)arg;
    struct epoll_event evs[256];
    while (atomic_load(&load_stop) < 2) {
        int n = epoll_wait(epfd, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            struct load_sub *s = &load_subs[evs[i].data.u32];
            if (s->sse.fd < 0)
                continue;
            int was_ok = s->sse.headers_done;
            if (net_sse_read(&s->sse, load_sub_line, s) != 0) {
                atomic_fetch_add(&load_errors, 1);
                epoll_ctl(epfd, EPOLL_CTL_DEL, s->sse.fd, NULL);
                close(s->sse.fd);
                s->sse.fd = -1;
            } else if (!was_ok && s->sse.headers_done) {
                atomic_fetch_add(&load_subs_ok, 1);
            }
        }
    }
    return NULL;
}

static atomic_llong load_posts;

/* Appender `index` of `n` posts to streams index, index + n, ... in turn at
 * rate / n per second, on an absolute schedule so a slow answer does not
 * lower the rate.  The appenders' schedules interleave (appender i starts
 * i / rate after `start`), so the appends arrive one every 1 / rate, as
 * fanout_floor sends them, not n at once every n / rate. */
struct load_app {
    int index, n;
    int64_t start;
};

static void *load_appender(void *arg)
{
    const struct load_app *a = arg;
    struct load_conn c;
    if (load_conn_open(&c) != 0) {
        atomic_fetch_add(&load_errors, 1);
        return NULL;
    }
    int64_t period = (int64_t)(1e9 * a->n / load_o.rate);
    int64_t next = a->start + period * a->index / a->n;
    long long k = a->index, s = 0;
    while (!atomic_load(&load_stop)) {
        int64_t wait = next - net_now_ns();
        if (wait > 0)
            net_sleep_ms((int)(wait / 1000000));
        while (net_now_ns() < next) {
        }
        next += period;
        load_payload(c.body, (size_t)load_o.body_size + 64, net_now_ns());
        struct load_vars v = {.k = k, .s = ++s, .body = c.body};
        size_t rlen;
        if (load_exchange(&c, &v, &rlen) != load_o.expect) {
            atomic_fetch_add(&load_errors, 1);
            break;
        }
        atomic_fetch_add(&load_posts, 1);
        k += a->n;
        if (k >= load_o.keys)
            k = a->index;
    }
    load_conn_close(&c);
    return NULL;
}

static int load_tail(void)
{
    int epfd = epoll_create1(0);
    load_subs = calloc((size_t)load_o.subs, sizeof *load_subs);
    if (epfd < 0 || !load_subs)
        return 1;
    long rss0 = net_rss_kb(load_o.pid);
    pthread_t reader;
    if (pthread_create(&reader, NULL, load_sub_main, &epfd) != 0)
        return 1;
    for (int i = 0; i < load_o.subs; i++) {
        struct load_sub *s = &load_subs[i];
        struct load_vars v = {.k = i % load_o.keys};
        char path[512], req[768];
        s->sse.buf = malloc(NET_SSE_BUF);
        s->sse.fd = net_connect(load_o.port, 0);
        /* HTTP/1.1 like browsers and the SDKs: a server may frame the
         * stream differently for HTTP/1.0 clients, which are rare. */
        int n = load_expand(load_o.sse, &v, path, sizeof path) < 0
                    ? -1
                    : snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
        if (!s->sse.buf || s->sse.fd < 0 || n < 0 ||
            net_write_all(s->sse.fd, req, (size_t)n) != 0) {
            fprintf(stderr, "load: subscriber %d: %s\n", i, strerror(errno));
            return 1;
        }
        if (fcntl(s->sse.fd, F_SETFL, fcntl(s->sse.fd, F_GETFL) | O_NONBLOCK) != 0)
            return 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->sse.fd, &ev) != 0)
            return 1;
    }
    int64_t until = net_now_ns() + 60 * (int64_t)1000000000;
    while (atomic_load(&load_subs_ok) + atomic_load(&load_errors) < load_o.subs &&
           net_now_ns() < until)
        net_sleep_ms(20);
    net_sleep_ms(1000); /* settle: every stream parked */
    long rss1 = net_rss_kb(load_o.pid);

    int napp = load_o.keys < 8 ? load_o.keys : 8;
    struct load_app apps[8];
    pthread_t ath[8];
    long long c0 = net_cpu_ticks(load_o.pid);
    int64_t start = net_now_ns();
    atomic_store(&load_measure_from, start);
    for (int i = 0; i < napp; i++) {
        apps[i] = (struct load_app){.index = i, .n = napp, .start = start};
        if (pthread_create(&ath[i], NULL, load_appender, &apps[i]) != 0)
            return 1;
    }
    net_sleep_ms(load_o.seconds * 1000);
    atomic_store(&load_stop, 1);
    for (int i = 0; i < napp; i++)
        pthread_join(ath[i], NULL);
    double secs = (double)(net_now_ns() - start) / 1e9;
    long long c1 = net_cpu_ticks(load_o.pid);
    net_sleep_ms(2000); /* deliveries still under way */
    long rss2 = net_rss_kb(load_o.pid);
    atomic_store(&load_stop, 2);
    pthread_join(reader, NULL);

    long long posts = atomic_load(&load_posts);
    long long expected = 0;
    for (int k = 0; k < load_o.keys; k++) {
        /* posts went round-robin: stream k got about posts / keys of them */
        long long subs_k = load_o.subs / load_o.keys + (k < load_o.subs % load_o.keys);
        expected += subs_k * (posts / load_o.keys + (k < posts % load_o.keys));
    }
    net_samples_sort(&load_lat);
    printf("subs=%d streams=%d posts=%lld posts_per_s=%.1f samples=%zu expected=%lld "
           "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f server_cpu_pct=%.0f rss_before_kb=%ld "
           "rss_subs_kb=%ld rss_after_kb=%ld rss_per_sub_b=%.0f errors=%lld\n",
           load_o.subs, load_o.keys, posts, (double)posts / secs, load_lat.n, expected,
           net_samples_ms(&load_lat, 0.5), net_samples_ms(&load_lat, 0.99),
           net_samples_ms(&load_lat, 1), 100.0 * (double)(c1 - c0) / (double)sysconf(_SC_CLK_TCK) / secs, rss0, rss1,
           rss2, 1024.0 * (double)(rss1 - rss0) / load_o.subs,
           (long long)atomic_load(&load_errors));
    for (int i = 0; i < load_o.subs; i++) {
        if (load_subs[i].sse.fd >= 0)
            close(load_subs[i].sse.fd);
        free(load_subs[i].sse.buf);
    }
    free(load_subs);
    net_samples_free(&load_lat);
    close(epfd);
    return atomic_load(&load_errors) ? 1 : 0;
}

/* ---- restart ---------------------------------------------------------------------- */

static int load_restart(void)
{
    char path[512];
    struct load_vars v = {0};
    if (load_expand(load_o.req, &v, path, sizeof path) < 0)
        return 2;
    int64_t t0 = net_now_ns();
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execv(load_o.argv[0], load_o.argv);
        _exit(127);
    }
    int status = -1;
    int64_t until = t0 + 60 * (int64_t)1000000000;
    const char *target = strchr(path, ' '); /* the template is "GET PATH" */
    while (target && net_now_ns() < until) {
        status = net_request(load_o.port, "GET", target + 1, NULL, NULL);
        if (status == load_o.expect)
            break;
        usleep(200);
    }
    int64_t t1 = net_now_ns();
    long rss = net_rss_kb(pid);
    net_sleep_ms(1000);
    long rss_idle = net_rss_kb(pid);
    kill(pid, SIGTERM);
    int ws;
    waitpid(pid, &ws, 0);
    printf("first_page_ms=%.1f status=%d rss_kb=%ld rss_1s_kb=%ld\n", (double)(t1 - t0) / 1e6,
           status, rss, rss_idle);
    return status == load_o.expect ? 0 : 1;
}

/* ---- fill ------------------------------------------------------------------------- */

struct load_fill {
    int fd;
    long long total;
};

static void *load_fill_reader(void *arg)
{
    struct load_fill *f = arg;
    struct net_buf b = {0};
    for (long long i = 0; i < f->total; i++) {
        size_t len;
        const char *body;
        int st = load_o.resp ? load_resp_read(f->fd, &b, &len)
                             : net_read_response(f->fd, &b, &body, &len);
        if (st != load_o.expect) {
            if (atomic_fetch_add(&load_errors, 1) < 3)
                fprintf(stderr, "load: fill answer %lld: %d\n", i, st);
            if (st < 0)
                break;
        }
    }
    net_buf_free(&b);
    return NULL;
}

/* Appends --count entries to each of --keys keys over one pipelined
 * connection: key-major, so {o1} runs 1..count within a key. */
static int load_fill_run(void)
{
    struct load_fill f = {.fd = net_connect(load_o.port, 0),
                          .total = load_o.count * load_o.keys};
    if (f.fd < 0)
        return 1;
    pthread_t reader;
    if (pthread_create(&reader, NULL, load_fill_reader, &f) != 0)
        return 1;
    size_t cap = (size_t)load_o.body_size + 4096, out_cap = 1 << 20, out_len = 0;
    char *req = malloc(cap), *body = malloc((size_t)load_o.body_size + 64), *out = malloc(out_cap);
    int64_t start = net_now_ns();
    int rc = 0;
    for (long long k = 0; k < load_o.keys && req && body && out && rc == 0; k++) {
        for (long long o = 0; o < load_o.count; o++) {
            load_payload(body, (size_t)load_o.body_size + 64, 0);
            struct load_vars v = {.k = k, .o = o, .body = body};
            long n = load_build(load_o.req, &v, req, cap);
            if (n < 0) {
                rc = 1;
                break;
            }
            if (out_len + (size_t)n > out_cap) {
                if (net_write_all(f.fd, out, out_len) != 0) {
                    rc = 1;
                    break;
                }
                out_len = 0;
            }
            memcpy(out + out_len, req, (size_t)n);
            out_len += (size_t)n;
        }
    }
    if (rc == 0 && out_len && net_write_all(f.fd, out, out_len) != 0)
        rc = 1;
    if (rc != 0)
        shutdown(f.fd, SHUT_RDWR);
    pthread_join(reader, NULL);
    close(f.fd);
    printf("filled=%lld secs=%.2f errors=%lld\n", f.total, (double)(net_now_ns() - start) / 1e9,
           (long long)atomic_load(&load_errors));
    free(req);
    free(body);
    free(out);
    return rc || atomic_load(&load_errors) ? 1 : 0;
}

/* ---- main -------------------------------------------------------------------------- */

static int load_usage(void)
{
    fprintf(stderr,
            "usage: load post|get|tail|restart|fill --port P [--pid SERVER_PID] [--proto http|resp]\n"
            "         [--conns C] [--seconds S] [--req TEMPLATE] [--sse TEMPLATE]\n"
            "         [--content-type T] [--header TEMPLATE] [--body TEMPLATE] [--body-size N]\n"
            "         [--keys K] [--offset BASE SPAN]\n"
            "         [--frame-bytes N] [--expect STATUS] [--min-body N] [--subs M]\n"
            "         [--rate PER_S] [--count N] [-- SERVER ARGV...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return load_usage();
    const char *mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            load_o.argv = argv + i + 1;
            break;
        }
        if (!v)
            return load_usage();
        i++;
        if (strcmp(a, "--port") == 0)
            load_o.port = atoi(v);
        else if (strcmp(a, "--pid") == 0)
            load_o.pid = atol(v);
        else if (strcmp(a, "--proto") == 0)
            load_o.resp = strcmp(v, "resp") == 0;
        else if (strcmp(a, "--conns") == 0)
            load_o.conns = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            load_o.seconds = atoi(v);
        else if (strcmp(a, "--req") == 0)
            load_o.req = v;
        else if (strcmp(a, "--sse") == 0)
            load_o.sse = v;
        else if (strcmp(a, "--content-type") == 0)
            load_o.ctype = v;
        else if (strcmp(a, "--header") == 0)
            load_o.header = v;
        else if (strcmp(a, "--body") == 0)
            load_o.body_tpl = v;
        else if (strcmp(a, "--body-size") == 0)
            load_o.body_size = atoi(v);
        else if (strcmp(a, "--keys") == 0)
            load_o.keys = atoi(v);
        else if (strcmp(a, "--offset") == 0 && i + 1 < argc) {
            load_o.off_base = atoll(v);
            load_o.off_span = atoll(argv[++i]);
        } else if (strcmp(a, "--frame-bytes") == 0)
            load_o.frame = atoll(v);
        else if (strcmp(a, "--expect") == 0)
            load_o.expect = atoi(v);
        else if (strcmp(a, "--min-body") == 0)
            load_o.min_body = (size_t)atoll(v);
        else if (strcmp(a, "--subs") == 0)
            load_o.subs = atoi(v);
        else if (strcmp(a, "--rate") == 0)
            load_o.rate = atof(v);
        else if (strcmp(a, "--count") == 0)
            load_o.count = atoll(v);
        else
            return load_usage();
    }
    if (load_o.port <= 0 || load_o.conns < 1 || load_o.conns > LOAD_MAX_CONNS ||
        load_o.keys < 1 || load_o.body_size < 32 || load_o.rate <= 0)
        return load_usage();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            perror("load: setrlimit");
    }
    if (strcmp(mode, "post") == 0 && load_o.req)
        return load_run_workers();
    if (strcmp(mode, "get") == 0 && load_o.req) {
        load_is_get = 1;
        return load_run_workers();
    }
    if (strcmp(mode, "tail") == 0 && load_o.req && load_o.sse && load_o.subs > 0)
        return load_tail();
    if (strcmp(mode, "restart") == 0 && load_o.req && load_o.argv && load_o.argv[0])
        return load_restart();
    if (strcmp(mode, "fill") == 0 && load_o.req)
        return load_fill_run();
    return load_usage();
}
