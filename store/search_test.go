package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"lookout/item"
)

func TestSearchText(t *testing.T) {
	for in, want := range map[string]string{
		"hello world":   "hello world",
		"要求退款":          " 要  求  退  款 ",
		"iPhone退款!":     "iPhone 退  款 !",
		"カタカナとひらがな":     " カ  タ  カ  ナ  と  ひ  ら  が  な ",
		"한국어 is spaced": "한국어 is spaced",
	} {
		if got := SearchText(in); got != want {
			t.Errorf("SearchText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSearchMatch(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "退款", want: `"退 款"`},
		{in: "refund", want: `"refund*"`},
		{in: "iPhone退款 客服", want: `"iPhone 退 款" "客 服"`},
		{in: `"a" OR NOT b`, want: `"a*" "OR*" "NOT*" "b*"`},
		{in: "e-mail", want: `"e mail*"`},
		{in: "退", want: `"退"`},
		{in: " !!! ", err: "nothing"},
		{in: "", err: "nothing"},
	} {
		got, err := SearchMatch(tc.in)
		if tc.err != "" {
			if err == nil {
				t.Errorf("SearchMatch(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("SearchMatch(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// storeSearchRows runs Search and returns the id-free rows as
// "room|text" strings.
func storeSearchRows(t *testing.T, path string, o SearchOptions) []string {
	t.Helper()
	var c storeCollect
	if err := Search(context.Background(), path, o, &c); err != nil {
		t.Fatalf("Search(%+v): %v", o, err)
	}
	lines := strings.Split(strings.TrimSuffix(c.b.String(), "\n"), "\n")
	if lines[0] != strings.Join(SearchColumns, ",") {
		t.Fatalf("header %q", lines[0])
	}
	var out []string
	for _, l := range lines[1:] {
		f := strings.SplitN(l, ",", 7)
		out = append(out, f[2]+"|"+f[6])
	}
	return out
}

func storeSearchFixture(t *testing.T) (*Store, string) {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "lookout.db"), WithSearch(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	items := []item.Item{
		storeChat("1", storeT0, "收到的是假货，要求退款！", item.Negative, -0.9),
		storeChat("2", storeT0.Add(time.Minute), "退货流程太慢", item.Negative, -0.6),
		storeChat("3", storeT0.Add(2*time.Minute), "I want a REFUND now", item.Negative, -0.7),
		storeChat("4", storeT0.Add(3*time.Minute), "refunds are slow, 客服不理人", item.Negative, -0.8),
		storeChat("5", storeT0.Add(4*time.Minute), "主播好棒", item.Positive, 0.9),
		storeChat("6", storeT0.Add(5*time.Minute), "款式不错", item.Positive, 0.5),
	}
	items[5].Room = "other-room"
	if _, err := s.WriteItems(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	return s, s.Path()
}

func TestSearch(t *testing.T) {
	_, path := storeSearchFixture(t)
	for _, tc := range []struct {
		name string
		o    SearchOptions
		want []string
	}{
		{"chinese word inside a sentence", SearchOptions{Text: "退款"}, []string{"21452505|收到的是假货，要求退款！"}},
		{"chinese, two words", SearchOptions{Text: "假货 退款"}, []string{"21452505|收到的是假货，要求退款！"}},
		{"the characters must be adjacent", SearchOptions{Text: "退流"}, nil},
		{"one character", SearchOptions{Text: "退"}, []string{"21452505|退货流程太慢", "21452505|收到的是假货，要求退款！"}},
		{"two characters, three rows, newest first", SearchOptions{Text: "款"},
			[]string{"other-room|款式不错", "21452505|收到的是假货，要求退款！"}},
		{"english, any case, and its longer forms", SearchOptions{Text: "refund"},
			[]string{"21452505|refunds are slow, 客服不理人", "21452505|I want a REFUND now"}},
		{"two-letter english word", SearchOptions{Text: "no"}, []string{"21452505|I want a REFUND now"}},
		{"mixed", SearchOptions{Text: "slow 客服"}, []string{"21452505|refunds are slow, 客服不理人"}},
		{"room filter", SearchOptions{Text: "款", Room: "21452505"}, []string{"21452505|收到的是假货，要求退款！"}},
		{"since filter", SearchOptions{Text: "退", Since: storeT0.Add(30 * time.Second)}, []string{"21452505|退货流程太慢"}},
		{"sentiment filter", SearchOptions{Text: "款", Sentiment: "positive"}, []string{"other-room|款式不错"}},
		{"platform filter", SearchOptions{Text: "款", Platform: "douyin"}, nil},
		{"limit", SearchOptions{Text: "款", Limit: 1}, []string{"other-room|款式不错"}},
		{"operators are text", SearchOptions{Text: `NOT "主播"`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := storeSearchRows(t, path, tc.o); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// Search opens the file read-only: it changes nothing, and a missing file
// is an error, not a new empty database.
func TestSearchReadOnly(t *testing.T) {
	s, path := storeSearchFixture(t)
	s.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	storeSearchRows(t, path, SearchOptions{Text: "退款"})
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("search changed the database file")
	}
	missing := filepath.Join(t.TempDir(), "none.db")
	err = Search(context.Background(), missing, SearchOptions{Text: "退款"}, &storeCollect{})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v, want does not exist", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Error("search created the missing database")
	}
	if err := Search(context.Background(), path, SearchOptions{Text: "x", Sentiment: "angry"}, &storeCollect{}); err == nil {
		t.Error("a bad sentiment was accepted")
	}
}

// The index follows items: retention deletes drop their rows, an edited
// text is found by its new words only.
func TestSearchIndexFollowsItems(t *testing.T) {
	s, path := storeSearchFixture(t)
	ctx := context.Background()
	if _, err := s.DB().ExecContext(ctx, `UPDATE items SET text = '换了新词' WHERE item_id = '5'`); err != nil {
		t.Fatal(err)
	}
	if got := storeSearchRows(t, path, SearchOptions{Text: "主播"}); got != nil {
		t.Errorf("old text still found: %q", got)
	}
	if got := storeSearchRows(t, path, SearchOptions{Text: "新词"}); len(got) != 1 {
		t.Errorf("new text found %d times", len(got))
	}
	if _, err := s.Prune(ctx, storeT0.Add(time.Hour), 0, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := storeCount(t, s, `SELECT count(*) FROM items_fts`); n != 0 {
		t.Errorf("%d index rows left after every item was pruned", n)
	}
}

// A database written before the index existed is indexed when it is
// opened by this build.
func TestMigrateSearchIndexesExistingItems(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "before-search.db")
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	last := len(migs) - 1
	for last >= 0 && migs[last].Name != "search" {
		last--
	}
	if last < 0 {
		t.Fatal("no search migration")
	}
	db, err := sql.Open("sqlite3", storeDSN(path, "_journal_mode=WAL&_foreign_keys=on&_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	if err := storeApplyMigrations(ctx, db, path, migs[:last]); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if _, err := db.Exec(`INSERT INTO items (source, platform, room, kind, item_id, text, ts) VALUES ('s', 'bilibili', 'r', 'chat', ?, ?, ?)`,
			fmt.Sprint(i), fmt.Sprintf("第%d条：物流太慢 shipping", i), FormatTime(storeT0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(ctx, path, WithSearch(true))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := storeSearchRows(t, path, SearchOptions{Text: "物流", Limit: 1000}); len(got) != 300 {
		t.Errorf("found %d of the 300 old items", len(got))
	}
	if got := storeSearchRows(t, path, SearchOptions{Text: "第299条"}); len(got) != 1 {
		t.Errorf("第299条 found %d times", len(got))
	}
}

// With the index off (the default) nothing is indexed and search says why; turned on
// again, the items written meanwhile are indexed.
func TestSearchIndexOffAndOn(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lookout.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteItems(ctx, []item.Item{storeChat("1", storeT0, "物流太慢", item.Negative, -0.5)}); err != nil {
		t.Fatal(err)
	}
	if n := storeCount(t, s, `SELECT count(*) FROM items_fts`); n != 0 {
		t.Errorf("%d rows indexed with the index off", n)
	}
	err = Search(ctx, path, SearchOptions{Text: "物流"}, &storeCollect{})
	if err == nil || !strings.Contains(err.Error(), "store.search") {
		t.Errorf("err = %v, want the index-off message", err)
	}
	s.Close()
	s, err = Open(ctx, path, WithSearch(true))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.WriteItems(ctx, []item.Item{storeChat("2", storeT0.Add(time.Second), "物流终于到了", item.Positive, 0.5)}); err != nil {
		t.Fatal(err)
	}
	if got := storeSearchRows(t, path, SearchOptions{Text: "物流"}); len(got) != 2 {
		t.Errorf("found %q, want the item written while the index was off and the new one", got)
	}
	if n := storeCount(t, s, `SELECT count(*) FROM items_fts`); n != 2 {
		t.Errorf("%d index rows, want 2 (none twice)", n)
	}
}
