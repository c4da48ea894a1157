/* The supervisor: one libuv loop thread that owns every agent child
 * process, timer and pipe.  Other threads never touch loop handles; they
 * hand work to the loop with supervisor_post(). */
#ifndef SJ_SUPERVISOR_H
#define SJ_SUPERVISOR_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct supervisor supervisor_t;

/* Starts the loop thread.  new: stopped and freed by supervisor_stop(). */
int supervisor_start(supervisor_t **out, struct err *err);

/* Runs `fn(loop, arg)` on the loop thread, in posting order.  Returns
 * ERR_INVALID once the supervisor is stopping (fn will not run) or
 * ERR_NOMEM.  Thread: any. */
int supervisor_post(supervisor_t *s, void (*fn)(uv_loop_t *loop, void *arg), void *arg,
                    struct err *err);

/* Runs `fn` on the loop thread and waits for it to return.  Thread: any but
 * the loop's. */
int supervisor_call(supervisor_t *s, void (*fn)(uv_loop_t *loop, void *arg), void *arg,
                    struct err *err);

/* borrowed: the loop of `s`, for handles made on it and for
 * supervisor_on_loop(); touched on the loop thread only.  Thread: any. */
uv_loop_t *supervisor_loop(supervisor_t *s);

/* 1 on the loop thread of the supervisor that owns `loop`, or on any thread
 * for a loop no supervisor runs (a test's own loop).  For assert()s of the
 * "loop thread only" contracts below.  Thread: any. */
int supervisor_on_loop(const uv_loop_t *loop);

/* ---- timers: loop thread only ------------------------------------------- */

/* A timer the supervisor owns: the owner keeps a pointer, never a handle, so
 * there is no "initialized yet / closed yet" state to track.  An armed timer
 * keeps the loop, and so supervisor_stop(), waiting: owners disarm or free
 * theirs when the server shuts down. */
typedef struct supervisor_timer supervisor_timer_t;

/* new: a disarmed timer that calls fire(arg) on the loop thread.  Freed by
 * supervisor_timer_free() only. */
int supervisor_timer_new(uv_loop_t *loop, void (*fire)(void *arg), void *arg,
                         supervisor_timer_t **out, struct err *err);

/* (Re)arms `t` to fire after delay_ms, then every repeat_ms (0: once). */
int supervisor_timer_arm(supervisor_timer_t *t, uint64_t delay_ms, uint64_t repeat_ms,
                         struct err *err);

/* Disarms `t`: it does not fire until armed again. */
void supervisor_timer_disarm(supervisor_timer_t *t);

/* 1 while `t` is armed. */
int supervisor_timer_armed(const supervisor_timer_t *t);

/* Disarms and frees `t` (NULL is fine): fire never runs after this.
 * Thread: the loop's, or any thread once supervisor_stop() returned (which
 * closed the timer but left it to its owner to free). */
void supervisor_timer_free(supervisor_timer_t *t);

/* ---- child processes: loop thread only ---------------------------------- */

typedef struct supervisor_proc supervisor_proc_t;

/* How a child ended, with the v1 StderrOutput record of what it printed on
 * stderr: the first SUPERVISOR_STDERR_LINES lines (`head`, the whole output
 * when it was short), the last ones (`tail`, only when truncated) and the
 * line count.  Strings are borrowed for the on_exit call; NULL if none. */
struct supervisor_exit {
    int64_t exit_status; /* -1 if killed by a signal */
    int term_signal;     /* 0 if it exited */
    const char *stderr_head;
    const char *stderr_tail;
    size_t stderr_lines;
    int stderr_truncated;
};

#define SUPERVISOR_STDERR_LINES 20

