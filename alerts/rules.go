package alerts

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"text/template"
	"time"

	"lookout/config"
	"lookout/internal/labels"
	"lookout/item"
)

// Rule kinds, as written in config.
const (
	KindNegativeRatio   = "negative_ratio"
	KindKeywordBurst    = "keyword_burst"
	KindVolumeSpike     = "volume_spike"
	KindMetricThreshold = "metric_threshold"
	KindMetricDrop      = "metric_drop"
	// KindMetricTrend alerts on a slow, steady change of a metric: the
	// fitted line through the window's bucket means falls (op below, the
	// default) or rises (op above) by at least the level, as a fraction of
	// where it started.
	KindMetricTrend = "metric_trend"
	KindAnomaly     = "anomaly"
	KindAbsent      = "absent"
	// KindSourceBroken alerts while a source is reported broken
	// (item.MetricSourceBroken): its polls or connections keep failing,
	// its login, cookie or signature is refused, it sends nothing usable,
	// its pages stopped yielding items, or its collector gave up.
	KindSourceBroken = "source_broken"
)

// volumeSpikeHistory is how many previous windows a volume_spike baseline
// averages.
const volumeSpikeHistory = 4

// Metrics the engine derives from the items themselves, for metric_drop
// and metric_trend, as amounts per minute: MetricChatRate counts messages
// (chat, comments, posts, super chats: how much the room talks),
// MetricGiftValue sums the value of gifts and super chats.
const (
	MetricChatRate  = "chat_rate"
	MetricGiftValue = "gift_value"
)

// ruleRateAmount is what an item adds to a derived rate metric, if anything.
func ruleRateAmount(metric string, it *item.Item) (float64, bool) {
	switch metric {
	case MetricChatRate:
		return 1, it.Kind.Textual() && it.Kind != item.KindGift
	case MetricGiftValue:
		return it.Value, it.Kind == item.KindGift || it.Kind == item.KindSuperChat
	}
	return 0, false
}

// ruleMinZ is how many binomial standard deviations the current share or
// rate must lie above the room's baseline before the excess counts: at 200
// messages a second a one-point wobble is "above the baseline" but means
// nothing.
const ruleMinZ = 3

// ruleDefaultMinMatches is the fewest matches a keyword rate is judged on.
const ruleDefaultMinMatches = 3

// defaultHysteresis is the fraction of the lowest level a value must fall
// back past before a firing alert may resolve.
const defaultHysteresis = 0.1

// ruleSignal is one measured quantity over one window: the rule's own, or
// one condition of a combined rule. Each signal keeps its own series per
// key.
type ruleSignal struct {
	idx       int // index into keyEntry.series
	kind      string
	window    time.Duration
	minVolume int
	group     string
	category  string
	metric    string
	op        string // metric_threshold: above/below; anomaly: direction
	anomaly   anomalyParams
	sampleCap int
	kwBit     int // keyword_burst: its bit in msgRecord.kw (-1: none)

	// Judged against the key's own history (see config.RuleConfig).
	baseline       time.Duration
	minHistory     time.Duration
	floor          *float64
	per            float64
	minMatches     int
	complaintsOnly bool
	rate           bool // metric is derived from the items (MetricChatRate, MetricGiftValue)

	// condition bounds (combined rules only)
	above, below *float64
}

// signalSeries is one signal's state for one key.
type signalSeries struct {
	ring      windowRing
	samples   sampleRing
	firstSeen time.Time
	lastSeen  time.Time

	lastValue float64 // latest metric value
	lastTS    time.Time

	// absent: the room's latest item.MetricLiveStatus said the stream is
	// off (0); statusTS is that sample's time.
	offAir   bool
	statusTS time.Time

	// base holds the key's recent history for a baseline (coarser
	// buckets than ring, spanning window + baseline). ref is the baseline
	// last computed; refHeld keeps it while the rule's alert is open.
	base     windowRing
	ref      windowBucket
	refShare float64 // negative_ratio: the median share of the baseline's buckets
	refOK    bool
	refHeld  bool
	refAt    int64         // the baseline's end, in base buckets, when last computed
	refSpan  time.Duration // metric_drop: the part of the baseline's span the engine saw
	pts      []windowPoint // metric_trend scratch
	shares   []float64     // negative_ratio scratch

	// streamStart is when the key's current stream began (set by the
	// engine); stage is what earlier streams looked like at each minute
	// (negative_ratio with a baseline).
	streamStart time.Time
	stage       *stageProfile

	// gaps are the latest spans the engine did not see (the daemon was
	// down between its last saved profile and its restart): unseen, not
	// silent. Rates and history lengths leave them out.
	// gapOpen: the latest gap lasts until the key's first item after the
	// restart (its collector was still connecting), not just until the
	// restart.
	gaps    [seriesMaxGaps]seriesGap
	ngaps   int
	gapOpen bool

	det      *anomalyDetector
	detSaved time.Time // the engine's clock when a profile last took det
	volIdx   int64     // anomaly over volume: bucket being counted
	volCount float64
	volOpen  bool
	point    anomalyPoint // latest scored point
}

// seriesMaxGaps is how many unseen spans a series remembers; an older one
// has left every window by the time a few more restarts happened.
const seriesMaxGaps = 4

// seriesGap is a span [from, to) in unix nanoseconds the engine did not see.
type seriesGap struct{ from, to int64 }

// addGap records [from, to) as unseen, forgetting the oldest span when
// full.
func (s *signalSeries) addGap(from, to time.Time) {
	if !to.After(from) {
		return
	}
	g := seriesGap{from.UnixNano(), to.UnixNano()}
	if s.ngaps == len(s.gaps) {
		copy(s.gaps[:], s.gaps[1:])
		s.ngaps--
	}
	s.gaps[s.ngaps] = g
	s.ngaps++
}

