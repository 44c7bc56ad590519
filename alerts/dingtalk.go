package alerts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	"lookout/config"
)

// DingTalk custom-robot error codes, as its documentation lists them.
const (
	DingTalkErrSecurity  = 310000 // keyword missing, sign mismatch, stale timestamp, IP not allowed
	DingTalkErrThrottled = 130101 // more than 20 messages a minute: punished for 10 minutes
)

// DingTalkSign computes the robot signature: base64(HMAC-SHA256(key =
// secret, data = ts + "\n" + secret)), ts in Unix milliseconds. The caller
// URL-encodes it into the query.
func DingTalkSign(secret string, tsMillis int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(tsMillis, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// DingTalkSignURL appends &timestamp=&sign= to a robot webhook URL.
func DingTalkSignURL(webhook, secret string, now time.Time) (string, error) {
	u, err := url.Parse(webhook)
	if err != nil {
		return "", fmt.Errorf("dingtalk: webhook_url does not parse (%s)", RedactURL(webhook))
	}
	ts := now.UnixMilli()
	q := u.Query()
	q.Set("timestamp", strconv.FormatInt(ts, 10))
	q.Set("sign", DingTalkSign(secret, ts))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

type dingTalkNotifier struct {
	name      string
	webhook   string
	secret    string
	atMobiles []string
	msgType   string
	actionURL *template.Template
	tmpl      *template.Template
	client    *http.Client
	now       func() time.Time
	throttle  time.Duration
}

func newDingTalkNotifier(name string, c *config.DingTalkConfig, opts NotifierOptions) (*dingTalkNotifier, error) {
	if c == nil {
		return nil, errors.New("dingtalk: no config")
	}
	webhook, err := notifyEndpoint("dingtalk", "webhook_url", c.WebhookURL)
	if err != nil {
		return nil, err
	}
	d := &dingTalkNotifier{
		name: name, webhook: webhook, secret: c.Secret.Value(), atMobiles: c.AtMobiles,
		msgType: c.MsgType, client: opts.HTTPClient, now: opts.Now, throttle: opts.ThrottleBackoff,
	}
	switch d.msgType {
	case "", "markdown":
		d.msgType = "markdown"
	case "actionCard":
		if c.ActionURL == "" {
			return nil, errors.New("dingtalk: msg_type actionCard needs action_url")
		}
		t, err := parseReceiverTemplate(name+"-action", c.ActionURL, "")
		if err != nil {
			return nil, fmt.Errorf("dingtalk: action_url: %w", err)
		}
		d.actionURL = t
	default:
		return nil, fmt.Errorf("dingtalk: msg_type %q: use markdown or actionCard", c.MsgType)
	}
	t, err := parseReceiverTemplate(name, c.Template, templateMarkdownDefault)
	if err != nil {
		return nil, err
	}
	d.tmpl = t
	return d, nil
}

func (d *dingTalkNotifier) Name() string { return d.name }

// DingTalkMessage is the robot's request body.
type DingTalkMessage struct {
	MsgType    string              `json:"msgtype"`
	Text       *DingTalkText       `json:"text,omitempty"`
	Markdown   *DingTalkMarkdown   `json:"markdown,omitempty"`
	ActionCard *DingTalkActionCard `json:"actionCard,omitempty"`
	At         *DingTalkAt         `json:"at,omitempty"`
}

type DingTalkText struct {
	Content string `json:"content"`
}

type DingTalkMarkdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

type DingTalkActionCard struct {
	Title       string `json:"title"`
	Text        string `json:"text"`
	SingleTitle string `json:"singleTitle,omitempty"`
	SingleURL   string `json:"singleURL,omitempty"`
}

type DingTalkAt struct {
	AtMobiles []string `json:"atMobiles,omitempty"`
	AtUserIDs []string `json:"atUserIds,omitempty"`
	IsAtAll   bool     `json:"isAtAll"`
}

// DingTalkResponse is the robot's answer; errcode 0 is success even
// though failures also come with HTTP 200.
type DingTalkResponse struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
	Wait    int    `json:"wait,omitempty"` // seconds, sometimes sent with 130101
}

// dingTalkBodyMax is the robot's limit on a message, in bytes; a larger
// one is refused.
const dingTalkBodyMax = 20000

// build renders the message, its text cut so that the whole body stays
// within dingTalkBodyMax.
func (d *dingTalkNotifier) build(n Notification) (*DingTalkMessage, error) {
	if r := n.Report; r != nil {
		title, text := templateTruncate(r.Title, 60), reportText(r)
		return notifyFit(dingTalkBodyMax, func(textMax int) (*DingTalkMessage, error) {
			return &DingTalkMessage{MsgType: "markdown", Markdown: &DingTalkMarkdown{Title: title, Text: templateCutBytes(text, textMax)}, At: &DingTalkAt{}}, nil
		})
	}
	td := newTemplateData(n, d.now())
	text, err := executeTemplate(d.tmpl, td)
	if err != nil {
		return nil, err
	}
	return notifyFit(dingTalkBodyMax, func(textMax int) (*DingTalkMessage, error) {
		return d.message(td, templateCutBytes(text, textMax))
	})
}

func (d *dingTalkNotifier) message(td TemplateData, text string) (*DingTalkMessage, error) {
	title := templateTruncate(templateLight(td.Severity)+" "+td.Title, 60)
	mention := td.Severity == Red && td.Status == "firing" && len(d.atMobiles) > 0
	if d.msgType == "actionCard" {
		link, err := executeTemplate(d.actionURL, td)
		if err != nil {
			return nil, err
		}
		return &DingTalkMessage{MsgType: "actionCard", ActionCard: &DingTalkActionCard{
			Title: title, Text: text, SingleTitle: "查看详情 / Details", SingleURL: strings.TrimSpace(link),
		}}, nil
	}
	msg := &DingTalkMessage{MsgType: "markdown", Markdown: &DingTalkMarkdown{Title: title, Text: text}, At: &DingTalkAt{}}
	if mention {
		// DingTalk only pings a mobile that is also written in the text.
		var b strings.Builder
		b.WriteString("\n\n")
		for _, m := range d.atMobiles {
			b.WriteString("@" + m + " ")
		}
		msg.Markdown.Text += strings.TrimRight(b.String(), " ")
		msg.At.AtMobiles = d.atMobiles
	}
	return msg, nil
}

func (d *dingTalkNotifier) Notify(ctx context.Context, n Notification) (bool, error) {
	msg, err := d.build(n)
	if err != nil {
		return false, err
	}
	target := d.webhook
	if d.secret != "" {
		if target, err = DingTalkSignURL(d.webhook, d.secret, d.now()); err != nil {
			return false, &NotifyError{Reason: "config", Err: err}
		}
	}
	var ans DingTalkResponse
	if retry, err := notifyRobotCall(ctx, "dingtalk", d.client, d.webhook, target, msg, &ans, d.now()); err != nil {
		return retry, err
	}
	return d.classify(ans)
}

func (d *dingTalkNotifier) classify(ans DingTalkResponse) (bool, error) {
	switch ans.ErrCode {
	case 0:
		return false, nil
	case DingTalkErrThrottled:
		wait := max(d.throttle, time.Duration(ans.Wait)*time.Second)
		return true, &RetryAfterError{Wait: wait, Err: &NotifyError{Reason: "rate_limited",
			Err: fmt.Errorf("dingtalk: errcode %d: %s", ans.ErrCode, ans.ErrMsg)}}
	case DingTalkErrSecurity:
		return false, &NotifyError{Reason: "auth", Err: fmt.Errorf("dingtalk: errcode %d: %s (check secret, keyword and IP allow-list)", ans.ErrCode, ans.ErrMsg)}
	case -1: // system busy
		return true, &NotifyError{Reason: "api_error", Err: fmt.Errorf("dingtalk: errcode %d: %s", ans.ErrCode, ans.ErrMsg)}
	}
	return false, &NotifyError{Reason: "rejected", Err: fmt.Errorf("dingtalk: errcode %d: %s", ans.ErrCode, ans.ErrMsg)}
}
