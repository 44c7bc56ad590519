package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"lookout/item"
	"lookout/store"
)

// While the daemon runs, a collector's state write is no database write: it
// is one state item on the collectors' channel, behind the items already
// there, and the collector reads its own writes back before the writer has
// stored them.
func TestPipelineStateQueuesBehindItems(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "lookout.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := newPipelineState(st)

	// Before Run: straight to the file.
	if err := p.PutStates(ctx, "src", map[string]string{"etag": "a"}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := st.GetState(ctx, "src", "etag"); v != "a" || !ok || err != nil {
		t.Fatalf("stored etag %q %v %v, want a", v, ok, err)
	}

	raw := make(chan item.Item, 4)
	p.attach(raw)
	raw <- item.Item{Source: "src", ID: "e1", Kind: item.KindPost}
	kv := map[string]string{"etag": "b", "seen": `["e1"]`}
	if err := p.PutStates(ctx, "src", kv); err != nil {
		t.Fatal(err)
	}
	kv["etag"] = "changed by the caller afterwards"

	for _, tc := range []struct{ key, want, stored string }{
		{"etag", "b", "a"},
		{"seen", `["e1"]`, ""},
	} {
		if v, ok, err := p.GetState(ctx, "src", tc.key); v != tc.want || !ok || err != nil {
			t.Errorf("collector reads %s = %q %v %v, want %q", tc.key, v, ok, err, tc.want)
		}
		if v, _, _ := st.GetState(ctx, "src", tc.key); v != tc.stored {
			t.Errorf("file holds %s = %q before the writer ran, want %q", tc.key, v, tc.stored)
		}
	}
	if it := <-raw; it.ID != "e1" {
		t.Fatalf("first on the channel: %+v, want the item", it)
	}
	it := <-raw
	if it.Kind != item.KindState || it.Source != "src" || len(it.State) != 2 || it.State["etag"] != "b" {
		t.Fatalf("second on the channel: %+v, want one state item with both keys", it)
	}

	// A full pipeline and a done context: the write fails and is not seen.
	for range cap(raw) {
		raw <- item.Item{}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.PutState(cctx, "src", "cursor", "c9"); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutState on a full pipeline with a done context: %v", err)
	}
	if _, ok, _ := p.GetState(ctx, "src", "cursor"); ok {
		t.Error("a write that never reached the pipeline is read back")
	}
}
