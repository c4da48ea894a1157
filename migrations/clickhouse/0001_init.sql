-- ClickHouse export target, schema version 1.
--
-- Applied by `sandbox-journal export --to clickhouse+http://...` on first
-- use, one statement per request (ClickHouse's HTTP interface takes one), in
-- the database named by the URL; then a row in sj_schema_versions.  Every
-- statement is IF NOT EXISTS, so two exporters racing here both succeed.
-- Works on Debian's clickhouse-server 18.16 and on current releases: no
-- DateTime64, no JSON functions, no LowCardinality.

-- One row per event.  ReplacingMergeTree ordered by (session_id, sequence)
-- folds a re-sent row into the first one at merge time; read with FINAL (or
-- after OPTIMIZE ... FINAL) to see each event once whatever was re-sent.
-- `time` has whole seconds (DateTime); `time_us` is the full timestamp in
-- microseconds since 1970.  `data` is the event's data object as compact JSON
-- text, so visitParamExtract*() can read it.
CREATE TABLE IF NOT EXISTS sj_events (
    session_id        String,
    sequence          UInt64,
    event_id          String,
    native_session_id Nullable(String),
    time              DateTime('UTC'),
    time_us           Int64,
    type              String,
    source            String,
    synthetic         UInt8,
    turn_end          UInt8,
    data              String,
    raw               Nullable(String)
) ENGINE = ReplacingMergeTree()
  PARTITION BY toYYYYMM(time)
  ORDER BY (session_id, sequence);

-- One row per session and export batch; the highest event_count wins at
-- merge time (read with FINAL).
CREATE TABLE IF NOT EXISTS sj_sessions (
    session_id        String,
    agent             String,
    agent_mode        String,
    permission_mode   String,
    model             Nullable(String),
    variant           Nullable(String),
    agent_version     Nullable(String),
    native_session_id Nullable(String),
    working_dir       Nullable(String),
    created_at        DateTime('UTC'),
    ended             UInt8,
    event_count       UInt64,
    exported_at       DateTime('UTC')
) ENGINE = ReplacingMergeTree(event_count)
  ORDER BY session_id;
