package alerts

import (
	"math"
	"sort"
	"time"

	"lookout/config"
)

// Default levels of the anomaly rule, in calibrated robust z units: how
// many robust standard deviations (1.4826×MAD of the baseline's recent
// errors) a point lies from its baseline, scaled down for series whose
// own tail is heavier than a Gaussian's (see anomalyModel). For a
// well-behaved series yellow means 10 robust sigmas; for a heavy-tailed
// one, 10/6 of its usual 99th-percentile deviation; where the recent
// distribution also takes a shape never seen before, half that (see
// anomalyShiftGate). Chosen once for all series by cross-validation on the
// NAB subset (nab_cv_test.go, BENCHMARKS.md), never per series.
const (
	DefaultAnomalyYellow = 10.0
	DefaultAnomalyRed    = 15.0
)

// Defaults of the anomaly detector.
const (
	anomalyDefaultWarmUp  = 30   // points before a point may be scored
	anomalyHistoryDays    = 4    // days of points in the recent baseline and residual scale
	anomalyHistoryMin     = 96   // points in them at least (slow series)
	anomalyHistoryMax     = 1152 // and at most: 4 days at a 5-minute cadence
	anomalySeasonDays     = 7    // previous periods per seasonal slot
	anomalyMaxSlotsPerDay = 288  // seasonal resolution: 5 minutes at most
	anomalyFlatMin        = 12   // identical points before a flatline counts
)

// Tail calibration and time scales of the detector (see anomalyModel).
const (
	anomalyTailHistory = 2016 // |z| values remembered: a week of 5-minute points
	anomalyTailQ       = 0.99 // the quantile of past |z| that marks "usual"
	anomalyTailMin     = 288  // |z| values needed before calibrating
	anomalyTailRef     = 6.0  // a |z| a Gaussian series practically never reaches
	anomalySmoothSpan  = 12   // points averaged for the sustained-change scale
)

// anomalyShiftGate is the fraction of the level a deviation needs when
// the relative-entropy member (anomaly_entropy.go) sees a new regime at
// that point: z is divided by it there, so with the default levels a
// point that both deviates by 5 calibrated sigmas and changes the shape of
// the recent distribution alerts. 1 would switch the member off. Chosen
// with the level by cross-validation on the NAB subset (nab_cv_test.go),
// not by hand.
const anomalyShiftGate = 0.5

// anomalyParams configures one detector.
type anomalyParams struct {
	warmUp      int
	seasonality string // auto, none, daily, weekly
	step        time.Duration
	history     int // points in the recent baseline; 0: anomalyHistoryPoints(step)
}

func anomalyParamsFor(rc config.RuleConfig, window time.Duration) anomalyParams {
	p := anomalyParams{warmUp: rc.WarmUp, seasonality: rc.Seasonality, step: window}
	if p.warmUp == 0 {
		p.warmUp = anomalyDefaultWarmUp
	}
	if p.seasonality == "" {
		p.seasonality = "auto"
	}
	return p
}

// anomalyHistoryPoints is the length of the recent baseline for a series
// with the given cadence: anomalyHistoryDays days of points, so that the
// median and the residual scale span several whole daily cycles whatever
// the cadence (one day was measured to sit on a knife edge: see
// nab_robust_test.go), within [anomalyHistoryMin, anomalyHistoryMax] to
// bound memory (two sorted windows of this length per model).
func anomalyHistoryPoints(step time.Duration) int {
	n := anomalyHistoryMax
	if step > 0 {
		n = int(anomalyHistoryDays * 24 * time.Hour / step)
	}
	return min(max(n, anomalyHistoryMin), anomalyHistoryMax)
}

// anomalyPoint is one scored point.
type anomalyPoint struct {
	ts       time.Time
	value    float64
	baseline float64
	scale    float64
	z        float64 // signed calibrated robust z (divided by anomalyShiftGate where shift)
	score    float64 // in [0, 1]: z²/(z²+yellow²), 0.5 at the default level
	flat     int     // >0: the series has been flat for this many points
	shift    bool    // the recent distribution fits no regime seen before (z boosted: see anomalyShiftGate)
	span     int     // >0: value is the mean of this many points (sustained change)
	ready    bool    // past warm-up
}

