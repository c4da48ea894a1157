/* Sessions: the in-memory registry of live sessions in front of the journal.
 *
 * A session's durable state is its journal row and events.  In memory it
 * also has a lock, its adapter context and a normalizer, which is built
 * lazily from the session's own events on first write after a restart, so
 * start-up reads only the sessions table.  Every write goes through the
 * session's lock: normalize, then hand to the journal in sequence order.
 *
 * Reads (event pages, SSE) never come here: they go straight to the journal.
 */
#ifndef SJ_SESSIONS_H
#define SJ_SESSIONS_H

#include "base/err.h"
#include "journal/journal.h"
#include "agents/supervisor.h"

#include <jansson.h>

typedef struct sessions sessions_t;

struct sessions_config {
    unsigned mock_delay_ms; /* pause between the mock agent's events */
    const char *data_dir;   /* the server's data directory (copied) */
    const char *agents_dir; /* where agent CLIs are installed (copied); NULL:
                             * <data_dir>/agents */
};

/* Loads every session row from the journal.  new: free with sessions_free()
 * after the supervisor has stopped.  Thread: main. */
int sessions_open(journal_t *journal, supervisor_t *supervisor,
                  const struct sessions_config *config, sessions_t **out, struct err *err);

/* Asks every adapter to stop its agent processes and its pacing
 * (on the supervisor loop), journaling nothing more: a session whose agent
 * is stopped this way is not ended, it resumes after a restart.  Call
 * before supervisor_stop(), which then waits for those processes to exit. */
void sessions_close(sessions_t *s);
void sessions_free(sessions_t *s);

/* A CreateSessionRequest, already parsed.  Strings borrowed; NULL = absent. */
struct sessions_create_request {
    const char *agent;
    const char *agent_mode;
    const char *permission_mode;
    const char *model;
    const char *variant;
    const char *agent_version;
};

/* borrowed: each adapter's instance, indexed like registry_all() (for
 * registry_list_json() and registry_modes_json()). */
void *const *sessions_instances(const sessions_t *s);

/* borrowed: where agent CLIs are installed (for GET /v1/agents and installs). */
const char *sessions_agents_dir(const sessions_t *s);

struct install_job;

/* The first step of a create: checks the request's agent and modes and
 * starts installing the agent if it must be and is not (as the reference,
 * on first use).  *job_out NULL: go on with sessions_create(); else new:
 * the install to wait for first (see install_start()).  Never waits for
 * npm.  ERR_UNSUPPORTED_AGENT, ERR_MODE_NOT_SUPPORTED, ERR_NOT_INSTALLED,
 * ERR_INSTALL_FAILED. */
int sessions_create_install(sessions_t *s, const struct sessions_create_request *req,
                            struct install_job **job_out, struct err *err);

/* Idempotency keys: each call below that changes state takes `idem`, the
 * outcome to remember for a request sent with an Idempotency-Key (NULL:
 * none).  When the call succeeds, the record is committed in the same
 * transaction as the call's first batch (or, if the call committed
 * nothing, alone before it returns); when it fails, it is not committed,
 * except where the call says so.  The record is borrowed for the call. */

/* new (free()): the CreateSessionResponse text for a session whose native
 * id is `native_id` ("" or NULL: none), or NULL without memory.  The one
 * source of those bytes, for the answer and its remembered copy. */
char *sessions_create_answer(const char *native_id);

/* Creates the session and journals its session.started.  It does not
 * install the agent (sessions_create_install() does).  The session's
 * working directory is the server's current directory, journaled with it.  Fills
 * native_id_out[128] ("" if none).  ERR_CONFLICT, ERR_UNSUPPORTED_AGENT,
 * ERR_MODE_NOT_SUPPORTED, ERR_INVALID, ERR_NOT_INSTALLED, ERR_STORAGE. */
int sessions_create(sessions_t *s, const char *session_id,
                    const struct sessions_create_request *req, char native_id_out[128],
                    const struct journal_idem *idem, struct err *err);

/* new: {"sessions":[SessionInfo...]}, newest created first, every row with
 * its summary (status, lastSequence, createdAt, updatedAt, title, pending
 * ids).  With q non-NULL: the page `q` asks for, plus "nextCursor" when
 * more rows follow.  ERR_INVALID for a bad cursor or status. */
json_t *sessions_list_json(sessions_t *s, const struct journal_session_query *q,
                           struct err *err);

/* new: one session's SessionInfo with its summary; ERR_NOT_FOUND. */
json_t *sessions_get_json(sessions_t *s, const char *session_id, struct err *err);

/* 1 if the session exists. */
int sessions_exists(sessions_t *s, const char *session_id);

/* Sends a user message.  ERR_INVALID for a blank one (empty or whitespace
 * only: it would start no turn).  ERR_NOT_FOUND, ERR_INVALID / ERR_AGENT_EXITED for
 * an ended session, ERR_STORAGE.  *before_out (if non-NULL) gets the
 * session's committed last sequence taken before the message was journaled,
 * for a turn stream to start after (also stored as the record's `after`).
 * The record is committed with the user's message: if a later step of the
 * call fails (the synthetic assistant start, handing the turn to the
 * agent), the message is taken all the same and the record says so. */
int sessions_send_message(sessions_t *s, const char *session_id, const char *message,
                          uint64_t *before_out, const struct journal_idem *idem,
                          struct err *err);

/* reply: "once", "always" or "reject".  ERR_NOT_FOUND for the session,
 * ERR_INVALID for an unknown permission id. */
int sessions_reply_permission(sessions_t *s, const char *session_id, const char *permission_id,
                              const char *reply, const struct journal_idem *idem,
                              struct err *err);
/* answers: array of arrays of strings (borrowed). */
int sessions_reply_question(sessions_t *s, const char *session_id, const char *question_id,
                            const json_t *answers, const struct journal_idem *idem,
                            struct err *err);
int sessions_reject_question(sessions_t *s, const char *session_id, const char *question_id,
                             const struct journal_idem *idem, struct err *err);

/* Ends the session (session.ended terminated by daemon).  A session that has
 * already ended is left as it is.  ERR_NOT_FOUND. */
int sessions_terminate(sessions_t *s, const char *session_id, const struct journal_idem *idem,
                       struct err *err);

#endif
