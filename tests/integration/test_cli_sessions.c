/* Integration tests of `sandbox-journal sessions list|show|tail`, which
 * read the journal file directly: on a journal a mock session produced,
 * next to the running server, after a restart and with no server at all;
 * following a live session; and refusing to create a journal that is not
 * there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "httpc.h"
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define WAIT_MS 10000

static void run_sessions(struct sj_server *s, struct sj_cli_result *r, const char *verb,
                         const char *id, const char *flag)
{
    const char *args[8];
    size_t n = 0;
    args[n++] = "sessions";
    args[n++] = verb;
    if (id)
        args[n++] = id;
    args[n++] = "--data-dir";
    args[n++] = s->data_dir;
    if (flag)
        args[n++] = flag;
    args[n] = NULL;
    sj_cli_run(args, NULL, r);
    if (r->exit_code != 0 || r->err_len != 0)
        sj_cli_dump(verb, r);
    assert_int_equal(r->exit_code, 0);
    assert_int_equal(r->err_len, 0);
}

static void post(struct sj_server *s, const char *path, const char *body)
{
    json_decref(sj_call(s, "POST", path, body, 204));
}

/* A session touching every kind of transcript entry; 37 events. */
static void make_session(struct sj_server *s, const char *id)
{
    char path[128];
    json_decref(sj_create_session(s, id, NULL));
    sj_send_message(s, id, "echo hello");
    json_decref(sj_wait_events_exact(s, id, 7, WAIT_MS));
    sj_send_message(s, id, "tool");
    json_decref(sj_wait_events_exact(s, id, 14, WAIT_MS));
    sj_send_message(s, id, "permission");
    json_decref(sj_wait_events_exact(s, id, 19, WAIT_MS));
    snprintf(path, sizeof path, "/v1/sessions/%s/permissions/mock_3_permission/reply", id);
    post(s, path, "{\"reply\":\"once\"}");
    sj_send_message(s, id, "question");
    json_decref(sj_wait_events_exact(s, id, 25, WAIT_MS));
    snprintf(path, sizeof path, "/v1/sessions/%s/questions/mock_4_question/reply", id);
    post(s, path, "{\"answers\":[[\"Red\"]]}");
    snprintf(path, sizeof path, "/v1/sessions/%s/questions/mock_4_question_reject/reject", id);
    post(s, path, NULL);
    sj_send_message(s, id, "error");
    json_decref(sj_wait_events_exact(s, id, 32, WAIT_MS));
    sj_send_message(s, id, "unparsed");
    json_decref(sj_wait_events_exact(s, id, 36, WAIT_MS));
    snprintf(path, sizeof path, "/v1/sessions/%s/terminate", id);
    post(s, path, NULL);
    json_decref(sj_wait_events_quiet(s, id, 37, WAIT_MS));
}

/* The transcript lines that must be there, each at the start of a line
 * after its "[hh:mm:ss] " stamp. */
static void assert_transcript(const char *out)
{
    static const char *const want[] = {
        "session started (agent mock, mode build, permissions default)\n",
        "user: echo hello\n",
        "assistant: hello\n",
        "user: tool\n",
        "tool call: [mock_2_call] mock.search {\"query\":\"example\"}\n",
        "tool result (failed): [mock_2_call] mock search results\n"
        "    read mock_2/readme.md\n"
        "    write mock_2/output.txt\n"
        "    +mock output\n",
        "permission requested [mock_3_permission]: command_execution\n"
        "    codexRequestKind: commandExecution\n"
        "    command: echo mock\n",
        "permission requested [mock_3_permission_denied]: file_change\n",
        "permission approved [mock_3_permission]: command_execution\n",
        "question [mock_4_question]: Choose a color\n    options: Red / Blue\n",
        "question answered [mock_4_question]: Red\n",
        "question rejected [mock_4_question_reject]: Allow mock experiment?\n",
        "error: Mock error event. (mock_error)\n    details: {\"mock\":true}\n",
        "unparsed agent output at mock.stream: unsupported payload\n",
        "session ended: terminated by daemon\n",
    };
    assert_true(strncmp(out, "session tr\n", 11) == 0);
    assert_non_null(strstr(out, "    created "));
    assert_non_null(strstr(out, ", 37 events, terminated\n"));
    const char *from = out;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *hit = strstr(from, want[i]);
        if (!hit || hit - out < 11 || hit[-1] != ' ' || hit[-2] != ']')
            fail_msg("transcript lacks (in order) '%s':\n%s", want[i], out);
        from = hit + strlen(want[i]);
    }
}

/* `show --json` must print the stored events byte for byte: joined with
 * commas they are exactly the events array the API serves. */
