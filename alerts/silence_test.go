package alerts

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSilenceCommand(t *testing.T) {
	st, _ := deliveryTestStore(t)
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	if err := SilenceCommand(ctx, st, "add", []string{"room=21452505", "severity=~yellow|green"}, 2*time.Hour, "launch", "ops", now, &out); err != nil {
		t.Fatal(err)
	}
	id := strings.Fields(out.String())[1]
	if !strings.Contains(out.String(), `{room="21452505", severity=~"yellow|green"} until 2026-01-01T14:00:00Z`) {
		t.Fatalf("add: %q", out.String())
	}
	out.Reset()
	if err := SilenceCommand(ctx, st, "list", nil, 0, "", "", now, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), id) || !strings.Contains(out.String(), "active") || !strings.Contains(out.String(), "launch") {
		t.Fatalf("list: %q", out.String())
	}
	// The silence mutes a matching firing alert.
	ss, _ := st.ListSilences(ctx, now, false)
	ev := deliveryTestEvent("x", "21452505", 2, Yellow, Firing)
	if silencedBy(ss, EventLabels(&ev), now) != id {
		t.Fatal("yellow alert in the room not silenced")
	}
	ev.Severity = Red
	if silencedBy(ss, EventLabels(&ev), now) != "" {
		t.Fatal("red alert silenced by a yellow|green silence")
	}
	if silencedBy(ss, EventLabels(&ev), now.Add(3*time.Hour)) != "" {
		t.Fatal("silence active after its end")
	}
	out.Reset()
	if err := SilenceCommand(ctx, st, "expire", []string{id}, 0, "", "", now, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	_ = SilenceCommand(ctx, st, "list", nil, 0, "", "", now, &out)
	if !strings.Contains(out.String(), "no silences") {
		t.Fatalf("after expire: %q", out.String())
	}
	for _, tc := range []struct {
		sub  string
		args []string
		dur  time.Duration
		want string
	}{
		{"add", nil, time.Hour, "at least one matcher"},
		{"add", []string{"room"}, time.Hour, `silence add: matcher "room": want an operator`},
		{"add", []string{"room=1", `rule=~"("`}, time.Hour, `silence add: matcher "rule=~\"(\"": bad regular expression`},
		{"add", []string{`room="1`}, time.Hour, "no closing quote"},
		{"add", []string{"{}"}, time.Hour, "empty matcher"},
		{"add", []string{"room=1"}, 0, "--for"},
		{"expire", []string{"nope"}, 0, "no such active silence"},
		{"mute", nil, 0, "unknown subcommand"},
	} {
		err := SilenceCommand(ctx, st, tc.sub, tc.args, tc.dur, "", "", now, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: %v, want %q", tc.sub, tc.args, err, tc.want)
		}
	}
}

// `lookout silence add` takes each argument as a matcher, or as several in
// braces, in Alertmanager's syntax; what it stores matches alerts as the
// matchers say.
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
			var out bytes.Buffer
			if err := SilenceCommand(ctx, st, "add", tc.args, time.Hour, "", "", now, &out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "added: "+tc.shown+" until") {
				t.Fatalf("add printed %q, want the matchers %s", out.String(), tc.shown)
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
