package alerts

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"lookout/config"
)

// FuzzNotifyRender feeds hostile chat text (what viewers type ends up in
// samples and summaries) through every sink's message builder: nothing may
// panic, every body must be valid JSON within the sink's limits, and user
// text must not break out of its markdown quote.
func FuzzNotifyRender(f *testing.F) {
	f.Add("退款！假货 <script>", "小明", "21452505", "62% negative", "complaint_storm")
	f.Add("**bold** [x](http://e) # h\n> q", "a_b", "room`1", "<@U1> & <!here>", "r")
	f.Add("\xff\xfe bad utf8", "", "", "", "")
	f.Add(strings.Repeat("长", 5000), strings.Repeat("n", 300), "r", strings.Repeat("s", 4000), "x")
	opts := NotifierOptions{Now: func() time.Time { return notifyTestNow }, Out: io.Discard}.withDefaults()
	ding, err := newDingTalkNotifier("d", &config.DingTalkConfig{WebhookURL: config.NewSecret("http://127.0.0.1/robot/send?access_token=x"), AtMobiles: []string{"138"}}, opts)
	if err != nil {
		f.Fatal(err)
	}
	wecom, err := newWeComNotifier("w", &config.WeComConfig{WebhookURL: config.NewSecret("http://127.0.0.1/x")}, opts)
	if err != nil {
		f.Fatal(err)
	}
	feishu, err := newFeishuNotifier("f", &config.FeishuConfig{WebhookURL: config.NewSecret("http://127.0.0.1/x"), Secret: config.NewSecret("s")}, opts)
	if err != nil {
		f.Fatal(err)
	}
	console, _ := newConsoleNotifier("c", &config.ConsoleConfig{}, opts)
	f.Fuzz(func(t *testing.T, text, author, room, summary, rule string) {
		ev := notifyTestEvent()
		ev.Samples[0].Text, ev.Samples[0].Author = text, author
		ev.Room, ev.Summary, ev.Rule = room, summary, rule
		n := notifyTestNotification(ev, ev)

		sm, err := slackBuildMessage(n, nil, notifyTestNow)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(sm)
		if err != nil || !json.Valid(b) {
			t.Fatalf("slack: %v", err)
		}
		if h := sm.Blocks.BlockSet[0]; h == nil {
			t.Fatal("no header")
		}
		dm, err := ding.build(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := notifyJSON(dm); err != nil {
			t.Fatal(err)
		}
		if esc := templateMarkdownEscape(text); strings.ContainsAny(esc, "\n\r") {
			t.Fatalf("escaped sample keeps a newline: %q", esc)
		}
		wm, err := wecom.build(n)
		if err != nil {
			t.Fatal(err)
		}
		if wm.Markdown != nil && len(wm.Markdown.Content) > wecomMarkdownMax {
			t.Fatalf("wecom markdown %d bytes", len(wm.Markdown.Content))
		}
		if wm.Markdown != nil && utf8.ValidString(text+author+room+summary+rule) && !utf8.ValidString(wm.Markdown.Content) {
			t.Fatal("wecom truncation split a character")
		}
		fm, err := feishu.build(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := notifyJSON(fm); err != nil {
			t.Fatal(err)
		}
		if _, err := console.Notify(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	})
}
