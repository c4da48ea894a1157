/* Mode validation shared by the adapters: see adapter_modes.h. */
#include "agents/adapter_modes.h"

#include <stdio.h>
#include <string.h>

/* The permission modes of the v1 API, whatever an agent makes of them. */
static const char *const adapter_modes_api_permissions[] = { "default", "plan", "bypass",
                                                             "acceptEdits", NULL };

static int adapter_modes_listed(const char *const *list, const char *mode)
{
    for (; *list; list++)
        if (strcmp(*list, mode) == 0)
            return 1;
    return 0;
}

static int adapter_modes_plain_name(const char *mode)
{
    size_t n = strlen(mode);
    if (n == 0 || n >= 32)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = mode[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

int adapter_modes_resolve(const struct adapter_mode_rule *rule, const char *agent_mode,
                          const char *permission_mode, char agent_mode_out[32],
                          char permission_mode_out[32], struct err *err)
{
    const char *am = agent_mode ? agent_mode : "build";
    const char *pm = permission_mode ? permission_mode : "default";
    int am_ok = rule->agent_modes ? adapter_modes_listed(rule->agent_modes, am)
                                  : adapter_modes_plain_name(am);
    if (!am_ok)
        return err_set_mode(err, rule->agent, am);
    if (!adapter_modes_listed(adapter_modes_api_permissions, pm))
        return err_set(err, ERR_INVALID, "invalid request: invalid permission mode: %s", pm);
    if (!adapter_modes_listed(rule->permission_modes, pm))
        return err_set_mode(err, rule->agent, pm);
    snprintf(agent_mode_out, 32, "%s", am);
    snprintf(permission_mode_out, 32, "%s", pm);
    return 0;
}
