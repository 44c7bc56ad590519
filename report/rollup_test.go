package report_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"lookout/item"
	"lookout/report"
	"lookout/store"
)

// rollupRoom writes six hours of a generated room through the store's
// writer, in batches, with gifts, likes, super chats, a week of history,
// then edits (sentiment and terms change) and deletes of items spread over
// the day, some in the batch of their original.
func rollupRoom(t *testing.T) (string, time.Time) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rollup.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	labels := []item.Label{item.Positive, item.Neutral, item.Negative, item.Negative, item.Positive, item.Neutral, item.Negative}
	terms := [][]string{{"面霜"}, nil, {"假货", "退款"}, {"物流"}, {"主播", "面霜"}, {"抽奖"}, {"退款"}}
	chat := func(i int, ts time.Time) item.Item {
		k := i % len(labels)
		return item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindChat, ID: fmt.Sprintf("c%d", i),
			Author: fmt.Sprintf("u%d", i%37), Text: fmt.Sprintf("message %d", i%101), TS: ts,
			Score: item.Score{Scored: true, Label: labels[k], Value: float64(labels[k]) * (0.5 + float64(i%7)/20), Prob: 0.9, Lang: "zh", Terms: terms[k]}}
	}
	var batch []item.Item
	flush := func() {
		if _, err := st.WriteItems(ctx, batch); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	// History: 7 days back, every 20 minutes.
	for i := range 7 * 72 {
		batch = append(batch, chat(1_000_000+i, t0.Add(-7*24*time.Hour+time.Duration(i)*20*time.Minute)))
	}
	flush()
	var all []item.Item
	for i := range 6 * 3600 / 3 {
		ts := t0.Add(time.Duration(i)*3*time.Second + time.Duration(i%1000)*time.Millisecond)
		c := chat(i, ts)
		all = append(all, c)
		batch = append(batch, c)
		switch {
		case i%50 == 0:
			batch = append(batch, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindGift, ID: fmt.Sprintf("g%d", i),
				Author: "大哥", Metric: item.MetricGiftValue, Value: float64(1 + i%9), Count: int64(i % 4), TS: ts})
		case i%70 == 0:
			batch = append(batch, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindLike, ID: fmt.Sprintf("l%d", i), Count: int64(10 + i%5), TS: ts})
		case i%333 == 0:
			batch = append(batch, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindSuperChat, ID: fmt.Sprintf("s%d", i),
				Text: "加油", Metric: item.MetricGiftValue, Value: 30, TS: ts,
				Score: item.Score{Scored: true, Label: item.Positive, Value: 0.9, Prob: 0.9, Lang: "zh", Terms: []string{"加油"}}})
		}
		if i%40 == 0 {
			batch = append(batch, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindMetric, ID: fmt.Sprintf("v%d", i),
				Metric: item.MetricViewers, Value: float64(3000 + i%800), TS: ts})
		}
		// Edits and deletes, some of the batch's own items.
		if i%97 == 0 && i > 0 {
			e := all[i-i%5]
			e.Score.Label, e.Score.Terms, e.Score.Value = item.Negative, []string{"过敏", "退款"}, -0.95
			e.Change, e.ChangedAt = item.ChangeEdit, ts
			batch = append(batch, e)
		}
		if i%89 == 0 && i > 0 {
			d := all[i-i%3]
			batch = append(batch, item.Item{Source: d.Source, ID: d.ID, Kind: d.Kind, Change: item.ChangeDelete, ChangedAt: ts})
		}
		if len(batch) >= 500 {
			flush()
		}
	}
	flush()
	return path, t0
}

