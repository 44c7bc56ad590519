package alerts

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"lookout/item"
)

// engineBenchRules are ten rules of every kind, all matching every room.
const engineBenchRules = `
  - name: neg-2m
    kind: negative_ratio
    window: 2m
    min_volume: 30
    levels: { yellow: 0.3, red: 0.5 }
    for: 30s
  - name: neg-10m
    kind: negative_ratio
    window: 10m
    min_volume: 100
    levels: { yellow: 0.25, red: 0.4 }
  - name: crisis-burst
    kind: keyword_burst
    group: crisis
    window: 1m
    levels: { yellow: 10, red: 30 }
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
    window: 1m
    levels: { yellow: 0.3, red: 0.5 }
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
// negative, some matching keyword groups) with a viewer-count metric every
// 20th item.
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
			Author: "viewer", Text: "主播好", Labels: labels,
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

// BenchmarkEngineObserve: the hot path, 1,000 rooms × 10 rules, in steady
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
	for i := range items {                                                           // warm up: keys and windows exist
		e.Observe(&items[i])
	}
	// Keep stream time moving forward across b.N loops.
	span := items[len(items)-1].TS.Sub(items[0].TS) + 200*time.Microsecond
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := engineBenchCPU()
	round := 1
	for i := 0; i < b.N; i++ {
		k := i % len(items)
		if k == 0 && i > 0 {
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

// BenchmarkEngineEvaluate: one evaluation round over 1,000 rooms × 10
// rules. Reports rule-key evaluations per second.
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
		if err := e.Evaluate(ctx, now); err != nil {
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
