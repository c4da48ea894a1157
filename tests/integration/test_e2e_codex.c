/* End to end with the real Codex CLI (`codex app-server`, the pinned
 * version, installed by `sandbox-journal install-agent` into SJ_AGENTS_DIR)
 * against the scripted fake model on loopback, through the HTTP API:
 * streamed text, a command approval allowed and declined (the fake's request
 * log shows what reached the model), a server restart that resumes the
 * thread, and the shared app-server crashing under a turn (error event,
 * restart with back-off, serverStatus), and a provider of the user's own
 * config.toml reached without OPENAI_BASE_URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "e2e.h"
#include "server.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS 90000

static void start(struct e2e_rig *t, const char *script)
{
    e2e_rig_start(t, "codex", script, NULL);
}

static void create(struct e2e_rig *t, const char *id)
{
    json_t *r = sj_create_session(&t->srv, id, "{\"agent\":\"codex\",\"model\":\"fake-model\"}");
    assert_non_null(sj_str(r, "nativeSessionId")); /* the Codex thread */
    json_decref(r);
}

static int is_turn_completed(const json_t *ev)
{
    const json_t *item = json_object_get(json_object_get(ev, "data"), "item");
    const json_t *part = json_array_get(json_object_get(item, "content"), 0);
    const char *label = json_string_value(json_object_get(part, "label"));
    return label && strcmp(label, "turn.completed") == 0;
}

static json_t *wait_turn_done(struct e2e_rig *t, const char *id, long long after)
{
    return e2e_wait_event(&t->srv, id, after, "item.completed", is_turn_completed, WAIT_MS);
}

/* The body of the n-th (0-based) request Codex made to the fake. */
static json_t *model_body(struct e2e_rig *t, size_t n)
{
    json_t *reqs = e2e_fake_requests(&t->fake, "/v1/responses");
    if (json_array_size(reqs) <= n)
        fail_msg("the fake saw %zu requests, not %zu", json_array_size(reqs), n + 1);
    json_t *body = json_incref(json_object_get(json_array_get(reqs, n), "body"));
    json_decref(reqs);
    return body;
}

static void test_text_turn(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"count\":\"all\",\"steps\":[{\"text\":\"Hello from the Responses fake.\","
             "\"chunks\":4}]}");
    json_t *st = e2e_server_status(&t->srv, "codex");
    assert_string_equal(sj_str(st, "status"), "stopped");
    json_decref(st);
    create(t, "x1");
    st = e2e_server_status(&t->srv, "codex");
    assert_string_equal(sj_str(st, "status"), "running");
    json_decref(st);
    sj_send_message(&t->srv, "x1", "say hello");
    json_t *done = wait_turn_done(t, "x1", 0);
    json_t *events = e2e_events(&t->srv, "x1");
    size_t i, deltas = 0;
    const json_t *ev;
    const char *final = NULL;
    json_array_foreach(events, i, ev) {
        const char *type = sj_str(ev, "type");
        if (strcmp(type, "item.delta") == 0 && strstr(sj_str(ev, "data.native_item_id"), "msg_"))
            deltas++;
        const json_t *item = json_object_get(json_object_get(ev, "data"), "item");
        if (strcmp(type, "item.completed") == 0 &&
            strcmp(json_string_value(json_object_get(item, "kind")), "message") == 0 &&
            strcmp(json_string_value(json_object_get(item, "role")), "assistant") == 0)
            final = json_string_value(
                json_object_get(json_array_get(json_object_get(item, "content"), 0), "text"));
        if (strcmp(type, "item.completed") == 0 &&
            strcmp(json_string_value(json_object_get(item, "role")), "user") == 0)
            assert_true(e2e_json_contains(item, "say hello"));
    }
    assert_true(deltas >= 2);
    assert_non_null(final);
    assert_string_equal(final, "Hello from the Responses fake.");
    json_decref(events);
    json_decref(done);
}

