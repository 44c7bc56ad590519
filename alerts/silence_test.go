package alerts

import (
	"strings"
	"testing"
	"time"

	"lookout/internal/labels"

	"lookout/store"
)

// A silence mutes the firing alerts its matchers select, while it lasts.
func TestSilenceMutes(t *testing.T) {
	st, _ := deliveryTestStore(t)
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ms, err := labels.ParseAll([]string{"room=21452505", "severity=~yellow|green"})
	if err != nil {
		t.Fatal(err)
	}
	sil, err := st.AddSilence(ctx, store.Silence{Matchers: ms, EndsAt: now.Add(2 * time.Hour), Comment: "launch", CreatedBy: "ops"}, now)
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := st.ListSilences(ctx, now, false)
	ev := deliveryTestEvent("x", "21452505", 2, Yellow, Firing)
	if silencedBy(ss, EventLabels(&ev), now) != sil.ID {
		t.Fatal("yellow alert in the room not silenced")
	}
	ev.Severity = Red
	if silencedBy(ss, EventLabels(&ev), now) != "" {
		t.Fatal("red alert silenced by a yellow|green silence")
	}
	if silencedBy(ss, EventLabels(&ev), now.Add(3*time.Hour)) != "" {
		t.Fatal("silence active after its end")
	}
	if err := st.ExpireSilence(ctx, sil.ID, now); err != nil {
		t.Fatal(err)
	}
	ev.Severity = Yellow
	ss, _ = st.ListSilences(ctx, now, false)
	if silencedBy(ss, EventLabels(&ev), now) != "" {
		t.Fatal("an expired silence still mutes")
	}
}

// Matchers, one per argument or several in braces, in Alertmanager's
// syntax, as `lookout silence add` takes them: what is stored matches
// alerts as the matchers say.
func TestSilenceAddMatchers(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	neg := deliveryTestEvent("negative_share", "123", 2, Yellow, Firing)
	negRed := deliveryTestEvent("negative_share", "123", 2, Red, Firing)
	negOther := deliveryTestEvent("negative_share", "456", 2, Yellow, Firing)
	burst := deliveryTestEvent("crisis_burst", "123", 2, Yellow, Firing)
	for _, tc := range []struct {
		args  []string
		shown string // as add prints it
		muted []*Event
		kept  []*Event
	}{
		{
			args:  []string{`rule=~"neg.*"`, "room=123"},
			shown: `{rule=~"neg.*", room="123"}`,
			muted: []*Event{&neg, &negRed}, kept: []*Event{&negOther, &burst},
		},
		{
			args:  []string{`{rule=~"neg.*", severity!="red"}`},
			shown: `{rule=~"neg.*", severity!="red"}`,
			muted: []*Event{&neg, &negOther}, kept: []*Event{&negRed, &burst},
		},
		{
			args:  []string{`rule!~"neg"`, "room=123"}, // anchored: neg is not negative_share
			shown: `{rule!~"neg", room="123"}`,
			muted: []*Event{&neg, &negRed, &burst}, kept: []*Event{&negOther},
		},
		{
			args:  []string{`team = "live"`, `platform=~"bili.*"`, `absent=""`},
			shown: `{team="live", platform=~"bili.*", absent=""}`,
			muted: []*Event{&neg, &negRed, &negOther, &burst},
		},
		{
			args:  []string{`team!="live"`},
			shown: `{team!="live"}`,
			kept:  []*Event{&neg, &negRed, &negOther, &burst},
		},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			st, _ := deliveryTestStore(t)
			ctx := t.Context()
			ms, err := labels.ParseAll(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			sil, err := st.AddSilence(ctx, store.Silence{Matchers: ms, EndsAt: now.Add(time.Hour)}, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := sil.MatchersString(); got != tc.shown {
				t.Fatalf("stored matchers %s, want %s", got, tc.shown)
			}
			ss, err := st.ListSilences(ctx, now, false)
			if err != nil || len(ss) != 1 {
				t.Fatalf("stored: %+v %v", ss, err)
			}
			for _, ev := range tc.muted {
				if silencedBy(ss, EventLabels(ev), now) == "" {
					t.Errorf("%s in room %s (%s) not silenced", ev.Rule, ev.Room, ev.Severity)
				}
			}
			for _, ev := range tc.kept {
				if silencedBy(ss, EventLabels(ev), now) != "" {
					t.Errorf("%s in room %s (%s) silenced", ev.Rule, ev.Room, ev.Severity)
				}
			}
		})
	}
}
