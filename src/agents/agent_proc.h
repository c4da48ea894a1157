/* What the adapters share on the process side: stopping a process (stdin
 * EOF, SIGTERM, SIGKILL if it lingers; the per-session and per-turn CLIs,
 * Claude Code and Amp), the StderrOutput record of an exit, and the last
 * stderr line that explains a shared server's exit (Codex, OpenCode).
 * Loop thread only. */
#ifndef SJ_AGENT_PROC_H
#define SJ_AGENT_PROC_H

#include "agents/supervisor.h"

#include <jansson.h>

/* Lives inside the adapter's loop state, zeroed; the timer handle is
 * closed by agent_proc_stop_done() or, at the latest, when the supervisor
 * closes every handle at shutdown (before the state is freed). */
struct agent_proc_stop {
    uv_timer_t timer;
    int timer_ready;           /* initialized and not closed */
    supervisor_proc_t **proc;  /* the owner's pointer to its running process */
    const char *agent;         /* for the log line ("claude") */
    const char *session_id;    /* borrowed, lives as long as the owner */
};

/* Ends *s->proc, if any: closes its stdin, sends SIGTERM and, if it is
 * still running `kill_ms` later, SIGKILL.  A process already gone has its
 * exit on its way: nothing to do then. */
void agent_proc_stop(struct agent_proc_stop *s, uv_loop_t *loop, unsigned kill_ms);

/* The process exited: the SIGKILL timer is not needed any more. */
void agent_proc_stop_done(struct agent_proc_stop *s);

/* new: the StderrOutput record of an exit (total_lines 0 when it printed
 * nothing, which is worth knowing too), or NULL when memory ran out. */
json_t *agent_proc_stderr_json(const struct supervisor_exit *e);

/* Appends ": <the last non-blank stderr line>" (at most 150 bytes of it) to
 * the NUL-terminated message in buf[size]: a process's last words say most
 * about why it exited.  Nothing when it printed nothing. */
void agent_proc_append_last_words(char *buf, size_t size, const struct supervisor_exit *e);

#endif
