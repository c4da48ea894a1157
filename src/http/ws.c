/* RFC 6455 framing (see ws.h for what the reader enforces). */
#include "http/ws.h"

#include "base/base64.h"
#include "base/err.h"
#include "base/sha1.h"

#include <string.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN])
{
    size_t klen = strlen(key);
    unsigned char raw[24];
    size_t rlen = 0;
    if (klen != 24 || base64_decode(key, klen, raw, &rlen) != 0 || rlen != 16)
        return -1;
    struct sha1 s;
    unsigned char d[SHA1_DIGEST_LEN];
    sha1_init(&s);
    sha1_update(&s, key, klen);
    sha1_update(&s, ws_guid, sizeof ws_guid - 1);
    sha1_final(&s, d);
    base64_encode(d, sizeof d, out);
    return 0;
}

size_t ws_header_encode(unsigned char out[WS_HEADER_MAX], enum ws_opcode opcode, uint64_t len)
{
    out[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        out[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
    return 10;
}

int ws_frame_append(struct buf *b, enum ws_opcode opcode, const void *payload, size_t len)
{
    unsigned char h[WS_HEADER_MAX];
    size_t hl = ws_header_encode(h, opcode, len);
    if (buf_reserve(b, hl + len) != 0)
        return ERR_NOMEM;
    if (buf_append(b, h, hl) != 0 || (len && buf_append(b, payload, len) != 0))
        return ERR_NOMEM; /* not reached: reserved above */
    return 0;
}

int ws_close_append(struct buf *b, unsigned code, const char *reason)
{
    unsigned char p[125];
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > sizeof p - 2)
        rl = sizeof p - 2;
    /* A cut must not split a UTF-8 sequence: back off continuation bytes. */
    while (rl && rl < strlen(reason) && ((unsigned char)reason[rl] & 0xc0) == 0x80)
        rl--;
    p[0] = (unsigned char)(code >> 8);
    p[1] = (unsigned char)code;
    if (rl)
        memcpy(p + 2, reason, rl);
    return ws_frame_append(b, WS_CLOSE, p, rl + 2);
}

void ws_mask(unsigned char *data, size_t len, const unsigned char mask[4], uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        data[i] ^= mask[(offset + i) & 3];
}

int ws_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (len - i - 1 < n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

void ws_reader_init(struct ws_reader *r, size_t max_message)
{
    memset(r, 0, sizeof *r);
    r->max_message = max_message;
    buf_init(&r->in);
    buf_init(&r->msg);
}

void ws_reader_free(struct ws_reader *r)
{
    buf_free(&r->in);
    buf_free(&r->msg);
}

/* Drops the bytes of the frames already returned: only when more arrive, so
 * a push of many small frames is not moved once per frame. */
static void ws_reader_compact(struct ws_reader *r)
{
    if (r->consumed) {
        buf_consume(&r->in, r->consumed);
        r->consumed = 0;
    }
}

/* The last assembled message was handed over: its buffer is free again. */
static void ws_reader_settle(struct ws_reader *r)
{
    if (!r->msg_opcode && r->msg.len)
        buf_reset(&r->msg);
}

size_t ws_reader_room(const struct ws_reader *r)
{
    size_t cap = r->max_message + WS_HEADER_MAX;
    size_t have = r->in.len - r->consumed;
    return have >= cap ? 0 : cap - have;
}

int ws_reader_push(struct ws_reader *r, const void *data, size_t len)
{
    ws_reader_settle(r);
    ws_reader_compact(r);
    return buf_append(&r->in, data, len);
}

static int ws_fail(struct ws_reader *r, struct ws_event *ev, unsigned code)
{
    r->failed = (int)code;
    ev->kind = WS_EV_ERROR;
    ev->code = code;
    return 0;
}

/* One frame: 0 with *ev set, 1 after a non-final fragment (look at the
 * next frame: a loop, not recursion, as a client may send any number of
 * empty fragments), or ERR_NOMEM. */
static int ws_reader_step(struct ws_reader *r, struct ws_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (r->failed)
        return ws_fail(r, ev, (unsigned)r->failed);
    ws_reader_settle(r);
    size_t have = r->in.len - r->consumed;
    if (have < 2)
        return 0; /* (before any byte in.data is NULL: no pointer from it) */
    unsigned char *p = (unsigned char *)r->in.data + r->consumed;
    int fin = p[0] >> 7;
    unsigned op = p[0] & 0x0f;
    int masked = p[1] >> 7;
    uint64_t len = p[1] & 0x7f;
    size_t hl = 2;
    if (p[0] & 0x70)
        return ws_fail(r, ev, WS_CLOSE_PROTOCOL); /* no extension was negotiated */
    if (!masked)
        return ws_fail(r, ev, WS_CLOSE_PROTOCOL);
    int control = op >= 0x8;
    if (op != WS_CONTINUATION && op != WS_TEXT && op != WS_BINARY && op != WS_CLOSE &&
        op != WS_PING && op != WS_PONG)
        return ws_fail(r, ev, WS_CLOSE_PROTOCOL);
    if (control && (!fin || len > 125))
        return ws_fail(r, ev, WS_CLOSE_PROTOCOL);
    if (len == 126) {
        if (have < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        hl = 4;
    } else if (len == 127) {
        if (have < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        hl = 10;
        if (len >> 63)
            return ws_fail(r, ev, WS_CLOSE_PROTOCOL);
    }
    /* Checked before the payload arrives: a client cannot make us wait for
     * (or buffer) more than the bound. */
    if (!control) {
        if (op == WS_CONTINUATION ? !r->msg_opcode : r->msg_opcode != 0)
            return ws_fail(r, ev, WS_CLOSE_PROTOCOL);
        if (len > r->max_message || r->msg.len + len > r->max_message)
            return ws_fail(r, ev, WS_CLOSE_TOO_BIG);
    }
    if (have - hl < 4)
        return 0;
    const unsigned char *mask = p + hl;
    hl += 4;
    if (have - hl < len)
        return 0;
    unsigned char *payload = p + hl;
    size_t n = (size_t)len;
    ws_mask(payload, n, mask, 0);
    r->consumed += hl + n;

    if (control) {
        ev->data = payload;
        ev->len = n;
        if (op == WS_PING) {
            ev->kind = WS_EV_PING;
        } else if (op == WS_PONG) {
            ev->kind = WS_EV_PONG;
        } else {
            if (n == 1)
                return ws_fail(r, ev, WS_CLOSE_PROTOCOL);
            ev->kind = WS_EV_CLOSE;
            ev->code = WS_CLOSE_NO_STATUS;
            if (n >= 2) {
                ev->code = (unsigned)payload[0] << 8 | payload[1];
                ev->data = payload + 2;
                ev->len = n - 2;
                int valid = (ev->code >= 1000 && ev->code <= 1003) ||
                            (ev->code >= 1007 && ev->code <= 1011) ||
                            (ev->code >= 3000 && ev->code <= 4999);
                if (!valid || !ws_utf8_valid(ev->data, ev->len))
                    return ws_fail(r, ev, WS_CLOSE_PROTOCOL);
            }
        }
        return 0;
    }
    if (fin && op != WS_CONTINUATION) {
        /* The common case: a whole message in one frame, handed over in place. */
        if (op == WS_TEXT && !ws_utf8_valid(payload, n))
            return ws_fail(r, ev, WS_CLOSE_BAD_DATA);
        ev->kind = WS_EV_MESSAGE;
        ev->opcode = (enum ws_opcode)op;
        ev->data = payload;
        ev->len = n;
        return 0;
    }
    if (op != WS_CONTINUATION)
        r->msg_opcode = (enum ws_opcode)op;
    if (n && buf_append(&r->msg, payload, n) != 0)
        return ERR_NOMEM;
    if (!fin)
        return 1;
    enum ws_opcode mop = r->msg_opcode;
    r->msg_opcode = 0; /* msg is reset at the next call */
    if (mop == WS_TEXT && !ws_utf8_valid((unsigned char *)r->msg.data, r->msg.len))
        return ws_fail(r, ev, WS_CLOSE_BAD_DATA);
    ev->kind = WS_EV_MESSAGE;
    ev->opcode = mop;
    ev->data = (const unsigned char *)r->msg.data;
    ev->len = r->msg.len;
    return 0;
}

int ws_reader_next(struct ws_reader *r, struct ws_event *ev)
{
    int rc;
    while ((rc = ws_reader_step(r, ev)) == 1)
        ;
    return rc;
}
