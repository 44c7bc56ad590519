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
	neg, pos             storeExample        // the strongest of each polarity
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
	case sent == "negative" && (g.neg.id == 0 || v < g.neg.score):
		g.neg = storeExample{id, v}
	case sent == "positive" && (g.pos.id == 0 || v > g.pos.score):
		g.pos = storeExample{id, v}
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
	storeUpsertRollup = `INSERT INTO room_minutes (source, room, minute, kind, sentiment, items, units, value)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (source, room, minute, kind, sentiment) DO UPDATE SET
			items = items + excluded.items, units = units + excluded.units, value = value + excluded.value`
	storeUpsertRollupTerm = `INSERT INTO room_minute_terms (source, room, minute, term, sentiment, mentions)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (source, room, minute, term, sentiment) DO UPDATE SET mentions = mentions + excluded.mentions`
	storeInsertExample = `INSERT OR IGNORE INTO room_minute_examples (source, room, sentiment, minute, item_id, score)
		VALUES (?, ?, ?, ?, ?, ?)`
)

// flush adds the sums to the rollup tables and empties them.
func (r *storeRollup) flush(w *storeBatch) error {
	if len(r.groups) == 0 {
		return nil
	}
	var st, tst, est *storeStmt
	defer func() { st.close(); tst.close(); est.close() }()
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
			a[5].Value, a[6].Value, a[7].Value = s.items, s.units, s.value
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
		for _, e := range [...]struct {
			sentiment string
			storeExample
		}{{"negative", g.neg}, {"positive", g.pos}} {
			if e.id == 0 {
				continue
			}
			if est == nil {
				if est, err = storePrepareRaw(w.c, storeInsertExample); err != nil {
					return fmt.Errorf("store: rollup examples: prepare: %w", storeExplain(err))
				}
			}
			a := est.args
			a[0].Value, a[1].Value, a[2].Value, a[3].Value, a[4].Value, a[5].Value = g.source, g.room, e.sentiment, minute, e.id, e.score
			if err := est.run(); err != nil {
				return fmt.Errorf("store: rollup example %s/%s %s: %w", g.source, g.room, minute, storeExplain(err))
			}
		}
	}
	clear(r.groups)
	r.last = nil
	return nil
}
