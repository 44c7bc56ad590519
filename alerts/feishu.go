package alerts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"text/template"
	"time"

	"lookout/config"
)

// Feishu custom-bot error codes, as its documentation lists them.
const (
	FeishuErrSign      = 19021 // sign mismatch or timestamp not within 1 h
	FeishuErrIP        = 19022 // IP not allowed
	FeishuErrKeyword   = 19024 // keyword not found
	FeishuErrBadReq    = 9499  // bad request (format, size)
	FeishuErrThrottled = 11232 // rate limited
)

// FeishuSign computes the bot signature: base64(HMAC-SHA256(key = ts +
// "\n" + secret, message = empty)), ts in Unix seconds. Unlike DingTalk
// the string is the key, and the result goes into the JSON body.
func FeishuSign(secret string, tsSeconds int64) string {
	mac := hmac.New(sha256.New, []byte(strconv.FormatInt(tsSeconds, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

type feishuNotifier struct {
	name     string
	webhook  string
	secret   string
	tmpl     *template.Template
	client   *http.Client
	now      func() time.Time
	throttle time.Duration
}

func newFeishuNotifier(name string, c *config.FeishuConfig, opts NotifierOptions) (*feishuNotifier, error) {
	if c == nil {
		return nil, errors.New("feishu: no config")
	}
	webhook, err := notifyEndpoint("feishu", "webhook_url", c.WebhookURL)
	if err != nil {
		return nil, err
	}
	t, err := parseReceiverTemplate(name, c.Template, templateMarkdownDefault)
	if err != nil {
		return nil, err
	}
	return &feishuNotifier{name: name, webhook: webhook, secret: c.Secret.Value(), tmpl: t,
		client: opts.HTTPClient, now: opts.Now, throttle: opts.ThrottleBackoff}, nil
}

func (f *feishuNotifier) Name() string { return f.name }

// FeishuMessage is the bot's request body (an interactive card).
type FeishuMessage struct {
	Timestamp string      `json:"timestamp,omitempty"`
	Sign      string      `json:"sign,omitempty"`
	MsgType   string      `json:"msg_type"`
	Content   *FeishuText `json:"content,omitempty"`
	Card      *FeishuCard `json:"card,omitempty"`
}

type FeishuText struct {
	Text string `json:"text"`
}

type FeishuCard struct {
	Config   map[string]any   `json:"config,omitempty"`
	Header   FeishuCardHeader `json:"header"`
	Elements []map[string]any `json:"elements"`
}

type FeishuCardHeader struct {
	Title    FeishuPlainText `json:"title"`
	Template string          `json:"template"` // header colour: red, yellow, green…
}

type FeishuPlainText struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

// FeishuResponse is the bot's answer; code 0 is success.
type FeishuResponse struct {
	Code          *int   `json:"code"`
	Msg           string `json:"msg"`
	StatusCode    *int   `json:"StatusCode"`
	StatusMessage string `json:"StatusMessage"`
}

// feishuBodyMax is the custom robot's limit on a request body, in bytes.
const feishuBodyMax = 20 << 10

// build renders the card, its markdown cut so that the whole body stays
// within feishuBodyMax.
func (f *feishuNotifier) build(n Notification) (*FeishuMessage, error) {
	if r := n.Report; r != nil {
		text := reportText(r)
		return notifyFit(feishuBodyMax, func(textMax int) (*FeishuMessage, error) {
			msg := f.card(TemplateData{Status: "report", Title: r.Title}, templateCutBytes(text, textMax))
			msg.Card.Header.Title.Content = templateTruncate(r.Title, 100)
			msg.Card.Header.Template = "blue"
			return msg, nil
		})
	}
	d := newTemplateData(n, f.now())
	body, err := executeTemplate(f.tmpl, d)
	if err != nil {
		return nil, err
	}
	return notifyFit(feishuBodyMax, func(textMax int) (*FeishuMessage, error) {
		return f.card(d, templateCutBytes(body, textMax)), nil
	})
}

func (f *feishuNotifier) card(d TemplateData, body string) *FeishuMessage {
	color := "green"
	if d.Status == "firing" {
		switch d.Severity {
		case Red:
			color = "red"
		case Yellow:
			color = "yellow"
		}
	}
	msg := &FeishuMessage{MsgType: "interactive", Card: &FeishuCard{
		Config: map[string]any{"wide_screen_mode": true},
		Header: FeishuCardHeader{Title: FeishuPlainText{Tag: "plain_text", Content: templateLight(d.Severity) + " " + d.Title}, Template: color},
		Elements: []map[string]any{
			{"tag": "markdown", "content": body},
		},
	}}
	if f.secret != "" {
		ts := f.now().Unix()
		msg.Timestamp = strconv.FormatInt(ts, 10)
		msg.Sign = FeishuSign(f.secret, ts)
	}
	return msg
}

func (f *feishuNotifier) Notify(ctx context.Context, n Notification) (bool, error) {
	msg, err := f.build(n)
	if err != nil {
		return false, err
	}
	var ans FeishuResponse
	if retry, err := notifyRobotCall(ctx, "feishu", f.client, f.webhook, f.webhook, msg, &ans, f.now()); err != nil {
		return retry, err
	}
	code, text := 0, ans.Msg
	switch {
	case ans.Code != nil:
		code = *ans.Code
	case ans.StatusCode != nil:
		code, text = *ans.StatusCode, ans.StatusMessage
	}
	switch code {
	case 0:
		return false, nil
	case FeishuErrThrottled:
		return true, &RetryAfterError{Wait: min(f.throttle, time.Minute), Err: &NotifyError{Reason: "rate_limited", Err: fmt.Errorf("feishu: code %d: %s", code, text)}}
	case FeishuErrSign, FeishuErrIP, FeishuErrKeyword:
		return false, &NotifyError{Reason: "auth", Err: fmt.Errorf("feishu: code %d: %s (check secret, keyword and IP allow-list)", code, text)}
	}
	return false, &NotifyError{Reason: "rejected", Err: fmt.Errorf("feishu: code %d: %s", code, text)}
}
