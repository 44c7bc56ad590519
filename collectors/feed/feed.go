package feed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
	xunicode "golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"lookout/internal/htmltext"
)

// Feed is a parsed RSS 2.0, RSS 1.0 (RDF) or Atom document.
type Feed struct {
	Format  string        `json:"format"` // rss, rdf or atom
	Title   string        `json:"title"`
	Link    string        `json:"link,omitempty"`
	TTL     time.Duration `json:"ttl,omitempty"` // RSS <ttl>: the publisher's minimum poll interval
	Entries []FeedEntry   `json:"entries"`
}

// FeedEntry is one item or entry, normalised across formats.
type FeedEntry struct {
	// ID is the dedupe key: the RSS guid or Atom id as written; else the
	// entry's absolute link; else "sha256:" and a hash of title and date.
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Summary   string    `json:"summary"` // description/summary/content as plain text
	Author    string    `json:"author,omitempty"`
	URL       string    `json:"url,omitempty"`      // absolute http(s) link
	Published time.Time `json:"published,omitzero"` // pubDate/published/updated; zero when absent or unparseable
}

// Text is what the classifier reads: the title, a newline, the summary.
func (e *FeedEntry) Text() string {
	switch {
	case e.Summary == "":
		return e.Title
	case e.Title == "":
		return e.Summary
	}
	return e.Title + "\n" + e.Summary
}

// Namespaces the parser knows. Prefixes are accepted too, for feeds that use
// a prefix without declaring it.
const (
	feedNSAtom    = "http://www.w3.org/2005/Atom"
	feedNSRSS1    = "http://purl.org/rss/1.0/"
	feedNSRSS09   = "http://my.netscape.com/rdf/simple/0.9/"
	feedNSRSS2a   = "http://backend.userland.com/rss2" // rare default namespaces on RSS 2.0
	feedNSRSS2b   = "http://blogs.law.harvard.edu/tech/rss"
	feedNSAtom03  = "http://purl.org/atom/ns#"
	feedNSContent = "http://purl.org/rss/1.0/modules/content/"
	feedNSDC      = "http://purl.org/dc/elements/1.1/"
	feedNSXML     = "http://www.w3.org/XML/1998/namespace"
)

// Limits that keep one hostile document from costing more than its size.
const (
	feedMaxDepth   = 64       // deeper elements are folded into their ancestor
	feedMaxSummary = 16 << 10 // bytes of summary text kept per entry
	feedMaxTTL     = 24 * time.Hour
)

// ErrNotAFeed is returned (wrapped) when a document parses but is not RSS or
// Atom — typically an HTML error or login page where the feed used to be.
var ErrNotAFeed = errors.New("not an RSS or Atom feed")

// ParseFeed parses an RSS 2.0, RSS 1.0 or Atom document. contentType is the
// HTTP Content-Type (its charset is used when the XML declaration names
// none); base is the feed's URL, against which relative links resolve.
func ParseFeed(data []byte, contentType string, base *url.URL) (*Feed, error) {
	root, text, err := feedBuildTree(data, contentType)
	if err != nil {
		return nil, err
	}
	p := feedInterp{text: text, base: base}
	switch strings.ToLower(root.name.Local) {
	case "rss":
		return p.rss(root, "rss"), nil
	case "rdf":
		return p.rss(root, "rdf"), nil
	case "feed":
		return p.atom(root), nil
	case "html", "body", "head":
		return nil, fmt.Errorf("%w: got an HTML page (root element <%s>)", ErrNotAFeed, root.name.Local)
	}
	return nil, fmt.Errorf("%w: root element is <%s>", ErrNotAFeed, root.name.Local)
}

// feedNode is one element. Its text is text[start:end] of the document's
// text buffer: all character data inside it, in order, with a space at
// element boundaries.
type feedNode struct {
	name       xml.Name
	attrs      []xml.Attr
	start, end int
	children   []*feedNode
}

var feedDeclEncodingRE = regexp.MustCompile(`^\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']+)["']`)

