/* Unit tests for src/agents/skills.c: SKILL.md front matter, names and
 * filters, sources resolved on disk (one skill, a folder of skills,
 * subpath, filter, duplicates, the problems reported), a git source cloned
 * from a local repository and reused from the cache, and the Claude plugin
 * laid out from the result. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agents/skills.h"
#include "base/datadir.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void fresh(char *out, size_t size, const char *tag)
{
    static int counter;
    const char *tmp = getenv("SJ_TEST_TMPDIR");
    snprintf(out, size, "%s/skills-%ld-%s-%d", tmp && *tmp ? tmp : "/tmp", (long)getpid(), tag,
             ++counter);
    assert_int_equal(datadir_mkdirs(out), 0);
}

static void skill_at(const char *dir, const char *front)
{
    char path[PATH_MAX];
    assert_int_equal(datadir_mkdirs(dir), 0);
    snprintf(path, sizeof path, "%s/SKILL.md", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n# body\n", front);
    assert_int_equal(fclose(f), 0);
}

static void skill_named(const char *root, const char *sub, const char *name)
{
    char dir[PATH_MAX], front[256];
    snprintf(dir, sizeof dir, "%s/%s", root, sub);
    snprintf(front, sizeof front, "---\nname: %s\ndescription: about %s\n---", name, name);
    skill_at(dir, front);
}

/* ---- front matter ------------------------------------------------------------ */

static void expect_front(const char *text, const char *name, const char *description)
{
    char *n = (char *)1, *d = (char *)1;
    struct err e;
    assert_int_equal(skills_front_matter(text, strlen(text), &n, &d, &e), 0);
    if (name)
        assert_string_equal(n, name);
    else
        assert_null(n);
    if (description)
        assert_string_equal(d, description);
    else
        assert_null(d);
    free(n);
    free(d);
}

static void test_front_matter(void **state)
{
    (void)state;
    expect_front("---\nname: lint\ndescription: Lints the code\n---\nbody", "lint",
                 "Lints the code");
    /* CRLF, quotes, extra keys, comments, nested values, no description. */
    expect_front("---\r\nname: \"a-b\"\r\n# c: d\r\nmetadata:\r\n  name: inner\r\n---\r\n",
                 "a-b", NULL);
    expect_front("---\nname: 'it''s'\ndescription: \"say \\\"hi\\\"\"\n---\n", "it's",
                 "say \"hi\"");
    /* Block scalars: folded joins with spaces, literal with newlines. */
    expect_front("---\ndescription: >\n  one\n  two\nname: x\n---\n", "x", "one two");
    expect_front("---\ndescription: |\n  one\n  two\n---\n", NULL, "one\ntwo");
    /* The first of a repeated key wins; a byte order mark is skipped. */
    expect_front("\xEF\xBB\xBF---\nname: a\nname: b\n---\n", "a", NULL);
}

static void test_front_matter_refused(void **state)
{
    (void)state;
    const char *bad[] = { "", "name: x\n", "# title\n---\nname: x\n---\n",
                          "---\nname: x\n" /* never closed */ };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *n = NULL, *d = NULL;
        struct err e;
        assert_int_equal(skills_front_matter(bad[i], strlen(bad[i]), &n, &d, &e), ERR_INVALID);
        assert_null(n);
        assert_null(d);
        assert_non_null(strstr(e.msg, "front matter"));
    }
}

static void test_names_and_filter(void **state)
{
    (void)state;
    assert_true(skills_name_ok("pdf-tools_2.x"));
    assert_false(skills_name_ok(""));
    assert_false(skills_name_ok(".hidden"));
    assert_false(skills_name_ok("a/b"));
    assert_false(skills_name_ok("a b"));
    assert_false(skills_name_ok(
        "x1234567890123456789012345678901234567890123456789012345678901234"));
    json_t *all = json_pack("{s:s}", "type", "local");
    json_t *some = json_pack("{s:[s,s]}", "skills", "lint", "docs");
    assert_true(skills_selected(all, "anything"));
    assert_true(skills_selected(some, "docs"));
    assert_false(skills_selected(some, "lin"));
    json_decref(all);
    json_decref(some);

    char a[33], b[33], c[33];
    skills_git_key("file:///r", "main", a);
    skills_git_key("file:///r", NULL, b);
    skills_git_key("file:///rm", "ain", c);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    skills_git_key("file:///r", "main", b);
    assert_string_equal(a, b);
}

