package store

import (
	"context"
	"testing"

	"lookout/item"
)

// A post mapped with a value (likes) that is 0 stores 0; a post with no
// value stores NULL.
func TestZeroValueIsStoredAsZero(t *testing.T) {
	s := storeOpenTest(t)
	its := []item.Item{
		{Source: "api", Platform: "json_api", Kind: item.KindPost, ID: "zero", Text: "x", TS: storeT0, Value: 0, HasValue: true},
		{Source: "api", Platform: "json_api", Kind: item.KindPost, ID: "none", Text: "y", TS: storeT0},
	}
	if _, err := s.WriteItems(context.Background(), its); err != nil {
		t.Fatal(err)
	}
	if n := storeCount(t, s, `SELECT count(*) FROM items WHERE item_id = 'zero' AND value = 0`); n != 1 {
		t.Errorf("value 0 with HasValue: %d rows with value = 0, want 1", n)
	}
	if n := storeCount(t, s, `SELECT count(*) FROM items WHERE item_id = 'none' AND value IS NULL`); n != 1 {
		t.Errorf("no value: %d rows with NULL, want 1", n)
	}
}
