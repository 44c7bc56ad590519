package alerts

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"lookout/config"
)

// Alertmanager interop, both ways an SRE's Alertmanager setup expects:
//
//   - a webhook receiver with `format: alertmanager` sends Alertmanager's
//     own webhook payload (version 4), so a receiver written for
//     Alertmanager (a ticket bridge, an on-call tool) takes lookout's alerts
//     unchanged;
//   - an `alertmanager` receiver posts lookout's alerts to an Alertmanager's
//     /api/v2/alerts, as Prometheus does, so they are routed, grouped,
//     silenced and inhibited with everything else the team runs.
//
// An alert is named by its rule (label alertname) and keeps lookout's
// labels (severity, source, platform, room, the source's own labels); the
// summary becomes the summary annotation.

// AlertmanagerWebhook is Alertmanager's webhook payload, version 4.
type AlertmanagerWebhook struct {
	Version           string              `json:"version"` // "4"
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"` // firing or resolved
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []AlertmanagerAlert `json:"alerts"`
}

// AlertmanagerAlert is one alert of a webhook payload, or (without status
// and fingerprint) one alert posted to /api/v2/alerts.
type AlertmanagerAlert struct {
	Status       string            `json:"status,omitempty"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint,omitempty"`
}

// alertmanagerLabels are an event's labels as Alertmanager names them.
func alertmanagerLabels(e *Event) map[string]string {
	l := make(map[string]string, len(e.Labels)+2)
	maps.Copy(l, e.Labels)
	l["alertname"] = e.Rule
	if _, ok := l["severity"]; !ok && e.Severity != "" {
		l["severity"] = string(e.Severity)
	}
	return l
}

func alertmanagerAnnotations(e *Event) map[string]string {
	a := map[string]string{"summary": e.Summary}
	if e.Threshold != 0 || e.Value != 0 {
		a["value"] = strconv.FormatFloat(e.Value, 'g', 6, 64)
		a["threshold"] = strconv.FormatFloat(e.Threshold, 'g', 6, 64)
	}
	return a
}

// alertmanagerWebhookAlert is an event in the webhook payload: a firing
// alert has the zero end time, as in Alertmanager's own payloads.
func alertmanagerWebhookAlert(e *Event) AlertmanagerAlert {
	a := AlertmanagerAlert{Status: "firing", Labels: alertmanagerLabels(e), Annotations: alertmanagerAnnotations(e),
		StartsAt: e.StartedAt.UTC(), Fingerprint: e.AlertID}
	if e.State == Resolved {
		a.Status = "resolved"
		a.EndsAt = e.At.UTC()
		if !e.ResolvedAt.IsZero() {
			a.EndsAt = e.ResolvedAt.UTC()
		}
	}
	return a
}

// alertmanagerWebhookBody is the version 4 payload of a notification.
func alertmanagerWebhookBody(n Notification) AlertmanagerWebhook {
	p := AlertmanagerWebhook{Version: "4", GroupKey: n.GroupKey, Status: "resolved", Receiver: n.Receiver,
		GroupLabels: alertmanagerGroupLabels(n.GroupKey)}
	for i := range n.Events {
		a := alertmanagerWebhookAlert(&n.Events[i])
		if a.Status == "firing" {
			p.Status = "firing"
		}
		p.Alerts = append(p.Alerts, a)
	}
	p.CommonLabels = alertmanagerCommon(p.Alerts, func(a *AlertmanagerAlert) map[string]string { return a.Labels })
	p.CommonAnnotations = alertmanagerCommon(p.Alerts, func(a *AlertmanagerAlert) map[string]string { return a.Annotations })
	return p
}

