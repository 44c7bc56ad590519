package alerts

import (
	"context"
	"fmt"
	"testing"
	"time"

	"lookout/internal/loopback"
	"lookout/internal/pgtest"
	"lookout/store/pg"
)

// TestDeliverySharedPostgres: two Deliveries (two processors) run on one
// PostgreSQL store and drain one outbox; events recorded through either
// reach the webhook once each, however the two race for the rows.
func TestDeliverySharedPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	hook := loopback.NewWebhookServer()
	defer hook.Close()
	cfg := deliveryKillConfig(hook.URL())
	var ds []*Delivery
	for range 2 {
		st, err := pg.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{}))
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
	deadline := time.Now().Add(20 * time.Second)
	for len(hook.IdempotencyKeys()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a second send of any row would arrive by now
	ids, _, keys := deliveryWebhookEvents(t, hook)
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
	}
	if len(seen) != n {
		t.Errorf("webhook got %d distinct events, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
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
}
