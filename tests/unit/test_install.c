/* Unit tests for agent installation (src/install.c) and the agent list
 * built from it (src/agents.c), with a stand-in npm (a shell script that
 * lays out what `npm install --prefix` would) so no registry is needed:
 * install, no-op when the pinned version is there, reinstall, a failing npm
 * that leaves the previous install intact, npm missing, an agent found on
 * PATH, and the real npm against an unreachable registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/datadir.h"
#include "adapters/registry.h"
#include "base/err.h"
#include "agents/install.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[PATH_MAX];
static int counter;

static void fresh(char *out, size_t size, const char *tag)
{
    const char *tmp = getenv("SJ_TEST_TMPDIR");
    snprintf(out, size, "%s/install-%ld-%s-%d", tmp && *tmp ? tmp : "/tmp", (long)getpid(), tag,
             ++counter);
    assert_int_equal(datadir_mkdirs(out), 0);
}

static void write_file(const char *path, const char *text, int executable)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    if (executable)
        assert_int_equal(chmod(path, 0755), 0);
}

/* A stand-in npm: `npm install --prefix DIR ... PKG@VER` makes
 * DIR/node_modules/PKG/package.json and DIR/node_modules/.bin/<bin>, and
 * counts its runs in <dir>/calls.  With FAIL set in its file it fails the
 * way npm does offline. */
static void make_npm(const char *dir, char *npm, size_t size, int fail)
{
    snprintf(npm, size, "%s/npm", dir);
    char *script = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&script, &len);
    assert_non_null(m);
    fprintf(m,
            "#!/bin/sh\n"
            "echo run >> '%s/calls'\n"
            "%s"
            "prefix=''; specs=''\n"
            "while [ $# -gt 0 ]; do\n"
            "  case \"$1\" in --prefix) prefix=$2; shift ;; -*) ;; install) ;;\n"
            "    *) specs=\"$specs $1\" ;; esac\n"
            "  shift\n"
            "done\n"
            "for spec in $specs; do\n"
            "pkg=${spec%%@*}; ver=${spec##*@}\n"
            "case \"$spec\" in @*) pkg=@${spec#@}; pkg=${pkg%%@*} ;; esac\n"
            "bin=$(echo \"$pkg\" | sed 's|.*/||; s|-code$||; s|claude|claude|')\n"
            "[ \"$pkg\" = @openai/codex ] && bin=codex\n"
            "[ \"$pkg\" = @anthropic-ai/claude-code ] && bin=claude\n"
            "mkdir -p \"$prefix/node_modules/$pkg\" \"$prefix/node_modules/.bin\"\n"
            "printf '{\"name\":\"%%s\",\"version\":\"%%s\"}' \"$pkg\" \"$ver\" "
            "> \"$prefix/node_modules/$pkg/package.json\"\n"
            "printf '#!/bin/sh\\necho %%s\\n' \"$ver\" > \"$prefix/node_modules/$pkg/cli\"\n"
            "chmod +x \"$prefix/node_modules/$pkg/cli\"\n"
            "ln -s \"../$pkg/cli\" \"$prefix/node_modules/.bin/$bin\"\n"
            "done\n"
            "echo 'added 1 package in 0s'\n",
            dir,
            fail ? "echo 'npm error code ENOTFOUND' >&2\n"
                   "echo 'npm error network request to https://registry.npmjs.org failed' >&2\n"
                   "exit 1\n"
                 : "");
    fclose(m);
    write_file(npm, script, 1);
    free(script);
}

static int calls(const char *dir)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/calls", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static int setup(void **state)
{
    (void)state;
    fresh(base, sizeof base, "base");
    /* Nothing of the machine's own agents on PATH for these tests. */
    return setenv("PATH", "/usr/bin:/bin", 1);
}

static void test_manifest(void **state)
{
    (void)state;
    const struct install_package *p = install_package_for("claude");
    assert_non_null(p);
    assert_string_equal(p->package, "@anthropic-ai/claude-code");
    assert_string_equal(p->version, "2.1.197");
    assert_string_equal(p->binary, "claude");
    p = install_package_for("codex");
    assert_non_null(p);
    assert_string_equal(p->package, "@openai/codex");
    assert_string_equal(p->version, "0.169.0");
    assert_null(install_package_for("mock"));
    assert_null(install_package_for("nope"));
    struct install_info info;
    struct err err;
    assert_int_equal(install_status(base, "mock", &info, &err), ERR_INVALID);
    assert_int_equal(install_agent(base, "nope", &(struct install_options){ .progress_fd = -1 },
                                   &info, &err),
                     ERR_INVALID);
}

