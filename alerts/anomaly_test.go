package alerts

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"lookout/item"
)

// anomalySeries feeds values (one per step from engineTestStart) to an
// engine with one anomaly rule, evaluating after each, and returns the
// events with the index of the point that raised them.
func anomalySeries(t *testing.T, rules string, step time.Duration, values []float64) ([]Event, []int) {
	t.Helper()
	e, rec, clk := engineTestEngineClock(t, rules)
	var evs []Event
	var at []int
	for i, v := range values {
		ts := engineTestStart.Add(time.Duration(i) * step)
		clk.Set(ts)
		it := metricItem("1", "viewers", ts, v)
		e.Observe(&it)
		if err := e.Evaluate(context.Background(), ts); err != nil {
			t.Fatal(err)
		}
		for _, ev := range rec.take() {
			evs = append(evs, ev)
			at = append(at, i)
		}
	}
	return evs, at
}

func anomalyNoise(n int, level, sd float64, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]float64, n)
	for i := range out {
		out[i] = level + sd*r.NormFloat64()
	}
	return out
}

const anomalyRule = `
  - name: viewers-anomaly
    kind: anomaly
    metric: viewers
    window: 1m
    seasonality: none
`

func firings(evs []Event, at []int) []int {
	var out []int
	for i, ev := range evs {
		if ev.State == Firing && ev.Prev != Firing {
			out = append(out, at[i])
		}
	}
	return out
}

