/* The journal: the only SQL in the server.
 *
 * One SQLite database in WAL mode holds every session and every event.  One
 * write connection commits whatever batches are queued in one transaction
 * (group commit), on the writer thread, or on the thread of a
 * journal_append() that finds the queue empty and commits its batch itself
 * (never two groups at once, always in queue order); an event becomes
 * visible to readers only once that transaction has committed, and the
 * commit is what "acknowledged" means.  Readers use their own read-only
 * connections, one per thread, and never block the writer.
 *
 * Invariants the writer enforces itself, whatever its callers do:
 *   - a session's sequences start at 1 and are contiguous: a batch whose
 *     first sequence is not the session's committed last sequence + 1 is
 *     refused with ERR_CONFLICT, so a failed commit can never leave a gap;
 *   - a session row is created once: a second create is ERR_CONFLICT.
 *
 * After each commit the committing thread advances the per-session committed
 * sequence ("watermark") and wakes the parked waiters of those sessions.
 *
 * Which threads run the callbacks:
 *   done (journal_submit()): the writer thread, always; submitted batches are
 *       never committed on another thread.
 *   wake (journal_park(), journal_park_any()): the thread that committed,
 *       that is the writer thread or the thread inside a journal_append(),
 *       journal_export_advance() or journal_export_reset() call that committed
 *       its own batch; or the thread calling journal_wake_all().  Always under
 *       the journal's watch lock.
 *   park: the thread calling journal_park() or journal_park_any().
 */
#ifndef SJ_JOURNAL_H
#define SJ_JOURNAL_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct journal journal_t;
typedef struct journal_reader journal_reader_t;

enum journal_durability {
    JOURNAL_DURABILITY_FULL,   /* fsync at every commit (default) */
    JOURNAL_DURABILITY_NORMAL, /* WAL synchronous=NORMAL: a power cut may lose the last commits */
};

/* Opens (creating if needed) the database at `path`, applies pending
 * migrations in order, loads every session's committed last sequence and
 * starts the writer thread.  Does not scan the events table.
 * new: *out is freed with journal_close().  Thread: any, once. */
int journal_open(const char *path, enum journal_durability durability, journal_t **out,
                 struct err *err);

/* Opens an existing database for reading only: no migration, no writer
 * thread, nothing written (submits fail with ERR_INVALID).  A database at
 * another schema version than this binary's is refused with ERR_STORAGE.
 * For tools that read a journal a server may be writing.  new: *out is freed
 * with journal_close().  */
int journal_open_readonly(const char *path, journal_t **out, struct err *err);

/* 1 if journal_open_readonly() could not create or use the WAL index (the
 * -shm file: a read-only mount, another user's directory) and reads the
 * database file alone, as immutable: commits still in a WAL left by a
 * server that did not stop cleanly are not seen, nor is a server writing
 * meanwhile.  0 otherwise.  Thread: any. */
int journal_is_immutable(const journal_t *j);

/* Drains the queue, stops the writer, checkpoints the WAL into the main
 * database (TRUNCATE), closes every reader connection and frees `j`.
 * Call after every reader thread has stopped using the journal. */
void journal_close(journal_t *j);

/* The schema version the database is at after journal_open(). */
int journal_schema_version(const journal_t *j);

/* ---- writing ---------------------------------------------------------- */

/* A session row, as created.  Strings are borrowed for the call. */
struct journal_session_row {
    const char *session_id;
    const char *agent;
    const char *agent_mode;
    const char *permission_mode;
    const char *model;         /* may be NULL */
    const char *variant;       /* may be NULL */
    const char *agent_version; /* may be NULL */
    const char *native_session_id; /* may be NULL */
    const char *working_dir;   /* may be NULL */
    const char *created_at;    /* RFC 3339; NULL: now.  Import passes the original. */
};

