package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"lookout/collectors"
	"lookout/item"
)

// The store is the collectors' StateStore.
var _ collectors.StateStore = (*Store)(nil)

var storeT0 = time.Date(2026, 11, 25, 12, 0, 0, 123e6, time.UTC)

func storeOpenTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "lookout.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// storeChat is a scored chat item.
func storeChat(id string, ts time.Time, text string, label item.Label, score float64) item.Item {
	return item.Item{
		Source: "brand-live", Platform: "bilibili", Kind: item.KindChat, Room: "21452505",
		ID: id, AuthorID: "u" + id, Author: "viewer " + id, Text: text, TS: ts,
		Raw:   []byte(`{"cmd":"DANMU_MSG","id":"` + id + `"}`),
		Score: item.Score{Scored: true, Label: label, Value: score, Prob: 0.9, Lang: "zh"},
	}
}

func storeCount(t testing.TB, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestOpenMigratesOnceAndRecordsVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lookout.db")
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) == 0 || migs[0].Version != 1 || migs[0].Name != "items" {
		t.Fatalf("embedded migrations start with %+v, want 0001_items", migs)
	}
	for round := 1; round <= 3; round++ {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := migs[len(migs)-1].Version; v != want {
			t.Errorf("round %d: schema version %d, want %d", round, v, want)
		}
		if n := storeCount(t, s, `SELECT count(*) FROM schema_migrations`); n != len(migs) {
			t.Errorf("round %d: %d schema_migrations rows, want %d (one per migration, never repeated)", round, n, len(migs))
		}
		var name string
		if err := s.DB().QueryRow(`SELECT name FROM schema_migrations WHERE version = 1`).Scan(&name); err != nil || name != "items" {
			t.Errorf("round %d: version 1 recorded as %q, %v", round, name, err)
		}
		var mode string
		s.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode)
		if mode != "wal" {
			t.Errorf("journal_mode %q, want wal", mode)
		}
		var fk int
		s.DB().QueryRow(`PRAGMA foreign_keys`).Scan(&fk)
		if fk != 1 {
			t.Errorf("foreign_keys %d, want 1", fk)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrationRunnerOrderAndErrors(t *testing.T) {
	ctx := context.Background()
	good := fstest.MapFS{
		"m/0002_second.sql": {Data: []byte(`CREATE TABLE b (x INTEGER); INSERT INTO b VALUES ((SELECT count(*) FROM a));`)},
		"m/0001_first.sql":  {Data: []byte(`CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);`)},
		"m/0010_tenth.sql":  {Data: []byte(`CREATE VIEW c AS SELECT x FROM b;`)},
	}
	migs, err := storeLoadMigrations(good, "m")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range migs {
		got = append(got, fmt.Sprintf("%d_%s", m.Version, m.Name))
	}
	if want := []string{"1_first", "2_second", "10_tenth"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	db, err := sql.Open("sqlite3", storeDSN(filepath.Join(t.TempDir(), "m.db"), "_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := storeApplyMigrations(ctx, db, "m.db", migs); err != nil {
		t.Fatal(err)
	}
	// 0002 ran after 0001: it saw a's row.
	var x int
	if err := db.QueryRow(`SELECT x FROM c`).Scan(&x); err != nil || x != 1 {
		t.Fatalf("view c = %d, %v; want 1 (migrations out of order?)", x, err)
	}
	// Running again applies nothing (a second CREATE TABLE would fail).
	if err := storeApplyMigrations(ctx, db, "m.db", migs); err != nil {
		t.Fatalf("second run: %v", err)
	}
	// A binary that knows fewer migrations refuses the newer file.
	if err := storeApplyMigrations(ctx, db, "m.db", migs[:1]); err == nil || !strings.Contains(err.Error(), "newer lookout") {
		t.Fatalf("older binary on newer schema: err = %v, want a 'use a newer lookout' error", err)
	}

	for name, fsys := range map[string]fstest.MapFS{
		"duplicate version": {"m/0001_a.sql": {}, "m/0001_b.sql": {}},
		"bad name":          {"m/1_a.sql": {}},
		"version zero":      {"m/0000_a.sql": {}},
	} {
		if _, err := storeLoadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	os.WriteFile(notDB, []byte(strings.Repeat("not a database ", 100)), 0o644)
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing directory", filepath.Join(dir, "nope", "x.db"), "does not exist"},
		{"parent is a file", filepath.Join(notDB, "x.db"), "not a directory"},
		{"not a database", notDB, "not a SQLite database"},
		{"memory", ":memory:", "in-memory"},
		// /proc refuses new files even to root, unlike a chmod'ed directory.
		{"unwritable directory", "/proc/lookout.db", "directory /proc is not writable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %q does not say %q", err, tc.want)
			}
		})
	}
	if _, err := OpenReadOnly(ctx, filepath.Join(dir, "missing.db")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("OpenReadOnly of a missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !os.IsNotExist(err) {
		t.Fatal("OpenReadOnly created the file")
	}
}

func TestWriteItemsDedupe(t *testing.T) {
	ctx := context.Background()
	a := storeChat("a", storeT0, "hello", item.Neutral, 0)
	b := storeChat("b", storeT0.Add(time.Second), "退款!", item.Negative, -0.8)
	otherSource := a
	otherSource.Source = "other-live"
	noID := storeChat("", storeT0, "no id", item.Neutral, 0)
	for _, tc := range []struct {
		name    string
		batches [][]item.Item
		want    []int // inserted per batch
		rows    int
	}{
		{"one batch, distinct", [][]item.Item{{a, b}}, []int{2}, 2},
		{"same item twice in one batch", [][]item.Item{{a, a, b}}, []int{2}, 2},
		{"same item in two batches", [][]item.Item{{a}, {a, b}}, []int{1, 1}, 2},
		{"same id, other source", [][]item.Item{{a, otherSource}}, []int{2}, 2},
		{"items without id are never deduped", [][]item.Item{{noID, noID}, {noID}}, []int{2, 1}, 3},
		{"empty batch", [][]item.Item{{}}, []int{0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storeOpenTest(t)
			for i, batch := range tc.batches {
				n, err := s.WriteItems(ctx, batch)
				if err != nil {
					t.Fatal(err)
				}
				if n != tc.want[i] {
					t.Errorf("batch %d: inserted %d, want %d", i, n, tc.want[i])
				}
			}
			if n := storeCount(t, s, `SELECT count(*) FROM items`); n != tc.rows {
				t.Errorf("%d rows, want %d", n, tc.rows)
			}
			// A duplicate must not add child rows either.
			if n, m := storeCount(t, s, `SELECT count(*) FROM raw_payloads`), storeCount(t, s, `SELECT count(*) FROM items WHERE id IN (SELECT item_id FROM raw_payloads)`); n != m || n != tc.rows {
				t.Errorf("raw payloads %d (%d matching items), want %d", n, m, tc.rows)
			}
		})
	}
}

func TestWriteItemsColumns(t *testing.T) {
	ctx := context.Background()
	s := storeOpenTest(t)
	crisis := storeChat("c1", storeT0, "假货!要退款 客服不理人", item.Negative, -0.91)
	crisis.Labels = map[string]string{"brand": "acme", "team": "ops"}
	crisis.Score.Groups = []item.Match{
		{Group: "crisis", Category: "crisis", Severity: "red", Terms: []string{"假货", "退款"}},
		{Group: "service", Category: "service", Severity: "yellow", Terms: []string{"客服不理人"}},
		{Group: "all-match", Category: "misc", Severity: "green"},
	}
	crisis.Score.Terms = []string{"假货", "退款", "客服", "退款"} // a repeated term is stored once
	gift := item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindGift, Room: "21452505", ID: "g1",
		Author: "fan", Text: "辣条", TS: storeT0.Add(time.Second), Value: 0, Count: 3}
	viewers := item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindMetric, Room: "21452505", ID: "m1",
		Metric: item.MetricViewers, Value: 5120, TS: storeT0.Add(2 * time.Second), Labels: crisis.Labels}
	viewersNoID := viewers
	viewersNoID.ID, viewersNoID.Value, viewersNoID.TS = "", 4000, storeT0.Add(3*time.Second)
	n, err := s.WriteItems(ctx, []item.Item{crisis, gift, viewers, viewers, viewersNoID})
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("inserted %d, want 4 (crisis, gift, two viewer samples; one duplicate)", n)
	}

	var (
		ts, sentiment, lang, labels string
		score, prob                 float64
		value                       sql.NullFloat64
		count                       sql.NullInt64
	)
	if err := s.DB().QueryRow(`SELECT ts, sentiment, score, prob, lang, labels, value, count FROM items WHERE item_id = 'c1'`).
		Scan(&ts, &sentiment, &score, &prob, &lang, &labels, &value, &count); err != nil {
		t.Fatal(err)
	}
	if ts != "2026-11-25T12:00:00.123Z" || sentiment != "negative" || score != -0.91 || prob != 0.9 || lang != "zh" ||
		labels != `{"brand":"acme","team":"ops"}` || value.Valid || count.Valid {
		t.Errorf("crisis row: ts %s sentiment %s score %v prob %v lang %s labels %s value %v count %v",
			ts, sentiment, score, prob, lang, labels, value, count)
	}
	var gv sql.NullFloat64
	var gc sql.NullInt64
	var gs sql.NullString
	s.DB().QueryRow(`SELECT value, count, sentiment FROM items WHERE item_id = 'g1'`).Scan(&gv, &gc, &gs)
	if !gv.Valid || gv.Float64 != 0 || gc.Int64 != 3 || gs.Valid {
		t.Errorf("gift row: value %v count %v sentiment %v; want 0 (a free gift), 3, NULL (unscored)", gv, gc, gs)
	}

	for _, tc := range []struct {
		query string
		want  string
	}{
		{`SELECT group_concat(grp || ':' || category || ':' || severity || ':' || keyword, ' ') FROM (SELECT * FROM item_groups ORDER BY rowid)`,
			"crisis:crisis:red:假货 crisis:crisis:red:退款 service:service:yellow:客服不理人 all-match:misc:green:"},
		{`SELECT group_concat(term, ' ') FROM (SELECT term FROM item_terms ORDER BY term)`, "假货 客服 退款"},
		{`SELECT group_concat(name || '=' || value || '@' || ts || '#' || coalesce(item_id, 'NULL'), ' ') FROM (SELECT * FROM metrics ORDER BY ts)`,
			"viewers=5120.0@2026-11-25T12:00:02.123Z#m1 viewers=4000.0@2026-11-25T12:00:03.123Z#NULL"},
		{`SELECT count(*) FROM items WHERE kind = 'metric'`, "0"},
		{`SELECT group_concat(keywords) FROM crisis_items`, "假货,退款"},
		{`SELECT severity FROM crisis_items`, "red"},
		{`SELECT items || '/' || negative || '/' || negative_share FROM sentiment_hourly`, "1/1/1.0"},
		{`SELECT minute || ' ' || items || '/' || negative FROM sentiment_1m`, "2026-11-25T12:00:00Z 1/1"},
		{`SELECT minute || ' ' || items FROM sentiment_5m`, "2026-11-25T12:00:00Z 1"},
		{`SELECT metric FROM items WHERE item_id = 'g1'`, "gift_value"},
		{`SELECT count(*) FROM raw_payloads`, "1"},
		{`SELECT group_concat(term || ':' || mentions || ':' || negative_mentions || '@' || hour, ' ') FROM (SELECT * FROM hot_terms_hourly ORDER BY term)`,
			"假货:1:1@2026-11-25T12:00:00Z 客服:1:1@2026-11-25T12:00:00Z 退款:1:1@2026-11-25T12:00:00Z"},
	} {
		var got string
		if err := s.DB().QueryRow(tc.query).Scan(&got); err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s\n got %q\nwant %q", tc.query, got, tc.want)
		}
	}
}

