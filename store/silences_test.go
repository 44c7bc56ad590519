package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseMatcher(t *testing.T) {
	labels := map[string]string{"room": "21452505", "severity": "yellow", "rule": "crisis_burst"}
	for _, tc := range []struct {
		in      string
		matches bool
		bad     bool
	}{
		{"room=21452505", true, false},
		{`room="21452505"`, true, false},
		{"room!=21452505", false, false},
		{"severity=~yellow|green", true, false},
		{"severity!~yellow|green", false, false},
		{"rule=~crisis.*", true, false},
		{"rule=~crisis", false, false}, // anchored
		{"platform=", true, false},     // missing label reads as ""
		{"team=live", false, false},
		{"room", false, true},
		{"=x", false, true},
		{"rule=~(", false, true},
	} {
		m, err := ParseMatcher(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("ParseMatcher(%q) error %v", tc.in, err)
			continue
		}
		if err == nil && m.Matches(labels) != tc.matches {
			t.Errorf("%q matches = %v, want %v", tc.in, !tc.matches, tc.matches)
		}
	}
}

func FuzzParseMatcher(f *testing.F) {
	for _, s := range []string{"room=1", `a!="b"`, "x=~.*", "y!~(a|b)", "", "=", "a=~(", "é=1"} {
		f.Add(s, "value")
	}
	f.Fuzz(func(t *testing.T, s, v string) {
		m, err := ParseMatcher(s)
		if err != nil {
			return
		}
		_ = m.Matches(map[string]string{m.Name: v})
		// What parsed re-parses to the same matcher.
		m2, err := ParseMatcher(m.String())
		if err != nil || m2.Name != m.Name || m2.Op != m.Op {
			t.Fatalf("%q → %q does not round-trip: %v", s, m.String(), err)
		}
	})
}

func TestSilencesAddListExpire(t *testing.T) {
	ctx := t.Context()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if _, err := st.AddSilence(ctx, Silence{Matchers: []string{"room"}, EndsAt: now.Add(time.Hour)}, now); err == nil || !strings.Contains(err.Error(), "label=value") {
		t.Fatalf("bad matcher: %v", err)
	}
	if _, err := st.AddSilence(ctx, Silence{EndsAt: now.Add(time.Hour)}, now); err == nil {
		t.Fatal("silence without matchers accepted")
	}
	if _, err := st.AddSilence(ctx, Silence{Matchers: []string{"room=1"}, EndsAt: now.Add(-time.Hour)}, now); err == nil {
		t.Fatal("silence ending before it starts accepted")
	}
	a, err := st.AddSilence(ctx, Silence{Matchers: []string{"room=1", "severity=~yellow|green"}, EndsAt: now.Add(2 * time.Hour), Comment: "drill", CreatedBy: "ops"}, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.AddSilence(ctx, Silence{Matchers: []string{"rule=x"}, EndsAt: now.Add(time.Hour)}, now)
	if err != nil {
		t.Fatal(err)
	}
	list, err := st.ListSilences(ctx, now, false)
	if err != nil || len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID || list[1].Comment != "drill" || list[1].CreatedBy != "ops" {
		t.Fatalf("list: %+v %v", list, err)
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
