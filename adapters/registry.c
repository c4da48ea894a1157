/* The agents of the v1 API, in its order, one per line of adapters.def.
 * Each takes its capabilities and modes from its adapter (docs/agents.md
 * shows them as a table, which test_agents_matrix keeps equal to
 * GET /v1/agents). */
#include "adapters/registry.h"

#include "adapters/acp.h"
#include "agents/install.h"
#include "agents/supervisor_restart.h"

#include <string.h>

/* The built-in agents first, then room for the ones added at start-up. */
static struct registry_entry registry_table[REGISTRY_MAX] = {
#define ADAPTER(name) { #name, &adapter_##name },
#include "adapters/adapters.def"
#undef ADAPTER
#define ACP_AGENT(id, binary, args, vars, reports) { #id, &adapter_##id },
#include "adapters/acp_agents.def"
#undef ACP_AGENT
};

enum {
    REGISTRY_BUILTIN = 0
#define ADAPTER(name) +1
#include "adapters/adapters.def"
#undef ADAPTER
#define ACP_AGENT(id, binary, args, vars, reports) +1
#include "adapters/acp_agents.def"
#undef ACP_AGENT
};

static size_t registry_count = REGISTRY_BUILTIN;

#define REGISTRY_COUNT registry_count

const struct registry_entry *registry_all(size_t *count)
{
    *count = REGISTRY_COUNT;
    return registry_table;
}

int registry_add_acp(const char *definition, struct err *err)
{
    if (registry_count == REGISTRY_MAX)
        return err_set(err, ERR_INVALID, "too many agents: at most %d", REGISTRY_MAX);
    const struct adapter *a = NULL;
    int rc = adapter_acp_custom_new(definition, &a, err);
    if (rc)
        return rc;
    struct err lookup;
    if (registry_find(a->name, &lookup)) {
        rc = err_set_subject(err, ERR_CONFLICT, a->name, "--acp-agent: there is an agent %s "
                                                         "already", a->name);
        adapter_acp_custom_free(a);
        return rc;
    }
    registry_table[registry_count++] = (struct registry_entry){ a->name, a };
    return 0;
}

void registry_reset(void)
{
    while (registry_count > REGISTRY_BUILTIN) {
        registry_count--;
        adapter_acp_custom_free(registry_table[registry_count].adapter);
        registry_table[registry_count] = (struct registry_entry){ NULL, NULL };
    }
}

size_t registry_index(const struct registry_entry *e)
{
    return (size_t)(e - registry_table);
}

const struct registry_entry *registry_find(const char *id, struct err *err)
{
    for (size_t i = 0; i < REGISTRY_COUNT; i++)
        if (strcmp(registry_table[i].id, id) == 0)
            return &registry_table[i];
    err_set_subject(err, ERR_UNSUPPORTED_AGENT, id, "unsupported agent: %s", id);
    return NULL;
}

/* new: the AgentCapabilities object for `c`. */
static json_t *registry_caps_json(const struct adapter_caps *c)
{
    return json_pack("{s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b}",
                     "planMode", c->plan_mode, "permissions", c->permissions,
                     "questions", c->questions, "toolCalls", c->tool_calls,
                     "toolResults", c->tool_results, "textMessages", c->text_messages,
                     "images", c->images, "fileAttachments", c->file_attachments,
                     "sessionLifecycle", c->session_lifecycle, "errorEvents", c->error_events,
                     "reasoning", c->reasoning, "status", c->status,
                     "commandExecution", c->command_execution, "fileChanges", c->file_changes,
                     "mcpTools", c->mcp_tools, "streamingDeltas", c->streaming_deltas,
                     "itemStarted", c->item_started, "sharedProcess", c->shared_process);
}

