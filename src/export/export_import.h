/* Importing a JSONL export (export_jsonl.c) into a journal, so a transcript
 * can move to another sandbox and be served from there byte for byte.
 *
 * Each event goes in verbatim (its stored text, raw payload and turn_end)
 * through journal_append(), so the journal's own checks apply: sequences
 * contiguous from the session's last, a session created once.  The session
 * row keeps its agent, modes, native id, adapter state, ended state and
 * creation time.
 *
 * Nothing is written unless the whole file is good: export_import_check()
 * reads it all first.  Importing the same file again adds nothing: events a
 * session already holds are compared byte for byte and skipped, and a
 * difference is refused before anything is written. */
#ifndef SJ_EXPORT_IMPORT_H
#define SJ_EXPORT_IMPORT_H

#include "base/err.h"
#include "journal/journal.h"

#include <stdint.h>

struct export_import_summary {
    uint64_t sessions;     /* sessions in the file */
    uint64_t created;      /* sessions the journal did not have */
    uint64_t events;       /* events appended */
    uint64_t skipped;      /* events the journal already had, identical */
};

/* Reads the whole file at `path` and checks it: the header, every line's
 * shape, each session's sequences contiguous from 1 and matching its
 * session lines, each event well formed as the server needs it to rebuild
 * the session (data fitting its type, as normalize_replay() checks).  With `j` (may be NULL) also checks it against what the
 * journal already holds.  Writes nothing.  ERR_INVALID with the line number
 * for a bad file, ERR_CONFLICT for a clash with the journal.
 * Thread: one that may use a journal reader. */
int export_import_check(const char *path, journal_t *j, struct err *err);

/* export_import_check() with `j`, then appends what the journal lacks.
 * `sum` (may be NULL) gets the counts. */
int export_import_jsonl(const char *path, journal_t *j, struct export_import_summary *sum,
                        struct err *err);

#endif
