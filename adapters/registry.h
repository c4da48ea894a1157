/* The agent registry: the agent ids of the v1 API (adapters.def), their
 * capabilities and modes, and the adapter that drives each one. */
#ifndef SJ_REGISTRY_H
#define SJ_REGISTRY_H

#include "agents/adapter.h"
#include "base/err.h"

#include <jansson.h>

struct install_job;

#define ADAPTER(name) extern const struct adapter adapter_##name;
#include "adapters/adapters.def"
#undef ADAPTER
#define ACP_AGENT(id, binary, args, vars, reports) extern const struct adapter adapter_##id;
#include "adapters/acp_agents.def"
#undef ACP_AGENT

/* The most agents one server knows (built-in and --acp-agent). */
#define REGISTRY_MAX 64

struct registry_entry {
    const char *id;
    const struct adapter *adapter;
};

/* borrowed: the entry for `id`, or NULL (ERR_UNSUPPORTED_AGENT in err). */
const struct registry_entry *registry_find(const char *id, struct err *err);

/* Adds an ACP agent from "NAME=COMMAND [ARGS...]" (`server --acp-agent`)
 * after the built-in ones.  ERR_INVALID for a bad definition, ERR_CONFLICT
 * for a name the registry has, ERR_INVALID past REGISTRY_MAX agents.
 * Thread: main, before any sessions_open(): entries never move or go once
 * sessions point at them. */
int registry_add_acp(const char *definition, struct err *err);

/* Forgets the agents registry_add_acp() added (tests; the server keeps
 * them for its life).  Thread: main, with no sessions open. */
void registry_reset(void);

/* The entries in API order (claude, codex, opencode, amp, mock, then the
 * ACP agents of acp_agents.def, then those registry_add_acp() added). */
const struct registry_entry *registry_all(size_t *count);

/* The position of `e` (an entry of registry_all()) in that array. */
size_t registry_index(const struct registry_entry *e);


/* `instances` below is indexed like registry_all(): each adapter's
 * instance (adapter.h instance_new), NULL where it has none. */

/* new: {"agents":[AgentInfo...]}: `installed`, `version` and `path` from
 * what is really there (install_status(): the pinned install under
 * agents_dir, then PATH; built-in agents are always installed), and each
 * shared process's serverStatus from its adapter.  May look at the file
 * system and run a binary's --version.  NULL on allocation failure.
 * Thread: HTTP worker. */
json_t *registry_list_json(const char *agents_dir, void *const instances[]);

/* Starts installing agent `id` in the background (POST
 * /v1/agents/{agent}/install and the lazy install of session creation), see
 * install_start(): *job_out NULL when there is nothing to do (a built-in
 * agent; with `if_missing`, any binary found; else the pinned version under
 * agents_dir is there), else new: the running install to wait for.
 * ERR_UNSUPPORTED_AGENT, ERR_INSTALL_FAILED.  Never waits for npm.
 * Thread: any. */
int registry_install_start(const char *agents_dir, const char *id, int reinstall,
                           int if_missing, struct install_job **job_out, struct err *err);

/* new: {"modes":[AgentModeInfo...]} for the agent, or NULL with err set. */
json_t *registry_modes_json(const char *id, void *const instances[], struct err *err);

#endif
