package alerts

import (
	"fmt"
	"regexp"
	"strings"

	"lookout/config"
	"lookout/store"
)

// inhibitRule mutes a target alert while a source alert fires and both
// carry the same values for the equal labels (Alertmanager's model).
type inhibitRule struct {
	source []routeMatcher
	target []routeMatcher
	equal  []string
}

// inhibitDefaultRules: a firing red alert mutes the yellow and green ones
// of the same room — one light per room, the worst.
func inhibitDefaultRules() []inhibitRule {
	return []inhibitRule{{
		source: []routeMatcher{{name: "severity", value: "red"}},
		target: []routeMatcher{{name: "severity", re: regexp.MustCompile(`^(?:yellow|green)$`)}},
		equal:  []string{"room"},
	}}
}

func inhibitBuild(rules []config.InhibitRule) ([]inhibitRule, error) {
	if len(rules) == 0 {
		return inhibitDefaultRules(), nil
	}
	var out []inhibitRule
	for i, rc := range rules {
		src, err := inhibitMatchers(rc.SourceMatch)
		if err != nil {
			return nil, fmt.Errorf("route.inhibit[%d].source_match: %w", i, err)
		}
		dst, err := inhibitMatchers(rc.TargetMatch)
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

func inhibitMatchers(m map[string]string) ([]routeMatcher, error) {
	var out []routeMatcher
	for k, v := range m {
		rm := routeMatcher{name: k, value: v}
		if strings.HasPrefix(v, "~") {
			re, err := regexp.Compile("^(?:" + v[1:] + ")$")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			rm.re = re
		}
		out = append(out, rm)
	}
	return out, nil
}

func inhibitAll(ms []routeMatcher, labels map[string]string) bool {
	for _, m := range ms {
		if !m.matches(labels) {
			return false
		}
	}
	return true
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
func inhibitedBy(rules []inhibitRule, alertID string, labels map[string]string, firing []store.AlertRow) string {
	for _, r := range rules {
		if !inhibitAll(r.target, labels) {
			continue
		}
		for i := range firing {
			a := &firing[i]
			if a.ID == alertID {
				continue
			}
			src := inhibitAlertLabels(a)
			if !inhibitAll(r.source, src) {
				continue
			}
			same := true
			for _, k := range r.equal {
				if src[k] != labels[k] {
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