// gapsAt copies the series' gaps into buf as they stand at `at`: an open
// gap (no item of the key since the restart) lasts until at. Reading
// leaves the series as it is; closeGap ends the gap when an item comes.
func (s *signalSeries) gapsAt(at time.Time, buf *[seriesMaxGaps]seriesGap) []seriesGap {
	g := buf[:s.ngaps]
	copy(g, s.gaps[:s.ngaps])
	if s.gapOpen && s.ngaps > 0 {
		last := &g[s.ngaps-1]
		last.to = max(last.to, at.UnixNano())
	}
	return g
}

// unseen is how much of [from, to) lies in the series' gaps.
func (s *signalSeries) unseen(from, to time.Time) time.Duration {
	if s.ngaps == 0 {
		return 0
	}
	var buf [seriesMaxGaps]seriesGap
	return gapOverlap(s.gapsAt(to, &buf), from.UnixNano(), to.UnixNano())
}

// closeGap ends an open gap at ts, the key's first item since the restart.
func (s *signalSeries) closeGap(ts time.Time) {
	if s.gapOpen && s.ngaps > 0 {
		last := &s.gaps[s.ngaps-1]
		last.to = max(last.to, ts.UnixNano())
	}
	s.gapOpen = false
}

func gapOverlap(gaps []seriesGap, from, to int64) time.Duration {
	var d int64
	for _, g := range gaps {
		if lo, hi := max(g.from, from), min(g.to, to); hi > lo {
			d += hi - lo
		}
	}
	return time.Duration(d)
}

// seen is how much of [from, to) the engine saw.
func (s *signalSeries) seen(from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	return to.Sub(from) - s.unseen(from, to)
}

// ruleFigure is one named number behind a decision.
type ruleFigure struct {
	name string
	v    float64
}

// ruleFigures is a fixed-size list so that evaluation does not allocate.
type ruleFigures struct {
	list [10]ruleFigure
	n    int
}

func (f *ruleFigures) add(name string, v float64) {
	if f.n < len(f.list) {
		f.list[f.n] = ruleFigure{name, v}
		f.n++
	}
}

func (f *ruleFigures) get(name string) float64 {
	for i := 0; i < f.n; i++ {
		if f.list[i].name == name {
			return f.list[i].v
		}
	}
	return 0
}

// signalResult is what evaluating a signal for a key at a time yields.
type signalResult struct {
	ok      bool    // enough data to judge at all
	unseen  bool    // no verdict because the engine was down for most of the window
	value   float64 // the number compared with levels / bounds
	figures ruleFigures
}

func newSignalSeries(sig *ruleSignal, now time.Time) *signalSeries {
	s := &signalSeries{firstSeen: now}
	if sig.baseline > 0 {
		s.base = newWindowRing(sig.window+sig.baseline, 1)
	}
	switch sig.kind {
	case KindNegativeRatio, KindKeywordBurst:
		s.ring = newWindowRing(sig.window, 1)
		s.samples = newSampleRing(sig.sampleCap)
	case KindVolumeSpike:
		s.ring = newWindowRing(sig.window, 1+volumeSpikeHistory)
		s.samples = newSampleRing(sig.sampleCap)
	case KindMetricDrop:
		s.ring = newWindowRing(sig.window, 2)
	case KindMetricTrend:
		s.ring = newWindowRing(sig.window, 1)
	case KindAnomaly:
		s.det = newAnomalyDetector(sig.anomaly)
		if sig.metric == "" {
			s.samples = newSampleRing(sig.sampleCap)
		}
	}
	return s
}

// wants reports whether the signal counts the item at all (after the
// rule's match).
func (sig *ruleSignal) wants(it *item.Item) bool {
	switch sig.kind {
	case KindNegativeRatio, KindKeywordBurst:
		return it.Kind.Textual()
	case KindVolumeSpike:
		return it.Kind != item.KindMetric
	case KindMetricDrop, KindMetricTrend:
		if sig.rate {
			_, ok := ruleRateAmount(sig.metric, it)
			return ok
		}
		return it.Kind == item.KindMetric && it.Metric == sig.metric
	case KindMetricThreshold:
		return it.Kind == item.KindMetric && it.Metric == sig.metric
	case KindAnomaly:
		if sig.metric != "" {
			return it.Kind == item.KindMetric && it.Metric == sig.metric
		}
		return it.Kind != item.KindMetric
	case KindAbsent:
		// A health report is not the source speaking: a broken source
		// that reports so is still silent.
		return it.Metric != item.MetricSourceBroken
	}
	return false
}

// complains reports whether a message that matched a keyword group
// complains rather than asks: the classifier calls it negative (label),
// or it is not a question.
func complains(label item.Label, question bool) bool {
	return label == item.Negative || !question
}

func (sig *ruleSignal) keywordHit(sc *item.Score) bool {
	if sig.group != "" && sc.HasGroup(sig.group) {
		return true
	}
	return sig.category != "" && sc.HasCategory(sig.category)
}

// keywordBit is sig's bit in a message's keyword mask (msgRecord.kw) when
// sc matched its group or category, else 0.
func (sig *ruleSignal) keywordBit(sc *item.Score) uint64 {
	if sig.kwBit < 0 || len(sc.Groups) == 0 || !sig.keywordHit(sc) {
		return 0
	}
	return 1 << sig.kwBit
}

func ruleSample(it *item.Item, ts time.Time) Sample {
	if !it.TS.IsZero() {
		ts = it.TS // show when it was said, even if it counted on arrival
	}
	return Sample{Source: it.Source, Author: it.Author, Text: it.Text, TS: ts, Score: it.Score.Value}
}

