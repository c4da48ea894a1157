/* The `api` commands' HTTP client (see client.h).
 *
 * Every call is one libcurl easy transfer driven through a multi handle, so
 * the loop wakes at least every CLIENT_POLL_MS and a streaming call can stop
 * on a flag a signal handler set: a blocking curl_easy_perform() would sit in
 * poll() until the server's next heartbeat (15 s by default).  Responses are
 * never followed across redirects and only http/https is spoken, so an
 * endpoint cannot send the token elsewhere. */
#include "cli/client.h"

#include "export/export_url.h"

#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLIENT_POLL_MS 100
#define CLIENT_CONNECT_TIMEOUT_MS 10000L
/* An events page holds at most 10000 events; a body larger than this is not
 * something the v1 API sends. */
#define CLIENT_MAX_BODY (256u * 1024u * 1024u)

struct client {
    char *endpoint;    /* without a trailing '/' */
    char *shown;       /* the endpoint with any password masked, for messages */
    char *auth_header; /* "Authorization: Bearer <token>", or NULL */
    char *idem_header; /* "Idempotency-Key: <key>", or NULL */
};

enum client_mode {
    CLIENT_MODE_UNDECIDED,
    CLIENT_MODE_BODY,
    CLIENT_MODE_SSE,
    CLIENT_MODE_FILE, /* a 2xx body written to x->out as it arrives */
};

/* One transfer's state, reached from libcurl's write callback. */
struct client_xfer {
    CURL *easy;
    int want_sse;
    enum client_mode mode;
    struct buf body;
    struct client_sse_parser parser;
    client_sse_fn fn;
    void *arg;
    int cb_rc;       /* why the write callback refused bytes, or 0 */
    struct err *err; /* filled by whoever set cb_rc */
    FILE *in;        /* a raw body to send, or NULL (client_transfer) */
    long long in_size; /* its size, -1: unknown (sent chunked) */
    const char *in_type; /* its Content-Type */
    FILE *out;       /* where a 2xx body goes, or NULL: buffered */
};

/* new (malloc): `endpoint` with any password masked (export's masking, so
 * `api -e` and `export` hide the same), or NULL without memory. */
static char *client_mask(const char *endpoint)
{
    size_t size = 2 * strlen(endpoint) + 16; /* "***" may outgrow a short password */
    char *out = malloc(size);
    if (out)
        export_url_mask(endpoint, out, size);
    return out;
}

