package pg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"lookout/item"
	"lookout/store"
)

// WriteItems stores a batch in one transaction and returns how many items
// and metric samples were new, with the SQLite store's rules: an item whose
// (Source, ID) is stored already is dropped (dedupe, not loss), an item
// without an ID is always stored; edits and deletes (item.Change) apply
// after the batch's new items; state items (source_state, room_profiles)
// are written last, in the batch's transaction. On error nothing of the
// batch is stored.
//
// Text PostgreSQL cannot hold (invalid UTF-8, NUL characters) is stored
// with those bytes replaced by U+FFFD, so that no chat line is refused for
// them; raw_payloads keeps the bytes as received.
func (s *Store) WriteItems(ctx context.Context, items []item.Item) (int, error) {
	if len(items) == 0 {
		return 0, nil
	}
	if s.readOnly {
		return 0, errors.New("pg: write items: the store is open read-only")
	}
	var inserted int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		w := batch{tx: tx, ctx: ctx, keepRaw: !s.dropRaw.Load(), now: time.Now().UTC()}
		var err error
		inserted, err = w.write(items)
		return err
	})
	if err != nil {
		if Rejects(err) {
			return 0, fmt.Errorf("pg: write %d items: %w: %w", len(items), store.ErrRejected, err)
		}
		return 0, fmt.Errorf("pg: write %d items: %w", len(items), err)
	}
	return inserted, nil
}

type batch struct {
	tx      pgx.Tx
	ctx     context.Context
	keepRaw bool
	now     time.Time
	roll    rollup
}

