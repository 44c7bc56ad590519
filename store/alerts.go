package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// AlertEventRecord is one alert state change as the store keeps it. The
// alerts package converts its Event into this (store does not import
// alerts, which imports store).
type AlertEventRecord struct {
	EventID    string
	AlertID    string
	Seq        int
	Rule       string
	RuleKind   string
	Severity   string
	State      string
	Prev       string
	Room       string
	Source     string
	Platform   string
	Summary    string
	Labels     map[string]string
	StartedAt  time.Time
	At         time.Time
	ResolvedAt time.Time // zero: not resolved
	Value      float64
	Threshold  float64
	Numbers    map[string]float64
	Samples    any // JSON-encoded into alert_events.samples
}

// AlertRow is one row of the alerts table.
type AlertRow struct {
	ID         string
	Rule       string
	RuleKind   string
	Severity   string
	State      string
	Room       string
	Source     string
	Platform   string
	StartedAt  time.Time
	ResolvedAt time.Time
	UpdatedAt  time.Time
	Summary    string
	Labels     map[string]string
	LastSeq    int
	Notified   bool
}

// OutboxInsert is one notification to queue with an event.
type OutboxInsert struct {
	Receiver      string
	GroupKey      string
	Payload       []byte // the event as JSON
	NotBefore     time.Time
	GroupInterval time.Duration
}

// AlertDecision is what the delivery side decides inside the transaction
// that records an event.
type AlertDecision struct {
	Suppressed   string // "" or why nobody is told (silenced:<id>, inhibited:<alert id>, unrouted, …)
	Outbox       []OutboxInsert
	MarkNotified bool // set alerts.notified = 1
}

// AlertView is what the decision function of RecordAlertEvent may read:
// a consistent view of the database inside the recording transaction.
// AlertTx is SQLite's; the PostgreSQL store has its own.
type AlertView interface {
	FiringAlerts() ([]AlertRow, error)
	FiringAlertsInRoom(room string) ([]AlertRow, error)
	ActiveSilences(now time.Time) ([]Silence, error)
	NotifiedReceivers(alertID string) ([]string, error)
}

// ErrOutboxClaimed is what OutboxMarkSending returns (wrapped) when
// another process sharing the store claimed one of the rows first: the
// caller sends nothing and reads the pending rows again.
var ErrOutboxClaimed = errors.New("store: outbox rows claimed by another process")

// The outbox claim, the same on SQLite and PostgreSQL. Several processes
// may send from one outbox. OutboxMarkSending claims the rows of one
// message in one write transaction: it moves them from 'pending' to
// 'sending' and stamps claimed_at, all of them or none, and only rows that
// are still pending with no batch id or with the batch id being claimed
// (a row another sender claimed and put back for a retry of a batch of
// its own is not the caller's to send in another message). A row left in
// 'sending' longer than the claim timeout belonged to a sender that died;
// OutboxRecover puts it back to 'pending' with its batch id, so it is
// sent again with the same idempotency key.

// OutboxClaimTimeout is how long a row may stay claimed ('sending') before
// another sender takes it for a dead sender's and sends it again. A send
// must end well within it (alerts.DeliveryOptions.SendTimeout).
const OutboxClaimTimeout = time.Minute

// OutboxClaimResult turns the number of rows a claim of want rows of batch
// batchID moved to 'sending' into its result: nil when it got all of them,
// else an error wrapping ErrOutboxClaimed (the claim must then be rolled
// back).
func OutboxClaimResult(claimed, want int, batchID string) error {
	if claimed == want {
		return nil
	}
	return fmt.Errorf("%w: %d of %d rows of batch %s", ErrOutboxClaimed, want-claimed, want, batchID)
}

// AlertTx gives the decision function a consistent view of the database
// inside the recording transaction.
type AlertTx struct {
	ctx context.Context
	tx  *sql.Tx
}

// FiringAlerts returns the alerts currently firing.
func (t *AlertTx) FiringAlerts() ([]AlertRow, error) {
	return storeQueryAlerts(t.ctx, t.tx, `WHERE state = 'firing'`)
}

