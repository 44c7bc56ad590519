package alerts

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"lookout/config"
	"lookout/internal/loopback"
)

func TestFeishuSignVector(t *testing.T) {
	// The test vector of the Feishu custom bot documentation.
	if got := FeishuSign("test-secret", 1599360473); got != "wSds2BzzFIIGf/WrhUO+NI1q/9j+FRJd3JNHKAq0NZY=" {
		t.Fatalf("FeishuSign = %q", got)
	}
}

func TestFeishuCardSignedAndClassified(t *testing.T) {
	srv := loopback.NewFeishuServer("hook-uuid", "fs-secret")
	defer srv.Close()
	mk := func(secret string) Notifier {
		n, err := NewNotifier(config.ReceiverConfig{Name: "feishu", Feishu: &config.FeishuConfig{
			WebhookURL: config.NewSecret(srv.WebhookURL()), Secret: config.NewSecret(secret)}}, NotifierOptions{ThrottleBackoff: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := mk("fs-secret")
	if retry, err := n.Notify(t.Context(), notifyTestNotification()); err != nil || retry {
		t.Fatalf("Notify: retry=%v err=%v rejected=%v", retry, err, srv.Rejected())
	}
	m := srv.Messages()[0].JSON()
	card, _ := m["card"].(map[string]any)
	header, _ := card["header"].(map[string]any)
	if m["msg_type"] != "interactive" || header["template"] != "red" || m["sign"] == "" || m["timestamp"] == "" {
		t.Fatalf("card shape: %s", srv.Messages()[0].Body)
	}
	b, _ := json.Marshal(card["elements"])
	if !strings.Contains(string(b), "negative_ratio") || !strings.Contains(string(b), "退款") {
		t.Errorf("card lacks numbers or samples: %s", b)
	}

	retry, err := mk("wrong").Notify(t.Context(), notifyTestNotification())
	if err == nil || retry || !strings.Contains(err.Error(), "19021") {
		t.Fatalf("bad sign: retry=%v err=%v; want permanent 19021", retry, err)
	}
	srv.FailNext(loopback.SinkFault{ErrCode: FeishuErrThrottled, ErrMsg: "frequency limited"}, 1)
	retry, err = n.Notify(t.Context(), notifyTestNotification())
	var ra *RetryAfterError
	if !retry || !errors.As(err, &ra) {
		t.Fatalf("11232: retry=%v err=%v", retry, err)
	}
}

func TestWeComMarkdownAndMentions(t *testing.T) {
	srv := loopback.NewWeComServer("wk-key")
	defer srv.Close()
	mk := func(url string, mobiles []string) Notifier {
		n, err := NewNotifier(config.ReceiverConfig{Name: "wecom", WeCom: &config.WeComConfig{
			WebhookURL: config.NewSecret(url), MentionMobiles: mobiles}}, NotifierOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	yellow := notifyTestEvent()
	yellow.Severity = Yellow
	if _, err := mk(srv.WebhookURL(), []string{"13800000000"}).Notify(t.Context(), notifyTestNotification(yellow)); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0].JSON()
	md, _ := m["markdown"].(map[string]any)
	content, _ := md["content"].(string)
	if m["msgtype"] != "markdown" || !strings.Contains(content, `<font color="comment">**YELLOW · complaint_storm firing`) {
		t.Fatalf("markdown shape: %s", srv.Messages()[0].Body)
	}
	// Red with mobiles: text with mentioned_mobile_list so phones ring.
	if _, err := mk(srv.WebhookURL(), []string{"13800000000"}).Notify(t.Context(), notifyTestNotification()); err != nil {
		t.Fatal(err)
	}
	m = srv.Messages()[1].JSON()
	txt, _ := m["text"].(map[string]any)
	if m["msgtype"] != "text" || txt["mentioned_mobile_list"] == nil {
		t.Fatalf("red mention shape: %s", srv.Messages()[1].Body)
	}
	// A huge group still fits WeCom's 4096-byte limit.
	var evs []Event
	for range 200 {
		e := notifyTestEvent()
		e.Severity = Yellow
		e.Summary = strings.Repeat("负面评论激增", 40)
		evs = append(evs, e)
	}
	if _, err := mk(srv.WebhookURL(), nil).Notify(t.Context(), notifyTestNotification(evs...)); err != nil {
		t.Fatalf("large group: %v", err)
	}
	// Wrong key: permanent 93000.
	retry, err := mk(strings.Replace(srv.WebhookURL(), "wk-key", "bad", 1), nil).Notify(t.Context(), notifyTestNotification())
	if err == nil || retry || !strings.Contains(err.Error(), "93000") || strings.Contains(err.Error(), "key=bad") {
		t.Fatalf("bad key: retry=%v err=%v", retry, err)
	}
	// Over the limit: wait for the next minute.
	srv.FailNext(loopback.SinkFault{ErrCode: WeComErrThrottled, ErrMsg: "api freq out of limit"}, 1)
	retry, err = mk(srv.WebhookURL(), nil).Notify(t.Context(), notifyTestNotification())
	var ra *RetryAfterError
	if !retry || !errors.As(err, &ra) || ra.Wait <= 0 || ra.Wait > 61*time.Second {
		t.Fatalf("45009: retry=%v err=%v", retry, err)
	}
}

func TestWebhookIdempotencyKey(t *testing.T) {
	srv := loopback.NewWebhookServer()
	defer srv.Close()
	n, err := NewNotifier(config.ReceiverConfig{Name: "hook", Webhook: &config.WebhookConfig{
		URL: config.NewSecret(srv.URL()), Headers: map[string]string{"X-Team": "live"}}}, NotifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := notifyTestEvent()
	if _, err := n.Notify(t.Context(), notifyTestNotification(ev)); err != nil {
		t.Fatal(err)
	}
	msg := srv.Messages()[0]
	if msg.Header.Get("Idempotency-Key") != ev.ID || msg.Header.Get("X-Team") != "live" {
		t.Fatalf("headers: %v", msg.Header)
	}
	var p WebhookPayload
	if err := json.Unmarshal(msg.Body, &p); err != nil || p.Count != 1 || p.Events[0].ID != ev.ID || p.Status != "firing" {
		t.Fatalf("payload %s: %v", msg.Body, err)
	}
	// Two events: a stable batch key, the same for the same batch.
	e2 := notifyTestEvent()
	e2.ID += "-b"
	two := notifyTestNotification(ev, e2)
	if WebhookBatchID(two) != WebhookBatchID(notifyTestNotification(ev, e2)) || WebhookBatchID(two) == ev.ID {
		t.Fatal("batch id not stable or not distinct")
	}
	srv.FailNext(loopback.SinkFault{Status: 503, RetryAfter: "2"}, 1)
	retry, err := n.Notify(t.Context(), two)
	var ra *RetryAfterError
	if !retry || !errors.As(err, &ra) || ra.Wait != 2*time.Second {
		t.Fatalf("503 Retry-After: retry=%v err=%v", retry, err)
	}
	// A template must produce JSON.
	bad, _ := NewNotifier(config.ReceiverConfig{Name: "hook", Webhook: &config.WebhookConfig{URL: config.NewSecret(srv.URL()), Template: `not json {{.Count}}`}}, NotifierOptions{})
	if retry, err := bad.Notify(t.Context(), two); err == nil || retry || NotifyReason(err) != "template" {
		t.Fatalf("non-JSON template: retry=%v err=%v", retry, err)
	}
	good, _ := NewNotifier(config.ReceiverConfig{Name: "hook", Webhook: &config.WebhookConfig{URL: config.NewSecret(srv.URL()), Template: `{"n":{{.Count}},"title":{{json .Title}}}`}}, NotifierOptions{})
	if _, err := good.Notify(t.Context(), two); err != nil {
		t.Fatal(err)
	}
	last := srv.Messages()[len(srv.Messages())-1]
	if !bytes.Contains(last.Body, []byte(`"n":2`)) {
		t.Fatalf("templated body %s", last.Body)
	}
}

func TestConsoleOutput(t *testing.T) {
	var buf bytes.Buffer
	n, err := NewNotifier(config.ReceiverConfig{Name: "console", Console: &config.ConsoleConfig{}}, NotifierOptions{Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	resolved := notifyTestEvent()
	resolved.State, resolved.Prev, resolved.Samples = Resolved, Firing, nil
	if _, err := n.Notify(t.Context(), notifyTestNotification(notifyTestEvent())); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(t.Context(), notifyTestNotification(resolved)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "\x1b[") {
		t.Fatal("colour codes written to a non-terminal")
	}
	notifyGolden(t, "console.txt", buf.Bytes())

	on := true
	buf.Reset()
	n, _ = NewNotifier(config.ReceiverConfig{Name: "console", Console: &config.ConsoleConfig{Color: &on}}, NotifierOptions{Out: &buf})
	_, _ = n.Notify(t.Context(), notifyTestNotification())
	if !strings.Contains(buf.String(), consoleRed) {
		t.Fatalf("forced colour missing: %q", buf.String())
	}
}

func TestConsolePadCJK(t *testing.T) {
	if got := consoleWidth("退款ab"); got != 6 {
		t.Fatalf("width %d", got)
	}
	if got := consolePad("退款", 6); got != "退款  " {
		t.Fatalf("pad %q", got)
	}
}

// TestChatSinkGoldenShapes pins the request bodies of Feishu, WeCom and
// the generic webhook at a fixed clock.
func TestChatSinkGoldenShapes(t *testing.T) {
	opts := NotifierOptions{Now: func() time.Time { return notifyTestNow }}.withDefaults()
	fs, err := newFeishuNotifier("feishu", &config.FeishuConfig{WebhookURL: config.NewSecret("http://x/hook"), Secret: config.NewSecret("test-secret")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	fm, _ := fs.build(notifyTestNotification())
	if fm.Sign != FeishuSign("test-secret", notifyTestNow.Unix()) {
		t.Fatal("feishu sign")
	}
	b, _ := notifyJSON(fm)
	notifyGolden(t, "feishu_card.json", b)

	wc, err := newWeComNotifier("wecom", &config.WeComConfig{WebhookURL: config.NewSecret("http://x/")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	wm, _ := wc.build(notifyTestNotification())
	b, _ = notifyJSON(wm)
	notifyGolden(t, "wecom_markdown.json", b)

	wh, err := newWebhookNotifier("hook", &config.WebhookConfig{URL: config.NewSecret("http://x/")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err = wh.body(notifyTestNotification())
	if err != nil {
		t.Fatal(err)
	}
	notifyGolden(t, "webhook_payload.json", b)
}

// A template that renders more than a platform takes (a 33 KB message)
// still reaches the robot, cut with a visible marker, instead of being
// refused and lost for that receiver.
func TestRobotsCutMessagesToTheirSizeLimit(t *testing.T) {
	huge := "{{.Title}}\n\n" + strings.Repeat("差评<b>退款</b> ", 2400) // about 33 KB, with characters JSON escapes
	dt := loopback.NewDingTalkServer("tok", "")
	defer dt.Close()
	fs := loopback.NewFeishuServer("hook", "")
	defer fs.Close()
	wc := loopback.NewWeComServer("key")
	defer wc.Close()
	for _, tc := range []struct {
		name string
		rc   config.ReceiverConfig
		last func() []byte
		max  int
	}{
		{"dingtalk", config.ReceiverConfig{Name: "d", DingTalk: &config.DingTalkConfig{WebhookURL: config.NewSecret(dt.WebhookURL()), Template: huge}},
			func() []byte { return dt.Messages()[len(dt.Messages())-1].Body }, loopback.DingTalkMaxBody},
		{"feishu", config.ReceiverConfig{Name: "f", Feishu: &config.FeishuConfig{WebhookURL: config.NewSecret(fs.WebhookURL()), Template: huge}},
			func() []byte { return fs.Messages()[len(fs.Messages())-1].Body }, 20 << 10},
		{"wecom", config.ReceiverConfig{Name: "w", WeCom: &config.WeComConfig{WebhookURL: config.NewSecret(wc.WebhookURL()), Template: huge}},
			func() []byte { return wc.Messages()[len(wc.Messages())-1].Body }, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := NewNotifier(tc.rc, NotifierOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if retry, err := n.Notify(t.Context(), notifyTestNotification()); err != nil {
				t.Fatalf("Notify: retry=%v err=%v", retry, err)
			}
			body := tc.last()
			if len(body) > tc.max {
				t.Fatalf("sent %d bytes, the limit is %d", len(body), tc.max)
			}
			if !bytes.Contains(body, []byte("cut to fit the message size limit")) {
				t.Fatalf("no visible cut marker in %.200s…", body)
			}
			if len(body) < tc.max*3/4 && tc.name != "wecom" {
				t.Errorf("cut to %d bytes: far more than needed (limit %d)", len(body), tc.max)
			}
		})
	}
}
