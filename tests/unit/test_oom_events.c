/* Out-of-memory tests of src/events/: event serialization and the builders
 * (event.c), and the normalizer (normalize.c), under a failing Nth
 * allocation (oom_alloc.h).
 *
 * The normalizer's promise after ERR_NOMEM (normalize.h): nothing was
 * appended to the output, and the normalizer must be rebuilt from the
 * journal.  So the scenario below is run against a reference, and at every
 * failure the test rebuilds the normalizer from the events "committed" so
 * far (normalize_replay() plus the aliases), applies the same conversion
 * again and must get exactly the reference's events, byte for byte. */
#include "base/err.h"
#include "events/event.h"
#include "events/normalize.h"

#include "oom_alloc.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h> /* cmocka needs these three first */
#include <cmocka.h>

#define T "2026-11-23T11:30:00.123456Z"

/* ---- serialization ------------------------------------------------------------ */

struct serialize_case {
    const char *type;
    json_t *data;
    const char *want; /* filled by the unarmed run */
};

static int serialize_attempt(void *arg)
{
    struct serialize_case *c = arg;
    size_t len = 0;
    oom_arm();
    char *s = event_serialize(7, T, "s1", "native-1", 0, "agent", c->type, c->data, &len);
    int fired = oom_disarm();
    if (!s) {
        assert_true(fired); /* the data fits, so NULL means memory ran out */
    } else {
        assert_string_equal(s, c->want);
        assert_int_equal(len, strlen(c->want));
    }
    free(s);
    return fired;
}

static int dump_attempt(void *arg)
{
    struct serialize_case *c = arg;
    oom_arm();
    size_t len = 0;
    char *s = event_dump(c->data, &len);
    int fired = oom_disarm();
    char *want = event_dump(c->data, NULL);
    assert_non_null(want);
    if (!s)
        assert_true(fired);
    else
        assert_string_equal(s, want);
    free(s);
    free(want);
    return fired;
}

