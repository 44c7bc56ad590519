package report_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"lookout/item"
	"lookout/report"
	"lookout/store"
)

// BenchmarkReport24h times `lookout report` (build and HTML, all rooms)
// over 24 hours of one busy room: LOOKOUT_BENCH_REPORT_ITEMS chat lines
// (default 300,000) spread over the day with hot terms, a viewers sample
// every 5 s and a gift every 100 lines, all labelled with the room's brand
// as the daemon labels them, beside a competitor's room with one line for
// every 100 (so the report compares two brands). Generating the database
// is not timed.
func BenchmarkReport24h(b *testing.B) {
	n := 300_000
	if v := os.Getenv("LOOKOUT_BENCH_REPORT_ITEMS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "busy.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	st.SetKeepRaw(false)
	end := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	start := end.Add(-24 * time.Hour)
	texts := []struct {
		text  string
		label item.Label
		terms []string
	}{
		{"主播好美，面霜好用", item.Positive, []string{"主播", "面霜"}},
		{"几点开始抽奖", item.Neutral, []string{"抽奖"}},
		{"假货！我要退款", item.Negative, []string{"假货", "退款"}},
		{"物流太慢了", item.Negative, []string{"物流"}},
		{"已下单，期待收货", item.Positive, []string{"下单", "收货"}},
	}
	batch := make([]item.Item, 0, 2048)
	flush := func() {
		if _, err := st.WriteItems(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	step := 24 * time.Hour / time.Duration(n)
	lastViewers := start.Add(-time.Hour)
	own := map[string]string{"brand": "acme", "brand_role": "own"}
	rival := map[string]string{"brand": "rival", "brand_role": "competitor"}
	for i := range n {
		ts := start.Add(time.Duration(i) * step)
		x := texts[i%len(texts)]
		batch = append(batch, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindChat, ID: "c" + strconv.Itoa(i),
			Author: "u" + strconv.Itoa(i%5000), Text: x.text, TS: ts, Labels: own,
			Score: item.Score{Scored: true, Label: x.label, Value: float64(x.label) * 0.7, Prob: 0.8, Lang: "zh", Terms: x.terms}})
		if i%100 == 0 {
			batch = append(batch, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindGift, ID: "g" + strconv.Itoa(i),
				Metric: item.MetricGiftValue, Value: 1, Count: 1, TS: ts, Labels: own},
				item.Item{Source: "rival", Platform: "douyin", Room: "200", Kind: item.KindChat, ID: "r" + strconv.Itoa(i),
					Author: "u" + strconv.Itoa(i%500), Text: x.text, TS: ts, Labels: rival,
					Score: item.Score{Scored: true, Label: x.label, Value: float64(x.label) * 0.7, Prob: 0.8, Lang: "zh", Terms: x.terms}})
		}
		if ts.Sub(lastViewers) >= 5*time.Second {
			lastViewers = ts
			batch = append(batch, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindMetric, ID: "v" + strconv.Itoa(i),
				Metric: item.MetricViewers, Value: float64(5000 + i%3000), TS: ts, Labels: own})
		}
		if len(batch) >= 2000 {
			flush()
		}
	}
	flush()
	st.Close()
	b.ResetTimer()
	for b.Loop() {
		r, err := report.Build(ctx, path, report.Options{From: start, To: end, Now: end})
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Rooms) != 2 || r.Rooms[0].Messages != n || len(r.Brands) != 2 || r.Brands[0].Items != r.Rooms[0].Items {
			b.Fatalf("report counted %d rooms, %d brands", len(r.Rooms), len(r.Brands))
		}
		if err := report.RenderHTML(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "items")
}
