package alerts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// alertState is where one rule stands for one key:
//
//	inactive ──cond──▶ pending ──for elapsed──▶ firing ──clear (resolve_after
//	   ▲                  │                        │      evaluations and
//	   └──────clear───────┘                        │      keep_firing_for)──▶ resolved
//	   └────────────── cooldown ◀──────────────────┘
//
// An alert instance (AlertID) lives from the first pending evaluation to
// the resolve; its events are numbered by Seq.
type alertState struct {
	state      State
	severity   Severity
	alertID    string
	seq        int
	startedAt  time.Time
	lastTrue   time.Time
	notifiedAt time.Time
	notifiedSv Severity // severity of the last firing notice
	resolvedAt time.Time
	clear      int
	threshold  float64
	suppressed int // evaluations muted by cooldown
	// adoptedAt, adoptedUntil: the alert was adopted from a previous run
	// (Adopt) at adoptedAt and waits until adoptedUntil for the rule's
	// first verdict; both zero once it had one.
	adoptedAt    time.Time
	adoptedUntil time.Time
}

// lifecycleInput is one evaluation of one rule for one key.
type lifecycleInput struct {
	res      signalResult
	conds    []signalResult // evaluated conditions (combined rules)
	condsOK  bool
	severity Severity // "" when no level is reached
	thr      float64
	held     bool // within the hysteresis band of the lowest level
}

// lifecycleAlertID hashes rule, key and start into the stable alert id.
func lifecycleAlertID(rule string, k engineKey, started time.Time) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", rule, k.source, k.room, started.UnixNano())
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// step advances the state machine and returns the events it produced.
func (e *Engine) lifecycleStep(r *compiledRule, ent *engineKeyEntry, st *alertState, in *lifecycleInput, now time.Time, out []Event) []Event {
	if in.res.unseen {
		return out // the engine missed most of the window: keep what people were told
	}
	cond := in.res.ok && in.severity != "" && in.condsOK
	if !st.adoptedUntil.IsZero() {
		// A condition that holds is a verdict at once; one that does not
		// is only once the window holds nothing from before the restart
		// (a half-empty window would clear every count-based rule).
		// A room restored from a profile with no item since the restart
		// has refilled nothing yet.
		refilled := !ent.gapOpen && now.Sub(st.adoptedAt) >= r.signals[0].window
		switch {
		case in.res.ok && (cond || refilled):
			st.adoptedAt, st.adoptedUntil = time.Time{}, time.Time{} // judged again: life goes on
		case now.Before(st.adoptedUntil):
			return out // no verdict yet since the restart: keep what people were told
		}
	}
	hold := in.res.ok && in.held && in.condsOK
	cfg := &r.cfg
	switch st.state {
	case Inactive, "", Resolved:
		if !cond {
			return out
		}
		if cfg.Cooldown > 0 && !st.resolvedAt.IsZero() && now.Sub(st.resolvedAt) < cfg.Cooldown.D() {
			st.suppressed++
			e.metrics.suppressed.Inc()
			return out
		}
		*st = alertState{state: Inactive, severity: in.severity, startedAt: now, lastTrue: now,
			threshold: in.thr, resolvedAt: st.resolvedAt}
		st.alertID = lifecycleAlertID(r.name, ent.key, now)
		if cfg.For <= 0 {
			return e.lifecycleFire(r, ent, st, in, now, out)
		}
		st.state = Pending
		return append(out, e.lifecycleEvent(r, ent, st, in, now, Inactive))
	case Pending:
		if cond || hold {
			if cond {
				st.lastTrue = now
				if in.severity.Rank() > st.severity.Rank() {
					st.severity, st.threshold = in.severity, in.thr
				}
			}
			if now.Sub(st.startedAt) >= cfg.For.D() && cond {
				// Fire at the severity that holds now, not the worst seen
				// while pending: a value that touched red and fell back to
				// yellow is a yellow alert.
				st.severity, st.threshold = in.severity, in.thr
				return e.lifecycleFire(r, ent, st, in, now, out)
			}
			return out
		}
		st.state = Inactive
		return append(out, e.lifecycleEvent(r, ent, st, in, now, Pending))
	case Firing:
		switch {
		case cond:
			st.lastTrue, st.clear = now, 0
			if in.severity.Rank() > st.severity.Rank() {
				// Escalation (yellow → red) is news: tell people.
				st.severity, st.threshold = in.severity, in.thr
				return e.lifecycleFire(r, ent, st, in, now, out)
			}
		case hold:
			st.clear = 0
		default:
			st.clear++
			if st.clear >= r.resolveN && now.Sub(st.lastTrue) >= cfg.KeepFiringFor.D() {
				st.state = Resolved
				ev := e.lifecycleEvent(r, ent, st, in, now, Firing)
				st.state = Inactive
				st.resolvedAt = now
				return append(out, ev)
			}
		}
		if cfg.RepeatInterval > 0 && now.Sub(st.notifiedAt) >= cfg.RepeatInterval.D() {
			return e.lifecycleFire(r, ent, st, in, now, out)
		}
	}
	return out
}

