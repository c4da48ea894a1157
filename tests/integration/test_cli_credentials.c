/* Integration tests of `sandbox-journal credentials extract|extract-env`:
 * discovery from fixture config files of Claude Code, Codex, OpenCode and
 * Amp in a temporary HOME, with the key variables removed from the
 * environment; secrets masked by default and printed only with --reveal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "server.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CLAUDE_KEY "sk-ant-api03-claude-fixture-0123456789abcdefghij-wxyz"
#define CODEX_KEY "sk-proj-codex-fixture-0123456789abcdefghij"
#define GROQ_KEY "gsk_opencode_fixture_0123456789abcdef"
#define MISTRAL_TOKEN "mistral-oauth-0123456789abcdefghij"
#define EXPIRED_TOKEN "or-expired-token-0123456789abcdef"
#define CLAUDE_OAUTH "sk-ant-oat01-oauth-fixture-0123456789abcdef"
#define AMP_KEY "amp-fixture-key-0123456789abcdefghij"
#define ENV_KEY "sk-ant-environment-0123456789abcdefghij"

static const char *const all_secrets[] = { CLAUDE_KEY,    CODEX_KEY,    GROQ_KEY, MISTRAL_TOKEN,
                                           EXPIRED_TOKEN, CLAUDE_OAUTH, AMP_KEY,  ENV_KEY };

static void write_file(const char *home, const char *rel, const char *content)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", home, rel);
    for (char *p = path + strlen(home) + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    fputs(content, f);
    fclose(f);
}

/* A home with every agent's files (Amp's aside). */
static void make_full_home(char *home, size_t size)
{
    sj_fresh_dir(home, size, "cli-creds");
    write_file(home, ".claude.json",
               "{\"numStartups\":3,\"primaryApiKey\":\"" CLAUDE_KEY "\"}");
    write_file(home, ".codex/auth.json", "{\"OPENAI_API_KEY\":\"" CODEX_KEY "\"}");
    write_file(home, ".local/share/opencode/auth.json",
               "{\"groq\":{\"type\":\"api\",\"key\":\"" GROQ_KEY "\"},"
               "\"openrouter\":{\"type\":\"oauth\",\"access\":\"" EXPIRED_TOKEN "\","
               "\"expires\":1000},"
               "\"mistral\":{\"type\":\"oauth\",\"access\":\"" MISTRAL_TOKEN "\","
               "\"expires\":4102444800000}}");
}

/* Runs `credentials <args>` with HOME=home and no key variables. */
static void creds(const char *home, const char *extra_env, struct sj_cli_result *r, ...)
{
    const char *args[16];
    size_t n = 0;
    args[n++] = "credentials";
    va_list ap;
    va_start(ap, r);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n + 1 < sizeof args / sizeof args[0])
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    char home_var[600];
    snprintf(home_var, sizeof home_var, "HOME=%s", home);
    const char *env[] = { home_var,         "ANTHROPIC_API_KEY", "CLAUDE_API_KEY",
                          "OPENAI_API_KEY", "CODEX_API_KEY",     "XDG_DATA_HOME",
                          extra_env,        NULL };
    sj_cli_run(args, env, r);
}

static void assert_no_secret(const struct sj_cli_result *r)
{
    for (size_t i = 0; i < sizeof all_secrets / sizeof all_secrets[0]; i++) {
        /* Not the whole secret, nor any 12 characters of its middle. */
        char middle[13];
        memcpy(middle, all_secrets[i] + 6, 12);
        middle[12] = '\0';
        if (strstr(r->out, middle) || strstr(r->err, middle))
            sj_cli_dump(all_secrets[i], r);
        assert_null(strstr(r->out, middle));
        assert_null(strstr(r->err, middle));
    }
}

static json_t *parse(const struct sj_cli_result *r)
{
    if (r->exit_code != 0)
        sj_cli_dump("credentials", r);
    assert_int_equal(r->exit_code, 0);
    json_error_t jerr;
    json_t *j = json_loads(r->out, 0, &jerr);
    if (!j)
        fail_msg("not JSON (%s): %s", jerr.text, r->out);
    return j;
}

static void assert_entry(const json_t *root, const char *path, const char *source,
                         const char *auth_type, const char *api_key, int redacted)
{
    const json_t *e = json_object_get(root, path);
    if (!e) {
        const json_t *other = json_object_get(root, "other");
        e = json_object_get(other, path);
    }
    assert_non_null(e);
    assert_string_equal(sj_str(e, "source"), source);
    assert_string_equal(sj_str(e, "auth_type"), auth_type);
    assert_string_equal(sj_str(e, "api_key"), api_key);
    assert_int_equal(json_is_true(json_object_get(e, "redacted")), redacted);
}

