// Package alerts turns scored items into alert events: the engine keeps
// sliding windows per key (source/room), evaluates rules over them and
// walks each alert through pending → firing → resolved; the delivery side
// (routing, grouping, outbox, notifiers) takes the events from a Sink.
package alerts

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lookout/config"
	"lookout/item"

	"lookout/internal/metrics"
)

// EngineOptions tunes an Engine. The zero value is usable.
type EngineOptions struct {
	Now          func() time.Time      // nil → time.Now; tests and backtests drive time
	Log          *slog.Logger          // nil → slog.Default()
	Registerer   prometheus.Registerer // may be nil: metrics are kept but not exported
	EvalInterval time.Duration         // default 1s
	MaxSamples   int                   // samples quoted per event, default 5
	// Observer, when set, is told of every item Run takes in and of every
	// evaluation Run makes (load measurement: arrival → alert evaluated).
	// It is called from Run's goroutine and must not block.
	Observer EvalObserver
	// DetectorSaveEvery is how often ExportProfiles takes a room's anomaly
	// detectors again (their learned state is large and each point
	// changes little of it); default 10 minutes. ExportAllProfiles takes
	// them every time.
	DetectorSaveEvery time.Duration
}

// EvalObserver watches Run: Observed after each item is counted, Evaluated
// after each evaluation with the time it evaluated at. An item observed
// before an evaluation is covered by it.
type EvalObserver interface {
	Observed(it *item.Item)
	Evaluated(at time.Time)
}

// engineMaxRetained bounds the events kept for a sink that keeps failing.
const engineMaxRetained = 10000

// engineIdleTTL is how long a key (room) may stay silent, with no alert
// pending or firing, before the engine forgets its windows and baselines:
// memory stays bounded by the rooms active in the last day, not every
// room ever seen.
const engineIdleTTL = 24 * time.Hour

// engineStageIdleTTL replaces engineIdleTTL when a rule keeps a room's
// stage profile (negative_ratio with a baseline): a room that streams once
// a week keeps what its earlier streams taught.
const engineStageIdleTTL = 8 * 24 * time.Hour

// engineStreamGap: a room silent this long that starts talking again has
// started a new stream.
const engineStreamGap = 30 * time.Minute

// engineKey is what windows are kept per: the item's source and room (the
// parts of item.Key, without building the string on the hot path).
type engineKey struct{ source, room string }

// engineKeyEntry is everything the engine holds for one key.
type engineKeyEntry struct {
	key      engineKey
	lastSeen time.Time // newest item time counted for this key
	// streamStart is when the room's current stream began: its first
	// message after engineStreamGap of silence, or a live_status report
	// of 1 after one of 0. lastTalk is its newest message.
	streamStart time.Time
	lastTalk    time.Time
	live        float64 // latest live_status report (-1: none)
	gapOpen     bool    // restored from a profile, no item seen since
	msgs        msgRing // recent messages, to take back on a delete or edit (retract.go)
	platform    string
	labels      map[string]string
	series      []*signalSeries // by signal index; nil until that signal sees the key
	alerts      []alertState    // by rule index
}

// Engine evaluates alert rules over sliding windows. Observe and Evaluate
// are meant to be called from one goroutine (Run's); a mutex makes other
// uses safe, not fast.
type Engine struct {
	cfg      *config.Config
	sink     Sink
	opts     EngineOptions
	log      *slog.Logger
	rules    []*compiledRule
	nsignals int

	mu       sync.Mutex
	keys     map[engineKey]*engineKeyEntry
	keyList  []*engineKeyEntry
	rooms    map[string][]*engineKeyEntry // keyList by source: where an edit or delete looks for its message
	retained []Event                      // refused by the sink; retried on the next Evaluate
	conds    []signalResult
	idleTTL  time.Duration // keys silent this long with no alert open are forgotten
	swept    time.Time
	// retractSpan is the longest window of a negative_ratio or
	// keyword_burst signal: how long a room remembers the messages it
	// counted, so that a delete or edit can take them back (0: no such
	// rule, nothing remembered).
	retractSpan time.Duration
	seed        maphash.Seed

	metrics engineMetrics
}

type engineMetrics struct {
	observed    prometheus.Counter
	late        prometheus.Counter
	evaluations prometheus.Counter
	evalSeconds prometheus.Histogram
	events      *prometheus.CounterVec
	publishErrs prometheus.Counter
	dropped     prometheus.Counter
	suppressed  prometheus.Counter
	keys        prometheus.Gauge
	profilesBad prometheus.Counter
	// Edits and deletes of counted messages (retract.go).
	changesDeleted, changesEdited, changesNotHeld prometheus.Counter
}

