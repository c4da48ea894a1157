/* Unit tests for src/supervisor_proc.c: real children under a real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agents/supervisor.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

struct seen {
    char lines[64][128];
    int cut[64];
    int n_lines;
    int exits;
    int64_t exit_status;
    int term_signal;
    char head[4096];
    char tail[4096];
    size_t stderr_lines;
    int truncated;
    int exit_after_lines; /* every line arrived before on_exit */
    /* Stop tests: stop `proc` when the child prints "ready". */
    uv_loop_t *loop;
    supervisor_proc_t *stop_on_ready;
    unsigned kill_ms;
    uint64_t stopped_at; /* uv_now when it was stopped */
    uint64_t exited_at;
    int stopping_at_exit;
};

static void on_line(void *arg, const char *line, size_t len, int cut)
{
    struct seen *s = arg;
    assert_int_equal(s->exits, 0);
    if (s->n_lines < 64) {
        snprintf(s->lines[s->n_lines], sizeof s->lines[0], "%.*s", (int)len, line);
        s->cut[s->n_lines] = cut;
    }
    s->n_lines++;
    if (s->stop_on_ready && len == 5 && memcmp(line, "ready", 5) == 0) {
        s->stopped_at = uv_now(s->loop);
        supervisor_proc_stop(s->stop_on_ready, s->kill_ms);
        assert_true(supervisor_proc_stopping(s->stop_on_ready));
        supervisor_proc_stop(s->stop_on_ready, 1); /* again: changes nothing */
    }
}

static void on_exit_cb(void *arg, const struct supervisor_exit *e)
{
    struct seen *s = arg;
    s->exits++;
    s->exit_status = e->exit_status;
    s->term_signal = e->term_signal;
    snprintf(s->head, sizeof s->head, "%s", e->stderr_head ? e->stderr_head : "");
    snprintf(s->tail, sizeof s->tail, "%s", e->stderr_tail ? e->stderr_tail : "");
    s->stderr_lines = e->stderr_lines;
    s->truncated = e->stderr_truncated;
    if (s->loop)
        s->exited_at = uv_now(s->loop);
    if (s->stop_on_ready)
        s->stopping_at_exit = supervisor_proc_stopping(s->stop_on_ready);
}

static supervisor_proc_t *start_sh(uv_loop_t *loop, const char *script, struct seen *s,
                                   size_t max_line)
{
    const char *args[] = { "/bin/sh", "-c", script, NULL };
    struct supervisor_proc_options o = { .file = "/bin/sh", .args = args, .env = environ,
                                         .max_line_bytes = max_line };
    struct supervisor_proc_callbacks cb = { .on_line = on_line, .on_exit = on_exit_cb, .arg = s };
    supervisor_proc_t *p = NULL;
    struct err err;
    assert_int_equal(supervisor_proc_spawn(loop, &o, &cb, &p, &err), 0);
    assert_non_null(p);
    return p;
}

static void run_loop(uv_loop_t *loop)
{
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
}