func TestAnomalyRule(t *testing.T) {
	const n = 600
	cases := []struct {
		name   string
		rules  string
		series func() []float64
		fireAt []int // points where a new alert starts
		check  func(t *testing.T, ev Event)
	}{
		{
			name:   "quiet noise raises nothing",
			rules:  anomalyRule,
			series: func() []float64 { return anomalyNoise(3000, 1000, 20, 1) },
			fireAt: nil,
		},
		{
			name:  "spike",
			rules: anomalyRule,
			series: func() []float64 {
				v := anomalyNoise(n, 1000, 20, 2)
				v[400] = 1600
				return v
			},
			fireAt: []int{400},
			check: func(t *testing.T, ev Event) {
				if ev.Numbers["z"] < DefaultAnomalyYellow || ev.Severity != Red || !strings.Contains(ev.Summary, "viewers 1600 is anomalous") {
					t.Errorf("spike event: severity %s z %v summary %q", ev.Severity, ev.Numbers["z"], ev.Summary)
				}
				if b := ev.Numbers["baseline"]; b < 980 || b > 1020 {
					t.Errorf("baseline %v, want about 1000", b)
				}
			},
		},
		{
			name:  "drop",
			rules: anomalyRule,
			series: func() []float64 {
				v := anomalyNoise(n, 1000, 20, 3)
				v[400] = 500
				return v
			},
			fireAt: []int{400},
			check: func(t *testing.T, ev Event) {
				if ev.Numbers["z"] > -DefaultAnomalyYellow {
					t.Errorf("drop z %v", ev.Numbers["z"])
				}
			},
		},
		{
			name: "op above ignores drops",
			rules: `
  - name: viewers-anomaly
    kind: anomaly
    metric: viewers
    op: above
    window: 1m
    seasonality: none
`,
			series: func() []float64 {
				v := anomalyNoise(n, 1000, 20, 3)
				v[400] = 500
				return v
			},
			fireAt: nil,
		},
		{
			name:  "level shift fires once, then the baseline learns the new level",
			rules: anomalyRule,
			series: func() []float64 {
				v := anomalyNoise(1500, 1000, 20, 4)
				for i := 400; i < len(v); i++ {
					v[i] += 300
				}
				return v
			},
			fireAt: []int{400},
		},
		{
			name:  "flatline where the series used to move",
			rules: anomalyRule,
			series: func() []float64 {
				v := anomalyNoise(n, 1000, 20, 5)
				for i := 400; i < 430; i++ {
					v[i] = 1003
				}
				return v
			},
			fireAt: []int{400 + anomalyFlatMin - 1},
			check: func(t *testing.T, ev Event) {
				if ev.Numbers["flat_points"] < anomalyFlatMin || !strings.Contains(ev.Summary, "flatlined") {
					t.Errorf("flatline event: numbers %v summary %q", ev.Numbers, ev.Summary)
				}
			},
		},
		{
			name:  "warm-up: outliers before the baseline exists raise nothing",
			rules: anomalyRule,
			series: func() []float64 {
				v := anomalyNoise(anomalyDefaultWarmUp, 1000, 20, 6)
				v[10], v[20], v[anomalyDefaultWarmUp-1] = 50000, -50000, 90000
				return v
			},
			fireAt: nil,
		},
		{
			name:  "a constant series never alerts",
			rules: anomalyRule,
			series: func() []float64 {
				v := make([]float64, 1000)
				for i := range v {
					v[i] = 42
				}
				return v
			},
			fireAt: nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, at := anomalySeries(t, tc.rules, time.Minute, tc.series())
			got := firings(evs, at)
			if len(got) != len(tc.fireAt) || (len(got) > 0 && !equalInts(got, tc.fireAt)) {
				t.Fatalf("alerts started at points %v, want %v\n%s", got, tc.fireAt, engineDescribe(evs))
			}
			if tc.check != nil && len(evs) > 0 {
				tc.check(t, evs[0])
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A daily pattern: the seasonal baseline learns it, so the evening peak is
// not an anomaly but the same value at night is.
func TestAnomalySeasonalBaseline(t *testing.T) {
	const perDay = 288 // 5-minute points
	days := 5
	v := anomalyNoise(perDay*days, 0, 5, 7)
	for i := range v {
		phase := 2 * math.Pi * float64(i%perDay) / perDay
		v[i] += 1000 + 600*math.Sin(phase)
	}
	night := 4*perDay + perDay*3/4 // trough on day 5
	v[night] = 1000 + 600          // the daytime peak, at night
	evs, at := anomalySeries(t, `
  - name: viewers-anomaly
    kind: anomaly
    metric: viewers
    window: 5m
`, 5*time.Minute, v)
	got := firings(evs, at)
	if len(got) != 1 || got[0] != night {
		t.Fatalf("alerts at %v, want only the night-time peak at %d\n%s", got, night, engineDescribe(evs))
	}
}

// Volume anomaly: with no metric, the series is the item count per window.
func TestAnomalyOnVolume(t *testing.T) {
	e, rec, clk := engineTestEngineClock(t, `
  - name: chat-volume
    kind: anomaly
    window: 1m
    seasonality: none
`)
	r := rand.New(rand.NewPCG(8, 9))
	var fired []int
	for m := 0; m < 200; m++ {
		n := 20 + r.IntN(6)
		if m == 150 {
			n = 200
		}
		clk.Set(engineTestStart.Add(time.Duration(m) * time.Minute))
		for _, it := range chats("1", time.Duration(m)*time.Minute, time.Minute, n, 0) {
			e.Observe(&it)
		}
		if err := e.Evaluate(context.Background(), engineTestStart.Add(time.Duration(m+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		for _, ev := range rec.take() {
			if ev.State == Firing {
				fired = append(fired, m)
				if len(ev.Samples) == 0 {
					t.Error("volume anomaly quoted no samples")
				}
			}
		}
	}
	if len(fired) != 1 || fired[0] != 150 {
		t.Fatalf("volume anomaly fired at minutes %v, want [150]", fired)
	}
}

func TestAnomalyScoreRange(t *testing.T) {
	for _, z := range []float64{0, 1, -3, DefaultAnomalyYellow, 50, -1e9} {
		s := AnomalyScore(z)
		if s < 0 || s > 1 || math.IsNaN(s) {
			t.Errorf("AnomalyScore(%v) = %v", z, s)
		}
	}
	if s := AnomalyScore(DefaultAnomalyYellow); math.Abs(s-0.5) > 1e-12 {
		t.Errorf("score at the yellow level %v, want 0.5", s)
	}
}

func TestAnomalySortedWindowMedianMAD(t *testing.T) {
	w := newAnomalySortedWindow(5)
	for _, x := range []float64{9, 1, 5, 3, 7, 100, 2} { // keeps the last 5: 5 3 7 100 2
		w.push(x)
	}
	want := []float64{2, 3, 5, 7, 100}
	got := append([]float64(nil), w.sorted...)
	if !sort.Float64sAreSorted(got) || !equalFloats(got, want) {
		t.Fatalf("window %v, want %v", got, want)
	}
	if m := w.median(); m != 5 {
		t.Errorf("median %v", m)
	}
	// deviations from 5: 3 2 0 2 95 → median 2
	if d := w.mad(5); d != 2 {
		t.Errorf("mad %v, want 2", d)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAbsentRule(t *testing.T) {
	e, rec := engineTestEngine(t, `
  - name: source-silent
    kind: absent
    match: { source: live }
    window: 2m
    severity: red
`)
	const s = time.Second
	engineRun(t, e, rec, []engineStep{
		{at: 10 * s, items: chats("1", 0, 10*s, 5, 0), want: nil},
		{at: 2 * time.Minute, want: nil},
		{at: 2*time.Minute + 10*s, want: []string{"firing/red"}},
		{at: 3 * time.Minute, want: nil},
		{at: 3*time.Minute + 5*s, items: chats("1", 3*time.Minute, 5*s, 1, 0), want: []string{"resolved/red"}},
	})
	// A metric keeps a source alive too.
	e2, rec2 := engineTestEngine(t, `
  - name: silent
    kind: absent
    window: 1m
`)
	engineRun(t, e2, rec2, []engineStep{
		{at: 0, items: []item.Item{metricItem("1", "viewers", engineTestStart, 5)}, want: nil},
		{at: 50 * s, items: []item.Item{metricItem("1", "viewers", engineTestStart.Add(50*s), 5)}, want: nil},
		{at: 100 * s, want: nil},
		{at: 111 * s, want: []string{"firing/yellow"}},
	})
}

func TestAbsentSummary(t *testing.T) {
	e, rec := engineTestEngine(t, `
  - name: silent
    kind: absent
    window: 1m
`)
	it := metricItem("42", "viewers", engineTestStart, 5)
	e.Observe(&it)
	if err := e.Evaluate(context.Background(), engineTestStart.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	evs := rec.take()
	if len(evs) != 1 || evs[0].Summary != "No items for 1m30s in room 42 (live)" || evs[0].Threshold != 60 || evs[0].Value != 90 {
		t.Fatalf("got %s", engineDescribe(evs))
	}
}

func TestCombinedConditions(t *testing.T) {
	rules := `
  - name: crisis
    kind: negative_ratio
    window: 1m
    min_volume: 10
    levels: { yellow: 0.4, red: 0.6 }
    conditions:
      - { kind: volume_spike, above: 3 }
`
	const s = time.Second
	calm := func(from time.Duration, neg int) []item.Item { return chats("1", from, 60*s, 20, neg) }
	t.Run("negative share alone is not enough", func(t *testing.T) {
		e, rec := engineTestEngine(t, rules)
		var steps []engineStep
		for m := 0; m < 5; m++ {
			steps = append(steps, engineStep{at: time.Duration(m+1)*time.Minute - s, items: calm(time.Duration(m)*time.Minute, 2)})
		}
		// Minute 6: 70% negative at the usual volume.
		steps = append(steps, engineStep{at: 6*time.Minute - s, items: calm(5*time.Minute, 14)})
		engineRun(t, e, rec, steps)
	})
	t.Run("negative share and a volume spike together fire", func(t *testing.T) {
		e, rec := engineTestEngine(t, rules)
		var steps []engineStep
		for m := 0; m < 5; m++ {
			steps = append(steps, engineStep{at: time.Duration(m+1)*time.Minute - s, items: calm(time.Duration(m)*time.Minute, 2)})
		}
		storm := chats("1", 5*time.Minute, 60*s-s, 100, 70)
		steps = append(steps, engineStep{at: 6*time.Minute - s, items: storm, want: []string{"firing/red"}})
		evs := engineRun(t, e, rec, steps)
		ev := evs[0]
		if ev.Numbers["negative_ratio"] != 0.7 || ev.Numbers["ratio"] < 3 || ev.Numbers["baseline"] != 20 {
			t.Errorf("numbers %v", ev.Numbers)
		}
		if !strings.Contains(ev.Summary, "Negative share 70%") || !strings.Contains(ev.Summary, "and volume_spike 5") {
			t.Errorf("summary %q", ev.Summary)
		}
	})
	t.Run("a volume spike alone is not enough", func(t *testing.T) {
		e, rec := engineTestEngine(t, rules)
		var steps []engineStep
		for m := 0; m < 5; m++ {
			steps = append(steps, engineStep{at: time.Duration(m+1)*time.Minute - s, items: calm(time.Duration(m)*time.Minute, 2)})
		}
		steps = append(steps, engineStep{at: 6*time.Minute - s, items: chats("1", 5*time.Minute, 60*s-s, 100, 10)})
		engineRun(t, e, rec, steps)
	})
}

// The sorted window against a plain sort, over many random pushes.
func TestAnomalySortedWindowMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	w := newAnomalySortedWindow(37)
	var all []float64
	for i := 0; i < 2000; i++ {
		x := math.Round(r.NormFloat64()*10) / 2 // ties on purpose
		w.push(x)
		all = append(all, x)
		last := all[max(0, len(all)-37):]
		want := append([]float64(nil), last...)
		sort.Float64s(want)
		if !equalFloats(w.sorted, want) {
			t.Fatalf("after %d pushes: window %v, want %v", i+1, w.sorted, want)
		}
		m := w.median()
		devs := make([]float64, len(want))
		for k, v := range want {
			devs[k] = math.Abs(v - m)
		}
		sort.Float64s(devs)
		if got, wantMAD := w.mad(m), devs[(len(devs)+1)/2-1]; got != wantMAD {
			t.Fatalf("after %d pushes: mad %v, want %v", i+1, got, wantMAD)
		}
		// Around any centre, also off the middle and outside the values
		// (the binary search over the two sides must not assume balance).
		c := m + r.NormFloat64()*20
		for k, v := range want {
			devs[k] = math.Abs(v - c)
		}
		sort.Float64s(devs)
		if got, wantMAD := w.mad(c), devs[(len(devs)+1)/2-1]; got != wantMAD {
			t.Fatalf("after %d pushes: mad around %v = %v, want %v", i+1, c, got, wantMAD)
		}
	}
}

func TestAnomalyTailHistQuantile(t *testing.T) {
	h := newAnomalyTailHist(1000)
	for i := 0; i < 5000; i++ { // only the last 1000 count: 4000..4999 → values 1..1000
		h.push(float64(i%1000 + 1))
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 500}, {0.99, 990}, {0.9, 900}} {
		got := h.quantile(c.q)
		if math.Abs(got-c.want)/c.want > 0.1 {
			t.Errorf("quantile(%v) = %v, want %v within the 10%% bucket width", c.q, got, c.want)
		}
	}
	if h.n != 1000 {
		t.Errorf("n %d", h.n)
	}
}

// A series faster than the seasonal slot (1-minute points, 5-minute
// slots): the points of one slot and day average into one value, so the
// profile still spans several days.
func TestAnomalySeasonalFasterThanSlots(t *testing.T) {
	const perDay = 1440
	v := anomalyNoise(perDay*4, 0, 5, 13)
	for i := range v {
		v[i] += 1000 + 600*math.Sin(2*math.Pi*float64(i%perDay)/perDay)
	}
	night := 3*perDay + perDay*3/4
	v[night] = 1600
	evs, at := anomalySeries(t, `
  - name: viewers-anomaly
    kind: anomaly
    metric: viewers
    window: 1m
`, time.Minute, v)
	got := firings(evs, at)
	if len(got) != 1 || got[0] != night {
		t.Fatalf("alerts at %v, want only the night-time peak at %d\n%s", got, night, engineDescribe(evs))
	}
	d := newAnomalyDetector(anomalyParams{warmUp: 30, seasonality: "auto", step: time.Minute})
	for i := 0; i < perDay*3; i++ {
		d.update(engineTestStart.Add(time.Duration(i)*time.Minute), float64(i/perDay))
	}
	if got := len(d.point.slots[0]); got != 3 {
		t.Errorf("slot 0 holds %d values after 3 days, want one per day", got)
	}
}

// TestAnomalyHistoryPoints: the recent baseline spans anomalyHistoryDays
// days of the series' own cadence, within the memory bounds.
func TestAnomalyHistoryPoints(t *testing.T) {
	for _, tc := range []struct {
		step time.Duration
		want int
	}{
		{5 * time.Minute, 4 * 288},
		{10 * time.Minute, 4 * 144},
		{time.Hour, 96},
		{24 * time.Hour, anomalyHistoryMin},
		{time.Minute, anomalyHistoryMax},
		{0, anomalyHistoryMax},
	} {
		if got := anomalyHistoryPoints(tc.step); got != tc.want {
			t.Errorf("anomalyHistoryPoints(%s) = %d, want %d", tc.step, got, tc.want)
		}
	}
	d := newAnomalyDetector(anomalyParams{warmUp: 30, seasonality: "auto", step: 10 * time.Minute})
	if got := len(d.point.recent.ring); got != 4*144 {
		t.Errorf("detector at a 10-minute cadence keeps %d points, want %d", got, 4*144)
	}
}

// BenchmarkAnomalyDetectorUpdate measures one point through the detector
// in the steady state (seasonal baseline in use, windows full), for the
// shipped recent-baseline length and the former one-day length.
func BenchmarkAnomalyDetectorUpdate(b *testing.B) {
	const step = 5 * time.Minute
	vals := anomalyNoise(8*2016, 1000, 40, 7)
	for i := range vals {
		vals[i] += 300 * math.Sin(2*math.Pi*float64(i%288)/288)
	}
	for _, bc := range []struct {
		name    string
		history int
	}{{"history=4d", 0}, {"history=1d", 288}} {
		b.Run(bc.name, func(b *testing.B) {
			d := newAnomalyDetector(anomalyParams{warmUp: 30, seasonality: "auto", step: step, history: bc.history})
			start := engineTestStart
			warm := 3 * 2016 // past the seasonal switch and with every window full
			for i := 0; i < warm; i++ {
				d.update(start.Add(time.Duration(i)*step), vals[i%len(vals)])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := warm + i
				d.update(start.Add(time.Duration(k)*step), vals[k%len(vals)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
		})
	}
}
