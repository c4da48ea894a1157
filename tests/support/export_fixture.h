/* Shared by the export integration tests (tests/integration/test_export_*):
 * the target servers scripts/test.sh starts, journals filled fast through
 * the journal API, the sandbox-journal command run with a bound, and the
 * check that a target holds exactly the journal's events.
 *
 * Environment: DATABASE_URL and PGCI_DIR (tests/servers/start-postgres.sh),
 * CLICKHOUSE_URL and CHCI_DIR (start-clickhouse.sh).  When one is missing
 * the test is skipped, unless CI=true: then it fails, so CI cannot pass by
 * testing nothing.  Every wait is bounded; every server is on 127.0.0.1. */
#ifndef SJ_TEST_EXPORT_FIXTURE_H
#define SJ_TEST_EXPORT_FIXTURE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The variable's value; skips the test (fails it under CI=true) if unset. */
const char *sjx_env(const char *name);

/* ---- journals -------------------------------------------------------------- */

/* Appends `n` events to session `sid` of the journal in data_dir (created
 * with the session when needed), through journal_append(): a
 * session.started first, then item.delta events whose text and raw
 * payloads hold tabs, newlines, quotes, backslashes, control and non-ASCII
 * characters.  Another process may be using the journal. */
void sjx_append(const char *data_dir, const char *sid, size_t n);

/* sjx_append() for sessions "<prefix>-0".."<prefix>-(n_sessions-1)", with
 * n_events each, all in one journal opening. */
void sjx_fill(const char *data_dir, const char *prefix, size_t n_sessions, size_t n_events);

/* One stored event, as the journal holds it. */
struct sjx_event {
    char *session_id;
    uint64_t sequence;
    char *json;
    char *raw; /* NULL when none */
    int turn_end;
};

/* Every event of the journal in data_dir, ordered by session id (bytes)
 * then sequence.  new: free with sjx_events_free(). */
struct sjx_event *sjx_journal_events(const char *data_dir, size_t *n);
void sjx_events_free(struct sjx_event *ev, size_t n);

/* A number from the journal's database, e.g. a count of checkpoints. */
long long sjx_journal_int(const char *data_dir, const char *sql);

/* The bytes of data_dir/journal.db (new, malloc), to show it unchanged. */
char *sjx_file(const char *path, size_t *len);

/* ---- the command line ------------------------------------------------------ */

/* Starts $SJ_BINARY with `args` (NULL-terminated, after the binary) and the
 * extra environment `env` ("NAME=value", may be NULL), under
 * $SJ_SERVER_WRAPPER when set; stdout and stderr go to `log_path`. */
pid_t sjx_spawn(const char *const *args, const char *const *env, const char *log_path);

/* Waits up to timeout_ms for `pid`: its exit code, or -signal.  Kills it
 * and fails the test after the bound. */
int sjx_wait(pid_t pid, int timeout_ms);

/* Spawn + wait (60 s bound); *output (may be NULL) gets stdout+stderr. */
int sjx_run(const char *const *args, const char *const *env, char **output);

/* Runs a script of tests/servers/ with two arguments, bounded. */
void sjx_server_script(const char *script, const char *dir, const char *action);

long long sjx_now_ms(void);

/* 1 when the programs run under SJ_SERVER_WRAPPER (valgrind): latency
 * bounds are then relaxed, as they measure the checker. */
int sjx_slow(void);

/* ---- targets ---------------------------------------------------------------- */

/* Runs `sql` on PostgreSQL at `url`; returns the first column of the first
 * row as a number (0 when no row).  Fails the test on error. */
long long sjx_pg_int(const char *url, const char *sql);

/* A fresh database on the server of $DATABASE_URL; out gets its URL.
 * Dropped by sjx_pg_drop_db(). */
void sjx_pg_fresh_db(const char *tag, char *out, size_t size);
void sjx_pg_drop_db(const char *url);

/* Runs `sql` on ClickHouse at base_url (http://127.0.0.1:8123/); new: the
 * reply body.  Fails the test on a non-200 answer. */
char *sjx_ch_query(const char *base_url, const char *sql);
long long sjx_ch_int(const char *base_url, const char *sql);

/* Asserts that the target holds exactly the journal's events: the same
 * count, every (session, sequence) once, the envelope columns equal and
 * `data` equal as JSON, `raw` byte for byte; and a sessions row per session
 * with the right event_count.  ClickHouse is read with FINAL and also
 * without: `ch_exact` asserts no unmerged copies either. */
void sjx_assert_pg_matches(const char *pg_url, const char *data_dir);
void sjx_assert_ch_matches(const char *ch_base, const char *db, const char *data_dir,
                           int ch_exact);

#endif
