/* libFuzzer harness for the normalizer (src/normalize.h) fed arbitrary
 * conversions.  The first byte picks the agent's flags (emits item.started,
 * can resume, assistant messages end turns); the rest is JSON: an array of
 * conversions, or one.  Each conversion is applied to normalizer A, whose
 * events are replayed into a fresh normalizer B, the way a session rebuilds
 * itself from the journal after a restart or a failed commit.
 * Invariants: a conversion is either refused with ERR_INVALID, leaving the
 * state and the output as they were, or turned into well-formed events
 * (fuzz_check_events: contiguous sequences, canonical envelope, valid type
 * and data, "raw":null} tail); B accepts every event A produced; afterwards
 * A and B agree on the last sequence, the native session id, the ended flag
 * and every pending permission and question, and they turn the same next
 * conversions into byte-identical events.  Built with -DSJ_FUZZ=ON (or
 * -DFUZZ=ON) and clang; seeds in corpus/fuzz_normalize/, dictionary
 * fuzz_normalize.dict.
 *
 * B also gets the item aliases A produced (native parent ids no event
 * records), as sessions.c restores them from the journal's item_aliases;
 * the input in corpus/fuzz_normalize/parent-only-native-id is the one that
 * showed the need. */
#include "events/event.h"
#include "fuzz_common.h"
#include "events/normalize.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TIME "2026-11-23T12:00:00.000000Z"
#define FUZZ_MAX_CONVERSIONS 64

static void fuzz_same_pending(const normalize_t *a, const normalize_t *b, const json_t *events)
{
    size_t i;
    const json_t *c;
    json_array_foreach(events, i, c) {
        const json_t *d = json_object_get(c, "data");
        const char *pid = json_string_value(json_object_get(d, "permission_id"));
        const char *qid = json_string_value(json_object_get(d, "question_id"));
        if (pid) {
            const json_t *pa = normalize_pending_permission(a, pid);
            const json_t *pb = normalize_pending_permission(b, pid);
            if (!pa != !pb || (pa && !json_equal((json_t *)pa, (json_t *)pb)))
                abort();
        }
        if (qid) {
            const json_t *qa = normalize_pending_question(a, qid);
            const json_t *qb = normalize_pending_question(b, qid);
            if (!qa != !qb || (qa && !json_equal((json_t *)qa, (json_t *)qb)))
                abort();
        }
    }
}

/* Applies `c` to both and requires identical results. */
static void fuzz_same_next(normalize_t *a, normalize_t *b, const json_t *c)
{
    struct normalize_output oa, ob;
    struct err ea, eb;
    normalize_output_init(&oa);
    normalize_output_init(&ob);
    int ra = normalize_apply(a, c, FUZZ_TIME, &oa, &ea);
    int rb = normalize_apply(b, c, FUZZ_TIME, &ob, &eb);
    if (ra == ERR_NOMEM || rb == ERR_NOMEM)
        goto out;
    if (ra != rb || oa.count != ob.count || oa.ended != ob.ended)
        abort();
    for (size_t i = 0; i < oa.count; i++)
        if (oa.events[i].json_len != ob.events[i].json_len ||
            memcmp(oa.events[i].json, ob.events[i].json, oa.events[i].json_len) != 0 ||
            oa.events[i].turn_end != ob.events[i].turn_end)
            abort();
out:
    normalize_output_clear(&oa);
    normalize_output_clear(&ob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct normalize_config cfg = {
        .session_id = "fz",
        .agent_emits_item_started = data[0] & 1,
        .agent_can_resume = (data[0] >> 1) & 1,
        .assistant_message_ends_turn = (data[0] >> 2) & 1,
    };
    json_t *in = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
    if (!in)
        return 0;
    json_t *list = json_is_array(in) ? json_incref(in) : json_pack("[O]", in);
    normalize_t *a = normalize_new(&cfg), *b = normalize_new(&cfg);
    json_t *produced = json_array();
    if (!list || !a || !b || !produced)
        goto done;
    if ((data[0] >> 3) & 1 && (normalize_set_native_session_id(a, "native-fz") != 0 ||
                               normalize_set_native_session_id(b, "native-fz") != 0))
        goto done;

    struct normalize_output out;
    normalize_output_init(&out);
    uint64_t last = 0;
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        if (i == FUZZ_MAX_CONVERSIONS)
            break;
        /* Agents without item.started of their own get the server's
         * pending assistant item before a turn, as sessions.c does. */
        json_t *pending = !cfg.agent_emits_item_started && (data[0] >> 4) & 1
                              ? normalize_pending_assistant_start(a)
                              : NULL;
        const json_t *steps[2] = {pending, c};
        for (int k = 0; k < 2; k++) {
            if (!steps[k])
                continue;
            struct err err;
            size_t before = out.count, aliases_before = out.n_aliases;
            uint64_t seq_before = normalize_last_sequence(a);
            int rc = normalize_apply(a, steps[k], FUZZ_TIME, &out, &err);
            if (rc == ERR_NOMEM) {
                json_decref(pending);
                goto clear;
            }
            if (rc != 0) {
                if (rc != ERR_INVALID || out.count != before || out.n_aliases != aliases_before ||
                    normalize_last_sequence(a) != seq_before)
                    abort();
                continue;
            }
            last = fuzz_check_events(&out, before, "fz", last);
            if (normalize_last_sequence(a) != last)
                abort();
            for (size_t e = before; e < out.count; e++) {
                rc = normalize_replay(b, out.events[e].json, out.events[e].json_len, &err);
                if (rc == ERR_NOMEM) {
                    json_decref(pending);
                    goto clear;
                }
                if (rc != 0)
                    abort(); /* a stored event the rebuild refuses */
                json_t *ev = json_loads(out.events[e].json, 0, NULL);
                if (ev)
                    json_array_append_new(produced, ev);
            }
        }
        json_decref(pending);
    }
    if (normalize_last_sequence(a) != normalize_last_sequence(b) ||
        normalize_is_ended(a) != normalize_is_ended(b))
        abort();
    const char *na = normalize_native_session_id(a), *nb = normalize_native_session_id(b);
    if (!na != !nb || (na && strcmp(na, nb) != 0))
        abort();
    fuzz_same_pending(a, b, produced);
    for (size_t k = 0; k < out.n_aliases; k++) {
        int rc = normalize_add_alias(b, out.aliases[k].native_id, out.aliases[k].item_id);
        if (rc == ERR_NOMEM)
            goto clear;
        if (rc != 0)
            abort(); /* an alias the rebuild refuses */
    }
    /* The same next steps give the same events. */
    json_array_foreach(list, i, c) {
        if (i == 4)
            break;
        fuzz_same_next(a, b, c);
    }
clear:
    normalize_output_clear(&out);
done:
    json_decref(produced);
    normalize_free(a);
    normalize_free(b);
    json_decref(list);
    json_decref(in);
    return 0;
}