// observe updates the series with one item at ts. It reports false for a
// late item that no longer fits the window. id is the message's msgHash
// (0: none), kept with its sample so that a delete can withdraw it.
func (sig *ruleSignal) observe(s *signalSeries, it *item.Item, ts time.Time, id uint64) bool {
	if ts.After(s.lastSeen) {
		s.lastSeen = ts
	}
	switch sig.kind {
	case KindNegativeRatio:
		if !it.Score.Scored {
			return true
		}
		b := s.ring.at(ts)
		if b == nil {
			return false
		}
		neg := it.Score.Label == item.Negative
		sig.count(s, ts, b, true, neg, false, 1)
		if neg {
			s.samples.add(ruleSample(it, ts), ts, id)
		}
	case KindKeywordBurst:
		b := s.ring.at(ts)
		if b == nil {
			return false
		}
		hit := sig.keywordHit(&it.Score) && (!sig.complaintsOnly || complains(it.Score.Label, it.Score.Question))
		sig.count(s, ts, b, false, false, hit, 1)
		if hit {
			s.samples.add(ruleSample(it, ts), ts, id)
		}
	case KindVolumeSpike:
		b := s.ring.at(ts)
		if b == nil {
			return false
		}
		b.items++
		if it.Kind.Textual() && it.Text != "" {
			s.samples.add(ruleSample(it, ts), ts, 0)
		}
	case KindMetricThreshold:
		if !ts.Before(s.lastTS) {
			s.lastValue, s.lastTS = it.Value, ts
		}
	case KindMetricDrop:
		b := s.ring.at(ts)
		if b == nil {
			return false
		}
		v := it.Value
		if sig.rate {
			v, _ = ruleRateAmount(sig.metric, it)
		}
		b.sum += v
		b.cnt++
		if !ts.Before(s.lastTS) {
			s.lastValue, s.lastTS = v, ts
		}
		if sig.baseline > 0 {
			if bb := s.base.at(ts); bb != nil {
				bb.sum += v
				bb.cnt++
			}
		}
	case KindMetricTrend:
		b := s.ring.at(ts)
		if b == nil {
			return false
		}
		v := it.Value
		if sig.rate {
			v, _ = ruleRateAmount(sig.metric, it)
		}
		b.sum += v
		b.cnt++
	case KindAbsent:
		if it.Kind == item.KindMetric && it.Metric == item.MetricLiveStatus && !ts.Before(s.statusTS) {
			s.statusTS = ts
			s.offAir = it.Value == 0
		}
	case KindAnomaly:
		if sig.metric != "" {
			// A gauge: every sample is a point of the series.
			if ts.Before(s.lastTS) {
				return false
			}
			s.lastValue, s.lastTS = it.Value, ts
			s.point = s.det.update(ts, it.Value)
			return true
		}
		// Volume: points are item counts per window, closed as time
		// passes (here or in evaluate).
		idx := ts.UnixNano() / int64(sig.window)
		if s.volOpen && idx < s.volIdx {
			return false
		}
		sig.advanceVolume(s, idx)
		s.volCount++
		if it.Kind.Textual() && it.Text != "" {
			s.samples.add(ruleSample(it, ts), ts, 0)
		}
	}
	return true
}

// count adds one message (delta 1) to, or takes it back (delta -1) from,
// the buckets of a negative_ratio or keyword_burst series at ts: its
// window (cur: the window's bucket for ts, nil when the ring no longer
// holds it), its baseline and, for negative_ratio, its stream's minutes.
// scored and neg describe a negative_ratio message, hit a keyword_burst
// one. A bucket the ring no longer holds is left alone: the message has
// left the window.
func (sig *ruleSignal) count(s *signalSeries, ts time.Time, cur *windowBucket, scored, neg, hit bool, delta int) {
	add := func(b *windowBucket) {
		if b == nil {
			return
		}
		switch sig.kind {
		case KindNegativeRatio:
			if !scored {
				return
			}
			b.items = bumpCount(b.items, delta)
			b.scored = bumpCount(b.scored, delta)
			if neg {
				b.neg = bumpCount(b.neg, delta)
			}
		case KindKeywordBurst:
			b.items = bumpCount(b.items, delta)
			if hit {
				b.hits = bumpCount(b.hits, delta)
			}
		}
	}
	add(cur)
	if sig.baseline > 0 {
		if delta > 0 {
			add(s.base.at(ts))
		} else {
			add(s.base.held(ts))
			if !s.refHeld {
				s.refAt = math.MinInt64 // the baseline changed: compute it again
			}
		}
	}
	if sig.kind == KindNegativeRatio && scored && sig.baseline > 0 && !s.streamStart.IsZero() {
		switch {
		case delta > 0:
			if s.stage == nil {
				s.stage = &stageProfile{}
			}
			s.stage.observe(s.streamStart, ts, neg)
		case s.stage != nil && s.stage.start.Equal(s.streamStart):
			s.stage.unobserve(ts, neg)
		}
	}
}

func bumpCount(v uint32, delta int) uint32 {
	if delta < 0 {
		if v == 0 {
			return 0
		}
		return v - 1
	}
	return v + 1
}

// anomalyMaxGap bounds how many empty buckets a silent volume series feeds
// its detector at once; beyond it the series is treated as restarting.
const anomalyMaxGap = 10000

// advanceVolume closes the volume buckets before idx, feeding their counts
// (zeros for empty ones) to the detector.
func (sig *ruleSignal) advanceVolume(s *signalSeries, idx int64) {
	if !s.volOpen {
		s.volIdx, s.volCount, s.volOpen = idx, 0, true
		return
	}
	if idx <= s.volIdx {
		return
	}
	w := int64(sig.window)
	// A bucket the engine did not see all of (it was down, or its
	// collector was reconnecting) is no point: its count is too low, and
	// the empty buckets of the downtime are not silence.
	unseen := func(i int64) bool {
		return s.ngaps > 0 && s.unseen(time.Unix(0, i*w), time.Unix(0, (i+1)*w)) > 0
	}
	if !unseen(s.volIdx) {
		s.point = s.det.update(time.Unix(0, s.volIdx*w), s.volCount)
	}
	gap := idx - s.volIdx - 1
	if gap > anomalyMaxGap && s.seen(time.Unix(0, (s.volIdx+1)*w), time.Unix(0, idx*w)) > time.Duration(anomalyMaxGap*w) {
		s.det.reset()
		gap = 0
	}
	for i := s.volIdx + 1; i <= s.volIdx+gap; i++ {
		if !unseen(i) {
			s.point = s.det.update(time.Unix(0, i*w), 0)
		}
	}
	s.volIdx, s.volCount = idx, 0
}

