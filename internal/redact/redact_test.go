package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.bilibili.com/x/v2/reply?oid=1&access_key=SECRET": "https://api.bilibili.com/x/v2/reply?…",
		"https://user:pw@example.com/feed.xml#top":                    "https://example.com/feed.xml",
		"https://example.com/feed.xml":                                "https://example.com/feed.xml",
		"http://[::1:bad":                                             "(unparseable URL)",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecretURL(t *testing.T) {
	for _, in := range []string{
		"https://oapi.dingtalk.com/robot/send?access_token=SECRET",
		"https://hooks.slack.com/services/T000/B000/SECRET",
		"https://open.feishu.cn/open-apis/bot/v2/hook/SECRET",
		"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET",
	} {
		got := SecretURL(in)
		if strings.Contains(got, "SECRET") || !strings.HasSuffix(got, "/…") {
			t.Errorf("SecretURL(%q) = %q", in, got)
		}
	}
	if got := SecretURL("not a url"); got != "(redacted URL)" {
		t.Errorf("SecretURL(garbage) = %q", got)
	}
}