/* An agent made of two packages (pi-acp runs pi): both are installed, and
 * the install counts as pinned only while both are at their versions. */
static void test_install_two_packages(void **state)
{
    (void)state;
    char dir[PATH_MAX], npm[PATH_MAX], agents[PATH_MAX + 16];
    fresh(dir, sizeof dir, "two");
    make_npm(dir, npm, sizeof npm, 0);
    snprintf(agents, sizeof agents, "%s/agents", dir);
    const struct install_package *p = install_package_for("pi");
    assert_non_null(p);
    assert_string_equal(p->binary, "pi-acp");
    assert_string_equal(p->with, "@mariozechner/pi-coding-agent@0.73.1");
    struct install_info info;
    struct err err;
    struct install_options o = { .progress_fd = -1, .npm = npm };
    assert_int_equal(install_agent(agents, "pi", &o, &info, &err), 0);
    assert_true(info.pinned);
    assert_int_equal(calls(dir), 1);
    char pj[PATH_MAX * 2];
    snprintf(pj, sizeof pj, "%s/pi/node_modules/@mariozechner/pi-coding-agent/package.json",
             agents);
    assert_int_equal(access(pj, F_OK), 0);
    /* Pinned: nothing to do. */
    assert_int_equal(install_agent(agents, "pi", &o, &info, &err), 0);
    assert_int_equal(calls(dir), 1);
    /* The second package at another version: not pinned, installed again. */
    write_file(pj, "{\"name\":\"@mariozechner/pi-coding-agent\",\"version\":\"0.1.0\"}", 0);
    assert_int_equal(install_status(agents, "pi", &info, &err), 0);
    assert_true(info.installed);
    assert_false(info.pinned);
    assert_int_equal(install_agent(agents, "pi", &o, &info, &err), 0);
    assert_true(info.pinned);
    assert_int_equal(calls(dir), 2);
}

static void test_install_then_noop_then_reinstall(void **state)
{
    (void)state;
    char dir[PATH_MAX], agents[PATH_MAX + 16], npm[PATH_MAX + 16];
    fresh(dir, sizeof dir, "ok");
    snprintf(agents, sizeof agents, "%s/agents", dir);
    make_npm(dir, npm, sizeof npm, 0);
    struct install_info info;
    struct err err;
    assert_int_equal(install_status(agents, "claude", &info, &err), 0);
    assert_false(info.installed);

    struct install_options o = { .progress_fd = -1, .npm = npm };
    assert_int_equal(install_agent(agents, "claude", &o, &info, &err), 0);
    assert_true(info.installed);
    assert_true(info.pinned);
    assert_string_equal(info.version, "2.1.197");
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/claude/node_modules/.bin/claude", agents);
    assert_string_equal(info.path, want);
    assert_int_equal(calls(dir), 1);
    /* Nothing left behind but the install itself. */
    char staging[PATH_MAX + 64];
    snprintf(staging, sizeof staging, "%s/claude.installing", agents);
    struct stat st;
    assert_int_not_equal(stat(staging, &st), 0);

    /* Already there: npm does not run again. */
    assert_int_equal(install_agent(agents, "claude", &o, &info, &err), 0);
    assert_int_equal(calls(dir), 1);
    char found[PATH_MAX];
    assert_int_equal(install_find_binary(agents, "claude", found), 1);
    assert_string_equal(found, want);

    o.reinstall = 1;
    assert_int_equal(install_agent(agents, "claude", &o, &info, &err), 0);
    assert_int_equal(calls(dir), 2);
    assert_true(info.pinned);

    /* The agent list reports it. */
    void *no_instances[REGISTRY_MAX] = { 0 }; /* no shared server runs here */
    json_t *list = registry_list_json(agents, no_instances);
    assert_non_null(list);
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(list, "agents"), i, a) {
        const char *id = json_string_value(json_object_get(a, "id"));
        if (strcmp(id, "claude") == 0) {
            assert_true(json_is_true(json_object_get(a, "installed")));
            assert_string_equal(json_string_value(json_object_get(a, "version")), "2.1.197");
            assert_string_equal(json_string_value(json_object_get(a, "path")), want);
        } else if (strcmp(id, "mock") == 0) {
            assert_true(json_is_true(json_object_get(a, "installed")));
            assert_string_equal(json_string_value(json_object_get(a, "version")), "builtin");
        } else if (strcmp(id, "opencode") == 0 || strcmp(id, "amp") == 0) {
            assert_false(json_is_true(json_object_get(a, "installed")));
        }
    }
    json_decref(list);
}