/* One event to append.  Strings are borrowed for the call. */
struct journal_event {
    uint64_t sequence;
    const char *type;  /* universal event type, e.g. "item.started" */
    const char *json;  /* the exact bytes every reader gets; must end in "\"raw\":null}" */
    size_t json_len;
    const char *raw;   /* the native payload as JSON text, or NULL */
    size_t raw_len;
    int turn_end;      /* 1 if this event ends a turn for messages/stream */
};

/* The item id a session gave a native id that no event records (see
 * migrations/0003_item_aliases.sql).  Strings are borrowed for the call. */
struct journal_alias {
    const char *native_id;
    const char *item_id;
};

/* The outcome of a request sent with an Idempotency-Key, kept with what the
 * request committed (migrations/0005_idempotency.sql).  Strings are
 * borrowed for the call. */
struct journal_idem {
    const char *key;        /* the header's value: 1..255 printable ASCII */
    const char *route;      /* the route's pattern, e.g. "POST /v1/sessions/x/messages" */
    const char *session_id; /* the session the request named, or NULL */
    uint64_t request_hash;  /* tells a repeat of the request from another one */
    unsigned status;        /* the answer's HTTP status */
    const char *body;       /* the answer's body, or NULL for none */
    size_t body_len;
    uint64_t after;         /* the session's last sequence before the request's events */
};

#define JOURNAL_REOPEN (-1)

/* Everything one caller commits atomically for one session. */
struct journal_batch {
    const char *session_id;
    const struct journal_session_row *create; /* non-NULL: create the session first */
    const struct journal_event *events;
    size_t n_events;
    const char *native_session_id; /* non-NULL: set it on the session row */
    int mark_ended;                /* > 0: the session ended; stored as the row's
                                    * `ended` value (the larger one wins).
                                    * JOURNAL_REOPEN: an agent resumed it, `ended`
                                    * goes back to 0.  0: unchanged */
    const char *adapter_state;     /* non-NULL: replace the adapter's opaque state */
    const struct journal_alias *aliases; /* kept with the events (a native id
                                          * already kept keeps its first item id) */
    size_t n_aliases;
    const struct journal_idem *idem; /* non-NULL: remember this outcome in the same
                                      * transaction.  With session_id NULL (and
                                      * nothing else) the batch holds only it:
                                      * for a request that committed nothing
                                      * else, or that names no session. */
};

/* Called on the writer thread (see the top of this file) once the batch is
 * committed (rc == 0) or has failed (rc < 0, `err` says why; nothing of the
 * batch is stored).  Must not block and must not call back into the
 * journal's writing functions. */
typedef void (*journal_done_fn)(void *arg, int rc, const struct err *err);

/* Queues a copy of `b` for the writer; `done` (may be NULL) reports the
 * outcome.  Returns at once unless the batches submitted this way and not
 * yet taken by the writer already hold JOURNAL_ASYNC_QUEUE_BYTES: then it
 * waits for the writer to take some, so a producer faster than the disk
 * (an agent's output) is slowed to the disk's pace instead of filling
 * memory.  Fails without queuing if the journal is closing (also while
 * waiting) or memory ran out.  Thread: any but the writer (which never
 * waits: it would wait for itself). */
int journal_submit(journal_t *j, const struct journal_batch *b, journal_done_fn done,
                   void *arg, struct err *err);

#define JOURNAL_ASYNC_QUEUE_BYTES (8u * 1024 * 1024)

/* Sets that limit (tests); at least one batch is always let in.  Thread: any. */
void journal_set_async_limit(journal_t *j, size_t bytes);

/* Queues `b` and waits for its commit.  Returns 0 once it is durable, or the
 * failure (ERR_CONFLICT for a duplicate session or a sequence that does not
 * follow, ERR_STORAGE when SQLite refused the write or the database file was
 * renamed or deleted since it was opened).  Thread: any but the writer. */
int journal_append(journal_t *j, const struct journal_batch *b, struct err *err);

/* Writer counters since journal_open(), for tests and metrics: how well
 * group commit is grouping.  Thread: any. */
