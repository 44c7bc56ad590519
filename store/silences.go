package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Silence mutes alerts whose labels match all its matchers between
// StartsAt and EndsAt (`lookout silence add|list|expire`).
type Silence struct {
	ID        string
	Matchers  []string // "label=value", "label!=value", "label=~regex", "label!~regex"
	StartsAt  time.Time
	EndsAt    time.Time
	Comment   string
	CreatedBy string
	CreatedAt time.Time
	ExpiredAt time.Time // zero unless expired by hand
}

// ActiveAt reports whether the silence is in force at t.
func (s Silence) ActiveAt(t time.Time) bool {
	return !t.Before(s.StartsAt) && t.Before(s.EndsAt) && (s.ExpiredAt.IsZero() || t.Before(s.ExpiredAt))
}

// Matches reports whether labels satisfy every matcher. Matchers that do
// not parse match nothing (AddSilence refuses them).
func (s Silence) Matches(labels map[string]string) bool {
	if len(s.Matchers) == 0 {
		return false
	}
	for _, raw := range s.Matchers {
		m, err := ParseMatcher(raw)
		if err != nil || !m.Matches(labels) {
			return false
		}
	}
	return true
}

// Matcher is one label condition of a silence.
type Matcher struct {
	Name  string
	Op    string // =, !=, =~, !~
	Value string
	re    *regexp.Regexp
}

var storeMatcherRE = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$`)

// ParseMatcher reads "name=value", "name!=value", "name=~regex" or
// "name!~regex"; the value may be double-quoted. Regexes are anchored.
func ParseMatcher(s string) (Matcher, error) {
	m := storeMatcherRE.FindStringSubmatch(s)
	if m == nil {
		return Matcher{}, fmt.Errorf("matcher %q: want label=value, label!=value, label=~regex or label!~regex", s)
	}
	v := m[3]
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	out := Matcher{Name: m[1], Op: m[2], Value: v}
	if out.Op == "=~" || out.Op == "!~" {
		re, err := regexp.Compile("^(?:" + v + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("matcher %q: bad regular expression: %w", s, err)
		}
		out.re = re
	}
	return out, nil
}

// Matches tests one label set; a missing label reads as "".
func (m Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Op {
	case "=":
		return v == m.Value
	case "!=":
		return v != m.Value
	case "=~":
		return m.re.MatchString(v)
	case "!~":
		return !m.re.MatchString(v)
	}
	return false
}

func (m Matcher) String() string { return m.Name + m.Op + m.Value }

// AddSilence validates and stores a silence; it fills in ID (random),
// CreatedAt and StartsAt (now) when they are empty.
func (s *Store) AddSilence(ctx context.Context, sil Silence, now time.Time) (Silence, error) {
	if len(sil.Matchers) == 0 {
		return Silence{}, errors.New("silence: needs at least one matcher, e.g. room=21452505")
	}
	for i, raw := range sil.Matchers {
		m, err := ParseMatcher(raw)
		if err != nil {
			return Silence{}, fmt.Errorf("silence: %w", err)
		}
		sil.Matchers[i] = m.String()
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
	ms, _ := json.Marshal(sil.Matchers)
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
		if err := json.Unmarshal([]byte(ms), &sl.Matchers); err != nil {
			return nil, fmt.Errorf("store: silence %s: matchers: %w", sl.ID, err)
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

// SilenceMatchersString joins matchers for display.
func SilenceMatchersString(ms []string) string { return strings.Join(ms, ", ") }
