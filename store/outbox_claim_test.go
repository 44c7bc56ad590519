package store

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestOutboxClaim: two handles on one file (two processes). Of two claims
// of the same rows, one gets them all and the other none
// (ErrOutboxClaimed); a claim is all or none; a live claim is not taken
// back, a stale one is, with its batch id and a crash resend counted; a
// row put back for a retry of one batch cannot be claimed into another.
func TestOutboxClaim(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "a.db")
	a, b := outboxClaimOpen(t, path), outboxClaimOpen(t, path)
	now := time.Now().UTC()
	rec := AlertEventRecord{EventID: "a/1", AlertID: "a", Seq: 1, Rule: "r", Severity: "red", State: "firing",
		Room: "1", StartedAt: now, At: now}
	if _, err := a.RecordAlertEvent(ctx, rec, now, func(AlertView, *AlertRow) (AlertDecision, error) {
		return AlertDecision{MarkNotified: true, Outbox: []OutboxInsert{
			{Receiver: "hook", GroupKey: "g", Payload: []byte(`{}`), NotBefore: now},
			{Receiver: "mail", GroupKey: "g", Payload: []byte(`{}`), NotBefore: now},
		}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	hook, err := a.OutboxPendingRows(ctx, "hook", 10)
	if err != nil || len(hook) != 1 {
		t.Fatalf("pending rows = %v, %v", hook, err)
	}
	ids := []int64{hook[0].ID}
	for round := range 20 { // the race goes either way; each round must have one winner
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
			case !errors.Is(err, ErrOutboxClaimed):
				t.Fatal(err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d handles claimed the row (errors %v), want 1", round, won, errs)
		}
		if round < 19 {
			if err := a.OutboxMarkRetry(ctx, ids, now, "again"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A claimed row is not the other's to mute.
	if err := b.OutboxMarkSuppressed(ctx, ids, "silenced:x"); !errors.Is(err, ErrOutboxClaimed) {
		t.Errorf("suppress a claimed row: err = %v", err)
	}
	if rows, _ := a.OutboxRows(ctx); rows[0].State != OutboxSending {
		t.Errorf("claimed row after a suppress: %+v", rows[0])
	}
	// All or none: a batch with one row claimed already claims nothing.
	mail, _ := a.OutboxPendingRows(ctx, "mail", 10)
	if err := b.OutboxMarkSending(ctx, []int64{ids[0], mail[0].ID}, "batch-2"); !errors.Is(err, ErrOutboxClaimed) {
		t.Errorf("mixed batch: err = %v", err)
	}
	if rows, _ := a.OutboxPendingRows(ctx, "mail", 10); len(rows) != 1 || rows[0].BatchID != "" || rows[0].Attempts != 0 {
		t.Errorf("the mail row was touched by a claim that failed: %+v", rows)
	}
	// A live claim stays; a stale one is taken back.
	if n, err := b.OutboxRecover(ctx, "", OutboxClaimTimeout); err != nil || n != 0 {
		t.Errorf("recover of a fresh claim = %d, %v", n, err)
	}
	if _, err := a.DB().ExecContext(ctx, `UPDATE outbox SET claimed_at = ? WHERE id = ?`,
		FormatTime(time.Now().Add(-2*OutboxClaimTimeout)), ids[0]); err != nil {
		t.Fatal(err)
	}
	if n, err := b.OutboxRecover(ctx, "mail", OutboxClaimTimeout); err != nil || n != 0 {
		t.Errorf("recover of another receiver's stale claim = %d, %v", n, err)
	}
	if n, err := b.OutboxRecover(ctx, "hook", OutboxClaimTimeout); err != nil || n != 1 {
		t.Errorf("recover of a stale claim = %d, %v", n, err)
	}
	rows, err := b.OutboxPendingRows(ctx, "hook", 10)
	if err != nil || len(rows) != 1 || rows[0].BatchID != "batch-1" || rows[0].CrashResends != 1 || rows[0].Attempts != 20 {
		t.Fatalf("after a stale claim: rows = %+v, %v", rows, err)
	}
	// The row belongs to batch-1 now: a sender that read it before it got
	// that batch cannot send it in a message of its own.
	if err := a.OutboxMarkSending(ctx, ids, "batch-3"); !errors.Is(err, ErrOutboxClaimed) {
		t.Errorf("claim into another batch: err = %v", err)
	}
	if err := b.OutboxMarkSending(ctx, ids, rows[0].BatchID); err != nil {
		t.Fatal(err)
	}
	if err := b.OutboxMarkSent(ctx, ids, now); err != nil {
		t.Fatal(err)
	}
	if err := a.OutboxMarkSending(ctx, ids, "batch-1"); !errors.Is(err, ErrOutboxClaimed) {
		t.Errorf("claim of a sent row: err = %v", err)
	}
	if n, err := a.OutboxUnsent(ctx); err != nil || n != 1 {
		t.Errorf("unsent = %d, %v (the mail row)", n, err)
	}
}

func outboxClaimOpen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
