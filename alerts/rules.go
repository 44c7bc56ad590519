package alerts

import (
	"fmt"
	"math"
	"strings"
	"text/template"
	"time"

	"lookout/config"
	"lookout/item"
)

// Rule kinds, as written in config.
const (
	KindNegativeRatio   = "negative_ratio"
	KindKeywordBurst    = "keyword_burst"
	KindVolumeSpike     = "volume_spike"
	KindMetricThreshold = "metric_threshold"
	KindMetricDrop      = "metric_drop"
	KindAnomaly         = "anomaly"
	KindAbsent          = "absent"
	// KindSourceBroken alerts while a source reports itself broken
	// (item.MetricSourceBroken): its pages stopped yielding items, its
	// polls keep failing, its cookie expired, or its collector gave up.
	KindSourceBroken = "source_broken"
)

// volumeSpikeHistory is how many previous windows a volume_spike baseline
// averages.
const volumeSpikeHistory = 4

// defaultHysteresis is the fraction of the lowest level a value must fall
// back past before a firing alert may resolve.
const defaultHysteresis = 0.1

// ruleMatchTerm is one `match:` key compiled.
type ruleMatchTerm struct {
	field int // ruleFieldSource… or ruleFieldLabel
	label string
	value string
}

const (
	ruleFieldSource = iota
	ruleFieldPlatform
	ruleFieldRoom
	ruleFieldKind
	ruleFieldLabel
)

func ruleCompileMatch(m map[string]string) []ruleMatchTerm {
	terms := make([]ruleMatchTerm, 0, len(m))
	for k, v := range m {
		t := ruleMatchTerm{label: k, value: v, field: ruleFieldLabel}
		switch k {
		case "source":
			t.field = ruleFieldSource
		case "platform":
			t.field = ruleFieldPlatform
		case "room":
			t.field = ruleFieldRoom
		case "kind":
			t.field = ruleFieldKind
		}
		terms = append(terms, t)
	}
	return terms
}

func ruleMatches(terms []ruleMatchTerm, it *item.Item) bool {
	for i := range terms {
		t := &terms[i]
		var v string
		switch t.field {
		case ruleFieldSource:
			v = it.Source
		case ruleFieldPlatform:
			v = it.Platform
		case ruleFieldRoom:
			v = it.Room
		case ruleFieldKind:
			v = string(it.Kind)
		default:
			v = it.Labels[t.label]
		}
		if v != t.value {
			return false
		}
	}
	return true
}

// ruleSignal is one measured quantity over one window: the rule's own, or
// one condition of a combined rule. Each signal keeps its own series per
// key.
type ruleSignal struct {
	idx       int // index into keyEntry.series
	kind      string
	window    time.Duration
	windows   int // windows the ring holds
	minVolume int
	group     string
	category  string
	metric    string
	op        string // metric_threshold: above/below; anomaly: direction
	anomaly   anomalyParams
	sampleCap int

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

	det      *anomalyDetector
	volIdx   int64 // anomaly over volume: bucket being counted
	volCount float64
	volOpen  bool
	point    anomalyPoint // latest scored point
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
	value   float64 // the number compared with levels / bounds
	figures ruleFigures
}

