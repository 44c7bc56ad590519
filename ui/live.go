package ui

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"lookout/item"
	"lookout/store"
)

// A room's live stream does not read the rows back: the store's writer
// hands each committed batch's per-second counts, newest messages and
// viewers samples of the watched rooms to the hub (store.LiveSink), which
// merges them in memory and sends one coalesced update per tick to every
// browser watching the room. SQLite is read for the page's history, once
// when a room's stream starts (the rows committed between the history and
// the stream), and for the few batches that began before the room was
// watched. The hub never blocks the writer: Committed only merges into
// bounded buffers under a short lock, and a browser too slow for its
// updates is dropped (its EventSource reconnects and reloads the history).

// Update is one coalesced event of a room's stream.
type Update struct {
	Now      int64       `json:"now"`
	Slices   []Slice     `json:"slices"`   // counts of the new items per slice (added to the history's)
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

// Bounds of what waits for a room's next tick: slices (a batch spread over
// more time than this is unusual: backfill), batches to read back from
// SQLite, batches that arrive while the stream starts.
const (
	maxPendingSlices = 4 * int(historySpan/time.Second) / historyStep
	maxReread        = 64
	maxEarly         = 1024
)

type roomID struct{ source, room string }

type hub struct {
	ctx   context.Context
	s     *Server
	mu    sync.Mutex
	feeds map[roomID]*feed
	wg    sync.WaitGroup
	// watched is the set of rooms with a feed, replaced (never changed)
	// under mu; seq counts its versions. A batch reads seq before the set,
	// so a batch whose tag is at least a feed's tag saw the feed's room.
	watched atomic.Pointer[map[store.LiveRoom]bool]
	seq     atomic.Uint64
	dropped atomic.Int64 // news left out because a buffer was full
	// Rows another process wrote to the same file (processors may share
	// one) never come as batches: ours holds the row id ranges of the
	// batches that came since checked, every row up to which is accounted
	// for; foreign finds the rows in between.
	ours       [][2]int64
	checked    int64
	checkedSet bool
	// news is set by every handed-over batch and subscription; wake
	// tells the loop so (one pending signal at most).
	news atomic.Bool
	wake chan struct{}
	// Owned by the loop: whether the look for other processes' rows is
	// still to be made, the database files as last seen, and how many
	// times something was found committed (gen).
	foreignDue bool
	files      [2]fileSig
	gen        uint64
	// foreignLater: something was committed, and the look for other
	// processes' rows waits until foreignAt (the last look) is `look` ago.
	foreignLater bool
	foreignAt    time.Time
}

// fileSig is what a stat of the database file or its WAL shows; any commit,
// of this process or another, changes the WAL's.
type fileSig struct {
	size int64
	mod  time.Time
	ok   bool
}

type feed struct {
	subs map[chan []byte]struct{}
	tag  uint64 // batches tagged below it may hold the room's items without news
	// Under hub.mu until the stream has caught up (floor >= 0): batches
	// committed meanwhile, resolved against the catch-up read.
	floor     int64
	early     []*store.LiveBatch
	earlyLost bool
	earlyHi   int64 // the highest row id of the early batches, kept or not
	earlyLo   int64 // the lowest row id of the early batches tagged f.tag or above, 0 when none
	pend      pending
	// Owned by the hub's loop.
	after    int64 // the last row of the page's history (0: from now)
	started  bool  // caught up
	st       tickState
	lastSend time.Time
}

// pending is what the next tick sends; touched under hub.mu.
type pending struct {
	slices    map[int64]*Slice
	msgs      []Message // ring of the newest, feedMessages at most
	head      int
	viewers   float64
	viewersTS string
	lastID    int64
	reread    [][2]int64 // row id ranges (lo, hi] to read back for the room
}

func newHub(ctx context.Context, s *Server) *hub {
	h := &hub{ctx: ctx, s: s, feeds: map[roomID]*feed{}, wake: make(chan struct{}, 1), foreignDue: true}
	h.watched.Store(&map[store.LiveRoom]bool{})
	return h
}

// setWatched republishes the set of watched rooms; under mu.
func (h *hub) setWatched() uint64 {
	m := make(map[store.LiveRoom]bool, len(h.feeds))
	for id := range h.feeds {
		m[store.LiveRoom{Source: id.source, Room: id.room}] = true
	}
	h.watched.Store(&m)
	return h.seq.Add(1)
}

// Watched implements store.LiveSink.
func (h *hub) Watched() (map[store.LiveRoom]bool, uint64) {
	tag := h.seq.Load()
	return *h.watched.Load(), tag
}

// Committed implements store.LiveSink: it merges the batch into the
// watched rooms' pending updates.
func (h *hub) Committed(b *store.LiveBatch) {
	if b.LastID == 0 && len(b.Rooms) == 0 {
		return
	}
	h.s.tracker.committed(b, h.s.opts.Now())
	h.mu.Lock()
	defer h.mu.Unlock()
	if b.LastID > h.checked {
		if len(h.ours) == maxEarly {
			// No look for a long time (a batch of ours was always being
			// handed over): merge the oldest two, taking the rows between
			// them, if any, for ours.
			h.ours[1][0] = h.ours[0][0]
			h.ours = append(h.ours[:0], h.ours[1:]...)
		}
		h.ours = append(h.ours, [2]int64{b.FirstID, b.LastID})
	}
	for id, f := range h.feeds {
		if f.floor < 0 {
			f.earlyHi = max(f.earlyHi, b.LastID)
			if b.LastID != 0 && b.Tag >= f.tag && (f.earlyLo == 0 || b.FirstID < f.earlyLo) {
				f.earlyLo = b.FirstID
			}
			if len(f.early) < maxEarly {
				f.early = append(f.early, b)
			} else {
				f.earlyLost = true
			}
			continue
		}
		h.apply(id, f, b)
	}
	h.signal()
}

// signal tells the loop that something new waits.
func (h *hub) signal() {
	h.news.Store(true)
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// keepAlive is how often a stream with nothing to send gets an SSE
// comment, to keep proxies from closing the connection.
const keepAlive = 15 * time.Second

// loop drives every stream of the hub from one goroutine and one timer:
// it wakes when a batch was handed over (at most once per tick: updates
// are coalesced), when something a stream waits for falls due (alert
// marks, hot terms, a keep-alive), and every few ticks for a stat of the
// database files, which finds what other processes (and the alert engine)
// committed. While batches come, the query that finds other processes' rows
// runs at most every idleLooks ticks. With nothing committed it does no SQL
// and sends nothing but keep-alives.
func (h *hub) loop(ctx context.Context) {
	tick := h.s.opts.Tick
	look := idleLooks * tick
	timer := time.NewTimer(0)
	defer timer.Stop()
	var looked time.Time     // the last stat of the files
	var wake <-chan struct{} // nil while ticking: news waits for the tick
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake: // the first news after a quiet spell goes out at once
		case <-timer.C:
		}
		now := time.Now()
		news := h.news.Swap(false)
		changed := news
		if now.Sub(looked) >= look || news {
			// Stat before reading: what the reads miss changes it again.
			if h.filesChanged() {
				changed = true
			}
			looked = now
		}
		if changed {
			h.gen++
			h.foreignLater = true
		}
		// While this process's batches come (their rows need no look),
		// the look for other processes' rows, a query, is made at most
		// every look; a change with no batch of ours is looked at now.
		if h.foreignLater && (!news || now.Sub(h.foreignAt) >= look) {
			h.foreignDue, h.foreignLater = true, false
		}
		next := h.step(ctx, changed)
		if changed || h.foreignDue || h.foreignLater {
			// Look again on the next tick; what is committed meanwhile
			// waits for it, with no wake-up of its own.
			wake = nil
			timer.Reset(tick)
			continue
		}
		select {
		case <-h.wake: // a signal of news already taken
		default:
		}
		if h.news.Load() {
			wake = nil
			timer.Reset(tick)
			continue
		}
		wake = h.wake
		timer.Reset(max(min(look, time.Until(next)), time.Millisecond))
	}
}