// evaluate computes the signal for one key at now.
func (sig *ruleSignal) evaluate(s *signalSeries, now time.Time) signalResult {
	var r signalResult
	win := sig.window
	switch sig.kind {
	case KindNegativeRatio, KindKeywordBurst, KindVolumeSpike:
		// Counts over a window the engine was partly down for are too
		// low: more than half unseen, no verdict (a firing alert is
		// neither confirmed nor resolved by the minutes it missed).
		if s.ngaps > 0 && 2*s.unseen(now.Add(-win), now) > win {
			r.unseen = true
			return r
		}
	}
	switch sig.kind {
	case KindNegativeRatio:
		b := s.ring.sum(now, 0)
		r.figures.add("items", float64(b.scored))
		r.figures.add("negative", float64(b.neg))
		if b.scored > 0 {
			r.value = float64(b.neg) / float64(b.scored)
		}
		r.figures.add("negative_ratio", r.value)
		r.ok = b.scored > 0 && int(b.scored) >= sig.minVolume
		if sig.baseline > 0 && r.ok {
			_, ok := sig.reference(s, now, func(b *windowBucket) bool { return int(b.scored) >= sig.minVolume })
			stageShare, stageOK := 0.0, false
			if s.stage != nil && !s.streamStart.IsZero() {
				stageShare, stageOK = s.stage.share(now.Sub(s.streamStart), sig.minVolume)
			}
			if !ok && !stageOK {
				r.ok = false
				return r
			}
			// The room's normal: its recent past, or what its earlier
			// streams looked like at this point, whichever is higher. At
			// the start of a stream, with no recent past yet, earlier
			// streams alone.
			base := s.refShare
			if stageOK {
				r.figures.add("stage_ratio", stageShare)
				if !ok || stageShare > base {
					base = stageShare
				}
			}
			r.figures.add("baseline_ratio", base)
			cur := r.value
			r.value = sig.excess(cur, base, float64(b.scored))
			if sig.floor != nil && cur < *sig.floor {
				r.value = 0
			}
			r.figures.add("excess", r.value)
		}
	case KindKeywordBurst:
		b := s.ring.sum(now, 0)
		r.value = float64(b.hits)
		r.figures.add("items", float64(b.items))
		r.figures.add("matches", float64(b.hits))
		r.ok = int(b.items) >= sig.minVolume
		if sig.per > 0 {
			r.ok = r.ok && b.items > 0
			if !r.ok {
				return r
			}
			cur := float64(b.hits) / float64(b.items)
			r.value = cur * sig.per
			r.figures.add("rate", r.value)
			if sig.baseline > 0 {
				ref, ok := sig.reference(s, now, func(b *windowBucket) bool { return b.items > 0 })
				if !ok {
					r.ok = false
					return r
				}
				base := float64(ref.hits) / float64(ref.items)
				r.figures.add("baseline_rate", base*sig.per)
				r.value = sig.excess(cur, base, float64(b.items)) * sig.per
			}
			if int(b.hits) < sig.minMatches {
				r.value = 0
			}
		}
	case KindVolumeSpike:
		// The baseline is the items of the previous windows per window
		// the engine saw: a window it was down for most of is left out,
		// one it missed part of counts for the part it saw, so the
		// minutes it did not see are not a quiet room.
		cur := s.ring.sum(now, 0)
		var total, seen float64 // items, and windows' worth of time seen
		for k := 1; k <= volumeSpikeHistory; k++ {
			start := now.Add(-time.Duration(k+1) * win)
			if start.Add(time.Duration(s.ring.width)).Before(s.firstSeen) {
				break // the key did not exist yet: no baseline from before
			}
			part := 1.0
			if s.ngaps > 0 {
				from, to := s.ring.windowOf(now, k)
				if part = float64(s.seen(from, to)) / float64(to.Sub(from)); part < 0.5 {
					continue
				}
			}
			b := s.ring.sum(now, k)
			total += float64(b.items)
			seen += part
		}
		r.figures.add("current", float64(cur.items))
		if seen == 0 {
			return r // warming up
		}
		baseline := total / seen
		curItems := float64(cur.items)
		if s.ngaps > 0 {
			// At least half of it was seen (above): the rate over that part.
			from, to := s.ring.windowOf(now, 0)
			if part := float64(s.seen(from, to)) / float64(to.Sub(from)); part > 0 && part < 1 {
				curItems /= part
			}
		}
		r.value = curItems / math.Max(baseline, 1)
		r.figures.add("baseline", baseline)
		r.figures.add("ratio", r.value)
		r.ok = int(cur.items) >= sig.minVolume
	case KindMetricThreshold:
		if s.lastTS.IsZero() || (win > 0 && now.Sub(s.lastTS) > win) {
			return r
		}
		r.value, r.ok = s.lastValue, true
		r.figures.add("value", r.value)
	case KindMetricDrop:
		cur, prev := s.ring.sum(now, 0), s.ring.sum(now, 1)
		prevSpan := win - s.unseen(now.Add(-2*win), now.Add(-win))
		if sig.baseline > 0 {
			ref, ok := sig.reference(s, now, func(b *windowBucket) bool { return sig.rate || b.cnt > 0 })
			if !ok {
				return r
			}
			if !s.refHeld || !s.refOK || s.refSpan == 0 {
				// The part of the baseline the key has been seen for,
				// less the minutes the engine was down.
				end := now.Add(-win)
				from := end.Add(-sig.baseline)
				if s.firstSeen.After(from) {
					from = s.firstSeen
				}
				s.refSpan = s.seen(from, end)
			}
			prev, prevSpan = ref, s.refSpan
		} else if now.Sub(s.firstSeen) < 2*win {
			prevSpan = 0 // the previous window is not all there yet
		}
		var cm, pm float64
		if sig.rate {
			// Amounts per minute; a window without a message is a rate of
			// 0, a span the engine did not see (it was down) no rate at
			// all: a window half unseen has no verdict.
			curSpan := s.seen(now.Add(-win), now)
			if prevSpan <= 0 || curSpan < win/2 {
				return r
			}
			cm, pm = cur.sum/curSpan.Minutes(), prev.sum/prevSpan.Minutes()
		} else {
			if cur.cnt == 0 || prev.cnt == 0 {
				return r
			}
			cm, pm = cur.sum/float64(cur.cnt), prev.sum/float64(prev.cnt)
		}
		r.figures.add("previous", pm)
		r.figures.add("current", cm)
		if pm <= 0 {
			return r
		}
		r.value = (pm - cm) / pm
		r.figures.add("drop", r.value)
		r.ok = true
	case KindMetricTrend:
		if now.Sub(s.firstSeen) < win*9/10 {
			return r // not a trend before most of the window has been seen
		}
		// Before the room's first item since a restart, the gap lasts
		// until now.
		var gaps [seriesMaxGaps]seriesGap
		s.pts = s.ring.points(now, sig.rate, s.gapsAt(now, &gaps), s.pts[:0])
		if len(s.pts) < int(s.ring.nb)/2 {
			return r
		}
		start, end, ok := ruleFitLine(s.pts, -win.Seconds(), 0)
		if !ok || start <= 0 {
			return r
		}
		// The fitted line says where the metric was heading; the mean of
		// the window's last tenth says where it is. A dip that has
		// recovered still tilts the line, but is no trend: both must
		// agree, and the smaller change counts.
		recent, n := 0.0, 0
		for _, p := range s.pts {
			if p.t >= -win.Seconds()/10 {
				recent += p.v
				n++
			}
		}
		if n == 0 {
			return r
		}
		recent /= float64(n)
		r.ok = true
		fit, now := (start-end)/start, (start-recent)/start
		if sig.op == "above" {
			fit, now = -fit, -now
		}
		r.value = math.Min(fit, now)
		r.figures.add("start", start)
		r.figures.add("current", end)
		r.figures.add("change", (end-start)/start)
	case KindAnomaly:
		if sig.metric == "" {
			sig.advanceVolume(s, now.UnixNano()/int64(win))
		}
		p := s.point
		if !p.ready {
			return r
		}
		stale := win
		if sig.metric == "" {
			stale = 2 * win
		}
		if now.Sub(p.ts) > stale {
			return r
		}
		r.ok = true
		r.value = p.directional(sig.op)
		r.figures.add("current", p.value)
		r.figures.add("baseline", p.baseline)
		r.figures.add("scale", p.scale)
		r.figures.add("z", p.z)
		r.figures.add("anomaly_score", p.score)
		if p.flat > 0 {
			r.figures.add("flat_points", float64(p.flat))
		}
	case KindAbsent:
		r.ok = true
		if s.offAir {
			// The stream ended: silence is expected, not an outage.
			r.figures.add("off_air", 1)
			return r
		}
		silence := now.Sub(s.lastSeen)
		r.value = silence.Seconds()
		r.figures.add("silent_seconds", r.value)
	}
	return r
}

