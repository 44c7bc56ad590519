package config

import (
	"strings"
	"testing"
)

func TestRouteConfigParsing(t *testing.T) {
	t.Setenv("RECV_TEST_HOOK", "https://example.com/hook")
	good := `
route:
  receiver: hook
  group_wait: 0s
  group_by: [room, rule]
  inhibit:
    - source_match: {severity: red}
      target_match: {severity: "~yellow|green"}
      equal: [room]
  routes:
    - receiver: ding
      match: {severity: red, platform: "~bili.*"}
      continue: true
receivers:
  - name: hook
    webhook: {url: "${RECV_TEST_HOOK}"}
    rate_limit: 2/s
  - name: ding
    dingtalk: {webhook_url: "${RECV_TEST_HOOK}", msg_type: actionCard, action_url: "https://live.bilibili.com/{{.Room}}"}
`
	c, err := Parse([]byte(good), "good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Route.GroupWaitSet || c.Route.GroupWait != 0 || c.Route.GroupIntervalSet {
		t.Errorf("group_wait: 0s must read as set to zero; interval unset: %+v", c.Route)
	}
	if len(c.Route.Inhibit) != 1 || c.Route.Routes[0].Match["platform"] != "~bili.*" || !c.Route.Routes[0].Continue {
		t.Errorf("route tree: %+v", c.Route)
	}
	if c.Receivers[0].RateLimit != 2 || c.Receivers[1].DingTalk.ActionURL == "" {
		t.Errorf("receivers: %+v", c.Receivers)
	}
	if c.Route.Routes[0].GroupWaitSet {
		t.Error("child route without group_wait must inherit")
	}

	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown route key": {`
route: {receiver: hook, group_wiat: 1s}
receivers: [{name: hook, webhook: {url: "${RECV_TEST_HOOK}"}}]`, "group_wiat"},
		"bad regex": {`
route: {receiver: hook, routes: [{match: {room: "~("}}]}
receivers: [{name: hook, webhook: {url: "${RECV_TEST_HOOK}"}}]`, "route.routes[0].match.room"},
		"nested inhibit": {`
route: {receiver: hook, routes: [{inhibit: [{equal: [room]}]}]}
receivers: [{name: hook, webhook: {url: "${RECV_TEST_HOOK}"}}]`, "inhibition rules belong on the root route"},
		"actionCard without url": {`
route: {receiver: d}
receivers: [{name: d, dingtalk: {webhook_url: "${RECV_TEST_HOOK}", msg_type: actionCard}}]`, "action_url"},
		"bad msg_type": {`
route: {receiver: d}
receivers: [{name: d, dingtalk: {webhook_url: "${RECV_TEST_HOOK}", msg_type: card}}]`, "msg_type"},
		"feishu without url": {`
route: {receiver: f}
receivers: [{name: f, feishu: {}}]`, "feishu.webhook_url"},
		"literal secret": {`
route: {receiver: w}
receivers: [{name: w, wecom: {webhook_url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"}}]`, "environment"},
	} {
		_, err := Parse([]byte(tc.yaml), "bad.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tc.want)
		}
	}
}
