-- 0008_item_edits: posts can be edited and deleted by their authors
-- (Mastodon, Bluesky). An edit replaces the stored item's text and score and
-- keeps the version it replaced in item_versions; a delete marks the item
-- deleted and keeps it for audit. Deleted items are left out of the
-- sentiment shares, hot terms and crisis reports below; `SELECT … FROM items`
-- still shows them, with deleted_at set.

-- items.edited_at: when the current version was written (the platform's
-- edit time), NULL for an item never edited.
ALTER TABLE items ADD COLUMN edited_at TEXT;
-- items.deleted_at: when the author deleted it, NULL while it stands.
ALTER TABLE items ADD COLUMN deleted_at TEXT;

-- item_versions: the earlier versions of edited items, one row per edit,
-- holding what the item said before it (valid from valid_from until
-- replaced_at).
CREATE TABLE item_versions (
    item_id     INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    author      TEXT,
    text        TEXT,
    url         TEXT,
    sentiment   TEXT,
    score       REAL,
    prob        REAL,
    lang        TEXT,
    labels      TEXT,
    terms       TEXT,
    valid_from  TEXT NOT NULL,   -- the item's ts, or the edit before this one
    replaced_at TEXT NOT NULL    -- the edit that replaced this version
);
CREATE INDEX item_versions_item ON item_versions (item_id);

DROP VIEW sentiment_hourly;
CREATE VIEW sentiment_hourly AS
SELECT source,
       max(platform)                                   AS platform,
       room,
       substr(ts, 1, 13) || ':00:00Z'                  AS hour,
       count(*)                                        AS items,
       sum(sentiment = 'positive')                     AS positive,
       sum(sentiment = 'negative')                     AS negative,
       round(1.0 * sum(sentiment = 'negative') / count(*), 4) AS negative_share,
       round(avg(score), 4)                            AS avg_score
FROM items
WHERE sentiment IS NOT NULL AND deleted_at IS NULL
GROUP BY source, room, hour;

DROP VIEW sentiment_1m;
CREATE VIEW sentiment_1m AS
SELECT source,
       max(platform)                                   AS platform,
       room,
       substr(ts, 1, 16) || ':00Z'                     AS minute,
       count(*)                                        AS items,
       sum(sentiment = 'positive')                     AS positive,
       sum(sentiment = 'negative')                     AS negative,
       round(1.0 * sum(sentiment = 'negative') / count(*), 4) AS negative_share,
       round(avg(score), 4)                            AS avg_score
FROM items
WHERE sentiment IS NOT NULL AND deleted_at IS NULL
GROUP BY source, room, minute;

DROP VIEW sentiment_5m;
CREATE VIEW sentiment_5m AS
SELECT source,
       max(platform)                                   AS platform,
       room,
       substr(ts, 1, 14) || printf('%02d', CAST(substr(ts, 15, 2) AS INTEGER) / 5 * 5) || ':00Z' AS minute,
       count(*)                                        AS items,
       sum(sentiment = 'positive')                     AS positive,
       sum(sentiment = 'negative')                     AS negative,
       round(1.0 * sum(sentiment = 'negative') / count(*), 4) AS negative_share,
       round(avg(score), 4)                            AS avg_score
FROM items
WHERE sentiment IS NOT NULL AND deleted_at IS NULL
GROUP BY source, room, minute;

DROP VIEW hot_terms_hourly;
CREATE VIEW hot_terms_hourly AS
SELECT i.source,
       i.room,
       substr(i.ts, 1, 13) || ':00:00Z'   AS hour,
       j.value                            AS term,
       count(*)                           AS mentions,
       sum(i.sentiment = 'negative')      AS negative_mentions
FROM items i, json_each(i.terms) j
WHERE i.terms IS NOT NULL AND i.deleted_at IS NULL
GROUP BY i.source, i.room, hour, j.value;

DROP VIEW crisis_items;
CREATE VIEW crisis_items AS
SELECT i.id, i.ts, i.source, i.platform, i.room, i.kind, i.author, i.text,
       i.sentiment, i.score,
       group_concat(DISTINCT g.grp)     AS groups,
       CASE max(CASE g.severity WHEN 'red' THEN 3 WHEN 'yellow' THEN 2 WHEN 'green' THEN 1 ELSE 0 END)
            WHEN 3 THEN 'red' WHEN 2 THEN 'yellow' WHEN 1 THEN 'green' END AS severity, -- the highest that hit
       group_concat(DISTINCT nullif(g.keyword, '')) AS keywords
FROM items i
JOIN item_groups g ON g.item_id = i.id
WHERE g.category = 'crisis' AND i.deleted_at IS NULL
GROUP BY i.id;
