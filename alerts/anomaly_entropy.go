package alerts

import "math"

// The relative-entropy member of the anomaly detector: a streaming form of
// the multiple-hypothesis relative-entropy test of Wang et al. ("Statistical
// techniques for online anomaly detection in data centers", 2011), the
// method behind NAB's "relativeEntropy" detector. It watches the shape of
// the recent distribution rather than the size of one deviation: the last
// anomalyEntropyWindow values are quantised into anomalyEntropyBins bins
// over the range the series has shown, and the window's histogram is
// tested (G-test: 2·W·KL against the chi-squared 99% point) against the
// histograms of the regimes seen so far. A window that fits none of them
// is a new regime: that point is flagged, and the window's histogram
// becomes a regime of its own.
//
// Differences from the batch original: the bins span the range of the
// values seen so far (not the whole file's, which a streaming detector
// cannot know; a value beyond that range by more than a bin starts the
// regimes afresh and is itself flagged), and the regimes kept are bounded (anomalyEntropyMaxHyp,
// the least-used one giving way), so memory and the cost of a point are
// fixed: O(window + regimes × bins).
const (
	anomalyEntropyBins   = 5
	anomalyEntropyWindow = 52
	anomalyEntropyMaxHyp = 64
	// anomalyEntropyRest is how long after a flag new shapes are learned
	// without being flagged: two windows, one for the window to fill with
	// the new regime and one for its noise to show its usual shapes.
	anomalyEntropyRest = 2 * anomalyEntropyWindow
	// anomalyEntropyT is the chi-squared 99% point with bins-1 = 4
	// degrees of freedom.
	anomalyEntropyT = 13.276704135987622
)

type anomalyEntropy struct {
	ring   [anomalyEntropyWindow]float64
	n      int // values in ring
	next   int
	lo, hi float64 // range of the values seen so far
	hyp    [][anomalyEntropyBins]float64
	count  []int // windows that matched each regime
	// the range the regimes' bins were computed over: when it grows by
	// more than a bin's width the regimes no longer describe the same bins
	// and are forgotten.
	hypLo, hypHi float64
	rest         int // points left in which a new regime is learned but not flagged
}

func (e *anomalyEntropy) reset() {
	*e = anomalyEntropy{hyp: e.hyp[:0], count: e.count[:0]}
}

// update learns x and reports whether the window ending at x fits none of
// the regimes seen so far. One change of regime is one flag: the windows
// that follow it mix the old and the new regime, each a shape of its own,
// so a new shape within anomalyEntropyRest points of the last one is
// learned without being flagged (and extends the rest).
func (e *anomalyEntropy) update(x float64) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return false
	}
	if !e.learn(x) {
		if e.rest > 0 {
			e.rest--
		}
		return false
	}
	resting := e.rest > 0
	e.rest = anomalyEntropyRest
	return !resting
}

func (e *anomalyEntropy) learn(x float64) bool {
	e.ring[e.next] = x
	e.next = (e.next + 1) % anomalyEntropyWindow
	if e.n == 0 || x < e.lo {
		e.lo = x
	}
	if e.n == 0 || x > e.hi {
		e.hi = x
	}
	if e.n < anomalyEntropyWindow {
		e.n++
		if e.n < anomalyEntropyWindow {
			return false
		}
	}
	width := (e.hi - e.lo) / anomalyEntropyBins
	if !(width > 0) {
		return false // a constant series: no shape to compare
	}
	grown := false
	if len(e.hyp) > 0 {
		if oldW := (e.hypHi - e.hypLo) / anomalyEntropyBins; e.lo < e.hypLo-oldW || e.hi > e.hypHi+oldW {
			// A value beyond the known range by more than a bin: a new
			// regime by definition, and the old regimes' bins no longer
			// line up with the new ones.
			e.hyp, e.count = e.hyp[:0], e.count[:0]
			grown = true
		}
	}
	var p [anomalyEntropyBins]float64
	for _, v := range e.ring {
		b := int((v - e.lo) / width)
		b = min(max(b, 0), anomalyEntropyBins-1)
		p[b] += 1.0 / anomalyEntropyWindow
	}
	if len(e.hyp) == 0 {
		e.hyp, e.count = append(e.hyp, p), append(e.count, 1)
		e.hypLo, e.hypHi = e.lo, e.hi
		return grown
	}
	best, bestStat := -1, math.Inf(1)
	for i := range e.hyp {
		stat := 2 * anomalyEntropyWindow * anomalyKL(&p, &e.hyp[i])
		if stat < anomalyEntropyT && stat < bestStat {
			best, bestStat = i, stat
		}
	}
	if best >= 0 {
		e.count[best]++
		return false
	}
	if len(e.hyp) < anomalyEntropyMaxHyp {
		e.hyp, e.count = append(e.hyp, p), append(e.count, 1)
	} else {
		least := 0
		for i := range e.count {
			if e.count[i] < e.count[least] {
				least = i
			}
		}
		e.hyp[least], e.count[least] = p, 1
	}
	return true
}

// anomalyKL is the relative entropy Σ p·ln(p/q): +Inf where p has mass q
// lacks.
func anomalyKL(p, q *[anomalyEntropyBins]float64) float64 {
	var s float64
	for i, pi := range p {
		if pi == 0 {
			continue
		}
		if q[i] == 0 {
			return math.Inf(1)
		}
		s += pi * math.Log(pi/q[i])
	}
	return s
}
