package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"lookout/item"
)

// ReplayItems calls fn for every stored item and metric sample with
// from <= ts < to, in timestamp order (items before metric samples at the
// same instant), with Score restored: label, value, probability, language,
// keyword groups and terms (terms sorted). Raw payloads are not loaded. An error from fn
// stops the replay and is returned as is.
//
// Items their authors deleted are left out; edited ones come as their
// current version.
//
// All cursors run on one connection, so they read one snapshot of the
// database even while the daemon keeps writing.
func (s *Store) ReplayItems(ctx context.Context, from, to time.Time, fn func(item.Item) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: replay: %w", storeExplain(err))
	}
	defer conn.Close()
	lo, hi := FormatTime(from), FormatTime(to)

	itemRows, err := conn.QueryContext(ctx, `SELECT id, source, platform, room, kind, item_id, author_id, author,
		text, url, ts, metric, value, count, sentiment, score, prob, lang, labels
		FROM items WHERE ts >= ? AND ts < ? AND deleted_at IS NULL ORDER BY ts, id`, lo, hi)
	if err != nil {
		return fmt.Errorf("store: replay items: %w", storeExplain(err))
	}
	defer itemRows.Close()
	groupRows, err := conn.QueryContext(ctx, `SELECT g.item_id, g.grp, g.category, g.severity, g.keyword
		FROM items i JOIN item_groups g ON g.item_id = i.id
		WHERE i.ts >= ? AND i.ts < ? AND i.deleted_at IS NULL ORDER BY i.ts, i.id, g.rowid`, lo, hi)
	if err != nil {
		return fmt.Errorf("store: replay groups: %w", storeExplain(err))
	}
	defer groupRows.Close()
	termRows, err := conn.QueryContext(ctx, `SELECT t.item_id, t.term
		FROM items i JOIN item_terms t ON t.item_id = i.id
		WHERE i.ts >= ? AND i.ts < ? AND i.deleted_at IS NULL ORDER BY i.ts, i.id, t.term`, lo, hi)
	if err != nil {
		return fmt.Errorf("store: replay terms: %w", storeExplain(err))
	}
	defer termRows.Close()
	metricRows, err := conn.QueryContext(ctx, `SELECT source, platform, room, name, value, ts, item_id, labels
		FROM metrics WHERE ts >= ? AND ts < ? ORDER BY ts, id`, lo, hi)
	if err != nil {
		return fmt.Errorf("store: replay metrics: %w", storeExplain(err))
	}
	defer metricRows.Close()

	r := storeReplayer{items: itemRows, groups: groupRows, terms: termRows, metrics: metricRows}
	if err := r.start(); err != nil {
		return err
	}
	for r.haveItem || r.haveMetric {
		if err := ctx.Err(); err != nil {
			return err
		}
		var next item.Item
		if r.haveItem && (!r.haveMetric || !r.metric.TS.Before(r.item.TS)) {
			next = r.item
			if err := r.attach(&next); err != nil {
				return err
			}
			if err := r.nextItem(); err != nil {
				return err
			}
		} else {
			next = r.metric
			if err := r.nextMetric(); err != nil {
				return err
			}
		}
		if err := fn(next); err != nil {
			return err
		}
	}
	return nil
}

// storeReplayer merges the four ordered cursors of a replay.
type storeReplayer struct {
	items, groups, terms, metrics *sql.Rows

	item, metric         item.Item
	itemRowID            int64
	haveItem, haveMetric bool

	// The group and term cursors stay one row ahead.
	groupID, termID     int64
	haveGroup, haveTerm bool
	group               item.Match
	groupKeyword        string
	term                string
}

func (r *storeReplayer) start() error {
	if err := r.nextItem(); err != nil {
		return err
	}
	if err := r.nextMetric(); err != nil {
		return err
	}
	if err := r.nextGroup(); err != nil {
		return err
	}
	return r.nextTerm()
}

