/* Unit tests of the export rows: parsing the stored event text, time
 * conversion, and the exact lines each target gets (ClickHouse
 * JSONEachRow, PostgreSQL COPY text, JSONL), escaping included. */
#include "base/buf.h"
#include "base/err.h"
#include "events/event.h"
#include "export/export_row.h"
#include "journal/journal.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <cmocka.h>

/* A real stored event: event_serialize() is what the journal stores. */
static char *make_event(uint64_t seq, const char *sid, const char *native, const char *delta,
                        size_t *len)
{
    json_t *data = event_delta_data("itm_1", "n\"1", delta);
    assert_non_null(data);
    char *text = event_serialize(seq, "2026-11-23T11:30:00.123456Z", sid, native, 1, "daemon",
                                 "item.delta", data, len);
    json_decref(data);
    assert_non_null(text);
    return text;
}

static void test_row_parses_envelope(void **state)
{
    (void)state; /* no fixture */
    size_t len = 0;
    char *text = make_event(7, "s\t1", "mock-s1", "tab\there \"q\" \\ é\n", &len);
    struct export_row r;
    struct err e;
    err_clear(&e);
    assert_int_equal(export_row_init(&r, "s\t1", 7, text, len, "{\"n\":1}", 7, 1, &e), 0);
    assert_string_equal(r.event_id, "evt_7");
    assert_string_equal(r.type, "item.delta");
    assert_string_equal(r.source, "daemon");
    assert_string_equal(r.native_session_id, "mock-s1");
    assert_true(r.synthetic);
    assert_int_equal(r.turn_end, 1);
    assert_int_equal(r.json_len, len);
    assert_memory_equal(r.json, text, len);
    assert_string_equal(r.raw, "{\"n\":1}");
    /* data is the compact data object, equal as JSON to the stored one */
    json_t *doc = json_loads(text, 0, NULL);
    json_t *data = json_loadb(r.data, r.data_len, 0, NULL);
    assert_non_null(data);
    assert_true(json_equal(data, json_object_get(doc, "data")));
    assert_null(strchr(r.data, '\n'));
    /* byte for byte the stored data */
    const char *stored = strstr(text, ",\"data\":") + 8;
    assert_int_equal(r.data_len, strlen(stored) - strlen(",\"raw\":null}"));
    assert_memory_equal(r.data, stored, r.data_len);
    json_decref(data);
    json_decref(doc);
    assert_true(r.time_us == 1795433400123456LL);
    export_row_clear(&r);
    free(text);
}

static void test_row_refuses_mismatch(void **state)
{
    (void)state; /* no fixture */
    size_t len = 0;
    char *text = make_event(3, "s1", NULL, "x", &len);
    struct export_row r;
    struct err e;
    err_clear(&e);
    assert_int_equal(export_row_init(&r, "s1", 4, text, len, NULL, 0, 0, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "s1/4"));
    assert_null(r.json); /* left cleared */
    assert_int_equal(export_row_init(&r, "other", 3, text, len, NULL, 0, 0, &e), ERR_INVALID);
    assert_int_equal(export_row_init(&r, "s1", 3, "[1]", 3, NULL, 0, 0, &e), ERR_INVALID);
    assert_int_equal(export_row_init(&r, "s1", 3, "{", 1, NULL, 0, 0, &e), ERR_INVALID);
    /* a native session id of null is fine and reads as NULL */
    assert_int_equal(export_row_init(&r, "s1", 3, text, len, NULL, 0, 0, &e), 0);
    assert_null(r.native_session_id);
    assert_null(r.raw);
    export_row_clear(&r);
    free(text);
}

