/* libFuzzer harness for the Amp adapter's line parser (adapters/amp.h): the
 * input is the stdout of one turn, fed line by line to one parser (so the
 * thread id and the turn's parts carry over); with the first byte odd the
 * last line counts as cut short.  The turn begins as the process side
 * begins it, behind the assistant item the session layer starts, and ends
 * with the close the process side does at an early exit.
 * Invariants: parsing never fails but for memory; every conversion is an
 * object with a valid type, accepted by a normalizer configured as Amp's
 * sessions are, which makes well-formed events of it (fuzz_check_events);
 * a thread id taken from the output is a thread id, and the command line
 * built with it continues exactly that thread.
 * Seeds: tests/fixtures/amp/<case>/input.jsonl; dictionary
 * fuzz_adapter_amp.dict.  Built with -DSJ_FUZZ=ON and clang. */
#include "adapters/amp.h"
#include "adapters/registry.h"
#include "events/event.h"
#include "fuzz_common.h"
#include "events/normalize.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int cut_last = size && (data[0] & 1);
    struct normalize_config cfg = {
        .session_id = "fuzz",
        .agent_emits_item_started = 0,
        .agent_can_resume = 1,
        .assistant_message_ends_turn = 1,
    };
    adapter_amp_parser_t *p = adapter_amp_parser_new("fuzz");
    normalize_t *n = normalize_new(&cfg);
    json_t *conv = json_array();
    struct normalize_output out;
    normalize_output_init(&out);
    uint64_t last = 0;
    struct err err;
    int ok = p && n && conv && adapter_amp_turn_begin(p, &err) == 0;
    json_t *start = ok ? normalize_pending_assistant_start(n) : NULL;
    ok = start && json_array_append_new(conv, start) == 0 &&
         fuzz_feed(n, conv, "fuzz", &out, &last) == 0;
    const char *line = (const char *)data, *end = line + size;
    while (ok && line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
        json_array_clear(conv);
        int rc = adapter_amp_parse_line(p, line, len, cut_last && !nl, conv, &err);
        if (rc != 0 && err.code != ERR_NOMEM)
            abort();
        ok = rc == 0 && fuzz_feed(n, conv, "fuzz", &out, &last) == 0;
        line = nl ? nl + 1 : end;
    }
    if (ok) {
        json_array_clear(conv);
        ok = adapter_amp_close_turn(p, conv, &err) == 0 &&
             fuzz_feed(n, conv, "fuzz", &out, &last) == 0;
        if (ok && adapter_amp_turn_open(p))
            abort();
    }
    const char *thread = p ? adapter_amp_thread_id(p) : NULL;
    if (thread) {
        if (!adapter_amp_is_thread_id(thread))
            abort();
        const char *args[ADAPTER_AMP_MAX_ARGS];
        adapter_amp_args("amp", thread, 0, args);
        if (strcmp(args[1], "threads") != 0 || strcmp(args[3], thread) != 0 ||
            strcmp(args[4], "--execute") != 0)
            abort();
    }
    normalize_output_clear(&out);
    json_decref(conv);
    normalize_free(n);
    adapter_amp_parser_free(p);
    return 0;
}
