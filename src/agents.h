/* The agent registry: the five agent ids of the v1 API, their capabilities
 * and modes, and the adapter that drives each one (if compiled in). */
#ifndef SJ_AGENTS_H
#define SJ_AGENTS_H

#include "adapter.h"
#include "err.h"

#include <jansson.h>

struct agents_entry {
    const char *id;
    const struct adapter *adapter; /* NULL: known to the API, not yet drivable */
    struct adapter_caps caps;
    const struct adapter_mode *modes;
    size_t n_modes;
};

/* borrowed: the entry for `id`, or NULL (ERR_UNSUPPORTED_AGENT in err). */
const struct agents_entry *agents_find(const char *id, struct err *err);

/* The entries in API order (claude, codex, opencode, amp, mock). */
const struct agents_entry *agents_all(size_t *count);

/* new: the AgentCapabilities object for `caps`. */
json_t *agents_caps_json(const struct adapter_caps *caps);

/* new: {"agents":[AgentInfo...]}.  NULL on allocation failure. */
json_t *agents_list_json(void);

/* new: {"modes":[AgentModeInfo...]} for the agent, or NULL with err set. */
json_t *agents_modes_json(const char *id, struct err *err);

#endif