func newSignalSeries(sig *ruleSignal, now time.Time) *signalSeries {
	s := &signalSeries{firstSeen: now}
	switch sig.kind {
	case KindNegativeRatio, KindKeywordBurst:
		s.ring = newWindowRing(sig.window, 1)
		s.samples = newSampleRing(sig.sampleCap)
	case KindVolumeSpike:
		s.ring = newWindowRing(sig.window, 1+volumeSpikeHistory)
		s.samples = newSampleRing(sig.sampleCap)
	case KindMetricDrop:
		s.ring = newWindowRing(sig.window, 2)
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
	case KindMetricThreshold, KindMetricDrop:
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

func (sig *ruleSignal) keywordHit(sc *item.Score) bool {
	if sig.group != "" && sc.HasGroup(sig.group) {
		return true
	}
	return sig.category != "" && sc.HasCategory(sig.category)
}

func ruleSample(it *item.Item, ts time.Time) Sample {
	if !it.TS.IsZero() {
		ts = it.TS // show when it was said, even if it counted on arrival
	}
	return Sample{Source: it.Source, Author: it.Author, Text: it.Text, TS: ts, Score: it.Score.Value}
}

// observe updates the series with one item at ts. It reports false for a
// late item that no longer fits the window.
func (sig *ruleSignal) observe(s *signalSeries, it *item.Item, ts time.Time) bool {
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
		b.items++
		b.scored++
		if it.Score.Label == item.Negative {
			b.neg++
			s.samples.add(ruleSample(it, ts), ts)
		}
	case KindKeywordBurst:
		b := s.ring.at(ts)
		if b == nil {
			return false
		}
		b.items++
		if sig.keywordHit(&it.Score) {
			b.hits++
			s.samples.add(ruleSample(it, ts), ts)
		}
	case KindVolumeSpike:
		b := s.ring.at(ts)
		if b == nil {
			return false
		}
		b.items++
		if it.Kind.Textual() && it.Text != "" {
			s.samples.add(ruleSample(it, ts), ts)
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
		b.sum += it.Value
		b.cnt++
		if !ts.Before(s.lastTS) {
			s.lastValue, s.lastTS = it.Value, ts
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
			s.samples.add(ruleSample(it, ts), ts)
		}
	}
	return true
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
	s.point = s.det.update(time.Unix(0, s.volIdx*w), s.volCount)
	gap := idx - s.volIdx - 1
	if gap > anomalyMaxGap {
		s.det.reset()
		gap = 0
	}
	for i := int64(1); i <= gap; i++ {
		s.point = s.det.update(time.Unix(0, (s.volIdx+i)*w), 0)
	}
	s.volIdx, s.volCount = idx, 0
}

// evaluate computes the signal for one key at now.
func (sig *ruleSignal) evaluate(s *signalSeries, now time.Time) signalResult {
	var r signalResult
	win := sig.window
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
	case KindKeywordBurst:
		b := s.ring.sum(now, 0)
		r.value = float64(b.hits)
		r.figures.add("items", float64(b.items))
		r.figures.add("matches", float64(b.hits))
		r.ok = int(b.items) >= sig.minVolume
	case KindVolumeSpike:
		cur := s.ring.sum(now, 0)
		var total float64
		n := 0
		for k := 1; k <= volumeSpikeHistory; k++ {
			start := now.Add(-time.Duration(k+1) * win)
			if start.Add(time.Duration(s.ring.width)).Before(s.firstSeen) {
				break // the key did not exist yet: no baseline from before
			}
			b := s.ring.sum(now, k)
			total += float64(b.items)
			n++
		}
		r.figures.add("current", float64(cur.items))
		if n == 0 {
			return r // warming up
		}
		baseline := total / float64(n)
		r.value = float64(cur.items) / math.Max(baseline, 1)
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
		if cur.cnt == 0 || prev.cnt == 0 {
			return r
		}
		cm, pm := cur.sum/float64(cur.cnt), prev.sum/float64(prev.cnt)
		r.figures.add("previous", pm)
		r.figures.add("current", cm)
		if pm <= 0 {
			return r
		}
		r.value = (pm - cm) / pm
		r.figures.add("drop", r.value)
		r.ok = true
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
		silence := now.Sub(s.lastSeen)
		r.ok = true
		r.value = silence.Seconds()
		r.figures.add("silent_seconds", r.value)
	}
	return r
}

// compiledRule is one rule ready to evaluate.
type compiledRule struct {
	cfg        config.RuleConfig
	name       string
	kind       string
	match      []ruleMatchTerm
	signals    []*ruleSignal // [0] is the rule's own; the rest are conditions
	below      bool          // the ladder runs downwards (metric_threshold op below)
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
		return fmt.Errorf("rule %q (%s:%d): %s", rc.Name, cfgFileName(cfg), rc.Line, fmt.Sprintf(format, args...))
	}
	if rc.Name == "" {
		return nil, fail("name is required")
	}
	r := &compiledRule{cfg: rc, name: rc.Name, kind: rc.Kind, match: ruleCompileMatch(rc.Match),
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
	case KindNegativeRatio, KindKeywordBurst, KindVolumeSpike, KindMetricThreshold, KindMetricDrop, KindAbsent:
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
	if rc.Kind == KindMetricDrop {
		for _, l := range []*float64{r.yellow, r.red} {
			if l != nil && (*l <= 0 || *l > 1) {
				return nil, fail("metric_drop levels are fractions in (0, 1], e.g. 0.3 for 30%%, not %v", *l)
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

func cfgFileName(cfg *config.Config) string {
	if cfg.File == "" {
		return "config"
	}
	return cfg.File
}

func ruleSignalFrom(kind string, window time.Duration, minVolume int, group, category, metric, op string, rc config.RuleConfig, sampleCap int) *ruleSignal {
	sig := &ruleSignal{kind: kind, window: window, minVolume: minVolume, group: group, category: category,
		metric: metric, op: op, sampleCap: sampleCap}
	if kind == KindAnomaly {
		sig.anomaly = anomalyParamsFor(rc, window)
	}
	return sig
}

func ruleCheckSignal(cfg *config.Config, sig *ruleSignal) error {
	switch sig.kind {
	case KindNegativeRatio, KindKeywordBurst, KindVolumeSpike, KindMetricThreshold, KindMetricDrop, KindAnomaly, KindAbsent:
	default:
		return fmt.Errorf("unknown kind %q", sig.kind)
	}
	if sig.window <= 0 && sig.kind != KindMetricThreshold {
		return fmt.Errorf("%s needs a window", sig.kind)
	}
	if sig.window > 0 && sig.window < time.Second {
		return fmt.Errorf("window %v is shorter than one second", sig.window)
	}
	if (sig.kind == KindMetricThreshold || sig.kind == KindMetricDrop) && sig.metric == "" {
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
	switch r.kind {
	case KindNegativeRatio:
		return fmt.Sprintf("Negative share %.0f%% (%d of %d messages in %s) %s",
			100*res.value, int(res.figures.get("negative")), int(res.figures.get("items")), win, where)
	case KindKeywordBurst:
		what := r.signals[0].group
		if what == "" {
			what = r.signals[0].category
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
		return fmt.Sprintf("%s fell %.0f%% (mean %s → %s) against the previous %s %s", r.cfg.Metric,
			100*res.value, ruleNum(res.figures.get("previous")), ruleNum(res.figures.get("current")), win, where)
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