static void test_serialize(void **state)
{
    (void)state;
    struct serialize_case cases[] = {
        {"item.completed",
         event_item_data(event_item(
             "message", "assistant", "completed", "m1",
             event_content_add(
                 event_content_add(event_content(event_part_text("hello \"world\"\n\x01")),
                                   event_part_tool_call("bash", "{\"cmd\":\"ls\"}", "c1")),
                 event_part_json(json_pack("{s:f,s:[i,i],s:n}", "x", 1.5, "a", 1, 2, "z"))))),
         NULL},
        {"session.ended", event_session_ended_data("error", "agent", "boom", 3,
                                                   json_pack("{s:s,s:b}", "head", "trace", "truncated", 0)),
         NULL},
        {"permission.requested",
         event_permission_data("p1", "bash", "requested", json_pack("{s:s}", "cmd", "ls -la")),
         NULL},
        {"question.requested",
         event_question_data("q1", "Which?", json_pack("[s,s]", "a", "b"), NULL, "requested"),
         NULL},
        {"agent.unparsed", event_unparsed_data("bad line", "stdout", "abc123"), NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_non_null(cases[i].data);
        size_t len;
        char *want = event_serialize(7, T, "s1", "native-1", 0, "agent", cases[i].type,
                                     cases[i].data, &len);
        assert_non_null(want);
        cases[i].want = want;
        char name[64];
        snprintf(name, sizeof name, "event_serialize %s", cases[i].type);
        oom_loop(name, serialize_attempt, &cases[i], 200);
        snprintf(name, sizeof name, "event_dump %s", cases[i].type);
        oom_loop(name, dump_attempt, &cases[i], 200);
        free(want);
        json_decref(cases[i].data);
    }
}

/* The builders steal their arguments and return NULL, freeing everything,
 * when memory runs out: nested calls need no checks and leak nothing. */
static int builders_attempt(void *arg)
{
    (void)arg;
    oom_arm();
    json_t *conv = event_with_native_session(
        event_with_raw(
            event_synthetic(event_conversion(
                "item.completed",
                event_item_data(event_item(
                    "tool_call", NULL, "completed", "t1",
                    event_content_add(
                        event_content_add(
                            event_content_add(
                                event_content(event_part_tool_result("c1", "output")),
                                event_part_file_ref("/a", "patch", "+x")),
                            event_part_reasoning("because", "public")),
                        event_part_image("/i.png", "image/png")))))),
            json_pack("{s:s}", "native", "payload")),
        "native-1");
    json_t *err_conv = event_conversion(
        "error", event_error_data("failed", "agent_error", json_pack("{s:i}", "code", 2)));
    json_t *status = event_content(event_part_status("turn.completed", NULL));
    json_t *delta = event_conversion("item.delta", event_delta_data("itm_1", "t1", "chunk"));
    json_t *started = event_conversion("session.started",
                                       event_session_started_data(json_pack("{s:s}", "k", "v")));
    int fired = oom_disarm();
    if (!fired) {
        assert_non_null(conv);
        assert_non_null(err_conv);
        assert_non_null(status);
        assert_non_null(delta);
        assert_non_null(started);
        assert_true(event_data_fits("item.completed", json_object_get(conv, "data")));
    }
    json_decref(conv);
    json_decref(err_conv);
    json_decref(status);
    json_decref(delta);
    json_decref(started);
    return fired;
}

static void test_builders(void **state)
{
    (void)state;
    oom_loop("event builders", builders_attempt, NULL, 300);
}

/* ---- the normalizer ----------------------------------------------------------- */

static json_t *with_parent(json_t *conv, const char *parent)
{
    json_object_set_new(json_object_get(json_object_get(conv, "data"), "item"), "parent_id",
                        json_string(parent));
    return conv;
}

static json_t *conv_item(const char *type, const char *kind, const char *role,
                         const char *status, const char *native, json_t *content)
{
    return event_conversion(type,
                            event_item_data(event_item(kind, role, status, native, content)));
}

/* A session that touches every kind of state the normalizer keeps: item ids
 * by native id, synthetic started/delta companions, a parent-only alias,
 * pending permissions and questions, the native session id, raw payloads. */
static size_t scenario(json_t **convs, size_t cap, int emits_item_started)
{
    size_t n = 0;
    convs[n++] = event_with_native_session(
        event_conversion("session.started",
                         event_session_started_data(json_pack("{s:s}", "model", "m"))),
        "native-A");
    if (!emits_item_started) {
        /* Filled in by the caller with normalize_pending_assistant_start(). */
        convs[n++] = NULL;
    }
    convs[n++] = conv_item("item.started", "tool_call", NULL, "in_progress", "t1",
                           json_array());
    convs[n++] = event_with_raw(
        event_conversion("item.delta", event_delta_data("", "t1", "partial output")),
        json_pack("{s:s,s:i}", "native", "delta", "n", 1));
    convs[n++] = with_parent(
        conv_item("item.completed", "tool_call", NULL, "completed", "t2",
                  event_content(event_part_tool_result("c1", "done"))),
        "parent-only");
    convs[n++] = conv_item("item.completed", "message", "assistant", "completed", "m1",
                           event_content_add(event_content(event_part_text("first line")),
                                             event_part_text("second line")));
    for (int i = 0; i < 8; i++) {
        /* Enough items to grow the item map (16 slots, 3/4 full). */
        char native[32];
        snprintf(native, sizeof native, "bulk-%d", i);
        convs[n++] = conv_item("item.started", "tool_call", NULL, "in_progress", native,
                               json_array());
    }
    convs[n++] = event_conversion(
        "permission.requested",
        event_permission_data("p1", "bash", "requested", json_pack("{s:s}", "cmd", "ls")));
    convs[n++] = event_conversion(
        "question.requested",
        event_question_data("q1", "Which?", json_pack("[s]", "x"), NULL, "requested"));
    convs[n++] = event_conversion("permission.resolved",
                                  event_permission_data("p1", "bash", "approved", NULL));
    convs[n++] = event_conversion(
        "question.resolved", event_question_data("q1", "Which?", json_array(), "x", "answered"));
    convs[n++] = event_conversion("error", event_error_data("oops", "agent_error", NULL));
    convs[n++] = event_synthetic(event_conversion(
        "session.ended", event_session_ended_data("completed", "daemon", NULL, -1, NULL)));
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++)
        if (emits_item_started || i != 1)
            assert_non_null(convs[i]);
    return n;
}

/* Events and aliases as the journal would hold them. */
struct committed {
    char **json;
    size_t *len;
    size_t count;
    char **alias_native;
    char **alias_item;
    size_t n_aliases;
};

