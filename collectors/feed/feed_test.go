package feed

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"lookout/internal/testutil"
)

// feedGoldenBase is the URL the golden feeds are "fetched" from.
var feedGoldenBase = feedMustURL("https://feeds.example.com/path/feed.xml")

func feedMustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestParseFeedGolden(t *testing.T) {
	cases := []struct {
		file        string
		contentType string
	}{
		{"rss2_basic.xml", "application/rss+xml; charset=utf-8"},
		{"atom_basic.xml", "application/atom+xml"},
		{"rss_odd.xml", "text/xml"},
		{"rdf.xml", "application/rdf+xml"},
		// The declaration says GBK; a wrong Content-Type charset must not override it.
		{"rss_gbk.xml", "text/xml; charset=utf-8"},
		{"rss_gb2312.xml", ""},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "rss", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			feed, err := ParseFeed(data, tc.contentType, feedGoldenBase)
			if err != nil {
				t.Fatalf("ParseFeed: %v", err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(feed); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			testutil.Golden(t, filepath.Join("testdata", "rss", strings.TrimSuffix(tc.file, ".xml")+".golden.json"), got)
		})
	}
}

// The golden files are checked by eye once; these assertions pin the facts
// the issue asks for so that a careless -update cannot bless a regression.
func TestParseFeedFacts(t *testing.T) {
	read := func(name, ct string) *Feed {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("testdata", "rss", name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParseFeed(data, ct, feedGoldenBase)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return f
	}

	rss := read("rss2_basic.xml", "")
	if rss.Format != "rss" || rss.TTL != 15*time.Minute || len(rss.Entries) != 3 {
		t.Fatalf("rss2: format %q ttl %v entries %d", rss.Format, rss.TTL, len(rss.Entries))
	}
	e0 := rss.Entries[0]
	if e0.ID != "https://news.example.com/2024/06/acme-recall" || e0.Author != "Jane Reporter" ||
		!e0.Published.Equal(time.Date(2024, 6, 4, 9, 30, 0, 0, time.UTC)) {
		t.Errorf("rss2 entry 0: %+v", e0)
	}
	if got := rss.Entries[1].Summary; got != "The new store in Shanghai opened on Monday. Queues were long." {
		t.Errorf("content:encoded fallback: %q", got)
	}
	if got := rss.Entries[2].Published; !got.Equal(time.Date(2024, 5, 31, 13, 0, 0, 0, time.UTC)) {
		t.Errorf("EST date: %v", got)
	}

	atom := read("atom_basic.xml", "")
	if atom.Format != "atom" || len(atom.Entries) != 3 {
		t.Fatalf("atom: %+v", atom)
	}
	a0 := atom.Entries[0]
	if a0.Title != "Acme refund policy criticised" || a0.URL != "https://blog.example.org/posts/refund-policy" ||
		a0.Summary != "Customers say refunds take weeks." || a0.Author != "Chen Jing" ||
		!a0.Published.Equal(time.Date(2024, 6, 5, 2, 15, 0, 0, time.UTC)) {
		t.Errorf("atom entry 0: %+v", a0)
	}
	if a1 := atom.Entries[1]; a1.Author != "Acme Watch Team" || a1.Summary != "Fast replies, friendly staff." {
		t.Errorf("atom entry 1 (feed author, xhtml content): %+v", a1)
	}
	if a2 := atom.Entries[2]; a2.URL != "https://blog.example.org/archive/old-post.html" || a2.Summary != "Plain text summary with <angle> brackets kept." {
		t.Errorf("atom entry 2 (entry xml:base, text summary): %+v", a2)
	}

	odd := read("rss_odd.xml", "")
	ids := map[string]bool{}
	for _, e := range odd.Entries {
		if ids[e.ID] {
			t.Errorf("duplicate id %q survived", e.ID)
		}
		ids[e.ID] = true
	}
	if len(odd.Entries) != 8 {
		t.Fatalf("odd: want all 8 entries (no two are the same story), got %d", len(odd.Entries))
	}
	if o := odd.Entries[0]; o.URL != "https://odd.example.com/blog/posts/1.html" || o.ID != o.URL ||
		o.Summary != "Hello world & friends second line" || o.Title != "CDATA title with tags" {
		t.Errorf("odd entry 0 (CDATA, script, relative link): %+v", o)
	}
	if o := odd.Entries[1]; o.URL != "https://odd.example.com/abs/2" || o.Summary != "Price < 100 link" {
		t.Errorf("odd entry 1 (escaped HTML, absolute-path link): %+v", o)
	}
	if o := odd.Entries[2]; !strings.HasPrefix(o.ID, "sha256:") || !o.Published.IsZero() || o.URL != "" {
		t.Errorf("odd entry 2 (hash id, no date): %+v", o)
	}
	if o := odd.Entries[3]; !strings.HasPrefix(o.ID, "sha256:") || o.ID == odd.Entries[2].ID || o.Title != odd.Entries[2].Title {
		t.Errorf("odd entry 3 (same title, other text: its own hash id): %+v", o)
	}
	if o := odd.Entries[4]; o.URL != "" || !o.Published.IsZero() || o.ID != "odd-5" {
		t.Errorf("odd entry 4 (javascript link, bad date): %+v", o)
	}
	if o := odd.Entries[5]; o.ID != "odd-5#"+o.Digest() || o.Title != "Duplicate guid" {
		t.Errorf("odd entry 5 (guid reused for another story): %+v", o)
	}
	if o := odd.Entries[6]; o.URL != "https://odd.example.com/p/7" || o.Summary != "Bare ampersand & nbsp entity here" {
		t.Errorf("odd entry 6 (permalink guid, bare &): %+v", o)
	}

	for _, name := range []string{"rss_gbk.xml", "rss_gb2312.xml"} {
		f := read(name, "text/xml; charset=utf-8")
		if len(f.Entries) != 2 {
			t.Fatalf("%s: %d entries", name, len(f.Entries))
		}
		if e := f.Entries[0]; e.Title != "消费者投诉：退款迟迟不到账" || e.Summary != "多名用户反映客服不理人，要求维权。" || e.Author != "记者 王芳" {
			t.Errorf("%s: %+v", name, e)
		}
	}
}

func TestParseFeedContentTypeCharset(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "rss", "rss_gbk.xml"))
	if err != nil {
		t.Fatal(err)
	}
	// Without the declaration's encoding, the HTTP charset decides.
	noDecl := bytes.Replace(data, []byte(` encoding="GBK"`), nil, 1)
	f, err := ParseFeed(noDecl, "application/rss+xml; charset=GBK", nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Title != "品牌舆情快讯" {
		t.Errorf("title %q", f.Title)
	}
	// Neither says: the bytes are not UTF-8; nothing panics and the text
	// is valid UTF-8 (with replacement characters).
	f, err = ParseFeed(noDecl, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(f.Title) {
		t.Errorf("title not valid UTF-8: %q", f.Title)
	}
}

func TestParseFeedErrors(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "rss", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name     string
		data     []byte
		notFeed  bool
		contains string
	}{
		{"html page", read("not_a_feed.html"), true, "HTML page"},
		{"truncated", read("truncated.xml"), false, "bad XML"},
		{"empty", []byte("  \n"), false, "empty document"},
		{"json, not a feed", []byte(`{"foo":[]}`), true, "not a JSON Feed"},
		{"json, bad", []byte(`{"version":"https://jsonfeed.org/version/1.1","items":[`), false, "bad JSON"},
		{"json, items not an array", []byte(`{"version":"https://jsonfeed.org/version/1.1","items":{}}`), false, "items is not an array"},
		{"html without doctype", []byte("\n  <HTML><head><title>Login</title></head><body><p>Sign in<br></body></HTML>"), true, "got an HTML page, not a feed"},
		{"other xml", []byte(`<?xml version="1.0"?><svg></svg>`), true, "<svg>"},
		{"unknown charset", []byte(`<?xml version="1.0" encoding="x-klingon"?><rss/>`), false, "x-klingon"},
		{"two roots", []byte(`<rss></rss><rss></rss>`), false, "second root element"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFeed(tc.data, "", nil)
			if err == nil {
				t.Fatal("want an error")
			}
			if errors.Is(err, ErrNotAFeed) != tc.notFeed {
				t.Errorf("errors.Is(ErrNotAFeed) = %v, want %v (%v)", !tc.notFeed, tc.notFeed, err)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not mention %q", err, tc.contains)
			}
		})
	}
}