/* ---- resolving ------------------------------------------------------------------ */

/* new: the skills resolved from `configs_text`; *problems new too. */
static json_t *resolve(const char *configs_text, const char *wd, const char *cache,
                       json_t **problems)
{
    json_error_t jerr;
    json_t *configs = json_loads(configs_text, 0, &jerr);
    if (!configs)
        fail_msg("bad test JSON: %s: %s", jerr.text, configs_text);
    json_t *skills = json_array();
    *problems = json_array();
    assert_int_equal(skills_resolve(configs, wd, cache, skills, *problems), 0);
    json_decref(configs);
    return skills;
}

static const char *name_at(const json_t *skills, size_t i)
{
    return json_string_value(json_object_get(json_array_get(skills, i), "name"));
}

static int problems_say(const json_t *problems, const char *needle)
{
    size_t i;
    const json_t *p;
    json_array_foreach(problems, i, p) {
        if (strstr(json_string_value(p), needle))
            return 1;
    }
    return 0;
}

static void test_resolve_local(void **state)
{
    (void)state;
    char root[1024], one[PATH_MAX], cfg[4 * PATH_MAX];
    fresh(root, sizeof root, "local");
    /* A folder of skills (listed in name order, a directory without
     * SKILL.md and a dot directory skipped) and a single skill. */
    skill_named(root, "pack/zeta", "zeta");
    skill_named(root, "pack/alpha", "alpha-skill");
    skill_named(root, "pack/.hidden", "hidden");
    char notes[PATH_MAX];
    snprintf(notes, sizeof notes, "%s/pack/notes", root);
    assert_int_equal(datadir_mkdirs(notes), 0);
    snprintf(one, sizeof one, "%s/single", root);
    skill_at(one, "---\ndescription: no name: the directory's\n---");

    snprintf(cfg, sizeof cfg,
             "{\"a\":{\"sources\":[{\"type\":\"local\",\"source\":\"pack\"}]},"
             "\"b\":{\"sources\":[{\"type\":\"local\",\"source\":\"%s\"},"
             "{\"type\":\"local\",\"source\":\"%s\",\"subpath\":\"pack\","
             "\"skills\":[\"zeta\",\"gone\"]}]}}",
             one, root);
    json_t *problems;
    json_t *skills = resolve(cfg, root, "/nonexistent-cache", &problems);
    assert_int_equal(json_array_size(skills), 3);
    assert_string_equal(name_at(skills, 0), "alpha-skill");
    assert_string_equal(name_at(skills, 1), "zeta");
    assert_string_equal(name_at(skills, 2), "single");
    const json_t *first = json_array_get(skills, 0);
    assert_string_equal(json_string_value(json_object_get(first, "description")),
                        "about alpha-skill");
    char want[PATH_MAX + 16];
    char real_root[PATH_MAX];
    assert_non_null(realpath(root, real_root));
    snprintf(want, sizeof want, "%s/pack/alpha", real_root);
    assert_string_equal(json_string_value(json_object_get(first, "path")), want);
    /* zeta a second time (config b's filter) is a duplicate; "gone" is not
     * there. */
    assert_int_equal(json_array_size(problems), 2);
    assert_true(problems_say(problems, "skills \"b\": a skill named zeta is already configured"));
    assert_true(problems_say(problems, "no skill named gone"));
    json_decref(skills);
    json_decref(problems);
}

