package scenario

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"lookout/alerts"
	"lookout/config"
	"lookout/item"
	"lookout/sentiment"
)

// Scorer scores one text into dst: the sentiment classifier, which also
// matches the config's keyword groups.
type Scorer interface {
	ScoreInto(dst *item.Score, text string)
}

// NewScorer builds the classifier the daemon would build for cfg, without
// hot-term extraction (no rule reads the terms).
func NewScorer(cfg *config.Config) (*sentiment.Classifier, error) {
	return sentiment.New(sentiment.Options{NeutralThreshold: cfg.Classifier.NeutralThreshold, Groups: cfg.Keywords})
}

// Never stands for a delay that did not happen (no alert came).
const Never = time.Duration(math.MaxInt64)

// Notification is one alert event that tells people something: a firing
// alert (from pending or inactive) or an escalation from yellow to red.
// Reminders of an alert already firing at the same severity are not
// counted.
type Notification struct {
	At         time.Duration   `json:"at"` // from the start of the stream
	Rule       string          `json:"rule"`
	RuleKind   string          `json:"rule_kind"`
	Severity   alerts.Severity `json:"severity"`
	Escalation bool            `json:"escalation,omitempty"`
	Summary    string          `json:"summary"`
}

// RuleCount is how many notifications one rule sent.
type RuleCount struct {
	Rule   string `json:"rule"`
	Yellow int    `json:"yellow"`
	Red    int    `json:"red"`
}

// Result is what one scenario did to the rules.
type Result struct {
	Scenario    string        `json:"scenario"`
	Kind        Kind          `json:"kind"`
	Description string        `json:"description"`
	Target      Target        `json:"-"`
	Duration    time.Duration `json:"duration"`
	// Source is the source the items were attributed to (see Run).
	Source string `json:"source"`
	Truth  Truth  `json:"truth"`

	Messages int `json:"messages"` // chat messages replayed
	Metrics  int `json:"metrics"`  // KPI samples replayed

	Notifications []Notification `json:"notifications"`
	Yellow        int            `json:"yellow"`
	Red           int            `json:"red"`
	PerHour       float64        `json:"per_hour"`
	ByRule        []RuleCount    `json:"by_rule"`
	// BeforeOnset counts notifications before the trouble started (false
	// alarms of a crisis or KPI scenario). RedAtOnset says a red alert
	// raised before the onset (by a KPI rule, in a KPI scenario) was still
	// firing at it; it does not count as the red of ToRed.
	BeforeOnset int  `json:"before_onset"`
	RedAtOnset  bool `json:"red_at_onset"`

	// Crisis scenarios: from Truth.Visible to the first notification of
	// any rule (ToAlert, yellow or red) and to the first red one, counting
	// notifications from the onset on. KPI scenarios: from Truth.BadFrom,
	// counting KPI rules only. Never when none came; negative when the
	// alert came before the crisis was visible.
	ToAlert time.Duration `json:"to_alert"`
	ToRed   time.Duration `json:"to_red"`

	// KPI scenarios: Hold is the share of the bad interval, from the first
	// KPI alert on, during which a KPI alert was firing (-1 elsewhere).
	// Resolved says every KPI alert had resolved by the end of a stream
	// whose KPI recovered, ResolvedAfter how long after the recovery the
	// last one did.
	// AfterRecovery counts notifications of any rule once the KPI has
	// recovered.
	Hold          float64       `json:"hold"`
	Resolved      bool          `json:"resolved"`
	ResolvedAfter time.Duration `json:"resolved_after"`
	AfterRecovery int           `json:"after_recovery"`

	Checks []Check `json:"checks"`
	Pass   bool    `json:"pass"`

	Elapsed time.Duration `json:"elapsed"` // wall time of the run
}

// textRuleKinds are the rule kinds about what people say or whether the
// room speaks at all; every other kind (metric_threshold, metric_drop,
// anomaly, and kinds added later) is a KPI rule.
var textRuleKinds = map[string]bool{
	alerts.KindNegativeRatio: true,
	alerts.KindKeywordBurst:  true,
	alerts.KindVolumeSpike:   true,
	alerts.KindAbsent:        true,
	alerts.KindSourceBroken:  true,
}

