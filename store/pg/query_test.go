package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"lookout/item"
	"lookout/store"
)

type collect struct {
	cols []string
	rows [][]any
}

func (c *collect) Columns(cols []string) error { c.cols = cols; return nil }
func (c *collect) Row(vals []any) error {
	c.rows = append(c.rows, append([]any(nil), vals...))
	return nil
}

// TestQueryReadOnly: `lookout query` on PostgreSQL runs reads and refuses
// every statement that could change the database or the server, in the
// client or in the server's read-only transaction, and leaves the data
// as it was.
func TestQueryReadOnly(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	dsn := dsnOf(t, s)
	if _, err := s.WriteItems(ctx, []item.Item{chat("a", t0, "客服不理人", item.Negative, -0.8, "客服")}); err != nil {
		t.Fatal(err)
	}
	var c collect
	if err := Query(ctx, dsn, `SELECT room, items, negative, negative_share, minute FROM sentiment_1m`, store.QueryOptions{}, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.rows) != 1 || fmt.Sprint(c.rows[0][:4]) != "[100 1 1 1]" {
		t.Fatalf("sentiment_1m = %v", c.rows)
	}
	if tm, ok := c.rows[0][4].(time.Time); !ok || !tm.Equal(t0) {
		t.Errorf("minute = %#v, want %v", c.rows[0][4], t0)
	}
	c = collect{}
	if err := Query(ctx, dsn, `WITH x AS (SELECT terms FROM items) SELECT terms FROM x`, store.QueryOptions{}, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.rows) != 1 || c.rows[0][0] != `["客服"]` {
		t.Errorf("jsonb shown as %#v", c.rows)
	}

	for _, q := range []string{
		`INSERT INTO items (source, platform, room, kind, ts) VALUES ('x','x','x','chat',now())`,
		`UPDATE items SET text = 'x'`,
		`DELETE FROM items`,
		`DROP TABLE items`,
		`CREATE TABLE evil (x int)`,
		`TRUNCATE items`,
		`SET TRANSACTION READ WRITE`,
		`SET default_transaction_read_only = off`,
		`COPY items TO PROGRAM 'touch /tmp/lookout-pwned'`,
		`COPY (SELECT 1) TO '/tmp/lookout-pwned'`,
		`DO $$ BEGIN DELETE FROM items; END $$`,
		`COMMIT`,
		`BEGIN READ WRITE`,
		`WITH gone AS (DELETE FROM items RETURNING id) SELECT count(*) FROM gone`,
		`SELECT * INTO evil FROM items`,
		`SELECT nextval(pg_get_serial_sequence('items', 'id'))`,
		`SELECT set_config('transaction_read_only', 'off', false)`,
		`EXPLAIN ANALYZE DELETE FROM items`,
		`-- a comment first
		 GRANT ALL ON items TO PUBLIC`,
		`(SELECT 1); DELETE FROM items`,
	} {
		err := Query(ctx, dsn, q, store.QueryOptions{}, &collect{})
		if err == nil {
			t.Errorf("%q: ran", q)
			continue
		}
		if !errors.Is(err, store.ErrQueryReadOnly) && !strings.Contains(err.Error(), "one statement") &&
			!strings.Contains(err.Error(), "read-only") {
			t.Errorf("%q: refused with an unclear error: %v", q, err)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM items WHERE text = '客服不理人'`); n != 1 {
		t.Errorf("items changed: %d", n)
	}
	if n := count(t, s, `SELECT count(*) FROM pg_tables WHERE tablename = 'evil'`); n != 0 {
		t.Errorf("a table was created")
	}
}

// TestQueryTimeout: a statement running past --timeout is stopped by the
// server's statement_timeout and says so.
func TestQueryTimeout(t *testing.T) {
	s := openTest(t)
	start := time.Now()
	err := Query(context.Background(), dsnOf(t, s), `SELECT pg_sleep(10)`, store.QueryOptions{Timeout: 300 * time.Millisecond}, &collect{})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "--timeout") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

func dsnOf(t *testing.T, s *Store) string {
	t.Helper()
	return s.Pool().Config().ConnConfig.ConnString()
}