// feedBuildTree decodes data into a tree of elements and one text buffer.
func feedBuildTree(data []byte, contentType string) (*feedNode, []byte, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, errors.New("empty document")
	}
	var declEnc string
	head := data[:min(len(data), 256)]
	if m := feedDeclEncodingRE.FindSubmatch(head); m != nil {
		declEnc = strings.ToLower(string(m[1]))
	}
	converted := false
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xfe")) || bytes.HasPrefix(data, []byte("\xfe\xff")):
		out, _, err := transform.Bytes(xunicode.BOMOverride(xunicode.UTF8.NewDecoder()), data)
		if err != nil {
			return nil, nil, fmt.Errorf("decode UTF-16: %w", err)
		}
		data, converted = out, true
	case declEnc == "":
		if cs := feedContentTypeCharset(contentType); cs != "" && !feedIsUTF8(cs) {
			r, err := charset.NewReaderLabel(cs, bytes.NewReader(data))
			if err != nil {
				return nil, nil, fmt.Errorf("charset %q from Content-Type: %w", cs, err)
			}
			out, err := io.ReadAll(r)
			if err != nil {
				return nil, nil, fmt.Errorf("decode %s: %w", cs, err)
			}
			data, converted = out, true
		}
	}
	if !converted && (declEnc == "" || feedIsUTF8(declEnc)) && !utf8.Valid(data) {
		// Stray bytes in a UTF-8 feed are common; keep the rest of it.
		data = bytes.ToValidUTF8(data, []byte("\uFFFD"))
	}

	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false // tolerate bare & and mismatched end tags like browsers and Miniflux do
	d.Entity = xml.HTMLEntity
	if converted {
		d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	} else {
		d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
			r, err := charset.NewReaderLabel(label, in)
			if err != nil {
				return nil, fmt.Errorf("unsupported encoding %q", label)
			}
			return r, nil
		}
	}

	var (
		text  []byte
		root  *feedNode
		stack []*feedNode
		extra int // open elements folded into the deepest node
	)
	sep := func() {
		if n := len(text); n > 0 && text[n-1] != ' ' {
			text = append(text, ' ')
		}
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("bad XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, nil, errors.New("bad XML: more than one root element")
			}
			if len(stack) >= feedMaxDepth {
				extra++
				sep()
				continue
			}
			sep()
			n := &feedNode{name: t.Name, start: len(text)}
			if len(t.Attr) > 0 {
				n.attrs = append([]xml.Attr(nil), t.Attr...)
			}
			if len(stack) == 0 {
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if extra > 0 {
				extra--
				sep()
				continue
			}
			if len(stack) == 0 {
				return nil, nil, errors.New("bad XML: unexpected end element")
			}
			n := stack[len(stack)-1]
			n.end = len(text)
			stack = stack[:len(stack)-1]
			sep()
		case xml.CharData:
			if len(stack) > 0 {
				text = append(text, t...)
			}
		}
	}
	if root == nil {
		return nil, nil, errors.New("bad XML: no root element")
	}
	if len(stack) > 0 {
		return nil, nil, fmt.Errorf("bad XML: document ends inside <%s>", stack[len(stack)-1].name.Local)
	}
	return root, text, nil
}

func feedContentTypeCharset(ct string) string {
	if ct == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(params["charset"]))
}

func feedIsUTF8(label string) bool {
	l := strings.ToLower(label)
	return l == "utf-8" || l == "utf8" || l == "us-ascii" || l == "ascii"
}

// feedInterp turns a tree into a Feed.
type feedInterp struct {
	text []byte
	base *url.URL
}

func (p *feedInterp) raw(n *feedNode) string {
	if n == nil || n.start > n.end {
		return ""
	}
	return string(p.text[n.start:n.end])
}

// plain is an element's text with whitespace collapsed.
func (p *feedInterp) plain(n *feedNode) string { return feedCollapse(p.raw(n)) }

// html is an element's text read as HTML: tags stripped, entities unescaped.
func (p *feedInterp) html(n *feedNode) string { return feedStripHTML(p.raw(n)) }

func (n *feedNode) attr(local string) (string, bool) {
	if n == nil {
		return "", false
	}
	for _, a := range n.attrs {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == feedNSXML || a.Name.Space == "xml") {
			return a.Value, true
		}
	}
	return "", false
}

// first returns the first child for which match is true.
func (n *feedNode) first(match func(xml.Name) bool) *feedNode {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if match(c.name) {
			return c
		}
	}
	return nil
}

// Name matchers. RSS elements have no namespace (2.0) or the RSS 1.0 one;
// Atom elements the Atom namespace (or none, in sloppy feeds).
func feedRSSName(local string) func(xml.Name) bool {
	return func(n xml.Name) bool {
		if !strings.EqualFold(n.Local, local) {
			return false
		}
		switch n.Space {
		case "", feedNSRSS1, feedNSRSS09, feedNSRSS2a, feedNSRSS2b:
			return true
		}
		return false
	}
}

