package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestRunSmall pushes 2 rooms at 200 msgs/s for 2 s through the real
// daemon: nothing may be lost, the JSON carries the documented keys, and
// the execution trace asked for covers the store writer.
func TestRunSmall(t *testing.T) {
	var tr bytes.Buffer
	res, err := Run(context.Background(), Options{Rooms: 2, Rate: 200, Duration: 2 * time.Second, DBPath: t.TempDir() + "/lg.db", Ceiling: true,
		Trace: &tr, TraceWindow: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(tr.Bytes(), []byte("go 1.")) || !bytes.Contains(tr.Bytes(), []byte("lookout/store.(*Writer).RunBatches")) {
		t.Errorf("execution trace of %d bytes: not a Go trace with the store writer's goroutine in it", tr.Len())
	}
	if res.Sent < 300 {
		t.Errorf("sent %d, want about 400", res.Sent)
	}
	if res.Lost != 0 || res.Stored != res.Sent {
		t.Errorf("sent %d stored %d lost %d, want nothing lost", res.Sent, res.Stored, res.Lost)
	}
	if res.P50ms <= 0 || res.P99ms < res.P50ms {
		t.Errorf("latency p50 %v p99 %v", res.P50ms, res.P99ms)
	}
	if res.EvalP50ms <= 0 || res.EvalP99ms < res.EvalP50ms {
		t.Errorf("arrival→alert evaluated p50 %v p99 %v", res.EvalP50ms, res.EvalP99ms)
	}
	if res.CPUPerMsgUS <= 0 {
		t.Errorf("cpu per message %v", res.CPUPerMsgUS)
	}
	if len(res.RSSSeriesMB) == 0 {
		t.Errorf("no RSS samples")
	}
	if res.CeilingRate <= 0 || res.CeilingRatio <= 0 {
		t.Errorf("ceiling %v items/s, ratio %v", res.CeilingRate, res.CeilingRatio)
	}
	if res.CeilingStoredRate <= 0 || res.CeilingStoredRatio <= 0 {
		t.Errorf("ceiling of the stored rows %v items/s, ratio %v", res.CeilingStoredRate, res.CeilingStoredRatio)
	}
	// At 200 msgs/s every stage waits for work most of the time.
	f := res.StageFractions
	if len(f) != len(stageMetrics) {
		t.Errorf("stage fractions %v, want one for each of %d stage states", f, len(stageMetrics))
	}
	if f["store_busy"] <= 0 || f["store_busy"] > 0.5 {
		t.Errorf("store busy %v of the time, want a little", f["store_busy"])
	}
	if f["classifier_idle"] < 0.5 || f["classifier_idle"] > 1.01 {
		t.Errorf("classifier idle %v of the time, want most of it", f["classifier_idle"])
	}
	if f["classifier_blocked_on_store"] > 0.1 || f["classifier_blocked_on_alerts"] > 0.1 {
		t.Errorf("classifier blocked on a stage at 200 msgs/s: %v", f)
	}
	m := resultJSON(t, res)
	for _, k := range []string{"rooms", "target_rate", "achieved_rate", "stored", "lost", "p50_ms", "p99_ms", "eval_p50_ms", "eval_p99_ms", "rss_mb", "cpu_us_per_msg"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %v lacks %q", m, k)
		}
	}
}

func TestTickOf(t *testing.T) {
	for _, tc := range []struct {
		id   string
		k    int
		want bool
	}{
		{id(0, 0), 0, true},
		{id(1234, 7), 1234, true},
		{"lg12", 0, false},
		{"lgx1", 0, true},
		{"xx1x2", 0, false},
		{"lg1a2x3", 0, false},
	} {
		k, ok := tickOf(tc.id)
		if ok != tc.want || ok && k != tc.k {
			t.Errorf("tickOf(%q) = %d, %v; want %d, %v", tc.id, k, ok, tc.k, tc.want)
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	var h histogram
	if q := h.quantile(0.5); q != 0 {
		t.Errorf("empty histogram: %v", q)
	}
	for i := range 100 {
		h.add(time.Duration(i)*time.Millisecond+time.Microsecond, 1)
	}
	h.add(10*time.Minute, 1) // beyond the last bucket
	for _, tc := range []struct{ q, want float64 }{{0, 1}, {0.5, 51}, {0.99, 100}, {1, 120_001}} {
		if got := h.quantile(tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

// TestPGHoles: rows committed out of id order are each counted once, the
// reader reads again from below the lowest id not seen, and an id never
// used stops holding the floor back after holeAge.
func TestPGHoles(t *testing.T) {
	var h pgHoles
	t0 := time.Now()
	for _, step := range []struct {
		id    int64
		isNew bool
		floor int64
	}{
		{3, true, 0},  // 1 and 2 not committed yet
		{4, true, 0},  //
		{1, true, 1},  // 2 still missing
		{3, false, 1}, // read again: not new
		{2, true, 4},  // all seen
		{9, true, 4},  // 5–8 missing
	} {
		if got := h.see(step.id, t0); got != step.isNew {
			t.Errorf("see(%d) = %v, want %v", step.id, got, step.isNew)
		}
		if f := h.floor(); f != step.floor {
			t.Errorf("after %d: floor %d, want %d", step.id, f, step.floor)
		}
	}
	h.expire(t0.Add(holeAge + time.Second))
	if f := h.floor(); f != 9 {
		t.Errorf("after expiry: floor %d, want 9", f)
	}
}

// TestRunWatched serves the dashboard from the daemon under test and
// watches the two busiest of three rooms as a browser does: each stream
// must deliver coalesced updates whose timeline counts add up to every
// message pushed to its room, with no reconnect, and the JSON carries it.
func TestRunWatched(t *testing.T) {
	res, err := Run(context.Background(), Options{Rooms: 3, Rate: 600, Duration: 3 * time.Second, DBPath: t.TempDir() + "/lg.db", Watch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.Stored != res.Sent || res.Sent < 1500 {
		t.Errorf("sent %d stored %d lost %d, want about 1800 and nothing lost", res.Sent, res.Stored, res.Lost)
	}
	w := res.Watched
	if !res.UI || w == nil {
		t.Fatalf("ui %v, watched %+v: want the dashboard served and watched", res.UI, w)
	}
	if w.Streams != 2 || w.Errors != 0 || w.Reconnects != 0 {
		t.Errorf("watched %+v: want 2 streams, no error, no reconnect", *w)
	}
	// 3 s of pushes at one update per 500 ms tick: about 6 per stream;
	// coalesced, so never one per message.
	if w.Updates < 6 || w.Updates > 40 {
		t.Errorf("%d updates over 2 streams in 3 s, want about 12", w.Updates)
	}
	// Rooms 0 and 1 get 200 msgs/s each of the 600.
	if w.Sent < int64(2*res.Sent/3-2) || w.SliceMessages != w.Sent {
		t.Errorf("streams counted %d messages of %d pushed to the watched rooms (%d to all)", w.SliceMessages, w.Sent, res.Sent)
	}
	if w.Messages <= 0 || w.Messages > w.Sent || w.Bytes <= 0 {
		t.Errorf("feed messages %d, bytes %d", w.Messages, w.Bytes)
	}
	m := resultJSON(t, res)
	if _, ok := m["watched"].(map[string]any); !ok || m["ui"] != true {
		t.Errorf("JSON %v lacks ui and watched", m)
	}
}

// resultJSON is res as the JSON `lookout loadgen --format json` prints,
// decoded into a map, so a test sees the field names users see.
func resultJSON(t *testing.T, res Result) map[string]any {
	t.Helper()
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