func TestFeedParseDate(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"Sat, 07 Sep 2002 00:00:01 GMT", utc(2002, 9, 7, 0, 0, 1), true},
		{"Sat, 7 Sep 2002 00:00:01 +0000", utc(2002, 9, 7, 0, 0, 1), true},
		{"Sat, 07 Sep 02 00:00 EDT", utc(2002, 9, 7, 4, 0, 0), true},
		{"Saturday, 07 Sep 2002 08:00:01 +0800", utc(2002, 9, 7, 0, 0, 1), true},
		{"Sat,07 Sep 2002 00:00:01 UT", utc(2002, 9, 7, 0, 0, 1), true},
		{"  Sat,  07   Sep 2002 00:00:01   Z ", utc(2002, 9, 7, 0, 0, 1), true},
		{"Sun, 07 Sep 2002 00:00:01 GMT", utc(2002, 9, 7, 0, 0, 1), true}, // wrong weekday ignored
		{"07 Sep 2002 00:00:01 +08:00", utc(2002, 9, 6, 16, 0, 1), true},
		{"Sat, 07 September 2002 00:00:01 PST", utc(2002, 9, 7, 8, 0, 1), true},
		{"Sat, 07 Sep 2002 00:00:01 GMT+8", utc(2002, 9, 6, 16, 0, 1), true},
		{"Sat, 07 Sep 2002 00:00:01 UTC-05:30", utc(2002, 9, 7, 5, 30, 1), true},
		{"2002-09-07 08:00:01 +08", utc(2002, 9, 7, 0, 0, 1), true},
		{"Sat, 07 Sep 2002 00:00:01 +123456", time.Time{}, false},
		{"2002-09-07T00:00:01Z", utc(2002, 9, 7, 0, 0, 1), true},
		{"2002-09-07T08:00:01+08:00", utc(2002, 9, 7, 0, 0, 1), true},
		{"2002-09-07T00:00:01.5Z", time.Date(2002, 9, 7, 0, 0, 1, 5e8, time.UTC), true},
		{"2002-09-07T08:00:01+0800", utc(2002, 9, 7, 0, 0, 1), true},
		{"2002-09-07T00:00:01", utc(2002, 9, 7, 0, 0, 1), true},
		{"2002-09-07 00:00:01", utc(2002, 9, 7, 0, 0, 1), true},
		{"2002-09-07", utc(2002, 9, 7, 0, 0, 0), true},
		{"2002/09/07 00:00", utc(2002, 9, 7, 0, 0, 0), true},
		{"2002年09月07日 00:00:01", utc(2002, 9, 7, 0, 0, 1), true},
		{"2002年9月7日", utc(2002, 9, 7, 0, 0, 0), true},
		{"Sat Sep  7 00:00:01 2002", utc(2002, 9, 7, 0, 0, 1), true},
		{"", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"Mon,", time.Time{}, false},
		{"0001-01-01T00:00:00Z", time.Time{}, false}, // before 1970: treated as no date
	}
	for _, tc := range cases {
		got, _, ok := feedParseDate(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("feedParseDate(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFeedParseDateZoneless(t *testing.T) {
	cases := map[string]bool{
		"Sat, 07 Sep 2002 00:00:01 GMT":   false,
		"Sat, 07 Sep 2002 00:00:01 +0800": false,
		"2002-09-07T00:00:01Z":            false,
		"2002-09-07T00:00:01+08:00":       false,
		"Sat, 07 Sep 2002 00:00:01":       true,
		"2002-09-07T00:00:01":             true,
		"2002-09-07 00:00:01":             true,
		"2002年9月7日":                       true,
	}
	for in, want := range cases {
		_, zoneless, ok := feedParseDate(in)
		if !ok || zoneless != want {
			t.Errorf("feedParseDate(%q): zoneless %v ok %v, want zoneless %v", in, zoneless, ok, want)
		}
	}
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Skipf("no zone database: %v", err)
	}
	e := FeedEntry{Published: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC), Zoneless: true}
	if got, want := e.InZone(sh), time.Date(2024, 6, 1, 4, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("zoneless 12:00 in Asia/Shanghai = %v, want %v", got, want)
	}
	e.Zoneless = false
	if got := e.InZone(sh); !got.Equal(e.Published) {
		t.Errorf("zoned date moved to %v", got)
	}
}

