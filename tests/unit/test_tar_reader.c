/* The pure parts of src/workspace/tar_reader.c: headers of every kind,
 * archives split at every byte, malformed input, and the name and link
 * checks that keep an upload inside its directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tarw.h"
#include "workspace/tar_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the reader reported, as one line per member: "type name -> link size:data". */
struct seen {
    struct buf log;
    int open; /* a member began and has not ended */
    int stop_at; /* member number whose callback fails, or -1 */
    int members;
};

static int seen_member(void *arg, const struct tar_member *m, struct err *err)
{
    struct seen *s = arg;
    assert_false(s->open);
    s->open = 1;
    if (s->members++ == s->stop_at)
        return err_set(err, ERR_INVALID, "stop");
    static const char types[] = "fdshx";
    assert_int_equal(buf_printf(&s->log, "%c %s", types[m->type], m->name), 0);
    if (m->link[0])
        assert_int_equal(buf_printf(&s->log, " -> %s", m->link), 0);
    assert_int_equal(buf_printf(&s->log, " %llu:", (unsigned long long)m->size), 0);
    return 0;
}

static int seen_data(void *arg, const char *p, size_t n, struct err *err)
{
    (void)err; /* never fails */
    struct seen *s = arg;
    assert_true(s->open);
    assert_int_equal(buf_append(&s->log, p, n), 0);
    return 0;
}

static int seen_end(void *arg, struct err *err)
{
    (void)err; /* never fails */
    struct seen *s = arg;
    assert_true(s->open);
    s->open = 0;
    assert_int_equal(buf_puts(&s->log, "\n"), 0);
    return 0;
}

static const struct tar_reader_ops seen_ops = { seen_member, seen_data, seen_end };

/* Reads `b` in pieces of `step` bytes (0: whole).  Returns the first error
 * code; *log (new) gets the members seen. */
static int read_archive(const struct buf *b, size_t step, int stop_at, char **log,
                        struct err *err)
{
    struct seen s = { .stop_at = stop_at };
    buf_init(&s.log);
    tar_reader_t *r;
    assert_int_equal(tar_reader_new(&seen_ops, &s, &r, err), 0);
    int rc = 0;
    for (size_t off = 0; !rc && off < b->len;) {
        size_t n = step && step < b->len - off ? step : b->len - off;
        rc = tar_reader_feed(r, b->data + off, n, err);
        off += n;
    }
    if (!rc)
        rc = tar_reader_finish(r, err);
    tar_reader_free(r);
    assert_int_equal(buf_puts(&s.log, ""), 0);
    *log = buf_steal(&s.log);
    return rc;
}

static void test_members_every_split(void **state)
{
    (void)state;
    char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    memcpy(long_name, "deep/", 5);
    struct buf b;
    buf_init(&b);
    tarw_add(&b, "./", '5', NULL, NULL, 0);
    tarw_add(&b, "./a.txt", '0', NULL, "hello", 5);
    tarw_add(&b, "dir/", '5', NULL, NULL, 0);
    tarw_add(&b, "dir/link", '2', "../a.txt", NULL, 0);
    tarw_add(&b, "hard", '1', "a.txt", NULL, 0);
    tarw_add(&b, long_name, '0', NULL, "L", 1);
    tarw_pax(&b, "path", "pax/name with spaces=and equals", "linkpath", "t", NULL);
    tarw_add(&b, "ignored", '2', "ignored", NULL, 0);
    tarw_add(&b, "empty", '0', NULL, "", 0);
    tarw_add(&b, "fifo", '6', NULL, NULL, 0);
    tarw_end(&b);
    char expect[1024];
    snprintf(expect, sizeof expect, "d ./ 0:\nf ./a.txt 5:hello\nd dir/ 0:\ns dir/link -> ../a.txt 0:\n"
                               "h hard -> a.txt 0:\nf %s 1:L\ns pax/name with spaces=and equals "
                               "-> t 0:\nf empty 0:\nx fifo 0:\n",
                               long_name);
    struct err err;
    for (size_t step = 0; step <= 1100; step = step ? step + 37 : 1) {
        char *log;
        assert_int_equal(read_archive(&b, step, -1, &log, &err), 0);
        assert_string_equal(log, expect);
        free(log);
    }
    buf_free(&b);
}

static void test_pax_size_and_base256(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    /* A pax size overrides the header's. */
    tarw_pax(&b, "size", "3", NULL);
    tarw_add(&b, "f", '0', NULL, "abc", 3);
    tarw_end(&b);
    /* Rewrite the file header's size field as GNU base-256 (3). */
    unsigned char *h = (unsigned char *)b.data + 1024;
    memset(h + 124, 0, 12);
    h[124] = 0x80;
    h[135] = 3;
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    char *log;
    struct err err;
    assert_int_equal(read_archive(&b, 0, -1, &log, &err), 0);
    assert_string_equal(log, "f f 3:abc\n");
    free(log);
    buf_free(&b);
}

