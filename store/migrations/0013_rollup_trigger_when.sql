-- 0013_rollup_trigger_when: the rollup trigger of 0012 runs only for an
-- update that changes what the rollups count: an item that stood (or now
-- stands) whose sentiment or terms changed, or that was deleted. An edit
-- that leaves both as they were, and any update of an item already
-- deleted, no longer take the old version out and put it back. What the
-- rollups hold is the same.
DROP TRIGGER items_rollup_update;

-- An edit or a delete takes the old version out and puts the new one in
-- (a deleted item puts nothing back).
CREATE TRIGGER items_rollup_update AFTER UPDATE OF sentiment, terms, deleted_at ON items
WHEN (old.deleted_at IS NULL OR new.deleted_at IS NULL)
 AND (old.sentiment IS NOT new.sentiment OR old.terms IS NOT new.terms
      OR (old.deleted_at IS NULL) != (new.deleted_at IS NULL))
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

