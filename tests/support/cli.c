/* Spawning the sandbox-journal command line for integration tests; see
 * cli.h. */
/* posix_openpt, grantpt, unlockpt and ptsname are XSI. */
#define _XOPEN_SOURCE 700
#include "cli.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct sj_cli_proc {
    pid_t pid;
    int fd[2];         /* stdout, stderr read ends; -1 once at EOF */
    char *buf[2];
    size_t len[2], cap[2];
};

static int64_t sj_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sj_cli_append(struct sj_cli_proc *p, int which, const char *data, size_t n)
{
    if (p->len[which] + n + 1 > p->cap[which]) {
        size_t cap = p->cap[which] ? p->cap[which] : 4096;
        while (cap < p->len[which] + n + 1)
            cap *= 2;
        char *b = realloc(p->buf[which], cap);
        if (!b)
            fail_msg("out of memory capturing output");
        p->buf[which] = b;
        p->cap[which] = cap;
    }
    memcpy(p->buf[which] + p->len[which], data, n);
    p->len[which] += n;
    p->buf[which][p->len[which]] = '\0';
}

/* The child's environment: ours, edited by `env`.  new: the array and its
 * strings (free with sj_cli_free_env). */
static char **sj_cli_make_env(const char *const *env)
{
    size_t n = 0, extra = 0;
    while (environ[n])
        n++;
    while (env && env[extra])
        extra++;
    char **out = calloc(n + extra + 1, sizeof *out);
    if (!out)
        fail_msg("out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t name_len = strcspn(environ[i], "=");
        int edited = 0;
        for (size_t e = 0; e < extra; e++)
            if (strncmp(env[e], environ[i], name_len) == 0 &&
                (env[e][name_len] == '=' || env[e][name_len] == '\0'))
                edited = 1;
        if (!edited)
            out[k++] = strdup(environ[i]);
    }
    for (size_t e = 0; e < extra; e++)
        if (strchr(env[e], '='))
            out[k++] = strdup(env[e]);
    for (size_t i = 0; i < k; i++)
        if (!out[i])
            fail_msg("out of memory");
    return out;
}

static void sj_cli_free_env(char **env)
{
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

static void sj_cli_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        fail_msg("pipe: %s", strerror(errno));
    /* Other children (servers) must not inherit these, or EOF never comes. */
    for (int i = 0; i < 2; i++)
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0)
            fail_msg("fcntl: %s", strerror(errno));
}

/* Spawns `bin`; with tty_fd >= 0 its stdout is that terminal instead of a
 * pipe, and stdout is read from `tty_master`. */
