package alerts

import (
	"slices"
	"strings"
	"testing"
	"time"

	"lookout/config"
	"lookout/item"
	"lookout/store"
)

// A rule's match map and matchers list select items by their fields
// (source, platform, room, kind) and labels, with every operator.
func TestRuleMatchers(t *testing.T) {
	// Four rooms, each a storm of negative chat that fires a red alert
	// when the rule looks at it.
	stream := func() []item.Item {
		var out []item.Item
		for _, room := range []string{"1", "2", "3", "4"} {
			items := chats(room, 0, 10*time.Second, 10, 10)
			for i := range items {
				switch room {
				case "2":
					items[i].Labels = map[string]string{"brand": "rival"}
				case "3":
					items[i].Platform = "douyin"
				case "4":
					items[i].Source, items[i].Labels = "other", nil
				}
			}
			out = append(out, items...)
		}
		return out
	}
	for _, tc := range []struct {
		match string // the rule's match and/or matchers lines
		rooms string // rooms that fire
	}{
		{"match: { platform: bilibili }", "1,2,4"},
		{"match: { platform: \"~dou.*\" }", "3"},
		{`matchers: ['platform=~"bili.*|douyin"']`, "1,2,3,4"},
		{`matchers: ['platform=~"bili"']`, ""},    // anchored
		{`matchers: ['brand!="rival"']`, "1,3,4"}, // no brand label reads as ""
		{`matchers: ['brand=""']`, "4"},
		{`matchers: ['brand=~"own|rival"', 'source="live"']`, "1,2,3"},
		{`matchers: ['{room!~"[12]", kind="chat"}']`, "3,4"},
		{`matchers: ['kind=~"gift|superchat"']`, ""},
		{"match: { brand: own }\n    matchers: ['platform!=douyin']", "1"}, // both must hold
	} {
		t.Run(tc.match, func(t *testing.T) {
			e, rec := engineTestEngine(t, `
  - name: neg
    kind: negative_ratio
    `+tc.match+`
    window: 1m
    min_volume: 5
    levels: { red: 0.5 }
`)
			items := stream()
			for i := range items {
				e.Observe(&items[i])
			}
			if err := e.Evaluate(t.Context(), engineTestStart.Add(10*time.Second)); err != nil {
				t.Fatal(err)
			}
			var rooms []string
			for _, ev := range rec.take() {
				rooms = append(rooms, ev.Room)
			}
			slices.Sort(rooms)
			if got := strings.Join(rooms, ","); got != tc.rooms {
				t.Fatalf("fired in rooms %q, want %q", got, tc.rooms)
			}
		})
	}
}

// Routes take matchers lists as well as match maps; a child's matchers
// pick the alerts it takes.
func TestRouteMatchers(t *testing.T) {
	t.Setenv("ROUTE_MATCHERS_HOOK", "http://127.0.0.1:1/")
	cfg, err := config.Parse([]byte(`
route:
  receiver: default
  routes:
    - receiver: pager
      matchers: ['severity="red"', 'rule!~"test.*"']
      continue: true
    - receiver: bili-team
      match: { platform: "~bili.*" }
      matchers: ['room!="night"']
    - receiver: night
      matchers: ['{room="night", severity=~"yellow|red"}']
receivers:
  - { name: default, webhook: { url: "${ROUTE_MATCHERS_HOOK}" } }
  - { name: pager, webhook: { url: "${ROUTE_MATCHERS_HOOK}" } }
  - { name: bili-team, webhook: { url: "${ROUTE_MATCHERS_HOOK}" } }
  - { name: night, webhook: { url: "${ROUTE_MATCHERS_HOOK}" } }
`), "routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	root, err := NewRoute(cfg.Route)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rule, room, platform string
		sev                  Severity
		want                 string
	}{
		{"neg", "A", "bilibili", Red, "pager,bili-team"},
		{"test-neg", "A", "bilibili", Red, "bili-team"},
		{"neg", "A", "bilibili", Yellow, "bili-team"},
		{"neg", "night", "bilibili", Yellow, "night"},
		{"neg", "night", "bilibili", Red, "pager,night"},
		{"neg", "night", "bilibili", Green, "default"},
		{"neg", "A", "rss", Yellow, "default"},
	} {
		ev := deliveryTestEvent(tc.rule, tc.room, 2, tc.sev, Firing)
		ev.Platform = tc.platform
		var got []string
		for _, r := range root.Match(EventLabels(&ev)) {
			got = append(got, r.Receiver)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%s %s/%s %s → %s, want %s", tc.rule, tc.platform, tc.room, tc.sev, strings.Join(got, ","), tc.want)
		}
	}
}

// Inhibition rules take source_matchers and target_matchers as well as the
// maps.
func TestInhibitMatchers(t *testing.T) {
	cfg, err := config.Parse([]byte(`
route:
  inhibit:
    - source_matchers: ['severity="red"', 'rule=~"crisis.*"']
      target_matchers: ['severity!="red"']
      target_match: { platform: bilibili }
      equal: [room]
`), "inhibit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := inhibitBuild(cfg.Route.Inhibit)
	if err != nil {
		t.Fatal(err)
	}
	firing := []store.AlertRow{
		{ID: "crisis-A", Rule: "crisis-burst", Severity: "red", State: "firing", Room: "A", Platform: "bilibili"},
		{ID: "neg-B", Rule: "neg", Severity: "red", State: "firing", Room: "B", Platform: "bilibili"},
	}
	for _, tc := range []struct {
		rule, room, platform string
		sev                  Severity
		want                 string // id of the inhibiting alert
	}{
		{"neg", "A", "bilibili", Yellow, "crisis-A"},
		{"neg", "A", "bilibili", Green, "crisis-A"},
		{"neg", "A", "bilibili", Red, ""},    // not a target
		{"neg", "A", "douyin", Yellow, ""},   // target_match fails
		{"neg", "B", "bilibili", Yellow, ""}, // neg-B is no source
		{"neg", "C", "bilibili", Yellow, ""}, // no source in the room
	} {
		ev := deliveryTestEvent(tc.rule, tc.room, 2, tc.sev, Firing)
		ev.Platform = tc.platform
		if got := inhibitedBy(rules, ev.AlertID, EventLabels(&ev), firing); got != tc.want {
			t.Errorf("%s %s/%s %s inhibited by %q, want %q", tc.rule, tc.platform, tc.room, tc.sev, got, tc.want)
		}
	}
	// Without rules, a red alert mutes yellow and green ones of its room.
	def, _ := inhibitBuild(nil)
	for sev, want := range map[Severity]string{Yellow: "neg-B", Green: "neg-B", Red: ""} {
		ev := deliveryTestEvent("x", "B", 2, sev, Firing)
		if got := inhibitedBy(def, ev.AlertID, EventLabels(&ev), firing); got != want {
			t.Errorf("default rule: %s inhibited by %q, want %q", sev, got, want)
		}
	}
}
