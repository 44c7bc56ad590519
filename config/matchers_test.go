package config

import (
	"strings"
	"testing"
)

// Every place that matches labels takes a `matchers:` list in
// Alertmanager's syntax besides its map; both are checked as the file
// loads, and errors name the file, line and field.
func TestMatchersInConfig(t *testing.T) {
	t.Setenv("MATCH_TEST_HOOK", "https://example.com/hook")
	const recv = "receivers: [{name: hook, webhook: {url: \"${MATCH_TEST_HOOK}\"}}]\n"
	for _, tc := range []struct {
		name string
		yaml string
		want string // error text; "" for a config that loads
		// check looks at a config that loaded.
		check func(t *testing.T, c *Config)
	}{
		{
			name: "route matchers",
			yaml: "route:\n  receiver: hook\n  routes:\n    - matchers: ['severity=~\"red|yellow\"', 'room!=\"1\", rule=~\"neg.*\"']\n      match: {platform: bilibili}\n" + recv,
			check: func(t *testing.T, c *Config) {
				got := matchersString(c.Route.Routes[0].Matchers)
				if got != `severity=~"red|yellow" room!="1" rule=~"neg.*"` {
					t.Errorf("route matchers: %s", got)
				}
			},
		},
		{
			name: "route matchers block list",
			yaml: "route:\n  receiver: hook\n  matchers:\n    - platform=bilibili\n    - '{severity=\"red\"}'\n" + recv,
			check: func(t *testing.T, c *Config) {
				if got := matchersString(c.Route.Matchers); got != `platform="bilibili" severity="red"` {
					t.Errorf("root matchers: %s", got)
				}
			},
		},
		{
			name: "bad route matcher",
			yaml: "route:\n  receiver: hook\n  routes:\n    - matchers:\n        - room=1\n        - 'severity=~\"(\"'\n" + recv,
			want: "x.yaml:6: route.routes[0].matchers[1]: matcher \"severity=~\\\"(\\\"\": bad regular expression: error parsing regexp: missing closing ): `(`",
		},
		{
			name: "route matcher without operator",
			yaml: "route:\n  receiver: hook\n  matchers: [room]\n" + recv,
			want: `x.yaml:3: route.matchers[0]: matcher "room": want an operator after "room"`,
		},
		{
			name: "route matchers not a list",
			yaml: "route:\n  receiver: hook\n  matchers: room=1\n" + recv,
			want: "x.yaml:3: route.matchers: expected a list of matchers",
		},
		{
			name: "route matcher not a string",
			yaml: "route:\n  receiver: hook\n  matchers: [{room: 1}]\n" + recv,
			want: "x.yaml:3: route.matchers[0]: expected a matcher string",
		},
		{
			name: "bad route match map",
			yaml: "route:\n  receiver: hook\n  routes:\n    - receiver: hook\n      match: {room: \"~(\"}\n" + recv,
			want: `x.yaml:4: route.routes[0].match.room: bad regular expression`,
		},
		{
			name: "inhibit matchers",
			yaml: "route:\n  receiver: hook\n  inhibit:\n    - source_matchers: ['severity=\"red\"']\n      target_matchers: ['severity=~\"yellow|green\"']\n      target_match: {platform: bilibili}\n" + recv,
			check: func(t *testing.T, c *Config) {
				ih := c.Route.Inhibit[0]
				if matchersString(ih.SourceMatchers) != `severity="red"` || matchersString(ih.TargetMatchers) != `severity=~"yellow|green"` || ih.TargetMatch["platform"] != "bilibili" {
					t.Errorf("inhibit: %+v", ih)
				}
			},
		},
		{
			name: "bad inhibit source matcher",
			yaml: "route:\n  receiver: hook\n  inhibit:\n    - equal: [room]\n      source_matchers: ['severity!~\"[\"']\n" + recv,
			want: "x.yaml:5: route.inhibit[0].source_matchers[0]",
		},
		{
			name: "bad inhibit target map",
			yaml: "route:\n  receiver: hook\n  inhibit:\n    - equal: [room]\n      target_match: {severity: \"~(\"}\n" + recv,
			want: "x.yaml:4: route.inhibit[0].target_match.severity: bad regular expression",
		},
		{
			name: "rule matchers",
			yaml: "rules:\n  - name: neg\n    kind: negative_ratio\n    window: 1m\n    min_volume: 10\n    levels: {red: 0.5}\n    match: {source: live}\n    matchers: ['platform=~\"bilibili|douyin\"', 'kind!=gift']\n",
			check: func(t *testing.T, c *Config) {
				r := c.Rules[0]
				if matchersString(r.Matchers) != `platform=~"bilibili|douyin" kind!="gift"` || r.Match["source"] != "live" {
					t.Errorf("rule: %+v %s", r.Match, matchersString(r.Matchers))
				}
			},
		},
		{
			name: "bad rule matcher",
			yaml: "rules:\n  - name: neg\n    kind: negative_ratio\n    window: 1m\n    min_volume: 10\n    levels: {red: 0.5}\n    matchers:\n      - 'room=\"1'\n",
			want: `x.yaml:8: rules[0].matchers[0]: matcher "room=\"1": value "1 has no closing quote`,
		},
		{
			name: "bad rule match map",
			yaml: "rules:\n  - name: neg\n    kind: negative_ratio\n    window: 1m\n    min_volume: 10\n    levels: {red: 0.5}\n    match: {\"bad key\": x}\n",
			want: `x.yaml:2: rules[0].match.bad key: bad label name "bad key"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "x.yaml")
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func matchersString(ms Matchers) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, " ")
}
