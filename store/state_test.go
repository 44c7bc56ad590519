package store

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"lookout/item"
)

// storeStates reads every source_state row of source as key=value, sorted.
func storeStates(t *testing.T, s *Store, source string) string {
	t.Helper()
	rows, err := s.DB().Query(`SELECT key, value FROM source_state WHERE source = ? ORDER BY key`, source)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, k+"="+v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

func TestPutStatesWritesEveryKey(t *testing.T) {
	s := storeOpenTest(t)
	ctx := context.Background()
	if err := s.PutState(ctx, "api", "etag", `"old"`); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStates(ctx, "api", map[string]string{"etag": `"new"`, "last_id": "p9", "seen": `["p8","p9"]`}); err != nil {
		t.Fatal(err)
	}
	if got, want := storeStates(t, s, "api"), `etag="new" last_id=p9 seen=["p8","p9"]`; got != want {
		t.Errorf("state %s, want %s", got, want)
	}
}

// A state item is committed in the transaction of the items before it, so
// that the two are stored together or not at all.
func TestWriteItemsCommitsStateWithItems(t *testing.T) {
	state := func(kv ...string) item.Item {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return item.StateItem("brand-live", m)
	}
	for _, tc := range []struct {
		name      string
		before    []item.Item // written first
		full      bool        // the disk is full for the batch
		batch     []item.Item
		wantErr   bool
		wantNew   int
		wantRows  int
		wantState string
	}{
		{name: "items then their state", batch: append(storeItemsN(0, 40), state("seen", "0-39", "etag", "a")),
			wantNew: 40, wantRows: 40, wantState: "etag=a seen=0-39"},
		{name: "state alone", batch: []item.Item{state("cursor", "c1")}, wantRows: 0, wantState: "cursor=c1"},
		{name: "a later state replaces an earlier one key by key",
			batch:   append(append(storeItemsN(0, 3), state("seen", "0-2", "etag", "a")), append(storeItemsN(3, 5), state("seen", "0-4"))...),
			wantNew: 5, wantRows: 5, wantState: "etag=a seen=0-4"},
		{name: "duplicates: the exact path writes the state too", before: storeItemsN(0, 2),
			batch:   append(storeItemsN(0, 4), state("seen", "0-3")),
			wantNew: 2, wantRows: 4, wantState: "seen=0-3"},
		{name: "full disk: neither the items nor the state", full: true,
			batch:   append(storeBigItemsN(0, 20), state("seen", "0-19")),
			wantErr: true, wantRows: 0, wantState: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storeOpenTest(t)
			ctx := context.Background()
			if _, err := s.WriteItems(ctx, tc.before); err != nil {
				t.Fatal(err)
			}
			if tc.full {
				defer storeFillDisk(t, s)()
			}
			n, err := s.WriteItems(ctx, tc.batch)
			if (err != nil) != tc.wantErr {
				t.Fatalf("WriteItems: %v, want error %v", err, tc.wantErr)
			}
			if n != tc.wantNew {
				t.Errorf("%d new items, want %d", n, tc.wantNew)
			}
			if got := storeRows(t, s); got != tc.wantRows {
				t.Errorf("%d rows, want %d", got, tc.wantRows)
			}
			if got := storeStates(t, s, "brand-live"); got != tc.wantState {
				t.Errorf("state %q, want %q", got, tc.wantState)
			}
		})
	}
}

// Through the Writer: a state item is no item, so it is neither written
// nor a duplicate in the counters, and a refused item in its batch does
// not keep it from being stored after the good ones.
func TestWriterStoresStateBehindItems(t *testing.T) {
	s := storeOpenTest(t)
	r := storeStartWriter(t, s, 10, time.Hour, nil)
	poison := item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindMetric, Room: "r",
		Metric: item.MetricViewers, Value: math.NaN(), TS: storeT0, ID: "poison"}
	r.send(storeItemsN(0, 3)...)
	r.send(poison)
	r.send(item.StateItem("brand-live", map[string]string{"seen": "0-2"}))
	close(r.in)
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	if n := storeRows(t, s); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
	if got := storeStates(t, s, "brand-live"); got != "seen=0-2" {
		t.Errorf("state %q, want seen=0-2", got)
	}
	for name, want := range map[string]float64{"lookout_store_items_written_total": 3,
		"lookout_store_duplicates_total": 0, "lookout_store_rejected_total": 1} {
		if got := r.metric(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
