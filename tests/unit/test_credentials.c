/* Unit tests for src/credentials.c: masking, variable names, discovery from
 * fixture files under a scratch home (expiry judged against a fixed "now"),
 * the environment's precedence, and how an agent's key is chosen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agents/credentials.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 2030-01-01T00:00:00Z in milliseconds since the epoch. */
#define Y2030_MS 1893456000000LL

static const char *const key_vars[] = { "ANTHROPIC_API_KEY", "CLAUDE_API_KEY", "OPENAI_API_KEY",
                                        "CODEX_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                                        "DASHSCOPE_API_KEY", "QWEN_API_KEY", "CURSOR_API_KEY" };

static void clear_key_vars(void)
{
    for (size_t i = 0; i < sizeof key_vars / sizeof key_vars[0]; i++)
        assert_int_equal(unsetenv(key_vars[i]), 0);
}

static void mkdirs_for(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
}

static void write_file(const char *home, const char *rel, const char *content)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", home, rel);
    mkdirs_for(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    assert_int_equal(fclose(f), 0);
}

static void fresh_home(char *out, size_t size, const char *tag)
{
    static unsigned counter;
    const char *base = getenv("SJ_TEST_TMPDIR");
    snprintf(out, size, "%s/unit-creds-%s-%ld-%u/", base && *base ? base : "/tmp", tag,
             (long)getpid(), ++counter);
    mkdirs_for(out);
    out[strlen(out) - 1] = '\0';
}

static void extract(const char *home, int include_oauth, long long now_ms,
                    struct credentials_set *set)
{
    struct credentials_options o = { .home_dir = home, .include_oauth = include_oauth,
                                     .now_ms = now_ms };
    struct err err;
    err_clear(&err);
    assert_int_equal(credentials_extract(&o, set, &err), 0);
}

static void test_mask(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct {
        const char *in, *out;
    } cases[] = {
        { "", "****" },
        { NULL, "****" },
        { "short", "****" },
        { "abcdefghijklmnopqrstuvw", "****" },             /* 23: too short to show */
        { "abcdefghijklmnopqrstuvwx", "abcd...uvwx" },     /* 24 */
        { "  sk-ant-api03-0123456789abcdef-XYZW \n", "sk-a...XYZW" },
        { "sk-ant-api03-0123456789abcdef\x01XYZW", "****" }, /* not printable */
        { "sk-ant-api03-0123456789abcdef\xc3\xa9XYZW", "****" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *m = credentials_mask(cases[i].in);
        assert_non_null(m);
        assert_string_equal(m, cases[i].out);
        free(m);
    }
}

static void test_env_name(void **state)
{
    (void)state; /* cmocka fixture unused */
    char *n = credentials_env_name("groq");
    assert_string_equal(n, "GROQ_API_KEY");
    free(n);
    n = credentials_env_name("azure-openai");
    assert_string_equal(n, "AZURE_OPENAI_API_KEY");
    free(n);
    n = credentials_env_name("a.b c$");
    assert_string_equal(n, "A_B_C__API_KEY");
    free(n);
    assert_null(credentials_env_name(""));
    assert_null(credentials_env_name("-._"));
    assert_null(credentials_env_name("1password"));
}

static void test_files(void **state)
{
    (void)state; /* cmocka fixture unused */
    clear_key_vars();
    char home[512];
    fresh_home(home, sizeof home, "files");
    /* .claude.json.api is absent on purpose: .claude.json must still count. */
    write_file(home, ".claude.json",
               "{\"apiKey\":\"not-anthropic\","
               "\"customApiKey\":\"sk-ant-custom-0123456789abcdef\"}");
    write_file(home, ".codex/auth.json",
               "{\"OPENAI_API_KEY\":\"\",\"tokens\":{\"access_token\":\"codex-oauth-token\"}}");
    write_file(home, ".local/share/opencode/auth.json",
               "{\"zeta\":{\"type\":\"api\",\"key\":\"zeta-key\"},"
               "\"alpha\":{\"type\":\"oauth\",\"access\":\"alpha-token\",\"expires\":"
               "1893456000001},"
               "\"old\":{\"type\":\"oauth\",\"access\":\"old-token\",\"expires\":1},"
               "\"anthropic\":{\"type\":\"api\",\"key\":\"opencode-anthropic\"},"
               "\"weird\":{\"type\":\"wellknown\",\"key\":\"x\"},"
               "\"notobject\":3}");
    struct credentials_set set;
    extract(home, 1, Y2030_MS, &set);

    assert_string_equal(set.anthropic.secret, "sk-ant-custom-0123456789abcdef");
    assert_string_equal(set.anthropic.source, "claude-code");
    assert_int_equal(set.anthropic.auth, CREDENTIALS_API_KEY);
    char *loc = malloc(strlen(home) + 32);
    assert_non_null(loc);
    sprintf(loc, "%s/.claude.json", home);
    assert_string_equal(set.anthropic.location, loc);
    free(loc);

    /* An empty OPENAI_API_KEY falls back to the OAuth token. */
    assert_string_equal(set.openai.secret, "codex-oauth-token");
    assert_int_equal(set.openai.auth, CREDENTIALS_OAUTH);

    /* Others sorted by name; expired and unknown types left out. */
    assert_int_equal(set.n_other, 2);
    assert_string_equal(set.other[0].provider, "alpha");
    assert_string_equal(set.other[0].secret, "alpha-token");
    assert_string_equal(set.other[0].source, "opencode");
    assert_string_equal(set.other[1].provider, "zeta");
    assert_null(credentials_find(&set, "old"));
    assert_ptr_equal(credentials_find(&set, "zeta"), &set.other[1]);
    credentials_set_clear(&set);
    assert_null(set.anthropic.provider);

    /* Without OAuth: no Codex token, no alpha. */
    extract(home, 0, Y2030_MS, &set);
    assert_null(set.openai.provider);
    assert_int_equal(set.n_other, 1);
    assert_string_equal(set.other[0].provider, "zeta");
    credentials_set_clear(&set);
}

static void test_claude_oauth_expiry(void **state)
{
    (void)state; /* cmocka fixture unused */
    clear_key_vars();
    char home[512];
    fresh_home(home, sizeof home, "oauth");
    /* 2030-01-01T01:00:00+02:00 is 2029-12-31T23:00:00Z. */
    write_file(home, ".claude/.credentials.json",
               "{\"claudeAiOauth\":{\"accessToken\":\"first\","
               "\"expiresAt\":\"2030-01-01T01:00:00+02:00\"}}");
    write_file(home, ".claude-oauth-credentials.json",
               "{\"claudeAiOauth\":{\"accessToken\":\"second\",\"expiresAt\":\"2030-01-01T00:"
               "00:00.500Z\"}}");
    struct credentials_set set;

    extract(home, 1, Y2030_MS - 3600 * 1000 - 1, &set);
    assert_string_equal(set.anthropic.secret, "first");
    assert_int_equal(set.anthropic.auth, CREDENTIALS_OAUTH);
    credentials_set_clear(&set);

    extract(home, 1, Y2030_MS, &set);
    assert_string_equal(set.anthropic.secret, "second");
    credentials_set_clear(&set);

    extract(home, 1, Y2030_MS + 501, &set);
    assert_null(set.anthropic.provider);
    credentials_set_clear(&set);

    /* Milliseconds, as Claude Code writes them; an unparsable date counts as
     * not expired, as in the reference. */
    write_file(home, ".claude/.credentials.json",
               "{\"claudeAiOauth\":{\"accessToken\":\"ms\",\"expiresAt\":1893456000000}}");
    write_file(home, ".claude-oauth-credentials.json",
               "{\"claudeAiOauth\":{\"accessToken\":\"odd\",\"expiresAt\":\"tomorrow\"}}");
    extract(home, 1, Y2030_MS - 1, &set);
    assert_string_equal(set.anthropic.secret, "ms");
    credentials_set_clear(&set);
    extract(home, 1, Y2030_MS + 1, &set);
    assert_string_equal(set.anthropic.secret, "odd");
    credentials_set_clear(&set);
}

static void test_environment_and_amp(void **state)
{
    (void)state; /* cmocka fixture unused */
    clear_key_vars();
    char home[512];
    fresh_home(home, sizeof home, "env");
    write_file(home, ".amp/config.json", "{\"anthropic\":{\"token\":\"amp-token\"}}");
    write_file(home, ".claude.json", "{\"primaryApiKey\":\"sk-ant-claude\"}");
    write_file(home, ".codex/auth.json", "{\"OPENAI_API_KEY\":\"codex-key\"}");
    struct credentials_set set;

    extract(home, 1, Y2030_MS, &set);
    assert_string_equal(set.anthropic.secret, "amp-token");
    assert_string_equal(set.anthropic.source, "amp");
    credentials_set_clear(&set);

    /* An empty variable does not count; the second name is a fallback. */
    assert_int_equal(setenv("ANTHROPIC_API_KEY", "", 1), 0);
    assert_int_equal(setenv("CLAUDE_API_KEY", "from-env", 1), 0);
    assert_int_equal(setenv("CODEX_API_KEY", "codex-env", 1), 0);
    extract(home, 1, Y2030_MS, &set);
    assert_string_equal(set.anthropic.secret, "from-env");
    assert_string_equal(set.anthropic.source, "environment");
    assert_string_equal(set.anthropic.location, "$CLAUDE_API_KEY");
    assert_string_equal(set.openai.secret, "codex-env");
    assert_string_equal(set.openai.location, "$CODEX_API_KEY");
    credentials_set_clear(&set);
    clear_key_vars();

    struct credentials_options none = { .home_dir = "", .include_oauth = 1 };
    struct err err;
    assert_int_equal(credentials_extract(&none, &set, &err), ERR_INVALID);
}

static void set_entry(struct credentials_entry *e, const char *provider, const char *secret)
{
    e->provider = strdup(provider);
    e->source = strdup("opencode");
    e->location = strdup("test");
    e->secret = strdup(secret);
    assert_true(e->provider && e->source && e->location && e->secret);
}

static void test_for_agent(void **state)
{
    (void)state; /* cmocka fixture unused */
    struct credentials_set set;
    memset(&set, 0, sizeof set);
    const struct credentials_entry *e = NULL;
    struct err err;

    assert_int_equal(credentials_for_agent(&set, "claude", NULL, &e, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no credentials found for provider anthropic");
    assert_int_equal(credentials_for_agent(&set, "opencode", NULL, &e, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no credentials found for opencode");
    assert_int_equal(credentials_for_agent(&set, "nosuch", NULL, &e, &err), ERR_INVALID);
    assert_int_equal(credentials_for_agent(&set, "gemini", NULL, &e, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no credentials found for provider google");
    assert_int_equal(credentials_for_agent(&set, "qwen", NULL, &e, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no credentials found for provider openai");
    assert_int_equal(credentials_for_agent(&set, "pi", NULL, &e, &err), ERR_NOT_FOUND);

    set.other = calloc(2, sizeof *set.other);
    assert_non_null(set.other);
    set_entry(&set.other[0], "groq", "g");
    set.n_other = 1;
    assert_int_equal(credentials_for_agent(&set, "opencode", NULL, &e, &err), 0);
    assert_string_equal(e->secret, "g");

    set_entry(&set.other[1], "mistral", "m");
    set.n_other = 2;
    assert_int_equal(credentials_for_agent(&set, "opencode", NULL, &e, &err), ERR_INVALID);
    assert_string_equal(err.msg, "multiple providers available for opencode: groq, mistral "
                                 "(use --provider)");
    assert_int_equal(credentials_for_agent(&set, "opencode", "mistral", &e, &err), 0);
    assert_string_equal(e->secret, "m");

    set_entry(&set.anthropic, "anthropic", "a");
    assert_int_equal(credentials_for_agent(&set, "opencode", NULL, &e, &err), 0);
    assert_string_equal(e->secret, "a");
    assert_int_equal(credentials_for_agent(&set, "amp", NULL, &e, &err), 0);
    assert_string_equal(e->secret, "a");
    assert_int_equal(credentials_for_agent(&set, "claude", "openai", &e, &err), ERR_INVALID);
    assert_string_equal(err.msg, "agent claude only supports provider anthropic");

    set_entry(&set.openai, "openai", "o");
    assert_int_equal(credentials_for_agent(&set, "opencode", NULL, &e, &err), 0);
    assert_string_equal(e->secret, "o");
    assert_int_equal(credentials_for_agent(&set, "codex", "openai", &e, &err), 0);
    assert_string_equal(e->secret, "o");
    credentials_set_clear(&set);
}

/* The ACP agents' keys: the environment first, then Gemini CLI's and Qwen
 * Code's .env files and Pi's auth.json; a provider keeps its first source. */
static void test_acp_agents(void **state)
{
    (void)state; /* cmocka fixture unused */
    clear_key_vars();
    char home[512];
    fresh_home(home, sizeof home, "acp");
    write_file(home, ".gemini/.env", "# Gemini CLI\nexport GEMINI_API_KEY=\"gem-file-key\"\n");
    write_file(home, ".qwen/.env", "OPENAI_API_KEY='qwen-openai-key'\nDASHSCOPE_API_KEY=ds-key\n");
    write_file(home, ".pi/agent/auth.json",
               "{\"anthropic\":{\"type\":\"api_key\",\"key\":\"pi-anthropic\"},"
               "\"groq\":{\"type\":\"api_key\",\"key\":\"pi-groq\"},"
               "\"openai\":{\"type\":\"oauth\",\"access\":\"pi-oauth\",\"expires\":"
               "1893456000001}}");
    assert_int_equal(setenv("CURSOR_API_KEY", "cursor-env-key", 1), 0);
    struct credentials_set set;
    extract(home, 1, Y2030_MS - 1, &set);
    const struct credentials_entry *e = credentials_find(&set, "google");
    assert_non_null(e);
    assert_string_equal(e->secret, "gem-file-key");
    assert_string_equal(e->source, "gemini");
    e = credentials_find(&set, "openai");
    assert_string_equal(e->secret, "qwen-openai-key"); /* before Pi's OAuth login */
    assert_string_equal(e->source, "qwen");
    assert_string_equal(credentials_find(&set, "dashscope")->secret, "ds-key");
    assert_string_equal(credentials_find(&set, "anthropic")->secret, "pi-anthropic");
    assert_string_equal(credentials_find(&set, "groq")->source, "pi");
    e = credentials_find(&set, "cursor");
    assert_string_equal(e->secret, "cursor-env-key");
    assert_string_equal(e->location, "$CURSOR_API_KEY");
    for (size_t i = 1; i < set.n_other; i++) /* kept sorted */
        assert_true(strcmp(set.other[i - 1].provider, set.other[i].provider) < 0);
    struct err err;
    assert_int_equal(credentials_for_agent(&set, "qwen", NULL, &e, &err), 0);
    assert_string_equal(e->secret, "qwen-openai-key");
    assert_int_equal(credentials_for_agent(&set, "qwen", "dashscope", &e, &err), 0);
    assert_string_equal(e->secret, "ds-key");
    assert_int_equal(credentials_for_agent(&set, "gemini", NULL, &e, &err), 0);
    assert_string_equal(e->secret, "gem-file-key");
    assert_int_equal(credentials_for_agent(&set, "cursor", NULL, &e, &err), 0);
    assert_int_equal(credentials_for_agent(&set, "pi", "groq", &e, &err), 0);
    assert_string_equal(e->secret, "pi-groq");
    credentials_set_clear(&set);

    /* The environment wins over the files. */
    assert_int_equal(setenv("GEMINI_API_KEY", "gem-env-key", 1), 0);
    extract(home, 0, 0, &set);
    assert_string_equal(credentials_find(&set, "google")->secret, "gem-env-key");
    credentials_set_clear(&set);
    clear_key_vars();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_env_name),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_claude_oauth_expiry),
        cmocka_unit_test(test_environment_and_amp),
        cmocka_unit_test(test_for_agent),
        cmocka_unit_test(test_acp_agents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