static void test_extract_masked(void **state)
{
    (void)state; /* each test makes its own home */
    char home[512];
    make_full_home(home, sizeof home);
    struct sj_cli_result r;
    creds(home, NULL, &r, "extract", NULL);
    assert_no_secret(&r);
    assert_int_equal(r.err_len, 0);
    json_t *root = parse(&r);
    assert_entry(root, "anthropic", "claude-code", "api_key", "sk-a...wxyz", 1);
    char *loc = sj_fmt("%s/.claude.json", home);
    assert_string_equal(sj_str(root, "anthropic.location"), loc);
    free(loc);
    assert_entry(root, "openai", "codex", "api_key", "sk-p...ghij", 1);
    assert_entry(root, "groq", "opencode", "api_key", "gsk_...cdef", 1);
    assert_entry(root, "mistral", "opencode", "oauth", "mist...ghij", 1);
    /* The expired OpenCode token is not reported. */
    assert_int_equal(json_object_size(json_object_get(root, "other")), 2);
    json_decref(root);
    sj_cli_result_free(&r);
}

static void test_extract_revealed(void **state)
{
    (void)state; /* each test makes its own home */
    char home[512];
    make_full_home(home, sizeof home);
    struct sj_cli_result r;
    creds(home, NULL, &r, "extract", "--reveal", NULL);
    json_t *root = parse(&r);
    assert_entry(root, "anthropic", "claude-code", "api_key", CLAUDE_KEY, 0);
    assert_entry(root, "openai", "codex", "api_key", CODEX_KEY, 0);
    assert_entry(root, "groq", "opencode", "api_key", GROQ_KEY, 0);
    assert_entry(root, "mistral", "opencode", "oauth", MISTRAL_TOKEN, 0);
    assert_null(strstr(r.out, EXPIRED_TOKEN));
    json_decref(root);
    sj_cli_result_free(&r);
}

