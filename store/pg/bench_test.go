package pg

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"lookout/item"
	"lookout/store"
)

// benchBatch is a batch of chat lines like a live room's: a fifth scored
// negative with hot terms, one in twenty matching a crisis keyword, rooms
// interleaved; ids unique across calls.
func benchBatch(seq *atomic.Int64, n, rooms int) []item.Item {
	texts := []string{"主播好棒，已下单", "什么时候发货？", "收到的是假货，要求退款！", "物流太慢了", "hello from Shanghai"}
	out := make([]item.Item, n)
	for i := range out {
		k := seq.Add(1)
		label, score, terms := item.Neutral, 0.1, []string(nil)
		if k%5 == 0 {
			label, score, terms = item.Negative, -0.8, []string{"假货", "退款"}
		}
		it := chat(fmt.Sprintf("b%d", k), time.Unix(1_790_000_000+k/100, 0), texts[k%5], label, score, terms...)
		it.Room = fmt.Sprint(100 + k%int64(rooms))
		it.Raw = nil
		if k%20 == 0 {
			it.Score.Groups = []item.Match{{Group: "refund", Category: "crisis", Severity: "red", Terms: []string{"退款"}}}
		}
		out[i] = it
	}
	return out
}

// BenchmarkWriteItems: batches of 512 chat lines from 50 rooms written by
// one writer, or by two at once (two processors), into PostgreSQL, and
// into SQLite for comparison. Reported as items/s.
func BenchmarkWriteItems(b *testing.B) {
	for _, bc := range []struct {
		name    string
		writers int
		sqlite  bool
	}{{"postgres/1writer", 1, false}, {"postgres/2writers", 2, false}, {"sqlite/1writer", 1, true}} {
		b.Run(bc.name, func(b *testing.B) {
			var w store.ItemStore
			if bc.sqlite {
				s, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				w = s
			} else {
				s, err := Open(context.Background(), pgtestNewDatabase(b))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				w = s
			}
			var seq atomic.Int64
			const batch = 512
			b.SetParallelism(1)
			start := time.Now()
			var items atomic.Int64
			done := make(chan error, bc.writers)
			per := (b.N + bc.writers - 1) / bc.writers
			for range bc.writers {
				go func() {
					for range per {
						its := benchBatch(&seq, batch, 50)
						if _, err := w.WriteItems(context.Background(), its); err != nil {
							done <- err
							return
						}
						items.Add(batch)
					}
					done <- nil
				}()
			}
			for range bc.writers {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(items.Load())/time.Since(start).Seconds(), "items/s")
		})
	}
}
