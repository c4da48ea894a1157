/* End-to-end helpers: the scripted fake model (tests/fake_model,
 * `sj-fake-model`) on loopback, its request log, a private working
 * directory per test, and waits on a session's events.
 *
 * Environment: SJ_FAKE_MODEL is the fake's binary; SJ_AGENTS_DIR is where
 * the pinned agent CLIs were installed by `sandbox-journal install-agent`
 * (the CTest fixture e2e/install-agents).  A test whose requirements are
 * missing is skipped with the reason on stderr, never silently passed.
 *
 * Every wait is bounded; cmocka assertions fail the test. */
#ifndef SJ_TEST_E2E_H
#define SJ_TEST_E2E_H

#include "server.h"

#include <jansson.h>
#include <limits.h>
#include <sys/types.h>

struct e2e_fake {
    pid_t pid;
    int port;
    char dir[PATH_MAX];
    char log[PATH_MAX + 32];
    char url[64];   /* http://127.0.0.1:<port> */
    int out_fd;
};

/* 1 if SJ_FAKE_MODEL and the agent's binary under SJ_AGENTS_DIR exist;
 * else prints why and returns 0 (the caller skips). */
int e2e_ready(const char *agent);

/* Writes `script` (a JSON text) to <dir>/script.json and starts the fake on
 * a free loopback port logging to <dir>/requests.jsonl.  Fails the test if
 * it does not come up. */
void e2e_fake_start(struct e2e_fake *f, const char *dir, const char *script);

/* SIGTERM, wait (SIGKILL after 5 s). */
void e2e_fake_stop(struct e2e_fake *f);

/* new: the logged requests to `path_prefix` (e.g. "/v1/messages") as an
 * array of log records, in order. */
json_t *e2e_fake_requests(const struct e2e_fake *f, const char *path_prefix);

/* Starts the server on a fresh data dir with --agents-dir $SJ_AGENTS_DIR
 * and the extra args, from the working directory `cwd` (the directory new
 * sessions run their agent in). */
void e2e_server_start(struct sj_server *s, const char *cwd, const char *const *extra_args);

/* What one end-to-end test runs: the server, the fake model, and their
 * directories.  A test whose model is something else (Amp's stand-in)
 * leaves `fake` unstarted and may keep the stand-in's files in fake_dir. */
struct e2e_rig {
    struct sj_server srv;
    struct e2e_fake fake;
    char work[512];     /* the working directory sessions run their agent in */
    char fake_dir[512];
    int started;        /* srv was started: teardown stops and releases it */
};

/* cmocka setup: *state becomes a new rig with nothing started. */
int e2e_rig_setup(void **state);

/* cmocka teardown: stops what the rig started and frees it.  Non-zero (the
 * test fails) when the server did not exit cleanly on SIGTERM. */
int e2e_rig_teardown(void **state);

/* A cmocka test on a rig of its own. */
#define E2E_TEST(f) cmocka_unit_test_setup_teardown(f, e2e_rig_setup, e2e_rig_teardown)

/* Skips the test unless e2e_ready(agent); starts the fake with `script`
 * in a fresh dir, points the agent's CLI at it (base URL and API key in the
 * environment the server passes on), then starts the server as
 * e2e_server_start does, in a fresh working dir.  agent: "claude", "codex",
 * "opencode", "qwen", "pi" or "gemini". */
void e2e_rig_start(struct e2e_rig *r, const char *agent, const char *script,
                   const char *const *extra_args);

/* Polls the session's events until one after sequence `after` has type
 * `type` and (if `pred` is non-NULL) pred(event) != 0.  Returns that event
 * (new); fails the test after timeout_ms with the events seen. */
json_t *e2e_wait_event(struct sj_server *s, const char *session_id, long long after,
                       const char *type, int (*pred)(const json_t *event), int timeout_ms);

/* The completed assistant message (item.completed, kind message, role
 * assistant) after `after`.  new. */
json_t *e2e_wait_assistant_done(struct sj_server *s, const char *session_id, long long after,
                                int timeout_ms);

/* new: every event of the session, as an array. */
json_t *e2e_events(struct sj_server *s, const char *session_id);

/* The highest sequence so far. */
long long e2e_last_sequence(struct sj_server *s, const char *session_id);

/* new: the serverStatus of `agent` in GET /v1/agents; fails the test if
 * the agent has none. */
json_t *e2e_server_status(struct sj_server *s, const char *agent);

/* 1 if the JSON text of `v` contains `needle`. */
int e2e_json_contains(const json_t *v, const char *needle);

/* Calls `visit` with the pid, command name and state letter ('Z' for a
 * zombie) of every child of `parent`, until `visit` returns non-zero.
 * Returns that value, 0 when all were visited, or -1 if /proc cannot be
 * read. */
int e2e_each_child(pid_t parent, int (*visit)(void *ctx, pid_t pid, const char *comm, char state),
                   void *ctx);

/* The pid of the server's child process whose command name is `comm`
 * (e.g. "claude"), or 0 if there is none. */
pid_t e2e_child_pid(pid_t parent, const char *comm);

/* Same, among all descendants (e.g. the native codex under its node
 * wrapper). */
pid_t e2e_descendant_pid(pid_t root, const char *comm);

#endif
