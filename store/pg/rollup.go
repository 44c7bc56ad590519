package pg

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"lookout/item"
)

// rollup sums a batch's new items per source, room, minute, kind and
// sentiment (and per hot term) and adds the sums to room_minutes and
// room_minute_terms in the batch's transaction, one upsert per table,
// as the SQLite writer does. Edits and deletes are applied by the
// items_rollup_update trigger.
type rollup struct {
	sums  map[rollupKey]*rollupSum
	terms map[rollupTermKey]int64
}

type rollupKey struct {
	source, room    string
	minute          time.Time
	kind, sentiment string
}

type rollupTermKey struct {
	source, room    string
	minute          time.Time
	term, sentiment string
}

type rollupSum struct {
	items, units int64
	value        float64
	bestID       int64 // negative and positive: the strongest item
	bestScore    float64
}

func (r *rollup) add(it *item.Item, ts time.Time, id int64) {
	if r.sums == nil {
		r.sums, r.terms = map[rollupKey]*rollupSum{}, map[rollupTermKey]int64{}
	}
	sent := ""
	if it.Score.Scored {
		sent = it.Score.Label.String()
	}
	minute := ts.UTC().Truncate(time.Minute)
	src, room := clean(it.Source), clean(it.Room)
	k := rollupKey{src, room, minute, string(it.Kind), sent}
	s := r.sums[k]
	if s == nil {
		s = &rollupSum{}
		r.sums[k] = s
	}
	s.items++
	s.units += int64(max(it.Count, 1))
	s.value += it.Value
	switch v := it.Score.Value; {
	case sent == "negative" && (s.bestID == 0 || v < s.bestScore),
		sent == "positive" && (s.bestID == 0 || v > s.bestScore):
		s.bestID, s.bestScore = id, v
	}
	var seen []string
	for _, t := range it.Score.Terms {
		t = clean(t)
		if slices.Contains(seen, t) {
			continue // stored once
		}
		seen = append(seen, t)
		r.terms[rollupTermKey{src, room, minute, t, sent}]++
	}
}

const upsertRollup = `INSERT INTO room_minutes AS m (source, room, minute, kind, sentiment, items, units, value, best_id, best_score)
	SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::bigint[], $7::bigint[],
		$8::float8[], $9::bigint[], $10::float8[])
	ON CONFLICT (source, room, minute, kind, sentiment) DO UPDATE SET
		items = m.items + excluded.items, units = m.units + excluded.units, value = m.value + excluded.value,
		best_id = CASE WHEN ` + better + ` THEN excluded.best_id ELSE m.best_id END,
		best_score = CASE WHEN ` + better + ` THEN excluded.best_score ELSE m.best_score END`

// better: the batch's strongest beats the stored one.
const better = `excluded.best_id IS NOT NULL AND (m.best_id IS NULL OR
	m.sentiment = 'negative' AND excluded.best_score < m.best_score OR m.sentiment = 'positive' AND excluded.best_score > m.best_score)`

const upsertRollupTerms = `INSERT INTO room_minute_terms AS m (source, room, minute, term, sentiment, mentions)
	SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::bigint[])
	ON CONFLICT (source, room, minute, term, sentiment) DO UPDATE SET mentions = m.mentions + excluded.mentions`

func (r *rollup) flush(w *batch) error {
	if len(r.sums) > 0 {
		n := len(r.sums)
		src, room, kind, sent := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		minute := make([]time.Time, 0, n)
		items, units := make([]int64, 0, n), make([]int64, 0, n)
		value := make([]float64, 0, n)
		bestID, bestScore := make([]*int64, 0, n), make([]*float64, 0, n)
		// Keys in one order in every transaction, so that two processors
		// adding to the same rows lock them in the same order (no
		// deadlock).
		keys := slices.SortedFunc(maps.Keys(r.sums), func(a, b rollupKey) int {
			return cmp.Or(strings.Compare(a.source, b.source), strings.Compare(a.room, b.room), a.minute.Compare(b.minute),
				strings.Compare(a.kind, b.kind), strings.Compare(a.sentiment, b.sentiment))
		})
		for _, k := range keys {
			s := r.sums[k]
			src, room, kind, sent, minute = append(src, k.source), append(room, k.room), append(kind, k.kind), append(sent, k.sentiment), append(minute, k.minute)
			items, units, value = append(items, s.items), append(units, s.units), append(value, s.value)
			var id *int64
			var sc *float64
			if s.bestID != 0 {
				id, sc = &s.bestID, &s.bestScore
			}
			bestID, bestScore = append(bestID, id), append(bestScore, sc)
		}
		if _, err := w.tx.Exec(w.ctx, upsertRollup, src, room, minute, kind, sent, items, units, value, bestID, bestScore); err != nil {
			return fmt.Errorf("rollups: %w", err)
		}
		clear(r.sums)
	}
	if len(r.terms) > 0 {
		n := len(r.terms)
		src, room, term, sent := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		minute, mentions := make([]time.Time, 0, n), make([]int64, 0, n)
		keys := slices.SortedFunc(maps.Keys(r.terms), func(a, b rollupTermKey) int {
			return cmp.Or(strings.Compare(a.source, b.source), strings.Compare(a.room, b.room), a.minute.Compare(b.minute),
				strings.Compare(a.term, b.term), strings.Compare(a.sentiment, b.sentiment))
		})
		for _, k := range keys {
			c := r.terms[k]
			src, room, term, sent, minute = append(src, k.source), append(room, k.room), append(term, k.term), append(sent, k.sentiment), append(minute, k.minute)
			mentions = append(mentions, c)
		}
		if _, err := w.tx.Exec(w.ctx, upsertRollupTerms, src, room, minute, term, sent, mentions); err != nil {
			return fmt.Errorf("rollup terms: %w", err)
		}
		clear(r.terms)
	}
	return nil
}
