-- 0005_idempotency.sql: the outcome of each request sent with an
-- Idempotency-Key header.
--
-- A row is written in the same transaction as what the request committed
-- (its events, its session row), so a request that was acknowledged is also
-- remembered, and one that was not is not, whatever crashes in between.  A
-- repeat of the key is answered from here: `status` and `body` are the
-- first answer's; `after` is the session's last sequence before the
-- request's events (what a repeated messages/stream streams from).
-- `request_hash` is FNV-1a 64 of the method, path and body (see
-- src/http/http.c), so a repeat that is not the same request is told apart.
-- Rows older than the server's --idempotency-ttl-s are ignored by lookups
-- and deleted by the writer, through the index on `created`.  WITHOUT ROWID:
-- the key is the only lookup, so the row lives in the key's B-tree (one
-- B-tree fewer to write per commit than a rowid table with a unique index).
CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    route        TEXT    NOT NULL,        -- e.g. "POST /v1/sessions/*/messages"
    session_id   TEXT,                    -- the session the request named, if any
    request_hash INTEGER NOT NULL,
    status       INTEGER NOT NULL,
    body         BLOB,                    -- NULL: an empty body
    after        INTEGER NOT NULL DEFAULT 0,
    created      INTEGER NOT NULL         -- Unix seconds
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created);