static void test_malformed(void **state)
{
    (void)state;
    struct err err;
    char *log;
    struct buf b;
    buf_init(&b);
    tarw_add(&b, "f", '0', NULL, "abc", 3);
    tarw_end(&b);
    /* A checksum off by one. */
    b.data[148 + 5]++;
    assert_int_equal(read_archive(&b, 0, -1, &log, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "checksum"));
    free(log);
    b.data[148 + 5]--;
    /* Truncated: data cut, then the end blocks missing. */
    struct buf cut = b;
    cut.len = 512 + 2;
    assert_int_equal(read_archive(&cut, 0, -1, &log, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "truncated"));
    free(log);
    cut.len = 1024;
    assert_int_equal(read_archive(&cut, 0, -1, &log, &err), ERR_INVALID);
    free(log);
    /* Not an archive at all. */
    struct buf junk = { .data = (char *)"GET / HTTP/1.1\r\n\r\n", .len = 18 };
    assert_int_equal(read_archive(&junk, 0, -1, &log, &err), ERR_INVALID);
    free(log);
    struct buf none = { 0 };
    assert_int_equal(read_archive(&none, 0, -1, &log, &err), ERR_INVALID);
    free(log);
    /* A callback's refusal stops the reader and is returned. */
    assert_int_equal(read_archive(&b, 7, 0, &log, &err), ERR_INVALID);
    assert_string_equal(err.msg, "stop");
    free(log);
    buf_free(&b);

    /* Malformed pax records. */
    static const char *const bad_pax[] = { "5 a=b\n", "x path=a\n", "99 path=a\n",
                                           "9 pathab\n", "11 size=1x\n" };
    for (size_t i = 0; i < sizeof bad_pax / sizeof bad_pax[0]; i++) {
        /* A file member turned into an 'x' header carrying the bad record. */
        struct buf tmp;
        buf_init(&tmp);
        tarw_add(&tmp, "PaxHeader", '0', NULL, bad_pax[i], strlen(bad_pax[i]));
        tmp.data[156] = 'x';
        memset(tmp.data + 148, ' ', 8);
        unsigned sum = 0;
        for (int k = 0; k < 512; k++)
            sum += (unsigned char)tmp.data[k];
        snprintf(tmp.data + 148, 8, "%06o", sum);
        tarw_add(&tmp, "f", '0', NULL, "", 0);
        tarw_end(&tmp);
        assert_int_equal(read_archive(&tmp, 0, -1, &log, &err), ERR_INVALID);
        free(log);
        buf_free(&tmp);
    }
}

static void test_name_clean(void **state)
{
    (void)state;
    static const char *const ok[][2] = {
        { "./", "" }, { ".", "" }, { "a", "a" }, { "./a/b/", "a/b" }, { "a//b/./c", "a/b/c" },
        { "a/.../b", "a/.../b" }, { "..a/b..", "..a/b.." },
    };
    static const char *const bad[] = { "/etc/passwd", "..", "../x", "a/../../x", "a/..",
                                       "//x", "a/b/../c" };
    char out[64];
    struct err err;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(tar_reader_clean_name(ok[i][0], out, sizeof out, &err), 0);
        assert_string_equal(out, ok[i][1]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tar_reader_clean_name(bad[i], out, sizeof out, &err), ERR_INVALID);
    char longname[100];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(tar_reader_clean_name(longname, out, sizeof out, &err), ERR_INVALID);
}

static void test_link_target(void **state)
{
    (void)state;
    struct err err;
    assert_int_equal(tar_reader_check_link("l", "f", &err), 0);
    assert_int_equal(tar_reader_check_link("a/b/l", "../../f", &err), 0);
    assert_int_equal(tar_reader_check_link("a/l", "../a/./f", &err), 0);
    assert_int_equal(tar_reader_check_link("a/l", ".", &err), 0);
    assert_int_equal(tar_reader_check_link("l", "/etc/passwd", &err), ERR_INVALID);
    assert_int_equal(tar_reader_check_link("l", "..", &err), ERR_INVALID);
    assert_int_equal(tar_reader_check_link("a/b/l", "../../../f", &err), ERR_INVALID);
    assert_int_equal(tar_reader_check_link("l", "", &err), ERR_INVALID);
    /* ".." after a name: that name may be a symlink itself ("d/s1" -> ".."
     * makes "d/s1/../.." the parent of the directory). */
    assert_int_equal(tar_reader_check_link("d/s2", "s1/../..", &err), ERR_INVALID);
    assert_int_equal(tar_reader_check_link("a/l", "x/../f", &err), ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members_every_split),
        cmocka_unit_test(test_pax_size_and_base256),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_name_clean),
        cmocka_unit_test(test_link_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
