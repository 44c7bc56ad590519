package daemon

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lookout/store"
)

// The silence commands' output and errors, on a real database.
func TestSilenceCommandOutput(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "lookout.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	if err := silenceCommand(ctx, st, "add", []string{"room=21452505", "severity=~yellow|green"}, 2*time.Hour, "launch", "ops", now, &out); err != nil {
		t.Fatal(err)
	}
	id := strings.Fields(out.String())[1]
	if !strings.Contains(out.String(), `{room="21452505", severity=~"yellow|green"} until 2026-01-01T14:00:00Z`) {
		t.Fatalf("add: %q", out.String())
	}
	out.Reset()
	if err := silenceCommand(ctx, st, "list", nil, 0, "", "", now, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), id) || !strings.Contains(out.String(), "active") || !strings.Contains(out.String(), "launch") {
		t.Fatalf("list: %q", out.String())
	}
	out.Reset()
	if err := silenceCommand(ctx, st, "expire", []string{id}, 0, "", "", now, &out); err != nil || !strings.Contains(out.String(), id+" expired") {
		t.Fatalf("expire: %v %q", err, out.String())
	}
	out.Reset()
	if err := silenceCommand(ctx, st, "list", nil, 0, "", "", now, &out); err != nil || !strings.Contains(out.String(), "no silences") {
		t.Fatalf("after expire: %v %q", err, out.String())
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
		err := silenceCommand(ctx, st, tc.sub, tc.args, tc.dur, "", "", now, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: %v, want %q", tc.sub, tc.args, err, tc.want)
		}
	}
}
