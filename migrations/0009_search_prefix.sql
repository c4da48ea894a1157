-- 0009_search_prefix.sql: prefix indexes for GET /v1/search (issue 19).
--
-- A prefix query ("qn*") without them merges the doclist of every term with
-- that prefix, over the whole journal, before the newest 20 hits can be
-- taken: over 1M events a 3-letter prefix cost ~11 ms, 2 letters ~90 ms and
-- 1 letter ~600 ms (docs/benchmarks.md, "Search: every query shape").  FTS5's
-- prefix indexes keep the doclists of every 1-, 2- and 3-character prefix
-- ready, so those queries read one doclist, as a word does.  Longer
-- prefixes match fewer terms and still merge.
--
-- FTS5 cannot add a prefix index to a table, so the index is made again,
-- empty, with the watermark at 0: the follower (journal_index.c) back-fills
-- it behind the commits as it does for a journal from before 0006, not in
-- this migration's transaction.  Until it has caught up, search finds only
-- the events it has indexed (the lag is reported in the index stats).
DROP TABLE events_fts;

CREATE VIRTUAL TABLE events_fts USING fts5(
    body,
    content = 'events_text',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '1 2 3'
);

UPDATE search_index SET indexed_through = 0;
