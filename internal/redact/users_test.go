package redact

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"lookout/item"
)

func TestUsersHash(t *testing.T) {
	u, err := NewUsers("salt-1")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewUsers("salt-2")
	h := u.Hash("87654321")
	if !strings.HasPrefix(h, "h:") || len(h) != 26 {
		t.Fatalf("Hash = %q, want h: and 24 hex digits", h)
	}
	if u.Hash("87654321") != h {
		t.Error("the same value hashed twice differs")
	}
	if other.Hash("87654321") == h {
		t.Error("another salt gives the same hash")
	}
	if u.Hash("") != "" {
		t.Error("the empty value must stay empty")
	}
	if _, err := NewUsers(""); err == nil {
		t.Error("an empty salt was accepted")
	}
}

func TestUsersItem(t *testing.T) {
	u, _ := NewUsers("s")
	shared := map[string]string{"action": "ban", "target_user": "troll_7", "target_user_id": "555666", "team": "live"}
	for _, tc := range []struct {
		name string
		in   item.Item
		// gone must not occur anywhere in the result; keep must.
		gone, keep []string
		want       func(t *testing.T, it item.Item)
	}{
		{"chat: author and mention", item.Item{ID: "m1", AuthorID: "1001", Author: "小明同学", Text: "回复 @小红Red :客服不理人 @bob.", Raw: []byte(`{"uid":1001}`)},
			[]string{"1001", "小明同学", "小红Red", "bob", "uid"}, []string{"回复 @h:", "客服不理人"},
			func(t *testing.T, it item.Item) {
				if it.Text != "回复 @"+u.Hash("小红Red")+" :客服不理人 @"+u.Hash("bob")+"." {
					t.Errorf("text = %q", it.Text)
				}
			}},
		{"twitch notice names its author; id built from the name", item.Item{ID: "chan/Alice A/1700", AuthorID: "87654321", Author: "Alice A",
			Text: "Alice A subscribed at Tier 1. 1000块 great", URL: "https://example.com/u/87654321"},
			[]string{"Alice A", "87654321"}, []string{"subscribed at Tier 1. 1000块 great"}, nil},
		{"numeric id is not replaced in the text", item.Item{ID: "x", AuthorID: "1000", Text: "花了1000块"},
			nil, []string{"花了1000块"}, nil},
		{"user labels hashed, shared map untouched", item.Item{ID: "clearchat/c/555666/1", Labels: shared},
			[]string{"troll_7", "555666"}, []string{"ban", "live"},
			func(t *testing.T, it item.Item) {
				if shared["target_user"] != "troll_7" {
					t.Error("the collector's map was written")
				}
				if it.Labels["target_user"] != u.Hash("troll_7") || it.Labels["team"] != "live" {
					t.Errorf("labels = %v", it.Labels)
				}
			}},
		{"a one-letter name is hashed but not replaced in text", item.Item{ID: "y", Author: "a", Text: "a cat"},
			nil, []string{"a cat"}, func(t *testing.T, it item.Item) {
				if it.Author != u.Hash("a") {
					t.Errorf("author = %q", it.Author)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := tc.in
			u.Item(&it)
			if it.Raw != nil {
				t.Error("raw payload kept")
			}
			all := strings.Join([]string{it.ID, it.AuthorID, it.Author, it.Text, it.URL, string(it.Raw)}, "\x00")
			for k, v := range it.Labels {
				all += "\x00" + k + "=" + v
			}
			for _, g := range tc.gone {
				if strings.Contains(all, g) {
					t.Errorf("%q still in %q", g, all)
				}
			}
			for _, k := range tc.keep {
				if !strings.Contains(all, k) {
					t.Errorf("%q lost from %q", k, all)
				}
			}
			if tc.in.AuthorID != "" && it.AuthorID != u.Hash(tc.in.AuthorID) {
				t.Errorf("author_id = %q", it.AuthorID)
			}
			if tc.want != nil {
				tc.want(t, it)
			}
		})
	}
}

func TestUsersMentionsKeepsHashes(t *testing.T) {
	u, _ := NewUsers("s")
	once := u.Mentions("@alice hi")
	if twice := u.Mentions(once); twice != once {
		t.Errorf("hashing twice changed %q to %q", once, twice)
	}
	for _, s := range []string{"no mention", "mail me @ home", "@", "a@"} {
		if got := u.Mentions(s); got != s {
			t.Errorf("Mentions(%q) = %q", s, got)
		}
	}
}

func TestUsersLogHandler(t *testing.T) {
	u, _ := NewUsers("s")
	var buf bytes.Buffer
	log := slog.New(u.LogHandler(slog.NewJSONHandler(&buf, nil))).With("id", "chan/Alice/1")
	log.Warn("twitch: bad IRC line", "line", ":alice!alice@alice.tmi.twitch.tv PRIVMSG #c :hi", "room", "c",
		slog.Group("item", "author", "Alice"))
	out := buf.String()
	for _, g := range []string{"alice", "Alice"} {
		if strings.Contains(out, g) {
			t.Errorf("%q in log line %s", g, out)
		}
	}
	for _, k := range []string{`"room":"c"`, "not shown in privacy mode", u.Hash("Alice"), u.Hash("chan/Alice/1")} {
		if !strings.Contains(out, k) {
			t.Errorf("log line lacks %q: %s", k, out)
		}
	}
}
