/* What an agent adapter is: a capabilities record, its modes, and a table of
 * functions the session layer calls.  One file per agent in adapters/
 * defines a `const struct adapter adapter_<name>`; adapters/adapters.def
 * lists them for the registry (adapters/registry.h), one ADAPTER(name) line each.
 *
 * Adapters never touch the journal or HTTP.  They report what the agent did
 * as conversions (see event.h) through the host functions in
 * `struct adapter_host`, which normalize and journal them.
 */
#ifndef SJ_ADAPTER_H
#define SJ_ADAPTER_H

#include "base/err.h"
#include "agents/adapter_modes.h"
#include "agents/supervisor.h"

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

/* The server-wide settings an adapter's instance is made from.  Borrowed:
 * they live as long as the server. */
struct adapter_settings {
    supervisor_t *supervisor; /* the loop that owns the agents' processes */
    const char *data_dir;     /* the server's data directory */
    const char *agents_dir;   /* where agent CLIs are installed (install.h) */
    unsigned mock_delay_ms;   /* the mock agent's pause between events */
    const struct adapter *adapter; /* the adapter this instance is made for */
};

/* How an adapter reports events.  Provided by the session layer.
 *
 * Threads: emit and save_state are for the functions the session
 * layer calls with the session locked (HTTP workers).  Code running on the
 * supervisor loop (process output, exits, timers) uses emit_async only: it
 * takes the session lock itself, so it must never be called with it held,
 * and it never waits for the journal.  Functions called with the session
 * locked must never wait for the loop (the loop takes session locks to
 * journal): they hand work over with supervisor_post() and return. */
struct adapter_host {
    /* Normalizes and journals `conversions` (a borrowed array) now, waiting
     * for the commit.  0, or the journal's error.  Session locked. */
    int (*emit)(struct adapter_ctx *ctx, const json_t *conversions, struct err *err);
    /* Loop thread: locks the session, normalizes `conversions` (borrowed)
     * and queues them for the journal without waiting.  Dropped (0) once the
     * session was terminated through the API, or while the server is
     * shutting down. */
    int (*emit_async)(struct adapter_ctx *ctx, const json_t *conversions, struct err *err);
    /* Records the adapter's state (JSON text, copied) to be committed in the
     * same transaction as the next emit(), and handed back as saved_state
     * after a restart. */
    int (*save_state)(struct adapter_ctx *ctx, const char *state_json, struct err *err);
    /* new (free()) in *out: the session's conversation so far as plain
     * text (user and assistant messages, from the journal), for an agent
     * that lost it and is offered it as context; "" when there is none.
     * Session locked.  0, or the journal's error. */
    int (*transcript)(struct adapter_ctx *ctx, char **out, struct err *err);
};

/* What an adapter sees of its session.  Strings are borrowed and live as long
 * as the session; `state` belongs to the adapter.  Fields other than `state`
 * may only be read with the session locked (native_session_id and
 * binary_path change under the lock): loop-side code keeps copies. */
struct adapter_ctx {
    const struct adapter_host *host;
    supervisor_t *supervisor;      /* the loop that owns the agent's processes */
    const char *data_dir;          /* the server's data directory */
    const char *agents_dir;        /* where agent CLIs are installed (install.h) */
    /* The session's working directory, journaled at creation: the agent runs
     * there, and resumes from there after a restart. */
    const char *working_dir;
    /* The agent's binary as found when the session was created or loaded
     * (NULL if not found then); adapters look again when it is NULL. */
    const char *binary_path;
    const char *session_id;
    const char *agent_mode;
    const char *permission_mode;
    const char *model;             /* may be NULL */
    const char *variant;           /* may be NULL */
    const char *native_session_id; /* may be NULL */
    /* The adapter's persisted state (JSON text), loaded from the session
     * row at restart; NULL for a new session. */
    const char *saved_state;
    /* The MCP servers configured for working_dir (PUT /v1/config/mcp), as
     * {name: McpServerConfig} the way the v0.4 SDK sends them; NULL when
     * none.  Borrowed, read-only; adapters that take MCP servers pass them
     * on in the agent's own form when they start it. */
    const json_t *mcp_servers;
    /* The skills configured for working_dir (PUT /v1/config/skills),
     * resolved to directories: [{name, description, path}] (agents/skills.h);
     * NULL when none.  Borrowed, read-only, like mcp_servers. */
    const json_t *skills;
    void *state;
    /* The adapter's instance in this server (instance_new), shared by all
     * its sessions; NULL for an adapter without one. */
    void *instance;
};

struct adapter {
    const char *name;
    struct adapter_caps caps;
    const struct adapter_mode *modes;
    size_t n_modes;
    /* The agent can continue a session after its process ended. */
    int can_resume;
    /* The adapter hands ctx.skills to its agent: the session layer resolves
     * the configured skills (which may clone repositories) only then. */
    int takes_skills;
    /* Set for agents that live inside the server ("builtin"); others report
     * the version of the binary they find. */
    const char *builtin_version;
    /* For agents no npm package is pinned for: the command to run (a path,
     * or a name looked for on PATH, install_find_command()); the agent is
     * installed when it resolves.  NULL otherwise. */
    const char *command;
    /* The adapter's own description of the agent it drives (the ACP
     * adapter: the agent's launch line), read by its instance_new through
     * adapter_settings.adapter.  NULL when unused. */
    const void *spec;

    /* Which modes the agent takes (adapter_modes.h). */
    const struct adapter_mode_rule *mode_rule;
    /* Prepares a new session; may set ctx->state.  Fills native_id_out[128]
     * with the agent's own session id when it is known at once ("" if not).
     * Thread: HTTP worker, no lock held: the one adapter function that may
     * wait for the loop (bounded).  It must not hand the session to the
     * loop: the session may still be discarded (a conflicting create), and
     * it is freed then without a word to the adapter beyond free_state. */
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
    /* Frees ctx->state.  May be NULL.  Called after the loop has stopped. */
    void (*free_state)(struct adapter_ctx *ctx);
    /* Loop thread, at server shutdown: stop the agent's processes (SIGTERM,
     * then SIGKILL if they linger).  It may journal (emit_async) the end of
     * a turn it cuts short, never a session.ended: the session resumes
     * after a restart.  Nothing the agent does after this is journaled.
     * May be NULL. */
    void (*shutdown)(struct adapter_ctx *ctx);
    /* Makes the adapter's per-server state (a shared agent server, what it
     * learned of the agent): everything an adapter keeps beyond one session
     * lives there, never in process-wide variables, so two servers in one
     * process (the tests) do not meet.  *out may be NULL.  May be NULL.
     * Thread: main, at start-up, before any session exists. */
    int (*instance_new)(const struct adapter_settings *settings, void **out, struct err *err);
    /* Frees the instance.  May be NULL.  Thread: main, after the loop stopped
     * and every session's free_state. */
    void (*instance_free)(void *instance);
    /* new: the ServerStatusInfo of the instance's shared process, or NULL
     * for "stopped".  May be NULL.  Thread: any. */
    json_t *(*server_status_json)(void *instance);
    /* Loop thread, at server shutdown, once per adapter after every
     * session's shutdown: stop shared processes the same way.  May be NULL. */
    void (*shutdown_shared)(void *instance);
    /* new: the modes the agent's running process reports
     * ([{id, name, description}]), or NULL to list `modes`.  May be NULL.
     * Thread: any. */
    json_t *(*modes_json)(void *instance);
};

#endif
