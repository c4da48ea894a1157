/* What every adapter says of an agent process's exit: the StderrOutput
 * record of a session.ended (the line-oriented CLIs, cli_driver.h), and the
 * last stderr line that explains a shared server's exit (Codex, OpenCode).
 * Pure: any thread. */
#ifndef SJ_AGENT_PROC_H
#define SJ_AGENT_PROC_H

#include "agents/supervisor.h"

#include <jansson.h>

/* new: the StderrOutput record of an exit (total_lines 0 when it printed
 * nothing, which is worth knowing too), or NULL when memory ran out. */
json_t *agent_proc_stderr_json(const struct supervisor_exit *e);

/* Appends ": <the last non-blank stderr line>" (at most 150 bytes of it) to
 * the NUL-terminated message in buf[size]: a process's last words say most
 * about why it exited.  Nothing when it printed nothing. */
void agent_proc_append_last_words(char *buf, size_t size, const struct supervisor_exit *e);

#endif