// directional is the number compared with the levels: |z| for both
// directions, z for spikes only (op above), -z for drops only (op below).
func (p anomalyPoint) directional(op string) float64 {
	switch op {
	case "above":
		return p.z
	case "below":
		return -p.z
	}
	return math.Abs(p.z)
}

// AnomalyScore maps a robust z to [0, 1]; the default yellow level maps
// to 0.5.
func AnomalyScore(z float64) float64 {
	z2 := z * z
	return z2 / (z2 + DefaultAnomalyYellow*DefaultAnomalyYellow)
}

// anomalySortedWindow keeps the last n values both in arrival order and
// sorted, so median and MAD cost O(n) memmove instead of a sort.
type anomalySortedWindow struct {
	ring   []float64
	sorted []float64
	next   int
	full   bool
}

func newAnomalySortedWindow(n int) anomalySortedWindow {
	return anomalySortedWindow{ring: make([]float64, n), sorted: make([]float64, 0, n)}
}

func (w *anomalySortedWindow) len() int { return len(w.sorted) }

func (w *anomalySortedWindow) push(x float64) {
	if !w.full {
		w.ring[w.next] = x
		w.next++
		if w.next == len(w.ring) {
			w.next, w.full = 0, true
		}
		i := sort.SearchFloat64s(w.sorted, x)
		w.sorted = append(w.sorted, 0)
		copy(w.sorted[i+1:], w.sorted[i:])
		w.sorted[i] = x
		return
	}
	// Replace the oldest value: only the values between its place and the
	// new one's move, one slot over.
	old := w.ring[w.next]
	w.ring[w.next] = x
	w.next++
	if w.next == len(w.ring) {
		w.next = 0
	}
	s := w.sorted
	i := sort.SearchFloat64s(s, old)
	j := sort.SearchFloat64s(s, x)
	if j > i {
		copy(s[i:j-1], s[i+1:j])
		s[j-1] = x
	} else {
		copy(s[j+1:i+1], s[j:i])
		s[j] = x
	}
}

func (w *anomalySortedWindow) median() float64 {
	n := len(w.sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return w.sorted[n/2]
	}
	return (w.sorted[n/2-1] + w.sorted[n/2]) / 2
}

// mad is the median absolute deviation from m. The deviations below m
// (m-s[hi-1], m-s[hi-2], …) and above it (s[hi]-m, s[hi+1]-m, …) are two
// sorted sequences, so the MAD, the ((n+1)/2)-th smallest deviation, is
// the k-th smallest of two sorted sequences: a binary search, O(log n),
// no allocation.
func (w *anomalySortedWindow) mad(m float64) float64 {
	s := w.sorted
	n := len(s)
	if n == 0 {
		return 0
	}
	split := sort.SearchFloat64s(s, m)
	nl, nr := split, n-split
	below := func(i int) float64 { return m - s[split-1-i] } // i-th smallest deviation below m
	above := func(j int) float64 { return s[split+j] - m }   // j-th smallest above
	k := (n + 1) / 2
	lo, hi := max(0, k-nr), min(k, nl)
	for lo < hi {
		i := int(uint(lo+hi) >> 1)
		if below(i) < above(k-i-1) {
			lo = i + 1
		} else {
			hi = i
		}
	}
	i, j := lo, k-lo
	d := math.Inf(-1)
	if i > 0 {
		d = below(i - 1)
	}
	if j > 0 {
		d = math.Max(d, above(j-1))
	}
	return d
}

// anomalyTailHist remembers the last n values of |z| as counts in
// log-spaced buckets (about 9% wide), so that pushing is O(1) and a high
// quantile costs a scan of the buckets, not a sorted copy of a week of
// points.
type anomalyTailHist struct {
	counts [anomalyTailBuckets]uint16
	ring   []uint8
	next   int
	n      int
}

const (
	anomalyTailBuckets = 240
	anomalyTailLo      = 1e-3 // |z| at the bottom edge of bucket 1
	anomalyTailPerDec  = 24   // buckets per decade: 10^(1/24) ≈ 1.10
)

func newAnomalyTailHist(n int) anomalyTailHist { return anomalyTailHist{ring: make([]uint8, n)} }