static void test_failed_npm_keeps_previous_install(void **state)
{
    (void)state;
    char dir[PATH_MAX], agents[PATH_MAX + 16], npm[PATH_MAX + 16], bad[PATH_MAX];
    fresh(dir, sizeof dir, "fail");
    snprintf(agents, sizeof agents, "%s/agents", dir);
    make_npm(dir, npm, sizeof npm, 0);
    struct install_info info;
    struct err err;
    struct install_options o = { .progress_fd = -1, .npm = npm };
    assert_int_equal(install_agent(agents, "claude", &o, &info, &err), 0);

    fresh(bad, sizeof bad, "badnpm");
    char bad_npm[PATH_MAX + 16];
    make_npm(bad, bad_npm, sizeof bad_npm, 1);
    o.npm = bad_npm;
    o.reinstall = 1;
    assert_int_equal(install_agent(agents, "claude", &o, &info, &err), ERR_INSTALL_FAILED);
    assert_string_equal(err.subject, "claude");
    assert_non_null(strstr(err.msg, "ENOTFOUND"));
    assert_non_null(strstr(err.msg, "registry"));
    /* The good install is still there and still pinned. */
    assert_int_equal(install_status(agents, "claude", &info, &err), 0);
    assert_true(info.pinned);

    /* A fresh agent dir: nothing half-installed is left to look installed. */
    char other[PATH_MAX + 16];
    snprintf(other, sizeof other, "%s/other", dir);
    o.reinstall = 0;
    assert_int_equal(install_agent(other, "codex", &o, &info, &err), ERR_INSTALL_FAILED);
    assert_int_equal(install_status(other, "codex", &info, &err), 0);
    assert_false(info.installed);
}

static void job_ended(void *arg)
{
    assert_int_equal(write(*(int *)arg, "x", 1), 1);
}

/* registry_install_start() and a wait for its job, as the server does. */
static int registry_install_wait(const char *agents, const char *id, int reinstall,
                                 struct err *err)
{
    struct install_job *job = NULL;
    int rc = registry_install_start(agents, id, reinstall, 0, &job, err);
    if (rc || !job)
        return rc;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    if (install_job_notify(job, job_ended, &fds[1]) == 0) {
        char c;
        assert_int_equal(read(fds[0], &c, 1), 1);
    }
    close(fds[0]);
    close(fds[1]);
    rc = install_job_result(job, err);
    install_job_release(job);
    return rc;
}

static void test_npm_missing(void **state)
{
    (void)state;
    char dir[PATH_MAX], agents[PATH_MAX + 16];
    fresh(dir, sizeof dir, "nonpm");
    snprintf(agents, sizeof agents, "%s/agents", dir);
    char *saved = strdup(getenv("PATH"));
    assert_int_equal(setenv("PATH", dir, 1), 0);
    struct install_info info;
    struct err err;
    struct install_options o = { .progress_fd = -1 };
    int rc = install_agent(agents, "codex", &o, &info, &err);
    assert_int_equal(setenv("PATH", saved, 1), 0);
    free(saved);
    assert_int_equal(rc, ERR_INSTALL_FAILED);
    assert_non_null(strstr(err.msg, "npm not found"));
    /* Through the agents layer too, with the error kind the API maps. */
    assert_int_equal(setenv("PATH", dir, 1), 0);
    rc = registry_install_wait(agents, "codex", 0, &err);
    assert_int_equal(setenv("PATH", "/usr/bin:/bin", 1), 0);
    assert_int_equal(rc, ERR_INSTALL_FAILED);
    assert_non_null(strstr(err.msg, "npm not found"));
    assert_int_equal(registry_install_wait(agents, "mock", 1, &err), 0);
    assert_int_equal(registry_install_wait(agents, "nope", 0, &err), ERR_UNSUPPORTED_AGENT);
}

