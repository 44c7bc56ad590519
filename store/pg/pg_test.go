package pg

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lookout/internal/pgtest"
	"lookout/item"
	"lookout/store"
)

var t0 = time.Date(2026, 11, 11, 20, 0, 0, 0, time.UTC)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func chat(id string, ts time.Time, text string, label item.Label, score float64, terms ...string) item.Item {
	return item.Item{Source: "bili", Platform: "bilibili", Room: "100", Kind: item.KindChat, ID: id, AuthorID: "u" + id,
		Author: "观众", Text: text, TS: ts, Labels: map[string]string{"brand": "acme"},
		Score: item.Score{Scored: true, Label: label, Value: score, Prob: 0.8, Lang: "zh", Terms: terms},
		Raw:   []byte(`{"cmd":"DANMU_MSG"}`)}
}

func count(t *testing.T, s *Store, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.Pool().QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestWriteItemsDedupe: items and metric samples are stored once per
// (source, item id), within a batch and across batches; items without an
// id always; WriteItems returns how many were new, on a real PostgreSQL.
func TestWriteItemsDedupe(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a := chat("a", t0, "客服不理人", item.Negative, -0.8, "客服")
	b := chat("b", t0.Add(time.Second), "好看", item.Positive, 0.7)
	noID := chat("", t0.Add(2*time.Second), "无编号", item.Neutral, 0)
	m := item.Item{Source: "bili", Platform: "bilibili", Room: "100", Kind: item.KindMetric, Metric: "viewers", Value: 1200, TS: t0, ID: "v1"}
	for _, tc := range []struct {
		name  string
		batch []item.Item
		want  int
	}{
		{"first", []item.Item{a, b, a, m, m, noID}, 4},
		{"again", []item.Item{b, a, m, noID}, 1},
		{"state only", []item.Item{item.StateItem("bili", map[string]string{"cursor": "42"})}, 0},
	} {
		n, err := s.WriteItems(ctx, tc.batch)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n != tc.want {
			t.Errorf("%s: inserted %d, want %d", tc.name, n, tc.want)
		}
	}
	for q, want := range map[string]int64{
		`SELECT count(*) FROM items`:                                              4,
		`SELECT count(*) FROM items WHERE item_id IS NULL`:                        2,
		`SELECT count(*) FROM metrics`:                                            1,
		`SELECT count(*) FROM raw_payloads`:                                       4,
		`SELECT count(*) FROM item_terms WHERE term = '客服'`:                       1,
		`SELECT count(*) FROM source_state WHERE key = 'cursor' AND value = '42'`: 1,
		`SELECT sum(items) FROM room_minutes`:                                     4,
		`SELECT count(*) FROM items WHERE labels->>'brand' = 'acme'`:              4,
	} {
		if got := count(t, s, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}

// TestWriteItemsBadText: text PostgreSQL cannot hold (invalid UTF-8, NUL)
// is stored with replacement characters instead of failing the batch.
func TestWriteItemsBadText(t *testing.T) {
	s := openTest(t)
	bad := chat("x", t0, "a\x00b\xffc", item.Negative, -0.5, "b\xff")
	if n, err := s.WriteItems(context.Background(), []item.Item{bad}); err != nil || n != 1 {
		t.Fatalf("WriteItems = %d, %v", n, err)
	}
	if n := count(t, s, `SELECT count(*) FROM items WHERE text = 'a'||chr(65533)||'b'||chr(65533)||'c'`); n != 1 {
		t.Errorf("cleaned text not stored as expected")
	}
}

// TestMigrateConcurrently: processors opening a fresh database at once
// apply the schema once (the advisory lock) and all succeed.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := Open(context.Background(), dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	migs, _ := Migrations()
	if v, err := s.SchemaVersion(context.Background()); err != nil || v != migs[len(migs)-1].Version {
		t.Errorf("schema version = %d, %v", v, err)
	}
	if n := count(t, s, `SELECT count(*) FROM schema_migrations`); n != int64(len(migs)) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(migs))
	}
}

