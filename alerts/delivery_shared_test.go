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