// IsKPIRule reports whether a rule kind watches a KPI.
func IsKPIRule(kind string) bool { return !textRuleKinds[kind] }

// standIn picks the source generated items are attributed to: the
// config's first live-room source (a kind named *_live), so that rules
// matching on its id or labels see them, else Source.
func standIn(cfg *config.Config) (source, platform string, labels map[string]string) {
	for _, s := range cfg.Sources {
		if !s.Disabled && strings.HasSuffix(s.Kind, "_live") {
			return s.ID, strings.TrimSuffix(s.Kind, "_live"), s.Labels
		}
	}
	return Source, Platform, nil
}

// Run generates the scenario, scores every message with sc, replays it
// through cfg's rules (alerts.Backtest) and measures what fired. Items are
// attributed to the config's first live-room source when it has one.
func Run(ctx context.Context, cfg *config.Config, sc Scorer, s *Scenario) (*Result, error) {
	began := time.Now()
	src, platform, labels := standIn(cfg)
	tr := newTruthTracker(s)
	var msgs, metrics int
	events, err := alerts.BacktestRestarts(ctx, cfg, func(fn func(item.Item) error) error {
		for it, l := range s.Items() {
			tr.add(it, l)
			it.Source, it.Platform, it.Labels = src, platform, labels
			if it.Kind.Textual() && it.Text != "" {
				msgs++
				sc.ScoreInto(&it.Score, it.Text)
			} else {
				metrics++
				it.Score = item.Score{Groups: it.Score.Groups[:0], Terms: it.Score.Terms[:0]}
			}
			if err := fn(*it); err != nil {
				return err
			}
		}
		return nil
	}, s.restarts())
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	r := &Result{Scenario: s.Name, Kind: s.Kind, Description: s.Description, Target: s.Target,
		Duration: s.Duration, Source: src, Truth: tr.truth(), Messages: msgs, Metrics: metrics}
	r.measure(events)
	r.Checks = Evaluate(r)
	r.Pass = true
	for _, c := range r.Checks {
		r.Pass = r.Pass && c.Pass
	}
	r.Elapsed = time.Since(began)
	return r, nil
}

// RunAll runs the scenarios, several at once, and returns their results
// in the same order.
func RunAll(ctx context.Context, cfg *config.Config, sc Scorer, list []*Scenario) ([]*Result, error) {
	out := make([]*Result, len(list))
	errs := make([]error, len(list))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(list)) {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = Run(ctx, cfg, sc, list[i])
			}
		})
	}
	for i := range list {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, errors.Join(errs...)
}

// span is one alert instance's firing time, as offsets.
type span struct {
	from, to time.Duration
	kpi      bool
	red      time.Duration // when it turned red; Never if it did not
}

