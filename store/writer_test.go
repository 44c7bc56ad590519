package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lookout/item"

	"lookout/internal/testutil"
)

// storeSyncBuffer is a log sink safe to read while the writer logs.
type storeSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *storeSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *storeSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// storeWriterRig runs a Writer in the background.
type storeWriterRig struct {
	s    *Store
	w    *Writer
	reg  *prometheus.Registry
	logs *storeSyncBuffer
	in   chan item.Item
	done chan error
}

func storeStartWriter(t *testing.T, s *Store, batch int, every time.Duration, tune func(*Writer)) *storeWriterRig {
	t.Helper()
	r := &storeWriterRig{s: s, reg: prometheus.NewRegistry(), logs: &storeSyncBuffer{},
		in: make(chan item.Item, 16), done: make(chan error, 1)}
	r.w = NewWriter(s, batch, every, slog.New(slog.NewTextHandler(r.logs, nil)), r.reg)
	r.w.RetryMin, r.w.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	if tune != nil {
		tune(r.w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { r.done <- r.w.Run(ctx, r.in) }()
	return r
}

func (r *storeWriterRig) send(items ...item.Item) {
	for _, it := range items {
		r.in <- it
	}
}

func (r *storeWriterRig) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

func storeItemsN(from, to int) []item.Item {
	var out []item.Item
	for i := from; i < to; i++ {
		out = append(out, storeChat(fmt.Sprint(i), storeT0.Add(time.Duration(i)*time.Millisecond), "msg", item.Neutral, 0))
	}
	return out
}

// storeBigItemsN are items too large to fit in a database page's free
// space, so that a capped database refuses even the first of them.
func storeBigItemsN(from, to int) []item.Item {
	out := storeItemsN(from, to)
	for i := range out {
		out[i].Text = strings.Repeat("退款", 1000)
	}
	return out
}

// storeEventually waits up to 10 s for cond.
func storeEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, what, 10*time.Second, cond)
}

func storeRows(t *testing.T, s *Store) int { return storeCount(t, s, `SELECT count(*) FROM items`) }

func TestWriterFlushes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch int
		every time.Duration
		send  int
		// wantBeforeClose: rows that must appear while the input is still
		// open; then the test checks no more appear for a while.
		wantBeforeClose int
	}{
		{"on size", 10, time.Hour, 25, 20},
		{"on interval", 1000, 20 * time.Millisecond, 7, 7},
		{"on close", 1000, time.Hour, 7, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storeOpenTest(t)
			r := storeStartWriter(t, s, tc.batch, tc.every, nil)
			r.send(storeItemsN(0, tc.send)...)
			if tc.wantBeforeClose > 0 {
				storeEventually(t, fmt.Sprintf("%d rows", tc.wantBeforeClose), func() bool { return storeRows(t, s) >= tc.wantBeforeClose })
			}
			time.Sleep(50 * time.Millisecond)
			if n := storeRows(t, s); n != tc.wantBeforeClose {
				t.Fatalf("%d rows before close, want exactly %d", n, tc.wantBeforeClose)
			}
			close(r.in)
			select {
			case err := <-r.done:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after its input closed")
			}
			if n := storeRows(t, s); n != tc.send {
				t.Fatalf("%d rows after close, want %d (graceful shutdown flushes everything)", n, tc.send)
			}
			if got := r.metric(t, "lookout_store_items_written_total"); got != float64(tc.send) {
				t.Errorf("items_written_total %v, want %d", got, tc.send)
			}
			if got := r.metric(t, "lookout_store_batch_seconds"); got < 1 {
				t.Errorf("batch_seconds has %v observations", got)
			}
		})
	}
}

