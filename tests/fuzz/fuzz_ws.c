/* libFuzzer harness for the WebSocket reader (src/http/ws.c), which reads
 * what any client of the process terminal sends.  The first byte chooses
 * the size of the pieces the rest is pushed in (as recv() would cut it).
 * Invariants: the same bytes whole and in pieces give the same events;
 * no message is longer than the bound; a text message is valid UTF-8; an
 * error is 1002, 1007 or 1009 and sticks; the reader never asks for more
 * while refusing room (no stall); a close's code is one a peer may send.
 * Built with -DSJ_FUZZ=ON and clang; seeds in corpus/fuzz_ws/. */
#include "fuzz_common.h"
#include "http/ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_WS_MAX 4096

static void fuzz_ws_mix(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ b[i]) * 1099511628211ull;
}

/* Feeds data in pieces of `piece` bytes (0: whole); returns the events' hash. */
static uint64_t fuzz_ws_run(const uint8_t *data, size_t size, size_t piece)
{
    struct ws_reader r;
    ws_reader_init(&r, FUZZ_WS_MAX);
    uint64_t h = 1469598103934665603ull;
    size_t off = 0;
    int failed = 0;
    for (;;) {
        struct ws_event ev;
        if (ws_reader_next(&r, &ev) != 0)
            abort(); /* no allocation fails here */
        if (ev.kind == WS_EV_NONE) {
            if (off == size)
                break;
            size_t room = ws_reader_room(&r);
            if (room == 0)
                abort(); /* waiting for bytes it will not take */
            size_t n = piece ? piece : size - off;
            if (n > size - off)
                n = size - off;
            if (n > room)
                n = room;
            if (ws_reader_push(&r, data + off, n) != 0)
                abort();
            off += n;
            continue;
        }
        unsigned char kind = (unsigned char)ev.kind;
        fuzz_ws_mix(&h, &kind, 1);
        fuzz_ws_mix(&h, &ev.code, sizeof ev.code);
        if (ev.kind == WS_EV_ERROR) {
            if (ev.code != WS_CLOSE_PROTOCOL && ev.code != WS_CLOSE_BAD_DATA &&
                ev.code != WS_CLOSE_TOO_BIG)
                abort();
            failed = 1;
            break;
        }
        if (ev.len)
            fuzz_ws_mix(&h, ev.data, ev.len);
        if (ev.kind == WS_EV_MESSAGE) {
            if (ev.len > FUZZ_WS_MAX)
                abort();
            if (ev.opcode == WS_TEXT && !ws_utf8_valid(ev.data, ev.len))
                abort();
            if (ev.opcode != WS_TEXT && ev.opcode != WS_BINARY)
                abort();
        }
        if ((ev.kind == WS_EV_PING || ev.kind == WS_EV_PONG) && ev.len > 125)
            abort();
        if (ev.kind == WS_EV_CLOSE && ev.code != WS_CLOSE_NO_STATUS &&
            (ev.code < 1000 || ev.code > 4999))
            abort();
    }
    if (failed) {
        struct ws_event again;
        if (ws_reader_next(&r, &again) != 0 || again.kind != WS_EV_ERROR)
            abort();
    }
    ws_reader_free(&r);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = data[0] % 17;
    uint64_t whole = fuzz_ws_run(data + 1, size - 1, 0);
    uint64_t cut = fuzz_ws_run(data + 1, size - 1, piece ? piece : 1);
    if (whole != cut)
        abort();
    return 0;
}
