package feed

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
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
	"lookout/internal/httpurl"
)

// Feed is a parsed RSS 2.0, RSS 1.0 (RDF), Atom or JSON Feed document.
type Feed struct {
	Format  string        `json:"format"` // rss, rdf, atom or json
	Title   string        `json:"title"`
	Link    string        `json:"link,omitempty"`
	TTL     time.Duration `json:"ttl,omitempty"` // RSS <ttl>: the publisher's minimum poll interval
	Entries []FeedEntry   `json:"entries"`
	// Warnings say what a damaged document cost or how it was repaired
	// (control characters dropped, stray end tags ignored, entries lost
	// after a syntax error). The collector logs them.
	Warnings []string `json:"warnings,omitempty"`
}

// FeedEntry is one item or entry, normalised across formats.
type FeedEntry struct {
	// ID is the dedupe key: the RSS guid, Atom id or JSON Feed id as
	// written; else the entry's absolute link; else "sha256:" and a hash of
	// its title, text and date (see feedEntryID). An id the document gives
	// to two different entries gets "#" and the second one's Digest added.
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Summary   string    `json:"summary"` // description/summary/content as plain text
	Author    string    `json:"author,omitempty"`
	URL       string    `json:"url,omitempty"`      // absolute http(s) link
	Published time.Time `json:"published,omitzero"` // pubDate/published/updated; zero when absent or unparseable
	// Zoneless says Published was written without a zone or offset and was
	// read as UTC; the collector reads it again in the source's timezone
	// (InZone).
	Zoneless bool `json:"-"`
	// EditOf and EditedAt are set by the collector on an entry whose id it
	// has emitted before with another title or text: that id, and when the
	// change was noticed.
	EditOf   string    `json:"edit_of,omitempty"`
	EditedAt time.Time `json:"edited_at,omitzero"`
}

