-- 0007_process_logs.sql: the workspace's processes (POST /v1/processes) and
-- their output, so a log survives a restart and reads from any offset.
--
-- `info` is the process's ProcessInfo JSON as last written: at its start,
-- at its exit, and (status "exited", no exit code) for one found running
-- when a server started again.  Each read of its stdout, stderr or terminal
-- is one row of process_logs with the process's own sequence (the
-- ProcessLogEntry `sequence`, from 1, increasing); stream 'dropped' is the
-- marker left where older rows were deleted to keep the process within its
-- byte cap (data: the text saying how much).  Rows go when the process is
-- deleted.
CREATE TABLE processes (
    process_id TEXT PRIMARY KEY,
    info       TEXT NOT NULL
);
-- A rowid table: a row holds up to a pipe read (64 KiB), too large for a
-- WITHOUT ROWID B-tree; the unique index is the only lookup.
CREATE TABLE process_logs (
    process    TEXT    NOT NULL,          -- processes.process_id
    sequence   INTEGER NOT NULL,
    stream     TEXT    NOT NULL,          -- stdout, stderr, pty, dropped
    ts_ms      INTEGER NOT NULL,          -- Unix milliseconds
    data       BLOB    NOT NULL
);
CREATE UNIQUE INDEX process_logs_seq ON process_logs (process, sequence);
