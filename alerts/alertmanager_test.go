package alerts

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/models"

	"lookout/config"
)

// amServer is an Alertmanager's POST /api/v2/alerts: every body is checked
// with Alertmanager's own API models (the validation its server runs) and
// refused with 400 when it fails, as Alertmanager does.
type amServer struct {
	*httptest.Server
	mu    sync.Mutex
	posts []models.PostableAlerts
}

func newAMServer(t *testing.T) *amServer {
	s := &amServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/alerts" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var alerts models.PostableAlerts
		if err := json.Unmarshal(b, &alerts); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := alerts.Validate(strfmt.Default); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.posts = append(s.posts, alerts)
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *amServer) Posts() []models.PostableAlerts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]models.PostableAlerts(nil), s.posts...)
}

// The alertmanager receiver posts what Alertmanager accepts, resends firing
// alerts with a moving end until they resolve, and posts the resolution.
func TestAlertmanagerReceiver(t *testing.T) {
	am := newAMServer(t)
	n, err := NewNotifier(config.ReceiverConfig{Name: "am", Alertmanager: &config.AlertmanagerConfig{
		URL: config.NewSecret(am.URL + "/"), Resend: config.Duration(50 * time.Millisecond)}}, NotifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	firing := notifyTestNotification()
	sent := time.Now()
	if retry, err := n.Notify(t.Context(), firing); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); n.(notifierLoop).Run(ctx, slog.New(slog.DiscardHandler)) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(am.Posts()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	posts := am.Posts()
	if len(posts) < 3 {
		t.Fatalf("%d posts, want the first and resends", len(posts))
	}
	a0, a2 := posts[0][0], posts[2][0]
	if a0.Labels["alertname"] != firing.Events[0].Rule || a0.Labels["room"] != "21452505" || a0.Annotations["summary"] == "" {
		t.Fatalf("alert %+v", a0)
	}
	// Each post ends four resends after it was made.
	if end := time.Time(a0.EndsAt); end.Before(sent.Add(4*50*time.Millisecond)) || end.After(time.Now().Add(4*50*time.Millisecond)) {
		t.Errorf("first post ends at %v, want four resends (200ms) after it was sent at %v", end, sent)
	}
	if !time.Time(a2.EndsAt).After(time.Time(a0.EndsAt)) {
		t.Errorf("resends should move the end forward: %v then %v", a0.EndsAt, a2.EndsAt)
	}
	resolved := notifyTestNotification()
	resolved.Events[0].State, resolved.Events[0].ResolvedAt = Resolved, time.Now().Add(-time.Second)
	if _, err := n.Notify(t.Context(), resolved); err != nil {
		t.Fatal(err)
	}
	before := len(am.Posts())
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-done
	all := am.Posts()
	last := all[before-1][0]
	if !time.Time(last.EndsAt).Before(time.Now()) {
		t.Errorf("resolution posted with end %v, want the past", last.EndsAt)
	}
	if len(all) != before {
		t.Errorf("%d posts after the resolution: a resolved alert was resent", len(all)-before)
	}
}

// format: alertmanager sends Alertmanager's webhook payload (version 4).
func TestWebhookAlertmanagerFormat(t *testing.T) {
	var got AlertmanagerWebhook
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&got)
	}))
	defer srv.Close()
	n, err := NewNotifier(config.ReceiverConfig{Name: "bridge", Webhook: &config.WebhookConfig{URL: config.NewSecret(srv.URL), Format: "alertmanager"}}, NotifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nt := notifyTestNotification()
	nt.GroupKey = `0.1{room="21452505",rule="complaint_storm"}`
	if _, err := n.Notify(t.Context(), nt); err != nil {
		t.Fatal(err)
	}
	if got.Version != "4" || got.Status != "firing" || got.Receiver != nt.Receiver || len(got.Alerts) != len(nt.Events) {
		t.Fatalf("payload %+v", got)
	}
	if got.GroupLabels["room"] != "21452505" || got.GroupLabels["rule"] != "complaint_storm" {
		t.Errorf("group labels %v from %s", got.GroupLabels, nt.GroupKey)
	}
	a := got.Alerts[0]
	if a.Status != "firing" || a.Labels["alertname"] != nt.Events[0].Rule || !a.EndsAt.IsZero() || a.Fingerprint == "" {
		t.Errorf("alert %+v", a)
	}
	if got.CommonLabels["alertname"] != nt.Events[0].Rule {
		t.Errorf("common labels %v", got.CommonLabels)
	}
	for _, bad := range []string{"format: prometheus", "format: alertmanager\n      template: x"} {
		text := "receivers:\n  - name: w\n    webhook:\n      url: http://x/\n      " + bad + "\n"
		if _, err := config.Parse([]byte(text), "t.yaml"); err == nil || !strings.Contains(err.Error(), "webhook.") {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}
