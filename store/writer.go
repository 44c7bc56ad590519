package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/prometheus/client_golang/prometheus"

	"lookout/item"

	"lookout/internal/metrics"
)

// storeItemColumns are the items columns the writer fills, in argument
// order (itemColumns); storeItemCols counts them.
const storeItemColumns = `(source, platform, room, kind, item_id, author_id, author, text, url, ts, metric, value, count,
		 sentiment, score, prob, lang, labels, inserted_at, terms)`

// storeInsertItem is the exact path's INSERT of one item. ON CONFLICT …
// DO NOTHING, not INSERT OR IGNORE: only a duplicate id may be skipped
// silently; any other constraint must fail loudly.
var storeInsertItem = `INSERT INTO items ` + storeItemColumns + ` VALUES ` + storeValues(1, storeItemCols) +
	` ON CONFLICT (source, item_id) DO NOTHING`

const (
	storeInsertGroup  = `INSERT INTO item_groups (item_id, grp, category, severity, keyword) VALUES `
	storeInsertRaw    = `INSERT INTO raw_payloads (item_id, payload) VALUES `
	storeInsertMetric = `INSERT INTO metrics (source, platform, room, name, value, ts, item_id, labels, inserted_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (source, item_id) DO NOTHING`

	// storeMultiRows is how many rows one statement inserts into
	// item_groups and raw_payloads: one statement per row costs more in
	// call overhead than the insert itself.
	storeMultiRows = 32
)

