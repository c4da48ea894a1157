/* Out-of-memory tests of the export layer's pure parts: target URLs
 * (export_url.c) and rows (export_row.c), under a failing Nth allocation
 * (oom_alloc.h).  A stored event that cannot be parsed for want of memory
 * must be ERR_NOMEM, not ERR_INVALID: an exporter stops at an invalid event
 * as at a damaged journal. */
#include "base/buf.h"
#include "base/err.h"
#include "events/event.h"
#include "export/export_row.h"
#include "export/export_url.h"

#include "oom_alloc.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h> /* cmocka needs these three first */
#include <cmocka.h>

/* ---- URLs --------------------------------------------------------------------- */

struct url_case {
    const char *text;
    struct export_url want;
};

static int url_equal(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int url_attempt(void *arg)
{
    struct url_case *c = arg;
    struct export_url u;
    struct err e;
    err_clear(&e);
    oom_arm();
    int rc = export_url_parse(c->text, &u, &e);
    int fired = oom_disarm();
    if (rc) {
        assert_true(fired);
        if (rc != ERR_NOMEM)
            fail_msg("%s at N=%lu: %s (%s)", c->text, oom_n(), err_name(rc), e.msg);
        /* Left cleared, and the password is not in the message. */
        assert_null(u.text);
        assert_null(u.password);
        assert_null(strstr(e.msg, "s3cret"));
        rc = export_url_parse(c->text, &u, &e);
        assert_int_equal(rc, 0);
    }
    assert_int_equal(u.kind, c->want.kind);
    assert_true(url_equal(u.masked, c->want.masked));
    assert_true(url_equal(u.key, c->want.key));
    assert_true(url_equal(u.user, c->want.user));
    assert_true(url_equal(u.password, c->want.password));
    assert_true(url_equal(u.host, c->want.host));
    assert_true(url_equal(u.database, c->want.database));
    assert_true(url_equal(u.params, c->want.params));
    assert_true(url_equal(u.path, c->want.path));
    assert_int_equal(u.port, c->want.port);
    export_url_clear(&u);
    return fired;
}

static void test_urls(void **state)
{
    (void)state;
    static const char *const urls[] = {
        "postgres://us%40er:s3cret@db.example:5433/jour%20nal?sslmode=require&password=s3cret",
        "clickhouse+https://user:s3cret@[::1]:8443/analytics",
        "clickhouse://localhost",
        "jsonl:relative/export.jsonl",
        "jsonl:/abs/export.jsonl",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        struct url_case c = {.text = urls[i]};
        struct err e;
        assert_int_equal(export_url_parse(urls[i], &c.want, &e), 0);
        oom_loop(urls[i], url_attempt, &c, 100);
        export_url_clear(&c.want);
    }
}

/* ---- rows ----------------------------------------------------------------------- */

struct row_case {
    const char *name;
    char *text;
    size_t len;
    const char *raw;
    char *want; /* every line the row and its session make, unarmed */
};

static void session_of(struct export_session *s)
{
    /* Borrowed by the session; never freed. */
    static char sid[] = "s1", agent[] = "mock", mode[] = "build", perm[] = "default",
                native[] = "mock-s1", created[] = "2026-11-23T11:29:59.999Z";
    memset(s, 0, sizeof *s);
    s->info.session_id = sid;
    s->info.agent = agent;
    s->info.agent_mode = mode;
    s->info.permission_mode = perm;
    s->info.native_session_id = native;
    s->info.created_at = created;
    s->event_count = 2;
    s->ended = 1;
}

/* Every line format; 0 or the first failure. */
static int row_lines(struct buf *b, const struct export_row *r, const struct export_session *s)
{
    int rc;
    if ((rc = export_row_ch_event(b, r)) || (rc = export_row_ch_session(b, s, 1795433401)) ||
        (rc = export_row_pg_event(b, r)) || (rc = export_row_pg_session(b, s)) ||
        (rc = export_row_jsonl_header(b)) || (rc = export_row_jsonl_session(b, s)) ||
        (rc = export_row_jsonl_event(b, r)))
        return rc;
    return 0;
}

static int row_attempt(void *arg)
{
    struct row_case *c = arg;
    struct export_row r;
    struct export_session s;
    session_of(&s);
    struct buf b;
    buf_init(&b);
    struct err e;
    err_clear(&e);
    size_t raw_len = c->raw ? strlen(c->raw) : 0;
    oom_arm();
    int rc = export_row_init(&r, "s1", 2, c->text, c->len, c->raw, raw_len, 1, &e);
    int rc_lines = rc ? 0 : row_lines(&b, &r, &s);
    int fired = oom_disarm();
    if (rc) {
        assert_true(fired);
        if (rc != ERR_NOMEM)
            fail_msg("%s: export_row_init at N=%lu: %s (%s)", c->name, oom_n(), err_name(rc),
                     e.msg);
        /* Left cleared. */
        assert_null(r.json);
        assert_null(r.doc);
        assert_null(r.data);
        assert_int_equal(export_row_init(&r, "s1", 2, c->text, c->len, c->raw, raw_len, 1, &e),
                         0);
    }
    if (rc || rc_lines) {
        if (rc_lines) {
            assert_true(fired);
            assert_int_equal(rc_lines, ERR_NOMEM);
        }
        buf_reset(&b);
        assert_int_equal(row_lines(&b, &r, &s), 0);
    }
    assert_string_equal(b.data, c->want);
    buf_free(&b);
    export_row_clear(&r);
    return fired;
}

static void test_rows(void **state)
{
    (void)state;
    struct row_case cases[2] = {
        {.name = "canonical event", .raw = "{\"native\":\"payload\\t\"}"},
        {.name = "event not in the canonical shape", .raw = NULL},
    };
    json_t *data = event_item_data(event_item(
        "message", "assistant", "completed", "m1",
        event_content_add(event_content(event_part_text("tab\there \"q\" \\ \xC3\xA9\n")),
                          event_part_json(json_pack("{s:[i,f]}", "v", 1, 2.5)))));
    assert_non_null(data);
    cases[0].text = event_serialize(2, "2026-11-23T11:30:00.123456Z", "s1", "mock-s1", 0,
                                    "agent", "item.completed", data, &cases[0].len);
    assert_non_null(cases[0].text);
    /* Not ending in "raw":null: parsed whole, its data written out again. */
    static const char odd[] =
        "{\"session_id\":\"s1\",\"sequence\":2,\"event_id\":\"evt_2\","
        "\"time\":\"2026-11-23T11:30:00Z\",\"type\":\"error\",\"source\":\"daemon\","
        "\"synthetic\":true,\"native_session_id\":null,"
        "\"data\":{\"details\":{\"b\":[1,2.5]},\"message\":\"x\",\"code\":null}}";
    cases[1].text = strdup(odd);
    assert_non_null(cases[1].text);
    cases[1].len = sizeof odd - 1;
    json_decref(data);

    for (size_t i = 0; i < 2; i++) {
        struct export_row r;
        struct export_session s;
        session_of(&s);
        struct err e;
        const char *raw = cases[i].raw;
        assert_int_equal(export_row_init(&r, "s1", 2, cases[i].text, cases[i].len, raw,
                                         raw ? strlen(raw) : 0, 1, &e),
                         0);
        struct buf b;
        buf_init(&b);
        assert_int_equal(row_lines(&b, &r, &s), 0);
        cases[i].want = buf_steal(&b);
        assert_non_null(cases[i].want);
        export_row_clear(&r);
        oom_loop(cases[i].name, row_attempt, &cases[i], 500);
        free(cases[i].want);
        free(cases[i].text);
    }
}

int main(void)
{
    oom_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