func TestFeedStripHTML(t *testing.T) {
	cases := map[string]string{
		"plain  text\n here":                        "plain text here",
		"<p>a</p><p>b</p>":                          "a b",
		"x<b>y</b>z":                                "xyz",
		"<script>var a = '<p>';</script>visible":    "visible",
		"<style>.a{}</style>5 &lt; 6 &amp;&amp; ok": "5 < 6 && ok",
		"caf&eacute;&nbsp;&#x4E2D;":                 "café 中",
		"unclosed <b>bold":                          "unclosed bold",
		"a < b":                                     "a < b",
	}
	for in, want := range cases {
		if got := feedStripHTML(in); got != want {
			t.Errorf("feedStripHTML(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFeedTruncateKeepsRunes(t *testing.T) {
	s := strings.Repeat("中", feedMaxSummary) // 3 bytes each
	got := feedTruncate(s)
	if !utf8.ValidString(got) || len(got) > feedMaxSummary+len("…") {
		t.Errorf("truncated to %d bytes, valid=%v", len(got), utf8.ValidString(got))
	}
}

// FuzzFeedParse: no input panics, and what parses is well-formed: unique
// non-empty ids, valid UTF-8, only absolute http(s) links.
func FuzzFeedParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "rss", "*"))
	for _, name := range files {
		if strings.HasSuffix(name, ".json") {
			continue
		}
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, "")
		}
	}
	f.Add([]byte(`<rss><channel><item><title>t</title></item></channel></rss>`), "text/xml; charset=gbk")
	f.Add([]byte(`<feed xmlns="http://www.w3.org/2005/Atom"><entry><content type="xhtml"><div><p>x</p></div></content></entry></feed>`), "")
	f.Fuzz(func(t *testing.T, data []byte, contentType string) {
		feed, err := ParseFeed(data, contentType, feedGoldenBase)
		if err != nil {
			if feed != nil {
				t.Fatal("feed and error both returned")
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range feed.Entries {
			if e.ID == "" {
				t.Fatalf("entry without id: %+v", e)
			}
			if seen[e.ID] {
				t.Fatalf("duplicate id %q", e.ID)
			}
			seen[e.ID] = true
			for _, s := range []string{e.Title, e.Summary, e.Author, e.Text()} {
				if !utf8.ValidString(s) {
					t.Fatalf("invalid UTF-8 in %q", s)
				}
			}
			if e.URL != "" && !strings.HasPrefix(e.URL, "http://") && !strings.HasPrefix(e.URL, "https://") {
				t.Fatalf("non-http URL %q", e.URL)
			}
			if len(e.Summary) > feedMaxSummary+len("…") {
				t.Fatalf("summary of %d bytes", len(e.Summary))
			}
		}
	})
}

func feedBenchDoc(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Bench</title><link>https://bench.example.com/</link>`)
	for i := range n {
		fmt.Fprintf(&b, `<item><title>Acme news item %d: customers complain about refunds</title><link>https://bench.example.com/p/%d</link><guid>bench-%d</guid><pubDate>Tue, 04 Jun 2024 09:%02d:00 +0000</pubDate><dc:creator>Reporter %d</dc:creator><description><![CDATA[<p>Paragraph one of item %d with <b>bold</b> text &amp; an <a href="/x">inline link</a>.</p><p>消费者投诉：退款迟迟不到账，客服态度差。</p>]]></description></item>`, i, i, i, i%60, i, i)
	}
	b.WriteString(`</channel></rss>`)
	return b.Bytes()
}

// BenchmarkFeedParse: a 100-entry RSS 2.0 document with HTML descriptions.
func BenchmarkFeedParse(b *testing.B) {
	doc := feedBenchDoc(100)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	entries := 0
	for b.Loop() {
		f, err := ParseFeed(doc, "application/rss+xml", feedGoldenBase)
		if err != nil {
			b.Fatal(err)
		}
		entries += len(f.Entries)
	}
	b.ReportMetric(float64(entries)/b.Elapsed().Seconds(), "entries/s")
}

func TestParseFeedVariants(t *testing.T) {
	utf16le := func(s string) []byte {
		out := []byte{0xff, 0xfe}
		for _, r := range s {
			out = append(out, byte(r), byte(r>>8)) // BMP only, enough here
		}
		return out
	}
	cases := []struct {
		name      string
		doc       []byte
		wantTitle string // of the first entry
		wantID    string
		wantDate  time.Time
	}{
		{"atom 0.3", []byte(`<feed version="0.3" xmlns="http://purl.org/atom/ns#"><entry><title>old atom</title><id>a03</id><issued>2004-01-02T03:04:05Z</issued></entry></feed>`),
			"old atom", "a03", time.Date(2004, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"rss2 default namespace", []byte(`<rss version="2.0" xmlns="http://backend.userland.com/rss2"><channel><item><title>ns item</title><guid>n1</guid></item></channel></rss>`),
			"ns item", "n1", time.Time{}},
		{"utf-8 BOM", append([]byte("\xef\xbb\xbf"), `<?xml version="1.0" encoding="utf-8"?><rss><channel><item><title>bom</title><guid>b</guid></item></channel></rss>`...),
			"bom", "b", time.Time{}},
		{"utf-16 BOM", utf16le(`<?xml version="1.0" encoding="UTF-16"?><rss><channel><item><title>宽字符</title><guid>w</guid></item></channel></rss>`),
			"宽字符", "w", time.Time{}},
		{"stray byte in utf-8", []byte("<rss><channel><item><title>bad \xff byte</title><guid>s</guid></item></channel></rss>"),
			"bad \uFFFD byte", "s", time.Time{}},
		{"dc:date and undeclared prefix", []byte(`<rss><channel><item><title>t</title><guid>d</guid><dc:date>2024-06-01T08:00:00+08:00</dc:date></item></channel></rss>`),
			"t", "d", time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFeed(tc.doc, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Entries) != 1 {
				t.Fatalf("%d entries", len(f.Entries))
			}
			e := f.Entries[0]
			if e.Title != tc.wantTitle || e.ID != tc.wantID || !e.Published.Equal(tc.wantDate) {
				t.Errorf("got %+v", e)
			}
		})
	}
}

// Damaged XML keeps what it can, as feed readers do, and says what it cost.
func TestParseFeedRepairs(t *testing.T) {
	items := `<item><title>one</title><guid>1</guid></item><item><title>two</title><guid>2</guid></item>`
	cases := []struct {
		name     string
		doc      string
		wantIDs  []string
		wantWarn string
	}{
		{"control character", "<rss><channel><item><title>o\x08ne</title><guid>1</guid></item><item><title>two</title><guid>2</guid></item></channel></rss>",
			[]string{"1", "2"}, "control character"},
		{"misspelt end tag of a leaf", `<rss><channel><language>en</langauge>` + items + `</channel></rss>`,
			[]string{"1", "2"}, "matched no open element"},
		{"stray end tag", `<rss><channel></div>` + items + `</channel></rss>`,
			[]string{"1", "2"}, "matched no open element"},
		{"unclosed element inside an item", `<rss><channel><item><title>one</title><description><p>x</description><guid>1</guid></item><item><title>two</title><guid>2</guid></item></channel></rss>`,
			[]string{"1", "2"}, "had no end tag"},
		{"syntax error after two items", `<rss><channel>` + items + `<item><title>three</title><guid>3</guid></item><item><title a="1" a="2 <</title></item></channel></rss>`,
			[]string{"1", "2", "3"}, "kept the 3 complete entries"},
		{"cut off inside the third item", `<rss><channel>` + items + `<item><title>three</ti`,
			[]string{"1", "2"}, "cut off by the end of the document"},
		{"trailing garbage after the root", `<rss><channel>` + items + `</channel></rss><br/><b>Warning</b>: PHP notice`,
			[]string{"1", "2"}, "second root element"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFeed([]byte(tc.doc), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range f.Entries {
				ids = append(ids, e.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.wantIDs) {
				t.Errorf("ids %v, want %v", ids, tc.wantIDs)
			}
			if f.Entries[0].Title != "one" {
				t.Errorf("first title %q", f.Entries[0].Title)
			}
			if !strings.Contains(strings.Join(f.Warnings, "; "), tc.wantWarn) {
				t.Errorf("warnings %q do not mention %q", f.Warnings, tc.wantWarn)
			}
		})
	}
	// A clean document has no warnings.
	f, err := ParseFeed([]byte(`<rss><channel>`+items+`</channel></rss>`), "", nil)
	if err != nil || len(f.Warnings) != 0 || len(f.Entries) != 2 {
		t.Fatalf("clean document: %+v, %v", f, err)
	}
}

func TestParseFeedAtomContent(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	const atom10 = `<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>x</id>%s</entry></feed>`
	const atom03 = `<feed version="0.3" xmlns="http://purl.org/atom/ns#"><entry><id>x</id>%s</entry></feed>`
	cases := []struct {
		name, doc, wantTitle, wantSummary string
		wantDate                          time.Time
	}{
		{"atom 1.0 binary type is base64", fmt.Sprintf(atom10, `<title type="application/octet-stream">`+b64("<p>Hello</p>")+`</title><content type="application/octet-stream">`+b64("&lt;b&gt; is bold")+`</content>`),
			"Hello", "<b> is bold", time.Time{}},
		{"atom 0.3 mode=base64", fmt.Sprintf(atom03, `<title mode="base64">`+b64("Entry Title")+`</title><summary type="text/html" mode="base64">`+b64("<p>Entry Summary</p>")+`</summary>`),
			"Entry Title", "Entry Summary", time.Time{}},
		{"unknown type in plain text stays text", fmt.Sprintf(atom10, `<title type="application/x-custom">test</title>`), "test", "", time.Time{}},
		{"image content is not text", fmt.Sprintf(atom10, `<title>t</title><content type="image/png">iVBORw0KGgoAAAANSUhEUg==</content>`), "t", "", time.Time{}},
		{"escaped markup in xhtml stays text", fmt.Sprintf(atom10, `<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">a &lt;p&gt; tag</div></title><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Use &lt;b&gt; for <b>bold</b>.</p></div></content>`),
			"a <p> tag", "Use <b> for bold .", time.Time{}},
		{"json content is text", fmt.Sprintf(atom10, `<title>t</title><content type="application/json">{"a":1}</content>`), "t", `{"a":1}`, time.Time{}},
		{"atom 0.3 modified", fmt.Sprintf(atom03, `<title>t</title><modified>2014-07-06T12:56:00Z</modified>`), "t", "", time.Date(2014, 7, 6, 12, 56, 0, 0, time.UTC)},
		{"atom 0.3 issued before modified", fmt.Sprintf(atom03, `<title>t</title><modified>2014-07-06T12:56:00Z</modified><issued>2014-07-01T00:00:00Z</issued>`), "t", "", time.Date(2014, 7, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFeed([]byte(tc.doc), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			e := f.Entries[0]
			if e.Title != tc.wantTitle || e.Summary != tc.wantSummary || !e.Published.Equal(tc.wantDate) {
				t.Errorf("got title %q summary %q date %v", e.Title, e.Summary, e.Published)
			}
		})
	}
}

func TestParseFeedXMLBase(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"rss root", `<rss xml:base="http://example.org/feeds/"><channel><link>https://site.example/</link><item><link>post/1</link></item></channel></rss>`,
			"http://example.org/feeds/post/1"},
		{"rss item overrides channel", `<rss><channel xml:base="http://a.example/x/"><item xml:base="http://b.example/y/"><link>p</link></item></channel></rss>`,
			"http://b.example/y/p"},
		{"rss relative xml:base on the link", `<rss xml:base="http://a.example/x/"><channel><item><link xml:base="sub/">p</link></item></channel></rss>`,
			"http://a.example/x/sub/p"},
		{"rss without xml:base: channel link", `<rss><channel><link>https://site.example/blog/</link><item><link>p</link></item></channel></rss>`,
			"https://site.example/blog/p"},
		{"atom entry", `<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://example.com/test/"><entry><id>relative/id</id><link href="../a"/></entry></feed>`,
			"http://example.com/a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFeed([]byte(tc.doc), "", feedGoldenBase)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Entries[0].URL; got != tc.want {
				t.Errorf("link %q, want %q", got, tc.want)
			}
		})
	}
	f, _ := ParseFeed([]byte(cases[4].doc), "", feedGoldenBase)
	if id := f.Entries[0].ID; id != "http://example.com/test/relative/id" {
		t.Errorf("relative atom id under xml:base: %q", id)
	}
}