static json_t *registry_info_json(const struct registry_entry *e, const char *agents_dir,
                                  void *instance)
{
    /* Field order as the v1 AgentInfo: id, installed, version, path,
     * capabilities, serverStatus.  The mock lives inside the server: always
     * installed, no binary. */
    struct install_info found = { 0 };
    const struct adapter *a = e->adapter;
    if (!a->builtin_version && install_status(agents_dir, e->id, &found, NULL) != 0)
        memset(&found, 0, sizeof found);
    /* An agent run as a command of its own: installed when it resolves. */
    if (!a->builtin_version && !found.installed && install_find_command(a->command, found.path))
        found.installed = 1;
    int installed = a->builtin_version || found.installed;
    json_t *info = json_pack("{s:s,s:b}", "id", e->id, "installed", installed);
    json_t *caps = registry_caps_json(&e->adapter->caps);
    int rc = info && caps ? 0 : -1;
    if (rc == 0 && a->builtin_version)
        rc = json_object_set_new(info, "version", json_string(a->builtin_version));
    if (rc == 0 && found.installed && found.version[0])
        rc = json_object_set_new(info, "version", json_string(found.version));
    if (rc == 0 && found.installed)
        rc = json_object_set_new(info, "path", json_string(found.path));
    if (rc == 0) {
        rc = json_object_set_new(info, "capabilities", caps);
        caps = NULL;
    }
    if (rc == 0 && e->adapter->caps.shared_process) {
        json_t *status = a->server_status_json ? a->server_status_json(instance) : NULL;
        if (!status)
            status = supervisor_restart_status_json(NULL);
        rc = json_object_set_new(info, "serverStatus", status);
    }
    json_decref(caps);
    if (rc) {
        json_decref(info);
        return NULL;
    }
    return info;
}

json_t *registry_list_json(const char *agents_dir, void *const instances[])
{
    json_t *list = json_array();
    if (!list)
        return NULL;
    for (size_t i = 0; i < REGISTRY_COUNT; i++) {
        json_t *info = registry_info_json(&registry_table[i], agents_dir, instances[i]);
        if (!info || json_array_append_new(list, info) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return json_pack("{s:o}", "agents", list);
}

json_t *registry_modes_json(const char *id, void *const instances[], struct err *err)
{
    const struct registry_entry *e = registry_find(id, err);
    if (!e)
        return NULL;
    json_t *live = e->adapter->modes_json ? e->adapter->modes_json(instances[e - registry_table]) : NULL;
    if (live) {
        json_t *out = json_pack("{s:o}", "modes", live);
        if (!out)
            err_set(err, ERR_NOMEM, "out of memory");
        return out;
    }
    json_t *modes = json_array();
    if (!modes) {
        err_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < e->adapter->n_modes; i++) {
        json_t *m = json_pack("{s:s,s:s,s:s}", "id", e->adapter->modes[i].id, "name", e->adapter->modes[i].name,
                              "description", e->adapter->modes[i].description);
        if (!m || json_array_append_new(modes, m) != 0) {
            json_decref(modes);
            err_set(err, ERR_NOMEM, "out of memory");
            return NULL;
        }
    }
    json_t *out = json_pack("{s:o}", "modes", modes);
    if (!out)
        err_set(err, ERR_NOMEM, "out of memory");
    return out;
}

int registry_install_start(const char *agents_dir, const char *id, int reinstall,
                           int if_missing, struct install_job **job_out, struct err *err)
{
    *job_out = NULL;
    const struct registry_entry *e = registry_find(id, err);
    if (!e)
        return ERR_UNSUPPORTED_AGENT;
    if (e->adapter->builtin_version)
        return 0; /* built in: always installed */
    char path[PATH_MAX];
    if (!install_package_for(e->id) && install_find_command(e->adapter->command, path))
        return 0; /* its own command, there: nothing to install */
    if (!install_package_for(e->id) && e->adapter->command)
        return err_set_subject(err, ERR_INSTALL_FAILED, e->id,
                               "install failed: %s is run as '%s', which is not found "
                               "(install it yourself)",
                               e->id, e->adapter->command);
    if (!install_package_for(e->id))
        return err_set_subject(err, ERR_INSTALL_FAILED, e->id,
                               "install failed: %s (no package is pinned for it)", e->id);
    struct install_options o = { .reinstall = reinstall, .if_missing = if_missing,
                                 .progress_fd = -1 };
    return install_start(agents_dir, e->id, &o, job_out, err);
}