func feedAtomName(local string) func(xml.Name) bool {
	return func(n xml.Name) bool {
		return n.Local == local && (n.Space == feedNSAtom || n.Space == "" || n.Space == "atom" || n.Space == feedNSAtom03)
	}
}

func feedNSName(local string, spaces ...string) func(xml.Name) bool {
	return func(n xml.Name) bool {
		if n.Local != local {
			return false
		}
		for _, s := range spaces {
			if n.Space == s {
				return true
			}
		}
		return false
	}
}

var (
	feedDCCreator      = feedNSName("creator", feedNSDC, "dc")
	feedDCDate         = feedNSName("date", feedNSDC, "dc")
	feedDCTitle        = feedNSName("title", feedNSDC, "dc")
	feedContentEncoded = feedNSName("encoded", feedNSContent, "content")
	feedAtomLinkInRSS  = feedNSName("link", feedNSAtom, "atom")
)

func (p *feedInterp) rss(root *feedNode, format string) *Feed {
	ch := root.first(feedRSSName("channel"))
	f := &Feed{Format: format, Title: p.html(ch.first(feedRSSName("title")))}
	base := p.base
	if l := p.plain(ch.first(feedRSSName("link"))); l != "" {
		// Item links are relative to the site (channel link) when it is an
		// absolute URL, else to the feed's own URL.
		if u, err := url.Parse(l); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			base = u
		}
		f.Link = feedResolve(p.base, l)
	}
	if ttl, err := strconv.Atoi(p.plain(ch.first(feedRSSName("ttl")))); err == nil && ttl > 0 {
		f.TTL = min(time.Duration(ttl)*time.Minute, feedMaxTTL)
	}
	var items []*feedNode
	for _, parent := range []*feedNode{ch, root} {
		if parent == nil {
			continue
		}
		for _, c := range parent.children {
			if feedRSSName("item")(c.name) {
				items = append(items, c)
			}
		}
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		e := p.rssItem(it, base)
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		f.Entries = append(f.Entries, e)
	}
	return f
}

func (p *feedInterp) rssItem(it *feedNode, base *url.URL) FeedEntry {
	var e FeedEntry
	titleNode := it.first(feedRSSName("title"))
	if titleNode == nil {
		titleNode = it.first(feedDCTitle)
	}
	e.Title = p.html(titleNode)

	linkNode := it.first(feedRSSName("link"))
	link := p.plain(linkNode)
	if link == "" {
		link, _ = linkNode.attr("href")
	}
	if link == "" {
		for _, c := range it.children {
			if feedAtomLinkInRSS(c.name) {
				if rel, _ := c.attr("rel"); rel == "" || rel == "alternate" {
					link, _ = c.attr("href")
					break
				}
			}
		}
	}
	e.URL = feedResolve(base, link)

	guidNode := it.first(feedRSSName("guid"))
	guid := p.plain(guidNode)
	if e.URL == "" && guid != "" {
		if perma, ok := guidNode.attr("isPermaLink"); !ok || strings.EqualFold(strings.TrimSpace(perma), "true") {
			e.URL = feedResolve(nil, guid) // only an absolute guid is a link
		}
	}

	e.Summary = feedTruncate(p.html(it.first(feedRSSName("description"))))
	if e.Summary == "" {
		e.Summary = feedTruncate(p.html(it.first(feedContentEncoded)))
	}

	author := p.plain(it.first(feedRSSName("author")))
	if author == "" {
		author = p.plain(it.first(feedDCCreator))
	}
	e.Author = feedAuthorName(author)

	dateNode := it.first(feedRSSName("pubDate"))
	if dateNode == nil {
		dateNode = it.first(feedDCDate)
	}
	if dateNode == nil {
		dateNode = it.first(feedNSName("published", feedNSAtom, "atom"))
	}
	if dateNode == nil {
		dateNode = it.first(feedNSName("updated", feedNSAtom, "atom"))
	}
	rawDate := p.plain(dateNode)
	e.Published, _ = feedParseDate(rawDate)

	e.ID = feedEntryID(guid, e.URL, e.Title, rawDate)
	return e
}

func (p *feedInterp) atom(root *feedNode) *Feed {
	base := feedXMLBase(p.base, root)
	f := &Feed{Format: "atom", Title: p.atomText(root.first(feedAtomName("title")))}
	f.Link = p.atomLink(root, base)
	feedAuthor := p.atomAuthor(root)
	seen := map[string]bool{}
	for _, c := range root.children {
		if !feedAtomName("entry")(c.name) {
			continue
		}
		e := p.atomEntry(c, feedXMLBase(base, c), feedAuthor)
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		f.Entries = append(f.Entries, e)
	}
	return f
}

