/* libFuzzer harness for the OpenCode adapter's event-stream parser: the
 * input is a `GET /event` body fed to one parser (so what it remembers of
 * parts and user messages carries over), cut in two at a place the first
 * byte picks (the network may split it anywhere).  Invariants: parsing never
 * fails but for memory; every conversion is an object with a valid type
 * that a normalizer set up as for OpenCode sessions accepts (one normalizer
 * for every session the events name), making well-formed events.
 * Seeds: tests/fixtures/opencode/<case>/input.sse.  Built with -DSJ_FUZZ=ON
 * and clang. */
#include "fuzz_common.h"
#include "adapters/opencode.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_run {
    normalize_t *norm; /* events of every session go through one: ids never clash */
    struct normalize_output out;
    uint64_t last;
    int broken; /* ran out of memory: the normalizer must not be checked further */
};

static void fuzz_on_event(void *arg, struct adapter_opencode_event *ev)
{
    struct fuzz_run *r = arg;
    size_t i;
    json_t *c;
    json_array_foreach(ev->conversions, i, c) {
        const char *type = json_string_value(json_object_get(c, "type"));
        if (!json_is_object(c) || !type || !event_type_is_valid(type))
            abort();
        if (!ev->session_id[0] || r->broken)
            continue; /* the adapter logs these: no session to journal them in */
        size_t from = r->out.count;
        struct err err;
        int rc = normalize_apply(r->norm, c, "2026-11-23T12:00:00.000000Z", &r->out, &err);
        if (rc == ERR_NOMEM) {
            r->broken = 1;
            continue;
        }
        if (rc != 0)
            abort(); /* the parser made something the normalizer refuses */
        r->last = fuzz_check_events(&r->out, from, "fuzz", r->last);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    adapter_opencode_parser_t *p = adapter_opencode_parser_new();
    struct normalize_config cfg = { .session_id = "fuzz", .agent_emits_item_started = 1,
                                    .agent_can_resume = 1, .assistant_message_ends_turn = 0 };
    struct fuzz_run r = { .norm = normalize_new(&cfg) };
    normalize_output_init(&r.out);
    if (!p || !r.norm) {
        adapter_opencode_parser_free(p);
        normalize_free(r.norm);
        return 0;
    }
    size_t cut = size ? data[0] % (size + 1) : 0;
    struct err err;
    int rc = adapter_opencode_parse_stream(p, (const char *)data, cut, fuzz_on_event, &r, &err);
    if (rc == 0)
        rc = adapter_opencode_parse_stream(p, (const char *)data + cut, size - cut,
                                           fuzz_on_event, &r, &err);
    if (rc != 0 && err.code != ERR_NOMEM)
        abort();
    /* A reconnect, then a whole event: the parser is usable again. */
    adapter_opencode_stream_reset(p);
    static const char idle[] = "data: {\"type\":\"session.idle\",\"properties\":"
                               "{\"sessionID\":\"ses_fuzz\"}}\n\n";
    if (adapter_opencode_parse_stream(p, idle, sizeof idle - 1, fuzz_on_event, &r, &err) != 0 &&
        err.code != ERR_NOMEM)
        abort();
    normalize_output_clear(&r.out);
    normalize_free(r.norm);
    adapter_opencode_parser_free(p);
    return 0;
}
