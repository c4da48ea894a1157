/* adapters/acp_home.c for Gemini CLI: the private HOME's settings (usage
 * statistics, telemetry and the update check off, a user's file kept),
 * GEMINI_MODEL from the session's model, and the chat files moved off the
 * names a starting Gemini CLI 0.61.0 appends to (else a session loaded in
 * the minute it began is hidden; see acp_home.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "adapters/acp_home.h"
#include "agents/agent_env.h"
#include "base/datadir.h"
#include "base/err.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fresh_dir(char *out, size_t size, const char *tag)
{
    static unsigned counter;
    const char *base = getenv("SJ_TEST_TMPDIR");
    snprintf(out, size, "%s/unit-acphome-%s-%ld-%u", base && *base ? base : "/tmp", tag,
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

static int exists(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* The value of NAME in the finished environment, or NULL. */
static const char *env_value(char *const *vars, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; vars && vars[i]; i++)
        if (strncmp(vars[i], name, n) == 0 && vars[i][n] == '=')
            return vars[i] + n + 1;
    return NULL;
}

static void prepare(const char *home, const char *model, struct agent_env *env)
{
    struct err err;
    agent_env_init(env);
    assert_int_equal(adapter_acp_home_prepare("gemini", "/nowhere/gemini", home, model, env,
                                              &err),
                     0);
}

static void test_gemini_settings_and_model(void **state)
{
    (void)state;
    char home[512];
    fresh_dir(home, sizeof home, "settings");
    struct agent_env env;
    struct err err;
    prepare(home, "fake-model", &env);
    char *const *vars = agent_env_finish(&env, &err);
    assert_non_null(vars);
    assert_string_equal(env_value(vars, "GEMINI_MODEL"), "fake-model");
    assert_string_equal(env_value(vars, "GEMINI_CLI_NO_RELAUNCH"), "true");
    agent_env_free(&env);
    char path[1024];
    snprintf(path, sizeof path, "%s/.gemini/settings.json", home);
    json_t *settings = json_load_file(path, 0, NULL);
    assert_non_null(settings);
    assert_true(json_is_false(json_object_get(json_object_get(settings, "privacy"),
                                              "usageStatisticsEnabled")));
    assert_true(json_is_false(json_object_get(json_object_get(settings, "telemetry"),
                                              "enabled")));
    assert_true(json_is_false(json_object_get(json_object_get(settings, "general"),
                                              "enableAutoUpdate")));
    json_decref(settings);

    /* No model: Gemini CLI's own; a settings file of the user's stays. */
    put(home, ".gemini/settings.json", "{\"mine\":true}\n");
    prepare(home, NULL, &env);
    vars = agent_env_finish(&env, &err);
    assert_non_null(vars);
    assert_null(env_value(vars, "GEMINI_MODEL"));
    agent_env_free(&env);
    settings = json_load_file(path, 0, NULL);
    assert_true(json_is_true(json_object_get(settings, "mine")));
    json_decref(settings);
}

static void test_gemini_chat_files_renamed(void **state)
{
    (void)state;
    char home[512], chats[600];
    fresh_dir(home, sizeof home, "chats");
    snprintf(chats, sizeof chats, "%s/.gemini/tmp/ws/chats", home);
    assert_int_equal(datadir_mkdirs(chats), 0);
    put(chats, "session-2026-12-07T11-52-e14b57cb.jsonl", "history\n");
    put(chats, "session-2026-12-07T11-53-aaaaaaaa.jsonl", "a fresh start\n");
    put(chats, "session-2026-12-07T11-53-r-aaaaaaaa.jsonl", "history\n");
    put(chats, "notes.txt", "other\n");
    struct agent_env env;
    prepare(home, "m", &env);
    agent_env_free(&env);
    /* Moved off the name a new process of that minute would append to. */
    assert_false(exists(chats, "session-2026-12-07T11-52-e14b57cb.jsonl"));
    assert_true(exists(chats, "session-2026-12-07T11-52-r-e14b57cb.jsonl"));
    /* A taken name is never overwritten. */
    assert_true(exists(chats, "session-2026-12-07T11-53-aaaaaaaa.jsonl"));
    char path[1024];
    snprintf(path, sizeof path, "%s/session-2026-12-07T11-53-r-aaaaaaaa.jsonl", chats);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[64] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "history\n");
    assert_true(exists(chats, "notes.txt"));
    /* Renamed once: a second start leaves the names alone. */
    prepare(home, "m", &env);
    agent_env_free(&env);
    assert_true(exists(chats, "session-2026-12-07T11-52-r-e14b57cb.jsonl"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemini_settings_and_model),
        cmocka_unit_test(test_gemini_chat_files_renamed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
