/* Installing agent CLIs with npm and finding them; see install.h.
 *
 * npm runs as a child of the calling thread (posix_spawn + waitpid on its
 * own pid, so libuv's SIGCHLD handling on the supervisor loop never reaps
 * it and we never reap libuv's children).  The server blocks SIGINT and
 * SIGTERM in every thread and ignores SIGPIPE; the child gets an empty
 * signal mask and default dispositions back, or npm could not be stopped.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "base/datadir.h"
#include "agents/install.h"

#include "base/buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define INSTALL_TIMEOUT_MS (15 * 60 * 1000)
#define INSTALL_VERSION_TIMEOUT_MS 5000
#define INSTALL_TAIL_MAX 8192

static const struct install_package install_packages[] = {
#define AGENT_PACKAGE(agent, package, version, binary, with) \
    { #agent, package, version, binary, with },
#include "agents/manifest.def"
#undef AGENT_PACKAGE
};

/* The background installs of the server (see install_start()).  One job
 * per agent at a time: a request for an agent being installed joins its
 * job, whatever its options. */
struct install_waiter {
    void (*notify)(void *arg);
    void *arg;
    struct install_waiter *next;
};

struct install_job {
    char agent[64];
    char agents_dir[PATH_MAX];
    struct install_options o;
    int refs;                       /* install_lock */
    int done;                       /* install_lock */
    int cancelled;                  /* install_lock */
    pid_t pgid;                     /* npm's process group while it runs, else 0; install_lock */
    int rc;                         /* the result, once done */
    struct err err;
    struct install_waiter *waiters; /* install_lock */
    struct install_job *next;       /* in install_jobs while running */
};

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t install_idle = PTHREAD_COND_INITIALIZER;
static struct install_job *install_jobs; /* running jobs; install_lock */
static int install_threads;              /* job threads not yet finished; install_lock */
static int install_stopping;             /* install_stop() was called; install_lock */

const struct install_package *install_package_for(const char *agent)
{
    for (size_t i = 0; i < sizeof install_packages / sizeof install_packages[0]; i++)
        if (strcmp(install_packages[i].agent, agent) == 0)
            return &install_packages[i];
    return NULL;
}

/* ---- paths ------------------------------------------------------------- */

static int install_fmt(char *out, size_t size, struct err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int install_fmt(char *out, size_t size, struct err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        return err_set(err, ERR_INVALID, "path too long under the agents directory");
    return 0;
}

/* Writes <agents_dir>/<agent> into out[size].  ERR_INVALID if too long. */
static int install_agent_dir(const char *agents_dir, const char *agent, char *out, size_t size,
                             struct err *err)
{
    return install_fmt(out, size, err, "%s/%s", agents_dir, agent);
}

static int install_is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The first `name` on PATH that is an executable file.  1 if found. */
static int install_find_in_path(const char *name, char out[PATH_MAX])
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        return 0;
    const char *p = path;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        /* An empty PATH entry means the current directory: never trusted. */
        if (len > 0) {
            int n = snprintf(out, PATH_MAX, "%.*s/%s", (int)len, p, name);
            if (n > 0 && n < PATH_MAX && install_is_executable(out))
                return 1;
        }
        if (!colon)
            return 0;
        p = colon + 1;
    }
}

int install_find_command(const char *command, char out[PATH_MAX])
{
    if (!command || !*command)
        return 0;
    if (strchr(command, '/')) {
        int n = snprintf(out, PATH_MAX, "%s", command);
        if (n > 0 && n < PATH_MAX && install_is_executable(out))
            return 1;
        out[0] = '\0';
        return 0;
    }
    if (install_find_in_path(command, out))
        return 1;
    out[0] = '\0';
    return 0;
}

/* The "version" of package.json at `path` if its "name" is `package`
 * (NULL: any name).  1 if found. */
