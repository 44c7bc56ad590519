-- 0010_reports: generated reports (stream reviews and scheduled digests),
-- an outbox that queues them beside alert events, and acknowledgement of
-- alerts.

-- reports: one row per generated report. id is the report's idempotency
-- key: "review:<source>/<room>@<stream start>" for the review of one
-- stream, "digest:<schedule>@<slot>" for one scheduled digest. The row is
-- written in the same transaction as the report's outbox rows, so a report
-- that exists has been queued, and one that does not is generated again.
CREATE TABLE reports (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('review', 'digest')),
    schedule   TEXT NOT NULL DEFAULT '',      -- digest: the schedule's name (daily, weekly)
    source     TEXT NOT NULL DEFAULT '',      -- review: the room's source
    platform   TEXT NOT NULL DEFAULT '',
    room       TEXT NOT NULL DEFAULT '',
    from_ts    TEXT NOT NULL,                 -- window covered (stream start for a review)
    to_ts      TEXT NOT NULL,                 -- stream end for a review
    title      TEXT NOT NULL,
    markdown   TEXT NOT NULL,                 -- the message the receivers got
    url        TEXT NOT NULL DEFAULT '',      -- the HTML report it linked to, if any
    receivers  TEXT NOT NULL DEFAULT '[]',    -- JSON array of receiver names it was queued for
    created_at TEXT NOT NULL
);
CREATE INDEX reports_to_ts ON reports (to_ts);
CREATE INDEX reports_room ON reports (source, room, to_ts);

-- Stream ends and starts are found through this small index.
CREATE INDEX metrics_live_status ON metrics (source, room, ts) WHERE name = 'live_status';

-- outbox without the reference to alert_events: a report's rows carry the
-- report id as event_id. Same columns, same order, same indexes.
CREATE TABLE outbox_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT, -- order of arrival
    event_id          TEXT    NOT NULL,      -- alert_events.event_id, or reports.id for a report
    receiver          TEXT    NOT NULL,
    group_key         TEXT    NOT NULL,      -- route + group_by label values; "report:<id>" for a report
    payload           TEXT    NOT NULL,      -- the event as JSON, or {"report": …}
    state             TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','sending','sent','failed','suppressed')),
    batch_id          TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    crash_resends     INTEGER NOT NULL DEFAULT 0,
    not_before        TEXT    NOT NULL,
    group_interval_ms INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TEXT    NOT NULL,
    last_error        TEXT,
    created_at        TEXT    NOT NULL,
    sent_at           TEXT,
    UNIQUE (event_id, receiver)
);
INSERT INTO outbox_new (id, event_id, receiver, group_key, payload, state, batch_id, attempts, crash_resends,
        not_before, group_interval_ms, next_attempt_at, last_error, created_at, sent_at)
    SELECT id, event_id, receiver, group_key, payload, state, batch_id, attempts, crash_resends,
        not_before, group_interval_ms, next_attempt_at, last_error, created_at, sent_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_receiver_state ON outbox (receiver, state, id);
CREATE INDEX outbox_state ON outbox (state);

-- Acknowledgement: someone has seen the alert and is on it. It does not
-- mute anything; the dashboard and `lookout alerts` show who and when.
ALTER TABLE alerts ADD COLUMN acked_at TEXT;
ALTER TABLE alerts ADD COLUMN acked_by TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN ack_comment TEXT NOT NULL DEFAULT '';
