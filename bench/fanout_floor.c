/* The fan-out floor: what delivering every append to M subscribers costs
 * this machine's kernel when nothing else is done, the way the fsync floor
 * bounds a durable append.  The M subscribers are split over K streams as
 * load tail splits them over sessions; append i goes to stream i % K.  A
 * child process writes each append to its stream's accepted loopback
 * sockets, one send() per subscriber (the least any server can do); one
 * epoll thread of the parent reads them as bench/load.c's tail subscribers
 * do and takes the same append-to-delivery latency samples (CLOCK_MONOTONIC
 * is one clock for both processes).  No HTTP, no journal, no JSON: a
 * server's fan-out cannot beat these figures here.
 *
 *   fanout_floor --subs M --streams K --rate R --seconds S --bytes B
 *
 * prints the keys of `load tail` (bench/report.py puts it in that table):
 * appends/s reached, latency p50/p99/max, and as server_cpu_pct the CPU of
 * both processes (the subscribers' reading is the other half of a loopback
 * send, as with a real client).  B defaults to 2,400: the
 * frames of one mock message, what sandbox-journal sends per append.
 * Everything stays on 127.0.0.1.  Plain C11 + POSIX (common/net.h). */
#include "common/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int floor_subs = 1000, floor_streams = 1, floor_seconds = 5, floor_bytes = 2400;
static double floor_rate = 100;
static int *floor_server_fds;
static struct net_sse *floor_clients;
static int64_t *floor_last_marker;
static struct net_samples floor_lat;
static _Atomic int64_t floor_measure_from;
static atomic_int floor_stop;
static long long floor_appends, floor_expected;
static atomic_llong floor_errors;

static void floor_line(void *arg, char *line, int64_t now)
{
    int64_t *last = arg;
    const char *m = strncmp(line, "data:", 5) == 0 ? strstr(line, "lat:") : NULL;
    if (!m)
        return;
    int64_t t = strtoll(m + 4, NULL, 10);
    if (t <= *last)
        return;
    *last = t;
    int64_t from = atomic_load(&floor_measure_from);
    if (from && t >= from)
        net_samples_add(&floor_lat, (now - t) / 1000);
}

static void *floor_reader(void *arg)
{
    int epfd = *(int *)arg;
    struct epoll_event evs[256];
    while (atomic_load(&floor_stop) < 2) {
        int n = epoll_wait(epfd, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            uint32_t k = evs[i].data.u32;
            if (floor_clients[k].fd >= 0 &&
                net_sse_read(&floor_clients[k], floor_line, &floor_last_marker[k]) != 0) {
                atomic_fetch_add(&floor_errors, 1);
                epoll_ctl(epfd, EPOLL_CTL_DEL, floor_clients[k].fd, NULL);
                close(floor_clients[k].fd);
                floor_clients[k].fd = -1;
            }
        }
    }
    return NULL;
}

/* The senders' process, for `seconds`: append i is one SSE frame carrying
 * its write time, sent to each subscriber of stream i % streams in turn, on
 * an absolute schedule.  Counts the appends and the deliveries due. */
static int floor_write(void)
{
    char *frame = malloc((size_t)floor_bytes + 128);
    if (!frame)
        return -1;
    int64_t period = (int64_t)(1e9 / floor_rate), next = net_now_ns();
    int64_t until = next + (int64_t)floor_seconds * 1000000000;
    long long seq = 0;
    int rc = 0;
    while (rc == 0 && net_now_ns() < until) {
        int64_t wait = next - net_now_ns();
        if (wait > 0)
            net_sleep_ms((int)(wait / 1000000));
        while (net_now_ns() < next) {
        }
        next += period;
        int n = snprintf(frame, (size_t)floor_bytes + 128, "id: %lld\ndata: {\"lat:%" PRId64 "_",
                         ++seq, net_now_ns());
        size_t len = n > 0 ? (size_t)n : 0;
        while (len + 4 < (size_t)floor_bytes)
            frame[len++] = 'x';
        memcpy(frame + len, "\"}\n\n", 4);
        len += 4;
        int stream = (int)(floor_appends % floor_streams);
        for (int k = stream; k < floor_subs && rc == 0; k += floor_streams) {
            rc = net_write_all(floor_server_fds[k], frame, len);
            floor_expected++;
        }
        floor_appends++;
    }
    free(frame);
    return rc;
}

static double floor_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int floor_usage(void)
{
    fprintf(stderr, "usage: fanout_floor [--subs M] [--streams K] [--rate R] [--seconds S] "
                    "[--bytes B]\n");
    return 2;
}

/* What the senders' process tells the subscribers' when it is done. */
struct floor_result {
    long long appends, expected;
    double cpu_s;
    int failed;
};

/* The child: accepts every subscriber, says so on `ready`, sends from the
 * byte on `go` until its time is up, reports on `ready`, and keeps the
 * sockets open until `go` closes, so no subscriber reads an early EOF. */
