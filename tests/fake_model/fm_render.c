/* Wire formats of the four APIs; see fm_render.h.
 *
 * Anthropic Messages (POST /v1/messages, "stream":true):
 *   message_start, then per block content_block_start, deltas (text_delta,
 *   thinking_delta + one signature_delta, input_json_delta),
 *   content_block_stop; then message_delta (stop_reason) and message_stop.
 *   Frames are "event: <type>\ndata: <json>\n\n".
 * OpenAI Responses (POST /v1/responses):
 *   response.created, per item output_item.added ... output_item.done,
 *   response.completed; same framing, the event name is the data's "type".
 * OpenAI chat.completions (POST /v1/chat/completions):
 *   "data: <chunk>\n\n" frames, a finish chunk, a usage chunk when
 *   stream_options.include_usage, then "data: [DONE]\n\n".
 * Gemini (POST /v1beta/models/{model}:streamGenerateContent?alt=sse):
 *   "data: <GenerateContentResponse>\n\n" frames, one per delta or
 *   function call, finishReason on the last; :generateContent gets one.
 * Without "stream":true each API gets its non-streamed JSON object. */
#include "fm_render.h"

#include "fm_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FM_RENDER_DUMP (JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER)

/* Frames under construction.  The first failure sticks, so the builders
 * can emit without checking each call and test `failed` once. */
struct fm_render_sse {
    char **frames;
    size_t *lens;
    size_t n, cap;
    int named; /* "event:" lines (Anthropic, Responses) or bare "data:" (chat) */
    int failed;
};

static void fm_render_push(struct fm_render_sse *s, char *frame)
{
    if (!frame) {
        s->failed = 1;
        return;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        char **frames = realloc(s->frames, cap * sizeof *frames);
        size_t *lens;
        if (!frames) {
            free(frame);
            s->failed = 1;
            return;
        }
        s->frames = frames;
        lens = realloc(s->lens, cap * sizeof *lens);
        if (!lens) {
            free(frame);
            s->failed = 1;
            return;
        }
        s->lens = lens;
        s->cap = cap;
    }
    s->lens[s->n] = strlen(frame);
    s->frames[s->n++] = frame;
}

/* Emits one event; `data` is stolen (NULL marks the build failed). */
static void fm_render_emit(struct fm_render_sse *s, const char *event, json_t *data)
{
    char *text, *frame;
    size_t size;
    if (!data) {
        s->failed = 1;
        return;
    }
    text = json_dumps(data, FM_RENDER_DUMP);
    if (!text) {
        json_decref(data);
        s->failed = 1;
        return;
    }
    size = strlen(text) + (event ? strlen(event) : 0) + 32;
    frame = malloc(size);
    if (frame) {
        if (s->named)
            snprintf(frame, size, "event: %s\ndata: %s\n\n", event, text);
        else
            snprintf(frame, size, "data: %s\n\n", text);
    }
    free(text);
    json_decref(data); /* last: `event` may point into it */
    fm_render_push(s, frame);
}

/* Emits an event named after its "type" (the Responses API convention). */
static void fm_render_emit_typed(struct fm_render_sse *s, json_t *data)
{
    const char *type = json_string_value(json_object_get(data, "type"));
    fm_render_emit(s, type ? type : "message", data);
}

static void fm_render_sse_free(struct fm_render_sse *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->frames[i]);
    free(s->frames);
    free(s->lens);
    memset(s, 0, sizeof *s);
}

/* new: the deltas of a text or thinking block. */
static json_t *fm_render_pieces(const json_t *blk)
{
    json_t *pieces = json_object_get(blk, "pieces");
    if (pieces)
        return json_incref(pieces);
    return fm_util_split(json_string_value(json_object_get(blk, "text")),
                         (size_t)json_integer_value(json_object_get(blk, "chunks")));
}

/* new: the concatenation of `pieces` as a JSON string. */
static json_t *fm_render_join(const json_t *pieces)
{
    struct fm_util_buf b = {0};
    size_t i;
    json_t *item, *out;
    json_array_foreach(pieces, i, item)
        if (fm_util_buf_append(&b, json_string_value(item), json_string_length(item), 0) != 0) {
            fm_util_buf_free(&b);
            return NULL;
        }
    out = json_stringn(b.data ? b.data : "", b.len);
    fm_util_buf_free(&b);
    return out;
}

/* new (malloc): the JSON text of a tool call's arguments.  A custom
 * (freeform) call is wrapped as {"input": text} for APIs that have no
 * freeform tools, as the verified Python fake did for chat. */
static char *fm_render_args_text(const json_t *blk)
{
    const char *type = json_string_value(json_object_get(blk, "type"));
    const json_t *args = json_object_get(blk, "arguments");
    if (strcmp(type, "custom") == 0) {
        json_t *wrap = json_pack("{s:O}", "input", json_object_get(blk, "input"));
        char *text = wrap ? json_dumps(wrap, FM_RENDER_DUMP) : NULL;
        json_decref(wrap);
        return text;
    }
    if (args)
        return strdup(json_string_value(args));
    return json_dumps(json_object_get(blk, "input"), FM_RENDER_DUMP);
}

