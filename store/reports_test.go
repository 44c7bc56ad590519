package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"lookout/item"
)

// The outbox rebuilt by 0010 keeps the rows an older database had queued,
// their ids and states, and takes report rows beside them.
func TestMigrationReportsKeepsQueuedOutbox(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var before []Migration
	for _, m := range migs {
		if m.Version < 10 {
			before = append(before, m)
		}
	}
	db, err := sql.Open("sqlite3", storeDSN(path, "_journal_mode=WAL&_foreign_keys=on&_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	if err := storeApplyMigrations(ctx, db, path, before); err != nil {
		t.Fatal(err)
	}
	now := FormatTime(time.Now())
	for _, q := range []string{
		`INSERT INTO alerts (id, rule, severity, state, started_at, updated_at, last_seq, last_event_id) VALUES ('a1', 'r', 'red', 'firing', '` + now + `', '` + now + `', 1, 'a1/1')`,
		`INSERT INTO alert_events (event_id, alert_id, seq, state, severity, at, recorded_at) VALUES ('a1/1', 'a1', 1, 'firing', 'red', '` + now + `', '` + now + `')`,
		`INSERT INTO outbox (id, event_id, receiver, group_key, payload, state, not_before, next_attempt_at, created_at) VALUES (41, 'a1/1', 'ding', 'g', '{}', 'sending', '` + now + `', '` + now + `', '` + now + `')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.OutboxRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].ID != 41 || rows[0].State != OutboxSending || rows[0].EventID != "a1/1" {
		t.Fatalf("outbox after 0010: %+v, want the queued row as it was", rows)
	}
	rec := ReportRecord{ID: "review:live/1@x", Kind: ReportReview, Source: "live", Room: "1", From: time.Now().Add(-time.Hour), To: time.Now(),
		Title: "t", Markdown: "m", Receivers: []string{"ding"}}
	ins := []OutboxInsert{{Receiver: "ding", GroupKey: "report:" + rec.ID, Payload: []byte(`{"report":{"key":"review:live/1@x"}}`), NotBefore: time.Now()}}
	for i, want := range []bool{true, false} {
		queued, err := s.QueueReport(ctx, rec, ins, time.Now())
		if err != nil || queued != want {
			t.Fatalf("QueueReport #%d = %v, %v; want %v (the second is the same report)", i+1, queued, err, want)
		}
	}
	rows, _ = s.OutboxRows(ctx)
	if len(rows) != 2 || rows[1].ID <= 41 || rows[1].EventID != rec.ID {
		t.Fatalf("outbox %+v, want the alert row and one report row after it", rows)
	}
	list, err := s.ListReports(ctx, "", time.Now().Add(-time.Minute), 0)
	if err != nil || len(list) != 1 || list[0].Receivers[0] != "ding" {
		t.Fatalf("ListReports = %+v, %v", list, err)
	}
}

func TestStreamStart(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	status := func(id string, m int, v float64) item.Item {
		return item.Item{Source: "live", Platform: "bilibili", Room: "1", Kind: item.KindMetric, ID: id, TS: at(m), Metric: item.MetricLiveStatus, Value: v}
	}
	chat := func(id string, m int) item.Item {
		return item.Item{Source: "live", Platform: "bilibili", Room: "1", Kind: item.KindChat, ID: id, TS: at(m), Text: "hi"}
	}
	// Stream A: LIVE at 0, chat, end at 60. Stream B: no LIVE, chat from
	// 90, end at 120. A repeated end at 121 with nothing between.
	if _, err := s.WriteItems(ctx, []item.Item{
		status("live1", 0, 1), chat("c1", 5), status("end1", 60, 0),
		chat("c2", 90), chat("c3", 100), status("end2", 120, 0), status("end3", 121, 0),
	}); err != nil {
		t.Fatal(err)
	}
	ends, err := s.StreamEnds(ctx, at(-10))
	if err != nil || len(ends) != 3 {
		t.Fatalf("StreamEnds = %v, %v; want 3", ends, err)
	}
	for _, tc := range []struct {
		name  string
		end   int
		start int
		ok    bool
	}{
		{"LIVE marks the start", 60, 0, true},
		{"first item after the previous end", 120, 90, true},
		{"a repeated end has no stream", 121, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := s.StreamStart(ctx, "live", "1", at(tc.end), at(tc.end).Add(-24*time.Hour))
			if err != nil || ok != tc.ok || (ok && !got.Equal(at(tc.start))) {
				t.Fatalf("StreamStart(end %d) = %v, %v, %v; want %v, %v", tc.end, got, ok, err, at(tc.start), tc.ok)
			}
		})
	}
}
