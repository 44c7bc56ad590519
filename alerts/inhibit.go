package alerts

import (
	"fmt"

	"lookout/config"
	"lookout/internal/labels"
	"lookout/store"
)

// inhibitRule mutes a target alert while a source alert fires and both
// carry the same values for the equal labels (Alertmanager's model).
type inhibitRule struct {
	source labels.Matchers
	target labels.Matchers
	equal  []string
}

// inhibitDefaultRules: a firing red alert mutes the yellow and green ones
// of the same room — one light per room, the worst.
func inhibitDefaultRules() []inhibitRule {
	return []inhibitRule{{
		source: labels.MustParseList(`severity="red"`),
		target: labels.MustParseList(`severity=~"yellow|green"`),
		equal:  []string{"room"},
	}}
}

func inhibitBuild(rules []config.InhibitRule) ([]inhibitRule, error) {
	if len(rules) == 0 {
		return inhibitDefaultRules(), nil
	}
	var out []inhibitRule
	for i, rc := range rules {
		src, err := matchersOf(rc.SourceMatch, rc.SourceMatchers)
		if err != nil {
			return nil, fmt.Errorf("route.inhibit[%d].source_match: %w", i, err)
		}
		dst, err := matchersOf(rc.TargetMatch, rc.TargetMatchers)
		if err != nil {
			return nil, fmt.Errorf("route.inhibit[%d].target_match: %w", i, err)
		}
		eq := rc.Equal
		if len(eq) == 0 {
			eq = []string{"room"}
		}
		out = append(out, inhibitRule{source: src, target: dst, equal: eq})
	}
	return out, nil
}

// inhibitAlertLabels rebuilds the label set of a stored alert.
func inhibitAlertLabels(a *store.AlertRow) map[string]string {
	m := make(map[string]string, len(a.Labels)+6)
	for k, v := range a.Labels {
		m[k] = v
	}
	for k, v := range map[string]string{"rule": a.Rule, "rule_kind": a.RuleKind, "severity": a.Severity,
		"state": a.State, "room": a.Room, "source": a.Source, "platform": a.Platform} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// inhibitedBy returns the id of a firing alert that mutes the event with
// these labels, or "".
func inhibitedBy(rules []inhibitRule, alertID string, ls map[string]string, firing []store.AlertRow) string {
	for _, r := range rules {
		if !r.target.Matches(ls) {
			continue
		}
		for i := range firing {
			a := &firing[i]
			if a.ID == alertID {
				continue
			}
			src := inhibitAlertLabels(a)
			if !r.source.Matches(src) {
				continue
			}
			same := true
			for _, k := range r.equal {
				if src[k] != ls[k] {
					same = false
					break
				}
			}
			if same {
				return a.ID
			}
		}
	}
	return ""
}
