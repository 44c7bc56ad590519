package config

import (
	"reflect"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Diff is what changed between the config a daemon runs and a new one: the
// sources and rules (by id and name) that were added, removed or changed,
// whether the delivery side (route, inhibitions, receivers) or the
// classifier (keywords, classifier settings) changed, and the settings
// that only a restart can apply.
type Diff struct {
	SourcesAdded, SourcesRemoved, SourcesChanged []string
	SourcesUnchanged                             []string
	RulesAdded, RulesRemoved, RulesChanged       []string
	Delivery                                     bool // route, inhibit or receivers differ
	Classifier                                   bool // classifier settings or keyword groups differ
	Reports                                      bool // reports (review, digest schedules) or ui.public_url differ
	Brands                                       bool // brands (own, rooms) differ
	// NeedsRestart names the settings (store.path, http.listen, …) that
	// differ but cannot change while the daemon runs.
	NeedsRestart []string
}

// Empty reports whether the new config changes nothing.
func (d Diff) Empty() bool {
	return len(d.SourcesAdded)+len(d.SourcesRemoved)+len(d.SourcesChanged)+
		len(d.RulesAdded)+len(d.RulesRemoved)+len(d.RulesChanged)+len(d.NeedsRestart) == 0 &&
		!d.Delivery && !d.Classifier && !d.Reports && !d.Brands
}

// Compare lists what differs between old and new. Entries compare by
// their content: where they sit in the file (their line) does not count,
// so moving a source or rule is not a change. A disabled source counts as
// absent.
func Compare(old, new *Config) Diff {
	var d Diff
	oldSrc := map[string]SourceConfig{}
	for _, s := range old.Sources {
		if !s.Disabled {
			oldSrc[s.ID] = s
		}
	}
	newSrc := map[string]bool{}
	for _, s := range new.Sources {
		if s.Disabled {
			continue
		}
		newSrc[s.ID] = true
		o, ok := oldSrc[s.ID]
		switch {
		case !ok:
			d.SourcesAdded = append(d.SourcesAdded, s.ID)
		case !Same(o, s):
			d.SourcesChanged = append(d.SourcesChanged, s.ID)
		default:
			d.SourcesUnchanged = append(d.SourcesUnchanged, s.ID)
		}
	}
	for id := range oldSrc {
		if !newSrc[id] {
			d.SourcesRemoved = append(d.SourcesRemoved, id)
		}
	}
	sort.Strings(d.SourcesRemoved)

	oldRules := map[string]RuleConfig{}
	for _, r := range old.Rules {
		oldRules[r.Name] = r
	}
	newRules := map[string]bool{}
	for _, r := range new.Rules {
		newRules[r.Name] = true
		o, ok := oldRules[r.Name]
		switch {
		case !ok:
			d.RulesAdded = append(d.RulesAdded, r.Name)
		case !Same(o, r) || !Same(ruleGroups(old, o), ruleGroups(new, r)):
			d.RulesChanged = append(d.RulesChanged, r.Name)
		}
	}
	for name := range oldRules {
		if !newRules[name] {
			d.RulesRemoved = append(d.RulesRemoved, name)
		}
	}
	sort.Strings(d.RulesRemoved)

	d.Delivery = !Same(old.Route, new.Route) || !Same(old.Receivers, new.Receivers)
	d.Classifier = !Same(old.Classifier, new.Classifier) || !Same(old.Keywords, new.Keywords)
	d.Reports = !Same(old.Reports, new.Reports) || old.UI.PublicURL != new.UI.PublicURL
	d.Brands = !Same(old.Brands, new.Brands)

	// Every setting of these sections is read once, when the pipeline is
	// built.
	d.NeedsRestart = append(d.NeedsRestart, changedFields("store", old.Store, new.Store)...)
	d.NeedsRestart = append(d.NeedsRestart, changedFields("http", old.HTTP, new.HTTP)...)
	d.NeedsRestart = append(d.NeedsRestart, changedFields("privacy", old.Privacy, new.Privacy)...)
	d.NeedsRestart = append(d.NeedsRestart, changedFields("limits", old.Limits, new.Limits)...)
	d.NeedsRestart = append(d.NeedsRestart, changedFields("transport", old.Transport, new.Transport)...)
	return d
}

// changedFields names the fields (prefix.yaml_key) in which two values of
// the same struct type differ.
func changedFields(prefix string, a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := 0; i < va.NumField(); i++ {
		f := va.Type().Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || key == "" || key == "-" {
			continue
		}
		if !sameValue(va.Field(i), vb.Field(i)) {
			out = append(out, prefix+"."+key)
		}
	}
	return out
}

// ruleGroups is the keyword groups a rule (or its conditions) names: a
// rule counting a group's matches has changed when the group has.
func ruleGroups(c *Config, r RuleConfig) map[string]KeywordGroup {
	out := map[string]KeywordGroup{}
	add := func(group, category string) {
		if group != "" {
			out[group] = c.Keywords[group]
		}
		if category != "" {
			for name, g := range c.Keywords {
				if g.Category == category {
					out[name] = g
				}
			}
		}
	}
	add(r.Group, r.Category)
	for _, cond := range r.Conditions {
		add(cond.Group, cond.Category)
	}
	return out
}

// Same reports whether two config values (a source, a rule, a receiver
// list, …) say the same thing: fields named Line and the position of YAML
// nodes are ignored, a source's kind-specific keys are compared by their
// YAML content, and regular expressions by their text.
func Same(a, b any) bool {
	return sameValue(reflect.ValueOf(a), reflect.ValueOf(b))
}

var (
	typeOfNode   = reflectTypeOf[yaml.Node]()
	typeOfRegexp = reflectTypeOf[regexp.Regexp]()
)

func sameValue(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		switch a.Type() {
		case typeOfRegexp:
			return a.FieldByName("expr").String() == b.FieldByName("expr").String()
		case typeOfNode:
			return sameFields(a, b, nodeIgnored)
		}
		return sameFields(a, b, map[string]bool{"Line": true})
	case reflect.Slice, reflect.Array:
		if a.Kind() == reflect.Slice && a.IsNil() != b.IsNil() && a.Len()+b.Len() > 0 {
			return false
		}
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		it := a.MapRange()
		for it.Next() {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !sameValue(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return a.IsNil() && b.IsNil()
	}
	return false
}

// nodeIgnored are the fields of a yaml.Node that say where or how a value
// was written, not what it is.
var nodeIgnored = map[string]bool{"Line": true, "Column": true, "Style": true,
	"HeadComment": true, "LineComment": true, "FootComment": true}

func sameFields(a, b reflect.Value, ignored map[string]bool) bool {
	for i := 0; i < a.NumField(); i++ {
		if ignored[a.Type().Field(i).Name] {
			continue
		}
		if !sameValue(a.Field(i), b.Field(i)) {
			return false
		}
	}
	return true
}
