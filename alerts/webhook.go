package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"text/template"
	"time"

	"lookout/config"
)

// WebhookPayload is the generic webhook's default body. Receivers
// deduplicate on the Idempotency-Key header (the batch id: the event id for
// a single event) or on each event's id.
type WebhookPayload struct {
	Version  string  `json:"version"` // "1"
	Receiver string  `json:"receiver"`
	GroupKey string  `json:"group_key"`
	BatchID  string  `json:"batch_id"`
	Status   string  `json:"status"` // firing or resolved
	Severity string  `json:"severity"`
	Title    string  `json:"title"`
	Count    int     `json:"count"`
	Events   []Event `json:"events"`
	// Report is set, and Status is "report", for a report notification.
	Report *Report `json:"report,omitempty"`
}

type webhookNotifier struct {
	name    string
	url     string
	headers http.Header
	tmpl    *template.Template // nil: WebhookPayload, or AlertmanagerWebhook with format alertmanager
	format  string
	client  *http.Client
	now     func() time.Time
}

func newWebhookNotifier(name string, c *config.WebhookConfig, opts NotifierOptions) (*webhookNotifier, error) {
	if c == nil {
		return nil, errors.New("webhook: no config")
	}
	endpoint, err := notifyEndpoint("webhook", "url", c.URL)
	if err != nil {
		return nil, err
	}
	w := &webhookNotifier{name: name, url: endpoint, headers: http.Header{}, client: opts.HTTPClient, now: opts.Now, format: c.Format}
	for k, v := range c.Headers {
		w.headers.Set(k, v)
	}
	if c.Template != "" {
		t, err := parseReceiverTemplate(name, c.Template, "")
		if err != nil {
			return nil, err
		}
		w.tmpl = t
	}
	return w, nil
}

func (w *webhookNotifier) Name() string { return w.name }

// WebhookBatchID is the idempotency key of a notification.
func WebhookBatchID(n Notification) string {
	if n.BatchID != "" {
		return n.BatchID
	}
	if n.Report != nil {
		return n.Report.Key
	}
	if len(n.Events) == 1 {
		return n.Events[0].ID
	}
	return outboxBatchID(n.Events)
}

func (w *webhookNotifier) body(n Notification) ([]byte, error) {
	if n.Report != nil {
		if n.Report.Key == "" {
			return nil, &NotifyError{Reason: "report", Err: errors.New("webhook: report notification has no key")}
		}
		return notifyJSON(WebhookPayload{Version: "1", Receiver: n.Receiver, GroupKey: n.GroupKey, BatchID: WebhookBatchID(n),
			Status: "report", Title: n.Report.Title, Events: []Event{}, Report: n.Report})
	}
	d := newTemplateData(n, w.now())
	if w.tmpl != nil {
		s, err := executeTemplate(w.tmpl, d)
		if err != nil {
			return nil, err
		}
		if !json.Valid([]byte(s)) {
			return nil, &NotifyError{Reason: "template", Err: errors.New("webhook: the template's output is not valid JSON")}
		}
		return []byte(s), nil
	}
	if w.format == "alertmanager" {
		return notifyJSON(alertmanagerWebhookBody(n))
	}
	return notifyJSON(WebhookPayload{Version: "1", Receiver: n.Receiver, GroupKey: n.GroupKey, BatchID: WebhookBatchID(n),
		Status: d.Status, Severity: string(d.Severity), Title: d.Title, Count: d.Count, Events: n.Events})
}

func (w *webhookNotifier) Notify(ctx context.Context, n Notification) (bool, error) {
	body, err := w.body(n)
	if err != nil {
		return false, err
	}
	h := w.headers.Clone()
	h.Set("Idempotency-Key", WebhookBatchID(n))
	return notifyHTTPCall(ctx, "webhook", w.client, w.url, body, h, w.now())
}