func (p *feedInterp) atomEntry(n *feedNode, base *url.URL, feedAuthor string) FeedEntry {
	var e FeedEntry
	e.Title = p.atomText(n.first(feedAtomName("title")))
	e.URL = p.atomLink(n, base)
	e.Summary = feedTruncate(p.atomText(n.first(feedAtomName("summary"))))
	if e.Summary == "" {
		e.Summary = feedTruncate(p.atomText(n.first(feedAtomName("content"))))
	}
	e.Author = p.atomAuthor(n)
	if e.Author == "" {
		e.Author = feedAuthor
	}
	dateNode := n.first(feedAtomName("published"))
	if dateNode == nil {
		dateNode = n.first(feedAtomName("updated"))
	}
	if dateNode == nil {
		dateNode = n.first(feedAtomName("issued")) // Atom 0.3
	}
	rawDate := p.plain(dateNode)
	e.Published, _ = feedParseDate(rawDate)
	e.ID = feedEntryID(p.plain(n.first(feedAtomName("id"))), e.URL, e.Title, rawDate)
	return e
}

// atomText reads an Atom text construct: type text as is, html with tags
// stripped, xhtml by its text content; out-of-line content (src=) is empty.
func (p *feedInterp) atomText(n *feedNode) string {
	if n == nil {
		return ""
	}
	if _, ok := n.attr("src"); ok {
		return ""
	}
	typ, _ := n.attr("type")
	switch strings.ToLower(strings.TrimSpace(typ)) {
	case "", "text", "text/plain":
		return p.plain(n)
	case "xhtml", "application/xhtml+xml":
		return feedStripHTML(p.raw(n)) // the tree already gave us the text; unescape leftovers
	}
	return p.html(n)
}

// atomLink picks rel="alternate" (or no rel), else the first link with href.
func (p *feedInterp) atomLink(n *feedNode, base *url.URL) string {
	var fallback string
	for _, c := range n.children {
		if !feedAtomName("link")(c.name) {
			continue
		}
		href, _ := c.attr("href")
		if href == "" {
			continue
		}
		rel, _ := c.attr("rel")
		if rel == "" || rel == "alternate" {
			return feedResolve(base, href)
		}
		if fallback == "" && rel != "self" && rel != "hub" {
			fallback = href
		}
	}
	return feedResolve(base, fallback)
}

func (p *feedInterp) atomAuthor(n *feedNode) string {
	a := n.first(feedAtomName("author"))
	if a == nil {
		return ""
	}
	if name := p.plain(a.first(feedAtomName("name"))); name != "" {
		return name
	}
	if len(a.children) == 0 {
		return p.plain(a)
	}
	return ""
}

// feedXMLBase applies an element's xml:base to base.
func feedXMLBase(base *url.URL, n *feedNode) *url.URL {
	for _, a := range n.attrs {
		if a.Name.Local == "base" && (a.Name.Space == feedNSXML || a.Name.Space == "xml") {
			u, err := url.Parse(strings.TrimSpace(a.Value))
			if err != nil {
				return base
			}
			if base == nil {
				return u
			}
			return base.ResolveReference(u)
		}
	}
	return base
}