// storeValues is "(?, ?), (?, ?), …" for n rows of cols columns.
func storeValues(n, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// storeStmt is a statement prepared on a raw go-sqlite3 connection with its
// argument slice, reused for every row: the batch writer's hot path skips
// database/sql's per-call conversions and allocations.
type storeStmt struct {
	st   *sqlite3.SQLiteStmt
	args []driver.NamedValue
}

func storePrepareRaw(c *sqlite3.SQLiteConn, query string) (*storeStmt, error) {
	ds, err := c.Prepare(query)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(*sqlite3.SQLiteStmt)
	if !ok {
		ds.Close()
		return nil, fmt.Errorf("unexpected statement type %T", ds)
	}
	args := make([]driver.NamedValue, st.NumInput())
	for i := range args {
		args[i].Ordinal = i + 1
	}
	return &storeStmt{st: st, args: args}, nil
}

// run executes a statement that returns no rows through go-sqlite3's
// query path, which binds every argument and steps in one cgo call (the
// exec path makes one call per argument). It cannot report changes or
// the last rowid, so it serves the multi-row inserts. (INSERT … RETURNING
// would give the id, but its result buffering made the item insert
// slower, measured.)
func (s *storeStmt) run() error {
	r, err := s.st.QueryContext(context.Background(), s.args)
	if err != nil {
		return err
	}
	return r.Close()
}

// exec runs the statement with s.args and reports rows changed and the
// last rowid. The context is never done on purpose: go-sqlite3 starts a
// goroutine per call to watch a cancellable one.
func (s *storeStmt) exec() (changed, rowID int64, err error) {
	res, err := s.st.ExecContext(context.Background(), s.args)
	if err != nil {
		return 0, 0, err
	}
	changed, _ = res.RowsAffected()
	rowID, _ = res.LastInsertId()
	return changed, rowID, nil
}

func (s *storeStmt) close() {
	if s != nil {
		s.st.Close()
	}
}

// storeNoKeyword is the keyword column of a group that matched without a
// single keyword.
var storeNoKeyword = []string{""}

// storeRowBuffer collects rows of a child table (keyword matches, raw
// payloads) and inserts them storeMultiRows to a statement, all of them in
// one call into SQLite (storeInsertRows) when flushed, or when the rows
// waiting pass storeRowBufferBytes.
type storeRowBuffer struct {
	c      *sqlite3.SQLiteConn
	insert string     // INSERT … VALUES, without the rows
	many   *storeStmt // storeMultiRows rows
	cols   int
	rows   *storeEncodedRows
}

// storeRowBufferBytes bounds what a storeRowBuffer holds (raw payloads
// can be large) before it inserts its whole statements' worth.
const storeRowBufferBytes = 4 << 20

// row begins the next row; its columns follow, then commit.
func (b *storeRowBuffer) row() *storeEncodedRows {
	b.rows.begin()
	return b.rows
}

func (b *storeRowBuffer) commit() error {
	if err := b.rows.end(); err != nil {
		return err
	}
	if b.rows.n%storeMultiRows == 0 && len(b.rows.buf) >= storeRowBufferBytes {
		return b.flush()
	}
	return nil
}

// flush inserts the rows waiting.
func (b *storeRowBuffer) flush() error {
	if b.rows.n == 0 {
		return nil
	}
	var tail *storeStmt
	if rest := b.rows.n % storeMultiRows; rest > 0 {
		var err error
		if tail, err = storePrepareRaw(b.c, b.insert+storeValues(rest, b.cols)); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		defer tail.close()
	}
	err := storeInsertRows(b.many, storeMultiRows, tail, b.cols, b.rows)
	b.rows.reset()
	return err
}

// WriteItems stores a batch in one transaction and returns how many items
// were new. An item whose (Source, ID) is already stored is dropped
// silently (that is dedupe, not loss); an item without an ID is always
// stored. Metric items go to the metrics table, the others to items with
// their score, keyword matches, terms and raw payload. State items
// (item.KindState) go to source_state after the batch's items, in the order
// they came, a later value of a key replacing an earlier one: a collector's
// state is committed together with the items before it. On error nothing
// of the batch is stored and the caller still holds every item.
func (s *Store) WriteItems(ctx context.Context, items []item.Item) (inserted int, err error) {
	if len(items) == 0 {
		return 0, nil
	}
	if s.readOnly {
		return 0, errors.New("store: write items: the database is open read-only")
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: write %d items: %w", len(items), storeExplain(err))
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("store: unexpected driver connection %T", dc)
		}
		var err error
		inserted, err = s.writeItemsTx(ctx, c, items, true)
		if err != nil && ctx.Err() == nil && !errors.Is(err, driver.ErrBadConn) {
			// A duplicate, or a failure the exact path can pin on the
			// item at fault (or meet again, if it is the disk's).
			inserted, err = s.writeItemsTx(ctx, c, items, false)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return inserted, nil
}

// storeFastRows is how many items one INSERT carries on the fast path:
// SQLite opens its cursors on items and its three indexes once per
// statement, so rows that share a statement cost a fraction of rows that
// do not. The statements of a whole batch run in one cgo call
// (storeInsertRows).
const storeFastRows = 32

// storeItemCols is how many columns storeItemColumns names.
const storeItemCols = 20

// errStoreRedo: the fast path found a duplicate; the exact path must
// decide which rows to skip.
var errStoreRedo = errors.New("store: batch holds an item already stored")

// writeItemsTx runs the batch transaction on a raw connection. database/sql
// knows nothing of this transaction, so it must end before returning: a
// connection that cannot roll back is reported as bad and discarded.
//
// The fast path inserts items storeFastRows at a time and knows their row
// ids without asking (max(id)+1, … in order: the transaction holds the
// write lock); it assumes no item is a duplicate and checks that at the
// end by counting the rows it added. If one was (or anything failed), the
// batch is rolled back and the exact path writes it one row at a time,
// learning each row's fate from SQLite. The daemon dedupes in memory before the
// store, so duplicates are rare and the fast path is the common one.
func (s *Store) writeItemsTx(ctx context.Context, c *sqlite3.SQLiteConn, items []item.Item, fast bool) (inserted int, err error) {
	if _, err := c.Exec("BEGIN IMMEDIATE", nil); err != nil {
		return 0, fmt.Errorf("store: write %d items: begin: %w", len(items), storeExplain(err))
	}
	defer func() {
		if err == nil || c.AutoCommit() { // SQLite rolls back by itself on some errors
			return
		}
		if _, rerr := c.Exec("ROLLBACK", nil); rerr != nil {
			err = fmt.Errorf("%w (and rollback failed: %v)", err, rerr)
			if !c.AutoCommit() {
				err = errors.Join(err, driver.ErrBadConn)
			}
		}
	}()
	var st [5]*storeStmt
	defer func() {
		for _, x := range st {
			x.close()
		}
	}()
	queries := [...]string{storeInsertGroup + storeValues(storeMultiRows, 5), storeInsertMetric,
		storeInsertRaw + storeValues(storeMultiRows, 2), storeInsertItem, storeInsertItemRows(storeFastRows)}
	for i, q := range queries {
		if fast && i == 3 || !fast && i == 4 {
			continue
		}
		if st[i], err = storePrepareRaw(c, q); err != nil {
			return 0, fmt.Errorf("store: write %d items: prepare: %w", len(items), storeExplain(err))
		}
	}
	var bufs [3]*storeEncodedRows // the items', the keyword matches', the raw payloads'
	for i := range bufs {
		if bufs[i], _ = s.fastRows.Get().(*storeEncodedRows); bufs[i] == nil {
			bufs[i] = new(storeEncodedRows)
		}
	}
	defer func() {
		for _, b := range bufs {
			b.reset()
			s.fastRows.Put(b)
		}
	}()
	w := storeBatch{c: c, insMetric: st[1], insItem: st[3], insItems: st[4], keepRaw: !s.dropRaw.Load(), now: time.Now(),
		groups: storeRowBuffer{c: c, insert: storeInsertGroup, many: st[0], cols: 5, rows: bufs[1]},
		raws:   storeRowBuffer{c: c, insert: storeInsertRaw, many: st[2], cols: 2, rows: bufs[2]}}
	w.insertedAt = FormatTime(w.now)
	if fast {
		w.rows = bufs[0]
	}
	w.live.begin(s)
	defer func() {
		if w.tail != nil {
			w.tail.close()
		}
	}()
	if fast {
		if w.nextID, err = storeQueryInt(c, `SELECT coalesce(max(id), 0) + 1 FROM items`); err != nil {
			return 0, fmt.Errorf("store: write %d items: next id: %w", len(items), storeExplain(err))
		}
	}
	firstID := w.nextID
	for i, j := range storeRoomOrder(items) {
		if i&255 == 0 {
			if err = ctx.Err(); err != nil {
				return 0, fmt.Errorf("store: write %d items: %w", len(items), err)
			}
		}
		if items[j].Kind == item.KindState || items[j].Change != "" {
			continue // written after every item (writeChanges, writeStates)
		}
		if err = w.add(&items[j], fast); err != nil {
			return 0, err
		}
	}
	if fast {
		if err = w.flushRows(); err != nil {
			return 0, err
		}
		added, err := storeQueryInt(c, `SELECT count(*) FROM items WHERE id >= ?`, firstID)
		if err != nil {
			return 0, fmt.Errorf("store: write %d items: count: %w", len(items), storeExplain(err))
		}
		if added != w.nextID-firstID {
			err = errStoreRedo
			return 0, err
		}
		w.inserted += int(added)
	}
	for pass := range 2 { // the new items' children, then the edits'
		if pass == 1 {
			// The rollups must hold the new items before an edit or
			// delete of one of them takes it out again.
			if err = w.rollup.flush(&w); err != nil {
				return 0, err
			}
			if err = w.writeChanges(items); err != nil {
				return 0, err
			}
		}
		if err = w.groups.flush(); err != nil {
			return 0, fmt.Errorf("store: write %d items: keyword groups: %w", len(items), storeExplain(err))
		}
		if err = w.raws.flush(); err != nil {
			return 0, fmt.Errorf("store: write %d items: raw payloads: %w", len(items), storeExplain(err))
		}
	}
	if err = w.rollup.flush(&w); err != nil { // edits of items never stored
		return 0, err
	}
	if err = w.writeStates(items); err != nil {
		return 0, err
	}
	if w.live.sink != nil {
		s.liveDelivering.Add(1)
		defer s.liveDelivering.Add(-1)
	}
	if _, err = c.Exec("COMMIT", nil); err != nil {
		return 0, fmt.Errorf("store: write %d items: commit: %w", len(items), storeExplain(err))
	}
	w.live.committed()
	s.restartWAL(ctx)
	return w.inserted, nil
}

// Statements of writeChanges.
const (
	storeFindItem    = `SELECT id FROM items WHERE source = ? AND item_id = ?`
	storeKeepVersion = `INSERT INTO item_versions (item_id, author, text, url, sentiment, score, prob, lang, labels, terms, valid_from, replaced_at)
		SELECT id, author, text, url, sentiment, score, prob, lang, labels, terms, coalesce(edited_at, ts), ? FROM items WHERE id = ?`
	storeEditItem = `UPDATE items SET author = ?, text = ?, url = ?, sentiment = ?, score = ?, prob = ?, lang = ?, labels = ?, terms = ?,
		edited_at = ? WHERE id = ?`
	storeDropGroups = `DELETE FROM item_groups WHERE item_id = ?`
	storePutRaw     = `INSERT INTO raw_payloads (item_id, payload) VALUES (?, ?) ON CONFLICT (item_id) DO UPDATE SET payload = excluded.payload`
	storeDeleteItem = `UPDATE items SET deleted_at = ? WHERE source = ? AND item_id = ? AND deleted_at IS NULL`
)

// writeChanges applies the batch's edits and deletes (item.Change), in
// arrival order, after its new items (an edit may follow its original in
// the same batch). An edit keeps the stored version in item_versions and
// writes the new one over it (text, author, URL, score, labels, terms,
// keyword groups, raw payload); an edit of an item never stored is stored
// as a new item. A delete sets deleted_at; the row stays.
func (w *storeBatch) writeChanges(items []item.Item) error {
	for i := range items {
		it := &items[i]
		if it.Change == "" || it.Kind == item.KindState || it.ID == "" {
			continue
		}
		at := it.ChangedAt
		if at.IsZero() {
			at = w.now
		}
		if it.Change == item.ChangeDelete {
			if _, err := w.c.Exec(storeDeleteItem, []driver.Value{FormatTime(at), it.Source, it.ID}); err != nil {
				return fmt.Errorf("store: delete item %s/%s: %w", it.Source, it.ID, storeExplain(err))
			}
			continue
		}
		if err := w.editItem(it, at); err != nil {
			return err
		}
	}
	return nil
}

func (w *storeBatch) editItem(it *item.Item, at time.Time) error {
	rowID, err := storeQueryInt(w.c, storeFindItem, it.Source, it.ID)
	if errors.Is(err, io.EOF) { // never stored: the edit is all we know of it
		if w.insItem == nil {
			if w.insItem, err = storePrepareRaw(w.c, storeInsertItem); err != nil {
				return fmt.Errorf("store: edit item %s/%s: prepare: %w", it.Source, it.ID, storeExplain(err))
			}
			defer func() { w.insItem.close(); w.insItem = nil }()
		}
		if err := w.add(it, false); err != nil {
			return err
		}
		if rowID, err = storeQueryInt(w.c, storeFindItem, it.Source, it.ID); err != nil {
			return fmt.Errorf("store: edit item %s/%s: %w", it.Source, it.ID, storeExplain(err))
		}
		_, err = w.c.Exec(`UPDATE items SET edited_at = ? WHERE id = ?`, []driver.Value{FormatTime(at), rowID})
		if err != nil {
			return fmt.Errorf("store: edit item %s/%s: %w", it.Source, it.ID, storeExplain(err))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: edit item %s/%s: find: %w", it.Source, it.ID, storeExplain(err))
	}
	labels, err := w.lab.json(it.Labels)
	if err != nil {
		return fmt.Errorf("store: item %s/%s labels: %w", it.Source, it.ID, err)
	}
	var a [storeItemCols]driver.NamedValue
	w.fillItem(a[:], it, w.times.format(it.TS), labels)
	// Keyword matches still buffered (an earlier edit's of this item in
	// this batch) go in first, so that the DELETE below replaces them.
	if err := w.groups.flush(); err != nil {
		return fmt.Errorf("store: edit item %s/%s: keyword groups: %w", it.Source, it.ID, storeExplain(err))
	}
	when := FormatTime(at)
	for _, st := range []struct {
		q    string
		args []driver.Value
	}{
		{storeKeepVersion, []driver.Value{when, rowID}},
		{storeEditItem, []driver.Value{a[6].Value, a[7].Value, a[8].Value, a[13].Value, a[14].Value, a[15].Value, a[16].Value, a[17].Value, a[19].Value, when, rowID}},
		{storeDropGroups, []driver.Value{rowID}},
	} {
		if _, err := w.c.Exec(st.q, st.args); err != nil {
			return fmt.Errorf("store: edit item %s/%s: %w", it.Source, it.ID, storeExplain(err))
		}
	}
	if w.keepRaw && len(it.Raw) > 0 {
		if _, err := w.c.Exec(storePutRaw, []driver.Value{rowID, it.Raw}); err != nil {
			return fmt.Errorf("store: edit item %s/%s raw payload: %w", it.Source, it.ID, storeExplain(err))
		}
	}
	raw := it.Raw
	it.Raw = nil // written above
	err = w.addChildren(it, rowID)
	it.Raw = raw
	return err
}

// writeStates stores the batch's state items, in arrival order, in the
// batch's transaction. A state item follows the items it covers in the
// stream, so they are in this batch or an earlier, committed one. Room
// profiles (RoomProfilesItem) go to room_profiles, the rest to
// source_state.
func (w *storeBatch) writeStates(items []item.Item) error {
	var st, pst *storeStmt
	defer func() { st.close(); pst.close() }()
	for i := range items {
		it := &items[i]
		if it.Kind != item.KindState {
			continue
		}
		if it.Source == roomProfilesSource {
			if pst == nil {
				var err error
				if pst, err = storePrepareRaw(w.c, storePutProfile); err != nil {
					return fmt.Errorf("store: write room profiles: prepare: %w", storeExplain(err))
				}
			}
			if err := w.writeProfiles(pst, it); err != nil {
				return err
			}
			continue
		}
		if st == nil {
			var err error
			if st, err = storePrepareRaw(w.c, storePutState); err != nil {
				return fmt.Errorf("store: write state: prepare: %w", storeExplain(err))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(it.State)) {
			a := st.args
			a[0].Value, a[1].Value, a[2].Value, a[3].Value = it.Source, k, it.State[k], w.insertedAt
			if _, _, err := st.exec(); err != nil {
				return fmt.Errorf("store: write state %s/%s: %w", it.Source, k, storeExplain(err))
			}
		}
	}
	return nil
}

// writeProfiles upserts the rows a RoomProfilesItem carries.
func (w *storeBatch) writeProfiles(st *storeStmt, it *item.Item) error {
	for _, k := range slices.Sorted(maps.Keys(it.State)) {
		rule, source, room, ok := roomProfileSplit(k)
		if !ok {
			return fmt.Errorf("store: write room profile: malformed key %q", k)
		}
		a := st.args
		a[0].Value, a[1].Value, a[2].Value, a[3].Value, a[4].Value = rule, source, room, it.State[k], w.insertedAt
		if _, _, err := st.exec(); err != nil {
			return fmt.Errorf("store: write room profile %s/%s/%s: %w", rule, source, room, storeExplain(err))
		}
	}
	return nil
}

// storeRoomOrder is the order in which a batch is inserted: grouped by
// source and room, in arrival order within each. With many live rooms a
// batch interleaves them finely, and every row then lands on other leaf
// pages of the (source, item_id) and (source, room, ts) indexes than the
// row before; grouped, consecutive rows share their pages while those are
// still in the CPU's cache. The order within a room is kept: row ids
// follow arrival per room (for RecentItemIDs, a source's rooms are out of
// order only within one batch), and of two copies of an item the first to
// arrive is the one stored.
func storeRoomOrder(items []item.Item) []int {
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	if len(items) < 2 {
		return order
	}
	slices.SortStableFunc(order, func(a, b int) int {
		x, y := &items[a], &items[b]
		if c := strings.Compare(x.Source, y.Source); c != 0 {
			return c
		}
		return strings.Compare(x.Room, y.Room)
	})
	return order
}

// storeInsertItemRows is the fast path's INSERT of n items.
//
// The statement names no id and says OR IGNORE where the exact path says
// ON CONFLICT (source, item_id) DO NOTHING: a multi-row statement that
// can fail halfway (an explicit id that is not an integer, a NOT NULL or
// CHECK with the default ABORT) must copy every page it changes into a
// statement journal first so that it can undo its earlier rows; this one
// cannot fail, and that copying (a tenth of the writer's time, perf) goes.
// SQLite gives each row max(id)+1, so the rows get nextID, nextID+1, … in
// order as long as none is skipped. Nothing is lost silently: a row
// skipped for any reason leaves the count of added rows short, and the
// exact path redoes the batch and fails loudly on anything but a
// duplicate.
func storeInsertItemRows(n int) string {
	return `INSERT OR IGNORE INTO items ` + storeItemColumns + ` VALUES ` + storeValues(n, storeItemCols)
}

// storeQueryInt runs a one-row, one-integer query on the raw connection.
func storeQueryInt(c *sqlite3.SQLiteConn, query string, args ...driver.Value) (int64, error) {
	rows, err := c.Query(query, args)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, err
	}
	n, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("%s: got %T, want an integer", query, dest[0])
	}
	return n, nil
}

// storeBatch is one batch transaction in progress.
type storeBatch struct {
	c            *sqlite3.SQLiteConn
	insItem      *storeStmt // exact path: one item, reports its fate
	insItems     *storeStmt // fast path: storeFastRows items
	tail         *storeStmt // fast path: the last, shorter statement
	insMetric    *storeStmt
	groups, raws storeRowBuffer
	keepRaw      bool
	now          time.Time
	insertedAt   string
	lab          storeLabelCache
	termsJSON    []byte
	times        storeTimeText
	inserted     int

	rollup storeRollup // the new items' per-minute sums, not yet written
	live   storeLive   // what live views get once the batch commits

	nextID int64             // fast path: the id the next item gets
	rows   *storeEncodedRows // fast path: the items not yet inserted
}

// add stores one item (exact path) or queues it (fast path).
func (w *storeBatch) add(it *item.Item, fast bool) error {
	ts := it.TS
	if ts.IsZero() {
		ts = w.now // an undated item is kept, stamped with its arrival
	}
	labels, err := w.lab.json(it.Labels)
	if err != nil {
		return fmt.Errorf("store: item %s/%s labels: %w", it.Source, it.ID, err)
	}
	tsText := w.times.format(ts)
	if it.Kind == item.KindMetric {
		ma := w.insMetric.args
		ma[0].Value, ma[1].Value, ma[2].Value, ma[3].Value = it.Source, it.Platform, it.Room, it.Metric
		ma[4].Value, ma[5].Value, ma[6].Value, ma[7].Value, ma[8].Value = it.Value, tsText, storeNullString(it.ID), storeNullString(labels), w.insertedAt
		n, _, err := w.insMetric.exec()
		if err != nil {
			return fmt.Errorf("store: metric %s/%s %s: %w", it.Source, it.Room, it.Metric, storeExplain(err))
		}
		w.inserted += int(n)
		if n > 0 {
			w.live.metric(it, tsText)
		}
		return nil
	}
	if !fast {
		w.fillItem(w.insItem.args, it, tsText, labels)
		n, rowID, err := w.insItem.exec()
		if err != nil {
			return fmt.Errorf("store: item %s/%s: %w", it.Source, it.ID, storeExplain(err))
		}
		if n == 0 {
			return nil // already stored: a duplicate
		}
		w.inserted++
		w.rollup.add(it, tsText, rowID)
		w.live.add(it, tsText, ts.Unix(), rowID)
		return w.addChildren(it, rowID)
	}
	w.rows.begin()
	w.itemColumns(w.rows, it, tsText, labels)
	if err := w.rows.endItem(it, tsText); err != nil {
		return fmt.Errorf("store: item %s/%s: %w", it.Source, it.ID, err)
	}
	w.nextID++
	return nil
}

// flushRows inserts the fast path's queued items, storeFastRows to a
// statement and the rest with a statement sized for them, in one call
// into SQLite (storeInsertRows), then their children.
func (w *storeBatch) flushRows() error {
	k := len(w.rows.items)
	if k == 0 {
		return nil
	}
	if rest := k % storeFastRows; rest > 0 {
		var err error
		if w.tail, err = storePrepareRaw(w.c, storeInsertItemRows(rest)); err != nil {
			return fmt.Errorf("store: write items: prepare: %w", storeExplain(err))
		}
	}
	if err := storeInsertRows(w.insItems, storeFastRows, w.tail, storeItemCols, w.rows); err != nil {
		return fmt.Errorf("store: write items: %w", storeExplain(err))
	}
	return w.pendingChildren()
}

// pendingChildren writes the keyword matches and raw payloads of the items
// just inserted, which have the ids before nextID.
func (w *storeBatch) pendingChildren() error {
	first := w.nextID - int64(len(w.rows.items))
	for i, it := range w.rows.items {
		ts := w.rows.ts[i]
		w.rollup.add(it, ts, first+int64(i))
		if w.live.sink != nil {
			unix := it.TS.Unix()
			if it.TS.IsZero() {
				unix = w.now.Unix()
			}
			w.live.add(it, ts, unix, first+int64(i))
		}
		if err := w.addChildren(it, first+int64(i)); err != nil {
			return err
		}
	}
	w.rows.reset()
	return nil
}

// storeColumns takes one row's columns in order: the exact path's
// statement arguments (storeArgs) or the fast path's encoded rows
// (storeEncodedRows), both filled by itemColumns. The fast path's values
// are never boxed in interfaces (an allocation per string column).
type storeColumns interface {
	null()
	text(s string)
	textBytes(b []byte) // text, read before the next call
	int(v int64)
	float(v float64)
}

// storeArgs fills statement arguments in order.
type storeArgs struct {
	a []driver.NamedValue
	n int
}

func (s *storeArgs) null()              { s.a[s.n].Value = nil; s.n++ }
func (s *storeArgs) text(v string)      { s.a[s.n].Value = v; s.n++ }
func (s *storeArgs) textBytes(b []byte) { s.text(string(b)) }
func (s *storeArgs) int(v int64)        { s.a[s.n].Value = v; s.n++ }
func (s *storeArgs) float(v float64)    { s.a[s.n].Value = v; s.n++ }

// storeTextOrNull puts s, or NULL when s is empty.
func storeTextOrNull(c storeColumns, s string) {
	if s == "" {
		c.null()
		return
	}
	c.text(s)
}

// fillItem puts an item's storeItemCols columns into a; ts is its ts column.
func (w *storeBatch) fillItem(a []driver.NamedValue, it *item.Item, ts, labels string) {
	w.itemColumns(&storeArgs{a: a}, it, ts, labels)
}

// itemColumns puts an item's storeItemCols columns into c, in
// storeItemColumns order; ts is its ts column, labels its labels column
// ("" for none).
func (w *storeBatch) itemColumns(c storeColumns, it *item.Item, ts, labels string) {
	c.text(it.Source)
	c.text(it.Platform)
	c.text(it.Room)
	c.text(string(it.Kind))
	storeTextOrNull(c, it.ID)
	storeTextOrNull(c, it.AuthorID)
	storeTextOrNull(c, it.Author)
	storeTextOrNull(c, it.Text)
	storeTextOrNull(c, it.URL)
	c.text(ts)
	gift := it.Kind == item.KindGift || it.Kind == item.KindSuperChat
	metric := it.Metric
	if metric == "" && gift {
		metric = "gift_value" // what value holds, by the name rules use for it
	}
	storeTextOrNull(c, metric)
	if it.Value != 0 || it.HasValue || it.Metric != "" || gift {
		c.float(it.Value)
	} else {
		c.null()
	}
	if it.Count != 0 || it.Kind == item.KindGift {
		c.int(it.Count)
	} else {
		c.null()
	}
	if it.Score.Scored {
		c.text(it.Score.Label.String())
		c.float(it.Score.Value)
		c.float(it.Score.Prob)
		storeTextOrNull(c, it.Score.Lang)
	} else {
		c.null()
		c.null()
		c.null()
		c.null()
	}
	storeTextOrNull(c, labels)
	c.text(w.insertedAt)
	if len(it.Score.Terms) > 0 {
		w.termsJSON = storeAppendTerms(w.termsJSON[:0], it.Score.Terms)
		c.textBytes(w.termsJSON)
	} else {
		c.null()
	}
}

// addChildren writes an inserted item's keyword matches and raw payload.
func (w *storeBatch) addChildren(it *item.Item, rowID int64) error {
	for _, m := range it.Score.Groups {
		kws := m.Terms
		if len(kws) == 0 {
			kws = storeNoKeyword
		}
		for _, kw := range kws {
			r := w.groups.row()
			r.int(rowID)
			r.text(m.Group)
			r.text(m.Category)
			r.text(m.Severity)
			r.text(kw)
			if err := w.groups.commit(); err != nil {
				return fmt.Errorf("store: item %s/%s group %s: %w", it.Source, it.ID, m.Group, storeExplain(err))
			}
		}
	}
	if w.keepRaw && len(it.Raw) > 0 {
		r := w.raws.row()
		r.int(rowID)
		r.blob(it.Raw)
		if err := w.raws.commit(); err != nil {
			return fmt.Errorf("store: item %s/%s raw payloads: %w", it.Source, it.ID, storeExplain(err))
		}
	}
	return nil
}

// storeAppendTerms appends terms to b as a JSON array of strings (the
// items.terms column), each term once, in the order given. Bytes of
// invalid UTF-8 are kept as they are, not replaced: SQLite's json_each
// reads them back unchanged, so a term round-trips exactly, as it did in
// the item_terms table.
func storeAppendTerms(b []byte, terms []string) []byte {
	b = append(b, '[')
	for i, t := range terms {
		if slices.Contains(terms[:i], t) {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = storeAppendJSONString(b, t)
	}
	return append(b, ']')
}

func storeAppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		if c < 0x20 {
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		} else {
			b = append(b, '\\', c)
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// storeTimeText formats timestamps as FormatTime does, remembering the
// last one: a frame's messages often share their timestamp, and the
// messages of one second share all but its milliseconds.
type storeTimeText struct {
	sec  int64  // the second of last
	ms   int    // the millisecond of last
	last string // "" before the first
}

func (c *storeTimeText) format(t time.Time) string {
	sec, ms := t.Unix(), t.Nanosecond()/1e6
	if c.last != "" && sec == c.sec {
		if ms != c.ms {
			var b [len(TimeLayout)]byte
			copy(b[:], c.last)
			b[20], b[21], b[22] = byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10)
			c.ms, c.last = ms, string(b[:])
		}
		return c.last
	}
	s := FormatTime(t)
	if len(s) == len(TimeLayout) { // years 0–9999: the milliseconds are at [20:23]
		c.sec, c.ms, c.last = sec, ms, s
	}
	return s
}

// storeLabelCache encodes label maps, reusing the last encoding: a source
// puts the same labels on every item, and batches arrive source by source.
type storeLabelCache struct {
	last    map[string]string
	encoded string
}

// json is m's labels column: "" (NULL) for no labels.
func (c *storeLabelCache) json(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "", nil
	}
	if c.last != nil && maps.Equal(c.last, m) {
		return c.encoded, nil
	}
	b, err := json.Marshal(m) // keys sorted: equal maps give equal text
	if err != nil {
		return "", err
	}
	c.last, c.encoded = m, string(b)
	return c.encoded, nil
}

// ItemStore is what a Writer writes batches to: a Store, or the
// PostgreSQL store (store/pg). WriteItems commits a batch in one
// transaction, drops items already stored (same source and item id) and
// returns how many were new; on error nothing of the batch is stored. An
// error that is the data's fault (a constraint, a malformed value) wraps
// ErrRejected, or is a SQLite constraint error.
type ItemStore interface {
	WriteItems(ctx context.Context, items []item.Item) (int, error)
}

// ErrRejected marks a write error caused by the items rather than by the
// database's condition: retrying the same batch would fail forever, so the
// Writer writes it item by item and refuses only the bad ones.
var ErrRejected = errors.New("the database refused the data")

// Writer is the pipeline stage that stores items in batches. It flushes when
// batchSize items wait or flushEvery has passed since the oldest of them
// arrived. A failed write (disk full, database locked, file unwritable) is
// logged, counted and retried with backoff while items keep being accepted
// into a bounded backlog; only when the backlog is full are the oldest items
// dropped, loudly.
type Writer struct {
	store      ItemStore
	batchSize  int
	flushEvery time.Duration
	log        *slog.Logger
	m          *storeWriterMetrics

	// MaxBacklog bounds the items held while writes fail (default 100000).
	MaxBacklog int
	// RetryMin and RetryMax bound the backoff between failed writes
	// (defaults 100ms and 5s).
	RetryMin, RetryMax time.Duration
	// AbortTimeout is how long Run keeps trying to write the backlog after
	// its context is cancelled (default 2s).
	AbortTimeout time.Duration
	// Settled, when set, is called from Run's goroutine with every batch
	// once it is committed, and with every item the database refused:
	// items that will never need writing again. A transport acknowledges
	// its messages there. It must not keep the slice.
	Settled func([]item.Item)
}

type storeWriterMetrics struct {
	written    prometheus.Counter
	errors     *prometheus.CounterVec
	duplicates prometheus.Counter
	dropped    prometheus.Counter
	rejected   prometheus.Counter
	backlog    prometheus.Gauge
	batch      prometheus.Histogram
	busy       prometheus.Counter
}

// NewWriter builds a Writer. reg may be nil (no metrics exported).
func NewWriter(s ItemStore, batchSize int, flushEvery time.Duration, log *slog.Logger, reg prometheus.Registerer) *Writer {
	if batchSize <= 0 {
		batchSize = 512
	}
	if flushEvery <= 0 {
		flushEvery = 500 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &storeWriterMetrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_store_items_written_total", Help: "Items and metric samples newly stored."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_store_write_errors_total", Help: "Failed batch writes, by reason (busy, full, readonly, other)."},
			[]string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_store_duplicates_total", Help: "Items dropped because (source, item id) was already stored."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_store_dropped_total", Help: "Items lost because writes kept failing and the backlog was full."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_store_rejected_total", Help: "Items the database refused (constraint, size); each is logged."}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lookout_store_backlog_items", Help: "Items waiting to be written."}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lookout_store_batch_seconds", Help: "Time to write one batch (one transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_store_writer_busy_seconds_total",
			Help: "Time spent inside batch writes (transactions), failed ones included: its rate is the fraction of the time the store is writing."}),
	}
	if reg != nil {
		m.written = metrics.MustRegister(reg, m.written)
		m.errors = metrics.MustRegister(reg, m.errors)
		m.duplicates = metrics.MustRegister(reg, m.duplicates)
		m.dropped = metrics.MustRegister(reg, m.dropped)
		m.rejected = metrics.MustRegister(reg, m.rejected)
		m.backlog = metrics.MustRegister(reg, m.backlog)
		m.batch = metrics.MustRegister(reg, m.batch)
		m.busy = metrics.MustRegister(reg, m.busy)
	}
	return &Writer{
		store: s, batchSize: batchSize, flushEvery: flushEvery, log: log, m: m,
		MaxBacklog: 100000, RetryMin: 100 * time.Millisecond, RetryMax: 5 * time.Second, AbortTimeout: 2 * time.Second,
	}
}