static void test_lines_and_exit_code(void **state)
{
    (void)state; /* cmocka fixture unused */
    uv_loop_t loop = { 0 }; /* data NULL: no supervisor runs this loop */
    uv_loop_init(&loop);
    struct seen s = { 0 };
    start_sh(&loop, "printf 'one\\ntwo\\n\\nhalf'; exit 3", &s, 0);
    run_loop(&loop);
    assert_int_equal(s.exits, 1);
    assert_int_equal(s.exit_status, 3);
    assert_int_equal(s.term_signal, 0);
    assert_int_equal(s.n_lines, 4);
    assert_string_equal(s.lines[0], "one");
    assert_string_equal(s.lines[1], "two");
    assert_string_equal(s.lines[2], "");
    assert_string_equal(s.lines[3], "half"); /* a last line without "\n" */
    assert_int_equal(s.stderr_lines, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_stdin_roundtrip(void **state)
{
    (void)state; /* cmocka fixture unused */
    uv_loop_t loop = { 0 }; /* data NULL: no supervisor runs this loop */
    uv_loop_init(&loop);
    struct seen s = { 0 };
    supervisor_proc_t *p = start_sh(&loop, "cat", &s, 0);
    struct err err;
    assert_int_equal(supervisor_proc_write(p, "{\"type\":\"user\"}\n", 16, &err), 0);
    assert_int_equal(supervisor_proc_write(p, "second\n", 7, &err), 0);
    supervisor_proc_close_stdin(p);
    assert_int_equal(supervisor_proc_write(p, "late\n", 5, &err), ERR_INVALID);
    run_loop(&loop);
    assert_int_equal(s.n_lines, 2);
    assert_string_equal(s.lines[0], "{\"type\":\"user\"}");
    assert_string_equal(s.lines[1], "second");
    assert_int_equal(s.exit_status, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_kill(void **state)
{
    (void)state; /* cmocka fixture unused */
    uv_loop_t loop = { 0 }; /* data NULL: no supervisor runs this loop */
    uv_loop_init(&loop);
    struct seen s = { 0 };
    supervisor_proc_t *p = start_sh(&loop, "echo ready; exec sleep 30", &s, 0);
    assert_true(supervisor_proc_pid(p) > 0);
    assert_int_equal(supervisor_proc_kill(p, SIGTERM), 0);
    run_loop(&loop);
    assert_int_equal(s.exits, 1);
    assert_int_equal(s.term_signal, SIGTERM);
    assert_int_equal(s.exit_status, -1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_stderr_record(void **state)
{
    (void)state; /* cmocka fixture unused */
    uv_loop_t loop = { 0 }; /* data NULL: no supervisor runs this loop */
    uv_loop_init(&loop);
    struct seen s = { 0 };
    start_sh(&loop, "i=1; while [ $i -le 50 ]; do echo \"err $i\" >&2; i=$((i+1)); done; exit 1",
             &s, 0);
    run_loop(&loop);
    assert_int_equal(s.stderr_lines, 50);
    assert_int_equal(s.truncated, 1);
    assert_true(strncmp(s.head, "err 1\nerr 2\n", 12) == 0);
    assert_non_null(strstr(s.head, "err 20\n"));
    assert_null(strstr(s.head, "err 21\n"));
    assert_true(strncmp(s.tail, "err 31\n", 7) == 0);
    assert_non_null(strstr(s.tail, "err 50\n"));
    assert_null(strstr(s.tail, "err 30\n"));

    struct seen t = { 0 };
    start_sh(&loop, "echo only >&2; printf partial >&2", &t, 0);
    run_loop(&loop);
    assert_int_equal(t.stderr_lines, 2);
    assert_int_equal(t.truncated, 0);
    assert_string_equal(t.head, "only\npartial\n");
    assert_string_equal(t.tail, "");
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_long_line_is_cut(void **state)
{
    (void)state; /* cmocka fixture unused */
    uv_loop_t loop = { 0 }; /* data NULL: no supervisor runs this loop */
    uv_loop_init(&loop);
    struct seen s = { 0 };
    start_sh(&loop, "printf '0123456789abcdef\\nok\\n'", &s, 8);
    run_loop(&loop);
    assert_int_equal(s.n_lines, 2);
    assert_string_equal(s.lines[0], "01234567");
    assert_int_equal(s.cut[0], 1);
    assert_string_equal(s.lines[1], "ok");
    assert_int_equal(s.cut[1], 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_missing_binary(void **state)
{
    (void)state; /* cmocka fixture unused */
    uv_loop_t loop = { 0 }; /* data NULL: no supervisor runs this loop */
    uv_loop_init(&loop);
    struct seen s = { 0 };
    const char *args[] = { "no-such-agent-binary", NULL };
    struct supervisor_proc_options o = { .file = "no-such-agent-binary", .args = args,
                                         .env = environ };
    struct supervisor_proc_callbacks cb = { .on_line = on_line, .on_exit = on_exit_cb, .arg = &s };
    supervisor_proc_t *p = NULL;
    struct err err;
    assert_int_equal(supervisor_proc_spawn(&loop, &o, &cb, &p, &err), ERR_NOT_INSTALLED);
    assert_null(p);
    run_loop(&loop);
    assert_int_equal(s.exits, 0); /* callbacks never run for a failed start */
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Starts `script`, which prints "ready" once it is set up, and stops it
 * then with kill_ms of grace after the SIGTERM. */
static void run_stopped(const char *script, unsigned kill_ms, struct seen *s)
{
    uv_loop_t loop = { 0 }; /* data NULL: no supervisor runs this loop */
    uv_loop_init(&loop);
    s->loop = &loop;
    s->kill_ms = kill_ms;
    s->stop_on_ready = start_sh(&loop, script, s, 0);
    run_loop(&loop);
    assert_int_equal(s->exits, 1);
    assert_true(s->stopping_at_exit);
    s->loop = NULL;
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A child that ends on EOF is never signalled: it exits on its own, at once. */
static void test_stop_eof_no_signal(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct seen s = { 0 };
    /* TERM would print "term" and exit 143: neither may happen. */
    run_stopped("trap 'echo term; exit 143' TERM; echo ready; cat; echo eof", 10000, &s);
    assert_int_equal(s.term_signal, 0);
    assert_int_equal(s.exit_status, 0);
    assert_int_equal(s.n_lines, 2);
    assert_string_equal(s.lines[1], "eof");
    assert_true(s.exited_at - s.stopped_at < 10000);
}

/* One that ignores EOF gets SIGTERM after the EOF grace. */
static void test_stop_sigterm_after_eof_grace(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct seen s = { 0 };
    run_stopped("echo ready; exec sleep 30", 10000, &s);
    assert_int_equal(s.term_signal, SIGTERM);
    assert_true(s.exited_at - s.stopped_at >= SUPERVISOR_EOF_GRACE_MS - 1);
    assert_true(s.exited_at - s.stopped_at < 10000); /* not the SIGKILL */
}

/* One that ignores SIGTERM too is SIGKILLed kill_ms after it (and heard the
 * SIGTERM first). */
static void test_stop_sigkill_after_grace(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct seen s = { 0 };
    run_stopped("trap 'echo term' TERM; echo ready; while :; do sleep 0.05; done", 1000, &s);
    assert_int_equal(s.term_signal, SIGKILL);
    assert_int_equal(s.n_lines, 2);
    assert_string_equal(s.lines[1], "term");
    assert_true(s.exited_at - s.stopped_at >= SUPERVISOR_EOF_GRACE_MS + 1000 - 1);
}

/* Raw mode: what on_output saw of each descriptor, and the exit. */
struct raw {
    char out[8192];
    size_t out_len;
    char err[256];
    size_t err_len;
    int exits;
    int64_t exit_status;
    supervisor_proc_t *p;
    int pause_once; /* pause at the first output, resume from a timer */
    uv_timer_t resume;
    int paused_reads; /* output that arrived while paused */
    int paused;
};

static void raw_resume(uv_timer_t *t)
{
    struct raw *r = t->data;
    r->paused = 0;
    supervisor_proc_resume_output(r->p);
    supervisor_proc_resume_output(r->p); /* twice: harmless */
}

static void raw_output(void *arg, int fd, const char *data, size_t len)
{
    struct raw *r = arg;
    assert_int_equal(r->exits, 0);
    if (r->paused)
        r->paused_reads++;
    char *buf = fd == 1 ? r->out : r->err;
    size_t *n = fd == 1 ? &r->out_len : &r->err_len;
    size_t cap = fd == 1 ? sizeof r->out : sizeof r->err;
    assert_true(*n + len <= cap);
    memcpy(buf + *n, data, len);
    *n += len;
    if (r->pause_once) {
        r->pause_once = 0;
        r->paused = 1;
        supervisor_proc_pause_output(r->p);
        supervisor_proc_pause_output(r->p);
        assert_int_equal(uv_timer_start(&r->resume, raw_resume, 100, 0), 0);
    }
}

static void raw_exit(void *arg, const struct supervisor_exit *e)
{
    struct raw *r = arg;
    r->exits++;
    r->exit_status = e->exit_status;
    assert_null(e->stderr_head);
    if (!uv_is_closing((uv_handle_t *)&r->resume))
        uv_close((uv_handle_t *)&r->resume, NULL);
}

static supervisor_proc_t *start_raw(uv_loop_t *loop, const char *script, int tty,
                                    struct raw *r)
{
    const char *args[] = { "/bin/sh", "-c", script, NULL };
    struct supervisor_proc_options o = { .file = "/bin/sh", .args = args, .env = environ,
                                         .tty = tty, .tty_rows = 30, .tty_cols = 90 };
    struct supervisor_proc_callbacks cb = { .on_output = raw_output, .on_exit = raw_exit,
                                            .arg = r };
    struct err err;
    assert_int_equal(supervisor_proc_spawn(loop, &o, &cb, &r->p, &err), 0);
    return r->p;
}

static void test_raw_output(void **state)
{
    (void)state; /* cmocka fixture unused */
    uv_loop_t loop = { 0 };
    uv_loop_init(&loop);
    struct raw r = { .pause_once = 1 };
    assert_int_equal(uv_timer_init(&loop, &r.resume), 0);
    r.resume.data = &r;
    /* bytes, not lines: no newline at the end, a NUL inside */
    start_raw(&loop, "printf 'a\\000b'; printf 'E' >&2; sleep 0.2; printf 'c'; exit 4", 0, &r);
    run_loop(&loop);
    assert_int_equal(r.exits, 1);
    assert_int_equal(r.exit_status, 4);
    assert_int_equal(r.out_len, 4);
    assert_memory_equal(r.out, "a\0bc", 4);
    assert_int_equal(r.err_len, 1);
    assert_int_equal(r.paused_reads, 0); /* nothing read while paused */
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_tty_child(void **state)
{
    (void)state; /* cmocka fixture unused */
    uv_loop_t loop = { 0 };
    uv_loop_init(&loop);
    struct raw r = { 0 };
    assert_int_equal(uv_timer_init(&loop, &r.resume), 0);
    uv_close((uv_handle_t *)&r.resume, NULL);
    supervisor_proc_t *p =
        start_raw(&loop, "tty; stty size; read x; stty size; echo err >&2", 1, &r);
    struct err err;
    assert_int_equal(supervisor_proc_resize(p, 40, 100, &err), 0);
    assert_int_equal(supervisor_proc_write(p, "go\n", 3, &err), 0);
    run_loop(&loop);
    assert_int_equal(r.exits, 1);
    assert_int_equal(r.exit_status, 0);
    r.out[r.out_len] = '\0';
    assert_non_null(strstr(r.out, "/dev/pts/"));
    assert_non_null(strstr(r.out, "40 100"));
    assert_non_null(strstr(r.out, "err")); /* stderr is the terminal too */
    assert_int_equal(r.err_len, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_resize_needs_a_tty(void **state)
{
    (void)state; /* cmocka fixture unused */
    uv_loop_t loop = { 0 };
    uv_loop_init(&loop);
    struct raw r = { 0 };
    assert_int_equal(uv_timer_init(&loop, &r.resume), 0);
    uv_close((uv_handle_t *)&r.resume, NULL);
    supervisor_proc_t *p = start_raw(&loop, "exit 0", 0, &r);
    struct err err;
    assert_int_equal(supervisor_proc_resize(p, 10, 10, &err), ERR_INVALID);
    run_loop(&loop);
    assert_int_equal(r.exits, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_and_exit_code),
        cmocka_unit_test(test_stdin_roundtrip),
        cmocka_unit_test(test_kill),
        cmocka_unit_test(test_stderr_record),
        cmocka_unit_test(test_long_line_is_cut),
        cmocka_unit_test(test_missing_binary),
        cmocka_unit_test(test_stop_eof_no_signal),
        cmocka_unit_test(test_stop_sigterm_after_eof_grace),
        cmocka_unit_test(test_stop_sigkill_after_grace),
        cmocka_unit_test(test_raw_output),
        cmocka_unit_test(test_tty_child),
        cmocka_unit_test(test_resize_needs_a_tty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
