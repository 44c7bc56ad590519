package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"lookout/config"
	"lookout/item"
	"lookout/store"
)

// BenchmarkStreamReview times what the daemon does when a stream ends:
// find its start, build the room's review (report.FromDB over the stream),
// render the Markdown and queue it with its reports row. The stream has
// LOOKOUT_BENCH_REVIEW_ITEMS chat lines (default 100,000) over two hours,
// beside 50 other rooms' viewer samples every 10 s for 24 hours (the rows
// a scan for stream ends must not wade through). Building the database is
// not timed; each op deletes the review it queued, untimed.
func BenchmarkStreamReview(b *testing.B) {
	n := 100_000
	if v := os.Getenv("LOOKOUT_BENCH_REVIEW_ITEMS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	dbPath := filepath.Join(b.TempDir(), "review.db")
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		b.Fatal(err)
	}
	st.SetKeepRaw(false)
	end := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	start := end.Add(-2 * time.Hour)
	batch := make([]item.Item, 0, 4096)
	flush := func() {
		if _, err := st.WriteItems(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	add := func(it item.Item) {
		batch = append(batch, it)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	for room := range 50 {
		r := strconv.Itoa(1000 + room)
		for ts := end.Add(-24 * time.Hour); ts.Before(end); ts = ts.Add(10 * time.Second) {
			add(item.Item{Source: "other" + r, Platform: "douyin", Room: r, Kind: item.KindMetric, ID: "v" + strconv.FormatInt(ts.Unix(), 10),
				Metric: item.MetricViewers, Value: 100, TS: ts})
		}
	}
	texts := []struct {
		text  string
		label item.Label
		terms []string
	}{
		{"主播好美，面霜好用", item.Positive, []string{"主播", "面霜"}},
		{"假货！我要退款", item.Negative, []string{"假货", "退款"}},
		{"几点开始抽奖", item.Neutral, []string{"抽奖"}},
	}
	add(item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindMetric, ID: "live:1", Metric: item.MetricLiveStatus, Value: 1, TS: start})
	step := 2 * time.Hour / time.Duration(n)
	for i := range n {
		x := texts[i%len(texts)]
		add(item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindChat, ID: "c" + strconv.Itoa(i),
			Author: "u" + strconv.Itoa(i%3000), Text: x.text, TS: start.Add(time.Duration(i) * step),
			Score: item.Score{Scored: true, Label: x.label, Value: float64(x.label) * 0.7, Prob: 0.8, Lang: "zh", Terms: x.terms}})
	}
	add(item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindMetric, ID: "live:0", Metric: item.MetricLiveStatus, Value: 0, TS: end})
	flush()
	st.Close()

	cfg, err := config.Parse(fmt.Appendf(nil, `store: { path: %q }
http: { listen: "off" }
route: { receiver: console }
receivers:
  - name: console
    console: {}
`, dbPath), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	d, err := New(ctx, Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	defer d.store.Close()
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			ends, err := d.store.StreamEnds(ctx, time.Now().Add(-reviewLookback))
			if err != nil || len(ends) != 1 {
				b.Fatalf("%d ends, %v", len(ends), err)
			}
		}
	})
	b.Run(fmt.Sprintf("review-%d", n), func(b *testing.B) {
		for b.Loop() {
			if err := d.review(ctx, store.StreamEnd{Source: "live", Platform: "bilibili", Room: "100", TS: end}, time.Now()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if n := countReports(b, d); n != 1 {
				b.Fatalf("%d reports queued, want 1", n)
			}
			if _, err := d.store.DB().Exec(`DELETE FROM outbox; DELETE FROM reports`); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

func countReports(b *testing.B, d *Daemon) int {
	var n int
	if err := d.store.DB().QueryRow(`SELECT count(*) FROM reports`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