func anomalyTailBucket(v float64) uint8 {
	if !(v > anomalyTailLo) {
		return 0
	}
	b := 1 + int(math.Log10(v/anomalyTailLo)*anomalyTailPerDec)
	if b >= anomalyTailBuckets {
		b = anomalyTailBuckets - 1
	}
	return uint8(b)
}

func (h *anomalyTailHist) push(v float64) { h.pushBucket(anomalyTailBucket(v)) }

func (h *anomalyTailHist) pushBucket(b uint8) {
	if h.n == len(h.ring) {
		h.counts[h.ring[h.next]]--
	} else {
		h.n++
	}
	h.ring[h.next] = b
	h.counts[b]++
	h.next++
	if h.next == len(h.ring) {
		h.next = 0
	}
}

// quantile returns the q-quantile of the remembered values, interpolated
// geometrically inside its bucket.
func (h *anomalyTailHist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := q * float64(h.n-1) // values at or below the answer, less one
	cum := 0.0
	for b := 0; b < anomalyTailBuckets; b++ {
		c := float64(h.counts[b])
		if c == 0 || cum+c <= rank {
			cum += c
			continue
		}
		if b == 0 {
			return anomalyTailLo
		}
		frac := (rank - cum + 0.5) / c
		lo := float64(b-1) / anomalyTailPerDec
		return anomalyTailLo * math.Pow(10, lo+frac/anomalyTailPerDec)
	}
	return anomalyTailLo * math.Pow(10, float64(anomalyTailBuckets-1)/anomalyTailPerDec)
}

// anomalyModel is a robust baseline of one series at one time scale.
//
// Baseline: the median of the last anomalyHistoryDays days of points
// (anomalyHistoryPoints); once two whole periods (days) of history exist
// and seasonality is not "none", the
// median of the same slot of the day over the last anomalySeasonDays
// periods, shifted by the recent median residual so that a level change
// already absorbed is not scored again and again. Scale: 1.4826×MAD of the
// recent residuals, floored at the data's resolution and 1% of its level so
// that a perfectly regular series does not turn rounding noise into
// alerts. Tail calibration: heavy-tailed series (chat and mention volumes)
// cross any fixed z every day, so the z is rescaled when the series' own
// recent high quantile of |z| lies above the yellow level: an alert then
// needs a deviation that is rare for this series, not just for a Gaussian.
type anomalyModel struct {
	recent    anomalySortedWindow // raw values
	residuals anomalySortedWindow // residuals against the baseline in use
	tail      anomalyTailHist     // |z| of past points
	slots     [][]float64         // per seasonal slot: ring of previous periods' values
	slotNext  []uint8
	slotEpoch []int64  // period number of each slot's newest value
	slotCount []uint16 // points averaged into each slot's newest value
	seasonal  bool     // the seasonal baseline is in use
}

func newAnomalyModel(nslots, history int) anomalyModel {
	m := anomalyModel{
		recent:    newAnomalySortedWindow(history),
		residuals: newAnomalySortedWindow(history),
		tail:      newAnomalyTailHist(anomalyTailHistory),
	}
	if nslots > 0 {
		m.slots = make([][]float64, nslots)
		m.slotNext = make([]uint8, nslots)
		m.slotEpoch = make([]int64, nslots)
		m.slotCount = make([]uint16, nslots)
	}
	return m
}

// seasonalBaseline is the median of the slot's previous periods.
func (m *anomalyModel) seasonalBaseline(slot int) (float64, bool) {
	vals := m.slots[slot]
	if len(vals) < 2 {
		return 0, false
	}
	var buf [anomalySeasonDays]float64
	c := buf[:len(vals)]
	copy(c, vals)
	sort.Float64s(c)
	n := len(c)
	if n%2 == 1 {
		return c[n/2], true
	}
	return (c[n/2-1] + c[n/2]) / 2, true
}