// TestWriterRunBatches feeds the writer runs of items of every size, a
// burst that grows its buffer past the batch size and quiet spells that
// shrink it again, and checks every item is stored once and flushed on
// size, on interval and on close.
func TestWriterRunBatches(t *testing.T) {
	s := storeOpenTest(t)
	w := NewWriter(s, 1000, 20*time.Millisecond, nil, prometheus.NewRegistry())
	in := make(chan []item.Item, 4)
	done := make(chan error, 1)
	go func() { done <- w.RunBatches(context.Background(), in) }()
	next := 0
	sendRuns := func(sizes ...int) {
		for _, n := range sizes {
			in <- storeItemsN(next, next+n)
			next += n
		}
	}
	sendRuns(0, 1, 7, 64, 3)
	storeEventually(t, "the first runs, flushed on interval", func() bool { return storeRows(t, s) == next })
	for range 40 { // 2,560 items at once: two full batches and a rest
		sendRuns(64)
	}
	storeEventually(t, "the burst", func() bool { return storeRows(t, s) == next })
	for range 3 { // quiet spells: the buffer shrinks and must still work
		sendRuns(2, 1)
		storeEventually(t, "a quiet spell's items", func() bool { return storeRows(t, s) == next })
	}
	sendRuns(5, 300)
	close(in)
	if err := <-done; err != nil {
		t.Fatalf("RunBatches: %v", err)
	}
	if n := storeRows(t, s); n != next {
		t.Fatalf("%d rows after close, want %d", n, next)
	}
	if n := storeCount(t, s, `SELECT count(DISTINCT item_id) FROM items`); n != next {
		t.Fatalf("%d distinct items, want %d", n, next)
	}
}

func TestWriterCountsDuplicates(t *testing.T) {
	s := storeOpenTest(t)
	r := storeStartWriter(t, s, 4, time.Hour, nil)
	items := storeItemsN(0, 3)
	r.send(items...)
	r.send(items...) // the same three again: a reconnect replaying history
	close(r.in)
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	if n := storeRows(t, s); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
	if w, d := r.metric(t, "lookout_store_items_written_total"), r.metric(t, "lookout_store_duplicates_total"); w != 3 || d != 3 {
		t.Fatalf("written %v duplicates %v, want 3 and 3", w, d)
	}
}

// storeFillDisk makes every further write fail with SQLITE_FULL, the error a
// full disk gives, by capping the file at its current size. It works as
// root, unlike chmod. The store is limited to one connection so the cap
// (a per-connection pragma) covers every write.
func storeFillDisk(t *testing.T, s *Store) (unfill func()) {
	t.Helper()
	s.DB().SetMaxOpenConns(1)
	var pages int
	if err := s.DB().QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := s.DB().Exec(`PRAGMA max_page_count = 1073741823`); err != nil {
			t.Error(err)
		}
	}
}

func TestWriterKeepsItemsWhileDiskFullAndRetries(t *testing.T) {
	s := storeOpenTest(t)
	unfill := storeFillDisk(t, s)
	r := storeStartWriter(t, s, 10, 10*time.Millisecond, nil)
	r.send(storeBigItemsN(0, 35)...)
	storeEventually(t, "two failed writes", func() bool { return r.metric(t, "lookout_store_write_errors_total") >= 2 })
	if n := storeRows(t, s); n != 0 {
		t.Fatalf("%d rows stored on a full disk", n)
	}
	if !strings.Contains(r.logs.String(), "full") {
		t.Errorf("log does not say the disk is full:\n%s", r.logs.String())
	}
	r.send(storeBigItemsN(35, 40)...) // still accepted while failing
	unfill()
	storeEventually(t, "all 40 rows after the disk has room", func() bool { return storeRows(t, s) == 40 })
	close(r.in)
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	if d := r.metric(t, "lookout_store_dropped_total"); d != 0 {
		t.Errorf("dropped %v items", d)
	}
	if !strings.Contains(r.logs.String(), "recovered") {
		t.Errorf("no recovery logged:\n%s", r.logs.String())
	}
}

func TestWriterRetriesWhileDatabaseLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lookout.db")
	s, err := Open(ctx, path, WithBusyTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Another process (here: another connection pool) holds the write lock.
	other, err := sql.Open("sqlite3", storeDSN(path, "_busy_timeout=1000"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(`INSERT INTO source_state (source, key, value, updated_at) VALUES ('x', 'y', 'z', 'now')`); err != nil {
		t.Fatal(err)
	}
	r := storeStartWriter(t, s, 5, 10*time.Millisecond, nil)
	r.send(storeItemsN(0, 12)...)
	// The writer counts a failed write before it logs it: wait for both.
	storeEventually(t, "a failed write, counted and logged", func() bool {
		return r.metric(t, "lookout_store_write_errors_total") >= 1 && strings.Contains(r.logs.String(), "store write failed")
	})
	if !strings.Contains(r.logs.String(), "locked") {
		t.Errorf("log does not say the database is locked:\n%s", r.logs.String())
	}
	if err := lock.Commit(); err != nil {
		t.Fatal(err)
	}
	close(r.in)
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	if n := storeRows(t, s); n != 12 {
		t.Fatalf("%d rows after the lock was released, want 12", n)
	}
}

func TestWriterBacklogDropsOldestWhenFull(t *testing.T) {
	s := storeOpenTest(t)
	unfill := storeFillDisk(t, s)
	r := storeStartWriter(t, s, 5, time.Millisecond, func(w *Writer) { w.MaxBacklog = 20 })
	r.send(storeBigItemsN(0, 50)...)
	storeEventually(t, "drops", func() bool { return r.metric(t, "lookout_store_dropped_total") >= 30 })
	unfill()
	close(r.in)
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	dropped := int(r.metric(t, "lookout_store_dropped_total"))
	rows := storeRows(t, s)
	if dropped+rows != 50 || rows == 0 {
		t.Fatalf("rows %d + dropped %d != 50 sent", rows, dropped)
	}
	// What was dropped is the oldest of what waited: one run of ids, none
	// of the newest. (On a slow machine a first batch may be written before
	// the disk is full; it survives ahead of the dropped run.)
	kept := map[int]bool{}
	idRows, err := s.DB().Query(`SELECT CAST(item_id AS INTEGER) FROM items`)
	if err != nil {
		t.Fatal(err)
	}
	for idRows.Next() {
		var id int
		if err := idRows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		kept[id] = true
	}
	idRows.Close()
	var missing []int
	for id := 0; id < 50; id++ {
		if !kept[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) != dropped || len(missing) == 0 || !kept[49] || missing[len(missing)-1]-missing[0] != len(missing)-1 {
		t.Fatalf("dropped ids %v (%d counted): want one run of the oldest waiting, the newest kept", missing, dropped)
	}
	if !strings.Contains(r.logs.String(), "BACKLOG FULL") {
		t.Errorf("dropping was not logged loudly:\n%s", r.logs.String())
	}
}

func TestWriterAbortOnCancel(t *testing.T) {
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprintf("disk full %v", full), func(t *testing.T) {
			s := storeOpenTest(t)
			if full {
				storeFillDisk(t, s)
			}
			reg := prometheus.NewRegistry()
			w := NewWriter(s, 1000, time.Hour, nil, reg)
			w.AbortTimeout = 100 * time.Millisecond
			in := make(chan item.Item, 10)
			for _, it := range storeBigItemsN(0, 5) {
				in <- it
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx, in) }()
			storeEventually(t, "items taken", func() bool { return len(in) == 0 })
			time.Sleep(10 * time.Millisecond) // let Run append the last one
			cancel()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
			if full {
				if err == nil || !strings.Contains(err.Error(), "5 items not written") {
					t.Fatalf("Run = %v, want an error counting 5 unwritten items", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			if n := storeRows(t, s); n != 5 {
				t.Fatalf("%d rows, want the 5 held when cancelled", n)
			}
		})
	}
}

func TestWriterSharesMetricsOnOneRegistry(t *testing.T) {
	s := storeOpenTest(t)
	reg := prometheus.NewRegistry()
	NewWriter(s, 1, time.Second, nil, reg)
	NewWriter(s, 1, time.Second, nil, reg) // must not panic
}

func TestWriterRejectsPoisonItemAndKeepsTheRest(t *testing.T) {
	s := storeOpenTest(t)
	r := storeStartWriter(t, s, 10, time.Hour, nil)
	good := storeItemsN(0, 5)
	// A metric sample without a number: metrics.value is NOT NULL and
	// SQLite stores NaN as NULL, so this row can never be written.
	poison := item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindMetric, Room: "r",
		Metric: item.MetricViewers, Value: math.NaN(), TS: storeT0, ID: "poison"}
	r.send(good[:2]...)
	r.send(poison)
	r.send(good[2:]...)
	close(r.in)
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	if n := storeRows(t, s); n != 5 {
		t.Fatalf("%d rows, want the 5 good items", n)
	}
	if got := r.metric(t, "lookout_store_rejected_total"); got != 1 {
		t.Errorf("rejected_total %v, want 1", got)
	}
	if !strings.Contains(r.logs.String(), "item_id=poison") {
		t.Errorf("the refused item is not named in the log:\n%s", r.logs.String())
	}
}
