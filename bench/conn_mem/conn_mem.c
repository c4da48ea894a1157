/* What one connection costs the server in RSS (issue 13, bug 2): opens N
 * connections of one kind against a running server, waits until the
 * server's RSS settles, and prints the RSS before and after and the
 * difference per connection.  Kinds:
 *   idle  N SSE subscribers at the tail of a quiet session (they read the
 *         ": connected" comment, then nothing comes);
 *   slow  N SSE subscribers from the start of a session holding E events of
 *         B bytes each, which never read a byte;
 *   page  N GET /events requests for the whole session, never read.
 * The session is filled first (mock echo turns: a message of B bytes
 * journals six events of about B bytes each).  Loopback only; every wait is
 * bounded.  Not a test: bench/conn_mem/run.sh drives it.
 *
 * usage: conn_mem --port P --pid PID --kind idle|slow|page --conns N
 *                 [--events E --event-bytes B] [--http10] [--session NAME] */
#include "../common/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define CM_SETTLE_MS 1500  /* RSS unchanged this long counts as settled */
#define CM_SETTLE_MAX_MS 30000

struct cm_opts {
    int port;
    long pid;
    const char *kind;
    int conns;
    long events;
    long event_bytes;
    int http10;
    const char *session;
};

static int cm_usage(void)
{
    fprintf(stderr, "usage: conn_mem --port P --pid PID --kind idle|slow|page --conns N\n"
                    "                [--events E --event-bytes B] [--http10] [--session NAME]\n");
    return 2;
}

/* GET `path` on a fresh connection; the body's copy (malloc) or NULL. */
static char *cm_get(int port, const char *path)
{
    int fd = net_connect(port, 0);
    if (fd < 0)
        return NULL;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    struct net_buf b = {0};
    const char *body;
    size_t len;
    char *out = NULL;
    if (n > 0 && (size_t)n < sizeof req && net_write_all(fd, req, (size_t)n) == 0 &&
        net_read_response(fd, &b, &body, &len) == 200) {
        out = malloc(len + 1);
        if (out) {
            memcpy(out, body, len);
            out[len] = '\0';
        }
    }
    net_buf_free(&b);
    close(fd);
    return out;
}

/* The session's last sequence (from a page of one event at the end), or -1. */
static long cm_last_sequence(const struct cm_opts *o)
{
    long lo = 0;
    char path[256];
    /* Doubling then bisecting on "is there an event after offset". */
    long hi = 1;
    for (;;) {
        snprintf(path, sizeof path, "/v1/sessions/%s/events?offset=%ld&limit=0", o->session, hi);
        char *body = cm_get(o->port, path);
        if (!body)
            return -1;
        int more = strstr(body, "\"hasMore\":true") != NULL;
        free(body);
        if (!more)
            break;
        lo = hi;
        hi *= 2;
    }
    while (hi - lo > 1) {
        long mid = lo + (hi - lo) / 2;
        snprintf(path, sizeof path, "/v1/sessions/%s/events?offset=%ld&limit=0", o->session, mid);
        char *body = cm_get(o->port, path);
        if (!body)
            return -1;
        int more = strstr(body, "\"hasMore\":true") != NULL;
        free(body);
        if (more)
            lo = mid;
        else
            hi = mid;
    }
    /* lo has events after it and hi has none: hi is the last, unless empty. */
    snprintf(path, sizeof path, "/v1/sessions/%s/events?offset=0&limit=0", o->session);
    char *body = cm_get(o->port, path);
    if (!body)
        return -1;
    int any = strstr(body, "\"hasMore\":true") != NULL;
    free(body);
    return any ? hi : 0;
}

/* Creates the session and journals about `events` events of `bytes` each. */
static int cm_fill(const struct cm_opts *o)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/sessions/%s", o->session);
    if (net_request(o->port, "POST", path, NULL, "{\"agent\":\"mock\"}") != 200)
        return -1;
    if (o->events <= 0)
        return 0;
    size_t bytes = o->event_bytes > 0 ? (size_t)o->event_bytes : 64;
    char *body = malloc(bytes + 32);
    if (!body)
        return -1;
    int n = snprintf(body, bytes + 32, "{\"message\":\"");
    memset(body + n, 'x', bytes);
    strcpy(body + n + bytes, "\"}");
    snprintf(path, sizeof path, "/v1/sessions/%s/messages", o->session);
    long before = cm_last_sequence(o);
    /* A mock echo turn journals six events, each carrying the text. */
    long turns = (o->events + 5) / 6;
    int rc = 0;
    for (long i = 0; rc == 0 && i < turns; i++) {
        if (net_request(o->port, "POST", path, NULL, body) != 204)
            rc = -1;
        /* One turn at a time: the next waits for this one's events. */
        for (int k = 0; rc == 0 && k < 600 && cm_last_sequence(o) < before + 6 * (i + 1); k++)
            net_sleep_ms(50);
    }
    free(body);
    return rc;
}

