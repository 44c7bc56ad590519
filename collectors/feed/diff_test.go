package feed

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"lookout/internal/htmltext"
)

// The differential test runs ParseFeed and gofeed (a widely used Go feed
// parser, a test-only dependency) over the real-world fixtures under
// $LOOKOUT_DATA/feeds — parser test files written by gofeed and Miniflux, not
// with lookout in mind — and compares, where both parse, the item count and,
// item by item, titles, links, GUIDs, dates and text (both read through
// htmltext). Every disagreement must be listed in feedDiffKnown with the
// reason; a listed one that no longer disagrees fails too, so the table stays
// true. Each field must agree on at least feedDiffTarget of the cases
// compared, counting the listed differences as disagreements.

const feedDiffTarget = 0.995

// feedDiffBase is the URL every fixture is "fetched" from.
var feedDiffBase = feedMustURL("http://fixture.example/feeds/feed.xml")

type feedDiffField string

const (
	fdParse feedDiffField = "parse" // gofeed parses, lookout does not
	fdCount feedDiffField = "count"
	fdTitle feedDiffField = "title"
	fdLink  feedDiffField = "link"
	fdGUID  feedDiffField = "guid"
	fdDate  feedDiffField = "date"
	fdText  feedDiffField = "text"
)

var feedDiffFields = []feedDiffField{fdCount, fdTitle, fdLink, fdGUID, fdDate, fdText}

// feedDiffKey names one known difference: a fixture (path below
// $LOOKOUT_DATA/feeds) and a field; the item index is not part of the key,
// so one entry explains every item of the file that differs on that field.
type feedDiffKey struct {
	file  string
	field feedDiffField
}

// Reasons for the known, intended differences.
const (
	feedDiffFirstLink = "an item with several <link> elements: lookout takes the first with a URL (the RSS link), " +
		"gofeed the last one it read (here an href attribute on a later <link>)"
	feedDiffGUIDText = "markup inside <guid> (not a CDATA section): lookout keys the item by the guid's text, " +
		"gofeed by the raw inner markup; the text is what stays stable if the publisher fixes the escaping"
)

// feedDiffKnown lists every known, intended difference.
var feedDiffKnown = map[feedDiffKey]string{
	{"gofeed/testdata/parser/rss/rss_channel_item_links.xml", fdLink}:             feedDiffFirstLink,
	{"gofeed/testdata/parser/rss/rdf_item_links.xml", fdLink}:                     feedDiffFirstLink,
	{"gofeed/testdata/parser/rss/rss_channel_item_guid_naked_markup.xml", fdGUID}: feedDiffGUIDText,
}

type feedDiffStat struct{ compared, agreed int }

type feedDiffResult struct {
	files, bothParse, gofeedOnly, lookoutOnly, neither int
	stats                                              map[feedDiffField]*feedDiffStat
	diffs                                              map[feedDiffKey][]string // what differed, for the failure message
}

func TestFeedDifferentialGofeed(t *testing.T) {
	dir := os.Getenv("LOOKOUT_DATA")
	if dir == "" {
		t.Skip("LOOKOUT_DATA not set: no real-world feed fixtures for the differential test against gofeed")
	}
	root := filepath.Join(dir, "feeds")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("no feed fixtures: %v", err)
	}
	res := feedDiffRun(t, root)
	t.Logf("fixtures %d: both parse %d, only gofeed %d, only lookout %d, neither %d",
		res.files, res.bothParse, res.gofeedOnly, res.lookoutOnly, res.neither)
	for _, f := range feedDiffFields {
		s := res.stats[f]
		t.Logf("%-5s agree %d/%d = %.2f%%", f, s.agreed, s.compared, 100*float64(s.agreed)/float64(max(s.compared, 1)))
		if s.compared == 0 {
			t.Errorf("%s: nothing compared", f)
		} else if float64(s.agreed) < feedDiffTarget*float64(s.compared) {
			t.Errorf("%s: agreement %.2f%% is below %.1f%%", f, 100*float64(s.agreed)/float64(s.compared), 100*feedDiffTarget)
		}
	}
	keys := make([]feedDiffKey, 0, len(res.diffs))
	for k := range res.diffs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].file != keys[j].file {
			return keys[i].file < keys[j].file
		}
		return keys[i].field < keys[j].field
	})
	for _, k := range keys {
		if _, ok := feedDiffKnown[k]; !ok {
			t.Errorf("unexplained difference %s %s:\n\t%s", k.file, k.field, strings.Join(res.diffs[k], "\n\t"))
		}
	}
	for k := range feedDiffKnown {
		if _, ok := res.diffs[k]; !ok {
			t.Errorf("listed difference %s %s no longer differs: remove it from feedDiffKnown", k.file, k.field)
		}
	}
}

