package ui

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"lookout/store"
)

// tracker keeps the overview's per-room counts in 10-second slices for the
// last hour. It reads the last trackerLoad of rows once, the first time
// the overview is asked for, and from then on adds the counts the store's
// writer publishes with each committed batch (store.LiveSink): what the
// overview costs follows the ingest rate, not how many screens show it or
// how often they refresh, and it never reads rows back.
type tracker struct {
	loadMu sync.Mutex // one load at a time
	mu     sync.Mutex
	// loaded: the counts are up to date; while loading, batches wait in
	// early (bounded; lostEarly when some did not fit) for the load to
	// tell which it has read.
	loaded, loading, lostEarly bool
	early                      []*store.LiveBatch
	// reread: row id ranges (lo, hi] another process wrote, read on the
	// next update; earlyForeign those found while loading.
	reread, earlyForeign [][2]int64
	rooms                map[[2]string]*roomAgg
	prunedAt             time.Time
}

type roomAgg struct {
	platform string
	brand    string // the source's brand label, "" when none
	role     string // its brand_role label (own, competitor), "" when none
	lastTS   string
	slices   map[int64]*sliceAgg // unix seconds of the slice's start
}

type sliceAgg struct{ n, scored, neg, pos int }

// trackerSpan is how much the tracker keeps; trackerLoad how much it reads
// when it starts (a busy room's hour is counted as it arrives instead).
const (
	trackerSpan = time.Hour
	trackerLoad = 15 * time.Minute
)

// committed adds a committed batch's counts; called on the writer's
// goroutine, so it only adds under the lock.
func (t *tracker) committed(b *store.LiveBatch, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.loading:
		if len(t.early) < maxEarly {
			t.early = append(t.early, b)
		} else {
			t.lostEarly = true
		}
	case t.loaded:
		t.add(b)
		if now.Sub(t.prunedAt) >= time.Minute {
			t.prune(now)
		}
	}
}

// foreign notes rows another process wrote, (lo, hi], to read on the next
// update.
func (t *tracker) foreign(lo, hi int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.loading:
		t.earlyForeign = append(t.earlyForeign, [2]int64{lo, hi})
	case t.loaded:
		if n := len(t.reread); n > 0 && len(t.reread) >= maxReread {
			t.reread[n-1][1] = hi // one range over the last and this
			return
		}
		t.reread = append(t.reread, [2]int64{lo, hi})
	}
}

func (t *tracker) add(b *store.LiveBatch) {
	for _, n := range b.Rooms {
		if len(n.Seconds) == 0 {
			continue // samples only
		}
		r := t.room(n.Source, n.Room)
		if n.Platform != "" {
			r.platform = n.Platform
		}
		if n.Brand != "" {
			r.brand, r.role = n.Brand, n.BrandRole
		}
		r.lastTS = max(r.lastTS, n.LastTS)
		for _, s := range n.Seconds {
			at := s.Unix / historyStep * historyStep
			a := r.slices[at]
			if a == nil {
				a = &sliceAgg{}
				r.slices[at] = a
			}
			a.n += int(s.Items)
			if s.Sentiment != "" {
				a.scored += int(s.Items)
			}
			switch s.Sentiment {
			case "negative":
				a.neg += int(s.Items)
			case "positive":
				a.pos += int(s.Items)
			}
		}
	}
}

func (t *tracker) room(source, room string) *roomAgg {
	k := [2]string{source, room}
	r, ok := t.rooms[k]
	if !ok {
		r = &roomAgg{slices: map[int64]*sliceAgg{}}
		t.rooms[k] = r
	}
	return r
}

// prune drops slices older than trackerSpan.
func (t *tracker) prune(now time.Time) {
	t.prunedAt = now
	cut := now.Add(-trackerSpan).Unix()
	for k, r := range t.rooms {
		for at := range r.slices {
			if at < cut {
				delete(r.slices, at)
			}
		}
		if len(r.slices) == 0 {
			delete(t.rooms, k)
		}
	}
}

// update loads the counts the first time (and again if batches were lost
// while loading) and drops slices older than trackerSpan.
func (t *tracker) update(ctx context.Context, db *sql.DB, now time.Time) error {
	t.loadMu.Lock()
	defer t.loadMu.Unlock()
	t.mu.Lock()
	if t.loaded {
		reread := t.reread
		t.reread = nil
		t.mu.Unlock()
		for i, r := range reread {
			rooms, err := trackerReadRows(ctx, db, `NOT INDEXED WHERE id > ? AND id <= ?`, r[0], r[1])
			if err != nil {
				t.mu.Lock()
				t.reread = append(reread[i:], t.reread...) // again next time
				t.mu.Unlock()
				return err
			}
			t.mu.Lock()
			t.merge(rooms)
			t.mu.Unlock()
		}
		t.mu.Lock()
		t.prune(now)
		t.mu.Unlock()
		return nil
	}
	t.loading, t.early, t.earlyForeign, t.lostEarly = true, nil, nil, false
	t.mu.Unlock()
	rooms, top, err := trackerLoadRows(ctx, db, now)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.loading = false
	if err != nil {
		t.early = nil
		return err
	}
	if t.lostEarly {
		// Batches committed during the load did not all fit: load again
		// next time.
		t.early = nil
		return errors.New("overview: more batches than it keeps were committed while it loaded; it loads again")
	}
	t.rooms = rooms
	for _, b := range t.early {
		if b.LastID > top {
			t.add(b) // committed after the load's snapshot
		}
	}
	for _, r := range t.earlyForeign {
		if r[1] > top {
			t.reread = append(t.reread, [2]int64{max(r[0], top), r[1]})
		}
	}
	t.early, t.earlyForeign, t.loaded = nil, nil, true
	t.prune(now)
	return nil
}