// Run consumes in until it is closed, then writes everything still waiting
// and returns nil. Cancelling ctx aborts: Run tries once more, for at most
// AbortTimeout, to write what it holds, and returns an error that says how
// many items were not stored.
func (w *Writer) Run(ctx context.Context, in <-chan item.Item) error {
	return runWriter(ctx, w, in, func(it item.Item, take func(item.Item)) { take(it) })
}

// RunBatches is Run for a channel of batches: a stage that hands items on
// in runs of a few dozen sends one slice per run, and an idle channel of
// slices holds no items (a channel of items is allocated full size, and
// the GC scans all of it). RunBatches takes the slices' items; the sender
// must not touch a slice once sent.
func (w *Writer) RunBatches(ctx context.Context, in <-chan []item.Item) error {
	return runWriter(ctx, w, in, func(b []item.Item, take func(item.Item)) {
		for i := range b {
			take(b[i])
		}
	})
}

// writerMinBuffer is the least capacity of the writer's buffer of pending
// items. The buffer grows as items arrive faster than it is flushed, up to
// the batch size and beyond while writes fail, and shrinks again once
// flushes find it mostly empty: at a few thousand items a second it stays
// a few thousand items long instead of a full batch (32,768 items are
// 12 MB of pointers for the GC to scan).
const writerMinBuffer = 256