// TestRollupReportMatchesItems: the report's numbers, read from the
// rollups (and items at the window's partial minutes), equal a plain SQL
// over the standing items of the same file, for windows on and off minute
// bounds, long (per-minute buckets) and short (per-second buckets).
func TestRollupReportMatchesItems(t *testing.T) {
	path, t0 := rollupRoom(t)
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name     string
		from, to time.Time
	}{
		{"whole day", t0.Add(-2 * time.Hour), t0.Add(22 * time.Hour)},
		{"six hours on minute bounds", t0, t0.Add(6 * time.Hour)},
		{"off minute bounds", t0.Add(17*time.Minute + 12345*time.Millisecond), t0.Add(4*time.Hour + 3*time.Minute + 59*time.Second)},
		{"within one minute", t0.Add(61*time.Minute + 5*time.Second), t0.Add(61*time.Minute + 50*time.Second)},
		{"short window, per-second buckets", t0.Add(90*time.Minute + 7*time.Second), t0.Add(105 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := report.Build(context.Background(), path, report.Options{Room: "100", From: tc.from, To: tc.to, Now: tc.to})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Rooms) != 1 {
				t.Fatalf("rooms = %d, want 1", len(r.Rooms))
			}
			rm := r.Rooms[0]
			from, to := store.FormatTime(tc.from), store.FormatTime(tc.to)
			const standing = ` FROM items WHERE source = 'live' AND room = '100' AND ts >= ? AND ts < ? AND deleted_at IS NULL`
			one := func(expr string) float64 {
				t.Helper()
				var v float64
				if err := db.QueryRow(`SELECT coalesce(`+expr+`, 0)`+standing, from, to).Scan(&v); err != nil {
					t.Fatal(err)
				}
				return v
			}
			for _, c := range []struct {
				what      string
				got, want float64
			}{
				{"items", float64(rm.Items), one("count(*)")},
				{"messages", float64(rm.Messages), one("sum(kind IN ('chat','comment','post','superchat'))")},
				{"scored", float64(rm.Sentiment.Scored), one("sum(sentiment IS NOT NULL)")},
				{"positive", float64(rm.Sentiment.Positive), one("sum(sentiment = 'positive')")},
				{"negative", float64(rm.Sentiment.Negative), one("sum(sentiment = 'negative')")},
				{"gifts", float64(rm.Gifts.Gifts), one("sum(CASE WHEN kind = 'gift' THEN max(coalesce(count, 1), 1) END)")},
				{"gift value", rm.Gifts.GiftValue, one("sum(CASE WHEN kind = 'gift' THEN value END)")},
				{"super chats", float64(rm.Gifts.SuperChats), one("sum(kind = 'superchat')")},
				{"super chat value", rm.Gifts.SuperChatValue, one("sum(CASE WHEN kind = 'superchat' THEN value END)")},
				{"interactions", float64(rm.Interactions), one("sum(kind IN ('chat','comment','post','superchat')) + " +
					"coalesce(sum(CASE WHEN kind IN ('like', 'gift') THEN max(coalesce(count, 1), 1) END), 0)")},
			} {
				if math.Abs(c.got-c.want) > 1e-6 {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
			if rm.Sentiment.Scored == 0 {
				t.Fatal("nothing scored in the window: the case tests nothing")
			}
			// The timeline, bucket by bucket.
			bucket := int64(r.Bucket.D() / time.Second)
			rows, err := db.Query(`SELECT CAST(strftime('%s', ts) AS INTEGER) / ? * ? AS b,
				sum(kind IN ('chat','comment','post','superchat')), sum(sentiment IS NOT NULL), sum(sentiment = 'negative')`+standing+`
				GROUP BY b ORDER BY b`, bucket, bucket, from, to)
			if err != nil {
				t.Fatal(err)
			}
			var want []report.Bucket
			for rows.Next() {
				var b int64
				var k report.Bucket
				if err := rows.Scan(&b, &k.Messages, &k.Scored, &k.Negative); err != nil {
					t.Fatal(err)
				}
				k.T = time.Unix(b, 0).UTC()
				want = append(want, k)
			}
			rows.Close()
			if len(want) != len(rm.Timeline) {
				t.Fatalf("timeline has %d buckets, SQL %d", len(rm.Timeline), len(want))
			}
			for i, w := range want {
				g := rm.Timeline[i]
				if !g.T.Equal(w.T) || g.Messages != w.Messages || g.Scored != w.Scored || g.Negative != w.Negative {
					t.Errorf("bucket %d = %v %d/%d/%d, SQL %v %d/%d/%d", i, g.T, g.Messages, g.Scored, g.Negative, w.T, w.Messages, w.Scored, w.Negative)
				}
			}
			// Hot terms: the top 15 by mentions, with their negative mentions.
			rows, err = db.Query(`SELECT j.value, count(*) AS n, sum(i.sentiment = 'negative') FROM items i, json_each(i.terms) j
				WHERE i.source = 'live' AND i.room = '100' AND i.ts >= ? AND i.ts < ? AND i.deleted_at IS NULL AND i.terms IS NOT NULL
				GROUP BY j.value ORDER BY n DESC, j.value LIMIT 15`, from, to)
			if err != nil {
				t.Fatal(err)
			}
			var terms []report.Term
			for rows.Next() {
				var x report.Term
				if err := rows.Scan(&x.Term, &x.Mentions, &x.Negative); err != nil {
					t.Fatal(err)
				}
				terms = append(terms, x)
			}
			rows.Close()
			if fmt.Sprint(terms) != fmt.Sprint(rm.HotTerms) {
				t.Errorf("hot terms = %v\nSQL gives   %v", rm.HotTerms, terms)
			}
			// Complaint themes: mentions among negative items.
			for _, th := range rm.Complaints {
				var n int
				if err := db.QueryRow(`SELECT count(*) FROM items i, json_each(i.terms) j
					WHERE i.source = 'live' AND i.room = '100' AND i.ts >= ? AND i.ts < ? AND i.deleted_at IS NULL
					AND i.sentiment = 'negative' AND j.value = ?`, from, to, th.Term).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if th.Term != "" && n != th.Mentions {
					t.Errorf("complaint %q mentions = %d, SQL %d", th.Term, th.Mentions, n)
				}
			}
			// The normal: negative share of the week before.
			var scored, neg float64
			if err := db.QueryRow(`SELECT count(*), coalesce(sum(sentiment = 'negative'), 0) FROM items
				WHERE source = 'live' AND room = '100' AND ts >= ? AND ts < ? AND deleted_at IS NULL AND sentiment IS NOT NULL`,
				store.FormatTime(tc.from.Add(-report.NormalDays*24*time.Hour)), from).Scan(&scored, &neg); err != nil {
				t.Fatal(err)
			}
			if scored >= 30 && math.Abs(rm.Sentiment.Normal-neg/scored) > 1e-9 {
				t.Errorf("normal = %v, SQL %v", rm.Sentiment.Normal, neg/scored)
			}
			// Deleted items are never quoted.
			for _, th := range append(append([]report.Theme{}, rm.Complaints...), rm.Praise...) {
				for _, m := range th.Examples {
					var n int
					if err := db.QueryRow(`SELECT count(*) FROM items WHERE source = 'live' AND room = '100' AND text = ? AND deleted_at IS NULL`, m.Text).Scan(&n); err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						t.Errorf("example %q is only in deleted items", m.Text)
					}
				}
			}
		})
	}
	var deleted, edited int
	if err := db.QueryRow(`SELECT count(*), (SELECT count(*) FROM items WHERE edited_at IS NOT NULL) FROM items WHERE deleted_at IS NOT NULL`).Scan(&deleted, &edited); err != nil {
		t.Fatal(err)
	}
	if deleted == 0 || edited == 0 {
		t.Fatalf("generated room has %d deleted and %d edited items: the test covers neither", deleted, edited)
	}
}