// reference is the key's baseline: the sums over the span of sig.baseline
// that ends where the current window starts, or, while the rule's alert is
// open (s.refHeld), the baseline the alert began with. ok is false while
// the key (or its current stream) is younger than sig.minHistory or the
// baseline fails enough.
func (sig *ruleSignal) reference(s *signalSeries, now time.Time, enough func(*windowBucket) bool) (windowBucket, bool) {
	if s.refHeld && s.refOK {
		return s.ref, true
	}
	since := s.firstSeen
	if s.streamStart.After(since) {
		since = s.streamStart // min_history counts from the start of this stream
	}
	if s.seen(since, now) < sig.minHistory {
		s.refOK = false
		return windowBucket{}, false
	}
	end := now.Add(-sig.window)
	at := end.UnixNano() / s.base.width
	if s.refOK && at == s.refAt {
		return s.ref, true // the span has not moved by a bucket since
	}
	s.refAt = at
	s.ref = s.base.sumSpan(end.Add(-sig.baseline), end)
	s.refOK = enough(&s.ref)
	if s.refOK && sig.kind == KindNegativeRatio {
		s.refShare = sig.medianShare(s, end)
	}
	return s.ref, s.refOK
}

// medianShare is the median negative share of the baseline's buckets.
// Unlike the share of the summed span it shrugs off a flood: two minutes
// of 抽奖 spam would otherwise dilute the room's normal, and its ordinary
// grumbling would look like a surge once the flood ends.
func (sig *ruleSignal) medianShare(s *signalSeries, end time.Time) float64 {
	s.shares = s.shares[:0]
	for b := range s.base.span(end.Add(-sig.baseline), end) {
		if b.scored > 0 {
			s.shares = append(s.shares, float64(b.neg)/float64(b.scored))
		}
	}
	if len(s.shares) == 0 {
		return 0
	}
	slices.Sort(s.shares)
	m := len(s.shares) / 2
	if len(s.shares)%2 == 0 {
		return (s.shares[m-1] + s.shares[m]) / 2
	}
	return s.shares[m]
}

// Stage profiles: a room's negative share minute by minute from the start
// of its streams, so that the first minutes of a stream are judged against
// the first minutes of earlier ones (when chat is often different: 怎么还不
// 开始, 卡了) rather than not at all.
const (
	stageSlot  = time.Minute
	stageSlots = 60  // the first hour; later minutes have no stage normal
	stageDecay = 0.5 // each earlier stream weighs half the one after it
)

type stageCounts struct{ neg, scored float64 }

// stageProfile counts the current stream by minute and keeps the earlier
// streams' counts, decayed.
type stageProfile struct {
	start time.Time // the stream being counted
	cur   [stageSlots]stageCounts
	past  [stageSlots]stageCounts
}

func (p *stageProfile) observe(streamStart, ts time.Time, neg bool) {
	if !streamStart.Equal(p.start) {
		if !p.start.IsZero() {
			for i := range p.past {
				p.past[i].neg = p.past[i].neg*stageDecay + p.cur[i].neg
				p.past[i].scored = p.past[i].scored*stageDecay + p.cur[i].scored
			}
		}
		p.cur = [stageSlots]stageCounts{}
		p.start = streamStart
	}
	slot := int(ts.Sub(streamStart) / stageSlot)
	if slot < 0 || slot >= stageSlots {
		return
	}
	p.cur[slot].scored++
	if neg {
		p.cur[slot].neg++
	}
}

