/* The tests' webhook receiver; see webhook_receiver.h. */
#define _GNU_SOURCE /* memmem */
#include "webhook_receiver.h"

#include "base/base64.h"
#include "base/sha256.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WR_MAX_HEAD 16384
#define WR_MAX_BODY (64u * 1024 * 1024)

struct wr {
    uint16_t port;
    unsigned char key[256];
    size_t key_len;
    int faults;
    unsigned hang_ms;
    atomic_int gone;

    int listen_fd;
    pthread_t thread;
    int running;
    atomic_int stopping;

    pthread_mutex_t lock; /* below */
    struct wr_stats stats;
    struct wr_delivery *d;
    size_t n, cap;
};

static void wr_sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Reads into buf until it holds `want` bytes or the peer is gone: 0/-1. */
static int wr_read_more(wr_t *w, int fd, char *buf, size_t *have, size_t cap)
{
    while (!atomic_load(&w->stopping)) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 50);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        ssize_t got = recv(fd, buf + *have, cap - *have, 0);
        if (got <= 0)
            return -1;
        *have += (size_t)got;
        return 0;
    }
    return -1;
}

static int wr_send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            return -1;
        }
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The value of header `name` in the head (lines after the first), copied
 * into out[size]; 0 if found. */
static int wr_header(const char *head, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2];
         line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, nlen) == 0 && l[nlen] == ':') {
            const char *v = l + nlen + 1;
            while (*v == ' ')
                v++;
            size_t vlen = strcspn(v, "\r\n");
            if (vlen >= size)
                vlen = size - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 0;
        }
    }
    return -1;
}

static int wr_signature_ok(const wr_t *w, const char *id, const char *ts, const char *sigs,
                           const char *body, size_t len)
{
    struct sha256_hmac m;
    unsigned char mac[SHA256_DIGEST_LEN];
    sha256_hmac_init(&m, w->key, w->key_len);
    sha256_hmac_update(&m, id, strlen(id));
    sha256_hmac_update(&m, ".", 1);
    sha256_hmac_update(&m, ts, strlen(ts));
    sha256_hmac_update(&m, ".", 1);
    sha256_hmac_update(&m, body, len);
    sha256_hmac_final(&m, mac);
    char want[BASE64_ENCODED_SIZE(SHA256_DIGEST_LEN)];
    base64_encode(mac, sizeof mac, want);
    /* "v1,<sig> v1,<sig> ...": any one matching will do (key rotation). */
    for (const char *p = sigs; *p;) {
        size_t n = strcspn(p, " ");
        if (n > 3 && strncmp(p, "v1,", 3) == 0 && n - 3 == strlen(want) &&
            memcmp(p + 3, want, n - 3) == 0)
            return 1;
        p += n;
        while (*p == ' ')
            p++;
    }
    return 0;
}

/* Records the request; returns the status to answer (0: hang, -1: cut the
 * connection without an answer). */
