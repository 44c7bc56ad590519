package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestRecordAlertEventAndOutboxLifecycle(t *testing.T) {
	ctx := t.Context()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	rec := AlertEventRecord{EventID: "a/1", AlertID: "a", Seq: 1, Rule: "r", Severity: "red", State: "firing",
		Room: "1", StartedAt: now, At: now, Numbers: map[string]float64{"x": 1}}
	queue := func(tx AlertView, prior *AlertRow) (AlertDecision, error) {
		if prior != nil {
			t.Errorf("prior of a new alert: %+v", prior)
		}
		firing, err := tx.FiringAlertsInRoom("1")
		if err != nil || len(firing) != 1 || firing[0].ID != "a" { // sees its own upsert
			t.Errorf("firing in tx: %+v %v", firing, err)
		}
		return AlertDecision{MarkNotified: true, Outbox: []OutboxInsert{
			{Receiver: "x", GroupKey: "g", Payload: []byte(`{}`), NotBefore: now},
			{Receiver: "y", GroupKey: "g", Payload: []byte(`{}`), NotBefore: now, GroupInterval: time.Minute},
		}}, nil
	}
	if _, err := st.RecordAlertEvent(ctx, rec, now, queue); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordAlertEvent(ctx, rec, now, queue); !errors.Is(err, ErrDuplicateEvent) {
		t.Fatalf("second record: %v", err)
	}
	alerts, err := st.ListAlerts(ctx, now.Add(-time.Hour))
	if err != nil || len(alerts) != 1 || !alerts[0].Notified || alerts[0].State != "firing" {
		t.Fatalf("alerts %+v %v", alerts, err)
	}
	rows, _ := st.OutboxPendingRows(ctx, "y", 10)
	if len(rows) != 1 || rows[0].GroupInterval != time.Minute || !rows[0].NotBefore.Equal(now) {
		t.Fatalf("pending rows %+v", rows)
	}
	ids := []int64{rows[0].ID}
	if err := st.OutboxMarkSending(ctx, ids, "b1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.OutboxRecover(ctx, "", 0); n != 1 {
		t.Fatalf("recovered %d", n)
	}
	rows, _ = st.OutboxPendingRows(ctx, "y", 10)
	if rows[0].BatchID != "b1" || rows[0].CrashResends != 1 || rows[0].Attempts != 1 {
		t.Fatalf("after recovery %+v", rows[0])
	}
	if err := st.OutboxMarkSent(ctx, ids, now); err != nil {
		t.Fatal(err)
	}
	last, _ := st.OutboxLastSent(ctx, "y", now.Add(-time.Hour))
	if !last["g"].Equal(now) {
		t.Fatalf("last sent %v", last)
	}
	if n, _ := st.OutboxUnsent(ctx); n != 1 {
		t.Fatalf("unsent %d, want 1 (receiver x)", n)
	}
	if n, _ := st.OutboxPrune(ctx, now.Add(time.Hour)); n != 1 {
		t.Fatalf("pruned %d, want only the sent row", n)
	}
	if all, _ := st.OutboxRows(ctx); len(all) != 1 || all[0].Receiver != "x" {
		t.Fatalf("left %+v", all)
	}
}
