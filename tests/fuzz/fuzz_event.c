/* libFuzzer harness for event serialization (src/event.h): the input is
 * JSON.  Any value goes through event_dump(), the serde-style writer every
 * stored event uses; an object {"type":T,"data":D,...} also goes through
 * event_data_fits() and event_serialize().
 * Invariants: event_dump() output parses back to an equal value;
 * event_serialize() succeeds exactly when event_data_fits() says the data
 * fits the type (barring memory), and then writes JSON that ends in
 * "raw":null}, whose data fits again and serializes to the very same bytes
 * (the canonical form is a fixed point: what the journal stores is what a
 * re-serialization would give).  Built with -DSJ_FUZZ=ON (or -DFUZZ=ON) and
 * clang; seeds in corpus/fuzz_event/, dictionary fuzz_normalize.dict. */
#include "events/event.h"
#include "fuzz_common.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TIME "2026-11-23T12:00:00.000000Z"

static void fuzz_dump_roundtrip(const json_t *v)
{
    size_t len = 0;
    char *text = event_dump(v, &len);
    if (!text)
        return; /* memory */
    if (len != strlen(text))
        abort();
    json_t *back = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!back || !json_equal((json_t *)v, back))
        abort();
    json_decref(back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!v)
        return 0;
    fuzz_dump_roundtrip(v);
    const char *type = json_string_value(json_object_get(v, "type"));
    const json_t *d = json_object_get(v, "data");
    if (type && d) {
        json_int_t seq = json_integer_value(json_object_get(v, "sequence"));
        uint64_t sequence = seq > 0 ? (uint64_t)seq : 1;
        const char *nsid = json_string_value(json_object_get(v, "native_session_id"));
        int synthetic = json_is_true(json_object_get(v, "synthetic"));
        const char *source = synthetic ? "daemon" : "agent";
        int fits = event_data_fits(type, d);
        size_t len = 0;
        char *text = event_serialize(sequence, FUZZ_TIME, "fz", nsid, synthetic, source, type,
                                     d, &len);
        if (text && !fits)
            abort();
        if (text) {
            static const char tail[] = "\"raw\":null}";
            if (len != strlen(text) || len < sizeof tail - 1 ||
                memcmp(text + len - (sizeof tail - 1), tail, sizeof tail - 1) != 0)
                abort();
            json_t *ev = json_loadb(text, len, 0, NULL);
            const json_t *d2 = json_object_get(ev, "data");
            if (!ev || !event_data_fits(type, d2))
                abort();
            size_t len2 = 0;
            char *again = event_serialize(sequence, FUZZ_TIME, "fz", nsid, synthetic, source,
                                          type, d2, &len2);
            if (again && (len2 != len || memcmp(again, text, len) != 0))
                abort();
            free(again);
            json_decref(ev);
            free(text);
        }
    }
    json_decref(v);
    return 0;
}
