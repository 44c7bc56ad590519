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

type storeRollupKey struct {
	source, room, minute, kind, sentiment string
}

type storeRollupSum struct {
	items, units int64
	value        float64
}

type storeTermKey struct {
	source, room, minute, term, sentiment string
}

// storeRollup holds one batch's sums until flush.
type storeRollup struct {
	rows  map[storeRollupKey]*storeRollupSum
	terms map[storeTermKey]int64
}

// add counts one inserted item, stored with timestamp text ts.
func (r *storeRollup) add(it *item.Item, ts string) {
	if r.rows == nil {
		r.rows = map[storeRollupKey]*storeRollupSum{}
		r.terms = map[storeTermKey]int64{}
	}
	sent := ""
	if it.Score.Scored {
		sent = it.Score.Label.String()
	}
	minute := RollupMinute(ts)
	k := storeRollupKey{it.Source, it.Room, minute, string(it.Kind), sent}
	s := r.rows[k]
	if s == nil {
		s = &storeRollupSum{}
		r.rows[k] = s
	}
	s.items++
	s.units += max(it.Count, 1)
	s.value += it.Value
	for i, t := range it.Score.Terms {
		if slices.Contains(it.Score.Terms[:i], t) {
			continue // stored once (storeAppendTerms)
		}
		r.terms[storeTermKey{it.Source, it.Room, minute, t, sent}]++
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
)

// flush adds the sums to the rollup tables and empties them.
func (r *storeRollup) flush(w *storeBatch) error {
	if len(r.rows) == 0 && len(r.terms) == 0 {
		return nil
	}
	if len(r.rows) > 0 {
		st, err := storePrepareRaw(w.c, storeUpsertRollup)
		if err != nil {
			return fmt.Errorf("store: rollups: prepare: %w", storeExplain(err))
		}
		defer st.close()
		for k, s := range r.rows {
			a := st.args
			a[0].Value, a[1].Value, a[2].Value, a[3].Value, a[4].Value = k.source, k.room, k.minute, k.kind, k.sentiment
			a[5].Value, a[6].Value, a[7].Value = s.items, s.units, s.value
			if err := st.run(); err != nil {
				return fmt.Errorf("store: rollup %s/%s %s: %w", k.source, k.room, k.minute, storeExplain(err))
			}
		}
	}
	if len(r.terms) > 0 {
		st, err := storePrepareRaw(w.c, storeUpsertRollupTerm)
		if err != nil {
			return fmt.Errorf("store: rollup terms: prepare: %w", storeExplain(err))
		}
		defer st.close()
		for k, n := range r.terms {
			a := st.args
			a[0].Value, a[1].Value, a[2].Value, a[3].Value, a[4].Value, a[5].Value = k.source, k.room, k.minute, k.term, k.sentiment, n
			if err := st.run(); err != nil {
				return fmt.Errorf("store: rollup term %s/%s %s: %w", k.source, k.room, k.minute, storeExplain(err))
			}
		}
	}
	clear(r.rows)
	clear(r.terms)
	return nil
}
