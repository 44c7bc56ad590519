package alerts

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

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
