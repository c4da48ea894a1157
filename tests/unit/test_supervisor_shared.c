/* Unit tests for the shared agent servers the supervisor runs for Codex
 * (adapters/codex.c) and OpenCode (adapters/opencode.c): each lives in its
 * adapter's instance, so two servers in one process (the tests' case)
 * never meet, and shutting one instance down leaves the other usable.  The
 * agent binary is missing here, so a start fails for that reason; what
 * matters is which instance says what. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "adapters/registry.h"
#include "agents/adapter.h"
#include "agents/supervisor.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct shared_case {
    const struct adapter *adapter;
    const char *binary;        /* missing */
    int start_rc;              /* what a start on the live instance fails with */
    const char *status;        /* its serverStatus.status afterwards */
};

static void shutdown_on_loop(uv_loop_t *loop, void *arg)
{
    (void)loop; /* the instance knows its loop */
    void **args = arg;
    const struct adapter *a = args[0];
    a->shutdown_shared(args[1]);
}

static void shutdown_instance(supervisor_t *sup, const struct adapter *a, void *instance)
{
    void *args[2] = { (void *)a, instance };
    struct err err;
    assert_int_equal(supervisor_call(sup, shutdown_on_loop, args, &err), 0);
}

/* new (json_decref): serverStatus[key] of `instance`, or NULL. */
static json_t *status_of(const struct adapter *a, void *instance, const char *key)
{
    json_t *s = a->server_status_json(instance);
    json_t *v = json_incref(json_object_get(s, key));
    json_decref(s);
    return v;
}

static void run_case(const struct shared_case *c)
{
    const char *base = getenv("SJ_TEST_TMPDIR");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/shared-%s-XXXXXX", base && *base ? base : "/tmp",
             c->adapter->name);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(unsetenv("OPENAI_BASE_URL"), 0); /* no model listing to fetch */
    supervisor_t *sup = NULL;
    struct err err;
    assert_int_equal(supervisor_start(&sup, &err), 0);
    const struct adapter_settings settings = { .supervisor = sup, .data_dir = dir,
                                               .agents_dir = dir };
    void *first = NULL, *second = NULL;
    assert_int_equal(c->adapter->instance_new(&settings, &first, &err), 0);
    assert_int_equal(c->adapter->instance_new(&settings, &second, &err), 0);
    assert_ptr_not_equal(first, second);
    shutdown_instance(sup, c->adapter, first);

    struct adapter_ctx ctx = { .supervisor = sup, .data_dir = dir, .agents_dir = dir,
                               .working_dir = dir, .binary_path = c->binary,
                               .session_id = "s1", .agent_mode = "build",
                               .permission_mode = "default", .instance = first };
    char native[128] = "";
    /* The shut-down instance refuses... */
    assert_int_equal(c->adapter->start_session(&ctx, native, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "shutting down"));
    /* ...the other goes on to start its own server. */
    ctx.instance = second;
    assert_int_equal(c->adapter->start_session(&ctx, native, &err), c->start_rc);
    assert_non_null(strstr(err.msg, c->binary));
    assert_null(strstr(err.msg, "shutting down"));

    json_t *v = status_of(c->adapter, second, "status");
    assert_string_equal(json_string_value(v), c->status);
    json_decref(v);
    /* What happened to one server never shows in the other's status. */
    v = status_of(c->adapter, first, "status");
    assert_string_equal(json_string_value(v), "stopped");
    json_decref(v);
    assert_null(status_of(c->adapter, first, "lastError"));

    shutdown_instance(sup, c->adapter, second);
    supervisor_stop(sup);
    c->adapter->instance_free(first);
    c->adapter->instance_free(second);
}

static void test_codex_instances(void **state)
{
    (void)state; /* cmocka fixture unused */
    /* A first start that fails leaves the status alone: nothing ran. */
    const struct shared_case c = { &adapter_codex, "/nonexistent/codex", ERR_NOT_INSTALLED,
                                   "stopped" };
    run_case(&c);
}

static void test_opencode_instances(void **state)
{
    (void)state; /* cmocka fixture unused */
    /* OpenCode's worker reports a failed start in the status, and fails
     * the create that waited for it. */
    const struct shared_case c = { &adapter_opencode, "/nonexistent/opencode",
                                   ERR_AGENT_EXITED, "error" };
    run_case(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codex_instances),
        cmocka_unit_test(test_opencode_instances),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
