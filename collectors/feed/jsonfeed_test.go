package feed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseJSONFeed(t *testing.T) {
	doc := `  {
  "version": "https://jsonfeed.org/version/1.1",
  "title": "Acme news",
  "home_page_url": "https://acme.example/",
  "authors": [{"name": "Acme Team"}],
  "items": [
    {"id": "a1", "url": "/posts/1", "title": "First &amp; best", "content_html": "<p>Refunds <b>take</b> weeks.</p>",
     "date_published": "2024-06-05T10:15:00+08:00", "authors": [{"url": "x"}, {"name": "Chen Jing"}]},
    {"id": 9006, "content_text": "  plain\n text  ", "date_modified": "2024-06-06T00:00:00Z"},
    {"id": 9006.0, "content_text": "plain text"},
    {"id": 9007.5, "summary": "a <i>summary</i>", "content_html": "<p>long content</p>"},
    {"external_url": "https://elsewhere.example/x", "title": 42, "content_text": "no id"},
    {"content_text": "neither id nor url"},
    {"content_text": "neither id nor url, another"},
    "not an object"
  ]
}`
	f, err := ParseFeed([]byte(doc), "application/feed+json", feedGoldenBase)
	if err != nil {
		t.Fatal(err)
	}
	if f.Format != "json" || f.Title != "Acme news" || f.Link != "https://acme.example/" {
		t.Errorf("feed: %+v", f)
	}
	if len(f.Entries) != 6 {
		t.Fatalf("%d entries: %+v", len(f.Entries), f.Entries)
	}
	e := f.Entries[0]
	if e.ID != "a1" || e.URL != "https://feeds.example.com/posts/1" || e.Title != "First & best" || e.Summary != "Refunds take weeks." ||
		e.Author != "Chen Jing" || !e.Published.Equal(time.Date(2024, 6, 5, 2, 15, 0, 0, time.UTC)) {
		t.Errorf("entry 0: %+v", e)
	}
	// 9006 and 9006.0 are one id: the second is a repeat with the same text.
	if e := f.Entries[1]; e.ID != "9006" || e.Summary != "plain text" || e.Author != "Acme Team" ||
		!e.Published.Equal(time.Date(2024, 6, 6, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("entry 1: %+v", e)
	}
	if e := f.Entries[2]; e.ID != "9007.5" || e.Summary != "a summary" {
		t.Errorf("entry 2 (summary before content): %+v", e)
	}
	if e := f.Entries[3]; e.ID != "https://elsewhere.example/x" || e.Title != "" || e.Summary != "no id" {
		t.Errorf("entry 3 (external_url, title of the wrong type): %+v", e)
	}
	if a, b := f.Entries[4], f.Entries[5]; !strings.HasPrefix(a.ID, "sha256:") || a.ID == b.ID {
		t.Errorf("entries without id and url: %q %q", a.ID, b.ID)
	}
	if !strings.Contains(strings.Join(f.Warnings, ";"), "skipped 1 JSON Feed item") {
		t.Errorf("warnings: %q", f.Warnings)
	}
}

func TestParseJSONFeed10(t *testing.T) {
	doc := `{"version": "https://jsonfeed.org/version/1", "author": {"name": "Old Author"},
	  "items": [{"id": "1", "content_html": "<p>hi</p>", "author": {"name": "Item Author"}}, {"id": "2", "content_text": "yo"}]}`
	f, err := ParseFeed([]byte(doc), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 2 || f.Entries[0].Author != "Item Author" || f.Entries[1].Author != "Old Author" || f.Entries[0].Summary != "hi" {
		t.Errorf("%+v", f.Entries)
	}
}

func TestJSONFeedID(t *testing.T) {
	for raw, want := range map[string]string{
		`"abc"`: "abc", `" x "`: "x", `9006`: "9006", `9006.0`: "9006", `9.006e3`: "9006", `-3`: "-3",
		`1.5`: "1.5", `123456789012345678901234567890`: "123456789012345678901234567890",
		`null`: "", `true`: "", `{}`: "", ``: "",
	} {
		if got := jsonFeedID([]byte(raw)); got != want {
			t.Errorf("jsonFeedID(%s) = %q, want %q", raw, got, want)
		}
	}
}

// FuzzJSONFeed: no input panics, and what parses is well-formed: unique
// non-empty ids, valid UTF-8, only absolute http(s) links.
func FuzzJSONFeed(f *testing.F) {
	f.Add([]byte(`{"version":"https://jsonfeed.org/version/1.1","items":[{"id":"1","url":"/a","content_html":"<p>x</p>"}]}`))
	f.Add([]byte(`{"version":"https://jsonfeed.org/version/1","items":[{"id":9006.0},{"id":9006},{"content_text":"x"},"s",null]}`))
	f.Add([]byte(`{"items":[{"title":{"a":1},"authors":"x","author":[1]}]}`))
	f.Add([]byte(`{"version":"https://jsonfeed.org/version/1.1","items":{}}`))
	f.Add([]byte(`[1,2]`))
	files, _ := filepath.Glob(filepath.Join("testdata", "jsonfeed", "*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		feed, err := parseJSONFeed(data, feedGoldenBase)
		if err != nil {
			if feed != nil {
				t.Fatal("feed and error both returned")
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range feed.Entries {
			if e.ID == "" || seen[e.ID] {
				t.Fatalf("empty or duplicate id %q", e.ID)
			}
			seen[e.ID] = true
			for _, s := range []string{e.Title, e.Summary, e.Author} {
				if !utf8.ValidString(s) {
					t.Fatalf("invalid UTF-8 in %q", s)
				}
			}
			if e.URL != "" && !strings.HasPrefix(e.URL, "http://") && !strings.HasPrefix(e.URL, "https://") {
				t.Fatalf("non-http URL %q", e.URL)
			}
		}
	})
}