/* new: the tool input as a JSON value for a complete message (the parsed
 * arguments; {} when a raw "arguments" text does not parse). */
static json_t *fm_render_args_value(const json_t *blk, const char *text)
{
    json_t *v;
    if (json_object_get(blk, "input") && !json_object_get(blk, "arguments") &&
        strcmp(json_string_value(json_object_get(blk, "type")), "custom") != 0)
        return json_deep_copy(json_object_get(blk, "input"));
    v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_object();
}

static const char *fm_render_model(const json_t *req, const char *dflt)
{
    const char *model = json_string_value(json_object_get(req, "model"));
    return model && *model ? model : dflt;
}

static const char *fm_render_str(const json_t *obj, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : dflt;
}

/* Takes the frames of `s` into `out` as a stream. */
static int fm_render_finish_stream(struct fm_render_sse *s, struct fm_render_reply *out)
{
    if (s->failed)
        return -1;
    out->stream = 1;
    out->content_type = "text/event-stream";
    out->frames = s->frames;
    out->frame_lens = s->lens;
    out->n_frames = s->n;
    memset(s, 0, sizeof *s);
    return 0;
}

/* Takes `obj` (stolen) into `out` as a JSON body. */
static int fm_render_finish_body(json_t *obj, struct fm_render_reply *out)
{
    char *text = obj ? json_dumps(obj, FM_RENDER_DUMP) : NULL;
    json_decref(obj);
    if (!text)
        return -1;
    out->stream = 0;
    out->content_type = "application/json";
    out->body = text;
    out->body_len = strlen(text);
    return 0;
}

/* A non-streamed request has no stream to break: a scripted stream_error
 * becomes a 500 carrying the same type and message. */
static int fm_render_finish_failed(enum fm_api api, const json_t *se, const char *dflt_type,
                                   const char *dflt_message, struct fm_render_reply *out)
{
    out->status = 500;
    out->stream = 0;
    out->content_type = "application/json";
    out->body = fm_render_error_body(api, 500, fm_render_str(se, "type", dflt_type),
                                     fm_render_str(se, "message", dflt_message), NULL);
    out->body_len = out->body ? strlen(out->body) : 0;
    return out->body ? 0 : -1;
}

/* ---- Anthropic Messages -------------------------------------------------- */

static int fm_render_anthropic(const json_t *step, const json_t *req, unsigned long seq,
                               struct fm_render_reply *out)
{
    const json_t *blocks = json_object_get(step, "blocks");
    const json_t *se = json_object_get(step, "stream_error");
    const char *model = fm_render_model(req, "claude-fake");
    const char *stop = json_string_value(json_object_get(step, "stop_reason"));
    struct fm_render_sse s = {.named = 1};
    json_t *content = json_array();
    char msg_id[64];
    size_t i;
    json_t *blk;
    int rc = -1;

