/* Integration tests of the command line's help and bash completion: the
 * committed completions/sandbox-journal.bash is exactly what
 * `sandbox-journal completion bash` prints, bash accepts it and completes
 * commands, options and values with it, it knows every command the help
 * lists, and every command and subcommand answers --help with a usage line
 * and examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The repository's root, found from this file's path (CMake compiles with
 * absolute paths). */
static void repo_path(char *out, size_t size, const char *rel)
{
    const char *file = __FILE__;
    const char *tail = strstr(file, "/tests/integration/");
    if (!tail)
        fail_msg("cannot find the repository from %s", file);
    snprintf(out, size, "%.*s/%s", (int)(tail - file), file, rel);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 16384;
            data = realloc(data, cap);
            assert_non_null(data);
        }
        size_t n = fread(data + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    data[len] = '\0';
    return data;
}

static void test_committed_file_is_current(void **state)
{
    (void)state; /* nothing shared */
    char path[1024];
    repo_path(path, sizeof path, "completions/sandbox-journal.bash");
    char *committed = read_all(path);
    const char *args[] = { "completion", "bash", NULL };
    struct sj_cli_result r;
    sj_cli_run(args, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    if (strcmp(committed, r.out) != 0)
        fprintf(stderr, "completions/sandbox-journal.bash is stale; regenerate it with\n"
                        "  sandbox-journal completion bash > completions/sandbox-journal.bash\n");
    assert_string_equal(committed, r.out);
    free(committed);
    sj_cli_result_free(&r);

    const char *zsh[] = { "completion", "zsh", NULL };
    sj_cli_run(zsh, NULL, &r);
    assert_int_equal(r.exit_code, 2);
    sj_cli_assert_one_line(r.err, "only bash is supported");
    sj_cli_result_free(&r);
}

/* What bash completes for the words (the last is the one being typed). */
static char *complete(const char *path, const char *const *words)
{
    const char *args[24];
    size_t n = 0;
    args[n++] = "-c";
    args[n++] = "source \"$1\" && shift && COMP_WORDS=(\"$@\") && "
                "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )) && _sandbox_journal && "
                "echo \"${COMPREPLY[*]}\"";
    args[n++] = "bash";
    args[n++] = path;
    for (size_t i = 0; words[i] && n + 1 < sizeof args / sizeof args[0]; i++)
        args[n++] = words[i];
    args[n] = NULL;
    struct sj_cli_result r;
    sj_cli_finish(sj_cli_start_program("bash", args, NULL), SJ_CLI_TIMEOUT_MS, &r);
    if (r.exit_code != 0)
        sj_cli_dump("bash", &r);
    assert_int_equal(r.exit_code, 0);
    char *out = r.out;
    r.out = NULL;
    sj_cli_result_free(&r);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

static void assert_completes(const char *path, const char *const *words, const char *want)
{
    char *got = complete(path, words);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "completing:");
        for (size_t i = 0; words[i]; i++)
            fprintf(stderr, " '%s'", words[i]);
        fprintf(stderr, "\n   want: %s\n    got: %s\n", want, got);
    }
    assert_string_equal(got, want);
    free(got);
}

static int have_bash(void)
{
    return access("/bin/bash", X_OK) == 0 || access("/usr/bin/bash", X_OK) == 0;
}

static void test_bash_completes(void **state)
{
    (void)state; /* nothing shared */
    if (!have_bash())
        skip();
    char path[1024];
    repo_path(path, sizeof path, "completions/sandbox-journal.bash");
    {
        /* The commands of commands.def (others may follow ours), then help. */
        const char *w[] = { "sandbox-journal", "", NULL };
        char *got = complete(path, w);
        assert_true(strncmp(got, "server api credentials sessions completion", 42) == 0);
        assert_true(strlen(got) > 13 && strcmp(got + strlen(got) - 13, " help version") == 0);
        free(got);
    }
    {
        const char *w[] = { "sandbox-journal", "cr", NULL };
        assert_completes(path, w, "credentials");
    }
    {
        const char *w[] = { "sandbox-journal", "api", "sessions", "send", NULL };
        assert_completes(path, w, "send-message send-message-stream");
    }
    {
        const char *w[] = { "sandbox-journal", "api", "-e", "http://x", "sessions",
                            "create", "s1", "--permission-mode", "", NULL };
        assert_completes(path, w, "default plan bypass");
    }
    {
        const char *w[] = { "sandbox-journal", "api", "sessions", "reply-permission", "s",
                            "p", "-r", "", NULL };
        assert_completes(path, w, "once always reject");
    }
    {
        const char *w[] = { "sandbox-journal", "api", "sessions", "events", "s", "--", NULL };
        assert_completes(path, w,
                         "--offset --limit --include-raw --endpoint --token --no-token --idempotency-key --help");
    }
    {
        const char *w[] = { "sandbox-journal", "credentials", "extract", "--agent", "c", NULL };
        assert_completes(path, w, "claude codex");
    }
    {
        const char *w[] = { "sandbox-journal", "credentials", "extract-env", "--e", NULL };
        assert_completes(path, w, "--export");
    }
    {
        const char *w[] = { "sandbox-journal", "sessions", "", NULL };
        assert_completes(path, w, "list show tail");
    }
    {
        const char *w[] = { "sandbox-journal", "server", "--durability", "", NULL };
        assert_completes(path, w, "full normal");
    }
}

