package pg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lookout/item"
	"lookout/store"
)

// TestWriterOnPostgres runs store.Writer, the daemon's batch writer, on
// the PostgreSQL store: every item is settled after its commit, copies
// are counted as duplicates, and an item the server refuses (an item id
// too big for the (source, item_id) index) is refused alone, counted and
// settled, while the rest of its batch is stored.
func TestWriterOnPostgres(t *testing.T) {
	s := openTest(t)
	reg := prometheus.NewRegistry()
	w := store.NewWriter(s, 50, 20*time.Millisecond, nil, reg)
	var mu sync.Mutex
	settled := map[string]int{}
	w.Settled = func(b []item.Item) {
		mu.Lock()
		defer mu.Unlock()
		for _, it := range b {
			settled[it.ID]++
		}
	}
	huge := make([]byte, 8000)
	rand.Read(huge)
	in := make(chan item.Item, 16)
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background(), in) }()
	for i := range 200 {
		in <- chat(fmt.Sprintf("m%03d", i), t0.Add(time.Duration(i)*time.Second), "弹幕", item.Neutral, 0)
		if i == 120 {
			in <- chat(hex.EncodeToString(huge), t0, "坏", item.Neutral, 0)
		}
		if i%50 == 7 {
			in <- chat("m000", t0, "again", item.Neutral, 0) // a copy
		}
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM items`); n != 200 {
		t.Errorf("stored %d items, want 200", n)
	}
	if n := count(t, s, `SELECT count(DISTINCT item_id) FROM items`); n != 200 {
		t.Errorf("stored %d distinct ids, want 200", n)
	}
	mu.Lock()
	if len(settled) != 201 {
		t.Errorf("settled %d distinct items, want 201 (200 and the refused one)", len(settled))
	}
	mu.Unlock()
	for name, want := range map[string]float64{"lookout_store_rejected_total": 1, "lookout_store_duplicates_total": 4,
		"lookout_store_items_written_total": 200} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var v float64
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return v
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
