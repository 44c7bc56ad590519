package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/width"

	"lookout/store"
	"lookout/store/pg"
)

// QueryFormats are the output formats of `lookout query`, `status` and
// `search`.
var QueryFormats = []string{"table", "csv", "json"}

// queryMaxCell is the widest a table cell gets (in terminal columns)
// before it is cut with an ellipsis.
const queryMaxCell = 60

// Query runs one read-only statement (store.Query, or pg.Query when
// dbPath is a postgres:// URL) and writes its result
// to w as a table (aligned columns, NULL shown as NULL, long text cut),
// csv (with a header row, NULL as an empty field) or json (an array of
// objects, keys in column order).
func Query(ctx context.Context, dbPath, sqlText, format string, opts store.QueryOptions, w io.Writer) error {
	out, err := NewRowWriter(format, w)
	if err != nil {
		return err
	}
	run := store.Query
	if pg.IsDSN(dbPath) {
		run = pg.Query
	}
	if err := run(ctx, dbPath, sqlText, opts, out); err != nil {
		return err
	}
	if err := out.End(); err != nil {
		return fmt.Errorf("query: write output: %w", err)
	}
	return nil
}

// RowWriter shows a result in one of QueryFormats: store.Query feeds it,
// End finishes the output.
type RowWriter interface {
	store.RowSink
	End() error
}

// NewRowWriter returns the writer of format ("" is table).
func NewRowWriter(format string, w io.Writer) (RowWriter, error) {
	switch format {
	case "", "table":
		return &tableOutput{w: w}, nil
	case "csv":
		return &csvOutput{w: csv.NewWriter(w)}, nil
	case "json":
		return &jsonOutput{w: bufio.NewWriter(w)}, nil
	}
	return nil, fmt.Errorf("query: unknown format %q (use one of %s)", format, strings.Join(QueryFormats, ", "))
}

// cellText renders a value for table and csv output. ok is false for
// NULL.
func cellText(v any) (s string, numeric, ok bool) {
	switch x := v.(type) {
	case nil:
		return "", false, false
	case int64:
		return strconv.FormatInt(x, 10), true, true
	case float64:
		return formatFloat(x), true, true
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

func formatFloat(f float64) string {
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

// tableOutput buffers the rows to size the columns.
type tableOutput struct {
	w       io.Writer
	cols    []string
	cells   [][]string
	numeric []bool // per column: every non-NULL value was a number
	seen    []bool
}

func (t *tableOutput) Columns(cols []string) error {
	t.cols = cols
	t.numeric = make([]bool, len(cols))
	t.seen = make([]bool, len(cols))
	for i := range t.numeric {
		t.numeric[i] = true
	}
	return nil
}

func (t *tableOutput) Row(vals []any) error {
	r := make([]string, len(vals))
	for i, v := range vals {
		s, num, ok := cellText(v)
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
		r[i] = tableCell(s)
	}
	t.cells = append(t.cells, r)
	return nil
}

// tableCell puts a value on one line and cuts it to the cell width.
func tableCell(s string) string {
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
	if displayWidth(s) <= queryMaxCell {
		return s
	}
	var b strings.Builder
	w := 0
	for _, r := range s {
		rw := runeWidth(r)
		if w+rw > queryMaxCell-1 {
			break
		}
		b.WriteRune(r)
		w += rw
	}
	b.WriteString("…")
	return b.String()
}

// runeWidth is a rune's width in a terminal: CJK and fullwidth runes
// take two columns.
func runeWidth(r rune) int {
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

func (t *tableOutput) End() error {
	if len(t.cols) == 0 {
		_, err := io.WriteString(t.w, "(no columns)\n")
		return err
	}
	widths := make([]int, len(t.cols))
	for i, c := range t.cols {
		widths[i] = displayWidth(c)
	}
	for _, r := range t.cells {
		for i, c := range r {
			widths[i] = max(widths[i], displayWidth(c))
		}
	}
	bw := bufio.NewWriter(t.w)
	line := func(cells []string, rightAlign bool) {
		for i, c := range cells {
			if i > 0 {
				bw.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-displayWidth(c))
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

type csvOutput struct{ w *csv.Writer }

func (c *csvOutput) Columns(cols []string) error { return c.w.Write(cols) }

func (c *csvOutput) Row(vals []any) error {
	rec := make([]string, len(vals))
	for i, v := range vals {
		rec[i], _, _ = cellText(v)
	}
	return c.w.Write(rec)
}

func (c *csvOutput) End() error {
	c.w.Flush()
	return c.w.Error()
}

// jsonOutput streams an array of objects. Keys keep column order; a
// repeated column name gets a _2, _3 suffix so no value is lost.
type jsonOutput struct {
	w    *bufio.Writer
	keys [][]byte
	n    int
	buf  bytes.Buffer
	enc  *json.Encoder
}

// marshal encodes v without HTML escaping: this is for people and jq,
// not for embedding in a page.
func (j *jsonOutput) marshal(v any) ([]byte, error) {
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

func (j *jsonOutput) Columns(cols []string) error {
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

func (j *jsonOutput) Row(vals []any) error {
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
				b, err = j.marshal(formatFloat(x))
			} else {
				b, err = j.marshal(x)
			}
		case []byte:
			s, _, _ := cellText(x)
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

func (j *jsonOutput) End() error {
	if j.n > 0 {
		j.w.WriteString("\n")
	}
	j.w.WriteString("]\n")
	return j.w.Flush()
}
