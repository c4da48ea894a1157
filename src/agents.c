/* The five agents of the v1 API.  Each has its adapter compiled in and
 * takes its capabilities and modes from it (docs/agents.md shows them as a
 * table, which test_agents_matrix keeps equal to GET /v1/agents); an entry
 * without an adapter would be listed, as clients expect, and reported as
 * not installed. */
#include "agents.h"

#include "install.h"

#include <string.h>

static struct agents_entry agents_table[] = {
    { "claude", &adapter_claude, { 0 }, NULL, 0 },
    { "codex", &adapter_codex, { 0 }, NULL, 0 },
    { "opencode", &adapter_opencode, { 0 }, NULL, 0 },
    { "amp", &adapter_amp, { 0 }, NULL, 0 },
    { "mock", &adapter_mock, { 0 }, NULL, 0 },
};

#define AGENTS_COUNT (sizeof agents_table / sizeof agents_table[0])

/* An entry with an adapter describes itself through that adapter. */
static const struct agents_entry *agents_resolved(size_t i)
{
    static struct agents_entry resolved[AGENTS_COUNT];
    static int ready;
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        /* Idempotent: racing threads write the same values. */
        for (size_t k = 0; k < AGENTS_COUNT; k++) {
            resolved[k] = agents_table[k];
            const struct adapter *a = agents_table[k].adapter;
            if (a) {
                resolved[k].caps = a->caps;
                resolved[k].modes = a->modes;
                resolved[k].n_modes = a->n_modes;
            }
        }
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    return &resolved[i];
}

const struct agents_entry *agents_all(size_t *count)
{
    *count = AGENTS_COUNT;
    return agents_resolved(0);
}

const struct agents_entry *agents_find(const char *id, struct err *err)
{
    for (size_t i = 0; i < AGENTS_COUNT; i++)
        if (strcmp(agents_table[i].id, id) == 0)
            return agents_resolved(i);
    err_set_subject(err, ERR_UNSUPPORTED_AGENT, id, "unsupported agent: %s", id);
    return NULL;
}

json_t *agents_caps_json(const struct adapter_caps *c)
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

static json_t *agents_info_json(const struct agents_entry *e, const char *agents_dir)
{
    /* Field order as the v1 AgentInfo: id, installed, version, path,
     * capabilities, serverStatus.  The mock lives inside the server: always
     * installed, no binary.  An agent without an adapter is not drivable, so
     * it is reported as not installed whatever the machine has. */
    struct install_info found = { 0 };
    const struct adapter *a = e->adapter;
    if (a && !a->builtin_version && install_status(agents_dir, e->id, &found, NULL) != 0)
        memset(&found, 0, sizeof found);
    int installed = a && (a->builtin_version || found.installed);
    json_t *info = json_pack("{s:s,s:b}", "id", e->id, "installed", installed);
    json_t *caps = agents_caps_json(&e->caps);
    int rc = info && caps ? 0 : -1;
    if (rc == 0 && a && a->builtin_version)
        rc = json_object_set_new(info, "version", json_string(a->builtin_version));
    if (rc == 0 && found.installed && found.version[0])
        rc = json_object_set_new(info, "version", json_string(found.version));
    if (rc == 0 && found.installed)
        rc = json_object_set_new(info, "path", json_string(found.path));
    if (rc == 0) {
        rc = json_object_set_new(info, "capabilities", caps);
        caps = NULL;
    }
    if (rc == 0 && e->caps.shared_process) {
        json_t *status = a && a->server_status_json ? a->server_status_json() : NULL;
        if (!status)
            status = json_pack("{s:s,s:i}", "status", "stopped", "restartCount", 0);
        rc = json_object_set_new(info, "serverStatus", status);
    }
    json_decref(caps);
    if (rc) {
        json_decref(info);
        return NULL;
    }
    return info;
}

json_t *agents_list_json(const char *agents_dir)
{
    json_t *list = json_array();
    if (!list)
        return NULL;
    for (size_t i = 0; i < AGENTS_COUNT; i++) {
        json_t *info = agents_info_json(agents_resolved(i), agents_dir);
        if (!info || json_array_append_new(list, info) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return json_pack("{s:o}", "agents", list);
}

json_t *agents_modes_json(const char *id, struct err *err)
{
    const struct agents_entry *e = agents_find(id, err);
    if (!e)
        return NULL;
    json_t *live = e->adapter && e->adapter->modes_json ? e->adapter->modes_json() : NULL;
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
    for (size_t i = 0; i < e->n_modes; i++) {
        json_t *m = json_pack("{s:s,s:s,s:s}", "id", e->modes[i].id, "name", e->modes[i].name,
                              "description", e->modes[i].description);
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

int agents_install(const char *agents_dir, const char *id, int reinstall, int if_missing,
                   struct err *err)
{
    const struct agents_entry *e = agents_find(id, err);
    if (!e)
        return ERR_UNSUPPORTED_AGENT;
    if (e->adapter && e->adapter->builtin_version)
        return 0; /* built in: always installed */
    if (!e->adapter || !install_package_for(e->id))
        return err_set_subject(err, ERR_INSTALL_FAILED, e->id,
                               "install failed: %s (this build has no adapter for it yet)",
                               e->id);
    struct install_options o = { .reinstall = reinstall, .if_missing = if_missing,
                                 .progress_fd = -1 };
    return install_agent(agents_dir, e->id, &o, NULL, err);
}
