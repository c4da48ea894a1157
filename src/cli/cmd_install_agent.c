/* `sandbox-journal install-agent <agent>`: installs the pinned version of an
 * agent CLI (agents/manifest.def) with npm where the server looks for it,
 * the same code path as POST /v1/agents/{agent}/install. */
#include "base/datadir.h"
#include "cli/cmd.h"
#include "base/err.h"
#include "agents/install.h"
#include "base/opts.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char cmd_install_agent_usage[] =
    "usage: sandbox-journal install-agent <agent> [--reinstall] [--data-dir DIR]\n"
    "                                     [--agents-dir DIR] [--npm PATH]\n"
    "\n"
    "Installs the pinned version of an agent CLI with npm, where the server looks\n"
    "for it: <agents dir>/<agent>/node_modules/.bin/<binary>.  Does nothing when\n"
    "that version is already there, unless --reinstall.\n"
    "\n"
    "agents and pinned versions:\n"
    "%s"
    "\n"
    "options:\n"
    "      --reinstall       install again even if the pinned version is there\n"
    "      --data-dir DIR    the server's data directory (default\n"
    "                        $XDG_DATA_HOME/sandbox-journal or\n"
    "                        ~/.local/share/sandbox-journal)\n"
    "      --agents-dir DIR  where agents are installed (default <data dir>/agents)\n"
    "      --npm PATH        the npm to run (default: npm on PATH)\n";

static void cmd_install_agent_help(void)
{
    char list[512] = "";
    static const char *const agents[] = { "claude", "codex", "opencode", "amp" };
    size_t used = 0;
    for (size_t i = 0; i < sizeof agents / sizeof agents[0]; i++) {
        const struct install_package *p = install_package_for(agents[i]);
        if (!p)
            continue;
        int n = snprintf(list + used, sizeof list - used, "  %-8s %s@%s\n", p->agent,
                         p->package, p->version);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    printf(cmd_install_agent_usage, list);
}

int cmd_install_agent(int argc, char **argv)
{
    const char *agent = NULL, *data_dir = NULL, *agents_dir = NULL, *npm = NULL;
    int reinstall = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int missing = 0;
        if (opts_match(argc, argv, &i, "--reinstall", NULL, 0, &v, &missing)) {
            reinstall = 1;
        } else if (opts_match(argc, argv, &i, "--data-dir", NULL, 1, &v, &missing)) {
            data_dir = v;
        } else if (opts_match(argc, argv, &i, "--agents-dir", NULL, 1, &v, &missing)) {
            agents_dir = v;
        } else if (opts_match(argc, argv, &i, "--npm", NULL, 1, &v, &missing)) {
            npm = v;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cmd_install_agent_help();
            return 0;
        } else if (argv[i][0] == '-') {
            return opts_fail("unknown install-agent option '%s' (see 'sandbox-journal "
                             "install-agent --help')",
                             argv[i]);
        } else if (!agent) {
            agent = argv[i];
        } else {
            return opts_fail("install-agent takes one agent, not '%s' too", argv[i]);
        }
        if (missing)
            return opts_fail("%s needs a value", argv[i]);
    }
    if (!agent)
        return opts_fail("missing agent (see 'sandbox-journal install-agent --help')");
    if (strcmp(agent, "mock") == 0) {
        puts("mock is built in: nothing to install");
        return 0;
    }
    if (!install_package_for(agent))
        return opts_fail("no installable agent '%s' (claude, codex, opencode and amp are)", agent);

    char dir[PATH_MAX];
    if (agents_dir) {
        if (snprintf(dir, sizeof dir, "%s", agents_dir) >= (int)sizeof dir)
            return opts_fail("--agents-dir is too long");
    } else {
        char data[PATH_MAX];
        if (data_dir) {
            if (snprintf(data, sizeof data, "%s", data_dir) >= (int)sizeof data)
                return opts_fail("--data-dir is too long");
        } else if (datadir_path(NULL, NULL, data, sizeof data) != 0) {
            return opts_fail("cannot find a data directory: set --data-dir, XDG_DATA_HOME "
                             "or HOME");
        }
        if (snprintf(dir, sizeof dir, "%s/agents", data) >= (int)sizeof dir)
            return opts_fail("--data-dir is too long");
    }

    struct install_options o = { .reinstall = reinstall, .progress_fd = STDERR_FILENO,
                                 .npm = npm };
    struct install_info info;
    struct err err;
    err_clear(&err);
    if (install_agent(dir, agent, &o, &info, &err) != 0) {
        fprintf(stderr, "sandbox-journal: %s\n", err.msg);
        return 1;
    }
    printf("%s %s installed: %s\n", agent, info.version[0] ? info.version : "(unknown version)",
           info.path);
    return 0;
}
