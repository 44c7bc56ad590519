package alerts

import (
	"context"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"testing"
	"time"

	"lookout/item"
)

// engineBenchRules are eleven rules of every kind, all matching every room,
// including the shipped config's forms (baselines, rates, a trend) and
// every kind of label matcher.
const engineBenchRules = `
  - name: neg-2m
    kind: negative_ratio
    match: { source: live }
    matchers: ['platform=~"bili.*"', 'kind!="gift"', 'brand!~"rival|other"', 'room=~"1.*"']
    window: 2m
    min_volume: 30
    levels: { yellow: 0.3, red: 0.5 }
    for: 30s
  - name: negative-surge
    kind: negative_ratio
    window: 30s
    baseline: 15m
    min_history: 5m
    min_volume: 60
    floor: 0.12
    levels: { yellow: 0.05, red: 0.08 }
    for: 10s
  - name: crisis-burst
    kind: keyword_burst
    group: crisis
    window: 1m
    per: 1000
    complaints_only: true
    baseline: 15m
    min_history: 2m
    levels: { yellow: 8, red: 20 }
  - name: service-burst
    kind: keyword_burst
    category: service
    window: 5m
    levels: { yellow: 10 }
  - name: chat-spike
    kind: volume_spike
    window: 1m
    min_volume: 50
    levels: { yellow: 3, red: 6 }
  - name: viewers-low
    kind: metric_threshold
    metric: viewers
    op: below
    levels: { yellow: 100, red: 10 }
  - name: viewers-drop
    kind: metric_drop
    metric: viewers
    window: 30s
    baseline: 5m
    levels: { yellow: 0.25, red: 0.4 }
  - name: viewers-bleed
    kind: metric_trend
    metric: viewers
    window: 30m
    levels: { yellow: 0.2 }
  - name: viewers-anomaly
    kind: anomaly
    metric: viewers
    window: 30s
  - name: room-silent
    kind: absent
    window: 5m
  - name: crisis-combined
    kind: negative_ratio
    window: 2m
    min_volume: 30
    levels: { yellow: 0.4, red: 0.6 }
    conditions:
      - { kind: volume_spike, above: 3 }
`

// engineBenchItems makes a stream over `rooms` rooms: chat (a quarter
// negative, some matching keyword groups, each message with its own id
// and one of a few hundred authors, as collectors emit them) with a
// viewer-count metric every 20th item.
func engineBenchItems(rooms, n int, start time.Time, gap time.Duration) []item.Item {
	roomIDs := make([]string, rooms)
	for i := range roomIDs {
		roomIDs[i] = strconv.Itoa(100000 + i)
	}
	labels := map[string]string{"brand": "own"}
	out := make([]item.Item, n)
	for i := range out {
		ts := start.Add(time.Duration(i) * gap)
		room := roomIDs[i%rooms]
		if i%20 == 19 {
			out[i] = item.Item{Source: "live", Platform: "bilibili", Kind: item.KindMetric, Room: room, TS: ts,
				Metric: "viewers", Value: float64(1000 + i%97), Labels: labels}
			continue
		}
		it := item.Item{Source: "live", Platform: "bilibili", Kind: item.KindChat, Room: room, TS: ts,
			ID: "m" + strconv.Itoa(i), AuthorID: strconv.Itoa(i % 397), Author: "viewer", Text: "主播好", Labels: labels,
			Score: item.Score{Scored: true, Label: item.Positive, Value: 0.6}}
		if i%4 == 0 {
			it.Text, it.Score.Label, it.Score.Value = "退款 假货", item.Negative, -0.7
			it.Score.Groups = []item.Match{crisisMatch}
		}
		if i%9 == 0 {
			it.Score.Groups = append(it.Score.Groups, item.Match{Group: "service", Category: "service", Severity: "yellow"})
		}
		out[i] = it
	}
	return out
}

type engineBenchSink struct{ n int }

func (s *engineBenchSink) Publish(context.Context, Event) error { s.n++; return nil }

