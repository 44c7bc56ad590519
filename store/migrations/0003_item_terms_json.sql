-- 0003_item_terms_json: an item's hot terms move into a JSON column of
-- items, and `item_terms` becomes a view with the same columns (item_id,
-- term), so every query that reads item_terms keeps working. Why: one
-- table row per term (two per chat line on average) cost the batch writer
-- a B-tree insert each; a column costs it nothing extra.

-- items.terms: the hot terms the classifier extracted from the text, as a
-- JSON array of strings ('["物流","退款"]'); NULL when there are none.
ALTER TABLE items ADD COLUMN terms TEXT;

UPDATE items
SET terms = (SELECT json_group_array(term)
             FROM (SELECT t.term FROM item_terms t WHERE t.item_id = items.id ORDER BY t.term))
WHERE id IN (SELECT item_id FROM item_terms);

DROP VIEW hot_terms_hourly;
DROP TABLE item_terms;

-- item_terms: one row per (item, hot term), read from items.terms. Join it
-- to items on item_id = id as before; filter items (room, ts) in the same
-- query and SQLite walks only the matching items' arrays.
CREATE VIEW item_terms AS
SELECT i.id AS item_id, j.value AS term
FROM items i, json_each(i.terms) j
WHERE i.terms IS NOT NULL;

-- hot_terms_hourly: how often each term was said per source, room and UTC
-- hour, and how often in negative items. (Same columns as in 0001.)
CREATE VIEW hot_terms_hourly AS
SELECT i.source,
       i.room,
       substr(i.ts, 1, 13) || ':00:00Z'   AS hour,
       j.value                            AS term,
       count(*)                           AS mentions,
       sum(i.sentiment = 'negative')      AS negative_mentions
FROM items i, json_each(i.terms) j
WHERE i.terms IS NOT NULL
GROUP BY i.source, i.room, hour, j.value;
