package store

import (
	"fmt"
	"slices"

	"lookout/item"
)

// Rollups (migration 0012): the writer sums each batch's new items per
// source, room, minute, kind and sentiment (and per hot term) in memory and
// adds the sums to room_minutes and room_minute_terms in the batch's
// transaction, one upsert per distinct key, so a batch of a busy room costs
// a handful of rows, not one per item. Edits and deletes are applied by the
// items_rollup_update trigger.

// RollupMinute is the minute key of a stored timestamp (FormatTime's text):
// '2026-11-25T12:00:00Z'.
func RollupMinute(ts string) string {
	if len(ts) < 16 {
		return ts
	}
	return ts[:16] + ":00Z"
}

// storeRollupGroup is one source, room and minute of a batch.
type storeRollupGroup struct {
	source, room, prefix string // prefix: the timestamp's first 16 characters
	sums                 []storeRollupSum
	terms                map[[2]string]int64 // term, sentiment → items
}

// storeExample is an example candidate: an item's row id and score.
type storeExample struct {
	id    int64
	score float64
}

type storeRollupSum struct {
	kind, sentiment string
	items, units    int64
	value           float64
	best            storeExample // negative and positive: the strongest item
}

// storeRollup holds one batch's sums until flush. Items come room by room
// (storeRoomOrder) and in time order, so the last group is nearly always
// the next item's.
type storeRollup struct {
	groups map[[3]string]*storeRollupGroup
	last   *storeRollupGroup
}

// add counts one inserted item, stored with timestamp text ts as row id.
func (r *storeRollup) add(it *item.Item, ts string, id int64) {
	prefix := ts[:min(16, len(ts))]
	g := r.last
	if g == nil || g.prefix != prefix || g.room != it.Room || g.source != it.Source {
		k := [3]string{it.Source, it.Room, prefix}
		if g = r.groups[k]; g == nil {
			if r.groups == nil {
				r.groups = map[[3]string]*storeRollupGroup{}
			}
			g = &storeRollupGroup{source: it.Source, room: it.Room, prefix: prefix}
			r.groups[k] = g
		}
		r.last = g
	}
	sent := ""
	if it.Score.Scored {
		sent = it.Score.Label.String()
	}
	kind := string(it.Kind)
	var s *storeRollupSum
	for i := range g.sums {
		if g.sums[i].kind == kind && g.sums[i].sentiment == sent {
			s = &g.sums[i]
			break
		}
	}
	if s == nil {
		g.sums = append(g.sums, storeRollupSum{kind: kind, sentiment: sent})
		s = &g.sums[len(g.sums)-1]
	}
	s.items++
	s.units += max(it.Count, 1)
	s.value += it.Value
	switch v := it.Score.Value; {
	case sent == "negative" && (s.best.id == 0 || v < s.best.score),
		sent == "positive" && (s.best.id == 0 || v > s.best.score):
		s.best = storeExample{id, v}
	}
	for i, t := range it.Score.Terms {
		if slices.Contains(it.Score.Terms[:i], t) {
			continue // stored once (storeAppendTerms)
		}
		if g.terms == nil {
			g.terms = map[[2]string]int64{}
		}
		g.terms[[2]string{t, sent}]++
	}
}

const (
	storeUpsertRollup = `INSERT INTO room_minutes (source, room, minute, kind, sentiment, items, units, value, best_id, best_score)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (source, room, minute, kind, sentiment) DO UPDATE SET
			items = items + excluded.items, units = units + excluded.units, value = value + excluded.value,
			best_id = CASE WHEN ` + storeBetter + ` THEN excluded.best_id ELSE best_id END,
			best_score = CASE WHEN ` + storeBetter + ` THEN excluded.best_score ELSE best_score END`
	// storeBetter: the new batch's strongest beats the stored one.
	storeBetter = `excluded.best_id IS NOT NULL AND (best_id IS NULL OR
		sentiment = 'negative' AND excluded.best_score < best_score OR sentiment = 'positive' AND excluded.best_score > best_score)`
	storeUpsertRollupTerm = `INSERT INTO room_minute_terms (source, room, minute, term, sentiment, mentions)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (source, room, minute, term, sentiment) DO UPDATE SET mentions = mentions + excluded.mentions`
)

// flush adds the sums to the rollup tables and empties them.
func (r *storeRollup) flush(w *storeBatch) error {
	if len(r.groups) == 0 {
		return nil
	}
	var st, tst *storeStmt
	defer func() { st.close(); tst.close() }()
	var err error
	for _, g := range r.groups {
		minute := g.prefix + ":00Z"
		for _, s := range g.sums {
			if st == nil {
				if st, err = storePrepareRaw(w.c, storeUpsertRollup); err != nil {
					return fmt.Errorf("store: rollups: prepare: %w", storeExplain(err))
				}
			}
			a := st.args
			a[0].Value, a[1].Value, a[2].Value, a[3].Value, a[4].Value = g.source, g.room, minute, s.kind, s.sentiment
			a[5].Value, a[6].Value, a[7].Value, a[8].Value, a[9].Value = s.items, s.units, s.value, nil, nil
			if s.best.id != 0 {
				a[8].Value, a[9].Value = s.best.id, s.best.score
			}
			if err := st.run(); err != nil {
				return fmt.Errorf("store: rollup %s/%s %s: %w", g.source, g.room, minute, storeExplain(err))
			}
		}
		for k, n := range g.terms {
			if tst == nil {
				if tst, err = storePrepareRaw(w.c, storeUpsertRollupTerm); err != nil {
					return fmt.Errorf("store: rollup terms: prepare: %w", storeExplain(err))
				}
			}
			a := tst.args
			a[0].Value, a[1].Value, a[2].Value, a[3].Value, a[4].Value, a[5].Value = g.source, g.room, minute, k[0], k[1], n
			if err := tst.run(); err != nil {
				return fmt.Errorf("store: rollup term %s/%s %s: %w", g.source, g.room, minute, storeExplain(err))
			}
		}
	}
	clear(r.groups)
	r.last = nil
	return nil
}