// trackerLoadRows reads the last trackerLoad of rows into slices, and the
// newest row id the read covers.
func trackerLoadRows(ctx context.Context, db *sql.DB, now time.Time) (map[[2]string]*roomAgg, int64, error) {
	tx, err := db.BeginTx(ctx, nil) // one snapshot for both reads
	if err != nil {
		return nil, 0, fmt.Errorf("overview: %w", err)
	}
	defer tx.Rollback()
	var top int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM items`).Scan(&top); err != nil {
		return nil, 0, fmt.Errorf("overview: %w", err)
	}
	rooms, err := trackerReadRows(ctx, tx, `WHERE ts >= ? AND id <= ?`, store.FormatTime(now.Add(-trackerLoad)), top)
	return rooms, top, err
}

// trackerReadRows counts the rows that where selects into slices.
func trackerReadRows(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, where string, args ...any) (map[[2]string]*roomAgg, error) {
	// substr(ts, 1, 18) is the timestamp cut to its ten seconds.
	rows, err := db.QueryContext(ctx, `SELECT source, room, max(platform), substr(ts, 1, 18) AS b, count(*), coalesce(sum(sentiment IS NOT NULL), 0),
		coalesce(sum(sentiment = 'negative'), 0), max(ts), coalesce(max(json_extract(labels, '$.brand')), ''),
		coalesce(sum(sentiment = 'positive'), 0), coalesce(max(json_extract(labels, '$.brand_role')), '') FROM items `+where+`
		GROUP BY source, room, b`, args...)
	if err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	defer rows.Close()
	t := tracker{rooms: map[[2]string]*roomAgg{}}
	for rows.Next() {
		var source, room, platform, b, last, brand, role string
		var sl sliceAgg
		if err := rows.Scan(&source, &room, &platform, &b, &sl.n, &sl.scored, &sl.neg, &last, &brand, &sl.pos, &role); err != nil {
			return nil, fmt.Errorf("overview: %w", err)
		}
		ts, err := time.Parse("2006-01-02T15:04:05", b+"0")
		if err != nil {
			continue
		}
		r := t.room(source, room)
		r.platform = platform
		if brand != "" {
			r.brand, r.role = brand, role
		}
		r.lastTS = max(r.lastTS, last)
		a := r.slices[ts.Unix()]
		if a == nil {
			a = &sliceAgg{}
			r.slices[ts.Unix()] = a
		}
		a.n += sl.n
		a.scored += sl.scored
		a.neg += sl.neg
		a.pos += sl.pos
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	return t.rooms, nil
}

// merge adds rooms' slices to the tracker's; under mu.
func (t *tracker) merge(rooms map[[2]string]*roomAgg) {
	for k, in := range rooms {
		r := t.room(k[0], k[1])
		if in.platform != "" {
			r.platform = in.platform
		}
		if in.brand != "" {
			r.brand, r.role = in.brand, in.role
		}
		r.lastTS = max(r.lastTS, in.lastTS)
		for at, a := range in.slices {
			o := r.slices[at]
			if o == nil {
				r.slices[at] = a
				continue
			}
			o.n += a.n
			o.scored += a.scored
			o.neg += a.neg
			o.pos += a.pos
		}
	}
}

// roomCounts are a room's overview figures.
type roomCounts struct {
	platform, lastTS, brand, role      string
	lastMin, last10m, scored5, neg5    int
	hour, scoredHour, negHour, posHour int
}

func (t *tracker) counts(now time.Time) map[[2]string]roomCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[[2]string]roomCounts, len(t.rooms))
	n := now.Unix()
	for k, r := range t.rooms {
		c := roomCounts{platform: r.platform, lastTS: r.lastTS, brand: r.brand, role: r.role}
		for at, a := range r.slices {
			// A slice counts towards "the last minute" when it began at
			// or after a minute ago: the figures are exact to a slice.
			if at >= n-60 {
				c.lastMin += a.n
			}
			if at >= n-600 {
				c.last10m += a.n
			}
			if at >= n-300 {
				c.scored5 += a.scored
				c.neg5 += a.neg
			}
			c.hour += a.n
			c.scoredHour += a.scored
			c.negHour += a.neg
			c.posHour += a.pos
		}
		out[k] = c
	}
	return out
}
