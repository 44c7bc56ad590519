package stream

import (
	"fmt"
	"testing"
)

func TestRecentIDs(t *testing.T) {
	r := NewRecentIDs(3)
	for i, step := range []struct {
		id  string
		new bool
	}{{"a", true}, {"b", true}, {"a", false}, {"c", true}, {"d", true}, {"a", true}, {"c", false}, {"b", true}} {
		if got := r.Add(step.id); got != step.new {
			t.Errorf("step %d: Add(%q) = %v, want %v", i, step.id, got, step.new)
		}
	}
	if !r.Has("b") || r.Has("zz") {
		t.Error("Has")
	}
	r.Forget("c")
	if !r.Add("c") {
		t.Error("a forgotten id is not new")
	}
	big := NewRecentIDs(100)
	for i := range 1000 {
		big.Add(fmt.Sprint(i))
	}
	if len(big.set) != 100 {
		t.Errorf("set holds %d ids, bound 100", len(big.set))
	}
}