func TestKeepRawOff(t *testing.T) {
	s := storeOpenTest(t)
	s.SetKeepRaw(false)
	if _, err := s.WriteItems(context.Background(), []item.Item{storeChat("a", storeT0, "x", item.Neutral, 0)}); err != nil {
		t.Fatal(err)
	}
	if n := storeCount(t, s, `SELECT count(*) FROM raw_payloads`); n != 0 {
		t.Fatalf("%d raw payloads stored with keep_raw off", n)
	}
}

func TestStateRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lookout.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.GetState(ctx, "rss-news", "etag"); ok || err != nil {
		t.Fatalf("missing key: ok=%v err=%v", ok, err)
	}
	steps := []struct{ source, key, value string }{
		{"rss-news", "etag", `W/"abc"`},
		{"rss-news", "etag", `W/"def"`}, // replaces
		{"rss-news", "last_modified", "Wed, 25 Nov 2026 12:00:00 GMT"},
		{"other", "etag", ""}, // an empty value is a value
	}
	for _, st := range steps {
		if err := s.PutState(ctx, st.source, st.key, st.value); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = Open(ctx, path) // survives a restart
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range steps[1:] {
		got, ok, err := s.GetState(ctx, want.source, want.key)
		if err != nil || !ok || got != want.value {
			t.Errorf("%s/%s = %q ok=%v err=%v, want %q", want.source, want.key, got, ok, err, want.value)
		}
	}
}

func TestHealthRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := storeOpenTest(t)
	h := SourceHealth{Source: "brand-live", Kind: "bilibili_live", LastSuccess: storeT0, Items: 42, Reconnects: 1,
		UpdatedAt: storeT0.Add(time.Second)}
	if err := s.UpdateHealth(ctx, h); err != nil {
		t.Fatal(err)
	}
	h.LastErrorAt, h.LastError, h.Errors, h.Items = storeT0.Add(time.Minute), "dial tcp: connection refused", 1, 50
	h.State, h.Since, h.Broken = "broken", storeT0.Add(time.Minute), "dial: 3 attempts in a row failed; last: dial tcp: connection refused"
	if err := s.UpdateHealth(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateHealth(ctx, SourceHealth{Source: "a-feed", Kind: "rss"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Source != "a-feed" || !got[0].LastSuccess.IsZero() || got[0].UpdatedAt.IsZero() {
		t.Fatalf("ListHealth = %+v", got)
	}
	if !reflect.DeepEqual(got[1], h) {
		t.Errorf("round trip\n got %+v\nwant %+v", got[1], h)
	}
}

// TestBrokenSourcesAndPing: the sources whose latest source_broken sample
// is 1 are what a restart resumes as broken; Ping takes the write lock.
func TestBrokenSourcesAndPing(t *testing.T) {
	ctx := context.Background()
	s := storeOpenTest(t)
	sample := func(src string, at time.Duration, v float64) item.Item {
		return item.Item{Source: src, Platform: "test", Kind: item.KindMetric, Metric: item.MetricSourceBroken,
			ID: fmt.Sprintf("%s-%d", src, at), TS: storeT0.Add(at), Value: v}
	}
	if _, err := s.WriteItems(ctx, []item.Item{
		sample("still-broken", 0, 1), sample("still-broken", time.Minute, 1),
		sample("mended", 0, 1), sample("mended", time.Minute, 0),
		sample("fine", 0, 0),
		{Source: "room-metric", Platform: "test", Kind: item.KindMetric, Room: "r1", Metric: item.MetricSourceBroken, ID: "x", TS: storeT0, Value: 1},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.BrokenSources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, map[string]bool{"still-broken": true}) {
		t.Errorf("BrokenSources = %v", got)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping on a writable store: %v", err)
	}
	s.Close()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping on a closed store succeeded")
	}
}

func TestRecentItemIDs(t *testing.T) {
	ctx := context.Background()
	s := storeOpenTest(t)
	var batch []item.Item
	for i := range 10 {
		batch = append(batch, storeChat(fmt.Sprint(i), storeT0.Add(time.Duration(i)*time.Second), "x", item.Neutral, 0))
	}
	other := storeChat("x", storeT0, "x", item.Neutral, 0)
	other.Source = "other"
	batch = append(batch, other)
	if _, err := s.WriteItems(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		source string
		n      int
		want   []string
	}{
		{"brand-live", 3, []string{"9", "8", "7"}},
		{"other", 5, []string{"x"}},
		{"nobody", 5, []string{}},
		{"brand-live", 0, nil},
	} {
		got, err := s.RecentItemIDs(ctx, tc.source, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("RecentItemIDs(%s, %d) = %v, want %v", tc.source, tc.n, got, tc.want)
		}
	}
}

func TestReplayItemsOrderAndScores(t *testing.T) {
	ctx := context.Background()
	s := storeOpenTest(t)
	c1 := storeChat("c1", storeT0.Add(2*time.Second), "假货 退款", item.Negative, -0.9)
	c1.Labels = map[string]string{"brand": "acme"}
	c1.Score.Groups = []item.Match{
		{Group: "crisis", Category: "crisis", Severity: "red", Terms: []string{"假货", "退款"}},
		{Group: "quiet", Category: "misc", Severity: "green"},
	}
	c1.Score.Terms = []string{"假货", "退款"}
	c2 := storeChat("c2", storeT0, "好看", item.Positive, 0.7)
	c2.Score.Terms = []string{"好看"}
	c3 := storeChat("c3", storeT0.Add(2*time.Second), "客服呢", item.Negative, -0.5) // same ts as c1, written after it
	c3.Score.Groups = []item.Match{{Group: "service", Category: "service", Severity: "yellow", Terms: []string{"客服"}}}
	enter := item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindEnter, Room: "21452505", ID: "e1",
		Author: "new", TS: storeT0.Add(time.Second)}
	m1 := item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindMetric, Room: "21452505", ID: "m1",
		Metric: item.MetricViewers, Value: 900, TS: storeT0.Add(2 * time.Second)}
	m0 := item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindMetric, Room: "21452505",
		Metric: item.MetricViewers, Value: 1000, TS: storeT0.Add(500 * time.Millisecond)}
	late := storeChat("late", storeT0.Add(time.Hour), "outside the window", item.Neutral, 0)
	if _, err := s.WriteItems(ctx, []item.Item{c1, m1, late, c2, c3, enter, m0}); err != nil {
		t.Fatal(err)
	}
	var got []item.Item
	err := s.ReplayItems(ctx, storeT0, storeT0.Add(time.Minute), func(it item.Item) error {
		got = append(got, it)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []item.Item{c2, m0, enter, c1, c3, m1}
	for i := range want {
		want[i].Raw = nil // raw payloads are not replayed
	}
	if len(got) != len(want) {
		t.Fatalf("replayed %d items, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("item %d\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}

	// The backtest replays a database opened read-only.
	ro, err := OpenReadOnly(ctx, s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var roGot []item.Item
	if err := ro.ReplayItems(ctx, storeT0, storeT0.Add(time.Minute), func(it item.Item) error {
		roGot = append(roGot, it)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(roGot, got) {
		t.Errorf("read-only replay differs:\n got %+v\nwant %+v", roGot, got)
	}

	// fn's error stops the replay and comes back unchanged.
	stop := fmt.Errorf("enough")
	calls := 0
	err = s.ReplayItems(ctx, storeT0, storeT0.Add(time.Minute), func(item.Item) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("err %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	now := storeT0.Add(100 * 24 * time.Hour)
	day := 24 * time.Hour
	type ages struct{ items, raw, metrics int }
	for _, tc := range []struct {
		name       string
		raw, items time.Duration
		want       ages
		deleted    int64
	}{
		{"keep forever", 0, 0, ages{4, 4, 2}, 0},
		{"raw older than 7d", 7 * day, 0, ages{4, 1, 2}, 3},
		{"items older than 60d", 0, 60 * day, ages{2, 2, 1}, 2 + 1},
		{"both", 7 * day, 60 * day, ages{2, 1, 1}, 3 + 2 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storeOpenTest(t)
			var batch []item.Item
			for i, age := range []time.Duration{0, 10 * day, 61 * day, 90 * day} {
				it := storeChat(fmt.Sprint(i), now.Add(-age), "x", item.Negative, -1)
				it.Score.Terms = []string{"t"}
				it.Score.Groups = []item.Match{{Group: "g", Category: "crisis", Severity: "red", Terms: []string{"x"}}}
				batch = append(batch, it)
			}
			for _, age := range []time.Duration{day, 80 * day} {
				batch = append(batch, item.Item{Source: "s", Platform: "p", Room: "r", Kind: item.KindMetric,
					Metric: "viewers", Value: 1, TS: now.Add(-age)})
			}
			if _, err := s.WriteItems(ctx, batch); err != nil {
				t.Fatal(err)
			}
			n, err := s.Prune(ctx, now, tc.raw, tc.items)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.deleted {
				t.Errorf("deleted %d rows, want %d", n, tc.deleted)
			}
			got := ages{
				storeCount(t, s, `SELECT count(*) FROM items`),
				storeCount(t, s, `SELECT count(*) FROM raw_payloads`),
				storeCount(t, s, `SELECT count(*) FROM metrics`),
			}
			if got != tc.want {
				t.Errorf("left %+v, want %+v", got, tc.want)
			}
			// Cascades leave no orphans.
			for _, child := range []string{"item_groups", "item_terms", "raw_payloads"} {
				if n := storeCount(t, s, `SELECT count(*) FROM `+child+` WHERE item_id NOT IN (SELECT id FROM items)`); n != 0 {
					t.Errorf("%d orphan rows in %s", n, child)
				}
			}
			if n := storeCount(t, s, `SELECT count(*) FROM item_terms`); n != tc.want.items {
				t.Errorf("%d terms left, want %d", n, tc.want.items)
			}
		})
	}
}

func TestPruneChunks(t *testing.T) {
	ctx := context.Background()
	s := storeOpenTest(t)
	batch := make([]item.Item, storePruneChunk*2+17)
	for i := range batch {
		batch[i] = storeChat(fmt.Sprint(i), storeT0, "x", item.Neutral, 0)
	}
	if _, err := s.WriteItems(ctx, batch); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(ctx, storeT0.Add(48*time.Hour), time.Hour, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2 * len(batch)); n != want {
		t.Fatalf("deleted %d, want %d (every raw payload and item, over several chunks)", n, want)
	}
	if c := storeCount(t, s, `SELECT count(*) FROM items`); c != 0 {
		t.Fatalf("%d items left", c)
	}
}

// The 5-minute view puts each minute in its bucket.
func TestSentimentMinuteViews(t *testing.T) {
	s := storeOpenTest(t)
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var items []item.Item
	for i, m := range []int{0, 4, 5, 9, 14, 59} {
		label := item.Positive
		if i%2 == 1 {
			label = item.Negative
		}
		items = append(items, storeChat(fmt.Sprintf("v%d", i), base.Add(time.Duration(m)*time.Minute+30*time.Second), "主播好", label, 0.5))
	}
	if _, err := s.WriteItems(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := s.DB().QueryRow(`SELECT group_concat(substr(minute, 12, 5) || '=' || items || '/' || negative, ' ')
		FROM (SELECT * FROM sentiment_5m ORDER BY minute)`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "12:00=2/1 12:05=2/1 12:10=1/0 12:55=1/1"; got != want {
		t.Fatalf("sentiment_5m: %s, want %s", got, want)
	}
	if n := storeCount(t, s, `SELECT count(*) FROM sentiment_1m`); n != 6 {
		t.Fatalf("sentiment_1m has %d rows, want 6", n)
	}
}
