/* Starting and stopping the real sandbox-journal binary for integration
 * tests, plus cmocka-asserting shortcuts for the calls every test makes.
 *
 * Environment: SJ_BINARY is the server binary (required); SJ_TEST_TMPDIR is
 * the scratch directory under which each test gets a fresh data directory
 * (default /tmp).
 *
 * The server is started as
 *   $SJ_BINARY server --host 127.0.0.1 --port 0 --data-dir <dir>
 *              [--no-token] [--mock-delay-ms 1] [extra args]
 * (--no-token unless the extra args carry --token or --token-file; --mock-delay-ms 1 unless
 * they carry their own) and must print the line
 * "listening on http://127.0.0.1:<port>" on stdout when it is ready.  Its
 * stderr goes to the test's stderr; the rest of its stdout is copied there
 * too.  Every wait is bounded. */
#ifndef SJ_TEST_SERVER_H
#define SJ_TEST_SERVER_H

#include "httpc.h"
#include "journal/journal.h"

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#define SJ_MAX_EXTRA_ARGS 16
/* Bounds for a bare server; three times these under SJ_SERVER_WRAPPER. */
#define SJ_READY_TIMEOUT_MS 10000
#define SJ_STOP_TIMEOUT_MS 10000

struct sj_server {
    pid_t pid;         /* 0 when not running */
    int port;
    char data_dir[512];
    char token[128];   /* "" when started without a token */
    char *extra[SJ_MAX_EXTRA_ARGS + 1];
    int out_fd;
    pthread_t drain;
    int drain_running;
    int exit_status;   /* the last wait status (see waitpid) */
    int killed;        /* the last stop needed SIGKILL */
};

/* Fills out[size] with a new, empty directory under $SJ_TEST_TMPDIR named
 * after `tag`.  Fails the test if it cannot be made. */
void sj_fresh_dir(char *out, size_t size, const char *tag);

/* Starts the server on `data_dir` (copied) with the NULL-terminated extra
 * arguments (copied, may be NULL) and waits for its ready line.  0, or -1
 * with a message on stderr (the process is reaped). */
int sj_server_start(struct sj_server *s, const char *data_dir, const char *const *extra_args);

/* SIGTERM, then waits up to SJ_STOP_TIMEOUT_MS; SIGKILL after that.
 * 0 if the server exited with status 0 by itself after SIGTERM, -1
 * otherwise (see exit_status / killed).  A no-op returning 0 when not
 * running. */
int sj_server_stop(struct sj_server *s);

/* Stops and starts again on the same data dir with the same arguments.
 * Returns -1 if either step failed. */
int sj_server_restart(struct sj_server *s);

/* Frees the copied arguments (call after the last stop). */
void sj_server_release(struct sj_server *s);

/* cmocka setup/teardown helpers: *state becomes a started struct sj_server
 * on a fresh dir (tag = the test binary's name); teardown stops it and fails
 * if it did not exit cleanly. */
int sj_setup_default(void **state);
int sj_teardown_default(void **state);
/* Same, with extra arguments. */
int sj_setup_with(void **state, const char *const *extra_args);

/* ---- requests (cmocka-asserting) ------------------------------------------ */

/* One request to the server, adding "Authorization: Bearer <token>" when
 * the server has a token and `auth` is non-zero.  `json_body` is sent with
 * Content-Type: application/json (NULL: no body).  Fails the test on a
 * transport error. */
void sj_request(struct sj_server *s, const char *method, const char *path, const char *json_body,
                int auth, struct httpc_response *resp);

/* Like sj_request with auth, asserting the status.  Returns the parsed JSON
 * body (new) or NULL for an empty body. */
json_t *sj_call(struct sj_server *s, const char *method, const char *path, const char *json_body,
                int expect_status);

/* Asserts an RFC 7807 error: status, Content-Type application/problem+json
 * and body {"type":"urn:sandbox-agent:error:<type>","title":..,"status":N,
 * "detail":..}.  Returns the parsed body (new). */
json_t *sj_assert_problem(const struct httpc_response *resp, int status, const char *error_type);

/* POST /v1/sessions/<id> with `body` (NULL: {"agent":"mock"}); asserts 200
 * and returns the response (new). */
