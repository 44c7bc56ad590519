package config

import (
	"fmt"
	"strings"
	"testing"
)

const diffBase = `store: { path: a.db }
keywords:
  crisis: { any: [退款] }
sources:
  - id: live
    kind: bilibili_live
    room: 1
  - id: news
    kind: rss
    url: https://example.com/a.xml
rules:
  - name: crisis
    kind: keyword_burst
    group: crisis
    window: 1m
    levels: { red: 3 }
  - name: quiet
    kind: absent
    window: 5m
    match: { source: live }
route: { receiver: c }
receivers:
  - name: c
    console: {}
`

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(string) string
		want string
	}{
		{"nothing", func(s string) string { return s }, "empty"},
		{"rules moved", func(s string) string {
			crisis := s[strings.Index(s, "  - name: crisis"):strings.Index(s, "  - name: quiet")]
			quiet := s[strings.Index(s, "  - name: quiet"):strings.Index(s, "route:")]
			return strings.Replace(s, crisis+quiet, "# reordered\n"+quiet+crisis, 1)
		}, "empty"},
		{"source removed, comments added",
			func(s string) string {
				return "# a comment\n\n" + strings.Replace(s, "  - id: live\n    kind: bilibili_live\n    room: 1\n", "", 1) +
					"\n" + "# late\n"
			},
			"sources -[live] ~[] | rules +[] -[] ~[]"},
		{"kind-specific key", func(s string) string { return strings.Replace(s, "a.xml", "b.xml", 1) },
			"sources -[] ~[news] | rules +[] -[] ~[]"},
		{"disabled is removed", func(s string) string {
			return strings.Replace(s, "    room: 1\n", "    room: 1\n    disabled: true\n", 1)
		},
			"sources -[live] ~[] | rules +[] -[] ~[]"},
		{"added source", func(s string) string {
			return strings.Replace(s, "rules:\n", "  - id: more\n    kind: rss\n    url: https://example.com/c.xml\nrules:\n", 1)
		}, "sources +[more] -[] ~[] | rules +[] -[] ~[]"},
		{"keyword group a rule counts", func(s string) string { return strings.Replace(s, "[退款]", "[退款, 假货]", 1) },
			"sources -[] ~[] | rules +[] -[] ~[crisis] | classifier"},
		{"rule setting", func(s string) string { return strings.Replace(s, "window: 5m", "window: 6m", 1) },
			"sources -[] ~[] | rules +[] -[] ~[quiet]"},
		{"rule removed", func(s string) string { return s[:strings.Index(s, "  - name: quiet")] + s[strings.Index(s, "route:"):] },
			"sources -[] ~[] | rules +[] -[quiet] ~[]"},
		{"receiver", func(s string) string {
			return strings.Replace(s, "console: {}", "console: {}\n  - name: d\n    console: {}", 1)
		},
			"sources -[] ~[] | rules +[] -[] ~[] | delivery"},
		{"restart only", func(s string) string {
			return strings.Replace(s, "store: { path: a.db }", "store: { path: b.db }\nhttp: { listen: \"127.0.0.1:9999\" }", 1)
		}, "sources -[] ~[] | rules +[] -[] ~[] | restart [store.path http.listen]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, err := Parse([]byte(diffBase), "a.yaml")
			if err != nil {
				t.Fatal(err)
			}
			next, err := Parse([]byte(tc.edit(diffBase)), "b.yaml")
			if err != nil {
				t.Fatal(err)
			}
			d := Compare(old, next)
			got := "empty"
			if !d.Empty() {
				got = fmt.Sprintf("sources %s-%v ~%v | rules +%v -%v ~%v", plus(d.SourcesAdded), d.SourcesRemoved, d.SourcesChanged,
					d.RulesAdded, d.RulesRemoved, d.RulesChanged)
				if d.Classifier {
					got += " | classifier"
				}
				if d.Delivery {
					got += " | delivery"
				}
				if len(d.NeedsRestart) > 0 {
					got += fmt.Sprintf(" | restart %v", d.NeedsRestart)
				}
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// plus prints added sources only when there are some, so most rows stay
// short.
func plus(added []string) string {
	if len(added) == 0 {
		return ""
	}
	return fmt.Sprintf("+%v ", added)
}

// Same compares by content: lines, comments and YAML style do not count,
// regular expressions compare by their text.
func TestSame(t *testing.T) {
	a, err := NewSourceConfig("id: x\nkind: rss\nurl: 'https://e.com/a'\nlabels: {brand: own}\n")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSourceConfig("\n\n# moved\nid: x\nkind: rss\nurl: \"https://e.com/a\"   # same\nlabels:\n  brand: own\n")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewSourceConfig("id: x\nkind: rss\nurl: https://e.com/b\nlabels: {brand: own}\n")
	if err != nil {
		t.Fatal(err)
	}
	if !Same(a, b) {
		t.Error("the same source written differently compares different")
	}
	if Same(a, c) {
		t.Error("sources with different urls compare the same")
	}
	parse := func(m string) RuleConfig {
		cfg, err := Parse([]byte("rules:\n  - name: r\n    kind: negative_ratio\n    window: 1m\n    min_volume: 10\n    levels: {red: 0.5}\n    matchers: ['"+m+"']\n"), "r.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Rules[0]
	}
	if !Same(parse(`room=~"a.*"`), parse(`room=~"a.*"`)) || Same(parse(`room=~"a.*"`), parse(`room=~"b.*"`)) {
		t.Error("rules with regular expression matchers compare wrongly")
	}
}
