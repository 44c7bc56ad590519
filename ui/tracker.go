package ui

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"lookout/store"
)

// tracker keeps the overview's per-room counts in 10-second slices for the
// last hour, and brings them up to date by reading only the rows committed
// since its last look (a rowid range): what the overview costs follows the
// ingest rate, not how many screens show it or how often they refresh.
type tracker struct {
	mu     sync.Mutex
	loaded bool
	lastID int64
	rooms  map[[2]string]*roomAgg
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
// back when it starts (a busy room's hour is read as it arrives instead).
const (
	trackerSpan = time.Hour
	trackerLoad = 15 * time.Minute
)

// update reads what is new and drops slices older than trackerSpan.
func (t *tracker) update(ctx context.Context, db *sql.DB, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var maxID int64
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM items`).Scan(&maxID); err != nil {
		return fmt.Errorf("overview: %w", err)
	}
	var rows *sql.Rows
	var err error
	// substr(ts, 1, 18) is the timestamp cut to its ten seconds.
	const cols = `SELECT source, room, max(platform), substr(ts, 1, 18) AS b, count(*), coalesce(sum(sentiment IS NOT NULL), 0),
		coalesce(sum(sentiment = 'negative'), 0), max(ts), coalesce(max(json_extract(labels, '$.brand')), ''),
		coalesce(sum(sentiment = 'positive'), 0), coalesce(max(json_extract(labels, '$.brand_role')), '') FROM items`
	switch {
	case !t.loaded:
		t.rooms = map[[2]string]*roomAgg{}
		rows, err = db.QueryContext(ctx, cols+` WHERE ts >= ? AND id <= ? GROUP BY source, room, b`, store.FormatTime(now.Add(-trackerLoad)), maxID)
	case maxID > t.lastID:
		rows, err = db.QueryContext(ctx, cols+` NOT INDEXED WHERE id > ? AND id <= ? GROUP BY source, room, b`, t.lastID, maxID)
	}
	if err != nil {
		return fmt.Errorf("overview: %w", err)
	}
	if rows != nil {
		defer rows.Close()
		for rows.Next() {
			var source, room, platform, b, last, brand, role string
			var sl sliceAgg
			if err := rows.Scan(&source, &room, &platform, &b, &sl.n, &sl.scored, &sl.neg, &last, &brand, &sl.pos, &role); err != nil {
				return fmt.Errorf("overview: %w", err)
			}
			ts, err := time.Parse("2006-01-02T15:04:05", b+"0")
			if err != nil {
				continue
			}
			k := [2]string{source, room}
			r, ok := t.rooms[k]
			if !ok {
				r = &roomAgg{slices: map[int64]*sliceAgg{}}
				t.rooms[k] = r
			}
			r.platform = platform
			if brand != "" {
				r.brand, r.role = brand, role
			}
			if last > r.lastTS {
				r.lastTS = last
			}
			a, ok := r.slices[ts.Unix()]
			if !ok {
				a = &sliceAgg{}
				r.slices[ts.Unix()] = a
			}
			a.n += sl.n
			a.scored += sl.scored
			a.neg += sl.neg
			a.pos += sl.pos
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("overview: %w", err)
		}
	}
	t.loaded, t.lastID = true, maxID
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
	return nil
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
