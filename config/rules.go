package config

import (
	"fmt"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Rule kinds known to the alert engine.
var RuleKinds = []string{"negative_ratio", "keyword_burst", "volume_spike", "metric_threshold", "metric_drop", "metric_trend", "anomaly", "absent", "source_broken"}

// RuleConfig is one `rules:` entry. Which keys matter depends on Kind; the
// alert engine validates the combination.
type RuleConfig struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`

	// Match selects the items/metrics the rule looks at: keys source,
	// platform, room, kind, or any source label; a value written "~regex"
	// is an anchored regular expression. Matchers (Alertmanager's syntax,
	// e.g. 'platform=~"bilibili|douyin"') must hold as well.
	Match    map[string]string `yaml:"match"`
	Matchers Matchers          `yaml:"matchers"`

	Window    Duration `yaml:"window"`     // sliding window length
	MinVolume int      `yaml:"min_volume"` // items needed before the rule may fire

	// Levels maps a severity to the value that reaches it. For
	// metric_threshold with op "below", lower is worse.
	Levels Levels `yaml:"levels"`

	Group    string `yaml:"group"`    // keyword_burst: the keyword group's name
	Category string `yaml:"category"` // keyword_burst: or any group of this category

	Metric string `yaml:"metric"` // metric_*: the metric's name
	Op     string `yaml:"op"`     // metric_threshold: above (default) or below

	// Baseline makes negative_ratio, keyword_burst and metric_drop judge
	// the current window against the room's own recent normal: the span
	// of this length that ends where the current window starts. While the
	// alert is pending or firing the baseline stays where it was when the
	// alert began, so a crisis or an audience loss that lasts does not
	// become the new normal and resolve itself. negative_ratio and
	// keyword_burst levels then measure the excess over the baseline
	// (share points, or matches per Per messages); metric_drop levels the
	// fall from it.
	Baseline Duration `yaml:"baseline"`
	// MinHistory: no verdict until the key has been seen this long (a
	// stream that just started has no normal yet). Default: half the
	// baseline.
	MinHistory Duration `yaml:"min_history"`
	// Floor (negative_ratio): the current share must also reach this
	// absolute level, so a room that is almost never negative does not
	// page over a few grumbles.
	Floor *float64 `yaml:"floor"`
	// Per (keyword_burst): count matches per this many messages (e.g.
	// 1000) instead of raw matches, so a busy room does not look like a
	// crisis just because it is busy.
	Per int `yaml:"per"`
	// MinMatches (keyword_burst with per): fewest matches in the window
	// before a rate means anything; default 3.
	MinMatches int `yaml:"min_matches"`
	// ComplaintsOnly (keyword_burst): a match counts only when the message
	// complains: the classifier calls it negative, or it is not a question
	// (我要退款 counts, 怎么申请退款 does not).
	ComplaintsOnly bool `yaml:"complaints_only"`

	For            Duration `yaml:"for"`             // pending time before firing
	KeepFiringFor  Duration `yaml:"keep_firing_for"` // stay firing after the condition clears
	Cooldown       Duration `yaml:"cooldown"`        // quiet time after resolve before re-firing
	RepeatInterval Duration `yaml:"repeat_interval"` // re-notify a still-firing alert

	// Hysteresis keeps a pending/firing alert alive while the value is still
	// within this fraction of the lowest level (above: value ≥ level×(1-h);
	// below: value ≤ level×(1+h)), so a value hovering at the level does not
	// flap. Default 0.1; 0 turns it off.
	Hysteresis *float64 `yaml:"hysteresis"`
	// ResolveAfter is how many consecutive clear evaluations a firing alert
	// needs before it resolves (default 1).
	ResolveAfter int `yaml:"resolve_after"`
	// Severity is the fixed severity of rules without a ladder (absent,
	// source_broken); default yellow.
	Severity string `yaml:"severity"`

	// Conditions are further conditions that must all hold at the same time
	// as the rule's own (combined rules, e.g. negative_ratio AND
	// volume_spike). They share the rule's match and key.
	Conditions []ConditionConfig `yaml:"conditions"`

	// anomaly: Seasonality is auto (default: daily/weekly profile once
	// enough history exists), none, daily or weekly; WarmUp is how many
	// points the baseline needs before it may score (default 30).
	Seasonality string `yaml:"seasonality"`
	WarmUp      int    `yaml:"warm_up"`

	Summary string `yaml:"summary"` // optional text/template for the alert summary

	Line int `yaml:"-"`
}

// ConditionConfig is one extra condition of a combined rule: the value the
// condition kind computes (ratio, count, multiple of baseline, metric, drop,
// robust z) must be above and/or below the given numbers.
type ConditionConfig struct {
	Kind      string   `yaml:"kind"`
	Window    Duration `yaml:"window"`     // default: the rule's window
	MinVolume int      `yaml:"min_volume"` // default: the rule's
	Group     string   `yaml:"group"`
	Category  string   `yaml:"category"`
	Metric    string   `yaml:"metric"`
	Above     *float64 `yaml:"above"`
	Below     *float64 `yaml:"below"`

	Line int `yaml:"-"`
}

func (*ConditionConfig) capturesLine() {}

type conditionAlias ConditionConfig

func (c *ConditionConfig) UnmarshalYAML(n *yaml.Node) error {
	var a conditionAlias
	if err := n.Decode(&a); err != nil {
		return err
	}
	*c = ConditionConfig(a)
	c.Line = n.Line
	return nil
}

// Levels are the thresholds of the severity ladder (红黄绿灯).
type Levels struct {
	Yellow *float64 `yaml:"yellow"`
	Red    *float64 `yaml:"red"`
}

func (*RuleConfig) capturesLine() {}

type ruleAlias RuleConfig

func (r *RuleConfig) UnmarshalYAML(n *yaml.Node) error {
	var a ruleAlias
	if err := n.Decode(&a); err != nil {
		return err
	}
	*r = RuleConfig(a)
	r.Line = n.Line
	return nil
}

func (c *Config) validateRules() []error {
	var errs []error
	cfgKeywords := c.Keywords
	names := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		f := fmt.Sprintf("rules[%d]", i)
		if r.Name == "" {
			errs = append(errs, ferr(r.Line, f+".name", "is required"))
		} else if names[r.Name] {
			errs = append(errs, ferr(r.Line, f+".name", "duplicate rule name %q", r.Name))
		} else if strings.ContainsFunc(r.Name, unicode.IsControl) {
			errs = append(errs, ferr(r.Line, f+".name", "%q holds a control character", r.Name))
		}
		names[r.Name] = true
		errs = append(errs, validateMatchMap(r.Match, r.Line, f+".match")...)
		if !contains(RuleKinds, r.Kind) {
			errs = append(errs, ferr(r.Line, f+".kind", "unknown rule kind %q (known: %v)", r.Kind, RuleKinds))
			continue
		}
		if r.Levels.Yellow == nil && r.Levels.Red == nil && r.Kind != "absent" && r.Kind != "anomaly" && r.Kind != "source_broken" {
			errs = append(errs, ferr(r.Line, f+".levels", "needs yellow and/or red"))
		}
		switch r.Kind {
		case "keyword_burst":
			if r.Group == "" && r.Category == "" {
				errs = append(errs, ferr(r.Line, f+".group", "keyword_burst needs group or category"))
			}
			if r.Group != "" {
				if _, ok := c.Keywords[r.Group]; !ok {
					errs = append(errs, ferr(r.Line, f+".group", "no keyword group %q", r.Group))
				}
			}
		case "source_broken":
			if r.Levels.Yellow != nil || r.Levels.Red != nil {
				errs = append(errs, ferr(r.Line, f+".levels", "source_broken takes severity (yellow or red), not levels"))
			}
			if r.Metric != "" && r.Metric != "source_broken" {
				errs = append(errs, ferr(r.Line, f+".metric", "source_broken watches the source_broken health report; leave metric out"))
			}
			if r.Severity == "green" {
				errs = append(errs, ferr(r.Line, f+".severity", "source_broken is yellow or red, not green"))
			}
		case "metric_threshold", "metric_drop", "metric_trend", "anomaly":
			if r.Metric == "" && r.Kind != "anomaly" {
				errs = append(errs, ferr(r.Line, f+".metric", "%s needs a metric", r.Kind))
			}
		}
		if r.Op != "" && r.Op != "above" && r.Op != "below" {
			errs = append(errs, ferr(r.Line, f+".op", "must be above or below, not %q", r.Op))
		}
		if r.Window == 0 && r.Kind != "metric_threshold" && r.Kind != "source_broken" {
			errs = append(errs, ferr(r.Line, f+".window", "is required for %s", r.Kind))
		}
		if r.Kind == "negative_ratio" && r.MinVolume <= 0 {
			errs = append(errs, ferr(r.Line, f+".min_volume", "negative_ratio needs min_volume (items before a share means anything)"))
		}
		if r.MinVolume < 0 {
			errs = append(errs, ferr(r.Line, f+".min_volume", "must not be negative"))
		}
		if r.Baseline != 0 && r.Kind != "negative_ratio" && r.Kind != "keyword_burst" && r.Kind != "metric_drop" {
			errs = append(errs, ferr(r.Line, f+".baseline", "only negative_ratio, keyword_burst and metric_drop take a baseline"))
		}
		if r.Baseline < 0 || r.MinHistory < 0 {
			errs = append(errs, ferr(r.Line, f+".baseline", "baseline and min_history must not be negative"))
		}
		if r.Floor != nil && (r.Kind != "negative_ratio" || *r.Floor < 0 || *r.Floor > 1) {
			errs = append(errs, ferr(r.Line, f+".floor", "floor is a share in [0, 1] for negative_ratio"))
		}
		if (r.Per != 0 || r.MinMatches != 0 || r.ComplaintsOnly) && r.Kind != "keyword_burst" {
			errs = append(errs, ferr(r.Line, f+".per", "per, min_matches and complaints_only are for keyword_burst"))
		}
		if r.Per < 0 || r.MinMatches < 0 {
			errs = append(errs, ferr(r.Line, f+".per", "per and min_matches must not be negative"))
		}
		if r.Hysteresis != nil && (*r.Hysteresis < 0 || *r.Hysteresis >= 1) {
			errs = append(errs, ferr(r.Line, f+".hysteresis", "must be in [0, 1), not %v", *r.Hysteresis))
		}
		if r.ResolveAfter < 0 {
			errs = append(errs, ferr(r.Line, f+".resolve_after", "must not be negative"))
		}
		if r.Severity != "" && !validSeverity(r.Severity) {
			errs = append(errs, ferr(r.Line, f+".severity", "must be red, yellow or green, not %q", r.Severity))
		}
		switch r.Seasonality {
		case "", "auto", "none", "daily", "weekly":
		default:
			errs = append(errs, ferr(r.Line, f+".seasonality", "must be auto, none, daily or weekly, not %q", r.Seasonality))
		}
		if r.WarmUp < 0 {
			errs = append(errs, ferr(r.Line, f+".warm_up", "must not be negative"))
		}
		y, red := r.Levels.Yellow, r.Levels.Red
		if y != nil && red != nil {
			below := r.Op == "below"
			if !below && *red < *y {
				errs = append(errs, ferr(r.Line, f+".levels", "red (%v) must not be below yellow (%v)", *red, *y))
			}
			if below && *red > *y {
				errs = append(errs, ferr(r.Line, f+".levels", "with op below, red (%v) must not be above yellow (%v)", *red, *y))
			}
		}
		for j := range r.Conditions {
			c := &r.Conditions[j]
			cf := fmt.Sprintf("%s.conditions[%d]", f, j)
			line := c.Line
			if line == 0 {
				line = r.Line
			}
			if !contains(RuleKinds, c.Kind) || c.Kind == "absent" || c.Kind == "source_broken" {
				errs = append(errs, ferr(line, cf+".kind", "unknown condition kind %q (known: %v except absent and source_broken)", c.Kind, RuleKinds))
			}
			if c.Above == nil && c.Below == nil {
				errs = append(errs, ferr(line, cf, "needs above and/or below"))
			}
			if (c.Kind == "metric_threshold" || c.Kind == "metric_drop") && c.Metric == "" {
				errs = append(errs, ferr(line, cf+".metric", "%s needs a metric", c.Kind))
			}
			if c.Kind == "keyword_burst" && c.Group == "" && c.Category == "" {
				errs = append(errs, ferr(line, cf+".group", "keyword_burst needs group or category"))
			}
			if c.Group != "" {
				if _, ok := cfgKeywords[c.Group]; !ok {
					errs = append(errs, ferr(line, cf+".group", "no keyword group %q", c.Group))
				}
			}
		}
	}
	return errs
}
