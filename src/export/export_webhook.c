/* The webhook export target: each session's events POSTed as signed JSON
 * (Standard Webhooks), through libcurl.
 *
 * One request per session in the batch (the exporter gives a webhook one
 * session per batch, export.c), with the body
 *
 *   {"type":"sandbox-journal.events","session_id":S,"first_sequence":F,
 *    "last_sequence":L,"events":[<event>,...]}
 *
 * where each <event> is the journal's stored text, byte for byte what
 * GET /v1/sessions/S/events serves.  Nothing in it depends on the time of
 * sending, so a re-delivery of F..L is the same bytes under the same
 * webhook-id; only webhook-timestamp and the signature are new.
 *
 * A 2xx confirms.  Anything else is transient (retried by the exporter with
 * back-off) except 410 Gone, which sets `stop`: the receiver asked never to
 * be sent to again.  Redirects are not followed, the answer's body is read
 * up to EXPORT_WEBHOOK_REPLY_MAX bytes, and the URL's password never
 * reaches a message. */
#include "export/export_webhook.h"

#include "base/base64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/sha256.h"
#include "export/export_row.h"
#include "export/export_target.h"
#include "export/export_url.h"

#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPORT_WEBHOOK_CONNECT_TIMEOUT_MS 3000L
#define EXPORT_WEBHOOK_TIMEOUT_MS 15000L
#define EXPORT_WEBHOOK_REPLY_KEEP 200         /* bytes of an answer quoted in an error */
#define EXPORT_WEBHOOK_REPLY_MAX (64 * 1024)  /* read no more of an answer than this */

struct export_webhook {
    struct export_target base; /* first: the exporter holds a pointer to it */
    CURL *curl;                /* kept between requests: keep-alive */
    int curl_global;
    unsigned char key[EXPORT_WEBHOOK_KEY_MAX];
    size_t key_len;
    long timeout_ms;
    struct buf body;
    struct buf reply;          /* the first EXPORT_WEBHOOK_REPLY_KEEP bytes */
    size_t reply_seen;         /* bytes of the answer read in all */
};

/* ---- the pure parts ----------------------------------------------------------- */

int export_webhook_secret_parse(const char *text, unsigned char *key, size_t *key_len,
                                struct err *err)
{
    const char *p = text ? text : "";
    while (isspace((unsigned char)*p))
        p++;
    size_t n = strlen(p);
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    if (n >= 6 && strncmp(p, "whsec_", 6) == 0) {
        p += 6;
        n -= 6;
    }
    unsigned char tmp[EXPORT_WEBHOOK_KEY_MAX + 3];
    if (n == 0 || n / 4 * 3 > sizeof tmp)
        return err_set(err, ERR_INVALID, "webhook secret: expected whsec_ and a base64 key "
                                         "of 1 to %d bytes", EXPORT_WEBHOOK_KEY_MAX);
    size_t len = 0;
    if (base64_decode(p, n, tmp, &len) != 0 || len == 0 || len > EXPORT_WEBHOOK_KEY_MAX) {
        memset(tmp, 0, sizeof tmp);
        return err_set(err, ERR_INVALID, "webhook secret: expected whsec_ and a base64 key "
                                         "of 1 to %d bytes", EXPORT_WEBHOOK_KEY_MAX);
    }
    memcpy(key, tmp, len);
    memset(tmp, 0, sizeof tmp);
    *key_len = len;
    return 0;
}

void export_webhook_id(const char *session_id, uint64_t first, uint64_t last,
                       char out[EXPORT_WEBHOOK_ID_SIZE])
{
    char range[64];
    int n = snprintf(range, sizeof range, "\n%" PRIu64 "\n%" PRIu64, first, last);
    struct sha256 s;
    unsigned char d[SHA256_DIGEST_LEN];
    sha256_init(&s);
    sha256_update(&s, session_id, strlen(session_id));
    sha256_update(&s, range, (size_t)n);
    sha256_final(&s, d);
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "msg_", 4);
    for (int i = 0; i < 16; i++) {
        out[4 + 2 * i] = hex[d[i] >> 4];
        out[5 + 2 * i] = hex[d[i] & 15];
    }
    out[36] = '\0';
}

void export_webhook_sign(const unsigned char *key, size_t key_len, const char *id,
                         int64_t timestamp, const char *body, size_t body_len,
                         char out[EXPORT_WEBHOOK_SIGNATURE_SIZE])
{
    char ts[32];
    int n = snprintf(ts, sizeof ts, ".%" PRId64 ".", timestamp);
    struct sha256_hmac m;
    unsigned char mac[SHA256_DIGEST_LEN];
    sha256_hmac_init(&m, key, key_len);
    sha256_hmac_update(&m, id, strlen(id));
    sha256_hmac_update(&m, ts, (size_t)n);
    sha256_hmac_update(&m, body, body_len);
    sha256_hmac_final(&m, mac);
    memcpy(out, "v1,", 3);
    base64_encode(mac, sizeof mac, out + 3);
}

