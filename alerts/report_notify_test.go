package alerts

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"lookout/config"
)

// A report notification reaches a real webhook receiver as a "report"
// payload carrying the Markdown, with the report's key as idempotency key.
func TestWebhookSendsReportNotification(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies [][]byte
		keys   []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
	}))
	defer srv.Close()
	wh, err := newWebhookNotifier("hook", &config.WebhookConfig{URL: config.NewSecret(srv.URL)}, NotifierOptions{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{Key: "report:bili-1:2026-12-02T18:00:00Z", Room: "bili-1", Title: "Stream review: bili-1",
		Markdown: "## bili-1\n\n- 120 comments\n- sentiment -0.12", URL: "http://127.0.0.1:8080/report?room=bili-1"}
	if _, err := wh.Notify(context.Background(), Notification{Receiver: "hook", GroupKey: "report", Report: rep}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(bodies))
	}
	if keys[0] != rep.Key {
		t.Errorf("Idempotency-Key = %q, want %q", keys[0], rep.Key)
	}
	var p WebhookPayload
	if err := json.Unmarshal(bodies[0], &p); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, bodies[0])
	}
	if p.Status != "report" || p.BatchID != rep.Key || p.Title != rep.Title || len(p.Events) != 0 {
		t.Errorf("payload = %+v", p)
	}
	if p.Report == nil || *p.Report != *rep {
		t.Errorf("payload report = %+v, want %+v", p.Report, rep)
	}
}

func TestWebhookRejectsReportWithoutKey(t *testing.T) {
	wh, err := newWebhookNotifier("hook", &config.WebhookConfig{URL: config.NewSecret("http://127.0.0.1:1/")}, NotifierOptions{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	retry, err := wh.Notify(context.Background(), Notification{Receiver: "hook", Report: &Report{Title: "x", Markdown: "y"}})
	if err == nil || retry {
		t.Fatalf("Notify = (%v, %v), want a permanent error", retry, err)
	}
}

func TestSlackReportMessageFitsLimits(t *testing.T) {
	long := make([]byte, 5000)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name       string
		rep        Report
		wantBlocks int
	}{
		{"short with link", Report{Key: "k", Title: "Stream review", Markdown: "*120* comments", URL: "http://h/report?room=r"}, 3},
		{"long without link", Report{Key: "k", Title: string(long), Markdown: string(long)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := slackBuildMessage(Notification{Report: &tt.rep}, nil, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			bs := msg.Blocks.BlockSet
			if len(bs) != tt.wantBlocks {
				t.Fatalf("%d blocks, want %d", len(bs), tt.wantBlocks)
			}
			h := bs[0].(*slack.HeaderBlock).Text.Text
			if n := utf8.RuneCountInString(h); n > 150 {
				t.Errorf("header has %d characters, Slack allows 150", n)
			}
			body := bs[1].(*slack.SectionBlock).Text.Text
			if n := utf8.RuneCountInString(body); n > 3000 {
				t.Errorf("section has %d characters, Slack allows 3000", n)
			}
			if len(tt.rep.Markdown) <= 3000 && body != tt.rep.Markdown {
				t.Errorf("section = %q, want the Markdown unchanged", body)
			}
			if tt.rep.URL != "" && !strings.Contains(bs[2].(*slack.ContextBlock).ContextElements.Elements[0].(*slack.TextBlockObject).Text, tt.rep.URL) {
				t.Errorf("link block does not carry %s", tt.rep.URL)
			}
		})
	}
}

// The Markdown sinks send a report as Markdown with its link, and a report
// far over a platform's limit is cut to fit it.
func TestMarkdownSinksFitReport(t *testing.T) {
	opts := NotifierOptions{}.withDefaults()
	ding, err := newDingTalkNotifier("d", &config.DingTalkConfig{WebhookURL: config.NewSecret("http://127.0.0.1/robot/send?access_token=x")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	wc, err := newWeComNotifier("w", &config.WeComConfig{WebhookURL: config.NewSecret("http://127.0.0.1/")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := newFeishuNotifier("f", &config.FeishuConfig{WebhookURL: config.NewSecret("http://127.0.0.1/")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{100, 100000} {
		rep := &Report{Key: "k", Title: "Stream review", Markdown: strings.Repeat("评", size), URL: "http://h/report?room=r"}
		n := Notification{Report: rep}
		dm, err := ding.build(n)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := notifyJSON(dm)
		if len(b) > dingTalkBodyMax {
			t.Errorf("size %d: DingTalk body %d bytes, limit %d", size, len(b), dingTalkBodyMax)
		}
		wm, err := wc.build(n)
		if err != nil {
			t.Fatal(err)
		}
		if l := len(wm.Markdown.Content); l > wecomMarkdownMax {
			t.Errorf("size %d: WeCom markdown %d bytes, limit %d", size, l, wecomMarkdownMax)
		}
		fm, err := fs.build(n)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := notifyJSON(fm); len(b) > feishuBodyMax {
			t.Errorf("size %d: Feishu body %d bytes, limit %d", size, len(b), feishuBodyMax)
		}
		if fm.Card.Header.Title.Content != rep.Title {
			t.Errorf("Feishu header = %q, want %q", fm.Card.Header.Title.Content, rep.Title)
		}
		if size == 100 {
			if fm.Card.Elements[0]["content"] != reportText(rep) {
				t.Errorf("Feishu content = %v", fm.Card.Elements[0]["content"])
			}
			if dm.Markdown.Text != reportText(rep) || wm.Markdown.Content != reportText(rep) {
				t.Errorf("a short report was altered: %q / %q", dm.Markdown.Text, wm.Markdown.Content)
			}
			if !strings.Contains(dm.Markdown.Text, rep.URL) {
				t.Errorf("DingTalk text lacks the report link")
			}
		}
	}
}

func TestConsolePrintsReport(t *testing.T) {
	var out strings.Builder
	no := false
	c, err := newConsoleNotifier("c", &config.ConsoleConfig{Color: &no}, NotifierOptions{Out: &out}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{Key: "k", Title: "Stream review: r", Markdown: "- 3 comments", URL: "http://h/report?room=r"}
	if _, err := c.Notify(context.Background(), Notification{Report: rep}); err != nil {
		t.Fatal(err)
	}
	want := "Stream review: r\n- 3 comments\n\n[Full report](http://h/report?room=r)\n"
	if out.String() != want {
		t.Errorf("console printed %q, want %q", out.String(), want)
	}
}
