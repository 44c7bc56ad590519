package alerts

import (
	"testing"
	"time"

	"lookout/item"
)

// complaintAt is one sample of the complaint-rate metric.
func complaintAt(at time.Duration, v float64) []item.Item {
	return []item.Item{metricItem("1", "complaint", engineTestStart.Add(at), v)}
}

func TestLifecycle(t *testing.T) {
	const s = time.Second
	cases := []struct {
		name  string
		rules string
		steps []engineStep
	}{
		{
			name: "for: pending first, firing once the condition held long enough",
			rules: `
  - name: c
    kind: metric_threshold
    metric: complaint
    for: 30s
    levels: { yellow: 0.05 }
`,
			steps: []engineStep{
				{at: 0, items: complaintAt(0, 0.1), want: []string{"pending/yellow"}},
				{at: 20 * s, items: complaintAt(20*s, 0.1), want: nil},
				{at: 30 * s, items: complaintAt(30*s, 0.1), want: []string{"firing/yellow"}},
			},
		},
		{
			name: "for: a blip shorter than for clears without firing",
			rules: `
  - name: c
    kind: metric_threshold
    metric: complaint
    for: 30s
    hysteresis: 0
    levels: { yellow: 0.05 }
`,
			steps: []engineStep{
				{at: 0, items: complaintAt(0, 0.1), want: []string{"pending/yellow"}},
				{at: 10 * s, items: complaintAt(10*s, 0.01), want: []string{"inactive/yellow"}},
				{at: 40 * s, items: complaintAt(40*s, 0.01), want: nil},
			},
		},
		{
			name: "keep_firing_for holds the alert after the condition clears",
			rules: `
  - name: c
    kind: metric_threshold
    metric: complaint
    keep_firing_for: 1m
    hysteresis: 0
    levels: { yellow: 0.05 }
`,
			steps: []engineStep{
				{at: 0, items: complaintAt(0, 0.1), want: []string{"firing/yellow"}},
				{at: 10 * s, items: complaintAt(10*s, 0.01), want: nil},
				{at: 50 * s, items: complaintAt(50*s, 0.01), want: nil},
				{at: 60 * s, items: complaintAt(60*s, 0.01), want: []string{"resolved/yellow"}},
			},
		},
		{
			name: "cooldown mutes a new alert right after a resolve",
			rules: `
  - name: c
    kind: metric_threshold
    metric: complaint
    cooldown: 5m
    hysteresis: 0
    levels: { yellow: 0.05 }
`,
			steps: []engineStep{
				{at: 0, items: complaintAt(0, 0.1), want: []string{"firing/yellow"}},
				{at: 10 * s, items: complaintAt(10*s, 0.01), want: []string{"resolved/yellow"}},
				{at: 20 * s, items: complaintAt(20*s, 0.2), want: nil},
				{at: 4 * time.Minute, items: complaintAt(4*time.Minute, 0.2), want: nil},
				{at: 5*time.Minute + 10*s, items: complaintAt(5*time.Minute+10*s, 0.2), want: []string{"firing/yellow"}},
			},
		},
		{
			name: "repeat_interval re-notifies a still-firing alert",
			rules: `
  - name: c
    kind: metric_threshold
    metric: complaint
    repeat_interval: 1m
    levels: { yellow: 0.05 }
`,
			steps: []engineStep{
				{at: 0, items: complaintAt(0, 0.1), want: []string{"firing/yellow"}},
				{at: 30 * s, items: complaintAt(30*s, 0.1), want: nil},
				{at: 60 * s, items: complaintAt(60*s, 0.1), want: []string{"firing/yellow"}},
				{at: 90 * s, items: complaintAt(90*s, 0.1), want: nil},
				{at: 120 * s, items: complaintAt(120*s, 0.1), want: []string{"firing/yellow"}},
			},
		},
		{
			name: "hysteresis: hovering just under the level does not flap",
			rules: `
  - name: c
    kind: metric_threshold
    metric: complaint
    hysteresis: 0.2
    levels: { yellow: 0.05 }
`,
			steps: []engineStep{
				{at: 0, items: complaintAt(0, 0.051), want: []string{"firing/yellow"}},
				{at: 10 * s, items: complaintAt(10*s, 0.049), want: nil},
				{at: 20 * s, items: complaintAt(20*s, 0.052), want: nil},
				{at: 30 * s, items: complaintAt(30*s, 0.041), want: nil},
				{at: 40 * s, items: complaintAt(40*s, 0.039), want: []string{"resolved/yellow"}},
			},
		},
		{
			name: "without hysteresis the same series flaps",
			rules: `
  - name: c
    kind: metric_threshold
    metric: complaint
    hysteresis: 0
    levels: { yellow: 0.05 }
`,
			steps: []engineStep{
				{at: 0, items: complaintAt(0, 0.051), want: []string{"firing/yellow"}},
				{at: 10 * s, items: complaintAt(10*s, 0.049), want: []string{"resolved/yellow"}},
				{at: 20 * s, items: complaintAt(20*s, 0.052), want: []string{"firing/yellow"}},
			},
		},
		{
			name: "resolve_after needs consecutive clear evaluations",
			rules: `
  - name: c
    kind: metric_threshold
    metric: complaint
    hysteresis: 0
    resolve_after: 3
    levels: { yellow: 0.05 }
`,
			steps: []engineStep{
				{at: 0, items: complaintAt(0, 0.1), want: []string{"firing/yellow"}},
				{at: 10 * s, items: complaintAt(10*s, 0.01), want: nil},
				{at: 20 * s, items: complaintAt(20*s, 0.01), want: nil},
				{at: 30 * s, items: complaintAt(30*s, 0.1), want: nil},
				{at: 40 * s, items: complaintAt(40*s, 0.01), want: nil},
				{at: 50 * s, items: complaintAt(50*s, 0.01), want: nil},
				{at: 60 * s, items: complaintAt(60*s, 0.01), want: []string{"resolved/yellow"}},
			},
		},
		{
			name: "escalation yellow to red is an event; falling back to yellow is not",
			rules: `
  - name: c
    kind: metric_threshold
    metric: complaint
    levels: { yellow: 0.05, red: 0.2 }
`,
			steps: []engineStep{
				{at: 0, items: complaintAt(0, 0.1), want: []string{"firing/yellow"}},
				{at: 10 * s, items: complaintAt(10*s, 0.3), want: []string{"firing/red"}},
				{at: 20 * s, items: complaintAt(20*s, 0.1), want: nil},
				{at: 30 * s, items: complaintAt(30*s, 0.3), want: nil},
				{at: 40 * s, items: complaintAt(40*s, 0.0), want: []string{"resolved/red"}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, rec := engineTestEngine(t, tc.rules)
			engineRun(t, e, rec, tc.steps)
		})
	}
}

func TestLifecycleIDsAndSequence(t *testing.T) {
	e, rec := engineTestEngine(t, `
  - name: c
    kind: metric_threshold
    metric: complaint
    for: 10s
    repeat_interval: 1m
    hysteresis: 0
    levels: { yellow: 0.05, red: 0.2 }
`)
	const s = time.Second
	evs := engineRun(t, e, rec, []engineStep{
		{at: 0, items: complaintAt(0, 0.1), want: []string{"pending/yellow"}},
		{at: 10 * s, items: complaintAt(10*s, 0.1), want: []string{"firing/yellow"}},
		{at: 20 * s, items: complaintAt(20*s, 0.5), want: []string{"firing/red"}},
		{at: 80 * s, items: complaintAt(80*s, 0.5), want: []string{"firing/red"}},
		{at: 90 * s, items: complaintAt(90*s, 0.0), want: []string{"resolved/red"}},
		{at: 100 * s, items: complaintAt(100*s, 0.1), want: []string{"pending/yellow"}},
	})
	first := evs[0].AlertID
	for i, ev := range evs[:5] {
		if ev.AlertID != first || ev.Seq != i+1 || ev.ID != first+"/"+string(rune('1'+i)) {
			t.Errorf("event %d: AlertID %s Seq %d ID %s; want one alert numbered 1..5", i, ev.AlertID, ev.Seq, ev.ID)
		}
		if !ev.StartedAt.Equal(engineTestStart) {
			t.Errorf("event %d: StartedAt %v", i, ev.StartedAt)
		}
	}
	wantPrev := []State{Inactive, Pending, Firing, Firing, Firing}
	for i, p := range wantPrev {
		if evs[i].Prev != p {
			t.Errorf("event %d: Prev %s, want %s", i, evs[i].Prev, p)
		}
	}
	if evs[4].ResolvedAt.IsZero() || evs[4].Notifies() != true || evs[0].Notifies() {
		t.Errorf("resolved event: ResolvedAt %v; pending must not notify", evs[4].ResolvedAt)
	}
	if evs[5].AlertID == first || evs[5].Seq != 1 {
		t.Errorf("a new alert after the resolve must have a new AlertID and start at Seq 1: %s", engineDescribe(evs[5:]))
	}
}
