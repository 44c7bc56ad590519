package daemon

import (
	"fmt"
	"testing"
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
	if len(s.keys) != 3 {
		t.Fatalf("set holds %d keys, want 3", len(s.keys))
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