// unobserve takes back one message of the stream being counted.
func (p *stageProfile) unobserve(ts time.Time, neg bool) {
	slot := int(ts.Sub(p.start) / stageSlot)
	if slot < 0 || slot >= stageSlots || p.cur[slot].scored < 1 {
		return
	}
	p.cur[slot].scored--
	if neg && p.cur[slot].neg >= 1 {
		p.cur[slot].neg--
	}
}

// share is the earlier streams' negative share at this stage: the higher of
// this minute's and the previous minute's (the current window straddles
// them), each counted only with at least minVolume messages.
func (p *stageProfile) share(stage time.Duration, minVolume int) (float64, bool) {
	slot := int(stage / stageSlot)
	if stage < 0 || slot >= stageSlots {
		return 0, false
	}
	best, ok := 0.0, false
	for i := max(0, slot-1); i <= slot; i++ {
		c := p.past[i]
		if c.scored >= float64(max(minVolume, 1)) {
			best, ok = max(best, c.neg/c.scored), true
		}
	}
	return best, ok
}

// excess is how far a current share cur (of n items) lies above the
// baseline share base, or 0 when that is within ruleMinZ binomial
// standard deviations (noise at this volume).
func (sig *ruleSignal) excess(cur, base, n float64) float64 {
	d := cur - base
	if d <= 0 || n <= 0 {
		return 0
	}
	p := math.Max(base, 0.01) // a baseline of zero still has some spread
	if d < ruleMinZ*math.Sqrt(p*(1-p)/n) {
		return 0
	}
	return d
}

// ruleFitLine fits a least-squares line through pts and returns its values
// at t0 and t1.
func ruleFitLine(pts []windowPoint, t0, t1 float64) (float64, float64, bool) {
	n := float64(len(pts))
	if n < 2 {
		return 0, 0, false
	}
	var st, sv float64
	for _, p := range pts {
		st += p.t
		sv += p.v
	}
	mt, mv := st/n, sv/n
	var stt, stv float64
	for _, p := range pts {
		stt += (p.t - mt) * (p.t - mt)
		stv += (p.t - mt) * (p.v - mv)
	}
	if stt == 0 {
		return 0, 0, false
	}
	b := stv / stt
	a := mv - b*mt
	return a + b*t0, a + b*t1, true
}

// compiledRule is one rule ready to evaluate.
type compiledRule struct {
	cfg        config.RuleConfig
	name       string
	kind       string
	match      labels.Matchers // on the item: source, platform, room, kind or its labels
	signals    []*ruleSignal   // [0] is the rule's own; the rest are conditions
	below      bool            // the ladder runs downwards (metric_threshold op below)
	yellow     *float64
	red        *float64
	severity   Severity // fixed severity (absent)
	hysteresis float64
	resolveN   int
	category   string
	summary    *template.Template
}

// ruleCompile checks one rule and builds it. Errors name the rule and its
// line.
func ruleCompile(cfg *config.Config, i int, nextSignal *int, maxSamples int) (*compiledRule, error) {
	rc := cfg.Rules[i]
	fail := func(format string, args ...any) error {
		return fmt.Errorf("rule %q (%s:%d): %s", rc.Name, cfg.FileName(), rc.Line, fmt.Sprintf(format, args...))
	}
	if rc.Name == "" {
		return nil, fail("name is required")
	}
	match, err := matchersOf(rc.Match, rc.Matchers)
	if err != nil {
		return nil, fail("match: %v", err)
	}
	r := &compiledRule{cfg: rc, name: rc.Name, kind: rc.Kind, match: match,
		yellow: rc.Levels.Yellow, red: rc.Levels.Red, resolveN: rc.ResolveAfter, hysteresis: defaultHysteresis}
	if rc.Hysteresis != nil {
		r.hysteresis = *rc.Hysteresis
	}
	if r.resolveN <= 0 {
		r.resolveN = 1
	}
	sampleCap := 4 * maxSamples
	if sampleCap < 16 {
		sampleCap = 16
	}
	switch rc.Kind {
	case KindNegativeRatio, KindKeywordBurst, KindVolumeSpike, KindMetricThreshold, KindMetricDrop, KindMetricTrend, KindAbsent:
	case KindSourceBroken:
		// A metric_threshold on the source's own health report, with a
		// fixed severity like absent: broken is yes or no.
		if rc.Metric != "" && rc.Metric != item.MetricSourceBroken {
			return nil, fail("source_broken watches the %s health report; metric cannot be %q", item.MetricSourceBroken, rc.Metric)
		}
		if r.yellow != nil || r.red != nil {
			return nil, fail("source_broken takes severity, not levels")
		}
		rc.Metric = item.MetricSourceBroken
		rc.Op = ""
		half := 0.5
		switch Severity(rc.Severity) {
		case "", Yellow:
			r.yellow = &half
		case Red:
			r.red = &half
		default:
			return nil, fail("severity must be yellow or red, not %q", rc.Severity)
		}
		r.hysteresis = 0
	case KindAnomaly:
		if r.yellow == nil && r.red == nil {
			y, red := DefaultAnomalyYellow, DefaultAnomalyRed
			r.yellow, r.red = &y, &red
		}
	default:
		return nil, fail("unknown kind %q", rc.Kind)
	}
	if rc.Kind != KindAbsent && rc.Kind != KindSourceBroken && r.yellow == nil && r.red == nil {
		return nil, fail("levels needs yellow and/or red")
	}
	if rc.Kind == KindAbsent {
		r.severity = Yellow
		if rc.Severity != "" {
			r.severity = Severity(rc.Severity)
		}
		r.hysteresis = 0
	}
	r.below = rc.Kind == KindMetricThreshold && rc.Op == "below"
	if rc.Op != "" && rc.Op != "above" && rc.Op != "below" {
		return nil, fail("op must be above or below, not %q", rc.Op)
	}
	if r.yellow != nil && r.red != nil {
		if !r.below && *r.red < *r.yellow {
			return nil, fail("levels: red (%v) is below yellow (%v)", *r.red, *r.yellow)
		}
		if r.below && *r.red > *r.yellow {
			return nil, fail("levels: with op below red (%v) must not be above yellow (%v)", *r.red, *r.yellow)
		}
	}
	if rc.Kind == KindMetricDrop || rc.Kind == KindMetricTrend {
		for _, l := range []*float64{r.yellow, r.red} {
			if l != nil && (*l <= 0 || *l > 1) {
				return nil, fail("%s levels are fractions in (0, 1], e.g. 0.3 for 30%%, not %v", rc.Kind, *l)
			}
		}
	}
	if rc.Kind == KindNegativeRatio {
		for _, l := range []*float64{r.yellow, r.red} {
			if l != nil && (*l <= 0 || *l > 1) {
				return nil, fail("negative_ratio levels are shares in (0, 1], not %v", *l)
			}
		}
	}
	r.category = rc.Category
	if rc.Group != "" {
		if g, ok := cfg.Keywords[rc.Group]; ok && r.category == "" {
			r.category = g.Category
		}
	}
	sigKind := rc.Kind
	if sigKind == KindSourceBroken {
		sigKind = KindMetricThreshold
	}
	primary := ruleSignalFrom(sigKind, rc.Window.D(), rc.MinVolume, rc.Group, rc.Category, rc.Metric, rc.Op, rc, sampleCap)
	if err := ruleCheckSignal(cfg, primary); err != nil {
		return nil, fail("%v", err)
	}
	primary.idx = *nextSignal
	*nextSignal++
	r.signals = append(r.signals, primary)
	for j, cc := range rc.Conditions {
		win := cc.Window.D()
		if win == 0 {
			win = rc.Window.D()
		}
		mv := cc.MinVolume
		if mv == 0 && cc.Kind == rc.Kind {
			mv = rc.MinVolume
		}
		if cc.Kind == KindAbsent {
			return nil, fail("conditions[%d]: absent cannot be a condition", j)
		}
		if cc.Above == nil && cc.Below == nil {
			return nil, fail("conditions[%d]: needs above and/or below", j)
		}
		sig := ruleSignalFrom(cc.Kind, win, mv, cc.Group, cc.Category, cc.Metric, "", rc, sampleCap)
		sig.above, sig.below = cc.Above, cc.Below
		if err := ruleCheckSignal(cfg, sig); err != nil {
			return nil, fail("conditions[%d]: %v", j, err)
		}
		sig.idx = *nextSignal
		*nextSignal++
		r.signals = append(r.signals, sig)
	}
	if rc.Summary != "" {
		t, err := template.New(rc.Name).Option("missingkey=zero").Parse(rc.Summary)
		if err != nil {
			return nil, fail("summary template: %v", err)
		}
		r.summary = t
	}
	return r, nil
}