static void test_resolve_problems(void **state)
{
    (void)state;
    char root[1024];
    fresh(root, sizeof root, "problems");
    char empty[PATH_MAX];
    snprintf(empty, sizeof empty, "%s/empty", root);
    assert_int_equal(datadir_mkdirs(empty), 0);
    skill_at(root, "---\nname: bad name\n---"); /* root itself is a skill */
    char bad_front[PATH_MAX];
    snprintf(bad_front, sizeof bad_front, "%s/nofront", root);
    skill_at(bad_front, "# no front matter");
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"p\":{\"sources\":[{\"type\":\"github\",\"source\":\"octo/skills\"},"
             "{\"type\":\"local\",\"source\":\"missing\"},"
             "{\"type\":\"local\",\"source\":\"empty\"},"
             "{\"type\":\"local\",\"source\":\".\",\"subpath\":\"../etc\"},"
             "{\"type\":\"local\",\"source\":\".\"},"
             "{\"type\":\"local\",\"source\":\"nofront\"},"
             "{\"type\":\"git\",\"source\":\"file:///r\",\"ref\":\"--orphan=x\"}]}}");
    json_t *problems;
    json_t *skills = resolve(cfg, root, "/nonexistent-cache", &problems);
    assert_int_equal(json_array_size(skills), 0);
    assert_int_equal(json_array_size(problems), 7);
    assert_true(problems_say(problems, "source type \"github\" is not supported"));
    assert_true(problems_say(problems, "/missing: No such file or directory"));
    assert_true(problems_say(problems, "no SKILL.md in"));
    assert_true(problems_say(problems, "subpath ../etc leaves its source"));
    assert_true(problems_say(problems, "the name \"bad name\" is not"));
    assert_true(problems_say(problems, "SKILL.md has no front matter"));
    assert_true(problems_say(problems, "or ref --orphan=x starts with '-'"));
    json_decref(skills);
    json_decref(problems);
}

static void sh(const char *cmd)
{
    if (system(cmd) != 0)
        fail_msg("failed: %s", cmd);
}

static void test_resolve_git(void **state)
{
    (void)state;
    char root[1024], repo[PATH_MAX], cache[PATH_MAX], cmd[4 * PATH_MAX];
    fresh(root, sizeof root, "git");
    snprintf(repo, sizeof repo, "%s/repo", root);
    snprintf(cache, sizeof cache, "%s/cache", root);
    skill_named(repo, "skills/old", "old-skill");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && git init -q -b main && git add -A && "
             "git -c user.name=t -c user.email=t@t commit -q -m one && git tag v1 && "
             "git mv skills/old skills/new && sed -i 's/old-skill/new-skill/' skills/new/SKILL.md "
             "&& git -c user.name=t -c user.email=t@t commit -q -am two",
             repo);
    sh(cmd);
    snprintf(cmd, sizeof cmd,
             "{\"g\":{\"sources\":[{\"type\":\"git\",\"source\":\"file://%s\",\"ref\":\"v1\","
             "\"subpath\":\"skills\"},{\"type\":\"git\",\"source\":\"file://%s\","
             "\"subpath\":\"skills\"}]}}",
             repo, repo);
    json_t *problems;
    json_t *skills = resolve(cmd, root, cache, &problems);
    assert_int_equal(json_array_size(problems), 0);
    assert_int_equal(json_array_size(skills), 2);
    assert_string_equal(name_at(skills, 0), "old-skill"); /* at the tag */
    assert_string_equal(name_at(skills, 1), "new-skill"); /* the default branch */
    /* Each (URL, ref) is a clone of its own, named by its key. */
    char url[PATH_MAX + 8], key[33], real_cache[PATH_MAX], want[2 * PATH_MAX];
    snprintf(url, sizeof url, "file://%s", repo);
    skills_git_key(url, "v1", key);
    assert_non_null(realpath(cache, real_cache));
    snprintf(want, sizeof want, "%s/%s/skills/old", real_cache, key);
    assert_string_equal(json_string_value(json_object_get(json_array_get(skills, 0), "path")),
                        want);
    json_decref(skills);
    json_decref(problems);

    /* The clones are reused: with the repository gone, the same sources
     * still resolve; a ref that does not exist is git's own error. */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", repo);
    sh(cmd);
    snprintf(cmd, sizeof cmd,
             "{\"g\":{\"sources\":[{\"type\":\"git\",\"source\":\"file://%s\",\"ref\":\"v1\","
             "\"subpath\":\"skills\"},{\"type\":\"git\",\"source\":\"file://%s\","
             "\"ref\":\"nope\"}]}}",
             repo, repo);
    skills = resolve(cmd, root, cache, &problems);
    assert_int_equal(json_array_size(skills), 1);
    assert_string_equal(name_at(skills, 0), "old-skill");
    assert_int_equal(json_array_size(problems), 1);
    assert_true(problems_say(problems, "git clone file://"));
    json_decref(skills);
    json_decref(problems);
    /* Nothing half-made is left in the cache. */
    snprintf(cmd, sizeof cmd, "test -z \"$(ls '%s' | grep tmp)\"", cache);
    sh(cmd);
}

