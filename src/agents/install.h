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
 * The server installs in the background (install_start()): each install
 * runs on a thread of its own, one per agent at a time (a second request
 * for an agent being installed joins the running install), different
 * agents in parallel, so no HTTP worker waits for npm.  install_stop()
 * kills them at shutdown.  The command line calls install_agent().
 *
 * install_status() and install_agent() block (file system, npm): the
 * command line, a job's thread, never the supervisor loop. */
#ifndef SJ_INSTALL_H
#define SJ_INSTALL_H

#include "base/buf.h"
#include "base/err.h"

#include <limits.h>
#include <stddef.h>

/* One pinned package.  Strings are static. */
struct install_package {
    const char *agent;   /* "claude" */
    const char *package; /* "@anthropic-ai/claude-code" */
    const char *version; /* "2.1.197" */
    const char *binary;  /* "claude" */
    /* A second package installed beside it, "name@version", or "" (pi-acp
     * runs the `pi` of @mariozechner/pi-coding-agent).  The install is
     * pinned only when both are there at their versions. */
    const char *with;
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

/* Runs argv (argv[0] looked up on PATH) with stdin from /dev/null and the
 * server's environment, killed after timeout_ms; the last few KiB of its
 * stdout and stderr are appended to *tail, *status gets the wait status.
 * 0, or -1 with errno (spawn failure, ETIMEDOUT).  Blocks: never on the
 * supervisor loop. */
int install_run_command(const char *const *argv, int timeout_ms, struct buf *tail,
                        int *status);

/* Looks for the agent's binary: the pinned install under agents_dir, then
 * PATH.  Fills *out (zeroed first).  0 whether or not it was found;
 * ERR_INVALID for an agent without a package. */
int install_status(const char *agents_dir, const char *agent, struct install_info *out,
                   struct err *err);

/* Only the binary (no version): the pinned install under agents_dir if it
 * is there, else PATH.  1 if found (path in out[PATH_MAX]), 0 if not. */
int install_find_binary(const char *agents_dir, const char *agent, char out[PATH_MAX]);

/* Agents run as a command of their own (an ACP agent the server was told
 * about, or one no package is pinned for): `command` itself when it holds a
 * '/', else the first executable of that name on PATH.  1 if found (path in
 * out[PATH_MAX]), 0 if not. */
int install_find_command(const char *command, char out[PATH_MAX]);

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
 * ERR_INVALID for an agent without a package.  May take minutes.  Thread:
 * one install of an agent at a time (the command line's only thread). */
int install_agent(const char *agents_dir, const char *agent, const struct install_options *o,
                  struct install_info *out, struct err *err);

/* ---- background installs (the server) ---- */

struct install_job;

/* Starts installing `agent` on a thread of its own, or joins the install
 * of it already running (whatever that one's options).  *job_out NULL:
 * nothing to do under the options, judged from the files alone (no binary
 * runs), else new: a reference, dropped with install_job_release().
 * o->progress_fd and o->npm are ignored (npm from PATH, output captured).
 * ERR_INVALID (no package), ERR_INSTALL_FAILED (after install_stop(), no
 * thread), ERR_NOMEM.  Never waits for npm.  Thread: any. */
int install_start(const char *agents_dir, const char *agent, const struct install_options *o,
                  struct install_job **job_out, struct err *err);

/* Asks for notify(arg) once when `job` ends, called on the job's thread.
 * 0: registered; 1: the job has ended already (notify is not called);
 * -1: out of memory (not registered).  Thread: any. */
int install_job_notify(struct install_job *job, void (*notify)(void *arg), void *arg);

/* The result of an ended job: 0, or its error code with *err filled as
 * install_agent() would.  ERR_INTERNAL if it is still running. */
int install_job_result(struct install_job *job, struct err *err);

void install_job_release(struct install_job *job);

/* Shutdown: refuses new installs, kills the process group of every running
 * npm and waits until each job has ended, removed its staging directory
 * and run its notifications (so nothing calls back after this returns).
 * Takes as long as removing a staging tree, not as long as npm. */
void install_stop(void);

#endif
