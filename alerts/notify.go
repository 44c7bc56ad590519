package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"lookout/config"

	"lookout/internal/httpurl"
	"lookout/internal/redact"
)

// Notification is one message to one receiver. Grouping folds many events
// (a storm in one room) into one Notification, so a sink sends one message
// with a count rather than fifty.
type Notification struct {
	Receiver string
	GroupKey string
	Events   []Event
	// BatchID is stable for the events of one outbox batch across retries
	// and restarts (see Delivery); sinks that support idempotency send it
	// as their idempotency key. For a single event it is the event's ID.
	BatchID string
	// Report, when set, makes this a report notification: a free Markdown
	// message (a stream review, a digest) sent instead of alert events.
	// Events is then empty.
	Report *Report
}

// Report is a free Markdown message for a receiver.
type Report struct {
	// Key is the message's idempotency key, stable across retries and
	// restarts, e.g. "report:<room>:<stream start>".
	Key      string `json:"key"`
	Room     string `json:"room,omitempty"`
	Title    string `json:"title"`
	Markdown string `json:"markdown"`
	// URL links to the full report when one is reachable.
	URL string `json:"url,omitempty"`
}

// Notifier sends notifications to one receiver.
//
// Notify reports whether a failure is worth retrying: retry is true for
// 5xx answers, timeouts, network errors and rate limiting (then err is a
// *RetryAfterError when the server said how long to wait), false for
// permanent failures (bad token, 4xx, DingTalk 310000, Slack invalid_auth
// or channel_not_found) that no retry can fix.
type Notifier interface {
	Name() string
	Notify(ctx context.Context, n Notification) (retry bool, err error)
}

// NotifierOptions are what notifiers need from their surroundings.
type NotifierOptions struct {
	HTTPClient *http.Client     // default: a client with a 15 s timeout
	Out        io.Writer        // console output, default os.Stdout
	Now        func() time.Time // default time.Now; signs DingTalk/Feishu requests
	// ThrottleBackoff is how long a sink that throttles us without saying
	// for how long is left alone: DingTalk 130101 punishes for 10 minutes,
	// so the default is 10m. Tests shorten it.
	ThrottleBackoff time.Duration
}

// DefaultThrottleBackoff is DingTalk's documented punishment for sending
// more than 20 messages a minute.
const DefaultThrottleBackoff = 10 * time.Minute

func (o NotifierOptions) withDefaults() NotifierOptions {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ThrottleBackoff <= 0 {
		o.ThrottleBackoff = DefaultThrottleBackoff
	}
	return o
}

