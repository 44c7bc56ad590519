package alerts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/template"
	"time"

	"github.com/slack-go/slack"

	"lookout/config"
)

// Slack severity colours (Slack's own brand palette), shown as the
// attachment's colour bar.
const (
	slackColorRed    = "#E01E5A"
	slackColorYellow = "#ECB22E"
	slackColorGreen  = "#2EB67D"
)

// slackNotifier posts Block Kit messages through an incoming webhook or a
// bot token (chat.postMessage).
type slackNotifier struct {
	name       string
	webhookURL string
	channel    string
	client     *slack.Client // bot token mode
	httpClient *http.Client
	tmpl       *template.Template // nil: built-in blocks
	now        func() time.Time
}

func newSlackNotifier(name string, c *config.SlackConfig, opts NotifierOptions) (*slackNotifier, error) {
	if c == nil {
		return nil, errors.New("slack: no config")
	}
	s := &slackNotifier{name: name, channel: c.Channel, httpClient: opts.HTTPClient, now: opts.Now}
	switch {
	case c.WebhookURL.Value() != "":
		u, err := notifyEndpoint("slack", "webhook_url", c.WebhookURL)
		if err != nil {
			return nil, err
		}
		s.webhookURL = u
	case c.Token.Value() != "":
		if c.Channel == "" {
			return nil, errors.New("slack: a bot token needs a channel")
		}
		o := []slack.Option{slack.OptionHTTPClient(slackBearerClient{c: opts.HTTPClient, token: c.Token.Value()})}
		if c.APIURL != "" {
			api := c.APIURL
			if !strings.HasSuffix(api, "/") {
				api += "/"
			}
			o = append(o, slack.OptionAPIURL(api))
		}
		s.client = slack.New(c.Token.Value(), o...)
	default:
		return nil, fmt.Errorf("slack: webhook_url (%s) and token (%s) are both empty", c.WebhookURL, c.Token)
	}
	if c.Template != "" {
		t, err := parseReceiverTemplate(name, c.Template, "")
		if err != nil {
			return nil, err
		}
		s.tmpl = t
	}
	return s, nil
}

func (s *slackNotifier) Name() string { return s.name }

// slackBearerClient adds "Authorization: Bearer <token>": slack-go puts
// the token of chat.postMessage in the form body only, while Slack
// recommends the header (and proxies and test servers check it).
type slackBearerClient struct {
	c     *http.Client
	token string
}

func (b slackBearerClient) Do(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.c.Do(req)
}

func (s *slackNotifier) Notify(ctx context.Context, n Notification) (bool, error) {
	msg, err := slackBuildMessage(n, s.tmpl, s.now())
	if err != nil {
		return false, err
	}
	if s.webhookURL != "" {
		err = slack.PostWebhookCustomHTTPContext(ctx, s.webhookURL, s.httpClient, msg)
	} else {
		_, _, err = s.client.PostMessageContext(ctx, s.channel,
			slack.MsgOptionText(msg.Text, false),
			slack.MsgOptionBlocks(msg.Blocks.BlockSet...),
			slack.MsgOptionAttachments(msg.Attachments...))
	}
	if err == nil {
		return false, nil
	}
	return slackClassify(ctx, err)
}

// slackClassify sorts slack-go's errors into retryable and permanent.
func slackClassify(ctx context.Context, err error) (bool, error) {
	err = notifyCleanErr(err)
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return true, &RetryAfterError{Wait: rl.RetryAfter, Err: &NotifyError{Reason: "rate_limited", Err: fmt.Errorf("slack: %w", err)}}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		reason := "http_4xx"
		switch {
		case sc.Code >= 500:
			reason = "http_5xx"
		case sc.Code == http.StatusTooManyRequests:
			reason = "rate_limited"
		case sc.Code == http.StatusUnauthorized || sc.Code == http.StatusForbidden:
			reason = "auth"
		}
		return sc.Retryable(), &NotifyError{Reason: reason, Err: fmt.Errorf("slack: HTTP %d: %w", sc.Code, err)}
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "rate_limited":
			return true, &NotifyError{Reason: "rate_limited", Err: fmt.Errorf("slack: %s", se.Err)}
		case "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return true, &NotifyError{Reason: "api_error", Err: fmt.Errorf("slack: %s", se.Err)}
		case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission", "missing_scope":
			return false, &NotifyError{Reason: "auth", Err: fmt.Errorf("slack: %s (check the bot token)", se.Err)}
		}
		return false, &NotifyError{Reason: "rejected", Err: fmt.Errorf("slack: %s", se.Err)}
	}
	var ne *NotifyError
	if errors.As(err, &ne) {
		return true, err // network or timeout
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return notifyCtxErr(ctx, err)
	}
	// slack-go wraps transport failures ("failed to post webhook: …").
	return true, &NotifyError{Reason: "network", Err: fmt.Errorf("slack: %w", err)}
}