static void test_row_other_shapes(void **state)
{
    (void)state; /* no fixture */
    /* data before other fields, and a string holding ,"data": - parsed whole */
    const char odd[] = "{\"data\":{\"b\":1, \"a\":[1,2]},\"event_id\":\"evt_1\","
                       "\"sequence\":1,\"time\":\"2026-11-23T11:30:00Z\","
                       "\"session_id\":\"x\",\"native_session_id\":\",\\\"data\\\":\","
                       "\"synthetic\":false,\"source\":\"agent\",\"type\":\"error\","
                       "\"raw\":null}";
    struct export_row r;
    struct err e;
    assert_int_equal(export_row_init(&r, "x", 1, odd, sizeof odd - 1, NULL, 0, 0, &e), 0);
    assert_string_equal(r.data, "{\"b\":1,\"a\":[1,2]}");
    assert_string_equal(r.native_session_id, ",\"data\":");
    export_row_clear(&r);
    /* no data at all */
    const char none[] = "{\"event_id\":\"evt_1\",\"sequence\":1,\"time\":\"2026-11-23T11:30:00Z\","
                        "\"session_id\":\"x\",\"synthetic\":false,\"source\":\"agent\","
                        "\"type\":\"error\",\"raw\":null}";
    assert_int_equal(export_row_init(&r, "x", 1, none, sizeof none - 1, NULL, 0, 0, &e),
                     ERR_INVALID);
}

static void test_time(void **state)
{
    (void)state; /* no fixture */
    int64_t us = 0;
    assert_int_equal(export_row_time_us("1970-01-01T00:00:00Z", &us), 0);
    assert_true(us == 0);
    assert_int_equal(export_row_time_us("2000-02-29T12:00:00.5Z", &us), 0);
    assert_true(us == 951825600500000LL);
    assert_int_equal(export_row_time_us("2026-11-23T11:30:00.123Z", &us), 0);
    assert_true(us == 1795433400123000LL);
    /* offsets, lowercase, a space, more than six digits (cut) */
    assert_int_equal(export_row_time_us("2026-11-23T12:30:00+01:00", &us), 0);
    assert_true(us == 1795433400000000LL);
    assert_int_equal(export_row_time_us("2026-11-23 06:00:00.1234567-05:30", &us), 0);
    assert_true(us == 1795433400123456LL);
    assert_int_equal(export_row_time_us("2026-11-23t11:30:00z", &us), 0);
    assert_true(us == 1795433400000000LL);
    /* refused */
    const char *bad[] = {"", "2026-11-23", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                         "2026-11-23T24:00:00Z", "2026-11-23T11:30:00", "2026-11-23T11:30:00.Z",
                         "2026-11-23T11:30:00Zjunk", "26-11-23T11:30:00Z",
                         "2026-11-23T11:30:00+0100"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (export_row_time_us(bad[i], &us) != ERR_INVALID)
            fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(export_row_time_us(NULL, &us), ERR_INVALID);

    char dt[20];
    export_row_datetime(0, dt);
    assert_string_equal(dt, "1970-01-01 00:00:00");
    export_row_datetime(951825600, dt);
    assert_string_equal(dt, "2000-02-29 12:00:00");
    export_row_datetime(1795433400, dt);
    assert_string_equal(dt, "2026-11-23 11:30:00");
    export_row_datetime(-5, dt);
    assert_string_equal(dt, "1970-01-01 00:00:00");
    /* every day of a leap and a common year round-trips */
    for (int64_t day = 0; day < 366 + 365; day++) {
        int64_t secs = 946684800 + day * 86400 + 3661; /* from 2000-01-01 01:01:01 */
        export_row_datetime(secs, dt);
        char iso[32];
        snprintf(iso, sizeof iso, "%.10sT%sZ", dt, dt + 11);
        assert_int_equal(export_row_time_us(iso, &us), 0);
        assert_true(us == secs * 1000000);
    }
}

static void test_json_string_escaping(void **state)
{
    (void)state; /* no fixture */
    struct buf b;
    buf_init(&b);
    const char in[] = "a\"b\\c\n\r\t\b\f\x01\x1f é \x7f";
    assert_int_equal(export_row_json_string(&b, in, sizeof in - 1), 0);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f é \x7f\"");
    /* it parses back to the input, byte for byte */
    json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    assert_int_equal(json_string_length(v), sizeof in - 1);
    assert_memory_equal(json_string_value(v), in, sizeof in - 1);
    json_decref(v);
    buf_reset(&b);
    assert_int_equal(export_row_json_string(&b, "", 0), 0);
    assert_string_equal(b.data, "\"\"");
    buf_free(&b);
}

