package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// GetState returns a source's stored value for key (collectors.StateStore).
func (s *Store) GetState(ctx context.Context, source, key string) (string, bool, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM source_state WHERE source = ? AND key = ?`, source, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: get state %s/%s: %w", source, key, storeExplain(err))
	}
	return v, true, nil
}

// PutState stores a source's value for key, replacing any earlier one
// (collectors.StateStore).
func (s *Store) PutState(ctx context.Context, source, key, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO source_state (source, key, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		source, key, value, FormatTime(time.Now()))
	if err != nil {
		return fmt.Errorf("store: put state %s/%s: %w", source, key, storeExplain(err))
	}
	return nil
}