func (w *batch) write(items []item.Item) (int, error) {
	var news, metrics []*item.Item
	seen := map[[2]string]bool{}
	for i := range items {
		it := &items[i]
		if it.Kind == item.KindState || it.Change != "" {
			continue
		}
		if it.ID != "" {
			k := [2]string{it.Source, it.ID}
			if it.Kind == item.KindMetric {
				k[0] = "\x00m" + k[0]
			}
			if seen[k] {
				continue // a copy within the batch: the first is stored
			}
			seen[k] = true
		}
		if it.Kind == item.KindMetric {
			metrics = append(metrics, it)
		} else {
			news = append(news, it)
		}
	}
	n, err := w.insertMetrics(metrics)
	if err != nil {
		return 0, err
	}
	// Grouped by source and room, arrival order within each: of two
	// copies the first to arrive is stored, and one room's rows are
	// neighbours in the indexes.
	slices.SortStableFunc(news, func(a, b *item.Item) int {
		if c := strings.Compare(a.Source, b.Source); c != 0 {
			return c
		}
		return strings.Compare(a.Room, b.Room)
	})
	k, err := w.insertItems(news, false)
	if err != nil {
		return 0, err
	}
	n += k
	if err := w.roll.flush(w); err != nil {
		return 0, err
	}
	for i := range items {
		it := &items[i]
		if it.Change == "" || it.Kind == item.KindState || it.ID == "" {
			continue
		}
		k, err := w.change(it)
		if err != nil {
			return 0, err
		}
		n += k
	}
	if err := w.roll.flush(w); err != nil {
		return 0, err
	}
	for i := range items {
		if items[i].Kind == item.KindState {
			if err := w.state(&items[i]); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// clean makes s storable as PostgreSQL text.
func clean(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func nullText(s string) *string {
	if s == "" {
		return nil
	}
	c := clean(s)
	return &c
}

func labelsJSON(m map[string]string) (*string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[clean(k)] = clean(v)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func termsJSON(terms []string) (*string, error) {
	if len(terms) == 0 {
		return nil, nil
	}
	var out []string
	for _, t := range terms {
		t = clean(t)
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func (w *batch) itemTS(it *item.Item) time.Time {
	if it.TS.IsZero() {
		return w.now // an undated item is kept, stamped with its arrival
	}
	return it.TS.UTC()
}

func (w *batch) insertMetrics(ms []*item.Item) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	n := len(ms)
	src, plat, room, name, ids, labels := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]*string, n), make([]*string, n)
	vals, ts := make([]float64, n), make([]time.Time, n)
	for i, it := range ms {
		src[i], plat[i], room[i], name[i] = clean(it.Source), clean(it.Platform), clean(it.Room), clean(it.Metric)
		vals[i], ts[i], ids[i] = it.Value, w.itemTS(it), nullText(it.ID)
		var err error
		if labels[i], err = labelsJSON(it.Labels); err != nil {
			return 0, fmt.Errorf("metric %s/%s labels: %w", it.Source, it.Room, err)
		}
	}
	tag, err := w.tx.Exec(w.ctx, `INSERT INTO metrics (source, platform, room, name, value, ts, item_id, labels)
		SELECT s, p, r, n, v, t, i, l::jsonb
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::timestamptz[], $7::text[], $8::text[])
			AS u(s, p, r, n, v, t, i, l)
		ON CONFLICT (source, item_id) DO NOTHING`, src, plat, room, name, vals, ts, ids, labels)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// itemRow holds the columns of items the writer fills.
type itemRow struct {
	source, platform, room, kind                                         []string
	itemID, authorID, author, text, url, metric, sentiment, lang, labels []*string
	terms                                                                []*string
	ts                                                                   []time.Time
	value, score, prob                                                   []*float64
	count                                                                []*int64
	ids                                                                  []int64
}

func (r *itemRow) add(w *batch, it *item.Item, id int64) error {
	r.ids = append(r.ids, id)
	r.source = append(r.source, clean(it.Source))
	r.platform = append(r.platform, clean(it.Platform))
	r.room = append(r.room, clean(it.Room))
	r.kind = append(r.kind, string(it.Kind))
	r.itemID = append(r.itemID, nullText(it.ID))
	r.authorID = append(r.authorID, nullText(it.AuthorID))
	r.author = append(r.author, nullText(it.Author))
	r.text = append(r.text, nullText(it.Text))
	r.url = append(r.url, nullText(it.URL))
	r.ts = append(r.ts, w.itemTS(it))
	metric := it.Metric
	if metric == "" && (it.Kind == item.KindGift || it.Kind == item.KindSuperChat) {
		metric = "gift_value" // what value holds, by the name rules use for it
	}
	r.metric = append(r.metric, nullText(metric))
	var value *float64
	if it.Value != 0 || it.HasValue || it.Metric != "" || it.Kind == item.KindGift || it.Kind == item.KindSuperChat {
		v := it.Value
		value = &v
	}
	r.value = append(r.value, value)
	var count *int64
	if it.Count != 0 || it.Kind == item.KindGift {
		c := int64(it.Count)
		count = &c
	}
	r.count = append(r.count, count)
	var sent, lang *string
	var score, prob *float64
	if it.Score.Scored {
		l := it.Score.Label.String()
		sc, pr := it.Score.Value, it.Score.Prob
		sent, score, prob, lang = &l, &sc, &pr, nullText(it.Score.Lang)
	}
	r.sentiment, r.score, r.prob, r.lang = append(r.sentiment, sent), append(r.score, score), append(r.prob, prob), append(r.lang, lang)
	labels, err := labelsJSON(it.Labels)
	if err != nil {
		return fmt.Errorf("item %s/%s labels: %w", it.Source, it.ID, err)
	}
	terms, err := termsJSON(it.Score.Terms)
	if err != nil {
		return fmt.Errorf("item %s/%s terms: %w", it.Source, it.ID, err)
	}
	r.labels, r.terms = append(r.labels, labels), append(r.terms, terms)
	return nil
}

const insertItems = `INSERT INTO items (id, source, platform, room, kind, item_id, author_id, author, text, url, ts,
		metric, value, count, sentiment, score, prob, lang, labels, terms)
	SELECT id, s, p, r, k, iid, aid, a, tx, u, t, m, v, c, se, sc, pr, l, lb::jsonb, te::jsonb
	FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
		$9::text[], $10::text[], $11::timestamptz[], $12::text[], $13::float8[], $14::bigint[], $15::text[],
		$16::float8[], $17::float8[], $18::text[], $19::text[], $20::text[])
		AS x(id, s, p, r, k, iid, aid, a, tx, u, t, m, v, c, se, sc, pr, l, lb, te)
	ON CONFLICT (source, item_id) DO NOTHING
	RETURNING id`

// insertItems inserts items with ids taken from the items sequence, and
// writes the keyword matches, raw payloads and rollups of those that were
// new (RETURNING says which). It returns how many were new.
func (w *batch) insertItems(its []*item.Item, edited bool) (int, error) {
	if len(its) == 0 {
		return 0, nil
	}
	rows, err := w.tx.Query(w.ctx, `SELECT nextval(pg_get_serial_sequence('items', 'id')) FROM generate_series(1, $1)`, len(its))
	if err != nil {
		return 0, fmt.Errorf("item ids: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("item ids: %w", err)
	}
	var r itemRow
	for i, it := range its {
		if err := r.add(w, it, ids[i]); err != nil {
			return 0, err
		}
	}
	rows, err = w.tx.Query(w.ctx, insertItems, r.ids, r.source, r.platform, r.room, r.kind, r.itemID, r.authorID,
		r.author, r.text, r.url, r.ts, r.metric, r.value, r.count, r.sentiment, r.score, r.prob, r.lang, r.labels, r.terms)
	if err != nil {
		return 0, fmt.Errorf("items: %w", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("items: %w", err)
	}
	isNew := make(map[int64]bool, len(got))
	for _, id := range got {
		isNew[id] = true
	}
	var g groupRows
	var rawIDs []int64
	var raws [][]byte
	for i, it := range its {
		id := ids[i]
		if !isNew[id] {
			continue
		}
		w.roll.add(it, r.ts[i], id)
		g.add(id, it)
		if w.keepRaw && len(it.Raw) > 0 {
			rawIDs, raws = append(rawIDs, id), append(raws, it.Raw)
		}
	}
	if err := g.write(w); err != nil {
		return 0, err
	}
	if len(rawIDs) > 0 {
		if _, err := w.tx.Exec(w.ctx, `INSERT INTO raw_payloads (item_id, payload) SELECT * FROM unnest($1::bigint[], $2::bytea[])`,
			rawIDs, raws); err != nil {
			return 0, fmt.Errorf("raw payloads: %w", err)
		}
	}
	return len(got), nil
}

// groupRows are item_groups rows waiting for one INSERT.
type groupRows struct {
	ids                         []int64
	grp, category, severity, kw []string
}

func (g *groupRows) add(id int64, it *item.Item) {
	for _, m := range it.Score.Groups {
		kws := m.Terms
		if len(kws) == 0 {
			kws = []string{""}
		}
		for _, kw := range kws {
			g.ids = append(g.ids, id)
			g.grp, g.category, g.severity = append(g.grp, clean(m.Group)), append(g.category, clean(m.Category)), append(g.severity, clean(m.Severity))
			g.kw = append(g.kw, clean(kw))
		}
	}
}

func (g *groupRows) write(w *batch) error {
	if len(g.ids) == 0 {
		return nil
	}
	_, err := w.tx.Exec(w.ctx, `INSERT INTO item_groups (item_id, grp, category, severity, keyword)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])`, g.ids, g.grp, g.category, g.severity, g.kw)
	if err != nil {
		return fmt.Errorf("keyword groups: %w", err)
	}
	return nil
}

// change applies an edit or a delete as the SQLite store does: an edit
// keeps the stored version in item_versions and writes the new one over
// it (an edit of an item never stored is stored as a new item); a delete
// sets deleted_at and keeps the row.
func (w *batch) change(it *item.Item) (inserted int, err error) {
	at := it.ChangedAt
	if at.IsZero() {
		at = w.now
	}
	if it.Change == item.ChangeDelete {
		if _, err := w.tx.Exec(w.ctx, `UPDATE items SET deleted_at = $1 WHERE source = $2 AND item_id = $3 AND deleted_at IS NULL`,
			at, clean(it.Source), clean(it.ID)); err != nil {
			return 0, fmt.Errorf("delete item %s/%s: %w", it.Source, it.ID, err)
		}
		return 0, nil
	}
	var id int64
	err = w.tx.QueryRow(w.ctx, `SELECT id FROM items WHERE source = $1 AND item_id = $2`, clean(it.Source), clean(it.ID)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) { // never stored: the edit is all we know of it
		n, err := w.insertItems([]*item.Item{it}, true)
		if err != nil {
			return 0, err
		}
		if _, err := w.tx.Exec(w.ctx, `UPDATE items SET edited_at = $1 WHERE source = $2 AND item_id = $3`,
			at, clean(it.Source), clean(it.ID)); err != nil {
			return 0, fmt.Errorf("edit item %s/%s: %w", it.Source, it.ID, err)
		}
		return n, nil
	}
	if err != nil {
		return 0, fmt.Errorf("edit item %s/%s: find: %w", it.Source, it.ID, err)
	}
	var r itemRow
	if err := r.add(w, it, id); err != nil {
		return 0, err
	}
	if _, err := w.tx.Exec(w.ctx, `INSERT INTO item_versions (item_id, author, text, url, sentiment, score, prob, lang, labels, terms, valid_from, replaced_at)
		SELECT id, author, text, url, sentiment, score, prob, lang, labels, terms, coalesce(edited_at, ts), $1 FROM items WHERE id = $2`,
		at, id); err != nil {
		return 0, fmt.Errorf("edit item %s/%s: keep version: %w", it.Source, it.ID, err)
	}
	if _, err := w.tx.Exec(w.ctx, `UPDATE items SET author = $1, text = $2, url = $3, sentiment = $4, score = $5, prob = $6,
		lang = $7, labels = $8::jsonb, terms = $9::jsonb, edited_at = $10 WHERE id = $11`,
		r.author[0], r.text[0], r.url[0], r.sentiment[0], r.score[0], r.prob[0], r.lang[0], r.labels[0], r.terms[0], at, id); err != nil {
		return 0, fmt.Errorf("edit item %s/%s: %w", it.Source, it.ID, err)
	}
	if _, err := w.tx.Exec(w.ctx, `DELETE FROM item_groups WHERE item_id = $1`, id); err != nil {
		return 0, fmt.Errorf("edit item %s/%s: %w", it.Source, it.ID, err)
	}
	var g groupRows
	g.add(id, it)
	if err := g.write(w); err != nil {
		return 0, err
	}
	if w.keepRaw && len(it.Raw) > 0 {
		if _, err := w.tx.Exec(w.ctx, `INSERT INTO raw_payloads (item_id, payload) VALUES ($1, $2)
			ON CONFLICT (item_id) DO UPDATE SET payload = excluded.payload`, id, it.Raw); err != nil {
			return 0, fmt.Errorf("edit item %s/%s raw payload: %w", it.Source, it.ID, err)
		}
	}
	return 0, nil
}

// state writes a state item: room profiles to room_profiles, a
// collector's keys to source_state.
func (w *batch) state(it *item.Item) error {
	profiles, ok, err := store.RoomProfilesFromItem(it)
	if err != nil {
		return err
	}
	if ok {
		for _, p := range profiles {
			if _, err := w.tx.Exec(w.ctx, `INSERT INTO room_profiles (rule, source, room, profile, updated_at) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (rule, source, room) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at`,
				p.Rule, p.Source, p.Room, clean(p.Profile), w.now); err != nil {
				return fmt.Errorf("room profile %s/%s/%s: %w", p.Rule, p.Source, p.Room, err)
			}
		}
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(it.State)) {
		if _, err := w.tx.Exec(w.ctx, `INSERT INTO source_state (source, key, value, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			clean(it.Source), clean(k), clean(it.State[k]), w.now); err != nil {
			return fmt.Errorf("state %s/%s: %w", it.Source, k, err)
		}
	}
	return nil
}