static void test_copy_escaping(void **state)
{
    (void)state; /* no fixture */
    struct buf b;
    buf_init(&b);
    const char in[] = "a\tb\nc\rd\\e\"f";
    assert_int_equal(export_row_copy_field(&b, in, sizeof in - 1), 0);
    assert_string_equal(b.data, "a\\tb\\nc\\rd\\\\e\"f");
    buf_reset(&b);
    assert_int_equal(export_row_copy_field(&b, NULL, 0), 0);
    assert_string_equal(b.data, "\\N");
    buf_free(&b);
}

static struct export_row fixture_row(char **text)
{
    size_t len = 0;
    *text = make_event(2, "s1", "mock-s1", "hi\n", &len);
    struct export_row r;
    struct err e;
    assert_int_equal(export_row_init(&r, "s1", 2, *text, len, "{\"k\":\"v\\t\"}", 11, 0, &e), 0);
    return r;
}

static void test_clickhouse_lines(void **state)
{
    (void)state; /* no fixture */
    char *text;
    struct export_row r = fixture_row(&text);
    struct buf b;
    buf_init(&b);
    assert_int_equal(export_row_ch_event(&b, &r), 0);
    assert_string_equal(
        b.data,
        "{\"session_id\":\"s1\",\"sequence\":2,\"event_id\":\"evt_2\","
        "\"native_session_id\":\"mock-s1\",\"time\":\"2026-11-23 11:30:00\","
        "\"time_us\":1795433400123456,\"type\":\"item.delta\",\"source\":\"daemon\","
        "\"synthetic\":1,\"turn_end\":0,"
        "\"data\":\"{\\\"item_id\\\":\\\"itm_1\\\",\\\"native_item_id\\\":\\\"n\\\\\\\"1\\\","
        "\\\"delta\\\":\\\"hi\\\\n\\\"}\",\"raw\":\"{\\\"k\\\":\\\"v\\\\t\\\"}\"}\n");
    /* one line, and the data column parses back to the event's data */
    assert_int_equal(strchr(b.data, '\n') - b.data, (long)b.len - 1);
    json_t *line = json_loadb(b.data, b.len, 0, NULL);
    json_t *data = json_loads(json_string_value(json_object_get(line, "data")), 0, NULL);
    json_t *doc = json_loads(text, 0, NULL);
    assert_true(json_equal(data, json_object_get(doc, "data")));
    json_decref(line);
    json_decref(data);
    json_decref(doc);

    struct export_session s;
    memset(&s, 0, sizeof s);
    s.info.session_id = strdup("s1");
    s.info.agent = strdup("mock");
    s.info.agent_mode = strdup("build");
    s.info.permission_mode = strdup("default");
    s.info.native_session_id = strdup("mock-s1");
    s.info.created_at = strdup("2026-11-23T11:29:59.999Z");
    s.event_count = 2;
    s.ended = 1;
    buf_reset(&b);
    assert_int_equal(export_row_ch_session(&b, &s, 1795433401), 0);
    assert_string_equal(b.data,
                        "{\"session_id\":\"s1\",\"agent\":\"mock\",\"agent_mode\":\"build\","
                        "\"permission_mode\":\"default\",\"model\":null,\"variant\":null,"
                        "\"agent_version\":null,\"native_session_id\":\"mock-s1\","
                        "\"working_dir\":null,\"created_at\":\"2026-11-23 11:29:59\","
                        "\"ended\":1,\"event_count\":2,"
                        "\"exported_at\":\"2026-11-23 11:30:01\"}\n");
    journal_session_info_clear(&s.info);
    buf_free(&b);
    export_row_clear(&r);
    free(text);
}

