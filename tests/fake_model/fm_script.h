/* The scenario script of sj-fake-model: loading, validation, and picking
 * the reply for each model request.  The file format is documented in
 * tests/fake_model/README.md.
 *
 * Loading turns every step into one canonical form so the renderer never
 * has to guess: every reply step becomes
 *   {"blocks":[BLOCK...], "stop_reason"?, "stream_error"?, "disconnect"?,
 *    "delay_ms":N, "chunk_delay_ms":N, "match"?}
 * with BLOCK one of
 *   {"type":"text",     "text":S | "pieces":[S...], "chunks":N}
 *   {"type":"thinking", "text":S | "pieces":[S...], "chunks":N, "signature"?}
 *   {"type":"tool",     "name":S, "id"?, "input":J | "arguments":S, "chunks":N}
 *   {"type":"custom",   "name":S, "id"?, "input":S, "chunks":N}
 * and every error step becomes
 *   {"error":{"status":N, "type"?, "message":S, "code"?, "headers":{...},
 *             "body"?}, "delay_ms":N, "match"?}
 * Anything the format does not know is refused at load time with a message
 * naming the place ("steps[1].blocks[0]: unknown key \"nmae\""), so a typo
 * in a test script fails the test at start-up instead of misbehaving. */
#ifndef FM_SCRIPT_H
#define FM_SCRIPT_H

#include <jansson.h>
#include <stddef.h>

/* The wire protocols served. */
enum fm_api {
    FM_API_ANTHROPIC, /* POST /v1/messages */
    FM_API_RESPONSES, /* POST /v1/responses */
    FM_API_CHAT,      /* POST /v1/chat/completions */
    FM_API_GEMINI,    /* POST /v1beta/models/{model}:generateContent and :streamGenerateContent */
    FM_API_COUNT
};

/* static: "anthropic", "responses", "chat" or "gemini". */
const char *fm_script_api_name(enum fm_api api);

typedef struct fm_script fm_script_t;

/* Reads and validates the script file at `path` (at most 16 MiB).
 * new: free with fm_script_free().  NULL on failure, with a one-line
 * reason in err[size]. */
fm_script_t *fm_script_load(const char *path, char *err, size_t size);
void fm_script_free(fm_script_t *s);

/* What answers one model request. */
struct fm_script_choice {
    json_t *step;        /* new: canonical step, templates already filled in */
    const char *kind;    /* static: "step", "rule", "side" or "after" */
    long index;          /* the step or rule index; -1 for "side" and fixed "after" */
    const char *section; /* static: "default" or the API section name */
    unsigned long seq;   /* this model request's number, 1-based, all APIs together */
};

/* Picks the reply to a model request of `api`.  `raw` is the request body
 * (NUL-terminated), used for "match" rules and {{re:...}} templates;
 * `body` is the parsed body; `session` is the request's x-session-id (NULL
 * if none), whose own cursor a "per_session" section advances.  Consumes a
 * step when the script says so.
 * 0, or -1 when memory ran out (*out untouched).  Thread: any; picks are
 * serialized, so concurrent requests consume steps one at a time. */
int fm_script_pick(fm_script_t *s, enum fm_api api, const char *raw, const json_t *body,
                   const char *session, struct fm_script_choice *out /* OUT */);

/* Rewinds every cursor and the request number to the start. */
void fm_script_reset(fm_script_t *s);

/* new: {"model_requests":N,"sections":{"<name>":{"next":i,"steps":n},...}};
 * a "per_session" section also has "sessions":{"<x-session-id>":next}. */
json_t *fm_script_state(fm_script_t *s);

/* borrowed (valid until fm_script_free): the array of model ids that
 * GET /v1/models lists. */
const json_t *fm_script_models(const fm_script_t *s);

#endif