static int wr_judge(wr_t *w, const char *head, const char *body, size_t len)
{
    char id[128] = "", ts[32] = "", sig[512] = "";
    int have = wr_header(head, "webhook-id", id, sizeof id) == 0 &&
               wr_header(head, "webhook-timestamp", ts, sizeof ts) == 0 &&
               wr_header(head, "webhook-signature", sig, sizeof sig) == 0;
    long long t = have ? strtoll(ts, NULL, 10) : 0;
    long long now = (long long)time(NULL);
    pthread_mutex_lock(&w->lock);
    unsigned nth = w->stats.requests++;
    int status = 200;
    if (!have || !wr_signature_ok(w, id, ts, sig, body, len) || t < now - 300 ||
        t > now + 300) {
        w->stats.bad_signatures++;
        status = 401;
    }
    struct wr_delivery *d = NULL;
    for (size_t i = 0; status == 200 && i < w->n; i++)
        if (strcmp(w->d[i].id, id) == 0)
            d = &w->d[i];
    if (d) {
        w->stats.redelivered++;
        d->attempts++;
        if (d->body_len != len || memcmp(d->body, body, len) != 0)
            w->stats.id_body_mismatches++;
    } else if (status == 200) {
        json_error_t jerr;
        json_t *doc = json_loadb(body, len, 0, &jerr);
        const char *sid = json_string_value(json_object_get(doc, "session_id"));
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 64;
            struct wr_delivery *nd = realloc(w->d, cap * sizeof *nd);
            if (nd) {
                w->d = nd;
                w->cap = cap;
            }
        }
        if (sid && w->n < w->cap) {
            d = &w->d[w->n];
            memset(d, 0, sizeof *d);
            d->id = strdup(id);
            d->session_id = strdup(sid);
            d->first = (uint64_t)json_integer_value(json_object_get(doc, "first_sequence"));
            d->last = (uint64_t)json_integer_value(json_object_get(doc, "last_sequence"));
            d->body = malloc(len + 1);
            if (d->body) {
                memcpy(d->body, body, len);
                d->body[len] = '\0';
            }
            d->body_len = len;
            d->attempts = 1;
            if (d->id && d->session_id && d->body)
                w->n++;
            else
                status = 500;
        } else {
            status = 400;
        }
        json_decref(doc);
    }
    if (status == 200 && atomic_load(&w->gone))
        status = 410;
    if (status == 200 && w->faults && nth % 3 == 2) {
        status = 503;
        w->stats.failed++;
    } else if (status == 200 && w->faults && nth % 10 == 4) {
        status = 0;
        w->stats.hung++;
    }
    int lose = status == 200 && w->faults && nth % 7 == 5;
    if (status == 200 && d) {
        if (!d->accepted)
            w->stats.events += d->last - d->first + 1;
        else
            w->stats.reaccepted++;
        d->accepted = 1;
        w->stats.accepted++;
        if (lose) {
            w->stats.lost++;
            status = -1;
        }
    }
    pthread_mutex_unlock(&w->lock);
    return status;
}

/* Serves one connection's requests until it closes. */
static void wr_serve(wr_t *w, int fd)
{
    size_t cap = WR_MAX_HEAD + 4096, have = 0;
    char *buf = malloc(cap);
    while (buf && !atomic_load(&w->stopping)) {
        char *end = NULL;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have >= WR_MAX_HEAD || wr_read_more(w, fd, buf, &have, WR_MAX_HEAD) != 0)
                goto done;
        }
        size_t head_len = (size_t)(end - buf) + 4;
        char *head = strndup(buf, head_len);
        char cl[32] = "0";
        if (!head || wr_header(head, "content-length", cl, sizeof cl) != 0) {
            free(head);
            goto done;
        }
        size_t body_len = strtoul(cl, NULL, 10);
        if (body_len > WR_MAX_BODY) {
            free(head);
            goto done;
        }
        if (head_len + body_len > cap) {
            char *nb = realloc(buf, head_len + body_len);
            if (!nb) {
                free(head);
                goto done;
            }
            buf = nb;
            cap = head_len + body_len;
        }
        while (have < head_len + body_len)
            if (wr_read_more(w, fd, buf, &have, cap) != 0) {
                free(head);
                goto done;
            }
        int status = wr_judge(w, head, buf + head_len, body_len);
        free(head);
        if (status < 0)
            goto done;
        if (status == 0) {
            for (unsigned slept = 0; slept < w->hang_ms && !atomic_load(&w->stopping);
                 slept += 20)
                wr_sleep_ms(20);
            goto done;
        }
        char resp[160];
        const char *text = status == 200 ? "ok" : status == 410 ? "gone" : "no";
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                         "\r\n%s",
                         status, strlen(text), text);
        if (wr_send_all(fd, resp, (size_t)n) != 0)
            goto done;
        memmove(buf, buf + head_len + body_len, have - head_len - body_len);
        have -= head_len + body_len;
    }
done:
    free(buf);
    close(fd);
}

static int wr_listen_once(wr_t *w);

static void *wr_main(void *arg)
{
    wr_t *w = arg;
    while (!atomic_load(&w->stopping)) {
        struct pollfd p = {w->listen_fd, POLLIN, 0};
        int r = poll(&p, 1, 50);
        if (r <= 0)
            continue;
        int fd = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            wr_serve(w, fd);
    }
    return NULL;
}

/* Binds and listens on w->port; with port 0, on a free port below the
 * kernel's ephemeral range (32768 and up), since a sender retrying a
 * stopped receiver could otherwise be given that very port as its own
 * and connect to itself.  A restart tries for up to 3 s. */