struct journal_stats {
    uint64_t transactions;       /* write transactions committed */
    uint64_t batches;            /* batches committed (failed ones not counted) */
    uint64_t events;             /* events committed */
    uint64_t max_tx_batches;     /* most batches one transaction committed */
    uint64_t checkpoints;        /* WAL checkpoints completed, behind the commit */
};
void journal_get_stats(journal_t *j, struct journal_stats *out);

/* ---- watermarks and waiting ------------------------------------------ */

/* 1 if the session exists (its row is committed), else 0.  Thread: any. */
int journal_session_exists(journal_t *j, const char *session_id);

/* The session's committed last sequence (0 if none or unknown).  Thread: any. */
uint64_t journal_last_sequence(journal_t *j, const char *session_id);

/* A reader that wants to sleep until a session advances embeds one of these.
 * `park` runs under the journal's watch lock when the waiter is parked (the
 * place to suspend a connection, so a commit cannot slip in between the check
 * and the suspend); `wake` runs under the same lock when the session's
 * watermark passes `after`, on the thread that committed (the writer thread or
 * an appender's: see the top of this file), or from journal_wake_all() on its
 * caller's thread.  Both must be short and must not call the journal. */
struct journal_waiter {
    void (*park)(struct journal_waiter *w);
    void (*wake)(struct journal_waiter *w);
    /* private to the journal */
    struct journal_waiter *next;
    struct journal_waiter *prev;
    char *session_id;
    uint64_t after;
    int parked;
};

/* If the session's watermark is already past `after`, returns 1 without
 * parking.  Otherwise parks `w` (calling w->park under the lock) and returns
 * 0; w->wake will be called exactly once later unless journal_unpark() takes
 * it back first.  Returns ERR_NOMEM or ERR_INVALID (journal closing).  */
int journal_park(journal_t *j, const char *session_id, uint64_t after,
                 struct journal_waiter *w);

/* Takes a parked waiter back.  Returns 1 if it was parked (its wake will not
 * be called), 0 if it was not (already woken, or never parked). */
int journal_unpark(journal_t *j, struct journal_waiter *w);

/* A count that grows with every commit and every journal_wake_all().  Read
 * it before looking at the journal, or at state that a commit's done
 * callback changes and then announces with journal_wake_all() (a process's
 * exit), and journal_park_any() with it misses neither.  Thread: any. */
uint64_t journal_wake_count(journal_t *j);

/* Parks `w` until a commit or a journal_wake_all() makes journal_wake_count()
 * exceed `seen` (read it before looking at the journal, so nothing committed
 * in between is missed): "wake me on any commit", for exporters that follow
 * every session.  Returns 1 without parking if that already happened, 0
 * when parked, ERR_NOMEM/ERR_INVALID as journal_park().  w->park and w->wake
 * run as for journal_park(); journal_unpark() and journal_wake_all() take
 * these waiters too. */
int journal_park_any(journal_t *j, uint64_t seen, struct journal_waiter *w);

/* Wakes every parked waiter (used for heartbeats' and shutdown's sake when a
 * caller holds a list of them) and stops accepting new parks if `closing`. */
void journal_wake_all(journal_t *j, int closing);

/* ---- reading ---------------------------------------------------------- */

/* The reader connection owned by the calling thread, opened on first use (or
 * taken from those journal_open_readers() opened) and closed by
 * journal_close().  borrowed: valid until journal_close().
 * NULL on failure (err filled).  Thread: any; each thread gets its own. */
journal_reader_t *journal_reader_for_thread(journal_t *j, struct err *err);

/* Opens `n` reader connections now, for threads that ask later: a thread's
 * first journal_reader_for_thread() takes one of them instead of opening
 * the file then.  The server opens one per thread that reads at start-up, so
 * reads keep working even if the database file later becomes impossible to
 * open (deleted, renamed, descriptors exhausted).  Thread: any. */
int journal_open_readers(journal_t *j, unsigned n, struct err *err);

/* Per-alias callback of journal_read_aliases(); strings borrowed for the
 * call.  Return 0 to go on, non-zero to stop (that value is returned). */
