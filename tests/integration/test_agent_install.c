/* Agent installation through the real binary, with a stand-in npm on PATH
 * (a script laying out what `npm install --prefix` would), so no registry
 * is needed: POST /v1/agents/{agent}/install, GET /v1/agents reporting what
 * is there, the lazy install when a session is created, the errors for a
 * missing npm and a failing registry, and `sandbox-journal install-agent`
 * on the command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "server.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes <dir>/npm: fails like npm offline when `fail`, else installs a
 * fake package and counts its runs in <dir>/calls. */
static void make_npm(const char *dir, int fail)
{
    char *path = sj_fmt("%s/npm", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\n"
            "echo run >> '%s/calls'\n"
            "%s"
            "prefix=''; spec=''\n"
            "while [ $# -gt 0 ]; do\n"
            "  case \"$1\" in --prefix) prefix=$2; shift ;; -*|install) ;; *) spec=$1 ;; esac\n"
            "  shift\n"
            "done\n"
            "ver=${spec##*@}; pkg=${spec%%@$ver}\n"
            "bin=claude; [ \"$pkg\" = @openai/codex ] && bin=codex\n"
            "mkdir -p \"$prefix/node_modules/$pkg\" \"$prefix/node_modules/.bin\"\n"
            "printf '{\"name\":\"%%s\",\"version\":\"%%s\"}' \"$pkg\" \"$ver\" "
            "> \"$prefix/node_modules/$pkg/package.json\"\n"
            "printf '#!/bin/sh\\necho %%s\\n' \"$ver\" > \"$prefix/node_modules/$pkg/cli\"\n"
            "chmod +x \"$prefix/node_modules/$pkg/cli\"\n"
            "ln -s \"../$pkg/cli\" \"$prefix/node_modules/.bin/$bin\"\n",
            dir,
            fail ? "echo 'npm error code ENOTFOUND' >&2\n"
                   "echo 'npm error request to https://registry.npmjs.org failed' >&2\n"
                   "exit 1\n"
                 : "");
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0755), 0);
    free(path);
}

static int calls(const char *dir)
{
    char *path = sj_fmt("%s/calls", dir);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Starts a server whose PATH is `bin_dir` plus the system's (so the agents
 * on this machine's PATH, if any, stay out of it). */
static void start_with_path(struct sj_server *s, const char *bin_dir)
{
    char *path = sj_fmt("%s:/usr/bin:/bin", bin_dir);
    char *saved = strdup(getenv("PATH"));
    assert_int_equal(setenv("PATH", path, 1), 0);
    char dir[512];
    sj_fresh_dir(dir, sizeof dir, "agent-install");
    int rc = sj_server_start(s, dir, NULL);
    assert_int_equal(setenv("PATH", saved, 1), 0);
    free(saved);
    free(path);
    assert_int_equal(rc, 0);
}

static const json_t *agent_info(const json_t *list, const char *id)
{
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(list, "agents"), i, a)
        if (strcmp(sj_str(a, "id"), id) == 0)
            return a;
    fail_msg("no agent %s", id);
    return NULL;
}

static void test_install_endpoint(void **state)
{
    (void)state;
    char bin[512];
    sj_fresh_dir(bin, sizeof bin, "npm-ok");
    make_npm(bin, 0);
    struct sj_server s;
    start_with_path(&s, bin);

    json_t *list = sj_call(&s, "GET", "/v1/agents", NULL, 200);
    assert_false(json_is_true(json_object_get(agent_info(list, "claude"), "installed")));
    assert_null(json_object_get(agent_info(list, "claude"), "path"));
    json_decref(list);

    json_decref(sj_call(&s, "POST", "/v1/agents/claude/install", "{}", 204));
    assert_int_equal(calls(bin), 1);
    list = sj_call(&s, "GET", "/v1/agents", NULL, 200);
    const json_t *c = agent_info(list, "claude");
    assert_true(json_is_true(json_object_get(c, "installed")));
    assert_string_equal(sj_str(c, "version"), "2.1.197");
    char *want = sj_fmt("%s/agents/claude/node_modules/.bin/claude", s.data_dir);
    assert_string_equal(sj_str(c, "path"), want);
    free(want);
    json_decref(list);

    /* The pinned version is there: nothing to do, unless asked. */
    json_decref(sj_call(&s, "POST", "/v1/agents/claude/install", NULL, 204));
    assert_int_equal(calls(bin), 1);
    json_decref(sj_call(&s, "POST", "/v1/agents/claude/install", "{\"reinstall\":true}", 204));
    assert_int_equal(calls(bin), 2);
    /* The mock is built in.  This fake npm puts no `amp` binary in place:
     * the install is refused, never reported done. */
    json_decref(sj_call(&s, "POST", "/v1/agents/mock/install", NULL, 204));
    struct httpc_response resp;
    sj_request(&s, "POST", "/v1/agents/amp/install", NULL, 1, &resp);
    json_decref(sj_assert_problem(&resp, 500, "install_failed"));
    httpc_response_free(&resp);
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
}

