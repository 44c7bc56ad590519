-- 0012_room_minutes: per-minute, per-room rollups of items, so that a
-- report over a busy day reads a few thousand rollup rows instead of
-- millions of items. The batch writer adds each batch's new items to them
-- in the batch's own transaction; the triggers below keep them right when
-- an item is edited (its sentiment or terms change) or deleted (it leaves
-- them). They count the items that stand (deleted_at IS NULL), as the
-- sentiment and hot-term views of 0008 do, with each item's current
-- version.
--
-- Retention does not touch them: deleting old items (store.retention.items)
-- leaves their minutes in place, so the long history of a room's volume,
-- sentiment, gifts and terms outlives the items. They hold no identities
-- (no author, no text), so privacy mode has nothing to hash here.
--
-- minute is the start of the item's UTC minute, '2026-11-25T12:00:00Z'
-- (substr(ts, 1, 16) || ':00Z', the minute of sentiment_1m).

-- room_minutes: per source, room, minute, kind and sentiment ('' when not
-- scored): how many items, their units (max(count, 1): gifts and likes by
-- number, everything else 1 each) and the sum of their value (gift worth).
CREATE TABLE room_minutes (
    source    TEXT    NOT NULL,
    room      TEXT    NOT NULL,
    minute    TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    sentiment TEXT    NOT NULL DEFAULT '',
    items     INTEGER NOT NULL DEFAULT 0,
    units     INTEGER NOT NULL DEFAULT 0,
    value     REAL    NOT NULL DEFAULT 0,
    -- best_id, best_score: the strongest item of the key (lowest score
    -- when negative, highest when positive; NULL otherwise): a report's
    -- example candidate. Edits and deletes do not move it; reports skip
    -- a candidate that no longer stands or has changed polarity.
    best_id    INTEGER,
    best_score REAL,
    PRIMARY KEY (source, room, minute, kind, sentiment)
) WITHOUT ROWID;

-- room_minute_terms: per source, room, minute, hot term and sentiment ('' when
-- not scored): how many items said the term.
CREATE TABLE room_minute_terms (
    source    TEXT    NOT NULL,
    room      TEXT    NOT NULL,
    minute    TEXT    NOT NULL,
    term      TEXT    NOT NULL,
    sentiment TEXT    NOT NULL DEFAULT '',
    mentions  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, room, minute, term, sentiment)
) WITHOUT ROWID;

INSERT INTO room_minutes (source, room, minute, kind, sentiment, items, units, value)
SELECT source, room, substr(ts, 1, 16) || ':00Z', kind, coalesce(sentiment, ''),
       count(*), sum(max(coalesce(count, 1), 1)), coalesce(sum(value), 0)
FROM items WHERE deleted_at IS NULL
GROUP BY 1, 2, 3, 4, 5;

UPDATE room_minutes SET best_id = (
    SELECT i.id FROM items i
    WHERE i.source = room_minutes.source AND i.room = room_minutes.room
      AND i.ts >= substr(room_minutes.minute, 1, 16) AND i.ts < strftime('%Y-%m-%dT%H:%M', room_minutes.minute, '+1 minute')
      AND i.kind = room_minutes.kind AND i.sentiment = room_minutes.sentiment AND i.deleted_at IS NULL AND i.score IS NOT NULL
    ORDER BY CASE room_minutes.sentiment WHEN 'negative' THEN i.score ELSE -i.score END, i.ts LIMIT 1)
WHERE sentiment IN ('positive', 'negative');
UPDATE room_minutes SET best_score = (SELECT score FROM items WHERE id = best_id) WHERE best_id IS NOT NULL;

INSERT INTO room_minute_terms (source, room, minute, term, sentiment, mentions)
SELECT i.source, i.room, substr(i.ts, 1, 16) || ':00Z', j.value, coalesce(i.sentiment, ''), count(*)
FROM items i, json_each(i.terms) j
WHERE i.terms IS NOT NULL AND i.deleted_at IS NULL
GROUP BY 1, 2, 3, 4, 5;

-- An edit or a delete takes the old version out and puts the new one in
-- (a deleted item puts nothing back).
CREATE TRIGGER items_rollup_update AFTER UPDATE OF sentiment, terms, deleted_at ON items
BEGIN
    INSERT INTO room_minutes (source, room, minute, kind, sentiment, items, units, value)
    SELECT old.source, old.room, substr(old.ts, 1, 16) || ':00Z', old.kind, coalesce(old.sentiment, ''),
           -1, -max(coalesce(old.count, 1), 1), -coalesce(old.value, 0)
    WHERE old.deleted_at IS NULL
    ON CONFLICT (source, room, minute, kind, sentiment) DO UPDATE SET
        items = items + excluded.items, units = units + excluded.units, value = value + excluded.value;
    INSERT INTO room_minutes (source, room, minute, kind, sentiment, items, units, value)
    SELECT new.source, new.room, substr(new.ts, 1, 16) || ':00Z', new.kind, coalesce(new.sentiment, ''),
           1, max(coalesce(new.count, 1), 1), coalesce(new.value, 0)
    WHERE new.deleted_at IS NULL
    ON CONFLICT (source, room, minute, kind, sentiment) DO UPDATE SET
        items = items + excluded.items, units = units + excluded.units, value = value + excluded.value;
    INSERT INTO room_minute_terms (source, room, minute, term, sentiment, mentions)
    SELECT old.source, old.room, substr(old.ts, 1, 16) || ':00Z', j.value, coalesce(old.sentiment, ''), -1
    FROM json_each(coalesce(old.terms, '[]')) j
    WHERE old.deleted_at IS NULL
    ON CONFLICT (source, room, minute, term, sentiment) DO UPDATE SET mentions = mentions + excluded.mentions;
    INSERT INTO room_minute_terms (source, room, minute, term, sentiment, mentions)
    SELECT new.source, new.room, substr(new.ts, 1, 16) || ':00Z', j.value, coalesce(new.sentiment, ''), 1
    FROM json_each(coalesce(new.terms, '[]')) j
    WHERE new.deleted_at IS NULL
    ON CONFLICT (source, room, minute, term, sentiment) DO UPDATE SET mentions = mentions + excluded.mentions;
END;

