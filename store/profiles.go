package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"lookout/item"
)

// RoomProfile is one row of room_profiles: what the alert engine learned
// about one room for one rule, as the engine's own JSON.
type RoomProfile struct {
	Rule, Source, Room string
	Profile            string
	UpdatedAt          time.Time // set by the store when the row is written
}

// storePutProfile upserts one room_profiles row.
const storePutProfile = `INSERT INTO room_profiles (rule, source, room, profile, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (rule, source, room) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at`

// roomProfilesSource marks the state item that carries room profiles
// (RoomProfilesItem). Every configured source has an id, so no
// collector's state item has an empty source.
const roomProfilesSource = ""

// RoomProfilesItem is the item that carries rows to room_profiles through
// the Writer. Sent down the pipeline behind the items the profiles were
// learned from, it is committed with them or after them, like a
// collector's state (item.KindState): after a crash the stored profiles
// never count a message that is not stored.
func RoomProfilesItem(rows []RoomProfile) item.Item {
	kv := make(map[string]string, len(rows))
	for _, r := range rows {
		kv[roomProfileKey(r.Rule, r.Source, r.Room)] = r.Profile
	}
	return item.StateItem(roomProfilesSource, kv)
}

func roomProfileKey(rule, source, room string) string {
	return rule + "\x00" + source + "\x00" + room
}

// roomProfileSplit undoes roomProfileKey.
func roomProfileSplit(k string) (rule, source, room string, ok bool) {
	rule, rest, ok1 := strings.Cut(k, "\x00")
	source, room, ok2 := strings.Cut(rest, "\x00")
	return rule, source, room, ok1 && ok2
}

// RoomProfiles returns every stored room profile.
func (s *Store) RoomProfiles(ctx context.Context) ([]RoomProfile, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT rule, source, room, profile, updated_at FROM room_profiles ORDER BY rule, source, room`)
	if err != nil {
		return nil, fmt.Errorf("store: room profiles: %w", storeExplain(err))
	}
	defer rows.Close()
	var out []RoomProfile
	for rows.Next() {
		var r RoomProfile
		var at string
		if err := rows.Scan(&r.Rule, &r.Source, &r.Room, &r.Profile, &at); err != nil {
			return nil, fmt.Errorf("store: room profiles: %w", storeExplain(err))
		}
		if r.UpdatedAt, err = ParseTime(at); err != nil {
			return nil, fmt.Errorf("store: room profile %s/%s/%s: updated_at: %w", r.Rule, r.Source, r.Room, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: room profiles: %w", storeExplain(err))
	}
	return out, nil
}

// PutRoomProfiles writes rows in one transaction, replacing the rows of
// the same rule and room. Only a caller that knows every item the rows
// were learned from is stored may call it (the daemon after its writer has
// drained); otherwise send RoomProfilesItem through the Writer.
func (s *Store) PutRoomProfiles(ctx context.Context, rows []RoomProfile) error {
	if len(rows) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: put room profiles: begin: %w", storeExplain(err))
	}
	defer tx.Rollback() // after Commit, a no-op
	now := FormatTime(time.Now())
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, storePutProfile, r.Rule, r.Source, r.Room, r.Profile, now); err != nil {
			return fmt.Errorf("store: put room profile %s/%s/%s: %w", r.Rule, r.Source, r.Room, storeExplain(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: put room profiles: commit: %w", storeExplain(err))
	}
	return nil
}

// DeleteRoomProfilesBefore deletes the rows last written before t (rooms
// the engine has long stopped keeping) and returns how many.
func (s *Store) DeleteRoomProfilesBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM room_profiles WHERE updated_at < ?`, FormatTime(t))
	if err != nil {
		return 0, fmt.Errorf("store: delete old room profiles: %w", storeExplain(err))
	}
	return res.RowsAffected()
}

// RoomProfilesFromItem returns the rows a RoomProfilesItem carries, and
// false for any other item. Another store's writer reads them here.
func RoomProfilesFromItem(it *item.Item) ([]RoomProfile, bool, error) {
	if it.Kind != item.KindState || it.Source != roomProfilesSource {
		return nil, false, nil
	}
	out := make([]RoomProfile, 0, len(it.State))
	for k, v := range it.State {
		rule, source, room, ok := roomProfileSplit(k)
		if !ok {
			return nil, true, fmt.Errorf("store: room profile: malformed key %q", k)
		}
		out = append(out, RoomProfile{Rule: rule, Source: source, Room: room, Profile: v})
	}
	return out, true, nil
}