static int install_read_version(const char *path, const char *package, char *out, size_t size)
{
    json_t *pkg = json_load_file(path, 0, NULL);
    const char *name = json_string_value(json_object_get(pkg, "name"));
    const char *version = json_string_value(json_object_get(pkg, "version"));
    int ok = version && (!package || (name && strcmp(name, package) == 0)) &&
             strlen(version) < size;
    if (ok)
        snprintf(out, size, "%s", version);
    json_decref(pkg);
    return ok;
}

/* Walks up from the binary's real location looking for the package.json of
 * `package` (npm's global and local installs link the binary from inside
 * the package).  1 if found. */
static int install_version_by_package(const char *binary, const char *package, char *out,
                                      size_t size)
{
    char real[PATH_MAX];
    if (!realpath(binary, real))
        return 0;
    for (int depth = 0; depth < 6; depth++) {
        char *slash = strrchr(real, '/');
        if (!slash || slash == real)
            return 0;
        *slash = '\0';
        char pj[PATH_MAX + 16];
        snprintf(pj, sizeof pj, "%s/package.json", real);
        if (install_read_version(pj, package, out, size))
            return 1;
    }
    return 0;
}

/* ---- running a child ----------------------------------------------------- */

static long long install_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keeps the last INSTALL_TAIL_MAX bytes of what the child printed. */
static void install_tail_add(struct buf *tail, const char *data, size_t n)
{
    if (n >= INSTALL_TAIL_MAX) {
        buf_reset(tail);
        data += n - INSTALL_TAIL_MAX;
        n = INSTALL_TAIL_MAX;
    } else if (tail->len + n > INSTALL_TAIL_MAX) {
        buf_consume(tail, tail->len + n - INSTALL_TAIL_MAX);
    }
    if (buf_append(tail, data, n) != 0)
        buf_reset(tail); /* diagnostics only: losing them is not an error */
}

/* Records the running child of `job` (pid 0: none) so install_stop() can
 * kill its process group; kills it at once if the job is already cancelled. */
static void install_job_set_child(struct install_job *job, pid_t pid)
{
    pthread_mutex_lock(&install_lock);
    job->pgid = pid;
    if (pid && job->cancelled && kill(-pid, SIGKILL) != 0)
        fprintf(stderr, "sandbox-journal: cannot stop npm (%d): %s\n", (int)pid,
                strerror(errno));
    pthread_mutex_unlock(&install_lock);
}

/* Runs argv with the process environment.  When `show_fd` is a terminal the
 * child writes to it directly; otherwise its stdout and stderr are read
 * here, kept in `tail` and copied to show_fd if >= 0.  With a `job` (the
 * server's background install) the child leads a process group of its own,
 * which install_stop() and the timeout kill whole (npm runs node and
 * scripts below it).  *status gets the wait status.  0, or -1 with errno
 * (spawn failure) or ETIMEDOUT. */
