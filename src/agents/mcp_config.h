/* The MCP servers configured for a session (adapter_ctx.mcp_servers:
 * {name: McpServerConfig} as the v0.4 SDK sends them, see
 * workspace/wsconfig.h) in each agent's own form.  Pure: no I/O.
 *
 *   Claude    --mcp-config FILE: {"mcpServers": {name: {type: "stdio",
 *             command, args, env} | {type: "http" | "sse", url, headers}}},
 *             each with alwaysLoad (connected before the first request)
 *   Codex     [mcp_servers.<name>] tables of config.toml, or the same as
 *             the dotted -c / thread config keys: command, args, env, cwd,
 *             startup_timeout_sec | url, http_headers, env_http_headers,
 *             bearer_token_env_var
 *   OpenCode  its config's "mcp" key: {name: {type: "local", command: [..],
 *             environment, enabled, timeout} | {type: "remote", url,
 *             headers, enabled, timeout}}
 *
 * What an agent has no place for is left out (Claude has no per-server cwd
 * or timeout; envHeaders and oauth go to Codex only). */
#ifndef SJ_MCP_CONFIG_H
#define SJ_MCP_CONFIG_H

#include <jansson.h>

/* new: Claude's --mcp-config document; NULL when out of memory. */
json_t *mcp_config_claude(const json_t *servers);

/* new: Codex's mcp_servers table as a JSON object (the value of the
 * thread's "mcp_servers" config key); NULL when out of memory. */
json_t *mcp_config_codex(const json_t *servers);

/* new: OpenCode's "mcp" object; NULL when out of memory. */
json_t *mcp_config_opencode(const json_t *servers);

#endif
