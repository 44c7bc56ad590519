package store

import (
	"context"
	"fmt"
	"testing"
	"time"

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