// Digest is a short hash of what a reader sees of the entry (title and
// text): two versions of an entry under one id differ in it exactly when
// they were edited.
func (e *FeedEntry) Digest() string {
	sum := sha256.Sum256([]byte(e.Title + "\x00" + e.Summary))
	return hex.EncodeToString(sum[:8])
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

// ErrNotAFeed is returned (wrapped) when a document parses but is not a
// feed — typically an HTML error or login page where the feed used to be.
var ErrNotAFeed = errors.New("not an RSS, Atom or JSON feed")

// ParseFeed parses an RSS 2.0, RSS 1.0, Atom (1.0 or 0.3) or JSON Feed (1.0
// or 1.1) document; the format is told by the content, not the
// Content-Type. contentType is the HTTP Content-Type (its charset is used
// when the XML declaration names none); base is the feed's URL, against
// which relative links resolve.
//
// Broken XML costs only what it breaks: the entries that were complete
// before a syntax error are returned, with Feed.Warnings saying what was
// repaired or lost. Only a document that yields no entry at all and has an
// error is an error.
func ParseFeed(data []byte, contentType string, base *url.URL) (*Feed, error) {
	switch feedSniff(data) {
	case "json":
		return parseJSONFeed(data, base)
	case "html":
		return nil, fmt.Errorf("%w: got an HTML page, not a feed", ErrNotAFeed)
	}
	tree, err := feedBuildTree(data, contentType)
	if err != nil {
		return nil, err
	}
	root := tree.root
	p := feedInterp{text: tree.text, base: base}
	var f *Feed
	switch strings.ToLower(root.name.Local) {
	case "rss":
		f = p.rss(root, "rss")
	case "rdf":
		f = p.rss(root, "rdf")
	case "feed":
		f = p.atom(root)
	case "html", "body", "head":
		return nil, fmt.Errorf("%w: got an HTML page, not a feed (root element <%s>)", ErrNotAFeed, root.name.Local)
	default:
		return nil, fmt.Errorf("%w: root element is <%s>", ErrNotAFeed, root.name.Local)
	}
	if tree.broken != nil {
		if len(f.Entries) == 0 {
			return nil, fmt.Errorf("bad XML: %w", tree.broken)
		}
		tree.warnings = append(tree.warnings, fmt.Sprintf("bad XML, kept the %d complete entries before it: %v", len(f.Entries), tree.broken))
	}
	if p.dropped > 0 {
		tree.warnings = append(tree.warnings, fmt.Sprintf("dropped %d entries cut off by the end of the document", p.dropped))
	}
	f.Warnings = tree.warnings
	return f, nil
}

// feedSniff tells JSON and HTML documents from XML ones by their first
// bytes.
func feedSniff(data []byte) string {
	s := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(s) > 0 && (s[0] == '{' || s[0] == '[') {
		return "json"
	}
	head := bytes.ToLower(s[:min(len(s), 64)])
	if bytes.HasPrefix(head, []byte("<!doctype html")) || bytes.HasPrefix(head, []byte("<html")) {
		return "html"
	}
	return "xml"
}

// feedNode is one element. Its text is text[start:end] of the document's
// text buffer: all character data inside it, in order, with a space at
// element boundaries.
type feedNode struct {
	name       xml.Name
	attrs      []xml.Attr
	start, end int
	children   []*feedNode
	open       bool // the document ended (or broke) before its end tag
}

var feedDeclEncodingRE = regexp.MustCompile(`^\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']+)["']`)

// feedTree is a decoded document: its root, its text buffer, what was
// repaired on the way, and the XML error that ended decoding early, if any.
type feedTree struct {
	root     *feedNode
	text     []byte
	warnings []string
	broken   error // decoding stopped here; root holds what came before
}

// feedFrame is one open element while decoding: the node (nil when folded
// into an ancestor past feedMaxDepth), its name as written (prefix:local)
// for matching its end tag, and how many namespace bindings it declared.
type feedFrame struct {
	node  *feedNode
	raw   xml.Name
	nbind int
}

type feedNSBinding struct{ prefix, url string }

// feedBuildTree decodes data into a tree of elements and one text buffer.
// It is lenient the way feed readers are: characters XML forbids are
// dropped, an end tag that closes nothing open is ignored (or closes a
// childless element it misspells), an end tag of an outer element closes
// the inner ones left open, and a syntax error after the root element
// began ends decoding with what came before kept (tree.broken says so).
func feedBuildTree(data []byte, contentType string) (*feedTree, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty document")
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
			return nil, fmt.Errorf("decode UTF-16: %w", err)
		}
		data, converted = out, true
	case declEnc == "":
		if cs := feedContentTypeCharset(contentType); cs != "" && !feedIsUTF8(cs) {
			r, err := charset.NewReaderLabel(cs, bytes.NewReader(data))
			if err != nil {
				return nil, fmt.Errorf("charset %q from Content-Type: %w", cs, err)
			}
			out, err := io.ReadAll(r)
			if err != nil {
				return nil, fmt.Errorf("decode %s: %w", cs, err)
			}
			data, converted = out, true
		}
	}
	if !converted && (declEnc == "" || feedIsUTF8(declEnc)) && !utf8.Valid(data) {
		// Stray bytes in a UTF-8 feed are common; keep the rest of it.
		data = bytes.ToValidUTF8(data, []byte("\uFFFD"))
	}
	tree := &feedTree{}
	// Control characters are never part of an XML document; one of them
	// must not cost the feed. In every encoding a feed arrives in here
	// (UTF-8, or ASCII-compatible legacy ones; UTF-16 was converted above)
	// bytes below 0x20 stand for themselves.
	if n := feedCountControls(data); n > 0 {
		data = feedDropControls(data)
		tree.warnings = append(tree.warnings, fmt.Sprintf("dropped %d control character(s) XML does not allow", n))
	}

	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false // tolerate bare & and unquoted attributes like browsers and Miniflux do
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
		text     []byte
		stack    []feedFrame
		ns       []feedNSBinding
		strays   int // end tags that closed nothing
		implicit int // elements closed by an ancestor's end tag
	)
	sep := func() {
		if n := len(text); n > 0 && text[n-1] != ' ' {
			text = append(text, ' ')
		}
	}
	// translate resolves a prefix the way encoding/xml's Token does;
	// an undeclared prefix stays as the name's Space.
	translate := func(n xml.Name, elem bool) xml.Name {
		switch {
		case n.Space == "xmlns", n.Space == "" && n.Local == "xmlns":
			return n
		case n.Space == "xml":
			n.Space = feedNSXML
			return n
		case n.Space == "" && !elem:
			return n
		}
		for i := len(ns) - 1; i >= 0; i-- {
			if ns[i].prefix == n.Space {
				n.Space = ns[i].url
				return n
			}
		}
		return n
	}
	pop := func() {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ns = ns[:len(ns)-f.nbind]
		if f.node != nil {
			f.node.end = len(text)
			f.node.open = false
		}
		sep()
	}
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			if tree.root == nil {
				return nil, fmt.Errorf("bad XML: %w", err)
			}
			tree.broken = err
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if tree.root != nil && len(stack) == 0 {
				tree.broken = fmt.Errorf("a second root element <%s> after the first", t.Name.Local)
				goto done
			}
			nbind := 0
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					ns = append(ns, feedNSBinding{a.Name.Local, a.Value})
					nbind++
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					ns = append(ns, feedNSBinding{"", a.Value})
					nbind++
				}
			}
			sep()
			fr := feedFrame{raw: t.Name, nbind: nbind}
			if len(stack) < feedMaxDepth {
				n := &feedNode{name: translate(t.Name, true), start: len(text), open: true}
				if len(t.Attr) > 0 {
					n.attrs = make([]xml.Attr, len(t.Attr))
					for i, a := range t.Attr {
						n.attrs[i] = xml.Attr{Name: translate(a.Name, false), Value: a.Value}
					}
				}
				if tree.root == nil {
					tree.root = n
				} else if parent := feedParentNode(stack); parent != nil {
					parent.children = append(parent.children, n)
				}
				fr.node = n
			}
			stack = append(stack, fr)
		case xml.EndElement:
			match := -1
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i].raw == t.Name {
					match = i
					break
				}
			}
			switch {
			case match >= 0:
				implicit += len(stack) - 1 - match
				for len(stack) > match {
					pop()
				}
			case len(stack) > 0 && stack[len(stack)-1].node != nil && len(stack[len(stack)-1].node.children) == 0:
				// <language>en</langauge>: a misspelt end tag of a leaf.
				strays++
				pop()
			default:
				strays++
			}
		case xml.CharData:
			if len(stack) > 0 {
				text = append(text, t...)
			}
		}
	}
