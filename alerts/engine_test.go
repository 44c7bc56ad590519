package alerts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lookout/config"
	"lookout/item"
)

// engineRecorder is the tests' Sink: it records what the engine publishes.
type engineRecorder struct {
	mu     sync.Mutex
	events []Event
	fail   error // when set, Publish refuses
}

func (r *engineRecorder) Publish(_ context.Context, ev Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, ev)
	return nil
}

func (r *engineRecorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// engineTestStart is a fixed, bucket-aligned start so tests are exact.
var engineTestStart = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const engineTestHeader = `
keywords:
  crisis: { category: crisis, severity: red, any: [退款, 假货] }
  service: { category: service, any: [客服] }
rules:
`

func engineTestConfig(t testing.TB, rules string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(engineTestHeader+rules), "test.yaml")
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	return cfg
}

func engineTestEngine(t testing.TB, rules string) (*Engine, *engineRecorder) {
	t.Helper()
	e, rec, _ := engineTestEngineClock(t, rules)
	return e, rec
}

// engineTestClock is the engine's clock in tests: it stays where the test
// sets it.
type engineTestClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *engineTestClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *engineTestClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func engineTestEngineClock(t testing.TB, rules string) (*Engine, *engineRecorder, *engineTestClock) {
	t.Helper()
	rec := &engineRecorder{}
	clk := &engineTestClock{t: engineTestStart}
	e, err := NewEngine(engineTestConfig(t, rules), rec, EngineOptions{Now: clk.Now})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e, rec, clk
}

func chatItem(room string, at time.Time, label item.Label, text string, groups ...item.Match) item.Item {
	v := 0.0
	switch label {
	case item.Negative:
		v = -0.8
	case item.Positive:
		v = 0.7
	}
	return item.Item{Source: "live", Platform: "bilibili", Kind: item.KindChat, Room: room, TS: at,
		Author: "u-" + text, Text: text, Labels: map[string]string{"brand": "own"},
		Score: item.Score{Scored: true, Label: label, Value: v, Groups: groups}}
}

func metricItem(room, metric string, at time.Time, v float64) item.Item {
	return item.Item{Source: "live", Platform: "bilibili", Kind: item.KindMetric, Room: room, TS: at, Metric: metric, Value: v}
}

var crisisMatch = item.Match{Group: "crisis", Category: "crisis", Severity: "red", Terms: []string{"退款"}}

// engineStep feeds items then evaluates at `at` and checks the events.
type engineStep struct {
	at    time.Duration // since engineTestStart
	items []item.Item
	want  []string // "state/severity" of each event, in order
}

func engineRun(t *testing.T, e *Engine, rec *engineRecorder, steps []engineStep) []Event {
	t.Helper()
	var all []Event
	for i, st := range steps {
		for j := range st.items {
			e.Observe(&st.items[j])
		}
		if err := e.Evaluate(context.Background(), engineTestStart.Add(st.at)); err != nil {
			t.Fatalf("step %d: Evaluate: %v", i, err)
		}
		got := rec.take()
		var gotS []string
		for _, ev := range got {
			gotS = append(gotS, string(ev.State)+"/"+string(ev.Severity))
		}
		if strings.Join(gotS, ",") != strings.Join(st.want, ",") {
			t.Fatalf("step %d (at %v): events %v, want %v\n%s", i, st.at, gotS, st.want, engineDescribe(got))
		}
		all = append(all, got...)
	}
	return all
}

func engineDescribe(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %s %s %s value=%v thr=%v %s\n", ev.ID, ev.State, ev.Severity, ev.Value, ev.Threshold, ev.Summary)
	}
	return b.String()
}

// chats makes n chat items spread over [from, from+span), neg of them
// negative.
func chats(room string, from time.Duration, span time.Duration, n, neg int, groups ...item.Match) []item.Item {
	out := make([]item.Item, 0, n)
	for i := 0; i < n; i++ {
		at := engineTestStart.Add(from + span*time.Duration(i)/time.Duration(n))
		label := item.Positive
		text := fmt.Sprintf("好看 %d", i)
		var g []item.Match
		if i < neg {
			label = item.Negative
			text = fmt.Sprintf("退款 假货 %d", i)
			g = groups
		}
		out = append(out, chatItem(room, at, label, text, g...))
	}
	return out
}

