package alerts

import (
	"context"
	"testing"

	"lookout/internal/pgtest"
	"lookout/store/pg"
)

// TestDeliverySharedPostgres: two Deliveries (two processors) run on one
// PostgreSQL store and drain one outbox; events recorded through either
// reach the webhook once each, however the two race for the rows.
func TestDeliverySharedPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	deliveryShared(t, func() DeliveryStore {
		st, err := pg.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}
