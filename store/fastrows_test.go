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

// storeEncodeRow encodes one row of values of the types the writer
// binds, by their Go type.
func storeEncodeRow(t *testing.T, r *storeEncodedRows, vals ...any) {
	t.Helper()
	r.begin()
	for _, v := range vals {
		switch v := v.(type) {
		case nil:
			r.null()
		case string:
			r.text(v)
		case []byte:
			r.blob(v)
		case int64:
			r.int(v)
		case float64:
			r.float(v)
		default:
			t.Fatalf("no encoding for %T", v)
		}
	}
	if err := r.end(); err != nil {
		t.Fatal(err)
	}
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
		{float64(1.5), math.Inf(-1), int64(42), []byte(nil)},
		{strings.Repeat("长", 10000), float64(0), float64(-0.25), int64(math.MinInt64)},
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
				for _, r := range rows {
					storeEncodeRow(t, &enc, r.a, r.b, r.c, r.d)
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
			storeEncodeRow(t, &enc, v)
		}
		err = storeInsertRows(many, 2, nil, 1, &enc)
		var se sqlite3.Error
		if !errors.As(err, &se) || se.Code != sqlite3.ErrConstraint || !strings.Contains(err.Error(), "NOT NULL") {
			t.Fatalf("err = %v, want a NOT NULL constraint error", err)
		}
		// The statement is left reset, with no bindings: it runs again.
		var ok storeEncodedRows
		for _, v := range []any{"p", "q"} {
			storeEncodeRow(t, &ok, v)
		}
		// A value too long for the encoding fails its row, and only it.
		ok.begin()
		ok.text("dropped")
		ok.tooLong(1 << 32)
		if err := ok.end(); err == nil || !strings.Contains(err.Error(), "4294967296 bytes") {
			t.Fatalf("end after a value too long: err = %v", err)
		}
		if err := storeInsertRows(many, 2, nil, 1, &ok); err != nil {
			t.Fatal(err)
		}
		var got []string
		q, err := c.Query(`SELECT a FROM t ORDER BY rowid`, nil)
		if err != nil {
			return err
		}
		defer q.Close()
		for dest := make([]driver.Value, 1); q.Next(dest) == nil; {
			got = append(got, fmt.Sprint(dest[0]))
		}
		// x and y went in before the failing statement (no transaction
		// here: the writer's would be rolled back).
		if fmt.Sprint(got) != "[x y p q]" {
			t.Errorf("stored %v, want [x y p q]", got)
		}
		return nil
	})
}
