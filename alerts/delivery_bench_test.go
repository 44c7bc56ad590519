package alerts

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"lookout/config"
	"lookout/internal/loopback"
	"lookout/store"
)

func deliveryBenchStore(b *testing.B) *store.Store {
	b.Helper()
	st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// BenchmarkDeliveryPublish: one firing event recorded (alerts upsert,
// alert_events row, silence and inhibition checks, routing, two outbox
// rows) per op, each its own SQLite transaction.
func BenchmarkDeliveryPublish(b *testing.B) {
	st := deliveryBenchStore(b)
	cfg := &config.Config{
		Route: config.RouteConfig{Receiver: "a", Routes: []config.RouteConfig{{Receiver: "b", Match: map[string]string{"severity": "red"}, Continue: true}}},
		Receivers: []config.ReceiverConfig{deliveryWebhookReceiver("a", "http://127.0.0.1:1/a"),
			deliveryWebhookReceiver("b", "http://127.0.0.1:1/b")},
	}
	d, err := NewDelivery(cfg, st, DeliveryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ev := notifyTestEvent()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		ev.AlertID = fmt.Sprintf("bench-alert-%d", i)
		ev.ID = ev.AlertID + "/2"
		ev.Room = fmt.Sprintf("room%d", i%1000)
		if err := d.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkNotifyBuild renders one red event for Slack (Block Kit) and
// DingTalk (markdown): the CPU cost of a message.
func BenchmarkNotifyBuild(b *testing.B) {
	opts := NotifierOptions{Now: func() time.Time { return notifyTestNow }}.withDefaults()
	ding, err := newDingTalkNotifier("d", &config.DingTalkConfig{WebhookURL: config.NewSecret("http://127.0.0.1/robot/send?access_token=x")}, opts)
	if err != nil {
		b.Fatal(err)
	}
	n := notifyTestNotification()
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if _, err := slackBuildMessage(n, nil, notifyTestNow); err != nil {
			b.Fatal(err)
		}
		if _, err := ding.build(n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkDeliveryLatency: from Publish returning to the loopback webhook
// receiving the message (commit, wake-up, outbox read, mark sending, HTTP
// POST), group_wait 0. Reports p50 and p99.
func BenchmarkDeliveryLatency(b *testing.B) {
	st := deliveryBenchStore(b)
	srv := loopback.NewWebhookServer()
	defer srv.Close()
	var (
		mu      sync.Mutex
		arrived = map[string]time.Time{}
		signal  = make(chan struct{}, 1)
	)
	srv.OnAccept(func(m loopback.SinkMessage) {
		mu.Lock()
		arrived[m.Header.Get("Idempotency-Key")] = time.Now()
		mu.Unlock()
		select {
		case signal <- struct{}{}:
		default:
		}
	})
	cfg := &config.Config{
		Route:     config.RouteConfig{Receiver: "hook", GroupBy: []string{"..."}, GroupWaitSet: true},
		Receivers: []config.ReceiverConfig{deliveryWebhookReceiver("hook", srv.URL())},
	}
	d, err := NewDelivery(cfg, st, DeliveryOptions{RateLimits: map[string]ReceiverRate{"hook": {Limit: 1e6, Burst: 1000}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	ev := notifyTestEvent()
	var lat []time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev.AlertID = fmt.Sprintf("lat-alert-%d", i)
		ev.ID = ev.AlertID + "/2"
		ev.Room = fmt.Sprintf("room%d", i%1000)
		if err := d.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
		published := time.Now()
		for {
			mu.Lock()
			at, ok := arrived[ev.ID]
			mu.Unlock()
			if ok {
				lat = append(lat, at.Sub(published))
				break
			}
			select {
			case <-signal:
			case <-time.After(5 * time.Second):
				b.Fatalf("event %d never arrived", i)
			}
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
