-- 0006_search.sql: what GET /v1/sessions/{id}, the paged session list and
-- GET /v1/search read (issue 14).
--
-- The session summaries (updated_at, turn_open, title, pending_requests)
-- are kept by triggers, in the writer's own transaction together with the
-- events they describe: they cost a few statements per event.  The
-- full-text index is not: an FTS5 insert costs 100-150 us per event, so the
-- index follows the journal behind the commit (journal_index.c): it reads
-- the events after search_index.indexed_through in its own small
-- transactions on the write connection while no commit waits, and moves
-- the watermark in the same transactions.  A journal from before this
-- migration starts with the watermark at 0 and is back-filled the same way,
-- not in this migration's transaction.

-- updated_at: the `time` of the session's newest event (created_at until it
-- has one), so "last activity" survives restarts and imports keep the
-- original times.  The writer sets it in its per-batch UPDATE of the
-- session row, from the batch's last event (a trigger doing the same cost a
-- third of a one-event commit at durability normal: docs/benchmarks.md).  turn_open: a turn is under way: 1 from an item.started
-- (the user's message opens a turn with one; so does the agent going on
-- after a permission or question was answered) until the next event
-- flagged turn_end, the rule messages/stream uses.  Answering a request
-- does not open a turn by itself: an agent that stops there (the mock)
-- would look busy forever.  title: the text of the first user message, cut
-- to 80 characters (substr counts characters, not bytes).
ALTER TABLE sessions ADD COLUMN updated_at TEXT;
ALTER TABLE sessions ADD COLUMN turn_open INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN title TEXT;

-- Permission and question requests not resolved yet.  A session with a row
-- here is `waiting`.
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

CREATE VIRTUAL TABLE events_fts USING fts5(
    body,
    content = 'events_text',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
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

-- A session that ended leaves nothing to answer: readers show no pending
-- requests for it and call it `ended` whatever turn_open says.  (Not a
-- trigger on `ended`: the writer's per-batch UPDATE names that column, so it
-- would run at every commit, for a third of a one-event commit's time.)

-- ---- what the journal already holds ----------------------------------------

UPDATE sessions SET updated_at = coalesce(
    (SELECT strftime('%Y-%m-%dT%H:%M:%fZ', json_extract(e.json, '$.time')) FROM events AS e
      WHERE e.session = sessions.id AND e.sequence = sessions.last_sequence),
    created_at);

UPDATE sessions SET title = (
    SELECT (SELECT substr(trim(group_concat(c.value ->> '$.text', ' ')), 1, 80)
              FROM json_each(e.json, '$.data.item.content') AS c
             WHERE c.value ->> '$.type' = 'text')
      FROM events AS e
     WHERE e.session = sessions.id AND e.type = 'item.completed'
       AND json_extract(e.json, '$.data.item.role') = 'user'
     ORDER BY e.sequence LIMIT 1);

-- A turn is open when an item started after its last turn_end.
UPDATE sessions SET turn_open = ended = 0 AND coalesce(
    (SELECT max(e.sequence) FROM events AS e
      WHERE e.session = sessions.id AND e.type = 'item.started'), 0)
  > coalesce((SELECT max(e.sequence) FROM events AS e
               WHERE e.session = sessions.id AND e.turn_end), 0);

INSERT INTO pending_requests(session, kind, request_id, sequence)
SELECT r.session, r.kind, r.request_id, max(r.sequence)
  FROM (SELECT e.session AS session, e.sequence AS sequence,
               substr(e.type, 1, instr(e.type, '.') - 1) AS kind,
               coalesce(json_extract(e.json, '$.data.permission_id'),
                        json_extract(e.json, '$.data.question_id')) AS request_id,
               e.type LIKE '%.requested' AS opens
          FROM events AS e
         WHERE e.type IN ('permission.requested', 'question.requested',
                          'permission.resolved', 'question.resolved')) AS r
  JOIN sessions AS s ON s.id = r.session
 WHERE s.ended = 0 AND r.request_id IS NOT NULL
 GROUP BY r.session, r.kind, r.request_id
HAVING sum(r.opens) > sum(NOT r.opens);

-- How far events_fts has read the events, in events.id (commit) order: every
-- event with id <= indexed_through is in the index if it has text.  One row.
-- (The follower inserts with INSERT ... VALUES, never FTS5's 'rebuild': that
-- runs the view's query inside FTS5's own xUpdate, where json_tree(), a
-- virtual table too, fails with "SQL logic error".)
CREATE TABLE search_index (
    one             INTEGER PRIMARY KEY CHECK (one = 1),
    indexed_through INTEGER NOT NULL
);
INSERT INTO search_index(one, indexed_through) VALUES (1, 0);

-- Newest activity first, and the keyset of the paged list.
CREATE INDEX sessions_by_activity ON sessions(updated_at, id);
