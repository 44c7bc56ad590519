-- 0001_items: items, their scores, keyword matches, hot terms, raw payloads,
-- metric samples, per-source state and health, plus views for ad-hoc
-- questions. Users query this schema directly (`sqlite3 lookout.db`,
-- `lookout query`), so names here are a public contract: add, don't rename.
--
-- Timestamps are ISO-8601 UTC text with milliseconds
-- ('2026-11-25T12:00:00.123Z'), so string comparison orders them and
-- SQLite's date functions read them: ts >= strftime('%Y-%m-%dT%H:%M:%fZ','now','-10 minutes').

-- items: one row per thing a collector saw (chat line, post, comment, gift,
-- superchat, enter, like). Metric samples live in `metrics`, not here.
CREATE TABLE items (
    id          INTEGER PRIMARY KEY,      -- local row id; child tables refer to it
    source      TEXT    NOT NULL,         -- source id from config
    platform    TEXT    NOT NULL,         -- bilibili, douyin, rss, twitch, …
    room        TEXT    NOT NULL,         -- room, channel, feed or topic
    kind        TEXT    NOT NULL,         -- post, comment, chat, gift, superchat, enter, like
    item_id     TEXT,                     -- the platform's stable id (dedupe key with source); NULL when the source gave none
    author_id   TEXT,                     -- platform user id (hashed when privacy.hash_user_ids is on)
    author      TEXT,                     -- display name
    text        TEXT,                     -- message / title + summary
    url         TEXT,
    ts          TEXT    NOT NULL,         -- when it was said, UTC, '2026-11-25T12:00:00.123Z'
    metric      TEXT,                     -- name of the number in value, if the item carries one
    value       REAL,                     -- gift worth in CNY, or the named number
    count       INTEGER,                  -- number of gifts, likes, …
    sentiment   TEXT CHECK (sentiment IN ('positive','neutral','negative')), -- NULL when not scored
    score       REAL,                     -- classifier score in [-1,1]; sign is polarity; NULL when not scored
    prob        REAL,                     -- calibrated probability of the label
    lang        TEXT,                     -- zh, en, mixed, other
    labels      TEXT,                     -- the source's config labels as a JSON object, NULL when none
    inserted_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    UNIQUE (source, item_id)
);
CREATE INDEX items_source_room_ts ON items (source, room, ts);
CREATE INDEX items_ts ON items (ts);
-- No (kind, ts) index: kind has a handful of values, so ts serves those
-- queries nearly as well, and every index costs the writer on the hot path.

-- item_groups: keyword groups that matched an item, one row per matched
-- keyword (keyword is '' when the group matched without a single keyword).
-- Count items per group with count(DISTINCT item_id).
CREATE TABLE item_groups (
    item_id  INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    grp      TEXT    NOT NULL,            -- keyword group name from config
    category TEXT    NOT NULL,            -- crisis, service, …
    severity TEXT    NOT NULL,            -- red, yellow, green
    keyword  TEXT    NOT NULL DEFAULT ''  -- the keyword that hit
);
CREATE INDEX item_groups_item ON item_groups (item_id);
CREATE INDEX item_groups_category ON item_groups (category, item_id);

-- item_terms: hot terms the classifier extracted from an item's text.
CREATE TABLE item_terms (
    item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    term    TEXT    NOT NULL,
    PRIMARY KEY (item_id, term)
) WITHOUT ROWID;

-- raw_payloads: the payload as received, kept apart so that retention
-- (store.retention.raw) can drop it long before the item.
CREATE TABLE raw_payloads (
    item_id INTEGER PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    payload BLOB NOT NULL
);

-- metrics: numeric samples (viewers, likes, popularity, …) as a time series.
CREATE TABLE metrics (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    platform    TEXT NOT NULL,
    room        TEXT NOT NULL,
    name        TEXT NOT NULL,            -- viewers, watched, popularity, likes, …
    value       REAL NOT NULL,
    ts          TEXT NOT NULL,            -- UTC, '2026-11-25T12:00:00.123Z'
    item_id     TEXT,                     -- the source's id for the sample, NULL when none (then never deduped)
    labels      TEXT,                     -- source labels as JSON, NULL when none
    inserted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    UNIQUE (source, item_id)
);
CREATE INDEX metrics_room_name_ts ON metrics (room, name, ts);
CREATE INDEX metrics_ts ON metrics (ts);

-- source_state: incremental state per source (cursors, ETags, last ids) so a
-- restart neither repeats nor misses items.
CREATE TABLE source_state (
    source     TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, key)
) WITHOUT ROWID;

-- source_health: one row per source, updated by the daemon's supervisor.
CREATE TABLE source_health (
    source        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,          -- collector kind
    last_success  TEXT,                   -- last time the source delivered
    last_error_at TEXT,
    last_error    TEXT,
    items         INTEGER NOT NULL DEFAULT 0, -- items seen since the daemon started
    reconnects    INTEGER NOT NULL DEFAULT 0,
    errors        INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL
) WITHOUT ROWID;

-- sentiment_hourly: per source, room and UTC hour, how many scored items
-- there were and how many were negative.
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
WHERE sentiment IS NOT NULL
GROUP BY source, room, hour;

-- hot_terms_hourly: how often each term was said per source, room and UTC
-- hour, and how often in negative items.
CREATE VIEW hot_terms_hourly AS
SELECT i.source,
       i.room,
       substr(i.ts, 1, 13) || ':00:00Z'   AS hour,
       t.term,
       count(*)                           AS mentions,
       sum(i.sentiment = 'negative')      AS negative_mentions
FROM item_terms t
JOIN items i ON i.id = t.item_id
GROUP BY i.source, i.room, hour, t.term;

-- keyword_hits: every keyword-group match with its item's time and place.
CREATE VIEW keyword_hits AS
SELECT i.id AS item_id, i.ts, i.source, i.platform, i.room,
       g.grp, g.category, g.severity, g.keyword, i.sentiment, i.text
FROM item_groups g
JOIN items i ON i.id = g.item_id;

-- crisis_items: items that matched at least one group of category 'crisis',
-- one row per item with the groups and keywords that hit.
CREATE VIEW crisis_items AS
SELECT i.id, i.ts, i.source, i.platform, i.room, i.kind, i.author, i.text,
       i.sentiment, i.score,
       group_concat(DISTINCT g.grp)     AS groups,
       CASE max(CASE g.severity WHEN 'red' THEN 3 WHEN 'yellow' THEN 2 WHEN 'green' THEN 1 ELSE 0 END)
            WHEN 3 THEN 'red' WHEN 2 THEN 'yellow' WHEN 1 THEN 'green' END AS severity, -- the highest that hit
       group_concat(DISTINCT nullif(g.keyword, '')) AS keywords
FROM items i
JOIN item_groups g ON g.item_id = i.id
WHERE g.category = 'crisis'
GROUP BY i.id;
