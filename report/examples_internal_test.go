package report

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"lookout/item"
	"lookout/store"
)

// TestStrongestMatchesScan: the examples of busy windows, read from the
// writer's example candidates, start with the strongest message the full
// scan of the window finds, hold only standing items of the polarity
// inside the window, each text once, strongest first, with repeated
// texts, deleted items and items outside the window in the file.
func TestStrongestMatchesScan(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ex.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var items []item.Item
	for i := range 3000 {
		lbl := []item.Label{item.Negative, item.Positive, item.Neutral}[i%3]
		// Distinct scores so that "the strongest copy" is one row.
		score := float64(lbl) * (0.5 + float64((i*7919)%1000)/2000)
		items = append(items, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindChat,
			ID: fmt.Sprintf("c%d", i), Author: fmt.Sprintf("u%d", i%13), Text: fmt.Sprintf("text %d", i%211), TS: t0.Add(time.Duration(i) * 7 * time.Second),
			Score: item.Score{Scored: true, Label: lbl, Value: score, Prob: 0.9, Terms: []string{fmt.Sprintf("t%d", i%5)}}})
	}
	for i := 0; i < 3000; i += 17 {
		items = append(items, item.Item{Source: "live", ID: fmt.Sprintf("c%d", i), Kind: item.KindChat, Change: item.ChangeDelete, ChangedAt: t0.Add(9 * time.Hour)})
	}
	for i := 0; i < len(items); i += 97 { // batches of several sizes
		if _, err := st.WriteItems(ctx, items[i:min(i+97, len(items))]); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	ro, err := store.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for _, w := range [][2]time.Time{
		{t0, t0.Add(6 * time.Hour)},
		{t0.Add(time.Hour + 3*time.Second), t0.Add(2 * time.Hour)},
		{t0.Add(5 * time.Hour), t0.Add(5*time.Hour + 10*time.Minute)},
	} {
		q := &querier{ctx: ctx, db: ro.DB()}
		key := []any{"live", "100", store.FormatTime(w[0]), store.FormatTime(w[1])}
		for _, c := range []struct{ sentiment, order string }{{"negative", "ASC"}, {"positive", "DESC"}} {
			scan, err := q.scanStrongest(key, c.sentiment, c.order)
			if err != nil {
				t.Fatal(err)
			}
			walk, err := q.strongest(key, c.sentiment, c.order)
			if err != nil {
				t.Fatal(err)
			}
			if len(scan) == 0 {
				t.Fatalf("%v %s: no examples: the case tests nothing", w, c.sentiment)
			}
			if len(walk) == 0 || !reflect.DeepEqual(scan[0], walk[0]) {
				t.Fatalf("%v %s: candidates start %+v, the scan %+v", w, c.sentiment, walk, scan[0])
			}
			texts := map[string]bool{}
			for i, m := range walk {
				var n int
				if err := ro.DB().QueryRow(`SELECT count(*) FROM items WHERE text = ? AND ts = ? AND score = ? AND sentiment = ? AND deleted_at IS NULL`,
					m.m.Text, store.FormatTime(m.m.TS), m.m.Score, c.sentiment).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 1 || m.m.TS.Before(w[0]) || !m.m.TS.Before(w[1]) || texts[m.m.Text] {
					t.Errorf("%v %s: candidate %+v: standing matches %d, in window %v, text repeated %v", w, c.sentiment, m.m, n,
						!m.m.TS.Before(w[0]) && m.m.TS.Before(w[1]), texts[m.m.Text])
				}
				texts[m.m.Text] = true
				if i > 0 && (c.order == "ASC") != (walk[i-1].m.Score <= m.m.Score) {
					t.Errorf("%v %s: candidates out of order at %d", w, c.sentiment, i)
				}
			}
		}
	}
}