// FiringAlertsInRoom returns the alerts currently firing in one room
// (index alerts_state_room).
func (t *AlertTx) FiringAlertsInRoom(room string) ([]AlertRow, error) {
	return storeQueryAlerts(t.ctx, t.tx, `WHERE state = 'firing' AND room = ?`, room)
}

// ActiveSilences returns the silences in force at now.
func (t *AlertTx) ActiveSilences(now time.Time) ([]Silence, error) {
	return storeQuerySilences(t.ctx, t.tx, now, false)
}

// NotifiedReceivers lists the receivers that were sent (or are about to
// be sent) a firing change of the alert: its resolution goes to them.
func (t *AlertTx) NotifiedReceivers(alertID string) ([]string, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT DISTINCT o.receiver FROM outbox o
		JOIN alert_events e ON e.event_id = o.event_id
		WHERE e.alert_id = ? AND e.state = 'firing' AND o.state IN ('pending','sending','sent')
		ORDER BY o.receiver`, alertID)
	if err != nil {
		return nil, fmt.Errorf("store: notified receivers of %s: %w", alertID, storeExplain(err))
	}
	return storeScanStrings(rows)
}

// FiringAlerts returns the alerts firing now, in one room unless room is
// "" and all is true.
func (s *Store) FiringAlerts(ctx context.Context, room string, all bool) ([]AlertRow, error) {
	if all {
		return storeQueryAlerts(ctx, s.db, `WHERE state = 'firing'`)
	}
	return storeQueryAlerts(ctx, s.db, `WHERE state = 'firing' AND room = ?`, room)
}

// ErrDuplicateEvent is what RecordAlertEvent returns (wrapped) when the
// event id is already stored: the event was recorded before, nothing
// changed.
var ErrDuplicateEvent = errors.New("store: alert event already recorded")

// RecordAlertEvent stores an alert state change in one transaction:
// upsert the alerts row (never moving it back to an older seq), insert
// the alert_events row and, as decide says, the outbox rows. decide runs
// inside the transaction and sees the alert row as it was before this
// event (prior, nil for a new alert). Recording the same event id twice
// changes nothing and returns an error wrapping ErrDuplicateEvent.
func (s *Store) RecordAlertEvent(ctx context.Context, rec AlertEventRecord, now time.Time,
	decide func(tx AlertView, prior *AlertRow) (AlertDecision, error)) (AlertDecision, error) {
	if rec.EventID == "" || rec.AlertID == "" {
		return AlertDecision{}, errors.New("store: alert event without id or alert id")
	}
	labels, err := json.Marshal(storeNonNilMap(rec.Labels))
	if err != nil {
		return AlertDecision{}, fmt.Errorf("store: alert labels: %w", err)
	}
	numbers, err := json.Marshal(rec.Numbers)
	if err != nil || rec.Numbers == nil {
		numbers = []byte("{}")
	}
	samples := []byte("[]")
	if rec.Samples != nil {
		if b, err := json.Marshal(rec.Samples); err == nil && string(b) != "null" {
			samples = b
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return AlertDecision{}, fmt.Errorf("store: record alert event: %w", storeExplain(err))
	}
	defer tx.Rollback()

	var one int
	switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM alert_events WHERE event_id = ?`, rec.EventID).Scan(&one); {
	case err == nil:
		return AlertDecision{}, fmt.Errorf("%w: %s", ErrDuplicateEvent, rec.EventID)
	case !errors.Is(err, sql.ErrNoRows):
		return AlertDecision{}, fmt.Errorf("store: record alert event: %w", storeExplain(err))
	}
	var prior *AlertRow
	rows, err := storeQueryAlerts(ctx, tx, `WHERE id = ?`, rec.AlertID)
	if err != nil {
		return AlertDecision{}, err
	}
	if len(rows) == 1 {
		prior = &rows[0]
	}
	resolved := storeNullTime(rec.ResolvedAt)
	if _, err := tx.ExecContext(ctx, `INSERT INTO alerts (id, rule, rule_kind, severity, state, room, source, platform,
			started_at, resolved_at, updated_at, summary, value, threshold, labels, last_seq, last_event_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET severity = excluded.severity, state = excluded.state,
			resolved_at = excluded.resolved_at, updated_at = excluded.updated_at, summary = excluded.summary,
			value = excluded.value, threshold = excluded.threshold, labels = excluded.labels,
			last_seq = excluded.last_seq, last_event_id = excluded.last_event_id
		WHERE excluded.last_seq >= alerts.last_seq`,
		rec.AlertID, rec.Rule, rec.RuleKind, rec.Severity, rec.State, rec.Room, rec.Source, rec.Platform,
		FormatTime(rec.StartedAt), resolved, FormatTime(rec.At), rec.Summary, rec.Value, rec.Threshold, string(labels),
		rec.Seq, rec.EventID); err != nil {
		return AlertDecision{}, fmt.Errorf("store: upsert alert %s: %w", rec.AlertID, storeExplain(err))
	}
	var dec AlertDecision
	if decide != nil {
		if dec, err = decide(&AlertTx{ctx: ctx, tx: tx}, prior); err != nil {
			return AlertDecision{}, err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO alert_events (event_id, alert_id, seq, state, prev, severity,
			value, threshold, numbers, samples, summary, at, suppressed, recorded_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.EventID, rec.AlertID, rec.Seq, rec.State, rec.Prev, rec.Severity, rec.Value, rec.Threshold,
		string(numbers), string(samples), rec.Summary, FormatTime(rec.At), storeNullString(dec.Suppressed), FormatTime(now)); err != nil {
		return AlertDecision{}, fmt.Errorf("store: insert alert event %s: %w", rec.EventID, storeExplain(err))
	}
	if err := storeQueueOutbox(ctx, tx, rec.EventID, dec.Outbox, now); err != nil {
		return AlertDecision{}, err
	}
	if dec.MarkNotified {
		if _, err := tx.ExecContext(ctx, `UPDATE alerts SET notified = 1 WHERE id = ?`, rec.AlertID); err != nil {
			return AlertDecision{}, fmt.Errorf("store: mark alert %s notified: %w", rec.AlertID, storeExplain(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return AlertDecision{}, fmt.Errorf("store: commit alert event %s: %w", rec.EventID, storeExplain(err))
	}
	return dec, nil
}

// ListAlerts returns alerts started at or after since, newest first.
func (s *Store) ListAlerts(ctx context.Context, since time.Time) ([]AlertRow, error) {
	return storeQueryAlerts(ctx, s.db, `WHERE started_at >= ? ORDER BY started_at DESC, id`, FormatTime(since))
}

type storeQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func storeQueryAlerts(ctx context.Context, q storeQuerier, where string, args ...any) ([]AlertRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, rule, rule_kind, severity, state, room, source, platform,
		started_at, resolved_at, updated_at, summary, labels, last_seq, notified FROM alerts `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: query alerts: %w", storeExplain(err))
	}
	defer rows.Close()
	var out []AlertRow
	for rows.Next() {
		var a AlertRow
		var started, updated, labels string
		var resolved sql.NullString
		if err := rows.Scan(&a.ID, &a.Rule, &a.RuleKind, &a.Severity, &a.State, &a.Room, &a.Source, &a.Platform,
			&started, &resolved, &updated, &a.Summary, &labels, &a.LastSeq, &a.Notified); err != nil {
			return nil, fmt.Errorf("store: query alerts: %w", err)
		}
		a.StartedAt, _ = ParseTime(started)
		a.UpdatedAt, _ = ParseTime(updated)
		if resolved.Valid {
			a.ResolvedAt, _ = ParseTime(resolved.String)
		}
		_ = json.Unmarshal([]byte(labels), &a.Labels)
		out = append(out, a)
	}
	return out, rows.Err()
}

func storeNonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// OpenAlerts returns the alerts left pending or firing, oldest first: on
// start the engine adopts them, so a restart neither forgets an alert (its
// row would stay firing, and inhibit, forever) nor announces it again.
func (s *Store) OpenAlerts(ctx context.Context) ([]AlertRow, error) {
	return storeQueryAlerts(ctx, s.db, `WHERE state IN ('pending','firing') ORDER BY started_at, id`)
}
