package loopback

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// FeedServer is an HTTP server on 127.0.0.1 that serves RSS and Atom
// documents the way a well-behaved feed host does: strong ETags and
// Last-Modified, 304 on If-None-Match / If-Modified-Since (RFC 9110 §13),
// and, on demand, 429/503 with Retry-After or a request that never answers.
// It records every request so tests can check what a client sent.
type FeedServer struct {
	srv *httptest.Server

	mu    sync.Mutex
	feeds map[string]*feedServed
	fails map[string][]feedFailure
	reqs  map[string][]RecordedRequest
	done  chan struct{} // closed by Close: releases hanging requests
	once  sync.Once

	hook func(path string) // OnRequest's; guarded by mu
}

type feedServed struct {
	body         []byte
	contentType  string
	etag         string
	lastModified time.Time
}

type feedFailure struct {
	status     int    // 0: hang until the client gives up
	retryAfter string // Retry-After value, "" for none
}

// RecordedRequest is one request the server received.
type RecordedRequest struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Time   time.Time
	Status int // what the server answered (0 for a request left hanging)
}

// NewFeedServer starts a server; Close stops it.
func NewFeedServer() *FeedServer {
	s := &FeedServer{
		feeds: map[string]*feedServed{},
		fails: map[string][]feedFailure{},
		reqs:  map[string][]RecordedRequest{},
		done:  make(chan struct{}),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the absolute URL of path on this server.
func (s *FeedServer) URL(path string) string {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return s.srv.URL + path
}

// Close stops the server, releasing requests left hanging.
func (s *FeedServer) Close() {
	s.once.Do(func() { close(s.done) })
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetFeed serves body at path with contentType ("" for
// application/rss+xml). A new body gets a new ETag and Last-Modified (at
// least one second after the previous one, so If-Modified-Since sees it).
func (s *FeedServer) SetFeed(path string, body []byte, contentType string) {
	if contentType == "" {
		contentType = "application/rss+xml; charset=utf-8"
	}
	sum := sha256.Sum256(body)
	s.mu.Lock()
	defer s.mu.Unlock()
	lm := time.Now().UTC().Truncate(time.Second)
	if old, ok := s.feeds[path]; ok && !lm.After(old.lastModified) {
		lm = old.lastModified.Add(time.Second)
	}
	s.feeds[path] = &feedServed{
		body:         append([]byte(nil), body...),
		contentType:  contentType,
		etag:         `"` + hex.EncodeToString(sum[:8]) + `"`,
		lastModified: lm,
	}
}

// ETag is the ETag path is served with ("" when nothing is set).
func (s *FeedServer) ETag(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.feeds[path]; ok {
		return f.etag
	}
	return ""
}

// FailNext makes the next n requests for path answer status with the given
// Retry-After ("" for none), e.g. 429 with "2" or 503 with an HTTP-date.
func (s *FeedServer) FailNext(path string, status int, retryAfter string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fails[path] = append(s.fails[path], feedFailure{status: status, retryAfter: retryAfter})
	}
}

// HangNext makes the next n requests for path get no answer until the
// client gives up (a timeout) or the server closes.
func (s *FeedServer) HangNext(path string, n int) {
	s.FailNext(path, 0, "", n)
}

// Requests returns what the server received for path, oldest first.
func (s *FeedServer) Requests(path string) []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RecordedRequest(nil), s.reqs[path]...)
}

// OnRequest makes the server call f with each request's path before it
// answers (nil: nothing). f may call SetFeed, to publish entries as a
// client polls, and what it sets is what that request gets.
func (s *FeedServer) OnRequest(f func(path string)) {
	s.mu.Lock()
	s.hook = f
	s.mu.Unlock()
}

func (s *FeedServer) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	rec := RecordedRequest{Method: r.Method, Path: path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Time: time.Now()}

	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(path)
	}

	s.mu.Lock()
	var fail *feedFailure
	if q := s.fails[path]; len(q) > 0 {
		fail = &q[0]
		s.fails[path] = q[1:]
	}
	var f feedServed
	f0, ok := s.feeds[path]
	if ok {
		f = *f0
	}
	idx := len(s.reqs[path])
	s.reqs[path] = append(s.reqs[path], rec)
	s.mu.Unlock()

	status := s.answer(w, r, fail, f, ok)
	s.mu.Lock()
	s.reqs[path][idx].Status = status
	s.mu.Unlock()
}

