-- 0004_source_health_state: source_health says what state each source is
-- in, since when, and why it is broken, as the daemon judged it; `lookout
-- status` shows these instead of piecing them together from the metrics
-- table and per-source state.

-- state: ok, connecting or broken; NULL in rows written before this column.
ALTER TABLE source_health ADD COLUMN state TEXT;
-- state_since: when the source entered state.
ALTER TABLE source_health ADD COLUMN state_since TEXT;
-- broken: while broken, the reason and what happened ("dial: 3 attempts
-- in a row failed; last: …"); NULL otherwise.
ALTER TABLE source_health ADD COLUMN broken TEXT;
