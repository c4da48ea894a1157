/* A session's stored events as a transcript a person reads in a terminal:
 * one entry per finished item (user and assistant text, reasoning, tool
 * calls and results, files, status), permission and question requests and
 * their outcomes, errors, and the session's start and end.
 *
 *   --- 2026-11-23 ---
 *   [11:49:59] session started (agent mock, mode build, permissions default)
 *   [11:49:59] user: hello
 *   [11:49:59] assistant: first line
 *       second line
 *   [11:50:00] permission requested [perm_1]: command_execution
 *       command: echo mock
 *
 * Items are shown when they complete (their final content, not the deltas
 * that built it); transcript_finish() shows what is still open.  Control
 * characters an agent wrote are made visible (^[) so the transcript cannot
 * drive the terminal.  Pure: text in, text out. */
#ifndef SJ_TRANSCRIPT_H
#define SJ_TRANSCRIPT_H

#include "base/buf.h"
#include "base/err.h"
#include "journal/journal.h"

#include <stddef.h>

typedef struct transcript transcript_t;

/* new: *out is freed with transcript_free(). */
int transcript_new(transcript_t **out, struct err *err);
void transcript_free(transcript_t *t);

/* Appends the lines for one stored event (its JSON text, as the journal
 * serves it) to `out`; nothing for events that only build up an item.  An
 * event that is not valid JSON is shown as unreadable, not refused.
 * 0 or ERR_NOMEM. */
int transcript_render(transcript_t *t, const char *json, size_t len, struct buf *out,
                      struct err *err);

/* Appends the items that started and have not completed, in the order they
 * started, marked "(in progress)", and forgets them.  0 or ERR_NOMEM. */
int transcript_finish(transcript_t *t, struct buf *out, struct err *err);

/* Appends a few lines describing the session row (id, agent, modes,
 * created, event count, state).  0 or ERR_NOMEM. */
int transcript_header(const struct journal_session_info *s, struct buf *out, struct err *err);

/* Appends `s` as one line that a terminal shows and does not obey: every
 * control character made visible as in a transcript (line breaks and tabs
 * too).  The one sanitizer for text the CLI prints from the journal outside
 * a transcript (session lists).  0 or ERR_NOMEM. */
int transcript_put_safe(struct buf *out, const char *s);

/* "active", "ended" or "terminated" for a session row's `ended` value. */
const char *transcript_state_name(int ended);

#endif
