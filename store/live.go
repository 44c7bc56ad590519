package store

import (
	"slices"

	"lookout/item"
)

// Live views (the dashboard's overview and room stream) learn what each
// batch added from the writer itself, after the batch commits, instead of
// reading the rows back: a LiveSink set with SetLiveSink names the rooms it
// watches as a batch starts and receives, once the batch is committed,
// every room's per-second counts and each watched room's newest items and
// viewers. A batch that rolls back publishes nothing.

// LiveRoom names a room.
type LiveRoom struct{ Source, Room string }

// LiveSink receives committed batches. Both methods are called on the
// writing goroutine and must return at once (no I/O, no waiting on a
// reader).
type LiveSink interface {
	// Watched is called as a batch starts: the rooms whose news to collect
	// (read, never changed, by the writer) and a tag handed back in
	// LiveBatch.Tag.
	Watched() (rooms map[LiveRoom]bool, tag uint64)
	// Committed receives the batch once it is committed. The sink may
	// keep b.
	Committed(b *LiveBatch)
}

// LiveBatch is what one committed batch added.
type LiveBatch struct {
	Tag uint64 // as Watched returned it when the batch started
	// FirstID and LastID bound the row ids of the batch's new items (both 0
	// when it added none). Batches commit one at a time and a batch's rows
	// get ids above every committed row, so a reader that has seen every
	// row up to LastID has seen this batch.
	FirstID, LastID int64
	Rooms           []*LiveNews // rooms with new items or samples, in the order the batch wrote them
}

// LiveNews is what a batch added to one room.
type LiveNews struct {
	LiveRoom
	Watched bool // the sink watched the room when the batch began: Latest and Viewers are filled
	// Platform, Brand and BrandRole are those of the room's first new item
	// with a platform (the brand and brand_role labels, "" when none):
	// the labels are the source's and room's, the same for all its items.
	// LastTS is the greatest stored timestamp of its new items.
	Platform, Brand, BrandRole, LastTS string
	Seconds                            []LiveSecond // sums per second, kind and sentiment (a key may repeat: add them up)
	Latest                             []LiveItem   // the newest items of the feed kinds (LiveLatest at most), oldest first
	// Viewers is the newest "viewers" metric sample of the batch (by
	// timestamp), ViewersTS its stored timestamp ("" when none).
	Viewers   float64
	ViewersTS string

	// ring holds the newest feed items until the batch is published (a
	// ring starting at head once full); Latest is built from it.
	ring []liveRef
	head int
}

// liveRef is an inserted item of the batch, its row id and timestamp text.
type liveRef struct {
	it *item.Item
	id int64
	ts string
}

// LiveSecond sums a room's new items of one second, kind and sentiment
// ("" when unscored), as the rollups do per minute: units count an item's
// Count (at least 1), value its Value.
type LiveSecond struct {
	Unix      int64
	Kind      item.Kind
	Sentiment string
	Items     int64
	Units     int64
	Value     float64
}

// LiveItem is one new item as a live feed shows it.
type LiveItem struct {
	ID        int64
	TS        string // stored timestamp text
	Kind      item.Kind
	Author    string
	Text      string
	Sentiment string
	Value     float64
	Keywords  []string // distinct matched keywords
}

// LiveLatest is how many of a room's newest items one batch reports.
const LiveLatest = 64

// liveFeedKind: the kinds a feed shows (messages and gifts; not entries,
// likes or metrics).
func liveFeedKind(k item.Kind) bool {
	switch k {
	case item.KindChat, item.KindComment, item.KindPost, item.KindSuperChat, item.KindGift:
		return true
	}
	return false
}

// SetLiveSink makes l receive every committed batch from now on (nil
// stops it). One sink at a time.
func (s *Store) SetLiveSink(l LiveSink) {
	if l == nil {
		s.live.Store(nil)
		return
	}
	s.live.Store(&l)
}

// LiveDelivering reports whether a batch of this store is committing, or
// committed and not yet handed to the sink. Rows that another process
// wrote to the same file are never handed over: a sink that reads the
// newest row id and then finds LiveDelivering false knows that every batch
// of this store up to that row has reached it, so the rows between its
// batches are another writer's.
func (s *Store) LiveDelivering() bool { return s.liveDelivering.Load() != 0 }