done:
	if tree.root == nil {
		return nil, errors.New("bad XML: no root element")
	}
	if len(stack) > 0 && tree.broken == nil {
		tree.broken = fmt.Errorf("document ends inside <%s>", stack[len(stack)-1].raw.Local)
	}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if f.node != nil {
			f.node.end = len(text) // stays open: the interpreter skips open entries
		}
	}
	if strays > 0 {
		tree.warnings = append(tree.warnings, fmt.Sprintf("ignored %d end tag(s) that matched no open element", strays))
	}
	if implicit > 0 {
		tree.warnings = append(tree.warnings, fmt.Sprintf("closed %d element(s) that had no end tag", implicit))
	}
	tree.text = text
	return tree, nil
}

// feedParentNode is the innermost open element with a node (folded
// elements past feedMaxDepth have none).
func feedParentNode(stack []feedFrame) *feedNode {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i].node != nil {
			return stack[i].node
		}
	}
	return nil
}

// feedIsControl reports bytes XML 1.0 forbids: C0 controls but tab, LF, CR.
func feedIsControl(b byte) bool { return b < 0x20 && b != '\t' && b != '\n' && b != '\r' }

func feedCountControls(data []byte) int {
	n := 0
	for _, b := range data {
		if feedIsControl(b) {
			n++
		}
	}
	return n
}

func feedDropControls(data []byte) []byte {
	out := make([]byte, 0, len(data))
	for _, b := range data {
		if !feedIsControl(b) {
			out = append(out, b)
		}
	}
	return out
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
	text    []byte
	base    *url.URL
	dropped int // entries left open by a broken document
}