static void assert_json_is_stored(struct sj_server *s, const char *id, const char *out)
{
    char *served = sj_get_events_text(s, id, "?limit=10000");
    char *joined = calloc(1, strlen(out) + 64);
    assert_non_null(joined);
    size_t len = (size_t)sprintf(joined, "{\"events\":[");
    for (const char *p = out; *p; p++)
        joined[len++] = *p == '\n' ? (p[1] ? ',' : ']') : *p;
    sprintf(joined + len, ",\"hasMore\":false}");
    assert_string_equal(joined, served);
    free(joined);
    free(served);
}

static void test_show(void **state)
{
    struct sj_server *s = *state;
    struct sj_cli_result human, json, again;
    make_session(s, "tr");

    /* Next to the running server. */
    run_sessions(s, &human, "show", "tr", NULL);
    assert_transcript(human.out);
    run_sessions(s, &json, "show", "tr", "--json");
    assert_int_equal(sj_cli_count_lines(json.out), 37);
    assert_json_is_stored(s, "tr", json.out);

    /* After a restart: the same bytes. */
    if (sj_server_restart(s) != 0)
        fail_msg("restart failed");
    run_sessions(s, &again, "show", "tr", NULL);
    assert_string_equal(again.out, human.out);
    sj_cli_result_free(&again);
    run_sessions(s, &again, "show", "tr", "--json");
    assert_string_equal(again.out, json.out);
    assert_json_is_stored(s, "tr", again.out);
    sj_cli_result_free(&again);

    /* With no server at all. */
    assert_int_equal(sj_server_stop(s), 0);
    run_sessions(s, &again, "show", "tr", NULL);
    assert_string_equal(again.out, human.out);
    sj_cli_result_free(&again);
    run_sessions(s, &again, "show", "tr", "--json");
    assert_string_equal(again.out, json.out);
    sj_cli_result_free(&again);

    sj_cli_result_free(&human);
    sj_cli_result_free(&json);
}

static void test_list(void **state)
{
    struct sj_server *s = *state;
    struct sj_cli_result r;
    json_decref(sj_create_session(s, "first", NULL));
    json_decref(sj_create_session(s, "second", "{\"agent\":\"mock\",\"agentMode\":\"plan\"}"));
    sj_send_message(s, "first", "echo hi");
    json_decref(sj_wait_events_exact(s, "first", 7, WAIT_MS));
    post(s, "/v1/sessions/first/terminate", NULL);

    run_sessions(s, &r, "list", NULL, NULL);
    assert_true(strncmp(r.out, "SESSION ", 8) == 0);
    assert_int_equal(sj_cli_count_lines(r.out), 3);
    const char *second = strstr(r.out, "\nsecond ");
    const char *first = strstr(r.out, "\nfirst ");
    assert_non_null(second);
    assert_non_null(first);
    assert_true(second < first); /* newest first */
    assert_non_null(strstr(second, " plan "));
    assert_non_null(strstr(first, "      8  terminated "));
    sj_cli_result_free(&r);

    run_sessions(s, &r, "list", NULL, "--quiet");
    assert_string_equal(r.out, "second\nfirst\n");
    sj_cli_result_free(&r);

    run_sessions(s, &r, "list", NULL, "--json");
    assert_int_equal(sj_cli_count_lines(r.out), 2);
    json_error_t jerr;
    json_t *row = json_loadb(r.out, (size_t)(strchr(r.out, '\n') - r.out), 0, &jerr);
    assert_non_null(row);
    assert_string_equal(sj_str(row, "sessionId"), "second");
    assert_string_equal(sj_str(row, "agentMode"), "plan");
    assert_string_equal(sj_str(row, "state"), "active");
    assert_int_equal(sj_int(row, "eventCount"), 1);
    json_decref(row);
    row = json_loads(strchr(r.out, '\n') + 1, JSON_DISABLE_EOF_CHECK, &jerr);
    assert_non_null(row);
    assert_string_equal(sj_str(row, "sessionId"), "first");
    assert_string_equal(sj_str(row, "state"), "terminated");
    assert_true(json_is_true(json_object_get(row, "ended")));
    assert_int_equal(sj_int(row, "eventCount"), 8);
    json_decref(row);
    sj_cli_result_free(&r);
}

/* A session id with a C1 control (U+009B, CSI: "ESC [" to many terminals)
 * must not reach the terminal from `list`, in any output form; `show`
 * sanitizes its header the same way. */
