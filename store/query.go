package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

// ErrQueryReadOnly is returned (wrapped) when `lookout query` is given a
// statement that would change the database or attach another one.
var ErrQueryReadOnly = errors.New("query: the database is opened read-only; lookout query only runs SELECT statements")

// DefaultQueryTimeout is how long `lookout query` lets a statement run.
const DefaultQueryTimeout = 30 * time.Second

// QueryOptions tune QueryWith.
type QueryOptions struct {
	// Timeout interrupts the statement after this long (SQLite stops at
	// its next step); 0 means DefaultQueryTimeout, negative no limit.
	Timeout time.Duration
	// Explain shows SQLite's query plan (EXPLAIN QUERY PLAN) instead of
	// running the statement.
	Explain bool
}

// RowSink receives a query's result: Columns once, then Row for each row.
// The values are int64, float64, string, []byte, time.Time or nil (NULL);
// vals is reused between calls. How the result is shown (a table, CSV,
// JSON) is the caller's business.
type RowSink interface {
	Columns(cols []string) error
	Row(vals []any) error
}

// Query runs one SQL statement against the database at dbPath, opened
// read-only, and hands its columns and rows to sink. Any statement that
// would write fails with ErrQueryReadOnly; more than one statement fails
// with a message saying so; a statement still running after the timeout
// is interrupted. An error from sink stops the query and is returned
// wrapped as "query: write output: …".
func Query(ctx context.Context, dbPath, sqlText string, opts QueryOptions, sink RowSink) (err error) {
	if err := CheckOneStatement(sqlText); err != nil {
		return err
	}
	if opts.Explain {
		sqlText = "EXPLAIN QUERY PLAN " + sqlText
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultQueryTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
		defer func() {
			// SQLite reports the interrupt as its own error; say why.
			if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = fmt.Errorf("query: stopped after %s (the time limit; raise it with --timeout): %w", timeout, context.DeadlineExceeded)
			}
		}()
	}
	s, err := OpenReadOnly(ctx, dbPath)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer s.Close()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer conn.Close()
	if err := storeGuardConn(conn, sqlText); err != nil {
		return storeOlderSchema(ctx, s, err)
	}
	rows, err := conn.QueryContext(ctx, sqlText)
	if err != nil {
		return storeOlderSchema(ctx, s, storeQueryError(err))
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return storeQueryError(err)
	}
	if err := sink.Columns(cols); err != nil {
		return fmt.Errorf("query: write output: %w", err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return storeQueryError(err)
		}
		if err := sink.Row(vals); err != nil {
			return fmt.Errorf("query: write output: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return storeQueryError(err)
	}
	return nil
}

// storeGuardConn adds two checks in front of SQLite's read-only mode: an
// authorizer that refuses ATTACH and DETACH (which read-only mode allows),
// and SQLite's own verdict on whether the first statement writes, so the
// user gets the clear message before anything runs.
func storeGuardConn(conn *sql.Conn, sqlText string) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return nil
		}
		c.RegisterAuthorizer(func(op int, _, _, _ string) int {
			switch op {
			case sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH:
				return sqlite3.SQLITE_DENY
			}
			return sqlite3.SQLITE_OK
		})
		st, err := c.Prepare(sqlText)
		if err != nil {
			return storeQueryError(err)
		}
		defer st.Close()
		if ss, ok := st.(*sqlite3.SQLiteStmt); ok && !ss.Readonly() {
			return ErrQueryReadOnly
		}
		return nil
	})
}

// storeSecondStatement reports whether sqlText holds more than one
// statement, and the text of the second: a ';' outside string literals,
// quoted identifiers and comments, followed by anything but blanks,
// comments and further ';'.
func storeSecondStatement(sqlText string) (string, bool) {
	for i := 0; i < len(sqlText); i++ {
		switch c := sqlText[i]; c {
		case '\'', '"', '`':
			j := strings.IndexByte(sqlText[i+1:], c)
			if j < 0 {
				return "", false
			}
			i += j + 1
		case '[':
			j := strings.IndexByte(sqlText[i+1:], ']')
			if j < 0 {
				return "", false
			}
			i += j + 1
		case '-':
			if strings.HasPrefix(sqlText[i:], "--") {
				j := strings.IndexByte(sqlText[i:], '\n')
				if j < 0 {
					return "", false
				}
				i += j
			}
		case '/':
			if strings.HasPrefix(sqlText[i:], "/*") {
				j := strings.Index(sqlText[i+2:], "*/")
				if j < 0 {
					return "", false
				}
				i += j + 3
			}
		case ';':
			if rest := storeSkipBlank(sqlText[i+1:]); rest != "" {
				return rest, true
			}
			return "", false
		}
	}
	return "", false
}

