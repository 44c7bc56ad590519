package alerts

import (
	"context"
	"testing"
	"time"

	"lookout/item"
)

func TestRules(t *testing.T) {
	const s = time.Second
	viewers := func(room string, from, to time.Duration, every time.Duration, v float64) []item.Item {
		var out []item.Item
		for at := from; at < to; at += every {
			out = append(out, metricItem(room, "viewers", engineTestStart.Add(at), v))
		}
		return out
	}
	cases := []struct {
		name  string
		rules string
		steps []engineStep
	}{
		{
			name: "negative_ratio fires red, then resolves",
			rules: `
  - name: neg
    kind: negative_ratio
    window: 2m
    min_volume: 20
    levels: { yellow: 0.3, red: 0.5 }
`,
			steps: []engineStep{
				{at: 60 * s, items: chats("1", 0, 60*s, 40, 24), want: []string{"firing/red"}},
				{at: 90 * s, want: nil},
				// The window slides past the storm; calm messages remain.
				{at: 240 * s, items: chats("1", 180*s, 60*s, 40, 0), want: []string{"resolved/red"}},
			},
		},
		{
			name: "negative_ratio below min_volume does not fire",
			rules: `
  - name: neg
    kind: negative_ratio
    window: 2m
    min_volume: 20
    levels: { yellow: 0.3 }
`,
			steps: []engineStep{
				{at: 60 * s, items: chats("1", 0, 60*s, 19, 19), want: nil},
				{at: 61 * s, items: chats("1", 60*s, s, 1, 1), want: []string{"firing/yellow"}},
			},
		},
		{
			name: "negative_ratio yellow at the lower level; other rooms stay quiet",
			rules: `
  - name: neg
    kind: negative_ratio
    window: 2m
    min_volume: 10
    levels: { yellow: 0.3, red: 0.5 }
`,
			steps: []engineStep{
				{at: 60 * s, items: append(chats("1", 0, 60*s, 20, 8), chats("2", 0, 60*s, 20, 1)...), want: []string{"firing/yellow"}},
			},
		},
		{
			name: "keyword_burst counts matches of a group",
			rules: `
  - name: crisis-burst
    kind: keyword_burst
    group: crisis
    window: 1m
    levels: { yellow: 5, red: 10 }
`,
			steps: []engineStep{
				{at: 30 * s, items: chats("1", 0, 30*s, 30, 4, crisisMatch), want: nil},
				{at: 40 * s, items: chats("1", 30*s, 10*s, 2, 2, crisisMatch), want: []string{"firing/yellow"}},
				{at: 50 * s, items: chats("1", 40*s, 10*s, 5, 5, crisisMatch), want: []string{"firing/red"}},
				{at: 200 * s, want: []string{"resolved/red"}},
			},
		},
		{
			name: "keyword_burst by category",
			rules: `
  - name: crisis-cat
    kind: keyword_burst
    category: crisis
    window: 1m
    levels: { red: 3 }
`,
			steps: []engineStep{
				{at: 30 * s, items: chats("1", 0, 30*s, 10, 3, crisisMatch), want: []string{"firing/red"}},
			},
		},
		{
			name: "volume_spike against previous windows, not during warm-up",
			rules: `
  - name: spike
    kind: volume_spike
    window: 1m
    min_volume: 10
    levels: { yellow: 3, red: 6 }
`,
			steps: []engineStep{
				// First minute: no history yet, 100 items are no spike.
				{at: 59 * s, items: chats("1", 0, 59*s, 100, 0), want: nil},
				{at: 4*60*s + 59*s, items: append(append(chats("1", 60*s, 60*s, 10, 0), chats("1", 120*s, 60*s, 10, 0)...),
					append(chats("1", 180*s, 60*s, 10, 0), chats("1", 240*s, 59*s, 10, 0)...)...), want: nil},
				{at: 5*60*s + 59*s, items: chats("1", 300*s, 59*s, 40, 0), want: []string{"firing/yellow"}},
				{at: 6*60*s + 30*s, items: chats("1", 360*s, 30*s, 70, 0), want: []string{"firing/red"}},
			},
		},
		{
			name: "metric_threshold below, escalates yellow to red, resolves",
			rules: `
  - name: viewers-low
    kind: metric_threshold
    metric: viewers
    op: below
    levels: { yellow: 500, red: 200 }
`,
			steps: []engineStep{
				{at: 1 * s, items: []item.Item{metricItem("1", "viewers", engineTestStart, 1000)}, want: nil},
				{at: 11 * s, items: []item.Item{metricItem("1", "viewers", engineTestStart.Add(10*s), 400)}, want: []string{"firing/yellow"}},
				{at: 21 * s, items: []item.Item{metricItem("1", "viewers", engineTestStart.Add(20*s), 150)}, want: []string{"firing/red"}},
				{at: 31 * s, items: []item.Item{metricItem("1", "viewers", engineTestStart.Add(30*s), 900)}, want: []string{"resolved/red"}},
			},
		},
		{
			name: "metric_threshold above ignores other metrics",
			rules: `
  - name: complaints
    kind: metric_threshold
    metric: complaint
    levels: { red: 0.05 }
`,
			steps: []engineStep{
				{at: 1 * s, items: []item.Item{metricItem("1", "viewers", engineTestStart, 1e6)}, want: nil},
				{at: 2 * s, items: []item.Item{metricItem("1", "complaint", engineTestStart.Add(s), 0.08)}, want: []string{"firing/red"}},
			},
		},
		{
			name: "metric_drop compares window means",
			rules: `
  - name: viewers-drop
    kind: metric_drop
    metric: viewers
    window: 1m
    levels: { yellow: 0.3, red: 0.5 }
`,
			steps: []engineStep{
				{at: 60 * s, items: viewers("1", 0, 60*s, 5*s, 1000), want: nil}, // no previous window yet
				{at: 120 * s, items: viewers("1", 60*s, 120*s, 5*s, 950), want: nil},
				{at: 180 * s, items: viewers("1", 120*s, 180*s, 5*s, 600), want: []string{"firing/yellow"}},
				{at: 240 * s, items: viewers("1", 180*s, 240*s, 5*s, 250), want: []string{"firing/red"}},
				{at: 300 * s, items: viewers("1", 240*s, 300*s, 5*s, 260), want: []string{"resolved/red"}},
			},
		},
		{
			name: "source_broken fires at its fixed severity while the report says 1, resolves on 0",
			rules: `
  - name: broken
    kind: source_broken
    severity: red
`,
			steps: []engineStep{
				{at: 1 * s, items: []item.Item{metricItem("1", "viewers", engineTestStart, 1)}, want: nil},
				{at: 2 * s, items: []item.Item{healthItem(engineTestStart.Add(s), 1)}, want: []string{"firing/red"}},
				{at: 3 * s, items: []item.Item{healthItem(engineTestStart.Add(2*s), 1)}, want: nil},
				{at: 4 * s, items: []item.Item{healthItem(engineTestStart.Add(3*s), 0)}, want: []string{"resolved/red"}},
			},
		},
		{
			name: "absent ignores health reports: a broken source that says so is still silent",
			rules: `
  - name: quiet
    kind: absent
    window: 1m
`,
			steps: []engineStep{
				{at: 1 * s, items: chats("1", 0, s, 3, 0), want: nil},
				{at: 90 * s, items: []item.Item{healthItem(engineTestStart.Add(80*s), 1)}, want: []string{"firing/yellow"}},
				// Reports stop too: no absent alert about the reports.
				{at: 400 * s, want: nil},
			},
		},
		{
			name: "absent stays quiet while the stream is off air, and watches again once it is live",
			rules: `
  - name: quiet
    kind: absent
    window: 1m
`,
			steps: []engineStep{
				{at: 1 * s, items: chats("1", 0, s, 3, 0), want: nil},
				// The broadcast ends: no alert however long the room is silent.
				{at: 10 * s, items: []item.Item{metricItem("1", item.MetricLiveStatus, engineTestStart.Add(10*s), 0)}, want: nil},
				{at: 600 * s, want: nil},
				// A late "live" from before the end changes nothing.
				{at: 601 * s, items: []item.Item{metricItem("1", item.MetricLiveStatus, engineTestStart.Add(5*s), 1)}, want: nil},
				{at: 900 * s, want: nil},
				// Live again: silence counts from the start of the stream.
				{at: 1000 * s, items: []item.Item{metricItem("1", item.MetricLiveStatus, engineTestStart.Add(1000*s), 1)}, want: nil},
				{at: 1050 * s, want: nil},
				{at: 1070 * s, want: []string{"firing/yellow"}},
				// It ends while the alert fires: the alert resolves.
				{at: 1080 * s, items: []item.Item{metricItem("1", item.MetricLiveStatus, engineTestStart.Add(1080*s), 0)}, want: []string{"resolved/yellow"}},
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

// An ended stream quiets the absent rule for its own room only, and an
// alert the end resolves says why.
func TestAbsentOffAirIsPerRoom(t *testing.T) {
	const s = time.Second
	e, rec := engineTestEngine(t, `
  - name: quiet
    kind: absent
    window: 1m
`)
	evs := engineRun(t, e, rec, []engineStep{
		{at: 1 * s, items: append(chats("1", 0, s, 3, 0), chats("2", 0, s, 3, 0)...), want: nil},
		{at: 10 * s, items: []item.Item{metricItem("2", item.MetricLiveStatus, engineTestStart.Add(10*s), 0)}, want: nil},
		{at: 90 * s, want: []string{"firing/yellow"}},
		{at: 100 * s, items: []item.Item{metricItem("1", item.MetricLiveStatus, engineTestStart.Add(100*s), 0)}, want: []string{"resolved/yellow"}},
	})
	if evs[0].Room != "1" {
		t.Errorf("room %q fired, want room 1 (room 2's stream had ended)", evs[0].Room)
	}
	if want := "Resolved: The stream ended (live_status 0) in room 1 (live)"; evs[1].Summary != want {
		t.Errorf("summary %q, want %q", evs[1].Summary, want)
	}
}

func TestMetricDropNumbersAndSummary(t *testing.T) {
	e, rec := engineTestEngine(t, `
  - name: viewers-drop
    kind: metric_drop
    metric: viewers
    window: 1m
    levels: { yellow: 0.3, red: 0.5 }
`)
	for at := time.Duration(0); at < 2*time.Minute; at += 10 * time.Second {
		v := 1200.0
		if at >= time.Minute {
			v = 540
		}
		it := metricItem("77", "viewers", engineTestStart.Add(at), v)
		e.Observe(&it)
	}
	if err := e.Evaluate(context.Background(), engineTestStart.Add(2*time.Minute-time.Second)); err != nil {
		t.Fatal(err)
	}
	evs := rec.take()
	if len(evs) != 1 {
		t.Fatalf("got %s", engineDescribe(evs))
	}
	ev := evs[0]
	if ev.Numbers["previous"] != 1200 || ev.Numbers["current"] != 540 || ev.Numbers["drop"] < 0.549 || ev.Numbers["drop"] > 0.551 {
		t.Errorf("numbers %v", ev.Numbers)
	}
	if want := "viewers fell 55% (mean 1200 → 540) against the previous 1m in room 77 (live)"; ev.Summary != want {
		t.Errorf("summary %q, want %q", ev.Summary, want)
	}
	if ev.Severity != Red {
		t.Errorf("severity %s", ev.Severity)
	}
}

func TestRuleMatchFilters(t *testing.T) {
	e, rec := engineTestEngine(t, `
  - name: own-brand-only
    kind: negative_ratio
    match: { brand: own, kind: chat, platform: bilibili }
    window: 1m
    min_volume: 5
    levels: { red: 0.5 }
  - name: other-source
    kind: negative_ratio
    match: { source: elsewhere }
    window: 1m
    min_volume: 5
    levels: { red: 0.5 }
`)
	items := chats("1", 0, 10*time.Second, 10, 10)
	other := chats("2", 0, 10*time.Second, 10, 10)
	for i := range other {
		other[i].Labels = map[string]string{"brand": "rival"}
	}
	engineRun(t, e, rec, []engineStep{{at: 10 * time.Second, items: append(items, other...), want: []string{"firing/red"}}})
}

func TestLateItemsAreCountedNotWindowed(t *testing.T) {
	e, rec := engineTestEngine(t, `
  - name: neg
    kind: negative_ratio
    window: 1m
    min_volume: 5
    levels: { red: 0.5 }
`)
	fresh := chats("1", 10*time.Minute, 10*time.Second, 10, 0)
	for i := range fresh {
		e.Observe(&fresh[i])
	}
	late := chats("1", 0, 10*time.Second, 30, 30)
	for i := range late {
		e.Observe(&late[i])
	}
	if err := e.Evaluate(context.Background(), engineTestStart.Add(10*time.Minute+10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if evs := rec.take(); len(evs) != 0 {
		t.Fatalf("late items changed the current window: %s", engineDescribe(evs))
	}
}

// healthItem is a source's item.MetricSourceBroken report: no room.
func healthItem(at time.Time, v float64) item.Item {
	it := metricItem("", item.MetricSourceBroken, at, v)
	it.Labels = map[string]string{"reason": "shape_drift", "detail": "https://shop.example/reviews yielded nothing"}
	return it
}

func TestSourceBrokenSummaryAndLabels(t *testing.T) {
	e, rec := engineTestEngine(t, `
  - name: broken
    kind: source_broken
`)
	evs := engineRun(t, e, rec, []engineStep{
		{at: time.Second, items: []item.Item{healthItem(engineTestStart, 1)}, want: []string{"firing/yellow"}},
	})
	ev := evs[0]
	want := "Source live is broken (shape_drift): https://shop.example/reviews yielded nothing"
	if ev.Summary != want || ev.RuleKind != KindSourceBroken || ev.Labels["reason"] != "shape_drift" || ev.Room != "" {
		t.Errorf("event: summary %q kind %s labels %v room %q", ev.Summary, ev.RuleKind, ev.Labels, ev.Room)
	}
	if _, ok := ev.Numbers["threshold"]; ok {
		t.Errorf("a yes/no alert shows a threshold: %v", ev.Numbers)
	}
}