typedef int (*journal_alias_fn)(void *arg, const char *native_id, const char *item_id);

/* Calls `fn` for every item alias of the session (none for an unknown one).
 * 0, fn's non-zero value, or an error code (err filled). */
int journal_read_aliases(journal_reader_t *r, const char *session_id, journal_alias_fn fn,
                         void *arg, struct err *err);

/* Per-event callback of journal_read_events(): `json`/`raw` are borrowed for
 * the call (raw is NULL when none was stored).  Return 0 to go on, non-zero to
 * stop (that value is returned by journal_read_events). */
typedef int (*journal_event_fn)(void *arg, uint64_t sequence, const char *json, size_t json_len,
                                const char *raw, size_t raw_len, int turn_end);

/* Calls `fn` for the events of `session_id` with sequence > after, in order,
 * at most `limit` of them (0: no limit).  Sets *has_more (if non-NULL) when
 * further committed events exist.  Uses the (session, sequence) index only:
 * the cost does not depend on the journal's size.  Thread: the reader's. */
int journal_read_events(journal_reader_t *r, const char *session_id, uint64_t after,
                        uint32_t limit, journal_event_fn fn, void *arg, int *has_more,
                        struct err *err);

/* journal_read_events() that also stops before the event that would take
 * the bytes handed to `fn` (json_len + raw_len, summed) past `max_bytes`;
 * the first event is always handed over, so one larger than the budget is
 * read alone.  *has_more is set when the budget stopped the read.
 * max_bytes 0: no byte budget.  Thread: the reader's. */
int journal_read_events_budget(journal_reader_t *r, const char *session_id, uint64_t after,
                               uint32_t limit, size_t max_bytes, journal_event_fn fn,
                               void *arg, int *has_more, struct err *err);

/* A session row as stored.  Strings are owned by the struct. */
struct journal_session_info {
    char *session_id;
    char *agent;
    char *agent_mode;
    char *permission_mode;
    char *model;          /* NULL if unset */
    char *variant;        /* NULL if unset */
    char *agent_version;  /* NULL if unset */
    char *native_session_id; /* NULL if unset */
    char *working_dir;    /* NULL if unset */
    char *adapter_state;  /* NULL if unset */
    char *created_at;     /* RFC 3339 */
    int ended;
    uint64_t last_sequence;
};

void journal_session_info_clear(struct journal_session_info *s);

/* Calls `fn` for every session, newest first.  The info is borrowed for the
 * call.  Return non-zero from `fn` to stop.  Thread: the reader's. */
typedef int (*journal_session_fn)(void *arg, const struct journal_session_info *s);
int journal_list_sessions(journal_reader_t *r, journal_session_fn fn, void *arg,
                          struct err *err);

/* Loads one session row.  ERR_NOT_FOUND if absent.  new: *out's strings are
 * the caller's, released with journal_session_info_clear().  */
int journal_get_session(journal_reader_t *r, const char *session_id,
                        struct journal_session_info *out, struct err *err);

/* SQLite's PRAGMA data_version of the reader's connection: it changes when
 * another connection (this process's writer or another process) commits.
 * Lets a separate process poll for new events cheaply.  Thread: the reader's. */
int journal_data_version(journal_reader_t *r, uint64_t *out /* OUT */, struct err *err);

/* ---- export checkpoints ------------------------------------------------ */

/* Exporters keep, per target and session, the last sequence the target has
 * confirmed (export_checkpoints, migrations/0002_export.sql).  `target` is
 * the key a target is known by (its URL without a password).  A checkpoint is
 * only ever raised, and only after the target committed: targets insert
 * idempotently, so a checkpoint that lags only means a batch is re-sent. */

/* Called by journal_export_scan() for each session with events past its
 * checkpoint; strings are borrowed for the call.  Non-zero stops the scan. */
typedef int (*journal_export_fn)(void *arg, const char *session_id, uint64_t last_sequence,
                                 uint64_t checkpoint);

