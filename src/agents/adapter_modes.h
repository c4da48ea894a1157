/* The rule every adapter's resolve_modes follows: defaults "build" and
 * "default"; an agent mode the agent does not have, or a permission mode of
 * the v1 API it cannot honour, is mode_not_supported; a permission mode the
 * API does not know is invalid.  Each adapter states only its lists. */
#ifndef SJ_ADAPTER_MODES_H
#define SJ_ADAPTER_MODES_H

#include "base/err.h"

struct adapter_mode_rule {
    const char *agent; /* named in the error */
    /* NULL-terminated.  NULL: any name of 1 to 31 letters, digits, '-', '_'
     * or '.', passed on for the agent to judge (OpenCode's user-defined
     * agents). */
    const char *const *agent_modes;
    /* NULL-terminated: which of the API's permission modes it honours. */
    const char *const *permission_modes;
};

/* Validates agent_mode / permission_mode (NULL: the defaults) against
 * `rule` and writes the effective ones into the 32-byte outputs.
 * ERR_MODE_NOT_SUPPORTED or ERR_INVALID with a message. */
int adapter_modes_resolve(const struct adapter_mode_rule *rule, const char *agent_mode,
                          const char *permission_mode, char agent_mode_out[32],
                          char permission_mode_out[32], struct err *err);

#endif
