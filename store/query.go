package store

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-sqlite3"
	"golang.org/x/text/width"
)

// ErrQueryReadOnly is returned (wrapped) when `lookout query` is given a
// statement that would change the database or attach another one.
var ErrQueryReadOnly = errors.New("query: the database is opened read-only; lookout query only runs SELECT statements")

// QueryFormats are the output formats Query accepts.
var QueryFormats = []string{"table", "csv", "json"}

// storeQueryMaxCell is the widest a table cell gets (in terminal columns)
// before it is cut with an ellipsis.
const storeQueryMaxCell = 60

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

// Query is QueryWith with the default options.
func Query(ctx context.Context, dbPath, sqlText, format string, w io.Writer) error {
	return QueryWith(ctx, dbPath, sqlText, format, QueryOptions{}, w)
}

// QueryWith runs one SQL statement against the database at dbPath, opened
// read-only, and writes the result to w as a table (aligned columns, NULL
// shown as NULL, long text cut), csv (with a header row, NULL as an empty
// field) or json (an array of objects, keys in column order). Any statement
// that would write fails with ErrQueryReadOnly; more than one statement
// fails with a message saying so; a statement still running after the
// timeout is interrupted.
func QueryWith(ctx context.Context, dbPath, sqlText, format string, opts QueryOptions, w io.Writer) (err error) {
	if format == "" {
		format = "table"
	}
	var out storeQueryOutput
	switch format {
	case "table":
		out = &storeTableOutput{w: w}
	case "csv":
		out = &storeCSVOutput{w: csv.NewWriter(w)}
	case "json":
		out = &storeJSONOutput{w: bufio.NewWriter(w)}
	default:
		return fmt.Errorf("query: unknown format %q (use one of %s)", format, strings.Join(QueryFormats, ", "))
	}
	if strings.TrimSpace(sqlText) == "" {
		return errors.New("query: no SQL given")
	}
	if rest, ok := storeSecondStatement(sqlText); ok {
		return fmt.Errorf("query: give one statement at a time; found another after the first ';': %q", storeShorten(rest, 60))
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
	if err := out.header(cols); err != nil {
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
		if err := out.row(vals); err != nil {
			return fmt.Errorf("query: write output: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return storeQueryError(err)
	}
	if err := out.end(); err != nil {
		return fmt.Errorf("query: write output: %w", err)
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

type storeQueryOutput interface {
	header(cols []string) error
	row(vals []any) error
	end() error
}

// storeCellText renders a value for table and csv output. ok is false for
// NULL.
func storeCellText(v any) (s string, numeric, ok bool) {
	switch x := v.(type) {
	case nil:
		return "", false, false
	case int64:
		return strconv.FormatInt(x, 10), true, true
	case float64:
		return storeFormatFloat(x), true, true
	case bool:
		if x {
			return "1", true, true
		}
		return "0", true, true
	case string:
		return x, false, true
	case []byte:
		if utf8.Valid(x) {
			return string(x), false, true
		}
		return "base64:" + base64.StdEncoding.EncodeToString(x), false, true
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), false, true
	}
	return fmt.Sprint(v), false, true
}

func storeFormatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	if a := math.Abs(f); a != 0 && (a >= 1e15 || a < 1e-6) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// storeTableOutput buffers the rows to size the columns.
type storeTableOutput struct {
	w       io.Writer
	cols    []string
	cells   [][]string
	numeric []bool // per column: every non-NULL value was a number
	seen    []bool
}

func (t *storeTableOutput) header(cols []string) error {
	t.cols = cols
	t.numeric = make([]bool, len(cols))
	t.seen = make([]bool, len(cols))
	for i := range t.numeric {
		t.numeric[i] = true
	}
	return nil
}

func (t *storeTableOutput) row(vals []any) error {
	r := make([]string, len(vals))
	for i, v := range vals {
		s, num, ok := storeCellText(v)
		if !ok {
			r[i] = "NULL"
			continue
		}
		t.seen[i] = true
		if !num {
			t.numeric[i] = false
		}
		if _, isBlob := v.([]byte); isBlob && !utf8.Valid(v.([]byte)) {
			s = fmt.Sprintf("<blob %d bytes>", len(v.([]byte)))
		}
		r[i] = storeTableCell(s)
	}
	t.cells = append(t.cells, r)
	return nil
}

// storeTableCell puts a value on one line and cuts it to the cell width.
func storeTableCell(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\n', '\r', '\t':
			return ' '
		}
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if storeDisplayWidth(s) <= storeQueryMaxCell {
		return s
	}
	var b strings.Builder
	w := 0
	for _, r := range s {
		rw := storeRuneWidth(r)
		if w+rw > storeQueryMaxCell-1 {
			break
		}
		b.WriteRune(r)
		w += rw
	}
	b.WriteString("…")
	return b.String()
}

// storeRuneWidth is a rune's width in a terminal: CJK and fullwidth runes
// take two columns.
func storeRuneWidth(r rune) int {
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

func storeDisplayWidth(s string) int {
	n := 0
	for _, r := range s {
		n += storeRuneWidth(r)
	}
	return n
}

func (t *storeTableOutput) end() error {
	if len(t.cols) == 0 {
		_, err := io.WriteString(t.w, "(no columns)\n")
		return err
	}
	widths := make([]int, len(t.cols))
	for i, c := range t.cols {
		widths[i] = storeDisplayWidth(c)
	}
	for _, r := range t.cells {
		for i, c := range r {
			widths[i] = max(widths[i], storeDisplayWidth(c))
		}
	}
	bw := bufio.NewWriter(t.w)
	line := func(cells []string, rightAlign bool) {
		for i, c := range cells {
			if i > 0 {
				bw.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-storeDisplayWidth(c))
			last := i == len(cells)-1
			if rightAlign && t.numeric[i] && t.seen[i] {
				bw.WriteString(pad)
				bw.WriteString(c)
			} else {
				bw.WriteString(c)
				if !last {
					bw.WriteString(pad)
				}
			}
		}
		bw.WriteByte('\n')
	}
	line(t.cols, false)
	sep := make([]string, len(t.cols))
	for i := range sep {
		sep[i] = strings.Repeat("-", widths[i])
	}
	line(sep, false)
	for _, r := range t.cells {
		line(r, true)
	}
	if len(t.cells) == 1 {
		bw.WriteString("(1 row)\n")
	} else {
		fmt.Fprintf(bw, "(%d rows)\n", len(t.cells))
	}
	return bw.Flush()
}

type storeCSVOutput struct{ w *csv.Writer }

func (c *storeCSVOutput) header(cols []string) error { return c.w.Write(cols) }

func (c *storeCSVOutput) row(vals []any) error {
	rec := make([]string, len(vals))
	for i, v := range vals {
		rec[i], _, _ = storeCellText(v)
	}
	return c.w.Write(rec)
}

func (c *storeCSVOutput) end() error {
	c.w.Flush()
	return c.w.Error()
}

// storeJSONOutput streams an array of objects. Keys keep column order; a
// repeated column name gets a _2, _3 suffix so no value is lost.
type storeJSONOutput struct {
	w    *bufio.Writer
	keys [][]byte
	n    int
	buf  bytes.Buffer
	enc  *json.Encoder
}

// marshal encodes v without HTML escaping: this is for people and jq,
// not for embedding in a page.
func (j *storeJSONOutput) marshal(v any) ([]byte, error) {
	if j.enc == nil {
		j.enc = json.NewEncoder(&j.buf)
		j.enc.SetEscapeHTML(false)
	}
	j.buf.Reset()
	if err := j.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(j.buf.Bytes(), []byte("\n")), nil
}

func (j *storeJSONOutput) header(cols []string) error {
	used := map[string]int{}
	for _, c := range cols {
		name := c
		if k := used[c]; k > 0 {
			name = fmt.Sprintf("%s_%d", c, k+1)
		}
		used[c]++
		b, err := j.marshal(name)
		if err != nil {
			return err
		}
		j.keys = append(j.keys, bytes.Clone(b))
	}
	_, err := j.w.WriteString("[")
	return err
}

func (j *storeJSONOutput) row(vals []any) error {
	if j.n > 0 {
		j.w.WriteString(",")
	}
	j.n++
	j.w.WriteString("\n  {")
	for i, v := range vals {
		if i > 0 {
			j.w.WriteString(", ")
		}
		j.w.Write(j.keys[i])
		j.w.WriteString(": ")
		var b []byte
		var err error
		switch x := v.(type) {
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				b, err = j.marshal(storeFormatFloat(x))
			} else {
				b, err = j.marshal(x)
			}
		case []byte:
			s, _, _ := storeCellText(x)
			b, err = j.marshal(s)
		case time.Time:
			b, err = j.marshal(x.UTC().Format(time.RFC3339Nano))
		default:
			b, err = j.marshal(x)
		}
		if err != nil {
			return err
		}
		j.w.Write(b)
	}
	_, err := j.w.WriteString("}")
	return err
}

func (j *storeJSONOutput) end() error {
	if j.n > 0 {
		j.w.WriteString("\n")
	}
	j.w.WriteString("]\n")
	return j.w.Flush()
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
		`SELECT keyword, count(DISTINCT item_id) AS items, count(DISTINCT room) AS rooms
FROM keyword_hits
WHERE category = 'crisis' AND keyword != ''
  AND ts >= strftime('%Y-%m-%dT00:00:00.000Z', 'now')
GROUP BY keyword ORDER BY items DESC, keyword LIMIT 10`},
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