func feedDiffRun(t *testing.T, root string) feedDiffResult {
	res := feedDiffResult{stats: map[feedDiffField]*feedDiffStat{}, diffs: map[feedDiffKey][]string{}}
	for _, f := range feedDiffFields {
		res.stats[f] = &feedDiffStat{}
	}
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() || name == "README.md" || name == "LICENSE" || strings.Contains(name, "_expected") {
			return nil // expected-output companions are gofeed's answers, not feeds
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		res.files++
		gf, gerr := gofeed.NewParser().Parse(bytes.NewReader(data))
		lf, lerr := ParseFeed(data, "", feedDiffBase)
		switch {
		case gerr != nil && lerr != nil:
			res.neither++
			t.Logf("neither parses %s: lookout: %v; gofeed: %v", rel, lerr, gerr)
			continue
		case gerr != nil:
			res.lookoutOnly++
			t.Logf("only lookout parses %s (gofeed: %v)", rel, gerr)
			continue
		case lerr != nil:
			res.gofeedOnly++
			res.diffs[feedDiffKey{rel, fdParse}] = []string{lerr.Error()}
			continue
		}
		res.bothParse++
		feedDiffCompare(&res, rel, gf, lf)
	}
	return res
}

func (r *feedDiffResult) check(file string, field feedDiffField, got, want string, what string) {
	s := r.stats[field]
	s.compared++
	if got == want {
		s.agreed++
		return
	}
	k := feedDiffKey{file, field}
	if len(r.diffs[k]) < 3 {
		r.diffs[k] = append(r.diffs[k], fmt.Sprintf("%s: lookout %q, gofeed %q", what, feedDiffClip(got), feedDiffClip(want)))
	}
}

func feedDiffClip(s string) string {
	if len(s) > 120 {
		return feedTruncateTo(s, 120)
	}
	return s
}

func feedTruncateTo(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func feedDiffCompare(r *feedDiffResult, file string, g *gofeed.Feed, l *Feed) {
	r.check(file, fdCount, fmt.Sprint(len(l.Entries)), fmt.Sprint(len(g.Items)), "items")
	if len(l.Entries) != len(g.Items) {
		return // items cannot be paired
	}
	for i, gi := range g.Items {
		le := l.Entries[i]
		what := fmt.Sprintf("item %d", i)
		r.check(file, fdTitle, le.Title, feedDiffText(gi.Title), what)
		r.check(file, fdLink, le.URL, feedDiffLink(gi.Link), what)
		if guid := strings.TrimSpace(gi.GUID); guid != "" {
			r.check(file, fdGUID, le.ID, guid, what)
		}
		r.check(file, fdDate, feedDiffTime(le.Published), feedDiffTime(feedDiffGofeedTime(gi)), what)
		text := gi.Description
		if strings.TrimSpace(feedDiffText(text)) == "" {
			text = gi.Content
		}
		r.check(file, fdText, le.Summary, feedTruncate(feedDiffText(text)), what)
	}
}

// feedDiffText is gofeed's text as lookout would store it.
func feedDiffText(s string) string { return htmltext.Text(s, htmltext.Options{}) }

// feedDiffLink is gofeed's link as lookout would store it: absolute against
// the fixture's URL, and only http(s).
func feedDiffLink(s string) string { return feedResolve(feedDiffBase, s) }

func feedDiffGofeedTime(gi *gofeed.Item) time.Time {
	if gi.PublishedParsed != nil {
		return *gi.PublishedParsed
	}
	if gi.UpdatedParsed != nil {
		return *gi.UpdatedParsed
	}
	return time.Time{}
}

func feedDiffTime(t time.Time) string {
	if t.IsZero() || t.Year() < 1970 {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