// idleLooks: with nothing handed over, the loop looks at the database files
// every idleLooks ticks (every 2 s at the default tick).
const idleLooks = 4

// filesChanged stats the database file and its WAL and reports whether
// either differs from the last look.
func (h *hub) filesChanged() bool {
	path := h.s.opts.Store.Path()
	changed := false
	for i, p := range []string{path, path + "-wal"} {
		var sig fileSig
		if fi, err := os.Stat(p); err == nil {
			sig = fileSig{size: fi.Size(), mod: fi.ModTime(), ok: true}
		}
		if sig != h.files[i] {
			changed = true
			h.files[i] = sig
		}
	}
	return changed
}

// step does what is due: the look for other processes' rows, the start
// of new streams, and for every stream its update or a keep-alive. It
// returns when it next has something due with nothing committed.
func (h *hub) step(ctx context.Context, work bool) time.Time {
	now := time.Now()
	next := now.Add(keepAlive)
	if h.foreignDue {
		done, err := h.foreign(ctx)
		if err != nil && ctx.Err() == nil {
			h.s.log.Warn("ui: looking for rows other processes wrote failed", "err", err)
		}
		h.foreignDue = !done
		if done {
			h.foreignAt = now
		}
	}
	h.mu.Lock()
	ids := make([]roomID, 0, len(h.feeds))
	fs := make([]*feed, 0, len(h.feeds))
	for id, f := range h.feeds {
		ids = append(ids, id)
		fs = append(fs, f)
	}
	h.mu.Unlock()
	if n := h.dropped.Swap(0); n > 0 {
		h.s.log.Warn("ui: live updates over their bounds: slices left out or batches read back as one range", "times", n)
	}
	for i, f := range fs {
		id := ids[i]
		if !f.started {
			if err := h.catchUp(ctx, id, f, f.after); err != nil {
				if ctx.Err() == nil {
					h.s.log.Warn("ui: room stream start failed", "source", id.source, "room", id.room, "err", err)
				}
				next = minTime(next, now.Add(h.s.opts.Tick)) // again on the next tick
				continue
			}
			f.started = true
			work = true
		}
		var u Update
		ok := false
		if due := f.st.due(h.gen, now); work || !due.After(now) {
			h.mu.Lock()
			p := f.pend.take()
			h.mu.Unlock()
			var err error
			u, ok, err = h.s.tick(ctx, id, p, &f.st, h.gen)
			if err != nil {
				ok = false
				if ctx.Err() == nil {
					h.s.log.Warn("ui: room stream update failed", "source", id.source, "room", id.room, "err", err)
				}
			}
		}
		switch {
		case ok:
			if b, err := json.Marshal(u); err == nil {
				h.send(id, f, b)
				f.lastSend = now
			}
		case now.Sub(f.lastSend) >= keepAlive:
			h.send(id, f, []byte{})
			f.lastSend = now
		}
		next = minTime(next, f.st.due(h.gen, now), f.lastSend.Add(keepAlive))
	}
	return next
}

