package alerts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lookout/config"

	"lookout/internal/testutil"
)

// notifyTestNow is the fixed clock of request-shape tests.
var notifyTestNow = time.Date(2026, 1, 1, 12, 0, 5, 0, time.UTC)

// notifyTestEvent is a red complaint storm in a Bilibili room, with the
// characters every sink must escape in its samples.
func notifyTestEvent() Event {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	return Event{
		ID: "complaint_storm/bili-main/21452505/1767268740000/2", AlertID: "complaint_storm/bili-main/21452505/1767268740000", Seq: 2,
		Rule: "complaint_storm", RuleKind: "negative_ratio", Severity: Red, State: Firing, Prev: Pending,
		Labels: map[string]string{"rule": "complaint_storm", "severity": "red", "source": "bili-main", "platform": "bilibili", "room": "21452505", "team": "live"},
		Source: "bili-main", Platform: "bilibili", Room: "21452505",
		StartedAt: at.Add(-time.Minute), At: at, Window: 2 * time.Minute,
		Value: 0.62, Threshold: 0.4,
		Numbers: map[string]float64{"items": 120, "negative": 74, "negative_ratio": 0.6166},
		Summary: "62% negative over 2m (74 of 120) <b>",
		Samples: []Sample{
			{Source: "bili-main", Author: "小明", Text: "退款！假货 <script> & *bold*", TS: at.Add(-10 * time.Second), Score: -0.9},
			{Source: "bili-main", Author: "user_2", Text: "客服不理人\n第二行", TS: at.Add(-5 * time.Second), Score: -0.8},
		},
	}
}

func notifyTestNotification(evs ...Event) Notification {
	if len(evs) == 0 {
		evs = []Event{notifyTestEvent()}
	}
	return Notification{Receiver: "ops", GroupKey: "{room=21452505}", Events: evs}
}

// notifyGolden compares got (JSON, re-indented) with testdata/delivery/name.
func notifyGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if json.Valid(got) {
		if err := json.Indent(&buf, got, "", "  "); err != nil {
			t.Fatal(err)
		}
		buf.WriteByte('\n')
	} else {
		buf.Write(got)
	}
	testutil.Golden(t, filepath.Join("testdata", "delivery", name), buf.Bytes())
}

