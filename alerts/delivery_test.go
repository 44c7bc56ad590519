package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"lookout/config"
	"lookout/internal/labels"
	"lookout/internal/loopback"
	"lookout/store"
)

// deliveryFast are options that keep the tests quick: short retries and
// polling. The mechanisms are the production ones.
func deliveryFast(o DeliveryOptions) DeliveryOptions {
	if o.RetryBase == 0 {
		o.RetryBase = 20 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = 150 * time.Millisecond
	}
	if o.PollInterval == 0 {
		o.PollInterval = 20 * time.Millisecond
	}
	if o.ThrottleBackoff == 0 {
		o.ThrottleBackoff = 400 * time.Millisecond
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	return o
}

// deliveryMetric reads one counter or gauge.
func deliveryMetric(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var pb dto.Metric
	if err := (<-ch).Write(&pb); err != nil {
		return -1
	}
	if pb.Counter != nil {
		return pb.Counter.GetValue()
	}
	return pb.Gauge.GetValue()
}

func deliveryTestStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lookout.db")
	st, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

// deliveryTestEvent is change seq of alert <rule>@<room>.
func deliveryTestEvent(rule, room string, seq int, sev Severity, state State) Event {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Second)
	alert := fmt.Sprintf("%s/src/%s/1767268800000", rule, room)
	prev := Pending
	if state == Pending {
		prev = Inactive
	}
	if state == Resolved {
		prev = Firing
	}
	ev := Event{
		ID: fmt.Sprintf("%s/%d", alert, seq), AlertID: alert, Seq: seq,
		Rule: rule, RuleKind: "negative_ratio", Severity: sev, State: state, Prev: prev,
		Labels: map[string]string{"team": "live"}, Source: "src", Platform: "bilibili", Room: room,
		StartedAt: at.Add(-time.Duration(seq) * time.Second), At: at, Window: time.Minute,
		Value: 0.5, Threshold: 0.4, Numbers: map[string]float64{"items": 100, "negative_ratio": 0.5},
		Summary: fmt.Sprintf("%s in %s", rule, room),
		Samples: []Sample{{Source: "src", Author: "u", Text: "退款", TS: at}},
	}
	if state == Resolved {
		ev.ResolvedAt = at
	}
	return ev
}

func deliveryWebhookReceiver(name, url string) config.ReceiverConfig {
	return config.ReceiverConfig{Name: name, Webhook: &config.WebhookConfig{URL: config.NewSecret(url)}}
}

// deliveryRun starts d.Run and returns a stop function that cancels it and
// returns Run's result.
func deliveryRun(t *testing.T, d *Delivery) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = fmt.Errorf("Run did not stop within 10s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// deliveryWebhookEvents flattens the events a webhook server accepted, in
// arrival order, and the keys of the messages.
func deliveryWebhookEvents(t *testing.T, srv *loopback.WebhookServer) (ids []string, byGroup map[string][]string, keys []string) {
	t.Helper()
	byGroup = map[string][]string{}
	for _, m := range srv.Messages() {
		var p WebhookPayload
		if err := json.Unmarshal(m.Body, &p); err != nil {
			t.Fatalf("webhook body: %v", err)
		}
		keys = append(keys, m.Header.Get("Idempotency-Key"))
		for _, e := range p.Events {
			ids = append(ids, e.ID)
			byGroup[p.GroupKey] = append(byGroup[p.GroupKey], e.ID)
		}
	}
	return ids, byGroup, keys
}

func deliveryOutboxStates(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	rows, err := st.OutboxRows(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.State]++
	}
	return out
}

func deliveryWaitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDeliveryPublishRecordsEveryChangeOnce(t *testing.T) {
	st, _ := deliveryTestStore(t)
	cfg := &config.Config{Route: config.RouteConfig{Receiver: "hook"}, Receivers: []config.ReceiverConfig{deliveryWebhookReceiver("hook", "http://127.0.0.1:1/x")}}
	d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pending := deliveryTestEvent("storm", "r1", 1, Red, Pending)
	firing := deliveryTestEvent("storm", "r1", 2, Red, Firing)
	resolved := deliveryTestEvent("storm", "r1", 3, Red, Resolved)
	for _, ev := range []Event{pending, firing, firing, resolved, resolved} { // duplicates on purpose
		if err := d.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	db := st.DB()
	if err := db.QueryRow(`SELECT count(*) FROM alert_events WHERE alert_id = ?`, firing.AlertID).Scan(&n); err != nil || n != 3 {
		t.Fatalf("alert_events rows = %d (%v), want 3 (pending, firing, resolved)", n, err)
	}
	// The stable user-facing columns.
	var id, rule, sev, state, room, started, summary string
	var resolvedAt *string
	if err := db.QueryRow(`SELECT id, rule, severity, state, room, started_at, resolved_at, summary FROM alerts`).
		Scan(&id, &rule, &sev, &state, &room, &started, &resolvedAt, &summary); err != nil {
		t.Fatal(err)
	}
	if id != firing.AlertID || rule != "storm" || sev != "red" || state != "resolved" || room != "r1" ||
		started != "2026-01-01T12:00:00.000Z" || resolvedAt == nil || *resolvedAt != "2026-01-01T12:00:03.000Z" {
		t.Fatalf("alerts row: %s %s %s %s %s %s %v", id, rule, sev, state, room, started, resolvedAt)
	}
	// Pending is recorded, not queued; firing and resolved are queued once.
	rows, _ := st.OutboxRows(ctx)
	if len(rows) != 2 || rows[0].EventID != firing.ID || rows[1].EventID != resolved.ID || rows[0].Receiver != "hook" {
		t.Fatalf("outbox rows: %+v", rows)
	}
	// A late, older event does not move the alert back.
	late := deliveryTestEvent("storm", "r1", 2, Red, Firing)
	late.ID += "-replayed"
	_ = d.Publish(ctx, late)
	if err := db.QueryRow(`SELECT state FROM alerts`).Scan(&state); err != nil || state != "resolved" {
		t.Fatalf("state after a stale event = %q", state)
	}
	// The numbers and samples are kept as JSON.
	var numbers, samples string
	if err := db.QueryRow(`SELECT numbers, samples FROM alert_events WHERE event_id = ?`, firing.ID).Scan(&numbers, &samples); err != nil ||
		!strings.Contains(numbers, `"negative_ratio":0.5`) || !strings.Contains(samples, "退款") {
		t.Fatalf("numbers %s samples %s (%v)", numbers, samples, err)
	}
}

// A receiver that is down for the whole window, then back: every event is
// delivered exactly once, in order per group.
func TestDeliveryReceiverDownThenBack(t *testing.T) {
	st, _ := deliveryTestStore(t)
	srv := loopback.NewWebhookServer()
	defer srv.Close()
	cfg := &config.Config{
		Route:     config.RouteConfig{Receiver: "hook", GroupWait: config.Duration(30 * time.Millisecond), GroupInterval: config.Duration(30 * time.Millisecond)},
		Receivers: []config.ReceiverConfig{deliveryWebhookReceiver("hook", srv.URL())},
	}
	d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	srv.FailFor(loopback.SinkFault{Status: 503}, time.Hour) // down until healed
	stop := deliveryRun(t, d)
	var want []string
	wantByRoom := map[string][]string{}
	for i := range 12 {
		room := []string{"A", "B", "C"}[i%3]
		ev := deliveryTestEvent(fmt.Sprintf("rule%d", i), room, 2, Yellow, Firing)
		if err := d.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		want = append(want, ev.ID)
		wantByRoom[room] = append(wantByRoom[room], ev.ID)
		time.Sleep(15 * time.Millisecond) // events arrive over the outage
	}
	deliveryWaitFor(t, "several failed attempts", 5*time.Second, func() bool { return srv.Requests() >= 6 })
	if len(srv.Messages()) != 0 {
		t.Fatal("messages accepted while down")
	}
	srv.Heal()
	deliveryWaitFor(t, "all events delivered", 10*time.Second, func() bool {
		ids, _, _ := deliveryWebhookEvents(t, srv)
		return len(ids) >= len(want)
	})
	time.Sleep(100 * time.Millisecond) // nothing more may arrive
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ids, byGroup, _ := deliveryWebhookEvents(t, srv)
	if len(ids) != len(want) {
		t.Fatalf("delivered %d events, want exactly %d: %v", len(ids), len(want), ids)
	}
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s delivered %d times", id, seen[id])
		}
	}
	for key, got := range byGroup {
		room := key[strings.Index(key, `"`)+1 : len(key)-2]
		if strings.Join(got, ",") != strings.Join(wantByRoom[room], ",") {
			t.Errorf("group %s order %v, want %v", key, got, wantByRoom[room])
		}
	}
	if s := deliveryOutboxStates(t, st); s[store.OutboxSent] != len(want) || len(s) != 1 {
		t.Fatalf("outbox states %v", s)
	}
	if v := deliveryMetric(d.mErrors.WithLabelValues("hook", "http_5xx")); v < 3 {
		t.Errorf("lookout_notify_errors_total{reason=http_5xx} = %v", v)
	}
	if v := deliveryMetric(d.mPending); v != 0 {
		t.Errorf("lookout_outbox_pending = %v after drain", v)
	}
}

