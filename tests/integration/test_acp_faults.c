/* Faults of an ACP agent, through the HTTP API: sj-fault-agent in its ACP
 * personality (tests/fault_agent/, path in SJ_FAULT_AGENT), registered with
 * `--acp-agent faulty=<fault agent> acp <control dir>`.  Covered: a crash
 * mid-turn (SIGSEGV: error + session.ended, the next message resumes with
 * session/load); an agent that hangs and ignores SIGTERM, terminated (killed
 * after the grace); a request the client never answers (a permission left
 * pending), terminated; a permission pending when the agent exits (withdrawn);
 * garbage lines (agent.unparsed, the turn still completes); a failed
 * handshake (the turn fails with an error). */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "e2e.h"
#include "server.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 20000

struct rig {
    struct sj_server srv;
    char ctl[512];
    char def[PATH_MAX + 600];
    int started;
};

static int rig_setup(void **state)
{
    struct rig *r = calloc(1, sizeof *r);
    assert_non_null(r);
    *state = r;
    return 0;
}

static int rig_teardown(void **state)
{
    struct rig *r = *state;
    int rc = 0;
    if (r->started) {
        rc = sj_server_stop(&r->srv);
        sj_server_release(&r->srv);
    }
    free(r);
    return rc;
}

/* Starts the server with the fault agent, whose start modes are `modes`. */
static void start(struct rig *r, const char *modes)
{
    const char *agent = getenv("SJ_FAULT_AGENT");
    assert_non_null(agent);
    char work[512], agents[512], data[512];
    sj_fresh_dir(r->ctl, sizeof r->ctl, "acp-fault-ctl");
    sj_fresh_dir(work, sizeof work, "acp-fault-work");
    sj_fresh_dir(agents, sizeof agents, "acp-fault-agents");
    sj_fresh_dir(data, sizeof data, "acp-fault-data");
    char *path = sj_fmt("%s/modes", r->ctl);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(modes, f) >= 0);
    assert_int_equal(fclose(f), 0);
    free(path);
    snprintf(r->def, sizeof r->def, "faulty=%s acp %s", agent, r->ctl);
    const char *args[] = { "--agents-dir", agents, "--acp-agent", r->def, NULL };
    char here[PATH_MAX];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(work), 0);
    int rc = sj_server_start(&r->srv, data, args);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    r->started = 1;
}

static long long send(struct rig *r, const char *sid, const char *text)
{
    long long before = e2e_last_sequence(&r->srv, sid);
    sj_send_message(&r->srv, sid, text);
    return before;
}

static void wait_gone(struct rig *r)
{
    int gone = 0;
    for (int waited = 0; !gone && waited < 10000; waited += 20) {
        gone = e2e_child_pid(r->srv.pid, "sj-fault-agent") == 0;
        if (!gone)
            sj_sleep_ms(20);
    }
    assert_true(gone);
}

static void terminate(struct rig *r, const char *sid, long long before)
{
    char *path = sj_fmt("/v1/sessions/%s/terminate", sid);
    json_decref(sj_call(&r->srv, "POST", path, NULL, 204));
    free(path);
    json_t *ended = e2e_wait_event(&r->srv, sid, before, "session.ended", NULL, WAIT_MS);
    assert_string_equal(sj_str(ended, "data.reason"), "terminated");
    json_decref(ended);
    wait_gone(r);
}

static void test_crash_then_resume(void **state)
{
    struct rig *r = *state;
    start(r, "ok\n");
    json_decref(sj_create_session(&r->srv, "c", "{\"agent\":\"faulty\"}"));
    long long before = send(r, "c", "fault:segv");
    json_t *ended = e2e_wait_event(&r->srv, "c", before, "session.ended", NULL, WAIT_MS);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ended, "data"),
                                                        "exit_code")),
                     128 + 11);
    json_decref(ended);
    json_decref(e2e_wait_event(&r->srv, "c", before, "error", NULL, WAIT_MS));
    before = send(r, "c", "and now?");
    json_t *done = e2e_wait_assistant_done(&r->srv, "c", before, WAIT_MS);
    assert_true(e2e_json_contains(done, "turn done"));
    assert_string_equal(sj_str(done, "data.item.status"), "completed");
    json_decref(done);
}

static void test_hang_terminated(void **state)
{
    struct rig *r = *state;
    start(r, "ok\n");
    json_decref(sj_create_session(&r->srv, "h", "{\"agent\":\"faulty\"}"));
    long long before = send(r, "h", "fault:hang");
    json_decref(e2e_wait_event(&r->srv, "h", before, "item.delta", NULL, WAIT_MS));
    terminate(r, "h", before); /* SIGKILL after the grace: it ignores SIGTERM */
}

static void test_request_never_answered(void **state)
{
    struct rig *r = *state;
    start(r, "ok\n");
    json_decref(sj_create_session(&r->srv, "w", "{\"agent\":\"faulty\"}"));
    long long before = send(r, "w", "fault:permwait");
    json_decref(e2e_wait_event(&r->srv, "w", before, "permission.requested", NULL, WAIT_MS));
    terminate(r, "w", before);
}

static void test_permission_pending_at_exit(void **state)
{
    struct rig *r = *state;
    start(r, "ok\n");
    json_decref(sj_create_session(&r->srv, "p", "{\"agent\":\"faulty\"}"));
    long long before = send(r, "p", "fault:permexit");
    json_t *resolved = e2e_wait_event(&r->srv, "p", before, "permission.resolved", NULL,
                                      WAIT_MS);
    assert_string_equal(sj_str(resolved, "data.status"), "denied");
    json_decref(resolved);
    json_t *ended = e2e_wait_event(&r->srv, "p", before, "session.ended", NULL, WAIT_MS);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ended, "data"),
                                                        "exit_code")),
                     3);
    json_decref(ended);
}

static void test_garbage(void **state)
{
    struct rig *r = *state;
    start(r, "ok\n");
    json_decref(sj_create_session(&r->srv, "g", "{\"agent\":\"faulty\"}"));
    long long before = send(r, "g", "fault:garbage");
    json_t *done = e2e_wait_assistant_done(&r->srv, "g", before, WAIT_MS);
    assert_string_equal(sj_str(done, "data.item.status"), "completed");
    json_decref(done);
    json_t *events = e2e_events(&r->srv, "g");
    int unparsed = 0;
    size_t i;
    const json_t *ev;
    json_array_foreach(events, i, ev)
        unparsed += strcmp(sj_str(ev, "type"), "agent.unparsed") == 0;
    assert_true(unparsed >= 3);
    json_decref(events);
}

static void test_failed_handshake(void **state)
{
    struct rig *r = *state;
    start(r, "hserror\n");
    json_decref(sj_create_session(&r->srv, "x", "{\"agent\":\"faulty\"}"));
    long long before = send(r, "x", "hello");
    json_t *err = e2e_wait_event(&r->srv, "x", before, "error", NULL, WAIT_MS);
    assert_true(e2e_json_contains(err, "authentication required"));
    json_decref(err);
    json_t *done = e2e_wait_assistant_done(&r->srv, "x", before, WAIT_MS);
    assert_string_equal(sj_str(done, "data.item.status"), "failed");
    json_decref(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_then_resume, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_hang_terminated, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_request_never_answered, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_permission_pending_at_exit, rig_setup,
                                        rig_teardown),
        cmocka_unit_test_setup_teardown(test_garbage, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_failed_handshake, rig_setup, rig_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
