/* The test tar writer (tarw.h). */
#include "tarw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tarw_pad(struct buf *b)
{
    static const char zeros[512];
    size_t pad = (512 - b->len % 512) % 512;
    if (buf_append(b, zeros, pad) != 0)
        abort();
}

static void tarw_header(struct buf *b, const char *name, char type, const char *link,
                        size_t size)
{
    unsigned char h[512];
    memset(h, 0, sizeof h);
    strncpy((char *)h, name, 100);
    snprintf((char *)h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    snprintf((char *)h + 136, 12, "%011o", 0);
    h[156] = (unsigned char)type;
    if (link)
        strncpy((char *)h + 157, link, 100);
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof h; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    if (buf_append(b, h, sizeof h) != 0)
        abort();
}

void tarw_add(struct buf *b, const char *name, char type, const char *link, const char *data,
              size_t len)
{
    if (strlen(name) > 100) {
        tarw_header(b, "././@LongLink", 'L', NULL, strlen(name) + 1);
        if (buf_append(b, name, strlen(name) + 1) != 0)
            abort();
        tarw_pad(b);
    }
    tarw_header(b, name, type, link, type == '0' ? len : 0);
    if (type == '0' && len) {
        if (buf_append(b, data, len) != 0)
            abort();
        tarw_pad(b);
    }
}

void tarw_pax(struct buf *b, ...)
{
    struct buf recs;
    buf_init(&recs);
    va_list ap;
    va_start(ap, b);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
        const char *v = va_arg(ap, const char *);
        size_t body = strlen(k) + strlen(v) + 3; /* ' ', '=', '\n' */
        size_t len = body + 1;
        while ((size_t)snprintf(NULL, 0, "%zu", len) + body != len)
            len++;
        if (buf_printf(&recs, "%zu %s=%s\n", len, k, v) != 0)
            abort();
    }
    va_end(ap);
    tarw_header(b, "PaxHeader", 'x', NULL, recs.len);
    if (buf_append(b, recs.data, recs.len) != 0)
        abort();
    tarw_pad(b);
    buf_free(&recs);
}

void tarw_end(struct buf *b)
{
    static const char zeros[1024];
    if (buf_append(b, zeros, sizeof zeros) != 0)
        abort();
}
