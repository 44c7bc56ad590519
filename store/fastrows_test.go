package store

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/mattn/go-sqlite3"

	"lookout/item"
)

// storeRawConn runs f on a raw connection of a fresh store.
func storeRawConn(t *testing.T, f func(c *sqlite3.SQLiteConn) error) *Store {
	t.Helper()
	s := storeOpenTest(t)
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Raw(func(dc any) error { return f(dc.(*sqlite3.SQLiteConn)) }); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStoreStmtHandle: the statement under go-sqlite3's is where the fast
// path reads it. A driver upgrade that moves it fails here, not silently
// in every batch.
func TestStoreStmtHandle(t *testing.T) {
	storeRawConn(t, func(c *sqlite3.SQLiteConn) error {
		st, err := storePrepareRaw(c, `SELECT 1`)
		if err != nil {
			return err
		}
		defer st.close()
		if storeStmtHandle(st.st) == nil {
			t.Fatal("no statement handle in go-sqlite3's SQLiteStmt")
		}
		return nil
	})
}

// TestStoreInsertRows: every value type the encoding carries reaches
// SQLite as go-sqlite3 would bind it, rows in full statements and in the
// tail alike; a failing row reports SQLite's code and message.
func TestStoreInsertRows(t *testing.T) {
	type row struct {
		a, b, c, d any
	}
	rows := []row{
		{nil, "", []byte{}, int64(0)},
		{"text", "中文，退款！", []byte("blob\x00with nul"), int64(-1)},
		{"nul\x00inside", "invalid \xff utf-8", nil, int64(math.MaxInt64)},
		{float64(1.5), math.Inf(-1), int64(42), true},
		{strings.Repeat("长", 10000), false, float64(-0.25), int64(math.MinInt64)},
	}
	for _, per := range []int{1, 2, 5, 8} { // per 8: all in the tail
		t.Run(fmt.Sprint(per), func(t *testing.T) {
			storeRawConn(t, func(c *sqlite3.SQLiteConn) error {
				if _, err := c.Exec(`CREATE TABLE t (n INTEGER, a, b, c, d)`, nil); err != nil {
					return err
				}
				ins := func(k int) *storeStmt {
					st, err := storePrepareRaw(c, `INSERT INTO t (a, b, c, d) VALUES `+storeValues(k, 4))
					if err != nil {
						t.Fatal(err)
					}
					return st
				}
				many := ins(per)
				defer many.close()
				var tail *storeStmt
				if rest := len(rows) % per; rest > 0 {
					tail = ins(rest)
					defer tail.close()
				}
				var enc storeEncodedRows
				for i, r := range rows {
					args := []driver.NamedValue{{Value: r.a}, {Value: r.b}, {Value: r.c}, {Value: r.d}}
					if err := enc.add(&item.Item{}, fmt.Sprint(i), args); err != nil {
						t.Fatal(err)
					}
				}
				if err := storeInsertRows(many, per, tail, 4, &enc); err != nil {
					t.Fatal(err)
				}
				// The same rows through go-sqlite3's own binding.
				for _, r := range rows {
					if _, err := c.Exec(`INSERT INTO t (n, a, b, c, d) VALUES (1, ?, ?, ?, ?)`,
						[]driver.Value{r.a, r.b, r.c, r.d}); err != nil {
						t.Fatal(err)
					}
				}
				q, err := c.Query(`SELECT a, b, c, d, typeof(a), typeof(b), typeof(c), typeof(d) FROM t ORDER BY n IS NOT NULL, rowid`, nil)
				if err != nil {
					return err
				}
				defer q.Close()
				var got []string
				for {
					dest := make([]driver.Value, 8)
					if err := q.Next(dest); err != nil {
						break
					}
					var b bytes.Buffer
					for _, v := range dest {
						fmt.Fprintf(&b, "%T:%q|", v, fmt.Sprint(v))
					}
					got = append(got, b.String())
				}
				if len(got) != 2*len(rows) {
					t.Fatalf("%d rows stored, want %d", len(got), 2*len(rows))
				}
				for i := range rows {
					if got[i] != got[len(rows)+i] {
						t.Errorf("row %d:\n fast  %s\n sqlite3 %s", i, got[i], got[len(rows)+i])
					}
				}
				return nil
			})
		})
	}
}

func TestStoreInsertRowsError(t *testing.T) {
	storeRawConn(t, func(c *sqlite3.SQLiteConn) error {
		if _, err := c.Exec(`CREATE TABLE t (a TEXT NOT NULL)`, nil); err != nil {
			return err
		}
		many, err := storePrepareRaw(c, `INSERT INTO t (a) VALUES (?), (?)`)
		if err != nil {
			return err
		}
		defer many.close()
		var enc storeEncodedRows
		for _, v := range []any{"x", "y", "z", nil} {
			if err := enc.add(&item.Item{}, "", []driver.NamedValue{{Value: v}}); err != nil {
				t.Fatal(err)
			}
		}
		err = storeInsertRows(many, 2, nil, 1, &enc)
		var se sqlite3.Error
		if !errors.As(err, &se) || se.Code != sqlite3.ErrConstraint || !strings.Contains(err.Error(), "NOT NULL") {
			t.Fatalf("err = %v, want a NOT NULL constraint error", err)
		}
		// The statement is left reset, with no bindings: it runs again.
		var ok storeEncodedRows
		for _, v := range []any{"p", "q"} {
			if err := ok.add(&item.Item{}, "", []driver.NamedValue{{Value: v}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := storeInsertRows(many, 2, nil, 1, &ok); err != nil {
			t.Fatal(err)
		}
		for _, v := range []any{struct{}{}, 42} { // go-sqlite3 binds neither
			if err := enc.add(&item.Item{}, "", []driver.NamedValue{{Value: v}}); err == nil {
				t.Errorf("a %T argument was encoded", v)
			}
		}
		return nil
	})
}