// TestOpenErrorHidesPassword: a DSN's password never reaches an error.
func TestOpenErrorHidesPassword(t *testing.T) {
	server := pgtest.ServerDSN(t)
	_ = server
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://lookout:s3cret-pw@127.0.0.1:1/lookout?sslmode=disable",
		"host=127.0.0.1 port=1 user=lookout password=s3cret-pw dbname=x sslmode=disable",
		"postgres://lookout:s3cret-pw@[bad",
	} {
		_, err := Open(ctx, dsn)
		if err == nil {
			t.Fatalf("Open(%s) succeeded", Redact(dsn))
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// TestParityWithSQLite writes the same batches (new items with keyword
// matches and terms, duplicates, gifts, metrics, edits in and after the
// batch of their original, an edit of an item never stored, deletes,
// collector state, room profiles) to a SQLite store and to a PostgreSQL
// store, and compares what each holds, rollups and views included.
func TestParityWithSQLite(t *testing.T) {
	ctx := context.Background()
	p := openTest(t)
	lite, err := store.Open(ctx, filepath.Join(t.TempDir(), "lookout.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()

	complaint := chat("c1", t0, "退款三周了还没到账", item.Negative, -0.9, "退款", "到账", "退款")
	complaint.Score.Groups = []item.Match{{Group: "refund", Category: "crisis", Severity: "red", Terms: []string{"退款"}}}
	praise := chat("c2", t0.Add(30*time.Second), "主播好看", item.Positive, 0.8, "主播")
	spam := chat("c3", t0.Add(65*time.Second), "差评差评", item.Negative, -0.7, "差评")
	other := chat("c4", t0.Add(70*time.Second), "物流太慢", item.Negative, -0.95, "物流")
	other.Room = "200"
	other.Score.Groups = []item.Match{{Group: "logistics", Category: "crisis", Severity: "yellow", Terms: []string{"物流", "慢"}},
		{Group: "service", Category: "service", Severity: "green"}}
	other.Score.Terms = []string{"物流", "太慢"}
	gift := item.Item{Source: "bili", Platform: "bilibili", Room: "100", Kind: item.KindGift, ID: "g1", Author: "土豪",
		Text: "小电视", TS: t0.Add(10 * time.Second), Value: 1245, Count: 3}
	metric := item.Item{Source: "bili", Platform: "bilibili", Room: "100", Kind: item.KindMetric, Metric: "viewers", Value: 88000, TS: t0, ID: "m1"}
	edit := func(it item.Item, text string, label item.Label, v float64, at time.Time, terms ...string) item.Item {
		it.Text, it.Score.Label, it.Score.Value, it.Score.Terms = text, label, v, terms
		it.Score.Groups = nil
		it.Change, it.ChangedAt = item.ChangeEdit, at
		return it
	}
	del := func(it item.Item, at time.Time) item.Item {
		return item.Item{Source: it.Source, ID: it.ID, Kind: it.Kind, Change: item.ChangeDelete, ChangedAt: at}
	}
	never := edit(chat("c9", t0.Add(5*time.Second), "", item.Neutral, 0), "后来改的", item.Negative, -0.6, t0.Add(time.Hour), "改")
	batches := [][]item.Item{
		{complaint, praise, gift, metric, complaint, edit(praise, "主播一般", item.Negative, -0.3, t0.Add(time.Minute), "一般")},
		{praise, spam, other, metric, item.StateItem("bili", map[string]string{"cursor": "7", "etag": "x"})},
		{edit(complaint, "已退款，谢谢", item.Positive, 0.6, t0.Add(2*time.Hour), "退款"), del(spam, t0.Add(3*time.Hour)), never,
			store.RoomProfilesItem([]store.RoomProfile{{Rule: "neg", Source: "bili", Room: "100", Profile: `{"n":3}`}})},
	}
	for i, b := range batches {
		nl, err := lite.WriteItems(ctx, b)
		if err != nil {
			t.Fatalf("sqlite batch %d: %v", i, err)
		}
		np, err := p.WriteItems(ctx, b)
		if err != nil {
			t.Fatalf("postgres batch %d: %v", i, err)
		}
		if nl != np {
			t.Errorf("batch %d: sqlite stored %d new, postgres %d", i, nl, np)
		}
	}
	// Each query is asked of both stores; timestamps are compared as
	// seconds since the epoch.
	for _, q := range []struct{ lite, pg string }{
		{`SELECT item_id, kind, coalesce(text,''), coalesce(sentiment,''), coalesce(metric,''), coalesce(value,0), coalesce(count,-1),
			coalesce(terms,''), CAST(strftime('%s', ts) AS INTEGER), edited_at IS NOT NULL, deleted_at IS NOT NULL FROM items ORDER BY item_id`,
			`SELECT item_id, kind, coalesce(text,''), coalesce(sentiment,''), coalesce(metric,''), coalesce(value,0), coalesce(count,-1),
			coalesce(replace(terms::text, '", "', '","'),''), extract(epoch FROM ts)::bigint, edited_at IS NOT NULL, deleted_at IS NOT NULL FROM items ORDER BY item_id`},
		{`SELECT i.item_id, g.grp, g.keyword FROM item_groups g JOIN items i ON i.id = g.item_id ORDER BY 1, 2, 3`,
			`SELECT i.item_id, g.grp, g.keyword FROM item_groups g JOIN items i ON i.id = g.item_id ORDER BY 1, 2, 3`},
		{`SELECT i.item_id, v.text, v.sentiment FROM item_versions v JOIN items i ON i.id = v.item_id ORDER BY 1, 2`,
			`SELECT i.item_id, v.text, v.sentiment FROM item_versions v JOIN items i ON i.id = v.item_id ORDER BY 1, 2`},
		{`SELECT source, room, CAST(strftime('%s', minute) AS INTEGER), kind, sentiment, items, units, value,
			(SELECT item_id FROM items WHERE id = best_id) FROM room_minutes WHERE items <> 0 OR units <> 0 ORDER BY 1, 2, 3, 4, 5`,
			`SELECT source, room, extract(epoch FROM minute)::bigint, kind, sentiment, items, units, value,
			(SELECT item_id FROM items WHERE id = best_id) FROM room_minutes WHERE items <> 0 OR units <> 0 ORDER BY 1, 2, 3, 4, 5`},
		{`SELECT source, room, CAST(strftime('%s', minute) AS INTEGER), term, sentiment, mentions FROM room_minute_terms WHERE mentions <> 0 ORDER BY 1, 2, 3, 4, 5`,
			`SELECT source, room, extract(epoch FROM minute)::bigint, term, sentiment, mentions FROM room_minute_terms WHERE mentions <> 0 ORDER BY 1, 2, 3, 4, 5`},
		{`SELECT name, value, item_id FROM metrics ORDER BY 1`, `SELECT name, value, item_id FROM metrics ORDER BY 1`},
		{`SELECT source, key, value FROM source_state ORDER BY 1, 2`, `SELECT source, key, value FROM source_state ORDER BY 1, 2`},
		{`SELECT rule, source, room, profile FROM room_profiles`, `SELECT rule, source, room, profile FROM room_profiles`},
		{`SELECT room, items, positive, negative, negative_share FROM sentiment_1m ORDER BY room, minute`,
			`SELECT room, items, positive, negative, negative_share::float8 FROM sentiment_1m ORDER BY room, minute`},
		{`SELECT room, term, mentions, negative_mentions FROM hot_terms_hourly ORDER BY 1, 2`,
			`SELECT room, term, mentions, negative_mentions FROM hot_terms_hourly ORDER BY 1, 2`},
		{`SELECT i.item_id, k.grp, k.keyword FROM keyword_hits k JOIN items i ON i.id = k.item_id ORDER BY 1, 2, 3`,
			`SELECT i.item_id, k.grp, k.keyword FROM keyword_hits k JOIN items i ON i.id = k.item_id ORDER BY 1, 2, 3`},
		{`SELECT i.item_id, c.groups, c.severity, length(c.keywords) FROM crisis_items c JOIN items i ON i.id = c.id`,
			`SELECT i.item_id, c.groups, c.severity, length(c.keywords) FROM crisis_items c JOIN items i ON i.id = c.id`},
		{`SELECT i.item_id, t.term FROM item_terms t JOIN items i ON i.id = t.item_id ORDER BY 1, 2`,
			`SELECT i.item_id, t.term FROM item_terms t JOIN items i ON i.id = t.item_id ORDER BY 1, 2`},
		{`SELECT count(*) FROM raw_payloads`, `SELECT count(*) FROM raw_payloads`},
	} {
		want := liteRows(t, lite, q.lite)
		got := pgRows(t, p, q.pg)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s\n postgres:\n  %s\n sqlite:\n  %s", q.pg, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
}

func liteRows(t *testing.T, s *store.Store, q string) []string {
	t.Helper()
	rows, err := s.DB().Query(q)
	if err != nil {
		t.Fatalf("sqlite %s: %v", q, err)
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
		out = append(out, render(vals))
	}
	return out
}

func pgRows(t *testing.T, s *Store, q string) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), q)
	if err != nil {
		t.Fatalf("postgres %s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, render(vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// render prints a row with numbers and booleans in one form for both
// drivers: SQLite gives integers for booleans and []byte for text.
func render(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case nil:
			parts[i] = "NULL"
		case []byte:
			parts[i] = string(x)
		case bool:
			parts[i] = map[bool]string{false: "0", true: "1"}[x]
		case float64:
			parts[i] = fmt.Sprintf("%g", x)
		case float32:
			parts[i] = fmt.Sprintf("%g", x)
		default:
			parts[i] = fmt.Sprint(x)
		}
	}
	return strings.Join(parts, "|")
}

func pgtestNewDatabase(b testing.TB) string { return pgtest.NewDatabase(b) }
