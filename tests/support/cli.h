/* Running the sandbox-journal command line from integration tests: the
 * binary in $SJ_BINARY is spawned with its stdin on /dev/null and its
 * stdout and stderr captured separately, in an environment derived from
 * ours.  Every wait is bounded; a process that outlives its bound is
 * SIGKILLed and the test fails. */
#ifndef SJ_TEST_CLI_H
#define SJ_TEST_CLI_H

#include <stddef.h>
#include <sys/types.h>

#define SJ_CLI_TIMEOUT_MS 20000

struct sj_cli_result {
    int exit_code;  /* the exit status, or -1 if killed by a signal */
    int term_signal;/* the signal that ended it, or 0 */
    char *out;      /* stdout, NUL-terminated */
    size_t out_len;
    char *err;      /* stderr, NUL-terminated */
    size_t err_len;
};

/* A running command. */
struct sj_cli_proc;

/* `args` are the arguments after the binary, NULL-terminated.  `env`
 * (NULL-terminated, may be NULL) edits the child's environment: "NAME=value"
 * sets, a bare "NAME" removes.  Fails the test if the process cannot be
 * started. */
struct sj_cli_proc *sj_cli_start(const char *const *args, const char *const *env);

/* Like sj_cli_start for another program (found on PATH), e.g. bash. */
struct sj_cli_proc *sj_cli_start_program(const char *program, const char *const *args,
                                         const char *const *env);

/* Reads output until stdout contains `needle` (returns 1) or timeout_ms
 * pass or the process closes its stdout (returns 0). */
int sj_cli_wait_for(struct sj_cli_proc *p, const char *needle, int timeout_ms);

/* borrowed: stdout captured so far (NUL-terminated). */
const char *sj_cli_stdout(const struct sj_cli_proc *p);

void sj_cli_signal(struct sj_cli_proc *p, int sig);

/* Reads everything until the process exits (at most timeout_ms, then it is
 * killed and the test fails), fills *r and frees `p`. */
void sj_cli_finish(struct sj_cli_proc *p, int timeout_ms, struct sj_cli_result *r);

/* sj_cli_start + sj_cli_finish with SJ_CLI_TIMEOUT_MS. */
void sj_cli_run(const char *const *args, const char *const *env, struct sj_cli_result *r);

/* Like sj_cli_run with stdout on a pseudo-terminal (stderr stays a pipe),
 * for output that differs on a terminal; the terminal's "\r\n" line ends
 * are returned as "\n". */
void sj_cli_run_tty(const char *const *args, const char *const *env, struct sj_cli_result *r);

void sj_cli_result_free(struct sj_cli_result *r);

/* Number of '\n'-terminated lines in `s`. */
size_t sj_cli_count_lines(const char *s);

/* Fails the test unless `s` is exactly one line ending in '\n' that
 * contains `needle`. */
void sj_cli_assert_one_line(const char *s, const char *needle);

/* Prints the result (for a failing test's log). */
void sj_cli_dump(const char *what, const struct sj_cli_result *r);

#endif
