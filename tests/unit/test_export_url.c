/* Unit tests of export target URLs: what parses to what, the checkpoint
 * key, what is refused and how, and that no password ever reaches a
 * message. */
#include "base/err.h"
#include "export/export_url.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <cmocka.h>

static struct export_url parse_ok(const char *text)
{
    struct export_url u;
    struct err e;
    err_clear(&e);
    int rc = export_url_parse(text, &u, &e);
    if (rc)
        fail_msg("%s: %s", text, e.msg);
    return u;
}

/* Parses `text`, expecting ERR_INVALID with `why` in the message and no
 * `secret` anywhere in it. */
static void parse_bad(const char *text, const char *why, const char *secret)
{
    struct export_url u;
    struct err e;
    err_clear(&e);
    assert_int_equal(export_url_parse(text, &u, &e), ERR_INVALID);
    assert_int_equal(e.code, ERR_INVALID);
    if (!strstr(e.msg, why))
        fail_msg("'%s' gave '%s', wanted '%s' in it", text, e.msg, why);
    if (secret)
        assert_null(strstr(e.msg, secret));
    assert_null(strchr(e.msg, '\n'));
    /* left cleared: nothing to free, nothing dangling */
    assert_null(u.text);
    assert_null(u.key);
}

static void test_postgres_full(void **state)
{
    (void)state; /* no fixture */
    struct export_url u = parse_ok("postgres://sj:s3cr%40t@db.internal:6432/analytics?sslmode=require");
    assert_int_equal(u.kind, EXPORT_URL_POSTGRES);
    assert_string_equal(u.user, "sj");
    assert_string_equal(u.password, "s3cr@t");
    assert_string_equal(u.host, "db.internal");
    assert_int_equal(u.port, 6432);
    assert_string_equal(u.database, "analytics");
    assert_string_equal(u.params, "sslmode=require");
    assert_string_equal(u.masked, "postgres://sj:***@db.internal:6432/analytics?sslmode=require");
    assert_string_equal(u.key, "postgres://sj@db.internal:6432/analytics?sslmode=require");
    /* the text for libpq keeps everything as typed */
    assert_string_equal(u.text, "postgres://sj:s3cr%40t@db.internal:6432/analytics?sslmode=require");
    export_url_clear(&u);
}

static void test_postgres_minimal_and_aliases(void **state)
{
    (void)state; /* no fixture */
    struct export_url u = parse_ok("postgresql://127.0.0.1/citest");
    assert_int_equal(u.kind, EXPORT_URL_POSTGRES);
    assert_null(u.user);
    assert_null(u.password);
    assert_int_equal(u.port, 0);
    assert_string_equal(u.key, "postgres://127.0.0.1/citest");
    assert_string_equal(u.masked, "postgresql://127.0.0.1/citest");
    export_url_clear(&u);

    /* the same server and database under both schemes: one key */
    struct export_url a = parse_ok("postgres://postgres@127.0.0.1:55432/citest");
    struct export_url b = parse_ok("POSTGRESQL://postgres:pw@127.0.0.1:55432/citest");
    assert_string_equal(a.key, b.key);
    export_url_clear(&a);
    export_url_clear(&b);

    /* libpq's socket form and host lists pass through */
    u = parse_ok("postgres:///citest");
    assert_string_equal(u.host, "");
    export_url_clear(&u);
    u = parse_ok("postgres://h1:5432,h2:5433/db");
    assert_string_equal(u.host, "h1:5432,h2:5433");
    assert_int_equal(u.port, 0);
    export_url_clear(&u);
}

static void test_ipv6_and_params_in_key(void **state)
{
    (void)state; /* no fixture */
    struct export_url u = parse_ok("postgres://u:p@[::1]:5433/db?options=-csearch_path%3Dx&password=zz");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 5433);
    /* a password parameter is masked in the key and the shown form too */
    assert_string_equal(u.key, "postgres://u@[::1]:5433/db?options=-csearch_path%3Dx&password=***");
    assert_null(strstr(u.masked, "zz"));
    assert_null(strstr(u.masked, ":p@"));
    export_url_clear(&u);

    struct export_url a = parse_ok("postgres://h/db?options=-csearch_path%3Da");
    struct export_url b = parse_ok("postgres://h/db?options=-csearch_path%3Db");
    assert_string_not_equal(a.key, b.key); /* another schema is another target */
    export_url_clear(&a);
    export_url_clear(&b);
}

static void test_clickhouse_defaults(void **state)
{
    (void)state; /* no fixture */
    struct export_url u = parse_ok("clickhouse+http://127.0.0.1:8123/agents");
    assert_int_equal(u.kind, EXPORT_URL_CLICKHOUSE);
    assert_false(u.tls);
    assert_int_equal(u.port, 8123);
    assert_string_equal(u.database, "agents");
    assert_string_equal(u.key, "clickhouse://127.0.0.1:8123/agents");
    export_url_clear(&u);

    u = parse_ok("clickhouse+https://ch.example");
    assert_true(u.tls);
    assert_int_equal(u.port, 8443);
    assert_string_equal(u.database, "default");
    export_url_clear(&u);

    u = parse_ok("clickhouse://default:pw@127.0.0.1/");
    assert_false(u.tls);
    assert_int_equal(u.port, 8123);
    assert_string_equal(u.database, "default");
    assert_string_equal(u.user, "default");
    assert_string_equal(u.password, "pw");
    assert_string_equal(u.masked, "clickhouse://default:***@127.0.0.1/");
    export_url_clear(&u);
}

