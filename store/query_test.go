package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"lookout/item"
)

// storeQueryFixture writes a small database with the shapes output has to
// handle: CJK text, NULLs, floats, a long line, a newline, binary bytes.
func storeQueryFixture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fixture.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := storeChat("a", storeT0, "假货!要退款", item.Negative, -0.875)
	a.Score.Groups = []item.Match{{Group: "crisis", Category: "crisis", Severity: "red", Terms: []string{"假货", "退款"}}}
	a.Score.Terms = []string{"假货", "退款"}
	b := storeChat("b", storeT0.Add(90*time.Second), "great stream, but the shipping took\ntwo weeks & the box was crushed; "+
		strings.Repeat("really ", 12)+"disappointed", item.Negative, -0.5)
	b.Raw = []byte{0x00, 0xff, 0x10}
	b.Author = `quote "me", ok`
	gift := item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindGift, Room: "21452505", ID: "g",
		Author: "粉丝", Text: "小心心", TS: storeT0.Add(2 * time.Minute), Value: 5.2, Count: 10}
	viewers := item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindMetric, Room: "21452505",
		Metric: item.MetricViewers, Value: 12000, TS: storeT0.Add(3 * time.Minute)}
	if _, err := s.WriteItems(context.Background(), []item.Item{a, b, gift, viewers}); err != nil {
		t.Fatal(err)
	}
	return path
}

// storeQueryCSV runs sqlText through Query and renders the result as
// plain comma-separated lines (NULL empty), enough to compare answers.
func storeQueryCSV(ctx context.Context, path, sqlText string) (string, error) {
	var c storeCollect
	err := Query(ctx, path, sqlText, QueryOptions{}, &c)
	return c.b.String(), err
}

type storeCollect struct{ b strings.Builder }

func (c *storeCollect) Columns(cols []string) error {
	c.b.WriteString(strings.Join(cols, ",") + "\n")
	return nil
}

func (c *storeCollect) Row(vals []any) error {
	for i, v := range vals {
		if i > 0 {
			c.b.WriteByte(',')
		}
		switch x := v.(type) {
		case nil:
		case float64:
			c.b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
		case []byte:
			c.b.Write(x)
		default:
			fmt.Fprint(&c.b, x)
		}
	}
	c.b.WriteByte('\n')
	return nil
}

func TestQueryRejectsWrites(t *testing.T) {
	db := storeQueryFixture(t)
	dir := filepath.Dir(db)
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO items (source, platform, room, kind, ts) VALUES ('x', 'x', 'x', 'chat', 'x')`,
		`UPDATE items SET text = 'gone'`,
		`DELETE FROM items`,
		`REPLACE INTO source_state VALUES ('a', 'b', 'c', 'd')`,
		`DROP TABLE items`,
		`DROP VIEW sentiment_hourly`,
		`CREATE TABLE t (x)`,
		`CREATE INDEX i ON items (text)`,
		`ALTER TABLE items ADD COLUMN y`,
		`ATTACH DATABASE '` + filepath.Join(dir, "other.db") + `' AS other`,
		`PRAGMA user_version = 7`,
		`PRAGMA journal_mode = DELETE`,
		`VACUUM`,
		`VACUUM INTO '` + filepath.Join(dir, "copy.db") + `'`,
		`WITH x AS (SELECT 1) DELETE FROM items`,
		`delete from items where 1`,
	} {
		t.Run(strings.Fields(stmt)[0], func(t *testing.T) {
			_, err := storeQueryCSV(context.Background(), db, stmt)
			if !errors.Is(err, ErrQueryReadOnly) {
				t.Fatalf("%s: err = %v, want ErrQueryReadOnly", stmt, err)
			}
			if !strings.Contains(err.Error(), "query: the database is opened read-only; lookout query only runs SELECT statements") {
				t.Fatalf("message %q is not the clear one", err)
			}
		})
	}
	after, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the database file changed")
	}
	for _, f := range []string{"other.db", "copy.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s was created", f)
		}
	}
	s, err := Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := storeCount(t, s, `SELECT count(*) FROM items WHERE text != 'gone'`); n != 3 {
		t.Fatalf("%d items left, want 3", n)
	}
}

func TestQueryErrors(t *testing.T) {
	db := storeQueryFixture(t)
	for _, tc := range []struct {
		name, db, sql, want string
	}{
		{"no sql", db, "  ", "no SQL"},
		{"missing db", filepath.Join(t.TempDir(), "nope.db"), "SELECT 1", "does not exist"},
		{"syntax", db, "SELEC 1", "query: "},
		{"no such table", db, "SELECT * FROM nope", "no such table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := storeQueryCSV(context.Background(), tc.db, tc.sql)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "query: ") {
				t.Fatalf("err = %v, want a query: error containing %q", err, tc.want)
			}
		})
	}
}

func TestQueryWhileDaemonWrites(t *testing.T) {
	// WAL lets `lookout query` read while the writer holds the write lock.
	ctx := context.Background()
	s := storeOpenTest(t)
	if _, err := s.WriteItems(ctx, storeItemsN(0, 3)); err != nil {
		t.Fatal(err)
	}
	tx, err := s.DB().BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM items`); err != nil {
		t.Fatal(err)
	}
	out, err := storeQueryCSV(ctx, s.Path(), `SELECT count(*) AS n FROM items`)
	if err != nil {
		t.Fatal(err)
	}
	if out != "n\n3\n" {
		t.Fatalf("got %q, want the committed 3 rows", out)
	}
}

// A database from before a migration gets a hint, not only SQLite's "no
// such column": query opens it read-only and never migrates it.
func TestQueryOnAnOlderSchemaSaysHowToUpgrade(t *testing.T) {
	db := storeQueryFixture(t)
	s, err := Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	migs, _ := Migrations()
	last, prev := migs[len(migs)-1].Version, migs[len(migs)-2].Version
	var name, applied string
	if err := s.DB().QueryRow(`SELECT name, applied_at FROM schema_migrations WHERE version = ?`, last).Scan(&name, &applied); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(`DELETE FROM schema_migrations WHERE version = ?`, last); err != nil {
		t.Fatal(err)
	}
	_, err = storeQueryCSV(context.Background(), db, "SELECT no_such_col FROM items")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d and this build's is %d", prev, last)) {
		t.Fatalf("err = %v, want the upgrade hint", err)
	}
	// A current database gets SQLite's message alone.
	if _, err := s.DB().Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, last, name, applied); err != nil {
		t.Fatal(err)
	}
	_, err = storeQueryCSV(context.Background(), db, "SELECT no_such_col FROM items")
	if err == nil || strings.Contains(err.Error(), "schema version") {
		t.Fatalf("err = %v on a current database", err)
	}
}
