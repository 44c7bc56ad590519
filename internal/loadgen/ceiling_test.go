package loadgen

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"lookout/item"
	"lookout/store"
)

// TestCeilingOfReadsEveryFile stores classified items in two files, as two
// processors would, and times their rows: every item of both is written,
// and a run that stored nothing is an error, not a rate.
func TestCeilingOfReadsEveryFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base := time.Now().Add(-time.Minute)
	var srcs []string
	for f := range 2 {
		p := filepath.Join(dir, "p"+strconv.Itoa(f)+".db")
		s, err := store.Open(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var items []item.Item
		for i := range 3 {
			items = append(items, item.Item{Source: "bili-00" + strconv.Itoa(f), Platform: "bilibili", Kind: item.KindChat,
				Room: "1", ID: "x" + strconv.Itoa(i), Text: "退款太慢了", TS: base.Add(time.Duration(i) * time.Second),
				Score: item.Score{Scored: true, Label: item.Negative, Value: -0.8, Prob: 0.9, Lang: "zh",
					Groups: []item.Match{{Group: "refund", Category: "service", Severity: "yellow", Terms: []string{"退款"}}},
					Terms:  []string{"退款"}}})
		}
		if _, err := s.WriteItems(ctx, items); err != nil {
			t.Fatal(err)
		}
		s.Close()
		srcs = append(srcs, p)
	}
	rate, n, err := CeilingOf(ctx, t.TempDir(), srcs)
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 || rate <= 0 {
		t.Errorf("wrote %d items at %v items/s, want the 6 stored", n, rate)
	}

	empty := filepath.Join(dir, "empty.db")
	s, err := store.Open(ctx, empty)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, _, err := CeilingOf(ctx, t.TempDir(), []string{empty}); err == nil {
		t.Error("a run that stored nothing gave a ceiling")
	}
}