static int wr_listen(wr_t *w)
{
    int fixed = w->port != 0;
    for (int attempt = 0; attempt < (fixed ? 150 : 200); attempt++) {
        uint16_t keep = w->port;
        if (!fixed)
            w->port = (uint16_t)(20000 + (unsigned)rand() % 12000);
        if (wr_listen_once(w) == 0)
            return 0;
        if (fixed) {
            w->port = keep;
            wr_sleep_ms(20);
        }
    }
    fprintf(stderr, "webhook receiver: cannot listen on port %u: %s\n", w->port,
            strerror(errno));
    return -1;
}

static int wr_listen_once(wr_t *w)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* not inherited by the server */
    if (fd < 0)
        return -1;
    int one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(w->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    w->port = ntohs(a.sin_port);
    w->listen_fd = fd;
    atomic_store(&w->stopping, 0);
    if (pthread_create(&w->thread, NULL, wr_main, w) != 0) {
        close(fd);
        return -1;
    }
    w->running = 1;
    return 0;
}

wr_t *wr_start(uint16_t port, const unsigned char *key, size_t key_len, int faults,
               unsigned hang_ms)
{
    wr_t *w = calloc(1, sizeof *w);
    if (!w || key_len > sizeof w->key) {
        free(w);
        return NULL;
    }
    memcpy(w->key, key, key_len);
    w->key_len = key_len;
    w->faults = faults;
    w->hang_ms = hang_ms;
    w->port = port;
    atomic_init(&w->gone, 0);
    atomic_init(&w->stopping, 0);
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    pthread_mutex_init(&w->lock, NULL);
    if (wr_listen(w) != 0) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    return w;
}

uint16_t wr_port(const wr_t *w)
{
    return w->port;
}

void wr_stop(wr_t *w)
{
    if (!w->running)
        return;
    atomic_store(&w->stopping, 1);
    pthread_join(w->thread, NULL);
    close(w->listen_fd);
    w->running = 0;
}

int wr_restart(wr_t *w)
{
    wr_stop(w);
    return wr_listen(w);
}

void wr_set_gone(wr_t *w, int gone)
{
    atomic_store(&w->gone, gone);
}

void wr_stats(wr_t *w, struct wr_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}

size_t wr_deliveries(wr_t *w, struct wr_delivery **out)
{
    pthread_mutex_lock(&w->lock);
    struct wr_delivery *d = calloc(w->n ? w->n : 1, sizeof *d);
    size_t n = 0;
    for (size_t i = 0; d && i < w->n; i++, n++) {
        d[i] = w->d[i];
        d[i].id = strdup(w->d[i].id);
        d[i].session_id = strdup(w->d[i].session_id);
        d[i].body = malloc(w->d[i].body_len + 1);
        if (d[i].body)
            memcpy(d[i].body, w->d[i].body, w->d[i].body_len + 1);
    }
    pthread_mutex_unlock(&w->lock);
    *out = d;
    return n;
}

void wr_deliveries_free(struct wr_delivery *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++) {
        free(d[i].id);
        free(d[i].session_id);
        free(d[i].body);
    }
    free(d);
}

void wr_free(wr_t *w)
{
    if (!w)
        return;
    wr_stop(w);
    wr_deliveries_free(w->d, w->n);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

long wr_split_events(const char *body, size_t len, size_t **starts, size_t **lens)
{
    static const char key[] = "\"events\":[";
    const char *at = memmem(body, len, key, sizeof key - 1);
    if (!at || len < 2 || memcmp(body + len - 2, "]}", 2) != 0)
        return -1;
    size_t i = (size_t)(at - body) + sizeof key - 1, end = len - 2;
    size_t cap = 16, n = 0;
    *starts = malloc(cap * sizeof **starts);
    *lens = malloc(cap * sizeof **lens);
    while (*starts && *lens && i < end) {
        size_t s = i;
        int depth = 0, in_str = 0;
        for (; i < end; i++) {
            char c = body[i];
            if (in_str) {
                if (c == '\\')
                    i++;
                else if (c == '"')
                    in_str = 0;
            } else if (c == '"') {
                in_str = 1;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                depth--;
            } else if (c == ',' && depth == 0) {
                break;
            }
        }
        if (n == cap) {
            cap *= 2;
            size_t *a = realloc(*starts, cap * sizeof *a);
            if (a)
                *starts = a;
            size_t *b = realloc(*lens, cap * sizeof *b);
            if (b)
                *lens = b;
            if (!a || !b)
                return -1;
        }
        (*starts)[n] = s;
        (*lens)[n] = i - s;
        n++;
        i++; /* the comma */
    }
    return *starts && *lens ? (long)n : -1;
}