func newEngineMetrics(reg prometheus.Registerer) (engineMetrics, error) {
	var err error
	m := engineMetrics{
		observed: engineRegister(reg, &err, prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alert_items_observed_total",
			Help: "Items the alert engine observed."})),
		late: engineRegister(reg, &err, prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alert_items_late_total",
			Help: "Item-rule observations dropped because the item was older than the rule's window."})),
		evaluations: engineRegister(reg, &err, prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alert_evaluations_total",
			Help: "Rule evaluation rounds."})),
		evalSeconds: engineRegister(reg, &err, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lookout_alert_evaluation_seconds",
			Help: "Time one evaluation round of all rules and keys took.", Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10)})),
		events: engineRegister(reg, &err, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_alert_events_total",
			Help: "Alert state changes published, by rule and new state."}, []string{"rule", "state"})),
		publishErrs: engineRegister(reg, &err, prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alert_publish_errors_total",
			Help: "Events the sink refused (kept and retried)."})),
		dropped: engineRegister(reg, &err, prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alert_events_dropped_total",
			Help: "Events dropped because the sink kept failing and the retry buffer was full."})),
		suppressed: engineRegister(reg, &err, prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alert_cooldown_suppressed_total",
			Help: "Evaluations whose condition held but that were muted by a rule's cooldown."})),
		keys: engineRegister(reg, &err, prometheus.NewGauge(prometheus.GaugeOpts{Name: "lookout_alert_keys",
			Help: "Keys (source/room) the engine keeps windows for."})),
		profilesBad: engineRegister(reg, &err, prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alert_profiles_rejected_total",
			Help: "Stored room profiles that could not be read back at start (skipped)."})),
	}
	changes := engineRegister(reg, &err, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_alert_changes_total",
		Help: "Deletes and edits of messages (by their authors or moderators) the rule windows took back (deleted, edited) or no longer held (not_held: older than the windows, or never counted)."},
		[]string{"result"}))
	if err == nil {
		m.changesDeleted = changes.WithLabelValues("deleted")
		m.changesEdited = changes.WithLabelValues("edited")
		m.changesNotHeld = changes.WithLabelValues("not_held")
	}
	return m, err
}

// engineRegister registers c, or returns the collector already registered
// under its name (a backtest engine next to the daemon's shares them).
func engineRegister[T prometheus.Collector](reg prometheus.Registerer, errp *error, c T) T {
	if reg == nil || *errp != nil {
		return c
	}
	c, err := metrics.Register(reg, c)
	if err != nil {
		*errp = fmt.Errorf("register alert metrics: %w", err)
	}
	return c
}

// NewEngine validates the rules of cfg and builds an engine that publishes
// to sink. Errors name the rule and its line.
func NewEngine(cfg *config.Config, sink Sink, opts EngineOptions) (*Engine, error) {
	if cfg == nil {
		return nil, errors.New("alerts: nil config")
	}
	if sink == nil {
		return nil, errors.New("alerts: nil sink")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.EvalInterval <= 0 {
		opts.EvalInterval = time.Second
	}
	if opts.MaxSamples <= 0 {
		opts.MaxSamples = 5
	}
	if opts.DetectorSaveEvery <= 0 {
		opts.DetectorSaveEvery = 10 * time.Minute
	}
	e := &Engine{cfg: cfg, sink: sink, opts: opts, log: opts.Log.With("component", "alerts"),
		keys: map[engineKey]*engineKeyEntry{}, rooms: map[string][]*engineKeyEntry{}, seed: maphash.MakeSeed()}
	var err error
	if e.rules, e.nsignals, e.idleTTL, err = engineCompile(cfg, opts.MaxSamples); err != nil {
		return nil, err
	}
	m, err := newEngineMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	e.metrics = m
	e.indexTextSignals()
	return e, nil
}

// engineCompile checks and builds every rule of cfg; it returns the rules,
// how many signal series a key needs, and how long a silent key is kept.
func engineCompile(cfg *config.Config, maxSamples int) ([]*compiledRule, int, time.Duration, error) {
	var (
		rules    []*compiledRule
		nsignals int
		errs     []error
	)
	idleTTL := engineIdleTTL
	for i := range cfg.Rules {
		r, err := ruleCompile(cfg, i, &nsignals, maxSamples)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
		for _, sig := range r.signals {
			if ttl := 3 * sig.window * (1 + volumeSpikeHistory); ttl > idleTTL {
				idleTTL = ttl
			}
			if sig.kind == KindNegativeRatio && sig.baseline > 0 {
				idleTTL = max(idleTTL, engineStageIdleTTL)
			}
		}
	}
	if len(errs) > 0 {
		return nil, 0, 0, errors.Join(errs...)
	}
	return rules, nsignals, idleTTL, nil
}

// Rules returns the names of the rules the engine evaluates, in order.
func (e *Engine) Rules() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.name
	}
	return out
}

