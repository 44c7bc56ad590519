package alerts

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"lookout/config"
	"lookout/internal/loopback"
)

func TestDingTalkSignVector(t *testing.T) {
	// A test vector computed independently of this code (HMAC-SHA256 of "<ts>\n<secret>", base64).
	const secret = "SEC0123456789abcdef"
	if got := DingTalkSign(secret, 1700000000000); got != "TSZbRFUuvaSQaRKUpF970OPCb2/LcQAP3wOvwZIzBZk=" {
		t.Fatalf("DingTalkSign = %q", got)
	}
	u, err := DingTalkSignURL("https://oapi.dingtalk.com/robot/send?access_token=abc", secret, time.UnixMilli(1700000000000))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "sign=TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D") || !strings.Contains(u, "timestamp=1700000000000") || !strings.Contains(u, "access_token=abc") {
		t.Fatalf("signed URL %q", u)
	}
}

func newDingTalkTestNotifier(t *testing.T, c config.DingTalkConfig, now func() time.Time) Notifier {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	n, err := NewNotifier(config.ReceiverConfig{Name: "ding-ops", DingTalk: &c}, NotifierOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDingTalkSignedMarkdownAccepted(t *testing.T) {
	srv := loopback.NewDingTalkServer("tok123", "SECgood")
	defer srv.Close()
	n := newDingTalkTestNotifier(t, config.DingTalkConfig{
		WebhookURL: config.NewSecret(srv.WebhookURL()), Secret: config.NewSecret("SECgood"), AtMobiles: []string{"13800000000"},
	}, nil)
	if retry, err := n.Notify(t.Context(), notifyTestNotification()); err != nil || retry {
		t.Fatalf("Notify: retry=%v err=%v (rejected: %d)", retry, err, len(srv.Rejected()))
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("robot accepted %d messages, want 1", len(msgs))
	}
	var m DingTalkMessage
	if err := json.Unmarshal(msgs[0].Body, &m); err != nil {
		t.Fatal(err)
	}
	if m.MsgType != "markdown" || m.Markdown == nil || m.At == nil || len(m.At.AtMobiles) != 1 || m.At.IsAtAll {
		t.Fatalf("unexpected message: %s", msgs[0].Body)
	}
	if !strings.Contains(m.Markdown.Text, "@13800000000") {
		t.Errorf("red alert text must carry @mobile for the mention to ring: %q", m.Markdown.Text)
	}
	if msgs[0].Query.Get("timestamp") == "" || msgs[0].Query.Get("sign") == "" {
		t.Errorf("request not signed: %v", msgs[0].Query)
	}

	// The body's shape, at a fixed clock.
	fixed := newDingTalkTestNotifier(t, config.DingTalkConfig{WebhookURL: config.NewSecret(srv.WebhookURL()), AtMobiles: []string{"13800000000"}},
		func() time.Time { return notifyTestNow }).(*dingTalkNotifier)
	msg, err := fixed.build(notifyTestNotification())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := notifyJSON(msg)
	notifyGolden(t, "dingtalk_markdown.json", b)

	// A yellow alert mentions nobody.
	ev := notifyTestEvent()
	ev.Severity = Yellow
	msg, _ = fixed.build(notifyTestNotification(ev))
	if len(msg.At.AtMobiles) != 0 || strings.Contains(msg.Markdown.Text, "@138") {
		t.Errorf("yellow alert must not @ anyone: %+v", msg)
	}
}

func TestDingTalkBadSignatureIsPermanent(t *testing.T) {
	srv := loopback.NewDingTalkServer("tok123", "SECgood")
	defer srv.Close()
	n := newDingTalkTestNotifier(t, config.DingTalkConfig{WebhookURL: config.NewSecret(srv.WebhookURL()), Secret: config.NewSecret("SECwrong")}, nil)
	retry, err := n.Notify(t.Context(), notifyTestNotification())
	if err == nil || retry || NotifyReason(err) != "auth" || !strings.Contains(err.Error(), "310000") {
		t.Fatalf("bad signature: retry=%v reason=%q err=%v; want permanent 310000", retry, NotifyReason(err), err)
	}
	if len(srv.Messages()) != 0 || len(srv.Rejected()) != 1 || srv.Rejected()[0].Code != loopback.DingTalkCodeSecurity {
		t.Fatalf("server accepted %d, rejected %v", len(srv.Messages()), srv.Rejected())
	}
	// An hour-old timestamp fails too, even with the right secret.
	stale := newDingTalkTestNotifier(t, config.DingTalkConfig{WebhookURL: config.NewSecret(srv.WebhookURL()), Secret: config.NewSecret("SECgood")},
		func() time.Time { return time.Now().Add(-2 * time.Hour) })
	if retry, err := stale.Notify(t.Context(), notifyTestNotification()); err == nil || retry {
		t.Fatalf("stale timestamp accepted: retry=%v err=%v", retry, err)
	}
	// A wrong token is refused and never leaks into the error.
	u, _ := url.Parse(srv.WebhookURL())
	q := u.Query()
	q.Set("access_token", "LEAKME")
	u.RawQuery = q.Encode()
	wrong := newDingTalkTestNotifier(t, config.DingTalkConfig{WebhookURL: config.NewSecret(u.String())}, nil)
	_, err = wrong.Notify(t.Context(), notifyTestNotification())
	if err == nil || strings.Contains(err.Error(), "LEAKME") {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestDingTalkThrottleBacksOff(t *testing.T) {
	srv := loopback.NewDingTalkServer("tok", "")
	defer srv.Close()
	n := newDingTalkTestNotifier(t, config.DingTalkConfig{WebhookURL: config.NewSecret(srv.WebhookURL())}, nil)
	srv.FailNext(loopback.SinkFault{ErrCode: loopback.DingTalkCodeThrottled}, 1)
	retry, err := n.Notify(t.Context(), notifyTestNotification())
	var ra *RetryAfterError
	if !retry || !errors.As(err, &ra) || ra.Wait < 10*time.Minute {
		t.Fatalf("130101: retry=%v err=%v; want RetryAfterError ≥ 10m", retry, err)
	}
	// The server's own limit: the 21st message in a minute is throttled.
	srv.SetRateLimit(3, time.Minute)
	for i := range 4 {
		retry, err := n.Notify(t.Context(), notifyTestNotification())
		if i < 3 && err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if i == 3 && (!retry || !errors.As(err, &ra)) {
			t.Fatalf("over the limit: retry=%v err=%v", retry, err)
		}
	}
	// 5xx is retryable.
	srv.FailNext(loopback.SinkFault{Status: 502}, 1)
	if retry, err := n.Notify(t.Context(), notifyTestNotification()); !retry || err == nil {
		t.Fatalf("502: retry=%v err=%v", retry, err)
	}
	// Down (connection dropped) is retryable.
	srv.FailNext(loopback.SinkFault{Down: true}, 1)
	if retry, err := n.Notify(t.Context(), notifyTestNotification()); !retry || err == nil || strings.Contains(err.Error(), "access_token") {
		t.Fatalf("down: retry=%v err=%v", retry, err)
	}
}

func TestDingTalkActionCard(t *testing.T) {
	srv := loopback.NewDingTalkServer("tok", "")
	defer srv.Close()
	n := newDingTalkTestNotifier(t, config.DingTalkConfig{WebhookURL: config.NewSecret(srv.WebhookURL()), MsgType: "actionCard",
		ActionURL: "https://live.bilibili.com/{{.Room}}"}, nil)
	if _, err := n.Notify(t.Context(), notifyTestNotification()); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0].JSON()
	card, _ := m["actionCard"].(map[string]any)
	if m["msgtype"] != "actionCard" || card["singleURL"] != "https://live.bilibili.com/21452505" {
		t.Fatalf("actionCard shape: %v", m)
	}
	if _, err := NewNotifier(config.ReceiverConfig{Name: "x", DingTalk: &config.DingTalkConfig{WebhookURL: config.NewSecret(srv.WebhookURL()), MsgType: "actionCard"}}, NotifierOptions{}); err == nil {
		t.Fatal("actionCard without action_url must fail")
	}
}