json_t *sj_create_session(struct sj_server *s, const char *id, const char *body);

/* POST /v1/sessions/<id>/messages {"message": text}; asserts 204. */
void sj_send_message(struct sj_server *s, const char *id, const char *text);

/* GET /v1/sessions/<id>/events<query> (query like "?offset=3" or "");
 * asserts 200 and returns the whole response (new). */
json_t *sj_get_events(struct sj_server *s, const char *id, const char *query);

/* The raw body text of GET /v1/sessions/<id>/events<query> (new, malloc). */
char *sj_get_events_text(struct sj_server *s, const char *id, const char *query);

/* Polls GET events (every 20 ms, at most timeout_ms) until there are at
 * least `n` events; fails the test otherwise.  Returns the events array of
 * the last poll (new). */
json_t *sj_wait_events(struct sj_server *s, const char *id, size_t n, int timeout_ms);

/* sj_wait_events for `n`, and asserts that this read holds exactly `n`.
 * The caller names in `n` the last event of what it awaits (a turn's final
 * event, the one event a reply journals), so this is the positive signal
 * that the turn is over; it does not wait to see whether more follow, which
 * the session's last wait in a test proves with sj_wait_events_quiet.  An
 * event that came late lands after `n` and so before that barrier.
 * Returns the events (new). */
json_t *sj_wait_events_exact(struct sj_server *s, const char *id, size_t n, int timeout_ms);

/* sj_wait_events_exact, then proves that nothing more is coming for a mock
 * session: a barrier turn ("echo sj-barrier") that the server journals
 * after anything still pending must follow event `n` directly.  If the
 * session is terminated, the barrier turn runs on a new session
 * "sj-barrier-<k>" of the same server instead (it shows in session lists)
 * and `id` must still hold exactly `n` (likewise for a session the mock
 * ended, which refuses messages too).  The session gains the barrier
 * turn: use it for a session's last wait.  Returns the first read (new). */
json_t *sj_wait_events_quiet(struct sj_server *s, const char *id, size_t n, int timeout_ms);

/* Sleeps `ms` milliseconds. */
void sj_sleep_ms(int ms);

/* Waits (bounded; fails the test) until event `seq` of `sid` is journaled,
 * reading no event: pages of big events stop at their byte budget. */
void sj_wait_sequence(struct sj_server *s, const char *sid, long long seq, int timeout_ms);

/* Sends the mock a message of `bytes` 'x's: its echo turn journals about
 * six events of that size. */
void sj_send_big(struct sj_server *s, const char *sid, size_t bytes);

/* Asserts the envelope of one event: event_id "evt_<seq>", sequence,
 * session_id, native_session_id "mock-<session_id>", type, synthetic, and
 * source "daemon" for synthetic events, "agent" otherwise; time is an
 * RFC 3339 UTC timestamp; raw is null. */
void sj_assert_envelope(const json_t *ev, long long seq, const char *session_id, const char *type,
                        int synthetic);

/* new (malloc): the event re-serialized compactly (field order kept) with
 * its "time" value replaced by "T", for exact comparisons. */
char *sj_event_masked(const json_t *ev);

/* SIGKILLs the server without waiting for a clean stop (crash tests). */
void sj_server_kill(struct sj_server *s);

/* Shortcuts on parsed JSON. */
const char *sj_str(const json_t *obj, const char *path); /* dotted path, NULL if absent */
long long sj_int(const json_t *obj, const char *path);    /* fails unless integer */

/* malloc'd printf. */
/* Sends a request and asserts a ProblemDetails answer of `status` / `type`. */
void sj_expect_problem(struct sj_server *s, const char *method, const char *path,
                       const char *body, int status, const char *type);

/* Asserts the event at `seq` (1-based) of a mock session `session_id`,
 * re-serialized with its time masked, is exactly the envelope around
 * `data_json`. */
void sj_assert_event_exact(const json_t *events, const char *session_id, long long seq,
                           const char *type, int synthetic, const char *data_json);

char *sj_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Opens the journal file `db_path` read-only and fails the test unless it
 * opens and PRAGMA integrity_check is ok.  new: the journal (journal_close
 * it); *reader gets its reader for the calling thread. */
journal_t *sj_journal_open_checked(const char *db_path, journal_reader_t **reader);

#endif