func minTime(t time.Time, more ...time.Time) time.Time {
	for _, m := range more {
		if m.Before(t) {
			t = m
		}
	}
	return t
}

// foreign reads the newest row id and hands the row ranges between this
// process's batches (rows another process wrote to the same file) to the
// feeds and the overview, which read them back.
// It reports false when it must look again.
func (h *hub) foreign(ctx context.Context) (bool, error) {
	var top int64
	if err := h.s.ro.DB().QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM items`).Scan(&top); err != nil {
		return false, fmt.Errorf("newest row: %w", err)
	}
	if h.s.opts.Store.LiveDelivering() {
		return false, nil // a batch of ours up to top may not have come yet: next time
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.checkedSet {
		h.checked, h.checkedSet = top, true // the start: what is older is history
	}
	var gaps [][2]int64
	cur, keep := h.checked, h.ours[:0]
	for _, r := range h.ours {
		if r[0] > top {
			keep = append(keep, r)
			continue
		}
		if r[0]-1 > cur {
			gaps = append(gaps, [2]int64{cur, r[0] - 1})
		}
		cur = max(cur, r[1])
	}
	if top > cur {
		gaps = append(gaps, [2]int64{cur, top})
	}
	h.ours, h.checked = keep, max(h.checked, top)
	for _, g := range gaps {
		b := &store.LiveBatch{FirstID: g[0] + 1, LastID: g[1]} // tag 0: read back
		for id, f := range h.feeds {
			if f.floor < 0 {
				f.earlyHi = max(f.earlyHi, b.LastID)
				if len(f.early) < maxEarly {
					f.early = append(f.early, b)
				} else {
					f.earlyLost = true
				}
				continue
			}
			h.apply(id, f, b)
		}
		h.s.tracker.foreign(g[0], g[1])
	}
	return true, nil
}

// apply merges one batch into a feed that has caught up; under mu.
func (h *hub) apply(id roomID, f *feed, b *store.LiveBatch) {
	// A batch the catch-up read covered gives only its viewers samples
	// (the read is of items).
	covered := b.LastID != 0 && b.LastID <= f.floor
	if !covered && b.Tag < f.tag {
		// The batch began before the room was watched: its rows are
		// read back on the next tick.
		if b.LastID != 0 {
			f.pend.addReread(b.FirstID-1, b.LastID, h)
		}
		return
	}
	for _, n := range b.Rooms {
		if n.Watched && n.Source == id.source && n.Room == id.room {
			if covered {
				f.pend.addViewers(n)
			} else {
				f.pend.add(n, h)
			}
		}
	}
	f.pend.lastID = max(f.pend.lastID, b.LastID)
}

func (p *pending) addReread(lo, hi int64, h *hub) {
	if len(p.reread) == maxReread {
		// Too many: one range over all of them.
		p.reread[0] = [2]int64{min(p.reread[0][0], lo), max(p.reread[len(p.reread)-1][1], hi)}
		p.reread = p.reread[:1]
		h.dropped.Add(1)
		return
	}
	p.reread = append(p.reread, [2]int64{lo, hi})
}

// add merges a room's news.
func (p *pending) add(n *store.LiveNews, h *hub) {
	for _, s := range n.Seconds {
		t := s.Unix / historyStep * historyStep
		sl := p.slices[t]
		if sl == nil {
			if p.slices == nil {
				p.slices = map[int64]*Slice{}
			}
			if len(p.slices) >= maxPendingSlices {
				h.dropped.Add(1)
				continue
			}
			sl = &Slice{T: t, Viewers: -1}
			p.slices[t] = sl
		}
		addSecond(sl, s)
	}
	for _, it := range n.Latest {
		m := Message{ID: it.ID, TS: it.TS, Kind: string(it.Kind), Author: it.Author, Text: it.Text, Sentiment: it.Sentiment, Value: it.Value, Keywords: it.Keywords}
		if len(p.msgs) < feedMessages {
			p.msgs = append(p.msgs, m)
			continue
		}
		p.msgs[p.head] = m
		p.head = (p.head + 1) % feedMessages
	}
	p.addViewers(n)
}

// addViewers keeps the newest viewers sample.
func (p *pending) addViewers(n *store.LiveNews) {
	if n.ViewersTS != "" && n.ViewersTS >= p.viewersTS {
		p.viewers, p.viewersTS = n.Viewers, n.ViewersTS
	}
}

// addSecond adds one second's sums to a slice, counted as the history
// query counts rows.
func addSecond(sl *Slice, s store.LiveSecond) {
	switch s.Kind {
	case item.KindChat, item.KindComment, item.KindPost, item.KindSuperChat:
		sl.Messages += int(s.Items)
	}
	switch s.Sentiment {
	case "positive":
		sl.Positive += int(s.Items)
	case "neutral":
		sl.Neutral += int(s.Items)
	case "negative":
		sl.Negative += int(s.Items)
	}
	switch s.Kind {
	case item.KindLike:
		sl.Likes += s.Units
	case item.KindGift:
		sl.Gifts += s.Units
	}
	if s.Kind == item.KindGift || s.Kind == item.KindSuperChat {
		sl.GiftValue += s.Value
	}
}

// take empties the pending update; under mu.
func (p *pending) take() pending {
	out := *p
	if len(out.msgs) == feedMessages {
		ordered := make([]Message, 0, feedMessages)
		ordered = append(ordered, out.msgs[out.head:]...)
		out.msgs = append(ordered, out.msgs[:out.head]...)
	}
	*p = pending{lastID: p.lastID}
	return out
}

// subscribe returns a channel of encoded updates for the room starting
// after row lastID, and the function that ends the subscription. An empty
// update is a keep-alive.
func (h *hub) subscribe(id roomID, lastID int64) (<-chan []byte, func()) {
	ch := make(chan []byte, subBuffer)
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.feeds[id]
	if !ok {
		f = &feed{subs: map[chan []byte]struct{}{}, floor: -1, after: lastID, lastSend: time.Now(),
			st: tickState{viewersAfter: store.FormatTime(h.s.opts.Now())}}
		h.feeds[id] = f
		f.tag = h.setWatched()
		h.signal()
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
		if len(f.subs) == 0 && h.feeds[id] == f {
			delete(h.feeds, id)
			h.setWatched()
		}
	}
}

// catchUp reads the room's rows after lastID up to the newest committed
// row, and resolves the batches committed since the room was watched.
func (h *hub) catchUp(ctx context.Context, id roomID, f *feed, lastID int64) error {
	var top int64
	if err := h.s.ro.DB().QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM items`).Scan(&top); err != nil {
		return fmt.Errorf("newest row: %w", err)
	}
	h.mu.Lock()
	if lastID <= 0 {
		// From now: from the rows of the first batch that began after
		// the room was watched, if one came already.
		lastID = top
		if f.earlyLo > 0 {
			lastID = min(top, f.earlyLo-1)
		}
	}
	f.floor = top
	if f.earlyLost {
		// Some batches were not kept: read back all they may hold.
		f.floor = max(top, f.earlyHi)
		f.early = nil
	}
	if lastID < f.floor {
		f.pend.addReread(lastID, f.floor, h)
	}
	for _, b := range f.early {
		h.apply(id, f, b)
	}
	f.early, f.earlyLost, f.earlyHi, f.earlyLo = nil, false, 0, 0
	f.pend.lastID = max(f.pend.lastID, f.floor)
	h.mu.Unlock()
	return nil
}

