package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"lookout/item"
)

// TestWriteItemsChildrenFollowTheirItem writes batches that are not a
// multiple of the fast path's statement size, with metric samples, keyword
// matches, terms and raw payloads on some items and, in the second round,
// duplicates spread through the batch (the exact path's case). Every child
// row must belong to the item it was written for.
func TestWriteItemsChildrenFollowTheirItem(t *testing.T) {
	ctx := context.Background()
	s := storeOpenTest(t)
	mk := func(i int) item.Item {
		if i%17 == 5 {
			return item.Item{Source: "live", Platform: "bilibili", Kind: item.KindMetric, Room: "r",
				ID: fmt.Sprintf("m%d", i), Metric: "viewers", Value: float64(i), TS: storeT0.Add(time.Duration(i) * time.Second)}
		}
		it := storeChat(fmt.Sprintf("c%d", i), storeT0.Add(time.Duration(i)*time.Second), fmt.Sprintf("text %d", i), item.Negative, -0.5)
		it.Raw = []byte(fmt.Sprintf("raw of c%d", i))
		if i%3 == 0 {
			it.Raw = nil
		}
		if i%4 == 0 {
			it.Score.Groups = []item.Match{{Group: "g", Category: "crisis", Severity: "red", Terms: []string{fmt.Sprintf("kw%d", i), "退款"}}}
		}
		if i%7 == 0 {
			it.Score.Groups = append(it.Score.Groups, item.Match{Group: fmt.Sprintf("solo%d", i), Category: "other", Severity: "green"})
		}
		it.Score.Terms = []string{fmt.Sprintf("t%d", i)}
		return it
	}
	count := func(lo, hi int) (items, metrics int) {
		for i := lo; i < hi; i++ {
			if i%17 == 5 {
				metrics++
			} else {
				items++
			}
		}
		return
	}
	// Round 1: 0..99, all new. Round 2: 50..179, 50..99 already stored.
	for _, r := range []struct{ lo, hi, newLo int }{{0, 100, 0}, {50, 180, 100}} {
		var batch []item.Item
		for i := r.lo; i < r.hi; i++ {
			batch = append(batch, mk(i))
		}
		n, err := s.WriteItems(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		ni, nm := count(r.newLo, r.hi)
		if n != ni+nm {
			t.Errorf("batch %d..%d: inserted %d, want %d", r.lo, r.hi, n, ni+nm)
		}
	}
	ni, nm := count(0, 180)
	if got := storeCount(t, s, `SELECT count(*) FROM items`); got != ni {
		t.Errorf("%d items, want %d", got, ni)
	}
	if got := storeCount(t, s, `SELECT count(*) FROM metrics`); got != nm {
		t.Errorf("%d metric samples, want %d", got, nm)
	}
	for _, q := range []struct{ what, query string }{
		{"raw payload of another item", `SELECT count(*) FROM raw_payloads r JOIN items i ON i.id = r.item_id
			WHERE CAST(r.payload AS TEXT) != 'raw of ' || i.item_id`},
		{"keyword of another item", `SELECT count(*) FROM item_groups g JOIN items i ON i.id = g.item_id
			WHERE g.keyword NOT IN ('', '退款', 'kw' || substr(i.item_id, 2)) OR (g.keyword = '' AND g.grp != 'solo' || substr(i.item_id, 2))`},
		{"term of another item", `SELECT count(*) FROM item_terms t JOIN items i ON i.id = t.item_id WHERE t.term != 't' || substr(i.item_id, 2)`},
		{"orphan group", `SELECT count(*) FROM item_groups WHERE item_id NOT IN (SELECT id FROM items)`},
	} {
		if n := storeCount(t, s, q.query); n != 0 {
			t.Errorf("%d rows: %s", n, q.what)
		}
	}
	wantRaw, wantKw := 0, 0
	for i := range 180 {
		if i%17 == 5 {
			continue
		}
		if i%3 != 0 {
			wantRaw++
		}
		if i%4 == 0 {
			wantKw += 2
		}
		if i%7 == 0 {
			wantKw++
		}
	}
	if got := storeCount(t, s, `SELECT count(*) FROM raw_payloads`); got != wantRaw {
		t.Errorf("%d raw payloads, want %d", got, wantRaw)
	}
	if got := storeCount(t, s, `SELECT count(*) FROM item_groups`); got != wantKw {
		t.Errorf("%d keyword rows, want %d", got, wantKw)
	}
	if got := storeCount(t, s, `SELECT count(*) FROM item_terms`); got != ni {
		t.Errorf("%d terms, want %d", got, ni)
	}
}

// TestWriteItemsFastAndExactAgree: the fast path (encoded rows, one call
// into SQLite) and the exact path (go-sqlite3's binding, one row at a
// time) store every column of every kind of item alike, NULLs and types
// included.
func TestWriteItemsFastAndExactAgree(t *testing.T) {
	ts := storeT0.Add(1234567 * time.Microsecond)
	var items []item.Item
	add := func(it item.Item) {
		it.ID = fmt.Sprintf("i%d", len(items))
		items = append(items, it)
	}
	scored := storeChat("", ts, "退款 refund", item.Negative, -0.75)
	scored.Score.Terms, scored.Score.Lang = []string{"退款", "refund", "退款", "a\"b"}, "mixed"
	scored.Labels = map[string]string{"brand": "x", "team": "live"}
	scored.AuthorID, scored.Author, scored.URL = "u1", "观众", "https://example.com/1"
	add(scored)
	add(item.Item{Source: "s", Platform: "p", Room: "r", Kind: item.KindChat, TS: ts.Add(time.Millisecond)})
	add(item.Item{Source: "s", Platform: "p", Room: "r", Kind: item.KindGift, TS: ts.Add(time.Second), Value: 0, Author: "a"})
	add(item.Item{Source: "s", Platform: "p", Room: "r", Kind: item.KindSuperChat, TS: ts.Add(time.Minute), Value: 30, Count: 1, Text: "hi"})
	add(item.Item{Source: "s", Platform: "p", Room: "r", Kind: item.KindPost, TS: ts.Add(time.Hour), Metric: "likes", Value: 0, HasValue: true})
	add(item.Item{Source: "s", Platform: "p", Room: "r2", Kind: item.KindChat, TS: time.Date(1999, 12, 31, 23, 59, 59, 999e6, time.UTC),
		Score: item.Score{Scored: true, Label: item.Neutral}})
	add(item.Item{Source: "s", Platform: "p", Room: "r2", Kind: item.KindChat, TS: ts, Count: -3, Text: "nul\x00 and \xff"})

	rows := func(fast bool) []string {
		s := storeOpenTest(t)
		conn, err := s.db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Raw(func(dc any) error {
			n, err := s.writeItemsTx(context.Background(), dc.(*sqlite3.SQLiteConn), items, fast)
			if err == nil && n != len(items) {
				err = fmt.Errorf("%d items stored, want %d", n, len(items))
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		q, err := s.db.Query(`SELECT id, source, platform, room, kind, item_id, author_id, author, text, url, ts, metric,
			value, count, sentiment, score, prob, lang, labels, terms FROM items ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		var out []string
		for q.Next() {
			vals := make([]any, 20)
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := q.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, v := range vals {
				fmt.Fprintf(&b, "%T:%q|", v, fmt.Sprint(v))
			}
			out = append(out, b.String())
		}
		return out
	}
	fast, exact := rows(true), rows(false)
	if len(fast) != len(items) || len(exact) != len(items) {
		t.Fatalf("%d rows on the fast path and %d on the exact one, want %d", len(fast), len(exact), len(items))
	}
	for i := range fast {
		if fast[i] != exact[i] {
			t.Errorf("row %d:\n fast  %s\n exact %s", i, fast[i], exact[i])
		}
	}
}

// TestStoreTimeText: the remembering formatter gives FormatTime's text for
// every time, whichever came before it.
func TestStoreTimeText(t *testing.T) {
	base := time.Date(2026, 12, 4, 23, 59, 59, 0, time.UTC)
	times := []time.Time{
		base, base, base.Add(7 * time.Millisecond), base.Add(7*time.Millisecond + 999*time.Microsecond),
		base.Add(999 * time.Millisecond), base.Add(time.Second), base.Add(1001 * time.Millisecond),
		base.In(time.FixedZone("CST", 8*3600)).Add(5 * time.Millisecond),
		time.Date(1969, 12, 31, 23, 59, 59, 500e6, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 1e6, time.UTC),
		time.Date(12000, 1, 1, 0, 0, 0, 3e6, time.UTC), time.Date(12000, 1, 1, 0, 0, 0, 4e6, time.UTC),
		{}, base,
	}
	var c storeTimeText
	for i, tm := range times {
		if got, want := c.format(tm), FormatTime(tm); got != want {
			t.Errorf("time %d (%v): %q, want %q", i, tm, got, want)
		}
	}
}

// TestWriteItemsLargeRawPayloads: raw payloads past what the row buffer
// holds at once go in in several calls, each with its own item.
func TestWriteItemsLargeRawPayloads(t *testing.T) {
	s := storeOpenTest(t)
	var batch []item.Item
	for i := range 150 { // 150 × 64 KiB: over storeRowBufferBytes twice
		it := storeChat(fmt.Sprintf("c%d", i), storeT0.Add(time.Duration(i)*time.Second), "x", item.Neutral, 0)
		it.Raw = []byte(fmt.Sprintf("%-65536d", i))
		batch = append(batch, it)
	}
	if n, err := s.WriteItems(context.Background(), batch); err != nil || n != len(batch) {
		t.Fatalf("stored %d, %v", n, err)
	}
	if n := storeCount(t, s, `SELECT count(*) FROM raw_payloads r JOIN items i ON i.id = r.item_id
		WHERE length(r.payload) = 65536 AND CAST(trim(CAST(r.payload AS TEXT)) AS INTEGER) = CAST(substr(i.item_id, 2) AS INTEGER)`); n != len(batch) {
		t.Errorf("%d raw payloads with their own item, want %d", n, len(batch))
	}
}