/* An agent the machine already has on PATH counts as installed, with the
 * version it reports; the lazy install (if_missing) leaves it alone. */
static void test_agent_on_path(void **state)
{
    (void)state;
    char dir[PATH_MAX], bin[PATH_MAX], agents[PATH_MAX + 16], npm[PATH_MAX + 16];
    fresh(dir, sizeof dir, "path");
    fresh(bin, sizeof bin, "bin");
    snprintf(agents, sizeof agents, "%s/agents", dir);
    char claude[PATH_MAX + 16];
    snprintf(claude, sizeof claude, "%s/claude", bin);
    write_file(claude, "#!/bin/sh\necho '9.9.9 (Claude Code)'\n", 1);
    make_npm(dir, npm, sizeof npm, 0);
    char path[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s:/usr/bin:/bin", bin);
    assert_int_equal(setenv("PATH", path, 1), 0);

    struct install_info info;
    struct err err;
    assert_int_equal(install_status(agents, "claude", &info, &err), 0);
    assert_true(info.installed);
    assert_false(info.pinned);
    assert_string_equal(info.path, claude);
    assert_string_equal(info.version, "9.9.9");

    struct install_options o = { .progress_fd = -1, .npm = npm, .if_missing = 1 };
    assert_int_equal(install_agent(agents, "claude", &o, &info, &err), 0);
    assert_int_equal(calls(dir), 0);
    /* An explicit install brings the pinned version, which then wins. */
    o.if_missing = 0;
    assert_int_equal(install_agent(agents, "claude", &o, &info, &err), 0);
    assert_int_equal(calls(dir), 1);
    assert_true(info.pinned);
    char found[PATH_MAX];
    assert_int_equal(install_find_binary(agents, "claude", found), 1);
    assert_non_null(strstr(found, "/agents/claude/node_modules/.bin/claude"));
    assert_int_equal(setenv("PATH", "/usr/bin:/bin", 1), 0);
}

/* The real npm against a registry that is not there fails quickly with a
 * reason naming the registry problem. */
static void test_real_npm_unreachable_registry(void **state)
{
    (void)state;
    if (access("/usr/bin/npm", X_OK) != 0 && access("/usr/local/bin/npm", X_OK) != 0) {
        fprintf(stderr, "npm is not installed: skipped\n");
        skip();
    }
    char dir[PATH_MAX], agents[PATH_MAX + 16];
    fresh(dir, sizeof dir, "registry");
    snprintf(agents, sizeof agents, "%s/agents", dir);
    char cache[PATH_MAX + 16];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    assert_int_equal(setenv("npm_config_registry", "http://127.0.0.1:9/", 1), 0);
    assert_int_equal(setenv("npm_config_cache", cache, 1), 0);
    assert_int_equal(setenv("npm_config_fetch_retries", "0", 1), 0);
    assert_int_equal(setenv("npm_config_offline", "false", 1), 0);
    assert_int_equal(setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1), 0);
    struct install_info info;
    struct err err;
    struct install_options o = { .progress_fd = -1 };
    int rc = install_agent(agents, "codex", &o, &info, &err);
    unsetenv("npm_config_registry");
    unsetenv("npm_config_cache");
    unsetenv("npm_config_fetch_retries");
    unsetenv("npm_config_offline");
    assert_int_equal(setenv("PATH", "/usr/bin:/bin", 1), 0);
    assert_int_equal(rc, ERR_INSTALL_FAILED);
    assert_non_null(strstr(err.msg, "npm install @openai/codex@0.169.0 exited"));
    assert_int_equal(install_status(agents, "codex", &info, &err), 0);
    assert_false(info.installed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest),
        cmocka_unit_test(test_install_then_noop_then_reinstall),
        cmocka_unit_test(test_install_two_packages),
        cmocka_unit_test(test_failed_npm_keeps_previous_install),
        cmocka_unit_test(test_npm_missing),
        cmocka_unit_test(test_agent_on_path),
        cmocka_unit_test(test_real_npm_unreachable_registry),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