/* Finds the sessions whose committed last sequence is past their checkpoint
 * for `target`, in one read snapshot.  *cursor (IN/OUT) is the journal
 * position the previous scan reached: 0 scans every session (cost: the
 * sessions table); otherwise only sessions with events committed since
 * (cost: those events), so a follower's scan does not grow with the journal.
 * On return *cursor is where this scan reached.  Thread: the reader's. */
int journal_export_scan(journal_reader_t *r, const char *target, int64_t *cursor,
                        journal_export_fn fn, void *arg, struct err *err);

/* The target's resume state as last stored with journal_export_advance().
 * new: *state is the caller's (free()), NULL when none.  Thread: the reader's. */
int journal_export_state(journal_reader_t *r, const char *target, char **state /* OUT */,
                         struct err *err);

/* One session's new checkpoint. */
struct journal_export_mark {
    const char *session_id;
    uint64_t last_sequence;
};

/* Raises the checkpoints of `marks` for `target` (never lowers one) and, if
 * `state` is non-NULL, replaces the target's resume state, all in one
 * transaction through the writer; waits for the commit.  ERR_NOT_FOUND if a
 * session is not in the journal (nothing is stored then).  Strings are
 * borrowed for the call.  Thread: any but the writer. */
int journal_export_advance(journal_t *j, const char *target, const char *state,
                           const struct journal_export_mark *marks, size_t n_marks,
                           struct err *err);

/* Forgets every checkpoint and the state of `target`, so the next export
 * sends everything again.  Thread: any but the writer. */
int journal_export_reset(journal_t *j, const char *target, struct err *err);

/* ---- idempotency keys ---------------------------------------------------- */

#define JOURNAL_IDEM_TTL_DEFAULT_S (24 * 3600)

/* How long a key is kept (seconds, at least 1; default 24 h): lookups ignore
 * older ones, and the writer deletes them, at most once per min(60 s, ttl),
 * after a commit, in a transaction of its own (through the index on the
 * time, so the cost is the rows deleted).  Thread: any. */
void journal_idem_set_ttl(journal_t *j, uint64_t seconds);

/* A stored outcome.  Strings are owned by the struct. */
struct journal_idem_info {
    char *route;
    char *session_id;   /* NULL if none */
    uint64_t request_hash;
    unsigned status;
    char *body;         /* NULL if none */
    size_t body_len;
    uint64_t after;
    int64_t created;    /* Unix seconds */
};

void journal_idem_info_clear(struct journal_idem_info *info);

/* Looks `key` up: 0 and *out filled (new: released with
 * journal_idem_info_clear()), ERR_NOT_FOUND if it is not stored or is past
 * its time, or another error.  One primary-key lookup.  Thread: the reader's. */
int journal_idem_get(journal_reader_t *r, const char *key, struct journal_idem_info *out,
                     struct err *err);

/* ---- workspace processes (migrations/0007_process_logs.sql) ------------ */

/* One read of a process's output.  Strings are borrowed for the call. */
struct journal_proc_chunk {
    uint64_t sequence;  /* the process's own: from 1, increasing */
    const char *stream; /* "stdout", "stderr", "pty", or "dropped" for the
                         * marker of deleted older chunks */
    int64_t ts_ms;      /* Unix milliseconds */
    const char *data;
    size_t len;
};

/* What one process writes at once, in this order: its record, the deletion
 * of older chunks, the new chunks.  Strings are borrowed for the call. */
struct journal_proc_write {
    const char *process_id;
    const char *info;        /* non-NULL: the ProcessInfo JSON, inserted or replaced */
    uint64_t drop_through;   /* > 0: delete its chunks with sequence <= this */
    const struct journal_proc_chunk *chunks;
    size_t n_chunks;
    int remove;              /* delete the record and every chunk (alone) */
};

/* Queues `w` for the writer like journal_submit(): it commits in the
 * writer's groups, with the session batches queued around it.  Thread: any. */
int journal_proc_submit(journal_t *j, const struct journal_proc_write *w, journal_done_fn done,
                        void *arg, struct err *err);