    snprintf(msg_id, sizeof msg_id, "msg_fake_%lu", seq);
    if (!stop) {
        stop = "end_turn";
        json_array_foreach(blocks, i, blk)
            if (strcmp(json_string_value(json_object_get(blk, "type")), "text") != 0 &&
                strcmp(json_string_value(json_object_get(blk, "type")), "thinking") != 0)
                stop = "tool_use";
    }
    fm_render_emit(&s, "message_start",
                   json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:i,s:i,s:i,s:i}}}",
                             "type", "message_start", "message", "id", msg_id, "type", "message",
                             "role", "assistant", "model", model, "content", "stop_reason",
                             "stop_sequence", "usage", "input_tokens", 10, "output_tokens", 1,
                             "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0));
    json_array_foreach(blocks, i, blk) {
        const char *type = json_string_value(json_object_get(blk, "type"));
        json_t *pieces = NULL, *full = NULL, *item;
        size_t k;
        if (strcmp(type, "text") == 0 || strcmp(type, "thinking") == 0) {
            int thinking = type[1] == 'h';
            pieces = fm_render_pieces(blk);
            full = pieces ? fm_render_join(pieces) : NULL;
            if (!full) {
                json_decref(pieces);
                s.failed = 1;
                break;
            }
            if (thinking)
                fm_render_emit(&s, "content_block_start",
                               json_pack("{s:s,s:I,s:{s:s,s:s,s:s}}", "type",
                                         "content_block_start", "index", (json_int_t)i,
                                         "content_block", "type", "thinking", "thinking", "",
                                         "signature", ""));
            else
                fm_render_emit(&s, "content_block_start",
                               json_pack("{s:s,s:I,s:{s:s,s:s}}", "type", "content_block_start",
                                         "index", (json_int_t)i, "content_block", "type", "text",
                                         "text", ""));
            json_array_foreach(pieces, k, item)
                fm_render_emit(&s, "content_block_delta",
                               json_pack("{s:s,s:I,s:{s:s,s:O}}", "type", "content_block_delta",
                                         "index", (json_int_t)i, "delta", "type",
                                         thinking ? "thinking_delta" : "text_delta",
                                         thinking ? "thinking" : "text", item));
            if (thinking) {
                char sig[64];
                const char *signature = json_string_value(json_object_get(blk, "signature"));
                snprintf(sig, sizeof sig, "fakesig%lu", seq);
                if (!signature)
                    signature = sig;
                fm_render_emit(&s, "content_block_delta",
                               json_pack("{s:s,s:I,s:{s:s,s:s}}", "type", "content_block_delta",
                                         "index", (json_int_t)i, "delta", "type",
                                         "signature_delta", "signature", signature));
                if (json_array_append_new(content,
                                          json_pack("{s:s,s:O,s:s}", "type", "thinking",
                                                    "thinking", full, "signature", signature)))
                    s.failed = 1;
            } else if (json_array_append_new(content, json_pack("{s:s,s:O}", "type", "text",
                                                                "text", full)) != 0) {
                s.failed = 1;
            }
        } else {
            char tid[96];
            char *args = fm_render_args_text(blk);
            const char *id = json_string_value(json_object_get(blk, "id"));
            snprintf(tid, sizeof tid, "toolu_fake_%lu_%zu", seq, i);
            pieces = args ? fm_util_split(args, (size_t)json_integer_value(
                                                    json_object_get(blk, "chunks")))
                          : NULL;
            if (!pieces) {
                free(args);
                s.failed = 1;
                break;
            }
            fm_render_emit(&s, "content_block_start",
                           json_pack("{s:s,s:I,s:{s:s,s:s,s:s,s:{}}}", "type",
                                     "content_block_start", "index", (json_int_t)i,
                                     "content_block", "type", "tool_use", "id", id ? id : tid,
                                     "name", fm_render_str(blk, "name", ""), "input"));
            json_array_foreach(pieces, k, item)
                fm_render_emit(&s, "content_block_delta",
                               json_pack("{s:s,s:I,s:{s:s,s:O}}", "type", "content_block_delta",
                                         "index", (json_int_t)i, "delta", "type",
                                         "input_json_delta", "partial_json", item));
            if (json_array_append_new(content,
                                      json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id",
                                                id ? id : tid, "name",
                                                fm_render_str(blk, "name", ""), "input",
                                                fm_render_args_value(blk, args))))
                s.failed = 1;
            free(args);
        }
        json_decref(pieces);
        json_decref(full);
        fm_render_emit(&s, "content_block_stop",
                       json_pack("{s:s,s:I}", "type", "content_block_stop", "index",
                                 (json_int_t)i));
    }
    if (se) {
        fm_render_emit(&s, "error",
                       json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                                 fm_render_str(se, "type", "overloaded_error"), "message",
                                 fm_render_str(se, "message", "Overloaded")));
    } else if (!json_is_true(json_object_get(step, "disconnect"))) {
        fm_render_emit(&s, "message_delta",
                       json_pack("{s:s,s:{s:s,s:n},s:{s:i}}", "type", "message_delta", "delta",
                                 "stop_reason", stop, "stop_sequence", "usage", "output_tokens",
                                 12));
        fm_render_emit(&s, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    }
    if (!content)
        s.failed = 1;
    if (s.failed)
        goto done;

    if (json_is_true(json_object_get(req, "stream"))) {
        rc = fm_render_finish_stream(&s, out);
    } else if (se) {
        rc = fm_render_finish_failed(FM_API_ANTHROPIC, se, "overloaded_error", "Overloaded", out);
    } else {
        rc = fm_render_finish_body(
            json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:n,s:{s:i,s:i}}", "id", msg_id, "type",
                      "message", "role", "assistant", "model", model, "content", content,
                      "stop_reason", stop, "stop_sequence", "usage", "input_tokens", 10,
                      "output_tokens", 12),
            out);
    }
done:
    fm_render_sse_free(&s);
    json_decref(content);
    return rc;
}

/* ---- OpenAI Responses ------------------------------------------------------ */

static json_t *fm_render_responses_usage(void)
{
    return json_pack("{s:i,s:i,s:i,s:{s:i},s:{s:i}}", "input_tokens", 10, "output_tokens", 5,
                     "total_tokens", 15, "input_tokens_details", "cached_tokens", 0,
                     "output_tokens_details", "reasoning_tokens", 0);
}

static int fm_render_responses(const json_t *step, const json_t *req, unsigned long seq,
                               struct fm_render_reply *out)
{
    const json_t *blocks = json_object_get(step, "blocks");
    const json_t *se = json_object_get(step, "stream_error");
    const char *model = fm_render_model(req, "fake-model");
    struct fm_render_sse s = {.named = 1};
    json_t *output = json_array();
    char rid[64];
    size_t idx;
    json_t *blk;
    int rc = -1;