// send hands an encoded update (empty: a keep-alive) to the feed's
// browsers.
func (h *hub) send(id roomID, f *feed, b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
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
	if len(f.subs) == 0 && h.feeds[id] == f {
		delete(h.feeds, id)
		h.setWatched()
	}
}

// How often a room's stream reads its alert marks and hot terms when
// something was committed since it last read them; the terms also at
// least every termsIdle, since their window moves.
const (
	alertsEvery = 2 * time.Second
	termsEvery  = 10 * time.Second
	termsIdle   = time.Minute
)

type tickState struct {
	viewersAfter string
	alerts       []byte // the alert marks last sent
	alertsAt     time.Time
	alertsGen    uint64 // the hub's gen when they were read
	termsAt      time.Time
	termsGen     uint64
	read         bool // alerts and terms have been read once
}

// due is when the stream next has something to read with nothing new
// handed over: alert marks or hot terms after something was committed
// (gen moved), or the hot terms' idle refresh.
func (st *tickState) due(gen uint64, now time.Time) time.Time {
	if !st.read {
		return now
	}
	d := st.termsAt.Add(termsIdle)
	if st.alertsGen != gen {
		d = minTime(d, st.alertsAt.Add(alertsEvery))
	}
	if st.termsGen != gen {
		d = minTime(d, st.termsAt.Add(termsEvery))
	}
	return d
}