static void test_list_sanitizes(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_call(s, "POST", "/v1/sessions/evil%C2%9B2J", "{\"agent\":\"mock\"}", 200));
    struct sj_cli_result r;
    run_sessions(s, &r, "list", NULL, NULL);
    assert_null(strstr(r.out, "\xc2\x9b"));
    assert_non_null(strstr(r.out, "\nevil?2J "));
    sj_cli_result_free(&r);
    run_sessions(s, &r, "list", NULL, "--quiet");
    assert_string_equal(r.out, "evil?2J\n");
    sj_cli_result_free(&r);
    run_sessions(s, &r, "list", NULL, "--json");
    assert_null(strstr(r.out, "\xc2\x9b"));
    json_error_t jerr;
    json_t *row = json_loads(r.out, JSON_DISABLE_EOF_CHECK, &jerr);
    assert_non_null(row);
    assert_string_equal(sj_str(row, "sessionId"), "evil\xc2\x9b" "2J"); /* the id itself */
    json_decref(row);
    sj_cli_result_free(&r);
    run_sessions(s, &r, "show", "evil\xc2\x9b" "2J", NULL);
    assert_null(strstr(r.out, "\xc2\x9b"));
    assert_non_null(strstr(r.out, "evil?2J"));
    sj_cli_result_free(&r);
}

static struct sj_cli_proc *start_tail(struct sj_server *s, const char *id, const char *flag)
{
    const char *args[] = { "sessions", "tail", id, "--data-dir", s->data_dir, flag, NULL };
    return sj_cli_start(args, NULL);
}

static void test_tail(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "tl", NULL));

    struct sj_cli_proc *p = start_tail(s, "tl", NULL);
    assert_true(sj_cli_wait_for(p, "] session started (agent mock", WAIT_MS));
    sj_send_message(s, "tl", "echo tailed");
    assert_true(sj_cli_wait_for(p, "] assistant: tailed\n", WAIT_MS));
    sj_send_message(s, "tl", "permission");
    assert_true(sj_cli_wait_for(p, "] permission requested [mock_2_permission_denied]", WAIT_MS));
    sj_cli_signal(p, SIGINT);
    struct sj_cli_result r;
    sj_cli_finish(p, WAIT_MS, &r);
    if (r.exit_code != 0 || r.err_len)
        sj_cli_dump("tail", &r);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.err_len, 0);
    assert_non_null(strstr(r.out, "] user: echo tailed\n"));
    sj_cli_result_free(&r);

    /* --json follows with the stored events themselves. */
    p = start_tail(s, "tl", "--json");
    assert_true(sj_cli_wait_for(p, "\"sequence\":12,", WAIT_MS));
    sj_send_message(s, "tl", "echo more");
    assert_true(sj_cli_wait_for(p, "\"sequence\":18,", WAIT_MS));
    sj_cli_signal(p, SIGINT);
    sj_cli_finish(p, WAIT_MS, &r);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(sj_cli_count_lines(r.out), 18);
    assert_json_is_stored(s, "tl", r.out);
    sj_cli_result_free(&r);
}