static int install_run(const char *const *argv, int show_fd, int timeout_ms, struct buf *tail,
                       int *status, struct install_job *job)
{
    int direct = show_fd >= 0 && isatty(show_fd);
    int pipefd[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t empty, defaults;
    pid_t pid;
    int rc;

    if (!direct && pipe(pipefd) != 0)
        return -1;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        rc = errno;
        goto fail_pipe;
    }
    if (posix_spawnattr_init(&attr) != 0) {
        rc = errno;
        posix_spawn_file_actions_destroy(&fa);
        goto fail_pipe;
    }
    sigemptyset(&empty);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    rc = posix_spawnattr_setsigmask(&attr, &empty);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&attr, &defaults);
    if (!rc && job)
        rc = posix_spawnattr_setpgroup(&attr, 0);
    if (!rc)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                 (job ? POSIX_SPAWN_SETPGROUP : 0));
    if (!rc)
        rc = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (!rc && direct) {
        if (show_fd != STDOUT_FILENO)
            rc = posix_spawn_file_actions_adddup2(&fa, show_fd, STDOUT_FILENO);
        if (!rc && show_fd != STDERR_FILENO)
            rc = posix_spawn_file_actions_adddup2(&fa, show_fd, STDERR_FILENO);
    } else if (!rc) {
        rc = posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
        if (!rc)
            rc = posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
        if (!rc)
            rc = posix_spawn_file_actions_addclose(&fa, pipefd[0]);
        if (!rc)
            rc = posix_spawn_file_actions_addclose(&fa, pipefd[1]);
    }
    if (!rc)
        rc = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        goto fail_pipe;
    if (job)
        install_job_set_child(job, pid);

    long long deadline = install_now_ms() + timeout_ms;
    int timed_out = 0;
    if (!direct) {
        close(pipefd[1]);
        pipefd[1] = -1;
        for (;;) {
            long long left = deadline - install_now_ms();
            if (left <= 0) {
                timed_out = 1;
                break;
            }
            struct pollfd p = { .fd = pipefd[0], .events = POLLIN, .revents = 0 };
            int r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
            if (r < 0 && errno != EINTR)
                break;
            if (r <= 0)
                continue;
            char chunk[4096];
            ssize_t n = read(pipefd[0], chunk, sizeof chunk);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break; /* EOF: the child (and its children) closed the pipe */
            install_tail_add(tail, chunk, (size_t)n);
            if (show_fd >= 0) {
                ssize_t off = 0;
                while (off < n) {
                    ssize_t w = write(show_fd, chunk + off, (size_t)(n - off));
                    if (w <= 0)
                        break;
                    off += w;
                }
            }
        }
        close(pipefd[0]);
        pipefd[0] = -1;
    }
    /* Waits without reaping first (WNOWAIT): while the pid is not reaped it
     * cannot be reused, so install_stop() never kills a stranger's group. */
    int wait_failed = 0;
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && si.si_pid == pid)
            break;
        if (r < 0 && errno != EINTR) {
            wait_failed = 1;
            break;
        }
        if (timed_out || install_now_ms() >= deadline) {
            timed_out = 1;
            if (kill(job ? -pid : pid, SIGKILL) != 0 && errno != ESRCH)
                fprintf(stderr, "sandbox-journal: cannot stop %s: %s\n", argv[0],
                        strerror(errno));
            break;
        }
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (job)
        install_job_set_child(job, 0);
    if (wait_failed || waitpid(pid, status, 0) < 0)
        return -1;
    if (timed_out) {
        errno = ETIMEDOUT;
        return -1;
    }
    return 0;

fail_pipe:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    errno = rc;
    return -1;
}

int install_run_command(const char *const *argv, int timeout_ms, struct buf *tail, int *status)
{
    return install_run(argv, -1, timeout_ms, tail, status, NULL);
}

/* The version a binary reports with --version: the first token that starts
 * with a digit ("2.1.197 (Claude Code)", "codex-cli 0.169.0").  1 if found. */
static int install_version_by_running(const char *binary, char *out, size_t size)
{
    const char *argv[] = { binary, "--version", NULL };
    struct buf tail;
    int status = 0, found = 0;
    buf_init(&tail);
    if (install_run(argv, -1, INSTALL_VERSION_TIMEOUT_MS, &tail, &status, NULL) == 0 &&
        WIFEXITED(status) && WEXITSTATUS(status) == 0 && tail.len) {
        const char *p = tail.data;
        while (*p && *p != '\n') {
            while (*p == ' ' || *p == '\t')
                p++;
            size_t n = strcspn(p, " \t\n");
            if (n && *p >= '0' && *p <= '9' && n < size) {
                snprintf(out, size, "%.*s", (int)n, p);
                found = 1;
                break;
            }
            p += n;
        }
    }
    buf_free(&tail);
    return found;
}

/* ---- status --------------------------------------------------------------- */

/* Whether the second package of `pkg` (if any) is under `dir` at its
 * version.  A scoped name's '@' is not the version's. */
static int install_with_pinned(const struct install_package *pkg, const char *dir)
{
    if (!pkg->with[0])
        return 1;
    const char *at = strrchr(pkg->with, '@');
    if (!at || at == pkg->with)
        return 0;
    char name[256], pj[PATH_MAX], version[64];
    if (snprintf(name, sizeof name, "%.*s", (int)(at - pkg->with), pkg->with) >=
            (int)sizeof name ||
        snprintf(pj, sizeof pj, "%s/node_modules/%s/package.json", dir, name) >= (int)sizeof pj)
        return 0;
    return install_read_version(pj, name, version, sizeof version) &&
           strcmp(version, at + 1) == 0;
}

