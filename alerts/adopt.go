package alerts

import (
	"fmt"
	"time"

	"lookout/store"
)

// A restart must not change what people were told. The engine keeps its
// windows in memory, so a new run starts blind; the alerts table still
// holds the alerts the last run left pending or firing. Adopt takes them
// over under their own ids and sequence numbers:
//
//   - while the rule has no verdict for the key yet (no data, too little to
//     judge, or a window not yet refilled since the restart) the alert
//     stays as it is, for at most adoptGrace;
//   - once the rule judges, the alert goes on as if there had been no
//     restart: still holding, nobody is told again; cleared, it resolves
//     and the resolution reaches whoever heard of the firing;
//   - with no verdict by the end of the grace, it resolves saying so;
//   - an alert whose rule is gone from the config resolves at once.

// adoptMinGrace is the least time an adopted alert waits for a verdict.
const adoptMinGrace = 5 * time.Minute

// adoptGrace is how long an adopted alert of r waits for a verdict: a few
// of the rule's windows (its evidence must refill), at least adoptMinGrace.
func adoptGrace(r *compiledRule) time.Duration {
	g := adoptMinGrace
	if w := 2*r.signals[0].window + r.cfg.For.D(); w > g {
		g = w
	}
	return g
}

// Adopt takes over the open alerts of a previous run (store.OpenAlerts)
// and returns how many it adopted; alerts whose rule is gone are resolved
// on the next Evaluate. Call it before the first Observe.
func (e *Engine) Adopt(open []store.AlertRow, now time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	byName := make(map[string]int, len(e.rules))
	for i, r := range e.rules {
		byName[r.name] = i
	}
	adopted := 0
	for _, row := range open {
		var state State
		switch row.State {
		case string(Pending):
			state = Pending
		case string(Firing):
			state = Firing
		default:
			continue
		}
		ri, ok := byName[row.Rule]
		if !ok {
			e.retained = append(e.retained, adoptOrphan(row, state, now))
			continue
		}
		r := e.rules[ri]
		ent, _ := e.keyEntryLocked(engineKey{row.Source, row.Room})
		ent.platform = row.Platform
		ent.labels = row.Labels
		if ent.lastSeen.IsZero() {
			ent.lastSeen = now // not swept as idle before the grace is over
		}
		st := &ent.alerts[ri]
		*st = alertState{state: state, severity: Severity(row.Severity), alertID: row.ID, seq: row.LastSeq,
			startedAt: row.StartedAt, lastTrue: now, notifiedAt: now, adoptedAt: now, adoptedUntil: now.Add(adoptGrace(r))}
		if row.Notified {
			st.notifiedSv = st.severity
		}
		if r.kind == KindAbsent {
			// The silence that fired it goes on until an item says
			// otherwise: it began a window before the alert started.
			sig := r.signals[0]
			s := newSignalSeries(sig, now)
			s.lastSeen = row.StartedAt.Add(-sig.window)
			ent.series[sig.idx] = s
		}
		adopted++
	}
	e.metrics.keys.Set(float64(len(e.keyList)))
	return adopted
}

// adoptOrphan resolves an open alert whose rule is no longer configured.
func adoptOrphan(row store.AlertRow, prev State, now time.Time) Event {
	return Event{
		ID: fmt.Sprintf("%s/%d", row.ID, row.LastSeq+1), AlertID: row.ID, Seq: row.LastSeq + 1,
		Rule: row.Rule, RuleKind: row.RuleKind, Severity: Severity(row.Severity), State: Resolved, Prev: prev,
		Labels: row.Labels, Source: row.Source, Platform: row.Platform, Room: row.Room,
		StartedAt: row.StartedAt, At: now, ResolvedAt: now,
		Summary: "Resolved: rule " + row.Rule + " is no longer in the config",
	}
}