/* journal_proc_submit() and wait for the commit.  Thread: any but the writer. */
int journal_proc_append(journal_t *j, const struct journal_proc_write *w, struct err *err);

/* Calls `fn` for every stored process, oldest first; strings borrowed for
 * the call.  Non-zero from fn stops (and is returned).  Thread: the reader's. */
typedef int (*journal_proc_fn)(void *arg, const char *process_id, const char *info);
int journal_proc_list(journal_reader_t *r, journal_proc_fn fn, void *arg, struct err *err);

/* Per-chunk callback of journal_proc_read_logs(); borrowed for the call. */
typedef int (*journal_proc_log_fn)(void *arg, const struct journal_proc_chunk *chunk);

/* Calls `fn` for the chunks of `process_id` with sequence > after, in
 * order, of `stream` (NULL: every stream; markers always come), at most
 * `limit` (0: no limit) and no more once `max_bytes` of data were handed
 * over (0: no budget; the first chunk always comes).  *has_more (may be
 * NULL) says the limit or the budget stopped the read.  Thread: the reader's. */
int journal_proc_read_logs(journal_reader_t *r, const char *process_id, const char *stream,
                           uint64_t after, uint32_t limit, size_t max_bytes,
                           journal_proc_log_fn fn, void *arg, int *has_more, struct err *err);

/* The `after` that reads the last `n` chunks of `process_id` (of `stream`,
 * NULL: any): 0 when it has n or fewer; n 0: the newest chunk's sequence.
 * Thread: the reader's. */
int journal_proc_tail_after(journal_reader_t *r, const char *process_id, const char *stream,
                            uint64_t n, uint64_t *after, struct err *err);
/* ---- workspace configuration ------------------------------------------- */

/* The MCP servers and skills configured per directory
 * (migrations/0008_workspace_config.sql).  `kind` is "mcp" or "skills";
 * `directory` is the key as the caller normalized it; `config_json` is JSON
 * text the journal stores and hands back as it is.  Strings are borrowed for
 * the call. */

/* Stores (replacing) one entry, through the writer; waits for the commit.
 * Thread: any but the writer. */
int journal_config_put(journal_t *j, const char *kind, const char *directory,
                       const char *name, const char *config_json, struct err *err);

/* Deletes one entry (0 whether or not it was there).  Thread: any but the writer. */
int journal_config_delete(journal_t *j, const char *kind, const char *directory,
                          const char *name, struct err *err);

/* Loads one entry.  new: *config_json (free()).  ERR_NOT_FOUND if absent.
 * Thread: the reader's. */
int journal_config_get(journal_reader_t *r, const char *kind, const char *directory,
                       const char *name, char **config_json, struct err *err);

/* Per-entry callback of journal_config_list(); strings borrowed for the call.
 * Non-zero stops the listing (and is returned). */
typedef int (*journal_config_fn)(void *arg, const char *name, const char *config_json);

/* Calls `fn` for every entry of `kind` in `directory`, by name.  Thread: the
 * reader's. */
int journal_config_list(journal_reader_t *r, const char *kind, const char *directory,
                        journal_config_fn fn, void *arg, struct err *err);

/* Runs PRAGMA integrity_check; 0 if "ok", else ERR_STORAGE with the first
 * complaint in err.  Thread: the reader's. */
int journal_integrity_check(journal_reader_t *r, struct err *err);

/* ---- session summaries and search (journal_search.c) ------------------ */

/* What GET /v1/sessions and /v1/sessions/{id} add to a session row, kept by
 * the triggers of migrations/0006_search.sql in the events' transaction. */
struct journal_session_extra {
    const char *status;     /* "running", "waiting", "idle" or "ended" */
    const char *updated_at; /* RFC 3339: the newest event's time, else created_at */
    const char *title;      /* the first user message, <= 80 characters; NULL if none */
    const char *pending_permissions; /* JSON array of ids, never NULL */
    const char *pending_questions;   /* JSON array of ids, never NULL */
};