// score scores x against what the model learned, then learns x. slot < 0:
// no seasonal slot (not enough history or seasonality off).
func (m *anomalyModel) score(x float64, slot int, epoch int64, quantum float64) (z, rawZ, base, scale float64) {
	base = m.recent.median()
	if slot >= 0 {
		if sb, ok := m.seasonalBaseline(slot); ok {
			if !m.seasonal {
				// The model changes: residuals and tail learned against
				// the flat baseline no longer describe its errors.
				m.seasonal = true
				m.residuals = newAnomalySortedWindow(len(m.recent.ring))
				m.tail = newAnomalyTailHist(anomalyTailHistory)
			}
			base = sb + m.residuals.median()
		}
	}
	scale = 1.4826 * m.residuals.mad(m.residuals.median())
	if m.residuals.len() < anomalyDefaultWarmUp {
		if alt := 1.4826 * m.recent.mad(m.recent.median()); alt > scale {
			scale = alt
		}
	}
	floor := 0.01*math.Abs(m.recent.median()) + 1e-9
	if quantum > floor {
		floor = quantum
	}
	if scale < floor {
		scale = floor
	}
	rawZ = (x - base) / scale
	z = rawZ
	if m.tail.n >= anomalyTailMin {
		if q := m.tail.quantile(anomalyTailQ); q > anomalyTailRef {
			z = rawZ * anomalyTailRef / q
		}
	}
	m.tail.push(math.Abs(rawZ))
	m.recent.push(x)
	if m.recent.len() > 1 {
		m.residuals.push(x - base)
	}
	if m.slots != nil && slot >= 0 {
		m.addSeasonal(slot, epoch, x)
	}
	return z, rawZ, base, scale
}

// addSeasonal records x for slot i of period number epoch. A series
// faster than the slot width has several points per slot and period: they
// are averaged into one value, so the slot's ring spans that many periods.
func (m *anomalyModel) addSeasonal(i int, epoch int64, x float64) {
	n := len(m.slots[i])
	if n > 0 && m.slotEpoch[i] == epoch {
		last := n - 1
		if n == anomalySeasonDays {
			last = (int(m.slotNext[i]) + anomalySeasonDays - 1) % anomalySeasonDays
		}
		c := float64(m.slotCount[i])
		m.slots[i][last] = (m.slots[i][last]*c + x) / (c + 1)
		if m.slotCount[i] < math.MaxUint16 {
			m.slotCount[i]++
		}
		return
	}
	m.slotEpoch[i], m.slotCount[i] = epoch, 1
	if n < anomalySeasonDays {
		m.slots[i] = append(m.slots[i], x)
		return
	}
	m.slots[i][m.slotNext[i]] = x
	m.slotNext[i] = (m.slotNext[i] + 1) % anomalySeasonDays
}

// anomalyDetector scores each new point of one series against what it
// learned before that point (no look-ahead), at two time scales: the point
// itself (spikes, drops, level shifts) and the mean of the last
// anomalySmoothSpan points (sustained rises, denser bursts, slow drops),
// and watches for flatlines. The larger calibrated |z| wins.
type anomalyDetector struct {
	p anomalyParams

	n     int
	first time.Time

	point  anomalyModel
	smooth anomalyModel

	span    []float64 // the last anomalySmoothSpan values
	spanSum float64
	spanAt  int

	slotWidth time.Duration
	period    time.Duration // 24h or 7×24h
	nslots    int

	quantum   float64 // smallest step between distinct values seen: the data's resolution
	lastValue float64
	flatRun   int
	flatScale float64 // scale when the current flat run began
	flatLong  int     // longest flat run seen so far: a series with daily plateaus is not broken

	entropy anomalyEntropy // the distribution-shape member (anomaly_entropy.go)
}

func newAnomalyDetector(p anomalyParams) *anomalyDetector {
	d := &anomalyDetector{p: p}
	d.reset()
	return d
}

func (d *anomalyDetector) reset() {
	d.n, d.first = 0, time.Time{}
	d.flatRun, d.flatScale, d.quantum, d.flatLong = 0, 0, 0, 0
	d.span, d.spanSum, d.spanAt = make([]float64, 0, anomalySmoothSpan), 0, 0
	d.nslots = 0
	d.entropy.reset()
	if d.p.seasonality != "none" {
		d.period = 24 * time.Hour
		if d.p.seasonality == "weekly" {
			d.period = 7 * 24 * time.Hour
		}
		perDay := anomalyMaxSlotsPerDay
		if step := d.p.step; step > 0 && int(24*time.Hour/step) < perDay {
			perDay = int(24 * time.Hour / step)
		}
		if perDay < 24 {
			perDay = 24
		}
		d.slotWidth = 24 * time.Hour / time.Duration(perDay)
		d.nslots = int(d.period / d.slotWidth)
	}
	history := d.p.history
	if history <= 0 {
		history = anomalyHistoryPoints(d.p.step)
	}
	d.point = newAnomalyModel(d.nslots, history)
	d.smooth = newAnomalyModel(d.nslots, history)
}