/* ---- the target --------------------------------------------------------------- */

static struct export_webhook *export_webhook_of(struct export_target *t)
{
    return (struct export_webhook *)(void *)t;
}

/* Keeps the start of the answer for messages and reads on, up to a bound:
 * a receiver that talks forever is cut off (and that delivery fails). */
static size_t export_webhook_collect(char *data, size_t size, size_t n, void *arg)
{
    struct export_webhook *w = arg;
    if (n && size > (size_t)-1 / n)
        return 0;
    size_t len = size * n;
    w->reply_seen += len;
    if (w->reply_seen > EXPORT_WEBHOOK_REPLY_MAX)
        return 0;
    if (w->reply.len < EXPORT_WEBHOOK_REPLY_KEEP) {
        size_t take = EXPORT_WEBHOOK_REPLY_KEEP - w->reply.len;
        if (take > len)
            take = len;
        if (buf_append(&w->reply, data, take))
            return 0;
    }
    return len;
}

static int export_webhook_connect(struct export_target *t, struct err *err)
{
    /* Nothing to set up: a receiver is only reached by a delivery. */
    (void)t; /* part of the interface */
    (void)err;
    return 0;
}

static void export_webhook_disconnect(struct export_target *t)
{
    struct export_webhook *w = export_webhook_of(t);
    if (w->curl)
        curl_easy_cleanup(w->curl);
    w->curl = NULL;
}

/* Builds the body of one session's run of rows. */
static int export_webhook_body(struct buf *b, const struct export_row *rows, size_t n)
{
    int rc = buf_puts(b, "{\"type\":\"sandbox-journal.events\",\"session_id\":") ||
             export_row_json_string(b, rows[0].session_id, strlen(rows[0].session_id)) ||
             buf_printf(b, ",\"first_sequence\":%" PRIu64 ",\"last_sequence\":%" PRIu64
                           ",\"events\":[",
                        rows[0].sequence, rows[n - 1].sequence);
    for (size_t i = 0; i < n && !rc; i++)
        rc = (i && buf_puts(b, ",")) || buf_append(b, rows[i].json, rows[i].json_len);
    return rc || buf_puts(b, "]}") ? ERR_NOMEM : 0;
}

/* POSTs one session's rows.  0 on a 2xx. */
static int export_webhook_post(struct export_webhook *w, const struct export_row *rows, size_t n,
                               struct err *err)
{
    const struct export_url *u = w->base.url;
    buf_reset(&w->body);
    if (export_webhook_body(&w->body, rows, n)) {
        w->base.transient = 0;
        return err_set(err, ERR_NOMEM, "webhook: out of memory");
    }
    char id[EXPORT_WEBHOOK_ID_SIZE], sig[EXPORT_WEBHOOK_SIGNATURE_SIZE];
    export_webhook_id(rows[0].session_id, rows[0].sequence, rows[n - 1].sequence, id);
    int64_t now = (int64_t)time(NULL);
    export_webhook_sign(w->key, w->key_len, id, now, w->body.data, w->body.len, sig);
    char h_id[64], h_ts[64], h_sig[96];
    snprintf(h_id, sizeof h_id, "webhook-id: %s", id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %" PRId64, now);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
    const char *lines[] = {"Content-Type: application/json", h_id, h_ts, h_sig,
                           "User-Agent: sandbox-journal", "Expect:"};
    struct curl_slist *headers = NULL;
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct curl_slist *next = curl_slist_append(headers, lines[i]);
        if (!next) {
            curl_slist_free_all(headers);
            w->base.transient = 0;
            return err_set(err, ERR_NOMEM, "webhook: out of memory");
        }
        headers = next;
    }
    if (!w->curl && !(w->curl = curl_easy_init())) {
        curl_slist_free_all(headers);
        w->base.transient = 0;
        return err_set(err, ERR_NOMEM, "webhook: cannot create a curl handle");
    }
    CURL *h = w->curl;
    buf_reset(&w->reply);
    w->reply_seen = 0;
    curl_easy_reset(h);
    CURLcode cc = curl_easy_setopt(h, CURLOPT_URL, u->text);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, EXPORT_WEBHOOK_CONNECT_TIMEOUT_MS);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, w->timeout_ms);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_POST, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, w->body.data);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->body.len);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, export_webhook_collect);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    if (cc == CURLE_OK)
        cc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    long status = 0;
    if (cc != CURLE_OK && cc != CURLE_WRITE_ERROR) {
        w->base.transient = cc != CURLE_OUT_OF_MEMORY && cc != CURLE_UNKNOWN_OPTION &&
                            cc != CURLE_BAD_FUNCTION_ARGUMENT;
        err_set(err, w->base.transient ? ERR_STORAGE : ERR_INTERNAL, "webhook: %s",
                curl_easy_strerror(cc));
        if (err)
            export_url_scrub(u, err->msg, sizeof err->msg);
        return err ? err->code : ERR_STORAGE;
    }
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (cc == CURLE_OK && status >= 200 && status < 300)
        return 0;
    char line[EXPORT_WEBHOOK_REPLY_KEEP + 1];
    snprintf(line, sizeof line, "%.*s", (int)w->reply.len, w->reply.data ? w->reply.data : "");
    line[strcspn(line, "\r\n")] = '\0';
    for (char *c = line; *c; c++)
        if ((unsigned char)*c < ' ' || (unsigned char)*c == 0x7f)
            *c = ' ';
    w->base.transient = status != 410;
    w->base.stop = status == 410;
    if (cc == CURLE_WRITE_ERROR)
        err_set(err, ERR_STORAGE, "webhook: HTTP %ld with an answer over %d bytes", status,
                EXPORT_WEBHOOK_REPLY_MAX);
    else if (status == 410)
        err_set(err, ERR_STORAGE, "webhook: the receiver answered 410 Gone");
    else if (status >= 300 && status < 400)
        err_set(err, ERR_STORAGE, "webhook: HTTP %ld (redirects are not followed)", status);
    else
        err_set(err, ERR_STORAGE, "webhook: HTTP %ld%s%s", status, line[0] ? ": " : "", line);
    if (err)
        export_url_scrub(u, err->msg, sizeof err->msg);
    return err ? err->code : ERR_STORAGE;
}

