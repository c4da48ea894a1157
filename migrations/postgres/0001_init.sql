-- PostgreSQL export target, schema version 1.
--
-- Applied by `sandbox-journal export --to postgres://...` on first use, in
-- one transaction together with its row in sj_schema_versions.  Never edit a
-- released file: add the next numbered one.

-- One row per exported session: the journal's session row as of the last
-- batch sent.  `event_count` is the last sequence exported; `ended` is set
-- once the session's last event has been exported (1: the agent ended it,
-- 2: terminated through the API).
CREATE TABLE sj_sessions (
    session_id        text        PRIMARY KEY,
    agent             text        NOT NULL,
    agent_mode        text        NOT NULL,
    permission_mode   text        NOT NULL,
    model             text,
    variant           text,
    agent_version     text,
    native_session_id text,
    working_dir       text,
    created_at        timestamptz NOT NULL,
    ended             smallint    NOT NULL DEFAULT 0,
    event_count       bigint      NOT NULL DEFAULT 0,
    exported_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per event.  The envelope is in columns; `data` is the event's data
-- object; `raw` is the agent's native payload exactly as journaled (text:
-- it is not always an object, and its bytes are kept).  The primary key is
-- what makes a re-sent batch harmless: inserts say ON CONFLICT DO NOTHING.
CREATE TABLE sj_events (
    session_id        text        NOT NULL,
    sequence          bigint      NOT NULL,
    event_id          text        NOT NULL,
    native_session_id text,
    time              timestamptz NOT NULL,
    type              text        NOT NULL,
    source            text        NOT NULL,
    synthetic         boolean     NOT NULL,
    turn_end          boolean     NOT NULL,
    data              jsonb       NOT NULL,
    raw               text,
    PRIMARY KEY (session_id, sequence)
);

CREATE INDEX sj_events_by_time ON sj_events (time);
