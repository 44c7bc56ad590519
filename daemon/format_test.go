package daemon

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lookout/internal/testutil"
	"lookout/item"
	"lookout/store"
)

var formatT0 = time.Date(2026, 11, 25, 12, 0, 0, 123e6, time.UTC)

// formatFixture writes a small database with the shapes output has to
// handle: CJK text, NULLs, floats, a long line, a newline, binary bytes.
func formatFixture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fixture.db")
	s, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chat := func(id string, ts time.Time, text string, label item.Label, score float64) item.Item {
		return item.Item{
			Source: "brand-live", Platform: "bilibili", Kind: item.KindChat, Room: "21452505",
			ID: id, AuthorID: "u" + id, Author: "viewer " + id, Text: text, TS: ts,
			Raw:   []byte(`{"cmd":"DANMU_MSG","id":"` + id + `"}`),
			Score: item.Score{Scored: true, Label: label, Value: score, Prob: 0.9, Lang: "zh"},
		}
	}
	a := chat("a", formatT0, "假货!要退款", item.Negative, -0.875)
	a.Score.Groups = []item.Match{{Group: "crisis", Category: "crisis", Severity: "red", Terms: []string{"假货", "退款"}}}
	a.Score.Terms = []string{"假货", "退款"}
	b := chat("b", formatT0.Add(90*time.Second), "great stream, but the shipping took\ntwo weeks & the box was crushed; "+
		strings.Repeat("really ", 12)+"disappointed", item.Negative, -0.5)
	b.Raw = []byte{0x00, 0xff, 0x10}
	b.Author = `quote "me", ok`
	gift := item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindGift, Room: "21452505", ID: "g",
		Author: "粉丝", Text: "小心心", TS: formatT0.Add(2 * time.Minute), Value: 5.2, Count: 10}
	viewers := item.Item{Source: "brand-live", Platform: "bilibili", Kind: item.KindMetric, Room: "21452505",
		Metric: item.MetricViewers, Value: 12000, TS: formatT0.Add(3 * time.Minute)}
	if _, err := s.WriteItems(context.Background(), []item.Item{a, b, gift, viewers}); err != nil {
		t.Fatal(err)
	}
	return path
}

const formatGoldenSQL = `SELECT i.id, i.kind, i.author, i.text, i.sentiment, i.score, i.value, i.count,
	r.payload AS raw, i.ts
FROM items i LEFT JOIN raw_payloads r ON r.item_id = i.id ORDER BY i.id`

// The output of `lookout query` in each format is pinned by a golden file.
func TestQueryFormatsGolden(t *testing.T) {
	db := formatFixture(t)
	for _, format := range QueryFormats {
		t.Run(format, func(t *testing.T) {
			var out bytes.Buffer
			if err := Query(context.Background(), db, formatGoldenSQL, format, store.QueryOptions{}, &out); err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("testdata", "query_"+format+".golden"), out.Bytes())
		})
	}
}

func TestQueryTableDetails(t *testing.T) {
	db := formatFixture(t)
	for _, tc := range []struct {
		name, sql string
		want      []string // substrings of the output
	}{
		{"empty result", `SELECT id, text FROM items WHERE 0`, []string{"id  text\n--  ----\n(0 rows)\n"}},
		{"one row", `SELECT 1 AS n`, []string{"(1 row)"}},
		{"null", `SELECT NULL AS x`, []string{"NULL"}},
		{"numbers right-aligned", `SELECT 5 AS n UNION ALL SELECT 12345 ORDER BY 1`, []string{"    5\n12345\n"}},
		{"wide characters keep columns aligned", `SELECT '退款' AS a, 'x' AS b UNION ALL SELECT 'ab', 'y'`,
			[]string{"退款  x\nab    y\n"}},
		{"long text cut", `SELECT printf('%.200c', 'z') AS long`, []string{strings.Repeat("z", queryMaxCell-1) + "…\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Query(context.Background(), db, tc.sql, "table", store.QueryOptions{}, &out); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestQueryUnknownFormat(t *testing.T) {
	db := formatFixture(t)
	err := Query(context.Background(), db, "SELECT 1", "xml", store.QueryOptions{}, &bytes.Buffer{})
	if err == nil || !strings.HasPrefix(err.Error(), "query: ") || !strings.Contains(err.Error(), `unknown format "xml"`) {
		t.Fatalf("err = %v, want a query: error naming the format", err)
	}
}