/* Fills *out from the pinned install under `dir` (<agents_dir>/<agent>).  1 if there. */
static int install_pinned_status(const struct install_package *pkg, const char *dir,
                                 struct install_info *out)
{
    char bin[PATH_MAX], pj[PATH_MAX];
    if (snprintf(bin, sizeof bin, "%s/node_modules/.bin/%s", dir, pkg->binary) >=
            (int)sizeof bin ||
        snprintf(pj, sizeof pj, "%s/node_modules/%s/package.json", dir, pkg->package) >=
            (int)sizeof pj)
        return 0;
    if (!install_is_executable(bin))
        return 0;
    out->installed = 1;
    snprintf(out->path, sizeof out->path, "%s", bin);
    if (install_read_version(pj, pkg->package, out->version, sizeof out->version))
        out->pinned = strcmp(out->version, pkg->version) == 0 && install_with_pinned(pkg, dir);
    return 1;
}

int install_status(const char *agents_dir, const char *agent, struct install_info *out,
                   struct err *err)
{
    memset(out, 0, sizeof *out);
    const struct install_package *pkg = install_package_for(agent);
    if (!pkg)
        return err_set_subject(err, ERR_INVALID, agent, "%s is not installed with npm", agent);
    char dir[PATH_MAX];
    int rc = install_agent_dir(agents_dir, agent, dir, sizeof dir, err);
    if (rc)
        return rc;
    if (install_pinned_status(pkg, dir, out))
        return 0;
    if (install_find_in_path(pkg->binary, out->path)) {
        out->installed = 1;
        if (!install_version_by_package(out->path, pkg->package, out->version,
                                        sizeof out->version))
            install_version_by_running(out->path, out->version, sizeof out->version);
        return 0;
    }
    out->path[0] = '\0';
    return 0;
}

int install_find_binary(const char *agents_dir, const char *agent, char out[PATH_MAX])
{
    const struct install_package *pkg = install_package_for(agent);
    if (!pkg)
        return 0;
    int n = snprintf(out, PATH_MAX, "%s/%s/node_modules/.bin/%s", agents_dir, agent,
                     pkg->binary);
    if (n > 0 && n < PATH_MAX && install_is_executable(out))
        return 1;
    if (install_find_in_path(pkg->binary, out))
        return 1;
    out[0] = '\0';
    return 0;
}

/* ---- installing ------------------------------------------------------------ */

static int install_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw; /* the flag says whether it is a directory */
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    return rc != 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf `path`; 0 if it is gone. */
static int install_rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, install_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* 1 if s[0..n) contains `needle`. */
static int install_contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return 1;
    return 0;
}

/* The last line of npm's output that says what went wrong (a line with
 * "ERR" or "error"), or the last non-empty line. */
static void install_reason(const struct buf *tail, char *out, size_t size)
{
    out[0] = '\0';
    if (!tail->len)
        return;
    const char *best = NULL, *last = NULL;
    size_t best_len = 0, last_len = 0;
    const char *p = tail->data, *end = tail->data + tail->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        while (n && (p[n - 1] == '\r' || p[n - 1] == ' '))
            n--;
        if (n) {
            last = p;
            last_len = n;
            /* The first error line is usually the cause; later ones point at logs. */
            if (!best && (install_contains(p, n, "ERR") || install_contains(p, n, "error"))) {
                best = p;
                best_len = n;
            }
        }
        p = nl ? nl + 1 : end;
    }
    if (!best) {
        best = last;
        best_len = last_len;
    }
    if (best)
        snprintf(out, size, "%.*s", (int)best_len, best);
}