/* Opens one connection and sends its request; the fd or -1. */
static int cm_open(const struct cm_opts *o, const char *path)
{
    int fd = net_connect(o->port, 0);
    if (fd < 0)
        return -1;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.%d\r\nHost: 127.0.0.1\r\n\r\n", path,
                     o->http10 ? 0 : 1);
    if (n <= 0 || (size_t)n >= sizeof req || net_write_all(fd, req, (size_t)n) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads an idle subscriber's response up to its ": connected" comment. */
static int cm_read_connected(int fd)
{
    char buf[2048];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        if (strstr(buf, ": connected\n\n"))
            return 0;
    }
    return -1;
}

/* Waits until the RSS stays the same for CM_SETTLE_MS; the last reading. */
static long cm_settled_rss(long pid)
{
    long last = net_rss_kb(pid);
    int64_t since = net_now_ns(), start = since;
    while ((net_now_ns() - since) / 1000000 < CM_SETTLE_MS &&
           (net_now_ns() - start) / 1000000 < CM_SETTLE_MAX_MS) {
        net_sleep_ms(100);
        long now = net_rss_kb(pid);
        if (now != last) {
            last = now;
            since = net_now_ns();
        }
    }
    return last;
}

int main(int argc, char **argv)
{
    struct cm_opts o = {.session = "conn-mem"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--http10") == 0) {
            o.http10 = 1;
            continue;
        }
        if (!v)
            return cm_usage();
        i++;
        if (strcmp(a, "--port") == 0)
            o.port = atoi(v);
        else if (strcmp(a, "--pid") == 0)
            o.pid = atol(v);
        else if (strcmp(a, "--kind") == 0)
            o.kind = v;
        else if (strcmp(a, "--conns") == 0)
            o.conns = atoi(v);
        else if (strcmp(a, "--events") == 0)
            o.events = atol(v);
        else if (strcmp(a, "--event-bytes") == 0)
            o.event_bytes = atol(v);
        else if (strcmp(a, "--session") == 0)
            o.session = v;
        else
            return cm_usage();
    }
    if (!o.port || !o.pid || !o.kind || o.conns <= 0)
        return cm_usage();
    int kind_idle = strcmp(o.kind, "idle") == 0, kind_slow = strcmp(o.kind, "slow") == 0;
    if (!kind_idle && !kind_slow && strcmp(o.kind, "page") != 0)
        return cm_usage();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            perror("conn_mem: setrlimit");
    }
    if (cm_fill(&o) != 0) {
        fprintf(stderr, "conn_mem: could not fill session %s\n", o.session);
        return 1;
    }
    long last = cm_last_sequence(&o);
    char path[256];
    if (kind_idle)
        snprintf(path, sizeof path, "/v1/sessions/%s/events/sse?offset=%ld", o.session, last);
    else if (kind_slow)
        snprintf(path, sizeof path, "/v1/sessions/%s/events/sse", o.session);
    else
        snprintf(path, sizeof path, "/v1/sessions/%s/events?limit=10000", o.session);

    long before = cm_settled_rss(o.pid);
    int *fds = calloc((size_t)o.conns, sizeof *fds);
    if (!fds)
        return 1;
    int opened = 0;
    for (; opened < o.conns; opened++) {
        fds[opened] = cm_open(&o, path);
        if (fds[opened] < 0 || (kind_idle && cm_read_connected(fds[opened]) != 0)) {
            fprintf(stderr, "conn_mem: connection %d failed\n", opened);
            if (fds[opened] >= 0)
                close(fds[opened]);
            break;
        }
    }
    long after = cm_settled_rss(o.pid);
    long per = opened ? (after - before) * 1024 / opened : 0;
    printf("kind=%s conns=%d events=%ld event_bytes=%ld http=1.%d rss_before_kb=%ld "
           "rss_after_kb=%ld bytes_per_conn=%ld\n",
           o.kind, opened, last, o.event_bytes, o.http10 ? 0 : 1, before, after, per);
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    return opened == o.conns ? 0 : 1;
}
