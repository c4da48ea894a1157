/* The fan-out floor: what delivering every append to M subscribers costs
 * this machine's kernel when nothing else is done, the way the fsync floor
 * bounds a durable append.  One thread writes each append to M accepted
 * loopback sockets, one send() per subscriber (the least any server can
 * do); one epoll thread reads them as bench/load.c's tail subscribers do
 * and takes the same append-to-delivery latency samples.  No HTTP, no
 * journal, no JSON: a server's fan-out cannot beat these figures here.
 *
 *   fanout_floor --subs M --rate R --seconds S --bytes B
 *
 * prints the keys of `load tail` (bench/report.py puts it in that table):
 * appends/s reached, latency p50/p99/max, and as server_cpu_pct this
 * process's CPU, both threads (the subscribers' reading is the other half
 * of a loopback send, as with a real client).  B defaults to 2,400: the
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
#include <time.h>
#include <unistd.h>

static int floor_subs = 1000, floor_seconds = 5, floor_bytes = 2400;
static double floor_rate = 100;
static int *floor_server_fds;
static struct net_sse *floor_clients;
static int64_t *floor_last_marker;
static struct net_samples floor_lat;
static _Atomic int64_t floor_measure_from;
static atomic_int floor_stop;
static atomic_llong floor_appends;
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

/* Each append: one SSE frame carrying its write time, sent to every
 * subscriber in turn, on an absolute schedule. */
static void *floor_writer(void *arg)
{
    (void)arg; /* the subscribers are global */
    char *frame = malloc((size_t)floor_bytes + 128);
    if (!frame)
        return NULL;
    int64_t period = (int64_t)(1e9 / floor_rate), next = net_now_ns();
    long long seq = 0;
    while (!atomic_load(&floor_stop)) {
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
        for (int k = 0; k < floor_subs; k++)
            if (net_write_all(floor_server_fds[k], frame, len) != 0) {
                atomic_fetch_add(&floor_errors, 1);
                atomic_store(&floor_stop, 1);
                break;
            }
        atomic_fetch_add(&floor_appends, 1);
    }
    free(frame);
    return NULL;
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
    fprintf(stderr, "usage: fanout_floor [--subs M] [--rate R] [--seconds S] [--bytes B]\n");
    return 2;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return floor_usage();
        if (strcmp(argv[i], "--subs") == 0)
            floor_subs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rate") == 0)
            floor_rate = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            floor_seconds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--bytes") == 0)
            floor_bytes = atoi(argv[i + 1]);
        else
            return floor_usage();
    }
    if (floor_subs < 1 || floor_rate <= 0 || floor_seconds < 1 || floor_bytes < 64)
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
    floor_server_fds = calloc((size_t)floor_subs, sizeof *floor_server_fds);
    floor_clients = calloc((size_t)floor_subs, sizeof *floor_clients);
    floor_last_marker = calloc((size_t)floor_subs, sizeof *floor_last_marker);
    int epfd = epoll_create1(0);
    if (!floor_server_fds || !floor_clients || !floor_last_marker || epfd < 0)
        return 1;
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
    for (int k = 0; k < floor_subs; k++) {
        struct net_sse *c = &floor_clients[k];
        c->buf = malloc(NET_SSE_BUF);
        c->fd = net_connect(ntohs(sa.sin_port), 0);
        int one = 1;
        int s = c->fd >= 0 ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
        if (!c->buf || s < 0 || setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
            net_write_all(s, head, sizeof head - 1) != 0 ||
            fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0) {
            fprintf(stderr, "fanout_floor: subscriber %d: %s\n", k, strerror(errno));
            return 1;
        }
        floor_server_fds[k] = s;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            return 1;
    }
    pthread_t reader, writer;
    if (pthread_create(&reader, NULL, floor_reader, &epfd) != 0)
        return 1;
    net_sleep_ms(500); /* every header read */
    double c0 = floor_cpu_s();
    int64_t start = net_now_ns();
    atomic_store(&floor_measure_from, start);
    if (pthread_create(&writer, NULL, floor_writer, NULL) != 0)
        return 1;
    net_sleep_ms(floor_seconds * 1000);
    double secs = (double)(net_now_ns() - start) / 1e9, c1 = floor_cpu_s();
    atomic_store(&floor_stop, 1);
    pthread_join(writer, NULL);
    long long appends = atomic_load(&floor_appends);
    net_sleep_ms(500); /* the last deliveries */
    atomic_store(&floor_stop, 2);
    pthread_join(reader, NULL);
    net_samples_sort(&floor_lat);
    printf("subs=%d posts=%lld posts_per_s=%.1f bytes=%d samples=%zu expected=%lld p50_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f server_cpu_pct=%.0f errors=%lld\n",
           floor_subs, appends, (double)appends / secs, floor_bytes, floor_lat.n,
           appends * floor_subs, net_samples_ms(&floor_lat, 0.5),
           net_samples_ms(&floor_lat, 0.99), net_samples_ms(&floor_lat, 1),
           100.0 * (c1 - c0) / secs, (long long)atomic_load(&floor_errors));
    return atomic_load(&floor_errors) ? 1 : 0;
}