// slot is ts's seasonal slot, or -1 while there is less than two whole
// periods of history (or no seasonality).
func (d *anomalyDetector) slot(ts time.Time) int {
	if d.nslots == 0 || ts.Sub(d.first) < 2*d.period {
		if d.nslots == 0 {
			return -1
		}
		// Still learn the slots from the start.
		return -2 - d.rawSlot(ts)
	}
	return d.rawSlot(ts)
}

func (d *anomalyDetector) rawSlot(ts time.Time) int {
	off := time.Duration(ts.UnixNano() % int64(d.period))
	if off < 0 {
		off += d.period
	}
	return int(off / d.slotWidth)
}

// update scores x at ts against the past, then learns from it.
func (d *anomalyDetector) update(ts time.Time, x float64) anomalyPoint {
	p := anomalyPoint{ts: ts, value: x}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return p
	}
	if d.n == 0 {
		d.first = ts
	}
	if d.n > 0 {
		if dv := math.Abs(x - d.lastValue); dv > 0 && (d.quantum == 0 || dv < d.quantum) {
			d.quantum = dv
		}
	}
	slot := d.slot(ts)
	var epoch int64
	if d.nslots > 0 {
		epoch = ts.UnixNano() / int64(d.period)
	}
	z, _, base, scale := d.point.scoreSlot(x, slot, epoch, d.quantum)
	p.z, p.baseline, p.scale = z, base, scale

	// The smoothed series: mean of the last span points.
	if len(d.span) < anomalySmoothSpan {
		d.span = append(d.span, x)
	} else {
		d.spanSum -= d.span[d.spanAt]
		d.span[d.spanAt] = x
		d.spanAt = (d.spanAt + 1) % anomalySmoothSpan
	}
	d.spanSum += x
	if len(d.span) == anomalySmoothSpan {
		mean := d.spanSum / anomalySmoothSpan
		sz, _, sbase, sscale := d.smooth.scoreSlot(mean, slot, epoch, d.quantum/anomalySmoothSpan)
		if math.Abs(sz) > math.Abs(p.z) {
			p.z, p.baseline, p.scale, p.value, p.span = sz, sbase, sscale, mean, anomalySmoothSpan
		}
	}

	// Flatline: the same value again and again where the series used to
	// move.
	if d.n > 0 && x == d.lastValue {
		if d.flatRun == 0 {
			d.flatScale = scale
		}
		d.flatRun++
	} else {
		if d.flatRun+1 > d.flatLong {
			d.flatLong = d.flatRun + 1
		}
		d.flatRun = 0
	}
	flatMin := anomalyFlatMin
	if 2*d.flatLong > flatMin {
		flatMin = 2 * d.flatLong
	}
	floor := math.Max(d.quantum, 1e-6*math.Max(1, math.Abs(x)))
	if d.flatRun+1 >= flatMin && d.quantum > 0 && d.flatScale > floor {
		p.flat = d.flatRun + 1
		if math.Abs(p.z) < DefaultAnomalyYellow {
			p.z = -DefaultAnomalyYellow
			p.value, p.span = x, 0
		}
	}
	// Ensemble with the relative-entropy member: a point whose window has
	// a shape never seen before needs only anomalyShiftGate of the usual
	// deviation to count, so z is divided by the gate.
	if p.shift = d.entropy.update(x); p.shift {
		p.z /= anomalyShiftGate
	}
	p.score = AnomalyScore(p.z)
	p.ready = d.n >= d.p.warmUp
	d.lastValue = x
	d.n++
	return p
}

// scoreSlot maps the detector's slot encoding for the model: slots below
// -1 are learned but not yet used for the baseline.
func (m *anomalyModel) scoreSlot(x float64, slot int, epoch int64, quantum float64) (z, rawZ, base, scale float64) {
	if slot <= -2 {
		learn := -2 - slot
		z, rawZ, base, scale = m.score(x, -1, epoch, quantum)
		if m.slots != nil {
			m.addSeasonal(learn, epoch, x)
		}
		return
	}
	return m.score(x, slot, epoch, quantum)
}
