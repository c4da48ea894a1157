/* Turning a canonical script step (fm_script.h) into the bytes one of the
 * four APIs would send.  Pure: no I/O, no clock except the "created"
 * field of chat chunks, so every wire format can be checked in isolation.
 *
 * The shapes copy the Python fakes in /work/shared/agent-notes/, which
 * were verified against Claude Code 2.1.197, Codex 0.169.0 and OpenCode
 * 1.18.33: event names, field order, ids ("msg_fake_<seq>",
 * "toolu_fake_<seq>_<block>", "resp_<seq>", "call_<seq>_<block>", ...) and
 * the fixed usage numbers. */
#ifndef FM_RENDER_H
#define FM_RENDER_H

#include "fm_script.h"

#include <jansson.h>
#include <stddef.h>

struct fm_render_reply {
    int status;
    const char *content_type; /* static */
    json_t *headers;          /* new or NULL: extra response headers, name -> string */
    int stream;               /* 1: send `frames` as an event stream; 0: send `body` */
    char **frames;            /* owned: one complete SSE frame each ("event: ...\n\n") */
    size_t *frame_lens;
    size_t n_frames;
    char *body; /* owned, !stream */
    size_t body_len;
    long delay_ms;       /* before the status line */
    long chunk_delay_ms; /* between two frames */
    int disconnect;      /* close the connection after the frames, unterminated */
};

/* Renders `step` as the answer to the parsed request `req` (its "model",
 * "stream" and "stream_options" are honoured) of `api`; `seq` is the model
 * request number used in ids.  0, or -1 when memory ran out (then `out`
 * holds nothing to free).  Thread: any. */
int fm_render_step(enum fm_api api, const json_t *step, const json_t *req, unsigned long seq,
                   struct fm_render_reply *out /* OUT */);

void fm_render_reply_free(struct fm_render_reply *r);

/* new (malloc): an error body in the API's own shape, e.g.
 *   anthropic: {"type":"error","error":{"type":T,"message":M}}
 *   openai:    {"error":{"message":M,"type":T,"param":null,"code":C}}
 *   gemini:    {"error":{"code":status,"message":M,"status":T}}
 * `type` NULL picks the usual type for `status`; `code` may be NULL. */
char *fm_render_error_body(enum fm_api api, int status, const char *type, const char *message,
                           const char *code);

#endif
