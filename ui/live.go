package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"lookout/store"
)

// A room's live stream: one poller per watched room, shared by every
// browser watching it, reads the rows committed since its last look (a
// rowid range scan, so its cost follows the new rows, not the table) and
// sends them as one coalesced update per tick. Ingest never waits for it:
// it reads the file through its own read-only connection.

// Update is one coalesced event of a room's stream.
type Update struct {
	Now      int64       `json:"now"`
	Slices   []Slice     `json:"slices"`   // counts of the new rows per slice (added to the history's)
	Messages []Message   `json:"messages"` // the newest new messages, newest last
	Viewers  float64     `json:"viewers"`  // latest new viewers sample, -1 when none
	Alerts   []AlertMark `json:"alerts,omitempty"`
	Terms    []TermCount `json:"terms,omitempty"`
	LastID   int64       `json:"last_id"`
}

// feedMessages is the most messages one update carries.
const feedMessages = 40

// subBuffer is how many updates wait for a slow browser before it is
// dropped (its EventSource reconnects and reloads the history).
const subBuffer = 16

type roomID struct{ source, room string }

type hub struct {
	ctx   context.Context
	s     *Server
	mu    sync.Mutex
	feeds map[roomID]*feed
	wg    sync.WaitGroup
}

type feed struct {
	subs   map[chan []byte]struct{}
	cancel context.CancelFunc
}

func newHub(ctx context.Context, s *Server) *hub {
	return &hub{ctx: ctx, s: s, feeds: map[roomID]*feed{}}
}

// subscribe returns a channel of encoded updates for the room starting
// after row lastID, and the function that ends the subscription.
func (h *hub) subscribe(id roomID, lastID int64) (<-chan []byte, func()) {
	ch := make(chan []byte, subBuffer)
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.feeds[id]
	if !ok {
		ctx, cancel := context.WithCancel(h.ctx)
		f = &feed{subs: map[chan []byte]struct{}{}, cancel: cancel}
		h.feeds[id] = f
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.run(ctx, id, f, lastID)
		}()
	}
	f.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := f.subs[ch]; !ok {
			return
		}
		delete(f.subs, ch)
		close(ch)
		if len(f.subs) == 0 {
			f.cancel()
			if h.feeds[id] == f {
				delete(h.feeds, id)
			}
		}
	}
}

func (h *hub) run(ctx context.Context, id roomID, f *feed, lastID int64) {
	t := time.NewTicker(h.s.opts.Tick)
	defer t.Stop()
	st := pollState{lastID: lastID, viewersAfter: store.FormatTime(h.s.opts.Now())}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		u, ok, err := h.s.poll(ctx, id, &st)
		if err != nil {
			if ctx.Err() == nil {
				h.s.log.Warn("ui: room stream poll failed", "source", id.source, "room", id.room, "err", err)
			}
			continue
		}
		if !ok {
			continue
		}
		b, err := json.Marshal(u)
		if err != nil {
			continue
		}
		h.mu.Lock()
		for ch := range f.subs {
			select {
			case ch <- b:
			default:
				// Too slow: drop it; its browser reconnects and starts
				// again from the history.
				delete(f.subs, ch)
				close(ch)
			}
		}
		h.mu.Unlock()
	}
}

type pollState struct {
	lastID       int64
	viewersAfter string
	alerts       []byte // the alert marks last sent
	termsAt      time.Time
}

// poll reads what is new for the room; ok is false when nothing is.
func (s *Server) poll(ctx context.Context, id roomID, st *pollState) (Update, bool, error) {
	db := s.ro.DB()
	now := s.opts.Now()
	u := Update{Now: now.Unix(), Viewers: -1, Slices: []Slice{}, Messages: []Message{}}
	var maxID int64
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM items`).Scan(&maxID); err != nil {
		return u, false, err
	}
	changed := false
	if maxID > st.lastID {
		rows, err := db.QueryContext(ctx, `SELECT CAST(strftime('%s', ts) AS INTEGER) / ?1 * ?1 AS b,
			sum(kind IN ('chat','comment','post','superchat')), sum(sentiment = 'positive'), sum(sentiment = 'neutral'), sum(sentiment = 'negative'),
			coalesce(sum(CASE WHEN kind = 'like' THEN max(coalesce(count, 1), 1) END), 0),
			coalesce(sum(CASE WHEN kind = 'gift' THEN max(coalesce(count, 1), 1) END), 0),
			coalesce(sum(CASE WHEN kind IN ('gift', 'superchat') THEN value END), 0)
			FROM items NOT INDEXED WHERE id > ?2 AND id <= ?3 AND source = ?4 AND room = ?5 GROUP BY b ORDER BY b`,
			historyStep, st.lastID, maxID, id.source, id.room)
		if err != nil {
			return u, false, fmt.Errorf("new rows: %w", err)
		}
		for rows.Next() {
			var sl Slice
			if err := rows.Scan(&sl.T, &sl.Messages, &sl.Positive, &sl.Neutral, &sl.Negative, &sl.Likes, &sl.Gifts, &sl.GiftValue); err != nil {
				rows.Close()
				return u, false, fmt.Errorf("new rows: %w", err)
			}
			sl.Viewers = -1
			u.Slices = append(u.Slices, sl)
		}
		rows.Close()
		msgs, err := s.messages(ctx, `NOT INDEXED WHERE id > ? AND id <= ? AND source = ? AND room = ? AND kind IN ('chat','comment','post','superchat','gift')
			ORDER BY id DESC LIMIT `+strconv.Itoa(feedMessages), st.lastID, maxID, id.source, id.room)
		if err != nil {
			return u, false, err
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			u.Messages = append(u.Messages, msgs[i])
		}
		st.lastID = maxID
		changed = len(u.Slices) > 0
	}
	u.LastID = st.lastID
	var ts string
	var v float64
	err := db.QueryRowContext(ctx, `SELECT ts, value FROM metrics WHERE room = ? AND name = 'viewers' AND ts > ? AND source = ?
		ORDER BY ts DESC LIMIT 1`, id.room, st.viewersAfter, id.source).Scan(&ts, &v)
	if err == nil {
		u.Viewers, st.viewersAfter, changed = v, ts, true
	}
	marks, err := s.alertMarks(ctx, id.source, id.room, now.Add(-historySpan))
	if err != nil {
		return u, false, err
	}
	if b, _ := json.Marshal(marks); !bytes.Equal(b, st.alerts) {
		u.Alerts, st.alerts, changed = marks, b, true
	}
	if now.Sub(st.termsAt) >= 10*time.Second {
		if u.Terms, err = s.hotTerms(ctx, id.source, id.room, now.Add(-10*time.Minute)); err != nil {
			return u, false, err
		}
		st.termsAt = now
		changed = true
	}
	return u, changed, nil
}

// stream serves a room's updates as Server-Sent Events: one "update"
// event per tick with news, a comment every 15 s to keep proxies from
// closing the connection.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	src, room, err := roomKey(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if after <= 0 {
		if err := s.ro.DB().QueryRowContext(r.Context(), `SELECT coalesce(max(id), 0) FROM items`).Scan(&after); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	ch, done := s.hub.subscribe(roomID{src, room}, after)
	defer done()
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.hub.ctx.Done():
			return
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case b, ok := <-ch:
			if !ok {
				return
			}
			fmt.Fprintf(w, "event: update\ndata: %s\n\n", b)
			fl.Flush()
		}
	}
}