// feedResolve makes ref absolute against base; links that are not http(s)
// (javascript:, data:, mailto:) are dropped.
func feedResolve(base *url.URL, ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return ""
	}
	u, err := url.Parse(ref)
	if err != nil {
		return ""
	}
	if base != nil {
		u = base.ResolveReference(u)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

// feedEntryID picks the dedupe key.
func feedEntryID(id, link, title, rawDate string) string {
	if id = strings.TrimSpace(id); id != "" {
		return id
	}
	if link != "" {
		return link
	}
	sum := sha256.Sum256([]byte(title + "\x00" + rawDate))
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// feedAuthorName turns the RSS "email (Name)" form into the name.
func feedAuthorName(s string) string {
	if i := strings.IndexByte(s, '('); i > 0 && strings.HasSuffix(s, ")") && strings.Contains(s[:i], "@") {
		if name := strings.TrimSpace(s[i+1 : len(s)-1]); name != "" {
			return name
		}
	}
	return s
}

// feedCollapse trims and collapses runs of white space to one space.
func feedCollapse(s string) string { return htmltext.Collapse(s) }

// feedStripHTML reads s as an HTML fragment and returns its text on one
// line: tags dropped (block tags become spaces), script/style skipped,
// entities unescaped, white space collapsed.
func feedStripHTML(s string) string { return htmltext.Text(s, htmltext.Options{}) }

// feedTruncate caps s at feedMaxSummary bytes on a rune boundary.
func feedTruncate(s string) string {
	if len(s) <= feedMaxSummary {
		return s
	}
	cut := feedMaxSummary
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// feedDateLayouts are the date shapes seen in real feeds, after
// feedNormDate has dropped the weekday and turned zone names into offsets.
var feedDateLayouts = []string{
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04 -0700",
	"2 Jan 06 15:04:05 -0700",
	"2 Jan 06 15:04 -0700",
	"2 January 2006 15:04:05 -0700",
	"2 January 2006 15:04 -0700",
	"2 Jan 2006 15:04:05",
	"2 Jan 2006",
	"Jan 2 2006 15:04:05 -0700",
	"Jan 2 15:04:05 2006",       // ANSIC without weekday
	"Jan 2 15:04:05 -0700 2006", // UnixDate-ish without weekday
	"2-Jan-06 15:04:05 -0700",
	"2-Jan-2006 15:04:05 -0700",
	time.RFC3339Nano,
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05.999999999-0700",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
	"2006/01/02 15:04:05",
	"2006/01/02 15:04",
	"2006/01/02",
	"2006年01月02日 15:04:05",
	"2006年01月02日 15:04",
	"2006年1月2日 15:04:05",
	"2006年1月2日 15:04",
	"2006年01月02日",
	"2006年1月2日",
}

// feedZones maps the zone names RFC 822 allows (and a few more seen in the
// wild) to offsets; Go's parser would otherwise invent a zero offset.
var feedZones = map[string]string{
	"UT": "+0000", "UTC": "+0000", "GMT": "+0000", "Z": "+0000",
	"EST": "-0500", "EDT": "-0400", "CST": "-0600", "CDT": "-0500",
	"MST": "-0700", "MDT": "-0600", "PST": "-0800", "PDT": "-0700",
	"CET": "+0100", "CEST": "+0200", "BST": "+0100", "IST": "+0530",
	"JST": "+0900", "KST": "+0900", "HKT": "+0800", "SGT": "+0800",
	"AEST": "+1000", "AEDT": "+1100", "MSK": "+0300",
}

// feedParseDate parses the many date formats feeds use. Dates without a
// zone are taken as UTC. The result is in UTC.
func feedParseDate(s string) (time.Time, bool) {
	s = feedNormDate(s)
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range feedDateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				return time.Time{}, false
			}
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// feedNormDate drops a leading weekday ("Mon,", "Monday"), collapses
// spaces, and turns a trailing zone name into a numeric offset.
func feedNormDate(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	if w := strings.TrimSuffix(f[0], ","); len(w) >= 3 && feedIsLetters(w) && feedIsWeekday(w) {
		f = f[1:]
	} else if i := strings.IndexByte(f[0], ','); i > 0 && feedIsLetters(f[0][:i]) && feedIsWeekday(f[0][:i]) {
		f[0] = f[0][i+1:] // "Mon,02 Jan 2006"
		if f[0] == "" {
			f = f[1:]
		}
	}
	if len(f) == 0 {
		return ""
	}
	last := f[len(f)-1]
	if off, ok := feedZones[strings.ToUpper(last)]; ok && len(f) > 1 {
		f[len(f)-1] = off
	} else if len(f) > 1 {
		u := strings.ToUpper(last)
		if strings.HasPrefix(u, "GMT+") || strings.HasPrefix(u, "GMT-") || strings.HasPrefix(u, "UTC+") || strings.HasPrefix(u, "UTC-") {
			last = last[3:]
		}
		if off, ok := feedNormOffset(last); ok {
			f[len(f)-1] = off
		}
	}
	return strings.Join(f, " ")
}

// feedNormOffset turns "+8", "+08", "+08:00" and "+0800" into "+0800".
func feedNormOffset(s string) (string, bool) {
	if len(s) < 2 || (s[0] != '+' && s[0] != '-') {
		return "", false
	}
	sign, rest := s[:1], strings.Replace(s[1:], ":", "", 1)
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return "", false
		}
	}
	switch len(rest) {
	case 1:
		return sign + "0" + rest + "00", true
	case 2:
		return sign + rest + "00", true
	case 3:
		return sign + "0" + rest, true
	case 4:
		return sign + rest, true
	}
	return "", false
}

func feedIsLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func feedIsWeekday(w string) bool {
	w = strings.ToLower(w)
	for _, d := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		if strings.HasPrefix(w, d) {
			return true
		}
	}
	return false
}