// answer writes the response and returns its status.
func (s *FeedServer) answer(w http.ResponseWriter, r *http.Request, fail *feedFailure, f feedServed, ok bool) int {
	switch {
	case fail != nil && fail.status == 0:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return 0
	case fail != nil:
		if fail.retryAfter != "" {
			w.Header().Set("Retry-After", fail.retryAfter)
		}
		http.Error(w, http.StatusText(fail.status), fail.status)
		return fail.status
	case !ok:
		http.NotFound(w, r)
		return http.StatusNotFound
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return http.StatusMethodNotAllowed
	}
	lm := f.lastModified.Format(http.TimeFormat)
	w.Header().Set("ETag", f.etag)
	w.Header().Set("Last-Modified", lm)
	if feedNotModified(r, f) {
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified
	}
	w.Header().Set("Content-Type", f.contentType)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(f.body)
	}
	return http.StatusOK
}

// feedNotModified evaluates the preconditions of RFC 9110 §13.2.2: when
// If-None-Match is present it decides alone (weak comparison);
// If-Modified-Since counts only without it.
func feedNotModified(r *http.Request, f feedServed) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if strings.TrimSpace(inm) == "*" {
			return true
		}
		want := strings.TrimPrefix(f.etag, "W/")
		for _, tag := range strings.Split(inm, ",") {
			if strings.TrimPrefix(strings.TrimSpace(tag), "W/") == want {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !f.lastModified.After(t)
	}
	return false
}

// FeedEntrySpec describes one entry for RSSDocument and AtomDocument.
type FeedEntrySpec struct {
	ID        string // guid / id; "" leaves it out (the link is the key)
	Title     string
	Text      string // description / summary; may hold HTML
	Link      string
	Author    string
	Published time.Time // zero leaves the date out
}

// RSSDocument builds an RSS 2.0 document.
func RSSDocument(title string, entries []FeedEntrySpec) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>`)
	feedElem(&b, "title", title)
	feedElem(&b, "link", "https://news.example.com/")
	feedElem(&b, "description", title)
	for _, e := range entries {
		b.WriteString("<item>")
		feedElem(&b, "title", e.Title)
		if e.Link != "" {
			feedElem(&b, "link", e.Link)
		}
		if e.ID != "" {
			b.WriteString(`<guid isPermaLink="false">`)
			xml.EscapeText(&b, []byte(e.ID))
			b.WriteString(`</guid>`)
		}
		if e.Author != "" {
			feedElem(&b, "dc:creator", e.Author)
		}
		if !e.Published.IsZero() {
			feedElem(&b, "pubDate", e.Published.UTC().Format(time.RFC1123Z))
		}
		feedElem(&b, "description", e.Text)
		b.WriteString("</item>")
	}
	b.WriteString("</channel></rss>\n")
	return b.Bytes()
}

// AtomDocument builds an Atom 1.0 document (text is sent as type="html").
func AtomDocument(title string, entries []FeedEntrySpec) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<feed xmlns="http://www.w3.org/2005/Atom">`)
	feedElem(&b, "title", title)
	feedElem(&b, "id", "urn:lookout:loopback:"+title)
	var newest time.Time
	for _, e := range entries {
		if e.Published.After(newest) {
			newest = e.Published
		}
	}
	if newest.IsZero() {
		newest = time.Unix(0, 0)
	}
	feedElem(&b, "updated", newest.UTC().Format(time.RFC3339))
	for _, e := range entries {
		b.WriteString("<entry>")
		feedElem(&b, "title", e.Title)
		id := e.ID
		if id == "" {
			id = e.Link
		}
		feedElem(&b, "id", id)
		if e.Link != "" {
			b.WriteString(`<link rel="alternate" href="`)
			xml.EscapeText(&b, []byte(e.Link))
			b.WriteString(`"/>`)
		}
		if e.Author != "" {
			b.WriteString("<author>")
			feedElem(&b, "name", e.Author)
			b.WriteString("</author>")
		}
		if !e.Published.IsZero() {
			feedElem(&b, "published", e.Published.UTC().Format(time.RFC3339))
			feedElem(&b, "updated", e.Published.UTC().Format(time.RFC3339))
		}
		b.WriteString(`<summary type="html">`)
		xml.EscapeText(&b, []byte(e.Text))
		b.WriteString("</summary></entry>")
	}
	b.WriteString("</feed>\n")
	return b.Bytes()
}

func feedElem(b *bytes.Buffer, name, text string) {
	b.WriteString("<" + name + ">")
	_ = xml.EscapeText(b, []byte(text))
	b.WriteString("</" + name + ">")
}
