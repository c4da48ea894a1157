/* Shared checks of the libFuzzer harnesses in this directory.  Header-only
 * (static inline) so that each harness stays one file plus this. */
#ifndef SJ_FUZZ_COMMON_H
#define SJ_FUZZ_COMMON_H

#include "base/err.h"
#include "events/event.h"
#include "events/normalize.h"
#include "http/parse.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 if s[0..len) is well-formed UTF-8. */
static inline int fuzz_utf8_ok(const char *s, size_t len)
{
    for (size_t i = 0, n; i < len; i += n)
        if (!(n = parse_utf8_char(s + i, len - i)))
            return 0;
    return 1;
}

/* A refusal must be ERR_INVALID (or ERR_NOMEM) with a message for the
 * ProblemDetails: non-empty and NUL-terminated within the record. */
static inline void fuzz_check_refusal(int rc, const struct err *err)
{
    if (rc == ERR_NOMEM)
        return;
    if (rc != ERR_INVALID || err->code != rc)
        abort();
    size_t len = strnlen(err->msg, sizeof err->msg);
    if (len == 0 || len == sizeof err->msg)
        abort();
}

/* Checks events [from, out->count) of a normalizer's output for session
 * `sid`, which must follow sequence `last`: contiguous sequences, the
 * canonical envelope (event_id "evt_<seq>", sequence, session_id, a valid
 * type equal to the record's), text that is JSON and ends in "raw":null},
 * a raw payload that is JSON.  Returns the last sequence. */
static inline uint64_t fuzz_check_events(const struct normalize_output *out, size_t from,
                                         const char *sid, uint64_t last)
{
    static const char tail[] = "\"raw\":null}";
    for (size_t i = from; i < out->count; i++) {
        const struct normalize_event *e = &out->events[i];
        if (e->sequence != last + 1 || !e->json || e->json_len != strlen(e->json) ||
            e->json_len < sizeof tail - 1 ||
            memcmp(e->json + e->json_len - (sizeof tail - 1), tail, sizeof tail - 1) != 0 ||
            !event_type_is_valid(e->type))
            abort();
        json_t *ev = json_loadb(e->json, e->json_len, 0, NULL);
        char id[32];
        snprintf(id, sizeof id, "evt_%llu", (unsigned long long)e->sequence);
        if (!json_is_object(ev) ||
            json_integer_value(json_object_get(ev, "sequence")) != (json_int_t)e->sequence ||
            !json_string_value(json_object_get(ev, "event_id")) ||
            strcmp(json_string_value(json_object_get(ev, "event_id")), id) != 0 ||
            !json_string_value(json_object_get(ev, "session_id")) ||
            strcmp(json_string_value(json_object_get(ev, "session_id")), sid) != 0 ||
            !json_string_value(json_object_get(ev, "type")) ||
            strcmp(json_string_value(json_object_get(ev, "type")), e->type) != 0 ||
            !json_is_null(json_object_get(ev, "raw")) ||
            !event_data_fits(e->type, json_object_get(ev, "data")))
            abort();
        json_decref(ev);
        if (e->raw) {
            json_t *raw = json_loadb(e->raw, e->raw_len, JSON_DECODE_ANY, NULL);
            if (!raw)
                abort();
            json_decref(raw);
        }
        last = e->sequence;
    }
    return last;
}

/* Feeds each conversion (an object with a valid type, or abort) to the
 * normalizer of session `sid`, which must accept it, and checks the events
 * it makes (fuzz_check_events) after *last, which it advances.  0, or -1
 * when memory ran out (the input is then given up). */
static inline int fuzz_feed(normalize_t *n, const json_t *conversions, const char *sid,
                            struct normalize_output *out, uint64_t *last)
{
    size_t i;
    const json_t *c;
    if (!json_is_array(conversions))
        abort();
    json_array_foreach(conversions, i, c) {
        if (!json_is_object(c) ||
            !event_type_is_valid(json_string_value(json_object_get(c, "type"))))
            abort();
        struct err err;
        size_t before = out->count;
        int rc = normalize_apply(n, c, "2026-11-23T12:00:00.000000Z", out, &err);
        if (rc == ERR_NOMEM)
            return -1;
        if (rc != 0)
            abort(); /* the adapter emitted something the normalizer refuses */
        *last = fuzz_check_events(out, before, sid, *last);
    }
    return 0;
}

#endif
