-- 0006_room_profiles: what the alert engine has learned about each room
-- that a restart should not forget: for a negative_ratio rule with a
-- baseline, the room's negative share minute by minute from the start of
-- its earlier streams, and where its current stream stands. One row per
-- rule and room; `profile` is the engine's JSON (see alerts/profile.go).
-- The daemon writes rows through its batch writer, behind the items they
-- were learned from, so a row never counts a message that is not stored;
-- on a clean shutdown it writes them once more, last.

CREATE TABLE room_profiles (
    rule       TEXT NOT NULL,
    source     TEXT NOT NULL,
    room       TEXT NOT NULL,
    profile    TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (rule, source, room)
) WITHOUT ROWID;