    snprintf(rid, sizeof rid, "resp_%lu", seq);
    fm_render_emit_typed(&s, json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[]}}", "type",
                                       "response.created", "response", "id", rid, "object",
                                       "response", "status", "in_progress", "model", model,
                                       "output"));
    json_array_foreach(blocks, idx, blk) {
        const char *type = json_string_value(json_object_get(blk, "type"));
        json_int_t oi = (json_int_t)idx;
        json_t *pieces = NULL, *full = NULL, *done = NULL, *item;
        char iid[96], cid[96];
        size_t k;

        if (strcmp(type, "text") == 0 || strcmp(type, "thinking") == 0) {
            pieces = fm_render_pieces(blk);
            full = pieces ? fm_render_join(pieces) : NULL;
            if (!full) {
                json_decref(pieces);
                s.failed = 1;
                break;
            }
        }
        if (strcmp(type, "text") == 0) {
            json_t *part;
            snprintf(iid, sizeof iid, "msg_%lu_%zu", seq, idx);
            fm_render_emit_typed(&s, json_pack("{s:s,s:I,s:{s:s,s:s,s:s,s:s,s:[]}}", "type",
                                               "response.output_item.added", "output_index", oi,
                                               "item", "type", "message", "id", iid, "role",
                                               "assistant", "status", "in_progress",
                                               "content"));
            fm_render_emit_typed(&s, json_pack("{s:s,s:s,s:I,s:i,s:{s:s,s:s,s:[]}}", "type",
                                               "response.content_part.added", "item_id", iid,
                                               "output_index", oi, "content_index", 0, "part",
                                               "type", "output_text", "text", "",
                                               "annotations"));
            json_array_foreach(pieces, k, item)
                fm_render_emit_typed(&s, json_pack("{s:s,s:s,s:I,s:i,s:O}", "type",
                                                   "response.output_text.delta", "item_id", iid,
                                                   "output_index", oi, "content_index", 0,
                                                   "delta", item));
            fm_render_emit_typed(&s, json_pack("{s:s,s:s,s:I,s:i,s:O}", "type",
                                               "response.output_text.done", "item_id", iid,
                                               "output_index", oi, "content_index", 0, "text",
                                               full));
            part = json_pack("{s:s,s:O,s:[]}", "type", "output_text", "text", full,
                             "annotations");
            done = json_pack("{s:s,s:s,s:s,s:s,s:[O]}", "type", "message", "id", iid, "role",
                             "assistant", "status", "completed", "content", part);
            fm_render_emit_typed(&s, json_pack("{s:s,s:s,s:I,s:i,s:o}", "type",
                                               "response.content_part.done", "item_id", iid,
                                               "output_index", oi, "content_index", 0, "part",
                                               part));
        } else if (strcmp(type, "thinking") == 0) {
            snprintf(iid, sizeof iid, "rs_%lu_%zu", seq, idx);
            fm_render_emit_typed(&s, json_pack("{s:s,s:I,s:{s:s,s:s,s:[]}}", "type",
                                               "response.output_item.added", "output_index", oi,
                                               "item", "type", "reasoning", "id", iid,
                                               "summary"));
            fm_render_emit_typed(&s, json_pack("{s:s,s:s,s:I,s:i,s:{s:s,s:s}}", "type",
                                               "response.reasoning_summary_part.added",
                                               "item_id", iid, "output_index", oi,
                                               "summary_index", 0, "part", "type",
                                               "summary_text", "text", ""));
            json_array_foreach(pieces, k, item)
                fm_render_emit_typed(&s, json_pack("{s:s,s:s,s:I,s:i,s:O}", "type",
                                                   "response.reasoning_summary_text.delta",
                                                   "item_id", iid, "output_index", oi,
                                                   "summary_index", 0, "delta", item));
            fm_render_emit_typed(&s, json_pack("{s:s,s:s,s:I,s:i,s:O}", "type",
                                               "response.reasoning_summary_text.done", "item_id",
                                               iid, "output_index", oi, "summary_index", 0,
                                               "text", full));
            fm_render_emit_typed(&s, json_pack("{s:s,s:s,s:I,s:i,s:{s:s,s:O}}", "type",
                                               "response.reasoning_summary_part.done",
                                               "item_id", iid, "output_index", oi,
                                               "summary_index", 0, "part", "type",
                                               "summary_text", "text", full));
            done = json_pack("{s:s,s:s,s:[{s:s,s:O}]}", "type", "reasoning", "id", iid,
                             "summary", "type", "summary_text", "text", full);
        } else {
            int custom = strcmp(type, "custom") == 0;
            const char *id = json_string_value(json_object_get(blk, "id"));
            const char *name = fm_render_str(blk, "name", "");
            const char *field = custom ? "input" : "arguments";
            char *text = custom ? strdup(fm_render_str(blk, "input", ""))
                                : fm_render_args_text(blk);
            snprintf(iid, sizeof iid, "%s_%lu_%zu", custom ? "ctc" : "fc", seq, idx);
            snprintf(cid, sizeof cid, "call_%lu_%zu", seq, idx);
            pieces = text ? fm_util_split(text, (size_t)json_integer_value(
                                                    json_object_get(blk, "chunks")))
                          : NULL;
            if (!pieces) {
                free(text);
                s.failed = 1;
                break;
            }
            fm_render_emit_typed(&s, json_pack("{s:s,s:I,s:{s:s,s:s,s:s,s:s,s:s,s:s}}", "type",
                                               "response.output_item.added", "output_index", oi,
                                               "item", "type",
                                               custom ? "custom_tool_call" : "function_call",
                                               "id", iid, "call_id", id ? id : cid, "name", name,
                                               field, "", "status", "in_progress"));
            json_array_foreach(pieces, k, item)
                fm_render_emit_typed(
                    &s, json_pack("{s:s,s:s,s:I,s:O}", "type",
                                  custom ? "response.custom_tool_call_input.delta"
                                         : "response.function_call_arguments.delta",
                                  "item_id", iid, "output_index", oi, "delta", item));
            fm_render_emit_typed(&s, json_pack("{s:s,s:s,s:I,s:s}", "type",
                                               custom ? "response.custom_tool_call_input.done"
                                                      : "response.function_call_arguments.done",
                                               "item_id", iid, "output_index", oi, field, text));
            done = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type",
                             custom ? "custom_tool_call" : "function_call", "id", iid, "call_id",
                             id ? id : cid, "name", name, field, text, "status", "completed");
            free(text);
        }
        if (!done || json_array_append(output, done) != 0)
            s.failed = 1;
        fm_render_emit_typed(&s, done ? json_pack("{s:s,s:I,s:o}", "type",
                                                  "response.output_item.done", "output_index",
                                                  oi, "item", done)
                                      : NULL);
        json_decref(pieces);
        json_decref(full);
    }
    if (se) {
        fm_render_emit_typed(
            &s, json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:O,s:{s:s,s:s},s:n}}", "type",
                          "response.failed", "response", "id", rid, "object", "response",
                          "status", "failed", "model", model, "output", output, "error", "code",
                          fm_render_str(se, "type", "server_error"), "message",
                          fm_render_str(se, "message", "scripted stream failure"), "usage"));
    } else if (!json_is_true(json_object_get(step, "disconnect"))) {
        fm_render_emit_typed(&s, json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:O,s:o}}", "type",
                                           "response.completed", "response", "id", rid, "object",
                                           "response", "status", "completed", "model", model,
                                           "output", output, "usage",
                                           fm_render_responses_usage()));
    }
    if (!output)
        s.failed = 1;
    if (s.failed)
        goto done;
    if (json_is_true(json_object_get(req, "stream"))) {
        rc = fm_render_finish_stream(&s, out);
    } else if (se) {
        rc = fm_render_finish_failed(FM_API_RESPONSES, se, "server_error",
                                     "scripted stream failure", out);
    } else {
        rc = fm_render_finish_body(json_pack("{s:s,s:s,s:s,s:s,s:O,s:o}", "id", rid, "object",
                                             "response", "status", "completed", "model", model,
                                             "output", output, "usage",
                                             fm_render_responses_usage()),
                                   out);
    }
