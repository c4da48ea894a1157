/* Unit tests for src/agents/user_config.c: the line-based allow-list copy of
 * a Codex config.toml (multi-line strings and arrays, comments, quoted and
 * dotted keys, tables kept and dropped, malformed input), the Claude and
 * OpenCode JSON allow-lists, and the files written into a private home. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agents/user_config.h"
#include "base/datadir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER "# Carried from the server user's Codex config by sandbox-journal.\n"

static char *filter_ok(const char *src, struct user_config_codex *c)
{
    struct err err;
    err_clear(&err);
    int rc = user_config_codex_filter(src, strlen(src), c, &err);
    if (rc != 0)
        fail_msg("filter failed: %s", err.msg);
    assert_memory_equal(c->toml, HEADER, strlen(HEADER));
    return c->toml + strlen(HEADER);
}

static void test_codex_keys_and_tables(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char *src =
        "# my config\n"
        "model = \"gw-model\"   # trailing comment\n"
        "approval_policy = \"never\"\n"
        "model_provider = 'gateway'\n"
        "\"model_reasoning_effort\" = \"high\"\n"
        "sandbox_mode = \"danger-full-access\"\n"
        "model_providers.inline.base_url = \"http://x\"\n"
        "\n"
        "[model_providers.gateway]\n"
        "name = \"Gateway\"\n"
        "base_url = \"http://127.0.0.1:9/v1\"\n"
        "env_key = \"GATEWAY_KEY\"\n"
        "# a comment inside the table\n"
        "query_params = { api-version = \"2025-04-01\" }\n"
        "\n"
        "[mcp_servers.fs]\n"
        "command = \"npx\"\n"
        "env_key = \"NOT_THIS\"\n"
        "[model_providers.\"quoted.name\"]\n"
        "base_url = \"http://q\"\n"
        "env_key = \"HOME\"\n"
        "[model_providers.gateway.http_headers]\n"
        "X-Team = \"a\"\n"
        "[profiles.fast]\n"
        "model = \"o4\"\n";
    struct user_config_codex c;
    const char *got = filter_ok(src, &c);
    assert_string_equal(got,
                        "model = \"gw-model\"   # trailing comment\n"
                        "model_provider = 'gateway'\n"
                        "\"model_reasoning_effort\" = \"high\"\n"
                        "model_providers.inline.base_url = \"http://x\"\n"
                        "[model_providers.gateway]\n"
                        "name = \"Gateway\"\n"
                        "base_url = \"http://127.0.0.1:9/v1\"\n"
                        "env_key = \"GATEWAY_KEY\"\n"
                        "# a comment inside the table\n"
                        "query_params = { api-version = \"2025-04-01\" }\n"
                        "\n"
                        "[model_providers.\"quoted.name\"]\n"
                        "base_url = \"http://q\"\n"
                        "env_key = \"HOME\"\n"
                        "[model_providers.gateway.http_headers]\n"
                        "X-Team = \"a\"\n");
    /* HOME is the adapter's: never taken from a provider. */
    assert_int_equal(c.n_env_keys, 1);
    assert_string_equal(c.env_keys[0], "GATEWAY_KEY");
    user_config_codex_free(&c);
}

/* Lines inside multi-line strings and arrays are not statements: a "[x]"
 * or "model = " there neither opens a table nor is copied on its own. */