// storeLive collects one batch's news.
type storeLive struct {
	sink  LiveSink
	rooms map[LiveRoom]bool
	batch LiveBatch
	news  map[LiveRoom]*LiveNews
	last  *LiveNews // the previous item's room
}

func (l *storeLive) begin(s *Store) {
	p := s.live.Load()
	if p == nil {
		return
	}
	l.sink = *p
	l.rooms, l.batch.Tag = l.sink.Watched()
}

// room returns the news of the item's room.
func (l *storeLive) room(it *item.Item) *LiveNews {
	if l.last != nil && l.last.Source == it.Source && l.last.Room == it.Room {
		return l.last
	}
	k := LiveRoom{it.Source, it.Room}
	if l.last = l.news[k]; l.last == nil {
		if l.news == nil {
			l.news = map[LiveRoom]*LiveNews{}
		}
		l.last = &LiveNews{LiveRoom: k, Watched: l.rooms[k]}
		l.news[k] = l.last
		l.batch.Rooms = append(l.batch.Rooms, l.last)
	}
	return l.last
}

// add counts an inserted item, stored with timestamp text ts as row id.
func (l *storeLive) add(it *item.Item, ts string, unix, id int64) {
	if l.sink == nil {
		return
	}
	if l.batch.FirstID == 0 || id < l.batch.FirstID {
		l.batch.FirstID = id
	}
	l.batch.LastID = max(l.batch.LastID, id)
	n := l.room(it)
	if n.Platform == "" && it.Platform != "" {
		n.Platform, n.Brand, n.BrandRole = it.Platform, it.Labels["brand"], it.Labels["brand_role"]
	}
	n.LastTS = max(n.LastTS, ts)
	sent := ""
	if it.Score.Scored {
		sent = it.Score.Label.String()
	}
	var s *LiveSecond
	// Items come in time order: the sum is nearly always among the last.
	for i := len(n.Seconds) - 1; i >= max(0, len(n.Seconds)-8); i-- {
		if x := &n.Seconds[i]; x.Unix == unix && x.Kind == it.Kind && x.Sentiment == sent {
			s = x
			break
		}
	}
	if s == nil {
		n.Seconds = append(n.Seconds, LiveSecond{Unix: unix, Kind: it.Kind, Sentiment: sent})
		s = &n.Seconds[len(n.Seconds)-1]
	}
	s.Items++
	s.Units += max(it.Count, 1)
	s.Value += it.Value
	if !n.Watched || !liveFeedKind(it.Kind) {
		return
	}
	// The item is read when the batch is published, before WriteItems
	// returns: only the newest LiveLatest are copied.
	r := liveRef{it: it, id: id, ts: ts}
	if len(n.ring) < LiveLatest {
		n.ring = append(n.ring, r)
		return
	}
	n.ring[n.head] = r
	n.head = (n.head + 1) % LiveLatest
}

// metric notes an inserted metric sample.
func (l *storeLive) metric(it *item.Item, ts string) {
	if l.sink == nil || it.Metric != "viewers" {
		return
	}
	if n := l.room(it); n.Watched && ts >= n.ViewersTS {
		n.Viewers, n.ViewersTS = it.Value, ts
	}
}

// committed hands the batch to the sink.
func (l *storeLive) committed() {
	if l.sink == nil {
		return
	}
	for _, n := range l.batch.Rooms {
		if len(n.ring) == 0 {
			continue
		}
		n.Latest = make([]LiveItem, 0, len(n.ring))
		for i := range n.ring {
			r := n.ring[(n.head+i)%len(n.ring)]
			it := r.it
			m := LiveItem{ID: r.id, TS: r.ts, Kind: it.Kind, Author: it.Author, Text: it.Text, Value: it.Value}
			if it.Score.Scored {
				m.Sentiment = it.Score.Label.String()
			}
			for _, g := range it.Score.Groups {
				for _, kw := range g.Terms {
					if kw != "" && !slices.Contains(m.Keywords, kw) {
						m.Keywords = append(m.Keywords, kw)
					}
				}
			}
			n.Latest = append(n.Latest, m)
		}
		n.ring, n.head = nil, 0
	}
	l.sink.Committed(&l.batch)
}