func slackColor(d *TemplateData) string {
	if d.Status == "resolved" {
		return slackColorGreen
	}
	switch d.Severity {
	case Red:
		return slackColorRed
	case Yellow:
		return slackColorYellow
	}
	return slackColorGreen
}

// slackBuildMessage lays out one notification: a header with the light and
// title at the top, then an attachment whose colour bar is the severity,
// holding per event a section (summary), fields (the numbers that fired),
// the top sample messages and a context line (rule, room, time). Text is
// the notification fallback. With a template, its output (mrkdwn) replaces
// the per-event sections.
// slackMaxBlocks is Slack's limit on blocks in a message.
const slackMaxBlocks = 50

func slackBuildMessage(n Notification, tmpl *template.Template, now time.Time) (*slack.WebhookMessage, error) {
	if n.Report != nil {
		return slackReportMessage(n.Report), nil
	}
	d := newTemplateData(n, now)
	header := templateTruncate(templateLight(d.Severity)+" "+d.Title, 150)
	var blocks []slack.Block
	if tmpl != nil {
		body, err := executeTemplate(tmpl, d)
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, templateTruncate(body, 3000), false, false), nil, nil))
	} else {
		for i, e := range d.Shown {
			if i > 0 {
				blocks = append(blocks, slack.NewDividerBlock())
			}
			blocks = append(blocks, slackEventBlocks(e)...)
		}
		if d.More > 0 {
			blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
				fmt.Sprintf("…and %d more in this group", d.More), false, false)))
		}
	}
	if tmpl != nil {
		// The default layout dates every event in its own context line;
		// a template's output gets the footer instead.
		blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, slackEscape(d.Footer), false, false)))
	}
	if len(blocks) > slackMaxBlocks {
		blocks = append(blocks[:slackMaxBlocks-1], slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
			"…cut to fit Slack's 50 blocks a message", false, false)))
	}
	text := slackFallback(&d)
	return &slack.WebhookMessage{
		Text: text,
		Blocks: &slack.Blocks{BlockSet: []slack.Block{
			slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, header, true, false)),
		}},
		Attachments: []slack.Attachment{{
			Color:    slackColor(&d),
			Fallback: text,
			Blocks:   slack.Blocks{BlockSet: blocks},
		}},
	}, nil
}

// slackReportMessage lays out a report notification: its title as the
// header, its Markdown in one section cut to Slack's 3000 characters, and
// a link to the full report when there is one.
func slackReportMessage(r *Report) *slack.WebhookMessage {
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, templateTruncate(r.Title, 150), true, false)),
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, templateTruncate(r.Markdown, 3000), false, false), nil, nil),
	}
	if r.URL != "" {
		blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
			"<"+r.URL+"|Full report>", false, false)))
	}
	return &slack.WebhookMessage{Text: templateTruncate(r.Title, 150), Blocks: &slack.Blocks{BlockSet: blocks}}
}

func slackEventBlocks(e Event) []slack.Block {
	var out []slack.Block
	title := fmt.Sprintf("%s *%s* · `%s` %s", templateEventLight(e), strings.ToUpper(string(e.Severity)), slackEscape(e.Rule), templateStateWord(&e))
	summary := title
	if e.Summary != "" {
		summary += "\n" + slackEscape(e.Summary)
	}
	var fields []*slack.TextBlockObject
	for _, num := range templateNumbers(e) {
		if len(fields) == 10 { // Slack's limit per section
			break
		}
		fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType,
			fmt.Sprintf("*%s*\n%s", slackEscape(num.Name), num.Text), false, false))
	}
	out = append(out, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, templateTruncate(summary, 3000), false, false), fields, nil))
	if ss := templateSamples(e, 3); len(ss) > 0 {
		var b strings.Builder
		for _, s := range ss {
			line := strings.NewReplacer("\n", " ", "\r", " ").Replace(templateTruncate(s.Text, 200))
			fmt.Fprintf(&b, "> %s", slackEscape(line))
			if s.Author != "" {
				fmt.Fprintf(&b, " — _%s_", slackEscape(s.Author))
			}
			b.WriteByte('\n')
		}
		out = append(out, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.TrimRight(b.String(), "\n"), false, false), nil, nil))
	}
	ctx := fmt.Sprintf("rule *%s* · room *%s*", slackEscape(e.Rule), slackEscape(e.Room))
	if e.Platform != "" {
		ctx += " · " + slackEscape(e.Platform)
	}
	if e.Source != "" {
		ctx += " · source " + slackEscape(e.Source)
	}
	ctx += " · " + e.At.UTC().Format("2006-01-02 15:04:05 UTC")
	out = append(out, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, ctx, false, false)))
	return out
}

// slackFallback is the plain text shown in notifications and by clients
// that cannot render blocks.
func slackFallback(d *TemplateData) string {
	s := templateLight(d.Severity) + " " + d.Title
	if d.Count == 1 && d.Events[0].Summary != "" {
		s += ": " + d.Events[0].Summary
	}
	return slackEscape(templateTruncate(s, 300))
}