// Entries without guid or link are told apart by their content; only a
// true repeat is dropped.
func TestParseFeedIdentity(t *testing.T) {
	doc := `<rss><channel>
<item><description>Refunds take weeks.</description></item>
<item><description>Support never answers.</description></item>
<item><description>Great service today.</description></item>
<item><description>Great service today.</description></item>
<item><guid>g</guid><title>first story</title></item>
<item><guid>g</guid><title>another story</title></item>
<item><guid>g</guid><title>first story</title></item>
</channel></rss>`
	f, err := ParseFeed([]byte(doc), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range f.Entries {
		got = append(got, e.Summary+e.Title+"="+e.ID[:min(len(e.ID), 8)])
	}
	if len(f.Entries) != 5 {
		t.Fatalf("want 3 description-only entries and two stories under guid g, got %d: %q", len(f.Entries), got)
	}
	ids := map[string]bool{}
	for _, e := range f.Entries[:3] {
		if !strings.HasPrefix(e.ID, "sha256:") || ids[e.ID] {
			t.Errorf("description-only entry id %q", e.ID)
		}
		ids[e.ID] = true
	}
	if f.Entries[3].ID != "g" || f.Entries[4].ID != "g#"+f.Entries[4].Digest() || f.Entries[4].Title != "another story" {
		t.Errorf("reused guid: %q", got)
	}
	// The id of a description-only entry is stable across fetches.
	f2, _ := ParseFeed([]byte(doc), "", nil)
	if f2.Entries[1].ID != f.Entries[1].ID {
		t.Error("hash id is not stable")
	}
}
