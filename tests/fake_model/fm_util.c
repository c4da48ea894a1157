/* Helpers for sj-fake-model; see fm_util.h. */
#include "fm_util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

atomic_int fm_util_stopping;

int fm_util_sleep_ms(long ms)
{
    while (ms > 0) {
        long slice = ms < 10 ? ms : 10;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = slice * 1000000L};
        if (atomic_load(&fm_util_stopping))
            return -1;
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        ms -= slice;
    }
    return atomic_load(&fm_util_stopping) ? -1 : 0;
}

int fm_util_buf_append(struct fm_util_buf *b, const void *data, size_t len, size_t limit)
{
    if (len > SIZE_MAX - b->len - 1 || (limit && b->len + len > limit))
        return -1;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *p;
        while (cap < b->len + len + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + len + 1 : cap * 2;
        p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

void fm_util_buf_free(struct fm_util_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Length of the well-formed UTF-8 sequence at s[0..left), or 0 if there is
 * none (overlong forms, surrogates and values past U+10FFFF are refused, as
 * jansson refuses them). */
static size_t fm_util_seq_len(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return c ? 1 : 0;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

json_t *fm_util_split(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s), points = 0, per, off = 0;
    json_t *out = json_array();

    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t k = fm_util_seq_len(u + i, len - i);
        if (!k)
            goto fail;
        i += k;
        points++;
    }
    if (points == 0) {
        if (json_array_append_new(out, json_string("")) != 0)
            goto fail;
        return out;
    }
    if (n == 0)
        n = 1;
    if (n > points)
        n = points;
    per = (points + n - 1) / n; /* ceil, as the verified Python fakes split */
    while (off < len) {
        size_t start = off;
        for (size_t p = 0; p < per && off < len; p++)
            off += fm_util_seq_len(u + off, len - off);
        if (json_array_append_new(out, json_stringn(s + start, off - start)) != 0)
            goto fail;
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

char *fm_util_sanitize(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    char *out = malloc(len + 1);
    size_t i = 0;
    if (!out)
        return NULL;
    while (i < len) {
        size_t k = fm_util_seq_len(u + i, len - i);
        if (k == 0) {
            out[i++] = '?';
            continue;
        }
        memcpy(out + i, s + i, k);
        i += k;
    }
    out[len] = '\0';
    return out;
}

int fm_util_in_list(const char *name, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (strcasecmp(name, names[i]) == 0)
            return 1;
    return 0;
}
