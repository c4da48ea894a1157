/* The soak benchmark's client (bench/soak/run.sh drives it; results in
 * docs/benchmarks.md).  Against a running server on 127.0.0.1 it
 *
 *   - creates N mock sessions (default 100) and runs one appender thread per
 *     session that POSTs messages on a keep-alive connection for the whole
 *     run, each message "lat:<monotonic ns>" (the mock echoes it);
 *   - opens M SSE subscribers (default 1000), spread evenly over the
 *     sessions, all read by one epoll thread; each checks that the ids it
 *     receives are 1, 2, 3, ... with no gap and no repeat;
 *   - measures the append-to-SSE latency: from just before a POST is written
 *     to the moment a subscriber reads the first event carrying that message;
 *   - samples the server's RSS (/proc/PID/status) every --rss-every seconds;
 *   - at the end waits for the subscribers to catch up with the journal and
 *     prints events/s, latency percentiles, RSS samples and error counts.
 *
 * usage: soak --port P [--pid SERVER_PID] [--sessions N] [--subscribers M]
 *             [--seconds S] [--rss-every S]
 * Exit status 0 when there were no errors, 1 otherwise.
 *
 * Plain C11 + POSIX, no project code: it measures the server from outside
 * (common/net.h). */
#include "../common/net.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOAK_MAX_SESSIONS 1000

static int soak_port;
static int soak_sessions = 100;
static int soak_subscribers = 1000;
static int soak_seconds = 60;
static int soak_rss_every = 5;
static long soak_pid;

static atomic_int soak_stop;
static atomic_llong soak_posts_ok, soak_post_errors, soak_sse_errors;

/* ---- appenders --------------------------------------------------------------- */