func ruleSignalFrom(kind string, window time.Duration, minVolume int, group, category, metric, op string, rc config.RuleConfig, sampleCap int) *ruleSignal {
	sig := &ruleSignal{kind: kind, window: window, minVolume: minVolume, group: group, category: category,
		metric: metric, op: op, sampleCap: sampleCap}
	if kind == rc.Kind {
		// The rule's own signal: its baseline and rate settings.
		sig.baseline, sig.minHistory, sig.floor = rc.Baseline.D(), rc.MinHistory.D(), rc.Floor
		if sig.minHistory == 0 {
			sig.minHistory = sig.baseline / 2
		}
		sig.per, sig.minMatches, sig.complaintsOnly = float64(rc.Per), rc.MinMatches, rc.ComplaintsOnly
		sig.rate = (kind == KindMetricDrop || kind == KindMetricTrend) && (metric == MetricChatRate || metric == MetricGiftValue)
		if sig.minMatches == 0 {
			sig.minMatches = ruleDefaultMinMatches
		}
	}
	if kind == KindAnomaly {
		sig.anomaly = anomalyParamsFor(rc, window)
	}
	return sig
}

func ruleCheckSignal(cfg *config.Config, sig *ruleSignal) error {
	switch sig.kind {
	case KindNegativeRatio, KindKeywordBurst, KindVolumeSpike, KindMetricThreshold, KindMetricDrop, KindMetricTrend, KindAnomaly, KindAbsent:
	default:
		return fmt.Errorf("unknown kind %q", sig.kind)
	}
	if sig.window <= 0 && sig.kind != KindMetricThreshold {
		return fmt.Errorf("%s needs a window", sig.kind)
	}
	if sig.window > 0 && sig.window < time.Second {
		return fmt.Errorf("window %v is shorter than one second", sig.window)
	}
	if (sig.kind == KindMetricThreshold || sig.kind == KindMetricDrop || sig.kind == KindMetricTrend) && sig.metric == "" {
		return fmt.Errorf("%s needs a metric", sig.kind)
	}
	if sig.kind == KindNegativeRatio && sig.minVolume <= 0 {
		return fmt.Errorf("negative_ratio needs min_volume")
	}
	if sig.kind == KindKeywordBurst {
		if sig.group == "" && sig.category == "" {
			return fmt.Errorf("keyword_burst needs group or category")
		}
		if sig.group != "" {
			if _, ok := cfg.Keywords[sig.group]; !ok {
				return fmt.Errorf("no keyword group %q", sig.group)
			}
		}
	}
	return nil
}

// level places a value on the severity ladder: "" when no level is
// reached, with the level that was crossed.
func (r *compiledRule) level(v float64) (Severity, float64) {
	if r.kind == KindAbsent {
		return r.severity, 0
	}
	crossed := func(l *float64) bool {
		if l == nil {
			return false
		}
		if r.below {
			return v <= *l
		}
		return v >= *l
	}
	if crossed(r.red) {
		return Red, *r.red
	}
	if crossed(r.yellow) {
		return Yellow, *r.yellow
	}
	return "", 0
}

// lowestLevel is the first rung of the ladder.
func (r *compiledRule) lowestLevel() float64 {
	if r.yellow != nil {
		return *r.yellow
	}
	if r.red != nil {
		return *r.red
	}
	return 0
}

