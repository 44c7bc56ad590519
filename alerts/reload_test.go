package alerts

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"lookout/item"
)

const reloadRules = `
  - name: crisis
    kind: keyword_burst
    category: crisis
    window: 1m
    levels: { yellow: 3, red: 5 }
  - name: service
    kind: keyword_burst
    group: service
    window: 1m
    levels: { yellow: 3 }
  - name: gone
    kind: keyword_burst
    category: crisis
    window: 1m
    levels: { yellow: 2 }
`

// A reload keeps the windows and open alerts of unchanged rules (even when
// they move in the file), keeps a changed rule's open alert waiting for a
// verdict, resolves a removed rule's alert at the next evaluation, and
// rejects invalid rules, keeping the old ones.
func TestEngineReload(t *testing.T) {
	e, rec := engineTestEngine(t, reloadRules)
	at := func(d time.Duration) time.Time { return engineTestStart.Add(d) }
	eval := func(d time.Duration) []Event {
		t.Helper()
		if err := e.Evaluate(context.Background(), at(d)); err != nil {
			t.Fatal(err)
		}
		return rec.take()
	}
	observe := func(d time.Duration, n int, text string, groups ...item.Match) {
		for i := range n {
			it := chatItem("r1", at(d+time.Duration(i)*time.Millisecond), item.Negative, text, groups...)
			e.Observe(&it)
		}
	}
	service := item.Match{Group: "service", Category: "service", Severity: "yellow", Terms: []string{"客服"}}
	observe(time.Second, 3, "退款", crisisMatch)
	observe(time.Second, 3, "客服", service)
	before := map[string]Event{}
	for _, ev := range eval(10 * time.Second) {
		if ev.State != Firing {
			t.Fatalf("before the reload: %s %s, want every rule firing", ev.Rule, ev.State)
		}
		before[ev.Rule] = ev
	}
	if len(before) != 3 || before["crisis"].Severity != Yellow {
		t.Fatalf("before the reload: %s, want crisis (yellow), service and gone firing", engineDescribe(slices.Collect(mapValues(before))))
	}

	// Invalid: rejected with rule and line, nothing changes.
	bad := engineTestConfig(t, reloadRules+"  - name: broken\n    kind: keyword_burst\n    group: service\n    window: 1m\n    levels: { yellow: 1 }\n    summary: \"{{ .Rule \"\n")
	if _, err := e.Reload(bad, at(11*time.Second)); err == nil || !strings.Contains(err.Error(), `rule "broken" (test.yaml:`) {
		t.Fatalf("invalid rule: err = %v, want it rejected naming the rule and its line", err)
	}
	if got := e.Rules(); !slices.Equal(got, []string{"crisis", "service", "gone"}) {
		t.Fatalf("rules after a rejected reload: %v", got)
	}

	// A new rule in front (every index moves), crisis unchanged, service
	// changed (longer window), gone removed.
	next := engineTestConfig(t, `
  - name: fresh
    kind: keyword_burst
    group: service
    window: 1m
    levels: { red: 100 }
  - name: crisis
    kind: keyword_burst
    category: crisis
    window: 1m
    levels: { yellow: 3, red: 5 }
  - name: service
    kind: keyword_burst
    group: service
    window: 2m
    levels: { yellow: 3 }
`)
	res, err := e.Reload(next, at(12*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := [4][]string{res.Kept, res.Added, res.Changed, res.Removed}; !slices.Equal(got[0], []string{"crisis"}) ||
		!slices.Equal(got[1], []string{"fresh"}) || !slices.Equal(got[2], []string{"service"}) || !slices.Equal(got[3], []string{"gone"}) || res.Resolved != 1 {
		t.Fatalf("reload result %+v", res)
	}

	// Two more crisis messages: with its window kept, crisis counts 5
	// and escalates to red under the same alert; the removed rule's
	// alert resolves; the changed rule's alert waits for a verdict.
	observe(13*time.Second, 2, "假货", crisisMatch)
	evs := eval(14 * time.Second)
	if len(evs) != 2 {
		t.Fatalf("after the reload: %d events, want gone resolved and crisis escalated:\n%s", len(evs), engineDescribe(evs))
	}
	gone, crisis := evs[0], evs[1]
	if gone.Rule != "gone" || gone.State != Resolved || gone.AlertID != before["gone"].AlertID || gone.Seq != before["gone"].Seq+1 ||
		!strings.Contains(gone.Summary, "removed from the config") {
		t.Errorf("removed rule's event: %s", engineDescribe([]Event{gone}))
	}
	if crisis.Rule != "crisis" || crisis.State != Firing || crisis.Severity != Red || crisis.AlertID != before["crisis"].AlertID {
		t.Errorf("kept rule's event: %s, want the alert from before the reload escalated to red", engineDescribe([]Event{crisis}))
	}
	// The changed rule's alert is still open: it resolves (under its id)
	// once its new window has judged the room quiet.
	var resolved *Event
	for d := 15 * time.Second; d < 10*time.Minute && resolved == nil; d += 5 * time.Second {
		for _, ev := range eval(d) {
			if ev.Rule == "service" {
				if ev.State != Resolved || ev.AlertID != before["service"].AlertID {
					t.Fatalf("changed rule: %s, want its alert from before the reload resolved", engineDescribe([]Event{ev}))
				}
				resolved = &ev
			}
		}
	}
	if resolved == nil {
		t.Fatal("the changed rule's alert never resolved")
	}
	if resolved.At.Before(at(12*time.Second + 2*time.Minute)) {
		t.Errorf("changed rule's alert resolved at %v, before its new 2m window had refilled", resolved.At.Sub(engineTestStart))
	}
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}