struct supervisor_proc_options {
    const char *file;        /* looked up in PATH when it has no slash */
    const char *const *args; /* argv, args[0] included, NULL-terminated */
    char *const *env;        /* the child's whole environment, NULL-terminated */
    const char *cwd;         /* NULL: the server's */
    size_t max_line_bytes;   /* 0: 16 MiB; longer lines are cut and flagged */
    /* Names the child in log lines ("session s1: claude"); copied.  NULL:
     * `file`. */
    const char *label;
    /* 1: stdin, stdout and stderr are the slave of a new pseudo-terminal of
     * tty_rows x tty_cols (0: 24 x 80), in a session of its own (setsid);
     * its output arrives as stdout.  Needs on_output. */
    int tty;
    unsigned short tty_rows, tty_cols;
};

struct supervisor_proc_callbacks {
    /* One stdout line without its "\n" (a last line without one is still
     * delivered).  `cut` is 1 when the line was longer than max_line_bytes
     * and only its start is given. */
    void (*on_line)(void *arg, const char *line, size_t len, int cut);
    /* Raw mode, instead of on_line (NULL then) and the stderr record: the
     * bytes of stdout (fd 1) and stderr (fd 2) as read, unsplit.  The exit's
     * stderr fields are then empty. */
    void (*on_output)(void *arg, int fd, const char *data, size_t len);
    /* Once the child has exited AND both pipes reached EOF, so every line
     * came first.  The proc is freed right after this returns. */
    void (*on_exit)(void *arg, const struct supervisor_exit *exit);
    void *arg;
};

/* Starts a child with stdin, stdout and stderr on pipes.  new: *out lives
 * until on_exit returns.  ERR_NOT_INSTALLED if the file is not found,
 * ERR_INTERNAL otherwise (callbacks never run then). */
int supervisor_proc_spawn(uv_loop_t *loop, const struct supervisor_proc_options *options,
                          const struct supervisor_proc_callbacks *callbacks,
                          supervisor_proc_t **out, struct err *err);

/* Queues a copy of `data` for the child's stdin.  ERR_INVALID once stdin is
 * closed or the child is gone. */
int supervisor_proc_write(supervisor_proc_t *p, const char *data, size_t len, struct err *err);

/* Bytes queued by supervisor_proc_write() that the child has not taken yet
 * (0 once its stdin is closed): for callers that bound what a child that
 * does not read may pin. */
size_t supervisor_proc_queued(const supervisor_proc_t *p);

/* Closes the child's stdin after what is queued (EOF tells most CLIs to end). */
void supervisor_proc_close_stdin(supervisor_proc_t *p);

/* The one way to end a child: closes its stdin after what is queued (EOF
 * ends most CLIs), sends SIGTERM if it is still running
 * SUPERVISOR_EOF_GRACE_MS later and, if it is still running kill_ms after
 * that, SIGKILL (logged with the label).  A child that ends on EOF is never
 * signalled.  A child already gone has its exit on its way: nothing to do
 * then.  Calling it again while the graces run changes nothing. */
void supervisor_proc_stop(supervisor_proc_t *p, unsigned kill_ms);

#define SUPERVISOR_EOF_GRACE_MS 200

/* 1 once supervisor_proc_stop() was called: the exit that follows is the
 * one asked for. */
int supervisor_proc_stopping(const supervisor_proc_t *p);

/* Sends `signum` to the child and its process group (every child leads
 * one).  0, or ERR_INVALID if it is already gone. */
int supervisor_proc_kill(supervisor_proc_t *p, int signum);

/* Stops reading the child's output (a raw-mode consumer that is behind):
 * the pipes fill and the child blocks writing.  Resumed by
 * supervisor_proc_resume_output().  Calling either twice is harmless. */
void supervisor_proc_pause_output(supervisor_proc_t *p);
void supervisor_proc_resume_output(supervisor_proc_t *p);

/* Sets the window size of a tty child's terminal and sends it SIGWINCH.
 * ERR_INVALID if the child has no terminal or is gone. */
int supervisor_proc_resize(supervisor_proc_t *p, unsigned short rows, unsigned short cols,
                           struct err *err);

/* The child's pid, for logs. */
int supervisor_proc_pid(const supervisor_proc_t *p);

/* Runs the posted work still queued, closes every handle still open on the
 * loop, joins the thread and frees `s`. */
void supervisor_stop(supervisor_t *s);

#endif