/* Runs npm install into `staging`.  0, or ERR_INSTALL_FAILED with a reason. */
static int install_npm(const struct install_package *pkg, const char *staging,
                       const struct install_options *o, struct install_job *job,
                       struct err *err)
{
    char npm[PATH_MAX];
    if (o->npm) {
        if (snprintf(npm, sizeof npm, "%s", o->npm) >= (int)sizeof npm)
            return err_set(err, ERR_INSTALL_FAILED, "npm path too long");
        if (!strchr(npm, '/') && !install_find_in_path(o->npm, npm))
            return err_set_subject(err, ERR_INSTALL_FAILED, pkg->agent,
                                   "install failed: %s not found on PATH", o->npm);
    } else if (!install_find_in_path("npm", npm)) {
        return err_set_subject(err, ERR_INSTALL_FAILED, pkg->agent,
                               "install failed: npm not found on PATH; install Node.js 18+ "
                               "and npm (Debian: apt-get install nodejs npm)");
    }
    char spec[256];
    snprintf(spec, sizeof spec, "%s@%s", pkg->package, pkg->version);
    const char *argv[] = { npm, "install", "--prefix", staging, "--no-audit", "--no-fund",
                           "--no-update-notifier", "--loglevel=error", spec,
                           pkg->with[0] ? pkg->with : NULL, NULL };
    if (o->progress_fd >= 0) {
        char line[512];
        int n = snprintf(line, sizeof line, "installing %s (%s%s%s) with %s...\n", pkg->agent,
                         spec, pkg->with[0] ? " + " : "", pkg->with, npm);
        if (n > 0 && write(o->progress_fd, line, (size_t)n) < 0)
            n = 0; /* progress is best effort */
    }
    struct buf tail;
    buf_init(&tail);
    int status = 0;
    int rc = install_run(argv, o->progress_fd, INSTALL_TIMEOUT_MS, &tail, &status, job);
    char reason[200];
    install_reason(&tail, reason, sizeof reason);
    int cancelled = 0;
    if (job) {
        pthread_mutex_lock(&install_lock);
        cancelled = job->cancelled;
        pthread_mutex_unlock(&install_lock);
    }
    if (cancelled) {
        rc = err_set_subject(err, ERR_INSTALL_FAILED, pkg->agent,
                             "install cancelled: the server is shutting down");
    } else if (rc != 0) {
        rc = err_set_subject(err, ERR_INSTALL_FAILED, pkg->agent, "install failed: %s: %s",
                             npm, errno == ETIMEDOUT ? "timed out" : strerror(errno));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (!reason[0])
            snprintf(reason, sizeof reason, "see npm's output above");
        rc = err_set_subject(err, ERR_INSTALL_FAILED, pkg->agent,
                             "install failed: npm install %s exited with %d (is the npm "
                             "registry reachable?): %s",
                             spec, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                             reason);
    }
    buf_free(&tail);
    return rc;
}

/* install_agent() for the CLI (job NULL) or one background job. */
static int install_agent_run(const char *agents_dir, const char *agent,
                             const struct install_options *o, struct install_job *job,
                             struct install_info *out, struct err *err)
{
    const struct install_package *pkg = install_package_for(agent);
    if (!pkg)
        return err_set_subject(err, ERR_INVALID, agent, "%s is not installed with npm", agent);
    char dir[PATH_MAX], staging[PATH_MAX], old[PATH_MAX];
    int rc = install_agent_dir(agents_dir, agent, dir, sizeof dir, err);
    if (!rc)
        rc = install_fmt(staging, sizeof staging, err, "%s.installing", dir);
    if (!rc)
        rc = install_fmt(old, sizeof old, err, "%s.old", dir);
    if (rc)
        return rc;

    struct install_info info;
    rc = install_status(agents_dir, agent, &info, err);
    if (rc)
        goto done;
    if (!o->reinstall && (info.pinned || (o->if_missing && info.installed)))
        goto done;

