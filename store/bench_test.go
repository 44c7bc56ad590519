package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// storeBenchRoomItems builds n chat items spread over rooms sources the
// way the daemon's 200-room load run delivers them: runs of 50 messages
// per room (one pushed frame), rooms interleaved, platform-shaped ids, a
// keyword match on one in eight, no raw payload and no hot terms (the
// load run's keep_raw: false and classifier.terms: false).
func storeBenchRoomItems(n, rooms, offset int) []item.Item {
	texts := []string{"主播好棒，已下单", "这个颜色好看吗", "666666", "什么时候发货？", "求链接求链接",
		"hello from Shanghai", "收到的是假货，要求退款！", "worst customer service ever"}
	items := make([]item.Item, n)
	const run = 50
	for i := range items {
		g := offset + i
		r := (g / run) % rooms
		j := (g/(run*rooms))*run + g%run // the room's own message number
		it := item.Item{Kind: item.KindChat, Text: texts[g%len(texts)], Author: "viewer",
			AuthorID: strconv.Itoa(100000 + g%50000), TS: storeT0.Add(time.Duration(j) * time.Millisecond),
			Score: item.Score{Scored: true, Label: item.Label(g%3 - 1), Value: 0.4, Prob: 0.7, Lang: "zh"}}
		switch r % 4 {
		case 0, 1:
			it.Source, it.Platform, it.Room = fmt.Sprintf("bili-%03d", r), "bilibili", strconv.Itoa(30_000_000+r)
			it.ID = fmt.Sprintf("ld%03dx%07d", r, j)
		case 2:
			it.Source, it.Platform, it.Room = fmt.Sprintf("dy-%03d", r), "douyin", fmt.Sprintf("6464542%05d", r)
			it.ID = strconv.FormatUint(7_400_000_000_000_000_000+uint64(r)*10_000_000+uint64(j), 10)
		default:
			it.Source, it.Platform, it.Room = fmt.Sprintf("tw-%03d", r/10), "twitch", fmt.Sprintf("loadchan_%03d", r)
			it.ID = fmt.Sprintf("%08x-load-%04x-%08x", r, j>>16, j)
		}
		if g%8 == 0 {
			it.Score.Groups = []item.Match{{Group: "crisis", Category: "crisis", Severity: "red", Terms: []string{"退款"}}}
		}
		items[i] = it
	}
	return items
}

// BenchmarkManyRoomsWrite is the store's share of the daemon's 200-room
// load run: batches of 4096 items from 200 rooms at once, so that every
// commit touches ~200 places in each items index.
func BenchmarkManyRoomsWrite(b *testing.B) {
	storeBenchManyRooms(b, storeOpenTest(b))
}

// BenchmarkManyRoomsWriteSearch is BenchmarkManyRoomsWrite with the
// full-text index on (store.search).
func BenchmarkManyRoomsWriteSearch(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "lookout.db"), WithSearch(true))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	storeBenchManyRooms(b, s)
}

func storeBenchManyRooms(b *testing.B, s *Store) {
	const batch = 4096
	storeBenchWrite(b, s, storeBenchRoomItems(b.N+batch, 200, 0), batch)
}

// storeBenchWrite writes items in batches of batch under the benchmark's
// timer and reports CPU per item and items per second; every item must be
// new.
func storeBenchWrite(b *testing.B, s *Store, items []item.Item, batch int) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := storeCPUTime()
	b.ResetTimer()
	written := 0
	for off := 0; off < b.N; off += batch {
		n, err := s.WriteItems(ctx, items[off:min(off+batch, b.N)])
		if err != nil {
			b.Fatal(err)
		}
		written += n
	}
	b.StopTimer()
	if written != b.N {
		b.Fatalf("wrote %d, want %d", written, b.N)
	}
	b.ReportMetric(float64((storeCPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/item")
	b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "items/s")
}

// storeCPUTime is the process's CPU time so far: on a shared machine
// items/s moves with the neighbours' load, CPU per item much less.
func storeCPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSearchBackfill is turning store.search on for a database of
// b.N items written without it: the one-time indexing at Open.
func BenchmarkSearchBackfill(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "lookout.db")
	s, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	all := storeBenchRoomItems(b.N, 200, 0)
	for off := 0; off < b.N; off += 4096 {
		if _, err := s.WriteItems(ctx, all[off:min(off+4096, b.N)]); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	b.ResetTimer()
	s, err = Open(ctx, path, WithSearch(true))
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkSearch is one `lookout search` (newest 50, no other filter)
// over 200k chat items from 200 rooms, for a word in one item of eight,
// a single character in one of four, and an English word.
func BenchmarkSearch(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "lookout.db")
	s, err := Open(ctx, path, WithSearch(true))
	if err != nil {
		b.Fatal(err)
	}
	const n = 200_000
	all := storeBenchRoomItems(n, 200, 0)
	for off := 0; off < n; off += 4096 {
		if _, err := s.WriteItems(ctx, all[off:min(off+4096, n)]); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	for _, q := range []SearchOptions{{Text: "退款"}, {Text: "好"}, {Text: "customer"}, {Text: "退款", Room: "30000004"}} {
		b.Run(q.Text+"/room="+q.Room, func(b *testing.B) {
			for b.Loop() {
				var c storeCollect
				if err := Search(ctx, path, q, &c); err != nil {
					b.Fatal(err)
				}
				if strings.Count(c.b.String(), "\n") < 2 {
					b.Fatal("nothing found")
				}
			}
		})
	}
}