/* Called per row; both structs are borrowed for the call.  Non-zero stops. */
typedef int (*journal_summary_fn)(void *arg, const struct journal_session_info *s,
                                  const struct journal_session_extra *x);

/* A page of the session list.  Strings are borrowed for the call. */
struct journal_session_query {
    int by_activity;    /* 1: newest activity first, (updated_at, id) keyset;
                         * 0: newest created first (the v1 list's order) */
    uint32_t limit;     /* 0: no limit */
    const char *cursor; /* a next_cursor of the same query, or NULL */
    const char *status; /* filter, or NULL */
    const char *agent;  /* filter, or NULL */
};

#define JOURNAL_CURSOR_MAX 96

/* Calls `fn` for the sessions of `q`.  When more rows follow the page,
 * next_cursor (JOURNAL_CURSOR_MAX bytes) gets the cursor of the next page,
 * else "".  ERR_INVALID for a cursor this query did not make or an unknown
 * status.  Thread: the reader's. */
int journal_session_page(journal_reader_t *r, const struct journal_session_query *q,
                         journal_summary_fn fn, void *arg, char *next_cursor /* OUT */,
                         struct err *err);

/* One session's row and summary; ERR_NOT_FOUND if there is none.
 * Thread: the reader's. */
int journal_session_summary(journal_reader_t *r, const char *session_id,
                            journal_summary_fn fn, void *arg, struct err *err);

/* One search hit; strings borrowed for the call.  `snippet` is plain text
 * with each match between "<mark>" and "</mark>". */
struct journal_hit {
    const char *session_id;
    uint64_t sequence;
    const char *type;
    const char *snippet;
};
typedef int (*journal_hit_fn)(void *arg, const struct journal_hit *h);

/* Full-text search (FTS5 query syntax) over the text of the events the
 * index has read (journal_index_position(): the hits are exact up to its
 * indexed_through, newer events are not searched yet), newest first, at most `limit` hits after `cursor` (NULL: from the newest), only
 * session `session_id`'s if non-NULL.  next_cursor as for
 * journal_session_page().  ERR_INVALID for an empty or malformed query or
 * cursor, ERR_NOT_FOUND for an unknown session.  Thread: the reader's. */
int journal_search(journal_reader_t *r, const char *query, const char *session_id,
                   const char *cursor, uint32_t limit, journal_hit_fn fn, void *arg,
                   char *next_cursor /* OUT */, struct err *err);

/* ---- the search index follower (journal_index.c) --------------------- */

/* The index is written behind the commit, by the writer thread while no
 * commit waits (see journal_index.c).  Nothing is indexed until this is
 * called: the server calls it, one-shot tools (import, export) do not, so
 * they never hold the write lock for the index.  `quantum_us` (0: the
 * default) is how long a step indexes before it lets a queued commit go
 * first.  Thread: any. */
#define JOURNAL_INDEX_QUANTUM_US 1000
void journal_index_follow(journal_t *j, uint32_t quantum_us);

/* How far the index is: events (in commit order) up to indexed_through
 * have been read into it; `lag` committed events have not. */
struct journal_index_pos {
    uint64_t indexed_through; /* events.id, a count of the journal's events */
    uint64_t lag;
};

/* The position in the reader's snapshot.  Thread: the reader's. */
int journal_index_position(journal_reader_t *r, struct journal_index_pos *out,
                           struct err *err);

/* The follower's counters since journal_open(), and its position as the
 * writer last saw it.  Thread: any. */
struct journal_index_stats {
    uint64_t steps;          /* index transactions committed */
    uint64_t events_read;    /* events the steps read */
    uint64_t events_indexed; /* of them, with text (FTS5 rows) */
    uint64_t max_step_us;    /* the longest step: what a commit may wait */
    uint64_t total_step_us;
    uint64_t total_step_cpu_us; /* the writer thread's CPU time in steps */
    uint64_t indexed_through;
    uint64_t lag;
};
void journal_index_get_stats(journal_t *j, struct journal_index_stats *out);

#endif
