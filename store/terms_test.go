package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"lookout/item"
)

// TestMigrate0003MovesTermsIntoItems upgrades a database written at schema
// version 2 (terms in the item_terms table) and checks that every term is
// still there, through the item_terms view, hot_terms_hourly and replay,
// and that the writer keeps working on the upgraded file.
func TestMigrate0003MovesTermsIntoItems(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) < 3 || migs[2].Version != 3 {
		t.Fatalf("want migration 0003, have %d migrations", len(migs))
	}
	db, err := sql.Open("sqlite3", storeDSN(path, "_journal_mode=WAL&_foreign_keys=on&_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	if err := storeApplyMigrations(ctx, db, path, migs[:2]); err != nil {
		t.Fatal(err)
	}
	// Rows as the version-2 writer stored them.
	for _, q := range []string{
		`INSERT INTO items (id, source, platform, room, kind, item_id, text, ts, sentiment, score)
		 VALUES (1, 's', 'bilibili', 'r1', 'chat', 'a', '假货 要退款', '2026-11-25T12:00:00.000Z', 'negative', -0.8),
		        (2, 's', 'bilibili', 'r1', 'chat', 'b', '物流太慢', '2026-11-25T12:30:00.000Z', 'negative', -0.5),
		        (3, 's', 'bilibili', 'r2', 'chat', 'c', 'hello', '2026-11-25T13:10:00.000Z', 'positive', 0.6),
		        (4, 's', 'bilibili', 'r2', 'chat', 'd', '"quoted"', '2026-11-25T13:20:00.000Z', 'neutral', 0)`,
		`INSERT INTO item_terms (item_id, term) VALUES (1, '退款'), (1, '假货'), (2, '物流'), (2, '退款'), (4, 'say "hi"\')`,
		`INSERT INTO item_groups (item_id, grp, category, severity, keyword) VALUES (1, 'crisis', 'crisis', 'red', '退款')`,
		`INSERT INTO raw_payloads (item_id, payload) VALUES (1, x'7b7d')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open (migrating 2 → %d): %v", migs[len(migs)-1].Version, err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != migs[len(migs)-1].Version {
		t.Fatalf("schema version %d, %v", v, err)
	}
	var kind string
	if err := s.DB().QueryRow(`SELECT type FROM sqlite_schema WHERE name = 'item_terms'`).Scan(&kind); err != nil || kind != "view" {
		t.Fatalf("item_terms is a %q (%v), want a view", kind, err)
	}
	// The JSON column, terms sorted as the old primary key kept them.
	wantCol := map[int]string{1: `["假货","退款"]`, 2: `["物流","退款"]`, 4: `["say \"hi\"\\"]`}
	rows, err := s.DB().Query(`SELECT id, terms FROM items ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		var terms sql.NullString
		if err := rows.Scan(&id, &terms); err != nil {
			t.Fatal(err)
		}
		if want, ok := wantCol[id]; terms.Valid != ok || terms.String != want {
			t.Errorf("item %d terms = %v, want %q (NULL when none)", id, terms, want)
		}
	}
	rows.Close()
	// The view answers what the table answered.
	if got := storeStrings(t, s, `SELECT item_id || ':' || term FROM item_terms ORDER BY item_id, term`); !reflect.DeepEqual(got,
		[]string{"1:假货", "1:退款", "2:物流", "2:退款", `4:say "hi"\`}) {
		t.Errorf("item_terms rows %q", got)
	}
	if got := storeStrings(t, s, `SELECT hour || ' ' || room || ' ' || term || ' ' || mentions || ' ' || negative_mentions
		FROM hot_terms_hourly ORDER BY hour, room, term`); !reflect.DeepEqual(got, []string{
		"2026-11-25T12:00:00Z r1 假货 1 1", "2026-11-25T12:00:00Z r1 物流 1 1", "2026-11-25T12:00:00Z r1 退款 2 2",
		`2026-11-25T13:00:00Z r2 say "hi"\ 1 0`}) {
		t.Errorf("hot_terms_hourly rows %q", got)
	}
	// Untouched: groups, raw payloads, the other views.
	if n := storeCount(t, s, `SELECT count(*) FROM keyword_hits WHERE keyword = '退款'`); n != 1 {
		t.Errorf("keyword_hits: %d rows", n)
	}
	if n := storeCount(t, s, `SELECT count(*) FROM raw_payloads`); n != 1 {
		t.Errorf("raw_payloads: %d rows", n)
	}
	// Replay restores the migrated terms.
	var replayed []string
	err = s.ReplayItems(ctx, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
		func(it item.Item) error {
			replayed = append(replayed, it.ID+"="+strings.Join(it.Score.Terms, ","))
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=假货,退款", "b=物流,退款", "c=", `d=say "hi"\`}; !reflect.DeepEqual(replayed, want) {
		t.Errorf("replayed %q, want %q", replayed, want)
	}
	// The writer works on the upgraded file, and retention still takes
	// an item's terms with it.
	it := storeChat("e", storeT0.Add(2*time.Hour), "客服不理人", item.Negative, -0.7)
	it.Score.Terms = []string{"客服", "客服", "投诉"}
	if _, err := s.WriteItems(ctx, []item.Item{it}); err != nil {
		t.Fatal(err)
	}
	if got := storeStrings(t, s, `SELECT t.term FROM items i JOIN item_terms t ON t.item_id = i.id WHERE i.item_id = 'e'`); !reflect.DeepEqual(got,
		[]string{"客服", "投诉"}) {
		t.Errorf("new item's terms %q, want each once in order", got)
	}
	if _, err := s.Prune(ctx, storeT0.Add(4*time.Hour), 0, 90*time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := storeCount(t, s, `SELECT count(*) FROM item_terms`); n != 0 {
		t.Errorf("%d terms left after every item was pruned", n)
	}
}

// TestTermsQueriesUseIndexes: reading item_terms through the view must be
// driven by the items indexes (room and time), never by walking every
// item's JSON.
func TestTermsQueriesUseIndexes(t *testing.T) {
	s := storeOpenTest(t)
	if _, err := s.WriteItems(context.Background(), storeBenchItems(2000, 0)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ query, index string }{
		{`SELECT t.term, count(*) AS mentions FROM items i JOIN item_terms t ON t.item_id = i.id
		  WHERE i.source = 'brand-live' AND i.room = '21452505' AND i.ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 minutes')
		  GROUP BY t.term ORDER BY mentions DESC, t.term LIMIT 10`, "items_source_room_ts"},
		{storeExampleQuery(t, "What are people complaining about"), "items_ts"},
		{`SELECT term, mentions FROM hot_terms_hourly WHERE source = 'brand-live' AND room = '21452505'`, "items_source_room_ts"},
	} {
		plan := strings.Join(storeStrings(t, s, `EXPLAIN QUERY PLAN `+tc.query), "\n")
		if !strings.Contains(plan, "INDEX "+tc.index) || strings.Contains(plan, "SCAN i\n") || strings.HasSuffix(plan, "SCAN i") {
			t.Errorf("query\n%s\nplan:\n%s\nwant a search of items by %s, no scan of items", tc.query, plan, tc.index)
		}
	}
}

// TestCrisisKeywordsQueryUsesTimeIndex: the README's "top crisis keywords
// today" walks today's items by time and looks up their keyword hits; the
// view it replaces made SQLite read every crisis hit ever stored and then
// look up each one's item to check its time.
func TestCrisisKeywordsQueryUsesTimeIndex(t *testing.T) {
	s := storeOpenTest(t)
	plan := strings.Join(storeStrings(t, s, `EXPLAIN QUERY PLAN `+storeExampleQuery(t, "Top crisis keywords")), "\n")
	if !strings.Contains(plan, "SEARCH i USING INDEX items_ts") || strings.Contains(plan, "SCAN") {
		t.Errorf("plan:\n%s\nwant a search of items by items_ts, then of item_groups by item, no scan", plan)
	}
}

func storeExampleQuery(t *testing.T, prefix string) string {
	t.Helper()
	for _, q := range ExampleQueries {
		if strings.HasPrefix(q.Question, prefix) {
			return q.SQL
		}
	}
	t.Fatalf("no example query %q", prefix)
	return ""
}

// storeStrings runs a query and returns its last column as strings.
func storeStrings(t *testing.T, s *Store, query string) []string {
	t.Helper()
	rows, err := s.DB().Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if b, ok := vals[len(vals)-1].([]byte); ok {
			out = append(out, string(b))
		} else {
			out = append(out, fmt.Sprint(vals[len(vals)-1]))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
