package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"lookout/item"
)

// storeRollupDiff compares the rollup tables with the same sums computed
// over the items that stand, and returns the rows that differ.
func storeRollupDiff(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT source, room, minute, kind, sentiment, sum(items), sum(units), round(sum(value), 6) FROM (
			SELECT source, room, minute, kind, sentiment, items, units, value FROM room_minutes
			UNION ALL
			SELECT source, room, substr(ts, 1, 16) || ':00Z', kind, coalesce(sentiment, ''), -1, -max(coalesce(count, 1), 1), -coalesce(value, 0)
			FROM items WHERE deleted_at IS NULL)
		GROUP BY 1, 2, 3, 4, 5 HAVING sum(items) != 0 OR sum(units) != 0 OR abs(sum(value)) > 1e-9`,
		`SELECT source, room, minute, term, sentiment, sum(n), 0, 0 FROM (
			SELECT source, room, minute, term, sentiment, mentions AS n FROM room_minute_terms
			UNION ALL
			SELECT i.source, i.room, substr(i.ts, 1, 16) || ':00Z', j.value, coalesce(i.sentiment, ''), -1
			FROM items i, json_each(i.terms) j WHERE i.terms IS NOT NULL AND i.deleted_at IS NULL)
		GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) != 0`,
	} {
		rows, err := s.DB().Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a, b, c, d, e string
			var n, u int64
			var v float64
			if err := rows.Scan(&a, &b, &c, &d, &e, &n, &u, &v); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s/%s %s %s %q: rollup-items = %d %d %g", a, b, c, d, e, n, u, v))
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestRollupsFollowItems: after inserts (fast and exact path, duplicates),
// edits (in the batch of their original, later, of items never stored),
// deletes and retention, room_minutes and room_minute_terms hold exactly
// what a plain SQL over the standing items gives, except that retention
// leaves the rollups of pruned items in place.
func TestRollupsFollowItems(t *testing.T) {
	ctx := context.Background()
	chat := func(id string, sec int, label item.Label, terms ...string) item.Item {
		it := storeChat(id, storeT0.Add(time.Duration(sec)*time.Second), "text "+id, label, float64(label)*0.7)
		it.Score.Terms = terms
		return it
	}
	gift := func(id string, sec int, count int64, value float64) item.Item {
		return item.Item{Source: "brand-live", Platform: "bilibili", Room: "21452505", Kind: item.KindGift, ID: id,
			TS: storeT0.Add(time.Duration(sec) * time.Second), Count: count, Value: value, Metric: item.MetricGiftValue}
	}
	edit := func(it item.Item, label item.Label, terms ...string) item.Item {
		it.Score.Label, it.Score.Terms = label, terms
		it.Change, it.ChangedAt = item.ChangeEdit, storeT0.Add(time.Hour)
		return it
	}
	del := func(it item.Item) item.Item {
		return item.Item{Source: it.Source, ID: it.ID, Kind: it.Kind, Change: item.ChangeDelete, ChangedAt: storeT0.Add(2 * time.Hour)}
	}
	a := chat("a", 0, item.Negative, "退款", "假货", "退款")
	b := chat("b", 50, item.Positive, "面霜")
	c := chat("c", 70, item.Neutral)
	d := chat("d", 130, item.Negative, "物流")
	unscored := item.Item{Source: "brand-live", Platform: "bilibili", Room: "other", Kind: item.KindLike, ID: "l1", TS: storeT0, Count: 7}
	for _, tc := range []struct {
		name    string
		batches [][]item.Item
	}{
		{"inserts", [][]item.Item{{a, b, c, d, unscored, gift("g1", 10, 3, 30), gift("g2", 65, 0, 1.5)}}},
		{"duplicates", [][]item.Item{{a, b}, {a, b, c, gift("g1", 10, 3, 30)}, {c, d, d}}},
		{"edit in the same batch", [][]item.Item{{a, b, c, edit(a, item.Positive, "已退款")}}},
		{"edit later", [][]item.Item{{a, b, c, d}, {edit(b, item.Negative, "面霜", "过敏")}, {edit(b, item.Neutral)}}},
		{"edit of an item never stored", [][]item.Item{{b}, {edit(d, item.Positive, "物流")}}},
		{"delete", [][]item.Item{{a, b, c, d, gift("g1", 10, 3, 30)}, {del(a), del(gift("g1", 10, 3, 30))}, {del(a)}}},
		{"edit then delete in one batch", [][]item.Item{{a, b, c, edit(a, item.Neutral, "x"), del(a), del(b)}}},
		{"delete of an item never stored", [][]item.Item{{a}, {del(c)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storeOpenTest(t)
			for _, batch := range tc.batches {
				if _, err := s.WriteItems(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			if n := storeCount(t, s, `SELECT count(*) FROM room_minutes WHERE items != 0`); n == 0 {
				t.Fatal("no rollups written")
			}
			for _, d := range storeRollupDiff(t, s) {
				t.Error(d)
			}
			if tc.name == "inserts" || tc.name == "duplicates" {
				if n := storeCount(t, s, `SELECT count(*) FROM room_minutes m WHERE sentiment IN ('positive', 'negative')
					AND best_id IS NOT (SELECT i.id FROM items i WHERE i.source = m.source AND i.room = m.room
						AND substr(i.ts, 1, 16) || ':00Z' = m.minute AND i.kind = m.kind AND i.sentiment = m.sentiment
						ORDER BY CASE m.sentiment WHEN 'negative' THEN i.score ELSE -i.score END, i.ts LIMIT 1)`); n != 0 {
					t.Errorf("%d rollups name another item than the strongest as their example", n)
				}
				if n := storeCount(t, s, `SELECT count(*) FROM room_minutes WHERE sentiment IN ('positive', 'negative') AND best_id IS NULL`); n != 0 {
					t.Errorf("%d polar rollups without an example", n)
				}
			}
		})
	}
	t.Run("retention keeps the rollups", func(t *testing.T) {
		s := storeOpenTest(t)
		if _, err := s.WriteItems(ctx, []item.Item{a, b, c, d}); err != nil {
			t.Fatal(err)
		}
		before := storeCount(t, s, `SELECT sum(items) FROM room_minutes`)
		if _, err := s.Prune(ctx, storeT0.Add(48*time.Hour), 0, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if n := storeCount(t, s, `SELECT count(*) FROM items`); n != 0 {
			t.Fatalf("items left after retention: %d", n)
		}
		if after := storeCount(t, s, `SELECT sum(items) FROM room_minutes`); after != before || before != 4 {
			t.Errorf("rollup items = %d before retention, %d after; want 4 both", before, after)
		}
	})
}

// TestRollupsBackfill: migration 0012 fills the rollups from the items
// stored before it.
func TestRollupsBackfill(t *testing.T) {
	s := storeOpenTest(t)
	ctx := context.Background()
	if _, err := s.WriteItems(ctx, []item.Item{storeChat("x", storeT0, "好", item.Positive, 0.8)}); err != nil {
		t.Fatal(err)
	}
	// Rewind to before 0012 and run its SQL again over the items.
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var body string
	for _, m := range migs {
		if m.Version == 12 {
			body = m.SQL
		}
	}
	if body == "" {
		t.Fatal("migration 0012 not embedded")
	}
	writer := storeCount(t, s, `SELECT best_id FROM room_minutes WHERE sentiment = 'positive'`)
	if _, err := s.DB().Exec(`DROP TRIGGER items_rollup_update; DROP TABLE room_minutes; DROP TABLE room_minute_terms`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(body); err != nil {
		t.Fatal(err)
	}
	if n := storeCount(t, s, `SELECT sum(items) FROM room_minutes WHERE sentiment = 'positive'`); n != 1 {
		t.Errorf("backfilled positive items = %d, want 1", n)
	}
	if n := storeCount(t, s, `SELECT best_id FROM room_minutes WHERE sentiment = 'positive'`); n != writer || n == 0 {
		t.Errorf("backfilled example = item %d, the writer chose %d", n, writer)
	}
	for _, d := range storeRollupDiff(t, s) {
		t.Error(d)
	}
}

// TestRollupTriggerOnlyWhenCounted: the rollup trigger runs for an update
// that changes what the rollups count (sentiment, terms, a delete) and for
// nothing else: an edit that changes neither, or any update of an item
// already deleted, changes no rollup row. SQLite's total_changes() counts
// the rows a trigger writes, so it tells whether the trigger ran.
func TestRollupTriggerOnlyWhenCounted(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir()+"/trigger.db")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var batch []item.Item
	for i := range 3 {
		batch = append(batch, item.Item{Source: "live", Room: "1", Kind: item.KindChat, ID: fmt.Sprintf("c%d", i), Text: "x", TS: t0,
			Score: item.Score{Scored: true, Label: item.Positive, Value: 0.5, Terms: []string{"面霜", "主播"}}})
	}
	if _, err := s.WriteItems(ctx, batch); err != nil {
		t.Fatal(err)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// changes runs one update and says how many rows it and its triggers
	// wrote.
	changes := func(update string) int64 {
		t.Helper()
		var before, after int64
		if err := conn.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&before); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, update); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&after); err != nil {
			t.Fatal(err)
		}
		return after - before
	}
	for _, tc := range []struct {
		name, update string
		want         int64 // rows written: the item's, plus the trigger's
	}{
		{"edit that changes neither sentiment nor terms", `UPDATE items SET sentiment = sentiment, terms = terms, text = 'y' WHERE item_id = 'c0'`, 1},
		{"edit of the sentiment", `UPDATE items SET sentiment = 'negative' WHERE item_id = 'c0'`, 1 + 2 + 4},
		{"edit of the terms", `UPDATE items SET terms = '["面霜"]' WHERE item_id = 'c1'`, 1 + 2 + 3},
		{"delete", `UPDATE items SET deleted_at = '2026-11-25T12:05:00.000Z' WHERE item_id = 'c2'`, 1 + 1 + 2},
		{"edit of a deleted item", `UPDATE items SET sentiment = 'neutral', terms = '["x"]' WHERE item_id = 'c2'`, 1},
		{"delete of a deleted item", `UPDATE items SET deleted_at = '2026-11-25T12:06:00.000Z' WHERE item_id = 'c2'`, 1},
	} {
		if got := changes(tc.update); got != tc.want {
			t.Errorf("%s: %d rows written, want %d", tc.name, got, tc.want)
		}
	}
	if d := storeRollupDiff(t, s); len(d) > 0 {
		t.Errorf("rollups differ from the items: %v", d)
	}
}