static size_t dir_entries(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_missing_journal(void **state)
{
    (void)state; /* no server: the journal is missing on purpose */
    char dir[512], sub[600];
    sj_fresh_dir(dir, sizeof dir, "cli-missing");
    snprintf(sub, sizeof sub, "%s/not-here", dir);
    struct sj_cli_result r;

    const char *show[] = { "sessions", "show", "x", "--data-dir", dir, NULL };
    sj_cli_run(show, NULL, &r);
    assert_int_equal(r.exit_code, 1);
    assert_int_equal(r.out_len, 0);
    sj_cli_assert_one_line(r.err, "sandbox-journal: no journal at ");
    sj_cli_result_free(&r);

    const char *list[] = { "sessions", "list", "--data-dir", sub, NULL };
    sj_cli_run(list, NULL, &r);
    assert_int_equal(r.exit_code, 1);
    sj_cli_assert_one_line(r.err, "/not-here/journal.db");
    sj_cli_result_free(&r);

    /* The default location comes from XDG_DATA_HOME, then HOME. */
    char xdg[600], home[600];
    snprintf(xdg, sizeof xdg, "XDG_DATA_HOME=%s", dir);
    snprintf(home, sizeof home, "HOME=%s", dir);
    const char *tail[] = { "sessions", "tail", "x", NULL };
    const char *env_xdg[] = { xdg, NULL };
    sj_cli_run(tail, env_xdg, &r);
    assert_int_equal(r.exit_code, 1);
    char *want = sj_fmt("%s/sandbox-journal/journal.db", dir);
    sj_cli_assert_one_line(r.err, want);
    free(want);
    sj_cli_result_free(&r);
    const char *env_home[] = { "XDG_DATA_HOME", home, NULL };
    const char *list_default[] = { "sessions", "list", NULL };
    sj_cli_run(list_default, env_home, &r);
    assert_int_equal(r.exit_code, 1);
    want = sj_fmt("%s/.local/share/sandbox-journal/journal.db", dir);
    sj_cli_assert_one_line(r.err, want);
    free(want);
    sj_cli_result_free(&r);

    /* Nothing was created anywhere. */
    assert_int_equal(dir_entries(dir), 0);
}

static void test_missing_session(void **state)
{
    struct sj_server *s = *state;
    const char *args[] = { "sessions", "show", "nope", "--data-dir", s->data_dir, NULL };
    struct sj_cli_result r;
    sj_cli_run(args, NULL, &r);
    assert_int_equal(r.exit_code, 1);
    assert_int_equal(r.out_len, 0);
    sj_cli_assert_one_line(r.err, "sandbox-journal: no session 'nope' in ");
    sj_cli_result_free(&r);

    const char *usage[] = { "sessions", "show", "--data-dir", s->data_dir, NULL };
    sj_cli_run(usage, NULL, &r);
    assert_int_equal(r.exit_code, 2);
    sj_cli_assert_one_line(r.err, "needs a SESSION_ID");
    sj_cli_result_free(&r);
}

/* The tmpfs test_readonly_journal mounted, detached by its teardown. */
static char ro_mount_point[600];
static struct sj_server ro_server;

static int ro_teardown(void **state)
{
    (void)state; /* the test keeps its server in ro_server */
    if (ro_server.pid && sj_server_stop(&ro_server) != 0)
        fprintf(stderr, "cli: the server left running did not stop cleanly\n");
    sj_server_release(&ro_server);
    if (ro_mount_point[0] && umount2(ro_mount_point, MNT_DETACH) != 0)
        fprintf(stderr, "cli: umount %s: %s\n", ro_mount_point, strerror(errno));
    ro_mount_point[0] = '\0';
    return 0;
}

/* A journal the reader may not write beside (a read-only mount here; tests
 * run as root, whom file modes do not stop): SQLite cannot create the WAL
 * index, so list and show read the database file as immutable, and say so
 * in one line on stderr. */
static void test_readonly_journal(void **state)
{
    (void)state; /* the test makes its own server */
    char base[512], data[700];
    sj_fresh_dir(base, sizeof base, "cli-ro");
    snprintf(ro_mount_point, sizeof ro_mount_point, "%s/mnt", base);
    if (mkdir(ro_mount_point, 0755) != 0)
        fail_msg("mkdir %s: %s", ro_mount_point, strerror(errno));
    if (mount("tmpfs", ro_mount_point, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m") != 0) {
        fprintf(stderr, "cli: cannot mount a tmpfs (%s): this test needs root; skipped\n",
                strerror(errno));
        ro_mount_point[0] = '\0';
        skip();
    }
    snprintf(data, sizeof data, "%s/data", ro_mount_point);
    memset(&ro_server, 0, sizeof ro_server);
    if (sj_server_start(&ro_server, data, NULL) != 0)
        fail_msg("the server did not start on %s", data);
    json_decref(sj_create_session(&ro_server, "ro", NULL));
    sj_send_message(&ro_server, "ro", "echo hi");
    json_decref(sj_wait_events_exact(&ro_server, "ro", 7, WAIT_MS));
    assert_int_equal(sj_server_stop(&ro_server), 0);
    if (mount(NULL, ro_mount_point, NULL, MS_REMOUNT | MS_RDONLY, NULL) != 0)
        fail_msg("remount read-only: %s", strerror(errno));

    struct sj_cli_result r;
    const char *list[] = { "sessions", "list", "--data-dir", data, NULL };
    sj_cli_run(list, NULL, &r);
    if (r.exit_code != 0)
        sj_cli_dump("list", &r);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "\nro "));
    sj_cli_assert_one_line(r.err, "reading the database file alone (immutable)");
    sj_cli_result_free(&r);

    const char *show[] = { "sessions", "show", "ro", "--data-dir", data, NULL };
    sj_cli_run(show, NULL, &r);
    if (r.exit_code != 0)
        sj_cli_dump("show", &r);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "] user: echo hi\n"));
    assert_non_null(strstr(r.out, "] assistant: hi\n"));
    sj_cli_assert_one_line(r.err, "no write access beside");
    sj_cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_show, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_list, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_list_sanitizes, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_tail, sj_setup_default, sj_teardown_default),
        cmocka_unit_test(test_missing_journal),
        cmocka_unit_test_setup_teardown(test_missing_session, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_teardown(test_readonly_journal, ro_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
