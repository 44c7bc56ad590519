package loopback

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

func TestChatSinkSignaturesMatchProtocolVectors(t *testing.T) {
	// The signing recipes of the DingTalk and Feishu documentation, computed independently of the notifiers.
	if got := dingtalkServerSign("SEC0123456789abcdef", 1700000000000); got != "TSZbRFUuvaSQaRKUpF970OPCb2/LcQAP3wOvwZIzBZk=" {
		t.Errorf("dingtalk sign %q", got)
	}
	if got := feishuServerSign("test-secret", 1599360473); got != "wSds2BzzFIIGf/WrhUO+NI1q/9j+FRJd3JNHKAq0NZY=" {
		t.Errorf("feishu sign %q", got)
	}
}

func sinkTestPost(t *testing.T, u string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out
}

func TestDingTalkServerChecksAndThrottles(t *testing.T) {
	s := NewDingTalkServer("tok", "SECk")
	defer s.Close()
	msg := map[string]any{"msgtype": "text", "text": map[string]any{"content": "hi"}}
	signed := func(secret string, ts time.Time) string {
		q := url.Values{}
		q.Set("timestamp", strconv.FormatInt(ts.UnixMilli(), 10))
		q.Set("sign", dingtalkServerSign(secret, ts.UnixMilli()))
		return s.WebhookURL() + "&" + q.Encode()
	}
	if got := sinkTestPost(t, signed("SECk", time.Now()), msg); got["errcode"] != 0.0 {
		t.Fatalf("good request: %v", got)
	}
	for name, u := range map[string]string{
		"wrong secret": signed("SECx", time.Now()),
		"stale":        signed("SECk", time.Now().Add(-2*time.Hour)),
		"unsigned":     s.WebhookURL(),
	} {
		if got := sinkTestPost(t, u, msg); got["errcode"] != float64(DingTalkCodeSecurity) {
			t.Errorf("%s: %v", name, got)
		}
	}
	if got := sinkTestPost(t, signed("SECk", time.Now()), map[string]any{"msgtype": "markdown", "markdown": map[string]any{"title": ""}}); got["errcode"] != float64(DingTalkCodeParam) {
		t.Errorf("empty markdown: %v", got)
	}
	// 20 a minute, then 130101.
	s.SetRateLimit(20, time.Minute)
	codes := map[float64]int{}
	for range 21 {
		codes[sinkTestPost(t, signed("SECk", time.Now()), msg)["errcode"].(float64)]++
	}
	if codes[0] != 20 || codes[float64(DingTalkCodeThrottled)] != 1 {
		t.Fatalf("codes %v", codes)
	}
	// Faults for a while.
	s.SetRateLimit(0, 0)
	s.FailFor(SinkFault{Status: 503}, 200*time.Millisecond)
	resp, err := http.Post(signed("SECk", time.Now()), "application/json", bytes.NewReader([]byte(`{}`)))
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("during fault: %v %v", resp, err)
	}
	resp.Body.Close()
	time.Sleep(250 * time.Millisecond)
	if got := sinkTestPost(t, signed("SECk", time.Now()), msg); got["errcode"] != 0.0 {
		t.Fatalf("after the fault: %v", got)
	}
	s.FailNext(SinkFault{Down: true}, 1)
	if _, err := http.Post(signed("SECk", time.Now()), "application/json", bytes.NewReader([]byte(`{}`))); err == nil {
		t.Fatal("down: the request got an answer")
	}
	if n := len(s.Messages()); n != 22 {
		t.Fatalf("accepted %d messages, want 22 (1 + 20 + 1)", n)
	}
}

func TestWeComAndFeishuServersCheckKeys(t *testing.T) {
	w := NewWeComServer("k1")
	defer w.Close()
	if got := sinkTestPost(t, w.BaseURL()+"/cgi-bin/webhook/send?key=nope", map[string]any{"msgtype": "text", "text": map[string]any{"content": "x"}}); got["errcode"] != 93000.0 {
		t.Errorf("wecom bad key: %v", got)
	}
	big := string(bytes.Repeat([]byte("x"), 4097))
	if got := sinkTestPost(t, w.WebhookURL(), map[string]any{"msgtype": "markdown", "markdown": map[string]any{"content": big}}); got["errcode"] != 40058.0 {
		t.Errorf("wecom oversize: %v", got)
	}
	f := NewFeishuServer("h1", "")
	defer f.Close()
	if got := sinkTestPost(t, f.BaseURL()+"/open-apis/bot/v2/hook/other", map[string]any{"msg_type": "text", "content": map[string]any{"text": "x"}}); got["code"] != 19001.0 {
		t.Errorf("feishu bad hook: %v", got)
	}
	if got := sinkTestPost(t, f.WebhookURL(), map[string]any{"msg_type": "text", "content": map[string]any{"text": "x"}}); got["code"] != 0.0 {
		t.Errorf("feishu good: %v", got)
	}
}
