package pg

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"lookout/store"
)

func recordFiring(t *testing.T, s *Store, eventID string, receivers ...string) (store.AlertDecision, error) {
	t.Helper()
	rec := store.AlertEventRecord{EventID: eventID, AlertID: "crisis/100/1", Seq: 1, Rule: "crisis", RuleKind: "keyword_burst",
		Severity: "red", State: "firing", Room: "100", Source: "bili", Platform: "bilibili", Summary: "假货",
		Labels: map[string]string{"room": "100"}, StartedAt: t0, At: t0, Value: 6, Threshold: 5,
		Numbers: map[string]float64{"items": 6}}
	return s.RecordAlertEvent(context.Background(), rec, t0, func(tx store.AlertView, prior *store.AlertRow) (store.AlertDecision, error) {
		if prior != nil {
			t.Errorf("prior = %+v for a new alert", prior)
		}
		if _, err := tx.FiringAlertsInRoom("100"); err != nil {
			return store.AlertDecision{}, err
		}
		var dec store.AlertDecision
		for _, r := range receivers {
			dec.Outbox = append(dec.Outbox, store.OutboxInsert{Receiver: r, GroupKey: "g", Payload: []byte(`{"x":1}`), NotBefore: t0})
		}
		dec.MarkNotified = len(receivers) > 0
		return dec, nil
	})
}

// TestRecordAlertEventOnce: two processors recording the same event at
// once (a take-over) store it once; the other gets ErrDuplicateEvent.
func TestRecordAlertEventOnce(t *testing.T) {
	dsn := newDSN(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*Store{a, b} {
		wg.Go(func() { _, errs[i] = recordFiring(t, s, "crisis/100/1/1", "hook") })
	}
	wg.Wait()
	dup := 0
	for _, err := range errs {
		switch {
		case errors.Is(err, store.ErrDuplicateEvent):
			dup++
		case err != nil:
			t.Fatal(err)
		}
	}
	if dup != 1 {
		t.Errorf("duplicates = %d, want 1 (errors %v)", dup, errs)
	}
	if n := count(t, a, `SELECT count(*) FROM outbox`); n != 1 {
		t.Errorf("outbox rows = %d, want 1", n)
	}
	open, err := b.OpenAlerts(context.Background())
	if err != nil || len(open) != 1 || !open[0].Notified || open[0].Labels["room"] != "100" || !open[0].StartedAt.Equal(t0) {
		t.Errorf("open alerts = %+v, %v", open, err)
	}
}

// TestOutboxClaim: of two processors marking the same rows sending, one
// claims them all and the other none (ErrOutboxClaimed); a claim left by
// a processor that died goes back to pending once stale, counted as a
// crash resend, with its batch id.
func TestOutboxClaim(t *testing.T) {
	ctx := context.Background()
	dsn := newDSN(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	if _, err := recordFiring(t, a, "crisis/100/1/1", "hook", "mail"); err != nil {
		t.Fatal(err)
	}
	rows, err := a.OutboxPendingRows(ctx, "hook", 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("pending rows = %v, %v", rows, err)
	}
	ids := []int64{rows[0].ID}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*Store{a, b} {
		wg.Go(func() { errs[i] = s.OutboxMarkSending(ctx, ids, "batch-1") })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrOutboxClaimed):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d processors claimed the row (errors %v), want 1", won, errs)
	}
	// A claimed row is not the other's to mute.
	if err := b.OutboxMarkSuppressed(ctx, ids, "silenced:x"); !errors.Is(err, store.ErrOutboxClaimed) {
		t.Errorf("suppress a claimed row: err = %v", err)
	}
	if n := count(t, a, `SELECT count(*) FROM outbox WHERE state = 'sending'`); n != 1 {
		t.Errorf("%d rows sending after a suppress of the claimed one, want 1", n)
	}
	// All or none: a batch with one row claimed already claims nothing.
	mail, _ := a.OutboxPendingRows(ctx, "mail", 10)
	if err := b.OutboxMarkSending(ctx, []int64{ids[0], mail[0].ID}, "batch-2"); !errors.Is(err, store.ErrOutboxClaimed) {
		t.Errorf("mixed batch: err = %v", err)
	}
	if n := count(t, a, `SELECT count(*) FROM outbox WHERE state = 'pending' AND receiver = 'mail'`); n != 1 {
		t.Errorf("the mail row was claimed by a batch that failed")
	}
	// A live claim stays; a stale one is taken back.
	if n, err := b.OutboxRecover(ctx, "", store.OutboxClaimTimeout); err != nil || n != 0 {
		t.Errorf("recover of a fresh claim = %d, %v", n, err)
	}
	if _, err := a.Pool().Exec(ctx, `UPDATE outbox SET claimed_at = now() - interval '2 minutes' WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	if n, err := b.OutboxRecover(ctx, "mail", store.OutboxClaimTimeout); err != nil || n != 0 {
		t.Errorf("recover of another receiver's stale claim = %d, %v", n, err)
	}
	if n, err := b.OutboxRecover(ctx, "hook", store.OutboxClaimTimeout); err != nil || n != 1 {
		t.Errorf("recover of a stale claim = %d, %v", n, err)
	}
	rows, err = b.OutboxPendingRows(ctx, "hook", 10)
	if err != nil || len(rows) != 1 || rows[0].BatchID != "batch-1" || rows[0].CrashResends != 1 || rows[0].Attempts != 1 {
		t.Fatalf("after a stale claim: rows = %+v, %v", rows, err)
	}
	if err := b.OutboxMarkSending(ctx, ids, rows[0].BatchID); err != nil {
		t.Fatal(err)
	}
	if err := b.OutboxMarkSent(ctx, ids, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := a.OutboxUnsent(ctx); err != nil || n != 1 {
		t.Errorf("unsent = %d, %v (the mail row)", n, err)
	}
}

func newDSN(t *testing.T) string {
	t.Helper()
	s := openTest(t)
	return dsnOf(t, s)
}

func openDSN(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