// brandsFromItems is the brand comparison computed over the window's
// standing items: the oracle the rollup-based comparison must equal.
func brandsFromItems(t *testing.T, db *sql.DB, from, to string) []report.Brand {
	t.Helper()
	rows, err := db.Query(`SELECT json_extract(labels, '$.brand') AS b, count(*),
		coalesce(sum(sentiment IS NOT NULL), 0), coalesce(sum(sentiment = 'positive'), 0), coalesce(sum(sentiment = 'negative'), 0),
		coalesce(max(json_extract(labels, '$.brand_role')), '')
		FROM items WHERE ts >= ? AND ts < ? AND labels IS NOT NULL AND deleted_at IS NULL AND b IS NOT NULL AND b != ''
		GROUP BY b ORDER BY count(*) DESC, b`, from, to)
	if err != nil {
		t.Fatal(err)
	}
	var out []report.Brand
	total := 0
	for rows.Next() {
		var b report.Brand
		if err := rows.Scan(&b.Name, &b.Items, &b.Scored, &b.Positive, &b.Negative, &b.Role); err != nil {
			t.Fatal(err)
		}
		total += b.Items
		out = append(out, b)
	}
	rows.Close()
	if len(out) < 2 {
		return nil
	}
	idx := map[string]int{}
	var own, others []report.Brand
	for _, b := range out {
		if b.Role == "own" {
			own = append(own, b)
		} else {
			others = append(others, b)
		}
	}
	out = append(own, others...)
	for i := range out {
		b := &out[i]
		idx[b.Name] = i
		b.ShareOfVoice = float64(b.Items) / float64(total)
		if b.Scored > 0 {
			b.NegativeShare = float64(b.Negative) / float64(b.Scored)
			b.PositiveShare = float64(b.Positive) / float64(b.Scored)
		}
	}
	rows, err = db.Query(`SELECT json_extract(i.labels, '$.brand') AS b, j.value, count(*) AS n, coalesce(sum(i.sentiment = 'negative'), 0)
		FROM items i, json_each(i.terms) j
		WHERE i.ts >= ? AND i.ts < ? AND i.labels IS NOT NULL AND i.terms IS NOT NULL AND i.deleted_at IS NULL AND b IS NOT NULL
		GROUP BY b, j.value ORDER BY b, n DESC, j.value`, from, to)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var tm report.Term
		if err := rows.Scan(&name, &tm.Term, &tm.Mentions, &tm.Negative); err != nil {
			t.Fatal(err)
		}
		if i, ok := idx[name]; ok && len(out[i].HotTerms) < 5 {
			out[i].HotTerms = append(out[i].HotTerms, tm)
		}
	}
	return out
}