done:
    fm_render_sse_free(&s);
    json_decref(output);
    return rc;
}

/* ---- OpenAI chat.completions ------------------------------------------------ */

/* new: one chat.completion.chunk; `delta` is stolen. */
static json_t *fm_render_chunk(const char *cid, json_int_t created, const char *model,
                               json_t *delta, const char *finish)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s?}]}", "id", cid, "object",
                     "chat.completion.chunk", "created", created, "model", model, "choices",
                     "index", 0, "delta", delta, "finish_reason", finish);
}

static int fm_render_chat(const json_t *step, const json_t *req, unsigned long seq,
                          struct fm_render_reply *out)
{
    const json_t *blocks = json_object_get(step, "blocks");
    const json_t *se = json_object_get(step, "stream_error");
    const char *model = fm_render_model(req, "fake-model");
    const char *finish = json_string_value(json_object_get(step, "stop_reason"));
    json_int_t created = (json_int_t)time(NULL);
    struct fm_render_sse s = {.named = 0};
    struct fm_util_buf text = {0}, reasoning = {0};
    json_t *calls = json_array();
    json_int_t tool_index = 0;
    char cid[64];
    size_t idx;
    json_t *blk;
    int rc = -1;

    snprintf(cid, sizeof cid, "chatcmpl-%lu", seq);
    fm_render_emit(&s, NULL,
                   fm_render_chunk(cid, created, model,
                                   json_pack("{s:s,s:s}", "role", "assistant", "content", ""),
                                   NULL));
    json_array_foreach(blocks, idx, blk) {
        const char *type = json_string_value(json_object_get(blk, "type"));
        json_t *pieces, *item;
        size_t k;
        if (strcmp(type, "text") == 0 || strcmp(type, "thinking") == 0) {
            int thinking = type[1] == 'h';
            pieces = fm_render_pieces(blk);
            if (!pieces) {
                s.failed = 1;
                break;
            }
            json_array_foreach(pieces, k, item) {
                if (fm_util_buf_append(thinking ? &reasoning : &text, json_string_value(item),
                                       json_string_length(item), 0) != 0)
                    s.failed = 1;
                fm_render_emit(&s, NULL,
                               fm_render_chunk(cid, created, model,
                                               json_pack("{s:O}",
                                                         thinking ? "reasoning_content"
                                                                  : "content",
                                                         item),
                                               NULL));
            }
        } else {
            char callid[96];
            const char *id = json_string_value(json_object_get(blk, "id"));
            const char *name = fm_render_str(blk, "name", "");
            char *args = fm_render_args_text(blk);
            snprintf(callid, sizeof callid, "call_%lu_%zu", seq, idx);
            pieces = args ? fm_util_split(args, (size_t)json_integer_value(
                                                    json_object_get(blk, "chunks")))
                          : NULL;
            if (!pieces) {
                free(args);
                s.failed = 1;
                break;
            }
            json_array_foreach(pieces, k, item) {
                json_t *delta;
                if (k == 0)
                    delta = json_pack("{s:[{s:I,s:s,s:s,s:{s:s,s:O}}]}", "tool_calls", "index",
                                      tool_index, "id", id ? id : callid, "type", "function",
                                      "function", "name", name, "arguments", item);
                else
                    delta = json_pack("{s:[{s:I,s:{s:O}}]}", "tool_calls", "index", tool_index,
                                      "function", "arguments", item);
                fm_render_emit(&s, NULL, fm_render_chunk(cid, created, model, delta, NULL));
            }
            if (json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id",
                                                       id ? id : callid, "type", "function",
                                                       "function", "name", name, "arguments",
                                                       args)) != 0)
                s.failed = 1;
            free(args);
            tool_index++;
        }
        json_decref(pieces);
    }
    if (!finish)
        finish = tool_index ? "tool_calls" : "stop";
    if (se) {
        fm_render_emit(&s, NULL,
                       json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message",
                                 fm_render_str(se, "message", "scripted stream failure"), "type",
                                 fm_render_str(se, "type", "server_error"), "param", "code"));
    } else if (!json_is_true(json_object_get(step, "disconnect"))) {
        fm_render_emit(&s, NULL, fm_render_chunk(cid, created, model, json_object(), finish));
        if (json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage")))
            fm_render_emit(&s, NULL,
                           json_pack("{s:s,s:s,s:I,s:s,s:[],s:{s:i,s:i,s:i}}", "id", cid,
                                     "object", "chat.completion.chunk", "created", created,
                                     "model", model, "choices", "usage", "prompt_tokens", 10,
                                     "completion_tokens", 5, "total_tokens", 15));
        fm_render_push(&s, strdup("data: [DONE]\n\n"));
    }
    if (!calls)
        s.failed = 1;
    if (s.failed)
        goto done;
    if (json_is_true(json_object_get(req, "stream"))) {
        rc = fm_render_finish_stream(&s, out);
    } else if (se) {
        rc = fm_render_finish_failed(FM_API_CHAT, se, "server_error", "scripted stream failure",
                                     out);
    } else {
        json_t *msg = json_pack("{s:s,s:s?}", "role", "assistant", "content", text.data);
        if (msg && reasoning.data &&
            json_object_set_new(msg, "reasoning_content", json_string(reasoning.data)) != 0)
            goto done_msg;
        if (msg && json_array_size(calls) && json_object_set(msg, "tool_calls", calls) != 0)
            goto done_msg;
        rc = fm_render_finish_body(
            msg ? json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:O,s:s}],s:{s:i,s:i,s:i}}", "id", cid,
                            "object", "chat.completion", "created", created, "model", model,
                            "choices", "index", 0, "message", msg, "finish_reason", finish,
                            "usage", "prompt_tokens", 10, "completion_tokens", 5, "total_tokens",
                            15)
                : NULL,
            out);
    done_msg:
        json_decref(msg);
    }
