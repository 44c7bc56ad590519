package alerts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/template"
	"time"

	"lookout/config"
)

// WeCom group-robot error codes.
const (
	WeComErrThrottled  = 45009 // more than 20 messages a minute
	WeComErrInvalidURL = 93000 // invalid webhook URL (bad key)
)

// WeCom's size limits in bytes.
const (
	wecomMarkdownMax = 4096
	wecomTextMax     = 2048
)

type wecomNotifier struct {
	name    string
	webhook string
	mobiles []string
	tmpl    *template.Template
	client  *http.Client
	now     func() time.Time
}

func newWeComNotifier(name string, c *config.WeComConfig, opts NotifierOptions) (*wecomNotifier, error) {
	if c == nil {
		return nil, errors.New("wecom: no config")
	}
	webhook, err := notifyEndpoint("wecom", "webhook_url", c.WebhookURL)
	if err != nil {
		return nil, err
	}
	t, err := parseReceiverTemplate(name, c.Template, templateWeComDefault)
	if err != nil {
		return nil, err
	}
	return &wecomNotifier{name: name, webhook: webhook, mobiles: c.MentionMobiles, tmpl: t, client: opts.HTTPClient, now: opts.Now}, nil
}

func (w *wecomNotifier) Name() string { return w.name }

// WeComMessage is the robot's request body.
type WeComMessage struct {
	MsgType  string         `json:"msgtype"`
	Markdown *WeComMarkdown `json:"markdown,omitempty"`
	Text     *WeComText     `json:"text,omitempty"`
}

type WeComMarkdown struct {
	Content string `json:"content"`
}

type WeComText struct {
	Content             string   `json:"content"`
	MentionedMobileList []string `json:"mentioned_mobile_list,omitempty"`
}

// WeComResponse is the robot's answer.
type WeComResponse struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// build renders markdown. Markdown cannot @-mention by mobile, so a firing
// red alert with mention_mobiles goes out as text with
// mentioned_mobile_list instead: on a red light, reaching people beats
// formatting.
func (w *wecomNotifier) build(n Notification) (*WeComMessage, error) {
	if n.Report != nil {
		return &WeComMessage{MsgType: "markdown", Markdown: &WeComMarkdown{Content: templateCutBytes(reportText(n.Report), wecomMarkdownMax)}}, nil
	}
	d := newTemplateData(n, w.now())
	if d.Severity == Red && d.Status == "firing" && len(w.mobiles) > 0 {
		var b strings.Builder
		b.WriteString(templateLight(d.Severity) + " " + d.Title + "\n")
		for _, e := range d.Shown {
			fmt.Fprintf(&b, "%s %s · room %s: %s\n", templateEventLight(e), e.Rule, e.Room, e.Summary)
		}
		if d.More > 0 {
			fmt.Fprintf(&b, "…and %d more\n", d.More)
		}
		return &WeComMessage{MsgType: "text", Text: &WeComText{
			Content: templateCutBytes(strings.TrimRight(b.String(), "\n"), wecomTextMax), MentionedMobileList: w.mobiles,
		}}, nil
	}
	body, err := executeTemplate(w.tmpl, d)
	if err != nil {
		return nil, err
	}
	return &WeComMessage{MsgType: "markdown", Markdown: &WeComMarkdown{Content: templateCutBytes(body, wecomMarkdownMax)}}, nil
}

func (w *wecomNotifier) Notify(ctx context.Context, n Notification) (bool, error) {
	msg, err := w.build(n)
	if err != nil {
		return false, err
	}
	var ans WeComResponse
	if retry, err := notifyRobotCall(ctx, "wecom", w.client, w.webhook, w.webhook, msg, &ans, w.now()); err != nil {
		return retry, err
	}
	switch ans.ErrCode {
	case 0:
		return false, nil
	case WeComErrThrottled:
		// The limit is per minute: wait for the next one.
		now := w.now()
		wait := now.Truncate(time.Minute).Add(time.Minute + time.Second).Sub(now)
		return true, &RetryAfterError{Wait: wait, Err: &NotifyError{Reason: "rate_limited", Err: fmt.Errorf("wecom: errcode %d: %s", ans.ErrCode, ans.ErrMsg)}}
	case -1:
		return true, &NotifyError{Reason: "api_error", Err: fmt.Errorf("wecom: errcode %d: %s", ans.ErrCode, ans.ErrMsg)}
	case WeComErrInvalidURL:
		return false, &NotifyError{Reason: "auth", Err: fmt.Errorf("wecom: errcode %d: %s (check the webhook key)", ans.ErrCode, ans.ErrMsg)}
	}
	return false, &NotifyError{Reason: "rejected", Err: fmt.Errorf("wecom: errcode %d: %s", ans.ErrCode, ans.ErrMsg)}
}
