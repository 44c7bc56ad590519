// Package html is the html collector: it scrapes listing pages with CSS
// selectors.
package html

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html/charset"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/poll"
	"lookout/config"
	"lookout/internal/httpurl"
	"lookout/item"
)

// html scrapes any site's listing pages (brand forums, shop reviews, news
// lists) with CSS selectors. A field is `selector` (the element's text),
// `selector@attr` (an attribute) or `@attr` (an attribute of the item
// element itself).
//
//   - id: brand-forum
//     kind: html
//     every: 10m
//     url: https://bbs.example.com/forum-12-1.html
//     selectors:
//     item: li.post
//     id: "@data-pid"
//     text: div.content
//     author: span.author
//     time: span.time
//     link: a.title@href
//     next: a.next@href
//     time_layout: "2006-01-02 15:04"
//     time_zone: Asia/Shanghai
//     max_pages: 3

type htmlSpec struct {
	URL        string            `yaml:"url"`
	Selectors  htmlSelectors     `yaml:"selectors"`
	TimeLayout string            `yaml:"time_layout"` // Go layout; default: common formats and 3分钟前-style
	TimeZone   string            `yaml:"time_zone"`   // for times without an offset; default the source's timezone
	MaxPages   int               `yaml:"max_pages"`   // default 1, or 3 when next is set
	Charset    string            `yaml:"charset"`     // force a charset (gbk, gb18030, big5…); default: detect
	Kind       string            `yaml:"kind"`        // default post
	Platform   string            `yaml:"platform"`    // default web
	Room       string            `yaml:"room"`        // default the source id
	Headers    map[string]string `yaml:"headers"`
	Cookie     config.Secret     `yaml:"cookie"`
}

// htmlSelectors are the CSS selectors of one source; all but item are
// relative to the item element.
type htmlSelectors struct {
	Item     string `yaml:"item"`
	ID       string `yaml:"id"`
	Title    string `yaml:"title"` // prepended to the text when set
	Text     string `yaml:"text"`
	Author   string `yaml:"author"`
	AuthorID string `yaml:"author_id"`
	Time     string `yaml:"time"`
	Link     string `yaml:"link"` // default attribute href
	Next     string `yaml:"next"` // next-page link in the page; default attribute href
}

// htmlField is a compiled `selector@attr`.
type htmlField struct {
	sel  cascadia.Selector // nil: the item element itself
	attr string
}

var htmlAttrName = regexp.MustCompile(`^[A-Za-z_:][-A-Za-z0-9_:.]*$`)

func htmlCompileField(name, spec, defAttr string) (*htmlField, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	f := &htmlField{attr: defAttr}
	sel := spec
	if i := strings.LastIndexByte(spec, '@'); i >= 0 && htmlAttrName.MatchString(spec[i+1:]) {
		sel, f.attr = strings.TrimSpace(spec[:i]), spec[i+1:]
	}
	if sel != "" {
		s, err := cascadia.Compile(sel)
		if err != nil {
			return nil, fmt.Errorf("%s: bad CSS selector %q: %w", name, sel, err)
		}
		f.sel = s
	}
	return f, nil
}

// value reads the field from the item element.
func (f *htmlField) value(s *goquery.Selection) string {
	if f == nil {
		return ""
	}
	if f.sel != nil {
		s = s.FindMatcher(f.sel).First()
		if s.Length() == 0 {
			return ""
		}
	}
	if f.attr != "" {
		v, _ := s.Attr(f.attr)
		return strings.TrimSpace(v)
	}
	return htmlCollapse(s.Text())
}

// htmlCollapse trims and folds whitespace runs: markup indentation is not
// content.
func htmlCollapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// htmlExtractor is the compiled selector set; it is what the fuzz target
// and benchmark drive.
type htmlExtractor struct {
	item                                            cascadia.Selector
	id, title, text, author, authorID, ts, link, nx *htmlField
	layout                                          string
	loc                                             *time.Location
}

func htmlNewExtractor(spec htmlSpec, src config.SourceConfig) (*htmlExtractor, error) {
	sel := spec.Selectors
	if strings.TrimSpace(sel.Item) == "" {
		return nil, errors.New("selectors.item: required (the CSS selector of one entry)")
	}
	x := &htmlExtractor{layout: spec.TimeLayout}
	var err error
	if x.item, err = cascadia.Compile(sel.Item); err != nil {
		return nil, fmt.Errorf("selectors.item: bad CSS selector %q: %w", sel.Item, err)
	}
	for _, f := range []struct {
		name, spec, attr string
		dst              **htmlField
	}{
		{"id", sel.ID, "", &x.id}, {"title", sel.Title, "", &x.title}, {"text", sel.Text, "", &x.text},
		{"author", sel.Author, "", &x.author}, {"author_id", sel.AuthorID, "", &x.authorID},
		{"time", sel.Time, "", &x.ts}, {"link", sel.Link, "href", &x.link}, {"next", sel.Next, "href", &x.nx},
	} {
		if *f.dst, err = htmlCompileField("selectors."+f.name, f.spec, f.attr); err != nil {
			return nil, err
		}
	}
	if x.text == nil && x.title == nil && x.id == nil && x.link == nil {
		return nil, errors.New("selectors: set at least one of text, title, id or link")
	}
	if x.loc, err = poll.Location(spec.TimeZone, src); err != nil {
		return nil, fmt.Errorf("time_zone: %w", err)
	}
	return x, nil
}