done:
    fm_render_sse_free(&s);
    fm_util_buf_free(&text);
    fm_util_buf_free(&reasoning);
    json_decref(calls);
    return rc;
}

/* ---- Gemini generateContent ------------------------------------------------- */

/* new: one GenerateContentResponse carrying `parts` (stolen). */
static json_t *fm_render_gemini_chunk(json_t *parts, const char *model, const char *rid)
{
    return json_pack("{s:[{s:{s:o,s:s},s:i}],s:{s:i,s:i,s:i},s:s,s:s}", "candidates", "content",
                     "parts", parts, "role", "model", "index", 0, "usageMetadata",
                     "promptTokenCount", 10, "candidatesTokenCount", 5, "totalTokenCount", 15,
                     "modelVersion", model, "responseId", rid);
}

/* new: the functionCall part of a tool block; Gemini sends a call whole,
 * never in pieces, and its id only when the script names one. */
static json_t *fm_render_gemini_call(const json_t *blk)
{
    char *text = fm_render_args_text(blk);
    const char *id = json_string_value(json_object_get(blk, "id"));
    json_t *args = text ? fm_render_args_value(blk, text) : NULL;
    json_t *call;
    free(text);
    if (!args)
        return NULL;
    if (!json_is_object(args)) { /* Gemini's args are always an object */
        json_decref(args);
        args = json_object();
    }
    call = json_pack("{s:s,s:o}", "name", fm_render_str(blk, "name", ""), "args", args);
    if (call && id && json_object_set_new(call, "id", json_string(id)) != 0) {
        json_decref(call);
        return NULL;
    }
    return call ? json_pack("{s:o}", "functionCall", call) : NULL;
}