static void test_codex_multiline(void **state)
{
    (void)state; /* cmocka fixture unused */
    const char *src =
        "instructions = \"\"\"\n"
        "model = \"not-a-key\"\n"
        "[model_providers.fake]\n"
        "ends with quotes \"\"\"\"\"\n"
        "model = \"real\"\n"
        "notify = [\n"
        "  \"a # not a comment\",  # a comment ]\n"
        "  '[model_providers.no]',\n"
        "]\n"
        "model_context_window = 1_000 # ok\n"
        "developer = '''\n"
        "[model_providers.literal]\n"
        "\\'''\n"
        "[model_providers.ml]\n"
        "base_url = \"http://ml\"\n"
        "headers = [\n"
        "  \"a\\\"]\",\n"
        "  \"\"\"b\n"
        "]\"\"\",\n"
        "]\n"
        "empty = \"\"\n"
        "[other]\n"
        "x = \"\"\"\n"
        "[model_providers.inside]\n"
        "\"\"\"\n";
    struct user_config_codex c;
    const char *got = filter_ok(src, &c);
    assert_string_equal(got,
                        "model = \"real\"\n"
                        "model_context_window = 1_000 # ok\n"
                        "[model_providers.ml]\n"
                        "base_url = \"http://ml\"\n"
                        "headers = [\n"
                        "  \"a\\\"]\",\n"
                        "  \"\"\"b\n"
                        "]\"\"\",\n"
                        "]\n"
                        "empty = \"\"\n");
    assert_int_equal(c.n_env_keys, 0);
    user_config_codex_free(&c);
}

static void test_codex_edges(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct user_config_codex c;
    /* CRLF, no final newline, array of tables. */
    const char *got = filter_ok("model = \"a\"\r\n[[model_providers.x]]\r\nname = \"x\"", &c);
    assert_string_equal(got, "model = \"a\"\r\n[[model_providers.x]]\r\nname = \"x\"\n");
    user_config_codex_free(&c);
    got = filter_ok("", &c);
    assert_string_equal(got, "");
    user_config_codex_free(&c);
    /* A key that merely starts like an allowed one is not it. */
    got = filter_ok("models = 1\nmodel_providers_x = 2\n[model_providersx]\na = 1\n", &c);
    assert_string_equal(got, "");
    user_config_codex_free(&c);

    static const char *const bad[] = {
        "model = \"open\n",  "x = \"\"\"never closed\n", "a = [1, 2\n", "a = ]\n",
        "y = '''\nopen\n''", "[model_providers.x\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct err err;
        err_clear(&err);
        assert_int_equal(user_config_codex_filter(bad[i], strlen(bad[i]), &c, &err),
                         ERR_INVALID);
        assert_null(c.toml);
        assert_int_equal(c.n_env_keys, 0);
    }
}

static int skip_base(const char *name)
{
    return strcmp(name, "ANTHROPIC_BASE_URL") == 0;
}

static void test_claude_filter(void **state)
{
    (void)state; /* cmocka fixture unused */
    json_t *in = json_loads(
        "{\"model\":\"opus\",\"apiKeyHelper\":\"/bin/get-key\",\"permissions\":{\"allow\":[]},"
        "\"hooks\":{},\"env\":{\"ANTHROPIC_BASE_URL\":\"http://gw\",\"ANTHROPIC_MODEL\":\"m\","
        "\"ANTHROPIC_API_KEY\":\"sk-secret\",\"ANTHROPIC_AUTH_TOKEN\":\"t\",\"AWS_REGION\":1,"
        "\"CLAUDE_CODE_USE_BEDROCK\":\"1\"}}",
        0, NULL);
    assert_non_null(in);
    json_t *out = user_config_claude_filter(in, NULL);
    char *s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"env\":{\"ANTHROPIC_BASE_URL\":\"http://gw\",\"ANTHROPIC_MODEL\":"
                           "\"m\",\"CLAUDE_CODE_USE_BEDROCK\":\"1\"},\"model\":\"opus\"}");
    free(s);
    json_decref(out);
    /* What the server's environment sets is left to it. */
    out = user_config_claude_filter(in, skip_base);
    s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"env\":{\"ANTHROPIC_MODEL\":\"m\",\"CLAUDE_CODE_USE_BEDROCK\":"
                           "\"1\"},\"model\":\"opus\"}");
    free(s);
    json_decref(out);
    json_decref(in);
    in = json_loads("{\"model\":7,\"env\":[]}", 0, NULL);
    out = user_config_claude_filter(in, NULL);
    assert_int_equal(json_object_size(out), 0);
    json_decref(out);
    json_decref(in);
}