int client_new(const char *endpoint, const char *token, client_t **out, struct err *err)
{
    char *shown = client_mask(endpoint ? endpoint : "");
    if (!shown)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = 0;
    const char *host = endpoint ? strstr(endpoint, "://") : NULL;
    if (!endpoint || (strncasecmp(endpoint, "http://", 7) != 0 &&
                      strncasecmp(endpoint, "https://", 8) != 0))
        rc = err_set(err, ERR_INVALID, "the endpoint must be an http:// or https:// URL, "
                     "not '%s'", shown);
    else if (!host[3] || host[3] == '/')
        rc = err_set(err, ERR_INVALID, "the endpoint '%s' names no host", shown);
    else if (strpbrk(endpoint, " \t\r\n"))
        rc = err_set(err, ERR_INVALID, "the endpoint must not contain white space");
    else if (token && strpbrk(token, "\r\n"))
        rc = err_set(err, ERR_INVALID, "the token must not contain a line break");
    if (rc) {
        free(shown);
        return rc;
    }

    /* curl_global_init is reference counted; client_free() drops ours. */
    CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK) {
        free(shown);
        return err_set(err, ERR_INTERNAL, "cannot initialize libcurl: %s",
                       curl_easy_strerror(cc));
    }
    client_t *c = calloc(1, sizeof *c);
    if (!c) {
        free(shown);
        curl_global_cleanup();
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    c->shown = shown;
    /* Masked like the endpoint itself: never a trailing '/'. */
    for (size_t k = strlen(shown); k > 0 && shown[k - 1] == '/'; k--)
        shown[k - 1] = '\0';
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    c->endpoint = malloc(n + 1);
    if (c->endpoint) {
        memcpy(c->endpoint, endpoint, n);
        c->endpoint[n] = '\0';
    }
    if (token) {
        struct buf b;
        buf_init(&b);
        if (buf_printf(&b, "Authorization: Bearer %s", token) == 0)
            c->auth_header = buf_steal(&b);
        buf_free(&b);
    }
    if (!c->endpoint || (token && !c->auth_header)) {
        client_free(c);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    *out = c;
    return 0;
}

void client_free(client_t *c)
{
    if (!c)
        return;
    free(c->endpoint);
    free(c->shown);
    free(c->idem_header);
    if (c->auth_header) {
        /* The header holds the token: do not leave it in freed memory. */
        volatile char *p = c->auth_header;
        while (*p)
            *p++ = '\0';
        free(c->auth_header);
    }
    free(c);
    curl_global_cleanup();
}

int client_set_idempotency_key(client_t *c, const char *key, struct err *err)
{
    size_t n = strlen(key);
    if (n == 0 || n > 255)
        return err_set(err, ERR_INVALID, "--idempotency-key must be 1 to 255 characters");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e)
            return err_set(err, ERR_INVALID, "--idempotency-key must be printable ASCII");
    struct buf b;
    buf_init(&b);
    if (buf_printf(&b, "Idempotency-Key: %s", key) != 0) {
        buf_free(&b);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    free(c->idem_header);
    c->idem_header = buf_steal(&b);
    return 0;
}

char *client_escape(const char *segment)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(segment);
    if (n > ((size_t)-1 - 1) / 3)
        return NULL;
    char *out = malloc(n * 3 + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const unsigned char *s = (const unsigned char *)segment; *s; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '.' || *s == '_' || *s == '~') {
            *o++ = (char)*s;
        } else {
            *o++ = '%';
            *o++ = hex[*s >> 4];
            *o++ = hex[*s & 15];
        }
    }
    *o = '\0';
    return out;
}

void client_response_clear(struct client_response *r)
{
    if (!r)
        return;
    free(r->content_type);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* ---- server-sent events -------------------------------------------------- */

void client_sse_init(struct client_sse_parser *p)
{
    buf_init(&p->line);
    buf_init(&p->data);
    buf_init(&p->event);
    buf_init(&p->last_id);
    p->cr_pending = 0;
    p->first_line = 1;
    p->max_line = CLIENT_SSE_MAX_LINE;
}

void client_sse_free(struct client_sse_parser *p)
{
    buf_free(&p->line);
    buf_free(&p->data);
    buf_free(&p->event);
    buf_free(&p->last_id);
}

static int client_sse_nomem(struct err *err)
{
    return err_set(err, ERR_NOMEM, "out of memory while reading the event stream");
}

static int client_sse_dispatch(struct client_sse_parser *p, client_sse_fn fn, void *arg)
{
    if (p->data.len == 0) {
        /* An event without data lines is not dispatched (only its id counts). */
        buf_reset(&p->event);
        return 0;
    }
    p->data.data[--p->data.len] = '\0'; /* the last data line's '\n' */
    struct client_sse_event ev = {
        .id = p->last_id.len ? p->last_id.data : "",
        .event = p->event.len ? p->event.data : "message",
        .data = p->data.data,
        .data_len = p->data.len,
    };
    int rc = fn ? fn(arg, &ev) : 0;
    buf_reset(&p->data);
    buf_reset(&p->event);
    return rc;
}

static int client_sse_field(struct client_sse_parser *p, const char *name, size_t name_len,
                            const char *value, size_t value_len, struct err *err)
{
    if (name_len == 5 && memcmp(name, "event", 5) == 0) {
        buf_reset(&p->event);
        if (buf_append(&p->event, value, value_len) != 0)
            return client_sse_nomem(err);
    } else if (name_len == 4 && memcmp(name, "data", 4) == 0) {
        if (p->data.len + value_len + 1 > p->max_line)
            return err_set(err, ERR_INVALID, "an event of the stream is longer than %zu bytes",
                           p->max_line);
        if (buf_append(&p->data, value, value_len) != 0 || buf_append(&p->data, "\n", 1) != 0)
            return client_sse_nomem(err);
    } else if (name_len == 2 && memcmp(name, "id", 2) == 0) {
        if (!memchr(value, '\0', value_len)) {
            buf_reset(&p->last_id);
            if (buf_append(&p->last_id, value, value_len) != 0)
                return client_sse_nomem(err);
        }
    }
    /* "retry" and unknown fields are ignored: this client does not reconnect. */
    return 0;
}

static int client_sse_line(struct client_sse_parser *p, const char *line, size_t len,
                           client_sse_fn fn, void *arg, struct err *err)
{
    if (p->first_line) {
        p->first_line = 0;
        if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            len -= 3;
        }
    }
    if (len == 0)
        return client_sse_dispatch(p, fn, arg);
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = colon ? len - name_len - 1 : 0;
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    return client_sse_field(p, line, name_len, value, value_len, err);
}

