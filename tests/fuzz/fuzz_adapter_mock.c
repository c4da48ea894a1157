/* libFuzzer harness for the mock adapter (adapters/mock.h): the input is a
 * user message (as the server hands it over: UTF-8 without NUL, which a
 * JSON body guarantees; other inputs are skipped).  Its conversions, the
 * user's message first and then the scripted reply, go through a normalizer
 * configured as the mock's session is.
 * Invariants: both builders return an array of objects with a valid type;
 * the normalizer accepts every one (the mock never emits a malformed
 * conversion) and makes well-formed events of them (fuzz_check_events).
 * This is the pattern the real adapters' line parsers follow (see
 * fuzz_adapter_claude.c, fuzz_adapter_codex.c and docs/testing.md).  Built
 * with -DSJ_FUZZ=ON (or -DFUZZ=ON) and clang; seeds in
 * corpus/fuzz_adapter_mock/, dictionary fuzz_adapter_mock.dict. */
#include "adapters/registry.h"
#include "events/event.h"
#include "fuzz_common.h"
#include "adapters/mock.h"
#include "events/normalize.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memchr(data, '\0', size) || !fuzz_utf8_ok((const char *)data, size))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    json_t *user = adapter_mock_user_message("mock_7", text);
    json_t *turn = adapter_mock_turn("mock_7", text);
    struct normalize_config cfg = {
        .session_id = "mock-fuzz",
        .agent_emits_item_started = 1,
        .agent_can_resume = 0,
        .assistant_message_ends_turn = 1,
    };
    normalize_t *n = normalize_new(&cfg);
    struct normalize_output out;
    normalize_output_init(&out);
    uint64_t last = 0;
    if (user && turn && n && fuzz_feed(n, user, "mock-fuzz", &out, &last) == 0)
        fuzz_feed(n, turn, "mock-fuzz", &out, &last);
    normalize_output_clear(&out);
    normalize_free(n);
    json_decref(user);
    json_decref(turn);
    free(text);
    return 0;
}