/* ---- the Claude plugin ------------------------------------------------------------- */

static void test_claude_plugin(void **state)
{
    (void)state;
    char root[1024], plugin[PATH_MAX], path[PATH_MAX + 64], link[PATH_MAX];
    fresh(root, sizeof root, "plugin");
    skill_named(root, "src/one", "one");
    snprintf(plugin, sizeof plugin, "%s/home/.sandbox-journal/skills-x", root);
    char cfg[PATH_MAX + 128];
    snprintf(cfg, sizeof cfg, "{\"c\":{\"sources\":[{\"type\":\"local\",\"source\":\"src\"}]}}");
    json_t *problems;
    json_t *skills = resolve(cfg, root, "/nonexistent-cache", &problems);
    assert_int_equal(json_array_size(skills), 1);

    /* A leftover of an earlier start is replaced, not merged. */
    snprintf(path, sizeof path, "%s/skills/stale", plugin);
    assert_int_equal(datadir_mkdirs(path), 0);
    struct err e;
    assert_int_equal(skills_write_claude_plugin(plugin, skills, &e), 0);
    struct stat st;
    assert_int_not_equal(lstat(path, &st), 0);

    snprintf(path, sizeof path, "%s/.claude-plugin/plugin.json", plugin);
    json_error_t jerr;
    json_t *manifest = json_load_file(path, 0, &jerr);
    assert_non_null(manifest);
    json_t *want = skills_claude_manifest();
    assert_true(json_equal(manifest, want));
    assert_string_equal(json_string_value(json_object_get(manifest, "name")),
                        "sandbox-journal");
    json_decref(want);
    json_decref(manifest);

    snprintf(path, sizeof path, "%s/skills/one", plugin);
    ssize_t n = readlink(path, link, sizeof link - 1);
    assert_true(n > 0);
    link[n] = '\0';
    assert_string_equal(link, json_string_value(json_object_get(json_array_get(skills, 0),
                                                                "path")));
    snprintf(path, sizeof path, "%s/skills/one/SKILL.md", plugin);
    assert_int_equal(stat(path, &st), 0);

    /* A name that is not a resolved skill's is refused, not written. */
    json_t *bad = json_pack("[{s:s,s:s}]", "name", "../x", "path", "/tmp");
    assert_int_equal(skills_write_claude_plugin(plugin, bad, &e), ERR_INTERNAL);
    json_decref(bad);
    json_decref(skills);
    json_decref(problems);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_front_matter),
        cmocka_unit_test(test_front_matter_refused),
        cmocka_unit_test(test_names_and_filter),
        cmocka_unit_test(test_resolve_local),
        cmocka_unit_test(test_resolve_problems),
        cmocka_unit_test(test_resolve_git),
        cmocka_unit_test(test_claude_plugin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