int client_sse_feed(struct client_sse_parser *p, const char *bytes, size_t len,
                    client_sse_fn fn, void *arg, struct err *err)
{
    size_t i = 0;
    if (p->cr_pending && len > 0) {
        /* The '\n' of a CRLF split across two chunks ends nothing new. */
        p->cr_pending = 0;
        if (bytes[0] == '\n')
            i = 1;
    }
    while (i < len) {
        size_t j = i;
        while (j < len && bytes[j] != '\r' && bytes[j] != '\n')
            j++;
        if (p->line.len + (j - i) > p->max_line)
            return err_set(err, ERR_INVALID, "a line of the event stream is longer than %zu "
                           "bytes", p->max_line);
        if (j == len) {
            if (buf_append(&p->line, bytes + i, len - i) != 0)
                return client_sse_nomem(err);
            break;
        }
        const char *line = bytes + i;
        size_t line_len = j - i;
        if (p->line.len > 0) {
            if (buf_append(&p->line, bytes + i, j - i) != 0)
                return client_sse_nomem(err);
            line = p->line.data;
            line_len = p->line.len;
        }
        int rc = client_sse_line(p, line, line_len, fn, arg, err);
        buf_reset(&p->line);
        if (rc)
            return rc;
        if (bytes[j] == '\r') {
            if (j + 1 == len)
                p->cr_pending = 1;
            else if (bytes[j + 1] == '\n')
                j++;
        }
        i = j + 1;
    }
    return 0;
}

/* ---- transfers ------------------------------------------------------------ */

static void client_decide_mode(struct client_xfer *x)
{
    long status = 0;
    char *ct = NULL;
    if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK)
        ct = NULL;
    int is_sse = ct && strncasecmp(ct, "text/event-stream", 17) == 0;
    int ok = status >= 200 && status < 300;
    x->mode = x->want_sse && ok && is_sse ? CLIENT_MODE_SSE
            : x->out && ok                ? CLIENT_MODE_FILE
                                          : CLIENT_MODE_BODY;
}

/* libcurl's write callback: returning fewer bytes than given aborts the
 * transfer with CURLE_WRITE_ERROR, which client_run() turns into cb_rc. */
static size_t client_on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct client_xfer *x = userdata;
    size_t n = size * nmemb;
    if (x->mode == CLIENT_MODE_UNDECIDED)
        client_decide_mode(x);
    if (x->mode == CLIENT_MODE_SSE) {
        int rc = client_sse_feed(&x->parser, ptr, n, x->fn, x->arg, x->err);
        if (rc) {
            x->cb_rc = rc;
            return 0;
        }
        return n;
    }
    if (x->mode == CLIENT_MODE_FILE) {
        if (fwrite(ptr, 1, n, x->out) != n) {
            x->cb_rc = err_set(x->err, ERR_INTERNAL, "cannot write the answer out");
            return 0;
        }
        return n;
    }
    if (x->body.len + n > CLIENT_MAX_BODY) {
        x->cb_rc = err_set(x->err, ERR_TOO_LARGE, "the response is larger than %u bytes",
                           CLIENT_MAX_BODY);
        return 0;
    }
    if (buf_append(&x->body, ptr, n) != 0) {
        x->cb_rc = err_set(x->err, ERR_NOMEM, "out of memory reading the response");
        return 0;
    }
    return n;
}

