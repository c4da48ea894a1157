/* RFC 6455 WebSocket framing, server side: the handshake's accept key, the
 * frames a server sends (unmasked), and a reader that turns a client's bytes
 * into messages.  Pure: no I/O, no threads; the only allocation is the
 * reader's buffer, bounded by its `max_message`.  Used by the process
 * terminal (http/terminal.c); tests/unit/test_ws.c and tests/fuzz/fuzz_ws.c.
 *
 * What the reader enforces (a violation is an error event carrying the
 * close code to send, after which the connection is to be closed):
 *   - every client frame is masked (1002), reserved bits are clear (1002),
 *     the opcode is known (1002);
 *   - control frames are final and carry at most 125 bytes (1002);
 *   - continuation frames only continue a message and a new data frame does
 *     not interrupt one (1002); control frames may come between fragments;
 *   - a message (all its fragments) or any frame longer than max_message
 *     (1009), and a 64-bit length with the top bit set (1002);
 *   - a text message is valid UTF-8 (1007);
 *   - a close frame's payload is empty or a code and UTF-8 reason (1002). */
#ifndef SJ_WS_H
#define SJ_WS_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_CONTINUATION = 0x0,
    WS_TEXT = 0x1,
    WS_BINARY = 0x2,
    WS_CLOSE = 0x8,
    WS_PING = 0x9,
    WS_PONG = 0xA,
};

#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_NO_STATUS 1005 /* received only: a close without a code */
#define WS_CLOSE_BAD_DATA 1007
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011

/* The longest frame header: 2 bytes, 8 of length, 4 of mask. */
#define WS_HEADER_MAX 14

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64 of the
 * SHA-1 of the key and the RFC's GUID.  `out` holds 29 bytes (28 and NUL).
 * -1 if the key is not the base64 of 16 bytes (the handshake's 400). */
#define WS_ACCEPT_LEN 29
int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN]);

/* Writes the header of an unmasked final frame of `opcode` with `len`
 * payload bytes into out; returns its length (2, 4 or 10). */
size_t ws_header_encode(unsigned char out[WS_HEADER_MAX], enum ws_opcode opcode, uint64_t len);

/* Appends a whole unmasked frame (header and payload) to `b`: 0 or ERR_NOMEM. */
int ws_frame_append(struct buf *b, enum ws_opcode opcode, const void *payload, size_t len);

/* Appends a close frame with `code` and a reason (cut to fit in 123 bytes). */
int ws_close_append(struct buf *b, unsigned code, const char *reason);

/* XORs data[0..len) with the mask, starting at byte `offset` of the mask
 * stream (so a payload can be unmasked in pieces). */
void ws_mask(unsigned char *data, size_t len, const unsigned char mask[4], uint64_t offset);

/* 1 if s[0..len) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int ws_utf8_valid(const unsigned char *s, size_t len);

enum ws_event_kind {
    WS_EV_NONE,    /* needs more bytes */
    WS_EV_MESSAGE, /* a complete text or binary message */
    WS_EV_PING,
    WS_EV_PONG,
    WS_EV_CLOSE,   /* the client's close: answer it with its code and close */
    WS_EV_ERROR,   /* send a close with `code`, then close */
};

struct ws_event {
    enum ws_event_kind kind;
    enum ws_opcode opcode;    /* WS_TEXT or WS_BINARY for a message */
    const unsigned char *data; /* borrowed until the next ws_reader_* call */
    size_t len;
    unsigned code;            /* WS_EV_CLOSE (WS_CLOSE_NO_STATUS if none), WS_EV_ERROR */
};

struct ws_reader {
    size_t max_message;
    struct buf in;      /* bytes received and not yet consumed */
    size_t consumed;    /* of `in`, by events already returned */
    struct buf msg;     /* the fragments of the message being assembled */
    enum ws_opcode msg_opcode; /* 0: no message in progress */
    int failed;
};

void ws_reader_init(struct ws_reader *r, size_t max_message);
void ws_reader_free(struct ws_reader *r);

/* How many more bytes ws_reader_push() takes now: the caller reads at most
 * this much from its socket, so the buffer stays within about one frame. */
size_t ws_reader_room(const struct ws_reader *r);

/* Appends received bytes (at most ws_reader_room()): 0 or ERR_NOMEM. */
int ws_reader_push(struct ws_reader *r, const void *data, size_t len);

/* The next event from the bytes pushed so far (WS_EV_NONE: push more).
 * After WS_EV_ERROR every call returns it again.  0 or ERR_NOMEM. */
int ws_reader_next(struct ws_reader *r, struct ws_event *ev);

#endif
