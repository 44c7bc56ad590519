package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SourceHealth is what the daemon knows about one source's recent life. It
// is one row of source_health, shown by `lookout status`.
type SourceHealth struct {
	Source      string
	Kind        string
	LastSuccess time.Time // zero: never
	LastErrorAt time.Time // zero: never
	LastError   string
	Items       int64
	Reconnects  int64
	Errors      int64
	UpdatedAt   time.Time // zero: set to now by UpdateHealth
}

// UpdateHealth replaces the health row of h.Source.
func (s *Store) UpdateHealth(ctx context.Context, h SourceHealth) error {
	if h.Source == "" {
		return fmt.Errorf("store: update health: empty source id")
	}
	if h.UpdatedAt.IsZero() {
		h.UpdatedAt = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO source_health
		(source, kind, last_success, last_error_at, last_error, items, reconnects, errors, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (source) DO UPDATE SET kind = excluded.kind, last_success = excluded.last_success,
			last_error_at = excluded.last_error_at, last_error = excluded.last_error, items = excluded.items,
			reconnects = excluded.reconnects, errors = excluded.errors, updated_at = excluded.updated_at`,
		h.Source, h.Kind, storeNullTime(h.LastSuccess), storeNullTime(h.LastErrorAt), storeNullString(h.LastError),
		h.Items, h.Reconnects, h.Errors, FormatTime(h.UpdatedAt))
	if err != nil {
		return fmt.Errorf("store: update health of %s: %w", h.Source, storeExplain(err))
	}
	return nil
}

// ListHealth returns every source's health row, by source id.
func (s *Store) ListHealth(ctx context.Context) ([]SourceHealth, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT source, kind, last_success, last_error_at, last_error,
		items, reconnects, errors, updated_at FROM source_health ORDER BY source`)
	if err != nil {
		return nil, fmt.Errorf("store: list health: %w", storeExplain(err))
	}
	defer rows.Close()
	var out []SourceHealth
	for rows.Next() {
		var h SourceHealth
		var okAt, errAt, lastErr sql.NullString
		var updated string
		if err := rows.Scan(&h.Source, &h.Kind, &okAt, &errAt, &lastErr, &h.Items, &h.Reconnects, &h.Errors, &updated); err != nil {
			return nil, fmt.Errorf("store: list health: %w", err)
		}
		h.LastError = lastErr.String
		for _, p := range []struct {
			in  sql.NullString
			out *time.Time
		}{{okAt, &h.LastSuccess}, {errAt, &h.LastErrorAt}, {sql.NullString{String: updated, Valid: true}, &h.UpdatedAt}} {
			if !p.in.Valid {
				continue
			}
			t, err := ParseTime(p.in.String)
			if err != nil {
				return nil, fmt.Errorf("store: list health of %s: %w", h.Source, err)
			}
			*p.out = t
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list health: %w", err)
	}
	return out, nil
}

// storeNullTime maps the zero time to NULL.
func storeNullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return FormatTime(t)
}

// storeNullString maps "" to NULL.
func storeNullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