// deliveryRecorder wraps a real notifier and records when it was called.
type deliveryRecorder struct {
	Notifier
	mu    sync.Mutex
	calls []time.Time
	notes []Notification
}

func (r *deliveryRecorder) Notify(ctx context.Context, n Notification) (bool, error) {
	r.mu.Lock()
	r.calls = append(r.calls, time.Now())
	r.notes = append(r.notes, n)
	r.mu.Unlock()
	return r.Notifier.Notify(ctx, n)
}

func (r *deliveryRecorder) times() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.calls...)
}

func deliveryWrap(t *testing.T, rc config.ReceiverConfig, opts NotifierOptions) *deliveryRecorder {
	t.Helper()
	n, err := NewNotifier(rc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &deliveryRecorder{Notifier: n}
}

func TestDeliveryHonoursRetryAfter(t *testing.T) {
	st, _ := deliveryTestStore(t)
	srv := loopback.NewWebhookServer()
	defer srv.Close()
	rc := deliveryWebhookReceiver("hook", srv.URL())
	rec := deliveryWrap(t, rc, NotifierOptions{})
	cfg := &config.Config{Route: config.RouteConfig{Receiver: "hook", GroupWait: config.Duration(time.Millisecond)}, Receivers: []config.ReceiverConfig{rc}}
	d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{Notifiers: map[string]Notifier{"hook": rec}}))
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(loopback.SinkFault{Status: 429, RetryAfter: "1"}, 1)
	deliveryRun(t, d)
	if err := d.Publish(t.Context(), deliveryTestEvent("storm", "A", 2, Red, Firing)); err != nil {
		t.Fatal(err)
	}
	if !srv.WaitMessages(1, 5*time.Second) {
		t.Fatal("not delivered after the Retry-After")
	}
	calls := rec.times()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2 (429, then success)", len(calls))
	}
	if gap := calls[1].Sub(calls[0]); gap < time.Second {
		t.Fatalf("retried after %v, before the server's Retry-After of 1s", gap)
	}
}