static void approval_flow(struct e2e_rig *t, const char *reply)
{
    start(t, "{\"count\":\"all\",\"steps\":["
             "{\"tool\":{\"name\":\"exec_command\",\"input\":{\"cmd\":\"echo hi > out.txt\","
             "\"login\":false}}},{\"text\":\"done\"}]}");
    create(t, "a1");
    sj_send_message(&t->srv, "a1", "create out.txt");
    json_t *asked = e2e_wait_event(&t->srv, "a1", 0, "permission.requested", NULL, WAIT_MS);
    assert_string_equal(sj_str(asked, "data.action"), "commandExecution");
    assert_non_null(strstr(sj_str(asked, "data.metadata.command"), "echo hi > out.txt"));
    char *path = sj_fmt("/v1/sessions/a1/permissions/%s/reply", sj_str(asked, "data.permission_id"));
    char *body = sj_fmt("{\"reply\":\"%s\"}", reply);
    json_decref(sj_call(&t->srv, "POST", path, body, 204));
    json_t *done = wait_turn_done(t, "a1", sj_int(asked, "sequence"));
    char *out = sj_fmt("%s/out.txt", t->work);
    struct stat st;
    json_t *req = model_body(t, 1);
    assert_true(e2e_json_contains(req, "function_call_output"));
    if (strcmp(reply, "reject") == 0) {
        assert_int_not_equal(stat(out, &st), 0);
        assert_true(e2e_json_contains(req, "rejected"));
    } else {
        /* It ran in the session's working directory. */
        assert_int_equal(stat(out, &st), 0);
        assert_int_equal(st.st_size, 3);
    }
    json_decref(req);
    free(out);
    free(path);
    free(body);
    json_decref(asked);
    json_decref(done);
}

static void test_approval_once(void **state)
{
    approval_flow(*state, "once");
}

static void test_approval_reject(void **state)
{
    approval_flow(*state, "reject");
}

static void test_restart_resumes_thread(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"count\":\"all\",\"steps\":[{\"text\":\"ONE\"},{\"text\":\"TWO\"}]}");
    create(t, "r1");
    sj_send_message(&t->srv, "r1", "remember the word banana");
    json_t *d1 = wait_turn_done(t, "r1", 0);
    long long last = e2e_last_sequence(&t->srv, "r1");
    char here[4096];
    assert_non_null(getcwd(here, sizeof here));
    assert_int_equal(chdir(t->work), 0);
    int rc = sj_server_restart(&t->srv);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(e2e_last_sequence(&t->srv, "r1"), last);
    sj_send_message(&t->srv, "r1", "what was the word?");
    json_t *d2 = wait_turn_done(t, "r1", last);
    json_t *req = model_body(t, 1);
    assert_true(e2e_json_contains(req, "remember the word banana"));
    assert_true(e2e_json_contains(req, "what was the word?"));
    json_decref(req);
    json_decref(d1);
    json_decref(d2);
}

static int is_server_exit(const json_t *ev)
{
    const char *code = sj_str(ev, "data.code");
    return code && strcmp(code, "server_exit") == 0;
}

static void test_app_server_crash_restarts(void **state)
{
    struct e2e_rig *t = *state;
    start(t, "{\"count\":\"all\",\"steps\":[{\"text\":\"a slow answer that the test "
             "interrupts by killing the app-server\",\"chunks\":40,\"chunk_delay_ms\":250},"
             "{\"text\":\"back\"}]}");
    create(t, "k1");
    sj_send_message(&t->srv, "k1", "talk slowly");
    json_t *delta = e2e_wait_event(&t->srv, "k1", 0, "item.delta", NULL, WAIT_MS);
    pid_t codex = e2e_descendant_pid(t->srv.pid, "codex");
    assert_true(codex > 0);
    assert_int_equal(kill(codex, SIGKILL), 0);

    json_t *error = e2e_wait_event(&t->srv, "k1", 0, "error", is_server_exit, WAIT_MS);
    assert_non_null(strstr(sj_str(error, "data.message"), "codex app-server"));
    /* Restarted with a back-off, and counted. */
    json_t *st = NULL;
    for (int i = 0; i < 200; i++) {
        json_decref(st);
        st = e2e_server_status(&t->srv, "codex");
        if (strcmp(sj_str(st, "status"), "running") == 0 && sj_int(st, "restartCount") >= 1)
            break;
        sj_sleep_ms(50);
    }
    assert_string_equal(sj_str(st, "status"), "running");
    assert_int_equal(sj_int(st, "restartCount"), 1);
    assert_non_null(sj_str(st, "lastError"));
    json_decref(st);

    /* The session goes on in the new app-server (thread resumed). */
    long long last = e2e_last_sequence(&t->srv, "k1");
    sj_send_message(&t->srv, "k1", "are you back?");
    json_t *done = wait_turn_done(t, "k1", last);
    json_decref(delta);
    json_decref(error);
    json_decref(done);
}

