/* The agent registry: the agent ids of the v1 API (adapters.def), their
 * capabilities and modes, and the adapter that drives each one. */
#ifndef SJ_REGISTRY_H
#define SJ_REGISTRY_H

#include "agents/adapter.h"
#include "base/err.h"

#include <jansson.h>

#define ADAPTER(name) extern const struct adapter adapter_##name;
#include "adapters/adapters.def"
#undef ADAPTER

struct registry_entry {
    const char *id;
    const struct adapter *adapter;
};

/* borrowed: the entry for `id`, or NULL (ERR_UNSUPPORTED_AGENT in err). */
const struct registry_entry *registry_find(const char *id, struct err *err);

/* The entries in API order (claude, codex, opencode, amp, mock). */
const struct registry_entry *registry_all(size_t *count);

/* The position of `e` (an entry of registry_all()) in that array. */
size_t registry_index(const struct registry_entry *e);

/* new: the AgentCapabilities object for `caps`. */
json_t *registry_caps_json(const struct adapter_caps *caps);

/* `instances` below is indexed like registry_all(): each adapter's
 * instance (adapter.h instance_new), NULL where it has none. */

/* new: {"agents":[AgentInfo...]}: `installed`, `version` and `path` from
 * what is really there (install_status(): the pinned install under
 * agents_dir, then PATH; built-in agents are always installed), and each
 * shared process's serverStatus from its adapter.  May look at the file
 * system and run a binary's --version.  NULL on allocation failure.
 * Thread: HTTP worker. */
json_t *registry_list_json(const char *agents_dir, void *const instances[]);

/* Installs agent `id` (POST /v1/agents/{agent}/install and the lazy install
 * of session creation): a no-op for built-in agents; with `if_missing`, a
 * no-op when any binary is found; else the pinned version under agents_dir
 * (see install_agent()).  ERR_UNSUPPORTED_AGENT, ERR_INSTALL_FAILED.  Blocks
 * while npm runs.  Thread: HTTP worker or main. */
int registry_install(const char *agents_dir, const char *id, int reinstall, int if_missing,
                   struct err *err);

/* new: {"modes":[AgentModeInfo...]} for the agent, or NULL with err set. */
json_t *registry_modes_json(const char *id, void *const instances[], struct err *err);

#endif
