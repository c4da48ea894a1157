/* libFuzzer harness for the ACP adapter's parser (adapters/acp.h): the
 * input is an agent process's stdout, fed line by line to one parser after
 * the first user message (so the handshake, the session id, the running
 * prompt, tool calls and pending permissions carry over); with the first
 * byte odd the last line counts as cut short, with bit 2 set a second
 * message is sent halfway, bit 4 resumes with session/load, bit 8 asks for
 * plan mode, bit 16 syncs after the load (the Gemini CLI case).  Each permission it asks is answered at once
 * (once / always / reject in turn), and the session is cancelled and its
 * turns closed at the end, as the process side does at an exit.
 * Invariants: parsing never fails but for memory; every conversion is
 * accepted by a normalizer configured as ACP sessions are, which makes
 * well-formed events of it (fuzz_check_events); every line we write back is
 * one JSON object and "\n"; the requests handed out are fs requests with
 * params; a permission just asked can be answered; after the close no turn
 * is open.  Seeds: tests/fuzz/corpus/fuzz_adapter_acp/ (the first byte of
 * each picks the options above); dictionary fuzz_adapter_acp.dict.  Built
 * with -DSJ_FUZZ=ON and clang. */
#include "adapters/acp.h"
#include "events/event.h"
#include "events/normalize.h"
#include "fuzz_common.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A line we write: one JSON object, then "\n" and nothing after. */
static void check_line(const char *line)
{
    size_t len = strlen(line);
    if (!len)
        return;
    if (line[len - 1] != '\n' || memchr(line, '\n', len - 1))
        abort();
    json_error_t jerr;
    json_t *v = json_loadb(line, len - 1, 0, &jerr);
    if (!v) {
        if (event_json_load_nomem(&jerr, line, len - 1))
            return;
        abort();
    }
    if (!json_is_object(v))
        abort();
    json_decref(v);
}

/* Starts a user message's turn as the session layer and driver do. */
static int send_message(adapter_acp_parser_t *p, normalize_t *n, json_t *conv,
                        struct normalize_output *out, uint64_t *last)
{
    json_array_clear(conv);
    json_t *start = normalize_pending_assistant_start(n);
    if (!start || json_array_append_new(conv, start) != 0 ||
        fuzz_feed(n, conv, "fuzz", out, last) != 0)
        return -1;
    char *line = adapter_acp_prompt(p, "fuzz message");
    if (!line)
        return -1;
    /* Several lines (none here) or one. */
    check_line(line);
    free(line);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int cut_last = size && (data[0] & 1);
    int second = size && (data[0] & 2);
    static const char *const replies[] = { "once", "always", "reject" };
    struct normalize_config cfg = {
        .session_id = "fuzz",
        .agent_emits_item_started = 0,
        .agent_can_resume = 1,
        .assistant_message_ends_turn = 1,
    };
    struct adapter_acp_start start = { .session_id = "fuzz", .id_prefix = "f", .cwd = "/w",
                                       .resume_id = size && (data[0] & 4) ? "old" : NULL,
                                       .agent_mode = size && (data[0] & 8) ? "plan" : "build",
                                       .context = "user: earlier\n",
                                       .sync_after_load = size && (data[0] & 16) };
    adapter_acp_parser_t *p = adapter_acp_parser_new(&start);
    normalize_t *n = normalize_new(&cfg);
    json_t *conv = json_array(), *rep = json_array(), *req = json_array();
    struct normalize_output out;
    normalize_output_init(&out);
    uint64_t last = 0;
    struct err err;
    unsigned answered = 0;
    int ok = p && n && conv && rep && req && send_message(p, n, conv, &out, &last) == 0;
    const char *line = (const char *)data, *end = line + size;
    while (ok && line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
        json_array_clear(conv);
        json_array_clear(rep);
        json_array_clear(req);
        int rc = adapter_acp_parse_line(p, line, len, cut_last && !nl, conv, rep, req, &err);
        if (rc != 0 && err.code != ERR_NOMEM)
            abort();
        ok = rc == 0 && fuzz_feed(n, conv, "fuzz", &out, &last) == 0;
        size_t i;
        json_t *v;
        json_array_foreach(rep, i, v) {
            if (!json_is_string(v))
                abort();
            check_line(json_string_value(v));
        }
        json_array_foreach(req, i, v) {
            const char *m = json_string_value(json_object_get(v, "method"));
            if (!m || (strcmp(m, "fs/read_text_file") != 0 &&
                       strcmp(m, "fs/write_text_file") != 0) ||
                !json_is_object(json_object_get(v, "params")))
                abort();
        }
        json_array_foreach(conv, i, v) {
            const char *type = json_string_value(json_object_get(v, "type"));
            const char *perm = json_string_value(
                json_object_get(json_object_get(v, "data"), "permission_id"));
            if (!ok || !type || strcmp(type, "permission.requested") != 0 || !perm)
                continue;
            char *answer = NULL;
            rc = adapter_acp_permission_line(p, perm, replies[answered++ % 3], &answer, &err);
            if (rc != 0 && err.code != ERR_NOMEM)
                abort();
            if (answer)
                check_line(answer);
            free(answer);
        }
        if (ok && second && nl && (size_t)(nl - (const char *)data) >= size / 2) {
            second = 0;
            ok = send_message(p, n, conv, &out, &last) == 0;
        }
        line = nl ? nl + 1 : end;
    }
    if (ok) {
        char *cancel = adapter_acp_cancel_line(p);
        if (cancel) {
            for (char *s = cancel, *e; *s; s = e + 1) {
                e = strchr(s, '\n');
                if (!e)
                    abort();
                char keep = e[1];
                e[1] = '\0';
                check_line(s);
                e[1] = keep;
            }
        }
        free(cancel);
        json_array_clear(conv);
        ok = adapter_acp_close_turns(p, conv, &err) == 0 &&
             fuzz_feed(n, conv, "fuzz", &out, &last) == 0;
        if (ok && adapter_acp_open_turns(p) != 0)
            abort();
    }
    normalize_output_clear(&out);
    json_decref(conv);
    json_decref(rep);
    json_decref(req);
    normalize_free(n);
    adapter_acp_parser_free(p);
    return 0;
}
