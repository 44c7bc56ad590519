package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"lookout/item"
	"lookout/store"
)

// staleSink forwards to the hub but hands out the set of watched rooms and
// the tag from before the room was watched, as a batch that began just
// before a browser opened the room sees them.
type staleSink struct{ h *hub }

func (s staleSink) Watched() (map[store.LiveRoom]bool, uint64) { return map[store.LiveRoom]bool{}, 0 }
func (s staleSink) Committed(b *store.LiveBatch)               { s.h.Committed(b) }

// TestStreamCountsEveryCommittedItemOnce: the room's items reach its stream
// once each, whether the writer published them (the room was watched when
// the batch began), the stream read them back (the batch began before), or
// they were committed before the stream started (after the page's
// history); other rooms' items never.
func TestStreamCountsEveryCommittedItemOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "live.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := New(ctx, Options{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	seq := 0
	t0 := time.Now().Add(-time.Minute)
	write := func(n int) {
		t.Helper()
		var batch []item.Item
		for range n {
			seq++
			for _, room := range []string{"1", "2"} {
				label := item.Positive
				if seq%4 == 0 {
					label = item.Negative
				}
				batch = append(batch, item.Item{Source: "live", Room: room, Kind: item.KindChat, ID: fmt.Sprintf("%s-%d", room, seq),
					Text: fmt.Sprintf("line %d", seq), TS: t0.Add(time.Duration(seq) * 100 * time.Millisecond),
					Score: item.Score{Scored: true, Label: label}})
			}
		}
		if _, err := st.WriteItems(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	write(10) // the page's history
	var after int64
	if err := st.DB().QueryRow(`SELECT max(id) FROM items`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	write(20) // committed between the history and the stream
	ch, done := srv.hub.subscribe(roomID{"live", "1"}, after)
	defer done()
	write(30) // published, or read back if the stream had not caught up yet
	for caughtUp := false; !caughtUp; time.Sleep(time.Millisecond) {
		srv.hub.mu.Lock()
		caughtUp = srv.hub.feeds[roomID{"live", "1"}].floor >= 0
		srv.hub.mu.Unlock()
	}
	st.SetLiveSink(staleSink{srv.hub})
	write(40) // began before the room was watched: read back
	st.SetLiveSink(srv.hub)
	write(50) // published

	var msgs, neg int
	var last Message
	deadline := time.After(20 * time.Second)
	quiet := 0
	for quiet < 10 {
		select {
		case b, ok := <-ch:
			if !ok {
				t.Fatal("stream closed")
			}
			var u Update
			if err := json.Unmarshal(b, &u); err != nil {
				t.Fatal(err)
			}
			for _, s := range u.Slices {
				msgs += s.Messages
				neg += s.Negative
			}
			if len(u.Messages) > 0 {
				last = u.Messages[len(u.Messages)-1]
			}
			for i := 1; i < len(u.Messages); i++ {
				if u.Messages[i].ID <= u.Messages[i-1].ID {
					t.Errorf("messages out of order: %d after %d", u.Messages[i].ID, u.Messages[i-1].ID)
				}
			}
			quiet = 0
		case <-time.After(srv.opts.Tick):
			if msgs >= 140 {
				quiet++ // nothing more for a while
			}
		case <-deadline:
			t.Fatalf("stream counted %d messages, want 140", msgs)
		}
	}
	if msgs != 140 || neg != 35 {
		t.Errorf("stream counted %d messages (%d negative), want 140 (35): each committed after the history once", msgs, neg)
	}
	if last.Text != "line 150" {
		t.Errorf("newest streamed message %q, want line 150", last.Text)
	}
}

// TestStreamCountsRowsOfAnotherWriter: processors may share one file; rows
// another process writes never come as batches, and are read back: the
// room's stream and the overview count them once, beside this process's.
func TestStreamCountsRowsOfAnotherWriter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "shared.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	other, err := store.Open(ctx, path) // another process's store on the same file
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	clock := time.Now()
	srv, err := New(ctx, Options{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Tick: 20 * time.Millisecond,
		Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	seq := 0
	write := func(s *store.Store, n int) {
		t.Helper()
		var batch []item.Item
		for range n {
			seq++
			for _, room := range []string{"1", "2"} {
				batch = append(batch, item.Item{Source: "live", Room: room, Kind: item.KindChat, ID: fmt.Sprintf("%s-%d", room, seq),
					Text: fmt.Sprintf("line %d", seq), TS: clock.Add(-time.Duration(200-seq) * time.Second),
					Score: item.Score{Scored: true, Label: item.Negative}})
			}
		}
		if _, err := s.WriteItems(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.tracker.update(ctx, srv.ro.DB(), clock); err != nil { // the overview loads (nothing yet)
		t.Fatal(err)
	}
	ch, done := srv.hub.subscribe(roomID{"live", "1"}, 0)
	defer done()
	for caughtUp := false; !caughtUp; time.Sleep(time.Millisecond) {
		srv.hub.mu.Lock()
		caughtUp = srv.hub.feeds[roomID{"live", "1"}].floor >= 0
		srv.hub.mu.Unlock()
	}
	time.Sleep(5 * srv.opts.Tick) // the first look for foreign rows has been made
	write(st, 30)
	write(other, 40)
	write(st, 50)
	write(other, 10)
	var msgs int
	deadline := time.After(20 * time.Second)
	for quiet := 0; quiet < 10; {
		select {
		case b := <-ch:
			var u Update
			if err := json.Unmarshal(b, &u); err != nil {
				t.Fatal(err)
			}
			for _, s := range u.Slices {
				msgs += s.Negative
			}
			quiet = 0
		case <-time.After(srv.opts.Tick):
			if msgs >= 130 {
				quiet++
			}
		case <-deadline:
			t.Fatalf("stream counted %d messages, want 130", msgs)
		}
	}
	if msgs != 130 {
		t.Errorf("stream counted %d messages, want 130 (80 of this process, 50 of the other, each once)", msgs)
	}
	if err := srv.tracker.update(ctx, srv.ro.DB(), clock); err != nil {
		t.Fatal(err)
	}
	c := srv.tracker.counts(clock)
	if got := c[[2]string{"live", "2"}].hour; got != 130 {
		t.Errorf("overview counted %d items of room 2 in the hour, want 130", got)
	}
}

// TestStreamFromNowKeepsBatchesBeforeItsStart: a browser that opens a room
// from now (no history) gets the messages and the viewers sample committed
// after it subscribed, even when they were committed before its stream
// caught up. The hub is driven step by step here, without its loop.
func TestStreamFromNowKeepsBatchesBeforeItsStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "live.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := New(ctx, Options{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h := newHub(ctx, srv)
	st.SetLiveSink(h)
	defer st.SetLiveSink(nil)
	now := time.Now()
	write := func(items ...item.Item) {
		t.Helper()
		if _, err := st.WriteItems(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	chat := func(id, text string) item.Item {
		return item.Item{Source: "live", Room: "1", Kind: item.KindChat, ID: id, Text: text, TS: now,
			Score: item.Score{Scored: true, Label: item.Positive}}
	}
	write(chat("old", "before the browser came"))
	ch, done := h.subscribe(roomID{"live", "1"}, 0)
	defer done()
	write(chat("new", "after it subscribed"),
		item.Item{Source: "live", Room: "1", Kind: item.KindMetric, ID: "v1", Metric: item.MetricViewers, Value: 3210, TS: now.Add(time.Second)})
	h.step(ctx, true) // the catch-up, then the first update
	var texts []string
	viewers := -1.0
	for len(ch) > 0 {
		b := <-ch
		var u Update
		if err := json.Unmarshal(b, &u); err != nil {
			t.Fatal(err)
		}
		for _, m := range u.Messages {
			texts = append(texts, m.Text)
		}
		if u.Viewers >= 0 {
			viewers = u.Viewers
		}
	}
	if len(texts) != 1 || texts[0] != "after it subscribed" || viewers != 3210 {
		t.Errorf("stream sent messages %q and viewers %v; want only the one after it subscribed, and 3210", texts, viewers)
	}
}
