package alerts

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func entropyFlags(e *anomalyEntropy, vals []float64) []int {
	var out []int
	for i, v := range vals {
		if e.update(v) {
			out = append(out, i)
		}
	}
	return out
}

func TestAnomalyEntropyRegimes(t *testing.T) {
	cases := []struct {
		name   string
		series func() []float64
		want   func(flags []int) bool
		desc   string
	}{
		{"a constant series has no shape", func() []float64 {
			v := make([]float64, 500)
			for i := range v {
				v[i] = 7
			}
			return v
		}, func(f []int) bool { return len(f) == 0 }, "no flag"},
		{"NaN and Inf are ignored", func() []float64 {
			v := make([]float64, 300)
			for i := range v {
				v[i] = math.NaN()
			}
			v[5] = math.Inf(1)
			return v
		}, func(f []int) bool { return len(f) == 0 }, "no flag"},
		// Noise alone makes a new shape now and then (a new extreme): the
		// member only lowers the level a deviation needs, it never alerts
		// on its own. What matters is one flag per change, at the change.
		{"a level shift is one flag, at the shift", func() []float64 {
			v := anomalyNoise(2000, 100, 5, 31)
			for i := 1500; i < len(v); i++ {
				v[i] += 200
			}
			return v
		}, func(f []int) bool {
			n, at := 0, -1
			for _, i := range f {
				if i >= 1500 {
					n++
					at = max(at, i)
				}
			}
			return n == 1 && at == 1500
		}, "exactly one flag from row 1500 on, at row 1500"},
		{"a spike is flagged where it happens", func() []float64 {
			v := anomalyNoise(2000, 100, 5, 32)
			v[1700] = 400
			return v
		}, func(f []int) bool {
			for _, i := range f {
				if i == 1700 {
					return true
				}
			}
			return false
		}, "a flag at row 1700"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e anomalyEntropy
			if got := entropyFlags(&e, tc.series()); !tc.want(got) {
				t.Errorf("flags at %v, want %s", got, tc.desc)
			}
		})
	}
}

// Memory and work per point stay bounded however many regimes a series
// goes through, and reset forgets everything: the same input gives the
// same flags again.
func TestAnomalyEntropyBoundedAndReset(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	vals := make([]float64, 60000)
	for i := range vals {
		// A new distribution shape every 200 points.
		k := float64(i / 200 % 37)
		vals[i] = math.Pow(r.Float64(), 1+k/5) * (1 + k)
	}
	var e anomalyEntropy
	first := entropyFlags(&e, vals)
	if len(e.hyp) > anomalyEntropyMaxHyp || cap(e.hyp) > anomalyEntropyMaxHyp || len(e.count) != len(e.hyp) {
		t.Errorf("%d regimes kept (cap %d), at most %d", len(e.hyp), cap(e.hyp), anomalyEntropyMaxHyp)
	}
	if len(first) == 0 {
		t.Fatal("no regime change flagged in a series made of them")
	}
	e.reset()
	if again := entropyFlags(&e, vals); !equalInts(first, again) {
		t.Errorf("after reset: %d flags, first run %d", len(again), len(first))
	}
}

// The whole detector is deterministic and reset returns it to new.
func TestAnomalyDetectorReset(t *testing.T) {
	vals := anomalyNoise(3000, 100, 5, 35)
	for i := 2000; i < 2100; i++ {
		vals[i] += 80
	}
	p := anomalyParams{warmUp: 30, seasonality: "auto", step: 5 * time.Minute}
	run := func(d *anomalyDetector) []anomalyPoint {
		out := make([]anomalyPoint, len(vals))
		for i, v := range vals {
			out[i] = d.update(engineTestStart.Add(time.Duration(i)*5*time.Minute), v)
		}
		return out
	}
	d := newAnomalyDetector(p)
	a := run(d)
	d.reset()
	b := run(d)
	c := run(newAnomalyDetector(p))
	shifts := 0
	for i := range a {
		if a[i] != b[i] || a[i] != c[i] {
			t.Fatalf("point %d: %+v first run, %+v after reset, %+v fresh", i, a[i], b[i], c[i])
		}
		if a[i].shift {
			shifts++
			if a[i].score < 0 || a[i].score > 1 {
				t.Fatalf("point %d: score %v", i, a[i].score)
			}
		}
	}
	if shifts == 0 {
		t.Error("the entropy member never flagged the level change")
	}
}