func TestRedactURLHidesSecrets(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://hooks.slack.com/services/T000/B000/XXXXSECRET", "https://hooks.slack.com/…"},
		{"https://oapi.dingtalk.com/robot/send?access_token=SECRETTOKEN", "https://oapi.dingtalk.com/…"},
		{"https://open.feishu.cn/open-apis/bot/v2/hook/uuid-secret", "https://open.feishu.cn/…"},
		{"https://example.com", "https://example.com"},
		{"::not a url", "(redacted URL)"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNotifyParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{"Thu, 01 Jan 2026 00:00:30 GMT", 30 * time.Second, true},
		{"999999999", notifyMaxRetryAfter, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	} {
		got, ok := notifyParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("notifyParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTemplateFormatNumber(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    float64
		want string
	}{
		{"negative_ratio", 0.6166, "61.7%"},
		{"items", 120, "120"},
		{"viewers", 1084.5, "1084.5"},
		{"z", 3.14159, "3.142"},
		{"complaint_rate", 0.05, "5.0%"},
	} {
		if got := templateFormatNumber(tc.name, tc.v); got != tc.want {
			t.Errorf("templateFormatNumber(%q, %v) = %q, want %q", tc.name, tc.v, got, tc.want)
		}
	}
}

func TestTemplateTitleCountsAGroup(t *testing.T) {
	var evs []Event
	for i := range 50 {
		e := notifyTestEvent()
		e.ID = fmt.Sprintf("e%d", i)
		evs = append(evs, e)
	}
	d := newTemplateData(notifyTestNotification(evs...), notifyTestNow)
	if d.Title != "RED · 50 alerts firing · room 21452505" || d.Count != 50 || len(d.Shown) != templateShownMax || d.More != 40 {
		t.Fatalf("title %q count %d shown %d more %d", d.Title, d.Count, len(d.Shown), d.More)
	}
}

func TestTemplateMarkdownEscape(t *testing.T) {
	got := templateMarkdownEscape("**退款** [link](x)\n#1 <b>")
	want := `\*\*退款\*\* \[link\](x) \#1 \<b\>`
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestTemplateTruncateBytesKeepsUTF8(t *testing.T) {
	s := templateTruncateBytes("退款退款退款", 8)
	if len(s) > 8 || !json.Valid([]byte(fmt.Sprintf("%q", s))) || s != "退…" {
		t.Fatalf("got %q (%d bytes)", s, len(s))
	}
}

func TestTemplateNumbersUseRuleKind(t *testing.T) {
	e := Event{RuleKind: "negative_ratio", Numbers: map[string]float64{"threshold": 0.5, "items": 201}}
	got := templateNumbers(e)
	if got[0].Name != "items" || got[0].Text != "201" || got[1].Text != "50.0%" {
		t.Fatalf("negative_ratio numbers %+v", got)
	}
	e = Event{RuleKind: "metric_drop", Numbers: map[string]float64{"drop": 0.433, "previous": 3418.6}}
	got = templateNumbers(e)
	if got[0].Text != "43.3%" || got[1].Text != "3418.6" {
		t.Fatalf("metric_drop numbers %+v", got)
	}
	e = Event{RuleKind: "metric_threshold", Value: 1533, Threshold: 1800}
	if got = templateNumbers(e); got[0].Text != "1533" || got[1].Text != "1800" {
		t.Fatalf("fallback numbers %+v", got)
	}
}

// TestNotifierEndpointsAreCheckedAtBuild: a receiver URL that cannot work
// fails when the receiver is built (check-config), naming the receiver, the
// field and the env reference, and never printing the secret itself.
func TestNotifierEndpointsAreCheckedAtBuild(t *testing.T) {
	const secret = "SECRET-TOKEN-123"
	bad := map[string]string{
		"empty":     "",
		"no scheme": "oapi.dingtalk.com/robot/send?access_token=" + secret,
		"ftp":       "ftp://hooks.example.com/" + secret,
		"garbage":   "http://[::1" + secret,
	}
	sinks := map[string]func(s config.Secret) config.ReceiverConfig{
		"slack": func(s config.Secret) config.ReceiverConfig {
			return config.ReceiverConfig{Slack: &config.SlackConfig{WebhookURL: s, Token: config.NewSecret("xoxb")}}
		},
		"dingtalk": func(s config.Secret) config.ReceiverConfig {
			return config.ReceiverConfig{DingTalk: &config.DingTalkConfig{WebhookURL: s}}
		},
		"feishu": func(s config.Secret) config.ReceiverConfig {
			return config.ReceiverConfig{Feishu: &config.FeishuConfig{WebhookURL: s}}
		},
		"wecom": func(s config.Secret) config.ReceiverConfig {
			return config.ReceiverConfig{WeCom: &config.WeComConfig{WebhookURL: s}}
		},
		"webhook": func(s config.Secret) config.ReceiverConfig {
			return config.ReceiverConfig{Webhook: &config.WebhookConfig{URL: s}}
		},
	}
	for sink, build := range sinks {
		for name, raw := range bad {
			if sink == "slack" && raw == "" {
				continue // an empty webhook_url with a token is the bot-token mode
			}
			rc := build(config.NewSecret(raw))
			rc.Name = "ops"
			_, err := NewNotifier(rc, NotifierOptions{})
			if err == nil {
				t.Errorf("%s, %s URL: built", sink, name)
				continue
			}
			msg := err.Error()
			if !strings.Contains(msg, `receiver "ops"`) || !strings.Contains(msg, sink+":") || !strings.Contains(msg, "url") {
				t.Errorf("%s, %s URL: error %q does not name receiver, sink and field", sink, name, msg)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("%s, %s URL: error leaks the secret: %q", sink, name, msg)
			}
		}
		rc := build(config.NewSecret("https://hooks.example.com/robot/send?access_token=" + secret))
		rc.Name = "ops"
		if _, err := NewNotifier(rc, NotifierOptions{}); err != nil {
			t.Errorf("%s: a good URL was refused: %v", sink, err)
		}
	}
}