/* Writes a user's config.toml naming provider "gateway" at `base_url`
 * (key in $SJ_GATEWAY_KEY) into a fresh dir and points CODEX_HOME at it. */
static void user_config_toml(const char *base_url)
{
    char user_home[512];
    sj_fresh_dir(user_home, sizeof user_home, "e2e-codex-user");
    char *path = sj_fmt("%s/config.toml", user_home);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "model_provider = \"gateway\" # the user's own\n"
            "approval_policy = \"never\"\n"
            "notify = [\n  \"not-carried\",\n]\n"
            "\n"
            "[model_providers.gateway]\n"
            "name = \"\"\"My\ngateway\"\"\"\n"
            "base_url = \"%s\"\n"
            "env_key = \"SJ_GATEWAY_KEY\"\n"
            "wire_api = \"responses\"\n"
            "\n"
            "[history]\n"
            "persistence = \"none\"\n",
            base_url);
    assert_int_equal(fclose(f), 0);
    free(path);
    assert_int_equal(setenv("SJ_GATEWAY_KEY", "sk-gateway-e2e", 1), 0);
    assert_int_equal(setenv("CODEX_HOME", user_home, 1), 0);
}

static void user_config_done(void)
{
    assert_int_equal(unsetenv("CODEX_HOME"), 0);
    assert_int_equal(unsetenv("SJ_GATEWAY_KEY"), 0);
}

/* One turn; returns the Authorization header of the model request. */
static char *one_turn(struct e2e_rig *t, const char *text)
{
    create(t, "u1");
    sj_send_message(&t->srv, "u1", "hello gateway");
    json_decref(wait_turn_done(t, "u1", 0));
    json_t *reqs = e2e_fake_requests(&t->fake, "/v1/responses");
    assert_true(json_array_size(reqs) >= 1);
    const json_t *headers = json_object_get(json_array_get(reqs, 0), "headers");
    char *auth = strdup(json_string_value(json_object_get(headers, "authorization")));
    json_decref(reqs);
    json_t *events = e2e_events(&t->srv, "u1");
    assert_true(e2e_json_contains(events, text));
    json_decref(events);
    return auth;
}

/* A Codex user whose ~/.codex/config.toml (here $CODEX_HOME's) names a
 * provider of their own, and no OPENAI_BASE_URL: the turn reaches the model
 * through that provider, with the key from the variable its env_key names. */
static void test_user_provider(void **state)
{
    struct e2e_rig *t = *state;
    if (!e2e_ready("codex"))
        skip();
    sj_fresh_dir(t->work, sizeof t->work, "e2e-codex-work");
    sj_fresh_dir(t->fake_dir, sizeof t->fake_dir, "e2e-codex-fake");
    e2e_fake_start(&t->fake, t->fake_dir,
                   "{\"count\":\"all\",\"steps\":[{\"text\":\"Via your gateway.\"}]}");
    char *url = sj_fmt("%s/v1", t->fake.url);
    user_config_toml(url);
    free(url);
    assert_int_equal(unsetenv("OPENAI_BASE_URL"), 0);
    assert_int_equal(unsetenv("OPENAI_API_KEY"), 0);
    e2e_server_start(&t->srv, t->work, NULL);
    t->started = 1;
    char *auth = one_turn(t, "Via your gateway.");
    assert_string_equal(auth, "Bearer sk-gateway-e2e");
    free(auth);
    user_config_done();
}

/* OPENAI_BASE_URL still wins over the user's provider (here a dead port). */
static void test_env_overrides_user_provider(void **state)
{
    struct e2e_rig *t = *state;
    user_config_toml("http://127.0.0.1:9/v1");
    start(t, "{\"count\":\"all\",\"steps\":[{\"text\":\"Via the environment.\"}]}");
    char *auth = one_turn(t, "Via the environment.");
    assert_string_equal(auth, "Bearer sk-test-e2e");
    free(auth);
    user_config_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        E2E_TEST(test_text_turn),
        E2E_TEST(test_approval_once),
        E2E_TEST(test_approval_reject),
        E2E_TEST(test_restart_resumes_thread),
        E2E_TEST(test_app_server_crash_restarts),
        E2E_TEST(test_user_provider),
        E2E_TEST(test_env_overrides_user_provider),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