    if (datadir_mkdirs(agents_dir) != 0) {
        rc = err_set_subject(err, ERR_INSTALL_FAILED, agent,
                             "install failed: cannot create %s: %s", agents_dir,
                             strerror(errno));
        goto done;
    }
    /* Leftovers of an interrupted install are never trusted. */
    if (install_rm_tree(staging) != 0 || install_rm_tree(old) != 0) {
        rc = err_set_subject(err, ERR_INSTALL_FAILED, agent,
                             "install failed: cannot clear %s: %s", staging, strerror(errno));
        goto done;
    }
    if (datadir_mkdirs(staging) != 0) {
        rc = err_set_subject(err, ERR_INSTALL_FAILED, agent,
                             "install failed: cannot create %s: %s", staging, strerror(errno));
        goto done;
    }
    rc = install_npm(pkg, staging, o, job, err);
    if (rc) {
        if (install_rm_tree(staging) != 0)
            fprintf(stderr, "sandbox-journal: could not remove %s\n", staging);
        goto done;
    }
    struct stat st;
    if (lstat(dir, &st) == 0 && rename(dir, old) != 0) {
        rc = err_set_subject(err, ERR_INSTALL_FAILED, agent, "install failed: rename %s: %s",
                             dir, strerror(errno));
        goto done;
    }
    if (rename(staging, dir) != 0) {
        rc = err_set_subject(err, ERR_INSTALL_FAILED, agent, "install failed: rename %s: %s",
                             staging, strerror(errno));
        if (rename(old, dir) != 0)
            fprintf(stderr, "sandbox-journal: could not restore %s\n", dir);
        goto done;
    }
    if (install_rm_tree(old) != 0)
        fprintf(stderr, "sandbox-journal: could not remove the previous install %s\n", old);
    rc = install_status(agents_dir, agent, &info, err);
    if (rc == 0 && !info.pinned)
        rc = err_set_subject(err, ERR_INSTALL_FAILED, agent,
                             "install failed: npm finished but %s %s is not in %s",
                             pkg->package, pkg->version, dir);
done:
    if (rc == 0 && out)
        *out = info;
    return rc;
}

int install_agent(const char *agents_dir, const char *agent, const struct install_options *o,
                  struct install_info *out, struct err *err)
{
    return install_agent_run(agents_dir, agent, o, NULL, out, err);
}

/* ---- background installs --------------------------------------------------- */

/* Whether the options ask for npm, judged from files only (no binary runs,
 * so a caller on an HTTP worker never waits here).  The job re-checks. */
static int install_needed(const char *agents_dir, const struct install_package *pkg,
                          const struct install_options *o)
{
    if (o->reinstall)
        return 1;
    char dir[PATH_MAX], bin[PATH_MAX];
    struct install_info info;
    memset(&info, 0, sizeof info);
    if (snprintf(dir, sizeof dir, "%s/%s", agents_dir, pkg->agent) < (int)sizeof dir &&
        install_pinned_status(pkg, dir, &info) && info.pinned)
        return 0;
    return !(o->if_missing && install_find_binary(agents_dir, pkg->agent, bin));
}

/* Drops a reference.  install_lock held. */
static void install_job_unref_locked(struct install_job *job)
{
    if (--job->refs == 0)
        free(job);
}

static void *install_job_main(void *arg)
{
    struct install_job *job = arg;
    struct err err;
    err_clear(&err);
    int rc = install_agent_run(job->agents_dir, job->agent, &job->o, job, NULL, &err);

    pthread_mutex_lock(&install_lock);
    job->rc = rc;
    job->err = err;
    job->done = 1;
    for (struct install_job **p = &install_jobs; *p; p = &(*p)->next) {
        if (*p == job) {
            *p = job->next;
            break;
        }
    }
    struct install_waiter *waiters = job->waiters;
    job->waiters = NULL;
    pthread_mutex_unlock(&install_lock);

    /* Outside the lock: a notification may start another install. */
    while (waiters) {
        struct install_waiter *w = waiters;
        waiters = w->next;
        w->notify(w->arg);
        free(w);
    }

    /* Counted down only now, so install_stop() returns after every
     * notification ran (the HTTP layer must resume its connections
     * before it stops). */
    pthread_mutex_lock(&install_lock);
    install_job_unref_locked(job);
    install_threads--;
    pthread_cond_broadcast(&install_idle);
    pthread_mutex_unlock(&install_lock);
    return NULL;
}

