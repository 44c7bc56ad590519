package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"lookout/internal/labels"
)

// Silence mutes alerts whose labels match all its matchers between
// StartsAt and EndsAt (`lookout silence add|list|expire`).
type Silence struct {
	ID        string
	Matchers  labels.Matchers
	StartsAt  time.Time
	EndsAt    time.Time
	Comment   string
	CreatedBy string
	CreatedAt time.Time
	ExpiredAt time.Time // zero unless expired by hand

	// Unreadable holds the stored matchers when they no longer parse (a
	// silence written by an older, laxer parser); such a silence matches
	// nothing until it ends or is expired.
	Unreadable string
}

// ActiveAt reports whether the silence is in force at t.
func (s Silence) ActiveAt(t time.Time) bool {
	return !t.Before(s.StartsAt) && t.Before(s.EndsAt) && (s.ExpiredAt.IsZero() || t.Before(s.ExpiredAt))
}

// Matches reports whether labels satisfy every matcher. A silence without
// matchers matches nothing (AddSilence refuses one).
func (s Silence) Matches(ls map[string]string) bool {
	return len(s.Matchers) > 0 && s.Matchers.Matches(ls)
}

// MatchersString is the silence's matchers as `lookout silence add` reads
// them back.
func (s Silence) MatchersString() string {
	if s.Unreadable != "" {
		return "unreadable: " + s.Unreadable
	}
	return s.Matchers.String()
}

// AddSilence validates and stores a silence; it fills in ID (random),
// CreatedAt and StartsAt (now) when they are empty.
func (s *Store) AddSilence(ctx context.Context, sil Silence, now time.Time) (Silence, error) {
	if len(sil.Matchers) == 0 {
		return Silence{}, errors.New(`silence: needs at least one matcher, e.g. room="21452505"`)
	}
	if sil.StartsAt.IsZero() {
		sil.StartsAt = now
	}
	if sil.CreatedAt.IsZero() {
		sil.CreatedAt = now
	}
	if !sil.EndsAt.After(sil.StartsAt) {
		return Silence{}, fmt.Errorf("silence: ends_at %s is not after starts_at %s", FormatTime(sil.EndsAt), FormatTime(sil.StartsAt))
	}
	if sil.ID == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return Silence{}, err
		}
		sil.ID = hex.EncodeToString(b[:])
	}
	ms, _ := json.Marshal(sil.Matchers.Strings())
	if _, err := s.db.ExecContext(ctx, `INSERT INTO silences (id, matchers, starts_at, ends_at, comment, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, sil.ID, string(ms), FormatTime(sil.StartsAt), FormatTime(sil.EndsAt),
		sil.Comment, sil.CreatedBy, FormatTime(sil.CreatedAt)); err != nil {
		return Silence{}, fmt.Errorf("store: add silence: %w", storeExplain(err))
	}
	return sil, nil
}

// ListSilences returns silences in force at now (or not yet started),
// plus ended and expired ones when all is true; soonest end first.
func (s *Store) ListSilences(ctx context.Context, now time.Time, all bool) ([]Silence, error) {
	return storeQuerySilences(ctx, s.db, now, all)
}

// ErrNoSilence is returned by ExpireSilence for an unknown or ended id.
var ErrNoSilence = errors.New("no such active silence")

// ExpireSilence ends a silence now.
func (s *Store) ExpireSilence(ctx context.Context, id string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE silences SET expired_at = ? WHERE id = ? AND expired_at IS NULL AND ends_at > ?`,
		FormatTime(now), id, FormatTime(now))
	if err != nil {
		return fmt.Errorf("store: expire silence %s: %w", id, storeExplain(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("silence %s: %w", id, ErrNoSilence)
	}
	return nil
}

func storeQuerySilences(ctx context.Context, q storeQuerier, now time.Time, all bool) ([]Silence, error) {
	where := `WHERE expired_at IS NULL AND ends_at > ?`
	args := []any{FormatTime(now)}
	if all {
		where, args = "", nil
	}
	rows, err := q.QueryContext(ctx, `SELECT id, matchers, starts_at, ends_at, comment, created_by, created_at,
		coalesce(expired_at, '') FROM silences `+where+` ORDER BY ends_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list silences: %w", storeExplain(err))
	}
	defer rows.Close()
	var out []Silence
	for rows.Next() {
		var sl Silence
		var ms, starts, ends, created, expired string
		if err := rows.Scan(&sl.ID, &ms, &starts, &ends, &sl.Comment, &sl.CreatedBy, &created, &expired); err != nil {
			return nil, fmt.Errorf("store: list silences: %w", err)
		}
		var raw []string
		if err := json.Unmarshal([]byte(ms), &raw); err != nil {
			return nil, fmt.Errorf("store: silence %s: matchers: %w", sl.ID, err)
		}
		for _, r := range raw {
			m, err := labels.Parse(r)
			if err != nil {
				sl.Matchers, sl.Unreadable = nil, strings.Join(raw, ", ")
				break
			}
			sl.Matchers = append(sl.Matchers, m)
		}
		sl.StartsAt, _ = ParseTime(starts)
		sl.EndsAt, _ = ParseTime(ends)
		sl.CreatedAt, _ = ParseTime(created)
		if expired != "" {
			sl.ExpiredAt, _ = ParseTime(expired)
		}
		out = append(out, sl)
	}
	return out, rows.Err()
}