func TestDeliveryDingTalkThrottleBacksOff(t *testing.T) {
	st, _ := deliveryTestStore(t)
	srv := loopback.NewDingTalkServer("tok", "SECx")
	defer srv.Close()
	rc := config.ReceiverConfig{Name: "ding", DingTalk: &config.DingTalkConfig{WebhookURL: config.NewSecret(srv.WebhookURL()), Secret: config.NewSecret("SECx")}}
	const backoff = 700 * time.Millisecond
	rec := deliveryWrap(t, rc, NotifierOptions{ThrottleBackoff: backoff})
	cfg := &config.Config{Route: config.RouteConfig{Receiver: "ding", GroupWait: config.Duration(time.Millisecond), GroupBy: []string{"..."}}, Receivers: []config.ReceiverConfig{rc}}
	d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{Notifiers: map[string]Notifier{"ding": rec},
		RateLimits: map[string]ReceiverRate{"ding": {Limit: 1000}}}))
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(loopback.SinkFault{ErrCode: loopback.DingTalkCodeThrottled}, 1)
	deliveryRun(t, d)
	_ = d.Publish(t.Context(), deliveryTestEvent("a", "A", 2, Red, Firing))
	deliveryWaitFor(t, "first attempt", 5*time.Second, func() bool { return len(rec.times()) >= 1 })
	// Another group's event: the whole robot is throttled, so it waits too.
	_ = d.Publish(t.Context(), deliveryTestEvent("b", "B", 2, Red, Firing))
	if !srv.WaitMessages(2, 5*time.Second) {
		t.Fatal("not delivered after the throttle")
	}
	calls := rec.times()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3 (throttled, then two)", len(calls))
	}
	for _, c := range calls[1:] {
		if c.Sub(calls[0]) < backoff {
			t.Fatalf("a call %v after errcode 130101, before the %v back-off", c.Sub(calls[0]), backoff)
		}
	}
	if v := deliveryMetric(d.mErrors.WithLabelValues("ding", "rate_limited")); v != 1 {
		t.Errorf("rate_limited errors = %v", v)
	}
}

func TestDeliveryPermanentErrorStops(t *testing.T) {
	st, _ := deliveryTestStore(t)
	srv := newSlackInvalidAuthServer(t)
	rc := config.ReceiverConfig{Name: "slack-bot", Slack: &config.SlackConfig{Token: config.NewSecret("xoxb-revoked"), Channel: "C1", APIURL: srv}}
	rec := deliveryWrap(t, rc, NotifierOptions{})
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&deliveryLockedWriter{w: &logs, mu: &logMu}, nil))
	cfg := &config.Config{Route: config.RouteConfig{Receiver: "slack-bot", GroupWait: config.Duration(time.Millisecond)}, Receivers: []config.ReceiverConfig{rc}}
	d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{Log: log, Notifiers: map[string]Notifier{"slack-bot": rec}}))
	if err != nil {
		t.Fatal(err)
	}
	deliveryRun(t, d)
	_ = d.Publish(t.Context(), deliveryTestEvent("storm", "A", 2, Red, Firing))
	deliveryWaitFor(t, "row marked failed", 5*time.Second, func() bool { return deliveryOutboxStates(t, st)[store.OutboxFailed] == 1 })
	time.Sleep(200 * time.Millisecond) // ten retry periods: no retry may come
	if n := len(rec.times()); n != 1 {
		t.Fatalf("%d calls after invalid_auth, want exactly 1", n)
	}
	rows, _ := st.OutboxRows(t.Context())
	if !strings.Contains(rows[0].LastError, "invalid_auth") {
		t.Errorf("last_error %q", rows[0].LastError)
	}
	if v := deliveryMetric(d.mErrors.WithLabelValues("slack-bot", "auth")); v != 1 {
		t.Errorf("lookout_notify_errors_total{slack-bot,auth} = %v", v)
	}
	if v := deliveryMetric(d.mNotifications.WithLabelValues("slack-bot", "failed")); v != 1 {
		t.Errorf("lookout_alert_notifications_total{slack-bot,failed} = %v", v)
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, "receiver=slack-bot") || !strings.Contains(out, "failed permanently") || strings.Contains(out, "xoxb-revoked") {
		t.Errorf("log line: %s", out)
	}
}

type deliveryLockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *deliveryLockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A crash between the send and marking it sent (the sender stops right
// there, like kill -9) and a restart on the same database: nothing is lost
// and only the message in flight is sent again, once, with the same
// idempotency key.
func TestDeliveryCrashBetweenSendAndMark(t *testing.T) {
	st, path := deliveryTestStore(t)
	srv := loopback.NewWebhookServer()
	defer srv.Close()
	cfg := &config.Config{
		Route:     config.RouteConfig{Receiver: "hook", GroupWait: config.Duration(time.Millisecond), GroupBy: []string{"..."}},
		Receivers: []config.ReceiverConfig{deliveryWebhookReceiver("hook", srv.URL())},
	}
	d1, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 8 {
		ev := deliveryTestEvent(fmt.Sprintf("r%d", i), "A", 2, Yellow, Firing)
		want = append(want, ev.ID)
		if err := d1.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	sends := 0
	var inFlight string
	d1.deliveryCrashAfterSend = func(n Notification) bool {
		sends++
		if sends == 3 {
			inFlight = n.BatchID
			return true
		}
		return false
	}
	if err := d1.Run(t.Context()); err != errDeliveryCrashed {
		t.Fatalf("Run = %v, want the simulated crash", err)
	}
	if s := deliveryOutboxStates(t, st); s[store.OutboxSending] != 1 || s[store.OutboxSent] != 2 {
		t.Fatalf("after the crash: %v, want 2 sent, 1 sending, rest pending", s)
	}
	st.Close()

	st2, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	d2, err := NewDelivery(cfg, st2, deliveryFast(DeliveryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	stop := deliveryRun(t, d2)
	deliveryWaitFor(t, "drain after restart", 10*time.Second, func() bool { return deliveryOutboxStates(t, st2)[store.OutboxSent] == len(want) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ids, _, keys := deliveryWebhookEvents(t, srv)
	count := map[string]int{}
	for _, id := range ids {
		count[id]++
	}
	for _, id := range want {
		switch {
		case id == inFlight && count[id] != 2:
			t.Errorf("in-flight event %s delivered %d times, want 2 (the documented single resend)", id, count[id])
		case id != inFlight && count[id] != 1:
			t.Errorf("event %s delivered %d times, want 1", id, count[id])
		}
	}
	if len(keys) != len(want)+1 {
		t.Errorf("%d messages, want %d", len(keys), len(want)+1)
	}
	rows, _ := st2.OutboxRows(t.Context())
	for _, r := range rows {
		if (r.EventID == inFlight) != (r.CrashResends == 1) {
			t.Errorf("row %s crash_resends = %d", r.EventID, r.CrashResends)
		}
	}
}

func TestDeliveryGroupsAStorm(t *testing.T) {
	st, _ := deliveryTestStore(t)
	srv := loopback.NewWebhookServer()
	defer srv.Close()
	cfg := &config.Config{
		Route:     config.RouteConfig{Receiver: "hook", GroupBy: []string{"room"}, GroupWait: config.Duration(300 * time.Millisecond)},
		Receivers: []config.ReceiverConfig{deliveryWebhookReceiver("hook", srv.URL())},
	}
	d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	// The storm is committed first (on a loaded machine 50 transactions can
	// outlast any group_wait), then the sender sees it.
	for i := range 50 {
		if err := d.Publish(t.Context(), deliveryTestEvent(fmt.Sprintf("kw%02d", i), "21452505", 2, Yellow, Firing)); err != nil {
			t.Fatal(err)
		}
	}
	deliveryRun(t, d)
	if !srv.WaitMessages(1, 5*time.Second) {
		t.Fatal("no message")
	}
	time.Sleep(400 * time.Millisecond)
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages for a storm of 50, want 1", len(msgs))
	}
	var p WebhookPayload
	_ = json.Unmarshal(msgs[0].Body, &p)
	if p.Count != 50 || len(p.Events) != 50 || !strings.Contains(p.Title, "50 alerts firing") {
		t.Fatalf("count %d events %d title %q", p.Count, len(p.Events), p.Title)
	}
}

func TestDeliveryInhibitionAndSilences(t *testing.T) {
	st, _ := deliveryTestStore(t)
	cfg := &config.Config{Route: config.RouteConfig{Receiver: "hook"}, Receivers: []config.ReceiverConfig{deliveryWebhookReceiver("hook", "http://127.0.0.1:1/")}}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{Now: func() time.Time { return now }}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	suppressed := func(ev Event) string {
		var s *string
		if err := st.DB().QueryRow(`SELECT suppressed FROM alert_events WHERE event_id = ?`, ev.ID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if s == nil {
			return ""
		}
		return *s
	}
	red := deliveryTestEvent("crisis", "A", 2, Red, Firing)
	yellowA := deliveryTestEvent("negative", "A", 2, Yellow, Firing)
	yellowB := deliveryTestEvent("negative", "B", 2, Yellow, Firing)
	for _, ev := range []Event{red, yellowA, yellowB} {
		if err := d.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if got := suppressed(yellowA); got != "inhibited:"+red.AlertID {
		t.Errorf("yellow in the red room: suppressed %q", got)
	}
	if got := suppressed(red) + suppressed(yellowB); got != "" {
		t.Errorf("red / yellow elsewhere suppressed: %q", got)
	}
	// The muted alert's resolution is not sent either.
	yellowAres := deliveryTestEvent("negative", "A", 3, Yellow, Resolved)
	_ = d.Publish(ctx, yellowAres)
	if got := suppressed(yellowAres); got != "not_notified" {
		t.Errorf("resolution of a muted alert: %q", got)
	}
	// Silences.
	sil, err := st.AddSilence(ctx, store.Silence{Matchers: labels.MustParseList(`room="C", severity=~"yellow|red"`), EndsAt: now.Add(time.Hour), Comment: "maintenance", CreatedBy: "ops"}, now)
	if err != nil {
		t.Fatal(err)
	}
	c1 := deliveryTestEvent("negative", "C", 2, Yellow, Firing)
	_ = d.Publish(ctx, c1)
	if got := suppressed(c1); got != "silenced:"+sil.ID {
		t.Errorf("silenced room: %q", got)
	}
	if err := st.ExpireSilence(ctx, sil.ID, now); err != nil {
		t.Fatal(err)
	}
	c2 := deliveryTestEvent("negative2", "C", 2, Yellow, Firing)
	_ = d.Publish(ctx, c2)
	if got := suppressed(c2); got != "" {
		t.Errorf("after expiry: %q", got)
	}
	rows, _ := st.OutboxRows(ctx)
	var queued []string
	for _, r := range rows {
		queued = append(queued, r.EventID)
	}
	if strings.Join(queued, " ") != strings.Join([]string{red.ID, yellowB.ID, c2.ID}, " ") {
		t.Fatalf("queued %v", queued)
	}
}

func TestDeliveryRoutingTree(t *testing.T) {
	st, _ := deliveryTestStore(t)
	recv := func(name string) config.ReceiverConfig {
		return deliveryWebhookReceiver(name, "http://127.0.0.1:1/"+name)
	}
	cfg := &config.Config{
		Route: config.RouteConfig{Receiver: "default", Routes: []config.RouteConfig{
			{Receiver: "pager", Match: map[string]string{"severity": "red"}, Continue: true},
			{Receiver: "bili-team", Match: map[string]string{"platform": "~bili.*"}, Routes: []config.RouteConfig{
				{Receiver: "night", Match: map[string]string{"room": "night"}},
			}},
		}},
		Receivers: []config.ReceiverConfig{recv("default"), recv("pager"), recv("bili-team"), recv("night")},
	}
	d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	route := func(ev Event) string {
		var out []string
		for _, r := range d.root.Match(EventLabels(&ev)) {
			out = append(out, r.Receiver)
		}
		return strings.Join(out, ",")
	}
	red := deliveryTestEvent("x", "A", 2, Red, Firing)
	yellow := deliveryTestEvent("x", "A", 2, Yellow, Firing)
	night := deliveryTestEvent("x", "night", 2, Yellow, Firing)
	rss := deliveryTestEvent("x", "feed", 2, Yellow, Firing)
	rss.Platform = "rss"
	for ev, want := range map[*Event]string{&red: "pager,bili-team", &yellow: "bili-team", &night: "night", &rss: "default"} {
		if got := route(*ev); got != want {
			t.Errorf("%s/%s/%s → %s, want %s", ev.Severity, ev.Platform, ev.Room, got, want)
		}
	}
	if got := d.root.Routes[1].Routes[0].GroupKey(&night, EventLabels(&night)); got != `0.1.0{room="night"}` {
		t.Errorf("group key %s", got)
	}
	_ = d.Publish(t.Context(), red)
	rows, _ := st.OutboxRows(t.Context())
	if len(rows) != 2 || rows[0].Receiver != "pager" || rows[1].Receiver != "bili-team" {
		t.Fatalf("outbox %+v", rows)
	}
}

func TestDeliveryRateLimitPerReceiver(t *testing.T) {
	st, _ := deliveryTestStore(t)
	wh := newSlackTestWebhook(t)
	rc := config.ReceiverConfig{Name: "slack", Slack: &config.SlackConfig{WebhookURL: config.NewSecret(wh.url())}}
	rec := deliveryWrap(t, rc, NotifierOptions{})
	cfg := &config.Config{Route: config.RouteConfig{Receiver: "slack", GroupBy: []string{"..."}, GroupWait: config.Duration(time.Millisecond)}, Receivers: []config.ReceiverConfig{rc}}
	d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{Notifiers: map[string]Notifier{"slack": rec}}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_ = d.Publish(t.Context(), deliveryTestEvent(fmt.Sprintf("r%d", i), "A", 2, Yellow, Firing))
	}
	deliveryRun(t, d)
	deliveryWaitFor(t, "three messages", 10*time.Second, func() bool { return len(rec.times()) == 3 })
	calls := rec.times()
	for i := 1; i < len(calls); i++ {
		// Slack allows about one message a second per channel.
		if gap := calls[i].Sub(calls[i-1]); gap < 900*time.Millisecond {
			t.Errorf("messages %d and %d only %v apart", i-1, i, gap)
		}
	}
}

func TestDeliveryShutdownKeepsUnsentRows(t *testing.T) {
	st, path := deliveryTestStore(t)
	srv := loopback.NewWebhookServer()
	defer srv.Close()
	cfg := &config.Config{Route: config.RouteConfig{Receiver: "hook", GroupWait: config.Duration(time.Hour)},
		Receivers: []config.ReceiverConfig{deliveryWebhookReceiver("hook", srv.URL())}}
	d, _ := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{}))
	stop := deliveryRun(t, d)
	_ = d.Publish(t.Context(), deliveryTestEvent("a", "A", 2, Red, Firing))
	time.Sleep(50 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatalf("Run on shutdown: %v", err)
	}
	if s := deliveryOutboxStates(t, st); s[store.OutboxPending] != 1 {
		t.Fatalf("after shutdown: %v", s)
	}
	st.Close()
	st2, _ := store.Open(t.Context(), path)
	defer st2.Close()
	d2, _ := NewDelivery(cfg, st2, deliveryFast(DeliveryOptions{}))
	deliveryRun(t, d2)
	// Flush skips group_wait: the daemon's last words go out.
	if left := d2.Flush(t.Context(), 5*time.Second); left != 0 {
		t.Fatalf("Flush left %d rows", left)
	}
	if len(srv.Messages()) != 1 {
		t.Fatalf("%d messages", len(srv.Messages()))
	}
}

func TestDeliveryTestAlert(t *testing.T) {
	srv := loopback.NewWebhookServer()
	defer srv.Close()
	cfg := &config.Config{Route: config.RouteConfig{Receiver: "hook"}, Receivers: []config.ReceiverConfig{deliveryWebhookReceiver("hook", srv.URL())}}
	d, err := NewDelivery(cfg, nil, DeliveryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.TestAlert(t.Context(), "hook"); err != nil {
		t.Fatal(err)
	}
	var p WebhookPayload
	_ = json.Unmarshal(srv.Messages()[0].Body, &p)
	if p.Events[0].Rule != "test_alert" || len(p.Events[0].Samples) == 0 {
		t.Fatalf("sample %s", srv.Messages()[0].Body)
	}
	if err := d.TestAlert(t.Context(), "nope"); err == nil || !strings.Contains(err.Error(), "hook") {
		t.Fatalf("unknown receiver: %v", err)
	}
	srv.FailNext(loopback.SinkFault{Status: 401}, 1)
	if err := d.TestAlert(t.Context(), "hook"); err == nil || !strings.Contains(err.Error(), "permanent") {
		t.Fatalf("401: %v", err)
	}
}

// Silences and inhibitions that begin while rows wait (group_wait, an
// outage) still mute them: the sender checks again before sending.
func TestDeliveryMutesQueuedRowsAtSendTime(t *testing.T) {
	st, _ := deliveryTestStore(t)
	srv := loopback.NewWebhookServer()
	defer srv.Close()
	cfg := &config.Config{
		Route:     config.RouteConfig{Receiver: "hook", GroupWait: config.Duration(300 * time.Millisecond)},
		Receivers: []config.ReceiverConfig{deliveryWebhookReceiver("hook", srv.URL())},
	}
	d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	yellowA := deliveryTestEvent("negative", "A", 2, Yellow, Firing)
	redA := deliveryTestEvent("crisis", "A", 2, Red, Firing)
	yellowB := deliveryTestEvent("negative", "B", 2, Yellow, Firing)
	for _, ev := range []Event{yellowA, redA, yellowB} { // yellow first: not inhibited at publish
		if err := d.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	sil, err := st.AddSilence(ctx, store.Silence{Matchers: labels.MustParseList(`room="B"`), EndsAt: time.Now().Add(time.Hour)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	deliveryRun(t, d)
	deliveryWaitFor(t, "the outbox to settle", 5*time.Second, func() bool {
		s := deliveryOutboxStates(t, st)
		return s[store.OutboxSent] == 1 && s[store.OutboxSuppressed] == 2
	})
	ids, _, _ := deliveryWebhookEvents(t, srv)
	if len(ids) != 1 || ids[0] != redA.ID {
		t.Fatalf("delivered %v, want only the red alert", ids)
	}
	rows, _ := st.OutboxRows(ctx)
	why := map[string]string{}
	for _, r := range rows {
		why[r.EventID] = r.LastError
	}
	if why[yellowA.ID] != "inhibited:"+redA.AlertID || why[yellowB.ID] != "silenced:"+sil.ID {
		t.Fatalf("suppression reasons %v", why)
	}
	// The muted alert's resolution goes nowhere; the red one's is sent.
	_ = d.Publish(ctx, deliveryTestEvent("negative", "A", 3, Yellow, Resolved))
	redRes := deliveryTestEvent("crisis", "A", 3, Red, Resolved)
	_ = d.Publish(ctx, redRes)
	rows, _ = st.OutboxRows(ctx)
	if last := rows[len(rows)-1]; len(rows) != 4 || last.EventID != redRes.ID {
		t.Fatalf("resolutions queued: %+v", rows)
	}
}
