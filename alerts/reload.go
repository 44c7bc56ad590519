package alerts

import (
	"slices"
	"time"

	"lookout/config"
	"lookout/store"
)

// A reload changes the rules while the engine runs, without forgetting
// what it knows:
//
//   - a rule whose config is the same as before (its position in the file
//     aside, and the keyword groups it counts included) keeps its windows,
//     baselines and alerts as they are: an alert that was firing stays
//     firing and nobody is told again;
//   - a changed rule (same name, other settings) starts with empty windows;
//     its open alerts are kept as after a restart (see Adopt): they stay as
//     they are until the rule judges again, for at most a few windows;
//   - a new rule starts with empty windows;
//   - a removed rule's open alerts resolve at the next evaluation, saying
//     the rule was removed; the resolution reaches whoever heard of the
//     firing.

// ReloadResult says what Reload did, by rule name.
type ReloadResult struct {
	Kept, Added, Changed, Removed []string
	// Resolved counts the open alerts of removed rules that resolve.
	Resolved int
}

// Reload replaces the engine's rules by those of cfg (see above). When a
// rule of cfg is invalid it returns the errors, naming rule and line, and
// the engine keeps its rules.
func (e *Engine) Reload(cfg *config.Config, now time.Time) (ReloadResult, error) {
	rules, nsignals, idleTTL, err := engineCompile(cfg, e.opts.MaxSamples)
	if err != nil {
		return ReloadResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	changed := config.Compare(e.cfg, cfg).RulesChanged
	oldByName := make(map[string]int, len(e.rules))
	for i, r := range e.rules {
		oldByName[r.name] = i
	}
	var res ReloadResult
	// from[i] is the old index of new rule i (-1: new); keep[i] says
	// whether its windows carry over.
	from := make([]int, len(rules))
	keep := make([]bool, len(rules))
	for i, r := range rules {
		j, ok := oldByName[r.name]
		switch {
		case !ok:
			from[i] = -1
			res.Added = append(res.Added, r.name)
		case slices.Contains(changed, r.name):
			from[i] = j
			res.Changed = append(res.Changed, r.name)
		default:
			from[i], keep[i] = j, true
			res.Kept = append(res.Kept, r.name)
		}
		delete(oldByName, r.name)
	}
	for name := range oldByName {
		res.Removed = append(res.Removed, name)
	}
	slices.Sort(res.Removed)

	for _, ent := range e.keyList {
		series := make([]*signalSeries, nsignals)
		states := make([]alertState, len(rules))
		for i, r := range rules {
			j := from[i]
			if j < 0 {
				continue
			}
			st := ent.alerts[j]
			if keep[i] {
				// Same config, so the same signals in the same order.
				for k, sig := range r.signals {
					series[sig.idx] = ent.series[e.rules[j].signals[k].idx]
				}
				states[i] = st
				continue
			}
			if st.state != Pending && st.state != Firing {
				states[i].resolvedAt = st.resolvedAt // the cooldown still counts
				continue
			}
			st.adoptedAt, st.adoptedUntil = now, now.Add(adoptGrace(r))
			st.lastTrue, st.clear = now, 0
			states[i] = st
			if r.kind == KindAbsent {
				// As after a restart: the silence that fired it goes on
				// until an item says otherwise.
				sig := r.signals[0]
				s := newSignalSeries(sig, now)
				s.lastSeen = st.startedAt.Add(-sig.window)
				series[sig.idx] = s
			}
		}
		for _, name := range res.Removed {
			j := oldByName[name]
			st := &ent.alerts[j]
			if st.state != Pending && st.state != Firing {
				continue
			}
			e.retained = append(e.retained, reloadOrphan(e.rules[j], ent, st, now))
			res.Resolved++
		}
		ent.series, ent.alerts = series, states
		ent.msgs = msgRing{} // its records name the old rules
	}
	e.cfg, e.rules, e.nsignals, e.idleTTL = cfg, rules, nsignals, idleTTL
	e.indexTextSignals()
	return res, nil
}

// reloadOrphan resolves an open alert whose rule a reload removed.
func reloadOrphan(r *compiledRule, ent *engineKeyEntry, st *alertState, now time.Time) Event {
	labels := make(map[string]string, len(ent.labels)+6)
	for k, v := range ent.labels {
		labels[k] = v
	}
	labels["rule"] = r.name
	labels["severity"] = string(st.severity)
	labels["source"] = ent.key.source
	labels["platform"] = ent.platform
	labels["room"] = ent.key.room
	if r.category != "" {
		labels["category"] = r.category
	}
	row := store.AlertRow{ID: st.alertID, Rule: r.name, RuleKind: r.kind, Severity: string(st.severity),
		Room: ent.key.room, Source: ent.key.source, Platform: ent.platform, StartedAt: st.startedAt,
		Labels: labels, LastSeq: st.seq}
	ev := adoptOrphan(row, st.state, now)
	ev.PrevSeverity = st.notifiedSv
	ev.Summary = "Resolved: rule " + r.name + " was removed from the config " + ruleWhere(ent.key)
	return ev
}
