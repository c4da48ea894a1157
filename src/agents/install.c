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
#define AGENT_PACKAGE(agent, package, version, binary) { #agent, package, version, binary },
#include "agents/manifest.def"
#undef AGENT_PACKAGE
};

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

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

int install_agent_dir(const char *agents_dir, const char *agent, char *out, size_t size,
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

/* Runs argv with the process environment.  When `show_fd` is a terminal the
 * child writes to it directly; otherwise its stdout and stderr are read
 * here, kept in `tail` and copied to show_fd if >= 0.  *status gets the
 * wait status.  0, or -1 with errno (spawn failure) or ETIMEDOUT. */
static int install_run(const char *const *argv, int show_fd, int timeout_ms, struct buf *tail,
                       int *status)
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
    if (!rc)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
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
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (timed_out || install_now_ms() >= deadline) {
            timed_out = 1;
            kill(pid, SIGKILL);
            if (waitpid(pid, status, 0) < 0)
                return -1;
            break;
        }
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
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

/* The version a binary reports with --version: the first token that starts
 * with a digit ("2.1.197 (Claude Code)", "codex-cli 0.169.0").  1 if found. */
static int install_version_by_running(const char *binary, char *out, size_t size)
{
    const char *argv[] = { binary, "--version", NULL };
    struct buf tail;
    int status = 0, found = 0;
    buf_init(&tail);
    if (install_run(argv, -1, INSTALL_VERSION_TIMEOUT_MS, &tail, &status) == 0 &&
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
        out->pinned = strcmp(out->version, pkg->version) == 0;
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
                       const struct install_options *o, struct err *err)
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
                           "--no-update-notifier", "--loglevel=error", spec, NULL };
    if (o->progress_fd >= 0) {
        char line[512];
        int n = snprintf(line, sizeof line, "installing %s (%s) with %s...\n", pkg->agent,
                         spec, npm);
        if (n > 0 && write(o->progress_fd, line, (size_t)n) < 0)
            n = 0; /* progress is best effort */
    }
    struct buf tail;
    buf_init(&tail);
    int status = 0;
    int rc = install_run(argv, o->progress_fd, INSTALL_TIMEOUT_MS, &tail, &status);
    char reason[200];
    install_reason(&tail, reason, sizeof reason);
    if (rc != 0) {
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

int install_agent(const char *agents_dir, const char *agent, const struct install_options *o,
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

    pthread_mutex_lock(&install_lock);
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
    rc = install_npm(pkg, staging, o, err);
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
    pthread_mutex_unlock(&install_lock);
    if (rc == 0 && out)
        *out = info;
    return rc;
}