// NewNotifier builds the notifier for one receiver block. Templates are
// parsed here so that a broken template fails at start, not at 3 a.m.
func NewNotifier(rc config.ReceiverConfig, opts NotifierOptions) (Notifier, error) {
	opts = opts.withDefaults()
	var (
		n   Notifier
		err error
	)
	switch rc.Type() {
	case "slack":
		n, err = newSlackNotifier(rc.Name, rc.Slack, opts)
	case "dingtalk":
		n, err = newDingTalkNotifier(rc.Name, rc.DingTalk, opts)
	case "feishu":
		n, err = newFeishuNotifier(rc.Name, rc.Feishu, opts)
	case "wecom":
		n, err = newWeComNotifier(rc.Name, rc.WeCom, opts)
	case "webhook":
		n, err = newWebhookNotifier(rc.Name, rc.Webhook, opts)
	case "console":
		n, err = newConsoleNotifier(rc.Name, rc.Console, opts)
	case "alertmanager":
		n, err = newAlertmanagerNotifier(rc.Name, rc.Alertmanager, opts)
	default:
		return nil, fmt.Errorf("receiver %q: no sink configured", rc.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("receiver %q (%s): %w", rc.Name, rc.Type(), err)
	}
	return n, nil
}

// RetryAfterError is a retryable failure where the server said how long to
// wait (HTTP 429 Retry-After, Slack ratelimited, DingTalk 130101). The
// delivery side pauses the whole receiver for Wait.
type RetryAfterError struct {
	Wait time.Duration
	Err  error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.Wait)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// NotifyError is a sink failure with a short machine reason, used as the
// reason label of lookout_notify_errors_total.
type NotifyError struct {
	Reason string // http_5xx, http_4xx, rate_limited, auth, rejected, timeout, network, template, api_error
	Err    error
}

func (e *NotifyError) Error() string { return e.Err.Error() }
func (e *NotifyError) Unwrap() error { return e.Err }

// NotifyReason returns the metric reason of a Notify error.
func NotifyReason(err error) string {
	var ne *NotifyError
	if errors.As(err, &ne) && ne.Reason != "" {
		return ne.Reason
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return "rate_limited"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		if nerr.Timeout() {
			return "timeout"
		}
		return "network"
	}
	return "error"
}

// notifyEndpoint checks a receiver's URL once, when the receiver is
// built, so that `lookout check-config` catches a typo instead of the first
// alert: set, parseable, absolute http(s). Errors name the sink and the
// field and show the ${ENV} reference or a redacted URL, never the secret.
func notifyEndpoint(sink, field string, s config.Secret) (string, error) {
	raw := s.Value()
	if raw == "" {
		return "", fmt.Errorf("%s: %s (%s) is empty", sink, field, s)
	}
	u, err := url.Parse(raw)
	if err != nil || !httpurl.OK(u) {
		return "", fmt.Errorf("%s: %s (%s) must be an absolute http(s) URL, not %s", sink, field, s, RedactURL(raw))
	}
	return raw, nil
}

// RedactURL keeps only the scheme and host of a sink URL (redact.SecretURL):
// nothing after the host is ever logged.
func RedactURL(raw string) string { return redact.SecretURL(raw) }

// notifyCleanErr rewrites errors that quote a request URL (url.Error, as
// returned by http.Client.Do) so that the secret parts never reach a log.
func notifyCleanErr(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		reason := "network"
		if ue.Timeout() {
			reason = "timeout"
		}
		return &NotifyError{Reason: reason, Err: fmt.Errorf("%s %s: %w", ue.Op, RedactURL(ue.URL), notifyStripURL(ue.Err, ue.URL))}
	}
	return err
}

// notifyStripURL guards against inner errors that repeat the URL.
func notifyStripURL(err error, raw string) error {
	if err == nil || raw == "" || !strings.Contains(err.Error(), raw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), raw, RedactURL(raw)))
}

// notifyHTTPResult is a sink's answer.
type notifyHTTPResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// notifyHTTPCall is the exchange of the plain HTTP sinks (webhook,
// alertmanager): POST body with header (plus lookout's User-Agent); a
// network error or timeout is retried, the status decides the rest.
func notifyHTTPCall(ctx context.Context, sink string, client *http.Client, rawURL string, body []byte, header http.Header, now time.Time) (retry bool, err error) {
	header.Set("User-Agent", "lookout-alerts/1")
	res, err := notifyPostJSON(ctx, client, rawURL, body, header)
	if err != nil {
		if ctx.Err() != nil {
			return notifyCtxErr(ctx, err)
		}
		return true, err
	}
	return notifyCheckHTTP(sink, rawURL, res, now)
}

