package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"lookout/item"
)

// recordSink is a LiveSink that watches the given rooms and keeps every
// batch it receives.
type recordSink struct {
	rooms   map[LiveRoom]bool
	tag     uint64
	batches []*LiveBatch
}

func (r *recordSink) Watched() (map[LiveRoom]bool, uint64) { return r.rooms, r.tag }
func (r *recordSink) Committed(b *LiveBatch)               { r.batches = append(r.batches, b) }

// TestLiveSinkGetsCommittedBatches: what the sink receives equals what
// SQL finds in the rows the batch committed: every room's counts, the
// newest items and viewers of watched rooms only; a batch with a duplicate
// (the exact path) reports the new rows only; a batch that fails reports
// nothing.
func TestLiveSinkGetsCommittedBatches(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "live.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sink := &recordSink{rooms: map[LiveRoom]bool{{"live", "1"}: true}, tag: 7}
	s.SetLiveSink(sink)
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var batch []item.Item
	for i := range 200 {
		room := "1"
		if i%4 == 3 {
			room = "2" // not watched
		}
		it := item.Item{Source: "live", Platform: "bilibili", Room: room, Kind: item.KindChat, ID: fmt.Sprintf("c%d", i),
			Author: "u", Text: fmt.Sprintf("line %d", i), TS: t0.Add(time.Duration(i) * 37 * time.Millisecond),
			Score: item.Score{Scored: true, Label: item.Label(i%3 - 1), Value: 0.5}}
		switch i % 10 {
		case 5:
			it.Kind, it.Count, it.Value, it.Score = item.KindGift, 3, 9.5, item.Score{}
		case 6:
			it.Kind, it.Count, it.Score = item.KindLike, 4, item.Score{}
		case 7:
			it.Score.Groups = []item.Match{{Group: "crisis", Terms: []string{"退款", "退款", "假货"}}}
		}
		batch = append(batch, it)
	}
	batch = append(batch,
		item.Item{Source: "live", Room: "1", Kind: item.KindMetric, Metric: item.MetricViewers, Value: 900, TS: t0.Add(time.Second), ID: "v1"},
		item.Item{Source: "live", Room: "1", Kind: item.KindMetric, Metric: item.MetricViewers, Value: 800, TS: t0, ID: "v0"})
	if _, err := s.WriteItems(ctx, batch); err != nil {
		t.Fatal(err)
	}
	// Again with one new item and the rest duplicates.
	batch2 := append([]item.Item{}, batch[:3]...)
	batch2 = append(batch2, item.Item{Source: "live", Room: "1", Kind: item.KindChat, ID: "new", Text: "new", TS: t0.Add(time.Minute)})
	if _, err := s.WriteItems(ctx, batch2); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.WriteItems(cctx, []item.Item{{Source: "live", Room: "1", Kind: item.KindChat, ID: "lost", TS: t0}}); err == nil {
		t.Fatal("a write under a cancelled context succeeded")
	}
	if len(sink.batches) != 2 {
		t.Fatalf("%d batches published, want 2 (the failed one publishes nothing)", len(sink.batches))
	}

	for bi, b := range sink.batches {
		if b.Tag != 7 {
			t.Errorf("batch %d tag %d, want 7", bi, b.Tag)
		}
		var n *LiveNews
		for _, r := range b.Rooms {
			if r.Room == "1" {
				n = r
			} else if r.Watched || len(r.Latest) > 0 || r.ViewersTS != "" {
				t.Errorf("batch %d: unwatched room %s reported as watched, with %d items", bi, r.Room, len(r.Latest))
			}
			// Per second, kind and sentiment, as SQL sums the rows.
			got := map[string][3]float64{}
			for _, sec := range r.Seconds {
				k := fmt.Sprint(sec.Unix, sec.Kind, sec.Sentiment)
				g := got[k]
				got[k] = [3]float64{g[0] + float64(sec.Items), g[1] + float64(sec.Units), g[2] + sec.Value}
			}
			rows, err := s.db.Query(`SELECT CAST(strftime('%s', ts) AS INTEGER), kind, coalesce(sentiment, ''), count(*), sum(max(coalesce(count, 1), 1)), coalesce(sum(value), 0)
				FROM items WHERE id BETWEEN ? AND ? AND source = ? AND room = ? GROUP BY 1, 2, 3`, b.FirstID, b.LastID, r.Source, r.Room)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][3]float64{}
			for rows.Next() {
				var unix int64
				var kind, sent string
				var v [3]float64
				if err := rows.Scan(&unix, &kind, &sent, &v[0], &v[1], &v[2]); err != nil {
					t.Fatal(err)
				}
				want[fmt.Sprint(unix, item.Kind(kind), sent)] = v
			}
			rows.Close()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("batch %d room %s per-second sums\n got %v\nwant %v", bi, r.Room, got, want)
			}
			var last string
			if err := s.db.QueryRow(`SELECT max(ts) FROM items WHERE id BETWEEN ? AND ? AND source = ? AND room = ?`, b.FirstID, b.LastID, r.Source, r.Room).Scan(&last); err != nil {
				t.Fatal(err)
			}
			if r.LastTS != last || r.Platform != "bilibili" && r.Room != "1" {
				t.Errorf("batch %d room %s: last %q platform %q, want %q", bi, r.Room, r.LastTS, r.Platform, last)
			}
		}
		if n == nil || !n.Watched {
			t.Fatalf("batch %d: room 1 missing or not watched: %+v", bi, b.Rooms)
		}
		// The newest feed items, oldest first, as SQL lists them.
		rows, err := s.db.Query(`SELECT id, coalesce(text, '') FROM (SELECT id, text FROM items WHERE id BETWEEN ? AND ? AND room = '1'
			AND kind IN ('chat','comment','post','superchat','gift') ORDER BY id DESC LIMIT ?) ORDER BY id`, b.FirstID, b.LastID, LiveLatest)
		if err != nil {
			t.Fatal(err)
		}
		var wantLatest, gotLatest []string
		for rows.Next() {
			var id int64
			var text string
			if err := rows.Scan(&id, &text); err != nil {
				t.Fatal(err)
			}
			wantLatest = append(wantLatest, fmt.Sprint(id, text))
		}
		rows.Close()
		for _, m := range n.Latest {
			gotLatest = append(gotLatest, fmt.Sprint(m.ID, m.Text))
		}
		if fmt.Sprint(gotLatest) != fmt.Sprint(wantLatest) {
			t.Errorf("batch %d latest\n got %v\nwant %v", bi, gotLatest, wantLatest)
		}
	}
	var first *LiveNews
	for _, r := range sink.batches[0].Rooms {
		if r.Room == "1" {
			first = r
		}
	}
	if first.Viewers != 900 || first.ViewersTS != FormatTime(t0.Add(time.Second)) {
		t.Errorf("viewers %v at %q, want the newest sample (900)", first.Viewers, first.ViewersTS)
	}
	var kw []string
	for _, m := range first.Latest {
		if m.Text == "line 197" {
			kw = m.Keywords
		}
	}
	if fmt.Sprint(kw) != "[退款 假货]" {
		t.Errorf("keywords of line 197: %v, want [退款 假货]", kw)
	}
	if b := sink.batches[1]; b.FirstID != b.LastID || len(b.Rooms) != 1 || len(b.Rooms[0].Latest) != 1 || b.Rooms[0].Latest[0].Text != "new" {
		t.Errorf("second batch %d..%d %+v, want the one new item", b.FirstID, b.LastID, b.Rooms[0].Latest)
	}

	// Nobody watching: the batch still comes, with its rows' ids and
	// counts.
	sink.rooms = map[LiveRoom]bool{}
	if _, err := s.WriteItems(ctx, []item.Item{{Source: "live", Room: "1", Kind: item.KindChat, ID: "x", TS: t0}}); err != nil {
		t.Fatal(err)
	}
	if b := sink.batches[len(sink.batches)-1]; len(b.Rooms) != 1 || b.Rooms[0].Watched || len(b.Rooms[0].Seconds) != 1 || b.LastID == 0 {
		t.Errorf("unwatched batch: %+v", b)
	}
	s.SetLiveSink(nil)
	if _, err := s.WriteItems(ctx, []item.Item{{Source: "live", Room: "1", Kind: item.KindChat, ID: "y", TS: t0}}); err != nil {
		t.Fatal(err)
	}
	if len(sink.batches) != 3 {
		t.Errorf("%d batches after the sink was removed, want 3", len(sink.batches))
	}
}
