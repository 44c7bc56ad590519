package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"lookout/store"
)

// RoomProfiles returns every stored room profile.
func (s *Store) RoomProfiles(ctx context.Context) ([]store.RoomProfile, error) {
	rows, err := s.pool.Query(ctx, `SELECT rule, source, room, profile, updated_at FROM room_profiles ORDER BY rule, source, room`)
	if err != nil {
		return nil, fmt.Errorf("pg: room profiles: %w", err)
	}
	defer rows.Close()
	var out []store.RoomProfile
	for rows.Next() {
		var r store.RoomProfile
		if err := rows.Scan(&r.Rule, &r.Source, &r.Room, &r.Profile, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("pg: room profiles: %w", err)
		}
		r.UpdatedAt = r.UpdatedAt.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// PutRoomProfiles writes rows in one transaction, replacing the rows of
// the same rule and room (see store.Store.PutRoomProfiles for when to
// call it).
func (s *Store) PutRoomProfiles(ctx context.Context, rows []store.RoomProfile) error {
	if len(rows) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, r := range rows {
			if _, err := tx.Exec(ctx, `INSERT INTO room_profiles (rule, source, room, profile, updated_at) VALUES ($1, $2, $3, $4, now())
				ON CONFLICT (rule, source, room) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at`,
				r.Rule, r.Source, r.Room, clean(r.Profile)); err != nil {
				return fmt.Errorf("room profile %s/%s/%s: %w", r.Rule, r.Source, r.Room, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pg: put room profiles: %w", err)
	}
	return nil
}

// DeleteRoomProfilesBefore deletes the rows last written before t.
func (s *Store) DeleteRoomProfilesBefore(ctx context.Context, t time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM room_profiles WHERE updated_at < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("pg: delete old room profiles: %w", err)
	}
	return tag.RowsAffected(), nil
}

// RecentItemIDs returns up to n item ids of a source, newest first.
func (s *Store) RecentItemIDs(ctx context.Context, source string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT item_id FROM items WHERE source = $1 AND item_id IS NOT NULL ORDER BY id DESC LIMIT $2`, source, n)
	if err != nil {
		return nil, fmt.Errorf("pg: recent item ids of %s: %w", source, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// pruneChunk bounds how many rows one DELETE removes.
const pruneChunk = 5000

// Prune applies retention as store.Store.Prune does: raw payloads of items
// older than now-raw, items and metric samples older than now-items; a
// zero duration keeps them. Several processors may prune at once: each
// chunk is its own statement, and rows another deleted are skipped.
func (s *Store) Prune(ctx context.Context, now time.Time, raw, items time.Duration) (int64, error) {
	var total int64
	loop := func(what, q string, cut time.Time) error {
		for {
			tag, err := s.pool.Exec(ctx, q, cut, pruneChunk)
			if err != nil {
				return fmt.Errorf("pg: prune %s: %w", what, err)
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < pruneChunk {
				return nil
			}
		}
	}
	if raw > 0 {
		if err := loop("raw payloads", `DELETE FROM raw_payloads WHERE item_id IN (
			SELECT r.item_id FROM raw_payloads r JOIN items i ON i.id = r.item_id WHERE i.ts < $1 LIMIT $2 FOR UPDATE OF r SKIP LOCKED)`,
			now.Add(-raw)); err != nil {
			return total, err
		}
	}
	if items > 0 {
		if err := loop("items", `DELETE FROM items WHERE id IN (SELECT id FROM items WHERE ts < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, now.Add(-items)); err != nil {
			return total, err
		}
		if err := loop("metrics", `DELETE FROM metrics WHERE id IN (SELECT id FROM metrics WHERE ts < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, now.Add(-items)); err != nil {
			return total, err
		}
	}
	return total, nil
}
