/* Installing the agent CLIs and finding them.
 *
 * Each agent that runs as a CLI is one npm package pinned in
 * agents/manifest.def.  It is installed with the system's npm into
 *
 *     <agents dir>/<agent>/node_modules/...      (npm --prefix <agents dir>/<agent>)
 *
 * where <agents dir> is --agents-dir, by default <data dir>/agents.  An
 * install goes to a staging directory next to it first and is renamed into
 * place only when npm succeeded, so a failed or interrupted install never
 * leaves a half-installed agent that looks installed.
 *
 * Finding an agent (install_status): the pinned install above first, then
 * the binary on PATH (an agent the machine already has counts as
 * installed).  Nothing is cached: every call looks at what is really there.
 *
 * Every function may block (file system, npm) and is meant for an HTTP
 * worker or the command line, never the supervisor loop.  Thread: any;
 * installs are serialized by a process-wide lock. */
#ifndef SJ_INSTALL_H
#define SJ_INSTALL_H

#include "base/err.h"

#include <limits.h>
#include <stddef.h>

/* One pinned package.  Strings are static. */
struct install_package {
    const char *agent;   /* "claude" */
    const char *package; /* "@anthropic-ai/claude-code" */
    const char *version; /* "2.1.197" */
    const char *binary;  /* "claude" */
};

/* borrowed (static): the pinned package of `agent`, or NULL for agents
 * that are not installed with npm (the mock, agents without an adapter). */
const struct install_package *install_package_for(const char *agent);

/* What is really there for one agent. */
struct install_info {
    int installed;          /* a runnable binary was found */
    int pinned;             /* it is our install of the pinned version */
    char path[PATH_MAX];    /* the binary ("" if not installed) */
    char version[64];       /* its version ("" if unknown) */
};

/* Writes <agents_dir>/<agent> into out[size].  ERR_INVALID if too long. */
int install_agent_dir(const char *agents_dir, const char *agent, char *out, size_t size,
                      struct err *err);

/* Looks for the agent's binary: the pinned install under agents_dir, then
 * PATH.  Fills *out (zeroed first).  0 whether or not it was found;
 * ERR_INVALID for an agent without a package. */
int install_status(const char *agents_dir, const char *agent, struct install_info *out,
                   struct err *err);

/* Only the binary (no version): the pinned install under agents_dir if it
 * is there, else PATH.  1 if found (path in out[PATH_MAX]), 0 if not. */
int install_find_binary(const char *agents_dir, const char *agent, char out[PATH_MAX]);

struct install_options {
    int reinstall;     /* install even if the pinned version is there */
    int if_missing;    /* do nothing if any binary is found (PATH counts) */
    int progress_fd;   /* -1: capture npm's output (HTTP); else show progress on
                        * this descriptor (npm's own output on a terminal) */
    const char *npm;   /* the npm to run; NULL: "npm" from PATH */
};

/* Installs the pinned version of `agent` under agents_dir unless it is
 * already there (see the options), creating directories as needed.  Fills
 * *out (may be NULL) with the result.  ERR_INSTALL_FAILED with a one-line
 * reason (npm missing, npm's last error line, a file system error),
 * ERR_INVALID for an agent without a package.  May take minutes. */
int install_agent(const char *agents_dir, const char *agent, const struct install_options *o,
                  struct install_info *out, struct err *err);

#endif