func TestNewEngineRejectsBadRulesNamingRuleAndLine(t *testing.T) {
	cfg := engineTestConfig(t, `
  - name: fine
    kind: negative_ratio
    window: 2m
    min_volume: 10
    levels: { yellow: 0.3 }
`)
	cfg.Rules = append(cfg.Rules, config.RuleConfig{Name: "broken-drop", Kind: "metric_drop", Metric: "viewers",
		Window: config.Duration(time.Minute), Levels: config.Levels{Yellow: ptr(30.0)}, Line: 42})
	_, err := NewEngine(cfg, &engineRecorder{}, EngineOptions{})
	if err == nil {
		t.Fatal("NewEngine accepted a metric_drop level of 30 (must be a fraction)")
	}
	for _, want := range []string{`"broken-drop"`, "test.yaml:42", "fraction"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := NewEngine(cfg, nil, EngineOptions{}); err == nil {
		t.Error("NewEngine accepted a nil sink")
	}
}

func TestConfigRejectsBadRuleFields(t *testing.T) {
	cases := map[string]string{
		"min_volume": `
  - name: r
    kind: negative_ratio
    window: 2m
    levels: { yellow: 0.3 }
`,
		"hysteresis": `
  - name: r
    kind: volume_spike
    window: 2m
    hysteresis: 1.5
    levels: { yellow: 3 }
`,
		"conditions[0].kind": `
  - name: r
    kind: negative_ratio
    window: 2m
    min_volume: 5
    levels: { yellow: 0.3 }
    conditions:
      - { kind: nonsense, above: 3 }
`,
		"source_broken takes severity": `
  - name: r
    kind: source_broken
    levels: { yellow: 1 }
`,
		"leave metric out": `
  - name: r
    kind: source_broken
    metric: viewers
`,
		"except absent and source_broken": `
  - name: r
    kind: volume_spike
    window: 2m
    levels: { yellow: 3 }
    conditions:
      - { kind: source_broken, above: 0 }
`,
		"red (0.2) must not be below yellow": `
  - name: r
    kind: negative_ratio
    window: 2m
    min_volume: 5
    levels: { yellow: 0.3, red: 0.2 }
`,
	}
	for want, rules := range cases {
		_, err := config.Parse([]byte(engineTestHeader+rules), "bad.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config error %v, want one mentioning %q", err, want)
		}
		if err != nil && !strings.Contains(err.Error(), "bad.yaml:") {
			t.Errorf("config error %v does not name file and line", err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestEngineMetricsAndSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := engineTestConfig(t, `
  - name: neg
    kind: negative_ratio
    window: 1m
    min_volume: 5
    levels: { red: 0.5 }
`)
	rec := &engineRecorder{}
	clock := func() time.Time { return engineTestStart }
	e, err := NewEngine(cfg, rec, EngineOptions{Registerer: reg, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEngine(cfg, rec, EngineOptions{Registerer: reg, Now: clock}); err != nil {
		t.Fatalf("second engine on the same registry: %v", err)
	}
	for _, it := range chats("1", 0, 30*time.Second, 10, 8) {
		e.Observe(&it)
	}
	if err := e.Evaluate(context.Background(), engineTestStart.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := engineGather(t, reg, "lookout_alert_items_observed_total", ""); got != 10 {
		t.Errorf("observed counter %v, want 10", got)
	}
	if got := engineGather(t, reg, "lookout_alert_events_total", "firing"); got != 1 {
		t.Errorf("firing events counter %v, want 1", got)
	}
}

func TestEngineRetriesEventsTheSinkRefused(t *testing.T) {
	e, rec := engineTestEngine(t, `
  - name: neg
    kind: negative_ratio
    window: 1m
    min_volume: 5
    levels: { red: 0.5 }
`)
	rec.fail = errors.New("disk full")
	for _, it := range chats("1", 0, 30*time.Second, 10, 8) {
		e.Observe(&it)
	}
	err := e.Evaluate(context.Background(), engineTestStart.Add(30*time.Second))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Evaluate error %v, want the sink's", err)
	}
	rec.fail = nil
	if err := e.Evaluate(context.Background(), engineTestStart.Add(31*time.Second)); err != nil {
		t.Fatal(err)
	}
	evs := rec.take()
	if len(evs) != 1 || evs[0].State != Firing || evs[0].Seq != 1 {
		t.Fatalf("after the sink recovered got %s, want the one firing event", engineDescribe(evs))
	}
}

func TestEngineRunEvaluatesAndStopsWhenInputCloses(t *testing.T) {
	cfg := engineTestConfig(t, `
  - name: neg
    kind: negative_ratio
    window: 1m
    min_volume: 5
    levels: { red: 0.5 }
`)
	rec := &engineRecorder{}
	var mu sync.Mutex
	now := engineTestStart
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e, err := NewEngine(cfg, rec, EngineOptions{Now: clock, EvalInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	in := make(chan item.Item, 4)
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background(), in) }()
	for _, it := range chats("9", 0, 10*time.Second, 10, 9) {
		in <- it
	}
	mu.Lock()
	now = engineTestStart.Add(10 * time.Second)
	mu.Unlock()
	close(in)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its input closed")
	}
	evs := rec.take()
	if len(evs) != 1 || evs[0].State != Firing || evs[0].Room != "9" {
		t.Fatalf("Run published %s, want one firing event for room 9", engineDescribe(evs))
	}

	// Stopped by its context.
	ctx, cancel := context.WithCancel(context.Background())
	in2 := make(chan item.Item)
	go func() { done <- e.Run(ctx, in2) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop on context cancel")
	}
}

func TestEventShape(t *testing.T) {
	e, rec := engineTestEngine(t, `
  - name: crisis-neg
    kind: negative_ratio
    window: 2m
    min_volume: 10
    levels: { yellow: 0.3, red: 0.5 }
`)
	items := chats("21452505", 0, 60*time.Second, 120, 74)
	engineRun(t, e, rec, []engineStep{{at: 60 * time.Second, items: items, want: []string{"firing/red"}}})
	_ = rec
	// Re-run to capture the event.
	e2, rec2 := engineTestEngine(t, `
  - name: crisis-neg
    kind: negative_ratio
    window: 2m
    min_volume: 10
    levels: { yellow: 0.3, red: 0.5 }
`)
	for i := range items {
		e2.Observe(&items[i])
	}
	if err := e2.Evaluate(context.Background(), engineTestStart.Add(60*time.Second)); err != nil {
		t.Fatal(err)
	}
	ev := rec2.take()[0]
	if want := "Negative share 62% (74 of 120 messages in 2m) in room 21452505 (live)"; ev.Summary != want {
		t.Errorf("summary %q, want %q", ev.Summary, want)
	}
	if ev.Numbers["items"] != 120 || ev.Numbers["negative"] != 74 || ev.Numbers["threshold"] != 0.5 {
		t.Errorf("numbers %v", ev.Numbers)
	}
	if ev.Value < 0.616 || ev.Value > 0.617 || ev.Threshold != 0.5 || ev.Window != 2*time.Minute {
		t.Errorf("value %v threshold %v window %v", ev.Value, ev.Threshold, ev.Window)
	}
	for k, v := range map[string]string{"rule": "crisis-neg", "severity": "red", "source": "live", "platform": "bilibili", "room": "21452505", "brand": "own"} {
		if ev.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, ev.Labels[k], v)
		}
	}
	if ev.ID != ev.AlertID+"/1" || len(ev.AlertID) != 16 || ev.Seq != 1 || ev.Prev != Inactive {
		t.Errorf("ids: ID %q AlertID %q Seq %d Prev %q", ev.ID, ev.AlertID, ev.Seq, ev.Prev)
	}
	if want := lifecycleAlertID("crisis-neg", engineKey{"live", "21452505"}, ev.StartedAt); ev.AlertID != want {
		t.Errorf("AlertID %s is not the hash of rule+key+start (%s)", ev.AlertID, want)
	}
	if len(ev.Samples) != 5 {
		t.Fatalf("%d samples, want MaxSamples=5", len(ev.Samples))
	}
	for _, s := range ev.Samples {
		if s.Score >= 0 || !strings.Contains(s.Text, "退款") || s.Author == "" || s.TS.IsZero() {
			t.Errorf("sample %+v is not a negative message with author and time", s)
		}
	}
	if !ev.Notifies() {
		t.Error("a firing event must notify")
	}
}

// engineGather reads a counter from the registry; with label set, the
// series that has a label of that value.
func engineGather(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					ok = true
				}
			}
			if ok {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{%s} not gathered", name, label)
	return 0
}

// An item older than a rule's window (a news post fetched hours after it
// was published) counts when it arrives; its sample still shows when it
// was said.
func TestOldItemsCountOnArrival(t *testing.T) {
	e, rec, clk := engineTestEngineClock(t, `
  - name: crisis-news
    kind: keyword_burst
    group: crisis
    window: 10m
    levels: { red: 3 }
`)
	now := engineTestStart.Add(6 * time.Hour)
	clk.Set(now)
	posts := chats("1", 0, 30*time.Minute, 3, 3, crisisMatch) // published 6h ago
	for i := range posts {
		e.Observe(&posts[i])
	}
	if err := e.Evaluate(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	evs := rec.take()
	if len(evs) != 1 || evs[0].State != Firing || len(evs[0].Samples) != 3 {
		t.Fatalf("got %s", engineDescribe(evs))
	}
	if !evs[0].Samples[0].TS.Before(engineTestStart.Add(time.Hour)) {
		t.Errorf("sample time %v is not the post's own", evs[0].Samples[0].TS)
	}
}

func TestIdleKeysAreForgottenUnlessAnAlertIsOpen(t *testing.T) {
	e, rec, clk := engineTestEngineClock(t, `
  - name: neg
    kind: negative_ratio
    window: 1m
    min_volume: 5
    levels: { red: 0.5 }
  - name: silent
    kind: absent
    match: { room: "2" }
    window: 1m
`)
	for _, room := range []string{"1", "2"} {
		for _, it := range chats(room, 0, 10*time.Second, 10, 0) {
			e.Observe(&it)
		}
	}
	ctx := context.Background()
	if err := e.Evaluate(ctx, engineTestStart.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	later := engineTestStart.Add(25 * time.Hour)
	clk.Set(later)
	if err := e.Evaluate(ctx, later); err != nil {
		t.Fatal(err)
	}
	evs := rec.take()
	if len(evs) != 1 || evs[0].Rule != "silent" || evs[0].State != Firing {
		t.Fatalf("got %s, want room 2's absent alert firing", engineDescribe(evs))
	}
	if _, ok := e.keys[engineKey{"live", "1"}]; ok {
		t.Error("room 1, silent for a day with nothing open, is still kept")
	}
	if _, ok := e.keys[engineKey{"live", "2"}]; !ok || len(e.keyList) != 1 {
		t.Error("room 2 has a firing absent alert and must be kept")
	}
}

func TestSummaryTemplate(t *testing.T) {
	e, rec := engineTestEngine(t, `
  - name: neg
    kind: negative_ratio
    window: 1m
    min_volume: 5
    levels: { red: 0.5 }
    summary: '{{.Labels.brand}} room {{.Room}}: {{printf "%.0f" (index .Numbers "negative")}} angry messages'
`)
	engineRun(t, e, rec, nil)
	for _, it := range chats("7", 0, 10*time.Second, 10, 6) {
		e.Observe(&it)
	}
	if err := e.Evaluate(context.Background(), engineTestStart.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	evs := rec.take()
	if len(evs) != 1 || evs[0].Summary != "own room 7: 6 angry messages" {
		t.Fatalf("got %s", engineDescribe(evs))
	}
}