// add appends e unless it repeats an entry already added. An id given to
// two entries with different content (a reused guid) keeps both: the
// second gets its digest added to the id.
func (p *feedInterp) add(f *Feed, seen map[string]string, e FeedEntry) {
	d := e.Digest()
	if prev, ok := seen[e.ID]; ok {
		if prev == d {
			return
		}
		e.ID += "#" + d
		if _, ok := seen[e.ID]; ok {
			return
		}
	}
	seen[e.ID] = d
	f.Entries = append(f.Entries, e)
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
	// Item links are relative to xml:base where the document sets one,
	// else to the site (channel link) when that is an absolute URL, else
	// to the feed's own URL.
	base := feedXMLBase(p.base, root)
	if ch != nil {
		base = feedXMLBase(base, ch)
	}
	hasXMLBase := base != p.base
	if l := p.plain(ch.first(feedRSSName("link"))); l != "" {
		if u, err := url.Parse(l); err == nil && !hasXMLBase && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
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
	seen := make(map[string]string, len(items))
	for _, it := range items {
		if it.open {
			p.dropped++
			continue
		}
		p.add(f, seen, p.rssItem(it, feedXMLBase(base, it)))
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
	if linkNode != nil {
		base = feedXMLBase(base, linkNode)
	}
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
	e.Published, e.Zoneless, _ = feedParseDate(rawDate)

	e.ID = feedEntryID(guid, &e, rawDate)
	return e
}

func (p *feedInterp) atom(root *feedNode) *Feed {
	base := feedXMLBase(p.base, root)
	f := &Feed{Format: "atom", Title: p.atomText(root.first(feedAtomName("title")))}
	f.Link = p.atomLink(root, base)
	feedAuthor := p.atomAuthor(root)
	docBase := feedXMLBase(nil, root) // the document's own xml:base, for ids
	seen := map[string]string{}
	for _, c := range root.children {
		if !feedAtomName("entry")(c.name) {
			continue
		}
		if c.open {
			p.dropped++
			continue
		}
		p.add(f, seen, p.atomEntry(c, feedXMLBase(base, c), feedXMLBase(docBase, c), feedAuthor))
	}
	return f
}

// atomEntry reads one entry. base resolves links; idBase is the xml:base
// the document itself set (nil when none), against which a relative id
// resolves as gofeed does.
func (p *feedInterp) atomEntry(n *feedNode, base, idBase *url.URL, feedAuthor string) FeedEntry {
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
	// Publication first, then the last update; Atom 0.3 calls them issued
	// and modified.
	var dateNode *feedNode
	for _, name := range []string{"published", "issued", "updated", "modified"} {
		if dateNode = n.first(feedAtomName(name)); dateNode != nil {
			break
		}
	}
	rawDate := p.plain(dateNode)
	e.Published, e.Zoneless, _ = feedParseDate(rawDate)
	id := p.plain(n.first(feedAtomName("id")))
	if u, err := url.Parse(id); err == nil && id != "" && !u.IsAbs() && idBase != nil && idBase.IsAbs() {
		id = idBase.ResolveReference(u).String()
	}
	e.ID = feedEntryID(id, &e, rawDate)
	return e
}

// atomText reads an Atom text construct or content element: text as is;
// html with tags stripped; xhtml and XML types by their text content (the
// tree already dropped their tags, so escaped markup in them stays text);
// base64 (Atom 0.3 mode="base64", or an Atom 1.0 type that is neither
// text nor XML) decoded and read as HTML. Out-of-line content (src=) is
// empty.
func (p *feedInterp) atomText(n *feedNode) string {
	if n == nil {
		return ""
	}
	if _, ok := n.attr("src"); ok {
		return ""
	}
	typ, _ := n.attr("type")
	typ = strings.ToLower(strings.TrimSpace(typ))
	mode, _ := n.attr("mode")
	switch mode = strings.ToLower(strings.TrimSpace(mode)); {
	case mode == "base64":
		s, _ := p.base64(n)
		return s
	case mode == "xml":
		return p.plain(n)
	}
	switch {
	case typ == "" || typ == "text" || typ == "text/plain":
		return p.plain(n)
	case typ == "html" || typ == "text/html":
		return p.html(n)
	case typ == "xhtml" || strings.HasPrefix(typ, "text/") ||
		strings.HasSuffix(typ, "xml") || strings.HasSuffix(typ, "json") || strings.HasSuffix(typ, "javascript"):
		return p.plain(n)
	}
	if s, ok := p.base64(n); ok {
		return s
	}
	// Not base64 text: binary media is nothing to read; an unknown type
	// written as plain text is read as such.
	if major, _, _ := strings.Cut(typ, "/"); major == "image" || major == "audio" || major == "video" || typ == "application/octet-stream" {
		return ""
	}
	return p.plain(n)
}

// base64 decodes an element's base64 text and reads it as HTML; ok is
// false when it is not base64 or does not decode to UTF-8 text.
func (p *feedInterp) base64(n *feedNode) (string, bool) {
	s := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, p.raw(n))
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	if err != nil || !utf8.Valid(b) {
		return "", false
	}
	return feedStripHTML(string(b)), true
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
	if !httpurl.OK(u) {
		return ""
	}
	return u.String()
}

// feedEntryID picks the dedupe key: the id as written, else the link,
// else a hash of the title, text and date as written, so that entries
// without id and link that differ in any of them stay apart.
func feedEntryID(id string, e *FeedEntry, rawDate string) string {
	if id = strings.TrimSpace(id); id != "" {
		return id
	}
	if e.URL != "" {
		return e.URL
	}
	sum := sha256.Sum256([]byte(e.Title + "\x00" + e.Summary + "\x00" + rawDate))
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
// zone are taken as UTC and reported zoneless. The result is in UTC.
func feedParseDate(s string) (t time.Time, zoneless, ok bool) {
	s = feedNormDate(s)
	if s == "" {
		return time.Time{}, false, false
	}
	for _, layout := range feedDateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				return time.Time{}, false, false
			}
			return t.UTC(), !feedLayoutHasZone(layout), true
		}
	}
	return time.Time{}, false, false
}

// feedLayoutHasZone reports whether a date layout reads a zone or offset.
func feedLayoutHasZone(layout string) bool {
	return strings.Contains(layout, "-07") || strings.Contains(layout, "Z07") || strings.Contains(layout, "MST")
}

// InZone returns the entry's Published time, read in loc when it was
// written without a zone (the wall clock kept, the offset loc's).
func (e *FeedEntry) InZone(loc *time.Location) time.Time {
	t := e.Published
	if !e.Zoneless || t.IsZero() || loc == nil {
		return t
	}
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc).UTC()
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