// storeSkipBlank drops leading blanks, comments and semicolons.
func storeSkipBlank(s string) string {
	for {
		t := strings.TrimLeft(s, " \t\r\n;")
		switch {
		case strings.HasPrefix(t, "--"):
			j := strings.IndexByte(t, '\n')
			if j < 0 {
				return ""
			}
			s = t[j:]
		case strings.HasPrefix(t, "/*"):
			j := strings.Index(t, "*/")
			if j < 0 {
				return ""
			}
			s = t[j+2:]
		default:
			return t
		}
	}
}

func storeShorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// storeOlderSchema adds a hint to a "no such column/table" error when the
// database predates this build's schema: `query` and `status` open it
// read-only and never migrate, so a new column or view only appears once
// the daemon (or demo) has opened it.
func storeOlderSchema(ctx context.Context, s *Store, err error) error {
	if !strings.Contains(err.Error(), "no such column") && !strings.Contains(err.Error(), "no such table") {
		return err
	}
	have, verr := s.SchemaVersion(ctx)
	migs, merr := Migrations()
	if verr != nil || merr != nil || len(migs) == 0 || have >= migs[len(migs)-1].Version {
		return err
	}
	return fmt.Errorf("%w (this database is at schema version %d and this build's is %d: run `lookout run` on it once to upgrade it)",
		err, have, migs[len(migs)-1].Version)
}

// storeQueryError maps SQLite's refusals to the one clear message and
// prefixes everything else.
func storeQueryError(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrReadonly, sqlite3.ErrAuth:
			return fmt.Errorf("%w (sqlite: %v)", ErrQueryReadOnly, err)
		}
	}
	if errors.Is(err, ErrQueryReadOnly) || strings.HasPrefix(err.Error(), "query:") {
		return err
	}
	return fmt.Errorf("query: %w", err)
}

// ExampleQuery is a question users ask of the database, with its SQL. The
// README lists them; `lookout demo` can print one to paste.
type ExampleQuery struct {
	Question string
	SQL      string
}

// ExampleQueries answer the questions in the README. Each is tested
// against a real database (TestExampleQueries). Room 21452505 stands for
// the user's own room id.
var ExampleQueries = []ExampleQuery{
	{"Negative share per hour per room, last 24 hours",
		`SELECT hour, room, items, negative, negative_share
FROM sentiment_hourly
WHERE hour >= strftime('%Y-%m-%dT%H:00:00Z', 'now', '-24 hours')
ORDER BY hour, room`},
	{"Top crisis keywords today",
		`SELECT g.keyword, count(DISTINCT i.id) AS items, count(DISTINCT i.room) AS rooms
FROM items i CROSS JOIN item_groups g -- today's items by time, then their hits
WHERE g.item_id = i.id AND g.category = 'crisis' AND g.keyword != ''
  AND i.ts >= strftime('%Y-%m-%dT00:00:00.000Z', 'now')
GROUP BY g.keyword ORDER BY items DESC, g.keyword LIMIT 10`},
	{"Alerts fired this week",
		`SELECT started_at, severity, rule, room, state, resolved_at, summary
FROM alerts
WHERE state IN ('firing', 'resolved')
  AND started_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days')
ORDER BY started_at DESC`},
	{"What are people complaining about in room 21452505 in the last 10 minutes",
		`SELECT t.term, count(*) AS mentions
FROM items i JOIN item_terms t ON t.item_id = i.id
WHERE i.room = '21452505' AND i.sentiment = 'negative'
  AND i.ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 minutes')
GROUP BY t.term ORDER BY mentions DESC, t.term LIMIT 10`},
	{"Viewer count curve of room 21452505, per minute, last 2 hours",
		`SELECT substr(ts, 1, 16) AS minute, max(value) AS viewers
FROM metrics
WHERE room = '21452505' AND name = 'viewers'
  AND ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 hours')
GROUP BY minute ORDER BY minute`},
}

// CheckOneStatement fails, with the message `lookout query` gives, when
// sqlText holds more than one statement or none. Other stores' query
// commands share it.
func CheckOneStatement(sqlText string) error {
	if strings.TrimSpace(sqlText) == "" {
		return errors.New("query: no SQL given")
	}
	if rest, ok := storeSecondStatement(sqlText); ok {
		return fmt.Errorf("query: give one statement at a time; found another after the first ';': %q", storeShorten(rest, 60))
	}
	return nil
}

// FirstWord is the first keyword of sqlText, upper case, after blanks,
// comments and opening parentheses.
func FirstWord(sqlText string) string {
	s := sqlText
	for {
		s = storeSkipBlank(s)
		t := strings.TrimLeft(s, "(")
		if t == s {
			break
		}
		s = t
	}
	end := strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_')
	})
	if end < 0 {
		end = len(s)
	}
	return strings.ToUpper(s[:end])
}
