-- 0001_init.sql: the journal's first schema.
--
-- Applied by journal_open() inside one transaction together with
-- PRAGMA user_version = 1.  Never edit a migration once released: add the
-- next numbered file instead, and update schema/schema.sql to match.

-- One row per session.  `id` is the narrow integer key the events point at;
-- `session_id` is the client-chosen name.  `last_sequence` is the session's
-- committed watermark, written in the same transaction as its events, so
-- start-up reads it from here and never scans the events table.
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
    created_at        TEXT    NOT NULL,
    ended             INTEGER NOT NULL DEFAULT 0,
    last_sequence     INTEGER NOT NULL DEFAULT 0
);

-- Every event of every session, in commit order.  A rowid table appends at
-- its right edge, so a commit whose events belong to many sessions dirties
-- the last leaf or two instead of one leaf per session; reads go through
-- events_by_session.  `json` is the exact byte string readers get; `raw` is
-- the native payload spliced in on request.
CREATE TABLE events (
    id       INTEGER PRIMARY KEY,
    session  INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    type     TEXT    NOT NULL,
    turn_end INTEGER NOT NULL DEFAULT 0,
    json     TEXT    NOT NULL,
    raw      TEXT
);

-- Pins (session, sequence) unique and serves every page read in
-- O(log n + page).  The integer session key keeps its entries small.
CREATE UNIQUE INDEX events_by_session ON events(session, sequence);
