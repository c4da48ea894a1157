/* A small blocking WebSocket client (RFC 6455) for the integration tests of
 * the process terminal: 127.0.0.1 only, every wait bounded by a timeout
 * (poll), frames masked as a client must, and raw frames for the tests of
 * what the server refuses.  Independent of src/http/ws.c on purpose: the
 * server's framing is tested against a second implementation. */
#ifndef SJ_TEST_WSC_H
#define SJ_TEST_WSC_H

#include <stddef.h>

struct wsc;

struct wsc_msg {
    int opcode;     /* 1 text, 2 binary, 8 close, 9 ping, 10 pong */
    char *data;     /* new (free()), NUL-terminated; for a close: the reason */
    size_t len;
    unsigned code;  /* a close frame's code (1005 when it had none) */
};

/* Opens `path` (query included) with the extra header lines in `headers`
 * (NULL-terminated, may be NULL).  101 with the right Sec-WebSocket-Accept:
 * 0 and *out.  Otherwise -1, *status the HTTP status (0 if none came) and
 * *body (new, may be NULL) the response body.  `rcvbuf` > 0 sets the
 * socket's receive buffer before connecting (a slow client). */
int wsc_open(int port, const char *path, const char *const *headers, int rcvbuf, int timeout_ms,
             struct wsc **out, int *status, char **body);

/* Sends one masked frame, final (fin 1) or a fragment (fin 0): 0 or -1. */
int wsc_send_frame(struct wsc *w, int opcode, int fin, const void *data, size_t len);
/* A text frame. */
int wsc_send_text(struct wsc *w, const char *text);
/* Sends bytes as they are (a frame the test builds by hand). */
int wsc_send_raw(struct wsc *w, const void *data, size_t len);

/* The next frame from the server (within timeout_ms): 0 with *m filled
 * (wsc_msg_free()), -1 on timeout, -2 when the connection closed, -3 for a
 * frame a server must not send (masked, reserved bits). */
int wsc_recv(struct wsc *w, int timeout_ms, struct wsc_msg *m);
void wsc_msg_free(struct wsc_msg *m);

/* Closes the socket and frees `w` (no close handshake; NULL is a no-op). */
void wsc_free(struct wsc *w);

#endif
