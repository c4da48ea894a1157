-- 0008_workspace_config.sql: the MCP servers and skills configured per
-- directory (PUT /v1/config/mcp, PUT /v1/config/skills, issue 17).
--
-- One row per (kind, directory, name); `config` is the JSON body as the
-- client sent it (McpServerConfig or SkillsConfig), re-serialized compactly.
-- A session created in `directory` reads the rows of its working directory
-- and hands them to its agent.  WITHOUT ROWID: looked up by its key only.
CREATE TABLE workspace_config (
    kind       TEXT NOT NULL,             -- 'mcp' or 'skills'
    directory  TEXT NOT NULL,             -- absolute, as the server normalized it
    name       TEXT NOT NULL,             -- mcpName / skillName
    config     TEXT NOT NULL,             -- JSON
    updated_at TEXT NOT NULL,             -- RFC 3339
    PRIMARY KEY (kind, directory, name)
) WITHOUT ROWID;