// engineMaxItemLead is how far in the future an item's timestamp may lie
// before the engine stops trusting it (a collector's or platform's clock
// gone wrong) and counts the item at its arrival time instead.
const engineMaxItemLead = time.Hour

// Observe counts one item into the windows of every rule it matches. It
// is the hot path: O(matching rules) and allocation-free once the item's
// key is known.
//
// Items count at their own timestamp (so a backtest, whose clock follows
// the items, is exact), except when it is missing, far in the future, or
// older than a rule's window: a news post published hours before it was
// fetched counts when it arrived, not never.
func (e *Engine) Observe(it *item.Item) {
	now := e.opts.Now()
	ts := it.TS
	if ts.IsZero() || ts.After(now.Add(engineMaxItemLead)) {
		ts = now
	}
	e.mu.Lock()
	if it.Change != "" {
		// An edit or delete of a message counted before (retract.go).
		e.changeLocked(it, now)
	} else {
		e.observeLocked(it, ts, now)
	}
	e.mu.Unlock()
	e.metrics.observed.Inc()
}

func (e *Engine) observeLocked(it *item.Item, ts, now time.Time) {
	ent, added := e.keyEntryLocked(engineKey{it.Source, it.Room})
	if added {
		e.metrics.keys.Set(float64(len(e.keyList)))
	}
	ent.platform = it.Platform
	if ent.gapOpen {
		// The room's first item since a restart: what the engine did
		// not see ends here.
		for _, s := range ent.series {
			if s != nil {
				s.closeGap(ts)
			}
		}
		// An alert carried over from the previous run waits for a window
		// refilled from here, not from the restart: until now it saw nothing.
		for i := range ent.alerts {
			if st := &ent.alerts[i]; !st.adoptedUntil.IsZero() && st.adoptedAt.Before(ts) {
				st.adoptedAt = ts
			}
		}
		ent.gapOpen = false
	}
	if ts.After(ent.lastSeen) {
		ent.lastSeen = ts
	}
	switch {
	case it.Kind == item.KindMetric && it.Metric == item.MetricLiveStatus:
		if it.Value >= 1 && ent.live < 1 {
			ent.streamStart = ts
		}
		ent.live = it.Value
	case it.Kind.Textual():
		if ent.lastTalk.IsZero() || ts.Sub(ent.lastTalk) >= engineStreamGap {
			ent.streamStart = ts
		}
		if ts.After(ent.lastTalk) {
			ent.lastTalk = ts
		}
	}
	if it.Labels != nil {
		ent.labels = it.Labels
	}
	var id, matched, kw uint64
	remember := e.retractSpan > 0 && it.Kind.Textual() && it.ID != ""
	if remember {
		id = e.msgHash(it.ID)
	}
	for ri, r := range e.rules {
		if !r.match.MatchItem(it) {
			continue
		}
		if ri < 64 {
			matched |= 1 << ri
		}
		for _, sig := range r.signals {
			if !sig.wants(it) {
				continue
			}
			sts := ts
			if sig.window > 0 && sts.Before(now.Add(-sig.window)) {
				sts = now
			}
			s := ent.series[sig.idx]
			if s == nil {
				s = newSignalSeries(sig, sts)
				ent.series[sig.idx] = s
			}
			s.streamStart = ent.streamStart
			if !sig.observe(s, it, sts, id) {
				e.metrics.late.Inc()
			}
			if remember {
				kw |= sig.keywordBit(&it.Score)
			}
		}
	}
	if remember && matched != 0 {
		e.recordLocked(ent, it, id, ts, now, matched, kw)
	}
	if it.Kind == item.KindMetric && it.Metric == item.MetricModeration {
		e.moderateLocked(ent, it)
	}
}

// keyEntryLocked returns the key's entry, making it (added) if the engine
// holds none.
func (e *Engine) keyEntryLocked(k engineKey) (ent *engineKeyEntry, added bool) {
	if ent = e.keys[k]; ent != nil {
		return ent, false
	}
	ent = &engineKeyEntry{key: k, series: make([]*signalSeries, e.nsignals), alerts: make([]alertState, len(e.rules)), live: -1}
	e.keys[k] = ent
	e.keyList = append(e.keyList, ent)
	e.rooms[k.source] = append(e.rooms[k.source], ent)
	return ent, true
}

// Evaluate evaluates every rule for every key at now and publishes the
// state changes to the sink, in rule order then key order. Events the sink
// refuses are kept and offered again on the next call; the first error is
// returned.
func (e *Engine) Evaluate(ctx context.Context, now time.Time) error {
	start := time.Now()
	e.mu.Lock()
	events := e.retained
	e.retained = nil
	for ri, r := range e.rules {
		events = e.evaluateRuleLocked(ri, r, now, events)
	}
	if now.Sub(e.swept) >= time.Hour {
		e.sweepLocked(now)
	}
	e.mu.Unlock()
	e.metrics.evaluations.Inc()
	e.metrics.evalSeconds.Observe(time.Since(start).Seconds())
	return e.publish(ctx, events)
}

