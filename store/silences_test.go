package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lookout/internal/labels"
)

func TestSilencesAddListExpire(t *testing.T) {
	ctx := t.Context()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if _, err := st.AddSilence(ctx, Silence{EndsAt: now.Add(time.Hour)}, now); err == nil || !strings.Contains(err.Error(), "at least one matcher") {
		t.Fatalf("silence without matchers: %v", err)
	}
	if _, err := st.AddSilence(ctx, Silence{Matchers: silenceTestMatchers(t, "room=1"), EndsAt: now.Add(-time.Hour)}, now); err == nil {
		t.Fatal("silence ending before it starts accepted")
	}
	a, err := st.AddSilence(ctx, Silence{Matchers: silenceTestMatchers(t, `room="1", severity=~"yellow|green"`), EndsAt: now.Add(2 * time.Hour), Comment: "drill", CreatedBy: "ops"}, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.AddSilence(ctx, Silence{Matchers: silenceTestMatchers(t, `rule="x"`), EndsAt: now.Add(time.Hour)}, now)
	if err != nil {
		t.Fatal(err)
	}
	list, err := st.ListSilences(ctx, now, false)
	if err != nil || len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID || list[1].Comment != "drill" || list[1].CreatedBy != "ops" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if got := list[1].MatchersString(); got != `{room="1", severity=~"yellow|green"}` {
		t.Fatalf("matchers read back as %s", got)
	}
	if !list[1].ActiveAt(now) || !list[1].Matches(map[string]string{"room": "1", "severity": "green"}) || list[1].Matches(map[string]string{"room": "1", "severity": "red"}) {
		t.Fatal("silence matching")
	}
	if err := st.ExpireSilence(ctx, a.ID, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.ExpireSilence(ctx, a.ID, now.Add(time.Minute)); !errors.Is(err, ErrNoSilence) {
		t.Fatalf("expire twice: %v", err)
	}
	list, _ = st.ListSilences(ctx, now.Add(time.Minute), false)
	if len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("after expire: %+v", list)
	}
	all, _ := st.ListSilences(ctx, now.Add(3*time.Hour), true)
	if len(all) != 2 || all[1].ExpiredAt.IsZero() || all[1].ActiveAt(now.Add(2*time.Minute)) {
		t.Fatalf("all: %+v", all)
	}
}

func silenceTestMatchers(t *testing.T, s string) labels.Matchers {
	t.Helper()
	ms, err := labels.ParseList(s)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// Silences stored by earlier versions hold matchers as text: those read
// back with the same meaning, and one that no longer parses matches
// nothing but still lists (so it can be expired) instead of failing every
// read.
func TestSilencesStoredText(t *testing.T) {
	ctx := t.Context()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		id, stored string
		want       string // MatchersString
		matches    bool   // room 1, severity green
	}{
		{"old", `["room=1","severity=~yellow|green"]`, `{room="1", severity=~"yellow|green"}`, true},
		{"new", `["room=\"1\"","severity!=\"green\""]`, `{room="1", severity!="green"}`, false},
		{"bad", `["room=1","text=say \"hi\""]`, `unreadable: room=1, text=say "hi"`, false},
	} {
		if _, err := st.db.ExecContext(ctx, `INSERT INTO silences (id, matchers, starts_at, ends_at, comment, created_by, created_at)
			VALUES (?, ?, ?, ?, '', '', ?)`, tc.id, tc.stored, FormatTime(now), FormatTime(now.Add(time.Hour)), FormatTime(now)); err != nil {
			t.Fatal(err)
		}
		list, err := st.ListSilences(ctx, now, false)
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		var got *Silence
		for i := range list {
			if list[i].ID == tc.id {
				got = &list[i]
			}
		}
		if got == nil {
			t.Fatalf("%s: not listed", tc.id)
		}
		if got.MatchersString() != tc.want {
			t.Errorf("%s: read back as %s, want %s", tc.id, got.MatchersString(), tc.want)
		}
		if m := got.Matches(map[string]string{"room": "1", "severity": "green"}); m != tc.matches {
			t.Errorf("%s: Matches = %v, want %v", tc.id, m, tc.matches)
		}
	}
}