static void test_lazy_install_on_create(void **state)
{
    (void)state;
    char bin[512];
    sj_fresh_dir(bin, sizeof bin, "npm-lazy");
    make_npm(bin, 0);
    struct sj_server s;
    start_with_path(&s, bin);
    json_t *r = sj_create_session(&s, "c1", "{\"agent\":\"claude\"}");
    assert_int_equal(strlen(sj_str(r, "nativeSessionId")), 36);
    json_decref(r);
    assert_int_equal(calls(bin), 1);
    json_t *list = sj_call(&s, "GET", "/v1/agents", NULL, 200);
    assert_true(json_is_true(json_object_get(agent_info(list, "claude"), "installed")));
    json_decref(list);
    /* A second session finds it installed. */
    json_decref(sj_create_session(&s, "c2", "{\"agent\":\"claude\"}"));
    assert_int_equal(calls(bin), 1);
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
}

static void test_install_errors(void **state)
{
    (void)state;
    char nothing[512], bad[512];
    sj_fresh_dir(nothing, sizeof nothing, "npm-none");
    sj_fresh_dir(bad, sizeof bad, "npm-bad");
    make_npm(bad, 1);

    /* No npm at all: /usr/bin is on PATH, so only where npm is not there. */
    if (access("/usr/bin/npm", X_OK) != 0 && access("/bin/npm", X_OK) != 0) {
        struct sj_server s;
        start_with_path(&s, nothing);
        struct httpc_response resp;
        sj_request(&s, "POST", "/v1/agents/codex/install", NULL, 1, &resp);
        json_t *p = sj_assert_problem(&resp, 500, "install_failed");
        assert_non_null(strstr(sj_str(p, "detail"), "npm not found"));
        json_decref(p);
        httpc_response_free(&resp);
        assert_int_equal(sj_server_stop(&s), 0);
        sj_server_release(&s);
    }

    /* npm that cannot reach its registry: the error says so, at install and
     * at the lazy install of a new session, and no session is created. */
    struct sj_server s;
    start_with_path(&s, bad);
    struct httpc_response resp;
    sj_request(&s, "POST", "/v1/agents/claude/install", NULL, 1, &resp);
    json_t *p = sj_assert_problem(&resp, 500, "install_failed");
    assert_non_null(strstr(sj_str(p, "detail"), "ENOTFOUND"));
    json_decref(p);
    httpc_response_free(&resp);
    sj_request(&s, "POST", "/v1/sessions/x1", "{\"agent\":\"claude\"}", 1, &resp);
    json_decref(sj_assert_problem(&resp, 500, "install_failed"));
    httpc_response_free(&resp);
    sj_request(&s, "GET", "/v1/sessions/x1/events", NULL, 1, &resp);
    assert_int_equal(resp.status, 404);
    httpc_response_free(&resp);
    json_t *list = sj_call(&s, "GET", "/v1/agents", NULL, 200);
    assert_false(json_is_true(json_object_get(agent_info(list, "claude"), "installed")));
    json_decref(list);
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
}

static void test_cli_install_agent(void **state)
{
    (void)state;
    char bin[512], agents[512];
    sj_fresh_dir(bin, sizeof bin, "npm-cli");
    sj_fresh_dir(agents, sizeof agents, "agents-cli");
    make_npm(bin, 0);
    char *npm = sj_fmt("%s/npm", bin);
    struct sj_cli_result r;
    const char *args[] = { "install-agent", "codex", "--agents-dir", agents, "--npm", npm, NULL };
    sj_cli_run(args, NULL, &r);
    if (r.exit_code != 0)
        sj_cli_dump("install-agent", &r);
    assert_int_equal(r.exit_code, 0);
    char *want = sj_fmt("codex 0.169.0 installed: %s/codex/node_modules/.bin/codex\n", agents);
    assert_string_equal(r.out, want);
    assert_non_null(strstr(r.err, "installing codex (@openai/codex@0.169.0)"));
    free(want);
    sj_cli_result_free(&r);

    /* Unknown agent, and the built-in one. */
    const char *bad[] = { "install-agent", "nope", "--agents-dir", agents, NULL };
    sj_cli_run(bad, NULL, &r);
    assert_int_equal(r.exit_code, 2);
    sj_cli_result_free(&r);
    const char *mock[] = { "install-agent", "mock", NULL };
    sj_cli_run(mock, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    sj_cli_result_free(&r);

    /* npm failing: exit 1 and one line saying why. */
    char failing[512];
    sj_fresh_dir(failing, sizeof failing, "npm-cli-bad");
    make_npm(failing, 1);
    char *bad_npm = sj_fmt("%s/npm", failing);
    const char *args2[] = { "install-agent", "claude", "--agents-dir", agents, "--npm", bad_npm,
                            NULL };
    sj_cli_run(args2, NULL, &r);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "install failed"));
    assert_non_null(strstr(r.err, "ENOTFOUND"));
    sj_cli_result_free(&r);
    free(bad_npm);
    free(npm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_endpoint),
        cmocka_unit_test(test_lazy_install_on_create),
        cmocka_unit_test(test_install_errors),
        cmocka_unit_test(test_cli_install_agent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