// notifyPostJSON posts body (already JSON) and reads up to 64 KiB of the
// answer. Transport errors come back retryable and redacted.
func notifyPostJSON(ctx context.Context, client *http.Client, rawURL string, body []byte, header http.Header) (*notifyHTTPResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return nil, &NotifyError{Reason: "config", Err: fmt.Errorf("build request for %s: %w", RedactURL(rawURL), notifyStripURL(err, rawURL))}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, notifyCleanErr(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, &NotifyError{Reason: "network", Err: fmt.Errorf("read answer from %s: %w", RedactURL(rawURL), err)}
	}
	return &notifyHTTPResult{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// notifyCheckHTTP classifies a non-2xx answer: 429 and 5xx (and 408) are
// retryable, honouring Retry-After; other 4xx are permanent.
func notifyCheckHTTP(sink, rawURL string, r *notifyHTTPResult, now time.Time) (retry bool, err error) {
	if r.Status >= 200 && r.Status < 300 {
		return false, nil
	}
	snippet := strings.TrimSpace(string(r.Body))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "…"
	}
	base := fmt.Errorf("%s %s: HTTP %d: %s", sink, RedactURL(rawURL), r.Status, snippet)
	switch {
	case r.Status == http.StatusTooManyRequests || r.Status == http.StatusServiceUnavailable:
		if d, ok := notifyParseRetryAfter(r.Header.Get("Retry-After"), now); ok {
			return true, &RetryAfterError{Wait: d, Err: &NotifyError{Reason: "rate_limited", Err: base}}
		}
		if r.Status == http.StatusTooManyRequests {
			return true, &NotifyError{Reason: "rate_limited", Err: base}
		}
		return true, &NotifyError{Reason: "http_5xx", Err: base}
	case r.Status >= 500:
		return true, &NotifyError{Reason: "http_5xx", Err: base}
	case r.Status == http.StatusRequestTimeout:
		return true, &NotifyError{Reason: "timeout", Err: base}
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return false, &NotifyError{Reason: "auth", Err: base}
	}
	return false, &NotifyError{Reason: "http_4xx", Err: base}
}

// notifyMaxRetryAfter caps what a server may make us wait.
const notifyMaxRetryAfter = 6 * time.Hour

// notifyParseRetryAfter reads delay-seconds or an HTTP date.
func notifyParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		d := time.Duration(n * float64(time.Second))
		return min(d, notifyMaxRetryAfter), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), notifyMaxRetryAfter), true
}

// notifyJSON marshals without HTML escaping (DingTalk and WeCom show
// "&lt;" literally).
// notifyRobotCall is the exchange every chat robot (DingTalk, Feishu,
// WeCom) shares: encode msg, POST it to target (endpoint with whatever
// signature the sink adds; errors name endpoint, redacted), check the HTTP
// status, and decode the robot's JSON answer into ans, whose own error
// codes the caller then reads. A failure to build the request is a config
// error and not retried; network errors, 5xx and an answer that is not
// JSON are.
func notifyRobotCall(ctx context.Context, sink string, client *http.Client, endpoint, target string, msg, ans any, now time.Time) (retry bool, err error) {
	body, err := notifyJSON(msg)
	if err != nil {
		return false, fmt.Errorf("%s: encode: %w", sink, err)
	}
	res, err := notifyPostJSON(ctx, client, target, body, nil)
	if err != nil {
		if ctx.Err() != nil {
			return notifyCtxErr(ctx, err)
		}
		var ne *NotifyError
		return !errors.As(err, &ne) || ne.Reason != "config", err
	}
	if retry, err := notifyCheckHTTP(sink, endpoint, res, now); err != nil {
		return retry, err
	}
	if err := json.Unmarshal(res.Body, ans); err != nil {
		return true, &NotifyError{Reason: "api_error", Err: fmt.Errorf("%s: answer is not JSON: %.100q", sink, res.Body)}
	}
	return false, nil
}

// reportText is a report's Markdown followed by the link to the full
// report, as the Markdown sinks (DingTalk, WeCom) send it.
func reportText(r *Report) string {
	if r.URL == "" {
		return r.Markdown
	}
	return r.Markdown + "\n\n[Full report](" + r.URL + ")"
}

// notifyFit builds a message whose main text may take textMax bytes, and
// builds it again with less while its JSON body is over limit bytes: a
// platform rejects a message over its limit, and the alert would be lost
// for that receiver. build cuts its text with templateCutBytes, which
// leaves a visible marker.
func notifyFit[M any](limit int, build func(textMax int) (M, error)) (M, error) {
	budget := limit
	for {
		msg, err := build(budget)
		if err != nil {
			return msg, err
		}
		b, err := notifyJSON(msg)
		if err != nil || len(b) <= limit || budget <= 256 {
			return msg, err
		}
		budget = max(256, budget-(len(b)-limit)-64)
	}
}

func notifyJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// notifyCtxErr turns a cancelled or timed-out request into a retryable
// error.
func notifyCtxErr(ctx context.Context, err error) (bool, error) {
	if ctx.Err() != nil {
		return true, &NotifyError{Reason: "timeout", Err: err}
	}
	return true, err
}