static void committed_add(struct committed *c, const struct normalize_output *out)
{
    c->json = realloc(c->json, (c->count + out->count) * sizeof *c->json);
    c->len = realloc(c->len, (c->count + out->count) * sizeof *c->len);
    assert_non_null(c->json);
    assert_non_null(c->len);
    for (size_t i = 0; i < out->count; i++) {
        c->json[c->count] = strdup(out->events[i].json);
        assert_non_null(c->json[c->count]);
        c->len[c->count++] = out->events[i].json_len;
    }
    c->alias_native = realloc(c->alias_native, (c->n_aliases + out->n_aliases) * sizeof(char *));
    c->alias_item = realloc(c->alias_item, (c->n_aliases + out->n_aliases) * sizeof(char *));
    if (out->n_aliases) {
        assert_non_null(c->alias_native);
        assert_non_null(c->alias_item);
    }
    for (size_t i = 0; i < out->n_aliases; i++) {
        c->alias_native[c->n_aliases] = strdup(out->aliases[i].native_id);
        c->alias_item[c->n_aliases++] = strdup(out->aliases[i].item_id);
    }
}

static void committed_free(struct committed *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->json[i]);
    for (size_t i = 0; i < c->n_aliases; i++) {
        free(c->alias_native[i]);
        free(c->alias_item[i]);
    }
    free(c->json);
    free(c->len);
    free(c->alias_native);
    free(c->alias_item);
    memset(c, 0, sizeof *c);
}

static normalize_t *make(int emits_item_started)
{
    struct normalize_config cfg = {
        .session_id = "s1",
        .agent_emits_item_started = emits_item_started,
        .agent_can_resume = 0,
        .assistant_message_ends_turn = 1,
    };
    normalize_t *n = normalize_new(&cfg);
    assert_non_null(n);
    return n;
}

/* What the session layer does after a failed apply: a new normalizer,
 * rebuilt from the journal. */
static normalize_t *rebuild(const struct committed *c, int emits_item_started)
{
    normalize_t *n = make(emits_item_started);
    struct err e;
    err_clear(&e);
    for (size_t i = 0; i < c->n_aliases; i++)
        assert_int_equal(normalize_add_alias(n, c->alias_native[i], c->alias_item[i]), 0);
    for (size_t i = 0; i < c->count; i++)
        if (normalize_replay(n, c->json[i], c->len[i], &e) != 0)
            fail_msg("replay of event %zu: %s", i + 1, e.msg);
    return n;
}

struct normalize_run {
    int emits_item_started;
    json_t *convs[64];
    size_t n_convs;
    struct committed want; /* the reference run */
};

/* Runs the scenario, failing the Nth allocation of each apply; compares
 * with the reference. */
static int normalize_attempt(void *arg)
{
    struct normalize_run *r = arg;
    struct committed got = {0};
    normalize_t *n = make(r->emits_item_started);
    int fired_any = 0;
    struct err e;
    for (size_t i = 0; i < r->n_convs; i++) {
        json_t *start = NULL;
        if (!r->convs[i]) {
            /* The pending assistant item, queued before the turn. */
            oom_arm();
            start = normalize_pending_assistant_start(n);
            int fired = oom_disarm();
            fired_any |= fired;
            if (!start) {
                assert_true(fired);
                start = normalize_pending_assistant_start(n);
                assert_non_null(start);
            }
        }
        const json_t *conv = start ? start : r->convs[i];
        struct normalize_output out;
        normalize_output_init(&out);
        err_clear(&e);
        oom_arm();
        int rc = normalize_apply(n, conv, T, &out, &e);
        int fired = oom_disarm();
        fired_any |= fired;
        if (rc) {
            if (!fired || rc != ERR_NOMEM)
                fail_msg("apply %zu at N=%lu: %s (%s)", i, oom_n(), err_name(rc), e.msg);
            /* Nothing was appended... */
            assert_int_equal(out.count, 0);
            assert_int_equal(out.n_aliases, 0);
            assert_int_equal(out.ended, 0);
            normalize_output_clear(&out);
            /* ...and a rebuilt normalizer takes the same conversion. */
            normalize_free(n);
            n = rebuild(&got, r->emits_item_started);
            if (start) {
                /* The queued item was not journaled: queue it again. */
                json_decref(start);
                start = normalize_pending_assistant_start(n);
                assert_non_null(start);
                conv = start;
            }
            rc = normalize_apply(n, conv, T, &out, &e);
            if (rc)
                fail_msg("apply %zu after rebuild: %s", i, e.msg);
        }
        committed_add(&got, &out);
        normalize_output_clear(&out);
        json_decref(start);
    }
    /* Exactly the reference's events and aliases. */
    assert_int_equal(got.count, r->want.count);
    for (size_t i = 0; i < got.count; i++)
        assert_string_equal(got.json[i], r->want.json[i]);
    assert_int_equal(got.n_aliases, r->want.n_aliases);
    assert_int_equal(normalize_last_sequence(n), got.count);
    assert_int_equal(normalize_is_ended(n), 1);
    normalize_free(n);
    committed_free(&got);
    return fired_any;
}