// tick builds the update from what the writer published (and the rows of
// batches to read back); ok is false when nothing is new.
func (s *Server) tick(ctx context.Context, id roomID, p pending, st *tickState, gen uint64) (Update, bool, error) {
	now := s.opts.Now()
	u := Update{Now: now.Unix(), Viewers: -1, Slices: []Slice{}, Messages: []Message{}, LastID: p.lastID}
	changed := false
	byT := map[int64]*Slice{}
	var msgs []Message
	for _, r := range p.reread {
		if err := s.readBack(ctx, id, r[0], r[1], byT, &msgs); err != nil {
			return u, false, err
		}
		u.LastID = max(u.LastID, r[1])
	}
	for _, sl := range p.slices {
		mergeSlice(byT, sl)
	}
	for _, sl := range byT {
		u.Slices = append(u.Slices, *sl)
	}
	sortSlices(u.Slices)
	msgs = append(msgs, p.msgs...)
	sortMessages(msgs)
	if len(msgs) > feedMessages {
		msgs = msgs[len(msgs)-feedMessages:]
	}
	u.Messages = append(u.Messages, msgs...)
	changed = len(u.Slices) > 0 || len(u.Messages) > 0
	if p.viewersTS != "" && p.viewersTS > st.viewersAfter {
		u.Viewers, st.viewersAfter, changed = p.viewers, p.viewersTS, true
	}
	// The alert marks at most every alertsEvery, and only when something
	// was committed since: alerts change seldom.
	wall := time.Now()
	if !st.read || (st.alertsGen != gen && wall.Sub(st.alertsAt) >= alertsEvery) {
		marks, err := s.alertMarks(ctx, id.source, id.room, now.Add(-historySpan))
		if err != nil {
			return u, false, err
		}
		if b, _ := json.Marshal(marks); !bytes.Equal(b, st.alerts) {
			u.Alerts, st.alerts, changed = marks, b, true
		}
		st.alertsAt, st.alertsGen = wall, gen
	}
	if !st.read || (st.termsGen != gen && wall.Sub(st.termsAt) >= termsEvery) || wall.Sub(st.termsAt) >= termsIdle {
		var err error
		if u.Terms, err = s.hotTerms(ctx, id.source, id.room, now.Add(-10*time.Minute)); err != nil {
			return u, false, err
		}
		st.termsAt, st.termsGen = wall, gen
		changed = true
	}
	st.read = true
	return u, changed, nil
}

