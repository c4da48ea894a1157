-- The journal's full current schema, for human readers: the result of
-- applying every file of migrations/ in order (PRAGMA user_version = 9; 0006 is the
-- sessions/search API's, 0007 the workspace processes', 0008 the workspace configuration,
-- 0009 the search index's prefix indexes).
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
    last_sequence     INTEGER NOT NULL DEFAULT 0, -- committed watermark
    -- 0006_search.sql, kept in the events' transaction:
    updated_at        TEXT,               -- RFC 3339 ms: newest event's time, else created_at
    turn_open         INTEGER NOT NULL DEFAULT 0, -- a turn is under way
    title             TEXT                -- first user message, <= 80 characters
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
-- Session summaries and search (0006_search.sql).  Triggers keep the
-- summaries in the writer's transaction (updated_at: the writer's per-batch
-- UPDATE); the full-text index follows behind the commit up to
-- search_index.indexed_through; see the migration for the rules.
CREATE TABLE pending_requests (
    session    INTEGER NOT NULL,          -- sessions.id
    kind       TEXT    NOT NULL,          -- 'permission' | 'question'
    request_id TEXT    NOT NULL,
    sequence   INTEGER NOT NULL,          -- the *.requested event
    PRIMARY KEY (session, kind, request_id)
) WITHOUT ROWID;

-- The text of an event a person reads: every string under `data` but ids,
-- enum-like fields and MIME types; NULL for the events that only repeat
-- another's text (item.started and item.delta: the item.completed holds the
-- whole of it) and for events with no text.  The search index's external
-- content: snippets are cut from here, so no text is stored twice.
CREATE VIEW events_text AS
SELECT e.id AS id,
       (SELECT group_concat(t.value, ' ')
          FROM json_tree(e.json, '$.data') AS t
         WHERE t.type = 'text'
           AND t.key NOT IN ('item_id', 'native_item_id', 'parent_id', 'call_id',
                             'permission_id', 'question_id', 'kind', 'role', 'status',
                             'type', 'mime', 'mime_type', 'reason', 'source', 'action_id',
                             'tool_use_id', 'id')) AS body
  FROM events AS e
 WHERE e.type NOT IN ('item.started', 'item.delta');

-- prefix: 0009_search_prefix.sql, so that 1-3 character prefix queries
-- read one doclist instead of merging every matching term's.
CREATE VIRTUAL TABLE events_fts USING fts5(
    body,
    content = 'events_text',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '1 2 3'
);

CREATE TRIGGER sessions_created AFTER INSERT ON sessions
BEGIN
    UPDATE sessions SET updated_at = new.created_at WHERE id = new.id;
END;

-- Everything an event changes, in one trigger so that the many item.delta
-- rows (which change nothing here) cost one WHEN test and no more.  Each
-- statement carries its own condition:
--   turn state and title (see above);
--   pending_requests: a request opens a row, its resolution removes it.
CREATE TRIGGER events_summary AFTER INSERT ON events
WHEN new.type <> 'item.delta'
BEGIN
    UPDATE sessions
       SET turn_open = CASE
               WHEN new.turn_end THEN 0
               WHEN new.type = 'item.started' THEN 1
               ELSE turn_open END,
           title = CASE
               WHEN title IS NULL AND new.type = 'item.completed'
                    AND json_extract(new.json, '$.data.item.role') = 'user'
               THEN (SELECT substr(trim(group_concat(c.value ->> '$.text', ' ')), 1, 80)
                       FROM json_each(new.json, '$.data.item.content') AS c
                      WHERE c.value ->> '$.type' = 'text')
               ELSE title END
     WHERE id = new.session
       AND (new.turn_end OR new.type IN ('item.started', 'item.completed'));

    INSERT OR IGNORE INTO pending_requests(session, kind, request_id, sequence)
    SELECT new.session, substr(new.type, 1, instr(new.type, '.') - 1),
           coalesce(json_extract(new.json, '$.data.permission_id'),
                    json_extract(new.json, '$.data.question_id')),
           new.sequence
     WHERE new.type IN ('permission.requested', 'question.requested');

    DELETE FROM pending_requests
     WHERE new.type IN ('permission.resolved', 'question.resolved')
       AND session = new.session
       AND kind = substr(new.type, 1, instr(new.type, '.') - 1)
       AND request_id = coalesce(json_extract(new.json, '$.data.permission_id'),
                                 json_extract(new.json, '$.data.question_id'));
END;

CREATE TABLE search_index (
    one             INTEGER PRIMARY KEY CHECK (one = 1),
    indexed_through INTEGER NOT NULL      -- events.id the index has read through
);

CREATE INDEX sessions_by_activity ON sessions(updated_at, id);

-- Workspace processes (0007_process_logs.sql): each process's ProcessInfo
-- as last written, and every read of its output with a per-process
-- sequence; 'dropped' marks where older output went to keep the byte cap.
CREATE TABLE processes (
    process_id TEXT PRIMARY KEY,
    info       TEXT NOT NULL              -- ProcessInfo JSON
);
CREATE TABLE process_logs (
    process    TEXT    NOT NULL,          -- processes.process_id
    sequence   INTEGER NOT NULL,          -- the ProcessLogEntry sequence
    stream     TEXT    NOT NULL,          -- stdout, stderr, pty, dropped
    ts_ms      INTEGER NOT NULL,          -- Unix milliseconds
    data       BLOB    NOT NULL
);
CREATE UNIQUE INDEX process_logs_seq ON process_logs (process, sequence);

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