static int floor_senders(int lfd, int go, int ready)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
    floor_server_fds = calloc((size_t)floor_subs, sizeof *floor_server_fds);
    if (!floor_server_fds)
        return 1;
    for (int k = 0; k < floor_subs; k++) {
        int one = 1;
        int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0 || setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
            net_write_all(s, head, sizeof head - 1) != 0) {
            fprintf(stderr, "fanout_floor: accepting subscriber %d: %s\n", k, strerror(errno));
            return 1;
        }
        floor_server_fds[k] = s;
    }
    char byte = 0;
    if (write(ready, &byte, 1) != 1 || read(go, &byte, 1) != 1)
        return 1;
    double c0 = floor_cpu_s();
    struct floor_result res = {.failed = floor_write() != 0};
    res.cpu_s = floor_cpu_s() - c0;
    res.appends = floor_appends;
    res.expected = floor_expected;
    if (write(ready, &res, sizeof res) != (ssize_t)sizeof res)
        return 1;
    while (read(go, &byte, 1) > 0) {
    }
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return floor_usage();
        if (strcmp(argv[i], "--subs") == 0)
            floor_subs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--streams") == 0)
            floor_streams = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rate") == 0)
            floor_rate = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            floor_seconds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--bytes") == 0)
            floor_bytes = atoi(argv[i + 1]);
        else
            return floor_usage();
    }
    if (floor_subs < 1 || floor_streams < 1 || floor_streams > floor_subs || floor_rate <= 0 ||
        floor_seconds < 1 || floor_bytes < 64)
        return floor_usage();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            perror("fanout_floor: setrlimit");
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof sa;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(lfd, 4096) != 0 || getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
        perror("fanout_floor: listen");
        return 1;
    }
    /* The two ends of the subscribers live in two processes, so 10,000
     * subscribers fit in a descriptor limit of 20,000. */
    int go[2], ready[2];
    if (pipe(go) != 0 || pipe(ready) != 0) {
        perror("fanout_floor: pipe");
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("fanout_floor: fork");
        return 1;
    }
    if (child == 0) {
        close(go[1]);
        close(ready[0]);
        _exit(floor_senders(lfd, go[0], ready[1]));
    }
    close(lfd);
    close(go[0]);
    close(ready[1]);
    floor_clients = calloc((size_t)floor_subs, sizeof *floor_clients);
    floor_last_marker = calloc((size_t)floor_subs, sizeof *floor_last_marker);
    int epfd = epoll_create1(0);
    if (!floor_clients || !floor_last_marker || epfd < 0)
        return 1;
    for (int k = 0; k < floor_subs; k++) {
        struct net_sse *c = &floor_clients[k];
        c->buf = malloc(NET_SSE_BUF);
        c->fd = net_connect(ntohs(sa.sin_port), 0);
        if (!c->buf || c->fd < 0 ||
            fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0) {
            fprintf(stderr, "fanout_floor: subscriber %d: %s\n", k, strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            return 1;
    }
    pthread_t reader;
    if (pthread_create(&reader, NULL, floor_reader, &epfd) != 0)
        return 1;
    char byte = 0;
    if (read(ready[0], &byte, 1) != 1) {
        fprintf(stderr, "fanout_floor: the senders' process failed\n");
        return 1;
    }
    net_sleep_ms(500); /* every header read */
    double c0 = floor_cpu_s();
    int64_t start = net_now_ns();
    atomic_store(&floor_measure_from, start);
    struct floor_result res;
    if (write(go[1], &byte, 1) != 1 || read(ready[0], &res, sizeof res) != (ssize_t)sizeof res) {
        fprintf(stderr, "fanout_floor: the senders' process failed\n");
        return 1;
    }
    double secs = (double)(net_now_ns() - start) / 1e9, c1 = floor_cpu_s();
    if (res.failed)
        atomic_fetch_add(&floor_errors, 1);
    net_sleep_ms(500); /* the last deliveries */
    atomic_store(&floor_stop, 2);
    pthread_join(reader, NULL);
    close(go[1]);
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        atomic_fetch_add(&floor_errors, 1);
    net_samples_sort(&floor_lat);
    printf("subs=%d streams=%d posts=%lld posts_per_s=%.1f bytes=%d samples=%zu expected=%lld "
           "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f server_cpu_pct=%.0f errors=%lld\n",
           floor_subs, floor_streams, res.appends, (double)res.appends / secs, floor_bytes,
           floor_lat.n, res.expected, net_samples_ms(&floor_lat, 0.5),
           net_samples_ms(&floor_lat, 0.99), net_samples_ms(&floor_lat, 1),
           100.0 * (c1 - c0 + res.cpu_s) / secs, (long long)atomic_load(&floor_errors));
    return atomic_load(&floor_errors) ? 1 : 0;
}
