package store

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"lookout/item"
)

// storeBenchItems builds n realistic scored chat items: short Chinese text,
// two hot terms, a keyword match on one in ten, a 160-byte raw payload.
func storeBenchItems(n, offset int) []item.Item {
	texts := []string{"主播好可爱", "这个多少钱", "假货吧 要退款", "物流太慢了", "哈哈哈哈哈", "客服不理人 投诉", "上链接!", "好看好看"}
	raw := []byte(`{"cmd":"DANMU_MSG","info":[[0,1,25,16777215,1732536000123,0,0,"0",0,0,0,"",0,"{}","{}"],"msg",[1234,"viewer",0,0,0,10000,1,""]]}`)
	items := make([]item.Item, n)
	for i := range items {
		id := offset + i
		it := item.Item{
			Source: "brand-live", Platform: "bilibili", Kind: item.KindChat, Room: "21452505",
			ID: strconv.Itoa(id), AuthorID: strconv.Itoa(id % 5000), Author: "viewer", Text: texts[id%len(texts)],
			TS:    storeT0.Add(time.Duration(id) * time.Millisecond),
			Raw:   raw,
			Score: item.Score{Scored: true, Label: item.Label(id%3 - 1), Value: 0.5, Prob: 0.8, Lang: "zh", Terms: []string{"主播", "退款"}},
		}
		if id%10 == 0 {
			it.Score.Groups = []item.Match{{Group: "crisis", Category: "crisis", Severity: "red", Terms: []string{"退款"}}}
		}
		items[i] = it
	}
	return items
}

func BenchmarkWriteItems(b *testing.B) {
	for _, batch := range []int{512, 4096} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := storeOpenTest(b)
			ctx := context.Background()
			items := storeBenchItems(batch, 0)
			b.ReportAllocs()
			b.ResetTimer()
			written := 0
			for round := 0; written < b.N; round++ {
				b.StopTimer()
				for i := range items { // fresh ids and later times, as in a live room
					id := round*batch + i
					items[i].ID = strconv.Itoa(id)
					items[i].TS = storeT0.Add(time.Duration(id) * time.Millisecond)
				}
				b.StartTimer()
				n, err := s.WriteItems(ctx, items)
				if err != nil {
					b.Fatal(err)
				}
				written += n
			}
			b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// BenchmarkWriter measures the whole stage: items sent on a channel, batched
// and written by Writer.Run with the daemon's default batch size.
func BenchmarkWriter(b *testing.B) {
	s := storeOpenTest(b)
	items := storeBenchItems(b.N, 0)
	w := NewWriter(s, 512, 500*time.Millisecond, nil, nil)
	in := make(chan item.Item, 1024)
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() { done <- w.Run(context.Background(), in) }()
	for i := range items {
		in <- items[i]
	}
	close(in)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
	var n int
	s.DB().QueryRow(`SELECT count(*) FROM items`).Scan(&n)
	if n != b.N {
		b.Fatalf("%d rows, want %d", n, b.N)
	}
}
