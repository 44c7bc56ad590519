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

// Ceiling writes n bare chat items, the ones a run of rooms rooms sends
// before they are classified (no sentiment, keyword groups or terms), with
// plain batched store.WriteItems calls (lookout's own schema, pragmas and
// batch size; no collectors, classifier or rules) into a fresh file in
// dir, and returns the items per second it achieved: the most the store
// can take of such rows. CeilingOf times the rows a run actually stored.
func Ceiling(ctx context.Context, dir string, rooms, n int) (float64, error) {
	if rooms <= 0 || n <= 0 {
		return 0, fmt.Errorf("loadgen: ceiling: rooms and items must be positive")
	}
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
	return ceilingWrite(ctx, filepath.Join(dir, "ceiling.db"), items)
}

// CeilingOf times plain batched store.WriteItems calls of every item the
// run stored in the SQLite files srcs, as it stored them (classified, with
// keyword groups and terms), into a fresh file in dir, and returns the
// items per second it achieved: the store's ceiling for the very rows the
// daemon wrote. Ceiling's bare chat rows (no sentiment, groups or terms)
// are cheaper to store than these. The items are read back a batch at a
// time; only the writes are timed. n is how many items it wrote.
func CeilingOf(ctx context.Context, dir string, srcs []string) (rate float64, n int, err error) {
	path := filepath.Join(dir, "ceiling-stored.db")
	defer os.Remove(path)
	dst, err := store.Open(ctx, path)
	if err != nil {
		return 0, 0, fmt.Errorf("loadgen: ceiling: %w", err)
	}
	defer dst.Close()
	var took time.Duration
	batch := make([]item.Item, 0, CeilingBatch)
	flush := func() error {
		start := time.Now()
		_, err := dst.WriteItems(ctx, batch)
		took += time.Since(start)
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for _, p := range srcs {
		src, err := store.OpenReadOnly(ctx, p)
		if err != nil {
			return 0, 0, fmt.Errorf("loadgen: ceiling: %w", err)
		}
		err = src.ReplayItems(ctx, time.Time{}, time.Now().Add(time.Hour), func(it item.Item) error {
			if batch = append(batch, it); len(batch) == CeilingBatch {
				return flush()
			}
			return nil
		})
		src.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("loadgen: ceiling: read %s: %w", p, err)
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return 0, 0, fmt.Errorf("loadgen: ceiling: %w", err)
		}
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("loadgen: ceiling: the run stored no items")
	}
	return float64(n) / took.Seconds(), n, nil
}

// ceilingWrite times writing items into a fresh store at path in batches
// of CeilingBatch.
func ceilingWrite(ctx context.Context, path string, items []item.Item) (float64, error) {
	defer os.Remove(path)
	s, err := store.Open(ctx, path)
	if err != nil {
		return 0, fmt.Errorf("loadgen: ceiling: %w", err)
	}
	defer s.Close()
	start := time.Now()
	for off := 0; off < len(items); off += CeilingBatch {
		if _, err := s.WriteItems(ctx, items[off:min(len(items), off+CeilingBatch)]); err != nil {
			return 0, fmt.Errorf("loadgen: ceiling: %w", err)
		}
	}
	return float64(len(items)) / time.Since(start).Seconds(), nil
}