static void test_postgres_lines(void **state)
{
    (void)state; /* no fixture */
    char *text;
    struct export_row r = fixture_row(&text);
    struct buf b;
    buf_init(&b);
    assert_int_equal(export_row_pg_event(&b, &r), 0);
    assert_string_equal(b.data,
                        "s1\t2\tevt_2\tmock-s1\t2026-11-23T11:30:00.123456Z\titem.delta\tdaemon\t"
                        "t\tf\t{\"item_id\":\"itm_1\",\"native_item_id\":\"n\\\\\"1\","
                        "\"delta\":\"hi\\\\n\"}\t{\"k\":\"v\\\\t\"}\n");
    /* eleven columns, as EXPORT_ROW_PG_EVENT_COLUMNS names */
    size_t tabs = 0;
    for (size_t i = 0; i < b.len; i++)
        tabs += b.data[i] == '\t';
    assert_int_equal(tabs, 10);

    struct export_session s;
    memset(&s, 0, sizeof s);
    s.info.session_id = strdup("s\t1");
    s.info.agent = strdup("mock");
    s.info.agent_mode = strdup("build");
    s.info.permission_mode = strdup("default");
    s.info.model = strdup("m");
    s.info.created_at = strdup("2026-11-23T11:29:59.999Z");
    s.event_count = 9;
    buf_reset(&b);
    assert_int_equal(export_row_pg_session(&b, &s), 0);
    assert_string_equal(b.data, "s\\t1\tmock\tbuild\tdefault\tm\t\\N\t\\N\t\\N\t\\N\t"
                                "2026-11-23T11:29:59.999Z\t0\t9\n");
    journal_session_info_clear(&s.info);
    buf_free(&b);
    export_row_clear(&r);
    free(text);
}

static void test_jsonl_lines(void **state)
{
    (void)state; /* no fixture */
    char *text;
    struct export_row r = fixture_row(&text);
    struct buf b;
    buf_init(&b);
    assert_int_equal(export_row_jsonl_header(&b), 0);
    assert_string_equal(b.data, "{\"kind\":\"sandbox-journal-export\",\"version\":1}\n");
    buf_reset(&b);
    assert_int_equal(export_row_jsonl_event(&b, &r), 0);
    /* the stored text and raw payload come back exactly */
    json_t *line = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "kind")), "event");
    assert_string_equal(json_string_value(json_object_get(line, "json")), text);
    assert_string_equal(json_string_value(json_object_get(line, "raw")), "{\"k\":\"v\\t\"}");
    assert_int_equal(json_integer_value(json_object_get(line, "sequence")), 2);
    assert_true(json_is_false(json_object_get(line, "turn_end")));
    json_decref(line);

    struct export_session s;
    memset(&s, 0, sizeof s);
    s.info.session_id = strdup("s1");
    s.info.agent = strdup("mock");
    s.info.agent_mode = strdup("build");
    s.info.permission_mode = strdup("default");
    s.info.adapter_state = strdup("{\"turns\":2}");
    s.info.created_at = strdup("2026-11-23T11:29:59.999Z");
    s.event_count = 2;
    s.ended = 2;
    buf_reset(&b);
    assert_int_equal(export_row_jsonl_session(&b, &s), 0);
    assert_string_equal(b.data,
                        "{\"kind\":\"session\",\"session_id\":\"s1\",\"agent\":\"mock\","
                        "\"agent_mode\":\"build\",\"permission_mode\":\"default\","
                        "\"model\":null,\"variant\":null,\"agent_version\":null,"
                        "\"native_session_id\":null,\"working_dir\":null,"
                        "\"adapter_state\":\"{\\\"turns\\\":2}\","
                        "\"created_at\":\"2026-11-23T11:29:59.999Z\",\"ended\":2,"
                        "\"last_sequence\":2}\n");
    journal_session_info_clear(&s.info);
    buf_free(&b);
    export_row_clear(&r);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_parses_envelope),
        cmocka_unit_test(test_row_refuses_mismatch),
        cmocka_unit_test(test_row_other_shapes),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_json_string_escaping),
        cmocka_unit_test(test_copy_escaping),
        cmocka_unit_test(test_clickhouse_lines),
        cmocka_unit_test(test_postgres_lines),
        cmocka_unit_test(test_jsonl_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