int install_start(const char *agents_dir, const char *agent, const struct install_options *o,
                  struct install_job **job_out, struct err *err)
{
    *job_out = NULL;
    const struct install_package *pkg = install_package_for(agent);
    if (!pkg)
        return err_set_subject(err, ERR_INVALID, agent, "%s is not installed with npm", agent);
    if (strlen(agents_dir) >= PATH_MAX)
        return err_set(err, ERR_INVALID, "path too long under the agents directory");

    pthread_mutex_lock(&install_lock);
    int rc = 0;
    struct install_job *job = NULL;
    if (install_stopping) {
        rc = err_set_subject(err, ERR_INSTALL_FAILED, agent,
                             "install cancelled: the server is shutting down");
        goto done;
    }
    for (job = install_jobs; job; job = job->next)
        if (strcmp(job->agent, pkg->agent) == 0)
            break;
    if (job) {
        job->refs++;
        goto done;
    }
    if (!install_needed(agents_dir, pkg, o))
        goto done;
    job = calloc(1, sizeof *job);
    if (!job) {
        rc = err_set(err, ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(job->agent, sizeof job->agent, "%s", pkg->agent);
    snprintf(job->agents_dir, sizeof job->agents_dir, "%s", agents_dir);
    job->o = *o;
    job->o.progress_fd = -1;
    job->o.npm = NULL; /* the server's npm is the one on PATH; o->npm may not outlive us */
    job->refs = 2; /* the caller's and the thread's */
    pthread_attr_t attr;
    pthread_t thread;
    int e = pthread_attr_init(&attr);
    if (!e)
        e = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!e)
        e = pthread_create(&thread, &attr, install_job_main, job);
    pthread_attr_destroy(&attr);
    if (e) {
        free(job);
        job = NULL;
        rc = err_set_subject(err, ERR_INSTALL_FAILED, agent,
                             "install failed: cannot start a thread: %s", strerror(e));
        goto done;
    }
    install_threads++;
    job->next = install_jobs;
    install_jobs = job;
done:
    pthread_mutex_unlock(&install_lock);
    *job_out = job;
    return rc;
}

int install_job_notify(struct install_job *job, void (*notify)(void *arg), void *arg)
{
    struct install_waiter *w = malloc(sizeof *w);
    pthread_mutex_lock(&install_lock);
    int rc = 0;
    if (job->done) {
        rc = 1;
    } else if (!w) {
        rc = -1;
    } else {
        w->notify = notify;
        w->arg = arg;
        w->next = job->waiters;
        job->waiters = w;
        w = NULL;
    }
    pthread_mutex_unlock(&install_lock);
    free(w);
    return rc;
}

int install_job_result(struct install_job *job, struct err *err)
{
    pthread_mutex_lock(&install_lock);
    int rc;
    if (!job->done)
        rc = err_set_subject(err, ERR_INTERNAL, job->agent, "install of %s still running",
                             job->agent);
    else if ((rc = job->rc) != 0 && err)
        *err = job->err;
    pthread_mutex_unlock(&install_lock);
    return rc;
}

void install_job_release(struct install_job *job)
{
    if (!job)
        return;
    pthread_mutex_lock(&install_lock);
    install_job_unref_locked(job);
    pthread_mutex_unlock(&install_lock);
}

void install_stop(void)
{
    pthread_mutex_lock(&install_lock);
    install_stopping = 1;
    for (struct install_job *job = install_jobs; job; job = job->next) {
        job->cancelled = 1;
        if (job->pgid && kill(-job->pgid, SIGKILL) != 0 && errno != ESRCH)
            fprintf(stderr, "sandbox-journal: cannot stop npm for %s: %s\n", job->agent,
                    strerror(errno));
    }
    while (install_threads > 0)
        pthread_cond_wait(&install_idle, &install_lock);
    pthread_mutex_unlock(&install_lock);
}