func runWriter[T any](ctx context.Context, w *Writer, in <-chan T, each func(T, func(item.Item))) error {
	maxBacklog := max(w.MaxBacklog, w.batchSize)
	pending := make([]item.Item, 0, min(w.batchSize, writerMinBuffer))
	var (
		flushTimer *time.Timer
		flushC     <-chan time.Time // armed while items wait
		failing    bool             // last write failed; retryC paces retries
		retryDelay time.Duration
		retryC     <-chan time.Time
	)
	stopFlushTimer := func() {
		if flushTimer != nil {
			flushTimer.Stop()
		}
		flushC = nil
	}
	// flush writes pending in batches and stops at the first failure,
	// keeping what is left (compacted once, not per batch).
	flush := func(ctx context.Context) error {
		off := 0
		defer func() {
			clear(pending[:off]) // let the GC have texts and payloads
			pending = pending[:copy(pending, pending[off:])]
			if len(pending) == 0 && cap(pending) > writerMinBuffer && off <= cap(pending)/4 {
				// Mostly empty: a buffer twice what this flush wrote.
				pending = make([]item.Item, 0, max(writerMinBuffer, 2*off))
			}
			w.m.backlog.Set(float64(len(pending)))
		}()
		for off < len(pending) {
			n := min(len(pending)-off, w.batchSize)
			err := w.writeBatch(ctx, pending[off:off+n])
			if err != nil && storeRejects(err) {
				// The data, not the disk, is at fault: retrying the batch
				// would fail forever. Write item by item; only the bad
				// ones are refused.
				err = w.writeEach(ctx, pending[off:off+n])
			}
			if err != nil {
				if ctx.Err() == nil {
					w.m.errors.WithLabelValues(storeErrReason(err)).Inc()
				}
				return err
			}
			off += n
		}
		return nil
	}
	attempt := func(ctx context.Context) {
		stopFlushTimer()
		err := flush(ctx)
		if err == nil {
			if failing {
				w.log.Info("store writes recovered")
			}
			failing, retryDelay, retryC = false, 0, nil
			return
		}
		failing = true
		retryDelay = storeNextDelay(retryDelay, w.RetryMin, w.RetryMax)
		retryC = time.After(retryDelay)
		w.log.Error("store write failed; items kept in memory and retried",
			"err", err, "backlog", len(pending), "retry_in", retryDelay)
	}
	var droppedSinceLog int
	var lastDropLog time.Time

	take := func(it item.Item) {
		if len(pending) >= maxBacklog {
			// Writes have failed for a long time. Losing the oldest is
			// the least bad choice: the alert engine reads live items
			// from its own branch. A whole batch goes at once so that
			// dropping stays cheap.
			n := min(w.batchSize, len(pending))
			oldest := pending[0]
			clear(pending[:n])
			pending = pending[:copy(pending, pending[n:])]
			w.m.dropped.Add(float64(n))
			droppedSinceLog += n
			if time.Since(lastDropLog) >= 10*time.Second {
				w.log.Error("STORE BACKLOG FULL: dropping the oldest items because writes keep failing",
					"dropped", droppedSinceLog, "backlog", len(pending), "oldest_source", oldest.Source,
					"oldest_ts", oldest.TS)
				droppedSinceLog, lastDropLog = 0, time.Now()
			}
		}
		pending = append(pending, it)
		if failing {
			return // the retry timer paces writes
		}
		if len(pending) >= w.batchSize {
			attempt(ctx)
		} else if flushC == nil {
			if flushTimer == nil {
				flushTimer = time.NewTimer(w.flushEvery)
			} else {
				flushTimer.Reset(w.flushEvery)
			}
			flushC = flushTimer.C
		}
	}

	for {
		select {
		case v, ok := <-in:
			if !ok {
				return w.drain(ctx, &pending, flush)
			}
			each(v, take)
		case <-flushC:
			flushC = nil
			attempt(ctx)
		case <-retryC:
			retryC = nil
			attempt(ctx)
		case <-ctx.Done():
			stopFlushTimer()
			return w.abort(ctx, &pending, flush)
		}
	}
}

