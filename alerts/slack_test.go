package alerts

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"lookout/config"
)

// slackTestWebhook is an incoming-webhook endpoint: it records bodies and
// answers like Slack (200 "ok", or a status with a short text body).
type slackTestWebhook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	status int
	retry  string
	text   string
}

func newSlackTestWebhook(t *testing.T) *slackTestWebhook {
	w := &slackTestWebhook{status: 200, text: "ok"}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(r.URL.Path, "/services/") {
			http.Error(rw, "invalid_payload", http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.bodies = append(w.bodies, b)
		status, retry, text := w.status, w.retry, w.text
		w.mu.Unlock()
		if retry != "" {
			rw.Header().Set("Retry-After", retry)
		}
		rw.WriteHeader(status)
		_, _ = io.WriteString(rw, text)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *slackTestWebhook) url() string { return w.srv.URL + "/services/T000/B000/XXXXSECRET" }

func (w *slackTestWebhook) answer(status int, retry, text string) {
	w.mu.Lock()
	w.status, w.retry, w.text = status, retry, text
	w.mu.Unlock()
}

func newSlackTestNotifier(t *testing.T, c config.SlackConfig) Notifier {
	t.Helper()
	n, err := NewNotifier(config.ReceiverConfig{Name: "slack-ops", Slack: &c}, NotifierOptions{Now: func() time.Time { return notifyTestNow }})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSlackWebhookRequestShape(t *testing.T) {
	wh := newSlackTestWebhook(t)
	n := newSlackTestNotifier(t, config.SlackConfig{WebhookURL: config.NewSecret(wh.url())})
	retry, err := n.Notify(t.Context(), notifyTestNotification())
	if err != nil || retry {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	if len(wh.bodies) != 1 {
		t.Fatalf("webhook got %d requests, want 1", len(wh.bodies))
	}
	body := wh.bodies[0]
	var msg struct {
		Text        string            `json:"text"`
		Blocks      []json.RawMessage `json:"blocks"`
		Attachments []struct {
			Color  string            `json:"color"`
			Blocks []json.RawMessage `json:"blocks"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Text == "" || len(msg.Blocks) == 0 || len(msg.Attachments) != 1 || msg.Attachments[0].Color != slackColorRed {
		t.Fatalf("missing fallback text, header or red colour bar: %s", body)
	}
	// Samples are escaped mrkdwn.
	var generic any
	_ = json.Unmarshal(body, &generic)
	plain, _ := notifyJSON(generic)
	if !strings.Contains(string(plain), "&lt;script&gt; &amp;") || strings.Contains(string(plain), "<script>") {
		t.Errorf("sample not escaped: %s", body)
	}
	notifyGolden(t, "slack_webhook.json", body)
}

func TestSlackPostMessageRequestShape(t *testing.T) {
	type seen struct {
		values url.Values
		auth   string
	}
	var (
		mu   sync.Mutex
		got  []seen
		fail string
	)
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			v, err := url.ParseQuery(string(b))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			got = append(got, seen{v, r.Header.Get("Authorization")})
			f := fail
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			if f != "" {
				_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": f})
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": v.Get("channel"), "ts": "1700000000.000100"})
		})
	})
	srv.Start()
	defer srv.Stop()

	n := newSlackTestNotifier(t, config.SlackConfig{Token: config.NewSecret("xoxb-test-token"), Channel: "C0ALERTS", APIURL: srv.GetAPIURL()})
	if retry, err := n.Notify(t.Context(), notifyTestNotification()); err != nil || retry {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	if len(got) != 1 {
		t.Fatalf("chat.postMessage called %d times, want 1", len(got))
	}
	v := got[0].values
	if got[0].auth != "Bearer xoxb-test-token" || v.Get("channel") != "C0ALERTS" {
		t.Fatalf("token/channel not sent: %v", v)
	}
	shape := map[string]any{"channel": v.Get("channel"), "text": v.Get("text")}
	for _, k := range []string{"blocks", "attachments"} {
		var x any
		if err := json.Unmarshal([]byte(v.Get(k)), &x); err != nil {
			t.Fatalf("%s is not JSON: %v", k, err)
		}
		shape[k] = x
	}
	b, _ := json.Marshal(shape)
	notifyGolden(t, "slack_postmessage.json", b)

	// Permanent API errors are not retried; server errors are.
	for _, tc := range []struct {
		apiErr string
		retry  bool
		reason string
	}{
		{"invalid_auth", false, "auth"},
		{"channel_not_found", false, "rejected"},
		{"ratelimited", true, "rate_limited"},
		{"internal_error", true, "api_error"},
	} {
		mu.Lock()
		fail = tc.apiErr
		mu.Unlock()
		retry, err := n.Notify(t.Context(), notifyTestNotification())
		if err == nil || retry != tc.retry || NotifyReason(err) != tc.reason || !strings.Contains(err.Error(), tc.apiErr) {
			t.Errorf("%s: retry=%v reason=%q err=%v; want retry=%v reason=%q", tc.apiErr, retry, NotifyReason(err), err, tc.retry, tc.reason)
		}
	}
}

func TestSlackWebhookErrors(t *testing.T) {
	wh := newSlackTestWebhook(t)
	n := newSlackTestNotifier(t, config.SlackConfig{WebhookURL: config.NewSecret(wh.url())})
	for _, tc := range []struct {
		status int
		retryH string
		retry  bool
		wait   time.Duration
	}{
		{429, "3", true, 3 * time.Second},
		{500, "", true, 0},
		{503, "", true, 0},
		{400, "", false, 0},
		{404, "", false, 0},
		{403, "", false, 0},
	} {
		wh.answer(tc.status, tc.retryH, "channel_not_found")
		retry, err := n.Notify(t.Context(), notifyTestNotification())
		if err == nil || retry != tc.retry {
			t.Errorf("HTTP %d: retry=%v err=%v; want retry=%v", tc.status, retry, err, tc.retry)
			continue
		}
		var ra *RetryAfterError
		if tc.wait > 0 && (!errors.As(err, &ra) || ra.Wait != tc.wait) {
			t.Errorf("HTTP %d: want RetryAfterError{%v}, got %v", tc.status, tc.wait, err)
		}
		if strings.Contains(err.Error(), "XXXXSECRET") {
			t.Errorf("error leaks the webhook secret: %v", err)
		}
	}
	// Unreachable: retryable, and the URL's secret is not in the error.
	wh.srv.Close()
	retry, err := n.Notify(t.Context(), notifyTestNotification())
	if err == nil || !retry || strings.Contains(err.Error(), "XXXXSECRET") || strings.Contains(err.Error(), "/services/") {
		t.Fatalf("unreachable webhook: retry=%v err=%v", retry, err)
	}
}

func TestSlackGroupMessageHasCount(t *testing.T) {
	var evs []Event
	for i := range 50 {
		e := notifyTestEvent()
		e.ID = e.AlertID + "/" + string(rune('a'+i%26)) + time.Duration(i).String()
		evs = append(evs, e)
	}
	msg, err := slackBuildMessage(notifyTestNotification(evs...), nil, notifyTestNow)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(msg)
	if !strings.Contains(msg.Text, "50 alerts firing") || !strings.Contains(string(b), "…and 40 more") {
		t.Fatalf("group message lacks the count: %s", msg.Text)
	}
	if n := len(msg.Attachments[0].Blocks.BlockSet); n > 50 {
		t.Fatalf("%d blocks: over Slack's 50-block limit", n)
	}
}

func TestSlackTemplateOverride(t *testing.T) {
	wh := newSlackTestWebhook(t)
	n := newSlackTestNotifier(t, config.SlackConfig{WebhookURL: config.NewSecret(wh.url()),
		Template: `{{range .Events}}*{{.Rule}}* in {{.Room}}: {{num "negative_ratio" .Value}}{{end}}`})
	if _, err := n.Notify(t.Context(), notifyTestNotification()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(wh.bodies[0]), "*complaint_storm* in 21452505: 62.0%") {
		t.Fatalf("template output missing: %s", wh.bodies[0])
	}
	if _, err := NewNotifier(config.ReceiverConfig{Name: "bad", Slack: &config.SlackConfig{WebhookURL: config.NewSecret(wh.url()), Template: "{{.Nope"}}, NotifierOptions{}); err == nil {
		t.Fatal("a broken template must fail at construction")
	}
}

// newSlackInvalidAuthServer is a slacktest server whose chat.postMessage
// answers {"ok":false,"error":"invalid_auth"}, like Slack for a revoked
// token. It returns the API URL.
func newSlackInvalidAuthServer(t *testing.T) string {
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
		})
	})
	srv.Start()
	t.Cleanup(srv.Stop)
	return srv.GetAPIURL()
}
