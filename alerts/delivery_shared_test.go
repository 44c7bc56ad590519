package alerts

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"lookout/internal/loopback"
	"lookout/store"
)

// TestDeliverySharedClaimExpires: processor A claims a message on the
// shared SQLite file and dies before its request leaves (the claim is
// committed, nothing reaches the receiver); processor B, on a handle of its
// own, sends every other event at once but leaves A's message alone while
// A's claim is live, then sends it once, with the batch id A claimed it
// under as its idempotency key, and counts a crash resend.
func TestDeliverySharedClaimExpires(t *testing.T) {
	const claim = 2 * time.Second
	path := filepath.Join(t.TempDir(), "lookout.db")
	open := func() *store.Store {
		st, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	hook := loopback.NewWebhookServer()
	defer hook.Close()
	cfg := deliveryKillConfig(hook.URL())
	opts := func(o DeliveryOptions) DeliveryOptions {
		o.SharedOutbox, o.ClaimTimeout, o.SendTimeout = true, claim, claim/4
		return deliveryFast(o)
	}
	stA := open()
	a, err := NewDelivery(cfg, stA, opts(DeliveryOptions{Notifiers: map[string]Notifier{"hook": deadBeforeSend{}}}))
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	var want []string
	for i := range n {
		ev := deliveryTestEvent(fmt.Sprintf("c%02d", i), "A", 2, Red, Firing)
		want = append(want, ev.ID)
		if err := a.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	var (
		claimedBatch string
		claimedAt    time.Time
	)
	a.deliveryCrashAfterSend = func(nt Notification) bool {
		claimedBatch, claimedAt = nt.BatchID, time.Now()
		return true
	}
	if err := a.Run(t.Context()); err != errDeliveryCrashed {
		t.Fatalf("A's Run = %v, want the simulated crash", err)
	}
	if s := deliveryOutboxStates(t, stA); s[store.OutboxSending] != 1 || s[store.OutboxPending] != n-1 {
		t.Fatalf("after A died: %v, want 1 sending, %d pending", s, n-1)
	}

	stB := open()
	b, err := NewDelivery(cfg, stB, opts(DeliveryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	stop := deliveryRun(t, b)
	deliveryWaitFor(t, "B sends everything, A's message after its claim expired", 20*time.Second, func() bool {
		return deliveryOutboxStates(t, stB)[store.OutboxSent] == n
	})
	time.Sleep(200 * time.Millisecond) // a second send of any row would arrive by now
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range hook.Messages() {
		key := m.Header.Get("Idempotency-Key")
		got[key]++
		if key == claimedBatch && m.At.Sub(claimedAt) < claim {
			t.Errorf("A's message %s went out %v after A claimed it, within the claim timeout %v", key, m.At.Sub(claimedAt), claim)
		}
	}
	for _, id := range want { // one event per message: the key is the event id
		if got[id] != 1 {
			t.Errorf("event %s sent %d times, want 1", id, got[id])
		}
	}
	if len(got) != n {
		t.Errorf("receiver got %d distinct messages, want %d", len(got), n)
	}
	rows, _ := stB.OutboxRows(t.Context())
	for _, r := range rows {
		if (r.EventID == claimedBatch) != (r.CrashResends == 1) || r.BatchID != r.EventID {
			t.Errorf("row %s: crash_resends %d, batch %q", r.EventID, r.CrashResends, r.BatchID)
		}
	}
}

// deadBeforeSend is the notifier of a processor that dies after claiming
// a message and before its request leaves: it sends nothing.
type deadBeforeSend struct{}

func (deadBeforeSend) Name() string { return "dead-before-send" }

func (deadBeforeSend) Notify(context.Context, Notification) (bool, error) { return false, nil }

// TestDeliverySharedSQLite: two Deliveries, each on a handle of its own on
// one SQLite file (as two `lookout run --role process` on one machine),
// drain one outbox; events recorded through either reach the webhook once
// each, however the two race for the rows.
func TestDeliverySharedSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lookout.db")
	deliveryShared(t, func() DeliveryStore {
		st, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}

// deliveryShared runs two Deliveries on two handles open gives of one
// store, publishes events through both in turn, and checks that the
// webhook got every event once, in messages of distinct idempotency keys.
// It logs how many events arrived more than once.
func deliveryShared(t *testing.T, open func() DeliveryStore) {
	hook := loopback.NewWebhookServer()
	defer hook.Close()
	cfg := deliveryKillConfig(hook.URL())
	var ds []*Delivery
	for range 2 {
		d, err := NewDelivery(cfg, open(), deliveryFast(DeliveryOptions{SharedOutbox: true}))
		if err != nil {
			t.Fatal(err)
		}
		deliveryRun(t, d)
		ds = append(ds, d)
	}
	const n = 40
	for i := range n {
		ev := notifyTestEvent()
		ev.AlertID = fmt.Sprintf("shared-%d", i)
		ev.ID = ev.AlertID + "/2"
		ev.Room = fmt.Sprintf("room%d", i)
		ev.Labels = map[string]string{"rule": ev.Rule, "severity": "red", "room": ev.Room}
		if err := ds[i%2].Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	received := func() map[string]int {
		ids, _, _ := deliveryWebhookEvents(t, hook)
		seen := map[string]int{}
		for _, id := range ids {
			seen[id]++
		}
		return seen
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(received()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a second send of any row would arrive by now
	_, _, keys := deliveryWebhookEvents(t, hook)
	seen := received()
	if len(seen) != n {
		t.Errorf("webhook got %d distinct events, want %d", len(seen), n)
	}
	twice := 0
	for id, c := range seen {
		if c != 1 {
			twice++
			t.Errorf("event %s sent %d times", id, c)
		}
	}
	distinct := map[string]bool{}
	for _, k := range keys {
		distinct[k] = true
	}
	if len(distinct) != len(keys) {
		t.Errorf("%d messages carry only %d idempotency keys: a batch went out twice", len(keys), len(distinct))
	}
	t.Logf("%d events, %d messages received, %d events sent more than once", n, len(keys), twice)
}