// htmlRecord is one extracted entry.
type htmlRecord struct {
	ID, Text, Author, AuthorID, URL string
	TS                              time.Time
	timeErr                         error
	noText                          bool // the text selector matched nothing (or nothing but blanks)
}

// extract returns the entries of a page and the absolute next-page URL.
func (x *htmlExtractor) extract(doc *goquery.Document, base *url.URL, now time.Time) (recs []htmlRecord, next string) {
	if b, ok := doc.Find("base[href]").First().Attr("href"); ok {
		if bu, err := base.Parse(b); err == nil {
			base = bu
		}
	}
	doc.FindMatcher(x.item).Each(func(_ int, s *goquery.Selection) {
		var r htmlRecord
		title := x.title.value(s)
		r.Text = x.text.value(s)
		r.noText = r.Text == ""
		if title != "" && r.Text != "" && title != r.Text {
			r.Text = title + "\n" + r.Text
		} else if r.Text == "" {
			r.Text = title
		}
		r.Author = x.author.value(s)
		r.AuthorID = x.authorID.value(s)
		if l := x.link.value(s); l != "" {
			r.URL = htmlResolve(base, l)
		}
		if ts := x.ts.value(s); ts != "" {
			r.TS, r.timeErr = poll.ParseTime(ts, x.layout, x.loc, now)
		}
		r.ID = x.id.value(s)
		if r.ID == "" {
			r.ID = r.URL
		}
		if r.ID == "" {
			h := sha1.Sum([]byte(r.Author + "\x00" + r.Text))
			r.ID = "h" + hex.EncodeToString(h[:10])
		}
		recs = append(recs, r)
	})
	if x.nx != nil {
		if sel := x.nx.value(doc.Selection); sel != "" && !strings.HasPrefix(strings.ToLower(sel), "javascript:") {
			next = htmlResolve(base, sel)
		}
	}
	return recs, next
}

// htmlResolve makes ref absolute against base; unparseable refs are kept.
func htmlResolve(base *url.URL, ref string) string {
	u, err := base.Parse(strings.TrimSpace(ref))
	if err != nil {
		return ref
	}
	return u.String()
}

// htmlDecode parses body into a document, converting from the page's
// charset (the configured one; else BOM, Content-Type, <meta>; else
// sniffed, see httpx.ToUTF8) to UTF-8.
func htmlDecode(body []byte, contentType, forced string) (*goquery.Document, httpx.Decoded, error) {
	d, err := httpx.ToUTF8(body, contentType, forced)
	if err != nil {
		return nil, d, fmt.Errorf("charset: %w", err)
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(d.Text))
	return doc, d, err
}

// textMissing names the text selector when it found nothing in every one
// of recs (at least one): the site renamed the element, which is shape
// drift rather than a page of empty posts.
func (c *htmlCollector) textMissing(recs []htmlRecord) string {
	if c.x.text == nil || len(recs) == 0 {
		return ""
	}
	for _, r := range recs {
		if !r.noText {
			return ""
		}
	}
	return fmt.Sprintf("selectors.text %q", c.spec.Selectors.Text)
}

type htmlCollector struct {
	src  config.SourceConfig
	spec htmlSpec
	env  collectors.Env
	http *httpx.Client
	x    *htmlExtractor
	kind item.Kind
	loop *poll.Loop
}