static void normalize_scenario(int emits_item_started, const char *name)
{
    struct normalize_run r = {.emits_item_started = emits_item_started};
    r.n_convs = scenario(r.convs, 64, emits_item_started);
    /* The reference run (it also makes the pending assistant start). */
    normalize_t *n = make(emits_item_started);
    struct err e;
    for (size_t i = 0; i < r.n_convs; i++) {
        json_t *made = NULL;
        if (!r.convs[i])
            made = normalize_pending_assistant_start(n);
        struct normalize_output out;
        normalize_output_init(&out);
        assert_int_equal(normalize_apply(n, made ? made : r.convs[i], T, &out, &e), 0);
        committed_add(&r.want, &out);
        normalize_output_clear(&out);
        json_decref(made);
    }
    normalize_free(n);
    assert_true(r.want.n_aliases >= 1);

    /* Each attempt fails the Nth allocation of every apply of the scenario
     * and rebuilds after each failure, which is slow under valgrind: every
     * N up to 30 (most applies' allocations), then every 6th. */
    oom_loop_sampled(name, normalize_attempt, &r, 5000, 30, 6);

    for (size_t i = 0; i < r.n_convs; i++)
        json_decref(r.convs[i]);
    committed_free(&r.want);
}

static void test_normalize_apply(void **state)
{
    (void)state;
    normalize_scenario(1, "normalize_apply scenario");
}

static void test_normalize_apply_pending_assistant(void **state)
{
    (void)state;
    normalize_scenario(0, "normalize_apply, pending assistant");
}

/* Replay: a rebuild that runs out of memory says so (the caller keeps the
 * session unusable rather than serving a wrong state) and leaks nothing. */
struct replay_run {
    struct committed c;
};

static int replay_attempt(void *arg)
{
    struct replay_run *r = arg;
    struct normalize_config cfg = {.session_id = "s1", .agent_emits_item_started = 1,
                                   .assistant_message_ends_turn = 1};
    struct err e;
    err_clear(&e);
    oom_arm();
    normalize_t *n = normalize_new(&cfg);
    int rc = n ? 0 : ERR_NOMEM;
    for (size_t i = 0; i < r->c.n_aliases && !rc; i++)
        rc = normalize_add_alias(n, r->c.alias_native[i], r->c.alias_item[i]);
    for (size_t i = 0; i < r->c.count && !rc; i++)
        rc = normalize_replay(n, r->c.json[i], r->c.len[i], &e);
    int fired = oom_disarm();
    if (rc) {
        if (!fired || rc != ERR_NOMEM)
            fail_msg("replay at N=%lu: %s (%s)", oom_n(), err_name(rc), e.msg);
    } else {
        assert_int_equal(normalize_last_sequence(n), r->c.count);
        assert_string_equal(normalize_native_session_id(n), "native-A");
    }
    normalize_free(n);
    return fired;
}

static void test_normalize_replay(void **state)
{
    (void)state;
    struct replay_run r = {0};
    json_t *convs[64];
    size_t count = scenario(convs, 64, 1);
    normalize_t *n = make(1);
    struct err e;
    for (size_t i = 0; i < count; i++) {
        struct normalize_output out;
        normalize_output_init(&out);
        assert_int_equal(normalize_apply(n, convs[i], T, &out, &e), 0);
        committed_add(&r.c, &out);
        normalize_output_clear(&out);
        json_decref(convs[i]);
    }
    normalize_free(n);
    /* About 2,300 allocations, much the same for each event replayed: every
     * N through the first few events, then every 23rd (SJ_OOM_FULL=1: all). */
    oom_loop_sampled("normalize_new + replay", replay_attempt, &r, 20000, 150, 23);
    committed_free(&r.c);
}

int main(void)
{
    oom_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serialize),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_normalize_apply),
        cmocka_unit_test(test_normalize_apply_pending_assistant),
        cmocka_unit_test(test_normalize_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