// held reports whether a value that no longer reaches a level is still
// within the hysteresis band of the lowest level.
func (r *compiledRule) held(v float64) bool {
	if r.hysteresis <= 0 || r.kind == KindAbsent {
		return false
	}
	l := r.lowestLevel()
	if r.below {
		return v <= l+math.Abs(l)*r.hysteresis
	}
	return v >= l-math.Abs(l)*r.hysteresis
}

// conditionHolds checks a combined rule's extra condition.
func (sig *ruleSignal) conditionHolds(res *signalResult) bool {
	if !res.ok {
		return false
	}
	if sig.above != nil && !(res.value >= *sig.above) {
		return false
	}
	if sig.below != nil && !(res.value <= *sig.below) {
		return false
	}
	return true
}

// describe is the human summary of a decision.
func (r *compiledRule) describe(res *signalResult, key engineKey, labels map[string]string, threshold float64) string {
	where := ruleWhere(key)
	win := ruleDur(r.signals[0].window)
	if !res.ok && r.kind != KindAbsent && r.kind != KindSourceBroken && r.kind != KindAnomaly {
		// No verdict (too few messages or samples): say so rather than
		// quote figures of an empty window.
		return fmt.Sprintf("%s: too little data in the last %s to judge %s", r.name, win, where)
	}
	switch r.kind {
	case KindNegativeRatio:
		if r.signals[0].baseline > 0 {
			return fmt.Sprintf("Negative share %.0f%% (%d of %d messages in %s), %.0f points above this room's normal of %.0f%% %s",
				100*res.figures.get("negative_ratio"), int(res.figures.get("negative")), int(res.figures.get("items")), win,
				100*res.value, 100*res.figures.get("baseline_ratio"), where)
		}
		return fmt.Sprintf("Negative share %.0f%% (%d of %d messages in %s) %s",
			100*res.value, int(res.figures.get("negative")), int(res.figures.get("items")), win, where)
	case KindKeywordBurst:
		what := r.signals[0].group
		if what == "" {
			what = r.signals[0].category
		}
		if sig := r.signals[0]; sig.per > 0 {
			msg := fmt.Sprintf("%d of %d messages match %s in %s (%s per %s)", int(res.figures.get("matches")),
				int(res.figures.get("items")), what, win, ruleNum(res.figures.get("rate")), ruleNum(sig.per))
			if sig.baseline > 0 {
				msg += fmt.Sprintf(", this room's normal is %s", ruleNum(res.figures.get("baseline_rate")))
			}
			return msg + " " + where
		}
		return fmt.Sprintf("%d messages matching %s in %s (level %g) %s", int(res.value), what, win, threshold, where)
	case KindVolumeSpike:
		return fmt.Sprintf("Volume %d items in %s, %.1f× the baseline of %.0f %s",
			int(res.figures.get("current")), win, res.value, res.figures.get("baseline"), where)
	case KindMetricThreshold:
		dir := "above"
		if r.below {
			dir = "below"
		}
		return fmt.Sprintf("%s %s %s %s %s", r.cfg.Metric, ruleNum(res.value), dir, ruleNum(threshold), where)
	case KindMetricDrop:
		unit := ""
		if r.signals[0].rate {
			unit = " a minute"
		}
		if b := r.signals[0].baseline; b > 0 {
			return fmt.Sprintf("%s down %.0f%%: %s%s over the last %s against %s%s before the drop %s", r.cfg.Metric,
				100*res.value, ruleNum(res.figures.get("current")), unit, win, ruleNum(res.figures.get("previous")), unit, where)
		}
		return fmt.Sprintf("%s fell %.0f%% (mean %s → %s) against the previous %s %s", r.cfg.Metric,
			100*res.value, ruleNum(res.figures.get("previous")), ruleNum(res.figures.get("current")), win, where)
	case KindMetricTrend:
		dir := "declining"
		if r.signals[0].op == "above" {
			dir = "rising"
		}
		return fmt.Sprintf("%s %s steadily: %s → %s (%+.0f%%) over %s %s", r.cfg.Metric, dir,
			ruleNum(res.figures.get("start")), ruleNum(res.figures.get("current")), 100*res.figures.get("change"), win, where)
	case KindAnomaly:
		what := r.cfg.Metric
		if what == "" {
			what = "volume per " + win
		}
		if fp := res.figures.get("flat_points"); fp > 0 {
			return fmt.Sprintf("%s flatlined at %s for %d points (usual spread %s) %s", what,
				ruleNum(res.figures.get("current")), int(fp), ruleNum(res.figures.get("scale")), where)
		}
		return fmt.Sprintf("%s %s is anomalous (robust z %+.1f against a baseline of %s) %s", what,
			ruleNum(res.figures.get("current")), res.figures.get("z"), ruleNum(res.figures.get("baseline")), where)
	case KindAbsent:
		if res.figures.get("off_air") == 1 {
			return "The stream ended (live_status 0) " + where
		}
		return fmt.Sprintf("No items for %s %s", ruleDur(time.Duration(res.value*float64(time.Second))), where)
	case KindSourceBroken:
		if res.value < 0.5 {
			return "Source " + key.source + " works again"
		}
		msg := "Source " + key.source + " is broken"
		if reason := labels["reason"]; reason != "" {
			msg += " (" + reason + ")"
		}
		if detail := labels["detail"]; detail != "" {
			msg += ": " + detail
		}
		return msg
	}
	return r.name
}

func ruleWhere(k engineKey) string {
	switch {
	case k.room != "" && k.source != "":
		return fmt.Sprintf("in room %s (%s)", k.room, k.source)
	case k.room != "":
		return "in room " + k.room
	case k.source != "":
		return "in " + k.source
	}
	return "overall"
}

// ruleDur writes a duration the way people say it: 2m, 1h30m, 1m30s.
func ruleDur(d time.Duration) string {
	d = d.Round(time.Second)
	s := d.String()
	if d >= time.Minute && d%time.Minute == 0 {
		s = strings.TrimSuffix(s, "0s")
	}
	if d >= time.Hour && d%time.Hour == 0 {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func ruleNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
