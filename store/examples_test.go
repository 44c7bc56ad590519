package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lookout/item"
)

// TestExampleQueries runs the README's example questions on a database with
// known content, "now" pinned to 2026-11-25T12:30:00Z.
func TestExampleQueries(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lookout.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	at := func(hhmmss string) time.Time {
		ts, err := time.Parse(time.RFC3339, "2026-11-25T"+hhmmss+"Z")
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	n := 0
	chat := func(source, room string, ts time.Time, label item.Label, terms []string, crisis ...string) item.Item {
		n++
		it := storeChat(strings.Repeat("x", n), ts, "text", label, float64(label)*0.8)
		it.Source, it.Room, it.Score.Terms = source, room, terms
		if len(crisis) > 0 {
			it.Score.Groups = []item.Match{{Group: "crisis", Category: "crisis", Severity: "red", Terms: crisis}}
		}
		return it
	}
	viewers := func(room string, ts time.Time, v float64) item.Item {
		return item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindMetric, Room: room,
			Metric: item.MetricViewers, Value: v, TS: ts}
	}
	const room, other = "21452505", "999"
	items := []item.Item{
		chat("brand-live", room, at("11:10:00"), item.Neutral, nil),
		chat("brand-live", room, at("11:20:00"), item.Positive, nil),
		chat("brand-live", room, at("11:30:00"), item.Negative, nil),
		chat("brand-live", room, at("11:40:00"), item.Neutral, nil),
		chat("brand-live", room, at("12:15:00"), item.Negative, []string{"物流"}), // older than 10 minutes
		chat("brand-live", room, at("12:21:00"), item.Negative, []string{"退款", "假货"}, "退款", "假货"),
		chat("brand-live", room, at("12:22:00"), item.Negative, []string{"退款"}, "退款"),
		chat("brand-live", room, at("12:23:00"), item.Negative, []string{"客服"}),
		chat("brand-live", room, at("12:24:00"), item.Negative, []string{"退款", "客服"}),
		chat("brand-live", room, at("12:25:00"), item.Positive, []string{"主播"}),
		chat("other-live", other, at("12:25:00"), item.Positive, []string{"退款"}, "退款"), // not a complaint
		chat("other-live", other, at("12:26:00"), item.Neutral, nil),
		chat("brand-live", room, time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC), item.Negative, []string{"假货"}, "假货"), // yesterday
		viewers(room, at("09:00:00"), 100),                                                                            // older than 2 hours
		viewers(room, at("12:20:10"), 5000),
		viewers(room, at("12:20:40"), 5200),
		viewers(room, at("12:21:10"), 3000),
		viewers(other, at("12:21:10"), 777),
	}
	if _, err := s.WriteItems(ctx, items); err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct{ id, sev, state, room, started, resolved, summary string }{
		{"a1", "red", "firing", room, "2026-11-25T12:22:00.000Z", "", "negative share 67% over 5m"},
		{"a2", "yellow", "resolved", room, "2026-11-20T08:00:00.000Z", "2026-11-20T08:30:00.000Z", "viewers fell 40%"},
		{"a3", "red", "resolved", room, "2026-11-10T08:00:00.000Z", "2026-11-10T09:00:00.000Z", "last month"},
		{"a4", "yellow", "pending", other, "2026-11-25T12:29:00.000Z", "", "not yet"},
	} {
		var resolved any
		if a.resolved != "" {
			resolved = a.resolved
		}
		if _, err := s.DB().Exec(`INSERT INTO alerts (id, rule, severity, state, room, started_at, resolved_at, updated_at,
			summary, last_seq, last_event_id) VALUES (?, 'r', ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
			a.id, a.sev, a.state, a.room, a.started, resolved, a.started, a.summary, a.id+"/1"); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	want := []string{
		// Negative share per hour per room.
		`hour,room,items,negative,negative_share
2026-11-24T23:00:00Z,21452505,1,1,1
2026-11-25T11:00:00Z,21452505,4,1,0.25
2026-11-25T12:00:00Z,21452505,6,5,0.8333
2026-11-25T12:00:00Z,999,2,0,0
`,
		// Top crisis keywords today.
		`keyword,items,rooms
退款,3,2
假货,1,1
`,
		// Alerts fired this week.
		`started_at,severity,rule,room,state,resolved_at,summary
2026-11-25T12:22:00.000Z,red,r,21452505,firing,,negative share 67% over 5m
2026-11-20T08:00:00.000Z,yellow,r,21452505,resolved,2026-11-20T08:30:00.000Z,viewers fell 40%
`,
		// Complaints in the last 10 minutes.
		`term,mentions
退款,3
客服,2
假货,1
`,
		// Viewer curve.
		`minute,viewers
2026-11-25T12:20,5200
2026-11-25T12:21,3000
`,
	}
	if len(want) != len(ExampleQueries) {
		t.Fatalf("%d example queries, %d expected answers", len(ExampleQueries), len(want))
	}
	for i, q := range ExampleQueries {
		t.Run(q.Question, func(t *testing.T) {
			sqlText := strings.ReplaceAll(q.SQL, "'now'", "'2026-11-25T12:30:00Z'")
			if sqlText == q.SQL {
				t.Fatal("example does not use 'now'")
			}
			out, err := storeQueryCSV(ctx, path, sqlText)
			if err != nil {
				t.Fatal(err)
			}
			if out != want[i] {
				t.Errorf("got\n%s\nwant\n%s", out, want[i])
			}
		})
	}
}
