package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Rule kinds known to the alert engine.
var RuleKinds = []string{"negative_ratio", "keyword_burst", "volume_spike", "metric_threshold", "metric_drop", "anomaly", "absent"}

// RuleConfig is one `rules:` entry. Which keys matter depends on Kind; the
// alert engine validates the combination.
type RuleConfig struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`

	// Match selects the items/metrics the rule looks at: keys source,
	// platform, room, kind, or any source label.
	Match map[string]string `yaml:"match"`

	Window    Duration `yaml:"window"`     // sliding window length
	MinVolume int      `yaml:"min_volume"` // items needed before the rule may fire

	// Levels maps a severity to the value that reaches it. For
	// metric_threshold with op "below", lower is worse.
	Levels Levels `yaml:"levels"`

	Group    string `yaml:"group"`    // keyword_burst: the keyword group's name
	Category string `yaml:"category"` // keyword_burst: or any group of this category

	Metric string `yaml:"metric"` // metric_*: the metric's name
	Op     string `yaml:"op"`     // metric_threshold: above (default) or below

	For            Duration `yaml:"for"`             // pending time before firing
	KeepFiringFor  Duration `yaml:"keep_firing_for"` // stay firing after the condition clears
	Cooldown       Duration `yaml:"cooldown"`        // quiet time after resolve before re-firing
	RepeatInterval Duration `yaml:"repeat_interval"` // re-notify a still-firing alert

	Summary string `yaml:"summary"` // optional text/template for the alert summary

	Line int `yaml:"-"`
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
	names := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		f := fmt.Sprintf("rules[%d]", i)
		if r.Name == "" {
			errs = append(errs, ferr(r.Line, f+".name", "is required"))
		} else if names[r.Name] {
			errs = append(errs, ferr(r.Line, f+".name", "duplicate rule name %q", r.Name))
		}
		names[r.Name] = true
		if !contains(RuleKinds, r.Kind) {
			errs = append(errs, ferr(r.Line, f+".kind", "unknown rule kind %q (known: %v)", r.Kind, RuleKinds))
			continue
		}
		if r.Levels.Yellow == nil && r.Levels.Red == nil && r.Kind != "absent" {
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
		case "metric_threshold", "metric_drop", "anomaly":
			if r.Metric == "" && r.Kind != "anomaly" {
				errs = append(errs, ferr(r.Line, f+".metric", "%s needs a metric", r.Kind))
			}
		}
		if r.Op != "" && r.Op != "above" && r.Op != "below" {
			errs = append(errs, ferr(r.Line, f+".op", "must be above or below, not %q", r.Op))
		}
		if r.Window == 0 && r.Kind != "metric_threshold" {
			errs = append(errs, ferr(r.Line, f+".window", "is required for %s", r.Kind))
		}
	}
	return errs
}