static void test_extract_one(void **state)
{
    (void)state; /* each test makes its own home */
    char home[512];
    make_full_home(home, sizeof home);
    struct sj_cli_result r;

    creds(home, NULL, &r, "extract", "--agent", "claude", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "sk-a...wxyz\n");
    sj_cli_assert_one_line(r.err, "--reveal");
    assert_no_secret(&r);
    sj_cli_result_free(&r);

    creds(home, NULL, &r, "extract", "-a", "claude", "-r", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, CLAUDE_KEY "\n");
    assert_int_equal(r.err_len, 0);
    sj_cli_result_free(&r);

    /* OpenCode prefers openai. */
    creds(home, NULL, &r, "extract", "--agent", "opencode", "--reveal", NULL);
    assert_string_equal(r.out, CODEX_KEY "\n");
    sj_cli_result_free(&r);

    creds(home, NULL, &r, "extract", "--provider", "groq", "--reveal", NULL);
    assert_string_equal(r.out, GROQ_KEY "\n");
    sj_cli_result_free(&r);

    creds(home, NULL, &r, "extract", "--agent", "codex", "--provider", "anthropic", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_int_equal(r.out_len, 0);
    sj_cli_assert_one_line(r.err, "agent codex only supports provider openai");
    sj_cli_result_free(&r);

    creds(home, NULL, &r, "extract", "--provider", "nope", NULL);
    assert_int_equal(r.exit_code, 1);
    sj_cli_assert_one_line(r.err, "no credentials found for provider nope");
    sj_cli_result_free(&r);

    creds(home, NULL, &r, "extract", "--agent", "nosuch", NULL);
    assert_int_equal(r.exit_code, 2);
    sj_cli_assert_one_line(r.err, "--agent must be claude, codex, opencode, amp, qwen, pi, "
                                  "gemini or cursor");
    sj_cli_result_free(&r);
}

static void test_extract_env(void **state)
{
    (void)state; /* each test makes its own home */
    char home[512];
    make_full_home(home, sizeof home);
    struct sj_cli_result r;

    creds(home, NULL, &r, "extract-env", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "ANTHROPIC_API_KEY=sk-a...wxyz\n"
                               "CLAUDE_API_KEY=sk-a...wxyz\n"
                               "OPENAI_API_KEY=sk-p...ghij\n"
                               "CODEX_API_KEY=sk-p...ghij\n"
                               "GROQ_API_KEY=gsk_...cdef\n"
                               "MISTRAL_API_KEY=mist...ghij\n");
    sj_cli_assert_one_line(r.err, "masked");
    assert_no_secret(&r);
    sj_cli_result_free(&r);

    creds(home, NULL, &r, "extract-env", "--export", "--reveal", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "export ANTHROPIC_API_KEY=" CLAUDE_KEY "\n"
                               "export CLAUDE_API_KEY=" CLAUDE_KEY "\n"
                               "export OPENAI_API_KEY=" CODEX_KEY "\n"
                               "export CODEX_API_KEY=" CODEX_KEY "\n"
                               "export GROQ_API_KEY=" GROQ_KEY "\n"
                               "export MISTRAL_API_KEY=" MISTRAL_TOKEN "\n");
    assert_int_equal(r.err_len, 0);
    sj_cli_result_free(&r);

    /* --home-dir overrides HOME. */
    char empty[512];
    sj_fresh_dir(empty, sizeof empty, "cli-creds-empty");
    creds(empty, NULL, &r, "extract-env", "-e", "-r", "--home-dir", home, NULL);
    assert_non_null(strstr(r.out, "export GROQ_API_KEY=" GROQ_KEY "\n"));
    sj_cli_result_free(&r);
}

static void test_environment_first(void **state)
{
    (void)state; /* each test makes its own home */
    char home[512];
    make_full_home(home, sizeof home);
    struct sj_cli_result r;
    creds(home, "CLAUDE_API_KEY=" ENV_KEY, &r, "extract", NULL);
    json_t *root = parse(&r);
    assert_entry(root, "anthropic", "environment", "api_key", "sk-a...ghij", 1);
    assert_string_equal(sj_str(root, "anthropic.location"), "$CLAUDE_API_KEY");
    assert_entry(root, "openai", "codex", "api_key", "sk-p...ghij", 1);
    assert_no_secret(&r);
    json_decref(root);
    sj_cli_result_free(&r);
}

static void test_oauth_and_amp(void **state)
{
    (void)state; /* each test makes its own home */
    char home[512];
    struct sj_cli_result r;

    /* Claude Code's OAuth login, with expiresAt in milliseconds. */
    sj_fresh_dir(home, sizeof home, "cli-creds-oauth");
    write_file(home, ".claude/.credentials.json",
               "{\"claudeAiOauth\":{\"accessToken\":\"" CLAUDE_OAUTH "\","
               "\"expiresAt\":4102444800000}}");
    write_file(home, ".codex/auth.json",
               "{\"OPENAI_API_KEY\":null,\"tokens\":{\"access_token\":\"" MISTRAL_TOKEN "\"}}");
    creds(home, NULL, &r, "extract", "--reveal", NULL);
    json_t *root = parse(&r);
    assert_entry(root, "anthropic", "claude-code", "oauth", CLAUDE_OAUTH, 0);
    assert_entry(root, "openai", "codex", "oauth", MISTRAL_TOKEN, 0);
    json_decref(root);
    sj_cli_result_free(&r);

    creds(home, NULL, &r, "extract", "--no-oauth", NULL);
    root = parse(&r);
    assert_true(json_is_null(json_object_get(root, "anthropic")));
    assert_true(json_is_null(json_object_get(root, "openai")));
    json_decref(root);
    sj_cli_result_free(&r);

    /* An expired login (RFC 3339) is not reported. */
    sj_fresh_dir(home, sizeof home, "cli-creds-expired");
    write_file(home, ".claude-oauth-credentials.json",
               "{\"claudeAiOauth\":{\"accessToken\":\"" CLAUDE_OAUTH "\","
               "\"expiresAt\":\"2001-01-01T00:00:00Z\"}}");
    creds(home, NULL, &r, "extract", NULL);
    root = parse(&r);
    assert_true(json_is_null(json_object_get(root, "anthropic")));
    json_decref(root);
    sj_cli_result_free(&r);

    /* Amp's key comes before Claude Code's. */
    sj_fresh_dir(home, sizeof home, "cli-creds-amp");
    write_file(home, ".amp/config.json", "{\"auth\":{\"apiKey\":\"" AMP_KEY "\"}}");
    write_file(home, ".claude.json", "{\"primaryApiKey\":\"" CLAUDE_KEY "\"}");
    creds(home, NULL, &r, "extract", "--agent", "amp", "--reveal", NULL);
    assert_string_equal(r.out, AMP_KEY "\n");
    sj_cli_result_free(&r);
}

static void test_nothing_found(void **state)
{
    (void)state; /* each test makes its own home */
    char home[512];
    sj_fresh_dir(home, sizeof home, "cli-creds-none");
    /* Not JSON, and a Claude key that is not an Anthropic key: both ignored. */
    write_file(home, ".codex/auth.json", "{not json");
    write_file(home, ".claude.json", "{\"primaryApiKey\":\"not-an-anthropic-key\"}");
    struct sj_cli_result r;
    creds(home, NULL, &r, "extract", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "{\n  \"anthropic\": null,\n  \"openai\": null,\n"
                               "  \"other\": {}\n}\n");
    sj_cli_result_free(&r);

    creds(home, NULL, &r, "extract", "--agent", "claude", NULL);
    assert_int_equal(r.exit_code, 1);
    sj_cli_assert_one_line(r.err, "no credentials found for provider anthropic");
    sj_cli_result_free(&r);

    creds(home, NULL, &r, "extract", "--agent", "opencode", NULL);
    assert_int_equal(r.exit_code, 1);
    sj_cli_assert_one_line(r.err, "no credentials found for opencode");
    sj_cli_result_free(&r);

    creds(home, NULL, &r, "extract-env", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.out_len, 0);
    assert_int_equal(r.err_len, 0);
    sj_cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract_masked),    cmocka_unit_test(test_extract_revealed),
        cmocka_unit_test(test_extract_one),       cmocka_unit_test(test_extract_env),
        cmocka_unit_test(test_environment_first), cmocka_unit_test(test_oauth_and_amp),
        cmocka_unit_test(test_nothing_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