static struct sj_cli_proc *sj_cli_spawn_on(const char *bin, int search_path,
                                           const char *const *args, const char *const *env,
                                           int tty_fd, int tty_master)
{
    size_t nargs = 0;
    while (args[nargs])
        nargs++;
    char **argv = calloc(nargs + 2, sizeof *argv);
    if (!argv)
        fail_msg("out of memory");
    argv[0] = (char *)bin;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = (char *)args[i];

    struct sj_cli_proc *p = calloc(1, sizeof *p);
    if (!p)
        fail_msg("out of memory");
    int out[2] = { tty_master, tty_fd }, err[2];
    if (tty_fd < 0)
        sj_cli_pipe(out);
    sj_cli_pipe(err);
    char **envp = sj_cli_make_env(env);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
    int rc = search_path ? posix_spawnp(&p->pid, bin, &fa, NULL, argv, envp)
                         : posix_spawn(&p->pid, bin, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    sj_cli_free_env(envp);
    free(argv);
    /* Our copy of the child's ends goes, so its exit is our EOF (EIO on a
     * terminal's master side). */
    close(out[1]);
    close(err[1]);
    if (rc != 0)
        fail_msg("cannot start %s: %s", bin, strerror(rc));
    p->fd[0] = out[0];
    p->fd[1] = err[0];
    sj_cli_append(p, 0, "", 0);
    sj_cli_append(p, 1, "", 0);
    return p;
}

static struct sj_cli_proc *sj_cli_spawn(const char *bin, int search_path,
                                        const char *const *args, const char *const *env)
{
    return sj_cli_spawn_on(bin, search_path, args, env, -1, -1);
}

struct sj_cli_proc *sj_cli_start(const char *const *args, const char *const *env)
{
    const char *bin = getenv("SJ_BINARY");
    if (!bin || !*bin)
        fail_msg("SJ_BINARY is not set");
    return sj_cli_spawn(bin, 0, args, env);
}

struct sj_cli_proc *sj_cli_start_program(const char *program, const char *const *args,
                                         const char *const *env)
{
    return sj_cli_spawn(program, 1, args, env);
}

/* Reads what is available within `wait_ms`.  Returns 0 once both pipes
 * are at EOF. */
static int sj_cli_pump(struct sj_cli_proc *p, int wait_ms)
{
    struct pollfd pfd[2];
    int n = 0, map[2];
    for (int i = 0; i < 2; i++) {
        if (p->fd[i] < 0)
            continue;
        pfd[n].fd = p->fd[i];
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        map[n++] = i;
    }
    if (n == 0)
        return 0;
    int r = poll(pfd, (nfds_t)n, wait_ms);
    if (r < 0 && errno != EINTR)
        fail_msg("poll: %s", strerror(errno));
    for (int k = 0; r > 0 && k < n; k++) {
        if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        char chunk[8192];
        ssize_t got = read(pfd[k].fd, chunk, sizeof chunk);
        if (got > 0) {
            sj_cli_append(p, map[k], chunk, (size_t)got);
        } else if (got == 0 || errno != EINTR) {
            close(p->fd[map[k]]);
            p->fd[map[k]] = -1;
        }
    }
    return p->fd[0] >= 0 || p->fd[1] >= 0;
}

int sj_cli_wait_for(struct sj_cli_proc *p, const char *needle, int timeout_ms)
{
    int64_t deadline = sj_cli_now_ms() + timeout_ms;
    for (;;) {
        if (strstr(p->buf[0], needle))
            return 1;
        int64_t left = deadline - sj_cli_now_ms();
        if (left <= 0 || p->fd[0] < 0)
            return 0;
        sj_cli_pump(p, (int)(left < 100 ? left : 100));
    }
}

const char *sj_cli_stdout(const struct sj_cli_proc *p)
{
    return p->buf[0];
}

void sj_cli_signal(struct sj_cli_proc *p, int sig)
{
    if (kill(p->pid, sig) != 0)
        fail_msg("kill: %s", strerror(errno));
}

void sj_cli_finish(struct sj_cli_proc *p, int timeout_ms, struct sj_cli_result *r)
{
    int64_t deadline = sj_cli_now_ms() + timeout_ms;
    int status = 0, reaped = 0, timed_out = 0;
    for (;;) {
        int64_t left = deadline - sj_cli_now_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        int open = sj_cli_pump(p, (int)(left < 50 ? left : 50));
        if (!reaped) {
            pid_t w = waitpid(p->pid, &status, WNOHANG);
            if (w == p->pid)
                reaped = 1;
            else if (w < 0 && errno != EINTR)
                fail_msg("waitpid: %s", strerror(errno));
        }
        if (reaped && !open)
            break;
    }
    if (timed_out) {
        if (!reaped) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
        }
        fprintf(stderr, "command still running after %d ms; stdout so far:\n%s\nstderr:\n%s\n",
                timeout_ms, p->buf[0], p->buf[1]);
    }
    for (int i = 0; i < 2; i++)
        if (p->fd[i] >= 0)
            close(p->fd[i]);
    memset(r, 0, sizeof *r);
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    r->out = p->buf[0];
    r->out_len = p->len[0];
    r->err = p->buf[1];
    r->err_len = p->len[1];
    free(p);
    if (timed_out)
        fail_msg("the command did not finish in time");
}

void sj_cli_run(const char *const *args, const char *const *env, struct sj_cli_result *r)
{
    sj_cli_finish(sj_cli_start(args, env), SJ_CLI_TIMEOUT_MS, r);
}

void sj_cli_run_tty(const char *const *args, const char *const *env, struct sj_cli_result *r)
{
    const char *bin = getenv("SJ_BINARY");
    if (!bin || !*bin)
        fail_msg("SJ_BINARY is not set");
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
        fail_msg("no pseudo-terminal: %s", strerror(errno));
    const char *name = ptsname(master);
    int slave = name ? open(name, O_RDWR | O_NOCTTY) : -1;
    if (slave < 0)
        fail_msg("cannot open %s: %s", name ? name : "the terminal", strerror(errno));
    if (fcntl(master, F_SETFD, FD_CLOEXEC) != 0 || fcntl(slave, F_SETFD, FD_CLOEXEC) != 0)
        fail_msg("fcntl: %s", strerror(errno));
    sj_cli_finish(sj_cli_spawn_on(bin, 0, args, env, slave, master), SJ_CLI_TIMEOUT_MS, r);
    size_t k = 0;
    for (size_t i = 0; i < r->out_len; i++)
        if (!(r->out[i] == '\r' && i + 1 < r->out_len && r->out[i + 1] == '\n'))
            r->out[k++] = r->out[i];
    r->out[k] = '\0';
    r->out_len = k;
}

void sj_cli_result_free(struct sj_cli_result *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

size_t sj_cli_count_lines(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

void sj_cli_assert_one_line(const char *s, const char *needle)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || s[len - 1] != '\n' || sj_cli_count_lines(s) != 1 || !strstr(s, needle))
        fail_msg("expected one line containing '%s', got '%s'", needle, s ? s : "(null)");
}

void sj_cli_dump(const char *what, const struct sj_cli_result *r)
{
    fprintf(stderr, "%s: exit %d (signal %d)\n--- stdout\n%s--- stderr\n%s---\n", what,
            r->exit_code, r->term_signal, r->out ? r->out : "", r->err ? r->err : "");
}