static void test_opencode_filter_merge(void **state)
{
    (void)state; /* cmocka fixture unused */
    json_t *user = json_loads(
        "{\"model\":\"local/qwen\",\"small_model\":\"local/tiny\",\"share\":\"auto\","
        "\"mcp\":{},\"permission\":{\"bash\":\"allow\"},\"provider\":{\"local\":{\"options\":"
        "{\"baseURL\":\"http://l\"}},\"sj\":{\"name\":\"theirs\"}}}",
        0, NULL);
    json_t *kept = user_config_opencode_filter(user);
    char *s = json_dumps(kept, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"model\":\"local/qwen\",\"provider\":{\"local\":{\"options\":{"
                           "\"baseURL\":\"http://l\"}},\"sj\":{\"name\":\"theirs\"}},"
                           "\"small_model\":\"local/tiny\"}");
    free(s);
    json_t *ours = json_loads("{\"share\":\"disabled\",\"model\":\"sj/fake\",\"provider\":"
                              "{\"sj\":{\"name\":\"ours\"}}}",
                              0, NULL);
    struct err err;
    assert_int_equal(user_config_opencode_merge(ours, kept, &err), 0);
    s = json_dumps(ours, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"model\":\"sj/fake\",\"provider\":{\"local\":{\"options\":{"
                           "\"baseURL\":\"http://l\"}},\"sj\":{\"name\":\"ours\"}},\"share\":"
                           "\"disabled\",\"small_model\":\"local/tiny\"}");
    free(s);
    json_decref(ours);
    json_decref(kept);
    json_decref(user);
}

