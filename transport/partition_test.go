package transport

import (
	"testing"
	"time"

	"lookout/item"
)

func TestPartitionStableAndSpread(t *testing.T) {
	const n = 16
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		room := "room" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		p := Partition("bili", room, n)
		if p < 0 || p >= n {
			t.Fatalf("partition %d out of [0,%d)", p, n)
		}
		if q := Partition("bili", room, n); q != p {
			t.Fatalf("room %s: %d then %d", room, p, q)
		}
		seen[p] = true
	}
	if len(seen) < n/2 {
		t.Fatalf("200 rooms fell in only %d of %d partitions", len(seen), n)
	}
	if Partition("a", "bc", 1<<20) == Partition("ab", "c", 1<<20) {
		t.Fatal("source/room boundary does not separate a+bc from ab+c")
	}
	if Partition("x", "y", 0) != 0 {
		t.Fatal("n < 1 must give partition 0")
	}
}

func TestMsgID(t *testing.T) {
	at := time.Date(2026, 11, 11, 0, 0, 1, 0, time.UTC)
	base := item.Item{Source: "s", ID: "42", Room: "r"}
	edit := base
	edit.Change, edit.ChangedAt = item.ChangeEdit, at
	edit2 := edit
	edit2.ChangedAt = at.Add(time.Second)
	for _, tc := range []struct {
		name string
		a, b item.Item
		same bool
	}{
		{"resend", base, base, true},
		{"other id", base, item.Item{Source: "s", ID: "43"}, false},
		{"other source", base, item.Item{Source: "t", ID: "42"}, false},
		{"edit vs original", base, edit, false},
		{"edit resent", edit, edit, true},
		{"two edits", edit, edit2, false},
	} {
		if got := MsgID(&tc.a) == MsgID(&tc.b); got != tc.same {
			t.Errorf("%s: same id = %v, want %v", tc.name, got, tc.same)
		}
	}
	if s := Subject(&base, 16); s[:len(SubjectPrefix)] != SubjectPrefix {
		t.Errorf("subject %q lacks prefix %q", s, SubjectPrefix)
	}
}