func (r *storeReplayer) nextItem() error {
	r.haveItem = r.items.Next()
	if !r.haveItem {
		if err := r.items.Err(); err != nil {
			return fmt.Errorf("store: replay items: %w", err)
		}
		return nil
	}
	var (
		kind, ts                                string
		id, authorID, author, text, url, metric sql.NullString
		sentiment, lang, labels                 sql.NullString
		value, score, prob                      sql.NullFloat64
		count                                   sql.NullInt64
		it                                      item.Item
	)
	if err := r.items.Scan(&r.itemRowID, &it.Source, &it.Platform, &it.Room, &kind, &id, &authorID, &author,
		&text, &url, &ts, &metric, &value, &count, &sentiment, &score, &prob, &lang, &labels); err != nil {
		return fmt.Errorf("store: replay items: %w", err)
	}
	t, err := ParseTime(ts)
	if err != nil {
		return fmt.Errorf("store: replay item row %d: %w", r.itemRowID, err)
	}
	it.Kind, it.TS = item.Kind(kind), t
	it.ID, it.AuthorID, it.Author, it.Text, it.URL, it.Metric = id.String, authorID.String, author.String, text.String, url.String, metric.String
	it.Value, it.Count, it.HasValue = value.Float64, count.Int64, value.Valid
	if sentiment.Valid {
		it.Score = item.Score{Scored: true, Label: item.ParseLabel(sentiment.String), Value: score.Float64,
			Prob: prob.Float64, Lang: lang.String}
	}
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &it.Labels); err != nil {
			return fmt.Errorf("store: replay item row %d labels: %w", r.itemRowID, err)
		}
	}
	r.item = it
	return nil
}

func (r *storeReplayer) nextMetric() error {
	r.haveMetric = r.metrics.Next()
	if !r.haveMetric {
		if err := r.metrics.Err(); err != nil {
			return fmt.Errorf("store: replay metrics: %w", err)
		}
		return nil
	}
	var ts string
	var id, labels sql.NullString
	it := item.Item{Kind: item.KindMetric}
	if err := r.metrics.Scan(&it.Source, &it.Platform, &it.Room, &it.Metric, &it.Value, &ts, &id, &labels); err != nil {
		return fmt.Errorf("store: replay metrics: %w", err)
	}
	t, err := ParseTime(ts)
	if err != nil {
		return fmt.Errorf("store: replay metric: %w", err)
	}
	it.TS, it.ID = t, id.String
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &it.Labels); err != nil {
			return fmt.Errorf("store: replay metric labels: %w", err)
		}
	}
	r.metric = it
	return nil
}

func (r *storeReplayer) nextGroup() error {
	r.haveGroup = r.groups.Next()
	if !r.haveGroup {
		if err := r.groups.Err(); err != nil {
			return fmt.Errorf("store: replay groups: %w", err)
		}
		return nil
	}
	if err := r.groups.Scan(&r.groupID, &r.group.Group, &r.group.Category, &r.group.Severity, &r.groupKeyword); err != nil {
		return fmt.Errorf("store: replay groups: %w", err)
	}
	return nil
}

func (r *storeReplayer) nextTerm() error {
	r.haveTerm = r.terms.Next()
	if !r.haveTerm {
		if err := r.terms.Err(); err != nil {
			return fmt.Errorf("store: replay terms: %w", err)
		}
		return nil
	}
	if err := r.terms.Scan(&r.termID, &r.term); err != nil {
		return fmt.Errorf("store: replay terms: %w", err)
	}
	return nil
}

// attach moves the current item's group and term rows onto it. The cursors
// share the items' (ts, id) order, so an item's rows are next in line.
func (r *storeReplayer) attach(it *item.Item) error {
	for r.haveGroup && r.groupID == r.itemRowID {
		n := len(it.Score.Groups)
		if n == 0 || it.Score.Groups[n-1].Group != r.group.Group {
			it.Score.Groups = append(it.Score.Groups, item.Match{Group: r.group.Group, Category: r.group.Category, Severity: r.group.Severity})
			n++
		}
		if r.groupKeyword != "" {
			it.Score.Groups[n-1].Terms = append(it.Score.Groups[n-1].Terms, r.groupKeyword)
		}
		if err := r.nextGroup(); err != nil {
			return err
		}
	}
	for r.haveTerm && r.termID == r.itemRowID {
		it.Score.Terms = append(it.Score.Terms, r.term)
		if err := r.nextTerm(); err != nil {
			return err
		}
	}
	return nil
}