// drain is the graceful end: in is closed, so write everything, retrying
// with backoff until it is stored or ctx is cancelled.
func (w *Writer) drain(ctx context.Context, pending *[]item.Item, flush func(context.Context) error) error {
	delay := time.Duration(0)
	for {
		err := flush(ctx)
		if err == nil {
			return nil
		}
		delay = storeNextDelay(delay, w.RetryMin, w.RetryMax)
		w.log.Error("store write failed while draining; retrying", "err", err, "backlog", len(*pending), "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return w.abort(ctx, pending, flush)
		}
	}
}

// abort makes one bounded last attempt after cancellation.
func (w *Writer) abort(ctx context.Context, pending *[]item.Item, flush func(context.Context) error) error {
	if len(*pending) == 0 {
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.AbortTimeout)
	defer cancel()
	err := flush(actx)
	if err == nil {
		return nil
	}
	n := len(*pending)
	w.m.dropped.Add(float64(n))
	w.log.Error("STORE WRITER STOPPED WITH ITEMS NOT WRITTEN", "lost", n, "err", err)
	return fmt.Errorf("store writer: %d items not written before shutdown: %w", n, ctx.Err())
}

// writeEach writes a batch one item per transaction, logging and counting
// the items the database refuses. It stops at the first error that is not
// the item's fault.
func (w *Writer) writeEach(ctx context.Context, batch []item.Item) error {
	for i := range batch {
		err := w.writeBatch(ctx, batch[i:i+1])
		if err == nil {
			continue
		}
		if !storeRejects(err) {
			return err
		}
		it := &batch[i]
		if w.Settled != nil {
			w.Settled(batch[i : i+1])
		}
		w.m.rejected.Inc()
		w.log.Error("store refused an item; it is dropped", "err", err, "source", it.Source, "kind", it.Kind,
			"item_id", it.ID, "room", it.Room, "ts", it.TS)
	}
	return nil
}

