package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// storePutState upserts one source_state row.
const storePutState = `INSERT INTO source_state (source, key, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`

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
	_, err := s.db.ExecContext(ctx, storePutState, source, key, value, FormatTime(time.Now()))
	if err != nil {
		return fmt.Errorf("store: put state %s/%s: %w", source, key, storeExplain(err))
	}
	return nil
}

// PutStates stores several of a source's keys in one transaction: all of
// them or none (collectors.StateStore). The daemon's collectors do not call
// it: their state reaches the store through the Writer, behind the items it
// covers (see item.KindState).
func (s *Store) PutStates(ctx context.Context, source string, kv map[string]string) error {
	if len(kv) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: put state %s: begin: %w", source, storeExplain(err))
	}
	defer tx.Rollback() // after Commit, a no-op
	now := FormatTime(time.Now())
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		if _, err := tx.ExecContext(ctx, storePutState, source, k, kv[k], now); err != nil {
			return fmt.Errorf("store: put state %s/%s: %w", source, k, storeExplain(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: put state %s: commit: %w", source, storeExplain(err))
	}
	return nil
}
