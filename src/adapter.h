/* What an agent adapter is: a capabilities record, its modes, and a table of
 * functions the session layer calls.  One file per agent in adapters/
 * defines a `const struct adapter adapter_<name>`; adapters/adapters.def
 * lists them, one ADAPTER(name) line each.
 *
 * Adapters never touch the journal or HTTP.  They report what the agent did
 * as conversions (see event.h) through the host functions in
 * `struct adapter_host`, which normalize and journal them.
 */
#ifndef SJ_ADAPTER_H
#define SJ_ADAPTER_H

#include "err.h"

#include <jansson.h>
#include <stddef.h>

/* The v1 AgentCapabilities record. */
struct adapter_caps {
    unsigned plan_mode : 1;
    unsigned permissions : 1;
    unsigned questions : 1;
    unsigned tool_calls : 1;
    unsigned tool_results : 1;
    unsigned text_messages : 1;
    unsigned images : 1;
    unsigned file_attachments : 1;
    unsigned session_lifecycle : 1;
    unsigned error_events : 1;
    unsigned reasoning : 1;
    unsigned status : 1;
    unsigned command_execution : 1;
    unsigned file_changes : 1;
    unsigned mcp_tools : 1;
    unsigned streaming_deltas : 1;
    unsigned item_started : 1;
    unsigned shared_process : 1;
};

struct adapter_mode {
    const char *id;
    const char *name;
    const char *description;
};

struct adapter_ctx;

/* How an adapter reports events.  Provided by the session layer. */
struct adapter_host {
    /* Normalizes and journals `conversions` (a borrowed array) now, waiting
     * for the commit.  0, or the journal's error. */
    int (*emit)(struct adapter_ctx *ctx, const json_t *conversions, struct err *err);
    /* Queues `conversions` (stolen array) to be journaled one by one,
     * `delay_ms` apart, on the supervisor loop.  Dropped if the session is
     * terminated first. */
    int (*emit_paced)(struct adapter_ctx *ctx, json_t *conversions, unsigned delay_ms,
                      struct err *err);
    /* Records the adapter's state (JSON text, copied) to be committed in the
     * same transaction as the next emit(), and handed back as saved_state
     * after a restart. */
    int (*save_state)(struct adapter_ctx *ctx, const char *state_json, struct err *err);
};

/* What an adapter sees of its session.  Strings are borrowed and live as long
 * as the session; `state` belongs to the adapter. */
struct adapter_ctx {
    const struct adapter_host *host;
    const char *session_id;
    const char *agent_mode;
    const char *permission_mode;
    const char *model;             /* may be NULL */
    const char *variant;           /* may be NULL */
    const char *native_session_id; /* may be NULL */
    /* The adapter's persisted state (JSON text), loaded from the session
     * row at restart; NULL for a new session. */
    const char *saved_state;
    void *state;
    /* Server-wide settings an adapter may use. */
    unsigned mock_delay_ms;
};

struct adapter {
    const char *name;
    struct adapter_caps caps;
    const struct adapter_mode *modes;
    size_t n_modes;
    /* The agent can continue a session after its process ended. */
    int can_resume;
    /* Set for agents that live inside the server ("builtin"); others report
     * the version of the binary they find. */
    const char *builtin_version;

    /* Validates the requested modes (NULL: default) and writes the effective
     * ones into agent_mode[32] / permission_mode[32].  ERR_MODE_NOT_SUPPORTED
     * or ERR_INVALID with a message. */
    int (*resolve_modes)(const char *agent_mode, const char *permission_mode,
                         char agent_mode_out[32], char permission_mode_out[32],
                         struct err *err);
    /* Prepares a new session; may set ctx->state.  Fills native_id_out[128]
     * with the agent's own session id when it is known at once ("" if not).
     * Thread: HTTP worker, session locked. */
    int (*start_session)(struct adapter_ctx *ctx, char native_id_out[128], struct err *err);
    /* Hands a user message to the agent.  Thread: HTTP worker, session locked. */
    int (*send_message)(struct adapter_ctx *ctx, const char *message, struct err *err);
    /* Forwards a permission reply ("once", "always", "reject"); `pending` is
     * the permission.requested data.  May be NULL when the agent needs no
     * forwarding.  The session layer journals permission.resolved itself. */
    int (*reply_permission)(struct adapter_ctx *ctx, const char *permission_id,
                            const char *reply, const json_t *pending, struct err *err);
    /* Forwards answers (array of arrays of strings) to a question.  May be NULL. */
    int (*reply_question)(struct adapter_ctx *ctx, const char *question_id,
                          const json_t *answers, const json_t *pending, struct err *err);
    /* Forwards a question rejection.  May be NULL. */
    int (*reject_question)(struct adapter_ctx *ctx, const char *question_id,
                           const json_t *pending, struct err *err);
    /* Stops the agent's work for this session.  May be NULL. */
    void (*terminate)(struct adapter_ctx *ctx);
    /* Frees ctx->state.  May be NULL. */
    void (*free_state)(struct adapter_ctx *ctx);
};

#define ADAPTER(name) extern const struct adapter adapter_##name;
#include "adapters.def"
#undef ADAPTER

#endif