// storeRejects reports whether err is about the data rather than the
// database's condition (a constraint, a value too big).
func storeRejects(err error) bool {
	if errors.Is(err, ErrRejected) {
		return true
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrConstraint, sqlite3.ErrTooBig, sqlite3.ErrMismatch, sqlite3.ErrRange:
			return true
		}
	}
	return false
}

func (w *Writer) writeBatch(ctx context.Context, batch []item.Item) error {
	start := time.Now()
	n, err := w.store.WriteItems(ctx, batch)
	took := time.Since(start).Seconds()
	w.m.busy.Add(took)
	if err != nil {
		return err
	}
	w.m.batch.Observe(took)
	w.m.written.Add(float64(n))
	if w.Settled != nil {
		w.Settled(batch)
	}
	states := 0
	for i := range batch {
		if batch[i].Kind == item.KindState {
			states++
		}
	}
	w.m.duplicates.Add(float64(len(batch) - states - n))
	return nil
}

func storeNextDelay(d, lo, hi time.Duration) time.Duration {
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi < lo {
		hi = lo
	}
	if d < lo {
		return lo
	}
	return min(2*d, hi)
}

// storeErrReason names a write error for the errors metric.
func storeErrReason(err error) string {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked:
			return "busy"
		case sqlite3.ErrFull:
			return "full"
		case sqlite3.ErrReadonly, sqlite3.ErrCantOpen, sqlite3.ErrPerm:
			return "readonly"
		}
	}
	return "other"
}
