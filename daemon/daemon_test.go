package daemon

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"lookout/item"
)

func TestDedupeSetEvictsOldest(t *testing.T) {
	s := newDedupeSet(3)
	for _, k := range []string{"a", "b", "c"} {
		if !s.addIfNew(k) {
			t.Fatalf("%s reported as seen", k)
		}
	}
	if s.addIfNew("a") {
		t.Fatal("a should be a duplicate")
	}
	s.addIfNew("d") // evicts a
	if !s.addIfNew("a") {
		t.Fatal("a should have been evicted")
	}
	if s.addIfNew("c") || s.addIfNew("d") {
		t.Fatal("c and d are still remembered")
	}
	if n := s.len(); n != 3 {
		t.Fatalf("set holds %d keys, want 3", n)
	}
}

// TestDedupeSetTable checks the open-addressing table against a plain map
// on hashes crowded into a few home slots (long probe runs that wrap round
// the table's end), with evictions and forgotten keys in between.
func TestDedupeSetTable(t *testing.T) {
	for _, max := range []int{1, 3, 40} {
		set := newDedupeSet(max)
		s := &set.shards[0]
		want := map[uint64]bool{}
		var ring []uint64
		rng := rand.New(rand.NewPCG(1, uint64(max)))
		for step := range 20_000 {
			// Home slots are the last four and the first two of the table.
			h := uint64(1+rng.IntN(60))<<20 | (s.mask-3+uint64(rng.IntN(6)))&s.mask
			if h == 0 {
				continue
			}
			if rng.IntN(5) == 0 {
				s.mu.Lock()
				s.remove(h)
				s.mu.Unlock()
				delete(want, h)
				continue
			}
			got := set.addHash(h)
			if got != !want[h] {
				t.Fatalf("max %d step %d: addHash(%x) = %v, want %v", max, step, h, got, !want[h])
			}
			if got {
				ring = append(ring, h)
				if len(ring) > max {
					delete(want, ring[0])
					ring = ring[1:]
				}
				want[h] = true
			}
			if n := set.len(); n != len(want) {
				t.Fatalf("max %d step %d: set holds %d keys, want %d", max, step, n, len(want))
			}
		}
		for h := range want {
			if _, ok := s.find(h); !ok {
				t.Fatalf("max %d: %x lost", max, h)
			}
		}
	}
}

// TestDedupeSetShards checks a set big enough to be split into shards: each
// shard evicts its own oldest, so the set as a whole keeps about its size
// in keys, and every one of the most recent half is remembered.
func TestDedupeSetShards(t *testing.T) {
	const max = 100_000
	s := newDedupeSet(max)
	if len(s.shards) != dedupeShards {
		t.Fatalf("%d shards, want %d", len(s.shards), dedupeShards)
	}
	key := func(i int) string { return "bili\x00" + strconv.Itoa(i) }
	for i := range 3 * max {
		if !s.addIfNew(key(i)) {
			t.Fatalf("key %d reported as seen", i)
		}
	}
	if n := s.len(); n > max+dedupeShards || n < max-max/50 {
		t.Errorf("set holds %d keys, want about %d", n, max)
	}
	for i := 3*max - max/2; i < 3*max; i++ {
		if s.addIfNew(key(i)) {
			t.Fatalf("recent key %d forgotten", i)
		}
	}
	if !s.addIfNew(key(0)) {
		t.Error("the oldest key is still remembered")
	}
}

func TestDedupeSetItemKeys(t *testing.T) {
	at := time.Date(2026, 12, 3, 13, 30, 0, 123456789, time.FixedZone("CST", 8*3600))
	items := []item.Item{
		{Source: "bili", ID: "1"},
		{Source: "bili", ID: "1", Change: item.ChangeEdit, ChangedAt: at},
		{Source: "bili", ID: "1", Change: item.ChangeEdit, ChangedAt: at.Add(time.Nanosecond)},
		{Source: "bili", ID: "1", Change: item.ChangeDelete, ChangedAt: at},
		{Source: "bili1", ID: ""},
		{Source: "", ID: "bili1"},
		{Source: "douyin", ID: "一二三四五六七八九十" + fmt.Sprint(make([]int, 40))}, // longer than maphash's buffer
	}
	s := newDedupeSet(100)
	seen := map[uint64]int{}
	for i := range items {
		it := &items[i]
		h := s.itemHash(it)
		if want := s.hash(it.DedupeKey()); h != want {
			t.Errorf("item %d: itemHash %x, hash of DedupeKey %x", i, h, want)
		}
		if j, dup := seen[h]; dup {
			t.Errorf("items %d and %d hash alike", j, i)
		}
		seen[h] = i
		if !s.addItemIfNew(it) {
			t.Errorf("item %d reported as seen", i)
		}
	}
	if !s.addIfNew("bili\x002") || s.addIfNew("bili\x001") {
		t.Error("string keys and item keys disagree")
	}
	// A key forgotten (an item not handed on) counts as new again; the
	// others stay remembered.
	s.forgetItem(&items[1])
	if !s.addItemIfNew(&items[1]) {
		t.Error("forgotten edit still reported as seen")
	}
	if s.addItemIfNew(&items[0]) || s.addItemIfNew(&items[3]) {
		t.Error("forgetting the edit forgot other keys")
	}
	// Another set has its own seed.
	if newDedupeSet(1).hash("bili\x001") == s.hash("bili\x001") {
		t.Error("two sets share a seed")
	}
}

func BenchmarkDedupeSet(b *testing.B) {
	s := newDedupeSet(200_000)
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = fmt.Sprintf("src\x00%d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.addIfNew(keys[i&(len(keys)-1)])
	}
}

// BenchmarkDedupeSetHeap fills a 200,000-key set with keys shaped like a
// live room's (source id, NUL, a 19-digit message id) and reports the
// live heap it holds.
func BenchmarkDedupeSetHeap(b *testing.B) {
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := newDedupeSet(200_000)
		for i := range 400_000 { // twice round the ring: evictions too
			s.addIfNew(fmt.Sprintf("bili-%03d\x00%019d", i%200, 1764700000000000000+i))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(s)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB")
	}
}

// len is how many keys the set remembers.
func (s *dedupeSet) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, v := range sh.slots {
			if v != 0 {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// BenchmarkDedupeSetContended is the set as the collectors use it: many
// goroutines (one per room) adding keys at once.
func BenchmarkDedupeSetContended(b *testing.B) {
	s := newDedupeSet(200_000)
	b.SetParallelism(100)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		base := n.Add(1) << 32
		var buf []byte
		for i := 0; pb.Next(); i++ {
			buf = strconv.AppendInt(append(buf[:0], "src\x00"...), base+int64(i), 10)
			s.addIfNew(string(buf))
		}
	})
}