static int client_configure(client_t *c, struct client_xfer *x, const char *method,
                            const char *url, const char *json_body, struct curl_slist *headers,
                            char *errbuf)
{
    CURL *e = x->easy;
    CURLcode cc = curl_easy_setopt(e, CURLOPT_URL, url);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    /* No SIGALRM from the resolver: the caller owns the signals. */
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CLIENT_CONNECT_TIMEOUT_MS);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(e, CURLOPT_USERAGENT, "sandbox-journal");
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, client_on_write);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    if (cc == CURLE_OK && x->in) {
        /* libcurl reads the body with fread() from READDATA as it sends. */
        cc = curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(e, CURLOPT_READDATA, x->in);
        if (cc == CURLE_OK && x->in_size >= 0)
            cc = curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->in_size);
        if (cc == CURLE_OK && strcmp(method, "PUT") != 0)
            cc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (cc == CURLE_OK && (strcmp(method, "POST") == 0 || json_body)) {
        cc = curl_easy_setopt(e, CURLOPT_POST, 1L);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE,
                                  (long)(json_body ? strlen(json_body) : 0));
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, json_body ? json_body : "");
        /* A body with another method (PUT /v1/config/mcp): sent the same way. */
        if (cc == CURLE_OK && strcmp(method, "POST") != 0)
            cc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (cc == CURLE_OK && strcmp(method, "GET") != 0) {
        cc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (cc != CURLE_OK)
        return err_set(x->err, ERR_INTERNAL, "cannot set up the request to %s: %s",
                       c->shown, curl_easy_strerror(cc));
    return 0;
}

static struct curl_slist *client_headers(client_t *c, const char *json_body, int want_sse,
                                         const char *content_type)
{
    const char *lines[6];
    char type_line[128];
    size_t n = 0;
    if (c->auth_header)
        lines[n++] = c->auth_header;
    if (c->idem_header)
        lines[n++] = c->idem_header;
    if (json_body)
        lines[n++] = "Content-Type: application/json";
    if (content_type) {
        snprintf(type_line, sizeof type_line, "Content-Type: %s", content_type);
        lines[n++] = type_line;
    }
    lines[n++] = want_sse ? "Accept: text/event-stream" : "Accept: application/json";
    /* Bodies are small: skip the 100-continue round trip. */
    lines[n++] = "Expect:";
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < n; i++) {
        struct curl_slist *next = curl_slist_append(list, lines[i]);
        if (!next) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    return list;
}

/* Drives the transfer until it is done or *stop is set.  *result is the
 * transfer's outcome (CURLE_OK when stopped early). */
static int client_drive(struct client_xfer *x, const volatile sig_atomic_t *stop,
                        CURLcode *result, struct err *err)
{
    CURLM *m = curl_multi_init();
    if (!m)
        return err_set(err, ERR_NOMEM, "cannot create a libcurl multi handle");
    CURLMcode mc = curl_multi_add_handle(m, x->easy);
    int running = 1, stopped = 0;
    while (mc == CURLM_OK) {
        mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK || !running)
            break;
        if (stop && *stop) {
            stopped = 1;
            break;
        }
        mc = curl_multi_poll(m, NULL, 0, CLIENT_POLL_MS, NULL);
    }
    *result = CURLE_OK;
    if (mc == CURLM_OK && !stopped) {
        int left = 0;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == x->easy)
                *result = msg->data.result;
    }
    CURLMcode rm = curl_multi_remove_handle(m, x->easy);
    CURLMcode cl = curl_multi_cleanup(m);
    if (mc == CURLM_OK)
        mc = rm != CURLM_OK ? rm : cl;
    if (mc != CURLM_OK)
        return err_set(err, ERR_INTERNAL, "libcurl: %s", curl_multi_strerror(mc));
    return 0;
}

