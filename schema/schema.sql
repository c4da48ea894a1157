-- The journal's full current schema, for human readers: the result of
-- applying every file of migrations/ in order (PRAGMA user_version = 8; 0004 is the
-- sessions/search API's).
-- journal_open() never reads this file; the migrations are the source of
-- truth and this copy must be kept identical to their sum.
--
-- Connection settings (not stored in the schema): journal_mode=WAL,
-- synchronous=FULL (or NORMAL), busy_timeout=5000; readers open read-only.

CREATE TABLE sessions (
    id                INTEGER PRIMARY KEY,
    session_id        TEXT    NOT NULL UNIQUE,
    agent             TEXT    NOT NULL,
    agent_mode        TEXT    NOT NULL,
    permission_mode   TEXT    NOT NULL,
    model             TEXT,
    variant           TEXT,
    agent_version     TEXT,
    native_session_id TEXT,
    working_dir       TEXT,
    adapter_state     TEXT,
    created_at        TEXT    NOT NULL,   -- RFC 3339, UTC, milliseconds
    ended             INTEGER NOT NULL DEFAULT 0,
    last_sequence     INTEGER NOT NULL DEFAULT 0  -- committed watermark
);

CREATE TABLE events (
    id       INTEGER PRIMARY KEY,         -- append order
    session  INTEGER NOT NULL,            -- sessions.id
    sequence INTEGER NOT NULL,            -- 1, 2, 3, ... per session, no gaps
    type     TEXT    NOT NULL,
    turn_end INTEGER NOT NULL DEFAULT 0,
    json     TEXT    NOT NULL,            -- exact bytes served to readers
    raw      TEXT                         -- native payload, or NULL
);

CREATE UNIQUE INDEX events_by_session ON events(session, sequence);

-- Export checkpoints (0002_export.sql): per target, per session, the last
-- sequence the target confirmed.  Raised only after the target's commit.
CREATE TABLE export_targets (
    id         INTEGER PRIMARY KEY,
    target     TEXT    NOT NULL UNIQUE,   -- URL without its password
    state      TEXT,                      -- target's resume state (JSONL: file length)
    updated_at TEXT    NOT NULL
);

CREATE TABLE export_checkpoints (
    target        INTEGER NOT NULL,       -- export_targets.id
    session       INTEGER NOT NULL,       -- sessions.id
    last_sequence INTEGER NOT NULL,       -- confirmed by the target; only raised
    PRIMARY KEY (target, session)
) WITHOUT ROWID;

-- Item aliases (0003_item_aliases.sql): the "itm_N" of a native id that was
-- seen only as a parent_id, which no event records.
CREATE TABLE item_aliases (
    session   INTEGER NOT NULL,           -- sessions.id
    native_id TEXT    NOT NULL,
    item_id   TEXT    NOT NULL,           -- "itm_N"
    PRIMARY KEY (session, native_id)
) WITHOUT ROWID;

-- Idempotency keys (0005_idempotency.sql): the first answer to a request
-- sent with an Idempotency-Key, committed with what the request committed.
CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    route        TEXT    NOT NULL,        -- e.g. "POST /v1/sessions/*/messages"
    session_id   TEXT,                    -- the session the request named, if any
    request_hash INTEGER NOT NULL,        -- FNV-1a 64 of method, path and body
    status       INTEGER NOT NULL,
    body         BLOB,                    -- NULL: an empty body
    after        INTEGER NOT NULL DEFAULT 0, -- the session's last sequence before
    created      INTEGER NOT NULL         -- Unix seconds; pruned after the TTL
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created);

-- Workspace configuration (0008_workspace_config.sql): the MCP servers and
-- skills configured per directory, read when a session starts there.
CREATE TABLE workspace_config (
    kind       TEXT NOT NULL,             -- 'mcp' or 'skills'
    directory  TEXT NOT NULL,             -- absolute, as the server normalized it
    name       TEXT NOT NULL,             -- mcpName / skillName
    config     TEXT NOT NULL,             -- the JSON body as sent (compact)
    updated_at TEXT NOT NULL,             -- RFC 3339
    PRIMARY KEY (kind, directory, name)
) WITHOUT ROWID;
