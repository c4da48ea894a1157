-- 0003_item_aliases.sql: item ids given to native ids no event records.
--
-- The normalizer gives every native item id an "itm_N" on first sight.  An
-- item's own native id is stored in its events (native_item_id), so a
-- normalizer rebuilt from the journal finds the mapping again.  A native id
-- seen only as another item's parent_id is not: its "itm_N" is kept here,
-- written in the same transaction as the event that first used it, so the
-- parent keeps its id across restarts and failed commits.
CREATE TABLE item_aliases (
    session   INTEGER NOT NULL,           -- sessions.id
    native_id TEXT    NOT NULL,
    item_id   TEXT    NOT NULL,
    PRIMARY KEY (session, native_id)
) WITHOUT ROWID;
