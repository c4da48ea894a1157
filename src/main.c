/* The sandbox-journal command line: one command per file (src/cmd_*.c),
 * listed in src/commands.def. */
#include "cli/cmd.h"
#include "base/opts.h"

#include <stdio.h>
#include <string.h>

struct main_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static const struct main_command main_commands[] = {
#define COMMAND(name, summary) { #name, summary, cmd_##name },
#include "cli/commands.def"
#undef COMMAND
};

/* Command names with a dash ("install-agent") are C identifiers with an
 * underscore in commands.def; both spellings are accepted. */
static int main_name_is(const char *table_name, const char *arg)
{
    for (; *table_name && *arg; table_name++, arg++)
        if (*table_name != *arg && !(*table_name == '_' && *arg == '-'))
            return 0;
    return *table_name == *arg;
}

static void main_help(FILE *out)
{
    fputs("usage: sandbox-journal <command> [options]\n\ncommands:\n", out);
    for (size_t i = 0; i < sizeof main_commands / sizeof main_commands[0]; i++)
    {
        char name[32];
        snprintf(name, sizeof name, "%s", main_commands[i].name);
        for (char *p = name; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(out, "  %-16s %s\n", name, main_commands[i].summary);
    }
    fputs("  help             show this text (also -h, --help)\n"
          "  version          print the version (also --version)\n"
          "\n'sandbox-journal <command> --help' describes a command's options.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return opts_fail("missing command (see 'sandbox-journal help')");
    const char *cmd = argv[1];
    for (size_t i = 0; i < sizeof main_commands / sizeof main_commands[0]; i++)
        if (main_name_is(main_commands[i].name, cmd))
            return main_commands[i].run(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        main_help(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        puts("sandbox-journal " SJ_VERSION);
        return 0;
    }
    return opts_fail("unknown command '%s' (see 'sandbox-journal help')", cmd);
}
