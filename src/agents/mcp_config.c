/* McpServerConfig, re-spelled for each agent (see mcp_config.h). */
#include "agents/mcp_config.h"

#include <string.h>

/* Copies `from_key` of `src`, when it is set and not null, to `to_key` of
 * `dst`.  0, or -1 when out of memory. */
static int mcp_copy(json_t *dst, const char *to_key, const json_t *src, const char *from_key)
{
    json_t *v = json_object_get(src, from_key);
    if (!v || json_is_null(v))
        return 0;
    return json_object_set_new(dst, to_key, json_deep_copy(v));
}

static int mcp_is_local(const json_t *config)
{
    const char *type = json_string_value(json_object_get(config, "type"));
    return type && strcmp(type, "local") == 0;
}

/* The remote transport named by the SDK's free-form `transport`: "sse" for
 * the old HTTP+SSE transport, anything else the streamable HTTP one. */
static int mcp_is_sse(const json_t *config)
{
    const char *t = json_string_value(json_object_get(config, "transport"));
    return t && strcmp(t, "sse") == 0;
}

/* Builds {name: convert(config)} over `servers`; NULL when out of memory. */
static json_t *mcp_map(const json_t *servers, json_t *(*convert)(const json_t *config))
{
    json_t *out = json_object();
    const char *name;
    json_t *config;
    json_object_foreach((json_t *)servers, name, config) {
        if (!out)
            return NULL;
        json_t *one = convert(config);
        if (!one || json_object_set_new(out, name, one) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *mcp_claude_one(const json_t *c)
{
    json_t *o = json_object();
    int bad = !o;
    if (!bad && mcp_is_local(c))
        bad = json_object_set_new(o, "type", json_string("stdio")) ||
              mcp_copy(o, "command", c, "command") || mcp_copy(o, "args", c, "args") ||
              mcp_copy(o, "env", c, "env");
    else if (!bad)
        bad = json_object_set_new(o, "type", json_string(mcp_is_sse(c) ? "sse" : "http")) ||
              mcp_copy(o, "url", c, "url") || mcp_copy(o, "headers", c, "headers");
    /* Connected before the first model request, its tools offered from the
     * first turn on: by default Claude connects in the background and its
     * first request may go out without them. */
    if (!bad)
        bad = json_object_set_new(o, "alwaysLoad", json_true());
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *mcp_config_claude(const json_t *servers)
{
    json_t *map = mcp_map(servers, mcp_claude_one);
    return map ? json_pack("{s:o}", "mcpServers", map) : NULL;
}

static json_t *mcp_codex_one(const json_t *c)
{
    json_t *o = json_object();
    int bad = !o;
    if (!bad && mcp_is_local(c))
        bad = mcp_copy(o, "command", c, "command") || mcp_copy(o, "args", c, "args") ||
              mcp_copy(o, "env", c, "env") || mcp_copy(o, "cwd", c, "cwd");
    else if (!bad)
        bad = mcp_copy(o, "url", c, "url") || mcp_copy(o, "http_headers", c, "headers") ||
              mcp_copy(o, "env_http_headers", c, "envHeaders") ||
              mcp_copy(o, "bearer_token_env_var", c, "bearerTokenEnvVar");
    json_t *ms = json_object_get(c, "timeoutMs");
    if (!bad && json_is_integer(ms) && json_integer_value(ms) > 0) {
        /* Codex counts seconds: round up, so a short timeout stays non-zero. */
        json_int_t s = (json_integer_value(ms) + 999) / 1000;
        bad = json_object_set_new(o, "startup_timeout_sec", json_integer(s)) ||
              json_object_set_new(o, "tool_timeout_sec", json_integer(s));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *mcp_config_codex(const json_t *servers)
{
    return mcp_map(servers, mcp_codex_one);
}

static json_t *mcp_opencode_one(const json_t *c)
{
    json_t *o = json_object();
    int bad = !o;
    if (!bad && mcp_is_local(c)) {
        json_t *cmd = json_array();
        /* set_new takes cmd even when it fails: o owns it from here on. */
        bad = json_object_set_new(o, "command", cmd) ||
              json_array_append(cmd, json_object_get(c, "command")) ||
              json_object_set_new(o, "type", json_string("local"));
        json_t *args = json_object_get(c, "args");
        if (!bad && json_is_array(args))
            bad = json_array_extend(cmd, args);
        if (!bad)
            bad = mcp_copy(o, "environment", c, "env");
    } else if (!bad) {
        bad = json_object_set_new(o, "type", json_string("remote")) ||
              mcp_copy(o, "url", c, "url") || mcp_copy(o, "headers", c, "headers");
    }
    if (!bad)
        bad = json_object_set_new(o, "enabled", json_true()) ||
              mcp_copy(o, "timeout", c, "timeoutMs");
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *mcp_config_opencode(const json_t *servers)
{
    return mcp_map(servers, mcp_opencode_one);
}