/* Streamed: one response per text or thinking delta (a thought part has
 * "thought": true) and one per function call; the last carries
 * finishReason (default "STOP", whatever the parts: Gemini has no
 * tool-use stop reason).  Not streamed: one response with all parts,
 * each text block whole. */
static int fm_render_gemini(const json_t *step, const json_t *req, unsigned long seq,
                            struct fm_render_reply *out)
{
    const json_t *blocks = json_object_get(step, "blocks");
    const json_t *se = json_object_get(step, "stream_error");
    const char *model = fm_render_model(req, "fake-model");
    const char *finish = json_string_value(json_object_get(step, "stop_reason"));
    int stream = json_is_true(json_object_get(req, "stream"));
    struct fm_render_sse s = {.named = 0};
    json_t *chunks = json_array(), *whole = json_array(), *blk, *chunk;
    char rid[64];
    size_t i;
    int rc = -1;

    snprintf(rid, sizeof rid, "fake_%lu", seq);
    if (!chunks || !whole)
        goto done;
    json_array_foreach(blocks, i, blk) {
        const char *type = json_string_value(json_object_get(blk, "type"));
        if (strcmp(type, "text") == 0 || strcmp(type, "thinking") == 0) {
            int thought = type[1] == 'h';
            json_t *pieces = fm_render_pieces(blk), *full = pieces ? fm_render_join(pieces) : NULL;
            json_t *item;
            size_t k;
            if (!full ||
                json_array_append_new(whole, thought ? json_pack("{s:O,s:b}", "text", full,
                                                                 "thought", 1)
                                                     : json_pack("{s:O}", "text", full)) != 0) {
                json_decref(pieces);
                json_decref(full);
                goto done;
            }
            json_array_foreach(pieces, k, item)
                if (json_array_append_new(
                        chunks, fm_render_gemini_chunk(
                                    thought ? json_pack("[{s:O,s:b}]", "text", item, "thought", 1)
                                            : json_pack("[{s:O}]", "text", item),
                                    model, rid)) != 0) {
                    json_decref(pieces);
                    json_decref(full);
                    goto done;
                }
            json_decref(pieces);
            json_decref(full);
        } else {
            json_t *part = fm_render_gemini_call(blk);
            json_t *one = part ? fm_render_gemini_chunk(json_pack("[O]", part), model, rid) : NULL;
            int failed = !one || json_array_append(whole, part) != 0;
            if (failed)
                json_decref(one);
            else if (json_array_append_new(chunks, one) != 0) /* steals `one` */
                failed = 1;
            json_decref(part);
            if (failed)
                goto done;
        }
    }
    if (!finish)
        finish = "STOP";
    if (!stream) {
        if (se) {
            rc = fm_render_finish_failed(FM_API_GEMINI, se, "INTERNAL", "scripted stream failure",
                                         out);
            goto done;
        }
        if (!json_array_size(whole) && json_array_append_new(whole, json_pack("{s:s}", "text", "")))
            goto done;
        chunk = fm_render_gemini_chunk(json_incref(whole), model, rid);
        if (!chunk || json_object_set_new(json_array_get(json_object_get(chunk, "candidates"), 0),
                                          "finishReason", json_string(finish)) != 0) {
            json_decref(chunk);
            goto done;
        }
        rc = fm_render_finish_body(chunk, out);
        goto done;
    }
    if (!se && !json_is_true(json_object_get(step, "disconnect"))) {
        if (!json_array_size(chunks) &&
            json_array_append_new(chunks, fm_render_gemini_chunk(json_pack("[{s:s}]", "text", ""),
                                                                 model, rid)) != 0)
            goto done;
        chunk = json_array_get(chunks, json_array_size(chunks) - 1);
        if (json_object_set_new(json_array_get(json_object_get(chunk, "candidates"), 0),
                                "finishReason", json_string(finish)) != 0)
            goto done;
    }
    json_array_foreach(chunks, i, chunk)
        fm_render_emit(&s, NULL, json_incref(chunk));
    if (se)
        fm_render_emit(&s, NULL,
                       json_pack("{s:{s:i,s:s,s:s}}", "error", "code", 500, "message",
                                 fm_render_str(se, "message", "scripted stream failure"), "status",
                                 fm_render_str(se, "type", "INTERNAL")));
    rc = fm_render_finish_stream(&s, out);
done:
    fm_render_sse_free(&s);
    json_decref(chunks);
    json_decref(whole);
    return rc;
}