static void test_jsonl_paths(void **state)
{
    (void)state; /* no fixture */
    struct export_url u = parse_ok("jsonl:/tmp/x.jsonl");
    assert_int_equal(u.kind, EXPORT_URL_JSONL);
    assert_string_equal(u.path, "/tmp/x.jsonl");
    assert_string_equal(u.key, "jsonl:/tmp/x.jsonl");
    export_url_clear(&u);

    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char want[4200];
    snprintf(want, sizeof want, "%s/rel/out.jsonl", cwd);
    u = parse_ok("jsonl:rel/out.jsonl");
    assert_string_equal(u.path, want);
    export_url_clear(&u);
}

static void test_webhooks(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct export_url u = parse_ok("https://hook:s3cret@example.com:8443/in/sj?tenant=a");
    assert_int_equal(u.kind, EXPORT_URL_WEBHOOK);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.host, "example.com");
    assert_int_equal(u.port, 8443);
    assert_string_equal(u.path, "/in/sj");
    assert_string_equal(u.params, "tenant=a");
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.masked, "https://hook:***@example.com:8443/in/sj?tenant=a");
    assert_string_equal(u.key, "webhook:https://hook:***@example.com:8443/in/sj?tenant=a");
    export_url_clear(&u);
    u = parse_ok("http://[::1]:9000");
    assert_int_equal(u.kind, EXPORT_URL_WEBHOOK);
    assert_int_equal(u.tls, 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.path, "/");
    export_url_clear(&u);
    /* ClickHouse keeps its own schemes: plain http is never ClickHouse. */
    u = parse_ok("clickhouse+http://127.0.0.1:8123/db");
    assert_int_equal(u.kind, EXPORT_URL_CLICKHOUSE);
    export_url_clear(&u);
    parse_bad("http://:pw@/x", "one host", "pw");
    parse_bad("http://h/a b", "blanks", NULL);
    parse_bad("https://u:s3cret@h:99999/", "port", "s3cret");
}

static void test_refusals(void **state)
{
    (void)state; /* no fixture */
    parse_bad("", "empty", NULL);
    parse_bad("mysql://u:hunter2@h/db", "expected postgres://", "hunter2");
    parse_bad("postgres://u:hunter2@h:0/db", "port", "hunter2");
    parse_bad("postgres://u:hunter2@h:65536/db", "port", "hunter2");
    parse_bad("postgres://u:hunter2@h:12x/db", "port", "hunter2");
    parse_bad("postgres://u:hunter2@h/db/extra", "one database", "hunter2");
    parse_bad("postgres://u:hunt%zzer2@h/db", "%-escape", "hunt");
    parse_bad("postgres://u:hunter2@[::1/db", "IPv6", "hunter2");
    parse_bad("postgres://u:hunter2@h/db#frag", "fragment", "hunter2");
    parse_bad("clickhouse+http://u:hunter2@/db", "needs a host", "hunter2");
    parse_bad("clickhouse+http://h/bad-name", "letters, digits", NULL);
    parse_bad("jsonl:", "file path", NULL);
}

static void test_mask_text(void **state)
{
    (void)state; /* no fixture */
    char out[256];
    export_url_mask("postgres://a:b@h/db", out, sizeof out);
    assert_string_equal(out, "postgres://a:***@h/db");
    /* a password with '@' and ':' in it: the last '@' ends the userinfo */
    export_url_mask("postgres://a:p@ss:w@h/db", out, sizeof out);
    assert_string_equal(out, "postgres://a:***@h/db");
    /* a bare '/' in the password: still hidden, and refused by the parser
     * without showing it */
    export_url_mask("postgres://a:pa/ss@h/db", out, sizeof out);
    assert_string_equal(out, "postgres://a:***@h/db");
    parse_bad("postgres://a:pa/ss@h/db", "bad target URL", "pa/ss");
    export_url_mask("postgres://a@h/db", out, sizeof out);
    assert_string_equal(out, "postgres://a@h/db");
    export_url_mask("host=h password=secret dbname=x", out, sizeof out);
    assert_string_equal(out, "host=h password=*** dbname=x");
    export_url_mask("http://h/?user=u&password=secret&x=1", out, sizeof out);
    assert_string_equal(out, "http://h/?user=u&password=***&x=1");
    /* truncation keeps the string terminated and never shows the secret */
    char small[12];
    export_url_mask("postgres://a:secret@h/db", small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_null(strstr(small, "secret"));
    export_url_mask(NULL, out, sizeof out);
    assert_string_equal(out, "");
}

static void test_scrub_messages(void **state)
{
    (void)state; /* no fixture */
    struct export_url u = parse_ok("postgres://u:t0ps3cret@h/db");
    char msg[256];
    snprintf(msg, sizeof msg, "auth failed for t0ps3cret at postgres://u:t0ps%%33cret@h/db");
    export_url_scrub(&u, msg, sizeof msg);
    assert_null(strstr(msg, "t0ps3cret"));
    assert_null(strstr(msg, "t0ps%33cret"));
    assert_non_null(strstr(msg, "auth failed for ***"));
    export_url_clear(&u);

    /* no password: only URL-shaped secrets are masked */
    u = parse_ok("postgres://u@h/db");
    snprintf(msg, sizeof msg, "plain message");
    export_url_scrub(&u, msg, sizeof msg);
    assert_string_equal(msg, "plain message");
    export_url_clear(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postgres_full),
        cmocka_unit_test(test_postgres_minimal_and_aliases),
        cmocka_unit_test(test_ipv6_and_params_in_key),
        cmocka_unit_test(test_clickhouse_defaults),
        cmocka_unit_test(test_jsonl_paths),
        cmocka_unit_test(test_webhooks),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_mask_text),
        cmocka_unit_test(test_scrub_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
