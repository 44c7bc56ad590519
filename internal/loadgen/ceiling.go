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
	rate, _, err := timeWrites(ctx, filepath.Join(dir, "ceiling.db"), func(write func([]item.Item) error) error {
		for off := 0; off < n; off += CeilingBatch {
			if err := write(items[off:min(n, off+CeilingBatch)]); err != nil {
				return err
			}
		}
		return nil
	})
	return rate, err
}

// CeilingOf times plain batched store.WriteItems calls of every item the
// run stored in the SQLite files srcs, as it stored them (classified, with
// keyword groups and terms), into a fresh file in dir, and returns the
// items per second it achieved: the store's ceiling for the very rows the
// daemon wrote. Ceiling's bare chat rows (no sentiment, groups or terms)
// are cheaper to store than these. The items are read back a batch at a
// time; only the writes are timed. n is how many items it wrote.
func CeilingOf(ctx context.Context, dir string, srcs []string) (rate float64, n int, err error) {
	rate, n, err = timeWrites(ctx, filepath.Join(dir, "ceiling-stored.db"), func(write func([]item.Item) error) error {
		batch := make([]item.Item, 0, CeilingBatch)
		for _, p := range srcs {
			src, err := store.OpenReadOnly(ctx, p)
			if err != nil {
				return err
			}
			err = src.ReplayItems(ctx, time.Time{}, time.Now().Add(time.Hour), func(it item.Item) error {
				if batch = append(batch, it); len(batch) < CeilingBatch {
					return nil
				}
				err := write(batch)
				batch = batch[:0]
				return err
			})
			src.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return write(batch)
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("loadgen: ceiling: the run stored no items")
	}
	return rate, n, err
}

// timeWrites opens a fresh store at path and runs feed, whose every call
// of write stores a batch with store.WriteItems; it returns the items per
// second of those calls alone and how many items they wrote.
func timeWrites(ctx context.Context, path string, feed func(write func([]item.Item) error) error) (float64, int, error) {
	defer os.Remove(path)
	s, err := store.Open(ctx, path)
	if err != nil {
		return 0, 0, fmt.Errorf("loadgen: ceiling: %w", err)
	}
	defer s.Close()
	var took time.Duration
	n := 0
	err = feed(func(batch []item.Item) error {
		start := time.Now()
		_, err := s.WriteItems(ctx, batch)
		took += time.Since(start)
		n += len(batch)
		return err
	})
	if err != nil {
		return 0, n, fmt.Errorf("loadgen: ceiling: %w", err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	return float64(n) / took.Seconds(), n, nil
}