/* ---- errors and entry points ------------------------------------------------- */

static const char *fm_render_error_type(enum fm_api api, int status)
{
    if (api == FM_API_GEMINI) {
        switch (status) {
        case 400: return "INVALID_ARGUMENT";
        case 401: return "UNAUTHENTICATED";
        case 403: return "PERMISSION_DENIED";
        case 404: return "NOT_FOUND";
        case 429: return "RESOURCE_EXHAUSTED";
        case 503: return "UNAVAILABLE";
        default: return status < 500 ? "FAILED_PRECONDITION" : "INTERNAL";
        }
    }
    if (api == FM_API_ANTHROPIC) {
        switch (status) {
        case 400: return "invalid_request_error";
        case 401: return "authentication_error";
        case 403: return "permission_error";
        case 404: return "not_found_error";
        case 413: return "request_too_large";
        case 429: return "rate_limit_error";
        case 529: return "overloaded_error";
        default: return status < 500 ? "invalid_request_error" : "api_error";
        }
    }
    return status < 500 ? "invalid_request_error" : "server_error";
}

char *fm_render_error_body(enum fm_api api, int status, const char *type, const char *message,
                           const char *code)
{
    json_t *obj;
    char *text;
    if (!type)
        type = fm_render_error_type(api, status);
    if (api == FM_API_ANTHROPIC)
        obj = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type, "message",
                        message);
    else if (api == FM_API_GEMINI)
        obj = json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "message", message,
                        "status", type);
    else
        obj = json_pack("{s:{s:s,s:s,s:n,s:s?}}", "error", "message", message, "type", type,
                        "param", "code", code);
    text = obj ? json_dumps(obj, FM_RENDER_DUMP) : NULL;
    json_decref(obj);
    return text;
}

/* A scripted HTTP error: status, headers, and either the body the script
 * gave verbatim or the API's usual error object. */
static int fm_render_error_step(enum fm_api api, const json_t *err, struct fm_render_reply *out)
{
    const json_t *body = json_object_get(err, "body");
    out->status = (int)json_integer_value(json_object_get(err, "status"));
    out->headers = json_deep_copy(json_object_get(err, "headers"));
    out->content_type = "application/json";
    if (body && json_is_string(body)) {
        out->body = strdup(json_string_value(body));
        out->content_type = "text/plain; charset=utf-8";
    } else if (body) {
        out->body = json_dumps(body, FM_RENDER_DUMP);
    } else {
        out->body = fm_render_error_body(api, out->status,
                                         json_string_value(json_object_get(err, "type")),
                                         json_string_value(json_object_get(err, "message")),
                                         json_string_value(json_object_get(err, "code")));
    }
    if (!out->body || !out->headers)
        return -1;
    out->body_len = strlen(out->body);
    return 0;
}

int fm_render_step(enum fm_api api, const json_t *step, const json_t *req, unsigned long seq,
                   struct fm_render_reply *out)
{
    int rc;
    memset(out, 0, sizeof *out);
    out->status = 200;
    out->delay_ms = (long)json_integer_value(json_object_get(step, "delay_ms"));
    out->chunk_delay_ms = (long)json_integer_value(json_object_get(step, "chunk_delay_ms"));
    if (json_object_get(step, "error")) {
        rc = fm_render_error_step(api, json_object_get(step, "error"), out);
    } else {
        out->disconnect = json_is_true(json_object_get(step, "disconnect"));
        switch (api) {
        case FM_API_ANTHROPIC: rc = fm_render_anthropic(step, req, seq, out); break;
        case FM_API_RESPONSES: rc = fm_render_responses(step, req, seq, out); break;
        case FM_API_CHAT: rc = fm_render_chat(step, req, seq, out); break;
        case FM_API_GEMINI: rc = fm_render_gemini(step, req, seq, out); break;
        default: rc = -1; break;
        }
    }
    if (rc != 0) {
        fm_render_reply_free(out);
        return -1;
    }
    return 0;
}

void fm_render_reply_free(struct fm_render_reply *r)
{
    for (size_t i = 0; i < r->n_frames; i++)
        free(r->frames[i]);
    free(r->frames);
    free(r->frame_lens);
    free(r->body);
    json_decref(r->headers);
    memset(r, 0, sizeof *r);
}