static int client_transport_error(client_t *c, CURLcode cc, const char *errbuf,
                                  struct err *err)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return err_set(err, ERR_INTERNAL, "cannot reach %s: %s", c->shown, why);
    default:
        return err_set(err, ERR_INTERNAL, "request to %s failed: %s", c->shown, why);
    }
}

static int client_run(client_t *c, const char *method, const char *path, const char *json_body,
                      int want_sse, const volatile sig_atomic_t *stop, client_sse_fn fn,
                      void *arg, struct client_xfer *raw, struct client_response *resp,
                      struct err *err)
{
    memset(resp, 0, sizeof *resp);
    struct client_xfer x = { .want_sse = want_sse, .fn = fn, .arg = arg, .err = err };
    if (raw) {
        x.in = raw->in;
        x.in_size = raw->in_size;
        x.in_type = raw->in_type;
        x.out = raw->out;
    }
    buf_init(&x.body);
    client_sse_init(&x.parser);
    struct buf url;
    buf_init(&url);
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    CURLcode result = CURLE_OK;
    char *ct = NULL;
    int rc = 0;

    if (buf_printf(&url, "%s%s", c->endpoint, path) != 0) {
        rc = err_set(err, ERR_NOMEM, "out of memory");
        goto done;
    }
    headers = client_headers(c, json_body, want_sse, x.in ? x.in_type : NULL);
    x.easy = curl_easy_init();
    if (!headers || !x.easy) {
        rc = err_set(err, ERR_NOMEM, "cannot create a libcurl handle");
        goto done;
    }
    rc = client_configure(c, &x, method, url.data, json_body, headers, errbuf);
    if (rc)
        goto done;
    rc = client_drive(&x, stop, &result, err);
    if (rc)
        goto done;
    if (x.cb_rc) {
        rc = x.cb_rc; /* err was filled where the bytes were refused, or by `fn` */
        goto done;
    }
    if (result != CURLE_OK) {
        rc = client_transport_error(c, result, errbuf, err);
        goto done;
    }
    if (curl_easy_getinfo(x.easy, CURLINFO_RESPONSE_CODE, &resp->status) != CURLE_OK ||
        curl_easy_getinfo(x.easy, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK) {
        rc = err_set(err, ERR_INTERNAL, "cannot read the response of %s", c->shown);
        goto done;
    }
    if (ct && !(resp->content_type = strdup(ct))) {
        rc = err_set(err, ERR_NOMEM, "out of memory");
        goto done;
    }
    if (x.body.len > 0) {
        resp->body_len = x.body.len;
        resp->body = buf_steal(&x.body);
    }

done:
    if (rc)
        client_response_clear(resp);
    if (x.easy)
        curl_easy_cleanup(x.easy);
    curl_slist_free_all(headers);
    buf_free(&url);
    buf_free(&x.body);
    client_sse_free(&x.parser);
    return rc;
}

int client_request(client_t *c, const char *method, const char *path, const char *json_body,
                   struct client_response *resp, struct err *err)
{
    return client_run(c, method, path, json_body, 0, NULL, NULL, NULL, NULL, resp, err);
}

int client_transfer(client_t *c, const char *method, const char *path, FILE *in,
                    long long in_size, const char *content_type, FILE *out,
                    struct client_response *resp, struct err *err)
{
    struct client_xfer raw = { .in = in, .in_size = in_size, .in_type = content_type,
                               .out = out };
    return client_run(c, method, path, NULL, 0, NULL, NULL, NULL, &raw, resp, err);
}

int client_stream(client_t *c, const char *method, const char *path, const char *json_body,
                  const volatile sig_atomic_t *stop, client_sse_fn fn, void *arg,
                  struct client_response *resp, struct err *err)
{
    return client_run(c, method, path, json_body, 1, stop, fn, arg, NULL, resp, err);
}
