package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Report kinds (reports.kind).
const (
	ReportReview = "review" // the review of one stream, generated when it ends
	ReportDigest = "digest" // a scheduled summary across rooms
)

// ReportRecord is one generated report (a row of reports).
type ReportRecord struct {
	// ID is the report's idempotency key (see the migration 0010).
	ID        string
	Kind      string
	Schedule  string // digest: its schedule's name
	Source    string // review: the room's source, platform and room
	Platform  string
	Room      string
	From, To  time.Time
	Title     string
	Markdown  string
	URL       string
	Receivers []string
	CreatedAt time.Time
}

// QueueReport stores a generated report and its outbox rows in one
// transaction. A report whose id is already stored changes nothing:
// queued is false then. The rows use the report id as their event id.
func (s *Store) QueueReport(ctx context.Context, rec ReportRecord, rows []OutboxInsert, now time.Time) (queued bool, err error) {
	if rec.ID == "" || rec.Kind == "" {
		return false, errors.New("store: report without id or kind")
	}
	receivers, err := json.Marshal(append([]string{}, rec.Receivers...))
	if err != nil {
		return false, fmt.Errorf("store: report receivers: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: queue report %s: %w", rec.ID, storeExplain(err))
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO reports (id, kind, schedule, source, platform, room,
			from_ts, to_ts, title, markdown, url, receivers, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.ID, rec.Kind, rec.Schedule, rec.Source, rec.Platform, rec.Room, FormatTime(rec.From), FormatTime(rec.To),
		rec.Title, rec.Markdown, rec.URL, string(receivers), FormatTime(now))
	if err != nil {
		return false, fmt.Errorf("store: insert report %s: %w", rec.ID, storeExplain(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if err := storeQueueOutbox(ctx, tx, rec.ID, rows, now); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: commit report %s: %w", rec.ID, storeExplain(err))
	}
	return true, nil
}

// ReportExists reports whether a report with this id is stored.
func (s *Store) ReportExists(ctx context.Context, id string) (bool, error) {
	var one int
	switch err := s.db.QueryRowContext(ctx, `SELECT 1 FROM reports WHERE id = ?`, id).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store: report %s: %w", id, storeExplain(err))
	}
	return true, nil
}

// ListReports returns up to limit reports (0: all) of kind ("": every
// kind) whose window ends at or after since, newest first.
func (s *Store) ListReports(ctx context.Context, kind string, since time.Time, limit int) ([]ReportRecord, error) {
	return ListReportsFrom(ctx, s.db, kind, since, limit)
}

// ListReportsFrom is ListReports on any connection to a store's file (the
// dashboard reads through its own read-only one).
func ListReportsFrom(ctx context.Context, db *sql.DB, kind string, since time.Time, limit int) ([]ReportRecord, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.QueryContext(ctx, `SELECT id, kind, schedule, source, platform, room, from_ts, to_ts, title,
			markdown, url, receivers, created_at
		FROM reports WHERE (? = '' OR kind = ?) AND to_ts >= ? ORDER BY to_ts DESC, id LIMIT ?`,
		kind, kind, FormatTime(since), limit)
	if err != nil {
		return nil, fmt.Errorf("store: list reports: %w", storeExplain(err))
	}
	defer rows.Close()
	var out []ReportRecord
	for rows.Next() {
		var r ReportRecord
		var from, to, created, receivers string
		if err := rows.Scan(&r.ID, &r.Kind, &r.Schedule, &r.Source, &r.Platform, &r.Room, &from, &to, &r.Title,
			&r.Markdown, &r.URL, &receivers, &created); err != nil {
			return nil, fmt.Errorf("store: list reports: %w", err)
		}
		r.From, _ = ParseTime(from)
		r.To, _ = ParseTime(to)
		r.CreatedAt, _ = ParseTime(created)
		_ = json.Unmarshal([]byte(receivers), &r.Receivers)
		out = append(out, r)
	}
	return out, rows.Err()
}

// StreamEnd is a live_status 0 sample: a room's stream went offline or
// ended at TS.
type StreamEnd struct {
	Source, Platform, Room string
	TS                     time.Time
	Labels                 map[string]string // the sample's labels (its source's)
}

// StreamEnds lists the stream ends stored at or after since, oldest
// first.
func (s *Store) StreamEnds(ctx context.Context, since time.Time) ([]StreamEnd, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT source, platform, room, ts, coalesce(labels, '') FROM metrics INDEXED BY metrics_live_status
		WHERE name = 'live_status' AND value = 0 AND ts >= ? ORDER BY ts, source, room`, FormatTime(since))
	if err != nil {
		return nil, fmt.Errorf("store: stream ends: %w", storeExplain(err))
	}
	defer rows.Close()
	var out []StreamEnd
	for rows.Next() {
		var e StreamEnd
		var ts, labels string
		if err := rows.Scan(&e.Source, &e.Platform, &e.Room, &ts, &labels); err != nil {
			return nil, fmt.Errorf("store: stream ends: %w", err)
		}
		if labels != "" {
			_ = json.Unmarshal([]byte(labels), &e.Labels)
		}
		if e.TS, err = ParseTime(ts); err != nil {
			continue
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// StreamStart finds when the stream that ended at end began: the first
// live_status 1 after the room's previous end, else the room's first
// stored item after it. Nothing before earliest counts. ok is false when
// the room has neither: there was no stream to review.
func (s *Store) StreamStart(ctx context.Context, source, room string, end, earliest time.Time) (start time.Time, ok bool, err error) {
	lo := FormatTime(earliest)
	hi := FormatTime(end)
	var prev sql.NullString
	if err := s.db.QueryRowContext(ctx, `SELECT max(ts) FROM metrics INDEXED BY metrics_live_status
		WHERE source = ? AND room = ? AND name = 'live_status' AND value = 0 AND ts >= ? AND ts < ?`,
		source, room, lo, hi).Scan(&prev); err != nil {
		return time.Time{}, false, fmt.Errorf("store: stream start: %w", storeExplain(err))
	}
	after, cmp := lo, ">="
	if prev.Valid {
		after, cmp = prev.String, ">"
	}
	var first sql.NullString
	if err := s.db.QueryRowContext(ctx, `SELECT min(ts) FROM metrics INDEXED BY metrics_live_status
		WHERE source = ? AND room = ? AND name = 'live_status' AND value >= 1 AND ts `+cmp+` ? AND ts <= ?`,
		source, room, after, hi).Scan(&first); err != nil {
		return time.Time{}, false, fmt.Errorf("store: stream start: %w", storeExplain(err))
	}
	if !first.Valid {
		if err := s.db.QueryRowContext(ctx, `SELECT min(ts) FROM items
			WHERE source = ? AND room = ? AND ts `+cmp+` ? AND ts <= ?`,
			source, room, after, hi).Scan(&first); err != nil {
			return time.Time{}, false, fmt.Errorf("store: stream start: %w", storeExplain(err))
		}
	}
	if !first.Valid {
		return time.Time{}, false, nil
	}
	t, err := ParseTime(first.String)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: stream start: %w", err)
	}
	return t, true, nil
}

// LatestDigest is the end of the newest stored digest of a schedule; ok is
// false when none is stored.
func (s *Store) LatestDigest(ctx context.Context, schedule string) (t time.Time, ok bool, err error) {
	var ts sql.NullString
	if err := s.db.QueryRowContext(ctx, `SELECT max(to_ts) FROM reports WHERE kind = 'digest' AND schedule = ?`, schedule).Scan(&ts); err != nil {
		return time.Time{}, false, fmt.Errorf("store: latest digest: %w", storeExplain(err))
	}
	if !ts.Valid {
		return time.Time{}, false, nil
	}
	t, err = ParseTime(ts.String)
	return t, err == nil, err
}