static int export_webhook_send(struct export_target *t, const struct export_batch *b,
                               struct err *err)
{
    struct export_webhook *w = export_webhook_of(t);
    /* Rows are grouped by session: one delivery per run.  A failure leaves
     * the earlier runs delivered; the exporter re-sends them with the same
     * ids, which the receiver drops. */
    size_t start = 0;
    for (size_t i = 1; i <= b->n_rows; i++) {
        if (i < b->n_rows && strcmp(b->rows[i].session_id, b->rows[start].session_id) == 0)
            continue;
        int rc = export_webhook_post(w, b->rows + start, i - start, err);
        if (rc)
            return rc;
        start = i;
    }
    return 0;
}

static void export_webhook_free(struct export_target *t)
{
    if (!t)
        return;
    struct export_webhook *w = export_webhook_of(t);
    export_webhook_disconnect(t);
    buf_free(&w->body);
    buf_free(&w->reply);
    memset(w->key, 0, sizeof w->key);
    if (w->curl_global)
        curl_global_cleanup();
    free(w);
}

static const struct export_target_ops export_webhook_ops = {
    .kind = "webhook",
    .per_session = 1,
    .connect = export_webhook_connect,
    .send = export_webhook_send,
    .disconnect = export_webhook_disconnect,
    .free = export_webhook_free,
};

int export_webhook_new(const struct export_url *u, const char *secret,
                       struct export_target **out, struct err *err)
{
    struct export_webhook *w = calloc(1, sizeof *w);
    if (!w)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = export_webhook_secret_parse(secret, w->key, &w->key_len, err);
    if (rc) {
        free(w);
        return rc;
    }
    /* Reference-counted by libcurl; called here, on the thread that creates
     * the exporter, before any exporter thread runs. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        memset(w->key, 0, sizeof w->key);
        free(w);
        return err_set(err, ERR_INTERNAL, "webhook: cannot initialize libcurl");
    }
    w->curl_global = 1;
    w->timeout_ms = EXPORT_WEBHOOK_TIMEOUT_MS;
    /* A test knob, like SJ_TEST_EXPORT_PAUSE_MS: the tests' receiver hangs
     * on purpose and must not cost 15 s each time. */
    const char *knob = getenv("SJ_TEST_WEBHOOK_TIMEOUT_MS");
    if (knob && *knob && strtol(knob, NULL, 10) > 0)
        w->timeout_ms = strtol(knob, NULL, 10);
    w->base.ops = &export_webhook_ops;
    w->base.url = u;
    buf_init(&w->body);
    buf_init(&w->reply);
    *out = &w->base;
    return 0;
}