// TestRollupBrandsMatchItems: the all-rooms report's brand comparison, read
// from the rooms' rollups, equals the same comparison over the standing
// items, for windows on and off minute bounds: five rooms of three brands
// (one own) on two sources, an unbranded room, gifts and likes, edits that
// change sentiment and terms, deletes.
func TestRollupBrandsMatchItems(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "brands.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rooms := []struct{ source, room, brand, role string }{
		{"live", "1", "acme", "own"}, {"live", "2", "rival", "competitor"}, {"live", "3", "acme", "own"},
		{"social", "feed", "other", "competitor"}, {"social", "misc", "", ""},
	}
	labels := []item.Label{item.Positive, item.Neutral, item.Negative, item.Negative, item.Positive}
	terms := [][]string{{"面霜"}, nil, {"假货", "退款"}, {"物流"}, {"主播", "面霜", "面霜"}}
	var batch, all []item.Item
	flush := func() {
		if _, err := st.WriteItems(ctx, batch); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range 2 * 3600 / 2 {
		ts := t0.Add(time.Duration(i)*2*time.Second + time.Duration(i%700)*time.Millisecond)
		for ri, r := range rooms {
			if (i+ri)%(ri+1) != 0 {
				continue // rooms of different volumes
			}
			var lab map[string]string
			if r.brand != "" {
				lab = map[string]string{"brand": r.brand, "brand_role": r.role}
			}
			k := (i + ri) % len(labels)
			it := item.Item{Source: r.source, Platform: "bilibili", Room: r.room, Kind: item.KindChat, ID: fmt.Sprintf("%s-%s-%d", r.source, r.room, i),
				Text: "x", TS: ts, Labels: lab, Score: item.Score{Scored: true, Label: labels[k], Value: float64(labels[k]) / 2, Terms: terms[k]}}
			switch {
			case i%17 == 0:
				it.Kind, it.Score, it.Count, it.Value = item.KindGift, item.Score{}, 3, 5
			case i%23 == 0:
				it.Kind, it.Score, it.Count = item.KindLike, item.Score{}, 9
			}
			all = append(all, it)
			batch = append(batch, it)
			if i%31 == 0 && len(all) > 10 {
				e := all[len(all)-7]
				e.Score = item.Score{Scored: true, Label: item.Negative, Value: -0.9, Terms: []string{"过敏"}}
				e.Change, e.ChangedAt = item.ChangeEdit, ts
				batch = append(batch, e)
			}
			if i%41 == 0 && len(all) > 10 {
				d := all[len(all)-4]
				batch = append(batch, item.Item{Source: d.Source, ID: d.ID, Kind: d.Kind, Change: item.ChangeDelete, ChangedAt: ts})
			}
		}
		if len(batch) >= 400 {
			flush()
		}
	}
	flush()
	st.Close()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name     string
		from, to time.Time
	}{
		{"whole day", t0.Add(-2 * time.Hour), t0.Add(22 * time.Hour)},
		{"on minute bounds", t0.Add(10 * time.Minute), t0.Add(70 * time.Minute)},
		{"off minute bounds", t0.Add(17*time.Minute + 12345*time.Millisecond), t0.Add(93*time.Minute + 59*time.Second)},
		{"within one minute", t0.Add(61*time.Minute + 5*time.Second), t0.Add(61*time.Minute + 50*time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := report.Build(ctx, path, report.Options{From: tc.from, To: tc.to, Now: tc.to})
			if err != nil {
				t.Fatal(err)
			}
			want := brandsFromItems(t, db, store.FormatTime(tc.from), store.FormatTime(tc.to))
			if len(want) != 3 {
				t.Fatalf("the oracle finds %d brands, want 3", len(want))
			}
			if got, want := fmt.Sprintf("%+v", r.Brands), fmt.Sprintf("%+v", want); got != want {
				t.Errorf("brands from rollups\n got %s\nwant %s", got, want)
			}
		})
	}
}