static void fresh_dir(char *out, size_t size, const char *tag)
{
    static unsigned counter;
    const char *base = getenv("SJ_TEST_TMPDIR");
    snprintf(out, size, "%s/unit-ucfg-%s-%ld-%u", base && *base ? base : "/tmp", tag,
             (long)getpid(), ++counter);
    assert_int_equal(datadir_mkdirs(out), 0);
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *slurp(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* The files: found through CODEX_HOME / HOME / XDG_CONFIG_HOME, written
 * 0600 into the private home, removed when the user has none. */
static void test_files(void **state)
{
    (void)state; /* cmocka fixture unused */
    char user[512], agent[512], sub[600];
    fresh_dir(user, sizeof user, "user");
    fresh_dir(agent, sizeof agent, "agent");
    assert_int_equal(setenv("HOME", user, 1), 0);
    assert_int_equal(unsetenv("CODEX_HOME"), 0);
    assert_int_equal(unsetenv("XDG_CONFIG_HOME"), 0);
    assert_int_equal(unsetenv("ANTHROPIC_BASE_URL"), 0);
    snprintf(sub, sizeof sub, "%s/.codex", user);
    assert_int_equal(datadir_mkdirs(sub), 0);
    put(sub, "config.toml", "model = \"m\"\nhistory = 1\n[model_providers.g]\nenv_key = \"GK\"\n");

    struct user_config_codex c;
    struct err err;
    err_clear(&err);
    assert_int_equal(user_config_codex_write(agent, &c, &err), 0);
    assert_string_equal(slurp(agent, "config.toml"),
                        HEADER "model = \"m\"\n[model_providers.g]\nenv_key = \"GK\"\n");
    assert_int_equal(c.n_env_keys, 1);
    user_config_codex_free(&c);
    char path[700];
    snprintf(path, sizeof path, "%s/config.toml", agent);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* CODEX_HOME is where the user's file is when set; none there: the
     * earlier copy goes. */
    char other[512];
    fresh_dir(other, sizeof other, "codexhome");
    assert_int_equal(setenv("CODEX_HOME", other, 1), 0);
    assert_int_equal(user_config_codex_write(agent, &c, &err), 0);
    assert_null(slurp(agent, "config.toml"));
    assert_null(c.toml);
    /* A config Codex wrote itself in its home stays. */
    put(agent, "config.toml", "[notice]\nseen = true\n");
    assert_int_equal(user_config_codex_write(agent, &c, &err), 0);
    assert_string_equal(slurp(agent, "config.toml"), "[notice]\nseen = true\n");
    assert_int_equal(unlink(path), 0);
    /* A malformed file is reported, nothing is carried. */
    put(other, "config.toml", "model = \"m\n");
    assert_int_equal(user_config_codex_write(agent, &c, &err), ERR_INVALID);
    assert_null(slurp(agent, "config.toml"));
    assert_int_equal(unsetenv("CODEX_HOME"), 0);

    snprintf(sub, sizeof sub, "%s/.claude", user);
    assert_int_equal(datadir_mkdirs(sub), 0);
    put(sub, "settings.json", "{\"model\":\"opus\",\"env\":{\"ANTHROPIC_BASE_URL\":\"http://gw\"}}");
    assert_int_equal(user_config_claude_write(agent, &err), 0);
    assert_string_equal(slurp(agent, ".claude/settings.json"),
                        "{\n  \"model\": \"opus\",\n  \"env\": {\n    \"ANTHROPIC_BASE_URL\": "
                        "\"http://gw\"\n  }\n}");
    /* The adapter passes the server's ANTHROPIC_BASE_URL: that one wins;
     * other variables of the server's are not passed, the user's stay. */
    put(sub, "settings.json",
        "{\"model\":\"opus\",\"env\":{\"ANTHROPIC_BASE_URL\":\"http://gw\",\"AWS_REGION\":\"eu\"}}");
    assert_int_equal(setenv("ANTHROPIC_BASE_URL", "http://env", 1), 0);
    assert_int_equal(setenv("AWS_REGION", "us", 1), 0);
    assert_int_equal(user_config_claude_write(agent, &err), 0);
    assert_string_equal(slurp(agent, ".claude/settings.json"),
                        "{\n  \"model\": \"opus\",\n  \"env\": {\n    \"AWS_REGION\": \"eu\"\n  }\n}");
    assert_int_equal(unsetenv("ANTHROPIC_BASE_URL"), 0);
    assert_int_equal(unsetenv("AWS_REGION"), 0);
    /* Nothing to carry: the earlier copy goes. */
    put(sub, "settings.json", "{\"theme\":\"dark\"}");
    assert_int_equal(user_config_claude_write(agent, &err), 0);
    assert_null(slurp(agent, ".claude/settings.json"));
    put(sub, "settings.json", "{not json");
    assert_int_equal(user_config_claude_write(agent, &err), ERR_INVALID);

    snprintf(sub, sizeof sub, "%s/xdg/opencode", user);
    assert_int_equal(datadir_mkdirs(sub), 0);
    put(sub, "opencode.json", "{\"model\":\"l/q\",\"autoupdate\":true}");
    snprintf(sub, sizeof sub, "%s/xdg", user);
    assert_int_equal(setenv("XDG_CONFIG_HOME", sub, 1), 0);
    char *merged = user_config_opencode_apply("{\"autoupdate\":false}");
    assert_string_equal(merged, "{\n  \"autoupdate\": false,\n  \"model\": \"l/q\"\n}");
    free(merged);
    assert_int_equal(unsetenv("XDG_CONFIG_HOME"), 0);
    /* No user config: ours unchanged. */
    merged = user_config_opencode_apply("{\"autoupdate\":false}");
    assert_string_equal(merged, "{\n  \"autoupdate\": false\n}");
    free(merged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codex_keys_and_tables),
        cmocka_unit_test(test_codex_multiline),
        cmocka_unit_test(test_codex_edges),
        cmocka_unit_test(test_claude_filter),
        cmocka_unit_test(test_opencode_filter_merge),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
