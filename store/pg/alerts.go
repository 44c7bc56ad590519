package pg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"lookout/internal/labels"
	"lookout/store"
)

// The alert, outbox, silence and room-profile methods below are the SQLite
// store's (store/alerts.go, outbox.go, silences.go, profiles.go) on
// PostgreSQL, so alerts.Delivery and the daemon's process role run on
// either. Several processors share the outbox: OutboxMarkSending claims
// rows as the SQLite store does (see store.OutboxClaimTimeout), with the
// database's clock.

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type alertView struct {
	ctx context.Context
	tx  pgx.Tx
}

func (v *alertView) FiringAlerts() ([]store.AlertRow, error) {
	return queryAlerts(v.ctx, v.tx, `WHERE state = 'firing'`)
}

func (v *alertView) FiringAlertsInRoom(room string) ([]store.AlertRow, error) {
	return queryAlerts(v.ctx, v.tx, `WHERE state = 'firing' AND room = $1`, room)
}

func (v *alertView) ActiveSilences(now time.Time) ([]store.Silence, error) {
	return querySilences(v.ctx, v.tx, now, false)
}

func (v *alertView) NotifiedReceivers(alertID string) ([]string, error) {
	rows, err := v.tx.Query(v.ctx, `SELECT DISTINCT o.receiver FROM outbox o
		JOIN alert_events e ON e.event_id = o.event_id
		WHERE e.alert_id = $1 AND e.state = 'firing' AND o.state IN ('pending','sending','sent')
		ORDER BY o.receiver`, alertID)
	if err != nil {
		return nil, fmt.Errorf("pg: notified receivers of %s: %w", alertID, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// FiringAlerts returns the alerts firing now, in one room unless all.
func (s *Store) FiringAlerts(ctx context.Context, room string, all bool) ([]store.AlertRow, error) {
	if all {
		return queryAlerts(ctx, s.pool, `WHERE state = 'firing'`)
	}
	return queryAlerts(ctx, s.pool, `WHERE state = 'firing' AND room = $1`, room)
}

// OpenAlerts returns the alerts left pending or firing, oldest first.
func (s *Store) OpenAlerts(ctx context.Context) ([]store.AlertRow, error) {
	return queryAlerts(ctx, s.pool, `WHERE state IN ('pending','firing') ORDER BY started_at, id`)
}

// ListAlerts returns alerts started at or after since, newest first.
func (s *Store) ListAlerts(ctx context.Context, since time.Time) ([]store.AlertRow, error) {
	return queryAlerts(ctx, s.pool, `WHERE started_at >= $1 ORDER BY started_at DESC, id`, since)
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// RecordAlertEvent stores an alert state change in one transaction, as
// store.Store.RecordAlertEvent does. Two processors recording the same
// event (a take-over) are serialised on the alert's row; the second gets
// an error wrapping store.ErrDuplicateEvent.
func (s *Store) RecordAlertEvent(ctx context.Context, rec store.AlertEventRecord, now time.Time,
	decide func(tx store.AlertView, prior *store.AlertRow) (store.AlertDecision, error)) (store.AlertDecision, error) {
	if rec.EventID == "" || rec.AlertID == "" {
		return store.AlertDecision{}, errors.New("pg: alert event without id or alert id")
	}
	lab := rec.Labels
	if lab == nil {
		lab = map[string]string{}
	}
	labelsJSON, err := json.Marshal(lab)
	if err != nil {
		return store.AlertDecision{}, fmt.Errorf("pg: alert labels: %w", err)
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
	var dec store.AlertDecision
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Serialise on the alert: the row is locked (or, for a new alert,
		// an advisory lock on its id is taken) before the duplicate check.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, rec.AlertID); err != nil {
			return err
		}
		var one int
		switch err := tx.QueryRow(ctx, `SELECT 1 FROM alert_events WHERE event_id = $1`, rec.EventID).Scan(&one); {
		case err == nil:
			return fmt.Errorf("%w: %s", store.ErrDuplicateEvent, rec.EventID)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		var prior *store.AlertRow
		rows, err := queryAlerts(ctx, tx, `WHERE id = $1`, rec.AlertID)
		if err != nil {
			return err
		}
		if len(rows) == 1 {
			prior = &rows[0]
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alerts (id, rule, rule_kind, severity, state, room, source, platform,
				started_at, resolved_at, updated_at, summary, value, threshold, labels, last_seq, last_event_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $17)
			ON CONFLICT (id) DO UPDATE SET severity = excluded.severity, state = excluded.state,
				resolved_at = excluded.resolved_at, updated_at = excluded.updated_at, summary = excluded.summary,
				value = excluded.value, threshold = excluded.threshold, labels = excluded.labels,
				last_seq = excluded.last_seq, last_event_id = excluded.last_event_id
			WHERE excluded.last_seq >= alerts.last_seq`,
			rec.AlertID, rec.Rule, rec.RuleKind, rec.Severity, rec.State, rec.Room, rec.Source, rec.Platform,
			rec.StartedAt, nullTime(rec.ResolvedAt), rec.At, clean(rec.Summary), rec.Value, rec.Threshold, string(labelsJSON),
			rec.Seq, rec.EventID); err != nil {
			return fmt.Errorf("upsert alert %s: %w", rec.AlertID, err)
		}
		if decide != nil {
			if dec, err = decide(&alertView{ctx: ctx, tx: tx}, prior); err != nil {
				return err
			}
		}
		var suppressed *string
		if dec.Suppressed != "" {
			suppressed = &dec.Suppressed
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alert_events (event_id, alert_id, seq, state, prev, severity,
				value, threshold, numbers, samples, summary, at, suppressed, recorded_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11, $12, $13, $14)`,
			rec.EventID, rec.AlertID, rec.Seq, rec.State, rec.Prev, rec.Severity, rec.Value, rec.Threshold,
			string(numbers), clean(string(samples)), clean(rec.Summary), rec.At, suppressed, now); err != nil {
			return fmt.Errorf("insert alert event %s: %w", rec.EventID, err)
		}
		for _, o := range dec.Outbox {
			if _, err := tx.Exec(ctx, `INSERT INTO outbox (event_id, receiver, group_key, payload, state,
					not_before, group_interval_ms, next_attempt_at, created_at)
				VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $7)
				ON CONFLICT (event_id, receiver) DO NOTHING`,
				rec.EventID, o.Receiver, o.GroupKey, clean(string(o.Payload)), o.NotBefore,
				o.GroupInterval.Milliseconds(), now); err != nil {
				return fmt.Errorf("queue %s for %s: %w", rec.EventID, o.Receiver, err)
			}
		}
		if dec.MarkNotified {
			if _, err := tx.Exec(ctx, `UPDATE alerts SET notified = 1 WHERE id = $1`, rec.AlertID); err != nil {
				return fmt.Errorf("mark alert %s notified: %w", rec.AlertID, err)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrDuplicateEvent) {
			return store.AlertDecision{}, err
		}
		return store.AlertDecision{}, fmt.Errorf("pg: record alert event %s: %w", rec.EventID, err)
	}
	return dec, nil
}

func queryAlerts(ctx context.Context, q querier, where string, args ...any) ([]store.AlertRow, error) {
	rows, err := q.Query(ctx, `SELECT id, rule, rule_kind, severity, state, room, source, platform,
		started_at, resolved_at, updated_at, summary, labels, last_seq, notified FROM alerts `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("pg: query alerts: %w", err)
	}
	defer rows.Close()
	var out []store.AlertRow
	for rows.Next() {
		var a store.AlertRow
		var resolved *time.Time
		var notified int
		if err := rows.Scan(&a.ID, &a.Rule, &a.RuleKind, &a.Severity, &a.State, &a.Room, &a.Source, &a.Platform,
			&a.StartedAt, &resolved, &a.UpdatedAt, &a.Summary, &a.Labels, &a.LastSeq, &notified); err != nil {
			return nil, fmt.Errorf("pg: query alerts: %w", err)
		}
		a.StartedAt, a.UpdatedAt = a.StartedAt.UTC(), a.UpdatedAt.UTC()
		if resolved != nil {
			a.ResolvedAt = resolved.UTC()
		}
		a.Notified = notified != 0
		out = append(out, a)
	}
	return out, rows.Err()
}

// ListSilences returns silences in force at now (or not yet started),
// plus ended and expired ones when all is true; soonest end first.
func (s *Store) ListSilences(ctx context.Context, now time.Time, all bool) ([]store.Silence, error) {
	return querySilences(ctx, s.pool, now, all)
}

// AddSilence stores a silence (see store.Store.AddSilence).
func (s *Store) AddSilence(ctx context.Context, sil store.Silence, now time.Time) (store.Silence, error) {
	if len(sil.Matchers) == 0 {
		return store.Silence{}, errors.New(`silence: needs at least one matcher, e.g. room="21452505"`)
	}
	if sil.StartsAt.IsZero() {
		sil.StartsAt = now
	}
	if sil.CreatedAt.IsZero() {
		sil.CreatedAt = now
	}
	if !sil.EndsAt.After(sil.StartsAt) {
		return store.Silence{}, fmt.Errorf("silence: ends_at %s is not after starts_at %s", store.FormatTime(sil.EndsAt), store.FormatTime(sil.StartsAt))
	}
	if sil.ID == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return store.Silence{}, err
		}
		sil.ID = hex.EncodeToString(b[:])
	}
	ms, _ := json.Marshal(sil.Matchers.Strings())
	if _, err := s.pool.Exec(ctx, `INSERT INTO silences (id, matchers, starts_at, ends_at, comment, created_by, created_at)
		VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7)`, sil.ID, string(ms), sil.StartsAt, sil.EndsAt,
		sil.Comment, sil.CreatedBy, sil.CreatedAt); err != nil {
		return store.Silence{}, fmt.Errorf("pg: add silence: %w", err)
	}
	return sil, nil
}

func querySilences(ctx context.Context, q querier, now time.Time, all bool) ([]store.Silence, error) {
	where := `WHERE expired_at IS NULL AND ends_at > $1`
	args := []any{now}
	if all {
		where, args = "", nil
	}
	rows, err := q.Query(ctx, `SELECT id, matchers::text, starts_at, ends_at, comment, created_by, created_at, expired_at
		FROM silences `+where+` ORDER BY ends_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("pg: list silences: %w", err)
	}
	defer rows.Close()
	var out []store.Silence
	for rows.Next() {
		var sl store.Silence
		var ms string
		var expired *time.Time
		if err := rows.Scan(&sl.ID, &ms, &sl.StartsAt, &sl.EndsAt, &sl.Comment, &sl.CreatedBy, &sl.CreatedAt, &expired); err != nil {
			return nil, fmt.Errorf("pg: list silences: %w", err)
		}
		sl.StartsAt, sl.EndsAt, sl.CreatedAt = sl.StartsAt.UTC(), sl.EndsAt.UTC(), sl.CreatedAt.UTC()
		if expired != nil {
			sl.ExpiredAt = expired.UTC()
		}
		var raw []string
		if err := json.Unmarshal([]byte(ms), &raw); err != nil {
			return nil, fmt.Errorf("pg: silence %s: matchers: %w", sl.ID, err)
		}
		for _, r := range raw {
			m, err := labels.Parse(r)
			if err != nil {
				sl.Matchers, sl.Unreadable = nil, ms
				break
			}
			sl.Matchers = append(sl.Matchers, m)
		}
		out = append(out, sl)
	}
	return out, rows.Err()
}

// ExpireSilence ends a silence now; an unknown or ended id is an error
// wrapping store.ErrNoSilence.
func (s *Store) ExpireSilence(ctx context.Context, id string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE silences SET expired_at = $1 WHERE id = $2 AND expired_at IS NULL AND ends_at > $1`, now, id)
	if err != nil {
		return fmt.Errorf("pg: expire silence %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("silence %s: %w", id, store.ErrNoSilence)
	}
	return nil
}