// alertmanagerCommon is what every alert's map shares.
func alertmanagerCommon(as []AlertmanagerAlert, of func(*AlertmanagerAlert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(as) == 0 {
		return out
	}
	maps.Copy(out, of(&as[0]))
	for i := 1; i < len(as); i++ {
		m := of(&as[i])
		for k, v := range out {
			if m[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}

// alertmanagerGroupLabels reads the group_by labels back out of a group
// key such as `0.1{room="21452505",rule="negative-surge"}`.
func alertmanagerGroupLabels(key string) map[string]string {
	out := map[string]string{}
	i := strings.IndexByte(key, '{')
	if i < 0 || !strings.HasSuffix(key, "}") {
		return out
	}
	rest := key[i+1 : len(key)-1]
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			break
		}
		name := rest[:eq]
		v, tail, err := alertmanagerUnquotePrefix(rest[eq+1:])
		if err != nil {
			break
		}
		out[name] = v
		rest = strings.TrimPrefix(tail, ",")
	}
	return out
}

// alertmanagerUnquotePrefix unquotes the Go-quoted string s starts with.
func alertmanagerUnquotePrefix(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	v, err := strconv.Unquote(q)
	return v, s[len(q):], err
}

// DefaultAlertmanagerResend is how often firing alerts are posted to an
// Alertmanager again.
const DefaultAlertmanagerResend = time.Minute

// alertmanagerNotifier posts to an Alertmanager's /api/v2/alerts. Firing
// alerts are remembered and posted again every resend until they resolve,
// each post ending four resends later: if lookout stops, Alertmanager
// resolves them by itself instead of keeping them forever.
type alertmanagerNotifier struct {
	name    string
	url     string
	headers http.Header
	resend  time.Duration
	client  *http.Client
	now     func() time.Time

	mu     sync.Mutex
	firing map[string]AlertmanagerAlert // by alert id
}

func newAlertmanagerNotifier(name string, c *config.AlertmanagerConfig, opts NotifierOptions) (*alertmanagerNotifier, error) {
	if c == nil {
		return nil, errors.New("alertmanager: no config")
	}
	base, err := notifyEndpoint("alertmanager", "url", c.URL)
	if err != nil {
		return nil, err
	}
	a := &alertmanagerNotifier{name: name, url: strings.TrimRight(base, "/") + "/api/v2/alerts", headers: http.Header{},
		resend: c.Resend.D(), client: opts.HTTPClient, now: opts.Now, firing: map[string]AlertmanagerAlert{}}
	if a.resend <= 0 {
		a.resend = DefaultAlertmanagerResend
	}
	for k, v := range c.Headers {
		a.headers.Set(k, v)
	}
	return a, nil
}

func (a *alertmanagerNotifier) Name() string { return a.name }

// Notify posts the notification's alerts: firing ones end four resends
// from now (and are remembered for resending), resolved ones at their
// resolution.
func (a *alertmanagerNotifier) Notify(ctx context.Context, n Notification) (bool, error) {
	now := a.now()
	var out []AlertmanagerAlert
	a.mu.Lock()
	for i := range n.Events {
		e := &n.Events[i]
		al := alertmanagerWebhookAlert(e)
		al.Status, al.Fingerprint = "", ""
		if e.State == Resolved {
			delete(a.firing, e.AlertID)
		} else {
			al.EndsAt = now.Add(4 * a.resend).UTC()
			a.firing[e.AlertID] = al
		}
		out = append(out, al)
	}
	a.mu.Unlock()
	return a.post(ctx, out)
}

func (a *alertmanagerNotifier) post(ctx context.Context, alerts []AlertmanagerAlert) (bool, error) {
	if len(alerts) == 0 {
		return false, nil
	}
	body, err := notifyJSON(alerts)
	if err != nil {
		return false, err
	}
	return notifyHTTPCall(ctx, "alertmanager", a.client, a.url, body, a.headers.Clone(), a.now())
}

// notifierLoop is a notifier with work of its own beside its sender;
// Delivery runs it for as long as it runs.
type notifierLoop interface {
	Run(ctx context.Context, log *slog.Logger)
}

// Run posts the firing alerts again every resend until ctx ends. A failed
// resend is logged and tried again at the next one.
func (a *alertmanagerNotifier) Run(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(a.resend)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ends := a.now().Add(4 * a.resend).UTC()
		a.mu.Lock()
		ids := slices.Sorted(maps.Keys(a.firing))
		out := make([]AlertmanagerAlert, 0, len(ids))
		for _, id := range ids {
			al := a.firing[id]
			al.EndsAt = ends
			a.firing[id] = al
			out = append(out, al)
		}
		a.mu.Unlock()
		if _, err := a.post(ctx, out); err != nil && ctx.Err() == nil {
			log.Warn("alertmanager: resending firing alerts failed; trying again at the next resend",
				"receiver", a.name, "alerts", len(out), "err", err)
		}
	}
}
