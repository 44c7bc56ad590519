-- 0002_alerts: alerts and every change of their state, the delivery outbox
-- and silences. `alerts` is a public name (README): add, don't rename.
-- Timestamps are ISO-8601 UTC text with milliseconds, like 0001.

-- alerts: one row per alert instance (rule + room + start), kept up to date
-- with its latest state. Ask "what fired this week" here.
CREATE TABLE alerts (
    id            TEXT    PRIMARY KEY,       -- stable alert id (rule/key/start)
    rule          TEXT    NOT NULL,          -- rule name from config
    rule_kind     TEXT    NOT NULL DEFAULT '', -- negative_ratio, keyword_burst, metric_drop, anomaly, …
    severity      TEXT    NOT NULL CHECK (severity IN ('red','yellow','green')), -- latest light
    state         TEXT    NOT NULL CHECK (state IN ('inactive','pending','firing','resolved')),
    room          TEXT    NOT NULL DEFAULT '',
    source        TEXT    NOT NULL DEFAULT '',
    platform      TEXT    NOT NULL DEFAULT '',
    started_at    TEXT    NOT NULL,          -- when the condition first held
    resolved_at   TEXT,                      -- NULL until resolved
    updated_at    TEXT    NOT NULL,          -- time of the latest change
    summary       TEXT    NOT NULL DEFAULT '',
    value         REAL,                      -- the number that crossed, at the latest change
    threshold     REAL,                      -- the level it crossed
    labels        TEXT    NOT NULL DEFAULT '{}', -- JSON object
    last_seq      INTEGER NOT NULL,          -- seq of the latest change
    last_event_id TEXT    NOT NULL,
    notified      INTEGER NOT NULL DEFAULT 0 -- 1 once a firing change was queued for a receiver
);
CREATE INDEX alerts_state_room ON alerts (state, room);
CREATE INDEX alerts_started_at ON alerts (started_at);

-- alert_events: every state change (pending, firing, resolved, …), with
-- the figures behind it. suppressed says why nobody was told, if so.
CREATE TABLE alert_events (
    event_id    TEXT    PRIMARY KEY,         -- stable: alert id + '/' + seq
    alert_id    TEXT    NOT NULL REFERENCES alerts (id),
    seq         INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    prev        TEXT    NOT NULL DEFAULT '',
    severity    TEXT    NOT NULL,
    value       REAL,
    threshold   REAL,
    numbers     TEXT    NOT NULL DEFAULT '{}', -- JSON object, e.g. {"items":120,"negative_ratio":0.62}
    samples     TEXT    NOT NULL DEFAULT '[]', -- JSON array of quoted items
    summary     TEXT    NOT NULL DEFAULT '',
    at          TEXT    NOT NULL,            -- when the change happened
    suppressed  TEXT,                        -- NULL, or silenced:<id> / inhibited:<alert id> / unrouted / not_notified
    recorded_at TEXT    NOT NULL
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, seq);
CREATE INDEX alert_events_at ON alert_events (at);

-- outbox: one row per (event, receiver) to notify, written in the same
-- transaction as the event, drained by the sender. State moves
-- pending → sending → sent | failed (sending → pending again on a
-- retryable error or, after a crash, on restart), or pending → suppressed
-- when a silence or inhibition began before the row went out (last_error
-- says which).
CREATE TABLE outbox (
    id                INTEGER PRIMARY KEY AUTOINCREMENT, -- order of arrival
    event_id          TEXT    NOT NULL REFERENCES alert_events (event_id),
    receiver          TEXT    NOT NULL,
    group_key         TEXT    NOT NULL,      -- route + group_by label values
    payload           TEXT    NOT NULL,      -- the event as JSON
    state             TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','sending','sent','failed','suppressed')),
    batch_id          TEXT,                  -- the message this row went out in; kept across retries and restarts
    attempts          INTEGER NOT NULL DEFAULT 0,
    crash_resends     INTEGER NOT NULL DEFAULT 0, -- times a crash left the row in 'sending'
    not_before        TEXT    NOT NULL,      -- created_at + group_wait
    group_interval_ms INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TEXT    NOT NULL,
    last_error        TEXT,
    created_at        TEXT    NOT NULL,
    sent_at           TEXT,
    UNIQUE (event_id, receiver)
);
CREATE INDEX outbox_receiver_state ON outbox (receiver, state, id);
CREATE INDEX outbox_state ON outbox (state);

-- silences: mute alerts whose labels match every matcher until ends_at.
CREATE TABLE silences (
    id         TEXT PRIMARY KEY,
    matchers   TEXT NOT NULL,                -- JSON array: "room=123", "severity!=red", "rule=~crisis.*", "platform!~rss"
    starts_at  TEXT NOT NULL,
    ends_at    TEXT NOT NULL,
    comment    TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    expired_at TEXT                          -- set by `lookout silence expire`
);
CREATE INDEX silences_ends_at ON silences (ends_at);
