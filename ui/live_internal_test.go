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