static void *soak_appender(void *arg)
{
    int index = (int)(intptr_t)arg;
    char req[512], body[96];
    struct net_buf buf = {0};
    int fd = -1;
    while (!atomic_load(&soak_stop)) {
        if (fd < 0) {
            fd = net_connect(soak_port, 0);
            buf.len = buf.used = 0;
            if (fd < 0) {
                atomic_fetch_add(&soak_post_errors, 1);
                net_sleep_ms(100);
                continue;
            }
        }
        int bn = snprintf(body, sizeof body, "{\"message\":\"lat:%lld\"}",
                          (long long)net_now_ns());
        int n = snprintf(req, sizeof req,
                         "POST /v1/sessions/soak-%d/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                         index, bn, body);
        const char *rb;
        size_t rlen;
        int status = net_write_all(fd, req, (size_t)n) == 0
                         ? net_read_response(fd, &buf, &rb, &rlen)
                         : -1;
        if (status == 204) {
            atomic_fetch_add(&soak_posts_ok, 1);
        } else {
            atomic_fetch_add(&soak_post_errors, 1);
            fprintf(stderr, "soak: session %d: POST answered %d\n", index, status);
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    net_buf_free(&buf);
    return NULL;
}

/* ---- subscribers ------------------------------------------------------------- */

struct soak_sub {
    struct net_sse sse;
    int session;
    int first_of_session; /* the first subscriber of its session */
    uint64_t last_id;
    int64_t last_marker;  /* newest message marker seen */
    uint64_t events;
};

static struct soak_sub *soak_subs;
static struct net_samples soak_lat;
static uint64_t soak_events_first; /* events read by the first subscriber of each session */

static void soak_sub_line(void *arg, char *line, int64_t now)
{
    struct soak_sub *s = arg;
    if (strncmp(line, "id: ", 4) == 0) {
        uint64_t id = strtoull(line + 4, NULL, 10);
        if (id != s->last_id + 1) {
            atomic_fetch_add(&soak_sse_errors, 1);
            fprintf(stderr, "soak: subscriber of soak-%d: id %llu after %llu\n", s->session,
                    (unsigned long long)id, (unsigned long long)s->last_id);
        }
        s->last_id = id;
        s->events++;
        if (s->first_of_session)
            soak_events_first++;
        return;
    }
    if (strncmp(line, "data: ", 6) != 0)
        return;
    const char *m = strstr(line, "lat:");
    if (!m)
        return;
    int64_t t = strtoll(m + 4, NULL, 10);
    if (t > s->last_marker) {
        s->last_marker = t;
        net_samples_add(&soak_lat, (now - t) / 1000);
    }
}

struct soak_sub_run {
    int epfd;
    uint64_t *targets; /* per session: catch up to this id (0: none yet) */
};

static void *soak_sub_main(void *arg)
{
    struct soak_sub_run *run = arg;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(run->epfd, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            int k = evs[i].data.u32;
            struct soak_sub *s = &soak_subs[k];
            if (s->sse.fd < 0)
                continue;
            if (net_sse_read(&s->sse, soak_sub_line, s) != 0) {
                atomic_fetch_add(&soak_sse_errors, 1);
                fprintf(stderr, "soak: subscriber %d of soak-%d: stream broken at %llu\n", k,
                        s->session, (unsigned long long)s->last_id);
                epoll_ctl(run->epfd, EPOLL_CTL_DEL, s->sse.fd, NULL);
                close(s->sse.fd);
                s->sse.fd = -1;
            }
        }
        if (atomic_load(&soak_stop) == 2) {
            int behind = 0;
            for (int k = 0; k < soak_subscribers; k++)
                if (soak_subs[k].sse.fd >= 0 && soak_subs[k].last_id < run->targets[soak_subs[k].session])
                    behind = 1;
            if (!behind)
                return NULL;
        }
        if (atomic_load(&soak_stop) == 3)
            return NULL;
    }
}

/* ---- server figures ----------------------------------------------------------- */

/* The journal's event count of every soak session, from GET /v1/sessions. */
static int soak_event_counts(uint64_t *out)
{
    int fd = net_connect(soak_port, 0);
    if (fd < 0)
        return -1;
    static const char req[] = "GET /v1/sessions HTTP/1.0\r\n\r\n";
    if (net_write_all(fd, req, sizeof req - 1) != 0) {
        close(fd);
        return -1;
    }
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -1;
    }
    for (;;) {
        if (len + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger)
                break;
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    for (int i = 0; i < soak_sessions; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"sessionId\":\"soak-%d\"", i);
        char *p = strstr(buf, key);
        char *c = p ? strstr(p, "\"eventCount\":") : NULL;
        out[i] = c ? strtoull(c + 13, NULL, 10) : 0;
    }
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            soak_port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--pid") == 0)
            soak_pid = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--sessions") == 0)
            soak_sessions = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--subscribers") == 0)
            soak_subscribers = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            soak_seconds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rss-every") == 0)
            soak_rss_every = atoi(argv[i + 1]);
    }
    if (soak_port <= 0 || soak_sessions < 1 || soak_sessions > SOAK_MAX_SESSIONS ||
        soak_subscribers < soak_sessions || soak_seconds < 1 || soak_rss_every < 1) {
        fprintf(stderr, "usage: soak --port P [--pid PID] [--sessions N] [--subscribers M>=N] "
                        "[--seconds S] [--rss-every S]\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    for (int i = 0; i < soak_sessions; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/sessions/soak-%d", i);
        if (net_request(soak_port, "POST", path, NULL, "{\"agent\":\"mock\"}") != 200) {
            fprintf(stderr, "soak: cannot create %s\n", path);
            return 1;
        }
    }

    /* Subscribers speak HTTP/1.1, as browsers and the SDKs do (net.c undoes
     * the chunked framing).  Subscriber k reads session k % N, so the first
     * N are one per session. */
    soak_subs = calloc((size_t)soak_subscribers, sizeof *soak_subs);
    uint64_t *targets = calloc(SOAK_MAX_SESSIONS, sizeof *targets);
    pthread_t *apps = calloc((size_t)soak_sessions, sizeof *apps);
    int epfd = epoll_create1(0);
    if (!soak_subs || !targets || !apps || epfd < 0) {
        fprintf(stderr, "soak: out of memory or descriptors\n");
        return 1;
    }
    for (int k = 0; k < soak_subscribers; k++) {
        struct soak_sub *s = &soak_subs[k];
        s->session = k % soak_sessions;
        s->first_of_session = k < soak_sessions;
        s->sse.buf = malloc(NET_SSE_BUF);
        s->sse.fd = net_connect(soak_port, 0);
        if (s->sse.fd < 0 || !s->sse.buf) {
            fprintf(stderr, "soak: cannot connect subscriber %d: %s\n", k, strerror(errno));
            return 1;
        }
        char req[128];
        int n = snprintf(req, sizeof req, "GET /v1/sessions/soak-%d/events/sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                         s->session);
        if (net_write_all(s->sse.fd, req, (size_t)n) != 0)
            return 1;
        fcntl(s->sse.fd, F_SETFL, fcntl(s->sse.fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
        epoll_ctl(epfd, EPOLL_CTL_ADD, s->sse.fd, &ev);
    }
    struct soak_sub_run run = {.epfd = epfd, .targets = targets};
    pthread_t reader;
    pthread_create(&reader, NULL, soak_sub_main, &run);
    net_sleep_ms(500); /* every stream open and parked */

    uint64_t before[SOAK_MAX_SESSIONS], after[SOAK_MAX_SESSIONS];
    soak_event_counts(before);
    long rss0 = net_rss_kb(soak_pid);
    int64_t t0 = net_now_ns();
    for (int i = 0; i < soak_sessions; i++)
        pthread_create(&apps[i], NULL, soak_appender, (void *)(intptr_t)i);
    printf("rss_kb t=0s %ld\n", rss0);
    for (int sec = soak_rss_every; sec <= soak_seconds; sec += soak_rss_every) {
        net_sleep_ms(soak_rss_every * 1000);
        printf("rss_kb t=%ds %ld  posts=%lld\n", sec, net_rss_kb(soak_pid),
               (long long)atomic_load(&soak_posts_ok));
        fflush(stdout);
    }
    atomic_store(&soak_stop, 1);
    for (int i = 0; i < soak_sessions; i++)
        pthread_join(apps[i], NULL);
    int64_t t_append = net_now_ns() - t0;
    /* The mock's replies are paced out on the server's loop after the
     * last 204: wait until the journal stops growing, then for every
     * subscriber to reach its session's end. */
    uint64_t prev_total = 0, total = 0;
    for (int tries = 0; tries < 600; tries++) {
        soak_event_counts(after);
        total = 0;
        for (int i = 0; i < soak_sessions; i++)
            total += after[i];
        if (tries && total == prev_total)
            break;
        prev_total = total;
        net_sleep_ms(200);
    }
    int64_t t_journal = net_now_ns() - t0;
    for (int i = 0; i < soak_sessions; i++)
        targets[i] = after[i];
    atomic_store(&soak_stop, 2);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 60;
    int joined = pthread_timedjoin_np(reader, NULL, &ts) == 0;
    if (!joined) {
        atomic_store(&soak_stop, 3);
        pthread_join(reader, NULL);
    }
    int64_t t_caught_up = net_now_ns() - t0;
    long rss1 = net_rss_kb(soak_pid);

    uint64_t appended = 0;
    long behind = 0;
    for (int i = 0; i < soak_sessions; i++)
        appended += after[i] - before[i];
    uint64_t delivered = 0;
    for (int k = 0; k < soak_subscribers; k++) {
        delivered += soak_subs[k].events;
        if (soak_subs[k].sse.fd >= 0 && soak_subs[k].last_id < targets[soak_subs[k].session])
            behind++;
    }
    net_samples_sort(&soak_lat);
    double secs = (double)t_journal / 1e9;
    long long errors = atomic_load(&soak_post_errors) + atomic_load(&soak_sse_errors) + behind;
    printf("sessions %d, subscribers %d, appending for %.1f s (all replies journaled at %.1f s, "
           "all subscribers caught up at %.1f s)\n",
           soak_sessions, soak_subscribers, (double)t_append / 1e9, secs,
           (double)t_caught_up / 1e9);
    printf("messages acknowledged (204) %lld, %.0f/s\n", (long long)atomic_load(&soak_posts_ok),
           (double)atomic_load(&soak_posts_ok) / ((double)t_append / 1e9));
    printf("events journaled %llu, %.0f events/s\n", (unsigned long long)appended,
           (double)appended / secs);
    printf("events delivered over SSE %llu, %.0f events/s\n", (unsigned long long)delivered,
           (double)delivered / ((double)t_caught_up / 1e9));
    if (soak_lat.n)
        printf("append-to-SSE latency over %zu samples: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
               soak_lat.n, net_samples_ms(&soak_lat, 0.5), net_samples_ms(&soak_lat, 0.99),
               net_samples_ms(&soak_lat, 1));
    printf("server RSS %ld kB before, %ld kB after\n", rss0, rss1);
    printf("errors %lld (POST %lld, SSE gaps/breaks %lld, subscribers behind %ld)\n", errors,
           (long long)atomic_load(&soak_post_errors), (long long)atomic_load(&soak_sse_errors),
           behind);
    for (int k = 0; k < soak_subscribers; k++) {
        if (soak_subs[k].sse.fd >= 0)
            close(soak_subs[k].sse.fd);
        free(soak_subs[k].sse.buf);
    }
    free(soak_subs);
    free(targets);
    free(apps);
    net_samples_free(&soak_lat);
    close(epfd);
    return errors ? 1 : 0;
}
