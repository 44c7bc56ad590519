package config

import (
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"

	"lookout/internal/labels"
)

// Matchers is a `matchers:` list of label matchers in Alertmanager's
// syntax (see package labels), parsed as the file loads:
//
//	matchers: ['severity=~"red|yellow"', 'room!="21452505"']
//
// An entry may hold several matchers separated by commas, optionally in
// braces: '{rule=~"neg.*", platform="bilibili"}'. All must hold.
type Matchers labels.Matchers

// UnmarshalYAML parses each entry; an error names the entry and its line.
func (ms *Matchers) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return &FieldError{Line: n.Line, Msg: `expected a list of matchers, e.g. ['severity=~"red|yellow"', 'room="21452505"']`}
	}
	var out labels.Matchers
	for i, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			return &FieldError{Line: c.Line, Field: fmt.Sprintf("[%d]", i), Msg: `expected a matcher string, e.g. 'severity=~"red|yellow"'`}
		}
		got, err := labels.ParseList(c.Value)
		if err != nil {
			return &FieldError{Line: c.Line, Field: fmt.Sprintf("[%d]", i), Msg: err.Error()}
		}
		out = append(out, got...)
	}
	*ms = Matchers(out)
	return nil
}

// validateMatchMap checks the older map form `match: {label: value}` (a
// value written "~regex" is a regular expression).
func validateMatchMap(m map[string]string, line int, field string) []error {
	var errs []error
	for _, k := range sortedKeys(m) {
		if _, err := labels.FromPair(k, m[k]); err != nil {
			errs = append(errs, ferr(line, field+"."+k, "%v", err))
		}
	}
	return errs
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