func (e *Engine) evaluateRuleLocked(ri int, r *compiledRule, now time.Time, events []Event) []Event {
	primary := r.signals[0]
	for _, ent := range e.keyList {
		s := ent.series[primary.idx]
		if s == nil {
			if ent.alerts[ri].adoptedUntil.IsZero() {
				continue
			}
			// Adopted and not seen since the restart: the lifecycle
			// decides whether to keep waiting.
			var in lifecycleInput
			events = e.lifecycleStep(r, ent, &ent.alerts[ri], &in, now, events)
			continue
		}
		var in lifecycleInput
		// A baseline stays where it was while the alert is open.
		st := ent.alerts[ri].state
		s.refHeld = st == Pending || st == Firing
		s.streamStart = ent.streamStart
		in.res = primary.evaluate(s, now)
		in.condsOK = true
		if len(r.signals) > 1 {
			e.conds = e.conds[:0]
			for _, c := range r.signals[1:] {
				var cr signalResult
				if cs := ent.series[c.idx]; cs != nil {
					cr = c.evaluate(cs, now)
				}
				if !c.conditionHolds(&cr) {
					in.condsOK = false
				}
				e.conds = append(e.conds, cr)
			}
			in.conds = e.conds
		}
		if in.res.ok {
			in.severity, in.thr = r.level(in.res.value)
			if r.kind == KindAbsent && in.res.value < primary.window.Seconds() {
				in.severity = ""
			}
			in.held = r.held(in.res.value)
		}
		events = e.lifecycleStep(r, ent, &ent.alerts[ri], &in, now, events)
	}
	return events
}

// sweepLocked forgets keys that have been silent for idleTTL and have no
// alert open.
func (e *Engine) sweepLocked(now time.Time) {
	e.swept = now
	kept := e.keyList[:0]
	for _, ent := range e.keyList {
		open := false
		for i := range ent.alerts {
			if st := ent.alerts[i].state; st == Pending || st == Firing {
				open = true
				break
			}
		}
		if open || now.Sub(ent.lastSeen) < e.idleTTL {
			kept = append(kept, ent)
			continue
		}
		delete(e.keys, ent.key)
	}
	for i := len(kept); i < len(e.keyList); i++ {
		e.keyList[i] = nil
	}
	e.keyList = kept
	clear(e.rooms)
	for _, ent := range kept {
		e.rooms[ent.key.source] = append(e.rooms[ent.key.source], ent)
	}
	e.metrics.keys.Set(float64(len(e.keyList)))
}

func (e *Engine) publish(ctx context.Context, events []Event) error {
	var first error
	for i, ev := range events {
		if err := ctx.Err(); err != nil {
			e.retain(events[i:])
			return err
		}
		if err := e.sink.Publish(ctx, ev); err != nil {
			e.metrics.publishErrs.Inc()
			e.log.Error("alert sink refused an event; keeping it for the next evaluation",
				"rule", ev.Rule, "event", ev.ID, "state", ev.State, "err", err)
			if first == nil {
				first = fmt.Errorf("publish alert event %s: %w", ev.ID, err)
			}
			e.retain(events[i : i+1])
			continue
		}
		e.metrics.events.WithLabelValues(ev.Rule, string(ev.State)).Inc()
	}
	return first
}

func (e *Engine) retain(evs []Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range evs {
		if len(e.retained) >= engineMaxRetained {
			e.metrics.dropped.Inc()
			e.log.Error("alert retry buffer full; dropping event", "rule", ev.Rule, "event", ev.ID)
			continue
		}
		e.retained = append(e.retained, ev)
	}
}

// Run consumes items and evaluates every EvalInterval. It returns after in
// is closed (with one final evaluation) or when ctx is done (nil: stopping
// is not an error).
func (e *Engine) Run(ctx context.Context, in <-chan item.Item) error {
	t := time.NewTicker(e.opts.EvalInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case it, ok := <-in:
			if !ok {
				now := e.opts.Now()
				if err := e.Evaluate(ctx, now); err != nil && ctx.Err() == nil {
					return fmt.Errorf("final alert evaluation: %w", err)
				}
				if e.opts.Observer != nil {
					e.opts.Observer.Evaluated(now)
				}
				return nil
			}
			e.Observe(&it)
			if e.opts.Observer != nil {
				e.opts.Observer.Observed(&it)
			}
		case <-t.C:
			now := e.opts.Now()
			if err := e.Evaluate(ctx, now); err != nil && ctx.Err() == nil {
				e.log.Warn("alert evaluation could not publish every event", "err", err)
			}
			if e.opts.Observer != nil {
				e.opts.Observer.Evaluated(now)
			}
		}
	}
}