// mergeSlice adds sl's counts to the slice of its time in byT.
func mergeSlice(byT map[int64]*Slice, sl *Slice) {
	o := byT[sl.T]
	if o == nil {
		byT[sl.T] = sl
		return
	}
	o.Messages += sl.Messages
	o.Positive += sl.Positive
	o.Neutral += sl.Neutral
	o.Negative += sl.Negative
	o.Likes += sl.Likes
	o.Gifts += sl.Gifts
	o.GiftValue += sl.GiftValue
}

func sortSlices(s []Slice) {
	slices.SortFunc(s, func(a, b Slice) int { return cmp.Compare(a.T, b.T) })
}

func sortMessages(m []Message) {
	slices.SortStableFunc(m, func(a, b Message) int { return cmp.Compare(a.ID, b.ID) })
}

// readBack adds the room's rows with ids in (lo, hi] to slices and msgs:
// rows of batches that began before the room was watched.
func (s *Server) readBack(ctx context.Context, id roomID, lo, hi int64, byT map[int64]*Slice, msgs *[]Message) error {
	rows, err := s.ro.DB().QueryContext(ctx, `SELECT CAST(strftime('%s', ts) AS INTEGER) / ?1 * ?1 AS b,
		sum(kind IN ('chat','comment','post','superchat')), sum(sentiment = 'positive'), sum(sentiment = 'neutral'), sum(sentiment = 'negative'),
		coalesce(sum(CASE WHEN kind = 'like' THEN max(coalesce(count, 1), 1) END), 0),
		coalesce(sum(CASE WHEN kind = 'gift' THEN max(coalesce(count, 1), 1) END), 0),
		coalesce(sum(CASE WHEN kind IN ('gift', 'superchat') THEN value END), 0)
		FROM items NOT INDEXED WHERE id > ?2 AND id <= ?3 AND source = ?4 AND room = ?5 GROUP BY b ORDER BY b`,
		historyStep, lo, hi, id.source, id.room)
	if err != nil {
		return fmt.Errorf("new rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		sl := &Slice{Viewers: -1}
		if err := rows.Scan(&sl.T, &sl.Messages, &sl.Positive, &sl.Neutral, &sl.Negative, &sl.Likes, &sl.Gifts, &sl.GiftValue); err != nil {
			return fmt.Errorf("new rows: %w", err)
		}
		mergeSlice(byT, sl)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("new rows: %w", err)
	}
	m, err := s.messages(ctx, `NOT INDEXED WHERE id > ? AND id <= ? AND source = ? AND room = ? AND kind IN ('chat','comment','post','superchat','gift')
		ORDER BY id DESC LIMIT `+strconv.Itoa(feedMessages), lo, hi, id.source, id.room)
	if err != nil {
		return err
	}
	*msgs = append(*msgs, m...)
	return nil
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
	// after: the last row of the page's history (0: start from now).
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
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
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.hub.ctx.Done():
			return
		case b, ok := <-ch:
			if !ok {
				return
			}
			if len(b) == 0 {
				fmt.Fprint(w, ": keep-alive\n\n")
			} else {
				fmt.Fprintf(w, "event: update\ndata: %s\n\n", b)
			}
			fl.Flush()
		}
	}
}
