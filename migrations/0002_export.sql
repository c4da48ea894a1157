-- 0002_export.sql: where each export target has got to.
--
-- An exporter (sandbox-journal export, server --export-to) sends a session's
-- events to a target and, only after the target confirmed them, advances the
-- session's checkpoint here.  Targets insert idempotently on
-- (session_id, sequence), so a crash between the two re-sends a batch
-- without duplicating it; the checkpoint only saves work.

-- One row per target.  `target` is the target's URL without its password
-- (the key checkpoints are kept under); `state` is the target's own resume
-- state (the JSONL target keeps the file length it has confirmed).
CREATE TABLE export_targets (
    id         INTEGER PRIMARY KEY,
    target     TEXT    NOT NULL UNIQUE,
    state      TEXT,
    updated_at TEXT    NOT NULL
);

-- The last sequence of `session` (sessions.id) the target has confirmed.
-- Only ever raised.  Keyed by the two integers, so one checkpoint costs one
-- small index entry.
CREATE TABLE export_checkpoints (
    target        INTEGER NOT NULL,
    session       INTEGER NOT NULL,
    last_sequence INTEGER NOT NULL,
    PRIMARY KEY (target, session)
) WITHOUT ROWID;