// BenchmarkEngineObserve: the hot path, 1,000 rooms × 11 rules, in steady
// state (every room's windows exist). Reports item-rule evaluations per
// second: items × rules / time.
func BenchmarkEngineObserve(b *testing.B) {
	const rooms = 1000
	cfg := engineTestConfig(b, engineBenchRules)
	e, err := NewEngine(cfg, &engineBenchSink{}, EngineOptions{Now: func() time.Time { return engineTestStart }})
	if err != nil {
		b.Fatal(err)
	}
	items := engineBenchItems(rooms, 200_000, engineTestStart, 200*time.Microsecond) // 5k items/s of stream time
	// Keep stream time moving forward across b.N loops.
	span := items[len(items)-1].TS.Sub(items[0].TS) + 200*time.Microsecond
	// Warm up over the longest window (5m) and more: keys, windows and
	// each room's record of messages (retract.go) have their full size.
	round := 0
	for ; time.Duration(round)*span < 6*time.Minute; round++ {
		for i := range items {
			it := items[i]
			it.TS = it.TS.Add(time.Duration(round) * span)
			e.Observe(&it)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := engineBenchCPU()
	for i := 0; i < b.N; i++ {
		k := i % len(items)
		if k == 0 {
			round++
		}
		it := items[k]
		it.TS = it.TS.Add(time.Duration(round) * span)
		e.Observe(&it)
	}
	b.StopTimer()
	cpu := (engineBenchCPU() - cpu0).Seconds()
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/sec, "items/s")
	b.ReportMetric(float64(b.N)*float64(len(cfg.Rules))/sec, "evals/s")
	// On a shared machine wall time includes waiting for a core; CPU time
	// (user+system of the process, GC included) does not.
	if cpu > 0 {
		b.ReportMetric(float64(b.N)*float64(len(cfg.Rules))/cpu, "evals/cpu-s")
	}
}

// engineBenchCPU is the process's user+system CPU time so far.
func engineBenchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEngineEvaluate: one evaluation round over 1,000 rooms × 11
// rules, 100 ms of stream time after the last (as the daemon evaluates).
// Reports rule-key evaluations per second.
func BenchmarkEngineEvaluate(b *testing.B) {
	const rooms = 1000
	cfg := engineTestConfig(b, engineBenchRules)
	sink := &engineBenchSink{}
	e, err := NewEngine(cfg, sink, EngineOptions{Now: func() time.Time { return engineTestStart }})
	if err != nil {
		b.Fatal(err)
	}
	items := engineBenchItems(rooms, 200_000, engineTestStart, 200*time.Microsecond)
	for i := range items {
		e.Observe(&items[i])
	}
	now := items[len(items)-1].TS
	ctx := context.Background()
	if err := e.Evaluate(ctx, now); err != nil { // first round publishes what is already true
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := engineBenchCPU()
	for i := 0; i < b.N; i++ {
		if err := e.Evaluate(ctx, now.Add(time.Duration(i)*100*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := (engineBenchCPU() - cpu0).Seconds()
	b.ReportMetric(float64(b.N)*rooms*float64(len(cfg.Rules))/b.Elapsed().Seconds(), "rule-key-evals/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)*rooms*float64(len(cfg.Rules))/cpu, "rule-key-evals/cpu-s")
	}
}

// In steady state (every key's windows and scratch exist) observing an item
// and evaluating every rule do not allocate, the shipped rule forms
// included. Events are allocations by nature: the stream here fires none
// after the first round.
func TestEngineSteadyStateDoesNotAllocate(t *testing.T) {
	if alertsRaceEnabled {
		t.Skip("the race detector's instrumentation allocates: counts are meaningless under -race")
	}
	const rooms = 5 // 10 messages a second each: every rule has enough volume to judge
	cfg := engineTestConfig(t, engineBenchRules)
	now := engineTestStart
	e, err := NewEngine(cfg, &engineBenchSink{}, EngineOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	gap := 20 * time.Millisecond
	items := engineBenchItems(rooms, 120_000, engineTestStart, gap) // 40 minutes of stream time
	ctx := context.Background()
	warm := len(items) - 1000
	step := func(k int) {
		e.Observe(&items[k])
		if k%50 == 0 {
			now = items[k].TS
			if err := e.Evaluate(ctx, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	settle := warm - 500
	for k := range items[:settle] {
		step(k)
	}
	// A collection empties every sync.Pool, regexp's cache of matchers
	// among them, and the next match refills it with one allocation: the
	// runtime's, not the engine's, and at random points. So the collector
	// is off from here on, and the stretch before the counted one refills
	// the pools on the one processor the count runs on.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for k := settle; k < warm; k++ {
		step(k)
	}
	// Count every allocation over the whole stretch (AllocsPerRun would
	// divide a rare one away): 1,000 items, 20 evaluation rounds, 20 s of
	// stream time, so baselines move on by a bucket and are recomputed.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for k := warm; k < len(items); k++ {
		step(k)
	}
	runtime.ReadMemStats(&after)
	if n := after.Mallocs - before.Mallocs; n != 0 {
		t.Errorf("Observe+Evaluate allocated %d times over 1,000 items and 20 rounds in steady state, want 0", n)
	}
}