func (e *Engine) lifecycleFire(r *compiledRule, ent *engineKeyEntry, st *alertState, in *lifecycleInput, now time.Time, out []Event) []Event {
	prev := st.state
	if prev == "" {
		prev = Inactive
	}
	st.state = Firing
	st.notifiedAt = now
	st.clear = 0
	out = append(out, e.lifecycleEvent(r, ent, st, in, now, prev))
	st.notifiedSv = st.severity
	return out
}

// lifecycleEvent builds the event for the state st is now in.
func (e *Engine) lifecycleEvent(r *compiledRule, ent *engineKeyEntry, st *alertState, in *lifecycleInput, now time.Time, prev State) Event {
	st.seq++
	state := st.state
	if state == Inactive && prev == Inactive {
		state = Pending
	}
	sig := r.signals[0]
	ev := Event{
		ID:           st.alertID + "/" + strconv.Itoa(st.seq),
		AlertID:      st.alertID,
		Seq:          st.seq,
		Rule:         r.name,
		RuleKind:     r.kind,
		Severity:     st.severity,
		State:        state,
		Prev:         prev,
		PrevSeverity: st.notifiedSv,
		Source:       ent.key.source,
		Platform:     ent.platform,
		Room:         ent.key.room,
		StartedAt:    st.startedAt,
		At:           now,
		Window:       sig.window,
		Value:        in.res.value,
		Threshold:    st.threshold,
	}
	if r.kind == KindAbsent {
		ev.Threshold = sig.window.Seconds()
	}
	if state == Resolved {
		ev.ResolvedAt = now
	}
	ev.Labels = map[string]string{}
	for k, v := range ent.labels {
		ev.Labels[k] = v
	}
	ev.Labels["rule"] = r.name
	ev.Labels["severity"] = string(st.severity)
	ev.Labels["source"] = ent.key.source
	ev.Labels["platform"] = ent.platform
	ev.Labels["room"] = ent.key.room
	if r.category != "" {
		ev.Labels["category"] = r.category
	}
	ev.Numbers = make(map[string]float64, in.res.figures.n+4)
	if r.kind != KindSourceBroken { // yes or no: the 1 says nothing the summary does not
		lifecycleAddFigures(ev.Numbers, &in.res.figures, "")
	}
	for i := range in.conds {
		lifecycleAddFigures(ev.Numbers, &in.conds[i].figures, r.signals[i+1].kind+"_")
	}
	if r.kind != KindAbsent && r.kind != KindSourceBroken {
		ev.Numbers["threshold"] = st.threshold
	}
	ev.Summary = r.describe(&in.res, ent.key, ent.labels, st.threshold)
	if !st.adoptedUntil.IsZero() && !in.res.ok {
		ev.Summary = "no verdict since the daemon restarted (no data, or too little to judge) " + ruleWhere(ent.key)
	}
	for i := range in.conds {
		c := r.signals[i+1]
		ev.Summary += fmt.Sprintf("; and %s %s", c.kind, ruleNum(in.conds[i].value))
	}
	if r.summary != nil {
		var buf bytes.Buffer
		if err := r.summary.Execute(&buf, ev); err == nil {
			ev.Summary = buf.String()
		} else {
			e.log.Warn("alert summary template failed; using the default summary", "rule", r.name, "err", err)
		}
	}
	switch state {
	case Resolved:
		ev.Summary = "Resolved: " + ev.Summary
	case Pending:
		ev.Summary = "Pending: " + ev.Summary
	case Inactive:
		ev.Summary = "Cleared before firing: " + ev.Summary
	case Firing:
		ev.Samples = e.lifecycleSamples(r, ent, now)
	}
	return ev
}

func lifecycleAddFigures(m map[string]float64, f *ruleFigures, prefix string) {
	for i := 0; i < f.n; i++ {
		name := f.list[i].name
		if _, taken := m[name]; taken || prefix != "" && name == "value" {
			name = prefix + name
		}
		m[name] = f.list[i].v
	}
}

func (e *Engine) lifecycleSamples(r *compiledRule, ent *engineKeyEntry, now time.Time) []Sample {
	for _, sig := range r.signals {
		s := ent.series[sig.idx]
		if s == nil || len(s.samples.buf) == 0 {
			continue
		}
		if out := s.samples.top(e.opts.MaxSamples, now.Add(-sig.window)); len(out) > 0 {
			return out
		}
	}
	return nil
}