// New builds an html source (a collectors.Factory).
func New(src config.SourceConfig, env collectors.Env) (collectors.Collector, error) {
	var spec htmlSpec
	if err := src.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	u, err := url.Parse(spec.URL)
	if err != nil || !httpurl.OK(u) {
		return nil, fmt.Errorf("url %q: want an absolute http(s) URL", httpx.RedactURL(spec.URL))
	}
	c := &htmlCollector{src: src, spec: spec, env: env, kind: item.KindPost}
	if c.x, err = htmlNewExtractor(spec, src); err != nil {
		return nil, err
	}
	if spec.Kind != "" {
		c.kind = item.Kind(spec.Kind)
		if !c.kind.Valid() || !c.kind.Textual() {
			return nil, fmt.Errorf("kind: %q is not a text kind (post, comment, chat)", spec.Kind)
		}
	}
	if spec.Charset != "" {
		if _, name := charset.Lookup(spec.Charset); name == "" {
			return nil, fmt.Errorf("charset: unknown charset %q", spec.Charset)
		}
	}
	if spec.Cookie.Missing() {
		return nil, fmt.Errorf("cookie: environment variable %s is empty", spec.Cookie.Var)
	}
	if c.spec.MaxPages <= 0 {
		c.spec.MaxPages = 1
		if spec.Selectors.Next != "" {
			c.spec.MaxPages = 3
		}
	}
	if c.spec.Platform == "" {
		c.spec.Platform = "web"
	}
	if c.spec.Room == "" {
		c.spec.Room = src.ID
	}
	if c.http, err = env.HTTP.ForSource(src); err != nil {
		return nil, err
	}
	c.loop = poll.NewLoop(src, env)
	return c, nil
}

func (c *htmlCollector) Run(ctx context.Context, emit collectors.Emit) error {
	return c.loop.Run(ctx, emit, func(ctx context.Context) error { return c.poll(ctx, emit) })
}

func (c *htmlCollector) poll(ctx context.Context, emit collectors.Emit) error {
	st, err := poll.LoadState(ctx, c.env.State, c.src.ID)
	if err != nil {
		return poll.Err("state", err)
	}
	header := http.Header{}
	header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	for k, v := range c.spec.Headers {
		header.Set(k, v)
	}
	if v := c.spec.Cookie.Value(); v != "" {
		header.Set("Cookie", v)
	}
	now := c.env.Clock.Now()
	var fresh []htmlRecord
	var badTimes int
	var firstBad error
	visited := map[string]bool{}
	pageURL := c.spec.URL
pages:
	for n := 0; n < c.spec.MaxPages && pageURL != "" && !visited[pageURL]; n++ {
		visited[pageURL] = true
		prev := httpx.Validators{}
		if n == 0 {
			prev = httpx.Validators{ETag: st.ETag, LastModified: st.LastModified}
		}
		resp, err := c.http.GetConditional(ctx, pageURL, prev, header)
		if err != nil {
			return fmt.Errorf("page %d: %w", n+1, err)
		}
		if resp.NotModified {
			return nil
		}
		if n == 0 {
			st.ETag, st.LastModified = resp.Validators.ETag, resp.Validators.LastModified
		}
		doc, dec, err := htmlDecode(resp.Body, resp.Header.Get("Content-Type"), c.spec.Charset)
		if err != nil {
			return poll.Err("decode", fmt.Errorf("%s: %w", httpx.RedactURL(pageURL), err))
		}
		if n == 0 {
			c.env.TextDecoded(ctx, c.src.ID, httpx.RedactURL(pageURL), dec)
		}
		recs, next := c.x.extract(doc, resp.URL, now)
		if n == 0 {
			c.loop.ShapeFields(ctx, st, len(recs), c.textMissing(recs), httpx.RedactURL(pageURL))
		}
		anyNew := false
		for _, r := range recs {
			if r.timeErr != nil {
				badTimes++
				if firstBad == nil {
					firstBad = r.timeErr
				}
			}
			switch st.Judge(r.ID, r.TS) {
			case poll.Reach:
				break pages
			case poll.Skip:
				continue
			}
			anyNew = true
			fresh = append(fresh, r)
		}
		if len(recs) == 0 || !anyNew {
			break
		}
		pageURL = next
	}
	if badTimes > 0 {
		c.env.Metrics.Errors.WithLabelValues(c.src.ID, "bad_field").Add(float64(badTimes))
		c.env.Log.Warn("item times unreadable; used the poll time", "count", badTimes, "first", firstBad)
	}
	slices.Reverse(fresh) // listings are newest first; emit oldest first
	for _, r := range fresh {
		ts := r.TS
		if ts.IsZero() {
			ts = now
		}
		it := item.Item{Source: c.src.ID, Platform: c.spec.Platform, Kind: c.kind, Room: c.spec.Room, ID: r.ID,
			AuthorID: r.AuthorID, Author: r.Author, Text: r.Text, URL: r.URL, TS: ts, Labels: c.src.Labels}
		if err := emit(ctx, it); err != nil {
			// Keep what went out; the page was not fully consumed, so fetch it
			// again next time.
			st.ETag, st.LastModified = "", ""
			c.loop.Keep(ctx, st)
			return err
		}
		c.env.Metrics.Items.WithLabelValues(c.src.ID, string(c.kind)).Inc()
		st.Emitted(r.ID, r.TS)
	}
	if err := st.Save(ctx, c.env.State, c.src.ID); err != nil {
		return poll.Err("state", err)
	}
	return nil
}
