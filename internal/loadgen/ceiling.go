package loadgen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"lookout/item"
	"lookout/store"
)

// CeilingBatch is the store batch size the loadgen daemon runs with; the
// ceiling writes with the same size.
const CeilingBatch = 32768

// Ceiling writes n chat items, the ones a run of rooms rooms sends, with
// plain batched store.WriteItems calls (lookout's own schema, pragmas and
// batch size; no collectors, classifier or rules) into a fresh file in
// dir, and returns the items per second it achieved: the most the store
// can take, against which a run's rate is judged.
func Ceiling(ctx context.Context, dir string, rooms, n int) (float64, error) {
	if rooms <= 0 || n <= 0 {
		return 0, fmt.Errorf("loadgen: ceiling: rooms and items must be positive")
	}
	path := filepath.Join(dir, "ceiling.db")
	defer os.Remove(path)
	s, err := store.Open(ctx, path)
	if err != nil {
		return 0, fmt.Errorf("loadgen: ceiling: %w", err)
	}
	defer s.Close()
	base := time.Now()
	items := make([]item.Item, n)
	for i := range items {
		ri, j := i%rooms, i/rooms
		items[i] = item.Item{
			Source: fmt.Sprintf("bili-%03d", ri), Platform: "bilibili", Kind: item.KindChat,
			Room: strconv.Itoa(30_000_000 + ri), ID: "lg" + strconv.Itoa(ri) + "x" + strconv.Itoa(j),
			AuthorID: strconv.Itoa(100000 + j%5000), Author: "viewer", Text: chat[(ri+j)%len(chat)],
			TS: base.Add(time.Duration(i) * time.Microsecond),
		}
	}
	start := time.Now()
	for off := 0; off < n; off += CeilingBatch {
		if _, err := s.WriteItems(ctx, items[off:min(n, off+CeilingBatch)]); err != nil {
			return 0, fmt.Errorf("loadgen: ceiling: %w", err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
