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
	if !strings.Contains(out.String(), "room=21452505, severity=~yellow|green until 2026-01-01T14:00:00Z") {
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
		{"add", []string{"room"}, time.Hour, "label=value"},
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