func (r *Result) measure(events []alerts.Event) {
	per := map[string]*RuleCount{}
	firing := map[string]*span{} // by alert id
	var spans []*span
	for i := range events {
		ev := &events[i]
		at := ev.At.Sub(Start)
		kpi := IsKPIRule(ev.RuleKind)
		switch ev.State {
		case alerts.Firing:
			if firing[ev.AlertID] == nil {
				sp := &span{from: at, to: r.Duration, kpi: kpi, red: Never}
				firing[ev.AlertID] = sp
				spans = append(spans, sp)
			}
			if sp := firing[ev.AlertID]; ev.Severity == alerts.Red && sp.red == Never {
				sp.red = at
			}
			esc := ev.Prev == alerts.Firing && ev.Severity.Rank() > ev.PrevSeverity.Rank()
			if ev.Prev == alerts.Firing && !esc {
				continue // a reminder
			}
			r.Notifications = append(r.Notifications, Notification{At: at, Rule: ev.Rule, RuleKind: ev.RuleKind,
				Severity: ev.Severity, Escalation: esc, Summary: ev.Summary})
			rc := per[ev.Rule]
			if rc == nil {
				rc = &RuleCount{Rule: ev.Rule}
				per[ev.Rule] = rc
			}
			if ev.Severity == alerts.Red {
				r.Red++
				rc.Red++
			} else {
				r.Yellow++
				rc.Yellow++
			}
		case alerts.Resolved:
			if sp := firing[ev.AlertID]; sp != nil {
				sp.to = at
				delete(firing, ev.AlertID)
			}
		}
	}
	for _, rc := range per {
		r.ByRule = append(r.ByRule, *rc)
	}
	sort.Slice(r.ByRule, func(i, j int) bool { return r.ByRule[i].Rule < r.ByRule[j].Rule })
	if h := r.Duration.Hours(); h > 0 {
		r.PerHour = float64(len(r.Notifications)) / h
	}

	r.ToAlert, r.ToRed, r.Hold = Never, Never, -1
	t := &r.Truth
	if t.Onset >= 0 {
		for _, n := range r.Notifications {
			if n.At < t.Onset {
				r.BeforeOnset++
			}
		}
	}
	redAtOnset := func(kpiOnly bool) bool {
		for _, sp := range spans {
			if (sp.kpi || !kpiOnly) && sp.red < t.Onset && sp.to > t.Onset {
				return true
			}
		}
		return false
	}
	switch r.Kind {
	case KindCrisis:
		if t.Onset < 0 || t.Visible < 0 {
			return
		}
		r.RedAtOnset = redAtOnset(false)
		for _, n := range r.Notifications {
			if n.At < t.Onset {
				continue
			}
			if r.ToAlert == Never {
				r.ToAlert = n.At - t.Visible
			}
			if n.Severity == alerts.Red && r.ToRed == Never {
				r.ToRed = n.At - t.Visible
			}
		}
	case KindKPI:
		if t.BadFrom < 0 {
			return
		}
		r.RedAtOnset = redAtOnset(true)
		for _, n := range r.Notifications {
			if n.At < t.BadFrom || !IsKPIRule(n.RuleKind) {
				continue
			}
			if r.ToAlert == Never {
				r.ToAlert = n.At - t.BadFrom
			}
			if n.Severity == alerts.Red && r.ToRed == Never {
				r.ToRed = n.At - t.BadFrom
			}
		}
		var kpi []*span
		for _, sp := range spans {
			if sp.kpi {
				kpi = append(kpi, sp)
			}
		}
		r.Hold = holdShare(kpi, t.BadFrom, t.BadTo)
		if t.Recovers {
			for _, n := range r.Notifications {
				if n.At >= t.BadTo {
					r.AfterRecovery++
				}
			}
			r.Resolved = true
			for _, sp := range kpi {
				if sp.to >= r.Duration {
					r.Resolved = false // still firing at the end
				}
				if sp.to > t.BadTo && sp.to-t.BadTo > r.ResolvedAfter {
					r.ResolvedAfter = sp.to - t.BadTo
				}
			}
		}
	}
}

// holdShare is the share of [from, to], counted from the first moment a
// span is active in it, that some span covers; 0 when none ever is.
func holdShare(spans []*span, from, to time.Duration) float64 {
	type iv struct{ a, b time.Duration }
	var ivs []iv
	for _, sp := range spans {
		a, b := max(sp.from, from), min(sp.to, to)
		if b > a {
			ivs = append(ivs, iv{a, b})
		}
	}
	if len(ivs) == 0 {
		return 0
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].a < ivs[j].a })
	start := ivs[0].a
	if to <= start {
		return 1
	}
	var covered time.Duration
	cur := ivs[0]
	for _, v := range ivs[1:] {
		if v.a <= cur.b {
			cur.b = max(cur.b, v.b)
			continue
		}
		covered += cur.b - cur.a
		cur = v
	}
	covered += cur.b - cur.a
	return float64(covered) / float64(to-start)
}