/* Every command `help` lists and every api command `api --help` lists is
 * known to the completion script. */
static void test_completion_knows_every_command(void **state)
{
    (void)state; /* nothing shared */
    const char *comp_args[] = { "completion", "bash", NULL };
    struct sj_cli_result comp, help;
    sj_cli_run(comp_args, NULL, &comp);
    assert_int_equal(comp.exit_code, 0);

    const char *lists[][3] = { { "help", NULL }, { "api", "--help", NULL } };
    for (size_t l = 0; l < 2; l++) {
        sj_cli_run(lists[l], NULL, &help);
        assert_int_equal(help.exit_code, 0);
        size_t names = 0;
        for (char *line = help.out; line && *line;) {
            char *end = strchr(line, '\n');
            if (end)
                *end = '\0';
            /* Command lines are "  name   summary"; examples are not. */
            if (line[0] == ' ' && line[1] == ' ' && line[2] >= 'a' && line[2] <= 'z' &&
                strncmp(line, "  sandbox-journal ", 18) != 0) {
                char name[64];
                if (sscanf(line, " %63s", name) == 1) {
                    char word[80];
                    snprintf(word, sizeof word, " %s", name);
                    if (!strstr(comp.out, word))
                        fail_msg("the bash completion does not know '%s': add it to "
                                 "src/cmd_completion.c and regenerate "
                                 "completions/sandbox-journal.bash",
                                 name);
                    names++;
                }
            }
            line = end ? end + 1 : NULL;
        }
        assert_true(names >= 5);
        sj_cli_result_free(&help);
    }
    sj_cli_result_free(&comp);
}

static void test_help_everywhere(void **state)
{
    (void)state; /* nothing shared */
    static const char *const cmds[][5] = {
        { "api", NULL },
        { "api", "agents", NULL },
        { "api", "sessions", NULL },
        { "api", "agents", "list", NULL },
        { "api", "agents", "install", NULL },
        { "api", "agents", "modes", NULL },
        { "api", "sessions", "list", NULL },
        { "api", "sessions", "create", NULL },
        { "api", "sessions", "send-message", NULL },
        { "api", "sessions", "send-message-stream", NULL },
        { "api", "sessions", "terminate", NULL },
        { "api", "sessions", "events", NULL },
        { "api", "sessions", "get-messages", NULL },
        { "api", "sessions", "events-sse", NULL },
        { "api", "sessions", "reply-question", NULL },
        { "api", "sessions", "reject-question", NULL },
        { "api", "sessions", "reply-permission", NULL },
        { "api", "fs", NULL },
        { "api", "fs", "ls", NULL },
        { "api", "fs", "cat", NULL },
        { "api", "fs", "put", NULL },
        { "api", "fs", "rm", NULL },
        { "api", "fs", "mkdir", NULL },
        { "api", "fs", "mv", NULL },
        { "api", "fs", "stat", NULL },
        { "api", "fs", "upload", NULL },
        { "credentials", NULL },
        { "credentials", "extract", NULL },
        { "credentials", "extract-env", NULL },
        { "sessions", NULL },
        { "sessions", "list", NULL },
        { "sessions", "show", NULL },
        { "sessions", "tail", NULL },
        { "completion", NULL },
        { "server", NULL },
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        for (int form = 0; form < 2; form++) {
            const char *args[8];
            size_t n = 0;
            for (; cmds[i][n]; n++)
                args[n] = cmds[i][n];
            args[n++] = form ? "-h" : "--help";
            args[n] = NULL;
            struct sj_cli_result r;
            sj_cli_run(args, NULL, &r);
            int ok = r.exit_code == 0 && r.err_len == 0 &&
                     strncmp(r.out, "usage: sandbox-journal ", 23) == 0 &&
                     strstr(r.out, "\nexamples:\n  sandbox-journal ") != NULL;
            if (!ok)
                sj_cli_dump(args[0], &r);
            assert_true(ok);
            /* The usage line names the command it describes. */
            char want[128] = "usage: sandbox-journal";
            for (size_t k = 0; cmds[i][k]; k++) {
                strcat(want, " ");
                strcat(want, cmds[i][k]);
            }
            assert_true(strncmp(r.out, want, strlen(want)) == 0);
            sj_cli_result_free(&r);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_file_is_current),
        cmocka_unit_test(test_bash_completes),
        cmocka_unit_test(test_completion_knows_every_command),
        cmocka_unit_test(test_help_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
