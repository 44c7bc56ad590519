package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// SourceHealth is what the daemon knows about one source's recent life. It
// is one row of source_health, shown by `lookout status`.
type SourceHealth struct {
	Source      string
	Kind        string
	State       string    // ok, connecting or broken ("" in rows from before states)
	Since       time.Time // when the source entered State; zero: unknown
	Broken      string    // while broken: "reason: detail"
	LastSuccess time.Time // zero: never
	LastErrorAt time.Time // zero: never
	LastError   string
	Items       int64
	Reconnects  int64
	Errors      int64
	UpdatedAt   time.Time // zero: set to now by UpdateHealth
	// Moved holds the permanent redirects the source met in this run,
	// configured URL → new URL; nil when none.
	Moved map[string]string
}

// UpdateHealth replaces the health row of h.Source.
func (s *Store) UpdateHealth(ctx context.Context, h SourceHealth) error {
	if h.Source == "" {
		return fmt.Errorf("store: update health: empty source id")
	}
	if h.UpdatedAt.IsZero() {
		h.UpdatedAt = time.Now()
	}
	var moved any // NULL when none
	if len(h.Moved) > 0 {
		b, err := json.Marshal(h.Moved) // keys sorted: the same moves give the same text
		if err != nil {
			return fmt.Errorf("store: update health of %s: moved URLs: %w", h.Source, err)
		}
		moved = string(b)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO source_health
		(source, kind, state, state_since, broken, last_success, last_error_at, last_error, items, reconnects, errors, updated_at, moved)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (source) DO UPDATE SET kind = excluded.kind, state = excluded.state,
			state_since = excluded.state_since, broken = excluded.broken, last_success = excluded.last_success,
			last_error_at = excluded.last_error_at, last_error = excluded.last_error, items = excluded.items,
			reconnects = excluded.reconnects, errors = excluded.errors, updated_at = excluded.updated_at,
			moved = excluded.moved`,
		h.Source, h.Kind, storeNullString(h.State), storeNullTime(h.Since), storeNullString(h.Broken),
		storeNullTime(h.LastSuccess), storeNullTime(h.LastErrorAt), storeNullString(h.LastError),
		h.Items, h.Reconnects, h.Errors, FormatTime(h.UpdatedAt), moved)
	if err != nil {
		return fmt.Errorf("store: update health of %s: %w", h.Source, storeExplain(err))
	}
	return nil
}

// ListHealth returns every source's health row, by source id.
func (s *Store) ListHealth(ctx context.Context) ([]SourceHealth, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT source, kind, state, state_since, broken, last_success, last_error_at, last_error,
		items, reconnects, errors, updated_at, moved FROM source_health ORDER BY source`)
	if err != nil {
		return nil, fmt.Errorf("store: list health: %w", storeExplain(err))
	}
	defer rows.Close()
	var out []SourceHealth
	for rows.Next() {
		var h SourceHealth
		var state, since, broken, okAt, errAt, lastErr, moved sql.NullString
		var updated string
		if err := rows.Scan(&h.Source, &h.Kind, &state, &since, &broken, &okAt, &errAt, &lastErr,
			&h.Items, &h.Reconnects, &h.Errors, &updated, &moved); err != nil {
			return nil, fmt.Errorf("store: list health: %w", err)
		}
		if moved.Valid {
			if err := json.Unmarshal([]byte(moved.String), &h.Moved); err != nil {
				return nil, fmt.Errorf("store: list health of %s: moved URLs: %w", h.Source, err)
			}
		}
		h.State, h.Broken, h.LastError = state.String, broken.String, lastErr.String
		for _, p := range []struct {
			in  sql.NullString
			out *time.Time
		}{{since, &h.Since}, {okAt, &h.LastSuccess}, {errAt, &h.LastErrorAt}, {sql.NullString{String: updated, Valid: true}, &h.UpdatedAt}} {
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

// BrokenSources lists the sources whose latest source_broken sample says
// broken: what the last run left unresolved.
func (s *Store) BrokenSources(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT source FROM (
		SELECT source, value, row_number() OVER (PARTITION BY source ORDER BY ts DESC, id DESC) AS n
		  FROM metrics WHERE room = '' AND name = 'source_broken') WHERE n = 1 AND value > 0`)
	if err != nil {
		return nil, fmt.Errorf("store: broken sources: %w", storeExplain(err))
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var src string
		if err := rows.Scan(&src); err != nil {
			return nil, fmt.Errorf("store: broken sources: %w", err)
		}
		out[src] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: broken sources: %w", err)
	}
	return out, nil
}

// Ping checks that the database takes writes: it opens a write
// transaction (which takes SQLite's write lock), makes a write that changes
// nothing, and rolls back. It fails on a closed store, a read-only file, or
// a lock another writer holds past ctx's deadline (SQLite's busy wait does
// not notice a cancelled ctx, so the wait is cut to the deadline).
func (s *Store) Ping(ctx context.Context) error {
	if s.readOnly {
		return fmt.Errorf("store: %s is open read-only", s.path)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: ping: %w", storeExplain(err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		wait := min(max(time.Until(dl), time.Millisecond), s.busyTimeout)
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wait.Milliseconds())); err != nil {
			return fmt.Errorf("store: ping: %w", storeExplain(err))
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", s.busyTimeout.Milliseconds()))
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: ping: %w", storeExplain(err))
	}
	// A write that changes nothing still needs the lock and a writable file.
	if _, err := tx.ExecContext(ctx, `UPDATE source_health SET updated_at = updated_at WHERE source = ''`); err != nil {
		tx.Rollback()
		return fmt.Errorf("store: ping: %w", storeExplain(err))
	}
	if err := tx.Rollback(); err != nil {
		return fmt.Errorf("store: ping: %w", storeExplain(err))
	}
	return nil
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
